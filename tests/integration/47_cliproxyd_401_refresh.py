#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A 401 from the upstream triggers one refresh-and-retry: a Codex credential whose stored
token the backend has revoked (the file says it is valid for weeks, so no scheduled refresh
would touch it) is refreshed on the 401 and the same request is retried with the new token;
the client sees 200 and the file is rewritten (0600). A credential whose refresh fails for
good after a 401 is marked needs re-login, the request fails over to another credential,
and the revoked one gets no more traffic. With only a revoked-and-unrefreshable credential
left the client gets the upstream's 401. No token is logged."""
import json
import os
import stat
import time

from harness import jwt, BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
KEY = "sk-client-401-0123456789abcdef"
fake = start_fake("fake_codex.py")
AUTH = os.path.join(TMP, "auths-401")
os.makedirs(AUTH, exist_ok=True)
SECRETS = [KEY]


def account(name, fake_valid):
    """An auth file valid for 30 days; the fake accepts its token only if fake_valid."""
    at, rt = f"at-{name}-0123456789abcdef", f"rt-{name}-0123456789abcdef"
    SECRETS.extend([at, rt])
    http("POST", fake.url + "/_accounts",
         {at: {"account_id": "acct-" + name, "refresh_token": rt,
               "expires": time.time() + (86400 if fake_valid else -10)}})
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    path = os.path.join(AUTH, f"codex-{name}@example.com-pro.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"type": "codex", "email": f"{name}@example.com", "access_token": at,
                   "refresh_token": rt, "expired": exp,
                   "id_token": jwt({"email": f"{name}@example.com",
                                    "https://api.openai.com/auth": {
                                        "chatgpt_account_id": "acct-" + name,
                                        "chatgpt_plan_type": "pro"}})}, f)
    os.rename(tmp, path)
    return path, at


stale, stale_at = account("stale", False)
port = free_port()
cfg = os.path.join(TMP, "c401.yaml")
with open(cfg, "w") as f:
    f.write(f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{AUTH}"\napi-keys:\n  - "{KEY}"\n'
            f"upstreams:\n  codex:\n    base-url: \"{fake.url}/backend-api/codex\"\n"
            f"    token-url: \"{fake.url}/oauth/token\"\n")
proc = Proc("cliproxyd-401", [BIN, "-config", cfg], check_exit=True)
wait_port(port, proc)
URL = f"http://127.0.0.1:{port}/v1/chat/completions"
H = {"Authorization": "Bearer " + KEY}


def chat(text="hi", stream=False):
    return http("POST", URL, {"model": "gpt-5-codex", "stream": stream,
                              "messages": [{"role": "user", "content": text}]}, H)


def stats():
    return json.loads(http("GET", fake.url + "/_stats")[2])


def test_401_refreshes_and_retries_same_request():
    st, _, body = chat("first")
    assert st == 200, body
    assert b"fake answer to: first" in body
    reqs = json.loads(http("GET", fake.url + "/_requests")[2])
    inf = reqs  # the fake records inference calls only
    assert len(inf) == 2, len(inf)  # the 401, then the retry
    assert inf[0]["headers"]["authorization"] == "Bearer " + stale_at
    d = json.load(open(stale))
    assert d["access_token"] != stale_at
    assert inf[1]["headers"]["authorization"] == "Bearer " + d["access_token"]
    assert stat.S_IMODE(os.stat(stale).st_mode) == 0o600
    assert stats()["refreshes"] == 1 and stats()["violations"] == []
    SECRETS.extend([d["access_token"], d["refresh_token"]])


def test_stream_after_401_too():
    d = json.load(open(stale))
    http("POST", fake.url + "/_accounts",  # revoke the refreshed token as well
         {d["access_token"]: {"account_id": "acct-stale", "expires": time.time() - 1}})
    st, _, body = chat("streamed", stream=True)
    assert st == 200, body
    text = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content", "")
                   for l in body.decode().split("\n") if l.startswith("data: {"))
    assert text == "fake answer to: streamed", body
    assert body.rstrip().endswith(b"data: [DONE]"), body
    assert stats()["refreshes"] == 2
    d = json.load(open(stale))
    SECRETS.extend([d["access_token"], d["refresh_token"]])


def test_unrefreshable_401_fails_over_and_needs_login():
    gone, _ = account("gone", False)
    http("POST", fake.url + "/_script", {"acct-gone": [{"refresh": "reused"}]})
    time.sleep(1.2)  # the watcher picks the new file up
    for i in range(4):
        st, _, body = chat(f"n{i}")
        assert st == 200, body
    by = stats()["by_account"]
    assert by.get("acct-gone", {}).get("401", 0) == 1, by  # tried once, then never again
    assert b"needs a new login" in open(proc.log, "rb").read()


def test_only_unrefreshable_left_gives_401():
    os.unlink(stale)
    time.sleep(1.2)
    st, _, body = chat("nobody")
    assert st in (401, 503), (st, body)


def test_no_token_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in SECRETS:
        assert s.encode() not in log, f"secret in log: {s[:8]}..."


run([test_401_refreshes_and_retries_same_request, test_stream_after_401_too,
     test_unrefreshable_401_fails_over_and_needs_login, test_only_unrefreshable_left_gives_401,
     test_no_token_in_log])
