//! One cluster member: Raft over a replicated engine, the transport's
//! server, the proposer the engine commits through, and the role the SQL
//! front end shows its clients.
//!
//! A node takes writes only as a *ready* leader: the leader of the
//! current term that has applied its own blank entry, so every entry of
//! earlier terms is applied before its first commit is checked for
//! conflicts. When it stops being leader, its proposals in flight are
//! forgotten (whatever the new leader commits of them is applied like any
//! other entry, and their clients learn that the outcome is unknown).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use tiers_storage::{Engine, ProposalDone, Replicator};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::log_store::LogStore;
use crate::network::{Faults, Network, serve};
use crate::state_machine::{Snapshots, StateMachine};

/// The directory of a member's snapshots, beside its journal directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
use crate::{Command, Error, NodeAddr, Raft, Result};

/// How a member is set up.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's id (unique in the cluster, never reused).
    pub id: u64,
    /// Its addresses (the transport binds `addr.raft`).
    pub addr: NodeAddr,
    /// The founding voters, this node among them, when this node may
    /// found the cluster (the lowest id initializes it); empty to join an
    /// existing cluster (added by `tiers cluster add`).
    pub founders: BTreeMap<u64, NodeAddr>,
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// Followers start an election after a random timeout in this range
    /// without hearing from a leader.
    pub election_timeout: (Duration, Duration),
    /// How long a commit waits for a quorum; then its client gets SQLSTATE
    /// 08007 (outcome unknown) instead of waiting for a partition to heal.
    pub commit_timeout: Duration,
    /// A snapshot is built, and the log it covers purged, each time the
    /// log has grown by this many bytes since the last one.
    pub snapshot_log_bytes: u64,
    /// Entries kept in the log behind a snapshot, so a follower a little
    /// behind catches up from the log rather than from a whole snapshot.
    pub log_entries_kept: u64,
}

impl ClusterConfig {
    /// The defaults for `id` at `addr`.
    pub fn new(id: u64, addr: NodeAddr) -> ClusterConfig {
        ClusterConfig {
            id,
            addr,
            founders: BTreeMap::new(),
            heartbeat: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            commit_timeout: Duration::from_secs(5),
            snapshot_log_bytes: 256 << 20,
            log_entries_kept: 10_000,
        }
    }
}

/// What a member is right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes (once ready; see the module documentation).
    Leader,
    /// A voter following a leader.
    Follower,
    /// A voter asking for votes.
    Candidate,
    /// A non-voting replica (a disaster-recovery site).
    Learner,
    /// Stopped.
    Shutdown,
}

impl Role {
    /// The role's name as status pages show it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

/// A member's view of the cluster.
#[derive(Debug, Clone)]
pub struct Status {
    /// This node.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// Whether it takes writes now.
    pub writable: bool,
    /// The current term.
    pub term: u64,
    /// The leader it knows of, with its addresses.
    pub leader: Option<(u64, NodeAddr)>,
    /// Index of the last log entry.
    pub last_log: u64,
    /// Index of the last committed entry.
    pub committed: u64,
    /// Index of the last applied entry.
    pub applied: u64,
    /// Members: id, addresses, voter or not.
    pub members: Vec<(u64, NodeAddr, bool)>,
    /// On the leader: each follower's last replicated index.
    pub replication: Vec<(u64, Option<u64>)>,
    /// Index of the last entry the current snapshot holds.
    pub snapshot: Option<u64>,
    /// Index of the last entry purged from the log.
    pub purged: Option<u64>,
}

/// A running member.
pub struct ClusterNode {
    id: u64,
    raft: Raft,
    engine: Arc<Engine>,
    faults: Arc<Faults>,
    ready: Arc<AtomicBool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Proposer {
    id: u64,
    raft: Raft,
    ready: Arc<AtomicBool>,
    /// How long a commit waits for a quorum before its client is told
    /// the outcome is unknown.
    commit_timeout: Duration,
}

fn leader_of(raft: &Raft) -> Option<String> {
    let metrics = raft.metrics();
    let m = metrics.borrow_watched();
    let leader = m.current_leader?;
    let node = m.membership_config.membership().get_node(&leader)?;
    Some(node.sql.clone())
}

impl Replicator for Proposer {
    fn is_writable(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn leader_hint(&self) -> Option<String> {
        leader_of(&self.raft)
    }

    fn propose(&self, proposal: u64, record: Vec<u8>, done: ProposalDone) {
        // Checked again: readiness may have ended since the engine asked.
        if !self.ready.load(Ordering::Acquire) {
            done.finish(Err(tiers_storage::Error::not_leader(leader_of(&self.raft))));
            return;
        }
        let raft = self.raft.clone();
        let cmd = Command {
            origin: self.id,
            proposal,
            record,
        };
        let budget = self.commit_timeout;
        tokio::spawn(async move {
            let written = match tokio::time::timeout(budget, raft.client_write(cmd)).await {
                Ok(written) => written,
                Err(_) => {
                    done.finish(Err(tiers_storage::Error::CommitUnknown(format!(
                        "no quorum confirmed it within {budget:?} (this node may be cut off from the majority); it may or may not take effect"
                    ))));
                    return;
                }
            };
            let outcome = match written {
                Ok(resp) => Ok(resp.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    let leader = f.leader_node.map(|n| n.sql);
                    Err(tiers_storage::Error::NotLeader {
                        detail: match &leader {
                            Some(l) => format!("leadership moved to {l}"),
                            None => "leadership was lost".into(),
                        },
                        leader,
                    })
                }
                Err(e) => Err(tiers_storage::Error::CommitUnknown(format!(
                    "leadership changed while the commit waited ({e}); it may or may not have taken effect"
                ))),
            };
            done.finish(outcome);
        });
    }
}

impl ClusterNode {
    /// Starts a member over `engine` (opened with `Config::replicated`),
    /// whose journal directory is `journal_dir`; its snapshots are kept in
    /// `snapshots` beside it. Must run inside a Tokio multi-thread runtime.
    pub async fn start(
        engine: Arc<Engine>,
        journal_dir: &std::path::Path,
        config: ClusterConfig,
    ) -> Result<ClusterNode> {
        let listener = TcpListener::bind(&config.addr.raft).await.map_err(|e| {
            Error::Config(format!(
                "cannot listen for the cluster on {}: {e}",
                config.addr.raft
            ))
        })?;
        Self::start_on(engine, journal_dir, config, listener).await
    }

    /// Like [`ClusterNode::start`], with the transport's listener bound
    /// already (to `config.addr.raft`).
    pub async fn start_on(
        engine: Arc<Engine>,
        journal_dir: &std::path::Path,
        config: ClusterConfig,
        listener: TcpListener,
    ) -> Result<ClusterNode> {
        if !engine.is_replicated() {
            return Err(Error::Config(
                "the engine must be opened in replicated mode".into(),
            ));
        }
        let raft_config = openraft::Config {
            cluster_name: "tiers".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_timeout.0.as_millis() as u64,
            election_timeout_max: config.election_timeout.1.as_millis() as u64,
            // Snapshots are triggered by log bytes (see `snapshot_by_size`).
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: config.log_entries_kept,
            enable_pre_vote: Some(true),
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;
        let log = LogStore::open(engine.clone(), journal_dir)?;
        let snapshot_dir = journal_dir
            .parent()
            .unwrap_or(journal_dir)
            .join(SNAPSHOT_DIR);
        let snapshots = Arc::new(Snapshots::open(&snapshot_dir)?);
        let sm = StateMachine::new(engine.clone(), config.id, snapshots.clone());
        let faults = Arc::new(Faults::default());
        let network = Network {
            id: config.id,
            faults: faults.clone(),
        };
        let raft = Raft::new(config.id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let ready = Arc::new(AtomicBool::new(false));
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            raft.clone(),
            faults.clone(),
            snapshots,
        ))];
        tasks.push(tokio::spawn(snapshot_by_size(
            raft.clone(),
            engine.clone(),
            config.snapshot_log_bytes,
        )));
        tasks.push(tokio::spawn(watch_role(
            raft.clone(),
            engine.clone(),
            ready.clone(),
            config.election_timeout.1,
        )));
        engine.set_replicator(Arc::new(Proposer {
            id: config.id,
            raft: raft.clone(),
            ready: ready.clone(),
            commit_timeout: config.commit_timeout,
        }))?;
        let node = ClusterNode {
            id: config.id,
            raft,
            engine,
            faults,
            ready,
            tasks: Mutex::new(tasks),
        };
        if config.founders.keys().next() == Some(&config.id)
            && !node
                .raft
                .is_initialized()
                .await
                .map_err(|e| Error::Raft(e.to_string()))?
        {
            node.raft
                .initialize(config.founders.clone())
                .await
                .map_err(|e| Error::Raft(format!("founding the cluster: {e}")))?;
        }
        Ok(node)
    }

    /// The Raft handle (membership changes, metrics).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The fault layer (partitions for tests and `tiers chaos`).
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Whether this node takes writes now.
    pub fn writable(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The member's view of the cluster.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let role = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        Status {
            id: self.id,
            role,
            writable: self.writable(),
            term: m.current_term,
            leader: m
                .current_leader
                .and_then(|l| membership.get_node(&l).map(|n| (l, n.clone()))),
            last_log: m.last_log_index.unwrap_or(0),
            committed: m.cluster_committed.map_or(0, |c| c.index),
            applied: m.last_applied.map_or(0, |a| a.index),
            members: membership
                .nodes()
                .map(|(id, n)| (*id, n.clone(), voters.contains(id)))
                .collect(),
            replication: m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, matched)| (*id, matched.map(|l| l.index)))
                        .collect()
                })
                .unwrap_or_default(),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops Raft and the transport (the engine stays open).
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().expect("tasks").drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        // Each task has dropped what it held (the engine among it) once
        // its handle resolves.
        for task in tasks {
            let _ = task.await;
        }
        let _ = self.raft.shutdown().await;
        self.ready.store(false, Ordering::Release);
        self.engine.clear_proposals();
    }
}

/// Keeps `ready` true exactly while this node is the leader of the
/// current term and has applied an entry of that term (its blank entry);
/// forgets proposals when leadership ends.
///
/// A leader that has heard from no quorum for `quorum_timeout` takes no
/// new commits either (they could only hang until a partition heals):
/// they fail at once, certainly not committed.
async fn watch_role(
    raft: Raft,
    engine: Arc<Engine>,
    ready: Arc<AtomicBool>,
    quorum_timeout: Duration,
) {
    let mut metrics = raft.metrics();
    let mut was_leader = false;
    let mut tick = tokio::time::interval(quorum_timeout / 4);
    loop {
        let (leader, now_ready) = {
            let m = metrics.borrow_and_update();
            let leader = m.state == ServerState::Leader;
            let applied_term = m.last_applied.map_or(0, |a| a.leader_id.term);
            let in_touch = m
                .last_quorum_acked
                .as_ref()
                .is_none_or(|at| openraft::Instant::elapsed(&**at) <= quorum_timeout);
            (leader, leader && applied_term == m.current_term && in_touch)
        };
        ready.store(now_ready, Ordering::Release);
        if was_leader && !leader {
            engine.clear_proposals();
        }
        was_leader = leader;
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    ready.store(false, Ordering::Release);
                    return;
                }
            }
            _ = tick.tick() => {}
        }
    }
}

/// Asks Raft for a snapshot each time the journal has grown by `every`
/// bytes since the last one (openraft's own policy counts entries, and
/// commit records differ in size by orders of magnitude).
async fn snapshot_by_size(raft: Raft, engine: Arc<Engine>, every: u64) {
    let journal_bytes = || engine.metrics().journal_bytes;
    let mut last = journal_bytes();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let now = journal_bytes();
        if now.saturating_sub(last) >= every {
            last = now;
            if raft.trigger().snapshot().await.is_err() {
                return; // Raft stopped
            }
        }
    }
}
