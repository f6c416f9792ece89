//! One client connection from accept to close.
//!
//! The protocol is chosen by ALPN on TLS, or by the HTTP/2 preface on
//! plain TCP (h2c with prior knowledge). HTTP/1.1 connections waiting for
//! their next request are *parked*: the HTTP machinery and its buffers are
//! released and only the socket and a small task remain until the client
//! sends again (or the keep-alive timeout closes it), which is what lets
//! one process hold tens of thousands of idle keep-alive connections (the
//! book's C10K). HTTP upgrades (WebSocket) are taken over from the HTTP/1.1
//! machinery and spliced to the upstream.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::Body;
use crate::config::LimitsConfig;
use crate::proxy::Upgraded;
use crate::router::{self, ConnCtx};
use crate::send_timeout::SendTimeout;
use crate::server::Shared;
use crate::stalls::Stalls;

/// Connections parked since the last trim.
static PARKED: AtomicU64 = AtomicU64::new(0);

/// Gives memory freed by parked connections back to the operating system.
/// glibc keeps freed small blocks in its heap, so without this a burst of
/// connections leaves the process as large as the burst made it.
pub async fn trim_memory_forever() {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if PARKED.swap(0, Ordering::Relaxed) > 0 {
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases the allocator's own free
    // lists; it is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Requests after which a connection counts as busy (see `h1_round`).
const BUSY_AFTER: u64 = 8;

/// How long a busy connection may be quiet before it is parked.
const PARK_AFTER: Duration = Duration::from_millis(200);

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves one accepted connection until it closes or the server stops.
///
/// Everything but the parked state lives in boxes that exist only while
/// they work, so a parked connection's task stays small.
pub async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    match Box::pin(open(shared.clone(), stream, peer, stop.clone())).await {
        Opened::Done => {}
        Opened::Plain(io, ctx) => Box::pin(serve_h1(shared, io, ctx, stop)).await,
        Opened::Tls(io, ctx) => Box::pin(serve_h1(shared, io, ctx, stop)).await,
    }
}

/// A connection after its first bytes (and TLS handshake).
enum Opened {
    /// Closed, refused, or served to the end (HTTP/2).
    Done,
    /// HTTP/1.1 in plain TCP.
    Plain(Prefixed<TcpStream>, Arc<ConnCtx>),
    /// HTTP/1.1 over TLS.
    Tls(
        Prefixed<Box<tokio_rustls::server::TlsStream<TcpStream>>>,
        Arc<ConnCtx>,
    ),
}

async fn open(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) -> Opened {
    let _ = stream.set_nodelay(true);
    let state = shared.state();
    let limits = state.config.limits.clone();
    let tls = state.tls.clone();
    drop(state);
    let ctx = Arc::new(ConnCtx {
        peer,
        tls: tls.is_some(),
        in_flight: AtomicUsize::new(0),
        upgrade: Mutex::new(None),
        completed: AtomicU64::new(0),
        stalls: std::sync::OnceLock::new(),
    });
    let Some(acceptor) = tls else {
        // A client that connects and says nothing gets the header timeout.
        let mut io = Prefixed::new(stream);
        return match sniff_h2(&mut io, limits.header_timeout).await {
            None => Opened::Done,
            Some(true) => {
                let io = SendTimeout::new(io, limits.send_timeout, shared.clone());
                serve_h2(shared, TokioIo::new(io), ctx, &limits, stop).await;
                Opened::Done
            }
            Some(false) => Opened::Plain(io, ctx),
        };
    };
    // On TLS the protocol comes from ALPN; a silent client meets the
    // handshake's timeout.
    let accepted = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await;
    let Ok(Ok(tls_stream)) = accepted else {
        shared.metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
        return Opened::Done;
    };
    if tls_stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        let io = SendTimeout::new(tls_stream, limits.send_timeout, shared.clone());
        serve_h2(shared, TokioIo::new(io), ctx, &limits, stop).await;
        Opened::Done
    } else {
        Opened::Tls(Prefixed::new(Box::new(tls_stream)), ctx)
    }
}

/// Reads the first bytes, only as far as needed to tell the HTTP/2 preface
/// from anything else, and puts them back in front of the stream.
/// `Some(true)` if they are the preface, `None` if the client sent nothing
/// in time or hung up. Each read waits for the socket to become readable,
/// so a client that sends part of the preface and stops costs no CPU until
/// the timeout (an earlier version re-peeked every millisecond).
async fn sniff_h2(io: &mut Prefixed<TcpStream>, timeout: Duration) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut have = 0;
    let verdict = loop {
        let n = tokio::time::timeout_at(deadline, io.inner.read(&mut buf[have..]))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        if buf[..have] != H2_PREFACE[..have] {
            break false;
        }
        if have == H2_PREFACE.len() {
            break true;
        }
    };
    io.push_front(Bytes::copy_from_slice(&buf[..have]));
    Some(verdict)
}

type BoxedResponse =
    Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

fn service(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = BoxedResponse,
> + Clone {
    let f = move |req: Request<Incoming>| -> BoxedResponse {
        let shared = shared.clone();
        let ctx = ctx.clone();
        Box::pin(async move { Ok(router::handle(shared, ctx, req).await) })
    };
    ServiceFn(Arc::new(f))
}

/// A cloneable `service_fn` (hyper's is not `Clone` for closures holding
/// state we want to reuse across parked and resumed connections).
struct ServiceFn<F>(Arc<F>);

impl<F> Clone for ServiceFn<F> {
    fn clone(&self) -> Self {
        ServiceFn(self.0.clone())
    }
}

impl<F> hyper::service::Service<Request<Incoming>> for ServiceFn<F>
where
    F: Fn(Request<Incoming>) -> BoxedResponse,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxedResponse;

    fn call(&self, req: Request<Incoming>) -> BoxedResponse {
        (self.0)(req)
    }
}

/// What one stretch of HTTP/1.1 on a connection ended with.
enum Round<T> {
    /// The client is between requests: park with the stream.
    Park(Prefixed<T>),
    /// Closed, upgraded, or the server is stopping.
    Done,
}

async fn serve_h1<T>(
    shared: Arc<Shared>,
    mut io: Prefixed<T>,
    ctx: Arc<ConnCtx>,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service(shared.clone(), ctx.clone());
    loop {
        let round = Box::pin(h1_round(&shared, io, &ctx, svc.clone(), &stop)).await;
        let Round::Park(mut rest) = round else { return };
        if !rest.has_prefix() {
            // Parked: nothing but the socket, this small task and a timer
            // until the client speaks again.
            PARKED.fetch_add(1, Ordering::Relaxed);
            let keep_alive = shared.state().config.limits.header_timeout;
            let parked = &shared.metrics.connections_parked;
            parked.fetch_add(1, Ordering::Relaxed);
            let mut first = [0u8; 1];
            let read = tokio::select! {
                r = tokio::time::timeout(keep_alive, rest.read(&mut first)) => Some(r),
                _ = stopped(&mut stop) => None,
            };
            parked.fetch_sub(1, Ordering::Relaxed);
            match read {
                Some(Ok(Ok(1))) => rest.push_front(Bytes::copy_from_slice(&first)),
                _ => return,
            }
        }
        io = rest;
    }
}

/// Serves requests on `io` until the client goes quiet between requests
/// (park), the connection ends, or it is upgraded.
async fn h1_round<T, S>(
    shared: &Arc<Shared>,
    io: Prefixed<T>,
    ctx: &Arc<ConnCtx>,
    svc: S,
    stop: &watch::Receiver<bool>,
) -> Round<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Body> + Unpin,
    S::Future: Unpin,
{
    let (header_timeout, max_header_bytes, send_timeout) = {
        let state = shared.state();
        let l = &state.config.limits;
        (l.header_timeout, l.max_header_bytes, l.send_timeout)
    };
    let mut conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(max_header_bytes.max(8192))
        .keep_alive(true)
        // A client that shuts its sending side after the request (HTTP/1.0
        // tools, `nc -q`) still gets its answer; the header timeout bounds
        // a connection that never completes one.
        .half_close(true)
        .serve_connection(
            TokioIo::new(SendTimeout::new(io, send_timeout, shared.clone())),
            svc,
        );
    let mut parking = false;
    let mut stopping = false;
    let completed_before = ctx.completed.load(Ordering::Relaxed);
    // A client that has sent many requests on this connection is likely to
    // send more at once: park it only after PARK_AFTER of quiet, sparing it
    // the cost of parking between every request. Others park at once.
    let busy = completed_before >= BUSY_AFTER;
    let mut quiet: Option<(Pin<Box<tokio::time::Sleep>>, u64)> = None;
    let mut stop_signal = std::pin::pin!(stopped_owned(stop.clone()));
    let done = std::future::poll_fn(|cx| {
        if !stopping && stop_signal.as_mut().poll(cx).is_ready() {
            stopping = true;
            Pin::new(&mut conn).graceful_shutdown();
        }
        let polled = conn.poll_without_shutdown(cx);
        if polled.is_ready() || parking || stopping {
            return polled;
        }
        let completed = ctx.completed.load(Ordering::Relaxed);
        let idle = ctx.in_flight.load(Ordering::Relaxed) == 0 && completed > completed_before;
        if !idle {
            return polled;
        }
        let park = if busy {
            let deadline = tokio::time::Instant::now() + PARK_AFTER;
            match &mut quiet {
                Some((timer, at)) if *at == completed => timer.as_mut().poll(cx).is_ready(),
                Some((timer, at)) => {
                    timer.as_mut().reset(deadline);
                    *at = completed;
                    timer.as_mut().poll(cx).is_ready()
                }
                None => {
                    let mut timer = Box::pin(tokio::time::sleep_until(deadline));
                    let ready = timer.as_mut().poll(cx).is_ready();
                    quiet = Some((timer, completed));
                    ready
                }
            }
        } else {
            true
        };
        if park {
            // Waiting for the next request with nothing in flight: give
            // back the buffers (and keep a burst of connections from
            // leaving the heap fragmented).
            parking = true;
            Pin::new(&mut conn).graceful_shutdown();
            return conn.poll_without_shutdown(cx);
        }
        polled
    })
    .await;
    drop(quiet);
    if done.is_err() {
        return Round::Done;
    }
    let parts = conn.into_parts();
    let pending = ctx.upgrade.lock().expect("upgrade").take();
    let mut rest = parts.io.into_inner().into_inner();
    rest.push_front(parts.read_buf);
    if let Some(upstream) = pending {
        // The client's side of an upgraded (WebSocket) connection.
        splice(rest, upstream).await;
        return Round::Done;
    }
    if stopping || !parking {
        return Round::Done;
    }
    Round::Park(rest)
}

async fn serve_h2<I>(
    shared: Arc<Shared>,
    io: I,
    ctx: Arc<ConnCtx>,
    limits: &LimitsConfig,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn({
        let shared = shared.clone();
        let ctx = ctx.clone();
        move |req| {
            let shared = shared.clone();
            let ctx = ctx.clone();
            async move { Ok::<_, std::convert::Infallible>(router::handle(shared, ctx, req).await) }
        }
    });
    let stalls = ctx.stalls.get_or_init(Default::default).clone();
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped(&mut stop) => {}
        quiet = h2_idle(&ctx, &stalls, limits.header_timeout, limits.send_timeout) => {
            if quiet == Quiet::ClientStalled {
                // A stream the client will not take: closing is all that
                // frees it (GOAWAY would wait for it).
                shared.metrics.send_timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    // Stopping, or idle too long: GOAWAY, let streams in flight finish.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Why an HTTP/2 connection's watchdog fired.
#[derive(Debug, PartialEq, Eq)]
enum Quiet {
    /// No request in flight for the keep-alive time.
    Idle,
    /// A response has waited longer than `send_timeout` for the client to
    /// open its flow-control window.
    ClientStalled,
}

/// Resolves once an HTTP/2 connection has had no request in flight for
/// `limit`, the keep-alive bound HTTP/1.1 connections get between requests
/// (nginx closes idle HTTP/2 connections the same way), or once one of its
/// responses has waited `send_timeout` for the client's window. Checked a
/// few times per `limit`, so it ends between `limit` and `limit` plus two
/// checks.
async fn h2_idle(ctx: &ConnCtx, stalls: &Stalls, limit: Duration, send_timeout: Duration) -> Quiet {
    let check = (limit.min(send_timeout) / 4).max(Duration::from_millis(10));
    let mut quiet_since = tokio::time::Instant::now();
    let mut completed = ctx.completed.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(check).await;
        if stalls
            .longest()
            .is_some_and(|waited| waited >= send_timeout)
        {
            return Quiet::ClientStalled;
        }
        let now_completed = ctx.completed.load(Ordering::Relaxed);
        if ctx.in_flight.load(Ordering::Relaxed) > 0 || now_completed != completed {
            completed = now_completed;
            quiet_since = tokio::time::Instant::now();
        } else if quiet_since.elapsed() >= limit {
            return Quiet::Idle;
        }
    }
}

/// Resolves once the server is stopping.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn stopped_owned(mut stop: watch::Receiver<bool>) {
    stopped(&mut stop).await;
}

/// Copies bytes both ways between the client and the upstream's upgraded
/// connection until either closes.
async fn splice<T>(mut client: Prefixed<T>, upstream: Upgraded)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (on_upgrade, _in_flight) = upstream;
    let Ok(up) = on_upgrade.await else { return };
    let mut up = TokioIo::new(up);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
}

/// A stream with bytes already read from it put back in front.
pub struct Prefixed<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Prefixed<T> {
    fn new(inner: T) -> Prefixed<T> {
        Prefixed {
            prefix: Bytes::new(),
            inner,
        }
    }

    fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }

    fn push_front(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.prefix.is_empty() {
            self.prefix = bytes;
        } else {
            let mut joined = bytes.to_vec();
            joined.extend_from_slice(&self.prefix);
            self.prefix = Bytes::from(joined);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parked connection is its task, the boxed HTTP/1.1 loop, its
    /// context and its socket; this guards the first two from growing back
    /// (they were 736 and 1048 bytes before the protocol machinery moved
    /// into boxes that exist only while they work).
    #[tokio::test]
    async fn parked_state_stays_small() {
        let config = crate::Config {
            root: Some(std::env::temp_dir()),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        };
        let server = crate::Server::bind(config).await.unwrap();
        let shared = server.shared_for_tests();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let (_tx, rx) = watch::channel(false);
        let ctx = Arc::new(ConnCtx {
            peer: a,
            tls: false,
            in_flight: AtomicUsize::new(0),
            upgrade: Mutex::new(None),
            completed: AtomicU64::new(0),
            stalls: std::sync::OnceLock::new(),
        });
        let task = serve(
            shared.clone(),
            TcpStream::connect(a).await.unwrap(),
            a,
            rx.clone(),
        );
        let h1 = serve_h1(
            shared,
            Prefixed::new(TcpStream::connect(a).await.unwrap()),
            ctx,
            rx,
        );
        let (task, h1) = (std::mem::size_of_val(&task), std::mem::size_of_val(&h1));
        assert!(task <= 384, "the connection task's future is {task} bytes");
        assert!(h1 <= 1024, "the HTTP/1.1 loop's future is {h1} bytes");
    }
}
