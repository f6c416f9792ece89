//! A differential test against real PostgreSQL 15: the same schema, data
//! and queries (hand-written and generated) run on a throw-away PostgreSQL
//! cluster and on `tiers db`, and every result (rows as text, or the
//! SQLSTATE of the error) must be the same.
//!
//! It needs PostgreSQL 15's server binaries (`/usr/lib/postgresql/15/bin`,
//! Debian's `postgresql-15`), so it is `#[ignore]`d in the plain test run;
//! `.ci/run` installs the package and runs it with `--ignored`. Run it by
//! hand with: `cargo test -p tiers-db --test differential -- --ignored`.

use tiers_db::{Server, ServerConfig};
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[path = "support/postgres.rs"]
mod postgres;
use postgres::Postgres;

async fn connect(port: u16, db: &str) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={port} user=test dbname={db}");
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A result as comparable text: rows of cells, or the error's SQLSTATE.
async fn outcome(c: &tokio_postgres::Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    match c.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()),
        Err(e) => Err(e
            .code()
            .map_or_else(|| e.to_string(), |c| c.code().to_string())),
    }
}

const SCHEMA: &str = "
CREATE TABLE t1 (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c DOUBLE PRECISION, d DATE);
CREATE TABLE t2 (id INTEGER PRIMARY KEY, t1_id INTEGER, n INTEGER NOT NULL, tag VARCHAR(10));
CREATE INDEX t2_t1 ON t2 (t1_id);
CREATE INDEX t1_b ON t1 USING hash (b);
";

/// A tiny deterministic generator (no dependency, same sequence everywhere).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn data(rng: &mut Lcg) -> Vec<String> {
    let words = [
        "apple", "banana", "cherry", "date", "elder", "fig", "grape", "Apple", "",
    ];
    let mut out = Vec::new();
    for id in 1..=60 {
        let a = if rng.below(8) == 0 {
            "NULL".to_string()
        } else {
            (rng.below(20) as i64 - 5).to_string()
        };
        let b = if rng.below(10) == 0 {
            "NULL".to_string()
        } else {
            format!("'{}{}'", rng.pick(&words), rng.below(3))
        };
        let c = if rng.below(6) == 0 {
            "NULL".to_string()
        } else {
            format!("{}.25", rng.below(100))
        };
        let d = format!("'2024-{:02}-{:02}'", rng.below(12) + 1, rng.below(28) + 1);
        out.push(format!("INSERT INTO t1 VALUES ({id}, {a}, {b}, {c}, {d})"));
    }
    for id in 1..=90 {
        let t1 = if rng.below(10) == 0 {
            "NULL".to_string()
        } else {
            (rng.below(70) + 1).to_string()
        };
        let tag = rng.pick(&["'x'", "'y'", "'zz'", "NULL"]);
        out.push(format!(
            "INSERT INTO t2 VALUES ({id}, {t1}, {}, {tag})",
            rng.below(50)
        ));
    }
    out
}

fn predicate(rng: &mut Lcg, alias: &str) -> String {
    let k = rng.below(15) as i64 - 3;
    let one = match rng.below(12) {
        0 => format!("{alias}a > {k}"),
        1 => format!("{alias}a BETWEEN {k} AND {}", k + 5),
        2 => format!("{alias}b LIKE '{}%'", rng.pick(&["a", "b", "c", "g", "A"])),
        3 => format!("{alias}c IS NULL"),
        4 => format!("{alias}a IN ({k}, {}, {})", k + 2, k + 4),
        5 => format!("NOT ({alias}a = {k})"),
        6 => format!("{alias}a % 3 = 0"),
        7 => format!("{alias}b ILIKE '%{}%'", rng.pick(&["an", "E", "rr"])),
        8 => format!("{alias}c >= {}", rng.below(100)),
        9 => format!("{alias}d < '2024-06-01'"),
        10 => format!("coalesce({alias}a, 0) <= {k}"),
        _ => format!("{alias}id <= {}", rng.below(60)),
    };
    match rng.below(4) {
        0 => format!("({one} AND {})", predicate(rng, alias)),
        1 => format!("({one} OR {})", predicate(rng, alias)),
        _ => one,
    }
}

fn generated(rng: &mut Lcg) -> String {
    match rng.below(10) {
        0 => format!(
            "SELECT id, a, b, c, d FROM t1 WHERE {} ORDER BY id",
            predicate(rng, "")
        ),
        1 => format!(
            "SELECT a, count(*), count(b), sum(a), min(b), max(c) FROM t1 WHERE {} GROUP BY a ORDER BY a NULLS FIRST",
            predicate(rng, "")
        ),
        2 => format!(
            "SELECT t1.id, t2.id, t2.n FROM t1 JOIN t2 ON t2.t1_id = t1.id WHERE {} ORDER BY 1, 2",
            predicate(rng, "t1.")
        ),
        3 => format!(
            "SELECT t1.id, t2.n FROM t1 LEFT JOIN t2 ON t2.t1_id = t1.id AND t2.n > {} WHERE {} ORDER BY 1, 2 NULLS FIRST",
            rng.below(40),
            predicate(rng, "t1.")
        ),
        4 => format!(
            "SELECT id FROM t1 WHERE a IN (SELECT n % 10 FROM t2 WHERE tag = '{}') ORDER BY id",
            rng.pick(&["x", "y", "zz"])
        ),
        5 => format!(
            "SELECT id, (SELECT count(*) FROM t2 WHERE t2.t1_id = t1.id) FROM t1 WHERE {} ORDER BY id",
            predicate(rng, "")
        ),
        6 => format!(
            "SELECT a FROM t1 WHERE {} {} SELECT n - 20 FROM t2 ORDER BY 1 NULLS FIRST",
            predicate(rng, ""),
            rng.pick(&["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "EXCEPT ALL"])
        ),
        7 => format!(
            "SELECT DISTINCT upper(b), length(b), b || '!' FROM t1 WHERE {} ORDER BY 1 NULLS FIRST, 2, 3",
            predicate(rng, "")
        ),
        8 => format!(
            "SELECT id, CASE WHEN a > {} THEN 'hi' WHEN a IS NULL THEN 'none' ELSE 'lo' END, coalesce(c, -1) FROM t1 ORDER BY id LIMIT {} OFFSET {}",
            rng.below(10),
            rng.below(20) + 1,
            rng.below(30)
        ),
        _ => format!(
            "SELECT t2.tag, count(*), sum(t2.n) FROM t2 LEFT JOIN t1 ON t1.id = t2.t1_id WHERE {} GROUP BY t2.tag HAVING count(*) > {} ORDER BY 1 NULLS FIRST",
            predicate(rng, "t1."),
            rng.below(3)
        ),
    }
}

/// Hand-written queries covering what generation does not.
const HAND_WRITTEN: &[&str] = &[
    "SELECT 1 + 2 * 3, 7 / 2, 7 % 3, -5 / 2, 2.5::float8 * 2",
    "SELECT 2147483647 + 1",
    "SELECT 2147483647::bigint + 1, -32768::smallint - 1",
    "SELECT a * 100000000 FROM t1 WHERE a > 5 ORDER BY id",
    "SELECT 'a' || 'b', upper('x'), lower('Y'), length('héllo'), substring('tiers' FROM 2 FOR 3)",
    "SELECT trim('  x '), replace('a-b', '-', '+'), lpad('7', 3, '0'), split_part('a,b,c', ',', 3)",
    "SELECT abs(-3), round(2.567, 2), ceil(1.2), floor(-1.5), greatest(1, 5, 3), least(4, 2)",
    "SELECT coalesce(NULL, 2), nullif(3, 3), nullif(3, 4)",
    "SELECT NULL = NULL, NULL IS NULL, 1 IN (1, NULL), 2 IN (1, NULL), 2 NOT IN (1, NULL)",
    "SELECT true AND NULL, false AND NULL, true OR NULL, false OR NULL, NOT NULL::boolean",
    "SELECT extract(year FROM DATE '2024-03-15'), DATE '2024-02-28' + 2, DATE '2024-03-01' - DATE '2024-02-01'",
    "SELECT count(*), count(DISTINCT a), sum(a), min(a), max(a) FROM t1",
    "SELECT b, count(*) FROM t1 GROUP BY b HAVING count(*) > 1 ORDER BY b NULLS FIRST",
    "SELECT * FROM t1 WHERE id BETWEEN 5 AND 9 ORDER BY id DESC",
    "SELECT t1.id, t2.id FROM t1 RIGHT JOIN t2 ON t1.id = t2.t1_id ORDER BY 2, 1",
    "SELECT t1.id, t2.id FROM t1 FULL JOIN t2 ON t1.id = t2.t1_id ORDER BY 1 NULLS FIRST, 2 NULLS FIRST",
    "SELECT count(*) FROM t1 CROSS JOIN t2",
    "SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.t1_id = t1.id AND t2.n > 40) ORDER BY id",
    "SELECT id FROM t1 WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE t2.t1_id = t1.id) ORDER BY id",
    "SELECT id FROM t1 WHERE a NOT IN (SELECT a FROM t1 WHERE a IS NOT NULL AND a > 5) ORDER BY id",
    "WITH big AS (SELECT id, a FROM t1 WHERE a > 5) SELECT count(*), sum(a) FROM big",
    "WITH x AS (SELECT t1_id, count(*) AS n FROM t2 GROUP BY t1_id) SELECT t1.id, x.n FROM t1 JOIN x ON x.t1_id = t1.id ORDER BY 1",
    "SELECT * FROM (SELECT a, count(*) AS n FROM t1 GROUP BY a) s WHERE n > 2 ORDER BY a NULLS FIRST",
    "SELECT generate_series FROM generate_series(1, 10, 3)",
    "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v (n, s) ORDER BY n DESC",
    "SELECT id, b FROM t1 ORDER BY b NULLS FIRST, id LIMIT 5",
    "SELECT id, b FROM t1 ORDER BY b DESC NULLS LAST, id LIMIT 5",
    "SELECT string_agg(tag, ',') FROM (SELECT DISTINCT tag FROM t2 WHERE tag IS NOT NULL ORDER BY tag) s",
    "SELECT 1 / 0",
    "SELECT nope FROM t1",
    "SELECT * FROM nope",
    "SELECT id FROM t1, t2",
    "SELECT (SELECT id FROM t1)",
    "SELECT a, b FROM t1 GROUP BY a",
    "SELECT CAST('abc' AS INTEGER)",
    "INSERT INTO t2 VALUES (1, 1, 1, 'x')",
    "INSERT INTO t2 (id) VALUES (999)",
    "SELECT 'x'::varchar(10) || 1",
    // Whole tables joined on their primary keys (a merge join in tiers).
    "SELECT t1.id, t1.a, t2.n FROM t1 JOIN t2 ON t1.id = t2.id ORDER BY t1.id",
    "SELECT count(*), sum(t2.n) FROM t1 JOIN t2 ON t2.id = t1.id AND t2.n > t1.a",
    // Joined writes (they change both databases alike; later queries see it).
    "UPDATE t1 SET a = t1.a + t2.n FROM t2 WHERE t2.t1_id = t1.id AND t2.id = 3 RETURNING t1.id, t1.a",
    "UPDATE t1 AS x SET b = s.tag FROM (SELECT t1_id, max(tag) AS tag FROM t2 GROUP BY t1_id) AS s WHERE s.t1_id = x.id AND x.id % 3 = 0",
    "SELECT id, a, b FROM t1 ORDER BY id",
    "UPDATE t1 SET a = 0 FROM t2 WHERE t2.t1_id = t1.id AND t2.n > 100000",
    "DELETE FROM t2 USING t1 WHERE t2.t1_id = t1.id AND t1.a % 2 = 0 AND t2.id % 4 = 1",
    "SELECT id, t1_id, n FROM t2 ORDER BY id",
    "UPDATE t1 SET a = 1 FROM t2 WHERE id = 1",
    "DELETE FROM t2 USING nope WHERE nope.id = t2.id",
    // numeric: literals, scales, arithmetic, rounding, aggregates, casts, errors.
    "CREATE TABLE t3 (id INTEGER PRIMARY KEY, price NUMERIC(10, 2), qty NUMERIC, rate DECIMAL(5))",
    "INSERT INTO t3 VALUES (1, 19.999, 3, 7.5), (2, 0.5, 0.125, -2.5), (3, -1234.5, 1e3, 99999), (4, NULL, 10, 0)",
    "SELECT id, price, qty, rate FROM t3 ORDER BY id",
    "SELECT id, price * qty, price + qty, price - 1, qty / 3, price / 7, qty % 0.3 FROM t3 ORDER BY id",
    "SELECT 1.5, 1.50 + 1, 2 * 1.25, 10 / 4.0, 1 / 3.0, 7.0 / 2, -0.5, 1e3, 1.5e-3",
    "SELECT sum(price), avg(price), min(qty), max(qty), sum(qty), avg(id) FROM t3",
    "SELECT round(price, 1), round(price), trunc(price, 1), ceil(price), floor(price), abs(price), sign(price) FROM t3 ORDER BY id",
    "SELECT round(1234.5678, -2), round(2.5), round(-2.5), trunc(-2.7)",
    "SELECT price::integer, price::float8, qty::text, '3.14159'::numeric(4, 2), 2.5::numeric(3, 0) FROM t3 ORDER BY id",
    "SELECT id FROM t3 WHERE price > 1 ORDER BY id",
    "SELECT id FROM t3 WHERE qty = 1000 ORDER BY price DESC",
    "SELECT id FROM t3 WHERE price BETWEEN 0.1 AND 20 ORDER BY id",
    "SELECT id, qty FROM t3 ORDER BY qty DESC, id",
    "SELECT price * 1.1 FROM t3 ORDER BY id",
    "SELECT c * 1.5 FROM t1 WHERE c IS NOT NULL ORDER BY id LIMIT 5",
    "INSERT INTO t3 VALUES (5, 123456789.123, 0, 0)",
    "INSERT INTO t3 VALUES (6, 1, 1, 123456)",
    "SELECT 1 / 0.0",
    "SELECT 'abc'::numeric",
    "CREATE INDEX t3_qty ON t3 (qty)",
    "SELECT id FROM t3 WHERE qty = 0.125",
    "SELECT id FROM t3 WHERE qty >= 3 ORDER BY qty",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (run by .ci/run, which installs it)"]
async fn same_results_as_postgresql_15() {
    let base = tempfile::tempdir().unwrap();
    let pg = Postgres::start(base.path());
    let tiers_dir = tempfile::tempdir().unwrap();
    let server = Server::bind(ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        tiers_dir.path().to_path_buf(),
    ))
    .await
    .unwrap();
    let tiers_port = server.local_addr().port();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let p = connect(pg.port, "postgres").await;
    let t = connect(tiers_port, "tiers").await;
    let mut rng = Lcg(20261128);
    let mut setup: Vec<String> = SCHEMA
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    setup.extend(data(&mut rng));
    for sql in &setup {
        p.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("postgres: {sql}: {e}"));
        t.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("tiers: {sql}: {e}"));
    }
    let mut queries: Vec<String> = HAND_WRITTEN.iter().map(|s| s.to_string()).collect();
    for _ in 0..400 {
        queries.push(generated(&mut rng));
    }
    let mut mismatches = Vec::new();
    for sql in &queries {
        let (expected, actual) = (outcome(&p, sql).await, outcome(&t, sql).await);
        if expected != actual {
            mismatches.push(format!(
                "{sql}\n  postgres: {expected:?}\n  tiers:    {actual:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} queries differ from PostgreSQL 15:\n{}",
        mismatches.len(),
        queries.len(),
        mismatches.join("\n")
    );
}
