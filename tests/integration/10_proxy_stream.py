#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proxy core, streaming: each SSE event reaches the client while the upstream is
still sending (not batched to the end), and the bytes are exactly the upstream's."""
import hashlib
import http.client
import json
import time

from harness import http as call, run, start_fake, start_passproxy, stats

fake = start_fake()
px = start_passproxy(fake.url)


def test_events_arrive_as_sent():
    conn = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
    conn.request("GET", "/sse?events=8&interval_ms=250&id=s1")
    r = conn.getresponse()
    assert r.status == 200, r.status
    assert r.getheader("content-type").startswith("text/event-stream")
    assert r.getheader("cache-control") == "no-cache"
    raw = b""
    lags = []
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        now = time.time()
        raw += chunk
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            data = [l[6:] for l in ev.split(b"\n") if l.startswith(b"data: ")][0]
            if data != b"[DONE]":
                lags.append(now - json.loads(data)["t"])
    conn.close()
    assert len(lags) == 8, lags
    # upstream waits 250 ms between events: each must arrive long before the next is sent
    assert max(lags) < 0.15, f"event delivery lags {lags}"
    assert hashlib.sha256(raw).hexdigest() == stats(fake)["sent_sha256"]["s1"], "bytes differ"


def test_many_small_events_byte_exact():
    st, _, body = call("GET", px.url + "/sse?events=500&size=300&id=s2")
    assert st == 200
    assert body.count(b"\n\n") == 501
    assert hashlib.sha256(body).hexdigest() == stats(fake)["sent_sha256"]["s2"]


def test_json_and_echo():
    st, h, body = call("POST", px.url + "/v1/chat/completions", {"model": "m1"},
                       {"Content-Type": "application/json", "Authorization": "Bearer sk-test"})
    assert st == 200 and json.loads(body)["model"] == "m1"
    assert "x-request-id" in h and h.get("x-fake") == "yes"
    st, _, body = call("POST", px.url + "/echo?q=1&r=a%20b", b"hello body",
                       {"X-Custom": "v1", "Content-Type": "text/plain"})
    e = json.loads(body)
    # what the upstream received: same method, path, query, body and end-to-end headers
    assert e["method"] == "POST" and e["path"] == "/echo" and e["query"] == "q=1&r=a%20b"
    assert e["body"] == "hello body" and e["headers"]["x-custom"] == "v1"
    assert "expect" not in e["headers"]


def test_upstream_down_gives_json_502():
    dead = start_passproxy("http://127.0.0.1:1")
    st, h, body = call("GET", dead.url + "/anything")
    assert st == 502, st
    assert h["content-type"] == "application/json"
    assert json.loads(body)["error"]["type"] == "upstream_error"
    dead.stop()


run([test_events_arrive_as_sent, test_many_small_events_byte_exact, test_json_and_echo,
     test_upstream_down_gives_json_502])
