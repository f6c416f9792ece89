//! Tests of the translator: expected trees for each statement and expression
//! kind, identifier rules, every error class, and garbled input.

use super::*;

mod expressions;

fn one(sql: &str) -> Statement {
    match parse(sql) {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        other => panic!("{sql}: expected one statement, got {other:?}"),
    }
}

fn err(sql: &str) -> SqlError {
    match parse(sql) {
        Err(e) => e,
        Ok(v) => panic!("{sql}: expected an error, got {v:?}"),
    }
}

fn code(sql: &str) -> &'static str {
    err(sql).code
}

fn query_of(sql: &str) -> Query {
    match one(sql) {
        Statement::Select(q) => *q,
        other => panic!("{sql}: not a query: {other:?}"),
    }
}

fn select_of(sql: &str) -> Select {
    match query_of(sql).body {
        SetExpr::Select(s) => *s,
        other => panic!("{sql}: not a SELECT: {other:?}"),
    }
}

fn table(name: &str) -> TableRef {
    TableRef::Table {
        name: name.into(),
        alias: None,
    }
}

/// The single expression of `SELECT <e>`.
fn expr(e: &str) -> Expr {
    let mut s = select_of(&format!("SELECT {e}"));
    match s.items.pop() {
        Some(SelectItem::Expr { expr, alias: None }) if s.items.is_empty() => expr,
        other => panic!("{e}: {other:?}"),
    }
}

fn col(name: &str) -> Expr {
    Expr::Column {
        table: None,
        name: name.into(),
    }
}

fn qcol(table: &str, name: &str) -> Expr {
    Expr::Column {
        table: Some(table.into()),
        name: name.into(),
    }
}

fn int(i: i64) -> Expr {
    Expr::Literal(Value::Int(i))
}

fn text(s: &str) -> Expr {
    Expr::Literal(Value::Text(s.into()))
}

fn bin(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    Expr::Binary {
        op,
        left: Box::new(left),
        right: Box::new(right),
    }
}

fn func(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function {
        name: name.into(),
        args,
        star: false,
        distinct: false,
    }
}

fn item(expr: Expr) -> SelectItem {
    SelectItem::Expr { expr, alias: None }
}

fn spec(name: &str, data_type: DataType) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        data_type,
        not_null: false,
        primary_key: false,
        unique: false,
        default: None,
        serial: false,
        default_sql: None,
        checks: Vec::new(),
    }
}

// --- statements -------------------------------------------------------

#[test]
fn empty_input_and_multiple_statements() {
    assert_eq!(parse("").unwrap(), vec![]);
    assert_eq!(parse(" ;; -- nothing\n").unwrap(), vec![]);
    let all = parse("BEGIN; SELECT 1; COMMIT;").unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0],
        Statement::Begin {
            isolation: None,
            read_only: None
        }
    );
    assert_eq!(all[2], Statement::Commit);
}

#[test]
fn create_table_columns_and_options() {
    let stmt = one(
        "CREATE TABLE IF NOT EXISTS Users (id SERIAL PRIMARY KEY, \"Name\" text NOT NULL, \
         email varchar(100) UNIQUE NULL, n int DEFAULT 7)",
    );
    let id = ColumnSpec {
        not_null: true,
        primary_key: true,
        serial: true,
        ..spec("id", DataType::Int4)
    };
    let name = ColumnSpec {
        not_null: true,
        ..spec("Name", DataType::Text)
    };
    let email = ColumnSpec {
        unique: true,
        ..spec("email", DataType::Varchar(Some(100)))
    };
    let n = ColumnSpec {
        default: Some(int(7)),
        default_sql: Some("7".into()),
        ..spec("n", DataType::Int4)
    };
    assert_eq!(
        stmt,
        Statement::CreateTable {
            name: "users".into(),
            if_not_exists: true,
            columns: vec![id, name, email, n],
            primary_key: vec![],
            unique: vec![],
            checks: vec![],
        }
    );
}

#[test]
fn create_table_constraints() {
    let stmt = one("CREATE TABLE t (a int, b text, PRIMARY KEY (a, B), UNIQUE (b), UNIQUE (a, b))");
    let Statement::CreateTable {
        columns,
        primary_key,
        unique,
        ..
    } = stmt
    else {
        panic!("not CREATE TABLE");
    };
    assert_eq!(primary_key, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(
        unique,
        vec![
            vec!["b".to_string()],
            vec!["a".to_string(), "b".to_string()]
        ]
    );
    assert!(columns.iter().all(|c| c.not_null && !c.primary_key));
}

#[test]
fn create_table_types() {
    let cases = [
        ("boolean", DataType::Bool),
        ("bool", DataType::Bool),
        ("smallint", DataType::Int2),
        ("int2", DataType::Int2),
        ("integer", DataType::Int4),
        ("int", DataType::Int4),
        ("int4", DataType::Int4),
        ("bigint", DataType::Int8),
        ("int8", DataType::Int8),
        ("real", DataType::Float4),
        ("float4", DataType::Float4),
        ("double precision", DataType::Float8),
        ("float8", DataType::Float8),
        ("float", DataType::Float8),
        ("float(10)", DataType::Float4),
        ("text", DataType::Text),
        ("varchar(5)", DataType::Varchar(Some(5))),
        ("character varying(5)", DataType::Varchar(Some(5))),
        ("varchar", DataType::Varchar(None)),
        ("char(3)", DataType::Char(3)),
        ("character(3)", DataType::Char(3)),
        ("char", DataType::Char(1)),
        ("bytea", DataType::Bytea),
        ("date", DataType::Date),
        ("timestamp", DataType::Timestamp),
        ("timestamp without time zone", DataType::Timestamp),
        ("timestamptz", DataType::TimestampTz),
        ("timestamp with time zone", DataType::TimestampTz),
    ];
    for (name, want) in cases {
        let Statement::CreateTable { columns, .. } = one(&format!("CREATE TABLE t (c {name})"))
        else {
            panic!("{name}");
        };
        assert_eq!(columns[0].data_type, want, "{name}");
        assert!(!columns[0].serial, "{name}");
    }
}

#[test]
fn serial_and_identity() {
    let cases = [
        ("serial", DataType::Int4),
        ("bigserial", DataType::Int8),
        ("smallserial", DataType::Int2),
        ("int GENERATED ALWAYS AS IDENTITY", DataType::Int4),
        ("bigint GENERATED BY DEFAULT AS IDENTITY", DataType::Int8),
    ];
    for (name, want) in cases {
        let Statement::CreateTable { columns, .. } = one(&format!("CREATE TABLE t (c {name})"))
        else {
            panic!("{name}");
        };
        assert_eq!(
            (columns[0].data_type, columns[0].serial),
            (want, true),
            "{name}"
        );
    }
    assert_eq!(
        code("CREATE TABLE t (c text GENERATED ALWAYS AS IDENTITY)"),
        "42804"
    );
    assert_eq!(code("CREATE TABLE t (c serial DEFAULT 1)"), "42601");
    assert_eq!(code("SELECT 1::serial"), "0A000");
}

#[test]
fn create_table_errors() {
    let e = err("CREATE TABLE t (a int PRIMARY KEY, b int PRIMARY KEY)");
    assert_eq!(e.code, "42601");
    assert_eq!(
        e.message,
        "multiple primary keys for table \"t\" are not allowed"
    );
    assert_eq!(
        code("CREATE TABLE t (a int PRIMARY KEY, PRIMARY KEY (a))"),
        "42601"
    );
    assert_eq!(code("CREATE TABLE t (a int, PRIMARY KEY (b))"), "42703");
    assert_eq!(code("CREATE TABLE t (a int NULL NOT NULL)"), "42601");
    assert_eq!(code("CREATE TABLE t (a int DEFAULT 1 DEFAULT 2)"), "42601");
    assert_eq!(code("CREATE TABLE t (a varchar(0))"), "42601");
    // numeric beyond 28 digits, or with a scale outside 0..=precision.
    let numeric = err("CREATE TABLE t (a numeric(40, 2))");
    assert_eq!(numeric.code, "0A000");
    assert!(numeric.message.contains("28"), "{}", numeric.message);
    assert_eq!(code("CREATE TABLE t (a numeric(5, 6))"), "0A000");
    assert_eq!(code("CREATE TABLE t (a numeric(0))"), "42601");
    for sql in [
        "CREATE TABLE t (a int REFERENCES u (id))",
        "CREATE TABLE t (a int, FOREIGN KEY (a) REFERENCES u (id))",
        "CREATE TEMPORARY TABLE t (a int)",
        "CREATE TABLE t AS SELECT 1",
        "CREATE TABLE t (a int[])",
        "CREATE TABLE t (a json)",
        "CREATE TABLE t (a timestamp(3))",
        "CREATE TABLE other.t (a int)",
        "CREATE TABLE t (a int) WITH (fillfactor = 70)",
    ] {
        assert_eq!(code(sql), "0A000", "{sql}");
    }
}

#[test]
fn drop_table() {
    assert_eq!(
        one("DROP TABLE IF EXISTS a, public.B"),
        Statement::DropTable {
            names: vec!["a".into(), "b".into()],
            if_exists: true
        }
    );
    assert_eq!(
        one("drop table t"),
        Statement::DropTable {
            names: vec!["t".into()],
            if_exists: false
        }
    );
    assert_eq!(code("DROP TABLE t CASCADE"), "0A000");
    assert_eq!(err("DROP VIEW v").message, "DROP VIEW is not supported yet");
}

#[test]
fn create_index() {
    assert_eq!(
        one("CREATE UNIQUE INDEX IF NOT EXISTS Idx ON T USING hash (A)"),
        Statement::CreateIndex {
            name: Some("idx".into()),
            table: "t".into(),
            columns: vec!["a".into()],
            unique: true,
            kind: IndexKind::Hash,
            if_not_exists: true,
        }
    );
    assert_eq!(
        one("CREATE INDEX ON t (a ASC, b)"),
        Statement::CreateIndex {
            name: None,
            table: "t".into(),
            columns: vec!["a".into(), "b".into()],
            unique: false,
            kind: IndexKind::BTree,
            if_not_exists: false,
        }
    );
    let Statement::CreateIndex { kind, .. } = one("CREATE INDEX i ON t USING btree (a)") else {
        panic!("not CREATE INDEX");
    };
    assert_eq!(kind, IndexKind::BTree);
    for sql in [
        "CREATE INDEX i ON t USING gin (a)",
        "CREATE INDEX i ON t (lower(a))",
        "CREATE INDEX i ON t (a DESC)",
        "CREATE INDEX i ON t (a) WHERE a > 0",
        "CREATE INDEX i ON t (a) INCLUDE (b)",
    ] {
        assert_eq!(code(sql), "0A000", "{sql}");
    }
}

#[test]
fn insert_values() {
    assert_eq!(
        one("INSERT INTO T (A, \"B\") VALUES (1, 'x'), ($1, NULL) RETURNING a, t.b AS bee"),
        Statement::Insert {
            table: "t".into(),
            columns: vec!["a".into(), "B".into()],
            rows: vec![
                vec![int(1), text("x")],
                vec![Expr::Parameter(1), Expr::Literal(Value::Null)]
            ],
            query: None,
            on_conflict: None,
            returning: vec![
                item(col("a")),
                SelectItem::Expr {
                    expr: col("b"),
                    alias: Some("bee".into())
                }
            ],
        }
    );
    assert_eq!(
        one("INSERT INTO t DEFAULT VALUES RETURNING *"),
        Statement::Insert {
            table: "t".into(),
            columns: vec![],
            rows: vec![vec![]],
            query: None,
            on_conflict: None,
            returning: vec![SelectItem::Wildcard],
        }
    );
}

#[test]
fn insert_errors() {
    assert!(matches!(
        one("INSERT INTO t SELECT 1"),
        Statement::Insert { query: Some(_), .. }
    ));
    assert!(matches!(
        one("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"),
        Statement::Insert {
            on_conflict: Some(OnConflict {
                action: ConflictAction::Nothing,
                ..
            }),
            ..
        }
    ));
    assert_eq!(
        code("INSERT INTO t VALUES (1) ON CONFLICT DO UPDATE SET a = 1"),
        "42601"
    );
    assert_eq!(code("INSERT INTO t VALUES (DEFAULT)"), "0A000");
    assert_eq!(code("INSERT INTO t VALUES (1), (1, 2)"), "42601");
}

#[test]
fn select_full() {
    let q = query_of(
        "SELECT *, a, b + 1 AS \"Next\" FROM public.t WHERE a > 0 \
         ORDER BY a DESC NULLS LAST, b, c ASC NULLS FIRST LIMIT 10 OFFSET 5",
    );
    assert_eq!(
        q.body,
        SetExpr::Select(Box::new(Select {
            items: vec![
                SelectItem::Wildcard,
                item(col("a")),
                SelectItem::Expr {
                    expr: bin(BinaryOp::Add, col("b"), int(1)),
                    alias: Some("Next".into())
                },
            ],
            from: vec![table("t")],
            filter: Some(bin(BinaryOp::Gt, col("a"), int(0))),
            ..Select::default()
        }))
    );
    assert_eq!(
        q.order_by,
        vec![
            OrderBy {
                expr: col("a"),
                desc: true,
                nulls_first: Some(false)
            },
            OrderBy {
                expr: col("b"),
                desc: false,
                nulls_first: None
            },
            OrderBy {
                expr: col("c"),
                desc: false,
                nulls_first: Some(true)
            },
        ]
    );
    assert_eq!((q.limit, q.offset), (Some(int(10)), Some(int(5))));
}

#[test]
fn select_without_from_and_limit_all() {
    let q = query_of("SELECT 1 LIMIT ALL");
    assert_eq!(q.limit, None);
    let s = select_of("SELECT 1 LIMIT ALL");
    assert!(s.from.is_empty());
    assert_eq!(s.items, vec![item(int(1))]);
    let q = query_of("SELECT a FROM t OFFSET $2");
    assert_eq!((q.limit, q.offset), (None, Some(Expr::Parameter(2))));
}

#[test]
fn qualifiers_and_aliases() {
    // Qualifiers are kept: the planner resolves them against FROM.
    let s = select_of("SELECT t.a, x.b FROM t WHERE T.c = 1");
    assert_eq!(s.items, vec![item(qcol("t", "a")), item(qcol("x", "b"))]);
    assert_eq!(s.filter, Some(bin(BinaryOp::Eq, qcol("t", "c"), int(1))));
    let s = select_of("SELECT x.a FROM t AS x (p, q)");
    assert_eq!(
        s.from,
        vec![TableRef::Table {
            name: "t".into(),
            alias: Some(Alias {
                name: "x".into(),
                columns: vec!["p".into(), "q".into()]
            })
        }]
    );
    let s = select_of("SELECT \"T\".a FROM \"T\"");
    assert_eq!(
        (s.from, s.items),
        (vec![table("T")], vec![item(qcol("T", "a"))])
    );
    assert_eq!(expr("t.a"), qcol("t", "a"));
}

#[test]
fn joins_subqueries_and_set_operations() {
    let s = select_of("SELECT * FROM a JOIN b ON a.id = b.a_id LEFT JOIN c USING (k), d");
    assert_eq!(s.from.len(), 2);
    let TableRef::Join {
        kind: JoinKind::Left,
        condition: JoinCondition::Using(cols),
        left,
        ..
    } = &s.from[0]
    else {
        panic!("{:?}", s.from[0]);
    };
    assert_eq!(cols, &vec!["k".to_string()]);
    assert!(matches!(
        &**left,
        TableRef::Join {
            kind: JoinKind::Inner,
            condition: JoinCondition::On(_),
            ..
        }
    ));
    let q = query_of("WITH w (x) AS (SELECT 1) SELECT x FROM w UNION ALL SELECT 2 ORDER BY 1");
    assert_eq!(q.with.len(), 1);
    assert_eq!(q.with[0].columns, vec!["x".to_string()]);
    assert!(matches!(
        q.body,
        SetExpr::SetOp {
            op: SetOp::Union,
            all: true,
            ..
        }
    ));
    assert!(matches!(
        expr("a IN (SELECT 1)"),
        Expr::InSubquery { negated: false, .. }
    ));
    assert!(matches!(
        expr("NOT EXISTS (SELECT 1)"),
        Expr::Not(_) | Expr::Exists { negated: true, .. }
    ));
    assert!(matches!(expr("(SELECT 1)"), Expr::Subquery(_)));
    let s = select_of("SELECT DISTINCT a, count(DISTINCT b) FROM t GROUP BY a HAVING count(*) > 1");
    assert!(s.distinct);
    assert_eq!(s.group_by, vec![col("a")]);
    assert!(s.having.is_some());
    assert_eq!(code("SELECT * FROM a JOIN b"), "42601");
    assert_eq!(
        code("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r"),
        "0A000"
    );
    assert_eq!(code("SELECT * FROM LATERAL (SELECT 1) x"), "0A000");
}

#[test]
fn identifier_case() {
    assert_eq!(expr("MyCol"), col("mycol"));
    assert_eq!(expr("\"MyCol\""), col("MyCol"));
    assert_eq!(expr("\"with space\""), col("with space"));
    assert_eq!(expr("ÄBC"), col("Äbc"));
    assert_eq!(expr("NOW()"), func("now", vec![]));
}

#[test]
fn update_and_delete() {
    assert_eq!(
        one("UPDATE t SET a = a + 1, B = 'x' WHERE t.id = $1 RETURNING id"),
        Statement::Update {
            table: "t".into(),
            alias: None,
            from: vec![],
            set: vec![
                ("a".into(), bin(BinaryOp::Add, col("a"), int(1))),
                ("b".into(), text("x"))
            ],
            filter: Some(bin(BinaryOp::Eq, col("id"), Expr::Parameter(1))),
            returning: vec![item(col("id"))],
        }
    );
    assert_eq!(
        one("DELETE FROM t AS x WHERE x.a IS NULL"),
        Statement::Delete {
            table: "t".into(),
            alias: Some("x".into()),
            using: vec![],
            filter: Some(Expr::IsNull {
                expr: Box::new(col("a")),
                negated: false
            }),
            returning: vec![],
        }
    );
    assert_eq!(
        one("DELETE FROM t"),
        Statement::Delete {
            table: "t".into(),
            alias: None,
            using: vec![],
            filter: None,
            returning: vec![]
        }
    );
    // With FROM or USING, qualifiers stay: names resolve against every table.
    let from = |name: &str| TableRef::Table {
        name: name.into(),
        alias: None,
    };
    assert_eq!(
        one("UPDATE t AS x SET a = u.b FROM u WHERE x.id = u.id"),
        Statement::Update {
            table: "t".into(),
            alias: Some("x".into()),
            from: vec![from("u")],
            set: vec![("a".into(), qcol("u", "b"))],
            filter: Some(bin(BinaryOp::Eq, qcol("x", "id"), qcol("u", "id"))),
            returning: vec![],
        }
    );
    assert_eq!(
        one("DELETE FROM t USING u WHERE t.id = u.id RETURNING t.id"),
        Statement::Delete {
            table: "t".into(),
            alias: None,
            using: vec![from("u")],
            filter: Some(bin(BinaryOp::Eq, qcol("t", "id"), qcol("u", "id"))),
            returning: vec![item(col("id"))],
        }
    );
    assert_eq!(code("UPDATE t SET a = 1, a = 2"), "42601");
    assert_eq!(code("UPDATE t SET a = DEFAULT"), "0A000");
}

#[test]
fn transactions() {
    for sql in ["BEGIN", "BEGIN TRANSACTION", "START TRANSACTION"] {
        assert_eq!(
            one(sql),
            Statement::Begin {
                isolation: None,
                read_only: None
            },
            "{sql}"
        );
    }
    assert_eq!(
        one("BEGIN ISOLATION LEVEL REPEATABLE READ"),
        Statement::Begin {
            isolation: Some(Isolation::RepeatableRead),
            read_only: None
        }
    );
    assert_eq!(
        one("BEGIN ISOLATION LEVEL SERIALIZABLE"),
        Statement::Begin {
            isolation: Some(Isolation::Serializable),
            read_only: None
        }
    );
    assert_eq!(
        one("START TRANSACTION READ ONLY"),
        Statement::Begin {
            isolation: None,
            read_only: Some(true)
        }
    );
    for sql in ["COMMIT", "END", "COMMIT WORK"] {
        assert_eq!(one(sql), Statement::Commit, "{sql}");
    }
    for sql in ["ROLLBACK", "ABORT"] {
        assert_eq!(one(sql), Statement::Rollback, "{sql}");
    }
    assert_eq!(one("SAVEPOINT s"), Statement::Savepoint("s".into()));
    assert_eq!(
        one("ROLLBACK TO SAVEPOINT s"),
        Statement::RollbackTo("s".into())
    );
    assert_eq!(one("RELEASE SAVEPOINT s"), Statement::Release("s".into()));
}
