//! `tiers-telemetry`: what every tier exposes about itself — the book's
//! bird's-eye view (조감도) starts here.
//!
//! - [`Histogram`]: a lock-free latency histogram with fixed buckets.
//! - [`Prometheus`]: a builder for the Prometheus text exposition format.
//! - [`serve_admin`]: the admin HTTP endpoint, `/health`, `/metrics`
//!   (Prometheus text) and `/status` (JSON), answering from an [`Admin`]
//!   implementation the tier provides.
//! - [`net`]: the descriptor limit and an accept loop that survives
//!   errors, for every tier's listeners.

mod admin;
mod histogram;
pub mod net;
mod prometheus;

pub use admin::{Admin, Health, serve_admin};
pub use histogram::Histogram;
pub use prometheus::Prometheus;
