#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Stateful session fuzzer (issue 10). Several concurrent clients send
# random sequences drawn from every feature that keeps per-connection
# state: AUTH/HELLO/RESET/SELECT, MULTI/EXEC/DISCARD/WATCH/UNWATCH,
# (P|S)SUBSCRIBE/(P|S)UNSUBSCRIBE/PUBLISH/SPUBLISH, BLPOP/XREAD/XREADGROUP
# BLOCK, EVAL (scripts returning MOVED/ASK/TRYAGAIN error replies among
# others), CLIENT subcommands, pipelined ordinary commands, half-written
# frames and abrupt closes, against a cluster of its own, with slot moves
# and manual failovers mixed in.
#
# Checks: every byte the proxy sends parses as strict RESP2; auth
# decisions match the configured users (before AUTH only AUTH, HELLO,
# PING and QUIT run; after RESET the client is unauthenticated again; a
# read-only user's plain writes get NOPERM); every synchronous command is
# answered in time; at the end the proxy process is alive, answers PING
# and its log holds no sanitizer report.
#
# In `make check` it runs SP_FUZZ_SECONDS (default 20). By hand, longer and
# reproducibly (the seed and the figures are printed at the end):
#   SP_FUZZ_SECONDS=600 SP_FUZZ_SEED=1234 tests/fuzz/session_fuzz.sh
# Environment: SP_FUZZ_SECONDS, SP_FUZZ_SEED, SP_FUZZ_CLIENTS (default 6).
# Each client's sequence of actions follows from the seed; how the clients
# interleave (and so the replies) depends on timing.

import os
import random
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, log, test, wait_until  # noqa: E402

SECONDS = float(os.environ.get("SP_FUZZ_SECONDS", "20"))
NCLIENTS = int(os.environ.get("SP_FUZZ_CLIENTS", "6"))
SYNC_WAIT = 20.0            # a synchronous command's reply, at most
USERS = {"admin": ("adminpw", "admin"), "rw": ("rwpw", "read-write"),
         "ro": ("ropw", "read-only")}
USERS_YAML = "auth:\n  users:\n" + "".join(
    "    - {name: %s, password: %s, role: %s}\n" % (u, pw, role)
    for u, (pw, role) in USERS.items())
PRE_AUTH = {"AUTH", "HELLO", "PING", "QUIT"}
# What may answer a command before AUTH other than NOAUTH: as with Redis,
# an unknown command or a wrong arity is reported first.
PRE_AUTH_ERRORS = ("NOAUTH", "ERR unknown command", "ERR unknown subcommand",
                   "ERR wrong number of arguments")
# Replies whose routing another change owns (redirects from scripts):
# checked for well-formedness only.
UNCHECKED = {"EVAL"}
# Plain writes the proxy refuses to a read-only user today.
WRITES = {"SET", "DEL", "INCR", "LPUSH", "RPUSH", "EXPIRE", "XADD", "MSET"}
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
             "assertion failed")


# ------------------------------------------------------------ strict RESP

class Malformed(Exception):
    pass


class Closed(Exception):
    pass


class Simple(bytes):
    """A '+' reply."""


class Err(str):
    """A '-' reply (its text)."""


_INT = re.compile(rb"^-?[0-9]+$")


class Conn:
    """A raw connection with a strict RESP2 reader: a reply that does not
    parse exactly raises Malformed. Reads take a timeout and never lose
    bytes: a value cut by the timeout is parsed again later."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self, rst=False):
        try:
            if rst:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Closed(str(e))

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(str(e))
        if not d:
            raise Closed("closed by the proxy")
        self.buf += d

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill(deadline)

    def _value(self, deadline, depth):
        line = self._line(deadline)
        if not line or b"\r" in line or b"\n" in line or depth > 32:
            raise Malformed("bad line %r" % line[:80])
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Simple(rest)
        if t == b"-":
            return Err(rest.decode("utf-8", "replace"))
        if t not in (b":", b"$", b"*") or not _INT.match(rest):
            raise Malformed("bad line %r" % line[:80])
        n = int(rest)
        if t == b":":
            return n
        if n < -1 or n > (1 << 29):
            raise Malformed("bad length %r" % line[:80])
        if n == -1:
            return None
        if t == b"*":
            return [self._value(deadline, depth + 1) for _ in range(n)]
        while len(self.buf) - self.pos < n + 2:
            self._fill(deadline)
        data = bytes(self.buf[self.pos:self.pos + n + 2])
        if data[-2:] != b"\r\n":
            raise Malformed("bulk of %d not ended by CRLF" % n)
        self.pos += n + 2
        return data[:-2]

    def read(self, timeout):
        """One reply; socket.timeout when none is complete in time."""
        start = self.pos
        try:
            v = self._value(time.time() + timeout, 0)
        except socket.timeout:
            self.pos = start
            raise
        if self.pos > 65536:
            del self.buf[:self.pos]
            self.pos = 0
        return v


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def name_of(cmd):
    return cmd[0].upper() if isinstance(cmd[0], str) else cmd[0]


# ---------------------------------------------------------------- fuzzer

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = {"sessions": 0, "commands": 0, "replies": 0, "pushes": 0,
                  "closed_by_proxy": 0, "aborted": 0, "slot_moves": 0,
                  "failovers": 0}
        self.findings = []

    def add(self, k, v=1):
        with self.lock:
            self.n[k] += v

    def finding(self, text):
        with self.lock:
            self.findings.append(text)
        log("# FINDING: " + text)


SCRIPTS = [
    ("return redis.error_reply('MOVED 0 127.0.0.1:1')", 0),
    ("return redis.error_reply('MOVED 12539 127.0.0.1:1')", 0),
    ("return redis.error_reply('ASK 0 127.0.0.1:1')", 0),
    ("return redis.error_reply('ASK 1 127.0.0.1:%(port)d')", 0),
    ("return redis.error_reply('TRYAGAIN try later')", 1),
    ("return redis.error_reply('MOVED x')", 1),
    ("return redis.error_reply('CROSSSLOT x')", 0),
    ("return redis.status_reply('OK')", 0),
    ("return {1, 'two', {3, false}, redis.error_reply('E x')}", 0),
    ("return redis.call('get', KEYS[1])", 1),
    ("return redis.call('incr', KEYS[1])", 1),
    ("return redis.pcall('lpush', KEYS[1], 'x')", 1),
]


class Session:
    """One client connection's life: a random sequence of actions with a
    model of its state (authenticated, role, inside MULTI, push mode)."""

    def __init__(self, fz, rng, tag):
        self.fz = fz
        self.rng = rng
        self.tag = tag
        self.c = Conn(fz.port)
        self.authed = False
        self.role = None
        self.multi = False
        self.push = False           # sent a subscribe: replies are drained
        self.log = []               # the last commands sent (for findings)

    # -------------------------------------------------------- primitives

    def key(self):
        r = self.rng
        return "{fz%d}%s" % (r.randrange(6), r.choice("abcdl"))

    def chan(self):
        return "fz:ch%d" % self.rng.randrange(4)

    def sent(self, cmds):
        self.fz.stats.add("commands", len(cmds))
        self.log = (self.log + [" ".join(str(a)[:40] for a in c)
                                for c in cmds])[-12:]

    def finding(self, what):
        try:
            port = self.c.sock.getsockname()[1]
        except OSError:
            port = 0
        self.fz.stats.finding("%s (port %d, %s): %s (after: %s)" % (
            self.tag, port, time.strftime("%H:%M:%S"), what,
            " | ".join(self.log)))

    def call(self, *cmd):
        """Send one command, read its one reply, check it."""
        return self.pipeline([cmd])[0]

    def pipeline(self, cmds):
        self.sent(cmds)
        self.c.send(b"".join(encode(c) for c in cmds))
        out = []
        for cmd in cmds:
            try:
                r = self.c.read(SYNC_WAIT)
            except socket.timeout:
                self.finding("no reply to %s within %ds" % (
                    cmd[0], SYNC_WAIT))
                raise Closed("stuck")
            self.fz.stats.add("replies")
            self.check(cmd, r)
            out.append(r)
        return out

    def drain(self, quiet, until=None, wait=SYNC_WAIT):
        """Read pushes and replies until nothing comes for quiet seconds,
        or until a reply equal to until (then True)."""
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                r = self.c.read(quiet if until is None else
                                max(0.01, deadline - time.time()))
            except socket.timeout:
                if until is None:
                    return False
                break
            self.fz.stats.add("pushes")
            if until is not None and r == until:
                return True
        if until is not None:
            self.finding("no %r within %ds" % (until, wait))
            raise Closed("stuck")
        return False

    # ------------------------------------------------------------ checks

    def check(self, cmd, r):
        name = name_of(cmd)
        noauth = isinstance(r, Err) and r.startswith("NOAUTH")
        if not self.authed:
            if name not in PRE_AUTH and not (
                    isinstance(r, Err) and r.startswith(PRE_AUTH_ERRORS)):
                self.finding("%s ran before AUTH: %r" % (name, r))
        elif noauth and name not in UNCHECKED:
            self.finding("%s refused NOAUTH while authenticated" % name)
        if self.authed and name in WRITES and not self.push:
            noperm = isinstance(r, Err) and r.startswith("NOPERM")
            if self.role == "read-only" and not noperm:
                self.finding("read-only user's %s not refused: %r" % (
                    name, r))
            if self.role != "read-only" and noperm:
                self.finding("%s user's %s refused: %r" % (
                    self.role, name, r))
        self.update(cmd, name, r)

    def update(self, cmd, name, r):
        """The model follows what the proxy answered."""
        if name == "AUTH" and r == b"OK":
            self.login(cmd[-2] if len(cmd) == 3 else "default")
        elif name == "HELLO" and isinstance(r, list) and "AUTH" in [
                str(a).upper() for a in cmd]:
            self.login(cmd[[str(a).upper() for a in cmd].index("AUTH") + 1])
        elif name == "RESET" and r == b"RESET":
            self.authed = False
            self.multi = False
            self.push = False
        elif name == "MULTI" and r == b"OK":
            self.multi = True
        elif name in ("EXEC", "DISCARD") and self.authed:
            self.multi = False

    def login(self, user):
        if user not in USERS:
            self.finding("AUTH as unknown user %r succeeded" % user)
            return
        self.authed = True
        self.role = USERS[user][1]

    # ----------------------------------------------------------- actions

    def act_auth(self):
        r = self.rng
        user = r.choice(list(USERS) + ["nobody", "default"])
        good = r.random() < 0.8 and user in USERS
        pw = USERS[user][0] if good else r.choice(["x", "", "adminpw"])
        if r.random() < 0.3:
            rep = self.call("HELLO", "2", "AUTH", user, pw)
        else:
            rep = self.call("AUTH", user, pw)
        ok = rep == b"OK" or isinstance(rep, list)
        expect = user in USERS and pw == USERS[user][0]
        if ok != expect and not self.multi:
            self.finding("AUTH %s/%s answered %r" % (user, pw, rep))

    def act_hello(self):
        # The sessions read RESP2: HELLO 4 for the refused version (HELLO 3
        # switches to RESP3, covered by test_resp3.py).
        r = self.rng
        self.call(*r.choice([("HELLO",), ("HELLO", "2"), ("HELLO", "4"),
                             ("HELLO", "2", "SETNAME", "n%d" %
                              r.randrange(9)),
                             ("HELLO", "x"), ("HELLO", "2", "FOO")]))

    def act_reset(self):
        self.call("RESET")

    def act_select(self):
        self.call("SELECT", self.rng.choice(["0", "1", "x", "-1"]))

    def act_txn(self):
        r = self.rng
        k = self.key()
        choice = r.randrange(8)
        if choice == 0:
            self.call("WATCH", k, *([k + "2"] if r.random() < 0.3 else []))
        elif choice == 1:
            self.call("UNWATCH")
        elif choice == 2:
            self.call("MULTI")
        elif choice == 3:
            self.call("EXEC")
        elif choice == 4:
            self.call("DISCARD")
        else:
            seq = [("MULTI",)] + [r.choice([("INCR", k), ("GET", k),
                                           ("SET", k, "v"), ("PING",),
                                           ("BLPOP", k, "0"),
                                           ("SUBSCRIBE", "x"), ("NOPE",),
                                           ("GET", self.key())])
                                  for _ in range(r.randrange(4))]
            seq.append(r.choice([("EXEC",), ("DISCARD",), ("RESET",)]))
            for cmd in seq:
                self.call(*cmd)

    def act_subscribe(self):
        r = self.rng
        kind = r.choice(["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"])
        if kind == "SSUBSCRIBE":
            args = ["{fzs%d}ch" % r.randrange(3)]
        elif kind == "PSUBSCRIBE":
            args = ["fz:ch*", "fz:*"][:r.randrange(1, 3)]
        else:
            args = [self.chan() for _ in range(r.randrange(1, 4))]
        cmd = (kind,) + tuple(args)
        if not self.authed or self.multi:
            self.call(*cmd)
            return
        self.sent([cmd])
        self.c.send(encode(cmd))
        self.push = True

    def act_in_push(self):
        """Subscribed mode: anything goes, replies are drained."""
        r = self.rng
        n = r.randrange(1, 5)
        cmds = []
        for _ in range(n):
            cmds.append(r.choice([
                ("SUBSCRIBE", self.chan()), ("UNSUBSCRIBE",),
                ("UNSUBSCRIBE", self.chan()), ("PSUBSCRIBE", "fz:*"),
                ("PUNSUBSCRIBE",), ("SSUBSCRIBE", "{fzs%d}ch" %
                                    r.randrange(3)),
                ("SUNSUBSCRIBE",), ("PING",), ("PING", "slotproxy-pubsub-"
                                                       "sync"),
                ("GET", self.key()), ("WATCH", self.key()), ("MULTI",),
                ("QUIT",) if r.random() < 0.05 else ("PING", "x")]))
        self.sent(cmds)
        self.c.send(b"".join(encode(c) for c in cmds))
        if any(c[0] == "QUIT" for c in cmds):
            raise Closed("quit")
        self.drain(0.05)
        if r.random() < 0.35:
            self.sent([("RESET",)])
            self.c.send(encode(("RESET",)))
            self.drain(0.05, until=b"RESET")
            self.authed = False
            self.multi = False
            self.push = False

    def act_publish(self):
        r = self.rng
        msg = r.choice(["m", "slotproxy-pubsub-sync", "x" * 300,
                        "*2\r\n$4\r\npong\r\n"])
        if r.random() < 0.7:
            self.call("PUBLISH", self.chan(), msg)
        else:
            self.call("SPUBLISH", "{fzs%d}ch" % r.randrange(3), msg)

    def act_blocking(self):
        r = self.rng
        k = self.key()
        choice = r.randrange(4)
        if choice == 0:
            self.call("BLPOP", k, r.choice(["0.05", "0.1", "0.01"]))
        elif choice == 1:
            self.call("XREAD", "BLOCK", r.choice(["10", "50"]), "STREAMS",
                      k + "s", "$")
        elif choice == 2:
            self.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", "20",
                      "STREAMS", k + "s", ">")
        else:
            self.call(*r.choice([("XGROUP", "CREATE", k + "s", "g", "$",
                                  "MKSTREAM"),
                                 ("XADD", k + "s", "*", "f", "v"),
                                 ("LPUSH", k, "x")]))

    def act_eval(self):
        r = self.rng
        src, nkeys = r.choice(SCRIPTS)
        src = src % {"port": self.fz.port} if "%(" in src else src
        self.call("EVAL", src, nkeys, *[self.key() for _ in range(nkeys)])

    def act_client(self):
        r = self.rng
        self.call(*r.choice([
            ("CLIENT", "ID"), ("CLIENT", "GETNAME"), ("CLIENT", "INFO"),
            ("CLIENT", "SETNAME", r.choice(["ok", "a b", "x\ny", ""])),
            ("CLIENT", "LIST"), ("CLIENT", "REPLY", "ON"),
            ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "KILL", "ID", "1"),
            ("CLIENT", "PAUSE", "10"), ("CLIENT", "NOPE")]))

    def act_pipeline(self):
        r = self.rng
        cmds = []
        for _ in range(r.randrange(2, 20)):
            k = self.key()
            cmds.append(r.choice([
                ("SET", k, "v"), ("GET", k), ("INCR", k + "n"),
                ("DEL", k, self.key()), ("MGET", k, self.key(), self.key()),
                ("MSET", k, "1", self.key(), "2"), ("LPUSH", k, "e"),
                ("RPOP", k), ("EXPIRE", k, "100"), ("EXISTS", k),
                ("PING",), ("ECHO", "e" * r.randrange(50)),
                ("TYPE", k)]))
        self.pipeline(cmds)

    def act_write(self):
        k = self.key()
        self.call(*self.rng.choice([("SET", k, "w"), ("DEL", k),
                                    ("INCR", k + "n"), ("LPUSH", k, "w")]))

    def act_half_frame(self):
        frame = encode(("SET", self.key(), "v" * 100))
        cut = self.rng.randrange(1, len(frame))
        self.sent([("<half frame>",)])
        self.c.send(frame[:cut])
        raise Closed("half frame")

    def act_abrupt(self):
        """Close with requests in flight (and an RST half the time)."""
        cmds = [("BLPOP", self.key(), "1"), ("GET", self.key()),
                ("SUBSCRIBE", self.chan()), ("EXEC",)]
        self.sent(cmds)
        self.c.send(b"".join(encode(c) for c in self.rng.sample(cmds, 2)))
        raise Closed("abrupt")

    ACTIONS = [("auth", 10), ("hello", 3), ("reset", 4), ("select", 2),
               ("txn", 14), ("subscribe", 8), ("publish", 5),
               ("blocking", 6), ("eval", 5), ("client", 4),
               ("pipeline", 10), ("write", 5), ("half_frame", 1),
               ("abrupt", 2)]

    def run(self, steps):
        names = [a for a, _ in self.ACTIONS]
        weights = [w for _, w in self.ACTIONS]
        try:
            for _ in range(steps):
                if self.fz.stop.is_set():
                    break
                if self.push:
                    self.act_in_push()
                    continue
                a = self.rng.choices(names, weights)[0]
                getattr(self, "act_" + a)()
            if self.rng.random() < 0.5 and not self.push:
                self.call("QUIT")
        except Closed as e:
            if str(e) in ("half frame", "abrupt", "quit", "stuck"):
                self.fz.stats.add("aborted")
            else:
                self.fz.stats.add("closed_by_proxy")
        except Malformed as e:
            self.finding("malformed reply: %s" % e)
        finally:
            self.c.close(rst=self.rng.random() < 0.3)


class Fuzzer:
    def __init__(self, port, seed, seconds):
        self.port = port
        self.seed = seed
        self.seconds = seconds
        self.stats = Stats()
        self.stop = threading.Event()

    def client_loop(self, i):
        rng = random.Random(self.seed * 1000 + i)
        n = 0
        while not self.stop.is_set():
            n += 1
            self.stats.add("sessions")
            try:
                s = Session(self, rng, "client%d/session%d" % (i, n))
            except OSError as e:
                self.stats.finding("client%d: cannot connect: %s" % (i, e))
                time.sleep(0.5)
                continue
            s.run(rng.randrange(5, 40))


def failover(cl, rng):
    """CLUSTER FAILOVER on a random master's replica; waits for it."""
    m = rng.choice(cl.masters())
    reps = cl.replicas_of(m)
    if not reps:
        return False
    rep = reps[0]
    assert rep.call("CLUSTER", "FAILOVER") == b"OK"
    try:
        wait_until(lambda: b"role:master" in rep.call("INFO",
                                                      "replication"),
                   10, "replica %d to take over" % rep.port)
    except harness.HarnessError:
        rep.call("CLUSTER", "FAILOVER", "FORCE")
        wait_until(lambda: b"role:master" in rep.call("INFO",
                                                      "replication"),
                   15, "replica %d to take over (FORCE)" % rep.port)
    cl.wait_ok(30)
    cl.refresh()
    return True


def chaos(cl, fz, rng):
    """A slot move, then a failover, alternating every third of the run
    (at least one of each)."""
    period = max(5.0, min(60.0, fz.seconds / 3))
    t0 = time.time()
    k = 0
    while not fz.stop.wait(period * (0.5 if k == 0 else 1.0)):
        if time.time() - t0 > fz.seconds - 3:
            break
        try:
            if k % 2 == 0:
                cl.wait_ok(30)
                cl.refresh()
                ms = [m for m in cl.masters() if b"role:master" in
                      m.call("INFO", "replication")]
                src, dst = rng.sample(ms, 2)
                tags = [t for t in ("fz%d" % i for i in range(6))
                        if cl.node_for_key("{%s}" % t) is src]
                slots = [harness.keyslot(t) for t in tags] or \
                    cl.slots_of(src)[:2]
                cl.migrate_slots(src, dst, slots)
                fz.stats.add("slot_moves")
            elif failover(cl, rng):
                fz.stats.add("failovers")
        except Exception as e:   # noqa: B902 - the cluster's, not a finding
            log("# chaos step %d failed: %r" % (k, e))
            try:
                cl.wait_ok(30)
                cl.refresh()
            except Exception as e2:   # noqa: B902
                log("# cluster did not settle: %r" % e2)
        k += 1


def run_fuzz(env, seconds, seed):
    cl = harness.Cluster(3, 1, name="fuzz")
    try:
        cl.start(40)
        p = env.new_proxy(seeds=[m.port for m in cl.masters()],
                          request_timeout="3s", extra=USERS_YAML,
                          log_level=os.environ.get("SP_FUZZ_LOG_LEVEL",
                                                   "notice"))
        fz = Fuzzer(p.port, seed, seconds)
        threads = [threading.Thread(target=fz.client_loop, args=(i,),
                                    daemon=True) for i in range(NCLIENTS)]
        ct = threading.Thread(target=chaos,
                              args=(cl, fz, random.Random(seed)),
                              daemon=True)
        t0 = time.time()
        for t in threads + [ct]:
            t.start()
        while time.time() - t0 < seconds and p.alive():
            time.sleep(0.2)
        fz.stop.set()
        for t in threads + [ct]:
            t.join(SYNC_WAIT + 60)
        elapsed = time.time() - t0
        if not p.alive():
            fz.stats.finding("proxy died: exit status %s" % p.proc.poll())
        else:
            try:
                with p.client() as c:
                    if c.call("PING") != b"PONG":
                        fz.stats.finding("no PONG after the run")
            except (OSError, harness.ConnectionClosed) as e:
                fz.stats.finding("no PING after the run: %r" % e)
        with open(p.log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for w in SANITIZER:
            if w in text:
                i = text.index(w)
                fz.stats.finding("proxy log: %s" % text[max(0, i - 200):
                                                         i + 1500])
                break
        n = fz.stats.n
        log("# session fuzz: seed %d, %.0f s, %d clients, workers %s: "
            "%d sessions, %d commands, %d replies, %d pushes/drained, "
            "%d closed by the proxy, %d aborted by the fuzzer, %d slot "
            "moves, %d failovers, %d findings" % (
                seed, elapsed, NCLIENTS, os.environ.get("SP_WORKERS", "1"),
                n["sessions"], n["commands"], n["replies"], n["pushes"],
                n["closed_by_proxy"], n["aborted"], n["slot_moves"],
                n["failovers"], len(fz.stats.findings)))
        assert not fz.stats.findings, "%d findings (seed %d), first: %s" % (
            len(fz.stats.findings), seed, fz.stats.findings[0][:3000])
        assert n["commands"] > 0
    finally:
        cl.stop()


@test(timeout=int(SECONDS) + 240)
def test_session_fuzz(env):
    seed = int(os.environ.get("SP_FUZZ_SEED") or
               random.SystemRandom().randrange(1 << 30))
    log("# session fuzz seed %d (SP_FUZZ_SEED=%d reproduces the "
        "sequences)" % (seed, seed))
    run_fuzz(env, SECONDS, seed)


if __name__ == "__main__":
    sys.exit(harness.main(sys.argv[1:] + [os.path.abspath(__file__)]))
