#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_faulty.py - an upstream that misbehaves on command, for fault-injection tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready. Two shapes:

  POST /backend-api/codex/responses   Codex (Responses SSE, always streamed; the healthy answer
                                      is fake_codex.py's: "fake answer to: <last user text>",
                                      usage 42/17 in response.completed)
  POST /v1/chat/completions           OpenAI chat (JSON, or SSE when "stream": true; the
                                      healthy answer is oaichat.py's "fake faulty answer to: ..")
Any Bearer key is accepted (this fake is about faults, not wire rules: fake_codex.py and
fake_compat.py check those).

Faults are scripted per upstream model name (the "model" of the request body):

  POST /_script  {"<model>" | "*": [step, ...]}  queues steps: each request of that model
                 takes the next one (then "*"'s, then healthy)
  POST /_always  {"<model>" | "*": step | null}  a step for every request once the queue is
                 empty (null: healthy again)
  GET  /_stats   {"requests": n, "by_model": {model: {fault: n}}, "open": connections now}
  POST /_reset   forgets scripts, "always" steps and stats

A step is {"fault": NAME, ...params}:
  ok                         the healthy answer
  refuse                     the connection is reset (RST) as soon as the request is read:
                             not one byte of answer
  status      status=N       N with an OpenAI-style JSON error body (408, 429, 500, 502, 503..);
                             retry_after=S adds Retry-After
  reset       after=N        the head and the first N SSE events (non-stream chat: half the
                             body), then RST
  stall_first seconds=S      nothing for S seconds, then the healthy answer
  stall_between seconds=S at=K   the first K events (non-stream: half the body), S seconds of
                             silence, then the rest
  malformed   after=N        N good events, then garbage (lines that are not SSE, data that
                             is not JSON or of the wrong shape), then a clean end of the
                             stream without its terminal event; non-stream chat: a 200
                             application/json body that is HTML
  malformed_mid              the healthy stream with garbage events between the good ones
  truncated   after=N        N good events, then the next one cut in the middle of its JSON,
                             then a clean end; non-stream chat: the JSON body cut in half
                             (Content-Length says so)
  error200                   a 200 application/json {"error": {...}} (to a stream request too)
  error_event after=N        N good events, then the shape's in-stream error (Codex
                             response.failed, chat data: {"error": ...}), then the end
  huge        mb=M kind=...  kind "event" (default): one valid text delta of M MiB (20);
                             "line": M MiB of one SSE line that never ends, then the end;
                             "error": a 500 whose body is M MiB
  invalid_utf8               the healthy answer with invalid UTF-8 bytes inside the text
  drip        interval_ms=I slow_bytes=B fast_ms=F   the healthy answer one byte at a time
                             (head included; each body byte its own chunk): the first B
                             bytes (default all) every I ms (100), the rest every F ms (1)
"""
import asyncio
import json
import socket
import struct

import oaichat
from fake_codex import response_events
from fakelib import reply, serve, stream_chunk, stream_end, stream_head

QUEUE, ALWAYS = {}, {}
STATS = {"requests": 0, "by_model": {}, "open": 0}
GARBAGE = [b"this line is not SSE at all\n\n", b"data: {not json\n\n",
           b"event: response.output_text.delta\ndata: [1, 2\n\n", b": a comment only\n\n",
           b"data\n\n", b"data: \"a string\"\n\n", b"data: null\n\n", b"data: {}\n\n",
           b"data: {\"type\": 5, \"choices\": \"x\"}\n\n",
           b"data: {\"choices\": [{\"delta\": 5, \"index\": \"zero\"}]}\n\n",
           b"data: {\"type\": \"response.output_text.delta\", \"delta\": {\"no\": 1}}\n\n",
           b"\x00\x01\x02 binary \xff\xfe\n\n", b"id: 1\nretry: x\n\n"]
BAD_UTF8 = b"bad \xff\xfe bytes \xc0\xaf overlong \xed\xa0\x80 surrogate \xe2\x82 cut"


def rst(writer):
    """Closes with a TCP reset (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def pick(model):
    for k in (model, "*"):
        if QUEUE.get(k):
            return QUEUE[k].pop(0)
    for k in (model, "*"):
        if ALWAYS.get(k):
            return ALWAYS[k]
    return {"fault": "ok"}


def frames_of(shape, body):
    """The healthy answer as SSE frames (bytes), or None for a non-stream chat answer."""
    if shape == "codex":
        return list(response_events(body))
    if not body.get("stream"):
        return None
    out = [f"data: {json.dumps(c)}\n\n".encode() for c in oaichat.chunks(body, "faulty")]
    return out + [b"data: [DONE]\n\n"]


def error_obj(status, msg):
    etype = {408: "timeout", 429: "rate_limit_error"}.get(status, "server_error")
    return {"error": {"message": msg, "type": etype, "code": None}}


def utf8_bad_frames(shape, body):
    """A healthy stream whose text deltas carry invalid UTF-8."""
    return [_inject(f, BAD_UTF8.decode("latin-1")) for f in frames_of(shape, body)]


def _inject(frame, bad):
    """Puts the raw bad bytes into the first delta string of @frame (escaping nothing)."""
    head, sep, rest = frame.partition(b"data: ")
    try:
        obj = json.loads(rest)
    except ValueError:
        return frame
    marker = "@@BAD@@"
    if obj.get("type") == "response.output_text.delta":
        obj["delta"] = marker + obj["delta"]
    elif obj.get("choices") and isinstance(obj["choices"][0].get("delta"), dict) \
            and obj["choices"][0]["delta"].get("content"):
        obj["choices"][0]["delta"]["content"] = marker + obj["choices"][0]["delta"]["content"]
    else:
        return frame
    return head + sep + json.dumps(obj).replace(marker, "\x00").encode().replace(
        b"\x00", bad.encode("latin-1")) + b"\n\n"


async def send_frames(writer, frames):
    for f in frames:
        await stream_chunk(writer, f)


async def drip(writer, raw_head, body_bytes, chunked, step):
    slow, iv = step.get("slow_bytes", 1 << 62), step.get("interval_ms", 100) / 1000
    fast = step.get("fast_ms", 1) / 1000
    n = 0
    for i in range(len(raw_head)):
        writer.write(raw_head[i:i + 1])
        await writer.drain()
        n += 1
        await asyncio.sleep(iv if n <= slow else fast)
    for i in range(len(body_bytes)):
        b = body_bytes[i:i + 1]
        writer.write(b"1\r\n" + b + b"\r\n" if chunked else b)
        await writer.drain()
        n += 1
        await asyncio.sleep(iv if n <= slow else fast)
    if chunked:
        writer.write(b"0\r\n\r\n")


async def answer(shape, req, writer, body, step):
    """Plays @step; returns "close" when the connection must end."""
    f = step.get("fault", "ok")
    frames = frames_of(shape, body)
    nonstream = frames is None
    full = json.dumps(oaichat.completion(body, "faulty")).encode() if nonstream else None
    after = step.get("after", 3)
    if f == "refuse":
        rst(writer)
        return "close"
    if f == "status":
        st = step.get("status", 500)
        hdr = {"Retry-After": str(step["retry_after"])} if "retry_after" in step else None
        reply(writer, st, error_obj(st, f"fake faulty {st}"), headers=hdr)
        return None
    if f == "error200":
        reply(writer, 200, error_obj(500, "fake faulty error in a 200"))
        return None
    if f == "stall_first":
        await asyncio.sleep(step.get("seconds", 2))
        f = "ok"
    if f == "huge":
        size = int(step.get("mb", 20) * (1 << 20))
        kind = step.get("kind", "event")
        if kind == "error":
            reply(writer, 500, b'{"error":{"message":"' + b"x" * size + b'"}}')
            return None
        if nonstream:
            big = oaichat.completion(body, "faulty")
            big["choices"][0]["message"]["content"] = "x" * size
            reply(writer, 200, json.dumps(big).encode())
            return None
        stream_head(writer)
        await send_frames(writer, frames[:after])
        if kind == "line":
            line = b"data: " + b"y" * size
            for i in range(0, len(line), 1 << 20):
                await stream_chunk(writer, line[i:i + (1 << 20)])
            stream_end(writer)
            return None
        if shape == "codex":
            ev = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                  "content_index": 0, "delta": "x" * size}
            data = f"event: response.output_text.delta\ndata: {json.dumps(ev)}\n\n".encode()
        else:
            c = json.loads(frames[1][6:])
            c["choices"][0]["delta"] = {"content": "x" * size}
            data = f"data: {json.dumps(c)}\n\n".encode()
        for i in range(0, len(data), 1 << 20):
            await stream_chunk(writer, data[i:i + (1 << 20)])
        await send_frames(writer, frames[after:])
        stream_end(writer)
        return None
    if f == "invalid_utf8":
        if nonstream:
            reply(writer, 200, full.replace(b"fake", BAD_UTF8, 1))
            return None
        stream_head(writer)
        await send_frames(writer, utf8_bad_frames(shape, body))
        stream_end(writer)
        return None
    if f == "drip":
        if nonstream:
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(full)}\r\n\r\n").encode()
            await drip(writer, head, full, False, step)
        else:
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            await drip(writer, head, b"".join(frames), True, step)
        return None
    if nonstream:
        half = full[:len(full) // 2]
        if f == "reset":
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(full)}\r\n\r\n".encode() + half)
            await writer.drain()
            await asyncio.sleep(0.05)
            rst(writer)
            return "close"
        if f == "stall_between":
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(full)}\r\n\r\n".encode() + half)
            await writer.drain()
            await asyncio.sleep(step.get("seconds", 2))
            writer.write(full[len(half):])
            return None
        if f == "malformed":
            reply(writer, 200, b"<html><body>502 Bad Gateway</body></html>")
            return None
        if f == "truncated":
            reply(writer, 200, half)
            return None
        if f in ("error_event", "error200"):
            reply(writer, 200, error_obj(500, "fake faulty error in a 200"))
            return None
        reply(writer, 200, full)  # ok, malformed_mid
        return None
    stream_head(writer)
    if f == "reset":
        await send_frames(writer, frames[:after])
        await asyncio.sleep(0.05)
        rst(writer)
        return "close"
    if f == "stall_between":
        at = step.get("at", after)
        await send_frames(writer, frames[:at])
        await asyncio.sleep(step.get("seconds", 2))
        await send_frames(writer, frames[at:])
    elif f == "malformed":
        await send_frames(writer, frames[:after] + GARBAGE)
    elif f == "malformed_mid":
        mixed = []
        for i, fr in enumerate(frames):
            mixed += [fr, GARBAGE[i % len(GARBAGE)]]
        await send_frames(writer, mixed)
    elif f == "truncated":
        nxt = frames[after] if after < len(frames) else frames[-1]
        await send_frames(writer, frames[:after] + [nxt[:len(nxt) // 2] + b"\n\n"])
    elif f == "error_event":
        if shape == "codex":
            ev = {"type": "response.failed", "response": {
                "id": "resp_failed", "object": "response", "status": "failed",
                "error": {"code": "server_error", "message": "fake faulty response.failed"}}}
            err = f"event: response.failed\ndata: {json.dumps(ev)}\n\n".encode()
        else:
            err = f"data: {json.dumps(error_obj(500, 'fake faulty in-stream error'))}\n\n".encode()
        await send_frames(writer, frames[:after] + [err])
    else:
        await send_frames(writer, frames)
    stream_end(writer)
    return None


async def handle(req, writer):
    p = req.path
    if req.method == "POST" and (p.endswith("/codex/responses") or p.endswith("/chat/completions")):
        shape = "codex" if p.endswith("/codex/responses") else "chat"
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            reply(writer, 400, error_obj(400, "body is not a JSON object"))
            return None
        model = str(body.get("model", "?"))
        step = pick(model)
        STATS["requests"] += 1
        by = STATS["by_model"].setdefault(model, {})
        by[step.get("fault", "ok")] = by.get(step.get("fault", "ok"), 0) + 1
        STATS["open"] += 1
        try:
            return await answer(shape, req, writer, body, step)
        finally:
            STATS["open"] -= 1
    if p == "/_script":
        for k, steps in req.json().items():
            QUEUE.setdefault(k, []).extend(steps)
    elif p == "/_always":
        ALWAYS.update(req.json())
    elif p == "/_stats":
        reply(writer, 200, STATS)
        return None
    elif p == "/_reset":
        QUEUE.clear()
        ALWAYS.clear()
        STATS.update(requests=0, by_model={})
    elif p == "/v1/models":
        reply(writer, 200, {"object": "list", "data": []})
        return None
    else:
        reply(writer, 404, error_obj(404, "no route " + p))
        return None
    reply(writer, 200, {"ok": True})
    return None


if __name__ == "__main__":
    serve(handle)
