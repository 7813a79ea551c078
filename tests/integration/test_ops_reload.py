#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Reloads that say what they did (issue 13): SIGHUP logs every changed
# option with its old and new value and whether it was applied, applies
# to new connections or needs a restart; slowlog.max_len, metrics.listen,
# cluster.read_from and backend_tls.* take effect without a restart.
# `slotproxy -t` checks what start-up checks (TLS files, binding), and
# `--dump-config` / PROXY CONFIG GET show the configuration in force from
# the option table.

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, HOST, test, wait_until, log  # noqa: E402


def log_text(p):
    with open(p.log, encoding="utf-8", errors="replace") as f:
        return f.read()


def reload(p, text):
    """Write text as p's config, send SIGHUP and wait until the main
    thread has applied or refused it. Returns the log lines it wrote."""
    done = ("reload: configuration from", "keeping the running "
            "configuration")
    before = log_text(p)
    n = sum(before.count(d) for d in done)
    with open(p.conf, "w") as f:
        f.write(text)
    os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: sum(log_text(p).count(d) for d in done) > n, 20,
               "reload handled")
    return log_text(p)[len(before):]


def with_cluster_option(base, line):
    """base (a harness config) with `line` added to its cluster section."""
    return base.replace("cluster:\n", "cluster:\n  %s\n" % line, 1)


def config_get(c, pattern):
    r = c.call("PROXY", "CONFIG", "GET", pattern)
    return {r[i].decode(): r[i + 1].decode() for i in range(0, len(r), 2)}


def proxy_run(*args):
    return subprocess.run([harness.proxy_bin()] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=20)


def http_status(port):
    """The status of GET /metrics on port, or None when nothing answers."""
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port),
                                    timeout=2) as r:
            return r.status
    except (urllib.error.URLError, OSError):
        return None


def sibling(name):
    """Another test file's helpers (test_tls's certificates, test_security's
    cmdstat_calls). Loaded under another module name, and its tests
    unregistered again, so they neither run twice nor keep that file from
    loading normally."""
    saved = list(harness._tests)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        name + ".py")
    spec = importlib.util.spec_from_file_location("_ops_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    harness._tests[:] = saved
    return mod


def need_openssl():
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("openssl missing in CI")
        raise harness.Skip("openssl not installed")


@test(timeout=60)
def test_reload_reports_each_change(env):
    """One log line per changed option: old and new value (passwords as
    ***) and applied / needs a restart; restart-only options keep the
    value in force (PROXY CONFIG GET shows it); an invalid file changes
    nothing; the same file again changes nothing."""
    env.cluster
    p = env.new_proxy()
    base = open(p.conf).read()
    with p.client() as c:
        workers = int(config_get(c, "workers")["workers"])
        text = with_cluster_option(base, "connections_per_node: 3")
        text = text.replace("request_timeout: 5s", "request_timeout: 2s")
        text = re.sub(r"(?m)^workers: \d+\n", "", text)
        text += "workers: %d\nauth:\n  password: s3cr3t-pw\n" % (workers + 1)
        out = reload(p, text)
        log(out.rstrip())
        assert "reload: cluster.request_timeout: 5s -> 2s (applied)" in out
        assert ("reload: workers: %d -> %d (needs a restart; %d stays in "
                "force)" % (workers, workers + 1, workers)) in out, out
        assert ("reload: cluster.connections_per_node: 1 -> 3 (needs a "
                "restart") in out, out
        assert "reload: auth.password: (none) -> *** (applied)" in out, out
        assert "s3cr3t" not in log_text(p)
        assert "(4 options changed)" in out, out
        # Reload re-checks open connections against the new auth.
        assert c.call("AUTH", "s3cr3t-pw") == b"OK"
        got = config_get(c, "*")
        assert got["cluster.request_timeout"] == "2s", got
        assert got["workers"] == str(workers), got
        assert got["cluster.connections_per_node"] == "1", got
        assert got["auth.password"] == "***", got
        assert got["tls.cert"] == "", got
        assert got["clients.output_limit"] == "32mb", got
        assert len(got) > 40, got
        cl = config_get(c, "cluster.*")
        assert all(k.startswith("cluster.") for k in cl) and \
            len(cl) >= 10, cl
        assert config_get(c, "CLUSTER.REQUEST_TIMEOUT") == \
            {"cluster.request_timeout": "2s"}
        assert config_get(c, "*timeout")["clients.idle_timeout"] == "0"
        assert config_get(c, "no.such.*") == {}
        r = c.call("PROXY", "CONFIG", "GET", "workers", "shutdown_*")
        assert r == [b"workers", str(workers).encode(), b"shutdown_grace",
                     b"5s"], r
        # Invalid: nothing applied, nothing reported as changed.
        out = reload(p, text + "disabled_commands: [NOSUCH]\n")
        assert "keeping the running configuration" in out, out
        assert " -> " not in out, out
        # The same file again: the restart-only options are still
        # pending, nothing else changed.
        out = reload(p, text)
        assert "(2 options changed)" in out, out
        assert "request_timeout" not in out, out


@test(timeout=60)
def test_reload_slowlog_max_len(env):
    """slowlog.max_len resizes each worker's ring on reload, keeping the
    newest entries."""
    env.cluster
    p = env.new_proxy(extra="slowlog:\n  threshold: 0\n  max_len: 10")
    base = open(p.conf).read()
    with p.client() as c:
        for i in range(8):
            assert c.call("SET", "slr:%d" % i, "v") == b"OK"
        assert c.call("SLOWLOG", "LEN") == 8
        out = reload(p, base.replace("max_len: 10", "max_len: 3"))
        assert "reload: slowlog.max_len: 10 -> 3 (applied)" in out, out
        wait_until(lambda: c.call("SLOWLOG", "LEN") == 3, 20,
                   "slow log cut to 3")
        got = c.call("SLOWLOG", "GET", "10")
        assert [e[3][1] for e in got] == [b"slr:7", b"slr:6", b"slr:5"], got
        assert got[0][0] == got[1][0] + 1 == got[2][0] + 2, got
        # Larger again: the 3 kept, room for 5.
        reload(p, base.replace("max_len: 10", "max_len: 5"))
        wait_until(lambda: c.call("SET", "slr:8", "v") == b"OK" and
                   c.call("SLOWLOG", "LEN") == 4, 20, "slow log grows")
        for i in range(9, 14):
            assert c.call("SET", "slr:%d" % i, "v") == b"OK"
        assert c.call("SLOWLOG", "LEN") == 5
        assert c.call("SLOWLOG", "GET", "1")[0][3][1] == b"slr:13"
        # 0 turns it off.
        reload(p, base.replace("max_len: 10", "max_len: 0"))
        wait_until(lambda: c.call("SLOWLOG", "LEN") == 0, 20, "slow log off")
        assert c.call("SET", "slr:0", "v") == b"OK"
        assert c.call("SLOWLOG", "LEN") == 0
        c.call("DEL", *["slr:%d" % i for i in range(14)])


@test(timeout=60)
def test_reload_metrics_listen(env):
    """metrics.listen moves on reload: the new address answers, the old
    one stops; addresses sharing a port work; an address that cannot be
    bound keeps the endpoint where it was; an empty list closes it."""
    env.cluster
    a, b, c2 = harness.free_port(), harness.free_port(), harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]" % (HOST, a))
    base = open(p.conf).read()
    old = "listen: [%s:%d]" % (HOST, a)

    def metrics_at(*ports):
        return base.replace(old, "listen: [%s]" % ", ".join(
            "%s:%d" % (HOST, x) for x in ports))
    wait_until(lambda: http_status(a) == 200, 20, "metrics on %d" % a)
    out = reload(p, metrics_at(b))
    assert ('reload: metrics.listen: ["%s:%d"] -> ["%s:%d"] (applied)' %
            (HOST, a, HOST, b)) in out, out
    wait_until(lambda: http_status(b) == 200, 20, "metrics moved to %d" % b)
    assert http_status(a) is None
    # Keep b, add c2: b is bound again after the old endpoint closed.
    reload(p, metrics_at(b, c2))
    wait_until(lambda: http_status(c2) == 200, 20, "metrics on %d" % c2)
    assert http_status(b) == 200
    # A port something else holds: logged, the endpoint stays.
    busy = socket.socket()
    busy.bind((HOST, 0))
    busy.listen(1)
    try:
        out = reload(p, metrics_at(busy.getsockname()[1]))
        assert "cannot listen for metrics" in out, out
        assert "metrics.listen" in out and "(applied)" not in out, out
        assert http_status(b) == 200 and http_status(c2) == 200
        with p.client() as c:
            assert config_get(c, "metrics.listen") == {
                "metrics.listen": '["%s:%d", "%s:%d"]' % (HOST, b, HOST, c2)}
    finally:
        busy.close()
    reload(p, base.replace(old, "listen: []"))
    wait_until(lambda: http_status(b) is None and http_status(c2) is None,
               20, "metrics endpoint closed")
    with p.client() as c:
        assert c.call("PING") == b"PONG"


@test(timeout=60)
def test_reload_counted_in_metrics(env):
    """Reloads show in /metrics: applied and refused ones counted apart,
    and the time the configuration in force was loaded moves only when a
    reload is applied."""
    env.cluster
    port = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]" % (HOST, port))
    base = open(p.conf).read()
    ok = 'slotproxy_config_reloads_total{result="ok"}'
    bad = 'slotproxy_config_reloads_total{result="invalid"}'
    stamp = "slotproxy_config_last_reload_success_timestamp_seconds"
    wait_until(lambda: http_status(port) == 200, 20, "metrics up")
    m = harness.metrics(port)
    assert m[ok] == 0 and m[bad] == 0, m
    started = m[stamp]
    assert abs(started - __import__("time").time()) < 60, started
    reload(p, base.replace("level: notice", "level: info"))
    m = harness.metrics(port)
    assert (m[ok], m[bad]) == (1, 0), m
    assert m[stamp] >= started
    after_ok = m[stamp]
    reload(p, base + "no_such_option: 1\n")
    m = harness.metrics(port)
    assert (m[ok], m[bad]) == (1, 1), m
    assert m[stamp] == after_ok


@test(timeout=90)
def test_reload_read_from_replica(env):
    """read_from: master -> replica on reload starts the replication poll
    and sends reads to replicas; back to master sends them to masters."""
    cl = env.cluster
    cl.wait_ok(30)
    p = env.new_proxy()
    base = open(p.conf).read()
    keys = ["rfr:%d" % i for i in range(30)]
    cmdstat_calls = sibling("test_security").cmdstat_calls

    def gets_on_replicas(c):
        before = {n.port: cmdstat_calls(n, "get") for n in cl.nodes}
        # (read_from: replica fails reads until a poll finds a replica.)
        if c.pipeline([("GET", k) for k in keys]) != \
                [k.encode() for k in keys]:
            return None
        after = {n.port: cmdstat_calls(n, "get") for n in cl.nodes}
        masters = cl.masters()
        return (sum(after[n.port] - before[n.port] for n in cl.nodes
                    if n not in masters),
                sum(after[n.port] - before[n.port] for n in masters))
    with p.client() as c:
        assert c.pipeline([("SET", k, k) for k in keys]) == [b"OK"] * 30
        assert gets_on_replicas(c) == (0, 30)
        out = reload(p, with_cluster_option(base, "read_from: replica"))
        assert "reload: cluster.read_from: master -> replica (applied)" in \
            out, out
        wait_until(lambda: gets_on_replicas(c) == (30, 0), 15,
                   "reads on replicas after the reload")
        out = reload(p, base)
        assert "reload: cluster.read_from: replica -> master (applied)" in \
            out, out
        wait_until(lambda: gets_on_replicas(c) == (0, 30), 20,
                   "reads back on masters")
        c.call("DEL", *keys)


@test(timeout=120)
def test_reload_backend_tls(env):
    """backend_tls.* applies to backend connections opened after the
    reload: a proxy that cannot verify its TLS node gets through once the
    right CA is configured; connections already open keep their context
    when it changes again; a CA file that does not load is refused."""
    need_openssl()
    t = sibling("test_tls")
    d = os.path.join(harness.tmp_root(), "ops-tls")
    certs = t.make_certs(os.path.join(d, "a"))
    other = t.make_certs(os.path.join(d, "b"))
    port, node = t.tls_node(certs, os.path.join(d, "node"))
    tls_conf = "backend_tls:\n  enabled: true\n  ca: %s\n"
    p = harness.Proxy([port], extra=tls_conf % other["ca.crt"])
    env.proxies.append(p)
    try:
        p.start()
        base = open(p.conf).read()
        with p.client() as c:
            r = c.call("GET", "btls:k")
            assert isinstance(r, Error), r
            out = reload(p, base.replace(other["ca.crt"], certs["ca.crt"]))
            assert ("reload: backend_tls.ca: %s -> %s (applies to new "
                    "connections)" % (other["ca.crt"], certs["ca.crt"])) \
                in out, out
            wait_until(lambda: c.call("SET", "btls:k", "v") == b"OK", 15,
                       "backend reached with the new CA")
            # Back to the wrong CA: the open connection keeps working.
            reload(p, base)
            for _ in range(5):
                assert c.call("GET", "btls:k") == b"v"
            # A CA file that does not load: the reload is refused.
            out = reload(p, base.replace(other["ca.crt"], "/nonexistent"))
            assert "backend_tls: cannot load CA /nonexistent" in out, out
            assert "keeping the running configuration" in out, out
            assert c.call("DEL", "btls:k") == 1
    finally:
        harness.stop_proc(p.proc)
        harness.stop_proc(node)


@test(timeout=60)
def test_check_config(env):
    """-t loads the TLS files (the key must match the certificate) and
    binds every address, with FILE:LINE messages and exit 1; an address
    held by a running slotproxy's metrics endpoint is a note."""
    need_openssl()
    t = sibling("test_tls")
    d = os.path.join(harness.tmp_root(), "ops-check")
    certs = t.make_certs(os.path.join(d, "certs"))
    path = os.path.join(d, "c.yml")
    seeds = "cluster:\n  seeds: [127.0.0.1:7000]\n"
    port = harness.free_port()
    cases = [
        ("tls:\n  listen: [127.0.0.1:%d]\n  cert: %s\n  key: %s\n" %
         (port, certs["server.crt"], certs["client.key"]),
         ":6: tls: cannot load key %s: key values mismatch" %
         certs["client.key"]),
        ("tls:\n  listen: [127.0.0.1:%d]\n  cert: /nonexistent.crt\n"
         "  key: %s\n" % (port, certs["server.key"]),
         ":5: tls: cannot load certificate /nonexistent.crt"),
        ("backend_tls:\n  enabled: true\n  ca: /nonexistent-ca.crt\n",
         ":5: backend_tls: cannot load CA /nonexistent-ca.crt"),
        ("listen:\n  - 127.0.0.1:%d\n  - 192.0.2.1:%d\n" % (port, port),
         ":5: listen: 192.0.2.1:%d: cannot bind: Cannot assign requested "
         "address" % port),
        ("metrics:\n  listen: [\"[::1]:%d\", \"[2001:db8::1]:%d\"]\n" %
         (port, port),
         ":4: metrics.listen: [2001:db8::1]:%d: cannot bind: Cannot assign "
         "requested address" % port),
    ]
    for extra, want in cases:
        with open(path, "w") as f:
            f.write(seeds + extra)
        r = proxy_run("-t", "-c", path)
        err = r.stderr.decode()
        assert r.returncode == 1, (extra, r.returncode, err)
        assert (path + want) in err, (want, err)
    # A valid TLS setup passes.
    with open(path, "w") as f:
        f.write(seeds + "tls:\n  listen: [127.0.0.1:%d]\n  cert: %s\n"
                "  key: %s\n" % (port, certs["server.crt"],
                                 certs["server.key"]))
    r = proxy_run("-t", "-c", path)
    assert r.returncode == 0, r.stderr
    # systemctl reload runs -t while the proxy runs: its listeners share
    # their port (SO_REUSEPORT), its metrics endpoint does not: a note.
    env.cluster
    m = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]" % (HOST, m))
    r = proxy_run("-t", "-c", p.conf)
    out = r.stdout.decode()
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert ("note: metrics.listen: %s:%d is in use (binding not tried past "
            "that)" % (HOST, m)) in out, out
    assert "configuration is valid" in out, out
    assert "note: listen" not in out, out


@test(timeout=30)
def test_dump_config_round_trip(env):
    """--dump-config prints every option from the table (defaults filled
    in, passwords as ***) as YAML that -t accepts; dumping the dump gives
    the same text; PROXY CONFIG GET shows the same values."""
    d = os.path.join(harness.tmp_root(), "ops-dump")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "src.yml")
    with open(src, "w") as f:
        f.write("listen:\n  - 127.0.0.1:%d\n  - \"[::1]:%d\"\n"
                "workers: 2\n"
                "cluster:\n  seeds: [127.0.0.1:7000, 127.0.0.1:7001]\n"
                "  request_timeout: 1500\n  password: pw-in-file\n"
                "clients:\n  output_limit: 2048kb\n"
                "disabled_commands: [KEYS]\n"
                "auth:\n  users:\n"
                "    - {name: ops, password: pw2, role: admin}\n"
                % (harness.free_port(), harness.free_port()))
    os.chmod(src, 0o600)
    r = proxy_run("--dump-config", "-c", src)
    assert r.returncode == 0, r.stderr
    dump = r.stdout.decode()
    log("    " + "\n    ".join(dump.splitlines()[:12]) + "\n    ...")
    assert "pw-in-file" not in dump and "pw2" not in dump
    for line in ("workers: 2\n", "  request_timeout: 1500ms\n",
                 "  output_limit: 2mb\n", "  password: \"***\"\n",
                 "  max_clients: 10000\n", "  # cert: (not set)\n",
                 "disabled_commands: [\"keys\"]\n",
                 "  seeds: [\"127.0.0.1:7000\", \"127.0.0.1:7001\"]\n"):
        assert line in dump, (line, dump)
    out1 = os.path.join(d, "dump1.yml")
    with open(out1, "w") as f:
        f.write(dump)
    r = proxy_run("-t", "-c", out1)
    assert r.returncode == 0, r.stderr
    r = proxy_run("--dump-config", "-c", out1)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == dump
    # The running proxy shows the same values, from the same table.
    with env.proxy.client() as c:
        got = config_get(c, "*")
    r = proxy_run("--dump-config", "-c", env.proxy.conf)
    path = []  # the sections the line is in, two spaces per level
    for line in r.stdout.decode().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        key, _, value = line.strip().partition(": ")
        del path[depth:]
        if not value:
            path.append(key.rstrip(":"))
            continue
        name = ".".join(path + [key])
        shown = got[name]
        if value.startswith('"'):
            value = value[1:-1]
        assert shown == value, (name, shown, value)


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
