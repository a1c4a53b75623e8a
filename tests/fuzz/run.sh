#!/usr/bin/env bash
# tests/fuzz/run.sh - builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into build-fuzz/, and runs each one on its seed corpus for a while.
#
#   tests/fuzz/run.sh                      # every target, 15 s each, 2 at a time (CI, ctest -L fuzz)
#   tests/fuzz/run.sh --seconds 60 sse     # chosen targets (names without fuzz_), 60 s each
#   tests/fuzz/run.sh --long               # every target 600 s (or --seconds N), on demand
#   tests/fuzz/run.sh --list               # the target names
#
# Seeds: tests/fuzz/corpus/<target>/ (read-only here; seed-* from make_corpus.py, regress-*
# the inputs that once crashed). What the fuzzer finds lands in build-fuzz/corpus/<target>/
# (kept between runs: --long runs pick up where they stopped). A crash, leak, UBSan report,
# timeout (10 s per input) or out-of-memory (1 GiB) is saved as
# tests/fuzz/crashes/<target>-<kind>-<hash> and the script exits 1; reproduce it with
# build-fuzz/fuzz_<target> <file>, then, once fixed, copy it to
# tests/fuzz/corpus/<target>/regress-<what> so every later run replays it.
# Knobs: FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_JOBS (targets run at once,
# default 2), FUZZ_MAX_LEN (default 32768 bytes), CC (default clang).
# Exit codes: 0 clean, 1 a target failed, 2 usage, 77 clang/libFuzzer missing (ctest: skipped).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FUZZ=$ROOT/tests/fuzz
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-2}
MAX_LEN=${FUZZ_MAX_LEN:-32768}
SECONDS_EACH=""
LONG=0
TARGETS=()

all_targets() {
    local f
    for f in "$FUZZ"/fuzz_*.c; do
        f=${f##*/fuzz_}
        echo "${f%.c}"
    done
}

while [ $# -gt 0 ]; do
    case $1 in
    --seconds)
        [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "run.sh: --seconds needs a positive number" >&2; exit 2; }
        SECONDS_EACH=$2
        shift 2
        ;;
    --seconds=*)
        SECONDS_EACH=${1#*=}
        [[ $SECONDS_EACH =~ ^[0-9]+$ ]] && [ "$SECONDS_EACH" -gt 0 ] || { echo "run.sh: --seconds needs a positive number" >&2; exit 2; }
        shift
        ;;
    --long) LONG=1; shift ;;
    --list) all_targets; exit 0 ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
        [ -f "$FUZZ/fuzz_${1#fuzz_}.c" ] || { echo "run.sh: no target ${1} (see --list)" >&2; exit 2; }
        TARGETS+=("${1#fuzz_}")
        shift
        ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(all_targets)
if [ -z "$SECONDS_EACH" ]; then
    if [ $LONG = 1 ]; then SECONDS_EACH=600; else SECONDS_EACH=15; fi
fi

CC=${CC:-clang}
case $CC in *clang*) ;; *) CC=clang ;; esac # the main build's CC=gcc must not leak in here
if ! command -v "$CC" >/dev/null; then
    echo "run.sh: $CC not found: install clang and libclang-rt-14-dev (tests/run.sh does)" >&2
    exit 77
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' |
    "$CC" -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
    echo "run.sh: $CC cannot link -fsanitize=fuzzer: install libclang-rt-14-dev" >&2
    exit 77
fi

t0=$(date +%s)
CC=$CC cmake -S "$FUZZ" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$BUILD" -j "${CM_BUILD_JOBS:-2}" "${build_targets[@]}" >"$BUILD/build.log" 2>&1 ||
    { tail -n 40 "$BUILD/build.log" >&2; echo "run.sh: build failed ($BUILD/build.log)" >&2; exit 1; }
echo "run.sh: built ${#TARGETS[@]} targets in $(($(date +%s) - t0)) s; ${SECONDS_EACH} s each, $JOBS at a time"

mkdir -p "$FUZZ/crashes" "$BUILD/logs"
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# run_one TARGET: the fuzzer on the seeds plus its work corpus; returns its exit code
run_one() {
    local t=$1 work=$BUILD/corpus/$1 seeds=$FUZZ/corpus/$1 rc=0
    mkdir -p "$work" "$seeds"
    (cd "$BUILD" && "./fuzz_$t" "$work" "$seeds" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -max_len="$MAX_LEN" \
        -print_final_stats=1 -artifact_prefix="$FUZZ/crashes/$t-") \
        >"$BUILD/logs/$t.log" 2>&1 || rc=$?
    return $rc
}

fails=()
pids=()
names=()
wait_one() { # waits for the oldest running target, records its result
    local rc=0
    wait "${pids[0]}" || rc=$?
    local t=${names[0]} execs
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    if [ $rc = 0 ]; then
        echo "  ok    $t ($execs runs)"
    else
        echo "  FAIL  $t (exit $rc), log: $BUILD/logs/$t.log"
        grep -E 'ERROR:|runtime error:|invariant failed|^SUMMARY|Test unit written' "$BUILD/logs/$t.log" | head -n 8 | sed 's/^/        /'
        fails+=("$t")
    fi
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
}
for t in "${TARGETS[@]}"; do
    [ ${#pids[@]} -ge "$JOBS" ] && wait_one
    run_one "$t" &
    pids+=($!)
    names+=("$t")
done
while [ ${#pids[@]} -gt 0 ]; do wait_one; done

echo "run.sh: ${#TARGETS[@]} targets, ${#fails[@]} failed, $(($(date +%s) - t0)) s in all"
if [ ${#fails[@]} -gt 0 ]; then
    echo "run.sh: failing targets: ${fails[*]}; inputs in tests/fuzz/crashes/" >&2
    exit 1
fi
