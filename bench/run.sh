#!/usr/bin/env bash
# bench/run.sh - the proxy-core benchmark: passproxy (libcommon's httpd + httpc + pipe)
# against nginx proxy_pass (buffering off) to the same fake upstream, JSON POSTs with a
# ~5 KB body and 50-event SSE streams at concurrency 16 and 128, loopback only. Then
# 1,000 open streams through passproxy, measuring its RSS. In between, bench/httpc_load.c
# measures the client core alone on the same upstream, to split the proxy's CPU per request.
#
# The load itself is ../shared/peer-bench/peers.sh (nginx upstream, wrk, sseload); this
# script builds a release passproxy, installs what is missing and passes it in as a row.
#
#   bench/run.sh                 # DURATION=10 per run; ROUNDS=1
#   ROUNDS=3 bench/run.sh        # medians of 3 interleaved rounds
#   ROWS="direct nginx" ...      # any peers.sh knob passes through
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peer-bench}
RUN=${RUN_DIR:-$ROOT/bench/run}
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
PORT=${PROXY_PORT_BENCH:-18090}
mkdir -p "$RUN/bin" "$RUN/logs"

[ -x "$PEERS/peers.sh" ] || { echo "bench: $PEERS/peers.sh not found (../shared beside the repo)" >&2; exit 1; }

need=()
for p in nginx-light libnginx-mod-http-echo wrk curl nodejs gcc cmake pkg-config python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
command -v nginx >/dev/null && need=("${need[@]/nginx-light}")
command -v node >/dev/null && need=("${need[@]/nodejs}")
need=($(printf '%s\n' "${need[@]}" | grep . || true))
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "bench: missing ${need[*]} (run as root)" >&2; exit 1; }
    # keep the nginx package from starting its default service on port 80
    prc=/usr/sbin/policy-rc.d made=0
    [ -e $prc ] || { printf '#!/bin/sh\nexit 101\n' >$prc; chmod +x $prc; made=1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ $made = 1 ] && rm -f $prc
fi

# the load generator for SSE comes with peer-bench; build it into our run dir
[ -x "$RUN/bin/sseload" ] && [ "$RUN/bin/sseload" -nt "$PEERS/lib/sseload.c" ] ||
    gcc -O2 -Wall -pthread -o "$RUN/bin/sseload" "$PEERS/lib/sseload.c"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target passproxy httpc_load >/dev/null
BIN=$BUILD/tests/passproxy

echo "== throughput and latency (peers.sh; ratios are against nginx in the same run)"
ROWS=${ROWS:-"direct nginx custom"} PROXY_NAME=passproxy PROXY_URL="http://127.0.0.1:$PORT" \
    PROXY_CMD="$BIN --listen 127.0.0.1:$PORT --upstream \$UPSTREAM_URL" \
    SKIP_INSTALL=1 RUN_DIR="$RUN" bash "$PEERS/peers.sh"

echo
echo "== the client core alone (httpc_load: libcurl + cm_httpc, no server) on the same upstream"
# peers.sh left its nginx upstream config in the run dir; start it again for this part
nginx -c "$RUN/nginx-up/nginx.conf" -p "$RUN/nginx-up" >"$RUN/logs/upstream-httpc.log" 2>&1 &
UP=$!
trap 'kill $UP 2>/dev/null; wait $UP 2>/dev/null' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:${UPSTREAM_PORT:-18080}/" && break; sleep 0.1; done
for c in ${CONCS:-16 128}; do
    echo -n "c=$c: "
    "$BUILD/tests/httpc_load" "http://127.0.0.1:${UPSTREAM_PORT:-18080}/v1/chat/completions" \
        "$RUN/payloads/req-json.json" "$c" "${DURATION:-10}"
done
kill $UP 2>/dev/null; wait $UP 2>/dev/null; trap - EXIT

echo
echo "== 1,000 open streams through passproxy"
python3 "$ROOT/bench/streams_rss.py" "$BIN" "${STREAMS:-1000}"
