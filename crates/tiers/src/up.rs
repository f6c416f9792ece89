//! `tiers up`: the whole three-tier system on one machine, with no
//! configuration. The DB, AP and web tiers start in one process, but each
//! is a real network service on its own loopback port and they talk only
//! over the network, so the request path is the real one: browser → web
//! (static files from the app's `static/`, everything else to the AP pool)
//! → AP (routes, cache, pool) → DB (SQL, buffer pool, journal).
//!
//! On first run it creates `./tiers-data`, and when no `--app` is given and
//! `./apps/board` does not exist, it writes the bundled board app there
//! from the copy inside the binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config;

/// Flags of `tiers up`.
#[derive(Args, Clone)]
pub struct UpFlags {
    /// The configuration file (default: ./tiers.toml if it exists); every
    /// setting of every tier is optional.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The application folder [default: ./apps/board, or the bundled board
    /// app written to ./tiers-data/apps/board].
    #[arg(long)]
    app: Option<PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

/// The bundled board app, compiled into the binary.
const BOARD: &[(&str, &str)] = &[
    ("app.toml", include_str!("../../../apps/board/app.toml")),
    (
        "schema/001_board.sql",
        include_str!("../../../apps/board/schema/001_board.sql"),
    ),
    (
        "templates/base.html",
        include_str!("../../../apps/board/templates/base.html"),
    ),
    (
        "templates/index.html",
        include_str!("../../../apps/board/templates/index.html"),
    ),
    (
        "templates/post.html",
        include_str!("../../../apps/board/templates/post.html"),
    ),
    (
        "templates/search.html",
        include_str!("../../../apps/board/templates/search.html"),
    ),
    (
        "static/style.css",
        include_str!("../../../apps/board/static/style.css"),
    ),
    (
        "static/app.html",
        include_str!("../../../apps/board/static/app.html"),
    ),
    (
        "static/app.js",
        include_str!("../../../apps/board/static/app.js"),
    ),
];

/// Writes the bundled board app under `dir` (files already there are
/// kept, so local edits survive).
fn write_board(dir: &Path) -> std::io::Result<()> {
    for (name, text) in BOARD {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

fn effective(flags: &UpFlags) -> Result<config::Config, String> {
    let mut c = config::load(flags.config.as_deref())?;
    let app = match (&flags.app, &c.ap.app) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => a.clone(),
        (None, None) if Path::new("apps/board/app.toml").exists() => PathBuf::from("apps/board"),
        (None, None) => PathBuf::from("tiers-data/apps/board"),
    };
    c.ap.app = Some(app.clone());
    // The web tier in front of this AP tier, unless configured otherwise.
    if c.web.upstreams.is_empty() && c.web.pools.is_empty() {
        c.web.pools.insert(
            "default".into(),
            tiers_web::config::PoolConfig {
                servers: vec![tiers_web::config::ServerSpec::Url(format!(
                    "http://{}",
                    c.ap.listen
                ))],
                health_path: "/health".into(),
                ..Default::default()
            },
        );
    }
    if c.web.routes.is_empty() {
        c.web.routes = vec![
            tiers_web::config::RouteConfig {
                prefix: "/static/".into(),
                root: Some(app.join("static")),
                pool: None,
            },
            tiers_web::config::RouteConfig {
                prefix: "/".into(),
                root: None,
                pool: Some("default".into()),
            },
        ];
    }
    Ok(c)
}

/// Runs `tiers up`.
pub fn run(flags: UpFlags) -> ExitCode {
    let c = match effective(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tiers up: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.print_config {
        print!("{}", config::render(&c));
        return ExitCode::SUCCESS;
    }
    if c.db.users.is_empty() && !c.db.listen.ip().is_loopback() {
        eprintln!(
            "tiers up: [db] listen = {} reaches beyond this machine, but no [db.users] are \
             configured, so every client there would be trusted; add [db.users] \
             (SCRAM-SHA-256, and a password in [ap] db) or listen on 127.0.0.1",
            c.db.listen
        );
        return ExitCode::from(2);
    }
    let app = c.ap.app.clone().unwrap_or_default();
    if flags.app.is_none()
        && c.ap.app.as_deref() == Some(Path::new("tiers-data/apps/board"))
        && let Err(e) = write_board(&app)
    {
        eprintln!(
            "tiers up: writing the bundled app to {}: {e}",
            app.display()
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tiers up: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(up(c, app))
}

async fn admin(
    addr: std::net::SocketAddr,
    report: std::sync::Arc<dyn tiers_telemetry::Admin>,
) -> Result<std::net::SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("admin endpoint on {addr}: {e}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tokio::spawn(tiers_telemetry::serve_admin(
        listener,
        report,
        std::future::pending(),
    ));
    Ok(bound)
}

async fn up(c: config::Config, app: PathBuf) -> ExitCode {
    let fail = |e: String| {
        eprintln!("tiers up: {e}");
        ExitCode::from(2)
    };
    // DB tier.
    let db = match tiers_db::Server::bind(crate::db_server_config(&c.db)).await {
        Ok(s) => s,
        Err(e) => return fail(format!("DB tier: {e}")),
    };
    let db_addr = db.local_addr();
    let engine = db.engine().clone();
    let db_admin = match admin(c.db.admin, db.admin()).await {
        Ok(a) => a,
        Err(e) => return fail(format!("DB tier: {e}")),
    };
    let (stop_db, db_stopped) = tokio::sync::oneshot::channel::<()>();
    let db_task = tokio::spawn(db.serve(async {
        let _ = db_stopped.await;
    }));
    // AP tier, talking to the DB tier over the network.
    let ap = match tiers_ap::ApServer::start(tiers_ap::ApConfig {
        listen: c.ap.listen,
        app: app.clone(),
        // `[ap] db` if set (users and passwords, another DB), else this
        // process's own DB tier.
        db: if c.ap.db != config::ApConfig::default().db {
            c.ap.db.clone()
        } else {
            format!("postgres://tiers@{}:{}/tiers", db_addr.ip(), db_addr.port())
        },
    })
    .await
    {
        Ok(a) => a,
        Err(e) => return fail(format!("AP tier: {e}")),
    };
    let ap_addr = ap.local_addr();
    let ap_admin = match admin(c.ap.admin, ap.admin()).await {
        Ok(a) => a,
        Err(e) => return fail(format!("AP tier: {e}")),
    };
    let (stop_ap, ap_stopped) = tokio::sync::oneshot::channel::<()>();
    let ap_task = tokio::spawn(ap.serve(async {
        let _ = ap_stopped.await;
    }));
    // Web tier in front of the AP tier.
    let mut web_config = c.web.clone();
    if let Some(p) = web_config.pools.get_mut("default")
        && p.servers.len() == 1
        && p.servers[0].url() == format!("http://{}", c.ap.listen)
    {
        p.servers = vec![tiers_web::config::ServerSpec::Url(format!(
            "http://{ap_addr}"
        ))];
    }
    let web = match tiers_web::Server::bind(web_config).await {
        Ok(w) => w,
        Err(e) => return fail(format!("web tier: {e}")),
    };
    let web_addr = web.local_addr();
    let web_admin = match admin(c.web.admin, web.handle().admin()).await {
        Ok(a) => a,
        Err(e) => return fail(format!("web tier: {e}")),
    };
    say!("tiers is up: open http://{web_addr}/");
    say!("  web tier  http://{web_addr}/      admin http://{web_admin}/status");
    say!(
        "  AP tier   http://{ap_addr}/      admin http://{ap_admin}/status   app {}",
        app.display()
    );
    say!(
        "  DB tier   psql -h {} -p {}      admin http://{db_admin}/status   data {}",
        db_addr.ip(),
        db_addr.port(),
        c.db.data_dir.display()
    );
    web.run(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        say!("tiers up: stopping: web, then AP, then DB");
    })
    .await;
    let _ = stop_ap.send(());
    let _ = ap_task.await;
    let _ = stop_db.send(());
    let _ = db_task.await;
    match engine.checkpoint() {
        Ok(cp) => say!(
            "tiers up: stopped after a final checkpoint at lsn {}",
            cp.lsn
        ),
        Err(e) => eprintln!("tiers up: final checkpoint failed: {e}"),
    }
    ExitCode::SUCCESS
}
