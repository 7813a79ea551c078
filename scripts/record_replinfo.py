#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Records tests/unit/data/replinfo/<server>-<case>.txt: the exact payload
# of INFO replication (bytes inside the bulk string, \r\n line ends kept)
# from real servers, so check_replinfo parses what Redis 7.0, Redis 7.4 and
# Valkey 8 really write instead of our own idea of it.
#
# For each server it starts, on free loopback ports in a temporary
# directory, a master and two replicas (one connecting over 127.0.0.1, one
# over ::1 when the machine has IPv6 loopback), waits until both are
# online, writes some keys, and records:
#   master-2replicas   both replicas online, offsets caught up
#   master-lagging     one replica SIGSTOPped, then writes to the master
#                      (its offset stays behind, its lag grows)
#   master-syncing     a third replica waiting for its full sync
#                      (state=wait_bgsave: diskless sync with a delay)
#   replica            the INFO replication of a replica (role:slave)
#   replica-linkdown   the same replica after its master stopped
#   master-none        a master with no replica
# Every process it starts is stopped by PID on exit, also on error.
# Python 3 standard library only.
#
# Usage: scripts/record_replinfo.py [output-dir]
#   SP_REPLINFO_SERVERS="name=/path/to/server ..." overrides the server list.

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

OUT_DEFAULT = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "tests", "unit", "data", "replinfo"))
CACHE = "/root/.cache/slotproxy-servers"
SERVERS = [
    ("redis-7.0", "redis-server"),
    ("redis-7.4", CACHE + "/redis-7.4.1/src/redis-server"),
    ("valkey-8.0", CACHE + "/valkey-8.0.1/src/valkey-server"),
]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def call(port, *args):
    """One command on a fresh connection; returns the reply's payload
    bytes (bulk), the line (simple/integer) or raises on an error."""
    with socket.create_connection(("127.0.0.1", port), 2) as s:
        s.settimeout(5)
        s.sendall(encode(*args))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("closed")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n")
        if head[:1] == b"-":
            raise RuntimeError(head.decode())
        if head[:1] != b"$":
            return head[1:]
        n = int(head[1:])
        while len(rest) < n + 2:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("closed")
            rest += chunk
        return rest[:n]


def wait_for(pred, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except (OSError, RuntimeError):
            pass
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


class Servers:
    def __init__(self):
        self.tmpdir = tempfile.mkdtemp(prefix="sp-replinfo-")
        self.procs = []

    def start(self, binary, port, *extra):
        d = os.path.join(self.tmpdir, str(port))
        os.mkdir(d)
        bind = ["--bind", "127.0.0.1", "::1"] if have_ipv6_loopback() \
            else ["--bind", "127.0.0.1"]
        p = subprocess.Popen(
            [binary, "--port", str(port)] + bind +
            ["--dir", d, "--save", "", "--appendonly", "no",
             "--repl-ping-replica-period", "1",
             "--logfile", os.path.join(d, "server.log")] + list(extra),
            stdin=subprocess.DEVNULL)
        self.procs.append(p)
        wait_for(lambda: call(port, "PING") == b"PONG", "%d up" % port)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def online(port, n):
    info = call(port, "INFO", "replication")
    return info.count(b"state=online") == n


def caught_up(port):
    """True when every slaveN line's offset equals master_repl_offset
    (replicas report their offset with REPLCONF ACK once a second)."""
    info = call(port, "INFO", "replication").decode()
    master = [l.split(":", 1)[1] for l in info.split("\r\n")
              if l.startswith("master_repl_offset:")]
    offs = [f.split("=", 1)[1] for l in info.split("\r\n")
            if l.startswith("slave") and "=" in l
            for f in l.split(":", 1)[1].split(",") if f.startswith("offset=")]
    return len(master) == 1 and len(offs) == 2 and \
        all(o == master[0] for o in offs)


def record(out, name, binary):
    srv = Servers()
    atexit.register(srv.stop)
    try:
        mport, r1port, r2port = free_port(), free_port(), free_port()
        srv.start(binary, mport)
        r1 = srv.start(binary, r1port, "--replicaof", "127.0.0.1",
                       str(mport))
        v6 = have_ipv6_loopback()
        srv.start(binary, r2port, "--replicaof",
                  "::1" if v6 else "127.0.0.1", str(mport))
        wait_for(lambda: online(mport, 2), "replicas online")
        for i in range(100):
            call(mport, "SET", "k%d" % i, "v" * 100)
        wait_for(lambda: call(mport, "WAIT", 2, 1000) == b"2", "WAIT")
        wait_for(lambda: caught_up(mport), "replica offsets caught up")
        save(out, name, "master-2replicas", call(mport, "INFO", "replication"))
        save(out, name, "replica", call(r1port, "INFO", "replication"))
        os.kill(r1.pid, signal.SIGSTOP)
        for i in range(200):
            call(mport, "SET", "lag%d" % i, "x" * 1000)
        # Let the master's view of the stopped replica's lag grow.
        time.sleep(3)
        save(out, name, "master-lagging", call(mport, "INFO", "replication"))
        os.kill(r1.pid, signal.SIGCONT)
        call(mport, "CONFIG", "SET", "repl-diskless-sync", "yes")
        call(mport, "CONFIG", "SET", "repl-diskless-sync-delay", "30")
        r3port = free_port()
        srv.start(binary, r3port, "--replicaof", "127.0.0.1", str(mport))
        wait_for(lambda: b"state=wait_bgsave" in
                 call(mport, "INFO", "replication"), "a syncing replica")
        save(out, name, "master-syncing", call(mport, "INFO", "replication"))
        mproc = srv.procs[0]
        os.kill(mproc.pid, signal.SIGKILL)  # a crash: no shutdown sync
        mproc.wait(10)
        wait_for(lambda: b"master_link_status:down" in
                 call(r1port, "INFO", "replication"), "link down")
        save(out, name, "replica-linkdown",
             call(r1port, "INFO", "replication"))
        nport = free_port()
        srv.start(binary, nport)
        save(out, name, "master-none", call(nport, "INFO", "replication"))
    finally:
        srv.stop()


def save(out, name, case, payload):
    path = os.path.join(out, "%s-%s.txt" % (name, case))
    with open(path, "wb") as f:
        f.write(payload)
    print("wrote", path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT_DEFAULT
    os.makedirs(out, exist_ok=True)
    servers = SERVERS
    if os.environ.get("SP_REPLINFO_SERVERS"):
        servers = [tuple(s.split("=", 1))
                   for s in os.environ["SP_REPLINFO_SERVERS"].split()]
    for name, binary in servers:
        record(out, name, binary)


if __name__ == "__main__":
    main()
