#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_codex.py - a fake ChatGPT Codex backend and OpenAI token endpoint for tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /backend-api/codex/responses   the inference endpoint. Checks every Codex wire rule of
                                      ../shared/spec/cliproxyapi.md section 8; a violation is
                                      answered 400 {"error":{"type":"fake_wire_check",...}}
                                      and recorded. Answers a Responses SSE stream.
  POST /oauth/token                   refresh_token grant (form), as auth.openai.com does.
  POST /_accounts                     {"<access_token>": {"account_id": "...", "expires": unix}}
                                      registers tokens the fake accepts (merged).
  POST /_script                       {"account_id": [step, ...]} queues behaviours for the
                                      next requests of that account; a step is one of
                                      {"status": 429, "resets_in_seconds": N} | {"status": 429,
                                      "resets_at": unix} | {"status": 503|408|500|502|504|401|403}
                                      | {"cut": true} (stream closed before response.completed)
                                      | {"cut_after": N} (closed after the first N events)
                                      | {"refresh": "reused"} (next refresh answers
                                      refresh_token_reused) | {"ok": true}
  GET  /_requests                     every request seen (headers, parsed body), newest last
  GET  /_stats                        counts per account and status, wire violations
Responses: text "fake answer to: <last user text>"; a function_call when tools are offered
and the last user text contains "call_tool"; reasoning summary deltas when
reasoning.effort is "high"; usage in response.completed.
"""
import json
import time
import uuid
from urllib.parse import parse_qs

from fakelib import jwt, reply, serve, stream_chunk, stream_end, stream_head

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
FORBIDDEN = ["previous_response_id", "prompt_cache_retention", "safety_identifier",
             "stream_options", "temperature", "top_p", "max_output_tokens",
             "max_completion_tokens", "truncation", "user"]
ACCOUNTS = {}   # access_token -> {"account_id", "expires"}
REFRESH = {}    # refresh_token -> account_id
SCRIPT = {}     # account_id -> [steps]
REFRESH_SCRIPT = {}
REQUESTS = []
STATS = {"by_account": {}, "violations": [], "refreshes": 0}


def id_token_for(account_id, email="user@example.com", plan="plus"):
    return jwt({"email": email, "https://api.openai.com/auth": {
        "chatgpt_account_id": account_id, "chatgpt_plan_type": plan}})


def wire_check(h, body):
    """Returns a list of rule violations (spec section 8, Codex)."""
    v = []
    auth = h.get("authorization", "")
    if not auth.startswith("Bearer ") or h.get("_authorization_count", 1) != 1:
        v.append("exactly one Authorization: Bearer header")
    if h.get("accept") != "text/event-stream":
        v.append("Accept: text/event-stream")
    if h.get("content-type", "").split(";")[0] != "application/json":
        v.append("Content-Type: application/json")
    if not h.get("originator"):
        v.append("Originator header (codex-tui unless the client sent one)")
    if not h.get("user-agent", "").startswith("codex-tui/") and not h.get("_ua_configured"):
        v.append("User-Agent codex-tui/...")
    if body.get("stream") is not True:
        v.append("stream: true")
    if body.get("store") is not False:
        v.append("store: false")
    if not isinstance(body.get("instructions"), str):
        v.append("instructions present (string)")
    if body.get("include") != ["reasoning.encrypted_content"]:
        v.append('include: ["reasoning.encrypted_content"]')
    if body.get("parallel_tool_calls") is not True:
        v.append("parallel_tool_calls: true")
    r = body.get("reasoning") or {}
    if r.get("summary") != "auto" or not r.get("effort"):
        v.append("reasoning.summary auto and reasoning.effort present")
    for k in FORBIDDEN:
        if k in body:
            v.append(f"no {k}")
    if "service_tier" in body and body["service_tier"] != "priority":
        v.append("service_tier only if priority")
    model = body.get("model", "")
    if not model or "(" in model:
        v.append("model present with the (...) suffix stripped")
    inp = body.get("input")
    if not isinstance(inp, list):
        v.append("input is an array")
    else:
        for it in inp:
            if it.get("type", "message") == "message" and it.get("role") not in (
                    "user", "assistant", "developer"):
                v.append(f"message role {it.get('role')!r} not in user|assistant|developer")
            if it.get("type") in ("function_call", "function_call_output") and not it.get("call_id"):
                v.append(f"{it.get('type')} without call_id")
    sess = h.get("session_id") or h.get("session-id")
    if sess is not None and body.get("prompt_cache_key") != sess:
        v.append("session header equals prompt_cache_key")
    return v


def last_user_text(body):
    for it in reversed(body.get("input") or []):
        if it.get("role") == "user":
            for c in it.get("content") or []:
                if isinstance(c, dict) and c.get("type") == "input_text":
                    return c.get("text", "")
            if isinstance(it.get("content"), str):
                return it["content"]
    return ""


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def response_events(body):
    rid = "resp_" + uuid.uuid4().hex[:12]
    model = body.get("model")
    base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model,
            "status": "in_progress", "output": []}
    yield sse("response.created", {"type": "response.created", "response": base})
    yield sse("response.in_progress", {"type": "response.in_progress", "response": base})
    items = []
    idx = 0
    if (body.get("reasoning") or {}).get("effort") == "high":
        rs = {"id": "rs_1", "type": "reasoning", "summary": []}
        yield sse("response.output_item.added", {"type": "response.output_item.added",
                                                 "output_index": idx, "item": rs})
        for part in ("Thinking ", "it over."):
            yield sse("response.reasoning_summary_text.delta", {
                "type": "response.reasoning_summary_text.delta", "item_id": "rs_1",
                "output_index": idx, "summary_index": 0, "delta": part})
        rs["summary"] = [{"type": "summary_text", "text": "Thinking it over."}]
        yield sse("response.reasoning_summary_text.done", {
            "type": "response.reasoning_summary_text.done", "item_id": "rs_1",
            "output_index": idx, "summary_index": 0, "text": "Thinking it over."})
        yield sse("response.output_item.done", {"type": "response.output_item.done",
                                                "output_index": idx, "item": rs})
        items.append(rs)
        idx += 1
    text = last_user_text(body)
    if body.get("tools") and "call_tool" in text:
        name = body["tools"][0].get("name", "tool")
        fc = {"id": "fc_1", "type": "function_call", "call_id": "call_" + uuid.uuid4().hex[:8],
              "name": name, "arguments": "", "status": "in_progress"}
        yield sse("response.output_item.added", {"type": "response.output_item.added",
                                                 "output_index": idx, "item": dict(fc)})
        args = '{"city":"Paris"}'
        for part in (args[:8], args[8:]):
            yield sse("response.function_call_arguments.delta", {
                "type": "response.function_call_arguments.delta", "item_id": "fc_1",
                "output_index": idx, "delta": part})
        fc.update(arguments=args, status="completed")
        yield sse("response.function_call_arguments.done", {
            "type": "response.function_call_arguments.done", "item_id": "fc_1",
            "output_index": idx, "arguments": args})
        yield sse("response.output_item.done", {"type": "response.output_item.done",
                                                "output_index": idx, "item": fc})
        items.append(fc)
    else:
        answer = f"fake answer to: {text}"
        msg = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress",
               "content": []}
        yield sse("response.output_item.added", {"type": "response.output_item.added",
                                                 "output_index": idx, "item": dict(msg)})
        for i in range(0, len(answer), 7):
            yield sse("response.output_text.delta", {
                "type": "response.output_text.delta", "item_id": "msg_1", "output_index": idx,
                "content_index": 0, "delta": answer[i:i + 7]})
        yield sse("response.output_text.done", {"type": "response.output_text.done",
                                                "item_id": "msg_1", "output_index": idx,
                                                "content_index": 0, "text": answer})
        msg.update(status="completed", content=[{"type": "output_text", "text": answer,
                                                 "annotations": []}])
        yield sse("response.output_item.done", {"type": "response.output_item.done",
                                                "output_index": idx, "item": msg})
        items.append(msg)
    done = dict(base, status="completed", output=items, usage={
        "input_tokens": 42, "input_tokens_details": {"cached_tokens": 10},
        "output_tokens": 17, "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 59})
    yield sse("response.completed", {"type": "response.completed", "response": done})


async def responses(writer, headers, body):
    """Answers one inference request; returns its status, or -1 when it cut the stream."""
    token = headers.get("authorization", "")[7:]
    acct = ACCOUNTS.get(token)
    if not acct or acct.get("expires", 1e18) < time.time():
        reply(writer, 401, {"error": {"message": "Your authentication token has been invalidated",
                                      "type": "invalid_request_error",
                                      "code": "token_invalidated"}})
        return 401
    aid = acct["account_id"]
    v = wire_check(headers, body)
    if headers.get("chatgpt-account-id") != aid:
        v.append("Chatgpt-Account-Id equals the JWT chatgpt_account_id")
    if v:
        STATS["violations"].append({"account": aid, "rules": v})
        reply(writer, 400, {"error": {"type": "fake_wire_check", "message": "; ".join(v)}})
        return 400
    steps = SCRIPT.get(aid) or []
    step = steps.pop(0) if steps else {"ok": True}
    st = step.get("status")
    if st == 429:
        err = {"type": "usage_limit_reached", "message": "The usage limit has been reached"}
        for k in ("resets_in_seconds", "resets_at"):
            if k in step:
                err[k] = step[k]
        reply(writer, 429, {"error": err})
        return 429
    if st:
        reply(writer, st, {"error": {"type": "server_error", "message": f"fake {st}"}})
        return st
    stream_head(writer)
    events = list(response_events(body))
    if step.get("cut"):
        events = events[:-1]  # no response.completed
    if "cut_after" in step:
        events = events[:step["cut_after"]]
    for ev in events:
        await stream_chunk(writer, ev)
    if step.get("cut") or "cut_after" in step:
        return -1  # abrupt end: the connection closes without the terminating chunk
    stream_end(writer)
    return 200


def token_endpoint(writer, headers, body):
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    bad = []
    if headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        bad.append("form content type")
    if form.get("grant_type") != "refresh_token" or form.get("client_id") != CLIENT_ID:
        bad.append("grant_type=refresh_token and the Codex client_id")
    if form.get("scope") != "openid profile email":
        bad.append("scope=openid profile email")
    if bad:
        STATS["violations"].append({"refresh": bad})
        reply(writer, 400, {"error": "invalid_request", "error_description": "; ".join(bad)})
        return
    aid = REFRESH.get(form.get("refresh_token"))
    if aid is None:
        reply(writer, 400, {"error": "invalid_grant", "error_description": "unknown token"})
        return
    if REFRESH_SCRIPT.pop(aid, None) == "reused":
        reply(writer, 400, {"error": {"message": "refresh token already used",
                                      "code": "refresh_token_reused"}})
        return
    STATS["refreshes"] += 1
    new_access, new_refresh = "at-" + uuid.uuid4().hex, "rt-" + uuid.uuid4().hex
    ACCOUNTS[new_access] = {"account_id": aid, "expires": time.time() + 864000}
    del REFRESH[form["refresh_token"]]
    REFRESH[new_refresh] = aid
    reply(writer, 200, {"access_token": new_access, "refresh_token": new_refresh,
                        "id_token": id_token_for(aid), "token_type": "Bearer",
                        "expires_in": 864000})


async def handle(req, writer):
    headers = dict(req.headers, _authorization_count=req.counts.get("authorization", 0))
    path = req.path
    try:
        body = req.json() if path != "/oauth/token" else {}
    except ValueError:
        reply(writer, 400, {"error": {"type": "invalid_request_error",
                                      "message": "body is not JSON"}})
        return None
    if path.endswith("/codex/responses") and req.method == "POST":
        REQUESTS.append({"headers": dict(req.headers), "body": body})
        st = await responses(writer, headers, body)
        if st == -1:
            return "close"
        aid = (ACCOUNTS.get(headers.get("authorization", "")[7:]) or {}).get("account_id", "?")
        by = STATS["by_account"].setdefault(aid, {})
        by[str(st)] = by.get(str(st), 0) + 1
    elif path == "/oauth/token" and req.method == "POST":
        token_endpoint(writer, headers, req.raw)
    elif path == "/_accounts":
        for tok, a in body.items():
            ACCOUNTS[tok] = a
            if a.get("refresh_token"):
                REFRESH[a["refresh_token"]] = a["account_id"]
        reply(writer, 200, {"ok": True})
    elif path == "/_script":
        for aid, steps in body.items():
            for st in steps:
                if st.get("refresh"):
                    REFRESH_SCRIPT[aid] = st["refresh"]
                else:
                    SCRIPT.setdefault(aid, []).append(st)
        reply(writer, 200, {"ok": True})
    elif path == "/_requests":
        reply(writer, 200, REQUESTS)
    elif path == "/_stats":
        reply(writer, 200, STATS)
    else:
        reply(writer, 404, {"error": {"type": "not_found", "message": path}})
    return None


if __name__ == "__main__":
    serve(handle)
