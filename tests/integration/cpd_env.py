# SPDX-License-Identifier: MIT
"""cpd_env.py - what the cliproxyd provider tests (54-58) share: credential files for the
fakes (Gemini CLI, Qwen, iFlow, Codex, Claude), a config writer, starting cliproxyd, and
client-side helpers (SSE parsing, the fakes' control endpoints)."""
import json
import os
import time

from harness import BUILD, TMP, Proc, free_port, http, jwt, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")


def rfc3339(offset_s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def write_json(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(path + ".tmp", path)
    return path


def gemini_cred(fake, auth, name, project, expires_in=3600):
    """A Gemini CLI auth file whose token the fake accepts (or will refresh when expired)."""
    at, rt = f"ya29.{name}-0123456789abcdef", f"1//rt-{name}-0123456789"
    cid, sec = f"cid-{name}.apps.googleusercontent.com", f"GOCSPX-{name}-secret"
    http("POST", fake.url + "/_accounts", {at: {
        "account": name, "project": project, "refresh_token": rt, "client_id": cid,
        "client_secret": sec, "expires": time.time() + expires_in}})
    path = os.path.join(auth, f"gemini-{name}@example.com-{project}.json")
    write_json(path, {"type": "gemini", "email": f"{name}@example.com", "project_id": project,
                      "auto": False, "checked": True,
                      "token": {"access_token": at, "refresh_token": rt, "token_type": "Bearer",
                                "expiry": rfc3339(expires_in), "client_id": cid,
                                "client_secret": sec, "token_uri": fake.url + "/token",
                                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                                "universe_domain": "googleapis.com"}})
    return path, at


def qwen_cred(fake, auth, name, expires_in=86400):
    at, rt = f"qat-{name}-0123456789abcdef", f"qrt-{name}-0123456789abcdef"
    http("POST", fake.url + "/_accounts", {at: {"account": name, "refresh_token": rt,
                                                "expires": time.time() + expires_in}})
    path = os.path.join(auth, f"qwen-{name}@example.com.json")
    write_json(path, {"type": "qwen", "access_token": at, "refresh_token": rt,
                      "resource_url": fake.url, "email": f"{name}@example.com",
                      "expired": rfc3339(expires_in), "last_refresh": rfc3339(-600)})
    return path, at


def iflow_cred(fake, auth, name, expires_in=30 * 86400):
    key, at, rt = (f"sk-iflow-{name}-0123456789abcdef", f"iat-{name}-0123456789abcdef",
                   f"irt-{name}-0123456789abcdef")
    http("POST", fake.url + "/_accounts", {key: {"account": name, "access_token": at,
                                                 "refresh_token": rt,
                                                 "email": f"{name}@example.com"}})
    path = os.path.join(auth, f"iflow-{name}@example.com-1700000000.json")
    write_json(path, {"type": "iflow", "access_token": at, "refresh_token": rt, "api_key": key,
                      "email": f"{name}@example.com", "token_type": "bearer", "scope": "read",
                      # refreshed long ago: the 24 h lead applies in full (a token whose
                      # life is under twice the lead is refreshed at half its life)
                      "expired": rfc3339(expires_in), "last_refresh": rfc3339(-30 * 86400)})
    return path, key


def codex_cred(fake, auth, name):
    tok = f"at-{name}-0123456789abcdef"
    http("POST", fake.url + "/_accounts", {tok: {"account_id": "acct-" + name}})
    write_json(os.path.join(auth, f"codex-{name}@example.com-pro.json"), {
        "type": "codex", "email": f"{name}@example.com", "access_token": tok,
        "refresh_token": f"rt-{name}", "expired": "2099-01-01T00:00:00Z",
        "id_token": jwt({"email": f"{name}@example.com", "https://api.openai.com/auth": {
            "chatgpt_account_id": "acct-" + name, "chatgpt_plan_type": "pro"}})})
    return tok


def claude_cred(fake, auth, name):
    tok, rt = f"sk-ant-oat01-{name}-0123456789abcdef", f"sk-ant-ort01-{name}-0123456789"
    http("POST", fake.url + "/_accounts", {tok: {"account": name, "refresh_token": rt}})
    write_json(os.path.join(auth, f"claude-{name}@example.com.json"), {
        "type": "claude", "email": f"{name}@example.com", "access_token": tok,
        "refresh_token": rt, "expired": rfc3339(30 * 86400)})
    return tok


def start(name, key, auth, upstreams=None, extra=""):
    """Starts cliproxyd: @upstreams {provider: {"base-url": ..., "token-url": ...}}, @extra
    raw YAML appended. Returns (proc, base url)."""
    port = free_port()
    cfg = os.path.join(TMP, f"{name}.yaml")
    y = (f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{auth}"\napi-keys:\n  - "{key}"\n'
         f'remote-management:\n  secret-key: "mgmt-{name}-secret"\n')
    if upstreams:
        y += "upstreams:\n"
        for prov, urls in upstreams.items():
            y += f"  {prov}:\n" + "".join(f'    {k}: "{v}"\n' for k, v in urls.items())
    with open(cfg, "w") as f:
        f.write(y + extra)
    p = Proc(name, [BIN, "-config", cfg], check_exit=True)
    wait_port(port, p)
    return p, f"http://127.0.0.1:{port}"


def sse(raw):
    """[(event or None, parsed data or "[DONE]")] of an SSE body (\\n or \\r\\n framing)."""
    out = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        ev, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            d = "\n".join(data)
            out.append((ev, d if d == "[DONE]" else json.loads(d)))
    return out


def chat_text(events):
    return "".join((c["choices"][0]["delta"].get("content") or "") for _, c in events
                   if c != "[DONE]" and c.get("choices"))


def get(fake, what):
    return json.loads(http("GET", fake.url + "/_" + what)[2])


def post(fake, what, obj):
    st, _, body = http("POST", fake.url + "/_" + what, obj)
    assert st == 200, body


def wait_for(pred, what, secs=8.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {secs} s: {what}")
