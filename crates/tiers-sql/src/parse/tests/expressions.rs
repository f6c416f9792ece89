//! Tests of the translator's expressions: literals, parameters, operators,
//! functions, casts and the other expression forms (the statement tests and
//! the shared helpers are in the parent module).

use super::*;

#[test]
fn literals() {
    assert_eq!(expr("42"), int(42));
    assert_eq!(expr("-42"), int(-42));
    assert_eq!(expr("+42"), int(42));
    assert_eq!(expr("-9223372036854775808"), int(i64::MIN));
    // Beyond bigint, and with a point or an exponent: numeric, as in
    // PostgreSQL; beyond what numeric holds, double precision.
    let num = |s: &str| Expr::Literal(Value::Numeric(s.parse().unwrap()));
    assert_eq!(expr("9223372036854775808"), num("9223372036854775808"));
    assert_eq!(expr("1.5"), num("1.5"));
    assert_eq!(expr("1.50"), num("1.50"));
    assert_eq!(expr("1e3"), num("1000"));
    assert_eq!(expr(".5"), num("0.5"));
    assert_eq!(expr("1e40"), Expr::Literal(Value::Float(1e40)));
    assert_eq!(expr("0x1F"), int(31));
    assert_eq!(expr("1_000"), int(1000));
    assert_eq!(expr("'it''s'"), text("it's"));
    assert_eq!(expr("E'a\\nb'"), text("a\nb"));
    assert_eq!(expr("$$dollar$$"), text("dollar"));
    assert_eq!(expr("NULL"), Expr::Literal(Value::Null));
    assert_eq!(expr("TRUE"), Expr::Literal(Value::Bool(true)));
    assert_eq!(expr("false"), Expr::Literal(Value::Bool(false)));
    assert_eq!(expr("- a"), Expr::Negate(Box::new(col("a"))));
    assert_eq!(expr("-(1)"), Expr::Negate(Box::new(int(1))));
    assert_eq!(code("SELECT 1e400"), "22003");
}

#[test]
fn parameters() {
    assert_eq!(expr("$1"), Expr::Parameter(1));
    assert_eq!(expr("$12"), Expr::Parameter(12));
    assert_eq!(code("SELECT $0"), "42601");
    assert_eq!(code("SELECT $a"), "42601");
    assert_eq!(code("SELECT $99999999999999999999999"), "42601");
}

#[test]
fn operators() {
    let ops = [
        ("+", BinaryOp::Add),
        ("-", BinaryOp::Sub),
        ("*", BinaryOp::Mul),
        ("/", BinaryOp::Div),
        ("%", BinaryOp::Mod),
        ("=", BinaryOp::Eq),
        ("<>", BinaryOp::NotEq),
        ("!=", BinaryOp::NotEq),
        ("<", BinaryOp::Lt),
        ("<=", BinaryOp::LtEq),
        (">", BinaryOp::Gt),
        (">=", BinaryOp::GtEq),
        ("AND", BinaryOp::And),
        ("OR", BinaryOp::Or),
        ("||", BinaryOp::Concat),
    ];
    for (sym, op) in ops {
        assert_eq!(
            expr(&format!("a {sym} b")),
            bin(op, col("a"), col("b")),
            "{sym}"
        );
    }
    assert_eq!(
        expr("1 + 2 * 3"),
        bin(BinaryOp::Add, int(1), bin(BinaryOp::Mul, int(2), int(3)))
    );
    assert_eq!(expr("((a))"), col("a"));
    assert_eq!(expr("NOT a"), Expr::Not(Box::new(col("a"))));
    assert_eq!(code("SELECT a & b"), "0A000");
}

#[test]
fn predicates() {
    let a = || Box::new(col("a"));
    assert_eq!(
        expr("a IS NOT NULL"),
        Expr::IsNull {
            expr: a(),
            negated: true
        }
    );
    assert_eq!(
        expr("a NOT LIKE 'x%'"),
        Expr::Like {
            expr: a(),
            pattern: Box::new(text("x%")),
            negated: true,
            case_insensitive: false
        }
    );
    assert_eq!(
        expr("a ILIKE 'x%'"),
        Expr::Like {
            expr: a(),
            pattern: Box::new(text("x%")),
            negated: false,
            case_insensitive: true
        }
    );
    assert_eq!(
        expr("a NOT IN (1, 2)"),
        Expr::InList {
            expr: a(),
            list: vec![int(1), int(2)],
            negated: true
        }
    );
    assert_eq!(
        expr("a BETWEEN 1 AND 2"),
        Expr::Between {
            expr: a(),
            low: Box::new(int(1)),
            high: Box::new(int(2)),
            negated: false
        }
    );
    assert_eq!(code("SELECT a LIKE 'x' ESCAPE '!'"), "0A000");
    assert_eq!(code("SELECT a IS TRUE"), "0A000");
}

#[test]
fn casts() {
    let cast = |e: Expr, to: DataType| Expr::Cast {
        expr: Box::new(e),
        to,
    };
    assert_eq!(expr("CAST(a AS bigint)"), cast(col("a"), DataType::Int8));
    assert_eq!(expr("a::text"), cast(col("a"), DataType::Text));
    assert_eq!(
        expr("'1'::varchar(3)"),
        cast(text("1"), DataType::Varchar(Some(3)))
    );
    assert_eq!(
        expr("DATE '2024-01-01'"),
        cast(text("2024-01-01"), DataType::Date)
    );
    assert_eq!(
        expr("TIMESTAMP '2024-01-01 00:00:00'"),
        cast(text("2024-01-01 00:00:00"), DataType::Timestamp)
    );
    assert_eq!(
        expr("a::numeric(10,2)"),
        cast(col("a"), DataType::Numeric(Some((10, 2))))
    );
    assert_eq!(expr("a::decimal"), cast(col("a"), DataType::Numeric(None)));
    assert_eq!(code("SELECT INTERVAL '1 day'"), "0A000");
}

#[test]
fn functions() {
    assert_eq!(
        expr("COUNT(*)"),
        Expr::Function {
            name: "count".into(),
            args: vec![],
            star: true,
            distinct: false,
        }
    );
    assert_eq!(expr("Lower(a)"), func("lower", vec![col("a")]));
    assert_eq!(
        expr("coalesce(a, 1)"),
        func("coalesce", vec![col("a"), int(1)])
    );
    assert_eq!(expr("current_timestamp"), func("current_timestamp", vec![]));
    assert_eq!(expr("pg_catalog.upper(a)"), func("upper", vec![col("a")]));
    assert_eq!(
        expr("substring(a, 1, 2)"),
        func("substring", vec![col("a"), int(1), int(2)])
    );
    assert_eq!(
        expr("substring(a FROM 2)"),
        func("substring", vec![col("a"), int(2)])
    );
    assert_eq!(expr("ceil(a)"), func("ceil", vec![col("a")]));
    assert_eq!(code("SELECT count(*) FILTER (WHERE a > 1) FROM t"), "0A000");
    assert_eq!(code("SELECT row_number() OVER () FROM t"), "0A000");
}

#[test]
fn case_expressions() {
    assert_eq!(
        expr("CASE WHEN a THEN 1 ELSE 2 END"),
        Expr::Case {
            operand: None,
            branches: vec![(col("a"), int(1))],
            otherwise: Some(Box::new(int(2))),
        }
    );
    assert_eq!(
        expr("CASE a WHEN 1 THEN 'x' WHEN 2 THEN 'y' END"),
        Expr::Case {
            operand: Some(Box::new(col("a"))),
            branches: vec![(int(1), text("x")), (int(2), text("y"))],
            otherwise: None,
        }
    );
}

// --- error classes ----------------------------------------------------

#[test]
fn syntax_errors() {
    for sql in [
        "SELEC 1",
        "SELECT FROM WHERE",
        "CREATE TABLE (",
        "INSERT INTO t VALUES (1",
    ] {
        let e = err(sql);
        assert_eq!(e.code, "42601", "{sql}");
        assert!(
            e.message.starts_with("syntax error: "),
            "{sql}: {}",
            e.message
        );
    }
}

#[test]
fn unsupported_constructs() {
    let cases = [
        (
            "SELECT * FROM t FOR UPDATE",
            "FOR UPDATE/SHARE is not supported yet",
        ),
        (
            "ALTER TABLE t ADD COLUMN b int, ADD COLUMN c int",
            "several actions in one ALTER TABLE (use one per statement) is not supported yet",
        ),
        (
            "TRUNCATE t CASCADE",
            "this form of TRUNCATE is not supported yet",
        ),
        (
            "SELECT * FROM other.t",
            "a schema other than public is not supported yet",
        ),
    ];
    for (sql, message) in cases {
        let e = err(sql);
        assert_eq!((e.code, e.message.as_str()), ("0A000", message), "{sql}");
    }
}

#[test]
fn deep_nesting_is_refused_not_fatal() {
    let ok = format!("SELECT {}", vec!["1"; MAX_EXPR_DEPTH / 2].join(" + "));
    assert!(parse(&ok).is_ok());
    let deep = format!("SELECT {}", vec!["a"; 3 * MAX_EXPR_DEPTH].join(" OR "));
    assert_eq!(code(&deep), "54001");
    let parens = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(code(&parens), "54001");
}

/// A small deterministic generator, so the test needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_and_garbled_input_never_panics() {
    const SEEDS: &[&str] = &[
        "CREATE TABLE t (id serial PRIMARY KEY, a text NOT NULL DEFAULT 'x', UNIQUE (a))",
        "INSERT INTO t (a, b) VALUES (1, 'two'), ($1, -3.5e2) RETURNING *",
        "SELECT a, count(*) AS n FROM public.t AS x WHERE x.a IN (1, 2) ORDER BY 1 LIMIT 5",
        "UPDATE t SET a = CASE WHEN b THEN 1 ELSE 2 END WHERE c BETWEEN 1 AND 9",
        "DELETE FROM t WHERE a LIKE 'x%' OR b::int > 3 RETURNING a",
        "CREATE UNIQUE INDEX i ON t USING hash (a); BEGIN; COMMIT",
    ];
    const TOKENS: &[&str] = &[
        "SELECT",
        "FROM",
        "WHERE",
        "(",
        ")",
        ",",
        ";",
        "'",
        "\"",
        "$1",
        "$",
        "::",
        "*",
        "-",
        "1e999",
        "9223372036854775808",
        "NULL",
        "CASE",
        "END",
        "JOIN",
        "GROUP BY",
        "t",
        "a",
        "E'\\x'",
        "é",
        "--",
        "/*",
        "INSERT",
        "VALUES",
        "CREATE",
        "TABLE",
        "DEFAULT",
        "0x",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let sql = if round % 2 == 0 {
            let mut chars: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(chars.len().max(1));
                match rng.below(3) {
                    0 if !chars.is_empty() => {
                        chars.remove(at.min(chars.len() - 1));
                    }
                    1 => chars.insert(
                        at.min(chars.len()),
                        "()'\";$-:,*é".chars().nth(rng.below(11)).unwrap_or('x'),
                    ),
                    _ => chars.truncate(at),
                }
            }
            chars.into_iter().collect::<String>()
        } else {
            (0..rng.below(12))
                .map(|_| TOKENS[rng.below(TOKENS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = parse(&sql);
    }
}

/// The attack of issue 15: one 200 KB statement of 100,000 terms. It must
/// come back as an error (54001) on a thread with a small stack, not
/// overflow it while the refused syntax tree is dropped.
#[test]
fn a_hundred_thousand_terms_are_refused_on_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            for op in [" + ", " OR ", " || ", " AND ", " = "] {
                let deep = format!("SELECT {}", vec!["1"; 100_000].join(op));
                let err = parse(&deep).unwrap_err();
                assert_eq!(err.code, "54001", "{op}: {}", err.message);
                assert!(
                    err.message.contains("max_expr_depth") || err.message.contains("nested"),
                    "{}",
                    err.message
                );
            }
            let casts = format!("SELECT 1{}", "::int".repeat(50_000));
            assert_eq!(parse(&casts).unwrap_err().code, "54001");
            let nulls = format!("SELECT 1{}", " IS NULL".repeat(50_000));
            assert_eq!(parse(&nulls).unwrap_err().code, "54001");
        })
        .unwrap();
    handle.join().expect("no stack overflow");
}

/// Long statements that are wide, not deep, pass the token-level bound.
#[test]
fn wide_statements_pass_the_depth_bound() {
    let rows: Vec<String> = (0..5_000).map(|i| format!("({i}, 'x{i}', -{i})")).collect();
    parse(&format!("INSERT INTO t VALUES {}", rows.join(", "))).unwrap();
    let list: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    parse(&format!("SELECT * FROM t WHERE a IN ({})", list.join(", "))).unwrap();
    let arms: String = (0..2_000)
        .map(|i| format!(" WHEN a = {i} THEN 'v{i}'"))
        .collect();
    parse(&format!("SELECT CASE{arms} ELSE 'other' END FROM t")).unwrap();
    let items: Vec<String> = (0..3_000).map(|i| format!("a + {i} AS c{i}")).collect();
    parse(&format!("SELECT {} FROM t", items.join(", "))).unwrap();
    // Depth inside brackets adds up: 40 nested levels of 100-term chains.
    let mut nested = "1".to_string();
    for _ in 0..40 {
        nested = format!("({nested}{})", " + 1".repeat(100));
    }
    assert_eq!(code(&format!("SELECT {nested}")), "54001");
}
