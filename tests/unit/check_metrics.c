/* slotproxy - BSD-2-Clause
 *
 * Unit tests for metrics.c: the table's rules (names valid for
 * Prometheus, one HELP and TYPE per name so its rows are adjacent, every
 * INFO row named, counters end in _total, widths match the fields) and
 * the sum over workers.
 */
#include "build_config.h"

#include <check.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "worker.h"

START_TEST(test_table_rules)
{
    size_t n;
    const struct metric *t = metrics_table(&n);
    ck_assert_uint_gt(n, 10);
    for (size_t i = 0; i < n; i++) {
        const struct metric *m = &t[i];
        for (const char *p = m->name; *p; p++)
            ck_assert_msg(islower((unsigned char)*p) || *p == '_' ||
                              isdigit((unsigned char)*p),
                          "%s: not a metric name", m->name);
        ck_assert_msg(m->size == 4 || m->size == 8, "%s", m->name);
        ck_assert_msg(m->help != NULL && m->help[0] != '\0', "%s", m->name);
        size_t len = strlen(m->name);
        if (m->kind == METRIC_COUNTER)
            ck_assert_msg(len > 6 && strcmp(m->name + len - 6, "_total") == 0,
                          "counter %s does not end in _total", m->name);
        if (m->section != METRIC_SEC_NONE)
            ck_assert_msg(m->info != NULL, "%s: no INFO name", m->name);
        /* A name seen before must be the previous row's: its HELP and
         * TYPE are printed once, at its first row. */
        for (size_t j = 0; j + 1 < i; j++)
            if (strcmp(t[j].name, m->name) == 0)
                ck_assert_str_eq(t[i - 1].name, m->name);
        for (size_t j = 0; j < i; j++)
            if (m->info != NULL && t[j].info != NULL)
                ck_assert_msg(strcmp(m->info, t[j].info) != 0,
                              "INFO field %s twice", m->info);
    }
}
END_TEST

START_TEST(test_add_sums_every_row)
{
    size_t n;
    const struct metric *t = metrics_table(&n);
    struct worker_stats *a = calloc(1, sizeof(*a));
    struct worker_stats *sum = calloc(1, sizeof(*sum));

    a->commands = 7;
    a->clients = 3;
    a->disc_output = 2;
    a->lat_count[1] = 5;
    a->errors_by_kind[0] = 4;
    metrics_add(sum, a);
    metrics_add(sum, a);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(metric_value(&t[i], sum),
                          2 * metric_value(&t[i], a));
    ck_assert_uint_eq(sum->commands, 14);
    ck_assert_uint_eq(sum->clients, 6);
    ck_assert_uint_eq(sum->disc_output, 4);
    ck_assert_uint_eq(sum->lat_count[1], 10);
    ck_assert_uint_eq(sum->errors_by_kind[0], 8);
    free(a);
    free(sum);
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_table_rules);
    tcase_add_test(tc, test_add_sums_every_row);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
