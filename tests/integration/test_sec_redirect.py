#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Issue 10, redirects and pinned connections. A reply is data, never an
# instruction to go elsewhere: a MOVED/ASK a script returns must not make
# the proxy connect (and send the cluster password) to an address that is
# not a cluster member, nor run the script again; TRYAGAIN from a script
# is passed on. Real redirects keep working: ASK during a migration, MOVED
# after it, and a slot moved to a master the proxy has not seen yet. A
# pinned connection taken by a blocking command is given back when the
# command returns, so idle clients that once blocked do not exhaust
# clients.max_pinned, and one client cannot take every pin.

import os
import select
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Error, HOST, keyslot, log, test,  # noqa: E402
                     wait_until)

# The script returns the error text it is given, after counting its runs
# in KEYS[1] (when it has a key).
FAKE = ("if #KEYS > 0 then redis.call('incr', KEYS[1]) end "
        "return redis.error_reply(ARGV[1])")


class Trap:
    """A listening socket the test owns: the proxy must never connect."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def connections(self, window=0.5):
        """What arrived on connections made to the trap within window
        seconds (a negative check needs a window; bounded)."""
        got = []
        end = time.time() + window
        while True:
            left = end - time.time()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return got
            c, _ = self.sock.accept()
            c.settimeout(0.5)
            try:
                got.append(c.recv(65536))
            except OSError:
                got.append(b"")
            c.close()

    def close(self):
        self.sock.close()


def acl_on_all(cl, *args):
    for n in cl.nodes:
        if n.alive():
            assert n.call("ACL", *args) in (b"OK", 1, 0), args


def key_on(cl, master, prefix):
    """A key whose slot master serves."""
    i = 0
    while True:
        k = "%s:%d" % (prefix, i)
        if cl.node_for_key(k) is master:
            return k
        i += 1


def count_of(c, key):
    v = c.call("GET", key)
    return 0 if v is None else int(v)


@test(timeout=90)
def test_script_redirect_to_non_member(env):
    """EVAL returning MOVED/ASK to an address that is no cluster member:
    the client gets the error as is, and the address sees no connection
    (so no AUTH with the cluster password), whatever the form."""
    cl = env.cluster
    acl_on_all(cl, "SETUSER", "spredir", "on", ">redirpw", "~*", "&*",
               "+@all")
    trap = Trap()
    try:
        # A proxy with cluster.username/password in its config.
        p = harness.Proxy([m.port for m in cl.masters()])
        with open(p.conf) as f:
            conf = f.read()
        conf = conf.replace("cluster:\n", "cluster:\n  username: spredir\n"
                            "  password: redirpw\n", 1)
        with open(p.conf, "w") as f:
            f.write(conf)
        env.proxies.append(p)
        p.start()
        k = "redir:{trap}"
        s = keyslot(k)
        t = "127.0.0.1:%d" % trap.port
        cases = [
            ("EVAL", FAKE, 1, k, "MOVED %d %s" % (s, t)),
            ("EVAL", FAKE, 1, k, "ASK %d %s" % (s, t)),
            ("EVAL_RO", "return redis.error_reply(ARGV[1])", 1, k,
             "MOVED %d %s" % (s, t)),
            ("EVAL", FAKE, 1, k, "MOVED %d :%d" % (s, trap.port)),
            ("EVAL", FAKE, 1, k, "ASK %d ?:%d" % (s, trap.port)),
            ("EVAL", FAKE, 0, "MOVED 0 %s" % t),
            ("EVAL", FAKE, 0, "ASK 0 %s" % t),
            ("EVAL", FAKE, 1, k, "MOVED %d sp-no-such-host.invalid:6379" % s),
            ("EVAL", FAKE, 1, k, "MOVED %d 127.0.0.1:1" % s),
        ]
        slowest = 0.0
        with p.client() as c:
            c.call("DEL", k)
            for args in cases:
                t0 = time.time()
                r = c.call(*args)
                took = time.time() - t0
                slowest = max(slowest, took)
                assert isinstance(r, Error) and r.msg == args[-1], (args, r)
                # Held for one refresh at most, never a request timeout
                # (5 s).
                assert took < 3.0, (args, took)
            log("    slowest refused redirect: %.1f ms" % (slowest * 1000))
            assert count_of(c, k) == 6, "each script ran once"
            # Pipelined, and inside a transaction (where the script's
            # error is an element of EXEC's array).
            replies = c.pipeline([cases[0][:-1] + ("MOVED %d %s" % (s, t),),
                                  ("SET", k, "v"), ("GET", k)])
            assert replies[1:] == [b"OK", b"v"], replies
            assert c.call("MULTI") == b"OK"
            assert c.call("EVAL", "return redis.error_reply(ARGV[1])", 1, k,
                          "MOVED %d %s" % (s, t)) == b"QUEUED"
            r = c.call("EXEC")
            assert isinstance(r, list) and isinstance(r[0], Error), r
            assert c.call("PING") == b"PONG"
            c.call("DEL", k)
        got = trap.connections()
        assert got == [], "the proxy connected to a non-member: %r" % got
        assert b"redirpw" not in b"".join(got)
    finally:
        trap.close()
        acl_on_all(cl, "DELUSER", "spredir")


@test(timeout=60)
def test_script_redirect_to_members(env):
    """A script's MOVED/ASK naming cluster members: followed only where a
    real redirect could point (the request's slot, another node, the
    map's owner for MOVED), so the script runs once."""
    cl = env.cluster
    a, b = cl.masters()[0], cl.masters()[1]
    k = key_on(cl, a, "redir:member")
    s = keyslot(k)
    ta = "127.0.0.1:%d" % a.port
    tb = "127.0.0.1:%d" % b.port
    with env.client() as c:
        for msg in ["MOVED %d %s" % ((s + 1) % 16384, tb),   # wrong slot
                    "MOVED %d %s" % (s, tb),                 # not the owner
                    "MOVED %d %s" % (s, ta),                 # the sender
                    "ASK %d %s" % ((s + 1) % 16384, tb),
                    "ASK %d %s" % (s, ta)]:
            c.call("DEL", k)
            r = c.call("EVAL", FAKE, 1, k, msg)
            assert isinstance(r, Error) and r.msg == msg, (msg, r)
            assert count_of(c, k) == 1, (msg, count_of(c, k))
        # An ASK to a member that is not importing the slot is tried once
        # (ASKING + EVAL there: that node answers MOVED back and runs
        # nothing); the MOVED is not followed for a script.
        c.call("DEL", k)
        r = c.call("EVAL", FAKE, 1, k, "ASK %d %s" % (s, tb))
        assert isinstance(r, Error) and r.msg.split()[0] in ("ASK", "MOVED"), r
        assert count_of(c, k) == 1, count_of(c, k)
        c.call("DEL", k)


@test(timeout=60)
def test_script_tryagain_runs_once(env):
    """TRYAGAIN returned by a script (EVAL, EVALSHA, FCALL) goes to the
    client: the script is not run again."""
    cl = env.cluster
    k = "redir:tryagain"
    lib = ("#!lua name=spredir\n"
           "redis.register_function('spredir_fake', function(keys, args) "
           "redis.call('incr', keys[1]) "
           "return redis.error_reply(args[1]) end)")
    for m in cl.masters():
        m.call("FUNCTION", "LOAD", "REPLACE", lib)
    try:
        with env.client() as c:
            c.call("DEL", k)
            r = c.call("EVAL", FAKE, 1, k, "TRYAGAIN fake")
            assert r == Error("TRYAGAIN fake"), r
            assert count_of(c, k) == 1, count_of(c, k)
            sha = c.call("SCRIPT", "LOAD", FAKE)
            assert isinstance(sha, bytes), sha
            r = c.call("EVALSHA", sha, 1, k, "TRYAGAIN fake")
            assert r == Error("TRYAGAIN fake"), r
            assert count_of(c, k) == 2, count_of(c, k)
            r = c.call("FCALL", "spredir_fake", 1, k, "TRYAGAIN fake")
            assert r == Error("TRYAGAIN fake"), r
            assert count_of(c, k) == 3, count_of(c, k)
            c.call("DEL", k)
    finally:
        for m in cl.masters():
            m.call("FUNCTION", "DELETE", "spredir")


@test(timeout=90, last=True)
def test_real_ask_and_moved_still_followed(env):
    """A real ASK during a migration (GET and a script reading the key)
    and the MOVED after it are still followed inside the proxy."""
    cl = env.cluster
    cl.wait_ok(30)
    a, b = cl.masters()[0], cl.masters()[1]
    k = key_on(cl, a, "redir:ask")
    s = keyslot(k)
    env.proxy
    with env.client() as c:
        assert c.call("SET", k, "moved-value") == b"OK"
    assert b.call("CLUSTER", "SETSLOT", s, "IMPORTING", a.id) == b"OK"
    assert a.call("CLUSTER", "SETSLOT", s, "MIGRATING", b.id) == b"OK"
    try:
        assert a.call("MIGRATE", HOST, b.port, "", 0, 5000, "KEYS",
                      k) == b"OK"
        with env.client() as c:
            assert c.call("GET", k) == b"moved-value"
            assert c.call("EVAL", "return redis.call('get', KEYS[1])", 1,
                          k) == b"moved-value"
            assert c.call("EVAL_RO", "return redis.call('get', KEYS[1])",
                          1, k) == b"moved-value"
    finally:
        for m in (b, a) + tuple(x for x in cl.masters()
                                if x is not a and x is not b):
            m.call("CLUSTER", "SETSLOT", s, "NODE", b.id)
        cl.slot_owner[s] = b
    cl._wait_owner([s], b)
    with env.client() as c:
        assert c.call("GET", k) == b"moved-value"
        assert c.call("EVAL", "return redis.call('get', KEYS[1])", 1,
                      k) == b"moved-value"
    cl.migrate_slots(b, a, [s])
    cl.wait_ok(30)
    with env.client() as c:
        assert c.call("GET", k) == b"moved-value"
        c.call("DEL", k)


@test(timeout=120, last=True)
def test_slot_moved_to_new_master(env):
    """A master added to the cluster after the proxy read its map: an ASK
    to it while it imports its first slot (CLUSTER SLOTS does not list a
    master without slots, its members' CLUSTER NODES does) and the MOVED
    after the move are followed once the proxy confirmed it."""
    cl = harness.Cluster(3, 0, name="redir-newmaster").start()
    try:
        p = env.new_proxy(seeds=[m.port for m in cl.masters()])
        a = cl.masters()[0]
        k = key_on(cl, a, "redir:new")
        s = keyslot(k)
        with p.client() as c:
            assert c.call("SET", k, "v1") == b"OK"
        n = harness.Node(harness.free_cluster_port(),
                         os.path.join(cl.dir, "new"))
        n.start()
        cl.nodes.append(n)
        wait_until(lambda: n.call("PING") == b"PONG", 10, "new node")
        assert a.call("CLUSTER", "MEET", HOST, n.port) == b"OK"

        def known():
            return all(str(n.port).encode() in m.call("CLUSTER", "NODES")
                       and b"handshake" not in m.call("CLUSTER", "NODES")
                       for m in cl.masters() + [n])
        wait_until(known, 20, "every node knowing the new one", 0.1)
        cl.wait_ok(30)
        assert n.role == "master"
        assert n.call("CLUSTER", "SETSLOT", s, "IMPORTING", a.id) == b"OK"
        assert a.call("CLUSTER", "SETSLOT", s, "MIGRATING", n.id) == b"OK"
        assert a.call("MIGRATE", HOST, n.port, "", 0, 5000, "KEYS",
                      k) == b"OK"
        with p.client() as c:
            assert c.call("GET", k) == b"v1"
            # A transaction's ASK (EXECABORT, re-sent whole with ASKING)
            # goes the same way (router_follow from txn.c).
            assert c.call("MULTI") == b"OK"
            assert c.call("GET", k) == b"QUEUED"
            assert c.call("EXEC") == [b"v1"]
        # The target first, then the source, then the others.
        for m in [n, a] + [x for x in cl.masters() if x not in (n, a)]:
            assert m.call("CLUSTER", "SETSLOT", s, "NODE", n.id) == b"OK"
        cl._wait_owner([s], n)
        with p.client() as c:
            # The first request after the move is a transaction: its
            # MOVED to a node the map does not name yet is held for the
            # refresh, then followed.
            assert c.call("MULTI") == b"OK"
            assert c.call("GET", k) == b"QUEUED"
            assert c.call("SET", k, "v2") == b"QUEUED"
            assert c.call("EXEC") == [b"v1", b"OK"]
            assert c.call("GET", k) == b"v2"
        assert n.call("GET", k) == b"v2"
        p.stop()
    finally:
        cl.stop()


def metric(port, name):
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port),
                                timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric %s" % name)


@test(timeout=90)
def test_blocking_pins_given_back(env):
    """Many clients each do a short BLPOP, then stay connected and idle:
    their pinned connections come back, the pinned gauge drops, and a new
    client can still BLPOP under a small clients.max_pinned."""
    env.cluster
    mport = harness.free_port()
    p = env.new_proxy(extra="clients:\n  max_pinned: 10\n"
                      "metrics:\n  listen: [%s:%d]" % (HOST, mport))
    clients = []
    try:
        for i in range(40):
            c = p.client()
            clients.append(c)
            r = c.call("BLPOP", "redir:pin:%d" % i, "0.01")
            assert r is None, (i, r)
        wait_until(lambda: metric(mport, "slotproxy_pinned_connections")
                   == 0, 20, "pinned connections given back")
        with p.client() as c:
            c.call("RPUSH", "redir:pin:q", "x")
            assert c.call("BLPOP", "redir:pin:q", "1") == \
                [b"redir:pin:q", b"x"]
            # A blocking command that waits holds one pin, then gives it
            # back; others still get theirs meanwhile.
            waiters = [p.client() for _ in range(5)]
            for w in waiters:
                w.send(("BLPOP", "redir:pin:w", "30"))
            wait_until(lambda: metric(mport, "slotproxy_pinned_connections")
                       == 5, 20, "five blocked clients pinned")
            for i in range(5):
                c.call("RPUSH", "redir:pin:w", i)
            for w in waiters:
                assert w.read()[0] == b"redir:pin:w"
                w.close()
            wait_until(lambda: metric(mport, "slotproxy_pinned_connections")
                       == 0, 20, "pins given back")
        # WATCH keeps its pin while the WATCH lasts.
        with p.client() as c:
            assert c.call("WATCH", "redir:pin:watched") == b"OK"
            wait_until(lambda: metric(mport, "slotproxy_pinned_connections")
                       == 1, 20, "the WATCH's pin")
            assert c.call("BLPOP", "redir:pin:none", "0.01") is None
            assert c.call("MULTI") == b"OK"
            assert c.call("SET", "redir:pin:watched", "1") == b"QUEUED"
            assert c.call("EXEC") == [b"OK"]
            c.call("DEL", "redir:pin:watched")
    finally:
        for c in clients:
            c.close()


@test(timeout=60)
def test_pinned_per_client_cap(env):
    """clients.max_pinned_per_client: one client cannot take every pin;
    the error names the option."""
    cl = env.cluster
    p = env.new_proxy(extra="clients:\n  max_pinned_per_client: 1")
    a, b = cl.masters()[0], cl.masters()[1]
    ka = key_on(cl, a, "redir:cap")
    kb = key_on(cl, b, "redir:cap")
    with p.client() as c:
        assert c.call("WATCH", ka) == b"OK"
        # The WATCH holds this client's one pin: a blocking command needs
        # another.
        r = c.call("BLPOP", kb, "0.01")
        assert isinstance(r, Error) and \
            "clients.max_pinned_per_client" in r.msg, r
        assert c.call("UNWATCH") == b"OK"
    with p.client() as c:
        # Without state, blocking commands one after another reuse one.
        for _ in range(3):
            assert c.call("BLPOP", ka, "0.01") is None
            assert c.call("BLPOP", kb, "0.01") is None


@test(timeout=60)
def test_servers_outside_map_reaped(env):
    """A server the proxy made that is no node of the slot map (here the
    seed, named localhost while the cluster says 127.0.0.1) is closed and
    forgotten once idle, not kept forever."""
    cl = env.cluster
    mport = harness.free_port()
    p = harness.Proxy([cl.masters()[0].port],
                      extra="metrics:\n  listen: [%s:%d]" % (HOST, mport))
    with open(p.conf) as f:
        conf = f.read()
    conf = conf.replace("    - %s:%d" % (HOST, cl.masters()[0].port),
                        "    - localhost:%d" % cl.masters()[0].port)
    with open(p.conf, "w") as f:
        f.write(conf)
    env.proxies.append(p)
    p.start()
    # The connection gauge is shown for nodes the worker has a server for;
    # the per-node counters stay (they must never go back).
    seed = 'slotproxy_backend_connected{node="localhost:%d"}' % \
        cl.masters()[0].port

    def seed_listed():
        with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport),
                                    timeout=5) as r:
            return seed in r.read().decode()
    wait_until(seed_listed, 5, "the seed's server in /metrics")
    with p.client() as c:
        assert c.call("SET", "redir:reap", "x") == b"OK"
    wait_until(lambda: not seed_listed(), 20, "the idle seed server closed")
    with p.client() as c:
        assert c.call("GET", "redir:reap") == b"x"
        c.call("DEL", "redir:reap")


@test(timeout=60)
def test_hostname_seeds_resolved_in_loop(env):
    """Seeds given as hostnames are looked up without blocking the
    worker: one that does not resolve fails alone (the next seed serves),
    localhost (from /etc/hosts) works."""
    cl = env.cluster
    port = cl.masters()[0].port
    p = harness.Proxy([port])
    with open(p.conf) as f:
        conf = f.read()
    conf = conf.replace("    - %s:%d" % (HOST, port),
                        "    - sp-no-such-host.invalid:%d\n"
                        "    - localhost:%d" % (port, port))
    with open(p.conf, "w") as f:
        f.write(conf)
    env.proxies.append(p)
    p.start()
    with p.client() as c:
        wait_until(lambda: c.call("SET", "redir:dns", "x") == b"OK", 10,
                   "a slot map from the localhost seed")
        assert c.call("GET", "redir:dns") == b"x"
        c.call("DEL", "redir:dns")


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
