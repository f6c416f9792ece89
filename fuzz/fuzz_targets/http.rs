//! Arbitrary bytes as one client connection to a real web tier: HTTP/1.1
//! and the HTTP/2 preface sniff, the path sanitiser, static files with
//! ranges, conditionals and codings, and the reverse proxy's body reading
//! and header rewriting (see `feed/http.rs`). Any panic, in any task,
//! aborts and is a crash.
#![no_main]

#[path = "../feed/common.rs"]
mod common;
#[path = "../feed/http.rs"]
mod feed;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static TARGET: OnceLock<feed::Target> = OnceLock::new();

fuzz_target!(|input: &[u8]| {
    let target = TARGET.get_or_init(feed::Target::start);
    target.feed(input);
});
