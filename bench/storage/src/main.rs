//! Side-by-side benchmark of `tiers-storage` against SQLite and redb.
//!
//! Run it with `bench/storage/run.sh` (add `--quick` for a smoke run, `--keys N`
//! to change the data set size, `--dir PATH` to choose where the data
//! directories go; the default is a fresh directory under `/var/tmp`, which
//! is on a real disk, so fsync costs what it costs).
//!
//! All three systems do the same logical work on the same data: keys are the
//! 8-byte big-endian encoding of a `u64` id, values are 100 bytes of
//! pseudo-random data derived from the id. SQLite stores them in
//! `CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID` with
//! `journal_mode=WAL` and `synchronous=FULL`; redb in a `&[u8] -> &[u8]`
//! table with its default durability (`Immediate`); tiers-storage in one
//! B+tree with its default durability (`Full`) and 8 KiB pages. Every commit
//! timed below is durable (fsynced) when it returns, in all three systems.
//!
//! Workloads, in the order they run (each runs for tiers, then SQLite, then
//! redb, before the next workload starts):
//!
//! 1. **bulk load**: insert N keys in a random order (a shuffled permutation
//!    of `0..N`) in one transaction, then commit durably. Reported as keys/s,
//!    the time including the commit. Each system has a 512 MiB cache here. A
//!    later close (tiers' final checkpoint, SQLite's WAL checkpoint) is not
//!    timed. 1,000 random keys are then read back and checked, so a broken
//!    engine cannot post a fast number.
//! 2. **point reads (fits in cache)**: reopen with a cache larger than the
//!    data set (512 MiB), warm up with 100,000 random gets, then time 500,000
//!    random gets. Reported as gets/s.
//! 3. **point reads (8 MiB cache)**: reopen with an 8 MiB cache, time 200,000
//!    random gets. The data set is larger than that cache, but the operating
//!    system's page cache still holds the files, so this measures each
//!    engine's buffer-pool miss path (a system call and a page decode per
//!    miss), not the disk.
//! 4. **range scans**: with the 512 MiB cache, 20,000 scans, each reading the
//!    100 entries from a random start key in key order. Reported as
//!    entries/s.
//! 5. **durable commits, 1 writer**: 10,000 transactions, each inserting one
//!    new key and committing durably. Reported as commits/s.
//! 6. **durable commits, 16 writers**: 16 threads, each doing 1,500 such
//!    transactions on its own disjoint keys. Reported as commits/s overall.
//!    tiers-storage shares the fsync of concurrent commits (group commit);
//!    its commits per journal fsync are printed below the table. SQLite
//!    connections (one per thread) queue on the write lock with a 30 s busy
//!    timeout; redb serializes write transactions.
//!
//! Reads are done in read transactions of 1,000 operations each in all three
//! systems. Every get must find its key and every scan must return the 100
//! consecutive keys that follow its start; the program aborts otherwise.
//! `--quick` uses 100,000 keys and a tenth of every iteration count.
//!
//! How to read the table: each cell is a rate (higher is better). The ratio
//! columns are `tiers rate / other rate`, so above 1.00 means tiers-storage
//! is faster on that workload and below 1.00 means it is slower (0.50: half
//! the speed). A system that failed a workload shows `failed`, and the error
//! is printed under the table.

use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Cache for the "fits in cache" workloads, in bytes.
const LARGE_CACHE: usize = 512 << 20;
/// Cache for the "larger than cache" workload, in bytes.
const SMALL_CACHE: usize = 8 << 20;
/// Value length in bytes.
const VALUE_LEN: usize = 100;
/// Operations per read transaction.
const READ_BATCH: usize = 1000;
/// Entries read per range scan.
const SCAN_LEN: usize = 100;
/// Writer threads of the concurrent commit workload.
const WRITERS: usize = 16;

fn key_of(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn id_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key.try_into().expect("8-byte key"))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value stored under `id`: 100 pseudo-random bytes determined by the id.
fn value_of(id: u64) -> [u8; VALUE_LEN] {
    let mut out = [0u8; VALUE_LEN];
    let mut state = id ^ 0x0005_EED0_F713;
    for chunk in out.chunks_mut(8) {
        let word = splitmix(&mut state).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

/// A cheap check that `value` is the one stored under `id` (its first 8 bytes).
fn quick_check(id: u64, value: &[u8]) -> Res<u64> {
    let mut state = id ^ 0x0005_EED0_F713;
    let first = splitmix(&mut state).to_le_bytes();
    if value.len() != VALUE_LEN || value[..8] != first {
        return Err(format!("wrong value for key {id}").into());
    }
    Ok(u64::from(value[8]))
}

fn check_scan(start: u64, i: usize, key: &[u8], value: &[u8]) -> Res<u64> {
    let id = id_of(key);
    if id != start + i as u64 {
        return Err(format!("scan from {start}: entry {i} has key {id}").into());
    }
    quick_check(id, value)
}

// ---------------------------------------------------------------------------
// The systems under test.

/// One storage system. Each method works on the open database except
/// `open`/`close`; the runner times the calls.
trait System {
    fn name(&self) -> &'static str;
    fn open(&mut self, cache_bytes: usize) -> Res<()>;
    fn close(&mut self) -> Res<()>;
    /// Inserts every id in `order` in one transaction and commits durably.
    fn bulk_load(&mut self, order: &[u64]) -> Res<()>;
    /// Reads each id, checking the full value.
    fn check(&mut self, ids: &[u64]) -> Res<()>;
    /// Random gets; every id must be present.
    fn gets(&mut self, ids: &[u64]) -> Res<u64>;
    /// Scans of `SCAN_LEN` entries from each start; returns entries read.
    fn scans(&mut self, starts: &[u64]) -> Res<u64>;
    /// One durable single-key transaction per id.
    fn commits(&mut self, ids: &[u64]) -> Res<()>;
    /// One thread per id list, each doing one durable single-key transaction
    /// per id. Returns the elapsed time from the moment all threads are ready.
    fn concurrent_commits(&mut self, per_thread: &[Vec<u64>]) -> Res<Duration>;
    /// Bytes the database occupies on disk.
    fn disk_bytes(&self) -> u64;
    /// Things worth printing under the table.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Remembers the engine's counters (tiers only).
    fn mark(&mut self) {}
    /// Notes the buffer pool hit ratio since `mark` (tiers only).
    fn note_pool(&mut self, _what: &str) {}
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs `per_thread.len()` threads that each call `work` on their ids, after
/// all of them are ready; returns the elapsed time and the sum of what the
/// threads returned.
fn run_threads<F>(per_thread: &[Vec<u64>], work: F) -> Res<(Duration, u64)>
where
    F: Fn(&[u64], &Barrier) -> Res<u64> + Sync,
{
    let barrier = Barrier::new(per_thread.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|ids| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || work(ids, barrier))
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut total = 0;
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(p) => {
                    first_err.get_or_insert(panic_message(p.as_ref()).into());
                }
            }
        }
        let elapsed = started.elapsed();
        match first_err {
            Some(e) => Err(e),
            None => Ok((elapsed, total)),
        }
    })
}

// --- tiers-storage ---------------------------------------------------------

mod tiers;

// --- SQLite ------------------------------------------------------------------

mod sqlite;

// --- redb ----------------------------------------------------------------------

mod redb_sys;

// ---------------------------------------------------------------------------
// Running and reporting.

struct Options {
    keys: u64,
    quick: bool,
    dir: Option<PathBuf>,
    tiers_page_size: usize,
}

fn parse_args() -> Res<Options> {
    let mut opts = Options {
        keys: 1_000_000,
        quick: false,
        dir: None,
        tiers_page_size: 8192,
    };
    let mut keys_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keys" => {
                let v = args.next().ok_or("--keys needs a number")?;
                opts.keys = v.replace('_', "").parse()?;
                keys_given = true;
            }
            "--quick" => opts.quick = true,
            "--dir" => opts.dir = Some(args.next().ok_or("--dir needs a path")?.into()),
            "--tiers-page-size" => {
                let v = args.next().ok_or("--tiers-page-size needs a number")?;
                opts.tiers_page_size = v.parse()?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: run.sh [--keys N] [--quick] [--dir PATH] [--tiers-page-size BYTES]\n\
                     --keys N    data set size (default 1000000; 100000 with --quick)\n\
                     --quick     smoke run: 100,000 keys and a tenth of the iterations\n\
                     --dir PATH  where the data directories go (default: a new directory under /var/tmp)\n\
                     --tiers-page-size BYTES  tiers' page size (default 8192, its default; SQLite and redb use 4096)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if opts.quick && !keys_given {
        opts.keys = 100_000;
    }
    if opts.keys < 1000 {
        return Err("--keys must be at least 1000".into());
    }
    Ok(opts)
}

/// Iteration counts of the workloads.
struct Counts {
    warmup_gets: usize,
    gets: usize,
    small_cache_gets: usize,
    scans: usize,
    commits: usize,
    commits_per_writer: usize,
    spot_checks: usize,
}

impl Counts {
    fn new(quick: bool) -> Counts {
        let div = if quick { 10 } else { 1 };
        Counts {
            warmup_gets: 100_000 / div,
            gets: 500_000 / div,
            small_cache_gets: 200_000 / div,
            scans: 20_000 / div,
            commits: 10_000 / div,
            commits_per_writer: 1_500 / div,
            spot_checks: 1000,
        }
    }
}

#[derive(Clone, Copy)]
enum Workload {
    BulkLoad,
    ReadsLarge,
    ReadsSmall,
    Scans,
    Commits1,
    Commits16,
}

const WORKLOADS: [Workload; 6] = [
    Workload::BulkLoad,
    Workload::ReadsLarge,
    Workload::ReadsSmall,
    Workload::Scans,
    Workload::Commits1,
    Workload::Commits16,
];

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::BulkLoad => "bulk load, 1 txn (keys/s)",
            Workload::ReadsLarge => "point reads, fits in cache (gets/s)",
            Workload::ReadsSmall => "point reads, 8 MiB cache (gets/s)",
            Workload::Scans => "range scans of 100 (entries/s)",
            Workload::Commits1 => "durable commits, 1 writer (commits/s)",
            Workload::Commits16 => "durable commits, 16 writers (commits/s)",
        }
    }
}

/// The ids each workload uses, the same for every system.
struct Inputs {
    load_order: Vec<u64>,
    spot: Vec<u64>,
    warmup: Vec<u64>,
    gets: Vec<u64>,
    small_gets: Vec<u64>,
    scan_starts: Vec<u64>,
    commit_ids: Vec<u64>,
    writer_ids: Vec<Vec<u64>>,
}

impl Inputs {
    fn new(n: u64, c: &Counts) -> Inputs {
        let mut rng = StdRng::seed_from_u64(0x7135_BE4C);
        let mut load_order: Vec<u64> = (0..n).collect();
        load_order.shuffle(&mut rng);
        let mut random = |count: usize, below: u64| -> Vec<u64> {
            (0..count).map(|_| rng.random_range(0..below)).collect()
        };
        let spot = random(c.spot_checks, n);
        let warmup = random(c.warmup_gets, n);
        let gets = random(c.gets, n);
        let small_gets = random(c.small_cache_gets, n);
        let scan_starts = random(c.scans, n - SCAN_LEN as u64);
        let commit_ids: Vec<u64> = (n..n + c.commits as u64).collect();
        let base = n + c.commits as u64;
        let per = c.commits_per_writer as u64;
        let writer_ids = (0..WRITERS as u64)
            .map(|t| (base + t * per..base + (t + 1) * per).collect())
            .collect();
        Inputs {
            load_order,
            spot,
            warmup,
            gets,
            small_gets,
            scan_starts,
            commit_ids,
            writer_ids,
        }
    }

    fn all_committed(&self) -> Vec<u64> {
        let mut ids = self.commit_ids.clone();
        ids.extend(self.writer_ids.iter().flatten());
        ids
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// Runs one workload on one system; returns its rate in operations per second.
fn run_workload(
    sys: &mut dyn System,
    w: Workload,
    inp: &Inputs,
    notes: &mut Vec<String>,
) -> Res<f64> {
    let name = sys.name();
    let rate = |ops: usize, d: Duration| ops as f64 / d.as_secs_f64();
    match w {
        Workload::BulkLoad => {
            sys.open(LARGE_CACHE)?;
            let t = Instant::now();
            sys.bulk_load(&inp.load_order)?;
            let d = t.elapsed();
            sys.check(&inp.spot)?;
            let t = Instant::now();
            sys.close()?;
            let size = sys.disk_bytes();
            eprintln!(
                "  {name}: loaded {} keys in {:.2} s, close took {:.2} s, {:.1} MiB on disk, {} keys checked",
                inp.load_order.len(),
                d.as_secs_f64(),
                t.elapsed().as_secs_f64(),
                size as f64 / (1 << 20) as f64,
                inp.spot.len()
            );
            notes.push(format!(
                "{name} on-disk size after the load: {:.1} MiB",
                size as f64 / (1 << 20) as f64
            ));
            Ok(rate(inp.load_order.len(), d))
        }
        Workload::ReadsLarge | Workload::ReadsSmall => {
            let (cache, ids) = match w {
                Workload::ReadsLarge => (LARGE_CACHE, &inp.gets),
                _ => (SMALL_CACHE, &inp.small_gets),
            };
            sys.open(cache)?;
            if matches!(w, Workload::ReadsLarge) {
                black_box(sys.gets(&inp.warmup)?);
            }
            sys.mark();
            let t = Instant::now();
            black_box(sys.gets(ids)?);
            let d = t.elapsed();
            sys.note_pool(w.label());
            sys.close()?;
            eprintln!("  {name}: {} gets in {:.2} s", ids.len(), d.as_secs_f64());
            Ok(rate(ids.len(), d))
        }
        Workload::Scans => {
            sys.open(LARGE_CACHE)?;
            let t = Instant::now();
            let entries = sys.scans(&inp.scan_starts)?;
            let d = t.elapsed();
            sys.close()?;
            let expected = inp.scan_starts.len() * SCAN_LEN;
            if entries as usize != expected {
                return Err(
                    format!("{name}: scans read {entries} entries, expected {expected}").into(),
                );
            }
            eprintln!(
                "  {name}: {} scans, {entries} entries in {:.2} s",
                inp.scan_starts.len(),
                d.as_secs_f64()
            );
            Ok(rate(entries as usize, d))
        }
        Workload::Commits1 => {
            sys.open(LARGE_CACHE)?;
            let t = Instant::now();
            sys.commits(&inp.commit_ids)?;
            let d = t.elapsed();
            sys.check(&inp.commit_ids)?;
            sys.close()?;
            eprintln!(
                "  {name}: {} durable commits in {:.2} s",
                inp.commit_ids.len(),
                d.as_secs_f64()
            );
            Ok(rate(inp.commit_ids.len(), d))
        }
        Workload::Commits16 => {
            sys.open(LARGE_CACHE)?;
            let d = sys.concurrent_commits(&inp.writer_ids)?;
            let total: usize = inp.writer_ids.iter().map(Vec::len).sum();
            sys.close()?;
            // Reopen to check that every commit survived, and the data set too.
            sys.open(LARGE_CACHE)?;
            sys.check(&inp.all_committed())?;
            sys.check(&inp.spot)?;
            sys.close()?;
            eprintln!(
                "  {name}: {total} durable commits from {} threads in {:.2} s (all read back after reopen)",
                inp.writer_ids.len(),
                d.as_secs_f64()
            );
            Ok(rate(total, d))
        }
    }
}

fn with_separators(x: f64) -> String {
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn shell(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn machine_facts(dir: &Path) -> Vec<String> {
    let mut facts = Vec::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    facts.push(format!("machine: {cores} cores ({cpu})"));
    if let Some(df) = shell("df", &["-T", &dir.to_string_lossy()])
        && let Some(line) = df.lines().nth(1)
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 2 {
            facts.push(format!(
                "data dir: {} on {} ({})",
                dir.display(),
                cols[0],
                cols[1]
            ));
        }
    }
    facts
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let opts = parse_args()?;
    let counts = Counts::new(opts.quick);
    let base = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => PathBuf::from("/var/tmp"),
    };
    let root = tempfile::Builder::new()
        .prefix("tiers-storage-bench-")
        .tempdir_in(&base)?;
    let started = Instant::now();
    eprintln!(
        "tiers-storage bench: {} keys{}, data under {}",
        with_separators(opts.keys as f64),
        if opts.quick { " (quick)" } else { "" },
        root.path().display()
    );
    let inputs = Inputs::new(opts.keys, &counts);

    let mk = |name: &str| -> Res<PathBuf> {
        let p = root.path().join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    };
    let mut t = tiers::Tiers {
        dir: mk("tiers")?,
        page_size: opts.tiers_page_size,
        engine: None,
        notes: Vec::new(),
        marked: None,
    };
    let mut s = sqlite::Sqlite {
        dir: mk("sqlite")?,
        conn: None,
        cache_bytes: LARGE_CACHE,
    };
    let mut r = redb_sys::Redb {
        dir: mk("redb")?,
        db: None,
    };

    // results[workload][system]: Ok(rate) or Err(message)
    let mut results: Vec<[Option<Result<f64, String>>; 3]> = Vec::new();
    let mut failed: [Option<String>; 3] = [None, None, None];
    let mut notes = Vec::new();
    let mut sqlite_page = None;
    for w in WORKLOADS {
        eprintln!("{}", w.label());
        let mut row: [Option<Result<f64, String>>; 3] = [None, None, None];
        for (i, sys) in [&mut t as &mut dyn System, &mut s, &mut r]
            .into_iter()
            .enumerate()
        {
            if failed[i].is_some() {
                continue;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                run_workload(sys, w, &inputs, &mut notes)
            }));
            let res = match outcome {
                Ok(Ok(rate)) => Ok(rate),
                Ok(Err(e)) => Err(e.to_string()),
                Err(p) => Err(panic_message(p.as_ref())),
            };
            if let Err(msg) = &res {
                eprintln!("  {}: FAILED: {msg}", sys.name());
                failed[i] = Some(format!("{}: {}: {msg}", sys.name(), w.label()));
                let _ = catch_unwind(AssertUnwindSafe(|| sys.close()));
            }
            row[i] = Some(res);
        }
        if matches!(w, Workload::BulkLoad) && failed[1].is_none() {
            s.open(SMALL_CACHE)?;
            sqlite_page = s.page_size().ok();
            s.close()?;
        }
        results.push(row);
    }
    let elapsed = started.elapsed();

    // --- the table ---
    let cell = |c: &Option<Result<f64, String>>| match c {
        Some(Ok(v)) => with_separators(*v),
        Some(Err(_)) => "failed".into(),
        None => "skipped".into(),
    };
    let ratio = |a: &Option<Result<f64, String>>, b: &Option<Result<f64, String>>| match (a, b) {
        (Some(Ok(a)), Some(Ok(b))) if *b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    let mut out = String::new();
    writeln!(
        out,
        "| workload | tiers | SQLite | redb | tiers/SQLite | tiers/redb |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for (w, row) in WORKLOADS.iter().zip(&results) {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            w.label(),
            cell(&row[0]),
            cell(&row[1]),
            cell(&row[2]),
            ratio(&row[0], &row[1]),
            ratio(&row[0], &row[2]),
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Ratios are tiers rate / other rate: above 1.00 tiers-storage is faster, below 1.00 slower."
    )?;
    let tiers_notes = t.notes();
    let cpf = tiers_notes
        .iter()
        .find(|n| n.contains(&format!("{WRITERS} writers:")))
        .cloned()
        .unwrap_or_else(|| format!("tiers {WRITERS} writers: no result"));
    writeln!(out, "- {cpf}")?;
    for n in tiers_notes.iter().filter(|n| **n != cpf) {
        writeln!(out, "- {n}")?;
    }
    writeln!(
        out,
        "- keys N = {} (8-byte big-endian keys, {VALUE_LEN}-byte values){}",
        with_separators(opts.keys as f64),
        if opts.quick {
            ", --quick: a tenth of the iterations"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "- iterations: {} gets after {} warm-up gets; {} gets with the small cache; {} scans of {SCAN_LEN}; {} commits; {WRITERS} x {} commits",
        counts.gets,
        counts.warmup_gets,
        counts.small_cache_gets,
        counts.scans,
        counts.commits,
        counts.commits_per_writer
    )?;
    writeln!(
        out,
        "- page size: tiers {}, SQLite {}, redb 4096; cache: {} MiB (load, fits-in-cache reads, scans, commits) and {} MiB (small-cache reads) for each system",
        opts.tiers_page_size,
        sqlite_page.map_or("?".into(), |p| p.to_string()),
        LARGE_CACHE >> 20,
        SMALL_CACHE >> 20
    )?;
    writeln!(
        out,
        "- durability: tiers Durability::Full; SQLite journal_mode=WAL, synchronous=FULL; redb Durability::Immediate"
    )?;
    for n in &notes {
        writeln!(out, "- {n}")?;
    }
    for f in machine_facts(root.path()) {
        writeln!(out, "- {f}")?;
    }
    writeln!(out, "- total run time {:.1} s", elapsed.as_secs_f64())?;
    for f in failed.iter().flatten() {
        writeln!(out, "- FAILED {f}")?;
    }
    print!("{out}");
    Ok(())
}
