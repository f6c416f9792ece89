//! Helpers shared by the workspace's integration tests.
//!
//! Tests that start a server in a child process must name its port in
//! advance. Asking the kernel for one (`bind` to port 0, then close it)
//! hands out a port from the ephemeral range, which the kernel goes on
//! handing out: to the next `bind(0)` and to every outgoing connection of
//! the tests running alongside. Between the close and the child's own
//! bind another socket can take it, and the child fails with "Address
//! already in use" (this happened in CI). [`free_port`] instead takes
//! ports below the ephemeral range, which the kernel never assigns on its
//! own, each one once per process, and only ports that bind right now.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// First port handed out; above the well-known services most machines run.
const LOW: u32 = 20_000;
/// One past the last port: where Linux's default ephemeral range starts.
const HIGH: u32 = 32_768;
/// Ports reserved per test process, so that test binaries running at the
/// same time (one per crate under `cargo test -j`) start apart.
const STRIDE: u32 = 500;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback TCP port that nothing is listening on and that no other call
/// in this process has returned or will return.
///
/// # Panics
/// When every port of the range is taken, which means something is leaking
/// listeners.
pub fn free_port() -> u16 {
    let span = HIGH - LOW;
    let start = (std::process::id() % (span / STRIDE)) * STRIDE;
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (start + offset) % span;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free loopback port in {LOW}..{HIGH}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let unique: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|&p| (LOW..HIGH).contains(&(p as u32))));
    }
}
