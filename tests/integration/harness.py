# SPDX-License-Identifier: MIT
"""harness.py - start/stop real binaries and fakes for integration tests.

Everything binds 127.0.0.1. Processes are started with their output in a temp
dir, stopped by PID (TERM, then KILL), and their logs are printed when a test
fails. Paths come from CM_BUILD_DIR / CM_SRC_DIR (set by ctest).
"""
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

BUILD = os.environ.get("CM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SRC = os.environ.get("CM_SRC_DIR", os.path.join(os.path.dirname(__file__), "../.."))
TMP = tempfile.mkdtemp(prefix="cm-integ-")
_procs = []


def sanitized():
    """True when the build uses ASan (RSS numbers are then not meaningful)."""
    cache = os.path.join(BUILD, "CMakeCache.txt")
    try:
        with open(cache) as f:
            return "CM_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name, argv, env=None, check_exit=False):
        self.name = name
        self.check_exit = check_exit  # our binaries must exit 0 on SIGTERM (no leak, no crash)
        self.log = os.path.join(TMP, f"{name}-{len(_procs)}.log")
        self.logf = open(self.log, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.logf, env=e,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        _procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def rss_kb(self, field="VmRSS"):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def nfds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def tail(self, n=60):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def start_fake(script="fake_upstream.py", args=()):
    name = os.path.splitext(script)[0]
    p = Proc(name, [sys.executable, os.path.join(SRC, "tests/fakes", script), "--port", "0", *args])
    line = p.p.stdout.readline().decode()
    if not line.startswith("PORT "):
        raise RuntimeError("fake did not start: " + p.tail())
    p.port = int(line.split()[1])
    p.url = f"http://127.0.0.1:{p.port}"
    return p


def wait_port(port, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on {port}")


def start_passproxy(upstream, *extra):
    port = free_port()
    p = Proc("passproxy", [os.path.join(BUILD, "tests/passproxy"), "--listen", f"127.0.0.1:{port}",
                           "--upstream", upstream, "--access-log", *extra], check_exit=True)
    wait_port(port, p)
    p.port = port
    p.url = f"http://127.0.0.1:{port}"
    return p


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers dict lower-case, body bytes) for any status."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def jwt(claims):
    """An unsigned JWT carrying @claims (providers' id_tokens; nobody checks signatures)."""
    import base64
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'none'})}.{enc(claims)}.sig"


def stats(fake):
    return json.loads(http("GET", fake.url + "/_stats")[2])


def _cleanup():
    """Stops everything; returns the names of checked processes that exited badly."""
    bad = []
    for p in _procs:
        try:
            rc = p.stop()
        except Exception:
            rc = -1
        if p.check_exit and rc != 0:
            bad.append(f"{p.name} (pid {p.pid}) exited with {rc}:\n{p.tail()}")
    _procs.clear()
    return bad


atexit.register(_cleanup)


def ensure_sdks():
    """Installs the client SDKs of tests/clients from the lockfile (npm ci) unless present;
    one test at a time (a lock file), since ctest runs the client tests in parallel."""
    import fcntl
    import shutil
    clients = os.path.join(SRC, "tests/clients")
    assert shutil.which("node") and shutil.which("npm"), "node and npm are required"
    with open(os.path.join(TMP, "..", "npm-ci.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not all(os.path.exists(os.path.join(clients, "node_modules", m))
                   for m in ("openai", "@anthropic-ai/sdk")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=clients, check=True, timeout=600)


def run(tests):
    """Runs test functions in order; prints 'N passed, N failed'; exits non-zero on failure."""
    passed = failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.time() - t0:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}", flush=True)
            traceback.print_exc()
            for p in _procs:
                print(f"--- {p.name} log (tail) ---\n{p.tail()}", flush=True)
    for msg in _cleanup():
        failed += 1
        print(f"FAIL clean shutdown: {msg}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
