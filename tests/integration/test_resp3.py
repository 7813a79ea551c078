#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Issue 12, "RESP3": HELLO 3 (AUTH, SETNAME, errors), RESET back to RESP2,
# RESP3 replies of every type through the proxy compared byte for byte
# with what one standalone redis-server gives a RESP3 client (maps, sets,
# doubles, booleans, big numbers, verbatim strings, nulls, nested replies,
# errors, MGET across slots, fan-out merges), pushes on RESP3 backend
# connections that are not replies, proxy-made replies in RESP3,
# pub/sub pushes for RESP3 subscribers, and CLIENT TRACKING refused.
#
# Fields that must differ from one Redis: HELLO's id (the proxy's client
# id) and version (the version the proxy presents); INFO/CLIENT text
# (the proxy's own fields) is compared by type only.

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Error, Push, Set3, Verbatim, decode3,  # noqa: E402
                     keyslot, test, wait_until)

PFX = "r3%04x" % random.randrange(1 << 16)
# Behind Valkey the proxy still presents itself as Redis: HELLO's server
# field says "redis", and an UNSUBSCRIBE with nothing subscribed gets
# Redis's push, not Valkey 8's -NOSUB. Those are left out of the
# comparisons there.
VALKEY = (os.environ.get("SP_SERVER") or "").startswith("valkey")
Standalone = harness.Standalone


def k(*parts):
    return ":".join([PFX] + [str(p) for p in parts])


def hello3(c, *extra):
    """HELLO 3 on c; returns the decoded map."""
    r = c.call3("HELLO", "3", *extra)
    assert isinstance(r, dict), r
    return r


def keys_in_slots(n, name="x"):
    """n keys, each in a different slot."""
    out, seen, i = [], set(), 0
    while len(out) < n:
        key = k(name, i)
        i += 1
        if keyslot(key) not in seen:
            seen.add(keyslot(key))
            out.append(key)
    return out


def raw_diff(env, cmds, proxy=None, same_type=(), server=None):
    """Runs cmds (each alone) on a RESP3 connection through the proxy and
    on one to a fresh standalone server (of server: a harness server
    name, None for SP_SERVER's); the raw reply bytes must be equal.
    Commands whose name is in same_type are compared by their first byte
    only (the proxy's own text). Returns the proxy's raw replies."""
    proxy = proxy or env.proxy
    with Standalone(server) as sa, proxy.client() as c, sa.client() as d:
        hello3(c)
        hello3(d)
        rp, rd = [], []
        for cmd in cmds:
            c.send(cmd)
            d.send(cmd)
            rp.append(c.read_raw())
            rd.append(d.read_raw())
    bad = []
    for i, (cmd, a, b) in enumerate(zip(cmds, rp, rd)):
        if str(cmd[0]).upper() in same_type:
            a, b = a[:1], b[:1]
        if a != b:
            bad.append("  #%d %r\n      proxy:      %r\n      standalone: %r"
                       % (i, cmd, a[:300], b[:300]))
    assert not bad, "%d of %d replies differ:\n%s" % (
        len(bad), len(cmds), "\n".join(bad[:12]))
    return rp


# ---------------------------------------------------------------- HELLO

@test
def test_resp3_hello_shape_vs_standalone(env):
    """HELLO 3 answers Redis's %7 map (server, version, proto, id, mode,
    role, modules) in the same order and types as one Redis; HELLO
    (no version) then reports proto 3; HELLO 2 goes back to the flat
    array. id and version differ by design."""
    with Standalone() as sa, env.client() as c, sa.client() as d:
        for args in (("3",), (), ("2",), ("3", "SETNAME", "r3name")):
            c.send(("HELLO",) + args)
            d.send(("HELLO",) + args)
            a, b = c.read_raw(), d.read_raw()
            va, vb = decode3(a), decode3(b)
            assert a[:1] == b[:1], (args, a, b)
            if isinstance(va, dict):
                assert list(va) == list(vb), (va, vb)
                for f in (b"id", b"version") + ((b"server",) if VALKEY
                                                 else ()):
                    va.pop(f)
                    vb.pop(f)
            else:
                skip = (1, 3, 7) if VALKEY else (3, 7)  # values
                va = [x for i, x in enumerate(va) if i not in skip]
                vb = [x for i, x in enumerate(vb) if i not in skip]
            assert va == vb, (args, va, vb)
        assert c.call3("CLIENT", "GETNAME") == b"r3name"
        r = c.call3("HELLO")
        assert r[b"proto"] == 3 and r[b"mode"] == b"standalone"
        assert r[b"id"] == c.call3("CLIENT", "ID")


@test
def test_resp3_hello_errors_like_redis(env):
    """HELLO 4, HELLO 1, HELLO x, a bad option, AUTH and HELLO AUTH
    without a password configured (the nopass default user: any password
    for "default", WRONGPASS for another user): the same bytes as one
    Redis, and the protocol is unchanged after each."""
    cmds = [("HELLO", "4"), ("HELLO", "1"), ("HELLO", "x"),
            ("HELLO", "3", "BOGUS"), ("HELLO", "3", "AUTH", "u"),
            ("HELLO", "3", "AUTH", "nouser", "pw"), ("AUTH", "nouser", "pw"),
            ("AUTH", "pw"), ("AUTH", "default", "any"),
            ("HELLO", "3", "SETNAME", "a b"), ("GET", k("missing"))]
    with Standalone() as sa, env.client() as c, sa.client() as d:
        for cmd in cmds:
            c.send(cmd)
            d.send(cmd)
            a, b = c.read_raw(), d.read_raw()
            assert a == b, (cmd, a, b)
    # Still RESP2 after the failures: a nil is '$-1'.
    assert a == b"$-1\r\n"


@test
def test_resp3_hello_auth_and_reset(env):
    """With auth configured: HELLO 3 AUTH with a wrong password is
    WRONGPASS (and stays RESP2), with the right one it logs in and
    switches; NOAUTH before; RESET logs out and returns to RESP2."""
    p = env.new_proxy(extra="auth:\n  password: s3cret\n")
    with p.client() as c:
        c.send(("HELLO", "3"))
        assert c.read_raw().startswith(b"-NOAUTH HELLO must be called")
        c.send(("HELLO", "3", "AUTH", "default", "bad"))
        assert c.read_raw().startswith(b"-WRONGPASS")
        c.send(("HELLO",))
        assert c.read_raw().startswith(b"-NOAUTH")
        r = hello3(c, "AUTH", "default", "s3cret", "SETNAME", "n1")
        assert r[b"proto"] == 3
        c.send(("GET", k("nokey")))
        assert c.read_raw() == b"_\r\n"
        c.send(("RESET",))
        assert c.read_raw() == b"+RESET\r\n"
        c.send(("HELLO", "3"))
        assert c.read_raw().startswith(b"-NOAUTH")
        c.send(("AUTH", "s3cret"))
        assert c.read_raw() == b"+OK\r\n"
        c.send(("GET", k("nokey")))
        assert c.read_raw() == b"$-1\r\n"


@test
def test_resp3_reset_back_to_resp2(env):
    """RESET returns a RESP3 client to RESP2 (as Redis does): nulls are
    '$-1' again and HELLO reports proto 2; a pipelined GET right behind
    HELLO 3 is already answered in RESP3."""
    with env.client() as c:
        c.send(("HELLO", "3"), ("GET", k("none")), ("RESET",),
               ("GET", k("none")), ("HELLO",))
        assert decode3(c.read_raw())[b"proto"] == 3
        assert c.read_raw() == b"_\r\n"
        assert c.read_raw() == b"+RESET\r\n"
        assert c.read_raw() == b"$-1\r\n"
        assert c.read()[5] == 2


@test
def test_resp2_clients_unchanged_beside_resp3(env):
    """A RESP2 and a RESP3 client on the same proxy, same keys: each gets
    its own protocol's bytes (the pools are separate)."""
    key = k("both")
    with env.client() as c2, env.client() as c3:
        hello3(c3)
        for _ in range(3):
            c2.send(("HGETALL", key), ("ZSCORE", key + "z", "m"))
            c3.send(("HGETALL", key), ("ZSCORE", key + "z", "m"))
            assert c2.read_raw() == b"*0\r\n"
            assert c2.read_raw() == b"$-1\r\n"
            assert c3.read_raw() == b"%0\r\n"
            assert c3.read_raw() == b"_\r\n"
        c2.call("HSET", key, "f", "v")
        c2.call("ZADD", key + "z", "1.5", "m")
        c2.send(("HGETALL", key), ("ZSCORE", key + "z", "m"))
        c3.send(("HGETALL", key), ("ZSCORE", key + "z", "m"))
        assert c2.read_raw() == b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        assert c2.read_raw() == b"$3\r\n1.5\r\n"
        assert c3.read_raw() == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
        assert c3.read_raw() == b",1.5\r\n"
        c2.call("DEL", key, key + "z")


# ------------------------------------------------------ data differential

def data_cmds():
    """Commands covering every RESP3 reply type, on keys spread over the
    masters."""
    ks = keys_in_slots(6, "d")
    h, z, s, st, l, ss = ks
    lua = "redis.setresp(3); return %s"
    mg = keys_in_slots(12, "mg")
    mset = ["MSET"]
    for i, x in enumerate(mg[:8]):
        mset += [x, "v%d" % i]
    return [
        ("SET", k("str"), "hello"), ("GET", k("str")), ("GET", k("nil")),
        ("HSET", h, "a", "1", "b", "2"), ("HGETALL", h), ("HGETALL", k("nh")),
        ("HRANDFIELD", k("nh")), ("HGET", h, "zz"),
        ("ZADD", z, "1.5", "a", "2", "b", "-inf", "c"),
        ("ZSCORE", z, "a"), ("ZSCORE", z, "c"), ("ZSCORE", z, "none"),
        ("ZRANGE", z, "0", "-1", "WITHSCORES"), ("ZINCRBY", z, "0.25", "a"),
        ("ZPOPMIN", z), ("ZRANGE", z, "0", "0", "WITHSCORES"),
        ("ZMSCORE", z, "a", "none"),
        ("SADD", s, "1", "2", "3"), ("SMEMBERS", s), ("SMEMBERS", k("ns")),
        ("SINTER", s, s), ("SISMEMBER", s, "2"), ("SMISMEMBER", s, "1", "9"),
        ("XADD", st, "1-1", "f", "v"), ("XRANGE", st, "-", "+"),
        ("XINFO", "STREAM", st), ("XREAD", "STREAMS", st, "0"),
        ("XREAD", "STREAMS", k("nost"), "0"),
        ("RPUSH", l, "a", "b"), ("LPOP", l, "5"), ("LPOP", l), ("LPOS", l, "q"),
        ("BLPOP", l, "0.01"), ("BZPOPMIN", k("nz"), "0.01"),
        ("INCRBYFLOAT", k("fl"), "1.5"), ("OBJECT", "ENCODING", s),
        ("EVAL", lua % "true", "0"), ("EVAL", lua % "false", "0"),
        ("EVAL", lua % "{double=3.25}", "0"),
        ("EVAL", lua % "{big_number='123456789012345678901234567890'}", "0"),
        ("EVAL", lua % "{map={a=1}}", "0"),
        ("EVAL", lua % "{set={x=true}}", "0"),
        ("EVAL", lua % "{verbatim_string={format='txt', string='hi'}}",
         "0"),
        ("EVAL", lua % "{1, {2, {double=0.5}}, {map={k={set={y=true}}}}}",
         "0"),
        ("EVAL", lua % "nil", "0"),
        ("EVAL", lua % "redis.error_reply('MYERR oops')", "0"),
        ("HSET", s, "a", "b"), ("NOSUCHCOMMAND",), ("GET",),
        tuple(mset), ("MGET",) + tuple(mg), ("MGET", mg[9], mg[10]),
        ("EXISTS",) + tuple(mg), ("DEL",) + tuple(mg[:4]),
        ("PING",), ("PING", "x"), ("ECHO", "e"),
        ("SET", ss, "1", "GET"), ("SET", ss, "2", "NX", "GET"),
        ("MULTI",), ("SET", k("tx"), "1"), ("GET", k("tx")),
        ("ZSCORE", k("tx"), "m"), ("EXEC",),
        ("DEL",) + tuple(ks) + tuple(mg) + (k("str"), k("fl"), k("tx")),
    ]


@test
def test_resp3_differential_every_type(env):
    """Every RESP3 reply type (map, set, double, bool, big number,
    verbatim, null, nested, errors) and MGET/EXISTS/DEL across slots,
    MULTI/EXEC and blocking commands with a timeout: byte for byte the
    standalone server's RESP3 reply."""
    rp = raw_diff(env, data_cmds())
    assert b"%2\r\n" in b"".join(rp)          # a map came through
    assert b"(123456789012345678901234567890\r\n" in rp


@test
def test_resp3_differential_fanout(env):
    """Fan-out commands for a RESP3 client: KEYS and DBSIZE over the
    masters, RANDOMKEY with nothing matching, SCAN to the end (RESP3
    arrays), SCRIPT EXISTS, compared with one server holding the same
    keys."""
    ks = keys_in_slots(20, "fo")
    cmds = [("MSET",) + tuple(x for key in ks for x in (key, "1")),
            ("EXISTS",) + tuple(ks),
            ("SCRIPT", "EXISTS", "0" * 40, "1" * 40),
            ("DEL",) + tuple(ks)]
    raw_diff(env, cmds)
    with env.client() as c:
        hello3(c)
        c.send(("MSET",) + tuple(x for key in ks for x in (key, "1")))
        assert c.read_raw() == b"+OK\r\n"
        keys = c.call3("KEYS", k("fo") + "*")
        assert sorted(keys) == sorted(x.encode() for x in ks)
        seen, cur = set(), b"0"
        while True:
            cur, batch = c.call3("SCAN", cur, "MATCH", k("fo") + "*")
            seen.update(batch)
            if cur == b"0":
                break
        assert seen == {x.encode() for x in ks}
        assert isinstance(c.call3("DBSIZE"), int)
        c.send(("DEL",) + tuple(ks))
        assert c.read_raw() == b":20\r\n"


# ---------------------------------------------------- proxy-made replies

@test
def test_resp3_proxy_made_replies(env):
    """What the proxy answers itself comes in RESP3 for a RESP3 client as
    Redis sends it: CLIENT GETNAME's null, COMMAND INFO of an unknown
    name, UNSUBSCRIBE when not subscribed (a push), CLIENT TRACKINGINFO's
    map with a set, GETREDIR: the same bytes as one Redis. INFO (every
    form), CLIENT INFO/LIST, CLUSTER INFO/NODES: verbatim strings
    ("txt:"), as Redis; CLIENT INFO says resp=3; CLUSTER SHARDS: maps."""
    unsub = [] if VALKEY else [("UNSUBSCRIBE",), ("UNSUBSCRIBE", "a"),
                               ("PUNSUBSCRIBE",)]
    raw_diff(env, [("CLIENT", "GETNAME"), ("COMMAND", "INFO", "nosuchcmd")] +
             unsub + [("CLIENT", "TRACKINGINFO"),
                   ("CLIENT", "GETREDIR"), ("CLIENT", "CACHING", "yes"),
                   ("CLIENT", "SETNAME", "nm"), ("CLIENT", "GETNAME"),
                   ("INFO",), ("INFO", "server"), ("INFO", "keyspace"),
                   ("INFO", "clients", "keyspace"), ("CLIENT", "INFO"),
                   ("CLIENT", "LIST"), ("PING",)],
             same_type=("INFO", "CLIENT"))
    with env.client() as c:
        hello3(c)
        for cmd in (("INFO",), ("INFO", "keyspace"), ("CLIENT", "INFO"),
                    ("CLIENT", "LIST"), ("CLUSTER", "INFO"),
                    ("CLUSTER", "NODES")):
            c.send(cmd)
            raw = c.read_raw()
            assert raw[:1] == b"=" and b"\r\ntxt:" in raw[:12], (cmd, raw)
        assert b" resp=3 " in c.call3("CLIENT", "INFO")
        shards = c.call3("CLUSTER", "SHARDS")
        assert isinstance(shards[0], dict) and \
            isinstance(shards[0][b"nodes"][0], dict), shards
        # The same commands in RESP2 are unchanged.
        c.send(("HELLO", "2"))
        c.read_raw()
        assert c.call("CLIENT", "GETNAME") is None
        c.send(("INFO", "server"))
        assert c.read_raw()[:1] == b"$"
        assert b" resp=2 " in c.call("CLIENT", "INFO")


@test
def test_resp3_client_tracking_refused(env):
    """CLIENT TRACKING is refused with the reason, in both protocols."""
    for proto in ("2", "3"):
        with env.client() as c:
            c.send(("HELLO", proto))
            c.read_raw()
            r = c.call("CLIENT", "TRACKING", "on")
            assert isinstance(r, Error) and r.startswith(
                "ERR slotproxy: CLIENT TRACKING is not supported"), r
            assert c.call("CLIENT", "TRACKING", "on", "BCAST").startswith(
                "ERR slotproxy: CLIENT TRACKING")
            assert c.call("PING") == b"PONG"


def proxy_resp3_conn_ids(node):
    """Ids of the RESP3 connections on node (the proxy's RESP3 pool)."""
    out = []
    for line in node.call("CLIENT", "LIST").decode().splitlines():
        f = dict(x.split("=", 1) for x in line.split(" ") if "=" in x)
        if f.get("resp") == "3":
            out.append(f["id"])
    return out


@test
def test_resp3_backend_pushes_are_not_replies(env):
    """A push ('>') on the proxy's RESP3 backend connection (here an
    invalidation, redirected to it by CLIENT TRACKING on another
    connection) arrives between replies: it is dropped, never taken for
    the reply of the next request; pipelined GETs of the RESP3 client all
    get their own values while writes keep producing pushes."""
    key = k("push")
    node = env.cluster.node_for_key(key)
    with env.client() as c:
        hello3(c)
        c.send(("SET", key, "v0"))
        assert c.read_raw() == b"+OK\r\n"
        ids = proxy_resp3_conn_ids(node)
        assert ids, "no RESP3 connection from the proxy on the node"
        trackers = []
        try:
            for cid in ids:
                t = node.client()
                assert t.call("CLIENT", "TRACKING", "on", "REDIRECT", cid,
                              "BCAST") == b"OK"
                trackers.append(t)
            for i in range(50):
                val = "v%d" % i
                c.send(("SET", key, val), ("GET", key), ("GET", key),
                       ("INCR", key + "n"))
                assert c.read_raw() == b"+OK\r\n"
                want = b"$%d\r\n%s\r\n" % (len(val), val.encode())
                assert c.read_raw() == want, i
                assert c.read_raw() == want, i
                assert c.read_raw() == b":%d\r\n" % (i + 1), i
            c.send(("DEL", key, key + "n"))
            assert c.read_raw() == b":2\r\n"
            # The pushes did arrive, and the connections they arrived on
            # were kept (a push taken for a reply drops the connection).
            # Others may have come meanwhile: the node is the suite's.
            now = proxy_resp3_conn_ids(node)
            assert set(ids) <= set(now), (ids, now)
            for t in trackers:
                assert t.call("CLIENT", "TRACKINGINFO")[1] == [b"on",
                                                              b"bcast"]
        finally:
            for t in trackers:
                t.close()


# ---------------------------------------------------------------- pub/sub

def pubsub_script(ch, sch, valkey=VALKEY):
    """(who, command, replies the subscriber then reads): who is 'sub'
    (the RESP3 subscriber) or 'pub' (a RESP2 publisher; its reply is read
    on its own connection)."""
    key = k("ps-key")
    return [
        ("sub", ("SUBSCRIBE", ch, ch + "2"), 2),
        ("sub", ("GET", key), 1),
        ("sub", ("SET", key, "1"), 1),
        ("pub", ("PUBLISH", ch, "hello"), 1),
        ("sub", ("PING",), 1),
        ("sub", ("PING", "x"), 1),
        ("sub", ("PSUBSCRIBE", ch + "*"), 1),
        ("pub", ("PUBLISH", ch + "2", "two"), 2),
        ("sub", ("INCR", key), 1),
        ("sub", ("SSUBSCRIBE", sch), 1),
        ("pub", ("SPUBLISH", sch, "sharded"), 1),
        ("sub", ("HGETALL", key + "h"), 1),
        ("sub", ("UNSUBSCRIBE", ch), 1),
        ("pub", ("PUBLISH", ch, "gone"), 1),      # the pattern still
        ("pub", ("PUBLISH", ch + "2", "still"), 2),
        ("sub", ("PUNSUBSCRIBE",), 1),
        ("sub", ("SUNSUBSCRIBE",), 1),
        ("sub", ("UNSUBSCRIBE",), 1),
    ] + ([] if valkey else [("sub", ("UNSUBSCRIBE",), 1)]) + [
        ("sub", ("DEL", key), 1),
    ]


def run_pubsub(sub, pub, script):
    out = []
    for who, cmd, n in script:
        if who == "pub":
            pub.send(cmd)
            pub.read_raw()
        else:
            sub.send(cmd)
        out.append([sub.read_raw() for _ in range(n)])
    return out


@test
def test_resp3_pubsub_vs_standalone(env):
    """A RESP3 subscriber through the proxy: SUBSCRIBE, PSUBSCRIBE and
    SSUBSCRIBE confirmations and messages as '>' pushes, ordinary
    commands (GET, SET, INCR, HGETALL, PING) run while subscribed, each
    reply in order between the pushes, UNSUBSCRIBE family down to no
    subscription: byte for byte what one Redis sends its RESP3 client."""
    pubsub_diff(env.proxy, None)


def pubsub_diff(proxy, server):
    """pubsub_script through proxy and on one standalone server."""
    ch, sch = k("ch"), k("sch")
    valkey = (server or os.environ.get("SP_SERVER") or "").startswith("valkey")
    script = pubsub_script(ch, sch, valkey)
    with Standalone(server) as sa:
        with sa.client() as s, sa.client() as p:
            hello3(s)
            want = run_pubsub(s, p, script)
        with proxy.client() as s, proxy.client() as p:
            hello3(s)
            got = run_pubsub(s, p, script)
            # Back to normal: a command after the last unsubscribe.
            s.send(("PING",))
            last = s.read_raw()
            assert last == b"+PONG\r\n", (last, got[-6:])
    for i, ((who, cmd, _), a, b) in enumerate(zip(script, got, want)):
        assert a == b, "#%d %r\n  proxy:      %r\n  standalone: %r" % (
            i, cmd, a, b)
    assert want[0][0].startswith(b">3\r\n$9\r\nsubscribe\r\n")


@test
def test_resp3_ssubscribe_several_shards_vs_standalone(env):
    """A RESP3 client's SSUBSCRIBE of channels on three shards: the
    proxy's own confirmations are '>' pushes, one per channel in order,
    then messages from every shard, PING and GET answered as outside
    subscribed mode, SUNSUBSCRIBE of one and of all: byte for byte what
    one Redis sends its RESP3 client."""
    cl = env.cluster
    chans, owners, i = [], set(), 0
    while len(chans) < 3:
        ch = k("ssh", i)
        i += 1
        owner = cl.node_for_key(ch).port
        if owner not in owners:
            owners.add(owner)
            chans.append(ch)
    a, b, c = chans
    key = k("ssh-key")
    script = [
        ("sub", ("SSUBSCRIBE", a, b, c), 3),
        ("pub", ("SPUBLISH", a, "one"), 1),
        ("pub", ("SPUBLISH", c, "three"), 1),
        ("sub", ("PING",), 1),
        ("sub", ("GET", key), 1),
        ("sub", ("SUNSUBSCRIBE", b), 1),
        ("pub", ("SPUBLISH", b, "gone"), 0),
        ("sub", ("SUNSUBSCRIBE",), 2),
        ("sub", ("SUNSUBSCRIBE",), 1),
    ]
    with Standalone(None) as sa:
        with sa.client() as s, sa.client() as p:
            hello3(s)
            want = run_pubsub(s, p, script)
    with env.proxy.client() as s, env.proxy.client() as p:
        hello3(s)
        got = run_pubsub(s, p, script)
    for i, ((who, cmd, _), x, y) in enumerate(zip(script, got, want)):
        if cmd == ("SUNSUBSCRIBE",) and len(y) > 1:
            # Dropping every channel, Redis walks its dict of shard
            # channels, whose order is its hash's (seeded per process):
            # the same pushes, with the counts going down, in any order.
            x, y = unsub_all_shape(x), unsub_all_shape(y)
        assert x == y, "#%d %r\n  proxy:      %r\n  standalone: %r" % (
            i, cmd, x, y)
    assert want[0][0].startswith(b">3\r\n$10\r\nssubscribe\r\n")


def unsub_all_shape(pushes):
    """(sorted channel names, counts in order) of raw '>3' sunsubscribe
    pushes."""
    names, counts = [], []
    for raw in pushes:
        f = raw.split(b"\r\n")
        assert f[0] == b">3" and f[2] == b"sunsubscribe", raw
        names.append(f[4])
        counts.append(f[5])
    return sorted(names), counts


@test
def test_resp3_pubsub_pipelined(env):
    """SUBSCRIBE pipelined with commands behind it: the confirmations come
    before the replies of what follows, as from one Redis; RESET ends
    the subscriptions and the protocol (back to RESP2)."""
    ch = k("pch")
    key = k("pkey")
    with env.client() as s, env.client() as p:
        hello3(s)
        s.send(("SUBSCRIBE", ch), ("SET", key, "x"), ("GET", key),
               ("DEL", key))
        assert decode3(s.read_raw()) == Push([b"subscribe", ch.encode(), 1])
        assert s.read_raw() == b"+OK\r\n"
        assert s.read_raw() == b"$1\r\nx\r\n"
        assert s.read_raw() == b":1\r\n"
        p.call("PUBLISH", ch, "m2")
        assert decode3(s.read_raw()) == Push([b"message", ch.encode(),
                                              b"m2"])
        s.send(("RESET",))
        assert s.read_raw() == b"+RESET\r\n"
        assert p.call("PUBLISH", ch, "m3") == 0
        assert s.call("GET", key) is None


# ------------------------------------------------------- newer servers

def newer_server_case(env, server):
    """A 3-master cluster of server, a proxy in front: HELLO 3, the
    every-type and the pub/sub differentials against one standalone
    server of the same build."""
    cl = harness.Cluster(3, 0, name="resp3-" + server, server=server)
    try:
        cl.start()
        p = env.new_proxy(seeds=[m.port for m in cl.masters()])
        with p.client() as c:
            r = hello3(c)
            assert r[b"proto"] == 3 and r[b"mode"] == b"standalone", r
            if server.startswith("valkey"):
                # Merged over the masters from RESP3 parts: [slot, map].
                # (Known once every worker learned the masters' table.)
                def slot_stats():
                    return c.call3("CLUSTER", "SLOT-STATS", "SLOTSRANGE",
                                   "0", "16383")
                wait_until(lambda: not isinstance(slot_stats(), Error), 20,
                           "CLUSTER SLOT-STATS learned")
                st = slot_stats()
                assert len(st) == 16384 and st[5][0] == 5 and \
                    isinstance(st[5][1], dict), st[:3]
        raw_diff(env, data_cmds(), proxy=p, server=server)
        pubsub_diff(p, server)
        p.stop()
    finally:
        cl.stop()


@test
def test_resp3_redis74_every_type(env):
    """Behind a Redis 7.4.1 cluster (built from the shared folder on first
    use): HELLO 3, every RESP3 reply type and RESP3 pub/sub byte for byte
    as one 7.4.1."""
    newer_server_case(env, "redis-7.4.1")


@test
def test_resp3_valkey80_every_type(env):
    """The same behind a Valkey 8.0.1 cluster, against one Valkey 8.0.1."""
    newer_server_case(env, "valkey-8.0.1")


# ------------------------------------------------------------ client libs

def node_check3(env, folder, module, ok):
    d = harness.npm_dir(folder, module)
    rc, out, err = harness.run(["node", os.path.join(d, "check.js"),
                                str(env.proxy.port), "3"], timeout=90)
    assert rc == 0 and ok in out, out + err


@test(timeout=300)
def test_resp3_node_redis_v5(env):
    """node-redis v5 with RESP: 3 (it got -NOPROTO before): commands,
    MGET across slots, MULTI, pipeline, HGETALL (a map), pub/sub pushes
    and a command on the subscribed connection."""
    node_check3(env, "node-redis", "redis", "node-redis ok (RESP3)")


@test(timeout=300)
def test_resp3_valkey_glide(env):
    """valkey-glide's standalone client with RESP3, its default (HELLO 3
    failed before): commands, MGET across slots, transaction, pipeline;
    its PUBLISH reaches a RESP3 subscriber of the proxy."""
    with env.client() as sub:
        hello3(sub)
        assert sub.call3("SUBSCRIBE", "gl:chan") == Push(
            [b"subscribe", b"gl:chan", 1])
        node_check3(env, "glide", "@valkey/valkey-glide", "glide ok (RESP3)")
        assert sub.read3() == Push([b"message", b"gl:chan", b"hello"])


@test
def test_resp3_hello_switch_with_pinned_state(env):
    """HELLO cannot switch the protocol while a WATCH or a subscription
    holds a pinned connection of the other protocol (it would be lost):
    a clear error, nothing changed; after UNWATCH / unsubscribing the
    switch works, and WATCH/MULTI/EXEC then run in the new protocol."""
    key = "{%s}w" % k("w")
    with env.client() as c:
        assert c.call("WATCH", key) == b"OK"
        r = c.call("HELLO", "3")
        assert isinstance(r, Error) and r.startswith(
            "ERR slotproxy: HELLO cannot change the protocol"), r
        assert c.call("GET", key) is None          # still RESP2
        assert c.call("UNWATCH") == b"OK"
        assert hello3(c)[b"proto"] == 3
        c.send(("WATCH", key), ("MULTI",), ("SET", key, "1"),
               ("ZSCORE", key + "z", "m"), ("EXEC",))
        got = [c.read_raw() for _ in range(5)]
        assert got == [
            b"+OK\r\n", b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n",
            b"*2\r\n+OK\r\n_\r\n"]
        assert c.call3("SUBSCRIBE", k("wch")) == Push(
            [b"subscribe", k("wch").encode(), 1])
        c.send(("HELLO", "2"))
        assert c.read_raw().startswith(
            b"-ERR slotproxy: HELLO cannot change the protocol")
        c.send(("UNSUBSCRIBE",))
        assert decode3(c.read_raw())[0] == b"unsubscribe"
        c.send(("HELLO", "2"))
        assert c.read_raw().startswith(b"*14\r\n")
        assert c.call("DEL", key) == 1
