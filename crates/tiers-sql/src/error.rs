//! SQL errors, each with the PostgreSQL SQLSTATE a client expects.

use tiers_storage::Error as StorageError;

/// An error a SQL statement can end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// The five-character SQLSTATE code (e.g. `23505` for unique_violation).
    pub code: &'static str,
    /// What went wrong, for the client.
    pub message: String,
}

/// SQLSTATE codes used by tiers.
pub mod sqlstate {
    /// successful_completion is never an error; listed for completeness.
    pub const UNIQUE_VIOLATION: &str = "23505";
    /// A NULL into a NOT NULL column.
    pub const NOT_NULL_VIOLATION: &str = "23502";
    /// A CHECK constraint failed.
    pub const CHECK_VIOLATION: &str = "23514";
    /// A table that does not exist.
    pub const UNDEFINED_TABLE: &str = "42P01";
    /// A column that does not exist.
    pub const UNDEFINED_COLUMN: &str = "42703";
    /// A table that already exists.
    pub const DUPLICATE_TABLE: &str = "42P07";
    /// A column named twice.
    pub const DUPLICATE_COLUMN: &str = "42701";
    /// An index or other object that already exists.
    pub const DUPLICATE_OBJECT: &str = "42710";
    /// A syntax error.
    pub const SYNTAX_ERROR: &str = "42601";
    /// A value of the wrong type.
    pub const DATATYPE_MISMATCH: &str = "42804";
    /// Text that does not parse as the wanted type.
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    /// A number outside its type's range.
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    /// A string longer than its column allows.
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    /// A malformed date or time.
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    /// datetime_field_overflow: a date or timestamp beyond the representable range.
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    /// Division by zero.
    pub const DIVISION_BY_ZERO: &str = "22012";
    /// A transaction conflict; retry.
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// A feature tiers does not support.
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// A message that breaks the wire protocol's rules.
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// A limit was exceeded (statement size, memory).
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// statement_too_complex (PostgreSQL's "stack depth limit exceeded").
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    /// The storage engine stopped accepting writes or hit an I/O error.
    pub const IO_ERROR: &str = "58030";
    /// Corrupt data was detected.
    pub const DATA_CORRUPTED: &str = "XX001";
    /// An internal error.
    pub const INTERNAL_ERROR: &str = "XX000";
    /// A write reached a node that is not the cluster's leader.
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    /// A commit's outcome is unknown (leadership was lost while it waited).
    pub const TRANSACTION_RESOLUTION_UNKNOWN: &str = "08007";
    /// Not a PostgreSQL code: a statement run in no-wait mode (see
    /// `Session::set_async_mode`) found a row locked by another transaction
    /// and was undone, to be run again where it may wait. Never sent to a client.
    pub const WOULD_WAIT: &str = "TW001";
}

impl SqlError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl From<StorageError> for SqlError {
    fn from(e: StorageError) -> SqlError {
        let code = match &e {
            StorageError::Conflict { .. } => sqlstate::SERIALIZATION_FAILURE,
            StorageError::TooLarge { .. } => sqlstate::PROGRAM_LIMIT_EXCEEDED,
            StorageError::NotLeader { .. } => sqlstate::READ_ONLY_SQL_TRANSACTION,
            StorageError::CommitUnknown(_) => sqlstate::TRANSACTION_RESOLUTION_UNKNOWN,
            e if e.is_corruption() => sqlstate::DATA_CORRUPTED,
            StorageError::Io { .. } | StorageError::Poisoned(_) => sqlstate::IO_ERROR,
            _ => sqlstate::INTERNAL_ERROR,
        };
        SqlError::new(code, e.to_string())
    }
}
