#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The operator's flow, entirely over meterd's HTTP API (no database writes): setup -> login
(session cookie) -> access token -> a channel to the fake OpenAI upstream -> prices (PUT
/api/option/) -> a user with quota -> that user logs in, creates a token and reveals its key
-> a chat request with the key -> the logs row's quota equals NewAPI's formula and the
user's quota went down by exactly that much; a price change applies to the very next
request; a request the upstream fails costs nothing."""
import json
import time
import urllib.request

from harness import run, start_fake
from meterd_env import Meterd, quota

fake = start_fake("fake_openai.py")
m = Meterd("meterd-operator")
S = {}


def api(method, path, body=None, headers=None, want=True):
    req = urllib.request.Request(m.url + path, method=method, headers=headers or {},
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            out, hdrs, st = json.loads(r.read()), r.headers, r.status
    except urllib.error.HTTPError as e:
        out, hdrs, st = json.loads(e.read() or b"{}"), e.headers, e.code
    if want is not None:
        assert out.get("success") is want, (path, st, out)
    return out, hdrs


def login(user, password):
    out, hdrs = api("POST", "/api/user/login", {"username": user, "password": password})
    cookie = hdrs.get("Set-Cookie", "").split(";")[0]
    assert cookie.startswith("session="), hdrs
    return {"Cookie": cookie, "New-Api-User": str(out["data"]["id"])}, out["data"]["id"]


def test_admin_sets_up_channel_and_prices():
    cookie, uid = login("root", "rootpass123")
    tok = api("GET", "/api/user/token", headers=cookie)[0]["data"]
    S["admin"] = {"Authorization": tok, "New-Api-User": str(uid)}  # access-token auth from here
    api("POST", "/api/channel/", {"mode": "single", "channel": {
        "type": 1, "name": "fake", "base_url": fake.url, "key": "sk-upstream-0123456789",
        "models": "gpt-op", "group": "default"}}, S["admin"])
    for k, v in (("CompletionRatio", {"gpt-op": 4}), ("ModelRatio", {"gpt-op": 1.25}),
                 ("GroupRatio", {"default": 1, "vip": 1})):
        api("PUT", "/api/option/", {"key": k, "value": json.dumps(v)}, S["admin"])
    # a map sent as an object is refused and not stored
    api("PUT", "/api/option/", {"key": "ModelRatio", "value": {"gpt-op": 99}}, S["admin"],
        want=False)
    ratios = {o["key"]: o["value"] for o in api("GET", "/api/option/", headers=S["admin"])[0]["data"]}
    assert json.loads(ratios["ModelRatio"]) == {"gpt-op": 1.25}


def test_user_gets_quota_token_and_key():
    api("POST", "/api/user/", {"username": "alice", "password": "alicepass1", "role": 1},
        S["admin"])
    users = api("GET", "/api/user/search?keyword=alice", headers=S["admin"])[0]["data"]
    items = users["items"] if isinstance(users, dict) else users
    S["uid"] = next(u["id"] for u in items if u["username"] == "alice")
    api("POST", "/api/user/manage", {"id": S["uid"], "action": "add_quota", "mode": "override",
                                     "value": 1000000}, S["admin"])
    alice, _ = login("alice", "alicepass1")
    api("POST", "/api/token/", {"name": "laptop", "remain_quota": 500000,
                                "unlimited_quota": False, "expired_time": -1}, alice)
    toks = api("GET", "/api/token/", headers=alice)[0]["data"]["items"]
    tid = next(t["id"] for t in toks if t["name"] == "laptop")
    assert "*" in next(t["key"] for t in toks if t["id"] == tid)  # masked in lists
    S["key"] = "sk-" + api("POST", f"/api/token/{tid}/key", {}, alice)[0]["data"]["key"]
    S["alice"] = alice


def user_quota():
    return api("GET", f"/api/user/{S['uid']}", headers=S["admin"])[0]["data"]["quota"]


def request(text):
    req = urllib.request.Request(m.url + "/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": "gpt-op", "messages": [
                                     {"role": "user", "content": text}]}).encode(),
                                 headers={"Authorization": "Bearer " + S["key"],
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers.get("X-Oneapi-Request-Id"), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Oneapi-Request-Id"), json.loads(e.read() or b"{}")


def log_of(rid):
    for _ in range(50):
        logs = api("GET", f"/api/log/?type=2&request_id={rid}", headers=S["admin"])[0]["data"]
        if logs["items"]:
            return logs["items"][0]
        time.sleep(0.1)
    raise AssertionError(f"no log row for {rid}")


def test_request_is_billed_by_the_formula():
    before = user_quota()
    st, rid, body = request("hello operator")
    assert st == 200, body
    row = log_of(rid)
    want = quota(row["prompt_tokens"], row["completion_tokens"], 1.25, 4, 1)
    assert row["quota"] == want and want > 0, (row, want)
    assert before - user_quota() == want


def test_price_change_applies_to_the_next_request():
    api("PUT", "/api/option/", {"key": "ModelRatio", "value": json.dumps({"gpt-op": 2.5})},
        S["admin"])
    before = user_quota()
    st, rid, body = request("after the price change")
    assert st == 200, body
    row = log_of(rid)
    want = quota(row["prompt_tokens"], row["completion_tokens"], 2.5, 4, 1)
    assert row["quota"] == want, (row, want)
    assert before - user_quota() == want


def test_failed_request_costs_nothing():
    from harness import http
    http("POST", fake.url + "/_script", {"*": [{"status": 500, "message": "boom"}] * 3})
    before = user_quota()
    st, rid, body = request("will fail")
    assert st >= 500, body
    time.sleep(0.3)
    assert user_quota() == before
    http("POST", fake.url + "/_reset", {})


def test_clean_exit():
    assert m.proc.stop() == 0


run([test_admin_sets_up_channel_and_prices, test_user_gets_quota_token_and_key,
     test_request_is_billed_by_the_formula, test_price_change_applies_to_the_next_request,
     test_failed_request_costs_nothing, test_clean_exit])
