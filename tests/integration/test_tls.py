#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# TLS on both sides: clients reach the proxy over TLS (with and without a
# client certificate required), and the proxy reaches a TLS-only Redis
# Cluster node (tls-port, tls-cluster) verifying its certificate.
# Certificates are made by the test with the openssl command.

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, test, wait_until, log  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1/localhost and a client
    certificate, all signed by the CA."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=slotproxy-test-ca", "-keyout", "ca.key",
            "-out", "ca.crt", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
                "/CN=%s" % name, "-keyout", name + ".key", "-out",
                name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", "san.ext", "-out", name + ".crt", cwd=d)
    return {k: os.path.join(d, k) for k in
            ("ca.crt", "server.crt", "server.key", "client.crt",
             "client.key")}


def tls_node(certs, d):
    """A one-node Redis Cluster that only speaks TLS, owning every slot."""
    port = harness.free_cluster_port()
    os.makedirs(d, exist_ok=True)
    proc = harness.spawn([
        "redis-server", "--port", "0", "--tls-port", str(port),
        "--bind", HOST, "--tls-cert-file", certs["server.crt"],
        "--tls-key-file", certs["server.key"],
        "--tls-ca-cert-file", certs["ca.crt"], "--tls-auth-clients", "no",
        "--tls-cluster", "yes", "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf", "--dir", d, "--save", "",
        "--appendonly", "no", "--loglevel", "warning",
    ], os.path.join(d, "redis.log"), "redis-tls-%d" % port, cwd=d)
    cli = ["redis-cli", "-p", str(port), "--tls", "--cacert",
           certs["ca.crt"]]

    def call(*args):
        return subprocess.run(cli + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=10
                              ).stdout.decode().strip()
    wait_until(lambda: call("PING") == "PONG", 10, "TLS redis-server")
    assert call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == "OK"
    wait_until(lambda: "cluster_state:ok" in call("CLUSTER", "INFO"), 20,
               "one-node TLS cluster ok")
    return port, proc


def tls_client(port, certs, with_cert):
    ctx = ssl.create_default_context(cafile=certs["ca.crt"])
    if with_cert:
        ctx.load_cert_chain(certs["client.crt"], certs["client.key"])
    raw = socket.create_connection((HOST, port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def roundtrip(s, payload):
    s.sendall(payload)
    data = b""
    deadline = time.time() + 5
    while time.time() < deadline and not data.endswith(b"\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@test(timeout=120)
def test_tls_both_sides(env):
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("openssl missing in CI")
        raise harness.Skip("openssl not installed")
    d = os.path.join(harness.tmp_root(), "tls")
    certs = make_certs(d)
    port, node = tls_node(certs, os.path.join(d, "node"))
    tport = harness.free_port()
    p = harness.Proxy([port], extra=(
        "tls:\n  listen: [%s:%d]\n  cert: %s\n  key: %s\n  ca: %s\n"
        "  require_client_cert: true\n"
        "backend_tls:\n  enabled: true\n  ca: %s\n" % (
            HOST, tport, certs["server.crt"], certs["server.key"],
            certs["ca.crt"], certs["ca.crt"])))
    env.proxies.append(p)
    try:
        p.start()
        # Plain client -> proxy -> TLS node.
        with p.client() as c:
            harness.wait_until(lambda: c.call("SET", "tls:k", "v") == b"OK",
                               10, "proxy to reach the TLS node")
            assert c.call("GET", "tls:k") == b"v"
            big = "x" * 300000
            assert c.call("SET", "tls:big", big) == b"OK"
            assert c.call("GET", "tls:big") == big.encode()
        # TLS client with a certificate -> proxy.
        s = tls_client(tport, certs, True)
        try:
            assert roundtrip(s, b"PING\r\n") == b"+PONG\r\n"
            r = roundtrip(s, b"*2\r\n$3\r\nGET\r\n$5\r\ntls:k\r\n")
            assert r == b"$1\r\nv\r\n", r
            # A pipeline larger than one TLS record.
            n = 2000
            s.sendall(b"*2\r\n$3\r\nGET\r\n$5\r\ntls:k\r\n" * n)
            want = b"$1\r\nv\r\n" * n
            got = b""
            deadline = time.time() + 10
            while len(got) < len(want) and time.time() < deadline:
                got += s.recv(65536)
            assert got == want, len(got)
        finally:
            s.close()
        # Without a client certificate the handshake is refused.
        refused = False
        try:
            s = tls_client(tport, certs, False)
            s.sendall(b"PING\r\n")
            refused = s.recv(100) == b""
            s.close()
        except (ssl.SSLError, OSError):
            refused = True
        assert refused, "TLS client without a certificate was served"
        log("    TLS: plain and TLS clients served through a TLS-only node")

        # SIGHUP: a new TLS address opens, the old one closes.
        tport2 = harness.free_port()
        with open(p.conf) as f:
            conf = f.read()
        with open(p.conf, "w") as f:
            f.write(conf.replace("%s:%d" % (HOST, tport),
                                 "%s:%d" % (HOST, tport2)))
        os.kill(p.pid, __import__("signal").SIGHUP)
        wait_until(lambda: "configuration from" in open(p.log).read(), 20,
                   "reload")

        def accepts(port):
            with socket.socket() as probe:
                probe.settimeout(1)
                return probe.connect_ex((HOST, port)) == 0
        # Workers open and close listeners at their next loop turn.
        wait_until(lambda: accepts(tport2), 20, "the new TLS address")
        s = tls_client(tport2, certs, True)
        try:
            assert roundtrip(s, b"PING\r\n") == b"+PONG\r\n"
        finally:
            s.close()
        wait_until(lambda: not accepts(tport), 20, "the old TLS port closed")
    finally:
        harness.stop_proc(p.proc)
        harness.stop_proc(node)


@test(timeout=60)
def test_tls_backend_verify_fails(env):
    """A node whose certificate the configured CA does not vouch for:
    the handshake fails and clients get a clear error, not a hang."""
    if shutil.which("openssl") is None:
        raise harness.Skip("openssl not installed")
    d = os.path.join(harness.tmp_root(), "tls2")
    certs = make_certs(os.path.join(d, "a"))
    other = make_certs(os.path.join(d, "b"))
    port, node = tls_node(certs, os.path.join(d, "node"))
    p = harness.Proxy([port], extra=(
        "backend_tls:\n  enabled: true\n  ca: %s\n" % other["ca.crt"]))
    env.proxies.append(p)
    try:
        p.start()
        with p.client() as c:
            r = c.call("GET", "tls:k")
            assert isinstance(r, harness.Error), r
            log("    TLS verify failure: client sees %r" % r.msg)
            assert "TLS" in r.msg or "CLUSTERDOWN" in r.msg, r
        assert "TLS handshake failed" in open(p.log).read()
    finally:
        harness.stop_proc(p.proc)
        harness.stop_proc(node)


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
