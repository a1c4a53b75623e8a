#!/usr/bin/env bash
# tests/run.sh - README command 2: install what is missing, build with warnings as
# errors and ASan+UBSan, run every test (unit and integration) through ctest.
# Exits non-zero on any failure. CI (.ci/run) calls exactly this.
#
#   ./tests/run.sh              # everything
#   ./tests/run.sh -L unit      # extra arguments go to ctest (here: unit tests only)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-test}
cd "$ROOT"

# Debian packages: the build's (deploy/deps.sh), cmocka and python3 for the tests, and the
# client tests run the official npm SDKs: Debian's node and npm unless some are there
. "$ROOT/deploy/deps.sh"
PKGS=("${CM_BUILD_PKGS[@]}" python3 libcmocka-dev docker-compose clang libclang-rt-14-dev) # clang: tests/fuzz
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
cm_install_missing run.sh "${PKGS[@]}"

# the SDKs for tests/clients, from the committed lockfile
if [ ! -d "$ROOT/tests/clients/node_modules/openai" ] ||
   [ ! -d "$ROOT/tests/clients/node_modules/@anthropic-ai/sdk" ]; then
    (cd "$ROOT/tests/clients" && npm ci --no-audit --no-fund --loglevel=error)
fi

JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S "$ROOT" -B "$BUILD" -DCM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j "$JOBS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD"
ctest --output-on-failure --timeout 300 "$@"
