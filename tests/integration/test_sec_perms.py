#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Issue 10, permissions and authentication: what each role may run (an
# allow list for read-only, scripts included), admin-only introspection
# (SLOWLOG, CLIENT LIST), backend ACL users per proxy user, re-checking
# authenticated clients at reload, and throttling wrong AUTH attempts.

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, test, wait_until, log  # noqa: E402

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."

USERS = ("auth:\n  users:\n"
         "    - {name: ro, password: ropw, role: read-only}\n"
         "    - {name: rw, password: rwpw, role: read-write}\n"
         "    - {name: adm, password: admpw, role: admin}\n")


def noperm(name):
    return "NOPERM this user has no permissions to run the '%s' command" % name


def is_noperm(r, name):
    return r == noperm(name)


@test(timeout=60)
def test_read_only_role_allow_list(env):
    """Row 3: a read-only user runs only what Redis flags readonly, the
    *_RO script variants and a short list of harmless commands; scripts,
    script/function management and publishing are refused with Redis's
    NOPERM text."""
    env.cluster
    p = env.new_proxy(extra=USERS)
    with p.client() as rw:
        assert rw.call("AUTH", "rw", "rwpw") == b"OK"
        assert rw.call("SET", "perm:k", "orig") == b"OK"
    with p.client() as c:
        assert c.call("AUTH", "ro", "ropw") == b"OK"
        refused = [
            (("EVAL", "return redis.call('set',KEYS[1],'x')", "1", "perm:k"),
             "eval"),
            (("EVAL", "return redis.call('flushall')", "0"), "eval"),
            (("EVALSHA", "0" * 40, "1", "perm:k"), "evalsha"),
            (("FCALL", "f", "1", "perm:k"), "fcall"),
            (("SCRIPT", "FLUSH"), "script|flush"),
            (("SCRIPT", "KILL"), "script|kill"),
            (("SCRIPT", "LOAD", "return 1"), "script|load"),
            (("FUNCTION", "KILL"), "function|kill"),
            (("FUNCTION", "FLUSH"), "function|flush"),
            (("FUNCTION", "DELETE", "lib"), "function|delete"),
            (("FUNCTION", "LOAD", "#!lua name=x\n"), "function|load"),
            (("PUBLISH", "perm:ch", "m"), "publish"),
            (("SPUBLISH", "perm:ch", "m"), "spublish"),
            (("SET", "perm:k", "x"), "set"),
            (("DEL", "perm:k"), "del"),
            (("FLUSHALL",), "flushall"),
            (("SLOWLOG", "GET"), "slowlog|get"),
            (("CLIENT", "LIST"), "client|list"),
            (("CLIENT", "KILL", "ID", "1"), "client|kill"),
        ]
        for args, name in refused:
            r = c.call(*args)
            assert is_noperm(r, name), (args, r)
        # Pipelined, the same answers, in order.
        got = c.pipeline([a for a, _ in refused])
        assert got == [noperm(n) for _, n in refused], got
        # The write never ran.
        assert c.call("GET", "perm:k") == b"orig"
        allowed = [
            ("GET", "perm:k"), ("EXISTS", "perm:k"), ("PING",),
            ("ECHO", "x"), ("SELECT", "0"), ("CLIENT", "ID"),
            ("CLIENT", "SETNAME", "ro-conn"), ("CLIENT", "GETNAME"),
            ("CLIENT", "INFO"), ("INFO", "server"), ("COMMAND", "COUNT"),
            ("CLUSTER", "KEYSLOT", "x"), ("CLUSTER", "INFO"),
            ("CLUSTER", "MYID"), ("ROLE",), ("READONLY",), ("READWRITE",),
            ("ASKING",), ("TIME",), ("SCRIPT", "EXISTS", "0" * 40),
            ("FUNCTION", "LIST"), ("FUNCTION", "STATS"),
            ("PUBSUB", "CHANNELS"), ("PUBSUB", "NUMSUB", "x"),
            ("EVAL_RO", "return redis.call('get',KEYS[1])", "1", "perm:k"),
        ]
        for args in allowed:
            r = c.call(*args)
            assert not (isinstance(r, Error) and r.startswith("NOPERM")), \
                (args, r)
        # EVAL_RO runs, and the server refuses a write inside it.
        assert c.call("EVAL_RO", "return redis.call('get',KEYS[1])", "1",
                      "perm:k") == b"orig"
        r = c.call("EVAL_RO", "return redis.call('set',KEYS[1],'y')", "1",
                   "perm:k")
        assert isinstance(r, Error) and "Write commands are not allowed" in \
            r.msg, r
        assert c.call("GET", "perm:k") == b"orig"
        # Subscribing is reading.
        assert c.call("SUBSCRIBE", "perm:ch") == \
            [b"subscribe", b"perm:ch", 1]
        assert c.call("UNSUBSCRIBE", "perm:ch") == \
            [b"unsubscribe", b"perm:ch", 0]
    with p.client() as rw:
        assert rw.call("AUTH", "rw", "rwpw") == b"OK"
        assert rw.call("DEL", "perm:k") == 1


@test(timeout=60)
def test_read_only_refused_inside_multi(env):
    """A command refused to the role while queued aborts the transaction
    (EXECABORT), as Redis does; nothing in it runs."""
    env.cluster
    p = env.new_proxy(extra=USERS)
    with p.client() as c:
        assert c.call("AUTH", "ro", "ropw") == b"OK"
        assert c.call("MULTI") == b"OK"
        assert c.call("GET", "{perm}a") == b"QUEUED"
        assert is_noperm(c.call("EVAL", "return redis.call('set','{perm}a',"
                                "'1')", "0"), "eval")
        r = c.call("EXEC")
        assert isinstance(r, Error) and r.startswith("EXECABORT"), r
        # Pipelined: MULTI, a write, EXEC.
        got = c.pipeline([("MULTI",), ("SET", "{perm}a", "1"), ("EXEC",)])
        assert got[0] == b"OK" and is_noperm(got[1], "set"), got
        assert isinstance(got[2], Error) and got[2].startswith("EXECABORT")
        assert c.call("EXISTS", "{perm}a") == 0
        # WATCH and a read-only transaction are fine.
        assert c.call("WATCH", "{perm}a") == b"OK"
        assert c.call("MULTI") == b"OK"
        assert c.call("GET", "{perm}a") == b"QUEUED"
        assert c.call("EXEC") == [None]


@test(timeout=60)
def test_admin_only_introspection(env):
    """SLOWLOG and CLIENT LIST/KILL show or touch other users'
    connections and arguments: admin role only (Redis's ACL puts them in
    @admin). A read-write user gets NOPERM; an admin sees everything."""
    env.cluster
    p = env.new_proxy(extra=USERS + "slowlog:\n  threshold: 0\n")
    with p.client() as adm, p.client() as rw, p.client() as ro:
        assert adm.call("AUTH", "adm", "admpw") == b"OK"
        assert rw.call("AUTH", "rw", "rwpw") == b"OK"
        assert ro.call("AUTH", "ro", "ropw") == b"OK"
        assert adm.call("SET", "perm:secret", "hunter2") == b"OK"
        for c in (rw, ro):
            for args, name in ((("SLOWLOG", "GET"), "slowlog|get"),
                               (("SLOWLOG", "LEN"), "slowlog|len"),
                               (("SLOWLOG", "RESET"), "slowlog|reset"),
                               (("CLIENT", "LIST"), "client|list"),
                               (("CLIENT", "KILL", "ID", "1"), "client|kill"),
                               (("CLIENT", "PAUSE", "10"), "client|pause")):
                assert is_noperm(c.call(*args), name), (args, c)
            r = c.call("PROXY", "INFO")
            assert is_noperm(r, "proxy"), r
            # Their own connection is theirs to see.
            assert isinstance(c.call("CLIENT", "INFO"), bytes)
        entries = adm.call("SLOWLOG", "GET", "100")
        assert any(b"hunter2" in e[3] for e in entries), entries
        assert b"id=" in adm.call("CLIENT", "LIST")
        assert adm.call("SLOWLOG", "RESET") == b"OK"
        assert rw.call("DEL", "perm:secret") == 1


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
