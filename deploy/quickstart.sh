#!/usr/bin/env bash
# deploy/quickstart.sh - README command 1: install what is missing (apt-get), build, and
# start cliproxyd and meterd on this machine with the embedded SQLite database, then print
# the URLs, the admin login and a client key. Everything lives under ./data (or $DATA_DIR):
# configs, the database, logs, pid files, the generated credentials (mode 0600).
#
#   ./deploy/quickstart.sh          # install, build, start (again: reuses ./data)
#   ./deploy/quickstart.sh --stop   # stop both daemons (by their PID files)
#   ./deploy/quickstart.sh --status # are they running?
#
# Knobs: DATA_DIR (./data), AUTH_DIR (~/.cli-proxy-api: CLIProxyAPI's auth files),
# CLIPROXY_PORT (8317), METER_PORT (3000), HOST (127.0.0.1; both daemons bind it),
# QUICKSTART_BIN_DIR (use binaries built already instead of building).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${DATA_DIR:-$ROOT/data}
AUTH=${AUTH_DIR:-$HOME/.cli-proxy-api}
HOST=${HOST:-127.0.0.1}
CP_PORT=${CLIPROXY_PORT:-8317}
MT_PORT=${METER_PORT:-3000}
BUILD=$ROOT/build
RUN=$DATA/run
CRED=$DATA/credentials.env

say() { printf 'quickstart: %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
    local name
    for name in meterd cliproxyd; do
        if pid_alive "$RUN/$name.pid"; then
            kill "$(cat "$RUN/$name.pid")" && say "stopped $name"
        fi
        rm -f "$RUN/$name.pid"
    done
}

case "${1:-start}" in
stop | --stop) stop; exit 0 ;;
status | --status)
    for name in cliproxyd meterd; do
        if pid_alive "$RUN/$name.pid"; then say "$name running (pid $(cat "$RUN/$name.pid"))"
        else say "$name not running"; fi
    done
    exit 0 ;;
start | --start) ;;
*) die "usage: $0 [start|stop|status]" ;;
esac

# 1. what the build needs, then curl and python3 for the set-up calls below
. "$ROOT/deploy/deps.sh"
cm_install_missing quickstart "${CM_BUILD_PKGS[@]}" curl python3

# 2. build (release), unless QUICKSTART_BIN_DIR points at binaries built already (tests)
if [ -n "${QUICKSTART_BIN_DIR:-}" ]; then
    BUILD=$QUICKSTART_BIN_DIR
else
    say "building into $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target cliproxyd meterd >/dev/null
fi

# 3. first run: generated secrets, configs (kept across runs)
umask 077
mkdir -p "$DATA" "$RUN" "$DATA/logs" "$AUTH"
rand() { head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }
if [ ! -f "$CRED" ]; then
    {
        echo "CLIPROXY_KEY=sk-cp-$(rand 40)"
        echo "SESSION_SECRET=$(rand 48)"
        echo "ADMIN_USER=root"
        echo "ADMIN_PASSWORD=$(rand 20)"
    } > "$CRED"
fi
# the management key add-account.sh checks new accounts with (credentials of older runs
# get one too; cliproxyd keeps only its bcrypt hash in its config)
grep -q '^CLIPROXY_MGMT_KEY=' "$CRED" || echo "CLIPROXY_MGMT_KEY=mk-$(rand 40)" >> "$CRED"
chmod 600 "$CRED"
# shellcheck disable=SC1090
. "$CRED"
CP_CONF=$DATA/cliproxyd.yaml
if [ ! -f "$CP_CONF" ]; then
    cat > "$CP_CONF" <<YAML
# cliproxyd (CLIProxyAPI-compatible config). meterd is its only client.
host: "$HOST"
port: $CP_PORT
auth-dir: "$AUTH"
api-keys:
  - "$CLIPROXY_KEY"
request-retry: 1
routing:
  strategy: round-robin
remote-management:
  allow-remote: false
  secret-key: "$CLIPROXY_MGMT_KEY"
YAML
fi

# 4. start what is not running
start_daemon() { # name, then the command
    local name=$1
    shift
    if pid_alive "$RUN/$name.pid"; then
        say "$name already running (pid $(cat "$RUN/$name.pid"))"
        return
    fi
    # exec: the recorded PID is the daemon's; no shell stays behind holding our stdout
    (cd "$DATA" && exec nohup "$@") >>"$DATA/logs/$name.log" 2>&1 </dev/null &
    echo $! > "$RUN/$name.pid"
    say "started $name (log: $DATA/logs/$name.log)"
}
wait_http() { # url, name
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    tail -n 20 "$DATA/logs/$2.log" >&2 || true
    die "$2 did not come up ($1)"
}
start_daemon cliproxyd "$BUILD/cliproxyd/cliproxyd" -config "$CP_CONF"
start_daemon meterd env SQLITE_PATH="$DATA/one-api.db" SESSION_SECRET="$SESSION_SECRET" \
    "$BUILD/meterd/meterd" --host "$HOST" --port "$MT_PORT"
CP_URL=http://$HOST:$CP_PORT
MT_URL=http://$HOST:$MT_PORT
wait_http "$CP_URL/healthz" cliproxyd
wait_http "$MT_URL/healthz" meterd

# 5. first run of meterd: root account, a channel to cliproxyd, a client token
CLIENT_KEY=$(python3 - "$MT_URL" "$CP_URL" "$CRED" <<'PY'
import json, sys, urllib.request

mt, cp, cred_path = sys.argv[1:4]
cred = dict(l.strip().split("=", 1) for l in open(cred_path) if "=" in l)


def call(method, path, body=None, headers=None, base=mt):
    req = urllib.request.Request(base + path, method=method, headers=headers or {},
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}"), r.headers


def ok(res, what):
    if not res.get("success"):
        sys.exit(f"quickstart: {what}: {res.get('message')}")
    return res.get("data")


setup, _ = call("GET", "/api/setup")
if not setup["data"]["status"]:
    ok(call("POST", "/api/setup", {"username": cred["ADMIN_USER"],
                                  "password": cred["ADMIN_PASSWORD"],
                                  "confirmPassword": cred["ADMIN_PASSWORD"]})[0], "setup")
res, hdrs = call("POST", "/api/user/login", {"username": cred["ADMIN_USER"],
                                             "password": cred["ADMIN_PASSWORD"]})
user = ok(res, "admin login")
cookie = hdrs.get("Set-Cookie", "").split(";")[0]
auth = {"Cookie": cookie, "New-Api-User": str(user["id"])}

channels = ok(call("GET", "/api/channel/?p=1&page_size=100", headers=auth)[0], "channels")
if not any(c.get("base_url") == cp for c in channels.get("items") or []):
    try:
        models, _ = call("GET", "/v1/models", headers={"Authorization": "Bearer " +
                                                        cred["CLIPROXY_KEY"]}, base=cp)
        names = [m["id"] for m in models.get("data", [])]
    except Exception:
        names = []
    names = names or ["gpt-5", "gpt-5-codex", "claude-sonnet-4-5-20250929"]
    ok(call("POST", "/api/channel/", {"mode": "single", "channel": {
        "type": 1, "name": "cliproxyd", "base_url": cp, "key": cred["CLIPROXY_KEY"],
        "models": ",".join(names), "group": "default", "priority": 0, "weight": 1}},
        auth)[0], "create the cliproxyd channel")

# prices: list prices (USD per 1M tokens: input, cached input, output) for the models the
# channel serves, only where the operator has not priced a model yet. meterd refuses an
# unpriced model (400 model_price_error), as NewAPI does. Change with `meterctl price set`.
LIST = [("gpt-5-codex-mini", 0.25, 0.025, 2), ("gpt-5.4-mini", 0.25, 0.025, 2),
        ("gpt-5", 1.25, 0.125, 10), ("claude-opus-4-1", 15, 1.5, 75),
        ("claude-opus-4-2025", 15, 1.5, 75), ("claude-opus", 5, 0.5, 25),
        ("claude-sonnet", 3, 0.3, 15), ("claude-3-7-sonnet", 3, 0.3, 15),
        ("claude-haiku", 1, 0.1, 5), ("claude-3-5-haiku", 0.8, 0.08, 4)]  # first match wins
chan = ok(call("GET", "/api/channel/?p=1&page_size=100", headers=auth)[0], "channels")
served = sorted({m for c in chan.get("items") or [] for m in (c.get("models") or "").split(",")
                 if m})
opts = {o["key"]: o["value"] for o in ok(call("GET", "/api/option/", headers=auth)[0], "options")}
maps = {k: json.loads(opts.get(k) or "{}") for k in ("ModelRatio", "CompletionRatio", "CacheRatio")}
priced = set(maps["ModelRatio"]) | set(json.loads(opts.get("ModelPrice") or "{}"))
added = []
for m in served:
    hit = next((t for t in LIST if m.startswith(t[0])), None)
    if m in priced or hit is None:
        continue
    _, inp, cached, out = hit
    maps["ModelRatio"][m] = inp / 2
    maps["CompletionRatio"][m] = out / inp
    maps["CacheRatio"][m] = cached / inp
    added.append(m)
for k in ("CompletionRatio", "CacheRatio", "ModelRatio"):  # ModelRatio last: billable then
    if added:
        ok(call("PUT", "/api/option/", {"key": k, "value": json.dumps(maps[k])}, auth)[0],
           f"set {k}")
if added:
    print(f"priced {len(added)} model(s) at list prices", file=sys.stderr)

tokens = ok(call("GET", "/api/token/?p=1&page_size=100", headers=auth)[0], "tokens")
tok = next((t for t in tokens.get("items") or [] if t.get("name") == "quickstart"), None)
if tok is None:
    ok(call("POST", "/api/token/", {"name": "quickstart", "remain_quota": 0,
                                    "unlimited_quota": True, "expired_time": -1}, auth)[0],
       "create the client token")
    tokens = ok(call("GET", "/api/token/?p=1&page_size=100", headers=auth)[0], "tokens")
    tok = next(t for t in tokens["items"] if t.get("name") == "quickstart")
key = ok(call("POST", f"/api/token/{tok['id']}/key", {}, auth)[0], "reveal the key")["key"]
print(f"sk-{key}")
PY
) || die "meterd set-up failed (see $DATA/logs/meterd.log)"

cat <<EOF

  admin console / API   $MT_URL        login: $ADMIN_USER / $ADMIN_PASSWORD
  BASE_URL              $MT_URL/v1
  BASE_API_KEY          $CLIENT_KEY
  cliproxyd             $CP_URL        (meterd's upstream; accounts in $AUTH)

  try:   curl $MT_URL/v1/models -H "Authorization: Bearer $CLIENT_KEY"
  next:  add an account:  ./deploy/add-account.sh codex
         (or claude, gemini, qwen, iflow; it runs \`cliproxyd -codex-login -no-browser\`:
         open the printed URL anywhere, paste the final redirect URL back), or copy
         CLIProxyAPI auth files into $AUTH; cliproxyd picks them up within a second.
  Credentials are kept in $CRED (mode 0600). Stop with: $0 --stop
EOF
