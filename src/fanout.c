/* slotproxy - BSD-2-Clause
 *
 * Split and merge. A parent request (in the client's pipeline) owns an
 * array of fragments, one per distinct slot; each fragment holds a
 * reference on its parent, so the parent outlives a client that leaves
 * mid-request. Fragments are ordinary routed requests: a MOVED or ASK on
 * one of them is followed for that fragment alone.
 *
 * Merging: MGET rebuilds one array in the original key order, MSET answers
 * +OK when every fragment did, the others (DEL, UNLINK, EXISTS, TOUCH) sum
 * the fragments' integers. Any fragment error makes the whole reply that
 * error (other fragments' writes may already have happened: a cluster has
 * no cross-slot atomicity; see README).
 */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "command.h"
#include "config.h"
#include "errors.h"
#include "fanout.h"
#include "merge.h"
#include "request.h"
#include "resp.h"
#include "router.h"
#include "slotmap.h"
#include "util.h"
#include "worker.h"

#define FANOUT_INLINE 16

struct fanout {
    struct request *parent;         /* the client's request */
    struct request **frags;         /* one per slot (we hold a ref each) */
    uint32_t nfrags;
    uint32_t pending;               /* fragments not yet done */
    uint32_t nkeys;
    uint32_t *key_frag;             /* key i -> its fragment */
    uint32_t *key_pos;              /* key i -> its index in the fragment */
    int kind;                       /* enum cmd_merge */
    uint32_t scan_master;           /* CMD_MERGE_SCAN: master being scanned */
    uint32_t nmasters;              /* CMD_MERGE_SCAN: masters in the map */
    struct buf info;                /* CMD_MERGE_INFO: the proxy's sections */
    uint64_t reply_bytes;           /* fragments' reply bytes so far */
    int64_t charged;                /* bytes charged to the worker's memory
                                     * budget (fragments and their replies) */
    char name_hdr[40];              /* the command name as a RESP bulk */
    uint8_t name_hdr_len;
    /* Small fan-outs (the common MGET of a few keys) use these instead of
     * allocating: no malloc per request. */
    struct request *frags_in[FANOUT_INLINE];
    uint32_t key_frag_in[FANOUT_INLINE];
    uint32_t key_pos_in[FANOUT_INLINE];
};


/* Charge delta bytes held by f to its worker's memory budget. */
static void
fanout_charge(struct fanout *f, struct worker *w, int64_t delta)
{
    f->charged += delta;
    memacct_add(&w->mem, &w->shared->mem, delta);
}

static void
fanout_free(struct fanout *f)
{
    if (f->charged != 0)
        fanout_charge(f, f->parent->w, -f->charged);
    for (uint32_t i = 0; i < f->nfrags; i++)
        request_put(f->frags[i]);
    if (f->frags != f->frags_in)
        sp_free(f->frags);
    if (f->key_frag != f->key_frag_in)
        sp_free(f->key_frag);
    if (f->key_pos != f->key_pos_in)
        sp_free(f->key_pos);
    buf_deinit(&f->info);
    sp_free(f);
}

/* The reply when the fragments' replies outgrow clients.max_fanout_reply:
 * refuse rather than build a reply that could exhaust memory (KEYS * on a
 * big cluster). */
static void
fanout_too_big(struct request *p)
{
    p->rep.pos = p->rep.len = 0;
    buf_printf(&p->rep, "-ERR slotproxy: reply to '%s' exceeds "
               "clients.max_fanout_reply (%llu bytes); use SCAN or "
               "fewer keys\r\n", p->cmd ? p->cmd->fullname : "?",
               (unsigned long long)p->w->conf->max_fanout_reply);
}

/* Complete the parent with the reply built in p->rep and free f. */
static void
fanout_finish(struct fanout *f)
{
    struct request *p = f->parent;
    p->data = NULL;
    fanout_free(f);
    request_complete(p);
    request_put(p); /* the fragments' reference */
}

/* The fragments' replies as merge.c reads them (frags: room for
 * f->nfrags); *bytes gets their total (a bound on the merged reply), and
 * the result says whether any fragment answered an error (or nothing):
 * one pass, so the common merge looks at each fragment once. */
static int
fanout_merge_in(struct fanout *f, struct merge_frag *frags,
                struct merge_in *in, uint64_t *bytes)
{
    uint64_t total = 0;
    int errors = 0;

    for (uint32_t i = 0; i < f->nfrags; i++) {
        const struct buf *b = &f->frags[i]->rep;
        frags[i].data = b->data + b->pos;
        frags[i].len = buf_unread(b);
        frags[i].nkeys = f->frags[i]->req_nkeys;
        total += frags[i].len;
        errors |= frags[i].len == 0 || frags[i].data[0] == '-';
    }
    *bytes = total;
    *in = (struct merge_in){
        .frags = frags,
        .nfrags = f->nfrags,
        .key_frag = f->key_frag,
        .key_pos = f->key_pos,
        .nkeys = f->nkeys,
        .scan_master = f->scan_master,
        .nmasters = f->nmasters,
        .info = &f->info,
        .req = f->parent->req.data + f->parent->req.pos,
        .req_len = buf_unread(&f->parent->req),
    };
    return errors;
}

static void
fanout_merge(struct fanout *f)
{
    struct request *p = f->parent;
    struct merge_frag frags_in[FANOUT_INLINE];
    struct merge_frag *frags = f->nfrags <= FANOUT_INLINE
        ? frags_in : sp_malloc(sizeof(*frags) * f->nfrags);
    struct merge_in in;
    uint64_t bytes;
    int rc = 0;

    const struct merge_frag *err = fanout_merge_in(f, frags, &in, &bytes)
        ? merge_first_error(&in) : NULL;
    p->rep.pos = p->rep.len = 0;
    if (err == NULL && bytes > p->w->conf->max_fanout_reply)
        fanout_too_big(p);
    else if (err != NULL)
        buf_append(&p->rep, err->data, err->len);
    else
        rc = merge_replies(f->kind, &in, &p->rep);
    if (rc != 0) {
        p->rep.pos = p->rep.len = 0;
        buf_append_str(&p->rep, "-ERR slotproxy: unexpected reply from a "
                                "backend to a fan-out fragment\r\n");
    }
    if (frags != frags_in)
        sp_free(frags);
    fanout_finish(f);
}

/*
 * The fragments' replies passed clients.max_fanout_reply before all of
 * them came in: answer the error now and drop what was buffered. The
 * fragments still in flight are detached (no owner, no hook); their
 * backends drop the replies when they come and put the last reference.
 */
static void
fanout_fail_early(struct fanout *f)
{
    for (uint32_t i = 0; i < f->nfrags; i++) {
        struct request *fr = f->frags[i];
        if (!fr->done) {
            fr->on_done = NULL;
            fr->data = NULL;
        }
        buf_deinit(&fr->rep);
    }
    f->pending = 0;
    fanout_too_big(f->parent);
    fanout_finish(f);
}

static void
fanout_frag_done(struct request *fr)
{
    struct fanout *f = fr->data;
    struct worker *w = f->parent->w;
    /* Counted as they come: the budget sees the merge grow, and a merge
     * that can only end in the size error stops growing at once. */
    f->reply_bytes += buf_unread(&fr->rep);
    fanout_charge(f, w, (int64_t)fr->rep.cap);
    if (f->reply_bytes > w->conf->max_fanout_reply && f->pending > 1) {
        fanout_fail_early(f);
        return;
    }
    if (--f->pending == 0)
        fanout_merge(f);
}

/* Decimal digits of v. */
static inline uint32_t
digits_u32(uint32_t v)
{
    uint32_t d = 1;
    for (; v >= 100; v /= 100)
        d += 2;
    return d + (v >= 10);
}

/* Append one argument: the client's own "$<len>\r\n<bytes>\r\n" when it
 * is there in front of the bytes (a multibulk request), else encoded. The
 * header's digits are checked: after an inline request was unquoted in
 * place, the bytes before an argument can be anything. */
static void
frag_add_arg(struct buf *out, const char *base, const struct resp_arg *a)
{
    uint32_t hdr = digits_u32(a->len) + 3;

    if (a->off >= hdr && base[a->off - 2] == '\r' &&
        base[a->off - 1] == '\n' && base[a->off + a->len] == '\r') {
        const char *h = base + a->off - hdr;
        uint32_t v = 0, i;

        for (i = 1; i < hdr - 2; i++) {
            uint32_t d = (uint32_t)(unsigned char)h[i] - '0';
            if (d > 9)
                break;
            v = v * 10 + d;
        }
        if (h[0] == '$' && i == hdr - 2 && v == a->len) {
            buf_append(out, h, hdr + a->len + 2);
            return;
        }
    }
    buf_add_bulk(out, base + a->off, a->len);
}

/* "$<len>\r\n<name>\r\n" into out (sized for any command name); returns
 * its length. Once per fan-out, without printf. */
static uint8_t
name_bulk(char *out, const char *name)
{
    size_t n = strlen(name), at = 0;

    SP_ASSERT(n + 7 <= sizeof(((struct fanout *)0)->name_hdr));
    out[at++] = '$';
    if (n >= 10)
        out[at++] = (char)('0' + n / 10 % 10);
    out[at++] = (char)('0' + n % 10);
    out[at++] = '\r';
    out[at++] = '\n';
    memcpy(out + at, name, n);
    at += n;
    out[at++] = '\r';
    out[at++] = '\n';
    return (uint8_t)at;
}

/* Start a fragment's bytes: "*<argc>\r\n" and the command name. */
static struct request *
frag_new(struct worker *w, struct fanout *f, const struct command *cmd,
         uint16_t slot, uint32_t nargs)
{
    struct request *fr = request_new(&w->reqs);
    fr->slot = slot;
    fr->keyed = 1;
    fr->cmd = cmd;
    request_share_table(fr, f->parent);
    fr->on_done = fanout_frag_done;
    fr->data = f;
    fr->deadline_ms = f->parent->deadline_ms;
    buf_add_array(&fr->req, nargs);
    /* "$<len>\r\n<name>\r\n", formatted once per command. */
    if (f->name_hdr_len == 0)
        f->name_hdr_len = name_bulk(f->name_hdr, cmd->name);
    buf_append(&fr->req, f->name_hdr, f->name_hdr_len);
    return fr;
}

/*
 * Send every fragment. master < 0: route each by its slot; otherwise
 * fragment i goes to master (master + i) of the map. A fragment may
 * complete synchronously (uncovered slot, node in backoff), even the
 * whole fanout, so the loop works on its own references.
 */
static void
fanout_start(struct worker *w, struct fanout *f, int master)
{
    uint32_t n = f->nfrags;
    struct request *frags_in[FANOUT_INLINE];
    struct request **frags = n <= FANOUT_INLINE
                                 ? frags_in
                                 : sp_malloc(sizeof(*frags) * n);

    f->pending = n;
    f->parent->data = f;
    request_get(f->parent);
    memcpy(frags, f->frags, sizeof(*frags) * n);
    int64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        request_get(frags[i]);
        frags[i]->cred = f->parent->cred; /* the client's backend user */
        bytes += (int64_t)(sizeof(*frags[i]) + frags[i]->req.cap);
    }
    fanout_charge(f, w, bytes);
    for (uint32_t i = 0; i < n; i++) {
        if (frags[i]->on_done == NULL)
            continue; /* the fan-out already failed (fanout_fail_early) */
        if (master < 0)
            router_dispatch(w, frags[i]);
        else
            router_dispatch_master(w, frags[i],
                                   ((uint32_t)master + i) % w->map->nmasters);
    }
    for (uint32_t i = 0; i < n; i++)
        request_put(frags[i]);
    if (frags != frags_in)
        sp_free(frags);
}

void
fanout_split(struct worker *w, struct request *parent,
             const struct command *cmd, const struct resp_arg *argv,
             uint32_t argc, const char *base, const int *keys,
             const uint16_t *slots, int nkeys)
{
    int step = cmd->nkeyspecs > 0 && cmd->keyspecs[0].keystep > 0
                   ? cmd->keyspecs[0].keystep
                   : 1;
    /* MSET a v b: the last key has no value. Redis answers the arity
     * error; so do we, before reading past the arguments. */
    if (nkeys > 0 && (uint32_t)(keys[nkeys - 1] + step) > argc) {
        command_err_arity(&parent->rep, cmd);
        request_complete(parent);
        return;
    }
    struct fanout *f = sp_calloc(1, sizeof(*f));
    uint32_t count_in[FANOUT_INLINE] = {0};
    uint32_t *count = nkeys <= FANOUT_INLINE
                          ? count_in
                          : sp_calloc((size_t)nkeys, sizeof(*count));
    /* slot -> fragment index + 1; zeroed again below. */
    uint16_t *slot_frag = w->slot_scratch;

    f->parent = parent;
    f->nkeys = (uint32_t)nkeys;
    f->kind = cmd->merge;
    if (nkeys <= FANOUT_INLINE) {
        f->key_frag = f->key_frag_in;
        f->key_pos = f->key_pos_in;
    } else {
        f->key_frag = sp_malloc(sizeof(uint32_t) * (size_t)nkeys);
        f->key_pos = sp_malloc(sizeof(uint32_t) * (size_t)nkeys);
    }
    /* Pass 1: assign fragments and positions, count keys per fragment. */
    for (int i = 0; i < nkeys; i++) {
        if (slot_frag[slots[i]] == 0)
            slot_frag[slots[i]] = (uint16_t)++f->nfrags;
        uint32_t fi = slot_frag[slots[i]] - 1u;
        f->key_frag[i] = fi;
        f->key_pos[i] = count[fi]++;
    }
    /* Pass 2: build the fragments' bytes in key order. */
    f->frags = f->nfrags <= FANOUT_INLINE
                   ? f->frags_in
                   : sp_calloc(f->nfrags, sizeof(*f->frags));
    for (int i = 0; i < nkeys; i++) {
        uint32_t fi = f->key_frag[i];
        if (f->frags[fi] == NULL)
            f->frags[fi] = frag_new(w, f, cmd, slots[i],
                                    1 + count[fi] * (uint32_t)step);
        f->frags[fi]->req_nkeys++;
        for (int s = 0; s < step; s++)
            frag_add_arg(&f->frags[fi]->req, base, &argv[keys[i] + s]);
    }
    for (int i = 0; i < nkeys; i++)
        slot_frag[slots[i]] = 0;
    if (count != count_in)
        sp_free(count);
    fanout_start(w, f, -1);
}

static struct fanout *
fanout_new(struct request *parent, int kind, uint32_t nfrags)
{
    struct fanout *f = sp_calloc(1, sizeof(*f));
    f->parent = parent;
    f->kind = kind;
    f->nfrags = nfrags;
    f->frags = nfrags <= FANOUT_INLINE ? f->frags_in
                                       : sp_calloc(nfrags, sizeof(*f->frags));
    return f;
}

static struct request *
frag_copy(struct worker *w, struct fanout *f, const struct request *parent)
{
    struct request *fr = request_new(&w->reqs);
    fr->cmd = parent->cmd;
    request_share_table(fr, parent);
    fr->on_done = fanout_frag_done;
    fr->data = f;
    buf_append(&fr->req, parent->req.data + parent->req.pos,
               buf_unread(&parent->req));
    return fr;
}

/* A cursor as Redis reads it (strtoul: "-1" wraps around); -1 when it is
 * not a number. */
static int
parse_cursor(const char *s, size_t len, unsigned long long *out)
{
    char num[32];
    char *end;
    if (len == 0 || len >= sizeof(num))
        return -1;
    memcpy(num, s, len);
    num[len] = '\0';
    errno = 0;
    *out = strtoull(num, &end, 10);
    return *end != '\0' || errno == ERANGE ? -1 : 0;
}

/* SCAN <cursor> ...: one fragment to the master the cursor names, with
 * that master's own cursor. */
static void
fanout_scan(struct worker *w, struct request *parent,
            const struct resp_arg *argv, uint32_t argc, const char *base)
{
    unsigned long long cur;
    uint32_t nmasters = w->map->nmasters;
    if (parse_cursor(base + argv[1].off, argv[1].len, &cur) != 0) {
        request_fail(parent, "ERR invalid cursor");
        return;
    }
    uint32_t master = (uint32_t)(cur & MERGE_SCAN_MASTER_MASK);
    if (master >= nmasters) {
        /* Not a cursor we made (or the cluster shrank): Redis answers an
         * unknown cursor with an empty, finished page. */
        request_finish(parent, "*2\r\n$1\r\n0\r\n*0\r\n", 15);
        return;
    }
    struct fanout *f = fanout_new(parent, CMD_MERGE_SCAN, 1);
    f->scan_master = master;
    f->nmasters = nmasters;
    struct request *fr = request_new(&w->reqs);
    fr->cmd = parent->cmd;
    request_share_table(fr, parent);
    fr->on_done = fanout_frag_done;
    fr->data = f;
    buf_add_array(&fr->req, argc);
    buf_add_bulk_str(&fr->req, "scan");
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu",
                     cur >> MERGE_SCAN_MASTER_BITS);
    buf_add_bulk(&fr->req, num, (size_t)n);
    for (uint32_t i = 2; i < argc; i++)
        buf_add_bulk(&fr->req, base + argv[i].off, argv[i].len);
    f->frags[0] = fr;
    fanout_start(w, f, (int)master);
}

void
fanout_all(struct worker *w, struct request *parent,
           const struct command *cmd, const struct resp_arg *argv,
           uint32_t argc, const char *base)
{
    uint32_t nmasters = w->map->nmasters;
    /* The table says how: SAME for FLUSHALL, SCRIPT LOAD, FUNCTION ... */
    int kind = cmd->merge;

    if (nmasters == 0) {
        request_error(parent, SPE_CLUSTERDOWN_NO_MAP);
        return;
    }
    if (kind == CMD_MERGE_SCAN) {
        fanout_scan(w, parent, argv, argc, base);
        return;
    }
    struct fanout *f = fanout_new(parent, kind, nmasters);
    for (uint32_t i = 0; i < nmasters; i++)
        f->frags[i] = frag_copy(w, f, parent);
    /* RANDOMKEY starts at a random master so that it is random across
     * the cluster, not only within the first master. */
    int first = kind == CMD_MERGE_FIRST ? (int)(w->rr++ % nmasters) : 0;
    fanout_start(w, f, first);
}

void
fanout_info(struct worker *w, struct request *parent, struct buf *body)
{
    static const char cmd[] = "*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";
    uint32_t nmasters = w->map->nmasters;

    if (nmasters == 0) {
        /* No cluster yet: the proxy's sections and an empty keyspace. */
        buf_append_str(body, "# Keyspace\r\n");
        buf_add_verbatim(&parent->rep, body->data, body->len,
                         request_resp3(parent));
        buf_deinit(body);
        request_complete(parent);
        return;
    }
    struct fanout *f = fanout_new(parent, CMD_MERGE_INFO, nmasters);
    f->info = *body;
    buf_init(body);
    for (uint32_t i = 0; i < nmasters; i++) {
        struct request *fr = request_new(&w->reqs);
        fr->cmd = parent->cmd;
        request_share_table(fr, parent);
        fr->on_done = fanout_frag_done;
        fr->data = f;
        fr->cred = parent->cred; /* RESP3: '=' parts, a '=' merge */
        buf_append(&fr->req, cmd, sizeof(cmd) - 1);
        f->frags[i] = fr;
    }
    fanout_start(w, f, 0);
}
