#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Hostile input (issue 10): requests whose arguments are shaped to fool the
# proxy's parsing (a group named "streams" that hid XREADGROUP's BLOCK,
# timeouts whose conversion was undefined behaviour), unauthenticated
# clients sending huge requests, reply injection through echoed argument
# bytes, TLS clients that stall a worker, and the metrics endpoint under
# slow, idle and numerous connections.

import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Error, ConnectionClosed, HOST, log, test,  # noqa: E402
                     keyslot, wait_until)


def answers_quickly(c, limit, *args):
    """Calls args on c; asserts the reply came within limit seconds."""
    t = time.time()
    r = c.call(*args)
    took = time.time() - t
    assert took < limit, (args, r, "%.2fs" % took)
    return r


def blocked_ids(node, cmd):
    """Ids of the node's connections blocked in cmd (lower case)."""
    out = set()
    for line in node.call("CLIENT", "LIST").decode().splitlines():
        f = dict(x.split("=", 1) for x in line.split(" ") if "=" in x)
        if f.get("cmd") == cmd and "b" in f.get("flags", ""):
            out.add(f["id"])
    return out


# ---------------------------------------------------------------- row 5

# XREAD/XREADGROUP requests that block, with groups, consumers and keys
# named like the grammar's keywords. {t} keeps every key of a case in one
# slot, beside the probe key.
BLOCKING_XREADS = [
    ("XREADGROUP", "GROUP", "streams", "c", "BLOCK", "0", "STREAMS",
     "sx:a{t1}", ">"),
    ("XREADGROUP", "GROUP", "g", "streams", "BLOCK", "0", "STREAMS",
     "sx:b{t2}", ">"),
    ("XREADGROUP", "GROUP", "g", "block", "BLOCK", "0", "STREAMS",
     "sx:c{t3}", ">"),
    ("XREADGROUP", "GROUP", "streams", "streams", "COUNT", "1", "NOACK",
     "BLOCK", "0", "STREAMS", "streams{t4}", ">"),
    ("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "block{t5}",
     "streams{t5}", "$", "$"),
]


@test(timeout=90)
def test_xread_keyword_named_args_block_pinned(env):
    """Row 5: a group (or consumer, or key) named like a keyword must not
    hide BLOCK. The request blocks on a pinned connection; a second client
    of the same master is answered at once; the block ends on XADD."""
    env.cluster
    p = env.new_proxy()
    with p.client() as c, p.client() as other:
        for req in BLOCKING_XREADS:
            streams = list(req).index("STREAMS")
            nkeys = (len(req) - streams - 1) // 2
            keys = req[streams + 1:streams + 1 + nkeys]
            tag = keys[0][keys[0].index("{"):]
            if req[0] == "XREADGROUP":
                assert c.call("XGROUP", "CREATE", keys[0], req[2], "$",
                              "MKSTREAM") == b"OK", req
            node = env.cluster.node_for_key(keys[0])
            before = blocked_ids(node, req[0].lower())
            c.send(req)
            # The XREAD reaches the server first (XREAD $ misses an entry
            # added before it blocks); then the probe must not queue
            # behind it on the shared connection.
            wait_until(lambda: blocked_ids(node, req[0].lower()) - before,
                       20, "%s blocked on its node" % req[0])
            assert answers_quickly(other, 5.0, "SET", "probe" + tag,
                                   "1") == b"OK", req
            assert isinstance(other.call("XADD", keys[-1], "*", "f", "v"),
                              bytes)
            r = c.read()
            assert isinstance(r, list) and r[0][0] == keys[-1].encode(), \
                (req, r)
            assert answers_quickly(c, 5.0, "PING") == b"PONG"
            c.call("DEL", *keys)
            c.call("DEL", "probe" + tag)
        # A short BLOCK with a keyword-named group times out by itself.
        assert c.call("XGROUP", "CREATE", "sx:t{t6}", "streams", "$",
                      "MKSTREAM") == b"OK"
        t = time.time()
        assert c.call("XREADGROUP", "GROUP", "streams", "c", "BLOCK", "200",
                      "STREAMS", "sx:t{t6}", ">") is None
        assert 0.15 < time.time() - t < 3
        c.call("DEL", "sx:t{t6}")
    assert "marked down" not in open(p.log, errors="replace").read()


@test
def test_xread_nonblocking_forms_shared(env):
    """The same names without BLOCK: an ordinary read, answered at once,
    pipelined with other requests in order."""
    env.cluster
    with env.client() as c:
        c.call("DEL", "streams{x}", "block{x}")
        assert isinstance(c.call("XADD", "streams{x}", "*", "a", "1"), bytes)
        assert c.call("XGROUP", "CREATE", "streams{x}", "block", "0") == b"OK"
        replies = c.pipeline([
            ("XREADGROUP", "GROUP", "block", "streams", "STREAMS",
             "streams{x}", ">"),
            ("XREAD", "STREAMS", "streams{x}", "block{x}", "0", "0"),
            ("XREAD", "COUNT", "1", "STREAMS", "block{x}", "0"),
            ("XREAD", "BLOCK", "0", "STREAMS", "s"),
            ("PING",),
        ])
        assert replies[0][0][0] == b"streams{x}", replies
        assert replies[1][0][0] == b"streams{x}", replies
        assert replies[2] is None, replies
        assert isinstance(replies[3], Error), replies
        assert replies[4] == b"PONG", replies
        c.call("DEL", "streams{x}", "block{x}")


# ---------------------------------------------------------------- timeouts

BAD_TIMEOUTS = [
    (("BLPOP", "bt:k", "inf"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "+inf"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "-inf"), "ERR timeout is negative"),
    (("BLPOP", "bt:k", "1e400"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "1e300"), "ERR timeout is out of range"),
    (("BLPOP", "bt:k", "nan"), "ERR timeout is not a float or out of range"),
    (("BLPOP", "bt:k", ""), "ERR timeout is not a float or out of range"),
    (("BLPOP", "bt:k", "-1"), "ERR timeout is negative"),
    (("BRPOP", "bt:k", "-0.5"), "ERR timeout is negative"),
    (("BZPOPMIN", "bt:k", "infinity"), "ERR timeout is out of range"),
    (("BLMOVE", "bt:{a}", "bt:{a}2", "LEFT", "LEFT", "nan"),
     "ERR timeout is not a float or out of range"),
    (("BLMPOP", "inf", "1", "bt:k", "LEFT"), "ERR timeout is out of range"),
    (("BZMPOP", "-inf", "1", "bt:k", "MIN"), "ERR timeout is negative"),
    (("XREAD", "BLOCK", "1.5", "STREAMS", "bt:s", "0"),
     "ERR timeout is not an integer or out of range"),
    (("XREAD", "BLOCK", "inf", "STREAMS", "bt:s", "0"),
     "ERR timeout is not an integer or out of range"),
    (("XREAD", "BLOCK", "-1", "STREAMS", "bt:s", "0"),
     "ERR timeout is negative"),
    (("XREADGROUP", "GROUP", "g", "c", "BLOCK", "99999999999999999999",
      "STREAMS", "bt:s", ">"), "ERR timeout is not an integer or out of range"),
]


@test
def test_blocking_timeouts_hostile(env):
    """BLPOP k inf / 1e400 / nan ...: Redis's errors from the proxy (no
    undefined float-to-integer conversion: UBSan aborts on it), alone and
    pipelined; valid odd forms (-0, 0x10, 1e-400) still block."""
    env.cluster
    with env.client() as c:
        for req, want in BAD_TIMEOUTS:
            assert c.call(*req) == want, req
        replies = c.pipeline([req for req, _ in BAD_TIMEOUTS] + [("PING",)])
        assert replies == [want for _, want in BAD_TIMEOUTS] + [b"PONG"]
        # Inside MULTI, Redis queues and answers them at EXEC.
        assert c.call("MULTI") == b"OK"
        assert c.call("BLPOP", "bt:k", "inf") == b"QUEUED"
        r = c.call("EXEC")
        assert isinstance(r, list) and len(r) == 1, r
        c.call("DEL", "bt:k")
    # Timeouts that do block, ended by a push from another client.
    with env.client() as c:
        for tmo in ("1e-400", "0.0001"):    # 1 ms, rounded up
            assert c.call("BLPOP", "bt:b", tmo) is None, tmo
    for tmo in ("-0", "-0.0001", "0x10", "9223372036854"):
        with env.client() as c, env.client() as other:
            c.send(("BLPOP", "bt:b", tmo))
            time.sleep(0.1)
            other.call("RPUSH", "bt:b", "x")
            r = c.read()
            assert r == [b"bt:b", b"x"], (tmo, r)
    with env.client() as c:
        assert c.call("PING") == b"PONG"


# ------------------------------------------------------- before AUTH

E_UMBULK = "ERR Protocol error: unauthenticated multibulk length"
E_UBULK = "ERR Protocol error: unauthenticated bulk length"


@test
def test_unauthenticated_size_caps(env):
    """Before AUTH (auth configured), Redis's caps: more than 10 arguments
    or a bulk over 16384 bytes is a protocol error and the connection
    closes, as soon as the length is read. After AUTH, and on a proxy
    without auth, the ordinary limits apply."""
    env.cluster
    p = env.new_proxy(extra="auth:\n  password: capspw")
    refused = [
        (b"*11\r\n", E_UMBULK),
        # 1M arguments announced: refused before any is sent.
        (b"*1048576\r\n$3\r\nGET\r\n", E_UMBULK),
        (b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", E_UBULK),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870000\r\n", E_UBULK),
    ]
    for raw, want in refused:
        with p.client() as c:
            c.send_raw(raw)
            assert c.read() == want, raw
            assert c.is_closed(), raw
    with p.client() as c:
        # At the limits: answered normally (NOAUTH), connection kept.
        assert c.call(*(["MGET"] + ["k"] * 9)) == \
            "NOAUTH Authentication required."
        assert c.call("ECHO", "x" * 16384) == \
            "NOAUTH Authentication required."
        assert c.call("AUTH", "x" * 16384) == \
            "WRONGPASS invalid username-password pair or user is disabled."
        # AUTH pipelined with a big request: the cap is lifted for it.
        c.send(("AUTH", "capspw"), ["MSET"] + ["cap:{a}%d" % (i // 2)
                                              for i in range(40)],
               ("SET", "cap:{a}big", "v" * 100000), ("PING",))
        assert c.read() == b"OK"
        assert c.read() == b"OK"
        assert c.read() == b"OK"
        assert c.read() == b"PONG"
        assert c.call("STRLEN", "cap:{a}big") == 100000
        c.call("DEL", "cap:{a}big", *["cap:{a}%d" % i for i in range(20)])
    # No auth configured: no caps.
    with env.client() as c:
        assert c.call("ECHO", "y" * 20000) == b"y" * 20000
        assert c.call(*(["EXISTS"] + ["cap:n%d" % i for i in range(30)])) == 0
    assert p.alive()


# ------------------------------------------------- HELLO, names, echoes

E_NAME = ("ERR Client names cannot contain spaces, newlines or special "
          "characters.")
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@test
def test_hello_setname_after_auth_validated(env):
    """HELLO parses whole, validates SETNAME as CLIENT SETNAME does, then
    AUTHs; the name is set only once authenticated. A refused HELLO
    changes nothing (no name, no login)."""
    env.cluster
    p = env.new_proxy(extra="auth:\n  password: hellopw")
    with p.client() as c:
        r = c.call("HELLO", "2", "SETNAME", "early")
        assert isinstance(r, Error) and r.startswith("NOAUTH HELLO"), r
        assert c.call("HELLO", "2", "AUTH", "default", "bad", "SETNAME",
                      "early2") == WRONGPASS
        for bad in ("a b", "a\nb", "a\r\n+OK", "\x7f", "caf\xe9", "t\tab"):
            assert c.call("HELLO", "2", "AUTH", "default", "hellopw",
                          "SETNAME", bad) == E_NAME, bad
            # Refused whole: not logged in either.
            assert c.call("GET", "k") == "NOAUTH Authentication required."
        r = c.call("HELLO", "2", "AUTH", "default", "hellopw", "BOGUS")
        assert r == "ERR Syntax error in HELLO option 'BOGUS'", r
        assert c.call("GET", "k") == "NOAUTH Authentication required."
        assert c.call("AUTH", "hellopw") == b"OK"
        assert c.call("CLIENT", "GETNAME") is None
    with p.client() as c:
        r = c.call("HELLO", "2", "AUTH", "default", "hellopw", "SETNAME",
                   "good-name")
        assert isinstance(r, list) and r[:2] == [b"server", b"redis"], r
        assert c.call("CLIENT", "GETNAME") == b"good-name"
        assert b"name=good-name " in c.call("CLIENT", "LIST")
        assert c.call("HELLO", "2", "SETNAME", "x y") == E_NAME
        assert c.call("CLIENT", "GETNAME") == b"good-name"
        assert isinstance(c.call("HELLO", "2", "SETNAME", ""), list)
        assert c.call("CLIENT", "GETNAME") is None


@test
def test_client_setname_validated(env):
    """CLIENT SETNAME refuses spaces, newlines and non-printable bytes, as
    Redis does; "" clears the name."""
    env.cluster
    with env.client() as c:
        assert c.call("CLIENT", "SETNAME", "n1") == b"OK"
        for bad in ("a b", "a\nb", "a\r\nb", "\x00", "\x80", " "):
            assert c.call("CLIENT", "SETNAME", bad) == E_NAME, bad
            assert c.call("CLIENT", "GETNAME") == b"n1"
        for line in c.call("CLIENT", "LIST").split(b"\n"):
            assert line == b"" or line.startswith(b"id="), line
        assert c.call("CLIENT", "SETNAME", "") == b"OK"
        assert c.call("CLIENT", "GETNAME") is None


@test
def test_echoed_arguments_cannot_inject_replies(env):
    """Error texts that quote a client's bytes keep them on one line: CR
    and LF become spaces, so "x\\r\\n+OK" cannot forge a reply. The next
    reply is the answer to the next request."""
    env.cluster
    inject = "x\r\n+OK\r\n:1"
    with env.client() as c:
        cases = [
            (("HELLO", "2", inject),
             "ERR Syntax error in HELLO option 'x  +OK  :1'"),
            (("HELLO", "2", "SETNAME", "ok", inject),
             "ERR Syntax error in HELLO option 'x  +OK  :1'"),
            (("NOSUCH" + inject, inject),
             "ERR unknown command 'NOSUCHx  +OK  :1', with args beginning "
             "with: 'x  +OK  :1' "),
            (("CONFIG", inject),
             "ERR unknown subcommand 'x  +OK  :1'. Try CONFIG HELP."),
        ]
        for req, want in cases:
            replies = c.pipeline([req, ("PING",)])
            assert replies == [want, b"PONG"], (req, replies)


# ------------------------------------------------------------------ TLS

def self_signed(d):
    """A self-signed certificate for 127.0.0.1 (cert, key paths)."""
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "srv.crt"), os.path.join(d, "srv.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def need_openssl():
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("openssl missing in CI")
        raise harness.Skip("openssl not installed")


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(pid, secs):
    t0 = cpu_seconds(pid)
    time.sleep(secs)
    return cpu_seconds(pid) - t0


class TlsByHand:
    """A TLS client over a MemoryBIO: the test sees and sends the exact
    record bytes, so it can hold back part of a record."""

    def __init__(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out)
        self.sock = socket.create_connection((HOST, port), timeout=5)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionClosed("closed during handshake")
                self.inc.write(data)
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def record(self, plaintext):
        """The TLS bytes that carry plaintext (not sent)."""
        self.obj.write(plaintext)
        return self.out.read()

    def read_until(self, end, timeout=5):
        got = b""
        deadline = time.time() + timeout
        while not got.endswith(end) and time.time() < deadline:
            try:
                got += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            data = self.sock.recv(65536)
            if not data:
                break
            self.inc.write(data)
        return got

    def close(self):
        self.sock.close()


@test(timeout=90)
def test_tls_partial_record_does_not_spin(env):
    """A TLS client that holds back the last byte of a record: its worker
    (the only one) keeps serving others at low CPU, and the request is
    answered once the byte arrives. Also pipelined records and one record
    split at every byte."""
    need_openssl()
    env.cluster
    cert, key = self_signed(os.path.join(harness.tmp_root(), "sec-tls"))
    tport = harness.free_port()
    p = env.new_proxy(extra=(
        "workers: 1\ntls:\n  listen: [%s:%d]\n  cert: %s\n  key: %s\n"
        % (HOST, tport, cert, key)))
    t = TlsByHand(tport)
    try:
        rec = t.record(b"*1\r\n$4\r\nPING\r\n")
        t.sock.sendall(rec[:-1])
        time.sleep(0.2)
        used = cpu_over(p.pid, 1.0)
        log("    proxy CPU over 1s with a partial record held: %.2fs" % used)
        assert used < 0.5, used
        with p.client() as c:
            assert answers_quickly(c, 5.0, "PING") == b"PONG"
        t.sock.sendall(rec[-1:])
        assert t.read_until(b"+PONG\r\n") == b"+PONG\r\n"
        # Two requests in two records, the second one byte short, then a
        # record fed one byte at a time.
        rec = t.record(b"*2\r\n$4\r\nECHO\r\n$1\r\na\r\n") + \
            t.record(b"*2\r\n$4\r\nECHO\r\n$1\r\nb\r\n")
        t.sock.sendall(rec[:-1])
        assert t.read_until(b"$1\r\na\r\n") == b"$1\r\na\r\n"
        assert cpu_over(p.pid, 0.5) < 0.3
        t.sock.sendall(rec[-1:])
        assert t.read_until(b"$1\r\nb\r\n") == b"$1\r\nb\r\n"
        for byte in t.record(b"*1\r\n$4\r\nPING\r\n"):
            t.sock.sendall(bytes([byte]))
        assert t.read_until(b"+PONG\r\n") == b"+PONG\r\n"
    finally:
        t.close()
    with p.client() as c:
        assert c.call("PING") == b"PONG"


@test(timeout=60)
def test_tls_renegotiation_refused(env):
    """A TLS 1.2 client asking to renegotiate is refused (SSL_OP_NO_
    RENEGOTIATION; OpenSSL 3 also refuses client-initiated renegotiation
    by default, so this guards 1.1.1 builds and regressions)."""
    need_openssl()
    env.cluster
    cert, key = self_signed(os.path.join(harness.tmp_root(), "sec-reneg"))
    tport = harness.free_port()
    env.new_proxy(extra="tls:\n  listen: [%s:%d]\n  cert: %s\n  key: %s\n"
                  % (HOST, tport, cert, key))
    cli = subprocess.Popen(
        ["openssl", "s_client", "-tls1_2", "-connect",
         "%s:%d" % (HOST, tport)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # s_client gives up once the renegotiation is refused: writes
        # after it may find the pipe closed.
        for line, pause in ((b"PING\r\n", 0.5), (b"R\n", 1.0),
                            (b"PING\r\n", 0)):
            try:
                cli.stdin.write(line)
                cli.stdin.flush()
            except OSError:
                break
            time.sleep(pause)
        try:
            cli.stdin.close()
        except OSError:
            pass
        out = cli.stdout.read().decode(errors="replace")
        cli.wait(timeout=10)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert "+PONG" in out, out
    assert "RENEGOTIATING" in out, out
    assert "no renegotiation" in out, out
    assert out.count("+PONG") == 1, out


@test
def test_tls_require_client_cert_needs_ca(env):
    """tls.require_client_cert without tls.ca accepted clients with no
    certificate at all: the configuration is refused, with file:line."""
    d = os.path.join(harness.tmp_root(), "sec-tlsconf")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "c.yml")
    with open(path, "w") as f:
        f.write("cluster:\n  seeds: [127.0.0.1:7000]\n"
                "tls:\n  listen: [127.0.0.1:6390]\n  cert: c.pem\n"
                "  key: k.pem\n  require_client_cert: true\n")
    r = subprocess.run([harness.proxy_bin(), "-t", "-c", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    assert r.returncode == 1, r
    assert ("c.yml:7:24: tls: 'require_client_cert' needs 'ca'"
            in r.stderr.decode()), r.stderr


# ---------------------------------------------------------- metrics HTTP

def http_get(port, path, timeout=5):
    """(status, body) of GET path, by hand (HTTP/1.1, Connection: close)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def metrics_proxy(env, extra=""):
    mport = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]\n%s" % (
        HOST, mport, extra))
    return p, mport


def cut_off(s):
    """True once the peer closed or reset s (EOF, or an error on send)."""
    try:
        s.settimeout(0.05)
        return s.recv(65536) == b""
    except (socket.timeout, TimeoutError):
        return False
    except OSError:
        return True


@test(timeout=60)
def test_metrics_head_size_and_time_limits(env):
    """A client that sends headers forever is cut off (431) near 8 KB; one
    that sends its head a byte at a time, or nothing, is cut off after
    10 s (408); /metrics keeps answering meanwhile."""
    env.cluster
    p, mport = metrics_proxy(env)
    s = socket.create_connection((HOST, mport), timeout=5)
    sent, first = 0, b""
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    try:
        while sent < 4 << 20:
            s.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")
            sent += 1012
            if sent % (64 << 10) < 1012 and cut_off(s):
                break
    except OSError:
        pass
    try:
        s.settimeout(2)
        first = s.recv(100)
    except OSError:
        pass
    s.close()
    log("    endless headers: cut off after %d bytes sent (%r)" % (
        sent, first[:40]))
    assert sent < 1 << 20, sent
    assert first == b"" or first.startswith(b"HTTP/1.1 431"), first
    # Slow: a byte every 0.3 s, and silent: both closed by the deadline.
    slow = socket.create_connection((HOST, mport), timeout=5)
    idle = socket.create_connection((HOST, mport), timeout=5)
    t0 = time.time()
    closed_at = None
    for b in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"z" * 100:
        try:
            slow.sendall(bytes([b]))
        except OSError:
            closed_at = time.time() - t0
            break
        if cut_off(slow):
            closed_at = time.time() - t0
            break
        time.sleep(0.25)
        if time.time() - t0 > 20:
            break
    assert closed_at is not None and 8 < closed_at < 14, closed_at
    idle.settimeout(5)
    assert idle.recv(100).startswith(b"HTTP/1.1 408"), "idle not closed"
    slow.close()
    idle.close()
    assert http_get(mport, "/metrics")[0] == 200
    assert p.alive()


@test(timeout=60)
def test_metrics_connection_cap(env):
    """100 idle connections: at most 64 stay open (the oldest idle ones
    make room), and /metrics still answers a new client at once. Methods
    and paths other than GET/HEAD of the three pages are refused."""
    env.cluster
    p, mport = metrics_proxy(env)
    idle = [socket.create_connection((HOST, mport), timeout=5)
            for _ in range(100)]
    t = time.time()
    status, body = http_get(mport, "/metrics")
    assert status == 200 and b"slotproxy_client_connections" in body
    took = time.time() - t
    assert took < 4, took

    def open_now():
        """Idle sockets not closed by the proxy (EOF or reset)."""
        r, _, _ = select.select(idle, [], [], 0)
        return len(idle) - sum(1 for s in r if cut_off(s))
    # The closes reach this side a little later on a loaded machine; all
    # before the 10 s head deadline closes the rest.
    got = []
    try:
        wait_until(lambda: got.append(open_now()) or got[-1] <= 64, 6,
                   "at most 64 idle metrics connections open")
    except harness.HarnessError:
        pass
    still_open = got[-1]
    log("    idle metrics connections still open: %d of 100" % still_open)
    assert still_open <= 64, still_open
    for s in idle:
        s.close()
    assert http_get(mport, "/healthz") == (200, b"ok\n")
    assert http_get(mport, "/nope")[0] == 404
    with socket.create_connection((HOST, mport), timeout=5) as s:
        s.sendall(b"POST /metrics HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")
        assert s.recv(100).startswith(b"HTTP/1.1 405")
    with socket.create_connection((HOST, mport), timeout=5) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection((HOST, mport), timeout=5) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\n\r\n")
        r = s.recv(1000)
        assert r.startswith(b"HTTP/1.1 200") and r.endswith(b"\r\n\r\n"), r


@test(timeout=90)
def test_accept_emfile_backs_off(env):
    """With RLIMIT_NOFILE low, clients beyond it make accept() fail with
    EMFILE: the proxy must not spin (CPU stays low, the log does not
    flood), and it serves again once connections close. Both listeners:
    the RESP port (workers) and the metrics port (main thread)."""
    if shutil.which("prlimit") is None:
        raise harness.Skip("prlimit (util-linux) not installed")
    env.cluster
    mport = harness.free_port()
    p = harness.Proxy([m.port for m in env.cluster.masters()], extra=(
        "metrics:\n  listen: [%s:%d]\nclients:\n  max_clients: 1000\n"
        % (HOST, mport)))
    p.wrapper = ["prlimit", "--nofile=64:64"]
    env.proxies.append(p)
    p.start()
    socks = []
    try:
        for _ in range(90):
            socks.append(socket.create_connection((HOST, p.port), timeout=5))
        for _ in range(10):
            socks.append(socket.create_connection((HOST, mport), timeout=5))
        time.sleep(0.5)
        size0 = os.path.getsize(p.log)
        used = cpu_over(p.pid, 1.0)
        with open(p.log, "rb") as f:
            f.seek(size0)
            lines = f.read().count(b"accept")
        log("    at EMFILE: proxy CPU %.2fs over 1s, %d accept log lines"
            % (used, lines))
        assert used < 0.3, used
        assert lines <= 4, lines
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: p.client(timeout=2).call("PING") == b"PONG", 20,
               "the proxy to serve again")
    wait_until(lambda: http_get(mport, "/healthz", 2)[0] == 200, 20,
               "metrics to serve again")
    assert "Too many open files" in open(p.log, errors="replace").read()
