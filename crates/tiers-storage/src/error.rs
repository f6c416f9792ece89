//! The storage engine's error type.
//!
//! Every error says what went wrong and, where a user can act, what to do.
//! Corruption errors name the file, the page or offset, and the evidence
//! (expected and actual checksum); corrupt data is never returned as data.

use std::io;
use std::path::PathBuf;

/// Errors returned by the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A page failed its CRC32C check.
    #[error(
        "checksum mismatch in {file} page {page}: expected crc32c {expected:#010x}, found {actual:#010x}; the page is corrupt (restore from a replica or backup, or run `tiers verify` for a full report)"
    )]
    PageChecksum {
        /// The data file.
        file: PathBuf,
        /// The page number.
        page: u64,
        /// The checksum stored in the page header.
        expected: u32,
        /// The checksum computed over the page contents.
        actual: u32,
    },
    /// A page passed its checksum but its contents are not what the engine expects.
    #[error("corrupt page {page} in {file}: {detail}")]
    PageCorrupt {
        /// The data file.
        file: PathBuf,
        /// The page number.
        page: u64,
        /// What is wrong.
        detail: String,
    },
    /// The journal is damaged somewhere other than a torn tail.
    #[error("corrupt journal {file} at byte {offset}: {detail}")]
    JournalCorrupt {
        /// The journal segment.
        file: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The data directory is not a tiers data directory or is unusable.
    #[error("invalid data directory {dir}: {detail}")]
    BadDirectory {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A write failed to become durable earlier; the engine refuses writes until restarted.
    #[error(
        "the engine stopped accepting writes after a durability failure ({0}); restart it to recover from the journal"
    )]
    Poisoned(String),
    /// Snapshot isolation: another transaction committed a write to the same key first.
    #[error(
        "could not serialize access: tree {tree:?} key was changed by a concurrent transaction (first committer wins); retry the transaction"
    )]
    Conflict {
        /// The tree of the conflicting key.
        tree: String,
    },
    /// No tree of that name exists.
    #[error("no tree named {0:?}")]
    NoSuchTree(String),
    /// A tree of that name already exists.
    #[error("a tree named {0:?} already exists")]
    TreeExists(String),
    /// The tree exists but is of the other kind (B+tree vs hash index).
    #[error("tree {name:?} is a {actual} index, not a {expected} index")]
    WrongTreeKind {
        /// The tree.
        name: String,
        /// The kind the operation needs.
        expected: &'static str,
        /// The kind the tree has.
        actual: &'static str,
    },
    /// A key, value or name exceeds a size limit.
    #[error("{what} is {len} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory is open in another process.
    #[error(
        "data directory {0} is in use by another process (its lock file is held); stop that process first"
    )]
    Locked(PathBuf),
    /// A replicated or replayed commit record is malformed.
    #[error("malformed commit record at lsn {lsn}: {detail}")]
    BadRecord {
        /// The record's log sequence number.
        lsn: u64,
        /// What is wrong.
        detail: String,
    },
    /// A commit record arrived out of order.
    #[error("commit record lsn {got} is out of order: expected {expected}")]
    LsnOrder {
        /// The next lsn the engine expects.
        expected: u64,
        /// The lsn that arrived.
        got: u64,
    },
    /// This node cannot commit: it is not the cluster's leader (or not yet
    /// ready to lead). Nothing was written; the client may retry on the leader.
    #[error("this node is not the leader: {detail}")]
    NotLeader {
        /// The leader's address, when known.
        leader: Option<String>,
        /// Why.
        detail: String,
    },
    /// A commit was proposed but whether the cluster committed it is not
    /// known (leadership was lost while it waited): it must not be retried
    /// blindly, since it may yet take effect.
    #[error("the outcome of this commit is unknown: {0}")]
    CommitUnknown(String),
    /// A snapshot file is damaged, truncated or not a snapshot.
    #[error("the snapshot cannot be used: {0}")]
    BadSnapshot(String),
    /// A journal record asked for by LSN is not there to read.
    #[error("journal record {lsn} cannot be read: {detail}")]
    LogMissing {
        /// The record's LSN.
        lsn: u64,
        /// Why.
        detail: String,
    },
}

impl Error {
    /// This node cannot commit because it is not the cluster's ready
    /// leader; names the leader when known.
    pub fn not_leader(leader: Option<String>) -> Error {
        Error::NotLeader {
            detail: match &leader {
                Some(l) => format!("it is a read-only follower; the leader is {l}"),
                None => {
                    "no leader is known right now (an election is under way); retry shortly".into()
                }
            },
            leader,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what the engine was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this error means the data on disk is damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::PageChecksum { .. }
                | Error::PageCorrupt { .. }
                | Error::JournalCorrupt { .. }
                | Error::BadDirectory { .. }
        )
    }
}
