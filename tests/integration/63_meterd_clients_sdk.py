#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Client test: the official `openai` and `@anthropic-ai/sdk` npm SDKs
(tests/clients/meterd_sdk.test.mjs) against meterd's relay with tests/fakes/fake_openai.py
as the channel: chat, responses, embeddings, messages, streamed and not, models, errors.
Then every SDK call must have been billed: one consume log row per successful call, the
user's balance down by exactly their sum."""
import json
import os
import subprocess

from harness import SRC, ensure_sdks, http, run, start_fake
from meterd_env import Meterd

CLIENTS = os.path.join(SRC, "tests/clients")


def test_sdks_against_meterd():
    ensure_sdks()
    fake = start_fake("fake_openai.py")
    m = Meterd("meterd-sdk")
    m.set_option("ModelRatio", json.dumps({"gpt-4o": 1.25, "claude-3-5-sonnet-20241022": 1.5,
                                           "text-embedding-3-small": 0.01}))
    m.add_channel("sdk-chan", fake.url, "sk-up-sdk",
                  "gpt-4o,claude-3-5-sonnet-20241022,text-embedding-3-small")
    uid = m.add_user("sdkuser", 5_000_000)
    key = "S" * 48
    m.add_token(uid, key, remain_quota=4_000_000)
    poor = m.add_user("sdkpoor", 0)
    m.add_token(poor, "P" * 48, remain_quota=1000)
    m.wait_caches()
    env = dict(os.environ, METERD_URL=m.url, METERD_KEY="sk-" + key,
               METERD_POOR_KEY="sk-" + "P" * 48, FAKE_URL=fake.url)
    r = subprocess.run(["node", "--test", "meterd_sdk.test.mjs"], cwd=CLIENTS, env=env,
                       capture_output=True, text=True, timeout=180)
    print(r.stdout[-4000:], r.stderr[-2000:])
    assert r.returncode == 0, "SDK tests failed"
    rows = m.sql("SELECT quota, is_stream, model_name FROM logs WHERE user_id=? AND type=2",
                 (uid,))
    # chat x3, responses x2, embeddings, messages x2
    assert len(rows) == 8, rows
    assert sum(1 for q, s, _ in rows if s) == 4
    total = sum(q for q, _, _ in rows)
    assert m.one("SELECT quota FROM users WHERE id=?", (uid,))[0] == 5_000_000 - total
    assert m.one("SELECT remain_quota FROM tokens WHERE user_id=?", (uid,))[0] == \
        4_000_000 - total
    assert json.loads(http("GET", fake.url + "/_stats")[2])["by_key"]["sk-up-sdk"]["200"] >= 8


run([test_sdks_against_meterd])
