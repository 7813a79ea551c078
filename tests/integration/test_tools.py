#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Real clients through the proxy: redis-py (plain, non-cluster client),
# redis-cli without -c, and redis-benchmark with pipelining.

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import test  # noqa: E402


@test
def test_redis_py(env):
    try:
        import redis
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        raise harness.Skip("python3-redis not installed")
    r = redis.Redis(host=harness.HOST, port=env.proxy.port,
                    socket_timeout=10)
    try:
        assert r.ping() is True
        assert r.set("py:k", "v") is True
        assert r.get("py:k") == b"v"
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.set("py:p:%d" % i, i)
        assert p.execute() == [True] * 1000
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.get("py:p:%d" % i)
        assert p.execute() == [str(i).encode() for i in range(1000)]
        assert r.hset("py:h", mapping={"a": "1", "b": "2"}) == 2
        assert r.hgetall("py:h") == {b"a": b"1", b"b": b"2"}
        assert r.incr("py:n") == 1
        assert r.incr("py:n", 41) == 42
        assert r.delete("py:k") == 1
        assert r.delete("py:h") == 1
        assert r.delete("py:n") == 1
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.delete("py:p:%d" % i)
        assert p.execute() == [1] * 1000
    finally:
        r.close()


run = harness.run


@test
def test_redis_cli(env):
    port = str(env.proxy.port)
    base = ["redis-cli", "-h", harness.HOST, "-p", port]
    rc, out, err = run(base + ["set", "foo", "bar"])
    assert rc == 0 and out.strip() == "OK", (rc, out, err)
    rc, out, err = run(base + ["get", "foo"])
    assert rc == 0 and out.strip() == "bar", (rc, out, err)
    rc, out, err = run(base + ["incrby", "cli:n", "5"])
    assert rc == 0 and out.strip() == "5", (rc, out, err)
    rc, out, err = run(base + ["del", "foo"])
    assert rc == 0 and out.strip() == "1", (rc, out, err)
    rc, out, err = run(base + ["del", "cli:n"])
    assert rc == 0 and out.strip() == "1", (rc, out, err)
    rc, out, err = run(base + ["get", "foo"])
    assert rc == 0 and out.strip() == "", (rc, out, err)
    rc, out, err = run(base + ["ping"])
    assert out.strip() == "PONG", (rc, out, err)


@test(timeout=150)
def test_redis_benchmark(env):
    tests = ["get", "set", "incr", "lpush", "rpop", "sadd", "hset"]
    rc, out, err = run(["redis-benchmark", "-h", harness.HOST,
                        "-p", str(env.proxy.port), "-t", ",".join(tests),
                        "-P", "16", "-n", "20000", "-q"], timeout=120)
    text = out.replace("\r", "\n")
    rates = dict(re.findall(r"^([A-Z]+)[^:\n]*: ([\d.]+) requests per second",
                            text, re.M))
    harness.log("    redis-benchmark: " + ", ".join(
        "%s %s/s" % kv for kv in sorted(rates.items())))
    assert rc == 0, (rc, out[-2000:], err[-2000:])
    for t in tests:
        assert t.upper() in rates and float(rates[t.upper()]) > 0, \
            (t, rates, out[-2000:], err[-2000:])
    bad = [ln for ln in (text + err).splitlines()
           if "error" in ln.lower() and "CONFIG" not in ln]
    assert not bad, bad[:5]
    # redis-benchmark keys: all in the cluster, none lost in transit.
    with env.client() as c:
        assert c.call("EXISTS", "key:__rand_int__") == 1
        assert c.call("GET", "counter:__rand_int__") == b"20000"
        for k in ("key:__rand_int__", "counter:__rand_int__", "mylist",
                  "myset", "myhash"):
            assert c.call("DEL", k) in (0, 1), k


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))


def ioredis_dir():
    """tests/integration/ioredis with its node_modules installed."""
    return harness.npm_dir("ioredis", "ioredis")


@test(timeout=240)
def test_ioredis_autopipelining(env):
    d = ioredis_dir()
    rc, out, err = run(["node", os.path.join(d, "check.js"),
                        str(env.proxy.port)], timeout=60)
    assert rc == 0, out + err
    assert "ioredis ok" in out, out
