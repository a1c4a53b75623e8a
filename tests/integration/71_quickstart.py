#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""README command 1: deploy/quickstart.sh in a temp directory (with the binaries this build
made, QUICKSTART_BIN_DIR, and free loopback ports) starts both daemons, creates the root
user, a channel from meterd to cliproxyd and a client token, and prints BASE_URL and
BASE_API_KEY; a chat request with that key then goes client -> meterd -> cliproxyd -> the
fake Codex backend and is billed. A second run reuses everything; --stop stops both."""
import json
import os
import re
import sqlite3
import subprocess
import time

from harness import jwt, BUILD, SRC, TMP, free_port, http, run, start_fake

fake = start_fake("fake_codex.py")
DATA, AUTH = os.path.join(TMP, "qs-data"), os.path.join(TMP, "qs-auths")
CP_PORT, MT_PORT = free_port(), free_port()
ENV = dict(os.environ, DATA_DIR=DATA, AUTH_DIR=AUTH, CLIPROXY_PORT=str(CP_PORT),
           METER_PORT=str(MT_PORT), HOST="127.0.0.1", QUICKSTART_BIN_DIR=BUILD)
SCRIPT = os.path.join(SRC, "deploy", "quickstart.sh")
OUT = {}

# what a user has before the first run: an account file, and (for this test only) the fake
# backend as cliproxyd's Codex upstream. quickstart keeps an existing cliproxyd.yaml.
os.makedirs(AUTH, exist_ok=True)
os.makedirs(DATA, exist_ok=True)
http("POST", fake.url + "/_accounts", {"at-qs-0123456789abcdef": {"account_id": "acct-qs"}})
with open(os.path.join(AUTH, "codex-qs@example.com-pro.json"), "w") as f:
    json.dump({"type": "codex", "email": "qs@example.com", "access_token": "at-qs-0123456789abcdef",
               "refresh_token": "rt-qs", "expired": "2099-01-01T00:00:00Z",
               "id_token": jwt({"email": "qs@example.com", "https://api.openai.com/auth": {
                   "chatgpt_account_id": "acct-qs", "chatgpt_plan_type": "pro"}})}, f)
KEY = "sk-cp-quickstart-test-0123456789abcdef"
with open(os.path.join(DATA, "credentials.env"), "w") as f:
    f.write(f"CLIPROXY_KEY={KEY}\nSESSION_SECRET=qs-session-secret-0123456789\n"
            "ADMIN_USER=root\nADMIN_PASSWORD=qs-admin-password-1\n")
with open(os.path.join(DATA, "cliproxyd.yaml"), "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {CP_PORT}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
            f'upstreams:\n  codex:\n    base-url: "{fake.url}/backend-api/codex"\n')


def quickstart(*args):
    return subprocess.run(["bash", SCRIPT, *args], env=ENV, capture_output=True, text=True,
                          timeout=300)


def test_first_run_prints_what_a_client_needs():
    r = quickstart()
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"BASE_URL\s+(\S+)", r.stdout)
    k = re.search(r"BASE_API_KEY\s+(sk-\S+)", r.stdout)
    assert m and k, r.stdout
    assert m.group(1) == f"http://127.0.0.1:{MT_PORT}/v1"
    assert "root / qs-admin-password-1" in r.stdout
    OUT["base"], OUT["key"] = m.group(1), k.group(1)


def test_request_through_both_daemons_is_billed():
    st, hdrs, body = http("POST", OUT["base"] + "/chat/completions",
                          {"model": "gpt-5-codex",
                           "messages": [{"role": "user", "content": "hello quickstart"}]},
                          {"Authorization": "Bearer " + OUT["key"]}, timeout=30)
    assert st == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "fake answer to: hello quickstart"
    db = sqlite3.connect(os.path.join(DATA, "one-api.db"))
    for _ in range(50):
        row = db.execute("select quota, prompt_tokens from logs where type = 2").fetchone()
        if row:
            break
        time.sleep(0.1)
    assert row and row[0] > 0 and row[1] > 0, row
    assert json.loads(http("GET", fake.url + "/_stats")[2])["violations"] == []


def test_second_run_reuses_everything():
    r = quickstart()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already running" in r.stdout
    assert re.search(r"BASE_API_KEY\s+(sk-\S+)", r.stdout).group(1) == OUT["key"]
    db = sqlite3.connect(os.path.join(DATA, "one-api.db"))
    assert db.execute("select count(*) from channels").fetchone()[0] == 1
    assert db.execute("select count(*) from tokens").fetchone()[0] == 1
    assert oct(os.stat(os.path.join(DATA, "credentials.env")).st_mode & 0o777) == "0o600"


def test_stop():
    r = quickstart("--stop")
    assert r.returncode == 0 and "stopped meterd" in r.stdout and "stopped cliproxyd" in r.stdout
    r = quickstart("--status")
    assert "cliproxyd not running" in r.stdout and "meterd not running" in r.stdout


try:
    run([test_first_run_prints_what_a_client_needs, test_request_through_both_daemons_is_billed,
         test_second_run_reuses_everything, test_stop])
finally:
    quickstart("--stop")
