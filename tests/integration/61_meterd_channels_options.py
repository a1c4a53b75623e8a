#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""61_meterd_channels_options.py - meterd's channel, option, log, redemption and pricing
admin routes against a real meterd on a temporary SQLite file.

The admin is the root user made by POST /api/setup; its access token is written straight
into users.access_token with sqlite3 (as an operator could), and every call sends it with
New-Api-User: 1. Checks: channel CRUD with the abilities rows in step (read with sqlite3),
list filters / type_counts / search, keys never returned nor logged, the channel test
against the fake upstream (pass, fail, auto re-enable, test-all in the background),
options (refused values not stored, a good ModelRatio visible in /api/pricing at once, a
direct UPDATE visible within 2 s, secrets left out), logs (filters, paging, stat, self,
delete) over rows inserted in NewAPI's layout, and redemption codes.
"""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, TMP, Proc, free_port, http, run, start_fake, wait_port  # noqa: E402

DB = os.path.join(TMP, "meterd-61.db")
TOKEN = "test-access-token-61-abcdefghijk"
KEY1 = "sk-chan1SECRETkeyAAAABBBBCCCCDDDDEEEEFFFF0001"
M = {}


def db():
    c = sqlite3.connect(DB, timeout=10)
    c.row_factory = sqlite3.Row
    return c


def api(method, path, body=None, auth=True, headers=None):
    h = {"Content-Type": "application/json"}
    if auth:
        h.update({"Authorization": TOKEN, "New-Api-User": "1"})
    h.update(headers or {})
    st, hd, raw = http(method, M["url"] + path, body, h)
    try:
        js = json.loads(raw)
    except ValueError:
        raise AssertionError(f"{method} {path}: not JSON ({st}): {raw[:200]!r}")
    return st, js


def ok(method, path, body=None, **kw):
    st, js = api(method, path, body, **kw)
    assert st == 200 and js.get("success") is True, f"{method} {path} -> {st} {js}"
    return js.get("data")


def refused(method, path, body=None, want=None, **kw):
    st, js = api(method, path, body, **kw)
    assert js.get("success") is False, f"{method} {path} should fail: {st} {js}"
    assert js.get("message"), js
    if want:
        assert want in js["message"], f"{want!r} not in {js['message']!r}"
    return js["message"]


def abilities(cid):
    with db() as c:
        return sorted((r["group"], r["model"], r["enabled"]) for r in c.execute(
            'SELECT "group", model, enabled FROM abilities WHERE channel_id = ?', (cid,)))


def start():
    port = free_port()
    M["fake"] = start_fake("fake_upstream.py")
    M["p"] = Proc("meterd", [os.path.join(BUILD, "meterd", "meterd"), "--host", "127.0.0.1",
                             "--port", str(port)],
                  env={"SQLITE_PATH": DB, "SESSION_SECRET": "s61"}, check_exit=True)
    wait_port(port, M["p"])
    M["url"] = f"http://127.0.0.1:{port}"
    st, js = api("POST", "/api/setup", {"username": "root", "password": "12345678",
                                        "confirmPassword": "12345678"}, auth=False)
    assert js["success"], js
    with db() as c:
        c.execute("UPDATE users SET access_token = ? WHERE id = 1", (TOKEN,))


def test_auth_required():
    st, js = api("GET", "/api/channel/", auth=False)
    assert st == 401 and js["success"] is False
    st, js = api("GET", "/api/option/", headers={"New-Api-User": "2"})
    assert st == 401 and "New-Api-User" in js["message"]


def test_channel_crud():
    ids = ok("POST", "/api/channel/", {"mode": "single", "channel": {
        "name": "one", "type": 1, "key": KEY1, "base_url": M["fake"].url,
        "models": "gpt-4o, gpt-4o-mini,gpt-4o", "group": "default,vip", "priority": 5,
        "model_mapping": "", "tag": "t1"}})
    assert len(ids) == 1
    cid = M["c1"] = ids[0]
    assert abilities(cid) == [("default", "gpt-4o", 1), ("default", "gpt-4o-mini", 1),
                              ("vip", "gpt-4o", 1), ("vip", "gpt-4o-mini", 1)]
    with db() as c:
        row = c.execute("SELECT key, models FROM channels WHERE id = ?", (cid,)).fetchone()
    assert row["key"] == KEY1 and row["models"] == "gpt-4o,gpt-4o-mini"

    ch = ok("GET", f"/api/channel/{cid}")
    assert ch["key"] == "" and ch["name"] == "one" and ch["priority"] == 5
    assert ch["channel_info"]["is_multi_key"] is False

    # edit: models and group rebuilt, key untouched when not sent, "" clears a field
    ch = ok("PUT", "/api/channel/", {"id": cid, "models": "gpt-4o", "group": "default",
                                     "tag": ""})
    assert ch["models"] == "gpt-4o" and ch["tag"] == "" and ch["key"] == ""
    assert abilities(cid) == [("default", "gpt-4o", 1)]
    with db() as c:
        assert c.execute("SELECT key FROM channels WHERE id = ?", (cid,)).fetchone()[0] == KEY1

    # bad inputs: nothing written
    refused("POST", "/api/channel/", {"mode": "single", "channel": {"name": "x", "models": "a"}},
            want="key")
    refused("POST", "/api/channel/", {"mode": "nope", "channel": {"key": "k"}}, want="mode")
    refused("POST", "/api/channel/", {"channel": {"key": "k", "model_mapping": "{bad"}},
            want="model_mapping")
    refused("POST", "/api/channel/", {"channel": {"key": "k", "base_url": "ftp://x"}},
            want="base_url")
    refused("POST", "/api/channel/", {"channel": {"key": "k", "status": 9}}, want="status")
    refused("PUT", "/api/channel/", {"id": 99999, "name": "x"}, want="not found")
    refused("GET", "/api/channel/abc", want="invalid channel id")
    refused("POST", "/api/channel/", b"{not json", want="invalid request body")
    with db() as c:
        assert c.execute("SELECT count(*) FROM channels").fetchone()[0] == 1

    # batch: one channel per key line; multi_to_single: one channel, all keys
    ids = ok("POST", "/api/channel/", {"mode": "batch", "channel": {
        "name": "b", "type": 14, "key": "kA-111111111\n\n kB-222222222 \nkC-333333333",
        "models": "claude-3-5-sonnet-20241022", "group": "default", "base_url": M["fake"].url}})
    assert len(ids) == 3
    M["batch"] = ids
    with db() as c:
        keys = [r[0] for r in c.execute("SELECT key FROM channels WHERE id IN (?,?,?) ORDER BY id",
                                        ids)]
    assert keys == ["kA-111111111", "kB-222222222", "kC-333333333"]
    ids = ok("POST", "/api/channel/", {"mode": "multi_to_single", "multi_key_mode": "polling",
                                       "channel": {"name": "multi", "type": 1, "key": "x1\nx2",
                                                   "models": "m1", "status": 2}})
    ch = ok("GET", f"/api/channel/{ids[0]}")
    assert ch["channel_info"]["is_multi_key"] is True and ch["channel_info"]["multi_key_size"] == 2
    assert abilities(ids[0]) == [("default", "m1", 0)]
    M["multi"] = ids[0]

    # list: no keys, filters, type_counts, sorting
    d = ok("GET", "/api/channel/?p=1&page_size=2&id_sort=true")
    assert d["total"] == 5 and len(d["items"]) == 2 and d["page_size"] == 2
    assert [i["id"] for i in d["items"]] == [ids[0], M["batch"][2]]
    assert all(i["key"] == "" for i in d["items"])
    assert d["type_counts"] == {"1": 2, "14": 3}
    d = ok("GET", "/api/channel/?type=14")
    assert d["total"] == 3
    d = ok("GET", "/api/channel/?status=disabled")
    assert [i["id"] for i in d["items"]] == [ids[0]]
    d = ok("GET", "/api/channel/?status=enabled&sort_by=priority")
    assert d["total"] == 4 and d["items"][0]["id"] == cid
    refused("GET", "/api/channel/?sort_by=bogus", want="sort_by")
    refused("GET", "/api/channel/?type=x", want="type")
    d = ok("GET", "/api/channel/search?keyword=multi")
    assert [i["id"] for i in d["items"]] == [ids[0]] and d["page_size"] == 20
    d = ok("GET", "/api/channel/search?model=claude")
    assert d["total"] == 3
    names = ok("GET", "/api/channel/models_enabled")
    assert names == ["claude-3-5-sonnet-20241022", "gpt-4o"]
    lst = ok("GET", "/api/channel/models")
    assert [m["id"] for m in lst] == names and lst[0]["object"] == "model"

    # delete one, disabled ones, a batch; fix rebuilds abilities
    ok("DELETE", f"/api/channel/{M['batch'][0]}")
    assert abilities(M["batch"][0]) == []
    refused("DELETE", f"/api/channel/{M['batch'][0]}", want="not found")
    assert ok("DELETE", "/api/channel/disabled") == 1
    assert ok("POST", "/api/channel/batch", {"ids": [M["batch"][1]]}) == 1
    with db() as c:
        c.execute("DELETE FROM abilities")
    fx = ok("POST", "/api/channel/fix")
    assert fx["success"] == 2 and fx["fails"] == 0
    assert abilities(cid) == [("default", "gpt-4o", 1)]
    assert abilities(M["batch"][2]) == [("default", "claude-3-5-sonnet-20241022", 1)]
    # /api/models (user): enabled channels' models by type
    assert ok("GET", "/api/models") == {"1": ["gpt-4o"], "14": ["claude-3-5-sonnet-20241022"]}


def test_channel_test():
    cid = M["c1"]
    res = api("GET", f"/api/channel/test/{cid}")[1]
    assert res["success"] is True and res["message"] == "" and 0 <= res["time"] < 10, res
    with db() as c:
        t = c.execute("SELECT test_time, response_time FROM channels WHERE id = ?",
                      (cid,)).fetchone()
    assert t["test_time"] >= int(time.time()) - 60 and t["response_time"] >= 0

    # a failing channel: the fake answers 404 under another path prefix
    bad = ok("POST", "/api/channel/", {"channel": {"name": "bad", "type": 1, "key": "kbad",
                                                   "base_url": M["fake"].url + "/nope",
                                                   "models": "gpt-4o"}})[0]
    res = api("GET", f"/api/channel/test/{bad}")[1]
    assert res["success"] is False and "404" in res["message"] and "time" in res, res
    refused("GET", "/api/channel/test/99999", want="not found")

    # auto re-enable: an auto-disabled channel that passes comes back when the option is on
    ok("PUT", "/api/channel/", {"id": cid, "status": 3})
    assert abilities(cid) == [("default", "gpt-4o", 0)]
    assert api("GET", f"/api/channel/test/{cid}")[1]["success"] is True
    assert ok("GET", f"/api/channel/{cid}")["status"] == 3  # option off: stays disabled
    ok("PUT", "/api/option/", {"key": "AutomaticEnableChannelEnabled", "value": True})
    assert api("GET", f"/api/channel/test/{cid}")[1]["success"] is True
    assert ok("GET", f"/api/channel/{cid}")["status"] == 1
    assert abilities(cid) == [("default", "gpt-4o", 1)]

    # test-all: answers at once, runs in the background; auto-disable with the option on
    ok("PUT", "/api/option/", {"key": "AutomaticDisableChannelEnabled", "value": "true"})
    ok("PUT", "/api/option/", {"key": "AutomaticDisableStatusCodes", "value": "401,404"})
    with db() as c:
        c.execute("UPDATE channels SET test_time = 0")
    st, js = api("GET", "/api/channel/test")
    assert js == {"success": True, "message": ""} or js["success"] is True, js
    end = time.time() + 20
    while time.time() < end:
        with db() as c:
            left = c.execute("SELECT count(*) FROM channels WHERE test_time = 0 AND status <> 2"
                             ).fetchone()[0]
        if left == 0:
            break
        time.sleep(0.2)
    assert left == 0, "test-all did not test every channel"
    end = time.time() + 5
    while ok("GET", f"/api/channel/{bad}")["status"] != 3:
        assert time.time() < end, "the failing channel was not auto-disabled"
        time.sleep(0.1)
    assert ok("GET", f"/api/channel/{cid}")["status"] == 1
    # the Anthropic-type channel was tested on /v1/messages, which the fake lacks (404)
    claude = M["batch"][2]
    while ok("GET", f"/api/channel/{claude}")["status"] != 3:
        assert time.time() < end, "the claude channel was not auto-disabled"
        time.sleep(0.1)
    ok("PUT", "/api/channel/", {"id": claude, "status": 1})
    info = json.loads(ok("GET", f"/api/channel/{bad}")["other_info"])
    assert "404" in info["status_reason"] and info["status_time"] > 0
    ok("PUT", "/api/option/", {"key": "AutomaticDisableChannelEnabled", "value": False})
    ok("DELETE", f"/api/channel/{bad}")


def test_keys_never_logged():
    with open(M["p"].log, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    for secret in (KEY1, "kA-111111111", "kB-222222222", TOKEN):
        assert secret not in log, f"{secret} in the log"


def test_options():
    opts = {o["key"]: o["value"] for o in ok("GET", "/api/option/")}
    assert opts["QuotaPerUnit"] == "500000" and "ModelRatio" in opts and "GroupRatio" in opts
    # secrets are left out of the listing
    ok("PUT", "/api/option/", {"key": "SMTPToken", "value": "smtp-secret-value"})
    opts = {o["key"]: o["value"] for o in ok("GET", "/api/option/")}
    assert "SMTPToken" not in opts
    with db() as c:
        assert c.execute("SELECT value FROM options WHERE key = 'SMTPToken'").fetchone()[0] \
            == "smtp-secret-value"

    def stored(k):
        with db() as c:
            r = c.execute("SELECT value FROM options WHERE key = ?", (k,)).fetchone()
        return r[0] if r else None

    # refused and NOT stored
    refused("PUT", "/api/option/", {"key": "ModelRatio", "value": {"gpt-4o": 15}},
            want="JSON-encoded in a string")
    refused("PUT", "/api/option/", {"key": "ModelRatio", "value": "{bad json"}, want="ModelRatio")
    refused("PUT", "/api/option/", {"key": "GroupRatio", "value": "{\"default\":-1}"},
            want="GroupRatio")
    refused("PUT", "/api/option/", {"key": "RetryTimes", "value": "lots"}, want="RetryTimes")
    refused("PUT", "/api/option/", {"key": "RegisterEnabled", "value": "maybe"})
    refused("PUT", "/api/option/", {"key": "payment_setting.compliance_confirmed",
                                    "value": "true"})
    refused("PUT", "/api/option/", {"key": "", "value": "x"}, want="key")
    refused("PUT", "/api/option/", {"key": "RetryTimes"}, want="value is required")
    for k in ("ModelRatio", "GroupRatio", "RetryTimes", "RegisterEnabled",
              "payment_setting.compliance_confirmed"):
        assert stored(k) is None, k

    # numbers and booleans become NewAPI's strings
    ok("PUT", "/api/option/", {"key": "RetryTimes", "value": 2})
    ok("PUT", "/api/option/", {"key": "ChannelDisableThreshold", "value": 2.5})
    ok("PUT", "/api/option/", {"key": "RegisterEnabled", "value": False})
    assert (stored("RetryTimes"), stored("ChannelDisableThreshold"), stored("RegisterEnabled")) \
        == ("2", "2.5", "false")

    # a good ModelRatio is in force for the very next request
    pr = api("GET", "/api/pricing", auth=False)[1]
    item = {i["model_name"]: i for i in pr["data"]}["gpt-4o"]
    assert item["model_ratio"] == 1.25 and item["quota_type"] == 0 and item["enable_groups"] == \
        ["default"]
    ok("PUT", "/api/option/", {"key": "ModelRatio", "value": json.dumps({"gpt-4o": 2.5})})
    pr = api("GET", "/api/pricing", auth=False)[1]
    items = {i["model_name"]: i for i in pr["data"]}
    assert items["gpt-4o"]["model_ratio"] == 2.5 and items["gpt-4o"]["unpriced"] is False
    # a model no longer priced shows as unpriced, never NewAPI's 37.5 sentinel
    claude = items["claude-3-5-sonnet-20241022"]
    assert claude["unpriced"] is True and claude["model_ratio"] == 0
    assert pr["group_ratio"] == {"default": 1, "vip": 1}
    assert set(pr["usable_group"]) == {"default", "vip"} and pr["auto_groups"] == ["default"]
    # per-call price
    ok("PUT", "/api/option/", {"key": "ModelPrice", "value": "{\"gpt-4o\":0.04}"})
    items = {i["model_name"]: i for i in api("GET", "/api/pricing", auth=False)[1]["data"]}
    assert items["gpt-4o"]["quota_type"] == 1 and items["gpt-4o"]["model_price"] == 0.04
    ok("PUT", "/api/option/", {"key": "ModelPrice", "value": "{}"})
    ok("POST", "/api/option/rest_model_ratio")
    items = {i["model_name"]: i for i in api("GET", "/api/pricing", auth=False)[1]["data"]}
    assert items["gpt-4o"]["model_ratio"] == 1.25

    # a direct UPDATE in SQLite is in force within 2 s
    ok("PUT", "/api/option/", {"key": "SystemName", "value": "Via API"})
    with db() as c:
        n = c.execute("UPDATE options SET value = 'Direct Edit' WHERE key = 'SystemName'").rowcount
    assert n == 1
    end = time.time() + 2
    while True:
        opts = {o["key"]: o["value"] for o in ok("GET", "/api/option/")}
        if opts.get("SystemName") == "Direct Edit":
            break
        assert time.time() < end, "direct option edit not seen within 2 s"
        time.sleep(0.1)

    # groups (admin)
    assert ok("GET", "/api/group/") == ["default", "svip", "vip"]
    ok("PUT", "/api/option/", {"key": "GroupRatio", "value": "{\"default\":1,\"pro\":0.5}"})
    assert ok("GET", "/api/group/") == ["default", "pro"]
    ok("PUT", "/api/option/", {"key": "RegisterEnabled", "value": True})


def insert_logs():
    now = int(time.time())
    rows = [
        # user_id, created_at, type, username, token_name, model, quota, p, c, channel, group, rid
        (1, now - 10, 2, "root", "tok-a", "gpt-4o", 100, 10, 5, M["c1"], "default", "req-1"),
        (1, now - 20, 2, "root", "tok-b", "gpt-4o-mini", 50, 3, 2, M["c1"], "vip", "req-2"),
        (2, now - 30, 2, "alice", "tok-c", "gpt-4o", 70, 1, 1, 0, "default", "req-3"),
        (2, now - 4000, 2, "alice", "tok-c", "gpt-4o", 1000, 100, 100, 0, "default", "req-4"),
        (1, now - 50, 1, "root", "", "", 500, 0, 0, 0, "", ""),
        (2, now - 90000, 3, "alice", "", "", 0, 0, 0, 0, "", ""),
    ]
    other = json.dumps({"model_ratio": 1.25, "admin_info": {"use_channel": ["1"]},
                        "stream_status": {"status": "ok"}, "frt": 12})
    with db() as c:
        for r in rows:
            c.execute('INSERT INTO logs (user_id, created_at, type, content, username, token_name, '
                      'model_name, quota, prompt_tokens, completion_tokens, use_time, is_stream, '
                      'channel_id, channel_name, token_id, "group", ip, request_id, '
                      'upstream_request_id, other) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
                      (r[0], r[1], r[2], "c", r[3], r[4], r[5], r[6], r[7], r[8], 1, 0, r[9], "",
                       0, r[10], "", r[11], "", other))
    return now


def test_logs():
    now = insert_logs()
    d = ok("GET", "/api/log/?p=1&page_size=100")
    assert d["total"] == 6 and [i["request_id"] for i in d["items"][:3]] == \
        ["req-1", "req-2", "req-3"]
    first = d["items"][0]
    assert first["channel"] == M["c1"] and first["channel_name"] == "one"
    assert first["is_stream"] is False and "admin_info" in first["other"]
    assert ok("GET", "/api/log/?type=2")["total"] == 4
    assert ok("GET", "/api/log/?username=alice")["total"] == 3
    assert ok("GET", "/api/log/?token_name=tok-b")["items"][0]["request_id"] == "req-2"
    assert ok("GET", "/api/log/?model_name=gpt-4o")["total"] == 3
    assert ok("GET", "/api/log/?model_name=gpt-4o%25")["total"] == 4
    assert ok("GET", f"/api/log/?channel={M['c1']}")["total"] == 2
    assert ok("GET", "/api/log/?group=vip")["total"] == 1
    assert ok("GET", "/api/log/?request_id=req-3")["items"][0]["username"] == "alice"
    assert ok("GET", f"/api/log/?start_timestamp={now - 60}&end_timestamp={now}")["total"] == 4
    d = ok("GET", "/api/log/?p=2&page_size=4")
    assert d["page"] == 2 and len(d["items"]) == 2
    refused("GET", "/api/log/?start_timestamp=yesterday", want="start_timestamp")
    refused("GET", "/api/log/?type=9", want="type")

    st = ok("GET", "/api/log/stat?type=2")
    assert st == {"quota": 1220, "rpm": 3, "tpm": 22}, st
    st = ok("GET", "/api/log/stat?username=alice")
    assert st == {"quota": 1070, "rpm": 1, "tpm": 2}, st

    # self: own rows only, renumbered ids, no admin_info / channel
    d = ok("GET", "/api/log/self?page_size=2")
    assert d["total"] == 3 and [i["id"] for i in d["items"]] == [1, 2]
    assert all(i["user_id"] == 1 for i in d["items"])
    assert all(i["channel"] == 0 and "admin_info" not in i["other"] and
               "stream_status" not in i["other"] and "frt" in i["other"] for i in d["items"])
    assert ok("GET", "/api/log/self?username=alice")["total"] == 3  # username ignored
    assert ok("GET", "/api/log/self/stat") == {"quota": 150, "rpm": 2, "tpm": 20}
    refused("GET", "/api/log/search", want="deprecated")

    refused("DELETE", "/api/log/", want="target_timestamp")
    refused("DELETE", "/api/log/?target_timestamp=abc", want="target_timestamp")
    assert ok("DELETE", f"/api/log/?target_timestamp={now - 3600}") == 2
    assert ok("GET", "/api/log/")["total"] == 4


def test_usage_data():
    hour = int(time.time()) // 3600 * 3600
    with db() as c:
        for uid, name, model, at, tok, cnt, q in (
                (1, "root", "gpt-4o", hour, 100, 2, 300), (1, "root", "gpt-4o-mini", hour, 10, 1, 5),
                (2, "alice", "gpt-4o", hour, 50, 1, 70), (2, "alice", "gpt-4o", hour - 7200, 5, 1, 9)):
            c.execute("INSERT INTO quota_data (user_id, username, model_name, created_at, "
                      "token_used, count, quota) VALUES (?,?,?,?,?,?,?)",
                      (uid, name, model, at, tok, cnt, q))
    d = ok("GET", f"/api/data/?start_timestamp={hour - 3600}")
    by = {(r["model_name"], r["created_at"]): r for r in d}
    assert by[("gpt-4o", hour)]["quota"] == 370 and by[("gpt-4o", hour)]["count"] == 3
    assert ("gpt-4o", hour - 7200) not in by
    d = ok("GET", "/api/data/?username=alice")
    assert sorted(r["quota"] for r in d) == [9, 70]
    d = ok("GET", "/api/data/users")
    assert {(r["username"], r["created_at"]): r["quota"] for r in d} == \
        {("root", hour): 305, ("alice", hour): 70, ("alice", hour - 7200): 9}
    d = ok("GET", "/api/data/self")
    assert sorted((r["model_name"], r["quota"]) for r in d) == [("gpt-4o", 300),
                                                               ("gpt-4o-mini", 5)]
    refused("GET", "/api/data/self?start_timestamp=1&end_timestamp=99999999", want="30 days")
    refused("GET", "/api/data/?start_timestamp=9&end_timestamp=1", want="after")


def test_redemptions():
    keys = ok("POST", "/api/redemption/", {"name": "promo", "count": 3, "quota": 5000})
    assert len(keys) == 3 and all(len(k) == 32 and all(ch in "0123456789abcdef" for ch in k)
                                  for k in keys)
    refused("POST", "/api/redemption/", {"name": "", "count": 1, "quota": 1}, want="name")
    refused("POST", "/api/redemption/", {"name": "x" * 21, "count": 1, "quota": 1}, want="name")
    refused("POST", "/api/redemption/", {"name": "x", "count": 101, "quota": 1}, want="count")
    refused("POST", "/api/redemption/", {"name": "x", "count": 1, "quota": 0}, want="quota")
    refused("POST", "/api/redemption/", {"name": "x", "count": 1, "quota": 1,
                                         "expired_time": 1000}, want="expired_time")
    ok("POST", "/api/redemption/", {"name": "other", "quota": 7})
    d = ok("GET", "/api/redemption/?p=1&page_size=10")
    assert d["total"] == 4 and d["items"][0]["name"] == "other"
    promo = [i for i in d["items"] if i["name"] == "promo"]
    assert sorted(i["key"] for i in promo) == sorted(keys)
    assert ok("GET", "/api/redemption/search?keyword=pro")["total"] == 3
    rid = promo[0]["id"]
    one = ok("GET", f"/api/redemption/{rid}")
    assert one["quota"] == 5000 and one["status"] == 1
    one = ok("PUT", "/api/redemption/?status_only=1", {"id": rid, "status": 2})
    assert one["status"] == 2
    one = ok("PUT", "/api/redemption/", {"id": rid, "name": "renamed", "quota": 9})
    assert one["name"] == "renamed" and one["quota"] == 9 and one["status"] == 2
    refused("PUT", "/api/redemption/?status_only=1", {"id": rid, "status": 3}, want="status")
    refused("GET", "/api/redemption/99999", want="not found")
    ok("DELETE", f"/api/redemption/{promo[1]['id']}")
    refused("DELETE", f"/api/redemption/{promo[1]['id']}", want="not found")
    assert ok("DELETE", "/api/redemption/invalid") == 1  # the disabled one
    assert ok("GET", "/api/redemption/")["total"] == 2
    with db() as c:
        assert c.execute("SELECT count(*) FROM redemptions WHERE deleted_at IS NOT NULL"
                         ).fetchone()[0] == 2


def test_still_healthy():
    assert http("GET", M["url"] + "/healthz")[0] == 200


def test_shutdown_with_tests_in_flight():
    """A channel whose upstream accepts and never answers: a single test waiting on it and a
    background test-all stuck on it must not keep meterd from a clean exit (no leak, no
    crash, exit 0): the transfers are cancelled and their callbacks record nothing."""
    import socket
    import threading
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # never accepted: the kernel completes the handshake, nobody answers
    url = "http://127.0.0.1:%d" % hole.getsockname()[1]
    cid = ok("POST", "/api/channel/", {"channel": {"name": "hang", "type": 1, "key": "khang",
                                                   "base_url": url, "models": "gpt-4o"}})[0]
    got = {}

    def single():
        try:
            got["single"] = http("GET", M["url"] + f"/api/channel/test/{cid}", None,
                                 {"Authorization": TOKEN, "New-Api-User": "1"}, timeout=20)
        except Exception as e:  # the connection is closed by the shutdown
            got["single"] = e

    t = threading.Thread(target=single)
    t.start()
    assert api("GET", "/api/channel/test")[1]["success"] is True
    time.sleep(0.5)
    assert not got, "the test of a silent upstream answered early"
    assert ok("GET", "/api/channel/search?keyword=hang")["total"] == 1  # not blocked
    t0 = time.time()
    rc = M["p"].stop()
    assert rc == 0, f"meterd exited with {rc}"
    assert time.time() - t0 < 10
    t.join(20)
    assert not t.is_alive()
    hole.close()


start()
run([test_auth_required, test_channel_crud, test_channel_test, test_options, test_logs,
     test_usage_data, test_redemptions, test_keys_never_logged, test_still_healthy,
     test_shutdown_with_tests_in_flight])
