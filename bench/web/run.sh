#!/usr/bin/env bash
# Side-by-side web tier benchmark: tiers web vs nginx (static files) and vs
# HAProxy (reverse proxy), all on loopback on this machine, driven by wrk.
#
#   bench/web/run.sh [SECONDS] [IDLE_CONNECTIONS]   (defaults: 10 s, 10000)
#   ROUNDS=3 (runs per line and system; medians are compared)
#
# It installs nginx, HAProxy and wrk from Debian's packages if missing and
# configures them equivalently to tiers: as many workers as cores, access
# log off, keep-alive on, sendfile on for nginx. Lines:
#   1. a 1 KiB file, keep-alive, 64 connections: req/s and p99 latency
#   2. a 1 MiB file, 16 connections: bytes/s
#   3. proxied to a fixed small backend (an nginx `return 200`), 64
#      connections: req/s through HAProxy vs through tiers
#   4. IDLE_CONNECTIONS idle keep-alive connections held: memory per
#      connection (RSS growth / connections), nginx vs tiers
# and prints the tiers/reference ratio for each. tiers serves files with its
# default work-stealing runtime and proxies with one worker thread per core
# (`--workers`), the configuration each is best at (see docs/web.md).
set -euo pipefail
cd "$(dirname "$0")"
SECS="${1:-10}"
IDLE="${2:-10000}"
if ! command -v nginx >/dev/null || ! command -v haproxy >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light haproxy wrk >/dev/null \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx haproxy wrk >/dev/null
fi
# As many descriptors as allowed (the idle line needs IDLE + a few hundred).
ulimit -n "$(ulimit -Hn)"

ROOT="$(cd ../.. && pwd)"
(cd "$ROOT" && cargo build --release -q -p tiers)
TIERS="${CARGO_TARGET_DIR:-$ROOT/target}/release/tiers"
CORES="$(nproc)"

WORK="$(mktemp -d /var/tmp/tiers-web-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    [ -f "$WORK/backend.pid" ] && kill "$(cat "$WORK/backend.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/site"
head -c 1024 /dev/urandom >"$WORK/site/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/site/1m.bin"

NGINX_PORT=18180
BACKEND_PORT=18190
HAPROXY_PORT=18182
TIERS_PORT=18181
TIERS_PROXY_PORT=18183

nginx_conf() { # $1 = port-and-content block, $2 = pid file
    cat <<CONF
worker_processes $CORES;
pid $2;
error_log $WORK/nginx-error.log;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    open_file_cache max=10000 inactive=60s;
    types { application/octet-stream bin; }
    client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    $1
}
CONF
}
mkdir -p "$WORK/tmp"
nginx_conf "server { listen 127.0.0.1:$NGINX_PORT; root $WORK/site; }" "$WORK/nginx.pid" >"$WORK/nginx.conf"
nginx_conf "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 'ok from the backend'; } }" \
    "$WORK/backend.pid" >"$WORK/backend.conf"
cat >"$WORK/haproxy.cfg" <<CONF
global
    nbthread $CORES
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 75s
    timeout server 75s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:$BACKEND_PORT
CONF

echo "== starting nginx (files), nginx (backend), HAProxy and tiers web" >&2
nginx -c "$WORK/nginx.conf" -g "daemon on;"
nginx -c "$WORK/backend.conf" -g "daemon on;"
haproxy -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
# Every load generator here is one address: lift the per-IP limit (512 by
# default), as nginx and HAProxy have none.
printf '[web.limits]\nmax_connections_per_ip = 0\n' >"$WORK/tiers-web.toml"
"$TIERS" web --config "$WORK/tiers-web.toml" --listen "127.0.0.1:$TIERS_PORT" --admin 127.0.0.1:0 \
    --root "$WORK/site" >"$WORK/tiers.log" 2>&1 &
TIERS_PID=$!
PIDS+=($TIERS_PID)
"$TIERS" web --config "$WORK/tiers-web.toml" --listen "127.0.0.1:$TIERS_PROXY_PORT" --admin 127.0.0.1:0 \
    --upstream "http://127.0.0.1:$BACKEND_PORT" --workers "$CORES" >"$WORK/tiers-proxy.log" 2>&1 &
PIDS+=($!)
sleep 1

# wrk → "req/s p99_ms bytes_per_s"
run_wrk() { # $1 connections, $2 url
    wrk -t"$CORES" -c"$1" -d"${SECS}s" --latency "$2" | awk '
        /Requests\/sec:/ { rps = $2 }
        /Transfer\/sec:/ { t = $2; m = 1
            if (t ~ /KB$/) m = 1024; if (t ~ /MB$/) m = 1048576; if (t ~ /GB$/) m = 1073741824
            sub(/[KMG]?B$/, "", t); bps = t * m }
        /^ +99%/ { l = $2; f = 1
            if (l ~ /us$/) f = 0.001; if (l ~ /ms$/) f = 1; if (l ~ /[0-9]s$/ && l !~ /ms$/ && l !~ /us$/) f = 1000
            sub(/[a-z]+$/, "", l); p99 = l * f }
        END { printf "%.0f %.3f %.0f\n", rps, p99, bps }'
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }

# This machine is shared by the servers and wrk, so single runs vary by
# ±15%: each line runs ROUNDS times, alternating reference and tiers, and
# the median of each is compared.
ROUNDS="${ROUNDS:-3}"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
compare() { # $1 connections, $2 reference url, $3 tiers url → "ref_rps ref_p99 ref_bps tiers_rps tiers_p99 tiers_bps"
    local r t
    : >"$WORK/ref" ; : >"$WORK/tiers"
    for _ in $(seq 1 "$ROUNDS"); do
        run_wrk "$1" "$2" >>"$WORK/ref"
        run_wrk "$1" "$3" >>"$WORK/tiers"
    done
    for f in ref tiers; do
        for col in 1 2 3; do awk -v c="$col" '{ print $c }' "$WORK/$f" | median; done
    done | tr '\n' ' '
    echo
}

printf "%-44s %14s %14s %8s\n" "line" "tiers" "reference" "ratio"
read -r n_rps n_p99 _ t_rps t_p99 _ < <(compare 64 "http://127.0.0.1:$NGINX_PORT/1k.bin" "http://127.0.0.1:$TIERS_PORT/1k.bin")
printf "%-44s %14s %14s %8s\n" "1 KiB file, 64 conns, req/s (vs nginx)" "$t_rps" "$n_rps" "$(ratio "$t_rps" "$n_rps")"
printf "%-44s %14s %14s %8s\n" "1 KiB file, 64 conns, p99 ms (lower wins)" "$t_p99" "$n_p99" "$(ratio "$n_p99" "$t_p99")"

read -r _ _ n_bps _ _ t_bps < <(compare 16 "http://127.0.0.1:$NGINX_PORT/1m.bin" "http://127.0.0.1:$TIERS_PORT/1m.bin")
printf "%-44s %14s %14s %8s\n" "1 MiB file, 16 conns, MB/s (vs nginx)" \
    "$((t_bps / 1048576))" "$((n_bps / 1048576))" "$(ratio "$t_bps" "$n_bps")"

read -r h_rps _ _ p_rps _ _ < <(compare 64 "http://127.0.0.1:$HAPROXY_PORT/" "http://127.0.0.1:$TIERS_PROXY_PORT/")
printf "%-44s %14s %14s %8s\n" "proxied, 64 conns, req/s (vs HAProxy)" "$p_rps" "$h_rps" "$(ratio "$p_rps" "$h_rps")"

# Idle keep-alive connections: RSS growth per connection.
rss_of() { # pids... → total RSS in KiB
    local total=0
    for p in "$@"; do
        total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
hold_idle() { # $1 port, $2 pid list (quoted) → bytes per connection
    local port="$1" pids="$2"
    local before after
    before=$(rss_of $pids)
    python3 - "$port" "$IDLE" "$WORK/held.$port" <<'PY' &
import socket, sys, time, os
port, n, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: b\r\n\r\n")
    socks.append(s)
for s in socks:
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
open(flag, "w").close()
time.sleep(60)
PY
    local holder=$!
    for _ in $(seq 1 600); do [ -f "$WORK/held.$port" ] && break; sleep 0.1; done
    # Let both servers settle (tiers parks idle connections after 200 ms
    # and returns their memory within a second).
    sleep 3
    after=$(rss_of $pids)
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    echo $(( (after - before) * 1024 / IDLE ))
}
NGINX_PIDS="$(cat "$WORK/nginx.pid") $(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')"
n_mem=$(hold_idle $NGINX_PORT "$NGINX_PIDS")
t_mem=$(hold_idle $TIERS_PORT "$TIERS_PID")
printf "%-44s %14s %14s %8s\n" "$IDLE idle keep-alive conns, bytes/conn (lower wins)" "$t_mem" "$n_mem" "$(ratio "$n_mem" "$t_mem")"
echo "(ratios are tiers/reference for throughput, reference/tiers for latency and memory: above 1.0, tiers wins)"
