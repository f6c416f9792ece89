//! Feeds bytes to a real DB tier (`tiers_db::Server` on a loopback port)
//! as one client connection: the fuzz target `pgwire` and the regression
//! test `crates/tiers-db/tests/fuzz_regressions.rs` share this, so every
//! input the fuzzer keeps is replayed by `cargo test`.
//!
//! An input whose first byte is even is sent as it is (the startup packet
//! and everything after it is the fuzzer's); an odd first byte puts a valid
//! startup message for user `tiers` in front, so most inputs reach the
//! message loop, the SQL parser and the engine.

#![allow(dead_code)] // each user takes what it needs

use std::net::SocketAddr;

/// A DB tier to talk to, with its runtime and data directory.
pub struct Target {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Target {
    /// Starts a DB tier in a fresh data directory.
    pub fn start() -> Target {
        let runtime = crate::common::runtime();
        let dir = tempfile::tempdir().expect("data directory");
        let mut config =
            tiers_db::ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("db"));
        config.connection_loops = 0;
        config.max_statement_bytes = 1 << 20;
        let addr = runtime.block_on(async {
            let server = tiers_db::Server::bind(config)
                .await
                .expect("DB tier starts");
            let addr = server.local_addr();
            tokio::spawn(server.serve(std::future::pending()));
            addr
        });
        Target {
            addr,
            runtime,
            _dir: dir,
        }
    }

    /// Sends `input` on a new connection, closes the sending side and reads
    /// what the server answers until it closes (or 5 s pass).
    pub fn feed(&self, input: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(input.len() + 64);
        if input.first().is_some_and(|b| b % 2 == 1) {
            bytes.extend_from_slice(&startup());
            bytes.extend_from_slice(&input[1..]);
        } else {
            bytes.extend_from_slice(input.get(1..).unwrap_or_default());
        }
        crate::common::exchange(&self.runtime, self.addr, &bytes)
    }

    /// Whether the server still answers a plain query.
    pub fn alive(&self) -> bool {
        let mut input = vec![1u8];
        input.extend_from_slice(&message(b'Q', b"SELECT 1\0"));
        input.extend_from_slice(&message(b'X', b""));
        let out = self.feed(&input);
        out.windows(2).any(|w| w == b"D\0")
    }
}

/// A StartupMessage (protocol 3.0) for user and database `tiers`.
pub fn startup() -> Vec<u8> {
    let mut body = 196608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", "tiers"), ("database", "tiers")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// One frontend message: its type byte, length and body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![tag];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}
