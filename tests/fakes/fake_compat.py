#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_compat.py - a fake OpenAI-compatible upstream for cliproxyd's openai-compatibility
entries (fake_openai.py is meterd's upstream and scripts per key; this one scripts per
upstream model name, for alias pools, and checks what cliproxyd's compat executor sends).

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /v1/chat/completions   OpenAI chat (JSON, or SSE when "stream": true). Checks (spec
                              3.6): exactly one Authorization: Bearer <key> (keys registered
                              with POST /_keys {"keys": [...]}; none registered: any), User-Agent
                              cli-proxy-openai-compat, Content-Type application/json, streams
                              force stream_options.include_usage true, and the OpenAI chat body
                              rules of oaichat.py. A violation: 400 fake_wire_check.
  POST /_fail                 {"<model>": status | 0} the model answers that status on every
                              request until reset to 0 (an upstream model that is down).
  POST /_script               {"<model>" | "*": [step, ...]}: {"status": N} | {"cut": true} |
                              {"reasoning": "..."} | {"ok": true}
  GET  /_requests, /_stats    as in fake_qwen.py ("by_account" is keyed by model); POST /_reset.
Answers "fake compat answer to: <last user text>" (tool calls as in oaichat.py).
"""
import oaichat
from fakelib import reply, serve

KEYS, FAIL = set(), {}
REC = oaichat.Recorder()


def wire_check(req, body):
    h, v = req.headers, []
    if req.counts.get("authorization", 0) != 1 or not h.get("authorization", "").startswith(
            "Bearer "):
        v.append("exactly one Authorization: Bearer header")
    if h.get("user-agent") != "cli-proxy-openai-compat":
        v.append(f"User-Agent: cli-proxy-openai-compat (got {h.get('user-agent')!r})")
    if h.get("content-type", "").split(";")[0] != "application/json":
        v.append("Content-Type: application/json")
    if body.get("stream") and (body.get("stream_options") or {}).get("include_usage") is not True:
        v.append("stream_options.include_usage: true on streams")
    return v + oaichat.check_body(body)


async def chat(req, writer):
    key = req.headers.get("authorization", "")[7:]
    try:
        body = req.json()
    except ValueError:
        body = None
    model = body.get("model", "?") if isinstance(body, dict) else "?"
    REC.seen(req, body, model)
    if not key or (KEYS and key not in KEYS):
        oaichat.openai_error(writer, 401, "Incorrect API key provided", code="invalid_api_key")
        return model, 401
    if not isinstance(body, dict):
        oaichat.openai_error(writer, 400, "body is not JSON")
        return model, 400
    v = wire_check(req, body)
    if v:
        REC.violation(model, v)
        oaichat.openai_error(writer, 400, "; ".join(v), etype="fake_wire_check")
        return model, 400
    if FAIL.get(model):
        oaichat.openai_error(writer, FAIL[model], f"fake {FAIL[model]} for {model}",
                             etype="server_error")
        return model, FAIL[model]
    step = REC.step(model, "*")
    if step.get("status"):
        oaichat.openai_error(writer, step["status"], f"fake {step['status']}",
                             etype="server_error")
        return model, step["status"]
    if body.get("stream"):
        res = await oaichat.send_stream(writer, oaichat.chunks(body, "compat",
                                                               reasoning=step.get("reasoning")),
                                        cut=step.get("cut", False))
        return model, -1 if res == "close" else 200
    reply(writer, 200, oaichat.completion(body, "compat"))
    return model, 200


async def handle(req, writer):
    if req.method == "POST" and req.path in ("/v1/chat/completions", "/chat/completions"):
        model, st = await chat(req, writer)
        REC.count(model, st)
        return "close" if st == -1 else None
    if req.path == "/_keys":
        KEYS.update(req.json().get("keys", []))
        reply(writer, 200, {"ok": True})
    elif req.path == "/_fail":
        FAIL.update(req.json())
        reply(writer, 200, {"ok": True})
    elif req.path == "/v1/models":
        reply(writer, 200, {"object": "list", "data": []})
    elif not REC.control(req, writer):
        oaichat.openai_error(writer, 404, "no route " + req.path, etype="not_found")
    return None


if __name__ == "__main__":
    serve(handle)
