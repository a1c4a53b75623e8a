#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Both daemons start on a loopback port, answer GET /healthz, refuse bad flags with
exit code 2, and stop cleanly (exit 0, no leaks under ASan) on SIGTERM."""
import json
import os
import subprocess

from harness import BUILD, TMP, Proc, free_port, http, run, wait_port


CONFIG = os.path.join(TMP, "cliproxyd-min.yaml")
with open(CONFIG, "w") as f:
    f.write('api-keys:\n  - "test-key-0123456789abcdef"\nauth-dir: "%s"\n' % TMP)


def daemon_argv(name, *args):
    extra = ["-config", CONFIG] if name == "cliproxyd" else []
    return [os.path.join(BUILD, name, name), *extra, *args]


def start(name):
    port = free_port()
    p = Proc(name, daemon_argv(name, "-host", "127.0.0.1", "-port", str(port)), check_exit=True)
    wait_port(port, p)
    return p, port


def test_health():
    for name in ("cliproxyd", "meterd"):
        p, port = start(name)
        st, h, body = http("GET", f"http://127.0.0.1:{port}/healthz")
        assert st == 200 and h["content-type"] == "application/json"
        assert json.loads(body) == {"status": "ok", "service": name, "version": "0.1.0"}
        st, _, body = http("GET", f"http://127.0.0.1:{port}/nope")
        assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
        st, _, _ = http("POST", f"http://127.0.0.1:{port}/healthz", b"")
        assert st == 405
        assert p.stop() == 0


def test_bad_flags():
    for name in ("cliproxyd", "meterd"):
        for args in (["-port", "99999"], ["-bogus", "1"], ["-log-level", "loud"]):
            r = subprocess.run(daemon_argv(name, *args), capture_output=True)
            assert r.returncode == 2, (name, args, r.returncode)
            assert r.stderr, (name, args)


def test_meterd_port_from_env():
    port = free_port()
    p = Proc("meterd-env", [os.path.join(BUILD, "meterd", "meterd")], env={"PORT": str(port)},
             check_exit=True)
    wait_port(port, p)
    assert http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200
    assert p.stop() == 0
    r = subprocess.run([os.path.join(BUILD, "meterd", "meterd")], capture_output=True,
                       env={**os.environ, "PORT": "x"})
    assert r.returncode == 2 and b"PORT" in r.stderr


def test_bind_failure_is_clear():
    port = free_port()
    r = subprocess.run(daemon_argv("cliproxyd", "-host", "192.0.2.1", "-port", str(port)),
                       capture_output=True, timeout=10)
    # 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails, nothing is sent
    assert r.returncode == 1
    assert b"192.0.2.1" in r.stderr, r.stderr


run([test_health, test_bad_flags, test_meterd_port_from_env, test_bind_failure_is_clear])
