//! Isolation anomalies, one test each, at READ COMMITTED and REPEATABLE
//! READ: what each level allows and what it forbids. Two sessions share
//! one database, as two client connections do.
//!
//! | anomaly        | READ COMMITTED        | REPEATABLE READ          |
//! |----------------|-----------------------|--------------------------|
//! | dirty read     | forbidden             | forbidden                |
//! | dirty write    | forbidden (waits)     | forbidden (40001)        |
//! | lost update    | forbidden for `x=x+1` | forbidden (40001)        |
//! | read skew      | allowed               | forbidden                |
//! | phantom        | allowed               | forbidden                |
//! | write skew     | allowed               | allowed (snapshot isolation; SERIALIZABLE is refused) |

use std::sync::Arc;
use std::time::Duration;

use tiers_sql::exec::{Database, Session};
use tiers_storage::{Config, Engine};

struct Db {
    _dir: tempfile::TempDir,
    db: Arc<Database>,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), Config::default()).unwrap());
    let db = Database::new(engine).unwrap();
    let mut s = Session::open(&db);
    s.execute(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, oncall BOOLEAN);
         INSERT INTO acct VALUES (1, 100, true), (2, 100, true);",
    )
    .unwrap();
    Db { _dir: dir, db }
}

fn run(s: &mut Session, sql: &str) {
    s.execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {} ({})", e.message, e.code));
}

fn int(s: &mut Session, sql: &str) -> i64 {
    let r = s
        .execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {} ({})", e.message, e.code));
    r.last().unwrap().rows[0][0].to_i64().unwrap()
}

fn code(result: tiers_sql::error::Result<Vec<tiers_sql::exec::QueryResult>>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code,
    }
}

const LEVELS: [&str; 2] = ["READ COMMITTED", "REPEATABLE READ"];

#[test]
fn dirty_read_is_forbidden_at_every_level() {
    for level in LEVELS {
        let d = db();
        let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
        run(&mut a, "BEGIN");
        run(&mut a, "UPDATE acct SET balance = 0 WHERE id = 1");
        run(&mut b, &format!("BEGIN ISOLATION LEVEL {level}"));
        assert_eq!(
            int(&mut b, "SELECT balance FROM acct WHERE id = 1"),
            100,
            "{level}"
        );
        run(&mut a, "ROLLBACK");
        run(&mut b, "COMMIT");
    }
}

#[test]
fn dirty_write_waits_under_read_committed_and_fails_under_repeatable_read() {
    for level in LEVELS {
        let d = db();
        let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
        run(&mut a, "BEGIN");
        run(
            &mut a,
            "UPDATE acct SET balance = balance + 10 WHERE id = 1",
        );
        run(&mut b, &format!("BEGIN ISOLATION LEVEL {level}"));
        int(&mut b, "SELECT balance FROM acct WHERE id = 1");
        // b's write waits for a's row lock, so it cannot overwrite a's
        // uncommitted change.
        let writer = std::thread::spawn(move || {
            let r = b.execute("UPDATE acct SET balance = balance + 1 WHERE id = 1");
            match r {
                Ok(_) => code(b.execute("COMMIT")),
                Err(e) => {
                    let _ = b.execute("ROLLBACK");
                    e.code
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!writer.is_finished(), "{level}: the second writer waits");
        run(&mut a, "COMMIT");
        let outcome = writer.join().unwrap();
        let mut c = Session::open(&d.db);
        let balance = int(&mut c, "SELECT balance FROM acct WHERE id = 1");
        if level == "READ COMMITTED" {
            assert_eq!((outcome, balance), ("ok", 111), "{level}");
        } else {
            assert_eq!((outcome, balance), ("40001", 110), "{level}");
        }
    }
}

#[test]
fn lost_update_is_forbidden() {
    for level in LEVELS {
        let d = db();
        let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
        run(&mut a, &format!("BEGIN ISOLATION LEVEL {level}"));
        run(&mut b, &format!("BEGIN ISOLATION LEVEL {level}"));
        assert_eq!(int(&mut a, "SELECT balance FROM acct WHERE id = 2"), 100);
        assert_eq!(int(&mut b, "SELECT balance FROM acct WHERE id = 2"), 100);
        run(
            &mut a,
            "UPDATE acct SET balance = balance - 30 WHERE id = 2",
        );
        let other = std::thread::spawn(move || {
            let r = b.execute("UPDATE acct SET balance = balance - 50 WHERE id = 2");
            match r {
                Ok(_) => code(b.execute("COMMIT")),
                Err(e) => {
                    let _ = b.execute("ROLLBACK");
                    e.code
                }
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        run(&mut a, "COMMIT");
        let outcome = other.join().unwrap();
        let mut c = Session::open(&d.db);
        let balance = int(&mut c, "SELECT balance FROM acct WHERE id = 2");
        match outcome {
            // Both applied: neither was lost.
            "ok" => assert_eq!(balance, 20, "{level}"),
            // The second was refused, so the first stands alone.
            "40001" => assert_eq!(balance, 70, "{level}"),
            other => panic!("{level}: unexpected {other}"),
        }
        if level == "REPEATABLE READ" {
            assert_eq!(
                outcome, "40001",
                "snapshot isolation refuses the second writer"
            );
        }
    }
}

/// The same for UPDATE ... FROM: the joined writer waits for the row lock,
/// then computes SET from the row's committed value, and re-checks its
/// WHERE clause on it (a row that no longer matches is skipped).
#[test]
fn lost_update_is_forbidden_through_update_from() {
    let d = db();
    let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
    run(
        &mut a,
        "CREATE TABLE moves (acct INTEGER, delta INTEGER);
         INSERT INTO moves VALUES (1, 5), (2, 7);",
    );
    run(&mut a, "BEGIN");
    run(
        &mut a,
        "UPDATE acct SET balance = balance - 30 WHERE id = 2",
    );
    run(&mut a, "UPDATE acct SET balance = 500 WHERE id = 1");
    let other = std::thread::spawn(move || {
        b.execute(
            "UPDATE acct SET balance = acct.balance + moves.delta FROM moves \
             WHERE moves.acct = acct.id AND acct.balance < 200",
        )
        .map(|r| r[0].tag.clone())
        .map_err(|e| e.code)
    });
    std::thread::sleep(Duration::from_millis(100));
    run(&mut a, "COMMIT");
    // Row 2 got its delta on top of the committed 70; row 1 (now 500) no
    // longer matches the WHERE clause and is left alone.
    assert_eq!(other.join().unwrap(), Ok("UPDATE 1".to_string()));
    let mut c = Session::open(&d.db);
    assert_eq!(int(&mut c, "SELECT balance FROM acct WHERE id = 2"), 77);
    assert_eq!(int(&mut c, "SELECT balance FROM acct WHERE id = 1"), 500);
}

#[test]
fn read_skew_is_allowed_only_under_read_committed() {
    for level in LEVELS {
        let d = db();
        let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
        run(&mut a, &format!("BEGIN ISOLATION LEVEL {level}"));
        let first = int(&mut a, "SELECT balance FROM acct WHERE id = 1");
        // A transfer commits between a's two reads.
        run(
            &mut b,
            "BEGIN; UPDATE acct SET balance = balance - 40 WHERE id = 1; \
             UPDATE acct SET balance = balance + 40 WHERE id = 2; COMMIT",
        );
        let second = int(&mut a, "SELECT balance FROM acct WHERE id = 2");
        let total = first + second;
        run(&mut a, "COMMIT");
        if level == "READ COMMITTED" {
            assert_eq!(total, 240, "read committed sees the transfer half-way");
        } else {
            assert_eq!(total, 200, "one snapshot: the total is consistent");
        }
    }
}

#[test]
fn phantoms_appear_only_under_read_committed() {
    for level in LEVELS {
        let d = db();
        let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
        run(&mut a, &format!("BEGIN ISOLATION LEVEL {level}"));
        let before = int(&mut a, "SELECT count(*) FROM acct WHERE balance >= 50");
        run(&mut b, "INSERT INTO acct VALUES (3, 500, false)");
        let after = int(&mut a, "SELECT count(*) FROM acct WHERE balance >= 50");
        run(&mut a, "COMMIT");
        assert_eq!(before, 2);
        if level == "READ COMMITTED" {
            assert_eq!(after, 3, "{level}");
        } else {
            assert_eq!(after, 2, "{level}");
        }
    }
}

#[test]
fn write_skew_is_allowed_by_snapshot_isolation_and_serializable_is_refused() {
    for level in LEVELS {
        let d = db();
        let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
        run(&mut a, &format!("BEGIN ISOLATION LEVEL {level}"));
        run(&mut b, &format!("BEGIN ISOLATION LEVEL {level}"));
        // Each checks that someone else stays on call, then leaves.
        assert_eq!(int(&mut a, "SELECT count(*) FROM acct WHERE oncall"), 2);
        assert_eq!(int(&mut b, "SELECT count(*) FROM acct WHERE oncall"), 2);
        run(&mut a, "UPDATE acct SET oncall = false WHERE id = 1");
        run(&mut b, "UPDATE acct SET oncall = false WHERE id = 2");
        run(&mut a, "COMMIT");
        run(&mut b, "COMMIT");
        let mut c = Session::open(&d.db);
        assert_eq!(
            int(&mut c, "SELECT count(*) FROM acct WHERE oncall"),
            0,
            "{level} permits write skew"
        );
    }
    let d = db();
    let mut s = Session::open(&d.db);
    assert_eq!(
        code(s.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")),
        "0A000"
    );
}

#[test]
fn deadlocks_are_detected_and_one_transaction_goes_on() {
    let d = db();
    let (mut a, mut b) = (Session::open(&d.db), Session::open(&d.db));
    run(&mut a, "BEGIN");
    run(&mut b, "BEGIN");
    run(&mut a, "UPDATE acct SET balance = 1 WHERE id = 1");
    run(&mut b, "UPDATE acct SET balance = 2 WHERE id = 2");
    let other = std::thread::spawn(move || {
        let r = code(b.execute("UPDATE acct SET balance = 2 WHERE id = 1"));
        if r == "ok" {
            code(b.execute("COMMIT"))
        } else {
            let _ = b.execute("ROLLBACK");
            r
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let mine = code(a.execute("UPDATE acct SET balance = 1 WHERE id = 2"));
    let mine = if mine == "ok" {
        code(a.execute("COMMIT"))
    } else {
        let _ = a.execute("ROLLBACK");
        mine
    };
    let theirs = other.join().unwrap();
    let mut outcomes = [mine, theirs];
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["40P01", "ok"],
        "exactly one is chosen as the victim"
    );
}
