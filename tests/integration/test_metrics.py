#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# The metrics endpoint: /metrics in Prometheus text format with the
# counters of a known workload, /healthz, and /readyz flipping with the
# slot map's coverage.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, test, wait_until  # noqa: E402


get = harness.http_get


def parse(text):
    """Prometheus text -> {name{labels}: float}; checks every sample has
    HELP and TYPE lines."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        key, val = line.rsplit(" ", 1)
        base = key.split("{")[0]
        for suffix in ("_bucket", "_sum", "_count"):
            if base.endswith(suffix) and base[:-len(suffix)] in typed:
                base = base[:-len(suffix)]
        assert base in typed, "no TYPE for %s" % key
        out[key] = float(val)
    return out


def metrics_once(mport, pred, what, timeout=20):
    """The parsed /metrics once pred(it) holds: counters are published per
    tick (100 ms), per-command latency and slot counts once a second, later
    on a loaded machine."""
    got = []

    def ok():
        got[:] = [parse(get(mport, "/metrics")[1])]
        return pred(got[0])
    wait_until(ok, timeout, what)
    return got[0]


@test(timeout=60)
def test_metrics_endpoint(env):
    env.cluster
    mport = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]" % (HOST, mport))
    assert get(mport, "/healthz") == (200, "ok\n")
    wait_until(lambda: get(mport, "/readyz")[0] == 200, 20, "readyz 200")
    with p.client() as c:
        for i in range(10):
            assert c.call("SET", "met:%d" % i, i) == b"OK"
        for i in range(5):
            assert c.call("GET", "met:%d" % i) == str(i).encode()
        assert c.call("MGET", *["met:%d" % i for i in range(10)]) == \
            [str(i).encode() for i in range(10)]
        assert isinstance(c.call("NOSUCHCOMMAND"), harness.Error)
        assert c.call("DEL", *["met:%d" % i for i in range(10)]) == 10
    status, text = get(mport, "/metrics")
    assert status == 200
    parse(text)
    calls = 'slotproxy_command_calls_total{command="%s"}'
    m = metrics_once(mport, lambda m: m.get(calls % "set", 0) >= 10 and
                     m.get(calls % "get", 0) >= 5 and
                     m.get(calls % "mget", 0) >= 1 and
                     m.get(calls % "del", 0) >= 1,
                     "the workload's counters published")
    assert m['slotproxy_command_calls_total{command="set"}'] == 10
    assert m['slotproxy_command_calls_total{command="get"}'] == 5
    assert m['slotproxy_command_calls_total{command="mget"}'] == 1
    assert m["slotproxy_commands_total"] >= 18
    assert m["slotproxy_errors_total"] >= 1
    assert m["slotproxy_client_connections_accepted_total"] >= 2
    assert m["slotproxy_slots_covered"] == 16384
    assert m["slotproxy_cluster_masters"] == 3
    assert m["slotproxy_request_duration_seconds_count"] == \
        m["slotproxy_commands_total"]
    assert m['slotproxy_request_duration_seconds_bucket{le="+Inf"}'] == \
        m["slotproxy_commands_total"]
    assert m["slotproxy_topology_refreshes_total"] >= 1
    assert m['slotproxy_errors_by_kind_total{kind="ERR"}'] >= 1
    cnt = 'slotproxy_command_duration_seconds_count{command="set"}'
    inf = 'slotproxy_command_duration_seconds_bucket{command="get",le="+Inf"}'
    m2 = metrics_once(mport, lambda m: m.get(cnt, 0) >= 10 and
                      m.get(inf, 0) >= 5,
                      "per-command latency published (once a second)")
    assert m2['slotproxy_command_duration_seconds_count{command="set"}'] \
        == 10
    assert m2['slotproxy_command_duration_seconds_bucket'
              '{command="get",le="+Inf"}'] == 5
    assert m["slotproxy_client_received_bytes_total"] > 300
    assert m["slotproxy_client_sent_bytes_total"] > 100

    # Hot slots and per-master load: 200 INCRs of one key make its slot
    # the busiest; the load shares add up to 1.
    with p.client() as c:
        assert c.pipeline([("INCR", "met:hot")] * 200)[-1] == 200
        assert c.call("DEL", "met:hot") == 1
    hot = 'slotproxy_slot_requests_total{slot="%d"}' % \
        harness.keyslot("met:hot")
    m = metrics_once(mport, lambda m: m.get(hot, 0) >= 200,
                     "slot counts published (once a second)")
    slots = {k: v for k, v in m.items()
             if k.startswith("slotproxy_slot_requests_total")}
    assert slots.get(hot, 0) >= 200, (hot, slots)
    shares = [v for k, v in m.items()
              if k.startswith("slotproxy_master_load_share")]
    assert len(shares) == 3 and abs(sum(shares) - 1) < 0.01, shares
    connected = [v for k, v in m.items()
                 if k.startswith("slotproxy_backend_connected")]
    assert sum(connected) >= 3, connected


def info_fields(c, section):
    text = c.call("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.split("\r\n")
                if ":" in line)


@test(timeout=60)
def test_info_and_metrics_count_every_worker(env):
    """INFO, PROXY STATS and /metrics print the same table summed over
    all workers: commands sent through connections served by two
    different workers all show, whichever connection asks."""
    env.cluster
    mport = harness.free_port()
    p = env.new_proxy(extra="workers: 2\nmetrics:\n  listen: [%s:%d]"
                      % (HOST, mport))
    by_worker, conns = {}, []
    try:
        # Connections land on workers as the kernel (or the acceptor)
        # spreads them: open until both workers hold one (bounded).
        for _ in range(64):
            c = p.client()
            conns.append(c)
            wid = info_fields(c, "proxy")["worker_id"]
            by_worker.setdefault(wid, c)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "one worker took 64 connections"
        a, b = by_worker.values()
        # Uneven on purpose: a's own worker alone (50 SETs and the INFO
        # polls below, at most some 100) never reaches the sum, so only
        # a view of both workers passes.
        for n, c in ((50, a), (400, b)):
            assert c.pipeline([("SET", "infow:%d:%d" % (n, i), i)
                               for i in range(n)])[-1] == b"OK"
        sent = 450

        def summed(c):
            stats = info_fields(c, "stats")
            return int(stats["total_commands_processed"]) >= sent
        wait_until(lambda: summed(a) and summed(b), 20,
                   "INFO stats summed over both workers")
        sa = int(info_fields(a, "stats")["total_connections_received"])
        assert sa >= len(conns), (sa, len(conns))
        body = a.call("PROXY", "STATS").decode()
        assert "total_commands_processed:" in body and "moved:" in body
        # /metrics reads the same copies: at least what INFO saw.
        status, text = get(mport, "/metrics")
        m = parse(text)
        assert m["slotproxy_commands_total"] >= sent
        assert m["slotproxy_client_connections_accepted_total"] >= sa
    finally:
        for c in conns:
            c.close()


@test(timeout=60)
def test_readyz_flips_with_coverage(env):
    """/readyz goes 503 while some slot has no master, 200 again once it is
    served; the proxy is not restarted."""
    node = harness.one_node_cluster("readyz")
    try:
        mport = harness.free_port()
        p = harness.Proxy([node.port], extra=(
            "metrics:\n  listen: [%s:%d]" % (HOST, mport)))
        p.cluster_option("refresh_interval: 300ms")
        env.proxies.append(p)
        p.start()
        wait_until(lambda: get(mport, "/readyz")[0] == 200, 20, "ready")
        assert node.call("CLUSTER", "DELSLOTSRANGE", "0", "99") == b"OK"
        wait_until(lambda: get(mport, "/readyz")[0] == 503, 15,
                   "readyz 503 while slots 0-99 are unserved")
        assert "16284/16384" in get(mport, "/readyz")[1]
        assert node.call("CLUSTER", "ADDSLOTSRANGE", "0", "99") == b"OK"
        wait_until(lambda: get(mport, "/readyz")[0] == 200, 15,
                   "readyz 200 again")
        assert p.alive()                # no restart
    finally:
        node.stop()


@test(timeout=60)
def test_readyz_without_cluster(env):
    mport = harness.free_port()
    dead = harness.free_port()
    p = env.new_proxy(seeds=[dead],
                      extra="metrics:\n  listen: [%s:%d]" % (HOST, mport))
    assert get(mport, "/healthz")[0] == 200
    status, body = get(mport, "/readyz")
    assert status == 503, (status, body)
    assert "0/16384" in body, body
    assert p.alive()


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))


@test(timeout=60)
def test_slowlog_and_proxy_command(env):
    env.cluster
    p = env.new_proxy(extra="slowlog:\n  threshold: 0ms\n  max_len: 4\n"
                      "auth:\n  users:\n"
                      "    - {name: adm, password: a, role: admin}\n"
                      "    - {name: app, password: b, role: read-write}\n")
    with p.client() as c:
        assert c.call("AUTH", "adm", "a") == b"OK"
        assert c.call("SLOWLOG", "RESET") == b"OK"
        for i in range(6):
            assert c.call("SET", "sl:%d" % i, "x" * 200) == b"OK"
        assert c.call("SLOWLOG", "LEN") == 4          # max_len
        entries = c.call("SLOWLOG", "GET", "2")
        assert len(entries) == 2
        newest = entries[0]
        # id, time, duration (us), args (cut at 128 bytes), client, name,
        # backend node
        assert newest[0] > entries[1][0]
        assert newest[3][:2] == [b"SET", b"sl:5"], newest[3]
        assert newest[3][2].endswith(b"... (72 more bytes)"), newest[3][2]
        node = newest[6].decode()
        owner = env.cluster.node_for_key("sl:5")
        assert node.endswith(":%d" % owner.port), (node, owner)
        assert c.call("SLOWLOG", "RESET") == b"OK"
        assert c.call("SLOWLOG", "LEN") == 0

        topo = c.call("PROXY", "TOPOLOGY")
        assert sum(e[1] - e[0] + 1 for e in topo) == 16384
        assert all(e[2] is not None for e in topo)
        assert c.call("PROXY", "CONFIG", "GET", "cluster.request_timeout") \
            == [b"cluster.request_timeout", b"5s"]
        assert b"# Proxy" in c.call("PROXY", "INFO")
        assert c.call("DEL", *["sl:%d" % i for i in range(6)]) == 6
    with p.client() as c:
        assert c.call("AUTH", "app", "b") == b"OK"
        r = c.call("PROXY", "INFO")
        assert isinstance(r, harness.Error) and r.startswith("NOPERM"), r
