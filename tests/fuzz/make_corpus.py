#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py - (re)builds the seed corpora tests/fuzz/corpus/<target>/ from
the test fixtures (tests/fixtures/**, deploy/*.yaml) plus a few hand-written inputs.

Each target's first bytes pick a mode (see the comment at the top of fuzz_<target>.c), so
a seed is b"<mode bytes>" + the fixture. Files are named seed-<hash>; the regression
fixtures (regress-*, inputs that once crashed a target) are never touched. Keeps every
file under 32 KiB (run.sh's -max_len) and the whole corpus small. Run it after adding
fixtures; commit the result. Standard library only.
"""
import glob
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures")
MAX_FILE = 32 * 1024  # run.sh -max_len

corpus = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_FILE:
        return
    corpus.setdefault(target, {})["seed-" + hashlib.sha1(data).hexdigest()[:16]] = data


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fx(pattern):
    return sorted(glob.glob(os.path.join(FIX, pattern)))


def chunks_sse(path):
    """chunks.json ([...] or {"chunks": [...]}) -> the SSE body a Chat upstream sends."""
    v = json.loads(read(path))
    if isinstance(v, dict):
        v = v.get("chunks", [])
    out = ""
    for c in v:
        out += "data: " + json.dumps(c, separators=(",", ":")) + "\n\n"
    return out + "data: [DONE]\n\n"


# ---- fuzz_sse: byte 0 split seed, byte 1 options
for p in fx("translate/*/*/upstream.sse")[:12] + fx("meterd/relay/*.sse"):
    d = read(p)
    add("sse", b"\x00\x00" + d)
    add("sse", b"\x07\x0d" + d)
add("sse", b"\x03\x01\xef\xbb\xbf: hi\r\nevent: x\rdata: a\r\n\r\nid: 7\nretry: 100\ndata\n\n")

# ---- fuzz_json: byte 0 options (6 = default depth)
for p in fx("translate/*/*/in.json")[:30] + fx("cliproxyd/auth/*.json"):
    add("json", b"\x06" + read(p))
add("json", b"\x06" + b'{"a":[1,2.5e3,-0,true,null,"\\u00e9\\ud83d\\ude00"],"b":{"c":{}}}')
add("json", b"\x0e" + b'{"a":1,"a":2}')
add("json", b"\x01" + b"[[[[]]]]")

# ---- fuzz_translate_request: byte 0 translator
REQ_SEL = {"chat_codex": [0, 9], "chat_claude": [1], "chat_gemini": [2],
           "messages_codex": [4], "responses_chat": [3, 5], "messages_chat": [6],
           "gemini_chat": [7, 135]}
for name, sels in REQ_SEL.items():
    for p in fx("translate/%s/*/in.json" % name):
        for s in sels:
            add("translate_request", bytes([s]) + read(p))
add("translate_request", b"\x08" + b'{"model":"gpt-5","prompt":["hi","there"],"max_tokens":5,'
    b'"stream":true,"stream_options":{"include_usage":true},"stop":["\\n"]}')
add("translate_request", b"\x08" + b'{"model":"claude-sonnet-4-5","prompt":"say hi","suffix":"x"}')

# ---- fuzz_translate_stream: byte 0 machine (+128 tools/usage), byte 1 split seed
STREAM_SEL = {"chat_codex": [0, 3, 128], "messages_codex": [3, 131],
              "chat_claude": [1, 129], "chat_gemini": [2, 130]}
for name, sels in STREAM_SEL.items():
    for p in fx("translate/%s/*/upstream.sse" % name):
        for i, s in enumerate(sels):
            add("translate_stream", bytes([s, (i * 5) % 11]) + read(p))
    for p in fx("translate/%s/*/expected_nonstream.json" % name)[:2]:
        add("translate_stream", bytes([sels[0], 0]) + read(p))

# ---- fuzz_pivot_stream: byte 0 adapter (+128 fail), byte 1 split seed
PIVOT_SEL = {"responses_chat": 0, "messages_chat": 1, "gemini_chat": 2}
for name, s in PIVOT_SEL.items():
    for p in fx("translate/%s/*/chunks.json" % name):
        body = chunks_sse(p).encode()
        add("pivot_stream", bytes([s, 0]) + body)
        add("pivot_stream", bytes([s | 128, 9]) + body)
        add("pivot_stream", bytes([3, 5]) + body)  # completions
    for p in fx("translate/%s/*/completion.json" % name):
        add("pivot_stream", bytes([s, 0]) + read(p))
        add("pivot_stream", bytes([3, 0]) + read(p))

# ---- fuzz_config: the YAML as it is
for p in fx("cfg/*.yaml") + fx("cliproxyd/config/*.yaml") + \
        [os.path.join(ROOT, "deploy", "cliproxyd.example.yaml")]:
    if os.path.exists(p):
        # test data stays on loopback: the example's Docker bridge address becomes 127.0.0.1
        add("config", read(p).replace(b"172.17.0.1", b"127.0.0.1"))
add("config", "port: 8317\napi-keys: [k1]\nrouting:\nremote-management:\n  allow-remote: false\n"
    "codex-api-key:\n  - api-key: x\n    base-url: http://127.0.0.1:1\n    headers: {X-A: b}\n"
    "    models: [{name: gpt-5, alias: g}]\n")

# ---- fuzz_authfile: byte 0 name (0 codex .. 4 iflow), or 128 + refresh answers
NAME_SEL = {"codex": 0, "claude": 1, "gemini": 2, "qwen": 3, "iflow": 4}
for p in fx("cliproxyd/auth/*.json"):
    prov = os.path.basename(p).split("-")[0]
    add("authfile", bytes([NAME_SEL.get(prov, 7)]) + read(p))
add("authfile", b"\x03" + b'{"type":"qwen","email":"d@example.com","access_token":"at",'
    b'"refresh_token":"rt","resource_url":"portal.qwen.ai","priority":"5","disabled":false}')
add("authfile", b"\x04" + b'{"type":"iflow","email":"e@example.com","api_key":"k","cookie":"BXAuth=x",'
    b'"expired":"2025-01-01T00:00:00+08:00","headers":{"X-A":"b"},"excluded_models":["m*"]}')
add("authfile", bytes([128 | (0 << 1)]) + b'{"access_token":"new","refresh_token":"r2",'
    b'"id_token":"e30.eyJlbWFpbCI6ImFAZXhhbXBsZS5jb20ifQ.sig","expires_in":3600}')
add("authfile", bytes([128 | (1 << 1)]) + b'{"access_token":"new","refresh_token":"r2",'
    b'"expires_in":28800,"account":{"email_address":"b@example.com"}}')
add("authfile", bytes([128 | (2 << 1)]) + b'{"access_token":"new","expires_in":3599,'
    b'"token_type":"Bearer","scope":"a b"}')
add("authfile", bytes([128 | (3 << 1)]) + b'{"access_token":"new","refresh_token":"r2",'
    b'"expires_in":7200,"resource_url":"portal.qwen.ai"}')
add("authfile", bytes([128 | (4 << 1)]) + b'{"access_token":"new","refresh_token":"r2",'
    b'"expires_in":172800}')
add("authfile", bytes([128 | (4 << 1) | 1]) + b'{"success":true,"data":{"apiKey":"sk-x",'
    b'"email":"e@example.com","phone":"123"}}')
add("authfile", bytes([128 | (4 << 1)]) + b'{"success":false,"code":"500","message":"nope"}')

# ---- fuzz_meterd_key: a header value
for s in ["Bearer sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL",
          "bearer sk-abcdefghijklmnop-12", "sk-abc-12-3", "Bearer ", "abc-0",
          "session=MTcwMDAwMDAwMHwxfGFiY2Q; other=1",
          "a=b; session=; session=x",
          "127.0.0.0/8,127.0.0.2\n::1/128|127.1.2.3",
          "|::ffff:127.0.0.1", "::1/128|::1", "127.0.0.0/16|127.0.0.9"]:
    add("meterd_key", s)

# ---- fuzz_meterd_admin: byte 0 option key selector (0 = the body's key)
ADMIN = [
    (0, {"key": "ModelRatio", "value": '{"gpt-4o":1.25,"gpt-5":0.625}'}),
    (1, {"key": "x", "value": '{"gpt-4o":1.25}'}),
    (5, {"key": "x", "value": '{"gpt-4o":0.01}'}),
    (6, {"key": "x", "value": '{"default":1,"vip":0.5}'}),
    (7, {"key": "x", "value": '{"vip":{"default":0.8}}'}),
    (8, {"key": "x", "value": '{"default":"Default","vip":"VIP"}'}),
    (9, {"key": "x", "value": '["default","vip"]'}),
    (10, {"key": "x", "value": "401,429,500-503"}),
    (13, {"key": "x", "value": 500000}),
    (14, {"key": "x", "value": 3}),
    (16, {"key": "x", "value": True}),
    (17, {"key": "x", "value": '{"default":[100,10]}'}),
    (0, {"key": "SystemName", "value": "meterd"}),
    (0, {"name": "c", "type": 1, "models": "gpt-4o, gpt-4o,,x ", "group": "default,vip",
         "key": "k1\nk2\r\n\nk3", "model_mapping": '{"gpt-4o":"gpt-4o-2024","gpt-4o-2024":"b"}',
         "model": "gpt-4o", "base_url": "http://127.0.0.1:1"}),
    (0, {"key": '["k1",{"type":"service_account"}]', "models": "a"}),
    (0, {"name": "t", "remain_quota": 500000, "unlimited_quota": False, "expired_time": -1,
         "allow_ips": "127.0.0.1\n127.0.0.0/8", "model_limits": "gpt-4o,gpt-5", "group": "vip"}),
    (0, {"ids": [1, 2, 3.0, -1, 1e300, "x"]}),
]
for sel, body in ADMIN:
    add("meterd_admin", bytes([sel]) + json.dumps(body).encode())

# ---- fuzz_meterd_relay: byte 0 format (+8 answer, +16 SSE), byte 1 split seed
FMT = {"chat": 0, "completions": 1, "responses": 2, "messages": 3, "embeddings": 4}
for p in fx("meterd/relay/*"):
    base = os.path.basename(p)
    f = FMT.get(base.split("_")[0], 0)
    if base.endswith(".sse"):
        add("meterd_relay", bytes([f | 8 | 16, 0]) + read(p))
        add("meterd_relay", bytes([f | 8 | 16, 7]) + read(p))
    else:
        add("meterd_relay", bytes([f | 8, 0]) + read(p))
for name, f in [("chat_codex", 0), ("responses_chat", 2), ("messages_codex", 3)]:
    for p in fx("translate/%s/*/in.json" % name)[:4]:
        add("meterd_relay", bytes([f, 0]) + read(p))
add("meterd_relay", b"\x01\x00" + b'{"model":"gpt-3.5-turbo-instruct","prompt":[[1,2,3],"x"],'
    b'"stream":true,"max_tokens":7}')
add("meterd_relay", b"\x04\x00" + b'{"model":"text-embedding-3-small","input":["a","b"]}')


def main():
    out = os.path.join(HERE, "corpus")
    total = 0
    for target, files in sorted(corpus.items()):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, "seed-*")):
            os.unlink(old)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            total += len(data)
        print("%-18s %4d seeds" % (target, len(files)))
    print("total %d bytes" % total)
    if total > 1024 * 1024:
        print("corpus over 1 MiB: trim the fixture lists", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
