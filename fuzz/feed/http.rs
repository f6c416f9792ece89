//! Feeds bytes to a real web tier (`tiers_web::Server` on a loopback port,
//! static files from a small site and a pool whose only server is down) as
//! one client connection: the fuzz target `http` and the regression test
//! `crates/tiers-web/tests/fuzz_regressions.rs` share this, so every input
//! the fuzzer keeps is replayed by `cargo test`.

#![allow(dead_code)] // each user takes what it needs

use std::net::SocketAddr;
use std::time::Duration;

/// A web tier to talk to, with its runtime and site.
pub struct Target {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    _site: tempfile::TempDir,
}

impl Target {
    /// Starts a web tier over a site with text, a precompressed file, a
    /// directory with an index, and a pool for everything else.
    pub fn start() -> Target {
        let runtime = crate::common::runtime();
        let site = tempfile::tempdir().expect("site");
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(site.path().join("a.txt"), &text).unwrap();
        std::fs::write(site.path().join("b.js"), &text).unwrap();
        std::fs::write(site.path().join("b.js.gz"), b"\x1f\x8b not really").unwrap();
        std::fs::create_dir(site.path().join("dir")).unwrap();
        std::fs::write(site.path().join("dir/index.html"), "<p>index</p>").unwrap();
        std::fs::write(site.path().join(".hidden"), "secret").unwrap();
        let mut config = tiers_web::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: "127.0.0.1:0".parse().unwrap(),
            root: Some(site.path().to_path_buf()),
            upstreams: vec!["http://127.0.0.1:9".into()],
            ..Default::default()
        };
        config.limits.header_timeout = Duration::from_secs(2);
        config.limits.body_timeout = Duration::from_secs(2);
        config.limits.max_body_bytes = 1 << 20;
        let addr = runtime.block_on(async {
            let server = tiers_web::Server::bind(config)
                .await
                .expect("web tier starts");
            let addr = server.local_addr();
            tokio::spawn(server.run(std::future::pending()));
            addr
        });
        Target {
            addr,
            runtime,
            _site: site,
        }
    }

    /// Sends `input` on a new connection, closes the sending side and reads
    /// the answer until the server closes (or 5 s pass).
    pub fn feed(&self, input: &[u8]) -> Vec<u8> {
        crate::common::exchange(&self.runtime, self.addr, input)
    }

    /// Whether the server still serves a file.
    pub fn alive(&self) -> bool {
        self.feed(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .starts_with(b"HTTP/1.1 200")
    }
}
