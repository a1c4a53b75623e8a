#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_iflow.py - a fake iFlow upstream (apis.iflow.cn chat, iflow.cn OAuth token endpoint
and user-info) for tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /v1/chat/completions   OpenAI chat (JSON, or SSE when "stream": true). Checks the iFlow
                              wire rules of ../shared/spec/cliproxyapi.md section 8: one
                              Authorization: Bearer <registered api key> (the API key, never
                              the OAuth access token), User-Agent: iFlow-Cli, session-id:
                              session-<uuid v4>, x-iflow-timestamp in ms within 5 min of now,
                              x-iflow-signature = hex HMAC-SHA256(api_key,
                              "iFlow-Cli:<session-id>:<timestamp>"); plus the OpenAI chat body
                              rules of oaichat.py. A violation: 400 fake_wire_check.
  POST /oauth/token           refresh_token grant: form with client_id 10009311001 and the
                              client secret, and Authorization: Basic base64(id:secret).
  GET  /api/oauth/getUserInfo?accessToken=<token>  {"success":true,"data":{"apiKey","email",
                              "phone"}}; a refresh mints a new API key, which user-info returns.
  POST /_accounts             {"<api_key>": {"account", "access_token", "refresh_token",
                              "email"}} registers an account.
  POST /_script               {"<account>" | "*": [step, ...]}: {"status": 429|500|503|401} |
                              {"cut": true} | {"refresh": "fail"} (next refresh answers
                              {"success":false,"code":"500"} without a token) | {"ok": true}
  GET  /_requests, /_stats    as in fake_qwen.py; POST /_reset.
Answers "fake iflow answer to: <last user text>" (tool calls as in oaichat.py).
"""
import base64
import hashlib
import hmac
import re
import time
import uuid
from urllib.parse import parse_qs

import oaichat
from fakelib import reply, serve

CLIENT_ID, CLIENT_SECRET = "10009311001", "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"
KEYS = {}      # api_key -> account
TOKENS = {}    # access_token -> account
REFRESH = {}   # refresh_token -> account
APIKEY_OF = {}  # account -> current api key
EMAIL = {}
REFRESH_FAIL = set()
REC = oaichat.Recorder()
SESSION_RE = re.compile(r"^session-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                        r"[0-9a-f]{12}$")


def wire_check(req, body, key):
    h, v = req.headers, []
    if req.counts.get("authorization", 0) != 1 or not h.get("authorization", "").startswith(
            "Bearer "):
        v.append("exactly one Authorization: Bearer header")
    if key in TOKENS:
        v.append("Authorization carries the API key, not the OAuth access token")
    if h.get("user-agent") != "iFlow-Cli":
        v.append(f"User-Agent: iFlow-Cli (got {h.get('user-agent')!r})")
    sid, ts, sig = h.get("session-id", ""), h.get("x-iflow-timestamp", ""), \
        h.get("x-iflow-signature", "")
    if not SESSION_RE.match(sid):
        v.append(f"session-id: session-<uuid v4> (got {sid!r})")
    if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 300000:
        v.append(f"x-iflow-timestamp: unix milliseconds near now (got {ts!r})")
    want = hmac.new(key.encode(), f"iFlow-Cli:{sid}:{ts}".encode(), hashlib.sha256).hexdigest()
    if sig != want:
        v.append(f"x-iflow-signature = hex HMAC-SHA256(api_key, iFlow-Cli:<session-id>:"
                 f"<timestamp>) (got {sig!r})")
    if h.get("content-type", "").split(";")[0] != "application/json":
        v.append("Content-Type: application/json")
    return v + oaichat.check_body(body)


async def chat(req, writer, key):
    name = KEYS.get(key)
    try:
        body = req.json()
    except ValueError:
        body = None
    REC.seen(req, body, name or "?")
    if name is None:
        v = ["Authorization carries the API key, not the OAuth access token"] \
            if key in TOKENS else []
        if v:
            REC.violation(TOKENS[key], v)
        oaichat.openai_error(writer, 401, "Invalid API key", code="invalid_api_key")
        return 401
    if not isinstance(body, dict):
        oaichat.openai_error(writer, 400, "body is not JSON")
        return 400
    v = wire_check(req, body, key)
    if v:
        REC.violation(name, v)
        oaichat.openai_error(writer, 400, "; ".join(v), etype="fake_wire_check")
        return 400
    step = REC.step(name, "*")
    st = step.get("status")
    if st:
        oaichat.openai_error(writer, st, f"fake {st}", etype="server_error")
        return st
    if body.get("stream"):
        res = await oaichat.send_stream(writer, oaichat.chunks(body, "iflow"),
                                        cut=step.get("cut", False))
        return -1 if res == "close" else 200
    reply(writer, 200, oaichat.completion(body, "iflow"))
    return 200


def token_endpoint(req, writer):
    form = {k: v[0] for k, v in parse_qs(req.raw.decode()).items()}
    bad = []
    if req.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        bad.append("form content type")
    if form.get("grant_type") != "refresh_token":
        bad.append("grant_type=refresh_token")
    if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
        bad.append("client_id 10009311001 and the iFlow client_secret in the form")
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    if req.headers.get("authorization") != basic:
        bad.append("Authorization: Basic base64(client_id:client_secret)")
    if bad:
        REC.stats["violations"].append({"refresh": bad})
        reply(writer, 400, {"error": "invalid_request", "error_description": "; ".join(bad)})
        return
    name = REFRESH.get(form.get("refresh_token"))
    if name is None:
        reply(writer, 400, {"error": "invalid_grant", "error_description": "unknown token"})
        return
    if name in REFRESH_FAIL:
        REFRESH_FAIL.discard(name)
        reply(writer, 200, {"success": False, "code": "500", "message": "system busy"})
        return
    del REFRESH[form["refresh_token"]]
    REC.stats["refreshes"] += 1
    access, refresh = "iat-" + uuid.uuid4().hex, "irt-" + uuid.uuid4().hex
    TOKENS[access] = name
    REFRESH[refresh] = name
    new_key = "sk-iflow-" + uuid.uuid4().hex
    old = APIKEY_OF.get(name)
    KEYS.pop(old, None)
    KEYS[new_key] = name
    APIKEY_OF[name] = new_key
    reply(writer, 200, {"access_token": access, "refresh_token": refresh, "token_type": "bearer",
                        "expires_in": 172800, "scope": "read"})


def userinfo(req, writer):
    tok = (req.query.get("accessToken") or [""])[0]
    name = TOKENS.get(tok)
    REC.requests.append({"path": req.path, "query": req.query, "headers": dict(req.headers),
                         "body": None, "account": name or "?", "time": time.time()})
    if name is None:
        reply(writer, 200, {"success": False, "code": "401", "message": "invalid accessToken"})
        return
    REC.stats.setdefault("userinfo", 0)
    REC.stats["userinfo"] += 1
    reply(writer, 200, {"success": True, "code": "200", "data": {
        "apiKey": APIKEY_OF[name], "email": EMAIL.get(name, f"{name}@example.com"),
        "phone": "13800000000"}})


async def handle(req, writer):
    if req.method == "POST" and req.path in ("/v1/chat/completions", "/chat/completions"):
        key = req.headers.get("authorization", "")[7:]
        st = await chat(req, writer, key)
        REC.count(KEYS.get(key, "?"), st)
        return "close" if st == -1 else None
    if req.method == "POST" and req.path == "/oauth/token":
        token_endpoint(req, writer)
    elif req.method == "GET" and req.path == "/api/oauth/getUserInfo":
        userinfo(req, writer)
    elif req.path == "/_accounts":
        for key, a in req.json().items():
            name = a["account"]
            KEYS[key] = name
            APIKEY_OF[name] = key
            EMAIL[name] = a.get("email", f"{name}@example.com")
            if a.get("access_token"):
                TOKENS[a["access_token"]] = name
            if a.get("refresh_token"):
                REFRESH[a["refresh_token"]] = name
        reply(writer, 200, {"ok": True})
    elif req.path == "/_script":
        body = req.json()
        for k, steps in body.items():
            for s in steps:
                if s.get("refresh") == "fail":
                    REFRESH_FAIL.add(k)
                else:
                    REC.script.setdefault(k, []).append(s)
        reply(writer, 200, {"ok": True})
    elif not REC.control(req, writer):
        oaichat.openai_error(writer, 404, "no route " + req.path, etype="not_found")
    return None


if __name__ == "__main__":
    serve(handle)
