//! The bundled board app (`apps/board`) served against a live `tiers db`:
//! pages, forms, comments, search, paging and the REST API.

#[path = "support/board.rs"]
mod board;

use tiers_ap::{ApConfig, ApServer};
use tiers_db::{Server, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_works_end_to_end_on_tiers_db() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bind(ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().to_path_buf(),
    ))
    .await
    .unwrap();
    let db = server.local_addr();
    tokio::spawn(server.serve(std::future::pending()));
    let app = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../apps/board");
    let ap = ApServer::start(ApConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        app,
        db: format!("postgres://board@127.0.0.1:{}/tiers", db.port()),
    })
    .await
    .unwrap();
    let addr = ap.local_addr();
    tokio::spawn(ap.serve(std::future::pending()));
    board::drive(addr).await;
}
