//! The deepest statements the parser accepts must run through every later
//! stage too (binding names, planning, evaluating, dropping the trees) on a
//! thread with the stack the server's threads have (2 MiB): the nesting
//! limit (`parse::MAX_EXPR_DEPTH`, 256 levels; sqlparser's own 50 for
//! brackets and subqueries) is what keeps those recursive stages within
//! their stack, and this checks that it is tight enough for each.

use std::sync::Arc;

use tiers_sql::exec::Session;
use tiers_storage::{Config, Engine};

/// The stack of a tokio worker and of the DB tier's connection loops.
const SERVER_STACK: usize = 2 << 20;

/// Runs `sqls` in one session on a thread with the server's stack; each
/// answer's first value as text, or the error's SQLSTATE.
fn on_server_stack(setup: &'static [&'static str], sqls: Vec<String>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::thread::Builder::new()
        .stack_size(SERVER_STACK)
        .spawn(move || {
            let engine = Arc::new(Engine::open(&path, Config::default()).unwrap());
            let mut s = Session::new(engine).unwrap();
            for sql in setup {
                s.execute(sql).unwrap();
            }
            sqls.iter()
                .map(|sql| match s.execute(sql) {
                    Ok(mut r) => {
                        let r = r.pop().unwrap();
                        r.rows
                            .first()
                            .and_then(|row| row.first())
                            .map_or("no row".into(), |v| v.to_text())
                    }
                    Err(e) => e.code.to_string(),
                })
                .collect()
        })
        .unwrap()
        .join()
        .expect("no stack overflow in any stage")
}

#[test]
fn the_longest_accepted_operator_chains_run_on_a_server_stack() {
    let chain = |op: &str, term: &str, n: usize| vec![term; n].join(op);
    let answers = on_server_stack(
        &[
            "CREATE TABLE t (a int, s text)",
            "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        ],
        vec![
            format!("SELECT {}", chain(" + ", "1", 250)),
            format!("SELECT length({})", chain(" || ", "'a'", 250)),
            format!(
                "SELECT count(*) FROM t WHERE {}",
                (0..120)
                    .map(|i| format!("a = {i}"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            format!("SELECT {} FROM t WHERE a = 1", chain(" * ", "a", 250)),
            format!(
                "UPDATE t SET a = {} WHERE a = 3 RETURNING a",
                chain(" - ", "a", 250)
            ),
            format!("SELECT ({})::text", chain(" AND ", "true", 250)),
            // Past the limit: refused before any later stage runs.
            format!("SELECT {}", chain(" + ", "1", 2_000)),
        ],
    );
    assert_eq!(answers[0], "250");
    assert_eq!(answers[1], "250");
    assert_eq!(answers[2], "3", "a = 1, 2 and 3 match");
    assert_eq!(answers[3], "1");
    assert_eq!(answers[4], "-744", "3 - 3 × 249");
    assert_eq!(answers[5], "t");
    assert_eq!(answers[6], "54001");
}

#[test]
fn the_deepest_accepted_nesting_runs_on_a_server_stack() {
    let nest = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let answers = on_server_stack(
        &["CREATE TABLE t (a int)", "INSERT INTO t VALUES (7)"],
        vec![
            format!("SELECT {}", nest("(", "1", ")", 40)),
            format!("SELECT {}", nest("abs(", "-1", ")", 40)),
            format!("SELECT {}", nest("CASE WHEN true THEN ", "5", " END", 40)),
            format!("SELECT {}", nest("(SELECT ", "a FROM t", ")", 12)),
            format!("SELECT {}", nest("(", "1", ")", 5_000)),
            format!("SELECT {}", nest("(SELECT ", "1", ")", 5_000)),
        ],
    );
    assert_eq!(answers[0], "1");
    assert_eq!(answers[1], "1");
    assert_eq!(answers[2], "5");
    assert_eq!(answers[3], "7");
    // Deeper than the bound: refused, not run.
    assert_eq!(answers[4], "54001");
    assert_eq!(answers[5], "54001");
}
