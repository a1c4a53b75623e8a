#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Secrets and files (issue 7, security checks), on a realistic flow client -> meterd ->
cliproxyd -> fake Codex: root logs in and gets an access token, creates a channel to
cliproxyd (its api-key as the channel key), prices, a user with quota; the user logs in,
creates a token and reveals its sk- key; chat requests stream and non-stream; on cliproxyd
a Codex credential inside its refresh lead is refreshed at start, a management upload and
a status PATCH. Then:
- every log file (meterd --log-dir, cliproxyd logging-to-file) and the captured stderr of
  both daemons holds none of the exact values used: the sk- key (with and without sk-),
  access tokens, passwords, the session cookie and SESSION_SECRET, OAuth access and
  refresh tokens (old and refreshed), the cliproxyd api-key, the management secret;
- auth files written by cliproxyd (refresh rewrite, management upload, status PATCH) and
  meterd's database file (and its -wal/-shm) are mode 0600;
- cliproxyd refuses to start with the example api-key your-api-key-1;
- management is loopback-only by default: allow-remote is false when unset, and
  X-Forwarded-For does not make a loopback caller remote (never 403 remote_disabled, never
  banned after 6 bad keys). A non-loopback caller cannot be made under the tests' 127.0.0.1
  rule, so the remote refusal itself is not exercised here;
- meterd's login is rate-limited per client IP with NewAPI's defaults (20 per 1200 s):
  the 21st login gets 429 with Retry-After, X-Forwarded-For does not pick a new bucket,
  a right password is refused too, and non-critical routes still answer."""
import json
import os
import stat
import subprocess
import time

from harness import BUILD, TMP, Proc, free_port, http, jwt, run, start_fake, wait_port
from meterd_env import Meterd

CPD = os.path.join(BUILD, "cliproxyd", "cliproxyd")
API_KEY = "cpd-apikey-secret-7f3a9c1e5b2d4f60"
MGMT = "mgmt-secret-value-9d8c7b6a5f4e3d21"
SESSION_SECRET = "session-secret-82-4e5f6a7b8c9d0e1f"
ROOT_PW, USER_PW = "rootpass123", "alice-pw-82-a1b2c3"
SECRETS = {"cliproxyd api-key": API_KEY, "management secret": MGMT,
           "SESSION_SECRET": SESSION_SECRET, "user password": USER_PW}
S = {}

fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "sec-auths")
WP = os.path.join(TMP, "sec-writable")
MLOG = os.path.join(TMP, "sec-meterd-logs")
os.makedirs(AUTH)
os.makedirs(WP)


def codex_file(name, expires_in, mode=0o644):
    at, rt = f"at-sec-{name}-5a6b7c8d9e0f1a2b", f"rt-sec-{name}-1c2d3e4f5a6b7c8d"
    SECRETS[f"OAuth access token {name}"] = at
    SECRETS[f"OAuth refresh token {name}"] = rt
    http("POST", fake.url + "/_accounts", {at: {"account_id": "acct-" + name,
                                                "refresh_token": rt}})
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    body = {"type": "codex", "email": f"{name}@example.com", "access_token": at,
            "refresh_token": rt, "expired": exp,
            "id_token": jwt({"email": f"{name}@example.com", "https://api.openai.com/auth": {
                "chatgpt_account_id": "acct-" + name, "chatgpt_plan_type": "pro"}})}
    return body


# a credential inside Codex's 5-day refresh lead: rewritten at start
REFRESHED = os.path.join(AUTH, "codex-sec1@example.com-pro.json")
with open(REFRESHED, "w") as f:
    json.dump(codex_file("sec1", 86400), f)
os.chmod(REFRESHED, 0o644)

CPD_PORT = free_port()
CFG = os.path.join(TMP, "sec-cliproxyd.yaml")
with open(CFG, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {CPD_PORT}\nauth-dir: "{AUTH}"\n'
            f'api-keys:\n  - "{API_KEY}"\nlogging-to-file: true\n'
            f'remote-management:\n  secret-key: "{MGMT}"\n'
            f'upstreams:\n  codex:\n    base-url: "{fake.url}/backend-api/codex"\n'
            f'    token-url: "{fake.url}/oauth/token"\n')
cpd = Proc("cliproxyd-sec", [CPD, "-config", CFG], env={"WRITABLE_PATH": WP}, check_exit=True)
wait_port(CPD_PORT, cpd)
CPD_URL = f"http://127.0.0.1:{CPD_PORT}"

m = Meterd("meterd-sec", env={"SESSION_SECRET": SESSION_SECRET})
# Meterd() does not take --log-dir: restart it with one on the same database
m.proc.stop()
assert m.proc.p.returncode == 0, m.proc.tail()
m.port = free_port()
m.url = f"http://127.0.0.1:{m.port}"
m.proc = Proc("meterd-sec-logdir", [os.path.join(BUILD, "meterd", "meterd"), "--host",
                                     "127.0.0.1", "--port", str(m.port), "--log-dir", MLOG],
              env={"SQLITE_PATH": m.db_path, "SESSION_SECRET": SESSION_SECRET},
              check_exit=True)
wait_port(m.port, m.proc)
DAEMONS = [cpd, m.proc]


def api(method, path, body=None, headers=None):
    h = dict(headers or {})
    if body is not None:
        h["Content-Type"] = "application/json"
    st, hd, raw = http(method, m.url + path, body, h, timeout=30)
    j = json.loads(raw) if raw else None
    assert st == 200 and j.get("success") is True, (method, path, st, j)
    return j.get("data"), hd


def login(name, pw):
    d, hd = api("POST", "/api/user/login", {"username": name, "password": pw})
    cookie = hd.get("set-cookie", "").split(";")[0]
    SECRETS[f"session cookie {name}"] = cookie.split("=", 1)[1]
    return {"Cookie": cookie, "New-Api-User": str(d["id"])}, d["id"]


def mgmt(method, path, body=None, headers=None, key=MGMT):
    h = {"Authorization": "Bearer " + key}
    h.update(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    st, _, raw = http(method, CPD_URL + "/v0/management" + path, body, h)
    try:
        return st, json.loads(raw) if raw else None
    except ValueError:
        return st, raw


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def wait_for(pred, what, secs=10.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {secs} s: {what}")


def test_refresh_rewrites_0600():
    def refreshed():
        with open(REFRESHED) as f:
            return json.load(f)["access_token"] != SECRETS["OAuth access token sec1"]
    wait_for(refreshed, "the credential refreshed at start")
    with open(REFRESHED) as f:
        c = json.load(f)
    SECRETS["refreshed OAuth access token"] = c["access_token"]
    SECRETS["refreshed OAuth refresh token"] = c["refresh_token"]
    assert mode(REFRESHED) == 0o600, oct(mode(REFRESHED))


def test_operator_flow_through_meterd():
    root, rid = login("root", ROOT_PW)
    tok, _ = api("GET", "/api/user/token", headers=root)
    SECRETS["root access token"] = tok
    adm = {"Authorization": tok, "New-Api-User": str(rid)}
    api("POST", "/api/channel/", {"mode": "single", "channel": {
        "type": 1, "name": "cliproxyd", "base_url": CPD_URL, "key": API_KEY,
        "models": "gpt-5", "group": "default"}}, adm)
    api("PUT", "/api/option/", {"key": "ModelRatio", "value": json.dumps({"gpt-5": 0.625})}, adm)
    api("PUT", "/api/option/", {"key": "CompletionRatio", "value": json.dumps({"gpt-5": 8})},
        adm)
    api("POST", "/api/user/", {"username": "alice", "password": USER_PW, "role": 1}, adm)
    d, _ = api("GET", "/api/user/search?keyword=alice", headers=adm)
    uid = next(u["id"] for u in d["items"] if u["username"] == "alice")
    api("POST", "/api/user/manage", {"id": uid, "action": "add_quota", "mode": "override",
                                     "value": 5000000}, adm)
    alice, _ = login("alice", USER_PW)
    atok, _ = api("GET", "/api/user/token", headers=alice)
    SECRETS["user access token"] = atok
    api("POST", "/api/token/", {"name": "laptop", "remain_quota": 1000000,
                                "unlimited_quota": False, "expired_time": -1}, alice)
    d, _ = api("GET", "/api/token/", headers=alice)
    tid = d["items"][0]["id"]
    key, _ = api("POST", f"/api/token/{tid}/key", {}, alice)
    SECRETS["sk- key (bare)"] = key["key"]
    SECRETS["sk- key"] = "sk-" + key["key"]
    S["key"] = "sk-" + key["key"]
    S["adm"] = adm
    time.sleep(1.3)  # the relay's channel and option caches


def chat(stream):
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "hello secrets"}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return http("POST", m.url + "/v1/chat/completions", body,
                {"Authorization": "Bearer " + S["key"], "Content-Type": "application/json"},
                timeout=30)


def test_chat_stream_and_non_stream():
    st, _, b = chat(False)
    assert st == 200 and b"fake answer to: hello secrets" in b, (st, b[:300])
    st, _, b = chat(True)
    assert st == 200 and b"data: [DONE]" in b and b'"usage"' in b, (st, b[:300])
    # a wrong key is refused (and must not be logged in full either)
    bad = "sk-" + "w" * 48
    SECRETS["wrong sk- key"] = bad
    st, _, _ = http("POST", m.url + "/v1/chat/completions", {"model": "gpt-5"},
                    {"Authorization": "Bearer " + bad, "Content-Type": "application/json"})
    assert st == 401
    # both requests billed in logs
    def billed():
        return m.one("SELECT count(*) FROM logs WHERE type=2")[0] >= 2
    wait_for(billed, "two consume log rows")


def test_management_upload_and_patch_0600():
    body = codex_file("sec2", 30 * 86400)
    st, j = mgmt("POST", "/auth-files?name=codex-sec2@example.com-pro.json", body)
    assert st == 200, (st, j)
    up = os.path.join(AUTH, "codex-sec2@example.com-pro.json")
    assert os.path.exists(up) and mode(up) == 0o600, oct(mode(up))
    st, j = mgmt("PATCH", "/auth-files/status", {"name": "codex-sec2@example.com-pro.json",
                                                 "disabled": True})
    assert st == 200, (st, j)
    assert mode(up) == 0o600, oct(mode(up))
    wait_for(lambda: len(mgmt("GET", "/auth-files")[1]["files"]) == 2, "the upload listed")
    st, j = mgmt("GET", "/auth-files")
    assert st == 200, (st, j)
    txt = json.dumps(j)
    for k, v in SECRETS.items():
        assert v not in txt, f"auth-files listing shows the {k}"
    st, j = mgmt("GET", "/config")
    assert st == 200 and MGMT not in json.dumps(j), j
    S["config"] = j


def test_management_loopback_only_by_default():
    rm = S["config"].get("remote-management", {})
    assert rm.get("allow-remote") is False, rm
    # X-Forwarded-For / X-Real-IP do not make a loopback caller remote: no 403
    # remote_disabled, and six bad keys do not ban it (only remote callers are banned)
    fwd = {"X-Forwarded-For": "unknown", "X-Real-IP": "unknown", "Forwarded": "for=unknown"}
    for _ in range(6):
        st, j = mgmt("GET", "/auth-files", headers=fwd, key="wrong-key-0123456789")
        assert st == 401, (st, j)
    st, j = mgmt("GET", "/auth-files", headers=fwd)
    assert st == 200, (st, j)
    st, j = mgmt("GET", "/auth-files", headers={"X-Forwarded-For": "127.0.0.1"}, key="")
    assert st == 401, (st, j)


def test_meterd_database_0600():
    for suffix in ("", "-wal", "-shm"):
        p = m.db_path + suffix
        if suffix and not os.path.exists(p):
            continue
        assert mode(p) == 0o600, f"{p} has mode {oct(mode(p))}"


def test_example_api_key_refused():
    port = free_port()
    cfg = os.path.join(TMP, "sec-example.yaml")
    with open(cfg, "w") as f:
        f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\n'
                f'api-keys:\n  - "your-api-key-1"\n')
    r = subprocess.run([CPD, "-config", cfg], capture_output=True, timeout=20)
    assert r.returncode != 0, r
    assert b"example" in r.stderr.lower() or b"your-api-key" in r.stderr, r.stderr[-500:]


def test_login_rate_limit_per_ip():
    rl = Meterd("meterd-sec-rl")  # NewAPI's defaults: 20 critical requests per 1200 s per IP
    h = {"Content-Type": "application/json"}
    for i in range(20):
        st, _, b = http("POST", rl.url + "/api/user/login",
                        {"username": "root", "password": f"wrong-{i}"}, h)
        assert st == 200 and json.loads(b)["success"] is False, (i, st, b)
    for extra in ({}, {"X-Forwarded-For": "unknown"}, {"X-Real-IP": "unknown"}):
        st, hd, b = http("POST", rl.url + "/api/user/login",
                         {"username": "root", "password": ROOT_PW}, dict(h, **extra))
        assert st == 429, (extra, st, b)
        assert json.loads(b)["success"] is False and int(hd["retry-after"]) > 1000, (hd, b)
        assert "set-cookie" not in hd
    st, _, b = http("GET", rl.url + "/api/status")
    assert st == 200 and json.loads(b)["success"], b
    rl.proc.stop()
    assert rl.proc.p.returncode == 0, rl.proc.tail()


def log_files():
    out = []
    for d in (WP, MLOG):
        for root, _, files in os.walk(d):
            out += [os.path.join(root, f) for f in files]
    return out


def test_no_secret_in_any_log():
    files = log_files()
    assert any(f.endswith("main.log") for f in files), files
    assert any(f.endswith("meterd.log") for f in files), files
    for p in DAEMONS:
        p.stop()
        assert p.p.returncode == 0, (p.name, p.p.returncode, p.tail())
        files.append(p.log)
    leaks = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        assert data or path in (cpd.log, m.proc.log), f"{path} is empty"
        for what, v in SECRETS.items():
            if v.encode() in data:
                leaks.append(f"{os.path.basename(path)} holds the {what}")
    assert not leaks, "\n".join(leaks)
    # the access log still names requests (the grep above is not vacuous)
    with open(os.path.join(MLOG, "meterd.log"), "rb") as f:
        assert b"/v1/chat/completions" in f.read()
    # meterd's own log file is 0600 too
    assert mode(os.path.join(MLOG, "meterd.log")) == 0o600


if __name__ == "__main__":
    run([test_refresh_rewrites_0600, test_operator_flow_through_meterd,
         test_chat_stream_and_non_stream, test_management_upload_and_patch_0600,
         test_management_loopback_only_by_default, test_meterd_database_0600,
         test_example_api_key_refused, test_login_rate_limit_per_ip, test_no_secret_in_any_log])
