/* slotproxy - BSD-2-Clause
 *
 * CLUSTER SLOT-STATS merged over the masters (slotstats.h).
 */
#include "build_config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "resp.h"
#include "slotstats.h"
#include "util.h"

#define SS_SLOTS 16384

/* What the request asks for. */
struct ss_order {
    int by_slot;                /* SLOTSRANGE: by slot */
    int desc;                   /* ORDERBY: largest first (the default) */
    long long limit;            /* ORDERBY: entries at most */
    const char *metric;         /* ORDERBY: metric name (into the req) */
    size_t metric_len;
};

/* One slot's entry of some master's reply. */
struct ss_entry {
    long long slot;             /* the slot */
    long long value;            /* the ORDERBY metric's value */
    const char *p;              /* its bytes in that reply */
    size_t len;
};

static int
arg_eq(const struct resp_value *v, const char *s)
{
    return v->type == '$' && v->str != NULL &&
           sp_strcaseeq(v->str, v->len, s);
}

/* Valkey's argument walk (clusterSlotStatsCommand); 0 or -1. */
static int
parse_order(const char *req, size_t len, struct ss_order *o)
{
    struct resp_value *v = NULL;
    int rc = -1;

    memset(o, 0, sizeof(*o));
    o->desc = 1;
    o->limit = SS_SLOTS;
    if (resp_value_parse(req, len, &v) <= 0)
        return -1;
    if (v->type != '*' || v->nelems < 3)
        goto out;
    if (arg_eq(&v->elems[2], "slotsrange")) {
        o->by_slot = 1;
        rc = 0;
        goto out;
    }
    if (!arg_eq(&v->elems[2], "orderby") || v->nelems < 4 ||
        v->elems[3].type != '$')
        goto out;
    o->metric = v->elems[3].str;
    o->metric_len = v->elems[3].len;
    for (size_t i = 4; i < v->nelems; i++) {
        long long n;
        if (arg_eq(&v->elems[i], "limit") && i + 1 < v->nelems) {
            i++;
            if (v->elems[i].type != '$' ||
                sp_str2ll(v->elems[i].str, v->elems[i].len, &n) != 0 ||
                n < 1 || n > SS_SLOTS)
                goto out;
            o->limit = n;
        } else if (arg_eq(&v->elems[i], "asc")) {
            o->desc = 0;
        } else if (arg_eq(&v->elems[i], "desc")) {
            o->desc = 1;
        } else {
            goto out;
        }
    }
    rc = 0;
out:
    /* metric points into req, not into v */
    resp_value_free(v);
    return rc;
}

/* Decode one entry [slot, {name: value ...}] into e. */
static int
parse_entry(const struct ss_order *o, struct ss_entry *e)
{
    struct resp_value *v = NULL;
    int rc = -1;

    if (resp_value_parse(e->p, e->len, &v) <= 0)
        return -1;
    if (v->type == '*' && v->nelems == 2 && v->elems[0].type == ':' &&
        (v->elems[1].type == '*' || v->elems[1].type == '%') &&
        v->elems[0].integer >= 0 && v->elems[0].integer < SS_SLOTS) {
        const struct resp_value *m = &v->elems[1];
        e->slot = v->elems[0].integer;
        rc = o->by_slot ? 0 : -1;
        for (size_t i = 0; !o->by_slot && i + 1 < m->nelems; i += 2) {
            const struct resp_value *k = &m->elems[i];
            if (k->str != NULL && k->len == o->metric_len &&
                strncasecmp(k->str, o->metric, k->len) == 0 &&
                m->elems[i + 1].type == ':') {
                e->value = m->elems[i + 1].integer;
                rc = 0;
            }
        }
    }
    resp_value_free(v);
    return rc;
}

/* Append the entries of one reply to es (*n of them so far, room for
 * SS_SLOTS). 0 or -1. */
static int
split_reply(const struct ss_order *o, const char *p, size_t len,
            struct ss_entry *es, size_t *n)
{
    const char *nl = memchr(p, '\n', len);
    long long count;
    size_t at;

    if (len < 4 || p[0] != '*' || nl == NULL || nl < p + 2 ||
        sp_str2ll(p + 1, (size_t)(nl - p - 2), &count) != 0 || count < 0 ||
        count > SS_SLOTS - (long long)*n)
        return -1;
    at = (size_t)(nl - p) + 1;
    for (long long i = 0; i < count; i++) {
        struct resp_reply rr;
        struct ss_entry *e = &es[(*n)++];
        resp_reply_init(&rr);
        if (resp_reply_parse(&rr, p + at, len - at) != RESP_DONE)
            return -1;
        e->p = p + at;
        e->len = (size_t)rr.len;
        if (parse_entry(o, e) != 0)
            return -1;
        at += rr.len;
    }
    return at == len ? 0 : -1;
}

static int
by_slot(const void *a, const void *b)
{
    const struct ss_entry *x = a, *y = b;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int
by_value_asc(const void *a, const void *b)
{
    const struct ss_entry *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return by_slot(a, b);
}

static int
by_value_desc(const void *a, const void *b)
{
    const struct ss_entry *x = a, *y = b;
    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    return by_slot(a, b);
}

int
slotstats_merge(const char *req, size_t req_len, const char *const *rep,
                const size_t *rep_len, size_t n, struct buf *out)
{
    struct ss_order o;
    struct ss_entry *es;
    size_t ne = 0;
    int rc = 0;

    if (parse_order(req, req_len, &o) != 0)
        return -1;
    es = sp_calloc(SS_SLOTS, sizeof(*es));
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = split_reply(&o, rep[i], rep_len[i], es, &ne);
    if (rc == 0) {
        qsort(es, ne, sizeof(*es),
              o.by_slot ? by_slot : o.desc ? by_value_desc : by_value_asc);
        if (!o.by_slot && (long long)ne > o.limit)
            ne = (size_t)o.limit;
        buf_add_array(out, (long long)ne);
        for (size_t i = 0; i < ne; i++)
            buf_append(out, es[i].p, es[i].len);
    }
    sp_free(es);
    return rc;
}
