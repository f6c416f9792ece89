//! The one response (and upstream request) body type of the web tier.
//!
//! A body is bytes already in memory (a cached file, an error page, a
//! buffered request), a file streamed from disk in large chunks read on
//! blocking threads, or an upstream's response streamed through. Whatever
//! it is, when it ends or is dropped it reports how many bytes went out, so
//! the access log and the byte counters see the whole response.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future as _;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::proxy::UpstreamBody;
use crate::stalls::{StallMark, Stalls};

/// Errors while producing a body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Called once with the body bytes sent when the body ends or is dropped.
pub type OnDone = Box<dyn FnOnce(u64) + Send>;

/// Chunk size for files streamed from disk.
const FILE_CHUNK: u64 = 256 << 10;

/// A response or request body.
pub struct Body {
    kind: Kind,
    sent: u64,
    on_done: Option<OnDone>,
    /// On HTTP/2: when this body last waited for the client's window.
    stall: Option<StallMark>,
}

enum Kind {
    Bytes(VecDeque<Bytes>),
    File(FileStream),
    Upstream(UpstreamBody),
}

struct FileStream {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    pending: Option<JoinHandle<io::Result<Bytes>>>,
}

impl Body {
    fn new(kind: Kind) -> Body {
        Body {
            kind,
            sent: 0,
            on_done: None,
            stall: None,
        }
    }

    /// No body.
    pub fn empty() -> Body {
        Body::new(Kind::Bytes(VecDeque::new()))
    }

    /// Bytes in memory.
    pub fn bytes(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        let mut q = VecDeque::new();
        if !b.is_empty() {
            q.push_back(b);
        }
        Body::new(Kind::Bytes(q))
    }

    /// Several pieces in memory, sent in order (multipart ranges).
    pub fn pieces(parts: Vec<Bytes>) -> Body {
        Body::new(Kind::Bytes(
            parts.into_iter().filter(|b| !b.is_empty()).collect(),
        ))
    }

    /// `len` bytes of `file` from `offset`, read in large chunks.
    pub fn file(file: Arc<File>, offset: u64, len: u64) -> Body {
        Body::new(Kind::File(FileStream {
            file,
            offset,
            remaining: len,
            pending: None,
        }))
    }

    /// An upstream response streamed through.
    pub fn upstream(body: UpstreamBody) -> Body {
        Body::new(Kind::Upstream(body))
    }

    /// Runs `f` with the bytes sent once the body is finished or dropped.
    pub fn on_done(mut self, f: OnDone) -> Body {
        self.on_done = Some(f);
        self
    }

    /// Marks in `stalls` how long this body waits for the client between
    /// frames (HTTP/2 responses; see [`crate::stalls`]).
    pub fn watch_stalls(mut self, stalls: &Arc<Stalls>) -> Body {
        self.stall = Some(stalls.mark());
        self
    }

    fn finish(&mut self) {
        if let Some(f) = self.on_done.take() {
            f(self.sent);
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.finish();
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(m) = &mut this.stall {
            m.asked();
        }
        let polled = match &mut this.kind {
            Kind::Bytes(q) => Poll::Ready(q.pop_front().map(|b| Ok(Frame::data(b)))),
            Kind::File(f) => f.poll_chunk(cx),
            Kind::Upstream(u) => Pin::new(u).poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                    if let Some(m) = &mut this.stall {
                        m.handed_out();
                    }
                }
            }
            Poll::Ready(None) => {
                this.stall = None;
                this.finish();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Bytes(q) => q.is_empty(),
            Kind::File(f) => f.remaining == 0 && f.pending.is_none(),
            Kind::Upstream(u) => u.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Bytes(q) => SizeHint::with_exact(q.iter().map(|b| b.len() as u64).sum()),
            Kind::File(f) => SizeHint::with_exact(f.remaining),
            Kind::Upstream(u) => u.size_hint(),
        }
    }
}

impl FileStream {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.pending.is_none() {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            let want = self.remaining.min(FILE_CHUNK);
            let (file, offset) = (self.file.clone(), self.offset);
            self.pending = Some(tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want as usize];
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read_at(&mut buf[filled..], offset + filled as u64) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shrank while being sent",
                            ));
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(Bytes::from(buf))
            }));
        }
        let handle = self.pending.as_mut().expect("set above");
        let result = ready!(Pin::new(handle).poll(cx));
        self.pending = None;
        match result {
            Ok(Ok(chunk)) => {
                self.offset += chunk.len() as u64;
                self.remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Ok(Err(e)) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Err(e) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }
}
