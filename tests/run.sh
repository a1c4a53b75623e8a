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

# Debian packages the build and the tests need (dpkg name -> what for)
PKGS=(cmake pkg-config gcc libc6-dev make python3
      libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev libcyaml-dev libyaml-dev libcjson-dev
      libsodium-dev libcrypt-dev libxxhash-dev libcmocka-dev)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# the client tests run the official npm SDKs: Debian's node and npm unless some are there
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "run.sh: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "run.sh: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

# the SDKs for tests/clients, from the committed lockfile
if [ ! -d "$ROOT/tests/clients/node_modules/openai" ]; then
    (cd "$ROOT/tests/clients" && npm ci --no-audit --no-fund --loglevel=error)
fi

JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S "$ROOT" -B "$BUILD" -DCM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j "$JOBS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD"
ctest --output-on-failure --timeout 300 "$@"
