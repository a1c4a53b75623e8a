#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_upstream.py - a scriptable HTTP/1.1 upstream for the proxy-core tests.

Python standard library only (asyncio). Listens on 127.0.0.1 only; prints
"PORT <n>" on stdout once ready (pass --port 0 for a free port).

Endpoints (query parameters in brackets):
  POST|GET /v1/chat/completions   OpenAI-like: JSON, or SSE when the body has
                                  "stream": true [events=N, interval_ms=M, size=B]
  GET  /sse                       SSE stream [events, interval_ms, size, id=TAG]:
                                  each event carries its index and send time;
                                  [delay_ms=D] waits before the response head
  GET  /big                       bytes as fast as the client takes them [mb=N],
                                  text/event-stream so proxies stream it
  GET  /echo, POST /echo          JSON echo of method, path, query, headers, body
  GET  /_stats                    JSON: open connections, per-tag close times,
                                  bytes sent by the last /big
Every streamed response is chunked. The fake records when each tagged stream's
connection closed, so tests can check that a proxy dropped the upstream side.
"""
import argparse
import asyncio
import hashlib
import json
import resource
import sys
import time
from urllib.parse import parse_qs, urlsplit

from fakelib import read_request

STATS = {"open": 0, "closed": {}, "big_sent": 0, "requests": 0, "sent_sha256": {}}


def qint(q, name, default):
    try:
        return int(q.get(name, [default])[0])
    except ValueError:
        return default


def head(status, ctype, length=None, extra=""):
    h = f"HTTP/1.1 {status} OK\r\nContent-Type: {ctype}\r\nX-Fake: yes\r\n{extra}"
    h += f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (h + "\r\n").encode()


async def send_chunk(writer, data):
    writer.write(b"%x\r\n" % len(data) + data + b"\r\n")
    await writer.drain()


async def pause(reader, ms):
    """Sleeps, but ends the connection at once if the peer closes meanwhile (a real
    upstream notices a closed socket; a sleeping coroutine would not)."""
    try:
        data = await asyncio.wait_for(reader.read(1), ms / 1000.0)
    except asyncio.TimeoutError:
        return
    if not data:
        raise ConnectionError("peer closed")


async def stream_sse(reader, writer, q, tag):
    events, interval, size = qint(q, "events", 10), qint(q, "interval_ms", 0), qint(q, "size", 0)
    h = hashlib.sha256()
    if qint(q, "delay_ms", 0):
        await pause(reader, qint(q, "delay_ms", 0))
    writer.write(head(200, "text/event-stream"))
    for i in range(events):
        payload = json.dumps({"i": i, "t": time.time(), "pad": "x" * size})
        ev = f"id: {i}\ndata: {payload}\n\n".encode()
        h.update(ev)
        await send_chunk(writer, ev)
        if interval:
            await pause(reader, interval)
    done = b"data: [DONE]\n\n"
    h.update(done)
    await send_chunk(writer, done)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    if tag:
        STATS["sent_sha256"][tag] = h.hexdigest()


async def stream_big(writer, q):
    total = qint(q, "mb", 100) * 1024 * 1024
    block = b"data: " + b"y" * (64 * 1024 - 8) + b"\n\n"
    STATS["big_sent"] = 0
    writer.write(head(200, "text/event-stream"))
    sent = 0
    while sent < total:
        chunk = block[: min(len(block), total - sent)]
        await send_chunk(writer, chunk)
        sent += len(chunk)
        STATS["big_sent"] = sent
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def chat_json(body):
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        req = {}
    return req, {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": req.get("model", "fake-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from fake"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


async def handle(reader, writer):
    STATS["open"] += 1
    tag = None
    try:
        while True:
            req = await read_request(reader)
            if req is None:
                break
            STATS["requests"] += 1
            method, target, headers, body = req.method, req.target, req.headers, req.raw
            u = urlsplit(target)
            q = parse_qs(u.query)
            tag = q.get("id", [None])[0]
            if u.path == "/sse":
                await stream_sse(reader, writer, q, tag)
            elif u.path == "/big":
                await stream_big(writer, q)
            elif u.path == "/v1/chat/completions":
                creq, resp = chat_json(body)
                if creq.get("stream"):
                    await stream_sse(reader, writer, q, tag)
                else:
                    data = json.dumps(resp).encode()
                    writer.write(head(200, "application/json", len(data)) + data)
            elif u.path == "/echo":
                data = json.dumps({"method": method, "path": u.path, "query": u.query,
                                   "headers": headers, "body": body.decode("latin-1")}).encode()
                writer.write(head(200, "application/json", len(data)) + data)
            elif u.path == "/_stats":
                data = json.dumps(STATS).encode()
                writer.write(head(200, "application/json", len(data)) + data)
            else:
                data = b'{"error":{"message":"no such path","type":"not_found"}}'
                writer.write(head(404, "application/json", len(data)) + data)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        STATS["open"] -= 1
        if tag:
            STATS["closed"][tag] = time.time()
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    srv = await asyncio.start_server(handle, "127.0.0.1", args.port, backlog=4096)
    print("PORT", srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
