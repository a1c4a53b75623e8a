#!/usr/bin/env bash
# deploy/add-account.sh - add one upstream account to a running cliproxyd: runs the
# provider's login with -no-browser (open the printed URL on any machine, log in, paste
# the final redirect URL back here: no tunnel needed on a VPS), then waits until the
# running cliproxyd reports the new credential as active (management API) and says so.
#
#   ./deploy/add-account.sh codex            # also: codex-device, claude, gemini, qwen,
#                                            #       iflow, iflow-cookie
#   ./deploy/add-account.sh gemini -project_id my-project   # extra flags go to the login
#
# Defaults fit ./deploy/quickstart.sh's layout; override with:
#   CLIPROXY_CONFIG   the daemon's config.yaml        (default $DATA_DIR/cliproxyd.yaml)
#   CLIPROXY_URL      where it listens                 (default http://127.0.0.1:8317)
#   CLIPROXY_MGMT_KEY its remote-management secret     (default from $DATA_DIR/credentials.env)
#   CLIPROXYD         the cliproxyd binary             (default build/cliproxyd/cliproxyd, then PATH)
#   ADD_ACCOUNT_WAIT  seconds to wait for "active"     (default 30)
# Docker Compose: run it on the host with CLIPROXY_CONFIG=./cliproxy/config.yaml and a
# host build of cliproxyd (the login writes into the mounted ./cliproxy/auths).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${DATA_DIR:-$ROOT/data}
say() { printf 'add-account: %s\n' "$*"; }
die() { printf 'add-account: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 codex|codex-device|claude|gemini|qwen|iflow|iflow-cookie [login flags]"
case "$1" in
    codex) FLAG=-codex-login ;;
    codex-device) FLAG=-codex-device-login ;;
    claude) FLAG=-claude-login ;;
    gemini) FLAG=-login ;;
    qwen) FLAG=-qwen-login ;;
    iflow) FLAG=-iflow-login ;;
    iflow-cookie) FLAG=-iflow-cookie ;;
    *) die "unknown provider '$1' (codex, codex-device, claude, gemini, qwen, iflow, iflow-cookie)" ;;
esac
shift

if [ -f "$DATA/credentials.env" ] && [ -z "${CLIPROXY_MGMT_KEY:-}" ]; then
    CLIPROXY_MGMT_KEY=$(sed -n 's/^CLIPROXY_MGMT_KEY=//p' "$DATA/credentials.env")
fi
CONFIG=${CLIPROXY_CONFIG:-$DATA/cliproxyd.yaml}
URL=${CLIPROXY_URL:-http://127.0.0.1:8317}
WAIT=${ADD_ACCOUNT_WAIT:-30}
BIN=${CLIPROXYD:-$ROOT/build/cliproxyd/cliproxyd}
[ -x "$BIN" ] || BIN=$(command -v cliproxyd || true)
[ -n "$BIN" ] || die "no cliproxyd binary (build it, or set CLIPROXYD)"
[ -f "$CONFIG" ] || die "no config at $CONFIG (set CLIPROXY_CONFIG)"

# the login: interactive (it reads the pasted URL from this terminal); its output is
# shown as it comes and kept to learn the file it wrote
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
set +e
"$BIN" -config "$CONFIG" "$FLAG" -no-browser "$@" | tee "$OUT"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || die "the login failed (exit $rc)"
FILE=$(sed -n 's/^Saved credentials to //p' "$OUT" | tail -n 1)
[ -n "$FILE" ] || die "the login did not say which file it wrote"
NAME=$(basename "$FILE")
say "wrote $FILE"

if [ -z "${CLIPROXY_MGMT_KEY:-}" ]; then
    say "no CLIPROXY_MGMT_KEY: cannot ask cliproxyd; it picks $NAME up within a second"
    exit 0
fi
# the running daemon's view of it: GET /v0/management/auth-files
status=""
for _ in $(seq 1 $((WAIT * 5))); do
    status=$(curl -fsS -H "X-Management-Key: $CLIPROXY_MGMT_KEY" \
        "$URL/v0/management/auth-files" 2>/dev/null |
        python3 -c 'import json,sys
name = sys.argv[1]
files = json.load(sys.stdin).get("files", [])
print(next((f.get("status", "") for f in files if f.get("name") == name), ""))' "$NAME" ||
        true)
    [ "$status" = "active" ] && break
    sleep 0.2
done
if [ "$status" = "active" ]; then
    printf 'add-account: \342\234\223 %s is active in cliproxyd (%s)\n' "$NAME" "$URL"
    exit 0
fi
die "cliproxyd at $URL does not list $NAME as active (status: ${status:-not listed}); see its log"
