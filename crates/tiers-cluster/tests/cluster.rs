//! Three real members in one process, on loopback: replication, writes
//! refused on followers, failover when the leader stops, a partitioned
//! leader that must not acknowledge, and a restarted member catching up,
//! from the log or, once the log it needs was purged, from a snapshot.
//! Every acknowledged commit must be present on every member afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiers_cluster::{ClusterConfig, ClusterNode, NodeAddr, Role};
use tiers_storage::{Config, Engine, Error, TreeKind};

struct Member {
    id: u64,
    dir: PathBuf,
    addr: NodeAddr,
    node: Option<ClusterNode>,
    /// Snapshot every this many log bytes, keeping this many entries
    /// behind it (small, so a test sees logs purged); None for defaults.
    snapshots: Option<(u64, u64)>,
}

fn engine_config() -> Config {
    Config {
        replicated: true,
        cache_bytes: 4 << 20,
        journal_segment_bytes: 64 << 10,
        ..Config::default()
    }
}

async fn start(m: &mut Member, founders: &BTreeMap<u64, NodeAddr>) {
    // A stopped member's engine closes once the last of its tasks has
    // let go of it (a process exit, in production, is immediate).
    let deadline = Instant::now() + Duration::from_secs(5);
    let engine = loop {
        match Engine::open(&m.dir, engine_config()) {
            Ok(e) => break Arc::new(e),
            Err(Error::Locked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("opening member {}: {e}", m.id),
        }
    };
    let mut config = ClusterConfig::new(m.id, m.addr.clone());
    config.founders = founders.clone();
    if let Some((bytes, kept)) = m.snapshots {
        config.snapshot_log_bytes = bytes;
        config.log_entries_kept = kept;
    }
    let journal = m.dir.join(tiers_storage::JOURNAL_DIR);
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(&m.addr.raft).await {
            Ok(l) => break l,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("binding {}: {e}", m.addr.raft),
        }
    };
    m.node = Some(
        ClusterNode::start_on(engine, &journal, config, listener)
            .await
            .unwrap(),
    );
}

async fn stop(m: &mut Member) {
    if let Some(node) = m.node.take() {
        node.shutdown().await;
        drop(node);
    }
}

async fn cluster(
    tmp: &Path,
    snapshots: Option<(u64, u64)>,
) -> (Vec<Member>, BTreeMap<u64, NodeAddr>) {
    let mut members = Vec::new();
    for id in 1..=3u64 {
        let port = tiers_testkit::free_port();
        members.push(Member {
            id,
            dir: tmp.join(format!("node{id}")),
            addr: NodeAddr {
                raft: format!("127.0.0.1:{port}"),
                sql: format!("127.0.0.1:{}", 6000 + id),
            },
            node: None,
            snapshots,
        });
    }
    let founders: BTreeMap<u64, NodeAddr> =
        members.iter().map(|m| (m.id, m.addr.clone())).collect();
    for m in &mut members {
        start(m, &founders).await;
    }
    (members, founders)
}

/// Waits for a writable leader among the running members; returns its index.
async fn leader(members: &[Member], except: Option<u64>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for (i, m) in members.iter().enumerate() {
            if Some(m.id) == except {
                continue;
            }
            if let Some(n) = &m.node
                && n.writable()
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader was elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put(node: &ClusterNode, key: u32) -> tiers_storage::Result<u64> {
    put_value(node, key, b"value").await
}

async fn put_value(node: &ClusterNode, key: u32, value: &[u8]) -> tiers_storage::Result<u64> {
    let mut tx = node.engine().begin_write()?;
    tx.put("t", &key.to_be_bytes(), value)?;
    tx.commit_pending()?.await
}

fn keys(node: &ClusterNode) -> Vec<u32> {
    let r = node.engine().begin_read();
    match r.range("t", ..) {
        Ok(it) => it
            .map(|e| u32::from_be_bytes(e.unwrap().0.try_into().unwrap()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until every running member has applied through the leader's commit.
async fn converge(members: &[Member]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sets: Vec<Vec<u32>> = members
            .iter()
            .filter_map(|m| m.node.as_ref().map(keys))
            .collect();
        if sets.windows(2).all(|w| w[0] == w[1]) {
            return sets[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "members did not converge: {:?}",
            sets.iter().map(Vec::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_replicate_and_survive_leader_loss_partition_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut members, founders) = cluster(tmp.path(), None).await;
    let l = leader(&members, None).await;
    {
        let node = members[l].node.as_ref().unwrap();
        let mut tx = node.engine().begin_write().unwrap();
        tx.create_tree("t", TreeKind::BTree).unwrap();
        tx.commit_pending().unwrap().await.unwrap();
    }
    let mut acked: Vec<u32> = Vec::new();
    // Concurrent commits share the leader's fsyncs and replication rounds.
    let node = members[l].node.as_ref().unwrap();
    let results = futures::future::join_all((0..200u32).map(|k| put(node, k))).await;
    for (k, r) in results.into_iter().enumerate() {
        r.unwrap();
        acked.push(k as u32);
    }
    assert_eq!(converge(&members).await, acked);

    // A follower refuses writes and names the leader.
    let f = (l + 1) % 3;
    let err = put(members[f].node.as_ref().unwrap(), 9999)
        .await
        .unwrap_err();
    match err {
        Error::NotLeader { leader, .. } => {
            assert_eq!(leader.as_deref(), Some(members[l].addr.sql.as_str()))
        }
        e => panic!("expected NotLeader, got {e}"),
    }
    assert_eq!(
        members[f].node.as_ref().unwrap().status().role,
        Role::Follower
    );

    // The leader stops (its process dies): the others elect a new one.
    let old = members[l].id;
    stop(&mut members[l]).await;
    let started = Instant::now();
    let l2 = leader(&members, Some(old)).await;
    let failover = started.elapsed();
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    let node = members[l2].node.as_ref().unwrap();
    for k in 200..250u32 {
        put(node, k).await.unwrap();
        acked.push(k);
    }
    assert_eq!(converge(&members).await, acked);

    // The old leader comes back: it catches up from the log.
    start(&mut members[l], &founders).await;
    assert_eq!(converge(&members).await, acked);
    assert_eq!(keys(members[l].node.as_ref().unwrap()), acked);

    // Partition the leader from both others: it must not acknowledge any
    // commit, and the majority side elects a leader and goes on.
    let l3 = leader(&members, None).await;
    let cut_id = members[l3].id;
    for m in &members {
        if m.id != cut_id {
            m.node.as_ref().unwrap().faults().set_cut(cut_id, true);
            members[l3]
                .node
                .as_ref()
                .unwrap()
                .faults()
                .set_cut(m.id, true);
        }
    }
    let isolated = members[l3].node.as_ref().unwrap();
    let stranded = tokio::time::timeout(Duration::from_secs(8), put(isolated, 5000)).await;
    match stranded {
        Ok(Ok(lsn)) => panic!("a partitioned leader acknowledged commit {lsn}"),
        // Proposed before the leader noticed: it waits for the commit
        // timeout and is then reported as of unknown outcome.
        Ok(Err(e)) => assert!(
            matches!(e, Error::CommitUnknown(_) | Error::NotLeader { .. }),
            "{e}"
        ),
        Err(_) => panic!("a stranded commit waited past the commit timeout"),
    }
    // Once it has heard from no majority for an election timeout, it
    // refuses new commits at once instead of letting them hang.
    let deadline = Instant::now() + Duration::from_secs(5);
    while isolated.writable() {
        assert!(
            Instant::now() < deadline,
            "an isolated leader kept taking writes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        put(isolated, 5001).await,
        Err(Error::NotLeader { .. })
    ));
    let l4 = leader(&members, Some(cut_id)).await;
    let node = members[l4].node.as_ref().unwrap();
    for k in 300..320u32 {
        put(node, k).await.unwrap();
        acked.push(k);
    }
    for m in &members {
        m.node.as_ref().unwrap().faults().heal_all();
    }
    let after = converge(&members).await;
    for k in &acked {
        assert!(after.contains(k), "acknowledged commit {k} was lost");
    }
    // The stranded commit was never acknowledged; whether a new leader
    // committed it is the unknown outcome its client was told about.
    assert!(after.iter().all(|k| acked.contains(k) || *k == 5000));
    for m in &mut members {
        stop(m).await;
    }
}

/// Waits until `node`'s log is purged past `index`.
async fn purged_past(node: &ClusterNode, index: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = node.status().purged
            && p > index
        {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "the log was not purged past {index}: {:?}",
            node.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_are_purged_behind_snapshots_and_a_member_far_behind_catches_up_from_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut members, founders) = cluster(tmp.path(), Some((128 << 10, 20))).await;
    let l = leader(&members, None).await;
    {
        let node = members[l].node.as_ref().unwrap();
        let mut tx = node.engine().begin_write().unwrap();
        tx.create_tree("t", TreeKind::BTree).unwrap();
        tx.commit_pending().unwrap().await.unwrap();
    }
    let mut acked: Vec<u32> = Vec::new();
    // One member stops and misses everything from here on.
    let behind = (l + 1) % 3;
    let behind_at = members[behind].node.as_ref().unwrap().status().applied;
    stop(&mut members[behind]).await;
    let value = vec![7u8; 2048];
    let node = members[l].node.as_ref().unwrap();
    for round in 0..6u32 {
        let keys = (round * 100)..(round + 1) * 100;
        let results =
            futures::future::join_all(keys.clone().map(|k| put_value(node, k, &value))).await;
        for (k, r) in keys.zip(results) {
            r.unwrap();
            acked.push(k);
        }
    }
    // The leader snapshotted and purged the entries the stopped member needs.
    let purged = purged_past(node, behind_at + 1).await;
    assert!(node.status().snapshot.is_some_and(|s| s >= purged));
    assert!(
        node.engine().journal().first_lsn() > behind_at + 2,
        "journal segments behind the snapshot were removed"
    );
    // The stopped member comes back: the log it needs is gone, so it
    // catches up from a snapshot streamed to it, then from the log.
    start(&mut members[behind], &founders).await;
    assert_eq!(converge(&members).await, acked);
    let caught_up = members[behind].node.as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while caught_up.status().snapshot.is_none() {
        assert!(
            Instant::now() < deadline,
            "it did not install a snapshot: {:?}",
            caught_up.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        caught_up
            .engine()
            .begin_read()
            .get("t", &5u32.to_be_bytes())
            .unwrap(),
        Some(value.clone())
    );
    // It goes on from the log after the snapshot, and survives restarts
    // (the installed snapshot is its recovery start).
    let node = members[l].node.as_ref().unwrap();
    for k in 1000..1020u32 {
        put(node, k).await.unwrap();
        acked.push(k);
    }
    assert_eq!(converge(&members).await, acked);
    for i in [behind, l] {
        stop(&mut members[i]).await;
        start(&mut members[i], &founders).await;
    }
    for k in 2000..2010u32 {
        // The leader's restart moves leadership: a commit refused as
        // certainly not committed is retried on the new leader.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let l2 = leader(&members, None).await;
            match put(members[l2].node.as_ref().unwrap(), k).await {
                Ok(_) => break,
                Err(Error::NotLeader { .. }) if Instant::now() < deadline => {}
                Err(e) => panic!("commit {k}: {e}"),
            }
        }
        acked.push(k);
    }
    assert_eq!(converge(&members).await, acked);
    for m in &mut members {
        stop(m).await;
    }
}
