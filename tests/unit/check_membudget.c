/* slotproxy - BSD-2-Clause
 *
 * Unit tests for membudget.c: a worker's share reaches the shared total
 * in coarse steps and exactly at a flush; the high- and low-water marks;
 * the workers' published largest clients; the largest-first order.
 */
#include "build_config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "membudget.h"

#define MB (1024 * 1024)

START_TEST(test_publish_in_steps)
{
    static struct membudget b;
    struct memacct a = {0};

    /* Small changes stay local: no shared write per request. */
    for (int i = 0; i < 100; i++)
        memacct_add(&a, &b, 100);
    ck_assert_int_eq(a.held, 10000);
    ck_assert_uint_eq(membudget_total(&b), 0);
    /* Past one step the whole difference is published. */
    memacct_add(&a, &b, MEMBUDGET_STEP);
    ck_assert_uint_eq(membudget_total(&b), 10000 + MEMBUDGET_STEP);
    ck_assert_int_eq(a.peak, 10000 + MEMBUDGET_STEP);
    /* Releases too, and a flush publishes the rest exactly. */
    memacct_add(&a, &b, -(int64_t)MEMBUDGET_STEP - 2000);
    ck_assert_uint_eq(membudget_total(&b), 8000);
    memacct_add(&a, &b, -8000);
    ck_assert_uint_eq(membudget_total(&b), 8000);
    memacct_flush(&a, &b);
    ck_assert_uint_eq(membudget_total(&b), 0);
    ck_assert_int_eq(a.held, 0);
}
END_TEST

START_TEST(test_two_workers_sum)
{
    static struct membudget b;
    struct memacct a1 = {0}, a2 = {0};

    memacct_add(&a1, &b, 3 * MB);
    memacct_add(&a2, &b, 5 * MB);
    ck_assert_uint_eq(membudget_total(&b), 8 * MB);
    memacct_add(&a1, &b, -3 * MB);
    ck_assert_uint_eq(membudget_total(&b), 5 * MB);
}
END_TEST

struct level_case {
    uint64_t total;             /* bytes held */
    uint64_t limit;             /* max_memory */
    enum membudget_level want;
    int below_low;              /* membudget_below_low */
};

static const struct level_case level_cases[] = {
    { 0, 0, MEM_OK, 1 },
    { 1ull << 40, 0, MEM_OK, 1 },           /* no budget */
    { 50 * MB, 100 * MB, MEM_OK, 1 },
    { 60 * MB, 100 * MB, MEM_OK, 0 },       /* the low mark: 60% */
    { 79 * MB, 100 * MB, MEM_OK, 0 },
    { 80 * MB, 100 * MB, MEM_HIGH, 0 },     /* the high mark: 80% */
    { 100 * MB, 100 * MB, MEM_HIGH, 0 },
    { 100 * MB + 1, 100 * MB, MEM_OVER, 0 },
};

START_TEST(test_levels)
{
    const struct level_case *t = &level_cases[_i];
    static struct membudget b;

    b.total = (int64_t)t->total;

    ck_assert_int_eq(membudget_level(&b, t->limit), t->want);
    ck_assert_int_eq(membudget_below_low(&b, t->limit), t->below_low);
}
END_TEST

START_TEST(test_tops)
{
    static struct membudget b;

    ck_assert_uint_eq(membudget_top_others(&b, 0), 0);
    membudget_set_top(&b, 0, 5 * MB);
    membudget_set_top(&b, 3, 2 * MB);
    membudget_set_top(&b, MEMBUDGET_MAX_WORKERS - 1, 1 * MB);
    membudget_set_top(&b, MEMBUDGET_MAX_WORKERS, 9 * MB); /* ignored */
    ck_assert_uint_eq(membudget_top_others(&b, 0), 2 * MB);
    ck_assert_uint_eq(membudget_top_others(&b, 3), 5 * MB);
    ck_assert_uint_eq(membudget_top_others(&b, 1), 5 * MB);
    membudget_set_top(&b, 0, 0);
    ck_assert_uint_eq(membudget_top_others(&b, 3), 1 * MB);
}
END_TEST

START_TEST(test_sort_largest_first)
{
    int x[5];
    struct mem_consumer v[5] = {
        { 10, &x[0] }, { 500, &x[1] }, { 0, &x[2] }, { 70, &x[3] },
        { 500, &x[4] },
    };

    membudget_sort(v, 5);
    for (int i = 1; i < 5; i++)
        ck_assert_uint_ge(v[i - 1].bytes, v[i].bytes);
    ck_assert_uint_eq(v[0].bytes, 500);
    ck_assert_uint_eq(v[4].bytes, 0);
    ck_assert_ptr_eq(v[4].owner, &x[2]);
    membudget_sort(v, 0);
}
END_TEST

static Suite *
membudget_suite(void)
{
    Suite *s = suite_create("membudget");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_publish_in_steps);
    tcase_add_test(tc, test_two_workers_sum);
    tcase_add_loop_test(tc, test_levels, 0,
                        (int)(sizeof(level_cases) / sizeof(level_cases[0])));
    tcase_add_test(tc, test_tops);
    tcase_add_test(tc, test_sort_largest_first);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(membudget_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
