#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cliproxyd with Gemini CLI credentials in front of the fake Code Assist endpoint (which
checks the v1internal envelope, project, GeminiCLI User-Agent, X-Goog-Api-Client, default
safetySettings, thoughtSignature on functionCall parts) and, in a second daemon, a
gemini-api-key entry in front of the fake public API (x-goog-api-key, no envelope):
- an expired stored token is refreshed (form POST with the credential's client id and
  secret) before the inference call and written back into the file's "token" object;
- OpenAI Chat clients, stream and not, with usage;
- Gemini-native generateContent / streamGenerateContent?alt=sse / countTokens pass through
  (answers unwrapped from {"response": ...}), a tool round trip included;
- a 429 with RetryInfo retryDelay 30s takes that credential out for 30 s: the request fails
  over and the next ones go to the other credential only;
- the API-key entry: x-goog-api-key, no Authorization, raw body at /v1beta/models/<m>:<action>.
No token or key in the log."""
import json
import os

from cpd_env import chat_text, gemini_cred, get, post, rfc3339, sse, start
from harness import TMP, http, run, start_fake

KEY = "sk-client-gemini-0123456789abcd"
MODEL = "gemini-2.5-pro"
fake = start_fake("fake_gemini.py")
AUTH = os.path.join(TMP, "gemini-auths")
os.makedirs(AUTH, exist_ok=True)
path_a, tok_a = gemini_cred(fake, AUTH, "gema", "proj-a", expires_in=-120)  # expired
path_b, tok_b = gemini_cred(fake, AUTH, "gemb", "proj-b")
SECRETS = [KEY, tok_a, tok_b]
proc, BASE = start("cliproxyd-gemini", KEY, AUTH,
                   {"gemini": {"base-url": fake.url, "token-url": fake.url + "/token"}})
H = {"Authorization": "Bearer " + KEY}
G = {"x-goog-api-key": KEY}
DEFAULT_SAFETY = {"HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
                  "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT",
                  "HARM_CATEGORY_CIVIC_INTEGRITY"}


def chat(text, stream=False, **kw):
    body = dict({"model": MODEL, "stream": stream,
                 "messages": [{"role": "system", "content": "be brief"},
                              {"role": "user", "content": text}]}, **kw)
    if stream:
        body["stream_options"] = {"include_usage": True}
    return http("POST", BASE + "/v1/chat/completions", body, H)


def native(action, body, model=MODEL, base=None, key=None):
    q = "?alt=sse" if action == "streamGenerateContent" else ""
    return http("POST", f"{base or BASE}/v1beta/models/{model}:{action}{q}", body,
                {"x-goog-api-key": key or KEY})


def reqs(path_part=":"):
    return [r for r in get(fake, "requests") if path_part in r["path"]]


def no_violations():
    v = get(fake, "stats")["violations"]
    assert v == [], v


def test_expired_token_refreshed_before_call():
    for i in range(2):  # round robin: one of the two requests uses credential a
        st, _, body = chat(f"warm {i}")
        assert st == 200, body
    s = get(fake, "stats")
    assert s["refreshes"] >= 1, s
    assert "401" not in s["by_account"].get("gema", {}), s["by_account"]  # refreshed first
    assert s["by_account"]["gema"].get("200") == 1, s["by_account"]
    d = json.load(open(path_a))
    assert d["token"]["access_token"].startswith("ya29.fake-"), d["token"]
    assert d["token"]["refresh_token"] == "1//rt-gema-0123456789", "refresh token kept"
    assert d["token"]["expiry"] > rfc3339(600), d["token"]  # the new expiry, not the old
    assert d["project_id"] == "proj-a" and d["type"] == "gemini"
    SECRETS.append(d["token"]["access_token"])
    no_violations()


def test_chat_nonstream():
    st, _, body = chat("hello gemini")
    assert st == 200, body
    c = json.loads(body)
    assert c["object"] == "chat.completion"
    assert c["choices"][0]["message"]["content"] == "fake gemini answer to: hello gemini"
    assert c["choices"][0]["finish_reason"] == "stop"
    assert c["usage"]["prompt_tokens"] == 21 and c["usage"]["completion_tokens"] == 8, c["usage"]
    r = reqs()[-1]
    assert r["path"] in ("/v1internal:generateContent", "/v1internal:streamGenerateContent")
    b = r["body"]
    assert b["model"] == MODEL and b["project"] == {"gema": "proj-a", "gemb": "proj-b"}[
        r["account"]]
    assert r["headers"]["user-agent"].startswith(f"GeminiCLI/") and f"/{MODEL} (" in \
        r["headers"]["user-agent"]
    assert r["headers"]["x-goog-api-client"] == "google-genai-sdk/1.41.0 gl-node/v22.19.0"
    assert {s["category"] for s in b["request"]["safetySettings"]} == DEFAULT_SAFETY
    si = b["request"]["systemInstruction"]
    assert "be brief" in json.dumps(si["parts"]), si
    assert b["request"]["contents"][-1] == {"role": "user", "parts": [{"text": "hello gemini"}]}
    no_violations()


def test_chat_stream():
    st, h, raw = chat("stream gemini", stream=True)
    assert st == 200 and h["content-type"].startswith("text/event-stream"), raw[:300]
    ev = sse(raw)
    assert ev[-1][1] == "[DONE]", ev[-2:]
    assert chat_text(ev) == "fake gemini answer to: stream gemini"
    fin = [c for _, c in ev[:-1] if c.get("choices") and c["choices"][0].get("finish_reason")]
    assert fin and fin[-1]["choices"][0]["finish_reason"] == "stop", fin
    usage = [c["usage"] for _, c in ev[:-1] if c.get("usage")]
    assert usage and usage[-1]["prompt_tokens"] == 21 and usage[-1]["completion_tokens"] == 8
    r = reqs()[-1]
    assert r["path"] == "/v1internal:streamGenerateContent" and r["query"]["alt"] == ["sse"]
    assert r["headers"].get("accept") == "text/event-stream", r["headers"]
    no_violations()


def test_native_generate_passthrough():
    body = {"contents": [{"role": "user", "parts": [{"text": "native hi"}]}],
            "generationConfig": {"temperature": 0.3, "maxOutputTokens": 64}}
    st, _, raw = native("generateContent", body)
    assert st == 200, raw
    g = json.loads(raw)
    assert "response" not in g, "the CLI envelope leaked to the client"
    assert g["candidates"][0]["content"]["parts"][0]["text"] == "fake gemini answer to: native hi"
    assert g["candidates"][0]["finishReason"] == "STOP"
    assert g["usageMetadata"]["promptTokenCount"] == 21, g
    r = reqs()[-1]["body"]
    assert r["model"] == MODEL and r["request"]["contents"] == body["contents"]
    assert r["request"]["generationConfig"]["temperature"] == 0.3
    no_violations()


def test_native_tool_round_trip_gets_signature():
    tools = [{"functionDeclarations": [{"name": "get_weather", "description": "weather",
                                        "parameters": {"type": "object", "properties": {
                                            "city": {"type": "string"}}}}]}]
    first = {"contents": [{"role": "user", "parts": [{"text": "please call_tool"}]}],
             "tools": tools}
    st, _, raw = native("generateContent", first)
    assert st == 200, raw
    part = json.loads(raw)["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}, part
    # the client replays the call without its signature: cliproxyd must add one
    second = dict(first, contents=first["contents"] + [
        {"role": "model", "parts": [{"functionCall": part["functionCall"]}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {"temp": "sunny"}}}]}])
    st, _, raw = native("generateContent", second)
    assert st == 200, raw
    text = json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"]
    assert text == 'fake gemini got tool result: {"temp": "sunny"}', text
    sent = reqs()[-1]["body"]["request"]["contents"][1]["parts"][0]
    assert sent.get("thoughtSignature"), sent
    no_violations()


def test_native_stream_with_thoughts():
    body = {"contents": [{"role": "user", "parts": [{"text": "native stream"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True,
                                                    "thinkingBudget": 1024}}}
    st, h, raw = native("streamGenerateContent", body)
    assert st == 200 and h["content-type"].startswith("text/event-stream"), raw[:300]
    ev = [d for _, d in sse(raw)]
    assert ev and all("candidates" in d and "response" not in d for d in ev), ev[:2]
    parts = [p for d in ev for p in d["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts if p.get("thought")) == "Let me think."
    assert "".join(p.get("text", "") for p in parts if not p.get("thought")) == \
        "fake gemini answer to: native stream"
    assert ev[-1]["candidates"][0]["finishReason"] == "STOP"
    assert ev[-1]["usageMetadata"]["thoughtsTokenCount"] == 3
    r = reqs()[-1]
    assert r["path"] == "/v1internal:streamGenerateContent"
    no_violations()


def test_count_tokens():
    body = {"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]}
    st, _, raw = native("countTokens", body)
    assert st == 200, raw
    assert json.loads(raw)["totalTokens"] == 104, raw
    r = reqs(":countTokens")[-1]
    assert r["path"] == "/v1internal:countTokens"
    assert "model" not in r["body"] and "project" not in r["body"], r["body"]
    no_violations()


def test_429_retryinfo_rotates_for_30s():
    post(fake, "script", {"gema": [{"status": 429, "retry_delay": "30s"}]})
    n0 = len(reqs())
    for i in range(6):
        st, _, body = chat(f"rot {i}")
        assert st == 200, body  # the 429 is never seen by the client
    seen = reqs()[n0:]
    hit = [i for i, r in enumerate(seen) if r["account"] == "gema"]
    assert hit, "credential a was never tried"
    after = seen[hit[0] + 1:]
    assert len(after) >= 5 and all(r["account"] == "gemb" for r in after), \
        [r["account"] for r in seen]
    assert get(fake, "stats")["by_account"]["gema"].get("429") == 1


def test_stream_cut_ends_with_error():
    # credential a is still cooling from the 429: b serves, and its stream dies after the
    # first text piece (no finishReason): the client has text, so it gets an error, no [DONE]
    post(fake, "script", {"gemb": [{"cut": True}], "gema": [{"cut": True}]})
    st, _, raw = chat("cut me", stream=True)
    assert st == 200, raw[:300]
    ev = [d for _, d in sse(raw)]
    assert "[DONE]" not in ev, "an upstream stream cut reached the client as a clean end"
    assert isinstance(ev[-1], dict) and "error" in ev[-1], ev[-2:]
    assert chat_text(sse(raw)).startswith("fake ge"), raw[:300]


def test_api_key_entry():
    gkey = "AIza-fake-gemini-key-0123456789"
    SECRETS.append(gkey)
    post(fake, "keys", {gkey: "apikey"})
    auth = os.path.join(TMP, "gemini-key-auths")
    os.makedirs(auth, exist_ok=True)
    p, base = start("cliproxyd-gemini-key", KEY, auth, extra=(
        f'gemini-api-key:\n  - api-key: "{gkey}"\n    base-url: "{fake.url}"\n'))
    st, _, body = http("POST", base + "/v1/chat/completions",
                       {"model": "gemini-2.5-flash",
                        "messages": [{"role": "user", "content": "by key"}]}, H)
    assert st == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "fake gemini answer to: by key"
    r = reqs()[-1]
    assert r["path"] in ("/v1beta/models/gemini-2.5-flash:generateContent",
                         "/v1beta/models/gemini-2.5-flash:streamGenerateContent"), r["path"]
    assert r["headers"]["x-goog-api-key"] == gkey and "authorization" not in r["headers"]
    assert "request" not in r["body"] and "project" not in r["body"]
    assert r["body"]["contents"][-1]["parts"][0]["text"] == "by key"
    st, h, raw = native("streamGenerateContent", {"contents": [
        {"role": "user", "parts": [{"text": "key stream"}]}]}, model="gemini-2.5-flash",
        base=base)
    assert st == 200, raw
    text = "".join(p.get("text", "") for _, d in sse(raw)
                   for p in d["candidates"][0]["content"]["parts"])
    assert text == "fake gemini answer to: key stream"
    r = reqs()[-1]
    assert r["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert r["query"]["alt"] == ["sse"] and r["headers"]["x-goog-api-key"] == gkey
    no_violations()
    assert p.stop() == 0
    log = open(p.log, "rb").read()
    assert gkey.encode() not in log


def test_no_secret_in_log():
    assert proc.stop() == 0
    log = open(proc.log, "rb").read()
    for s in SECRETS:
        assert s.encode() not in log, f"secret in log: {s[:12]}..."


run([test_expired_token_refreshed_before_call, test_chat_nonstream, test_chat_stream,
     test_native_generate_passthrough, test_native_tool_round_trip_gets_signature,
     test_native_stream_with_thoughts, test_count_tokens, test_429_retryinfo_rotates_for_30s,
     test_stream_cut_ends_with_error, test_api_key_entry, test_no_secret_in_log])
