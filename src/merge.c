/* slotproxy - BSD-2-Clause
 *
 * The merge rules of fan-out commands, pure: given the complete replies of
 * a command's fragments (one per slot for SPLIT commands, one per master
 * for ALL commands), build the one reply the client gets, by the merge
 * kind the command table names (enum cmd_merge). No I/O, no request
 * objects: fanout.c hands the bytes in; tests/unit/check_merge.c checks
 * every rule from RESP in to RESP out.
 */
#include "build_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "command.h"
#include "merge.h"
#include "resp.h"
#include "slotstats.h"
#include "util.h"

/* Small merges (the common MGET of a few keys) need no allocation. */
#define MERGE_INLINE 16

static int
is_error(const struct merge_frag *fr)
{
    return fr->len == 0 || fr->data[0] == '-';
}

const struct merge_frag *
merge_first_error(const struct merge_in *f)
{
    for (uint32_t i = 0; i < f->nkeys; i++) {
        const struct merge_frag *fr = &f->frags[f->key_frag[i]];
        if (is_error(fr))
            return fr;
    }
    for (uint32_t i = 0; i < f->nfrags; i++)
        if (is_error(&f->frags[i]))
            return &f->frags[i];
    return NULL;
}

/* type a reply of kind want may have: an array may come as a RESP3 set
 * (a learned command), INFO's text as a RESP3 verbatim string. */
static int
type_fits(char type, char want)
{
    return type == want || (want == '*' && (type == '~' || type == '%')) ||
           (want == '$' && type == '=');
}

/* Decode every fragment's reply; NULL entries never escape (-1). All
 * must have the first one's type (one client, one protocol). */
static int
decode_all(const struct merge_in *f, struct resp_value **vals, char type)
{
    for (uint32_t i = 0; i < f->nfrags; i++) {
        const struct merge_frag *b = &f->frags[i];
        if (resp_value_parse(b->data, b->len, &vals[i]) <= 0)
            return -1;
        if (type != 0 && (!type_fits(vals[i]->type, type) ||
                          vals[i]->type != vals[0]->type))
            return -1;
    }
    return 0;
}

/* The header of a merged aggregate of n elements, of the parts' type
 * (a map's n counts keys and values). */
static void
add_agg_header(struct buf *out, char type, long long n)
{
    if (type == '%')
        buf_add_map(out, n / 2, 1);
    else if (type == '~')
        buf_add_set(out, n, 1);
    else
        buf_add_array(out, n);
}

static void
free_all(const struct merge_in *f, struct resp_value **vals)
{
    for (uint32_t i = 0; i < f->nfrags; i++)
        if (vals[i] != NULL)
            resp_value_free(vals[i]);
    sp_free(vals);
}

/* A scalar element again (RESP3 ones as they came). */
static void
add_value_bulk(struct buf *out, const struct resp_value *e)
{
    if (e->type == '$' && e->str != NULL)
        buf_add_bulk(out, e->str, e->len);
    else if (e->type == ':')
        buf_add_int(out, e->integer);
    else if (e->type == '_')
        buf_add_null(out, 1);
    else if ((e->type == '+' || e->type == ',') && e->str != NULL)
        buf_printf(out, "%c%.*s\r\n", e->type, (int)e->len, e->str);
    else if (e->type == '#')
        buf_append(out, e->integer ? "#t\r\n" : "#f\r\n", 4);
    else
        buf_add_nil(out);
}

/* KEYS: every master's array, one after the other. */
static int
merge_concat(const struct merge_in *f, struct buf *out)
{
    struct resp_value **vals = sp_calloc(f->nfrags, sizeof(*vals));
    int rc = decode_all(f, vals, '*');
    if (rc == 0) {
        size_t total = 0;
        for (uint32_t i = 0; i < f->nfrags; i++)
            total += vals[i]->nelems;
        add_agg_header(out, vals[0]->type, (long long)total);
        for (uint32_t i = 0; i < f->nfrags; i++)
            for (size_t j = 0; j < vals[i]->nelems; j++)
                add_value_bulk(out, &vals[i]->elems[j]);
    }
    free_all(f, vals);
    return rc;
}

static int
value_eq(const struct resp_value *a, const struct resp_value *b)
{
    return a->len == b->len && a->str != NULL && b->str != NULL &&
           memcmp(a->str, b->str, a->len) == 0;
}

/* One element of the fragments' arrays, for finding duplicates. */
struct union_elem {
    const struct resp_value *v; /* the element */
    size_t seq;                 /* its position over all arrays */
};

static int
union_cmp(const void *a, const void *b)
{
    const struct union_elem *x = a, *y = b;
    size_t xl = x->v->str ? x->v->len : 0, yl = y->v->str ? y->v->len : 0;
    int c = memcmp(x->v->str ? x->v->str : "", y->v->str ? y->v->str : "",
                   SP_MIN(xl, yl));
    if (c == 0 && xl != yl)
        c = xl < yl ? -1 : 1;
    if (c == 0)
        c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

/* PUBSUB CHANNELS / SHARDCHANNELS: each channel once, in the order first
 * seen. Sorted to find the duplicates: n log n in the channels. */
static int
merge_union(const struct merge_in *f, struct buf *out)
{
    struct resp_value **vals = sp_calloc(f->nfrags, sizeof(*vals));
    int rc = decode_all(f, vals, '*');
    if (rc == 0) {
        size_t total = 0, n = 0, k = 0;
        for (uint32_t i = 0; i < f->nfrags; i++)
            total += vals[i]->nelems;
        struct union_elem *e = sp_malloc(sizeof(*e) * (total + 1));
        uint8_t *dup = sp_calloc(total + 1, 1);
        for (uint32_t i = 0; i < f->nfrags; i++)
            for (size_t j = 0; j < vals[i]->nelems; j++, k++)
                e[k] = (struct union_elem){&vals[i]->elems[j], k};
        qsort(e, total, sizeof(*e), union_cmp);
        for (k = 1; k < total; k++)
            dup[e[k].seq] = value_eq(e[k].v, e[k - 1].v);
        for (k = 0; k < total; k++)
            n += !dup[k];
        add_agg_header(out, vals[0]->type, (long long)n);
        k = 0;
        for (uint32_t i = 0; i < f->nfrags; i++)
            for (size_t j = 0; j < vals[i]->nelems; j++, k++)
                if (!dup[k])
                    add_value_bulk(out, &vals[i]->elems[j]);
        sp_free(dup);
        sp_free(e);
    }
    free_all(f, vals);
    return rc;
}

/* PUBSUB NUMSUB / SHARDNUMSUB: every master lists the same names in the
 * same order; the counts add up. */
static int
merge_pairsum(const struct merge_in *f, struct buf *out)
{
    struct resp_value **vals = sp_calloc(f->nfrags, sizeof(*vals));
    int rc = decode_all(f, vals, '*');
    for (uint32_t i = 1; rc == 0 && i < f->nfrags; i++)
        if (vals[i]->nelems != vals[0]->nelems)
            rc = -1;
    if (rc == 0 && vals[0]->nelems % 2 != 0)
        rc = -1;
    if (rc == 0) {
        add_agg_header(out, vals[0]->type, (long long)vals[0]->nelems);
        for (size_t j = 0; j + 1 < vals[0]->nelems; j += 2) {
            long long sum = 0;
            for (uint32_t i = 0; i < f->nfrags; i++)
                sum += vals[i]->elems[j + 1].integer;
            add_value_bulk(out, &vals[0]->elems[j]);
            buf_add_int(out, sum);
        }
    }
    free_all(f, vals);
    return rc;
}

/* SCRIPT EXISTS: 1 only where every master has the script, so that an
 * EVALSHA works wherever it lands. */
static int
merge_and(const struct merge_in *f, struct buf *out)
{
    struct resp_value **vals = sp_calloc(f->nfrags, sizeof(*vals));
    int rc = decode_all(f, vals, '*');
    for (uint32_t i = 1; rc == 0 && i < f->nfrags; i++)
        if (vals[i]->nelems != vals[0]->nelems)
            rc = -1;
    if (rc == 0) {
        buf_add_array(out, (long long)vals[0]->nelems);
        for (size_t j = 0; j < vals[0]->nelems; j++) {
            long long all = 1;
            for (uint32_t i = 0; i < f->nfrags; i++)
                all = all && vals[i]->elems[j].integer == 1;
            buf_add_int(out, all);
        }
    }
    free_all(f, vals);
    return rc;
}

/* RANDOMKEY: the first master (in a random rotation) that has a key. */
static int
merge_first(const struct merge_in *f, struct buf *out)
{
    for (uint32_t i = 0; i < f->nfrags; i++) {
        const struct merge_frag *b = &f->frags[i];
        if (b->len >= 3 && memcmp(b->data, "$-1", 3) != 0 &&
            b->data[0] != '_') {
            buf_append(out, b->data, b->len);
            return 0;
        }
    }
    /* None has a key: the null of the parts' protocol. */
    buf_add_null(out, f->nfrags > 0 && f->frags[0].len > 0 &&
                          f->frags[0].data[0] == '_');
    return 0;
}

/*
 * SCAN: the proxy cursor is (node cursor << 10) | master index. When a
 * master's own cursor returns to 0 the scan moves to the next master, and
 * ends (cursor 0) after the last one.
 */
static int
merge_scan(const struct merge_in *f, struct buf *out)
{
    struct resp_value *v = NULL;
    const struct merge_frag *b = &f->frags[0];
    long long next;
    int rc = -1;

    if (f->nfrags < 1 || resp_value_parse(b->data, b->len, &v) <= 0)
        return -1;
    if (v->type == '*' && v->nelems == 2 && v->elems[0].type == '$' &&
        v->elems[1].type == '*' &&
        sp_str2ll(v->elems[0].str, v->elems[0].len, &next) == 0 && next >= 0 &&
        next < (1ll << (63 - MERGE_SCAN_MASTER_BITS))) {
        unsigned long long cur;
        if (next != 0)
            cur = ((unsigned long long)next << MERGE_SCAN_MASTER_BITS) |
                  f->scan_master;
        else if (f->scan_master + 1 < f->nmasters)
            cur = f->scan_master + 1;
        else
            cur = 0;
        char num[24];
        int n = snprintf(num, sizeof(num), "%llu", cur);
        buf_add_array(out, 2);
        buf_add_bulk(out, num, (size_t)n);
        const struct resp_value *keys = &v->elems[1];
        buf_add_array(out, (long long)keys->nelems);
        for (size_t j = 0; j < keys->nelems; j++)
            add_value_bulk(out, &keys->elems[j]);
        rc = 0;
    }
    resp_value_free(v);
    return rc;
}

/* Byte spans of the elements of an array reply, found with the reply
 * scanner: the exact bytes are copied into the merged reply, nothing is
 * decoded. -1 when the reply is not an array of n elements. */
static int
array_spans(const struct merge_frag *b, uint32_t n, uint32_t *off,
            uint32_t *len)
{
    const char *p = b->data;
    size_t avail = b->len;
    const char *nl = memchr(p, '\n', avail);
    long long count;
    struct resp_reply rp;

    if (avail < 4 || p[0] != '*' || nl == NULL || nl < p + 2)
        return -1;
    size_t at = (size_t)(nl - p) + 1;
    if (n == 1 && nl == p + 3 && p[1] == '1') {
        /* One key (the usual fragment): its element is all that follows
         * "*1\r\n"; the backend scanner already checked it is whole. */
        off[0] = (uint32_t)at;
        len[0] = (uint32_t)(avail - at);
        return 0;
    }
    if (sp_str2ll(p + 1, (size_t)(nl - p - 2), &count) != 0 || count != n)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        resp_reply_init(&rp);
        if (resp_reply_parse(&rp, p + at, avail - at) != RESP_DONE)
            return -1;
        off[i] = (uint32_t)at;
        len[i] = (uint32_t)rp.len;
        at += rp.len;
    }
    return 0;
}

/* Rebuild an MGET reply in key order from the fragments' arrays. */
static int
merge_array(const struct merge_in *f, struct buf *out)
{
    uint32_t off_in[MERGE_INLINE], len_in[MERGE_INLINE];
    uint32_t first_in[MERGE_INLINE];
    int small = f->nkeys <= MERGE_INLINE && f->nfrags <= MERGE_INLINE;
    uint32_t *off = small ? off_in : sp_malloc(sizeof(uint32_t) * f->nkeys);
    uint32_t *len = small ? len_in : sp_malloc(sizeof(uint32_t) * f->nkeys);
    uint32_t *first =
        small ? first_in : sp_malloc(sizeof(uint32_t) * f->nfrags);
    uint32_t at = 0;
    int rc = 0;

    /* Fragment i's elements go to spans [first[i], first[i] + its keys). */
    for (uint32_t i = 0; i < f->nfrags && rc == 0; i++) {
        uint32_t n = f->frags[i].nkeys;
        if (n > f->nkeys - at) {
            rc = -1; /* more keys than the request had: not ours */
            break;
        }
        first[i] = at;
        rc = array_spans(&f->frags[i], n, off + at, len + at);
        at += n;
    }
    if (rc == 0) {
        buf_add_array(out, f->nkeys);
        for (uint32_t k = 0; k < f->nkeys; k++) {
            uint32_t fi = f->key_frag[k], e = first[fi] + f->key_pos[k];
            buf_append(out, f->frags[fi].data + off[e], len[e]);
        }
    }
    if (!small) {
        sp_free(off);
        sp_free(len);
        sp_free(first);
    }
    return rc;
}

static int
merge_sum(const struct merge_in *f, struct buf *out)
{
    long long sum = 0;
    for (uint32_t i = 0; i < f->nfrags; i++) {
        const struct merge_frag *b = &f->frags[i];
        long long v;
        if (b->len < 4 || b->data[0] != ':' ||
            sp_str2ll(b->data + 1, b->len - 3, &v) != 0)
            return -1;
        sum += v;
    }
    buf_add_int(out, sum);
    return 0;
}

#define INFO_MAX_DB 16

struct keyspace_sum {
    long long keys; /* summed over masters */
    long long expires;
    long long ttl_weight; /* sum of avg_ttl * expires */
};

/* Add "dbN:keys=K,expires=E,avg_ttl=T" lines of one INFO reply to sum. */
static void
keyspace_add(struct keyspace_sum *sum, const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        int db;
        long long k, e, t;
        char line[160];
        if (n < sizeof(line) && n > 2 && memcmp(p, "db", 2) == 0) {
            memcpy(line, p, n);
            line[n] = '\0';
            if (sscanf(line, "db%d:keys=%lld,expires=%lld,avg_ttl=%lld", &db,
                       &k, &e, &t) == 4 &&
                db >= 0 && db < INFO_MAX_DB) {
                sum[db].keys += k;
                sum[db].expires += e;
                sum[db].ttl_weight += t * e;
            }
        }
        p += n + 1;
    }
}

static int
merge_info(const struct merge_in *f, struct buf *out)
{
    struct keyspace_sum sum[INFO_MAX_DB];
    struct resp_value **vals = sp_calloc(f->nfrags, sizeof(*vals));
    int rc = decode_all(f, vals, '$');

    memset(sum, 0, sizeof(sum));
    for (uint32_t i = 0; rc == 0 && i < f->nfrags; i++)
        keyspace_add(sum, vals[i]->str, vals[i]->len);
    free_all(f, vals);
    if (rc != 0)
        return rc;
    if (f->info == NULL)
        return -1;
    buf_append_str(f->info, "# Keyspace\r\n");
    for (int db = 0; db < INFO_MAX_DB; db++) {
        if (sum[db].keys == 0)
            continue;
        buf_printf(f->info, "db%d:keys=%lld,expires=%lld,avg_ttl=%lld\r\n", db,
                   sum[db].keys, sum[db].expires,
                   sum[db].expires ? sum[db].ttl_weight / sum[db].expires : 0);
    }
    buf_add_verbatim(out, f->info->data + f->info->pos, buf_unread(f->info),
                     f->nfrags > 0 && f->frags[0].data[0] == '=');
    return 0;
}

/* CLUSTER SLOT-STATS: the masters' entries, ordered as the request asks
 * (slotstats.c). */
static int
merge_slotstats(const struct merge_in *f, struct buf *out)
{
    const char **rep = sp_calloc(f->nfrags + 1, sizeof(*rep));
    size_t *len = sp_calloc(f->nfrags + 1, sizeof(*len));

    for (uint32_t i = 0; i < f->nfrags; i++) {
        rep[i] = f->frags[i].data;
        len[i] = f->frags[i].len;
    }
    int rc = f->req == NULL ? -1
                            : slotstats_merge(f->req, f->req_len, rep, len,
                                              f->nfrags, out);
    sp_free(rep);
    sp_free(len);
    return rc;
}

int
merge_replies(int kind, const struct merge_in *in, struct buf *out)
{
    switch (kind) {
    case CMD_MERGE_ARRAY:
        return merge_array(in, out);
    case CMD_MERGE_SUM:
        return merge_sum(in, out);
    case CMD_MERGE_CONCAT:
        return merge_concat(in, out);
    case CMD_MERGE_AND:
        return merge_and(in, out);
    case CMD_MERGE_FIRST:
        return merge_first(in, out);
    case CMD_MERGE_SCAN:
        return merge_scan(in, out);
    case CMD_MERGE_UNION:
        return merge_union(in, out);
    case CMD_MERGE_PAIRSUM:
        return merge_pairsum(in, out);
    case CMD_MERGE_INFO:
        return merge_info(in, out);
    case CMD_MERGE_SLOTSTATS:
        return merge_slotstats(in, out);
    case CMD_MERGE_SAME:
        if (in->nfrags < 1)
            return -1;
        buf_append(out, in->frags[0].data, in->frags[0].len);
        return 0;
    case CMD_MERGE_OK:
        buf_append(out, "+OK\r\n", 5);
        return 0;
    default:
        return -1;
    }
}
