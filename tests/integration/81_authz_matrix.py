#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Authorization matrix of meterd's admin API (issue 7, security checks; NewAPI spec 2.2,
2.3, 3): every /api route registered in meterd/api/*.c (the test parses the sources and
fails when a route has no line in ROUTES) x {anonymous, user, other user, admin, root} is
allowed or refused exactly as NewAPI's UserAuth (role >= 1) / AdminAuth (>= 10) /
RootAuth (>= 100) say; public routes answer everyone; the token-key routes take an sk- key
and no session. "Refused" = HTTP 401/403 or the envelope's "Unauthorized..." message;
"allowed" = anything else below 500 (the call passed auth; targets are harmless: unknown
ids, invalid bodies). Then: no user can read or change another user's tokens (get, reveal,
batch reveal, update, status, delete, batch delete, search) or logs (self logs, stats,
data, token logs), and a spoofed New-Api-User is refused; no admin can act on root (get,
edit, disable, delete, promote, demote, quota, hard delete, read root's tokens) nor on
another admin, and only root promotes."""
import json
import os
import re
import time

from harness import SRC, http, run
from meterd_env import Meterd

m = Meterd("meterd-authz", env={"CRITICAL_RATE_LIMIT": "100000", "SEARCH_RATE_LIMIT": "100000"})
PUB, USER, ADMIN, ROOT, KEY = 0, 1, 10, 100, "key"
NOID = 999999
ROLE_OF = {"anon": -1, "user": 1, "other": 1, "admin": 10, "root": 100}

# (method, route as registered, minimum role, body or None, concrete path or None)
ROUTES = [
    # misc.c, pricing.c
    ("GET", "/api/status", PUB, None, None),
    ("GET", "/api/setup", PUB, None, None),
    ("POST", "/api/setup", PUB, {}, None),
    ("GET", "/api/pricing", PUB, None, None),
    ("GET", "/api/models", USER, None, None),
    # user.c
    ("POST", "/api/user/register", PUB, {"username": "", "password": ""}, None),
    ("POST", "/api/user/login", PUB, {"username": "nobody-here", "password": "x"}, None),
    ("GET", "/api/user/logout", PUB, None, None),
    ("GET", "/api/user/groups", PUB, None, None),
    ("GET", "/api/user/self/groups", USER, None, None),
    ("GET", "/api/user/self", USER, None, None),
    ("PUT", "/api/user/self", USER, {"language": "en"}, None),
    ("DELETE", "/api/user/self", USER, None, None),  # destructive: throwaway callers
    ("GET", "/api/user/models", USER, None, None),
    ("GET", "/api/user/token", USER, None, None),
    ("GET", "/api/user/aff", USER, None, None),
    ("POST", "/api/user/topup", USER, {"key": "0" * 32}, None),
    ("GET", "/api/user/search", ADMIN, None, "/api/user/search?keyword=zzz"),
    ("POST", "/api/user/manage", ADMIN, {"id": NOID, "action": "enable"}, None),
    ("GET", "/api/user/", ADMIN, None, None),
    ("POST", "/api/user/", ADMIN, {"username": ""}, None),
    ("PUT", "/api/user/", ADMIN, {"id": NOID}, None),
    ("GET", "/api/user/:id", ADMIN, None, None),
    ("DELETE", "/api/user/:id", ADMIN, None, None),
    # token.c
    ("GET", "/api/token/search", USER, None, "/api/token/search?keyword=ab%25"),
    ("POST", "/api/token/batch/keys", USER, {"ids": [NOID]}, None),
    ("POST", "/api/token/batch", USER, {"ids": [NOID]}, None),
    ("GET", "/api/token/", USER, None, None),
    ("POST", "/api/token/", USER, {"name": 5}, None),
    ("PUT", "/api/token/", USER, {"id": NOID}, None),
    ("GET", "/api/token/:id", USER, None, None),
    ("POST", "/api/token/:id/key", USER, {}, None),
    ("DELETE", "/api/token/:id", USER, None, None),
    ("GET", "/api/usage/token/", KEY, None, None),
    ("GET", "/api/log/token", KEY, None, None),
    # channel.c
    ("GET", "/api/channel/", ADMIN, None, None),
    ("GET", "/api/channel/search", ADMIN, None, "/api/channel/search?keyword=x"),
    ("GET", "/api/channel/models", ADMIN, None, None),
    ("GET", "/api/channel/models_enabled", ADMIN, None, None),
    ("GET", "/api/channel/test", ADMIN, None, None),
    ("GET", "/api/channel/test/:id", ADMIN, None, None),
    ("POST", "/api/channel/", ADMIN, {}, None),
    ("PUT", "/api/channel/", ADMIN, {"id": NOID}, None),
    ("DELETE", "/api/channel/disabled", ADMIN, None, None),
    ("POST", "/api/channel/batch", ADMIN, {"ids": [NOID]}, None),
    ("POST", "/api/channel/fix", ADMIN, {}, None),
    ("POST", "/api/channel/tag/disabled", ADMIN, {"tag": "no-such-tag"}, None),
    ("POST", "/api/channel/tag/enabled", ADMIN, {"tag": "no-such-tag"}, None),
    ("POST", "/api/channel/batch/tag", ADMIN, {"ids": [NOID], "tag": "t"}, None),
    ("GET", "/api/channel/:id", ADMIN, None, None),
    ("DELETE", "/api/channel/:id", ADMIN, None, None),
    # option.c
    ("GET", "/api/option/", ROOT, None, None),
    ("PUT", "/api/option/", ROOT, {"key": "ModelRatio", "value": "not json"}, None),
    ("POST", "/api/option/rest_model_ratio", ROOT, {}, None),
    ("GET", "/api/group/", ADMIN, None, None),
    # log.c
    ("GET", "/api/log/", ADMIN, None, None),
    ("GET", "/api/log/self", USER, None, None),
    ("GET", "/api/log/stat", ADMIN, None, None),
    ("GET", "/api/log/self/stat", USER, None, None),
    ("DELETE", "/api/log/", ADMIN, None, "/api/log/?target_timestamp=1"),
    ("GET", "/api/log/search", PUB, None, None),       # deprecated: the same refusal for all
    ("GET", "/api/log/self/search", PUB, None, None),  # deprecated
    ("GET", "/api/data/", ADMIN, None, None),
    ("GET", "/api/data/users", ADMIN, None, None),
    ("GET", "/api/data/self", USER, None, None),
    # redemption.c
    ("GET", "/api/redemption/", ADMIN, None, None),
    ("GET", "/api/redemption/search", ADMIN, None, "/api/redemption/search?keyword=x"),
    ("POST", "/api/redemption/", ADMIN, {}, None),
    ("PUT", "/api/redemption/", ADMIN, {"id": NOID}, None),
    ("DELETE", "/api/redemption/invalid", ADMIN, None, None),
    ("GET", "/api/redemption/:id", ADMIN, None, None),
    ("DELETE", "/api/redemption/:id", ADMIN, None, None),
]
S = {}


def call(who, method, path, body=None, headers=None):
    """(status, parsed body or raw bytes) as caller @who (a dict of headers or None)."""
    h = dict(who or {})
    h.update(headers or {})
    if body is not None:
        h["Content-Type"] = "application/json"
    st, _, raw = http(method, m.url + path, body, h, timeout=20)
    try:
        return st, json.loads(raw) if raw else None
    except ValueError:
        return st, raw


def ok(who, method, path, body=None):
    st, j = call(who, method, path, body)
    assert st == 200 and isinstance(j, dict) and j.get("success") is True, (method, path, st, j)
    return j.get("data")


def login(name, pw):
    st, hd, raw = http("POST", m.url + "/api/user/login", {"username": name, "password": pw},
                       {"Content-Type": "application/json"})
    j = json.loads(raw)
    assert st == 200 and j["success"], (name, j)
    cookie = hd.get("set-cookie", "").split(";")[0]
    assert cookie.startswith("session="), hd
    return {"Cookie": cookie, "New-Api-User": str(j["data"]["id"])}, j["data"]["id"]


def make_user(name, role):
    ok(S["root"], "POST", "/api/user/", {"username": name, "password": name + "-pass-1",
                                         "role": role})
    return login(name, name + "-pass-1")


def refused(st, j):
    if st in (401, 403):
        return True
    if isinstance(j, dict) and j.get("success") is False:
        msg = j.get("message", "")
        return msg.startswith("Unauthorized") or msg == "User has been banned"
    return False


def registered_routes():
    """Every (method, path) under /api that meterd's sources register."""
    out = set()
    for d in ("meterd/api", "meterd/relay"):
        for fn in os.listdir(os.path.join(SRC, d)):
            if not fn.endswith(".c"):
                continue
            with open(os.path.join(SRC, d, fn)) as f:
                src = f.read()
            for mth, path in re.findall(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"(/api/[^"]*)"', src):
                out.add((mth, path))
            for mth, path in re.findall(r'cm_httpd_route\(\s*\w+,\s*"(\w+)",\s*"(/api/[^"]*)"', src):
                out.add((mth, path))
    return out


def test_setup_identities():
    S["anon"] = {}
    S["root"], S["root_id"] = login("root", "rootpass123")
    S["admin"], S["admin_id"] = make_user("adminA", 10)
    S["user"], S["user_id"] = make_user("userU", 1)
    S["other"], S["other_id"] = make_user("userO", 1)
    S["admin2"], S["admin2_id"] = make_user("adminB", 10)
    for who in ("admin", "user", "other"):
        me = ok(S[who], "GET", "/api/user/self")
        assert me["role"] == ROLE_OF[who], me
    # tokens and log rows, written as an operator would (sqlite3)
    now = int(time.time())
    for who in ("user", "other", "root"):
        uid = S[who + "_id"]
        key = f"{who}Key" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"[:40]
        S[who + "_key"] = key
        S[who + "_tid"] = m.add_token(uid, key, remain_quota=1000, name=f"tok-{who}")
        for i in range(3):
            m.sql('INSERT INTO logs(user_id, created_at, type, content, username, token_name, '
                  'model_name, quota, prompt_tokens, completion_tokens, token_id, "group", other) '
                  "VALUES(?,?,2,?,?,?,?,?,?,?,?,?,?)",
                  (uid, now - i, f"log of {who}", {"user": "userU", "other": "userO",
                                                     "root": "root"}[who], f"tok-{who}",
                   f"model-{who}", 100 + i, 10, 20, S[who + "_tid"], "default", "{}"))


def test_every_route_has_a_line():
    table = {(mth, path) for mth, path, *_ in ROUTES}
    reg = registered_routes()
    assert len(reg) >= 70, sorted(reg)
    missing, stale = reg - table, table - reg
    assert not missing, f"routes without a line in ROUTES: {sorted(missing)}"
    assert not stale, f"lines in ROUTES for routes meterd does not register: {sorted(stale)}"


def test_matrix():
    bad = []
    for mth, route, need, body, concrete in ROUTES:
        if mth == "DELETE" and route == "/api/user/self":
            continue  # test_self_delete_matrix
        path = concrete or route.replace(":id", str(NOID))
        for who in ("anon", "user", "other", "admin", "root"):
            st, j = call(S[who], mth, path, body)
            if st >= 500:
                bad.append(f"{mth} {path} as {who}: HTTP {st} {j}")
                continue
            want = (need == PUB) or (need != KEY and ROLE_OF[who] >= need)
            got = not refused(st, j)
            if want != got:
                bad.append(f"{mth} {path} as {who}: expected {'allowed' if want else 'refused'}, "
                           f"got HTTP {st} {str(j)[:160]}")
    assert not bad, "\n".join(bad)


def test_token_key_routes_take_only_keys():
    for path in ("/api/usage/token/", "/api/log/token"):
        st, j = call({"Authorization": "Bearer sk-" + S["user_key"]}, "GET", path)
        assert st == 200 and not refused(st, j), (path, st, j)
        # a session (even root's) is not a key; an unknown key is refused
        st, j = call(S["root"], "GET", path)
        assert refused(st, j), (path, st, j)
        st, j = call({"Authorization": "Bearer sk-unknownkey0123456789"}, "GET", path)
        assert st == 401, (path, st, j)
    st, j = call({"Authorization": "Bearer sk-" + S["user_key"]}, "GET", "/api/log/token")
    rows = j["data"]
    assert len(rows) == 3 and all(r["username"] == "userU" for r in rows), rows


def test_self_delete_matrix():
    """DELETE /api/user/self deletes the caller: run it with throwaway callers."""
    st, j = call({}, "DELETE", "/api/user/self")
    assert refused(st, j), (st, j)
    for name, role in (("tmpUser", 1), ("tmpAdmin", 10)):
        who, uid = make_user(name, role)
        ok(who, "DELETE", "/api/user/self")
        assert m.one("SELECT deleted_at FROM users WHERE id=?", (uid,))[0], name
    st, j = call(S["root"], "DELETE", "/api/user/self")  # passes auth; root is kept
    assert st == 200 and not refused(st, j) and j["success"] is False, j
    assert m.one("SELECT deleted_at, status FROM users WHERE id=?", (S["root_id"],)) in \
        ((None, 1), (0, 1))


def test_spoofed_new_api_user():
    for who, victim in (("user", "other"), ("admin", "root"), ("user", "root")):
        h = dict(S[who])
        h["New-Api-User"] = str(S[victim + "_id"])
        st, j = call(h, "GET", "/api/user/self")
        assert st == 401 and "does not match" in j["message"], (who, victim, st, j)
    # an access token with another user's id, too
    tok = ok(S["user"], "GET", "/api/user/token")
    h = {"Authorization": tok, "New-Api-User": str(S["other_id"])}
    st, j = call(h, "GET", "/api/token/")
    assert st == 401, (st, j)
    h["New-Api-User"] = str(S["user_id"])
    assert ok(h, "GET", "/api/user/self")["id"] == S["user_id"]


def token_row(tid):
    return m.one("SELECT name, status, deleted_at, remain_quota FROM tokens WHERE id=?", (tid,))


def test_no_user_touches_another_users_tokens():
    U, tO = S["user"], S["other_tid"]
    before = token_row(tO)
    items = ok(U, "GET", "/api/token/")["items"]
    assert [t["id"] for t in items] == [S["user_tid"]], items
    found = ok(U, "GET", "/api/token/search?keyword=tok%25")
    found = found["items"] if isinstance(found, dict) else found
    assert all(t["id"] == S["user_tid"] for t in found) and found, found
    for mth, path, body in (("GET", f"/api/token/{tO}", None),
                            ("POST", f"/api/token/{tO}/key", {}),
                            ("PUT", "/api/token/", {"id": tO, "name": "hacked",
                                                    "remain_quota": 999999,
                                                    "expired_time": -1}),
                            ("PUT", "/api/token/?status_only=1", {"id": tO, "status": 2}),
                            ("DELETE", f"/api/token/{tO}", None)):
        st, j = call(U, mth, path, body)
        assert st == 200 and j["success"] is False, (mth, path, st, j)
        assert S["other_key"] not in json.dumps(j), (mth, path)
    d = ok(U, "POST", "/api/token/batch/keys", {"ids": [tO, S["root_tid"]]})
    assert d["keys"] == {}, d
    assert ok(U, "POST", "/api/token/batch", {"ids": [tO, S["root_tid"]]}) == 0
    assert token_row(tO) == before, (token_row(tO), before)
    assert token_row(S["root_tid"])[2] in (None, 0)
    # the owner still sees and reveals it
    assert ok(S["other"], "POST", f"/api/token/{tO}/key", {})["key"] == S["other_key"]


def test_no_user_reads_another_users_logs():
    U = S["user"]
    for q in ("", "?username=userO", "?token_name=tok-other", "?model_name=model-other"):
        d = ok(U, "GET", "/api/log/self" + q)
        items = d["items"] if isinstance(d, dict) else d
        assert all(r["username"] == "userU" and r["token_name"] == "tok-user" for r in items), \
            (q, items)
        assert "log of other" not in json.dumps(d) and "log of root" not in json.dumps(d), q
    assert len(ok(U, "GET", "/api/log/self")["items"]) == 3
    for q in ("", "?username=userO"):
        st = ok(U, "GET", "/api/log/self/stat" + q)
        assert st["quota"] == 100 + 101 + 102, (q, st)
    d = ok(U, "GET", "/api/data/self?username=userO")
    assert "userO" not in json.dumps(d), d
    # admins see everyone's logs (NewAPI: GET /api/log/ is AdminAuth)
    d = ok(S["admin"], "GET", "/api/log/?username=userO")
    assert {r["username"] for r in d["items"]} == {"userO"}, d


def root_row():
    return m.one("SELECT username, display_name, role, status, quota, deleted_at, password "
                 "FROM users WHERE id=?", (S["root_id"],))


def test_no_admin_acts_on_root():
    A, rid = S["admin"], S["root_id"]
    before = root_row()
    assert before[2] == 100 and before[3] == 1, before
    calls = [("GET", f"/api/user/{rid}", None),
             ("PUT", "/api/user/", {"id": rid, "display_name": "pwned"}),
             ("PUT", "/api/user/", {"id": rid, "password": "newpass-123456"}),
             ("DELETE", f"/api/user/{rid}", None),
             ("GET", f"/api/token/{S['root_tid']}", None),
             ("POST", f"/api/token/{S['root_tid']}/key", {})]
    for action in ("disable", "delete", "promote", "demote", "enable"):
        calls.append(("POST", "/api/user/manage", {"id": rid, "action": action}))
    for mode in ("add", "subtract", "override"):
        calls.append(("POST", "/api/user/manage", {"id": rid, "action": "add_quota",
                                                   "mode": mode, "value": 5}))
    for mth, path, body in calls:
        st, j = call(A, mth, path, body)
        assert st == 200 and j["success"] is False, (mth, path, body, st, j)
        assert S["root_key"] not in json.dumps(j)
    assert root_row() == before, (root_row(), before)
    # the user list shows root but never its password or access token
    d = ok(A, "GET", "/api/user/search?keyword=root")
    for u in d["items"]:
        assert not u.get("password") and not u.get("access_token"), u


def test_no_admin_acts_on_another_admin_and_only_root_promotes():
    A, B = S["admin"], S["admin2_id"]
    for mth, path, body in (("GET", f"/api/user/{B}", None),
                            ("PUT", "/api/user/", {"id": B, "display_name": "x"}),
                            ("POST", "/api/user/manage", {"id": B, "action": "disable"}),
                            ("POST", "/api/user/manage", {"id": B, "action": "demote"}),
                            ("DELETE", f"/api/user/{B}", None),
                            ("POST", "/api/user/manage", {"id": S["other_id"],
                                                          "action": "promote"}),
                            ("POST", "/api/user/", {"username": "newAdm", "password":
                                                    "newadm-pass-1", "role": 10}),
                            ("POST", "/api/user/", {"username": "newRoot", "password":
                                                    "newroot-pass-1", "role": 100})):
        st, j = call(A, mth, path, body)
        assert st == 200 and j["success"] is False, (mth, path, body, st, j)
    assert m.one("SELECT role, status FROM users WHERE id=?", (B,)) == (10, 1)
    assert m.one("SELECT role FROM users WHERE id=?", (S["other_id"],)) == (1,)
    assert m.one("SELECT count(*) FROM users WHERE username IN ('newAdm','newRoot')") == (0,)
    # an admin does manage a common user; root does promote
    ok(A, "GET", f"/api/user/{S['user_id']}")
    ok(S["root"], "POST", "/api/user/manage", {"id": S["other_id"], "action": "promote"})
    assert m.one("SELECT role FROM users WHERE id=?", (S["other_id"],)) == (10,)
    ok(S["root"], "POST", "/api/user/manage", {"id": S["other_id"], "action": "demote"})


def test_disabled_and_demoted_lose_access_at_once():
    ok(S["root"], "POST", "/api/user/manage", {"id": S["admin2_id"], "action": "demote"})
    st, j = call(S["admin2"], "GET", "/api/user/")
    assert refused(st, j), (st, j)
    ok(S["root"], "POST", "/api/user/manage", {"id": S["admin2_id"], "action": "disable"})
    st, j = call(S["admin2"], "GET", "/api/user/self")
    assert refused(st, j), (st, j)


if __name__ == "__main__":
    run([test_setup_identities, test_every_route_has_a_line, test_matrix,
         test_token_key_routes_take_only_keys, test_self_delete_matrix,
         test_spoofed_new_api_user, test_no_user_touches_another_users_tokens,
         test_no_user_reads_another_users_logs, test_no_admin_acts_on_root,
         test_no_admin_acts_on_another_admin_and_only_root_promotes,
         test_disabled_and_demoted_lose_access_at_once])
