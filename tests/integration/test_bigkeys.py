#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Big keys and big replies (issue 15): requests and replies past
# monitor.big_request_bytes / big_reply_bytes / big_reply_elements are
# counted (slotproxy_big_requests_total{command},
# slotproxy_big_replies_total{command}) and kept in a ring that
# PROXY BIGKEYS [COUNT n] shows; and the hot-key sampling and expiry
# jitter of commands queued inside MULTI.

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, test, wait_until  # noqa: E402

MB = 1024 * 1024


def bigkeys_proxy(env, extra=""):
    """A proxy with /metrics and extra configuration; returns (proxy,
    metrics port)."""
    env.cluster
    mport = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]\n%s"
                      % (HOST, mport, extra))
    return p, mport


def entries(c, count=None):
    """PROXY BIGKEYS as dicts, newest first."""
    args = ("PROXY", "BIGKEYS") + (() if count is None
                                   else ("COUNT", str(count)))
    names = ("time", "dir", "command", "key", "bytes", "elements", "node")
    return [dict(zip(names, e)) for e in c.call(*args)]


def find(c, dir_, command, key):
    """The newest PROXY BIGKEYS entry of dir_, command and key, or None."""
    for e in entries(c, 1000):
        if (e["dir"], e["command"], e["key"]) == (dir_.encode(),
                                                  command.encode(),
                                                  key.encode()):
            return e
    return None


def counter(mport, family, command):
    return harness.metrics(mport).get('slotproxy_%s{command="%s"}'
                                      % (family, command), 0)


def node_name(env, key):
    n = env.cluster.node_for_key(key)
    return ("%s:%d" % (HOST, n.port)).encode()


@test(timeout=90)
def test_bigkeys_big_get_and_lrange(env):
    """A 2 MB GET and a 200,000-element LRANGE appear in PROXY BIGKEYS
    (time, key, size, elements, node) and in the counters; small replies
    of the same commands do not."""
    p, mport = bigkeys_proxy(env)
    with p.client(timeout=30) as c:
        assert c.call("SET", "bk:str", "x" * (2 * MB)) == b"OK"
        items = ["%d" % i for i in range(200000)]
        for i in range(0, len(items), 20000):
            assert c.call("RPUSH", "bk:list", *items[i:i + 20000]) > 0
        assert c.call("SET", "bk:small", "x" * 100) == b"OK"
        assert c.call("RPUSH", "bk:smalllist", *range(50)) == 50
        now = int(c.call("TIME")[0])
        assert len(c.call("GET", "bk:str")) == 2 * MB
        assert len(c.call("LRANGE", "bk:list", 0, -1)) == 200000
        assert len(c.call("GET", "bk:small")) == 100
        assert len(c.call("LRANGE", "bk:smalllist", 0, -1)) == 50

        wait_until(lambda: find(c, "reply", "lrange", "bk:list"), 10,
                   "the LRANGE in PROXY BIGKEYS")
        g = find(c, "reply", "get", "bk:str")
        assert g is not None, entries(c, 1000)
        assert abs(g["time"] - now) <= 5, (g, now)
        assert g["bytes"] == 2 * MB + len(b"$2097152\r\n\r\n"), g
        assert g["elements"] == -1, g
        assert g["node"] == node_name(env, "bk:str"), g
        lr = find(c, "reply", "lrange", "bk:list")
        assert lr["elements"] == 200000, lr
        assert lr["bytes"] > 200000 * 7, lr
        assert lr["node"] == node_name(env, "bk:list"), lr
        # Small replies of the same commands are not big.
        keys = [e["key"] for e in entries(c, 1000)]
        assert b"bk:small" not in keys and b"bk:smalllist" not in keys, keys
        # Newest first: the LRANGE came after the GET.
        order = [(e["command"], e["key"]) for e in entries(c, 1000)
                 if e["dir"] == b"reply"]
        assert order.index((b"lrange", b"bk:list")) < \
            order.index((b"get", b"bk:str")), order
    wait_until(lambda: counter(mport, "big_replies_total", "get") == 1 and
               counter(mport, "big_replies_total", "lrange") == 1, 10,
               "the big replies counted by command")
    # The 2 MB SET is a big request too (big_request_bytes: 1mb default).
    assert counter(mport, "big_requests_total", "set") == 1
    # The 20,000-element RPUSHes are not (about 130 KB each).
    assert counter(mport, "big_requests_total", "rpush") == 0


@test(timeout=60)
def test_bigkeys_big_request(env):
    """A 2 MB SET with big_request_bytes 1mb: a request entry with its key,
    size, argument count and the key's master; a smaller one is not."""
    p, mport = bigkeys_proxy(env, "monitor:\n  big_request_bytes: 1mb\n")
    with p.client(timeout=30) as c:
        assert c.call("SET", "bk:req", "y" * (2 * MB)) == b"OK"
        assert c.call("SET", "bk:req2", "y" * (MB - 100)) == b"OK"
        wait_until(lambda: find(c, "request", "set", "bk:req"), 10,
                   "the big SET in PROXY BIGKEYS")
        e = find(c, "request", "set", "bk:req")
        assert e["bytes"] > 2 * MB, e
        assert e["elements"] == 3, e
        assert e["node"] == node_name(env, "bk:req"), e
        assert find(c, "request", "set", "bk:req2") is None
        # A long key is cut at 128 bytes, the rest counted.
        long_key = "bk:" + "k" * 297
        assert c.call("SET", long_key, "y" * (2 * MB)) == b"OK"
        want = long_key[:128] + "... (172 more bytes)"
        wait_until(lambda: find(c, "request", "set", want), 10,
                   "the long key, cut")
        # A big request in any mode: queued inside MULTI.
        assert c.call("MULTI") == b"OK"
        assert c.call("SET", "bk:txn", "z" * (2 * MB)) == b"QUEUED"
        assert c.call("GET", "bk:txn") == b"QUEUED"
        r = c.call("EXEC")
        assert r[0] == b"OK" and len(r[1]) == 2 * MB, r[:1]
        wait_until(lambda: find(c, "request", "set", "bk:txn"), 10,
                   "the SET queued in MULTI")
        # The EXEC reply holds the 2 MB string: a big reply of EXEC.
        wait_until(lambda: any(e["dir"] == b"reply" and
                               e["command"] == b"exec" and
                               e["bytes"] > 2 * MB for e in entries(c, 100)),
                   10, "the EXEC reply")
    wait_until(lambda: counter(mport, "big_requests_total", "set") == 3, 10,
               "the big requests counted")


@test(timeout=60)
def test_bigkeys_count_and_errors(env):
    """COUNT bounds the list (10 without it); bad arguments are refused."""
    p, _ = bigkeys_proxy(env, "monitor:\n  big_reply_elements: 5\n")
    with p.client() as c:
        assert c.call("RPUSH", "bk:c", *range(10)) == 10
        for _ in range(15):
            assert len(c.call("LRANGE", "bk:c", 0, -1)) == 10
        wait_until(lambda: len(entries(c, 100)) == 15, 10, "15 entries")
        assert len(entries(c)) == 10
        assert len(entries(c, 3)) == 3
        assert len(entries(c, 1)) == 1
        assert entries(c, 1)[0]["elements"] == 10
        for bad in (("COUNT", "0"), ("COUNT", "-1"), ("COUNT", "x"),
                    ("COUNT", "100001")):
            r = c.call("PROXY", "BIGKEYS", *bad)
            assert r == "ERR value is not an integer or out of range", r
        for bad in (("COUNT",), ("LIMIT", "3"), ("COUNT", "3", "x")):
            r = c.call("PROXY", "BIGKEYS", *bad)
            assert r == "ERR syntax error", (bad, r)


@test(timeout=60)
def test_bigkeys_pipelined_and_client_gone(env):
    """Big replies of a pipeline are each recorded, newest first; a big
    reply that arrives after its client closed is recorded too (the
    request outlives the client)."""
    p, mport = bigkeys_proxy(env, "monitor:\n  big_reply_bytes: 100kb\n")
    with p.client(timeout=30) as c:
        keys = ["bk:p%d" % i for i in range(5)]
        assert c.pipeline([("SET", k, "v" * (200 * 1024)) for k in keys]) \
            == [b"OK"] * 5
        got = c.pipeline([("GET", k) for k in keys] + [("GET", "bk:none")])
        assert [len(g) for g in got[:5]] == [200 * 1024] * 5 and \
            got[5] is None
        wait_until(lambda: len([e for e in entries(c, 100)
                                if e["command"] == b"get"]) == 5, 10,
                   "the five big GETs")
        gets = [e["key"] for e in entries(c, 100) if e["command"] == b"get"]
        assert sorted(gets) == sorted(k.encode() for k in keys), gets
        # Gone before its reply: sent, then closed at once.
        with p.client() as gone:
            gone.send(("GET", "bk:p0"), ("LRANGE", "bk:none", 0, -1))
        wait_until(lambda: len([e for e in entries(c, 100)
                                if e["key"] == b"bk:p0"]) == 2, 10,
                   "the reply to the closed client recorded")
        assert c.call("PING") == b"PONG"
    wait_until(lambda: counter(mport, "big_replies_total", "get") == 6, 10,
               "six big GETs counted")


@test(timeout=60)
def test_bigkeys_admin_only(env):
    """PROXY BIGKEYS is an admin command: other roles get NOPERM; what
    their requests did is still recorded."""
    p, _ = bigkeys_proxy(env, "auth:\n  users:\n"
                         "    - {name: rw, password: rwpw, role: read-write}\n"
                         "    - {name: adm, password: admpw, role: admin}\n")
    with p.client(timeout=30) as c, p.client() as a:
        assert c.call("AUTH", "rw", "rwpw") == b"OK"
        assert a.call("AUTH", "adm", "admpw") == b"OK"
        r = c.call("PROXY", "BIGKEYS")
        assert isinstance(r, harness.Error) and r.startswith("NOPERM"), r
        assert c.call("SET", "bk:rw", "x" * (2 * MB)) == b"OK"
        assert len(c.call("GET", "bk:rw")) == 2 * MB
        wait_until(lambda: find(a, "reply", "get", "bk:rw"), 10,
                   "the rw user's big GET, seen by the admin")
        assert find(a, "request", "set", "bk:rw") is not None


@test(timeout=60)
def test_bigkeys_elements_fanout_and_off(env):
    """big_reply_elements alone makes a short reply big; fan-out fragments
    count per node under the client's command; 0 turns a threshold off."""
    p, mport = bigkeys_proxy(env, "monitor:\n  big_reply_elements: 100\n"
                             "  big_reply_bytes: 0\n"
                             "  big_request_bytes: 0\n")
    with p.client(timeout=30) as c:
        assert c.call("RPUSH", "bk:e", *range(101)) == 101
        assert c.call("RPUSH", "bk:e100", *range(100)) == 100
        assert len(c.call("LRANGE", "bk:e", 0, -1)) == 101
        assert len(c.call("LRANGE", "bk:e100", 0, -1)) == 100
        # Bytes are off: a 2 MB SET and GET are not big.
        assert c.call("SET", "bk:off", "x" * (2 * MB)) == b"OK"
        assert len(c.call("GET", "bk:off")) == 2 * MB
        # HGETALL of 60 fields: 120 elements, as RESP2 shows them.
        assert c.call("HSET", "bk:h", *sum(([f"f{i}", "v"]
                                            for i in range(60)), [])) == 60
        assert len(c.call("HGETALL", "bk:h")) == 120
        wait_until(lambda: find(c, "reply", "hgetall", "bk:h"), 10,
                   "the HGETALL")
        e = find(c, "reply", "lrange", "bk:e")
        assert e is not None and e["elements"] == 101, entries(c, 100)
        assert find(c, "reply", "lrange", "bk:e100") is None
        assert find(c, "reply", "get", "bk:off") is None
        assert find(c, "request", "set", "bk:off") is None
        # A cross-slot MGET of 2 x 150 keys of two slots: a fragment per
        # slot past the threshold, counted under the client's MGET.
        keys = ["{bkm%d}:%d" % (t, i) for t in (1, 2) for i in range(150)]
        got = c.call("MGET", *keys)
        assert len(got) == 300
        wait_until(lambda: any(e["command"] == b"mget"
                               for e in entries(c, 100)), 10,
                   "an MGET fragment with over 100 keys")
        wait_until(lambda: len([e for e in entries(c, 100)
                                if e["command"] == b"mget"]) == 2, 10,
                   "both fragments")
        frags = [e for e in entries(c, 100) if e["command"] == b"mget"]
        for e in frags:
            assert e["elements"] == 150, e
            assert e["key"] in (b"{bkm1}:0", b"{bkm2}:0"), e
            assert e["node"] == node_name(env, e["key"].decode()), e
    wait_until(lambda: counter(mport, "big_replies_total", "mget") == 2, 10,
               "the MGET fragments counted under mget")
    assert counter(mport, "big_replies_total", "get") == 0


@test(timeout=60)
def test_bigkeys_reload_and_config(env):
    """The defaults show in PROXY CONFIG GET; a SIGHUP changes a threshold
    in place (the ring and counters stay)."""
    p, mport = bigkeys_proxy(env)
    with p.client(timeout=30) as c:
        r = c.call("PROXY", "CONFIG", "GET", "monitor.big_*")
        assert dict(zip(r[::2], r[1::2])) == {
            b"monitor.big_reply_bytes": b"1mb",
            b"monitor.big_request_bytes": b"1mb",
            b"monitor.big_reply_elements": b"10000"}, r
        assert c.call("RPUSH", "bk:r", *range(50)) == 50
        assert len(c.call("LRANGE", "bk:r", 0, -1)) == 50
        assert find(c, "reply", "lrange", "bk:r") is None
        with open(p.conf) as f:
            conf = f.read()
        with open(p.conf, "w") as f:
            f.write(conf + "monitor:\n  big_reply_elements: 10\n")
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: c.call("PROXY", "CONFIG", "GET",
                                  "monitor.big_reply_elements")[1] == b"10",
                   10, "the reload")
        assert len(c.call("LRANGE", "bk:r", 0, -1)) == 50
        wait_until(lambda: find(c, "reply", "lrange", "bk:r"), 10,
                   "the LRANGE big after the reload")
    wait_until(lambda: counter(mport, "big_replies_total", "lrange") == 1,
               10, "counted")


# ------------------------------------------------ inside MULTI/EXEC

JITTER = "expiry_jitter:\n  percent: 10\n  min_ttl: 60s\n"


@test(timeout=60)
def test_multi_expiry_jitter(env):
    """200 `SET k v EX 1000` queued in MULTI get the jitter (TTLs spread
    over 1000..1100, counted); EXAT and EXPIREAT in MULTI are untouched."""
    p, mport = bigkeys_proxy(env, JITTER)
    keys = ["{bkj}:%d" % i for i in range(200)]
    with p.client() as c:
        assert c.call("MULTI") == b"OK"
        assert c.pipeline([("SET", k, "v", "EX", 1000) for k in keys]) \
            == [b"QUEUED"] * 200
        assert c.call("EXEC") == [b"OK"] * 200
        ttls = c.pipeline([("TTL", k) for k in keys])
        assert all(995 <= t <= 1100 for t in ttls), ttls
        assert len(set(ttls)) > 20 and max(ttls) > 1050, sorted(ttls)
        # The other relative forms in MULTI too.
        assert c.call("MULTI") == b"OK"
        assert c.call("EXPIRE", "{bkj}:0", 100000) == b"QUEUED"
        assert c.call("SETEX", "{bkj}:sx", 100000, "v") == b"QUEUED"
        assert c.call("EXEC") == [1, b"OK"]
        assert 100000 < c.call("TTL", "{bkj}:0") <= 110000
        assert 100000 < c.call("TTL", "{bkj}:sx") <= 110000
        # Absolute forms stay as sent.
        at = int(c.call("TIME")[0]) + 1000
        assert c.call("MULTI") == b"OK"
        assert c.call("SET", "{bkj}:exat", "v", "EXAT", at) == b"QUEUED"
        assert c.call("SET", "{bkj}:ea", "v") == b"QUEUED"
        assert c.call("EXPIREAT", "{bkj}:ea", at) == b"QUEUED"
        assert c.call("SET", "{bkj}:short", "v", "EX", 59) == b"QUEUED"
        assert c.call("EXEC") == [b"OK", b"OK", 1, b"OK"]
        for k in ("{bkj}:exat", "{bkj}:ea"):
            assert 998 <= c.call("TTL", k) <= 1000, k
        assert c.call("TTL", "{bkj}:short") <= 59
        # A DISCARDed queue changes nothing and is not counted.
        assert c.call("MULTI") == b"OK"
        assert c.call("SET", "{bkj}:d", "v", "EX", 100000) == b"QUEUED"
        assert c.call("DISCARD") == b"OK"
        assert c.call("EXISTS", "{bkj}:d") == 0
    # 200 + 2, less the rare 0 extra (1 in 101 for EX 1000).
    wait_until(lambda: harness.metrics(mport)["slotproxy_expiry_jitter_total"]
               >= 190 + 2, 20, "the jittered queued requests counted")


@test(timeout=60)
def test_multi_hotkeys_sampled(env):
    """Keyed requests queued in MULTI feed the hot-key sketch like any."""
    p, _ = bigkeys_proxy(env, "monitor:\n  hotkeys:\n    sample: 1\n")
    with p.client() as c:
        for _ in range(5):
            assert c.call("MULTI") == b"OK"
            assert c.pipeline([("INCR", "{bkh}:hot")] * 50 +
                              [("GET", "{bkh}:cold")]) == [b"QUEUED"] * 51
            assert len(c.call("EXEC")) == 51
        wait_until(lambda: (c.call("PROXY", "HOTKEYS") or [[None]])[0][0]
                   == b"{bkh}:hot", 10, "the key queued in MULTI first")
