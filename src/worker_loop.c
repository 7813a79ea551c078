/* slotproxy - BSD-2-Clause
 *
 * The worker loop (the driver; worker.c is the context the layers below
 * use). Writes are batched per loop turn: anything that queues
 * bytes (a request for a backend, a reply for a client) only marks its
 * connection dirty and activates flush_ev, a low-priority event that runs
 * after every ready read in the turn. One writev per connection per turn.
 */
#include "build_config.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "backend.h"
#include "bigkeys.h"
#include "client.h"
#include "cmdlearn.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "dispatch.h"
#include "hotkeys.h"
#include "iobatch.h"
#include "listener.h"
#include "log.h"
#include "pin.h"
#include "replpoll.h"
#include "replstat.h"
#include "request.h"
#include "router.h"
#include "slotmap.h"
#include "slowlog.h"
#include "topology.h"
#include "view.h"
#include "worker.h"
#include "worker_loop.h"

#define TICK_MS 100
/* Operations per I/O batch (the io_uring's size): a batch that fills
 * runs and the next starts. */
#define IO_BATCH_DEPTH 256
/* Once a worker's held bytes fell this much below their peak, freed
 * memory is handed back to the system (for a few ticks, so that what is
 * freed at the end of the turn goes too). */
#define MEM_RELEASE_DROP (4 * 1024 * 1024)
/* Recycled requests kept once a burst is over. */
#define REQ_POOL_IDLE 128
/* How long requests that arrive before the first slot map wait for it. */
#define STARTUP_HOLD_MS 1000

static void worker_adopt_map(struct worker *w);
static void worker_install_map(struct worker *w, struct slotmap *m);
static void worker_adopt_cmds(struct worker *w);
static void worker_install_cmds(struct worker *w, struct cmdsnap *s);
static void worker_reap_cmds(struct worker *w);
static void worker_apply_repl(struct worker *w);
static void worker_adopt_repl(struct worker *w);

/* A command table the worker replaced, kept while requests dispatched
 * under it (whose r->cmd points into it) are alive. */
struct cmds_retired {
    struct cmdsnap *snap; /* one ref */
    uint32_t *live;       /* its requests still alive */
};
static int worker_idle(const struct worker *w);

/* Rounds of one batched flush: a round's completions can make more to
 * write (a paused reader resumed, a reply of the proxy's own); what is
 * left after the last goes in the next turn. */
#define FLUSH_ROUNDS 4

/*
 * The end-of-turn flush with batched I/O: the sockets found readable are
 * read in one system call and what came is parsed and dispatched; then
 * every write goes out in one more. flush_pending stays set meanwhile, so
 * that what the callbacks mark dirty joins this flush instead of costing
 * a loop turn of its own.
 */
static void
worker_flush_batched(struct worker *w)
{
    w->now_us = sp_usec_now();
    backend_read_batch(w);
    client_read_batch(w);
    iobatch_run(w->io);
    for (int round = 0; round < FLUSH_ROUNDS; round++) {
        backend_flush_dirty(w);
        client_flush_dirty(w);
        unsigned ran = iobatch_run(w->io);
        /* As the plain flush does: pins released this turn go once the
         * clients are written, and what that queues joins the next
         * round. */
        if (round == 0)
            pin_reap(w);
        if (ran == 0 && TAILQ_EMPTY(&w->dirty_conns) &&
            TAILQ_EMPTY(&w->dirty_clients))
            break;
    }
    w->flush_pending = 0;
    if (!TAILQ_EMPTY(&w->dirty_conns) || !TAILQ_EMPTY(&w->dirty_clients))
        worker_schedule_flush(w);
}

static void
worker_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    if (w->io != NULL) {
        worker_flush_batched(w);
        return;
    }
    w->flush_pending = 0;
    /* One clock read per loop turn serves every request of the next. */
    w->now_us = sp_usec_now();
    /* Backends first: requests dispatched this turn go out before we
     * block; then replies to clients. */
    backend_flush_dirty(w);
    client_flush_dirty(w);
    pin_reap(w);
    /* Flushing clients can resume paused readers, which can queue more
     * backend writes. */
    if (!TAILQ_EMPTY(&w->dirty_conns))
        backend_flush_dirty(w);
}

/* Refresh the per-node gauges (the counters are kept as requests go):
 * which nodes this worker has a server for, their load and connection
 * state, which are masters of the current map. */
static void
worker_node_gauges(struct worker *w)
{
    for (uint32_t i = 0; i < w->nnodes; i++) {
        struct node_stat *ns = &w->nodes[i];
        ns->inflight = 0;
        ns->connected = ns->master = ns->live = 0;
    }
    for (uint32_t i = 0; i < w->nservers; i++) {
        const struct server *s = w->servers[i];
        struct node_stat *ns = &w->nodes[s->stat];
        ns->live = 1;
        backend_load(s, &ns->inflight, &ns->connected);
    }
    for (uint32_t k = 0; k < w->map->nmasters; k++)
        w->nodes[w->map_srv[k]->stat].master = 1;
}

/* Copy the node table for the metrics endpoint (caller holds pub_lock). */
static void
worker_publish_nodes(struct worker *w)
{
    if (w->pub_nodes_cap < w->nnodes) {
        w->pub_nodes_cap = w->nodes_cap;
        w->pub_nodes =
            sp_realloc(w->pub_nodes, w->pub_nodes_cap * sizeof(*w->pub_nodes));
    }
    memcpy(w->pub_nodes, w->nodes, w->nnodes * sizeof(*w->nodes));
    w->pub_nnodes = w->nnodes;
}

/* dst = src, writing only the counters that changed: the arrays are
 * large (128 KB of slot counters) and mostly zero, and a page never
 * written stays the shared zero page instead of resident memory. */
static void
copy_changed(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (dst[i] != src[i])
            dst[i] = src[i];
}

/* Per-command indexes in use: the built-in ones and the names learned
 * so far (the registry only grows, so a retired table's requests use
 * fewer), plus the shared overflow index; the rest of the arrays stays
 * zero and is not copied each tick. */
static size_t
worker_cmd_indexes(const struct worker *w)
{
    size_t n = command_count() + w->cmds->nextra + 1;
    return SP_MIN(n, cmdtable_index_limit());
}

/* Publish a copy of the counters (and current gauges) for the metrics
 * endpoint and INFO: one short lock per tick. now_ms: the tick's clock,
 * published as the proof that the worker is alive (/healthz). */
static void
worker_publish_stats(struct worker *w, uint64_t now_ms)
{
    uint32_t down = 0;
    size_t ncmd = worker_cmd_indexes(w);
    /* Slot counts and per-command latency once a second: 16384 counters
     * are more than a tick's worth of work. */
    int with_slots = ++w->pub_ticks >= 10;
    if (with_slots)
        w->pub_ticks = 0;
    worker_node_gauges(w);
    for (uint32_t i = 0; i < w->map->nmasters; i++)
        down += w->map_srv[i]->down;
    w->stats.clients = w->nclients;
    w->stats.pinned = w->npins;
    w->stats.covered = w->map->covered;
    w->stats.masters = w->map->nmasters;
    w->stats.nodes_down = down;
    w->stats.map_epoch = w->map_epoch;
    w->stats.mem_held = w->mem.held > 0 ? (uint64_t)w->mem.held : 0;
    w->stats.mem_paused = w->mem_paused;
    w->stats.tick_ms = now_ms;
    w->stats.io_uring = w->io != NULL;
    w->stats.io_enters = w->io != NULL ? iobatch_enters(w->io) : 0;
    if (w->hk != NULL)
        hotkeys_advance(w->hk, now_ms);
    pthread_mutex_lock(&w->pub_lock);
    w->pub = w->stats;
    copy_changed(w->pub_cmd_calls, w->cmd_calls, ncmd);
    worker_publish_nodes(w);
    if (w->hk != NULL)
        hotkeys_copy(w->pub_hk, w->hk);
    if (w->bk_dirty) {
        /* Rare (big requests and replies only): no copy otherwise. */
        bigkeys_copy(&w->pub_bk, &w->bk);
        copy_changed(w->pub_big_counts, w->big_counts, 2 * ncmd);
        w->bk_dirty = 0;
    }
    if (with_slots) {
        copy_changed(w->pub_slot_calls, w->slot_calls, SLOT_COUNT);
        copy_changed(w->pub_cmd_lat, w->cmd_lat, ncmd * (LAT_BUCKETS + 2));
    }
    pthread_mutex_unlock(&w->pub_lock);
}

/* Hand memory back to the system after the worker's held bytes came
 * down from a peak (a slow reader closed, a big reply written), or after
 * a burst of requests between two ticks (10,000 clients each sending a
 * request at once: more requests alive in one turn than the pool keeps)
 * once a tick passed without one: shrink the request pool and purge the
 * allocator's unused pages. jemalloc's own decay purges only when the
 * process allocates, so an idle worker would keep them. */
static void
worker_release_memory(struct worker *w)
{
    int64_t held = w->mem.held;
    if (held > w->mem.peak)
        w->mem.peak = held;
    if (w->mem.peak - held >= MEM_RELEASE_DROP) {
        w->mem.peak = held;
        w->mem_release_ticks = WORKER_RELEASE_TICKS;
    }
    if (w->reqs.nspilled != 0) {
        w->reqs.nspilled = 0;
        w->req_burst = 1;
    } else if (w->req_burst) {
        w->req_burst = 0;
        w->mem_release_ticks = WORKER_RELEASE_TICKS;
    }
    if (w->mem_release_ticks > 0) {
        w->mem_release_ticks--;
        request_pool_trim(&w->reqs, REQ_POOL_IDLE);
        sp_alloc_release();
    }
}

static void
worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t now = sp_msec_now();
    w->now_us = sp_usec_now();
    worker_publish_stats(w, now);
    worker_adopt_map(w);
    worker_adopt_cmds(w);
    worker_adopt_repl(w);
    worker_reap_cmds(w);
    view_serve(w);
    if (w->hold_until_ms != 0 && now >= w->hold_until_ms) {
        w->hold_until_ms = 0;
        client_wake_waiting(w);
    }
    if (w->drain_deadline_ms != 0 &&
        (now >= w->drain_deadline_ms || worker_idle(w))) {
        if (!worker_idle(w))
            log_warn("shutdown grace over: closing clients with requests "
                     "in flight");
        event_base_loopbreak(w->base);
    }
    backend_check_timeouts(w, now);
    backend_reap(w, now);
    pin_check_timeouts(w, now);
    client_check_idle(w, now);
    client_check_memory(w, now);
    worker_release_memory(w);
}

/* 1 when no client waits for a reply: none in flight, and none answered
 * but not yet written (replies reach the socket in the flush callback at
 * the end of a loop turn; a drain that stopped between the two would drop
 * them). */
static int
worker_idle(const struct worker *w)
{
    const struct client *c;
    TAILQ_FOREACH(c, &w->clients, next)
    if (c->nundone > 0 || c->npipeline > 0 || c->out_bytes > 0)
        return 0;
    /* A request waiting out a TRYAGAIN may be an orphan's (its client
     * gone), in no pipeline: it is still in flight. */
    return !router_timers_pending(w);
}

/* 1 when w has a listener for address a of the given kind (TLS ones
 * must also use the current context). */
static int
has_listener(struct worker *w, const struct sp_addr *a, struct tls_ctx *tls)
{
    char name[300];
    config_addr_format(a, name, sizeof(name));
    for (uint32_t i = 0; i < w->nlisteners; i++) {
        const struct listener *l = w->listeners[i];
        if (listener_tls(l) == tls && strcmp(name, listener_name(l)) == 0)
            return 1;
    }
    return 0;
}

static int
addr_listed(const struct sp_addr *addrs, size_t n, const char *name)
{
    char s[300];
    for (size_t j = 0; j < n; j++) {
        config_addr_format(&addrs[j], s, sizeof(s));
        if (strcmp(s, name) == 0)
            return 1;
    }
    return 0;
}

/* Open the configured addresses this worker does not listen on yet
 * (worker 0 only: it accepts for all, listener.c). */
static void
open_missing(struct worker *w, const struct sp_addr *addrs, size_t n,
             struct tls_ctx *tls)
{
    for (size_t j = 0; j < n; j++) {
        if (has_listener(w, &addrs[j], tls) || w->id > 0)
            continue;
        struct listener *l = listener_new(w, &addrs[j], tls);
        if (l != NULL)
            worker_loop_add_listener(w, l);
    }
}

/*
 * SIGHUP: open the newly configured listen and tls.listen addresses (a
 * TLS listener whose certificates changed is replaced: SO_REUSEPORT lets
 * the new socket bind first), then close the ones no longer wanted.
 * Connected clients stay.
 */
static void
worker_reload_listeners(struct worker *w)
{
    const struct config *c = w->conf;
    uint32_t before = w->nlisteners, k = 0;

    open_missing(w, c->listen, c->nlisten, NULL);
    open_missing(w, c->tls_listen, c->ntls_listen, w->next_tls);
    for (uint32_t i = 0; i < w->nlisteners; i++) {
        struct listener *l = w->listeners[i];
        int keep = i >= before;
        if (!keep && !listener_is_tls(l))
            keep = addr_listed(c->listen, c->nlisten, listener_name(l));
        else if (!keep)
            keep =
                listener_tls(l) == w->next_tls &&
                addr_listed(c->tls_listen, c->ntls_listen, listener_name(l));
        if (keep) {
            w->listeners[k++] = l;
            continue;
        }
        if (w->id == 0)
            log_notice("reload: no longer listening on %s%s", listener_name(l),
                       listener_is_tls(l) ? " (TLS)" : "");
        listener_free(l);
    }
    w->nlisteners = k;
}

/*
 * SIGHUP, in the worker's own thread, once w->conf is the new config:
 * rebuild what was sized or started from the old one (slow log ring,
 * replication poll, READONLY on replica connections, listeners).
 */
static void
worker_reload_apply(struct worker *w, const struct config *old)
{
    const struct config *c = w->conf;
    slowlog_resize(w->slowlog, c->slowlog_max_len);
    if (old->read_from == READ_MASTER && c->read_from != READ_MASTER)
        for (uint32_t i = w->map->nmasters; i < w->map->nnodes; i++)
            backend_set_readonly(w->map_srv[i]);
    /* The read decisions follow a new max_replica_lag at once. */
    worker_apply_repl(w);
    replpoll_conf(w);
    worker_reload_listeners(w);
}

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    char how = 'x';
    if (read(fd, &how, 1) == 1 && how == 'v') {
        view_serve(w);
        event_add(w->stop_ev, NULL);
        return;
    }
    if (how == 'r') {
        const struct config *old = w->conf;
        pthread_mutex_lock(&w->pub_lock);
        worker_set_conf(w, w->next_conf);
        pthread_mutex_unlock(&w->pub_lock);
        worker_reload_apply(w, old);
        dispatch_recheck_auth(w);
        event_add(w->stop_ev, NULL);
        return;
    }
    if (how != 'd' || w->conf->shutdown_grace_ms == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    /* Drain: refuse new clients (a load balancer sees the port close),
     * finish what is in flight, then stop (worker_tick_cb). */
    for (uint32_t i = 0; i < w->nlisteners; i++)
        listener_close(w->listeners[i]);
    w->drain_deadline_ms = sp_msec_now() + w->conf->shutdown_grace_ms;
    if (worker_idle(w))
        event_base_loopbreak(w->base);
    else
        event_add(w->stop_ev, NULL);
}

void
worker_loop_stop(struct worker *w, int drain)
{
    ssize_t n = write(w->stop_pipe[1], drain ? "d" : "x", 1);
    (void)n;
}

void
worker_loop_reload(struct worker *w, const struct config *conf,
                   struct tls_ctx *tls)
{
    pthread_mutex_lock(&w->pub_lock);
    w->next_conf = conf;
    w->next_tls = tls;
    pthread_mutex_unlock(&w->pub_lock);
    ssize_t n = write(w->stop_pipe[1], "r", 1);
    (void)n;
}

void
worker_loop_add_listener(struct worker *w, struct listener *l)
{
    w->listeners =
        sp_realloc(w->listeners, (w->nlisteners + 1) * sizeof(*w->listeners));
    w->listeners[w->nlisteners++] = l;
}

/* A random 40-hex-digit node id, new at each start (a proxy is stateless;
 * clients only need it to be stable while they are connected). */
static void
worker_make_id(struct worker *w)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t x = w->rand_state;
    for (int i = 0; i < 40; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w->proxy_id[i] = hex[x & 15];
    }
    w->proxy_id[40] = '\0';
}

struct worker *
worker_loop_new(const struct config *conf, int id, struct shared *shared)
{
    struct worker *w = sp_calloc(1, sizeof(*w));
    w->id = id;
    w->shared = shared;
    worker_set_conf(w, conf);
    request_pool_init(&w->reqs, w);
    w->install_map = worker_install_map;
    w->install_cmds = worker_install_cmds;
    w->cmds = shared_cmds(shared);
    w->cmdtab = w->cmds->table;
    w->cmds_seq = __atomic_load_n(&shared->cmds_seq, __ATOMIC_ACQUIRE);
    w->cmds_live = sp_calloc(1, sizeof(*w->cmds_live));
    w->reqs.live = w->cmds_live;
    w->client_ops = &dispatch_client_ops;
    /* No locks in the loop: only this worker's thread touches it; the
     * main thread stops it through a pipe. */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL || pipe2(w->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        if (w->base != NULL)
            event_base_free(w->base);
        sp_free(w);
        return NULL;
    }
    if (listener_inbox_init(w) != 0) {
        close(w->stop_pipe[0]);
        close(w->stop_pipe[1]);
        event_base_free(w->base);
        sp_free(w);
        return NULL;
    }
    w->stop_ev =
        event_new(w->base, w->stop_pipe[0], EV_READ, worker_stop_cb, w);
    event_add(w->stop_ev, NULL);
    /* The end-of-turn flush runs after the turn's I/O callbacks: it is
     * activated from them, so it queues behind the ones already active.
     * Events made after this init take the middle priority (nqueues / 2
     * = 1), the flush's own, on purpose: a flush one priority lower runs
     * only in a loop iteration of its own, an extra epoll_wait per turn
     * (callgrind: some +95 Ir per SET in libevent's loop, epoll_wait calls
     * doubled). stop_ev and the inbox, made before, have 0. */
    event_base_priority_init(w->base, 2);
    w->flush_ev = event_new(w->base, -1, 0, worker_flush_cb, w);
    event_priority_set(w->flush_ev, 1);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, worker_tick_cb, w);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(w->tick_ev, &tv);
    TAILQ_INIT(&w->clients);
    LIST_INIT(&w->router_timers);
    TAILQ_INIT(&w->dirty_clients);
    TAILQ_INIT(&w->dirty_conns);
    w->map = slotmap_new_empty();
    w->slot_scratch = sp_calloc(SLOT_COUNT, sizeof(*w->slot_scratch));
    w->rscratch = sp_malloc(RSCRATCH_SIZE);
    resp_req_init(&w->parser);
    /* Indexed by cmdtable_index(): room for every name the cluster may
     * teach (pages never written stay unallocated). */
    size_t ncmd = cmdtable_index_limit();
    w->cmd_calls = sp_calloc(ncmd, sizeof(*w->cmd_calls));
    w->slowlog = sp_malloc(sizeof(*w->slowlog));
    slowlog_init(w->slowlog, conf->slowlog_max_len, &shared->slowlog_ids);
    w->pub_cmd_calls = sp_calloc(ncmd, sizeof(*w->cmd_calls));
    w->big_counts = sp_calloc(2 * ncmd, sizeof(*w->big_counts));
    w->pub_big_counts = sp_calloc(2 * ncmd, sizeof(*w->big_counts));
    w->slot_calls = sp_calloc(SLOT_COUNT, sizeof(*w->slot_calls));
    w->cmd_lat = sp_calloc(ncmd * (LAT_BUCKETS + 2), sizeof(*w->cmd_lat));
    w->pub_cmd_lat = sp_calloc(ncmd * (LAT_BUCKETS + 2), sizeof(*w->cmd_lat));
    w->pub_slot_calls = sp_calloc(SLOT_COUNT, sizeof(*w->slot_calls));
    pthread_mutex_init(&w->pub_lock, NULL);
    /* Alive from birth: /healthz does not fail before the first tick. */
    w->pub.tick_ms = sp_msec_now();
    w->start_ms = (uint64_t)time(NULL) * 1000;
    w->mem_high =
        conf->max_memory != 0 ? membudget_high(conf->max_memory) : UINT64_MAX;
    w->rand_state = ((uint64_t)getpid() << 32) ^ sp_usec_now() ^
                    (0x9e3779b97f4a7c15ull * (uint64_t)(id + 1));
    worker_make_id(w);
    return w;
}

/* Adopt a map another worker published since our last look. */
static void
worker_adopt_map(struct worker *w)
{
    struct shared *sh = w->shared;
    if (__atomic_load_n(&sh->map_seq, __ATOMIC_ACQUIRE) == w->map_seq)
        return;
    pthread_mutex_lock(&sh->map_lock);
    struct slotmap *m = sh->map != NULL ? slotmap_get(sh->map) : NULL;
    w->map_seq = sh->map_seq;
    pthread_mutex_unlock(&sh->map_lock);
    if (m != NULL)
        worker_install_map(w, m);
}

/*
 * Recompute w->replica_ok for w's map from the latest published replica
 * sync status: a replica serves reads while its master's last answer
 * lists it online and at most max_replica_lag behind. Each worker
 * derives its own from worker 0's poll.
 */
static void
worker_apply_repl(struct worker *w)
{
    const struct slotmap *m = w->map;
    if (w->replica_ok == NULL)
        return;
    struct replstat *s = shared_replstat(w->shared);
    for (uint32_t i = 0; i < m->nnodes; i++)
        w->replica_ok[i] =
            (uint8_t)replstat_replica_fit(s, m, i, w->conf->max_replica_lag);
    replstat_put(s);
}

/* Adopt the replica sync status worker 0 published since our last look. */
static void
worker_adopt_repl(struct worker *w)
{
    struct shared *sh = w->shared;
    uint64_t seq = __atomic_load_n(&sh->repl_seq, __ATOMIC_ACQUIRE);
    if (seq == w->repl_seq)
        return;
    w->repl_seq = seq;
    worker_apply_repl(w);
}

static void
worker_install_map(struct worker *w, struct slotmap *m)
{
    struct server **srv = sp_calloc(m->nnodes ? m->nnodes : 1, sizeof(*srv));
    for (uint32_t i = 0; i < m->nnodes; i++)
        srv[i] = backend_get(w, m->nodes[i].host, m->nodes[i].port);
    /* Connect to every master now: the first requests do not wait for a
     * handshake, and the connection count does not creep up later. */
    for (uint32_t i = 0; i < m->nmasters; i++)
        backend_warm(srv[i]);
    int changed = !slotmap_same_routes(w->map, m);
    /* Replicas are not read from until a poll shows them in sync. */
    sp_free(w->replica_ok);
    w->replica_ok = sp_calloc(m->nnodes ? m->nnodes : 1, 1);
    if (w->conf->read_from != READ_MASTER)
        for (uint32_t i = m->nmasters; i < m->nnodes; i++)
            backend_set_readonly(srv[i]);
    if (w->hold_until_ms != 0 && m->nmasters > 0) {
        w->hold_until_ms = 0;
        client_wake_waiting(w);
    }
    sp_free(w->map_srv);
    w->map_srv = srv;
    slotmap_put(w->map);
    w->map = m;
    w->map_epoch++;
    worker_apply_repl(w);
    replpoll_map_installed(w);
    if (changed && w->id == 0)
        log_notice("topology: new slot map (epoch %llu): %u masters, %u "
                   "nodes, %u/%u slots covered",
                   (unsigned long long)w->map_epoch, m->nmasters, m->nnodes,
                   m->covered, SLOT_COUNT);
    cmdlearn_map_installed(w);
}

/* Adopt a command table another worker published since our last look. */
static void
worker_adopt_cmds(struct worker *w)
{
    struct shared *sh = w->shared;
    if (__atomic_load_n(&sh->cmds_seq, __ATOMIC_ACQUIRE) == w->cmds_seq)
        return;
    pthread_mutex_lock(&sh->map_lock);
    struct cmdsnap *s = cmdsnap_get(sh->cmds);
    w->cmds_seq = sh->cmds_seq;
    pthread_mutex_unlock(&sh->map_lock);
    worker_install_cmds(w, s);
}

/*
 * Make s (one ref, taken) the table new requests are looked up in. The
 * old one is retired, not freed: requests already dispatched keep
 * pointers into it (r->cmd, through a transaction's queue or a blocking
 * command that waits for hours); it goes once the last of them is freed
 * (worker_reap_cmds).
 */
static void
worker_install_cmds(struct worker *w, struct cmdsnap *s)
{
    w->cmds_old =
        sp_realloc(w->cmds_old, (w->ncmds_old + 1) * sizeof(*w->cmds_old));
    w->cmds_old[w->ncmds_old].snap = w->cmds;
    w->cmds_old[w->ncmds_old].live = w->cmds_live;
    w->ncmds_old++;
    w->cmds = s;
    w->cmdtab = s->table;
    w->cmds_live = sp_calloc(1, sizeof(*w->cmds_live));
    w->reqs.live = w->cmds_live;
    worker_reap_cmds(w);
}

/* Release the retired tables no live request points into. */
static void
worker_reap_cmds(struct worker *w)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->ncmds_old; i++) {
        struct cmds_retired *old = &w->cmds_old[i];
        if (*old->live > 0) {
            w->cmds_old[k++] = *old;
            continue;
        }
        cmdsnap_put(old->snap);
        sp_free(old->live);
    }
    w->ncmds_old = k;
}

void
worker_loop_start(struct worker *w)
{
    w->hold_until_ms = sp_msec_now() + STARTUP_HOLD_MS;
    /* The loop clock from the start: the first slot-map fetch runs from a
     * timer, before any flush or tick has read the clock, and a backend
     * stamped at 0 looked idle for ages (backend_reap closed the seed's
     * server at the first tick). */
    worker_clock(w);
    /* One fetcher per process: the others adopt what it publishes. */
    if (w->id == 0) {
        cmdlearn_init(w);
        replpoll_init(w);
    }
    topology_init(w);
}

void
worker_loop_io_init(struct worker *w)
{
    char err[200];
    if (w->shared->io_mode != IO_URING)
        return;
    w->io = iobatch_new(IO_BATCH_DEPTH, err, sizeof(err));
    if (w->io == NULL)
        log_warn("io: %s: this worker uses epoll", err);
}

void
worker_loop_free(struct worker *w)
{
    if (w == NULL)
        return;
    client_close_all(w);
    router_timers_free(w);
    cmdlearn_deinit(w);
    view_free_all(w);
    replpoll_deinit(w);
    topology_deinit(w);
    pin_free_all(w);
    for (uint32_t i = 0; i < w->nservers; i++)
        backend_free(w->servers[i]);
    backend_dns_free(w);
    /* Completions from failed backend requests may dirty clients. */
    client_flush_dirty(w);
    sp_free(w->servers);
    backend_creds_free(w);
    sp_free(w->map_srv);
    sp_free(w->replica_ok);
    sp_free(w->slot_scratch);
    sp_free(w->rscratch);
    iobatch_free(w->io);
    sp_free(w->rd_clients.items);
    sp_free(w->rd_conns.items);
    resp_req_deinit(&w->parser);
    sp_free(w->cmd_calls);
    slowlog_deinit(w->slowlog);
    sp_free(w->slowlog);
    sp_free(w->pub_cmd_calls);
    sp_free(w->big_counts);
    sp_free(w->pub_big_counts);
    bigkeys_deinit(&w->bk);
    bigkeys_deinit(&w->pub_bk);
    sp_free(w->slot_calls);
    sp_free(w->cmd_lat);
    sp_free(w->pub_cmd_lat);
    sp_free(w->pub_slot_calls);
    for (uint32_t i = 0; i < w->nnodes; i++)
        sp_free((char *)w->nodes[i].name);
    sp_free(w->nodes);
    sp_free(w->pub_nodes);
    pthread_mutex_destroy(&w->pub_lock);
    if (w->hk != NULL) {
        hotkeys_free(w->hk);
        hotkeys_free(w->pub_hk);
    }
    slotmap_put(w->map);
    request_pool_drain(&w->reqs);
    /* Requests still referenced at shutdown are not counted any more. */
    for (uint32_t i = 0; i < w->ncmds_old; i++) {
        cmdsnap_put(w->cmds_old[i].snap);
        sp_free(w->cmds_old[i].live);
    }
    sp_free(w->cmds_old);
    cmdsnap_put(w->cmds);
    sp_free(w->cmds_live);
    event_free(w->flush_ev);
    event_free(w->tick_ev);
    event_free(w->stop_ev);
    for (uint32_t i = 0; i < w->nlisteners; i++)
        listener_free(w->listeners[i]);
    sp_free(w->listeners);
    listener_inbox_free(w);
    close(w->stop_pipe[0]);
    close(w->stop_pipe[1]);
    event_base_free(w->base);
    sp_free(w);
}
