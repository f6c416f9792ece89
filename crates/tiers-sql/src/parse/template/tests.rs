//! The statement cache gives exactly what a direct parse gives.

use super::*;

/// Parses every statement of `cases` through one cache three times over
/// (so each shape is seen, proven and then served from its template) and
/// checks each result against a direct parse, errors included.
fn assert_same_as_direct(cases: &[&[&str]]) -> StatementCache {
    let mut cache = StatementCache::default();
    for _round in 0..3 {
        for variants in cases {
            for sql in *variants {
                let cached = cache.parse(sql);
                let direct = crate::parse::parse(sql);
                match (&cached, &direct) {
                    (Ok(c), Ok(d)) => assert_eq!(c, d, "{sql}"),
                    (Err(c), Err(d)) => {
                        assert_eq!((&c.code, &c.message), (&d.code, &d.message), "{sql}")
                    }
                    _ => panic!("{sql}: cached {cached:?} but direct {direct:?}"),
                }
            }
        }
    }
    cache
}

#[test]
fn lifts_numbers_strings_and_signs() {
    let l = lift("UPDATE t SET b = b + -1234 WHERE a = 7 AND s = 'it''s'").unwrap();
    assert_eq!(
        l.template(),
        "UPDATE t SET b = b + $1 WHERE a = $2 AND s = $3"
    );
    assert_eq!(&l.key[l.template_len..], "\0nns");
    let sql = "SELECT x - 5, -.5e3, t1.c2 FROM t1 /* 9 */ -- 8\n WHERE \"c 3\" = 1.5";
    let l = lift(sql).unwrap();
    assert_eq!(
        l.template(),
        "SELECT x - $1, $2, t1.c2 FROM t1 /* 9 */ -- 8\n WHERE \"c 3\" = $3"
    );
    let values: Vec<Value> = l.literals.iter().map(|x| x.value(sql).unwrap()).collect();
    assert_eq!(values[0], Value::Int(5));
    assert_eq!(
        values[1],
        Value::Numeric(crate::value::parse_numeric("-500").unwrap())
    );
}

#[test]
fn leaves_what_it_does_not_understand_to_the_parser() {
    for sql in [
        "SELECT E'a\\nb'",
        "SELECT 'a\\b'",
        "SELECT $$x$$",
        "SELECT 1_000",
        "SELECT 0x1F",
        "SELECT 1e",
        "SELECT 'open",
        "SELECT /* open",
        "SELECT \"open",
    ] {
        assert!(lift(sql).is_none(), "{sql}");
    }
    // Placeholders already there: the text itself is the key.
    let l = lift("SELECT $1 + 2").unwrap();
    assert_eq!(l.template(), "SELECT $1 + 2");
    assert!(l.literals.is_empty());
}

#[test]
fn cached_parses_equal_direct_parses() {
    let cache = assert_same_as_direct(&[
        &[
            "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 99999",
        ],
        &[
            "UPDATE a SET v = v + -5 WHERE id = 3",
            "UPDATE a SET v = v + 5000 WHERE id = 4",
            "UPDATE a SET v = v + - 9223372036854775808 WHERE id = 4",
        ],
        &[
            "INSERT INTO h (a, b, c) VALUES (1, 'x', 2.5), (-2, 'it''s', 1e3)",
            "INSERT INTO h (a, b, c) VALUES (99999999999999999999, '', .5), (0, 'z', -0.0)",
        ],
        &[
            "SELECT a FROM t ORDER BY 1 LIMIT 3 OFFSET 2",
            "SELECT a FROM t ORDER BY 2 LIMIT 1",
        ],
        &["SELECT a, count(*) FROM t GROUP BY 1 HAVING count(*) > 2"],
        &[
            "SELECT DATE '2020-01-01', INTERVAL '1 day'",
            "SELECT DATE '2021-02-03', INTERVAL '2 days'",
        ],
        &["SELECT '5'::int, CAST('7' AS numeric(10, 2)), 'x'::varchar(3)"],
        &[
            "SELECT -5, - 6, 3 - 2, x-1 FROM t",
            "SELECT -7, - 8, 4 - 3, x-2 FROM t",
        ],
        &[
            "SET statement_timeout = 5",
            "SET statement_timeout = '10s'",
            "SET search_path = public",
        ],
        &["CREATE TABLE IF NOT EXISTS c (a int DEFAULT 5 CHECK (a > 0), b varchar(10))"],
        &["SELECT * FROM t WHERE a IN (1, 2, 3) AND b BETWEEN 4 AND 5 AND c LIKE 'a%'"],
        &[
            "SELECT CASE WHEN a > 1 THEN -1 ELSE 'x' END FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.k = 2)",
        ],
        &["SELECT * FROM generate_series(1, 10) g WHERE g > (SELECT max(x) - 3 FROM t)"],
        &["WITH w AS (SELECT 1 AS k) SELECT * FROM w JOIN t ON t.k = w.k + 1 UNION SELECT 2"],
        &["DELETE FROM t USING u WHERE t.k = u.k AND u.v = 'gone' RETURNING t.k, 1"],
        &["INSERT INTO t VALUES (1, 'a') ON CONFLICT (k) DO UPDATE SET v = 'b' WHERE t.n < 3"],
        &["EXPLAIN SELECT * FROM t WHERE k = 5"],
        &["BEGIN; SELECT 1; UPDATE t SET a = 2 WHERE k = 3; COMMIT"],
        &["SELECT $1 + 2 FROM t WHERE k = $2"],
        &["SELECT 1e999", "SELECT 1e5", "SELECT 'x' FROM"],
        &["SELECT \"weird \"\"col\"\" 1\" FROM t2 WHERE c3 = 4 -- trailing 5"],
        &["COPY t (a, b) FROM STDIN WITH (FORMAT csv, DELIMITER ';')"],
    ]);
    assert!(cache.hits() > 20, "{} hits", cache.hits());
}

#[test]
fn a_shape_is_served_from_its_template_after_it_is_proven() {
    let mut cache = StatementCache::default();
    for i in 0..10 {
        let sql = format!("SELECT v FROM t WHERE k = {i} AND s = 'n{i}'");
        assert_eq!(
            cache.parse(&sql).unwrap(),
            crate::parse::parse(&sql).unwrap()
        );
    }
    // Seen once, proven the second time, served from the template after.
    assert_eq!(cache.hits(), 8);
}

mod random {
    use super::*;
    use proptest::prelude::*;

    /// A constant of one kind, as a client would write it: integers of
    /// every size and sign (with and without blanks after the sign),
    /// decimals, exponents, and strings with quotes, blanks and non-ASCII.
    fn constant(kind: usize) -> BoxedStrategy<String> {
        match kind {
            0 => any::<i64>().prop_map(|i| i.to_string()).boxed(),
            1 => (any::<u64>(), 0usize..40)
                .prop_map(|(i, zeros)| format!("{i}{}", "0".repeat(zeros)))
                .boxed(),
            2 => any::<i32>()
                .prop_map(|i| format!("- {}", i.unsigned_abs()))
                .boxed(),
            3 => (any::<i32>(), 0u32..100_000)
                .prop_map(|(i, f)| format!("{i}.{f}"))
                .boxed(),
            4 => (0u32..1000, -40i32..40)
                .prop_map(|(m, e)| format!("{m}e{e}"))
                .boxed(),
            5 => (0u32..1000).prop_map(|f| format!(".{f}")).boxed(),
            _ => "[a-z' é%_0-9-]{0,12}"
                .prop_map(|s| format!("'{}'", s.replace('\'', "''")))
                .boxed(),
        }
    }

    /// Four rounds of six constants, each position keeping its kind (so
    /// the rounds share a template) while the values change.
    fn rounds() -> impl Strategy<Value = Vec<Vec<String>>> {
        proptest::collection::vec(0usize..7, 6).prop_flat_map(|kinds| {
            let round: Vec<BoxedStrategy<String>> = kinds.iter().map(|&k| constant(k)).collect();
            proptest::collection::vec(round, 4)
        })
    }

    /// Statement shapes with holes for constants.
    const SHAPES: &[&str] = &[
        "SELECT abalance FROM pgbench_accounts WHERE aid = {}",
        "UPDATE t SET v = v + {} WHERE k = {} AND s <> {}",
        "INSERT INTO t (a, b, c) VALUES ({}, {}, {}), ({}, {}, {})",
        "SELECT a, {} FROM t WHERE b BETWEEN {} AND {} ORDER BY 1 LIMIT {}",
        "SELECT CASE WHEN a > {} THEN {} ELSE {} END FROM t WHERE c IN ({}, {})",
        "DELETE FROM t WHERE k = {} RETURNING k, {}",
        "SELECT {}::text, CAST({} AS numeric(12, 3)), x-{} FROM t",
        "SELECT * FROM t WHERE s LIKE {} OR n = -{}",
        "SET statement_timeout = {}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn the_cache_parses_random_constants_exactly_as_the_parser_does(
            shape in 0..SHAPES.len(),
            rounds in rounds(),
        ) {
            let mut cache = StatementCache::default();
            // Four statements of one shape: seen, proven, then served.
            for round in &rounds {
                let mut sql = SHAPES[shape].to_string();
                for c in round {
                    if let Some(at) = sql.find("{}") {
                        sql.replace_range(at..at + 2, c);
                    }
                }
                let cached = cache.parse(&sql);
                let direct = crate::parse::parse(&sql);
                match (&cached, &direct) {
                    (Ok(c), Ok(d)) => prop_assert_eq!(c, d, "{}", sql),
                    (Err(c), Err(d)) => prop_assert_eq!((&c.code, &c.message), (&d.code, &d.message)),
                    _ => prop_assert!(false, "{}: cached {:?} but direct {:?}", sql, cached, direct),
                }
            }
            // These shapes always prove their template: the last two
            // rounds are served from it.
            if shape == 0 || shape == 2 {
                prop_assert_eq!(cache.hits(), 2);
            }
        }
    }
}
