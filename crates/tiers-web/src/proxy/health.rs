//! Whether an upstream server should get requests: passive checks (real
//! requests failing, nginx's max_fails/fail_timeout; the book's MII
//! monitoring of the link itself) and active checks (probing a health path
//! at an interval with rise/fall thresholds, HAProxy's inter/rise/fall; the
//! book's ARP monitoring of a peer), plus slow start after recovery.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::config::PoolConfig;

/// Which kind of check last changed a server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Real requests failed (or the fail timeout ran out).
    Passive,
    /// Health probes failed or succeeded `fall`/`rise` times in a row.
    Active,
}

impl Cause {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Passive => "passive",
            Cause::Active => "active",
        }
    }
}

/// The last state change of a server.
#[derive(Debug, Clone)]
pub struct Change {
    /// Up after the change.
    pub up: bool,
    /// Which check made it.
    pub cause: Cause,
    /// When.
    pub at: SystemTime,
    /// Why, for humans.
    pub detail: String,
}

/// Health of one upstream server.
pub struct Health {
    epoch: Instant,
    active_down: AtomicBool,
    /// Milliseconds since `epoch` until which passive checks keep it out.
    passive_until_ms: AtomicU64,
    failures: Mutex<VecDeque<Instant>>,
    good_probes: AtomicU32,
    bad_probes: AtomicU32,
    /// Milliseconds since `epoch` when it last came back (slow start).
    up_since_ms: AtomicU64,
    last_change: Mutex<Option<Change>>,
    /// Probes sent.
    pub probes: AtomicU64,
    /// Probes that failed.
    pub probes_failed: AtomicU64,
    /// Requests that failed (connect errors, timeouts, 502-504).
    pub failures_total: AtomicU64,
}

impl Health {
    /// A server presumed up (and, with slow start, warming up from now).
    pub fn new(epoch: Instant) -> Health {
        Health {
            epoch,
            active_down: AtomicBool::new(false),
            passive_until_ms: AtomicU64::new(0),
            failures: Mutex::new(VecDeque::new()),
            good_probes: AtomicU32::new(0),
            bad_probes: AtomicU32::new(0),
            up_since_ms: AtomicU64::new(0),
            last_change: Mutex::new(None),
            probes: AtomicU64::new(0),
            probes_failed: AtomicU64::new(0),
            failures_total: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether requests may go to it now.
    pub fn available(&self) -> bool {
        !self.active_down.load(Ordering::Relaxed)
            && self.now_ms() >= self.passive_until_ms.load(Ordering::Relaxed)
    }

    /// Down by active checks.
    pub fn active_down(&self) -> bool {
        self.active_down.load(Ordering::Relaxed)
    }

    /// Time left out by passive checks.
    pub fn passive_remaining(&self) -> Duration {
        let until = self.passive_until_ms.load(Ordering::Relaxed);
        Duration::from_millis(until.saturating_sub(self.now_ms()))
    }

    /// Share of its weight it should get now, 0.0 to 1.0 (slow start).
    pub fn warmth(&self, slow_start: Duration) -> f64 {
        if slow_start.is_zero() {
            return 1.0;
        }
        let since = self.up_since_ms.load(Ordering::Relaxed);
        if since == 0 {
            return 1.0;
        }
        let elapsed = self.now_ms().saturating_sub(since) as f64;
        (elapsed / slow_start.as_millis() as f64).clamp(0.0, 1.0)
    }

    /// The last change, if any.
    pub fn last_change(&self) -> Option<Change> {
        self.last_change.lock().expect("change").clone()
    }

    fn changed(&self, up: bool, cause: Cause, detail: String) {
        if up {
            // Never 0, which means "never went down".
            self.up_since_ms
                .store(self.now_ms().max(1), Ordering::Relaxed);
        }
        *self.last_change.lock().expect("change") = Some(Change {
            up,
            cause,
            at: SystemTime::now(),
            detail,
        });
    }

    /// A real request to it failed.
    pub fn record_failure(&self, config: &PoolConfig, what: &str) {
        self.failures_total.fetch_add(1, Ordering::Relaxed);
        if config.max_fails == 0 {
            return;
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("failures");
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > config.fail_window)
        {
            failures.pop_front();
        }
        failures.push_back(now);
        if failures.len() as u32 >= config.max_fails {
            failures.clear();
            let was_in = self.available();
            self.passive_until_ms.store(
                self.now_ms() + config.fail_timeout.as_millis() as u64,
                Ordering::Relaxed,
            );
            if was_in {
                self.changed(
                    false,
                    Cause::Passive,
                    format!(
                        "{} failures within {:?} (last: {what}); out for {:?}",
                        config.max_fails, config.fail_window, config.fail_timeout
                    ),
                );
            }
        }
    }

    /// Notes that a passive timeout ran out, once, when it is next asked.
    pub fn note_passive_expiry(&self) {
        let until = self.passive_until_ms.load(Ordering::Relaxed);
        if until != 0
            && self.now_ms() >= until
            && self
                .passive_until_ms
                .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && !self.active_down()
        {
            self.changed(
                true,
                Cause::Passive,
                "fail timeout ran out; trying again".into(),
            );
        }
    }

    /// The result of one active probe.
    pub fn record_probe(&self, config: &PoolConfig, ok: bool, detail: &str) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.bad_probes.store(0, Ordering::Relaxed);
            let good = self.good_probes.fetch_add(1, Ordering::Relaxed) + 1;
            if self.active_down() && good >= config.rise {
                self.active_down.store(false, Ordering::Relaxed);
                self.passive_until_ms.store(0, Ordering::Relaxed);
                self.failures.lock().expect("failures").clear();
                self.changed(true, Cause::Active, format!("{good} good probes in a row"));
            }
        } else {
            self.probes_failed.fetch_add(1, Ordering::Relaxed);
            self.good_probes.store(0, Ordering::Relaxed);
            let bad = self.bad_probes.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.active_down() && bad >= config.fall {
                self.active_down.store(true, Ordering::Relaxed);
                self.changed(
                    false,
                    Cause::Active,
                    format!("{bad} failed probes in a row (last: {detail})"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PoolConfig {
        PoolConfig {
            max_fails: 2,
            fail_window: Duration::from_secs(10),
            fail_timeout: Duration::from_millis(50),
            rise: 2,
            fall: 2,
            ..PoolConfig::default()
        }
    }

    #[test]
    fn passive_failures_take_it_out_for_the_fail_timeout() {
        let h = Health::new(Instant::now());
        let c = config();
        h.record_failure(&c, "refused");
        assert!(h.available());
        h.record_failure(&c, "refused");
        assert!(!h.available());
        assert_eq!(h.last_change().unwrap().cause, Cause::Passive);
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.available());
        h.note_passive_expiry();
        assert!(h.last_change().unwrap().up);
    }

    #[test]
    fn active_probes_need_fall_and_rise_in_a_row() {
        let h = Health::new(Instant::now());
        let c = config();
        h.record_probe(&c, false, "503");
        h.record_probe(&c, true, "");
        h.record_probe(&c, false, "503");
        assert!(h.available(), "not two in a row");
        h.record_probe(&c, false, "503");
        assert!(!h.available());
        h.record_probe(&c, true, "");
        assert!(!h.available());
        h.record_probe(&c, true, "");
        assert!(h.available());
        let change = h.last_change().unwrap();
        assert!(change.up && change.cause == Cause::Active);
    }

    #[test]
    fn slow_start_ramps_after_recovery() {
        let h = Health::new(Instant::now());
        let c = config();
        assert_eq!(h.warmth(Duration::from_secs(10)), 1.0, "never went down");
        for _ in 0..2 {
            h.record_probe(&c, false, "x");
        }
        for _ in 0..2 {
            h.record_probe(&c, true, "");
        }
        assert!(h.warmth(Duration::from_secs(10)) < 0.1);
        assert_eq!(h.warmth(Duration::ZERO), 1.0);
    }
}
