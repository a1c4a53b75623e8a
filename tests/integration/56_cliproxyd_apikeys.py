#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cliproxyd with API-key entries only (no auth files):
- codex-api-key with a model alias: the fake Codex backend sees the upstream name, the key as
  Bearer, every Codex wire rule, and no Originator / Chatgpt-Account-Id (fake_codex_apikey);
- claude-api-key: the fake Anthropic API (every Claude wire rule) sees the key as Bearer
  (its base-url is not api.anthropic.com);
- openai-compatibility: Bearer key, User-Agent cli-proxy-openai-compat, streams forced to
  stream_options.include_usage true; an alias listed with two upstream names is a pool:
  requests alternate, and when one name answers 500 the request fails over to the other
  (the client never sees the 500);
- GET /v1/models lists the aliases (not the pool's upstream names).
No key in the log."""
import json
import os

from cpd_env import chat_text, get, post, sse, start
from harness import TMP, http, run, start_fake

KEY = "sk-client-apikeys-0123456789ab"
CODEX_KEY, CLAUDE_KEY = "sk-codex-key-0123456789abcdef", "sk-ant-api03-key-0123456789abcdef"
COMPAT_KEY = "sk-compat-key-0123456789abcdef"
CLAUDE = "claude-sonnet-4-5-20250929"
codex = start_fake("fake_codex_apikey.py")
claude = start_fake("fake_claude.py")
compat = start_fake("fake_compat.py")
post(codex, "accounts", {CODEX_KEY: {"account_id": "codexkey", "api_key": True}})
post(claude, "accounts", {CLAUDE_KEY: {"account": "claudekey"}})
post(compat, "keys", {"keys": [COMPAT_KEY]})
AUTH = os.path.join(TMP, "apikeys-auths")
os.makedirs(AUTH, exist_ok=True)
proc, BASE = start("cliproxyd-apikeys", KEY, AUTH, extra=f"""codex-api-key:
  - api-key: "{CODEX_KEY}"
    base-url: "{codex.url}/backend-api/codex"
    models:
      - name: "gpt-5-codex"
        alias: "my-codex"
claude-api-key:
  - api-key: "{CLAUDE_KEY}"
    base-url: "{claude.url}"
openai-compatibility:
  - name: "fakecompat"
    base-url: "{compat.url}/v1"
    api-key-entries:
      - api-key: "{COMPAT_KEY}"
    models:
      - name: "up-model-a"
        alias: "pool"
      - name: "up-model-b"
        alias: "pool"
      - name: "up-solo"
        alias: "solo"
""")
H = {"Authorization": "Bearer " + KEY}


def chat(model, text, stream=False, **kw):
    return http("POST", BASE + "/v1/chat/completions",
                dict({"model": model, "stream": stream,
                      "messages": [{"role": "user", "content": text}]}, **kw), H)


def test_codex_key_with_alias():
    st, _, body = chat("my-codex", "codex by key")
    assert st == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "fake answer to: codex by key"
    r = get(codex, "requests")[-1]
    assert r["body"]["model"] == "gpt-5-codex", r["body"]["model"]
    assert r["headers"]["authorization"] == "Bearer " + CODEX_KEY
    assert "chatgpt-account-id" not in r["headers"] and "originator" not in r["headers"]
    st, _, raw = chat("my-codex", "codex stream", stream=True)
    assert st == 200 and chat_text(sse(raw)) == "fake answer to: codex stream", raw[:300]
    assert get(codex, "stats")["violations"] == []


def test_claude_key():
    st, _, body = http("POST", BASE + "/v1/messages",
                       {"model": CLAUDE, "max_tokens": 100,
                        "messages": [{"role": "user", "content": "claude by key"}]}, H)
    assert st == 200, body
    m = json.loads(body)
    assert m["type"] == "message" and m["content"][0]["text"] == \
        "fake claude answer to: claude by key"
    r = get(claude, "requests")[-1]
    assert r["headers"].get("authorization") == "Bearer " + CLAUDE_KEY, r["headers"]
    st, _, body = chat(CLAUDE, "chat to claude key")
    assert st == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == \
        "fake claude answer to: chat to claude key"
    assert get(claude, "stats")["violations"] == []


def test_compat_solo_stream_forces_usage():
    st, _, body = chat("solo", "compat hi")
    assert st == 200, body
    c = json.loads(body)
    assert c["choices"][0]["message"]["content"] == "fake compat answer to: compat hi"
    assert c["usage"]["total_tokens"] == 36
    r = get(compat, "requests")[-1]
    assert r["body"]["model"] == "up-solo" and r["path"] == "/v1/chat/completions"
    assert r["headers"]["user-agent"] == "cli-proxy-openai-compat"
    assert r["headers"]["authorization"] == "Bearer " + COMPAT_KEY
    st, _, raw = chat("solo", "compat stream", stream=True)  # the client asks no usage
    assert st == 200, raw[:300]
    ev = sse(raw)
    assert ev[-1][1] == "[DONE]" and chat_text(ev) == "fake compat answer to: compat stream"
    b = get(compat, "requests")[-1]["body"]
    assert b["stream"] is True and b["stream_options"]["include_usage"] is True, b
    assert get(compat, "stats")["violations"] == []


def test_compat_pool_alternates_and_fails_over():
    before = get(compat, "stats")["by_account"]
    for i in range(4):
        assert chat("pool", f"pool {i}")[0] == 200
    after = get(compat, "stats")["by_account"]
    d = {m: after.get(m, {}).get("200", 0) - before.get(m, {}).get("200", 0)
         for m in ("up-model-a", "up-model-b")}
    assert d == {"up-model-a": 2, "up-model-b": 2}, d
    post(compat, "fail", {"up-model-a": 500})
    for i in range(4):
        st, _, body = chat("pool", f"failover {i}", stream=bool(i % 2))
        assert st == 200, body
        text = chat_text(sse(body)) if i % 2 else \
            json.loads(body)["choices"][0]["message"]["content"]
        assert text == f"fake compat answer to: failover {i}", text
    after2 = get(compat, "stats")["by_account"]
    assert after2["up-model-b"]["200"] - after["up-model-b"]["200"] == 4, after2
    assert after2["up-model-a"].get("500", 0) >= 1, after2
    post(compat, "fail", {"up-model-a": 0})


def test_models_list_aliases():
    st, _, body = http("GET", BASE + "/v1/models", headers=H)
    assert st == 200, body
    ids = {m["id"] for m in json.loads(body)["data"]}
    for want in ("my-codex", "pool", "solo", CLAUDE):
        assert want in ids, (want, sorted(ids))
    assert "up-model-a" not in ids and "up-model-b" not in ids, sorted(ids)


def test_no_secret_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in (KEY, CODEX_KEY, CLAUDE_KEY, COMPAT_KEY):
        assert s.encode() not in log, f"secret in log: {s[:12]}..."


run([test_codex_key_with_alias, test_claude_key, test_compat_solo_stream_forces_usage,
     test_compat_pool_alternates_and_fails_over, test_models_list_aliases,
     test_no_secret_in_log])
