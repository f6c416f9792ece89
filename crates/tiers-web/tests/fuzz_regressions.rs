//! Replays every input kept for the `http` fuzz target (its seeds, and
//! any crasher it found, in `fuzz/regressions/http/`) against
//! a real web tier: no input may panic any task, and the server must still serve a
//! file after each. The fuzzer itself runs in `.ci/run` (`fuzz/run.sh`).

#[path = "../../../fuzz/feed/common.rs"]
mod common;
#[path = "../../../fuzz/feed/http.rs"]
mod feed;

#[test]
fn every_kept_http_input_is_survived() {
    let target = feed::Target::start();
    common::replay(
        "http",
        9,
        |input| target.feed(input),
        || target.alive(),
        |name, answer| {
            if name == "seed-get_range" {
                // The replay is real: three ranges came back as multipart.
                let text = String::from_utf8_lossy(answer);
                assert!(
                    text.starts_with("HTTP/1.1 206") && text.contains("multipart/byteranges"),
                    "{text}"
                );
            }
        },
    );
}
