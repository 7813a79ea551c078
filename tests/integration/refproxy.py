#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# A tiny reference "proxy" in Python, used only to prove the integration
# tests themselves while the real slotproxy is not there yet, and to tell a
# proxy bug from a test bug later:
#
#   SLOTPROXY_BIN=tests/integration/refproxy.py tests/integration/run.sh
#
# It accepts the same `-c FILE` YAML subset the harness writes (listen,
# cluster.seeds), speaks RESP2, routes each command by key slot to the owning
# master over per-client connections, follows MOVED/ASK/TRYAGAIN, splits
# MGET/MSET/DEL/EXISTS/UNLINK/TOUCH across slots, and answers PING/ECHO/
# SELECT/QUIT/CONFIG itself. One thread per client; slow, simple, not a
# product. Python 3 standard library only.

import random
import re
import socket
import sys
import threading
import time

HERE_SLOTS = 16384


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def keyslot(key):
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % HERE_SLOTS


def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out += [b"$%d\r\n" % len(a), a, b"\r\n"]
    return b"".join(out)


def err(msg):
    return b"-" + msg.encode() + b"\r\n"


class Conn:
    """A blocking connection to one node; read_raw returns one whole reply
    as raw bytes."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=1 << 16)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def read_raw(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise OSError("node %d closed" % self.port)
        parts = [line]
        if line[:1] == b"$":
            n = int(line[1:-2])
            if n >= 0:
                parts.append(self.f.read(n + 2))
        elif line[:1] == b"*":
            for _ in range(max(0, int(line[1:-2]))):
                parts.append(self.read_raw())
        return b"".join(parts)

    def call_raw(self, args):
        self.sock.sendall(enc(args))
        return self.read_raw()


def parse_value(raw):
    """Decodes a raw reply (used for COMMAND and CLUSTER SLOTS only)."""
    def rd(i):
        j = raw.index(b"\r\n", i)
        t, body = raw[i:i + 1], raw[i + 1:j]
        i = j + 2
        if t in (b"+", b"-"):
            return body, i
        if t == b":":
            return int(body), i
        if t == b"$":
            n = int(body)
            if n < 0:
                return None, i
            return raw[i:i + n], i + n + 2
        n = int(body)
        out = []
        for _ in range(n):
            v, i = rd(i)
            out.append(v)
        return out, i
    return rd(0)[0]


class Proxy:
    SPLIT = {b"mget", b"del", b"exists", b"unlink", b"touch", b"mset"}

    def __init__(self, listen_port, seeds):
        self.listen_port = listen_port
        self.seeds = seeds
        self.slots = [None] * HERE_SLOTS
        self.commands = {}
        self.lock = threading.Lock()

    def any_node(self):
        ports = [p for p in set(self.slots) if p] or self.seeds
        for p in random.sample(ports, len(ports)) + self.seeds:
            try:
                return Conn(p)
            except OSError:
                continue
        raise OSError("no node reachable")

    def refresh(self):
        c = self.any_node()
        try:
            slots = parse_value(c.call_raw([b"CLUSTER", b"SLOTS"]))
            if not self.commands:
                for e in parse_value(c.call_raw([b"COMMAND"])):
                    self.commands[e[0].lower()] = (
                        e[1], [x.lower() for x in e[2]], e[3], e[4], e[5])
        finally:
            c.close()
        new = [None] * HERE_SLOTS
        for a, b, master, *_ in slots:
            for s in range(a, b + 1):
                new[s] = master[1]
        self.slots = new

    def serve(self):
        while True:
            try:
                self.refresh()
                break
            except OSError as e:
                sys.stderr.write("refproxy: no seed reachable (%s)\n" % e)
                time.sleep(0.5)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.listen_port))
        ls.listen(512)
        sys.stderr.write("refproxy: listening on %d\n" % self.listen_port)
        sys.stderr.flush()
        while True:
            s, _ = ls.accept()
            threading.Thread(target=ClientHandler(self, s).run,
                             daemon=True).start()


class ProtocolError(Exception):
    pass


def parse_commands(buf):
    """Parses complete commands off the front of buf (a bytearray),
    consuming them. Raises ProtocolError on malformed input."""
    cmds, pos = [], 0
    n = len(buf)
    while pos < n:
        if buf[pos:pos + 1] != b"*":
            j = buf.find(b"\r\n", pos)
            if j < 0:
                break
            line = bytes(buf[pos:j]).split()
            pos = j + 2
            if line:
                cmds.append(line)
            continue
        j = buf.find(b"\r\n", pos)
        if j < 0:
            break
        try:
            count = int(buf[pos + 1:j])
        except ValueError:
            raise ProtocolError("invalid multibulk length")
        p = j + 2
        args = []
        ok = True
        for _ in range(count):
            j = buf.find(b"\r\n", p)
            if j < 0:
                ok = False
                break
            if buf[p:p + 1] != b"$":
                raise ProtocolError("expected '$', got '%s'" %
                                    chr(buf[p]))
            try:
                ln = int(buf[p + 1:j])
            except ValueError:
                raise ProtocolError("invalid bulk length")
            if j + 2 + ln + 2 > n:
                ok = False
                break
            args.append(bytes(buf[j + 2:j + 2 + ln]))
            p = j + 2 + ln + 2
        if not ok:
            break
        pos = p
        if args:
            cmds.append(args)
    del buf[:pos]
    return cmds


class ClientHandler:
    def __init__(self, proxy, sock):
        self.p = proxy
        self.sock = sock
        self.conns = {}

    def conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = self.conns[port] = Conn(port)
        return c

    def run(self):
        buf = bytearray()
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
                buf += data
                try:
                    cmds = parse_commands(buf)
                except ProtocolError as e:
                    self.sock.sendall(err("ERR Protocol error: %s" % e))
                    return
                out, quit_ = self.process(cmds)
                self.sock.sendall(b"".join(out))
                if quit_:
                    return
        except OSError:
            pass
        finally:
            for c in self.conns.values():
                c.close()
            self.sock.close()

    def route(self, args):
        """Returns (local_reply, None) or (None, slot-or-None)."""
        name = args[0].lower()
        if name == b"ping":
            if len(args) > 2:
                return err("ERR wrong number of arguments for 'ping' "
                           "command"), None
            return (b"+PONG\r\n" if len(args) == 1 else
                    b"$%d\r\n%s\r\n" % (len(args[1]), args[1])), None
        if name == b"echo" and len(args) == 2:
            return b"$%d\r\n%s\r\n" % (len(args[1]), args[1]), None
        if name == b"select" and len(args) == 2:
            return (b"+OK\r\n" if args[1] == b"0" else
                    err("ERR DB index is out of range")), None
        if name == b"config":
            return err("ERR CONFIG is not supported by slotproxy"), None
        spec = self.p.commands.get(name)
        if spec is None:
            return err("ERR unknown command '%s', with args beginning "
                       "with: %s" % (args[0].decode(errors="replace"),
                                     " ".join("'%s'" % a.decode(
                                         errors="replace")
                                         for a in args[1:]))), None
        arity, flags, first, last, step = spec
        if (arity > 0 and len(args) != arity) or \
                (arity < 0 and len(args) < -arity):
            return err("ERR wrong number of arguments for '%s' command" %
                       name.decode()), None
        if b"movablekeys" in flags:
            c = self.p.any_node()
            try:
                keys = parse_value(c.call_raw([b"COMMAND", b"GETKEYS"] +
                                              args))
            finally:
                c.close()
            if not isinstance(keys, list):
                keys = []
        elif first == 0:
            keys = []
        else:
            end = len(args) + last if last < 0 else last
            keys = args[first:end + 1:step]
        if not keys:
            return None, None
        slots = {keyslot(k) for k in keys}
        if len(slots) > 1:
            if name in Proxy.SPLIT:
                return self.split(name, args), None
            return err("CROSSSLOT Keys in request don't hash to the same "
                       "slot"), None
        return None, slots.pop()

    def split(self, name, args):
        if name == b"mset":
            if len(args) % 2 == 0:
                return err("ERR wrong number of arguments for 'mset' "
                           "command")
            for i in range(1, len(args), 2):
                r = self.sync([b"SET", args[i], args[i + 1]],
                              keyslot(args[i]))
                if r.startswith(b"-"):
                    return r
            return b"+OK\r\n"
        parts, total = [], 0
        for k in args[1:]:
            r = self.sync([args[0], k], keyslot(k))
            if r.startswith(b"-"):
                return r
            if name == b"mget":
                parts.append(r[4:])   # strip "*1\r\n"
            else:
                total += int(r[1:-2])
        if name == b"mget":
            return b"*%d\r\n" % len(parts) + b"".join(parts)
        return b":%d\r\n" % total

    def sync(self, args, slot):
        """Sends one command on a throwaway connection, following redirects."""
        port = self.p.slots[slot] or self.p.seeds[0]
        asking = False
        for attempt in range(20):
            c = Conn(port)
            try:
                if asking:
                    c.call_raw([b"ASKING"])
                r = c.call_raw(args)
            finally:
                c.close()
            asking = False
            if r.startswith(b"-MOVED ") or r.startswith(b"-ASK "):
                port = int(r.split()[2].rsplit(b":", 1)[1])
                if r.startswith(b"-ASK "):
                    asking = True
                else:
                    with self.p.lock:
                        self.p.refresh()
                continue
            if r.startswith(b"-TRYAGAIN") or r.startswith(b"-CLUSTERDOWN"):
                time.sleep(0.05)
                port = self.p.slots[slot] or port
                continue
            return r
        return r

    def process(self, cmds):
        out = [None] * len(cmds)
        sent = []          # (index, port, args, slot)
        batches = {}
        quit_ = False
        for i, args in enumerate(cmds):
            if args[0].lower() == b"quit":
                out[i] = b"+OK\r\n"
                del cmds[i + 1:]
                out = out[:i + 1]
                quit_ = True
                break
            local, slot = self.route(args)
            if local is not None:
                out[i] = local
                continue
            if slot is None:
                port = next((p for p in self.p.slots if p), self.p.seeds[0])
            else:
                port = self.p.slots[slot] or self.p.seeds[0]
            batches.setdefault(port, []).append(enc(args))
            sent.append((i, port, args, slot))
        dead = set()
        for port, data in batches.items():
            try:
                self.conn(port).sock.sendall(b"".join(data))
            except OSError:
                dead.add(port)
        for i, port, args, slot in sent:
            try:
                if port in dead:
                    raise OSError("down")
                r = self.conn(port).read_raw()
            except OSError:
                dead.add(port)
                c = self.conns.pop(port, None)
                if c:
                    c.close()
                try:
                    with self.p.lock:
                        self.p.refresh()
                except OSError:
                    pass
                out[i] = err("ERR backend 127.0.0.1:%d unreachable" % port)
                continue
            if slot is not None and (r.startswith(b"-MOVED ") or
                                     r.startswith(b"-ASK ") or
                                     r.startswith(b"-TRYAGAIN")):
                r = self.sync(args, slot)
            out[i] = r
        return out, quit_


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "-c":
        sys.stderr.write("usage: refproxy.py -c FILE\n")
        return 2
    text = open(sys.argv[2]).read()
    listen = int(re.search(r"listen:\s*\n\s*-\s*[\d.]+:(\d+)", text).group(1))
    seeds_block = re.search(r"seeds:\s*\n((?:\s*-\s*\S+\n)+)", text).group(1)
    seeds = [int(x) for x in re.findall(r":(\d+)", seeds_block)]
    Proxy(listen, seeds).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
