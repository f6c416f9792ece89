//! Offline verification and inspection of a data directory (`tiers verify`,
//! `tiers inspect`).
//!
//! Verification reads without writing anything: both meta slots, every page
//! reachable from the last checkpoint (catalog, every tree, overflow chains,
//! hash directories and buckets) with its checksum, self number and kind,
//! the free list, and every journal record with its checksum and structure.
//! It reports each problem precisely instead of stopping at the first, and
//! flags pages referenced twice, pages outside the file, and pages that are
//! neither reachable nor free (leaks). Commits after the last checkpoint live
//! only in the journal until the next open replays them; the report says how
//! many there are.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::alloc::FIRST_DATA_PAGE;
use crate::btree;
use crate::catalog;
use crate::engine::{DATA_FILE, JOURNAL_DIR};
use crate::error::{Error, Result};
use crate::hash;
use crate::journal::{self, ScanSummary};
use crate::meta::{self, Meta};
use crate::page::{PageKind, PageNo};
use crate::pool::BufferPool;
use crate::record::{self, TreeKind};
use crate::vfs::{OsVfs, Vfs};

/// One tree as found on disk.
#[derive(Debug, Clone)]
pub struct TreeReport {
    /// Tree name.
    pub name: String,
    /// B+tree or hash index.
    pub kind: TreeKind,
    /// Entries, per the catalog.
    pub entries: u64,
    /// Pages the tree occupies.
    pub pages: u64,
    /// B+tree height (levels), or hash global depth.
    pub height: u32,
}

/// Everything verification found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The meta slot in force.
    pub meta: Meta,
    /// Pages in the data file.
    pub file_pages: u64,
    /// Reachable pages by kind (plus meta and free-list pages).
    pub pages_by_kind: BTreeMap<&'static str, u64>,
    /// Free pages listed by the checkpoint.
    pub free_pages: u64,
    /// Pages neither reachable nor free.
    pub leaked_pages: u64,
    /// The trees.
    pub trees: Vec<TreeReport>,
    /// The journal.
    pub journal: ScanSummary,
    /// Journal records after the checkpoint (replayed at the next open).
    pub records_after_checkpoint: u64,
    /// Every problem found; empty means the directory is sound.
    pub problems: Vec<String>,
}

impl Report {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the data directory `dir` on the real file system.
pub fn verify(dir: &Path) -> Result<Report> {
    verify_with(dir, Arc::new(OsVfs))
}

/// Verifies a data directory through any [`Vfs`].
pub fn verify_with(dir: &Path, vfs: Arc<dyn Vfs>) -> Result<Report> {
    let data_path = dir.join(DATA_FILE);
    if !vfs.exists(&data_path) {
        return Err(Error::BadDirectory {
            dir: dir.to_path_buf(),
            detail: format!(
                "{} does not exist; is this a tiers data directory?",
                data_path.display()
            ),
        });
    }
    let file = vfs
        .open(&data_path, false)
        .map_err(|e| Error::io(format!("opening {}", data_path.display()), e))?;
    let len = file
        .len()
        .map_err(|e| Error::io(format!("reading {}", data_path.display()), e))?;
    let (meta, mut problems) = meta::read_meta(&*file, &data_path)?;
    let file_pages = len / meta.page_size as u64;
    let pool = BufferPool::new(
        file,
        data_path.clone(),
        meta.page_size,
        16 << 20,
        Arc::default(),
    );
    let mut owner: HashMap<PageNo, String> = HashMap::new();
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    *by_kind.entry(PageKind::Meta.name()).or_default() += 2;
    let high_water = meta.high_water;
    let claim = |owner: &mut HashMap<PageNo, String>,
                 by_kind: &mut BTreeMap<&'static str, u64>,
                 no: PageNo,
                 kind: PageKind,
                 who: &str,
                 problems: &mut Vec<String>| {
        if no < FIRST_DATA_PAGE || no >= meta.high_water {
            problems.push(format!(
                "{who} references page {no}, outside pages 2..{high_water}"
            ));
        } else if let Some(prev) = owner.insert(no, who.to_string()) {
            problems.push(format!("page {no} is referenced by both {prev} and {who}"));
        }
        *by_kind.entry(kind.name()).or_default() += 1;
    };
    let mut trees = Vec::new();
    if let Some(root) = meta.catalog_root {
        let mut pages = Vec::new();
        if let Err(e) = btree::walk(&pool, root, &mut |no, kind| {
            pages.push((no, kind));
            Ok(())
        }) {
            problems.push(format!("catalog: {e}"));
        }
        for (no, kind) in pages {
            claim(
                &mut owner,
                &mut by_kind,
                no,
                kind,
                "the catalog",
                &mut problems,
            );
        }
        match catalog::list(&pool, Some(root)) {
            Err(e) => problems.push(format!("catalog: {e}")),
            Ok(list) => {
                for (name, info) in list {
                    let who = format!("tree {name:?}");
                    let mut pages = Vec::new();
                    let mut collect = |no, kind| {
                        pages.push((no, kind));
                        Ok(())
                    };
                    let height = match (info.kind, info.root) {
                        (_, None) => Ok(0),
                        (TreeKind::BTree, Some(r)) => btree::walk(&pool, r, &mut collect),
                        (TreeKind::Hash, Some(r)) => {
                            hash::walk(&pool, r, &mut collect).map(u32::from)
                        }
                    };
                    let height = height.unwrap_or_else(|e| {
                        problems.push(format!("{who}: {e}"));
                        0
                    });
                    let n = pages.len() as u64;
                    for (no, kind) in pages {
                        claim(&mut owner, &mut by_kind, no, kind, &who, &mut problems);
                    }
                    trees.push(TreeReport {
                        name,
                        kind: info.kind,
                        entries: info.count,
                        pages: n,
                        height,
                    });
                }
            }
        }
    }
    let mut free_pages = 0u64;
    let mut no = meta.freelist_head.unwrap_or(0);
    let mut listed = 0u64;
    while no != 0 && listed <= meta.high_water {
        claim(
            &mut owner,
            &mut by_kind,
            no,
            PageKind::FreeList,
            "the free list",
            &mut problems,
        );
        listed += 1;
        let entries = pool
            .read_from_disk(no, Some(PageKind::FreeList))
            .and_then(|buf| meta::decode_freelist(&buf, &data_path, no));
        match entries {
            Err(e) => {
                problems.push(format!("free list: {e}"));
                break;
            }
            Ok((next, entries)) => {
                for p in entries {
                    free_pages += 1;
                    if p < FIRST_DATA_PAGE || p >= meta.high_water {
                        problems.push(format!("free list names page {p}, outside the file"));
                    } else if let Some(prev) = owner.insert(p, "the free list (as free)".into()) {
                        problems.push(format!("page {p} is both free and used by {prev}"));
                    }
                }
                no = next;
            }
        }
    }
    if free_pages != meta.freelist_count {
        problems.push(format!(
            "free list holds {free_pages} pages but the meta says {}",
            meta.freelist_count
        ));
    }
    if file_pages < meta.high_water {
        problems.push(format!(
            "{} has {file_pages} pages but the checkpoint needs {}",
            data_path.display(),
            meta.high_water
        ));
    }
    let accounted = owner.len() as u64;
    let leaked_pages = meta
        .high_water
        .saturating_sub(FIRST_DATA_PAGE)
        .saturating_sub(accounted);
    if leaked_pages > 0 {
        problems.push(format!(
            "{leaked_pages} pages are neither reachable nor free (leaked)"
        ));
    }
    let mut after = 0u64;
    let journal = match journal::scan(&*vfs, &dir.join(JOURNAL_DIR), false, |id, payload| {
        if id.kind == journal::RecordKind::Data {
            record::decode(payload, id.lsn)?;
        }
        if id.lsn > meta.lsn {
            after += 1;
        }
        Ok(())
    }) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("journal: {e}"));
            ScanSummary::default()
        }
    };
    if let Some(first) = journal.first_lsn
        && first > meta.lsn + 1
    {
        problems.push(format!(
            "the checkpoint ends at lsn {} but the journal starts at lsn {first}",
            meta.lsn
        ));
    }
    Ok(Report {
        meta,
        file_pages,
        pages_by_kind: by_kind,
        free_pages,
        leaked_pages,
        trees,
        journal,
        records_after_checkpoint: after,
        problems,
    })
}
