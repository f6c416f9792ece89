//! Fixed-size pages: the unit of I/O and caching (the book's block size and
//! fixed-length records holding variable-length data).
//!
//! Every page starts with the same 24-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | CRC32C of bytes 4..page_size |
//! | 4..12 | LSN of the commit that last wrote the page (little endian) |
//! | 12..20 | the page's own number, so a misdirected write is detected |
//! | 20 | page kind ([`PageKind`]) |
//! | 21..24 | zero |
//!
//! A page is checked right after it is read and stamped right before it is
//! written; a page that fails its check is an error, never data.

use std::path::Path;

use crate::error::{Error, Result};

/// Page number within the data file. Pages 0 and 1 hold the two meta slots.
pub type PageNo = u64;

/// A cheap hasher for page numbers (the default SipHash is built to resist
/// hostile keys, which page numbers are not, and costs several times more).
#[derive(Debug, Default, Clone, Copy)]
pub struct PageNoHasher(u64);

impl std::hash::Hasher for PageNoHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by page number.
pub type PageMap<V> =
    std::collections::HashMap<PageNo, V, std::hash::BuildHasherDefault<PageNoHasher>>;
/// A set of page numbers.
pub type PageSet = std::collections::HashSet<PageNo, std::hash::BuildHasherDefault<PageNoHasher>>;

/// Size of the common page header.
pub const HEADER_LEN: usize = 24;

/// What a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PageKind {
    /// One of the two checkpoint meta slots.
    Meta = 1,
    /// B+tree branch (interior) node.
    Branch = 2,
    /// B+tree leaf node.
    Leaf = 3,
    /// Part of a large value that does not fit in a leaf.
    Overflow = 4,
    /// Part of the checkpoint's free-page list.
    FreeList = 5,
    /// Hash index header: global depth and directory page list.
    HashHeader = 6,
    /// Hash index directory: bucket pointers.
    HashDir = 7,
    /// Hash index bucket (or an overflow page of one).
    HashBucket = 8,
}

impl PageKind {
    /// Every kind, for reports.
    pub const ALL: [PageKind; 8] = [
        PageKind::Meta,
        PageKind::Branch,
        PageKind::Leaf,
        PageKind::Overflow,
        PageKind::FreeList,
        PageKind::HashHeader,
        PageKind::HashDir,
        PageKind::HashBucket,
    ];

    /// Decodes a kind byte.
    pub fn from_u8(b: u8) -> Option<PageKind> {
        PageKind::ALL.into_iter().find(|k| *k as u8 == b)
    }

    /// A lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            PageKind::Meta => "meta",
            PageKind::Branch => "branch",
            PageKind::Leaf => "leaf",
            PageKind::Overflow => "overflow",
            PageKind::FreeList => "freelist",
            PageKind::HashHeader => "hash-header",
            PageKind::HashDir => "hash-directory",
            PageKind::HashBucket => "hash-bucket",
        }
    }
}

/// The bytes of one page.
pub type PageBuf = Box<[u8]>;

/// A zeroed page buffer with its header filled in (checksum not yet set).
pub fn new_page(page_size: usize, no: PageNo, kind: PageKind, lsn: u64) -> PageBuf {
    let mut buf = vec![0u8; page_size].into_boxed_slice();
    stamp(&mut buf, no, kind, lsn);
    buf
}

/// Turns `buf` (a page buffer with any content) into a zeroed page with
/// its header filled in, like [`new_page`].
pub fn reset_page(buf: &mut [u8], no: PageNo, kind: PageKind, lsn: u64) {
    buf.fill(0);
    stamp(buf, no, kind, lsn);
}

/// Writes a page header (LSN, number, kind; checksum not yet set) over
/// whatever header `buf` had, leaving the body alone.
pub fn stamp(buf: &mut [u8], no: PageNo, kind: PageKind, lsn: u64) {
    buf[4..12].copy_from_slice(&lsn.to_le_bytes());
    buf[12..20].copy_from_slice(&no.to_le_bytes());
    buf[20] = kind as u8;
    buf[21..HEADER_LEN].fill(0);
}

/// Computes and stores the page checksum; call right before the page is written.
pub fn seal(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[4..]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// The LSN stamped in a page header.
pub fn page_lsn(buf: &[u8]) -> u64 {
    u64::from_le_bytes(buf[4..12].try_into().expect("8 bytes"))
}

/// The page number stamped in a page header.
pub fn page_no(buf: &[u8]) -> PageNo {
    u64::from_le_bytes(buf[12..20].try_into().expect("8 bytes"))
}

/// The kind byte of a page header, if valid.
pub fn page_kind(buf: &[u8]) -> Option<PageKind> {
    PageKind::from_u8(buf[20])
}

/// Checks a page read from `file` as page `no`: checksum, self number, and
/// (when given) kind. Returns the page kind.
pub fn check(buf: &[u8], file: &Path, no: PageNo, want: Option<PageKind>) -> Result<PageKind> {
    let expected = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c(&buf[4..]);
    if expected != actual {
        return Err(Error::PageChecksum {
            file: file.to_path_buf(),
            page: no,
            expected,
            actual,
        });
    }
    let stored_no = u64::from_le_bytes(buf[12..20].try_into().expect("8 bytes"));
    if stored_no != no {
        return Err(corrupt(
            file,
            no,
            format!("page header says it is page {stored_no} (misdirected write)"),
        ));
    }
    let Some(kind) = page_kind(buf) else {
        return Err(corrupt(file, no, format!("unknown page kind {}", buf[20])));
    };
    if let Some(want) = want
        && want != kind
        && !(want == PageKind::Branch && kind == PageKind::Leaf)
    {
        return Err(corrupt(
            file,
            no,
            format!(
                "expected a {} page, found a {} page",
                want.name(),
                kind.name()
            ),
        ));
    }
    Ok(kind)
}

/// Builds a [`Error::PageCorrupt`].
pub fn corrupt(file: &Path, no: PageNo, detail: impl Into<String>) -> Error {
    Error::PageCorrupt {
        file: file.to_path_buf(),
        page: no,
        detail: detail.into(),
    }
}

/// Bounds-checked little-endian reads from a page, so a page that passed its
/// checksum but is structurally wrong yields an error instead of a panic.
pub struct Reader<'a> {
    buf: &'a [u8],
    file: &'a Path,
    no: PageNo,
}

impl<'a> Reader<'a> {
    /// Wraps a page's bytes.
    pub fn new(buf: &'a [u8], file: &'a Path, no: PageNo) -> Self {
        Reader { buf, file, no }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// A corruption error for this page.
    pub fn corrupt(&self, detail: impl Into<String>) -> Error {
        corrupt(self.file, self.no, detail)
    }

    /// Bytes `at..at+len`, or a corruption error.
    pub fn slice(&self, at: usize, len: usize) -> Result<&'a [u8]> {
        at.checked_add(len)
            .and_then(|end| self.buf.get(at..end))
            .ok_or_else(|| self.corrupt(format!("field at byte {at} (+{len}) runs past the page")))
    }

    /// A `u16` at `at`.
    pub fn u16(&self, at: usize) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.slice(at, 2)?.try_into().expect("2"),
        ))
    }

    /// A `u32` at `at`.
    pub fn u32(&self, at: usize) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.slice(at, 4)?.try_into().expect("4"),
        ))
    }

    /// A `u64` at `at`.
    pub fn u64(&self, at: usize) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.slice(at, 8)?.try_into().expect("8"),
        ))
    }

    /// A `u8` at `at`.
    pub fn u8(&self, at: usize) -> Result<u8> {
        Ok(self.slice(at, 1)?[0])
    }
}

/// Little-endian writes into a page being built (the builder sizes the page
/// beforehand, so these never run past it).
pub fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a `u32` at `at`.
pub fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a `u64` at `at`.
pub fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_page_checks_and_flipped_bit_is_named() {
        let path = Path::new("data.tdb");
        let mut page = new_page(4096, 7, PageKind::Leaf, 42);
        page[100] = 9;
        seal(&mut page);
        assert_eq!(
            check(&page, path, 7, Some(PageKind::Leaf)).unwrap(),
            PageKind::Leaf
        );
        assert_eq!(page_lsn(&page), 42);
        page[2000] ^= 0x10;
        let err = check(&page, path, 7, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("page 7") && text.contains("data.tdb"),
            "{text}"
        );
        assert!(matches!(err, Error::PageChecksum { page: 7, .. }));
    }

    #[test]
    fn misdirected_page_is_detected() {
        let mut page = new_page(4096, 3, PageKind::Leaf, 1);
        seal(&mut page);
        let err = check(&page, Path::new("f"), 4, None).unwrap_err();
        assert!(err.to_string().contains("misdirected"), "{err}");
    }

    #[test]
    fn reader_reports_out_of_bounds_instead_of_panicking() {
        let page = new_page(4096, 3, PageKind::Leaf, 1);
        let r = Reader::new(&page, Path::new("f"), 3);
        assert!(r.u64(4090).is_err());
        assert!(r.slice(usize::MAX, 2).is_err());
        assert_eq!(r.u64(12).unwrap(), 3);
    }
}
