#!/usr/bin/env bash
# bench/fullstack.sh - the full-stack table of issue 7 in one run (loopback only, release
# build in build-bench/), by calling the benches that exist:
#   1. bench/cliproxyd.sh: nginx proxy_pass (reference), cliproxyd -> fake Codex (with
#      translation), meterd -> cliproxyd -> fake; req/s, p50/p99, CPU per request; this
#      script adds the ratio to nginx and each daemon's peak RSS (VmHWM, sampled from /proc).
#   2. bench/meterd_billing.sh: meterd -> fake (nginx answering a chat.completion), billed
#      requests/s with the zero-drift check, latency and peak RSS.
#   3. bench/streams_fullstack.py: STREAMS open at once through cliproxyd and through
#      meterd -> cliproxyd, RSS with all open.
#   bench/fullstack.sh              # DURATION=5 CONCS="16 128" STREAMS=4000 (~3 min)
# Not in ctest. Each daemon holds 2 fds per stream: STREAMS is bounded by `ulimit -Hn`/2.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
OUT=${RUN_DIR:-$ROOT/bench/run/fullstack}
export DURATION=${DURATION:-5} CONCS=${CONCS:-"16 128"} BENCH_BUILD=$BUILD
STREAMS=${STREAMS:-4000}
mkdir -p "$OUT"

# peak RSS of our release daemons (matched by their exact binary path) while $1 runs
sample_rss() {
    local tag=$1; shift
    : >"$OUT/rss-$tag"
    ( while :; do
        for p in $(pgrep -x cliproxyd; pgrep -x meterd) ; do
            exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
            case $exe in "$BUILD"/*) awk -v e="$(basename "$exe")" '/^VmHWM/ {print e, $2}' \
                "/proc/$p/status" 2>/dev/null >>"$OUT/rss-$tag" || true ;; esac
        done
        sleep 0.5
      done ) &
    local s=$!
    "$@"; local rc=$?
    kill $s 2>/dev/null; wait $s 2>/dev/null || true
    return $rc
}
peak() { awk -v e="$2" '$1==e && $2>m {m=$2} END {printf "%.0f", m/1024}' "$OUT/rss-$1"; }

echo "== 1. chat through the stack (bench/cliproxyd.sh, DURATION=$DURATION)"
sample_rss chain bash "$ROOT/bench/cliproxyd.sh" | tee "$OUT/chain.md"
echo
echo "| row | workload | conc | req/s | ×nginx | p50 ms | p99 ms | peak RSS MiB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -v cp="$(peak chain cliproxyd)" -v mt="$(peak chain meterd)" -F'|' '
    NF > 8 && $2 ~ /nginx|cliproxyd/ {
        row=$2; gsub(/ /, "", row); w=$3; gsub(/ /, "", w); c=$4; gsub(/ /, "", c)
        rps=$5+0; if (row == "nginx") ng[w c] = rps
        r = (ng[w c] > 0) ? sprintf("%.2f×", rps / ng[w c]) : "—"
        rss = row == "nginx" ? "—" : row == "cliproxyd" ? cp : mt " + " cp
        printf "| %s | %s | %s | %s | %s |%s|%s| %s |\n", row, w, c, $5+0, r, $6, $7, rss
    }' "$OUT/chain.md"

echo
echo "== 2. meterd -> fake, billed (bench/meterd_billing.sh, c64, ${DURATION}s)"
sample_rss billing bash "$ROOT/bench/meterd_billing.sh" | tee "$OUT/billing.txt"
echo "meterd peak RSS: $(peak billing meterd) MiB"

echo
echo "== 3. open streams held ($STREAMS per row; ulimit -Hn $(ulimit -Hn))"
echo "| path | streams | opened | completed | RSS with all open (peak) |"
echo "| --- | ---: | ---: | ---: | --- |"
python3 "$ROOT/bench/streams_fullstack.py" "$BUILD" "$STREAMS"
