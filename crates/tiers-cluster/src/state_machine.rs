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
//! Snapshots ([`tiers_storage::Engine::write_snapshot`]): the whole
//! database as of one applied entry, built from an MVCC read after a
//! checkpoint, kept as one file in [`Snapshots`]'s directory, streamed to a
//! member that needs entries this node's log no longer has, and installed
//! there through the engine's apply path. Every member builds its own when
//! its log has grown by the configured bytes, and then purges the log the
//! snapshot covers (keeping a tail for followers a little behind).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    snapshots: Arc<Snapshots>,
}

impl StateMachine {
    /// Wraps a replicated engine, with its snapshots kept in `snapshots`.
    pub fn new(engine: Arc<Engine>, node_id: u64, snapshots: Arc<Snapshots>) -> StateMachine {
        StateMachine {
            engine,
            node_id,
            snapshots,
        }
    }
}

/// A snapshot as openraft hands it around: an open file and where it is.
#[derive(Debug)]
pub struct SnapshotFile {
    /// The file's path (a received one is renamed into place when installed).
    pub path: PathBuf,
    /// The file, open for reading.
    pub file: std::fs::File,
}

/// Snapshot data.
pub type SnapshotData = SnapshotFile;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot with its data.
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

const SNAPSHOT_SUFFIX: &str = ".tsnap";
const TEMP_SUFFIX: &str = ".tmp";

/// The directory of a member's snapshots: the current one (at most one
/// kept), and temporary files being built or received.
pub struct Snapshots {
    dir: PathBuf,
    current: Mutex<Option<(SnapshotMeta, PathBuf)>>,
    next_temp: AtomicU64,
}

/// The metadata of a snapshot that holds `info`.
fn meta_of(info: &tiers_storage::SnapshotInfo) -> io::Result<SnapshotMeta> {
    let last_log_id = (info.lsn > 0).then(|| {
        openraft::LogId::new(
            openraft::vote::leader_id_std::CommittedLeaderId::new(info.term),
            info.lsn - 1,
        )
    });
    let last_membership = match &info.membership {
        Some(bytes) => decode(bytes).map_err(io_error)?,
        None => StoredMembership::default(),
    };
    Ok(SnapshotMeta {
        last_log_id,
        last_membership,
    })
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Snapshots {
    /// Opens (creating) the snapshot directory `dir`: removes temporary
    /// files a crash left, and keeps the newest complete snapshot.
    pub fn open(dir: &Path) -> crate::Result<Snapshots> {
        std::fs::create_dir_all(dir)?;
        let mut found: Vec<(tiers_storage::SnapshotInfo, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(TEMP_SUFFIX) {
                std::fs::remove_file(&path)?;
            } else if name.ends_with(SNAPSHOT_SUFFIX) {
                let mut file = std::io::BufReader::new(std::fs::File::open(&path)?);
                let info = tiers_storage::snapshot_header(&mut file).map_err(|e| {
                    crate::Error::Config(format!("snapshot {}: {e}", path.display()))
                })?;
                found.push((info, path));
            }
        }
        found.sort_by_key(|(info, _)| info.lsn);
        let current = match found.pop() {
            Some((info, path)) => Some((meta_of(&info)?, path)),
            None => None,
        };
        for (_, older) in found {
            std::fs::remove_file(older)?;
        }
        Ok(Snapshots {
            dir: dir.to_path_buf(),
            current: Mutex::new(current),
            next_temp: AtomicU64::new(0),
        })
    }

    /// A fresh path for a snapshot being built or received.
    pub fn temp_path(&self) -> PathBuf {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("incoming-{}-{n}{TEMP_SUFFIX}", std::process::id()))
    }

    /// Makes the complete snapshot at `temp` (fsynced) the current one,
    /// durably, and removes the one before; returns what is current then
    /// (a newer one published meanwhile stays, and `temp` goes).
    fn publish(&self, temp: &Path, meta: &SnapshotMeta) -> io::Result<(SnapshotMeta, PathBuf)> {
        let mut current = self.current.lock().expect("snapshots");
        if let Some((newer, path)) = &*current
            && newer.last_log_id > meta.last_log_id
        {
            std::fs::remove_file(temp)?;
            return Ok((newer.clone(), path.clone()));
        }
        let (index, term) = meta
            .last_log_id
            .map_or((0, 0), |l| (l.index, l.leader_id.term));
        let path = self
            .dir
            .join(format!("snapshot-{index:020}-{term}{SNAPSHOT_SUFFIX}"));
        std::fs::rename(temp, &path)?;
        sync_dir(&self.dir)?;
        if let Some((_, old)) = current.replace((meta.clone(), path.clone()))
            && old != path
        {
            std::fs::remove_file(old)?;
        }
        Ok((meta.clone(), path))
    }

    /// The current snapshot's metadata and path.
    pub fn current(&self) -> Option<(SnapshotMeta, PathBuf)> {
        self.current.lock().expect("snapshots").clone()
    }
}

/// Builds snapshots of the engine into the snapshot directory.
pub struct SnapshotBuilder {
    engine: Arc<Engine>,
    snapshots: Arc<Snapshots>,
}

impl SnapshotBuilder {
    fn build(&self) -> io::Result<Snapshot> {
        let temp = self.snapshots.temp_path();
        let built = (|| {
            let file = std::fs::File::create(&temp)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let info = self.engine.write_snapshot(&mut out).map_err(io_error)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok::<_, io::Error>(info)
        })();
        let info = match built {
            Ok(info) => info,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        let (meta, path) = self.snapshots.publish(&temp, &meta_of(&info)?)?;
        let file = std::fs::File::open(&path)?;
        Ok(Snapshot {
            meta,
            snapshot: SnapshotFile { path, file },
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        tokio::task::block_in_place(|| self.build())
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
        SnapshotBuilder {
            engine: self.engine.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        tokio::task::block_in_place(|| {
            use std::io::Seek;
            (&snapshot.file).seek(std::io::SeekFrom::Start(0))?;
            let mut input = std::io::BufReader::with_capacity(1 << 20, &snapshot.file);
            let info = self.engine.install_snapshot(&mut input).map_err(io_error)?;
            let expected = meta.last_log_id.map_or(0, |l| l.index + 1);
            if info.lsn != expected {
                return Err(io_error(format!(
                    "the snapshot file ends at lsn {} but its metadata says {expected}",
                    info.lsn
                )));
            }
            self.snapshots.publish(&snapshot.path, meta)?;
            Ok(())
        })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        match self.snapshots.current() {
            Some((meta, path)) => {
                let file = std::fs::File::open(&path)?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: SnapshotFile { path, file },
                }))
            }
            None => Ok(None),
        }
    }
}
