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
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "replstat.h"
#include "slotmap.h"
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

void
worker_set_conf(struct worker *w, const struct config *conf)
{
    w->conf = conf;
    worker_hotkeys_conf(w, conf);
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
