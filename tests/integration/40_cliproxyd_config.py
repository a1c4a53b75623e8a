#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cliproxyd and its config.yaml: client keys from every place CLIProxyAPI reads them,
checked against `api-keys` (401s that say what is wrong, never echoing the key); an
empty `api-keys` is refused rather than open; hot reload of the file (new keys take
effect, a broken edit is refused and the old config stays); example keys and a missing
file stop the start with a clear message; unknown keys are warned about; no key is
ever written to the log."""
import json
import os
import subprocess
import time

from harness import BUILD, TMP, Proc, free_port, http, run, wait_port

BIN = os.path.join(BUILD, "cliproxyd", "cliproxyd")
K1, K2 = "sk-client-one-0123456789abcdef", "sk-client-two-fedcba9876543210"


def write_config(path, body):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(body)
    os.replace(tmp, path)  # atomic, as editors and deploy tools do


def config(port, keys, extra=""):
    ks = "".join(f'  - "{k}"\n' for k in keys) if keys else "  []\n"
    return (f'host: "127.0.0.1"\nport: {port}\nauth-dir: "{TMP}"\n'
            f"api-keys:{'' if keys else ' []'}\n{ks if keys else ''}{extra}")


def start(body, name="cliproxyd"):
    port = free_port()
    path = os.path.join(TMP, f"{name}-{port}.yaml")
    write_config(path, body.replace("PORT", str(port)))
    p = Proc(name, [BIN, "-config", path], check_exit=True)
    wait_port(port, p)
    p.port, p.path = port, path
    p.url = f"http://127.0.0.1:{port}"
    return p


def models(p, headers=None, query=""):
    return http("GET", p.url + "/v1/models" + query, headers=headers or {})


def test_keys_and_model_list():
    p = start(config("PORT", [K1], "routing:\n  strategy: fill-first\nmy-typo-key: 1\n"))
    st, _, body = models(p)
    assert st == 401 and json.loads(body)["error"]["code"] == "missing_api_key"
    st, _, body = models(p, {"Authorization": "Bearer wrong-key"})
    assert st == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    assert b"wrong-key" not in body
    for h, q in (({"Authorization": "Bearer " + K1}, ""), ({"X-Api-Key": K1}, ""),
                 ({"X-Goog-Api-Key": K1}, ""), ({}, "?key=" + K1), ({}, "?auth_token=" + K1)):
        st, _, body = models(p, h, q)
        assert st == 200, (h, q, body)
        assert json.loads(body) == {"object": "list", "data": []}
    st, _, body = models(p, {"X-Api-Key": K1, "anthropic-version": "2023-06-01"})
    assert st == 200 and json.loads(body) == {"data": [], "has_more": False}
    st, _, body = http("GET", p.url + "/")
    assert st == 200 and json.loads(body)["message"] == "CLI Proxy API Server"
    assert p.stop() == 0
    log = open(p.log, "rb").read()
    assert b"my-typo-key" in log, "unknown key not warned about"
    assert K1.encode() not in log, "a client key reached the log"


def test_empty_api_keys_is_closed():
    p = start(config("PORT", []))
    st, _, body = models(p, {"Authorization": "Bearer anything"})
    assert st == 401
    e = json.loads(body)["error"]
    assert e["code"] == "no_api_keys_configured" and "api-keys" in e["message"]


def test_hot_reload():
    p = start(config("PORT", [K1]))
    assert models(p, {"Authorization": "Bearer " + K1})[0] == 200
    write_config(p.path, config(p.port, [K2]))
    deadline = time.time() + 3
    while time.time() < deadline and models(p, {"Authorization": "Bearer " + K2})[0] != 200:
        time.sleep(0.05)
    assert models(p, {"Authorization": "Bearer " + K2})[0] == 200, "new key not applied"
    assert models(p, {"Authorization": "Bearer " + K1})[0] == 401, "old key still accepted"
    # a broken edit is refused: K2 keeps working
    write_config(p.path, config(p.port, [K1], "routing:\n  strategy: sideways\n"))
    time.sleep(1.0)
    assert models(p, {"Authorization": "Bearer " + K2})[0] == 200
    assert models(p, {"Authorization": "Bearer " + K1})[0] == 401
    assert p.stop() == 0
    log = open(p.log, "rb").read()
    assert b"routing.strategy" in log and b"reload refused" in log, log[-600:]
    assert K1.encode() not in log and K2.encode() not in log


def test_refuses_to_start():
    path = os.path.join(TMP, "example.yaml")
    write_config(path, config(free_port(), ["your-api-key-1"]))
    r = subprocess.run([BIN, "-config", path], capture_output=True, timeout=10)
    assert r.returncode == 1 and b"example key" in r.stderr, r.stderr
    r = subprocess.run([BIN, "-config", os.path.join(TMP, "nope.yaml")], capture_output=True,
                       timeout=10)
    assert r.returncode == 1 and b"nope.yaml" in r.stderr, r.stderr
    bad = os.path.join(TMP, "bad.yaml")
    write_config(bad, config(free_port(), [K1], "port: 99999\n"))
    r = subprocess.run([BIN, "-config", bad], capture_output=True, timeout=10)
    assert r.returncode == 1 and b"port" in r.stderr, r.stderr


run([test_keys_and_model_list, test_empty_api_keys_is_closed, test_hot_reload,
     test_refuses_to_start])
