#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_proxy.py - a forward proxy for tests: HTTP (absolute-form requests and
CONNECT) and SOCKS5 (no auth, CONNECT, IPv4 / domain names) on one port, told apart
by the first byte. Standard library only; listens on 127.0.0.1 and only connects to
127.0.0.1 (anything else is refused). Prints "PORT <n>" when ready. GET /_proxy_stats
(sent to the proxy itself, origin-form) returns JSON counts of what it relayed.
"""
import argparse
import asyncio
import json
import sys
from urllib.parse import urlsplit

STATS = {"http": 0, "connect": 0, "socks5": 0, "refused": 0, "targets": []}


async def pipe(r, w):
    try:
        while True:
            d = await r.read(65536)
            if not d:
                break
            w.write(d)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass


async def relay(cr, cw, host, port, first=b""):
    if host not in ("127.0.0.1", "localhost"):
        STATS["refused"] += 1
        return False
    ur, uw = await asyncio.open_connection("127.0.0.1", port)
    STATS["targets"].append(f"{host}:{port}")
    if first:
        uw.write(first)
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
    return True


async def socks5(r, w):
    n = (await r.readexactly(1))[0]
    await r.readexactly(n)  # methods
    w.write(b"\x05\x00")
    ver, cmd, _, atyp = await r.readexactly(4)
    if atyp == 1:
        host = ".".join(str(b) for b in await r.readexactly(4))
    elif atyp == 3:
        host = (await r.readexactly((await r.readexactly(1))[0])).decode()
    else:
        w.write(b"\x05\x08\x00\x01" + b"\0" * 6)
        return
    port = int.from_bytes(await r.readexactly(2), "big")
    if cmd != 1 or host not in ("127.0.0.1", "localhost"):
        STATS["refused"] += 1
        w.write(b"\x05\x02\x00\x01" + b"\0" * 6)
        await w.drain()
        return
    STATS["socks5"] += 1
    w.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
    await w.drain()
    await relay(r, w, host, port)


async def http_proxy(r, w, first):
    line = first + await r.readline()
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    head = b""
    while True:
        h = await r.readline()
        head += h
        if h in (b"\r\n", b"\n", b""):
            break
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
        STATS["connect"] += 1
        w.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await w.drain()
        await relay(r, w, host, int(port))
        return
    if target.startswith("/_proxy_stats"):
        body = json.dumps(STATS).encode()
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await w.drain()
        w.close()
        return
    u = urlsplit(target)
    STATS["http"] += 1
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    first_bytes = f"{method} {path} {version}\r\n".encode() + head
    await relay(r, w, u.hostname, u.port or 80, first_bytes)


async def handle(r, w):
    try:
        b = await r.readexactly(1)
        if b == b"\x05":
            await socks5(r, w)
        else:
            await http_proxy(r, w, b)
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    srv = await asyncio.start_server(handle, "127.0.0.1", ap.parse_args().port)
    print("PORT", srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
