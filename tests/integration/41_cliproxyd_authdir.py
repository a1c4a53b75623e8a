#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cliproxyd's auth dir, live: a missing auth-dir is created (0700); Codex and Claude
auth files dropped in are served within about a second (their models appear in
/v1/models, by ChatGPT plan for Codex); unsupported providers and malformed files are
skipped with a warning naming the file; `disabled` and deleting a file take effect
without a restart; no token from a file ever reaches the log."""
import json
import os
import stat
import time

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-authdir-0123456789ab"
AUTH = os.path.join(TMP, "auths-new")  # does not exist yet: cliproxyd creates it
SECRETS = []



def put(name, obj):
    tmp = os.path.join(AUTH, "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    os.replace(tmp, os.path.join(AUTH, name))


def codex(email, plan, **extra):
    at, rt = f"codex-access-{email}-0123456789abcdef", f"codex-refresh-{email}-0123456789"
    SECRETS.extend([at, rt])
    return dict({"type": "codex", "email": email, "access_token": at, "refresh_token": rt,
                 "id_token": jwt({"email": email, "https://api.openai.com/auth": {
                     "chatgpt_account_id": "acct-" + email, "chatgpt_plan_type": plan}}),
                 "account_id": "", "expired": "2099-01-01T00:00:00Z",
                 "last_refresh": "2026-11-01T00:00:00Z"}, **extra)


def claude(email):
    at = f"sk-ant-oat01-{email}-0123456789abcdefghij"
    SECRETS.append(at)
    return {"type": "claude", "email": email, "access_token": at,
            "refresh_token": "sk-ant-ort01-x0123456789abcdefghij",
            "expired": "2099-01-01T00:00:00Z"}


port = free_port()
cfg = os.path.join(TMP, "authdir.yaml")
with open(cfg, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n')
proc = Proc("cliproxyd-authdir", [BIN, "-config", cfg], check_exit=True)
wait_port(port, proc)


def model_ids():
    st, _, body = http("GET", f"http://127.0.0.1:{port}/v1/models",
                       headers={"Authorization": "Bearer " + KEY})
    assert st == 200, body
    return {m["id"]: m["owned_by"] for m in json.loads(body)["data"]}


def eventually(pred, what, secs=2.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {secs} s: {what}")


def test_dir_created_and_empty():
    st = os.stat(AUTH)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert model_ids() == {}


def test_files_dropped_in_are_served():
    put("codex-alice@example.com-free.json", codex("alice@example.com", "free"))
    eventually(lambda: "gpt-5-codex" in model_ids(), "codex models listed")
    ids = model_ids()
    assert ids["gpt-5-codex"] == "openai" and "gpt-5.3-codex-spark" not in ids  # free plan
    put("codex-bob@example.com-plus.json", codex("bob@example.com", "plus"))
    eventually(lambda: "gpt-5.3-codex-spark" in model_ids(), "plus plan adds spark")
    put("claude-carol@example.com.json", claude("carol@example.com"))
    eventually(lambda: model_ids().get("claude-sonnet-4-5-20250929") == "anthropic",
               "claude models listed")


def test_unsupported_and_malformed_are_skipped():
    before = model_ids()
    put("kimi-dave@example.com.json", {"type": "kimi", "email": "dave@example.com",
                                               "token": {"access_token": "ya29.secret"}})
    put("codex-broken.json", '{"type": "codex", "priority": [1, 2]}')
    put("not-json.json", "{this is not json")
    time.sleep(0.8)
    assert model_ids() == before
    log = open(proc.log, "rb").read()
    for needle in (b"kimi-dave@example.com.json", b"codex-broken.json", b"priority",
                   b"not-json.json"):
        assert needle in log, needle


def test_disable_and_delete_without_restart():
    put("codex-bob@example.com-plus.json", codex("bob@example.com", "plus", disabled=True))
    eventually(lambda: "gpt-5.3-codex-spark" not in model_ids(), "disabled credential hidden")
    assert "gpt-5-codex" in model_ids()  # alice (free) still serves it
    os.remove(os.path.join(AUTH, "claude-carol@example.com.json"))
    eventually(lambda: "claude-sonnet-4-5-20250929" not in model_ids(), "deleted file gone")


def test_no_secret_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in SECRETS + [KEY, "ya29.secret"]:
        assert s.encode() not in log, f"a secret reached the log: {s[:12]}..."


run([test_dir_created_and_empty, test_files_dropped_in_are_served,
     test_unsupported_and_malformed_are_skipped, test_disable_and_delete_without_restart,
     test_no_secret_in_log])
