/* slotproxy - BSD-2-Clause
 *
 * The replication poll (worker 0; see replpoll.h). Each ask carries the
 * master's address, not an index: the map may change while it is out,
 * and an answer about a master no longer in the map is dropped.
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include "alloc.h"
#include "backend.h"
#include "config.h"
#include "log.h"
#include "replinfo.h"
#include "replpoll.h"
#include "replstat.h"
#include "request.h"
#include "slotmap.h"
#include "topology.h"
#include "util.h"
#include "worker.h"

static const char info_cmd[] = "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n";

/* One INFO replication out. */
struct replpoll_ask {
    struct replpoll *p;             /* the poller; NULL once it is gone */
    char host[REPLINFO_HOST_MAX];   /* the master asked */
    uint16_t port;
    LIST_ENTRY(replpoll_ask) next;  /* in p->asks */
};

struct replpoll {
    struct worker *w;               /* worker 0 */
    struct event *timer;            /* every replica_poll_interval */
    uint32_t interval_ms;           /* the timer's period */
    struct replstat *set;           /* working copy (never published) */
    struct replinfo ri;             /* parse scratch, reused */
    uint32_t inflight;              /* asks out */
    int dirty;                      /* set changed since the last publish */
    LIST_HEAD(, replpoll_ask) asks; /* asks out, orphaned at deinit */
};

/* Publish a clone of the working set when it changed. */
static void
poll_publish(struct replpoll *p)
{
    if (!p->dirty)
        return;
    p->dirty = 0;
    p->set->seq++;
    shared_set_replstat(p->w->shared, replstat_clone(p->set));
}

/* CLUSTER SLOTS hides a replica until it has replicated something: one
 * the master lists online, with data, that the map lacks is worth a
 * refresh (it is then polled as part of the map). */
static void
poll_check_map(struct replpoll *p)
{
    struct worker *w = p->w;
    for (uint32_t i = 0; i < p->ri.nreplicas; i++) {
        const struct replinfo_replica *r = &p->ri.replicas[i];
        if (r->online && r->offset > 0 &&
            slotmap_find_node(w->map, r->ip, r->port) < 0) {
            topology_request_refresh(w);
            return;
        }
    }
}

/* Why reply d[0 .. n) is no usable answer (its first line, cut), into
 * why. */
static void
poll_why(const char *d, size_t n, char *why, size_t cap)
{
    const char *eol = memchr(d, '\r', n);
    size_t len = eol != NULL ? (size_t)(eol - d) : n;
    if (n == 0)
        snprintf(why, cap, "no reply");
    else if (d[0] == '-')
        snprintf(why, cap, "%.*s", (int)SP_MIN(len - 1, 100), d + 1);
    else
        snprintf(why, cap, "not a master's INFO replication");
}

/* Fold one answer into master ms. */
static void
poll_answer(struct replpoll *p, struct replstat_master *ms, const char *d,
            size_t n)
{
    struct worker *w = p->w;
    char why[REPLSTAT_ERR_MAX];
    if (replinfo_parse_reply(&p->ri, d, n) == 0 &&
        p->ri.role == REPLINFO_ROLE_MASTER) {
        if (replstat_update(ms, &p->ri, sp_msec_now()))
            log_notice("replication poll: %s:%u answers again",
                       ms->host, ms->port);
        poll_check_map(p);
        return;
    }
    poll_why(d, n, why, sizeof(why));
    w->stats.repl_poll_failures++;
    if (replstat_fail(ms, why))
        log_warn("replication poll: INFO replication on %s:%u failed: %s "
                 "(counted in slotproxy_replica_poll_failures_total; "
                 "logged again once it answers)", ms->host, ms->port, why);
}

static void
poll_done(struct request *r)
{
    struct replpoll_ask *a = r->data;
    struct replpoll *p = a->p;
    if (p == NULL) {
        sp_free(a);
        return;
    }
    LIST_REMOVE(a, next);
    p->inflight--;
    struct replstat_master *ms = replstat_find(p->set, a->host, a->port);
    if (ms != NULL) {
        ms->inflight = 0;
        poll_answer(p, ms, r->rep.data + r->rep.pos, buf_unread(&r->rep));
        p->dirty = 1;
    }
    sp_free(a);
    if (p->inflight == 0)
        poll_publish(p);
}

/* Ask master i of w's map (entry ms), unless an ask is out already. */
static void
poll_ask(struct replpoll *p, uint32_t i, struct replstat_master *ms)
{
    struct worker *w = p->w;
    if (ms->inflight)
        return;
    struct replpoll_ask *a = sp_calloc(1, sizeof(*a));
    a->p = p;
    snprintf(a->host, sizeof(a->host), "%s", ms->host);
    a->port = ms->port;
    LIST_INSERT_HEAD(&p->asks, a, next);
    ms->inflight = 1;
    p->inflight++;
    w->stats.repl_polls++;
    struct request *r = request_new(&w->reqs);
    buf_append(&r->req, info_cmd, sizeof(info_cmd) - 1);
    r->on_done = poll_done;
    r->data = a;
    r->deadline_ms = sp_msec_now() + w->conf->request_timeout_ms;
    backend_send(w->map_srv[i], r);
    request_put(r);
}

/* 1 when master i's entry has yet to show one of the map's replicas of
 * it. */
static int
poll_misses_replica(const struct slotmap *m, uint32_t i,
                    const struct replstat_master *ms)
{
    if (ms->status == REPLSTAT_PENDING)
        return 1;
    for (uint32_t k = m->nmasters; k < m->nnodes; k++)
        if (m->nodes[k].master == (int)i &&
            replstat_find_replica(ms, m->nodes[k].host, m->nodes[k].port) ==
                NULL)
            return 1;
    return 0;
}

/*
 * Ask the masters of w's map (all of them, or with only_new those
 * poll_misses_replica picks). Sends may fail at once (a node in backoff)
 * and complete inside this loop: entries stay put meanwhile (the map
 * does not change here).
 */
static void
poll_round(struct replpoll *p, int only_new)
{
    const struct slotmap *m = p->w->map;
    for (uint32_t i = 0; i < m->nmasters && i < p->set->nmasters; i++) {
        struct replstat_master *ms = &p->set->masters[i];
        if (!only_new || poll_misses_replica(m, i, ms))
            poll_ask(p, i, ms);
    }
}

static void
poll_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct replpoll *p = arg;
    (void)fd;
    (void)what;
    /* Answers that came while another is still out (a master slow to
     * answer) are published now, not held up by it. */
    poll_publish(p);
    poll_round(p, 0);
}

static void
poll_arm(struct replpoll *p)
{
    p->interval_ms = p->w->conf->replica_poll_interval_ms;
    struct timeval tv = {(time_t)(p->interval_ms / 1000),
                         (suseconds_t)((p->interval_ms % 1000) * 1000)};
    event_del(p->timer);
    event_add(p->timer, &tv);
}

void
replpoll_init(struct worker *w)
{
    struct replpoll *p = sp_calloc(1, sizeof(*p));
    p->w = w;
    p->set = replstat_new();
    replinfo_init(&p->ri);
    LIST_INIT(&p->asks);
    p->timer = event_new(w->base, -1, EV_PERSIST, poll_timer_cb, p);
    poll_arm(p);
    w->repl_poll = p;
}

void
replpoll_deinit(struct worker *w)
{
    struct replpoll *p = w->repl_poll;
    if (p == NULL)
        return;
    struct replpoll_ask *a;
    while ((a = LIST_FIRST(&p->asks)) != NULL) {
        LIST_REMOVE(a, next);
        a->p = NULL; /* its request frees it */
    }
    event_free(p->timer);
    replinfo_deinit(&p->ri);
    replstat_put(p->set);
    sp_free(p);
    w->repl_poll = NULL;
}

void
replpoll_conf(struct worker *w)
{
    struct replpoll *p = w->repl_poll;
    if (p != NULL && p->interval_ms != w->conf->replica_poll_interval_ms)
        poll_arm(p);
}

void
replpoll_map_installed(struct worker *w)
{
    struct replpoll *p = w->repl_poll;
    if (p == NULL)
        return;
    uint32_t before = p->set->nmasters;
    int added = replstat_sync_map(p->set, w->map);
    if (added || before != p->set->nmasters) {
        p->dirty = 1;
        poll_publish(p);
    }
    poll_round(p, 1);
}
