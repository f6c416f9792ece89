//! Early lock release: a committing transaction gives up its row locks as
//! soon as its commit is journaled, before the fsync. The next writer of
//! the row goes on at once and builds on that commit, but nothing it
//! reports (a result or an error) goes out before the commit it built on
//! is durable; if that fsync fails, the next writer fails too.
//!
//! The engine's journal flusher fsyncs only when some commit is awaited, so
//! a commit left pending here stays undurable until a test waits for it.

use std::sync::Arc;

use tiers_sql::exec::{Database, QueryResult, Session};
use tiers_storage::faults::{FaultPlan, FaultyVfs};
use tiers_storage::vfs::{OsVfs, Vfs};
use tiers_storage::{Config, Engine, PendingCommit};

struct Db {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    db: Arc<Database>,
    plan: Arc<FaultPlan>,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let (faulty, plan) = FaultyVfs::new(Arc::new(OsVfs));
    let vfs: Arc<dyn Vfs> = Arc::new(faulty);
    let config = Config {
        background_writer: false,
        ..Config::default()
    };
    let engine = Arc::new(Engine::open_with_vfs(dir.path(), config, vfs).unwrap());
    let db = Database::new(engine.clone()).unwrap();
    let mut s = Session::open(&db);
    s.execute(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         INSERT INTO acct VALUES (1, 100), (2, 100);",
    )
    .unwrap();
    Db {
        _dir: dir,
        engine,
        db,
        plan,
    }
}

/// Runs `sql` in async mode (as the server's async workers do) and returns
/// its result and what must be awaited before it may be reported.
fn run_async(s: &mut Session, sql: &str) -> (QueryResult, Option<PendingCommit>) {
    s.set_async_mode(true);
    let r = s.execute(sql);
    s.set_async_mode(false);
    let r = r.unwrap_or_else(|e| panic!("{sql}: {} ({})", e.message, e.code));
    (r.into_iter().last().unwrap(), s.take_pending_commit())
}

fn balance(s: &mut Session, id: i32) -> i64 {
    let r = s
        .execute(&format!("SELECT balance FROM acct WHERE id = {id}"))
        .unwrap();
    r[0].rows[0][0].to_i64().unwrap()
}

/// Commits an increment of account 1 in async mode and leaves it pending.
fn pending_increment(d: &Db) -> PendingCommit {
    let mut a = Session::open(&d.db);
    let (r, pending) = run_async(&mut a, "UPDATE acct SET balance = balance + 1 WHERE id = 1");
    assert_eq!(r.tag, "UPDATE 1");
    let pending = pending.expect("an async commit is left pending");
    assert!(
        d.engine.visible_lsn() < pending.lsn(),
        "nobody awaited it, so it is not durable yet"
    );
    pending
}

#[test]
fn the_next_writer_builds_on_a_commit_that_is_not_durable_yet() {
    let d = db();
    let first = pending_increment(&d);
    let mut b = Session::open(&d.db);
    // The row lock is free already: no WOULD_WAIT, and the update reads the
    // first commit's balance (101), so neither increment is lost.
    let (r, second) = run_async(&mut b, "UPDATE acct SET balance = balance + 1 WHERE id = 1");
    assert_eq!(r.tag, "UPDATE 1");
    let second = second.expect("its own commit");
    assert!(second.lsn() > first.lsn());
    // New snapshots still see only durable data.
    let mut reader = Session::open(&d.db);
    assert_eq!(balance(&mut reader, 1), 100);
    second.wait().unwrap();
    assert!(d.engine.visible_lsn() >= first.lsn(), "durable in order");
    assert_eq!(balance(&mut reader, 1), 102);
    first.wait().unwrap();
}

#[test]
fn a_statement_that_read_an_undurable_commit_waits_for_it_before_reporting() {
    let d = db();
    let first = pending_increment(&d);
    let mut b = Session::open(&d.db);
    b.execute("BEGIN").unwrap();
    // Inside a transaction there is no commit to wait for, but the UPDATE
    // read the pending commit: what it reports must wait for that one.
    let (r, wait) = run_async(&mut b, "UPDATE acct SET balance = balance * 2 WHERE id = 1");
    assert_eq!(r.tag, "UPDATE 1");
    let wait = wait.expect("the update's report waits for the commit it read");
    assert_eq!(wait.lsn(), first.lsn());
    wait.wait().unwrap();
    assert!(d.engine.visible_lsn() >= first.lsn());
    // The same, blocking (sync mode): an INSERT of a key an undurable
    // commit inserted reports the duplicate only once that commit is durable.
    let mut c = Session::open(&d.db);
    let (_, inserted) = run_async(&mut c, "INSERT INTO acct VALUES (3, 0)");
    let inserted = inserted.unwrap();
    let mut e = Session::open(&d.db);
    let err = e.execute("INSERT INTO acct VALUES (3, 1)").unwrap_err();
    assert_eq!(err.code, "23505", "{}", err.message);
    assert!(d.engine.visible_lsn() >= inserted.lsn());
    b.execute("COMMIT").unwrap();
    assert_eq!(balance(&mut e, 1), 202);
}

#[test]
fn when_the_commit_it_read_fails_to_become_durable_the_statement_fails_too() {
    let d = db();
    let first = pending_increment(&d);
    d.plan.fail_sync(0, Some("journal".to_string()));
    let mut b = Session::open(&d.db);
    b.execute("BEGIN").unwrap();
    // Blocking mode: the statement itself waits, and reports the failure
    // instead of "UPDATE 1" computed from a commit that never became durable.
    let err = b
        .execute("UPDATE acct SET balance = balance + 1 WHERE id = 1")
        .unwrap_err();
    assert!(err.message.contains("fsync"), "{}", err.message);
    assert!(first.wait().is_err(), "the first commit failed as well");
}
