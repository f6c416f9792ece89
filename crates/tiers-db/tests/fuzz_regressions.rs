//! Replays every input kept for the `pgwire` fuzz target (its seeds, and
//! any crasher it found, in `fuzz/regressions/pgwire/`) against
//! a real DB tier: no input may panic any task, and the server must still answer a
//! query after each. The fuzzer itself runs in `.ci/run` (`fuzz/run.sh`).

#[path = "../../../fuzz/feed/common.rs"]
mod common;
#[path = "../../../fuzz/feed/pgwire.rs"]
mod feed;

#[test]
fn every_kept_pgwire_input_is_survived() {
    let target = feed::Target::start();
    common::replay(
        "pgwire",
        12,
        |input| target.feed(input),
        || target.alive(),
        |name, answer| {
            if name == "seed-simple" {
                // The replay is real: the query ran and its row came back.
                assert!(answer.windows(2).any(|w| w == b"D\0"), "{answer:?}");
            }
        },
    );
}
