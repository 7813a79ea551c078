#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Client authentication (one password, users with roles, HELLO AUTH,
# ${ENV} secrets), backend authentication with an ACL user, and the
# process lifecycle: drain on SIGTERM, --daemonize and --pidfile.

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, HOST, test, wait_until, log  # noqa: E402

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@test
def test_auth_password(env):
    env.cluster
    p = env.new_proxy(extra="auth:\n  password: s3cret")
    with p.client() as c:
        assert c.call("GET", "sec:k") == NOAUTH
        assert c.call("SET", "sec:k", "v") == NOAUTH
        assert c.call("PING") == b"PONG"
        assert c.call("AUTH", "wrong") == WRONGPASS
        assert c.call("AUTH", "default", "wrong") == WRONGPASS
        assert c.call("GET", "sec:k") == NOAUTH
        assert c.call("AUTH", "s3cret") == b"OK"
        assert c.call("SET", "sec:k", "v") == b"OK"
        assert c.call("GET", "sec:k") == b"v"
    with p.client() as c:
        assert c.call("AUTH", "default", "s3cret") == b"OK"
        assert c.call("DEL", "sec:k") == 1
    with p.client() as c:
        r = c.call("HELLO", "2")
        assert isinstance(r, Error) and r.startswith("NOAUTH HELLO must"), r
        r = c.call("HELLO", "2", "AUTH", "default", "nope")
        assert r == WRONGPASS, r
        r = c.call("HELLO", "2", "AUTH", "default", "s3cret")
        assert isinstance(r, list) and r[:2] == [b"server", b"redis"], r
        assert c.call("PING") == b"PONG"
    # Commands queued in MULTI before AUTH are refused, and the
    # transaction aborts, as with Redis.
    with p.client() as c:
        assert c.call("MULTI") == NOAUTH
    # The password never reaches the log.
    assert "s3cret" not in open(p.log, errors="replace").read()


@test
def test_auth_users_roles_env(env):
    env.cluster
    os.environ["SP_TEST_APP_PW"] = "from-env"
    try:
        p = env.new_proxy(extra=(
            "auth:\n  users:\n"
            "    - {name: app, password: \"${SP_TEST_APP_PW}\", "
            "role: read-write}\n"
            "    - {name: ro, password: ropw, role: read-only}\n"))
    finally:
        del os.environ["SP_TEST_APP_PW"]
    with p.client() as c:
        assert c.call("AUTH", "app", "${SP_TEST_APP_PW}") == WRONGPASS
        assert c.call("AUTH", "app", "from-env") == b"OK"
        assert c.call("SET", "sec:r", "1") == b"OK"
        assert c.call("AUTH", "ro", "ropw") == b"OK"
        assert c.call("GET", "sec:r") == b"1"
        assert c.call("SET", "sec:r", "2") == \
            "NOPERM this user has no permissions to run the 'set' command"
        assert c.call("DEL", "sec:r") == \
            "NOPERM this user has no permissions to run the 'del' command"
        assert c.call("GET", "sec:r") == b"1"
        # A password-only AUTH means the "default" user, who is not listed.
        assert c.call("AUTH", "ropw") == WRONGPASS
        assert c.call("AUTH", "app", "from-env") == b"OK"
        assert c.call("DEL", "sec:r") == 1


@test
def test_auth_config_errors(env):
    d = os.path.join(harness.tmp_root(), "authconf")
    os.makedirs(d, exist_ok=True)
    cases = [
        ("auth:\n  password: \"${SP_SURELY_UNSET_VAR}\"\n",
         "environment variable 'SP_SURELY_UNSET_VAR' is not set"),
        ("auth:\n  password: a\n  users:\n    - {name: u, password: p}\n",
         "set either 'password' or 'users', not both"),
        ("auth:\n  users:\n    - {name: u, password: p, role: root}\n",
         "role must be read-only, read-write or admin"),
    ]
    for i, (extra, want) in enumerate(cases):
        path = os.path.join(d, "c%d.yml" % i)
        with open(path, "w") as f:
            f.write("cluster:\n  seeds: [127.0.0.1:7000]\n" + extra)
        r = subprocess.run([harness.proxy_bin(), "-t", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        assert r.returncode == 1, (extra, r.returncode)
        assert want in r.stderr.decode(), r.stderr


def proxy_with(cl, after, lines):
    """A Proxy (not started) whose config has lines inserted after the
    line `after` (e.g. "cluster:" or "log:")."""
    p = harness.Proxy([m.port for m in cl.masters()])
    with open(p.conf) as f:
        conf = f.read()
    conf = conf.replace(after + "\n", after + "\n" + lines, 1)
    with open(p.conf, "w") as f:
        f.write(conf)
    return p


def acl_on_all(cl, *args):
    for n in cl.nodes:
        assert n.call("ACL", *args) in (b"OK", 1, 0), args


@test(timeout=60)
def test_backend_acl_user(env):
    """cluster.username/password: AUTH on every backend connection,
    including those opened after MOVED and pinned ones (BLPOP)."""
    cl = env.cluster
    acl_on_all(cl, "SETUSER", "spproxy", "on", ">proxypw", "~*", "&*",
               "+@all")
    try:
        p = proxy_with(cl, "cluster:",
                       "  username: spproxy\n  password: proxypw\n")
        env.proxies.append(p)
        p.start()
        with p.client() as c:
            for i in range(50):
                assert c.call("SET", "acl:%d" % i, i) == b"OK"
            assert c.call("MGET", *["acl:%d" % i for i in range(50)]) == \
                [str(i).encode() for i in range(50)]
            assert c.call("RPUSH", "acl:q", "x") == 1
            assert c.call("BLPOP", "acl:q", "1") == [b"acl:q", b"x"]
            assert c.call("DEL", *["acl:%d" % i for i in range(50)]) == 50
        # Every backend connection of this proxy runs as spproxy.
        users = []
        for n in cl.masters():
            for line in n.call("CLIENT", "LIST").decode().splitlines():
                if "user=spproxy" in line:
                    users.append(line)
        assert users, "no backend connection authenticated as spproxy"

        # A wrong password: the backend refuses, the client gets an error
        # naming the cause (no hang, no silent success).
        q = proxy_with(cl, "cluster:",
                       "  username: spproxy\n  password: wrongpw\n")
        env.proxies.append(q)
        q.start()
        with q.client() as c:
            r = c.call("GET", "acl:0")
            assert isinstance(r, Error), r
            log("    backend auth refused: client sees %r" % r.msg)
            assert "CLUSTERDOWN" in r.msg or "authentication" in r.msg, r
    finally:
        acl_on_all(cl, "DELUSER", "spproxy")


@test(timeout=60)
def test_drain_on_sigterm(env):
    env.cluster
    p = env.new_proxy(extra="shutdown_grace: 5s")
    owner = env.cluster.node_for_key("drain:q")

    def blocked():
        return {ln.split(" ", 1)[0] for ln in
                owner.call("CLIENT", "LIST").decode().splitlines()
                if " cmd=blpop " in ln and "b" in ln.split(" flags=")[1]
                .split(" ", 1)[0]}
    with p.client(10) as c:
        before = blocked()
        c.send(("BLPOP", "drain:q", "3"), ("PING",))
        # In flight: blocked on its node before the signal.
        wait_until(lambda: blocked() - before, 20, "the BLPOP blocked")
        t = time.time()
        os.kill(p.pid, signal.SIGTERM)
        # No new clients while draining (the listener closes once the
        # signal is handled; the BLPOP keeps the drain going 3 s).
        wait_until(lambda: not _accepts(p.port), 2.5,
                   "the listener closed while draining")
        assert time.time() - t < 3, "the BLPOP ended before the check"
        # The request in flight completes, and the one behind it.
        assert c.read() is None
        assert c.read() == b"PONG"
        waited = time.time() - t
    p.proc.wait(10)
    assert p.proc.returncode == 0, p.proc.returncode
    log("    drain: in-flight BLPOP answered %.2fs after SIGTERM; exit 0" %
        waited)


@test(timeout=30)
def test_daemonize_pidfile(env):
    env.cluster
    # log.file: a daemon's stderr goes to /dev/null.
    p = proxy_with(env.cluster, "log:", "  file: %s\n" % os.path.join(
        harness.tmp_root(), "daemon.log"))
    pidfile = os.path.join(p.dir, "slotproxy.pid")
    r = subprocess.run([harness.proxy_bin(), "-c", p.conf, "-d", "-p",
                        pidfile], timeout=10)
    assert r.returncode == 0
    wait_until(lambda: os.path.exists(pidfile) and
               open(pidfile).read().strip().isdigit(), 10, "pid file")
    pid = int(open(pidfile).read())
    try:
        def up():
            with harness.Client(p.port, timeout=2) as c:
                return c.call("PING") == b"PONG"
        wait_until(up, 10, "daemon to answer PING")
    finally:
        os.kill(pid, signal.SIGTERM)

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_until(gone, 10, "daemon to exit")
    assert not os.path.exists(pidfile), "pid file left behind"


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))


@test(timeout=60)
def test_reload_sighup(env):
    """SIGHUP applies a valid new config to running workers without
    dropping a client; an invalid one is logged and ignored. SIGUSR1
    reopens the log file."""
    env.cluster
    p = env.new_proxy()
    base = open(p.conf).read()
    with p.client() as c:
        assert isinstance(c.call("KEYS", "rl:*"), list)
        with open(p.conf, "w") as f:
            f.write(base + "disabled_commands: [KEYS]\n"
                    "auth:\n  password: newpw\n")
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: "configuration from" in open(p.log).read(), 20,
                   "reload applied")
        # The same connection is still served, but auth went on: like
        # every open connection it must authenticate now (its worker takes
        # the new config at its next loop turn).
        wait_until(lambda: c.call("KEYS", "rl:*") == NOAUTH, 20,
                   "open connection asked to authenticate")
        assert c.call("AUTH", "newpw") == b"OK"
        r = c.call("KEYS", "rl:*")
        assert isinstance(r, Error) and "disabled" in r.msg, r
        # A new client may land on the other worker, which takes the new
        # config at its own next loop turn.

        def new_client_asked():
            with p.client() as c2:
                return c2.call("GET", "rl:k") == NOAUTH and \
                    c2.call("AUTH", "newpw") == b"OK"
        wait_until(new_client_asked, 20, "a new client asked to "
                   "authenticate")
        # An invalid file: logged, the running config stays.
        with open(p.conf, "w") as f:
            f.write(base + "disabled_commands: [NOSUCH]\n")
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: "keeping the running configuration" in
                   open(p.log).read(), 20, "bad reload refused")
        r = c.call("KEYS", "rl:*")
        assert isinstance(r, Error) and "disabled" in r.msg, r
        assert c.call("SET", "rl:k", "v") == b"OK"
        assert c.call("DEL", "rl:k") == 1
    # Listen addresses: a new one opens, a removed one closes; clients
    # already connected through it stay.
    newport = harness.free_port()
    with p.client() as kept:
        with open(p.conf, "w") as f:
            f.write(base.replace("listen:\n", "listen:\n  - %s:%d\n" %
                                 (HOST, newport), 1))
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: open(p.log).read().count("configuration from")
                   >= 2, 20, "second reload")
        # The main thread logs the reload; each worker opens the new
        # listener at its next loop turn.
        wait_until(lambda: _accepts(newport), 20, "new listener on %d"
                   % newport)
        with harness.Client(newport, timeout=5) as c3:
            assert c3.call("PING") == b"PONG"
        # Now drop the original address.
        with open(p.conf, "w") as f:
            f.write("listen:\n  - %s:%d\n" % (HOST, newport) +
                    base.split("\n", 2)[2])
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: open(p.log).read().count("configuration from")
                   >= 3, 20, "third reload")
        wait_until(lambda: not _accepts(p.port), 20, "old port %d closed"
                   % p.port)
        assert kept.call("PING") == b"PONG"


def _accepts(port):
    """True when something accepts TCP connections on HOST:port."""
    s = socket.socket()
    s.settimeout(1)
    try:
        return s.connect_ex((HOST, port)) == 0
    finally:
        s.close()


@test(timeout=60)
def test_reload_under_load(env):
    """Ten reloads while 4 clients pipeline SET/GET: no client is
    dropped and no request fails."""
    import threading
    env.cluster
    p = env.new_proxy(extra="workers: 2")
    base = open(p.conf).read()
    stop = threading.Event()
    errors, ops = [], [0]

    def load(n):
        try:
            with p.client(10) as c:
                i = 0
                while not stop.is_set():
                    k = "rl2:%d:%d" % (n, i % 50)
                    r = c.pipeline([("SET", k, i), ("GET", k)])
                    if r != [b"OK", str(i).encode()]:
                        errors.append(r)
                    ops[0] += 2
                    i += 1
        except Exception as e:   # noqa: B902 - a dropped client
            errors.append(repr(e))
    ts = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    try:
        for i in range(10):
            with open(p.conf, "w") as f:
                f.write(base + "clients:\n  max_pipeline: %d\n" % (1000 + i))
            os.kill(p.pid, signal.SIGHUP)
            # Each reload logged before the next signal: two signals the
            # proxy has not handled yet are one reload.
            wait_until(lambda: open(p.log).read().count(
                "configuration from") >= i + 1, 20, "reload %d" % (i + 1))
            time.sleep(0.2)
    finally:
        stop.set()
        for t in ts:
            t.join(10)
    log("    reload under load: 10 reloads, %d ops, %d errors" %
        (ops[0], len(errors)))
    assert not errors, errors[:3]
    assert open(p.log).read().count("configuration from") == 10
    with open(p.conf, "w") as f:
        f.write(base)


@test(timeout=30)
def test_sigusr1_reopens_log(env):
    env.cluster
    logfile = os.path.join(harness.tmp_root(), "rotate.log")
    p = proxy_with(env.cluster, "log:", "  file: %s\n" % logfile)
    env.proxies.append(p)
    p.start()
    wait_until(lambda: os.path.exists(logfile), 20, "log file")
    os.rename(logfile, logfile + ".1")
    os.kill(p.pid, signal.SIGUSR1)
    wait_until(lambda: os.path.exists(logfile) and
               "log file reopened" in open(logfile).read(), 20,
               "log reopened at the old path")


def cmdstat_calls(node, cmd):
    info = node.call("INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_%s:" % cmd):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


@test(timeout=90)
def test_replica_reads_with_lag_fallback(env):
    """read_from: prefer-replica sends reads to in-sync replicas (READONLY
    on their connections); a replica that falls behind by more than
    max_replica_lag is left out and its reads go to the master (with
    read_from: replica they would fail: test_ops_view.py)."""
    cl = env.cluster
    cl.wait_ok(30)
    p = proxy_with(cl, "cluster:", "  read_from: prefer-replica\n"
                   "  max_replica_lag: 64kb\n"
                   "  replica_poll_interval: 200ms\n")
    env.proxies.append(p)
    p.start()
    time.sleep(1.5)                     # a replication poll
    keys = ["rr:%d" % i for i in range(60)]
    with p.client() as c:
        assert c.pipeline([("SET", k, k) for k in keys]) == [b"OK"] * 60
        # (CLUSTER SLOTS lists a replica only once it has replicated
        # something; the proxy's replication poll then refreshes the map.)
        harness.wait_until(lambda: len(c.call("PROXY", "TOPOLOGY")) > 0 and
                           b"cluster_known_nodes:6" in
                           c.call("CLUSTER", "INFO"), 20,
                           "replicas in the proxy's map")

        # and a poll that finds them in sync: one round of reads all on
        # replicas (a loaded machine may poll late)
        def one_round_on_replicas():
            b = {n.port: cmdstat_calls(n, "get") for n in cl.nodes}
            assert c.pipeline([("GET", k) for k in keys]) == \
                [k.encode() for k in keys]
            a = {n.port: cmdstat_calls(n, "get") for n in cl.nodes}
            return all(a[n.port] == b[n.port] for n in cl.masters())
        wait_until(one_round_on_replicas, 20, "reads on the replicas")
        before = {n.port: cmdstat_calls(n, "get") for n in cl.nodes}
        for _ in range(3):
            assert c.pipeline([("GET", k) for k in keys]) == \
                [k.encode() for k in keys]
        after = {n.port: cmdstat_calls(n, "get") for n in cl.nodes}
    on_replicas = sum(after[n.port] - before[n.port] for n in cl.nodes
                      if n not in cl.masters())
    on_masters = sum(after[n.port] - before[n.port] for n in cl.masters())
    log("    replica reads: %d GETs on replicas, %d on masters" %
        (on_replicas, on_masters))
    assert on_replicas == 180 and on_masters == 0, (on_replicas, on_masters)

    # One replica stops acknowledging while its master takes writes.
    victim_master = cl.masters()[0]
    rep = cl.replicas_of(victim_master)[0]
    vkeys = [k for k in keys if cl.node_for_key(k) is victim_master]
    rep.pause()
    try:
        with p.client() as c:
            big = "x" * 4096
            for i in range(64):           # 256 KB > max_replica_lag
                assert c.call("SET", "rr:big:{%s}" % vkeys[0], big) == b"OK"
            time.sleep(2.5)               # polls (every 200 ms) see the lag
            t = time.time()
            got = c.pipeline([("GET", k) for k in vkeys])
            took = time.time() - t
        assert got == [k.encode() for k in vkeys], got
        assert took < 1.0, "reads waited for the stopped replica: %.2fs" % took
    finally:
        rep.resume()
    with p.client() as c:
        c.call("DEL", *keys, "rr:big:{%s}" % vkeys[0])
