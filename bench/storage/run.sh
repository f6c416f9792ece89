#!/usr/bin/env bash
# Builds (release) and runs the storage benchmark: tiers-storage vs SQLite vs redb.
# Usage: bench/storage/run.sh [--quick] [--keys N] [--dir PATH]
set -euo pipefail
cd "$(dirname "$0")"
cargo run --release --bin tiers-storage-bench -- "$@"
