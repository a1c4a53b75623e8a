#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_oauth.py - fake login endpoints of the five OAuth providers, for the login tests.

Standard library only; 127.0.0.1 only; prints "PORT <n>" when ready. Every endpoint checks
the wire format of spec cliproxyapi.md 3.1(b)..3.5(b); a violation is answered 400
{"error":"fake_wire_check","detail":...} and recorded in /_stats "violations".

  POST /__issue                 {"code","challenge"?,"redirect_uri"?} registers a code the
                                token endpoints accept (the test, playing the browser, reads
                                code_challenge from the printed authorize URL)
  POST /codex/token             form, client_id app_EMoamEEZ73f0CkXaXp7hrann,
                                grant_type=authorization_code, S256(code_verifier)==challenge
                                (refresh_token grants of a running daemon: new tokens)
  POST /codex/device/usercode   JSON {client_id} -> device_auth_id, user_code, interval "1"
  POST /codex/device/token      JSON {device_auth_id,user_code}: 403 once, then the code +
                                code_verifier (the code is issued for deviceauth/callback)
  POST /claude/token            JSON {code,state,grant_type,client_id,redirect_uri,code_verifier}
  POST /gemini/token            form with Google client id + secret
  GET  /gemini/userinfo         Bearer required -> {"email"}
  POST /gemini/v1internal:loadCodeAssist, :onboardUser   Bearer; project "fake-project-1"
  POST /qwen/device             form: client_id, scope, code_challenge, S256
  POST /qwen/token              form device_code grant: authorization_pending once, then tokens
  POST /iflow/token             form + Authorization: Basic base64(id:secret)
  GET  /iflow/userinfo?accessToken=   -> {"success":true,"data":{"apiKey","email","phone"}}
  GET  /iflow/apikey            Cookie BXAuth=... -> {"data":{"name","apiKeyMask","expireTime"}}
  POST /iflow/apikey            Cookie + Origin/Referer, JSON {"name"} -> fresh apiKey
  GET  /_requests, /_stats      what was seen; {"violations": [...], "tokens": N}
"""
import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs

from fakelib import jwt, reply, serve

CODEX_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
CLAUDE_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
GEMINI_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
GEMINI_SECRET = "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"
QWEN_ID = "f0304373b74a44d2b584a3fb70ca9e56"
IFLOW_ID, IFLOW_SECRET = "10009311001", "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"
DEVICE_REDIRECT = "https://auth.openai.com/deviceauth/callback"

CODES = {}      # code -> {"challenge", "redirect_uri"}
DEVICE = {}     # codex device_auth_id / qwen device_code -> state
REQUESTS = []
STATS = {"violations": [], "tokens": 0}


def s256(v):
    return base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()


class Wire(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Wire(what)


def form(req):
    need(req.headers.get("content-type", "").split(";")[0] == "application/x-www-form-urlencoded",
         f"{req.path}: Content-Type must be application/x-www-form-urlencoded")
    return {k: v[0] for k, v in parse_qs(req.raw.decode(), keep_blank_values=True).items()}


def jbody(req):
    need(req.headers.get("content-type", "").split(";")[0] == "application/json",
         f"{req.path}: Content-Type must be application/json")
    return req.json()


def use_code(code, verifier=None, redirect=None):
    """Checks and consumes a registered code (PKCE when a challenge was registered)."""
    c = CODES.pop(code, None)
    need(c is not None, "unknown or reused code")
    if c.get("challenge"):
        need(verifier and s256(verifier) == c["challenge"], "S256(code_verifier) != challenge")
    if c.get("redirect_uri"):
        need(redirect == c["redirect_uri"], f"redirect_uri {redirect!r} != {c['redirect_uri']!r}")


def tokens(prefix, **extra):
    STATS["tokens"] += 1
    d = {"access_token": f"{prefix}-at-{secrets.token_hex(6)}",
         "refresh_token": f"{prefix}-rt-{secrets.token_hex(6)}",
         "token_type": "Bearer", "expires_in": 3600}
    d.update(extra)
    return d


def bearer(req):
    a = req.headers.get("authorization", "")
    need(a.startswith("Bearer ") and "-at-" in a, f"{req.path}: Authorization: Bearer <token>")


async def handle(req, writer):
    path, m = req.path, req.method
    REQUESTS.append({"method": m, "path": path, "headers": req.headers,
                     "body": req.raw.decode("utf-8", "replace")})
    try:
        if path == "/__issue":
            b = req.json()
            CODES[b["code"]] = {"challenge": b.get("challenge"),
                                "redirect_uri": b.get("redirect_uri")}
            reply(writer, 200, {"ok": True})
        elif path == "/codex/token":
            f = form(req)
            if f.get("grant_type") == "refresh_token":  # a running daemon refreshing
                need(f.get("client_id") == CODEX_ID and f.get("refresh_token"), "codex refresh")
                reply(writer, 200, tokens("codex"))
                return
            need(req.headers.get("accept") == "application/json", "codex: Accept")
            need(f.get("grant_type") == "authorization_code", "codex: grant_type")
            need(f.get("client_id") == CODEX_ID, "codex: client_id")
            use_code(f.get("code"), f.get("code_verifier"), f.get("redirect_uri"))
            email = "codex-user@example.com"
            idt = jwt({"email": email, "https://api.openai.com/auth": {
                "chatgpt_account_id": "acct-login-1", "chatgpt_plan_type": "plus"}})
            reply(writer, 200, tokens("codex", id_token=idt))
        elif path == "/codex/device/usercode":
            b = jbody(req)
            need(b.get("client_id") == CODEX_ID, "codex device: client_id")
            did = "dev-" + secrets.token_hex(4)
            DEVICE[did] = {"polls": 0, "user_code": "ABCD-1234"}
            reply(writer, 200, {"device_auth_id": did, "usercode": "ABCD-1234", "interval": "1"})
        elif path == "/codex/device/token":
            b = jbody(req)
            d = DEVICE.get(b.get("device_auth_id"))
            need(d is not None and b.get("user_code") == d["user_code"], "codex device poll body")
            d["polls"] += 1
            if d["polls"] < 2:
                reply(writer, 403, {"error": "authorization_pending"})
            else:
                ver = secrets.token_urlsafe(48)
                code = "devcode-" + secrets.token_hex(4)
                CODES[code] = {"challenge": s256(ver), "redirect_uri": DEVICE_REDIRECT}
                reply(writer, 200, {"authorization_code": code, "code_verifier": ver,
                                    "code_challenge": s256(ver)})
        elif path == "/claude/token":
            b = jbody(req)
            if b.get("grant_type") == "refresh_token":  # a running daemon refreshing
                need(b.get("client_id") == CLAUDE_ID and b.get("refresh_token"), "claude refresh")
                reply(writer, 200, tokens("sk-ant-oat01-claude"))
                return
            need(b.get("grant_type") == "authorization_code", "claude: grant_type")
            need(b.get("client_id") == CLAUDE_ID, "claude: client_id")
            need(b.get("state"), "claude: state")
            use_code(b.get("code"), b.get("code_verifier"), b.get("redirect_uri"))
            reply(writer, 200, tokens("sk-ant-oat01-claude",
                                      account={"email_address": "claude-user@example.com"}))
        elif path == "/gemini/token":
            f = form(req)
            need(f.get("grant_type") == "authorization_code", "gemini: grant_type")
            need(f.get("client_id") == GEMINI_ID and f.get("client_secret") == GEMINI_SECRET,
                 "gemini: client id/secret")
            use_code(f.get("code"), None, f.get("redirect_uri"))
            reply(writer, 200, tokens("ya29.gemini", scope="openid"))
        elif path == "/gemini/userinfo":
            bearer(req)
            need(req.query.get("alt") == ["json"], "gemini userinfo: alt=json")
            reply(writer, 200, {"email": "gemini-user@example.com"})
        elif path == "/gemini/v1internal:loadCodeAssist":
            bearer(req)
            b = jbody(req)
            need(b.get("metadata", {}).get("pluginType") == "GEMINI", "loadCodeAssist metadata")
            reply(writer, 200, {"allowedTiers": [{"id": "free-tier", "isDefault": True}]})
        elif path == "/gemini/v1internal:onboardUser":
            bearer(req)
            b = jbody(req)
            need(b.get("tierId") == "free-tier", "onboardUser: tierId")
            reply(writer, 200, {"done": True,
                                "response": {"cloudaicompanionProject": {"id": "fake-project-1"}}})
        elif path == "/qwen/device":
            f = form(req)
            need(f.get("client_id") == QWEN_ID, "qwen: client_id")
            need(f.get("code_challenge_method") == "S256" and f.get("code_challenge"),
                 "qwen: code_challenge S256")
            need(f.get("scope") == "openid profile email model.completion", "qwen: scope")
            dc = "qdev-" + secrets.token_hex(4)
            DEVICE[dc] = {"polls": 0, "challenge": f["code_challenge"]}
            reply(writer, 200, {"device_code": dc, "user_code": "QWEN-42",
                                "verification_uri": "https://chat.qwen.ai/authorize",
                                "verification_uri_complete":
                                    "https://chat.qwen.ai/authorize?user_code=QWEN-42",
                                "expires_in": 300, "interval": 1})
        elif path == "/qwen/token":
            f = form(req)
            need(f.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code",
                 "qwen: grant_type")
            need(f.get("client_id") == QWEN_ID, "qwen poll: client_id")
            d = DEVICE.get(f.get("device_code"))
            need(d is not None, "qwen: unknown device_code")
            need(s256(f.get("code_verifier", "")) == d["challenge"], "qwen: code_verifier")
            d["polls"] += 1
            if d["polls"] < 2:
                reply(writer, 400, {"error": "authorization_pending"})
            else:
                reply(writer, 200, tokens("qwen", resource_url="portal.qwen.ai"))
        elif path == "/iflow/token":
            f = form(req)
            exp = "Basic " + base64.b64encode(f"{IFLOW_ID}:{IFLOW_SECRET}".encode()).decode()
            need(req.headers.get("authorization") == exp, "iflow: Basic auth")
            need(f.get("client_id") == IFLOW_ID and f.get("client_secret") == IFLOW_SECRET,
                 "iflow: client id/secret")
            if f.get("grant_type") == "refresh_token":
                # a daemon running on the auth dir refreshes the new login at once (iFlow's
                # 24 h lead is longer than the fake's token lifetime): a valid refresh
                need("-rt-" in f.get("refresh_token", ""), "iflow refresh: refresh_token")
            else:
                need(f.get("grant_type") == "authorization_code", "iflow: grant_type")
                use_code(f.get("code"), None, f.get("redirect_uri"))
            reply(writer, 200, tokens("iflow", scope="read"))
        elif path == "/iflow/userinfo":
            at = req.query.get("accessToken", [""])[0]
            need("-at-" in at, "iflow userinfo: accessToken")
            reply(writer, 200, {"success": True, "data": {"apiKey": "sk-iflow-" + at[-6:],
                                                          "email": "", "phone": "13800000000"}})
        elif path == "/iflow/apikey":
            need(req.headers.get("cookie", "") == "BXAuth=bx-secret-1;",
                 "iflow apikey: Cookie must be exactly the BXAuth part")
            if m == "GET":
                reply(writer, 200, {"success": True, "data": {
                    "name": "iflow-cookie-user", "apiKeyMask": "sk-***",
                    "expireTime": "2099-01-02 03:04"}})
            else:
                need(req.headers.get("origin") == "https://platform.iflow.cn", "iflow: Origin")
                need(req.headers.get("referer", "").startswith("https://platform.iflow.cn"),
                     "iflow: Referer")
                b = jbody(req)
                need(b.get("name") == "iflow-cookie-user", "iflow apikey POST: name")
                reply(writer, 200, {"success": True, "data": {
                    "name": "iflow-cookie-user", "apiKey": "sk-iflow-fresh-key",
                    "expireTime": "2099-01-02 03:04"}})
        elif path == "/_requests":
            reply(writer, 200, REQUESTS)
        elif path == "/_stats":
            reply(writer, 200, STATS)
        else:
            reply(writer, 404, {"error": "not_found", "path": path})
    except Wire as e:
        STATS["violations"].append(str(e))
        reply(writer, 400, {"error": "fake_wire_check", "detail": str(e)})


if __name__ == "__main__":
    serve(handle)
