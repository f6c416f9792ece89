//! The benchmark workloads on tiers-storage.

use super::*;
use tiers_storage::{Config, Engine, Error as TError, MetricsSnapshot, TreeKind};

const TREE: &str = "kv";

pub struct Tiers {
    pub dir: PathBuf,
    pub page_size: usize,
    pub engine: Option<Arc<Engine>>,
    pub notes: Vec<String>,
    pub marked: Option<MetricsSnapshot>,
}

impl Tiers {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("tiers engine open")
    }

    fn commit_one(engine: &Engine, id: u64) -> Res<u64> {
        let mut conflicts = 0;
        loop {
            let mut tx = engine.begin_write()?;
            tx.put(TREE, &key_of(id), &value_of(id))?;
            match tx.commit() {
                Ok(_) => return Ok(conflicts),
                Err(TError::Conflict { .. }) => conflicts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn fsync_note(&mut self, what: &str, before: &MetricsSnapshot, conflicts: u64) {
        let after = self.engine().metrics();
        let records = after.journal_records - before.journal_records;
        let fsyncs = after.journal_fsyncs - before.journal_fsyncs;
        let per = if fsyncs == 0 {
            0.0
        } else {
            records as f64 / fsyncs as f64
        };
        self.notes.push(format!(
            "tiers {what}: {records} journal records, {fsyncs} journal fsyncs, \
             {per:.2} commits per fsync, {conflicts} conflicts retried"
        ));
    }
}

impl System for Tiers {
    fn name(&self) -> &'static str {
        "tiers"
    }

    fn open(&mut self, cache_bytes: usize) -> Res<()> {
        let config = Config {
            cache_bytes,
            page_size: self.page_size,
            ..Config::default()
        };
        self.engine = Some(Arc::new(Engine::open(&self.dir, config)?));
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        if let Some(engine) = self.engine.take() {
            let engine = Arc::try_unwrap(engine)
                .map_err(|_| "tiers engine still shared at close".to_string())?;
            engine.close()?;
        }
        Ok(())
    }

    fn bulk_load(&mut self, order: &[u64]) -> Res<()> {
        let mut tx = self.engine().begin_write()?;
        tx.create_tree(TREE, TreeKind::BTree)?;
        let started = Instant::now();
        for &id in order {
            tx.put(TREE, &key_of(id), &value_of(id))?;
        }
        let buffered = started.elapsed();
        let before = self.engine().metrics();
        tx.commit()?;
        let committed = started.elapsed() - buffered;
        let after = self.engine().metrics();
        eprintln!(
            "  tiers: put() calls took {:.2} s, commit() {:.2} s \
             ({:.1} MiB journal record, {} pages cached, {} dirty)",
            buffered.as_secs_f64(),
            committed.as_secs_f64(),
            (after.journal_bytes - before.journal_bytes) as f64 / (1 << 20) as f64,
            after.pool_pages_cached,
            after.pool_pages_dirty
        );
        Ok(())
    }

    fn check(&mut self, ids: &[u64]) -> Res<()> {
        let r = self.engine().begin_read();
        for &id in ids {
            let got = r.get(TREE, &key_of(id))?;
            if got.as_deref() != Some(&value_of(id)[..]) {
                return Err(format!("tiers: key {id} read back {got:?}").into());
            }
        }
        Ok(())
    }

    fn gets(&mut self, ids: &[u64]) -> Res<u64> {
        let mut sum = 0;
        for chunk in ids.chunks(READ_BATCH) {
            let r = self.engine().begin_read();
            for &id in chunk {
                let v = r
                    .get(TREE, &key_of(id))?
                    .ok_or_else(|| format!("tiers: key {id} missing"))?;
                sum += quick_check(id, &v)?;
            }
        }
        Ok(sum)
    }

    fn scans(&mut self, starts: &[u64]) -> Res<u64> {
        let mut entries = 0;
        for chunk in starts.chunks(READ_BATCH) {
            let r = self.engine().begin_read();
            for &start in chunk {
                let k = key_of(start);
                let mut n = 0;
                for item in r
                    .range(TREE, (Bound::Included(&k[..]), Bound::Unbounded))?
                    .take(SCAN_LEN)
                {
                    let (key, value) = item?;
                    black_box(check_scan(start, n, &key, &value)?);
                    n += 1;
                }
                entries += n as u64;
            }
        }
        Ok(entries)
    }

    fn commits(&mut self, ids: &[u64]) -> Res<()> {
        let before = self.engine().metrics();
        let mut conflicts = 0;
        for &id in ids {
            conflicts += Self::commit_one(self.engine(), id)?;
        }
        self.fsync_note("1 writer", &before, conflicts);
        Ok(())
    }

    fn concurrent_commits(&mut self, per_thread: &[Vec<u64>]) -> Res<Duration> {
        let before = self.engine().metrics();
        let engine = self.engine.clone().expect("tiers engine open");
        let (elapsed, conflicts) = run_threads(per_thread, |ids, barrier| {
            barrier.wait();
            let mut conflicts = 0;
            for &id in ids {
                conflicts += Self::commit_one(&engine, id)?;
            }
            Ok(conflicts)
        })?;
        drop(engine);
        self.fsync_note(&format!("{} writers", per_thread.len()), &before, conflicts);
        Ok(elapsed)
    }

    fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn mark(&mut self) {
        self.marked = self.engine.as_ref().map(|e| e.metrics());
    }

    fn note_pool(&mut self, what: &str) {
        let (Some(before), Some(engine)) = (self.marked.take(), self.engine.as_ref()) else {
            return;
        };
        let after = engine.metrics();
        let hits = after.pool_hits - before.pool_hits;
        let misses = after.pool_misses - before.pool_misses;
        let ratio = hits as f64 / (hits + misses).max(1) as f64;
        self.notes.push(format!(
            "tiers {what}: buffer pool {hits} hits, {misses} misses (hit ratio {ratio:.3}), \
             capacity {} pages",
            after.pool_capacity_pages
        ));
    }
}
