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
