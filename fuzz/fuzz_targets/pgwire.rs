//! Arbitrary bytes as one client connection to a real DB tier: startup,
//! authentication, the message framing guard, the simple and extended
//! protocols, COPY, the SQL parser and the engine (see `feed/pgwire.rs`).
//! Any panic, in any task, aborts and is a crash.
#![no_main]

#[path = "../feed/common.rs"]
mod common;
#[path = "../feed/pgwire.rs"]
mod feed;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static TARGET: OnceLock<feed::Target> = OnceLock::new();

fuzz_target!(|input: &[u8]| {
    let target = TARGET.get_or_init(feed::Target::start);
    target.feed(input);
});
