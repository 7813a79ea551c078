#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Records raw COMMAND replies from real servers into
# tests/unit/data/commands/, so check_cmdtable parses the exact bytes each
# server version sends (the proxy learns its command table from this reply
# at runtime; see src/cmdtable.h). For each server: start it standalone on
# a free loopback port (no persistence), send COMMAND over a plain socket,
# store the reply bytes unchanged, stop the server by its PID (also on
# error or signal).
#
# Servers (defaults; each can be overridden on the command line):
#   redis-server on PATH (Debian's 7.0.15)
#   Redis 7.4.1 and Valkey 8.0.1 built by ../shared/servers/build.sh into
#   ~/.cache/slotproxy-servers (run it first if they are missing)
# Files are named <product>-<version>.resp from the server's own INFO, and
# one more, <product>-<version>-resp3.resp, holds the RESP3 form (after
# HELLO 3) of the last server's reply. README.txt lists what was recorded.
#
# Usage: scripts/record_commands.py [--out DIR] [SERVER-BINARY ...]

import argparse
import atexit
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from record_cluster_slots import (  # noqa: E402
    Conn, HOST, answers_ping, wait_for)

ROOT = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), ".."))
OUT_DEFAULT = os.path.join(ROOT, "tests", "unit", "data", "commands")
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME",
                                    os.path.expanduser("~/.cache")),
                     "slotproxy-servers")
SERVERS_DEFAULT = [
    "redis-server",
    os.path.join(CACHE, "redis-7.4.1", "src", "redis-server"),
    os.path.join(CACHE, "valkey-8.0.1", "src", "valkey-server"),
]

procs = []


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_all():
    for proc in procs:
        stop(proc)


def start(binary):
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", ""],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    procs.append(proc)

    wait_for(lambda: answers_ping(port, proc),
             "%s on port %d" % (binary, port))
    return proc, Conn(port)


def identity(conn):
    """("redis" or "valkey", version) from INFO server."""
    info = dict(line.split(":", 1) for line in
                conn.call("INFO", "server").decode().splitlines()
                if ":" in line)
    if "valkey_version" in info:
        return "valkey", info["valkey_version"].strip()
    return "redis", info["redis_version"].strip()


def record(binary, out, resp3):
    """Record one server's COMMAND reply; returns [(file, description)]."""
    proc, conn = start(binary)
    done = []
    try:
        product, version = identity(conn)
        name = "%s-%s" % (product, version)
        reply, raw = conn.call_raw("COMMAND")
        write(out, name + ".resp", raw)
        done.append((name + ".resp", "%d commands, RESP2" % len(reply)))
        if resp3:
            conn.call("HELLO", "3")
            reply, raw = conn.call_raw("COMMAND")
            write(out, name + "-resp3.resp", raw)
            done.append((name + "-resp3.resp",
                         "%d commands, RESP3 (after HELLO 3)" % len(reply)))
    finally:
        conn.close()
        stop(proc)
        procs.remove(proc)
    return done


def write(out, name, raw):
    with open(os.path.join(out, name), "wb") as f:
        f.write(raw)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=OUT_DEFAULT)
    ap.add_argument("servers", nargs="*", default=SERVERS_DEFAULT)
    args = ap.parse_args()
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))

    os.makedirs(args.out, exist_ok=True)
    recorded = []
    for i, binary in enumerate(args.servers):
        recorded += record(binary, args.out, i == len(args.servers) - 1)
    with open(os.path.join(args.out, "README.txt"), "w") as f:
        f.write("Raw COMMAND replies recorded by scripts/record_commands.py "
                "from standalone\nservers (--save '' --appendonly no), "
                "byte for byte as sent. The order of the\ncommands is the "
                "server's hash table order: it changes from run to run.\n\n")
        for name, what in recorded:
            size = os.path.getsize(os.path.join(args.out, name))
            f.write("%s: %s, %d bytes\n" % (name, what, size))
    print("recorded %s into %s"
          % (", ".join(n for n, _ in recorded), args.out))


if __name__ == "__main__":
    main()
