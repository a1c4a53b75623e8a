#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OpenAI Responses clients on Codex accounts, end to end: the body gets the Codex rules
(the fake refuses anything else) and the answer comes back in the Responses format:
non-stream as the response object of response.completed, stream as the upstream events
themselves; the client's own prompt_cache_key becomes the session header; a stream cut
before response.completed ends with an error event, never a clean end; all accounts at
their usage limit give 429 model_cooldown with Retry-After."""
import json
import os

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-resp-0123456789abcdef"
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "resp-auths")
os.makedirs(AUTH, exist_ok=True)



for name in ("r1", "r2"):
    tok = f"at-{name}-0123456789abcdef"
    http("POST", fake.url + "/_accounts", {tok: {"account_id": "acct-" + name}})
    with open(os.path.join(AUTH, f"codex-{name}@example.com-pro.json"), "w") as f:
        json.dump({"type": "codex", "email": f"{name}@example.com", "access_token": tok,
                   "refresh_token": "rt", "expired": "2099-01-01T00:00:00Z",
                   "id_token": jwt({"email": f"{name}@example.com", "https://api.openai.com/auth":
                                    {"chatgpt_account_id": "acct-" + name,
                                     "chatgpt_plan_type": "pro"}})}, f)
port = free_port()
cfg = os.path.join(TMP, "resp.yaml")
with open(cfg, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
            f"upstreams:\n  codex:\n    base-url: \"{fake.url}/backend-api/codex\"\n")
proc = Proc("cliproxyd-resp", [BIN, "-config", cfg], check_exit=True)
wait_port(port, proc)
URL = f"http://127.0.0.1:{port}/v1/responses"
H = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}


def events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        lines = dict(l.split(": ", 1) for l in block.split("\n") if ": " in l)
        if "data" in lines:
            out.append((lines.get("event"), json.loads(lines["data"])))
    return out


def test_non_stream():
    st, _, body = http("POST", URL, {"model": "gpt-5-codex(high)", "input": "hello",
                                     "temperature": 0.3, "max_output_tokens": 100}, H)
    assert st == 200, body
    r = json.loads(body)
    assert r["object"] == "response" and r["status"] == "completed"
    msg = [o for o in r["output"] if o["type"] == "message"][0]
    assert msg["content"][0]["text"] == "fake answer to: hello"
    assert r["usage"]["input_tokens"] == 42
    assert json.loads(http("GET", fake.url + "/_stats")[2])["violations"] == []
    sent = json.loads(http("GET", fake.url + "/_requests")[2])[-1]["body"]
    assert sent["reasoning"]["effort"] == "high" and sent["model"] == "gpt-5-codex"
    assert "temperature" not in sent and isinstance(sent["input"], list)


def test_stream_passthrough_and_session():
    st, h, raw = http("POST", URL, {"model": "gpt-5-codex", "stream": True,
                                    "prompt_cache_key": "my-cache-key",
                                    "input": [{"type": "message", "role": "system",
                                               "content": [{"type": "input_text", "text": "s"}]},
                                              {"type": "message", "role": "user",
                                               "content": [{"type": "input_text",
                                                            "text": "streamed"}]}]}, H)
    assert st == 200 and h["content-type"] == "text/event-stream"
    ev = events(raw)
    assert ev[0][0] == "response.created" and ev[-1][0] == "response.completed"
    text = "".join(d["delta"] for e, d in ev if e == "response.output_text.delta")
    assert text == "fake answer to: streamed"
    sent = json.loads(http("GET", fake.url + "/_requests")[2])[-1]
    assert sent["headers"]["session_id"] == "my-cache-key" == sent["body"]["prompt_cache_key"]
    assert sent["body"]["input"][0]["role"] == "developer"


def test_cut_stream_ends_with_error_event():
    http("POST", fake.url + "/_script", {"acct-r1": [{"cut": True}], "acct-r2": [{"cut": True}]})
    st, _, raw = http("POST", URL, {"model": "gpt-5-codex", "stream": True, "input": "x"}, H)
    assert st == 200
    ev = events(raw)
    assert ev[-1][0] == "error" and ev[-1][1]["code"] == "request_timeout", ev[-1]
    assert not any(e == "response.completed" for e, _ in ev)


def test_quota_then_model_cooldown():
    # whatever is still queued from the cut test, both accounts now hit their usage limit:
    # within a few requests every account is quota-cooling and the client gets 429
    # model_cooldown with Retry-After (never a 5xx)
    http("POST", fake.url + "/_script", {a: [{"status": 429, "resets_in_seconds": 60}] * 3
                                         for a in ("acct-r1", "acct-r2")})
    for _ in range(4):
        st, h, body = http("POST", URL, {"model": "gpt-5-codex", "input": "q"}, H)
        assert st == 429 or st == 200, (st, body)
        if st == 429 and json.loads(body)["error"].get("code") == "model_cooldown":
            assert 0 < int(h["retry-after"]) <= 60
            return
    raise AssertionError("never reached model_cooldown")


run([test_non_stream, test_stream_passthrough_and_session, test_cut_stream_ends_with_error_event,
     test_quota_then_model_cooldown])
