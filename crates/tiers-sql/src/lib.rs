//! `tiers-sql`: the DB tier's relational layer on top of the storage engine.
//!
//! It turns tables into trees: SQL types and values ([`types`], [`value`]),
//! the row format ([`row`]), the catalog of tables and indexes stored in the
//! engine itself ([`catalog`]), and table access that enforces constraints
//! and maintains indexes ([`table`]). Every error carries its PostgreSQL
//! SQLSTATE ([`error`]).
//!
//! The SQL front end (parsing with `sqlparser`, planning and executing) and
//! the wire protocol build on this layer; the storage engine below knows
//! nothing of rows or types.

pub mod ast;
pub mod catalog;
pub mod copy;
pub mod error;
pub mod exec;
pub mod expr;
pub mod functions;
pub mod limits;
pub mod locks;
mod memo;
pub mod parse;
pub mod query;
pub mod reads;
pub mod row;
pub mod sequence;
pub mod table;
pub mod types;
pub mod value;

pub use error::{Result, SqlError};
pub use rust_decimal::Decimal;
pub use types::DataType;
pub use value::Value;
