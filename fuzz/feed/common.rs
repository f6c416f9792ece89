//! What the `pgwire` and `http` feeds share: a small runtime, one
//! connection's exchange of bytes, and the replay of every kept input that
//! the regression tests run (`crates/tiers-db/tests/fuzz_regressions.rs`,
//! `crates/tiers-web/tests/fuzz_regressions.rs`).

#![allow(dead_code)] // each user takes what it needs

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The runtime a target's server and its client run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends `bytes` on a new connection to `addr`, closes the sending side
/// and reads the answer until the server closes (or 5 s pass).
pub fn exchange(runtime: &tokio::runtime::Runtime, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    runtime.block_on(async {
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            return Vec::new();
        };
        let _ = s.write_all(bytes).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        out
    })
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Feeds every file of `fuzz/regressions/TARGET/` (at least `least`),
/// failing on any panic in any task or when `alive` stops holding after
/// one; `check` sees each file's name and answer.
pub fn replay(
    target: &str,
    least: usize,
    mut feed: impl FnMut(&[u8]) -> Vec<u8>,
    mut alive: impl FnMut() -> bool,
    mut check: impl FnMut(&str, &[u8]),
) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    // The checkout's path at run time: a test binary may be reused from a
    // build in another checkout.
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= least, "the seeds are in {}", dir.display());
    for path in &inputs {
        let answer = feed(&std::fs::read(path).unwrap());
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "{} panicked",
            path.display()
        );
        assert!(
            alive(),
            "the server stopped answering after {}",
            path.display()
        );
        let name = path.file_name().unwrap().to_string_lossy();
        check(&name, &answer);
    }
}
