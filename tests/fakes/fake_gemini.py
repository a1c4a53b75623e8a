#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_gemini.py - a fake Google Gemini upstream for tests: the Code Assist endpoint Gemini
CLI credentials use (cloudcode-pa v1internal), the public Gemini API (v1beta, API keys) and
Google's OAuth token endpoint.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready.

  POST /v1internal:generateContent            Gemini CLI (OAuth). Checks the rules of
  POST /v1internal:streamGenerateContent?alt=sse  ../shared/spec/cliproxyapi.md 3.3 and 8:
  POST /v1internal:countTokens                exactly one Authorization: Bearer <registered,
                                              unexpired token>, no x-goog-api-key; User-Agent
                                              GeminiCLI/<ver>/<model> (<os>; <arch>) naming the
                                              body's model; X-Goog-Api-Client
                                              google-genai-sdk/1.41.0 gl-node/v22.19.0; the body
                                              {"model","project","request"} with project = the
                                              credential's project (countTokens: only
                                              "request"); request.safetySettings present on
                                              generate calls; every functionCall part carries a
                                              thoughtSignature; plus the body rules below.
                                              Answers wrapped {"response": <Gemini response>}.
  POST /v1beta/models/<model>:generateContent | :streamGenerateContent?alt=sse | :countTokens
                                              the public API: x-goog-api-key <registered key>,
                                              no Authorization; raw Gemini JSON (no envelope).
  Body rules (both): contents is a non-empty array of {role user|model, parts non-empty};
  parts are text / inlineData / fileData / functionCall / functionResponse / thought parts;
  functionDeclarations names valid and their parameters free of $schema,
  additionalProperties, strict; generationConfig keys known to the API.
  A violation: 400 {"error":{"code":400,"message":...,"status":"INVALID_ARGUMENT"}} and
  recorded in /_stats "violations".
  POST /token                                 Google's token endpoint: form grant_type=
                                              refresh_token, refresh_token, client_id,
                                              client_secret (must match the registered ones).
  POST /_accounts  {"<access_token>": {"account", "project", "refresh_token", "client_id",
                   "client_secret", "expires": unix}}
  POST /_keys      {"<api key>": "<name>"}
  POST /_script    {"<account or key name>" | "*": [step, ...]}: {"status": 429,
                   "retry_delay": "30s"} (RESOURCE_EXHAUSTED with RetryInfo) | {"status":
                   403|500|503|401} | {"cut": true} (stream closed after the first chunk, no
                   finishReason) | {"thoughts": true} | {"text": "..."} | {"usage": {...}} |
                   {"ok": true}
  POST /_config    {"crlf": bool}: SSE events end with \\r\\n\\r\\n (default, as Google) or \\n\\n
  GET  /_requests  [{"path","query","headers","body","account","time"}], newest last
  GET  /_stats     {"by_account": {name: {status: n}}, "violations", "refreshes", "requests"}
  POST /_reset
Answers "fake gemini answer to: <last user text>"; thought parts when the request asks
includeThoughts or the step says thoughts; a functionCall (with a thoughtSignature) when
tools are offered and the text contains "call_tool"; after a functionResponse,
"fake gemini got tool result: <response JSON>". usageMetadata: prompt 21, candidates 8,
thoughts 3 when thinking, cached 5. countTokens: {"totalTokens": 100 + words of all text}.
"""
import json
import re
import time
import uuid
from urllib.parse import parse_qs

from fakelib import reply, serve, stream_chunk, stream_end, stream_head

ACCOUNTS, REFRESH, KEYS, SCRIPT, REQUESTS = {}, {}, {}, {}, []
STATS = {"by_account": {}, "violations": [], "refreshes": 0, "requests": 0}
CONFIG = {"crlf": True}
API_CLIENT = "google-genai-sdk/1.41.0 gl-node/v22.19.0"
UA_RE = re.compile(r"^GeminiCLI/[0-9][0-9.]*/(\S+) \((linux|darwin|win32); (x64|arm64|x86)\)$")
DEFAULT_SAFETY = {"HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
                  "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT",
                  "HARM_CATEGORY_CIVIC_INTEGRITY"}
PART_KEYS = {"text", "inlineData", "fileData", "functionCall", "functionResponse",
             "executableCode", "codeExecutionResult"}
PART_EXTRA = {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}
GEN_KEYS = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences",
            "seed", "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema",
            "responseJsonSchema", "thinkingConfig", "responseModalities", "imageConfig",
            "responseLogprobs", "logprobs", "mediaResolution", "speechConfig",
            "enableEnhancedCivicAnswers"}
REQ_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
            "safetySettings", "cachedContent", "labels", "sessionId", "model"}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
BAD_SCHEMA = ("$schema", "additionalProperties", "strict")
USAGE = {"promptTokenCount": 21, "candidatesTokenCount": 8, "cachedContentTokenCount": 5}


def schema_violations(s, where, v):
    if isinstance(s, dict):
        for k, x in s.items():
            if k in BAD_SCHEMA:
                v.append(f'Invalid JSON payload received. Unknown name "{k}" at {where}')
            schema_violations(x, f"{where}.{k}", v)
    elif isinstance(s, list):
        for i, x in enumerate(s):
            schema_violations(x, f"{where}[{i}]", v)


def body_rules(req_body, v, count=False):
    """Rules of the Gemini API on a GenerateContentRequest."""
    if not isinstance(req_body, dict):
        v.append("request is an object")
        return
    for k in req_body:
        if k not in REQ_KEYS:
            v.append(f'Invalid JSON payload received. Unknown name "{k}"')
    contents = req_body.get("contents")
    if not isinstance(contents, list) or not contents:
        v.append("contents is a non-empty array")
        return
    for i, c in enumerate(contents):
        if not isinstance(c, dict) or c.get("role", "user") not in ("user", "model"):
            v.append(f"contents[{i}].role: Please use a valid role: user, model.")
            continue
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            v.append(f"contents[{i}].parts must not be empty")
            continue
        for j, p in enumerate(parts):
            kinds = [k for k in p if k in PART_KEYS] if isinstance(p, dict) else []
            if len(kinds) != 1 or any(k not in PART_KEYS | PART_EXTRA for k in p):
                v.append(f"contents[{i}].parts[{j}] has exactly one data field (got "
                         f"{sorted(p) if isinstance(p, dict) else p!r})")
                continue
            if "functionCall" in p:
                fc = p["functionCall"]
                if not NAME_RE.match(fc.get("name", "")) or not isinstance(fc.get("args", {}),
                                                                          dict):
                    v.append(f"contents[{i}].parts[{j}].functionCall has a valid name and "
                             f"object args")
                if c.get("role") != "model":
                    v.append(f"contents[{i}] functionCall only in a model turn")
            if "functionResponse" in p:
                fr = p["functionResponse"]
                if not fr.get("name") or not isinstance(fr.get("response"), dict):
                    v.append(f"contents[{i}].parts[{j}].functionResponse has name and an "
                             f"object response")
    si = req_body.get("systemInstruction")
    if si is not None and not (isinstance(si, dict) and isinstance(si.get("parts"), list)):
        v.append("systemInstruction is {role?, parts: [...]}")
    for i, t in enumerate(req_body.get("tools") or []):
        for j, fd in enumerate(t.get("functionDeclarations") or []):
            if not NAME_RE.match(fd.get("name", "")):
                v.append(f"tools[{i}].functionDeclarations[{j}].name invalid")
            schema_violations(fd.get("parameters"), f"tools[{i}].functionDeclarations[{j}]"
                              f".parameters", v)
    for k in req_body.get("generationConfig") or {}:
        if k not in GEN_KEYS:
            v.append(f'Invalid JSON payload received. Unknown name "{k}" at generationConfig')


def signature_rules(req_body, v):
    for i, c in enumerate(req_body.get("contents") or []):
        for j, p in enumerate(c.get("parts") or [] if isinstance(c, dict) else []):
            if isinstance(p, dict) and "functionCall" in p and not p.get("thoughtSignature"):
                v.append(f"contents[{i}].parts[{j}]: functionCall part carries a "
                         f"thoughtSignature")


def safety_rules(req_body, v):
    ss = req_body.get("safetySettings")
    if not isinstance(ss, list) or not ss or not all(
            isinstance(s, dict) and s.get("category") and s.get("threshold") for s in ss):
        v.append("request.safetySettings present ([{category, threshold}], the defaults when "
                 "the client sent none)")


def cli_check(req, body, action, acct):
    h, v = req.headers, []
    if req.counts.get("authorization", 0) != 1:
        v.append("exactly one Authorization: Bearer header")
    if "x-goog-api-key" in h:
        v.append("no x-goog-api-key with an OAuth token")
    if h.get("content-type", "").split(";")[0] != "application/json":
        v.append("Content-Type: application/json")
    m = UA_RE.match(h.get("user-agent", ""))
    if not m:
        v.append(f"User-Agent GeminiCLI/<ver>/<model> (<os>; <arch>) (got "
                 f"{h.get('user-agent')!r})")
    if h.get("x-goog-api-client") != API_CLIENT:
        v.append(f"X-Goog-Api-Client: {API_CLIENT} (got {h.get('x-goog-api-client')!r})")
    if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
        return v + ['the body is the envelope {"model","project","request":{...}}']
    if action == "countTokens":
        if "project" in body or "model" in body:
            v.append("countTokens envelope has no model and no project")
    else:
        for k in body:
            if k not in ("model", "project", "request", "user_prompt_id"):
                v.append(f'Invalid JSON payload received. Unknown name "{k}" (envelope)')
        model = body.get("model")
        if not isinstance(model, str) or not model or "(" in model:
            v.append("envelope model present with the (...) suffix stripped")
        elif m and m.group(1) != model:
            v.append(f"User-Agent names the model {model!r} (got {m.group(1)!r})")
        if body.get("project") != acct.get("project"):
            v.append(f"envelope project equals the stored project_id {acct.get('project')!r} "
                     f"(got {body.get('project')!r})")
        safety_rules(body["request"], v)
    body_rules(body["request"], v, action == "countTokens")
    signature_rules(body["request"], v)
    return v


def api_check(req, body, model):
    h, v = req.headers, []
    if "authorization" in h:
        v.append("no Authorization header with an API key (x-goog-api-key only)")
    if h.get("content-type", "").split(";")[0] != "application/json":
        v.append("Content-Type: application/json")
    if not model or "(" in model:
        v.append("model in the URL with the (...) suffix stripped")
    if not isinstance(body, dict):
        return v + ["body is a JSON object"]
    for k in ("project", "request"):
        if k in body:
            v.append(f"raw Gemini JSON (no {k!r} envelope) on the public API")
    body_rules(body, v)
    signature_rules(body, v)
    return v


def google_error(code, message, status, details=None):
    e = {"code": code, "message": message, "status": status}
    if details:
        e["details"] = details
    return {"error": e}


STATUS_NAME = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def last_user(req_body):
    """(text, functionResponse or None) of the last user turn."""
    for c in reversed(req_body.get("contents") or []):
        if c.get("role", "user") != "user":
            continue
        parts = c.get("parts") or []
        frs = [p["functionResponse"] for p in parts if "functionResponse" in p]
        text = "".join(p.get("text", "") for p in parts if "text" in p and not p.get("thought"))
        return text, (frs[-1] if frs else None)
    return "", None


def count_words(req_body):
    n = 0
    for c in (req_body.get("contents") or []) + [req_body.get("systemInstruction") or {}]:
        for p in c.get("parts") or []:
            n += len(str(p.get("text", "")).split())
    return n


def answer_parts(req_body, step):
    """The model's parts: [thought], text pieces or a functionCall."""
    text, fr = last_user(req_body)
    thinking = step.get("thoughts") or ((req_body.get("generationConfig") or {}).get(
        "thinkingConfig") or {}).get("includeThoughts") is True
    out = []
    if thinking:
        out.append({"text": "Let me think.", "thought": True})
    decls = [fd for t in req_body.get("tools") or [] for fd in t.get("functionDeclarations") or []]
    if fr is not None:
        out.append({"text": f"fake gemini got tool result: {json.dumps(fr.get('response'))}"})
    elif decls and "call_tool" in text:
        out.append({"functionCall": {"name": decls[0]["name"], "args": {"city": "Paris"}},
                    "thoughtSignature": "c2lnLWZha2U="})
    else:
        out.append({"text": step.get("text", f"fake gemini answer to: {text}")})
    return out, thinking


def usage_of(step, thinking):
    u = dict(USAGE, **(step.get("usage") or {}))
    if thinking:
        u["thoughtsTokenCount"] = 3
    u["totalTokenCount"] = u["promptTokenCount"] + u["candidatesTokenCount"] + u.get(
        "thoughtsTokenCount", 0)
    return u


def response_obj(parts, model, usage=None, finish=None, rid="resp-x"):
    cand = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    r = {"candidates": [cand], "modelVersion": model, "responseId": rid}
    if usage:
        r["usageMetadata"] = usage
    return r


def stream_pieces(parts, model, usage, rid):
    """Each part (text split in 7-char pieces) its own event; the last carries the finish
    reason and the usage."""
    evs = []
    for p in parts:
        if "text" in p and not p.get("thought"):
            t = p["text"]
            for i in range(0, len(t), 7):
                evs.append(response_obj([dict(p, text=t[i:i + 7])], model, rid=rid))
        else:
            evs.append(response_obj([p], model, rid=rid))
    evs.append(response_obj([{"text": ""}], model, usage, "STOP", rid))
    return evs


async def generate(req, writer, cli, action, model, body, name, step):
    req_body = body["request"] if cli else body
    if action == "countTokens":
        reply(writer, 200, {"totalTokens": 100 + count_words(req_body)})
        return 200
    st = step.get("status")
    if st == 429:
        details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED", "domain": "cloudcode-pa.googleapis.com"}]
        if "retry_delay" in step:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": step["retry_delay"]})
        reply(writer, 429, google_error(429, "Resource has been exhausted (e.g. check quota).",
                                        "RESOURCE_EXHAUSTED", details))
        return 429
    if st:
        reply(writer, st, google_error(st, f"fake {st}", STATUS_NAME.get(st, "UNKNOWN")))
        return st
    parts, thinking = answer_parts(req_body, step)
    usage = usage_of(step, thinking)
    rid = "resp-" + uuid.uuid4().hex[:10]
    wrap = (lambda r: {"response": r, "traceId": "trace-" + rid}) if cli else (lambda r: r)
    if action == "generateContent":
        merged = []
        for p in parts:
            merged.append(p)
        reply(writer, 200, wrap(response_obj(merged, model, usage, "STOP", rid)))
        return 200
    end = b"\r\n\r\n" if CONFIG["crlf"] else b"\n\n"
    stream_head(writer)
    evs = stream_pieces(parts, model, usage, rid)
    if step.get("cut"):
        evs = evs[:1]
    for ev in evs:
        await stream_chunk(writer, b"data: " + json.dumps(wrap(ev)).encode() + end)
    if step.get("cut"):
        return -1
    stream_end(writer)
    return 200


def token_endpoint(req, writer):
    form = {k: v[0] for k, v in parse_qs(req.raw.decode()).items()}
    bad = []
    if req.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        bad.append("form content type")
    if form.get("grant_type") != "refresh_token":
        bad.append("grant_type=refresh_token")
    acct_tok = REFRESH.get(form.get("refresh_token"))
    acct = ACCOUNTS.get(acct_tok) if acct_tok else None
    if acct is None:
        reply(writer, 400, {"error": "invalid_grant", "error_description": "Bad Request"})
        return
    for k in ("client_id", "client_secret"):
        if not form.get(k) or (acct.get(k) and form.get(k) != acct[k]):
            bad.append(f"{k} of the credential in the form")
    if bad:
        STATS["violations"].append({"refresh": bad})
        reply(writer, 400, {"error": "invalid_request", "error_description": "; ".join(bad)})
        return
    STATS["refreshes"] += 1
    new = "ya29.fake-" + uuid.uuid4().hex
    ACCOUNTS[new] = dict(acct, expires=time.time() + 3599)
    REFRESH[form["refresh_token"]] = new
    reply(writer, 200, {"access_token": new, "expires_in": 3599, "token_type": "Bearer",
                        "scope": "https://www.googleapis.com/auth/cloud-platform"})


def route(path):
    """(cli, action, model) or None."""
    m = re.match(r"^/v1internal:(generateContent|streamGenerateContent|countTokens)$", path)
    if m:
        return True, m.group(1), None
    m = re.match(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$",
                 path)
    if m:
        return False, m.group(2), m.group(1)
    return None


async def inference(req, writer, cli, action, model):
    try:
        body = req.json()
    except ValueError:
        body = None
    if cli:
        token = req.headers.get("authorization", "")[7:]
        acct = ACCOUNTS.get(token)
        name = acct["account"] if acct else "?"
        if isinstance(body, dict):
            model = body.get("model") or model
    else:
        acct = None
        name = KEYS.get(req.headers.get("x-goog-api-key", ""), "?")
    STATS["requests"] += 1
    REQUESTS.append({"path": req.path, "query": req.query, "headers": dict(req.headers),
                     "body": body, "account": name, "time": time.time()})
    del REQUESTS[:-2000]
    if cli and (acct is None or acct.get("expires", 1e18) < time.time()
                or not req.headers.get("authorization", "").startswith("Bearer ")):
        reply(writer, 401, google_error(401, "Request had invalid authentication credentials. "
                                        "Expected OAuth 2 access token.", "UNAUTHENTICATED"))
        return name, 401
    if not cli and name == "?":
        reply(writer, 400, google_error(400, "API key not valid. Please pass a valid API key.",
                                        "INVALID_ARGUMENT"))
        return name, 400
    if body is None:
        reply(writer, 400, google_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"))
        return name, 400
    v = cli_check(req, body, action, acct) if cli else api_check(req, body, model)
    if action == "streamGenerateContent" and req.query.get("alt") != ["sse"]:
        v.append("streamGenerateContent?alt=sse")
    if v:
        STATS["violations"].append({"account": name, "path": req.path, "rules": v})
        reply(writer, 400, google_error(400, "; ".join(v), "INVALID_ARGUMENT"))
        return name, 400
    q = SCRIPT.get(name) or SCRIPT.get("*") or []
    step = q.pop(0) if q and action != "countTokens" else {}
    return name, await generate(req, writer, cli, action, model or "gemini", body, name, step)


async def handle(req, writer):
    r = route(req.path)
    if r and req.method == "POST":
        name, st = await inference(req, writer, *r)
        by = STATS["by_account"].setdefault(name, {})
        by[str(st)] = by.get(str(st), 0) + 1
        return "close" if st == -1 else None
    body = {}
    if req.raw and req.path != "/token":
        body = req.json()
    if req.path == "/token" and req.method == "POST":
        token_endpoint(req, writer)
    elif req.path == "/_accounts":
        for tok, a in body.items():
            ACCOUNTS[tok] = a
            if a.get("refresh_token"):
                REFRESH[a["refresh_token"]] = tok
        reply(writer, 200, {"ok": True})
    elif req.path == "/_keys":
        KEYS.update(body)
        reply(writer, 200, {"ok": True})
    elif req.path == "/_script":
        for k, steps in body.items():
            SCRIPT.setdefault(k, []).extend(steps)
        reply(writer, 200, {"ok": True})
    elif req.path == "/_config":
        CONFIG.update(body)
        reply(writer, 200, CONFIG)
    elif req.path == "/_requests":
        reply(writer, 200, REQUESTS)
    elif req.path == "/_stats":
        reply(writer, 200, STATS)
    elif req.path == "/_reset":
        REQUESTS.clear()
        SCRIPT.clear()
        STATS.update({"by_account": {}, "violations": [], "requests": 0})
        reply(writer, 200, {"ok": True})
    else:
        reply(writer, 404, google_error(404, "no route " + req.path, "NOT_FOUND"))
    return None


if __name__ == "__main__":
    serve(handle)
