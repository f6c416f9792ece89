//! The connection handling: startup ("trust"), the simple and extended
//! query protocols, and the mapping of results and errors to messages.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use async_trait::async_trait;
use futures::SinkExt;
use futures::{Sink, stream};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tiers_sql::ast::Statement;
use tiers_sql::exec::{self, Column, QueryResult, Session};
use tiers_sql::{DataType, SqlError, Value};
use tiers_storage::Engine;
use tokio::net::TcpListener;

use crate::wire;
use results::{check_result_formats, command_tag, fields, response};

mod admin;
mod cancel;
mod copy;
mod deferred;
mod dispatch;
mod fetch;
mod framing;
mod loops;
mod named;
mod results;
mod shape;

use admin::DbAdmin;
use cancel::{Cancels, RegisteringKeys};
use copy::{CopyIn, copy_out_response, is_copy_result};
use named::Named;
pub use named::{MAX_NAMED_PORTALS, MAX_NAMED_STATEMENTS};

/// Where and how the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (loopback by default: trust authentication).
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Storage engine settings.
    pub storage: tiers_storage::Config,
    /// Client connections served at once; more are refused with 53300.
    pub max_connections: usize,
    /// The longest SQL text accepted in one message (bytes); longer is 54000.
    pub max_statement_bytes: usize,
    /// Users and passwords for SCRAM-SHA-256; empty means trust.
    pub users: Vec<(String, String)>,
    /// TLS certificate chain and private key (PEM files), if TLS is offered.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Event-loop threads that own the client connections (see
    /// `loops`); 0 keeps them on the runtime that calls [`Server::serve`].
    pub connection_loops: usize,
}

impl ServerConfig {
    /// Defaults for everything but the address and the data directory.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen,
            data_dir,
            storage: tiers_storage::Config::default(),
            max_connections: 100,
            max_statement_bytes: 16 << 20,
            users: Vec::new(),
            tls: None,
            connection_loops: loops::default_count(),
        }
    }
}

/// The longest wire message accepted, for a given statement limit: room
/// for the statement and for Bind parameters, checked at the length word
/// (a 1 GiB Query is refused before one byte of it is buffered).
pub fn max_message_bytes(max_statement_bytes: usize) -> usize {
    max_statement_bytes.saturating_mul(4).max(1 << 20)
}

/// Bytes of messages over 1 MiB that all connections may hold at once;
/// a message that would exceed it ends its connection with 53200.
pub const LARGE_MESSAGE_BUDGET: usize = 1 << 30;

/// A running DB server.
pub struct Server {
    engine: Arc<Engine>,
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    loops: Option<loops::ConnectionLoops>,
}

struct Shared {
    database: Arc<tiers_sql::exec::Database>,
    params: Arc<DefaultServerParameterProvider>,
    users: Arc<crate::auth::Users>,
    pids: RandomPidSecretKeyGenerator,
    cancels: Arc<Cancels>,
    /// Connections open now (accepted, not yet closed).
    active: AtomicUsize,
    max_connections: usize,
    max_statement_bytes: usize,
    /// Message size limits checked at each length word (see `framing`).
    message_limits: framing::Limits,
    /// Statement latency (from the session's point of view).
    latency: tiers_telemetry::Histogram,
    /// Statements run, and of those, failed.
    statements: AtomicU64,
    failed_statements: AtomicU64,
    /// Statements built from a connection's cached template instead of
    /// being parsed (see [`tiers_sql::parse::StatementCache`]).
    parse_cache_hits: AtomicU64,
    started: Instant,
    listen: SocketAddr,
}

/// Counts a connection as active until dropped.
struct ActiveConnection(Arc<Shared>);

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, AtomicOrdering::Relaxed);
    }
}

impl Server {
    /// Opens (or initialises) the data directory and binds the listener.
    pub async fn bind(config: ServerConfig) -> Result<Server, String> {
        let storage = config.storage.clone();
        let dir = config.data_dir.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(&dir, storage))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("opening {}: {e}", config.data_dir.display()))?;
        Self::bind_engine(config, Arc::new(engine)).await
    }

    /// Binds the listener over an engine opened already (a cluster
    /// member's replicated engine; `config.storage` is then unused).
    pub async fn bind_engine(config: ServerConfig, engine: Arc<Engine>) -> Result<Server, String> {
        // Create the catalog once, before any client arrives.
        let database = tiers_sql::exec::Database::new(engine.clone()).map_err(|e| e.to_string())?;
        let listener = tiers_telemetry::net::listen(config.listen)
            .map_err(|e| format!("listening on {}: {e}", config.listen))?;
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = format!("15.0 (tiers {})", env!("CARGO_PKG_VERSION"));
        params.date_style = "ISO, MDY".to_string();
        let tls = config
            .tls
            .as_ref()
            .map(|(cert, key)| crate::auth::tls_acceptor(cert, key))
            .transpose()?;
        let shared = Arc::new(Shared {
            database,
            params: Arc::new(params),
            users: Arc::new(crate::auth::Users::new(&config.users)),
            pids: RandomPidSecretKeyGenerator::default(),
            cancels: Arc::default(),
            active: AtomicUsize::new(0),
            max_connections: config.max_connections,
            max_statement_bytes: config.max_statement_bytes,
            message_limits: framing::Limits {
                max_message: max_message_bytes(config.max_statement_bytes),
                budget: Arc::new(framing::Budget::new(LARGE_MESSAGE_BUDGET)),
                sasl: !config.users.is_empty(),
            },
            latency: tiers_telemetry::Histogram::default(),
            statements: AtomicU64::new(0),
            failed_statements: AtomicU64::new(0),
            parse_cache_hits: AtomicU64::new(0),
            started: Instant::now(),
            listen: listener.local_addr().map_err(|e| e.to_string())?,
        });
        let loops = match config.connection_loops {
            0 => None,
            n => Some(
                loops::ConnectionLoops::start(n)
                    .map_err(|e| format!("starting {n} connection threads: {e}"))?,
            ),
        };
        Ok(Server {
            engine,
            listener,
            shared,
            tls,
            loops,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// The SQL database the sessions share.
    pub fn database(&self) -> &Arc<tiers_sql::exec::Database> {
        &self.shared.database
    }

    /// The storage engine (for metrics and shutdown).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// What the admin endpoint reports about this server.
    pub fn admin(&self) -> Arc<dyn tiers_telemetry::Admin> {
        Arc::new(DbAdmin {
            shared: self.shared.clone(),
            engine: self.engine.clone(),
        })
    }

    /// Serves connections until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let (socket, _) = tokio::select! {
                accepted = tiers_telemetry::net::accept(&self.listener, "DB tier") => accepted,
                () = &mut shutdown => return Ok(()),
            };
            self.shared.active.fetch_add(1, AtomicOrdering::Relaxed);
            let active = ActiveConnection(self.shared.clone());
            let session = Session::open(&self.shared.database);
            let interrupt = session.interrupt_flag();
            let auth = (!self.shared.users.is_empty()).then(|| {
                SASLAuthStartupHandler::new(self.shared.params.clone())
                    .with_scram(ScramAuth::new(self.shared.users.clone()))
                    .with_pid_secret_key_generator(Arc::new(RegisteringKeys {
                        shared: self.shared.clone(),
                        interrupt: interrupt.clone(),
                    }))
            });
            let backend = Arc::new(Backend {
                shared: self.shared.clone(),
                auth,
                interrupt,
                session: Arc::new(Mutex::new(session)),
                parser: Arc::new(Parser {
                    shared: self.shared.clone(),
                    statements: Mutex::default(),
                }),
                last_active: Mutex::new(Instant::now()),
                copy_in: Mutex::new(None),
                named: Mutex::default(),
                prerun: Mutex::new(None),
            });
            let tls = self.tls.clone();
            let handlers = Handlers {
                backend,
                cancel: self.shared.cancels.clone(),
            };
            let Some(loops) = &self.loops else {
                tokio::spawn(connection(socket, tls, handlers, active));
                continue;
            };
            // The socket moves to the loop's own reactor.
            let Ok(socket) = socket.into_std() else {
                continue;
            };
            loops.pick().spawn(async move {
                if let Ok(socket) = tokio::net::TcpStream::from_std(socket) {
                    connection(socket, tls, handlers, active).await;
                }
            });
        }
    }
}

/// Serves one client connection until it ends.
async fn connection(
    socket: tokio::net::TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: Handlers,
    active: ActiveConnection,
) {
    let watchdog = idle_watchdog(handlers.backend.clone(), &socket);
    let limits = handlers.backend.shared.message_limits.clone();
    // A client that vanishes or sends garbage ends its own connection only.
    let _ = framing::serve_socket(socket, tls, handlers, limits).await;
    if let Some(w) = watchdog {
        w.abort();
    }
    drop(active);
}

fn wire_error(e: &SqlError) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        e.code.to_string(),
        e.message.clone(),
    ))
}

fn user_error(e: &SqlError) -> PgWireError {
    PgWireError::UserError(wire_error(e))
}

/// A statement prepared with the extended protocol.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement, as a list of one (none for an empty query), shared
    /// by every execution instead of copied for each.
    statement: Arc<[Statement]>,
    params: Vec<DataType>,
    columns: Vec<Column>,
    /// The query's plan, reused across executions.
    plan: Arc<exec::PlanCache>,
}

struct Parser {
    shared: Arc<Shared>,
    /// The connection's parsed statement templates: a statement sent again
    /// (with other constants, on the simple protocol) is not parsed again.
    statements: Mutex<tiers_sql::parse::StatementCache>,
}

impl Parser {
    fn parse(&self, sql: &str) -> Result<Vec<Statement>, SqlError> {
        let mut cache = self.statements.lock().expect("statement cache");
        let hits = cache.hits();
        let parsed = cache.parse(sql);
        if cache.hits() != hits {
            self.shared
                .parse_cache_hits
                .fetch_add(1, AtomicOrdering::Relaxed);
        }
        parsed
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if sql.len() > self.shared.max_statement_bytes {
            return Err(user_error(&SqlError::new(
                "54000",
                format!(
                    "statement is {} bytes, more than the server's limit of {} bytes",
                    sql.len(),
                    self.shared.max_statement_bytes
                ),
            )));
        }
        let mut statements = self.parse(sql).map_err(|e| user_error(&e))?;
        if statements.len() > 1 {
            return Err(user_error(&SqlError::new(
                tiers_sql::error::sqlstate::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let statement = statements.pop();
        let (mut params, columns, plan) = match &statement {
            None => (Vec::new(), Vec::new(), exec::PlanCache::default()),
            Some(s) => exec::prepare(&self.shared.database, s).map_err(|e| user_error(&e))?,
        };
        // Types the client declared win over inferred ones.
        for (i, t) in types.iter().enumerate() {
            if let Some(dt) = t.as_ref().and_then(wire::from_pg_type) {
                if i >= params.len() {
                    params.resize(i + 1, DataType::Text);
                }
                params[i] = dt;
            }
        }
        Ok(Some(Prepared {
            statement: statement.into_iter().collect(),
            params,
            columns,
            plan: Arc::new(plan),
        }))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.params.iter().map(|t| wire::pg_type(*t)).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        if let Some(f) = format {
            check_result_formats(f, stmt.columns.len())?;
        }
        Ok(fields(&stmt.columns, format))
    }
}

struct Backend {
    shared: Arc<Shared>,
    /// SCRAM-SHA-256 when users are configured (else trust).
    auth: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    session: Arc<Mutex<Session>>,
    parser: Arc<Parser>,
    /// Set by a cancel request for this session's running statement.
    interrupt: Arc<AtomicBool>,
    /// When the last statement ended (idle_in_transaction_session_timeout).
    last_active: Mutex<Instant>,
    /// A COPY FROM STDIN receiving data.
    copy_in: Mutex<Option<CopyIn>>,
    /// Names of the connection's prepared statements and portals, counted
    /// against [`MAX_NAMED_STATEMENTS`] and [`MAX_NAMED_PORTALS`].
    named: Mutex<Named>,
    /// A portal's response run before pgwire's `do_query` asked for it (see
    /// [`fetch`]).
    prerun: Mutex<Option<fetch::Prerun>>,
}

/// Ends a session that sits idle inside a transaction for longer than its
/// `idle_in_transaction_session_timeout`: rolls the transaction back (its
/// row locks go with it) and shuts the socket, as PostgreSQL does (25P03).
fn idle_watchdog(
    backend: Arc<Backend>,
    socket: &tokio::net::TcpStream,
) -> Option<tokio::task::JoinHandle<()>> {
    let std_socket = socket2::SockRef::from(socket).try_clone().ok()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tick.tick().await;
            let Ok(mut session) = backend.session.try_lock() else {
                continue; // A statement is running: not idle.
            };
            let Some(limit) = session.idle_in_transaction_timeout() else {
                continue;
            };
            let idle = backend
                .last_active
                .lock()
                .expect("activity clock")
                .elapsed();
            if session.in_transaction() && idle >= limit {
                session.abort_transaction();
                let _ = std_socket.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }))
}

impl Backend {
    /// Refuses SQL text longer than the configured limit.
    fn check_size(&self, sql: &str) -> Result<(), SqlError> {
        if sql.len() > self.shared.max_statement_bytes {
            return Err(SqlError::new(
                "54000",
                format!(
                    "statement is {} bytes, more than the server's limit of {} bytes",
                    sql.len(),
                    self.shared.max_statement_bytes
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for Backend {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            let active = self.shared.active.load(AtomicOrdering::Relaxed);
            if active > self.shared.max_connections {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".to_string(),
                    "53300".to_string(),
                    format!(
                        "sorry, too many clients already ({} connections allowed)",
                        self.shared.max_connections
                    ),
                ))));
            }
            if self.auth.is_none() {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, key) = RegisteringKeys {
                    shared: self.shared.clone(),
                    interrupt: self.interrupt.clone(),
                }
                .generate(client);
                client.set_pid_and_secret_key(pid, key);
                finish_authentication(client, &*self.shared.params).await?;
                return Ok(());
            }
        }
        if let Some(auth) = &self.auth {
            return auth.on_startup(client, message).await;
        }
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Err(e) = self.check_size(query) {
            return Ok(vec![Response::Error(wire_error(&e))]);
        }
        let statements = match self.parser.parse(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(wire_error(&e))]),
        };
        let mut responses = Vec::new();
        let mut batch = Vec::new();
        for stmt in statements {
            let copy = match &stmt {
                Statement::Copy(c) if c.to || c.payload.is_none() => c.clone(),
                _ => {
                    batch.push(stmt);
                    continue;
                }
            };
            // Run what came before the COPY; stop at an error.
            let results = self
                .run(std::mem::take(&mut batch).into(), Vec::new(), None)
                .await;
            let failed = results.iter().any(Result::is_err);
            responses.extend(results.into_iter().map(|r| response(r, None)));
            if failed {
                return Ok(responses);
            }
            if copy.to {
                let mut results = self.run(vec![stmt].into(), Vec::new(), None).await;
                match results.pop() {
                    Some(Ok(r)) => responses.push(copy_out_response(r, &copy.options)),
                    Some(Err(e)) => {
                        responses.push(Response::Error(wire_error(&e)));
                        return Ok(responses);
                    }
                    None => {}
                }
            } else {
                // The data follows as CopyData messages; statements after a
                // COPY FROM STDIN in the same query string are not run.
                responses.push(self.start_copy_in(copy));
                return Ok(responses);
            }
        }
        let results = self.run(batch.into(), Vec::new(), None).await;
        responses.extend(results.into_iter().map(|r| response(r, None)));
        Ok(responses)
    }
}

fn decode_params(portal: &Portal<Prepared>) -> Result<Vec<Value>, SqlError> {
    let types = &portal.statement.statement.params;
    portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let t = types.get(i).copied().unwrap_or(DataType::Text);
            match raw {
                None => Ok(Value::Null),
                Some(bytes) if portal.parameter_format.is_binary(i) => wire::from_binary(bytes, t),
                Some(bytes) => {
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| SqlError::new("22021", "invalid UTF-8 in a text parameter"))?;
                    t.assign(Value::Text(text.to_string()))
                }
            }
        })
        .collect()
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// Like pgwire's default, but ParseComplete waits for Sync (see
    /// [`deferred`]).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        Named::admit(
            &mut self.named.lock().expect("named objects").statements,
            &name,
            MAX_NAMED_STATEMENTS,
            "prepared statement",
        )?;
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's, keeping the count of named statements and portals.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        {
            let mut named = self.named.lock().expect("named objects");
            match message.target_type {
                TARGET_TYPE_BYTE_STATEMENT => {
                    named.statements.remove(name);
                    client.portal_store().rm_statement(name);
                }
                TARGET_TYPE_BYTE_PORTAL => {
                    named.portals.remove(name);
                    client.portal_store().rm_portal(name);
                }
                _ => {}
            }
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's, with its reply waiting for Sync (see [`deferred`]).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self._on_describe(&mut deferred::Deferred(client), message)
            .await
    }

    /// pgwire's, with its reply waiting for Sync (see [`deferred`]) and a
    /// row limit it can reserve room for (see [`fetch`]).
    async fn on_execute<C>(&self, client: &mut C, mut message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        message.max_rows = self.bounded_max_rows(client, &message).await?;
        self._on_execute(&mut deferred::Deferred(client), message)
            .await?;
        // A client starting COPY FROM STDIN waits for CopyInResponse before
        // it sends any data: that one cannot wait for Sync.
        if matches!(
            client.state(),
            pgwire::api::PgWireConnectionState::CopyInProgress(_)
        ) {
            client.flush().await?;
        }
        Ok(())
    }

    /// Like pgwire's default, but queues BindComplete instead of flushing
    /// it: the client reads it together with the Execute results at Sync,
    /// which saves a write and a wakeup on both sides per prepared statement.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        Named::admit(
            &mut self.named.lock().expect("named objects").portals,
            portal_name,
            MAX_NAMED_PORTALS,
            "portal",
        )?;
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(user_error(&SqlError::new(
                        "08P01",
                        format!(
                            "bind message supplies {} parameters, but the prepared statement requires 0",
                            message.parameters.len()
                        ),
                    )));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(response) = self.take_prerun(&portal.name) {
            return Ok(response);
        }
        let statement = portal.statement.statement.statement.clone();
        let Some(first) = statement.first() else {
            return Ok(Response::EmptyQuery);
        };
        let params = decode_params(portal).map_err(|e| user_error(&e))?;
        check_result_formats(
            &portal.result_column_format,
            portal.statement.statement.columns.len(),
        )?;
        if let Statement::Copy(copy) = first {
            if !copy.to && copy.payload.is_none() {
                return Ok(self.start_copy_in(copy.clone()));
            }
            let options = copy.options.clone();
            let mut results = self.run(statement, params, None).await;
            return Ok(match results.pop() {
                Some(Ok(r)) if is_copy_result(&r) => copy_out_response(r, &options),
                Some(other) => response(other, None),
                None => Response::EmptyQuery,
            });
        }
        let plan = portal.statement.statement.plan.clone();
        let mut results = self.run(statement, params, Some(plan)).await;
        let mut result = results.pop().unwrap_or_else(|| {
            Err(SqlError::new(
                tiers_sql::error::sqlstate::INTERNAL_ERROR,
                "no result",
            ))
        });
        // The client was told the row shape at Parse; a table changed since
        // then must not change it under the client (as in PostgreSQL).
        if let Ok(r) = &result
            && !r.columns.is_empty()
            && r.columns != portal.statement.statement.columns
        {
            result = Err(SqlError::new(
                tiers_sql::error::sqlstate::FEATURE_NOT_SUPPORTED,
                "cached plan must not change result type (a table changed since the statement was prepared; prepare it again)",
            ));
        }
        Ok(response(result, Some(&portal.result_column_format)))
    }
}

struct Handlers {
    backend: Arc<Backend>,
    cancel: Arc<Cancels>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.backend.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.backend.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.backend.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.backend.clone()
    }
}
