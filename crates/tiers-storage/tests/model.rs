//! Property tests: the B+tree and the hash index against `BTreeMap` models,
//! over random operation sequences with commits, rollbacks, clean reopens and
//! simulated power cuts (every write not yet fsynced may be lost or torn).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use tiers_storage::faults::SimVfs;
use tiers_storage::{Config, Engine, TreeKind};

#[derive(Debug, Clone)]
enum Step {
    Put(u16, usize),
    Delete(u16),
    /// A read inside the transaction, of its own writes or the snapshot's.
    Get(u16),
    Savepoint,
    RollbackToSavepoint,
    HashInsert(u8, u16),
    HashRemove(u8, u16),
    DeleteRange(u16, u16),
    Commit,
    Rollback,
    Checkpoint,
    Reopen,
    Crash(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        30 => (any::<u16>(), prop_oneof![8 => 0usize..64, 1 => 500usize..3000, 1 => 5000usize..20000])
            .prop_map(|(k, n)| Step::Put(k % 600, n)),
        10 => any::<u16>().prop_map(|k| Step::Delete(k % 600)),
        10 => any::<u16>().prop_map(|k| Step::Get(k % 600)),
        2 => Just(Step::Savepoint),
        2 => Just(Step::RollbackToSavepoint),
        10 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Step::HashInsert(k % 16, v % 300)),
        4 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Step::HashRemove(k % 16, v % 300)),
        2 => (any::<u16>(), 1u16..200).prop_map(|(k, n)| Step::DeleteRange(k % 600, n)),
        12 => Just(Step::Commit),
        2 => Just(Step::Rollback),
        2 => Just(Step::Checkpoint),
        2 => Just(Step::Reopen),
        3 => any::<u64>().prop_map(Step::Crash),
    ]
}

fn key(k: u16) -> Vec<u8> {
    // Keys of varied length sharing prefixes, so separators get truncated.
    let mut v = format!("k{:05}", k).into_bytes();
    v.extend(std::iter::repeat_n(b'x', (k % 7) as usize * 9));
    v
}

fn value(k: u16, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u16).wrapping_mul(31).wrapping_add(k) as u8)
        .collect()
}

fn config() -> Config {
    Config {
        page_size: 4096,
        cache_bytes: 16 * 4096,
        background_writer: false,
        journal_segment_bytes: 64 * 1024,
        journal_compression: true,
        ..Config::default()
    }
}

fn open(vfs: &SimVfs) -> Engine {
    Engine::open_with_vfs(Path::new("/db"), config(), Arc::new(vfs.clone())).unwrap()
}

type HashModel = BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>;

fn check(engine: &Engine, btree: &BTreeMap<Vec<u8>, Vec<u8>>, hash: &HashModel) {
    let r = engine.begin_read();
    let all: Vec<(Vec<u8>, Vec<u8>)> = r.range("t", ..).unwrap().map(|e| e.unwrap()).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = btree.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.len(), want.len());
    assert!(all == want, "forward scan differs from the model");
    let mut back: Vec<(Vec<u8>, Vec<u8>)> =
        r.range_rev("t", ..).unwrap().map(|e| e.unwrap()).collect();
    back.reverse();
    assert!(back == want, "reverse scan differs from the model");
    for k in (0..600u16).step_by(37) {
        assert_eq!(r.get("t", &key(k)).unwrap(), btree.get(&key(k)).cloned());
    }
    for hk in 0..16u8 {
        let got: BTreeSet<Vec<u8>> = r.hash_get("h", &[hk]).unwrap().into_iter().collect();
        let want = hash.get(&vec![hk]).cloned().unwrap_or_default();
        assert_eq!(got, want, "hash key {hk}");
    }
    assert_eq!(r.tree("t").unwrap().unwrap().count, btree.len() as u64);
}

fn run(steps: Vec<Step>) {
    let vfs = SimVfs::new();
    let mut engine = open(&vfs);
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.create_tree("h", TreeKind::Hash).unwrap();
    tx.commit().unwrap();
    let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut hash: HashModel = BTreeMap::new();
    let mut pending_b = committed.clone();
    let mut pending_h = hash.clone();
    let mut tx = Some(engine.begin_write().unwrap());
    // The transaction's savepoint, with the model's state there.
    let mut savepoint = None;
    for step in steps {
        if matches!(
            step,
            Step::Commit | Step::Rollback | Step::Reopen | Step::Crash(_)
        ) {
            savepoint = None;
        }
        match step {
            Step::Get(k) => {
                let got = tx.as_ref().unwrap().get("t", &key(k)).unwrap();
                assert_eq!(
                    got.as_ref(),
                    pending_b.get(&key(k)),
                    "in-transaction get of {k}"
                );
            }
            Step::Savepoint => {
                let sp = tx.as_ref().unwrap().savepoint();
                savepoint = Some((sp, pending_b.clone(), pending_h.clone()));
            }
            Step::RollbackToSavepoint => {
                if let Some((sp, b, h)) = savepoint.take() {
                    tx.as_mut().unwrap().rollback_to(sp);
                    (pending_b, pending_h) = (b, h);
                }
            }
            Step::Put(k, n) => {
                tx.as_mut()
                    .unwrap()
                    .put("t", &key(k), &value(k, n))
                    .unwrap();
                pending_b.insert(key(k), value(k, n));
            }
            Step::Delete(k) => {
                tx.as_mut().unwrap().delete("t", &key(k)).unwrap();
                pending_b.remove(&key(k));
            }
            Step::DeleteRange(k, n) => {
                let t = tx.as_mut().unwrap();
                let lo = key(k);
                let hi = key(k.saturating_add(n));
                let doomed: Vec<Vec<u8>> = t
                    .range("t", (Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))
                    .unwrap()
                    .map(|e| e.unwrap().0)
                    .collect();
                let want: Vec<Vec<u8>> = pending_b
                    .range(lo.clone()..hi.clone())
                    .map(|(k, _)| k.clone())
                    .collect();
                assert_eq!(doomed, want, "in-transaction range scan differs");
                for d in doomed {
                    t.delete("t", &d).unwrap();
                    pending_b.remove(&d);
                }
            }
            Step::HashInsert(k, v) => {
                tx.as_mut()
                    .unwrap()
                    .hash_insert("h", &[k], &v.to_be_bytes())
                    .unwrap();
                pending_h
                    .entry(vec![k])
                    .or_default()
                    .insert(v.to_be_bytes().to_vec());
            }
            Step::HashRemove(k, v) => {
                tx.as_mut()
                    .unwrap()
                    .hash_remove("h", &[k], &v.to_be_bytes())
                    .unwrap();
                if let Some(set) = pending_h.get_mut(&vec![k]) {
                    set.remove(&v.to_be_bytes().to_vec());
                    if set.is_empty() {
                        pending_h.remove(&vec![k]);
                    }
                }
            }
            Step::Commit => {
                tx.take().unwrap().commit().unwrap();
                committed = pending_b.clone();
                hash = pending_h.clone();
                check(&engine, &committed, &hash);
                tx = Some(engine.begin_write().unwrap());
            }
            Step::Rollback => {
                tx.take().unwrap().rollback();
                pending_b = committed.clone();
                pending_h = hash.clone();
                tx = Some(engine.begin_write().unwrap());
            }
            Step::Checkpoint => {
                engine.checkpoint().unwrap();
            }
            Step::Reopen | Step::Crash(_) => {
                drop(tx.take());
                if let Step::Crash(seed) = step {
                    // Power cut first: the engine's own shutdown then fails harmlessly.
                    vfs.crash(seed);
                }
                drop(engine);
                engine = open(&vfs);
                pending_b = committed.clone();
                pending_h = hash.clone();
                check(&engine, &committed, &hash);
                let report =
                    tiers_storage::verify::verify_with(Path::new("/db"), Arc::new(vfs.clone()))
                        .unwrap();
                assert!(report.ok(), "{:?}", report.problems);
                tx = Some(engine.begin_write().unwrap());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model_through_commits_reopens_and_crashes(steps in prop::collection::vec(step(), 1..250)) {
        run(steps);
    }
}

#[test]
fn long_sequential_and_random_workload_matches_model() {
    // A deterministic larger run: deep trees, many splits and merges.
    let mut steps = Vec::new();
    for i in 0..3000u16 {
        steps.push(Step::Put(i % 600, (i as usize * 7) % 90));
        if i % 50 == 49 {
            steps.push(Step::Commit);
        }
        if i % 400 == 399 {
            steps.push(Step::Crash(i as u64));
        }
    }
    for i in 0..600u16 {
        if i % 3 != 0 {
            steps.push(Step::Delete(i));
        }
        if i % 100 == 99 {
            steps.push(Step::Commit);
        }
    }
    steps.push(Step::Commit);
    steps.push(Step::Reopen);
    run(steps);
}
