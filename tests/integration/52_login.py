#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The command-line logins (spec 1.3, 3.1(b)..3.5(b)) end to end against fake_oauth.py:
each of the seven flows runs `cliproxyd -config <cfg> -<flag> -no-browser
-oauth-callback-port <port>`; the test plays the browser (reads the printed authorize URL,
registers its code_challenge with the fake, GETs the local callback), or pastes the
redirect URL / Claude's code#state on stdin. Then: the file in auth-dir has the provider's
name pattern, mode 0600 and the right fields, and a daemon already running on that
auth-dir lists it in GET /v0/management/auth-files. Also: a state mismatch fails."""
import json
import os
import re
import stat
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit, urlencode

from harness import BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
SECRET = "login-mgmt-secret-0123456789"
fake = start_fake("fake_oauth.py")
AUTH = os.path.join(TMP, "login-auths")
F = fake.url
CFG = os.path.join(TMP, "login.yaml")
DPORT = free_port()
with open(CFG, "w") as f:
    f.write(f"""host: "127.0.0.1"
port: {DPORT}
auth-dir: "{AUTH}"
api-keys:
  - "sk-login-client-0123456789"
remote-management:
  secret-key: "{SECRET}"
upstreams:
  codex:
    auth-url: "{F}/codex/authorize"
    token-url: "{F}/codex/token"
    device-url: "{F}/codex/device/usercode"
    device-token-url: "{F}/codex/device/token"
    device-page-url: "{F}/codex/device"
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
os.makedirs(AUTH, mode=0o700, exist_ok=True)
daemon = Proc("cliproxyd-login-daemon", [BIN, "-config", CFG], check_exit=True)
wait_port(DPORT, daemon)


class Login:
    """One `cliproxyd -<flag>` run with stdin/stdout pipes; stdout lines collected."""

    def __init__(self, flag, *extra, port=None):
        self.port = port or free_port()
        env = dict(os.environ, CLIPROXYD_LOGIN_TIMEOUT_S="20")
        self.p = subprocess.Popen([BIN, "-config", CFG, flag, "-no-browser",
                                   "-oauth-callback-port", str(self.port), *extra],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.lines, self.cv = [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            with self.cv:
                self.lines.append(raw.decode().rstrip("\n"))
                self.cv.notify_all()

    def wait_line(self, pattern, timeout=10):
        end = time.time() + timeout
        with self.cv:
            while True:
                for ln in self.lines:
                    if re.search(pattern, ln):
                        return ln
                left = end - time.time()
                assert left > 0 and self.p.poll() is None, (
                    f"no line matching {pattern!r}: {self.lines} {self.stderr()}")
                self.cv.wait(min(left, 0.2))

    def paste(self, text):
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()

    def finish(self, timeout=20):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise
        time.sleep(0.05)
        return rc

    def stderr(self):
        if self.p.poll() is None:
            return ""
        return self.p.stderr.read().decode()

    def saved(self):
        ln = self.wait_line(r"^Saved credentials to ")
        return ln[len("Saved credentials to "):]


def browser(lg):
    """Reads the authorize URL, registers a code for it with the fake; returns (code, q)."""
    url = lg.wait_line(r"^http://127\.0\.0\.1:\d+/")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    code = "code-" + q["state"][:8]
    redirect = q.get("redirect_uri") or q.get("redirect")
    st, _, _ = http("POST", F + "/__issue", {"code": code, "challenge": q.get("code_challenge"),
                                            "redirect_uri": redirect})
    assert st == 200
    return code, q


def callback(lg, path, **params):
    wait_port(lg.port, type("P", (), {"alive": lambda s: lg.p.poll() is None,
                                      "name": "login", "tail": lambda s: lg.stderr()})())
    return http("GET", f"http://127.0.0.1:{lg.port}{path}?{urlencode(params)}")


def check_file(path, pattern, **fields):
    name = os.path.basename(path)
    assert os.path.dirname(path) == AUTH, path
    assert re.fullmatch(pattern, name), name
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        d = json.load(f)
    for k, v in fields.items():
        assert d.get(k) == v, (k, d.get(k), v)
    # the running daemon picks it up (watcher, ~1 s)
    end = time.time() + 5
    while time.time() < end:
        st, _, body = http("GET", f"http://127.0.0.1:{DPORT}/v0/management/auth-files",
                           headers={"Authorization": "Bearer " + SECRET})
        assert st == 200, body
        if name in {x["name"] for x in json.loads(body)["files"]}:
            return d
        time.sleep(0.1)
    raise AssertionError(f"daemon does not list {name}")


def no_violations():
    st, _, body = http("GET", F + "/_stats")
    assert json.loads(body)["violations"] == [], body


def test_codex_callback():
    lg = Login("-codex-login")
    code, q = browser(lg)
    assert q["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
    assert q["redirect_uri"] == f"http://localhost:{lg.port}/auth/callback"
    assert q["code_challenge_method"] == "S256" and q["prompt"] == "login"
    assert q["codex_cli_simplified_flow"] == "true" and q["id_token_add_organizations"] == "true"
    assert q["scope"] == "openid email profile offline_access"
    assert re.fullmatch(r"[0-9a-f]{32}", q["state"])
    lg.wait_line(r"or paste the full redirect URL here:")
    st, _, body = callback(lg, "/auth/callback", code=code, state=q["state"])
    assert st == 200 and b"Authentication successful!" in body
    assert lg.finish() == 0, lg.stderr()
    d = check_file(lg.saved(), r"codex-codex-user@example\.com-plus\.json", type="codex",
                   email="codex-user@example.com", account_id="acct-login-1")
    assert d["access_token"].startswith("codex-at-") and d["refresh_token"].startswith("codex-rt-")
    assert d["id_token"].count(".") == 2 and d["expired"] > d["last_refresh"]
    out = "\n".join(lg.lines)
    assert d["access_token"] not in out and d["refresh_token"] not in out
    no_violations()


def test_codex_state_mismatch():
    lg = Login("-codex-login")
    code, q = browser(lg)
    st, _, body = callback(lg, "/auth/callback", code=code, state="0" * 32)
    assert st == 400
    assert lg.finish() != 0
    assert "state mismatch" in lg.stderr()
    assert not any(n.startswith("codex-") and "mismatch" in n for n in os.listdir(AUTH))


def test_codex_callback_error_and_missing():
    lg = Login("-codex-login")
    browser(lg)
    st, _, _ = callback(lg, "/auth/callback", state="x")  # no code
    assert st == 400
    st, _, _ = callback(lg, "/auth/callback", error="access_denied", state="x")
    assert st == 400
    assert lg.finish() != 0 and "access_denied" in lg.stderr()


def test_codex_device():
    lg = Login("-codex-device-login")
    lg.wait_line(r"/codex/device and enter the code: ABCD-1234")
    assert lg.finish() == 0, lg.stderr()
    check_file(lg.saved(), r"codex-codex-user@example\.com-plus\.json", type="codex")
    no_violations()


def test_claude_pasted_code_state():
    lg = Login("-claude-login")
    code, q = browser(lg)
    assert q["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e" and q["code"] == "true"
    assert q["redirect_uri"] == f"http://localhost:{lg.port}/callback"
    lg.wait_line(r"paste")
    lg.paste("not a url")
    lg.wait_line(r"not a redirect URL")
    lg.paste(f"{code}#{q['state']}")
    assert lg.finish() == 0, lg.stderr()
    d = check_file(lg.saved(), r"claude-claude-user@example\.com\.json", type="claude",
                   email="claude-user@example.com")
    assert d["access_token"].startswith("sk-ant-oat01-claude-at-")
    no_violations()


def test_gemini_pasted_redirect_url_and_setup():
    lg = Login("-login")
    code, q = browser(lg)
    assert q["access_type"] == "offline" and q["prompt"] == "consent"
    assert q["redirect_uri"] == f"http://localhost:{lg.port}/oauth2callback"
    assert "code_challenge" not in q and re.fullmatch(r"[0-9a-f]{32}", q["state"])
    lg.paste(f"http://localhost:{lg.port}/oauth2callback?state={q['state']}&code={code}&scope=x")
    assert lg.finish() == 0, lg.stderr()
    d = check_file(lg.saved(), r"gemini-gemini-user@example\.com-fake-project-1\.json",
                   type="gemini", email="gemini-user@example.com", project_id="fake-project-1",
                   auto=True, checked=True)
    t = d["token"]
    assert t["token_uri"] == "https://oauth2.googleapis.com/token"
    assert t["universe_domain"] == "googleapis.com" and t["token_type"] == "Bearer"
    assert t["access_token"].startswith("ya29.gemini-at-") and t["expiry"].endswith("Z")
    assert "https://www.googleapis.com/auth/cloud-platform" in t["scopes"]
    no_violations()


def test_gemini_project_all():
    lg = Login("-login", "-project_id", "ALL")
    code, q = browser(lg)
    st, _, _ = callback(lg, "/oauth2callback", code=code, state=q["state"])
    assert st == 200
    assert lg.finish() == 0, lg.stderr()
    check_file(lg.saved(), r"gemini-gemini-user@example\.com-all\.json", project_id="ALL",
               auto=False)


def test_qwen_device():
    lg = Login("-qwen-login", "-email", "qwen-user@example.com")
    lg.wait_line(r"user_code=QWEN-42")
    lg.wait_line(r"Code: QWEN-42")
    assert lg.finish() == 0, lg.stderr()
    d = check_file(lg.saved(), r"qwen-qwen-user@example\.com\.json", type="qwen",
                   email="qwen-user@example.com", resource_url="portal.qwen.ai")
    assert d["access_token"].startswith("qwen-at-")
    no_violations()


def test_iflow_callback():
    lg = Login("-iflow-login")
    code, q = browser(lg)
    assert q["redirect"] == f"http://localhost:{lg.port}/oauth2callback"
    assert q["client_id"] == "10009311001" and q["loginMethod"] == "phone"
    st, _, _ = callback(lg, "/oauth2callback", code=code, state=q["state"])
    assert st == 200
    assert lg.finish() == 0, lg.stderr()
    d = check_file(lg.saved(), r"iflow-13800000000-\d{10}\.json", type="iflow",
                   email="13800000000", token_type="Bearer", scope="read")
    assert d["api_key"].startswith("sk-iflow-")
    no_violations()


def test_iflow_cookie_from_stdin():
    lg = Login("-iflow-cookie")
    lg.paste("foo=1; BXAuth=bx-secret-1; other=2")
    assert lg.finish() == 0, lg.stderr()
    d = check_file(lg.saved(), r"iflow-iflow-cookie-user-\d{10}\.json", type="iflow",
                   api_key="sk-iflow-fresh-key", cookie="BXAuth=bx-secret-1;",
                   email="iflow-cookie-user", expired="2099-01-02T03:04:00Z")
    out = "\n".join(lg.lines)
    assert "Paste your iflow.cn Cookie" in out and "bx-secret-1" not in out
    no_violations()


run([test_codex_callback, test_codex_state_mismatch, test_codex_callback_error_and_missing,
     test_codex_device, test_claude_pasted_code_state, test_gemini_pasted_redirect_url_and_setup,
     test_gemini_project_all, test_qwen_device, test_iflow_callback, test_iflow_cookie_from_stdin])
