#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""meterctl against a real meterd (fresh SQLite file, POST /api/setup, an access token from
login + GET /api/user/token): price set/list change the options meterd keeps (read back from
GET /api/option/ and the options table) without losing other entries; user list; topup moves
users.quota (by id, by username, in USD); token create prints the sk- key once and only on
stdout, and that key is the tokens row; channel add/list/test with the upstream key never
shown; verify end to end with tests/fakes/fake_openai.py as both "cliproxyd" and the
channel's upstream (its quota checked against NewAPI's formula here too), and verify's
failures; configuration precedence (flags > env > ~/.config/meterctl); errors: a wrong
access token (exit 4), meterd down (exit 3), no token (exit 2), secrets never printed."""
import json
import os
import re
import subprocess
import sys

from harness import BUILD, SRC, TMP, free_port, http, run, start_fake
from meterd_env import Meterd, quota

MC = os.path.join(BUILD, "meterctl", "meterctl")
HOME = os.path.join(TMP, "home")
os.makedirs(HOME, exist_ok=True)

if os.path.exists(os.path.join(SRC, "tests/fakes/fake_openai.py")):
    FAKE = start_fake("fake_openai.py")
    FAKE_USAGE = (100, 20)  # its default usage
else:  # older trees: the proxy-core fake also answers /v1/chat/completions
    FAKE = start_fake("fake_upstream.py")
    FAKE_USAGE = (5, 3)

M = Meterd("meterd-meterctl")


def access_token():
    """Logs in as root and asks for an access token, as an operator would in the console;
    falls back to writing users.access_token straight into the database."""
    st, h, body = http("POST", M.url + "/api/user/login",
                       {"username": "root", "password": "rootpass123"})
    cookie = h.get("set-cookie", "").split(";")[0]
    if st == 200 and cookie:
        st, _, body = http("GET", M.url + "/api/user/token",
                           headers={"Cookie": cookie, "New-Api-User": "1"})
        if st == 200 and json.loads(body).get("success"):
            return json.loads(body)["data"]
    print("note: login / GET /api/user/token unavailable; writing the access token into SQLite")
    tok = "meterctl-test-token-0123456789ab"
    M.sql("UPDATE users SET access_token=? WHERE id=1", (tok,))
    return tok


TOKEN = access_token()


def mc(*args, env=None, stdin=None, token=True, check=None):
    """Runs meterctl with METERD_URL/TOKEN/USER pointing at M (unless overridden) and a HOME
    without a config file. Returns CompletedProcess (text)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("METERD_", "CLIPROXY_", "XDG_CONFIG_HOME", "NO_COLOR"))}
    e.update({"HOME": HOME, "METERD_URL": M.url, "METERD_USER": "1"})
    if token:
        e["METERD_TOKEN"] = TOKEN
    e.update(env or {})
    r = subprocess.run([MC, *args], capture_output=True, text=True, env=e, input=stdin,
                       timeout=120)
    if check is not None and r.returncode != check:
        raise AssertionError(f"meterctl {' '.join(args)}: exit {r.returncode}, wanted {check}\n"
                             f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    for secret in (TOKEN,):
        assert secret not in r.stdout and secret not in r.stderr, "access token printed"
    return r


def option(key):
    row = M.one('SELECT value FROM options WHERE "key"=?', (key,))
    return json.loads(row[0]) if row else None


def api_option(key):
    st, _, body = http("GET", M.url + "/api/option/",
                       headers={"Authorization": TOKEN, "New-Api-User": "1"})
    assert st == 200, body
    for kv in json.loads(body)["data"]:
        if kv["key"] == key:
            return json.loads(kv["value"])
    return None


def test_help_and_usage():
    r = mc("--help", check=0)
    for word in ("price set", "topup", "token create", "channel add", "verify", "exit codes"):
        assert word in r.stdout, word
    r = mc(check=2)
    assert "usage: meterctl" in r.stderr
    assert mc("--version", check=0).stdout.startswith("meterctl ")
    r = mc("price", "set", "--input", "2", check=2)
    assert "--input before any MODEL" in r.stderr
    r = mc("price", "set", "m", "--input", "abc", "--output", "1", check=2)
    assert "expected USD per 1M tokens" in r.stderr
    r = mc("price", "set", "m", "--input", "0", "--output", "1", check=2)
    assert "relative to the input price" in r.stderr
    r = mc("frobnicate", check=2)
    assert 'unknown command "frobnicate"' in r.stderr
    r = mc("token", "create", "x", "--expires", "yesterday", check=2)
    assert "expiry" in r.stderr


def test_price_set_and_list():
    # an entry meterctl must keep, written as an operator would
    M.set_option("ModelRatio", json.dumps({"keep-me": 7, "gpt-4o": 1}))
    M.wait_caches()
    r = mc("price", "set", "gpt-4o", "--input", "2.5", "--cached", "1.25", "--output", "10",
           "claude-x", "--input", "3", "--cached", "0.3", "--output", "15", "--cache-write",
           "3.75", check=0)
    assert "updated CompletionRatio, CacheRatio, CreateCacheRatio, ModelRatio" in r.stdout
    lines = r.stdout.splitlines()
    assert lines[1].split()[0] == "MODEL", r.stdout
    row = {l.split()[0]: l.split() for l in lines[2:]}
    assert row["gpt-4o"][1:5] == ["$2.50", "$1.25", "$3.125", "$10.00"], row
    assert row["claude-x"][1:9] == ["$3.00", "$0.30", "$3.75", "$15.00", "1.5", "5", "0.1",
                                    "1.25"], row
    # what meterd now holds, in the table and through the API
    for src in (option, api_option):
        mr, cr, ca, cc = (src("ModelRatio"), src("CompletionRatio"), src("CacheRatio"),
                          src("CreateCacheRatio"))
        assert mr["gpt-4o"] == 1.25 and mr["claude-x"] == 1.5 and mr["keep-me"] == 7, mr
        assert cr["gpt-4o"] == 4 and cr["claude-x"] == 5, cr
        assert ca["gpt-4o"] == 0.5 and ca["claude-x"] == 0.1, ca
        assert cc["claude-x"] == 1.25, cc
    # defaults not wiped: CompletionRatio was absent and started from meterd's built-in map
    assert option("CompletionRatio")["gpt-image-1"] == 8

    r = mc("price", "set", "gpt-4o", "--input", "2.5", "--cached", "1.25", "--output", "10",
           check=0)
    assert r.stdout.startswith("no change")

    r = mc("--json", "price", "list", "gpt-4o", "claude-x", check=0)
    rows = {x["model"]: x for x in json.loads(r.stdout)}
    assert rows["gpt-4o"]["usd_per_1m"] == {"input": 2.5, "cached": 1.25, "cache_write": 3.125,
                                            "output": 10}
    assert rows["claude-x"]["create_cache_ratio"] == 1.25
    r = mc("price", "list", check=0)
    assert re.search(r"^keep-me\s+\$14\.00", r.stdout, re.M), r.stdout
    assert re.search(r"^dall-e-3\s+\$0\.04/call", r.stdout, re.M), r.stdout
    assert "\033[" not in r.stdout  # not a TTY: no colours
    r = mc("price", "list", "--color", "always", check=0)
    assert "\033[1m" in r.stdout

    # a value meterd would refuse is refused before anything is written
    before = option("ModelRatio")
    r = mc("price", "set", "gpt-4o", "--input", "9999999999999", "--output", "9999999999999",
           check=1)
    assert "meterd would refuse it" in r.stderr, r.stderr
    assert option("ModelRatio") == before


def test_user_list_and_topup():
    uid = M.add_user("alice", 1000)
    r = mc("user", "list", check=0)
    assert re.search(r"^\s*1\s+root\s+Root User\s+root\s+enabled", r.stdout, re.M), r.stdout
    assert re.search(rf"^\s*{uid}\s+alice\b", r.stdout, re.M), r.stdout
    users = json.loads(mc("--json", "user", "list", check=0).stdout)
    assert {u["username"] for u in users} >= {"root", "alice"}

    r = mc("topup", "alice", "5000000", check=0)
    assert f"user {uid} (alice): +5000000 quota ($10.00); balance 1000 -> 5001000" in r.stdout
    assert M.one("SELECT quota FROM users WHERE id=?", (uid,))[0] == 5_001_000
    r = mc("--json", "topup", str(uid), "--usd", "2.5", check=0)
    j = json.loads(r.stdout)
    assert j["added"] == 1_250_000 and j["quota_after"] == 6_251_000, j
    assert M.one("SELECT quota FROM users WHERE id=?", (uid,))[0] == 6_251_000
    r = mc("topup", "nobody-here", "5", check=1)
    assert 'no user named "nobody-here"' in r.stderr
    r = mc("topup", "99999", "5", check=1)
    assert "GET /api/user/99999" in r.stderr
    mc("topup", "alice", "-5", check=2)


TOKEN_KEY = {}


def test_token_create():
    r = mc("token", "create", "ci-bot", "--usd", "10", "--models", "gpt-4o, claude-x",
           "--expires", "30d", check=0)
    out = r.stdout.splitlines()
    assert len(out) == 1 and re.fullmatch(r"sk-[A-Za-z0-9]{48}", out[0]), r.stdout
    key = out[0]
    assert "shown once" in r.stderr and key not in r.stderr
    row = M.one('SELECT user_id, remain_quota, unlimited_quota, model_limits_enabled, '
                'model_limits, expired_time, name FROM tokens WHERE "key"=?', (key[3:],))
    assert row is not None, "the printed key is not in the tokens table"
    assert row[0] == 1 and row[1] == 5_000_000 and not row[2] and row[3], row
    assert row[4] == "gpt-4o,claude-x" and row[5] > 0 and row[6] == "ci-bot", row

    r = mc("token", "list", check=0)
    assert "ci-bot" in r.stdout and key[3:] not in r.stdout
    assert key[3:7] + "**********" + key[-4:] in r.stdout, r.stdout
    assert key[3:] not in mc("--json", "token", "list", check=0).stdout

    # --json and -v: the key once on stdout, the trace masked
    r = mc("-v", "--json", "token", "create", "vtok", check=0)
    j = json.loads(r.stdout)
    assert j["name"] == "vtok" and j["key"].startswith("sk-")
    assert j["key"][3:] not in r.stderr and "> POST" in r.stderr, r.stderr
    TOKEN_KEY["vtok"] = j["key"]
    assert M.one('SELECT name FROM tokens WHERE "key"=?', (j["key"][3:],))[0] == "vtok"


CHANNEL = {}


def test_channel_add_list_test():
    up_key = "sk-upstream-secret-for-fake-0001"
    kf = os.path.join(TMP, "up.key")
    with open(kf, "w") as f:
        f.write(up_key + "\n")
    r = mc("channel", "add", "fake-up", "--type", "openai", "--base-url", FAKE.url,
           "--models", "gpt-4o,claude-x", "--key-file", kf, check=0)
    m = re.match(r'added channel (\d+) "fake-up" \(type 1 openai', r.stdout)
    assert m, r.stdout
    cid = int(m.group(1))
    CHANNEL["id"] = cid
    assert up_key not in r.stdout + r.stderr
    row = M.one('SELECT "key", base_url, models, "group", type FROM channels WHERE id=?', (cid,))
    assert row == (up_key, FAKE.url, "gpt-4o,claude-x", "default", 1), row
    assert M.one("SELECT COUNT(*) FROM abilities WHERE channel_id=?", (cid,))[0] == 2

    # the key from stdin
    r = mc("channel", "add", "from-stdin", "--type", "14", "--base-url", FAKE.url,
           "--models", "claude-x", "--key", "-", stdin="sk-stdin-key\n", check=0)
    cid2 = int(re.match(r"added channel (\d+)", r.stdout).group(1))
    assert M.one('SELECT "key" FROM channels WHERE id=?', (cid2,))[0] == "sk-stdin-key"

    r = mc("channel", "list", check=0)
    assert re.search(rf"^\s*{cid}\s+fake-up\s+1 openai\s+enabled", r.stdout, re.M), r.stdout
    assert up_key not in r.stdout
    chans = json.loads(mc("--json", "channel", "list", check=0).stdout)
    assert all("key" not in c for c in chans) and {c["name"] for c in chans} >= {"fake-up"}

    r = mc("channel", "test", str(cid), check=0)
    assert r.stdout.startswith("\u2713 channel %d answered" % cid), r.stdout
    r = mc("channel", "test", "fake-up", "--model", "claude-x", check=0)
    assert "\u2713" in r.stdout
    r = mc("channel", "test", "no-such-channel", check=1)
    assert 'no channel named "no-such-channel"' in r.stderr
    mc("channel", "add", "x", "--type", "openai", check=2)


def test_verify():
    key = TOKEN_KEY["vtok"]
    M.wait_caches()  # the relay picks up the new channel and prices
    r = mc("verify", "--cliproxy-url", FAKE.url, "--cliproxy-key", "cp-key-123", "--token", key,
           "--model", "gpt-4o")
    if r.returncode != 0 and "HTTP 404" in r.stdout and "meterd relays" in r.stdout:
        print("SKIP verify: this meterd has no relay route yet:\n" + r.stdout)
        return
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("\u2713") == 5 and "all 5 checks passed" in r.stdout, r.stdout
    assert key[3:] not in r.stdout + r.stderr and "cp-key-123" not in r.stdout + r.stderr

    r = mc("--json", "verify", "--token", key, "--model", "gpt-4o",
           env={"CLIPROXY_URL": FAKE.url, "CLIPROXY_KEY": "cp-key-123"}, check=0)
    j = json.loads(r.stdout)
    assert j["ok"] and [s["status"] for s in j["steps"]] == ["ok"] * 5, j
    want = quota(FAKE_USAGE[0], FAKE_USAGE[1], 1.25, 4, 1)
    assert j["expected_quota"] == j["log"]["quota"] == want, (j, want)
    db = M.one("SELECT quota, prompt_tokens, completion_tokens FROM logs WHERE request_id=?",
               (j["request_id"],))
    assert db == (want, FAKE_USAGE[0], FAKE_USAGE[1]), db

    # failures: cliproxyd down, a key meterd refuses -> later steps skipped, exit 1
    dead = f"http://127.0.0.1:{free_port()}"
    r = mc("verify", "--cliproxy-url", dead, "--cliproxy-key", "k", "--token", "sk-" + "z" * 48,
           "--model", "gpt-4o", check=1)
    assert "\u2717 cliproxyd answers" in r.stdout and "cannot reach" in r.stdout, r.stdout
    assert "\u2717 meterd relays" in r.stdout and "HTTP 401" in r.stdout, r.stdout
    assert "- log row exists" in r.stdout and "5 of 5 checks did not pass" in r.stdout
    r = mc("verify", "--token", key, "--model", "gpt-4o", check=2)
    assert "--cliproxy-url" in r.stderr


def test_config_precedence():
    cfg_dir = os.path.join(HOME, ".config")
    os.makedirs(cfg_dir, exist_ok=True)
    path = os.path.join(cfg_dir, "meterctl")
    with open(path, "w") as f:
        f.write(f"# meterctl test\nurl = {M.url}\ntoken = \"{TOKEN}\"\nuser=1\n")
    os.chmod(path, 0o600)
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        env = {"METERD_URL": "", "METERD_USER": ""}
        r = mc("user", "list", env=env, token=False, check=0)  # all from the file
        assert "root" in r.stdout and "readable by other users" not in r.stderr
        r = mc("user", "list", env={"METERD_URL": dead}, token=False, check=3)  # env > file
        assert f"is meterd running at {dead} (from METERD_URL)" in r.stderr, r.stderr
        mc("user", "list", "--url", M.url, env={"METERD_URL": dead}, token=False,
           check=0)  # flag > env
        os.chmod(path, 0o644)
        r = mc("user", "list", env=env, token=False, check=0)
        assert "readable by other users" in r.stderr
        r = mc("--config", os.path.join(TMP, "nope.conf"), "user", "list", check=2)
        assert "nope.conf" in r.stderr
    finally:
        os.unlink(path)


def test_errors():
    r = mc("user", "list", "--access-token", "wrong-token-0123456789abcdefghij", token=False,
           check=4)
    assert "Unauthorized" in r.stderr and "hint:" in r.stderr, r.stderr
    assert "wrong-token-0123456789abcdefghij" not in r.stderr
    r = mc("user", "list", "--user", "2", check=4)
    assert "New-Api-User" in r.stderr
    dead = f"http://127.0.0.1:{free_port()}"
    r = mc("price", "list", "--url", dead, check=3)
    assert "cannot reach" in r.stderr and "is meterd running" in r.stderr, r.stderr
    r = mc("user", "list", token=False, check=2)
    assert "no access token" in r.stderr
    r = mc("-v", "user", "list", check=0)
    assert "> Authorization: Bearer " in r.stderr and TOKEN not in r.stderr
    r = mc("user", "list", "--timeout", "0", check=2)


run([test_help_and_usage, test_price_set_and_list, test_user_list_and_topup, test_token_create,
     test_channel_add_list_test, test_verify, test_config_precedence, test_errors])
