/* slotproxy - BSD-2-Clause
 *
 * The worker context: what every layer of the request path may use of
 * its worker without reaching up into the loop that drives it (that is
 * worker_loop.c, at the top): the end-of-turn flush mark, the loop-turn
 * clock, the published statistics, the slot map publication (installing
 * a map is the driver's, through its install_map hook).
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "iobatch.h"
#include "keyslot.h"
#include "replstat.h"
#include "slotmap.h"
#include "ttljitter.h"
#include "util.h"
#include "worker.h"

const uint32_t lat_bucket_us[LAT_BUCKETS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void
worker_read_cmd_lat(struct worker *w, uint64_t *lat)
{
    size_t n = cmdtable_index_limit() * (LAT_BUCKETS + 2);
    pthread_mutex_lock(&w->pub_lock);
    for (size_t i = 0; i < n; i++)
        lat[i] += w->pub_cmd_lat[i];
    pthread_mutex_unlock(&w->pub_lock);
}

void
worker_read_slots(struct worker *w, uint64_t *slots)
{
    pthread_mutex_lock(&w->pub_lock);
    for (uint32_t i = 0; i < SLOT_COUNT; i++)
        slots[i] += w->pub_slot_calls[i];
    pthread_mutex_unlock(&w->pub_lock);
}

void
worker_read_nodes(struct worker *w,
                  void (*fn)(void *arg, const struct node_stat *n), void *arg)
{
    pthread_mutex_lock(&w->pub_lock);
    for (uint32_t i = 0; i < w->pub_nnodes; i++)
        fn(arg, &w->pub_nodes[i]);
    pthread_mutex_unlock(&w->pub_lock);
}

uint32_t
worker_node_index(struct worker *w, const char *name)
{
    for (uint32_t i = 0; i < w->nnodes; i++)
        if (strcmp(w->nodes[i].name, name) == 0)
            return i;
    if (w->nnodes == w->nodes_cap) {
        w->nodes_cap = w->nodes_cap ? 2 * w->nodes_cap : 16;
        w->nodes = sp_realloc(w->nodes, w->nodes_cap * sizeof(*w->nodes));
    }
    memset(&w->nodes[w->nnodes], 0, sizeof(*w->nodes));
    w->nodes[w->nnodes].name = sp_strdup(name);
    return w->nnodes++;
}

void
worker_wake(struct worker *w)
{
    ssize_t n = write(w->stop_pipe[1], "v", 1);
    (void)n;
}

int
worker_id(const struct worker *w)
{
    return w->id;
}

/* Redis's PROTO_INLINE_MAX_SIZE. */
#define INLINE_MAX (64 * 1024)

/*
 * The hot-key sketches as conf sizes them: made, remade (counts lost) or
 * freed when monitor.hotkeys.sample or .k changed; the sampler restarts
 * with the rate. Runs before the worker starts or under its pub_lock
 * (the reload), so the readers of pub_hk never see it change.
 */
static void
worker_hotkeys_conf(struct worker *w, const struct config *conf)
{
    uint32_t rate = conf->hotkeys_sample, k = conf->hotkeys_k;
    if ((w->hk != NULL) == (rate != 0) && w->hk_sampler.rate == rate &&
        (rate == 0 || w->hk_k == k))
        return;
    if (w->hk != NULL) {
        hotkeys_free(w->hk);
        hotkeys_free(w->pub_hk);
        w->hk = w->pub_hk = NULL;
    }
    hotkeys_sampler_init(&w->hk_sampler, rate,
                         sp_usec_now() ^ ((uint64_t)w->id << 48));
    if (rate == 0)
        return;
    uint64_t now = sp_msec_now();
    w->hk = hotkeys_new(k, rate, HOTKEYS_WINDOW_MS_DEFAULT, now);
    w->pub_hk = hotkeys_new(k, rate, HOTKEYS_WINDOW_MS_DEFAULT, now);
    w->hk_k = k;
}

size_t
shared_hotkeys(struct shared *sh, struct hotkeys_item *out, size_t max,
               int *hide)
{
    const struct hotkeys **copies =
        sp_calloc((size_t)sh->nworkers + 1, sizeof(*copies));
    size_t n = 0, got;
    for (int i = 0; i < sh->nworkers; i++) {
        struct worker *w = sh->workers[i];
        pthread_mutex_lock(&w->pub_lock);
        if (i == 0 && hide != NULL)
            *hide = w->conf->hotkeys_hide_keys != 0;
        if (w->pub_hk != NULL) {
            struct hotkeys *c = hotkeys_new(w->hk_k, w->hk_sampler.rate,
                                            HOTKEYS_WINDOW_MS_DEFAULT, 0);
            hotkeys_copy(c, w->pub_hk);
            copies[n++] = c;
        }
        pthread_mutex_unlock(&w->pub_lock);
    }
    got = hotkeys_merge(copies, n, out, max);
    for (size_t i = 0; i < n; i++)
        hotkeys_free((struct hotkeys *)copies[i]);
    sp_free(copies);
    return got;
}

int
worker_jitter_encode(struct worker *w, struct buf *out,
                     const struct command *cmd, const struct resp_req *p,
                     const char *base)
{
    const struct config *conf = w->conf;
    if (conf->jitter_percent == 0)
        return 0;
    struct ttljitter_conf jc = {conf->jitter_percent, conf->jitter_min_ttl_ms};
    enum ttljitter_cmd kind = ttljitter_command(cmd->name, strlen(cmd->name));
    if (kind == TTLJ_NONE || !ttljitter_apply(&jc, kind, base, p->argv,
                                              p->argc, worker_rand(w), out))
        return 0;
    w->stats.ttl_jittered++;
    return 1;
}

void __attribute__((noinline))
worker_hot_key(struct worker *w, const char *key, size_t len, uint16_t slot)
{
    hotkeys_add(w->hk, key, len, slot, worker_now_us(w) / 1000);
}

/* The big-keys thresholds of conf, and the gates the request and reply
 * paths test (one compare each). */
static void
worker_bigkeys_conf(struct worker *w, const struct config *conf)
{
    struct bigkeys_thresholds t = {conf->big_request_bytes,
                                   conf->big_reply_bytes,
                                   conf->big_reply_elements};
    uint64_t gate = t.reply_bytes != 0 ? t.reply_bytes : UINT64_MAX;
    /* More than E elements take more than 3E bytes ("_\r\n" is the
     * shortest): a shorter reply need not have its header read. */
    if (t.reply_elements != 0 && 3 * t.reply_elements < gate)
        gate = 3 * t.reply_elements;
    w->big_thr = t;
    w->big_reply_gate = gate;
    w->big_request_gate = t.request_bytes != 0 ? t.request_bytes : UINT64_MAX;
}

/* Record ev (of client command cmd_index, -1: none) in w's ring, made at
 * the first, and count it for the next publish. */
static void
worker_big_add(struct worker *w, int32_t cmd_index,
               const struct bigkeys_event *ev)
{
    if (w->bk.cap == 0)
        bigkeys_resize(&w->bk, BIGKEYS_LEN_DEFAULT);
    bigkeys_add(&w->bk, ev);
    if (cmd_index >= 0)
        w->big_counts[(size_t)cmd_index * 2 + ev->dir]++;
    w->bk_dirty = 1;
}

/* Wall-clock milliseconds (the ring's entries show the time of day). */
static uint64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
worker_big_request(struct worker *w, const struct request *r,
                   const struct command *cmd, const struct resp_req *p,
                   const char *base)
{
    int key = -1;
    char node[BIGKEYS_NODE_MAX] = "";
    if (command_get_keys(cmd, p->argc, p->argv, base, &key, 1) <= 0)
        key = -1;
    if (key >= 0) {
        const struct resp_arg *k = &p->argv[key];
        int n = slotmap_master_of(w->map, keyslot(base + k->off, k->len));
        if (n >= 0)
            snprintf(node, sizeof(node), "%s:%u", w->map->nodes[n].host,
                     w->map->nodes[n].port);
    }
    struct bigkeys_event ev = {
        .unix_ms = wall_ms(),
        .dir = BIGKEYS_REQUEST,
        .command = cmd->fullname,
        .key = key >= 0 ? base + p->argv[key].off : NULL,
        .key_len = key >= 0 ? p->argv[key].len : 0,
        .bytes = p->len,
        .elements = p->argc,
        .node = node,
    };
    if (bigkeys_classify(&w->big_thr, BIGKEYS_REQUEST, p->len, -1) != 0)
        worker_big_add(w, r->cmd_index, &ev);
}

void
worker_big_reply(struct worker *w, const struct request *r, const char *data,
                 size_t len, const char *node)
{
    int64_t elements = resp_reply_elements(data, len);
    if (r->cmd_index < 0 || r->cmd == NULL ||
        bigkeys_classify(&w->big_thr, BIGKEYS_REPLY, len, elements) == 0)
        return;
    /* The key from the request's own bytes (multibulk as sent): parsed
     * again, as this is rare, rather than kept for every request. */
    struct resp_req q;
    struct resp_limits lim = {.max_request_size = UINT64_MAX,
                              .max_multibulk = UINT32_MAX,
                              .max_inline = UINT32_MAX};
    int key = -1;
    resp_req_init(&q);
    if (resp_req_parse(&q, r->req.data + r->req.pos, buf_unread(&r->req),
                       &lim) == RESP_DONE &&
        command_get_keys(r->cmd, q.argc, q.argv, r->req.data + r->req.pos,
                         &key, 1) <= 0)
        key = -1;
    struct bigkeys_event ev = {
        .unix_ms = wall_ms(),
        .dir = BIGKEYS_REPLY,
        .command = r->cmd->fullname,
        .key = key >= 0 ? r->req.data + r->req.pos + q.argv[key].off : NULL,
        .key_len = key >= 0 ? q.argv[key].len : 0,
        .bytes = len,
        .elements = elements,
        .node = node,
    };
    worker_big_add(w, r->cmd_index, &ev);
    resp_req_deinit(&q);
}

void
worker_read_big(struct worker *w, uint64_t *counts)
{
    size_t n = 2 * cmdtable_index_limit();
    pthread_mutex_lock(&w->pub_lock);
    for (size_t i = 0; i < n; i++)
        counts[i] += w->pub_big_counts[i];
    pthread_mutex_unlock(&w->pub_lock);
}

void
shared_bigkeys(struct shared *sh, struct buf *out, long long count)
{
    struct bigkeys *copies =
        sp_calloc((size_t)sh->nworkers + 1, sizeof(*copies));
    const struct bigkeys **rings =
        sp_calloc((size_t)sh->nworkers + 1, sizeof(*rings));
    for (int i = 0; i < sh->nworkers; i++) {
        struct worker *w = sh->workers[i];
        pthread_mutex_lock(&w->pub_lock);
        bigkeys_copy(&copies[i], &w->pub_bk);
        pthread_mutex_unlock(&w->pub_lock);
        rings[i] = &copies[i];
    }
    bigkeys_reply_merged(rings, (size_t)sh->nworkers, out, count);
    for (int i = 0; i < sh->nworkers; i++)
        bigkeys_deinit(&copies[i]);
    sp_free(rings);
    sp_free(copies);
}

void
worker_set_conf(struct worker *w, const struct config *conf)
{
    w->conf = conf;
    worker_hotkeys_conf(w, conf);
    worker_bigkeys_conf(w, conf);
    for (int authed = 0; authed <= 1; authed++)
        w->req_limits[authed] = (struct resp_limits){
            .max_request_size = conf->max_request_size,
            .max_multibulk = conf->max_multibulk,
            .max_inline = INLINE_MAX,
            /* Before AUTH (only when auth is configured: clients are
             * authed from the start otherwise), Redis's tight caps. */
            .unauthenticated = !authed,
        };
}

uint64_t
worker_clock(struct worker *w)
{
    w->now_us = sp_usec_now();
    return w->now_us;
}

void
worker_read_stats(struct worker *w, struct worker_stats *out,
                  uint64_t *cmd_calls)
{
    pthread_mutex_lock(&w->pub_lock);
    *out = w->pub;
    size_t ncmd = cmd_calls != NULL ? cmdtable_index_limit() : 0;
    for (size_t i = 0; i < ncmd; i++)
        cmd_calls[i] += w->pub_cmd_calls[i];
    pthread_mutex_unlock(&w->pub_lock);
}

void
worker_schedule_flush(struct worker *w)
{
    if (!w->flush_pending) {
        w->flush_pending = 1;
        event_active(w->flush_ev, EV_TIMEOUT, 0);
    }
}

void
worker_io_queue(struct worker *w, struct io_readq *q, void *p)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->items = sp_realloc(q->items, q->cap * sizeof(*q->items));
    }
    q->items[q->n++] = p;
    worker_schedule_flush(w);
}

void
worker_io_forget(struct worker *w, struct io_readq *q, void *p)
{
    for (uint32_t i = 0; i < q->n; i++)
        if (q->items[i] == p)
            q->items[i] = NULL;
    if (w->io != NULL)
        iobatch_forget(w->io, p);
}

void
shared_init(struct shared *sh)
{
    memset(sh, 0, sizeof(*sh));
    pthread_mutex_init(&sh->map_lock, NULL);
    blocked_init(&sh->blocked);
    /* Until a master answers COMMAND: the built-in table. */
    sh->cmd_names = cmdtable_names_new();
    sh->cmds = cmdsnap_new(NULL, NULL, NULL, 0, sh->cmd_names, NULL, NULL, 0);
}

void
shared_deinit(struct shared *sh)
{
    if (sh->map != NULL)
        slotmap_put(sh->map);
    cmdsnap_put(sh->cmds);
    replstat_put(sh->repl);
    cmdtable_names_free(sh->cmd_names);
    pthread_mutex_destroy(&sh->map_lock);
    blocked_deinit(&sh->blocked);
}

struct cmdsnap *
shared_cmds(struct shared *sh)
{
    pthread_mutex_lock(&sh->map_lock);
    struct cmdsnap *s = cmdsnap_get(sh->cmds);
    pthread_mutex_unlock(&sh->map_lock);
    return s;
}

void
shared_set_replstat(struct shared *sh, struct replstat *s)
{
    pthread_mutex_lock(&sh->map_lock);
    replstat_put(sh->repl);
    sh->repl = s;
    __atomic_add_fetch(&sh->repl_seq, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sh->map_lock);
}

struct replstat *
shared_replstat(struct shared *sh)
{
    pthread_mutex_lock(&sh->map_lock);
    struct replstat *s = sh->repl != NULL ? replstat_get(sh->repl) : NULL;
    pthread_mutex_unlock(&sh->map_lock);
    return s;
}

void
worker_set_cmds(struct worker *w, struct cmdsnap *s)
{
    struct shared *sh = w->shared;
    pthread_mutex_lock(&sh->map_lock);
    cmdsnap_put(sh->cmds);
    sh->cmds = cmdsnap_get(s);
    w->cmds_seq = __atomic_add_fetch(&sh->cmds_seq, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sh->map_lock);
    w->install_cmds(w, s);
}

void
worker_set_map(struct worker *w, struct slotmap *m)
{
    struct shared *sh = w->shared;
    pthread_mutex_lock(&sh->map_lock);
    if (sh->map != NULL)
        slotmap_put(sh->map);
    sh->map = slotmap_get(m);
    w->map_seq = __atomic_add_fetch(&sh->map_seq, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sh->map_lock);
    w->install_map(w, m);
}
