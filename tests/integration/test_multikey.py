#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Issue 3 integration tests: multi-key split and merge (MGET, MSET, DEL,
# UNLINK, EXISTS, TOUCH), fragment failure, MSETNX, same-slot multi-key
# commands and CROSSSLOT (with no backend touched), scripting and functions,
# cluster-wide commands (DBSIZE, KEYS, RANDOMKEY, SCAN, FLUSHALL/FLUSHDB),
# INFO, CLUSTER commands, disabled_commands and clients.max_fanout_reply.
#
# "Same reply as one Redis": where useful the same command sequence runs
# through the proxy and against a standalone redis-server started here
# (Standalone below) and the replies must be equal.
#
# Every key starts with a prefix unique to this file and run (PFX), so the
# shared cluster's other tests are not disturbed; the only FLUSHALL runs in
# the last=True test, which checks the cluster is whole afterwards.

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, test, keyslot, wait_until  # noqa: E402

PFX = "mk%04x" % random.randrange(1 << 16)
CROSSSLOT = Error("CROSSSLOT Keys in request don't hash to the same slot")


def k(*parts):
    """A key under this file's prefix: k('a', 1) -> 'mkXXXX:a:1'."""
    return ":".join([PFX] + [str(p) for p in parts])


def is_err(r, prefix=""):
    return isinstance(r, Error) and r.startswith(prefix)


# --------------------------------------------------------------- standalone

Standalone = harness.Standalone


def _fmt(c):
    out = []
    for a in c:
        s = a if isinstance(a, (bytes, str)) else str(a)
        s = repr(s)
        out.append(s if len(s) < 40 else s[:37] + "...")
    return " ".join(out)


def diff(env, cmds, unordered=(), seed=None, chunk=None):
    """Runs cmds through the proxy and against a fresh standalone Redis;
    asserts every reply is equal. Commands whose name is in unordered get
    their array replies compared as sorted lists (set iteration order
    depends on each server's hash seed). chunk: send in pipelines of that
    many commands. Returns the proxy's replies."""
    with Standalone() as sa, env.client(60) as c, sa.client(60) as d:
        if chunk:
            rp, rd = [], []
            for i in range(0, len(cmds), chunk):
                rp += c.pipeline(cmds[i:i + chunk])
                rd += d.pipeline(cmds[i:i + chunk])
        else:
            rp = [c.call(*cmd) for cmd in cmds]
            rd = [d.call(*cmd) for cmd in cmds]
    bad = []
    for i, (cmd, a, b) in enumerate(zip(cmds, rp, rd)):
        name = str(cmd[0]).upper()
        if name in unordered and isinstance(a, list) and isinstance(b, list):
            a, b = sorted(a, key=repr), sorted(b, key=repr)
        if a != b:
            bad.append("  #%d %s\n      proxy:      %r\n      standalone: %r"
                       % (i, _fmt(cmd), _trunc(a), _trunc(b)))
    assert not bad, "%d of %d replies differ%s:\n%s" % (
        len(bad), len(cmds), " (seed %d)" % seed if seed is not None else "",
        "\n".join(bad[:10]))
    return rp


def _trunc(v):
    r = repr(v)
    return r if len(r) < 300 else r[:300] + "...(%d chars)" % len(r)


# ---------------------------------------------------------------- cluster

def masters(env):
    return env.cluster.masters()


def tag_per_master(env, base="t"):
    """{tag} strings, one whose slot each master owns, in masters() order."""
    cl = env.cluster
    out = {}
    i = 0
    while len(out) < len(cl.masters()):
        t = "%s%s%d" % (PFX, base, i)
        out.setdefault(cl.node_for_key(t).port, t)
        i += 1
    return [out[m.port] for m in cl.masters()]


def direct_get(env, key):
    return env.cluster.node_for_key(key).call("GET", key)


def exists_anywhere(env, key):
    """EXISTS on every master directly (the key's own slot or not)."""
    total = 0
    for m in masters(env):
        with m.client() as d:
            d.call("READONLY")
            # EXISTS of a key whose slot the node does not own is MOVED;
            # only count real answers.
            r = d.call("EXISTS", key)
            if isinstance(r, int):
                total += r
    return total


def cmdstat_calls(env, names):
    """Sum over masters of calls+rejected_calls+failed_calls of the given
    commands (lower case), from INFO commandstats."""
    total = 0
    for m in masters(env):
        info = m.call("INFO", "commandstats").decode()
        for line in info.splitlines():
            if not line.startswith("cmdstat_"):
                continue
            name, _, rest = line[len("cmdstat_"):].partition(":")
            if name not in names:
                continue
            for kv in rest.split(","):
                f, _, v = kv.partition("=")
                if f in ("calls", "rejected_calls", "failed_calls"):
                    total += int(v)
    return total


def many_slots_keys(name, n):
    keys = [k(name, i) for i in range(n)]
    return keys


# ===================================================================
# 1. Split and merge
# ===================================================================

@test
def test_mk_mget_mset_vs_standalone(env):
    """MSET over 1000 keys in ~1000 slots, then MGET of 1, 2, 10 and 1000
    keys, repeated keys, missing keys, a wrong-type key (nil in MGET),
    in the client's order; compared reply for reply with one Redis."""
    keys = many_slots_keys("mm", 1000)
    assert len({keyslot(x) for x in keys}) > 900
    rnd = random.Random(3)
    mset = ["MSET"]
    for x in keys:
        mset += [x, "v-" + x]
    miss = [k("mm-missing", i) for i in range(20)]
    lst = k("mm-list")
    shuffled = keys[:]
    rnd.shuffle(shuffled)
    rep = [keys[0], keys[5], keys[0], keys[999], keys[5], keys[5]]
    cmds = [
        tuple(mset),
        ("RPUSH", lst, "a", "b"),
        ("MGET", keys[7]),
        ("MGET", keys[1], keys[2]),
        ("MGET",) + tuple(keys[10:20]),
        ("MGET",) + tuple(keys),
        ("MGET",) + tuple(shuffled),
        ("MGET",) + tuple(reversed(keys)),
        ("MGET",) + tuple(rep),
        ("MGET",) + tuple(miss),
        ("MGET", miss[0], keys[3], miss[1], keys[4], miss[0]),
        ("MGET", keys[0], lst, keys[1], lst),
        ("MGET", lst),
        # MSET with a repeated key: the last value wins, as in Redis.
        ("MSET", keys[0], "first", keys[1], "x", keys[0], "last"),
        ("MGET", keys[0], keys[1]),
        # Overwrite a list with MSET (MSET ignores types).
        ("MSET", lst, "now-a-string", keys[2], "y"),
        ("MGET", lst, keys[2]),
        ("MSET", keys[3], ""),
        ("MGET", keys[3], keys[4]),
    ]
    rp = diff(env, cmds)
    # Known values, so equality is not two identical bugs.
    assert rp[0] == b"OK"
    assert rp[5] == [("v-" + x).encode() for x in keys]
    assert rp[6] == [("v-" + x).encode() for x in shuffled]
    assert rp[8] == [("v-" + x).encode() for x in rep]
    assert rp[9] == [None] * 20
    assert rp[11] == [b"v-" + keys[0].encode(), None,
                      b"v-" + keys[1].encode(), None]
    # The values are on the owning masters.
    for x in keys[10:60]:
        assert direct_get(env, x) == ("v-" + x).encode(), x
    assert direct_get(env, keys[0]) == b"last"
    with env.client() as c:
        assert c.call("DEL", *(keys + [lst])) == 1001


@test
def test_mk_del_exists_touch_unlink_sums(env):
    keys = many_slots_keys("sum", 60)
    miss = [k("sum-missing", i) for i in range(5)]
    mset = ["MSET"]
    for x in keys:
        mset += [x, "1"]
    cmds = [
        tuple(mset),
        ("EXISTS", keys[0]),
        ("EXISTS",) + tuple(keys),
        # Repeated keys count each time, as Redis does.
        ("EXISTS", keys[0], keys[0], keys[1], keys[0], miss[0], keys[1]),
        ("EXISTS",) + tuple(miss),
        ("EXISTS",) + tuple(keys + keys + miss),
        ("TOUCH",) + tuple(keys[:30] + miss),
        ("TOUCH", keys[0], keys[0], keys[7]),
        ("UNLINK",) + tuple(keys[:10] + miss),
        ("UNLINK", keys[10], keys[10], keys[11]),
        ("EXISTS",) + tuple(keys),
        ("DEL",) + tuple(keys[20:40] + keys[20:40]),
        ("DEL", keys[40], keys[41], keys[40], miss[1]),
        ("DEL",) + tuple(keys),
        ("EXISTS",) + tuple(keys),
        ("DEL",) + tuple(keys),
    ]
    rp = diff(env, cmds)
    assert rp[1:6] == [1, 60, 5, 0, 120], rp[1:6]
    assert rp[6:8] == [30, 3], rp[6:8]
    assert rp[8:11] == [10, 2, 48], rp[8:11]
    assert rp[11:16] == [20, 2, 26, 0, 0], rp[11:16]


@test(timeout=90)
def test_mk_huge_mget_10000(env):
    keys = many_slots_keys("huge", 10000)
    mset = ["MSET"]
    for i, x in enumerate(keys):
        mset += [x, "%d-%s" % (i, "x" * (i % 50))]
    want = [("%d-%s" % (i, "x" * (i % 50))).encode()
            for i in range(len(keys))]
    with env.client(60) as c:
        assert c.call(*mset) == b"OK"
        got = c.call("MGET", *keys)
        assert len(got) == len(keys)
        bad = [i for i in range(len(keys)) if got[i] != want[i]]
        assert not bad, "MGET[%d] = %r, want %r" % (bad[0], got[bad[0]],
                                                   want[bad[0]])
        # Pipelined, interleaved with single-slot commands: order kept.
        r = c.pipeline([("MGET",) + tuple(keys[:5000]), ("PING",),
                        ("GET", keys[1]), ("MGET",) + tuple(keys[5000:]),
                        ("EXISTS",) + tuple(keys)])
        assert r[0] == want[:5000] and r[1] == b"PONG" and \
            r[2] == want[1] and r[3] == want[5000:] and r[4] == 10000, \
            [_trunc(x) for x in r]
        assert c.call("DEL", *keys) == 10000
        assert c.call("EXISTS", *keys[:100]) == 0


BIN_KEYS = [
    b"\x00", b"a\x00b", b"\r\n", b"*1\r\n$1\r\nx\r\n", bytes(range(256)),
    b"{\x00}x", b"{\x00}y", b"{}\xff", b"{", b"}", b"{{x}}", b"\xff\xfe",
    b" space key ", b"",
]


@test
def test_mk_binary_keys(env):
    pre = PFX.encode() + b":bin:"
    keys = [pre + x for x in BIN_KEYS] + [b"{\x00}x", b"{\x00}y"]
    # The last two are the same slot by hash tag, without the prefix.
    mset = ["MSET"]
    for i, x in enumerate(keys):
        mset += [x, b"val\x00" + x + b"%d" % i]
    cmds = [
        tuple(mset),
        ("MGET",) + tuple(keys),
        ("MGET",) + tuple(reversed(keys)),
        ("EXISTS",) + tuple(keys + keys[:3]),
        ("TOUCH",) + tuple(keys),
        ("MSETNX", b"{\x00}x", b"1", b"{\x00}y", b"2"),
        ("MSETNX", b"{\x00}new1", b"1", b"{\x00}new2", b"2"),
        ("MGET", b"{\x00}new1", b"{\x00}new2", b"{\x00}x"),
        ("DEL",) + tuple(keys + [b"{\x00}new1", b"{\x00}new2"]),
        ("MGET",) + tuple(keys),
    ]
    rp = diff(env, cmds)
    assert rp[1] == [b"val\x00" + x + b"%d" % i for i, x in enumerate(keys)]
    for x in keys[:5]:
        assert env.cluster.node_for_key(x).call("EXISTS", x) == 0


@test
def test_mk_split_bad_arity(env):
    """MSET with a missing last value and keys in several slots: one Redis
    answers the arity error and writes nothing. Runs on its own proxy,
    since a wrong split can crash it."""
    cl = env.cluster
    a, b, c3 = k("ar-a"), k("ar-b"), k("ar-c")
    assert len({keyslot(a), keyslot(b), keyslot(c3)}) == 3
    want = Error("ERR wrong number of arguments for 'mset' command")
    p = env.new_proxy()
    problems = []
    try:
        for cmd in (("MSET", a, "v", b), ("MSET", a, "v", b, "w", c3),
                    ("MSET", "{%s}x" % PFX, "v", "{%s}y" % PFX),
                    ("MSETNX", a, "v", b)):
            try:
                with p.client(5) as c:
                    r = c.call(*cmd)
                    after = c.call("PING")
            except (harness.ConnectionClosed, OSError) as e:
                r, after = "connection lost: %r" % e, None
                try:
                    p.proc.wait(2)      # crashed, or just hung up?
                except Exception:
                    pass
            exp = CROSSSLOT if cmd[0] == "MSETNX" else want
            if r != exp:
                problems.append("%s -> %r, want %r" % (_fmt(cmd), r, exp))
            if after != b"PONG":
                problems.append("%s: proxy %s (exit status %s)" % (
                    _fmt(cmd), "died" if not p.alive() else "hung up",
                    p.proc.poll()))
                if not p.alive():
                    p = env.new_proxy()
            for x in (a, b, c3):
                if exists_anywhere(env, x):
                    problems.append("%s wrote %s = %r" % (
                        _fmt(cmd), x, cl.direct("GET", x)))
                    cl.direct("DEL", x)
    finally:
        p.stop()
    assert not problems, "\n".join(problems)


@test
def test_mk_inline_split(env):
    """Inline (telnet-style) MSET/MGET/DEL across slots are split too."""
    a, b, c3 = k("in-a"), k("in-b"), k("in-c")
    with env.client() as c:
        c.send_raw(("MSET %s 1 %s 2 %s 3\r\nMGET %s %s %s %s\r\n"
                    "EXISTS %s %s %s %s\r\nDEL %s %s %s\r\n" % (
                        a, b, c3, c3, a, k("in-none"), b, a, a, b, c3,
                        a, b, c3)).encode())
        r = [c.read() for _ in range(4)]
    assert r == [b"OK", [b"3", b"1", None, b"2"], 4, 3], r


@test
def test_mk_errors_vs_standalone(env):
    """Error replies of split, fan-out and scripting commands are Redis's
    own (same text as one Redis)."""
    a, b = k("er-a"), k("er-b")
    cmds = [
        ("MGET",), ("EXISTS",), ("DEL",), ("MSET", a), ("TOUCH",),
        ("KEYS",), ("KEYS", "a", "b"), ("DBSIZE", "x"), ("RANDOMKEY", "x"),
        ("SCAN", "0", "MATCH"), ("SCAN", "0", "BOGUS", "1"),
        ("SCAN", "0", "COUNT", "x"), ("SCAN", "1x"),
        ("FLUSHALL", "BAD"), ("FLUSHDB", "BAD"),
        ("SCRIPT", "LOAD", "return +"), ("SCRIPT", "KILL"),
        ("SCRIPT", "EXISTS"), ("SCRIPT", "FLUSH", "BAD"),
        ("FUNCTION", "KILL"), ("FUNCTION", "LOAD", "bad code"),
        ("FUNCTION", "DELETE", PFX + "nolib"),
        ("FUNCTION", "RESTORE", "garbage"),
        ("EVAL", "return 1", "-1"), ("EVAL", "return 1", "x"),
        ("EVAL", "return 1", "2", a), ("EVALSHA", "0" * 40, "1", a),
        ("EVALSHA", "0" * 40, "0"), ("FCALL", "nofn", "0"),
        ("FCALL", "nofn", "1", a), ("FCALL_RO", "nofn", "-1"),
        ("SET", a, "1"), ("RPUSH", b, "x"),
        ("EVAL", "return redis.call('incr', KEYS[1])", "1", b),
        ("EVAL", "return redis.call('get', KEYS[1])", "1", a),
        ("EVAL", "return redis.error_reply('MY error')", "0"),
        ("EVAL", "return redis.status_reply('FINE')", "0"),
        ("EVAL", "return {1, 2.5, 'x', false, {3}}", "0"),
        ("MGET", a, b, a), ("DEL", a, b),
    ]
    diff(env, cmds)


@test
def test_mk_scan_cursor_like_redis(env):
    """Redis parses the SCAN cursor with strtoul: '-1' is accepted (it
    wraps) and any cursor gives a reply, never 'invalid cursor'."""
    diff(env, [("SCAN", "-1", "MATCH", k("nomatch", "*")),
               ("SCAN", "18446744073709551615", "MATCH", k("nomatch", "*"))])


@test
def test_mk_random_differential(env):
    """A seeded random mix of split commands (keys from a pool spread over
    many slots and a few hash tags, with repeats) and single-key commands,
    in pipelines of 1 to 200 commands, against one Redis."""
    seed = int(os.environ.get("MK_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    pool = [k("rd", i) for i in range(40)] + \
        ["{%srd}:%d" % (PFX, i) for i in range(10)]

    def some(n):
        return [rnd.choice(pool) for _ in range(n)]
    cmds = []
    for _ in range(1500):
        op = rnd.random()
        n = rnd.randint(1, 12)
        if op < 0.2:
            ks = some(n)
            a = ["MSET"]
            for x in ks:
                a += [x, rnd.choice(["", "0", "17", "v\x00\r\n",
                                     "x" * rnd.randint(0, 3000)])]
            cmds.append(tuple(a))
        elif op < 0.4:
            cmds.append(("MGET",) + tuple(some(n)))
        elif op < 0.48:
            cmds.append(("DEL",) + tuple(some(n)))
        elif op < 0.54:
            cmds.append(("UNLINK",) + tuple(some(n)))
        elif op < 0.65:
            cmds.append(("EXISTS",) + tuple(some(n)))
        elif op < 0.7:
            cmds.append(("TOUCH",) + tuple(some(n)))
        elif op < 0.78:
            cmds.append(("INCR", rnd.choice(pool)))
        elif op < 0.84:
            cmds.append(("RPUSH", rnd.choice(pool), "e"))
        elif op < 0.9:
            cmds.append(("GET", rnd.choice(pool)))
        elif op < 0.95:
            cmds.append(("SET", rnd.choice(pool), str(rnd.randint(0, 99))))
        else:
            cmds.append(("STRLEN", rnd.choice(pool)))
    cmds.append(("DEL",) + tuple(pool))
    with Standalone() as sa, env.client(60) as c, sa.client(60) as d:
        i = 0
        rp, rd = [], []
        while i < len(cmds):
            n = rnd.randint(1, 200)
            rp += c.pipeline(cmds[i:i + n])
            rd += d.pipeline(cmds[i:i + n])
            i += n
    bad = [(j, cmds[j], rp[j], rd[j]) for j in range(len(cmds))
           if rp[j] != rd[j]]
    assert not bad, "seed %d (rerun with MK_SEED=%d): %d mismatches, " \
        "first: #%d %s proxy %r standalone %r" % (
            seed, seed, len(bad), bad[0][0], _fmt(bad[0][1]),
            _trunc(bad[0][2]), _trunc(bad[0][3]))


@test
def test_mk_fragment_timeout_one_error(env):
    """One master paused (SIGSTOP) past request_timeout: an MSET/MGET/DEL
    over every master gets exactly one error naming the backend and the
    cause; the next command on the same connection is answered in order;
    after SIGCONT the proxy serves the split again. The pause stays under
    the cluster's node timeout (2 s) so no failover starts."""
    cl = env.cluster
    # 700 ms, not 1 s: the pause (1.7 s) must outlast the timeout counted
    # from when the proxy sends, which a loaded machine delays.
    p = env.new_proxy(request_timeout="700ms")
    tags = tag_per_master(env, "fr")
    victim = cl.masters()[-1]
    keys = [k("fr", i) for i in range(60)]
    by = {cl.node_for_key(x).port for x in keys}
    assert victim.port in by and len(by) == len(cl.masters())
    mset = ["MSET"]
    for x in keys:
        mset += [x, "a"]
    try:
        with p.client(10) as c:
            assert c.call(*mset) == b"OK"
            timer = threading.Timer(1.7, victim.resume)
            victim.pause()
            timer.start()
            try:
                t0 = time.time()
                c.send(["MSET"] + [a if i % 2 == 0 else "b"
                                   for i, a in enumerate(mset[1:])],
                       ("PING",), ("GET", "{%s}x" % tags[0]))
                r = c.read()
                rest = [c.read(), c.read()]
                took = time.time() - t0
            finally:
                timer.cancel()
                victim.resume()
            assert is_err(r, "ERR slotproxy: backend"), r
            assert ("%d" % victim.port) in r.msg, \
                "error does not name the paused node %d: %r" % (
                    victim.port, r)
            assert "timeout" in r.msg.lower() or "timed out" in \
                r.msg.lower(), r
            assert rest == [b"PONG", None], rest
            assert took < 3.0, took

            # The victim's fragment never ran (it was paused before the
            # send); once it is back the split works again.
            wait_until(lambda: c.call(*mset) == b"OK", 10,
                       "MSET through the proxy after SIGCONT")
            assert c.call("MGET", *keys) == [b"a"] * len(keys)
            assert c.call("DEL", *keys) == len(keys)
    finally:
        victim.resume()
        p.stop()
    cl.wait_ok(20)


# ===================================================================
# 2. MSETNX and same-slot commands
# ===================================================================

@test
def test_mk_msetnx(env):
    t = "{%smsnx}" % PFX
    a, b = k("msnx-a"), k("msnx-b")
    assert keyslot(a) != keyslot(b)
    cmds = [
        ("MSETNX", t + "1", "x", t + "2", "y"),
        ("MSETNX", t + "2", "z", t + "3", "w"),
        ("MGET", t + "1", t + "2", t + "3"),
        ("MSETNX", t + "4", "a", t + "4", "b"),
        ("GET", t + "4"),
        ("DEL", t + "1", t + "2", t + "3", t + "4"),
    ]
    rp = diff(env, cmds)
    assert rp[:3] == [1, 0, [b"x", b"y", None]], rp
    before = cmdstat_calls(env, {"msetnx"})
    with env.client() as c:
        r = c.call("MSETNX", a, "1", b, "2")
        assert r == CROSSSLOT, r
        r = c.call("MSETNX", a, "1", t + "9", "2", b, "3")
        assert r == CROSSSLOT, r
        assert c.call("MGET", a, b, t + "9") == [None, None, None]
    assert exists_anywhere(env, a) == 0 and exists_anywhere(env, b) == 0
    assert cmdstat_calls(env, {"msetnx"}) == before, "a backend saw MSETNX"


def same_slot_seq(t):
    """Same-slot multi-key commands on {t} keys, as (cmds, unordered)."""
    K = lambda n: "{%s}%s" % (t, n)  # noqa: E731
    cmds = [
        ("SET", K("s1"), "hello"),
        ("RENAME", K("s1"), K("s2")),
        ("GET", K("s2")), ("GET", K("s1")),
        ("RENAMENX", K("s2"), K("s3")),
        ("COPY", K("s3"), K("s4")),
        ("COPY", K("s3"), K("s4")),
        ("COPY", K("s3"), K("s4"), "REPLACE"),
        ("GET", K("s4")),
        ("RPUSH", K("l1"), "1", "2", "3", "4"),
        ("RPOPLPUSH", K("l1"), K("l2")),
        ("LMOVE", K("l1"), K("l2"), "LEFT", "RIGHT"),
        ("LRANGE", K("l2"), "0", "-1"),
        ("LMPOP", "2", K("nol"), K("l1"), "LEFT", "COUNT", "5"),
        ("LMPOP", "2", K("nol"), K("nol2"), "RIGHT"),
        ("SADD", K("a"), "1", "2", "3", "x"),
        ("SADD", K("b"), "2", "3", "4"),
        ("SMOVE", K("a"), K("b"), "x"),
        ("SMOVE", K("a"), K("b"), "nope"),
        ("SUNIONSTORE", K("u"), K("a"), K("b")),
        ("SMEMBERS", K("u")),
        ("SDIFF", K("a"), K("b")),
        ("SINTER", K("a"), K("b")),
        ("SUNION", K("a"), K("b"), K("none")),
        ("SINTERSTORE", K("i"), K("a"), K("b")),
        ("SDIFFSTORE", K("d"), K("b"), K("a")),
        ("SINTERCARD", "2", K("a"), K("b")),
        ("SINTERCARD", "2", K("a"), K("b"), "LIMIT", "1"),
        ("ZADD", K("z1"), "1", "a", "2", "b", "3", "c"),
        ("ZADD", K("z2"), "10", "b", "20", "c", "30", "d"),
        ("ZUNIONSTORE", K("zu"), "2", K("z1"), K("z2"), "WEIGHTS", "1", "2"),
        ("ZRANGE", K("zu"), "0", "-1", "WITHSCORES"),
        ("ZINTER", "2", K("z1"), K("z2"), "WITHSCORES"),
        ("ZUNION", "2", K("z1"), K("z2"), "AGGREGATE", "MAX"),
        ("ZDIFF", "2", K("z1"), K("z2")),
        ("ZINTERSTORE", K("zi"), "2", K("z1"), K("z2")),
        ("ZDIFFSTORE", K("zd"), "2", K("z2"), K("z1")),
        ("ZINTERCARD", "2", K("z1"), K("z2")),
        ("ZRANGESTORE", K("zr"), K("zu"), "0", "1"),
        ("ZMPOP", "2", K("noz"), K("z1"), "MIN", "COUNT", "2"),
        ("ZMPOP", "2", K("noz"), K("noz2"), "MAX"),
        ("PFADD", K("h1"), "a", "b", "c"),
        ("PFADD", K("h2"), "c", "d"),
        ("PFADD", K("h3"), "e"),
        ("PFCOUNT", K("h1"), K("h2"), K("h3")),
        ("PFMERGE", K("hm"), K("h1"), K("h2"), K("h3")),
        ("PFCOUNT", K("hm")),
        ("SET", K("b1"), "\xff\x0f"),
        ("SET", K("b2"), "\x0f\xf0"),
        ("BITOP", "AND", K("bo"), K("b1"), K("b2")),
        ("BITOP", "OR", K("bo2"), K("b1"), K("b2"), K("none")),
        ("BITOP", "NOT", K("bo3"), K("b1")),
        ("MGET", K("bo"), K("bo2"), K("bo3")),
        ("RPUSH", K("srt"), "3", "1", "2", "10"),
        ("SORT", K("srt"), "STORE", K("sorted")),
        ("LRANGE", K("sorted"), "0", "-1"),
        ("SORT", K("srt"), "DESC", "LIMIT", "0", "2", "STORE", K("sorted2")),
        ("LRANGE", K("sorted2"), "0", "-1"),
        ("SORT", K("srt"), "ALPHA"),
        ("SORT_RO", K("srt"), "ALPHA", "DESC"),
        ("SET", K("lcs1"), "ohmytext"),
        ("SET", K("lcs2"), "mynewtext"),
        ("LCS", K("lcs1"), K("lcs2")),
        ("SMISMEMBER", K("a"), "1", "9"),
        ("GEOADD", K("g"), "13.361389", "38.115556", "Palermo",
         "15.087269", "37.502669", "Catania"),
        ("GEOSEARCHSTORE", K("g2"), K("g"), "FROMMEMBER", "Palermo",
         "BYRADIUS", "200", "km", "ASC"),
        ("ZRANGE", K("g2"), "0", "-1"),
        ("MSET", K("m1"), "1", K("m2"), "2"),
        ("MGET", K("m1"), K("m2"), K("m3")),
        ("EXISTS", K("m1"), K("m2"), K("m3"), K("m1")),
        ("DEL", K("s1"), K("s2"), K("s3"), K("s4"), K("l1"), K("l2"),
         K("a"), K("b"), K("u"), K("i"), K("d"), K("z1"), K("z2"), K("zu"),
         K("zi"), K("zd"), K("zr"), K("h1"), K("h2"), K("h3"), K("hm"),
         K("b1"), K("b2"), K("bo"), K("bo2"), K("bo3"), K("srt"),
         K("sorted"), K("sorted2"), K("lcs1"), K("lcs2"), K("g"), K("g2"),
         K("m1"), K("m2")),
    ]
    unordered = {"SMEMBERS", "SDIFF", "SINTER", "SUNION"}
    return cmds, unordered


@test
def test_mk_same_slot_vs_standalone(env):
    """Every same-slot multi-key command with {hash tags}, on a tag of
    each master: the same replies as one Redis."""
    for t in tag_per_master(env, "ss"):
        cmds, unordered = same_slot_seq(t)
        rp = diff(env, cmds, unordered=unordered)
        for cmd, r in zip(cmds, rp):
            assert not isinstance(r, Error), (cmd, r)


@test
def test_mk_xread_same_slot(env):
    """XREAD without BLOCK on several streams of one slot is an ordinary
    same-slot read (issue 3 lists it); only BLOCK needs a pinned
    connection."""
    t = "{%sxr}" % PFX
    cmds = [
        ("XADD", t + "s1", "1-1", "f", "v1"),
        ("XADD", t + "s1", "2-1", "f", "v2"),
        ("XADD", t + "s2", "1-5", "g", "w"),
        ("XREAD", "STREAMS", t + "s1", t + "s2", "0", "0"),
        ("XREAD", "COUNT", "1", "STREAMS", t + "s1", t + "s2", "1-1", "0"),
        ("XREAD", "STREAMS", t + "s1", t + "nos", "0", "0"),
        ("DEL", t + "s1", t + "s2"),
    ]
    rp = diff(env, cmds)
    assert rp[3] == [[(t + "s1").encode(), [[b"1-1", [b"f", b"v1"]],
                                            [b"2-1", [b"f", b"v2"]]]],
                     [(t + "s2").encode(), [[b"1-5", [b"g", b"w"]]]]], rp[3]


CROSS_CMDS = [
    # (command with two keys $A $B in different slots, key stats names)
    (("RENAME", "$A", "$B"), "rename"),
    (("RENAMENX", "$A", "$B"), "renamenx"),
    (("COPY", "$A", "$B"), "copy"),
    (("RPOPLPUSH", "$L", "$B"), "rpoplpush"),
    (("LMOVE", "$L", "$B", "LEFT", "RIGHT"), "lmove"),
    (("SMOVE", "$S", "$B", "m"), "smove"),
    (("SUNIONSTORE", "$B", "$S", "$S2"), "sunionstore"),
    (("SINTERSTORE", "$B", "$S", "$S2"), "sinterstore"),
    (("SDIFFSTORE", "$B", "$S", "$S2"), "sdiffstore"),
    (("SDIFF", "$S", "$S2"), "sdiff"),
    (("SINTER", "$S", "$S2"), "sinter"),
    (("SUNION", "$S", "$S2"), "sunion"),
    (("SINTERCARD", "2", "$S", "$S2"), "sintercard"),
    (("ZUNIONSTORE", "$B", "2", "$Z", "$Z2"), "zunionstore"),
    (("ZINTERSTORE", "$B", "2", "$Z", "$Z2"), "zinterstore"),
    (("ZINTER", "2", "$Z", "$Z2"), "zinter"),
    (("ZUNION", "2", "$Z", "$Z2"), "zunion"),
    (("ZDIFF", "2", "$Z", "$Z2"), "zdiff"),
    (("ZRANGESTORE", "$B", "$Z", "0", "-1"), "zrangestore"),
    (("ZMPOP", "2", "$Z", "$Z2", "MIN"), "zmpop"),
    (("LMPOP", "2", "$L", "$L2", "LEFT"), "lmpop"),
    (("PFMERGE", "$B", "$H", "$H2"), "pfmerge"),
    (("PFCOUNT", "$H", "$H2"), "pfcount"),
    (("BITOP", "OR", "$B", "$A", "$A2"), "bitop"),
    (("SORT", "$L", "STORE", "$B"), "sort"),
    (("LCS", "$A", "$A2"), "lcs"),
    (("MSETNX", "$B", "1", "$A", "2"), "msetnx"),
    (("XREAD", "STREAMS", "$X", "$X2", "0", "0"), "xread"),
    (("EVAL", "return redis.call('set', KEYS[2], 'x')", "2", "$A", "$B"),
     "eval"),
    (("EVAL_RO", "return 1", "2", "$A", "$A2"), "eval_ro"),
    (("GEOSEARCHSTORE", "$B", "$G", "FROMLONLAT", "13", "38", "BYRADIUS",
      "500", "km"), "geosearchstore"),
]


@test
def test_mk_cross_slot_refused(env):
    """Every multi-key command with keys in different slots is answered
    exactly -CROSSSLOT, no backend ever sees it (INFO commandstats on
    every master unchanged) and the destination does not exist."""
    names = {
        "$A": k("cx-a"), "$A2": k("cx-a2"), "$B": k("cx-b"),
        "$L": k("cx-l"), "$L2": k("cx-l2"), "$S": k("cx-s"),
        "$S2": k("cx-s2"), "$Z": k("cx-z"), "$Z2": k("cx-z2"),
        "$H": k("cx-h"), "$H2": k("cx-h2"), "$X": k("cx-x"),
        "$X2": k("cx-x2"), "$G": k("cx-g"),
    }
    slots = {v: keyslot(v) for v in names.values()}
    # Pairs in the same command must differ in slot.
    for a, b in (("$A", "$B"), ("$L", "$B"), ("$S", "$S2"), ("$Z", "$Z2"),
                 ("$L", "$L2"), ("$H", "$H2"), ("$A", "$A2"), ("$X", "$X2"),
                 ("$S", "$B"), ("$Z", "$B"), ("$H", "$B"), ("$G", "$B")):
        assert slots[names[a]] != slots[names[b]], (a, b)
    B = names["$B"]
    setup = [
        ("SET", names["$A"], "\x0f"), ("SET", names["$A2"], "\xf0"),
        ("RPUSH", names["$L"], "3", "1"), ("RPUSH", names["$L2"], "x"),
        ("SADD", names["$S"], "m", "n"), ("SADD", names["$S2"], "n"),
        ("ZADD", names["$Z"], "1", "a"), ("ZADD", names["$Z2"], "2", "a"),
        ("PFADD", names["$H"], "a"), ("PFADD", names["$H2"], "b"),
        ("XADD", names["$X"], "1-1", "f", "v"),
        ("XADD", names["$X2"], "1-1", "f", "v"),
        ("GEOADD", names["$G"], "13.36", "38.11", "P"),
    ]
    problems = []
    with env.client() as c:
        for cmd in setup:
            r = c.call(*cmd)
            assert not isinstance(r, Error), (cmd, r)
        snap = {x: c.call("DUMP", x) for x in names.values()}
        for cmd, stat in CROSS_CMDS:
            argv = [names.get(a, a) for a in cmd]
            before = cmdstat_calls(env, {stat})
            r = c.call(*argv)
            after = cmdstat_calls(env, {stat})
            if r != CROSSSLOT:
                problems.append("%s -> %r (want CROSSSLOT)" % (cmd[0], r))
            if after != before:
                problems.append("%s reached a backend (%d calls)" % (
                    cmd[0], after - before))
            if exists_anywhere(env, B):
                problems.append("%s created the destination" % cmd[0])
                c.call("DEL", B)
        # Sources untouched.
        for x, d in snap.items():
            if c.call("DUMP", x) != d:
                problems.append("source %s changed" % x)
        assert c.call("PING") == b"PONG"
        c.call("DEL", *names.values())
    assert not problems, "\n".join(problems)


# ===================================================================
# 3. Scripting and functions
# ===================================================================

SET_SCRIPT = "return redis.call('set', KEYS[1], ARGV[1])"
GET_SCRIPT = "return redis.call('get', KEYS[1])"


def sha1(script):
    import hashlib
    return hashlib.sha1(script.encode()).hexdigest()


@test
def test_mk_eval_routing(env):
    cl = env.cluster
    tags = tag_per_master(env, "ev")
    with env.client() as c:
        for t, m in zip(tags, cl.masters()):
            key = "{%s}k" % t
            r = c.call("EVAL", SET_SCRIPT, "1", key, "v-" + t)
            assert r == b"OK", (t, r)
            assert m.call("GET", key) == ("v-" + t).encode()
            assert c.call("EVAL_RO", GET_SCRIPT, "1", key) == \
                ("v-" + t).encode()
            # Two keys of one slot.
            r = c.call("EVAL", "redis.call('set', KEYS[2], ARGV[1]); "
                       "return redis.call('mget', KEYS[1], KEYS[2])",
                       "2", key, "{%s}k2" % t, "w")
            assert r == [("v-" + t).encode(), b"w"], r
            assert m.call("GET", "{%s}k2" % t) == b"w"
            # EVAL_RO refuses writes, as Redis does.
            r = c.call("EVAL_RO", SET_SCRIPT, "1", key, "x")
            assert is_err(r, "ERR Write commands are not allowed from "
                          "read-only scripts"), r
        # Keys in different slots.
        k0, k1 = "{%s}k" % tags[0], "{%s}k" % tags[1]
        before = cmdstat_calls(env, {"eval", "eval_ro"})
        assert c.call("EVAL", SET_SCRIPT, "2", k0, k1, "z") == CROSSSLOT
        assert c.call("EVAL_RO", GET_SCRIPT, "2", k0, k1) == CROSSSLOT
        assert cmdstat_calls(env, {"eval", "eval_ro"}) == before
        assert c.call("GET", k0) == ("v-" + tags[0]).encode()
        # No keys: any master answers.
        assert c.call("EVAL", "return redis.call('ping')", "0") == b"PONG"
        assert c.call("EVAL", "return {1, 'a', ARGV[1]}", "0", "b") == \
            [1, b"a", b"b"]
        assert c.call("EVAL_RO", "return 7", "0") == 7
        # Script errors come back as errors.
        r = c.call("EVAL", "return redis.call('incr', KEYS[1])", "1", k0)
        assert is_err(r, "ERR value is not an integer"), r
        # Bad numkeys: Redis's own error, from a master or the proxy.
        r = c.call("EVAL", "return 1", "5", k0)
        assert is_err(r, "ERR Number of keys can't be greater than number "
                      "of args"), r
        for t in tags:
            c.call("DEL", "{%s}k" % t, "{%s}k2" % t)


@test
def test_mk_evalsha_script_load_exists_flush(env):
    cl = env.cluster
    tags = tag_per_master(env, "sha")
    script = SET_SCRIPT + " -- %s" % PFX
    sha = sha1(script)
    only_one = "return 'only-one-%s'" % PFX
    sha_one = sha1(only_one)
    with env.client() as c:
        assert c.call("SCRIPT", "LOAD", script) == sha.encode()
        for m in cl.masters():
            assert m.call("SCRIPT", "EXISTS", sha) == [1], m
        for t, m in zip(tags, cl.masters()):
            key = "{%s}k" % t
            r = c.call("EVALSHA", sha, "1", key, "s-" + t)
            assert r == b"OK", (m, r)
            assert m.call("GET", key) == ("s-" + t).encode()
            # EVALSHA_RO of a script that writes is refused by Redis.
            r = c.call("EVALSHA_RO", sha, "1", key, "x")
            assert is_err(r, "ERR Write commands are not allowed"), r
        ro = "return redis.call('get', KEYS[1]) -- %s" % PFX
        sha_ro = c.call("SCRIPT", "LOAD", ro).decode()
        for t in tags:
            assert c.call("EVALSHA_RO", sha_ro, "1", "{%s}k" % t) == \
                ("s-" + t).encode()
        r = c.call("EVALSHA", sha, "2", "{%s}k" % tags[0],
                   "{%s}k" % tags[1], "x")
        assert r == CROSSSLOT, r
        # Loaded on one master only: not "existing" through the proxy.
        m0 = cl.masters()[0]
        assert m0.call("SCRIPT", "LOAD", only_one) == sha_one.encode()
        r = c.call("SCRIPT", "EXISTS", sha_one)
        assert r == [0], r
        r = c.call("SCRIPT", "EXISTS", sha, sha_one, sha, "0" * 40)
        assert r == [1, 0, 1, 0], r
        # SCRIPT FLUSH: gone from every master.
        assert c.call("SCRIPT", "FLUSH") == b"OK"
        for m in cl.masters():
            assert m.call("SCRIPT", "EXISTS", sha, sha_one) == [0, 0], m
        assert c.call("SCRIPT", "EXISTS", sha) == [0]
        r = c.call("EVALSHA", sha, "1", "{%s}k" % tags[0], "x")
        assert is_err(r, "NOSCRIPT"), r
        assert c.call("SCRIPT", "LOAD", script) == sha.encode()
        assert c.call("SCRIPT", "FLUSH", "ASYNC") == b"OK"
        assert c.call("SCRIPT", "EXISTS", sha) == [0]
        for t in tags:
            c.call("DEL", "{%s}k" % t)


@test
def test_mk_functions(env):
    cl = env.cluster
    tags = tag_per_master(env, "fn")
    lib = "%slib" % PFX
    code = ("#!lua name=%s\n"
            "redis.register_function('%s_set', function(keys, args) "
            "return redis.call('set', keys[1], args[1]) end)\n"
            "redis.register_function{function_name='%s_get', "
            "callback=function(keys, args) "
            "return redis.call('get', keys[1]) end, flags={'no-writes'}}\n"
            "redis.register_function('%s_ping', function(keys, args) "
            "return redis.call('ping') end)\n"
            % (lib, PFX, PFX, PFX))
    fset, fget = PFX + "_set", PFX + "_get"
    with env.client() as c:
        assert c.call("FUNCTION", "LOAD", code) == lib.encode()
        for m in cl.masters():
            libs = m.call("FUNCTION", "LIST", "LIBRARYNAME", lib)
            assert len(libs) == 1, (m, libs)
        r = c.call("FUNCTION", "LOAD", code)
        assert r == Error("ERR Library '%s' already exists" % lib), r
        assert c.call("FUNCTION", "LOAD", "REPLACE", code) == lib.encode()
        for t, m in zip(tags, cl.masters()):
            key = "{%s}k" % t
            assert c.call("FCALL", fset, "1", key, "f-" + t) == b"OK"
            assert m.call("GET", key) == ("f-" + t).encode()
            assert c.call("FCALL_RO", fget, "1", key) == ("f-" + t).encode()
            r = c.call("FCALL_RO", fset, "1", key, "x")
            assert is_err(r, "ERR Can not execute a script with write flag "
                          "using *_ro command"), r
        r = c.call("FCALL", fset, "2", "{%s}k" % tags[0], "{%s}k" % tags[1],
                   "x")
        assert r == CROSSSLOT, r
        r = c.call("FCALL_RO", fget, "2", "{%s}k" % tags[0],
                   "{%s}k" % tags[2])
        assert r == CROSSSLOT, r
        # No keys: any master.
        assert c.call("FCALL", PFX + "_ping", "0") == b"PONG"
        assert c.call("FUNCTION", "DELETE", lib) == b"OK"
        for m in cl.masters():
            assert m.call("FUNCTION", "LIST", "LIBRARYNAME", lib) == [], m
        r = c.call("FCALL", fset, "1", "{%s}k" % tags[0], "x")
        assert r == Error("ERR Function not found"), r
        r = c.call("FUNCTION", "DELETE", lib)
        assert r == Error("ERR Library not found"), r
        # DUMP from the proxy, FLUSH, RESTORE through the proxy: every
        # master has the library again.
        assert c.call("FUNCTION", "LOAD", code) == lib.encode()
        payload = c.call("FUNCTION", "DUMP")
        assert isinstance(payload, bytes), payload
        assert c.call("FUNCTION", "FLUSH", "SYNC") == b"OK"
        assert c.call("FUNCTION", "RESTORE", payload) == b"OK"
        for m in cl.masters():
            assert len(m.call("FUNCTION", "LIST", "LIBRARYNAME", lib)) == 1
        r = c.call("FUNCTION", "RESTORE", payload)
        assert is_err(r, "ERR Library %s already exists" % lib) or \
            is_err(r, "ERR Library '%s' already exists" % lib), r
        for t in tags:
            assert c.call("FCALL", fset, "1", "{%s}r" % t, "r") == b"OK"
            c.call("DEL", "{%s}r" % t)
        assert c.call("FUNCTION", "FLUSH") == b"OK"
        for m in cl.masters():
            assert m.call("FUNCTION", "LIST") == [], m
        for t in tags:
            c.call("DEL", "{%s}k" % t)


# ===================================================================
# 4. Cluster-wide commands
# ===================================================================

def write_spread(c, name, n, value="v"):
    keys = [k(name, i) for i in range(n)]
    for i in range(0, n, 1000):
        a = ["MSET"]
        for x in keys[i:i + 1000]:
            a += [x, value]
        assert c.call(*a) == b"OK"
    return keys


def settled(direct, proxied, what):
    """(direct(), proxied()) at a moment when direct() read just before
    and just after proxied() agree: keys an earlier test gave a TTL may
    expire on the shared cluster between two reads."""
    got = []

    def same():
        a = direct()
        got[:] = [a, proxied()]
        return direct() == a
    wait_until(same, 20, "%s to hold still" % what)
    return got


@test
def test_mk_dbsize_keys(env):
    cl = env.cluster
    with env.client(30) as c:
        keys = write_spread(c, "ks", 300)
        total, got = settled(
            lambda: sum(m.call("DBSIZE") for m in cl.masters()),
            lambda: c.call("DBSIZE"), "the cluster's DBSIZE")
        assert got == total, (got, total)
        pat = k("ks", "*")
        got = c.call("KEYS", pat)
        assert len(got) == len(set(got)), "KEYS has duplicates"
        assert sorted(got) == sorted(x.encode() for x in keys)
        union = []
        for m in cl.masters():
            union += m.call("KEYS", pat)
        assert sorted(got) == sorted(union)
        assert c.call("KEYS", k("ks-none", "*")) == []
        assert sorted(c.call("KEYS", k("ks", "1?"))) == sorted(
            k("ks", i).encode() for i in range(10, 20))
        assert c.call("DEL", *keys) == 300
        after, got = settled(
            lambda: sum(m.call("DBSIZE") for m in cl.masters()),
            lambda: c.call("DBSIZE"), "the cluster's DBSIZE")
        # (fewer still if some other key expired meanwhile)
        assert got == after <= total - 300, (got, after, total)


@test
def test_mk_randomkey(env):
    cl = env.cluster
    with env.client(30) as c:
        keys = write_spread(c, "rk", 300)
        seen_masters = set()
        for _ in range(60):
            r = c.call("RANDOMKEY")
            assert isinstance(r, bytes), r
            assert c.call("EXISTS", r) == 1, r
            seen_masters.add(cl.node_for_key(r).port)
        assert len(seen_masters) >= 2, \
            "RANDOMKEY only ever returned keys of %s" % seen_masters
        c.call("DEL", *keys)


@test(timeout=90)
def test_mk_scan_full(env):
    cl = env.cluster
    with env.client(30) as c:
        keys = write_spread(c, "sc", 5000)
        hkeys = [k("sch", i) for i in range(100)]
        assert c.pipeline([("HSET", x, "f", "v") for x in hkeys]) == \
            [1] * 100
        want = set(x.encode() for x in keys)
        owners = {cl.node_for_key(x).port for x in keys}
        assert len(owners) == len(cl.masters())

        def full(*opts):
            seen, cur, calls = [], b"0", 0
            while True:
                r = c.call("SCAN", cur, *opts)
                assert isinstance(r, list) and len(r) == 2, r
                cur, batch = r
                seen += batch
                calls += 1
                assert calls < 20000, "SCAN does not end"
                if cur == b"0":
                    return seen, calls
        seen, n1 = full("MATCH", k("sc", "*"), "COUNT", "500")
        assert want <= set(seen), "missing %d keys, e.g. %r" % (
            len(want - set(seen)), sorted(want - set(seen))[:3])
        assert set(seen) == want, "MATCH let through %r" % (
            sorted(set(seen) - want)[:3])
        # Default COUNT, no MATCH: every key of the cluster (direct KEYS *
        # on every master) at least once.
        seen2, _ = full()
        every = set()
        for m in cl.masters():
            every |= set(m.call("KEYS", "*"))
        assert every <= set(seen2), "SCAN 0 missed %d keys" % len(
            every - set(seen2))
        # TYPE.
        seen3, _ = full("MATCH", PFX + ":sc*", "TYPE", "hash", "COUNT", "1000")
        assert set(seen3) == set(x.encode() for x in hkeys), \
            (len(seen3), sorted(set(seen3))[:3])
        # Bad cursor / bad option errors.
        r = c.call("SCAN", "notanumber")
        assert is_err(r, "ERR invalid cursor"), r
        r = c.call("SCAN", "0", "COUNT", "0")
        assert is_err(r, "ERR"), r
        assert c.call("DEL", *keys) == 5000
        assert c.call("DEL", *hkeys) == 100


# ===================================================================
# INFO and CLUSTER
# ===================================================================

def info_headers(body):
    return [line for line in body.decode().split("\r\n")
            if line.startswith("# ")]


@test
def test_mk_info_sections(env):
    with env.client() as c:
        body = c.call("INFO")
        assert isinstance(body, bytes), body
        h = info_headers(body)
        assert "# Server" in h and "# Proxy" in h, h
        for sec, header in (("server", "# Server"), ("proxy", "# Proxy"),
                            ("SERVER", "# Server"), ("clients", "# Clients"),
                            ("stats", "# Stats")):
            b = c.call("INFO", sec)
            assert info_headers(b) == [header], (sec, info_headers(b))
        b = c.call("INFO", "server", "proxy")
        assert info_headers(b) == ["# Server", "# Proxy"], info_headers(b)
        # Plain INFO has the summed keyspace too, as Redis's default does.
        assert "# Keyspace" in h, h
        assert info_headers(c.call("INFO", "everything"))[-1] == \
            "# Keyspace"
        b = c.call("INFO", "nosuchsection")
        assert b == b"", b
        text = c.call("INFO", "proxy").decode()
        for field in ("slotproxy_version:", "workers:", "topology_epoch:",
                      "cluster_masters:3"):
            assert field in text, (field, text)
        # redis_mode is what cluster-aware clients read.
        assert "redis_mode:standalone" in c.call("INFO", "server").decode()


@test
def test_mk_info_keyspace(env):
    """INFO keyspace: '# Keyspace' with db0 keys/expires summed over the
    masters (issue 3, item 4)."""
    cl = env.cluster
    with env.client(30) as c:
        keys = write_spread(c, "ik", 50)
        for x in keys[:7]:
            c.call("EXPIRE", x, "1000")

        def direct():
            nkeys = nexp = 0
            for m in cl.masters():
                for line in m.call("INFO", "keyspace").decode().split(
                        "\r\n"):
                    if line.startswith("db0:"):
                        f = dict(kv.split("=") for kv in line[4:].split(","))
                        nkeys += int(f["keys"])
                        nexp += int(f["expires"])
            return nkeys, nexp
        (direct_keys, direct_exp), body = settled(
            direct, lambda: c.call("INFO", "keyspace"), "INFO keyspace")
        c.call("DEL", *keys)
    text = body.decode() if isinstance(body, bytes) else repr(body)
    assert info_headers(body if isinstance(body, bytes) else b"") == \
        ["# Keyspace"], "INFO keyspace -> %r" % text
    line = [x for x in text.split("\r\n") if x.startswith("db0:")]
    assert line, text
    f = dict(kv.split("=") for kv in line[0][4:].split(","))
    assert int(f["keys"]) == direct_keys, (f, direct_keys)
    assert int(f["expires"]) == direct_exp, (f, direct_exp)


@test
def test_mk_cluster_keyslot_info(env):
    m = env.cluster.masters()[0]
    with env.client() as c:
        for key in [b"", b"a", b"{user}1", b"x{}y", b"{{a}}", b"\x00\xff",
                    b"foo{bar}{baz}", PFX.encode()] + BIN_KEYS:
            want = m.call("CLUSTER", "KEYSLOT", key)
            assert c.call("CLUSTER", "KEYSLOT", key) == want == \
                keyslot(key), key
        info = c.call("CLUSTER", "INFO").decode()
        assert "cluster_state:ok\r\n" in info, info
        assert "cluster_slots_assigned:16384" in info, info


@test
def test_mk_cluster_nodes_slots_shards_as_one_node(env):
    """CLUSTER SLOTS/NODES/SHARDS present the proxy as one master owning
    0-16383 at the proxy's own address (the issue's preferred answer), so
    a cluster-aware client also works through the proxy."""
    port = env.proxy.port
    problems = []
    with env.client() as c:
        r = c.call("CLUSTER", "SLOTS")
        ok = isinstance(r, list) and len(r) == 1 and r[0][:2] == [0, 16383] \
            and r[0][2][:2] == [b"127.0.0.1", port]
        if not ok:
            problems.append("CLUSTER SLOTS -> %r" % (r,))
        r = c.call("CLUSTER", "NODES")
        ok = False
        if isinstance(r, bytes):
            lines = r.decode().strip().split("\n")
            f = lines[0].split()
            ok = len(lines) == 1 and len(f) >= 9 and \
                f[1].startswith("127.0.0.1:%d" % port) and \
                "myself" in f[2] and "master" in f[2] and \
                f[7] == "connected" and f[8] == "0-16383"
        if not ok:
            problems.append("CLUSTER NODES -> %r" % (r,))
        r = c.call("CLUSTER", "SHARDS")
        ok = False
        if isinstance(r, list) and len(r) == 1:
            sh = r[0]
            d = dict(zip(sh[::2], sh[1::2]))
            nodes = d.get(b"nodes", [])
            ok = d.get(b"slots") == [0, 16383] and len(nodes) == 1 and \
                dict(zip(nodes[0][::2], nodes[0][1::2])).get(b"port") == port
        if not ok:
            problems.append("CLUSTER SHARDS -> %r" % (r,))
        r = c.call("CLUSTER", "MYID")
        if not (isinstance(r, bytes) and len(r) == 40):
            problems.append("CLUSTER MYID -> %r" % (r,))
    assert not problems, "\n".join(problems)


# ===================================================================
# Config: disabled_commands, clients.max_fanout_reply
# ===================================================================

@test
def test_mk_disabled_commands(env):
    p = env.new_proxy(extra="disabled_commands: [KEYS, FLUSHALL]")
    try:
        with p.client() as c:
            key = k("dis")
            assert c.call("SET", key, "v") == b"OK"
            r = c.call("KEYS", "*")
            assert isinstance(r, Error) and "keys" in r.msg.lower() and \
                "disabled" in r.msg.lower(), r
            # A syntax error for Redis, so a broken filter flushes nothing.
            r = c.call("FLUSHALL", "NOPE")
            assert isinstance(r, Error) and "flushall" in r.msg.lower() and \
                "disabled" in r.msg.lower(), r
            assert c.call("GET", key) == b"v"
            assert isinstance(c.call("DBSIZE"), int)
            assert c.call("DEL", key) == 1
        with env.client() as c:
            r = c.call("KEYS", k("dis-none", "*"))
            assert r == [], r
    finally:
        p.stop()


@test
def test_mk_max_fanout_reply(env):
    p = env.new_proxy(extra="clients:\n  max_fanout_reply: 1kb")
    try:
        with p.client() as c:
            keys = write_spread(c, "fan", 100)
            r = c.call("KEYS", k("fan", "*"))
            assert isinstance(r, Error) and "max_fanout_reply" in r.msg, \
                _trunc(r)
            assert c.call("PING") == b"PONG"
            assert c.call("KEYS", k("fan", "7")) == [k("fan", 7).encode()]
            assert c.call("DEL", *keys) == 100
    finally:
        p.stop()


# ===================================================================
# Last: FLUSHALL / FLUSHDB (empties the shared cluster)
# ===================================================================

@test(last=True, timeout=90)
def test_mk_flushall_flushdb_last(env):
    cl = env.cluster
    cl.wait_ok(30)
    nmasters = len(cl.masters())

    def all_empty():
        return all(m.call("DBSIZE") == 0 for m in cl.masters())
    with env.client(30) as c:
        for variant in (("FLUSHALL",), ("FLUSHALL", "ASYNC"),
                        ("FLUSHALL", "SYNC"), ("FLUSHDB",),
                        ("FLUSHDB", "ASYNC"), ("FLUSHDB", "SYNC")):
            keys = write_spread(c, "fl", 300)
            assert c.call("DBSIZE") >= 300
            r = c.call(*variant)
            assert r == b"OK", (variant, r)
            wait_until(all_empty, 10, "every master empty after %s" %
                       " ".join(variant))
            assert c.call("DBSIZE") == 0
            assert c.call("EXISTS", *keys) == 0
        assert c.call("RANDOMKEY") is None
        assert c.call("KEYS", "*") == []
        seen, cur = [], b"0"
        while True:
            cur, batch = c.call("SCAN", cur)
            seen += batch
            if cur == b"0":
                break
        assert seen == []
        assert c.call("INFO", "keyspace") == b"# Keyspace\r\n"
        r = c.call("FLUSHALL", "BADARG")
        assert is_err(r, "ERR"), r
    # The cluster is whole afterwards and the proxy serves.
    cl.wait_ok(30)
    assert len(cl.masters()) == nmasters
    with env.client() as c:
        keys = write_spread(c, "after", 30, "z")
        assert c.call("MGET", *keys) == [b"z"] * 30
        assert c.call("DEL", *keys) == 30


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
