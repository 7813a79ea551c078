/* slotproxy - BSD-2-Clause
 *
 * Space-saving top-K sketch with windowed decay, and the sampling
 * countdown that feeds it. See hotkeys.h for the model.
 *
 * Layout: one allocation holds the struct, K entries, a hash index (linear
 * probing, 2K..4K uint16 slots holding entry index + 1, 0 = empty) and a
 * min-heap of entry indexes ordered by count, so that finding the smallest
 * counter is O(1) and an increment costs O(log K) at worst.
 *
 * Rates. Counts are halved at every window boundary. With a steady rate of
 * r sampled requests per second, the count t ms into the current window is
 * r x (base + t), where base is the decayed length of the past windows:
 * base starts at 0 and becomes (base + window) / 2 at each boundary (it
 * tends to one window). So rps = count x sample_rate x 1000 / (base + t):
 * exact on average for a steady rate, also while the sketch is younger
 * than a window. The span is taken as at least a second (or the window,
 * when shorter) so that a handful of samples in the first milliseconds do
 * not read as a storm. The flip side of a decayed count: a key that
 * turns hot in a sketch that is already old reads low at first (about
 * half its rate after one window, over 90 % after four), though it outranks
 * cooler keys as soon as its count passes theirs.
 *
 * Error. The space-saving bound (count - error <= true sampled count <=
 * count) is exact for the sampled stream. Sampling adds noise on top: a
 * key with c samples has a relative standard deviation of about
 * 1 / sqrt(c) (the gaps are random), so a key needs a few hundred samples
 * per window (a few thousand requests per second at 1/64 and 10 s) before
 * its rate is read within ~5 %. Hot keys are exactly those.
 */
#include "build_config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hotkeys.h"
#include "util.h"

struct hk_entry {
    uint64_t hash;              /* identity hash (hk_hash) */
    uint64_t count;             /* decayed sampled count (an overestimate) */
    uint64_t error;             /* most by which count overestimates */
    uint64_t full_len;          /* length of the whole key */
    uint16_t slot;              /* hash slot of the key */
    uint16_t key_len;           /* bytes in key */
    uint16_t heap_pos;          /* where this entry sits in heap[] */
    char key[HOTKEYS_KEY_MAX];  /* first key_len bytes of the key */
};

struct hotkeys {
    uint32_t k;                 /* capacity in entries */
    uint32_t n;                 /* entries in use: entries[0 .. n) */
    uint32_t sample_rate;       /* N: counts x N = requests */
    uint32_t index_mask;        /* index has index_mask + 1 slots */
    uint64_t window_ms;         /* decay period */
    uint64_t window_start_ms;   /* start of the current window */
    uint64_t base_ms;           /* decayed length of the past windows */
    uint64_t now_ms;            /* latest time seen (add/advance) */
    struct hk_entry *entries;   /* k entries, in this allocation */
    uint16_t *index;            /* hash index, in this allocation */
    uint16_t *heap;             /* min-heap of entry indexes by count */
    size_t bytes;               /* size of this allocation */
};

/* ---- sampling ------------------------------------------------------ */

/* The largest N: 2N - 1 must fit the 32-bit multiply-shift below. */
#define HK_RATE_MAX (1u << 30)

static uint64_t
hk_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

void
hotkeys_sampler_init(struct hotkeys_sampler *s, uint32_t rate, uint64_t seed)
{
    s->rate = rate > HK_RATE_MAX ? HK_RATE_MAX : rate;
    /* xorshift must not start at 0; mix the seed so that seeds 1, 2, 3 ...
     * do not give correlated first gaps. */
    s->rng = (seed ^ 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
    if (s->rng == 0)
        s->rng = 0x9e3779b97f4a7c15ull;
    s->countdown = 1;
    hotkeys_sampler_reload(s);
}

int
hotkeys_sampler_reload(struct hotkeys_sampler *s)
{
    if (s->rate == 0) {
        s->countdown = UINT32_MAX; /* off: back here every 2^32 calls */
        return 0;
    }
    /* Uniform in [1, 2N - 1] by multiply-shift (Lemire): mean N, and no
     * division on the request path. */
    uint64_t r = hk_xorshift(&s->rng) >> 32;
    s->countdown = 1 + (uint32_t)((r * (2ull * s->rate - 1)) >> 32);
    return 1;
}

/* ---- identity ------------------------------------------------------ */

static uint64_t
hk_fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Hash of what tells keys apart: the kept prefix, the last 16 bytes of a
 * longer key, and the full length. The same in every sketch (no seed), so
 * that merge can match keys across workers. The index is probed at most K
 * steps, so crafted collisions cost a sampled request O(K) at worst. */
static uint64_t
hk_hash(const char *key, size_t len)
{
    size_t kept = SP_MIN(len, (size_t)HOTKEYS_KEY_MAX);
    uint64_t h = hk_fnv(0xcbf29ce484222325ull, key, kept);
    if (len > kept) {
        size_t tail = SP_MIN(len - kept, (size_t)16);
        h = hk_fnv(h, key + len - tail, tail);
    }
    h ^= (uint64_t)len;
    /* splitmix64 finalizer: FNV's low bits mix poorly, the index uses
     * them. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static int
hk_same(const struct hk_entry *e, uint64_t hash, const char *key, size_t len)
{
    return e->hash == hash && e->full_len == len &&
           memcmp(e->key, key, e->key_len) == 0;
}

/* ---- index --------------------------------------------------------- */

/* Slot of the index that holds the key, or of the empty slot where it
 * would go. */
static uint32_t
index_probe(const struct hotkeys *h, uint64_t hash, const char *key,
            size_t len)
{
    uint32_t i = (uint32_t)hash & h->index_mask;
    while (h->index[i] != 0 &&
           !hk_same(&h->entries[h->index[i] - 1], hash, key, len))
        i = (i + 1) & h->index_mask;
    return i;
}

/* Remove entry e from the index: linear probing's backward-shift delete,
 * which keeps every other key reachable without tombstones. */
static void
index_remove(struct hotkeys *h, uint32_t e)
{
    uint32_t i = (uint32_t)h->entries[e].hash & h->index_mask;
    while (h->index[i] != e + 1)
        i = (i + 1) & h->index_mask;
    for (uint32_t j = (i + 1) & h->index_mask; h->index[j] != 0;
         j = (j + 1) & h->index_mask) {
        uint32_t home = (uint32_t)h->entries[h->index[j] - 1].hash &
                        h->index_mask;
        /* Move j's entry into the hole unless its home lies cyclically in
         * (i, j]: then the hole does not cut its probe path. */
        if (((j - home) & h->index_mask) >= ((j - i) & h->index_mask)) {
            h->index[i] = h->index[j];
            i = j;
        }
    }
    h->index[i] = 0;
}

/* ---- heap ---------------------------------------------------------- */

static void
heap_set(struct hotkeys *h, uint32_t pos, uint16_t e)
{
    h->heap[pos] = e;
    h->entries[e].heap_pos = (uint16_t)pos;
}

/* Restore the heap below pos after entry heap[pos]'s count grew. */
static void
heap_down(struct hotkeys *h, uint32_t pos)
{
    uint16_t e = h->heap[pos];
    uint64_t c = h->entries[e].count;
    for (;;) {
        uint32_t l = 2 * pos + 1, m = l;
        if (l >= h->n)
            break;
        if (l + 1 < h->n &&
            h->entries[h->heap[l + 1]].count < h->entries[h->heap[l]].count)
            m = l + 1;
        if (h->entries[h->heap[m]].count >= c)
            break;
        heap_set(h, pos, h->heap[m]);
        pos = m;
    }
    heap_set(h, pos, e);
}

/* Rebuild index and heap from entries[0 .. n) (after decay compacts). */
static void
hk_rebuild(struct hotkeys *h)
{
    memset(h->index, 0, ((size_t)h->index_mask + 1) * sizeof(*h->index));
    for (uint32_t e = 0; e < h->n; e++) {
        const struct hk_entry *x = &h->entries[e];
        uint32_t i = index_probe(h, x->hash, x->key, x->full_len);
        h->index[i] = (uint16_t)(e + 1);
        heap_set(h, e, (uint16_t)e);
    }
    for (uint32_t p = h->n / 2; p-- > 0;)
        heap_down(h, p);
}

/* ---- sketch -------------------------------------------------------- */

struct hotkeys *
hotkeys_new(uint32_t k, uint32_t sample_rate, uint64_t window_ms,
            uint64_t now_ms)
{
    k = SP_MAX(1u, SP_MIN(k, (uint32_t)HOTKEYS_K_MAX));
    uint32_t slots = 1;
    while (slots < 2 * k)
        slots <<= 1;
    size_t head = (sizeof(struct hotkeys) + 15) & ~(size_t)15;
    size_t ent = (size_t)k * sizeof(struct hk_entry);
    size_t bytes = head + ent + (size_t)slots * sizeof(uint16_t) +
                   (size_t)k * sizeof(uint16_t);
    char *p = sp_calloc(1, bytes);
    struct hotkeys *h = (struct hotkeys *)p;
    h->k = k;
    h->sample_rate = SP_MAX(sample_rate, 1u);
    h->index_mask = slots - 1;
    h->window_ms = SP_MAX(window_ms, (uint64_t)1);
    h->entries = (struct hk_entry *)(p + head);
    h->index = (uint16_t *)(p + head + ent);
    h->heap = h->index + slots;
    h->bytes = bytes;
    hotkeys_reset(h, now_ms);
    return h;
}

void
hotkeys_free(struct hotkeys *h)
{
    sp_free(h);
}

size_t
hotkeys_memory(const struct hotkeys *h)
{
    return h->bytes;
}

uint32_t
hotkeys_count(const struct hotkeys *h)
{
    return h->n;
}

void
hotkeys_reset(struct hotkeys *h, uint64_t now_ms)
{
    h->n = 0;
    memset(h->index, 0, ((size_t)h->index_mask + 1) * sizeof(*h->index));
    h->window_start_ms = now_ms;
    h->now_ms = now_ms;
    h->base_ms = 0;
}

void
hotkeys_advance(struct hotkeys *h, uint64_t now_ms)
{
    if (now_ms > h->now_ms)
        h->now_ms = now_ms;
    if (now_ms - h->window_start_ms < h->window_ms ||
        now_ms < h->window_start_ms)
        return;
    uint64_t windows = (now_ms - h->window_start_ms) / h->window_ms;
    h->window_start_ms += windows * h->window_ms;
    unsigned shift = windows >= 64 ? 64 : (unsigned)windows;
    for (unsigned i = 0; i < shift; i++)
        h->base_ms = (h->base_ms + h->window_ms) / 2;
    uint32_t kept = 0;
    for (uint32_t e = 0; e < h->n; e++) {
        struct hk_entry *x = &h->entries[e];
        x->count = shift >= 64 ? 0 : x->count >> shift;
        x->error = shift >= 64 ? 0 : x->error >> shift;
        if (x->count == 0)
            continue;
        if (kept != e)
            h->entries[kept] = *x;
        kept++;
    }
    h->n = kept;
    hk_rebuild(h);
}

/* Give entry e to key, as a newcomer whose count is at most base. */
static void
hk_fill(struct hk_entry *x, uint64_t hash, const char *key, size_t len,
        uint16_t slot, uint64_t base)
{
    x->hash = hash;
    x->full_len = len;
    x->key_len = (uint16_t)SP_MIN(len, (size_t)HOTKEYS_KEY_MAX);
    memcpy(x->key, key, x->key_len);
    x->slot = slot;
    x->count = base + 1;
    x->error = base;
}

void
hotkeys_add(struct hotkeys *h, const char *key, size_t len, uint16_t slot,
            uint64_t now_ms)
{
    hotkeys_advance(h, now_ms);
    uint64_t hash = hk_hash(key, len);
    uint32_t i = index_probe(h, hash, key, len);
    if (h->index[i] != 0) {
        struct hk_entry *x = &h->entries[h->index[i] - 1];
        x->count++;
        x->slot = slot;
        heap_down(h, x->heap_pos);
        return;
    }
    if (h->n < h->k) {
        uint32_t e = h->n++;
        hk_fill(&h->entries[e], hash, key, len, slot, 0);
        h->index[i] = (uint16_t)(e + 1);
        /* count 1 is the smallest possible: sift up is a no-op unless
         * the root also has 1, and equal counts need no order. Put it at
         * the end and let it rise only past larger parents. */
        uint32_t pos = e;
        while (pos > 0 &&
               h->entries[h->heap[(pos - 1) / 2]].count > 1) {
            heap_set(h, pos, h->heap[(pos - 1) / 2]);
            pos = (pos - 1) / 2;
        }
        heap_set(h, pos, (uint16_t)e);
        return;
    }
    /* Full: the smallest counter changes hands (space-saving). */
    uint16_t e = h->heap[0];
    struct hk_entry *x = &h->entries[e];
    uint64_t min = x->count;
    index_remove(h, e);
    hk_fill(x, hash, key, len, slot, min);
    h->index[index_probe(h, hash, key, len)] = (uint16_t)(e + 1);
    heap_down(h, 0);
}

int
hotkeys_copy(struct hotkeys *dst, const struct hotkeys *src)
{
    if (dst->k != src->k || dst->bytes != src->bytes)
        return -1;
    dst->n = src->n;
    dst->sample_rate = src->sample_rate;
    dst->window_ms = src->window_ms;
    dst->window_start_ms = src->window_start_ms;
    dst->base_ms = src->base_ms;
    dst->now_ms = src->now_ms;
    /* The index and heap refer to entries by position: copy all three. */
    memcpy(dst->entries, src->entries, src->n * sizeof(*src->entries));
    memcpy(dst->index, src->index,
           ((size_t)src->index_mask + 1) * sizeof(*src->index));
    memcpy(dst->heap, src->heap, src->n * sizeof(*src->heap));
    return 0;
}

/* ---- merge --------------------------------------------------------- */

/* Requests per second that one sampled count stands for in h. */
static double
hk_rps_per_count(const struct hotkeys *h)
{
    uint64_t span = h->base_ms + (h->now_ms - h->window_start_ms);
    uint64_t least = SP_MIN(h->window_ms, (uint64_t)1000);
    if (span < least)
        span = least;
    return (double)h->sample_rate * 1000.0 / (double)span;
}

/* The most a key absent from h can have: its smallest count when full
 * (space-saving's guarantee), else 0 (nothing was ever evicted since the
 * last drop to zero, see hotkeys_advance). In requests per second. */
static double
hk_floor_rps(const struct hotkeys *h)
{
    if (h->n < h->k || h->n == 0)
        return 0.0;
    return (double)h->entries[h->heap[0]].count * hk_rps_per_count(h);
}

struct hk_scratch {
    const struct hk_entry *e;   /* the entry (inside a sketch) */
    double rps;                 /* its rate, then the group's */
    double err;                 /* its error, then the group's */
    double floor;               /* its sketch's floor, then their sum */
};

static int
hk_cmp_identity(const void *a, const void *b)
{
    const struct hk_entry *x = ((const struct hk_scratch *)a)->e;
    const struct hk_entry *y = ((const struct hk_scratch *)b)->e;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->full_len != y->full_len)
        return x->full_len < y->full_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

static int
hk_cmp_rate(const void *a, const void *b)
{
    const struct hk_scratch *x = a, *y = b;
    if (x->rps != y->rps)
        return x->rps > y->rps ? -1 : 1;
    size_t n = SP_MIN(x->e->key_len, y->e->key_len);
    int c = memcmp(x->e->key, y->e->key, n);
    if (c != 0)
        return c;
    return x->e->full_len < y->e->full_len   ? -1
           : x->e->full_len > y->e->full_len ? 1
                                             : 0;
}

/* Fill s[] with every entry of every sketch; returns how many, and the
 * sum of the sketches' floors in *floors. */
static size_t
hk_collect(const struct hotkeys *const *sk, size_t n, struct hk_scratch *s,
           double *floors)
{
    size_t m = 0;
    *floors = 0.0;
    for (size_t i = 0; i < n; i++) {
        double per = hk_rps_per_count(sk[i]);
        double fl = hk_floor_rps(sk[i]);
        *floors += fl;
        for (uint32_t e = 0; e < sk[i]->n; e++) {
            const struct hk_entry *x = &sk[i]->entries[e];
            s[m].e = x;
            s[m].rps = (double)x->count * per;
            s[m].err = (double)x->error * per;
            s[m].floor = fl;
            m++;
        }
    }
    return m;
}

size_t
hotkeys_merge(const struct hotkeys *const *sketches, size_t n,
              struct hotkeys_item *out, size_t max)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += sketches[i]->n;
    if (total == 0 || max == 0)
        return 0;
    struct hk_scratch *s = sp_malloc(total * sizeof(*s));
    double floors;
    size_t m = hk_collect(sketches, n, s, &floors);
    qsort(s, m, sizeof(*s), hk_cmp_identity);
    /* Sum each run of one key into its first element. A key sits at most
     * once in a sketch, so the floors of the sketches that hold it are
     * summed once each; the others' floors bound what they missed. */
    size_t g = 0;
    for (size_t i = 0; i < m;) {
        struct hk_scratch acc = s[i];
        size_t j = i + 1;
        for (; j < m && hk_cmp_identity(&s[i], &s[j]) == 0; j++) {
            acc.rps += s[j].rps;
            acc.err += s[j].err;
            acc.floor += s[j].floor;
        }
        acc.err += floors - acc.floor;
        s[g++] = acc;
        i = j;
    }
    qsort(s, g, sizeof(*s), hk_cmp_rate);
    size_t k = SP_MIN(g, max);
    for (size_t i = 0; i < k; i++) {
        struct hotkeys_item *it = &out[i];
        memcpy(it->key, s[i].e->key, s[i].e->key_len);
        it->key_len = s[i].e->key_len;
        it->full_len = s[i].e->full_len;
        it->hash = s[i].e->hash;
        it->slot = s[i].e->slot;
        it->rps = s[i].rps;
        it->err_rps = s[i].err < 0.0 ? 0.0 : s[i].err;
    }
    sp_free(s);
    return k;
}

/* ---- reply --------------------------------------------------------- */

static void
hk_add_key(struct buf *out, const struct hotkeys_item *it)
{
    if (it->full_len <= it->key_len) {
        buf_add_bulk(out, it->key, it->key_len);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_append(&b, it->key, it->key_len);
    buf_printf(&b, "... (%llu more bytes)",
               (unsigned long long)(it->full_len - it->key_len));
    buf_add_bulk(out, b.data, b.len);
    buf_deinit(&b);
}

void
hotkeys_reply(struct buf *out, const struct hotkeys_item *items, size_t n,
              const char *const *masters)
{
    buf_add_array(out, (long long)n);
    for (size_t i = 0; i < n; i++) {
        const struct hotkeys_item *it = &items[i];
        long long err = (long long)it->err_rps;
        if ((double)err < it->err_rps)
            err++;
        buf_add_array(out, 6);
        hk_add_key(out, it);
        buf_add_int(out, (long long)(it->rps + 0.5));
        buf_add_int(out, err);
        buf_add_int(out, it->slot);
        buf_add_bulk_str(out,
                         masters != NULL && masters[i] != NULL ? masters[i]
                                                               : "");
        buf_add_int(out, (long long)it->full_len);
    }
}
