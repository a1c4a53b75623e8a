#!/usr/bin/env bash
# bench/cliproxyd.sh - what cliproxyd costs per request with translation on: an OpenAI
# chat client (wrk, ~5 KB body) -> cliproxyd -> a fake Codex backend (nginx answering a
# fixed Responses SSE stream of 40 events), non-stream (cliproxyd aggregates the SSE into
# one chat.completion) and stream (translated chunk by chunk). The reference row is nginx
# proxy_pass to the same upstream (no translation) in the same run. Loopback only.
#
#   bench/cliproxyd.sh              # DURATION=8 per run, CONCS="16 128"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peer-bench}
RUN=${RUN_DIR:-$ROOT/bench/run/cliproxyd}
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
DURATION=${DURATION:-8}
CONCS=${CONCS:-"16 128"}
UP_PORT=18180 NG_PORT=18181 CP_PORT=18182 MT_PORT=18183
KEY=sk-bench-client-0123456789abcdef
mkdir -p "$RUN/auths" "$RUN/tmp" "$RUN/logs"
command -v nginx >/dev/null && command -v wrk >/dev/null ||
    { echo "bench: needs nginx and wrk (bench/run.sh installs them)" >&2; exit 1; }

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target cliproxyd meterd >/dev/null

# the fake Codex answer and the client body
python3 - "$RUN" <<'PY'
import json, sys
run = sys.argv[1]
ev = []
def e(t, d):
    d["type"] = t
    ev.append(f"event: {t}\ndata: {json.dumps(d, separators=(',', ':'))}\n\n")
base = {"id": "resp_b", "object": "response", "created_at": 1760000000, "model": "gpt-5",
        "status": "in_progress", "output": []}
e("response.created", {"response": base})
e("response.output_item.added", {"output_index": 0, "item": {"id": "m", "type": "message",
  "role": "assistant", "content": []}})
text = ""
for i in range(36):
    d = f"word{i} "
    text += d
    e("response.output_text.delta", {"item_id": "m", "output_index": 0, "content_index": 0,
                                     "delta": d})
item = {"id": "m", "type": "message", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}]}
e("response.output_item.done", {"output_index": 0, "item": item})
e("response.completed", {"response": dict(base, status="completed", output=[item], usage={
  "input_tokens": 1200, "output_tokens": 40, "total_tokens": 1240,
  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}})})
sse = "".join(ev)
open(f"{run}/codex.sse", "w").write(sse)
words = ("the gateway forwards each request to the upstream model server and relays "
         "the answer back to the client ").split()
msg = " ".join(words[i % len(words)] for i in range(700))
for stream in (False, True):
    body = {"model": "gpt-5-codex", "messages": [{"role": "system", "content": "You are brief."},
            {"role": "user", "content": msg}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    open(f"{run}/req-{'sse' if stream else 'json'}.json", "w").write(json.dumps(body))
PY

cat >"$RUN/nginx.conf" <<NG
worker_processes 2;
pid $RUN/nginx.pid;
error_log $RUN/logs/nginx.err warn;
daemon off;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $RUN/tmp/cb; proxy_temp_path $RUN/tmp/px;
  fastcgi_temp_path $RUN/tmp/fc; uwsgi_temp_path $RUN/tmp/uw; scgi_temp_path $RUN/tmp/sc;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$UP_PORT backlog=4096;
    client_max_body_size 1m;
    # a POST gets the fixed SSE file (error_page turns it into an internal GET)
    location = /backend-api/codex/responses { error_page 405 =200 /codex.sse; return 405; }
    location = /codex.sse { root $RUN; default_type text/event-stream; }
  }
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NG_PORT backlog=4096;
    client_max_body_size 1m;
    location / { proxy_pass http://up/backend-api/codex/responses; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_buffering off; }
  }
}
NG
printf '{"type":"codex","email":"bench@example.com","access_token":"at-bench-0123456789","refresh_token":"rt","account_id":"acct-bench","expired":"2099-01-01T00:00:00Z"}' \
    >"$RUN/auths/codex-bench@example.com-pro.json"
cat >"$RUN/config.yaml" <<CFG
host: "127.0.0.1"
port: $CP_PORT
auth-dir: "$RUN/auths"
api-keys:
  - "$KEY"
upstreams:
  codex:
    base-url: "http://127.0.0.1:$UP_PORT/backend-api/codex"
CFG
printf 'Authorization: Bearer %s\nContent-Type: application/json\n' "$KEY" >"$RUN/headers.txt"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
nginx -c "$RUN/nginx.conf" -p "$RUN" >"$RUN/logs/nginx.out" 2>&1 &
PIDS+=($!)
"$BUILD/cliproxyd/cliproxyd" -config "$RUN/config.yaml" -log-level warn >"$RUN/logs/cliproxyd.log" 2>&1 &
CP_PID=$!
PIDS+=($CP_PID)
# meterd in front of cliproxyd (the deployed chain): billing every request on top
METERD_BIN=$BUILD/meterd/meterd BENCH_DB_DIR=$RUN/meterd BENCH_MODEL=gpt-5-codex \
    CHANNEL_KEY=$KEY UPSTREAM_URL=http://127.0.0.1:$CP_PORT PROXY_PORT=$MT_PORT \
    METERD_PREPARE_ONLY=1 bash "$ROOT/bench/meterd_peer.sh"
SQLITE_PATH=$RUN/meterd/one-api.db SESSION_SECRET=bench-session-secret-0123456789 \
    "$BUILD/meterd/meterd" --host 127.0.0.1 --port $MT_PORT --log-level warn \
    >"$RUN/logs/meterd.log" 2>&1 &
MT_PID=$!
PIDS+=($MT_PID)
for port in $UP_PORT $NG_PORT $CP_PORT $MT_PORT; do
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
curl -sf -H "Authorization: Bearer $KEY" -d @"$RUN/req-json.json" \
    "http://127.0.0.1:$CP_PORT/v1/chat/completions" | grep -q '"finish_reason":"stop"' ||
    { echo "bench: cliproxyd smoke request failed" >&2; exit 1; }

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
printf 'Authorization: Bearer sk-bench\nContent-Type: application/json\n' >"$RUN/headers-mt.txt"
echo "| row | workload | conc | req/s | p50 ms | p99 ms | cliproxyd CPU µs/req | meterd CPU µs/req |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for w in json sse; do
    for c in $CONCS; do
        for row in nginx cliproxyd meterd+cliproxyd; do
            port=$NG_PORT hdrs=$RUN/headers.txt
            [ $row = cliproxyd ] && port=$CP_PORT
            [ $row = meterd+cliproxyd ] && port=$MT_PORT hdrs=$RUN/headers-mt.txt
            t0=$(ticks $CP_PID) m0=$(ticks $MT_PID)
            out=$(BENCH_BODY="$RUN/req-$w.json" BENCH_HEADERS="$hdrs" \
                  wrk -t2 -c"$c" -d"${DURATION}s" --latency -s "$PEERS/lib/post.lua" \
                  "http://127.0.0.1:$port/v1/chat/completions" 2>&1)
            t1=$(ticks $CP_PID) m1=$(ticks $MT_PID)
            rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
            n=$(echo "$out" | awk '/requests in/ {print $1}')
            p50=$(echo "$out" | awk '$1=="50%" {print $2}')
            p99=$(echo "$out" | awk '$1=="99%" {print $2}')
            per() { awk -v t="$1" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t / hz / n * 1e6}'; }
            cpu="—" mcpu="—"
            [ $row != nginx ] && [ "${n:-0}" -gt 0 ] && cpu=$(per $((t1 - t0)))
            [ $row = meterd+cliproxyd ] && [ "${n:-0}" -gt 0 ] && mcpu=$(per $((m1 - m0)))
            echo "| $row | $w | $c | $rps | $p50 | $p99 | $cpu | $mcpu |"
        done
    done
done
