#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OpenAI Chat clients on Codex accounts, end to end: cliproxyd translates to the Responses
API, sends what the real backend demands (the fake refuses anything else) and translates
back, non-stream and stream (finish chunk, usage chunk, [DONE]). Two accounts alternate;
a usage_limit_reached 429 moves traffic to the other account with no request lost; a
transient 503 and a stream cut before response.completed fail over too; when every
account is quota-cooling the client gets 429 model_cooldown with Retry-After."""
import json
import os

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-chat-0123456789abcdef"
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "chat-auths")
os.makedirs(AUTH, exist_ok=True)



def account(name):
    tok = f"at-{name}-0123456789abcdef"
    http("POST", fake.url + "/_accounts", {tok: {"account_id": "acct-" + name}})
    with open(os.path.join(AUTH, f"codex-{name}@example.com-plus.json"), "w") as f:
        json.dump({"type": "codex", "email": f"{name}@example.com", "access_token": tok,
                   "refresh_token": f"rt-{name}", "account_id": "",
                   "id_token": jwt({"email": f"{name}@example.com",
                                    "https://api.openai.com/auth": {
                                        "chatgpt_account_id": "acct-" + name,
                                        "chatgpt_plan_type": "plus"}}),
                   "expired": "2099-01-01T00:00:00Z"}, f)


account("a")
account("b")
port = free_port()
cfg = os.path.join(TMP, "chat.yaml")
with open(cfg, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
            f"upstreams:\n  codex:\n    base-url: \"{fake.url}/backend-api/codex\"\n")
proc = Proc("cliproxyd-chat", [BIN, "-config", cfg], check_exit=True)
wait_port(port, proc)
URL = f"http://127.0.0.1:{port}/v1/chat/completions"
H = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}


def chat(text="hello", **kw):
    body = dict({"model": "gpt-5-codex", "messages": [{"role": "user", "content": text}]}, **kw)
    return http("POST", URL, body, H)


def fstats():
    return json.loads(http("GET", fake.url + "/_stats")[2])


def sse_chunks(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            d = block[6:]
            out.append(d if d == "[DONE]" else json.loads(d))
    return out


def test_non_stream():
    st, h, body = chat("hello")
    assert st == 200, body
    r = json.loads(body)
    assert r["object"] == "chat.completion"
    assert r["choices"][0]["message"]["content"] == "fake answer to: hello"
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r["usage"]["prompt_tokens"] == 42 and r["usage"]["completion_tokens"] == 17
    assert fstats()["violations"] == [], fstats()["violations"]
    sent = json.loads(http("GET", fake.url + "/_requests")[2])[-1]
    assert sent["headers"]["session_id"] == sent["body"]["prompt_cache_key"]


def test_stream_with_usage():
    st, h, raw = chat("stream me", stream=True, stream_options={"include_usage": True})
    assert st == 200 and h["content-type"] == "text/event-stream", raw[:300]
    ch = sse_chunks(raw)
    assert ch[-1] == "[DONE]"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in ch[:-1] if c["choices"])
    assert text == "fake answer to: stream me"
    fin = [c for c in ch[:-1] if c["choices"] and c["choices"][0].get("finish_reason")]
    assert fin and fin[-1]["choices"][0]["finish_reason"] == "stop"
    assert ch[-2]["choices"] == [] and ch[-2]["usage"]["total_tokens"] == 59
    assert fstats()["violations"] == []


def test_accounts_alternate():
    before = fstats()["by_account"]
    for _ in range(4):
        assert chat()[0] == 200
    after = fstats()["by_account"]
    got = {a: after.get(a, {}).get("200", 0) - before.get(a, {}).get("200", 0)
           for a in ("acct-a", "acct-b")}
    assert got == {"acct-a": 2, "acct-b": 2}, got


def test_failover_on_quota_transient_and_cut():
    # the next request of each account fails in a different way; none may reach the client
    http("POST", fake.url + "/_script", {"acct-a": [{"status": 429, "resets_in_seconds": 3600}],
                                         "acct-b": [{"status": 503}]})
    for _ in range(3):
        st, _, body = chat()
        assert st == 200, body
    # a is cooling for an hour: everything now goes to b, even a stream cut on b fails
    # over... to nobody, so script the cut after confirming b serves alone
    before = fstats()["by_account"].get("acct-a", {}).get("200", 0)
    for _ in range(3):
        assert chat()[0] == 200
    assert fstats()["by_account"].get("acct-a", {}).get("200", 0) == before, "a was used"
    http("POST", fake.url + "/_script", {"acct-b": [{"cut": True}]})
    st, _, raw = chat("cut", stream=True)
    # b's stream is cut after its text but before response.completed: the client already
    # has the text, so it must get an error event at the end and never a clean [DONE]
    assert st == 200, raw[:300]
    ch = sse_chunks(raw)
    assert "[DONE]" not in ch, "an early upstream end reached the client as a clean end"
    assert "error" in ch[-1] and "response.completed" in ch[-1]["error"]["message"], ch[-1]


def test_cut_before_content_fails_over():
    # the stream dies after response.created / in_progress, before any content: the
    # client must not notice. Account a is still quota-cooling from the test above, so
    # b is the only one left: its failure is transient, so a second round retries it
    # (this is the "never black out on a transient error" rule), and the client gets
    # the whole answer with a clean [DONE]
    http("POST", fake.url + "/_script", {"acct-a": [{"cut_after": 2}], "acct-b": [{"cut_after": 2}]})
    for _ in range(2):
        st, _, raw = chat("early cut", stream=True)
        assert st == 200, raw[:200]
        ch = sse_chunks(raw)
        assert ch[-1] == "[DONE]", ch[-3:]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in ch[:-1]
                       if c.get("choices"))
        assert text == "fake answer to: early cut", text


def test_all_quota_gives_model_cooldown():
    http("POST", fake.url + "/_script", {"acct-b": [{"status": 429, "resets_in_seconds": 600}]})
    st, h, body = chat()
    assert st == 429, body
    e = json.loads(body)["error"]
    assert e["code"] == "model_cooldown" and 0 < e["reset_seconds"] <= 3600
    assert int(h["retry-after"]) == e["reset_seconds"]


def test_unknown_model_and_bad_body():
    st, _, body = http("POST", URL, {"model": "no-such-model", "messages": []}, H)
    assert st in (400, 404), body
    st, _, body = http("POST", URL, b"{not json", H)
    assert st == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    st, _, _ = http("POST", URL, {"model": "gpt-5-codex", "messages": []},
                    {"Content-Type": "application/json"})
    assert st == 401


run([test_non_stream, test_stream_with_usage, test_accounts_alternate,
     test_failover_on_quota_transient_and_cut, test_cut_before_content_fails_over,
     test_all_quota_gives_model_cooldown,
     test_unknown_model_and_bad_body])
