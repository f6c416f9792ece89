//! Replays the fuzz targets' harness over deterministic mutations of real
//! data files and journals, so every CI run checks that arbitrary bytes are
//! reported as corruption and never panic or hang the engine. (The
//! coverage-guided fuzzers live in `fuzz/`; see `docs/storage.md`.)

use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiers_storage::faults::{SimVfs, open_untrusted_image};
use tiers_storage::{Config, Engine, TreeKind};

/// A small but varied real image: B+tree with overflow values, a hash
/// index, several checkpoints, and journal records after the last one.
fn real_image() -> (Vec<u8>, Vec<u8>) {
    let sim = SimVfs::new();
    let config = Config {
        page_size: 4096,
        cache_bytes: 64 * 4096,
        background_writer: false,
        journal_compression: true,
        journal_segment_bytes: 256 << 10,
        ..Config::default()
    };
    let engine = Engine::open_with_vfs(Path::new("/db"), config, Arc::new(sim.clone())).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("t", TreeKind::BTree).unwrap();
    tx.create_tree("h", TreeKind::Hash).unwrap();
    for i in 0..300u32 {
        let v = if i % 50 == 0 {
            vec![i as u8; 9000]
        } else {
            vec![i as u8; 40]
        };
        tx.put("t", &i.to_be_bytes(), &v).unwrap();
        tx.hash_insert("h", &(i % 7).to_be_bytes(), &i.to_be_bytes())
            .unwrap();
    }
    tx.commit().unwrap();
    engine.checkpoint().unwrap();
    for i in 0..20u32 {
        let mut tx = engine.begin_write().unwrap();
        tx.put("t", &(1000 + i).to_be_bytes(), b"after the checkpoint")
            .unwrap();
        tx.delete("t", &(i * 3).to_be_bytes()).unwrap();
        tx.commit().unwrap();
    }
    sim.crash_clean();
    drop(engine);
    let data = sim.read_file(Path::new("/db/data.tdb")).unwrap();
    let journal = sim
        .file_names()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .filter_map(|p| sim.read_file(&p))
        .max_by_key(|j| j.len())
        .unwrap();
    (data, journal)
}

fn mutate(rng: &mut StdRng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                if !out.is_empty() {
                    let i = rng.random_range(0..out.len());
                    out[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        1 => out.truncate(rng.random_range(0..=out.len())),
        2 => {
            // Copy a run of bytes over another place (misplaced data).
            if out.len() > 64 {
                let len = rng.random_range(1..64);
                let from = rng.random_range(0..out.len() - len);
                let to = rng.random_range(0..out.len() - len);
                let run = out[from..from + len].to_vec();
                out[to..to + len].copy_from_slice(&run);
            }
        }
        3 => {
            if !out.is_empty() {
                let i = rng.random_range(0..out.len());
                let n = rng.random_range(1..16).min(out.len() - i);
                for b in &mut out[i..i + n] {
                    *b = rng.random();
                }
            }
        }
        _ => out.extend((0..rng.random_range(1..5000)).map(|_| rng.random::<u8>())),
    }
    out
}

#[test]
fn mutated_images_never_panic() {
    let (data, journal) = real_image();
    assert!(
        open_untrusted_image(&data, &journal, false),
        "the unmutated image must open"
    );
    let mut rng = StdRng::seed_from_u64(0x7135);
    let mut opened = 0;
    for round in 0..600 {
        let reseal = round % 2 == 0;
        let (d, j) = match round % 3 {
            0 => (mutate(&mut rng, &data), journal.clone()),
            1 => (data.clone(), mutate(&mut rng, &journal)),
            _ => (mutate(&mut rng, &data), mutate(&mut rng, &journal)),
        };
        opened += usize::from(open_untrusted_image(&d, &j, reseal));
    }
    // Some mutations hit only free space or stale bytes and still open;
    // most must be refused as corrupt.
    assert!(opened > 0 && opened < 600, "opened {opened} of 600");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(99);
    for len in [0usize, 1, 100, 4095, 4096, 8192, 20000] {
        for _ in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let _ = open_untrusted_image(&bytes, &[], true);
            let _ = open_untrusted_image(&[], &bytes, false);
        }
    }
}

/// Writes real images as seed inputs for the coverage-guided fuzzers
/// (`fuzz/run.sh` calls this with `TIERS_FUZZ_CORPUS` set).
#[test]
#[ignore = "tooling: run by fuzz/run.sh"]
fn write_fuzz_seed_corpus() {
    let root = std::path::PathBuf::from(std::env::var("TIERS_FUZZ_CORPUS").unwrap());
    let (data, journal) = real_image();
    std::fs::create_dir_all(root.join("data_file")).unwrap();
    std::fs::create_dir_all(root.join("journal")).unwrap();
    for flags in [0u8, 1] {
        let mut input = vec![flags];
        input.extend_from_slice(&data);
        std::fs::write(
            root.join("data_file").join(format!("real-image-{flags}")),
            input,
        )
        .unwrap();
    }
    std::fs::write(root.join("journal").join("real-journal"), journal).unwrap();
}

/// Inputs the coverage-guided fuzzers once crashed on, replayed forever.
/// Files are named `<target>-<what>`; `data_file` inputs start with the
/// flags byte, `journal` inputs are a journal segment.
#[test]
fn fuzz_regressions_stay_fixed() {
    // The checkout's path at run time, not at build time: a test binary
    // reused from a build in another checkout must still find the files.
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("data_file") {
            if let Some((flags, data)) = bytes.split_first() {
                let _ = open_untrusted_image(data, &[], flags & 1 == 1);
            }
        } else {
            let _ = open_untrusted_image(&[], &bytes, false);
        }
        seen += 1;
    }
    assert!(seen > 0);
}
