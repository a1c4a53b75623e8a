#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Client test: the official `@anthropic-ai/sdk` and `openai` npm SDKs
(tests/clients/anthropic_messages.test.mjs) against cliproxyd with a Claude account in front
of the fake Anthropic API and a Codex account in front of the fake Codex backend: Messages
clients on both upstreams, Chat clients on Claude, streamed and not, tools included. Both
fakes check every wire rule; none may be broken."""
import json
import os
import subprocess
import time

from harness import (jwt, BUILD, SRC, TMP, Proc, ensure_sdks, free_port, http, run, start_fake,
                     wait_port)

CLIENTS = os.path.join(SRC, "tests/clients")
KEY = "sk-client-sdk-claude-0123456789"


def test_sdks_on_claude_and_codex():
    ensure_sdks()
    claude, codex = start_fake("fake_claude.py"), start_fake("fake_codex.py")
    auth = os.path.join(TMP, "sdk-claude-auths")
    os.makedirs(auth, exist_ok=True)
    tok = "sk-ant-oat01-sdk-0123456789abcdef"
    http("POST", claude.url + "/_accounts", {tok: {"account": "sdk", "refresh_token": "rt-x"}})
    http("POST", codex.url + "/_accounts", {"at-sdk-0123456789": {"account_id": "acct-sdk"}})
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    with open(os.path.join(auth, "claude-sdk@example.com.json"), "w") as f:
        json.dump({"type": "claude", "email": "sdk@example.com", "access_token": tok,
                   "refresh_token": "rt-x", "expired": exp}, f)
    with open(os.path.join(auth, "codex-sdk@example.com-pro.json"), "w") as f:
        json.dump({"type": "codex", "email": "sdk@example.com", "access_token": "at-sdk-0123456789",
                   "refresh_token": "rt-sdk", "expired": "2099-01-01T00:00:00Z",
                   "id_token": jwt({"email": "sdk@example.com", "https://api.openai.com/auth": {
                       "chatgpt_account_id": "acct-sdk", "chatgpt_plan_type": "pro"}})}, f)
    port = free_port()
    cfg = os.path.join(TMP, "sdk-claude.yaml")
    with open(cfg, "w") as f:
        f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{auth}"\napi-keys:\n  - "{KEY}"\n'
                f'upstreams:\n  codex:\n    base-url: "{codex.url}/backend-api/codex"\n'
                f'  claude:\n    base-url: "{claude.url}"\n'
                f'    token-url: "{claude.url}/v1/oauth/token"\n')
    p = Proc("cliproxyd-sdk-claude",
             [os.path.join(BUILD, "cliproxyd", "cliproxyd"), "-config", cfg], check_exit=True)
    wait_port(port, p)
    env = dict(os.environ, CLIPROXY_URL=f"http://127.0.0.1:{port}", CLIPROXY_KEY=KEY,
               FAKE_CLAUDE_URL=claude.url)
    r = subprocess.run(["node", "--test", "anthropic_messages.test.mjs"], cwd=CLIENTS, env=env,
                       capture_output=True, text=True, timeout=120)
    print(r.stdout[-4000:], r.stderr[-2000:])
    assert r.returncode == 0, "SDK tests failed"
    for fake in (claude, codex):
        assert json.loads(http("GET", fake.url + "/_stats")[2])["violations"] == []
    assert p.stop() == 0
    log = open(p.log, "rb").read()
    assert tok.encode() not in log and KEY.encode() not in log


run([test_sdks_on_claude_and_codex])
