#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The management API's writes, from loopback: a plaintext secret-key is rewritten to a
bcrypt hash in config.yaml at start (comments and mode kept) and the plaintext still
works; credential upload (multipart and raw JSON with ?name=) lands 0600 in auth-dir and
is served within a second, bad names / bodies / types get 400 and oversize 413; PATCH
auth-files/status flips `disabled` in the file (unknown fields kept, 0600) and in the
listing; GET config never shows the secret; api-keys GET/PUT/PATCH/DELETE rewrite only
the api-keys value of config.yaml (comments and unknown keys kept), a new key works and
a removed one gets 401 within two seconds, and no key reaches the log."""
import json
import os
import stat
import time

from harness import BUILD, TMP, Proc, free_port, http, jwt, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
SECRET = "mgmt-write-secret-0123456789abcdef"
KEY = "sk-client-mw-first-0123456789ab"
KEY2, KEY3, KEY4 = ("sk-client-mw-second-0123456789", "sk-client-mw-third-01234567890",
                    "sk-client-mw-fourth-0123456789")
ALL_KEYS = [KEY, KEY2, KEY3, KEY4]
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "mw-auths")
os.makedirs(AUTH, exist_ok=True)
PORT = free_port()
CFG = os.path.join(TMP, "mw-config.yaml")
CONFIG = f"""# cliproxyd test config (top comment)
host: "127.0.0.1"   # loopback only
port: {PORT}
auth-dir: "{AUTH}"

# Client keys: this comment stays
api-keys:
  - "{KEY}"

# Management: the secret below is hashed at start
remote-management:
  allow-remote: false # local only
  secret-key: "{SECRET}" # plaintext until the first start

upstreams:
  codex:
    base-url: "{fake.url}/backend-api/codex"
some-unknown-key: 42 # unknown keys survive
# trailing comment
"""
with open(CFG, "w") as f:
    f.write(CONFIG)
os.chmod(CFG, 0o640)
proc = Proc("cliproxyd-mgmt-write", [BIN, "-config", CFG], check_exit=True)
wait_port(PORT, proc)
URL = f"http://127.0.0.1:{PORT}"
AUTHZ = {"Authorization": "Bearer " + SECRET}
TOKENS = []


def codex(email, **extra):
    tok = f"at-mw-{email}-0123456789abcdef"
    TOKENS.append(tok)
    http("POST", fake.url + "/_accounts", {tok: {"account_id": "acct-" + email}})
    return dict({"type": "codex", "email": email, "access_token": tok, "refresh_token": "rt-x",
                 "id_token": jwt({"email": email, "https://api.openai.com/auth": {
                     "chatgpt_account_id": "acct-" + email, "chatgpt_plan_type": "pro"}}),
                 "expired": "2099-01-01T00:00:00Z", "custom_field": {"kept": [1, 2]}}, **extra)


def mgmt(method, path, body=None, headers=None):
    h = dict(AUTHZ)
    h.update(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    st, _, raw = http(method, URL + "/v0/management" + path, body, h)
    try:
        return st, json.loads(raw) if raw else None
    except ValueError:
        return st, raw


def multipart(filename, content, field="file", boundary="----cliproxydTestBoundary7MA4YWxk"):
    parts = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
             f"ignored field\r\n"
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
             f"filename=\"{filename}\"\r\nContent-Type: application/json\r\n\r\n").encode()
    body = parts + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def files():
    st, body = mgmt("GET", "/auth-files")
    assert st == 200, body
    return {f["name"]: f for f in body["files"]}


def models(key):
    st, _, body = http("GET", URL + "/v1/models", headers={"Authorization": "Bearer " + key})
    return st, ([m["id"] for m in json.loads(body)["data"]] if st == 200 else None)


def eventually(pred, what, secs=2.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {secs} s: {what}")


def config_text():
    with open(CFG) as f:
        return f.read()


def assert_comments_kept(text):
    for line in ("# cliproxyd test config (top comment)\n", 'host: "127.0.0.1"   # loopback only\n',
                 "# Client keys: this comment stays\napi-keys:\n",
                 "# Management: the secret below is hashed at start\nremote-management:\n"
                 "  allow-remote: false # local only\n",
                 "some-unknown-key: 42 # unknown keys survive\n# trailing comment\n"):
        assert line in text, (line, text)


def test_secret_hashed_at_startup():
    text = config_text()
    assert SECRET not in text
    line = [ln for ln in text.splitlines() if "secret-key:" in ln][0]
    assert line.startswith('  secret-key: "$2a$10$') or line.startswith('  secret-key: "$2b$10$')
    hashed = line[15:75]
    assert len(hashed) == 60 and line[75:] == '" # plaintext until the first start', line
    assert_comments_kept(text)
    assert stat.S_IMODE(os.stat(CFG).st_mode) == 0o640
    # the plaintext is still the key (Bearer and X-Management-Key), a wrong one is not
    assert mgmt("GET", "/auth-files")[0] == 200
    st, _, _ = http("GET", URL + "/v0/management/auth-files",
                    headers={"X-Management-Key": SECRET})
    assert st == 200
    assert mgmt("GET", "/auth-files", headers={"Authorization": "Bearer " + hashed})[0] == 401
    assert mgmt("GET", "/auth-files", headers={"Authorization": "Bearer wrong"})[0] == 401


def test_upload_multipart_and_raw():
    assert models(KEY) == (200, [])
    raw = json.dumps(codex("up-a@example.com"), indent=2).encode()
    body, h = multipart("codex-up-a@example.com.json", raw)
    st, r = mgmt("POST", "/auth-files", body, h)
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    path = os.path.join(AUTH, "codex-up-a@example.com.json")
    assert open(path, "rb").read() == raw
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    eventually(lambda: files().get("codex-up-a@example.com.json", {}).get("status") == "active",
               "uploaded file listed active")
    eventually(lambda: "gpt-5-codex" in (models(KEY)[1] or []), "codex models served")
    # raw JSON with ?name=
    st, r = mgmt("POST", "/auth-files?name=codex-up-b@example.com.json",
                 codex("up-b@example.com"))
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    eventually(lambda: files().get("codex-up-b@example.com.json", {}).get("status") == "active",
               "raw upload listed active")
    assert not [n for n in os.listdir(AUTH) if n.startswith(".")]  # no temporaries left
    # the request goes through the uploaded credential
    st, _, body = http("POST", URL + "/v1/chat/completions",
                       {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "x"}]},
                       {"Authorization": "Bearer " + KEY})
    assert st == 200, body


def test_upload_refused():
    good = json.dumps(codex("bad@example.com")).encode()
    for name in ("../escape.json", ".hidden.json", "x.txt", "a%2Fb.json", "..json", "", "x.JSON"):
        st, r = mgmt("POST", "/auth-files?name=" + name, good)
        assert st == 400, (name, st, r)
        assert r["error"]["message"], r
    for name in ("../escape.json", "sub/dir.json", ".h.json", "noext"):
        body, h = multipart(name, good)
        st, r = mgmt("POST", "/auth-files", body, h)
        assert st == 400, (name, st, r)
    assert not os.path.exists(os.path.join(TMP, "escape.json"))
    cases = [(b"not json", "JSON"), (b"[1, 2]", ""), (b'{"email": "x"}', "type"),
             (json.dumps({"type": "kimi", "email": "g@example.com"}).encode(), "not supported"),
             (json.dumps({"type": "codex", "priority": "high"}).encode(), "priority")]
    for content, word in cases:
        st, r = mgmt("POST", "/auth-files?name=bad.json", content)
        assert st == 400 and word in r["error"]["message"], (content, st, r)
    body, h = multipart("codex-x.json", good, field="other")
    st, r = mgmt("POST", "/auth-files", body, h)
    assert st == 400 and '"file"' in r["error"]["message"], r
    st, r = mgmt("POST", "/auth-files", b"--x\r\n", {"Content-Type": "multipart/form-data"})
    assert st == 400 and "boundary" in r["error"]["message"], r
    big = json.dumps(dict(codex("big@example.com"), pad="x" * (1024 * 1024))).encode()
    st, r = mgmt("POST", "/auth-files?name=big.json", big)
    assert st == 413, (st, r)
    st, _, _ = http("POST", URL + "/v0/management/auth-files?name=y.json", good)
    assert st == 401
    assert sorted(n for n in os.listdir(AUTH)) == ["codex-up-a@example.com.json",
                                                     "codex-up-b@example.com.json"]


def test_patch_status():
    name = "codex-up-a@example.com.json"
    path = os.path.join(AUTH, name)
    st, r = mgmt("PATCH", "/auth-files/status", {"name": name, "disabled": True})
    assert (st, r) == (200, {"status": "ok", "disabled": True}), (st, r)
    on_disk = json.load(open(path))
    assert on_disk["disabled"] is True and on_disk["custom_field"] == {"kept": [1, 2]}
    assert on_disk["access_token"].startswith("at-mw-up-a")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    eventually(lambda: files()[name]["status"] == "disabled" and files()[name]["disabled"],
               "listed disabled")
    assert files()["codex-up-b@example.com.json"]["disabled"] is False
    st, r = mgmt("PATCH", "/auth-files/status", {"name": name, "disabled": False})
    assert (st, r) == (200, {"status": "ok", "disabled": False}), (st, r)
    assert json.load(open(path))["disabled"] is False
    eventually(lambda: files()[name]["status"] == "active", "listed active again")
    # refusals
    assert mgmt("PATCH", "/auth-files/status", {"name": "nope.json", "disabled": True})[0] == 404
    for bad in ({"name": name}, {"name": name, "disabled": "yes"}, {"disabled": True},
                {"name": "../x.json", "disabled": True}, b"not json"):
        st, r = mgmt("PATCH", "/auth-files/status", bad)
        assert st == 400, (bad, st, r)


def test_get_config():
    st, c = mgmt("GET", "/config")
    assert st == 200, c
    assert c["port"] == PORT and c["host"] == "127.0.0.1" and c["auth-dir"] == AUTH
    assert c["api-keys"] == [KEY]
    assert c["remote-management"]["allow-remote"] is False
    assert "secret-key" not in c["remote-management"]
    assert c["upstreams"]["codex"]["base-url"] == fake.url + "/backend-api/codex"
    assert c["routing"]["strategy"] == "round-robin"
    flat = json.dumps(c)
    assert SECRET not in flat and "$2a$" not in flat and "$2b$" not in flat


def key_status(key):
    return models(key)[0]


def test_api_keys():
    assert mgmt("GET", "/api-keys") == (200, {"api-keys": [KEY]})
    # PUT: a plain array; the new key works at once, the file keeps its comments
    st, r = mgmt("PUT", "/api-keys", [KEY, KEY2])
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    eventually(lambda: key_status(KEY2) == 200, "KEY2 accepted")
    assert mgmt("GET", "/api-keys") == (200, {"api-keys": [KEY, KEY2]})
    text = config_text()
    assert f'api-keys:\n  - "{KEY}"\n  - "{KEY2}"\n\n# Management' in text, text
    assert_comments_kept(text)
    assert "$2" in text and SECRET not in text  # the hashed secret line is untouched
    assert stat.S_IMODE(os.stat(CFG).st_mode) == 0o640
    # PATCH old -> new: KEY stops working, KEY3 works
    st, r = mgmt("PATCH", "/api-keys", {"old": KEY, "new": KEY3})
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    eventually(lambda: key_status(KEY) == 401 and key_status(KEY3) == 200, "KEY -> KEY3")
    # PATCH index/value
    st, r = mgmt("PATCH", "/api-keys", {"index": 1, "value": KEY4})
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    assert mgmt("GET", "/api-keys") == (200, {"api-keys": [KEY3, KEY4]})
    eventually(lambda: key_status(KEY2) == 401 and key_status(KEY4) == 200, "KEY2 -> KEY4")
    # PUT {"items": [...]}
    assert mgmt("PUT", "/api-keys", {"items": [KEY3, KEY4, KEY2]})[0] == 200
    # DELETE by value and by index
    st, r = mgmt("DELETE", "/api-keys?value=" + KEY2)
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    eventually(lambda: key_status(KEY2) == 401, "KEY2 removed")
    st, r = mgmt("DELETE", "/api-keys?index=0")
    assert (st, r) == (200, {"status": "ok"}), (st, r)
    eventually(lambda: key_status(KEY3) == 401 and key_status(KEY4) == 200, "KEY3 removed")
    assert mgmt("GET", "/api-keys") == (200, {"api-keys": [KEY4]})
    # refusals leave the file alone
    before = config_text()
    for method, path, body, want in (
            ("PUT", "/api-keys", b"not json", 400), ("PUT", "/api-keys", {"x": 1}, 400),
            ("PUT", "/api-keys", [1], 400), ("PUT", "/api-keys", [""], 400),
            ("PUT", "/api-keys", [" padded "], 400), ("PUT", "/api-keys", ["a\nb"], 400),
            ("PUT", "/api-keys", ["your-api-key-1"], 400),
            ("PATCH", "/api-keys", {}, 400), ("PATCH", "/api-keys", {"index": 5, "value": "k"}, 404),
            ("PATCH", "/api-keys", {"index": "0", "value": "k"}, 400),
            ("DELETE", "/api-keys", None, 400), ("DELETE", "/api-keys?index=7", None, 404),
            ("DELETE", "/api-keys?index=-1", None, 400), ("DELETE", "/api-keys?index=x", None, 400),
            ("DELETE", "/api-keys?value=nope", None, 404)):
        st, r = mgmt(method, path, body)
        assert st == want, (method, path, body, st, r)
        assert "error" in r and r["error"]["message"], r
        for k in ALL_KEYS:
            assert k not in json.dumps(r)
    assert config_text() == before
    # quoting: a key with YAML-special characters round-trips through the file
    odd = 'sk-odd: "quoted" #not-a-comment \\ [x] {y} & * ! | > \' % @ `'
    assert mgmt("PUT", "/api-keys", [KEY4, odd])[0] == 200
    assert mgmt("GET", "/api-keys") == (200, {"api-keys": [KEY4, odd]})
    eventually(lambda: key_status(odd) == 200, "odd key accepted")
    # an emptied list: every client key is refused
    assert mgmt("PUT", "/api-keys", [])[0] == 200
    assert "api-keys: []\n" in config_text()
    eventually(lambda: key_status(KEY4) == 401, "no keys")
    assert mgmt("PUT", "/api-keys", [KEY])[0] == 200
    eventually(lambda: key_status(KEY) == 200, "KEY back")
    assert_comments_kept(config_text())


def test_restart_keeps_hash_and_keys():
    # the rewritten file loads as is: same hash (not hashed twice), same keys
    global proc
    text = config_text()
    assert proc.stop() == 0
    proc = Proc("cliproxyd-mgmt-write-2", [BIN, "-config", CFG], check_exit=True)
    wait_port(PORT, proc)
    assert config_text() == text
    assert mgmt("GET", "/api-keys") == (200, {"api-keys": [KEY]})
    assert key_status(KEY) == 200
    logs = b""
    for p in ("cliproxyd-mgmt-write", "cliproxyd-mgmt-write-2"):
        for n in os.listdir(TMP):
            if n.startswith(p + "-") and n.endswith(".log"):
                logs += open(os.path.join(TMP, n), "rb").read()
    assert logs
    for secret in [SECRET] + ALL_KEYS + TOKENS:
        assert secret.encode() not in logs, secret


run([test_secret_hashed_at_startup, test_upload_multipart_and_raw, test_upload_refused,
     test_patch_status, test_get_config, test_api_keys, test_restart_keeps_hash_and_keys])
