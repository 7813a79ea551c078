/* slotproxy - BSD-2-Clause
 *
 * Unit tests for hotkeys.c: a Zipf stream whose heavy hitters are known
 * exactly (one sketch and four merged), the space-saving invariants under
 * a random stream (sum of counts, error bounds, no duplicate entries), the
 * decay that lets a cooled key drop out, the rate estimate of a steady
 * stream, fixed memory, the sampling countdown's rate, and the reply.
 */
#include "build_config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "hotkeys.h"
#include "util.h"

#define NKEYS 10000
#define NREQ 300000
#define BIG_WINDOW 1000000000000ull

/* With sample rate 1, all adds at t = 1000 ms and no decay, the effective
 * span is one second: a key's estimated rate is its count. */
#define T_ADD 1000

static uint32_t
lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 1;
}

static void
key_name(char *out, size_t n, int i)
{
    snprintf(out, n, "user:%d:profile", i);
}

struct zipf {
    double cdf[NKEYS];          /* cumulative probabilities */
    uint32_t seed;              /* LCG state */
};

static void
zipf_init(struct zipf *z, double s, uint32_t seed)
{
    double sum = 0.0;
    for (int i = 0; i < NKEYS; i++) {
        sum += 1.0 / pow(i + 1, s);
        z->cdf[i] = sum;
    }
    for (int i = 0; i < NKEYS; i++)
        z->cdf[i] /= sum;
    z->seed = seed;
}

static int
zipf_next(struct zipf *z)
{
    double u = (double)(lcg(&z->seed) & 0xffffff) / (double)0x1000000;
    int lo = 0, hi = NKEYS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the key an item names, or -1. */
static int
item_key(const struct hotkeys_item *it)
{
    int i;
    char name[64];
    if (sscanf(it->key, "user:%d:", &i) != 1 || i < 0 || i >= NKEYS)
        return -1;
    key_name(name, sizeof(name), i);
    if (strlen(name) != it->key_len || memcmp(name, it->key, it->key_len))
        return -1;
    return i;
}

/* Feed a Zipf stream to nsk sketches round-robin; return true counts. */
static void
feed_zipf(struct hotkeys **sk, int nsk, unsigned *counts)
{
    static struct zipf z;
    zipf_init(&z, 1.1, 20261204);
    memset(counts, 0, NKEYS * sizeof(*counts));
    for (int r = 0; r < NREQ; r++) {
        char name[64];
        int i = zipf_next(&z);
        key_name(name, sizeof(name), i);
        counts[i]++;
        hotkeys_add(sk[r % nsk], name, strlen(name), (uint16_t)(i & 0x3fff),
                    T_ADD);
    }
}

/* The true top 10 of the Zipf stream are the 10 most probable keys: check
 * it on the counts, so that the test does not rest on that assumption. */
static void
check_top10(const unsigned *counts, const struct hotkeys_item *items,
            size_t n, int two_sided)
{
    ck_assert_uint_ge(n, 10);
    for (int i = 0; i < 9; i++)
        ck_assert_uint_gt(counts[i], counts[i + 1]);
    for (int i = 10; i < NKEYS; i++)
        ck_assert_uint_lt(counts[i], counts[9]);
    int seen[10] = {0};
    for (size_t j = 0; j < 10; j++) {
        int k = item_key(&items[j]);
        ck_assert_msg(k >= 0 && k < 10, "item %zu is key %d", j, k);
        seen[k]++;
    }
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(seen[i], 1);
    for (size_t j = 0; j < n; j++) {
        int k = item_key(&items[j]);
        ck_assert_int_ge(k, 0);
        double c = counts[k], lo = items[j].rps - items[j].err_rps;
        double hi = items[j].rps + (two_sided ? items[j].err_rps : 0.0);
        ck_assert_msg(c >= lo - 1e-6 && c <= hi + 1e-6,
                      "key %d: true %u, estimate %.1f +- %.1f", k,
                      counts[k], items[j].rps, items[j].err_rps);
        ck_assert_uint_eq(items[j].slot, (unsigned)(k & 0x3fff));
    }
}

START_TEST(test_zipf_one_sketch)
{
    static unsigned counts[NKEYS];
    struct hotkeys *h = hotkeys_new(HOTKEYS_K_DEFAULT, 1, BIG_WINDOW, 0);
    struct hotkeys_item items[HOTKEYS_K_DEFAULT];
    feed_zipf(&h, 1, counts);
    const struct hotkeys *const list[] = {h};
    size_t n = hotkeys_merge(list, 1, items, HOTKEYS_K_DEFAULT);
    ck_assert_uint_eq(n, HOTKEYS_K_DEFAULT);
    check_top10(counts, items, n, 0);
    /* The heaviest key is exact in practice: it never left the sketch. */
    ck_assert(items[0].err_rps == 0.0);
    ck_assert(items[0].rps == counts[0]);
    hotkeys_free(h);
}
END_TEST

START_TEST(test_zipf_four_merged)
{
    static unsigned counts[NKEYS];
    struct hotkeys *sk[4];
    struct hotkeys_item items[20];
    for (int i = 0; i < 4; i++)
        sk[i] = hotkeys_new(HOTKEYS_K_DEFAULT, 1, BIG_WINDOW, 0);
    feed_zipf(sk, 4, counts);
    const struct hotkeys *const list[] = {sk[0], sk[1], sk[2], sk[3]};
    size_t n = hotkeys_merge(list, 4, items, 20);
    ck_assert_uint_eq(n, 20);
    check_top10(counts, items, n, 1);
    for (size_t j = 1; j < n; j++)
        ck_assert(items[j - 1].rps >= items[j].rps);
    for (int i = 0; i < 4; i++)
        hotkeys_free(sk[i]);
}
END_TEST

/* The whole pipeline as a worker would run it: 100,000 requests per
 * second for 32 s, one in 64 sampled, 10 s windows, Zipf keys. The five
 * hottest are found, in order, with their rates within the sampling
 * noise (4 sigma: 6 % for the hottest, 14 % for the fifth). */
START_TEST(test_zipf_sampled_rates)
{
    enum { RATE = 100000, SECONDS = 32, TOP = 5 };
    static struct zipf z;
    static unsigned counts[NKEYS];
    struct hotkeys_sampler smp;
    struct hotkeys *h = hotkeys_new(HOTKEYS_K_DEFAULT, 64, 10000, 0);
    struct hotkeys_item items[TOP];
    zipf_init(&z, 1.1, 42);
    hotkeys_sampler_init(&smp, 64, 3);
    memset(counts, 0, sizeof(counts));
    for (uint64_t r = 0; r < (uint64_t)RATE * SECONDS; r++) {
        int i = zipf_next(&z);
        counts[i]++;
        if (hotkeys_should_sample(&smp)) {
            char name[64];
            key_name(name, sizeof(name), i);
            hotkeys_add(h, name, strlen(name), 0, r * 1000 / RATE);
        }
    }
    const struct hotkeys *const list[] = {h};
    ck_assert_uint_eq(hotkeys_merge(list, 1, items, TOP), TOP);
    for (int j = 0; j < TOP; j++) {
        double want = (double)counts[j] / SECONDS;
        /* Sampling noise: the decayed count holds about two windows of
         * samples; allow four standard deviations of that. */
        double tol = 4.0 / sqrt(want * 20.0 / 64.0);
        ck_assert_int_eq(item_key(&items[j]), j);
        ck_assert_msg(fabs(items[j].rps - want) < want * tol,
                      "key %d: %.0f rps, want %.0f", j, items[j].rps, want);
    }
    hotkeys_free(h);
}
END_TEST

/* Space-saving invariants after every add of a random stream over more
 * keys than counters: the counts sum to the stream length, each key's
 * true count lies in [count - error, count], and no key is held twice (a
 * broken index delete would make a key unreachable and re-added). */
START_TEST(test_invariants_random)
{
    enum { K = 16, KEYS = 40, STEPS = 3000 };
    struct hotkeys *h = hotkeys_new(K, 1, BIG_WINDOW, 0);
    struct hotkeys_item items[K];
    unsigned truth[KEYS] = {0};
    uint32_t seed = 7;
    for (int step = 1; step <= STEPS; step++) {
        char name[64];
        /* Skewed: low keys come more often, so counters change hands. */
        int i = (int)(lcg(&seed) % KEYS);
        i = (int)(lcg(&seed) % 2) ? i / 4 : i;
        key_name(name, sizeof(name), i);
        truth[i]++;
        hotkeys_add(h, name, strlen(name), 0, T_ADD);
        const struct hotkeys *const list[] = {h};
        size_t n = hotkeys_merge(list, 1, items, K);
        ck_assert_uint_eq(n, hotkeys_count(h));
        double sum = 0.0;
        for (size_t j = 0; j < n; j++) {
            int k = item_key(&items[j]);
            ck_assert_int_ge(k, 0);
            sum += items[j].rps;
            ck_assert(truth[k] <= items[j].rps);
            ck_assert(truth[k] >= items[j].rps - items[j].err_rps);
        }
        ck_assert_msg(sum == step, "sum %.0f after %d adds", sum, step);
    }
    hotkeys_free(h);
}
END_TEST

static int
find_key(const struct hotkeys_item *items, size_t n, const char *key)
{
    for (size_t j = 0; j < n; j++)
        if (items[j].key_len == strlen(key) &&
            memcmp(items[j].key, key, items[j].key_len) == 0)
            return (int)j;
    return -1;
}

START_TEST(test_decay_drops_cooled_key)
{
    struct hotkeys *h = hotkeys_new(10, 1, 1000, 0);
    struct hotkeys_item items[10];
    const struct hotkeys *const list[] = {h};
    uint64_t t = 0;
    /* "hot" for 5 s at 200/s; "warm" at 20/s throughout. */
    for (; t < 5000; t += 5) {
        hotkeys_add(h, "hot", 3, 1, t);
        if (t % 50 == 0)
            hotkeys_add(h, "warm", 4, 2, t);
    }
    size_t n = hotkeys_merge(list, 1, items, 10);
    ck_assert_int_eq(find_key(items, n, "hot"), 0);
    double was = items[0].rps;
    ck_assert_msg(was > 150 && was < 250, "hot at %.1f/s", was);
    /* Then "hot" stops. Its count halves each second and it sinks below
     * "warm", then leaves: 1000 samples need ~10 halvings. */
    int dropped_at = -1;
    for (int sec = 0; sec < 20 && dropped_at < 0; sec++) {
        for (uint64_t end = t + 1000; t < end; t += 50)
            hotkeys_add(h, "warm", 4, 2, t);
        n = hotkeys_merge(list, 1, items, 10);
        int at = find_key(items, n, "hot");
        if (at < 0)
            dropped_at = sec;
        else if (sec >= 4)
            ck_assert_int_gt(at, find_key(items, n, "warm"));
    }
    ck_assert_msg(dropped_at >= 5 && dropped_at <= 12, "dropped after %d s",
                  dropped_at);
    ck_assert_int_eq(find_key(items, n, "warm"), 0);
    ck_assert_uint_eq(hotkeys_count(h), 1);
    hotkeys_free(h);
}
END_TEST

START_TEST(test_decay_idle_worker)
{
    /* No traffic at all: the tick's advance alone empties the sketch. */
    struct hotkeys *h = hotkeys_new(10, 64, 10000, 5);
    for (int i = 0; i < 100; i++)
        hotkeys_add(h, "k", 1, 0, 5);
    hotkeys_advance(h, 5 + 6 * 10000);
    ck_assert_uint_eq(hotkeys_count(h), 1);
    hotkeys_advance(h, 5 + 200 * 10000ull);
    ck_assert_uint_eq(hotkeys_count(h), 0);
    /* Time going backwards (it should not) changes nothing. */
    hotkeys_add(h, "k", 1, 0, 5 + 200 * 10000ull);
    hotkeys_advance(h, 3);
    ck_assert_uint_eq(hotkeys_count(h), 1);
    hotkeys_free(h);
}
END_TEST

START_TEST(test_rate_estimate_steady)
{
    /* 6400 requests/s, 1 in 64 sampled: 100 samples/s, 10 s windows. The
     * estimate must read 6400 also before the first window ends. */
    struct hotkeys *h = hotkeys_new(10, 64, 10000, 0);
    struct hotkeys_item it;
    const struct hotkeys *const list[] = {h};
    for (uint64_t t = 0; t <= 60000; t += 10) {
        hotkeys_add(h, "steady", 6, 9, t);
        if (t % 3000 == 0 && t >= 2000) {
            ck_assert_uint_eq(hotkeys_merge(list, 1, &it, 1), 1);
            ck_assert_msg(fabs(it.rps - 6400) < 6400 * 0.03,
                          "t=%llu: %.1f rps", (unsigned long long)t, it.rps);
            ck_assert(it.err_rps == 0.0);
        }
    }
    hotkeys_free(h);
}
END_TEST

#ifdef HAVE_JEMALLOC
static uint64_t
thread_allocated(void)
{
    uint64_t v = 0;
    size_t sz = sizeof(v);
    if (mallctl("thread.allocated", &v, &sz, NULL, 0) != 0)
        return 0;
    return v;
}
#else
static uint64_t
thread_allocated(void)
{
    return 0;
}
#endif

START_TEST(test_memory_fixed)
{
    struct hotkeys *h = hotkeys_new(HOTKEYS_K_DEFAULT, 1, 10000, 0);
    size_t bytes = hotkeys_memory(h);
    ck_assert_uint_lt(bytes, 32 * 1024);
    uint64_t before = thread_allocated();
    char name[300];
    uint32_t most = 0;
    memset(name, 'x', sizeof(name));
    /* No ck_assert in the loop: Check allocates to record each one. */
    for (int i = 0; i < 1000000; i++) {
        int n = snprintf(name, sizeof(name), "%d", i);
        name[n] = 'x'; /* keep the long tail: every length up to 300 */
        hotkeys_add(h, name, (size_t)(i % 300) + 1, 0, (uint64_t)i / 10);
        most = SP_MAX(most, hotkeys_count(h));
    }
    ck_assert_uint_eq(thread_allocated(), before);
    ck_assert_uint_le(most, HOTKEYS_K_DEFAULT);
    ck_assert_uint_eq(hotkeys_memory(h), bytes);
    /* K is bounded, and so is memory. */
    struct hotkeys *big = hotkeys_new(1u << 30, 1, 1, 0);
    ck_assert_uint_le(hotkeys_memory(big),
                      HOTKEYS_K_MAX * (HOTKEYS_KEY_MAX + 64) + 65536);
    hotkeys_free(big);
    hotkeys_free(h);
}
END_TEST

START_TEST(test_long_keys_identity)
{
    struct hotkeys *h = hotkeys_new(10, 1, BIG_WINDOW, 0);
    struct hotkeys_item items[10];
    char a[200], b[200];
    memset(a, 'a', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[199] = 'b';                    /* differs at the end: two keys */
    hotkeys_add(h, a, sizeof(a), 0, T_ADD);
    hotkeys_add(h, b, sizeof(b), 0, T_ADD);
    ck_assert_uint_eq(hotkeys_count(h), 2);
    b[199] = 'a';
    b[150] = 'b';                    /* differs in the middle: one key */
    hotkeys_add(h, b, sizeof(b), 0, T_ADD);
    ck_assert_uint_eq(hotkeys_count(h), 2);
    hotkeys_add(h, a, 128, 0, T_ADD); /* exactly the kept prefix */
    hotkeys_add(h, a, 129, 0, T_ADD);
    hotkeys_add(h, "", 0, 0, T_ADD);
    ck_assert_uint_eq(hotkeys_count(h), 5);
    const struct hotkeys *const list[] = {h};
    size_t n = hotkeys_merge(list, 1, items, 10);
    ck_assert_uint_eq(n, 5);
    ck_assert_uint_eq(items[0].full_len, 200);
    ck_assert_uint_eq(items[0].key_len, HOTKEYS_KEY_MAX);
    ck_assert(items[0].rps == 2.0);
    hotkeys_free(h);
}
END_TEST

START_TEST(test_copy)
{
    struct hotkeys *h = hotkeys_new(8, 1, BIG_WINDOW, 0);
    struct hotkeys *c = hotkeys_new(8, 1, BIG_WINDOW, 0);
    struct hotkeys *other = hotkeys_new(9, 1, BIG_WINDOW, 0);
    struct hotkeys_item a[8], b[8];
    char name[64];
    for (int i = 0; i < 100; i++) {
        key_name(name, sizeof(name), i % 13 + i % 3);
        hotkeys_add(h, name, strlen(name), 0, T_ADD);
    }
    ck_assert_int_eq(hotkeys_copy(c, h), 0);
    ck_assert_int_eq(hotkeys_copy(other, h), -1);
    /* The writer goes on; the copy keeps the published state. */
    const struct hotkeys *const lc[] = {c};
    size_t nb = hotkeys_merge(lc, 1, b, 8);
    hotkeys_add(h, "later", 5, 0, T_ADD);
    const struct hotkeys *const lh[] = {h};
    size_t na = hotkeys_merge(lh, 1, a, 8);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_lt(find_key(b, nb, "later"), 0);
    ck_assert_int_ge(find_key(a, na, "later"), 0);
    /* The copy is a working sketch: adding to it keeps its invariants. */
    hotkeys_add(c, "later", 5, 0, T_ADD);
    nb = hotkeys_merge(lc, 1, b, 8);
    ck_assert_int_ge(find_key(b, nb, "later"), 0);
    hotkeys_free(h);
    hotkeys_free(c);
    hotkeys_free(other);
}
END_TEST

START_TEST(test_merge_empty)
{
    struct hotkeys *h = hotkeys_new(8, 1, 1000, 0);
    struct hotkeys_item it;
    const struct hotkeys *const list[] = {h};
    ck_assert_uint_eq(hotkeys_merge(list, 1, &it, 1), 0);
    ck_assert_uint_eq(hotkeys_merge(NULL, 0, &it, 1), 0);
    hotkeys_add(h, "a", 1, 0, 0);
    ck_assert_uint_eq(hotkeys_merge(list, 1, &it, 0), 0);
    hotkeys_reset(h, 10);
    ck_assert_uint_eq(hotkeys_count(h), 0);
    hotkeys_free(h);
}
END_TEST

struct rate_case {
    uint32_t rate;              /* N */
    uint32_t calls;             /* should_sample calls */
    uint32_t lo, hi;            /* bounds on the samples taken */
};

static const struct rate_case rate_cases[] = {
    { 64, 6400000, 99000, 101000 },  /* ~0.2 % standard deviation */
    { 1, 100000, 100000, 100000 },   /* every request */
    { 2, 1000000, 495000, 505000 },
    { 1000, 10000000, 9800, 10200 },
    { 0, 1000000, 0, 0 },            /* off */
};

START_TEST(test_sampler_rate)
{
    const struct rate_case *c = &rate_cases[_i];
    struct hotkeys_sampler s;
    hotkeys_sampler_init(&s, c->rate, (uint64_t)_i + 1);
    uint32_t taken = 0, gap = 0, max_gap = 0, min_gap = UINT32_MAX;
    for (uint32_t i = 0; i < c->calls; i++) {
        gap++;
        if (hotkeys_should_sample(&s)) {
            taken++;
            max_gap = SP_MAX(max_gap, gap);
            min_gap = SP_MIN(min_gap, gap);
            gap = 0;
        }
    }
    ck_assert_msg(taken >= c->lo && taken <= c->hi, "N=%u: %u of %u",
                  c->rate, taken, c->calls);
    if (c->rate > 1) {
        ck_assert_uint_le(max_gap, 2 * c->rate - 1);
        ck_assert_uint_ge(min_gap, 1);
        /* Random gaps, not a fixed period. */
        ck_assert_uint_lt(min_gap, c->rate);
        ck_assert_uint_gt(max_gap, c->rate);
    }
}
END_TEST

START_TEST(test_sampler_seeds_differ)
{
    struct hotkeys_sampler a, b;
    hotkeys_sampler_init(&a, 64, 1);
    hotkeys_sampler_init(&b, 64, 2);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        same += a.countdown == b.countdown;
        a.countdown = 1;
        b.countdown = 1;
        hotkeys_should_sample(&a);
        hotkeys_should_sample(&b);
    }
    ck_assert_int_lt(same, 10);
}
END_TEST

START_TEST(test_reply_shape)
{
    struct hotkeys_item it[2];
    memset(it, 0, sizeof(it));
    memcpy(it[0].key, "foo", 3);
    it[0].key_len = 3;
    it[0].full_len = 3;
    it[0].slot = 12182;
    it[0].rps = 1234.5;
    it[0].err_rps = 10.2;
    memset(it[1].key, 'k', HOTKEYS_KEY_MAX);
    it[1].key_len = HOTKEYS_KEY_MAX;
    it[1].full_len = 1000;
    it[1].slot = 7;
    it[1].rps = 99.4;
    const char *masters[] = {"10.0.0.1:6379", NULL};
    struct buf out;
    buf_init(&out);
    hotkeys_reply(&out, it, 2, masters);
    struct buf want;
    buf_init(&want);
    buf_append_str(&want, "*2\r\n*6\r\n$3\r\nfoo\r\n:1235\r\n:11\r\n:12182\r\n"
                          "$13\r\n10.0.0.1:6379\r\n:3\r\n*6\r\n$148\r\n");
    for (int i = 0; i < HOTKEYS_KEY_MAX; i++)
        buf_append(&want, "k", 1);
    buf_append_str(&want, "... (872 more bytes)\r\n:99\r\n:0\r\n:7\r\n"
                          "$0\r\n\r\n:1000\r\n");
    ck_assert_uint_eq(out.len, want.len);
    ck_assert(memcmp(out.data, want.data, out.len) == 0);
    buf_deinit(&out);
    buf_deinit(&want);
}
END_TEST

static Suite *
hotkeys_suite(void)
{
    Suite *s = suite_create("hotkeys");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zipf_one_sketch);
    tcase_add_test(tc, test_zipf_four_merged);
    tcase_add_test(tc, test_zipf_sampled_rates);
    tcase_add_test(tc, test_invariants_random);
    tcase_add_test(tc, test_decay_drops_cooled_key);
    tcase_add_test(tc, test_decay_idle_worker);
    tcase_add_test(tc, test_rate_estimate_steady);
    tcase_add_test(tc, test_memory_fixed);
    tcase_add_test(tc, test_long_keys_identity);
    tcase_add_test(tc, test_copy);
    tcase_add_test(tc, test_merge_empty);
    tcase_add_loop_test(tc, test_sampler_rate, 0,
                        (int)SP_ARRAY_LEN(rate_cases));
    tcase_add_test(tc, test_sampler_seeds_differ);
    tcase_add_test(tc, test_reply_shape);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(hotkeys_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
