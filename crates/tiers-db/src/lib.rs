//! `tiers-db`: the DB tier's network server (`tiers db`).
//!
//! It speaks the PostgreSQL wire protocol (through the `pgwire` crate), so
//! psql, pgbench, tokio-postgres and every other PostgreSQL driver are its
//! clients. Each connection gets a [`tiers_sql::exec::Session`]; statements
//! run on blocking threads (they may wait for a journal fsync) while the
//! protocol runs on the async runtime. Authentication is "trust" for every
//! client (the listener binds loopback by default); TLS, SCRAM, cancel,
//! limits and the admin endpoint are still to come.

mod server;
pub mod wire;

pub use server::{Server, ServerConfig};
