//! The SQL test suite: every `tests/sql/*.slt` file (sqllogictest format)
//! runs against a live `tiers db` over the wire, once through the simple
//! query protocol and once through the extended protocol (Parse/Bind/
//! Execute with binary results), each on a fresh database.
//!
//! Errors are matched by SQLSTATE (`statement error (23505)`) or by
//! message text.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tiers_sql::value::Value;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Simple,
    Extended,
}

struct Db {
    client: tokio_postgres::Client,
    protocol: Protocol,
}

/// A driver error with its SQLSTATE in the text, for message matching.
#[derive(Debug)]
struct DbError {
    code: Option<String>,
    text: String,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> DbError {
        match e.as_db_error() {
            Some(db) => DbError {
                code: Some(db.code().code().to_string()),
                text: format!("{} ({})", db.message(), db.code().code()),
            },
            None => DbError {
                code: None,
                text: e.to_string(),
            },
        }
    }
}

/// Any column value as raw bytes, decoded by its type afterwards.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

impl Db {
    async fn connect(addr: SocketAddr, protocol: Protocol) -> Result<Db, DbError> {
        let conn = format!("host=127.0.0.1 port={} user=slt dbname=tiers", addr.port());
        let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
        tokio::spawn(connection);
        Ok(Db { client, protocol })
    }

    async fn simple(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let mut rows = Vec::new();
        let mut width = None;
        let mut count = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::RowDescription(columns) => width = Some(columns.len()),
                SimpleQueryMessage::Row(row) => {
                    width = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map_or("NULL".to_string(), text_cell))
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match width {
            Some(w) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; w],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn extended(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let stmt = self.client.prepare(sql).await?;
        if stmt.columns().is_empty() {
            return Ok(DBOutput::StatementComplete(
                self.client.execute(&stmt, &[]).await?,
            ));
        }
        let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
        let mut rows = Vec::new();
        for row in self.client.query(&stmt, &[]).await? {
            let mut cells = Vec::new();
            for (i, ty) in types.iter().enumerate() {
                let raw: Option<Raw> = row.try_get(i)?;
                cells.push(match raw {
                    None => "NULL".to_string(),
                    Some(Raw(bytes)) => {
                        let t = tiers_db::wire::from_pg_type(ty)
                            .unwrap_or(tiers_sql::types::DataType::Text);
                        let value =
                            tiers_db::wire::from_binary(&bytes, t).map_err(|e| DbError {
                                code: None,
                                text: format!("undecodable {ty} value: {}", e.message),
                            })?;
                        text_cell(&value_text(value))
                    }
                });
            }
            rows.push(cells);
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; types.len()],
            rows,
        })
    }
}

fn value_text(v: Value) -> String {
    v.to_text()
}

/// Empty strings print as `(empty)`, as sqllogictest files write them.
fn text_cell(s: &str) -> String {
    if s.is_empty() {
        "(empty)".to_string()
    } else {
        s.to_string()
    }
}

#[async_trait::async_trait]
impl AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        match self.protocol {
            Protocol::Simple => self.simple(sql).await,
            Protocol::Extended => self.extended(sql).await,
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        match self.protocol {
            Protocol::Simple => "tiers-simple",
            Protocol::Extended => "tiers-extended",
        }
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }

    fn error_sql_state(err: &DbError) -> Option<String> {
        err.code.clone()
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

async fn run_all(protocol: Protocol) {
    let mut failures = Vec::new();
    for file in slt_files() {
        let dir = tempfile::tempdir().unwrap();
        // The simple protocol's run keeps connections on this test's own
        // runtime; the extended one's on the server's connection threads.
        let server = server::bind(dir.path(), |c| {
            if protocol == Protocol::Simple {
                c.connection_loops = 0;
            }
        })
        .await;
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        let mut runner = Runner::new(move || Db::connect(addr, protocol));
        runner.with_column_validator(|_, _| true);
        runner.add_label(match protocol {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
        drop(runner);
        let _ = stop.send(());
        let _ = serving.await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_simple_protocol() {
    run_all(Protocol::Simple).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_extended_protocol() {
    run_all(Protocol::Extended).await;
}
