#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every inbound format reaches every upstream: inbound {chat, responses, messages, gemini,
completions} x upstream {codex (fake_codex), claude (fake_claude), gemini (fake_gemini, CLI
credential), openai-compat (fake_compat)} x {non-stream, stream}. Each cell asserts the
client-visible shape (chat: choices[0].message.content / deltas + [DONE]; responses: an
object "response" with output text / output_text deltas + response.completed; messages:
type "message" with a text block / text_delta events; gemini: candidates[0].content.parts
text; completions: choices[0].text), that the text is the one the fake produced for the
text the client sent, and that usage arrived. Then one tool-call round trip per inbound
format that has tools (chat, responses, messages, gemini; legacy completions has none) on
the Gemini upstream, whose fake answers with the tool result it received; and refusals of
what cannot be translated (a Responses web_search tool, a Gemini googleSearch tool, to a
chat upstream -> 400 naming the field). Every fake's wire checks must stay clean."""
import json
import os

from cpd_env import claude_cred, codex_cred, gemini_cred, get, post, sse, start
from harness import TMP, http, run, start_fake

KEY = "sk-client-matrix-0123456789abc"
codex = start_fake("fake_codex.py")
claude = start_fake("fake_claude.py")
gemini = start_fake("fake_gemini.py")
compat = start_fake("fake_compat.py")
AUTH = os.path.join(TMP, "matrix-auths")
os.makedirs(AUTH, exist_ok=True)
codex_cred(codex, AUTH, "mx")
claude_cred(claude, AUTH, "mx")
gemini_cred(gemini, AUTH, "mx", "proj-mx")
post(compat, "keys", {"keys": ["sk-compat-mx-0123456789"]})
proc, BASE = start("cliproxyd-matrix", KEY, AUTH, {
    "codex": {"base-url": codex.url + "/backend-api/codex"},
    "claude": {"base-url": claude.url, "token-url": claude.url + "/v1/oauth/token"},
    "gemini": {"base-url": gemini.url, "token-url": gemini.url + "/token"}},
    extra=f"""openai-compatibility:
  - name: "mxcompat"
    base-url: "{compat.url}/v1"
    api-key-entries:
      - api-key: "sk-compat-mx-0123456789"
    models:
      - name: "up-compat"
        alias: "compat-model"
""")
H = {"Authorization": "Bearer " + KEY}
UPSTREAMS = {"codex": ("gpt-5-codex", "fake answer to: "),
             "claude": ("claude-sonnet-4-5-20250929", "fake claude answer to: "),
             "gemini": ("gemini-2.5-pro", "fake gemini answer to: "),
             "compat": ("compat-model", "fake compat answer to: ")}
FAKES = {"codex": codex, "claude": claude, "gemini": gemini, "compat": compat}


def post_json(path, body):
    return http("POST", BASE + path, body, H, timeout=20)


def ask(inbound, model, text, stream):
    """Sends @text in the @inbound format; returns (status, client text, usage seen, raw)."""
    if inbound == "chat":
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream_options"] = {"include_usage": True}
        st, _, raw = post_json("/v1/chat/completions", body)
        if st != 200:
            return st, None, False, raw
        if not stream:
            c = json.loads(raw)
            return st, c["choices"][0]["message"]["content"], c["usage"]["total_tokens"] > 0, raw
        ev = [d for _, d in sse(raw)]
        assert ev[-1] == "[DONE]", ev[-2:]
        t = "".join(c["choices"][0]["delta"].get("content") or "" for c in ev[:-1]
                    if c.get("choices"))
        return st, t, any((c.get("usage") or {}).get("total_tokens") for c in ev[:-1]), raw
    if inbound == "completions":
        body = {"model": model, "prompt": text, "max_tokens": 64, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        st, _, raw = post_json("/v1/completions", body)
        if st != 200:
            return st, None, False, raw
        if not stream:
            c = json.loads(raw)
            assert c["object"] == "text_completion", c
            return st, c["choices"][0]["text"], c["usage"]["total_tokens"] > 0, raw
        ev = [d for _, d in sse(raw)]
        assert ev[-1] == "[DONE]", ev[-2:]
        t = "".join(c["choices"][0].get("text") or "" for c in ev[:-1] if c.get("choices"))
        return st, t, any((c.get("usage") or {}).get("total_tokens") for c in ev[:-1]), raw
    if inbound == "responses":
        st, _, raw = post_json("/v1/responses", {"model": model, "input": text, "stream": stream})
        if st != 200:
            return st, None, False, raw
        if not stream:
            r = json.loads(raw)
            assert r["object"] == "response" and r["status"] == "completed", r
            t = "".join(c.get("text", "") for o in r["output"] if o["type"] == "message"
                        for c in o["content"] if c["type"] == "output_text")
            return st, t, r["usage"]["total_tokens"] > 0, raw
        ev = sse(raw)
        t = "".join(d["delta"] for e, d in ev if d != "[DONE]" and d.get("type") ==
                    "response.output_text.delta")
        done = [d for _, d in ev if d != "[DONE]" and d.get("type") == "response.completed"]
        assert done, [d.get("type") for _, d in ev if d != "[DONE]"]
        return st, t, done[-1]["response"]["usage"]["total_tokens"] > 0, raw
    if inbound == "messages":
        st, _, raw = post_json("/v1/messages", {"model": model, "max_tokens": 256, "stream": stream,
                                                "messages": [{"role": "user", "content": text}]})
        if st != 200:
            return st, None, False, raw
        if not stream:
            m = json.loads(raw)
            assert m["type"] == "message" and m["role"] == "assistant", m
            t = "".join(b["text"] for b in m["content"] if b["type"] == "text")
            return st, t, m["usage"]["output_tokens"] > 0, raw
        ev = sse(raw)
        assert ev[0][0] == "message_start" and ev[-1][0] == "message_stop", [e for e, _ in ev]
        t = "".join(d["delta"].get("text", "") for e, d in ev if e == "content_block_delta")
        md = [d for e, d in ev if e == "message_delta"]
        return st, t, bool(md and md[-1]["usage"]["output_tokens"] > 0), raw
    # gemini
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    st, _, raw = http("POST", f"{BASE}/v1beta/models/{model}:{action}",
                      {"contents": [{"role": "user", "parts": [{"text": text}]}]},
                      {"x-goog-api-key": KEY}, timeout=20)
    if st != 200:
        return st, None, False, raw
    evs = [json.loads(raw)] if not stream else [d for _, d in sse(raw)]
    t = "".join(p.get("text", "") for g in evs for c in g.get("candidates", [])[:1]
                for p in c["content"].get("parts", []) if not p.get("thought"))
    return st, t, (evs[-1].get("usageMetadata") or {}).get("totalTokenCount", 0) > 0, raw


def cell(inbound):
    fails = []
    seen = {up: len(get(fake, "stats")["violations"]) for up, fake in FAKES.items()}
    for up, (model, prefix) in UPSTREAMS.items():
        for stream in (False, True):
            text = f"{inbound} to {up} {'stream' if stream else 'whole'}"
            try:
                st, got, usage, raw = ask(inbound, model, text, stream)
                if st != 200:
                    fails.append(f"{up}/{stream}: HTTP {st}: {raw[:300]!r}")
                elif got != prefix + text:
                    fails.append(f"{up}/{stream}: text {got!r} != {prefix + text!r}")
                elif not usage:
                    fails.append(f"{up}/{stream}: no usage in {raw[-400:]!r}")
            except Exception as e:  # a shape error: report the cell, go on
                fails.append(f"{up}/{stream}: {type(e).__name__}: {e}")
    for up, fake in FAKES.items():
        v = get(fake, "stats")["violations"][seen[up]:]
        if v:
            fails.append(f"{up} wire violations: {v}")
    assert not fails, "\n".join(fails)


def test_chat():
    cell("chat")


def test_responses():
    cell("responses")


def test_messages():
    cell("messages")


def test_gemini():
    cell("gemini")


def test_completions():
    cell("completions")


GEM = "gemini-2.5-pro"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def tool_result_seen():
    """The functionResponse the Gemini fake received last."""
    r = [x for x in get(gemini, "requests") if x["path"].startswith("/v1internal:")][-1]
    parts = [p for c in r["body"]["request"]["contents"] for p in c["parts"]]
    frs = [p["functionResponse"] for p in parts if "functionResponse" in p]
    calls = [p for p in parts if "functionCall" in p]
    assert frs and frs[-1]["name"] == "get_weather", parts
    assert calls and calls[-1].get("thoughtSignature"), calls
    return frs[-1]


def test_tool_round_trip_chat():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    msgs = [{"role": "user", "content": "please call_tool"}]
    st, _, raw = post_json("/v1/chat/completions", {"model": GEM, "messages": msgs, "tools": tools})
    assert st == 200, raw
    ch = json.loads(raw)["choices"][0]
    assert ch["finish_reason"] == "tool_calls", ch
    tc = ch["message"]["tool_calls"][0]
    assert tc["function"]["name"] == "get_weather"
    assert json.loads(tc["function"]["arguments"]) == {"city": "Paris"}
    msgs += [{"role": "assistant", "content": None, "tool_calls": [tc]},
             {"role": "tool", "tool_call_id": tc["id"], "content": "sunny"}]
    st, _, raw = post_json("/v1/chat/completions", {"model": GEM, "messages": msgs, "tools": tools,
                                                    "stream": True})
    assert st == 200, raw
    text = "".join(c["choices"][0]["delta"].get("content") or "" for _, c in sse(raw)[:-1]
                   if c.get("choices"))
    assert text.startswith("fake gemini got tool result: ") and "sunny" in text, text
    assert "sunny" in json.dumps(tool_result_seen())


def test_tool_round_trip_responses():
    tools = [{"type": "function", "name": "get_weather", "parameters": SCHEMA}]
    inp = [{"role": "user", "content": [{"type": "input_text", "text": "please call_tool"}]}]
    st, _, raw = post_json("/v1/responses", {"model": GEM, "input": inp, "tools": tools})
    assert st == 200, raw
    fc = [o for o in json.loads(raw)["output"] if o["type"] == "function_call"]
    assert fc and fc[0]["name"] == "get_weather", raw
    assert json.loads(fc[0]["arguments"]) == {"city": "Paris"}
    inp += [{"type": "function_call", "call_id": fc[0]["call_id"], "name": "get_weather",
             "arguments": fc[0]["arguments"]},
            {"type": "function_call_output", "call_id": fc[0]["call_id"], "output": "sunny"}]
    st, _, raw = post_json("/v1/responses", {"model": GEM, "input": inp, "tools": tools})
    assert st == 200, raw
    text = "".join(c.get("text", "") for o in json.loads(raw)["output"] if o["type"] == "message"
                   for c in o["content"])
    assert text.startswith("fake gemini got tool result: ") and "sunny" in text, text
    assert "sunny" in json.dumps(tool_result_seen())


def test_tool_round_trip_messages():
    tools = [{"name": "get_weather", "description": "weather", "input_schema": SCHEMA}]
    msgs = [{"role": "user", "content": "please call_tool"}]
    st, _, raw = post_json("/v1/messages", {"model": GEM, "max_tokens": 256, "messages": msgs,
                                            "tools": tools})
    assert st == 200, raw
    m = json.loads(raw)
    assert m["stop_reason"] == "tool_use", m
    use = [b for b in m["content"] if b["type"] == "tool_use"][0]
    assert use["name"] == "get_weather" and use["input"] == {"city": "Paris"}
    msgs += [{"role": "assistant", "content": m["content"]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"],
                                           "content": "sunny"}]}]
    st, _, raw = post_json("/v1/messages", {"model": GEM, "max_tokens": 256, "messages": msgs,
                                            "tools": tools, "stream": True})
    assert st == 200, raw
    text = "".join(d["delta"].get("text", "") for e, d in sse(raw) if e == "content_block_delta")
    assert text.startswith("fake gemini got tool result: ") and "sunny" in text, text
    assert "sunny" in json.dumps(tool_result_seen())


def test_tool_round_trip_gemini():
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": SCHEMA}]}]
    contents = [{"role": "user", "parts": [{"text": "please call_tool"}]}]
    st, _, raw = http("POST", f"{BASE}/v1beta/models/{GEM}:generateContent",
                      {"contents": contents, "tools": tools}, {"x-goog-api-key": KEY})
    assert st == 200, raw
    part = json.loads(raw)["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["name"] == "get_weather", part
    contents += [{"role": "model", "parts": [part]},
                 {"role": "user", "parts": [{"functionResponse": {
                     "name": "get_weather", "response": {"weather": "sunny"}}}]}]
    st, _, raw = http("POST", f"{BASE}/v1beta/models/{GEM}:streamGenerateContent?alt=sse",
                      {"contents": contents, "tools": tools}, {"x-goog-api-key": KEY})
    assert st == 200, raw
    text = "".join(p.get("text", "") for _, g in sse(raw) for p in
                   g["candidates"][0]["content"]["parts"])
    assert text == 'fake gemini got tool result: {"weather": "sunny"}', text
    assert tool_result_seen()["response"] == {"weather": "sunny"}


def test_refusals_name_the_field():
    n0 = get(compat, "stats")["requests"]
    st, _, raw = post_json("/v1/responses", {"model": "compat-model", "input": "search",
                                             "tools": [{"type": "web_search"}]})
    assert st == 400 and b"tools[0].type" in raw, (st, raw)
    assert json.loads(raw)["error"]["message"], raw
    st, _, raw = http("POST", f"{BASE}/v1beta/models/compat-model:generateContent",
                      {"contents": [{"role": "user", "parts": [{"text": "search"}]}],
                       "tools": [{"googleSearch": {}}]}, {"x-goog-api-key": KEY})
    assert st == 400 and b"tools[0]" in raw and b"googleSearch" in raw, (st, raw)
    assert get(compat, "stats")["requests"] == n0, "a refused request reached the upstream"


def test_clean_shutdown():
    assert proc.stop() == 0


run([test_chat, test_responses, test_messages, test_gemini, test_completions,
     test_tool_round_trip_chat, test_tool_round_trip_responses, test_tool_round_trip_messages,
     test_tool_round_trip_gemini, test_refusals_name_the_field, test_clean_shutdown])
