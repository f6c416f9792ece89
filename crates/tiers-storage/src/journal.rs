//! The write-ahead journal (the book's journaling, written through).
//!
//! Every commit appends one self-contained record; a commit is acknowledged
//! only once its record is fsynced ([`crate::Durability::Full`]). Concurrent
//! committers share one fsync: the first waiter becomes the leader, writes
//! every buffered record and fsyncs once, and wakes the others (group commit;
//! the journal is the system's serialization point, so batching it is what
//! makes concurrent commits cheap).
//!
//! On disk the journal is a directory of segment files named by the LSN of
//! their first record (`00000000000000000042.wal`). A segment starts with a
//! 32-byte header, then records back to back:
//!
//! | bytes | segment header field |
//! |---|---|
//! | 0..8 | magic `TIERSWAL` |
//! | 8..12 | format version (1) |
//! | 12..16 | zero |
//! | 16..24 | LSN of the first record |
//! | 24..28 | CRC32C of bytes 0..24 |
//! | 28..32 | zero |
//!
//! | bytes | record field |
//! |---|---|
//! | 0..4 | CRC32C of bytes 4..28+len |
//! | 4..8 | stored payload length `len` |
//! | 8..16 | LSN (each record's is the previous one's plus one) |
//! | 16..24 | durable LSN when the record was appended: every record up to it had been fsynced |
//! | 24 | flags: bit 0 = payload is LZ4 compressed (size-prepended block) |
//! | 25..28 | zero |
//! | 28.. | payload (a commit record, see [`crate::record`]) |
//!
//! Recovery reads the records in order and stops at the first one that fails
//! its checksum. Whether that is a torn tail (a crash interrupted an append
//! that was never acknowledged: cut it off) or corruption of acknowledged
//! data (report it, never skip it) is decided by evidence: if any later
//! record that passes its checksum says the damaged record's LSN was already
//! durable when it was written, the damaged record had been acknowledged.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use crate::error::{Error, Result};
use crate::metrics::{Metrics, add, inc};
use crate::vfs::{Vfs, VfsFile};

mod format;

pub use format::{
    MAX_RECORD_LEN, RECORD_HEADER_LEN, RecordId, RecordKind, SEGMENT_HEADER_LEN, SEGMENT_VERSION,
    V1_RECORD_HEADER_LEN, segment_name,
};
use format::{
    check_segment_header, encode_record, header_len, parse_record, parse_segment_name,
    record_header, segment_header, stored_form,
};

mod log;
pub use log::{MAX_STATE_LEN, OwnedRecord, StateFile};

/// Buffered journal bytes are written out (without fsync) beyond this.
const EARLY_WRITE_BYTES: usize = 1 << 20;

/// What a scan of the journal found.
#[derive(Debug, Clone, Default)]
pub struct ScanSummary {
    /// Segments in order.
    pub segments: Vec<SegmentInfo>,
    /// LSN of the first record, if any.
    pub first_lsn: Option<u64>,
    /// LSN of the last valid record, if any.
    pub last_lsn: Option<u64>,
    /// The last valid record, if any.
    pub last: Option<RecordId>,
    /// Number of valid records.
    pub records: u64,
    /// Bytes of torn tail cut off (or, when not repairing, that would be).
    pub torn_tail_bytes: u64,
}

/// One segment file found by [`scan`].
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// LSN of its first record.
    pub first_lsn: u64,
    /// Its path.
    pub path: PathBuf,
    /// Bytes of header and valid records.
    pub len: u64,
    /// Its format version (1 or 2).
    pub version: u32,
}

/// Reads every record in order and hands `(id, payload)` to `visit`.
///
/// With `repair`, a torn tail is truncated and a segment whose header never
/// became durable is removed; without it (for `tiers verify`) nothing is
/// written. Damage anywhere else is [`Error::JournalCorrupt`].
pub fn scan(
    vfs: &dyn Vfs,
    dir: &Path,
    repair: bool,
    mut visit: impl FnMut(RecordId, &[u8]) -> Result<()>,
) -> Result<ScanSummary> {
    let mut summary = ScanSummary::default();
    if !vfs.exists(dir) {
        return Ok(summary);
    }
    let paths: Vec<(u64, PathBuf)> = vfs
        .list(dir)
        .map_err(|e| Error::io(format!("listing journal directory {}", dir.display()), e))?
        .into_iter()
        .filter_map(|p| parse_segment_name(&p).map(|lsn| (lsn, p)))
        .collect();
    let mut expected: Option<u64> = None;
    let count = paths.len();
    for (i, (name_lsn, path)) in paths.into_iter().enumerate() {
        let last = i + 1 == count;
        let corrupt = |offset: u64, detail: String| Error::JournalCorrupt {
            file: path.clone(),
            offset,
            detail,
        };
        let file = vfs
            .open(&path, false)
            .map_err(|e| Error::io(format!("opening journal segment {}", path.display()), e))?;
        let len = file
            .len()
            .map_err(|e| Error::io(format!("reading journal segment {}", path.display()), e))?;
        let mut data = vec![0u8; len as usize];
        let n = file
            .read_at(&mut data, 0)
            .map_err(|e| Error::io(format!("reading journal segment {}", path.display()), e))?;
        data.truncate(n);
        let (first_lsn, version) = match check_segment_header(&data) {
            Ok(found) => found,
            Err(detail) if last && data.len() <= SEGMENT_HEADER_LEN => {
                // A segment created just before a crash, before its header was durable.
                summary.torn_tail_bytes += data.len() as u64;
                if repair {
                    vfs.remove(&path).map_err(|e| {
                        Error::io(format!("removing torn segment {}", path.display()), e)
                    })?;
                }
                let _ = detail;
                break;
            }
            Err(detail) => return Err(corrupt(0, detail)),
        };
        if first_lsn != name_lsn {
            return Err(corrupt(
                16,
                format!("header says first lsn {first_lsn} but the file name says {name_lsn}"),
            ));
        }
        if let Some(exp) = expected
            && exp != first_lsn
        {
            return Err(corrupt(
                16,
                format!(
                    "segment starts at lsn {first_lsn} but lsn {exp} was expected (a segment is missing)"
                ),
            ));
        }
        let mut pos = SEGMENT_HEADER_LEN;
        let mut next = first_lsn;
        while pos < data.len() {
            match parse_record(&data, pos, version) {
                Ok(rec) => {
                    if rec.id.lsn != next {
                        return Err(corrupt(
                            pos as u64,
                            format!("record has lsn {} but lsn {next} was expected", rec.id.lsn),
                        ));
                    }
                    if let Some(prev) = summary.last
                        && rec.id.term < prev.term
                    {
                        return Err(corrupt(
                            pos as u64,
                            format!(
                                "record {} has term {} after a record of term {}: terms never go back",
                                rec.id.lsn, rec.id.term, prev.term
                            ),
                        ));
                    }
                    visit(rec.id, &rec.payload)?;
                    summary.first_lsn.get_or_insert(rec.id.lsn);
                    summary.last_lsn = Some(rec.id.lsn);
                    summary.last = Some(rec.id);
                    summary.records += 1;
                    next += 1;
                    pos += rec.len;
                }
                Err(_) if data[pos..].iter().all(|b| *b == 0) => {
                    // Preallocated space after the last record: a clean end.
                    data.truncate(pos);
                    break;
                }
                Err(detail) => {
                    if !last || durable_record_follows(&data, pos, next, version) {
                        return Err(corrupt(pos as u64, detail));
                    }
                    // Torn tail: the crash interrupted this append.
                    summary.torn_tail_bytes += (data.len() - pos) as u64;
                    if repair {
                        file.set_len(pos as u64)
                            .and_then(|_| file.sync())
                            .map_err(|e| {
                                Error::io(format!("cutting torn tail of {}", path.display()), e)
                            })?;
                    }
                    data.truncate(pos);
                    break;
                }
            }
        }
        summary.segments.push(SegmentInfo {
            first_lsn,
            path: path.clone(),
            len: pos.min(data.len()) as u64,
            version,
        });
        expected = Some(next);
    }
    Ok(summary)
}

/// Whether a record after the damaged one at `pos` (which should have had
/// LSN `damaged`) passes its checksum and says `damaged` was already durable
/// when it was appended: proof that the damaged record had been acknowledged.
/// Every byte offset is tried, since the damage may be in a length field.
fn durable_record_follows(data: &[u8], pos: usize, damaged: u64, version: u32) -> bool {
    let field = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8"));
    let mut at = pos + 1;
    while at + header_len(version) <= data.len() {
        let (lsn, durable) = (field(at + 8), field(at + 16));
        // Cheap plausibility first; the checksum only for candidates.
        if lsn > damaged
            && lsn - damaged < (1 << 32)
            && durable >= damaged
            && durable < lsn
            && matches!(parse_record(data, at, version), Ok(rec) if rec.durable_before >= damaged)
        {
            return true;
        }
        at += 1;
    }
    false
}

struct JournalState {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    write_pos: u64,
    /// Bytes of the current segment already written (zeros ahead of `write_pos`).
    allocated: u64,
    buf: Vec<u8>,
    buf_first_lsn: Option<u64>,
    appended_lsn: u64,
    syncing: bool,
    poisoned: Option<String>,
    /// Segment files, oldest first: (first LSN, path, format version).
    segments: VecDeque<(u64, PathBuf, u32)>,
    /// The highest LSN an asynchronous waiter needs durable (the flusher's work).
    requested: u64,
    /// Asynchronous waiters: the LSN each waits for, and how to wake it.
    wakers: Vec<(u64, Waker)>,
    /// Tells the flusher thread to stop.
    stop: bool,
    /// Threads blocked in [`Journal::wait_durable`] for another's sync
    /// (`flushed` is signalled only when there are some: a futex call per
    /// fsync otherwise wasted).
    blocked: usize,
    /// The flusher thread waits for work (`work` is signalled only then).
    flusher_idle: bool,
}

/// The journal writer.
pub struct Journal {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    segment_bytes: u64,
    /// Journal space is zero-filled ahead of the records in chunks of this size.
    chunk: u64,
    compression: bool,
    metrics: Arc<Metrics>,
    state: Mutex<JournalState>,
    flushed: Condvar,
    /// Wakes the flusher thread (new requests, a sync ended, stop).
    work: Condvar,
    /// Set once `JournalState::poisoned` is (read without the latch).
    failed: AtomicBool,
    durable_lsn: AtomicU64,
}

impl Journal {
    /// Starts a fresh segment for records from `next_lsn` on; `existing`
    /// lists the segments already on disk, oldest first (found by [`scan`]).
    pub fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        next_lsn: u64,
        existing: &[SegmentInfo],
        segment_bytes: u64,
        compression: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Journal> {
        let mut segments: VecDeque<(u64, PathBuf, u32)> = existing
            .iter()
            .filter(|seg| seg.first_lsn != next_lsn)
            .map(|seg| (seg.first_lsn, seg.path.clone(), seg.version))
            .collect();
        let (file, path) = new_segment(&*vfs, dir, next_lsn)?;
        segments.push_back((next_lsn, path.clone(), SEGMENT_VERSION));
        Ok(Journal {
            vfs,
            dir: dir.to_path_buf(),
            segment_bytes,
            chunk: (segment_bytes / 8).clamp(64 << 10, 4 << 20),
            compression,
            metrics,
            state: Mutex::new(JournalState {
                file,
                path,
                write_pos: SEGMENT_HEADER_LEN as u64,
                allocated: SEGMENT_HEADER_LEN as u64,
                buf: Vec::new(),
                buf_first_lsn: None,
                appended_lsn: next_lsn - 1,
                syncing: false,
                poisoned: None,
                segments,
                requested: 0,
                wakers: Vec::new(),
                stop: false,
                blocked: 0,
                flusher_idle: false,
            }),
            flushed: Condvar::new(),
            work: Condvar::new(),
            failed: AtomicBool::new(false),
            durable_lsn: AtomicU64::new(next_lsn - 1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, JournalState> {
        self.state.lock().expect("journal latch poisoned")
    }

    /// The highest LSN known to be durable.
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn.load(Ordering::Acquire)
    }

    /// The reason the journal refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        // Asked by every transaction: the latch only once something failed.
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.lock().poisoned.clone()
    }

    /// Appends the record for `lsn` (which must follow the last one) to the
    /// journal buffer. It is durable only after [`Journal::wait_durable`].
    pub fn append(&self, lsn: u64, payload: &[u8]) -> Result<()> {
        self.append_record(RecordId::data(lsn), payload)
    }

    /// Appends a record of any kind and term (a replicated log's entry):
    /// like [`Journal::append`], its LSN must follow the last one.
    pub fn append_record(&self, id: RecordId, payload: &[u8]) -> Result<()> {
        let lsn = id.lsn;
        if payload.len() > MAX_RECORD_LEN {
            return Err(Error::TooLarge {
                what: "commit record",
                len: payload.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let mut s = self.lock();
        if let Some(why) = &s.poisoned {
            return Err(Error::Poisoned(why.clone()));
        }
        if lsn != s.appended_lsn + 1 {
            return Err(Error::LsnOrder {
                expected: s.appended_lsn + 1,
                got: lsn,
            });
        }
        if payload.len() >= EARLY_WRITE_BYTES && !s.syncing {
            // A big record (a bulk load's commit) goes to the file straight
            // from the caller's buffer, after whatever is buffered, instead
            // of being copied into the buffer first.
            let (stored, flags) = stored_form(payload, self.compression);
            let mut head = std::mem::take(&mut s.buf);
            head.extend_from_slice(&record_header(id, self.durable_lsn(), &stored, flags));
            add(
                &self.metrics.journal_bytes,
                (RECORD_HEADER_LEN + stored.len()) as u64,
            );
            let saved = (payload.len() - stored.len()) as u64;
            add(&self.metrics.journal_bytes_saved_by_compression, saved);
            inc(&self.metrics.journal_records);
            s.appended_lsn = lsn;
            return self.write_out(&mut s, &[&head, &stored]);
        }
        let before = s.buf.len();
        let saved = encode_record(
            &mut s.buf,
            id,
            self.durable_lsn(),
            payload,
            self.compression,
        );
        add(&self.metrics.journal_bytes, (s.buf.len() - before) as u64);
        add(&self.metrics.journal_bytes_saved_by_compression, saved);
        inc(&self.metrics.journal_records);
        s.buf_first_lsn.get_or_insert(lsn);
        s.appended_lsn = lsn;
        if s.buf.len() >= EARLY_WRITE_BYTES && !s.syncing {
            // Bound the buffer: write it out now, fsync later.
            let data = std::mem::take(&mut s.buf);
            return self.write_out(&mut s, &[&data]);
        }
        Ok(())
    }

    /// Writes `parts` one after the other at the end of the journal (not
    /// yet durable): the buffer taken out, or a big record. The buffer is
    /// then empty. A failed write poisons the journal.
    fn write_out(&self, s: &mut JournalState, parts: &[&[u8]]) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let pos = s.write_pos;
        let written =
            preallocate(&*s.file, s.allocated, pos + len as u64, self.chunk).and_then(|end| {
                s.allocated = end;
                let mut at = pos;
                for part in parts {
                    s.file.write_at(part, at)?;
                    at += part.len() as u64;
                }
                Ok(())
            });
        if let Err(e) = written {
            let why = format!("journal write failed: {e}");
            s.poisoned = Some(why.clone());
            self.failed.store(true, Ordering::Release);
            return Err(Error::Poisoned(why));
        }
        s.write_pos += len as u64;
        s.buf_first_lsn = None;
        Ok(())
    }

    /// Waits until `lsn` is durable, fsyncing as the group-commit leader if
    /// nobody else is. An fsync failure poisons the journal for good: every
    /// later write is refused until restart, because after a failed fsync the
    /// state of the file is unknown.
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        let mut s = self.lock();
        loop {
            if self.durable_lsn() >= lsn {
                return Ok(());
            }
            if let Some(why) = &s.poisoned {
                return Err(Error::Poisoned(why.clone()));
            }
            if s.syncing {
                s.blocked += 1;
                s = self.flushed.wait(s).expect("journal latch poisoned");
                s.blocked -= 1;
                continue;
            }
            s = self.sync_as_leader(s);
        }
    }

    /// Writes out the buffer and fsyncs once, for every record appended so
    /// far, then wakes whoever waits for any of them. The caller saw
    /// `syncing` false; the latch is released around the I/O.
    fn sync_as_leader<'a>(
        &'a self,
        mut s: MutexGuard<'a, JournalState>,
    ) -> MutexGuard<'a, JournalState> {
        s.syncing = true;
        let data = std::mem::take(&mut s.buf);
        s.buf_first_lsn = None;
        let pos = s.write_pos;
        s.write_pos += data.len() as u64;
        let target = s.appended_lsn;
        let file = s.file.clone();
        let allocated = s.allocated;
        drop(s);
        let result =
            preallocate(&*file, allocated, pos + data.len() as u64, self.chunk).and_then(|end| {
                if !data.is_empty() {
                    file.write_at(&data, pos)?;
                }
                file.sync()?;
                Ok(end)
            });
        let mut s = self.lock();
        match result {
            Ok(end) => {
                s.allocated = s.allocated.max(end);
                inc(&self.metrics.journal_fsyncs);
                self.durable_lsn.store(target, Ordering::Release);
                if s.write_pos >= self.segment_bytes {
                    s = self.roll_over(s);
                }
            }
            Err(e) => {
                s.poisoned = Some(format!("journal fsync failed: {e}"));
                self.failed.store(true, Ordering::Release);
            }
        }
        s.syncing = false;
        if s.blocked > 0 {
            self.flushed.notify_all();
        }
        if s.flusher_idle {
            // A blocking waiter led this sync; the flusher may have work.
            self.work.notify_one();
        }
        let durable = self.durable_lsn();
        let failed = s.poisoned.is_some();
        let mut woken = Vec::new();
        s.wakers.retain(|(lsn, waker)| {
            let done = failed || *lsn <= durable;
            if done {
                woken.push(waker.clone());
            }
            !done
        });
        if woken.is_empty() {
            return s;
        }
        // Wake outside the latch: a wake may unpark a thread (a syscall),
        // and committers must not queue behind it to append.
        drop(s);
        woken.into_iter().for_each(Waker::wake);
        self.lock()
    }

    /// Polls for `lsn` becoming durable without blocking: when it is not
    /// yet, the waker is registered and the flusher thread (see
    /// [`Journal::run_flusher`]) is asked to fsync.
    pub fn poll_durable(&self, lsn: u64, waker: &Waker) -> Poll<Result<()>> {
        if self.durable_lsn() >= lsn {
            return Poll::Ready(Ok(()));
        }
        let mut s = self.lock();
        if s.stop && !s.syncing && s.poisoned.is_none() {
            // No flusher any more (the engine is closing): sync right here.
            s = self.sync_as_leader(s);
        }
        if self.durable_lsn() >= lsn {
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = &s.poisoned {
            return Poll::Ready(Err(Error::Poisoned(why.clone())));
        }
        if !s
            .wakers
            .iter()
            .any(|(l, w)| *l == lsn && w.will_wake(waker))
        {
            s.wakers.push((lsn, waker.clone()));
        }
        if s.requested < lsn {
            s.requested = lsn;
            if s.flusher_idle {
                self.work.notify_one();
            }
        }
        Poll::Pending
    }

    /// The flusher thread's loop: fsyncs whenever an asynchronous waiter
    /// needs a record durable and no other thread is already syncing, until
    /// [`Journal::stop_flusher`]. Blocking waiters still lead their own
    /// group commits; both share every fsync.
    pub fn run_flusher(&self) {
        let mut s = self.lock();
        loop {
            if s.stop {
                return;
            }
            let wanted = s.requested > self.durable_lsn() && s.poisoned.is_none();
            if !wanted || s.syncing {
                s.flusher_idle = true;
                s = self.work.wait(s).expect("journal latch poisoned");
                s.flusher_idle = false;
                continue;
            }
            s = self.sync_as_leader(s);
        }
    }

    /// Ends [`Journal::run_flusher`]; waiters still registered are woken
    /// (their records are made durable by the final checkpoint, or they see
    /// the journal poisoned).
    pub fn stop_flusher(&self) {
        let mut s = self.lock();
        s.stop = true;
        for (_, waker) in s.wakers.drain(..) {
            waker.wake();
        }
        self.work.notify_all();
    }

    /// Makes everything appended so far durable.
    pub fn sync_all(&self) -> Result<()> {
        let lsn = self.lock().appended_lsn;
        self.wait_durable(lsn)
    }

    /// Starts a new segment; called by the sync leader (so nobody else
    /// writes the buffer meanwhile).
    fn roll_over<'a>(&'a self, s: MutexGuard<'a, JournalState>) -> MutexGuard<'a, JournalState> {
        let first = s.buf_first_lsn.unwrap_or(s.appended_lsn + 1);
        drop(s);
        let created = new_segment(&*self.vfs, &self.dir, first);
        let mut s = self.lock();
        match created {
            Ok((file, path)) => {
                s.file = file;
                s.path = path.clone();
                s.write_pos = SEGMENT_HEADER_LEN as u64;
                s.allocated = SEGMENT_HEADER_LEN as u64;
                s.segments.push_back((first, path, SEGMENT_VERSION));
            }
            Err(e) => {
                s.poisoned = Some(format!("could not start a journal segment: {e}"));
                self.failed.store(true, Ordering::Release);
            }
        }
        s
    }

    /// Removes segments whose records are all at or below `checkpoint_lsn`;
    /// when that is past the last record (a replicated engine installed a
    /// snapshot), the log starts over after it ([`Journal::restart_after`]).
    pub fn truncate_through(&self, checkpoint_lsn: u64) -> Result<()> {
        if checkpoint_lsn > self.appended_lsn() {
            return self.restart_after(checkpoint_lsn);
        }
        let doomed: Vec<PathBuf> = {
            let mut s = self.lock();
            let mut doomed = Vec::new();
            while s.segments.len() >= 2 && s.segments[1].0 <= checkpoint_lsn + 1 {
                let (_, path, _) = s.segments.pop_front().expect("two segments");
                doomed.push(path);
            }
            doomed
        };
        for path in &doomed {
            self.vfs.remove(path).map_err(|e| {
                Error::io(format!("removing journal segment {}", path.display()), e)
            })?;
        }
        if !doomed.is_empty() {
            self.vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io(format!("syncing {}", self.dir.display()), e))?;
        }
        Ok(())
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }
}

/// Makes sure the file has real (written) blocks up to `needed`, writing
/// zeros from `allocated` up to the next multiple of `chunk`. Overwriting blocks
/// that already exist lets fdatasync flush only data, not the file size and
/// extent metadata, which roughly halves the cost of a durable commit on
/// common file systems. Returns the new allocated end.
fn preallocate(
    file: &dyn VfsFile,
    allocated: u64,
    needed: u64,
    chunk: u64,
) -> std::io::Result<u64> {
    if needed <= allocated {
        return Ok(allocated);
    }
    let end = needed.div_ceil(chunk) * chunk;
    let zeros = vec![0u8; (1 << 20).min((end - allocated) as usize)];
    let mut at = allocated;
    while at < end {
        let n = zeros.len().min((end - at) as usize);
        file.write_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(end)
}

fn new_segment(vfs: &dyn Vfs, dir: &Path, first_lsn: u64) -> Result<(Arc<dyn VfsFile>, PathBuf)> {
    let path = dir.join(segment_name(first_lsn));
    let ctx = |e| Error::io(format!("creating journal segment {}", path.display()), e);
    let file = vfs.open(&path, true).map_err(ctx)?;
    file.set_len(0).map_err(ctx)?;
    file.write_at(&segment_header(first_lsn), 0).map_err(ctx)?;
    file.sync().map_err(ctx)?;
    vfs.sync_dir(dir).map_err(ctx)?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::OsVfs;

    fn journal(dir: &Path, next: u64, seg: u64) -> Journal {
        let vfs: Arc<dyn Vfs> = Arc::new(OsVfs);
        vfs.create_dir_all(dir).unwrap();
        let summary = scan(&*vfs, dir, true, |_, _| Ok(())).unwrap();
        Journal::create(vfs, dir, next, &summary.segments, seg, true, Arc::default()).unwrap()
    }

    fn read_all(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        scan(&OsVfs, dir, true, |id, p| {
            out.push((id.lsn, p.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn records_round_trip_across_segments_with_compression() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = journal(&dir, 1, 64 * 1024);
        for lsn in 1..=300u64 {
            let payload: Vec<u8> = (0..500 + lsn)
                .map(|i| (i * 7919 % 251) as u8 ^ (i >> 3) as u8)
                .collect();
            j.append(lsn, &payload).unwrap();
            j.wait_durable(lsn).unwrap();
        }
        assert!(j.segment_count() > 1);
        drop(j);
        let recs = read_all(&dir).unwrap();
        assert_eq!(recs.len(), 300);
        for (i, (lsn, p)) in recs.iter().enumerate() {
            assert_eq!(*lsn, i as u64 + 1);
            assert_eq!(p.len(), 500 + *lsn as usize);
        }
    }

    #[test]
    fn a_record_larger_than_the_zero_filled_chunk_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = journal(&dir, 1, 4 << 20);
        let chunk = j.chunk;
        // Incompressible, so it is stored at full length.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let big: Vec<u8> = (0..chunk as usize * 3 + 123)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        j.append(1, &[7; 40]).unwrap();
        j.append(2, &big).unwrap();
        j.wait_durable(2).unwrap();
        j.append(3, &[9; 40]).unwrap();
        j.wait_durable(3).unwrap();
        // A big record that compresses, written straight out too.
        let repetitive = vec![5u8; 3 << 20];
        j.append(4, &repetitive).unwrap();
        j.wait_durable(4).unwrap();
        drop(j);
        let seg = std::fs::read(dir.join(segment_name(1))).unwrap();
        // The file ends on a chunk boundary, in zeros after the last record.
        assert_eq!(seg.len() as u64 % chunk, 0);
        assert!(seg.len() > big.len());
        let last = seg.iter().rposition(|&b| b != 0).unwrap();
        assert!(
            last > big.len(),
            "the big record and the one after it are on disk"
        );
        let recs = read_all(&dir).unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].1, vec![7; 40]);
        assert_eq!(recs[1].1, big);
        assert_eq!(recs[2].1, vec![9; 40]);
        assert_eq!(recs[3].1, repetitive);
    }

    #[test]
    fn torn_tail_is_cut_but_mid_log_damage_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = journal(&dir, 1, 1 << 20);
        for lsn in 1..=5u64 {
            j.append(lsn, &[lsn as u8; 40]).unwrap();
            j.wait_durable(lsn).unwrap();
        }
        drop(j);
        let seg = dir.join(segment_name(1));
        // Records are 80 bytes; the rest of the file is preallocated zeros.
        const REC: usize = RECORD_HEADER_LEN + 40;
        let end = (SEGMENT_HEADER_LEN + 5 * REC) as u64;
        assert_eq!(read_all(&dir).unwrap().len(), 5);
        // Tear the last record (as a crash mid-write would): it is cut, four remain.
        let mut data = std::fs::read(&seg).unwrap();
        data[end as usize - 10..end as usize].fill(0);
        std::fs::write(&seg, &data).unwrap();
        assert_eq!(read_all(&dir).unwrap().len(), 4);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), end - REC as u64);
        // Flip a payload byte of record 2: later records say it was durable,
        // so this is corruption, not a torn tail.
        let original = std::fs::read(&seg).unwrap();
        let mut data = original.clone();
        data[SEGMENT_HEADER_LEN + REC + RECORD_HEADER_LEN + 3] ^= 1;
        std::fs::write(&seg, &data).unwrap();
        let err = read_all(&dir).unwrap_err();
        assert!(matches!(err, Error::JournalCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
        // The same for a flipped bit in record 2's length field.
        let mut data = original.clone();
        data[SEGMENT_HEADER_LEN + REC + 6] ^= 0x10;
        std::fs::write(&seg, &data).unwrap();
        let err = read_all(&dir).unwrap_err();
        assert!(matches!(err, Error::JournalCorrupt { .. }), "{err}");
    }

    #[test]
    fn concurrent_committers_share_fsyncs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = Arc::new(journal(&dir, 1, 1 << 30));
        let next = Arc::new(Mutex::new(1u64));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                let (j, next) = (j.clone(), next.clone());
                scope.spawn(move || {
                    for _ in 0..50 {
                        let lsn = {
                            let mut n = next.lock().unwrap();
                            let lsn = *n;
                            j.append(lsn, b"commit").unwrap();
                            *n += 1;
                            lsn
                        };
                        j.wait_durable(lsn).unwrap();
                    }
                });
            }
        });
        let fsyncs = crate::metrics::get(&j.metrics.journal_fsyncs);
        assert!(fsyncs < 400, "group commit never shared an fsync: {fsyncs}");
        assert_eq!(read_all(&dir).unwrap().len(), 400);
    }
}
