#!/usr/bin/env bash
# Runs the coverage-guided fuzzers for a bounded time each.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 120 s, all targets)
#   data_file, journal  the storage engine opening arbitrary images (seeded with real ones)
#   pgwire              one client connection of arbitrary bytes to a real DB tier
#   http                one client connection of arbitrary bytes to a real web tier
# pgwire and http start from fuzz/regressions/TARGET (seeds, and crashers kept as regression
# tests, replayed by `cargo test`); a crasher they find is written there as crash-* and fails
# the run: commit it with the fix.
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(data_file journal pgwire http)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Its own target directory: the sanitizer build shares nothing with the normal one.
export CARGO_TARGET_DIR="${TIERS_FUZZ_TARGET_DIR:-$HOME/.cache/tiers-fuzz-target}"
for target in "${targets[@]}"; do
    case "$target" in
    data_file | journal)
        TIERS_FUZZ_CORPUS="$PWD/corpus" cargo test --manifest-path ../Cargo.toml -p tiers-storage \
            --test untrusted write_fuzz_seed_corpus -- --ignored --quiet
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
            -max_total_time="$secs" -max_len=600000 -rss_limit_mb=2048 -timeout=30
        ;;
    pgwire | http)
        mkdir -p "corpus/$target"
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "regressions/$target" -- \
            -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -timeout=30 \
            -artifact_prefix="regressions/$target/" -print_final_stats=1
        ;;
    *)
        echo "unknown fuzz target $target" >&2
        exit 2
        ;;
    esac
done
