#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proxy core, outbound proxies: the client core reaches the upstream through an HTTP
proxy and through SOCKS5 (socks5:// and socks5h://), streaming and not; the fake proxy
confirms the traffic went through it; a dead proxy is a clean 502."""
import hashlib
import json

from harness import http, run, start_fake, start_passproxy, stats

fake = start_fake()
fproxy = start_fake("fake_proxy.py")


def proxy_stats():
    return json.loads(http("GET", fproxy.url + "/_proxy_stats")[2])


def through(proxy_url, kind):
    before = proxy_stats()[kind]
    px = start_passproxy(fake.url, "--proxy", proxy_url)
    st, _, body = http("POST", px.url + "/v1/chat/completions", {"model": kind})
    assert st == 200 and json.loads(body)["model"] == kind, (st, body[:200])
    st, _, body = http("GET", px.url + f"/sse?events=20&id={kind}")
    assert st == 200
    assert hashlib.sha256(body).hexdigest() == stats(fake)["sent_sha256"][kind]
    assert proxy_stats()[kind] > before, f"nothing went through the {kind} proxy"
    px.stop()


def test_http_proxy():
    through(fproxy.url, "http")


def test_socks5():
    through(fproxy.url.replace("http://", "socks5://"), "socks5")


def test_socks5h():
    before = proxy_stats()["socks5"]
    px = start_passproxy(fake.url.replace("127.0.0.1", "localhost"), "--proxy",
                         fproxy.url.replace("http://", "socks5h://"))
    st, _, body = http("POST", px.url + "/v1/chat/completions", {"model": "h"})
    assert st == 200 and json.loads(body)["model"] == "h"
    assert proxy_stats()["socks5"] > before
    assert "localhost:%d" % fake.port in proxy_stats()["targets"]
    px.stop()


def test_dead_proxy():
    px = start_passproxy(fake.url, "--proxy", "socks5://127.0.0.1:1")
    st, h, body = http("POST", px.url + "/v1/chat/completions", {"model": "x"})
    assert st == 502 and json.loads(body)["error"]["type"] == "upstream_error", (st, body)
    px.stop()


run([test_http_proxy, test_socks5, test_socks5h, test_dead_proxy])
