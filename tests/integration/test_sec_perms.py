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


def reload_with(p, text):
    """Write the proxy's config with text appended and SIGHUP it; returns
    once the main thread applied it (workers switch at their next turn:
    callers wait on the effect they expect)."""
    n = open(p.log).read().count("configuration from")
    with open(p.conf, "w") as f:
        f.write(p.base_conf + text)
    os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: open(p.log).read().count("configuration from") > n,
               20, "reload applied")


def reloadable_proxy(env, text):
    p = env.new_proxy()
    p.base_conf = open(p.conf).read()
    reload_with(p, text)
    return p


def reload_users(*users):
    return "auth:\n  users:\n" + "".join(
        "    - {name: %s, password: %s, role: %s}\n" % u for u in users)


@test(timeout=60)
def test_reload_rechecks_users(env):
    """Roles and credentials are re-checked at SIGHUP: same user and
    password take the new role; a deleted user or a changed password
    leaves the connection unauthenticated (NOAUTH on its next command);
    a connection in MULTI that lost rights is closed."""
    env.cluster
    p = reloadable_proxy(env, reload_users(
        ("keep", "kpw", "read-write"), ("dem", "dpw", "read-write"),
        ("pro", "ppw", "read-only"), ("gone", "gpw", "read-write"),
        ("chg", "old", "read-write"), ("tx", "tpw", "read-write")))
    cs = {}
    for name, pw in (("keep", "kpw"), ("dem", "dpw"), ("pro", "ppw"),
                     ("gone", "gpw"), ("chg", "old"), ("tx", "tpw")):
        cs[name] = p.client()
        assert cs[name].call("AUTH", name, pw) == b"OK"
    try:
        assert is_noperm(cs["pro"].call("SET", "rl:p", "1"), "set")
        assert cs["tx"].call("MULTI") == b"OK"
        assert cs["tx"].call("SET", "{rl}t", "1") == b"QUEUED"
        reload_with(p, reload_users(
            ("keep", "kpw", "read-write"), ("dem", "dpw", "read-only"),
            ("pro", "ppw", "admin"), ("chg", "new", "read-write"),
            ("tx", "tpw", "read-only")))
        wait_until(lambda: is_noperm(cs["dem"].call("SET", "rl:d", "1"),
                                     "set"), 20, "demoted to read-only")
        assert not isinstance(cs["dem"].call("GET", "rl:d"), Error)
        assert cs["keep"].call("SET", "rl:k", "1") == b"OK"
        # The others may be on another worker (SP_WORKERS), which takes
        # the new config at its own next turn.
        wait_until(lambda: cs["pro"].call("SET", "rl:p", "1") == b"OK", 20,
                   "promoted to admin")
        assert isinstance(cs["pro"].call("SLOWLOG", "LEN"), int)
        wait_until(lambda: cs["gone"].call("GET", "rl:k") == NOAUTH, 20,
                   "removed user logged out")
        wait_until(lambda: cs["chg"].call("GET", "rl:k") == NOAUTH, 20,
                   "user with a new password logged out")
        # The new password works; the old one no longer does.
        assert cs["chg"].call("AUTH", "chg", "old") == WRONGPASS
        assert cs["chg"].call("AUTH", "chg", "new") == b"OK"
        assert cs["gone"].call("AUTH", "gone", "gpw") == WRONGPASS
        # Demoted inside MULTI: the queued write must not run.
        assert cs["tx"].is_closed(), "demoted client in MULTI kept"
        with p.client() as c:
            assert c.call("AUTH", "keep", "kpw") == b"OK"
            assert c.call("EXISTS", "{rl}t") == 0
            assert c.call("DEL", "rl:k", "rl:p", "rl:d") >= 2
    finally:
        for c in cs.values():
            c.close()


@test(timeout=60)
def test_reload_turns_auth_on_and_off(env):
    """Auth turned on by reload: every open connection must authenticate
    (a subscribed one, which would go on reading, is closed). Turned off:
    every connection is served, as admin."""
    env.cluster
    p = reloadable_proxy(env, "")
    with p.client() as a, p.client() as sub, p.client() as b:
        assert a.call("SET", "rl:on", "1") == b"OK"
        assert sub.call("SUBSCRIBE", "rl:ch") == [b"subscribe", b"rl:ch", 1]
        reload_with(p, "auth:\n  password: onpw\n")
        wait_until(lambda: a.call("GET", "rl:on") == NOAUTH, 20,
                   "open connection no longer authenticated")
        assert a.call("SET", "rl:on", "2") == NOAUTH
        assert sub.is_closed(), "subscribed client kept after auth went on"
        wait_until(lambda: b.call("GET", "rl:on") == NOAUTH, 20,
                   "the other open connection no longer authenticated")
        assert a.call("AUTH", "onpw") == b"OK"
        assert a.call("GET", "rl:on") == b"1"
        reload_with(p, "")
        wait_until(lambda: b.call("GET", "rl:on") == b"1", 20,
                   "auth off: served again")
        assert b.call("SLOWLOG", "LEN") is not None
        assert b.call("DEL", "rl:on") == 1


@test(timeout=60)
def test_wrong_auth_throttled(env):
    """Wrong AUTHs on one connection: the first few are answered at once,
    later ones wait, and at auth.max_failures the connection closes. The
    log has one line per connection, not one per attempt. The right
    password still works on a fresh connection; failures are counted."""
    env.cluster
    p = env.new_proxy(extra="auth:\n  password: right\n"
                            "  max_failures: 6\n")
    with p.client() as c:
        t = time.time()
        got = c.pipeline([("AUTH", "guess%d" % i) for i in range(6)])
        took = time.time() - t
        assert got == [WRONGPASS] * 6, got
        # Failures 4 and 5 were held back 500 ms each (the 6th closes).
        assert took >= 0.9, took
        assert c.is_closed(), "connection kept after max_failures"
    with p.client() as c:
        # HELLO AUTH counts as well; a right AUTH does not reset the
        # throttle's count, but works.
        for i in range(3):
            assert c.call("HELLO", "2", "AUTH", "default", "x") == WRONGPASS
        t = time.time()
        assert c.call("AUTH", "nope") == WRONGPASS
        assert time.time() - t >= 0.4
        assert c.call("AUTH", "right") == b"OK"
        assert c.call("PING") == b"PONG"
        info = c.call("INFO", "proxy").decode()
        fails = int(info.split("auth_failures:")[1].split()[0])
        assert fails >= 4, info
    # Closing while a wrong AUTH's answer is held back.
    c = p.client()
    c.send(*[("AUTH", "guess%d" % i) for i in range(5)] + [("GET", "x")])
    # The first three are answered at once: the fourth's is held back.
    assert [c.read() for _ in range(3)] == [WRONGPASS] * 3
    c.close()
    with p.client() as c:
        assert c.call("AUTH", "right") == b"OK"
        assert c.call("PING") == b"PONG"
    # One line per connection (3 of them here), not one per attempt.
    wait_until(lambda: open(p.log).read().count("wrong AUTH (") >= 3, 20,
               "the third connection's line")
    text = open(p.log).read()
    assert text.count("wrong AUTH (") == 3, text
    assert "closing after 6 wrong AUTHs" in text
    assert "guess" not in text, "a password reached the log"


def acl_on_all(cl, *args):
    for n in cl.nodes:
        assert n.call("ACL", *args) in (b"OK", 1, 0), args


def backend_users(cl):
    """Proxy users on a real ACL user of every node: 'scripter' may run
    anything through the proxy (read-write role) but its requests travel
    as the server user sp_ro, which the server lets read only."""
    acl_on_all(cl, "SETUSER", "sp_ro", "on", ">sp-ro-pw", "~*", "&*",
               "+@all", "-@write")
    return ("auth:\n  users:\n"
            "    - {name: scripter, password: spw, role: read-write, "
            "backend_user: sp_ro, backend_password: sp-ro-pw}\n"
            "    - {name: app, password: apw, role: read-write}\n")


def server_refused(r):
    return isinstance(r, Error) and "NOPERM" in r.msg


@test(timeout=60)
def test_backend_user_enforces_acl_in_scripts(env):
    """Row 3 / scripts: the proxy cannot see inside EVAL, the server can.
    A user with backend_user runs on connections authenticated as that
    ACL user (shared, fan-out, pinned, transactions), so the server
    refuses a write inside a script; another proxy user on the default
    pool writes. disabled_commands warns that scripts bypass it."""
    cl = env.cluster
    try:
        p = env.new_proxy(extra=backend_users(cl) +
                          "disabled_commands: [FLUSHALL]\n")
        with p.client() as app, p.client() as sc:
            assert app.call("AUTH", "app", "apw") == b"OK"
            assert sc.call("AUTH", "scripter", "spw") == b"OK"
            assert app.call("SET", "bu:k", "orig") == b"OK"
            # Reads pass; writes, plain or in a script, the server refuses.
            assert sc.call("GET", "bu:k") == b"orig"
            r = sc.call("EVAL", "return redis.call('set',KEYS[1],'x')", "1",
                        "bu:k")
            assert isinstance(r, Error), r
            log("    script write as sp_ro: %r" % r.msg)
            assert server_refused(sc.call("SET", "bu:k", "x"))
            r = sc.call("EVAL", "return redis.call('flushall')", "0")
            assert isinstance(r, Error), r
            keys = ["bu:%d" % i for i in range(20)]
            assert app.call("MSET", *[x for k in keys for x in (k, k)]) == \
                b"OK"
            # Fan-out: split reads pass, split writes are refused.
            assert sc.call("MGET", *keys) == [k.encode() for k in keys]
            assert isinstance(sc.call("DEL", *keys), Error)
            # Pinned: a blocking pop is a write.
            assert server_refused(sc.call("BLPOP", "bu:q", "0.1"))
            # A transaction runs as sp_ro too.
            got = sc.pipeline([("MULTI",), ("SET", "{bu}t", "1"), ("EXEC",)])
            assert got[:2] == [b"OK", b"QUEUED"], got
            assert isinstance(got[2], Error) or server_refused(got[2][0]), got
            assert app.call("EXISTS", "{bu}t") == 0
            assert app.call("GET", "bu:k") == b"orig"
            # The default pool still writes, scripts included.
            assert app.call("EVAL", "return redis.call('set',KEYS[1],'y')",
                            "1", "bu:k") == b"OK"
            assert sc.call("GET", "bu:k") == b"y"
            assert app.call("DEL", "bu:k", *keys) == 21
        users = [line for n in cl.masters() for line in
                 n.call("CLIENT", "LIST").decode().splitlines()
                 if "user=sp_ro" in line]
        assert users, "no backend connection authenticated as sp_ro"
        text = open(p.log).read()
        assert "disabled_commands does not apply inside scripts" in text
        assert "sp-ro-pw" not in text and "spw" not in text
    finally:
        acl_on_all(cl, "DELUSER", "sp_ro")


@test(timeout=60)
def test_backend_user_reload(env):
    """A reload that changes a user's backend_password: its connection
    keeps its login (same proxy password) and its requests move to a pool
    with the new credential; a wrong one fails with the server's reason."""
    cl = env.cluster
    try:
        users = backend_users(cl)
        p = reloadable_proxy(env, users)
        with p.client() as sc:
            assert sc.call("AUTH", "scripter", "spw") == b"OK"
            assert sc.call("GET", "bur:k") is None
            reload_with(p, users.replace("sp-ro-pw", "wrong-pw"))

            def refused():
                r = sc.call("GET", "bur:k")
                return isinstance(r, Error) and "auth" in r.msg.lower()
            wait_until(refused, 20, "requests to use the new credential")
            reload_with(p, users)
            wait_until(lambda: sc.call("GET", "bur:k") is None, 20,
                       "requests back on the right credential")
    finally:
        acl_on_all(cl, "DELUSER", "sp_ro")


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
