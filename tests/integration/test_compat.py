#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Issue 12, client compatibility: the per-connection commands of Redis
# 7.2+ that clients send on connect (CLIENT SETINFO, NO-TOUCH, NO-EVICT),
# WAITAOF and CLUSTER MYSHARDID; INFO's Cluster, Replication and
# blocked_clients; CLIENT UNBLOCK of the proxy's own clients; Redis's
# arity errors for the commands the proxy answers itself (compared with a
# standalone redis-server); and real client libraries against the proxy:
# redis-py's RedisCluster, ioredis's Cluster, node-redis v5 and
# valkey-glide (npm packages installed inside the test, as test_tools.py
# does for ioredis).

import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, test, wait_until  # noqa: E402

UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"


def info_field(c, section, field):
    text = c.call("INFO", section).decode()
    for line in text.split("\r\n"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None


def blocked_clients(c):
    return int(info_field(c, "clients", "blocked_clients"))


# ------------------------------------------------------- per connection

@test(timeout=60)
def test_client_setinfo(env):
    """CLIENT SETINFO lib-name|lib-ver (Redis 7.2; go-redis and redis-py
    send it on connect): stored per connection and shown by CLIENT INFO
    and CLIENT LIST as Redis shows it; Redis 7.4's exact errors; RESET
    keeps it, as in Redis."""
    with env.client() as c:
        info = c.call("CLIENT", "INFO").decode()
        assert info.rstrip("\n").endswith("lib-name= lib-ver="), info
        assert c.call("CLIENT", "SETINFO", "lib-name", "redis-py") == b"OK"
        assert c.call("CLIENT", "SETINFO", "LIB-VER", "5.0.1") == b"OK"
        info = c.call("CLIENT", "INFO").decode()
        assert " lib-name=redis-py lib-ver=5.0.1" in info, info
        myid = c.call("CLIENT", "ID")
        lines = [ln for ln in c.call("CLIENT", "LIST").decode().split("\n")
                 if ln.startswith("id=%d " % myid)]
        assert len(lines) == 1 and "lib-name=redis-py lib-ver=5.0.1" in \
            lines[0], lines
        # Redis 7.4.1's texts (the attribute name as the client wrote it).
        assert c.call("CLIENT", "SETINFO", "lib-name", "a b") == \
            "ERR lib-name cannot contain spaces, newlines or special " \
            "characters."
        assert c.call("CLIENT", "SETINFO", "LIB-NAME", "a\nb") == \
            "ERR LIB-NAME cannot contain spaces, newlines or special " \
            "characters."
        assert c.call("CLIENT", "SETINFO", "lib-ver", b"v\x01") == \
            "ERR lib-ver cannot contain spaces, newlines or special " \
            "characters."
        assert c.call("CLIENT", "SETINFO", "foo", "x") == \
            "ERR Unrecognized option 'foo'"
        assert c.call("CLIENT", "SETINFO", "lib-name") == \
            "ERR wrong number of arguments for 'client|setinfo' command"
        assert c.call("CLIENT", "SETINFO", "lib-name", "a", "b") == \
            "ERR wrong number of arguments for 'client|setinfo' command"
        # A refused value leaves the old one.
        assert " lib-name=redis-py " in c.call("CLIENT", "INFO").decode()
        assert c.call("RESET") == b"RESET"
        assert " lib-name=redis-py lib-ver=5.0.1" in \
            c.call("CLIENT", "INFO").decode()
        # Pipelined with other commands; an empty value clears.
        r = c.pipeline([("CLIENT", "SETINFO", "lib-name", "x"),
                        ("SET", "compat:si", "1"),
                        ("CLIENT", "SETINFO", "lib-ver", ""),
                        ("CLIENT", "INFO")])
        assert r[:3] == [b"OK", b"OK", b"OK"], r
        assert r[3].decode().rstrip("\n").endswith("lib-name=x lib-ver="), r
        assert c.call("DEL", "compat:si") == 1
    # Another connection does not see this one's.
    with env.client() as c2:
        assert c2.call("CLIENT", "INFO").decode().rstrip("\n").endswith(
            "lib-name= lib-ver=")


@test(timeout=60)
def test_setinfo_read_only_role(env):
    """A read-only user may send what its library sends on connect."""
    p = env.new_proxy(extra="auth:\n  users:\n"
                      "    - {name: ro, password: ropw, role: read-only}\n")
    with p.client() as c:
        assert c.call("AUTH", "ro", "ropw") == b"OK"
        assert c.call("CLIENT", "SETINFO", "lib-name", "glide") == b"OK"
        assert c.call("CLIENT", "NO-TOUCH", "OFF") == b"OK"
        assert c.call("CLUSTER", "MYSHARDID") is not None


@test(timeout=60)
def test_no_touch_no_evict_waitaof(env):
    """NO-TOUCH ON is refused (its commands share backend connections,
    where the flag would apply to every client); OFF, the state every
    connection is in, is accepted. NO-EVICT ON|OFF is accepted: the proxy
    evicts no client for memory. Bad arguments: Redis's syntax error.
    WAITAOF is refused as WAIT is."""
    with env.client() as c:
        assert c.call("CLIENT", "NO-TOUCH", "ON") == \
            "ERR slotproxy: CLIENT NO-TOUCH ON is not supported through " \
            "the proxy (backend connections are shared)"
        assert c.call("CLIENT", "NO-TOUCH", "off") == b"OK"
        assert c.call("CLIENT", "NO-TOUCH", "maybe") == "ERR syntax error"
        assert c.call("CLIENT", "NO-TOUCH") == \
            "ERR wrong number of arguments for 'client|no-touch' command"
        assert c.call("CLIENT", "NO-EVICT", "on") == b"OK"
        assert c.call("CLIENT", "NO-EVICT", "OFF") == b"OK"
        assert c.call("CLIENT", "NO-EVICT", "x") == "ERR syntax error"
        waitaof = "ERR slotproxy: WAITAOF is not supported through the " \
            "proxy (writes travel on shared connections)"
        assert c.call("WAITAOF", "0", "0", "0") == waitaof
        assert c.call("WAITAOF", "1", "0") == \
            "ERR wrong number of arguments for 'waitaof' command"
        wait = "ERR slotproxy: WAIT is not supported through the proxy " \
            "(writes travel on shared connections)"
        assert c.call("WAIT", "0", "0") == wait
        # Inside MULTI: refused with the same text, as WAIT is, and the
        # transaction aborts.
        for cmd, refusal in ((("WAIT", "0", "0"), wait),
                             (("WAITAOF", "0", "0", "0"), waitaof)):
            assert c.call("MULTI") == b"OK"
            assert c.call(*cmd) == refusal
            assert c.call("EXEC") == "EXECABORT Transaction discarded " \
                "because of previous errors."
        assert c.call("PING") == b"PONG"


@test(timeout=60)
def test_cluster_myshardid(env):
    """CLUSTER MYSHARDID: 40 hex digits, stable, not the node id."""
    with env.client() as c:
        sid = c.call("CLUSTER", "MYSHARDID")
        assert re.fullmatch(rb"[0-9a-f]{40}", sid), sid
        assert c.call("CLUSTER", "MYSHARDID") == sid
        myid = c.call("CLUSTER", "MYID")
        assert sid != myid
        assert c.call("CLUSTER", "MYSHARDID", "x") == \
            "ERR wrong number of arguments for 'cluster|myshardid' command"


@test(timeout=60)
def test_info_cluster_replication_clients(env):
    """INFO has # Cluster (cluster_enabled:1, for redis-py's RedisCluster)
    and # Replication (role:master, for valkey-glide) and, in # Clients,
    blocked_clients; each section alone on request, in Redis's order."""
    with env.client() as c:
        full = c.call("INFO").decode()
        heads = re.findall(r"^# (\w+)", full, re.M)
        for s in ("Clients", "Replication", "Cluster", "Keyspace"):
            assert s in heads, heads
        assert heads.index("Replication") < heads.index("Cluster") < \
            heads.index("Keyspace"), heads
        assert "\r\ncluster_enabled:1\r\n" in full
        assert "\r\nrole:master\r\nconnected_slaves:0\r\n" in full
        cl = c.call("INFO", "cluster").decode()
        assert cl == "# Cluster\r\ncluster_enabled:1\r\n", repr(cl)
        rep = c.call("INFO", "REPLICATION").decode()
        assert rep.startswith("# Replication\r\nrole:master\r\n"), rep
        assert "# Cluster" not in rep
        assert blocked_clients(c) == 0
        assert info_field(c, "everything", "cluster_enabled") == "1"


# ------------------------------------------------ blocked clients, UNBLOCK

class Blocker:
    """A client running one blocking command in a thread; .reply holds
    its answer."""

    def __init__(self, proxy, *cmd, auth=None):
        self.c = proxy.client(timeout=30)
        if auth is not None:
            assert self.c.call("AUTH", *auth) == b"OK"
        self.id = self.c.call("CLIENT", "ID")
        self.reply = None
        self.cmd = cmd
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            self.reply = self.c.call(*self.cmd)
        except Exception as e:  # noqa: BLE001 (closed under it)
            self.reply = e

    def join(self):
        self.t.join(15)
        assert not self.t.is_alive(), "blocked client never answered"
        return self.reply

    def close(self):
        # shutdown first: a plain close leaves the connection open while
        # the thread still sits in recv on it.
        try:
            self.c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.c.close()


def unblock_round(p, adm, cmd, reason, expect):
    b = Blocker(p, *cmd)
    try:
        wait_until(lambda: blocked_clients(adm) == 1, 20,
                   "blocked_clients 1 (%s)" % (cmd,))
        args = ("CLIENT", "UNBLOCK", b.id) + ((reason,) if reason else ())
        assert adm.call(*args) == 1
        assert b.join() == expect, (cmd, b.reply)
        wait_until(lambda: blocked_clients(adm) == 0, 20, "blocked 0")
        # Unblocked already: 0, as Redis answers.
        assert adm.call("CLIENT", "UNBLOCK", b.id) == 0
        # The connection goes on: blocks again, answered by data.
        return b
    except BaseException:
        b.close()
        raise


@test(timeout=90)
def test_client_unblock(env):
    """CLIENT UNBLOCK <proxy client id> [TIMEOUT|ERROR] unblocks a client
    blocked on its pinned connection (whichever worker holds it), with
    Redis's answers: 1, and nil (TIMEOUT) or -UNBLOCKED (ERROR) for the
    blocked client; 0 for a client that is not blocked; Redis's errors for
    a bad reason or id. blocked_clients counts the blocked clients."""
    p = env.proxy
    with p.client() as adm:
        b = unblock_round(p, adm, ("BLPOP", "compat:ub:l", "0"), None, None)
        # Same connection, blocks again: the new block is found too.
        b.reply = None
        b.t = threading.Thread(target=b._run, daemon=True)
        b.cmd = ("BRPOP", "compat:ub:l", "0")
        b.t.start()
        wait_until(lambda: blocked_clients(adm) == 1, 20, "blocked again")
        assert adm.call("CLIENT", "UNBLOCK", b.id, "ERROR") == 1
        assert b.join() == UNBLOCKED
        wait_until(lambda: blocked_clients(adm) == 0, 20, "blocked 0")
        # ... and is an ordinary connection afterwards.
        assert b.c.call("LPUSH", "compat:ub:l", "x") == 1
        assert b.c.call("BLPOP", "compat:ub:l", "0") == \
            [b"compat:ub:l", b"x"]
        b.close()
        b = unblock_round(p, adm, ("BLPOP", "compat:ub:l", "0"), "timeout",
                          None)
        b.close()
        b = unblock_round(p, adm, ("XREAD", "BLOCK", "0", "STREAMS",
                                   "compat:ub:s", "$"), "TIMEOUT", None)
        b.close()
        b = unblock_round(p, adm, ("BZPOPMIN", "compat:ub:z", "0"), "error",
                          UNBLOCKED)
        b.close()
        # Not blocked, unknown, not a number, bad reason.
        me = adm.call("CLIENT", "ID")
        assert adm.call("CLIENT", "UNBLOCK", me) == 0
        assert adm.call("CLIENT", "UNBLOCK", "987654321") == 0
        assert adm.call("CLIENT", "UNBLOCK", "-1") == 0
        assert adm.call("CLIENT", "UNBLOCK", "x") == \
            "ERR value is not an integer or out of range"
        assert adm.call("CLIENT", "UNBLOCK", me, "later") == \
            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
        assert adm.call("CLIENT", "UNBLOCK", me, "timeout", "x") == \
            "ERR unknown subcommand or wrong number of arguments for " \
            "'UNBLOCK'. Try CLIENT HELP."
        assert blocked_clients(adm) == 0


@test(timeout=90)
def test_blocked_clients_count(env):
    """blocked_clients: blocking commands that return at once are not
    left counted; a blocked client that disconnects is uncounted; a
    command answered by data uncounts; several blocked clients add up
    over workers; CLIENT LIST flags a blocked client 'b'."""
    p = env.proxy
    with p.client() as adm:
        assert adm.call("RPUSH", "compat:bc:l", "a", "b") == 2
        assert adm.call("BLPOP", "compat:bc:l", "0") == [b"compat:bc:l", b"a"]
        assert adm.call("BLPOP", "compat:bc:l", "0.01") == \
            [b"compat:bc:l", b"b"]
        assert adm.call("BLPOP", "compat:bc:l", "0.01") is None
        assert blocked_clients(adm) == 0
        bs = [Blocker(p, "BLPOP", "compat:bc:%d" % i, "0") for i in range(4)]
        try:
            wait_until(lambda: blocked_clients(adm) == 4, 20, "4 blocked")
            lines = adm.call("CLIENT", "LIST").decode().split("\n")
            flags = {int(re.match(r"id=(\d+)", ln).group(1)):
                     re.search(r" flags=(\S+)", ln).group(1)
                     for ln in lines if ln}
            ids = [b.id for b in bs if b.id in flags]
            assert all(flags[i] == "b" for i in ids), (flags, ids)
            assert flags[adm.call("CLIENT", "ID")] == "N"
            bs[0].close()
            wait_until(lambda: blocked_clients(adm) == 3, 20, "3 blocked")
            assert adm.call("LPUSH", "compat:bc:1", "v") == 1
            assert bs[1].join() == [b"compat:bc:1", b"v"], bs[1].reply
            wait_until(lambda: blocked_clients(adm) == 2, 20, "2 blocked")
            # A blocking command queued in MULTI does not block.
            with p.client() as m:
                assert m.call("MULTI") == b"OK"
                assert m.call("BLPOP", "compat:bc:9", "0") == b"QUEUED"
                assert m.call("EXEC") == [None]
            assert blocked_clients(adm) == 2
        finally:
            for b in bs:
                b.close()
        wait_until(lambda: blocked_clients(adm) == 0, 20, "none blocked")


@test(timeout=60)
def test_client_unblock_admin_only(env):
    """CLIENT UNBLOCK is in Redis's @admin: admin users only."""
    p = env.new_proxy(extra="auth:\n  users:\n"
                      "    - {name: rw, password: rwpw, role: read-write}\n"
                      "    - {name: adm, password: admpw, role: admin}\n")
    with p.client() as rw, p.client() as adm:
        assert rw.call("AUTH", "rw", "rwpw") == b"OK"
        assert adm.call("AUTH", "adm", "admpw") == b"OK"
        b = Blocker(p, "BLPOP", "compat:adm:l", "0", auth=("rw", "rwpw"))
        try:
            wait_until(lambda: blocked_clients(adm) == 1, 20, "blocked")
            assert rw.call("CLIENT", "UNBLOCK", b.id) == \
                "NOPERM this user has no permissions to run the " \
                "'client|unblock' command"
            assert adm.call("CLIENT", "UNBLOCK", b.id) == 1
            assert b.join() is None
        finally:
            b.close()


# ------------------------------------------------------------------ arity

# Wrong arities (and near misses) of the commands the proxy answers
# itself; each must get the reply a standalone Redis gives.
LOCAL_WRONG_ARITY = [
    ("PING", "a", "b"), ("PING", "a", "b", "c"),
    ("ECHO",), ("ECHO", "a", "b"),
    ("SELECT",), ("SELECT", "0", "1"),
    ("RESET", "x"), ("READONLY", "x"), ("READWRITE", "x"), ("ASKING", "x"),
    ("ROLE", "x"), ("AUTH",),
    ("CLIENT",), ("CLIENT", "ID", "x"), ("CLIENT", "GETNAME", "x"),
    ("CLIENT", "SETNAME"), ("CLIENT", "SETNAME", "a", "b"),
    ("CLIENT", "INFO", "x"), ("CLIENT", "REPLY"),
    ("CLIENT", "REPLY", "on", "x"), ("CLIENT", "NO-EVICT"),
    ("CLIENT", "NO-EVICT", "on", "x"), ("CLIENT", "UNBLOCK"),
    ("CLIENT", "UNBLOCK", "1", "timeout", "x"), ("CLIENT", "KILL"),
    ("CLIENT", "PAUSE"), ("CLIENT", "UNPAUSE", "x"),
    ("CLIENT", "GETREDIR", "x"), ("CLIENT", "TRACKINGINFO", "x"),
    ("CLIENT", "CACHING"), ("CLIENT", "TRACKING"), ("CLIENT", "HELP", "x"),
    ("CLIENT", "NOSUCH"), ("client", "nosuch", "x"),
    ("COMMAND", "COUNT", "x"), ("COMMAND", "GETKEYS"),
    ("COMMAND", "NOSUCH"),
    ("SLOWLOG",), ("SLOWLOG", "LEN", "x"), ("SLOWLOG", "RESET", "x"),
    ("SLOWLOG", "NOSUCH"),
    ("CLUSTER",), ("CLUSTER", "KEYSLOT"), ("CLUSTER", "KEYSLOT", "a", "b"),
    ("CLUSTER", "INFO", "x"), ("CLUSTER", "MYID", "x"),
    ("CLUSTER", "SLOTS", "x"), ("CLUSTER", "NODES", "x"),
    ("CLUSTER", "SHARDS", "x"),
]


@test(timeout=60)
def test_local_arity_errors_match_redis(env):
    """Commands the proxy answers itself keep Redis's arity errors: each
    wrong form gets byte for byte what a standalone redis-server of the
    same version answers (PING x y z: -ERR wrong number of arguments for
    'ping' command)."""
    with harness.Standalone() as ref, ref.client() as rc, \
            env.client() as pc:
        diffs = []
        for cmd in LOCAL_WRONG_ARITY:
            want, got = rc.call(*cmd), pc.call(*cmd)
            if want != got:
                diffs.append((cmd, want, got))
        assert not diffs, "\n".join(repr(d) for d in diffs)
        assert pc.call("PING") == b"PONG" and pc.call("PING", "x") == b"x"


# ------------------------------------------------------ client libraries

@test(timeout=90)
def test_redis_py_cluster_client(env):
    """redis-py's RedisCluster (Debian's python3-redis) checks INFO for
    cluster_enabled:1, then reads CLUSTER SLOTS: through the proxy it sees
    one node owning every slot and sends everything there. SET/GET, MGET
    across slots (split by the library per slot), a pipeline, pub/sub."""
    try:
        from redis.cluster import RedisCluster
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        raise harness.Skip("python3-redis (with redis.cluster) not installed")
    p = env.proxy
    rc = RedisCluster(host=harness.HOST, port=p.port, socket_timeout=10)
    try:
        nodes = rc.get_nodes()
        assert [(n.host, n.port) for n in nodes] == \
            [(harness.HOST, p.port)], nodes
        assert rc.set("rpc:k", "v") is True
        assert rc.get("rpc:k") == b"v"
        keys = ["rpc:%d" % i for i in range(50)]
        for k in keys:
            rc.set(k, k)
        assert rc.mget_nonatomic(keys + ["rpc:nope"]) == \
            [k.encode() for k in keys] + [None]
        pl = rc.pipeline()
        for k in keys:
            pl.incr(k + ":n")
        assert pl.execute() == [1] * len(keys)
        ps = rc.pubsub()
        ps.subscribe("rpc:chan")
        msg = ps.get_message(timeout=5)
        assert msg and msg["type"] == "subscribe", msg
        # The count is the receiving node's subscribers only (the bus
        # carries the message to the others): delivery is what counts.
        rc.publish("rpc:chan", "hello")
        msg = ps.get_message(timeout=5)
        assert msg and msg["type"] == "message" and \
            msg["data"] == b"hello", msg
        ps.close()
        assert rc.delete(*(keys + [k + ":n" for k in keys] + ["rpc:k"])) == \
            2 * len(keys) + 1
    finally:
        rc.close()


def node_check(env, folder, module, script, ok):
    d = harness.npm_dir(folder, module)
    rc, out, err = harness.run(["node", os.path.join(d, script),
                        str(env.proxy.port)], timeout=90)
    assert rc == 0 and ok in out, out + err


@test(timeout=300)
def test_ioredis_cluster_client(env):
    """ioredis's Cluster client through the proxy presented as one node."""
    node_check(env, "ioredis", "ioredis", "cluster.js", "ioredis cluster ok")


@test(timeout=300)
def test_node_redis_v5_client(env):
    """node-redis v5 (RESP2): commands, MULTI, pipeline, pub/sub."""
    node_check(env, "node-redis", "redis", "check.js", "node-redis ok")


@test(timeout=300)
def test_valkey_glide_client(env):
    """valkey-glide's standalone client (RESP2) needs role:master in INFO
    replication; its PUBLISH reaches a subscriber of the proxy (glide
    itself subscribes only over RESP3)."""
    with env.client() as sub:
        assert sub.call("SUBSCRIBE", "gl:chan") == \
            [b"subscribe", b"gl:chan", 1]
        node_check(env, "glide", "@valkey/valkey-glide", "check.js",
                   "glide ok")
        assert sub.read() == [b"message", b"gl:chan", b"hello"]


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
