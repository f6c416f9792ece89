//! `tiers`: the one binary of the three-tier system.
//!
//! It runs the DB tier (`tiers db`), the web tier (`tiers web`), the AP
//! tier (`tiers ap`), or all three at once (`tiers up`), and carries the
//! storage engine's offline tools. The binary only wires crates
//! together and reports errors with context; the work lives in the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that does not panic when standard output is gone (a closed
/// pipe must not take a running server down).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod ap;
mod cluster;
mod config;
mod up;
mod web;
use tiers_storage::verify::{self, Report};

#[derive(Parser)]
#[command(name = "tiers", version, about = "The non-stop three-tier web system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the DB tier: a SQL database server speaking the PostgreSQL wire
    /// protocol. Clients are trusted (bind loopback unless you know better).
    Db {
        /// The configuration file (default: ./tiers.toml if it exists);
        /// flags override its `[db]` section.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:5433].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Admin endpoint: /health, /metrics, /status [default: 127.0.0.1:6433].
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Data directory, created and initialised if empty or missing
        /// [default: ./tiers-data/db].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Buffer pool size in MiB [default: 128].
        #[arg(long)]
        cache_mib: Option<usize>,
        /// Client connections served at once; more get SQLSTATE 53300 [default: 100].
        #[arg(long)]
        max_connections: Option<usize>,
        /// Print the effective configuration and exit.
        #[arg(long)]
        print_config: bool,
        #[command(flatten)]
        cluster: cluster::ClusterFlags,
    },
    /// Run the web tier: static files from disk and a load-balancing
    /// reverse proxy to AP servers, with health checks and failover.
    Web(web::WebFlags),
    /// Run all three tiers on this machine: the DB, AP and web tiers, each
    /// on its own loopback port, serving the bundled board app (or --app).
    Up(up::UpFlags),
    /// Run the AP tier: an application folder's routes served over HTTP,
    /// querying the DB tier through a connection pool.
    Ap(ap::ApFlags),
    /// Check every page and journal record of a data directory and report
    /// corruption precisely. Exits 1 if anything is wrong.
    Verify {
        /// The data directory (as given to `tiers db --data-dir`).
        dir: PathBuf,
    },
    /// Show what a data directory holds: pages by kind, free pages, trees
    /// and their heights, the journal range and the last checkpoint.
    Inspect {
        /// The data directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every tier holds a descriptor per client: take all the system allows.
    tiers_telemetry::net::raise_fd_limit();
    match cli.command {
        Command::Db {
            config,
            listen,
            admin,
            data_dir,
            cache_mib,
            max_connections,
            print_config,
            cluster,
        } => {
            let mut file = match config::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("tiers db: {e}");
                    return ExitCode::from(2);
                }
            };
            let db = &mut file.db;
            db.listen = listen.unwrap_or(db.listen);
            db.admin = admin.unwrap_or(db.admin);
            db.data_dir = data_dir.unwrap_or(db.data_dir.clone());
            db.cache_mib = cache_mib.unwrap_or(db.cache_mib);
            db.max_connections = max_connections.unwrap_or(db.max_connections);
            if print_config {
                print!("{}", config::render(&file));
                return ExitCode::SUCCESS;
            }
            run_db(file.db, cluster)
        }
        Command::Web(flags) => web::run(flags),
        Command::Ap(flags) => ap::run(flags),
        Command::Up(flags) => up::run(flags),
        Command::Verify { dir } => match verify::verify(&dir) {
            Ok(report) => {
                print_report(&report);
                if report.ok() {
                    println!("verify: OK, no problems found in {}", dir.display());
                    ExitCode::SUCCESS
                } else {
                    println!(
                        "verify: {} problem(s) found in {}:",
                        report.problems.len(),
                        dir.display()
                    );
                    for p in &report.problems {
                        println!("  - {p}");
                    }
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("tiers verify: {}: {e}", dir.display());
                ExitCode::from(2)
            }
        },
        Command::Inspect { dir } => match verify::verify(&dir) {
            Ok(report) => {
                print_report(&report);
                if !report.ok() {
                    println!(
                        "problems: {} (run `tiers verify` for details)",
                        report.problems.len()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tiers inspect: {}: {e}", dir.display());
                ExitCode::from(2)
            }
        },
    }
}

fn run_db(db: config::DbConfig, cluster_flags: cluster::ClusterFlags) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tiers db: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let data_dir = db.data_dir.clone();
        let config = db_server_config(&db);
        if db.users.is_empty() && !db.listen.ip().is_loopback() {
            eprintln!(
                "tiers db: warning: no [db.users] configured, so every client on {} is trusted; \
                 configure users (SCRAM-SHA-256) or listen on loopback",
                db.listen
            );
        }
        let clustered = cluster_flags.node_id.is_some() || cluster_flags.peers.is_some();
        let member = if clustered {
            match cluster::start(&cluster_flags, &data_dir, config.storage.clone()).await {
                Ok(m) => Some(m),
                Err(e) => {
                    eprintln!("tiers db: {e}");
                    return ExitCode::from(2);
                }
            }
        } else {
            None
        };
        let bound = match &member {
            Some((engine, _)) => tiers_db::Server::bind_engine(config, engine.clone()).await,
            None => tiers_db::Server::bind(config).await,
        };
        let server = match bound {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tiers db: {e}");
                return ExitCode::from(2);
            }
        };
        if let Some((_, node)) = &member {
            tokio::spawn(cluster::keep_catalog(server.database().clone()));
            let s = node.status();
            println!(
                "tiers db: cluster member {} of {} (raft on {})",
                s.id,
                s.members.len(),
                cluster_flags.peers.as_deref().unwrap_or("")
            );
        }
        let engine = server.engine().clone();
        let admin_listener = match tokio::net::TcpListener::bind(db.admin).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tiers db: admin endpoint on {}: {e}", db.admin);
                return ExitCode::from(2);
            }
        };
        let admin_addr = admin_listener.local_addr().map_or(db.admin, |a| a);
        tokio::spawn(tiers_telemetry::serve_admin(
            admin_listener,
            server.admin(),
            std::future::pending(),
        ));
        println!(
            "tiers db listening on {} (data in {}); connect with: psql -h {} -p {}; admin on http://{admin_addr}/status",
            server.local_addr(),
            data_dir.display(),
            server.local_addr().ip(),
            server.local_addr().port()
        );
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        };
        if let Err(e) = server.serve(shutdown).await {
            eprintln!("tiers db: {e}");
            return ExitCode::from(1);
        }
        if let Some((_, node)) = &member {
            node.shutdown().await;
        }
        // Stop accepting, then take a final checkpoint so the next start has
        // nothing to replay.
        match engine.checkpoint() {
            Ok(c) => println!("tiers db: stopped after a final checkpoint at lsn {}", c.lsn),
            Err(e) => eprintln!("tiers db: final checkpoint failed: {e}"),
        }
        ExitCode::SUCCESS
    })
}

/// The DB server's settings from `[db]`.
fn db_server_config(db: &config::DbConfig) -> tiers_db::ServerConfig {
    let mut server = tiers_db::ServerConfig {
        storage: tiers_storage::Config {
            cache_bytes: db.cache_mib << 20,
            ..tiers_storage::Config::default()
        },
        max_connections: db.max_connections,
        max_statement_bytes: db.max_statement_bytes,
        users: db.users.clone().into_iter().collect(),
        tls: db.tls_cert.clone().zip(db.tls_key.clone()),
        ..tiers_db::ServerConfig::new(db.listen, db.data_dir.clone())
    };
    if db.threads > 0 {
        server.connection_loops = db.threads;
    }
    server
}

fn print_report(r: &Report) {
    let m = &r.meta;
    println!("page size:        {} bytes", m.page_size);
    println!(
        "data file:        {} pages ({} bytes)",
        r.file_pages,
        r.file_pages * m.page_size as u64
    );
    println!(
        "last checkpoint:  id {} at lsn {} ({} pages in use by it)",
        m.checkpoint_id, m.lsn, m.high_water
    );
    println!("pages by kind:");
    for (kind, n) in &r.pages_by_kind {
        println!("  {kind:<16}{n}");
    }
    println!("  {:<16}{}", "free", r.free_pages);
    if r.leaked_pages > 0 {
        println!("  {:<16}{}", "leaked", r.leaked_pages);
    }
    println!("trees:");
    if r.trees.is_empty() {
        println!("  (none)");
    }
    for t in &r.trees {
        let shape = match t.kind {
            tiers_storage::TreeKind::BTree => format!("height {}", t.height),
            tiers_storage::TreeKind::Hash => format!("global depth {}", t.height),
        };
        println!(
            "  {:<24} {:<5} {:>10} entries {:>8} pages  {shape}",
            t.name,
            t.kind.name(),
            t.entries,
            t.pages
        );
    }
    let j = &r.journal;
    match (j.first_lsn, j.last_lsn) {
        (Some(first), Some(last)) => println!(
            "journal:          {} segment(s), lsn {first}..={last} ({} records, {} after the checkpoint)",
            j.segments.len(),
            j.records,
            r.records_after_checkpoint
        ),
        _ => println!(
            "journal:          {} segment(s), no records since the checkpoint",
            j.segments.len()
        ),
    }
    if j.torn_tail_bytes > 0 {
        println!(
            "journal tail:     {} torn bytes (an interrupted write; cut at the next open)",
            j.torn_tail_bytes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_threads_set_the_connection_loops() {
        let mut db = config::DbConfig::default();
        let default = db_server_config(&db).connection_loops;
        assert!(default >= 1, "one connection thread per CPU by default");
        db.threads = 3;
        assert_eq!(db_server_config(&db).connection_loops, 3);
    }
}
