/* slotproxy - BSD-2-Clause
 *
 * Unit tests for metrics.c: the table's rules (names valid for
 * Prometheus, one HELP and TYPE per name so its rows are adjacent, every
 * INFO row named, counters end in _total, widths match the fields, one
 * family per name), the aggregation over workers, the /healthz decision
 * and the /proc/self reader.
 */
#include "build_config.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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

/* Rows aggregate over workers by their column: counts add up, a view
 * of the cluster does not (masters down: the most; slots covered: the
 * least); histograms and errors by kind add. */
START_TEST(test_merge_by_aggregation)
{
    size_t n;
    const struct metric *t = metrics_table(&n);
    struct worker_stats *a = calloc(1, sizeof(*a));
    struct worker_stats *b = calloc(1, sizeof(*b));
    struct worker_stats *acc = calloc(1, sizeof(*acc));

    a->commands = 7;
    a->clients = 3;
    a->disc[DISC_OUTPUT_LIMIT] = 2;
    a->disc[DISC_IDLE] = 1;
    a->lat.count[1] = 5;
    a->lat.sum_us = 100;
    a->refresh.count[LAT_BUCKETS] = 1;
    a->errors_by_kind[0] = 4;
    a->nodes_down = 1;
    a->covered = 16384;
    a->masters = 3;
    *b = *a;
    b->covered = 100;
    b->nodes_down = 0;
    b->masters = 2;
    metrics_merge(acc, a, 1);
    metrics_merge(acc, b, 0);
    ck_assert_uint_eq(acc->commands, 14);
    ck_assert_uint_eq(acc->clients, 6);
    ck_assert_uint_eq(acc->disc[DISC_OUTPUT_LIMIT], 4);
    ck_assert_uint_eq(acc->disc[DISC_IDLE], 2);
    ck_assert_uint_eq(acc->lat.count[1], 10);
    ck_assert_uint_eq(acc->lat.sum_us, 200);
    ck_assert_uint_eq(acc->refresh.count[LAT_BUCKETS], 2);
    ck_assert_uint_eq(acc->errors_by_kind[0], 8);
    ck_assert_uint_eq(acc->nodes_down, 1);      /* MAX, not 1 + 0 */
    ck_assert_uint_eq(acc->covered, 100);       /* MIN */
    ck_assert_uint_eq(acc->masters, 3);         /* MAX */
    /* Same in the other order: MIN/MAX do not depend on who is first. */
    memset(acc, 0, sizeof(*acc));
    metrics_merge(acc, b, 1);
    metrics_merge(acc, a, 0);
    ck_assert_uint_eq(acc->nodes_down, 1);
    ck_assert_uint_eq(acc->covered, 100);
    for (size_t i = 0; i < n; i++)
        if (t[i].kind != METRIC_HISTOGRAM && t[i].agg == METRIC_AGG_SUM)
            ck_assert_uint_eq(metric_value(&t[i], acc),
                              metric_value(&t[i], a) +
                                  metric_value(&t[i], b));
    free(a);
    free(b);
    free(acc);
}
END_TEST

/* Prometheus naming: one family per name (no gauge X beside a counter
 * X_total), bytes counters end in _bytes_total, a histogram's name ends
 * in a unit; every reason and limit has its row. */
START_TEST(test_naming)
{
    size_t n;
    const struct metric *t = metrics_table(&n);
    int disc = 0, pin = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = t[i].name;
        size_t len = strlen(nm);
        for (size_t j = 0; j < n; j++) {
            size_t lj = strlen(t[j].name);
            ck_assert_msg(!(lj == len + 6 &&
                            strncmp(t[j].name, nm, len) == 0 &&
                            strcmp(t[j].name + len, "_total") == 0),
                          "%s and %s: one family", nm, t[j].name);
        }
        if (strstr(nm, "bytes") != NULL && t[i].kind == METRIC_COUNTER)
            ck_assert_msg(len > 12 &&
                              strcmp(nm + len - 12, "_bytes_total") == 0,
                          "%s", nm);
        if (t[i].kind == METRIC_HISTOGRAM)
            ck_assert_msg(strcmp(nm + len - 8, "_seconds") == 0, "%s", nm);
        if (t[i].kind == METRIC_HISTOGRAM)
            ck_assert_uint_eq(t[i].size, sizeof(struct lat_hist));
        else
            ck_assert_msg(t[i].size == 4 || t[i].size == 8, "%s", nm);
        disc += strcmp(nm, "disconnects_total") == 0;
        pin += strcmp(nm, "pinned_refusals_total") == 0;
    }
    ck_assert_int_eq(disc, DISC_COUNT);
    ck_assert_int_eq(pin, PIN_LIMIT_COUNT);
}
END_TEST

/* The buckets reach past the default request timeout (5 s). */
START_TEST(test_buckets_reach_10s)
{
    ck_assert_uint_eq(lat_bucket_us[LAT_BUCKETS - 1], 10000000);
    ck_assert_int_eq(lat_bucket(3000000), LAT_BUCKETS - 2);  /* le 5 s */
    ck_assert_int_eq(lat_bucket(4999999), LAT_BUCKETS - 2);
    ck_assert_int_eq(lat_bucket(5000001), LAT_BUCKETS - 1);  /* le 10 s */
    ck_assert_int_eq(lat_bucket(10000001), LAT_BUCKETS);     /* +Inf */
    ck_assert_int_eq(lat_bucket(0), 0);
    for (int b = 1; b < LAT_BUCKETS; b++)
        ck_assert_uint_gt(lat_bucket_us[b], lat_bucket_us[b - 1]);
}
END_TEST

/* /healthz: a worker whose tick is older than the bound is named; a
 * tick "in the future" (read before now was taken) is alive. */
START_TEST(test_stalled_worker)
{
    uint64_t ticks[3] = {10000, 9900, 10050};
    ck_assert_int_eq(metrics_stalled_worker(ticks, 3, 10100, 2000), -1);
    ck_assert_int_eq(metrics_stalled_worker(ticks, 3, 11900, 2000), -1);
    ck_assert_int_eq(metrics_stalled_worker(ticks, 3, 11901, 2000), 1);
    ticks[1] = 11900;
    ck_assert_int_eq(metrics_stalled_worker(ticks, 3, 12001, 2000), 0);
    ck_assert_int_eq(metrics_stalled_worker(ticks, 3, 12000, 2000), -1);
    ck_assert_int_eq(metrics_stalled_worker(ticks, 0, 99999, 2000), -1);
    ck_assert_int_eq(metrics_stalled_worker(ticks, 3, 5, 2000), -1);
}
END_TEST

START_TEST(test_proc_stat)
{
    /* Field 2 holds spaces and a ')': the fields start after the last. */
    const char *line =
        "4242 (slot proxy) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 "
        "250 150 0 0 20 0 5 0 123400 104857600 2560 18446744073709551615 "
        "1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";
    struct proc_stats p;
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(metrics_parse_proc_stat(line, 100, 4096, 1700000000,
                                             &p), 0);
    ck_assert_double_eq_tol(p.cpu_seconds, 4.0, 1e-9);
    ck_assert_double_eq_tol(p.start_time, 1700001234.0, 1e-6);
    ck_assert_uint_eq(p.vsize_bytes, 104857600);
    ck_assert_uint_eq(p.rss_bytes, 2560 * 4096);
    ck_assert_int_eq(metrics_parse_proc_stat("garbage", 100, 4096, 0, &p),
                     -1);
    ck_assert_int_eq(metrics_parse_proc_stat("1 (x) S 1 2", 100, 4096, 0,
                                             &p), -1);
    /* The real file parses, and this process has descriptors open. */
    ck_assert_int_eq(metrics_read_process(&p), 0);
    ck_assert_uint_gt(p.rss_bytes, 0);
    ck_assert_uint_gt(p.open_fds, 0);
    ck_assert(p.start_time > 1e9);
}
END_TEST

/* Per-node counters are found by the whole node name (Kubernetes FQDNs
 * run past 63 characters and differ only at the end) and the table
 * grows past 64 nodes; an index never changes. */
START_TEST(test_node_table)
{
    struct worker *w = calloc(1, sizeof(*w));
    char name[300];
    const char *fqdn = "redis-cluster-0.redis-cluster-headless.production-"
                       "namespace.svc.cluster.local";
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "%s:%d", fqdn, 7000 + i);
        ck_assert_uint_gt(strlen(name), 63);
        ck_assert_uint_eq(worker_node_index(w, name), (uint32_t)i);
    }
    ck_assert_uint_eq(w->nnodes, 200);
    snprintf(name, sizeof(name), "%s:%d", fqdn, 7000 + 150);
    ck_assert_uint_eq(worker_node_index(w, name), 150);
    ck_assert_str_eq(w->nodes[150].name, name);
    w->nodes[150].requests = 9;
    ck_assert_uint_eq(worker_node_index(w, "10.0.0.1:7000"), 200);
    ck_assert_uint_eq(w->nodes[150].requests, 9);
    for (uint32_t i = 0; i < w->nnodes; i++)
        sp_free((char *)w->nodes[i].name);
    sp_free(w->nodes);
    free(w);
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_table_rules);
    tcase_add_test(tc, test_merge_by_aggregation);
    tcase_add_test(tc, test_naming);
    tcase_add_test(tc, test_buckets_reach_10s);
    tcase_add_test(tc, test_stalled_worker);
    tcase_add_test(tc, test_proc_stat);
    tcase_add_test(tc, test_node_table);
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
