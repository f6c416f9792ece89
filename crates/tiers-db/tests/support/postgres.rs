//! A throw-away PostgreSQL 15 cluster for tests that compare with, or run
//! against, real PostgreSQL. Shared by the DB tier's differential test and
//! the AP tier's PostgreSQL run (included with `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

use tiers_testkit::free_port;

/// Runs a PostgreSQL tool, as the `postgres` user when we are root
/// (PostgreSQL refuses to run as root).
fn pg_tool(tool: &str, args: &[&str]) {
    let path = format!("{PG_BIN}/{tool}");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let status = if root {
        Command::new("runuser")
            .args(["-u", "postgres", "--", &path])
            .args(args)
            .status()
    } else {
        Command::new(&path).args(args).status()
    }
    .unwrap_or_else(|e| panic!("running {path}: {e}"));
    assert!(status.success(), "{path} {args:?} failed: {status}");
}

/// A throw-away PostgreSQL cluster, stopped on drop.
pub struct Postgres {
    dir: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Postgres {
    /// Starts a cluster under `base`, with a trusted superuser `test`.
    pub fn start(base: &Path) -> Postgres {
        assert!(
            Path::new(PG_BIN).join("postgres").exists(),
            "PostgreSQL 15 is not installed ({PG_BIN}); .ci/run installs it, or: apt-get install postgresql-15"
        );
        let dir = base.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        // The postgres user must own the cluster directory.
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(base)
            .status();
        let d = dir.to_str().unwrap();
        pg_tool(
            "initdb",
            &[
                "-D",
                d,
                "-U",
                "test",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = free_port();
        let opts = format!("-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off");
        pg_tool(
            "pg_ctl",
            &[
                "-D",
                d,
                "-l",
                &format!("{d}/log"),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
        Postgres { dir, port }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let d = self.dir.to_str().unwrap().to_string();
        pg_tool("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"]);
    }
}
