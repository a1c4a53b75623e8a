#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Token refresh, live: a Codex credential expiring within the 5-day lead is refreshed at
start through the (fake) OpenAI token endpoint with the spec's form fields; the file is
rewritten atomically with mode 0600, the new tokens, and its unknown fields kept; the
next request uses the new access token. A refresh answered `refresh_token_reused` is
permanent: the credential needs a new login and stops serving. No token is logged."""
import json
import os
import stat
import time

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-refresh-0123456789ab"
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "refresh-auths")
os.makedirs(AUTH, exist_ok=True)
SECRETS = []



def account(name, expires_in_s):
    at, rt = f"at-old-{name}-0123456789abcdef", f"rt-{name}-0123456789abcdef"
    SECRETS.extend([at, rt])
    http("POST", fake.url + "/_accounts", {at: {"account_id": "acct-" + name,
                                                "refresh_token": rt}})
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in_s))
    path = os.path.join(AUTH, f"codex-{name}@example.com-pro.json")
    with open(path, "w") as f:
        json.dump({"type": "codex", "email": f"{name}@example.com", "access_token": at,
                   "refresh_token": rt, "expired": exp, "note": "kept across refreshes",
                   "custom": {"nested": [1, 2, 3]},
                   "id_token": jwt({"email": f"{name}@example.com",
                                    "https://api.openai.com/auth": {
                                        "chatgpt_account_id": "acct-" + name,
                                        "chatgpt_plan_type": "pro"}})}, f)
    os.chmod(path, 0o644)
    return path


fresh = account("fresh", 86400)            # inside the 5-day lead: refreshed at once
reused = account("reused", 86400)
http("POST", fake.url + "/_script", {"acct-reused": [{"refresh": "reused"}]})
port = free_port()
cfg = os.path.join(TMP, "refresh.yaml")
with open(cfg, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
            f"upstreams:\n  codex:\n    base-url: \"{fake.url}/backend-api/codex\"\n"
            f"    token-url: \"{fake.url}/oauth/token\"\n")
proc = Proc("cliproxyd-refresh", [BIN, "-config", cfg], check_exit=True)
wait_port(port, proc)


def wait_for(pred, what, secs=8.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {secs} s: {what}")


def test_refreshed_and_rewritten():
    wait_for(lambda: json.load(open(fresh))["access_token"] != SECRETS[0], "file rewritten")
    d = json.load(open(fresh))
    assert d["access_token"].startswith("at-") and d["refresh_token"] != SECRETS[1]
    assert d["note"] == "kept across refreshes" and d["custom"] == {"nested": [1, 2, 3]}
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600
    assert d["expired"] > time.strftime("%Y-%m-%dT", time.gmtime(time.time() + 5 * 86400))
    assert json.loads(http("GET", fake.url + "/_stats")[2])["violations"] == []
    SECRETS.extend([d["access_token"], d["refresh_token"]])


def test_new_token_is_used():
    st, _, body = http("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                       {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]},
                       {"Authorization": "Bearer " + KEY})
    assert st == 200, body
    sent = json.loads(http("GET", fake.url + "/_requests")[2])[-1]
    assert sent["headers"]["authorization"] == "Bearer " + json.load(open(fresh))["access_token"]


def test_reused_refresh_token_needs_login():
    def log_says():
        return b"needs a new login" in open(proc.log, "rb").read()
    wait_for(log_says, "permanent refresh failure logged")
    # only the fresh account serves now
    for _ in range(3):
        assert http("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                    {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "x"}]},
                    {"Authorization": "Bearer " + KEY})[0] == 200
    by = json.loads(http("GET", fake.url + "/_stats")[2])["by_account"]
    assert "acct-reused" not in by, by


def test_no_token_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in SECRETS + [KEY]:
        assert s.encode() not in log, f"secret in log: {s[:10]}..."


run([test_refreshed_and_rewritten, test_new_token_is_used, test_reused_refresh_token_needs_login,
     test_no_token_in_log])
