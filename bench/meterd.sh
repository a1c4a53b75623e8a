#!/usr/bin/env bash
# bench/meterd.sh - meterd as one more row of ../shared/peer-bench/peers.sh beside nginx
# proxy_pass to the same fake upstream: every request through meterd is authenticated,
# reserved, relayed and billed (a log row each), so the row is what metering costs.
# Then bench/meterd_billing.sh: billed requests per second with zero drift.
#   bench/meterd.sh        (DURATION, CONCS, ROUNDS... are peers.sh's knobs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peer-bench}
RUN=${RUN_DIR:-$ROOT/bench/run/meterd}
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
PORT=${METERD_BENCH_PORT:-18095}
mkdir -p "$RUN/bin"
[ -x "$RUN/bin/sseload" ] && [ "$RUN/bin/sseload" -nt "$PEERS/lib/sseload.c" ] ||
    gcc -O2 -Wall -pthread -o "$RUN/bin/sseload" "$PEERS/lib/sseload.c"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target meterd >/dev/null
echo "== meterd row (peers.sh; ratios against nginx in the same run)"
METERD_BIN=$BUILD/meterd/meterd ROWS=${ROWS:-"direct nginx custom"} PROXY_NAME=meterd \
    PROXY_URL="http://127.0.0.1:$PORT" PROXY_CMD="$ROOT/bench/meterd_peer.sh" \
    SKIP_INSTALL=1 RUN_DIR="$RUN" bash "$PEERS/peers.sh"
echo
echo "== billed requests per second, zero drift"
BENCH_BUILD=$BUILD bash "$ROOT/bench/meterd_billing.sh"
