#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Connections over workers (issue 14): worker 0 accepts on every listener
# (TCP, unix, TLS) and hands each new connection to the worker with the
# fewest, so a few long-lived connections split evenly (the kernel's
# SO_REUSEPORT hash did not), and the count follows connections that
# close, whatever closes them (the client, max_clients, a failed TLS
# handshake, a close before the worker took the connection). Which worker
# serves a connection: INFO proxy's worker_id on it; how many each worker
# has: /metrics slotproxy_worker_connections{worker}. No timing: each
# check waits for the state it expects.

import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, test, wait_until  # noqa: E402


def info_field(c, section, field):
    text = c.call("INFO", section).decode()
    for line in text.split("\r\n"):
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError("no %s in INFO %s: %r" % (field, section, text))


def worker_of(c):
    return info_field(c, "proxy", "worker_id")


def wrap(sock):
    """A harness Client over an already connected socket."""
    c = harness.Client.__new__(harness.Client)
    c.port = None
    c.sock = sock
    c.f = sock.makefile("rb", buffering=1 << 16)
    return c


def wait_alone(p, mport=None, workers=4):
    """Wait until the proxy holds no connection but a probe's own (earlier
    ones closed: a close is seen by the proxy at its own pace), and
    return the open probe: the first connection of a test. With mport,
    first wait for no connection at all, so that the probe lands on
    worker 1 (the first after the acceptor)."""
    if mport is None:
        probe = p.client()
        wait_until(lambda: info_field(probe, "clients", "connected_clients")
                   == 1, 20, "earlier connections to be closed")
        return probe
    # The gauges are published per tick and may predate the close of a
    # connection the acceptor still counts (the harness's start-up PING):
    # a probe that lands elsewhere than worker 1 tries again.
    got = {}

    def probe_on_worker_1():
        wait_per_worker(mport, [0] * workers, "no connection left")
        c = p.client()
        if info_field(c, "clients", "connected_clients") == 1 and \
                worker_of(c) == 1:
            got["probe"] = c
            return True
        c.close()
        return False
    wait_until(probe_on_worker_1, 30, "a probe alone, on worker 1")
    return got["probe"]


def split(conns, workers):
    per = [0] * workers
    for c in conns:
        per[worker_of(c)] += 1
    return per


def close_all(conns):
    for c in conns:
        c.close()


def metrics_proxy(env, workers, extra=""):
    """(proxy, metrics port) with the given workers and /metrics on."""
    mport = harness.free_port()
    p = env.new_proxy(extra="workers: %d\nmetrics:\n  listen: [%s:%d]\n%s" %
                      (workers, HOST, mport, extra))
    return p, mport


def per_worker(mport, workers):
    """slotproxy_worker_connections of each worker (published per tick)."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport),
                                timeout=5) as r:
        text = r.read().decode()
    per = [None] * workers
    for line in text.splitlines():
        if line.startswith("slotproxy_worker_connections{worker=\""):
            w = int(line.split('"')[1])
            per[w] = int(line.rsplit(" ", 1)[1])
    assert None not in per, text
    return per


def wait_per_worker(mport, want, what):
    """Wait until the gauges equal want (a list), and return them."""
    seen = []

    def ok():
        seen[:] = per_worker(mport, len(want))
        return seen == want
    try:
        wait_until(ok, 20, what)
    except harness.HarnessError:
        raise AssertionError("%s: gauges %s, want %s" % (what, seen, want))
    return seen


def proxy_fds(p):
    return len(os.listdir("/proc/%d/fd" % p.pid))


@test(timeout=90)
def test_eight_then_twelve_connections_even_over_four_workers(env):
    p, mport = metrics_proxy(env, 4)
    conns = [wait_alone(p)]
    conns += [p.client() for _ in range(7)]
    try:
        assert split(conns, 4) == [2, 2, 2, 2], split(conns, 4)
        wait_per_worker(mport, [2, 2, 2, 2], "8 connections, 2 each")
        for c in conns:
            assert info_field(c, "clients", "worker_clients") == 2
            assert info_field(c, "clients", "connected_clients") == 8
        conns += [p.client() for _ in range(4)]
        assert split(conns, 4) == [3, 3, 3, 3], split(conns, 4)
        wait_per_worker(mport, [3, 3, 3, 3], "12 connections, 3 each")
        # Requests work on every connection, whichever worker has it.
        for i, c in enumerate(conns):
            assert c.call("SET", "bal:%d" % i, str(i)) == b"OK"
            assert c.call("GET", "bal:%d" % i) == str(i).encode()
    finally:
        close_all(conns)


@test(timeout=90)
def test_new_connections_fill_the_emptiest_worker(env):
    p, mport = metrics_proxy(env, 4)
    conns = [wait_alone(p)]
    conns += [p.client() for _ in range(11)]
    try:
        by = {w: [c for c in conns if worker_of(c) == w] for w in range(4)}
        # Worker 2 loses two, worker 0 one: 2/3/1/3.
        gone = by[2][:2] + by[0][:1]
        close_all(gone)
        conns = [c for c in conns if c not in gone]
        wait_per_worker(mport, [2, 3, 1, 3], "the three closes")
        c = p.client()
        conns.append(c)
        assert worker_of(c) == 2
        c = p.client()
        conns.append(c)
        # A tie between workers 0 and 2: either, never 1 or 3.
        assert worker_of(c) in (0, 2)
        conns.append(p.client())
        assert split(conns, 4) == [3, 3, 3, 3], split(conns, 4)
        wait_per_worker(mport, [3, 3, 3, 3], "refilled")
    finally:
        close_all(conns)


def churn(port, n, errors):
    """n connections closed at once, each a different way: before the
    proxy can read (still in an inbox), with a reset, after a request.
    What fails goes to errors."""
    try:
        churn_once(port, n)
    except Exception as e:  # noqa: BLE001 (reported by the test)
        errors.append(e)


def churn_once(port, n):
    for i in range(n):
        s = socket.create_connection((HOST, port), timeout=10)
        if i % 3 == 1:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
        elif i % 3 == 2:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
        s.close()


@test(timeout=120)
def test_connect_close_burst_leaks_nothing(env):
    p, mport = metrics_proxy(env, 4)
    probe = wait_alone(p, mport)
    try:
        wait_per_worker(mport, [0, 1, 0, 0], "the probe alone")
        base = proxy_fds(p)
        # Two threads, so that hand-offs meet closes in every order.
        errors = []
        ts = [threading.Thread(target=churn, args=(p.port, 250, errors))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not any(t.is_alive() for t in ts) and not errors, errors
        # Every socket closed, every count given back.
        wait_until(lambda: info_field(probe, "clients", "connected_clients")
                   == 1, 20, "the burst's connections to be closed")
        wait_until(lambda: proxy_fds(p) <= base + 4, 20,
                   "the proxy's descriptors back near %d" % base)
        wait_per_worker(mport, [0, 1, 0, 0], "the probe alone again")
        # The balance counts did not drift: 8 more still split evenly.
        conns = [p.client() for _ in range(7)]
        try:
            assert split(conns + [probe], 4) == [2, 2, 2, 2]
        finally:
            close_all(conns)
    finally:
        probe.close()


@test(timeout=90)
def test_max_clients_refusals_give_the_count_back(env):
    p, mport = metrics_proxy(env, 4, "clients:\n  max_clients: 5\n")
    probe = wait_alone(p, mport)
    conns = [p.client() for _ in range(4)]
    try:
        for _ in range(6):
            with p.client() as c:
                assert c.read() == harness.Error(
                    "ERR max number of clients reached")
        wait_per_worker(mport, [1, 2, 1, 1], "five clients")
        close_all(conns)
        wait_until(lambda: info_field(probe, "clients", "connected_clients")
                   == 1, 20, "the four closes")
        # Room for four again, and they spread as before.
        conns = [p.client() for _ in range(4)]
        assert split(conns + [probe], 4) == [1, 2, 1, 1]
        wait_per_worker(mport, [1, 2, 1, 1], "five clients again")
    finally:
        close_all(conns + [probe])


def make_cert(name):
    if subprocess.run(["which", "openssl"], stdout=subprocess.DEVNULL
                      ).returncode != 0:
        raise harness.Skip("openssl not installed")
    d = os.path.join(harness.tmp_root(), name)
    os.makedirs(d, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", "k.pem", "-out", "c.pem"], cwd=d, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return os.path.join(d, "c.pem"), os.path.join(d, "k.pem")


@test(timeout=120)
def test_tls_connections_split_and_failed_handshakes_uncounted(env):
    cert, key = make_cert("bal-certs")
    tport = harness.free_port()
    p, mport = metrics_proxy(env, 4, (
        "tls:\n  listen: [%s:%d]\n  cert: %s\n  key: %s\n" % (
            HOST, tport, cert, key)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def tls_client():
        raw = socket.create_connection((HOST, tport), timeout=10)
        return wrap(ctx.wrap_socket(raw))
    probe = wait_alone(p, mport)
    conns = []
    try:
        # Handshakes that fail (plain RESP on the TLS port) or never end
        # (closed half-way): each connection is given back.
        for i in range(20):
            s = socket.create_connection((HOST, tport), timeout=10)
            if i % 2 == 0:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                try:
                    s.recv(100)     # the proxy's alert, or a reset
                except ConnectionResetError:
                    pass
            s.close()
        wait_until(lambda: info_field(probe, "clients", "connected_clients")
                   == 1, 20, "the failed handshakes to be closed")
        wait_per_worker(mport, [0, 1, 0, 0], "the probe alone")
        conns = [tls_client() for _ in range(7)]
        # The plain probe and the 7 TLS connections: 2 each.
        assert split(conns + [probe], 4) == [2, 2, 2, 2]
        for c in conns:
            assert c.call("PING") == b"PONG"
    finally:
        close_all(conns + [probe])


@test(timeout=60)
def test_unix_socket_connections_split_over_workers(env):
    # Before, worker 0 alone listened on a unix socket: all 8 there.
    path = os.path.join(harness.tmp_root(), "bal-%d.sock" % os.getpid())
    p = harness.Proxy([m.port for m in env.cluster.masters()],
                      extra="workers: 4")
    with open(p.conf) as f:
        text = f.read()
    with open(p.conf, "w") as f:
        f.write(text.replace("listen:\n", "listen:\n  - unix:%s\n" % path,
                             1))
    env.proxies.append(p)
    p.start()

    def unix_client():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        return wrap(s)
    probe = wait_alone(p)
    conns = [unix_client() for _ in range(7)]
    try:
        assert split(conns + [probe], 4) == [2, 2, 2, 2]
        for c in conns:
            assert c.call("PING") == b"PONG"
    finally:
        close_all(conns + [probe])


def reload(p, text):
    """Write text as p's config, SIGHUP, wait until it is applied."""
    def count():
        with open(p.log, errors="replace") as f:
            return f.read().count("reload: configuration from")
    n = count()
    with open(p.conf, "w") as f:
        f.write(text)
    os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: count() > n, 20, "reload applied")


@test(timeout=90)
def test_reload_with_connections_keeps_balance(env):
    p, mport = metrics_proxy(env, 4)
    with open(p.conf) as f:
        base = f.read()
    conns = [wait_alone(p)]
    conns += [p.client() for _ in range(7)]
    try:
        # A reload that adds an address: worker 0 opens it, connections
        # stay where they are, and new ones (either port) keep the split.
        port2 = harness.free_port()
        reload(p, base.replace("listen:\n", "listen:\n  - %s:%d\n" %
                               (HOST, port2), 1))
        for c in conns:
            assert c.call("PING") == b"PONG"
        # Worker 0 opens it at its next turn: until then a connect is
        # refused (and never reaches the proxy, so the counts hold).
        extra = []
        wait_until(lambda: extra.append(harness.Client(port2)) or True, 20,
                   "the new address to accept")
        extra.append(harness.Client(port2))
        extra += [p.client() for _ in range(2)]
        conns += extra
        assert split(conns, 4) == [3, 3, 3, 3], split(conns, 4)
        wait_per_worker(mport, [3, 3, 3, 3], "12 after the reload")
        # And a reload that drops it: its clients stay, its port refuses.
        reload(p, base)
        for c in conns:
            assert c.call("PING") == b"PONG"
        wait_until(lambda: socket.socket().connect_ex((HOST, port2)) != 0,
                   20, "the dropped address to refuse")
        conns.append(p.client())
        assert worker_of(conns[-1]) in range(4)
    finally:
        close_all(conns)


@test(timeout=90)
def test_stop_during_connect_burst_is_clean(env):
    # Connections handed over as the workers stop are closed, not leaked
    # (the harness checks every proxy's exit: status 0, no ASan report).
    p, _ = metrics_proxy(env, 4)
    stop = threading.Event()
    made = [0, 0]

    def flood(k):
        while not stop.is_set():
            try:
                socket.create_connection((HOST, p.port), timeout=10).close()
            except OSError:
                return
            made[k] += 1
    ts = [threading.Thread(target=flood, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    try:
        wait_until(lambda: min(made) >= 50, 20, "the flood to be accepted")
        harness.stop_proc(p.proc)
        assert p.proc.returncode == 0, p.log_tail()
        tail = p.log_tail(400)
        assert "Sanitizer" not in tail and "runtime error:" not in tail, tail
    finally:
        stop.set()
        for t in ts:
            t.join(10)


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
