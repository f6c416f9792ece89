//! The benchmark workloads on SQLite through rusqlite (WAL, synchronous=FULL).

use super::*;
use rusqlite::{Connection, OptionalExtension, params};

pub struct Sqlite {
    pub dir: PathBuf,
    pub conn: Option<Connection>,
    pub cache_bytes: usize,
}

impl Sqlite {
    fn path(&self) -> PathBuf {
        self.dir.join("kv.db")
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("sqlite connection open")
    }

    /// Opens a connection with the benchmark's settings.
    fn connect(path: &Path, cache_bytes: usize) -> Res<Connection> {
        let conn = Connection::open(path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("sqlite: journal_mode is {mode}, not wal").into());
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous=FULL; PRAGMA cache_size=-{};",
            cache_bytes / 1024
        ))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        Ok(conn)
    }

    fn insert_one(conn: &Connection, id: u64) -> Res<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        conn.prepare_cached("INSERT INTO kv(k, v) VALUES (?1, ?2)")?
            .execute(params![&key_of(id)[..], &value_of(id)[..]])?;
        conn.execute_batch("COMMIT")?;
        Ok(())
    }

    pub fn page_size(&self) -> Res<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA page_size", [], |r| r.get(0))?)
    }
}

impl System for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn open(&mut self, cache_bytes: usize) -> Res<()> {
        self.cache_bytes = cache_bytes;
        self.conn = Some(Self::connect(&self.path(), cache_bytes)?);
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        if let Some(conn) = self.conn.take() {
            conn.close().map_err(|(_, e)| e)?;
        }
        Ok(())
    }

    fn bulk_load(&mut self, order: &[u64]) -> Res<()> {
        let conn = self.conn();
        conn.execute_batch("CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut stmt = conn.prepare_cached("INSERT INTO kv(k, v) VALUES (?1, ?2)")?;
            for &id in order {
                stmt.execute(params![&key_of(id)[..], &value_of(id)[..]])?;
            }
        }
        conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn check(&mut self, ids: &[u64]) -> Res<()> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        for &id in ids {
            let got: Option<Vec<u8>> = stmt
                .query_row(params![&key_of(id)[..]], |r| r.get(0))
                .optional()?;
            if got.as_deref() != Some(&value_of(id)[..]) {
                return Err(format!("sqlite: key {id} read back {got:?}").into());
            }
        }
        Ok(())
    }

    fn gets(&mut self, ids: &[u64]) -> Res<u64> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        let mut sum = 0;
        for chunk in ids.chunks(READ_BATCH) {
            conn.execute_batch("BEGIN")?;
            for &id in chunk {
                let mut rows = stmt.query(params![&key_of(id)[..]])?;
                let row = rows
                    .next()?
                    .ok_or_else(|| format!("sqlite: key {id} missing"))?;
                sum += quick_check(id, row.get_ref(0)?.as_blob()?)?;
            }
            conn.execute_batch("COMMIT")?;
        }
        Ok(sum)
    }

    fn scans(&mut self, starts: &[u64]) -> Res<u64> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT {SCAN_LEN}"
        ))?;
        let mut entries = 0;
        for chunk in starts.chunks(READ_BATCH) {
            conn.execute_batch("BEGIN")?;
            for &start in chunk {
                let mut rows = stmt.query(params![&key_of(start)[..]])?;
                let mut n = 0;
                while let Some(row) = rows.next()? {
                    let key = row.get_ref(0)?.as_blob()?;
                    let value = row.get_ref(1)?.as_blob()?;
                    black_box(check_scan(start, n, key, value)?);
                    n += 1;
                }
                entries += n as u64;
            }
            conn.execute_batch("COMMIT")?;
        }
        Ok(entries)
    }

    fn commits(&mut self, ids: &[u64]) -> Res<()> {
        for &id in ids {
            Self::insert_one(self.conn(), id)?;
        }
        Ok(())
    }

    fn concurrent_commits(&mut self, per_thread: &[Vec<u64>]) -> Res<Duration> {
        let path = self.path();
        let cache = self.cache_bytes;
        let (elapsed, _) = run_threads(per_thread, |ids, barrier| {
            let conn = Self::connect(&path, cache);
            barrier.wait();
            let conn = conn?;
            for &id in ids {
                Self::insert_one(&conn, id)?;
            }
            Ok(0)
        })?;
        Ok(elapsed)
    }

    fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }
}
