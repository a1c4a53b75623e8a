#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The management API (/v0/management), from loopback: 404 everywhere without a secret;
with one, the key is required (Bearer or X-Management-Key) and never echoed; GET
auth-files lists every credential file with provider, email and state (active, cooling
after a quota 429, invalid, unsupported); reset-quota clears a cooldown; DELETE removes
a file (and refuses names that leave auth-dir); /metrics (Prometheus text) and /usage
count requests, statuses and tokens per credential and model. The remote-caller rules (allow-remote,
bans) need a non-loopback client and are not exercised here."""
import json
import os
import time

from harness import BUILD, TMP, Proc, free_port, http, jwt, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY, SECRET = "sk-client-mgmt-0123456789abcd", "mgmt-secret-0123456789abcdef"
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "mgmt-auths")
os.makedirs(AUTH, exist_ok=True)
http("POST", fake.url + "/_accounts", {"at-m1-0123456789": {"account_id": "acct-m1"}})
with open(os.path.join(AUTH, "codex-m1@example.com-pro.json"), "w") as f:
    json.dump({"type": "codex", "email": "m1@example.com", "access_token": "at-m1-0123456789",
               "refresh_token": "rt", "expired": "2099-01-01T00:00:00Z",
               "id_token": jwt({"email": "m1@example.com", "https://api.openai.com/auth": {
                   "chatgpt_account_id": "acct-m1", "chatgpt_plan_type": "pro"}})}, f)
with open(os.path.join(AUTH, "broken.json"), "w") as f:
    f.write('{"type": "codex", "priority": "high"}')
with open(os.path.join(AUTH, "kimi-g@example.com.json"), "w") as f:
    json.dump({"type": "kimi", "email": "g@example.com"}, f)


def start(secret):
    port = free_port()
    cfg = os.path.join(TMP, f"mgmt-{port}.yaml")
    mgmt = f'remote-management:\n  secret-key: "{secret}"\n' if secret else ""
    with open(cfg, "w") as f:
        f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
                f"usage-statistics-enabled: true\n"
                f"upstreams:\n  codex:\n    base-url: \"{fake.url}/backend-api/codex\"\n{mgmt}")
    p = Proc(f"cliproxyd-mgmt-{port}", [BIN, "-config", cfg], check_exit=True)
    wait_port(port, p)
    p.url = f"http://127.0.0.1:{port}"
    return p


def files(p, **h):
    st, _, body = http("GET", p.url + "/v0/management/auth-files", headers=h)
    return st, (json.loads(body) if body else None)


def by_name(listing):
    return {f["name"]: f for f in listing["files"]}


def test_no_secret_is_404():
    p = start(None)
    st, body = files(p, Authorization="Bearer anything")
    assert st == 404
    assert p.stop() == 0


def test_key_required_and_listing():
    p = start(SECRET)
    assert files(p)[0] == 401
    st, body = files(p, Authorization="Bearer wrong")
    assert st == 401 and "wrong" not in json.dumps(body)
    st, body = files(p, **{"X-Management-Key": SECRET})
    assert st == 200, body
    f = by_name(body)
    assert f["codex-m1@example.com-pro.json"]["status"] == "active"
    assert f["codex-m1@example.com-pro.json"]["email"] == "m1@example.com"
    assert f["broken.json"]["status"] == "invalid" and "priority" in f["broken.json"]["last_error"]
    assert f["kimi-g@example.com.json"]["status"] == "unsupported"
    # a quota 429 cools the account; reset-quota clears it
    http("POST", fake.url + "/_script", {"acct-m1": [{"status": 429, "resets_in_seconds": 900}]})
    st, _, _ = http("POST", p.url + "/v1/chat/completions",
                    {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "x"}]},
                    {"Authorization": "Bearer " + KEY})
    assert st == 429
    auth = {"Authorization": "Bearer " + SECRET}
    f = by_name(files(p, **auth)[1])["codex-m1@example.com-pro.json"]
    assert f["status"] == "cooling" and f["cooling_until"] > time.time() + 800, f
    st, _, body = http("POST", p.url + "/v0/management/reset-quota",
                       {"name": "codex-m1@example.com-pro.json"}, auth)
    assert st == 200, body
    assert by_name(files(p, **auth)[1])["codex-m1@example.com-pro.json"]["status"] == "active"
    assert http("POST", p.url + "/v1/chat/completions",
                {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "y"}]},
                {"Authorization": "Bearer " + KEY})[0] == 200
    # delete: path tricks refused, a real file removed and gone from the listing
    for bad in ("../mgmt-x.yaml", ".hidden", ""):
        st, _, _ = http("DELETE", p.url + "/v0/management/auth-files?name=" + bad, headers=auth)
        assert st == 400, bad
    st, _, _ = http("DELETE", p.url + "/v0/management/auth-files?name=broken.json", headers=auth)
    assert st == 200 and not os.path.exists(os.path.join(AUTH, "broken.json"))
    end = time.time() + 2
    while time.time() < end and "broken.json" in by_name(files(p, **auth)[1]):
        time.sleep(0.05)
    assert "broken.json" not in by_name(files(p, **auth)[1])
    assert http("DELETE", p.url + "/v0/management/auth-files?name=nope.json", headers=auth)[0] == 404
    # observability: the requests above are counted, per credential and model
    assert http("GET", p.url + "/metrics")[0] == 401
    st, h, body = http("GET", p.url + "/metrics", headers=auth)
    assert st == 200 and h["content-type"].startswith("text/plain"), body[:200]
    m = body.decode()
    series = 'credential="codex-m1@example.com-pro.json",model="gpt-5-codex"'
    assert f'cliproxyd_requests_total{{{series},status="2xx"}} 1' in m, m
    assert f'cliproxyd_requests_total{{{series},status="429"}} 1' in m, m
    assert f'cliproxyd_tokens_total{{{series},kind="input"}} 42' in m, m
    assert 'cliproxyd_request_duration_seconds_count 2' in m
    assert 'cliproxyd_credential_state{credential="kimi-g@example.com.json",state="unsupported"} 1' in m
    st, _, body = http("GET", p.url + "/v0/management/usage", headers=auth)
    u = json.loads(body)
    assert st == 200 and u["total_requests"] == 2 and u["success_count"] == 1, u
    assert p.stop() == 0
    assert SECRET.encode() not in open(p.log, "rb").read()


run([test_no_secret_is_404, test_key_required_and_listing])
