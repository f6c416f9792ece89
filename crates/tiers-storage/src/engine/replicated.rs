//! Replicated mode ([`crate::Config::replicated`]): the engine as a
//! consensus layer's state machine, with the journal as its log.
//!
//! - *Commit* on the leader: a write transaction's write set is checked
//!   (first committer wins, against applied commits after its snapshot and
//!   against every proposal still in flight, since those are applied after
//!   whatever it read), then handed to the [`Replicator`] as a commit
//!   record. Nothing changes in the engine until the record comes back
//!   committed through [`crate::Engine::apply_committed`]; only then is it
//!   visible, so no reader ever sees a version a leader change could take
//!   back.
//! - *Apply* on every node: committed records in log order, with no
//!   second journal write (the consensus layer already made the entry
//!   durable in the journal). Blank and membership entries advance the
//!   applied position too, so a version's LSN is its entry's log index.
//! - *Checkpoints* record the last applied entry's term and the membership
//!   with the pages, so a restart knows where applying resumes; they leave
//!   the journal to the consensus layer, which purges it only up to a
//!   checkpoint ([`crate::Engine::purge_log_through`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};

use super::conflicts::{conflict_keys, conflicts};
use super::{Engine, Shared, Version};
use crate::error::{Error, Result};
use crate::journal::{Journal, MAX_RECORD_LEN, RecordId, RecordKind};
use crate::meta::Meta;
use crate::metrics;
use crate::record::{self, Op};

/// Where a replicated engine sends its commits: the consensus layer.
pub trait Replicator: Send + Sync + 'static {
    /// Proposes the commit record `payload` as proposal `id`. The
    /// consensus layer calls [`ProposalDone::finish`] exactly once: with
    /// the entry's log index after it is committed and applied on this node
    /// (by [`Engine::apply_committed`] with `proposal = Some(id)`), or with
    /// the error ([`Error::NotLeader`] when it was certainly not committed,
    /// [`Error::CommitUnknown`] when it may have been).
    fn propose(&self, id: u64, payload: Vec<u8>, done: ProposalDone);

    /// Whether this node takes writes now (it is the cluster's ready leader).
    fn is_writable(&self) -> bool;

    /// The leader's client address, when this node knows it.
    fn leader_hint(&self) -> Option<String>;
}

/// The applied position of a replicated engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Log index of the last applied entry.
    pub lsn: u64,
    /// Its term.
    pub term: u64,
    /// The membership as of it (the cluster's encoding), if any.
    pub membership: Option<Vec<u8>>,
}

#[derive(Default)]
struct SlotState {
    outcome: Option<Result<u64>>,
    waker: Option<Waker>,
    then: Option<Box<dyn FnOnce() + Send>>,
}

/// Where a proposal's outcome is delivered.
#[derive(Default)]
pub(crate) struct ProposalSlot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

impl ProposalSlot {
    pub(crate) fn poll(&self, waker: &Waker) -> Poll<Result<u64>> {
        let mut s = self.state.lock().expect("proposal slot");
        match &s.outcome {
            Some(outcome) => Poll::Ready(clone_outcome(outcome)),
            None => {
                s.waker = Some(waker.clone());
                Poll::Pending
            }
        }
    }

    pub(crate) fn wait(&self) -> Result<u64> {
        let mut s = self.state.lock().expect("proposal slot");
        loop {
            if let Some(outcome) = &s.outcome {
                return clone_outcome(outcome);
            }
            s = self.ready.wait(s).expect("proposal slot");
        }
    }

    /// Runs `then` once the outcome is known (at once if it is).
    pub(crate) fn when_settled(&self, then: Box<dyn FnOnce() + Send>) {
        let mut s = self.state.lock().expect("proposal slot");
        if s.outcome.is_some() {
            drop(s);
            then();
        } else {
            s.then = Some(then);
        }
    }
}

fn clone_outcome(outcome: &Result<u64>) -> Result<u64> {
    match outcome {
        Ok(lsn) => Ok(*lsn),
        Err(Error::NotLeader { leader, detail }) => Err(Error::NotLeader {
            leader: leader.clone(),
            detail: detail.clone(),
        }),
        Err(e) => Err(Error::CommitUnknown(e.to_string())),
    }
}

/// The consensus layer's handle for reporting one proposal's outcome.
pub struct ProposalDone {
    slot: Arc<ProposalSlot>,
    shared: Arc<Shared>,
    id: u64,
}

impl ProposalDone {
    /// Reports the outcome: the entry's log index once committed and
    /// applied here, or why not.
    pub fn finish(self, outcome: Result<u64>) {
        if matches!(outcome, Err(Error::NotLeader { .. })) {
            // Certainly never committed: it no longer holds back others.
            self.shared
                .writer()
                .proposed
                .retain(|(id, _)| *id != self.id);
        }
        let (waker, then) = {
            let mut s = self.slot.state.lock().expect("proposal slot");
            s.outcome = Some(outcome);
            (s.waker.take(), s.then.take())
        };
        self.slot.ready.notify_all();
        if let Some(then) = then {
            then();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Shared {
    /// Checks a write set and proposes it (see the module documentation).
    pub(crate) fn propose(
        self: &Arc<Self>,
        ops: Vec<Op>,
        snapshot: u64,
    ) -> Result<(u64, Arc<ProposalSlot>)> {
        let Some(replicator) = self.replicator.get().cloned() else {
            return Err(Error::NotLeader {
                leader: None,
                detail: "this node has not joined its cluster yet".into(),
            });
        };
        if !replicator.is_writable() {
            return Err(Error::not_leader(replicator.leader_hint()));
        }
        let payload = record::encode(&ops);
        if payload.len() > MAX_RECORD_LEN {
            return Err(Error::TooLarge {
                what: "commit record",
                len: payload.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let ops = Arc::new(ops);
        let id = {
            let mut w = self.writer();
            self.check_writable()?;
            let newer = w.history.iter().filter(|(lsn, _)| *lsn > snapshot);
            let mut against = newer
                .map(|(_, o)| o)
                .chain(w.proposed.iter().map(|(_, o)| o));
            if let Some(first) = against.next() {
                let mine = conflict_keys(&ops);
                for theirs in std::iter::once(first).chain(against) {
                    if let Some(tree) = conflicts(&mine, theirs) {
                        metrics::inc(&self.metrics.conflicts);
                        return Err(Error::Conflict { tree });
                    }
                }
            }
            let id = w.next_proposal;
            w.next_proposal += 1;
            w.proposed.push((id, ops));
            id
        };
        let slot = Arc::new(ProposalSlot::default());
        let done = ProposalDone {
            slot: slot.clone(),
            shared: self.clone(),
            id,
        };
        replicator.propose(id, payload, done);
        Ok((id, slot))
    }

    /// Applies a committed entry (see [`Engine::apply_committed`]).
    fn apply_committed(&self, id: RecordId, payload: &[u8], proposal: Option<u64>) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        if let Some(p) = proposal {
            w.proposed.retain(|(id, _)| *id != p);
        }
        if id.lsn <= w.latest.lsn {
            return Ok(()); // applied before (the checkpoint holds it)
        }
        let mut version = Version::new(id.lsn, w.latest.catalog_root);
        version.term = id.term;
        version.membership = w.latest.membership.clone();
        match id.kind {
            RecordKind::Data => {
                let ops = Arc::new(record::decode(payload, id.lsn)?);
                let (horizon, prune_through) = self.read_horizon();
                let (sealed, root) = self.stage(w, id.lsn, &ops, horizon).map_err(|e| {
                    // A committed record that cannot be applied is a bug or
                    // damage, and every later record depends on it.
                    self.poison(format!("applying committed record {} failed: {e}", id.lsn))
                })?;
                self.install(w, id.lsn, sealed);
                version.catalog_root = root;
                while w.history.front().is_some_and(|(l, _)| *l <= prune_through) {
                    w.history.pop_front();
                }
                w.history.push_back((id.lsn, ops));
                metrics::inc(&self.metrics.commits);
            }
            RecordKind::Blank => {}
            RecordKind::Membership => {
                let max = Meta::max_membership(self.page_size);
                if payload.len() > max {
                    return Err(Error::BadRecord {
                        lsn: id.lsn,
                        detail: format!(
                            "its membership is {} bytes; a meta page holds {max}",
                            payload.len()
                        ),
                    });
                }
                version.membership = Some(Arc::from(payload));
            }
        }
        let version = Arc::new(version);
        w.latest = version.clone();
        let mut s = self.snapshots();
        self.visible_lsn.store(version.lsn, Ordering::Release);
        s.visible = version;
        Ok(())
    }
}

impl Engine {
    /// Replicated mode: sets where commits are proposed. Until it is set,
    /// write transactions are refused (the node has not joined yet).
    pub fn set_replicator(&self, replicator: Arc<dyn Replicator>) -> Result<()> {
        if !self.shared.config.replicated {
            return Err(Error::Config(
                "set_replicator needs an engine opened with Config::replicated".into(),
            ));
        }
        self.shared
            .replicator
            .set(replicator)
            .map_err(|_| Error::Config("the replicator is already set".into()))
    }

    /// Whether commits are taken here now: always on a single node; in
    /// replicated mode only on the cluster's ready leader (a follower is
    /// what PostgreSQL calls a hot standby).
    pub fn accepts_writes(&self) -> bool {
        if !self.shared.config.replicated {
            return true;
        }
        self.shared
            .replicator
            .get()
            .is_some_and(|r| r.is_writable())
    }

    /// In replicated mode, the leader's client address when known.
    pub fn leader_hint(&self) -> Option<String> {
        self.shared.replicator.get().and_then(|r| r.leader_hint())
    }

    /// Whether the engine was opened in replicated mode.
    pub fn is_replicated(&self) -> bool {
        self.shared.config.replicated
    }

    /// Replicated mode: applies the committed log entry `id` (its payload:
    /// a commit record, nothing, or a membership) and makes it visible.
    /// Entries at or below the applied position are skipped (they are in
    /// the checkpoint). `proposal` is this node's proposal id when the entry
    /// is one of its own commits.
    pub fn apply_committed(
        &self,
        id: RecordId,
        payload: &[u8],
        proposal: Option<u64>,
    ) -> Result<()> {
        if !self.shared.config.replicated {
            return Err(Error::Config(
                "apply_committed needs an engine opened with Config::replicated".into(),
            ));
        }
        self.shared.check_writable()?;
        self.shared.apply_committed(id, payload, proposal)
    }

    /// Replicated mode: forgets every proposal in flight (this node lost
    /// leadership; whatever the new leader commits of them is applied
    /// through [`Engine::apply_committed`] like any other entry).
    pub fn clear_proposals(&self) {
        self.shared.writer().proposed.clear();
    }

    /// The last applied entry (in replicated mode; on a single node, the
    /// last commit with term 0).
    pub fn applied(&self) -> Applied {
        let v = self.shared.writer().latest.clone();
        Applied {
            lsn: v.lsn,
            term: v.term,
            membership: v.membership.as_deref().map(<[u8]>::to_vec),
        }
    }

    /// The journal (a replicated engine's log, which the consensus layer
    /// appends to, reads, truncates and purges).
    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    /// The LSN of the last checkpoint: recovery starts after it.
    pub fn checkpoint_lsn(&self) -> u64 {
        self.shared.checkpoint_lsn.load(Ordering::Acquire)
    }

    /// Removes journal segments whose records are all at or below `lsn`,
    /// never past the last checkpoint (records after it are needed to
    /// recover).
    pub fn purge_log_through(&self, lsn: u64) -> Result<()> {
        self.shared
            .journal
            .truncate_through(lsn.min(self.checkpoint_lsn()))
    }
}
