#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Idle memory, round two (issue 14): a worker's clients share its request
# parser while their requests parse within one read, and a client keeps
# its names, AUTH throttle and pins in state allocated on first use. These
# tests interleave clients whose requests span reads or wait (held), so
# that a parser lent to one client and taken over by another shows up as
# a wrong answer.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import test  # noqa: E402


def pieces(frame, n):
    """frame cut into n pieces of about the same size."""
    step = max(1, len(frame) // n)
    return [frame[i:i + step] for i in range(0, len(frame), step)]


@test(timeout=60)
def test_parser_partials_interleaved(env):
    env.cluster
    p = env.proxy
    cs = [p.client(5) for _ in range(4)]
    try:
        frames = [
            harness.encode(["SET", "ps:a", "x" * 300]),
            b"SET ps:b inline-value\r\n",
            harness.encode(["MSET", "ps:{c}1", "1", "ps:{c}2", "2"]),
            harness.encode(["GET", "ps:a"]) + harness.encode(["PING"]),
        ]
        # Byte-sized pieces first, then larger ones: each client's next
        # piece goes out after every other client's, and a full request
        # from another client parses between two pieces of one.
        for n in (len(frames[0]), 7, 3):
            cuts = [pieces(f, n) for f in frames]
            for i in range(max(len(c) for c in cuts)):
                for c, cut in zip(cs, cuts):
                    if i < len(cut):
                        c.send_raw(cut[i])
                with p.client(5) as other:
                    assert other.call("PING") == b"PONG"
            assert cs[0].read() == b"OK"
            assert cs[1].read() == b"OK"
            assert cs[2].read() == b"OK"
            got = cs[3].read()
            assert got in (None, b"x" * 300), got
            assert cs[3].read() == b"PONG"
        assert cs[0].call("GET", "ps:b") == b"inline-value"
        assert cs[0].call("MGET", "ps:{c}1", "ps:{c}2") == [b"1", b"2"]
    finally:
        for c in cs:
            c.close()


@test(timeout=60)
def test_parser_held_while_others_parse(env):
    env.cluster
    p = env.proxy
    a, b, c = p.client(10), p.client(10), p.client(10)
    try:
        a.call("DEL", "ps:list")
        # BLPOP runs alone: the GET and PING behind it, in the same read,
        # wait parsed (held) until it is answered.
        a.send_raw(harness.encode(["BLPOP", "ps:list", "5"]) +
                   harness.encode(["GET", "ps:held"]) +
                   harness.encode(["PING"]))
        frame = harness.encode(["SET", "ps:held", "v" * 100])
        for cut in pieces(frame, 9):
            b.send_raw(cut)
            assert c.call("PING") == b"PONG"
        assert b.read() == b"OK"
        assert c.call("RPUSH", "ps:list", "item") == 1
        assert a.read() == [b"ps:list", b"item"]
        assert a.read() == b"v" * 100
        assert a.read() == b"PONG"
        assert b.call("GET", "ps:held") == b"v" * 100
    finally:
        for x in (a, b, c):
            x.close()


@test(timeout=60)
def test_client_ext_state(env):
    env.cluster
    # A proxy of its own: the shared one may still list a connection an
    # earlier test closed, with a name or a library of its own.
    p = env.new_proxy()
    with p.client(5) as a, p.client(5) as b:
        assert a.call("CLIENT", "SETNAME", "ext-a") == b"OK"
        assert a.call("CLIENT", "SETINFO", "LIB-NAME", "libx") == b"OK"
        assert a.call("CLIENT", "SETINFO", "LIB-VER", "1.2") == b"OK"
        assert a.call("CLIENT", "GETNAME") == b"ext-a"
        assert b.call("CLIENT", "GETNAME") is None
        lines = b.call("CLIENT", "LIST").decode().splitlines()
        mine = [x for x in lines if " name=ext-a " in x]
        assert len(mine) == 1, lines
        assert "lib-name=libx lib-ver=1.2" in mine[0], mine[0]
        others = [x for x in lines if " name=ext-a " not in x]
        assert all(" name= " in x and "lib-name= " in x for x in others)
        # RESET clears the name, keeps the library's, as Redis does.
        assert a.call("RESET") == b"RESET"
        assert a.call("CLIENT", "GETNAME") is None
        line = [x for x in a.call("CLIENT", "LIST").decode().splitlines()
                if "lib-name=libx" in x]
        assert len(line) == 1 and " name= " in line[0], line
        # Pinned state after the client's first name: a transaction, then
        # a blocking command that times out, then plain requests.
        assert a.call("MULTI") == b"OK"
        assert a.call("SET", "ps:tx", "1") == b"QUEUED"
        assert a.call("EXEC") == [b"OK"]
        t0 = time.time()
        assert a.call("BLPOP", "ps:none", "0.2") is None
        assert time.time() - t0 < 5
        assert a.call("GET", "ps:tx") == b"1"


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
