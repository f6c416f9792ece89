//! Static files: the web server's own work (the book's "정적 콘텐츠는 디스크에서").
//!
//! [`FileCache`] remembers what a path resolved to (a file with its
//! metadata, a directory, nothing, or a link out of the root) for
//! `cache_valid`, keeps an open handle to each file, and keeps the contents
//! of small files, and their compressed forms, in memory within a byte
//! budget. A lookup that is not cached or has gone stale runs on a blocking
//! thread, so a slow disk never stalls the event loop. [`serve`] turns a
//! lookup into a response: conditional requests, ranges and content
//! codings.

mod encoding;
mod range;
mod serve;

use std::collections::HashMap;
use std::fs::File;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};

pub use encoding::{Coding, accepted, choose};
pub use range::Ranges;
pub use serve::{Served, serve, serve_known};

use crate::config::FilesConfig;

/// Request paths resolved to files, with when they were checked.
type TargetShard = RwLock<HashMap<String, (Arc<FileEntry>, Instant)>>;

/// A static root: as configured and as resolved (symbolic links and all).
#[derive(Clone)]
pub struct Root {
    /// The directory's canonical path; nothing outside it is ever served.
    pub canonical: PathBuf,
    /// Request paths already resolved to files under this root, so a
    /// repeated request skips decoding and checking its path.
    targets: Arc<Vec<TargetShard>>,
}

impl Root {
    /// Resolves `dir`, which must exist and be a directory.
    pub fn open(dir: &Path) -> Result<Root, String> {
        let canonical = std::fs::canonicalize(dir)
            .map_err(|e| format!("static root {}: {e}", dir.display()))?;
        if !canonical.is_dir() {
            return Err(format!("static root {} is not a directory", dir.display()));
        }
        Ok(Root {
            canonical,
            targets: Arc::new((0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect()),
        })
    }
}

/// What a path under a root is.
#[derive(Clone)]
pub enum Lookup {
    /// A regular file.
    File(Arc<FileEntry>),
    /// A directory.
    Directory,
    /// Nothing there (or not readable, or hidden behind a link).
    Missing,
    /// A link leading out of the root, or a device, socket or pipe.
    Forbidden,
}

/// A regular file and what we know about it.
pub struct FileEntry {
    /// Open handle, shared by every response streaming from it.
    pub file: Arc<File>,
    /// Size in bytes.
    pub len: u64,
    /// Modification time, whole seconds (what HTTP dates can say).
    pub mtime_secs: u64,
    /// Strong validator: `"mtime-len"` in hex.
    pub etag: String,
    /// Inode, modification time to the nanosecond and length: tells a
    /// rewritten file from the one cached when the validator (whole
    /// seconds) cannot.
    stamp: (u64, i64, i64, u64),
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The whole file, when small enough to keep.
    pub content: Option<Bytes>,
    /// Precompressed siblings (`x.br`, `x.zst`, `x.gz`), by [`Coding::index`].
    pub precompressed: [Option<Arc<FileEntry>>; 3],
    /// Compressed on the fly, by [`Coding::index`], once: concurrent first
    /// requests wait for the one compression running (single flight).
    /// `Some(None)` means it did not shrink, or the cache budget could not
    /// hold it: the file is then sent uncompressed rather than compressed
    /// again for every request.
    pub compressed: [tokio::sync::OnceCell<Option<Bytes>>; 3],
    /// Bytes of `compressed` counted against the cache budget.
    compressed_held: AtomicU64,
    /// The response headers of the file itself, built once.
    pub base_headers: HeaderMap,
}

/// Whether two entries for one path are the same file: the same inode,
/// nanosecond mtime and length, and the same precompressed siblings.
fn same_file(a: &FileEntry, b: &FileEntry) -> bool {
    a.stamp == b.stamp
        && a.precompressed
            .iter()
            .zip(&b.precompressed)
            .all(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => x.stamp == y.stamp,
                (None, None) => true,
                _ => false,
            })
}

impl Cached {
    fn held(&self) -> u64 {
        let compressed = match &self.lookup {
            Lookup::File(e) => e.compressed_held.load(Ordering::Relaxed),
            _ => 0,
        };
        self.content_bytes + compressed
    }
}

struct Cached {
    lookup: Lookup,
    checked: Instant,
    content_bytes: u64,
}

/// The open-file, metadata and small-content cache.
pub struct FileCache {
    shards: Vec<Mutex<HashMap<PathBuf, Cached>>>,
    hasher: std::collections::hash_map::RandomState,
    config: FilesConfig,
    /// Bytes of contents held now.
    content_bytes: AtomicU64,
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
    /// Lookups that went to the disk.
    pub misses: AtomicU64,
    /// On-the-fly compressions run.
    pub compressions: AtomicU64,
}

const SHARDS: usize = 16;

impl FileCache {
    /// An empty cache.
    pub fn new(config: FilesConfig) -> FileCache {
        FileCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            config,
            content_bytes: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            compressions: AtomicU64::new(0),
        }
    }

    /// The settings it was built with.
    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    /// Entries cached now.
    pub fn entries(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("shard").len())
            .sum()
    }

    /// Bytes of file contents (and compressed forms) held in memory.
    pub fn content_bytes(&self) -> u64 {
        self.content_bytes.load(Ordering::Relaxed)
    }

    fn shard(&self, key: &Path) -> &Mutex<HashMap<PathBuf, Cached>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The file a request path resolved to recently, if still fresh.
    pub fn lookup_target(&self, root: &Root, target: &str) -> Option<Arc<FileEntry>> {
        let shard = &root.targets[self.hasher.hash_one(target) as usize % SHARDS];
        let map = shard.read().expect("targets");
        let (entry, checked) = map.get(target)?;
        if checked.elapsed() < self.config.cache_valid {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Some(entry.clone())
        } else {
            None
        }
    }

    /// Remembers that a request path resolved to `entry`.
    pub fn remember_target(&self, root: &Root, target: &str, entry: Arc<FileEntry>) {
        let per_shard = (self.config.cache_entries / SHARDS).max(1);
        let shard = &root.targets[self.hasher.hash_one(target) as usize % SHARDS];
        let mut map = shard.write().expect("targets");
        if map.len() >= per_shard
            && !map.contains_key(target)
            && let Some(victim) = map.keys().next().cloned()
        {
            map.remove(&victim);
        }
        map.insert(target.to_string(), (entry, Instant::now()));
    }

    /// What `relative` under `root` is, from the cache when fresh.
    pub async fn lookup(self: &Arc<Self>, root: &Root, relative: &Path) -> Lookup {
        let key = root.canonical.join(relative);
        {
            let shard = self.shard(&key).lock().expect("shard");
            if let Some(c) = shard.get(&key)
                && c.checked.elapsed() < self.config.cache_valid
            {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return c.lookup.clone();
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let canonical_root = root.canonical.clone();
        let k = key.clone();
        let resolved = tokio::task::spawn_blocking(move || this.resolve(&canonical_root, &k)).await;
        let (lookup, content_bytes) = resolved.unwrap_or((Lookup::Missing, 0));
        self.insert(key, lookup, content_bytes)
    }

    /// Caches a fresh lookup and returns the one to use: when the file is
    /// unchanged since the entry already cached (a re-check after
    /// `cache_valid`, or concurrent misses), the old entry stays, with the
    /// compressed forms it has made or is making.
    fn insert(&self, key: PathBuf, lookup: Lookup, content_bytes: u64) -> Lookup {
        let per_shard = (self.config.cache_entries / SHARDS).max(1);
        let mut shard = self.shard(&key).lock().expect("shard");
        if let Some(old) = shard.get_mut(&key)
            && let (Lookup::File(was), Lookup::File(now)) = (&old.lookup, &lookup)
            && same_file(was, now)
        {
            old.checked = Instant::now();
            self.content_bytes
                .fetch_sub(content_bytes, Ordering::Relaxed);
            return old.lookup.clone();
        }
        if shard.len() >= per_shard && !shard.contains_key(&key) {
            // Evict an arbitrary entry: the map's order is random.
            if let Some(victim) = shard.keys().next().cloned()
                && let Some(old) = shard.remove(&victim)
            {
                self.content_bytes.fetch_sub(old.held(), Ordering::Relaxed);
            }
        }
        let cached = Cached {
            lookup,
            checked: Instant::now(),
            content_bytes,
        };
        let kept = cached.lookup.clone();
        if let Some(old) = shard.insert(key, cached) {
            self.content_bytes.fetch_sub(old.held(), Ordering::Relaxed);
        }
        kept
    }

    /// Reserves `n` bytes of the content budget.
    fn reserve(&self, n: u64) -> bool {
        let mut cur = self.content_bytes.load(Ordering::Relaxed);
        loop {
            if cur + n > self.config.cache_bytes {
                return false;
            }
            match self.content_bytes.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Counts `n` bytes of `entry`'s on-the-fly compressed output against
    /// the budget, if it has room; they are released with the entry.
    pub(crate) fn reserve_compressed(&self, entry: &FileEntry, n: u64) -> bool {
        let ok = self.reserve(n);
        if ok {
            entry.compressed_held.fetch_add(n, Ordering::Relaxed);
        }
        ok
    }

    /// Resolves a path on the disk (blocking). Returns the lookup and the
    /// content bytes it holds.
    fn resolve(&self, root: &Path, full: &Path) -> (Lookup, u64) {
        let canonical = match std::fs::canonicalize(full) {
            Ok(c) => c,
            Err(_) => return (Lookup::Missing, 0),
        };
        let Ok(inside) = canonical.strip_prefix(root) else {
            return (Lookup::Forbidden, 0);
        };
        if !self.config.hidden
            && inside.components().any(|c| {
                let s = c.as_os_str().to_string_lossy();
                s.starts_with('.') && s != ".well-known"
            })
        {
            return (Lookup::Missing, 0);
        }
        let meta = match std::fs::metadata(&canonical) {
            Ok(m) => m,
            Err(_) => return (Lookup::Missing, 0),
        };
        if meta.is_dir() {
            return (Lookup::Directory, 0);
        }
        if !meta.is_file() {
            return (Lookup::Forbidden, 0);
        }
        let name = canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content_type = crate::mime::content_type(&name);
        let mut held = 0;
        let Some(mut entry) = self.open_file(&canonical, content_type, &mut held) else {
            return (Lookup::Missing, 0);
        };
        if crate::mime::compressible(content_type) {
            for c in Coding::ALL {
                let mut sibling = canonical.as_os_str().to_owned();
                sibling.push(c.suffix());
                let sibling = PathBuf::from(sibling);
                let ok = std::fs::canonicalize(&sibling)
                    .ok()
                    .is_some_and(|p| p.starts_with(root) && p.is_file());
                if ok {
                    entry.precompressed[c.index()] = self
                        .open_file(&sibling, content_type, &mut held)
                        .map(Arc::new);
                }
            }
        }
        (Lookup::File(Arc::new(entry)), held)
    }

    fn open_file(
        &self,
        path: &Path,
        content_type: &'static str,
        held: &mut u64,
    ) -> Option<FileEntry> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let len = meta.len();
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let mtime_secs = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let content = if len <= self.config.cache_max_file && self.reserve(len) {
            use std::io::Read;
            let mut buf = Vec::with_capacity(len as usize);
            match (&file).take(len).read_to_end(&mut buf) {
                Ok(n) if n as u64 == len => {
                    *held += len;
                    Some(Bytes::from(buf))
                }
                _ => {
                    self.content_bytes.fetch_sub(len, Ordering::Relaxed);
                    None
                }
            }
        } else {
            None
        };
        let etag = format!("\"{mtime_secs:x}-{len:x}\"");
        let last_modified = httpdate::fmt_http_date(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(mtime_secs),
        );
        let mut base_headers = HeaderMap::with_capacity(8);
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        base_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        base_headers.insert(header::LAST_MODIFIED, value(&last_modified));
        base_headers.insert(header::ETAG, value(&etag));
        base_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if !self.config.cache_control.is_empty() {
            base_headers.insert(header::CACHE_CONTROL, value(&self.config.cache_control));
        }
        if crate::mime::compressible(content_type) && len >= self.config.compress_min {
            base_headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        let stamp = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.mtime(), meta.mtime_nsec(), len)
        };
        Some(FileEntry {
            stamp,
            file: Arc::new(file),
            len,
            mtime_secs,
            etag,
            content_type,
            content,
            precompressed: [None, None, None],
            compressed: Default::default(),
            compressed_held: AtomicU64::new(0),
            base_headers,
        })
    }
}
