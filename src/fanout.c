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

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "command.h"
#include "fanout.h"
#include "request.h"
#include "resp.h"
#include "router.h"
#include "util.h"
#include "worker.h"

enum merge_kind { MERGE_ARRAY, MERGE_OK, MERGE_SUM };

struct fanout {
    struct request *parent;         /* the client's request */
    struct request **frags;         /* one per slot (we hold a ref each) */
    uint32_t nfrags;
    uint32_t pending;               /* fragments not yet done */
    uint32_t nkeys;
    uint32_t *key_frag;             /* key i -> its fragment */
    uint32_t *key_pos;              /* key i -> its index in the fragment */
    int kind;                       /* enum merge_kind */
};

static int
merge_kind_of(const struct command *cmd)
{
    if (strcmp(cmd->name, "mget") == 0)
        return MERGE_ARRAY;
    if (strcmp(cmd->name, "mset") == 0)
        return MERGE_OK;
    return MERGE_SUM;
}

static void
fanout_free(struct fanout *f)
{
    for (uint32_t i = 0; i < f->nfrags; i++)
        request_put(f->frags[i]);
    sp_free(f->frags);
    sp_free(f->key_frag);
    sp_free(f->key_pos);
    sp_free(f);
}

/* The first fragment error in key order, or NULL. */
static const struct request *
first_error(const struct fanout *f)
{
    for (uint32_t i = 0; i < f->nkeys; i++) {
        const struct request *fr = f->frags[f->key_frag[i]];
        if (buf_unread(&fr->rep) == 0 || fr->rep.data[fr->rep.pos] == '-')
            return fr;
    }
    return NULL;
}

/* Rebuild an MGET reply in key order from the fragments' arrays. */
static int
merge_array(struct fanout *f, struct buf *out)
{
    struct resp_value **vals = sp_calloc(f->nfrags, sizeof(*vals));
    int rc = 0;

    for (uint32_t i = 0; i < f->nfrags && rc == 0; i++) {
        const struct buf *b = &f->frags[i]->rep;
        if (resp_value_parse(b->data + b->pos, buf_unread(b), &vals[i]) <= 0
            || vals[i]->type != '*')
            rc = -1;
    }
    if (rc == 0) {
        buf_add_array(out, f->nkeys);
        for (uint32_t i = 0; i < f->nkeys && rc == 0; i++) {
            const struct resp_value *a = vals[f->key_frag[i]];
            if (f->key_pos[i] >= a->nelems) {
                rc = -1;
                break;
            }
            const struct resp_value *e = &a->elems[f->key_pos[i]];
            if (e->type == '$' && e->str != NULL)
                buf_add_bulk(out, e->str, e->len);
            else
                buf_add_nil(out);
        }
    }
    for (uint32_t i = 0; i < f->nfrags; i++)
        if (vals[i] != NULL)
            resp_value_free(vals[i]);
    sp_free(vals);
    return rc;
}

static int
merge_sum(struct fanout *f, struct buf *out)
{
    long long sum = 0;
    for (uint32_t i = 0; i < f->nfrags; i++) {
        const struct buf *b = &f->frags[i]->rep;
        long long v;
        size_t n = buf_unread(b);
        if (n < 4 || b->data[b->pos] != ':' ||
            sp_str2ll(b->data + b->pos + 1, n - 3, &v) != 0)
            return -1;
        sum += v;
    }
    buf_add_int(out, sum);
    return 0;
}

static void
fanout_merge(struct fanout *f)
{
    struct request *p = f->parent;
    const struct request *err = first_error(f);
    int rc = 0;

    p->rep.pos = p->rep.len = 0;
    if (err != NULL) {
        buf_append(&p->rep, err->rep.data + err->rep.pos,
                   buf_unread(&err->rep));
    } else if (f->kind == MERGE_ARRAY) {
        rc = merge_array(f, &p->rep);
    } else if (f->kind == MERGE_SUM) {
        rc = merge_sum(f, &p->rep);
    } else {
        buf_append(&p->rep, "+OK\r\n", 5);
    }
    if (rc != 0) {
        p->rep.pos = p->rep.len = 0;
        buf_append_str(&p->rep, "-ERR slotproxy: unexpected reply from a "
                                "backend to a multi-key fragment\r\n");
    }
    p->data = NULL;
    fanout_free(f);
    request_complete(p);
    request_put(p); /* the fragments' reference */
}

static void
fanout_frag_done(struct request *fr)
{
    struct fanout *f = fr->data;
    if (--f->pending == 0)
        fanout_merge(f);
}

/* Start a fragment's bytes: "*<argc>\r\n" and the command name. */
static struct request *
frag_new(struct worker *w, struct fanout *f, const struct command *cmd,
         uint16_t slot, uint32_t nargs)
{
    struct request *fr = request_new(w);
    fr->slot = slot;
    fr->keyed = 1;
    fr->cmd = cmd;
    fr->on_done = fanout_frag_done;
    fr->data = f;
    fr->deadline_ms = f->parent->deadline_ms;
    buf_add_array(&fr->req, nargs);
    buf_add_bulk_str(&fr->req, cmd->name);
    return fr;
}

void
fanout_split(struct worker *w, struct request *parent,
             const struct command *cmd, const struct resp_arg *argv,
             const char *base, const int *keys, const uint16_t *slots,
             int nkeys)
{
    int step = cmd->nkeyspecs > 0 && cmd->keyspecs[0].keystep > 0
                   ? cmd->keyspecs[0].keystep
                   : 1;
    struct fanout *f = sp_calloc(1, sizeof(*f));
    uint32_t *count = sp_calloc((size_t)nkeys, sizeof(*count));
    /* slot -> fragment index + 1; zeroed again below. */
    uint16_t *slot_frag = w->slot_scratch;

    f->parent = parent;
    f->nkeys = (uint32_t)nkeys;
    f->kind = merge_kind_of(cmd);
    f->key_frag = sp_malloc(sizeof(uint32_t) * (size_t)nkeys);
    f->key_pos = sp_malloc(sizeof(uint32_t) * (size_t)nkeys);
    /* Pass 1: assign fragments and positions, count keys per fragment. */
    for (int i = 0; i < nkeys; i++) {
        if (slot_frag[slots[i]] == 0)
            slot_frag[slots[i]] = (uint16_t)++f->nfrags;
        uint32_t fi = slot_frag[slots[i]] - 1u;
        f->key_frag[i] = fi;
        f->key_pos[i] = count[fi]++;
    }
    /* Pass 2: build the fragments' bytes in key order. */
    f->frags = sp_calloc(f->nfrags, sizeof(*f->frags));
    for (int i = 0; i < nkeys; i++) {
        uint32_t fi = f->key_frag[i];
        if (f->frags[fi] == NULL)
            f->frags[fi] = frag_new(w, f, cmd, slots[i],
                                    1 + count[fi] * (uint32_t)step);
        for (int s = 0; s < step; s++) {
            const struct resp_arg *a = &argv[keys[i] + s];
            buf_add_bulk(&f->frags[fi]->req, base + a->off, a->len);
        }
    }
    for (int i = 0; i < nkeys; i++)
        slot_frag[slots[i]] = 0;
    sp_free(count);
    f->pending = f->nfrags;
    parent->data = f;
    request_get(parent);
    /* Dispatch last: a fragment may complete (even the whole fanout)
     * synchronously, e.g. for an uncovered slot. Hold a local reference
     * to f's array through the loop via the pending count. */
    uint32_t n = f->nfrags;
    struct request **frags = sp_malloc(sizeof(*frags) * n);
    memcpy(frags, f->frags, sizeof(*frags) * n);
    for (uint32_t i = 0; i < n; i++)
        request_get(frags[i]);
    for (uint32_t i = 0; i < n; i++)
        router_dispatch(w, frags[i]);
    for (uint32_t i = 0; i < n; i++)
        request_put(frags[i]);
    sp_free(frags);
}
