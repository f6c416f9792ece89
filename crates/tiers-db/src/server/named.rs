//! The named prepared statements and portals of one connection, counted
//! against per-connection caps so a client cannot grow the server by
//! preparing a new name for every query.

use pgwire::error::PgWireResult;
use tiers_sql::SqlError;

use super::user_error;

/// Named prepared statements one connection may hold; one more is refused
/// (54000) until it closes some. Each holds a parsed statement and its
/// plans, so the cap bounds a connection's memory.
pub const MAX_NAMED_STATEMENTS: usize = 1000;

/// Named portals one connection may hold (they live until closed).
pub const MAX_NAMED_PORTALS: usize = 100;

/// The named objects of one connection (the unnamed ones are replaced,
/// never accumulate).
#[derive(Default)]
pub(super) struct Named {
    pub(super) statements: std::collections::HashSet<String>,
    pub(super) portals: std::collections::HashSet<String>,
}

impl Named {
    /// Records `name` in `set`, refusing a new one beyond `cap`.
    pub(super) fn admit(
        set: &mut std::collections::HashSet<String>,
        name: &str,
        cap: usize,
        what: &str,
    ) -> PgWireResult<()> {
        if name.is_empty() || set.contains(name) {
            return Ok(());
        }
        if set.len() >= cap {
            return Err(user_error(&SqlError::new(
                tiers_sql::error::sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "this connection already holds {cap} named {what}s, the server's limit; \
                     close ones it no longer needs (a Close message, or DEALLOCATE) \
                     before making more"
                ),
            )));
        }
        set.insert(name.to_owned());
        Ok(())
    }
}
