//! `tiers-db`: the DB tier's network server (`tiers db`).
//!
//! It speaks the PostgreSQL wire protocol (through the `pgwire` crate), so
//! psql, pgbench, tokio-postgres and every other PostgreSQL driver are its
//! clients. Each connection gets a [`tiers_sql::exec::Session`]; writes run
//! on blocking threads (they may wait for a journal fsync) while the
//! protocol runs on the async runtime. Authentication is trust when no user
//! is configured (the listener binds loopback by default), else
//! SCRAM-SHA-256 ([`auth`]); TLS is optional. Cancel requests, timeouts,
//! connection and statement limits, COPY, and the admin report are here.

pub mod auth;
mod server;
pub mod wire;

pub use server::{Server, ServerConfig};
