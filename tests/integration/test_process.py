#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# The process itself: a crash leaves a stack trace in the log, and a
# start / serve / shutdown cycle under valgrind shows no memory error and
# no leak.

import os
import shutil
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import test, log  # noqa: E402


@test(timeout=30)
def test_crash_leaves_stack_trace(env):
    if harness.sanitized():
        raise harness.Skip("sanitizer build: ASan reports crashes itself")
    p = env.new_proxy()
    with p.client() as c:
        assert c.call("SET", "crash:k", "v") == b"OK"
    os.kill(p.pid, signal.SIGSEGV)
    p.proc.wait(10)
    env.proxies.remove(p)  # it died on purpose: not a shutdown to check
    assert p.proc.returncode == -signal.SIGSEGV, p.proc.returncode
    text = open(p.log, errors="replace").read()
    assert "crashed: signal %d (SIGSEGV)" % signal.SIGSEGV in text, \
        p.log_tail(20)
    frames = [ln for ln in text.splitlines() if "slotproxy(" in ln or
              "libc.so" in ln or "[0x" in ln]
    assert len(frames) >= 3, p.log_tail(20)
    log("    crash report: %d stack frames logged" % len(frames))


@test(timeout=180)
def test_valgrind_serve_cycle(env):
    if harness.sanitized():
        raise harness.Skip("sanitizer build")
    if shutil.which("valgrind") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("valgrind missing in CI")
        raise harness.Skip("valgrind not installed")
    cl = env.cluster
    # epoll: memcheck does not model io_uring's rings (the completions the
    # kernel writes into the shared mapping read as uninitialised).
    p = harness.Proxy([m.port for m in cl.masters()],
                      env={"SLOTPROXY_IO": "epoll"})
    p.wrapper = ["valgrind", "--leak-check=full", "--error-exitcode=99",
                 "--errors-for-leak-kinds=definite,indirect,possible",
                 "--show-leak-kinds=definite,indirect,possible"]
    env.proxies.append(p)
    p.start(timeout=60)
    keys = ["vg:%d" % i for i in range(40)]
    with p.client(30) as c, p.client(30) as c2:
        # The main paths: single-slot, split and merge, fan-out, local,
        # transactions, blocking, pub/sub, errors.
        assert c.pipeline([("SET", k, k) for k in keys]) == [b"OK"] * 40
        assert c.call("MGET", *keys) == [k.encode() for k in keys]
        assert c.call("MSET", "vg:a", "1", "vg:b", "2") == b"OK"
        assert c.call("EXISTS", *keys) == 40
        assert c.call("DBSIZE") >= 42
        assert isinstance(c.call("SCAN", "0", "COUNT", "100"), list)
        assert isinstance(c.call("INFO"), bytes)
        assert c.call("MULTI") == b"OK"
        assert c.call("INCR", "{vg}n") == b"QUEUED"
        assert c.call("EXEC") == [1]
        assert c.call("WATCH", "{vg}n") == b"OK"
        assert c.call("UNWATCH") == b"OK"
        assert c.call("BLPOP", "vg:q", "0.2") is None
        assert c2.call("SUBSCRIBE", "vg:ch") == [b"subscribe", b"vg:ch", 1]
        assert c.call("PUBLISH", "vg:ch", "m") >= 0
        assert c2.read() == [b"message", b"vg:ch", b"m"]
        assert c.call("NOSUCHCMD") != b"OK"
        assert c.call("DEL", *keys, "vg:a", "vg:b", "{vg}n") == 43
    # A client that leaves with requests in flight.
    c3 = p.client(30)
    c3.send(("BLPOP", "vg:q2", "5"), ("GET", "vg:x"))
    time.sleep(0.3)
    c3.close()
    time.sleep(0.3)
    harness.stop_proc(p.proc, grace=30)
    text = open(p.log, errors="replace").read()
    summary = [ln for ln in text.splitlines() if "ERROR SUMMARY" in ln]
    log("    valgrind: %s" % (summary[-1].split("==")[-1].strip()
                               if summary else "no summary"))
    assert p.proc.returncode == 0, (p.proc.returncode, p.log_tail(60))
    assert summary and " 0 errors" in summary[-1], p.log_tail(60)


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))


@test(timeout=60)
def test_shutdown_with_slot_map_fetch_in_flight(env):
    # The only seed accepts and never answers: the CLUSTER SLOTS request
    # is still out when SIGTERM comes. Shutdown frees the topology
    # fetcher, then fails the backends' requests: that one must find no
    # one to tell (ASan once saw topo_on_done run on the freed fetcher).
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind((harness.HOST, 0))
    silent.listen(8)
    conns = []
    try:
        p = harness.Proxy([silent.getsockname()[1]], request_timeout="30s")
        env.proxies.append(p)
        p.proc = harness.spawn(p.wrapper + [harness.proxy_bin(), "-c",
                                            p.conf], p.log,
                               "slotproxy-%d" % p.port, cwd=p.dir)
        got = b""
        silent.settimeout(10)
        while b"SLOTS" not in got.upper():
            c, _ = silent.accept()
            conns.append(c)
            c.settimeout(10)
            got += c.recv(4096)
        harness.stop_proc(p.proc)
        env.proxies.remove(p)
        tail = p.log_tail(400)
        bad = [w for w in ("AddressSanitizer", "LeakSanitizer",
                           "runtime error:") if w in tail]
        assert p.proc.returncode == 0 and not bad, \
            (p.proc.returncode, bad, tail[-3000:])
    finally:
        for c in conns:
            c.close()
        silent.close()
