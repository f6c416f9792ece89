//! Replicated mode: commits are proposals that change nothing until they
//! come back committed; committed entries are applied without a second
//! journal write; a restart resumes applying from the checkpoint; the term
//! and membership survive in the checkpoint.
//!
//! The consensus layer here is the smallest honest one: a single voter
//! that appends each proposal to the journal, fsyncs it and applies it,
//! or holds proposals back so a test can look in between.

use std::sync::{Arc, Mutex};

use tiers_storage::journal::{RecordId, RecordKind};
use tiers_storage::vfs::OsVfs;
use tiers_storage::{Config, Engine, Error, ProposalDone, Replicator, TreeKind};

fn config() -> Config {
    Config {
        replicated: true,
        background_writer: false,
        ..Config::default()
    }
}

/// Proposals wait here until `release` commits them (term `term`).
#[derive(Default)]
struct HeldLog {
    held: Mutex<Vec<(u64, Vec<u8>, ProposalDone)>>,
}

impl Replicator for HeldLog {
    fn propose(&self, id: u64, payload: Vec<u8>, done: ProposalDone) {
        self.held.lock().unwrap().push((id, payload, done));
    }

    fn is_writable(&self) -> bool {
        true
    }

    fn leader_hint(&self) -> Option<String> {
        None
    }
}

fn release(engine: &Engine, log: &HeldLog, term: u64) -> usize {
    let held: Vec<_> = log.held.lock().unwrap().drain(..).collect();
    let n = held.len();
    for (id, payload, done) in held {
        let lsn = engine.journal().appended_lsn() + 1;
        let rid = RecordId {
            lsn,
            term,
            kind: RecordKind::Data,
        };
        engine.journal().append_record(rid, &payload).unwrap();
        engine.journal().sync_all().unwrap();
        engine.apply_committed(rid, &payload, Some(id)).unwrap();
        done.finish(Ok(lsn));
    }
    n
}

fn marker(engine: &Engine, term: u64, kind: RecordKind, payload: &[u8]) -> u64 {
    let lsn = engine.journal().appended_lsn() + 1;
    let rid = RecordId { lsn, term, kind };
    engine.journal().append_record(rid, payload).unwrap();
    engine.journal().sync_all().unwrap();
    engine.apply_committed(rid, payload, None).unwrap();
    lsn
}

fn proposer(engine: &Engine) -> Arc<HeldLog> {
    let log = Arc::new(HeldLog::default());
    engine.set_replicator(log.clone()).unwrap();
    log
}

#[test]
fn a_commit_is_invisible_until_committed_and_conflicts_with_proposals_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    let mut early = engine.begin_write().unwrap();
    early.create_tree("early", TreeKind::BTree).unwrap();
    assert!(
        matches!(early.commit(), Err(Error::NotLeader { .. })),
        "no commits before the node joins its cluster"
    );
    let log = proposer(&engine);
    marker(&engine, 1, RecordKind::Membership, b"members: 1");
    marker(&engine, 1, RecordKind::Blank, b"");
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.put("t", b"k", b"v1").unwrap();
    let pending = tx.commit_pending().unwrap();
    assert!(pending.is_proposal());
    assert!(
        engine.begin_read().tree("t").unwrap().is_none(),
        "a proposal changes nothing before it is committed"
    );
    // A transaction that read before the proposal conflicts with it.
    let mut rival = engine.begin_write().unwrap();
    rival.create_tree("t", TreeKind::BTree).unwrap();
    rival.put("t", b"k", b"rival").unwrap();
    assert!(matches!(rival.commit(), Err(Error::Conflict { .. })));
    assert_eq!(release(&engine, &log, 1), 1);
    assert_eq!(pending.wait().unwrap(), 3);
    let r = engine.begin_read();
    assert_eq!(r.lsn(), 3);
    assert_eq!(r.get("t", b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    // A proposal the cluster refused frees its keys at once.
    let mut tx = engine.begin_write().unwrap();
    tx.put("t", b"k", b"v2").unwrap();
    let refused = tx.commit_pending().unwrap();
    let (_, _, done) = log.held.lock().unwrap().pop().unwrap();
    done.finish(Err(Error::NotLeader {
        leader: Some("127.0.0.1:5433".into()),
        detail: "leadership moved".into(),
    }));
    assert!(matches!(refused.wait(), Err(Error::NotLeader { .. })));
    let mut tx = engine.begin_write().unwrap();
    tx.put("t", b"k", b"v3").unwrap();
    let pending = tx.commit_pending().unwrap();
    release(&engine, &log, 1);
    assert_eq!(pending.wait().unwrap(), 4);
    let applied = engine.applied();
    assert_eq!((applied.lsn, applied.term), (4, 1));
    assert_eq!(applied.membership.as_deref(), Some(&b"members: 1"[..]));
}

#[test]
fn a_restart_resumes_from_the_checkpoint_and_keeps_term_and_membership() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Without the lock file, so the crash below can leave it open.
        let engine = Engine::open_with_vfs(dir.path(), config(), Arc::new(OsVfs)).unwrap();
        let log = proposer(&engine);
        marker(&engine, 2, RecordKind::Membership, b"members: 1 2 3");
        let mut tx = engine.begin_write().unwrap();
        tx.create_tree("t", TreeKind::BTree).unwrap();
        tx.put("t", b"a", b"1").unwrap();
        let p = tx.commit_pending().unwrap();
        release(&engine, &log, 2);
        p.wait().unwrap();
        engine.checkpoint().unwrap();
        for i in 0..5u8 {
            let mut tx = engine.begin_write().unwrap();
            tx.put("t", &[b'b', i], b"after").unwrap();
            let p = tx.commit_pending().unwrap();
            release(&engine, &log, 3);
            p.wait().unwrap();
        }
        // A crash: no final checkpoint (the journal has everything after lsn 2).
        std::mem::forget(engine);
    }
    let engine = Engine::open(dir.path(), config()).unwrap();
    let applied = engine.applied();
    assert_eq!(
        (applied.lsn, applied.term),
        (2, 2),
        "resumes at the checkpoint"
    );
    assert_eq!(applied.membership.as_deref(), Some(&b"members: 1 2 3"[..]));
    assert_eq!(engine.journal().appended_lsn(), 7, "the log is intact");
    // The consensus layer re-applies what it knows is committed.
    for rec in engine.journal().read_range(3, 7).unwrap() {
        engine.apply_committed(rec.id, &rec.payload, None).unwrap();
    }
    let r = engine.begin_read();
    assert_eq!(r.range("t", ..).unwrap().count(), 6);
    assert_eq!(engine.applied().term, 3);
    drop(r);
    drop(engine);
    let single = Engine::open(
        dir.path(),
        Config {
            replicated: false,
            ..config()
        },
    );
    let err = single
        .err()
        .expect("a cluster member's directory is refused");
    assert!(err.to_string().contains("cluster"), "{err}");
}

#[test]
fn a_single_node_directory_of_format_version_1_opens_and_upgrades() {
    // Written by this build, then its journal segment rewritten in the
    // version-1 layout (28-byte record headers, no term or kind).
    let dir = tempfile::tempdir().unwrap();
    let single = Config {
        replicated: false,
        ..config()
    };
    {
        let engine = Engine::open_with_vfs(dir.path(), single.clone(), Arc::new(OsVfs)).unwrap();
        let mut tx = engine.begin_write().unwrap();
        tx.create_tree("t", TreeKind::BTree).unwrap();
        tx.put("t", b"k", b"from v1").unwrap();
        tx.commit().unwrap();
        std::mem::forget(engine);
    }
    let journal = dir.path().join(tiers_storage::JOURNAL_DIR);
    let seg = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap().len() > 100)
        .expect("the segment with the commit");
    let data = std::fs::read(&seg).unwrap();
    let (head, rec) = data.split_at(tiers_storage::journal::SEGMENT_HEADER_LEN);
    let mut head = head.to_vec();
    head[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&head[0..24]);
    head[24..28].copy_from_slice(&crc.to_le_bytes());
    let len = u32::from_le_bytes(rec[4..8].try_into().unwrap()) as usize;
    let payload = &rec[40..40 + len];
    let mut v1 = rec[0..28].to_vec();
    v1[25] = 0;
    v1.extend_from_slice(payload);
    let crc = crc32c::crc32c(&v1[4..]);
    v1[0..4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, [head, v1].concat()).unwrap();
    let engine = Engine::open(dir.path(), single).unwrap();
    let r = engine.begin_read();
    assert_eq!(r.get("t", b"k").unwrap().as_deref(), Some(&b"from v1"[..]));
    assert!(
        !seg.exists(),
        "the replayed v1 segment is gone after the checkpoint"
    );
}

/// Commits one write transaction through `log` in term `term`.
fn commit(engine: &Engine, log: &HeldLog, term: u64, f: impl FnOnce(&mut tiers_storage::WriteTxn)) {
    let mut tx = engine.begin_write().unwrap();
    f(&mut tx);
    let p = tx.commit_pending().unwrap();
    release(engine, log, term);
    p.wait().unwrap();
}

/// Every entry of B+tree `tree` as the newest snapshot sees it.
fn entries(engine: &Engine, tree: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let r = engine.begin_read();
    r.range(tree, ..).unwrap().map(Result::unwrap).collect()
}

/// A leader-side engine with a B+tree of 3000 one-KiB values (several
/// snapshot frames), a hash index, a dropped tree and a membership.
fn source(dir: &std::path::Path) -> Engine {
    let engine = Engine::open(dir, config()).unwrap();
    let log = proposer(&engine);
    marker(&engine, 4, RecordKind::Membership, b"members: 1 2 3");
    commit(&engine, &log, 4, |tx| {
        tx.create_tree("t", TreeKind::BTree).unwrap();
        tx.create_tree("h", TreeKind::Hash).unwrap();
        tx.create_tree("gone", TreeKind::BTree).unwrap();
        tx.put("gone", b"x", b"y").unwrap();
    });
    for chunk in 0..3u32 {
        commit(&engine, &log, 5, |tx| {
            for i in chunk * 1000..(chunk + 1) * 1000 {
                tx.put("t", &i.to_be_bytes(), &[i as u8; 1024]).unwrap();
                tx.hash_insert("h", &(i % 10).to_be_bytes(), &i.to_be_bytes())
                    .unwrap();
            }
        });
    }
    commit(&engine, &log, 5, |tx| {
        tx.drop_tree("gone").unwrap();
        tx.delete("t", &7u32.to_be_bytes()).unwrap();
    });
    engine
}

/// A member far behind: an older, different state of its own.
fn behind(dir: &std::path::Path) -> (Engine, Arc<HeldLog>) {
    let engine = Engine::open(dir, config()).unwrap();
    let log = proposer(&engine);
    marker(&engine, 1, RecordKind::Membership, b"members: 1");
    commit(&engine, &log, 1, |tx| {
        tx.create_tree("t", TreeKind::BTree).unwrap();
        tx.put("t", b"stale", b"old").unwrap();
        tx.create_tree("old", TreeKind::BTree).unwrap();
        tx.put("old", b"k", b"v").unwrap();
    });
    (engine, log)
}

#[test]
fn a_snapshot_replaces_a_far_behind_members_state_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let leader = source(&dir.path().join("leader"));
    let mut file = std::io::Cursor::new(Vec::new());
    let info = leader.write_snapshot(&mut file).unwrap();
    assert_eq!((info.lsn, info.term), (6, 5));
    assert_eq!(info.membership.as_deref(), Some(&b"members: 1 2 3"[..]));
    assert!(info.frames >= 3, "{info:?}");
    assert!(
        leader.checkpoint_lsn() >= info.lsn,
        "the log it covers is not needed to recover"
    );
    let want = entries(&leader, "t");
    assert_eq!(want.len(), 2999);

    let follower_dir = dir.path().join("follower");
    {
        let (follower, _log) = behind(&follower_dir);
        let old_reader = follower.begin_read();
        let mut early = follower.begin_write().unwrap();
        early.put("t", b"early", b"write").unwrap();
        file.set_position(0);
        let installed = follower.install_snapshot(&mut file).unwrap();
        assert_eq!(installed, info);
        let applied = follower.applied();
        assert_eq!((applied.lsn, applied.term), (6, 5));
        assert_eq!(applied.membership.as_deref(), Some(&b"members: 1 2 3"[..]));
        assert_eq!(entries(&follower, "t"), want);
        let r = follower.begin_read();
        assert!(r.tree("old").unwrap().is_none(), "its own trees are gone");
        assert!(r.tree("gone").unwrap().is_none());
        let mut h = r.hash_get("h", &3u32.to_be_bytes()).unwrap();
        h.sort();
        let mut expect: Vec<Vec<u8>> = (0..3000u32)
            .filter(|i| i % 10 == 3)
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        expect.sort();
        assert_eq!(h, expect);
        assert_eq!(
            old_reader.get("t", b"stale").unwrap().as_deref(),
            Some(&b"old"[..]),
            "a reader of the old state keeps it"
        );
        assert!(
            matches!(early.commit(), Err(Error::Conflict { .. })),
            "a writer that began before the snapshot cannot commit over it"
        );
        assert_eq!(follower.journal().appended_lsn(), 6);
        assert_eq!(follower.journal().first_lsn(), 7, "the log starts after it");
        // The log goes on after the snapshot.
        marker(&follower, 6, RecordKind::Blank, b"");
        assert_eq!(follower.applied().lsn, 7);
        drop(r);
        drop(old_reader);
        // A crash: no clean close.
        std::mem::forget(follower);
    }
    let follower = Engine::open_with_vfs(&follower_dir, config(), Arc::new(OsVfs)).unwrap();
    assert_eq!(
        follower.applied().lsn,
        6,
        "resumes at the snapshot's checkpoint"
    );
    assert_eq!(entries(&follower, "t"), want);
    assert_eq!(follower.journal().appended_lsn(), 7);
    let rec = follower.journal().read_range(7, 7).unwrap();
    follower
        .apply_committed(rec[0].id, &rec[0].payload, None)
        .unwrap();
    assert_eq!(follower.applied().lsn, 7);
    // A snapshot it already has changes nothing.
    file.set_position(0);
    follower.install_snapshot(&mut file).unwrap();
    assert_eq!(follower.applied().lsn, 7);
}

#[test]
fn a_damaged_or_truncated_snapshot_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let leader = source(&dir.path().join("leader"));
    let mut good = Vec::new();
    leader.write_snapshot(&mut good).unwrap();
    let (follower, _log) = behind(&dir.path().join("follower"));
    let before = follower.applied();
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x40;
    let mut not_one = good.clone();
    not_one[0] = b'X';
    let cases = [
        (flipped, "checksum"),
        (good[..good.len() - 10].to_vec(), "truncated"),
        (good[..good.len() / 3].to_vec(), "truncated"),
        (not_one, "not a tiers snapshot"),
        (Vec::new(), "truncated"),
    ];
    for (bytes, why) in cases {
        let err = follower
            .install_snapshot(&mut std::io::Cursor::new(bytes))
            .unwrap_err();
        assert!(matches!(err, Error::BadSnapshot(_)), "{err}");
        assert!(err.to_string().contains(why), "{err} should say {why}");
        assert_eq!(follower.applied(), before);
        assert_eq!(
            follower.begin_read().get("old", b"k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
    assert!(tiers_storage::verify_snapshot(&mut &good[..]).is_ok());
}
