#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Batched socket I/O (issue 14): `io: io_uring` reads the sockets found
# readable in a loop turn with one io_uring_enter and writes every reply
# and request of the turn with one more; `io: epoll` keeps one read or
# writev per socket; `auto` picks io_uring where the kernel allows it.
# The whole suite runs in both modes in CI (.ci/run: the ASan run with
# the default, the -Werror run with SLOTPROXY_IO=epoll); these tests
# check the choice itself and the sequences that only batching makes
# possible: a client killed, or its backend failing, while its read or
# write sits in the same batch as others', batches that fill up, and
# large values through the batch's reads. Where io_uring cannot be used
# on the test machine (kernel.io_uring_disabled, a seccomp filter), the
# io_uring-only tests say so and skip; the mode checks still run.

import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, test, wait_until  # noqa: E402

_uring = {}
# The suite may run with SLOTPROXY_IO set (CI's epoll run): these tests
# choose the mode themselves.
NO_OVERRIDE = {"SLOTPROXY_IO": ""}


def info_server(c, field):
    for line in c.call("INFO", "server").decode().split("\r\n"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    raise AssertionError("no %s in INFO server" % field)


def uring_proxy(env, extra=""):
    """A proxy with io: io_uring, or None when io_uring cannot be used
    here (the proxy must then refuse to start, saying why)."""
    if _uring.get("unusable"):
        return None
    p = harness.Proxy([m.port for m in env.cluster.masters()],
                      extra="io: io_uring\n" + extra, env=NO_OVERRIDE)
    try:
        p.start()
    except harness.HarnessError:
        log = p.log_tail()
        harness.stop_proc(p.proc)
        assert "io_uring cannot be used" in log, log
        assert p.proc.returncode == 1, p.proc.returncode
        _uring["unusable"] = log.splitlines()[-1]
        harness.log("io_uring not usable here: %s" % _uring["unusable"])
        return None
    # Registered once it runs: the harness checks every registered
    # proxy's clean exit at the end.
    env.proxies.append(p)
    return p


@test
def test_io_mode_choice(env):
    seeds = [m.port for m in env.cluster.masters()]
    # epoll by config, and by the environment over a config's io_uring.
    for extra, penv in (("io: epoll", NO_OVERRIDE),
                        ("io: io_uring", {"SLOTPROXY_IO": "epoll"})):
        p = env.new_proxy(seeds, extra=extra, env=penv)
        with p.client() as c:
            assert info_server(c, "multiplexing_api") == "epoll"
            assert c.call("GET", "io:k") is None
        p.stop()
    # auto: io_uring exactly where an explicit io_uring starts.
    p = env.new_proxy(seeds, extra="io: auto", env=NO_OVERRIDE)
    with p.client() as c:
        auto = info_server(c, "multiplexing_api")
    p.stop()
    u = uring_proxy(env)
    if u is None:
        assert auto == "epoll", auto
    else:
        assert auto == "io_uring", auto
        with u.client() as c:
            assert info_server(c, "multiplexing_api") == "io_uring"
        with open(u.log) as f:
            assert "io io_uring)" in f.read()
        with u.client() as c:
            # A cross-slot MGET writes to every master in one batch (a
            # batch of one is made with the plain system call).
            keys = ["io:m:%d" % i for i in range(10)]
            for i in range(20):
                assert c.call("MGET", *keys) == [None] * 10
            # Published at the workers' next tick.
            wait_until(lambda: int(c.call("INFO", "proxy").decode().split(
                "io_uring_enters:")[1].split("\r\n")[0]) >= 20, 5,
                "io_uring_enters in INFO proxy")
        u.stop()
    # A bad value is refused, in the file and in the environment.
    bad = harness.Proxy(seeds, extra="io: kqueue")
    out = subprocess.run([harness.proxy_bin(), "-t", "-c", bad.conf],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=10)
    assert out.returncode != 0
    assert b"'io' must be auto, epoll or io_uring" in out.stdout, out.stdout
    ok = harness.Proxy(seeds)
    out = subprocess.run([harness.proxy_bin(), "-c", ok.conf],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=dict(os.environ, SLOTPROXY_IO="poll"),
                         timeout=10)
    assert out.returncode != 0
    assert b"SLOTPROXY_IO=poll: must be" in out.stdout, out.stdout
    # --dump-config shows the option.
    out = subprocess.run([harness.proxy_bin(), "--dump-config", "-c",
                          ok.conf], stdout=subprocess.PIPE, timeout=10)
    assert b"io: auto" in out.stdout, out.stdout


def pipelined(port, tag, n, results):
    """One connection: n SETs then n GETs of distinct keys, pipelined,
    all sent before any reply is read; records the mismatches."""
    with harness.Client(port, timeout=30) as c:
        out = []
        for i in range(n):
            out.append(harness.encode(("SET", "io:%s:%d" % (tag, i),
                                       "v%s-%d" % (tag, i))))
        for i in range(n):
            out.append(harness.encode(("GET", "io:%s:%d" % (tag, i))))
        c.sock.sendall(b"".join(out))
        bad = 0
        for i in range(n):
            if c.read() != b"OK":
                bad += 1
        for i in range(n):
            if c.read() != ("v%s-%d" % (tag, i)).encode():
                bad += 1
        results[tag] = bad


@test
def test_io_uring_many_clients_fill_batches(env):
    """80 connections pipelining at once: more readable sockets in a turn
    than one batch's scratch reads (64), so batches run and refill in
    the middle of a turn."""
    p = uring_proxy(env)
    if p is None:
        return
    results = {}
    threads = [threading.Thread(target=pipelined,
                                args=(p.port, "c%d" % t, 1000, results))
               for t in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 80, results
    assert all(v == 0 for v in results.values()), results


@test
def test_io_uring_large_values(env):
    """Values bigger than a scratch read and than a backend read chunk:
    the request continues in the client's own buffer, the reply across
    batches."""
    p = uring_proxy(env)
    if p is None:
        return
    with p.client(timeout=30) as c:
        for size in (16 * 1024 - 40, 16 * 1024, 100 * 1024, 4 << 20):
            v = os.urandom(size)
            assert c.call("SET", "io:big:%d" % size, v) == b"OK"
            assert c.call("GET", "io:big:%d" % size) == v
        # Several big ones pipelined on one connection.
        vals = [os.urandom(300 * 1024) for _ in range(5)]
        for i, v in enumerate(vals):
            c.send(("SET", "io:bigp:%d" % i, v))
        for i, v in enumerate(vals):
            c.send(("GET", "io:bigp:%d" % i))
        assert [c.read() for _ in vals] == [b"OK"] * len(vals)
        assert [c.read() for _ in vals] == vals


@test
def test_io_uring_close_in_same_turn(env):
    """A client closed by its output limit while more of its own input
    sits in the same read batch (the replies that push it over come in
    the batch's backend reads), and clients that vanish with requests in
    flight: nothing is read into or written from a closed client, and
    the proxy keeps serving the others."""
    p = uring_proxy(env, "clients:\n  output_limit: 256kb")
    if p is None:
        return
    with p.client() as c:
        assert c.call("SET", "io:close:v", "y" * 65536) == b"OK"
    burst = b"".join(harness.encode(("GET", "io:close:v"))
                     for _ in range(20))
    other = p.client()

    def closed_by_limit():
        """disconnects_output_limit, summed over workers (per tick)."""
        stats = other.call("INFO", "proxy").decode()
        return int(stats.split("disconnects_output_limit:")[1]
                   .split("\r\n")[0])
    for k in range(1, 11):
        victim = socket.create_connection((HOST, p.port), timeout=10)
        victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(200):
            try:
                victim.sendall(burst)
            except OSError:
                break       # reset by the proxy (or stuck 10 s)
            assert other.call("GET", "io:close:v") == b"y" * 65536
        # Kept open until the proxy closed it for its unread replies.
        wait_until(lambda: closed_by_limit() >= k, 20,
                   "victim %d closed by the output limit" % k)
        victim.close()
    bursts = b"".join(harness.encode(("GET", "io:close:%d" % i))
                      for i in range(200))
    for _ in range(30):
        s = socket.create_connection((HOST, p.port))
        s.sendall(bursts)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()     # RST, requests still at the backends
    assert other.call("SET", "io:close:after", "1") == b"OK"
    assert other.call("GET", "io:close:after") == b"1"

    def alone():
        text = other.call("INFO", "clients").decode()
        return "connected_clients:1\r\n" in text
    wait_until(alone, 10, "closed clients to be gone")
    assert closed_by_limit() == 10
    other.close()


@test
def test_io_uring_slow_reader_and_backend_loss(env):
    """A client that never reads fills its socket (the batched write
    comes back short, then EAGAIN, and the write event takes over), while
    another keeps being served; then a backend connection is killed from
    the server side while requests are batched to it."""
    p = uring_proxy(env)
    if p is None:
        return
    with p.client() as c:
        assert c.call("SET", "io:slow", "x" * 65536) == b"OK"
    slow = p.client()
    slow.sock.sendall(b"".join(harness.encode(("GET", "io:slow",))
                               for _ in range(400)))
    with p.client() as c:
        for i in range(50):
            assert c.call("SET", "io:fast:%d" % i, i) == b"OK"
        # Now read it all: the write event finishes what the batch began.
        got = [slow.read() for _ in range(400)]
        assert all(g == b"x" * 65536 for g in got)
        slow.close()
        # Kill the proxy's connections on every master.
        for m in env.cluster.masters():
            for line in m.call("CLIENT", "LIST").decode().splitlines():
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if f.get("cmd") not in ("client|list", "client"):
                    m.call("CLIENT", "KILL", "ID", f["id"])
        # The next requests fail or succeed cleanly, then all succeed.
        def ok():
            return c.call("GET", "io:fast:7") == b"7"
        wait_until(ok, 10, "the proxy to reconnect")
