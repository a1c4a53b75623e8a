# SPDX-License-Identifier: MIT
"""meterd_env.py - what the meterd relay tests share: start meterd on a fresh SQLite file,
run the first-run setup (POST /api/setup), and write users, tokens, channels (with their
abilities) and options straight into the database as an operator would with sqlite3, so
the tests do not depend on the admin API. Also the billing formula (spec newapi.md 5.5)
in exact decimal, to check meterd's charges."""
import os
import sqlite3
import time
from decimal import ROUND_HALF_UP, Decimal

from harness import BUILD, TMP, Proc, free_port, http, wait_port

METERD = os.path.join(BUILD, "meterd", "meterd")


class Meterd:
    def __init__(self, name, env=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.db_path = os.path.join(self.dir, "one-api.db")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        e = {"SQLITE_PATH": self.db_path, "SESSION_SECRET": "test-secret-0123456789"}
        e.update(env or {})
        self.proc = Proc(name, [METERD, "--host", "127.0.0.1", "--port", str(self.port)], env=e,
                         check_exit=True)
        wait_port(self.port, self.proc)
        st, _, body = http("POST", self.url + "/api/setup",
                           {"username": "root", "password": "rootpass123",
                            "confirmPassword": "rootpass123"})
        assert st == 200 and b'"success":true' in body, body

    def db(self):
        c = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        c.execute("PRAGMA busy_timeout=30000")
        return c

    def sql(self, q, args=()):
        c = self.db()
        try:
            cur = c.execute(q, args)
            rows = cur.fetchall()
            return rows if rows else cur.lastrowid
        finally:
            c.close()

    def one(self, q, args=()):
        c = self.db()
        try:
            return c.execute(q, args).fetchone()
        finally:
            c.close()

    def set_option(self, key, value):
        self.sql('INSERT INTO options("key", value) VALUES(?, ?) '
                 'ON CONFLICT("key") DO UPDATE SET value = excluded.value', (key, str(value)))

    def add_user(self, username, quota, group="default", role=1, status=1, setting=""):
        return self.sql('INSERT INTO users(username, password, display_name, role, status, quota, '
                        '"group", aff_code, setting, created_at) VALUES(?,?,?,?,?,?,?,?,?,?)',
                        (username, "$2a$10$notarealhashnotarealhashnotarealhashnotarealhash00",
                         username, role, status, quota, group, "af" + username[-6:], setting,
                         int(time.time())))

    def add_token(self, user_id, key, remain_quota=0, unlimited=0, status=1, expired_time=-1,
                  model_limits=None, allow_ips="", group="", name=None):
        return self.sql('INSERT INTO tokens(user_id, "key", status, name, created_time, '
                        'accessed_time, expired_time, remain_quota, unlimited_quota, '
                        'model_limits_enabled, model_limits, allow_ips, used_quota, "group") '
                        'VALUES(?,?,?,?,?,?,?,?,?,?,?,?,0,?)',
                        (user_id, key, status, name or ("tok-" + key[:6]), int(time.time()),
                         int(time.time()), expired_time, remain_quota, unlimited,
                         1 if model_limits is not None else 0, model_limits or "", allow_ips,
                         group))

    def add_channel(self, name, base_url, key, models, groups="default", priority=0, weight=0,
                    status=1, type_=1, model_mapping="", auto_ban=1):
        c = self.db()
        try:
            c.execute("BEGIN IMMEDIATE")
            cur = c.execute('INSERT INTO channels(type, "key", status, name, weight, created_time, '
                            'base_url, models, "group", model_mapping, priority, auto_ban) '
                            'VALUES(?,?,?,?,?,?,?,?,?,?,?,?)',
                            (type_, key, status, name, weight, int(time.time()), base_url, models,
                             groups, model_mapping, priority, auto_ban))
            cid = cur.lastrowid
            for g in groups.split(","):
                for m in models.split(","):
                    c.execute('INSERT INTO abilities("group", model, channel_id, enabled, priority, '
                              'weight, tag) VALUES(?,?,?,?,?,?,?)',
                              (g.strip(), m.strip(), cid, 1 if status == 1 else 0, priority,
                               weight, ""))
            c.execute("COMMIT")
            return cid
        finally:
            c.close()

    def wait_caches(self):
        """The relay polls change counters every 0.5 s and options every 1 s."""
        time.sleep(1.3)


def chat(url, key, body, headers=None, timeout=30):
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    h.update(headers or {})
    return http("POST", url + "/v1/chat/completions", body, h, timeout=timeout)


def quota(prompt, completion, model_ratio, completion_ratio, group_ratio, cached=0,
          cache_ratio=1.0, anthropic=False):
    """NewAPI's settlement (spec 5.5): exact decimal, round half away from zero, min 1."""
    D = lambda x: Decimal(repr(float(x)))
    base = prompt if anthropic else prompt - cached
    q = (Decimal(base) + Decimal(cached) * D(cache_ratio) + Decimal(completion) *
         D(completion_ratio)) * D(model_ratio) * D(group_ratio)
    q = int(q.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if prompt + completion + (cached if anthropic else 0) == 0:
        return 0
    if q <= 0 and model_ratio * group_ratio != 0:
        return 1
    return q
