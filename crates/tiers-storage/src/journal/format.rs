//! The journal's on-disk format: segment file names and headers, and the
//! encoding, checksums and parsing of records (the tables are in the
//! [`super`] module's documentation).

use std::path::Path;

const SEGMENT_MAGIC: &[u8; 8] = b"TIERSWAL";
/// The format version new segments are written in (2: a term and a kind in
/// every record). Segments of version 1 are still read.
pub const SEGMENT_VERSION: u32 = 2;
/// Length of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Length of a record header (format version 2).
pub const RECORD_HEADER_LEN: usize = 40;
/// Length of a record header in format version 1 segments.
pub const V1_RECORD_HEADER_LEN: usize = 28;
const FLAG_LZ4: u8 = 1;
/// Records larger than this are refused (the write-set limit keeps commits far below).
pub const MAX_RECORD_LEN: usize = u32::MAX as usize / 2;
/// Payloads shorter than this are never compressed.
const COMPRESS_MIN: usize = 128;

/// The file name of the segment whose first record has `first_lsn`.
pub fn segment_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.wal")
}

pub(super) fn parse_segment_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

pub(super) fn segment_header(first_lsn: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The length of a record header in a segment of `version`.
pub(super) fn header_len(version: u32) -> usize {
    if version == 1 {
        V1_RECORD_HEADER_LEN
    } else {
        RECORD_HEADER_LEN
    }
}

/// What a journal record holds (byte 25 of its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A commit record (see [`crate::record`]): the only kind that changes data.
    Data,
    /// A replicated log's no-op entry (a new leader's first entry).
    Blank,
    /// A replicated log's membership entry; the payload is the cluster's
    /// own encoding of the member list, opaque to the engine.
    Membership,
}

impl RecordKind {
    /// The kind's byte on disk.
    pub fn code(self) -> u8 {
        match self {
            RecordKind::Data => 0,
            RecordKind::Blank => 1,
            RecordKind::Membership => 2,
        }
    }

    fn from_code(code: u8) -> Option<RecordKind> {
        match code {
            0 => Some(RecordKind::Data),
            1 => Some(RecordKind::Blank),
            2 => Some(RecordKind::Membership),
            _ => None,
        }
    }
}

/// Checks a segment header; returns its first LSN and format version.
pub(super) fn check_segment_header(data: &[u8]) -> std::result::Result<(u64, u32), String> {
    if data.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "segment header is {} of {SEGMENT_HEADER_LEN} bytes",
            data.len()
        ));
    }
    if &data[0..8] != SEGMENT_MAGIC {
        return Err("segment does not start with the TIERSWAL magic".into());
    }
    let crc = u32::from_le_bytes(data[24..28].try_into().expect("4"));
    if crc != crc32c::crc32c(&data[0..24]) {
        return Err("segment header checksum mismatch".into());
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4"));
    if version != 1 && version != SEGMENT_VERSION {
        return Err(format!(
            "unsupported journal format version {version} (this build reads versions 1 and 2)"
        ));
    }
    Ok((
        u64::from_le_bytes(data[16..24].try_into().expect("8")),
        version,
    ))
}

/// Appends one encoded record to `out`; returns bytes saved by compression.
pub(super) fn encode_record(
    out: &mut Vec<u8>,
    id: RecordId,
    durable_before: u64,
    payload: &[u8],
    compress: bool,
) -> u64 {
    let (stored, flags) = stored_form(payload, compress);
    out.extend_from_slice(&record_header(id, durable_before, &stored, flags));
    out.extend_from_slice(&stored);
    (payload.len() - stored.len()) as u64
}

/// How `payload` is stored: LZ4-compressed when that is smaller, and the
/// record flags that say so.
pub(super) fn stored_form(payload: &[u8], compress: bool) -> (std::borrow::Cow<'_, [u8]>, u8) {
    if compress && payload.len() >= COMPRESS_MIN {
        let compressed = lz4_flex::compress_prepend_size(payload);
        if compressed.len() < payload.len() {
            return (compressed.into(), FLAG_LZ4);
        }
    }
    (payload.into(), 0)
}

/// The header of a record storing `stored`; its checksum covers the rest
/// of the header and `stored`.
pub(super) fn record_header(
    id: RecordId,
    durable_before: u64,
    stored: &[u8],
    flags: u8,
) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[4..8].copy_from_slice(&(stored.len() as u32).to_le_bytes());
    h[8..16].copy_from_slice(&id.lsn.to_le_bytes());
    h[16..24].copy_from_slice(&durable_before.to_le_bytes());
    h[24] = flags;
    h[25] = id.kind.code();
    h[32..40].copy_from_slice(&id.term.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[4..]), stored);
    h[0..4].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Which record a record is: its LSN (in a replicated log, its index), the
/// term of the leader that wrote it (0 on a single node and in version 1
/// segments), and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordId {
    /// The record's LSN.
    pub lsn: u64,
    /// The leader term that wrote it.
    pub term: u64,
    /// What it holds.
    pub kind: RecordKind,
}

impl RecordId {
    /// A single node's commit record.
    pub fn data(lsn: u64) -> RecordId {
        RecordId {
            lsn,
            term: 0,
            kind: RecordKind::Data,
        }
    }
}

/// A record parsed from a segment.
pub(super) struct Parsed {
    pub id: RecordId,
    pub durable_before: u64,
    pub payload: Vec<u8>,
    pub len: usize,
}

/// Parses the record at `pos` of a segment of format `version`; `Err` says
/// why it is not a valid record.
pub(super) fn parse_record(
    data: &[u8],
    pos: usize,
    version: u32,
) -> std::result::Result<Parsed, String> {
    let rest = &data[pos..];
    let head = header_len(version);
    if rest.len() < head {
        return Err(format!("record header is {} of {head} bytes", rest.len()));
    }
    let len = u32::from_le_bytes(rest[4..8].try_into().expect("4")) as usize;
    if len > MAX_RECORD_LEN || rest.len() - head < len {
        return Err(format!(
            "record length {len} runs past the end of the segment"
        ));
    }
    let total = head + len;
    let crc = u32::from_le_bytes(rest[0..4].try_into().expect("4"));
    let actual = crc32c::crc32c(&rest[4..total]);
    if crc != actual {
        return Err(format!(
            "record checksum mismatch: expected {crc:#010x}, found {actual:#010x}"
        ));
    }
    let lsn = u64::from_le_bytes(rest[8..16].try_into().expect("8"));
    let durable_before = u64::from_le_bytes(rest[16..24].try_into().expect("8"));
    let flags = rest[24];
    let (kind, term) = if version == 1 {
        (RecordKind::Data, 0)
    } else {
        let kind = RecordKind::from_code(rest[25]).ok_or_else(|| {
            format!(
                "record passed its checksum but has unknown kind {}",
                rest[25]
            )
        })?;
        (
            kind,
            u64::from_le_bytes(rest[32..40].try_into().expect("8")),
        )
    };
    let stored = &rest[head..total];
    let payload = if flags & FLAG_LZ4 != 0 {
        let claimed = stored
            .get(0..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")) as usize)
            .ok_or("compressed record shorter than its size prefix")?;
        // LZ4 expands at most ~255x; refuse sizes no valid record can have
        // before allocating for them.
        if claimed > MAX_RECORD_LEN || claimed > stored.len().saturating_mul(255) + 64 {
            return Err(format!(
                "compressed record claims an impossible size {claimed}"
            ));
        }
        lz4_flex::decompress_size_prepended(stored)
            .map_err(|e| format!("record passed its checksum but does not decompress: {e}"))?
    } else {
        stored.to_vec()
    };
    Ok(Parsed {
        id: RecordId { lsn, term, kind },
        durable_before,
        payload,
        len: total,
    })
}
