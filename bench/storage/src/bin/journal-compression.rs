//! Measures LZ4 compression of tiers-storage journal records: journal bytes
//! per row with and without `Config::journal_compression`, for commits of 1,
//! 10 and 100 JSON-like rows (the board app's posts).
//!
//! Run: `cd bench/storage && cargo run --release --bin journal-compression`

use std::time::Instant;

use tiers_storage::{Config, Durability, Engine, TreeKind};

fn row(i: u64) -> String {
    format!(
        "{{\"id\":{i},\"title\":\"Post number {i} about three-tier systems\",\"author\":\"user{}\",\
         \"body\":\"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
         incididunt ut labore et dolore magna aliqua.\",\"created_at\":\"2026-11-28T07:{:02}:00Z\"}}",
        i % 100,
        i % 60
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const ROWS: u64 = 20_000;
    println!("| rows per commit | compression | journal bytes per row | ratio | time |");
    println!("|---:|---|---:|---:|---:|");
    for rows_per_commit in [1u64, 10, 100] {
        let mut plain = 0;
        for compress in [false, true] {
            let dir = tempfile::tempdir_in("/var/tmp")?;
            // Relaxed durability: this measures bytes and CPU, not fsync latency.
            let config = Config {
                journal_compression: compress,
                durability: Durability::Relaxed,
                ..Config::default()
            };
            let engine = Engine::open(dir.path(), config)?;
            let mut tx = engine.begin_write()?;
            tx.create_tree("posts", TreeKind::BTree)?;
            tx.commit()?;
            let before = engine.metrics().journal_bytes;
            let started = Instant::now();
            for first in (0..ROWS).step_by(rows_per_commit as usize) {
                let mut tx = engine.begin_write()?;
                for i in first..first + rows_per_commit {
                    tx.put("posts", &i.to_be_bytes(), row(i).as_bytes())?;
                }
                tx.commit()?;
            }
            let elapsed = started.elapsed();
            let bytes = engine.metrics().journal_bytes - before;
            if !compress {
                plain = bytes;
            }
            println!(
                "| {rows_per_commit} | {} | {:.0} | {:.1}x | {:.0} ms |",
                if compress { "lz4" } else { "off" },
                bytes as f64 / ROWS as f64,
                plain as f64 / bytes as f64,
                elapsed.as_secs_f64() * 1000.0
            );
            engine.close()?;
        }
    }
    Ok(())
}
