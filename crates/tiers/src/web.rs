//! `tiers web`: the web tier as a process. Flags override the `[web]`
//! section of the config file; SIGHUP re-reads the file and reloads without
//! dropping connections; SIGTERM or Ctrl-C drains and stops.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config;

/// Flags of `tiers web`.
#[derive(Args, Clone)]
pub struct WebFlags {
    /// The configuration file (default: ./tiers.toml if it exists);
    /// flags override its `[web]` section.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin endpoint: /health, /metrics, /status [default: 127.0.0.1:6080].
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Serve static files from this directory; requests for files that do
    /// not exist go to the upstreams (if any).
    #[arg(long)]
    root: Option<PathBuf>,
    /// An AP server of the default pool, as http://host:port (repeat the
    /// flag for more).
    #[arg(long = "upstream")]
    upstreams: Vec<String>,
    /// Access log: off, - (standard output) or a file.
    #[arg(long)]
    access_log: Option<String>,
    /// Worker threads with their own event loops (0: one work-stealing
    /// runtime) [default: 0].
    #[arg(long)]
    workers: Option<usize>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

fn effective(flags: &WebFlags) -> Result<tiers_web::Config, String> {
    let mut web = config::load(flags.config.as_deref())?.web;
    if let Some(l) = flags.listen {
        web.listen = l;
    }
    if let Some(a) = flags.admin {
        web.admin = a;
    }
    if let Some(r) = &flags.root {
        web.root = Some(r.clone());
    }
    if !flags.upstreams.is_empty() {
        web.upstreams = flags.upstreams.clone();
    }
    if let Some(l) = &flags.access_log {
        web.access_log = l.clone();
    }
    if let Some(w) = flags.workers {
        web.workers = w;
    }
    web.validate().map_err(|e| e.to_string())?;
    Ok(web)
}

/// Runs `tiers web`.
pub fn run(flags: WebFlags) -> ExitCode {
    let web = match effective(&flags) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("tiers web: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.print_config {
        let whole = config::Config {
            web,
            ..Default::default()
        };
        print!("{}", config::render(&whole));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tiers web: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let admin_addr = web.admin;
        let server = match tiers_web::Server::bind(web).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tiers web: {e}");
                return ExitCode::from(2);
            }
        };
        let handle = server.handle();
        let admin_listener = match tokio::net::TcpListener::bind(admin_addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tiers web: admin endpoint on {admin_addr}: {e}");
                return ExitCode::from(2);
            }
        };
        let admin_addr = admin_listener.local_addr().unwrap_or(admin_addr);
        tokio::spawn(tiers_telemetry::serve_admin(
            admin_listener,
            handle.admin(),
            std::future::pending(),
        ));
        say!(
            "tiers web listening on http://{}/ ; admin on http://{admin_addr}/status",
            server.local_addr()
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(signals(flags, handle, stop_tx));
        server
            .run(async {
                let _ = stop_rx.await;
            })
            .await;
        say!("tiers web: stopped");
        ExitCode::SUCCESS
    })
}

async fn signals(
    flags: WebFlags,
    handle: tiers_web::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("tiers web: cannot watch signals; stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(());
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                match effective(&flags).map_err(|e| e.to_string()).and_then(|c| handle.reload(c).map_err(|e| e.to_string())) {
                    Ok(()) => say!("tiers web: configuration reloaded"),
                    Err(e) => eprintln!("tiers web: reload refused, keeping the running configuration: {e}"),
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    say!("tiers web: stopping; letting requests in flight finish");
    let _ = stop.send(());
}
