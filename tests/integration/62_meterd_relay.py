#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""meterd's relay with billing, end to end: meterd (after POST /api/setup) in front of
tests/fakes/fake_openai.py, users / tokens / channels / options written straight into the
SQLite file. Checks the charge against NewAPI's formula (spec 5.9's worked example), every
counter it moves and the consume log row; streams (usage forced upstream, kept from or
given to the client); a price change applied within seconds; failover that costs nothing;
200 concurrent requests on a small balance that never overdraw; NewAPI's token errors; a
client that leaves mid-stream is billed for what it received; the other formats, models,
billing endpoints, model mapping, pinning, rate limit, automatic disable and /metrics."""
import concurrent.futures
import json
import socket
import time

from harness import http, run, start_fake
from meterd_env import Meterd, chat, quota

FAKE = start_fake("fake_openai.py")
M = Meterd("meterd-relay")
UP_KEY = "sk-up-channel-a"
M.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "gpt-4o-mini": 0.075, "cheap": 1,
                                       "claude-3-5-sonnet-20241022": 1.5, "instant-model": 1,
                                       "text-embedding-3-small": 0.01, "gpt-3.5-turbo": 0.25}))
M.set_option("CompletionRatio", json.dumps({"cheap": 1}))
M.set_option("GroupRatio", json.dumps({"default": 1, "vip": 1.5}))
CH_A = M.add_channel("chan-a", FAKE.url, UP_KEY,
                     "gpt-4o,gpt-4o-mini,cheap,claude-3-5-sonnet-20241022,"
                     "text-embedding-3-small,gpt-3.5-turbo", groups="default,vip")
M.wait_caches()

_n = [0]


def new_user(quota_=2_000_000, group="default", remain=1_000_000, unlimited=0, role=1, **tok):
    _n[0] += 1
    uid = M.add_user(f"user{_n[0]:04d}", quota_, group=group, role=role)
    key = f"K{_n[0]:04d}" + "x" * 44
    tid = M.add_token(uid, key, remain_quota=remain, unlimited=unlimited, **tok)
    return uid, tid, "sk-" + key


def balances(uid, tid):
    u = M.one("SELECT quota, used_quota, request_count FROM users WHERE id=?", (uid,))
    t = M.one("SELECT remain_quota, used_quota FROM tokens WHERE id=?", (tid,))
    return u + t


def logs_of(uid):
    c = M.db()
    c.row_factory = __import__("sqlite3").Row
    try:
        return [dict(r) for r in c.execute("SELECT * FROM logs WHERE user_id=? AND type=2 "
                                           "ORDER BY id", (uid,))]
    finally:
        c.close()


def chan_used(cid):
    return M.one("SELECT used_quota FROM channels WHERE id=?", (cid,))[0]


def fake_cfg(**kw):
    http("POST", FAKE.url + "/_config", dict({"prompt_tokens": 100, "completion_tokens": 20,
                                              "cached_tokens": 0, "events": 0,
                                              "interval_ms": 0, "delay_ms": 0}, **kw))


def last_request():
    return json.loads(http("GET", FAKE.url + "/_requests")[2])[-1]


def sse_events(body):
    out = []
    for block in body.decode().split("\n\n"):
        data = [l[6:] for l in block.split("\n") if l.startswith("data: ")]
        if data:
            out.append("\n".join(data))
    return out


def test_worked_example_nonstream():
    """spec 5.9: gpt-4o 1.25, completion 4, cache 0.5, group vip 1.5 -> 20625."""
    uid, tid, key = new_user(group="vip")
    fake_cfg(prompt_tokens=10000, cached_tokens=6000, completion_tokens=1000)
    before = balances(uid, tid)
    ch_before = chan_used(CH_A)
    st, h, body = chat(M.url, key, {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "hello meter"}]})
    assert st == 200, body
    ans = json.loads(body)
    assert ans["choices"][0]["message"]["content"] == "fake answer to: hello meter"
    rid = h["x-oneapi-request-id"]
    up = last_request()
    assert up["path"] == "/v1/chat/completions"
    assert up["headers"]["authorization"] == "Bearer " + UP_KEY
    assert up["body"]["model"] == "gpt-4o" and "stream_options" not in up["body"]
    want = quota(10000, 1000, 1.25, 4, 1.5, cached=6000, cache_ratio=0.5)
    assert want == 20625
    after = balances(uid, tid)
    assert after[0] == before[0] - want            # users.quota
    assert after[1] == before[1] + want            # users.used_quota
    assert after[2] == before[2] + 1               # users.request_count
    assert after[3] == before[3] - want            # tokens.remain_quota
    assert after[4] == before[4] + want            # tokens.used_quota
    assert chan_used(CH_A) == ch_before + want     # channels.used_quota
    (lg,) = logs_of(uid)
    assert lg["quota"] == want and lg["prompt_tokens"] == 10000
    assert lg["completion_tokens"] == 1000 and lg["model_name"] == "gpt-4o"
    assert lg["group"] == "vip" and lg["channel_id"] == CH_A and lg["token_id"] == tid
    assert lg["request_id"] == rid and lg["is_stream"] == 0
    assert lg["username"] == M.one("SELECT username FROM users WHERE id=?", (uid,))[0]
    assert lg["upstream_request_id"].startswith("up-")
    o = json.loads(lg["other"])
    assert o["model_ratio"] == 1.25 and o["group_ratio"] == 1.5 and o["completion_ratio"] == 4
    assert o["cache_tokens"] == 6000 and o["cache_ratio"] == 0.5 and o["model_price"] == -1
    assert o["user_group_ratio"] == -1 and o["admin_info"]["use_channel"] == [str(CH_A)]
    assert o["request_path"] == "/v1/chat/completions" and o["usage_source"] == "upstream"
    assert "frt" in o
    fake_cfg()


def test_stream_billing_and_usage_chunk():
    uid, tid, key = new_user()
    before = balances(uid, tid)
    st, h, body = chat(M.url, key, {"model": "gpt-4o", "stream": True, "messages": [
        {"role": "user", "content": "stream please"}]})
    assert st == 200 and h["content-type"].startswith("text/event-stream")
    up = last_request()
    assert up["body"]["stream_options"] == {"include_usage": True}  # forced upstream
    evs = sse_events(body)
    assert evs[-1] == "[DONE]"
    chunks = [json.loads(e) for e in evs[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "fake answer to: stream please"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 100
    want = quota(100, 20, 1.25, 4, 1)
    assert balances(uid, tid)[0] == before[0] - want
    (lg,) = logs_of(uid)
    assert lg["quota"] == want and lg["is_stream"] == 1
    assert lg["request_id"] == h["x-oneapi-request-id"]
    assert json.loads(lg["other"])["stream_status"] == {"status": "ok", "end_reason": "done"}
    # a client that said include_usage false gets no usage chunk, and is billed all the same
    st, h, body = chat(M.url, key, {"model": "gpt-4o", "stream": True,
                                    "stream_options": {"include_usage": False},
                                    "messages": [{"role": "user", "content": "x"}]})
    assert st == 200
    assert last_request()["body"]["stream_options"] == {"include_usage": True}
    evs = sse_events(body)
    assert evs[-1] == "[DONE]" and all('"usage"' not in e for e in evs)
    assert len(logs_of(uid)) == 2 and logs_of(uid)[1]["quota"] == want


def test_new_channel_serves_at_once():
    """a channel written a moment ago (admin API or sqlite3) serves the next request: a miss
    looks again in a fresh snapshot instead of waiting for the next poll"""
    uid, _, key = new_user()
    M.add_channel("chan-instant", FAKE.url, UP_KEY, "instant-model")
    st, _, body = chat(M.url, key, {"model": "instant-model",
                                    "messages": [{"role": "user", "content": "now"}]})
    assert st == 200, body
    assert logs_of(uid)[-1]["model_name"] == "instant-model"


def test_price_change_applies_within_5s():
    uid, tid, key = new_user()
    st, _, _ = chat(M.url, key, {"model": "cheap", "messages": [{"role": "user", "content": "a"}]})
    assert st == 200 and logs_of(uid)[-1]["quota"] == quota(100, 20, 1, 1, 1)
    M.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "gpt-4o-mini": 0.075, "cheap": 3,
                                           "claude-3-5-sonnet-20241022": 1.5,
                                           "text-embedding-3-small": 0.01,
                                           "gpt-3.5-turbo": 0.25}))
    t0 = time.time()
    while True:
        st, _, _ = chat(M.url, key, {"model": "cheap", "messages": [{"role": "user",
                                                                     "content": "a"}]})
        assert st == 200
        if logs_of(uid)[-1]["quota"] == quota(100, 20, 3, 1, 1):
            break
        assert time.time() - t0 < 5, "the new price did not apply within 5 s"
        time.sleep(0.2)
    M.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "gpt-4o-mini": 0.075, "cheap": 1,
                                           "claude-3-5-sonnet-20241022": 1.5,
                                           "text-embedding-3-small": 0.01,
                                           "gpt-3.5-turbo": 0.25}))
    M.wait_caches()


def test_failover_costs_nothing():
    """a failing channel (scripted 500) costs nothing and the next one serves; when every
    channel fails the reservation comes back and nothing is logged."""
    b_key = "sk-up-channel-b"
    cb = M.add_channel("chan-b", FAKE.url, b_key, "failover-model", priority=0)
    ca = M.add_channel("chan-a2", FAKE.url, "sk-up-channel-a2", "failover-model", priority=10)
    M.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "gpt-4o-mini": 0.075, "cheap": 1,
                                           "failover-model": 1,
                                           "claude-3-5-sonnet-20241022": 1.5,
                                           "text-embedding-3-small": 0.01,
                                           "gpt-3.5-turbo": 0.25}))
    M.set_option("RetryTimes", "1")
    M.wait_caches()
    uid, tid, key = new_user()
    before = balances(uid, tid)
    http("POST", FAKE.url + "/_script", {"sk-up-channel-a2": [{"status": 500}]})
    st, h, body = chat(M.url, key, {"model": "failover-model",
                                    "messages": [{"role": "user", "content": "fo"}]})
    assert st == 200, body
    (lg,) = logs_of(uid)
    assert lg["channel_id"] == cb
    assert json.loads(lg["other"])["admin_info"]["use_channel"] == [str(ca), str(cb)]
    assert chan_used(ca) == 0 and chan_used(cb) == lg["quota"]
    assert balances(uid, tid)[0] == before[0] - lg["quota"]
    # both fail: the client gets the upstream error, nothing is charged or logged
    before = balances(uid, tid)
    http("POST", FAKE.url + "/_script", {"sk-up-channel-a2": [{"status": 500}],
                                         b_key: [{"status": 502, "message": "bad gateway b"}]})
    st, h, body = chat(M.url, key, {"model": "failover-model",
                                    "messages": [{"role": "user", "content": "fo"}]})
    assert st == 502, (st, body)
    err = json.loads(body)["error"]
    assert err["message"] == "bad gateway b (request id: %s)" % h["x-oneapi-request-id"]
    assert balances(uid, tid) == before
    assert len(logs_of(uid)) == 1
    # a 400 is not retried (NewAPI's AutomaticRetryStatusCodes), and costs nothing either
    http("POST", FAKE.url + "/_script", {"sk-up-channel-a2": [{"status": 400}]})
    st, _, _ = chat(M.url, key, {"model": "failover-model",
                                 "messages": [{"role": "user", "content": "fo"}]})
    assert st == 400 and balances(uid, tid) == before
    M.set_option("RetryTimes", "0")
    M.wait_caches()


def test_stream_failover_and_cut():
    """a stream whose first channel fails before any byte is served by the next; a stream
    the upstream cuts mid-way (no usage, no [DONE]) is billed on the local count of what
    came, and the client's stream ends in an error, not in a clean end."""
    M.set_option("RetryTimes", "2")
    M.wait_caches()
    uid, tid, key = new_user()
    http("POST", FAKE.url + "/_script", {"sk-up-channel-a2": [{"status": 503}]})
    st, _, body = chat(M.url, key, {"model": "failover-model", "stream": True,
                                    "messages": [{"role": "user", "content": "s"}]})
    assert st == 200 and sse_events(body)[-1] == "[DONE]"
    lg = logs_of(uid)[-1]
    assert lg["is_stream"] == 1 and len(json.loads(lg["other"])["admin_info"]["use_channel"]) == 2
    # an Anthropic stream cut after message_start, before any content: nothing reached the
    # client yet, so the next channel serves it whole
    http("POST", FAKE.url + "/_script", {"sk-up-channel-a2": [{"cut_after": 0}]})
    st, _, body = http("POST", M.url + "/v1/messages",
                       {"model": "failover-model", "max_tokens": 9, "stream": True,
                        "messages": [{"role": "user", "content": "c"}]},
                       {"x-api-key": key, "anthropic-version": "2023-06-01"})
    assert st == 200 and body.count(b"event: message_start") == 1, body
    assert b"event: message_stop" in body
    assert json.loads(logs_of(uid)[-1]["other"])["admin_info"]["use_channel"][-1] == str(
        M.one("SELECT id FROM channels WHERE name='chan-b'")[0])
    before = balances(uid, tid)
    http("POST", FAKE.url + "/_script", {"*": [{"cut_after": 3, "events": 30}]})
    raw = json.dumps({"model": "cheap", "stream": True,
                      "messages": [{"role": "user", "content": "cut me"}]}).encode()
    s = socket.create_connection(("127.0.0.1", M.port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Authorization: Bearer " + key.encode() + b"\r\nContent-Type: application/json"
              b"\r\nContent-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.startswith(b"HTTP/1.1 200") and b"[DONE]" not in got
    assert not got.endswith(b"0\r\n\r\n"), "a cut stream must not end like a complete one"
    assert got.count(b'"content"') == 3
    lg = logs_of(uid)[-1]
    o = json.loads(lg["other"])
    assert o["usage_source"] == "local" and o["admin_info"]["local_count_tokens"] is True
    assert o["stream_status"] == {"status": "error", "end_reason": "upstream_error"}
    assert 3 <= lg["completion_tokens"] <= 6 and lg["prompt_tokens"] > 0
    assert lg["quota"] == quota(lg["prompt_tokens"], lg["completion_tokens"], 1, 1, 1)
    assert balances(uid, tid)[0] == before[0] - lg["quota"]
    M.set_option("RetryTimes", "0")
    M.wait_caches()


def test_concurrency_never_overdraws():
    """200 concurrent requests on a balance that covers a few: the reservation (500 quota
    each) is atomic, so the balance never goes below 0 and the logs add up exactly."""
    initial = 6000
    uid, tid, key = new_user(quota_=initial, unlimited=1, remain=0)
    fake_cfg(delay_ms=30)

    def one(_):
        st, _, body = chat(M.url, key, {"model": "cheap",
                                        "messages": [{"role": "user", "content": "c"}]},
                           timeout=60)
        return st, body

    with concurrent.futures.ThreadPoolExecutor(200) as ex:
        res = list(ex.map(one, range(200)))
    fake_cfg()
    ok = sum(1 for st, _ in res if st == 200)
    refused = [json.loads(b)["error"]["code"] for st, b in res if st != 200]
    assert ok >= 12, ok  # at least the first batch of reservations went through
    assert all(c == "insufficient_user_quota" for c in refused), set(refused)
    final = M.one("SELECT quota FROM users WHERE id=?", (uid,))[0]
    logged = M.one("SELECT COALESCE(SUM(quota),0), COUNT(*) FROM logs WHERE user_id=? AND "
                   "type=2", (uid,))
    assert final >= 0, final
    assert logged[0] == initial - final, (logged, initial, final)
    assert logged[1] == ok
    assert M.one("SELECT request_count FROM users WHERE id=?", (uid,))[0] == ok


def test_token_errors():
    now = int(time.time())
    uid, _, good = new_user()
    cases = {
        "expired": dict(expired_time=now - 10),
        "exhausted": dict(remain=0),
        "disabled": dict(status=2),
    }
    for name, kw in cases.items():
        remain = kw.pop("remain", 1000)
        key = f"E{name:>8}".replace(" ", "z") + "y" * 39
        M.add_token(uid, key, remain_quota=remain, **kw)
        st, h, body = chat(M.url, "sk-" + key, {"model": "gpt-4o", "messages": []})
        assert st == 401, (name, st, body)
        assert json.loads(body) == {"error": {
            "message": "Invalid token (request id: %s)" % h["x-oneapi-request-id"],
            "type": "new_api_error", "code": ""}}, (name, body)
    for key in ("sk-nosuchkey" + "q" * 36, ""):
        st, h, body = chat(M.url, key, {"model": "gpt-4o", "messages": []})
        assert st == 401 and json.loads(body)["error"]["type"] == "new_api_error"
    # x-api-key works like Authorization
    st, _, _ = http("POST", M.url + "/v1/chat/completions",
                    {"model": "gpt-4o", "messages": [{"role": "user", "content": "k"}]},
                    {"x-api-key": good, "Content-Type": "application/json"})
    assert st == 200
    # wrong model (model limits) and wrong IP
    key = "Elimitedmodel" + "y" * 35
    M.add_token(uid, key, remain_quota=1000, model_limits="gpt-4o-mini")
    st, _, body = chat(M.url, "sk-" + key, {"model": "gpt-4o", "messages": []})
    assert st == 403 and "gpt-4o" in json.loads(body)["error"]["message"]
    st, _, _ = chat(M.url, "sk-" + key, {"model": "gpt-4o-mini",
                                        "messages": [{"role": "user", "content": "m"}]})
    assert st == 200
    key = "Eotherip" + "y" * 40
    M.add_token(uid, key, remain_quota=1000, allow_ips="127.99.9.9\n127.200.0.0/16")
    st, _, body = chat(M.url, "sk-" + key, {"model": "gpt-4o", "messages": []})
    assert st == 403 and json.loads(body)["error"]["code"] == "access_denied"
    # a banned user, a token quota smaller than the reservation
    buid, _, bkey = new_user()
    M.sql("UPDATE users SET status = 2 WHERE id = ?", (buid,))
    M.wait_caches()
    st, _, _ = chat(M.url, bkey, {"model": "gpt-4o", "messages": []})
    assert st == 403
    _, _, small = new_user(remain=10)
    st, _, body = chat(M.url, small, {"model": "gpt-4o",
                                      "messages": [{"role": "user", "content": "s"}]})
    assert st == 403 and json.loads(body)["error"]["code"] == "pre_consume_token_quota_failed"
    # bad bodies, no channel, no price
    st, _, body = http("POST", M.url + "/v1/chat/completions", b"{nope",
                       {"Authorization": "Bearer " + good})
    assert st == 400
    st, _, body = chat(M.url, good, {"messages": []})
    assert st == 400 and "model" in json.loads(body)["error"]["message"]
    st, _, body = chat(M.url, good, {"model": "no-channel-model", "messages": []})
    assert st == 503 and json.loads(body)["error"]["code"] == "model_not_found"
    M.add_channel("chan-unpriced", FAKE.url, UP_KEY, "unpriced-model")
    M.wait_caches()
    st, _, body = chat(M.url, good, {"model": "unpriced-model", "messages": []})
    assert st == 400 and json.loads(body)["error"]["code"] == "model_price_error"


def read_some_and_close(key, body, n_events):
    """Sends a streaming request on a raw socket, reads n_events data events, closes."""
    raw = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", M.port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(raw)).encode() + b"\r\n\r\n" + raw)
    buf = b""
    while buf.count(b"data: ") < n_events:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    head = buf.split(b"\r\n\r\n", 1)[0].decode()
    rid = [l.split(":", 1)[1].strip() for l in head.split("\r\n")
           if l.lower().startswith("x-oneapi-request-id:")][0]
    s.close()
    return rid


def test_client_disconnect_is_billed():
    uid, tid, key = new_user()
    aborted = json.loads(http("GET", FAKE.url + "/_stats")[2])["aborted"]
    # no usage from upstream: billed for the tokens delivered
    http("POST", FAKE.url + "/_script", {UP_KEY: [{"events": 200, "interval_ms": 30,
                                                   "no_usage": True}]})
    rid = read_some_and_close(key, {"model": "cheap", "stream": True, "messages": [
        {"role": "user", "content": "tell me a long story"}]}, 5)
    t0 = time.time()
    while not logs_of(uid) and time.time() - t0 < 10:
        time.sleep(0.1)
    (lg,) = logs_of(uid)
    o = json.loads(lg["other"])
    assert lg["request_id"] == rid
    assert o["usage_source"] == "delivered" and o["admin_info"].get("local_count_tokens")
    assert o["stream_status"] == {"status": "error", "end_reason": "client_gone"}
    assert 1 <= lg["completion_tokens"] < 100, lg  # what was delivered, not all 200 words
    assert lg["prompt_tokens"] > 0
    assert lg["quota"] == quota(lg["prompt_tokens"], lg["completion_tokens"], 1, 1, 1)
    assert balances(uid, tid)[0] == 2_000_000 - lg["quota"]
    t0 = time.time()
    while json.loads(http("GET", FAKE.url + "/_stats")[2])["aborted"] == aborted:
        assert time.time() - t0 < 5, "the upstream stream was not cancelled"
        time.sleep(0.1)


def test_other_formats_and_models():
    uid, tid, key = new_user()
    h = {"Authorization": "Bearer " + key}
    # Responses, stream and not
    for stream in (False, True):
        st, _, body = http("POST", M.url + "/v1/responses", {"model": "gpt-4o", "input": "r",
                                                             "stream": stream}, h)
        assert st == 200, body
        assert logs_of(uid)[-1]["quota"] == quota(100, 20, 1.25, 4, 1)
        assert last_request()["path"] == "/v1/responses"
    # Anthropic Messages with x-api-key; the anthropic semantic (input excludes cache)
    fake_cfg(prompt_tokens=100, cached_tokens=1000, completion_tokens=20)
    for stream in (False, True):
        st, rh, body = http("POST", M.url + "/v1/messages",
                            {"model": "claude-3-5-sonnet-20241022", "max_tokens": 64,
                             "stream": stream, "messages": [{"role": "user", "content": "m"}]},
                            {"x-api-key": key, "anthropic-version": "2023-06-01"})
        assert st == 200, body
        assert last_request()["headers"]["anthropic-version"] == "2023-06-01"
        lg = logs_of(uid)[-1]
        # claude-3*: completion 5 (built-in); CacheRatio default 1 for this name here
        o = json.loads(lg["other"])
        assert o.get("usage_semantic") == "anthropic"
        assert lg["quota"] == quota(100, 20, 1.5, o["completion_ratio"], 1, cached=1000,
                                    cache_ratio=o["cache_ratio"], anthropic=True)
    fake_cfg()
    # a Claude-shaped error on /v1/messages
    http("POST", FAKE.url + "/_script", {UP_KEY: [{"status": 529, "message": "overloaded"}]})
    st, _, body = http("POST", M.url + "/v1/messages",
                       {"model": "claude-3-5-sonnet-20241022", "max_tokens": 8,
                        "messages": [{"role": "user", "content": "m"}]},
                       {"x-api-key": key, "anthropic-version": "2023-06-01"})
    err = json.loads(body)
    assert st == 529 and err["type"] == "error" and "overloaded" in err["error"]["message"]
    # embeddings and legacy completions
    st, _, body = http("POST", M.url + "/v1/embeddings", {"model": "text-embedding-3-small",
                                                          "input": ["a", "b"]}, h)
    assert st == 200 and len(json.loads(body)["data"]) == 2
    assert logs_of(uid)[-1]["quota"] == quota(100, 0, 0.01, 1, 1)
    st, _, body = http("POST", M.url + "/v1/completions", {"model": "gpt-3.5-turbo",
                                                           "prompt": "p", "stream": True}, h)
    assert st == 200 and sse_events(body)[-1] == "[DONE]"
    assert logs_of(uid)[-1]["completion_tokens"] == 20
    # /v1/models, OpenAI and Anthropic shapes
    st, _, body = http("GET", M.url + "/v1/models", headers=h)
    ids = [m["id"] for m in json.loads(body)["data"]]
    assert st == 200 and "gpt-4o" in ids and "cheap" in ids
    assert "unpriced-model" not in ids and "no-channel-model" not in ids
    assert json.loads(body)["object"] == "list"
    st, _, body = http("GET", M.url + "/v1/models",
                       headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    a = json.loads(body)
    assert st == 200 and a["has_more"] is False and a["data"][0]["type"] == "model"
    assert a["first_id"] == a["data"][0]["id"]
    st, _, body = http("GET", M.url + "/v1/models/gpt-4o", headers=h)
    assert st == 200 and json.loads(body)["id"] == "gpt-4o"
    st, _, body = http("GET", M.url + "/v1/models/nope", headers=h)
    assert st == 404 and json.loads(body)["error"]["code"] == "model_not_found"
    assert http("GET", M.url + "/v1/models")[0] == 401
    # CORS: a preflight, and the header on answers
    st, ch, _ = http("OPTIONS", M.url + "/v1/chat/completions",
                     headers={"Origin": "https://app.example", "Access-Control-Request-Method":
                              "POST", "Access-Control-Request-Headers": "authorization"})
    assert st == 204 and ch["access-control-allow-origin"] == "*"
    assert ch["access-control-allow-headers"] == "authorization"
    assert http("GET", M.url + "/v1/models", headers=h)[1]["access-control-allow-origin"] == "*"


def test_model_mapping_and_pinning():
    cid = M.add_channel("chan-map", FAKE.url, "sk-up-map", "mapped-alias",
                        model_mapping=json.dumps({"mapped-alias": "gpt-4o-2024-08-06"}))
    M.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "gpt-4o-mini": 0.075, "cheap": 1,
                                           "failover-model": 1, "mapped-alias": 2,
                                           "claude-3-5-sonnet-20241022": 1.5,
                                           "text-embedding-3-small": 0.01,
                                           "gpt-3.5-turbo": 0.25}))
    M.wait_caches()
    uid, _, key = new_user()
    st, _, body = chat(M.url, key, {"model": "mapped-alias",
                                    "messages": [{"role": "user", "content": "map"}]})
    assert st == 200, body
    assert last_request()["body"]["model"] == "gpt-4o-2024-08-06"
    lg = logs_of(uid)[-1]
    o = json.loads(lg["other"])
    assert lg["model_name"] == "mapped-alias" and o["upstream_model_name"] == "gpt-4o-2024-08-06"
    assert o["is_model_mapped"] is True and lg["quota"] == quota(100, 20, 2, 1, 1)
    # pinning: admins only; the pinned channel serves even a model it does not list
    st, _, _ = chat(M.url, key + f"-{cid}", {"model": "gpt-4o", "messages": []})
    assert st == 403
    auid, _, akey = new_user(role=10)
    st, _, body = chat(M.url, akey + f"-{cid}", {"model": "cheap",
                                                 "messages": [{"role": "user", "content": "p"}]})
    assert st == 200, body
    assert logs_of(auid)[-1]["channel_id"] == cid


def test_billing_endpoints():
    uid, tid, key = new_user(remain=500000)
    h = {"Authorization": "Bearer " + key}
    chat(M.url, key, {"model": "gpt-4o", "messages": [{"role": "user", "content": "b"}]})
    used = M.one("SELECT used_quota FROM tokens WHERE id=?", (tid,))[0]
    for path in ("/dashboard/billing/subscription", "/v1/dashboard/billing/subscription"):
        st, _, body = http("GET", M.url + path, headers=h)
        s = json.loads(body)
        assert st == 200 and s["object"] == "billing_subscription"
        assert abs(s["hard_limit_usd"] - 500000 / 500000) < 1e-9  # remain + used = granted
        assert s["access_until"] == 0 and s["has_payment_method"] is True
    for path in ("/dashboard/billing/usage", "/v1/dashboard/billing/usage"):
        st, _, body = http("GET", M.url + path, headers=h)
        u = json.loads(body)
        assert st == 200 and u["object"] == "list"
        assert abs(u["total_usage"] - used / 500000 * 100) < 1e-9
    _, _, ukey = new_user(unlimited=1)
    s = json.loads(http("GET", M.url + "/v1/dashboard/billing/subscription",
                        headers={"Authorization": "Bearer " + ukey})[2])
    assert s["hard_limit_usd"] == 100000000


def test_rate_limit():
    M.set_option("ModelRequestRateLimitEnabled", "true")
    M.set_option("ModelRequestRateLimitCount", "3")
    M.wait_caches()
    try:
        _, _, key = new_user()
        sts = [chat(M.url, key, {"model": "cheap", "messages": [{"role": "user",
                                                                 "content": "r"}]})[0]
               for _ in range(4)]
        assert sts[:3] == [200, 200, 200] and sts[3] == 429, sts
        _, _, other = new_user()  # per user
        assert chat(M.url, other, {"model": "cheap", "messages": [
            {"role": "user", "content": "r"}]})[0] == 200
    finally:
        M.set_option("ModelRequestRateLimitEnabled", "false")
        M.wait_caches()


def test_auto_disable_after_n_failures():
    cid = M.add_channel("chan-flaky", FAKE.url, "sk-up-flaky", "flaky-model")
    M.add_channel("chan-spare", FAKE.url, "sk-up-spare", "flaky-model", priority=-5)
    M.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "cheap": 1, "flaky-model": 1,
                                           "gpt-4o-mini": 0.075, "failover-model": 1,
                                           "mapped-alias": 2, "claude-3-5-sonnet-20241022": 1.5,
                                           "text-embedding-3-small": 0.01,
                                           "gpt-3.5-turbo": 0.25}))
    M.set_option("AutomaticDisableChannelEnabled", "true")
    M.set_option("AutomaticDisableFailureCount", "3")
    M.wait_caches()
    _, _, key = new_user()
    http("POST", FAKE.url + "/_script", {"sk-up-flaky": [{"status": 401}] * 3})
    for i in range(2):  # one error is not enough (NewAPI would disable here)
        assert chat(M.url, key, {"model": "flaky-model", "messages": []})[0] == 401
        M.wait_caches()
        assert M.one("SELECT status FROM channels WHERE id=?", (cid,))[0] == 1
    assert chat(M.url, key, {"model": "flaky-model", "messages": []})[0] == 401
    t0 = time.time()
    while M.one("SELECT status FROM channels WHERE id=?", (cid,))[0] != 3:
        assert time.time() - t0 < 5, "not disabled after 3 consecutive failures"
        time.sleep(0.1)
    info = json.loads(M.one("SELECT other_info FROM channels WHERE id=?", (cid,))[0])
    assert "3 consecutive failures" in info["status_reason"] and info["status_time"] > 0
    assert M.one("SELECT enabled FROM abilities WHERE channel_id=?", (cid,))[0] == 0
    M.wait_caches()
    st, _, _ = chat(M.url, key, {"model": "flaky-model", "messages": [
        {"role": "user", "content": "f"}]})
    assert st == 200  # the spare serves now
    M.set_option("AutomaticDisableChannelEnabled", "false")
    M.wait_caches()


def test_metrics():
    st, h, body = http("GET", M.url + "/metrics")
    text = body.decode()
    assert st == 200 and h["content-type"].startswith("text/plain")
    assert 'meterd_relay_requests_total{model="gpt-4o",channel="%d",class="2xx"}' % CH_A in text
    assert "meterd_relay_quota_total{" in text
    assert "meterd_relay_request_duration_seconds_bucket{" in text
    assert "meterd_store_writer_commits_total " in text
    q = [l for l in text.splitlines()
         if l.startswith('meterd_relay_quota_total{model="gpt-4o",channel="%d"}' % CH_A)]
    assert q and int(q[0].split()[-1]) > 0


run([test_worked_example_nonstream, test_stream_billing_and_usage_chunk,
     test_new_channel_serves_at_once,
     test_price_change_applies_within_5s, test_failover_costs_nothing,
     test_stream_failover_and_cut, test_concurrency_never_overdraws, test_token_errors, test_client_disconnect_is_billed,
     test_other_formats_and_models, test_model_mapping_and_pinning, test_billing_endpoints,
     test_rate_limit, test_auto_disable_after_n_failures, test_metrics])
