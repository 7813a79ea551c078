#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Issue 12, "Command table learned from the cluster" and "Real servers in
# the tests": small clusters of Redis 7.4.1, Valkey 8.0.1 and Debian's
# 7.0.15 (each test starts its own, 3 masters and no replica, and stops it
# at the end), a proxy in front, and what the proxy learned from their
# COMMAND replies: commands and arities the built-in 7.0 table lacks
# (ZRANK WITHSCORE, HEXPIRE/HTTL/HPERSIST), CLUSTER SLOT-STATS merged over
# the masters, module commands routed by their key specs (Redis's own
# keyspecs test module), the COMMAND family answered from the table in
# force, the intersection of a cluster whose masters run different
# versions, and the built-in behaviour kept in front of 7.0.15.
#
# The newer servers are built from the shared folder on first use (see
# harness.server_bins); a failed build is a failure, never a skip (no
# sources beside the checkout to build from: a skip).

import os
import random
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, HOST, test, keyslot, wait_until  # noqa: E402

PFX = "sv%04x" % random.randrange(1 << 16)
CROSSSLOT = Error("CROSSSLOT Keys in request don't hash to the same slot")
LEARNED = "commands: learned"


def k(*parts):
    return ":".join([PFX] + [str(p) for p in parts])


def log_text(proxy):
    with open(proxy.log, "rb") as f:
        return f.read().decode("utf-8", "replace")


class Setup:
    """A cluster of `server` (3 masters, no replica) and a proxy in front,
    started on enter and stopped on exit. servers: one server name per
    node instead (a mixed cluster); module: a .so every node loads.
    Waits until the proxy logged the command table it learned."""

    count = 0

    def __init__(self, server, servers=None, module=None, extra=None,
                 learned=True):
        Setup.count += 1
        self.cluster = harness.Cluster(3, 0, name="servers%d" % Setup.count,
                                       server=server)
        for i, n in enumerate(self.cluster.nodes):
            if servers is not None:
                n.server_bin = harness.server_bins(servers[i])[0]
            if module is not None:
                n.extra_args = ["--loadmodule", module]
        self.extra = extra
        self.servers = servers
        self.learned = learned
        self.proxy = None

    def __enter__(self):
        self.cluster.start()
        self.proxy = harness.Proxy([m.port for m in self.cluster.masters()],
                                   extra=self.extra).start()
        if self.learned:
            wait_until(lambda: LEARNED in log_text(self.proxy), 15,
                       "the proxy to learn the command table; log:\n%s" %
                       self.proxy.log)
            if self.servers is None:
                # Worker 0 learns; the others adopt the table at their
                # next tick: wait until fresh connections (spread over
                # the workers) all answer from it (the server's bytes).
                want = self.master().call("COMMAND", "INFO", "client|list")

                def adopted():
                    for _ in range(8):
                        with self.client() as c:
                            if c.call("COMMAND", "INFO",
                                      "client|list") != want:
                                return False
                    return True
                wait_until(adopted, 10, "every worker to adopt the table")
        return self

    def __exit__(self, *exc):
        if self.proxy is not None:
            self.proxy.stop()
        self.cluster.stop()

    def client(self):
        return self.proxy.client()

    def master(self):
        return self.cluster.masters()[0]


def direct(setup, *args):
    """A command on the master of args[1]'s slot."""
    return setup.cluster.node_for_key(args[1]).call(*args)


def check_command_family(s, learned_only, refused):
    """COMMAND, COUNT, INFO and LIST answer with the table in force."""
    with s.client() as c:
        everything = c.call("COMMAND")
        names = {e[0] for e in everything}
        assert c.call("COMMAND", "COUNT") == len(everything)
        for name in learned_only:
            # Byte for byte the server's own entry (as decoded).
            assert name.encode() in names, name
            assert c.call("COMMAND", "INFO", name) == \
                s.master().call("COMMAND", "INFO", name), name
        assert c.call("COMMAND", "INFO", "get") == \
            s.master().call("COMMAND", "INFO", "get")
        for name in refused:
            assert name.encode() not in names, name
            assert c.call("COMMAND", "INFO", name) == [None], name
        listed = c.call("COMMAND", "LIST")
        assert set(listed) >= names
        assert b"config" not in listed and b"client|list" in listed
        assert c.call("COMMAND", "INFO", "client|list") == \
            s.master().call("COMMAND", "INFO", "client|list")


@test(timeout=120)
def test_redis74_learned(env):
    """Redis 7.4.1: ZRANK WITHSCORE (arity -3 since 7.2), the hash field
    expiry family (7.4), the COMMAND family from the learned table."""
    with Setup("redis-7.4.1") as s, s.client() as c:
        z, h = k("z"), k("h")
        assert c.call("ZADD", z, 1, "a", 2, "b") == 2
        assert c.call("ZRANK", z, "b", "WITHSCORE") == [1, b"2"]
        assert c.call("ZREVRANK", z, "b", "WITHSCORE") == [0, b"2"]
        assert c.call("ZRANK", z, "b") == 1
        assert c.call("HSET", h, "f", "v", "g", "w") == 2
        assert c.call("HEXPIRE", h, 100, "FIELDS", 1, "f") == [1]
        ttl = c.call("HTTL", h, "FIELDS", 2, "f", "g")
        assert 0 < ttl[0] <= 100 and ttl[1] == -1, ttl
        assert c.call("HPERSIST", h, "FIELDS", 1, "f") == [1]
        assert c.call("HTTL", h, "FIELDS", 1, "f") == [-1]
        assert c.call("HPEXPIRE", h, 100000, "FIELDS", 1, "g") == [1]
        assert c.call("HEXPIRETIME", h, "FIELDS", 1, "g")[0] > 0
        # The server's arity: too few arguments is Redis's own error.
        assert c.call("HTTL", h) == Error(
            "ERR wrong number of arguments for 'httl' command")
        # Writes reach the slot's master, as for any keyed command.
        assert direct(s, "HTTL", h, "FIELDS", 1, "g")[0] > 0
        # WAITAOF (7.2) is refused like WAIT: writes share connections.
        r = c.call("WAITAOF", 1, 0, 0)
        assert isinstance(r, Error) and r.startswith("ERR slotproxy"), r
        # Unknown to the built-in table and to the cluster: the server's
        # own error text, exactly.
        r = c.call("NOSUCHCMD", "a", "b")
        assert r == s.master().call("NOSUCHCMD", "a", "b"), r
        assert r.startswith("ERR unknown command 'NOSUCHCMD'"), r
        check_command_family(
            s, ["hexpire", "httl", "hpersist", "zrank"],
            ["config", "monitor", "wait", "waitaof", "shutdown"])
        pat = c.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "hpexp*")
        assert sorted(pat) == [b"hpexpire", b"hpexpireat", b"hpexpiretime"]
        # The log says what was learned, once.
        text = log_text(s.proxy)
        assert text.count(LEARNED) == 1, text


@test(timeout=120)
def test_valkey8_learned(env):
    """Valkey 8.0.1: ZRANK WITHSCORE, CLUSTER SLOT-STATS merged over the
    masters (each answers for its own slots), the COMMAND family."""
    with Setup("valkey-8.0.1") as s, s.client() as c:
        z = k("z")
        assert c.call("ZADD", z, 5, "a") == 1
        assert c.call("ZRANK", z, "a", "WITHSCORE") == [0, b"5"]
        # Keys in known slots: slot -> count.
        counts = {}
        for i in range(40):
            key = k("ss", i)
            assert c.call("SET", key, i) == b"OK"
            counts[keyslot(key)] = counts.get(keyslot(key), 0) + 1
        full = c.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", 0, 16383)
        assert [e[0] for e in full] == list(range(16384))
        got = {e[0]: dict(zip(e[1][::2], e[1][1::2]))[b"key-count"]
               for e in full}
        for slot, n in counts.items():
            assert got[slot] >= n, (slot, got[slot], n)
        # The same entries the masters give, byte for byte as decoded.
        per = {}
        for m in s.cluster.masters():
            for e in m.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", 0, 16383):
                per[e[0]] = e
        assert full == [per[i] for i in range(16384)]
        part = c.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", 100, 200)
        assert [e[0] for e in part] == list(range(100, 201))
        top = c.call("CLUSTER", "SLOT-STATS", "ORDERBY", "key-count",
                     "LIMIT", 5)
        want = sorted(per.values(), key=lambda e: (-e[1][1], e[0]))[:5]
        assert top == want, (top, want)
        low = c.call("CLUSTER", "SLOT-STATS", "ORDERBY", "key-count",
                     "LIMIT", 3, "ASC")
        assert low == sorted(per.values(), key=lambda e: (e[1][1], e[0]))[:3]
        # Bad arguments: the masters' own error.
        r = c.call("CLUSTER", "SLOT-STATS", "ORDERBY", "nosuch")
        assert r == Error("ERR Unrecognized sort metric for ORDERBY."), r
        check_command_family(s, ["zrank"], ["config", "waitaof"])
        assert c.call("COMMAND", "INFO", "cluster|slot-stats") == \
            s.master().call("COMMAND", "INFO", "cluster|slot-stats")


def compile_module(src, name):
    """src compiled against Redis 7.4.1's redismodule.h into the run's
    temporary folder; the .so's path."""
    inc = os.path.dirname(harness.server_bins("redis-7.4.1")[0])
    out = os.path.join(harness.tmp_root(), name + ".so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-std=gnu99",
                        "-I", inc, "-o", out, src], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise harness.HarnessError("building %s failed:\n%s" % (
            name, r.stdout.decode(errors="replace")[-2000:]))
    return out


def build_module(name):
    """Redis 7.4.1's own test module tests/modules/<name>.c."""
    src = os.path.join(os.path.dirname(os.path.dirname(
        harness.server_bins("redis-7.4.1")[0])), "tests", "modules",
        name + ".c")
    if not os.path.isfile(src):
        raise harness.HarnessError("no %s (the redis-7.4.1 build has no "
                                   "source tree)" % src)
    return compile_module(src, name)


@test(timeout=150)
def test_module_commands(env):
    """Module commands (Redis's keyspecs test module, on every master)
    arrive through COMMAND like any other: routed by their key specs,
    CROSSSLOT across slots."""
    so = build_module("keyspecs")
    with Setup("redis-7.4.1", module=so) as s, s.client() as c:
        a, b = "{%s}a" % PFX, "{%s}b" % PFX
        assert c.call("KSPEC.TWORANGES", a, b) == b"OK"
        other = next(k("x", i) for i in range(100)
                     if keyslot(k("x", i)) != keyslot(a))
        assert c.call("KSPEC.TWORANGES", a, other) == CROSSSLOT
        # The keyword spec: keys after KEYS, found as Redis finds them.
        assert c.call("KSPEC.KEYWORD", "KEYS", a, b) == b"OK"
        assert c.call("KSPEC.KEYWORD", "KEYS", a, other) == CROSSSLOT
        # Only the legacy (first, last, step) triple, which Redis turns
        # into a key spec: every other argument from the first.
        assert c.call("KSPEC.NONEWITHGETKEYS", a, 1, b, 2) == b"OK"
        assert c.call("KSPEC.NONEWITHGETKEYS", a, 1, other, 2) == CROSSSLOT
        for name in ("kspec.tworanges", "kspec.nonewithgetkeys"):
            assert c.call("COMMAND", "INFO", name) == \
                s.master().call("COMMAND", "INFO", name)
        assert b"kspec.keyword" in c.call("COMMAND", "LIST")


def check_builtin_70(c):
    """The built-in 7.0 behaviour: ZRANK takes no WITHSCORE (arity 3, not
    7.2's -3), HEXPIRE is unknown."""
    z = k("z70")
    assert c.call("ZADD", z, 1, "a") == 1
    assert c.call("ZRANK", z, "a", "WITHSCORE") == Error(
        "ERR wrong number of arguments for 'zrank' command")
    r = c.call("HEXPIRE", k("h"), 1, "FIELDS", 1, "f")
    assert isinstance(r, Error) and r.startswith(
        "ERR unknown command 'HEXPIRE'"), r


@test(timeout=120)
def test_system_builtin(env):
    """In front of Debian's 7.0.15 the built-in behaviour stays: ZRANK
    takes no WITHSCORE, HEXPIRE is unknown, COMMAND INFO is the
    server's."""
    with Setup("system") as s, s.client() as c:
        check_builtin_70(c)
        check_command_family(s, ["zrank", "set"], ["config", "wait"])
        r = c.call("NOSUCHCMD", "a")
        assert r == s.master().call("NOSUCHCMD", "a"), r
        assert "not learned" in log_text(s.proxy)
        assert "0 commands not learned" in log_text(s.proxy)


@test(timeout=150)
def test_mixed_versions(env):
    """A rolling upgrade, frozen half way: one master runs 7.0.15, two run
    7.4.1. The proxy uses what every master has (ZRANK without WITHSCORE,
    no HEXPIRE) and logs what differs."""
    servers = ["system", "redis-7.4.1", "redis-7.4.1"]
    try:
        s = Setup("redis-7.4.1", servers=servers)
        s.__enter__()
    except harness.HarnessError as e:
        s.__exit__()
        raise harness.Skip("7.0.15 and 7.4.1 nodes did not form one "
                           "cluster here: %s" % str(e)[:200])
    try:
        with s.client() as c:
            z = k("z")
            assert c.call("ZADD", z, 1, "a") == 1
            assert c.call("ZRANK", z, "a", "WITHSCORE") == Error(
                "ERR wrong number of arguments for 'zrank' command")
            r = c.call("HEXPIRE", k("h"), 1, "FIELDS", 1, "f")
            assert isinstance(r, Error) and r.startswith(
                "ERR unknown command"), r
            # COMMAND INFO zrank: the masters disagree, so the proxy's
            # own rendering (arity 3, the common one).
            assert c.call("COMMAND", "INFO", "zrank")[0][1] == 3
            assert c.call("COMMAND", "INFO", "hexpire") == [None]
        text = log_text(s.proxy)
        assert "commands: zrank: arity" in text, text
        assert "commands: hexpire: missing on" in text, text
        assert "not learned" in text
    finally:
        s.__exit__()


@test(timeout=120)
def test_learned_metrics(env):
    """Per-command metrics name commands the built-in table lacks."""
    mport = harness.free_port()
    with Setup("redis-7.4.1", extra="metrics:\n  listen: [%s:%d]" % (
            HOST, mport)) as s, s.client() as c:
        h = k("mh")
        c.call("HSET", h, "f", "v")
        for _ in range(3):
            assert c.call("HTTL", h, "FIELDS", 1, "f") == [-1]

        def scraped():
            with urllib.request.urlopen("http://%s:%d/metrics" % (
                    HOST, mport), timeout=5) as r:
                body = r.read().decode()
            return 'slotproxy_command_calls_total{command="httl"} 3' in body
        wait_until(scraped, 10, "httl in /metrics")


# A module that answers COMMAND (without arguments) with a reply of the
# wrong shape: a command filter turns it into its own command. (A module
# cannot register the name itself, even with COMMAND renamed away.)
GARBAGE_MODULE = r"""
#include <string.h>
#include <strings.h>
#include "redismodule.h"
static int garbage(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    (void)argv;
    (void)argc;
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithLongLong(ctx, 1);
    RedisModule_ReplyWithSimpleString(ctx, "garbage");
    return REDISMODULE_OK;
}
static void filter(RedisModuleCommandFilterCtx *f)
{
    size_t len;
    if (RedisModule_CommandFilterArgsCount(f) != 1)
        return;
    const char *s = RedisModule_StringPtrLen(
        RedisModule_CommandFilterArgGet(f, 0), &len);
    if (len == 7 && strncasecmp(s, "command", 7) == 0)
        RedisModule_CommandFilterArgReplace(
            f, 0, RedisModule_CreateString(NULL, "garbagecmd", 10));
}
int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv,
                       int argc)
{
    (void)argv;
    (void)argc;
    if (RedisModule_Init(ctx, "garbagecmd", 1, REDISMODULE_APIVER_1) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "garbagecmd", garbage, "", 0, 0,
                                  0) == REDISMODULE_ERR ||
        RedisModule_RegisterCommandFilter(ctx, filter, 0) == NULL)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
"""


def build_garbage_module():
    """GARBAGE_MODULE, compiled."""
    src = os.path.join(harness.tmp_root(), "garbagecmd.c")
    with open(src, "w") as f:
        f.write(GARBAGE_MODULE)
    return compile_module(src, "garbagecmd")


def check_builtin_kept(s, why):
    """The proxy could not learn (why: text of its log line): the
    built-in 7.0 table stays in force and the proxy keeps serving."""
    wait_until(lambda: "cannot learn the command table" in
               log_text(s.proxy), 15, "the proxy to give up a round")
    text = log_text(s.proxy)
    assert why in text, text
    assert LEARNED not in text, text
    with s.client() as c:
        key = k("bk")
        assert c.call("SET", key, "v") == b"OK"
        assert c.call("GET", key) == b"v"
        assert c.call("MGET", key, k("other")) == [b"v", None]
        check_builtin_70(c)
        assert c.call("COMMAND", "INFO", "hexpire") == [None]


@test(timeout=150)
def test_master_refuses_command(env):
    """One master of three has no COMMAND (rename-command): the round
    fails, the built-in table stays, the proxy serves as before."""
    s = Setup("redis-7.4.1", learned=False)
    s.cluster.nodes[0].extra_args = ["--rename-command", "COMMAND", ""]
    with s:
        check_builtin_kept(s, "answered COMMAND with -ERR unknown command")


@test(timeout=150)
def test_master_command_garbage(env):
    """Every master answers COMMAND with a reply of the wrong shape (a
    module's): it does not parse, the built-in table stays."""
    so = build_garbage_module()
    s = Setup("redis-7.4.1", learned=False)
    for n in s.cluster.nodes:
        n.extra_args = ["--loadmodule", so]
    with s:
        assert s.master().call("COMMAND") == [1, b"garbage"]
        check_builtin_kept(s, "cannot learn the command table (")
