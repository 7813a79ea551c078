/* slotproxy - BSD-2-Clause
 *
 * Replica sync status per master: the poller's working set, its
 * published clones, and the rules that fold an INFO replication answer
 * into a master's entry (see replstat.h).
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "replstat.h"
#include "slotmap.h"

struct replstat *
replstat_new(void)
{
    struct replstat *s = sp_calloc(1, sizeof(*s));
    s->refcount = 1;
    return s;
}

static void
master_init(struct replstat_master *ms, const char *host, uint16_t port)
{
    memset(ms, 0, sizeof(*ms));
    snprintf(ms->host, sizeof(ms->host), "%s", host);
    ms->port = port;
    ms->master_offset = -1;
}

struct replstat *
replstat_clone(const struct replstat *s)
{
    struct replstat *c = replstat_new();
    c->seq = s->seq;
    c->nmasters = c->cap = s->nmasters;
    c->masters = sp_calloc(s->nmasters ? s->nmasters : 1, sizeof(*c->masters));
    for (uint32_t i = 0; i < s->nmasters; i++) {
        const struct replstat_master *from = &s->masters[i];
        struct replstat_master *to = &c->masters[i];
        *to = *from;
        to->inflight = 0;
        to->cap = from->nreplicas;
        to->replicas = sp_malloc((from->nreplicas ? from->nreplicas : 1) *
                                 sizeof(*to->replicas));
        if (from->nreplicas)
            memcpy(to->replicas, from->replicas,
                   from->nreplicas * sizeof(*to->replicas));
    }
    return c;
}

struct replstat *
replstat_get(struct replstat *s)
{
    __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
    return s;
}

void
replstat_put(struct replstat *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL))
        return;
    for (uint32_t i = 0; i < s->nmasters; i++)
        sp_free(s->masters[i].replicas);
    sp_free(s->masters);
    sp_free(s);
}

struct replstat_master *
replstat_find(const struct replstat *s, const char *host, uint16_t port)
{
    for (uint32_t i = 0; s != NULL && i < s->nmasters; i++)
        if (s->masters[i].port == port && strcmp(s->masters[i].host, host) == 0)
            return &s->masters[i];
    return NULL;
}

/*
 * Entries are kept in m's master order, so that /metrics lists masters
 * as the map does: the kept ones move (by value: their replica arrays go
 * with them), the new ones start PENDING, the rest are freed.
 */
int
replstat_sync_map(struct replstat *s, const struct slotmap *m)
{
    struct replstat_master *next =
        sp_calloc(m->nmasters ? m->nmasters : 1, sizeof(*next));
    int added = 0;
    for (uint32_t i = 0; i < s->nmasters; i++)
        s->masters[i].in_map = 0;
    for (uint32_t i = 0; i < m->nmasters; i++) {
        struct replstat_master *old =
            replstat_find(s, m->nodes[i].host, m->nodes[i].port);
        if (old != NULL && !old->in_map) {
            next[i] = *old;
            old->in_map = 1;
            continue;
        }
        master_init(&next[i], m->nodes[i].host, m->nodes[i].port);
        added = 1;
    }
    for (uint32_t i = 0; i < s->nmasters; i++)
        if (!s->masters[i].in_map)
            sp_free(s->masters[i].replicas);
    sp_free(s->masters);
    s->masters = next;
    s->nmasters = s->cap = m->nmasters;
    return added;
}

const struct replstat_replica *
replstat_find_replica(const struct replstat_master *ms, const char *ip,
                      uint16_t port)
{
    for (uint32_t i = 0; ms != NULL && i < ms->nreplicas; i++)
        if (ms->replicas[i].port == port && strcmp(ms->replicas[i].ip, ip) == 0)
            return &ms->replicas[i];
    return NULL;
}

/* The record of ip:port in ms, added (unknown offset) when missing. */
static struct replstat_replica *
replica_slot(struct replstat_master *ms, const char *ip, uint16_t port)
{
    struct replstat_replica *r =
        (struct replstat_replica *)replstat_find_replica(ms, ip, port);
    if (r != NULL)
        return r;
    if (ms->nreplicas == ms->cap) {
        ms->cap = ms->cap ? 2 * ms->cap : 4;
        ms->replicas =
            sp_realloc(ms->replicas, ms->cap * sizeof(*ms->replicas));
    }
    r = &ms->replicas[ms->nreplicas++];
    memset(r, 0, sizeof(*r));
    snprintf(r->ip, sizeof(r->ip), "%s", ip);
    r->port = port;
    r->offset = -1;
    return r;
}

/* The lag of r behind a master at master_offset, from r->offset. */
static void
replica_lag(struct replstat_replica *r, long long master_offset)
{
    r->lag_known = master_offset >= 0 && r->offset >= 0 &&
                   r->offset <= master_offset;
    r->lag_bytes =
        r->lag_known ? (uint64_t)(master_offset - r->offset) : 0;
}

int
replstat_update(struct replstat_master *ms, const struct replinfo *ri,
                uint64_t now_ms)
{
    int recovered = ms->status == REPLSTAT_FAILED;
    for (uint32_t i = 0; i < ms->nreplicas; i++)
        ms->replicas[i].link_up = 0;
    for (uint32_t i = 0; i < ri->nreplicas; i++) {
        const struct replinfo_replica *from = &ri->replicas[i];
        struct replstat_replica *r = replica_slot(ms, from->ip, from->port);
        r->link_up = (uint8_t)from->online;
        r->offset = from->offset;
        r->seen_ms = now_ms;
    }
    /* Unlisted ones: lag from what they last acknowledged, until they
     * have been gone long enough to be someone else's business. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < ms->nreplicas; i++) {
        struct replstat_replica *r = &ms->replicas[i];
        if (r->seen_ms != now_ms && now_ms - r->seen_ms > REPLSTAT_FORGET_MS)
            continue;
        replica_lag(r, ri->master_offset);
        ms->replicas[k++] = *r;
    }
    ms->nreplicas = k;
    ms->master_offset = ri->master_offset;
    ms->polled_ms = now_ms;
    ms->status = REPLSTAT_OK;
    ms->error[0] = '\0';
    return recovered;
}

int
replstat_fail(struct replstat_master *ms, const char *why)
{
    int first = ms->status != REPLSTAT_FAILED;
    ms->status = REPLSTAT_FAILED;
    ms->failures++;
    snprintf(ms->error, sizeof(ms->error), "%s", why);
    return first;
}

uint32_t
replstat_healthy(const struct replstat_master *ms)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ms->nreplicas; i++)
        n += ms->replicas[i].link_up;
    return n;
}

int
replstat_replica_fit(const struct replstat *s, const struct slotmap *m,
                     uint32_t i, uint64_t max_lag_bytes)
{
    if (s == NULL || i < m->nmasters || i >= m->nnodes ||
        m->nodes[i].master < 0)
        return 0;
    const struct sm_node *master = &m->nodes[m->nodes[i].master];
    const struct replstat_replica *r = replstat_find_replica(
        replstat_find(s, master->host, master->port), m->nodes[i].host,
        m->nodes[i].port);
    return r != NULL && r->link_up && r->lag_known &&
           r->lag_bytes <= max_lag_bytes;
}
