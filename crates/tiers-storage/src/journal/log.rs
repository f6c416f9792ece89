//! The journal as a replicated log: what a consensus layer needs beyond
//! appending (see `tiers-cluster`). It reads records back by LSN range,
//! cuts off an uncommitted suffix when a new leader's log disagrees with
//! this one, and keeps two small state files next to the segments: the
//! vote (fsynced before it is reported saved) and the commit index (a hint
//! written without fsync, clamped to the log on open).
//!
//! A state file holds two 512-byte slots written alternately, so a torn
//! write leaves the other slot in force (the meta pages' trick, without
//! needing a rename):
//!
//! | bytes | slot field |
//! |---|---|
//! | 0..4 | CRC32C of bytes 4..16+len |
//! | 4..12 | sequence number (the higher valid slot wins) |
//! | 12..16 | value length `len` (at most 496) |
//! | 16.. | value (the consensus layer's own encoding) |

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::format::{RecordId, SEGMENT_HEADER_LEN, SEGMENT_VERSION, parse_record};
use super::{Journal, new_segment};
use crate::error::{Error, Result};
use crate::vfs::{Vfs, VfsFile};

/// A record read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Its LSN, term and kind.
    pub id: RecordId,
    /// Its payload, decompressed.
    pub payload: Vec<u8>,
}

const SLOT: usize = 512;
const SLOT_HEAD: usize = 16;
/// The largest value a [`StateFile`] holds.
pub const MAX_STATE_LEN: usize = SLOT - SLOT_HEAD;

impl Journal {
    /// Reads records `from..=to` back from the segment files. Every one of
    /// them must be durable (the caller keeps the undurable tail in memory);
    /// a record that is not in the journal (removed, or never written) is
    /// an error naming it.
    pub fn read_range(&self, from: u64, to: u64) -> Result<Vec<OwnedRecord>> {
        if from > to {
            return Ok(Vec::new());
        }
        if to > self.durable_lsn() {
            return Err(Error::LogMissing {
                lsn: to,
                detail: format!(
                    "it is not durable yet (durable through {})",
                    self.durable_lsn()
                ),
            });
        }
        let segments: Vec<(u64, PathBuf, u32)> = {
            let s = self.lock();
            let mut picked = Vec::new();
            for (i, (first, path, version)) in s.segments.iter().enumerate() {
                let next_first = s.segments.get(i + 1).map_or(u64::MAX, |n| n.0);
                if next_first > from && *first <= to {
                    picked.push((*first, path.clone(), *version));
                }
            }
            picked
        };
        let mut out = Vec::with_capacity((to - from + 1).min(4096) as usize);
        for (first, path, version) in segments {
            if first > from + out.len() as u64 {
                break;
            }
            let data = read_file(&*self.vfs, &path)?;
            let mut pos = SEGMENT_HEADER_LEN;
            while pos < data.len() {
                let Ok(rec) = parse_record(&data, pos, version) else {
                    break;
                };
                pos += rec.len;
                if rec.id.lsn > to {
                    break;
                }
                if rec.id.lsn >= from {
                    out.push(OwnedRecord {
                        id: rec.id,
                        payload: rec.payload,
                    });
                }
            }
        }
        let want = to - from + 1;
        if out.len() as u64 != want || out.first().is_some_and(|r| r.id.lsn != from) {
            let missing = out
                .iter()
                .enumerate()
                .find(|(i, r)| r.id.lsn != from + *i as u64)
                .map_or(from + out.len() as u64, |(i, _)| from + i as u64);
            return Err(Error::LogMissing {
                lsn: missing,
                detail: "no journal segment holds it (it was purged)".into(),
            });
        }
        Ok(out)
    }

    /// The journal latch once no sync is in progress (nobody writes the
    /// segment behind a rewrite), or the reason the journal is poisoned.
    fn lock_idle(&self) -> Result<std::sync::MutexGuard<'_, super::JournalState>> {
        let mut s = self.lock();
        while s.syncing {
            s.blocked += 1;
            s = self.flushed.wait(s).expect("journal latch poisoned");
            s.blocked -= 1;
        }
        if let Some(why) = &s.poisoned {
            return Err(Error::Poisoned(why.clone()));
        }
        Ok(s)
    }

    /// Poisons the journal: a rewrite failed half-way, so nothing more may
    /// be appended until a restart recovers from the files.
    fn fail(&self, s: &mut super::JournalState, why: String) -> Error {
        s.poisoned = Some(why.clone());
        self.failed.store(true, Ordering::Release);
        Error::Poisoned(why)
    }

    /// The highest LSN appended (durable or not).
    pub fn appended_lsn(&self) -> u64 {
        self.lock().appended_lsn
    }

    /// Removes every record after `lsn` (an uncommitted suffix a new
    /// leader overrides): the segment holding `lsn + 1` is cut at that
    /// record and fsynced, later segments are removed, and the directory is
    /// fsynced, all before this returns. Appends continue at `lsn + 1`.
    pub fn truncate_after(&self, lsn: u64) -> Result<()> {
        let mut s = self.lock_idle()?;
        if lsn >= s.appended_lsn {
            return Ok(());
        }
        if !s.buf.is_empty() {
            let data = std::mem::take(&mut s.buf);
            self.write_out(&mut s, &[&data])?;
        }
        let keep = s
            .segments
            .iter()
            .rposition(|(first, _, _)| *first <= lsn + 1)
            .ok_or_else(|| Error::LogMissing {
                lsn: lsn + 1,
                detail: "cannot truncate before the oldest journal segment".into(),
            })?;
        let doomed: Vec<PathBuf> = s
            .segments
            .drain(keep + 1..)
            .map(|(_, path, _)| path)
            .collect();
        let (first, path, version) = s.segments[keep].clone();
        let fail = |s: &mut super::JournalState, why: String| self.fail(s, why);
        let io = |what: &str, p: &Path, e: std::io::Error| {
            format!("journal truncation failed {what} {}: {e}", p.display())
        };
        let file = match self.vfs.open(&path, false) {
            Ok(f) => f,
            Err(e) => return Err(fail(&mut s, io("opening", &path, e))),
        };
        let data = match read_file(&*self.vfs, &path) {
            Ok(d) => d,
            Err(e) => return Err(fail(&mut s, e.to_string())),
        };
        let mut pos = SEGMENT_HEADER_LEN;
        while pos < data.len() {
            match parse_record(&data, pos, version) {
                Ok(rec) if rec.id.lsn <= lsn => pos += rec.len,
                _ => break,
            }
        }
        let cut = file.set_len(pos as u64).and_then(|_| file.sync());
        if let Err(e) = cut {
            return Err(fail(&mut s, io("cutting", &path, e)));
        }
        for p in &doomed {
            if let Err(e) = self.vfs.remove(p) {
                return Err(fail(&mut s, io("removing", p, e)));
            }
        }
        if version != SEGMENT_VERSION || first == lsn + 1 {
            // A segment of the old format takes no new records; an empty one
            // is replaced by a fresh segment that starts where appends resume.
            if first == lsn + 1 {
                if let Err(e) = self.vfs.remove(&path) {
                    return Err(fail(&mut s, io("removing", &path, e)));
                }
                s.segments.pop_back();
            }
            match new_segment(&*self.vfs, &self.dir, lsn + 1) {
                Ok((file, path)) => {
                    s.file = file;
                    s.path = path.clone();
                    s.write_pos = SEGMENT_HEADER_LEN as u64;
                    s.allocated = SEGMENT_HEADER_LEN as u64;
                    s.segments.push_back((lsn + 1, path, SEGMENT_VERSION));
                }
                Err(e) => return Err(fail(&mut s, e.to_string())),
            }
        } else {
            s.file = file;
            s.path = path;
            s.write_pos = pos as u64;
            s.allocated = pos as u64;
        }
        if let Err(e) = self.vfs.sync_dir(&self.dir) {
            return Err(fail(&mut s, io("syncing", &self.dir, e)));
        }
        s.appended_lsn = lsn;
        s.buf_first_lsn = None;
        s.requested = s.requested.min(lsn);
        if self.durable_lsn() > lsn {
            self.durable_lsn.store(lsn, Ordering::Release);
        }
        Ok(())
    }
}

impl Journal {
    /// The LSN the oldest segment starts at: records below it were removed
    /// (when it is past [`Journal::appended_lsn`], the journal holds none).
    pub fn first_lsn(&self) -> u64 {
        let s = self.lock();
        s.segments
            .front()
            .map_or(s.appended_lsn + 1, |(first, _, _)| *first)
    }

    /// Starts the log over after `lsn`, which is past every record appended:
    /// a snapshot installed at `lsn` holds them all (any that disagree with
    /// it included), and appends continue at `lsn + 1`. The old segments are
    /// removed first, then a fresh one starting at `lsn + 1` is created, each
    /// step fsynced with the directory, so a crash in between leaves the old
    /// log or an empty one, both covered by the checkpoint at `lsn` that
    /// must be durable before this is called.
    pub fn restart_after(&self, lsn: u64) -> Result<()> {
        let mut s = self.lock_idle()?;
        if lsn <= s.appended_lsn {
            return Ok(());
        }
        let fail = |s: &mut super::JournalState, why: String| self.fail(s, why);
        let doomed: Vec<PathBuf> = s.segments.drain(..).map(|(_, path, _)| path).collect();
        for p in &doomed {
            if let Err(e) = self.vfs.remove(p) {
                let why = format!("restarting the journal: removing {}: {e}", p.display());
                return Err(fail(&mut s, why));
            }
        }
        if let Err(e) = self.vfs.sync_dir(&self.dir) {
            let why = format!(
                "restarting the journal: syncing {}: {e}",
                self.dir.display()
            );
            return Err(fail(&mut s, why));
        }
        match new_segment(&*self.vfs, &self.dir, lsn + 1) {
            Ok((file, path)) => {
                s.file = file;
                s.path = path.clone();
                s.write_pos = SEGMENT_HEADER_LEN as u64;
                s.allocated = SEGMENT_HEADER_LEN as u64;
                s.segments.push_back((lsn + 1, path, SEGMENT_VERSION));
            }
            Err(e) => return Err(fail(&mut s, e.to_string())),
        }
        if let Err(e) = self.vfs.sync_dir(&self.dir) {
            let why = format!(
                "restarting the journal: syncing {}: {e}",
                self.dir.display()
            );
            return Err(fail(&mut s, why));
        }
        s.buf.clear();
        s.buf_first_lsn = None;
        s.appended_lsn = lsn;
        s.requested = s.requested.max(lsn);
        self.durable_lsn.store(lsn, Ordering::Release);
        // Whoever waited for a record now dropped waits no more: the
        // snapshot holds it (or what replaced it).
        let mut woken = Vec::new();
        s.wakers.retain(|(at, waker)| {
            if *at <= lsn {
                woken.push(waker.clone());
                false
            } else {
                true
            }
        });
        drop(s);
        self.flushed.notify_all();
        for waker in woken {
            waker.wake();
        }
        Ok(())
    }
}

fn read_file(vfs: &dyn Vfs, path: &Path) -> Result<Vec<u8>> {
    let ctx = |e| Error::io(format!("reading journal segment {}", path.display()), e);
    let file = vfs.open(path, false).map_err(ctx)?;
    let len = file.len().map_err(ctx)?;
    let mut data = vec![0u8; len as usize];
    let n = file.read_at(&mut data, 0).map_err(ctx)?;
    data.truncate(n);
    Ok(data)
}

/// A small value kept in two alternating slots of a file (the layout is in
/// the module documentation): the vote and the commit index.
pub struct StateFile {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    seq: u64,
}

impl StateFile {
    /// Opens (creating) the state file at `path`; returns it and its value,
    /// if a valid slot holds one.
    pub fn open(vfs: &dyn Vfs, path: &Path) -> Result<(StateFile, Option<Vec<u8>>)> {
        let ctx = |e| Error::io(format!("opening {}", path.display()), e);
        let file = vfs.open(path, true).map_err(ctx)?;
        let mut data = vec![0u8; 2 * SLOT];
        let n = file.read_at(&mut data, 0).map_err(ctx)?;
        data.truncate(n);
        let best = (0..2)
            .filter_map(|slot| decode_slot(data.get(slot * SLOT..(slot + 1) * SLOT)?))
            .max_by_key(|(seq, _)| *seq);
        let (seq, value) = match best {
            Some((seq, value)) => (seq, Some(value)),
            None => (0, None),
        };
        Ok((
            StateFile {
                file,
                path: path.to_path_buf(),
                seq,
            },
            value,
        ))
    }

    /// Writes `value` to the slot not in force; with `sync`, fsyncs before
    /// returning (without, a crash may keep the previous value).
    pub fn save(&mut self, value: &[u8], sync: bool) -> Result<()> {
        if value.len() > MAX_STATE_LEN {
            return Err(Error::TooLarge {
                what: "log state value",
                len: value.len(),
                max: MAX_STATE_LEN,
            });
        }
        let seq = self.seq + 1;
        let mut slot = vec![0u8; SLOT];
        slot[4..12].copy_from_slice(&seq.to_le_bytes());
        slot[12..16].copy_from_slice(&(value.len() as u32).to_le_bytes());
        slot[SLOT_HEAD..SLOT_HEAD + value.len()].copy_from_slice(value);
        let crc = crc32c::crc32c(&slot[4..SLOT_HEAD + value.len()]);
        slot[0..4].copy_from_slice(&crc.to_le_bytes());
        let at = (seq % 2) * SLOT as u64;
        let ctx = |e| Error::io(format!("writing {}", self.path.display()), e);
        self.file.write_at(&slot, at).map_err(ctx)?;
        if sync {
            self.file.sync().map_err(ctx)?;
        }
        self.seq = seq;
        Ok(())
    }
}

fn decode_slot(slot: &[u8]) -> Option<(u64, Vec<u8>)> {
    if slot.len() < SLOT {
        return None;
    }
    let seq = u64::from_le_bytes(slot[4..12].try_into().ok()?);
    let len = u32::from_le_bytes(slot[12..16].try_into().ok()?) as usize;
    if seq == 0 || len > MAX_STATE_LEN {
        return None;
    }
    let crc = u32::from_le_bytes(slot[0..4].try_into().ok()?);
    (crc == crc32c::crc32c(&slot[4..SLOT_HEAD + len]))
        .then(|| (seq, slot[SLOT_HEAD..SLOT_HEAD + len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{RecordKind, scan};
    use crate::vfs::OsVfs;

    fn journal(dir: &Path, next: u64) -> Journal {
        let vfs: Arc<dyn Vfs> = Arc::new(OsVfs);
        vfs.create_dir_all(dir).unwrap();
        let summary = scan(&*vfs, dir, true, |_, _| Ok(())).unwrap();
        Journal::create(
            vfs,
            dir,
            next,
            &summary.segments,
            64 * 1024,
            false,
            Arc::default(),
        )
        .unwrap()
    }

    fn entry(lsn: u64, term: u64) -> RecordId {
        RecordId {
            lsn,
            term,
            kind: if lsn.is_multiple_of(7) {
                RecordKind::Blank
            } else {
                RecordKind::Data
            },
        }
    }

    fn payload(lsn: u64) -> Vec<u8> {
        (0..300 + lsn * 13 % 700).map(|i| (i ^ lsn) as u8).collect()
    }

    #[test]
    fn records_read_back_by_range_with_terms_and_kinds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = journal(&dir, 1);
        for lsn in 1..=400u64 {
            j.append_record(entry(lsn, 1 + lsn / 100), &payload(lsn))
                .unwrap();
            if lsn.is_multiple_of(20) {
                j.sync_all().unwrap(); // segments roll over after a sync
            }
        }
        assert!(j.segment_count() > 2, "the range spans segments");
        let got = j.read_range(95, 310).unwrap();
        assert_eq!(got.len(), 216);
        for (i, r) in got.iter().enumerate() {
            let lsn = 95 + i as u64;
            assert_eq!(r.id, entry(lsn, 1 + lsn / 100));
            assert_eq!(r.payload, payload(lsn));
        }
        j.append_record(entry(401, 5), b"not yet durable").unwrap();
        let err = j.read_range(400, 401).unwrap_err();
        assert!(err.to_string().contains("not durable"), "{err}");
        j.truncate_through(300).unwrap();
        let err = j.read_range(1, 2).unwrap_err();
        assert!(err.to_string().contains("purged"), "{err}");
    }

    #[test]
    fn truncate_after_cuts_the_suffix_durably_and_appends_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = journal(&dir, 1);
        for lsn in 1..=300u64 {
            j.append_record(entry(lsn, 1), &payload(lsn)).unwrap();
            if lsn.is_multiple_of(20) {
                j.sync_all().unwrap();
            }
        }
        let segments = j.segment_count();
        // An uncommitted suffix from a deposed leader is replaced by the new
        // leader's entries of a higher term.
        j.truncate_after(120).unwrap();
        assert!(j.segment_count() < segments);
        assert_eq!(j.appended_lsn(), 120);
        assert_eq!(j.durable_lsn(), 120);
        for lsn in 121..=130u64 {
            j.append_record(entry(lsn, 2), b"new leader").unwrap();
        }
        j.sync_all().unwrap();
        drop(j);
        let mut seen = Vec::new();
        scan(&OsVfs, &dir, false, |id, p| {
            seen.push((id, p.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 130);
        assert_eq!(seen[119], (entry(120, 1), payload(120)));
        assert_eq!(seen[120], (entry(121, 2), b"new leader".to_vec()));
        // Cutting at a segment's first record, and everything.
        let j = journal(&dir, 131);
        j.truncate_after(0).unwrap();
        j.append_record(entry(1, 3), b"fresh").unwrap();
        j.sync_all().unwrap();
        assert_eq!(j.read_range(1, 1).unwrap()[0].payload, b"fresh");
    }

    #[test]
    fn a_state_file_keeps_the_last_good_slot() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("vote");
        let (mut f, v) = StateFile::open(&OsVfs, &path).unwrap();
        assert_eq!(v, None);
        f.save(b"term 1", true).unwrap();
        f.save(b"term 2", true).unwrap();
        drop(f);
        let (mut f, v) = StateFile::open(&OsVfs, &path).unwrap();
        assert_eq!(v.as_deref(), Some(&b"term 2"[..]));
        f.save(b"term 3", true).unwrap();
        // Tear the newest slot: the one before it is in force.
        let mut data = std::fs::read(&path).unwrap();
        data[SLOT + 20] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        let (_, v) = StateFile::open(&OsVfs, &path).unwrap();
        assert_eq!(v.as_deref(), Some(&b"term 2"[..]));
        let (mut f, _) = StateFile::open(&OsVfs, &path).unwrap();
        assert!(f.save(&[0; MAX_STATE_LEN + 1], true).is_err());
    }
}
