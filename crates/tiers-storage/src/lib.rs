//! `tiers-storage`: the DB tier's storage engine.
//!
//! It keeps named trees (ordered B+trees and hash indexes) of byte-string
//! keys and values in one file of fixed-size pages, behind a buffer pool,
//! with a write-ahead journal for durability and crash recovery. It embodies
//! the book's memory/cache hierarchy (the buffer pool), write-through vs
//! write-back (journal fsynced at commit, pages written back later by the
//! background writer), journaling with roll-forward, shadow paging (the
//! copy-on-write tree and the atomic meta-slot switch), B-tree and hash
//! indexes, block size, CRC error detection, and latches vs locks.
//!
//! It deliberately knows nothing of SQL, rows or types: the SQL layer maps
//! tables and indexes onto trees, using [`keyenc`] to build order-preserving
//! keys. Replication builds on the two seams [`Engine::apply_record`] and
//! [`Engine::checkpoint`].
//!
//! ```
//! use tiers_storage::{Config, Engine, TreeKind};
//! let dir = tempfile::tempdir().unwrap();
//! let engine = Engine::open(dir.path(), Config::default()).unwrap();
//! let mut tx = engine.begin_write().unwrap();
//! tx.create_tree("users", TreeKind::BTree).unwrap();
//! tx.put("users", b"alice", b"admin").unwrap();
//! tx.commit().unwrap();
//! let snapshot = engine.begin_read();
//! assert_eq!(snapshot.get("users", b"alice").unwrap().as_deref(), Some(&b"admin"[..]));
//! ```
//!
//! See `docs/storage.md` for the on-disk format and the recovery algorithm.

mod alloc;
mod batch;
mod btree;
mod catalog;
mod config;
mod engine;
mod error;
pub mod fasthash;
pub mod faults;
mod hash;
pub mod journal;
pub mod keyenc;
pub mod meta;
mod metrics;
pub mod page;
mod pool;
pub mod record;
mod txn;
pub mod verify;
pub mod vfs;

pub use catalog::TreeInfo;
pub use config::{Config, Durability};
pub use engine::{
    Applied, CheckpointInfo, DATA_FILE, Engine, JOURNAL_DIR, ProposalDone, Replicator,
    SnapshotInfo, snapshot_header, verify_snapshot,
};
pub use error::{Error, Result};
pub use metrics::{MetricKind, MetricsSnapshot};
pub use pool::thread_buffer_counts;
pub use record::{Op, TreeKind};
pub use txn::{Entry, MAX_TREE_NAME, PendingCommit, ReadTxn, Savepoint, WriteTxn};
