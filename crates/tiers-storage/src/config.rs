//! Engine settings, with safe defaults.

use std::time::Duration;

use crate::error::{Error, Result};

/// When a commit is acknowledged relative to its journal record reaching disk
/// (the book's write-through journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A commit returns only after its journal record is fsynced. Concurrent
    /// commits share one fsync (group commit). The default.
    Full,
    /// A commit returns once its record is in the journal buffer; the
    /// background writer fsyncs every `flush_interval`. A crash can lose the
    /// commits of the last interval, never more, and never part of one.
    Relaxed,
}

/// Storage engine configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Page size in bytes for a new data file: a power of two from 4 KiB to
    /// 64 KiB. An existing file keeps the size recorded in its header.
    pub page_size: usize,
    /// Buffer pool capacity in bytes.
    pub cache_bytes: usize,
    /// Commit acknowledgement policy.
    pub durability: Durability,
    /// Compress journal records with LZ4 when that makes them smaller.
    pub journal_compression: bool,
    /// Size at which the journal starts a new segment file.
    pub journal_segment_bytes: u64,
    /// Take a checkpoint once this many journal bytes were written since the last one.
    pub checkpoint_journal_bytes: u64,
    /// Take a checkpoint at least this often while there are changes.
    pub checkpoint_interval: Duration,
    /// How often the background writer flushes dirty pages (and, with
    /// [`Durability::Relaxed`], the journal).
    pub flush_interval: Duration,
    /// Run the background writer thread. Tests turn it off for determinism.
    pub background_writer: bool,
    /// Largest write set (keys plus values) one transaction may buffer.
    pub max_write_set_bytes: usize,
    /// The journal is a replicated log that a consensus layer drives (see
    /// `tiers-cluster`): opening does not replay it, records change data
    /// only once committed ([`crate::Engine::apply_committed`]), commits are
    /// proposed through a [`crate::Replicator`], and checkpoints leave the
    /// journal's segments for the consensus layer to purge.
    pub replicated: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            page_size: 8192,
            cache_bytes: 64 << 20,
            durability: Durability::Full,
            journal_compression: false,
            journal_segment_bytes: 64 << 20,
            checkpoint_journal_bytes: 64 << 20,
            checkpoint_interval: Duration::from_secs(30),
            flush_interval: Duration::from_millis(200),
            background_writer: true,
            max_write_set_bytes: 1 << 30,
            replicated: false,
        }
    }
}

impl Config {
    /// Checks every value and says which one is out of range.
    pub fn validate(&self) -> Result<()> {
        if !(4096..=65536).contains(&self.page_size) || !self.page_size.is_power_of_two() {
            return Err(Error::Config(format!(
                "page_size {} must be a power of two from 4096 to 65536",
                self.page_size
            )));
        }
        if self.cache_bytes < 16 * self.page_size {
            return Err(Error::Config(format!(
                "cache_bytes {} must hold at least 16 pages ({} bytes)",
                self.cache_bytes,
                16 * self.page_size
            )));
        }
        if self.journal_segment_bytes < 64 * 1024 {
            return Err(Error::Config(format!(
                "journal_segment_bytes {} must be at least 65536",
                self.journal_segment_bytes
            )));
        }
        if self.flush_interval.is_zero() {
            return Err(Error::Config("flush_interval must be positive".into()));
        }
        if self.max_write_set_bytes == 0 {
            return Err(Error::Config("max_write_set_bytes must be positive".into()));
        }
        Ok(())
    }
}
