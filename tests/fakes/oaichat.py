# SPDX-License-Identifier: MIT
"""oaichat.py - what the OpenAI-chat upstream fakes (fake_qwen.py, fake_iflow.py,
fake_compat.py) share: the body checks a real OpenAI-compatible server applies to
POST /chat/completions, the answer (text, or a tool call when tools are offered and the
last user text contains "call_tool"; after a tool result, a text quoting it), the JSON and
SSE shapes with usage, and the control endpoints. Standard library only."""
import json
import time
import uuid

from fakelib import reply, stream_chunk, stream_end, stream_head

ROLES = ("system", "developer", "user", "assistant", "tool")
USAGE = {"prompt_tokens": 25, "completion_tokens": 11, "cached_tokens": 4, "reasoning_tokens": 0}


def text_of(c):
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(p.get("text", "") for p in c if isinstance(p, dict)
                       and p.get("type", "text") == "text")
    return ""


def check_body(body):
    """The rules an OpenAI-compatible chat endpoint enforces; returns violations."""
    v = []
    model = body.get("model")
    if not isinstance(model, str) or not model or "(" in model:
        v.append("model present with the (...) suffix stripped")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return v + ["messages is a non-empty array"]
    calls = set()
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            v.append(f"messages[{i}].role in {'|'.join(ROLES)}")
            continue
        if m["role"] == "assistant":
            for k, tc in enumerate(m.get("tool_calls") or []):
                f = tc.get("function") or {}
                if not tc.get("id") or tc.get("type") != "function" or not f.get("name") \
                        or not isinstance(f.get("arguments"), str):
                    v.append(f"messages[{i}].tool_calls[{k}] has id, type function, "
                             f"function.name and function.arguments (string)")
                calls.add(tc.get("id"))
            if m.get("content") is None and not m.get("tool_calls"):
                v.append(f"messages[{i}] assistant has content or tool_calls")
        elif m["role"] == "tool":
            if m.get("tool_call_id") not in calls:
                v.append(f"messages[{i}] with role 'tool' must answer a preceding tool_calls id")
        elif "content" not in m:
            v.append(f"messages[{i}].content present")
    for k, t in enumerate(body.get("tools") or []):
        f = t.get("function") or {}
        if t.get("type") != "function" or not f.get("name"):
            v.append(f"tools[{k}] is {{type: function, function: {{name, ...}}}}")
    so = body.get("stream_options")
    if so is not None and not body.get("stream"):
        v.append("stream_options only with stream: true")
    return v


def answer(body, tag):
    """(text, tool_call or None) for a request."""
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs else {}
    if last.get("role") == "tool":
        return f"fake {tag} got tool result: {text_of(last.get('content'))}", None
    text = ""
    for m in reversed(msgs):
        if m.get("role") == "user":
            text = text_of(m.get("content"))
            break
    if body.get("tools") and "call_tool" in text:
        name = body["tools"][0]["function"]["name"]
        return None, {"id": "call_" + uuid.uuid4().hex[:10], "type": "function",
                      "function": {"name": name, "arguments": '{"city":"Paris"}'}}
    return f"fake {tag} answer to: {text}", None


def usage_obj(u):
    return {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"]},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]}}


def completion(body, tag, u=None):
    text, tc = answer(body, tag)
    msg = {"role": "assistant", "content": text}
    if tc:
        msg["tool_calls"] = [tc]
    return {"id": "chatcmpl-" + uuid.uuid4().hex[:10], "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": msg,
                         "finish_reason": "tool_calls" if tc else "stop"}],
            "usage": usage_obj(u or USAGE)}


def chunks(body, tag, u=None, reasoning=None):
    text, tc = answer(body, tag)
    base = {"id": "chatcmpl-" + uuid.uuid4().hex[:10], "object": "chat.completion.chunk",
            "created": int(time.time()), "model": body.get("model")}
    out = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None}])]
    if reasoning:
        out.append(dict(base, choices=[{"index": 0, "delta": {"reasoning_content": reasoning},
                                        "finish_reason": None}]))
    if tc:
        args = tc["function"]["arguments"]
        out.append(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{
            "index": 0, "id": tc["id"], "type": "function",
            "function": {"name": tc["function"]["name"], "arguments": args[:6]}}]},
            "finish_reason": None}]))
        out.append(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{
            "index": 0, "function": {"arguments": args[6:]}}]}, "finish_reason": None}]))
    else:
        for i in range(0, len(text), 7):
            out.append(dict(base, choices=[{"index": 0, "delta": {"content": text[i:i + 7]},
                                            "finish_reason": None}]))
    out.append(dict(base, choices=[{"index": 0, "delta": {},
                                    "finish_reason": "tool_calls" if tc else "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage") is True:
        out.append(dict(base, choices=[], usage=usage_obj(u or USAGE)))
    return out


async def send_stream(writer, events, cut=False):
    """SSE of @events then [DONE]; cut: only the first two events, no terminator."""
    stream_head(writer)
    for ev in events[:2] if cut else events:
        await stream_chunk(writer, f"data: {json.dumps(ev)}\n\n".encode())
    if cut:
        return "close"
    await stream_chunk(writer, b"data: [DONE]\n\n")
    stream_end(writer)
    return None


def openai_error(writer, status, message, etype="invalid_request_error", code=None,
                 headers=None):
    reply(writer, status, {"error": {"message": message, "type": etype, "code": code}},
          headers=headers)


class Recorder:
    """Requests seen, counts per account and status, wire violations, scripted steps."""

    def __init__(self):
        self.requests, self.script = [], {}
        self.stats = {"by_account": {}, "violations": [], "refreshes": 0, "requests": 0}

    def seen(self, req, body, account):
        self.stats["requests"] += 1
        self.requests.append({"path": req.path, "query": req.query, "headers": dict(req.headers),
                              "body": body, "account": account, "time": time.time()})
        del self.requests[:-3000]

    def count(self, account, status):
        by = self.stats["by_account"].setdefault(account, {})
        by[str(status)] = by.get(str(status), 0) + 1

    def violation(self, account, rules):
        self.stats["violations"].append({"account": account, "rules": rules})

    def step(self, *keys):
        for k in keys:
            q = self.script.get(k)
            if q:
                return q.pop(0)
        return {}

    def control(self, req, writer):
        """/_script, /_requests, /_stats, /_reset; returns False for other paths."""
        if req.path == "/_script":
            for k, steps in req.json().items():
                self.script.setdefault(k, []).extend(steps)
            reply(writer, 200, {"ok": True})
        elif req.path == "/_requests":
            reply(writer, 200, self.requests)
        elif req.path == "/_stats":
            reply(writer, 200, self.stats)
        elif req.path == "/_reset":
            self.requests.clear()
            self.script.clear()
            self.stats.update({"by_account": {}, "violations": [], "requests": 0})
            reply(writer, 200, {"ok": True})
        else:
            return False
        return True
