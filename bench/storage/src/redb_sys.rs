//! The benchmark workloads on redb (immediate durability).

use super::*;
use redb::{Builder, Database, ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

pub struct Redb {
    pub dir: PathBuf,
    pub db: Option<Arc<Database>>,
}

impl Redb {
    fn path(&self) -> PathBuf {
        self.dir.join("kv.redb")
    }

    fn db(&self) -> &Database {
        self.db.as_ref().expect("redb database open")
    }

    fn insert_one(db: &Database, id: u64) -> Res<()> {
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            t.insert(&key_of(id)[..], &value_of(id)[..])?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl System for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn open(&mut self, cache_bytes: usize) -> Res<()> {
        let mut b = Builder::new();
        b.set_cache_size(cache_bytes);
        self.db = Some(Arc::new(b.create(self.path())?));
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        if let Some(db) = self.db.take() {
            let db = Arc::try_unwrap(db)
                .map_err(|_| "redb database still shared at close".to_string())?;
            drop(db);
        }
        Ok(())
    }

    fn bulk_load(&mut self, order: &[u64]) -> Res<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            for &id in order {
                t.insert(&key_of(id)[..], &value_of(id)[..])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn check(&mut self, ids: &[u64]) -> Res<()> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(TABLE)?;
        for &id in ids {
            let got = t.get(&key_of(id)[..])?.map(|g| g.value().to_vec());
            if got.as_deref() != Some(&value_of(id)[..]) {
                return Err(format!("redb: key {id} read back {got:?}").into());
            }
        }
        Ok(())
    }

    fn gets(&mut self, ids: &[u64]) -> Res<u64> {
        let mut sum = 0;
        for chunk in ids.chunks(READ_BATCH) {
            let rtx = self.db().begin_read()?;
            let t = rtx.open_table(TABLE)?;
            for &id in chunk {
                let v = t
                    .get(&key_of(id)[..])?
                    .ok_or_else(|| format!("redb: key {id} missing"))?;
                sum += quick_check(id, v.value())?;
            }
        }
        Ok(sum)
    }

    fn scans(&mut self, starts: &[u64]) -> Res<u64> {
        let mut entries = 0;
        for chunk in starts.chunks(READ_BATCH) {
            let rtx = self.db().begin_read()?;
            let t = rtx.open_table(TABLE)?;
            for &start in chunk {
                let k = key_of(start);
                let mut n = 0;
                for item in t.range(&k[..]..)?.take(SCAN_LEN) {
                    let (key, value) = item?;
                    black_box(check_scan(start, n, key.value(), value.value())?);
                    n += 1;
                }
                entries += n as u64;
            }
        }
        Ok(entries)
    }

    fn commits(&mut self, ids: &[u64]) -> Res<()> {
        for &id in ids {
            Self::insert_one(self.db(), id)?;
        }
        Ok(())
    }

    fn concurrent_commits(&mut self, per_thread: &[Vec<u64>]) -> Res<Duration> {
        let db = self.db.clone().expect("redb database open");
        let (elapsed, _) = run_threads(per_thread, |ids, barrier| {
            barrier.wait();
            for &id in ids {
                Self::insert_one(&db, id)?;
            }
            Ok(0)
        })?;
        drop(db);
        Ok(elapsed)
    }

    fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }
}
