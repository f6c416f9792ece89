//! The listener and its connections: non-blocking I/O for many thousands
//! of clients (the book's C10K), connection limits, TLS with ALPN,
//! HTTP/1.1 and HTTP/2 (also h2c by prior knowledge), configuration reload
//! without dropping connections, and graceful shutdown.
//!
//! The socket is bound with `SO_REUSEPORT`, so a new process can bind the
//! same port while the old one drains: start the new one, then send the
//! old one SIGTERM, and no request is refused.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::accesslog::AccessLog;
use crate::config::{Config, ConfigError};
use crate::files::{FileCache, Root};
use crate::metrics::Metrics;
use crate::proxy::Pool;
use crate::router::Route;

/// Why the web tier cannot start or reload.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A static root, TLS file or log cannot be opened.
    #[error("{0}")]
    Open(String),
    /// The change needs a restart.
    #[error(
        "{0} cannot change on reload; restart the server (SO_REUSEPORT allows a zero-downtime restart)"
    )]
    NeedsRestart(&'static str),
}

/// One generation of configuration and everything built from it. A reload
/// builds a new one and swaps it in; requests already running keep theirs.
pub struct State {
    /// The settings.
    pub config: Config,
    /// Routes, longest prefix first.
    pub routes: Vec<Route>,
    /// Pools by name.
    pub pools: BTreeMap<String, Arc<Pool>>,
    /// The file cache.
    pub files: Arc<FileCache>,
    /// TLS, when configured.
    pub tls: Option<TlsAcceptor>,
    /// The access log, when on.
    pub log: Option<AccessLog>,
}

impl State {
    fn build(config: Config) -> Result<State, WebError> {
        config.validate()?;
        let mut pools = BTreeMap::new();
        for (name, pc) in config.all_pools() {
            let pool =
                Pool::new(&name, pc).map_err(|e| WebError::Open(format!("pool {name}: {e}")))?;
            pools.insert(name, pool);
        }
        let mut routes = Vec::new();
        for r in &config.routes {
            routes.push(Route {
                prefix: r.prefix.clone(),
                root: r
                    .root
                    .as_deref()
                    .map(Root::open)
                    .transpose()
                    .map_err(WebError::Open)?,
                pool: r.pool.as_ref().map(|p| pools[p].clone()),
            });
        }
        if !routes.iter().any(|r| r.prefix == "/") {
            let root = config
                .root
                .as_deref()
                .map(Root::open)
                .transpose()
                .map_err(WebError::Open)?;
            let pool = pools.get("default").cloned();
            if root.is_some() || pool.is_some() {
                routes.push(Route {
                    prefix: "/".into(),
                    root,
                    pool,
                });
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.trim_end_matches('/').len()));
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(tls_acceptor(c, k).map_err(WebError::Open)?),
            _ => None,
        };
        let log = match config.access_log.as_str() {
            "off" => None,
            target => Some(
                AccessLog::open(target, config.access_log_format)
                    .map_err(|e| WebError::Open(format!("access log {target}: {e}")))?,
            ),
        };
        Ok(State {
            files: Arc::new(FileCache::new(config.files.clone())),
            config,
            routes,
            pools,
            tls,
            log,
        })
    }

    fn start(&self) {
        for pool in self.pools.values() {
            pool.start_health_checks();
        }
    }
}

/// What every connection and request shares.
pub struct Shared {
    state: RwLock<Arc<State>>,
    /// Counters.
    pub metrics: Metrics,
    /// When the server started.
    pub started: Instant,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Shared {
    /// The current configuration generation.
    pub fn state(&self) -> Arc<State> {
        self.state.read().expect("state").clone()
    }
}

/// The web tier server.
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Server {
    /// Checks the configuration, opens roots, pools and logs, and binds.
    pub async fn bind(config: Config) -> Result<Server, WebError> {
        let state = State::build(config)?;
        let addr = state.config.listen;
        let listener = bind_reuseport(addr).map_err(|source| WebError::Bind { addr, source })?;
        let local_addr = listener.local_addr().unwrap_or(addr);
        state.start();
        Ok(Server {
            shared: Arc::new(Shared {
                state: RwLock::new(Arc::new(state)),
                metrics: Metrics::default(),
                started: Instant::now(),
                per_ip: Mutex::new(HashMap::new()),
            }),
            listener,
            local_addr,
        })
    }

    #[cfg(test)]
    pub(crate) fn shared_for_tests(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for reloading and reporting while [`Server::run`] runs.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, asks every
    /// connection to finish its current request, and waits for them (at
    /// most `drain_timeout`).
    ///
    /// With `workers = 0` connections are served on the caller's runtime
    /// (multi-threaded and work-stealing: the best latency when the cores
    /// are shared with other work). With `workers = N` they are served by N
    /// threads, each with its own single-threaded event loop and its own
    /// `SO_REUSEPORT` listener, so a connection and its upstream exchanges
    /// stay on one core (nginx's and HAProxy's model: the most proxied
    /// requests per core). Configuration, caches and counters are shared.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let open = Arc::new(AtomicUsize::new(0));
        let trimmer = tokio::spawn(crate::connection::trim_memory_forever());
        let workers = self.shared.state().config.workers;
        if workers == 0 {
            // The caller's (multi-threaded, work-stealing) runtime serves.
            let accepting = accept_loop(self.shared.clone(), self.listener, stop_rx, open);
            tokio::pin!(accepting);
            tokio::select! {
                () = &mut accepting => {}
                () = shutdown => {
                    let _ = stop_tx.send(true);
                    accepting.await;
                }
            }
            trimmer.abort();
            return;
        }
        let mut listeners = vec![self.listener];
        for _ in 1..workers {
            match bind_reuseport(self.local_addr) {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    eprintln!("tiers web: extra listener for a worker: {e}; running fewer workers");
                    break;
                }
            }
        }
        let mut threads = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let Ok(listener) = listener.into_std() else {
                continue;
            };
            let (shared, stop, open) = (self.shared.clone(), stop_rx.clone(), open.clone());
            let thread = std::thread::Builder::new()
                .name(format!("tiers-web-{i}"))
                .spawn(move || {
                    crate::proxy::set_worker(i + 1);
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            eprintln!("tiers web: worker {i}: {e}");
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(l) => accept_loop(shared, l, stop, open).await,
                            Err(e) => eprintln!("tiers web: worker {i}: {e}"),
                        }
                    });
                });
            match thread {
                Ok(t) => threads.push(t),
                Err(e) => eprintln!("tiers web: cannot start worker {i}: {e}"),
            }
        }
        shutdown.await;
        trimmer.abort();
        let _ = stop_tx.send(true);
        for t in threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// One worker's accept loop; after the stop signal it waits for its
/// connections to finish (at most the drain timeout).
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tiers_telemetry::net::accept(&listener, "web tier") => accepted,
            () = crate::connection::stopped(&mut stop) => break,
        };
        let shared = shared.clone();
        shared
            .metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let Some(guard) = ConnGuard::admit(&shared, peer.ip()) else {
            shared
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream));
            continue;
        };
        let stop = stop.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            crate::connection::serve(shared, stream, peer, stop).await;
            drop(guard);
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let drain = shared.state().config.drain_timeout;
    let deadline = Instant::now() + drain;
    while open.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reload and report while the server runs.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Applies a new configuration to new requests; connections stay open.
    /// The listen address cannot change this way.
    pub fn reload(&self, config: Config) -> Result<(), WebError> {
        let current = self.shared.state();
        if config.listen != current.config.listen {
            return Err(WebError::NeedsRestart("listen"));
        }
        if config.admin != current.config.admin {
            return Err(WebError::NeedsRestart("admin"));
        }
        let next = State::build(config)?;
        next.start();
        *self.shared.state.write().expect("state") = Arc::new(next);
        self.shared.metrics.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The admin report (health, metrics, status).
    pub fn admin(&self) -> Arc<dyn tiers_telemetry::Admin> {
        Arc::new(crate::admin::WebAdmin::new(self.shared.clone()))
    }
}

/// Counts a connection against the global and per-IP limits.
struct ConnGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl ConnGuard {
    fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<ConnGuard> {
        let limits = shared.state().config.limits.clone();
        let m = &shared.metrics;
        if m.connections_open.fetch_add(1, Ordering::Relaxed) >= limits.max_connections {
            m.connections_open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        if limits.max_connections_per_ip > 0 {
            let mut per_ip = shared.per_ip.lock().expect("per ip");
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= limits.max_connections_per_ip {
                m.connections_open.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            *n += 1;
        }
        Some(ConnGuard {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self.shared.per_ip.lock().expect("per ip");
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Tells a client over the limit to come back later, and closes.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\
              Content-Type: text/plain\r\nContent-Length: 20\r\n\r\ntoo many connections",
        ),
    )
    .await;
    let _ = stream.shutdown().await;
}

/// Binds with `SO_REUSEADDR` and `SO_REUSEPORT` and a deep backlog.
fn bind_reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

/// A TLS acceptor offering h2 and http/1.1, from PEM files.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading TLS private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
