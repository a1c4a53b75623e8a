#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fake Codex backend is an oracle for cliproxyd's tests, so it is tested itself: a
request that follows every spec rule gets a complete Responses stream; each rule broken
on purpose is refused and named; scripted 429 / 5xx / early close / expired token /
refresh (including refresh_token_reused) behave as the real service does."""
import copy
import json
import urllib.parse

from harness import http, run, start_fake

fake = start_fake("fake_codex.py")
URL = fake.url + "/backend-api/codex/responses"
http("POST", fake.url + "/_accounts", {
    "tok-a": {"account_id": "acct-a", "refresh_token": "rt-a"},
    "tok-old": {"account_id": "acct-b", "expires": 1}})

GOOD_BODY = {
    "model": "gpt-5", "instructions": "", "stream": True, "store": False,
    "parallel_tool_calls": True, "include": ["reasoning.encrypted_content"],
    "reasoning": {"effort": "medium", "summary": "auto"}, "prompt_cache_key": "pck-1",
    "input": [{"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "hello"}]}]}
GOOD_HEADERS = {"Authorization": "Bearer tok-a", "Accept": "text/event-stream",
                "Content-Type": "application/json", "Originator": "codex-tui",
                "User-Agent": "codex-tui/0.118.0 (Mac OS 26.3.1; arm64)",
                "Chatgpt-Account-Id": "acct-a", "Session_id": "pck-1"}


def events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        lines = dict(l.split(": ", 1) for l in block.split("\n") if ": " in l)
        if "data" in lines:
            out.append((lines.get("event"), json.loads(lines["data"])))
    return out


def test_good_request_streams_to_completion():
    st, h, raw = http("POST", URL, GOOD_BODY, GOOD_HEADERS)
    assert st == 200 and h["content-type"] == "text/event-stream", (st, raw[:300])
    ev = events(raw)
    assert ev[0][0] == "response.created" and ev[-1][0] == "response.completed"
    text = "".join(d["delta"] for e, d in ev if e == "response.output_text.delta")
    assert text == "fake answer to: hello"
    assert ev[-1][1]["response"]["usage"]["input_tokens_details"]["cached_tokens"] == 10


def test_each_rule_is_enforced():
    breaks = {
        "stream: true": lambda b, h: b.update(stream=False),
        "store: false": lambda b, h: b.pop("store"),
        "instructions present": lambda b, h: b.pop("instructions"),
        "include:": lambda b, h: b.update(include=[]),
        "parallel_tool_calls": lambda b, h: b.update(parallel_tool_calls=False),
        "reasoning.summary": lambda b, h: b.update(reasoning={"effort": "low"}),
        "no temperature": lambda b, h: b.update(temperature=0.5),
        "no stream_options": lambda b, h: b.update(stream_options={"include_usage": True}),
        "service_tier only": lambda b, h: b.update(service_tier="flex"),
        "suffix stripped": lambda b, h: b.update(model="gpt-5(high)"),
        "input is an array": lambda b, h: b.update(input="hello"),
        "role 'system'": lambda b, h: b["input"].append(
            {"type": "message", "role": "system", "content": []}),
        "function_call_output without call_id": lambda b, h: b["input"].append(
            {"type": "function_call_output", "output": "x"}),
        "Accept: text/event-stream": lambda b, h: h.update(Accept="application/json"),
        "Originator": lambda b, h: h.pop("Originator"),
        "User-Agent codex-tui": lambda b, h: h.update({"User-Agent": "curl/8"}),
        "Chatgpt-Account-Id": lambda b, h: h.update({"Chatgpt-Account-Id": "other"}),
        "session header equals prompt_cache_key": lambda b, h: h.update(Session_id="x"),
    }
    for rule, breaker in breaks.items():
        b, h = copy.deepcopy(GOOD_BODY), dict(GOOD_HEADERS)
        breaker(b, h)
        st, _, raw = http("POST", URL, b, h)
        assert st == 400, (rule, st)
        msg = json.loads(raw)["error"]["message"]
        assert rule.split(" (")[0] in msg, (rule, msg)


def test_scripted_failures():
    http("POST", fake.url + "/_script", {"acct-a": [
        {"status": 429, "resets_in_seconds": 3600}, {"status": 503}, {"cut": True}]})
    st, _, raw = http("POST", URL, GOOD_BODY, GOOD_HEADERS)
    assert st == 429 and json.loads(raw)["error"]["resets_in_seconds"] == 3600
    assert http("POST", URL, GOOD_BODY, GOOD_HEADERS)[0] == 503
    try:
        st, _, raw = http("POST", URL, GOOD_BODY, GOOD_HEADERS)
        cut = "response.completed" not in raw.decode()
    except Exception:  # the fake drops the connection mid-chunk: that is the point
        cut = True
    assert cut
    assert http("POST", URL, GOOD_BODY, GOOD_HEADERS)[0] == 200  # script consumed


def test_expired_token_and_refresh():
    h = dict(GOOD_HEADERS, Authorization="Bearer tok-old", **{"Chatgpt-Account-Id": "acct-b"})
    st, _, raw = http("POST", URL, GOOD_BODY, h)
    assert st == 401 and json.loads(raw)["error"]["code"] == "token_invalidated"
    form = lambda rt, **kw: urllib.parse.urlencode(dict({
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "grant_type": "refresh_token",
        "refresh_token": rt, "scope": "openid profile email"}, **kw)).encode()
    fh = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    assert http("POST", fake.url + "/oauth/token", form("rt-a", scope="openid"), fh)[0] == 400
    st, _, raw = http("POST", fake.url + "/oauth/token", form("rt-a"), fh)
    assert st == 200, raw
    tok = json.loads(raw)
    assert tok["expires_in"] > 0 and tok["id_token"].count(".") == 2
    # the new access token works, the old refresh token is spent
    h2 = dict(GOOD_HEADERS, Authorization="Bearer " + tok["access_token"])
    assert http("POST", URL, GOOD_BODY, h2)[0] == 200
    assert http("POST", fake.url + "/oauth/token", form("rt-a"), fh)[0] == 400
    http("POST", fake.url + "/_script", {"acct-a": [{"refresh": "reused"}]})
    st, _, raw = http("POST", fake.url + "/oauth/token", form(tok["refresh_token"]), fh)
    assert st == 400 and b"refresh_token_reused" in raw


run([test_good_request_streams_to_completion, test_each_rule_is_enforced,
     test_scripted_failures, test_expired_token_and_refresh])
