#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cliproxyd with Claude Code OAuth accounts in front of the fake Anthropic API (which checks
every Claude wire rule of spec section 8: headers, betas, cloaking with a valid cch
signature, metadata.user_id, <= 4 cache_control blocks, max_tokens) and a Codex account in
front of the fake Codex backend:
- Claude Messages clients pass through (stream and not); a claude-cli client is not cloaked;
- OpenAI Chat clients on a Claude model are translated (the upstream call always streams);
- Claude Messages clients on a Codex model get Anthropic-shaped answers and events;
- two Claude accounts alternate; a 429 with an anthropic-ratelimit-unified reset cools that
  account until then; a 529 fails over without losing the request; "out of extra usage"
  (400 invalid_request_error) is returned as is without failover; a stream cut before
  message_stop ends with an error event; a 401 refreshes the token and retries.
No token or key in the log."""
import json
import os
import time

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-claude-0123456789abcd"
claude = start_fake("fake_claude.py")
codex = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "claude-auths")
os.makedirs(AUTH, exist_ok=True)
SECRETS = [KEY]
MODEL = "claude-sonnet-4-5-20250929"


def claude_account(name, valid=True):
    tok, rt = f"sk-ant-oat01-{name}-0123456789abcdef", f"sk-ant-ort01-{name}-0123456789"
    SECRETS.extend([tok, rt])
    http("POST", claude.url + "/_accounts",
         {tok: {"account": name, "refresh_token": rt,
                "expires": time.time() + (86400 if valid else -10)}})
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    path = os.path.join(AUTH, f"claude-{name}@example.com.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"type": "claude", "email": f"{name}@example.com", "access_token": tok,
                   "refresh_token": rt, "expired": exp}, f)
    os.rename(path + ".tmp", path)
    return path, tok


claude_account("alice")
claude_account("bob")
http("POST", codex.url + "/_accounts", {"at-cx-0123456789abcdef": {"account_id": "acct-cx"}})
SECRETS.append("at-cx-0123456789abcdef")
with open(os.path.join(AUTH, "codex-cx@example.com-pro.json"), "w") as f:
    json.dump({"type": "codex", "email": "cx@example.com", "access_token": "at-cx-0123456789abcdef",
               "refresh_token": "rt-cx", "expired": "2099-01-01T00:00:00Z",
               "id_token": jwt({"email": "cx@example.com", "https://api.openai.com/auth": {
                   "chatgpt_account_id": "acct-cx", "chatgpt_plan_type": "pro"}})}, f)
port = free_port()
cfg = os.path.join(TMP, "claude.yaml")
with open(cfg, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
            f"request-retry: 1\n"
            f'upstreams:\n  codex:\n    base-url: "{codex.url}/backend-api/codex"\n'
            f'  claude:\n    base-url: "{claude.url}"\n'
            f'    token-url: "{claude.url}/v1/oauth/token"\n')
proc = Proc("cliproxyd-claude", [BIN, "-config", cfg], check_exit=True)
wait_port(port, proc)
BASE = f"http://127.0.0.1:{port}"
H = {"Authorization": "Bearer " + KEY}


def msgs(text, model=MODEL, stream=False, headers=None, **kw):
    body = dict({"model": model, "max_tokens": 512, "stream": stream,
                 "messages": [{"role": "user", "content": text}]}, **kw)
    return http("POST", BASE + "/v1/messages", body, dict(H, **(headers or {})))


def events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        ev = dict(l.split(": ", 1) for l in block.split("\n") if ": " in l)
        if "data" in ev:
            out.append((ev.get("event"), json.loads(ev["data"])))
    return out


def last_req():
    return json.loads(http("GET", claude.url + "/_requests")[2])[-1]


def by_account():
    return json.loads(http("GET", claude.url + "/_stats")[2])["by_account"]


def violations():
    return json.loads(http("GET", claude.url + "/_stats")[2])["violations"]


def test_messages_passthrough_nonstream_cloaked():
    st, _, body = msgs("hi", system="You are terse.")
    assert st == 200, body
    m = json.loads(body)
    assert m["type"] == "message" and m["content"][0]["text"] == "fake claude answer to: hi"
    assert m["usage"]["input_tokens"] == 30
    r = last_req()
    assert r["body"]["stream"] is False and r["headers"]["accept"] == "application/json"
    assert r["body"]["system"][0]["text"].startswith("x-anthropic-billing-header:")
    first_user = r["body"]["messages"][0]["content"]
    assert any("You are terse." in b.get("text", "") for b in first_user), first_user
    assert violations() == []


def test_messages_passthrough_stream():
    st, hd, body = msgs("streaming", stream=True)
    assert st == 200 and hd["content-type"].startswith("text/event-stream"), body
    ev = events(body)
    names = [e for e, _ in ev]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    text = "".join(d["delta"].get("text", "") for e, d in ev if e == "content_block_delta")
    assert text == "fake claude answer to: streaming"
    assert violations() == []


def test_claude_cli_client_not_cloaked():
    st, _, body = msgs("from cli", system="cli system", headers={"User-Agent":
                                                                 "claude-cli/2.1.63 (external, cli)"})
    assert st == 200, body
    r = last_req()
    assert r["headers"]["user-agent"] == "claude-cli/2.1.63 (external, cli)"
    sysp = r["body"]["system"]
    text = sysp if isinstance(sysp, str) else sysp[0]["text"]
    assert "cli system" in text and not text.startswith("x-anthropic-billing-header")
    assert violations() == []


def test_chat_on_claude():
    st, _, body = http("POST", BASE + "/v1/chat/completions",
                       {"model": MODEL, "messages": [{"role": "system", "content": "sys"},
                                                     {"role": "user", "content": "chat hi"}]}, H)
    assert st == 200, body
    c = json.loads(body)
    assert c["object"] == "chat.completion"
    assert c["choices"][0]["message"]["content"] == "fake claude answer to: chat hi"
    assert c["usage"]["prompt_tokens"] == 42 and c["usage"]["completion_tokens"] == 9
    assert last_req()["body"]["stream"] is True  # non-claude sources always stream upstream
    st, _, body = http("POST", BASE + "/v1/chat/completions",
                       {"model": MODEL + "(high)", "stream": True,
                        "stream_options": {"include_usage": True},
                        "messages": [{"role": "user", "content": "chat stream"}]}, H)
    assert st == 200, body
    assert body.rstrip().endswith(b"data: [DONE]")
    r = last_req()["body"]
    assert r["model"] == MODEL and r["thinking"]["type"] in ("enabled", "adaptive"), r
    assert violations() == []


def test_messages_on_codex():
    st, _, body = msgs("to codex", model="gpt-5-codex")
    assert st == 200, body
    m = json.loads(body)
    assert m["type"] == "message" and m["content"][-1]["text"] == "fake answer to: to codex"
    assert m["stop_reason"] == "end_turn"
    st, _, body = msgs("codex stream", model="gpt-5-codex", stream=True)
    assert st == 200, body
    ev = events(body)
    assert ev[0][0] == "message_start" and ev[-1][0] == "message_stop", [e for e, _ in ev]
    text = "".join(d["delta"].get("text", "") for e, d in ev if e == "content_block_delta")
    assert text == "fake answer to: codex stream"
    assert json.loads(http("GET", codex.url + "/_stats")[2])["violations"] == []


def test_two_accounts_alternate():
    before = {k: v.get("200", 0) for k, v in by_account().items()}
    for i in range(4):
        assert msgs(f"rr{i}")[0] == 200
    after = {k: v.get("200", 0) for k, v in by_account().items()}
    assert after["alice"] - before.get("alice", 0) == 2, (before, after)
    assert after["bob"] - before.get("bob", 0) == 2, (before, after)


def test_unified_reset_429_cools_until_reset():
    reset = int(time.time()) + 3
    http("POST", claude.url + "/_script", {"alice": [{"status": 429, "unified_reset": reset}],
                                           "bob": [{"status": 429, "unified_reset": reset}]})
    for i in range(2):  # each account answers its 429 once; the request fails over
        st, hd, body = msgs(f"q{i}")
        if st == 429:
            assert json.loads(body)["error"].get("code") == "model_cooldown", body
            assert int(hd["retry-after"]) <= 4
    st, hd, body = msgs("both cooling")
    assert st == 429 and json.loads(body)["error"]["code"] == "model_cooldown", body
    assert 1 <= int(hd["retry-after"]) <= 4
    time.sleep(max(0, reset - time.time()) + 1.1)
    assert msgs("after reset")[0] == 200


def test_529_fails_over():
    http("POST", claude.url + "/_script", {"alice": [{"status": 529}], "bob": [{"status": 529}]})
    for i in range(3):
        st, _, body = msgs(f"o{i}")
        assert st == 200, body


def test_extra_usage_400_returned_without_failover():
    http("POST", claude.url + "/_script", {"alice": [{"status": 400, "extra_usage": True}],
                                           "bob": [{"status": 400, "extra_usage": True}]})
    before = sum(v.get("200", 0) for v in by_account().values())
    st, _, body = msgs("x")
    assert st == 400 and b"extra usage" in body, body
    assert sum(v.get("200", 0) for v in by_account().values()) == before  # no failover
    msgs("drain")  # the other account's scripted 400


def test_cut_stream_ends_with_error_event():
    http("POST", claude.url + "/_script", {"alice": [{"cut": True}], "bob": [{"cut": True}]})
    st, _, body = msgs("cut me", stream=True)
    assert st == 200, body
    ev = events(body)
    assert ev[-1][0] == "error" and "message_stop" in ev[-1][1]["error"]["message"], ev[-2:]
    assert not any(e == "message_stop" for e, _ in ev)
    msgs("drain", stream=True)


def test_401_refreshes_claude_token():
    path, tok = claude_account("carol", valid=False)
    os.unlink(os.path.join(AUTH, "claude-alice@example.com.json"))
    os.unlink(os.path.join(AUTH, "claude-bob@example.com.json"))
    time.sleep(1.2)
    st, _, body = msgs("after 401")
    assert st == 200, body
    d = json.load(open(path))
    assert d["access_token"] != tok and d["access_token"].startswith("sk-ant-oat01-")
    SECRETS.extend([d["access_token"], d["refresh_token"]])
    assert json.loads(http("GET", claude.url + "/_stats")[2])["refreshes"] >= 1


def test_no_secret_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in SECRETS:
        assert s.encode() not in log, f"secret in log: {s[:12]}..."


run([test_messages_passthrough_nonstream_cloaked, test_messages_passthrough_stream,
     test_claude_cli_client_not_cloaked, test_chat_on_claude, test_messages_on_codex,
     test_two_accounts_alternate, test_unified_reset_429_cools_until_reset, test_529_fails_over,
     test_extra_usage_400_returned_without_failover, test_cut_stream_ends_with_error_event,
     test_401_refreshes_claude_token, test_no_secret_in_log])
