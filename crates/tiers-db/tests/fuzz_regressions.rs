//! Replays every input kept for the `pgwire` fuzz target (its seeds, and
//! any crasher it found, in `fuzz/regressions/pgwire/`) against a real DB
//! tier: no input may panic any task, and the server must still answer a
//! query after each. The fuzzer itself runs in `.ci/run` (`fuzz/run.sh`).

#[path = "../../../fuzz/feed/pgwire.rs"]
mod feed;

use std::sync::atomic::{AtomicUsize, Ordering};

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn every_kept_pgwire_input_is_survived() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../fuzz/regressions/pgwire");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the seeds are in {}", dir.display());
    let target = feed::Target::start();
    for path in &inputs {
        let answer = target.feed(&std::fs::read(path).unwrap());
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "{} panicked",
            path.display()
        );
        assert!(
            target.alive(),
            "the DB tier stopped answering after {}",
            path.display()
        );
        if path.ends_with("seed-simple") {
            // The replay is real: the query ran and its row came back.
            assert!(answer.windows(2).any(|w| w == b"D\0"), "{answer:?}");
        }
    }
}
