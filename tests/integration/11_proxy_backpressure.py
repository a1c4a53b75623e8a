#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proxy core, backpressure: a client that stops reading while the upstream offers
100 MB must not make the proxy buffer it: RSS stays within the pipe cap plus socket
buffers, and the upstream is held back; then the client reads it all, byte-exact."""
import socket
import time

from harness import run, sanitized, start_fake, start_passproxy, stats

fake = start_fake()
px = start_passproxy(fake.url, "--pipe-cap", "65536")
MB = 100


def test_slow_reader_bounded_memory():
    base = px.rss_kb()
    s = socket.create_connection(("127.0.0.1", px.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(b"GET /big?mb=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % MB)
    # read a little, then stall for 3 s while the upstream tries to push 100 MB
    got = s.recv(4096)
    time.sleep(3)
    held = stats(fake)["big_sent"]
    grow_kb = px.rss_kb() - base
    # upstream could only get as far as the socket buffers and the pipe allow
    assert held < 16 * 1024 * 1024, f"upstream sent {held} bytes to a stalled client"
    limit = 48 * 1024 if sanitized() else 16 * 1024
    assert grow_kb < limit, f"proxy RSS grew by {grow_kb} KiB while the client stalled"
    # now drain everything, slowly at first (64 KiB per 10 ms for 1 s), then at full speed
    total = len(got)
    t_end = time.time() + 1
    while time.time() < t_end:
        d = s.recv(65536)
        total += len(d)
        time.sleep(0.01)
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        total += len(d)
    s.close()
    peak_grow = px.rss_kb("VmHWM") - base
    print(f"  upstream held at {held} B while stalled; RSS growth {grow_kb} KiB; "
          f"peak growth {peak_grow} KiB; client got {total} B")
    assert stats(fake)["big_sent"] == MB * 1024 * 1024
    # response = head + chunked body; the payload alone is 100 MB
    assert total > MB * 1024 * 1024, total
    assert peak_grow < limit, f"peak RSS grew {peak_grow} KiB"


run([test_slow_reader_bounded_memory])
