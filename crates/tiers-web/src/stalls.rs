//! HTTP/2 responses waiting on a client that stopped granting
//! flow-control window. On HTTP/1.1 a client that stops reading makes the
//! socket's writes wait, which [`crate::send_timeout`] bounds; on HTTP/2 the
//! socket stays writable (pings still pass) while one stream's window stays
//! shut, so hyper simply stops asking that response's body for more.
//! Each response body on an HTTP/2 connection marks the time it handed a
//! frame out and clears it when asked for the next; the connection's
//! watchdog closes it once a mark is older than `send_timeout`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The waiting response bodies of one HTTP/2 connection.
#[derive(Default)]
pub struct Stalls {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Instant>>,
}

impl Stalls {
    /// A mark for one more response body.
    pub fn mark(self: &Arc<Self>) -> StallMark {
        StallMark {
            stalls: self.clone(),
            id: self.next.fetch_add(1, Ordering::Relaxed),
            waiting: false,
        }
    }

    /// How long the longest-waiting body has waited for the client.
    pub fn longest(&self) -> Option<Duration> {
        let waiting = self.waiting.lock().expect("stalls");
        waiting.values().min().map(Instant::elapsed)
    }
}

/// One response body's place in [`Stalls`].
pub struct StallMark {
    stalls: Arc<Stalls>,
    id: u64,
    waiting: bool,
}

impl StallMark {
    /// A frame went out: from now the body waits for the client.
    pub fn handed_out(&mut self) {
        self.stalls
            .waiting
            .lock()
            .expect("stalls")
            .insert(self.id, Instant::now());
        self.waiting = true;
    }

    /// The body is asked for more: it no longer waits.
    pub fn asked(&mut self) {
        if self.waiting {
            self.stalls.waiting.lock().expect("stalls").remove(&self.id);
            self.waiting = false;
        }
    }
}

impl Drop for StallMark {
    fn drop(&mut self) {
        self.asked();
    }
}
