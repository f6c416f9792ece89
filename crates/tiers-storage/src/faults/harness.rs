//! The fuzz targets' harness: untrusted bytes opened as a data directory.

use std::path::Path;
use std::sync::Arc;

use super::SimVfs;
use crate::vfs::Vfs;

/// Opens untrusted bytes as a data directory and exercises it: the fuzz
/// targets' harness (and their replay in the normal test suite).
///
/// `data` becomes the data file and `journal` the first journal segment of a
/// simulated directory; with `reseal`, every page's checksum is recomputed
/// first so the engine's structural checks (not just its CRCs) are
/// exercised. The engine must answer with data or an error; it must never
/// panic, hang or allocate without bound. Returns whether the open succeeded.
pub fn open_untrusted_image(data: &[u8], journal: &[u8], reseal: bool) -> bool {
    use crate::page::{self, HEADER_LEN};
    let sim = SimVfs::new();
    let dir = Path::new("/fuzz");
    let write = |path: &Path, bytes: &[u8]| {
        let f = sim.open(path, true).expect("simulated open");
        f.write_at(bytes, 0).expect("simulated write");
        f.sync().expect("simulated sync");
    };
    let _ = sim.create_dir_all(&dir.join(crate::JOURNAL_DIR));
    let mut data = data.to_vec();
    if reseal {
        for page_size in [4096usize, 8192] {
            for chunk in data.chunks_mut(page_size) {
                if chunk.len() == page_size && chunk.len() > HEADER_LEN {
                    page::seal(chunk);
                }
            }
        }
    }
    write(&dir.join(crate::DATA_FILE), &data);
    if !journal.is_empty() {
        write(
            &dir.join(crate::JOURNAL_DIR)
                .join(crate::journal::segment_name(1)),
            journal,
        );
    }
    let _ = crate::verify::verify_with(dir, Arc::new(sim.clone()));
    let config = crate::Config {
        page_size: 4096,
        cache_bytes: 64 * 4096,
        background_writer: false,
        journal_segment_bytes: 256 << 10,
        ..crate::Config::default()
    };
    let Ok(engine) = crate::Engine::open_with_vfs(dir, config, Arc::new(sim.clone())) else {
        return false;
    };
    let r = engine.begin_read();
    if let Ok(trees) = r.trees() {
        for (name, info) in trees.into_iter().take(16) {
            match info.kind {
                crate::TreeKind::BTree => {
                    if let Ok(it) = r.range(&name, ..) {
                        for entry in it.take(2000) {
                            if entry.is_err() {
                                break;
                            }
                        }
                    }
                    if let Ok(it) = r.range_rev(&name, ..) {
                        let _ = it.take(2000).count();
                    }
                    let _ = r.get(&name, b"k");
                }
                crate::TreeKind::Hash => {
                    let _ = r.hash_get(&name, b"k");
                }
            }
        }
    }
    drop(r);
    if let Ok(mut tx) = engine.begin_write() {
        let _ = tx.create_tree("fuzz-new", crate::TreeKind::BTree);
        let _ = tx.put("fuzz-new", b"k", b"v");
        let _ = tx.commit();
    }
    true
}
