/* slotproxy - BSD-2-Clause
 *
 * Unit tests for replstat.c: answers folded into a master's entry (lag,
 * link, healthy count), a replica the master stops listing kept with
 * link 0 and its lag from its last offset, then forgotten; failures
 * reported once; the set following the map's masters; clones; and the
 * replica-read decision.
 */
#include "build_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "replstat.h"
#include "slotmap.h"
#include "util.h"

/* INFO replication of a master at offset moff with the replicas given
 * as "ip,port,state,offset" strings. */
static void
parse_info(struct replinfo *ri, long long moff, int n, const char *const *reps)
{
    char text[2048];
    size_t len = (size_t)snprintf(text, sizeof(text),
                                  "# Replication\r\nrole:master\r\n"
                                  "connected_slaves:%d\r\n", n);
    for (int i = 0; i < n; i++) {
        char ip[64], state[32];
        unsigned port;
        long long off;
        ck_assert_int_eq(sscanf(reps[i], "%63[^,],%u,%31[^,],%lld", ip, &port,
                                state, &off), 4);
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "slave%d:ip=%s,port=%u,state=%s,offset=%lld,"
                                "lag=0\r\n", i, ip, port, state, off);
    }
    len += (size_t)snprintf(text + len, sizeof(text) - len,
                            "master_repl_offset:%lld\r\n", moff);
    ck_assert_int_eq(replinfo_parse(ri, text, len), 0);
}

/* A map: masters m0 (host 10.0.0.1) and m1 (10.0.0.2) on port 7000,
 * replicas 10.0.0.11 of m0 and 10.0.0.12 of m1 on 7001. */
static struct slotmap *
test_map(int with_m1)
{
    static const char *const hosts[] = {"10.0.0.1", "10.0.0.2", "10.0.0.11",
                                        "10.0.0.12"};
    struct slotmap *m = slotmap_new_empty();
    uint32_t n = with_m1 ? 4 : 2;
    m->nodes = sp_calloc(n, sizeof(*m->nodes));
    m->nmasters = with_m1 ? 2 : 1;
    m->nnodes = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = with_m1 ? i : (i == 0 ? 0 : 2);
        m->nodes[i].host = sp_strdup(hosts[h]);
        m->nodes[i].id = sp_strdup("");
        m->nodes[i].port = h < 2 ? 7000 : 7001;
        m->nodes[i].master = h < 2 ? -1 : (int)(h - 2);
    }
    return m;
}

START_TEST(test_update_lag_and_link)
{
    struct replstat *s = replstat_new();
    struct slotmap *m = test_map(1);
    struct replinfo ri;
    replinfo_init(&ri);
    ck_assert_int_eq(replstat_sync_map(s, m), 1);
    ck_assert_uint_eq(s->nmasters, 2);
    struct replstat_master *ms = replstat_find(s, "10.0.0.1", 7000);
    ck_assert_ptr_eq(ms, &s->masters[0]);
    ck_assert_int_eq(ms->status, REPLSTAT_PENDING);
    ck_assert_int_eq(replstat_replica_fit(s, m, 2, UINT64_MAX), 0);

    const char *const two[] = {"10.0.0.11,7001,online,900",
                               "10.0.0.99,7001,wait_bgsave,0"};
    parse_info(&ri, 1000, 2, two);
    ck_assert_int_eq(replstat_update(ms, &ri, 10), 0);
    ck_assert_int_eq(ms->status, REPLSTAT_OK);
    ck_assert_uint_eq(ms->nreplicas, 2);
    ck_assert_uint_eq(replstat_healthy(ms), 1);
    const struct replstat_replica *r =
        replstat_find_replica(ms, "10.0.0.11", 7001);
    ck_assert(r != NULL && r->link_up && r->lag_known);
    ck_assert_uint_eq(r->lag_bytes, 100);
    ck_assert_int_eq(replstat_replica_fit(s, m, 2, 100), 1);
    ck_assert_int_eq(replstat_replica_fit(s, m, 2, 99), 0);
    ck_assert_int_eq(replstat_replica_fit(s, m, 3, UINT64_MAX), 0);
    ck_assert_int_eq(replstat_replica_fit(s, m, 0, UINT64_MAX), 0);
    ck_assert_int_eq(replstat_replica_fit(NULL, m, 2, UINT64_MAX), 0);

    /* The master drops 10.0.0.11 and writes on: kept, link 0, lag from
     * its last offset. */
    const char *const one[] = {"10.0.0.99,7001,online,5000"};
    parse_info(&ri, 5000, 1, one);
    ck_assert_int_eq(replstat_update(ms, &ri, 20), 0);
    r = replstat_find_replica(ms, "10.0.0.11", 7001);
    ck_assert(r != NULL && !r->link_up && r->lag_known);
    ck_assert_uint_eq(r->lag_bytes, 4100);
    ck_assert_uint_eq(replstat_healthy(ms), 1);
    ck_assert_int_eq(replstat_replica_fit(s, m, 2, UINT64_MAX), 0);

    /* Unlisted since 10: kept REPLSTAT_FORGET_MS, then gone. */
    ck_assert_int_eq(replstat_update(ms, &ri, 10 + REPLSTAT_FORGET_MS), 0);
    ck_assert_ptr_nonnull(replstat_find_replica(ms, "10.0.0.11", 7001));
    ck_assert_int_eq(replstat_update(ms, &ri, 11 + REPLSTAT_FORGET_MS), 0);
    ck_assert_ptr_null(replstat_find_replica(ms, "10.0.0.11", 7001));
    ck_assert_uint_eq(ms->nreplicas, 1);
    replinfo_deinit(&ri);
    slotmap_put(m);
    replstat_put(s);
}
END_TEST

START_TEST(test_fail_once_and_recover)
{
    struct replstat *s = replstat_new();
    struct slotmap *m = test_map(0);
    struct replinfo ri;
    replinfo_init(&ri);
    replstat_sync_map(s, m);
    struct replstat_master *ms = &s->masters[0];
    ck_assert_int_eq(replstat_fail(ms, "NOPERM no INFO for you"), 1);
    ck_assert_int_eq(replstat_fail(ms, "NOPERM again"), 0);
    ck_assert_uint_eq(ms->failures, 2);
    ck_assert_str_eq(ms->error, "NOPERM again");
    ck_assert_uint_eq(ms->polled_ms, 0);
    char longer[400];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    replstat_fail(ms, longer);
    ck_assert_uint_eq(strlen(ms->error), REPLSTAT_ERR_MAX - 1);
    const char *const one[] = {"10.0.0.11,7001,online,7"};
    parse_info(&ri, 7, 1, one);
    ck_assert_int_eq(replstat_update(ms, &ri, 5), 1);
    ck_assert_str_eq(ms->error, "");
    ck_assert_int_eq(replstat_update(ms, &ri, 6), 0);
    ck_assert_int_eq(replstat_replica_fit(s, m, 1, 0), 1);
    replinfo_deinit(&ri);
    slotmap_put(m);
    replstat_put(s);
}
END_TEST

START_TEST(test_follow_map_and_clone)
{
    struct replstat *s = replstat_new();
    struct slotmap *both = test_map(1), *one = test_map(0);
    struct replinfo ri;
    replinfo_init(&ri);
    replstat_sync_map(s, both);
    const char *const r1[] = {"10.0.0.12,7001,online,3"};
    parse_info(&ri, 3, 1, r1);
    replstat_update(replstat_find(s, "10.0.0.2", 7000), &ri, 1);
    s->masters[1].inflight = 1;

    struct replstat *c = replstat_clone(s);
    ck_assert_int_eq(c->masters[1].inflight, 0);
    ck_assert_ptr_ne(c->masters[1].replicas, s->masters[1].replicas);
    ck_assert_uint_eq(c->masters[1].nreplicas, 1);
    ck_assert_int_eq(replstat_replica_fit(c, both, 3, 0), 1);
    ck_assert_ptr_eq(replstat_get(c), c);
    replstat_put(c);

    /* m1 leaves the map: dropped; m0 kept as it was; no master added. */
    ck_assert_int_eq(replstat_sync_map(s, one), 0);
    ck_assert_uint_eq(s->nmasters, 1);
    ck_assert_ptr_null(replstat_find(s, "10.0.0.2", 7000));
    /* It comes back: PENDING, its replicas unknown again. */
    ck_assert_int_eq(replstat_sync_map(s, both), 1);
    ck_assert_int_eq(s->masters[1].status, REPLSTAT_PENDING);
    ck_assert_uint_eq(s->masters[1].nreplicas, 0);
    /* The clone kept what it had. */
    ck_assert_int_eq(replstat_replica_fit(c, both, 3, 0), 1);
    replstat_put(c);
    replinfo_deinit(&ri);
    slotmap_put(both);
    slotmap_put(one);
    replstat_put(s);
}
END_TEST

START_TEST(test_lag_unknown)
{
    struct replstat *s = replstat_new();
    struct slotmap *m = test_map(0);
    struct replinfo ri;
    replinfo_init(&ri);
    replstat_sync_map(s, m);
    /* A replica ahead of the master's offset (another history). */
    const char *const ahead[] = {"10.0.0.11,7001,online,90"};
    parse_info(&ri, 10, 1, ahead);
    replstat_update(&s->masters[0], &ri, 1);
    const struct replstat_replica *r = &s->masters[0].replicas[0];
    ck_assert(r->link_up && !r->lag_known && r->lag_bytes == 0);
    ck_assert_uint_eq(replstat_healthy(&s->masters[0]), 1);
    ck_assert_int_eq(replstat_replica_fit(s, m, 1, UINT64_MAX), 0);
    replinfo_deinit(&ri);
    slotmap_put(m);
    replstat_put(s);
}
END_TEST

static Suite *
replstat_suite(void)
{
    Suite *s = suite_create("replstat");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_update_lag_and_link);
    tcase_add_test(tc, test_fail_once_and_recover);
    tcase_add_test(tc, test_follow_map_and_clone);
    tcase_add_test(tc, test_lag_unknown);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(replstat_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
