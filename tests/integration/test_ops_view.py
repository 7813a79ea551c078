#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# One view over all workers (issue 13): SLOWLOG GET/LEN/RESET and CLIENT
# LIST answered from any connection cover every worker's clients and slow
# requests (the asking worker collects each worker's part through its
# mailbox, view.c); a client that leaves while its view is collected, a
# reload and a shutdown in the middle are safe. And cluster.read_from:
# replica reads only from replicas, prefer-replica falls back to masters.

import os
import re
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, HOST, test, wait_until  # noqa: E402

WORKERS = "workers: 4\n"
SLOW = "slowlog:\n  threshold: 0\n  max_len: 100\n"


def list_ids(c):
    """Client ids in the order CLIENT LIST shows them."""
    text = c.call("CLIENT", "LIST").decode()
    return [int(re.match(r"id=(\d+) ", ln).group(1))
            for ln in text.split("\n") if ln]


def worker_clients(c):
    info = c.call("INFO", "clients").decode()
    return int(re.search(r"worker_clients:(\d+)", info).group(1))


def spread_clients(p, n):
    """n clients of p, asserting they are not all on one worker (the
    proxy spreads connections over its workers)."""
    cs = [p.client() for _ in range(n)]
    assert any(worker_clients(c) < n for c in cs), "one worker took all"
    return cs


@test(timeout=60)
def test_view_client_list_all_workers(env):
    """CLIENT LIST from any connection lists every worker's clients, by
    id; a client that leaves is gone from every connection's list."""
    env.cluster
    p = env.new_proxy(extra=WORKERS)
    cs = spread_clients(p, 8)
    try:
        ids = [c.call("CLIENT", "ID") for c in cs]
        for i, c in enumerate(cs):
            assert c.call("CLIENT", "SETNAME", "view-%d" % i) == b"OK"
        for c in cs:
            got = list_ids(c)
            assert got == sorted(got), got
            assert set(ids) <= set(got), (ids, got)
        text = cs[0].call("CLIENT", "LIST").decode()
        for i, cid in enumerate(ids):
            assert re.search(r"id=%d .* name=view-%d " % (cid, i), text), text
        for c in cs[4:]:
            c.close()
        gone = set(ids[4:])
        wait_until(lambda: all(not gone & set(list_ids(c)) and
                               set(ids[:4]) <= set(list_ids(c))
                               for c in cs[:4]), 20, "closed clients gone")
    finally:
        for c in cs:
            c.close()


@test(timeout=60)
def test_view_slowlog_all_workers(env):
    """SLOWLOG LEN sums every worker's ring, GET merges them newest first
    by a proxy-wide id, RESET from one connection empties them all."""
    env.cluster
    p = env.new_proxy(extra=WORKERS + SLOW)
    cs = spread_clients(p, 8)
    try:
        assert cs[0].call("SLOWLOG", "RESET") == b"OK"
        keys = []
        for r in range(2):
            for i, c in enumerate(cs):
                k = "view:sl:%d:%d" % (r, i)
                assert c.call("SET", k, "v") == b"OK"
                keys.append(k.encode())
        for c in cs:
            assert c.call("SLOWLOG", "LEN") == 16
        got = cs[3].call("SLOWLOG", "GET", "-1")
        assert [e[3][1] for e in got] == keys[::-1], got
        ids = [e[0] for e in got]
        assert ids == sorted(set(ids), reverse=True), ids
        assert cs[5].call("SLOWLOG", "GET") == got[:10]
        assert cs[6].call("SLOWLOG", "GET", "3") == got[:3]
        assert cs[7].call("SLOWLOG", "GET", "0") == []
        assert cs[1].call("SLOWLOG", "RESET") == b"OK"
        for c in cs:
            assert c.call("SLOWLOG", "LEN") == 0
            assert c.call("SLOWLOG", "GET", "-1") == []
        # Ids go on after a reset, proxy-wide.
        assert cs[2].call("SET", keys[0], "v") == b"OK"
        assert cs[4].call("SLOWLOG", "GET")[0][0] > ids[0]
        assert cs[0].call("DEL", *keys) == 16
    finally:
        for c in cs:
            c.close()


@test(timeout=60)
def test_view_one_worker(env):
    """workers: 1 answers at once, as before."""
    env.cluster
    p = env.new_proxy(extra="workers: 1\n" + SLOW)
    with p.client() as a, p.client() as b:
        assert a.call("SLOWLOG", "RESET") == b"OK"
        assert b.call("SET", "view:one", "v") == b"OK"
        assert a.call("SLOWLOG", "LEN") == 1
        assert a.call("SLOWLOG", "GET")[0][3] == [b"SET", b"view:one", b"v"]
        assert set(list_ids(a)) == {a.call("CLIENT", "ID"),
                                    b.call("CLIENT", "ID")}
        assert a.call("SLOWLOG", "RESET") == b"OK"
        assert b.call("SLOWLOG", "LEN") == 0


@test(timeout=60)
def test_view_pipelined_and_errors(env):
    """Views held for other workers keep the pipeline's order; argument
    errors are answered at once."""
    env.cluster
    p = env.new_proxy(extra=WORKERS + SLOW)
    with p.client() as c:
        me = c.call("CLIENT", "ID")
        assert c.call("SLOWLOG", "RESET") == b"OK"
        assert c.call("SET", "view:pl", "1") == b"OK"
        r = c.pipeline([("CLIENT", "LIST"), ("CLIENT", "LIST"),
                        ("CLIENT", "LIST"), ("SLOWLOG", "LEN"), ("PING",),
                        ("SLOWLOG", "GET", "1"), ("GET", "view:pl"),
                        ("SLOWLOG", "GET", "x"), ("SLOWLOG", "GET", "-2"),
                        ("CLIENT", "ID")])
        for text in r[:3]:
            assert b"id=%d " % me in text, r[:3]
        assert r[3] == 1 and r[4] == b"PONG", r
        assert r[5][0][3][:2] == [b"SET", b"view:pl"], r[5]
        assert r[6] == b"1", r
        for e in r[7:9]:
            assert isinstance(e, Error) and "count should be greater" in e.msg, e
        assert r[9] == me
        # Inside MULTI the proxy queues them like any command.
        assert c.call("MULTI") == b"OK"
        q = c.call("SLOWLOG", "LEN")
        c.call("DISCARD")
        assert q == b"QUEUED" or isinstance(q, Error), q
        c.call("DEL", "view:pl")


def hammer(port, stop, errors):
    """Ask for views from fresh connections, leaving before the answer
    half of the time, until stop is set."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            s.sendall(b"SLOWLOG GET -1\r\nCLIENT LIST\r\nSLOWLOG LEN\r\n"
                      b"SLOWLOG RESET\r\n")
            if n % 2:
                s.recv(1)
            s.close()
        except OSError as e:
            if not stop.is_set():
                errors.append(e)


def start_hammers(p, k=4):
    stop, errors = threading.Event(), []
    ts = [threading.Thread(target=hammer, args=(p.port, stop, errors),
                           daemon=True) for _ in range(k)]
    for t in ts:
        t.start()
    return stop, errors, ts


def sanitizer_report(p):
    with open(p.log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return [w for w in ("AddressSanitizer", "LeakSanitizer",
                        "runtime error:") if w in text]


@test(timeout=90)
def test_view_clients_leave_reload_and_stop(env):
    """Clients that close while their view is collected, reloads that
    resize every ring meanwhile, then a shutdown with views in flight:
    the proxy keeps answering, and exits cleanly."""
    env.cluster
    p = env.new_proxy(extra=WORKERS + SLOW)
    base = open(p.conf).read()
    stop, errors, ts = start_hammers(p)
    try:
        with p.client() as c:
            for i in range(10):
                n = 100 if i % 2 else 7
                with open(p.conf, "w") as f:
                    f.write(base.replace("max_len: 100", "max_len: %d" % n))
                os.kill(p.pid, signal.SIGHUP)
                for _ in range(50):
                    assert c.call("SET", "view:h", "v") == b"OK"
                    assert isinstance(c.call("SLOWLOG", "LEN"), int)
                    assert b"id=" in c.call("CLIENT", "LIST")
            got = c.call("SLOWLOG", "GET", "-1")
            assert isinstance(got, list), got
            c.call("DEL", "view:h")
    except BaseException:
        stop.set()
        raise
    assert not errors, errors[:3]
    # Stop with the hammers still going.
    p.stop()
    stop.set()
    for t in ts:
        t.join(10)
    assert p.proc.returncode == 0, (p.proc.returncode, p.log_tail())
    assert not sanitizer_report(p), p.log_tail(80)


# ------------------------------------------------------------ read_from

def cmdstat_calls(node, cmd):
    info = node.call("INFO", "commandstats").decode()
    m = re.search(r"^cmdstat_%s:calls=(\d+)" % cmd, info, re.M)
    return int(m.group(1)) if m else 0


def reads_by_role(cl, c, keys):
    """GET every key through c: (replies, GETs the replicas served, GETs
    the masters served)."""
    before = {n.port: cmdstat_calls(n, "get") for n in cl.nodes
              if n.alive()}
    got = c.pipeline([("GET", k) for k in keys])
    after = {n.port: cmdstat_calls(n, "get") for n in cl.nodes
             if n.alive()}
    masters = cl.masters()
    diff = {port: after[port] - before[port] for port in after}
    return (got,
            sum(v for port, v in diff.items()
                if port not in [m.port for m in masters]),
            sum(diff.get(m.port, 0) for m in masters))


def reload_conf(p, text):
    with open(p.log, encoding="utf-8", errors="replace") as f:
        n = f.read().count("reload: configuration from")
    with open(p.conf, "w") as f:
        f.write(text)
    os.kill(p.pid, signal.SIGHUP)

    def done():
        with open(p.log, encoding="utf-8", errors="replace") as f:
            return f.read().count("reload: configuration from") > n
    wait_until(done, 20, "reload applied")


@test(timeout=180)
def test_read_from_replica_only_and_prefer(env):
    """read_from: replica serves reads from replicas only: with the
    slot's replica down, its reads fail with a clear error (writes and
    the other slots go on); prefer-replica sends them to the master."""
    cl = harness.Cluster(3, 1, name="view-readfrom")
    try:
        cl.start(40)
        p = harness.Proxy([m.port for m in cl.masters()])
        env.proxies.append(p)
        p.cluster_option("read_from: replica")
        p.start()
    except BaseException:
        cl.stop()
        raise
    try:
        keys = ["view:rf:%d" % i for i in range(30)]
        vals = [k.encode() for k in keys]
        with p.client() as c:
            assert c.pipeline([("SET", k, k) for k in keys]) == [b"OK"] * 30
            # Replicas join the map once they replicated something.
            wait_until(lambda: reads_by_role(cl, c, keys) == (vals, 30, 0),
                       20, "every read on a replica")
            victim = cl.masters()[0]
            rep = cl.replicas_of(victim)[0]
            vkeys = [k for k in keys if cl.node_for_key(k) is victim]
            okeys = [k for k in keys if k not in vkeys]
            assert vkeys and okeys
            rep.kill()

            def refused():
                got = c.pipeline([("GET", k) for k in vkeys])
                return all(isinstance(e, Error) and e.startswith(
                    "ERR slotproxy: no replica in sync serves slot ")
                    for e in got)
            wait_until(refused, 15, "reads of the dead replica's slots "
                       "refused")
            got = c.call("GET", vkeys[0])
            assert got == ("ERR slotproxy: no replica in sync serves "
                                "slot %d (cluster.read_from: replica reads "
                                "from replicas only)" %
                                harness.keyslot(vkeys[0])), got
            # MGET across slots: the refused fragment fails it.
            assert isinstance(c.call("MGET", vkeys[0], okeys[0]), Error)
            assert c.call("SET", vkeys[0], vkeys[0]) == b"OK"
            assert reads_by_role(cl, c, okeys) == (
                [k.encode() for k in okeys], len(okeys), 0)
            # prefer-replica: the master serves what no replica can.
            base = open(p.conf).read()
            reload_conf(p, base.replace("read_from: replica",
                                        "read_from: prefer-replica"))
            got, on_rep, on_master = reads_by_role(cl, c, keys)
            assert got == vals, got
            assert (on_rep, on_master) == (len(okeys), len(vkeys)), \
                (on_rep, on_master)
            # And back: refused again, at once.
            reload_conf(p, base)
            assert refused()
            c.call("DEL", *keys)
    finally:
        p.stop()
        cl.stop()


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
