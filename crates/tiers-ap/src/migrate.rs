//! Applying an application's migrations: in version order, each once, each
//! in its own transaction, recorded with its checksum in the table
//! `tiers_migrations`.
//!
//! It speaks plain SQL over any PostgreSQL connection, so it works the same
//! against `tiers db` and against PostgreSQL itself. A migration that was
//! applied and then edited, or removed from the folder, is refused with an
//! error naming the file: the database and the folder disagree, and only a
//! human can say which is right.

use tokio_postgres::Client;

use crate::app::Migration;

/// The table that records applied migrations.
pub const TABLE: &str = "tiers_migrations";

/// Why migrating stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// An applied migration's file changed since.
    #[error(
        "{file} was changed after it was applied (checksum {applied} when applied, {now} now); \
         restore it and put the change in a new migration"
    )]
    Edited {
        /// The file.
        file: String,
        /// Checksum recorded when it was applied.
        applied: String,
        /// Checksum of the file now.
        now: String,
    },
    /// The database has a migration the folder does not.
    #[error(
        "the database has migration {version} ({name}) but the schema folder does not; \
         restore the file (migrations are never removed)"
    )]
    Missing {
        /// Its version.
        version: i32,
        /// Its name.
        name: String,
    },
    /// A migration failed; it was rolled back and nothing after it ran.
    #[error("{file} failed and was rolled back: {source}")]
    Failed {
        /// The file.
        file: String,
        /// What the database said.
        source: tokio_postgres::Error,
    },
    /// Reading or creating the bookkeeping table failed.
    #[error("migration bookkeeping ({TABLE}): {0}")]
    Bookkeeping(#[source] tokio_postgres::Error),
}

/// What [`apply`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Versions applied now.
    pub applied: Vec<i32>,
    /// Versions that were already applied.
    pub already: Vec<i32>,
}

/// Applies the migrations not yet applied, in order.
pub async fn apply(client: &mut Client, migrations: &[Migration]) -> Result<Report, MigrateError> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (\
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(MigrateError::Bookkeeping)?;
    let rows = client
        .query(
            &format!("SELECT version, name, checksum FROM {TABLE} ORDER BY version"),
            &[],
        )
        .await
        .map_err(MigrateError::Bookkeeping)?;
    let mut report = Report::default();
    for row in &rows {
        let (version, name, checksum): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
        match migrations.iter().find(|m| m.version == version) {
            None => return Err(MigrateError::Missing { version, name }),
            Some(m) if m.checksum != checksum => {
                return Err(MigrateError::Edited {
                    file: m.path.display().to_string(),
                    applied: checksum,
                    now: m.checksum.clone(),
                });
            }
            Some(_) => report.already.push(version),
        }
    }
    for m in migrations {
        if report.already.contains(&m.version) {
            continue;
        }
        let file = m.path.display().to_string();
        let failed = |source| MigrateError::Failed {
            file: file.clone(),
            source,
        };
        let tx = client.transaction().await.map_err(failed)?;
        tx.batch_execute(&m.sql).await.map_err(failed)?;
        tx.execute(
            &format!("INSERT INTO {TABLE} (version, name, checksum) VALUES ($1, $2, $3)"),
            &[&m.version, &m.name, &m.checksum],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        report.applied.push(m.version);
    }
    Ok(report)
}
