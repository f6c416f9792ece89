//! Injected faults: each is detected and reported clearly, writes stop where
//! durability is in doubt, and nothing ever yields silently wrong data.

use std::path::Path;
use std::sync::Arc;

use tiers_storage::faults::{FaultPlan, FaultyVfs, SimVfs};
use tiers_storage::vfs::Vfs;
use tiers_storage::{Config, Engine, Error, TreeKind};

mod support;
use support::block_on;

const DIR: &str = "/db";

fn config() -> Config {
    Config {
        page_size: 4096,
        cache_bytes: 16 * 4096,
        background_writer: false,
        ..Config::default()
    }
}

fn open(vfs: &Arc<dyn Vfs>) -> tiers_storage::Result<Engine> {
    Engine::open_with_vfs(Path::new(DIR), config(), vfs.clone())
}

/// A SimVfs under a FaultyVfs, with tree "t" holding keys 0..n committed.
fn setup(n: u32) -> (SimVfs, Arc<dyn Vfs>, Arc<FaultPlan>, Engine) {
    let sim = SimVfs::new();
    let (faulty, plan) = FaultyVfs::new(Arc::new(sim.clone()));
    let vfs: Arc<dyn Vfs> = Arc::new(faulty);
    let engine = open(&vfs).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    for i in 0..n {
        tx.put("t", &i.to_be_bytes(), &[i as u8; 300]).unwrap();
    }
    tx.commit().unwrap();
    (sim, vfs, plan, engine)
}

fn count(engine: &Engine) -> usize {
    let r = engine.begin_read();
    let entries: Vec<_> = r.range("t", ..).unwrap().map(|e| e.unwrap()).collect();
    entries.len()
}

fn put(engine: &Engine, i: u32) -> tiers_storage::Result<u64> {
    let mut tx = engine.begin_write()?;
    tx.put("t", &i.to_be_bytes(), &[i as u8; 300])?;
    tx.commit()
}

/// A commit awaited asynchronously (the journal flusher fsyncs for it)
/// whose fsync fails is reported as failed, never as durable, and is
/// never visible; the engine then refuses writes.
#[test]
fn awaited_commit_whose_fsync_fails_is_an_error_not_an_acknowledgement() {
    let (_sim, _vfs, plan, engine) = setup(10);
    plan.fail_sync(0, Some("journal".into()));
    let mut tx = engine.begin_write().unwrap();
    tx.put("t", &5000u32.to_be_bytes(), b"v").unwrap();
    let pending = tx.commit_pending().unwrap();
    let err = block_on(pending).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(
        engine
            .begin_read()
            .get("t", &5000u32.to_be_bytes())
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        engine.begin_write().err(),
        Some(Error::Poisoned(_))
    ));
    assert_eq!(count(&engine), 10);
}

#[test]
fn journal_fsync_failure_stops_writes_and_restart_recovers() {
    let (sim, vfs, plan, engine) = setup(100);
    plan.fail_sync(0, Some("journal".into()));
    let err = put(&engine, 1000).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(err.to_string().contains("fsync"), "{err}");
    // Later writes are refused; reads keep working on durable data.
    let again = engine.begin_write().err().unwrap();
    assert!(matches!(again, Error::Poisoned(_)), "{again}");
    assert_eq!(count(&engine), 100);
    assert!(
        engine
            .begin_read()
            .get("t", &1000u32.to_be_bytes())
            .unwrap()
            .is_none()
    );
    drop(engine);
    plan.clear();
    sim.crash(1);
    let engine = open(&vfs).unwrap();
    let n = count(&engine);
    assert!(n == 100 || n == 101, "recovered {n} keys");
    put(&engine, 2000).unwrap();
}

#[test]
fn data_fsync_failure_during_checkpoint_poisons_and_recovers() {
    let (sim, vfs, plan, engine) = setup(300);
    plan.fail_sync(0, Some("data.tdb".into()));
    let err = engine.checkpoint().unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(put(&engine, 5000).is_err());
    drop(engine);
    plan.clear();
    sim.crash(2);
    let engine = open(&vfs).unwrap();
    assert_eq!(count(&engine), 300);
}

#[test]
fn torn_journal_write_is_cut_on_restart() {
    let (sim, vfs, plan, engine) = setup(50);
    put(&engine, 51).unwrap();
    plan.torn_write_next(Some("journal".into()));
    let big = vec![9u8; 3000];
    let mut tx = engine.begin_write().unwrap();
    for i in 100..120u32 {
        tx.put("t", &i.to_be_bytes(), &big).unwrap();
    }
    let err = tx.commit().unwrap_err();
    assert!(err.to_string().contains("torn"), "{err}");
    drop(engine);
    plan.clear();
    sim.crash_clean();
    let report = tiers_storage::verify::verify_with(Path::new(DIR), vfs.clone()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let engine = open(&vfs).unwrap();
    // The acknowledged commits are there; the torn one is wholly absent.
    assert_eq!(count(&engine), 51);
    put(&engine, 52).unwrap();
}

#[test]
fn short_write_and_enospc_on_the_data_file_are_reported_and_retried() {
    let (_sim, _vfs, plan, engine) = setup(400);
    plan.short_write_next(Some("data.tdb".into()));
    let err = engine.checkpoint().unwrap_err();
    assert!(err.to_string().contains("short write"), "{err}");
    // Page write-back failures do not endanger durability (the journal has
    // everything), so commits continue and a later checkpoint succeeds.
    put(&engine, 401).unwrap();
    plan.enospc_after_bytes(0, Some("data.tdb".into()));
    let err = engine.checkpoint().unwrap_err();
    assert!(
        err.to_string().contains("No space left") || err.to_string().contains("os error 28"),
        "{err}"
    );
    put(&engine, 402).unwrap();
    plan.clear();
    engine.checkpoint().unwrap();
    assert_eq!(count(&engine), 402);
}

#[test]
fn enospc_on_the_journal_refuses_the_commit() {
    let (sim, vfs, plan, engine) = setup(10);
    plan.enospc_after_bytes(0, Some("journal".into()));
    let err = put(&engine, 11).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    drop(engine);
    plan.clear();
    sim.crash(5);
    let engine = open(&vfs).unwrap();
    assert_eq!(count(&engine), 10);
}

#[test]
fn flipped_bit_in_a_page_is_a_checksum_error_never_data() {
    let (sim, vfs, _plan, engine) = setup(2000);
    engine.close().unwrap();
    // Find a leaf page holding data and flip one bit in it.
    let data = sim.read_file(Path::new("/db/data.tdb")).unwrap();
    let page = (2..data.len() / 4096)
        .find(|p| data[p * 4096 + 20] == 3)
        .expect("a leaf page");
    sim.corrupt(Path::new("/db/data.tdb"), (page * 4096 + 1000) as u64, 0x04)
        .unwrap();
    let report = tiers_storage::verify::verify_with(Path::new(DIR), vfs.clone()).unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("page {page}")) && p.contains("checksum")),
        "{:?}",
        report.problems
    );
    let engine = open(&vfs).unwrap();
    let r = engine.begin_read();
    let mut errors = 0;
    for i in 0..2000u32 {
        match r.get("t", &i.to_be_bytes()) {
            Ok(Some(v)) => assert_eq!(v, vec![i as u8; 300]),
            Ok(None) => panic!("key {i} silently missing"),
            Err(e) => {
                assert!(matches!(e, Error::PageChecksum { .. }), "{e}");
                assert!(e.to_string().contains("data.tdb"), "{e}");
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "the corrupt page was never read");
}

#[test]
fn flipped_bit_on_read_is_detected() {
    let (_sim, vfs, plan, engine) = setup(2000);
    engine.close().unwrap();
    plan.flip_bit_on_read(Some("data.tdb".into()), 4096 * 5 + 77, 3);
    let engine = open(&vfs).unwrap();
    let r = engine.begin_read();
    let results: Vec<_> = (0..2000u32).map(|i| r.get("t", &i.to_be_bytes())).collect();
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(Error::PageChecksum { page: 5, .. })))
    );
    for (i, res) in results.iter().enumerate() {
        if let Ok(v) = res {
            assert_eq!(v.as_deref(), Some(&[i as u8; 300][..]));
        }
    }
}

#[test]
fn damaged_journal_record_in_the_middle_is_corruption_not_a_torn_tail() {
    let (sim, vfs, _plan, engine) = setup(10);
    for i in 10..40 {
        put(&engine, i).unwrap();
    }
    // Leave the records in the journal: crash instead of a clean close.
    sim.crash_clean();
    drop(engine);
    let seg = sim
        .file_names()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".wal") && sim.read_file(p).unwrap().len() > 1000)
        .expect("a journal segment with records");
    sim.corrupt(&seg, 200, 0x01).unwrap();
    let err = open(&vfs)
        .err()
        .expect("open must refuse a damaged journal");
    assert!(matches!(err, Error::JournalCorrupt { .. }), "{err}");
    assert!(err.to_string().contains(".wal"), "{err}");
}
