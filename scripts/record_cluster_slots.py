#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Records raw CLUSTER SLOTS replies from a real Redis Cluster into
# tests/unit/data/slotmap/, so check_slotmap parses the exact bytes a server
# sends (redis-cli would reformat them). Starts 3 masters and 3 replicas on
# free loopback ports in a temporary directory, joins them with
# `redis-cli --cluster create --cluster-replicas 1`, and stops every
# redis-server it started by PID on exit, also on error or signal.
#
# Captures (all asked of the first node, on 127.0.0.1):
#   three_masters.resp        default endpoints (IPs), RESP2
#   three_masters_resp3.resp  the same after HELLO 3 (metadata is a map)
#   unknown_endpoint.resp     cluster-preferred-endpoint-type unknown-endpoint
#   hostname.resp             cluster-announce-hostname on every node and
#                             cluster-preferred-endpoint-type hostname
#   hostname_missing.resp     the same before the last node announced its
#                             hostname: its endpoint is "?"
#   partial.resp              after CLUSTER DELSLOTSRANGE 0 99 on that node
# and README.txt describing the cluster (ports, ids, ranges) that the
# expectations in tests/unit/check_slotmap.c were written from: after
# re-recording, update those expectations from the new README.txt.
#
# Usage: scripts/record_cluster_slots.py [output-dir]

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NODES = 6
HOST = "127.0.0.1"
OUT_DEFAULT = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "tests", "unit", "data", "slotmap"))
DELSLOTS = (0, 99)


def port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_cluster_ports(n):
    """n distinct free ports whose cluster bus ports (+10000) are free."""
    ports = []
    for _ in range(1000):
        if len(ports) == n:
            return ports
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        if (port + 10000 <= 65535 and port not in ports
                and port + 10000 not in ports and port - 10000 not in ports
                and port_is_free(port + 10000)):
            ports.append(port)
    raise RuntimeError("could not find %d free port pairs" % n)


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """A raw RESP connection that keeps the exact bytes of each reply."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), 2)
        self.sock.settimeout(5)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk

    def _line_end(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._need(len(self.buf) + 1)

    def _value(self, pos):
        """Decode the value at pos; returns (value, end position)."""
        end = self._line_end(pos)
        kind, head = self.buf[pos:pos + 1], self.buf[pos + 1:end]
        pos = end + 2
        if kind in (b"+", b"-"):
            v = head.decode()
            return (RuntimeError(v) if kind == b"-" else v), pos
        if kind == b":":
            return int(head), pos
        if kind == b"$":
            n = int(head)
            if n < 0:
                return None, pos
            self._need(pos + n + 2)
            return self.buf[pos:pos + n], pos + n + 2
        if kind in (b"*", b"%", b"~", b">"):
            n = int(head) * (2 if kind == b"%" else 1)
            items = []
            for _ in range(max(n, 0)):
                v, pos = self._value(pos)
                items.append(v)
            return items, pos
        if kind == b"_":
            return None, pos
        raise RuntimeError("unexpected reply type %r" % kind)

    def call_raw(self, *args):
        """Send one command; returns (decoded reply, raw reply bytes)."""
        self.sock.sendall(encode(*args))
        v, end = self._value(0)
        raw, self.buf = self.buf[:end], self.buf[end:]
        if isinstance(v, RuntimeError):
            raise RuntimeError("%s: %s" % (b" ".join(
                a if isinstance(a, bytes) else str(a).encode()
                for a in args).decode(), v))
        return v, raw

    def call(self, *args):
        return self.call_raw(*args)[0]


def answers_ping(port, proc):
    """True once the server proc listening on port answers PING; raises
    if it exited."""
    if proc.poll() is not None:
        raise RuntimeError("server on %d exited (%d)"
                           % (port, proc.returncode))
    try:
        c = Conn(port)
    except OSError:
        return False
    try:
        return c.call("PING") == "PONG"
    finally:
        c.close()


class Cluster:
    def __init__(self):
        self.tmpdir = tempfile.mkdtemp(prefix="sp-slots-")
        self.procs = []
        self.ports = []

    def start(self):
        self.ports = free_cluster_ports(NODES)
        for port in self.ports:
            d = os.path.join(self.tmpdir, str(port))
            os.mkdir(d)
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", HOST,
                 "--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(d, "nodes.conf"),
                 "--cluster-node-timeout", "5000",
                 "--dir", d, "--save", "", "--appendonly", "no",
                 "--logfile", os.path.join(d, "redis.log")],
                stdin=subprocess.DEVNULL))
        for port, proc in zip(self.ports, self.procs):
            wait_for(lambda: self._pings(port, proc), "node %d up" % port)
        subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + ["%s:%d" % (HOST, p) for p in self.ports]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            timeout=60)

    def _pings(self, port, proc):
        return answers_ping(port, proc)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


def slots_settled(ports):
    """Every node reports the same three ranges, each with one replica."""
    views = []
    for port in ports:
        c = Conn(port)
        try:
            if b"cluster_state:ok" not in c.call("CLUSTER", "INFO"):
                return False
            slots = c.call("CLUSTER", "SLOTS")
        finally:
            c.close()
        view = sorted((r[0], r[1], tuple(sorted((n[0], n[1], n[2])
                                               for n in r[2:])))
                      for r in slots)
        if len(view) != 3 or any(len(r[2]) != 2 for r in view):
            return False
        views.append(view)
    return all(v == views[0] for v in views)


def endpoints(reply):
    return [n[0] for r in reply for n in r[2:]]


def describe(reply):
    lines = []
    for r in reply:
        lines.append("  slots %d-%d" % (r[0], r[1]))
        for i, n in enumerate(r[2:]):
            meta = n[3] if len(n) > 3 else []
            lines.append("    %s %r:%d id %s meta %r" % (
                "master " if i == 0 else "replica",
                None if n[0] is None else n[0].decode(), n[1],
                n[2].decode() if len(n) > 2 else "-",
                [m.decode() if isinstance(m, bytes) else m for m in meta]))
    return lines


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT_DEFAULT
    cluster = Cluster()
    atexit.register(cluster.stop)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))

    cluster.start()
    wait_for(lambda: slots_settled(cluster.ports), "cluster to settle")
    os.makedirs(out, exist_ok=True)
    captures = {}
    first = cluster.ports[0]
    c = Conn(first)

    def capture(name):
        v, raw = c.call_raw("CLUSTER", "SLOTS")
        with open(os.path.join(out, name), "wb") as f:
            f.write(raw)
        captures[name] = v

    capture("three_masters.resp")
    version = c.call("INFO", "server").decode().split("redis_version:")[1]
    version = version.split()[0]

    c.call("HELLO", "3")
    capture("three_masters_resp3.resp")
    c.call("HELLO", "2")

    c.call("CONFIG", "SET", "cluster-preferred-endpoint-type",
           "unknown-endpoint")
    capture("unknown_endpoint.resp")

    def set_hostname(i):
        n = Conn(cluster.ports[i])
        n.call("CONFIG", "SET", "cluster-announce-hostname",
               "node%d.sp.test" % (i + 1))
        n.close()

    # Hostnames travel in cluster bus pings; until one arrives the asked
    # node reports "?" for that peer. The last node announces none at
    # first, so that one capture shows a real "?" among hostnames.
    for i in range(NODES - 1):
        set_hostname(i)
    c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname")
    wait_for(lambda: endpoints(c.call("CLUSTER", "SLOTS")).count(b"?") == 1,
             "hostnames to propagate")
    capture("hostname_missing.resp")
    set_hostname(NODES - 1)
    wait_for(lambda: b"?" not in endpoints(c.call("CLUSTER", "SLOTS")),
             "hostnames to propagate")
    capture("hostname.resp")
    c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", "ip")

    c.call("CLUSTER", "DELSLOTSRANGE", DELSLOTS[0], DELSLOTS[1])
    capture("partial.resp")
    c.close()

    with open(os.path.join(out, "README.txt"), "w") as f:
        f.write("Raw CLUSTER SLOTS replies recorded by "
                "scripts/record_cluster_slots.py\nfrom redis-server %s, "
                "3 masters + 3 replicas on %s, ports %s.\n"
                "Every capture was asked of %s:%d.\n"
                % (version, HOST, " ".join(map(str, cluster.ports)),
                   HOST, first))
        notes = {
            "three_masters.resp": "default (ip endpoints), RESP2",
            "three_masters_resp3.resp": "same, after HELLO 3",
            "unknown_endpoint.resp":
                "cluster-preferred-endpoint-type unknown-endpoint",
            "hostname.resp": "cluster-announce-hostname nodeN.sp.test "
                             "on each node, preferred type hostname",
            "hostname_missing.resp": "same, before node%d announced a "
                                     "hostname" % NODES,
            "partial.resp": "after CLUSTER DELSLOTSRANGE %d %d on the "
                            "asked node" % DELSLOTS,
        }
        for name, v in captures.items():
            f.write("\n%s: %s\n" % (name, notes[name]))
            f.write("\n".join(describe(v)) + "\n")
    print("recorded %s into %s" % (", ".join(captures), out))


if __name__ == "__main__":
    main()
