//! Message sizes checked at the length word, before anything is buffered.
//!
//! pgwire's codec accepts a Query or Parse of up to 1 GiB and grows its read
//! buffer as the bytes arrive, so one client could make the server hold a
//! gigabyte (and a hundred clients a hundred). [`Guarded`] sits between the
//! socket (after TLS) and the codec and follows the message framing of the
//! bytes passing through: each message's length word is checked as soon as
//! it arrives, against the per-message limit and against a server-wide
//! budget for large messages. A message over either is an I/O error that
//! ends the connection, after [`serve_socket`] has told the client why
//! (FATAL 54000, or 53200 when the budget is spent), as PostgreSQL ends a
//! connection that sends an invalid message length.
//!
//! [`serve_socket`] is pgwire's `process_socket` with the guard in place
//! (its negotiation and per-message dispatch are pgwire's own).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::codec::{Framed, FramedParts};

use super::shape::BodyCheck;

/// Messages larger than this draw on the server-wide budget.
pub const LARGE_MESSAGE: usize = 1 << 20;

/// How long a client has to finish its startup (and authentication).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The limits a connection's guard enforces.
#[derive(Clone)]
pub struct Limits {
    /// The longest message accepted (its length word, in bytes).
    pub max_message: usize,
    /// Bytes of large messages all connections may hold at once.
    pub budget: Arc<Budget>,
    /// Clients authenticate with SCRAM: their first `p` message is a
    /// SASLInitialResponse, whose layout is checked.
    pub sasl: bool,
}

/// A server-wide allowance of bytes for messages over [`LARGE_MESSAGE`].
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Bytes held now, for the admin report.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + n <= self.limit).then_some(used + n)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Why a guard refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than the per-message limit.
    TooLong { length: usize, limit: usize },
    /// The server-wide budget for large messages is spent.
    NoBudget { length: usize },
    /// The body does not have its type's layout.
    Malformed {
        kind: &'static str,
        problem: &'static str,
    },
}

impl Refusal {
    fn to_error(self) -> ErrorInfo {
        match self {
            Refusal::TooLong { length, limit } => ErrorInfo::new(
                "FATAL".into(),
                "54000".into(),
                format!(
                    "message of {length} bytes is longer than the server's limit of {limit} bytes \
                     (max_statement_bytes); send large data with COPY or in smaller statements"
                ),
            ),
            Refusal::Malformed { kind, problem } => ErrorInfo::new(
                "FATAL".into(),
                "08P01".into(),
                format!("invalid message format: the {kind} message {problem}"),
            ),
            Refusal::NoBudget { length } => ErrorInfo::new(
                "FATAL".into(),
                "53200".into(),
                format!(
                    "the server is holding as many large messages as its memory budget allows; \
                     this message of {length} bytes was refused: retry shortly"
                ),
            ),
        }
    }
}

/// A stream whose incoming message lengths are checked (see the module).
pub struct Guarded<S> {
    inner: S,
    limits: Limits,
    /// The next message has no type byte (the startup message).
    untyped: bool,
    header: [u8; 5],
    have: usize,
    /// Body bytes of the current message still to come.
    remaining: usize,
    /// Budget bytes held for the current (large) message.
    held: usize,
    /// The current message's layout, checked as its body passes.
    check: Option<BodyCheck>,
    /// A `p` message has been seen (only the first is a SASL initial one).
    seen_password: bool,
    refused: Option<Refusal>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`, whose next message is the untyped startup message.
    pub fn new(inner: S, limits: Limits) -> Guarded<S> {
        Guarded {
            inner,
            limits,
            untyped: true,
            header: [0; 5],
            have: 0,
            remaining: 0,
            held: 0,
            check: None,
            seen_password: false,
            refused: None,
        }
    }

    /// Why the last read failed, if a message was refused.
    pub fn refused(&self) -> Option<Refusal> {
        self.refused
    }

    /// Follows the framing over `bytes` just read; an error at the first
    /// refused length word.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refusal> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                let body = &bytes[..n];
                bytes = &bytes[n..];
                self.check_body(body)?;
                continue;
            }
            let want = if self.untyped { 4 } else { 5 };
            let n = (want - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < want {
                break;
            }
            let word: [u8; 4] = self.header[want - 4..want].try_into().expect("4 bytes");
            let length = u32::from_be_bytes(word) as usize;
            self.have = 0;
            self.check = Some(if self.untyped {
                BodyCheck::startup()
            } else {
                let tag = self.header[0];
                let sasl_initial = tag == b'p' && self.limits.sasl && !self.seen_password;
                self.seen_password |= tag == b'p';
                BodyCheck::for_type(tag, sasl_initial)
            });
            self.untyped = false;
            // A new message: the last one has been taken out of the buffer.
            self.release();
            if length > self.limits.max_message {
                return Err(self.refuse(Refusal::TooLong {
                    length,
                    limit: self.limits.max_message,
                }));
            }
            if length > LARGE_MESSAGE {
                if !self.limits.budget.take(length) {
                    return Err(self.refuse(Refusal::NoBudget { length }));
                }
                self.held = length;
            }
            // The length counts itself, and a startup message's version.
            let least = if want == 4 { 8 } else { 4 };
            if length < least {
                let kind = self.check.as_ref().map_or("message", BodyCheck::kind);
                return Err(self.refuse(Refusal::Malformed {
                    kind,
                    problem: "has a length shorter than its own header",
                }));
            }
            self.remaining = length - 4;
            self.check_body(&[])?;
        }
        Ok(())
    }

    /// Follows `body`, the next bytes of the current message's body, and
    /// finishes its check at the body's end.
    fn check_body(&mut self, body: &[u8]) -> Result<(), Refusal> {
        let Some(check) = &mut self.check else {
            return Ok(());
        };
        let mut result = check.consume(body);
        if result.is_ok() && self.remaining == 0 {
            result = check.finish();
        }
        match result {
            Ok(()) => Ok(()),
            Err(problem) => {
                let kind = check.kind();
                Err(self.refuse(Refusal::Malformed { kind, problem }))
            }
        }
    }

    fn refuse(&mut self, why: Refusal) -> Refusal {
        self.refused = Some(why);
        why
    }

    fn release(&mut self) {
        if self.held > 0 {
            self.limits.budget.give_back(self.held);
            self.held = 0;
        }
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.refused.is_some() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message refused",
            )));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                match this.feed(fresh) {
                    Ok(()) => Poll::Ready(Ok(())),
                    Err(_) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "message refused",
                    ))),
                }
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// pgwire's `process_socket`, with every message's length checked by a
/// [`Guarded`] stream before it is buffered.
pub async fn serve_socket<H: PgWireServerHandlers>(
    tcp: tokio::net::TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    limits: Limits,
) -> io::Result<()> {
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        () = &mut startup_timeout => return Ok(()),
        negotiated = negotiate_tls(tcp, tls) => negotiated?,
    };
    let Some(framed) = negotiated else {
        return Ok(());
    };
    let parts = framed.into_parts();
    let mut guarded = Guarded::new(parts.io, limits);
    let early = guarded.feed(&parts.read_buf);
    let mut new_parts = FramedParts::new(guarded, parts.codec);
    new_parts.read_buf = parts.read_buf;
    new_parts.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(new_parts);
    if let Err(why) = early {
        return refuse(&mut socket, why).await;
    }

    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();
    loop {
        let msg = if matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        ) {
            tokio::select! {
                () = &mut startup_timeout => None,
                msg = socket.next() => msg,
            }
        } else {
            socket.next().await
        };
        let msg = match msg {
            Some(Ok(msg)) => msg,
            Some(Err(_)) => {
                if let Some(why) = socket.get_ref().refused() {
                    return refuse(&mut socket, why).await;
                }
                break;
            }
            None => break,
        };
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let is_cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        if let Err(mut e) = process_message(
            msg,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        )
        .await
        {
            error_handler.on_error(&socket, &mut e);
            let is_fatal = e.is_fatal();
            process_error(&mut socket, e, is_extended_query).await?;
            if is_fatal {
                break;
            }
        }
        if is_cancel_request {
            break;
        }
    }
    Ok(())
}

/// Tells the client why its message was refused, then ends the connection.
async fn refuse<S, C>(socket: &mut Framed<Guarded<S>, C>, why: Refusal) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: tokio_util::codec::Encoder<PgWireBackendMessage>,
{
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(why.to_error().into()))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(max: usize, budget: usize) -> Guarded<()> {
        Guarded::new(
            (),
            Limits {
                max_message: max,
                budget: Arc::new(Budget::new(budget)),
                sasl: false,
            },
        )
    }

    fn message(tag: u8, body_len: usize) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body_len + 4) as u32).to_be_bytes());
        // A Query's text and its NUL.
        m.resize(4 + body_len, b'x');
        m.push(0);
        m
    }

    #[test]
    fn lengths_are_followed_across_split_reads() {
        let mut g = guard(100, 1 << 30);
        let mut bytes = 9u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 3, 0, 0, 0]); // startup, no parameters
        bytes.extend(message(b'Q', 50));
        bytes.extend(message(b'Q', 96));
        for chunk in bytes.chunks(3) {
            g.feed(chunk).unwrap();
        }
        let big = message(b'Q', 97);
        assert_eq!(
            g.feed(&big[..5]),
            Err(Refusal::TooLong {
                length: 101,
                limit: 100
            })
        );
    }

    #[test]
    fn large_messages_share_a_budget() {
        let budget = Arc::new(Budget::new(3 << 20));
        let limits = Limits {
            max_message: 64 << 20,
            budget: budget.clone(),
            sasl: false,
        };
        let mut a = Guarded::new((), limits.clone());
        let mut b = Guarded::new((), limits);
        for g in [&mut a, &mut b] {
            g.feed(&9u32.to_be_bytes()).unwrap();
            g.feed(&[0, 3, 0, 0, 0]).unwrap();
        }
        a.feed(&message(b'Q', 2 << 20)[..5]).unwrap();
        assert!(matches!(
            b.feed(&message(b'Q', 2 << 20)[..5]),
            Err(Refusal::NoBudget { .. })
        ));
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_body_that_breaks_its_layout_is_refused_at_once() {
        let mut g = guard(1 << 20, 1 << 30);
        g.feed(&9u32.to_be_bytes()).unwrap();
        g.feed(&[0, 3, 0, 0, 0]).unwrap();
        g.feed(&message(b'Q', 10)).unwrap();
        // The `pgwire` fuzzer's find: a Bind with a count of -1 formats.
        let bind = [b'B', 0, 0, 0, 10, 0, 0, 0xff, 0xff, 0, 5];
        assert_eq!(
            g.feed(&bind),
            Err(Refusal::Malformed {
                kind: "Bind",
                problem: "has a negative count"
            })
        );
        assert!(g.refused().is_some());
        // The fuzzer's second find: CopyData with a length of 0.
        let mut g = guard(1 << 20, 1 << 30);
        g.feed(&9u32.to_be_bytes()).unwrap();
        g.feed(&[0, 3, 0, 0, 0]).unwrap();
        assert!(matches!(
            g.feed(&[b'd', 0, 0, 0, 0]),
            Err(Refusal::Malformed { .. })
        ));
    }
}
