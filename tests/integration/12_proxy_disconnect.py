#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proxy core, disconnect: a client that goes away mid-stream makes the proxy close
the upstream connection within 1 s, whether the upstream is busy sending (seen on
the next write) or quiet (seen by the watchdog of suspended connections); a client
that leaves before the response head arrives cancels the upstream request too."""
import socket
import time

from harness import run, start_fake, start_passproxy, stats

fake = start_fake()
px = start_passproxy(fake.url)


def leave_after_first_event(query, tag):
    s = socket.create_connection(("127.0.0.1", px.port))
    s.sendall(b"GET /sse?%s&id=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (query.encode(), tag.encode()))
    buf = b""
    while b"\n\n" not in buf:
        buf += s.recv(4096)
    s.close()
    return time.time()


def wait_closed(tag, t_close, limit=1.0):
    end = t_close + 3
    while time.time() < end:
        c = stats(fake)["closed"].get(tag)
        if c:
            return c - t_close
        time.sleep(0.02)
    raise AssertionError(f"upstream connection {tag} still open 3 s after the client left")


def test_busy_upstream():
    t = leave_after_first_event("events=100000&interval_ms=20", "busy")
    lag = wait_closed("busy", t)
    print(f"  busy upstream closed {lag * 1000:.0f} ms after the client")
    assert lag < 1.0, lag


def test_quiet_upstream():
    # one event, then 10 s of silence: only the watchdog can notice the client leaving
    t = leave_after_first_event("events=3&interval_ms=10000", "quiet")
    lag = wait_closed("quiet", t)
    print(f"  quiet upstream closed {lag * 1000:.0f} ms after the client")
    assert lag < 1.0, lag


def test_leave_before_head():
    # the fake sends the head only after 10 s, so the client leaves first, while the
    # request is suspended waiting for the upstream head
    s = socket.create_connection(("127.0.0.1", px.port))
    s.sendall(b"POST /v1/chat/completions?events=2&delay_ms=10000&id=early HTTP/1.1\r\n"
              b"Host: x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
              b'{"stream": true}')
    time.sleep(0.3)
    s.close()
    t = time.time()
    lag = wait_closed("early", t)
    assert lag < 1.0, lag


def test_proxy_still_serves_and_no_leak():
    fds0 = px.nfds()
    for i in range(20):
        leave_after_first_event("events=100000&interval_ms=5", f"leak{i}")
    time.sleep(1.0)
    assert px.alive()
    open_up = stats(fake)["open"]
    assert open_up <= 2, f"{open_up} upstream connections still open"
    assert px.nfds() <= fds0 + 2, (fds0, px.nfds())


run([test_busy_upstream, test_quiet_upstream, test_leave_before_head,
     test_proxy_still_serves_and_no_leak])
