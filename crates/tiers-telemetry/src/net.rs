//! Listener hygiene every tier shares: the process's descriptor limit and
//! an accept loop that survives errors.
//!
//! A server that stops accepting after one `accept()` error is silently
//! dead: running out of descriptors (EMFILE, ENFILE) or a client resetting
//! before accept (ECONNABORTED) are transient, so [`accept`] logs them
//! (at most once a second), backs off when the process is out of
//! descriptors, and keeps going. [`raise_fd_limit`] lifts the soft
//! descriptor limit to the hard one at start, as nginx's
//! `worker_rlimit_nofile` and PostgreSQL's `max_files_per_process` care for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Raises the soft limit on open descriptors to the hard limit; returns
/// the limit in force afterwards (`None` if it could not be read).
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct
    // passed by pointer, which lives on this stack frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Connections the kernel queues for a listener before accepting them
/// (std's default of 128 drops the SYNs of a burst, which clients then
/// resend only after a second or more).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener on `addr` with [`LISTEN_BACKLOG`] (and SO_REUSEADDR,
/// so a restarted tier can bind while old connections linger).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accept errors since the process started (all listeners).
static ACCEPT_ERRORS: AtomicU64 = AtomicU64::new(0);
/// When an accept error was last logged (seconds since the Unix epoch).
static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Accept errors since the process started, for `/metrics`.
pub fn accept_errors() -> u64 {
    ACCEPT_ERRORS.load(Ordering::Relaxed)
}

/// Accepts the next connection, riding out transient errors: a
/// descriptor shortage waits (10 ms, doubling up to 1 s) for connections
/// to close; other errors are retried at once. `what` names the listener
/// in the log line.
pub async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                ACCEPT_ERRORS.fetch_add(1, Ordering::Relaxed);
                log_rarely(what, &e);
                if out_of_descriptors(&e) {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn log_rarely(what: &str, e: &std::io::Error) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if LAST_LOGGED.swap(now, Ordering::Relaxed) != now {
        let hint = if out_of_descriptors(e) {
            " (out of file descriptors: raise `ulimit -n` or lower max_connections)"
        } else {
            ""
        };
        eprintln!("tiers: {what}: accept failed: {e}{hint}; still accepting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let raised = raise_fd_limit().expect("readable");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(raised, limit.rlim_cur);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
