#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""streams_rss.py PASSPROXY [N] - hold N SSE streams open through passproxy at once
and report its RSS (peak and while all are open) and CPU time. Loopback only."""
import asyncio
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from harness import Proc, free_port, start_fake, wait_port  # noqa: E402

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


async def stream(port, i, opened, all_open):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET /sse?events=40&interval_ms=100&size=200 HTTP/1.1\r\nHost: x\r\n"
            f"Connection: close\r\n\r\n".encode())
    await w.drain()
    first = await r.readuntil(b"\n\n")
    opened.append(i)
    if len(opened) == N:
        all_open.set()
    rest = await r.read()
    w.close()
    return len(first) + len(rest)


async def main(port, pid):
    opened, all_open = [], asyncio.Event()
    base = rss(pid, "VmRSS")
    cpu0 = cpu_s(pid)
    t0 = time.time()
    tasks = [asyncio.create_task(stream(port, i, opened, all_open)) for i in range(N)]
    await asyncio.wait_for(all_open.wait(), 60)
    open_rss = rss(pid, "VmRSS")
    t_open = time.time() - t0
    sizes = await asyncio.gather(*tasks)
    ok = sum(1 for s in sizes if s > 40 * 200)
    print(f"streams: {N} open at once after {t_open:.1f} s, {ok}/{N} completed")
    print(f"passproxy RSS: idle {base:.1f} MiB, with {N} streams open {open_rss:.1f} MiB, "
          f"peak {rss(pid, 'VmHWM'):.1f} MiB (target < 100 MiB)")
    print(f"passproxy CPU: {cpu_s(pid) - cpu0:.2f} s for {N} streams x 41 events "
          f"({(cpu_s(pid) - cpu0) / N * 1e6:.0f} us per stream)")


fake = start_fake()
port = free_port()
px = Proc("passproxy", [BIN, "--listen", f"127.0.0.1:{port}", "--upstream", fake.url])
wait_port(port, px)
try:
    asyncio.run(main(port, px.pid))
finally:
    px.stop()
    fake.stop()
