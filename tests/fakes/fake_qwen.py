#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_qwen.py - a fake Qwen Code upstream (portal.qwen.ai chat + chat.qwen.ai token
endpoint) for tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /v1/chat/completions     OpenAI chat (JSON, or SSE when "stream": true). Checks the
                                Qwen wire rules of ../shared/spec/cliproxyapi.md section 8:
                                one Authorization: Bearer <registered token>, the headers
                                X-Dashscope-Authtype: qwen-oauth, X-Dashscope-Cachecontrol:
                                enable, X-Dashscope-Useragent = User-Agent =
                                "QwenCode/0.14.2 (darwin; arm64)", X-Stainless-Package-Version:
                                5.11.0; messages[0] is the single system message and its
                                first content part carries cache_control {"type":"ephemeral"};
                                streams have stream_options.include_usage true; plus the
                                OpenAI chat body rules of oaichat.py. A violation is answered
                                400 {"error":{"type":"fake_wire_check","message":...}}.
                                Unknown or expired token: 401 invalid_api_key.
  POST /api/v1/oauth2/token     refresh_token grant (form, client_id f0304373b74a...).
  POST /_accounts               {"<access_token>": {"account", "refresh_token", "expires"}}
  POST /_script                 {"<account>" | "*": [step, ...]}: {"status": 403, "code":
                                "insufficient_quota"} | {"status": 429, "retry_after": N} |
                                {"status": 500|503|401} | {"cut": true} | {"reasoning": "..."}
                                | {"ok": true}
  GET  /_requests, /_stats      what was received ({"path","headers","body","account","time"});
                                {"by_account": {name: {status: n}}, "violations", "refreshes",
                                "requests"}; POST /_reset forgets them.
Answers "fake qwen answer to: <last user text>"; a tool call when tools are offered and the
text contains "call_tool"; "fake qwen got tool result: <content>" after a tool message.
"""
import time
import uuid
from urllib.parse import parse_qs

import oaichat
from fakelib import reply, serve

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
UA = "QwenCode/0.14.2 (darwin; arm64)"
ACCOUNTS, REFRESH = {}, {}
REC = oaichat.Recorder()


def wire_check(req, body):
    h, v = req.headers, []
    if req.counts.get("authorization", 0) != 1 or not h.get("authorization", "").startswith(
            "Bearer "):
        v.append("exactly one Authorization: Bearer header")
    for k, want in (("x-dashscope-authtype", "qwen-oauth"), ("x-dashscope-cachecontrol", "enable"),
                    ("user-agent", UA), ("x-dashscope-useragent", UA),
                    ("x-stainless-package-version", "5.11.0")):
        if h.get(k) != want:
            v.append(f"{k}: {want} (got {h.get(k)!r})")
    if h.get("content-type", "").split(";")[0] != "application/json":
        v.append("Content-Type: application/json")
    msgs = body.get("messages") or []
    systems = [i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "system"]
    if systems != [0]:
        v.append(f"exactly one system message, first (system at {systems})")
    elif not (isinstance(msgs[0].get("content"), list) and msgs[0]["content"]
              and msgs[0]["content"][0].get("cache_control") == {"type": "ephemeral"}):
        v.append('messages[0].content[0].cache_control == {"type":"ephemeral"}')
    if body.get("stream") and (body.get("stream_options") or {}).get("include_usage") is not True:
        v.append("stream_options.include_usage: true on streams")
    return v + oaichat.check_body(body)


async def chat(req, writer):
    token = req.headers.get("authorization", "")[7:]
    acct = ACCOUNTS.get(token)
    try:
        body = req.json()
    except ValueError:
        body = None
    name = acct["account"] if acct else "?"
    REC.seen(req, body, name)
    if not acct or acct.get("expires", 1e18) < time.time():
        oaichat.openai_error(writer, 401, "Incorrect API key provided", code="invalid_api_key")
        return 401
    if not isinstance(body, dict):
        oaichat.openai_error(writer, 400, "body is not JSON")
        return 400
    v = wire_check(req, body)
    if v:
        REC.violation(name, v)
        oaichat.openai_error(writer, 400, "; ".join(v), etype="fake_wire_check")
        return 400
    step = REC.step(name, "*")
    st = step.get("status")
    if st == 403 and step.get("code") == "insufficient_quota":
        oaichat.openai_error(writer, 403, "You exceeded your current quota",
                             etype="insufficient_quota", code="insufficient_quota")
        return 403
    if st == 429:
        hdrs = {"Retry-After": str(step["retry_after"])} if "retry_after" in step else None
        oaichat.openai_error(writer, 429, "Requests rate limit exceeded",
                             etype="rate_limit_exceeded", code="rate_limit_exceeded", headers=hdrs)
        return 429
    if st:
        oaichat.openai_error(writer, st, f"fake {st}", etype="server_error")
        return st
    if body.get("stream"):
        res = await oaichat.send_stream(writer, oaichat.chunks(body, "qwen",
                                                               reasoning=step.get("reasoning")),
                                        cut=step.get("cut", False))
        return -1 if res == "close" else 200
    reply(writer, 200, oaichat.completion(body, "qwen"))
    return 200


def token_endpoint(req, writer):
    form = {k: v[0] for k, v in parse_qs(req.raw.decode()).items()}
    bad = []
    if req.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        bad.append("form content type")
    if form.get("grant_type") != "refresh_token" or form.get("client_id") != CLIENT_ID:
        bad.append("grant_type=refresh_token and the Qwen Code client_id")
    if bad:
        REC.stats["violations"].append({"refresh": bad, "form": form})
        reply(writer, 400, {"error": "invalid_request", "error_description": "; ".join(bad)})
        return
    name = REFRESH.pop(form.get("refresh_token"), None)
    if name is None:
        reply(writer, 400, {"error": "invalid_request",
                            "error_description": "Invalid refresh token or client_id"})
        return
    REC.stats["refreshes"] += 1
    access, refresh = "qat-" + uuid.uuid4().hex, "qrt-" + uuid.uuid4().hex
    ACCOUNTS[access] = {"account": name, "expires": time.time() + 21600}
    REFRESH[refresh] = name
    reply(writer, 200, {"access_token": access, "refresh_token": refresh,
                        "token_type": "Bearer", "expires_in": 21600})


async def handle(req, writer):
    if req.method == "POST" and req.path in ("/v1/chat/completions", "/chat/completions"):
        token = req.headers.get("authorization", "")[7:]
        st = await chat(req, writer)
        REC.count((ACCOUNTS.get(token) or {}).get("account", "?"), st)
        return "close" if st == -1 else None
    if req.method == "POST" and req.path == "/api/v1/oauth2/token":
        token_endpoint(req, writer)
    elif req.path == "/_accounts":
        for tok, a in req.json().items():
            ACCOUNTS[tok] = a
            if a.get("refresh_token"):
                REFRESH[a["refresh_token"]] = a["account"]
        reply(writer, 200, {"ok": True})
    elif not REC.control(req, writer):
        oaichat.openai_error(writer, 404, "no route " + req.path, etype="not_found")
    return None


if __name__ == "__main__":
    serve(handle)
