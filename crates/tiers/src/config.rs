//! `tiers.toml`: every setting of every tier in one optional file.
//!
//! Precedence: a command-line flag beats the file, which beats the
//! built-in default. Unknown keys are errors (a misspelt setting must not
//! be silently ignored), reported with the file name and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[db]`
    pub db: DbConfig,
    /// `[web]`: see `docs/web.md`.
    pub web: tiers_web::Config,
    /// `[ap]`: see `docs/apps.md`.
    pub ap: ApConfig,
}

/// `[ap]`: the AP tier.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApConfig {
    /// HTTP address.
    pub listen: SocketAddr,
    /// Admin endpoint address.
    pub admin: SocketAddr,
    /// The application folder.
    pub app: Option<PathBuf>,
    /// The database URL.
    pub db: String,
}

impl Default for ApConfig {
    fn default() -> ApConfig {
        ApConfig {
            listen: "127.0.0.1:8081".parse().expect("valid address"),
            admin: "127.0.0.1:6081".parse().expect("valid address"),
            app: None,
            db: "postgres://tiers@127.0.0.1:5433/tiers".into(),
        }
    }
}

/// `[db]`: the DB tier.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    /// PostgreSQL wire protocol address.
    pub listen: SocketAddr,
    /// Admin endpoint address (`/health`, `/metrics`, `/status`).
    pub admin: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Buffer pool size in MiB.
    pub cache_mib: usize,
    /// Client connections served at once.
    pub max_connections: usize,
    /// The longest SQL text accepted, in bytes.
    pub max_statement_bytes: usize,
    /// Users and their passwords: SCRAM-SHA-256 is required when any is
    /// given; with none every client is trusted (keep `listen` on loopback).
    pub users: std::collections::BTreeMap<String, String>,
    /// TLS certificate chain (PEM); with `tls_key`, clients may use TLS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Threads that own client connections, each with its own event loop
    /// (0: one per CPU).
    pub threads: usize,
}

impl Default for DbConfig {
    fn default() -> DbConfig {
        DbConfig {
            listen: "127.0.0.1:5433".parse().expect("valid address"),
            admin: "127.0.0.1:6433".parse().expect("valid address"),
            data_dir: PathBuf::from("./tiers-data/db"),
            cache_mib: 128,
            max_connections: 100,
            max_statement_bytes: 16 << 20,
            users: Default::default(),
            tls_cert: None,
            tls_key: None,
            threads: 0,
        }
    }
}

/// Reads `path`, or `./tiers.toml` when no path is given and it exists,
/// or the defaults.
pub fn load(path: Option<&Path>) -> Result<Config, String> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("tiers.toml"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Config::default());
        }
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    if config.db.tls_cert.is_some() != config.db.tls_key.is_some() {
        return Err("[db] tls_cert and tls_key go together: give both or neither".into());
    }
    Ok(config)
}

/// The effective configuration as TOML (for `--print-config`), with
/// passwords masked: the output is meant to be pasted into bug reports.
pub fn render(config: &Config) -> String {
    let mut shown = config.clone();
    for password in shown.db.users.values_mut() {
        *password = MASK.into();
    }
    shown.ap.db = mask_url_password(&shown.ap.db);
    toml::to_string(&shown).unwrap_or_default()
}

/// What `--print-config` shows in place of a password.
const MASK: &str = "********";

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`
/// (and `password=secret` in key=value form).
fn mask_url_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((credentials, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:{MASK}@{host}");
    }
    url.split(' ')
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => format!("password={MASK}"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_values_and_unknown_keys() {
        let c = parse("").unwrap();
        assert_eq!(c.db.listen.port(), 5433);
        let c = parse("[db]\nlisten = \"127.0.0.1:7000\"\ncache_mib = 8\n").unwrap();
        assert_eq!((c.db.listen.port(), c.db.cache_mib), (7000, 8));
        assert_eq!(c.db.max_connections, 100, "unset keys keep defaults");
        let e = parse("[db]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.contains("listen_addr"), "{e}");
        let e = parse("[db]\ncache_mib = \"lots\"\n").unwrap_err();
        assert!(e.contains("cache_mib"), "{e}");
        let round = parse(&render(&c)).unwrap();
        assert_eq!(round.db.listen, c.db.listen);
        let c = parse("[db.users]\napp = \"pw\"\n").unwrap();
        assert_eq!(c.db.users.get("app").map(String::as_str), Some("pw"));
        let mut shown = c.clone();
        shown.ap.db = "postgres://app:s3cret@db1:5433/tiers".into();
        let text = render(&shown);
        assert!(
            !text.contains("\"pw\"") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(
            text.contains("postgres://app:********@db1:5433/tiers"),
            "{text}"
        );
        assert_eq!(
            mask_url_password("host=db user=app password=x"),
            "host=db user=app password=********"
        );
        assert_eq!(parse("[db]\nthreads = 3\n").unwrap().db.threads, 3);
        let e = parse("[db]\nthreads = -1\n").unwrap_err();
        assert!(e.contains("threads"), "{e}");
        let e = parse("[db]\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert!(e.contains("tls_key"), "{e}");
    }

    #[test]
    fn web_section_reads_pools_routes_and_durations() {
        let c = parse(
            "[web]\nroot = \"site\"\n[web.limits]\nheader_timeout = \"5s\"\n\
             [web.pools.api]\nservers = [\"http://127.0.0.1:9001\", { url = \"http://127.0.0.1:9002\", weight = 3 }]\n\
             balance = \"least_conn\"\nhealth_path = \"/health\"\n\
             [[web.routes]]\nprefix = \"/api/\"\npool = \"api\"\n",
        )
        .unwrap();
        c.web.validate().unwrap();
        assert_eq!(c.web.limits.header_timeout.as_secs(), 5);
        assert_eq!(c.web.pools["api"].servers[1].weight(), 3);
        let round = parse(&render(&c)).unwrap();
        assert_eq!(round.web.pools["api"].servers.len(), 2);
        assert_eq!(round.web.limits.header_timeout.as_secs(), 5);
        let e = parse("[web.limits]\nheader_timeout = \"soon\"\n").unwrap_err();
        assert!(e.contains("soon"), "{e}");
    }
}
