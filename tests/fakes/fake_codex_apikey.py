#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_codex_apikey.py - fake_codex.py for codex-api-key entries as well: an access token
registered with {"account_id": "<name>", "api_key": true} is an API key (spec 3.6: same
executor as Codex OAuth but no Originator and no Chatgpt-Account-Id). For such a key the
fake requires those two headers to be absent instead of present; every other Codex wire
rule of fake_codex.py still applies. OAuth tokens are checked exactly as fake_codex.py does.
Same routes and control endpoints as fake_codex.py."""
import fake_codex
from fakelib import reply, serve

_oauth_responses = fake_codex.responses


async def responses(writer, headers, body):
    token = headers.get("authorization", "")[7:]
    acct = fake_codex.ACCOUNTS.get(token)
    if not acct or not acct.get("api_key"):
        return await _oauth_responses(writer, headers, body)
    aid = acct["account_id"]
    v = [r for r in fake_codex.wire_check(headers, body) if not r.startswith("Originator")]
    for k in ("originator", "chatgpt-account-id"):
        if k in headers:
            v.append(f"no {k} header with a codex-api-key")
    if v:
        fake_codex.STATS["violations"].append({"account": aid, "rules": v})
        reply(writer, 400, {"error": {"type": "fake_wire_check", "message": "; ".join(v)}})
        return 400
    # the OAuth path re-checks Chatgpt-Account-Id; pretend the header matches for it
    return await _oauth_responses(writer, dict(headers, **{"chatgpt-account-id": aid,
                                                           "originator": "api-key"}), body)


fake_codex.responses = responses

if __name__ == "__main__":
    serve(fake_codex.handle)
