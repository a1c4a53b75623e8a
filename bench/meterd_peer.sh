#!/usr/bin/env bash
# bench/meterd_peer.sh - peers.sh's PROXY_CMD for a meterd row: a fresh SQLite database with
# one channel to $UPSTREAM_URL (the peers fake upstream), the bench key sk-bench as an
# unlimited token of a user with plenty of quota, and a price for the bench model, then
# exec meterd on $PROXY_PORT. Every request is authenticated, reserved, relayed and settled
# with a log row: the full billing path. Loopback only.
#   ROWS="direct nginx custom" PROXY_NAME=meterd PROXY_URL=http://127.0.0.1:18095 \
#     PROXY_CMD="bench/meterd_peer.sh" peers.sh          (bench/meterd.sh does this)
# Also used by bench/cliproxyd.sh for its meterd -> cliproxyd row: BENCH_MODEL (the channel's
# model, default gpt-4o-mini), CHANNEL_KEY (the key meterd sends upstream), BENCH_DB_DIR.
set -euo pipefail
BIN=${METERD_BIN:?METERD_BIN is the meterd binary}
DIR=${BENCH_DB_DIR:-${BENCH_RUN_DIR:-/tmp}/meterd-peer}
MODEL=${BENCH_MODEL:-gpt-4o-mini}
CHANNEL_KEY=${CHANNEL_KEY:-sk-up}
rm -rf "$DIR" && mkdir -p "$DIR"
export SQLITE_PATH=$DIR/one-api.db SESSION_SECRET=bench-session-secret-0123456789
# the first start (schema, root) on another port: peers.sh waits for PROXY_PORT to answer
INIT_PORT=$((PROXY_PORT + 1000))
"$BIN" --host 127.0.0.1 --port "$INIT_PORT" --log-level warn >"$DIR/init.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$INIT_PORT/healthz" && break; sleep 0.05; done
curl -fs -o /dev/null -X POST "http://127.0.0.1:$INIT_PORT/api/setup" \
    -d '{"username":"root","password":"benchpass123","confirmPassword":"benchpass123"}'
kill "$pid"; wait "$pid" || true
python3 - "$SQLITE_PATH" "$UPSTREAM_URL" "$MODEL" "$CHANNEL_KEY" <<'PY'
import json, sqlite3, sys, time
db, up, model, ckey = sys.argv[1:5]
c = sqlite3.connect(db, isolation_level=None)
now = int(time.time())
c.execute("UPDATE users SET quota = 900000000000000 WHERE id = 1")
c.execute("INSERT INTO tokens(user_id, key, status, name, created_time, accessed_time, "
          "expired_time, remain_quota, unlimited_quota, used_quota, \"group\") "
          "VALUES(1, 'bench', 1, 'bench', ?, ?, -1, 0, 1, 0, '')", (now, now))
c.execute("INSERT INTO channels(type, key, status, name, weight, created_time, base_url, models, "
          "\"group\", priority) VALUES(1, ?, 1, 'up', 1, ?, ?, ?, 'default', 0)",
          (ckey, now, up, model))
cid = c.execute("SELECT id FROM channels").fetchone()[0]
c.execute("INSERT INTO abilities(\"group\", model, channel_id, enabled, priority, weight, tag) "
          "VALUES('default', ?, ?, 1, 0, 1, '')", (model, cid))
c.execute("INSERT INTO options(\"key\", value) VALUES('ModelRatio', ?)",
          (json.dumps({model: 0.075}),))
PY
[ -n "${METERD_PREPARE_ONLY:-}" ] && exit 0
exec "$BIN" --host 127.0.0.1 --port "$PROXY_PORT" --log-level warn
