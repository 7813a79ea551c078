#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Fault injection under load (issue 4). Each test starts its OWN cluster
# (so that the shared env.cluster is never disturbed) and its own proxy,
# runs a verifying workload while it injects one fault, and prints one line
# of figures:
#
#   ops, client-visible errors by kind, unavailable seconds, wrong replies
#   (a reply that belongs to another key or is not a value ever written),
#   lost acknowledged writes (proxy), lost to async replication (separate).
#
# The workload: a few client threads, each owning its own keys spread over
# all slots, doing SET / GET / INCR / MGET / MSET (MGET and MSET span
# several slots, so they are split by the proxy). Every value embeds its
# key, so a reply delivered to the wrong request is recognised. Every
# acknowledged write is recorded; a write that failed may or may not have
# run, so its value becomes "possible". At the end every key is read back
# through a fresh proxy connection.
#
# The clusters here run with cluster-require-full-coverage no, so a shard
# that is down does not make the *other* shards answer CLUSTERDOWN (that
# would be Redis's doing, not the proxy's). All these tests change
# topology or stop nodes, so they run last.

import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Error, ConnectionClosed, HOST, log, test,  # noqa: E402
                     keyslot, wait_until)


# ------------------------------------------------------------ local helpers

# ASan makes the proxy 3-5x slower: latency bounds of the workload's
# requests get twice their slack in that build (a proxy that waits for a
# stopped node waits seconds, not tenths).
SLACK = 2.0 if harness.sanitized() else 1.0

def own_cluster(name, masters=3, replicas=1):
    """A private cluster for one test, with full coverage not required."""
    cl = harness.Cluster(masters, replicas, name=name)
    try:
        cl.start(40)
        for n in cl.nodes:
            assert n.call("CONFIG", "SET", "cluster-require-full-coverage",
                          "no") == b"OK"
    except BaseException:
        cl.stop()
        raise
    return cl


def new_node(cl, tag):
    """Starts one more empty cluster-enabled node on a new port, owned by
    cl (cl.stop() stops it)."""
    port = harness.free_cluster_port()
    n = harness.Node(port, os.path.join(cl.dir, "%s-%d" % (tag, port)))
    cl.nodes.append(n)
    n.start()
    wait_until(lambda: n.call("PING") == b"PONG", 10,
               "new node on port %d" % port)
    return n


def role(node):
    try:
        r = node.call("ROLE")
        return r[0].decode() if isinstance(r, list) else None
    except (OSError, ConnectionClosed):
        return None


def set_no_failover(nodes, yesno):
    # (Cluster.wait_ok takes the "nofailover" flag for "fail": turn it off
    # again before waiting.)
    for n in nodes:
        assert n.call("CONFIG", "SET", "cluster-replica-no-failover",
                      yesno) == b"OK"


def start_proxy(env, seeds, request_timeout="1s", extra=None):
    return env.new_proxy(seeds=seeds, request_timeout=request_timeout,
                         extra=extra)


def grep_log(proxy, words, limit=12):
    """Proxy log lines containing any of words (for the report)."""
    try:
        with open(proxy.log, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    hits = [ln for ln in lines if any(w in ln for w in words)]
    if len(hits) > limit:
        hits = hits[:limit // 2] + ["    ... (%d more)" % (len(hits) - limit)] \
            + hits[-limit // 2:]
    return hits


def show_log(proxy, words=("backend", "topology", "warn", "error")):
    for ln in grep_log(proxy, words):
        log("    | " + ln)


def err_kind(msg):
    """A short class of an error message: the code plus, for the proxy's
    own errors, the cause (host:port elided)."""
    w = msg.split()
    if not w:
        return "?"
    if len(w) >= 3 and w[1] == "slotproxy:" and w[2] == "backend":
        return "ERR backend " + " ".join(w[4:7])
    if len(w) >= 2 and w[1] == "slotproxy:":
        return "ERR slotproxy " + " ".join(w[2:5])
    return w[0]


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


# ----------------------------------------------------------------- workload

class Workload:
    """Verifying load through the proxy on port. victim: a set of slots,
    set by the test when it injects a fault; each op is classified as
    touching the victim slots or not (op.victim), so errors on other
    slots are counted separately."""

    def __init__(self, port, name, nthreads=3, nkeys=200, ncounters=20,
                 timeout=10.0, seed=1):
        self.port = port
        self.name = name
        self.nthreads = nthreads
        self.timeout = timeout
        self.victim = set()
        self.stop_ev = threading.Event()
        self.threads = []
        self.keys = [["fz:%s:%d:%d" % (name, t, i) for i in range(nkeys)]
                     for t in range(nthreads)]
        self.counters = [["fzc:%s:%d:%d" % (name, t, i)
                          for i in range(ncounters)]
                         for t in range(nthreads)]
        # key -> [acked value or None, ack time, set of possible values]
        self.state = {}
        # counter -> [acked int, ack time, slack (unknown increments)]
        self.cstate = {}
        # every op: (t_start, t_end, victim?, error kind or None)
        self.ops = []
        self.errors = []        # (t_end, kind, msg, victim?, latency)
        self.wrong = []         # (key, got, allowed...)
        self.exceptions = []
        self.lock = threading.Lock()
        self.seed = seed

    # -- one thread
    def _thread(self, tid):
        rnd = random.Random(self.seed * 1000 + tid)
        keys = self.keys[tid]
        ctrs = self.counters[tid]
        st = {k: [None, 0.0, set()] for k in keys}
        cst = {k: [0, 0.0, 0] for k in ctrs}
        ops, errors, wrong = [], [], []
        seq = 0
        c = None

        def connect():
            return harness.Client(self.port, timeout=self.timeout)

        def check_val(k, r):
            acked, _, maybe = st[k]
            if r == acked or r in maybe:
                return
            wrong.append((k, r, acked, "%.3f" % time.time()))

        try:
            c = connect()
            c.pipeline([("DEL", k) for k in keys + ctrs])
        except Exception as e:      # noqa: B902
            self.exceptions.append(repr(e))
            return
        while not self.stop_ev.is_set():
            x = rnd.random()
            if x < 0.3:
                op, ks = "SET", [rnd.choice(keys)]
            elif x < 0.55:
                op, ks = "GET", [rnd.choice(keys)]
            elif x < 0.7:
                op, ks = "INCR", [rnd.choice(ctrs)]
            elif x < 0.85:
                op, ks = "MGET", rnd.sample(keys, 5)
            else:
                op, ks = "MSET", rnd.sample(keys, 4)
            vals = []
            if op == "SET":
                seq += 1
                vals = [("%s=%d" % (ks[0], seq)).encode()]
                cmd = ("SET", ks[0], vals[0])
            elif op == "MSET":
                cmd = ["MSET"]
                for k in ks:
                    seq += 1
                    v = ("%s=%d" % (k, seq)).encode()
                    vals.append(v)
                    cmd += [k, v]
            else:
                cmd = [op] + ks
            t0 = time.time()
            try:
                r = c.call(*cmd)
            except (OSError, ConnectionClosed, ValueError) as e:
                t1 = time.time()
                victim = any(keyslot(k) in self.victim for k in ks)
                kind = "conn " + type(e).__name__
                errors.append((t1, kind, repr(e), victim, t1 - t0))
                ops.append((t0, t1, victim, kind))
                for k, v in zip(ks, vals):
                    st[k][2].add(v)
                if op == "INCR":
                    cst[ks[0]][2] += 1
                c.close()
                try:
                    c = connect()
                except OSError as e2:
                    errors.append((time.time(), "connect",
                                   repr(e2), False, 0))
                    time.sleep(0.2)
                    try:
                        c = connect()
                    except OSError:
                        self.exceptions.append(repr(e2))
                        break
                continue
            t1 = time.time()
            # (classified after the call: the fault may start meanwhile)
            victim = any(keyslot(k) in self.victim for k in ks)
            if isinstance(r, Error):
                kind = err_kind(r.msg)
                errors.append((t1, kind, r.msg, victim, t1 - t0))
                ops.append((t0, t1, victim, kind))
                for k, v in zip(ks, vals):
                    st[k][2].add(v)      # may or may not have run
                if op == "INCR":
                    cst[ks[0]][2] += 1
                time.sleep(0.002)    # a real client does not spin on errors
                continue
            ops.append((t0, t1, victim, None))
            if op in ("SET", "MSET"):
                if r != b"OK":
                    wrong.append((op, ks, r, "not OK"))
                for k, v in zip(ks, vals):
                    st[k][0] = v
                    st[k][1] = t1
            elif op == "GET":
                check_val(ks[0], r)
            elif op == "MGET":
                if not isinstance(r, list) or len(r) != len(ks):
                    wrong.append((op, ks, r, "bad shape"))
                else:
                    for k, v in zip(ks, r):
                        check_val(k, v)
            elif op == "INCR":
                a = cst[ks[0]]
                if not isinstance(r, int) or not a[0] < r <= a[0] + 1 + a[2]:
                    wrong.append((op, ks[0], r, a[0]))
                if isinstance(r, int):
                    a[0] = r
                    a[1] = t1
        if c is not None:
            c.close()
        with self.lock:
            self.state.update(st)
            self.cstate.update(cst)
            self.ops += ops
            self.errors += errors
            self.wrong += wrong

    def start(self):
        for t in range(self.nthreads):
            th = threading.Thread(target=self._thread, args=(t,), daemon=True)
            th.start()
            self.threads.append(th)
        self.t_start = time.time()
        return self

    def stop(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(self.timeout + 10)
        hung = [th for th in self.threads if th.is_alive()]
        assert not hung, "%d workload threads hung" % len(hung)
        self.t_stop = time.time()

    def verify(self, port=None, repl_loss=None):
        """Reads every key back. repl_loss(key, ack_time) -> True when a
        loss of that acknowledged write is Redis's async replication (an
        unplanned failover), not the proxy's. Returns (lost, repl_lost,
        stale) lists."""
        lost, repl, stale = [], [], []
        keys = sorted(self.state)
        ctrs = sorted(self.cstate)
        with harness.Client(port or self.port, timeout=20) as c:
            got = c.pipeline([("GET", k) for k in keys + ctrs])
        for k, r in zip(keys, got[:len(keys)]):
            acked, t_ack, maybe = self.state[k]
            if r == acked or (r in maybe and r is not None and (
                    acked is None or
                    int(r.rsplit(b"=", 1)[1]) > int(acked.rsplit(b"=", 1)[1]))):
                continue
            if r in maybe or (r is None and acked is None):
                stale.append((k, r, acked))   # an older timed-out write
                continue
            if repl_loss is not None and repl_loss(k, t_ack):
                repl.append((k, r, acked))
            else:
                lost.append((k, r, acked))
        for k, r in zip(ctrs, got[len(keys):]):
            acked, t_ack, slack = self.cstate[k]
            v = int(r) if r is not None else 0
            if acked <= v <= acked + slack:
                continue
            if repl_loss is not None and repl_loss(k, t_ack):
                repl.append((k, v, acked))
            else:
                lost.append((k, v, acked))
        self.lost, self.repl_lost, self.stale = lost, repl, stale
        return lost, repl, stale

    # -- figures
    def errors_by_kind(self, victim=None):
        out = {}
        for t, kind, msg, vic, lat in self.errors:
            if victim is None or vic == victim:
                out[kind] = out.get(kind, 0) + 1
        return out

    def unavailable(self, victim=None):
        """Seconds (in 100 ms buckets) during which some op failed."""
        b = {int(t * 10) for t, kind, msg, vic, lat in self.errors
             if victim is None or vic == victim}
        return len(b) / 10.0

    def report(self, what, t_fault=None, extra=""):
        e_v = self.errors_by_kind(True)
        e_o = self.errors_by_kind(False)
        span = ""
        if t_fault is not None and self.errors:
            ts = [e[0] - t_fault for e in self.errors]
            span = " errors from %+.2fs to %+.2fs after fault;" % (
                min(ts), max(ts))
        log("    FIGURES %s: %d ops; errors victim-slots %s other-slots %s;"
            " unavailable %.1fs;%s wrong replies %d; lost acked writes "
            "(proxy) %d; lost to async replication %d; overwritten by a "
            "failed write %d%s" % (
                what, len(self.ops), e_v or 0, e_o or 0, self.unavailable(),
                span, len(self.wrong), len(getattr(self, "lost", [])),
                len(getattr(self, "repl_lost", [])),
                len(getattr(self, "stale", [])), extra))

    def assert_clean(self, allow_victim_errors=False):
        assert not self.exceptions, self.exceptions[:3]
        assert len(self.ops) > 300, "too little load: %d ops" % len(self.ops)
        other = [e for e in self.errors if not e[3]]
        assert not other, "errors on unaffected slots: %r" % other[:5]
        if not allow_victim_errors:
            assert not self.errors, "client-visible errors: %r" % \
                self.errors[:5]
        assert not self.wrong, "wrong replies: %r" % self.wrong[:5]
        assert not self.lost, "lost acknowledged writes: %r" % self.lost[:5]


class Probe:
    """One connection sending batches (pipelines) of GETs over keys and
    recording each batch's latency: (t_start, t_end, errors)."""

    def __init__(self, port, batch_keys, value_of):
        self.port, self.batch_keys, self.value_of = port, batch_keys, value_of
        self.samples, self.bad, self.exc = [], [], []
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with harness.Client(self.port, timeout=10) as c:
                while not self.stop_ev.is_set():
                    t0 = time.time()
                    rs = c.pipeline([("GET", k) for k in self.batch_keys])
                    t1 = time.time()
                    nerr = 0
                    for k, r in zip(self.batch_keys, rs):
                        if isinstance(r, Error):
                            nerr += 1
                        elif r != self.value_of(k):
                            self.bad.append((k, r))
                    self.samples.append((t0, t1, nerr))
                    time.sleep(0.005)
        except Exception as e:      # noqa: B902
            self.exc.append(repr(e))

    def start(self):
        self.th.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.th.join(15)

    def latencies(self, t_from, t_to):
        return [b - a for a, b, e in self.samples if a >= t_from and b <= t_to]


def run_load(wl, seconds):
    t_end = time.time() + seconds
    while time.time() < t_end:
        time.sleep(0.05)
        assert not wl.exceptions, wl.exceptions


# ------------------------------------------------------- 1. live resharding

@test(last=True, timeout=150)
def test_fault_reshard(env):
    cl = own_cluster("faults-reshard", 3, 0)
    wl = None
    try:
        m = cl.masters()
        p = start_proxy(env, [n.port for n in m], request_timeout="5s")
        wl = Workload(p.port, "rs").start()
        run_load(wl, 1.0)
        t0 = time.time()
        out = subprocess.run(
            ["redis-cli", "--cluster", "reshard", "%s:%d" % (HOST, m[0].port),
             "--cluster-from", m[0].id, "--cluster-to", m[1].id,
             "--cluster-slots", "2000", "--cluster-yes"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
        t_reshard = time.time() - t0
        assert out.returncode == 0, out.stdout.decode()[-2000:]
        # A fourth master, then a rebalance that gives it a share.
        n4 = new_node(cl, "m4")
        out = subprocess.run(
            ["redis-cli", "--cluster", "add-node", "%s:%d" % (HOST, n4.port),
             "%s:%d" % (HOST, m[0].port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        assert out.returncode == 0, out.stdout.decode()[-2000:]
        cl.wait_ok(30)
        t1 = time.time()
        out = subprocess.run(
            ["redis-cli", "--cluster", "rebalance", "%s:%d" % (HOST, m[0].port),
             "--cluster-use-empty-masters"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        t_rebal = time.time() - t1
        assert out.returncode == 0, out.stdout.decode()[-2000:]
        run_load(wl, 1.0)
        wl.stop()
        cl.wait_ok(30)
        cl.refresh()
        n4_slots = len(cl.slots_of(n4))
        wl.verify()
        wl.report("reshard", extra="; 2000 slots resharded in %.1fs, "
                  "rebalance moved %d slots to a 4th master in %.1fs" % (
                      t_reshard, n4_slots, t_rebal))
        assert n4_slots > 3000, n4_slots
        wl.assert_clean()
    finally:
        if wl is not None:
            wl.stop_ev.set()
        cl.stop()


# ---------------------------------------------------- 2. manual failover

@test(last=True, timeout=120)
def test_fault_manual_failover(env):
    cl = own_cluster("faults-mfo", 3, 1)
    wl = None
    try:
        m = cl.masters()
        p = start_proxy(env, [n.port for n in m], request_timeout="5s")
        wl = Workload(p.port, "mfo").start()
        run_load(wl, 1.5)
        times = []
        for master in m[:2]:
            rep = cl.replicas_of(master)[0]
            t0 = time.time()
            assert rep.call("CLUSTER", "FAILOVER") == b"OK"
            wait_until(lambda: role(rep) == "master" and
                       role(master) == "slave", 20,
                       "manual failover to %r" % rep, 0.05)
            times.append(time.time() - t0)
            run_load(wl, 1.5)
        wl.stop()
        cl.wait_ok(30)
        wl.verify()
        wl.report("manual failover x2", extra="; failovers took %s s" %
                  ", ".join("%.2f" % t for t in times))
        wl.assert_clean()
    finally:
        if wl is not None:
            wl.stop_ev.set()
        cl.stop()


# ------------------------------------------------------ 3. master SIGKILL

@test(last=True, timeout=150)
def test_fault_master_kill(env):
    cl = own_cluster("faults-kill", 3, 1)
    wl = None
    try:
        m = cl.masters()
        victim = m[-1]
        rep = cl.replicas_of(victim)[0]
        vslots = set(cl.slots_of(victim))
        p = start_proxy(env, [n.port for n in m])
        wl = Workload(p.port, "kill").start()
        run_load(wl, 1.5)
        wl.victim = vslots
        victim.kill()
        t_kill = time.time()
        wait_until(lambda: role(rep) == "master", 30,
                   "replica promotion", 0.05)
        t_promo = time.time()
        run_load(wl, 3.0)
        # The old master comes back (empty: no persistence) and must
        # rejoin as a replica with no client-visible effect.
        t_restart = time.time()
        victim.start()
        wait_until(lambda: role(victim) == "slave", 30,
                   "old master to rejoin as replica", 0.1)
        run_load(wl, 3.0)
        wl.stop()
        cl.wait_ok(40)

        def repl_loss(k, t_ack):
            # Acknowledged by the old master before it died: the replica
            # may not have received it (asynchronous replication).
            return keyslot(k) in vslots and t_ack <= t_kill
        wl.verify(repl_loss=repl_loss)
        verr = [e for e in wl.errors if e[3]]
        last = max([e[0] for e in verr], default=t_kill)
        late = [e for e in verr if e[0] > t_promo + 1.0 + 0.2]
        after_restart = [e for e in wl.errors if e[0] > t_restart]
        wl.report("master SIGKILL", t_kill,
                  "; promotion %.2fs after kill; last victim error %+.2fs "
                  "after promotion; errors after old master restart %d" % (
                      t_promo - t_kill, last - t_promo, len(after_restart)))
        if late or after_restart or wl.errors_by_kind(False):
            show_log(p)
        assert not late, "victim-slot errors later than promotion + 1s: " \
            "%d, last %+.2fs after promotion: %r" % (
                len(late), last - t_promo, late[-3:])
        assert not after_restart, after_restart[:5]
        wl.assert_clean(allow_victim_errors=True)
    finally:
        if wl is not None:
            wl.stop_ev.set()
        cl.stop()


# ---------------------------------------------- 4. a whole shard stopped

@test(last=True, timeout=120)
def test_fault_shard_stopped(env):
    cl = own_cluster("faults-shard", 3, 1)
    wl = None
    stopped = []
    try:
        m = cl.masters()
        victim = m[1]
        shard = [victim] + cl.replicas_of(victim)
        vslots = set(cl.slots_of(victim))
        # When the shard comes back its replica must not win an election
        # against its own master (that would be an unplanned failover,
        # with Redis's async-replication losses): the shard returns as it
        # was.
        set_no_failover(shard[1:], "yes")
        p = start_proxy(env, [n.port for n in m], request_timeout="1s")
        hk = harness.keys_in_slots("hp", [s for s in range(16384)
                                          if s not in vslots], 3)
        vk = harness.keys_in_slots("vp", vslots, 1)
        with harness.Client(p.port) as c:
            for k in hk + vk:
                assert c.call("SET", k, "v" + k) == b"OK"
        wl = Workload(p.port, "shard", nthreads=3).start()

        def val(k):
            return ("v" + k).encode()
        # Healthy-only requests, and a client pipelining a healthy GET
        # behind a stopped-shard GET on the same connection.
        healthy = Probe(p.port, hk, val).start()
        mixed = Probe(p.port, vk + hk[:1], val).start()
        run_load(wl, 1.5)
        wl.victim = vslots
        for n in shard:
            n.pause()
            stopped.append(n)
        t_stop = time.time()
        run_load(wl, 5.0)
        t_cont = time.time()
        for n in shard:
            n.resume()
        stopped = []
        run_load(wl, 5.0)
        wl.stop()
        healthy.stop()
        mixed.stop()
        wl.verify()
        stall = [o for o in wl.ops if t_stop + 0.5 <= o[0] and
                 o[1] <= t_cont]
        healthy_lat = [o[1] - o[0] for o in stall if not o[2]] + \
            healthy.latencies(t_stop, t_cont)
        victim_lat = [o[1] - o[0] for o in stall if o[2]]
        # Circuit breaker (issue 4): once the shard is known down (first
        # timeout + 1.5 s), its requests fail at once and a healthy
        # request pipelined behind one is not held back.
        t_first = min([e[0] for e in wl.errors if e[3]], default=t_cont)
        later = [b - a for a, b, e in mixed.samples
                 if a >= t_first + 1.5 and b <= t_cont]
        mixed_p50 = pct(later, 50)
        p99 = pct(healthy_lat, 99)
        vmax = max(victim_lat, default=0.0)
        verr = [e for e in wl.errors if e[3]]
        late = [e for e in verr if e[0] > t_cont + 3.0]
        wl.report("shard stopped 5s", t_stop,
                  "; during the stall: healthy-slot ops %d p50 %.1fms p99 "
                  "%.1fms max %.1fms; victim-slot ops %d, slowest answer "
                  "%.2fs; victim errors after resume+3s %d" % (
                      len(healthy_lat), pct(healthy_lat, 50) * 1e3,
                      p99 * 1e3, max(healthy_lat, default=0) * 1e3,
                      len(victim_lat), vmax, len(late)) +
                  "; healthy GET pipelined behind a stopped-shard GET, "
                  "once the shard is known down: %d batches, p50 %.0fms" %
                  (len(later), mixed_p50 * 1e3))
        vbound, pbound = 1.0 + 0.6 * SLACK, 0.3 * SLACK
        if late or vmax > vbound or p99 > pbound:
            show_log(p)
        assert verr, "no errors at all for the stopped shard?"
        assert vmax <= vbound, "a stopped-shard request took %.2fs " \
            "(request_timeout 1s)" % vmax
        assert p99 <= pbound, "healthy-slot p99 %.0fms during the stall" % (
            p99 * 1e3)
        assert not late, "stopped shard not served again 3s after it " \
            "resumed: %r" % late[-3:]
        assert not healthy.exc and not mixed.exc, healthy.exc + mixed.exc
        assert not healthy.bad and not mixed.bad, healthy.bad + mixed.bad
        assert not [x for x in healthy.samples if x[2]], "healthy probe " \
            "errors"
        wl.assert_clean(allow_victim_errors=True)
        assert later and mixed_p50 <= 0.2 * SLACK, "no circuit breaker: with the " \
            "shard known down, a pipeline [stopped-shard GET, healthy GET] " \
            "still takes %.0fms (p50 of %d) instead of failing fast" % (
                mixed_p50 * 1e3, len(later))
    finally:
        for n in stopped:
            n.resume()
        if wl is not None:
            wl.stop_ev.set()
        cl.stop()


# ------------------------------------------------------ 5. network stall

@test(last=True, timeout=120)
def test_fault_stall_no_misdelivery(env):
    cl = own_cluster("faults-stall", 3, 1)
    wl = None
    stopped = []
    try:
        m = cl.masters()
        victim = m[0]
        # The stall must outlast request_timeout but not trigger a
        # failover: this replica may not take over.
        set_no_failover(cl.replicas_of(victim), "yes")
        vslots = set(cl.slots_of(victim))
        p = start_proxy(env, [n.port for n in m], request_timeout="1s")
        wl = Workload(p.port, "stall", nthreads=3).start()
        # A pipelining client: batches of GETs over victim and other
        # slots, each reply checked against its own key.
        pkeys = ["pl:%d" % i for i in range(60)]
        pipe_stats = {"batches": 0, "errors": 0, "misdelivered": [],
                      "exc": []}
        pstop = threading.Event()

        def piper():
            rnd = random.Random(7)
            try:
                with harness.Client(p.port, timeout=10) as c:
                    assert c.pipeline([("SET", k, "val-" + k)
                                       for k in pkeys]) == [b"OK"] * 60
                    while not pstop.is_set():
                        ks = rnd.sample(pkeys, 12)
                        rs = c.pipeline([("GET", k) for k in ks])
                        pipe_stats["batches"] += 1
                        for k, r in zip(ks, rs):
                            if isinstance(r, Error):
                                pipe_stats["errors"] += 1
                            elif r != ("val-" + k).encode():
                                pipe_stats["misdelivered"].append((k, r))
            except Exception as e:      # noqa: B902
                pipe_stats["exc"].append(repr(e))
        pt = threading.Thread(target=piper, daemon=True)
        pt.start()
        run_load(wl, 1.5)
        wl.victim = vslots
        victim.pause()
        stopped.append(victim)
        t_stop = time.time()
        run_load(wl, 3.0)
        t_cont = time.time()
        victim.resume()
        stopped = []
        run_load(wl, 4.0)
        pstop.set()
        pt.join(20)
        wl.stop()
        wl.verify()
        stall_victim = [o for o in wl.ops if o[2] and o[0] >= t_stop and
                        o[1] <= t_cont + 0.2]
        vmax = max([o[1] - o[0] for o in stall_victim], default=0.0)
        late = [e for e in wl.errors if e[0] > t_cont + 3.0]
        wl.report("master SIGSTOP 3s", t_stop,
                  "; slowest stalled request %.2fs; pipeline batches %d "
                  "(%d errors, %d misdelivered); errors after resume+3s %d"
                  % (vmax, pipe_stats["batches"], pipe_stats["errors"],
                     len(pipe_stats["misdelivered"]), len(late)))
        vbound = 1.0 + 0.6 * SLACK
        if late or vmax > vbound or wl.wrong or pipe_stats["misdelivered"]:
            show_log(p)
        assert not pipe_stats["exc"], pipe_stats["exc"]
        assert not pipe_stats["misdelivered"], pipe_stats["misdelivered"][:5]
        assert not wl.wrong, "replies delivered to the wrong request: %r" \
            % wl.wrong[:5]
        assert [e for e in wl.errors if e[3]], "the stall caused no error?"
        assert vmax <= vbound, "stalled request answered after %.2fs " \
            "(request_timeout 1s)" % vmax
        assert not late, late[:5]
        wl.assert_clean(allow_victim_errors=True)
    finally:
        for n in stopped:
            n.resume()
        if wl is not None:
            wl.stop_ev.set()
        cl.stop()


# ------------------------------------------- 6. node moves to a new port

@test(last=True, timeout=150)
def test_fault_node_new_port(env):
    cl = own_cluster("faults-move", 3, 1)
    wl = None
    try:
        m = cl.masters()
        old = m[2]
        vslots = set(cl.slots_of(old))
        # The proxy's only seed is the node that will disappear: it has to
        # find the new owner from the nodes it learnt.
        p = start_proxy(env, [old.port])
        wl = Workload(p.port, "move").start()
        run_load(wl, 1.5)
        nn = new_node(cl, "moved")
        assert old.call("CLUSTER", "MEET", HOST, nn.port) == b"OK"

        def replicate():
            return nn.call("CLUSTER", "REPLICATE", old.id) == b"OK"
        wait_until(replicate, 20, "new node to become a replica", 0.2)
        wait_until(lambda: b"master_link_status:up" in
                   nn.call("INFO", "replication"), 30,
                   "new replica in sync", 0.1)
        wl.victim = vslots
        t0 = time.time()
        assert nn.call("CLUSTER", "FAILOVER") == b"OK"
        wait_until(lambda: role(nn) == "master", 20, "failover to new node",
                   0.05)
        # The old address disappears for good.
        t_kill = time.time()
        old.kill()
        run_load(wl, 4.0)
        wl.stop()
        cl.wait_ok(40)
        cl.refresh()
        assert all(cl.node_for_slot(s) is nn for s in vslots)
        wl.verify()
        # The data really is on the node at the new port.
        with nn.client() as d:
            k = next(k for k, v in wl.state.items()
                     if keyslot(k) in vslots and v[0] is not None)
            assert d.call("GET", k) == wl.state[k][0]
        # Requests in flight on the old node when it is SIGKILLed fail
        # (they may have run, so they are never re-sent); nothing else may.
        late = [e for e in wl.errors if e[0] > t_kill + 1.0 or
                e[0] < t_kill]
        wl.report("owner moved %d -> %d" % (old.port, nn.port), t0,
                  "; old node killed %.2fs after the failover started; "
                  "errors later than kill+1s or before it: %d" % (
                      t_kill - t0, len(late)))
        if wl.errors:
            show_log(p)
        assert not late, late[:5]
        wl.assert_clean(allow_victim_errors=True)
    finally:
        if wl is not None:
            wl.stop_ev.set()
        cl.stop()


# ----------------------------------------- 7. hostname / unknown endpoints

def slots_endpoints(node):
    r = node.call("CLUSTER", "SLOTS")
    return sorted({repr(e[0]) for rng in r for e in rng[2:]})


def endpoint_case(env, cl, etype, slot_to_move):
    """Sets cluster-preferred-endpoint-type etype on every node, waits for
    CLUSTER SLOTS to show it, runs load through a new proxy while a slot
    moves (MOVED then carries the same kind of endpoint)."""
    for n in cl.nodes:
        assert n.call("CONFIG", "SET", "cluster-preferred-endpoint-type",
                      etype) == b"OK"
    want = {"hostname": ["b'localhost'"],
            "unknown-endpoint": ["None"]}[etype]

    def shown():
        return all(slots_endpoints(n) == want for n in cl.nodes)
    wait_until(shown, 20, "CLUSTER SLOTS endpoints %s (now %s)" % (
        want, slots_endpoints(cl.nodes[0])), 0.2)
    p = start_proxy(env, [n.port for n in cl.masters()])
    wl = Workload(p.port, "ep" + etype[:4]).start()
    try:
        run_load(wl, 1.5)
        src = cl.node_for_slot(slot_to_move)
        dst = next(n for n in cl.masters() if n is not src)
        # Keys in the slot so the workload hits the MOVED.
        with harness.Client(p.port) as c:
            for k in harness.keys_in_slots("ep", [slot_to_move], 5):
                assert c.call("SET", k, "x") == b"OK", etype
        with src.client() as d:
            k = harness.keys_in_slots("ep", [slot_to_move], 1)[0]
        cl.migrate_slots(src, dst, [slot_to_move])
        moved = d_moved = None
        with src.client() as d:
            d_moved = d.call("GET", k)
        with harness.Client(p.port) as c:
            moved = c.call("GET", k)
        run_load(wl, 1.5)
    finally:
        wl.stop()
    wl.verify()
    wl.report("endpoint type %s" % etype,
              extra="; CLUSTER SLOTS endpoints %s; node's redirect %r; "
              "proxy GET after the move %r" % (want, d_moved, moved))
    if wl.errors or moved != b"x":
        show_log(p)
    p.stop()
    assert moved == b"x", moved
    wl.assert_clean()


@test(last=True, timeout=120)
def test_fault_endpoint_hostname(env):
    cl = own_cluster("faults-hostname", 3, 0)
    try:
        for n in cl.nodes:
            assert n.call("CONFIG", "SET", "cluster-announce-hostname",
                          "localhost") == b"OK"
        endpoint_case(env, cl, "hostname", 100)
    finally:
        cl.stop()


@test(last=True, timeout=120)
def test_fault_endpoint_unknown(env):
    cl = own_cluster("faults-unknownep", 3, 0)
    try:
        endpoint_case(env, cl, "unknown-endpoint", 200)
    finally:
        cl.stop()


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
