#!/usr/bin/env bash
# Runs the storage engine's coverage-guided fuzzers, seeded with real images.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (default 120)
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
TIERS_FUZZ_CORPUS="$PWD/corpus" cargo test --manifest-path ../Cargo.toml -p tiers-storage \
    --test untrusted write_fuzz_seed_corpus -- --ignored --quiet
for target in data_file journal; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=600000 -rss_limit_mb=2048 -timeout=30
done
