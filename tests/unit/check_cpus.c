/* slotproxy - BSD-2-Clause
 *
 * Unit tests for cpus.c: the cgroup quota formats `workers: auto` reads,
 * and that the live answer is sane for this process.
 */
#include "build_config.h"

#include <check.h>
#include <sched.h>
#include <stdlib.h>

#include "cpus.h"

struct max_case {
    const char *line;           /* cgroup v2 cpu.max content */
    int cpus;                   /* CPUs it allows, 0 = no limit */
};

static const struct max_case max_cases[] = {
    { "max 100000\n", 0 },      /* no limit */
    { "100000 100000\n", 1 },
    { "150000 100000\n", 2 },   /* 1.5 CPUs: round up */
    { "200000 100000", 2 },
    { "50000 100000\n", 1 },    /* half a CPU still needs a worker */
    { "400000 50000\n", 8 },
    { "", 0 },                  /* garbage means no limit */
    { "abc 100000\n", 0 },
    { "100000\n", 0 },
    { "-1 100000\n", 0 },
    { "100000 0\n", 0 },
};

START_TEST(test_cpu_max)
{
    const struct max_case *c = &max_cases[_i];
    ck_assert_msg(cpus_parse_cpu_max(c->line) == c->cpus, "'%s': %d != %d",
                  c->line, cpus_parse_cpu_max(c->line), c->cpus);
}
END_TEST

START_TEST(test_v1_quota)
{
    ck_assert_int_eq(cpus_from_quota(-1, 100000), 0);
    ck_assert_int_eq(cpus_from_quota(0, 100000), 0);
    ck_assert_int_eq(cpus_from_quota(100000, 100000), 1);
    ck_assert_int_eq(cpus_from_quota(250000, 100000), 3);
    ck_assert_int_eq(cpus_from_quota(100000, -1), 0);
}
END_TEST

/* The answer never exceeds the affinity mask nor the cap. */
START_TEST(test_usable_within_affinity)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    int n = cpus_usable(1024);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, CPU_COUNT(&set));
    ck_assert_int_eq(cpus_usable(1), 1);
}
END_TEST

static Suite *
cpus_suite(void)
{
    Suite *s = suite_create("cpus");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_cpu_max, 0,
                        (int)(sizeof(max_cases) / sizeof(max_cases[0])));
    tcase_add_test(tc, test_v1_quota);
    tcase_add_test(tc, test_usable_within_affinity);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cpus_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
