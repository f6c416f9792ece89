//! The same board scenario with the AP tier pointed at PostgreSQL 15
//! instead of `tiers db`: the AP tier is a plain PostgreSQL client and
//! uses nothing only `tiers db` understands.
//!
//! It needs PostgreSQL 15's server binaries, so it is `#[ignore]`d in the
//! plain test run; `.ci/run` installs the package and runs it with
//! `--ignored`.

#[path = "support/board.rs"]
mod board;
#[path = "../../tiers-db/tests/support/postgres.rs"]
mod postgres;

use tiers_ap::{ApConfig, ApServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (run by .ci/run)"]
async fn the_board_works_end_to_end_on_postgresql() {
    let base = tempfile::tempdir().unwrap();
    let pg = postgres::Postgres::start(base.path());
    let app = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../apps/board");
    let ap = ApServer::start(ApConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        app,
        db: format!("postgres://test@127.0.0.1:{}/postgres", pg.port),
    })
    .await
    .unwrap();
    let addr = ap.local_addr();
    tokio::spawn(ap.serve(std::future::pending()));
    board::drive(addr).await;
}
