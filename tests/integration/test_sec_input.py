#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Hostile input (issue 10): requests whose arguments are shaped to fool the
# proxy's parsing (a group named "streams" that hid XREADGROUP's BLOCK,
# timeouts whose conversion was undefined behaviour), unauthenticated
# clients sending huge requests, reply injection through echoed argument
# bytes, TLS clients that stall a worker, and the metrics endpoint under
# slow, idle and numerous connections.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Error, ConnectionClosed, HOST, log, test,  # noqa: E402
                     keyslot, wait_until)


def answers_quickly(c, limit, *args):
    """Calls args on c; asserts the reply came within limit seconds."""
    t = time.time()
    r = c.call(*args)
    took = time.time() - t
    assert took < limit, (args, r, "%.2fs" % took)
    return r


# ---------------------------------------------------------------- row 5

# XREAD/XREADGROUP requests that block, with groups, consumers and keys
# named like the grammar's keywords. {t} keeps every key of a case in one
# slot, beside the probe key.
BLOCKING_XREADS = [
    ("XREADGROUP", "GROUP", "streams", "c", "BLOCK", "0", "STREAMS",
     "sx:a{t1}", ">"),
    ("XREADGROUP", "GROUP", "g", "streams", "BLOCK", "0", "STREAMS",
     "sx:b{t2}", ">"),
    ("XREADGROUP", "GROUP", "g", "block", "BLOCK", "0", "STREAMS",
     "sx:c{t3}", ">"),
    ("XREADGROUP", "GROUP", "streams", "streams", "COUNT", "1", "NOACK",
     "BLOCK", "0", "STREAMS", "streams{t4}", ">"),
    ("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "block{t5}",
     "streams{t5}", "$", "$"),
]


@test(timeout=90)
def test_xread_keyword_named_args_block_pinned(env):
    """Row 5: a group (or consumer, or key) named like a keyword must not
    hide BLOCK. The request blocks on a pinned connection; a second client
    of the same master is answered at once; the block ends on XADD."""
    env.cluster
    p = env.new_proxy()
    with p.client() as c, p.client() as other:
        for req in BLOCKING_XREADS:
            streams = list(req).index("STREAMS")
            nkeys = (len(req) - streams - 1) // 2
            keys = req[streams + 1:streams + 1 + nkeys]
            tag = keys[0][keys[0].index("{"):]
            if req[0] == "XREADGROUP":
                assert c.call("XGROUP", "CREATE", keys[0], req[2], "$",
                              "MKSTREAM") == b"OK", req
            c.send(req)
            # The XREAD reaches the server first; then the probe must not
            # queue behind it on the shared connection.
            time.sleep(0.2)
            assert answers_quickly(other, 2.0, "SET", "probe" + tag,
                                   "1") == b"OK", req
            assert isinstance(other.call("XADD", keys[-1], "*", "f", "v"),
                              bytes)
            r = c.read()
            assert isinstance(r, list) and r[0][0] == keys[-1].encode(), \
                (req, r)
            assert answers_quickly(c, 2.0, "PING") == b"PONG"
            c.call("DEL", *keys)
            c.call("DEL", "probe" + tag)
        # A short BLOCK with a keyword-named group times out by itself.
        assert c.call("XGROUP", "CREATE", "sx:t{t6}", "streams", "$",
                      "MKSTREAM") == b"OK"
        t = time.time()
        assert c.call("XREADGROUP", "GROUP", "streams", "c", "BLOCK", "200",
                      "STREAMS", "sx:t{t6}", ">") is None
        assert 0.15 < time.time() - t < 3
        c.call("DEL", "sx:t{t6}")
    assert "marked down" not in open(p.log, errors="replace").read()


@test
def test_xread_nonblocking_forms_shared(env):
    """The same names without BLOCK: an ordinary read, answered at once,
    pipelined with other requests in order."""
    env.cluster
    with env.client() as c:
        c.call("DEL", "streams{x}", "block{x}")
        assert isinstance(c.call("XADD", "streams{x}", "*", "a", "1"), bytes)
        assert c.call("XGROUP", "CREATE", "streams{x}", "block", "0") == b"OK"
        replies = c.pipeline([
            ("XREADGROUP", "GROUP", "block", "streams", "STREAMS",
             "streams{x}", ">"),
            ("XREAD", "STREAMS", "streams{x}", "block{x}", "0", "0"),
            ("XREAD", "COUNT", "1", "STREAMS", "block{x}", "0"),
            ("XREAD", "BLOCK", "0", "STREAMS", "s"),
            ("PING",),
        ])
        assert replies[0][0][0] == b"streams{x}", replies
        assert replies[1][0][0] == b"streams{x}", replies
        assert replies[2] is None, replies
        assert isinstance(replies[3], Error), replies
        assert replies[4] == b"PONG", replies
        c.call("DEL", "streams{x}", "block{x}")


# ---------------------------------------------------------------- timeouts

BAD_TIMEOUTS = [
    (("BLPOP", "bt:k", "inf"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "+inf"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "-inf"), "ERR timeout is negative"),
    (("BLPOP", "bt:k", "1e400"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "1e300"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "nan"), "ERR timeout is not a float or out of range"),
    (("BLPOP", "bt:k", ""), "ERR timeout is not a float or out of range"),
    (("BLPOP", "bt:k", "-1"), "ERR timeout is negative"),
    (("BRPOP", "bt:k", "-0.5"), "ERR timeout is negative"),
    (("BZPOPMIN", "bt:k", "infinity"), "ERR timeout is out of range"),
    (("BLMOVE", "bt:{a}", "bt:{a}2", "LEFT", "LEFT", "nan"),
     "ERR timeout is not a float or out of range"),
    (("BLMPOP", "inf", "1", "bt:k", "LEFT"), "ERR timeout is out of range"),
    (("BZMPOP", "-inf", "1", "bt:k", "MIN"), "ERR timeout is negative"),
    (("XREAD", "BLOCK", "1.5", "STREAMS", "bt:s", "0"),
     "ERR timeout is not an integer or out of range"),
    (("XREAD", "BLOCK", "inf", "STREAMS", "bt:s", "0"),
     "ERR timeout is not an integer or out of range"),
    (("XREAD", "BLOCK", "-1", "STREAMS", "bt:s", "0"),
     "ERR timeout is negative"),
    (("XREADGROUP", "GROUP", "g", "c", "BLOCK", "99999999999999999999",
      "STREAMS", "bt:s", ">"), "ERR timeout is not an integer or out of range"),
]


@test
def test_blocking_timeouts_hostile(env):
    """BLPOP k inf / 1e400 / nan ...: Redis's errors from the proxy (no
    undefined float-to-integer conversion: UBSan aborts on it), alone and
    pipelined; valid odd forms (-0, 0x10, 1e-400) still block."""
    env.cluster
    with env.client() as c:
        for req, want in BAD_TIMEOUTS:
            assert c.call(*req) == want, req
        replies = c.pipeline([req for req, _ in BAD_TIMEOUTS] + [("PING",)])
        assert replies == [want for _, want in BAD_TIMEOUTS] + [b"PONG"]
        # Inside MULTI, Redis queues and answers them at EXEC.
        assert c.call("MULTI") == b"OK"
        assert c.call("BLPOP", "bt:k", "inf") == b"QUEUED"
        r = c.call("EXEC")
        assert isinstance(r, list) and len(r) == 1, r
        c.call("DEL", "bt:k")
    # Timeouts that do block, ended by a push from another client.
    with env.client() as c:
        for tmo in ("1e-400", "0.0001"):    # 1 ms, rounded up
            assert c.call("BLPOP", "bt:b", tmo) is None, tmo
    for tmo in ("-0", "-0.0001", "0x10", "9223372036854"):
        with env.client() as c, env.client() as other:
            c.send(("BLPOP", "bt:b", tmo))
            time.sleep(0.1)
            other.call("RPUSH", "bt:b", "x")
            r = c.read()
            assert r == [b"bt:b", b"x"], (tmo, r)
    with env.client() as c:
        assert c.call("PING") == b"PONG"


# ------------------------------------------------------- before AUTH

E_UMBULK = "ERR Protocol error: unauthenticated multibulk length"
E_UBULK = "ERR Protocol error: unauthenticated bulk length"


@test
def test_unauthenticated_size_caps(env):
    """Before AUTH (auth configured), Redis's caps: more than 10 arguments
    or a bulk over 16384 bytes is a protocol error and the connection
    closes, as soon as the length is read. After AUTH, and on a proxy
    without auth, the ordinary limits apply."""
    env.cluster
    p = env.new_proxy(extra="auth:\n  password: capspw")
    refused = [
        (b"*11\r\n", E_UMBULK),
        # 1M arguments announced: refused before any is sent.
        (b"*1048576\r\n$3\r\nGET\r\n", E_UMBULK),
        (b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", E_UBULK),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870000\r\n", E_UBULK),
    ]
    for raw, want in refused:
        with p.client() as c:
            c.send_raw(raw)
            assert c.read() == want, raw
            assert c.is_closed(), raw
    with p.client() as c:
        # At the limits: answered normally (NOAUTH), connection kept.
        assert c.call(*(["MGET"] + ["k"] * 9)) == \
            "NOAUTH Authentication required."
        assert c.call("ECHO", "x" * 16384) == \
            "NOAUTH Authentication required."
        assert c.call("AUTH", "x" * 16384) == \
            "WRONGPASS invalid username-password pair or user is disabled."
        # AUTH pipelined with a big request: the cap is lifted for it.
        c.send(("AUTH", "capspw"), ["MSET"] + ["cap:{a}%d" % (i // 2)
                                              for i in range(40)],
               ("SET", "cap:{a}big", "v" * 100000), ("PING",))
        assert c.read() == b"OK"
        assert c.read() == b"OK"
        assert c.read() == b"OK"
        assert c.read() == b"PONG"
        assert c.call("STRLEN", "cap:{a}big") == 100000
        c.call("DEL", "cap:{a}big", *["cap:{a}%d" % i for i in range(20)])
    # No auth configured: no caps.
    with env.client() as c:
        assert c.call("ECHO", "y" * 20000) == b"y" * 20000
        assert c.call(*(["EXISTS"] + ["cap:n%d" % i for i in range(30)])) == 0
    assert p.alive()
