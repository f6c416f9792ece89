//! Replays every input kept for the `http` fuzz target (its seeds, and
//! any crasher it found, in `fuzz/regressions/http/`) against a real web
//! tier: no input may panic any task, and the server must still serve a
//! file after each. The fuzzer itself runs in `.ci/run` (`fuzz/run.sh`).

#[path = "../../../fuzz/feed/http.rs"]
mod feed;

use std::sync::atomic::{AtomicUsize, Ordering};

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn every_kept_http_input_is_survived() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../fuzz/regressions/http");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 9, "the seeds are in {}", dir.display());
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
            "the web tier stopped serving after {}",
            path.display()
        );
        if path.ends_with("seed-get_range") {
            // The replay is real: three ranges came back as multipart.
            let text = String::from_utf8_lossy(&answer);
            assert!(
                text.starts_with("HTTP/1.1 206") && text.contains("multipart/byteranges"),
                "{text}"
            );
        }
    }
}
