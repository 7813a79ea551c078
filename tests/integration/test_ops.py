#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Operating the process: what `slotproxy -v` says about the build, and
# `workers: auto` counting the CPUs the process may use.

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import test, log  # noqa: E402


def _version(flag):
    out = subprocess.run([harness.proxy_bin(), flag], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=10)
    assert out.returncode == 0, out
    return out.stdout.decode()


@test
def test_version_reports_build(env):
    text = _version("-v")
    assert _version("-V") == text and _version("--version") == text
    lines = text.splitlines()
    assert re.match(r"slotproxy \d+\.\d+\.\d+", lines[0]), text
    fields = dict(ln.split(": ", 1) for ln in lines[1:])
    assert re.match(r"^([0-9a-f]{7,40}|unknown)$", fields["commit"]), text
    build = dict(kv.split("=") for kv in fields["build"].split()
                 if "=" in kv)
    assert build["tls"] in ("dlopen", "linked", "none"), text
    assert build["allocator"] in ("jemalloc-static", "jemalloc", "libc"), text
    assert build["sanitizers"] == ("asan+ubsan" if harness.sanitized()
                                   else "none"), text
    assert re.match(r"\d+\.\d+\.\d+", fields["libevent"]), text
    if build["tls"] != "none":
        assert "OpenSSL" in fields["openssl"], text
    log("    -v: " + " | ".join(lines))


def _workers(env, wrapper):
    p = harness.Proxy([m.port for m in env.cluster.masters()],
                      extra="workers: auto")
    p.wrapper = wrapper
    env.proxies.append(p)
    p.start()
    with p.client() as c:
        info = c.call("INFO", "proxy").decode()
    return int(re.search(r"workers:(\d+)", info).group(1))


@test
def test_workers_auto_follows_affinity(env):
    if shutil.which("taskset") is None:
        raise harness.Skip("taskset (util-linux) not installed")
    allowed = len(os.sched_getaffinity(0))
    n_all = _workers(env, [])
    assert 1 <= n_all <= allowed, (n_all, allowed)
    n_one = _workers(env, ["taskset", "-c",
                           str(min(os.sched_getaffinity(0)))])
    assert n_one == 1, n_one
    log("    workers: auto = %d with %d CPUs allowed, 1 under taskset -c"
        % (n_all, allowed))


TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[\d+\] "
                       r"(main|w\d+) (error|warn|notice|info|debug): ")


@test
def test_log_text_iso8601_utc_with_thread(env):
    p = env.new_proxy()
    with p.client() as c:
        assert c.call("PING") == b"PONG"
    lines = [ln for ln in open(p.log, errors="replace").read().splitlines()
             if ln.strip()]
    assert lines and all(TEXT_LINE.match(ln) for ln in lines), lines[:5]
    assert any(" main notice: " in ln for ln in lines), lines[:5]
    assert any(" w0 notice: " in ln or " w0 info: " in ln
               for ln in lines), lines


@test
def test_log_json_lines(env):
    import json
    # A client name with a quote, a backslash and a newline-free escape
    # must not break a line (CLIENT SETNAME refuses spaces).
    p = harness.Proxy([m.port for m in env.cluster.masters()],
                      log_level="info")
    text = open(p.conf).read()
    with open(p.conf, "w") as f:
        f.write(text.replace("log:\n", "log:\n  format: json\n", 1))
    env.proxies.append(p)
    p.start()
    with p.client() as c:
        assert c.call("CLIENT", "SETNAME", 'a"b\\c') == b"OK"
        assert c.call("PING") == b"PONG"
    harness.wait_until(lambda: "closed" in open(p.log).read(), 20,
                       "the close logged")
    objs = [json.loads(ln) for ln in open(p.log).read().splitlines()
            if ln.strip()]
    for o in objs:
        assert set(o) == {"time", "level", "pid", "thread", "msg"}, o
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
                        o["time"]), o
        assert o["pid"] == p.pid
    assert any(o["thread"] == "w0" and "connected" in o["msg"]
               for o in objs), objs


@test
def test_log_journal_priority_prefix(env):
    """When stderr is the stream JOURNAL_STREAM names (systemd sets it),
    lines carry the journal's priority prefix and no timestamp."""
    p = harness.Proxy([m.port for m in env.cluster.masters()])
    # The harness appends stderr to p.log: that file is "the journal".
    open(p.log, "ab").close()
    st = os.stat(p.log)
    old = os.environ.get("JOURNAL_STREAM")
    os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    try:
        env.proxies.append(p)
        p.start()
    finally:
        if old is None:
            del os.environ["JOURNAL_STREAM"]
        else:
            os.environ["JOURNAL_STREAM"] = old
    lines = [ln for ln in open(p.log).read().splitlines() if ln.strip()]
    prio = {"error": "3", "warn": "4", "notice": "5", "info": "6",
            "debug": "7"}
    for ln in lines:
        m = re.match(r"^<(\d)>(main|w\d+) (\w+): ", ln)
        assert m and prio[m.group(3)] == m.group(1), ln
