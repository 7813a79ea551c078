#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Core integration tests: local commands, every data type routed over all
# slots (checked against the owning node), same-slot and cross-slot
# multi-key commands, binary safety, large values, deep pipelines,
# interleaved clients, protocol errors and seed handling.

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, test, keyslot, free_port  # noqa: E402


def is_err(r, prefix):
    return isinstance(r, Error) and r.startswith(prefix)


@test
def test_local_commands(env):
    with env.client() as c:
        assert c.call("PING") == b"PONG"
        assert c.call("PING", "hello") == b"hello"
        assert c.call("ECHO", b"a\x00b") == b"a\x00b"
        assert c.call("SELECT", "0") == b"OK"
        r = c.call("SELECT", "1")
        assert isinstance(r, Error), r
        assert c.call("GET", "core:missing:key") is None
        assert c.call("SET", "core:k", "v1") == b"OK"
        assert c.call("GET", "core:k") == b"v1"
        assert c.call("DEL", "core:k") == 1
        assert c.call("GET", "core:k") is None


def tags_over_all_masters(env, count=24):
    """count hash tags whose slots are spread evenly over the slot range,
    so that every master owns some of them."""
    cl = env.cluster
    tags, want = [], [i * 16384 // count for i in range(count)]
    i = 0
    for lo in want:
        while True:
            t = "t%d" % i
            i += 1
            s = keyslot(t)
            if lo <= s < lo + 16384 // count:
                tags.append(t)
                break
    owners = {cl.node_for_key("{%s}" % t).port for t in tags}
    assert len(owners) == len(cl.masters()), (owners, cl.masters())
    return tags


def run_both(env, tag, seq):
    """Runs seq (commands with '$K' standing for the key) through the proxy
    on key {tag}p and directly on the owning master on key {tag}d (same
    slot, same node); returns (proxy_replies, direct_replies)."""
    kp, kd = "{%s}p" % tag, "{%s}d" % tag
    node = env.cluster.node_for_key(kp)
    with env.client() as c, node.client() as d:
        c.call("DEL", kp)
        d.call("DEL", kd)
        rp = [c.call(*[kp if a == "$K" else a for a in cmd]) for cmd in seq]
        rd = [d.call(*[kd if a == "$K" else a for a in cmd]) for cmd in seq]
        # The proxy's key really lives on the owning node.
        assert d.call("EXISTS", kp) == c.call("EXISTS", kp)
        c.call("DEL", kp)
        d.call("DEL", kd)
    return rp, rd


SEQS = {
    "string": [
        ("SET", "$K", "10"), ("GET", "$K"), ("INCR", "$K"),
        ("INCRBY", "$K", "5"), ("APPEND", "$K", "xyz"), ("GET", "$K"),
        ("GETRANGE", "$K", "1", "3"), ("STRLEN", "$K"), ("TYPE", "$K"),
        ("SETEX", "$K", "100", "val"), ("GET", "$K"), ("INCR", "$K"),
    ],
    "list": [
        ("LPUSH", "$K", "a", "b"), ("RPUSH", "$K", "c", "d"),
        ("LRANGE", "$K", "0", "-1"), ("LPOP", "$K"), ("LLEN", "$K"),
        ("LRANGE", "$K", "0", "-1"), ("TYPE", "$K"), ("GET", "$K"),
    ],
    "hash": [
        ("HSET", "$K", "f1", "v1", "f2", "v2"), ("HGET", "$K", "f1"),
        ("HGET", "$K", "nope"), ("HINCRBY", "$K", "n", "7"),
        ("HINCRBY", "$K", "n", "-2"), ("HLEN", "$K"), ("TYPE", "$K"),
    ],
    "set": [
        ("SADD", "$K", "a", "b", "c", "a"), ("SISMEMBER", "$K", "b"),
        ("SISMEMBER", "$K", "z"), ("SCARD", "$K"), ("SREM", "$K", "a"),
        ("SCARD", "$K"), ("TYPE", "$K"),
    ],
    "zset": [
        ("ZADD", "$K", "1", "a", "2.5", "b", "-3", "c"),
        ("ZRANGE", "$K", "0", "-1", "WITHSCORES"), ("ZSCORE", "$K", "b"),
        ("ZINCRBY", "$K", "10", "a"), ("ZRANGE", "$K", "0", "-1"),
        ("ZCARD", "$K"), ("ZRANK", "$K", "a"), ("TYPE", "$K"),
    ],
    "stream": [
        ("XADD", "$K", "1-1", "f", "v"), ("XADD", "$K", "2-0", "g", "w"),
        ("XLEN", "$K"), ("XRANGE", "$K", "-", "+"),
        ("XRANGE", "$K", "2", "+"), ("TYPE", "$K"),
    ],
    "hll": [
        ("PFADD", "$K", "a", "b", "c"), ("PFADD", "$K", "a"),
        ("PFCOUNT", "$K"),
    ],
    "bitmap": [
        ("SETBIT", "$K", "7", "1"), ("SETBIT", "$K", "100", "1"),
        ("GETBIT", "$K", "7"), ("GETBIT", "$K", "8"), ("BITCOUNT", "$K"),
        ("BITCOUNT", "$K", "0", "0"), ("STRLEN", "$K"),
    ],
    "expire": [
        ("SET", "$K", "v"), ("TTL", "$K"), ("EXPIRE", "$K", "1000"),
        ("PERSIST", "$K"), ("TTL", "$K"), ("EXPIRE", "$K", "1000"),
        ("TYPE", "$K"), ("EXISTS", "$K"), ("PERSIST", "$K"),
        ("PERSIST", "$K"), ("TTL", "$K"),
    ],
}


@test
def test_data_types_all_slots(env):
    tags = tags_over_all_masters(env)
    for kind, seq in SEQS.items():
        for tag in tags:
            rp, rd = run_both(env, tag, seq)
            assert rp == rd, "%s on tag %s: proxy %r != direct %r" % (
                kind, tag, rp, rd)
            # Errors only where Redis itself gives them (WRONGTYPE ...).
            for r in rp:
                assert not isinstance(r, Error) or \
                    r.startswith("WRONGTYPE") or \
                    r.startswith("ERR value is not"), (kind, tag, r)
    # A few known values, so equality above is not two identical bugs.
    with env.client() as c:
        k = "{%s}known" % tags[5]
        assert c.call("SET", k, "10") == b"OK"
        assert c.call("INCRBY", k, "5") == 15
        assert c.call("APPEND", k, "x") == 3
        assert c.call("GETRANGE", k, "0", "1") == b"15"
        assert c.call("SETEX", k, "50", "v") == b"OK"
        assert 45 <= c.call("TTL", k) <= 50
        assert c.call("DEL", k) == 1
        assert c.call("HSET", k, "a", "1", "b", "2") == 2
        assert sorted(c.call("HGETALL", k)) == [b"1", b"2", b"a", b"b"]
        c.call("DEL", k)
        assert c.call("SADD", k, "x", "y") == 2
        assert sorted(c.call("SMEMBERS", k)) == [b"x", b"y"]
        c.call("DEL", k)
        assert c.call("ZADD", k, "1.5", "m") == 1
        assert c.call("ZRANGE", k, "0", "-1", "WITHSCORES") == [b"m", b"1.5"]
        assert c.call("TYPE", k) == b"zset"
        assert c.call("DEL", k) == 1


@test
def test_many_keys_land_on_owner(env):
    """500 plain keys over the slot range: each one is stored on the master
    that owns its slot."""
    cl = env.cluster
    keys = ["spread:%d" % i for i in range(500)]
    with env.client() as c:
        r = c.pipeline([("SET", k, "v" + k) for k in keys])
        assert r == [b"OK"] * len(keys), r[:5]
    owners = set()
    by_node = {}
    for k in keys:
        by_node.setdefault(cl.node_for_key(k), []).append(k)
    for node, ks in by_node.items():
        owners.add(node.port)
        with node.client() as d:
            got = d.pipeline([("GET", k) for k in ks])
            assert got == [("v" + k).encode() for k in ks]
            assert d.call("CLUSTER", "KEYSLOT", ks[0]) == keyslot(ks[0])
    assert len(owners) == len(cl.masters())
    with env.client() as c:
        assert c.pipeline([("DEL", k) for k in keys]) == [1] * len(keys)


@test
def test_multikey_same_slot(env):
    with env.client() as c:
        c.pipeline([("DEL", "{user1}" + s) for s in
                    ("a", "b", "s1", "s2", "l1", "l2", "u")])
        assert c.call("SET", "{user1}a", "va") == b"OK"
        assert c.call("RENAME", "{user1}a", "{user1}b") == b"OK"
        assert c.call("GET", "{user1}b") == b"va"
        assert c.call("GET", "{user1}a") is None
        assert c.call("SADD", "{user1}s1", "x", "y") == 2
        assert c.call("SADD", "{user1}s2", "z") == 1
        assert c.call("SMOVE", "{user1}s1", "{user1}s2", "x") == 1
        assert sorted(c.call("SMEMBERS", "{user1}s2")) == [b"x", b"z"]
        assert c.call("SUNIONSTORE", "{user1}u", "{user1}s1",
                      "{user1}s2") == 3
        assert sorted(c.call("SMEMBERS", "{user1}u")) == [b"x", b"y", b"z"]
        assert c.call("RPUSH", "{user1}l1", "1", "2") == 2
        assert c.call("LMOVE", "{user1}l1", "{user1}l2", "LEFT",
                      "RIGHT") == b"1"
        assert c.call("LRANGE", "{user1}l2", "0", "-1") == [b"1"]
        assert c.call("MSET", "{user1}a", "1", "{user1}b", "2") == b"OK"
        assert c.call("MGET", "{user1}a", "{user1}b") == [b"1", b"2"]
        assert c.call("DEL", "{user1}a", "{user1}b", "{user1}s1",
                      "{user1}s2", "{user1}l1", "{user1}l2", "{user1}u") == 7


@test
def test_multikey_cross_slot(env):
    a, b = "xa", "xb"
    assert keyslot(a) != keyslot(b)
    with env.client() as c:
        assert c.call("SET", a, "1") == b"OK"
        for cmd in (("RENAME", a, b), ("SMOVE", a, b, "m"),
                    ("LMOVE", a, b, "LEFT", "RIGHT"),
                    ("SUNIONSTORE", a, b), ("RPOPLPUSH", a, b)):
            r = c.call(*cmd)
            assert is_err(r, "CROSSSLOT"), (cmd, r)
        # Nothing was executed, and the connection still works.
        assert c.call("GET", a) == b"1"
        assert c.call("GET", b) is None
        assert c.call("DEL", a) == 1


@test
def test_multikey_split_merge(env):
    """MGET/MSET/DEL/EXISTS over keys of many slots are split and merged
    in the client's key order."""
    keys = ["split:%d" % i for i in range(50)]
    assert len({keyslot(k) for k in keys}) > 40
    with env.client() as c:
        args = ["MSET"]
        for k in keys:
            args += [k, "val-" + k]
        r = c.call(*args)
        assert r == b"OK", r
        got = c.call("MGET", *(keys + ["split:missing"]))
        assert got == [("val-" + k).encode() for k in keys] + [None], got
        assert c.call("EXISTS", *keys) == 50
        assert c.call("DEL", *keys) == 50
        assert c.call("MGET", *keys[:5]) == [None] * 5
    for k in keys[:10]:
        assert env.cluster.direct("GET", k) is None


BIN_VALUES = [
    b"", b"\x00", b"a\x00b", b"\r\n", b"$3\r\nfoo\r\n", b"*1\r\n$1\r\nx\r\n",
    bytes(range(256)), bytes(range(255, -1, -1)) * 3, b"\xff\xfe\x00\r",
]


@test
def test_binary_safe(env):
    with env.client() as c:
        for i, v in enumerate(BIN_VALUES):
            key = b"bin:\x00\r\n" + v + (b":%d" % i)
            assert c.call("SET", key, v) == b"OK"
            assert c.call("GET", key) == v, (key, v)
            assert env.cluster.direct("GET", key) == v
            assert c.call("HSET", key + b"h", v, v) == 1
            assert c.call("HGET", key + b"h", v) == v
            assert c.call("DEL", key, ) == 1
            assert c.call("DEL", key + b"h") == 1
        # A key that is all 256 byte values.
        k = bytes(range(256))
        assert c.call("SET", k, k) == b"OK"
        assert c.call("GET", k) == k
        assert c.call("DEL", k) == 1


@test
def test_large_value(env):
    big = os.urandom(1 << 20)
    bigger = (b"0123456789\r\n" * 900000)[:10 << 20]
    with env.client(30) as c:
        assert c.call("SET", "big:1m", big) == b"OK"
        assert c.call("GET", "big:1m") == big
        assert c.call("STRLEN", "big:1m") == 1 << 20
        assert c.call("SET", "big:10m", bigger) == b"OK"
        assert c.call("GET", "big:10m") == bigger
        # Pipelined with small commands on both sides.
        r = c.pipeline([("PING",), ("GET", "big:1m"), ("ECHO", "x"),
                        ("GET", "big:missing")])
        assert r == [b"PONG", big, b"x", None]
        assert c.call("DEL", "big:1m") == 1
        assert c.call("DEL", "big:10m") == 1


@test(timeout=120)
def test_pipeline_100k(env):
    n = 100000
    with env.client(60) as c:
        r = c.pipeline([("SET", "pl:%d" % i, str(i)) for i in range(n)])
        assert len(r) == n
        bad = [i for i, x in enumerate(r) if x != b"OK"]
        assert not bad, "replies %s... are %r" % (bad[:5], r[bad[0]])
        r = c.pipeline([("GET", "pl:%d" % i) for i in range(n)])
        bad = [i for i, x in enumerate(r) if x != str(i).encode()]
        assert not bad, "GET pl:%d -> %r" % (bad[0], r[bad[0]])
        # Mixed local and routed commands keep their order.
        cmds = []
        for i in range(3000):
            cmds += [("GET", "pl:%d" % i), ("PING",), ("ECHO", str(i))]
        r = c.pipeline(cmds)
        want = []
        for i in range(3000):
            want += [str(i).encode(), b"PONG", str(i).encode()]
        assert r == want
        r = c.pipeline([("DEL", "pl:%d" % i) for i in range(n)])
        assert r == [1] * n


@test
def test_interleaved_clients(env):
    errors = []
    rounds, batch = 40, 250

    def worker(wid):
        try:
            with env.client(30) as c:
                for r in range(rounds):
                    cmds = []
                    for i in range(batch):
                        k = "il:%d:%d" % (wid, i)
                        cmds += [("SET", k, "w%d-r%d-%d" % (wid, r, i)),
                                 ("GET", k), ("ECHO", "w%d" % wid)]
                    got = c.pipeline(cmds)
                    for i in range(batch):
                        want = ("w%d-r%d-%d" % (wid, r, i)).encode()
                        trio = got[3 * i:3 * i + 3]
                        if trio != [b"OK", want, ("w%d" % wid).encode()]:
                            errors.append((wid, r, i, trio))
                            return
                c.pipeline([("DEL", "il:%d:%d" % (wid, i))
                            for i in range(batch)])
        except Exception as e:     # reported below
            errors.append((wid, repr(e)))

    threads = [threading.Thread(target=worker, args=(w,), daemon=True)
               for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not errors, errors[:3]


@test
def test_protocol_errors(env):
    with env.client() as bystander:
        assert bystander.call("SET", "perr:k", "v") == b"OK"
        with env.client() as c:
            c.send_raw(b"*abc\r\n")
            r = c.read()
            assert is_err(r, "ERR Protocol error"), r
            assert c.is_closed(), "connection not closed after protocol error"
        with env.client() as c:
            c.send_raw(b"*1\r\n$3\r\nGET\r\n" + b"*2\r\n$3\r\nGET\r\n$2\r\nxx\r\n")
            r = c.read()
            assert r == Error("ERR wrong number of arguments for 'get' "
                              "command"), r
            assert c.read() is None        # the connection lives on
        with env.client() as c:
            r = c.call("NOSUCHCMD", "a")
            assert is_err(r, "ERR unknown command"), r
            r = c.call("GET")
            assert r == Error("ERR wrong number of arguments for 'get' "
                              "command"), r
            r = c.call("CONFIG", "GET", "maxmemory")
            assert isinstance(r, Error) and "not supported" in r.msg, r
            assert c.call("PING") == b"PONG"
        # Absurd bulk length: error or close, never a hang or a crash.
        with env.client() as c:
            c.send_raw(b"*1\r\n$-5\r\n")
            try:
                r = c.read()
                assert isinstance(r, Error), r
            except harness.ConnectionClosed:
                pass
        assert bystander.call("GET", "perr:k") == b"v"
        assert bystander.call("DEL", "perr:k") == 1
    assert env.proxy.alive()
    with env.client() as c:
        assert c.call("PING") == b"PONG"


@test
def test_dead_seed_first(env):
    dead = free_port()
    live = env.cluster.masters()[1].port
    p = env.new_proxy(seeds=[dead, live])
    try:
        with p.client() as c:
            keys = ["ds:%d" % i for i in range(30)]
            assert c.pipeline([("SET", k, k) for k in keys]) == \
                [b"OK"] * 30
            assert c.pipeline([("GET", k) for k in keys]) == \
                [k.encode() for k in keys]
            assert c.pipeline([("DEL", k) for k in keys]) == [1] * 30
    finally:
        p.stop()


@test(timeout=90)
def test_proxy_before_cluster(env):
    """No seed answers at start: the proxy serves -CLUSTERDOWN, keeps
    looking, and serves once the cluster appears, without a restart."""
    port = harness.free_cluster_port()
    p = env.new_proxy(seeds=[port])
    with p.client() as c:
        r = c.call("GET", "late:k")
        assert isinstance(r, harness.Error) and r.startswith("CLUSTERDOWN"), r
        assert c.call("PING") == b"PONG"
    node = harness.Node(port, os.path.join(harness.tmp_root(), "late"))
    node.start()
    try:
        harness.wait_until(lambda: node.call("PING") == b"PONG", 10,
                           "late node to start")
        assert node.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"OK"
        harness.wait_until(
            lambda: b"cluster_state:ok" in node.call("CLUSTER", "INFO"), 20,
            "one-node cluster to be ok")
        with p.client() as c:
            harness.wait_until(lambda: c.call("SET", "late:k", "v") == b"OK",
                               30, "proxy to find the late cluster")
            assert c.call("GET", "late:k") == b"v"
    finally:
        node.stop()


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
