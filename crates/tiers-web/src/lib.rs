//! The web tier of tiers: the front door of the book's three-tier system.
//!
//! Like the book's web server, it reads each request and decides: a file
//! that exists under a static root is read from disk (through an
//! open-file and content cache) and returned; anything else goes over the
//! network to an AP server (웹 데이터 흐름). On that path sit the book's
//! redundancy mechanisms: load balancing over a pool of AP servers, passive
//! and active health checks, retries and failover, and a bounded queue
//! that answers 503 instead of collapsing under overload.
//!
//! - [`config`]: the `[web]` section of `tiers.toml`.
//! - [`server`]: listener, connection limits, TLS, HTTP/1.1 and HTTP/2,
//!   reload and graceful shutdown.
//! - `router`: routes, body limits, access log and counters per request.
//! - [`files`] and [`path`]: static files, never outside the root.
//! - [`proxy`]: pools, balancing, health, retries, forwarding headers.
//! - `admin`: `/health`, `/metrics`, `/status`.

pub mod accesslog;
mod admin;
pub mod body;
pub mod config;
mod connection;
pub mod files;
pub mod metrics;
pub mod mime;
pub mod path;
pub mod proxy;
mod router;
mod send_timeout;
pub mod server;
mod stalls;

pub use admin::WebAdmin;
pub use config::Config;
pub use server::{Handle, Server, WebError};
