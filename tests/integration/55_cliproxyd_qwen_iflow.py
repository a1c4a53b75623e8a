#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cliproxyd with Qwen Code and iFlow credentials in front of their fakes (which check the
spec 8 wire rules: Qwen's Dashscope/Stainless headers and single leading system message
with cache_control; iFlow's API-key Bearer, session-id, timestamp and HMAC signature):
- Chat clients, stream and not, on both, with usage; the client's system text is merged
  into Qwen's one leading system message;
- a Qwen credential near expiry (20 min lead) is refreshed with the Qwen client id, an iFlow
  one (24 h lead) through the Basic-authenticated token endpoint and then user-info, whose
  new apiKey is stored and used;
- Qwen's local limiter: the 61st request within 60 s on one credential is answered 429
  locally (the fake sees 60);
- Qwen 403 insufficient_quota counts as 429: the request fails over to the other
  credential; with both answering it the client gets 429, never 403.
No token or key in the log."""
import json
import os
import time

from cpd_env import chat_text, get, iflow_cred, post, qwen_cred, sse, start, wait_for
from harness import TMP, http, run, start_fake

KEY = "sk-client-qwen-iflow-0123456789"
QWEN, IFLOW = "coder-model", "glm-4.6"
qwen = start_fake("fake_qwen.py")
iflow = start_fake("fake_iflow.py")
AUTH = os.path.join(TMP, "qi-auths")
os.makedirs(AUTH, exist_ok=True)
qa_path, qa_tok = qwen_cred(qwen, AUTH, "qa")
qr_path, qr_tok = qwen_cred(qwen, AUTH, "qr", expires_in=300)          # inside the 20 min lead
ia_path, ia_key = iflow_cred(iflow, AUTH, "ia")
ir_path, ir_key = iflow_cred(iflow, AUTH, "ir", expires_in=3600)       # inside the 24 h lead
SECRETS = [KEY, qa_tok, qr_tok, ia_key, ir_key]
UPSTREAMS = {"qwen": {"token-url": qwen.url + "/api/v1/oauth2/token"},
             "iflow": {"base-url": iflow.url + "/v1", "token-url": iflow.url + "/oauth/token",
                       "userinfo-url": iflow.url + "/api/oauth/getUserInfo"}}
proc, BASE = start("cliproxyd-qi", KEY, AUTH, UPSTREAMS)
H = {"Authorization": "Bearer " + KEY}


def chat(model, text, stream=False, base=None, system="be brief"):
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}]
    body = {"model": model, "messages": msgs, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return http("POST", (base or BASE) + "/v1/chat/completions", body, H)


def no_violations(fake):
    v = get(fake, "stats")["violations"]
    assert v == [], v


def test_refreshes_at_start():
    wait_for(lambda: json.load(open(qr_path))["access_token"] != qr_tok, "qwen file rewritten")
    d = json.load(open(qr_path))
    assert d["access_token"].startswith("qat-") and d["refresh_token"] != "qrt-qr-0123456789abcdef"
    assert d["type"] == "qwen" and d["resource_url"] == qwen.url, d
    SECRETS.extend([d["access_token"], d["refresh_token"]])
    wait_for(lambda: json.load(open(ir_path))["api_key"] != ir_key, "iflow api_key replaced")
    d = json.load(open(ir_path))
    assert d["access_token"].startswith("iat-") and d["api_key"].startswith("sk-iflow-"), d
    assert d["email"] == "ir@example.com"
    SECRETS.extend([d["access_token"], d["refresh_token"], d["api_key"]])
    s = get(iflow, "stats")
    assert s["refreshes"] == 1 and s.get("userinfo", 0) >= 1, s
    ui = [r for r in get(iflow, "requests") if r["path"] == "/api/oauth/getUserInfo"][-1]
    assert ui["query"]["accessToken"] == [d["access_token"]]
    assert get(qwen, "stats")["refreshes"] == 1
    no_violations(qwen)
    no_violations(iflow)
    # both refreshed credentials serve with their new secrets
    for i in range(2):
        assert chat(QWEN, f"after refresh {i}")[0] == 200
        assert chat(IFLOW, f"after refresh {i}")[0] == 200
    by_q = {r["account"]: r["headers"]["authorization"] for r in get(qwen, "requests")}
    assert by_q["qr"] == "Bearer " + json.load(open(qr_path))["access_token"]
    by_i = {r["account"]: r["headers"]["authorization"] for r in get(iflow, "requests")
            if r["path"].endswith("/chat/completions")}
    assert by_i["ir"] == "Bearer " + json.load(open(ir_path))["api_key"]


def test_qwen_nonstream_headers_and_system():
    st, _, body = chat(QWEN, "hello qwen")
    assert st == 200, body
    c = json.loads(body)
    assert c["choices"][0]["message"]["content"] == "fake qwen answer to: hello qwen"
    assert c["usage"]["prompt_tokens"] == 25 and c["usage"]["completion_tokens"] == 11
    r = get(qwen, "requests")[-1]
    h, b = r["headers"], r["body"]
    assert h["x-dashscope-authtype"] == "qwen-oauth" and h["x-dashscope-cachecontrol"] == "enable"
    assert h["user-agent"] == h["x-dashscope-useragent"] == "QwenCode/0.14.2 (darwin; arm64)"
    assert r["path"] == "/v1/chat/completions"
    sysm = [m for m in b["messages"] if m["role"] == "system"]
    assert len(sysm) == 1 and b["messages"][0] is not None and b["messages"][0]["role"] == "system"
    assert b["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "be brief" in json.dumps(b["messages"][0]["content"]), b["messages"][0]
    assert b["model"] == QWEN
    st, _, body = chat(QWEN, "no system", system=None)
    assert st == 200, body
    no_violations(qwen)


def test_qwen_stream():
    st, h, raw = chat(QWEN, "stream qwen", stream=True)
    assert st == 200 and h["content-type"].startswith("text/event-stream"), raw[:300]
    ev = sse(raw)
    assert ev[-1][1] == "[DONE]" and chat_text(ev) == "fake qwen answer to: stream qwen"
    assert [c["usage"]["total_tokens"] for _, c in ev[:-1] if c.get("usage")][-1] == 36
    b = get(qwen, "requests")[-1]["body"]
    assert b["stream"] is True and b["stream_options"]["include_usage"] is True
    no_violations(qwen)


def test_iflow_nonstream_and_stream_signed():
    st, _, body = chat(IFLOW, "hello iflow")
    assert st == 200, body
    c = json.loads(body)
    assert c["choices"][0]["message"]["content"] == "fake iflow answer to: hello iflow"
    assert c["usage"]["total_tokens"] == 36
    st, _, raw = chat(IFLOW, "stream iflow", stream=True)
    assert st == 200, raw[:300]
    ev = sse(raw)
    assert ev[-1][1] == "[DONE]" and chat_text(ev) == "fake iflow answer to: stream iflow"
    rs = [r for r in get(iflow, "requests") if r["path"] == "/v1/chat/completions"][-2:]
    for r in rs:
        h = r["headers"]
        assert h["user-agent"] == "iFlow-Cli" and h["session-id"].startswith("session-")
        assert len(h["x-iflow-signature"]) == 64 and h["x-iflow-timestamp"].isdigit()
    no_violations(iflow)


def test_qwen_limiter_61st_is_local_429():
    auth = os.path.join(TMP, "qwen-limit-auths")
    os.makedirs(auth, exist_ok=True)
    _, tok = qwen_cred(qwen, auth, "ql")
    SECRETS.append(tok)
    p, base = start("cliproxyd-qwen-limit", KEY, auth, UPSTREAMS)
    t0 = time.time()
    got = [chat(QWEN, f"n{i}", base=base, system=None)[0] for i in range(60)]
    assert got == [200] * 60, got
    st, h, body = chat(QWEN, "the 61st", base=base, system=None)
    assert st == 429, (st, body)
    assert time.time() - t0 < 55, "too slow to test a 60 s window"
    assert get(qwen, "stats")["by_account"]["ql"] == {"200": 60}, get(qwen, "stats")
    assert int(h.get("retry-after", "1")) >= 1
    assert p.stop() == 0


def test_insufficient_quota_403_counts_as_429():
    post(qwen, "script", {"qa": [{"status": 403, "code": "insufficient_quota"}],
                          "qr": [{"status": 403, "code": "insufficient_quota"}]})
    st, _, body = chat(QWEN, "first 403 fails over")
    # one credential's 403 moves the request to the other, whose 403 ends it: 429, not 403
    assert st == 429, (st, body)
    time.sleep(2.5)  # no reset hint: a short cooldown
    post(qwen, "script", {"qa": [{"status": 403, "code": "insufficient_quota"}]})
    for i in range(3):
        st, _, body = chat(QWEN, f"rotated {i}")
        assert st == 200, body
    by = get(qwen, "stats")["by_account"]
    assert by["qa"].get("403") == 2 and by["qr"].get("403") == 1, by


def test_no_secret_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in SECRETS:
        assert s.encode() not in log, f"secret in log: {s[:12]}..."


run([test_refreshes_at_start, test_qwen_nonstream_headers_and_system, test_qwen_stream,
     test_iflow_nonstream_and_stream_signed, test_qwen_limiter_61st_is_local_429,
     test_insufficient_quota_403_counts_as_429, test_no_secret_in_log])
