#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The deployment files, checked without a Docker engine (CI has none):
- docker-compose.yml passes `docker-compose config` (Debian's docker-compose) and holds what the
  stack needs: meterd on the default bridge publishing ${METER_PORT:-8200}:3000 with ./data:/data,
  SESSION_SECRET required, TZ, restart unless-stopped, a healthcheck on /api/status; cliproxyd on
  the host network with its directory mounted; .env.example documents every variable used.
- deploy/Dockerfile is multi-stage, runs as a non-root user, installs no compiler in the runtime.
- the systemd units order cliproxyd after docker.service and carry the hardening options.
- deploy/cliproxyd.example.yaml is refused as it is (example api-key), and with a real key (and a
  loopback bind for this test) cliproxyd starts with no unknown-key warning."""
import os
import re
import shutil
import subprocess

from harness import BUILD, SRC, TMP, Proc, free_port, run, wait_port

COMPOSE = os.path.join(SRC, "docker-compose.yml")


def compose_config(env):
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose (Debian package) is required; tests/run.sh installs it"
    e = {k: v for k, v in os.environ.items() if k not in ("SESSION_SECRET", "METER_PORT")}
    e.update(env)
    return subprocess.run([exe, "-f", COMPOSE, "--project-directory", SRC, "config"], env=e,
                          capture_output=True, text=True, timeout=60)


def test_compose_file():
    r = compose_config({"SESSION_SECRET": "test-secret"})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for want in ["network_mode: bridge", "network_mode: host", "0.0.0.0:8200:3000/tcp", "restart: unless-stopped", "http://127.0.0.1:3000/api/status",
                 "SESSION_SECRET: test-secret", "TZ: UTC", "SQLITE_PATH: /data/one-api.db",
                 ":/data:rw", ":/cliproxy:rw", "target: meterd", "target: cliproxyd",
                 "/data/one-api.db"]:
        assert want in out, f"compose config lacks {want!r}:\n{out}"
    r = compose_config({"SESSION_SECRET": "x", "METER_PORT": "9300"})
    assert ":9300:3000/tcp" in r.stdout, r.stdout
    r = compose_config({})  # no SESSION_SECRET: refused with the reason
    assert r.returncode != 0 and "SESSION_SECRET" in r.stderr, r.stderr


def test_env_example_documents_every_variable():
    used = set(re.findall(r"\$\{([A-Z_]+)", open(COMPOSE).read()))
    documented = set(re.findall(r"^([A-Z_]+)=", open(os.path.join(SRC, ".env.example")).read(),
                                re.M))
    assert used <= documented, used - documented


def test_dockerfile():
    text = open(os.path.join(SRC, "deploy/Dockerfile")).read()
    stages = re.findall(r"^FROM (\S+) AS (\S+)", text, re.M)
    names = [s[1] for s in stages]
    assert names == ["build", "runtime", "meterd", "cliproxyd"], stages
    parts = re.split(r"^FROM ", text, flags=re.M)
    runtime = "".join(p for p in parts if p.startswith(("debian:12-slim", "runtime")))
    for compiler in ("gcc", "cmake", "make ", "-dev"):
        assert compiler not in runtime, f"{compiler} in a runtime stage"
    for stage in parts[3:]:
        assert re.search(r"^USER app$", stage, re.M), "final stages run as the app user"
    assert "useradd --system" in text


def test_systemd_units():
    cp = open(os.path.join(SRC, "deploy/systemd/cliproxyd.service")).read()
    mt = open(os.path.join(SRC, "deploy/systemd/meterd.service")).read()
    assert re.search(r"^After=.*docker\.service", cp, re.M)
    for unit in (cp, mt):
        for key in ("NoNewPrivileges=true", "ProtectSystem=strict", "PrivateTmp=true",
                    "ReadWritePaths="):
            assert key in unit, key


def test_example_config_refused_then_accepted():
    src = open(os.path.join(SRC, "deploy/cliproxyd.example.yaml")).read()
    bin_ = os.path.join(BUILD, "cliproxyd", "cliproxyd")
    cfg = os.path.join(TMP, "example.yaml")
    auth = os.path.join(TMP, "example-auths")
    with open(cfg, "w") as f:
        f.write(src.replace("/cliproxy/auths", auth))
    r = subprocess.run([bin_, "-config", cfg, "-host", "127.0.0.1", "-port", str(free_port())],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "example key" in r.stderr, r.stderr
    port = free_port()
    text = re.sub(r'^host: "[^"]*"', 'host: "127.0.0.1"', src, flags=re.M)  # loopback here
    with open(cfg, "w") as f:
        f.write(text.replace("/cliproxy/auths", auth)
                .replace("your-api-key-CHANGE-ME", "sk-example-0123456789abcdefghij")
                .replace("port: 8317", f"port: {port}"))
    p = Proc("cliproxyd-example", [bin_, "-config", cfg], check_exit=True)
    wait_port(port, p)
    assert p.stop() == 0
    log = open(p.log).read()
    assert "unknown key" not in log.lower(), log


def test_meterd_env_example_names():
    keys = re.findall(r"^#?\s*([A-Z_]+)=", open(os.path.join(SRC, "deploy/meterd.env.example")).read(),
                      re.M)
    assert {"PORT", "SQLITE_PATH", "SESSION_SECRET", "SQL_DSN"} <= set(keys), keys


run([test_compose_file, test_env_example_documents_every_variable, test_dockerfile,
     test_systemd_units, test_example_config_refused_then_accepted,
     test_meterd_env_example_names])
