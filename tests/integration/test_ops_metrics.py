#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Metrics that add up (issue 13): Prometheus naming (one family per name,
# _bytes_total), aggregation over workers, buckets past the request
# timeout, error kinds and disconnect reasons always present, per-node
# counters that stay monotonic across a resharding, process and build
# metrics, /healthz from the workers' ticks, metrics.readiness, and a
# Grafana dashboard that only asks for what the proxy exports.

import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, test, wait_until  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DASHBOARD = os.path.join(TOP, "contrib", "grafana",
                         "slotproxy-dashboard.json")


get = harness.http_get


def scrape(port):
    """(samples {name{labels}: float}, types {family: type}). Checks the
    text format rules a Prometheus server enforces: one TYPE per family,
    before its samples, and every sample of a declared family."""
    status, text = get(port, "/metrics")
    assert status == 200, status
    out, types, seen = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            assert fam not in types, "TYPE %s twice" % fam
            assert fam not in seen, "TYPE %s after its samples" % fam
            types[fam] = typ
            continue
        if not line or line.startswith("#"):
            continue
        key, val = line.rsplit(" ", 1)
        base = key.split("{")[0]
        fam = base
        for suffix in ("_bucket", "_sum", "_count"):
            if base.endswith(suffix) and \
                    types.get(base[:-len(suffix)]) == "histogram":
                fam = base[:-len(suffix)]
        assert fam in types, "no TYPE for %s" % key
        seen.add(fam)
        assert key not in out, "sample %s twice" % key
        out[key] = float(val)
    return out, types


def family(m, name):
    """{labels text: value} of the samples of one family."""
    return {k[len(name):]: v for k, v in m.items()
            if k == name or k.startswith(name + "{")}


def metrics_proxy(env, extra="", **kw):
    mport = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]\n%s"
                      % (HOST, mport, extra), **kw)
    return p, mport


@test(timeout=60)
def test_names_follow_prometheus_rules(env):
    """One family per name; _bytes_total at the end; the renamed families
    are there and the old ones gone; histograms reach 10 s; every error
    kind, disconnect reason and pin limit is present from the start;
    build_info and process_* are exported."""
    env.cluster
    p, mport = metrics_proxy(env)
    with p.client() as c:
        assert c.call("SET", "om:a", "1") == b"OK"
    wait_until(lambda: scrape(mport)[0].get(
        "slotproxy_client_sent_bytes_total", 0) > 0, 20,
        "the connection's bytes published")
    m, types = scrape(mport)
    for old in ("slotproxy_connections", "slotproxy_connections_total",
                "slotproxy_client_bytes_in_total",
                "slotproxy_client_bytes_out_total",
                "slotproxy_connections_rejected_total",
                "slotproxy_topology_refresh_microseconds_total"):
        assert old not in types, old
    assert types["slotproxy_client_connections"] == "gauge"
    assert types["slotproxy_client_connections_accepted_total"] == "counter"
    assert m["slotproxy_client_connections_accepted_total"] >= 1
    assert m["slotproxy_client_received_bytes_total"] > 0
    assert m["slotproxy_client_sent_bytes_total"] > 0
    for fam, typ in types.items():
        # a gauge X beside a counter X_total would be one family to
        # OpenMetrics: never
        if fam.endswith("_total"):
            assert fam[:-6] not in types, fam
        if "bytes" in fam and typ == "counter":
            assert fam.endswith("_bytes_total"), fam
    assert types["slotproxy_topology_refresh_duration_seconds"] == \
        "histogram"
    assert m["slotproxy_topology_refresh_duration_seconds_count"] >= 1
    assert m["slotproxy_topology_refresh_duration_seconds_sum"] > 0
    les = [k for k in m if
           k.startswith("slotproxy_request_duration_seconds_bucket")]
    assert 'slotproxy_request_duration_seconds_bucket{le="10"}' in les, les
    assert 'slotproxy_request_duration_seconds_bucket{le="5"}' in les, les
    kinds = family(m, "slotproxy_errors_by_kind_total")
    for k in ("ERR", "WRONGTYPE", "CROSSSLOT", "CLUSTERDOWN", "NOAUTH",
              "MOVED", "ASK", "OTHER"):
        assert '{kind="%s"}' % k in kinds, kinds
    reasons = family(m, "slotproxy_disconnects_total")
    for r in ("output_limit", "memory_budget", "output_stall",
              "idle_timeout", "max_clients", "protocol_error",
              "auth_failures", "tls_handshake", "shutdown"):
        assert '{reason="%s"}' % r in reasons, reasons
    limits = family(m, "slotproxy_pinned_refusals_total")
    assert set(limits) == {'{limit="per_client"}', '{limit="total"}',
                           '{limit="per_node"}'}, limits
    info = [k for k in m if k.startswith("slotproxy_build_info{")]
    assert len(info) == 1 and m[info[0]] == 1, info
    assert re.search(r'version="[^"]+",commit="[^"]+",tls="(dlopen|linked|'
                     r'none)",allocator="[^"]+"', info[0]), info[0]
    assert m["process_resident_memory_bytes"] > 1 << 20
    assert m["process_open_fds"] >= 5
    assert m["process_max_fds"] >= m["process_open_fds"]
    assert abs(m["process_start_time_seconds"] - time.time()) < 600
    assert m["process_cpu_seconds_total"] >= 0


@test(timeout=60)
def test_cluster_views_are_not_summed_over_workers(env):
    """With two workers, the slots covered, masters and a node's
    connected state are one cluster's figures, not twice them; counts of
    work done (commands) add up."""
    env.cluster
    p, mport = metrics_proxy(env, extra="workers: 2\n")
    conns = []
    try:
        for i in range(8):
            c = p.client()
            conns.append(c)
            assert c.call("SET", "omw:%d" % i, i) == b"OK"
        # The client gauge is published per tick, and the start-up probe's
        # connection counts until its close is read.
        wait_until(lambda: scrape(mport)[0]["slotproxy_commands_total"] >= 8
                   and scrape(mport)[0]["slotproxy_client_connections"] == 8,
                   20, "commands of both workers, 8 clients")
        m, _ = scrape(mport)
        assert m["slotproxy_slots_covered"] == 16384
        assert m["slotproxy_cluster_masters"] == 3
        assert m["slotproxy_backend_nodes_down"] == 0
        conn = family(m, "slotproxy_backend_connected")
        assert conn and all(v in (0, 1) for v in conn.values()), conn
        assert sum(conn.values()) >= 3, conn
        assert m["slotproxy_client_connections"] == 8
    finally:
        for c in conns:
            c.close()


@test(timeout=60)
def test_disconnect_reasons(env):
    """Idle timeout, max_clients refusals and protocol errors each count
    under their own reason."""
    env.cluster
    p, mport = metrics_proxy(env, extra="clients:\n  idle_timeout: 300ms\n")

    def reasons(port):
        return family(scrape(port)[0], "slotproxy_disconnects_total")
    with p.client() as c:
        assert c.is_closed(wait=10)
    wait_until(lambda: reasons(mport)['{reason="idle_timeout"}'] >= 1, 20,
               "idle_timeout counted")

    p, mport = metrics_proxy(env, extra="clients:\n  max_clients: 2\n")
    # The start-up probe's connection counts until its close is read
    # (another worker's, maybe): two clients fit once it is gone.
    wait_until(lambda: scrape(mport)[0]["slotproxy_client_connections"] == 0,
               20, "the start-up probe's close")
    a, b = p.client(), p.client()
    try:
        assert a.call("PING") == b"PONG" and b.call("PING") == b"PONG"
        with harness.Client(p.port) as third:
            r = third.read()
            assert isinstance(r, harness.Error) and "max" in r.msg, r
        wait_until(lambda: reasons(mport)['{reason="max_clients"}'] >= 1, 20,
                   "max_clients counted")
        # INFO keeps Redis's name for the refusals.
        info = a.call("INFO", "stats").decode()
        assert re.search(r"rejected_connections:[1-9]", info), info
        a.send_raw(b"*1\r\n$abc\r\n")
        assert isinstance(a.read(), harness.Error)
        assert a.is_closed(wait=10)
        wait_until(lambda: reasons(mport)['{reason="protocol_error"}'] >= 1,
                   20, "protocol_error counted")
    finally:
        a.close()
        b.close()


@test(timeout=60)
def test_pinned_refusals_counted(env):
    """A WATCH past clients.max_pinned is refused and counted by limit."""
    env.cluster
    p, mport = metrics_proxy(env, extra="workers: 1\nclients:\n"
                             "  max_pinned: 1\n")
    with p.client() as a, p.client() as b:
        assert a.call("WATCH", "omp:k") == b"OK"
        r = b.call("WATCH", "omp:k")
        assert isinstance(r, harness.Error) and "max_pinned" in r.msg, r
        wait_until(lambda: scrape(mport)[0].get(
            'slotproxy_pinned_refusals_total{limit="total"}', 0) >= 1, 20,
            "refusal counted")


@test(timeout=60)
def test_slow_requests_land_in_buckets_below_inf(env):
    """A request of about 1.5 s (BLPOP with a timeout) lands in the
    2.5 s bucket, not only in +Inf."""
    env.cluster
    p, mport = metrics_proxy(env)
    with p.client() as c:
        assert c.call("BLPOP", "om:empty", "1.2") is None
    name = "slotproxy_command_duration_seconds_bucket"

    def landed():
        m = scrape(mport)[0]
        return m.get('%s{command="blpop",le="2.5"}' % name, 0) == 1
    wait_until(landed, 20, "blpop in the 2.5 s bucket")
    m = scrape(mport)[0]
    assert m['%s{command="blpop",le="1"}' % name] == 0
    assert m['slotproxy_request_duration_seconds_bucket{le="2.5"}'] >= 1


@test(timeout=60)
def test_healthz_reports_live_workers(env):
    env.cluster
    p, mport = metrics_proxy(env, extra="workers: 3\n")
    assert get(mport, "/healthz") == (200, "ok\n")
    # still alive a few ticks later, with traffic
    with p.client() as c:
        for i in range(20):
            assert c.call("SET", "omh:%d" % i, i) == b"OK"
    time.sleep(0.3)
    assert get(mport, "/healthz") == (200, "ok\n")


@test(timeout=90)
def test_readiness_any_slot(env):
    """metrics.readiness: any-slot stays ready while some slots have no
    master; a reload to all-slots turns it 503 at once."""
    node = harness.one_node_cluster("omready")
    try:
        mport = harness.free_port()
        extra = "metrics:\n  listen: [%s:%d]\n  readiness: %%s\n" % (
            HOST, mport)
        p = harness.Proxy([node.port], extra=extra % "any-slot")
        p.cluster_option("refresh_interval: 300ms")
        env.proxies.append(p)
        p.start()
        wait_until(lambda: get(mport, "/readyz")[0] == 200, 20, "ready")
        assert node.call("CLUSTER", "DELSLOTSRANGE", "0", "99") == b"OK"
        wait_until(lambda: "16284/16384" in get(mport, "/readyz")[1], 15,
                   "the proxy sees slots 0-99 unserved")
        status, body = get(mport, "/readyz")
        assert status == 200 and "any-slot" in body, (status, body)
        with open(p.conf) as f:
            conf = f.read()
        with open(p.conf, "w") as f:
            f.write(conf.replace("readiness: any-slot",
                                 "readiness: all-slots"))
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: get(mport, "/readyz")[0] == 503, 20,
                   "all-slots after the reload")
        assert "all-slots" in get(mport, "/readyz")[1]
        assert node.call("CLUSTER", "ADDSLOTSRANGE", "0", "99") == b"OK"
        wait_until(lambda: get(mport, "/readyz")[0] == 200, 15,
                   "ready again")
        assert p.alive()
    finally:
        node.stop()


@test(timeout=60)
def test_grafana_dashboard_asks_for_what_exists(env):
    """The dashboard parses, every rate() uses $__rate_interval, it has
    panels for per-command latency, bytes and error kinds, and every
    slotproxy_ metric it queries is exported."""
    env.cluster
    p, mport = metrics_proxy(env)
    with p.client() as c:
        assert c.call("SET", "omg:a", "1") == b"OK"
        assert isinstance(c.call("NOSUCH"), harness.Error)
    # per-command latency is published once a second
    wait_until(lambda: scrape(mport)[0].get(
        'slotproxy_command_duration_seconds_count{command="set"}', 0) >= 1,
        20, "per-command latency published")
    m, types = scrape(mport)
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("expr", "query", "definition") and \
                        isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(dash)
    assert exprs
    text = "\n".join(exprs)
    for rng in re.findall(r"\[([^\]]+)\]", text):
        assert rng in ("$__rate_interval", "$__range"), rng
    names = set(re.findall(r"\b((?:slotproxy|process)_[a-z_]+)", text))
    known = set(types)
    for fam, typ in types.items():
        if typ == "histogram":
            known |= {fam + "_bucket", fam + "_sum", fam + "_count"}
    missing = names - known
    assert not missing, missing
    for want in ("slotproxy_command_duration_seconds_bucket",
                 "slotproxy_client_received_bytes_total",
                 "slotproxy_client_sent_bytes_total",
                 "slotproxy_errors_by_kind_total"):
        assert want in names, want


@test(last=True, timeout=150)
def test_master_requests_monotonic_across_resharding(env):
    """Requests are counted per node as they are sent: after slots move
    from one master to another, no node's counter goes down (it used to
    be re-credited per slot to the current owner each second)."""
    cl = env.cluster
    cl.wait_ok(30)
    p, mport = metrics_proxy(env, extra="workers: 2\n")
    src, dst = cl.masters()[0], cl.masters()[1]
    slots = cl.slots_of(src)[:20]
    keys = harness.keys_in_slots("omr", slots, 100)
    name = "slotproxy_master_requests_total"
    with p.client() as c:
        c.pipeline([("SET", k, "v") for k in keys])
    src_label = '{node="%s:%d"}' % (HOST, src.port)

    def counted():
        return family(scrape(mport)[0], name).get(src_label, 0) >= 100
    wait_until(counted, 20, "requests to the source counted")
    before = family(scrape(mport)[0], name)
    try:
        cl.migrate_slots(src, dst, slots)
        with p.client() as c:
            # the proxy learns the move (MOVED), then sends to dst
            for k in keys:
                assert c.call("GET", k) == b"v"
        wait_until(lambda: family(scrape(mport)[0], name).get(
            '{node="%s:%d"}' % (HOST, dst.port), 0) >=
            before.get('{node="%s:%d"}' % (HOST, dst.port), 0) + 100, 20,
            "requests to the new owner counted")
        time.sleep(1.2)  # past the once-a-second slot publication
        after = family(scrape(mport)[0], name)
        for node, v in before.items():
            assert after.get(node, 0) >= v, (node, v, after)
        share = family(scrape(mport)[0], "slotproxy_master_load_share")
        assert abs(sum(share.values()) - 1) < 0.01, share
    finally:
        cl.migrate_slots(dst, src, slots)
        with p.client() as c:
            c.pipeline([("DEL", k) for k in keys])


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
