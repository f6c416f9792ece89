//! The `[web]` section of `tiers.toml`: what to listen on, where files come
//! from, which upstream pools serve dynamic requests, and every limit.
//!
//! Every field has a default, so `tiers web --root DIR` or
//! `tiers web --upstream URL` alone is a working server. Durations are
//! written as `"250ms"`, `"10s"` or `"2m"`; sizes are plain byte counts.
//! [`Config::validate`] turns a loaded file into errors that name the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The web tier's settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address for browsers (HTTP/1.1, h2c, and with TLS also h2).
    pub listen: SocketAddr,
    /// Admin endpoint (`/health`, `/metrics`, `/status`).
    pub admin: SocketAddr,
    /// Static files for the default route `/` (serve the file if it exists,
    /// else forward to the default pool).
    pub root: Option<PathBuf>,
    /// Servers of the default pool (`default`), as `http://host:port`.
    pub upstreams: Vec<String>,
    /// Named upstream pools.
    pub pools: BTreeMap<String, PoolConfig>,
    /// Path prefixes mapped to static roots and/or pools; the longest
    /// matching prefix wins, and `/` falls back to `root` + `upstreams`.
    pub routes: Vec<RouteConfig>,
    /// Static files.
    pub files: FilesConfig,
    /// Limits against bad or hostile clients.
    pub limits: LimitsConfig,
    /// TLS certificate chain (PEM). With `tls_key` the listener speaks TLS
    /// only, offering h2 and http/1.1 by ALPN.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Access log: `"off"`, `"-"` for standard output, or a file path.
    pub access_log: String,
    /// Access log format: `combined` (nginx's) or `json`.
    pub access_log_format: LogFormat,
    /// How long a shutdown or restart lets requests in flight finish.
    #[serde(with = "duration")]
    pub drain_timeout: Duration,
    /// 0: serve on one multi-threaded, work-stealing runtime (the default;
    /// best latency). N: N worker threads, each with its own event loop and
    /// listener (thread per core; best proxy throughput).
    pub workers: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            admin: "127.0.0.1:6080".parse().expect("valid address"),
            root: None,
            upstreams: Vec::new(),
            pools: BTreeMap::new(),
            routes: Vec::new(),
            files: FilesConfig::default(),
            limits: LimitsConfig::default(),
            tls_cert: None,
            tls_key: None,
            access_log: "off".into(),
            access_log_format: LogFormat::Combined,
            drain_timeout: Duration::from_secs(10),
            workers: 0,
        }
    }
}

/// Access log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// nginx's `combined` plus request time, upstream and request id.
    Combined,
    /// One JSON object per line.
    Json,
}

/// A path prefix and what serves it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, starting with `/`. `/static/` matches `/static/x`, and
    /// `/static` without the slash too.
    pub prefix: String,
    /// Serve files from this directory (the prefix is stripped first).
    pub root: Option<PathBuf>,
    /// Forward to this pool (when `root` is set too: only if no file
    /// exists, like nginx's `try_files $uri @pool`).
    pub pool: Option<String>,
}

/// Static file serving.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Files tried for a directory request.
    pub index: Vec<String>,
    /// `Cache-Control` sent with files (empty: none).
    pub cache_control: String,
    /// Serve names starting with `.` (except `.well-known`, always served).
    pub hidden: bool,
    /// Open-file and metadata cache entries.
    pub cache_entries: usize,
    /// How long a cached lookup is trusted before the file is checked again.
    #[serde(with = "duration")]
    pub cache_valid: Duration,
    /// Bytes of file contents (and their compressed forms) kept in memory.
    pub cache_bytes: u64,
    /// Files up to this size are kept in memory; larger ones stream from disk.
    pub cache_max_file: u64,
    /// Compress responses of compressible types at least this large.
    pub compress_min: u64,
    /// Files larger than this are never compressed on the fly.
    pub compress_max: u64,
}

impl Default for FilesConfig {
    fn default() -> FilesConfig {
        FilesConfig {
            index: vec!["index.html".into()],
            cache_control: "public, max-age=60".into(),
            hidden: false,
            cache_entries: 10_000,
            cache_valid: Duration::from_secs(2),
            cache_bytes: 64 << 20,
            cache_max_file: 2 << 20,
            compress_min: 1024,
            compress_max: 8 << 20,
        }
    }
}

/// Limits that keep bad or hostile clients from hurting everyone else.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request head (request line and headers); larger gets 431.
    pub max_header_bytes: usize,
    /// Largest request body; larger gets 413.
    pub max_body_bytes: u64,
    /// A client must send a whole request head within this time (against
    /// slowloris). It also bounds how long an idle keep-alive connection
    /// waits for its next request: an HTTP/1.1 connection is closed, an
    /// HTTP/2 connection with no stream in flight gets GOAWAY.
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// A client must send the request body at least this often.
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// The whole request body must arrive within this time after the head
    /// (a body trickled a byte per `body_timeout` is cut off here); 408.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// A response write that makes no progress for this long (a client
    /// that stopped reading) closes the connection (nginx's send_timeout).
    #[serde(with = "duration")]
    pub send_timeout: Duration,
    /// Request bodies buffered at once, all connections together, before
    /// they are forwarded; a body that would pass it gets 503 and
    /// `Retry-After: 1`. At least `max_body_bytes`.
    pub max_buffered_body_bytes: u64,
    /// Client connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Client connections per IP address (0: no limit). Raise it (or set 0)
    /// for clients behind one large NAT, or to load-test from one host.
    pub max_connections_per_ip: usize,
    /// HTTP/2 streams per connection.
    pub max_streams: u32,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_header_bytes: 16 << 10,
            max_body_bytes: 16 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_buffered_body_bytes: 256 << 20,
            max_connections: 20_000,
            max_connections_per_ip: 512,
            max_streams: 128,
        }
    }
}

/// One upstream pool: its servers, how requests are spread over them, and
/// how their health is watched.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Servers, as `"http://host:port"` or `{ url = "...", weight = 2 }`.
    pub servers: Vec<ServerSpec>,
    /// `round_robin` (weighted), `least_conn`, `hash_ip`,
    /// `hash_header:NAME` or `hash_cookie:NAME`.
    pub balance: String,
    /// Passive health: this many failures within `fail_window` mark a
    /// server down for `fail_timeout` (nginx's max_fails/fail_timeout).
    pub max_fails: u32,
    /// Window in which failures are counted.
    #[serde(with = "duration")]
    pub fail_window: Duration,
    /// How long a passively failed server stays out.
    #[serde(with = "duration")]
    pub fail_timeout: Duration,
    /// Active health: `GET` this path on every server (empty: no probes).
    pub health_path: String,
    /// Time between probes (HAProxy's `inter`).
    #[serde(with = "duration")]
    pub health_interval: Duration,
    /// A probe must answer within this time.
    #[serde(with = "duration")]
    pub health_timeout: Duration,
    /// Consecutive good probes that bring a down server up.
    pub rise: u32,
    /// Consecutive bad probes that take an up server down.
    pub fall: u32,
    /// After recovering, a server's weight ramps from ~0 to full over this
    /// time (0: at once).
    #[serde(with = "duration")]
    pub slow_start: Duration,
    /// Requests in flight to the pool at once.
    pub max_active: usize,
    /// Requests waiting for a slot; when full, new requests get 503.
    pub queue: usize,
    /// How long a request may wait in the queue before it gets 503.
    #[serde(with = "duration")]
    pub queue_timeout: Duration,
    /// Extra attempts on other servers for a failed request.
    pub retries: u32,
    /// Retries allowed as a share of requests (the retry budget), 0 to 1.
    pub retry_budget: f64,
    /// Connecting to a server.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// From sending the request to the response head.
    #[serde(with = "duration")]
    pub response_timeout: Duration,
    /// Between chunks of a response body.
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// How long an unused keep-alive connection to a server is kept.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Unused keep-alive connections kept per server.
    pub max_idle: usize,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            servers: Vec::new(),
            balance: "round_robin".into(),
            max_fails: 3,
            fail_window: Duration::from_secs(10),
            fail_timeout: Duration::from_secs(10),
            health_path: String::new(),
            health_interval: Duration::from_secs(2),
            health_timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            slow_start: Duration::ZERO,
            max_active: 1024,
            queue: 1024,
            queue_timeout: Duration::from_secs(5),
            retries: 2,
            retry_budget: 0.2,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_idle: 256,
        }
    }
}

/// A server of a pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ServerSpec {
    /// `"http://host:port"`, weight 1.
    Url(String),
    /// `{ url = "http://host:port", weight = N }`.
    Weighted {
        /// `http://host:port`.
        url: String,
        /// Relative share of requests (1 to 1000).
        weight: u32,
    },
}

impl ServerSpec {
    /// The URL as written.
    pub fn url(&self) -> &str {
        match self {
            ServerSpec::Url(u) | ServerSpec::Weighted { url: u, .. } => u,
        }
    }

    /// The weight (1 when not given).
    pub fn weight(&self) -> u32 {
        match self {
            ServerSpec::Url(_) => 1,
            ServerSpec::Weighted { weight, .. } => *weight,
        }
    }
}

/// A setting that cannot work, named by its key.
#[derive(Debug, thiserror::Error)]
#[error("[web] {key}: {problem}")]
pub struct ConfigError {
    /// Dotted key, such as `pools.api.balance`.
    pub key: String,
    /// What is wrong and what to do instead.
    pub problem: String,
}

fn bad(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// How a pool spreads requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round robin (nginx's).
    RoundRobin,
    /// Fewest requests in flight relative to weight.
    LeastConn,
    /// Consistent hashing on the client IP.
    HashIp,
    /// Consistent hashing on a request header.
    HashHeader(String),
    /// Consistent hashing on a cookie.
    HashCookie(String),
}

impl Balance {
    /// Parses the `balance` setting.
    pub fn parse(text: &str) -> Result<Balance, String> {
        let (kind, arg) = match text.split_once(':') {
            Some((k, a)) => (k, Some(a.trim())),
            None => (text, None),
        };
        match (kind.trim(), arg) {
            ("round_robin", None) => Ok(Balance::RoundRobin),
            ("least_conn", None) => Ok(Balance::LeastConn),
            ("hash_ip", None) => Ok(Balance::HashIp),
            ("hash_header", Some(h)) if !h.is_empty() => {
                Ok(Balance::HashHeader(h.to_ascii_lowercase()))
            }
            ("hash_cookie", Some(c)) if !c.is_empty() => Ok(Balance::HashCookie(c.to_string())),
            _ => Err(format!(
                "unknown balance {text:?}; use round_robin, least_conn, hash_ip, \
                 hash_header:NAME or hash_cookie:NAME"
            )),
        }
    }
}

/// An upstream server address parsed from `http://host:port[/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `host:port`, used to connect and as the probe's `Host`.
    pub authority: String,
}

impl UpstreamUrl {
    /// Parses `http://host:port`; other schemes and paths are refused.
    pub fn parse(text: &str) -> Result<UpstreamUrl, String> {
        let rest = text.strip_prefix("http://").ok_or_else(|| {
            format!("{text:?} is not an http:// URL (upstreams are spoken to in plain HTTP/1.1)")
        })?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "{text:?} must be http://host:port with no path, user or query"
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            let (_, port) = authority.rsplit_once(':').expect("checked");
            port.parse::<u16>()
                .map_err(|_| format!("{text:?} has a bad port {port:?}"))?;
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(UpstreamUrl { authority })
    }
}

impl Config {
    /// The pools with the default pool (from `upstreams`) added as
    /// `default`.
    pub fn all_pools(&self) -> BTreeMap<String, PoolConfig> {
        let mut pools = self.pools.clone();
        if !self.upstreams.is_empty() {
            let default = pools.entry("default".into()).or_default();
            default
                .servers
                .extend(self.upstreams.iter().cloned().map(ServerSpec::Url));
        }
        pools
    }

    /// Checks everything that can be checked before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pools = self.all_pools();
        for (name, pool) in &pools {
            let key = |k: &str| format!("pools.{name}.{k}");
            if pool.servers.is_empty() {
                return Err(bad(key("servers"), "a pool needs at least one server"));
            }
            for s in &pool.servers {
                UpstreamUrl::parse(s.url()).map_err(|e| bad(key("servers"), e))?;
                if !(1..=1000).contains(&s.weight()) {
                    return Err(bad(key("servers"), "weight must be 1 to 1000"));
                }
            }
            Balance::parse(&pool.balance).map_err(|e| bad(key("balance"), e))?;
            if !pool.health_path.is_empty() && !pool.health_path.starts_with('/') {
                return Err(bad(key("health_path"), "must start with /"));
            }
            if pool.rise == 0 || pool.fall == 0 {
                return Err(bad(key("rise/fall"), "must be at least 1"));
            }
            if pool.max_active == 0 {
                return Err(bad(key("max_active"), "must be at least 1"));
            }
            if !(0.0..=1.0).contains(&pool.retry_budget) {
                return Err(bad(key("retry_budget"), "must be between 0 and 1"));
            }
            if pool.health_interval.is_zero() {
                return Err(bad(key("health_interval"), "must be more than 0"));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            if !r.prefix.starts_with('/') {
                return Err(bad(key, "prefix must start with /"));
            }
            if r.root.is_none() && r.pool.is_none() {
                return Err(bad(key, "give a root, a pool, or both"));
            }
            if let Some(p) = &r.pool
                && !pools.contains_key(p)
            {
                return Err(bad(key, format!("no pool named {p:?}")));
            }
        }
        if self.root.is_none() && pools.is_empty() && self.routes.is_empty() {
            return Err(bad(
                "root/upstreams",
                "nothing to serve: give --root DIR, --upstream URL, or routes",
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(bad("tls_cert/tls_key", "give both or neither"));
        }
        if self.limits.max_header_bytes < 1024 {
            return Err(bad("limits.max_header_bytes", "must be at least 1024"));
        }
        if self.limits.max_buffered_body_bytes < self.limits.max_body_bytes {
            return Err(bad(
                "limits.max_buffered_body_bytes",
                "must be at least limits.max_body_bytes (else a body within the limit could never be taken)",
            ));
        }
        for (key, t) in [
            ("limits.request_timeout", self.limits.request_timeout),
            ("limits.send_timeout", self.limits.send_timeout),
        ] {
            if t.is_zero() {
                return Err(bad(key, "must be more than 0"));
            }
        }
        if self.limits.max_connections == 0 {
            return Err(bad("limits.max_connections", "must be at least 1"));
        }
        if self.access_log.is_empty() {
            return Err(bad("access_log", "use \"off\", \"-\" or a file path"));
        }
        Ok(())
    }
}

/// `"250ms"`, `"10s"`, `"2m"`, `"1h"` or a bare number of seconds.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses a duration.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("bad duration {text:?}; write e.g. \"250ms\", \"10s\", \"2m\""))?;
        match unit {
            "ms" => Ok(Duration::from_millis(n)),
            "" | "s" => Ok(Duration::from_secs(n)),
            "m" => Ok(Duration::from_secs(n * 60)),
            "h" => Ok(Duration::from_secs(n * 3600)),
            _ => Err(format!("bad duration unit in {text:?}; use ms, s, m or h")),
        }
    }

    /// Writes a duration the way [`parse`] reads it.
    pub fn render(d: Duration) -> String {
        let ms = d.as_millis();
        if !ms.is_multiple_of(1000) {
            format!("{ms}ms")
        } else if !ms.is_multiple_of(60_000) || ms == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{}m", ms / 60_000)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(u64),
    }

    /// serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        }
    }

    /// serde `serialize_with`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&render(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_back() {
        for (text, d) in [
            ("250ms", Duration::from_millis(250)),
            ("10s", Duration::from_secs(10)),
            ("2m", Duration::from_secs(120)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(duration::parse(text).unwrap(), d);
            assert_eq!(duration::render(d), text);
        }
        assert!(duration::parse("10 parsecs").is_err());
        assert!(duration::parse("").is_err());
    }

    #[test]
    fn upstream_urls_must_be_plain_http_authorities() {
        assert_eq!(
            UpstreamUrl::parse("http://127.0.0.1:8081/")
                .unwrap()
                .authority,
            "127.0.0.1:8081"
        );
        assert_eq!(UpstreamUrl::parse("http://ap").unwrap().authority, "ap:80");
        assert_eq!(
            UpstreamUrl::parse("http://[::1]:9").unwrap().authority,
            "[::1]:9"
        );
        for bad in [
            "https://x:1",
            "x:1",
            "http://x:1/api",
            "http://x:99999",
            "http://",
        ] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn balance_names() {
        assert_eq!(Balance::parse("least_conn").unwrap(), Balance::LeastConn);
        assert_eq!(
            Balance::parse("hash_header:X-User").unwrap(),
            Balance::HashHeader("x-user".into())
        );
        assert!(Balance::parse("random").is_err());
        assert!(Balance::parse("hash_cookie:").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("nothing to serve")
        );
        c.upstreams = vec!["ftp://x".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("pools.default.servers")
        );
        c.upstreams = vec!["http://127.0.0.1:1".into()];
        c.validate().unwrap();
        c.routes.push(RouteConfig {
            prefix: "/api/".into(),
            root: None,
            pool: Some("nope".into()),
        });
        assert!(c.validate().unwrap_err().to_string().contains("routes[0]"));
    }
}
