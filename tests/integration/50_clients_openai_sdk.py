#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Client test: the official `openai` npm SDK (tests/clients/openai_chat.test.mjs) against
cliproxyd with a Codex account in front of the fake Codex backend. Installs the SDK from
the lockfile (npm ci) when node_modules is missing; fails when node or npm is missing."""
import json
import os
import subprocess

from harness import (jwt, BUILD, SRC, TMP, Proc, ensure_sdks, free_port, http, run, start_fake,
                     wait_port)

CLIENTS = os.path.join(SRC, "tests/clients")
KEY = "sk-client-sdk-0123456789abcdef"



def test_openai_sdk():
    ensure_sdks()
    fake = start_fake("fake_codex.py")
    auth = os.path.join(TMP, "sdk-auths")
    os.makedirs(auth, exist_ok=True)
    http("POST", fake.url + "/_accounts", {"at-sdk-0123456789": {"account_id": "acct-sdk"}})
    with open(os.path.join(auth, "codex-sdk@example.com-pro.json"), "w") as f:
        json.dump({"type": "codex", "email": "sdk@example.com", "access_token": "at-sdk-0123456789",
                   "refresh_token": "rt-sdk", "expired": "2099-01-01T00:00:00Z",
                   "id_token": jwt({"email": "sdk@example.com", "https://api.openai.com/auth": {
                       "chatgpt_account_id": "acct-sdk", "chatgpt_plan_type": "pro"}})}, f)
    port = free_port()
    cfg = os.path.join(TMP, "sdk.yaml")
    with open(cfg, "w") as f:
        f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{auth}"\napi-keys:\n  - "{KEY}"\n'
                f'upstreams:\n  codex:\n    base-url: "{fake.url}/backend-api/codex"\n')
    p = Proc("cliproxyd-sdk", [os.path.join(BUILD, "cliproxyd", "cliproxyd"), "-config", cfg],
             check_exit=True)
    wait_port(port, p)
    env = dict(os.environ, CLIPROXY_URL=f"http://127.0.0.1:{port}", CLIPROXY_KEY=KEY,
               FAKE_URL=fake.url)
    r = subprocess.run(["node", "--test", "openai_chat.test.mjs"], cwd=CLIENTS, env=env,
                       capture_output=True, text=True, timeout=120)
    print(r.stdout[-3000:], r.stderr[-2000:])
    assert r.returncode == 0, "SDK tests failed"
    assert json.loads(http("GET", fake.url + "/_stats")[2])["violations"] == []


run([test_openai_sdk])
