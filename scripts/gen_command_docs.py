#!/usr/bin/env python3
# slotproxy - BSD-2-Clause
#
# Write docs/commands.md from a running proxy: the command table it really
# uses (the built-in table merged with what the cluster taught it), read
# through `COMMAND` and `COMMAND DOCS` (name, arity, flags, key specs,
# summary) and `PROXY COMMAND ROUTES` (how the proxy routes each command:
# route, merge, handler, least role, and why it refuses one). It starts
# nothing: point it at a proxy (an admin user's connection when auth is
# configured) and at one cluster node, whose `INFO server` names the
# server and its version for the header, and whose `COMMAND` describes
# the commands the proxy refuses (its COMMAND hides them, as Redis hides
# what a client may not run; their route still comes from the proxy).
#
#   scripts/gen_command_docs.py --proxy 127.0.0.1:7777 \
#       --node 127.0.0.1:7000 [--out docs/commands.md] [--check]
#
# --check writes nothing: exit 1 when the file differs from what would be
# written (the test suite runs that against a live cluster).

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_commands  # noqa: E402  (RESP client, COMMAND model)

# Route (PROXY COMMAND ROUTES) -> words for the table.
ROUTE_TEXT = {
    "keyed": "keyed: the master of its keys' slot",
    "split": "split per slot, replies merged: %s",
    "any": "any master",
    "all": "every master, replies merged: %s",
    "local": "answered by the proxy",
    "txn": "pinned: transaction (queued in the proxy, WATCH on a "
           "dedicated connection)",
    "pubsub": "pinned: pub/sub (dedicated push connections)",
    "blocking": "pinned: blocking (a dedicated connection while it blocks)",
    "refused": "refused: %s",
}

# Merge kind -> how the replies combine.
MERGE_TEXT = {
    "array": "values in key order",
    "ok": "OK when every part said OK",
    "sum": "integers summed",
    "concat": "arrays concatenated",
    "same": "one reply when all agree, else the first error",
    "and": "0/1 arrays and-ed",
    "first": "the first non-nil reply",
    "scan": "one master per call, cursor rewritten",
    "union": "arrays merged without duplicates",
    "pairsum": "counts summed per name",
    "info": "the proxy's sections, keyspace summed",
    "slotstats": "every master's slots in slot order",
    "none": "by the response_policy tip",
}


def addr(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def connect(text, password, user):
    host, port = addr(text)
    conn = gen_commands.Resp(port, host)
    if password is not None:
        conn.call(*(["AUTH", user, password] if user else
                    ["AUTH", password]))
    return conn


def server_label(node):
    info = gen_commands.pairs_info(node.call("INFO", "server"))
    name = info.get("server_name", "redis")
    version = info.get("valkey_version") or info.get("redis_version", "?")
    return "%s-server %s" % (name, version)


def keys_summary(cmd):
    parts = []
    for k in cmd["keyspecs"]:
        if k["bs_type"] == "CMD_BS_INDEX":
            bs = "index %d" % k["bs_pos"]
        elif k["bs_type"] == "CMD_BS_KEYWORD":
            bs = "after %s" % k["bs_keyword"]
        else:
            bs = "unknown"
        if k["fk_type"] == "CMD_FK_RANGE":
            fk = "range %d/%d" % (k["lastkey"], k["keystep"])
        elif k["fk_type"] == "CMD_FK_KEYNUM":
            fk = "numkeys"
        else:
            fk = "unknown"
        flag = " (channel)" if "not_key" in k["flags"] else ""
        parts.append("%s, %s%s" % (bs, fk, flag))
    return "; ".join(parts)


def route_text(row, cmd):
    route, merge, note = row["route"], row["merge"], row["note"]
    text = ROUTE_TEXT.get(route, route)
    if route in ("split", "all"):
        text %= MERGE_TEXT.get(merge, merge)
    elif route == "refused":
        text %= note.replace("ERR slotproxy: ", "")
    elif note:
        text += " (%s)" % note.replace("ERR slotproxy: ", "")
    if row["source"] == "learned":
        text += "; learned from the cluster (not in the built-in table)"
    elif not cmd["server"]:
        text += "; the proxy's own (the server does not list it)"
    return text


def cell(s):
    return s.replace("|", "\\|").replace("\n", " ")


def bare(fullname, arity):
    """A command only PROXY COMMAND ROUTES names (one the proxy answers
    itself that neither COMMAND lists): what the table says of it."""
    return {"fullname": fullname, "name": fullname.split("|")[-1],
            "arity": arity, "flags": [], "keyspecs": [], "subcmds": [],
            "summary": "", "server": False}


def merge_hidden(cmds, node_cmds, routes):
    """cmds (the proxy's COMMAND) plus what only node_cmds lists (the
    commands and subcommands the proxy refuses) and what only routes
    names. Each entry's "server": whether the node lists it. Sorted by
    name."""
    listed = set()
    for nc in node_cmds:
        listed.add(nc["fullname"])
        listed.update(s["fullname"] for s in nc["subcmds"])
    mine = {c["fullname"]: c for c in cmds}
    for nc in node_cmds:
        c = mine.get(nc["fullname"])
        if c is None:
            mine[nc["fullname"]] = nc
            continue
        have = {s["fullname"] for s in c["subcmds"]}
        c["subcmds"] = sorted(c["subcmds"] + [
            s for s in nc["subcmds"] if s["fullname"] not in have],
            key=lambda x: x["name"])
    for name in routes:
        top, _, sub = name.partition("|")
        if not sub and name not in mine:
            mine[name] = bare(name, routes[name]["arity"])
        elif sub and top in mine and name not in {
                s["fullname"] for s in mine[top]["subcmds"]}:
            mine[top]["subcmds"] = sorted(
                mine[top]["subcmds"] + [bare(name, routes[name]["arity"])],
                key=lambda x: x["name"])
    for c in mine.values():
        for x in [c] + c["subcmds"]:
            x["server"] = x["fullname"] in listed
    return sorted(mine.values(), key=lambda c: c["name"])


def render(cmds, routes, label):
    out = [
        "# Commands through slotproxy",
        "",
        "Generated by `scripts/gen_command_docs.py` from a running proxy in "
        "front of %s (the table the proxy uses: built-in, merged with what "
        "the cluster reported); do not edit." % label,
        "",
        "Route: how the proxy runs the command. *keyed*: forwarded to the "
        "master of its keys' slot (keys in several slots: `CROSSSLOT`); "
        "*split per slot*: cut into one command per slot, the replies "
        "merged as said; *every master* / *any master*: keyless commands; "
        "*answered by the proxy*: never sent; *pinned*: on a connection of "
        "its own for as long as the state lasts; *refused*: with the error "
        "the proxy answers. Role: the least `auth.users` role that may run "
        "it. Keys: the key specs (begin search, find keys).",
        "",
        "| Command | Route | Role | Arity | Keys | Flags | Summary |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    for c in cmds:
        rows.append(c)
        rows.extend(c["subcmds"])
    missing = []
    for c in rows:
        r = routes.get(c["fullname"])
        if r is None:
            missing.append(c["fullname"])
            continue
        out.append("| %s | %s | %s | %d | %s | %s | %s |" % (
            c["fullname"].upper().replace("|", " "), cell(route_text(r, c)),
            r["role"], c["arity"], keys_summary(c), " ".join(c["flags"]),
            cell(c["summary"])))
    if missing:
        sys.exit("gen_command_docs: COMMAND lists what PROXY COMMAND "
                 "ROUTES does not: %s" % ", ".join(missing))
    return "\n".join(out) + "\n"


def fetch_routes(conn):
    out = {}
    for row in conn.call("PROXY", "COMMAND", "ROUTES"):
        name, route, merge, _, op, role, note, source, arity = row
        out[name] = {"route": route, "merge": merge, "source": source,
                     "op": op, "role": role, "note": note or "",
                     "arity": arity}
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxy", required=True, help="host:port of a proxy")
    ap.add_argument("--node", required=True,
                    help="host:port of a cluster node (header only)")
    ap.add_argument("--user", help="proxy user (AUTH)")
    ap.add_argument("--password", help="proxy password (AUTH)")
    ap.add_argument("--out", default=os.path.join(root, "docs",
                                                  "commands.md"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if --out is not what would be written")
    args = ap.parse_args()

    node = connect(args.node, None, None)
    try:
        label = server_label(node)
        node_cmds = gen_commands.fetch_commands(node)
    finally:
        node.close()
    px = connect(args.proxy, args.password, args.user)
    try:
        cmds = gen_commands.fetch_commands(px)
        routes = fetch_routes(px)
    finally:
        px.close()
    cmds = merge_hidden(cmds, node_cmds, routes)
    text = render(cmds, routes, label)
    try:
        with open(args.out) as f:
            same = f.read() == text
    except FileNotFoundError:
        same = False
    if args.check:
        if not same:
            sys.exit("gen_command_docs: %s is not current for %s (run "
                     "scripts/gen_command_docs.py)" % (args.out, label))
        return
    if not same:
        with open(args.out, "w") as f:
            f.write(text)
    print("gen_command_docs: %d commands (%s) -> %s"
          % (len(cmds), label, args.out))


if __name__ == "__main__":
    main()
