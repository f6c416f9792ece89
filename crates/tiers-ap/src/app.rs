//! An application is a folder (`docs/apps.md`):
//!
//! ```text
//! app.toml              name and settings
//! schema/001_init.sql   migrations, applied in order, once each
//! templates/            minijinja templates
//! static/               served by the web tier straight from disk
//! ```
//!
//! [`App::load`] reads and checks the folder; nothing touches the database
//! here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why an application folder cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A file or folder cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `app.toml` is not valid.
    #[error("{path}: {problem}")]
    Manifest {
        /// The path of `app.toml`.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A template does not parse.
    #[error("{path}: {problem}")]
    Template {
        /// The file.
        path: PathBuf,
        /// What the template engine said.
        problem: String,
    },
    /// A migration file is misnamed or clashes with another.
    #[error("{path}: {problem}")]
    Migration {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to name it.
        problem: String,
    },
}

/// `app.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The application's name (letters, digits, `-` and `_`).
    pub name: String,
    /// A line for humans.
    #[serde(default)]
    pub description: String,
    /// The connection pool.
    #[serde(default)]
    pub pool: PoolSettings,
    /// Routes (see [`crate::routes`]).
    #[serde(default)]
    pub routes: Vec<crate::routes::RouteConfig>,
    /// Tables exposed by the automatic REST API (see [`crate::api`]).
    #[serde(default)]
    pub api: std::collections::BTreeMap<String, crate::api::ApiSpec>,
    /// Origins (`https://www.example.org`) whose pages may write here
    /// besides the request's own host (see [`crate::guard`]).
    #[serde(default)]
    pub trusted_origins: Vec<String>,
}

/// `[pool]` in `app.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    /// Connections to the DB tier at most.
    pub size: usize,
    /// How long a request waits for a connection before it gets 503.
    pub acquire_timeout_ms: u64,
    /// `statement_timeout` of every pooled session (milliseconds, 0: none):
    /// a statement running longer is cancelled by the DB (57014) and the
    /// request answered 503, so a slow query cannot hold connections.
    pub statement_timeout_ms: u64,
    /// Prepared statements each pooled connection keeps; when full, its
    /// cache starts over (the statements are closed on the DB too).
    pub max_cached_statements: usize,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            size: 16,
            acquire_timeout_ms: 2000,
            statement_timeout_ms: 5000,
            max_cached_statements: 256,
        }
    }
}

/// One file of `schema/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The number it starts with (`001` → 1).
    pub version: i32,
    /// The rest of the file name (`001_init.sql` → `init`).
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its text.
    pub sql: String,
    /// CRC32C of the text, as 8 hex digits: an applied migration that was
    /// edited afterwards is detected by it.
    pub checksum: String,
}

/// A loaded application folder.
#[derive(Debug, Clone)]
pub struct App {
    /// The folder.
    pub dir: PathBuf,
    /// `app.toml`.
    pub manifest: Manifest,
    /// `schema/*.sql`, by version.
    pub migrations: Vec<Migration>,
}

impl App {
    /// Reads `dir/app.toml` and `dir/schema/`.
    pub fn load(dir: &Path) -> Result<App, AppError> {
        let manifest_path = dir.join("app.toml");
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| AppError::Read {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| AppError::Manifest {
            path: manifest_path.clone(),
            problem: e.to_string(),
        })?;
        if manifest.name.is_empty()
            || !manifest
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AppError::Manifest {
                path: manifest_path,
                problem: format!(
                    "name {:?} must be letters, digits, '-' or '_'",
                    manifest.name
                ),
            });
        }
        Ok(App {
            dir: dir.to_path_buf(),
            manifest,
            migrations: load_migrations(&dir.join("schema"))?,
        })
    }
}

/// Reads `schema/NNN_name.sql` files in version order. A missing folder is
/// an application without a schema.
pub fn load_migrations(dir: &Path) -> Result<Vec<Migration>, AppError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AppError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut out: Vec<Migration> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| AppError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') || path.is_dir() {
            continue;
        }
        let bad = |problem: &str| AppError::Migration {
            path: path.clone(),
            problem: format!("{problem}; name migrations like 001_create_posts.sql"),
        };
        let stem = file
            .strip_suffix(".sql")
            .ok_or_else(|| bad("not a .sql file"))?;
        let (number, name) = stem
            .split_once('_')
            .ok_or_else(|| bad("no '_' after the number"))?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
            return Err(bad("the name must start with a number and a name"));
        }
        let version: i32 = number.parse().map_err(|_| bad("the number is too large"))?;
        if let Some(other) = out.iter().find(|m| m.version == version) {
            return Err(AppError::Migration {
                path: path.clone(),
                problem: format!(
                    "version {version} is also used by {}; give each migration its own number",
                    other.path.display()
                ),
            });
        }
        let sql = std::fs::read_to_string(&path).map_err(|source| AppError::Read {
            path: path.clone(),
            source,
        })?;
        out.push(Migration {
            version,
            name: name.to_string(),
            checksum: format!("{:08x}", crc32c::crc32c(sql.as_bytes())),
            path,
            sql,
        });
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn loads_manifest_and_orders_migrations() {
        let dir = folder(&[
            ("app.toml", "name = \"board\"\n"),
            ("schema/010_later.sql", "SELECT 2;"),
            ("schema/002_first.sql", "SELECT 1;"),
        ]);
        let app = App::load(dir.path()).unwrap();
        assert_eq!(app.manifest.name, "board");
        let versions: Vec<i32> = app.migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, [2, 10]);
        assert_eq!(app.migrations[0].name, "first");
        assert_eq!(app.migrations[0].checksum.len(), 8);
    }

    #[test]
    fn bad_folders_name_the_file() {
        let e = App::load(folder(&[]).path()).unwrap_err().to_string();
        assert!(e.contains("app.toml"), "{e}");
        let e = App::load(folder(&[("app.toml", "nme = \"x\"\n")]).path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nme"), "{e}");
        let e = App::load(folder(&[("app.toml", "name = \"a b\"\n")]).path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("letters"), "{e}");
        for (file, needle) in [
            ("schema/init.sql", "number"),
            ("schema/001.sql", "'_'"),
            ("schema/001_x.txt", ".sql"),
            ("schema/x1_a.sql", "number"),
        ] {
            let dir = folder(&[("app.toml", "name = \"a\"\n"), (file, "")]);
            let e = App::load(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains(file.rsplit('/').next().unwrap()) && e.contains(needle),
                "{e}"
            );
        }
        let dir = folder(&[
            ("app.toml", "name = \"a\"\n"),
            ("schema/001_a.sql", ""),
            ("schema/01_b.sql", ""),
        ]);
        let e = App::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("also used"), "{e}");
    }
}
