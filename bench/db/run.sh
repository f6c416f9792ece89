#!/usr/bin/env bash
# Side-by-side DB benchmark: tiers db vs PostgreSQL 15, both on loopback on
# this machine, driven by pgbench with custom scripts (-n -f).
#
#   bench/db/run.sh [SCALE] [SECONDS] [ROUNDS]   (defaults: scale 10, 10 s, 3 rounds)
#
# Each line runs ROUNDS times, tiers and PostgreSQL taking turns, and reports
# the median tps of each: single runs on a 2-core machine that also runs
# pgbench vary by +-15%.
# It installs PostgreSQL 15 from Debian's packages if missing, runs a
# throw-away PostgreSQL cluster (default configuration, fsync on) and a
# throw-away tiers data directory, loads the same pgbench-shaped tables into
# both with the same multi-row INSERT file (timed), and prints tps for every
# script, mode and client count, with the tiers/PostgreSQL ratio.
set -euo pipefail
cd "$(dirname "$0")"
SCALE="${1:-10}"
SECS="${2:-10}"
ROUNDS="${3:-3}"
PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/postgres" ] || ! command -v pgbench >/dev/null; then
    apt-get update -qq && apt-get install -y -qq postgresql-15 postgresql-contrib >/dev/null
fi
id postgres >/dev/null 2>&1 || useradd --system postgres

ROOT="$(cd ../.. && pwd)"
(cd "$ROOT" && cargo build --release -q -p tiers)
TIERS="${CARGO_TARGET_DIR:-$ROOT/target}/release/tiers"

WORK="$(mktemp -d /var/tmp/tiers-db-bench.XXXXXX)"
chmod 755 "$WORK"
PG_PORT=55491
TIERS_PORT=55492
cleanup() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
    [ -n "${TIERS_PID:-}" ] && kill "$TIERS_PID" 2>/dev/null && wait "$TIERS_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting PostgreSQL 15 (default config) and tiers db" >&2
mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U bench --auth=trust -E UTF8 >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=100" -w start >/dev/null
"$TIERS" db --listen "127.0.0.1:$TIERS_PORT" --admin 127.0.0.1:0 --data-dir "$WORK/tiers" --cache-mib 512 >"$WORK/tiers.log" 2>&1 &
TIERS_PID=$!
sleep 1

PG=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U bench -d postgres)
TI=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TIERS_PORT" -U bench -d tiers)

# pgbench's tables, declared identically for both systems.
cat >"$WORK/schema.sql" <<SQL
CREATE TABLE pgbench_branches (bid INTEGER PRIMARY KEY, bbalance INTEGER, filler CHAR(88));
CREATE TABLE pgbench_tellers (tid INTEGER PRIMARY KEY, bid INTEGER, tbalance INTEGER, filler CHAR(84));
CREATE TABLE pgbench_accounts (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler CHAR(84));
CREATE TABLE pgbench_history (tid INTEGER, bid INTEGER, aid INTEGER, delta INTEGER, mtime TIMESTAMP, filler CHAR(22));
SQL
python3 - "$SCALE" >"$WORK/load.sql" <<'PY'
import sys
scale = int(sys.argv[1])
print("INSERT INTO pgbench_branches (bid, bbalance) VALUES " + ", ".join(f"({b}, 0)" for b in range(1, scale + 1)) + ";")
print("INSERT INTO pgbench_tellers (tid, bid, tbalance) VALUES " + ", ".join(f"({t}, {(t - 1) // 10 + 1}, 0)" for t in range(1, scale * 10 + 1)) + ";")
n = scale * 100000
for start in range(1, n + 1, 1000):
    rows = ", ".join(f"({a}, {(a - 1) // 100000 + 1}, 0)" for a in range(start, min(start + 1000, n + 1)))
    print(f"INSERT INTO pgbench_accounts (aid, bid, abalance) VALUES {rows};")
PY

load() {
    local start end
    "$@" -f "$WORK/schema.sql"
    start=$(date +%s.%N)
    "$@" -f "$WORK/load.sql"
    end=$(date +%s.%N)
    python3 -c "print($end - $start)"
}
echo "== loading scale $SCALE ($((SCALE * 100000)) accounts) with multi-row INSERTs" >&2
PG_LOAD=$(load "${PG[@]}")
TI_LOAD=$(load "${TI[@]}")

# The same accounts again, through COPY FROM STDIN (psql's \copy).
python3 - "$SCALE" >"$WORK/accounts.tsv" <<'PY'
import sys
n = int(sys.argv[1]) * 100000
out = sys.stdout
for a in range(1, n + 1):
    out.write(f"{a}\t{(a - 1) // 100000 + 1}\t0\t\n")
PY
copy_load() {
    local start end
    "$@" -c "CREATE TABLE copy_accounts (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler CHAR(84))"
    start=$(date +%s.%N)
    "$@" -c "\\copy copy_accounts FROM '$WORK/accounts.tsv'"
    end=$(date +%s.%N)
    python3 -c "print($end - $start)"
}
echo "== loading the accounts again with COPY" >&2
PG_COPY=$(copy_load "${PG[@]}")
TI_COPY=$(copy_load "${TI[@]}")

cat >"$WORK/select.sql" <<SQL
\set aid random(1, 100000 * $SCALE)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL
cat >"$WORK/tpcb.sql" <<SQL
\set aid random(1, 100000 * $SCALE)
\set bid random(1, $SCALE)
\set tid random(1, 10 * $SCALE)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
SQL
# Hot rows: every client updates one of two rows, in autocommit (a counter
# on a busy page, say). Each update waits for the row lock of the one before.
cat >"$WORK/hotrow.sql" <<SQL
\set bid random(1, 2)
UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = :bid;
SQL

# tps and failed-transaction percentage of one pgbench run.
bench() {
    local port=$1 db=$2 script=$3 mode=$4 clients=$5 out
    out=$(pgbench -h 127.0.0.1 -p "$port" -U bench -n -f "$WORK/$script" -M "$mode" \
        -c "$clients" -j 2 -T "$SECS" "$db" 2>&1 || true)
    local tps failed
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    failed=$(echo "$out" | sed -n 's/^number of failed transactions: [0-9]* (\([0-9.]*\)%).*/\1/p' | head -1)
    echo "${tps:-0} ${failed:-?}"
}

median() {
    python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"
}

echo
echo "| script | mode | clients | tiers tps | PostgreSQL tps | tiers/PostgreSQL | tiers failed % | PostgreSQL failed % |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
# One line of the table: ROUNDS runs of each system, taking turns.
line() {
    local script=$1 mode=$2 clients=$3 ti_all=() pg_all=() tps ti_fail pg_fail
    for _ in $(seq "$ROUNDS"); do
        read -r tps ti_fail <<<"$(bench "$TIERS_PORT" tiers "$script" "$mode" "$clients")"
        ti_all+=("$tps")
        read -r tps pg_fail <<<"$(bench "$PG_PORT" postgres "$script" "$mode" "$clients")"
        pg_all+=("$tps")
    done
    local ti_tps pg_tps ratio
    ti_tps=$(median "${ti_all[@]}")
    pg_tps=$(median "${pg_all[@]}")
    ratio=$(python3 -c "print(f'{$ti_tps / $pg_tps:.2f}' if $pg_tps else '?')")
    printf '| %s | %s | %s | %.0f | %.0f | %s | %s | %s |\n' "${script%.sql}" "$mode" "$clients" \
        "$ti_tps" "$pg_tps" "$ratio" "$ti_fail" "$pg_fail"
}

for script in select.sql tpcb.sql; do
    for mode in simple prepared; do
        for clients in 8 32; do
            line "$script" "$mode" "$clients"
        done
    done
done
for clients in 8 32; do
    line hotrow.sql prepared "$clients"
done
echo
printf 'load of scale %s with multi-row INSERT: tiers %.1f s, PostgreSQL %.1f s (tiers/PostgreSQL speed %s)\n' \
    "$SCALE" "$TI_LOAD" "$PG_LOAD" "$(python3 -c "print(f'{$PG_LOAD / $TI_LOAD:.2f}')")"
printf 'load of %s accounts with COPY FROM STDIN: tiers %.1f s, PostgreSQL %.1f s (tiers/PostgreSQL speed %s)\n' \
    "$((SCALE * 100000))" "$TI_COPY" "$PG_COPY" "$(python3 -c "print(f'{$PG_COPY / $TI_COPY:.2f}')")"
echo "each line: the median of $ROUNDS runs of pgbench -n -f SCRIPT -M MODE -c CLIENTS -j 2 -T $SECS (failed %: the last run); PostgreSQL 15 default config, fsync on; tiers Durability::Full"
