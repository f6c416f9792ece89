#!/usr/bin/env bash
# The whole path, side by side: `tiers up` serving the bundled board app,
# against what a user would otherwise build: nginx in front of a small
# hand-written axum service (bench/e2e/reference) querying PostgreSQL 15.
# Both hold the same 1,000 posts. wrk runs each line against each side.
#
#   bench/e2e/run.sh [SECONDS]        (default 10 s per run)
#
# Lines:
#   static      /static/style.css from disk (web tier vs nginx)
#   page        the board's front page (tiers: rendered by the AP tier, kept in
#               its cache for 5 s; reference: rendered per request)
#   read        /api/posts/500, one primary-key read as JSON (no cache)
#   post        POST /posts, a form creating a post (303)
# and prints the tiers/reference ratio of requests per second.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${1:-10}"
PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/postgres" ] || ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 nginx-light wrk >/dev/null
fi
id postgres >/dev/null 2>&1 || useradd --system postgres
ulimit -n "$(ulimit -Hn)"

ROOT="$(cd ../.. && pwd)"
(cd "$ROOT" && cargo build --release -q -p tiers)
TIERS="${CARGO_TARGET_DIR:-$ROOT/target}/release/tiers"
REF_TARGET="${REF_TARGET:-$HOME/.cache/tiers-bench-reference}"
(cd reference && CARGO_TARGET_DIR="$REF_TARGET" cargo build --release -q)
REFERENCE="$REF_TARGET/release/board-reference"
CORES="$(nproc)"

WORK="$(mktemp -d /var/tmp/tiers-e2e-bench.XXXXXX)"
chmod 755 "$WORK"
PG_PORT=55591; REF_PORT=55592; NGINX_PORT=55593
WEB_PORT=55594; AP_PORT=55595; DB_PORT=55596
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== PostgreSQL 15 + axum reference + nginx, and tiers up" >&2
mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U bench --auth=trust -E UTF8 >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
python3 - >"$WORK/data.sql" <<'PY'
rows = ", ".join(f"('post {i}', 'body of post {i}', 'author{i % 50}')" for i in range(1, 1000))
print(f"INSERT INTO posts (title, body, author) VALUES {rows};")
PY
PG=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U bench -d postgres)
"${PG[@]}" -f "$ROOT/apps/board/schema/001_board.sql" >/dev/null
"${PG[@]}" -f "$WORK/data.sql" >/dev/null
"$REFERENCE" "127.0.0.1:$REF_PORT" "postgres://bench@127.0.0.1:$PG_PORT/postgres" >"$WORK/ref.log" 2>&1 &
PIDS+=($!)
mkdir -p "$WORK/tmp"
cat >"$WORK/nginx.conf" <<CONF
worker_processes $CORES;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    include /etc/nginx/mime.types;
    client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    upstream app { server 127.0.0.1:$REF_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /static/ { alias $ROOT/apps/board/static/; }
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
CONF
nginx -c "$WORK/nginx.conf" -g "daemon on;"

mkdir -p "$WORK/tiers"
cat >"$WORK/tiers/tiers.toml" <<CONF
[db]
listen = "127.0.0.1:$DB_PORT"
admin = "127.0.0.1:0"
data_dir = "$WORK/tiers/data/db"
[ap]
listen = "127.0.0.1:$AP_PORT"
admin = "127.0.0.1:0"
app = "$ROOT/apps/board"
[web]
listen = "127.0.0.1:$WEB_PORT"
admin = "127.0.0.1:0"
[web.limits]
max_connections_per_ip = 0   # the load generator is one address
CONF
(cd "$WORK/tiers" && exec "$TIERS" up >"$WORK/tiers.log" 2>&1) &
PIDS+=($!)
# Up when its DB tier answers (the board's migrations run first), within 30 s.
up=0
for _ in $(seq 1 300); do
    if psql -X -q -h 127.0.0.1 -p "$DB_PORT" -U bench -d tiers -c "SELECT 1 FROM posts LIMIT 1" >/dev/null 2>&1; then
        up=1
        break
    fi
    sleep 0.1
done
[ "$up" = 1 ] || { echo "tiers up did not come up; its log:" >&2; cat "$WORK/tiers.log" >&2; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DB_PORT" -U bench -d tiers -f "$WORK/data.sql" >/dev/null
sleep 1

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "title=bench&body=written+by+wrk&author=wrk"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
rps() { # connections url [script] → req/s of 2xx/3xx answers
    local extra=()
    [ -n "${3:-}" ] && extra=(-s "$3")
    wrk -t"$CORES" -c"$1" -d"${SECS}s" "${extra[@]}" "$2" | awk '
        /Requests\/sec:/ { r = $2 } /Non-2xx or 3xx/ { bad = $5 }
        END { if (bad > 0) printf "%s(%s-errors)\n", r, bad; else print r }'
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1].split('(')[0]),float(sys.argv[2].split('(')[0]); print(f'{a/b:.2f}')" "$1" "$2"; }

printf "%-34s %14s %14s %8s\n" "line (req/s)" "tiers up" "nginx+axum+PG" "ratio"
line() { # name path conns [script]
    local t r
    r=$(rps "$3" "http://127.0.0.1:$NGINX_PORT$2" "${4:-}")
    t=$(rps "$3" "http://127.0.0.1:$WEB_PORT$2" "${4:-}")
    printf "%-34s %14s %14s %8s\n" "$1" "$t" "$r" "$(ratio "$t" "$r")"
}
line "static /static/style.css" /static/style.css 64
line "page / (tiers: AP cache)" / 32
line "read /api/posts/500" /api/posts/500 32
line "post POST /posts" /posts 16 "$WORK/post.lua"
