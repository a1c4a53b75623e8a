#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CLIProxyAPI knobs with their meaning: `max-retry-credentials` caps the accounts one request
tries (with 1, a 503 on the first account is answered as is instead of failing over; with 0,
the next account serves); `usage-statistics-enabled` (default false) gates the request
counters of /v0/management/usage; `logging-to-file` writes the log to $WRITABLE_PATH/logs/
main.log as well."""
import json
import os
import time

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-knobs-0123456789abcd"
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "knob-auths")
os.makedirs(AUTH, exist_ok=True)
for name in ("a", "b"):
    http("POST", fake.url + "/_accounts", {f"at-{name}-0123456789": {"account_id": "acct-" + name}})
    with open(os.path.join(AUTH, f"codex-{name}@example.com-pro.json"), "w") as f:
        json.dump({"type": "codex", "email": f"{name}@example.com",
                   "access_token": f"at-{name}-0123456789", "refresh_token": "rt",
                   "expired": "2099-01-01T00:00:00Z",
                   "id_token": jwt({"email": f"{name}@example.com", "https://api.openai.com/auth": {
                       "chatgpt_account_id": "acct-" + name, "chatgpt_plan_type": "pro"}})}, f)


def start(extra, env=None):
    port = free_port()
    cfg = os.path.join(TMP, f"knobs-{port}.yaml")
    with open(cfg, "w") as f:
        f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
                f'remote-management:\n  secret-key: "knob-secret-0123"\n'
                f'upstreams:\n  codex:\n    base-url: "{fake.url}/backend-api/codex"\n{extra}')
    p = Proc(f"cliproxyd-knobs-{port}", [BIN, "-config", cfg], env=env, check_exit=True)
    wait_port(port, p)
    p.url = f"http://127.0.0.1:{port}"
    return p


def chat(p):
    return http("POST", p.url + "/v1/chat/completions",
                {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]},
                {"Authorization": "Bearer " + KEY})


def test_max_retry_credentials():
    p = start("max-retry-credentials: 1\n")
    http("POST", fake.url + "/_script", {"acct-a": [{"status": 503}], "acct-b": [{"status": 503}]})
    st, _, body = chat(p)
    assert st == 503, (st, body)  # one account tried, its error returned
    http("POST", fake.url + "/_script", {"acct-a": [{"ok": True}], "acct-b": [{"ok": True}]})
    assert p.stop() == 0
    p = start("max-retry-credentials: 0\n")
    time.sleep(0.1)
    http("POST", fake.url + "/_script", {"acct-a": [{"status": 503}], "acct-b": [{"status": 503}]})
    st, _, body = chat(p)
    assert st == 200, body  # the other account served
    assert p.stop() == 0


def usage_requests(p):
    st, _, body = http("GET", p.url + "/v0/management/usage",
                       headers={"Authorization": "Bearer knob-secret-0123"})
    assert st == 200, body
    return json.dumps(json.loads(body))


def test_usage_statistics_enabled_gates_counting():
    p = start("")  # default: off
    assert chat(p)[0] == 200
    off = usage_requests(p)
    assert p.stop() == 0
    p = start("usage-statistics-enabled: true\n")
    assert chat(p)[0] == 200
    on = usage_requests(p)
    assert p.stop() == 0
    assert "gpt-5-codex" in on and "gpt-5-codex" not in off, (off, on)


def test_logging_to_file():
    wp = os.path.join(TMP, "writable")
    os.makedirs(wp, exist_ok=True)
    p = start("logging-to-file: true\n", env={"WRITABLE_PATH": wp})
    assert chat(p)[0] == 200
    assert p.stop() == 0
    log = open(os.path.join(wp, "logs", "main.log")).read()
    assert "POST /v1/chat/completions 200" in log and KEY not in log


run([test_max_retry_credentials, test_usage_statistics_enabled_gates_counting,
     test_logging_to_file])
