//! A live `tiers db` on loopback for the client tests, and the client
//! helpers they share (included with `#[path]`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use tiers_db::{Server, ServerConfig};
use tokio_postgres::NoTls;

/// A server on a fresh data directory; it stops when the sender is dropped.
pub async fn start() -> (
    tempfile::TempDir,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    start_with(|_| {}).await
}

/// A server on loopback (any free port) over the data directory `dir`,
/// bound but not yet serving, with the configuration adjusted first.
pub async fn bind(dir: &std::path::Path, config: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut c = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    config(&mut c);
    Server::bind(c).await.unwrap()
}

/// A client of the server at `addr` (trust authentication).
pub async fn connect(addr: SocketAddr) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=app dbname=tiers", addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Like [`start`], with the configuration adjusted first.
pub async fn start_with(
    config: impl FnOnce(&mut ServerConfig),
) -> (
    tempfile::TempDir,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = bind(dir.path(), config).await;
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    (dir, addr, stop)
}

/// A server on a fresh data directory, served until the test ends, with its
/// admin report (`/status`, `/metrics`).
pub async fn start_serving() -> (
    tempfile::TempDir,
    SocketAddr,
    Arc<dyn tiers_telemetry::Admin>,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = bind(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let admin = server.admin();
    tokio::spawn(server.serve(std::future::pending()));
    (dir, addr, admin)
}

/// The rows of a simple query, as text.
pub async fn simple_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}
