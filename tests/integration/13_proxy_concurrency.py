#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proxy core, concurrency: 1,000 streaming requests open at once through the proxy
all complete, each byte-exact; afterwards no connection or fd is left behind."""
import asyncio
import hashlib
import resource
import time

from harness import run, sanitized, start_fake, start_passproxy, stats

N = 1000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fake = start_fake()
px = start_passproxy(fake.url)


async def one(i, opened, start):
    r, w = await asyncio.open_connection("127.0.0.1", px.port)
    tag = f"c{i}"
    # every stream stays open for >= 1.5 s (30 events, 50 ms apart), so all 1,000 overlap
    w.write(f"GET /sse?events=30&interval_ms=50&size=100&id={tag} HTTP/1.1\r\nHost: x\r\n"
            f"Connection: close\r\n\r\n".encode())
    await w.drain()
    raw = await r.read()
    w.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head[:100]
    # undo chunked encoding
    payload, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        payload += rest[:size]
        rest = rest[size + 2:]
    return tag, hashlib.sha256(payload).hexdigest()


async def all_streams():
    opened = []
    t0 = time.time()
    res = await asyncio.gather(*[one(i, opened, t0) for i in range(N)], return_exceptions=True)
    return res, time.time() - t0


def test_thousand_streams():
    fds0 = px.nfds()
    res, secs = asyncio.run(all_streams())
    errors = [r for r in res if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} streams failed, first: {errors[0]!r}"
    sent = stats(fake)["sent_sha256"]
    bad = [tag for tag, h in res if sent.get(tag) != h]
    assert not bad, f"{len(bad)} streams differ from what the upstream sent: {bad[:5]}"
    peak = px.rss_kb("VmHWM")
    print(f"  {N} streams in {secs:.1f} s; proxy peak RSS {peak / 1024:.1f} MiB"
          f"{' (ASan build)' if sanitized() else ''}")
    assert secs < 60, secs
    if not sanitized():
        assert peak < 100 * 1024, f"peak RSS {peak} KiB for {N} streams"
    time.sleep(0.5)
    # what stays open is curl's keep-alive cache of idle upstream connections (256 at
    # most), one fd per connection the upstream still holds: nothing else may remain
    idle_up = stats(fake)["open"] - 1  # minus the /_stats request itself
    extra = px.nfds() - fds0
    print(f"  after: {extra} extra fds in the proxy, {idle_up} idle upstream connections")
    assert idle_up <= 256, idle_up
    assert extra <= idle_up + 2, (fds0, px.nfds(), idle_up)


run([test_thousand_streams])
