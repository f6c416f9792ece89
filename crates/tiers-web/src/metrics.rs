//! Counters of the web tier, read by the admin endpoint.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tiers_telemetry::Histogram;

/// Everything counted across reloads (per-pool and per-file-cache numbers
/// live with the pools and the cache).
pub struct Metrics {
    by_status: Box<[AtomicU64]>,
    /// Request latency, head received to last body byte sent.
    pub latency: Histogram,
    /// Client connections open.
    pub connections_open: AtomicUsize,
    /// Client connections with a request in flight.
    pub connections_active: AtomicUsize,
    /// Idle HTTP/1.1 connections parked without buffers.
    pub connections_parked: AtomicUsize,
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections refused by `max_connections` or the per-IP limit.
    pub connections_refused: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: AtomicU64,
    /// Response body bytes sent.
    pub bytes_out: AtomicU64,
    /// Request body bytes received.
    pub bytes_in: AtomicU64,
    /// Responses served from static files.
    pub static_responses: AtomicU64,
    /// Responses from upstream pools (including the proxy's own errors).
    pub proxied_responses: AtomicU64,
    /// Successful configuration reloads.
    pub reloads: AtomicU64,
    /// Request body bytes buffered now, all connections together (the
    /// budget `max_buffered_body_bytes` bounds).
    pub buffered_body_bytes: AtomicU64,
    /// Requests refused because the body budget was used up (503).
    pub body_budget_refusals: AtomicU64,
    /// Connections closed because the client stopped reading a response.
    pub send_timeouts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            latency: Histogram::default(),
            connections_open: AtomicUsize::new(0),
            connections_active: AtomicUsize::new(0),
            connections_parked: AtomicUsize::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            static_responses: AtomicU64::new(0),
            proxied_responses: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            buffered_body_bytes: AtomicU64::new(0),
            body_budget_refusals: AtomicU64::new(0),
            send_timeouts: AtomicU64::new(0),
        }
    }
}

/// Bytes held against [`Metrics::buffered_body_bytes`]; given back when
/// dropped (after the request was forwarded, or refused).
pub struct BodyReservation<'a> {
    counter: &'a AtomicU64,
    held: u64,
}

impl<'a> BodyReservation<'a> {
    /// An empty reservation against `counter`.
    pub fn new(counter: &'a AtomicU64) -> BodyReservation<'a> {
        BodyReservation { counter, held: 0 }
    }

    /// Takes `n` more bytes if the total stays within `budget`.
    pub fn grow(&mut self, n: u64, budget: u64) -> bool {
        let taken = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur + n <= budget).then_some(cur + n)
            })
            .is_ok();
        if taken {
            self.held += n;
        }
        taken
    }
}

impl Drop for BodyReservation<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.held, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a response.
    pub fn count_status(&self, status: u16) {
        if (100..600).contains(&status) {
            self.by_status[usize::from(status - 100)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Non-zero counts by status code.
    pub fn statuses(&self) -> Vec<(u16, u64)> {
        self.by_status
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((i as u16 + 100, n))
            })
            .collect()
    }

    /// All responses.
    pub fn requests(&self) -> u64 {
        self.statuses().iter().map(|(_, n)| n).sum()
    }
}
