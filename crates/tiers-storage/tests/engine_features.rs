//! Group commit, durability modes, the background writer, compression,
//! conflicts around DDL and hash entries, and the replication seam.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tiers_storage::vfs::OsVfs;
use tiers_storage::{Config, Durability, Engine, Error, JOURNAL_DIR, TreeKind};

fn config() -> Config {
    Config {
        page_size: 4096,
        cache_bytes: 256 * 4096,
        background_writer: false,
        ..Config::default()
    }
}

fn with_tree(engine: &Engine, name: &str, kind: TreeKind) {
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree(name, kind).unwrap();
    tx.commit().unwrap();
}

#[test]
fn concurrent_committers_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), config()).unwrap());
    with_tree(&engine, "t", TreeKind::BTree);
    let before = engine.metrics();
    std::thread::scope(|s| {
        for th in 0..16u32 {
            let engine = engine.clone();
            s.spawn(move || {
                for i in 0..40u32 {
                    let mut tx = engine.begin_write().unwrap();
                    tx.put("t", &(th * 1000 + i).to_be_bytes(), b"v").unwrap();
                    tx.commit().unwrap();
                }
            });
        }
    });
    let after = engine.metrics();
    let commits = after.journal_records - before.journal_records;
    let fsyncs = after.journal_fsyncs - before.journal_fsyncs;
    assert_eq!(commits, 640);
    assert!(
        fsyncs < commits,
        "{commits} commits took {fsyncs} fsyncs: no group commit"
    );
    let r = engine.begin_read();
    assert_eq!(r.tree("t").unwrap().unwrap().count, 640);
}

#[test]
fn relaxed_durability_acknowledges_before_fsync_and_keeps_whole_commits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        durability: Durability::Relaxed,
        background_writer: true,
        flush_interval: Duration::from_millis(10),
        ..config()
    };
    {
        let engine = Engine::open(dir.path(), cfg.clone()).unwrap();
        with_tree(&engine, "t", TreeKind::BTree);
        for i in 0..200u32 {
            let mut tx = engine.begin_write().unwrap();
            tx.put("t", &i.to_be_bytes(), b"v").unwrap();
            tx.commit().unwrap();
        }
        // Visible at once, before any fsync.
        assert_eq!(engine.begin_read().tree("t").unwrap().unwrap().count, 200);
        let m = engine.metrics();
        assert!(m.journal_fsyncs < 200, "{m:?}");
        engine.close().unwrap();
    }
    let engine = Engine::open(dir.path(), cfg).unwrap();
    assert_eq!(engine.begin_read().tree("t").unwrap().unwrap().count, 200);
}

#[test]
fn background_writer_flushes_and_checkpoints_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        background_writer: true,
        flush_interval: Duration::from_millis(10),
        checkpoint_journal_bytes: 64 * 1024,
        checkpoint_interval: Duration::from_millis(200),
        journal_segment_bytes: 64 * 1024,
        ..config()
    };
    let engine = Engine::open(dir.path(), cfg).unwrap();
    with_tree(&engine, "t", TreeKind::BTree);
    for i in 0..400u32 {
        let mut tx = engine.begin_write().unwrap();
        tx.put("t", &i.to_be_bytes(), &[1u8; 500]).unwrap();
        tx.commit().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = engine.metrics();
        if m.checkpoint_lsn >= m.last_lsn && m.pool_pages_dirty == 0 {
            assert!(m.checkpoints >= 2, "{m:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background writer never caught up (write failure: {:?}): {m:?}",
            engine.write_failure()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Old journal segments were removed after the checkpoints.
    let segments = std::fs::read_dir(dir.path().join(JOURNAL_DIR))
        .unwrap()
        .count();
    assert!(segments <= 2, "{segments} journal segments left");
}

#[test]
fn journal_compression_saves_bytes() {
    let run = |compress: bool| {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(
            dir.path(),
            Config {
                journal_compression: compress,
                ..config()
            },
        )
        .unwrap();
        with_tree(&engine, "t", TreeKind::BTree);
        for i in 0..50u32 {
            let mut tx = engine.begin_write().unwrap();
            for j in 0..20u32 {
                let row = format!(
                    "{{\"id\": {i}, \"j\": {j}, \"title\": \"a fairly repetitive row body\"}}"
                );
                tx.put("t", &(i * 100 + j).to_be_bytes(), row.as_bytes())
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        engine.metrics()
    };
    let plain = run(false);
    let packed = run(true);
    assert!(
        packed.journal_bytes * 2 < plain.journal_bytes,
        "{} vs {}",
        packed.journal_bytes,
        plain.journal_bytes
    );
    assert!(packed.journal_bytes_saved_by_compression > 0);
}

#[test]
fn ddl_conflicts_with_concurrent_writes_to_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    with_tree(&engine, "t", TreeKind::BTree);
    let mut writer = engine.begin_write().unwrap();
    writer.put("t", b"k", b"v").unwrap();
    let mut dropper = engine.begin_write().unwrap();
    dropper.drop_tree("t").unwrap();
    dropper.commit().unwrap();
    let err = writer.commit().unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref tree } if tree == "t"),
        "{err}"
    );
}

#[test]
fn hash_entries_conflict_per_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    with_tree(&engine, "h", TreeKind::Hash);
    let mut a = engine.begin_write().unwrap();
    let mut b = engine.begin_write().unwrap();
    a.hash_insert("h", b"author", b"row1").unwrap();
    b.hash_insert("h", b"author", b"row2").unwrap();
    a.commit().unwrap();
    b.commit().unwrap();
    let mut c = engine.begin_write().unwrap();
    let mut d = engine.begin_write().unwrap();
    c.hash_remove("h", b"author", b"row1").unwrap();
    d.hash_insert("h", b"author", b"row1").unwrap();
    c.commit().unwrap();
    assert!(matches!(d.commit(), Err(Error::Conflict { .. })));
    let mut v = engine.begin_read().hash_get("h", b"author").unwrap();
    v.sort();
    assert_eq!(v, vec![b"row2".to_vec()]);
}

#[test]
fn journal_records_replayed_on_another_engine_reproduce_the_data() {
    // The replication seam: a follower applies the leader's commit records.
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let leader = Engine::open(leader_dir.path(), config()).unwrap();
    with_tree(&leader, "t", TreeKind::BTree);
    with_tree(&leader, "h", TreeKind::Hash);
    for i in 0..100u32 {
        let mut tx = leader.begin_write().unwrap();
        tx.put("t", &i.to_be_bytes(), &vec![i as u8; (i as usize) * 97])
            .unwrap();
        tx.hash_insert("h", &(i % 5).to_be_bytes(), &i.to_be_bytes())
            .unwrap();
        if i % 3 == 0 {
            tx.delete("t", &(i / 2).to_be_bytes()).unwrap();
        }
        tx.commit().unwrap();
    }
    let follower = Engine::open(follower_dir.path(), config()).unwrap();
    tiers_storage::journal::scan(
        &OsVfs,
        &leader_dir.path().join(JOURNAL_DIR),
        false,
        |id, rec| follower.apply_record(id.lsn, rec),
    )
    .unwrap();
    let (a, b) = (leader.begin_read(), follower.begin_read());
    assert_eq!(a.lsn(), b.lsn());
    let all = |r: &tiers_storage::ReadTxn| -> Vec<(Vec<u8>, Vec<u8>)> {
        r.range("t", ..).unwrap().map(|e| e.unwrap()).collect()
    };
    assert_eq!(all(&a), all(&b));
    assert_eq!(
        a.hash_get("h", &3u32.to_be_bytes()).unwrap(),
        b.hash_get("h", &3u32.to_be_bytes()).unwrap()
    );
    // Records out of order are refused.
    let err = follower
        .apply_record(b.lsn() + 5, &tiers_storage::record::encode(&[]))
        .unwrap_err();
    assert!(matches!(err, Error::LsnOrder { .. }), "{err}");
}

/// A file system whose journal fsyncs take a while, to hold a commit in
/// the window between appending its record and its record becoming durable.
struct SlowJournalSync(OsVfs);

struct SlowFile(Arc<dyn tiers_storage::vfs::VfsFile>, bool);

impl tiers_storage::vfs::VfsFile for SlowFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_at(buf, offset)
    }
    fn sync(&self) -> std::io::Result<()> {
        if self.1 {
            std::thread::sleep(Duration::from_millis(300));
        }
        self.0.sync()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
}

impl tiers_storage::vfs::Vfs for SlowJournalSync {
    fn open(
        &self,
        path: &std::path::Path,
        create: bool,
    ) -> std::io::Result<Arc<dyn tiers_storage::vfs::VfsFile>> {
        let slow = path.to_string_lossy().ends_with(".wal");
        Ok(Arc::new(SlowFile(self.0.open(path, create)?, slow)))
    }
    fn remove(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.0.remove(path)
    }
    fn create_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn list(&self, dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        self.0.list(dir)
    }
    fn exists(&self, path: &std::path::Path) -> bool {
        self.0.exists(path)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        self.0.sync_dir(dir)
    }
}

#[test]
fn a_replicated_commit_still_in_its_fsync_conflicts_with_a_later_writer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open_with_vfs(dir.path(), config(), Arc::new(SlowJournalSync(OsVfs))).unwrap(),
    );
    with_tree(&engine, "t", TreeKind::BTree);
    let next = engine.begin_read().lsn() + 1;
    let record = tiers_storage::record::encode(&[tiers_storage::Op::Put {
        tree: "t".into(),
        key: b"balance".to_vec(),
        value: b"A".to_vec(),
    }]);
    let applier = {
        let engine = engine.clone();
        std::thread::spawn(move || engine.apply_record(next, &record))
    };
    // While the replicated commit waits for its fsync, a local transaction
    // starts from the older visible version and writes the same key.
    std::thread::sleep(Duration::from_millis(100));
    let mut tx = engine.begin_write().unwrap();
    assert_eq!(
        tx.snapshot_lsn(),
        next - 1,
        "the test needs the fsync window"
    );
    tx.put("t", b"balance", b"B").unwrap();
    let result = tx.commit();
    applier.join().unwrap().unwrap();
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
}
