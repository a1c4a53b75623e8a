#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_openai.py - a fake OpenAI-compatible upstream (what cliproxyd is to meterd) for the
meterd relay tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /v1/chat/completions   JSON, or SSE when "stream": true; the usage chunk (choices [])
                              only when stream_options.include_usage is true
  POST /v1/completions        legacy completions, same rules
  POST /v1/responses          Responses API; SSE usage in response.completed
  POST /v1/messages           Anthropic Messages; SSE usage in message_start / message_delta
  POST /v1/embeddings         one vector per input
  GET  /v1/models             a fixed list
Every answer carries X-Oneapi-Request-Id: up-<n>. Keys: "Authorization: Bearer <key>" or
"x-api-key: <key>"; when keys were registered (POST /_keys {"keys": [...]}) any other key
gets 401 invalid_api_key, else any non-empty key passes. The text of an answer is
"fake answer to: <last user text>", sent word by word in a stream. Usage defaults to
prompt 100, completion 20 (POST /_config {"prompt_tokens", "completion_tokens",
"cached_tokens", "events", "interval_ms", "delay_ms"} changes the defaults).

  POST /_script   {"<key>" | "*": [step, ...]} queues behaviours for the next requests with
                  that key ("*": any key); a step: {"status": 500, "message": "..."} (an
                  OpenAI error body), {"cut_after": N} (the stream closes after N content
                  events, no usage, no [DONE]), {"no_usage": true}, {"usage": {"prompt_tokens",
                  "completion_tokens", "cached_tokens"}}, {"events": N, "interval_ms": M},
                  {"delay_ms": D} (before the answer), {"ok": true}
  GET  /_requests every request seen: {"path", "headers" (lower-case), "body"}, newest last
  GET  /_stats    {"requests", "by_key": {key: {status: n}}, "aborted": n (streams the client
                  left), "open": n}
  POST /_reset    forgets requests, stats, scripts and config
"""
import asyncio
import json
import time

from fakelib import reply, serve, stream_chunk, stream_end

DEFAULTS = {"prompt_tokens": 100, "completion_tokens": 20, "cached_tokens": 0, "events": 0,
            "interval_ms": 0, "delay_ms": 0}
CONFIG = dict(DEFAULTS)
KEYS = set()
SCRIPT = {}
REQUESTS = []
STATS = {"requests": 0, "by_key": {}, "aborted": 0, "open": 0}
SEQ = [0]


def key_of(headers):
    a = headers.get("authorization", "")
    if a.lower().startswith("bearer "):
        return a[7:].strip()
    return headers.get("x-api-key", "").strip()


def count(key, status):
    by = STATS["by_key"].setdefault(key, {})
    by[str(status)] = by.get(str(status), 0) + 1


def last_text(body):
    """The last user text of any request shape."""
    def text_of(c):
        if isinstance(c, str):
            return c
        if isinstance(c, list):
            return " ".join(text_of(p.get("text", "")) if isinstance(p, dict) else str(p)
                            for p in c)
        return ""
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            return text_of(m.get("content"))
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    if isinstance(inp, list):
        for it in reversed(inp):
            if isinstance(it, dict) and it.get("role", "user") == "user":
                return text_of(it.get("content"))
    p = body.get("prompt")
    return p if isinstance(p, str) else "hello"


def next_step(key):
    for k in (key, "*"):
        q = SCRIPT.get(k)
        if q:
            return q.pop(0)
    return {}


def usage_of(step):
    u = dict(prompt_tokens=CONFIG["prompt_tokens"], completion_tokens=CONFIG["completion_tokens"],
             cached_tokens=CONFIG["cached_tokens"])
    u.update(step.get("usage") or {})
    return u


def openai_usage(u):
    return {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"]}}


def words(text, n):
    w = [x + " " for x in text.split(" ")]
    w[-1] = w[-1].rstrip(" ")
    while n and len(w) < n:
        w.append(" more")
    return w


def chat_events(model, text, u, include_usage, legacy, n, no_usage):
    base = {"id": "chatcmpl-fake", "object": "text_completion" if legacy else
            "chat.completion.chunk", "created": int(time.time()), "model": model}
    out = []
    for i, w in enumerate(words(text, n)):
        if legacy:
            ch = {"index": 0, "text": w, "logprobs": None, "finish_reason": None}
        else:
            ch = {"index": 0, "delta": ({"role": "assistant"} if i == 0 else {}) | {"content": w},
                  "finish_reason": None}
        out.append((None, dict(base, choices=[ch]), True))
    fin = {"index": 0, "finish_reason": "stop"}
    fin.update({"text": ""} if legacy else {"delta": {}})
    out.append((None, dict(base, choices=[fin]), False))
    if include_usage and not no_usage:
        out.append((None, dict(base, choices=[], usage=openai_usage(u)), False))
    out.append((None, "[DONE]", False))
    return out


def responses_events(model, text, u, n, no_usage):
    rid = "resp_fake"
    resp = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model,
            "status": "in_progress", "output": []}
    out = [("response.created", {"type": "response.created", "response": resp}, False)]
    for w in words(text, n):
        out.append(("response.output_text.delta", {"type": "response.output_text.delta",
                                                   "item_id": "msg_1", "output_index": 0,
                                                   "content_index": 0, "delta": w}, True))
    done = dict(resp, status="completed", output=[{
        "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}]}])
    if not no_usage:
        done["usage"] = {"input_tokens": u["prompt_tokens"], "output_tokens": u["completion_tokens"],
                         "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
                         "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
                         "output_tokens_details": {"reasoning_tokens": 0}}
    out.append(("response.completed", {"type": "response.completed", "response": done}, False))
    return out


def claude_events(model, text, u, n, no_usage):
    usage = {"input_tokens": u["prompt_tokens"], "output_tokens": 1,
             "cache_read_input_tokens": u["cached_tokens"], "cache_creation_input_tokens": 0}
    msg = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
           "content": [], "stop_reason": None, "stop_sequence": None}
    if not no_usage:
        msg["usage"] = usage
    out = [("message_start", {"type": "message_start", "message": msg}, False),
           ("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}, False),
           ("ping", {"type": "ping"}, False)]
    for w in words(text, n):
        out.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": w}}, True))
    out.append(("content_block_stop", {"type": "content_block_stop", "index": 0}, False))
    md = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    if not no_usage:
        md["usage"] = {"output_tokens": u["completion_tokens"]}
    out.append(("message_delta", md, False))
    out.append(("message_stop", {"type": "message_stop"}, False))
    return out


def whole(path, model, text, u, body, no_usage):
    if path == "/v1/chat/completions":
        r = {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
             "model": model, "choices": [{"index": 0, "message": {"role": "assistant",
                                                                "content": text},
                                          "finish_reason": "stop"}]}
        if not no_usage:
            r["usage"] = openai_usage(u)
    elif path == "/v1/completions":
        r = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
             "model": model, "choices": [{"text": text, "index": 0, "logprobs": None,
                                          "finish_reason": "stop"}]}
        if not no_usage:
            r["usage"] = openai_usage(u)
    elif path == "/v1/responses":
        r = responses_events(model, text, u, 0, no_usage)[-1][1]["response"]
    elif path == "/v1/messages":
        r = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
             "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
             "stop_sequence": None}
        if not no_usage:
            r["usage"] = {"input_tokens": u["prompt_tokens"], "output_tokens": u["completion_tokens"],
                          "cache_read_input_tokens": u["cached_tokens"],
                          "cache_creation_input_tokens": 0}
    else:  # embeddings
        inp = body.get("input")
        n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
        r = {"object": "list", "model": model,
             "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                      for i in range(n)]}
        if not no_usage:
            r["usage"] = {"prompt_tokens": u["prompt_tokens"], "total_tokens": u["prompt_tokens"]}
    return r


async def relay(req, writer):
    headers = req.headers
    key = key_of(headers)
    try:
        body = req.json()
    except ValueError:
        body = None
    REQUESTS.append({"path": req.path, "headers": dict(headers), "body": body})
    del REQUESTS[:-2000]
    STATS["requests"] += 1
    SEQ[0] += 1
    hdr = {"X-Oneapi-Request-Id": f"up-{SEQ[0]}"}
    if not key or (KEYS and key not in KEYS):
        count(key, 401)
        reply(writer, 401, {"error": {"message": "Incorrect API key provided", "type":
                                      "invalid_request_error", "code": "invalid_api_key"}},
              headers=hdr)
        return None
    if not isinstance(body, dict):
        count(key, 400)
        reply(writer, 400, {"error": {"message": "body is not JSON", "type":
                                      "invalid_request_error"}}, headers=hdr)
        return None
    step = next_step(key)
    delay = step.get("delay_ms", CONFIG["delay_ms"])
    if delay:
        await asyncio.sleep(delay / 1000.0)
    if step.get("status"):
        count(key, step["status"])
        reply(writer, step["status"], {"error": {"message": step.get("message", "scripted failure"),
                                                 "type": "server_error", "code": step.get("code")}},
              headers=hdr)
        return None
    model = body.get("model", "fake-model")
    text = "fake answer to: " + (last_text(body) or "hello")
    u = usage_of(step)
    no_usage = bool(step.get("no_usage") or step.get("cut_after") is not None)
    n = step.get("events", CONFIG["events"])
    interval = step.get("interval_ms", CONFIG["interval_ms"])
    if body.get("stream") and req.path != "/v1/embeddings":
        so = body.get("stream_options") or {}
        if req.path in ("/v1/chat/completions", "/v1/completions"):
            evs = chat_events(model, text, u, so.get("include_usage") is True,
                              req.path == "/v1/completions", n, no_usage)
        elif req.path == "/v1/responses":
            evs = responses_events(model, text, u, n, no_usage)
        else:
            evs = claude_events(model, text, u, n, no_usage)
        STATS["open"] += 1
        # the head carries the request id too
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Oneapi-Request-Id: "
                     f"up-{SEQ[0]}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        res = await sse_body(writer, evs, interval, step.get("cut_after"))
        STATS["open"] -= 1
        count(key, 200)
        return "close" if res != "ok" else None
    count(key, 200)
    reply(writer, 200, whole(req.path, model, text, u, body, no_usage), headers=hdr)
    return None


async def sse_body(writer, events, interval_ms, cut_after):
    n_content = 0
    try:
        for typ, data, content in events:
            if cut_after is not None and content and n_content >= cut_after:
                await writer.drain()
                return "cut"
            payload = data if isinstance(data, str) else json.dumps(data)
            ev = (f"event: {typ}\n" if typ else "") + f"data: {payload}\n\n"
            await stream_chunk(writer, ev.encode())
            if content:
                n_content += 1
                if interval_ms:
                    await asyncio.sleep(interval_ms / 1000.0)
        stream_end(writer)
        await writer.drain()
    except (ConnectionError, OSError):
        STATS["aborted"] += 1
        return "gone"
    return "ok"


async def handle(req, writer):
    path = req.path
    if req.method == "POST" and path in ("/v1/chat/completions", "/v1/completions",
                                         "/v1/responses", "/v1/messages", "/v1/embeddings"):
        return await relay(req, writer)
    body = {}
    if req.raw:
        try:
            body = req.json()
        except ValueError:
            body = {}
    if path == "/v1/models":
        reply(writer, 200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            for m in ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022",
                      "text-embedding-3-small")]})
    elif path == "/_keys":
        KEYS.update(body.get("keys", []))
        reply(writer, 200, {"ok": True})
    elif path == "/_config":
        CONFIG.update(body)
        reply(writer, 200, CONFIG)
    elif path == "/_script":
        for k, steps in body.items():
            SCRIPT.setdefault(k, []).extend(steps)
        reply(writer, 200, {"ok": True})
    elif path == "/_requests":
        reply(writer, 200, REQUESTS)
    elif path == "/_stats":
        reply(writer, 200, STATS)
    elif path == "/_reset":
        REQUESTS.clear()
        SCRIPT.clear()
        KEYS.clear()
        CONFIG.clear()
        CONFIG.update(DEFAULTS)
        STATS.update({"requests": 0, "by_key": {}, "aborted": 0})
        reply(writer, 200, {"ok": True})
    else:
        reply(writer, 404, {"error": {"type": "not_found", "message": path}})
    return None


if __name__ == "__main__":
    serve(handle)
