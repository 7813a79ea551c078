#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Integration test harness: starts a real Redis Cluster (redis-server
# processes on free 127.0.0.1 ports, in a temporary directory) and a
# slotproxy in front of it, gives tests a small raw RESP client, and runs
# the registered tests with a per-test timeout.
#
# It owns every process it starts and stops each one by PID (SIGTERM, then
# SIGKILL) at the end of the run, on failure, on SIGINT/SIGTERM, and (through
# PR_SET_PDEATHSIG) even when the harness itself is killed. Python 3 standard
# library only.
#
# Usage: harness.py [-k NAME]... [-x] [test_file.py ...]
#   With no files, every test_*.py beside this file is loaded.
#   -k NAME   run only tests whose name contains NAME (repeatable)
#   -x        stop at the first failure
# Environment:
#   SLOTPROXY_BIN   proxy binary (default <repo>/build/src/slotproxy)
#   KEEP_TMP=1      keep the temporary directory (logs, nodes.conf)
#   CI=true         a missing redis-server is a failure, not a skip
#   SP_TEST_TIMEOUT default per-test timeout in seconds (default 60)
#   SP_SERVER       server of the clusters: system (redis-server on PATH),
#                   redis-7.4.1 or valkey-8.0.1 (built from the shared
#                   folder beside the checkout; SP_SHARED_DIR names it)
#   SP_WORKERS=N    every proxy runs N worker threads
# Exit: 0 all passed, 1 some failed, 77 skipped (no redis-server, not CI).

import atexit
import ctypes
import importlib.util
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("SLOTPROXY_SRCDIR") or os.path.normpath(
    os.path.join(HERE, "..", ".."))
HOST = "127.0.0.1"
EXIT_SKIP = 77


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


class Skip(Exception):
    """Raised by a test (or a fixture) to skip it."""


class HarnessError(Exception):
    """Setup failed: cluster or proxy did not come up in time."""


# ---------------------------------------------------------------- processes

_procs_lock = threading.Lock()
_live_procs = {}          # pid -> (Popen, name)


def _pdeathsig():
    # Runs in the child between fork and exec: die with the parent thread.
    # Processes are only ever spawned from the main thread, which lives
    # until the harness exits.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(argv, logpath, name, cwd=None, env=None):
    """Starts argv with stdout and stderr appended to logpath (env: variables
    to set on top of ours). The process is recorded and stopped by
    stop_all() at exit. Returns the Popen."""
    out = open(logpath, "ab")
    full = None
    if env:
        full = dict(os.environ)
        full.update(env)
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, cwd=cwd, env=full,
                             preexec_fn=_pdeathsig)
    finally:
        out.close()
    with _procs_lock:
        _live_procs[p.pid] = (p, name)
    return p


def stop_proc(p, grace=3.0):
    """SIGTERM p by PID, SIGKILL after grace seconds; reaps it. Idempotent."""
    if p is None:
        return
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGCONT)   # a SIGSTOPped node can't exit
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    with _procs_lock:
        _live_procs.pop(p.pid, None)


def stop_all():
    with _procs_lock:
        procs = [p for p, _ in _live_procs.values()]
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 3
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    with _procs_lock:
        _live_procs.clear()


_tmp_root = None


def tmp_root():
    """The run's temporary directory, created on first use."""
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = tempfile.mkdtemp(prefix="slotproxy-it-")
    return _tmp_root


def _cleanup():
    stop_all()
    if _tmp_root and os.path.isdir(_tmp_root):
        if os.environ.get("KEEP_TMP") == "1":
            log("# KEEP_TMP=1: kept %s" % _tmp_root)
        else:
            shutil.rmtree(_tmp_root, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    log("# caught signal %d, stopping everything" % signum)
    _cleanup()
    os._exit(128 + signum)


# ------------------------------------------------------------------- ports

_reserved = set()


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def metrics(port):
    """GET /metrics on 127.0.0.1:port as {name{labels}: float}."""
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port),
                                timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def http_get(port, path):
    """(status, body text) of GET http://127.0.0.1:port/path."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def one_node_cluster(name):
    """A started one-master cluster serving all 16384 slots, in its own
    directory (the caller stops it)."""
    node = Node(free_cluster_port(), os.path.join(tmp_root(), name))
    node.start()
    try:
        wait_until(lambda: node.call("PING") == b"PONG", 10, "node")
        assert node.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"OK"
        wait_until(lambda: b"cluster_state:ok" in node.call("CLUSTER",
                                                             "INFO"),
                   20, "one-node cluster")
    except BaseException:
        node.stop()
        raise
    return node


def rss(pid):
    """VmRSS of pid in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


_sanitized = None


def sanitized():
    """True when the proxy under test is an ASan+UBSan build: its memory
    figures (RSS) mean nothing then, and tests skip their RSS bounds."""
    global _sanitized
    if _sanitized is None:
        out = subprocess.run([proxy_bin(), "-v"], stdout=subprocess.PIPE,
                             timeout=10).stdout
        _sanitized = b"ASan" in out
    return _sanitized


def free_port():
    """A loopback port free right now, never handed out before in this run."""
    for _ in range(1000):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _reserved:
            _reserved.add(port)
            return port
    raise HarnessError("no free port")


def free_cluster_port():
    """A free port p whose cluster bus port p+10000 is free as well."""
    for _ in range(1000):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        if port + 10000 >= 65536 or port in _reserved \
                or port + 10000 in _reserved:
            continue
        if _port_free(port + 10000):
            _reserved.update((port, port + 10000))
            return port
    raise HarnessError("no free port pair for a cluster node")


# ------------------------------------------------------------- RESP client

class Error:
    """A '-' reply. Compares equal to its message text (str)."""

    def __init__(self, msg):
        self.msg = msg

    def startswith(self, prefix):
        return self.msg.startswith(prefix)

    def __eq__(self, other):
        if isinstance(other, Error):
            return self.msg == other.msg
        return isinstance(other, str) and self.msg == other

    def __hash__(self):
        return hash(self.msg)

    def __repr__(self):
        return "Error(%r)" % self.msg


class ConnectionClosed(Exception):
    pass


class Push(list):
    """A RESP3 push ('>'): a list."""

    def __repr__(self):
        return "Push(%s)" % list.__repr__(self)


class Verbatim(bytes):
    """A RESP3 verbatim string ('='): the text; .fmt is its format."""
    fmt = b"txt"


class BigNum(int):
    """A RESP3 big number ('(')."""


class Set3(list):
    """A RESP3 set ('~'), as the list of its elements in wire order."""


def decode3(data):
    """Decodes one RESP3 reply (exact bytes, as read_raw returns): + and $
    bytes, - Error, : and ( int (BigNum), , float, # bool, _ None, * list,
    ~ Set3, % dict (a list of pairs when a key is unhashable), > Push,
    = Verbatim, ! Error; an attribute '|' is skipped."""
    v, pos = _decode3_at(data, 0)
    assert pos == len(data), "trailing bytes after a reply"
    return v


def _decode3_at(data, pos):
    end = data.index(b"\r\n", pos)
    t, rest = data[pos:pos + 1], data[pos + 1:end]
    pos = end + 2
    if t == b"+":
        return rest, pos
    if t == b"-":
        return Error(rest.decode("utf-8", "replace")), pos
    if t == b":":
        return int(rest), pos
    if t == b"(":
        return BigNum(int(rest)), pos
    if t == b",":
        return float(rest.decode()), pos
    if t == b"#":
        return rest == b"t", pos
    if t == b"_":
        return None, pos
    if t in (b"$", b"!", b"="):
        n = int(rest)
        if n < 0:
            return None, pos
        blob = data[pos:pos + n]
        pos += n + 2
        if t == b"!":
            return Error(blob.decode("utf-8", "replace")), pos
        if t == b"=":
            v = Verbatim(blob[4:])
            v.fmt = blob[:3]
            return v, pos
        return blob, pos
    n = int(rest)
    if n < 0:
        return None, pos
    if t == b"|":
        for _ in range(2 * n):
            _, pos = _decode3_at(data, pos)
        return _decode3_at(data, pos)
    count = 2 * n if t == b"%" else n
    elems = []
    for _ in range(count):
        v, pos = _decode3_at(data, pos)
        elems.append(v)
    if t == b"%":
        pairs = list(zip(elems[0::2], elems[1::2]))
        try:
            return dict(pairs), pos
        except TypeError:
            return pairs, pos
    if t == b"~":
        return Set3(elems), pos
    if t == b">":
        return Push(elems), pos
    return elems, pos


def encode(args):
    """Encodes one command (a sequence of bytes/str/int) as a RESP multibulk."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, float):
            a = repr(a).encode()
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


class Client:
    """A minimal blocking RESP2 client. Every read has a timeout (default 10s)
    so no test can hang on a lost reply. Replies: bytes (simple and bulk
    strings), int, list, None (nil), Error ('-' replies)."""

    def __init__(self, port, host=HOST, timeout=10.0):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=1 << 16)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, *cmds):
        """Sends commands (each a tuple/list of args) in one write."""
        self.sock.sendall(b"".join(encode(c) for c in cmds))

    def read(self):
        """Reads one reply. Raises ConnectionClosed at EOF, socket.timeout
        when nothing arrives within the timeout."""
        line = self.f.readline()
        if not line:
            raise ConnectionClosed("connection closed by peer")
        if not line.endswith(b"\r\n"):
            raise ConnectionClosed("truncated reply line %r" % line)
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest
        if t == b"-":
            return Error(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionClosed("truncated bulk")
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise ValueError("bad reply type byte in %r" % line)

    def call(self, *args):
        """Sends one command and returns its reply."""
        self.send(args)
        return self.read()

    # RESP3 (after HELLO 3). read() above stays the RESP2 reader.

    def read_raw(self):
        """Reads one complete reply of any RESP2/RESP3 type and returns
        its exact bytes (an attribute '|' together with the reply it
        describes)."""
        out = []
        self._raw_one(out)
        return b"".join(out)

    def _raw_one(self, out):
        line = self.f.readline()
        if not line:
            raise ConnectionClosed("connection closed by peer")
        if not line.endswith(b"\r\n"):
            raise ConnectionClosed("truncated reply line %r" % line)
        out.append(line)
        t, rest = line[:1], line[1:-2]
        if t in (b"$", b"!", b"=") and int(rest) >= 0:
            n = int(rest)
            data = self.f.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionClosed("truncated blob")
            out.append(data)
        elif t in (b"*", b"~", b">", b"%", b"|") and int(rest) > 0:
            n = int(rest) * (2 if t in (b"%", b"|") else 1)
            for _ in range(n + (1 if t == b"|" else 0)):
                self._raw_one(out)
        elif t not in b"+-:$*_#,(~>%|!=":
            raise ValueError("bad reply type byte in %r" % line)

    def read3(self):
        """Reads one RESP3 reply as typed values: see decode3."""
        return decode3(self.read_raw())

    def call3(self, *args):
        """Sends one command and returns its reply, read3-decoded."""
        self.send(args)
        return self.read3()

    def pipeline(self, cmds):
        """Sends all commands, reads as many replies. Large batches are
        written from a helper thread while this one reads, as a real client
        does, so a proxy that stops reading a client whose replies pile up
        (backpressure) cannot deadlock the test."""
        data = b"".join(encode(c) for c in cmds)
        if len(data) < 65536:
            self.sock.sendall(data)
            return [self.read() for _ in cmds]
        err = []

        def writer():
            try:
                self.sock.sendall(data)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            replies = [self.read() for _ in cmds]
        finally:
            t.join(30)
        if err:
            raise err[0]
        return replies

    def is_closed(self, wait=10.0):
        """True when the peer closes the connection within wait seconds
        (a close is quick; a loaded machine or ASan may make it late)."""
        self.sock.settimeout(wait)
        try:
            return self.f.read(1) == b""
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True


def run(argv, timeout=60):
    """Runs a helper program to completion: (exit status, stdout, stderr),
    decoded."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def npm_dir(folder, module):
    """tests/integration/<folder> with its node_modules installed by npm
    from the folder's pinned package.json (once per checkout). Outside CI
    a missing node/npm or a failed install (offline) raises Skip; in CI
    (CI=true) an AssertionError."""
    d = os.path.join(HERE, folder)
    if os.path.isdir(os.path.join(d, "node_modules", module)):
        return d
    ci = os.environ.get("CI") == "true"
    if not shutil.which("node") or not shutil.which("npm"):
        if ci:
            raise AssertionError("node/npm missing in CI")
        raise Skip("node or npm not installed")
    rc, out, err = run(["npm", "install", "--no-audit", "--no-fund",
                        "--silent", "--prefix", d], timeout=240)
    if rc != 0:
        if ci:
            raise AssertionError("npm install %s failed: %s"
                                 % (module, err[-2000:]))
        raise Skip("npm install %s failed (offline?)" % module)
    return d


def has_data(c, wait):
    """True when a reply is buffered on Client c or bytes (or EOF) arrive
    within wait seconds. Never times a read out: a timed-out socket file
    is dead for good in Python."""
    c.sock.settimeout(0.0)
    try:
        buffered = c.f.peek(1)
    except (BlockingIOError, ValueError):
        buffered = b""
    finally:
        c.sock.settimeout(10)
    if buffered:
        return True
    r, _, _ = select.select([c.sock], [], [], wait)
    return bool(r)


def wait_until(pred, timeout, what, interval=0.1):
    """Polls pred() until true; raises HarnessError naming what on timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if pred():
                return
        except (OSError, ConnectionClosed) as e:
            last = e
        time.sleep(interval)
    raise HarnessError("timed out after %.0fs waiting for %s%s" % (
        timeout, what, " (last error: %s)" % last if last else ""))


# ----------------------------------------------------------------- key slot

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def keyslot(key):
    """The Redis Cluster hash slot of key (bytes or str), hash tags included."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % 16384


def keys_in_slots(prefix, slots, count):
    """count distinct keys 'prefix:N' whose slots are all in the set slots."""
    slots = set(slots)
    out, i = [], 0
    while len(out) < count:
        k = "%s:%d" % (prefix, i)
        if keyslot(k) in slots:
            out.append(k)
        i += 1
    return out


# ------------------------------------------------------------------ cluster

# Newer servers for tests (issue: speak today's Redis): their sources sit in
# the team's shared folder beside the checkout, with a build script that
# builds each once into a cache. SP_SERVER picks the server every cluster
# of the run uses by default: "system" (redis-server on PATH, Debian's
# 7.0), "redis-7.4.1" or "valkey-8.0.1"; a test may ask for one itself.
SERVERS = ("redis-7.4.1", "valkey-8.0.1")
_server_dirs = {}


def _shared_dir():
    for d in (os.environ.get("SP_SHARED_DIR"),
              os.path.join(SRCDIR, "..", "shared"), "/work/shared"):
        if d and os.path.isfile(os.path.join(d, "servers", "build.sh")):
            return os.path.normpath(d)
    return None


def server_bins(name=None):
    """(server, cli) binaries for a server name (None: SP_SERVER, default
    the system's). Builds a shared one on first use (about 2 minutes);
    a failed build is an error; no sources to build from is a skip."""
    name = name or os.environ.get("SP_SERVER") or "system"
    if name == "system":
        return "redis-server", "redis-cli"
    if name not in SERVERS:
        raise HarnessError("unknown server %r (SP_SERVER: system, %s)" % (
            name, ", ".join(SERVERS)))
    if name not in _server_dirs:
        shared = _shared_dir()
        if shared is None:
            # Nothing to build it from (a checkout without ../shared):
            # the test cannot run here. Where the sources are, a failed
            # build is a failure.
            raise Skip("no shared/servers/build.sh beside the checkout "
                       "(set SP_SHARED_DIR) for %s" % name)
        out = subprocess.run([os.path.join(shared, "servers", "build.sh"),
                              name], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=900)
        if out.returncode != 0:
            raise HarnessError("building %s failed:\n%s" % (
                name, out.stdout.decode(errors="replace")[-2000:]))
        _server_dirs[name] = out.stdout.decode().strip().splitlines()[-1]
    d = _server_dirs[name]
    prog = "valkey" if name.startswith("valkey") else "redis"
    return (os.path.join(d, prog + "-server"), os.path.join(d, prog + "-cli"))


def have_redis():
    return shutil.which("redis-server") and shutil.which("redis-cli")


class Node:
    def __init__(self, port, dirpath, server=None):
        self.port = port
        self.dir = dirpath
        self.server_bin = server_bins(server)[0]
        self.log = os.path.join(dirpath, "redis.log")
        self.proc = None
        self.id = None
        self.extra_args = []     # more server arguments (--loadmodule ...)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.proc = spawn([
            self.server_bin, "--port", str(self.port), "--bind", HOST,
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--dir", self.dir, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--cluster-node-timeout", "2000",
            "--loglevel", "warning", "--logfile", "",
        ] + self.extra_args, self.log, "redis-%d" % self.port, cwd=self.dir)

    def client(self, timeout=10.0):
        return Client(self.port, timeout=timeout)

    def call(self, *args):
        with self.client() as c:
            return c.call(*args)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(5)

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid, signal.SIGCONT)

    def stop(self):
        stop_proc(self.proc)

    def __repr__(self):
        return "Node(%d)" % self.port


class Cluster:
    """masters x (1 + replicas) redis-server cluster nodes on free loopback
    ports. start() returns only when every node reports cluster_state:ok,
    every node knows every other and every replica's link is up."""

    def __init__(self, masters=3, replicas=1, name="cluster", server=None):
        self.dir = os.path.join(tmp_root(), name)
        self.server = server
        self.nodes = [Node(p, os.path.join(self.dir, str(p)), server)
                      for p in (free_cluster_port()
                                for _ in range(masters * (1 + replicas)))]
        self.nmasters = masters
        self.replicas = replicas
        self.slot_owner = [None] * 16384   # slot -> master Node

    def start(self, timeout=30):
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            wait_until(lambda: n.call("PING") == b"PONG", 10,
                       "redis-server on port %d (log %s)" % (n.port, n.log))
        out = subprocess.run(
            [server_bins(self.server)[1], "--cluster", "create"] +
            ["%s:%d" % (HOST, n.port) for n in self.nodes] +
            ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if out.returncode != 0:
            raise HarnessError("redis-cli --cluster create failed:\n" +
                               out.stdout.decode(errors="replace"))
        self.wait_ok(timeout)
        return self

    def wait_ok(self, timeout=30):
        """Waits for a settled cluster: state ok on all live nodes, every
        node sees all others connected, replicas in sync. Refreshes the
        slot map."""
        live = [n for n in self.nodes if n.alive()]
        why = [None]    # the last reason the cluster was not settled

        def unsettled(n):
            """Why node n is not settled yet, or None."""
            info = n.call("CLUSTER", "INFO")
            # A node restarting answers -LOADING for a while.
            if isinstance(info, Error):
                return "CLUSTER INFO: %s" % info
            if b"cluster_state:ok" not in info:
                return "cluster_state is not ok"
            nodes = n.call("CLUSTER", "NODES")
            if isinstance(nodes, Error):
                return "CLUSTER NODES: %s" % nodes
            nodes = nodes.decode().splitlines()
            if len(nodes) < len(live):
                return "knows %d of %d nodes" % (len(nodes), len(live))
            live_ports = [m.port for m in live]
            for line in nodes:
                f = line.split()
                port = int(f[1].split(":")[1].split("@")[0])
                if port not in live_ports:
                    continue
                if any(x in f[2] for x in ("fail", "handshake", "noaddr")):
                    return "flags %s on node %d" % (f[2], port)
                if f[7] != "connected":
                    return "link to node %d %s" % (port, f[7])
            repl = n.call("INFO", "replication")
            if isinstance(repl, Error):
                return "INFO replication: %s" % repl
            repl = repl.decode()
            if "role:slave" in repl and \
                    "master_link_status:up" not in repl:
                return "replica link to its master is not up"
            # Masters with the same configEpoch (left by a failover
            # without consensus) must have been told apart first: a slot
            # moved by hand while two of them collide can be claimed back
            # by the source's stale gossip, and the nodes then disagree on
            # its owner.
            epochs = [line.split()[6] for line in nodes
                      if "master" in line.split()[2] and
                      "fail" not in line.split()[2]]
            if len(set(epochs)) != len(epochs):
                return "masters share a configEpoch (%s)" % " ".join(epochs)
            return None

        def settled():
            for n in live:
                why[0] = unsettled(n)
                if why[0] is not None:
                    why[0] = "node %d: %s" % (n.port, why[0])
                    return False
            return True
        disagree_since = [None]

        def agreed():
            views = {n.port: self._slot_view(n) for n in live}
            if len(set(views.values())) <= 1:
                disagree_since[0] = None
                return True
            # A node can miss a slot handover (a replica that never saw
            # its master take a slot, then promoted, serves a hole). Say
            # so, and after 2 s make the owner, as most masters see it,
            # announce itself with a new configEpoch.
            now = time.time()
            if disagree_since[0] is None:
                disagree_since[0] = now
            elif now - disagree_since[0] > 2:
                disagree_since[0] = now
                self._heal_views(live, views)
            return False
        try:
            wait_until(lambda: settled() and agreed(), timeout,
                       "cluster_state:ok on every node with all replicas "
                       "linked and one view of slot owners (logs under %s)"
                       % self.dir, 0.2)
        except HarnessError as e:
            tails = []
            for n in live:
                try:
                    with open(n.log, errors="replace") as f:
                        lines = f.read().splitlines()[-6:]
                except OSError:
                    lines = []
                tails.append("    node %d log tail:\n%s" % (n.port, "\n".join(
                    "    | " + x for x in lines)))
            raise HarnessError("%s; last seen: %s\n%s" % (
                e, why[0] or "nodes disagree on slot owners",
                "\n".join(tails)))
        self.refresh()

    @staticmethod
    def _owners(view):
        own = [None] * 16384
        for lo, hi, port in view:
            for slot in range(lo, hi + 1):
                own[slot] = port
        return own

    def _heal_views(self, live, views):
        """Nodes disagree on slot owners for more than 2 s. A master that
        does not serve slots most nodes say are its own takes them back:
        CLUSTER ADDSLOTS for those unassigned in its view (a replica
        promoted before it heard its master take them), CLUSTER SETSLOT
        NODE itself for those it gave to another (a stale claim that won
        an epoch collision). For any other difference, the owners as most
        nodes see them announce themselves with CLUSTER BUMPEPOCH. Logged:
        it is the cluster's state, not the proxy's doing."""
        counts = {}
        for v in views.values():
            counts[v] = counts.get(v, 0) + 1
        major = self._owners(max(counts, key=counts.get))
        by_port = {n.port: n for n in live}
        bump = set()
        for port, v in views.items():
            own = self._owners(v)
            diff = [s for s in range(16384) if own[s] != major[s]]
            if not diff:
                continue
            # Slots most nodes say are this node's, which it does not
            # serve: unassigned in its view (holes) or given to another.
            holes = [s for s in diff if own[s] is None and major[s] == port]
            given = [s for s in diff
                     if own[s] is not None and major[s] == port]
            log("    # node %d sees %d slot owner(s) unlike most nodes "
                "(first: slot %d, %s vs %s); %d missing, %d given away" % (
                    port, len(diff), diff[0], own[diff[0]], major[diff[0]],
                    len(holes), len(given)))
            n = by_port[port]
            if (holes or given) and \
                    n.call("ROLE")[0].decode() == "master":
                if holes:
                    n.call("CLUSTER", "ADDSLOTS", *holes)
                myid = n.call("CLUSTER", "MYID").decode()
                for slot in given:
                    n.call("CLUSTER", "SETSLOT", slot, "NODE", myid)
            bump.update(major[s] for s in diff
                        if major[s] is not None and major[s] != port)
        for port in sorted(bump):
            if port in by_port:
                log("    # CLUSTER BUMPEPOCH on %d" % port)
                by_port[port].call("CLUSTER", "BUMPEPOCH")

    @staticmethod
    def _slot_view(n):
        """Node n's slot ranges and their masters' ports, as a tuple."""
        return tuple(sorted((int(r[0]), int(r[1]), int(r[2][1]))
                            for r in n.call("CLUSTER", "SLOTS")))

    def refresh(self):
        """Reloads node ids, roles and the slot map from CLUSTER NODES."""
        by_port = {n.port: n for n in self.nodes}
        src = next(n for n in self.nodes if n.alive())
        self.slot_owner = [None] * 16384
        for line in src.call("CLUSTER", "NODES").decode().splitlines():
            f = line.split()
            port = int(f[1].split(":")[1].split("@")[0])
            n = by_port.get(port)
            if n is None:
                continue
            n.id = f[0]
            n.role = "master" if "master" in f[2] else "replica"
            n.master_id = f[3] if f[3] != "-" else None
            for r in f[8:]:
                if r.startswith("["):
                    continue        # migrating/importing marker
                if "-" in r:
                    a, b = r.split("-")
                else:
                    a = b = r
                for s in range(int(a), int(b) + 1):
                    self.slot_owner[s] = n

    def masters(self):
        return [n for n in self.nodes if n.alive() and
                getattr(n, "role", None) == "master"]

    def replicas_of(self, master):
        return [n for n in self.nodes
                if getattr(n, "master_id", None) == master.id]

    def node_for_slot(self, slot):
        return self.slot_owner[slot]

    def node_for_key(self, key):
        return self.slot_owner[keyslot(key)]

    def slots_of(self, master):
        return [s for s in range(16384) if self.slot_owner[s] is master]

    def direct(self, *args):
        """Runs a single-key command on the master owning args[1]."""
        return self.node_for_key(args[1]).call(*args)

    def migrate_slots(self, src, dst, slots, batch=100, pause=0.0):
        """Moves slots from master src to master dst by hand, keys included:
        SETSLOT IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE on
        every master. Live clients see ASK/MOVED during the move; pause
        (seconds) is slept while each slot is half-migrated, to keep the
        ASK window open longer."""
        masters = self.masters()
        self._wait_epochs(masters)
        with src.client(30) as cs, dst.client(30) as cd:
            for slot in slots:
                r = cd.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
                assert r == b"OK", r
                r = cs.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
                assert r == b"OK", r
                if pause:
                    time.sleep(pause)
                while True:
                    keys = cs.call("CLUSTER", "GETKEYSINSLOT", slot, batch)
                    if not keys:
                        break
                    r = cs.call("MIGRATE", HOST, dst.port, "", 0, 5000,
                                "KEYS", *keys)
                    assert r in (b"OK", b"NOKEY"), r
                # The target first, so the source's MOVED never points at a
                # node that still thinks it's importing.
                assert cd.call("CLUSTER", "SETSLOT", slot, "NODE",
                               dst.id) == b"OK"
                assert cs.call("CLUSTER", "SETSLOT", slot, "NODE",
                               dst.id) == b"OK"
                for m in masters:
                    if m is not src and m is not dst:
                        m.call("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
                self.slot_owner[slot] = dst
        self._wait_owner(slots, dst)

    def _wait_epochs(self, masters, timeout=10):
        """Waits until every master knows the same currentEpoch. Closing a
        slot import bumps the importer's configEpoch to its currentEpoch
        + 1: a node that has not yet heard of the previous move's bump
        takes the same epoch as the node the slot left, and after the
        collision is resolved that node's stale claim can win. Moving a
        slot there and back at once left the two masters each naming the
        other as its owner."""
        def same():
            return len({int(re.search(rb"cluster_current_epoch:(\d+)",
                                      m.call("CLUSTER", "INFO")).group(1))
                        for m in masters}) == 1
        wait_until(same, timeout, "one currentEpoch on every master", 0.05)

    def _wait_owner(self, slots, owner, timeout=10):
        """Waits until every live master names owner for every slot (they
        were all told; this catches a cluster that takes a slot back)."""
        want = set(slots)

        def views():
            out = {}
            for m in self.masters():
                seen = {}
                for r in m.call("CLUSTER", "SLOTS"):
                    lo, hi, port = int(r[0]), int(r[1]), int(r[2][1])
                    for s in want:
                        if lo <= s <= hi:
                            seen[s] = port
                out[m.port] = seen
            return out

        def agreed():
            return all(v.get(s) == owner.port for v in views().values()
                       for s in want)
        try:
            wait_until(agreed, timeout, "every master naming %d as the "
                       "owner of the moved slots" % owner.port, 0.05)
        except BaseException:
            log("    owner views (master port -> {slot: owner port}): %r"
                % (views(),))
            raise

    def flushall(self):
        for m in self.masters():
            m.call("FLUSHALL")

    def stop(self):
        for n in self.nodes:
            n.stop()


# -------------------------------------------------------------------- proxy

def proxy_bin():
    return os.environ.get("SLOTPROXY_BIN") or os.path.join(
        SRCDIR, "build", "src", "slotproxy")


class Proxy:
    """A slotproxy process with a generated YAML config. start() returns
    once the listen port answers PING."""

    count = 0

    def __init__(self, seeds, extra=None, port=None, request_timeout="5s",
                 log_level="notice", env=None):
        Proxy.count += 1
        self.env = env           # extra environment variables
        self.dir = os.path.join(tmp_root(), "proxy%d" % Proxy.count)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "slotproxy.yml")
        self.log = os.path.join(self.dir, "slotproxy.log")
        self.proc = None
        self.wrapper = []        # e.g. ["valgrind", ...] in front
        lines = ["listen:", "  - %s:%d" % (HOST, self.port),
                 "cluster:", "  seeds:"]
        lines += ["    - %s:%d" % (HOST, p) for p in seeds]
        lines += ["  request_timeout: %s" % request_timeout,
                  "log:", "  level: %s" % log_level]
        # SP_WORKERS=N runs every proxy of the suite with N workers.
        if os.environ.get("SP_WORKERS") and not (
                extra and "workers:" in extra):
            lines.append("workers: %d" % int(os.environ["SP_WORKERS"]))
        if extra:
            lines.append(extra.rstrip("\n"))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cluster_option(self, line):
        """Add `line` (e.g. "refresh_interval: 300ms") to the config's
        cluster section; before start(), or before a reload."""
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace("cluster:\n", "cluster:\n  %s\n" % line, 1))
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=15):
        binary = proxy_bin()
        if not os.access(binary, os.X_OK):
            raise HarnessError("proxy binary %s not found or not executable "
                               "(build it, or set SLOTPROXY_BIN)" % binary)
        self.proc = spawn(self.wrapper + [binary, "-c", self.conf], self.log,
                          "slotproxy-%d" % self.port, cwd=self.dir,
                          env=self.env)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError("slotproxy exited with status %s before "
                                   "serving; log:\n%s" %
                                   (self.proc.returncode, self.log_tail()))
            with Client(self.port, timeout=2) as c:
                return c.call("PING") == b"PONG"
        wait_until(up, timeout, "slotproxy to answer PING on port %d; "
                   "log:\n%s" % (self.port, self.log))
        return self

    def client(self, timeout=10.0):
        return Client(self.port, timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=40):
        try:
            with open(self.log, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(data[-lines:])

    def stop(self):
        stop_proc(self.proc)



class Standalone:
    """A plain (non-cluster) redis-server on a free loopback port, as the
    reference 'single Redis' for reply comparisons. Started with spawn so
    that the harness also stops it if the run dies; stopped by PID when
    the with-block ends."""

    def __init__(self, server=None):
        self.port = free_port()
        self.dir = os.path.join(tmp_root(), "standalone%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.server_bin = server_bins(server)[0]

    def __enter__(self):
        self.proc = spawn([
            self.server_bin, "--port", str(self.port), "--bind", HOST,
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", self.dir, "--loglevel", "warning", "--logfile", "",
        ], os.path.join(self.dir, "redis.log"), "standalone-%d" % self.port)
        wait_until(lambda: self.call("PING") == b"PONG", 10,
                   "standalone redis-server on port %d" % self.port)
        return self

    def __exit__(self, *exc):
        stop_proc(self.proc)

    def client(self, timeout=10.0):
        return Client(self.port, timeout=timeout)

    def call(self, *args):
        with self.client() as c:
            return c.call(*args)

# -------------------------------------------------------------------- env

class Env:
    """Shared fixtures, started lazily on first use and kept for the run:
    one 3-master, 1-replica-each cluster and one proxy in front of it."""

    def __init__(self):
        self._cluster = None
        self._proxy = None
        self.proxies = []        # every proxy started, for log dumps

    @property
    def cluster(self):
        if self._cluster is None:
            t = time.time()
            self._cluster = Cluster(3, 1).start()
            log("# cluster up in %.1fs (%s): ports %s" % (
                time.time() - t, self._cluster.nodes[0].server_bin,
                " ".join(str(n.port) for n in self._cluster.nodes)))
        return self._cluster

    @property
    def proxy(self):
        if self._proxy is None or not self._proxy.alive():
            self._proxy = self.new_proxy()
        return self._proxy

    def new_proxy(self, seeds=None, **kw):
        """Starts an extra proxy (stopped by the harness at exit)."""
        if seeds is None:
            seeds = [m.port for m in self.cluster.masters()]
        p = Proxy(seeds, **kw)
        self.proxies.append(p)
        return p.start()

    def client(self, timeout=10.0):
        """A new raw client connected to the shared proxy."""
        return self.proxy.client(timeout)


# ------------------------------------------------------------------ runner

_tests = []


def test(fn=None, *, timeout=None, last=False):
    """Registers a test function taking one argument, the Env. last=True
    tests (topology changes) run after all others."""
    def reg(f):
        _tests.append((f.__name__, f, timeout, last))
        return f
    return reg(fn) if fn is not None else reg


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("test timed out")


def _dump_locals(e):
    """A bare assert says nothing: print the failing test frame's locals."""
    tb = e.__traceback__
    frame = None
    while tb is not None:
        if os.path.basename(tb.tb_frame.f_code.co_filename).startswith(
                "test_"):
            frame = tb.tb_frame
        tb = tb.tb_next
    if frame is None:
        return
    log("    locals of %s():" % frame.f_code.co_name)
    for k, v in sorted(frame.f_locals.items()):
        if k == "env" or callable(v):
            continue
        r = repr(v)
        log("      %s = %s" % (k, r if len(r) <= 300 else
                               r[:300] + "... (%d chars)" % len(r)))


def _load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if name in sys.modules or (main_file and
                               os.path.abspath(main_file) == path):
        return
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.modules.setdefault("harness", sys.modules[__name__])
    patterns, files, failfast = [], [], False
    while argv:
        a = argv.pop(0)
        if a == "-k" and argv:
            patterns.append(argv.pop(0))
        elif a == "-x":
            failfast = True
        elif a in ("-h", "--help"):
            log("usage: harness.py [-k NAME]... [-x] [test_file.py ...]")
            return 0
        elif a.endswith(".py"):
            files.append(a)
        else:
            log("unknown argument %r" % a)
            return 2

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    if not have_redis():
        msg = ("!!! redis-server/redis-cli not found in PATH: integration "
               "tests need Redis 7 (apt-get install redis-server redis-tools)")
        if os.environ.get("CI") == "true":
            log(msg + " -- CI=true, this is a FAILURE")
            log("0 passed, 1 failed")
            return 1
        log(msg + " -- SKIPPING")
        return EXIT_SKIP

    if not files:
        files = sorted(os.path.join(HERE, f) for f in os.listdir(HERE)
                       if f.startswith("test_") and f.endswith(".py"))
    for f in files:
        _load(os.path.abspath(f))

    selected = [t for t in _tests
                if not patterns or any(p in t[0] for p in patterns)]
    selected = [t for t in selected if not t[3]] + \
        [t for t in selected if t[3]]
    default_timeout = int(os.environ.get("SP_TEST_TIMEOUT", "60"))
    env = Env()
    passed = failed = skipped = 0
    failed_names = []
    start = time.time()
    signal.signal(signal.SIGALRM, _alarm)
    log("# slotproxy integration tests: %d selected, proxy %s" %
        (len(selected), proxy_bin()))
    for name, fn, tmo, _last in selected:
        t0 = time.time()
        nproxies = len(env.proxies)
        signal.alarm(tmo or default_timeout)
        try:
            fn(env)
            signal.alarm(0)
            passed += 1
            log("ok   %-40s %6.2fs" % (name, time.time() - t0))
        except Skip as e:
            signal.alarm(0)
            skipped += 1
            log("skip %-40s %s" % (name, e))
        except BaseException as e:   # noqa: B902 - report, then go on
            signal.alarm(0)
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            failed_names.append(name)
            log("FAIL %-40s %6.2fs" % (name, time.time() - t0))
            for line in traceback.format_exc().rstrip().splitlines():
                log("    " + line)
            if isinstance(e, AssertionError) and not e.args:
                _dump_locals(e)
            shown = [env._proxy] if env._proxy else []
            shown += [p for p in env.proxies[nproxies:] if p not in shown]
            for p in shown:
                log("    --- log tail of slotproxy on port %d (%s):" %
                    (p.port, p.log))
                for line in p.log_tail(30).splitlines():
                    log("    | " + line)
            if env._proxy is not None and not env._proxy.alive():
                env._proxy = None
            if failfast:
                break
    signal.alarm(0)
    # Every proxy must shut down cleanly on SIGTERM: exit status 0 and, in
    # the sanitizer build, no ASan/UBSan/LeakSanitizer report.
    for p in env.proxies:
        if p.proc is None:
            continue
        stop_proc(p.proc)
        rc = p.proc.returncode
        tail = p.log_tail(400)
        bad = [w for w in ("AddressSanitizer", "LeakSanitizer",
                           "runtime error:") if w in tail]
        if rc == 0 and not bad:
            passed += 1
            log("ok   %-40s port %d" % ("proxy_clean_shutdown", p.port))
        else:
            failed += 1
            failed_names.append("proxy_clean_shutdown:%d" % p.port)
            log("FAIL %-40s port %d: exit status %s %s" %
                ("proxy_clean_shutdown", p.port, rc, " ".join(bad)))
            for line in tail.splitlines()[-60:]:
                log("    | " + line)
    log("# total %.1fs" % (time.time() - start))
    if failed_names:
        log("# failed: " + " ".join(failed_names))
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    log(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
