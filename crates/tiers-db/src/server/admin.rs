//! What the DB tier's admin endpoint reports: `/health`, `/metrics`
//! (Prometheus text) and `/status` (JSON).

use super::*;

/// The DB tier's `/health`, `/metrics` and `/status`.
pub(super) struct DbAdmin {
    pub(super) shared: Arc<Shared>,
    pub(super) engine: Arc<Engine>,
}

impl tiers_telemetry::Admin for DbAdmin {
    fn health(&self) -> tiers_telemetry::Health {
        // A journal whose fsync failed refuses writes until restart.
        match self.engine.write_failure() {
            None => tiers_telemetry::Health {
                ok: true,
                detail: format!(
                    "accepting connections on {} ({} open)",
                    self.shared.listen,
                    self.shared.active.load(AtomicOrdering::Relaxed)
                ),
            },
            Some(why) => tiers_telemetry::Health {
                ok: false,
                detail: format!("storage refuses writes until restart: {why}"),
            },
        }
    }

    fn metrics(&self) -> String {
        let s = &self.shared;
        let db = &s.database;
        let mut p = tiers_telemetry::Prometheus::new("tiers_db");
        p.gauge(
            "connections",
            "Client connections open",
            s.active.load(AtomicOrdering::Relaxed) as f64,
        )
        .gauge(
            "max_connections",
            "Client connections allowed",
            s.max_connections as f64,
        )
        .gauge(
            "large_message_bytes",
            "Bytes of wire messages over 1 MiB held now (server-wide budget 1 GiB)",
            s.message_limits.budget.used() as f64,
        )
        .gauge(
            "transactions_open",
            "Explicit transactions open",
            db.open_transactions.load(AtomicOrdering::Relaxed) as f64,
        )
        .counter(
            "statements_total",
            "Statements run",
            s.statements.load(AtomicOrdering::Relaxed) as f64,
        )
        .counter(
            "statement_errors_total",
            "Statements that failed",
            s.failed_statements.load(AtomicOrdering::Relaxed) as f64,
        )
        .counter(
            "parse_cache_hits_total",
            "Statements built from a cached template instead of parsed",
            s.parse_cache_hits.load(AtomicOrdering::Relaxed) as f64,
        )
        .histogram(
            "statement_seconds",
            "Statement latency in seconds",
            &s.latency,
        )
        .counter(
            "lock_waits_total",
            "Waits for a row lock another transaction held",
            db.locks.waits() as f64,
        )
        .counter(
            "deadlocks_total",
            "Deadlocks detected",
            db.locks.deadlocks() as f64,
        )
        .gauge("row_locks_held", "Row locks held", db.locks.len() as f64);
        if self.engine.is_replicated() {
            let applied = self.engine.applied();
            p.gauge(
                "cluster_leader",
                "1 while this node is the cluster's leader and takes writes, 0 as a follower",
                u8::from(self.engine.accepts_writes()) as f64,
            )
            .gauge(
                "cluster_applied_lsn",
                "Log index of the last cluster entry applied here",
                applied.lsn as f64,
            )
            .gauge(
                "cluster_applied_term",
                "Term of the last cluster entry applied here",
                applied.term as f64,
            )
            .gauge(
                "cluster_log_first_lsn",
                "The oldest log record kept here; the ones before it were purged behind a snapshot",
                self.engine.journal().first_lsn() as f64,
            );
        }
        for (name, help, kind, value) in self.engine.metrics().fields() {
            let name = format!("storage_{name}");
            match kind {
                tiers_storage::MetricKind::Counter => p.counter(&name, help, value as f64),
                tiers_storage::MetricKind::Gauge => p.gauge(&name, help, value as f64),
            };
        }
        p.finish()
    }

    fn status(&self) -> serde_json::Value {
        let s = &self.shared;
        let m = self.engine.metrics();
        serde_json::json!({
            "tier": "db",
            "version": env!("CARGO_PKG_VERSION"),
            "listen": s.listen.to_string(),
            "uptime_seconds": s.started.elapsed().as_secs(),
            "connections": s.active.load(AtomicOrdering::Relaxed),
            "max_connections": s.max_connections,
            "large_message_bytes": s.message_limits.budget.used(),
            "transactions_open": s.database.open_transactions.load(AtomicOrdering::Relaxed),
            "statements": s.statements.load(AtomicOrdering::Relaxed),
            "statement_errors": s.failed_statements.load(AtomicOrdering::Relaxed),
            "statement_p99_seconds": s.latency.quantile(0.99),
            "parse_cache_hits": s.parse_cache_hits.load(AtomicOrdering::Relaxed),
            "lock_waits": s.database.locks.waits(),
            // A cluster member's role: the leader takes writes, a follower
            // is read-only and names the leader it knows of.
            "role": match (self.engine.is_replicated(), self.engine.accepts_writes()) {
                (false, _) => "single",
                (true, true) => "leader",
                (true, false) => "follower",
            },
            "leader": self.engine.leader_hint(),
            "applied_term": self.engine.applied().term,
            "log_first_lsn": self.engine.is_replicated().then(|| self.engine.journal().first_lsn()),
            "deadlocks": s.database.locks.deadlocks(),
            "storage": {
                "commits": m.commits,
                "rollbacks": m.rollbacks,
                "conflicts": m.conflicts,
                "buffer_pool_hit_ratio": m.pool_hit_ratio(),
                "buffer_pool_pages_cached": m.pool_pages_cached,
                "buffer_pool_pages_dirty": m.pool_pages_dirty,
                "commits_per_fsync": m.commits_per_fsync(),
                "last_lsn": m.last_lsn,
                "durable_lsn": m.durable_lsn,
                "checkpoint_lsn": m.checkpoint_lsn,
            },
        })
    }
}
