//! Prepared statements keep their plan (a SELECT's query plan, an UPDATE's
//! table definition, constraints and bound expressions) between executions,
//! and plan again after any DDL.

use std::sync::Arc;

use tiers_sql::ast::Statement;
use tiers_sql::exec::{Database, PlanCache, Session};
use tiers_sql::value::Value;
use tiers_storage::{Config, Engine};

fn session() -> (tempfile::TempDir, Arc<Database>, Session) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), Config::default()).unwrap());
    let db = Database::new(engine).unwrap();
    let mut s = Session::open(&db);
    s.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER CHECK (a < 100), b TEXT);
         INSERT INTO t VALUES (1, 10, 'x'), (2, 20, 'y');",
    )
    .unwrap();
    (dir, db, s)
}

fn one(sql: &str) -> Statement {
    tiers_sql::parse::parse(sql).unwrap().remove(0)
}

fn int(s: &mut Session, sql: &str) -> i64 {
    s.execute(sql).unwrap()[0].rows[0][0].to_i64().unwrap()
}

#[test]
fn a_prepared_update_is_planned_once_and_again_after_ddl() {
    let (_dir, db, mut s) = session();
    let update = one("UPDATE t SET a = a + $2 WHERE id = $1");
    let cache = PlanCache::default();
    let run = |s: &mut Session, id: i64, delta: i64| {
        s.run_prepared(&update, &[Value::Int(id), Value::Int(delta)], &cache)
    };
    for _ in 0..3 {
        assert_eq!(run(&mut s, 1, 5).unwrap().tag, "UPDATE 1");
    }
    assert_eq!(int(&mut s, "SELECT a FROM t WHERE id = 1"), 25);
    // The kept plan still checks the table's constraints.
    let e = run(&mut s, 2, 500).unwrap_err();
    assert_eq!(e.code, "23514", "{}", e.message);
    assert_eq!(run(&mut s, 3, 1).unwrap().tag, "UPDATE 0");

    // The table is made again with its columns in another order: the next
    // execution must plan again, or it would write `a` into the wrong column.
    s.execute(
        "DROP TABLE t;
         CREATE TABLE t (b TEXT, id INTEGER PRIMARY KEY, a INTEGER);
         INSERT INTO t VALUES ('x', 1, 10);",
    )
    .unwrap();
    assert_eq!(run(&mut s, 1, 1).unwrap().tag, "UPDATE 1");
    assert_eq!(int(&mut s, "SELECT a FROM t WHERE id = 1"), 11);
    let r = s.execute("SELECT b FROM t WHERE id = 1").unwrap();
    assert_eq!(r[0].rows[0][0], Value::Text("x".into()));

    // Inside a transaction that changed the catalog, the kept plan is not
    // used: the renamed column is not found.
    s.execute("BEGIN; ALTER TABLE t RENAME COLUMN a TO z")
        .unwrap();
    let e = run(&mut s, 1, 1).unwrap_err();
    assert_eq!(e.code, "42703", "{}", e.message);
    s.execute("ROLLBACK").unwrap();
    // Rolled back: `a` again, and the update works.
    assert_eq!(run(&mut s, 1, 1).unwrap().tag, "UPDATE 1");
    assert_eq!(int(&mut s, "SELECT a FROM t WHERE id = 1"), 12);

    // Another session's open DDL transaction: this one keeps seeing (and
    // planning against) the committed catalog, then the new one once it
    // commits.
    let mut other = Session::open(&db);
    other
        .execute("BEGIN; ALTER TABLE t RENAME COLUMN a TO z")
        .unwrap();
    assert_eq!(run(&mut s, 1, 1).unwrap().tag, "UPDATE 1");
    other.execute("COMMIT").unwrap();
    let e = run(&mut s, 1, 1).unwrap_err();
    assert_eq!(e.code, "42703", "{}", e.message);
    assert_eq!(int(&mut s, "SELECT z FROM t WHERE id = 1"), 13);
}

#[test]
fn a_prepared_insert_is_planned_once_and_again_after_ddl() {
    let (_dir, _db, mut s) = session();
    s.execute("CREATE TABLE log (id SERIAL PRIMARY KEY, n INTEGER CHECK (n >= 0), note TEXT DEFAULT 'none')")
        .unwrap();
    let insert = one("INSERT INTO log (n) VALUES ($1)");
    let cache = PlanCache::default();
    let run = |s: &mut Session, n: i64| s.run_prepared(&insert, &[Value::Int(n)], &cache);
    for n in 1..=3 {
        assert_eq!(run(&mut s, n).unwrap().tag, "INSERT 0 1");
    }
    // Defaults and the serial are worked out per row, not kept.
    assert_eq!(int(&mut s, "SELECT max(id) FROM log"), 3);
    assert_eq!(
        int(&mut s, "SELECT count(*) FROM log WHERE note = 'none'"),
        3
    );
    let e = run(&mut s, -1).unwrap_err();
    assert_eq!(e.code, "23514", "{}", e.message);
    // Made again with `n` elsewhere and a new default: planned again.
    s.execute(
        "DROP TABLE log;
         CREATE TABLE log (note TEXT DEFAULT 'new', n INTEGER, id SERIAL PRIMARY KEY)",
    )
    .unwrap();
    assert_eq!(run(&mut s, 7).unwrap().tag, "INSERT 0 1");
    let r = s.execute("SELECT note, n, id FROM log").unwrap();
    assert_eq!(
        r[0].rows[0],
        [Value::Text("new".into()), Value::Int(7), Value::Int(1)]
    );
}
