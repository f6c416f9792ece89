//! The storage engine as openraft's state machine.
//!
//! Committed entries are applied with [`Engine::apply_committed`]: a
//! normal entry's commit record changes pages, a blank or membership entry
//! only advances the applied position (and a membership is kept, with its
//! log id, for the checkpoint). Nothing is journaled again: the entry is
//! already durable in the log, which is the journal. After a restart the
//! applied position is the engine's last checkpoint (only what is durable
//! in the data file counts), and openraft re-applies the committed entries
//! after it from the log. As in the log, the engine's LSN is the entry's
//! index plus one (LSN 0 is the empty database).
//!
//! Snapshots: the log is not compacted yet (the snapshot policy is
//! `Never`, and nothing is purged), so a new or lagging node catches up
//! from the whole log; building and installing snapshots from a
//! checkpoint is the next step (see `docs/cluster.md`).

use std::io;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tiers_storage::Engine;
use tiers_storage::journal::{RecordId, RecordKind};

use crate::{StoredMembership, TypeConfig, decode, encode, io_error};

/// The engine, as the state machine of node `node_id`.
pub struct StateMachine {
    engine: Arc<Engine>,
    node_id: u64,
}

impl StateMachine {
    /// Wraps a replicated engine.
    pub fn new(engine: Arc<Engine>, node_id: u64) -> StateMachine {
        StateMachine { engine, node_id }
    }
}

/// Snapshot data (see the module documentation: not built yet).
pub type SnapshotData = io::Cursor<Vec<u8>>;

/// Builds snapshots (see the module documentation: not yet).
pub struct SnapshotBuilder;

fn not_yet() -> io::Error {
    io_error(
        "snapshots are not built yet: this cluster keeps its whole log (snapshot policy Never)",
    )
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(
        &mut self,
    ) -> Result<openraft::alias::SnapshotOf<TypeConfig, SnapshotData>, io::Error> {
        Err(not_yet())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<crate::LogId>, StoredMembership), io::Error> {
        let applied = self.engine.applied();
        let last = (applied.lsn > 0).then(|| {
            openraft::LogId::new(
                openraft::vote::leader_id_std::CommittedLeaderId::new(applied.term),
                applied.lsn - 1,
            )
        });
        let membership = match applied.membership {
            Some(bytes) => decode(&bytes).map_err(io_error)?,
            None => StoredMembership::default(),
        };
        Ok((last, membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let index = entry.log_id.index;
            let id = |kind| RecordId {
                lsn: index + 1,
                term: entry.log_id.leader_id.term,
                kind,
            };
            match &entry.payload {
                EntryPayload::Normal(cmd) => {
                    let mine = cmd.origin == self.node_id && cmd.proposal != 0;
                    self.engine
                        .apply_committed(
                            id(RecordKind::Data),
                            &cmd.record,
                            mine.then_some(cmd.proposal),
                        )
                        .map_err(io_error)?;
                }
                EntryPayload::Blank => {
                    self.engine
                        .apply_committed(id(RecordKind::Blank), &[], None)
                        .map_err(io_error)?;
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(entry.log_id), m.clone());
                    let bytes = encode(&stored).map_err(io_error)?;
                    self.engine
                        .apply_committed(id(RecordKind::Membership), &bytes, None)
                        .map_err(io_error)?;
                }
            }
            if let Some(responder) = responder {
                responder.send(index);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder
    }

    async fn install_snapshot(
        &mut self,
        _meta: &openraft::alias::SnapshotMetaOf<TypeConfig>,
        _snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        Err(not_yet())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::alias::SnapshotOf<TypeConfig, SnapshotData>>, io::Error> {
        Ok(None)
    }
}
