#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""meterd's admin API for users and tokens (NewAPI spec 2, 3.3, 3.4, 7.2), on a real
meterd with its SQLite file in the test's temp dir:
setup -> login (session cookie) -> GET /api/user/token (access token) -> the auth rules of
spec 2.2 (missing / malformed / mismatched New-Api-User -> 401, unknown token -> 200
success:false), registration, role checks, the admin user routes (list, search, get,
create, edit, manage with quota modes and type-3 log rows, hard delete), the caller's own
account (self, settings, password change, groups, models, invite code, redemption top-up,
self delete), tokens (create without key, masked lists, reveal, search, full and
status-only update with the expired/exhausted re-enable refusal, delete, batch delete,
batch keys), the token-key endpoints /api/usage/token/ and /api/log/token, a user row
written by NewAPI (bcrypt $2a$) logging in, the login rate limit (429 + envelope), and no
secret in meterd's log."""
import json
import os
import sqlite3
import time
import warnings

from harness import BUILD, TMP, Proc, free_port, http, run, wait_port

BIN = os.path.join(BUILD, "meterd", "meterd")
DB = os.path.join(TMP, "users-tokens.db")
ROOT_PW = "root-pass-123"
SECRETS = []  # every password, access token and key handed out: must never reach the log


def start(db, env=None):
    port = free_port()
    e = {"SQLITE_PATH": db, "SESSION_SECRET": "integ-session-secret-0123456789",
         "CRITICAL_RATE_LIMIT": "100000", "SEARCH_RATE_LIMIT": "100000"}
    e.update(env or {})
    p = Proc(f"meterd-{port}", [BIN, "--port", str(port), "--host", "127.0.0.1"], env=e,
             check_exit=True)
    wait_port(port, p)
    p.url = f"http://127.0.0.1:{port}"
    return p


M = start(DB)


class Client:
    """One caller: a cookie session or an access token, plus the New-Api-User id."""

    def __init__(self, uid=None, token=None, cookie=None):
        self.uid, self.token, self.cookie = uid, token, cookie

    def call(self, method, path, body=None, headers=None, raw=False):
        h = {}
        if self.token:
            h["Authorization"] = self.token
        if self.cookie:
            h["Cookie"] = self.cookie
        if self.uid is not None:
            h["New-Api-User"] = str(self.uid)
        h.update(headers or {})
        if body is not None:
            h["Content-Type"] = "application/json"
        st, hd, b = http(method, M.url + path, body, h)
        if raw:
            return st, hd, b
        return st, (json.loads(b) if b else None)

    def ok(self, method, path, body=None):
        st, j = self.call(method, path, body)
        assert st == 200 and j["success"], (method, path, st, j)
        return j.get("data")

    def fail(self, method, path, body=None, status=200, contains=""):
        st, j = self.call(method, path, body)
        assert st == status and j["success"] is False, (method, path, st, j)
        assert contains.lower() in j["message"].lower(), (contains, j)
        return j["message"]


ANON = Client()
S = {}  # state shared by the tests, in order


def db():
    return sqlite3.connect(DB, timeout=10)


def login(username, password, expect_ok=True):
    st, hd, b = http("POST", M.url + "/api/user/login", {"username": username, "password": password},
                     {"Content-Type": "application/json"})
    j = json.loads(b)
    assert st == 200 and j["success"] is expect_ok, j
    if not expect_ok:
        return j
    cookie = hd["set-cookie"].split(";")[0]
    assert cookie.startswith("session=") and "HttpOnly" in hd["set-cookie"]
    return j["data"], cookie


def token_client(username, password):
    """Logs in, then trades the cookie for an access token (GET /api/user/token)."""
    data, cookie = login(username, password)
    tok = Client(data["id"], cookie=cookie).ok("GET", "/api/user/token")
    SECRETS.append(tok)
    return Client(data["id"], token=tok), data


def test_setup_and_login():
    st, j = ANON.call("POST", "/api/setup", {"username": "root", "password": ROOT_PW,
                                             "confirmPassword": ROOT_PW})
    assert st == 200 and j["success"], j
    SECRETS.append(ROOT_PW)
    j = login("root", "wrong-password", expect_ok=False)
    assert "incorrect" in j["message"]
    j = login("nobody", "whatever-pw", expect_ok=False)
    assert "incorrect" in j["message"]  # the same answer as a wrong password
    ANON.fail("POST", "/api/user/login", {"username": "root"}, contains="required")
    data, cookie = login("root", ROOT_PW)
    assert data["username"] == "root" and data["role"] == 100 and data["status"] == 1
    assert data["group"] == "default" and data["display_name"] == "Root User"
    assert set(data) == {"id", "username", "display_name", "role", "status", "group"}
    S["root_cookie"] = Client(data["id"], cookie=cookie)
    S["root_id"] = data["id"]
    with db() as c:
        assert c.execute("SELECT last_login_at FROM users WHERE id=?",
                         (data["id"],)).fetchone()[0] > 0


def test_access_token_auth():
    ck = S["root_cookie"]
    me = ck.ok("GET", "/api/user/self")
    assert me["username"] == "root" and "password" not in me and "access_token" not in me
    assert me["permissions"]["sidebar_settings"] is False
    tok = ck.ok("GET", "/api/user/token")
    assert isinstance(tok, str) and 28 <= len(tok) <= 32
    SECRETS.append(tok)
    uid = S["root_id"]
    # spec 2.2, in order
    st, j = Client().call("GET", "/api/user/self")
    assert st == 401 and j["message"] == "Unauthorized, not logged in and no access token provided"
    st, j = Client(token=tok).call("GET", "/api/user/self")
    assert st == 401 and j["message"] == "Unauthorized, New-Api-User header not provided", j
    st, j = Client("abc", token=tok).call("GET", "/api/user/self")
    assert st == 401 and j["message"] == "Unauthorized, New-Api-User header format error"
    st, j = Client(uid + 999, token=tok).call("GET", "/api/user/self")
    assert st == 401 and j["message"] == "Unauthorized, New-Api-User does not match logged in user"
    st, j = Client(uid, token="not-a-real-token").call("GET", "/api/user/self")
    assert st == 200 and j == {"success": False, "message": "Unauthorized, invalid access token"}
    st, hd, _ = Client(uid, cookie=ck.cookie).call("GET", "/api/user/self", raw=True)
    assert st == 200 and hd.get("auth-version") and hd.get("x-oneapi-request-id")
    # Bearer prefix accepted; a new token replaces the old one
    assert Client(uid, token="Bearer " + tok).ok("GET", "/api/user/self")["id"] == uid
    tok2 = ck.ok("GET", "/api/user/token")
    SECRETS.append(tok2)
    assert tok2 != tok
    Client(uid, token=tok).fail("GET", "/api/user/self", contains="invalid access token")
    S["root"] = Client(uid, token=tok2)


def test_register_and_roles():
    r = S["root"]
    ANON.ok("POST", "/api/user/register", {"username": "alice", "password": "alice-pass-1"})
    SECRETS.append("alice-pass-1")
    ANON.fail("POST", "/api/user/register", {"username": "alice", "password": "alice-pass-1"},
              contains="already exists")
    ANON.fail("POST", "/api/user/register", {"username": "shorty", "password": "short"},
              contains="at least 8")
    ANON.fail("POST", "/api/user/register", {"username": "x" * 21, "password": "long-enough"},
              contains="20 characters")
    ANON.fail("POST", "/api/user/register", {"username": 5, "password": "long-enough"},
              contains="username")
    st, j = ANON.call("POST", "/api/user/register", b"{not json")
    assert st == 200 and j["success"] is False and "invalid request body" in j["message"]
    alice, data = token_client("alice", "alice-pass-1")
    assert data["role"] == 1
    S["alice"], S["alice_id"] = alice, data["id"]
    for method, path in (("GET", "/api/user/"), ("GET", "/api/user/search?keyword=a"),
                         ("GET", f"/api/user/{S['root_id']}"), ("POST", "/api/user/manage")):
        alice.fail(method, path, {} if method == "POST" else None,
                   contains="Unauthorized, insufficient privileges")
    me = alice.ok("GET", "/api/user/self")
    assert me["username"] == "alice" and me["role"] == 1 and me["quota"] == 0
    assert me["permissions"]["sidebar_modules"] == {"admin": False}
    # registration with root's invite code records the inviter
    aff = r.ok("GET", "/api/user/aff")
    assert isinstance(aff, str) and len(aff) == 4
    assert r.ok("GET", "/api/user/aff") == aff
    ANON.ok("POST", "/api/user/register", {"username": "invitee", "password": "invitee-pw-1",
                                           "aff_code": aff})
    inv = r.ok("GET", "/api/user/search?keyword=invitee")["items"][0]
    assert inv["inviter_id"] == S["root_id"]
    S["invitee_id"] = inv["id"]


def test_admin_users():
    r, aid = S["root"], S["alice_id"]
    page = r.ok("GET", "/api/user/?p=1&page_size=2")
    assert page["page"] == 1 and page["page_size"] == 2 and page["total"] == 3
    assert [u["id"] for u in page["items"]] == sorted([u["id"] for u in page["items"]],
                                                      reverse=True)
    assert all(u["password"] == "" and "access_token" not in u for u in page["items"])
    found = r.ok("GET", "/api/user/search?keyword=ali")
    assert found["total"] == 1 and found["items"][0]["username"] == "alice"
    assert r.ok("GET", f"/api/user/search?keyword={aid}")["items"][0]["id"] == aid
    assert r.ok("GET", "/api/user/search?role=100")["items"][0]["username"] == "root"
    u = r.ok("GET", f"/api/user/{aid}")
    assert u["username"] == "alice" and u["DeletedAt"] is None
    r.fail("GET", "/api/user/99999", contains="does not exist")
    # create: role below one's own
    r.ok("POST", "/api/user/", {"username": "bob", "password": "bob-pass-12", "role": 10})
    SECRETS.append("bob-pass-12")
    r.fail("POST", "/api/user/", {"username": "eve", "password": "eve-pass-12", "role": 100},
           contains="equal to or higher")
    r.fail("POST", "/api/user/", {"username": "eve", "password": "eve-pass-12", "role": 5},
           contains="role must be")
    r.fail("POST", "/api/user/", {"username": "bob", "password": "bob-pass-12"},
           contains="already exists")
    bob, bdata = token_client("bob", "bob-pass-12")
    assert bdata["role"] == 10 and bdata["display_name"] == "bob"
    S["bob"], S["bob_id"] = bob, bdata["id"]
    bob.fail("POST", "/api/user/", {"username": "eve", "password": "eve-pass-12", "role": 10},
             contains="equal to or higher")
    # edit: only username, display_name, group, remark, password; quota ignored
    r.ok("PUT", "/api/user/", {"id": aid, "display_name": "Alice", "group": "vip",
                               "remark": "a note", "quota": 123456789})
    u = r.ok("GET", f"/api/user/{aid}")
    assert (u["display_name"], u["group"], u["remark"], u["quota"]) == ("Alice", "vip", "a note", 0)
    assert u["username"] == "alice"  # left out of the body: kept
    r.fail("PUT", "/api/user/", {"id": aid, "role": 10}, contains="/api/user/manage")
    r.fail("PUT", "/api/user/", {"id": aid, "group": "no-such-group"}, contains="GroupRatio")
    r.fail("PUT", "/api/user/", {"id": aid, "username": "bob"}, contains="already exists")
    r.fail("PUT", "/api/user/", {"id": aid, "password": "short"}, contains="at least 8")
    r.fail("PUT", "/api/user/", {"display_name": "x"}, contains="id")
    r.ok("PUT", "/api/user/", {"id": aid, "password": "alice-pass-2"})
    SECRETS.append("alice-pass-2")
    login("alice", "alice-pass-1", expect_ok=False)
    login("alice", "alice-pass-2")
    # an admin does not outrank the root or another admin
    bob.fail("PUT", "/api/user/", {"id": S["root_id"], "display_name": "pwned"},
             contains="no permission")
    bob.fail("GET", f"/api/user/{S['root_id']}", contains="no permission")
    bob.ok("PUT", "/api/user/", {"id": aid, "remark": "by bob"})


def logs_of(uid, typ):
    with db() as c:
        return c.execute("SELECT content, other, quota, username FROM logs WHERE user_id=? AND "
                         "type=? ORDER BY id", (uid, typ)).fetchall()


def test_manage():
    r, bob, alice, aid = S["root"], S["bob"], S["alice"], S["alice_id"]
    assert r.ok("POST", "/api/user/manage", {"id": aid, "action": "disable"}) == \
        {"role": 1, "status": 2}
    alice.fail("GET", "/api/user/self", contains="User has been banned")
    login("alice", "alice-pass-2", expect_ok=False)
    r.ok("POST", "/api/user/manage", {"id": aid, "action": "enable"})
    assert alice.ok("GET", "/api/user/self")["status"] == 1
    # quota: add, subtract, override; each with a type-3 log row naming the admin
    r.ok("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "add",
                                      "value": 1000})
    bob.ok("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "subtract",
                                        "value": 300})
    assert r.ok("GET", f"/api/user/{aid}")["quota"] == 700
    r.ok("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "override",
                                      "value": 5000000})
    assert r.ok("GET", f"/api/user/{aid}")["quota"] == 5000000
    rows = logs_of(aid, 3)
    assert len(rows) == 3, rows
    assert "增加" in rows[0][0] and "减少" in rows[1][0] and "覆盖" in rows[2][0]
    assert json.loads(rows[0][1])["admin_info"] == {"admin_id": S["root_id"],
                                                    "admin_username": "root"}
    assert json.loads(rows[1][1])["admin_info"]["admin_username"] == "bob"
    assert rows[0][3] == "alice"
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "add",
                                        "value": 0}, contains="positive")
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "override",
                                        "value": -5}, contains=">= 0")
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "double",
                                        "value": 5}, contains="mode must be")
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "explode"}, contains="unknown action")
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "add_quota", "mode": "add",
                                        "value": "lots"}, contains="value")
    assert len(logs_of(aid, 3)) == 3  # refused changes wrote nothing
    # roles
    bob.fail("POST", "/api/user/manage", {"id": aid, "action": "promote"}, contains="only the root")
    assert r.ok("POST", "/api/user/manage", {"id": aid, "action": "promote"})["role"] == 10
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "promote"}, contains="already an admin")
    assert r.ok("POST", "/api/user/manage", {"id": aid, "action": "demote"})["role"] == 1
    r.fail("POST", "/api/user/manage", {"id": aid, "action": "demote"}, contains="already a common")
    for action in ("disable", "delete", "demote"):
        r.fail("POST", "/api/user/manage", {"id": S["root_id"], "action": action},
               contains="root user cannot")
    bob.fail("POST", "/api/user/manage", {"id": S["root_id"], "action": "disable"},
             contains="no permission")
    r.fail("POST", "/api/user/manage", {"id": 424242, "action": "enable"}, contains="does not exist")


def test_self_account():
    alice = S["alice"]
    alice.ok("PUT", "/api/user/self", {"display_name": "Alice L"})
    me = alice.ok("GET", "/api/user/self")
    assert me["display_name"] == "Alice L" and me["username"] == "alice"
    alice.fail("PUT", "/api/user/self", {"password": "alice-pass-3"}, contains="original_password")
    alice.fail("PUT", "/api/user/self", {"password": "alice-pass-3", "original_password": "nope"},
               contains="original password is incorrect")
    alice.ok("PUT", "/api/user/self", {"password": "alice-pass-3",
                                       "original_password": "alice-pass-2"})
    SECRETS.append("alice-pass-3")
    login("alice", "alice-pass-3")
    alice.fail("PUT", "/api/user/self", {"username": "bob"}, contains="already exists")
    alice.ok("PUT", "/api/user/self", {"sidebar_modules": "{\"chat\":{\"enabled\":false}}"})
    alice.ok("PUT", "/api/user/self", {"language": "zh-CN"})
    alice.fail("PUT", "/api/user/self", {"language": "<script>"}, contains="language tag")
    me = alice.ok("GET", "/api/user/self")
    assert me["sidebar_modules"] == "{\"chat\":{\"enabled\":false}}"
    assert json.loads(me["setting"])["language"] == "zh-CN"
    # a user deletes itself (soft): its login stops working; the root may not
    carol_pw = "carol-pass-1"
    ANON.ok("POST", "/api/user/register", {"username": "carol", "password": carol_pw})
    carol, cdata = token_client("carol", carol_pw)
    carol.ok("POST", "/api/token/", {"name": "carols"})
    carol.ok("DELETE", "/api/user/self")
    login("carol", carol_pw, expect_ok=False)
    carol.fail("GET", "/api/user/self", contains="invalid access token")
    S["root"].fail("DELETE", "/api/user/self", contains="root user cannot")
    ANON.fail("POST", "/api/user/register", {"username": "carol", "password": carol_pw},
              contains="already exists")
    # the admin can still read and then hard-delete the soft-deleted user
    r = S["root"]
    assert r.ok("GET", f"/api/user/{cdata['id']}")["DeletedAt"]
    S["bob"].fail("DELETE", f"/api/user/{S['root_id']}", contains="no permission")
    r.ok("DELETE", f"/api/user/{cdata['id']}")
    r.fail("GET", f"/api/user/{cdata['id']}", contains="does not exist")
    # SQLite gives the freed highest id to the next user: carol's tokens must not follow
    ANON.ok("POST", "/api/user/register", {"username": "dave", "password": "dave-pass-12"})
    dave, ddata = token_client("dave", "dave-pass-12")
    assert ddata["id"] == cdata["id"]
    assert dave.ok("GET", "/api/token/")["total"] == 0
    # logout clears the cookie
    st, hd, _ = ANON.call("GET", "/api/user/logout", raw=True)
    assert st == 200 and "Max-Age=0" in hd["set-cookie"]


def test_groups_and_models():
    g = ANON.ok("GET", "/api/user/groups")
    assert set(g) == {"default", "vip"}, g
    assert g["default"]["ratio"] == 1 and "desc" in g["default"]
    alice = S["alice"]  # group vip since the admin edit
    mine = alice.ok("GET", "/api/user/self/groups")
    assert "vip" in mine and "default" in mine
    ANON.fail("GET", "/api/user/self/groups", status=401, contains="not logged in")
    with db() as c:
        c.executemany("INSERT INTO abilities (\"group\", model, channel_id, enabled) "
                      "VALUES (?,?,?,?)", [("default", "gpt-4o", 1, 1), ("vip", "o3", 1, 1),
                                           ("svip", "secret-model", 2, 1),
                                           ("vip", "off-model", 3, 0)])
    assert alice.ok("GET", "/api/user/models") == ["gpt-4o", "o3"]
    assert alice.ok("GET", "/api/user/models?group=vip") == ["o3"]
    assert alice.ok("GET", "/api/user/models?group=svip") == []


def test_topup_redemption():
    alice, aid = S["alice"], S["alice_id"]
    key = "0123456789abcdef0123456789abcdef"
    SECRETS.append(key)
    with db() as c:
        c.execute("INSERT INTO redemptions (user_id, \"key\", status, name, quota, created_time, "
                  "redeemed_time, used_user_id, expired_time) VALUES (1, ?, 1, 'gift', 777, "
                  "?, 0, 0, 0)", (key, int(time.time())))
    alice.fail("POST", "/api/user/topup", {"key": key}, contains="compliance")
    with db() as c:
        c.executemany("INSERT OR REPLACE INTO options (\"key\", value) VALUES (?, ?)",
                      [("payment_setting.compliance_confirmed", "true"),
                       ("payment_setting.compliance_terms_version", "v1")])
    before = S["root"].ok("GET", f"/api/user/{aid}")["quota"]
    deadline = time.time() + 10
    while True:  # the options cache sees the outside write within about a second
        st, j = alice.call("POST", "/api/user/topup", {"key": key})
        if j["success"] or "compliance" not in j["message"] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert j["success"] and j["data"] == 777, j
    assert S["root"].ok("GET", f"/api/user/{aid}")["quota"] == before + 777
    alice.fail("POST", "/api/user/topup", {"key": key}, contains="has been used")
    alice.fail("POST", "/api/user/topup", {"key": "f" * 32}, contains="invalid redemption code")
    alice.fail("POST", "/api/user/topup", {"key": ""}, contains="redemption code")
    rows = logs_of(aid, 1)
    assert len(rows) == 1 and rows[0][2] == 777 and rows[0][3] == "alice"


def test_tokens():
    alice = S["alice"]
    alice.ok("POST", "/api/token/", {"name": "tk1", "remain_quota": 1000, "expired_time": -1,
                                     "allow_ips": "127.0.0.1\n127.64.0.0/10"})
    st, j = alice.call("POST", "/api/token/", {"name": "tk2", "unlimited_quota": True,
                                               "model_limits_enabled": True,
                                               "model_limits": " gpt-4o, o3,,gpt-4o ",
                                               "group": "vip"})
    assert st == 200 and j == {"success": True, "message": ""}, j  # no key, no data
    page = alice.ok("GET", "/api/token/?p=1&page_size=10")
    assert page["total"] == 2 and [t["name"] for t in page["items"]] == ["tk2", "tk1"]
    t1, t2 = page["items"][1], page["items"][0]
    assert "**********" in t1["key"] and len(t1["key"]) == 18
    assert t2["model_limits"] == "gpt-4o,o3" and t2["group"] == "vip"
    assert t1["allow_ips"] == "127.0.0.1\n127.64.0.0/10"
    k1 = alice.ok("POST", f"/api/token/{t1['id']}/key")["key"]
    k2 = alice.ok("POST", f"/api/token/{t2['id']}/key")["key"]
    SECRETS.extend([k1, k2])
    assert len(k1) == 48 and k1.isalnum() and not k1.startswith("sk-")
    assert t1["key"] == k1[:4] + "**********" + k1[-4:]
    keys = alice.ok("POST", "/api/token/batch/keys", {"ids": [t1["id"], t2["id"], 99999]})["keys"]
    assert keys == {str(t1["id"]): k1, str(t2["id"]): k2}
    assert alice.ok("GET", f"/api/token/{t1['id']}")["key"] == t1["key"]
    # scoped to the owner
    S["root"].fail("GET", f"/api/token/{t1['id']}", contains="does not exist")
    S["root"].fail("POST", f"/api/token/{t1['id']}/key", contains="does not exist")
    assert S["root"].ok("POST", "/api/token/batch/keys", {"ids": [t1["id"]]})["keys"] == {}
    # search: exact without %, wildcards with
    assert alice.ok("GET", "/api/token/search?keyword=tk1")["total"] == 1
    assert alice.ok("GET", "/api/token/search?keyword=tk%25")["total"] == 2
    assert alice.ok("GET", "/api/token/search?keyword=tk")["total"] == 0
    assert alice.ok("GET", f"/api/token/search?token=sk-{k2[:6]}%25")["items"][0]["id"] == t2["id"]
    alice.fail("GET", "/api/token/search?keyword=%25", contains="at least 2")
    alice.fail("GET", "/api/token/search?keyword=a%25%25b", contains="consecutive")
    # validation
    for body, msg in (({"name": "x" * 51}, "50 characters"),
                      ({"name": "ok", "allow_ips": "not-an-ip"}, "allow_ips"),
                      ({"name": "ok", "group": "svip"}, "may use"),
                      ({"name": "ok", "model_limits_enabled": True, "model_limits": " , "},
                       "at least one model"),
                      ({"name": "ok", "remain_quota": -1}, "negative"),
                      ({"name": "ok", "remain_quota": 10 ** 15}, "out of range"),
                      ({"name": "ok", "expired_time": 1000}, "past"),
                      ({"name": "ok", "expired_time": int(time.time() * 1000)}, "seconds"),
                      ({"name": "ok", "unlimited_quota": "yes"}, "unlimited_quota")):
        alice.fail("POST", "/api/token/", body, contains=msg)
    # full update keeps what the body leaves out
    d = alice.ok("PUT", "/api/token/", {"id": t1["id"], "name": "tk1b"})
    assert d["name"] == "tk1b" and d["remain_quota"] == 1000 and d["expired_time"] == -1
    assert "**********" in d["key"]
    # status only
    assert alice.ok("PUT", "/api/token/?status_only=1",
                    {"id": t1["id"], "status": 2})["status"] == 2
    assert alice.ok("PUT", "/api/token/?status_only=1",
                    {"id": t1["id"], "status": 1})["status"] == 1
    alice.fail("PUT", "/api/token/?status_only=1", {"id": t1["id"], "status": 3}, contains="status")
    # an expired token cannot be re-enabled; neither can an exhausted one
    past = int(time.time()) - 60
    alice.ok("PUT", "/api/token/", {"id": t1["id"], "expired_time": past})
    with db() as c:
        c.execute("UPDATE tokens SET status = 3 WHERE id = ?", (t1["id"],))
    alice.fail("PUT", "/api/token/?status_only=1", {"id": t1["id"], "status": 1},
               contains="expired")
    alice.ok("PUT", "/api/token/", {"id": t1["id"], "expired_time": -1, "remain_quota": 0})
    alice.fail("PUT", "/api/token/?status_only=1", {"id": t1["id"], "status": 1},
               contains="used up")
    alice.ok("PUT", "/api/token/", {"id": t1["id"], "remain_quota": 50})
    assert alice.ok("PUT", "/api/token/?status_only=1",
                    {"id": t1["id"], "status": 1})["status"] == 1
    S["tokens"] = (t1["id"], t2["id"], k1, k2)


def test_token_key_endpoints():
    t1, t2, k1, k2 = S["tokens"]
    st, j = ANON.call("GET", "/api/usage/token/", headers={"Authorization": "Bearer sk-" + k1})
    assert st == 200 and j["code"] is True and j["message"] == "ok", j
    d = j["data"]
    assert d["object"] == "token_usage" and d["name"] == "tk1b" and d["total_available"] == 50
    assert d["total_granted"] == 50 and d["expires_at"] == 0 and d["unlimited_quota"] is False
    st, j = ANON.call("GET", "/api/usage/token/", headers={"Authorization": "Bearer " + k2})
    assert j["data"]["model_limits"] == {"gpt-4o": True, "o3": True}
    assert j["data"]["model_limits_enabled"] is True
    st, j = ANON.call("GET", "/api/usage/token/")
    assert st == 401 and j["success"] is False
    st, j = ANON.call("GET", "/api/usage/token/", headers={"Authorization": "Bearer sk-" + "x" * 48})
    assert st == 401 and j["success"] is False
    # the token's logs, renumbered, admin-only fields removed
    with db() as c:
        c.executemany("INSERT INTO logs (user_id, created_at, type, content, token_id, quota, "
                      "other, model_name) VALUES (?,?,?,?,?,?,?,?)",
                      [(S["alice_id"], 100, 2, "a", t1, 5,
                        json.dumps({"model_ratio": 1, "admin_info": {"use_channel": ["7"]}}),
                        "gpt-4o"),
                       (S["alice_id"], 200, 2, "b", t1, 6, "", "o3"),
                       (S["alice_id"], 300, 2, "c", t2, 7, "", "o3")])
    st, j = ANON.call("GET", "/api/log/token", headers={"Authorization": "Bearer sk-" + k1})
    assert st == 200 and j["success"], j
    rows = j["data"]
    assert [r["id"] for r in rows] == [1, 2] and [r["content"] for r in rows] == ["b", "a"]
    assert json.loads(rows[1]["other"]) == {"model_ratio": 1}
    # a disabled owner: the key reads are refused
    S["root"].ok("POST", "/api/user/manage", {"id": S["alice_id"], "action": "disable"})
    st, j = ANON.call("GET", "/api/usage/token/", headers={"Authorization": "Bearer sk-" + k1})
    assert st == 403 and j["success"] is False and "banned" in j["message"]
    S["root"].ok("POST", "/api/user/manage", {"id": S["alice_id"], "action": "enable"})


def test_token_delete():
    alice = S["alice"]
    t1, t2, _, _ = S["tokens"]
    ids = []
    for n in ("d1", "d2", "d3"):
        alice.ok("POST", "/api/token/", {"name": n})
    for t in alice.ok("GET", "/api/token/")["items"]:
        if t["name"].startswith("d"):
            ids.append(t["id"])
    alice.ok("DELETE", f"/api/token/{t1}")
    alice.fail("DELETE", f"/api/token/{t1}", contains="does not exist")
    alice.fail("GET", f"/api/token/{t1}", contains="does not exist")
    assert alice.ok("POST", "/api/token/batch", {"ids": ids + [t1, 999999]}) == 3
    alice.fail("POST", "/api/token/batch", {"ids": []}, contains="1 to 100")
    alice.fail("POST", "/api/token/batch", {"ids": list(range(1, 102))}, contains="1 to 100")
    alice.fail("POST", "/api/token/batch", {"ids": ["x"]}, contains="positive integers")
    page = alice.ok("GET", "/api/token/")
    assert page["total"] == 1 and page["items"][0]["id"] == t2
    with db() as c:  # soft delete: the rows stay, with deleted_at
        assert c.execute("SELECT count(*) FROM tokens WHERE deleted_at IS NOT NULL AND "
                         "user_id = ?", (S["alice_id"],)).fetchone()[0] == 4


def test_max_user_tokens():
    bob = S["bob"]
    with db() as c:
        c.execute("INSERT OR REPLACE INTO options (\"key\", value) VALUES "
                  "('token_setting.max_user_tokens', '2')")
    deadline = time.time() + 10
    made = 0
    while time.time() < deadline:
        st, j = bob.call("POST", "/api/token/", {"name": f"m{made}"})
        if not j["success"]:
            assert "maximum number of tokens (2)" in j["message"], j
            break
        made += 1
        if made >= 2:
            time.sleep(0.2)
    assert made >= 2 and bob.ok("GET", "/api/token/")["total"] == made
    with db() as c:
        c.execute("DELETE FROM options WHERE \"key\" = 'token_setting.max_user_tokens'")


def test_newapi_bcrypt_user():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
        h = crypt.crypt("legacy-pass-1", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    assert h.startswith("$2b$10$")
    h = "$2a$" + h[4:]  # what Go's bcrypt writes
    SECRETS.append("legacy-pass-1")
    with db() as c:
        c.execute("INSERT INTO users (username, password, display_name, role, status, email, "
                  "quota, \"group\", aff_code, created_at) VALUES ('legacy', ?, 'Legacy', 1, 1, "
                  "'legacy@example.com', 42, 'default', 'LGCY', 1700000000)", (h,))
    data, _ = login("legacy", "legacy-pass-1")
    assert data["username"] == "legacy" and data["display_name"] == "Legacy"
    data, _ = login("legacy@example.com", "legacy-pass-1")  # the email works too
    assert data["username"] == "legacy"
    login("legacy", "legacy-pass-2", expect_ok=False)
    with db() as c:  # the hash is left as NewAPI wrote it
        assert c.execute("SELECT password FROM users WHERE username='legacy'").fetchone()[0] == h


def test_password_login_disabled():
    with db() as c:
        c.execute("INSERT OR REPLACE INTO options (\"key\", value) VALUES "
                  "('PasswordLoginEnabled', 'false')")
    deadline = time.time() + 10
    while time.time() < deadline:
        st, hd, b = http("POST", M.url + "/api/user/login",
                         {"username": "bob", "password": "bob-pass-12"})
        j = json.loads(b)
        if not j["success"]:
            break
        time.sleep(0.2)
    assert not j["success"] and "disabled" in j["message"], j
    with db() as c:
        c.execute("DELETE FROM options WHERE \"key\" = 'PasswordLoginEnabled'")


def test_login_rate_limit():
    p = start(os.path.join(TMP, "ratelimit.db"), {"CRITICAL_RATE_LIMIT": "3",
                                                   "CRITICAL_RATE_LIMIT_DURATION": "600"})
    for _ in range(3):
        st, hd, b = http("POST", p.url + "/api/user/login", {"username": "x", "password": "y" * 8})
        assert st == 200 and json.loads(b)["success"] is False
    st, hd, b = http("POST", p.url + "/api/user/login", {"username": "x", "password": "y" * 8})
    j = json.loads(b)
    assert st == 429 and j["success"] is False and "too many" in j["message"], (st, j)
    assert 1 <= int(hd["retry-after"]) <= 600
    # registration shares the bucket
    st, hd, b = http("POST", p.url + "/api/user/register", {"username": "x", "password": "y" * 8})
    assert st == 429
    assert p.stop() == 0


def test_no_secrets_in_log():
    time.sleep(0.3)
    log = open(M.log, "rb").read().decode("utf-8", "replace")
    assert "api: POST /api/user/login" in log or "logged in" in log
    for s in SECRETS:
        assert s not in log, f"secret {s[:4]}... found in the log"
    assert M.stop() == 0


run([test_setup_and_login, test_access_token_auth, test_register_and_roles, test_admin_users,
     test_manage, test_self_account, test_groups_and_models, test_topup_redemption, test_tokens,
     test_token_key_endpoints, test_token_delete, test_max_user_tokens, test_newapi_bcrypt_user,
     test_password_login_disabled, test_login_rate_limit, test_no_secrets_in_log])
