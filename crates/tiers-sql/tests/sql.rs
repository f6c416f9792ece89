//! SQL statements end to end through a session: parse, plan, execute,
//! constraints, transactions, and the SQLSTATE of every error.

use std::sync::Arc;

use tiers_sql::Value;
use tiers_sql::error::sqlstate;
use tiers_sql::exec::{QueryResult, Session};
use tiers_storage::{Config, Engine};

fn session(dir: &std::path::Path) -> Session {
    let engine = Arc::new(Engine::open(dir, Config::default()).unwrap());
    Session::new(engine).unwrap()
}

fn one(s: &mut Session, sql: &str) -> QueryResult {
    let mut results = s
        .execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e} ({})", e.code));
    assert_eq!(results.len(), 1, "{sql}");
    results.pop().unwrap()
}

fn err(s: &mut Session, sql: &str) -> String {
    match s.execute(sql) {
        Ok(r) => panic!("{sql} should fail, returned {r:?}"),
        Err(e) => e.code.to_string(),
    }
}

fn rows(r: &QueryResult) -> Vec<Vec<String>> {
    r.rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| {
                    if v.is_null() {
                        "NULL".into()
                    } else {
                        v.to_text()
                    }
                })
                .collect()
        })
        .collect()
}

fn board(s: &mut Session) {
    one(
        s,
        "CREATE TABLE posts (id SERIAL PRIMARY KEY, title VARCHAR(40) NOT NULL, \
         author TEXT, score INTEGER DEFAULT 0, created DATE DEFAULT '2026-11-28')",
    );
    one(s, "CREATE INDEX posts_author ON posts USING hash (author)");
    let r = one(
        s,
        "INSERT INTO posts (title, author, score) VALUES ('first', 'kim', 5), ('second', 'lee', 7), \
         ('third', 'kim', NULL) RETURNING id, title",
    );
    assert_eq!(r.tag, "INSERT 0 3");
    assert_eq!(
        rows(&r),
        vec![vec!["1", "first"], vec!["2", "second"], vec!["3", "third"]]
    );
}

#[test]
fn create_insert_select_with_filters_order_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(dir.path());
    board(&mut s);
    let r = one(
        &mut s,
        "SELECT id, title, score FROM posts WHERE author = 'kim' ORDER BY id DESC",
    );
    assert_eq!(
        rows(&r),
        vec![vec!["3", "third", "NULL"], vec!["1", "first", "5"]]
    );
    assert_eq!(r.tag, "SELECT 2");
    let r = one(
        &mut s,
        "SELECT title FROM posts WHERE score >= 5 AND title LIKE '%ir%'",
    );
    assert_eq!(rows(&r), vec![vec!["first"]]);
    let r = one(&mut s, "SELECT * FROM posts WHERE id = 2");
    assert_eq!(
        rows(&r),
        vec![vec!["2", "second", "lee", "7", "2026-11-28"]]
    );
    assert_eq!(r.columns.len(), 5);
    let r = one(
        &mut s,
        "SELECT title FROM posts ORDER BY score DESC NULLS LAST LIMIT 1 OFFSET 1",
    );
    assert_eq!(rows(&r), vec![vec!["first"]]);
    let r = one(
        &mut s,
        "SELECT title FROM posts ORDER BY score DESC LIMIT 2",
    );
    assert_eq!(rows(&r), vec![vec!["third"], vec!["second"]]);
    let r = one(
        &mut s,
        "SELECT count(*), sum(score), max(title), avg(score) FROM posts",
    );
    assert_eq!(
        rows(&r),
        vec![vec!["3", "12", "third", "6.0000000000000000"]]
    );
    let r = one(
        &mut s,
        "SELECT 1 + 2 * 3, 'a' || 'b', NULL IS NULL, 7 / 2, upper('x')",
    );
    assert_eq!(rows(&r), vec![vec!["7", "ab", "t", "3", "X"]]);
    let r = one(
        &mut s,
        "SELECT title FROM posts WHERE id IN (1, 3) AND score IS NOT NULL",
    );
    assert_eq!(rows(&r), vec![vec!["first"]]);
    let r = one(
        &mut s,
        "SELECT CASE WHEN score > 6 THEN 'high' ELSE 'low' END AS level FROM posts ORDER BY 1",
    );
    assert_eq!(r.columns[0].name, "level");
    assert_eq!(rows(&r), vec![vec!["high"], vec!["low"], vec!["low"]]);
}

#[test]
fn update_and_delete_with_returning() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(dir.path());
    board(&mut s);
    let r = one(
        &mut s,
        "UPDATE posts SET score = score + 1, author = 'park' WHERE author = 'kim' RETURNING id, score",
    );
    assert_eq!(r.tag, "UPDATE 2");
    assert_eq!(rows(&r), vec![vec!["1", "6"], vec!["3", "NULL"]]);
    assert_eq!(
        one(&mut s, "SELECT id FROM posts WHERE author = 'kim'")
            .rows
            .len(),
        0
    );
    assert_eq!(
        one(&mut s, "SELECT id FROM posts WHERE author = 'park'")
            .rows
            .len(),
        2
    );
    let r = one(
        &mut s,
        "DELETE FROM posts WHERE score IS NULL RETURNING title",
    );
    assert_eq!(
        (r.tag.as_str(), rows(&r)),
        ("DELETE 1", vec![vec!["third".to_string()]])
    );
    assert_eq!(
        rows(&one(&mut s, "SELECT count(*) FROM posts")),
        vec![vec!["2"]]
    );
}

#[test]
fn errors_carry_their_sqlstate_and_leave_data_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(dir.path());
    board(&mut s);
    assert_eq!(
        err(&mut s, "INSERT INTO posts (id, title) VALUES (1, 'dup')"),
        sqlstate::UNIQUE_VIOLATION
    );
    assert_eq!(
        err(&mut s, "INSERT INTO posts (title) VALUES (NULL)"),
        sqlstate::NOT_NULL_VIOLATION
    );
    assert_eq!(err(&mut s, "SELECT * FROM nope"), sqlstate::UNDEFINED_TABLE);
    assert_eq!(
        err(&mut s, "SELECT nope FROM posts"),
        sqlstate::UNDEFINED_COLUMN
    );
    assert_eq!(err(&mut s, "SELEC 1"), sqlstate::SYNTAX_ERROR);
    assert_eq!(
        err(&mut s, "CREATE TABLE posts (x INT)"),
        sqlstate::DUPLICATE_TABLE
    );
    assert_eq!(err(&mut s, "SELECT 1 / 0"), sqlstate::DIVISION_BY_ZERO);
    assert_eq!(
        err(
            &mut s,
            "INSERT INTO posts (title, score) VALUES ('x', 'many')"
        ),
        sqlstate::INVALID_TEXT_REPRESENTATION
    );
    // A multi-row insert that fails part way leaves nothing behind.
    assert_eq!(
        err(
            &mut s,
            "INSERT INTO posts (id, title) VALUES (10, 'ok'), (1, 'dup')"
        ),
        sqlstate::UNIQUE_VIOLATION
    );
    assert_eq!(
        one(&mut s, "SELECT id FROM posts WHERE id = 10").rows.len(),
        0
    );
}

#[test]
fn transactions_commit_roll_back_and_fail_like_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(dir.path());
    board(&mut s);
    one(&mut s, "BEGIN");
    one(&mut s, "INSERT INTO posts (title) VALUES ('in txn')");
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM posts").rows[0][0],
        Value::Int(4)
    );
    one(&mut s, "ROLLBACK");
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM posts").rows[0][0],
        Value::Int(3)
    );

    one(&mut s, "BEGIN");
    one(&mut s, "INSERT INTO posts (title) VALUES ('kept')");
    assert_eq!(
        err(&mut s, "INSERT INTO posts (id, title) VALUES (1, 'dup')"),
        sqlstate::UNIQUE_VIOLATION
    );
    assert!(s.failed());
    assert_eq!(err(&mut s, "SELECT 1"), "25P02");
    assert_eq!(one(&mut s, "COMMIT").tag, "ROLLBACK");
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM posts").rows[0][0],
        Value::Int(3)
    );

    one(&mut s, "BEGIN");
    one(&mut s, "DELETE FROM posts WHERE id = 1");
    assert_eq!(one(&mut s, "COMMIT").tag, "COMMIT");
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM posts").rows[0][0],
        Value::Int(2)
    );
}

#[test]
fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = session(dir.path());
        board(&mut s);
    }
    let mut s = session(dir.path());
    let r = one(
        &mut s,
        "SELECT title FROM posts WHERE author = 'kim' ORDER BY title",
    );
    assert_eq!(rows(&r), vec![vec!["first"], vec!["third"]]);
    let r = one(
        &mut s,
        "INSERT INTO posts (title) VALUES ('after') RETURNING id",
    );
    assert_eq!(rows(&r), vec![vec!["4"]]);
}

#[test]
fn concurrent_inserts_into_a_serial_table_never_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), Config::default()).unwrap());
    let db = tiers_sql::exec::Database::new(engine).unwrap();
    let mut s = Session::open(&db);
    one(
        &mut s,
        "CREATE TABLE log (id BIGSERIAL PRIMARY KEY, who INTEGER)",
    );
    one(&mut s, "CREATE TABLE heap (who INTEGER)"); // hidden row ids
    std::thread::scope(|scope| {
        for who in 0..4 {
            let db = db.clone();
            scope.spawn(move || {
                let mut s = Session::open(&db);
                for _ in 0..100 {
                    one(&mut s, &format!("INSERT INTO log (who) VALUES ({who})"));
                    one(&mut s, &format!("INSERT INTO heap VALUES ({who})"));
                }
            });
        }
    });
    let r = one(&mut s, "SELECT count(*), min(id), max(id) FROM log");
    assert_eq!(rows(&r), vec![vec!["400", "1", "400"]]);
    assert_eq!(
        rows(&one(&mut s, "SELECT count(*) FROM heap")),
        vec![vec!["400"]]
    );
}

#[test]
fn set_and_show_session_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(dir.path());
    assert_eq!(
        rows(&one(&mut s, "SHOW server_version"))[0][0],
        format!("15.0 (tiers {})", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(one(&mut s, "SET application_name = 'board'").tag, "SET");
    assert_eq!(
        rows(&one(&mut s, "SHOW application_name")),
        vec![vec!["board"]]
    );
    one(&mut s, "SET client_encoding TO 'UTF8'");
    one(&mut s, "SET TIME ZONE 'UTC'");
    one(&mut s, "SET statement_timeout = 5000");
    assert_eq!(
        rows(&one(&mut s, "SHOW statement_timeout")),
        vec![vec!["5000"]]
    );
    assert_eq!(err(&mut s, "SET client_encoding = 'LATIN1'"), "22023");
    assert_eq!(err(&mut s, "SET no_such_thing = 1"), "42704");
    assert_eq!(err(&mut s, "SHOW no_such_thing"), "42704");
    assert_eq!(
        rows(&one(&mut s, "SHOW TRANSACTION ISOLATION LEVEL")),
        vec![vec!["read committed"]]
    );
    one(&mut s, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    assert_eq!(
        rows(&one(&mut s, "SHOW transaction_isolation")),
        vec![vec!["repeatable read"]]
    );
    one(&mut s, "COMMIT");
    assert_eq!(
        rows(&one(&mut s, "SHOW transaction_isolation")),
        vec![vec!["read committed"]]
    );
    assert_eq!(err(&mut s, "BEGIN ISOLATION LEVEL SERIALIZABLE"), "0A000");
}

#[test]
fn read_committed_updates_wait_for_each_other_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), Config::default()).unwrap());
    let db = tiers_sql::exec::Database::new(engine).unwrap();
    let mut s = Session::open(&db);
    one(
        &mut s,
        "CREATE TABLE counters (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
    );
    one(&mut s, "INSERT INTO counters VALUES (1, 0), (2, 0)");
    // Four sessions increment the same rows in explicit transactions, the
    // way pgbench's TPC-B updates branches: none may fail, none may be lost.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let db = db.clone();
            scope.spawn(move || {
                let mut s = Session::open(&db);
                for _ in 0..50 {
                    one(&mut s, "BEGIN");
                    one(&mut s, "UPDATE counters SET n = n + 1 WHERE id = 1");
                    one(&mut s, "UPDATE counters SET n = n + 10 WHERE id = 2");
                    one(&mut s, "COMMIT");
                }
            });
        }
    });
    let r = one(&mut s, "SELECT n FROM counters ORDER BY id");
    assert_eq!(rows(&r), vec![vec!["200"], vec!["2000"]]);
    assert!(db.locks.is_empty(), "every row lock was released");
    // The same key inserted twice concurrently: the second waits, then sees a duplicate.
    let mut a = Session::open(&db);
    let mut b = Session::open(&db);
    one(&mut a, "BEGIN");
    one(&mut a, "INSERT INTO counters VALUES (3, 0)");
    let waiter = std::thread::spawn(move || {
        let code = match b.execute("INSERT INTO counters VALUES (3, 5)") {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code.to_string(),
        };
        (code, b)
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    one(&mut a, "COMMIT");
    let (code, _b) = waiter.join().unwrap();
    assert_eq!(code, sqlstate::UNIQUE_VIOLATION);
}
