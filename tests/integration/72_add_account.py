#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""deploy/add-account.sh (issue 6) end to end: against fake_oauth.py and a running
cliproxyd, `add-account.sh codex` runs the Codex login with -no-browser; the test plays the
user (reads the printed URL, logs in at the fake, pastes the final redirect URL back into
the script's terminal), and the script must report the new credential active as the
running daemon's management API lists it. Also: an unknown provider and a failed login
exit non-zero with a message."""
import json
import os
import re
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

from harness import BUILD, SRC, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
SCRIPT = os.path.join(SRC, "deploy", "add-account.sh")
SECRET = "add-account-mgmt-secret-0123456789"
fake = start_fake("fake_oauth.py")
AUTH = os.path.join(TMP, "add-account-auths")
CFG = os.path.join(TMP, "add-account.yaml")
PORT = free_port()
with open(CFG, "w") as f:
    f.write(f"""host: "127.0.0.1"
port: {PORT}
auth-dir: "{AUTH}"
api-keys: ["sk-add-account-client-0123456789"]
remote-management:
  secret-key: "{SECRET}"
upstreams:
  codex:
    auth-url: "{fake.url}/codex/authorize"
    token-url: "{fake.url}/codex/token"
""")
os.makedirs(AUTH, mode=0o700, exist_ok=True)
daemon = Proc("cliproxyd-add-account", [BIN, "-config", CFG], check_exit=True)
wait_port(PORT, daemon)
ENV = dict(os.environ, CLIPROXY_CONFIG=CFG, CLIPROXY_URL=f"http://127.0.0.1:{PORT}",
           CLIPROXY_MGMT_KEY=SECRET, CLIPROXYD=BIN, ADD_ACCOUNT_WAIT="10",
           CLIPROXYD_LOGIN_TIMEOUT_S="20", DATA_DIR=os.path.join(TMP, "no-data"))


class Script:
    def __init__(self, *args):
        self.p = subprocess.Popen([SCRIPT, *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        self.lines, self.cv = [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            with self.cv:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cv.notify_all()

    def wait_line(self, pattern, timeout=15):
        end = time.time() + timeout
        with self.cv:
            while True:
                for ln in self.lines:
                    if re.search(pattern, ln):
                        return ln
                assert time.time() < end and self.p.poll() is None, self.lines
                self.cv.wait(0.2)

    def finish(self):
        rc = self.p.wait(30)
        time.sleep(0.1)
        return rc, "\n".join(self.lines)


def test_codex_account_becomes_active():
    cb = free_port()
    s = Script("codex", "-oauth-callback-port", str(cb))
    url = s.wait_line(r"^http://127\.0\.0\.1:\d+/codex/authorize")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    code = "code-" + q["state"][:8]
    st, _, _ = http("POST", fake.url + "/__issue", {"code": code, "challenge": q["code_challenge"],
                                                   "redirect_uri": q["redirect_uri"]})
    assert st == 200
    s.wait_line(r"paste")
    # the user pastes the address the browser could not load (headless VPS)
    s.p.stdin.write(f"{q['redirect_uri']}?code={code}&state={q['state']}\n".encode())
    s.p.stdin.flush()
    rc, out = s.finish()
    assert rc == 0, out
    m = re.search(r"\u2713 (codex-\S+\.json) is active in cliproxyd", out)
    assert m, out
    name = m.group(1)
    assert os.path.exists(os.path.join(AUTH, name)), os.listdir(AUTH)
    st, _, body = http("GET", f"http://127.0.0.1:{PORT}/v0/management/auth-files",
                       headers={"X-Management-Key": SECRET})
    assert any(f["name"] == name and f["status"] == "active"
               for f in json.loads(body)["files"]), body
    assert SECRET not in out


def test_unknown_provider_and_failed_login():
    rc, out = Script("nosuch").finish()
    assert rc != 0 and "unknown provider 'nosuch'" in out, out
    cb = free_port()
    s = Script("codex", "-oauth-callback-port", str(cb))
    url = s.wait_line(r"^http://127\.0\.0\.1:\d+/codex/authorize")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    s.wait_line(r"paste")
    s.p.stdin.write(f"{q['redirect_uri']}?code=x&state=not-the-state\n".encode())
    s.p.stdin.flush()
    rc, out = s.finish()
    assert rc != 0 and "the login failed" in out, out


run([test_codex_account_becomes_active, test_unknown_provider_and_failed_login])
