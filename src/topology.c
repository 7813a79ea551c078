/* slotproxy - BSD-2-Clause
 *
 * The slot map refresher. One CLUSTER SLOTS request at a time, sent over
 * the ordinary backend connections (it is just another pipelined request).
 * Candidates are the nodes of the current map, then the seeds, tried in
 * turn; a round that finds no answer backs off (100 ms doubling to 1 s),
 * so a proxy started before its cluster keeps looking and answers
 * CLUSTERDOWN meanwhile. While some slot has no master, or a master
 * cannot be reached, the map is polled every 200 ms so that a replica
 * promotion is followed quickly.
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "backend.h"
#include "config.h"
#include "log.h"
#include "request.h"
#include "resp.h"
#include "slotmap.h"
#include "topology.h"
#include "worker.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000
#define UNCOVERED_POLL_MS 200
#define MIN_SPACING_MS 20

static const char cluster_slots_cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

struct topology {
    struct worker *w;               /* owner */
    struct event *timer;            /* next attempt (refresh or retry) */
    uint64_t timer_at_ms;           /* when timer fires; 0 = not armed */
    int inflight;                   /* a CLUSTER SLOTS request is out */
    struct request *req;            /* that request (a reference), so
                                     * topology_deinit can detach it: the
                                     * backends fail it after this is
                                     * freed */
    int again;                      /* refresh asked while in flight */
    uint32_t next;                  /* next candidate index */
    uint32_t rounds;                /* rounds started, to pick the first
                                     * master asked */
    uint32_t tried;                 /* candidates tried in this round */
    int continuing;                 /* next attempt continues the round */
    int second_opinion;             /* a map losing slots was set aside:
                                     * the next one is taken as it is */
    uint32_t failed_rounds;         /* consecutive rounds with no answer */
    uint64_t last_ms;               /* when the last round ended */
    char asked_host[256];           /* host of the in-flight attempt */
    uint16_t asked_port;            /* and its port */
    uint64_t sent_us;               /* when the attempt was sent */
    uint64_t sent_seq;              /* attempts sent so far */
    uint64_t inflight_seq;          /* number of the attempt out */
    uint64_t done_seq;              /* attempts up to this one are over
                                     * (see topology_ticket_done) */
};

static void topo_attempt(struct topology *t);

static void
topo_schedule(struct topology *t, uint64_t delay_ms)
{
    uint64_t at = sp_msec_now() + delay_ms;
    if (t->timer_at_ms != 0 && t->timer_at_ms <= at)
        return; /* already due sooner */
    struct timeval tv = {(time_t)(delay_ms / 1000),
                         (suseconds_t)((delay_ms % 1000) * 1000)};
    t->timer_at_ms = at;
    evtimer_add(t->timer, &tv);
}

static void
topo_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct topology *t = arg;
    t->timer_at_ms = 0;
    if (t->inflight) {
        t->again = 1;
        return;
    }
    if (!t->continuing) {
        /* A new round starts at a master (taking turns, to spread the
         * load): never where the last round stopped, which could be a
         * replica. Replicas learn of a slot move last, and a map fetched
         * from one while the masters already agree flips the slot back,
         * which brings a MOVED, which brings a refresh from the next
         * candidate: the map would flap for as long as they disagree. */
        uint32_t nm = t->w->map->nmasters;
        t->tried = 0;
        t->next = nm > 0 ? t->rounds++ % nm : 0;
    }
    t->continuing = 0;
    topo_attempt(t);
}

/* Number of candidates: every node of the current map, then the seeds. */
static uint32_t
topo_ncandidates(const struct topology *t)
{
    return t->w->map->nnodes + (uint32_t)t->w->conf->nseeds;
}

static void
topo_candidate(const struct topology *t, uint32_t i, const char **host,
               uint16_t *port)
{
    /* Masters first, then the seeds, replicas last: a replica learns of
     * a slot move by gossip, later than the masters, and would hand back
     * a map older than the MOVED that asked for the refresh. */
    const struct slotmap *m = t->w->map;
    size_t nseeds = t->w->conf->nseeds;
    if (i < m->nmasters) {
        *host = m->nodes[i].host;
        *port = m->nodes[i].port;
    } else if (i < m->nmasters + nseeds) {
        const struct sp_addr *a = &t->w->conf->seeds[i - m->nmasters];
        *host = a->host;
        *port = a->port;
    } else {
        uint32_t r = m->nmasters + (uint32_t)(i - m->nmasters - nseeds);
        *host = m->nodes[r].host;
        *port = m->nodes[r].port;
    }
}

/* 1 when a master of the current map cannot be reached (its connections
 * keep failing): a failover is probably under way, and the new owner must
 * be found as soon as the cluster promotes a replica, not at the next
 * periodic refresh. */
static int
topo_master_unreachable(const struct worker *w)
{
    for (uint32_t i = 0; i < w->map->nmasters; i++) {
        const struct server *s = w->map_srv[i];
        for (uint32_t j = 0; j < s->nconns; j++)
            if (s->conns[j].failures > 0)
                return 1;
    }
    return 0;
}

static void
topo_round_end(struct topology *t, int ok)
{
    struct worker *w = t->w;
    uint64_t delay;

    t->last_ms = sp_msec_now();
    if (ok) {
        t->failed_rounds = 0;
        t->done_seq = t->inflight_seq;
        delay = w->map->covered < SLOT_COUNT || topo_master_unreachable(w)
                    ? UNCOVERED_POLL_MS
                    : w->conf->refresh_interval_ms;
    } else {
        t->done_seq = t->sent_seq; /* nobody answered: none will come */
        t->failed_rounds++;
        delay = RETRY_MIN_MS;
        for (uint32_t i = 1; i < t->failed_rounds && delay < RETRY_MAX_MS;
             i++)
            delay *= 2;
        if (delay > RETRY_MAX_MS)
            delay = RETRY_MAX_MS;
        if (t->failed_rounds == 1 || t->failed_rounds % 30 == 0)
            log_warn("topology: no node answered CLUSTER SLOTS "
                     "(%u rounds); retrying", t->failed_rounds);
    }
    if (t->again) {
        t->again = 0;
        delay = MIN_SPACING_MS;
    }
    topo_schedule(t, delay);
}

/* Say which node's answer moves slots, and the first one moved: when the
 * nodes of a cluster disagree for a while, the log shows who says what. */
static void
topo_log_moves(const struct topology *t, const struct slotmap *m)
{
    const struct slotmap *old = t->w->map;
    int first;
    uint32_t n;

    if (old->nmasters == 0)
        return;
    n = slotmap_route_diff(old, m, &first);
    if (n == 0)
        return;
    int a = slotmap_master_of(old, (uint16_t)first);
    int b = slotmap_master_of(m, (uint16_t)first);
    log_notice("topology: %s:%u says %u slot%s changed owner (first: slot "
               "%d, %s:%u -> %s:%u)", t->asked_host, t->asked_port, n,
               n == 1 ? "" : "s", first, a >= 0 ? old->nodes[a].host : "none",
               a >= 0 ? old->nodes[a].port : 0,
               b >= 0 ? m->nodes[b].host : "none",
               b >= 0 ? m->nodes[b].port : 0);
}

/* Install the map decoded from a reply; 0 on success. */
static int
topo_install(struct topology *t, const struct request *r)
{
    struct resp_value *v = NULL;
    char err[256];
    const char *data = r->rep.data + r->rep.pos;
    size_t len = buf_unread(&r->rep);

    if (len == 0 || data[0] != '*' ||
        resp_value_parse(data, len, &v) <= 0) {
        /* Kept for the CLUSTERDOWN reply while there is no map. */
        size_t n = len > 3 && data[0] == '-' ? len - 3 : 0;
        snprintf(t->w->topo_err, sizeof(t->w->topo_err), "%.30s: %.*s",
                 t->asked_host, (int)SP_MIN(n, 120), data + 1);
        log_info("topology: %s answered CLUSTER SLOTS with %.*s",
                 t->asked_host, (int)SP_MIN(len, 80), data);
        return -1;
    }
    struct slotmap *m = slotmap_from_cluster_slots(v, t->asked_host, err,
                                                   sizeof(err));
    resp_value_free(v);
    if (m == NULL) {
        log_warn("topology: bad CLUSTER SLOTS from %s: %s", t->asked_host,
                 err);
        return -1;
    }
    if (m->nmasters == 0) {
        /* A node not yet part of a cluster knows no slots. */
        slotmap_put(m);
        return -1;
    }
    if (m->covered < t->w->map->covered && !t->second_opinion) {
        /* Fewer slots served than we know of: a node in the middle of a
         * failover can answer so. Believe it only if another node agrees
         * (the next candidate is asked now). */
        t->second_opinion = 1;
        slotmap_put(m);
        return -1;
    }
    t->second_opinion = 0;
    topo_log_moves(t, m);
    t->w->stats.refreshes++;
    uint64_t us = sp_usec_now() - t->sent_us;
    t->w->stats.refresh.count[lat_bucket(us)]++;
    t->w->stats.refresh.sum_us += us;
    worker_set_map(t->w, m);
    return 0;
}

static void
topo_on_done(struct request *r)
{
    struct topology *t = r->data;
    t->inflight = 0;
    t->req = NULL;
    request_put(r); /* t's reference; whoever completes r holds another */
    if (topo_install(t, r) == 0) {
        topo_round_end(t, 1);
        return;
    }
    t->w->stats.refresh_failures++;
    if (++t->tried >= topo_ncandidates(t)) {
        topo_round_end(t, 0);
        return;
    }
    /* Next candidate from the loop, not from inside this callback (which
     * may run inside a backend's error path). */
    t->continuing = 1;
    topo_schedule(t, 0);
}

static void
topo_attempt(struct topology *t)
{
    struct worker *w = t->w;
    uint32_t n = topo_ncandidates(t);
    const char *host;
    uint16_t port;

    topo_candidate(t, t->next++ % n, &host, &port);
    snprintf(t->asked_host, sizeof(t->asked_host), "%s", host);
    t->asked_port = port;
    struct request *r = request_new(&w->reqs);
    buf_append(&r->req, cluster_slots_cmd, sizeof(cluster_slots_cmd) - 1);
    r->on_done = topo_on_done;
    r->data = t;
    r->deadline_ms = sp_msec_now() + w->conf->request_timeout_ms;
    t->inflight = 1;
    t->inflight_seq = ++t->sent_seq;
    t->sent_us = sp_usec_now();
    t->req = request_get(r); /* dropped in topo_on_done */
    backend_send(backend_get(w, host, port), r);
    request_put(r);
}

static void
topo_node_error(struct worker *w, struct server *s)
{
    topology_request_refresh(w);
}

void
topology_request_refresh(struct worker *w)
{
    struct topology *t = w->topo;
    if (t->inflight) {
        t->again = 1;
        return;
    }
    uint64_t since = sp_msec_now() - t->last_ms;
    topo_schedule(t, since >= MIN_SPACING_MS ? 0 : MIN_SPACING_MS - since);
}

uint64_t
topology_refresh_ticket(const struct worker *w)
{
    return w->topo->sent_seq + 1;
}

int
topology_ticket_done(const struct worker *w, uint64_t ticket)
{
    return w->topo->done_seq >= ticket;
}

void
topology_init(struct worker *w)
{
    struct topology *t = sp_calloc(1, sizeof(*t));
    t->w = w;
    t->timer = evtimer_new(w->base, topo_timer_cb, t);
    w->topo = t;
    w->on_node_error = topo_node_error;
    topo_schedule(t, 0);
}

void
topology_deinit(struct worker *w)
{
    struct topology *t = w->topo;
    if (t == NULL)
        return;
    if (t->req != NULL) {
        /* Still out: the backends fail it later, with no one to tell. */
        t->req->on_done = NULL;
        t->req->data = NULL;
        request_put(t->req);
    }
    event_free(t->timer);
    sp_free(t);
    w->topo = NULL;
    w->on_node_error = NULL;
}
