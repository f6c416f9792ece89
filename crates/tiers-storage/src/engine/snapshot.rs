//! Snapshots of a replicated engine: the whole database as of one applied
//! log entry, as a file that a cluster member streams to a member too far
//! behind to catch up from the log (its entries were purged), and that
//! lets every member purge its log.
//!
//! A snapshot is logical: the trees and their entries as commit records
//! (the [`crate::record`] encoding), not pages, so it is read from an MVCC
//! snapshot while commits go on, and installed through the normal apply
//! path (copy-on-write pages; readers of the old state keep it until they
//! finish). Layout (integers little-endian):
//!
//! ```text
//! header   8  magic "TIERSNAP"
//!          4  format version (1)
//!          8  LSN of the last entry it holds (the entry's index + 1)
//!          8  term of that entry
//!          4  membership length m (0: none), then m bytes (the cluster's encoding)
//!          4  CRC32C of the header bytes before it
//! frames   4  payload length n (1..=16 MiB), 4 CRC32C of the payload, n payload:
//!             one commit record; the first creates every tree, the rest
//!             put B+tree entries and add hash entries, about 1 MiB each
//! end      4  zero, 8 number of frames, 8 number of operations,
//!          4  CRC32C of the 20 bytes before it
//! ```
//!
//! Installing checks the whole file before it changes anything, so a
//! damaged or truncated snapshot is refused with the state left as it was.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Engine, Version};
use crate::error::{Error, Result};
use crate::record::{self, Op, TreeKind};

const MAGIC: &[u8; 8] = b"TIERSNAP";
const FORMAT_VERSION: u32 = 1;
/// A frame is cut once its operations reach this many bytes.
const FRAME_BYTES: usize = 1 << 20;
/// The largest frame payload accepted.
const MAX_FRAME: usize = 16 << 20;

/// What a snapshot holds: the entry it ends at and the membership then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// LSN of the last entry it includes (its log index + 1).
    pub lsn: u64,
    /// That entry's term.
    pub term: u64,
    /// The membership as of it (the cluster's encoding).
    pub membership: Option<Vec<u8>>,
    /// Frames (commit records) in the file.
    pub frames: u64,
    /// Operations (trees and entries) in them.
    pub ops: u64,
}

fn bad(detail: impl Into<String>) -> Error {
    Error::BadSnapshot(detail.into())
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(format!(
                "it ends early, in the {what} (the file is truncated)"
            ))
        } else {
            Error::io(format!("snapshot {what}"), e)
        }
    }
}

/// Writes frames of operations, cut at about [`FRAME_BYTES`].
struct FrameWriter<'a> {
    out: &'a mut dyn Write,
    ops: Vec<Op>,
    bytes: usize,
    frames: u64,
    total_ops: u64,
}

impl FrameWriter<'_> {
    fn push(&mut self, op: Op) -> Result<()> {
        self.bytes += op.size();
        self.ops.push(op);
        self.total_ops += 1;
        if self.bytes >= FRAME_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let payload = record::encode(&self.ops);
        self.ops.clear();
        self.bytes = 0;
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[4..].copy_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        self.out.write_all(&head).map_err(io("frame"))?;
        self.out.write_all(&payload).map_err(io("frame"))?;
        self.frames += 1;
        Ok(())
    }
}

fn write_header(out: &mut dyn Write, lsn: u64, term: u64, membership: Option<&[u8]>) -> Result<()> {
    let m = membership.unwrap_or(&[]);
    let mut head = Vec::with_capacity(32 + m.len() + 4);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&lsn.to_le_bytes());
    head.extend_from_slice(&term.to_le_bytes());
    head.extend_from_slice(&(m.len() as u32).to_le_bytes());
    head.extend_from_slice(m);
    let crc = crc32c::crc32c(&head);
    head.extend_from_slice(&crc.to_le_bytes());
    out.write_all(&head).map_err(io("header"))
}

fn read_u32(input: &mut dyn Read, what: &str) -> Result<u32> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b).map_err(io(what))?;
    Ok(u32::from_le_bytes(b))
}

/// Reads and checks a snapshot's header.
fn read_header(input: &mut dyn Read) -> Result<SnapshotInfo> {
    let mut fixed = [0u8; 32];
    input.read_exact(&mut fixed).map_err(io("header"))?;
    if &fixed[..8] != MAGIC {
        return Err(bad(
            "it does not start with TIERSNAP (not a tiers snapshot)",
        ));
    }
    let version = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "its format version is {version}; this build reads version {FORMAT_VERSION}"
        )));
    }
    let lsn = u64::from_le_bytes(fixed[12..20].try_into().expect("8 bytes"));
    let term = u64::from_le_bytes(fixed[20..28].try_into().expect("8 bytes"));
    let m_len = u32::from_le_bytes(fixed[28..32].try_into().expect("4 bytes")) as usize;
    if m_len > MAX_FRAME {
        return Err(bad(format!("its membership is {m_len} bytes long")));
    }
    let mut membership = vec![0u8; m_len];
    input.read_exact(&mut membership).map_err(io("header"))?;
    let stored = read_u32(input, "header")?;
    let mut crc = crc32c::crc32c(&fixed);
    crc = crc32c::crc32c_append(crc, &membership);
    if crc != stored {
        return Err(bad("its header fails its checksum (the file is damaged)"));
    }
    Ok(SnapshotInfo {
        lsn,
        term,
        membership: (m_len > 0).then_some(membership),
        frames: 0,
        ops: 0,
    })
}

/// Reads the next frame's payload; None at the end (after checking it).
fn read_frame(input: &mut dyn Read, info: &mut SnapshotInfo, seen: u64) -> Result<Option<Vec<u8>>> {
    let len = read_u32(input, "frames")? as usize;
    if len == 0 {
        let mut end = [0u8; 16];
        input.read_exact(&mut end).map_err(io("end"))?;
        let stored = read_u32(input, "end")?;
        let mut whole = [0u8; 20];
        whole[4..].copy_from_slice(&end);
        if crc32c::crc32c(&whole) != stored {
            return Err(bad(
                "its end marker fails its checksum (the file is damaged)",
            ));
        }
        info.frames = u64::from_le_bytes(end[..8].try_into().expect("8 bytes"));
        info.ops = u64::from_le_bytes(end[8..].try_into().expect("8 bytes"));
        if info.frames != seen {
            return Err(bad(format!(
                "its end says {} frames but it holds {seen}",
                info.frames
            )));
        }
        return Ok(None);
    }
    if len > MAX_FRAME {
        return Err(bad(format!(
            "frame {} claims {len} bytes; frames are at most {MAX_FRAME}",
            seen + 1
        )));
    }
    let stored = read_u32(input, "frames")?;
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload).map_err(io("frames"))?;
    if crc32c::crc32c(&payload) != stored {
        return Err(bad(format!(
            "frame {} fails its checksum (the file is damaged)",
            seen + 1
        )));
    }
    Ok(Some(payload))
}

/// Reads a snapshot's header (what it holds), without checking the rest.
pub fn snapshot_header(input: &mut dyn Read) -> Result<SnapshotInfo> {
    read_header(input)
}

/// Checks a whole snapshot: every checksum, that every frame decodes, and
/// that it ends where its end marker says.
pub fn verify_snapshot(input: &mut dyn Read) -> Result<SnapshotInfo> {
    let mut info = read_header(input)?;
    let mut frames = 0u64;
    let mut ops = 0u64;
    while let Some(payload) = read_frame(input, &mut info, frames)? {
        frames += 1;
        ops += record::decode(&payload, info.lsn)
            .map_err(|e| bad(format!("frame {frames} does not decode: {e}")))?
            .len() as u64;
    }
    if ops != info.ops {
        return Err(bad(format!(
            "its end says {} operations but its frames hold {ops}",
            info.ops
        )));
    }
    Ok(info)
}

impl Engine {
    /// Writes a snapshot of the newest applied state to `out` (the layout
    /// is in the module documentation) and returns what it holds. It takes
    /// a checkpoint first, at or after the state it writes, so the log the
    /// snapshot covers is no longer needed to recover and may be purged.
    pub fn write_snapshot(&self, out: &mut dyn Write) -> Result<SnapshotInfo> {
        let txn = self.begin_read();
        self.shared.checkpoint_now()?;
        let version = txn.version().clone();
        write_header(
            out,
            version.lsn,
            version.term,
            version.membership.as_deref(),
        )?;
        let trees = txn.trees()?;
        let mut w = FrameWriter {
            out,
            ops: Vec::new(),
            bytes: 0,
            frames: 0,
            total_ops: 0,
        };
        let names: Vec<(Arc<str>, TreeKind)> = trees
            .iter()
            .map(|(name, info)| (Arc::from(name.as_str()), info.kind))
            .collect();
        for (tree, kind) in &names {
            w.push(Op::Create {
                tree: tree.clone(),
                kind: *kind,
            })?;
        }
        w.flush()?;
        for (tree, kind) in &names {
            match kind {
                TreeKind::BTree => {
                    for entry in txn.range(tree, ..)? {
                        let (key, value) = entry?;
                        w.push(Op::Put {
                            tree: tree.clone(),
                            key,
                            value,
                        })?;
                    }
                }
                TreeKind::Hash => txn.hash_entries(tree, &mut |key, value| {
                    w.push(Op::HashAdd {
                        tree: tree.clone(),
                        key: key.to_vec(),
                        value: value.to_vec(),
                    })
                })?,
            }
        }
        w.flush()?;
        let mut end = [0u8; 20];
        end[4..12].copy_from_slice(&w.frames.to_le_bytes());
        end[12..].copy_from_slice(&w.total_ops.to_le_bytes());
        let crc = crc32c::crc32c(&end);
        w.out.write_all(&end).map_err(io("end"))?;
        w.out.write_all(&crc.to_le_bytes()).map_err(io("end"))?;
        w.out.flush().map_err(io("end"))?;
        Ok(SnapshotInfo {
            lsn: version.lsn,
            term: version.term,
            membership: version.membership.as_deref().map(<[u8]>::to_vec),
            frames: w.frames,
            ops: w.total_ops,
        })
    }

    /// Replicated mode: replaces the whole database with the snapshot in
    /// `input`, unless the engine has applied its entry already. The file
    /// is checked whole first (nothing changes if it is damaged); then the
    /// old trees are dropped and the snapshot's built, invisibly, and
    /// published at once; a checkpoint makes it the recovery start, and
    /// journal records it covers are removed. Readers of the old state keep
    /// it until they finish; a writer that began before it cannot commit
    /// (its first-committer check sees every tree changed).
    pub fn install_snapshot<R: Read + Seek>(&self, input: &mut R) -> Result<SnapshotInfo> {
        if !self.shared.config.replicated {
            return Err(Error::Config(
                "install_snapshot needs an engine opened with Config::replicated".into(),
            ));
        }
        let info = verify_snapshot(input)?;
        input
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("rewinding the snapshot", e))?;
        read_header(input)?;
        let shared = &self.shared;
        shared.check_writable()?;
        {
            let mut guard = shared.writer();
            let w = &mut *guard;
            if info.lsn <= w.latest.lsn {
                return Ok(info);
            }
            let lsn = info.lsn;
            let membership: Option<Arc<[u8]>> = info.membership.as_deref().map(Arc::from);
            let old = crate::catalog::list(&shared.pool, w.latest.catalog_root)?;
            let mut touched: Vec<Op> = old
                .iter()
                .map(|(name, _)| Op::Drop {
                    tree: Arc::from(name.as_str()),
                })
                .collect();
            let apply = |w: &mut super::Writer, ops: &[Op]| -> Result<()> {
                let (horizon, _) = shared.read_horizon();
                let (sealed, root) = shared.stage(w, lsn, ops, horizon).map_err(|e| {
                    shared.poison(format!("installing the snapshot at lsn {lsn} failed: {e}"))
                })?;
                shared.install(w, lsn, sealed);
                let mut v = Version::new(lsn, root);
                v.term = info.term;
                v.membership = membership.clone();
                w.latest = Arc::new(v);
                Ok(())
            };
            if !touched.is_empty() {
                apply(w, &touched.clone())?;
            }
            let mut seen = 0u64;
            let mut scratch = info.clone();
            while let Some(payload) = read_frame(input, &mut scratch, seen)? {
                seen += 1;
                let ops = record::decode(&payload, lsn)?;
                if seen == 1 {
                    touched.extend(ops.iter().map(|op| Op::Drop {
                        tree: Arc::from(op.tree()),
                    }));
                }
                apply(w, &ops)?;
            }
            // Every tree changed as far as a transaction that began before
            // is concerned: its commit conflicts (first committer wins).
            w.history.clear();
            w.history.push_back((lsn, Arc::new(touched)));
            w.proposed.clear();
            let version = w.latest.clone();
            let mut s = shared.snapshots();
            shared.visible_lsn.store(version.lsn, Ordering::Release);
            s.visible = version;
        }
        shared.checkpoint_now()?;
        self.purge_log_through(info.lsn)?;
        Ok(info)
    }
}
