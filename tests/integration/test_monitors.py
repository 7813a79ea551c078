#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# The cluster practices the proxy can watch or enforce (issue 15): the
# hot-key sketch (PROXY HOTKEYS, slotproxy_hotkey_requests in /metrics,
# hide_keys) and spread TTLs (expiry_jitter).

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, keyslot, test, wait_until  # noqa: E402


def hotkeys_proxy(env, extra=""):
    """A proxy sampling one keyed request in 4, with /metrics; returns
    (proxy, metrics port)."""
    env.cluster
    mport = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]\n"
                      "monitor:\n  hotkeys:\n    sample: 4\n%s"
                      % (HOST, mport, extra))
    return p, mport


def hammer(c, hot, rounds=20):
    """rounds x (200 GETs of hot, 2 GETs each of 20 cold keys)."""
    cold = [("GET", "hkcold:%d" % i) for i in range(20)] * 2
    for _ in range(rounds):
        c.pipeline([("GET", hot)] * 200 + cold)


def top_metric_key(mport):
    """(key label, slot label) of the hottest key in /metrics, or None."""
    best = None
    for k, v in harness.metrics(mport).items():
        if k.startswith("slotproxy_hotkey_requests{"):
            if best is None or v > best[1]:
                best = (k, v)
    if best is None:
        return None
    labels = best[0][len("slotproxy_hotkey_requests{"):-1]
    key, slot = labels.rsplit(",slot=", 1)
    return key[len("key="):], slot.strip('"')


@test(timeout=60)
def test_hotkeys_hammered_key_first(env):
    p, mport = hotkeys_proxy(env)
    hot = "hk:{hot}:user"
    with p.client() as c:
        hammer(c, hot)
        wait_until(lambda: (c.call("PROXY", "HOTKEYS") or [[None]])[0][0]
                   == hot.encode(), 10, "the hot key first in PROXY HOTKEYS")
        top = c.call("PROXY", "HOTKEYS")
        key, rps, err, slot, master, length = top[0]
        assert slot == keyslot(hot), top[0]
        owner = env.cluster.node_for_key(hot)
        assert master.decode().endswith(":%d" % owner.port), master
        assert length == len(hot) and rps > 0 and err >= 0, top[0]
        assert all(rps >= e[1] for e in top[1:]), top
        assert len(top) <= 10
        assert len(c.call("PROXY", "HOTKEYS", "COUNT", "3")) <= 3
        assert c.call("PROXY", "HOTKEYS", "count", "1")[0][0] == hot.encode()
        for bad in (("COUNT", "0"), ("COUNT", "x"), ("COUNT",), ("FOO", "1")):
            r = c.call("PROXY", "HOTKEYS", *bad)
            assert isinstance(r, harness.Error), (bad, r)
    wait_until(lambda: top_metric_key(mport) == ('"%s"' % hot,
                                                 str(keyslot(hot))),
               10, "the hot key first in /metrics")


@test(timeout=60)
def test_hotkeys_hide_keys(env):
    p, mport = hotkeys_proxy(env, "    hide_keys: true\n")
    hot = "hk:secret:token"
    with p.client() as c:
        hammer(c, hot)
        wait_until(lambda: top_metric_key(mport) is not None, 10,
                   "hot keys in /metrics")
        # Admins still see names; /metrics shows the slot and a hash.
        wait_until(lambda: c.call("PROXY", "HOTKEYS")[0][0] == hot.encode(),
                   10, "the hot key first in PROXY HOTKEYS")
    key, slot = top_metric_key(mport)
    assert slot == str(keyslot(hot)), (key, slot)
    assert key.startswith('"#') and len(key) == 19, key
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport),
                                timeout=5) as r:
        assert b"secret" not in r.read()


@test(timeout=60)
def test_hotkeys_labels_escaped_and_cut(env):
    p, mport = hotkeys_proxy(env)
    hot = b'hk:"q\\\n\x01' + b"z" * 100
    with p.client() as c:
        hammer(c, hot)
    want = '"hk:\\"q\\\\\\\\x0a\\\\x01' + "z" * 56 + '..."'

    def top():
        t = top_metric_key(mport)
        return t is not None and t[0] == want
    wait_until(top, 10, "the escaped, cut key first in /metrics")


@test(timeout=60)
def test_hotkeys_reload(env):
    """SIGHUP: sample 0 drops the sketches (an empty list), a rate again
    makes new ones; a key hammered after that is first."""
    p, mport = hotkeys_proxy(env)

    def reload(old, new):
        with open(p.conf) as f:
            conf = f.read()
        with open(p.conf, "w") as f:
            f.write(conf.replace(old, new))
        os.kill(p.pid, signal.SIGHUP)
    with p.client() as c:
        hammer(c, "hk:before", rounds=5)
        wait_until(lambda: c.call("PROXY", "HOTKEYS") != [], 10,
                   "hot keys before the reload")
        reload("sample: 4", "sample: 0")
        wait_until(lambda: c.call("PROXY", "CONFIG", "GET",
                                  "monitor.hotkeys.sample")[1] == b"0",
                   10, "the reload")
        wait_until(lambda: c.call("PROXY", "HOTKEYS") == [], 10,
                   "no sketch once sampling is off")
        hammer(c, "hk:off", rounds=2)
        assert c.call("PROXY", "HOTKEYS") == []
        reload("sample: 0", "sample: 2")
        wait_until(lambda: c.call("PROXY", "CONFIG", "GET",
                                  "monitor.hotkeys.sample")[1] == b"2",
                   10, "the second reload")
        hammer(c, "hk:after", rounds=5)
        wait_until(lambda: c.call("PROXY", "HOTKEYS")[:1] != [] and
                   c.call("PROXY", "HOTKEYS")[0][0] == b"hk:after", 10,
                   "the key hammered after the reload first")
        assert b"hk:before" not in [e[0] for e in c.call("PROXY", "HOTKEYS")]


@test(timeout=30)
def test_hotkeys_off(env):
    env.cluster
    p = env.new_proxy(extra="monitor:\n  hotkeys:\n    sample: 0\n")
    with p.client() as c:
        hammer(c, "hk:off", rounds=2)
        assert c.call("PROXY", "HOTKEYS") == []
        r = c.call("PROXY", "CONFIG", "GET", "monitor.hotkeys.sample")
        assert r == [b"monitor.hotkeys.sample", b"0"], r


JITTER = "expiry_jitter:\n  percent: 10\n  min_ttl: 60s\n"


def monitor_lines(node, run, marker):
    """Runs run() while MONITOR watches node; returns the monitored lines
    naming marker (a key prefix), once the marker's PING arrived."""
    lines = []
    with node.client() as m:
        assert m.call("MONITOR") == b"OK"
        run()
        while True:
            line = m.read()
            if b'"%s:end"' % marker.encode() in line:
                return lines
            if marker.encode() in line:
                lines.append(line.split(b"] ", 1)[1])


@test(timeout=60)
def test_expiry_jitter_spreads_relative_ttls(env):
    env.cluster
    mport = harness.free_port()
    p = env.new_proxy(extra="metrics:\n  listen: [%s:%d]\n%s"
                      % (HOST, mport, JITTER))
    with p.client() as c:
        keys = ["ej:%d" % i for i in range(200)]
        assert c.pipeline([("SET", k, "v", "EX", 1000) for k in keys]) \
            == [b"OK"] * 200
        ttls = c.pipeline([("TTL", k) for k in keys])
        assert all(995 <= t <= 1100 for t in ttls), ttls
        assert len(set(ttls)) > 20 and max(ttls) > 1050, sorted(ttls)

        # Every relative form, options in any case and position.
        forms = [
            (("SETEX", "ej:setex", 1000, "v"), "TTL", 1000),
            (("PSETEX", "ej:psetex", 1000000, "v"), "PTTL", 1000000),
            (("SET", "ej:px", "v", "px", 1000000, "NX"), "PTTL", 1000000),
            (("SET", "ej:ex2", "v", "EX", 10, "GET", "EX", 1000), "TTL",
             1000),
            (("GETEX", "ej:px", "EX", 1000), "TTL", 1000),
            (("EXPIRE", "ej:setex", 2000), "TTL", 2000),
            (("PEXPIRE", "ej:psetex", 2000000, "GT"), "PTTL", 2000000),
        ]
        for _ in range(3):      # three tries: a 0 extra is possible
            grew = set()
            for args, ttl_cmd, base in forms:
                c.call(*args)
                t = c.call(ttl_cmd, args[1])
                assert base * 0.99 <= t <= base * 1.1, (args, t)
                if t > base:
                    grew.add(args[0])
            if len(grew) == len({f[0][0] for f in forms}):
                break
        assert grew == {f[0][0] for f in forms}, grew

        # Absolute forms, KEEPTTL and TTLs below min_ttl: never changed.
        now = c.call("TIME")
        at = int(now[0]) + 1000
        assert c.call("SET", "ej:exat", "v", "EXAT", at) == b"OK"
        assert c.call("SET", "ej:pxat", "v", "PXAT", at * 1000) == b"OK"
        assert c.call("SET", "ej:ea", "v") == b"OK"
        assert c.call("EXPIREAT", "ej:ea", at) == 1
        for k in ("ej:exat", "ej:pxat", "ej:ea"):
            assert 998 <= c.call("TTL", k) <= 1000, k
        assert c.call("SET", "ej:exat", "w", "KEEPTTL") == b"OK"
        assert 998 <= c.call("TTL", "ej:exat") <= 1000
        for i in range(20):
            c.call("SET", "ej:short%d" % i, "v", "EX", 59)
            assert c.call("TTL", "ej:short%d" % i) <= 59
    # Counted when changed (a 0 extra, 1 in 101 here, is not a change).
    wait_until(lambda: harness.metrics(mport)["slotproxy_expiry_jitter_total"]
               >= 190 + 7, 20, "the jittered requests counted")


@test(timeout=60)
def test_expiry_jitter_unchanged_bytes(env):
    """Jitter off: what the server sees is what the client sent; on, only
    the TTL argument of a changed request differs."""
    env.cluster
    off = env.new_proxy()
    on = env.new_proxy(extra=JITTER)
    key = "{ejb}:k"
    node = env.cluster.node_for_key(key)
    # Large TTLs: the chance of a 0 extra is 1 in 100,001.
    sent = [("SET", key, "v\r\nx", "ex", "1000000", "nx"),
            ("SET", key, "v", "EXAT", "99999999999"),
            ("EXPIRE", key, "1000000"), ("SETEX", key, "30", "v")]
    want = [b" ".join(b'"%s"' % a.encode().replace(b"\r\n", b"\\r\\n")
                      for a in cmd) for cmd in sent]

    def run(proxy):
        with proxy.client() as c:
            c.call("DEL", key)
            c.pipeline(sent)
        # The marker to stop reading at, straight to the node.
        node.call("ECHO", "{ejb}:end")

    got = monitor_lines(node, lambda: run(off), "{ejb}")
    assert [g for g in got if not g.startswith(b'"DEL"')] == want, got
    got = monitor_lines(node, lambda: run(on), "{ejb}")
    got = [g for g in got if not g.startswith(b'"DEL"')]
    assert len(got) == 4 and got[1] == want[1] and got[3] == want[3], got
    assert got[0].startswith(b'"SET" "{ejb}:k" "v\\r\\nx" "ex" "'), got
    assert got[0].endswith(b'" "nx"') and got[0] != want[0], got
    assert got[2] != want[2] and got[2].startswith(b'"EXPIRE"'), got


@test(timeout=300)
def test_expiry_jitter_hash_fields(env):
    """HEXPIRE and HPEXPIRE (Redis 7.4) get the jitter; HEXPIREAT not."""
    cluster = harness.Cluster(3, 0, name="monitors74", server="redis-7.4.1")
    cluster.start()
    proxy = None
    try:
        proxy = harness.Proxy([m.port for m in cluster.masters()],
                              extra=JITTER).start()

        def learned():
            # HEXPIRE is in the table the proxy learns from the masters;
            # every worker adopts it at its tick (new connections spread
            # over the workers).
            for _ in range(8):
                with proxy.client() as c:
                    if c.call("COMMAND", "INFO", "hexpire") == [None]:
                        return False
            return True
        wait_until(learned, 15, "every worker to learn HEXPIRE")
        with proxy.client() as c:
            fields = ["f%d" % i for i in range(50)]
            assert c.call("HSET", "ejh", *sum(([f, "v"] for f in fields),
                                               [])) == 50
            for f in fields[:25]:
                assert c.call("HEXPIRE", "ejh", 1000, "FIELDS", 1, f) == [1]
            for f in fields[25:]:
                assert c.call("HPEXPIRE", "ejh", 1000000, "fields", 1,
                              f) == [1]
            ttls = c.call("HTTL", "ejh", "FIELDS", 50, *fields)
            assert all(995 <= t <= 1100 for t in ttls), ttls
            assert len(set(ttls)) > 5, ttls
            at = int(c.call("TIME")[0]) + 1000
            assert c.call("HEXPIREAT", "ejh", at, "FIELDS", 1, "f0") == [1]
            assert 998 <= c.call("HTTL", "ejh", "FIELDS", 1, "f0")[0] <= 1000
    finally:
        if proxy is not None:
            proxy.stop()
        cluster.stop()
