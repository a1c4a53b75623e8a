#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fake Anthropic backend is an oracle for cliproxyd's tests, so it is tested itself:
its xxHash64 matches known vectors (from Debian's xxhsum); a request following every
rule gets a Messages answer (stream and not); each broken rule is refused and named; a
cloaked request is accepted only with a correct cch signature; scripted 429 / 529 /
extra-usage 400 / early close and the refresh grant behave as the real service does."""
import copy
import json
import os
import re
import sys
import uuid

from harness import SRC, http, run, start_fake

sys.path.insert(0, os.path.join(SRC, "tests/fakes"))
from fakelib import xxh64  # noqa: E402

fake = start_fake("fake_claude.py")
URL = fake.url + "/v1/messages?beta=true"
OAT = "sk-ant-oat01-aaaa"
http("POST", fake.url + "/_accounts", {OAT: {"account": "alice", "refresh_token": "sk-ant-ort01-r"},
                                       "sk-ant-oat01-old": {"account": "bob", "expires": 1}})
HEAD = {"Authorization": "Bearer " + OAT, "Anthropic-Version": "2023-06-01",
        "Anthropic-Beta": "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14",
        "X-App": "cli", "X-Stainless-Lang": "js", "X-Stainless-Runtime": "node",
        "X-Stainless-Retry-Count": "0", "X-Stainless-Timeout": "600",
        "X-Claude-Code-Session-Id": "sess-1", "User-Agent": "claude-cli/2.1.63 (external, cli)",
        "Content-Type": "application/json"}
STREAM_HEAD = dict(HEAD, Accept="text/event-stream", **{"Accept-Encoding": "identity"})
BODY = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hello"}]}


def test_xxh64_vectors():
    for data, want in ((b"", 0xef46db3751d8e999), (b"a", 0xd24ec4f1a98c6e5b),
                       (b"abc", 0x44bc2cf5ad770999),
                       (b"The quick brown fox jumps over the lazy dog, 0123456789 abcdefghij",
                        0xf7fbaf21af6ba1a4)):
        assert xxh64(data, 0) == want, data


def test_good_requests():
    st, _, raw = http("POST", URL, BODY, HEAD)
    assert st == 200, raw
    msg = json.loads(raw)
    assert msg["content"][0]["text"] == "fake claude answer to: hello"
    assert msg["usage"]["cache_read_input_tokens"] == 12
    st, h, raw = http("POST", URL, dict(BODY, stream=True), STREAM_HEAD)
    assert st == 200 and h["content-type"] == "text/event-stream"
    kinds = re.findall(r"^event: (\S+)", raw.decode(), re.M)
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]


def test_each_rule_is_enforced():
    breaks = {
        "query beta=true": lambda b, h, u: u.replace("?beta=true", ""),
        "Anthropic-Version": lambda b, h, u: h.pop("Anthropic-Version") and u,
        "includes oauth-2025-04-20": lambda b, h, u: h.update(
            {"Anthropic-Beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}) or u,
        "includes claude-code-20250219": lambda b, h, u: h.update(
            {"Anthropic-Beta": "oauth-2025-04-20,interleaved-thinking-2025-05-14"}) or u,
        "x-app": lambda b, h, u: h.pop("X-App") and u,
        "x-stainless-timeout": lambda b, h, u: h.update({"X-Stainless-Timeout": "60"}) or u,
        "X-Claude-Code-Session-Id present": lambda b, h, u: h.pop("X-Claude-Code-Session-Id") and u,
        "stable per credential": lambda b, h, u: h.update(
            {"X-Claude-Code-Session-Id": "other"}) or u,
        "User-Agent claude-cli": lambda b, h, u: h.update({"User-Agent": "python"}) or u,
        "max_tokens present": lambda b, h, u: b.pop("max_tokens") and u,
        "suffix stripped": lambda b, h, u: b.update(model="claude-opus-4-6(high)") or u,
        "Accept-Encoding: identity": lambda b, h, u: b.update(stream=True) or u,
        "at most 4 cache_control": lambda b, h, u: b.update(system=[
            {"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}}
            for i in range(5)]) or u,
    }
    for rule, breaker in breaks.items():
        b, h = copy.deepcopy(BODY), dict(HEAD)
        u = breaker(b, h, URL)
        st, _, raw = http("POST", u, b, h)
        assert st == 400, (rule, st, raw[:200])
        assert rule in json.loads(raw)["error"]["message"], (rule, raw[:300])


def cloaked_body(good_cch=True):
    uid = f"user_{'ab' * 32}_account_{uuid.uuid4()}_session_{uuid.uuid4()}"
    body = dict(BODY, metadata={"user_id": uid}, system=[
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.63.abc; "
                                 "cc_entrypoint=cli; cch=00000;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}])
    raw = json.dumps(body).encode()
    cch = "%05x" % (xxh64(raw, 0x6E52736AC806831E) & 0xFFFFF)
    if not good_cch:
        cch = "%05x" % ((int(cch, 16) + 1) & 0xFFFFF)
    return raw.replace(b"cch=00000;", f"cch={cch};".encode())


def test_cloak_signature():
    st, _, raw = http("POST", URL, cloaked_body(True), HEAD)
    assert st == 200, raw
    st, _, raw = http("POST", URL, cloaked_body(False), HEAD)
    assert st == 400 and b"cch signature valid" in raw, raw


def test_scripted_and_refresh():
    http("POST", fake.url + "/_script", {"alice": [
        {"status": 429, "retry_after": 30}, {"status": 429, "unified_reset": 1999999999},
        {"status": 529}, {"status": 400, "extra_usage": True}, {"cut": True}]})
    st, h, _ = http("POST", URL, BODY, HEAD)
    assert st == 429 and h["retry-after"] == "30"
    st, h, _ = http("POST", URL, BODY, HEAD)
    assert st == 429 and h["anthropic-ratelimit-unified-reset"] == "1999999999"
    st, _, raw = http("POST", URL, BODY, HEAD)
    assert st == 529 and json.loads(raw)["error"]["type"] == "overloaded_error"
    st, _, raw = http("POST", URL, BODY, HEAD)
    assert st == 400 and b"out of extra usage" in raw
    try:
        st, _, raw = http("POST", URL, dict(BODY, stream=True), STREAM_HEAD)
        assert b"message_stop" not in raw
    except Exception:
        pass  # connection dropped mid-stream: that is the scripted behaviour
    old = dict(HEAD, Authorization="Bearer sk-ant-oat01-old")
    assert http("POST", URL, BODY, old)[0] == 401
    tok_url = fake.url + "/v1/oauth/token"
    jh = {"Content-Type": "application/json"}
    bad = {"grant_type": "refresh_token", "client_id": "x", "refresh_token": "sk-ant-ort01-r"}
    assert http("POST", tok_url, bad, jh)[0] == 400
    good = dict(bad, client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e")
    st, _, raw = http("POST", tok_url, good, jh)
    assert st == 200, raw
    tok = json.loads(raw)
    assert tok["access_token"].startswith("sk-ant-oat") and tok["expires_in"] == 28800
    assert http("POST", tok_url, good, jh)[0] == 400  # refresh token spent
    h2 = dict(HEAD, Authorization="Bearer " + tok["access_token"],
              **{"X-Claude-Code-Session-Id": "sess-2"})
    assert http("POST", URL, BODY, h2)[0] == 200


run([test_xxh64_vectors, test_good_requests, test_each_rule_is_enforced, test_cloak_signature,
     test_scripted_and_refresh])
