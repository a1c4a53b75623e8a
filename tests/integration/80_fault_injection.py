#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fault injection: tests/fakes/fake_faulty.py misbehaves on command (refused and reset
connections, stalls before the first byte and between events, malformed SSE, truncated JSON,
a 200 carrying an error, 20 MiB bodies, invalid UTF-8, 408/429/5xx, one byte per 100 ms),
behind two paths and two upstream shapes:

  client -> cliproxyd -> Codex (two codex-api-key credentials, Chat translated to Responses)
  client -> cliproxyd -> OpenAI chat (an openai-compatibility entry with two keys)
  client -> meterd -> cliproxyd -> each of the above

plus an upstream whose port refuses connections (nothing listens), alone and pooled with a
healthy one,

stream and non-stream. For every fault:
- "always" (every attempt fails): the client gets a clear error: a JSON {"error": {...}} with
  a 4xx/5xx status, or (once the stream has carried content) an SSE error event and no
  [DONE]; or, for the faults a proxy may legitimately ride out (stalls shorter than the
  timeouts, a drip, garbage between good events), the whole answer;
- "once" (the first attempt fails, the second credential is healthy): the client gets the
  whole answer (a clean failover), unless content had already reached it;
- nothing crashes (both daemons alive; exit 0 at SIGTERM under ASan: the harness's
  check_exit), no fd leak (/proc/<pid>/fd after a second round of faults within a small
  constant of after the first), and in meterd a request that failed costs nothing (the
  user's quota and the token's remain_quota unchanged, no consume log with quota > 0).

Not tested here (too slow for CI): the 120 s first-byte and 300 s idle timeouts of
cliproxyd's upstream calls (not configurable); stalls are 2-3 s, and the test checks the
events sent before a stall reach the client before the stall ends.
Bugs found and not yet fixed would be listed in KNOWN (reported, not failing; FAULT_STRICT=1
fails them); it is empty.
FAULT_VERBOSE=1 prints the outcome of every case."""
import concurrent.futures
import http.client as hc
import json
import os
import socket
import time

from cpd_env import start
from harness import TMP, http, run, start_fake
from meterd_env import Meterd

VERBOSE = os.environ.get("FAULT_VERBOSE") == "1"
KEY = "sk-client-fault-0123456789abcdef"
fake = start_fake("fake_faulty.py")

# fault name -> (step for the fake, per shape overrides)
FAULTS = {
    "refuse": {"fault": "refuse"},
    "reset_early": {"fault": "reset", "after": 1},        # before any content
    "reset_late": {"fault": "reset", "after": 5},         # after some content
    "stall_first": {"fault": "stall_first", "seconds": 2},
    "stall_between": {"fault": "stall_between", "seconds": 2, "at": 5},
    "malformed": {"fault": "malformed", "after": 1},
    "malformed_mid": {"fault": "malformed_mid"},
    "truncated": {"fault": "truncated", "after": 1},
    "error200": {"fault": "error200"},
    "error_event": {"fault": "error_event", "after": 1},
    "huge_event": {"fault": "huge", "kind": "event", "mb": 20},
    "huge_line": {"fault": "huge", "kind": "line", "mb": 20},
    "huge_error": {"fault": "huge", "kind": "error", "mb": 20},
    "invalid_utf8": {"fault": "invalid_utf8"},
    "s408": {"fault": "status", "status": 408},
    "s429": {"fault": "status", "status": 429},
    "s500": {"fault": "status", "status": 500},
    "s502": {"fault": "status", "status": 502},
    "s503": {"fault": "status", "status": 503},
    "drip": {"fault": "drip", "interval_ms": 100, "slow_bytes": 20, "fast_ms": 1},
}
SLOW = {"stall_first", "stall_between", "drip"}
SHAPES = ("cx", "oc")  # Codex, OpenAI chat (openai-compatibility)


def model(shape, fault, mode, via, stream):
    """One model per case: cooldowns are per (credential, model), so cases never meet."""
    return f"{shape}-{fault}-{mode}-{via}-{'s' if stream else 'n'}"


ALL = [model(s, f, m, v, st) for s in SHAPES for f in FAULTS for m in ("a", "o")
       for v in ("d", "m") for st in (False, True)]


def models_yaml(shape):
    return "".join(f'      - name: "{m}"\n        alias: "{m}"\n' for m in ALL
                   if m.startswith(shape + "-"))


# a port nothing listens on: connect() is refused (the truest "refuses connections")
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    CLOSED = _s.getsockname()[1]
AUTH = os.path.join(TMP, "fault-auths")
os.makedirs(AUTH, exist_ok=True)
cpd, CPD = start("cliproxyd-fault", KEY, AUTH, extra=f"""request-retry: 1
codex-api-key:
  - api-key: "sk-fault-codex-a-0123456789"
    base-url: "{fake.url}/backend-api/codex"
    models:
{models_yaml("cx")}  - api-key: "sk-fault-codex-b-0123456789"
    base-url: "{fake.url}/backend-api/codex"
    models:
{models_yaml("cx")}openai-compatibility:
  - name: "faulty"
    base-url: "{fake.url}/v1"
    api-key-entries:
      - api-key: "sk-fault-compat-a-0123456789"
      - api-key: "sk-fault-compat-b-0123456789"
    models:
{models_yaml("oc")}  - name: "closedport"
    base-url: "http://127.0.0.1:{CLOSED}/v1"
    priority: 5
    api-key-entries:
      - api-key: "sk-fault-closed-0123456789"
    models:
      - name: "closed-only"
      - name: "closed-pool"
  - name: "healthy"
    base-url: "{fake.url}/v1"
    api-key-entries:
      - api-key: "sk-fault-healthy-0123456789"
    models:
      - name: "closed-pool"
""")

M = Meterd("meterd-fault")
M.set_option("ModelRatio", json.dumps({m: 1 for m in ALL}))
M.set_option("CompletionRatio", json.dumps({m: 1 for m in ALL}))
M.add_channel("cliproxyd", CPD, KEY, ",".join(m for m in ALL if "-m-" in m), auto_ban=0)
UID = M.add_user("faultuser", 50_000_000)
TID = M.add_token(UID, "F" * 48, remain_quota=50_000_000)
MKEY = "sk-" + "F" * 48
M.wait_caches()


def request(via, mdl, stream, text, timeout=15):
    """Sends one Chat request; returns a dict: status, body (bytes), events [(t, data)],
    broken (the connection ended uncleanly), t0."""
    base, key = (CPD, KEY) if via == "d" else (M.url, MKEY)
    port = int(base.rsplit(":", 1)[1])
    body = {"model": mdl, "messages": [{"role": "user", "content": text}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    c = hc.HTTPConnection("127.0.0.1", port, timeout=timeout)
    out = {"status": 0, "body": b"", "events": [], "broken": None, "t0": time.time()}
    try:
        c.request("POST", "/v1/chat/completions", json.dumps(body).encode(),
                  {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = c.getresponse()
        out["status"], out["ctype"] = r.status, r.getheader("Content-Type", "")
        out["rid"] = r.getheader("X-Oneapi-Request-Id")
        buf = b""
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf and out["ctype"].startswith("text/event-stream"):
                ev, buf = buf.split(b"\n\n", 1)
                out["events"].append((time.time(), ev))
            out["body"] += chunk
    except (hc.HTTPException, OSError) as e:
        out["broken"] = repr(e)
    finally:
        c.close()
    return out


def sse_data(ev):
    lines = [l[5:].lstrip() for l in ev.decode("utf-8", "replace").replace("\r", "").split("\n")
             if l.startswith("data:")]
    return "\n".join(lines) if lines else None


def classify(res, shape, text, lenient=False):
    """ok (the whole answer) | error (JSON error, 4xx/5xx) | stream_error (SSE error event,
    no [DONE]) | bad: <why>."""
    want = ("fake answer to: " if shape == "cx" else "fake faulty answer to: ") + text
    st, body = res["status"], res["body"]
    if res["broken"]:
        last = sse_data(res["events"][-1][1]) if res["events"] else None
        if st == 200 and last and last.startswith('{"error"'):
            return "stream_error"  # meterd ends a failed stream by dropping the connection
        return "bad: connection broken: " + res["broken"]
    if st != 200:
        if not 400 <= st <= 599:
            return f"bad: status {st}"
        try:
            e = json.loads(body)["error"]
            assert isinstance(e, dict) and e.get("message")
        except Exception:
            return f"bad: {st} without a JSON error: {body[:200]!r}"
        return "error"
    if not res.get("ctype", "").startswith("text/event-stream"):
        try:
            j = json.loads(body.decode("utf-8"))
        except Exception as e:
            return f"bad: 200 body not JSON/UTF-8 ({e}): {body[:200]!r}"
        if "error" in j:
            return f"bad: 200 carrying an error: {body[:200]!r}"
        got = j["choices"][0]["message"].get("content")
        return "ok" if got == want else f"bad: 200 with content {str(got)[:120]!r}"
    datas = [sse_data(ev) for _, ev in res["events"]]
    datas = [d for d in datas if d is not None]
    if not datas:
        return "bad: empty stream"
    objs = []
    for d in datas:
        if d == "[DONE]":
            objs.append("[DONE]")
            continue
        try:
            objs.append(json.loads(d))
        except Exception as e:
            return f"bad: an event is not JSON ({e}): {d[:160]!r}"
    if objs[-1] == "[DONE]":
        if any(isinstance(o, dict) and "error" in o for o in objs):
            return "bad: [DONE] after an error event"
        odd = [o for o in objs[:-1] if not (isinstance(o, dict) and isinstance(
            o.get("choices"), list) and all(isinstance(c, dict) and isinstance(
                c.get("delta"), dict) for c in o["choices"]))]
        if odd and not lenient:
            return f"bad: events that are not chat chunks: {str(odd)[:160]}"
        got = "".join((o["choices"][0]["delta"].get("content") or "") for o in objs[:-1]
                      if o not in odd and o["choices"])
        return "ok" if got == want else f"bad: stream text {got[:120]!r}"
    if isinstance(objs[-1], dict) and isinstance(objs[-1].get("error"), dict) and \
            objs[-1]["error"].get("message"):
        return "stream_error"
    return f"bad: stream ends without [DONE] or error: {datas[-1][:160]!r}"


def run_case(shape, fault, mode, via, stream):
    mdl = model(shape, fault, mode, via, stream)
    step = FAULTS[fault]
    if mode == "a":
        http("POST", fake.url + "/_always", {mdl: step})
    else:
        http("POST", fake.url + "/_script", {mdl: [step]})
    text = f"{fault} {mode} {via} {stream}"
    res = request(via, mdl, stream, text)
    res["class"] = classify(res, shape, text, lenient=shape == "oc" and fault == "malformed_mid")
    res["case"] = (shape, fault, mode, via, stream)
    if VERBOSE:
        print(f"  {mdl:34} {res['status']} {res['class'][:150]}"
              f" ({time.time() - res['t0']:.1f}s)", flush=True)
    return res


def run_all(via, modes=("a", "o"), faults=None):
    cases = [(s, f, m, via, st) for f in (faults or FAULTS) for s in SHAPES for m in modes
             for st in (False, True)]
    fast = [c for c in cases if c[1] not in SLOW]
    slow = [c for c in cases if c[1] in SLOW]
    out = [run_case(*c) for c in fast]
    with concurrent.futures.ThreadPoolExecutor(len(slow) or 1) as ex:
        out += list(ex.map(lambda c: run_case(*c), slow))
    return out


# the stream carried content before the fault (no failover is possible after that)
def content_sent(shape, fault):
    return fault == "reset_late" or (shape == "oc" and fault in ("huge_event", "huge_line"))


def allowed(shape, fault, mode, via, stream):
    if fault in SLOW:
        return {"ok"}  # shorter than every timeout: the whole answer
    if fault == "huge_event":
        return {"ok", "error", "stream_error"}  # a valid 20 MiB answer: delivered or refused
    if fault == "malformed_mid" and shape == "oc":
        return {"ok", "error", "stream_error"}  # pass-through: JSON objects go through as sent
    if mode == "a":
        return {"error", "stream_error"}
    if stream and content_sent(shape, fault):
        return {"stream_error"}
    return {"ok"}


# bugs this test found, since fixed in cliproxyd (fmt_openai.c pass_stream_event): the
# opening {delta: {role, content: ""}} chunk no longer counts as content (a fault after it
# fails over), and a chunk that is not JSON (invalid UTF-8) is an upstream error, not a
# silent gap. Nothing is excused any more: KNOWN stays empty, ready for the next finding.
KNOWN = {}
STRICT = os.environ.get("FAULT_STRICT") == "1"
SEEN_KNOWN = set()


def check(results):
    bad = []
    for r in results:
        case, cls = r["case"], r["class"]
        ok = allowed(*case)
        if case in KNOWN and not STRICT:
            if cls in KNOWN[case][0]:
                SEEN_KNOWN.add(KNOWN[case][1])
                continue
            ok = ok | KNOWN[case][0]  # fixed since: the right answer is welcome
        if cls not in ok:
            bad.append(f"{model(*case)}: {r['status']} {cls} (want {sorted(ok)})")
    assert not bad, "\n".join(bad)
    for p in (cpd, M.proc):
        assert p.alive(), f"{p.name} died: {p.tail()}"


def user_money():
    return (M.one("SELECT quota, used_quota FROM users WHERE id=?", (UID,)) +
            M.one("SELECT remain_quota, used_quota FROM tokens WHERE id=?", (TID,)))


ROUND1 = {}


def test_cliproxyd_alone():
    ROUND1["d"] = run_all("d")
    check(ROUND1["d"])


def test_meterd_then_cliproxyd_costs_nothing_on_failure():
    q0, uu0, r0, tu0 = user_money()
    logs0 = M.one("SELECT COUNT(*), COALESCE(SUM(quota), 0) FROM logs WHERE user_id=? AND type=2",
                  (UID,))
    ROUND1["m"] = res = run_all("m")
    check(res)
    time.sleep(0.3)
    q1, uu1, r1, tu1 = user_money()
    n1, sum1 = M.one("SELECT COUNT(*), COALESCE(SUM(quota), 0) FROM logs WHERE user_id=? AND "
                     "type=2", (UID,))
    spent = sum1 - logs0[1]
    # zero drift: the user and the token moved by exactly what the logs say
    assert q0 - q1 == spent == uu1 - uu0 == r0 - r1 == tu1 - tu0, (q0, q1, spent, uu0, uu1)
    paid, unpaid = [], []
    for r in res:
        rows = M.sql("SELECT quota FROM logs WHERE type=2 AND request_id=?", (r["rid"],)) \
            if r.get("rid") else []
        charged = sum(x[0] for x in rows) if isinstance(rows, list) else 0
        if r["status"] != 200:
            # a failed request costs nothing: no consume log with quota > 0
            assert r.get("rid") and charged == 0, (model(*r["case"]), r["rid"], rows)
            unpaid.append(r)
        elif r["class"] == "ok":
            assert isinstance(rows, list) and len(rows) == 1 and charged > 0, \
                (model(*r["case"]), rows)
            paid.append(r)
    assert unpaid and paid and n1 - logs0[0] >= len(paid)


def test_no_fd_leak_after_a_second_round():
    fast = [f for f in FAULTS if f not in SLOW and not f.startswith("huge")]
    time.sleep(1)
    before = {p.name: p.nfds() for p in (cpd, M.proc)}
    for _ in range(2):
        for via in ("d", "m"):
            check(run_all(via, modes=("a",), faults=fast))
    time.sleep(1)
    after = {p.name: p.nfds() for p in (cpd, M.proc)}
    for name in before:
        assert after[name] <= before[name] + 8, (name, before[name], after[name])
    if VERBOSE:
        print("  fds before/after:", before, after)


def test_stall_between_events_streams_what_came_before():
    """the events sent before a 3 s stall reach the client before the stall ends"""
    def one(case):
        shape, via = case
        mdl = model(shape, "stall_between", "o", via, True)
        http("POST", fake.url + "/_script",
             {mdl: [{"fault": "stall_between", "seconds": 3, "at": 6}]})
        r = request(via, mdl, True, "stall")
        assert classify(r, shape, "stall") == "ok", (mdl, r["status"], r["body"][:300])
        first = r["events"][0][0] - r["t0"]
        last = r["events"][-1][0] - r["t0"]
        assert first < 1.5 and last >= 2.9, (mdl, first, last)

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(one, [(s, v) for s in SHAPES for v in ("d", "m")]))


def test_connection_refused():
    """An upstream whose port refuses connections: alone, a clear 502 JSON error at once;
    pooled with a healthy entry (the refusing one has the higher priority), every request
    succeeds through the other, stream and non-stream."""
    for stream in (False, True):
        r = request("d", "closed-only", stream, "refused")
        assert r["status"] == 502, r
        err = json.loads(r["body"])["error"]
        assert "unreachable" in err["message"], err
        assert time.time() - r["t0"] < 5, "a refused connect must fail fast"
    for i in range(4):
        r = request("d", "closed-pool", bool(i % 2), f"pooled {i}")
        assert r["status"] == 200, r
    assert cpd.alive()


def test_report_known_bugs():
    for msg in sorted(SEEN_KNOWN):
        print("KNOWN BUG (not failing; FAULT_STRICT=1 fails it):", msg, flush=True)


run([test_connection_refused, test_cliproxyd_alone, test_meterd_then_cliproxyd_costs_nothing_on_failure,
     test_no_fd_leak_after_a_second_round, test_stall_between_events_streams_what_came_before,
     test_report_known_bugs])
