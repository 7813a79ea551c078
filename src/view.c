/* slotproxy - BSD-2-Clause
 *
 * One view over all workers (view.h). A view is a job with one part per
 * worker. The parts of the other workers travel through their mailboxes:
 * a lock-free stack each (pushed with a compare-and-swap by any thread,
 * taken whole by its worker), with a byte on the worker's command pipe to
 * wake it. A part is written only by the worker that answers it, then
 * marked done (release); the asker reads only parts marked done
 * (acquire). The job is refcounted: the asker holds one reference and
 * every posted part one until answered, so a part answered after the
 * asker gave up (timeout, client gone) still has its job to write into.
 */
#include "build_config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client.h"
#include "log.h"
#include "request.h"
#include "slowlog.h"
#include "util.h"
#include "view.h"
#include "worker.h"

/* How long the asker waits for the other workers' parts. Each answers in
 * its next loop turn; one that takes this long has stopped or hangs. */
#define VIEW_TIMEOUT_MS 1000

struct view_part {
    struct view_part *next;        /* link in the answering worker's
                                     * mailbox */
    struct view_job *job;          /* the view it is a part of */
    uint8_t done;                  /* answered (atomic: release by the
                                     * answering worker, acquire by the
                                     * asker) */
    struct buf text;               /* CLIENT LIST: the worker's lines */
    struct slowlog_entry *entries; /* SLOWLOG GET: copies, newest first */
    uint32_t nentries;
    uint64_t len; /* SLOWLOG LEN */
};

struct view_job {
    struct view_job *next; /* the asker's list of waiting views */
    struct request *r;     /* the request answered (one ref; the
                                     * asker's thread only) */
    enum view_kind kind;
    long long count;      /* SLOWLOG GET: entries (-1: all) */
    uint64_t deadline_ms; /* answer with what came by then */
    int refs;             /* asker + parts posted and not yet
                                     * answered (atomic) */
    int pending;          /* parts not yet answered (atomic) */
    struct worker *asker; /* woken when pending reaches 0 */
    uint32_t nparts;      /* one per worker */
    struct view_part parts[];
};

void
view_client_line(struct buf *b, const struct client *c, uint64_t now_ms)
{
    const struct client_ext *x = c->ext;
    struct client_laddr la;
    client_local_addr(c, &la);
    buf_printf(b,
               "id=%llu addr=%s laddr=%s:%u fd=%d name=%s age=%llu "
               "idle=%llu flags=%s db=0 cmd=NULL resp=%d lib-name=%s "
               "lib-ver=%s\n",
               (unsigned long long)c->id, c->addr, la.host, la.port, c->fd,
               x && x->name ? x->name : "",
               (unsigned long long)((now_ms - c->created_ms) / 1000),
               (unsigned long long)((now_ms - c->last_ms) / 1000),
               x && x->pins.blocked ? "b" : "N", c->resp3 ? 3 : 2,
               x && x->lib_name ? x->lib_name : "",
               x && x->lib_ver ? x->lib_ver : "");
}

/* Fill p from w's own state, in w's thread. */
static void
part_answer(struct worker *w, struct view_part *p)
{
    const struct view_job *j = p->job;
    switch (j->kind) {
    case VIEW_SLOWLOG_GET: {
        uint32_t max = w->slowlog->len;
        if (j->count >= 0 && (uint64_t)j->count < max)
            max = (uint32_t)j->count;
        p->entries = sp_calloc(max ? max : 1, sizeof(*p->entries));
        p->nentries = slowlog_copy(w->slowlog, max, p->entries);
        break;
    }
    case VIEW_SLOWLOG_LEN:
        p->len = w->slowlog->len;
        break;
    case VIEW_SLOWLOG_RESET:
        slowlog_reset(w->slowlog);
        break;
    case VIEW_CLIENT_LIST: {
        uint64_t now = sp_msec_now();
        const struct client *c;
        TAILQ_FOREACH(c, &w->clients, next)
        view_client_line(&p->text, c, now);
        break;
    }
    }
}

static void
job_put(struct view_job *j)
{
    if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (uint32_t i = 0; i < j->nparts; i++) {
        buf_deinit(&j->parts[i].text);
        if (j->parts[i].entries != NULL)
            slowlog_entries_free(j->parts[i].entries, j->parts[i].nentries);
    }
    sp_free(j);
}

/* 1 when part i is in: answered, and so readable by the asker. */
static int
part_in(const struct view_job *j, uint32_t i)
{
    return __atomic_load_n(&j->parts[i].done, __ATOMIC_ACQUIRE);
}

static int
entry_newer(const void *a, const void *b)
{
    const struct slowlog_entry *x = *(const struct slowlog_entry *const *)a;
    const struct slowlog_entry *y = *(const struct slowlog_entry *const *)b;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

/* SLOWLOG GET over the parts in: newest first by the proxy-wide id. */
static void
reply_slowlog(struct view_job *j, struct buf *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < j->nparts; i++)
        n += part_in(j, i) ? j->parts[i].nentries : 0;
    const struct slowlog_entry **all = sp_calloc(n ? n : 1, sizeof(*all));
    n = 0;
    for (uint32_t i = 0; i < j->nparts; i++)
        for (uint32_t k = 0; part_in(j, i) && k < j->parts[i].nentries; k++)
            all[n++] = &j->parts[i].entries[k];
    qsort(all, n, sizeof(*all), entry_newer);
    if (j->count >= 0 && (uint64_t)j->count < n)
        n = (uint32_t)j->count;
    buf_add_array(out, n);
    for (uint32_t i = 0; i < n; i++)
        slowlog_entry_reply(out, all[i]);
    sp_free(all);
}

struct line {
    uint64_t id;   /* the client id it starts with */
    const char *p; /* the line, newline included */
    size_t len;
};

static int
line_before(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* CLIENT LIST over the parts in: one bulk string, lines by client id. */
static void
reply_clients(struct view_job *j, struct buf *out)
{
    size_t n = 0, cap = 16, total = 0;
    struct line *lines = sp_calloc(cap, sizeof(*lines));
    for (uint32_t i = 0; i < j->nparts; i++) {
        if (!part_in(j, i))
            continue;
        const struct buf *t = &j->parts[i].text;
        for (size_t at = 0; at < t->len;) {
            const char *p = t->data + at;
            const char *nl = memchr(p, '\n', t->len - at);
            size_t len = nl ? (size_t)(nl - p) + 1 : t->len - at;
            if (n == cap)
                lines = sp_realloc(lines, (cap *= 2) * sizeof(*lines));
            lines[n++] = (struct line){strtoull(p + 3, NULL, 10), p, len};
            total += len;
            at += len;
        }
    }
    qsort(lines, n, sizeof(*lines), line_before);
    struct buf body;
    buf_init(&body);
    buf_reserve(&body, total + 1);
    for (size_t i = 0; i < n; i++)
        buf_append(&body, lines[i].p, lines[i].len);
    buf_add_verbatim(out, body.data ? body.data : "", body.len,
                     request_resp3(j->r));
    buf_deinit(&body);
    sp_free(lines);
}

/* Merge the parts marked done into j's request and complete it (a
 * client that left gets nothing: its request is an orphan). */
static void
job_finish(struct view_job *j)
{
    struct request *r = j->r;
    uint64_t len = 0;
    uint32_t missing = 0;
    for (uint32_t i = 0; i < j->nparts; i++) {
        if (part_in(j, i))
            len += j->parts[i].len;
        else
            missing++; /* its worker may still be writing it */
    }
    if (missing > 0)
        log_warn("view: %u worker%s did not answer within %d ms; the "
                 "answer covers the others",
                 missing, missing > 1 ? "s" : "", VIEW_TIMEOUT_MS);
    switch (j->kind) {
    case VIEW_SLOWLOG_GET:
        reply_slowlog(j, &r->rep);
        break;
    case VIEW_SLOWLOG_LEN:
        buf_add_int(&r->rep, (long long)len);
        break;
    case VIEW_SLOWLOG_RESET:
        buf_append_str(&r->rep, "+OK\r\n");
        break;
    case VIEW_CLIENT_LIST:
        reply_clients(j, &r->rep);
        break;
    }
    request_complete(r);
    request_put(r);
    j->r = NULL;
}

/* Push p onto w's mailbox (any thread) and wake w. */
static void
mailbox_post(struct worker *w, struct view_part *p)
{
    p->next = __atomic_load_n(&w->view_inbox, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&w->view_inbox, &p->next, p, 1,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    worker_wake(w);
}

void
view_start(struct worker *w, struct request *r, enum view_kind kind,
           long long count)
{
    struct shared *sh = w->shared;
    uint32_t n = sh->nworkers > 0 ? (uint32_t)sh->nworkers : 1;
    struct view_job *j = sp_calloc(1, sizeof(*j) + n * sizeof(j->parts[0]));
    j->r = request_get(r);
    j->kind = kind;
    j->count = count;
    j->deadline_ms = sp_msec_now() + VIEW_TIMEOUT_MS;
    j->asker = w;
    j->nparts = n;
    j->refs = (int)n; /* the asker's, and one per other worker's part */
    j->pending = (int)n - 1;
    for (uint32_t i = 0; i < n; i++) {
        j->parts[i].job = j;
        buf_init(&j->parts[i].text);
    }
    /* Our own part now; shared->workers is unset only before start-up
     * finished, when there is no other worker to ask. */
    uint32_t self = sh->workers != NULL ? (uint32_t)w->id : 0;
    part_answer(w, &j->parts[self]);
    j->parts[self].done = 1;
    if (n == 1) {
        job_finish(j);
        job_put(j);
        return;
    }
    j->next = w->view_jobs;
    w->view_jobs = j;
    for (uint32_t i = 0; i < n; i++)
        if (i != self)
            mailbox_post(sh->workers[i], &j->parts[i]);
}

/* Answer every part in w's mailbox. */
static void
mailbox_answer(struct worker *w)
{
    struct view_part *p =
        __atomic_exchange_n(&w->view_inbox, NULL, __ATOMIC_ACQUIRE);
    while (p != NULL) {
        struct view_part *next = p->next;
        struct view_job *j = p->job;
        part_answer(w, p);
        __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
        if (__atomic_sub_fetch(&j->pending, 1, __ATOMIC_ACQ_REL) == 0)
            worker_wake(j->asker);
        job_put(j);
        p = next;
    }
}

void
view_serve(struct worker *w)
{
    mailbox_answer(w);
    uint64_t now = w->view_jobs != NULL ? sp_msec_now() : 0;
    struct view_job **at = &w->view_jobs;
    while (*at != NULL) {
        struct view_job *j = *at;
        if (__atomic_load_n(&j->pending, __ATOMIC_ACQUIRE) > 0 &&
            now < j->deadline_ms) {
            at = &j->next;
            continue;
        }
        *at = j->next;
        job_finish(j);
        job_put(j);
    }
}

void
view_free_all(struct worker *w)
{
    struct view_part *p =
        __atomic_exchange_n(&w->view_inbox, NULL, __ATOMIC_ACQUIRE);
    while (p != NULL) {
        struct view_part *next = p->next;
        job_put(p->job);
        p = next;
    }
    while (w->view_jobs != NULL) {
        struct view_job *j = w->view_jobs;
        w->view_jobs = j->next;
        request_put(j->r);
        job_put(j);
    }
}
