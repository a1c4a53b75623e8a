# SPDX-License-Identifier: MIT
"""fakelib.py - what the provider fakes share: a minimal HTTP/1.1 server loop over asyncio
(keep-alive, Content-Length and chunked request bodies), JSON replies, chunked streaming,
JWT building and xxHash64 (for Claude's cch body signature). Standard library only."""
import asyncio
import base64
import json
import sys
from urllib.parse import urlsplit, parse_qs

M64 = (1 << 64) - 1
_P1, _P2, _P3, _P4, _P5 = (11400714785074694791, 14029467366897019727, 1609587929392839161,
                           9650029242287828579, 2870177450012600261)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, v):
    return (_rotl((acc + v * _P2) & M64, 31) * _P1) & M64


def xxh64(data, seed=0):
    """xxHash64 (checked against Debian's xxhsum in tests/integration/31_*)."""
    n, i = len(data), 0
    u64 = lambda o: int.from_bytes(data[o:o + 8], "little")
    if n >= 32:
        v = [(seed + _P1 + _P2) & M64, (seed + _P2) & M64, seed & M64, (seed - _P1) & M64]
        while i + 32 <= n:
            v = [_round(v[k], u64(i + 8 * k)) for k in range(4)]
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * _P1 + _P4) & M64
    else:
        h = (seed + _P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, u64(i)), 27) * _P1 + _P4) & M64
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ (int.from_bytes(data[i:i + 4], "little") * _P1 & M64), 23) * _P2 + _P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * _P5 & M64), 11) * _P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * _P2) & M64
    h ^= h >> 29
    h = (h * _P3) & M64
    return h ^ (h >> 32)


def jwt(claims):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.sig"


class Request:
    def __init__(self, method, target, headers, counts, raw):
        self.method, self.target, self.headers, self.counts, self.raw = (
            method, target, headers, counts, raw)
        u = urlsplit(target)
        self.path, self.query = u.path, parse_qs(u.query)

    def json(self):
        return json.loads(self.raw) if self.raw else {}


async def read_request(reader):
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers, counts = {}, {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        k = k.strip().lower()
        counts[k] = counts.get(k, 0) + 1
        headers[k] = v.strip()
    raw = b""
    if "content-length" in headers:
        raw = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            raw += await reader.readexactly(size)
            await reader.readline()
    return Request(method, target, headers, counts, raw)


def reply(writer, status, obj, ctype="application/json", headers=None):
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}"
                 f"\r\n{extra}\r\n".encode() + data)


def stream_head(writer, ctype="text/event-stream"):
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n".encode())


async def stream_chunk(writer, data):
    writer.write(b"%x\r\n" % len(data) + data + b"\r\n")
    await writer.drain()


def stream_end(writer):
    writer.write(b"0\r\n\r\n")


def serve(handler):
    """Runs handler(req, writer) -> (coroutine) for each request; returning "close" ends
    the connection. Listens on 127.0.0.1 (--port, default free) and prints PORT <n>."""
    import argparse

    async def conn(reader, writer):
        try:
            while True:
                req = await read_request(reader)
                if req is None:
                    break
                if await handler(req, writer) == "close":
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--port", type=int, default=0)
        srv = await asyncio.start_server(conn, "127.0.0.1", ap.parse_args().port)
        print("PORT", srv.sockets[0].getsockname()[1], flush=True)
        async with srv:
            await srv.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
