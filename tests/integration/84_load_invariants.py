#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load with billing invariants (issue 7): client -> meterd -> cliproxyd (an
openai-compatibility entry) -> tests/fakes/fake_openai.py, all on 127.0.0.1.

Phase 1: LOAD_N (default 1200) requests in flight at once (asyncio, raw sockets), a mix of
non-streams (40 %), streams read to the end (50 %) and streams the client leaves after the
first event (10 %); the fake answers about 10 % of its calls with a scripted fault (500, or
a stream cut after 2 events without usage). Users hold less than NewAPI's trust bypass, so
every request takes a reservation; one user is short of quota, so reservations contend.
Afterwards, from the SQLite file:
  - per user: sum(logs.quota, type 2) == drop of users.quota == rise of users.used_quota;
  - per token: sum == rise of tokens.used_quota == drop of tokens.remain_quota;
  - one consume log per request id; no user or token below zero;
  - every complete 200 the client got has its log row; no error answer has one.
Phase 2: KILL_N (default 600) more requests; kill -9 meterd after KILL_AFTER s while they
are in flight; restart it on the same database; every complete 200 the client got still has
exactly one log row, users.used_quota equals the sum of the logs exactly, and users.quota
lost nothing beyond the logs: the reservations of requests the kill cut off are held in
mt_holds and given back when meterd starts again (zero drift across the crash).
LOAD_N / KILL_N / LOAD_SECS scale it up (e.g. LOAD_N=5000) for longer runs on demand."""
import asyncio
import json
import os
import random
import resource
import signal
import time

from cpd_env import start as start_cpd
from harness import TMP, Proc, http, run, start_fake, wait_port
from meterd_env import METERD, Meterd

LOAD_N = int(os.environ.get("LOAD_N", "1200"))
KILL_N = int(os.environ.get("KILL_N", "600"))
KILL_AFTER = float(os.environ.get("KILL_AFTER", "1.0"))
LOAD_SECS = float(os.environ.get("LOAD_SECS", "40"))
MODEL = "load-model"
CP_KEY = "sk-cpd-load-client-0123456789abcdef"
UP_KEY = "sk-up-compat-load-0123456789"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
rnd = random.Random(int(os.environ.get("LOAD_SEED", "84")))

FAKE = start_fake("fake_openai.py")
# every answer waits 300 ms first (so the whole batch is in flight at once), streams send
# 6 content events 40 ms apart
http("POST", FAKE.url + "/_config", {"prompt_tokens": 100, "completion_tokens": 20,
                                      "events": 6, "interval_ms": 40, "delay_ms": 300})
AUTH = os.path.join(TMP, "auth-load")
os.makedirs(AUTH, exist_ok=True)
CPD, CPD_URL = start_cpd("cliproxyd-load", CP_KEY, AUTH, extra=f"""disable-cooling: true
openai-compatibility:
  - name: "loadfake"
    base-url: "{FAKE.url}/v1"
    api-key-entries:
      - api-key: "{UP_KEY}"
    models:
      - name: "{MODEL}"
        alias: "{MODEL}"
""")
M = Meterd("meterd-load")
M.set_option("ModelRatio", json.dumps({MODEL: 1}))
M.set_option("CompletionRatio", json.dumps({MODEL: 2}))
M.add_channel("cliproxyd", CPD_URL, CP_KEY, MODEL, auto_ban=0)

# 4 users under the trust bypass (10 x QuotaPerUnit), 2 limited tokens each, and one user
# short of quota (about 5 reservations of 600) with an unlimited token
TOKENS = []  # (user id, token id, key)
for u in range(4):
    uid = M.add_user(f"load{u}", 2_000_000)
    for t in range(2):
        k = f"L{u}{t}" + "k" * 45
        TOKENS.append((uid, M.add_token(uid, k, remain_quota=1_000_000), "sk-" + k))
TIGHT_UID = M.add_user("loadtight", 3000)
TIGHT = (TIGHT_UID, M.add_token(TIGHT_UID, "Tt" + "k" * 46, unlimited=1), "sk-Tt" + "k" * 46)
M.wait_caches()


def snapshot():
    users = {r[0]: r[1:] for r in M.sql("SELECT id, quota, used_quota FROM users")}
    toks = {r[0]: r[1:] for r in M.sql("SELECT id, remain_quota, used_quota, unlimited_quota "
                                       "FROM tokens")}
    return users, toks


def log_sums(col, since_id):
    return dict(M.sql(f"SELECT {col}, SUM(quota) FROM logs WHERE type=2 AND id>? GROUP BY {col}",
                      (since_id,)) or [])


def max_log_id():
    return M.one("SELECT COALESCE(MAX(id), 0) FROM logs")[0]


# ---- the load: raw HTTP/1.1 over asyncio, one connection per request

class Res:
    __slots__ = ("kind", "status", "rid", "complete", "error", "left")

    def __init__(self, kind):
        self.kind, self.status, self.rid, self.complete = kind, 0, None, False
        self.error, self.left = None, False


def dechunk(raw):
    out, i = b"", 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return out, False
        size = int(raw[i:j].split(b";")[0] or b"0", 16)
        if size == 0:
            return out, True
        out += raw[j + 2:j + 2 + size]
        i = j + 4 + size


async def one(port, i, kind, key, state):
    res = Res(kind)
    body = json.dumps({"model": MODEL, "stream": kind != "json", "messages": [
        {"role": "user", "content": f"load request {i}"}]}).encode()
    w = None
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write((f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        await w.drain()
        state["inflight"] += 1
        state["peak"] = max(state["peak"], state["inflight"])
        try:
            head = await r.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            res.status = int(lines[0].split()[1])
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            res.rid = hdrs.get("x-oneapi-request-id")
            if kind == "leave" and res.status == 200:
                await r.readuntil(b"\n\n")  # the first event, then gone
                res.left = True
                w.transport.abort()
                return res
            raw = await r.read()
            if hdrs.get("transfer-encoding", "").lower() == "chunked":
                raw, whole = dechunk(raw)
            else:
                whole = len(raw) == int(hdrs.get("content-length", "-1"))
            if res.status == 200 and whole:
                if kind == "json":
                    res.complete = bool(json.loads(raw).get("choices"))
                else:
                    res.complete = raw.rstrip().endswith(b"data: [DONE]")
        finally:
            state["inflight"] -= 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
        res.error = type(e).__name__
    finally:
        if w is not None and not res.left:
            w.close()
    return res


def plan(n):
    out = []
    for i in range(n):
        x = rnd.random()
        kind = "json" if x < 0.4 else "stream" if x < 0.9 else "leave"
        tok = TIGHT if rnd.random() < 0.08 else rnd.choice(TOKENS)
        out.append((kind, tok))
    return out


def script_faults(n):
    """About 10 % of the upstream calls fail: half 500, half a stream cut after 2 events."""
    steps = []
    for _ in range(n):
        x = rnd.random()
        steps.append({"status": 500, "message": "load fault"} if x < 0.05 else
                     {"cut_after": 2} if x < 0.10 else {"ok": True})
    http("POST", FAKE.url + "/_script", {"*": steps})


async def load(port, reqs, on_started=None):
    state = {"inflight": 0, "peak": 0}
    tasks = [asyncio.create_task(asyncio.wait_for(one(port, i, kind, tok[2], state), LOAD_SECS))
             for i, (kind, tok) in enumerate(reqs)]
    if on_started:
        await on_started()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    out = []
    for d in done:
        if isinstance(d, BaseException):
            r = Res("?")
            r.error = type(d).__name__
            out.append(r)
        else:
            out.append(d)
    return out, state["peak"]


def quiesce():
    """Waits until no stream is open at the fake and the logs stop growing (settles of
    clients that left are committed after they left)."""
    last, stable, end = -1, 0, time.time() + 15
    while time.time() < end:
        st = json.loads(http("GET", FAKE.url + "/_stats")[2])
        n = max_log_id()
        stable = stable + 1 if (st["open"] == 0 and n == last) else 0
        if stable >= 3:
            return
        last = n
        time.sleep(0.3)
    raise AssertionError("the system did not settle within 15 s")


def summary(results):
    by = {}
    for r in results:
        k = f"{r.kind}:{r.status if not r.error else r.error}{'+left' if r.left else ''}" \
            f"{'+complete' if r.complete else ''}"
        by[k] = by.get(k, 0) + 1
    return ", ".join(f"{k}={v}" for k, v in sorted(by.items()))


def rid_logs(since_id):
    rows = M.sql("SELECT request_id, COUNT(*) FROM logs WHERE type=2 AND id>? GROUP BY request_id",
                 (since_id,))
    return dict(rows or [])


def check_ledger(u0, t0, since_id, exact_quota=True):
    """The per-user and per-token invariants; returns {user id: quota lost beyond logs}."""
    u1, t1 = snapshot()
    by_user, by_tok = log_sums("user_id", since_id), log_sums("token_id", since_id)
    orphan = {}
    for uid, (q0, used0) in u0.items():
        q, used = u1[uid]
        s = by_user.get(uid, 0)
        assert q >= 0, f"user {uid} below zero: {q}"
        assert used - used0 == s, f"user {uid}: used_quota rose {used - used0}, logs sum {s}"
        orphan[uid] = (q0 - q) - s
        if exact_quota:
            assert q0 - q == s, f"user {uid}: quota dropped {q0 - q}, logs sum {s}"
    for tid, (r0, used0, unl) in t0.items():
        r, used, _ = t1[tid]
        s = by_tok.get(tid, 0)
        assert unl or r >= 0, f"token {tid} below zero: {r}"
        if exact_quota:
            assert used - used0 == s, f"token {tid}: used_quota rose {used - used0}, logs sum {s}"
            assert unl or r0 - r == s, f"token {tid}: remain dropped {r0 - r}, logs sum {s}"
        else:  # a reservation the kill left behind moves remain and used alike
            d = (used - used0) - s
            assert d >= 0 and (unl or d == (r0 - r) - s), \
                f"token {tid}: used rose {used - used0}, remain dropped {r0 - r}, logs sum {s}"
    return orphan


def check_requests(results, since_id, acked_only=False):
    rl = rid_logs(since_id)
    dup = {k: v for k, v in rl.items() if v != 1}
    assert not dup, f"request ids charged more than once: {list(dup.items())[:5]}"
    rids = {r.rid for r in results if r.rid}
    stray = [k for k in rl if k not in rids]
    # a request cut off before its head reached the client may be billed (settled, then the
    # kill) without the client knowing its id; only phase 1 can require none
    if not acked_only:
        assert not stray, f"log rows for requests never answered: {stray[:5]}"
    lost = [r.rid for r in results if r.complete and r.rid not in rl]
    assert not lost, f"{len(lost)} complete 200 answers without a log row: {lost[:5]}"
    nocomplete = [r for r in results if r.complete and not r.rid]
    assert not nocomplete, "a complete 200 without X-Oneapi-Request-Id"
    billed_err = [r.rid for r in results if r.status and r.status != 200 and r.rid in rl]
    assert not billed_err, f"error answers that were billed: {billed_err[:5]}"
    return rl, stray


S = {}


def test_load_with_invariants():
    u0, t0 = snapshot()
    since = max_log_id()
    reqs = plan(LOAD_N)
    script_faults(LOAD_N + LOAD_N // 5)
    fds0 = (M.proc.nfds(), CPD.nfds())
    t_start = time.time()
    results, peak = asyncio.run(load(M.port, reqs))
    took = time.time() - t_start
    quiesce()
    print(f"phase 1: {len(results)} requests in {took:.1f} s, {peak} in flight at the peak; "
          f"{summary(results)}", flush=True)
    assert M.proc.alive() and CPD.alive(), "a daemon died under load"
    assert peak >= min(LOAD_N, 1000), f"only {peak} requests were in flight at once"
    errs = [r.error for r in results if r.error]
    assert not errs, f"{len(errs)} client-side errors: {sorted(set(errs))}"
    ok = sum(1 for r in results if r.complete)
    assert ok >= LOAD_N * 0.6, f"only {ok} complete answers"
    assert any(r.status == 403 for r in results), "the short user was never refused"
    rl, _ = check_requests(results, since)
    check_ledger(u0, t0, since)
    left = sum(1 for r in results if r.left)
    print(f"phase 1: {ok} complete, {left} left mid-stream, {len(rl)} consume logs, "
          f"quota sum {sum(log_sums('user_id', since).values())}, zero drift", flush=True)
    up = json.loads(http("GET", FAKE.url + "/_stats")[2])
    faults = sum(v for k, v in up["by_key"].get(UP_KEY, {}).items() if k != "200")
    print(f"upstream: {up['requests']} calls, {faults} scripted 500s, by status "
          f"{up['by_key'].get(UP_KEY)}, {up['aborted']} streams aborted", flush=True)
    assert faults > 0
    # no fd per request kept: what stays open is libcurl's idle connection cache (256,
    # httpc.c CURLMOPT_MAXCONNECTS): meterd -> cliproxyd, and in cliproxyd both those
    # keep-alive connections from meterd and its own cache towards the fake
    time.sleep(1.0)
    fds1 = (M.proc.nfds(), CPD.nfds())
    print(f"fds meterd {fds0[0]} -> {fds1[0]}, cliproxyd {fds0[1]} -> {fds1[1]} (idle "
          f"keep-alive caches of 256)", flush=True)
    assert fds1[0] <= fds0[0] + 256 + 20 and fds1[1] <= fds0[1] + 2 * 256 + 20, (fds0, fds1)


def restart_meterd():
    env = {"SQLITE_PATH": M.db_path, "SESSION_SECRET": "test-secret-0123456789"}
    M.proc = Proc("meterd-load-restarted", [METERD, "--host", "127.0.0.1", "--port", str(M.port)],
                  env=env, check_exit=True)
    wait_port(M.port, M.proc)


def test_kill9_during_load_loses_no_acknowledged_charge():
    http("POST", FAKE.url + "/_reset", {})
    http("POST", FAKE.url + "/_config", {"prompt_tokens": 100, "completion_tokens": 20,
                                          "events": 6, "interval_ms": 40, "delay_ms": 300})
    u0, t0 = snapshot()
    since = max_log_id()
    reqs = plan(KILL_N)
    script_faults(KILL_N)
    victim = M.proc
    victim.check_exit = False  # killed on purpose

    async def kill_later():
        await asyncio.sleep(KILL_AFTER)
        os.kill(victim.pid, signal.SIGKILL)

    results, peak = asyncio.run(load(M.port, reqs, kill_later))
    victim.p.wait(10)
    victim.stop()
    print(f"phase 2: kill -9 after {KILL_AFTER} s with up to {peak} in flight; "
          f"{summary(results)}", flush=True)
    restart_meterd()
    time.sleep(1.0)
    rl, stray = check_requests(results, since, acked_only=True)
    ok = [r for r in results if r.complete]
    orphan = check_ledger(u0, t0, since, exact_quota=False)
    unanswered = sum(1 for r in results if not r.complete)
    lost = sum(orphan.values())
    print(f"phase 2: {len(ok)} complete 200s, all billed once; {len(rl)} consume logs "
          f"({len(stray)} for requests whose answer the kill cut off); users.used_quota == "
          f"sum(logs) for every user", flush=True)
    print(f"phase 2: users.quota lost beyond the logs (reservations the kill left unsettled): "
          f"{lost} quota units over {unanswered} unanswered requests; per user "
          f"{ {k: v for k, v in orphan.items() if v} }", flush=True)
    assert all(v >= 0 for v in orphan.values()), f"a kill gave quota back: {orphan}"
    assert all(v <= unanswered * 2000 for v in orphan.values()), orphan
    assert lost == 0, f"{lost} quota reserved by cut-off requests was not given back at restart"
    S["kill_orphan"] = lost
    # and the restarted meterd bills as before
    st, h, body = http("POST", M.url + "/v1/chat/completions", {"model": MODEL, "messages": [
        {"role": "user", "content": "after the restart"}]},
        {"Authorization": "Bearer " + TOKENS[0][2]}, timeout=20)
    assert st == 200, body
    rid = h["x-oneapi-request-id"]
    assert M.one("SELECT COUNT(*) FROM logs WHERE type=2 AND request_id=?", (rid,))[0] == 1


def test_clean_exit():
    assert M.proc.stop() == 0
    assert CPD.stop() == 0


run([test_load_with_invariants, test_kill9_during_load_loses_no_acknowledged_charge,
     test_clean_exit])
