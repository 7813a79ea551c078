#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Live resharding under load: client threads keep writing and reading keys
# of the slots being moved while the test migrates them by hand (SETSLOT
# IMPORTING/MIGRATING, MIGRATE ... KEYS, SETSLOT NODE). Clients must see no
# error and no acknowledged write may be lost. Runs last (it changes the
# slot layout) and moves the slots back when done.

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, test, keys_in_slots, log  # noqa: E402

NSLOTS = 400
NTHREADS = 4
KEYS_PER_THREAD = 100


@test(last=True, timeout=150)
def test_live_migration(env):
    cl = env.cluster
    cl.wait_ok(30)
    src, dst = cl.masters()[0], cl.masters()[1]
    slots = cl.slots_of(src)[:NSLOTS]
    assert len(slots) == NSLOTS
    keys = keys_in_slots("mig", slots, NTHREADS * KEYS_PER_THREAD)
    counters = keys_in_slots("migc", slots, NTHREADS * 10)
    env.proxy   # started before the load, not during it
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"ops": 0, "errors": [], "wrong": []}
    expect = {}          # key -> last acknowledged value (bytes or int)

    def worker(wid):
        rnd = random.Random(wid)
        mine = keys[wid::NTHREADS]
        myc = counters[wid::NTHREADS]
        local = {}
        ops, n = 0, 0
        try:
            with env.client(15) as c:
                c.pipeline([("DEL", k) for k in mine + myc])
                while not stop.is_set():
                    op = rnd.random()
                    if op < 0.45:
                        k = rnd.choice(mine)
                        n += 1
                        v = ("w%d-%d" % (wid, n)).encode()
                        r = c.call("SET", k, v)
                        if r == b"OK":
                            local[k] = v
                        else:
                            stats["errors"].append(("SET", k, r))
                    elif op < 0.8:
                        k = rnd.choice(mine)
                        r = c.call("GET", k)
                        if isinstance(r, Error):
                            stats["errors"].append(("GET", k, r))
                        elif r != local.get(k):
                            stats["wrong"].append((k, r, local.get(k)))
                    else:
                        k = rnd.choice(myc)
                        r = c.call("INCR", k)
                        if isinstance(r, Error):
                            stats["errors"].append(("INCR", k, r))
                        elif r != local.get(k, 0) + 1:
                            stats["wrong"].append((k, r, local.get(k)))
                            local[k] = r
                        else:
                            local[k] = r
                    ops += 1
        except Exception as e:     # reported by the main thread
            stats["errors"].append(("exception", wid, repr(e)))
        with lock:
            stats["ops"] += ops
            expect.update(local)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True)
               for w in range(NTHREADS)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.time()
    try:
        cl.migrate_slots(src, dst, slots, pause=0.005)
        moved = time.time() - t0
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client thread hung"

    lost = []
    with env.client() as c:
        for k, v in sorted(expect.items()):
            r = c.call("GET", k)
            want = v if isinstance(v, bytes) else str(v).encode()
            if r != want:
                lost.append((k, r, want))
    # The data really moved: the target owns and holds it now.
    cl.refresh()
    assert all(cl.node_for_slot(s) is dst for s in slots)
    with dst.client() as d:
        direct_bad = [k for k, v in expect.items() if d.call("GET", k) !=
                      (v if isinstance(v, bytes) else str(v).encode())]
    log("    migration: %d slots in %.1fs, %d ops, %d errors, %d wrong "
        "reads, %d lost writes" % (len(slots), moved, stats["ops"],
                                   len(stats["errors"]),
                                   len(stats["wrong"]), len(lost)))
    # Put the slots back so later runs (and -k selections) see the
    # layout redis-cli --cluster create made.
    cl.migrate_slots(dst, src, slots)
    cl.wait_ok(30)
    assert stats["ops"] > 1000, stats["ops"]
    assert not stats["errors"], stats["errors"][:5]
    assert not stats["wrong"], stats["wrong"][:5]
    assert not lost, lost[:5]
    assert not direct_bad, direct_bad[:5]
    with env.client() as c:
        c.pipeline([("DEL", k) for k in keys + counters])


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
