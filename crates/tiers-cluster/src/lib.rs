//! `tiers-cluster`: the DB tier as a Raft cluster (the book's redundancy,
//! liveness monitoring, master election and failover).
//!
//! Consensus itself is openraft's; this crate is the glue that makes the
//! storage engine a replicated state machine without a second log:
//! - [`log_store`]: the Raft log *is* the engine's journal (format v2: a
//!   term and a kind in every record). Appends share the journal's group
//!   fsync; an uncommitted suffix is cut durably; the vote and commit
//!   index live in two small state files beside the segments.
//! - [`state_machine`]: committed entries are applied to the engine with
//!   no second journal write; the applied position, term and membership
//!   come back from the engine's checkpoint after a restart, and openraft
//!   re-applies the committed entries after it.
//! - [`network`]: the cluster transport (length-prefixed postcard frames
//!   over TCP), with a fault layer that partitions nodes in the program
//!   itself, since the test machines have no netem or iptables.
//! - [`node`]: one member: starts Raft over an engine, proposes the
//!   engine's commits ([`tiers_storage::Replicator`]), and tracks the role
//!   (leader, follower, learner) that the SQL front end shows clients.

pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use node::{ClusterConfig, ClusterNode, Role, Status};

/// A cluster member's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// Where its cluster transport listens (`host:port`).
    pub raft: String,
    /// Where its SQL (PostgreSQL protocol) server listens.
    pub sql: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft {} sql {}", self.raft, self.sql)
    }
}

/// An application entry: one commit record (the engine's encoding), and
/// which node proposed it under which proposal id (so the proposer can
/// match the applied entry to its waiting commit). Only the record is
/// journaled: the origin matters only while the proposer waits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The proposing node.
    pub origin: u64,
    /// Its proposal id (0 when read back from the journal).
    pub proposal: u64,
    /// The commit record.
    pub record: Vec<u8>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command(origin {}, proposal {}, {} bytes)",
            self.origin,
            self.proposal,
            self.record.len()
        )
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

openraft::declare_raft_types!(
    /// The cluster's Raft types: one leader per term (the standard mode).
    pub TypeConfig:
        D = Command,
        R = u64,
        NodeId = u64,
        Node = NodeAddr,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

/// A Raft node of this cluster.
pub type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;
/// A log entry.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A log id (term and index).
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// A membership as stored with the log.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// A membership.
pub type Membership = openraft::Membership<u64, NodeAddr>;

/// Errors of the cluster glue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] tiers_storage::Error),
    /// Something could not be encoded or decoded.
    #[error("cluster encoding failed: {0}")]
    Codec(String),
    /// A configuration value is wrong.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// Raft refused or failed.
    #[error("raft: {0}")]
    Raft(String),
    /// Network I/O failed.
    #[error("cluster transport: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Encodes a value with postcard (the transport's and the state files' encoding).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::Codec(e.to_string()))
}

/// Decodes a postcard value.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Codec(e.to_string()))
}

/// An `io::Error` for openraft's storage traits, which report only those.
pub(crate) fn io_error(e: impl fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
