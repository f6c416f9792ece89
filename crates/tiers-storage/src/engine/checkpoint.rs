//! Checkpoints and the background writer (the book's DBWR): how dirty pages
//! reach the data file and how a checkpoint becomes the recovery start.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{CheckpointInfo, CheckpointState, Shared, Version};
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::meta::{self, Meta};
use crate::metrics;
use crate::page::PageNo;
use crate::pool::WriteBack;

impl Shared {
    /// Takes a checkpoint: makes every page of the newest version durable in
    /// the data file, writes its free list, and switches the meta slot.
    pub(crate) fn checkpoint_now(&self) -> Result<CheckpointInfo> {
        let started = Instant::now();
        let mut c = self.checkpoint.lock().expect("checkpoint lock poisoned");
        if let Some(why) = self.poison_reason() {
            return Err(Error::Poisoned(why));
        }
        let cap = meta::freelist_capacity(self.page_size);
        let (version, free, reserved, high_water) = {
            let mut w = self.writer();
            let approx = w.alloc.free_relative_to_latest().len();
            let reserved = w.alloc.reserve(approx.div_ceil(cap));
            let free = w.alloc.free_relative_to_latest();
            // Pages the captured version contains must not be forgotten
            // while the checkpoint writes them.
            self.checkpoint_capture
                .store(w.latest.lsn, Ordering::Release);
            (w.latest.clone(), free, reserved, w.alloc.high_water)
        };
        let result = self.checkpoint_captured(&mut c, version, free, reserved, high_water, started);
        self.checkpoint_capture.store(u64::MAX, Ordering::Release);
        result
    }

    fn checkpoint_captured(
        &self,
        c: &mut CheckpointState,
        version: Arc<Version>,
        free: Vec<PageNo>,
        reserved: Vec<PageNo>,
        high_water: PageNo,
        started: Instant,
    ) -> Result<CheckpointInfo> {
        let give_back = |reserved: &[PageNo]| {
            let mut w = self.writer();
            for no in reserved {
                w.alloc.release_unused(*no);
            }
        };
        if version.lsn == self.checkpoint_lsn.load(Ordering::Acquire) && self.pool.usage().1 == 0 {
            // Nothing committed since the last checkpoint.
            give_back(&reserved);
            return Ok(CheckpointInfo {
                id: c.id,
                lsn: version.lsn,
                pages_written: 0,
            });
        }
        if !self.config.replicated {
            // Replicated versions are applied only once committed.
            if let Err(e) = self.journal.wait_durable(version.lsn) {
                give_back(&reserved);
                return Err(self.poison(e.to_string()));
            }
            self.publish();
        }
        let (forget_through, _) = self.read_horizon();
        let mode = WriteBack::Checkpoint {
            lsn: version.lsn,
            forget_through: forget_through.min(version.lsn),
        };
        let pages_written = match self.pool.flush_dirty(mode) {
            Ok(n) => n,
            Err(e) => {
                give_back(&reserved);
                return Err(e);
            }
        };
        for page in meta::encode_freelist(self.page_size, version.lsn, &reserved, &free) {
            let no = crate::page::page_no(&page);
            if let Err(e) = self.data.write_at(&page, no * self.page_size as u64) {
                give_back(&reserved);
                return Err(Error::io(format!("writing free-list page {no}"), e));
            }
        }
        let min_len = high_water * self.page_size as u64;
        match self.data.len() {
            Ok(len) if len < min_len => {
                if let Err(e) = self.data.set_len(min_len) {
                    give_back(&reserved);
                    return Err(Error::io("extending the data file", e));
                }
            }
            Ok(_) => {}
            Err(e) => {
                give_back(&reserved);
                return Err(Error::io("reading the data file length", e));
            }
        }
        if let Err(e) = self.data.sync() {
            return Err(self.poison(format!("data file fsync failed: {e}")));
        }
        let next = Meta {
            page_size: self.page_size,
            checkpoint_id: c.id + 1,
            lsn: version.lsn,
            catalog_root: version.catalog_root,
            high_water,
            freelist_head: reserved.first().copied(),
            freelist_count: free.len() as u64,
            term: version.term,
            membership: version.membership.as_deref().map(<[u8]>::to_vec),
        };
        let slot = next.checkpoint_id % 2;
        if let Err(e) = self
            .data
            .write_at(&next.encode(slot), slot * self.page_size as u64)
            .and_then(|_| self.data.sync())
        {
            return Err(self.poison(format!("writing checkpoint meta failed: {e}")));
        }
        c.id = next.checkpoint_id;
        c.at = Instant::now();
        c.journal_bytes_at = metrics::get(&self.metrics.journal_bytes);
        self.checkpoint_lsn.store(version.lsn, Ordering::Release);
        {
            let (horizon, _) = self.read_horizon();
            let mut w = self.writer();
            let old = std::mem::replace(&mut w.alloc.checkpoint_pages, reserved);
            for no in old {
                w.alloc.release_unused(no);
            }
            w.alloc.reclaim(horizon.min(version.lsn));
        }
        if !self.config.replicated {
            // A replicated log is purged by the consensus layer, which knows
            // which followers still need it.
            self.journal.truncate_through(version.lsn)?;
        }
        let micros = started.elapsed().as_micros() as u64;
        metrics::inc(&self.metrics.checkpoints);
        self.metrics
            .checkpoint_micros_last
            .store(micros, Ordering::Relaxed);
        metrics::add(&self.metrics.checkpoint_micros_total, micros);
        Ok(CheckpointInfo {
            id: c.id,
            lsn: version.lsn,
            pages_written,
        })
    }

    /// The background writer (the book's DBWR): flushes dirty pages so
    /// checkpoints stay short, fsyncs the journal in relaxed mode, and takes
    /// a checkpoint when enough journal or time has accumulated.
    pub(super) fn background_loop(self: Arc<Self>) {
        loop {
            {
                let stop = self.shutdown.lock().expect("shutdown flag");
                let (stop, _) = self
                    .wake
                    .wait_timeout_while(stop, self.config.flush_interval, |s| !*s)
                    .expect("shutdown flag");
                if *stop {
                    return;
                }
            }
            if self.poison_reason().is_some() {
                continue;
            }
            if self.config.durability == Durability::Relaxed && !self.config.replicated {
                if let Err(e) = self.journal.sync_all() {
                    self.poison(e.to_string());
                    continue;
                }
                self.publish();
            }
            // Write-back errors are retried; a checkpoint that still fails reports them.
            let _ = self.pool.flush_dirty(WriteBack::Live);
            let due = {
                let c = self.checkpoint.lock().expect("checkpoint lock poisoned");
                let bytes =
                    metrics::get(&self.metrics.journal_bytes).saturating_sub(c.journal_bytes_at);
                // Commits that landed while the last checkpoint ran are
                // counted in its journal bytes but not in its LSN: compare
                // LSNs too, or they would wait for the next commit.
                let behind = self.writer().latest.lsn > self.checkpoint_lsn.load(Ordering::Acquire);
                bytes >= self.config.checkpoint_journal_bytes
                    || ((bytes > 0 || behind) && c.at.elapsed() >= self.config.checkpoint_interval)
            };
            if due && self.checkpoint_now().is_err() {
                // Retried on the next round; counted so it is visible.
                metrics::add(&self.metrics.checkpoint_failures, 1);
            }
        }
    }
}
