/* slotproxy - BSD-2-Clause
 *
 * The COMMAND fetcher (cmdlearn.h): one round at a time, every master of
 * the current map asked at once; the round's replies are kept until the
 * last one arrives, then turned into a snapshot and published.
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "backend.h"
#include "cmdlearn.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "config.h"
#include "log.h"
#include "request.h"
#include "slotmap.h"
#include "util.h"
#include "worker.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

static const char command_cmd[] = "*1\r\n$7\r\nCOMMAND\r\n";

/* One master's answer in the current round. */
struct learn_ask {
    struct cmdlearn *l;         /* NULL once the fetcher is gone */
    uint64_t round;             /* round it belongs to */
    size_t i;                   /* master index in that round */
};

struct cmdlearn {
    struct worker *w;           /* worker 0 */
    struct event *timer;        /* retry after a failed round */
    int timer_armed;            /* timer pending */
    uint64_t round;             /* current round (0: none yet) */
    size_t pending;             /* answers the round still waits for */
    size_t n;                   /* masters asked in the round */
    char **node;                /* their "host:port" */
    struct buf *reply;          /* their replies */
    struct learn_ask **asks;    /* the round's outstanding contexts */
    char why[400];              /* first failure of the round */
    uint32_t failures;          /* consecutive failed rounds */
};

static void
learn_clear_round(struct cmdlearn *l)
{
    for (size_t i = 0; i < l->n; i++) {
        sp_free(l->node[i]);
        buf_deinit(&l->reply[i]);
        if (l->asks[i] != NULL)
            l->asks[i]->l = NULL; /* its request frees it */
    }
    sp_free(l->node);
    sp_free(l->reply);
    sp_free(l->asks);
    l->node = NULL;
    l->reply = NULL;
    l->asks = NULL;
    l->n = l->pending = 0;
}

static void
learn_retry(struct cmdlearn *l)
{
    uint64_t delay = RETRY_MIN_MS;
    for (uint32_t i = 1; i < l->failures && delay < RETRY_MAX_MS; i++)
        delay *= 2;
    if (delay > RETRY_MAX_MS)
        delay = RETRY_MAX_MS;
    struct timeval tv = {(time_t)(delay / 1000),
                         (suseconds_t)((delay % 1000) * 1000)};
    l->timer_armed = 1;
    evtimer_add(l->timer, &tv);
}

/* Log what the masters disagree on, once per learned table. */
static void
learn_log(const struct cmdlearn *l, const struct cmdsnap *s,
          const struct cmdtable_notes *notes)
{
    for (size_t i = 0; i < notes->n; i++)
        log_notice("commands: %s", notes->lines[i]);
    if (notes->dropped > 0)
        log_notice("commands: %zu more differences not shown",
                   notes->dropped);
    log_notice("commands: learned %zu commands from %zu master%s (%zu "
               "command%s not learned: not alike on every master); %zu in "
               "the table", s->learned, l->n, l->n == 1 ? "" : "s",
               s->dropped, s->dropped == 1 ? "" : "s",
               cmdtable_count(s->table));
}

/* Every master answered: build, publish (or keep the current table). */
static void
learn_finish(struct cmdlearn *l)
{
    struct cmdtable_notes notes = {0};
    const char **rep = sp_calloc(l->n, sizeof(*rep));
    size_t *len = sp_calloc(l->n, sizeof(*len));
    struct cmdsnap *s = NULL;
    char err[300];

    for (size_t i = 0; i < l->n && l->why[0] == '\0'; i++) {
        rep[i] = l->reply[i].data + l->reply[i].pos;
        len[i] = buf_unread(&l->reply[i]);
    }
    if (l->why[0] == '\0') {
        s = cmdsnap_new(rep, len, (const char *const *)l->node, l->n,
                        l->w->shared->cmd_names, &notes, err, sizeof(err));
        if (s == NULL)
            snprintf(l->why, sizeof(l->why), "%s", err);
    }
    sp_free(rep);
    sp_free(len);
    if (s == NULL) {
        if (l->failures++ == 0)
            log_warn("commands: cannot learn the command table (%s); "
                     "keeping the current one, retrying", l->why);
        learn_clear_round(l);
        learn_retry(l);
        cmdtable_notes_free(&notes);
        return;
    }
    l->failures = 0;
    learn_log(l, s, &notes);
    cmdtable_notes_free(&notes);
    learn_clear_round(l);
    worker_set_cmds(l->w, s);
    /* The masters' replies (some 100-200 KB each) were parsed and freed:
     * give their pages back at the next ticks, or an idle proxy keeps
     * them resident. */
    l->w->mem_release_ticks = WORKER_RELEASE_TICKS;
}

static void
learn_on_done(struct request *r)
{
    struct learn_ask *a = r->data;
    struct cmdlearn *l = a->l;
    const char *d = r->rep.data + r->rep.pos;
    size_t n = buf_unread(&r->rep);

    if (l == NULL || a->round != l->round) {
        sp_free(a);
        return;
    }
    l->asks[a->i] = NULL;
    if (l->why[0] != '\0') {
        /* The round failed already: the rest only counts down. */
    } else if (n > CMDSNAP_MAX_REPLY) {
        snprintf(l->why, sizeof(l->why), "%s: COMMAND reply of %zu bytes "
                 "(limit %u)", l->node[a->i], n, CMDSNAP_MAX_REPLY);
    } else if (n == 0 || d[0] != '*') {
        snprintf(l->why, sizeof(l->why), "%s answered COMMAND with %.*s",
                 l->node[a->i], (int)SP_MIN(n > 2 ? n - 2 : n, 120), d);
    } else {
        buf_append(&l->reply[a->i], d, n);
    }
    sp_free(a);
    if (--l->pending == 0)
        learn_finish(l);
}

/* Ask every master of w's map COMMAND (a new round). */
static void
learn_start(struct cmdlearn *l)
{
    struct worker *w = l->w;
    const struct slotmap *m = w->map;

    learn_clear_round(l);
    l->round++;
    l->why[0] = '\0';
    l->n = l->pending = m->nmasters;
    l->node = sp_calloc(l->n, sizeof(*l->node));
    l->reply = sp_calloc(l->n, sizeof(*l->reply));
    l->asks = sp_calloc(l->n, sizeof(*l->asks));
    for (size_t i = 0; i < l->n; i++)
        l->node[i] = sp_strdup(w->map_srv[i]->name);
    /* Sends may fail at once (a node in backoff) and complete the round
     * inside the loop: the loop keeps to its own round. */
    uint64_t round = l->round;
    for (size_t i = 0; i < m->nmasters && l->round == round; i++) {
        struct learn_ask *a = sp_calloc(1, sizeof(*a));
        a->l = l;
        a->round = round;
        a->i = i;
        l->asks[i] = a;
        struct request *r = request_new(&w->reqs);
        buf_append(&r->req, command_cmd, sizeof(command_cmd) - 1);
        r->on_done = learn_on_done;
        r->data = a;
        r->deadline_ms = sp_msec_now() + w->conf->request_timeout_ms;
        backend_send(w->map_srv[i], r);
        request_put(r);
    }
}

/* 1 when the masters of w's map are those of the round out or, with none
 * out, those the current table was learned from. */
static int
learn_up_to_date(const struct cmdlearn *l)
{
    const struct worker *w = l->w;
    const struct slotmap *m = w->map;
    const char **names = sp_calloc(m->nmasters ? m->nmasters : 1,
                                   sizeof(*names));
    int same;

    for (uint32_t i = 0; i < m->nmasters; i++)
        names[i] = w->map_srv[i]->name;
    if (l->pending > 0) {
        same = l->n == m->nmasters;
        for (size_t i = 0; same && i < l->n; i++)
            same = strcmp(l->node[i], names[i]) == 0;
    } else {
        same = cmdsnap_same_masters(w->cmds, names, m->nmasters);
    }
    sp_free(names);
    return same;
}

void
cmdlearn_map_installed(struct worker *w)
{
    struct cmdlearn *l = w->learn;

    if (l == NULL || w->map->nmasters == 0 || learn_up_to_date(l))
        return;
    /* After a failure the timer decides when to ask again. */
    if (l->failures > 0 && l->timer_armed)
        return;
    learn_start(l);
}

static void
learn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct cmdlearn *l = arg;
    l->timer_armed = 0;
    if (l->w->map->nmasters > 0 && l->pending == 0)
        learn_start(l);
}

void
cmdlearn_init(struct worker *w)
{
    struct cmdlearn *l = sp_calloc(1, sizeof(*l));
    l->w = w;
    l->timer = evtimer_new(w->base, learn_timer_cb, l);
    w->learn = l;
}

void
cmdlearn_deinit(struct worker *w)
{
    struct cmdlearn *l = w->learn;
    if (l == NULL)
        return;
    learn_clear_round(l);
    event_free(l->timer);
    sp_free(l);
    w->learn = NULL;
}
