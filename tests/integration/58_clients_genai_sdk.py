#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Client test: the official `@google/genai` npm SDK (tests/clients/google_genai.test.mjs)
against cliproxyd with a Gemini CLI credential in front of the fake Code Assist endpoint:
generateContent, generateContentStream, a function-call round trip, countTokens, models.list
and an upstream error, with the cliproxyd api-key sent as x-goog-api-key. The fake checks
every Gemini CLI wire rule; none may be broken."""
import fcntl
import os
import subprocess

from cpd_env import gemini_cred, get, start
from harness import SRC, TMP, ensure_sdks, run, start_fake

CLIENTS = os.path.join(SRC, "tests/clients")
KEY = "sk-client-sdk-genai-0123456789"


def ensure_genai():
    ensure_sdks()
    with open(os.path.join(TMP, "..", "npm-ci.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(CLIENTS, "node_modules", "@google", "genai")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=CLIENTS, check=True, timeout=600)


def test_genai_sdk_on_gemini_cli():
    ensure_genai()
    fake = start_fake("fake_gemini.py")
    auth = os.path.join(TMP, "sdk-genai-auths")
    os.makedirs(auth, exist_ok=True)
    _, tok = gemini_cred(fake, auth, "sdk", "proj-sdk")
    p, base = start("cliproxyd-sdk-genai", KEY, auth,
                    {"gemini": {"base-url": fake.url, "token-url": fake.url + "/token"}})
    env = dict(os.environ, CLIPROXY_URL=base, CLIPROXY_KEY=KEY, FAKE_GEMINI_URL=fake.url)
    r = subprocess.run(["node", "--test", "google_genai.test.mjs"], cwd=CLIENTS, env=env,
                       capture_output=True, text=True, timeout=120)
    print(r.stdout[-6000:], r.stderr[-2000:])
    assert r.returncode == 0, "SDK tests failed"
    assert get(fake, "stats")["violations"] == [], get(fake, "stats")["violations"]
    sent = [x for x in get(fake, "requests") if x["path"].startswith("/v1internal:")]
    assert any(x["path"] == "/v1internal:streamGenerateContent" for x in sent)
    assert any(x["path"] == "/v1internal:countTokens" for x in sent)
    assert p.stop() == 0
    log = open(p.log, "rb").read()
    assert tok.encode() not in log and KEY.encode() not in log


run([test_genai_sdk_on_gemini_cli])
