//! Per-statement limits: cancel requests and `statement_timeout`.
//!
//! A session runs one statement at a time on one thread. While it runs,
//! [`enter`] installs the statement's interrupt flag and deadline for that
//! thread; long loops (scans, joins, sorts, write loops) call [`check`],
//! which looks at them every few hundred rows and fails the statement with
//! SQLSTATE 57014 when a cancel request arrived or the time is up. The
//! statement then rolls back like any other failed statement.
//!
//! The same per-thread context carries what a statement may ask about its
//! server: whether this node is a cluster follower (`pg_is_in_recovery()`).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Result, SqlError};

struct Limits {
    interrupt: Arc<AtomicBool>,
    deadline: Option<Instant>,
    standby: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Limits>> = const { RefCell::new(None) };
    static COUNTER: Cell<u32> = const { Cell::new(0) };
}

/// Removes the statement's limits when dropped.
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Installs limits for the statement about to run on this thread;
/// `standby` says whether it runs on a cluster follower.
pub fn enter(interrupt: Arc<AtomicBool>, timeout: Option<Duration>, standby: bool) -> Guard {
    interrupt.store(false, Ordering::Relaxed);
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Limits {
            interrupt,
            deadline: timeout.map(|t| Instant::now() + t),
            standby,
        })
    });
    Guard(())
}

/// Whether the running statement runs on a cluster follower (a hot
/// standby, as `pg_is_in_recovery()` reports it); false outside a statement.
pub fn in_recovery() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|l| l.standby))
}

/// Fails with 57014 if the running statement was cancelled or ran out of
/// time. Cheap: it looks only every 256th call.
pub fn check() -> Result<()> {
    let n = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    if !n.is_multiple_of(256) {
        return Ok(());
    }
    check_now()
}

/// Like [`check`], but always looks.
pub fn check_now() -> Result<()> {
    CURRENT.with(|c| match &*c.borrow() {
        None => Ok(()),
        Some(l) => {
            if l.interrupt.load(Ordering::Relaxed) {
                return Err(SqlError::new(
                    "57014",
                    "canceling statement due to user request",
                ));
            }
            if l.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SqlError::new(
                    "57014",
                    "canceling statement due to statement timeout",
                ));
            }
            Ok(())
        }
    })
}

/// Parses a PostgreSQL duration setting (`5000` = ms, `5s`, `2min`, `1h`,
/// `250ms`; `0` = off).
pub fn parse_duration(value: &str) -> Option<Option<Duration>> {
    let v = value.trim().trim_matches('\'').to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some((ms > 0).then(|| Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Some(None));
        assert_eq!(
            parse_duration("1500"),
            Some(Some(Duration::from_millis(1500)))
        );
        assert_eq!(parse_duration("2s"), Some(Some(Duration::from_secs(2))));
        assert_eq!(
            parse_duration("'1min'"),
            Some(Some(Duration::from_secs(60)))
        );
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn interrupt_and_deadline_fail_the_statement() {
        let flag = Arc::new(AtomicBool::new(false));
        {
            let _g = enter(flag.clone(), None, false);
            assert!(check_now().is_ok());
            flag.store(true, Ordering::Relaxed);
            assert_eq!(check_now().unwrap_err().code, "57014");
        }
        assert!(check_now().is_ok(), "limits end with the statement");
        let _g = enter(flag.clone(), Some(Duration::from_millis(1)), false);
        std::thread::sleep(Duration::from_millis(5));
        let e = check_now().unwrap_err();
        assert!(e.message.contains("statement timeout"));
    }

    #[test]
    fn the_standby_flag_lasts_as_long_as_the_statement() {
        let flag = Arc::new(AtomicBool::new(false));
        assert!(!in_recovery(), "outside a statement");
        {
            let _g = enter(flag.clone(), None, true);
            assert!(in_recovery());
        }
        assert!(!in_recovery(), "the flag ends with the statement");
        let _g = enter(flag, None, false);
        assert!(!in_recovery());
    }
}
