/* slotproxy - BSD-2-Clause
 *
 * Slow log ring. Entries are built only for slow requests, so decoding the
 * request bytes here costs nothing on the fast path.
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "request.h"
#include "resp.h"
#include "slowlog.h"

#define SLOWLOG_MAX_ARGS 32
#define SLOWLOG_MAX_ARGLEN 128

void
slowlog_init(struct slowlog *sl, uint32_t cap, uint64_t *ids)
{
    memset(sl, 0, sizeof(*sl));
    sl->cap = cap;
    sl->ids = ids;
    sl->ring = cap ? sp_calloc(cap, sizeof(*sl->ring)) : NULL;
}

void
slowlog_reset(struct slowlog *sl)
{
    for (uint32_t i = 0; i < sl->cap; i++)
        buf_deinit(&sl->ring[i].args);
    sl->len = 0;
    sl->head = 0;
}

void
slowlog_deinit(struct slowlog *sl)
{
    slowlog_reset(sl);
    sp_free(sl->ring);
    sl->ring = NULL;
}

void
slowlog_resize(struct slowlog *sl, uint32_t cap)
{
    if (cap == sl->cap)
        return;
    struct slowlog_entry *ring = cap ? sp_calloc(cap, sizeof(*ring)) : NULL;
    uint32_t keep = sl->len < cap ? sl->len : cap;
    /* Oldest kept entry first, so the newest lands at keep - 1. Moving an
     * entry moves its args buffer; what stays behind is freed below. */
    for (uint32_t i = 0; i < keep; i++) {
        uint32_t at = (sl->head + sl->cap - keep + i) % sl->cap;
        ring[i] = sl->ring[at];
        memset(&sl->ring[at].args, 0, sizeof(sl->ring[at].args));
    }
    slowlog_reset(sl);
    sp_free(sl->ring);
    sl->ring = ring;
    sl->cap = cap;
    sl->len = keep;
    sl->head = cap ? keep % cap : 0;
}

/* Redis's slowlog argument rules: at most 32 (the last says how many
 * more), each cut at 128 bytes with "... (N more bytes)". */
static void
encode_args(struct buf *out, const struct request *r)
{
    struct resp_value *v = NULL;
    const char *p = r->req.data + r->req.pos;
    out->pos = out->len = 0;
    if (buf_unread(&r->req) == 0 ||
        resp_value_parse(p, buf_unread(&r->req), &v) <= 0 || v->type != '*') {
        buf_add_array(out, 0);
        if (v != NULL)
            resp_value_free(v);
        return;
    }
    size_t n = v->nelems;
    size_t shown = n > SLOWLOG_MAX_ARGS ? SLOWLOG_MAX_ARGS - 1 : n;
    buf_add_array(out, (long long)(shown + (n > shown)));
    for (size_t i = 0; i < shown; i++) {
        const struct resp_value *e = &v->elems[i];
        if (e->len > SLOWLOG_MAX_ARGLEN) {
            char tail[64];
            int t = snprintf(tail, sizeof(tail), "... (%zu more bytes)",
                             e->len - SLOWLOG_MAX_ARGLEN);
            struct buf a;
            buf_init(&a);
            buf_append(&a, e->str, SLOWLOG_MAX_ARGLEN);
            buf_append(&a, tail, (size_t)t);
            buf_add_bulk(out, a.data, a.len);
            buf_deinit(&a);
        } else {
            buf_add_bulk(out, e->str ? e->str : "", e->len);
        }
    }
    if (n > shown) {
        char more[48];
        int t = snprintf(more, sizeof(more), "... (%zu more arguments)",
                         n - shown);
        buf_add_bulk(out, more, (size_t)t);
    }
    resp_value_free(v);
}

void
slowlog_add(struct slowlog *sl, const struct request *r, uint64_t duration_us,
            const char *client, const char *name, const char *node)
{
    if (sl->cap == 0)
        return;
    struct slowlog_entry *e = &sl->ring[sl->head];
    e->id = __atomic_fetch_add(sl->ids, 1, __ATOMIC_RELAXED);
    e->unix_time = (int64_t)time(NULL);
    e->duration_us = duration_us;
    encode_args(&e->args, r);
    snprintf(e->client, sizeof(e->client), "%s", client ? client : "");
    snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
    snprintf(e->node, sizeof(e->node), "%s", node ? node : "");
    sl->head = (sl->head + 1) % sl->cap;
    if (sl->len < sl->cap)
        sl->len++;
}

void
slowlog_entry_reply(struct buf *out, const struct slowlog_entry *e)
{
    buf_add_array(out, 7);
    buf_add_int(out, (long long)e->id);
    buf_add_int(out, (long long)e->unix_time);
    buf_add_int(out, (long long)e->duration_us);
    buf_append(out, e->args.data, e->args.len);
    buf_add_bulk_str(out, e->client);
    buf_add_bulk_str(out, e->name);
    buf_add_bulk_str(out, e->node);
}

void
slowlog_reply(const struct slowlog *sl, struct buf *out, long long count)
{
    if (count < 0)
        count = 10;
    uint32_t n = (uint64_t)count < sl->len ? (uint32_t)count : sl->len;
    buf_add_array(out, n);
    /* Newest first. */
    for (uint32_t i = 0; i < n; i++)
        slowlog_entry_reply(out,
                            &sl->ring[(sl->head + sl->cap - 1 - i) % sl->cap]);
}

uint32_t
slowlog_copy(const struct slowlog *sl, uint32_t max, struct slowlog_entry *out)
{
    uint32_t n = max < sl->len ? max : sl->len;
    for (uint32_t i = 0; i < n; i++) {
        const struct slowlog_entry *e =
            &sl->ring[(sl->head + sl->cap - 1 - i) % sl->cap];
        out[i] = *e;
        buf_init(&out[i].args);
        buf_append(&out[i].args, e->args.data, e->args.len);
    }
    return n;
}

void
slowlog_entries_free(struct slowlog_entry *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        buf_deinit(&e[i].args);
    sp_free(e);
}
