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
