#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proxy core, limits: an oversized body gets a 413 JSON error (by Content-Length
and by chunked upload), oversized headers 431, malformed request lines and headers
a 4xx; the process survives all of it and still serves."""
import json
import socket

from harness import http, run, start_fake, start_passproxy

fake = start_fake()
px = start_passproxy(fake.url, "--max-body", "100000", "--max-header", "4096")


def raw(data, read_timeout=5):
    s = socket.create_connection(("127.0.0.1", px.port), timeout=read_timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def status_of(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/") else 0


def test_body_over_cap_content_length():
    st, h, body = http("POST", px.url + "/echo", b"x" * 100001, {"Content-Type": "text/plain"})
    assert st == 413, st
    assert h["content-type"] == "application/json"
    e = json.loads(body)["error"]
    assert e["code"] == "request_too_large" and "100000" in e["message"]


def test_body_over_cap_chunked():
    chunk = b"x" * 50000
    req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
           (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"0\r\n\r\n")
    resp = raw(req)
    assert status_of(resp) == 413, resp[:200]
    assert b'"request_too_large"' in resp


def test_body_at_cap_passes():
    st, _, body = http("POST", px.url + "/echo", b"y" * 100000, {"Content-Type": "text/plain"})
    assert st == 200 and len(json.loads(body)["body"]) == 100000


def test_headers_over_cap():
    resp = raw(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    assert status_of(resp) == 431, resp[:200]


def test_huge_headers_beyond_memory_pool():
    resp = raw(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
    assert 400 <= status_of(resp) < 500 or resp == b"", resp[:200]


def test_malformed():
    for bad in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nNoColonHeader\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
        resp = raw(bad, read_timeout=2)
        st = status_of(resp)
        assert resp == b"" or 400 <= st < 600, (bad, resp[:200])
        assert px.alive(), bad


def test_still_serving():
    st, _, body = http("POST", px.url + "/v1/chat/completions", {"model": "after"})
    assert st == 200 and json.loads(body)["model"] == "after"
    assert px.alive()


run([test_body_over_cap_content_length, test_body_over_cap_chunked, test_body_at_cap_passes,
     test_headers_over_cap, test_huge_headers_beyond_memory_pool, test_malformed,
     test_still_serving])
