/* slotproxy - BSD-2-Clause
 *
 * Big-keys ring. Entries are fixed-size (no pointers), so adding one
 * never allocates, a copy is one memcpy, and a resize moves entries by
 * value. Entries are built only for big requests and replies, which are
 * rare by definition: the cost on the request path is the two compares of
 * bigkeys_classify().
 */
#include "build_config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bigkeys.h"
#include "util.h"

unsigned
bigkeys_classify(const struct bigkeys_thresholds *t, enum bigkeys_dir dir,
                 uint64_t bytes, int64_t elements)
{
    unsigned big = 0;
    if (dir == BIGKEYS_REQUEST)
        return t->request_bytes != 0 && bytes > t->request_bytes
                   ? BIGKEYS_BIG_BYTES
                   : 0;
    if (t->reply_bytes != 0 && bytes > t->reply_bytes)
        big |= BIGKEYS_BIG_BYTES;
    if (t->reply_elements != 0 && elements > 0 &&
        (uint64_t)elements > t->reply_elements)
        big |= BIGKEYS_BIG_ELEMENTS;
    return big;
}

void
bigkeys_init(struct bigkeys *b, uint32_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
    b->ring = cap ? sp_calloc(cap, sizeof(*b->ring)) : NULL;
}

void
bigkeys_deinit(struct bigkeys *b)
{
    sp_free(b->ring);
    memset(b, 0, sizeof(*b));
}

void
bigkeys_reset(struct bigkeys *b)
{
    b->len = 0;
    b->head = 0;
}

/* Entry i from the newest (0) back. */
static const struct bigkeys_entry *
bk_nth_newest(const struct bigkeys *b, uint32_t i)
{
    return &b->ring[(b->head + b->cap - 1 - i) % b->cap];
}

void
bigkeys_resize(struct bigkeys *b, uint32_t cap)
{
    if (cap == b->cap)
        return;
    struct bigkeys nb;
    bigkeys_init(&nb, cap);
    uint32_t keep = SP_MIN(b->len, cap);
    /* Oldest kept first, so that nb's order is b's. */
    for (uint32_t i = keep; i-- > 0;)
        nb.ring[keep - 1 - i] = *bk_nth_newest(b, i);
    nb.len = keep;
    nb.head = cap ? keep % cap : 0;
    bigkeys_deinit(b);
    *b = nb;
}

static void
bk_copy_str(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void
bigkeys_add(struct bigkeys *b, const struct bigkeys_event *ev)
{
    if (b->cap == 0)
        return;
    struct bigkeys_entry *e = &b->ring[b->head];
    e->unix_ms = ev->unix_ms;
    e->bytes = ev->bytes;
    e->elements = ev->elements;
    e->dir = (uint8_t)ev->dir;
    e->has_key = ev->key != NULL;
    e->key_full_len = ev->key ? ev->key_len : 0;
    e->key_len = (uint32_t)SP_MIN(e->key_full_len, (uint64_t)BIGKEYS_KEY_MAX);
    if (e->key_len)
        memcpy(e->key, ev->key, e->key_len);
    bk_copy_str(e->command, sizeof(e->command), ev->command);
    bk_copy_str(e->node, sizeof(e->node), ev->node);
    b->head = (b->head + 1) % b->cap;
    if (b->len < b->cap)
        b->len++;
}

void
bigkeys_copy(struct bigkeys *dst, const struct bigkeys *src)
{
    if (dst->cap != src->cap) {
        bigkeys_deinit(dst);
        bigkeys_init(dst, src->cap);
    }
    if (src->cap)
        memcpy(dst->ring, src->ring, src->cap * sizeof(*src->ring));
    dst->len = src->len;
    dst->head = src->head;
}

static void
bk_add_entry(struct buf *out, const struct bigkeys_entry *e)
{
    buf_add_array(out, 7);
    buf_add_int(out, (long long)(e->unix_ms / 1000));
    buf_add_bulk_str(out, e->dir == BIGKEYS_REQUEST ? "request" : "reply");
    buf_add_bulk_str(out, e->command);
    if (!e->has_key) {
        buf_add_nil(out);
    } else if (e->key_full_len > e->key_len) {
        struct buf k;
        buf_init(&k);
        buf_append(&k, e->key, e->key_len);
        buf_printf(&k, "... (%llu more bytes)",
                   (unsigned long long)(e->key_full_len - e->key_len));
        buf_add_bulk(out, k.data, k.len);
        buf_deinit(&k);
    } else {
        buf_add_bulk(out, e->key, e->key_len);
    }
    buf_add_int(out, (long long)SP_MIN(e->bytes, (uint64_t)INT64_MAX));
    buf_add_int(out, (long long)e->elements);
    buf_add_bulk_str(out, e->node);
}

static uint32_t
bk_count(long long count, size_t have)
{
    if (count < 0)
        count = 10;
    return (uint64_t)count < have ? (uint32_t)count : (uint32_t)have;
}

void
bigkeys_reply(const struct bigkeys *b, struct buf *out, long long count)
{
    uint32_t n = bk_count(count, b->len);
    buf_add_array(out, n);
    for (uint32_t i = 0; i < n; i++)
        bk_add_entry(out, bk_nth_newest(b, i));
}

struct bk_ref {
    const struct bigkeys_entry *e; /* entry inside a ring */
    size_t ring;                   /* which ring */
    uint32_t age;                  /* 0 = newest of its ring */
};

/* Newest first; equal times: by ring, then newest of the ring first. */
static int
bk_cmp_newest(const void *a, const void *b)
{
    const struct bk_ref *x = a, *y = b;
    if (x->e->unix_ms != y->e->unix_ms)
        return x->e->unix_ms > y->e->unix_ms ? -1 : 1;
    if (x->ring != y->ring)
        return x->ring < y->ring ? -1 : 1;
    return x->age < y->age ? -1 : x->age > y->age;
}

void
bigkeys_reply_merged(const struct bigkeys *const *rings, size_t n,
                     struct buf *out, long long count)
{
    size_t total = 0;
    for (size_t r = 0; r < n; r++)
        total += rings[r]->len;
    struct bk_ref *refs = sp_malloc(SP_MAX(total, (size_t)1) * sizeof(*refs));
    size_t m = 0;
    for (size_t r = 0; r < n; r++)
        for (uint32_t i = 0; i < rings[r]->len; i++) {
            refs[m].e = bk_nth_newest(rings[r], i);
            refs[m].ring = r;
            refs[m].age = i;
            m++;
        }
    qsort(refs, m, sizeof(*refs), bk_cmp_newest);
    uint32_t k = bk_count(count, m);
    buf_add_array(out, k);
    for (uint32_t i = 0; i < k; i++)
        bk_add_entry(out, refs[i].e);
    sp_free(refs);
}
