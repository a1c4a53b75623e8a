#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The management API's web logins (spec 1.4 "web OAuth sequence") against fake_oauth.py:
GET /v0/management/<provider>-auth-url -> {url, state}; the operator pastes the redirect
URL into POST /v0/management/oauth-callback (or the browser lands on /<provider>/callback
of the daemon); GET /v0/management/get-auth-status goes wait -> ok; the file is in
auth-dir and listed by the daemon. Also qwen (device polled in the background), the iFlow
cookie login, the key requirement, unknown states and a provider error."""
import json
import os
import re
import stat
import time
from urllib.parse import parse_qs, urlsplit, urlencode

from harness import BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
SECRET = "login-web-secret-0123456789"
fake = start_fake("fake_oauth.py")
AUTH = os.path.join(TMP, "login-web-auths")
F = fake.url
CFG = os.path.join(TMP, "login-web.yaml")
PORT = free_port()
with open(CFG, "w") as f:
    f.write(f"""host: "127.0.0.1"
port: {PORT}
auth-dir: "{AUTH}"
remote-management:
  secret-key: "{SECRET}"
upstreams:
  codex:
    auth-url: "{F}/codex/authorize"
    token-url: "{F}/codex/token"
  claude:
    auth-url: "{F}/claude/authorize"
    token-url: "{F}/claude/token"
  gemini:
    auth-url: "{F}/gemini/auth"
    token-url: "{F}/gemini/token"
    userinfo-url: "{F}/gemini/userinfo?alt=json"
    base-url: "{F}/gemini"
  qwen:
    device-url: "{F}/qwen/device"
    token-url: "{F}/qwen/token"
  iflow:
    auth-url: "{F}/iflow/oauth"
    token-url: "{F}/iflow/token"
    userinfo-url: "{F}/iflow/userinfo"
    apikey-url: "{F}/iflow/apikey"
""")
daemon = Proc("cliproxyd-login-web", [BIN, "-config", CFG], check_exit=True)
wait_port(PORT, daemon)
URL = f"http://127.0.0.1:{PORT}"
KEY = {"Authorization": "Bearer " + SECRET}


def mgmt(method, path, body=None):
    st, _, b = http(method, URL + "/v0/management/" + path, body, KEY, timeout=20)
    return st, json.loads(b) if b else None


def start(name, **args):
    st, d = mgmt("GET", f"{name}-auth-url" + (("?" + urlencode(args)) if args else ""))
    assert st == 200 and d["status"] == "ok", d
    q = {k: v[0] for k, v in parse_qs(urlsplit(d["url"]).query).items()}
    assert q["state"] == d["state"] and re.fullmatch(r"[0-9a-f]{32}", d["state"])
    code = "webcode-" + d["state"][:8]
    redirect = q.get("redirect_uri") or q.get("redirect")
    assert http("POST", F + "/__issue", {"code": code, "challenge": q.get("code_challenge"),
                                         "redirect_uri": redirect})[0] == 200
    return d["state"], code, redirect


def wait_status(state, want="ok", timeout=10):
    end = time.time() + timeout
    while True:
        st, d = mgmt("GET", "get-auth-status?state=" + state)
        assert st == 200, d
        if d["status"] != "wait":
            assert d["status"] == want, d
            return d
        assert time.time() < end, "still waiting"
        time.sleep(0.1)


def listed(name):
    end = time.time() + 5
    while time.time() < end:
        st, d = mgmt("GET", "auth-files")
        if name in {x["name"] for x in d["files"]}:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} not listed")


def check(name, **fields):
    p = os.path.join(AUTH, name)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with open(p) as f:
        d = json.load(f)
    for k, v in fields.items():
        assert d.get(k) == v, (k, d.get(k))
    listed(name)
    return d


def no_violations():
    assert json.loads(http("GET", F + "/_stats")[2])["violations"] == []


def test_key_required():
    st, _, _ = http("GET", URL + "/v0/management/codex-auth-url")
    assert st == 401
    st, _, _ = http("GET", URL + "/v0/management/get-auth-status?state=x")
    assert st == 401


def test_codex_pasted_redirect_url():
    state, code, redirect = start("codex")
    assert redirect == "http://localhost:1455/auth/callback"
    assert mgmt("GET", "get-auth-status?state=" + state)[1]["status"] == "wait"
    st, d = mgmt("POST", "oauth-callback",
                 {"provider": "codex", "redirect_url": f"{redirect}?code={code}&state={state}"})
    assert st == 200 and d["status"] == "ok", d
    wait_status(state)
    check("codex-codex-user@example.com-plus.json", type="codex", account_id="acct-login-1")
    # the same state cannot be used twice
    st, d = mgmt("POST", "oauth-callback", {"provider": "codex", "code": code, "state": state})
    assert st == 409, d
    no_violations()


def test_claude_browser_sink():
    state, code, redirect = start("anthropic")
    assert redirect == "http://localhost:54545/callback"
    st, _, body = http("GET", f"{URL}/anthropic/callback?code={code}&state={state}")
    assert st == 200 and b"Authentication successful!" in body
    wait_status(state)
    check("claude-claude-user@example.com.json", type="claude", email="claude-user@example.com")


def test_gemini_code_state_with_project():
    state, code, _ = start("gemini-cli", project_id="my-proj-7")
    st, d = mgmt("POST", "oauth-callback", {"provider": "gemini", "code": code, "state": state})
    assert st == 200, d
    wait_status(state)
    check("gemini-gemini-user@example.com-my-proj-7.json", project_id="my-proj-7", auto=False)


def test_iflow_sink():
    state, code, redirect = start("iflow")
    assert redirect == "http://localhost:11451/oauth2callback"
    st, _, _ = http("GET", f"{URL}/iflow/callback?code={code}&state={state}")
    assert st == 200
    wait_status(state)
    names = [n for n in os.listdir(AUTH) if re.fullmatch(r"iflow-13800000000-\d+\.json", n)]
    assert len(names) == 1
    check(names[0], type="iflow", email="13800000000")
    no_violations()


def test_qwen_device():
    st, d = mgmt("GET", "qwen-auth-url?email=web-qwen@example.com")
    assert st == 200 and d["url"].endswith("user_code=QWEN-42") and d["user_code"] == "QWEN-42"
    wait_status(d["state"])
    check("qwen-web-qwen@example.com.json", type="qwen", email="web-qwen@example.com")


def test_iflow_cookie():
    st, d = mgmt("POST", "iflow-auth-url", {"cookie": "a=b; BXAuth=bx-secret-1"})
    assert st == 200 and d["status"] == "ok", d
    name = os.path.basename(d["saved_path"])
    assert re.fullmatch(r"iflow-iflow-cookie-user-\d+\.json", name)
    check(name, api_key="sk-iflow-fresh-key", cookie="BXAuth=bx-secret-1;")
    st, d = mgmt("POST", "iflow-auth-url", {"cookie": "a=b"})
    assert st == 400 and "BXAuth" in d["error"], d


def test_errors():
    st, d = mgmt("GET", "get-auth-status?state=" + "f" * 32)
    assert st == 404
    st, d = mgmt("POST", "oauth-callback", {"provider": "codex", "code": "c", "state": "f" * 32})
    assert st == 404
    state, code, _ = start("codex")
    # a state of another provider is refused
    st, d = mgmt("POST", "oauth-callback", {"provider": "anthropic", "code": code,
                                            "state": state})
    assert st == 404
    st, _, _ = http("GET", f"{URL}/codex/callback?error=access_denied&state={state}")
    assert st == 400
    d = wait_status(state, "error")
    assert "access_denied" in d["error"]


run([test_key_required, test_codex_pasted_redirect_url, test_claude_browser_sink,
     test_gemini_code_state_with_project, test_iflow_sink, test_qwen_device, test_iflow_cookie,
     test_errors])
