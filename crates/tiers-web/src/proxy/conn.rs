//! One upstream server: its keep-alive connections (HTTP/1.1, pooled and
//! reused), its requests in flight, and its health.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;

use super::health::Health;
use crate::body::{Body, BoxError};

thread_local! {
    /// Which web worker thread this is (0: not a worker).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as web worker `n` (1-based), so upstream
/// connections it opens are reused by it first.
pub fn set_worker(n: usize) {
    WORKER.with(|w| w.set(n));
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Kept-alive connections and when each was last used.
type IdleQueue = VecDeque<(SendRequest<Body>, Instant)>;

/// An upstream server of a pool.
pub struct Upstream {
    /// `host:port`.
    pub authority: String,
    /// Configured weight.
    pub weight: u32,
    /// Its health.
    pub health: Health,
    /// Requests in flight to it.
    pub active: AtomicUsize,
    /// Pooled connections per worker thread (index 0: other threads),
    /// newest at the back.
    idle: Vec<Mutex<IdleQueue>>,
    max_idle: usize,
    idle_timeout: Duration,
    /// Connections opened.
    pub connects: AtomicU64,
    /// Requests sent on a reused connection.
    pub reuses: AtomicU64,
    /// Requests sent.
    pub requests: AtomicU64,
}

/// Why a connection could not be had.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing within the connect timeout.
    Timeout,
    /// Refused, unreachable, name not found...
    Io(std::io::Error),
    /// The HTTP handshake failed.
    Handshake(hyper::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => write!(f, "connect timeout"),
            ConnectError::Io(e) => write!(f, "connect: {e}"),
            ConnectError::Handshake(e) => write!(f, "handshake: {e}"),
        }
    }
}

impl Upstream {
    /// A server with no connections yet.
    pub fn new(
        authority: String,
        weight: u32,
        epoch: Instant,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Upstream {
        Upstream {
            authority,
            weight,
            health: Health::new(epoch),
            active: AtomicUsize::new(0),
            idle: (0..=workers())
                .map(|_| Mutex::new(VecDeque::new()))
                .collect(),
            max_idle,
            idle_timeout,
            connects: AtomicU64::new(0),
            reuses: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Keep-alive connections waiting for a request.
    pub fn idle_count(&self) -> usize {
        self.idle
            .iter()
            .map(|q| q.lock().expect("idle").len())
            .sum()
    }

    fn slot(&self) -> usize {
        WORKER.with(|w| w.get()) % self.idle.len()
    }

    /// A pooled connection that is still open: this worker's newest first,
    /// then another worker's.
    pub fn take_idle(&self) -> Option<SendRequest<Body>> {
        let own = self.slot();
        for k in 0..self.idle.len() {
            let mut idle = self.idle[(own + k) % self.idle.len()].lock().expect("idle");
            while let Some((sender, since)) = idle.pop_back() {
                if since.elapsed() < self.idle_timeout && !sender.is_closed() {
                    return Some(sender);
                }
            }
        }
        None
    }

    /// Returns a connection whose exchange completed.
    pub fn put_idle(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle[self.slot()].lock().expect("idle");
        // The oldest are at the front: drop those past the idle timeout.
        while idle
            .front()
            .is_some_and(|(s, since)| s.is_closed() || since.elapsed() >= self.idle_timeout)
        {
            idle.pop_front();
        }
        if idle.len() < self.max_idle {
            idle.push_back((sender, Instant::now()));
        }
    }

    /// Closes every pooled connection.
    pub fn drop_idle(&self) {
        for q in &self.idle {
            q.lock().expect("idle").clear();
        }
    }

    /// Opens a new connection.
    pub async fn connect(&self, timeout: Duration) -> Result<SendRequest<Body>, ConnectError> {
        let stream =
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&self.authority))
                .await
            {
                Err(_) => return Err(ConnectError::Timeout),
                Ok(Err(e)) => return Err(ConnectError::Io(e)),
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ConnectError::Handshake)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }
}

/// Counts a request in flight to a server and to its pool for as long as
/// the exchange lasts (until the response body ends or is dropped).
pub struct InFlight {
    upstream: Arc<Upstream>,
    slot: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    /// Starts counting.
    pub fn new(upstream: Arc<Upstream>, slot: Option<OwnedSemaphorePermit>) -> InFlight {
        upstream.active.fetch_add(1, Ordering::Relaxed);
        upstream.requests.fetch_add(1, Ordering::Relaxed);
        InFlight { upstream, slot }
    }

    /// Also holds the pool slot until the exchange ends.
    pub fn hold(&mut self, slot: Option<OwnedSemaphorePermit>) {
        if slot.is_some() {
            self.slot = slot;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.upstream.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream response body on its way to the client. When it ends, its
/// connection goes back to the pool; if it is dropped early (the client
/// left), the connection is closed instead, since it is mid-response.
pub struct UpstreamBody {
    inner: Incoming,
    sender: Option<SendRequest<Body>>,
    in_flight: Option<InFlight>,
    timeout: Duration,
    /// Armed only when the upstream makes us wait (most small bodies
    /// arrive with the head and never need a timer).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl UpstreamBody {
    /// Wraps `inner`; `sender` is returned to the pool at the end.
    pub fn new(
        inner: Incoming,
        sender: Option<SendRequest<Body>>,
        in_flight: InFlight,
        timeout: Duration,
    ) -> UpstreamBody {
        let mut body = UpstreamBody {
            inner,
            sender,
            in_flight: Some(in_flight),
            timeout,
            deadline: None,
        };
        if hyper::body::Body::is_end_stream(&body.inner) {
            body.done();
        }
        body
    }

    fn done(&mut self) {
        if let (Some(sender), Some(f)) = (self.sender.take(), self.in_flight.as_ref()) {
            f.upstream.put_idle(sender);
        }
        self.in_flight = None;
    }
}

impl hyper::body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.in_flight.is_none() && this.sender.is_none() && this.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.deadline = None;
                if this.inner.is_end_stream() {
                    this.done();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.sender = None;
                this.in_flight = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                this.done();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    this.sender = None;
                    this.in_flight = None;
                    return Poll::Ready(Some(Err("upstream body timeout".into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
