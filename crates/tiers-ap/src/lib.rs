//! The AP tier of tiers: the application server in the middle of the
//! book's three-tier system (웹 서버부터 AP 서버까지).
//!
//! An application is a folder of SQL, templates and static files
//! ([`app`]); its schema is a list of migrations applied once each, in
//! order, over the PostgreSQL protocol ([`migrate`]), so the same folder
//! runs against `tiers db` or against PostgreSQL itself. SQL with named
//! parameters is bound safely and its rows become typed JSON ([`query`]).
//! Routes, the
//! connection pool, the cache and the automatic REST API build on these.

pub mod api;
pub mod app;
pub mod cache;
pub mod guard;
pub mod migrate;
pub mod query;
pub mod routes;
pub mod server;
pub mod templates;

pub use app::{App, AppError, Migration};
pub use migrate::{MigrateError, Report};
pub use server::{ApConfig, ApError, ApServer};
