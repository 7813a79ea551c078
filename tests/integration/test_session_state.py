#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Session state across features: what a client's WATCH, MULTI, pub/sub,
# blocking and AUTH state become when another feature (RESET, a lost or
# released pinned connection, a close from inside a completion callback)
# ends it. Each test is a sequence that crashed the proxy or left state
# behind (issue 10); the proxy must stay up, answer PING, and the session
# must read as Redis's would.

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ConnectionClosed, Error, keyslot, log,  # noqa: E402
                     test, wait_until)

NOAUTH = "NOAUTH Authentication required."
USERS = ("auth:\n  users:\n"
         "    - {name: admin, password: adminpw, role: admin}\n"
         "    - {name: rw, password: rwpw, role: read-write}\n"
         "    - {name: ro, password: ropw, role: read-only}\n")


def alive(p):
    """The proxy process is up and answers PING on a new connection."""
    assert p.alive(), p.log_tail()
    with p.client() as c:
        assert c.call("PING") == b"PONG"


def numsub(cl, channel):
    """Subscribers of channel on all masters (each node counts its own)."""
    return sum(m.call("PUBSUB", "NUMSUB", channel)[1] for m in cl.masters())


def sub_conns(node):
    """CLIENT LIST lines of node for connections in subscribed mode."""
    res = []
    for line in node.call("CLIENT", "LIST").decode().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if sum(int(f.get(k, "0")) for k in ("sub", "psub", "ssub")) > 0:
            res.append(line)
    return res


def closed_or_replies(c, n, wait=10.0):
    """Reads up to n replies; returns (replies, closed)."""
    out = []
    c.settimeout(wait)
    try:
        for _ in range(n):
            out.append(c.read())
    except (ConnectionClosed, ConnectionResetError):
        return out, True
    except (socket.timeout, TimeoutError):
        return out, False
    return out, False


def fill(n=1015):
    """An ECHO whose reply (1022 bytes) nearly fills a 1 KB output limit:
    the next reply in the same turn, 3 bytes or more, closes the client
    (output limit), from inside that reply's completion."""
    return ("ECHO", "f" * n)


# ------------------------------------------------- row 1: WATCH + SUBSCRIBE

@test
def test_reset_in_subscribed_mode_ends_watch(env):
    """WATCH, SUBSCRIBE, RESET, then UNWATCH or a transaction: RESET in
    subscribed mode released the pinned connection the WATCH still named
    (heap-use-after-free in server_send)."""
    p = env.proxy
    cl = env.cluster
    for tail in ([("UNWATCH",)],
                 [("MULTI",), ("SET", "{rs1}k", "v"), ("EXEC",)],
                 [("WATCH", "{rs1}k"), ("UNWATCH",)],
                 [("DISCARD",), ("EXEC",)]):
        with p.client() as c:
            assert c.call("WATCH", "{rs1}k") == b"OK"
            c.send(("SUBSCRIBE", "rs1:ch"))
            assert c.read() == [b"subscribe", b"rs1:ch", 1]
            assert c.call("RESET") == b"RESET"
            r = [c.call(*cmd) for cmd in tail]
            want = {"UNWATCH": [b"OK"],
                    "MULTI": [b"OK", b"QUEUED", [b"OK"]],
                    "WATCH": [b"OK", b"OK"],
                    "DISCARD": [Error("ERR DISCARD without MULTI"),
                                Error("ERR EXEC without MULTI")]}
            assert r == want[tail[0][0]], (tail, r)
            assert c.call("PING") == b"PONG"
        alive(p)
    # RESET ended the subscription on the server too.
    wait_until(lambda: numsub(cl, "rs1:ch") == 0, 20,
               "no subscriber of rs1:ch left")
    with p.client() as c:
        c.call("DEL", "{rs1}k")


@test(timeout=90)
def test_lost_push_connection_leaves_watch(env):
    """WATCH then SUBSCRIBE where both need the same node, then the
    subscription's connection is killed server-side: re-subscribing
    released that pin, which the WATCH had reused."""
    p = env.proxy
    cl = env.cluster
    hit = 0
    for attempt in range(24):
        with p.client() as c:
            # SUBSCRIBE takes masters round robin: walk them out of step.
            m0 = cl.masters()[(attempt + attempt // 3) % 3]
            k = harness.keys_in_slots("lw%d" % attempt, cl.slots_of(m0),
                                      1)[0]
            # An earlier try's subscription may still be on its way out.
            wait_until(lambda: numsub(cl, "lw:ch") == 0, 20,
                       "no subscriber of lw:ch left")
            assert c.call("WATCH", k) == b"OK"
            c.send(("SUBSCRIBE", "lw:ch"))
            assert c.read() == [b"subscribe", b"lw:ch", 1]
            if m0.call("PUBSUB", "NUMSUB", "lw:ch")[1] == 0:
                continue          # the subscription went to another node
            hit += 1
            for line in sub_conns(m0):
                f = dict(kv.split("=", 1) for kv in line.split()
                         if "=" in kv)
                m0.call("CLIENT", "KILL", "ID", f["id"])
            # The proxy subscribes again elsewhere, silently.
            with p.client() as pub:
                def got():
                    pub.call("PUBLISH", "lw:ch", "x")
                    c.settimeout(0.3)
                    try:
                        return c.read() == [b"message", b"lw:ch", b"x"]
                    except (socket.timeout, TimeoutError):
                        c.f = c.sock.makefile("rb", buffering=1 << 16)
                        return False
                wait_until(got, 20, "the re-subscription")
            c.settimeout(10)
            c.send(("UNSUBSCRIBE",))
            assert c.read() == [b"unsubscribe", b"lw:ch", 0]
            r = [c.call("UNWATCH"), c.call("MULTI"), c.call("SET", k, "1"),
                 c.call("EXEC")]
            assert r == [b"OK", b"OK", b"QUEUED", [b"OK"]], r
            c.call("DEL", k)
        alive(p)
        if hit >= 2:
            break
    log("# WATCH and SUBSCRIBE on one node in %d of %d tries" % (
        hit, attempt + 1))
    assert hit > 0


# ------------------------------------------------------ row 4: RESET auth

@test
def test_reset_deauthenticates(env):
    """RESET de-authenticates when auth is configured, from every mode
    (normal, inside MULTI, subscribed), and clears the client name."""
    p = env.new_proxy(extra=USERS)
    for user, pw in (("ro", "ropw"), ("rw", "rwpw"), ("admin", "adminpw")):
        for mode in ("plain", "multi", "subscribed", "watch", "pipelined"):
            with p.client() as c:
                assert c.call("GET", "rd:k") == Error(NOAUTH)
                assert c.call("AUTH", user, pw) == b"OK"
                assert c.call("CLIENT", "SETNAME", "n1") == b"OK"
                if mode == "multi":
                    assert c.call("MULTI") == b"OK"
                    assert c.call("GET", "rd:k") == b"QUEUED"
                elif mode == "subscribed":
                    c.send(("SUBSCRIBE", "rd:ch"))
                    assert c.read() == [b"subscribe", b"rd:ch", 1]
                elif mode == "watch":
                    assert c.call("WATCH", "rd:k") == b"OK"
                if mode == "pipelined":
                    c.send(("RESET",), ("GET", "rd:k"), ("EXEC",))
                    r = [c.read() for _ in range(3)]
                    assert r == [b"RESET", Error(NOAUTH), Error(NOAUTH)], r
                else:
                    assert c.call("RESET") == b"RESET"
                    assert c.call("GET", "rd:k") == Error(NOAUTH), (user,
                                                                    mode)
                    assert c.call("EXEC") == Error(NOAUTH)
                assert c.call("PING") == b"PONG"
                assert c.call("AUTH", user, pw) == b"OK"
                assert c.call("CLIENT", "GETNAME") is None, (user, mode)
                assert c.call("EXEC") == Error("ERR EXEC without MULTI")
                assert c.call("GET", "rd:k") is None
    alive(p)
    # Without auth configured RESET leaves the connection usable.
    with env.client() as c:
        assert c.call("CLIENT", "SETNAME", "n2") == b"OK"
        assert c.call("RESET") == b"RESET"
        assert c.call("CLIENT", "GETNAME") is None
        assert c.call("SET", "rd:k", "1") == b"OK"
        assert c.call("DEL", "rd:k") == 1


@test
def test_reset_drops_watch(env):
    """After RESET a WATCH no longer aborts the next transaction."""
    with env.client() as c, env.client() as o:
        c.call("SET", "{rw}k", "0")
        assert c.call("WATCH", "{rw}k") == b"OK"
        assert c.call("RESET") == b"RESET"
        assert o.call("SET", "{rw}k", "changed") == b"OK"
        r = [c.call("MULTI"), c.call("SET", "{rw}k", "mine"),
             c.call("EXEC")]
        assert r == [b"OK", b"QUEUED", [b"OK"]], r
        assert c.call("GET", "{rw}k") == b"mine"
        c.call("DEL", "{rw}k")


# ------------------------------------------------ row 6: subscribe again

@test
def test_subscribe_again_after_unsubscribe(env):
    """SUBSCRIBE, UNSUBSCRIBE, SUBSCRIBE, then a plain command: the second
    subscribe was sent in request/reply mode and completed twice
    (assertion !r->done, release build too)."""
    p = env.proxy
    cases = [("SUBSCRIBE", "UNSUBSCRIBE", "PUBLISH", "message", "ra:ch"),
             ("PSUBSCRIBE", "PUNSUBSCRIBE", "PUBLISH", "pmessage", "ra:p*"),
             ("SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH", "smessage", "ra:sh")]
    for sub, unsub, pubcmd, kind, base in cases:
        lower = sub.lower().encode()
        with p.client() as c, p.client() as pub:
            for rnd in range(3):
                # A name per round: a message of the last round may still
                # travel the cluster bus to the node of this round's
                # connection.
                ch = base.replace(":", ":%d" % rnd, 1)
                c.send((sub, ch))
                assert c.read() == [lower, ch.encode(), 1], (sub, rnd)
                target = ch.replace("*", "x")
                pub.call(pubcmd, target, "m%d" % rnd)
                m = c.read()
                assert m[0] == kind.encode() and m[-1] == b"m%d" % rnd, m
                c.send((unsub,))
                assert c.read() == [unsub.lower().encode(), ch.encode(), 0]
                assert c.call("INCR", "{ra}x") == rnd + 1
            assert c.call("PING") == b"PONG"
            c.call("DEL", "{ra}x")
        alive(p)


# ----------------------------- row 7: pushes for a client that is gone

@test
def test_push_after_close_in_push_handler(env):
    """Confirmations arriving together; the first one closes the client
    (output limit): the next ones found its pub/sub state gone (member
    access within null pointer in pubsub_on_push)."""
    p = env.new_proxy(extra="clients:\n  output_limit: 1kb")
    long = "x" * 1500
    for sub, names in (("SUBSCRIBE", ["pc:a" + long, "pc:b", "pc:c"]),
                       ("PSUBSCRIBE", ["pc:a*" + long, "pc:b*", "pc:c*"]),
                       ("SSUBSCRIBE", ["{pc}a" + long, "{pc}b", "{pc}c"])):
        for rnd in range(3):
            with p.client() as c:
                c.send((sub,) + tuple(names))
                _, closed = closed_or_replies(c, 10)
                assert closed, sub
            alive(p)
    # Pushes pipelined behind a RESET or a close of the subscriber.
    with p.client() as pub:
        for end in ("RESET", "close"):
            for rnd in range(5):
                # A channel per round: PUBLISH answers before the cluster
                # bus has carried the message to the other masters, so a
                # round's messages may still arrive after its replies,
                # and 50 of them would fill a next subscriber's 1 KB.
                ch = "pc:r%d%s" % (rnd, end)
                c = p.client()
                c.send(("SUBSCRIBE", ch))
                assert c.read() == [b"subscribe", ch.encode(), 1]
                pub.send(*[("PUBLISH", ch, "m%d" % i)
                           for i in range(50)])
                if end == "RESET":
                    c.send(("RESET",), ("PING",))
                c.close()
                for _ in range(50):
                    pub.read()
            alive(p)


@test
def test_blocking_probe_client_gone_at_once(env):
    """A blocking command goes out behind a CLIENT ID probe on a new
    pinned connection; a client that closes before either is written
    left the probe holding a reference nobody released (its pin, killed,
    turns to push mode, which drops what it writes without completing
    it): a leak per close, seen by the ASan build at shutdown."""
    p = env.new_proxy()
    frame = b"*3\r\n$5\r\nBLPOP\r\n$5\r\nbp:l1\r\n$4\r\n0.05\r\n"
    for _ in range(100):
        s = socket.create_connection((harness.HOST, p.port))
        s.sendall(frame)
        s.close()
    alive(p)
    with p.client() as c:
        assert c.call("BLPOP", "bp:l1", "0.05") is None
    # The harness's shutdown check (proxy_clean_shutdown) reports a leak.


@test(timeout=90)
def test_tryagain_wait_outlives_client_at_shutdown(env):
    """A multi-key request answered TRYAGAIN waits 20 ms on a router timer
    that holds a reference to it. When its client had left and SIGTERM
    came meanwhile, the loop ended with the timer unfired (an
    event_base_once) and the request leaked, as the ASan build's CI run
    showed after the session fuzzer. The drain now waits for such timers
    and shutdown fails what is left on them."""
    cl = env.cluster
    ka, kb = "{tq}a", "{tq}b"
    slot = keyslot(ka)
    src = cl.node_for_key(ka)
    dst = next(m for m in cl.masters() if m.port != src.port)
    p = harness.Proxy([m.port for m in cl.masters()])
    p.cluster_option("redirect_limit: 30")
    env.proxies.append(p)
    p.start()
    assert src.call("SET", ka, "1") == b"OK"
    assert src.call("SET", kb, "2") == b"OK"
    try:
        # Half migrated: ka on the importing node, kb still on the
        # source, so MGET of both gets ASK, then TRYAGAIN, again and again.
        dst.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
        src.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
        assert src.call("MIGRATE", harness.HOST, dst.port, "", 0, 5000,
                        "KEYS", ka) == b"OK"
        with p.client() as c:
            c.send(("MGET", ka, kb))

        def retried():
            with p.client() as q:
                text = q.call("INFO", "proxy").decode()
            return int(text.split("tryagain:")[1].split("\r")[0]) >= 1
        wait_until(retried, 20, "a TRYAGAIN retry")
        p.stop()  # SIGTERM while the orphan waits on its timer
        assert p.proc.returncode == 0, p.log_tail()
    finally:
        for n in (src, dst):
            n.call("CLUSTER", "SETSLOT", slot, "STABLE")
        dst.call("CLUSTER", "DELKEYSINSLOT", slot)
        src.call("DEL", ka, kb)


# ------------------------------------------------ 5: sync marker forgery

@test
def test_sync_marker_not_forgeable(env):
    """The proxy's internal marker (a PING behind an unsubscribe) must not
    be recognised in what others publish or what the client pings."""
    p = env.proxy
    token = "slotproxy-pubsub-sync"
    with p.client() as c, p.client() as pub:
        c.send(("SUBSCRIBE", "mk:ch"))
        assert c.read() == [b"subscribe", b"mk:ch", 1]
        for payload in (token, token + "x", "a" + token, token * 2):
            pub.call("PUBLISH", "mk:ch", payload)
            assert c.read() == [b"message", b"mk:ch", payload.encode()]
        c.send(("PING", token))
        assert c.read() == [b"pong", token.encode()]
        c.send(("PSUBSCRIBE", "mk:*"))
        assert c.read() == [b"psubscribe", b"mk:*", 2]
        pub.call("PUBLISH", "mk:ch", token)
        got = sorted([c.read(), c.read()], key=len)
        assert got == [[b"message", b"mk:ch", token.encode()],
                       [b"pmessage", b"mk:*", b"mk:ch", token.encode()]], got
        # An unsubscribe pipelined with a forged marker still orders.
        c.send(("PING", token), ("UNSUBSCRIBE", "mk:ch"), ("PING", token))
        r = [c.read() for _ in range(3)]
        assert r == [[b"pong", token.encode()],
                     [b"unsubscribe", b"mk:ch", 1],
                     [b"pong", token.encode()]], r
        c.send(("PUNSUBSCRIBE",))
        assert c.read() == [b"punsubscribe", b"mk:*", 0]
        assert c.call("PING", token) == token.encode()
        assert c.call("ECHO", token) == token.encode()


# --------------------- 6: state touched after a completion closed the client

@test
def test_close_inside_completion(env):
    """A reply that closes the client (output limit) from inside txn.c or
    pubsub.c, which then went on using the client's freed state."""
    p = env.new_proxy(extra="clients:\n  output_limit: 1kb")
    seqs = [
        # EXECABORT with a WATCH active: the UNWATCH after the reply.
        [("WATCH", "{cc}k"), ("MULTI",), ("NOSUCHCMD",)],
        [("WATCH", "{cc}k"), ("MULTI",), ("SUBSCRIBE", "x")],
    ]
    for pre in seqs:
        for tail in ([fill(), ("EXEC",)], [fill(), ("DISCARD",)],
                     [fill(1010), ("RESET",)]):
            with p.client() as c:
                for cmd in pre:
                    c.call(*cmd)
                c.send(*tail)
                closed_or_replies(c, len(tail))
            alive(p)
    # A sharded confirmation rewritten for a client the push closes.
    for rnd in range(3):
        with p.client() as c:
            c.send(("SSUBSCRIBE", "{cs}" + "y" * 1200, "{cs}b"))
            _, closed = closed_or_replies(c, 5)
            assert closed
        alive(p)


@test(timeout=120)
def test_close_inside_completion_node_down(env):
    """A node in reconnect backoff fails server_send at once: the error
    reply closes the client (output limit) while txn.c still holds its
    state."""
    cl = harness.Cluster(3, 0, name="sess-down")
    try:
        cl.start(40)
        for n in cl.nodes:
            n.call("CONFIG", "SET", "cluster-require-full-coverage", "no")
        p = env.new_proxy(seeds=[m.port for m in cl.masters()],
                          request_timeout="2s",
                          extra="clients:\n  output_limit: 1kb")
        victim = cl.masters()[2]
        k = harness.keys_in_slots("nd", cl.slots_of(victim), 1)[0]
        with p.client() as c:
            assert c.call("WATCH", k) == b"OK"
        victim.kill()
        wait_until(lambda: not victim.alive(), 20, "node killed")
        closes = 0
        tails = [[("UNWATCH",)], [("WATCH", k)], [("EXEC",)],
                 [("MULTI",), ("SET", k, "1"), ("EXEC",)],
                 [("SUBSCRIBE", "nd:ch")], [("SSUBSCRIBE", k)],
                 [("BLPOP", k, "0.1")]]
        for rnd in range(3):
            for tail in tails:
                with p.client() as c:
                    # The WATCH fails (connect refused), which starts the
                    # pinned connection's backoff: the next send on it
                    # fails at once, inside server_send.
                    assert isinstance(c.call("WATCH", k), Error)
                    c.send(fill(), *tail)
                    _, closed = closed_or_replies(c, 1 + len(tail), 3)
                    closes += closed
                alive(p)
        log("# %d of %d sequences closed the client" % (
            closes, 3 * len(tails)))
    finally:
        cl.stop()


# ------------------------------------- subscribe commands inside MULTI

@test
def test_subscribe_inside_multi_is_queued_error(env):
    """Inside MULTI a subscribe command ran at once (pub/sub was asked
    before the transaction) and left the client subscribed inside a
    transaction; the proxy refuses it at queuing time instead."""
    with env.client() as c, env.client() as pub:
        for cmd in (("SUBSCRIBE", "sm:ch"), ("PSUBSCRIBE", "sm:*"),
                    ("SSUBSCRIBE", "sm:ch"), ("UNSUBSCRIBE",),
                    ("SUNSUBSCRIBE", "sm:ch")):
            assert c.call("MULTI") == b"OK"
            r = c.call(*cmd)
            assert isinstance(r, Error) and "MULTI" in r.msg, (cmd, r)
            assert c.call("EXEC").startswith("EXECABORT"), cmd
            pub.call("PUBLISH", "sm:ch", "x")
            assert c.call("SET", "{sm}k", "v") == b"OK", cmd
        assert c.call("DEL", "{sm}k") == 1


# --------------------------------------------- a WATCH whose link drops

def kill_where(node, pred):
    """CLIENT KILL on node every connection whose CLIENT LIST fields
    satisfy pred; returns how many."""
    n = 0
    for line in node.call("CLIENT", "LIST").decode().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if pred(f):
            node.call("CLIENT", "KILL", "ID", f["id"])
            n += 1
    return n


@test
def test_watch_connection_lost_aborts_exec(env):
    """The WATCH lives on a pinned connection; when it drops, the server
    forgets the WATCH, and a later EXEC on a new connection ran the
    transaction unwatched. It now aborts (null reply) like a WATCH that
    saw a change; the next WATCH works again."""
    cl = env.cluster
    k = "{wl}k"
    node = cl.node_for_key(k)
    with env.client() as c:
        c.call("SET", k, "0")
        assert c.call("WATCH", k) == b"OK"
        assert kill_where(node, lambda f: f.get("cmd") == "watch") >= 1
        r = [c.call("MULTI"), c.call("SET", k, "1"), c.call("EXEC")]
        # Null once the proxy saw the connection go; an error when EXEC
        # itself found it gone. Never run.
        assert r[:2] == [b"OK", b"QUEUED"] and (
            r[2] is None or isinstance(r[2], Error)), r
        assert c.call("GET", k) == b"0"
        # Lost, then UNWATCH: nothing watched, the transaction runs.
        assert c.call("WATCH", k) == b"OK"
        assert kill_where(node, lambda f: f.get("cmd") == "watch") >= 1
        r = c.call("UNWATCH")
        assert r == b"OK" or isinstance(r, Error), r
        r = [c.call("MULTI"), c.call("SET", k, "2"), c.call("EXEC")]
        assert r == [b"OK", b"QUEUED", [b"OK"]], r
        # A fresh WATCH after the loss works as usual.
        assert c.call("WATCH", k) == b"OK"
        r = [c.call("MULTI"), c.call("SET", k, "3"), c.call("EXEC")]
        assert r == [b"OK", b"QUEUED", [b"OK"]], r
        assert c.call("GET", k) == b"3"
        c.call("DEL", k)
