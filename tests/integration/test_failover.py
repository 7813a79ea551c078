#!/usr/bin/python3
# slotproxy - BSD-2-Clause
#
# Backend death: a master is SIGKILLed, its replica is promoted by the
# cluster, and the proxy must follow the new topology by itself. Runs last
# (it changes which nodes are masters); the killed node is restarted and
# rejoins as a replica, so the cluster is whole again afterwards.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, test, keys_in_slots, log  # noqa: E402


@test(last=True, timeout=120)
def test_master_kill_failover(env):
    cl = env.cluster
    cl.wait_ok(30)
    victim = cl.masters()[-1]
    replicas = cl.replicas_of(victim)
    if not replicas:
        raise harness.Skip("victim master has no replica")
    vslots = cl.slots_of(victim)
    others = [s for s in range(16384) if cl.node_for_slot(s) is not victim]
    kv = keys_in_slots("fo:v", vslots, 50)
    ko = keys_in_slots("fo:o", others, 50)
    with env.client() as c:
        assert c.pipeline([("SET", k, "v-" + k) for k in kv + ko]) == \
            [b"OK"] * 100
    # Make sure the writes reached the replica before pulling the plug.
    assert victim.call("WAIT", 1, 5000) >= 1

    victim.kill()
    try:
        check_failover(env, kv, ko)
    finally:
        # Bring the old master back; it rejoins as a replica.
        victim.start()
        cl.wait_ok(40)
    assert victim.role == "replica", victim.role


def check_failover(env, kv, ko):
    t0 = time.time()
    other_errs, victim_errs = [], 0
    recovered = None
    with env.client(15) as c:
        while time.time() - t0 < 30:
            r = c.call("GET", ko[int(time.time() * 10) % len(ko)])
            if isinstance(r, Error):
                other_errs.append(r.msg)
            r = c.pipeline([("GET", k) for k in kv])
            if r == [("v-" + k).encode() for k in kv]:
                recovered = time.time() - t0
                break
            victim_errs += 1
            time.sleep(0.1)
    log("    failover: slots of killed master served again after %s s "
        "(%d failed polls); %d errors on other slots %s" % (
            "%.1f" % recovered if recovered is not None else "NEVER",
            victim_errs, len(other_errs),
            sorted(set(m.split()[0] for m in other_errs))))
    assert recovered is not None, "proxy did not follow the failover"
    # Other slots may only see the cluster's own brief CLUSTERDOWN while
    # the failed master is not yet replaced, never a proxy error.
    assert all(m.startswith("CLUSTERDOWN") for m in other_errs), \
        other_errs[:5]
    with env.client() as c:
        # A new connection may land on another worker: it must see the new
        # topology too (workers share the latest map; a worker that asked
        # a node not yet told of the promotion adopts the newer map at its
        # next refresh). The cluster's own nodes may still say CLUSTERDOWN
        # for a moment after the promotion.
        harness.wait_until(
            lambda: c.pipeline([("GET", k) for k in ko + kv]) ==
            [("v-" + k).encode() for k in ko + kv], 20,
            "all slots served through a new connection")
        assert c.pipeline([("SET", k, "new") for k in kv]) == [b"OK"] * 50
        assert c.pipeline([("DEL", k) for k in kv + ko]) == [1] * 100


if __name__ == "__main__":
    sys.exit(harness.main([os.path.abspath(__file__)] + sys.argv[1:]))
