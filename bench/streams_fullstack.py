#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""streams_fullstack.py BUILD_DIR [N] - hold N chat streams open at once through cliproxyd
(openai-compatibility entry -> tests/fakes/fake_openai.py, streams of 3 events 4 s apart)
and then through meterd -> cliproxyd -> the same fake; report each daemon's RSS with all N
open and its peak, and how many opened. Loopback only; N is bounded by RLIMIT_NOFILE (each
daemon holds 2 fds per stream). Used by bench/fullstack.sh."""
import asyncio
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
os.environ["CM_BUILD_DIR"] = os.path.abspath(sys.argv[1])
import cpd_env  # noqa: E402
from harness import TMP, http, start_fake  # noqa: E402
from meterd_env import Meterd  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
KEY, MODEL = "sk-bench-streams-0123456789abcdef", "stream-model"


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


async def one(port, key, opened, all_open, n):
    body = json.dumps({"model": MODEL, "stream": True,
                       "messages": [{"role": "user", "content": "hold"}]}).encode()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}"
                 f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n").encode() + body)
        await w.drain()
        await r.readuntil(b"\n\n")
        opened[0] += 1
        if opened[0] == n:
            all_open.set()
        rest = await r.read()
        w.close()
        return rest.rstrip().endswith(b"0") or b"[DONE]" in rest
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return False


async def hold(port, key, pids, n):
    opened, all_open = [0], asyncio.Event()
    t0 = time.time()
    tasks = [asyncio.create_task(one(port, key, opened, all_open, n)) for _ in range(n)]
    try:
        await asyncio.wait_for(all_open.wait(), 60)
    except asyncio.TimeoutError:
        pass
    t_open = time.time() - t0
    at_open = {name: rss(pid, "VmRSS") for name, pid in pids.items()}
    ok = sum(1 for x in await asyncio.gather(*tasks) if x)
    return opened[0], t_open, at_open, ok


fake = start_fake("fake_openai.py")
http("POST", fake.url + "/_config", {"events": 3, "interval_ms": 4000})
auth = os.path.join(TMP, "auth")
os.makedirs(auth)
cpd, cpd_url = cpd_env.start("cliproxyd-streams", KEY, auth, extra=f"""openai-compatibility:
  - name: "fake"
    base-url: "{fake.url}/v1"
    api-key-entries:
      - api-key: "sk-up-bench-0123456789"
    models:
      - name: "{MODEL}"
        alias: "{MODEL}"
""")
m = Meterd("meterd-streams")
uid = m.add_user("streams", 10**13)
m.add_token(uid, "S" + "s" * 47, unlimited=1)
m.set_option("ModelRatio", json.dumps({MODEL: 1}))
m.add_channel("cpd", cpd_url, KEY, MODEL)
m.wait_caches()
cport = int(cpd_url.rsplit(":", 1)[1])
base = {"cliproxyd": rss(cpd.pid, "VmRSS"), "meterd": rss(m.proc.pid, "VmRSS")}
for label, port, key, pids in (
        ("cliproxyd -> fake", cport, KEY, {"cliproxyd": cpd.pid}),
        ("meterd -> cliproxyd -> fake", m.port, "sk-S" + "s" * 47,
         {"meterd": m.proc.pid, "cliproxyd": cpd.pid})):
    opened, t_open, at_open, ok = asyncio.run(hold(port, key, pids, N))
    rs = ", ".join(f"{k} {base[k]:.0f} -> {v:.0f} MiB (peak {rss(pids[k], 'VmHWM'):.0f})"
                   for k, v in at_open.items())
    print(f"| {label} | {N} | {opened} in {t_open:.1f} s | {ok} | {rs} |", flush=True)
m.proc.stop()
cpd.stop()
fake.stop()
