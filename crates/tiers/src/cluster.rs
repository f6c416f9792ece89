//! `tiers db --node-id ...`: the DB tier as a member of a Raft cluster.
//!
//! Every member is started with the same `--peers` list (the founding
//! voters); the one with the lowest id founds the cluster on first start.
//! The member's engine runs in replicated mode: only the leader takes
//! writes, followers serve reads and answer `SHOW transaction_read_only`
//! with `on`, so `target_session_attrs=read-write` finds the leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tiers_cluster::{ClusterConfig, ClusterNode, NodeAddr};
use tiers_storage::Engine;

/// Cluster flags of `tiers db`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClusterFlags {
    /// Run as member NODE_ID of a cluster (a positive number, unique and
    /// never reused); needs --peers.
    #[arg(long)]
    pub node_id: Option<u64>,
    /// The founding voters, this node among them, each as
    /// ID=RAFT_ADDR/SQL_ADDR, comma-separated:
    /// 1=127.0.0.1:7001/127.0.0.1:5433,2=...,3=...
    #[arg(long)]
    pub peers: Option<String>,
    /// How often the leader sends heartbeats, in milliseconds (default 50).
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// The range a follower waits without hearing from a leader before it
    /// starts an election, in milliseconds, as MIN-MAX (default 300-600).
    /// All members of a cluster should use the same values.
    #[arg(long, value_name = "MIN-MAX")]
    pub election_timeout_ms: Option<String>,
    /// How long a commit waits for a majority before its client gets 08007
    /// (outcome unknown), in milliseconds (default 5000).
    #[arg(long, value_name = "MS")]
    pub commit_timeout_ms: Option<u64>,
    /// Build a snapshot, and purge the log behind it, each time the log has
    /// grown by this many KiB (default 262144, i.e. 256 MiB; at least 64).
    #[arg(long, value_name = "KIB")]
    pub snapshot_every_kib: Option<u64>,
    /// Log entries kept behind a snapshot, so that a follower a little
    /// behind catches up from the log instead of a whole snapshot
    /// (default 10000).
    #[arg(long, value_name = "ENTRIES")]
    pub log_entries_kept: Option<u64>,
}

/// Applies the timing flags to `config`, refusing values a cluster cannot
/// run with: the election timeout must leave room for several heartbeats
/// (a follower would otherwise start elections against a live leader).
pub fn apply_timing(flags: &ClusterFlags, config: &mut ClusterConfig) -> Result<(), String> {
    if let Some(ms) = flags.heartbeat_ms {
        if ms == 0 {
            return Err("--heartbeat-ms must be at least 1".into());
        }
        config.heartbeat = Duration::from_millis(ms);
    }
    if let Some(text) = flags.election_timeout_ms.as_deref() {
        let bad = || {
            format!(
                "--election-timeout-ms \"{text}\" is not MIN-MAX in milliseconds (e.g. 300-600)"
            )
        };
        let (min, max) = text.split_once('-').ok_or_else(bad)?;
        let min: u64 = min.trim().parse().map_err(|_| bad())?;
        let max: u64 = max.trim().parse().map_err(|_| bad())?;
        if min >= max {
            return Err(format!(
                "--election-timeout-ms {text}: MIN must be below MAX, so that members time out at different moments"
            ));
        }
        config.election_timeout = (Duration::from_millis(min), Duration::from_millis(max));
    }
    if let Some(ms) = flags.commit_timeout_ms {
        if ms == 0 {
            return Err("--commit-timeout-ms must be at least 1".into());
        }
        config.commit_timeout = Duration::from_millis(ms);
    }
    if let Some(kib) = flags.snapshot_every_kib {
        if kib < 64 {
            return Err(format!(
                "--snapshot-every-kib {kib} is below 64: a snapshot holds the whole database, so building one for every few commits would cost more than it saves"
            ));
        }
        config.snapshot_log_bytes = kib.saturating_mul(1024);
    }
    if let Some(n) = flags.log_entries_kept {
        config.log_entries_kept = n;
    }
    let heartbeat = config.heartbeat.as_millis();
    let election_min = config.election_timeout.0.as_millis();
    if election_min < 3 * heartbeat {
        return Err(format!(
            "the election timeout ({election_min} ms at least) must be at least 3 heartbeats ({heartbeat} ms each): raise --election-timeout-ms or lower --heartbeat-ms"
        ));
    }
    Ok(())
}

/// Parses `--peers`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, NodeAddr>, String> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            format!(
                "--peers entry \"{part}\" is not ID=RAFT_ADDR/SQL_ADDR (e.g. 1=127.0.0.1:7001/127.0.0.1:5433)"
            )
        };
        let (id, addrs) = part.split_once('=').ok_or_else(bad)?;
        let (raft, sql) = addrs.split_once('/').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        if id == 0 {
            return Err(format!("--peers entry \"{part}\": node ids start at 1"));
        }
        for addr in [raft, sql] {
            addr.parse::<std::net::SocketAddr>()
                .map_err(|e| format!("--peers entry \"{part}\": \"{addr}\": {e}"))?;
        }
        let node = NodeAddr {
            raft: raft.into(),
            sql: sql.into(),
        };
        if peers.insert(id, node).is_some() {
            return Err(format!("--peers names node {id} twice"));
        }
    }
    if peers.is_empty() {
        return Err("--peers is empty".into());
    }
    Ok(peers)
}

/// Opens the replicated engine and starts the member.
pub async fn start(
    flags: &ClusterFlags,
    data_dir: &std::path::Path,
    storage: tiers_storage::Config,
) -> Result<(Arc<Engine>, ClusterNode), String> {
    let id = flags.node_id.ok_or("--peers needs --node-id")?;
    let peers = parse_peers(flags.peers.as_deref().ok_or("--node-id needs --peers")?)?;
    let me = peers
        .get(&id)
        .cloned()
        .ok_or_else(|| format!("--peers does not name this node ({id})"))?;
    let storage = tiers_storage::Config {
        replicated: true,
        ..storage
    };
    let dir = data_dir.to_path_buf();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&dir, storage))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("opening {}: {e}", data_dir.display()))?;
    let engine = Arc::new(engine);
    let mut config = ClusterConfig::new(id, me);
    config.founders = peers;
    apply_timing(flags, &mut config)?;
    let journal = data_dir.join(tiers_storage::JOURNAL_DIR);
    let node = ClusterNode::start(engine.clone(), &journal, config)
        .await
        .map_err(|e| format!("starting cluster member {id}: {e}"))?;
    Ok((engine, node))
}

/// Creates the SQL catalog whenever this member leads a cluster that has
/// none yet (the first leader does it once; it replicates from there).
pub async fn keep_catalog(database: Arc<tiers_sql::exec::Database>) {
    loop {
        if database.engine.accepts_writes() {
            let db = database.clone();
            let _ = tokio::task::spawn_blocking(move || db.ensure_catalog()).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_flags_apply_and_unworkable_values_are_refused() {
        let addr = NodeAddr {
            raft: "127.0.0.1:7001".into(),
            sql: "127.0.0.1:5433".into(),
        };
        let mut config = ClusterConfig::new(1, addr.clone());
        let flags = ClusterFlags {
            heartbeat_ms: Some(20),
            election_timeout_ms: Some("100-200".into()),
            commit_timeout_ms: Some(1500),
            snapshot_every_kib: Some(128),
            log_entries_kept: Some(5),
            ..ClusterFlags::default()
        };
        apply_timing(&flags, &mut config).unwrap();
        assert_eq!(config.heartbeat, Duration::from_millis(20));
        assert_eq!(
            config.election_timeout,
            (Duration::from_millis(100), Duration::from_millis(200))
        );
        assert_eq!(config.commit_timeout, Duration::from_millis(1500));
        assert_eq!(
            (config.snapshot_log_bytes, config.log_entries_kept),
            (128 << 10, 5)
        );
        for (flags, says) in [
            (
                ClusterFlags {
                    election_timeout_ms: Some("300".into()),
                    ..ClusterFlags::default()
                },
                "is not MIN-MAX",
            ),
            (
                ClusterFlags {
                    election_timeout_ms: Some("600-300".into()),
                    ..ClusterFlags::default()
                },
                "MIN must be below MAX",
            ),
            (
                ClusterFlags {
                    heartbeat_ms: Some(200),
                    ..ClusterFlags::default()
                },
                "at least 3 heartbeats",
            ),
            (
                ClusterFlags {
                    commit_timeout_ms: Some(0),
                    ..ClusterFlags::default()
                },
                "at least 1",
            ),
            (
                ClusterFlags {
                    snapshot_every_kib: Some(1),
                    ..ClusterFlags::default()
                },
                "below 64",
            ),
        ] {
            let mut config = ClusterConfig::new(1, addr.clone());
            let err = apply_timing(&flags, &mut config).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn peers_parse_and_mistakes_are_named() {
        let p = parse_peers("1=127.0.0.1:7001/127.0.0.1:5433, 2=127.0.0.1:7002/127.0.0.1:5434")
            .unwrap();
        assert_eq!(p[&2].sql, "127.0.0.1:5434");
        for (bad, says) in [
            ("1=127.0.0.1:7001", "ID=RAFT_ADDR/SQL_ADDR"),
            ("0=127.0.0.1:1/127.0.0.1:2", "start at 1"),
            ("1=a:1/127.0.0.1:2", "\"a:1\""),
            (
                "1=127.0.0.1:1/127.0.0.1:2,1=127.0.0.1:3/127.0.0.1:4",
                "twice",
            ),
            ("", "empty"),
        ] {
            let e = parse_peers(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
