//! The Raft log over the engine's journal: one log, one fsync per group.
//!
//! An entry is one journal record: its LSN is the entry's index plus one
//! (openraft counts from 0, the journal from 1), its term
//! the record's term, and its kind says whether the payload is a commit
//! record (a normal entry), nothing (a new leader's blank entry) or a
//! membership (postcard-encoded). Appends go to the journal buffer and
//! share its group fsync; openraft is told an append is flushed once the
//! journal's durable LSN passes it, in append order.
//!
//! Recent entries are also kept in memory (the undurable tail always, and
//! more up to [`CACHE_BYTES`]), since a leader reads each entry back to
//! replicate it right after appending it; older ones are read from the
//! segments. The vote is fsynced before `save_vote` returns (a node must
//! never vote twice in a term); the commit index is a hint written without
//! fsync and, on open, never trusted past the end of the log.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use tiers_storage::Engine;
use tiers_storage::journal::{RecordId, RecordKind, StateFile};
use tiers_storage::vfs::OsVfs;
use tokio::sync::mpsc;

use crate::{Command, Entry, LogId, TypeConfig, Vote, decode, encode, io_error};

/// Entries kept in memory beyond the undurable tail.
pub const CACHE_BYTES: usize = 64 << 20;

const VOTE_FILE: &str = "raft-vote";
const COMMITTED_FILE: &str = "raft-committed";
const PURGED_FILE: &str = "raft-purged";

struct Files {
    vote: StateFile,
    committed: StateFile,
    purged: StateFile,
}

struct Mem {
    /// Entries `cache_first..` in order (the newest ones).
    cache: VecDeque<Entry>,
    cache_first: u64,
    cache_bytes: usize,
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    last: Option<LogId>,
}

struct Inner {
    engine: Arc<Engine>,
    mem: Mutex<Mem>,
    files: Mutex<Files>,
    /// Appends waiting to be reported flushed, in order.
    flushes: mpsc::UnboundedSender<(u64, IOFlushed<TypeConfig>)>,
}

/// The log store (and, cloned, its reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

fn log_id(term: u64, index: u64) -> LogId {
    openraft::LogId::new(
        openraft::vote::leader_id_std::CommittedLeaderId::new(term),
        index,
    )
}

fn term_of(id: &LogId) -> u64 {
    id.leader_id.term
}

/// How an entry is journaled: its record id and payload (a commit
/// record is journaled from the entry itself, not copied).
fn to_record(entry: &Entry) -> io::Result<(RecordId, Cow<'_, [u8]>)> {
    let id = entry.log_id;
    let (kind, payload) = match &entry.payload {
        EntryPayload::Blank => (RecordKind::Blank, Cow::Borrowed(&[][..])),
        EntryPayload::Normal(cmd) => (RecordKind::Data, Cow::Borrowed(&cmd.record[..])),
        EntryPayload::Membership(m) => (
            RecordKind::Membership,
            Cow::Owned(encode(&m).map_err(io_error)?),
        ),
    };
    Ok((
        RecordId {
            lsn: id.index + 1,
            term: term_of(&id),
            kind,
        },
        payload,
    ))
}

/// An entry read back from the journal.
pub(crate) fn from_record(id: RecordId, payload: Vec<u8>) -> io::Result<Entry> {
    let payload = match id.kind {
        RecordKind::Blank => EntryPayload::Blank,
        RecordKind::Data => EntryPayload::Normal(Command {
            origin: 0,
            proposal: 0,
            record: payload,
        }),
        RecordKind::Membership => EntryPayload::Membership(decode(&payload).map_err(io_error)?),
    };
    Ok(Entry {
        log_id: log_id(id.term, id.lsn - 1),
        payload,
    })
}

fn entry_bytes(entry: &Entry) -> usize {
    64 + match &entry.payload {
        EntryPayload::Normal(cmd) => cmd.record.len(),
        _ => 256,
    }
}

impl LogStore {
    /// Opens the log of a replicated engine: the journal plus the state
    /// files in its directory. Must be called inside a Tokio runtime (a
    /// task reports flushed appends).
    pub fn open(engine: Arc<Engine>, journal_dir: &Path) -> crate::Result<LogStore> {
        let vfs = OsVfs;
        let (vote_file, vote) = StateFile::open(&vfs, &journal_dir.join(VOTE_FILE))?;
        let (committed_file, committed) = StateFile::open(&vfs, &journal_dir.join(COMMITTED_FILE))?;
        let (purged_file, purged) = StateFile::open(&vfs, &journal_dir.join(PURGED_FILE))?;
        let vote: Option<Vote> = vote.map(|v| decode(&v)).transpose()?;
        let committed: Option<LogId> = committed.and_then(|c| decode(&c).ok());
        let last_purged: Option<LogId> = purged.map(|p| decode(&p)).transpose()?;
        let journal = engine.journal();
        let appended = journal.appended_lsn();
        let mut last_purged = last_purged;
        if journal.first_lsn() > appended && appended > 0 {
            // The journal holds no record: it started over after a snapshot
            // installed at `appended` (perhaps just before a crash, with the
            // purge not yet recorded). Everything up to it is purged.
            let applied = engine.applied();
            if applied.lsn == appended && last_purged.is_none_or(|p| p.index + 1 < appended) {
                last_purged = Some(log_id(applied.term, appended - 1));
            }
        }
        // Journal LSN n holds entry n - 1.
        let next_unpurged = last_purged.map_or(0, |p| p.index + 1);
        let last = if appended > next_unpurged {
            let rec = journal.read_range(appended, appended)?;
            Some(log_id(rec[0].id.term, appended - 1))
        } else {
            last_purged
        };
        // The commit index is a hint: never past what this log holds.
        let committed = committed.filter(|c| last.is_some_and(|l| c.index <= l.index));
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, IOFlushed<TypeConfig>)>();
        // Holds the engine only while an append waits, so that the engine
        // closes as soon as Raft and its storage are gone.
        let flusher_engine = Arc::downgrade(&engine);
        tokio::spawn(async move {
            while let Some((lsn, done)) = rx.recv().await {
                let Some(engine) = flusher_engine.upgrade() else {
                    done.io_completed(Err(io_error("the engine was closed")));
                    continue;
                };
                let result = Durable {
                    engine: &engine,
                    lsn,
                }
                .await;
                drop(engine);
                done.io_completed(result.map_err(io_error));
            }
        });
        Ok(LogStore {
            inner: Arc::new(Inner {
                engine,
                mem: Mutex::new(Mem {
                    cache: VecDeque::new(),
                    cache_first: appended,
                    cache_bytes: 0,
                    vote,
                    committed,
                    last_purged,
                    last,
                }),
                files: Mutex::new(Files {
                    vote: vote_file,
                    committed: committed_file,
                    purged: purged_file,
                }),
                flushes: tx,
            }),
        })
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.inner.mem.lock().expect("log store memory")
    }

    /// The last entry's log id.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.mem().last
    }

    fn entries(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let (from_disk_end, cached): (u64, Vec<Entry>) = {
            let m = self.mem();
            let first = m.cache_first.max(start);
            let skip = (first - m.cache_first) as usize;
            let take = end.saturating_sub(first) as usize;
            (
                first.min(end),
                m.cache.iter().skip(skip).take(take).cloned().collect(),
            )
        };
        let mut out = Vec::with_capacity((end - start).min(4096) as usize);
        if start < from_disk_end {
            for rec in self
                .inner
                .engine
                .journal()
                .read_range(start + 1, from_disk_end)
                .map_err(io_error)?
            {
                out.push(from_record(rec.id, rec.payload)?);
            }
        }
        out.extend(cached);
        Ok(out)
    }

    /// Drops cached entries beyond the budget that are durable.
    fn trim_cache(m: &mut Mem, durable: u64) {
        while m.cache_bytes > CACHE_BYTES && m.cache_first < durable {
            match m.cache.pop_front() {
                Some(e) => {
                    m.cache_bytes -= entry_bytes(&e);
                    m.cache_first += 1;
                }
                None => break,
            }
        }
    }
}

/// Resolves once the journal holds `lsn` durably.
struct Durable<'a> {
    engine: &'a Engine,
    lsn: u64,
}

impl std::future::Future for Durable<'_> {
    type Output = tiers_storage::Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        self.engine.journal().poll_durable(self.lsn, cx.waker())
    }
}

/// `range` as `start..end`, cut at `next` (one past the last entry).
fn bounds(range: &impl RangeBounds<u64>, next: u64) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e + 1,
        Bound::Excluded(e) => *e,
        Bound::Unbounded => next,
    };
    (start, end.min(next))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (next, first) = {
            let m = self.mem();
            (
                m.last.map_or(0, |l| l.index + 1),
                m.last_purged.map_or(0, |p| p.index + 1),
            )
        };
        let (start, end) = bounds(&range, next);
        self.entries(start.max(first), end)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.mem().vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let m = self.mem();
        Ok(LogState {
            last_purged_log_id: m.last_purged,
            last_log_id: m.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = encode(vote).map_err(io_error)?;
        self.inner
            .files
            .lock()
            .expect("log state files")
            .vote
            .save(&bytes, true)
            .map_err(io_error)?;
        self.mem().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let bytes = encode(&committed).map_err(io_error)?;
        self.inner
            .files
            .lock()
            .expect("log state files")
            .committed
            .save(&bytes, false)
            .map_err(io_error)?;
        self.mem().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.mem().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let journal = self.inner.engine.journal();
        let mut last = None;
        for entry in entries {
            let id = {
                let (id, payload) = to_record(&entry)?;
                journal.append_record(id, &payload).map_err(io_error)?;
                id
            };
            let mut m = self.mem();
            if m.cache.is_empty() {
                m.cache_first = entry.log_id.index;
            }
            m.cache_bytes += entry_bytes(&entry);
            m.last = Some(entry.log_id);
            m.cache.push_back(entry);
            last = Some(id.lsn);
        }
        {
            let durable = journal.durable_lsn();
            Self::trim_cache(&mut self.mem(), durable);
        }
        match last {
            Some(lsn) => self
                .inner
                .flushes
                .send((lsn, callback))
                .map_err(|_| io_error("the log flusher stopped")),
            None => {
                callback.io_completed(Ok(()));
                Ok(())
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        // The next index kept out, which is also the LSN of the last entry kept.
        let next = last_log_id.map_or(0, |l| l.index + 1);
        self.inner
            .engine
            .journal()
            .truncate_after(next)
            .map_err(io_error)?;
        let mut m = self.mem();
        while m.cache_first + (m.cache.len() as u64) > next {
            match m.cache.pop_back() {
                Some(e) => m.cache_bytes -= entry_bytes(&e),
                None => break,
            }
        }
        if m.cache.is_empty() {
            m.cache_first = next;
        }
        m.last = last_log_id.or(m.last_purged);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let bytes = encode(&log_id).map_err(io_error)?;
        self.inner
            .files
            .lock()
            .expect("log state files")
            .purged
            .save(&bytes, true)
            .map_err(io_error)?;
        self.inner
            .engine
            .purge_log_through(log_id.index + 1)
            .map_err(io_error)?;
        let mut m = self.mem();
        m.last_purged = Some(log_id);
        while m.cache_first <= log_id.index {
            match m.cache.pop_front() {
                Some(e) => {
                    m.cache_bytes -= entry_bytes(&e);
                    m.cache_first += 1;
                }
                None => {
                    m.cache_first = log_id.index + 1;
                    break;
                }
            }
        }
        if m.last.is_none_or(|l| l.index < log_id.index) {
            m.last = Some(log_id);
        }
        Ok(())
    }
}

/// The term of an entry (for tests and status).
pub fn entry_term(entry: &Entry) -> u64 {
    term_of(&entry.log_id())
}
