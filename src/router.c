/* slotproxy - BSD-2-Clause
 *
 * Slot routing and redirects. MOVED: re-send to the named node and ask
 * for a topology refresh. ASK: re-send to the named node with ASKING in
 * front, without touching the map. TRYAGAIN: re-dispatch after a short
 * delay (the slot is mid-migration). Each follow costs one unit of the
 * request's budget (cluster.redirect_limit); when it runs out the last
 * error goes to the client. A redirect means the command did not run, so
 * re-sending is safe for writes.
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "command.h"
#include "config.h"
#include "request.h"
#include "router.h"
#include "slotmap.h"
#include "topology.h"
#include "util.h"
#include "worker.h"

#define TRYAGAIN_DELAY_MS 20

static void router_on_reply(struct request *r, const char *data, size_t len,
                            char type);
static int follow_redirect(struct request *r, struct server *from,
                           const char *msg, size_t len, int ask);

/* Every routed request: redirects go through the router, and the request
 * timeout runs from now unless the command blocks without one. */
static void
router_prepare(struct worker *w, struct request *r)
{
    r->on_reply = router_on_reply;
    if (r->deadline_ms == 0 && !r->no_deadline)
        r->deadline_ms = sp_msec_now() + w->conf->request_timeout_ms;
}

static struct server *
node_server(struct worker *w, int node)
{
    return w->map_srv[node];
}

/* The master node for r (by slot, or round robin when keyless); -1 with
 * r failed when there is none. */
static int
router_pick(struct worker *w, struct request *r)
{
    const struct slotmap *m = w->map;
    int node;

    if (m->nmasters == 0) {
        if (w->topo_err[0] != '\0')
            request_failf(r, "CLUSTERDOWN The cluster is down (slotproxy "
                          "has no slot map yet; last answer from %s)",
                          w->topo_err);
        else
            request_fail(r, "CLUSTERDOWN The cluster is down (slotproxy has "
                            "no slot map yet)");
        return -1;
    }
    if (!r->keyed)
        return (int)(w->rr++ % m->nmasters);
    node = slotmap_master_of(m, r->slot);
    if (node < 0)
        request_fail(r, "CLUSTERDOWN Hash slot not served");
    return node;
}

int
router_node(struct worker *w, struct request *r)
{
    return router_pick(w, r);
}

struct server *
router_server(struct worker *w, struct request *r)
{
    int node = router_pick(w, r);
    return node < 0 ? NULL : node_server(w, node);
}

void
router_send_via(struct worker *w, struct request *r)
{
    router_prepare(w, r);
    int node = router_pick(w, r);
    if (node < 0)
        return;
    const struct sm_node *n = &w->map->nodes[node];
    struct server *s = r->target(r, n->host, n->port);
    if (s == NULL) {
        request_fail(r, "ERR slotproxy: too many pinned connections");
        return;
    }
    server_send(s, r);
}

/*
 * read_from replica|prefer-replica: a read (a command Redis flags
 * read-only) goes to a replica of the slot's master that the replication
 * poll found in sync, round robin; else to the master. A replica that no
 * longer serves the slot answers MOVED, which is followed as usual.
 */
static int
router_read_node(struct worker *w, const struct request *r, int master)
{
    const struct slotmap *m = w->map;
    if (w->conf->read_from == READ_MASTER || r->cmd == NULL ||
        !(r->cmd->flags & CMD_F_READONLY) || (r->cmd->flags & CMD_F_WRITE) ||
        r->redirects > 0 || w->replica_ok == NULL)
        return master;
    uint32_t nrep = m->nnodes - m->nmasters;
    uint32_t start = nrep ? w->rr++ % nrep : 0;
    for (uint32_t k = 0; k < nrep; k++) {
        uint32_t i = m->nmasters + (start + k) % nrep;
        if (m->nodes[i].master == master && w->replica_ok[i])
            return (int)i;
    }
    return master;
}

void
router_dispatch(struct worker *w, struct request *r)
{
    router_prepare(w, r);
    int node = router_pick(w, r);
    if (node < 0)
        return;
    if (r->keyed) {
        if (r->redirects == 0)
            w->slot_calls[r->slot]++;
        node = router_read_node(w, r, node);
    }
    server_send(node_server(w, node), r);
}

void
router_dispatch_master(struct worker *w, struct request *r, uint32_t i)
{
    router_prepare(w, r);
    if (i >= w->map->nmasters) {
        request_fail(r, "CLUSTERDOWN The cluster is down");
        return;
    }
    server_send(node_server(w, (int)i), r);
}

/* Parse "<slot> <host>:<port>" after MOVED/ASK. The host may be empty
 * (meaning the node that answered) or an IPv6 address (last ':' splits). */
static int
parse_redirect(const char *p, size_t len, char *host, size_t hostlen,
               uint16_t *port)
{
    const char *sp = memchr(p, ' ', len);
    if (sp == NULL)
        return -1;
    const char *addr = sp + 1;
    size_t alen = len - (size_t)(addr - p);
    const char *colon = NULL;
    for (size_t i = alen; i > 0; i--) {
        if (addr[i - 1] == ':') {
            colon = addr + i - 1;
            break;
        }
    }
    if (colon == NULL)
        return -1;
    size_t hlen = (size_t)(colon - addr);
    long long pv;
    if (sp_str2ll(colon + 1, alen - hlen - 1, &pv) != 0 || pv < 1 ||
        pv > 65535 || hlen >= hostlen)
        return -1;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)pv;
    return 0;
}

int
router_parse_redirect(const char *msg, size_t len, int *ask, char *host,
                      size_t hostlen, uint16_t *port)
{
    *ask = len > 4 && memcmp(msg, "ASK ", 4) == 0;
    int moved = len > 6 && memcmp(msg, "MOVED ", 6) == 0;
    if (!*ask && !moved)
        return -1;
    size_t skip = *ask ? 4 : 6;
    return parse_redirect(msg + skip, len - skip, host, hostlen, port);
}

static void
stash_redirect(struct request *r, const struct server *from, const char *msg,
               size_t mlen)
{
    char host[256];
    uint16_t port;
    if (parse_redirect(msg + 6, mlen - 6, host, sizeof(host), &port) != 0 ||
        (host[0] == '\0' && from == NULL))
        return;
    const char *sp = memchr(msg + 6, ' ', mlen - 6);
    buf_append(&r->rep, msg, (size_t)(sp - msg)); /* "MOVED <slot>" */
    buf_printf(&r->rep, " %s:%u", host[0] ? host : from->host, port);
}

static void
tryagain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct request *r = arg;
    if (!r->done && buf_unread(&r->rep) > 0) {
        /* A bouncing MOVED: go where the last node said, not where a map
         * (maybe older than that MOVED) says. */
        char tmp[320];
        size_t mlen = SP_MIN(buf_unread(&r->rep), sizeof(tmp));
        memcpy(tmp, r->rep.data + r->rep.pos, mlen);
        r->rep.pos = r->rep.len = 0;
        if (follow_redirect(r, NULL, tmp, mlen, 0) != 0) {
            if (r->target != NULL)
                router_send_via(r->w, r);
            else
                router_dispatch(r->w, r);
        }
    } else if (!r->done) {
        if (r->target != NULL)
            router_send_via(r->w, r); /* a pinned request stays pinned */
        else
            router_dispatch(r->w, r);
    }
    request_put(r);
}

/* Follow a MOVED or ASK error (text without '-' and CRLF). 0 if followed,
 * -1 when it is malformed (the error then goes to the client as is). */
static int
follow_redirect(struct request *r, struct server *from, const char *msg,
                size_t len, int ask)
{
    struct worker *w = r->w;
    char host[256];
    uint16_t port;
    size_t skip = ask ? 4 : 6;

    if (parse_redirect(msg + skip, len - skip, host, sizeof(host), &port))
        return -1;
    /* An empty endpoint means the node that sent the redirect. */
    if (host[0] == '\0' && from == NULL)
        return -1;
    const char *h = host[0] ? host : from->host;
    struct server *to = r->target != NULL ? r->target(r, h, port)
                                          : server_get(w, h, port);
    if (to == NULL) {
        request_fail(r, "ERR slotproxy: too many pinned connections");
        return 0;
    }
    if (ask) {
        w->stats.ask++;
        r->asking = 1;
    } else {
        w->stats.moved++;
        topology_request_refresh(w);
    }
    server_send(to, r);
    return 0;
}

/*
 * Reply hook of every routed request. Errors that mean "not here, not
 * now" are followed within the budget; everything else, including the
 * last redirect once the budget is spent, completes the request.
 */
static void
router_on_reply(struct request *r, const char *data, size_t len, char type)
{
    struct worker *w = r->w;
    struct server *from = r->conn != NULL ? r->conn->srv : NULL;

    if (type != '-' || r->redirects >= w->conf->redirect_limit ||
        len < 8) {
        request_finish(r, data, len);
        return;
    }
    const char *msg = data + 1;
    size_t mlen = len - 3; /* without '-' and CRLF */
    int moved = mlen > 6 && memcmp(msg, "MOVED ", 6) == 0;
    int ask = !moved && mlen > 4 && memcmp(msg, "ASK ", 4) == 0;
    int again = !moved && !ask && mlen >= 8 &&
                memcmp(msg, "TRYAGAIN", 8) == 0;
    if (!moved && !ask && !again) {
        request_finish(r, data, len);
        return;
    }
    r->redirects++;
    r->sent = 0;
    if (again || (moved && r->redirects > 2)) {
        /* TRYAGAIN, or MOVED bouncing between nodes while a slot changes
         * hands (each node still names the other): wait a little, with a
         * fresh map on the way, instead of spending the budget at once. */
        if (again) {
            w->stats.tryagain++;
        } else {
            topology_request_refresh(w);
            /* Keep where the redirect points, as "MOVED <slot>
             * <host>:<port>" with the host filled in (empty means the
             * node that answered), for the retry. */
            r->rep.pos = r->rep.len = 0;
            stash_redirect(r, from, msg, mlen);
        }
        long us = TRYAGAIN_DELAY_MS * 1000L * (again ? 1 : r->redirects);
        struct timeval tv = {us / 1000000, us % 1000000};
        event_base_once(w->base, -1, EV_TIMEOUT, tryagain_cb,
                        request_get(r), &tv);
        return;
    }
    if (from == NULL || follow_redirect(r, from, msg, mlen, ask) != 0)
        request_finish(r, data, len);
}
