#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_claude.py - a fake Anthropic Messages API and Claude OAuth token endpoint for tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /v1/messages?beta=true     checks the Claude wire rules of
                                  ../shared/spec/cliproxyapi.md section 8 (headers, betas,
                                  stream headers, max_tokens, <= 4 cache_control blocks, and,
                                  when the request is cloaked, the billing header with a valid
                                  cch xxHash64 signature, the Claude Code system line and the
                                  metadata.user_id shape); a violation is answered 400
                                  {"type":"error","error":{"type":"fake_wire_check",...}}.
                                  Answers Messages SSE (stream) or a message JSON.
  POST /v1/oauth/token            refresh_token grant (JSON), as Anthropic's endpoint does.
  POST /_accounts                 {"<token>": {"account": "...", "refresh_token": "...",
                                  "expires": unix}} registers tokens.
  POST /_script                   {"<account>": [step, ...]}: {"status": 429, "retry_after": N}
                                  | {"status": 429, "unified_reset": unix} | {"status": 529}
                                  | {"status": 400, "extra_usage": true} | {"cut": true}
                                  | {"status": 500|503|401|403} | {"ok": true}
  GET  /_requests, GET /_stats    what was received, counts, wire violations.
Answers "fake claude answer to: <last user text>"; a tool_use block when tools are offered
and the last user text contains "call_tool"; a thinking block when thinking is enabled.
"""
import json
import re
import time
import uuid

from fakelib import reply, serve, stream_chunk, stream_end, stream_head, xxh64

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
CCH_SEED = 0x6E52736AC806831E
CLAUDE_CODE_LINE = "You are Claude Code, Anthropic's official CLI for Claude."
USER_ID_RE = re.compile(r"^user_[a-f0-9]{64}_account_[0-9a-f-]{36}_session_[0-9a-f-]{36}$")
ACCOUNTS, REFRESH, SCRIPT, REQUESTS = {}, {}, {}, []
SESSIONS = {}  # token -> X-Claude-Code-Session-Id seen first
STATS = {"by_account": {}, "violations": [], "refreshes": 0}


def count_cache_control(body):
    n = 0
    for part in ("system", "tools"):
        for b in body.get(part) or [] if isinstance(body.get(part), list) else []:
            n += "cache_control" in b
    for m in body.get("messages") or []:
        if isinstance(m.get("content"), list):
            n += sum("cache_control" in c for c in m["content"] if isinstance(c, dict))
    return n


def check_cloak(raw, body, v):
    sys_blocks = body.get("system") if isinstance(body.get("system"), list) else []
    first = sys_blocks[0].get("text", "") if sys_blocks else ""
    if not first.startswith("x-anthropic-billing-header:"):
        return False
    if "cc_version=" not in first or "cc_entrypoint=" not in first:
        v.append("billing header has cc_version= and cc_entrypoint=")
    m = re.search(rb"cch=([0-9a-f]{5});", raw)
    if not m:
        v.append("billing header carries cch=<5 hex>;")
    else:
        zeroed = raw[:m.start(1)] + b"00000" + raw[m.end(1):]
        want = "%05x" % (xxh64(zeroed, CCH_SEED) & 0xFFFFF)
        if m.group(1).decode() != want:
            v.append(f"cch signature valid (got {m.group(1).decode()}, want {want})")
    if len(sys_blocks) < 2 or sys_blocks[1].get("text") != CLAUDE_CODE_LINE:
        v.append("system[1] is the Claude Code line")
    uid = (body.get("metadata") or {}).get("user_id", "")
    if not USER_ID_RE.match(uid):
        v.append("metadata.user_id is user_<64hex>_account_<uuid>_session_<uuid>")
    return True


def wire_check(req, body, token):
    h, v = req.headers, []
    if req.query.get("beta") != ["true"]:
        v.append("query beta=true")
    oauth = "sk-ant-oat" in token
    if req.counts.get("authorization", 0) != 1 and oauth:
        v.append("exactly one Authorization: Bearer header")
    if oauth and "x-api-key" in h:
        v.append("no x-api-key with an OAuth token")
    if h.get("anthropic-version") != "2023-06-01":
        v.append("Anthropic-Version: 2023-06-01")
    betas = [b.strip() for b in h.get("anthropic-beta", "").split(",")]
    for need in ["claude-code-20250219", "interleaved-thinking-2025-05-14"] + (
            ["oauth-2025-04-20"] if oauth else []):
        if need not in betas:
            v.append(f"Anthropic-Beta includes {need}")
    for k, want in (("x-app", "cli"), ("x-stainless-lang", "js"), ("x-stainless-runtime", "node"),
                    ("x-stainless-retry-count", "0"), ("x-stainless-timeout", "600")):
        if h.get(k) != want:
            v.append(f"{k}: {want}")
    sess = h.get("x-claude-code-session-id")
    if not sess:
        v.append("X-Claude-Code-Session-Id present")
    elif SESSIONS.setdefault(token, sess) != sess:
        v.append("X-Claude-Code-Session-Id stable per credential")
    if not re.match(r"^claude-cli/[0-9.]+ \(", h.get("user-agent", "")):
        v.append("User-Agent claude-cli/<ver> (...)")
    if body.get("stream"):
        if h.get("accept") != "text/event-stream" or h.get("accept-encoding") != "identity":
            v.append("stream: Accept: text/event-stream and Accept-Encoding: identity")
    if not isinstance(body.get("max_tokens"), int):
        v.append("max_tokens present")
    if "(" in body.get("model", "("):
        v.append("model present with the (...) suffix stripped")
    if count_cache_control(body) > 4:
        v.append("at most 4 cache_control blocks")
    check_cloak(req.raw, body, v)
    return v


def last_user_text(body):
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            for p in reversed(c or []):  # the last text block: a proxy may put reminders first
                if p.get("type") == "text":
                    return p.get("text", "")
    return ""


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def message_blocks(body):
    blocks = []
    if (body.get("thinking") or {}).get("type") == "enabled":
        blocks.append({"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"})
    text = last_user_text(body)
    if body.get("tools") and "call_tool" in text:
        blocks.append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:10],
                       "name": body["tools"][0]["name"], "input": {"city": "Paris"}})
    else:
        blocks.append({"type": "text", "text": f"fake claude answer to: {text}"})
    return blocks


USAGE = {"input_tokens": 30, "cache_read_input_tokens": 12, "cache_creation_input_tokens": 0,
         "output_tokens": 9}


def stream_events(body, blocks):
    mid = "msg_" + uuid.uuid4().hex[:12]
    start = {"id": mid, "type": "message", "role": "assistant", "model": body["model"],
             "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": dict(USAGE, output_tokens=1)}
    yield sse("message_start", {"type": "message_start", "message": start})
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield sse("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "text", "text": ""}})
            for k in range(0, len(b["text"]), 6):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                  "delta": {"type": "text_delta",
                                                            "text": b["text"][k:k + 6]}})
        elif b["type"] == "thinking":
            yield sse("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "thinking",
                                                                "thinking": ""}})
            yield sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "thinking_delta",
                                                        "thinking": b["thinking"]}})
            yield sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "signature_delta",
                                                        "signature": b["signature"]}})
        else:
            yield sse("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": dict(b, input={})})
            js = json.dumps(b["input"])
            for part in (js[:5], js[5:]):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                  "delta": {"type": "input_json_delta",
                                                            "partial_json": part}})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": i})
    stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
    yield sse("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": stop, "stop_sequence": None},
                                "usage": {"output_tokens": USAGE["output_tokens"]}})
    yield sse("message_stop", {"type": "message_stop"})


def error_body(etype, msg):
    return {"type": "error", "error": {"type": etype, "message": msg}}


async def messages(req, writer):
    token = req.headers.get("authorization", "")[7:] or req.headers.get("x-api-key", "")
    acct = ACCOUNTS.get(token)
    if not acct or acct.get("expires", 1e18) < time.time():
        reply(writer, 401, error_body("authentication_error", "OAuth token has expired."))
        return 401
    try:
        body = req.json()
    except ValueError:
        reply(writer, 400, error_body("invalid_request_error", "body is not JSON"))
        return 400
    REQUESTS.append({"headers": dict(req.headers), "query": req.query, "body": body})
    v = wire_check(req, body, token)
    name = acct["account"]
    if v:
        STATS["violations"].append({"account": name, "rules": v})
        reply(writer, 400, error_body("fake_wire_check", "; ".join(v)))
        return 400
    steps = SCRIPT.get(name) or []
    step = steps.pop(0) if steps else {"ok": True}
    st = step.get("status")
    if st == 429:
        hdrs = {}
        if "retry_after" in step:
            hdrs["Retry-After"] = str(step["retry_after"])
        if "unified_reset" in step:
            hdrs["anthropic-ratelimit-unified-status"] = "rejected"
            hdrs["anthropic-ratelimit-unified-reset"] = str(step["unified_reset"])
        reply(writer, 429, error_body("rate_limit_error", "Rate limited"), headers=hdrs)
        return 429
    if st == 400 and step.get("extra_usage"):
        reply(writer, 400, error_body("invalid_request_error",
                                      "You're out of extra usage. Add more at claude.ai."))
        return 400
    if st:
        etype = {529: "overloaded_error", 401: "authentication_error",
                 403: "permission_error"}.get(st, "api_error")
        reply(writer, st, error_body(etype, f"fake {st}"))
        return st
    blocks = message_blocks(body)
    if not body.get("stream"):
        stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        reply(writer, 200, {"id": "msg_" + uuid.uuid4().hex[:12], "type": "message",
                            "role": "assistant", "model": body["model"], "content": blocks,
                            "stop_reason": stop, "stop_sequence": None, "usage": USAGE})
        return 200
    stream_head(writer)
    events = list(stream_events(body, blocks))
    if step.get("cut"):
        events = events[:-2]  # no message_delta / message_stop
    for ev in events:
        await stream_chunk(writer, ev)
    if step.get("cut"):
        return -1
    stream_end(writer)
    return 200


def token_endpoint(req, writer):
    try:
        body = req.json()
    except ValueError:
        body = {}
    bad = []
    if req.headers.get("content-type", "").split(";")[0] != "application/json":
        bad.append("JSON content type")
    if body.get("grant_type") != "refresh_token" or body.get("client_id") != CLIENT_ID:
        bad.append("grant_type=refresh_token and the Claude Code client_id")
    if bad:
        STATS["violations"].append({"refresh": bad})
        reply(writer, 400, {"error": "invalid_request", "error_description": "; ".join(bad)})
        return
    name = REFRESH.pop(body.get("refresh_token"), None)
    if name is None:
        reply(writer, 400, {"error": "invalid_grant", "error_description": "unknown token"})
        return
    STATS["refreshes"] += 1
    access, refresh = "sk-ant-oat01-" + uuid.uuid4().hex, "sk-ant-ort01-" + uuid.uuid4().hex
    ACCOUNTS[access] = {"account": name, "expires": time.time() + 28800}
    REFRESH[refresh] = name
    reply(writer, 200, {"access_token": access, "refresh_token": refresh,
                        "token_type": "Bearer", "expires_in": 28800,
                        "account": {"email_address": f"{name}@example.com"}})


async def handle(req, writer):
    if req.path == "/v1/messages" and req.method == "POST":
        st = await messages(req, writer)
        if st == -1:
            return "close"
        name = (ACCOUNTS.get(req.headers.get("authorization", "")[7:]) or {}).get("account", "?")
        by = STATS["by_account"].setdefault(name, {})
        by[str(st)] = by.get(str(st), 0) + 1
    elif req.path == "/v1/oauth/token" and req.method == "POST":
        token_endpoint(req, writer)
    elif req.path == "/_accounts":
        for tok, a in req.json().items():
            ACCOUNTS[tok] = a
            if a.get("refresh_token"):
                REFRESH[a["refresh_token"]] = a["account"]
        reply(writer, 200, {"ok": True})
    elif req.path == "/_script":
        for name, steps in req.json().items():
            SCRIPT.setdefault(name, []).extend(steps)
        reply(writer, 200, {"ok": True})
    elif req.path == "/_requests":
        reply(writer, 200, REQUESTS)
    elif req.path == "/_stats":
        reply(writer, 200, STATS)
    else:
        reply(writer, 404, error_body("not_found_error", req.path))
    return None


if __name__ == "__main__":
    serve(handle)
