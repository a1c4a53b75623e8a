#!/usr/bin/env bash
# bench/meterd_billing.sh - billed requests per second through meterd's relay, and drift:
# a release meterd in front of an nginx upstream that answers every POST
# /v1/chat/completions with a fixed chat.completion (usage 10 prompt + 5 completion
# tokens), wrk driving non-stream chat requests with one sk- key at CONCURRENCY for
# DURATION seconds. Afterwards the database must balance to the unit: the user's quota
# went down by exactly the sum of the consume log rows, one row per 200 answer, and
# request_count equals that count (no lost or double charge). Loopback only.
#
#   bench/meterd_billing.sh                        # DURATION=10 CONCURRENCY=64
#   DURATION=20 CONCURRENCY=256 bench/meterd_billing.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
THREADS=${THREADS:-2}
UP_PORT=${UP_PORT:-18191}
PORT=${METERD_PORT:-18192}
RUN=$(mktemp -d /tmp/meterd-bench-XXXXXX)
KEY=BenchKey0123456789abcdefghijklmnopqrstuvwxyzABCD
QUOTA=1000000000000

for t in nginx wrk python3 cmake; do
    command -v $t >/dev/null || { echo "bench: $t is needed" >&2; exit 1; }
done
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target meterd >/dev/null

cat >"$RUN/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$UP_PORT;
        location /v1/chat/completions {
            default_type application/json;
            return 200 '{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}';
        }
    }
}
EOF
nginx -c "$RUN/nginx.conf" -p "$RUN" >/dev/null 2>&1 &
NGINX=$!
(cd "$RUN" && SQLITE_PATH="$RUN/one-api.db" SESSION_SECRET=bench exec \
    "$BUILD/meterd/meterd" --host 127.0.0.1 --port "$PORT" --log-level warn \
    2>"$RUN/meterd.log") &
METERD=$!
cleanup() {
    kill "$METERD" 2>/dev/null || true
    wait "$METERD" 2>/dev/null || true
    kill "$NGINX" 2>/dev/null || true
    wait "$NGINX" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
    python3 - "$PORT" <<'EOF' 2>/dev/null && break
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)
EOF
    sleep 0.1
done

python3 - "$PORT" "$RUN/one-api.db" "$UP_PORT" "$KEY" "$QUOTA" <<'EOF'
import json, sqlite3, sys, time, urllib.request
port, db, up, key, quota = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
req = urllib.request.Request(f"http://127.0.0.1:{port}/api/setup", method="POST",
    data=json.dumps({"username": "root", "password": "benchpass1",
                     "confirmPassword": "benchpass1"}).encode())
urllib.request.urlopen(req).read()
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute('INSERT INTO options("key", value) VALUES("ModelRatio", \'{"gpt-4o":1.25}\')')
uid = c.execute('INSERT INTO users(username, password, quota, "group", aff_code, created_at) '
                'VALUES("bench", "x", ?, "default", "bnch", 0)', (quota,)).lastrowid
c.execute('INSERT INTO tokens(user_id, "key", status, name, expired_time, remain_quota, '
          'unlimited_quota, created_time, accessed_time) VALUES(?, ?, 1, "bench", -1, 0, 1, 0, 0)',
          (uid, key))
cid = c.execute('INSERT INTO channels(type, "key", status, name, base_url, models, "group", '
                'created_time) VALUES(1, "sk-up", 1, "nginx", ?, "gpt-4o", "default", 0)',
                (f"http://127.0.0.1:{up}",)).lastrowid
c.execute('INSERT INTO abilities("group", model, channel_id, enabled, priority, weight) '
          'VALUES("default", "gpt-4o", ?, 1, 0, 0)', (cid,))
time.sleep(1.5)  # the relay's cache and the options cache pick the rows up
EOF

cat >"$RUN/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer sk-$KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o","messages":[{"role":"user","content":"hello there, how are you today?"}]}'
EOF
echo "meterd relay billing: $CONCURRENCY connections, ${DURATION}s, non-stream chat, nginx upstream"
wrk -t "$THREADS" -c "$CONCURRENCY" -d "${DURATION}s" --latency -s "$RUN/post.lua" \
    "http://127.0.0.1:$PORT/v1/chat/completions" | tee "$RUN/wrk.txt"
sleep 1 # the last settles commit before their answers leave; nothing should be pending
python3 - "$RUN/one-api.db" "$QUOTA" "$RUN/wrk.txt" "$PORT" <<'EOF'
import re, sqlite3, sys, urllib.request
db, quota, wrk, port = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read(), sys.argv[4]
c = sqlite3.connect(db, timeout=30)
q, used, count = c.execute('SELECT quota, used_quota, request_count FROM users WHERE username="bench"').fetchone()
n, s = c.execute('SELECT COUNT(*), COALESCE(SUM(quota),0) FROM logs WHERE type=2').fetchone()
per = int((10 + 5 * 4) * 1.25 + 0.5)  # 37.5 -> 38: half away from zero
total = int(re.search(r"(\d+) requests in", wrk).group(1))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)) else 0
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
commits = int(re.search(r"^meterd_store_writer_commits_total (\d+)", metrics, re.M).group(1))
ops = int(re.search(r"^meterd_store_writer_ops_total (\d+)", metrics, re.M).group(1))
print(f"billed: {n} log rows, {s} quota; user charged {quota - q}; used_quota {used}; "
      f"request_count {count}; wrk 2xx {total - non2xx} (non-2xx {non2xx})")
print(f"writer: {ops} ops in {commits} commits ({ops / max(commits, 1):.1f} per commit)")
drift = (quota - q) - s
ok = drift == 0 and used == s and count == n and s == n * per and n >= total - non2xx
print(f"drift: {drift} quota units; {rps:.0f} billed requests/s; " + ("OK" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
EOF
