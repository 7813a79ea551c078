/* slotproxy - BSD-2-Clause
 *
 * Slot-map snapshots: built once from a decoded CLUSTER SLOTS reply, then
 * immutable and shared by every worker through a reference count. This
 * file owns the validation of that reply: a snapshot that routes a slot
 * to a wrong or half-parsed node would misroute every key in it, so any
 * reply that is not exactly a CLUSTER SLOTS answer is rejected whole with
 * a message naming the offending range.
 */
#include "build_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "resp.h"
#include "slotmap.h"
#include "util.h"

/* Longest endpoint accepted: a DNS name is at most 253 bytes. */
#define SM_HOST_MAX 255
/* Node ids are 40 hex digits today; leave room, refuse garbage. */
#define SM_ID_MAX 256

/* A node entry of a range, decoded but not yet copied. */
struct sm_entry {
    const char *host;           /* endpoint bytes (reply or asked_host) */
    size_t hostlen;             /* length of host */
    const char *id;             /* node id bytes, "" when absent */
    size_t idlen;               /* length of id */
    uint16_t port;              /* port, 1..65535 */
};

/* Builder state while a reply is being turned into a map. */
struct sm_build {
    struct slotmap *map;        /* the map being filled, owned */
    uint32_t cap;               /* allocated entries in map->nodes */
    char *err;                  /* caller's message buffer, may be NULL */
    size_t errlen;              /* its size */
};

static void sm_error(struct sm_build *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sm_error(struct sm_build *b, const char *fmt, ...)
{
    va_list ap;

    if (b->err == NULL || b->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
}

static struct slotmap *
slotmap_alloc(void)
{
    struct slotmap *m = sp_calloc(1, sizeof(*m));

    m->refcount = 1;
    for (size_t i = 0; i < SLOT_COUNT; i++)
        m->slot_node[i] = SLOTMAP_NONE;
    return m;
}

static void
slotmap_free(struct slotmap *m)
{
    for (uint32_t i = 0; i < m->nnodes; i++) {
        sp_free(m->nodes[i].host);
        sp_free(m->nodes[i].id);
    }
    sp_free(m->nodes);
    sp_free(m);
}

struct slotmap *
slotmap_new_empty(void)
{
    return slotmap_alloc();
}

struct slotmap *
slotmap_get(struct slotmap *m)
{
    if (m != NULL)
        __atomic_fetch_add(&m->refcount, 1, __ATOMIC_RELAXED);
    return m;
}

/*
 * Drop one reference; the last one frees the map. Release/acquire so that
 * the thread that frees sees every other thread's reads as finished.
 */
void
slotmap_put(struct slotmap *m)
{
    if (m == NULL)
        return;
    if (__atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        slotmap_free(m);
}

static int
sm_is_string(const struct resp_value *v)
{
    return v->type == '$' || v->type == '+';
}

/* RESP2 nil bulk (the header's integer -1) or RESP3 null. */
static int
sm_is_null(const struct resp_value *v)
{
    return v->type == '_' || (v->type == '$' && v->integer == -1);
}

static int
sm_is_array(const struct resp_value *v)
{
    return v->type == '*' && v->integer != -1;
}

/*
 * Decode node entry e (index k of slot range r) into *out. An endpoint
 * that is nil, empty or "?" means the host the reply came from (Redis
 * sends nil for unknown-endpoint and "?" for a peer whose hostname it has
 * not learnt yet). Returns 0, or -1 with a message.
 */
static int
sm_decode_entry(struct sm_build *b, const struct resp_value *e, size_t r,
                size_t k, const char *asked_host, struct sm_entry *out)
{
    const struct resp_value *ep, *port;

    if (!sm_is_array(e) || e->nelems < 2) {
        sm_error(b, "slot range %zu node %zu is not an array of at least "
                 "endpoint and port", r, k);
        return -1;
    }
    ep = &e->elems[0];
    port = &e->elems[1];

    if (sm_is_null(ep) || (sm_is_string(ep) && (ep->len == 0 ||
                           (ep->len == 1 && ep->str[0] == '?')))) {
        if (asked_host == NULL || asked_host[0] == '\0') {
            sm_error(b, "slot range %zu node %zu has an unknown endpoint "
                     "and no asked host", r, k);
            return -1;
        }
        out->host = asked_host;
        out->hostlen = strlen(asked_host);
    } else if (sm_is_string(ep)) {
        if (ep->len > SM_HOST_MAX || memchr(ep->str, '\0', ep->len)) {
            sm_error(b, "slot range %zu node %zu has an invalid endpoint",
                     r, k);
            return -1;
        }
        out->host = ep->str;
        out->hostlen = ep->len;
    } else {
        sm_error(b, "slot range %zu node %zu endpoint is not a string",
                 r, k);
        return -1;
    }

    if (port->type != ':') {
        sm_error(b, "slot range %zu node %zu port is not an integer", r, k);
        return -1;
    }
    if (port->integer < 1 || port->integer > 65535) {
        sm_error(b, "slot range %zu node %zu has port %lld out of range",
                 r, k, port->integer);
        return -1;
    }
    out->port = (uint16_t)port->integer;

    /* Redis < 4 sends [ip, port]; 4.0 to 6.2 add the id; 7.0 adds a
     * metadata array (a map under RESP3) that the proxy does not need. */
    out->id = "";
    out->idlen = 0;
    if (e->nelems >= 3 && !sm_is_null(&e->elems[2])) {
        const struct resp_value *id = &e->elems[2];

        if (!sm_is_string(id) || id->len > SM_ID_MAX ||
            memchr(id->str, '\0', id->len)) {
            sm_error(b, "slot range %zu node %zu has an invalid id", r, k);
            return -1;
        }
        out->id = id->str;
        out->idlen = id->len;
    }
    if (e->nelems >= 4) {
        char t = e->elems[3].type;

        if (t != '*' && t != '%' && !sm_is_null(&e->elems[3])) {
            sm_error(b, "slot range %zu node %zu metadata is not an array",
                     r, k);
            return -1;
        }
    }
    return 0;
}

/* Index of the node host[0..hostlen):port in the map being built, or -1. */
static int
sm_lookup(const struct slotmap *m, const struct sm_entry *e)
{
    for (uint32_t i = 0; i < m->nnodes; i++) {
        const struct sm_node *n = &m->nodes[i];

        if (n->port == e->port && strlen(n->host) == e->hostlen &&
            strncasecmp(n->host, e->host, e->hostlen) == 0)
            return (int)i;
    }
    return -1;
}

/* Append a node; returns its index, or -1 when the map is full. */
static int
sm_add(struct sm_build *b, const struct sm_entry *e, int master)
{
    struct slotmap *m = b->map;
    struct sm_node *n;

    /* slot_node[] holds uint16_t indexes with 0xffff meaning "none". */
    if (m->nnodes >= SLOTMAP_NONE) {
        sm_error(b, "more than %u nodes", (unsigned)SLOTMAP_NONE - 1);
        return -1;
    }
    if (m->nnodes == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        m->nodes = sp_realloc(m->nodes, b->cap * sizeof(*m->nodes));
    }
    n = &m->nodes[m->nnodes];
    n->host = sp_strndup(e->host, e->hostlen);
    n->port = e->port;
    n->id = sp_strndup(e->id, e->idlen);
    n->master = master;
    return (int)m->nnodes++;
}

/*
 * Check slot range r's shape and bounds and give it to its master (the
 * range's first node), adding that master if it is new. Returns 0 or -1.
 */
static int
sm_add_range(struct sm_build *b, const struct resp_value *range, size_t r,
             const char *asked_host)
{
    struct slotmap *m = b->map;
    const struct resp_value *lo, *hi;
    struct sm_entry e;
    int idx;

    if (!sm_is_array(range) || range->nelems < 3) {
        sm_error(b, "slot range %zu is not an array of start, end and "
                 "at least one node", r);
        return -1;
    }
    lo = &range->elems[0];
    hi = &range->elems[1];
    if (lo->type != ':' || hi->type != ':') {
        sm_error(b, "slot range %zu start or end is not an integer", r);
        return -1;
    }
    if (lo->integer < 0 || lo->integer >= SLOT_COUNT ||
        hi->integer < 0 || hi->integer >= SLOT_COUNT) {
        sm_error(b, "slot range %zu (%lld-%lld) is outside 0-%d", r,
                 lo->integer, hi->integer, SLOT_COUNT - 1);
        return -1;
    }
    if (lo->integer > hi->integer) {
        sm_error(b, "slot range %zu has start %lld > end %lld", r,
                 lo->integer, hi->integer);
        return -1;
    }
    if (sm_decode_entry(b, &range->elems[2], r, 0, asked_host, &e) < 0)
        return -1;
    idx = sm_lookup(m, &e);
    if (idx < 0 && (idx = sm_add(b, &e, -1)) < 0)
        return -1;
    m->nmasters = m->nnodes;

    for (long long s = lo->integer; s <= hi->integer; s++) {
        /* A slot listed twice means the node's view is corrupt or was
         * caught mid-update; routing by either owner could be wrong. */
        if (m->slot_node[s] != SLOTMAP_NONE) {
            sm_error(b, "slot range %zu overlaps an earlier range at "
                     "slot %lld", r, s);
            return -1;
        }
        m->slot_node[s] = (uint16_t)idx;
    }
    m->covered += (uint32_t)(hi->integer - lo->integer + 1);
    return 0;
}

/*
 * Add the replicas of slot range r (its nodes after the first). Runs after
 * every master is known, so that a node cannot be both. Returns 0 or -1.
 */
static int
sm_add_replicas(struct sm_build *b, const struct resp_value *range, size_t r,
                const char *asked_host)
{
    struct slotmap *m = b->map;
    int master = m->slot_node[range->elems[0].integer];

    for (size_t k = 3; k < range->nelems; k++) {
        struct sm_entry e;
        int idx;

        if (sm_decode_entry(b, &range->elems[k], r, k - 2, asked_host,
                            &e) < 0)
            return -1;
        idx = sm_lookup(m, &e);
        if (idx < 0) {
            if (sm_add(b, &e, master) < 0)
                return -1;
        } else if ((uint32_t)idx < m->nmasters) {
            sm_error(b, "slot range %zu lists master %s:%u as a replica",
                     r, m->nodes[idx].host, (unsigned)e.port);
            return -1;
        } else if (m->nodes[idx].master != master) {
            sm_error(b, "slot range %zu lists replica %s:%u under a "
                     "second master", r, m->nodes[idx].host,
                     (unsigned)e.port);
            return -1;
        }
    }
    return 0;
}

struct slotmap *
slotmap_from_cluster_slots(const struct resp_value *v,
                           const char *asked_host, char *err, size_t errlen)
{
    struct sm_build b = { .err = err, .errlen = errlen };

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (v == NULL) {
        sm_error(&b, "no reply");
        return NULL;
    }
    if (v->type == '-') {
        sm_error(&b, "server replied: %.*s",
                 (int)SP_MIN(v->len, (size_t)200), v->str ? v->str : "");
        return NULL;
    }
    if (!sm_is_array(v)) {
        sm_error(&b, "reply is not an array (type '%c')", v->type);
        return NULL;
    }

    b.map = slotmap_alloc();
    for (size_t r = 0; r < v->nelems; r++) {
        if (sm_add_range(&b, &v->elems[r], r, asked_host) < 0)
            goto fail;
    }
    for (size_t r = 0; r < v->nelems; r++) {
        if (sm_add_replicas(&b, &v->elems[r], r, asked_host) < 0)
            goto fail;
    }
    return b.map;

fail:
    slotmap_free(b.map);
    return NULL;
}

int
slotmap_find_node(const struct slotmap *m, const char *host, uint16_t port)
{
    struct sm_entry e = {
        .host = host,
        .hostlen = strlen(host),
        .port = port,
    };

    return sm_lookup(m, &e);
}

/*
 * Slot by slot, since node indexes differ between maps whenever a node
 * appeared or vanished. Consecutive slots nearly always share a node
 * pair, so the string compare runs once per range, not per slot.
 */
/* 1 when slot s goes to the same host:port (or nowhere) in both maps. */
static int
same_owner(const struct slotmap *a, const struct slotmap *b, size_t s)
{
    uint16_t ia = a->slot_node[s], ib = b->slot_node[s];

    if (ia == SLOTMAP_NONE || ib == SLOTMAP_NONE)
        return ia == ib;
    return a->nodes[ia].port == b->nodes[ib].port &&
           strcasecmp(a->nodes[ia].host, b->nodes[ib].host) == 0;
}

int
slotmap_same_routes(const struct slotmap *a, const struct slotmap *b)
{
    return slotmap_route_diff(a, b, NULL) == 0;
}

uint32_t
slotmap_route_diff(const struct slotmap *a, const struct slotmap *b,
                   int *first)
{
    uint16_t last_a = SLOTMAP_NONE, last_b = SLOTMAP_NONE;
    uint32_t n = 0;

    if (first != NULL)
        *first = -1;
    for (size_t s = 0; s < SLOT_COUNT; s++) {
        uint16_t ia = a->slot_node[s], ib = b->slot_node[s];

        /* Runs of slots with the same pair of owners are compared once. */
        if (ia != SLOTMAP_NONE && ib != SLOTMAP_NONE && ia == last_a &&
            ib == last_b)
            continue;
        if (same_owner(a, b, s)) {
            last_a = ia;
            last_b = ib;
            continue;
        }
        last_a = last_b = SLOTMAP_NONE;
        if (first != NULL && *first < 0)
            *first = (int)s;
        n++;
        if (first == NULL)
            break;          /* only "same or not" was asked */
    }
    return n;
}
