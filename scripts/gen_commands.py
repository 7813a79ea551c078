#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Generate src/command.def from a real redis-server (docs/commands.md comes
# from a running proxy: scripts/gen_command_docs.py).
#
# The command table is data: arity, flags and key specs come from Redis's
# own COMMAND reply, so a new Redis version is a regeneration, not a hand
# edit. The only hand-written part is the proxy's route column, kept below
# as a table (ROUTES) with the reason for each group.
#
# Commands of Redis 7.2+ that the proxy must know although the generating
# server is 7.0 are listed in NEWER (with 7.4.1's arity and flags).
#
# Usage: scripts/gen_commands.py [--redis-server PATH] [--out src/command.def]
#
# Python 3 standard library only: it starts a throwaway redis-server on a
# free loopback port, speaks RESP over a plain socket, and stops the server
# by its PID at the end.

import argparse
import os
import re
import socket
import subprocess
import sys
import time

# ---------------------------------------------------------------------------
# The proxy's route column.
#
# Resolution order for a command (fullname "get" or "config|get"):
#   1. an explicit entry for the fullname below;
#   2. for a subcommand, an explicit entry for its container;
#   3. the Redis "blocking" flag -> BLOCKING;
#   4. any key spec -> KEYED, else ANY.
# A new Redis command therefore lands in KEYED or ANY unless listed here.
# ---------------------------------------------------------------------------

ROUTES = [
    # The proxy answers these itself: connection state (auth, db, protocol,
    # readonly mode, ASKING) belongs to the client's proxy connection, and
    # topology questions must describe the proxy, not one backend.
    ("LOCAL", [
        "ping", "echo", "quit", "select", "hello", "info", "auth", "reset",
        "readonly", "readwrite", "asking", "role",
        "client",          # every CLIENT subcommand is about our connection
        "command",         # the proxy owns its command table
        "slowlog",         # the proxy's own slow requests (node, duration)
        "cluster|keyslot", "cluster|info", "cluster|nodes", "cluster|slots",
        "cluster|shards", "cluster|myid", "cluster|myshardid",
    ]),
    # Multi-key commands whose keys may span slots: split per slot, merge
    # the replies in key order.
    ("SPLIT", ["mget", "mset", "del", "unlink", "exists", "touch"]),
    # Keyspace-wide or server-wide state that lives on every master: fan
    # out and merge (sum, concatenate, all-ok).
    ("ALL", [
        "dbsize", "keys", "flushall", "flushdb", "randomkey", "scan",
        "script",          # load/exists/flush/kill must reach every master
        "function",        # libraries are per node: load/delete/flush/...
        # Subscribers are spread over the masters (each client's pub/sub
        # connection goes to one of them): ask them all and merge.
        "pubsub|channels", "pubsub|numsub", "pubsub|numpat",
        "pubsub|shardchannels", "pubsub|shardnumsub",
    ]),
    # State that a multiplexed backend connection cannot carry: a dedicated
    # connection is pinned for the client while the state lasts (txn.c:
    # WATCH; pubsub.c: subscriptions) or while the command blocks
    # (dispatch.c). Commands with Redis's "blocking" flag are added to
    # BLOCKING automatically (rule 3).
    ("TXN", ["multi", "exec", "discard", "watch", "unwatch"]),
    ("PUBSUB", [
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
        "ssubscribe", "sunsubscribe",
    ]),
    ("BLOCKING", ["xread", "xreadgroup"]),  # blocking only with BLOCK
    # Administration and replication of one server: meaningless or
    # dangerous through a proxy that hides which server it talks to.
    ("REFUSED", [
        "config", "debug", "shutdown", "replicaof", "slaveof", "monitor",
        "sync", "psync", "save", "bgsave", "bgrewriteaof", "acl", "module",
        "failover", "swapdb", "move", "latency", "pfdebug",
        "pfselftest", "replconf", "restore-asking",
        "memory",          # except MEMORY USAGE below
        "cluster",         # except the read-only subcommands under LOCAL
        "script|debug",    # needs an interactive session with one server
        "wait",            # waits on this connection's replication offset,
                           # but the client's writes went on shared ones
        "waitaof",         # likewise, for the AOF fsyncs of those writes
    ]),
    # Keyless commands any master answers alike (explicit for clarity; the
    # default rule 4 would give the same).
    ("ANY", [
        "time", "lastsave", "lolwut", "publish",
        "pubsub|help",
        "script|help", "function|help",
    ]),
    # Subcommands with a key under a refused container.
    ("KEYED", ["memory|usage"]),
]

# ---------------------------------------------------------------------------
# The proxy's handler column (CMD_OP_*): which of the proxy's own handlers
# runs a command, so that no module compares command names. Resolution:
# the fullname, then the container (every CLIENT subcommand is CLIENT's
# handler, which reads the subcommand entry). Commands not listed have no
# handler of their own (CMD_OP_NONE): their route says what happens.
# ---------------------------------------------------------------------------

OPS = {
    # Answered by the proxy (admin.c), or by dispatch.c for the ones that
    # reset the connection's features (RESET, QUIT).
    "ping": "PING", "echo": "ECHO", "quit": "QUIT", "select": "SELECT",
    "hello": "HELLO", "info": "INFO", "auth": "AUTH", "reset": "RESET",
    "readonly": "OK", "readwrite": "OK", "asking": "OK", "role": "ROLE",
    "client": "CLIENT", "command": "COMMAND", "slowlog": "SLOWLOG",
    "cluster": "CLUSTER",
    # Transactions (txn.c).
    "multi": "MULTI", "exec": "EXEC", "discard": "DISCARD",
    "watch": "WATCH", "unwatch": "UNWATCH",
    # Pub/sub (pubsub.c); PUBLISH is routed by its channel (dispatch.c).
    "subscribe": "SUBSCRIBE", "psubscribe": "PSUBSCRIBE",
    "ssubscribe": "SSUBSCRIBE", "unsubscribe": "UNSUBSCRIBE",
    "punsubscribe": "PUNSUBSCRIBE", "sunsubscribe": "SUNSUBSCRIBE",
    "publish": "PUBLISH",
    # Refused with its own reason (WAITAOF for the same one).
    "wait": "WAIT", "waitaof": "WAIT",
}

# How fan-out replies merge (CMD_MERGE_*), for SPLIT and ALL routes
# (fanout.c). SPLIT commands not listed sum integers; ALL commands not
# listed expect the same answer from every master (FLUSHALL, SCRIPT LOAD,
# FUNCTION ...: the first error wins).
MERGES = {
    "mget": "ARRAY",        # values back in key order
    "mset": "OK",           # +OK when every fragment said so
    "dbsize": "SUM",
    "keys": "CONCAT",
    "randomkey": "FIRST",   # the first non-nil reply
    "scan": "SCAN",         # one master per call, cursor rewritten
    "script|exists": "AND",
    "pubsub|channels": "UNION", "pubsub|shardchannels": "UNION",
    "pubsub|numpat": "SUM",
    "pubsub|numsub": "PAIRSUM", "pubsub|shardnumsub": "PAIRSUM",
}


def resolve_op(cmd, parent, index):
    op = index.get(cmd["fullname"])
    if op is None and parent is not None:
        op = index.get(parent["fullname"])
    return op or "NONE"


def resolve_merge(cmd, parent, index):
    m = index.get(cmd["fullname"])
    if m is not None:
        if cmd["route"] not in ("SPLIT", "ALL"):
            sys.exit("gen_commands: MERGES names %s, routed %s"
                     % (cmd["fullname"], cmd["route"]))
        return m
    return {"SPLIT": "SUM", "ALL": "SAME"}.get(cmd["route"], "NONE")


# ---------------------------------------------------------------------------
# Commands of later Redis versions that the built-in table must know.
#
# The table is generated from Redis 7.0, but clients of today send a few
# commands of 7.2+ on every connection (CLIENT SETINFO: go-redis, redis-py)
# or expect them answered for the proxy's own node (CLUSTER MYSHARDID). The
# proxy answers or refuses these itself, so it needs their rows: arity and
# flags copied from Redis 7.4.1's COMMAND INFO, summary from COMMAND DOCS.
# A row is added only when the generating server lacks the command: a newer
# server's own metadata wins. Routes and permissions come from ROUTES and
# PERMS as for every other command; such a row also carries CMD_P_NEWER,
# so that whoever compares the table with the generating server's COMMAND
# (tests/unit/check_cmdtable.c) knows it is not from there.
# ---------------------------------------------------------------------------

NEWER = [
    # (fullname, arity, Redis flags, group, summary); all since 7.2.0
    ("client|setinfo", 4, ["noscript", "loading", "stale"], "connection",
     "Sets information specific to the client or connection."),
    ("client|no-touch", 3, ["noscript", "loading", "stale"], "connection",
     "Controls whether commands sent by the client affect "
     "the LRU/LFU of accessed keys."),
    ("cluster|myshardid", 2, ["stale"], "cluster",
     "Returns the shard ID of a node."),
    # Redis flags WAITAOF blocking, with a timeout in milliseconds as its
    # last argument, a grammar the block column has no kind for; the proxy
    # refuses it before any of that (as WAIT, which 7.0 does not flag
    # blocking either), so the row leaves the flag out: REFUSED by ROUTES.
    ("waitaof", 4, [], "generic",
     "Blocks until all of the preceding write commands sent by the "
     "connection are written to the append-only file of the master "
     "and/or replicas."),
]


def add_newer(cmds):
    """Add the NEWER rows the generating server does not have (in name
    order, as fetch_commands sorts). Fails when a NEWER subcommand's
    container is unknown."""
    top = {c["fullname"]: c for c in cmds}
    for fullname, arity, flags, group, summary in NEWER:
        parent, _, name = fullname.rpartition("|")
        row = {"fullname": fullname, "name": name, "arity": arity,
               "flags": flags, "keyspecs": [], "subcmds": [], "docargs": [],
               "summary": summary, "group": group, "newer": True}
        if not parent:
            if fullname not in top:
                cmds.append(row)
            continue
        if parent not in top:
            sys.exit("gen_commands: NEWER %s: no container %s"
                     % (fullname, parent))
        subs = top[parent]["subcmds"]
        if all(s["fullname"] != fullname for s in subs):
            subs.append(row)
            subs.sort(key=lambda c: c["name"])
    cmds.sort(key=lambda c: c["name"])


# ---------------------------------------------------------------------------
# The proxy's permission column (CMD_P_* bits in the flags field).
#
# Roles (auth.users[].role): admin runs everything; read-write runs all but
# the commands Redis flags "admin" (SLOWLOG, CLIENT LIST/KILL ...: they show
# or touch other users' connections and arguments, and Redis's ACL puts
# them in @admin); read-only runs, besides that, only what Redis flags
# "readonly" plus the explicit list below. An allow list, not a deny list:
# a command a later Redis adds is refused to read-only users until it is
# flagged readonly or listed here. Resolution as for ROUTES: the fullname,
# then the container ("command" covers every COMMAND subcommand), and
# every HELP subcommand.
# ---------------------------------------------------------------------------

PERMS = [
    # Before AUTH: authenticating, and the two harmless probes the proxy
    # has always answered (see README, Security).
    ("CMD_P_BEFORE_AUTH", ["auth", "hello", "ping", "quit"]),
    # For the read-only role, beyond Redis's readonly flag.
    ("CMD_P_READ_ROLE", [
        # Connection state, answered by the proxy, about the caller only.
        "ping", "echo", "auth", "hello", "quit", "reset", "select", "info",
        "role", "readonly", "readwrite", "asking", "time",
        "client|id", "client|getname", "client|setname", "client|info",
        "client|reply", "client|setinfo", "client|no-touch",
        "command",         # the command table: metadata, no data
        "cluster|keyslot", "cluster|info", "cluster|slots", "cluster|nodes",
        "cluster|shards", "cluster|myid", "cluster|myshardid",
        # Receiving messages is a read; PUBLISH and SPUBLISH are not.
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
        "ssubscribe", "sunsubscribe",
        "pubsub",          # channel and subscriber counts
        # Each queued command is checked when it is queued.
        "multi", "exec", "discard", "watch", "unwatch",
        # Inspection only: EVAL/EVALSHA/FCALL, SCRIPT LOAD/FLUSH/KILL and
        # FUNCTION LOAD/DELETE/FLUSH/RESTORE/KILL stay refused (a script
        # may write whatever its text says; *_RO variants are flagged
        # readonly by Redis, which refuses writes inside them).
        "script|exists", "function|list", "function|dump",
        "function|stats",
    ]),
]




def perm_index():
    index = {}
    for flag, names in PERMS:
        for n in names:
            index.setdefault(n, []).append(flag)
    return index


def resolve_perms(cmd, parent, index):
    flags = set(index.get(cmd["fullname"], []))
    if cmd.get("newer"):
        flags.add("CMD_P_NEWER")
    if parent is not None:
        flags.update(index.get(parent["fullname"], []))
        if cmd["name"] == "help":
            flags.add("CMD_P_READ_ROLE")
    return sorted(flags)


def assign_column(cmds, column, index, resolve, table):
    """Set cmd[column] = resolve(cmd, parent, index) on every command and
    subcommand; fail when the table names a command Redis does not have."""
    known = set()
    for c in cmds:
        c[column] = resolve(c, None, index)
        known.add(c["fullname"])
        for s in c["subcmds"]:
            s[column] = resolve(s, c, index)
            known.add(s["fullname"])
    for n in index:
        if n not in known:
            sys.exit("gen_commands: %s names unknown command %s" % (table, n))


# Hand-written key finders in command.c (Redis's getkeys_proc), used when a
# command's key specs cannot be followed: Redis marks SORT's and MIGRATE's
# specs unknown/incomplete, and XREAD/XREADGROUP fall back to a parse of
# their options when the STREAMS keyword search gives an impossible range.
# The generator fails if a command with incomplete specs has no entry.
GETKEYS_PROCS = {
    "sort": "getkeys_sort",
    "sort_ro": "getkeys_sort_ro",
    "migrate": "getkeys_migrate",
    "xread": "getkeys_xread",
    "xreadgroup": "getkeys_xread",
}

# Redis flag name -> CMD_F_* (only the flags the proxy uses).
FLAG_MAP = {
    "write": "CMD_F_WRITE",
    "readonly": "CMD_F_READONLY",
    "denyoom": "CMD_F_DENYOOM",
    "admin": "CMD_F_ADMIN",
    "pubsub": "CMD_F_PUBSUB",
    "noscript": "CMD_F_NOSCRIPT",
    "blocking": "CMD_F_BLOCKING",
    "loading": "CMD_F_LOADING",
    "stale": "CMD_F_STALE",
    "fast": "CMD_F_FAST",
    "movablekeys": "CMD_F_MOVABLEKEYS",
    "no_multi": "CMD_F_NO_MULTI",
    "no_auth": "CMD_F_NO_AUTH",
    "allow_busy": "CMD_F_ALLOW_BUSY",
}

# Must match command_hash() in command.c: FNV-1a over the lower-cased name.
HASH_SIZE = 1024


def name_hash(name):
    h = 2166136261
    for ch in name.lower().encode():
        h ^= ch
        h = (h * 16777619) & 0xFFFFFFFF
    return h


# ---------------------------------------------------------------------------
# RESP client
# ---------------------------------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.rd = self.sock.makefile("rb")

    def close(self):
        self.rd.close()
        self.sock.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        reply = self._read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def _read(self):
        line = self.rd.readline()
        if not line.endswith(b"\r\n"):
            raise IOError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            return self.rd.read(n + 2)[:-2].decode()
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise IOError("unexpected reply %r" % line)


def pairs(flat):
    """RESP2 renders maps as flat [k, v, k, v ...] arrays."""
    return dict(zip(flat[0::2], flat[1::2]))


# ---------------------------------------------------------------------------
# Throwaway server
# ---------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(binary):
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--daemonize", "no",
         "--logfile", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            conn = Resp(port)
            conn.call("PING")
            return proc, conn
        except (OSError, RespError):
            time.sleep(0.05)
    proc.kill()
    sys.exit("gen_commands: redis-server did not start on port %d" % port)


def stop_server(proc, conn):
    conn.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

def parse_keyspec(raw):
    spec = pairs(raw)
    bs = pairs(spec["begin_search"])
    fk = pairs(spec["find_keys"])
    bsa = pairs(bs["spec"]) if bs["spec"] else {}
    fka = pairs(fk["spec"]) if fk["spec"] else {}
    ks = {"flags": spec.get("flags", []), "bs_type": "CMD_BS_UNKNOWN",
          "fk_type": "CMD_FK_UNKNOWN"}
    if bs["type"] == "index":
        ks.update(bs_type="CMD_BS_INDEX", bs_pos=bsa["index"])
    elif bs["type"] == "keyword":
        ks.update(bs_type="CMD_BS_KEYWORD", bs_pos=bsa["startfrom"],
                  bs_keyword=bsa["keyword"].upper())
    if fk["type"] == "range":
        ks.update(fk_type="CMD_FK_RANGE", lastkey=fka["lastkey"],
                  keystep=fka["keystep"], limit=fka["limit"])
    elif fk["type"] == "keynum":
        ks.update(fk_type="CMD_FK_KEYNUM", keynumidx=fka["keynumidx"],
                  firstkey=fka["firstkey"], keystep=fka["keystep"])
    ks["incomplete"] = int("incomplete" in ks["flags"])
    return ks


def parse_command(raw, docs):
    fullname = raw[0].lower()
    cmd = {
        "fullname": fullname,
        "name": fullname.split("|")[-1],
        "arity": raw[1],
        "flags": raw[2],
        "keyspecs": [parse_keyspec(k) for k in raw[8]],
        "subcmds": [],
        "summary": docs.get(fullname, {}).get("summary", ""),
        "group": docs.get(fullname, {}).get("group", ""),
        "docargs": [pairs(a) for a in
                    docs.get(fullname, {}).get("arguments", [])],
    }
    subs = [parse_command(s, docs) for s in raw[9]]
    cmd["subcmds"] = sorted(subs, key=lambda c: c["name"])
    return cmd


def flatten_docs(reply, into):
    for name, body in pairs(reply).items():
        body = pairs(body)
        into[name.lower()] = body
        if "subcommands" in body:
            flatten_docs(body["subcommands"], into)
    return into


def fetch_commands(conn):
    docs = flatten_docs(conn.call("COMMAND", "DOCS"), {})
    cmds = [parse_command(c, docs) for c in conn.call("COMMAND")]
    return sorted(cmds, key=lambda c: c["name"])


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def route_index():
    index = {}
    for route, names in ROUTES:
        for n in names:
            if n in index:
                sys.exit("gen_commands: %s listed twice in ROUTES" % n)
            index[n] = route
    return index


def resolve_route(cmd, parent, index):
    route = index.get(cmd["fullname"])
    if route is None and parent is not None:
        route = index.get(parent["fullname"])
    if "blocking" in cmd["flags"]:
        if route not in (None, "BLOCKING"):
            sys.exit("gen_commands: blocking %s routed %s"
                     % (cmd["fullname"], route))
        route = "BLOCKING"
    if route is None:
        route = "KEYED" if cmd["keyspecs"] else "ANY"
    return route


def check_getkeys(cmds):
    def needs_proc(c):
        return any(k["incomplete"] or k["bs_type"] == "CMD_BS_UNKNOWN"
                   or k["fk_type"] == "CMD_FK_UNKNOWN" for k in c["keyspecs"])
    for c in cmds:
        if needs_proc(c) and c["fullname"] not in GETKEYS_PROCS:
            sys.exit("gen_commands: %s has incomplete key specs; add a "
                     "procedure to command.c and GETKEYS_PROCS" % c["fullname"])
        for s in c["subcmds"]:
            if needs_proc(s):
                sys.exit("gen_commands: subcommand %s has incomplete key "
                         "specs (unsupported)" % s["fullname"])


def block_position(cmd):
    """Where a blocking command's timeout is, read from its documented
    grammar (COMMAND DOCS): the last or the first argument, in seconds
    (BLPOP, BLMPOP), or the value of a BLOCK option, in milliseconds
    (XREAD). The proxy must know it to decide whether a request blocks
    (see command_block_timeout in command.c)."""
    args = cmd["docargs"]
    if args and args[-1]["name"] == "timeout" and args[-1]["type"] == "double":
        return "CMD_BLOCK_LAST"
    if args and args[0]["name"] == "timeout" and args[0]["type"] == "double":
        return "CMD_BLOCK_ARG1"
    if any(a.get("token") == "BLOCK" and a["type"] == "integer"
           for a in args):
        return "CMD_BLOCK_OPTION"
    return None


def check_blocking(cmds):
    for c in cmds:
        if "blocking" in c["flags"] and block_position(c) is None:
            sys.exit("gen_commands: blocking %s has no timeout argument the "
                     "proxy understands; teach block_position() and "
                     "command_block_timeout()" % c["fullname"])
        for s in c["subcmds"]:
            if "blocking" in s["flags"]:
                sys.exit("gen_commands: blocking subcommand %s "
                         "(unsupported)" % s["fullname"])


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def ident(fullname):
    return re.sub(r"[^a-z0-9]", "_", fullname)


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flags_expr(flags, perms=()):
    names = [FLAG_MAP[f] for f in flags if f in FLAG_MAP] + list(perms)
    return " | ".join(names) if names else "0"


def emit_keyspecs(out, cmd):
    if not cmd["keyspecs"]:
        return
    out.append("static const struct cmd_keyspec cmd_ks_%s[] = {"
               % ident(cmd["fullname"]))
    for k in cmd["keyspecs"]:
        fields = [".bs_type = %s" % k["bs_type"],
                  ".fk_type = %s" % k["fk_type"]]
        if "bs_pos" in k:
            fields.append(".bs_pos = %d" % k["bs_pos"])
        if "bs_keyword" in k:
            fields.append(".bs_keyword = %s" % c_string(k["bs_keyword"]))
        for f in ("lastkey", "keystep", "limit", "keynumidx", "firstkey"):
            if f in k:
                fields.append(".%s = %d" % (f, k[f]))
        if k["incomplete"]:
            fields.append(".incomplete = 1")
        out.append("    { " + ", ".join(fields) + " },")
    out.append("};")


def command_row(cmd):
    ks = "cmd_ks_%s" % ident(cmd["fullname"]) if cmd["keyspecs"] else "NULL"
    subs = ("cmd_sub_%s" % ident(cmd["fullname"])
            if cmd["subcmds"] else "NULL")
    return ("    { %s, %s, %d, %s, CMD_ROUTE_%s, CMD_OP_%s, CMD_MERGE_%s, %d, "
            "%s, %s, %d },"
            % (c_string(cmd["name"]), c_string(cmd["fullname"]),
               cmd["arity"], flags_expr(cmd["flags"], cmd["perms"]),
               cmd["route"], cmd["op"], cmd["merge"],
               len(cmd["keyspecs"]), ks, subs, len(cmd["subcmds"])))


def build_hash(cmds):
    slots = [0] * HASH_SIZE
    for i, c in enumerate(cmds):
        h = name_hash(c["name"]) & (HASH_SIZE - 1)
        while slots[h]:
            h = (h + 1) & (HASH_SIZE - 1)
        slots[h] = i + 1
    return slots


def emit_def(cmds, version):
    out = [
        "/* slotproxy - BSD-2-Clause",
        " *",
        " * GENERATED by scripts/gen_commands.py from redis-server %s."
        % version,
        " * Do not edit: change the script (ROUTES, OPS, MERGES, PERMS, "
        "GETKEYS_PROCS)",
        " * and regenerate.",
        " * Included once, by command.c.",
        " *",
        " * Command rows: name, fullname, arity, flags, route, op, merge, "
        "nkeyspecs,",
        " * keyspecs, subcmds, nsubcmds. Rows are sorted by name.",
        " */",
        "",
        "#define COMMAND_REDIS_VERSION %s" % c_string(version),
        "#define COMMAND_HASH_SIZE %d" % HASH_SIZE,
        "",
    ]
    for c in cmds:
        emit_keyspecs(out, c)
        for s in c["subcmds"]:
            emit_keyspecs(out, s)
    out.append("")
    for c in cmds:
        if not c["subcmds"]:
            continue
        out.append("static const struct command cmd_sub_%s[] = {"
                   % ident(c["fullname"]))
        out.extend(command_row(s) for s in c["subcmds"])
        out.append("};")
    out.append("")
    out.append("static const struct command command_table[] = {")
    out.extend(command_row(c) for c in cmds)
    out.append("};")
    out.append("")
    out.append("/* Commands whose keys a procedure in command.c finds when "
               "the specs")
    out.append(" * cannot be followed. */")
    out.append("static const struct cmd_getkeys_row command_getkeys_rows[] = {")
    for i, c in enumerate(cmds):
        if c["fullname"] in GETKEYS_PROCS:
            out.append("    { &command_table[%d], %s }, /* %s */"
                       % (i, GETKEYS_PROCS[c["fullname"]], c["fullname"]))
    out.append("};")
    out.append("")
    out.append("/* Where each blocking command's timeout is (from COMMAND "
               "DOCS). */")
    out.append("static const struct cmd_block_row command_block_rows[] = {")
    for i, c in enumerate(cmds):
        if "blocking" in c["flags"]:
            out.append("    { &command_table[%d], %s }, /* %s */"
                       % (i, block_position(c), c["fullname"]))
    out.append("};")
    out.append("")
    out.append("/* Open addressing on command_hash(name) & (size - 1), linear "
               "probing;")
    out.append(" * each slot holds a command_table index + 1, 0 = empty. */")
    out.append("static const uint16_t command_hash_slots[COMMAND_HASH_SIZE] "
               "= {")
    slots = build_hash(cmds)
    for i in range(0, HASH_SIZE, 12):
        out.append("    " + ", ".join("%d" % v for v in slots[i:i + 12]) + ",")
    out.append("};")
    return "\n".join(out) + "\n"


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w") as f:
        f.write(text)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(
        description="Generate src/command.def from a real redis-server.")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--out", default=os.path.join(root, "src", "command.def"))
    args = ap.parse_args()

    proc, conn = start_server(args.redis_server)
    try:
        info = pairs_info(conn.call("INFO", "server"))
        version = info.get("redis_version", "unknown")
        cmds = fetch_commands(conn)
    finally:
        stop_server(proc, conn)
    add_newer(cmds)

    assign_column(cmds, "route", route_index(), resolve_route, "ROUTES")
    assign_column(cmds, "op", OPS, resolve_op, "OPS")
    assign_column(cmds, "merge", MERGES, resolve_merge, "MERGES")
    assign_column(cmds, "perms", perm_index(), resolve_perms, "PERMS")
    check_getkeys(cmds)
    check_blocking(cmds)
    write_if_changed(args.out, emit_def(cmds, version))
    print("gen_commands: %d commands from redis %s -> %s"
          % (len(cmds), version, args.out))


def pairs_info(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


if __name__ == "__main__":
    main()
