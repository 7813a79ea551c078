#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Sharded pub/sub with channels in several slots (issue 12). A single Redis
# accepts SSUBSCRIBE/SUNSUBSCRIBE naming channels of any slots, and the
# proxy presents itself as one: it splits them over its connections to the
# shards and answers as that single Redis does, one confirmation per
# channel in the client's order, counting the client's shard channels.
# Replies are compared with a standalone redis-server. Also: the sequences
# around it (pipelined, RESET, QUIT, a client that never reads, a slot
# that moves before or after the subscription).

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ConnectionClosed, keyslot, test,  # noqa: E402
                     wait_until)


def shard_names(env, prefix):
    """Three channel names, one per master (checked against the cluster's
    own map), each in its own slot."""
    cl = env.cluster
    cl.refresh()
    masters = [m for m in cl.masters() if cl.slots_of(m)]
    assert len(masters) == 3, masters
    out = {}
    i = 0
    while len(out) < 3:
        name = "%s:%d" % (prefix, i)
        i += 1
        out.setdefault(cl.node_for_key(name), name)
    names = list(out.values())
    assert len({keyslot(n) for n in names}) == 3, names
    return names


arrives = harness.has_data


def replies(c, cmds, counts=None):
    """Sends each command alone and reads its replies: one per channel
    named (or one error); for a SUNSUBSCRIBE of everything, counts[i] of
    them (what Redis answered: shards answer late on a loaded machine),
    then as many more as arrive, each within 0.25 s of the one before."""
    out = []
    for i, cmd in enumerate(cmds):
        c.send(cmd)
        n = max(1, len(cmd) - 1) if cmd[0].endswith("SUBSCRIBE") else 1
        got = [c.read()]
        if not isinstance(got[0], harness.Error):   # refused: one error
            got += [c.read() for _ in range(n - 1)]
        while cmd == ("SUNSUBSCRIBE",) and (
                len(got) < (counts[i] if counts else 0) or arrives(c, 0.25)):
            got.append(c.read())
        out.append(got)
    return out


def shard_subscribers(env, names):
    """SHARDNUMSUB of each name, asked of the node owning its slot."""
    return [env.cluster.node_for_key(n).call("PUBSUB", "SHARDNUMSUB", n)[1]
            for n in names]


def same_as_redis(env, cmds):
    with harness.Standalone() as sa, env.client() as p, sa.client() as d:
        rd = replies(d, cmds)
        rp = replies(p, cmds, [len(x) for x in rd])
        for cmd, a, b in zip(cmds, rp, rd):
            assert a == b, "%r: proxy %r != redis %r" % (cmd, a, b)


@test
def test_ssubscribe_several_slots_as_redis(env):
    """Channels of three shards in one SSUBSCRIBE, a channel twice, two of
    one slot, SUNSUBSCRIBE of subscribed and unknown names across slots:
    what a single Redis answers, confirmation for confirmation."""
    a, b, c = shard_names(env, "ss1")
    ax = "{%s}x" % a
    same_as_redis(env, [
        ("SSUBSCRIBE", a, b, a, c, ax),
        ("PING",),
        ("SSUBSCRIBE", b, "ss1:new"),
        ("SUNSUBSCRIBE", b, "ss1:none", b),
        ("SUNSUBSCRIBE", c, ax, "ss1:new"),
        ("PING", "still"),
        ("SUNSUBSCRIBE", a),
        ("PING",),                       # out of subscribed mode
        ("SUNSUBSCRIBE",),               # nothing left: [.., nil, 0]
        ("SUNSUBSCRIBE", a, c),
        ("SSUBSCRIBE", c),
        ("SUNSUBSCRIBE",),
        ("PING",)])


@test
def test_ssubscribe_several_slots_pipelined(env):
    """The same sequence written at once: confirmations and replies in the
    order the commands were sent."""
    a, b, c = shard_names(env, "ss2")
    cmds = [("SSUBSCRIBE", a, b, c), ("PING", "x"), ("SUNSUBSCRIBE", b, a),
            ("SSUBSCRIBE", a, c, b), ("SUNSUBSCRIBE", c, b, a),
            ("SET", "ss2:k", "v"), ("GET", "ss2:k"), ("DEL", "ss2:k")]
    n = 3 + 1 + 2 + 3 + 3 + 3
    with harness.Standalone() as sa, env.client() as p, sa.client() as d:
        for x in (p, d):
            x.send(*cmds)
        rp = [p.read() for _ in range(n)]
        rd = [d.read() for _ in range(n)]
        assert rp == rd, "proxy %r != redis %r" % (rp, rd)
        assert not arrives(p, 0.2)


@test
def test_ssubscribe_several_slots_messages(env):
    """One SSUBSCRIBE over three shards: every shard's messages arrive;
    SUNSUBSCRIBE with no channel drops all of them on every shard."""
    names = shard_names(env, "ss3")
    with env.client() as s, env.client() as pub:
        s.send(("SSUBSCRIBE",) + tuple(names))
        assert [s.read() for _ in names] == [
            [b"ssubscribe", n.encode(), i + 1] for i, n in enumerate(names)]
        assert shard_subscribers(env, names) == [1, 1, 1]
        for n in names:
            assert pub.call("SPUBLISH", n, "hi-" + n) == 1, n
        got = [s.read() for _ in names]
        assert sorted(got) == sorted(
            [b"smessage", n.encode(), ("hi-" + n).encode()] for n in names)
        s.send(("SUNSUBSCRIBE",))
        rs = [s.read() for _ in names]
        assert [x[0] for x in rs] == [b"sunsubscribe"] * 3, rs
        assert sorted(x[1] for x in rs) == sorted(n.encode() for n in names)
        assert [x[2] for x in rs] == [2, 1, 0], rs
        # Out of subscribed mode: plain commands; nothing subscribed left.
        assert s.call("PING") == b"PONG"
        assert shard_subscribers(env, names) == [0, 0, 0]
        for n in names:
            assert pub.call("SPUBLISH", n, "late") == 0
        assert not arrives(s, 0.3)


@test
def test_ssubscribe_several_slots_reset_and_quit(env):
    """RESET while subscribed on three shards drops every subscription and
    leaves a plain connection; QUIT closes, and the shards forget it."""
    names = shard_names(env, "ss4")
    with env.client() as s:
        s.send(("SSUBSCRIBE",) + tuple(names))
        assert len([s.read() for _ in names]) == 3
        assert s.call("RESET") == b"RESET"
        assert s.call("PING") == b"PONG"
        wait_until(lambda: shard_subscribers(env, names) == [0, 0, 0], 10,
                   "subscriptions gone after RESET")
        # Subscribing again after RESET works on fresh connections.
        s.send(("SSUBSCRIBE",) + tuple(names))
        assert [s.read()[2] for _ in names] == [1, 2, 3]
        assert shard_subscribers(env, names) == [1, 1, 1]
        # RESET pipelined right behind the subscribe.
        s.send(("SUNSUBSCRIBE",), ("SSUBSCRIBE",) + tuple(names), ("RESET",),
               ("PING",))
        rs = [s.read() for _ in range(3 + 3 + 2)]
        assert rs[-2:] == [b"RESET", b"PONG"], rs
        wait_until(lambda: shard_subscribers(env, names) == [0, 0, 0], 10,
                   "subscriptions gone after pipelined RESET")
    with env.client() as q:
        q.send(("SSUBSCRIBE",) + tuple(names), ("QUIT",))
        assert [q.read()[0] for _ in names] == [b"ssubscribe"] * 3
        assert q.read() == b"OK"
        assert q.is_closed()
    wait_until(lambda: shard_subscribers(env, names) == [0, 0, 0], 10,
               "subscriptions gone after QUIT")


@test(timeout=60)
def test_ssubscribe_several_slots_never_reads(env):
    """A subscriber on three shards that never reads is closed at its
    output limit; the proxy and its other clients go on."""
    px = env.new_proxy(extra="clients:\n  output_limit: 1mb")
    names = shard_names(env, "ss5")
    slow = px.client()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    try:
        slow.send(("SSUBSCRIBE",) + tuple(names))
        assert len([slow.read() for _ in names]) == 3
        payload = b"x" * 8192
        with px.client(30) as pub, px.client() as other:
            def flood():
                pub.pipeline([("SPUBLISH", n, payload)
                              for n in names for _ in range(40)])
                return shard_subscribers(env, names) == [0, 0, 0]
            wait_until(flood, 30, "slow subscriber closed")
            assert other.call("SET", "ss5:k", "1") == b"OK"
            assert other.call("GET", "ss5:k") == b"1"
            other.call("DEL", "ss5:k")
    finally:
        slow.close()


@test(timeout=60)
def test_ssubscribe_several_slots_refused_channel(env):
    """A backend ACL user that may not use one of the channels: the whole
    SSUBSCRIBE is refused with the server's error and subscribes nothing
    (the shards that did subscribe are undone), as on a single Redis;
    earlier subscriptions stay."""
    cl = env.cluster
    ok = shard_names(env, "ok")
    acl = ("SETUSER", "sp_ch", "on", ">sp-ch-pw", "~*", "&ok:*", "+@all")
    cmds = [("SSUBSCRIBE", ok[0], ok[1]),
            ("SSUBSCRIBE", ok[2], "bad:0", ok[1]),
            ("PING",),
            ("SSUBSCRIBE", "bad:1"),
            ("SUNSUBSCRIBE", ok[0], ok[1], ok[2]),
            ("PING",)]
    try:
        for m in cl.masters():
            assert m.call("ACL", *acl) == b"OK"
        px = env.new_proxy(extra=(
            "auth:\n  users:\n"
            "    - {name: ch, password: chpw, role: read-write, "
            "backend_user: sp_ch, backend_password: sp-ch-pw}\n"))
        with harness.Standalone() as sa, px.client() as p, \
                sa.client() as d:
            assert d.call("ACL", *acl) == b"OK"
            assert p.call("AUTH", "ch", "chpw") == b"OK"
            assert d.call("AUTH", "sp_ch", "sp-ch-pw") == b"OK"
            rp = replies(p, cmds)
            rd = replies(d, cmds)
            for cmd, a, b in zip(cmds, rp, rd):
                assert a == b, "%r: proxy %r != redis %r" % (cmd, a, b)
        # Nothing of the refused command stays subscribed on the shards.
        wait_until(lambda: shard_subscribers(env, ok) == [0, 0, 0], 10,
                   "refused SSUBSCRIBE undone")
    finally:
        for m in cl.masters():
            m.call("ACL", "DELUSER", "sp_ch")


@test(timeout=60)
def test_ssubscribe_many_channels_linear(env):
    """100,000 channels in one SSUBSCRIBE, then SUNSUBSCRIBE of all: the
    proxy's bookkeeping stays linear (a list walked per channel took
    minutes at this size, the worker serving no one meanwhile), and other
    clients are answered throughout."""
    n = 100000
    names = ["many:%d" % i for i in range(n)]
    with env.client(60) as s, env.client() as other:
        t = time.time()
        s.send(("SSUBSCRIBE",) + tuple(names))
        last = None
        for _ in range(n):
            last = s.read()
        assert last == [b"ssubscribe", names[-1].encode(), n], last
        assert other.call("PING") == b"PONG"
        s.send(("SUNSUBSCRIBE",))
        got = [s.read() for _ in range(n)]
        assert got[-1][2] == 0 and len({g[1] for g in got}) == n
        took = time.time() - t
        harness.log("# %d channels subscribed and dropped in %.2fs" % (
            n, took))
        assert took < 40, took
        assert s.call("PING") == b"PONG"


@test(timeout=60)
def test_ssubscribe_several_slots_client_gone(env):
    """Clients that leave while their SSUBSCRIBE or SUNSUBSCRIBE waits for
    the shards (closed right after writing it, half-written, or after a
    pipelined RESET): the proxy drops their state, the shards forget
    them, other clients go on."""
    names = shard_names(env, "ss7")
    many = tuple(names) + tuple("ss7:x%d" % i for i in range(2000))
    for i in range(20):
        c = env.client()
        if i % 4 == 0:
            c.send(("SSUBSCRIBE",) + many)
        elif i % 4 == 1:
            c.send(("SSUBSCRIBE",) + many, ("SUNSUBSCRIBE",))
        elif i % 4 == 2:
            c.send(("SSUBSCRIBE",) + many, ("RESET",), ("SSUBSCRIBE",) + many)
        else:
            c.send_raw(harness.encode(("SSUBSCRIBE",) + many)[:-20])
        c.close()
    with env.client() as o:
        assert o.call("PING") == b"PONG"
    wait_until(lambda: shard_subscribers(env, names) == [0, 0, 0], 15,
               "subscriptions of closed clients gone")


def _move(cl, slot, src, dst):
    cl.migrate_slots(src, dst, [slot])


@test(last=True, timeout=120)
def test_ssubscribe_slot_moved(env):
    """A slot moved behind the proxy's back: the SSUBSCRIBE meets MOVED at
    the old owner, and the client still gets its confirmation and then
    the messages (the proxy refreshes its map and subscribes where the
    slot is). Then the slot moves back under the subscription: the
    server's sunsubscribe never reaches the client, the messages go on."""
    cl = env.cluster
    cl.wait_ok(30)
    a, b, c = shard_names(env, "ss6")
    src = cl.node_for_key(a)
    dst = cl.node_for_key(b)
    slot = keyslot(a)
    px = harness.Proxy([m.port for m in cl.masters()])
    env.proxies.append(px)
    px.cluster_option("refresh_interval: 24h").start()
    home = src
    try:
        with px.client() as s, px.client() as pub:
            assert pub.call("SET", "ss6:warm", "1") == b"OK"
            _move(cl, slot, src, dst)
            home = dst
            # The old owner answers MOVED: never shown to the client.
            s.send(("SSUBSCRIBE", a))
            assert s.read() == [b"ssubscribe", a.encode(), 1]
            s.send(("SSUBSCRIBE", c, a))
            assert [s.read(), s.read()] == [
                [b"ssubscribe", c.encode(), 2],
                [b"ssubscribe", a.encode(), 2]]
            wait_until(lambda: dst.call("PUBSUB", "SHARDNUMSUB", a)[1] == 1,
                       10, "subscribed at the slot's new owner")
            assert pub.call("SPUBLISH", a, "after-move") == 1
            assert s.read() == [b"smessage", a.encode(), b"after-move"]
            assert pub.call("SPUBLISH", c, "other") == 1
            assert s.read() == [b"smessage", c.encode(), b"other"]
            # Moved back under the subscription.
            _move(cl, slot, dst, src)
            home = src
            wait_until(lambda: src.call("PUBSUB", "SHARDNUMSUB", a)[1] == 1,
                       15, "subscribed again where the slot went back")
            assert pub.call("SPUBLISH", a, "back") == 1
            assert s.read() == [b"smessage", a.encode(), b"back"]
            s.send(("SUNSUBSCRIBE",))
            rs = [s.read(), s.read()]
            assert [x[2] for x in rs] == [1, 0], rs
            assert sorted(x[1] for x in rs) == sorted([a.encode(),
                                                       c.encode()]), rs
            assert s.call("PING") == b"PONG"
    except ConnectionClosed:
        raise AssertionError("subscriber closed across the slot move")
    finally:
        if home is not src:
            _move(cl, slot, home, src)


# ------------------------------------------------------------ command docs

def _routes_learned(px):
    """True once the proxy's table is the one learned from the masters."""
    with px.client() as c:
        rows = c.call("PROXY", "COMMAND", "ROUTES")
    return any(r[0] == b"get" and r[7] == b"both" for r in rows)


@test(timeout=90)
def test_command_docs_current(env):
    """scripts/gen_command_docs.py, run against the proxy in front of the
    test cluster, names every command the server lists (with the route
    the proxy's table gives it), and the committed docs/commands.md is
    what it writes when the cluster runs the server version the file
    names."""
    px = env.proxy
    node = env.cluster.masters()[0]
    wait_until(lambda: _routes_learned(px), 20, "command table learned")
    out = os.path.join(harness.tmp_root(), "commands.md")
    script = os.path.join(harness.SRCDIR, "scripts", "gen_command_docs.py")
    rc, so, se = harness.run([sys.executable, script, "--proxy",
                              "%s:%d" % (harness.HOST, px.port), "--node",
                              "%s:%d" % (harness.HOST, node.port),
                              "--out", out])
    assert rc == 0, (so, se)
    with open(out) as f:
        text = f.read()
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| Command")}
    listed = [n.decode().upper().replace("|", " ")
              for n in node.call("COMMAND", "LIST")]
    assert listed and not [n for n in listed if n not in rows], \
        [n for n in listed if n not in rows][:10]
    # Routes come from the proxy's table, not from guesses.
    assert "| keyed: " in rows["GET"], rows["GET"]
    assert "split per slot, replies merged: values in key order" in \
        rows["MGET"], rows["MGET"]
    assert "every master, replies merged: integers summed" in \
        rows["DBSIZE"], rows["DBSIZE"]
    assert "refused: " in rows["SHUTDOWN"], rows["SHUTDOWN"]
    assert "pinned: blocking" in rows["BLPOP"], rows["BLPOP"]
    assert "pinned: pub/sub" in rows["SSUBSCRIBE"], rows["SSUBSCRIBE"]
    server = re.compile(r"in front of (\S+-server \S+) ")
    label = server.search(text).group(1)
    with open(os.path.join(harness.SRCDIR, "docs", "commands.md")) as f:
        committed = f.read()
    theirs = server.search(committed)
    if theirs is not None and theirs.group(1) != label:
        harness.log("# docs/commands.md is for %s, this cluster runs %s: "
                    "not compared" % (theirs.group(1), label))
        return
    assert committed == text, (
        "docs/commands.md is not current: run scripts/gen_command_docs.py "
        "against a proxy in front of this cluster (diff %s)" % out)
