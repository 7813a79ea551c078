/* slotproxy - BSD-2-Clause
 *
 * An immutable snapshot of the cluster topology: which master serves each
 * of the 16384 slots, every node with its replicas, and an epoch. Built
 * once from a CLUSTER SLOTS reply, then only read; shared between threads
 * and freed on the last slotmap_put().
 */
#ifndef SP_SLOTMAP_H
#define SP_SLOTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "keyslot.h"

struct resp_value;

#define SLOTMAP_NONE 0xffff     /* slot_node[] value for an uncovered slot */

struct sm_node {
    char *host;                 /* endpoint to connect to (ip or hostname) */
    uint16_t port;              /* port */
    char *id;                   /* node id (may be empty) */
    int master;                 /* index of its master for a replica, -1 for
                                 * a master */
};

struct slotmap {
    uint64_t epoch;             /* set by the publisher; 0 for a new map */
    int refcount;               /* atomic; the map is freed at 0 */
    struct sm_node *nodes;      /* masters and replicas, masters first */
    uint32_t nnodes;
    uint32_t nmasters;          /* nodes[0 .. nmasters) are masters */
    uint32_t covered;           /* number of slots with a master */
    uint16_t slot_node[SLOT_COUNT]; /* slot -> index into nodes, or NONE */
};

/* An empty map (no nodes, no slot covered). Refcount 1. */
struct slotmap *slotmap_new_empty(void);

/*
 * Build a map from a decoded CLUSTER SLOTS reply. asked_host is the host
 * the request was sent to: an empty or "?" endpoint means that host (as the
 * cluster spec says). Returns a map with refcount 1, or NULL with a
 * message in err when the reply is not a valid CLUSTER SLOTS answer.
 */
struct slotmap *slotmap_from_cluster_slots(const struct resp_value *v,
                                           const char *asked_host,
                                           char *err, size_t errlen);

struct slotmap *slotmap_get(struct slotmap *m);
void slotmap_put(struct slotmap *m);

/* Index of the master node that serves slot, or -1 if uncovered. */
static inline int
slotmap_master_of(const struct slotmap *m, uint16_t slot)
{
    uint16_t n = m->slot_node[slot];
    return n == SLOTMAP_NONE ? -1 : (int)n;
}

/* Index of the node host:port, or -1. */
int slotmap_find_node(const struct slotmap *m, const char *host,
                      uint16_t port);

/* 1 when both maps route every slot to the same host:port. */
int slotmap_same_routes(const struct slotmap *a, const struct slotmap *b);
/* Number of slots routed differently (to another host:port, or covered
 * in one map only); *first, when not NULL, gets the first such slot or
 * -1. With first NULL it stops at the first difference (0 or 1). */
uint32_t slotmap_route_diff(const struct slotmap *a, const struct slotmap *b,
                            int *first);

#endif
