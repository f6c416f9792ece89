//! Tables on the storage engine: constraints, indexes, persistence.

use std::sync::Arc;
use tiers_sql::catalog::{self, ColumnDef, IndexDef, IndexKind, TableDef};
use tiers_sql::error::sqlstate;

use tiers_sql::sequence::Sequences;
use tiers_sql::{DataType, Value, table};
use tiers_storage::{Config, Engine, WriteTxn};

fn engine(dir: &std::path::Path) -> (Arc<Engine>, Arc<Sequences>) {
    let engine = Arc::new(Engine::open(dir, Config::default()).unwrap());
    let mut tx = engine.begin_write().unwrap();
    catalog::bootstrap(&mut tx).unwrap();
    tx.commit().unwrap();
    let seqs = Sequences::new(engine.clone());
    (engine, seqs)
}

fn col(name: &str, data_type: DataType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        data_type,
        not_null: false,
        default: None,
        serial: false,
        default_expr: None,
    }
}

fn posts(tx: &mut WriteTxn) -> TableDef {
    let mut id = col("id", DataType::Int8);
    id.serial = true;
    let mut title = col("title", DataType::Varchar(Some(20)));
    title.not_null = true;
    let mut created = col("created_at", DataType::Date);
    created.default = Some("2026-11-28".into());
    catalog::create_table(
        tx,
        TableDef {
            id: 0,
            name: "posts".into(),
            columns: vec![id, title, col("author", DataType::Text), created],
            primary_key: vec![0],
            indexes: vec![
                IndexDef {
                    id: 0,
                    name: "posts_author".into(),
                    columns: vec![2],
                    unique: false,
                    kind: IndexKind::Hash,
                },
                IndexDef {
                    id: 0,
                    name: "posts_title".into(),
                    columns: vec![1],
                    unique: true,
                    kind: IndexKind::BTree,
                },
            ],
            checks: vec![],
        },
    )
    .unwrap()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn rows_constraints_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, seqs) = engine(dir.path());
    let mut tx = engine.begin_write().unwrap();
    let def = posts(&mut tx);
    let first = table::insert(
        &mut tx,
        &def,
        vec![None, Some(text("hello")), Some(text("kim"))],
        &seqs,
    )
    .unwrap();
    assert_eq!(first[0], Value::Int(1));
    assert_eq!(
        first[3],
        Value::Date(tiers_sql::value::parse_date("2026-11-28").unwrap())
    );
    table::insert(
        &mut tx,
        &def,
        vec![None, Some(text("second")), Some(text("lee"))],
        &seqs,
    )
    .unwrap();
    table::insert(
        &mut tx,
        &def,
        vec![None, Some(text("third")), Some(text("kim"))],
        &seqs,
    )
    .unwrap();

    let err = table::insert(
        &mut tx,
        &def,
        vec![Some(Value::Int(1)), Some(text("again"))],
        &seqs,
    )
    .unwrap_err();
    assert_eq!(err.code, sqlstate::UNIQUE_VIOLATION, "{err}");
    let err = table::insert(&mut tx, &def, vec![None, Some(text("hello"))], &seqs).unwrap_err();
    assert_eq!(err.code, sqlstate::UNIQUE_VIOLATION, "{err}");
    assert!(err.message.contains("posts_title"), "{err}");
    let err = table::insert(&mut tx, &def, vec![None, Some(Value::Null)], &seqs).unwrap_err();
    assert_eq!(err.code, sqlstate::NOT_NULL_VIOLATION, "{err}");
    let err = table::insert(
        &mut tx,
        &def,
        vec![None, Some(text("a title far too long to fit"))],
        &seqs,
    )
    .unwrap_err();
    assert_eq!(err.code, sqlstate::STRING_DATA_RIGHT_TRUNCATION, "{err}");
    let err = table::insert(
        &mut tx,
        &def,
        vec![
            None,
            Some(text("x")),
            Some(text("y")),
            Some(text("not a date")),
        ],
        &seqs,
    )
    .unwrap_err();
    assert_eq!(err.code, sqlstate::INVALID_DATETIME_FORMAT, "{err}");

    let by_kim = table::lookup(&tx, &def, &def.indexes[0], &[text("kim")]).unwrap();
    assert_eq!(by_kim.len(), 2);
    let by_title = table::lookup(&tx, &def, &def.indexes[1], &[text("second")]).unwrap();
    assert_eq!(by_title[0].columns(&def)[2], text("lee"));

    // Update moves index entries; delete removes them.
    let row = by_title.into_iter().next().unwrap();
    let mut values = row.columns(&def).to_vec();
    values[2] = text("kim");
    table::update(&mut tx, &def, &row, values).unwrap();
    assert_eq!(
        table::lookup(&tx, &def, &def.indexes[0], &[text("kim")])
            .unwrap()
            .len(),
        3
    );
    assert!(
        table::lookup(&tx, &def, &def.indexes[0], &[text("lee")])
            .unwrap()
            .is_empty()
    );
    let doomed = table::lookup(&tx, &def, &def.indexes[1], &[text("hello")]).unwrap();
    table::delete(&mut tx, &def, &doomed[0]).unwrap();
    tx.commit().unwrap();

    let r = engine.begin_read();
    let rows: Vec<Vec<Value>> = table::scan(&r, &def).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], text("second"));
    assert_eq!(
        table::lookup(&r, &def, &def.indexes[0], &[text("kim")])
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn catalog_survives_reopen_and_drop_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (engine, seqs) = engine(dir.path());
        let mut tx = engine.begin_write().unwrap();
        let def = posts(&mut tx);
        for i in 0..100 {
            table::insert(
                &mut tx,
                &def,
                vec![None, Some(text(&format!("t{i}"))), Some(text("a"))],
                &seqs,
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let (engine, seqs) = engine(dir.path());
    let r = engine.begin_read();
    let def = catalog::require_table(&r, "posts").unwrap();
    assert_eq!(def.indexes.len(), 2);
    assert_eq!(table::scan(&r, &def).unwrap().count(), 100);
    let err = catalog::require_table(&r, "nope").unwrap_err();
    assert_eq!(err.code, sqlstate::UNDEFINED_TABLE);
    drop(r);
    let mut tx = engine.begin_write().unwrap();
    // The sequence continues after a restart.
    let row = table::insert(
        &mut tx,
        &def,
        vec![None, Some(text("after")), Some(text("b"))],
        &seqs,
    )
    .unwrap();
    assert_eq!(row[0], Value::Int(101));
    let err = catalog::create_table(&mut tx, def.clone()).unwrap_err();
    assert_eq!(err.code, sqlstate::DUPLICATE_TABLE);
    catalog::drop_table(&mut tx, "posts").unwrap();
    tx.commit().unwrap();
    let r = engine.begin_read();
    assert!(catalog::table(&r, "posts").unwrap().is_none());
    assert!(catalog::tables(&r).unwrap().is_empty());
}

#[test]
fn tables_without_a_primary_key_and_indexes_built_later() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, seqs) = engine(dir.path());
    let mut tx = engine.begin_write().unwrap();
    let def = catalog::create_table(
        &mut tx,
        TableDef {
            id: 0,
            name: "log".into(),
            columns: vec![col("level", DataType::Int2), col("msg", DataType::Text)],
            primary_key: vec![],
            indexes: vec![],
            checks: vec![],
        },
    )
    .unwrap();
    for i in 0..10 {
        table::insert(
            &mut tx,
            &def,
            vec![Some(Value::Int(i % 3)), Some(text("same"))],
            &seqs,
        )
        .unwrap();
    }
    let err = table::insert(&mut tx, &def, vec![Some(Value::Int(40000))], &seqs).unwrap_err();
    assert_eq!(err.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "{err}");
    let def = catalog::create_index(
        &mut tx,
        "log",
        IndexDef {
            id: 0,
            name: "log_level".into(),
            columns: vec![0],
            unique: false,
            kind: IndexKind::BTree,
        },
    )
    .unwrap();
    let zeros = table::lookup(&tx, &def, &def.indexes[0], &[Value::Int(0)]).unwrap();
    assert_eq!(zeros.len(), 4);
    table::delete(&mut tx, &def, &zeros[0]).unwrap();
    assert_eq!(
        table::lookup(&tx, &def, &def.indexes[0], &[Value::Int(0)])
            .unwrap()
            .len(),
        3
    );
    // A unique index over duplicated data is refused.
    let err = catalog::create_index(
        &mut tx,
        "log",
        IndexDef {
            id: 0,
            name: "log_msg".into(),
            columns: vec![1],
            unique: true,
            kind: IndexKind::BTree,
        },
    )
    .unwrap_err();
    assert_eq!(err.code, sqlstate::UNIQUE_VIOLATION, "{err}");
    tx.commit().unwrap();
}
