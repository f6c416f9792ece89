//! End-to-end behaviour of the engine through its public API.

use std::ops::Bound;

use tiers_storage::{Config, Engine, Error, TreeKind};

mod support;
use support::block_on;

fn config() -> Config {
    Config {
        page_size: 4096,
        cache_bytes: 256 * 4096,
        background_writer: false,
        ..Config::default()
    }
}

fn collect(
    it: impl Iterator<Item = tiers_storage::Result<(Vec<u8>, Vec<u8>)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|e| e.unwrap()).collect()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

#[test]
fn writes_survive_reopen_and_ranges_scan_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), config()).unwrap();
        let mut tx = engine.begin_write().unwrap();
        tx.create_tree("t", TreeKind::BTree).unwrap();
        for i in 0..5000 {
            tx.put("t", &key(i), format!("value-{i}").as_bytes())
                .unwrap();
        }
        tx.commit().unwrap();
        let mut tx = engine.begin_write().unwrap();
        for i in (0..5000).step_by(2) {
            tx.delete("t", &key(i)).unwrap();
        }
        tx.commit().unwrap();
    }
    let engine = Engine::open(dir.path(), config()).unwrap();
    let r = engine.begin_read();
    assert_eq!(r.get("t", &key(3)).unwrap(), Some(b"value-3".to_vec()));
    assert_eq!(r.get("t", &key(4)).unwrap(), None);
    assert_eq!(r.tree("t").unwrap().unwrap().count, 2500);
    let lo = key(100);
    let hi = key(120);
    let fwd = collect(
        r.range("t", (Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))
            .unwrap(),
    );
    let keys: Vec<_> = fwd.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        (100..120)
            .filter(|i| i % 2 == 1)
            .map(key)
            .collect::<Vec<_>>()
    );
    let back = collect(
        r.range_rev("t", (Bound::Excluded(&lo[..]), Bound::Included(&hi[..])))
            .unwrap(),
    );
    let keys: Vec<_> = back.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        (101..=120)
            .rev()
            .filter(|i| i % 2 == 1)
            .map(key)
            .collect::<Vec<_>>()
    );
    assert_eq!(collect(r.range("t", ..).unwrap()).len(), 2500);
    assert_eq!(collect(r.range_rev("t", ..).unwrap()).len(), 2500);
}

#[test]
fn large_values_use_overflow_pages_and_deleted_space_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("blobs", TreeKind::BTree).unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for i in 0..20 {
        tx.put("blobs", &key(i), &big).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(
        engine.begin_read().get("blobs", &key(7)).unwrap(),
        Some(big.clone())
    );
    engine.checkpoint().unwrap();
    let pages_full = engine.metrics().file_pages;
    for round in 0..3 {
        let mut tx = engine.begin_write().unwrap();
        for i in 0..20 {
            tx.delete("blobs", &key(i)).unwrap();
        }
        tx.commit().unwrap();
        engine.checkpoint().unwrap();
        let mut tx = engine.begin_write().unwrap();
        for i in 0..20 {
            tx.put("blobs", &key(i), &big).unwrap();
        }
        tx.commit().unwrap();
        engine.checkpoint().unwrap();
        let pages = engine.metrics().file_pages;
        assert!(
            pages <= pages_full * 2 + 16,
            "round {round}: file grew to {pages} pages from {pages_full}"
        );
    }
    assert_eq!(
        engine.begin_read().get("blobs", &key(19)).unwrap(),
        Some(big)
    );
}

#[test]
fn snapshots_are_isolated_from_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.put("t", b"a", b"1").unwrap();
    tx.commit().unwrap();
    let old = engine.begin_read();
    for i in 0..200 {
        let mut tx = engine.begin_write().unwrap();
        tx.put("t", b"a", format!("{i}").as_bytes()).unwrap();
        tx.put("t", &key(i), b"x").unwrap();
        tx.commit().unwrap();
    }
    engine.checkpoint().unwrap();
    assert_eq!(old.get("t", b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(collect(old.range("t", ..).unwrap()).len(), 1);
    assert_eq!(
        engine.begin_read().get("t", b"a").unwrap(),
        Some(b"199".to_vec())
    );
}

#[test]
fn first_committer_wins_and_rollback_discards() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.commit().unwrap();
    let mut a = engine.begin_write().unwrap();
    let mut b = engine.begin_write().unwrap();
    a.put("t", b"k", b"a").unwrap();
    b.put("t", b"k", b"b").unwrap();
    b.put("t", b"other", b"b").unwrap();
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    // Disjoint keys do not conflict.
    let mut c = engine.begin_write().unwrap();
    let mut d = engine.begin_write().unwrap();
    c.put("t", b"c", b"1").unwrap();
    d.put("t", b"d", b"1").unwrap();
    c.commit().unwrap();
    d.commit().unwrap();
    let mut e = engine.begin_write().unwrap();
    e.put("t", b"gone", b"1").unwrap();
    assert_eq!(e.get("t", b"gone").unwrap(), Some(b"1".to_vec()));
    e.rollback();
    let r = engine.begin_read();
    assert_eq!(r.get("t", b"k").unwrap(), Some(b"a".to_vec()));
    assert_eq!(r.get("t", b"gone").unwrap(), None);
    assert_eq!(r.get("t", b"other").unwrap(), None);
    assert_eq!(engine.metrics().conflicts, 1);
}

#[test]
fn hash_index_holds_many_values_per_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), config()).unwrap();
        let mut tx = engine.begin_write().unwrap();
        tx.create_tree("by_author", TreeKind::Hash).unwrap();
        for i in 0..3000u32 {
            let author = format!("author{}", i % 50);
            tx.hash_insert("by_author", author.as_bytes(), &i.to_be_bytes())
                .unwrap();
        }
        // Many values under one key force bucket chains.
        for i in 0..600u32 {
            tx.hash_insert("by_author", b"prolific", &i.to_be_bytes())
                .unwrap();
        }
        tx.commit().unwrap();
        let mut tx = engine.begin_write().unwrap();
        tx.hash_remove("by_author", b"author7", &7u32.to_be_bytes())
            .unwrap();
        assert_eq!(tx.hash_get("by_author", b"author7").unwrap().len(), 59);
        tx.commit().unwrap();
    }
    let engine = Engine::open(dir.path(), config()).unwrap();
    let r = engine.begin_read();
    let mut v = r.hash_get("by_author", b"author3").unwrap();
    v.sort();
    let want: Vec<Vec<u8>> = (0..3000u32)
        .filter(|i| i % 50 == 3)
        .map(|i| i.to_be_bytes().to_vec())
        .collect();
    assert_eq!(v, want);
    assert_eq!(r.hash_get("by_author", b"author7").unwrap().len(), 59);
    assert_eq!(r.hash_get("by_author", b"prolific").unwrap().len(), 600);
    assert!(r.hash_get("by_author", b"nobody").unwrap().is_empty());
    assert_eq!(r.tree("by_author").unwrap().unwrap().count, 3599);
    let report = tiers_storage::verify::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// One key with values spread over a long chain of bucket pages (added
/// both with and without the search for an existing pair): each
/// insert and remove commits on its own (so each copies pages), values
/// leave from the chain's head, middle and tail, pages emptied behind the
/// head are unlinked, and a pair inserted twice is held once.
#[test]
fn hash_chain_edits_in_place_keep_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("h", TreeKind::Hash).unwrap();
    tx.hash_insert("h", b"other", b"x").unwrap();
    tx.commit().unwrap();
    let mut want: std::collections::BTreeSet<Vec<u8>> = Default::default();
    for i in 0..2000u32 {
        let mut tx = engine.begin_write().unwrap();
        // `hash_add` (no search: the caller knows the pair is new) and
        // `hash_insert` build the same chain.
        if i % 2 == 1 {
            tx.hash_add("h", b"same", &i.to_be_bytes()).unwrap();
        } else {
            tx.hash_insert("h", b"same", &i.to_be_bytes()).unwrap();
        }
        tx.commit().unwrap();
        want.insert(i.to_be_bytes().to_vec());
    }
    // Inserting pairs already present changes nothing.
    let mut tx = engine.begin_write().unwrap();
    for i in [0u32, 777, 1999] {
        tx.hash_insert("h", b"same", &i.to_be_bytes()).unwrap();
    }
    tx.commit().unwrap();
    // Newest values sit in the head page, oldest at the tail; remove a run
    // from the middle (emptying whole pages), then some from each end.
    let removed: Vec<u32> = (600..1100).chain([0, 1, 2, 1999, 1998]).collect();
    for (n, i) in removed.iter().enumerate() {
        let mut tx = engine.begin_write().unwrap();
        tx.hash_remove("h", b"same", &i.to_be_bytes()).unwrap();
        // Removing what is absent is harmless.
        tx.hash_remove("h", b"same", &5000u32.to_be_bytes())
            .unwrap();
        tx.commit().unwrap();
        want.remove(i.to_be_bytes().as_slice());
        if n % 97 == 0 {
            let got: std::collections::BTreeSet<Vec<u8>> = engine
                .begin_read()
                .hash_get("h", b"same")
                .unwrap()
                .into_iter()
                .collect();
            assert_eq!(got, want, "after removing {i}");
        }
    }
    drop(engine);
    let engine = Engine::open(dir.path(), config()).unwrap();
    let r = engine.begin_read();
    let got: std::collections::BTreeSet<Vec<u8>> =
        r.hash_get("h", b"same").unwrap().into_iter().collect();
    assert_eq!(got, want);
    assert_eq!(r.hash_get("h", b"other").unwrap(), vec![b"x".to_vec()]);
    assert_eq!(r.tree("h").unwrap().unwrap().count, want.len() as u64 + 1);
    drop(r);
    drop(engine);
    let report = tiers_storage::verify::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// Pending commits: invisible to others until durable, awaited without a
/// thread of their own (the journal flusher fsyncs), sharing fsyncs when
/// many are in flight, and durable across a reopen once awaited.
#[test]
fn pending_commits_become_durable_and_visible_when_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(Engine::open(dir.path(), config()).unwrap());
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.commit().unwrap();
    let before = engine.metrics();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    let mut tx = engine.begin_write().unwrap();
                    let key = format!("{t}-{i}");
                    tx.put("t", key.as_bytes(), b"v").unwrap();
                    let pending = tx.commit_pending().unwrap();
                    let lsn = pending.lsn();
                    assert_eq!(block_on(pending).unwrap(), lsn);
                    // Awaited: visible to a new snapshot.
                    assert!(
                        engine
                            .begin_read()
                            .get("t", key.as_bytes())
                            .unwrap()
                            .is_some()
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let after = engine.metrics();
    assert_eq!(after.commits - before.commits, 400);
    assert!(after.journal_fsyncs > before.journal_fsyncs);
    // An empty transaction has nothing to wait for.
    let empty = engine.begin_write().unwrap().commit_pending().unwrap();
    block_on(empty).unwrap();
    // The blocking wait works too.
    let mut tx = engine.begin_write().unwrap();
    tx.put("t", b"blocking", b"v").unwrap();
    tx.commit_pending().unwrap().wait().unwrap();
    drop(engine);
    let engine = Engine::open(dir.path(), config()).unwrap();
    let r = engine.begin_read();
    let all: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Unbounded, Bound::Unbounded);
    assert_eq!(r.range("t", all).unwrap().count(), 401);
}

#[test]
fn wrong_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    assert!(matches!(
        tx.put("missing", b"k", b"v"),
        Err(Error::NoSuchTree(_))
    ));
    tx.create_tree("h", TreeKind::Hash).unwrap();
    assert!(matches!(
        tx.put("h", b"k", b"v"),
        Err(Error::WrongTreeKind { .. })
    ));
    tx.create_tree("t", TreeKind::BTree).unwrap();
    assert!(matches!(
        tx.create_tree("t", TreeKind::BTree),
        Err(Error::TreeExists(_))
    ));
    let long = vec![1u8; engine.max_key_len() + 1];
    let err = tx.put("t", &long, b"v").unwrap_err();
    assert!(err.to_string().contains("key is"), "{err}");
    tx.commit().unwrap();
    // A second process (here: a second open) is refused while the first holds the directory.
    let err = Engine::open(dir.path(), config()).err().unwrap();
    assert!(matches!(err, Error::Locked(_)), "{err}");
    let bad = Config {
        page_size: 3000,
        ..config()
    };
    assert!(Engine::open(tempfile::tempdir().unwrap().path(), bad).is_err());
}

#[test]
fn drop_tree_frees_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    for i in 0..3000 {
        tx.put("t", &key(i), &[7u8; 100]).unwrap();
    }
    tx.commit().unwrap();
    engine.checkpoint().unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.drop_tree("t").unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.put("t", b"only", b"1").unwrap();
    tx.commit().unwrap();
    engine.checkpoint().unwrap();
    engine.checkpoint().unwrap();
    let m = engine.metrics();
    assert!(m.free_pages > 50, "{m:?}");
    let r = engine.begin_read();
    assert_eq!(collect(r.range("t", ..).unwrap()).len(), 1);
    drop(r);
    drop(engine);
    let report = tiers_storage::verify::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[test]
fn old_snapshots_survive_checkpoints_and_eviction_in_a_tiny_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        cache_bytes: 16 * 4096,
        ..config()
    };
    let engine = Engine::open(dir.path(), cfg).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    for i in 0..2000 {
        tx.put("t", &key(i), format!("v0-{i}").as_bytes()).unwrap();
    }
    tx.commit().unwrap();
    let old = engine.begin_read();
    for round in 1..=5 {
        for i in (0..2000).step_by(7) {
            let mut tx = engine.begin_write().unwrap();
            tx.put("t", &key(i), format!("v{round}-{i}").as_bytes())
                .unwrap();
            tx.commit().unwrap();
        }
        engine.checkpoint().unwrap();
    }
    // Every page the old snapshot needs is still readable, intact.
    let all = collect(old.range("t", ..).unwrap());
    assert_eq!(all.len(), 2000);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k, &key(i as u32));
        assert_eq!(v, format!("v0-{i}").as_bytes());
    }
    drop(old);
    let new = engine.begin_read();
    assert_eq!(new.get("t", &key(7)).unwrap(), Some(b"v5-7".to_vec()));
}

#[test]
fn every_page_size_from_4_to_64_kib_works_and_is_recorded() {
    for page_size in [4096usize, 16384, 65536] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            page_size,
            cache_bytes: 64 * page_size,
            ..config()
        };
        {
            let engine = Engine::open(dir.path(), cfg.clone()).unwrap();
            let mut tx = engine.begin_write().unwrap();
            tx.create_tree("t", TreeKind::BTree).unwrap();
            tx.create_tree("h", TreeKind::Hash).unwrap();
            for i in 0..4000u32 {
                let v = vec![i as u8; (i as usize * 13) % 3000];
                tx.put("t", &key(i), &v).unwrap();
                tx.hash_insert("h", &(i % 97).to_be_bytes(), &i.to_be_bytes())
                    .unwrap();
            }
            tx.commit().unwrap();
            let mut tx = engine.begin_write().unwrap();
            for i in (0..4000u32).step_by(3) {
                tx.delete("t", &key(i)).unwrap();
            }
            tx.commit().unwrap();
        }
        // Reopen asking for another page size: the file's own size wins.
        let engine = Engine::open(
            dir.path(),
            Config {
                page_size: 8192,
                ..cfg
            },
        )
        .unwrap();
        assert_eq!(engine.page_size(), page_size);
        let r = engine.begin_read();
        assert_eq!(r.tree("t").unwrap().unwrap().count, 4000 - 1334);
        assert_eq!(r.get("t", &key(400)).unwrap().unwrap().len(), 2200);
        assert_eq!(r.hash_get("h", &5u32.to_be_bytes()).unwrap().len(), 42);
        drop(r);
        drop(engine);
        let report = tiers_storage::verify::verify(dir.path()).unwrap();
        assert!(report.ok(), "page size {page_size}: {:?}", report.problems);
        assert_eq!(report.meta.page_size, page_size);
    }
}

#[test]
fn rollback_to_a_savepoint_undoes_only_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.put("t", b"a", b"1").unwrap();
    let sp = tx.savepoint();
    tx.put("t", b"a", b"2").unwrap();
    tx.put("t", b"b", b"2").unwrap();
    tx.create_tree("u", TreeKind::Hash).unwrap();
    assert_eq!(tx.get("t", b"a").unwrap(), Some(b"2".to_vec()));
    tx.rollback_to(sp);
    assert_eq!(tx.get("t", b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(tx.get("t", b"b").unwrap(), None);
    assert!(matches!(tx.hash_get("u", b"k"), Err(Error::NoSuchTree(_))));
    let sp2 = tx.savepoint();
    tx.drop_tree("t").unwrap();
    assert!(tx.get("t", b"a").is_err());
    tx.rollback_to(sp2);
    tx.put("t", b"c", b"3").unwrap();
    tx.commit().unwrap();
    let r = engine.begin_read();
    let all = collect(r.range("t", ..).unwrap());
    assert_eq!(
        all,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );
    assert!(r.tree("u").unwrap().is_none());
}

#[test]
fn inverted_and_empty_ranges_are_empty_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.put("t", b"m", b"1").unwrap();
    let (z, a) = (&b"z"[..], &b"a"[..]);
    assert_eq!(
        collect(
            tx.range("t", (Bound::Included(z), Bound::Included(a)))
                .unwrap()
        )
        .len(),
        0
    );
    assert_eq!(
        collect(
            tx.range_rev("t", (Bound::Excluded(a), Bound::Excluded(a)))
                .unwrap()
        )
        .len(),
        0
    );
    assert_eq!(
        collect(
            tx.range("t", (Bound::Included(a), Bound::Excluded(a)))
                .unwrap()
        )
        .len(),
        0
    );
    tx.commit().unwrap();
    let r = engine.begin_read();
    assert_eq!(
        collect(
            r.range("t", (Bound::Included(z), Bound::Included(a)))
                .unwrap()
        )
        .len(),
        0
    );
}
