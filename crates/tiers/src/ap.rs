//! `tiers ap`: the AP tier as a process. Flags override the `[ap]` section
//! of the config file; SIGTERM or Ctrl-C stops it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config;

/// Flags of `tiers ap`.
#[derive(Args, Clone)]
pub struct ApFlags {
    /// The configuration file (default: ./tiers.toml if it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// HTTP address [default: 127.0.0.1:8081].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin endpoint: /health, /metrics, /status [default: 127.0.0.1:6081].
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The application folder (app.toml, schema/...).
    #[arg(long)]
    app: Option<PathBuf>,
    /// The database: postgres://user@host:port/db of `tiers db` or
    /// PostgreSQL [default: postgres://tiers@127.0.0.1:5433/tiers].
    #[arg(long)]
    db: Option<String>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

/// Runs `tiers ap`.
pub fn run(flags: ApFlags) -> ExitCode {
    let mut file = match config::load(flags.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tiers ap: {e}");
            return ExitCode::from(2);
        }
    };
    let ap = &mut file.ap;
    ap.listen = flags.listen.unwrap_or(ap.listen);
    ap.admin = flags.admin.unwrap_or(ap.admin);
    if let Some(a) = &flags.app {
        ap.app = Some(a.clone());
    }
    if let Some(d) = &flags.db {
        ap.db = d.clone();
    }
    if flags.print_config {
        print!("{}", config::render(&file));
        return ExitCode::SUCCESS;
    }
    let Some(app) = file.ap.app.clone() else {
        eprintln!("tiers ap: no application: give --app DIR (a folder with app.toml)");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tiers ap: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = tiers_ap::ApConfig {
        listen: file.ap.listen,
        app,
        db: file.ap.db.clone(),
    };
    runtime.block_on(async move {
        let server = match tiers_ap::ApServer::start(settings).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tiers ap: {e}");
                return ExitCode::from(2);
            }
        };
        let admin = match tokio::net::TcpListener::bind(file.ap.admin).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tiers ap: admin endpoint on {}: {e}", file.ap.admin);
                return ExitCode::from(2);
            }
        };
        let admin_addr = admin.local_addr().unwrap_or(file.ap.admin);
        tokio::spawn(tiers_telemetry::serve_admin(admin, server.admin(), std::future::pending()));
        say!(
            "tiers ap listening on http://{}/ ; admin on http://{admin_addr}/status",
            server.local_addr()
        );
        server
            .serve(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
                }
            })
            .await;
        say!("tiers ap: stopped");
        ExitCode::SUCCESS
    })
}
