/* slotproxy - BSD-2-Clause
 *
 * Unit tests for slotmap.c. The well-formed cases are CLUSTER SLOTS replies
 * recorded byte for byte from a real 3-master/3-replica Redis 7.0 cluster
 * by scripts/record_cluster_slots.py (see tests/unit/data/slotmap/
 * README.txt for the cluster they came from; the ports and ids below are
 * copied from it). Malformed replies are written by hand.
 */
#include "build_config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "slotmap.h"

#ifndef SP_TESTDATA
#error "SP_TESTDATA must name the tests/unit/data directory"
#endif

#define SLOTS_DIR SP_TESTDATA "/slotmap/"

/* The recorded cluster, from README.txt. */
#define P_M1 43847              /* master of 0-5460 (the asked node) */
#define P_M2 45641              /* master of 5461-10922 */
#define P_M3 47643              /* master of 10923-16383 */
#define P_R1 39081              /* replica of P_M1 */
#define P_R2 52129              /* replica of P_M2 */
#define P_R3 35247              /* replica of P_M3 */
#define ID_M1 "45d61fb703ee3bbca27721c49bfa4a90951abefe"
#define ID_R2 "de944ad9e658a494074c3455c669d8ef1dddad70"

/* A decoded reply and the bytes its strings point into. */
struct reply {
    char *buf;                  /* raw RESP bytes, owned */
    struct resp_value *v;       /* decoded tree, owned */
};

static void
reply_from_bytes(struct reply *r, const char *bytes, size_t len)
{
    ssize_t n;

    r->buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(r->buf);
    memcpy(r->buf, bytes, len);
    r->v = NULL;
    n = resp_value_parse(r->buf, len, &r->v);
    ck_assert_msg(n == (ssize_t)len, "resp_value_parse returned %zd of %zu",
                  n, len);
    ck_assert_ptr_nonnull(r->v);
}

static void
reply_load(struct reply *r, const char *name)
{
    char path[512];
    char *data;
    long len;
    FILE *f;

    snprintf(path, sizeof(path), "%s%s", SLOTS_DIR, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    ck_assert_int_gt(len, 0);
    rewind(f);
    data = malloc((size_t)len);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    reply_from_bytes(r, data, (size_t)len);
    free(data);
}

static void
reply_free(struct reply *r)
{
    resp_value_free(r->v);
    free(r->buf);
}

/* Build a map from a recorded capture; fails the test on NULL. */
static struct slotmap *
map_load(const char *name, const char *asked_host)
{
    struct reply r;
    struct slotmap *m;
    char err[256];

    reply_load(&r, name);
    m = slotmap_from_cluster_slots(r.v, asked_host, err, sizeof(err));
    ck_assert_msg(m != NULL, "%s: %s", name, err);
    ck_assert_str_eq(err, "");
    reply_free(&r);         /* the map must own copies of its strings */
    return m;
}

static const struct sm_node *
node_of_slot(const struct slotmap *m, uint16_t slot)
{
    int i = slotmap_master_of(m, slot);

    ck_assert_msg(i >= 0, "slot %u uncovered", (unsigned)slot);
    ck_assert_int_lt(i, (int)m->nmasters);
    return &m->nodes[i];
}

/* Check the layout every capture of the recorded cluster shares: three
 * masters in range order, then their replicas, with the given hosts. */
static void
check_layout(const struct slotmap *m, const char *const hosts[6])
{
    static const uint16_t ports[6] = {
        P_M1, P_M2, P_M3, P_R1, P_R2, P_R3,
    };
    static const int masters[6] = { -1, -1, -1, 0, 1, 2 };

    ck_assert_uint_eq(m->nnodes, 6);
    ck_assert_uint_eq(m->nmasters, 3);
    ck_assert_uint_eq(m->epoch, 0);
    ck_assert_int_eq(m->refcount, 1);
    for (int i = 0; i < 6; i++) {
        ck_assert_uint_eq(m->nodes[i].port, ports[i]);
        ck_assert_str_eq(m->nodes[i].host, hosts[i]);
        ck_assert_int_eq(m->nodes[i].master, masters[i]);
        ck_assert_uint_eq(strlen(m->nodes[i].id), 40);
        ck_assert_int_eq(slotmap_find_node(m, hosts[i], ports[i]), i);
    }
    ck_assert_str_eq(m->nodes[0].id, ID_M1);
    ck_assert_str_eq(m->nodes[4].id, ID_R2);

    ck_assert_uint_eq(node_of_slot(m, 5460)->port, P_M1);
    ck_assert_uint_eq(node_of_slot(m, 5461)->port, P_M2);
    ck_assert_uint_eq(node_of_slot(m, 10922)->port, P_M2);
    ck_assert_uint_eq(node_of_slot(m, 10923)->port, P_M3);
    ck_assert_uint_eq(node_of_slot(m, 16383)->port, P_M3);
}

static const char *const ip_hosts[6] = {
    "127.0.0.1", "127.0.0.1", "127.0.0.1",
    "127.0.0.1", "127.0.0.1", "127.0.0.1",
};

START_TEST(test_three_masters)
{
    struct slotmap *m = map_load("three_masters.resp", "127.0.0.1");

    check_layout(m, ip_hosts);
    ck_assert_uint_eq(m->covered, SLOT_COUNT);
    ck_assert_uint_eq(node_of_slot(m, 0)->port, P_M1);
    ck_assert_int_eq(slotmap_find_node(m, "127.0.0.1", 1), -1);
    ck_assert_int_eq(slotmap_find_node(m, "127.0.0.2", P_M1), -1);
    slotmap_put(m);
}
END_TEST

START_TEST(test_three_masters_resp3)
{
    /* Under RESP3 the metadata element is a map, not an array. */
    struct slotmap *a = map_load("three_masters.resp", "127.0.0.1");
    struct slotmap *b = map_load("three_masters_resp3.resp", "127.0.0.1");

    check_layout(b, ip_hosts);
    ck_assert_uint_eq(b->covered, SLOT_COUNT);
    ck_assert_int_eq(slotmap_same_routes(a, b), 1);
    slotmap_put(a);
    slotmap_put(b);
}
END_TEST

START_TEST(test_unknown_endpoint)
{
    /* Redis 7.0 sends a nil endpoint for every node under
     * unknown-endpoint: each must become the host that was asked. */
    static const char *const asked[6] = {
        "10.1.2.3", "10.1.2.3", "10.1.2.3",
        "10.1.2.3", "10.1.2.3", "10.1.2.3",
    };
    struct slotmap *m = map_load("unknown_endpoint.resp", "10.1.2.3");
    struct reply r;
    char err[256];

    check_layout(m, asked);
    ck_assert_uint_eq(m->covered, SLOT_COUNT);
    slotmap_put(m);

    reply_load(&r, "unknown_endpoint.resp");
    ck_assert_ptr_null(slotmap_from_cluster_slots(r.v, NULL, err,
                                                  sizeof(err)));
    ck_assert_str_eq(err, "slot range 0 node 0 has an unknown endpoint "
                     "and no asked host");
    ck_assert_ptr_null(slotmap_from_cluster_slots(r.v, "", err,
                                                  sizeof(err)));
    reply_free(&r);
}
END_TEST

START_TEST(test_hostname)
{
    static const char *const hosts[6] = {
        "node1.sp.test", "node2.sp.test", "node3.sp.test",
        "node5.sp.test", "node6.sp.test", "node4.sp.test",
    };
    struct slotmap *m = map_load("hostname.resp", "127.0.0.1");
    struct slotmap *ip = map_load("three_masters.resp", "127.0.0.1");

    check_layout(m, hosts);
    /* Hostnames are case-insensitive. */
    ck_assert_int_eq(slotmap_find_node(m, "NODE2.sp.test", P_M2), 1);
    /* Same ports, other hosts: not the same routes. */
    ck_assert_int_eq(slotmap_same_routes(m, ip), 0);
    slotmap_put(m);
    slotmap_put(ip);
}
END_TEST

START_TEST(test_hostname_missing)
{
    /* The node that had not announced a hostname yet shows up as "?". */
    static const char *const hosts[6] = {
        "node1.sp.test", "node2.sp.test", "node3.sp.test",
        "node5.sp.test", "asked.example", "node4.sp.test",
    };
    struct slotmap *m = map_load("hostname_missing.resp", "asked.example");

    check_layout(m, hosts);
    slotmap_put(m);
}
END_TEST

START_TEST(test_partial)
{
    struct slotmap *m = map_load("partial.resp", "127.0.0.1");
    struct slotmap *full = map_load("three_masters.resp", "127.0.0.1");

    check_layout(m, ip_hosts);
    ck_assert_uint_eq(m->covered, SLOT_COUNT - 100);
    ck_assert_int_eq(slotmap_master_of(m, 0), -1);
    ck_assert_int_eq(slotmap_master_of(m, 99), -1);
    ck_assert_uint_eq(m->slot_node[50], SLOTMAP_NONE);
    ck_assert_uint_eq(node_of_slot(m, 100)->port, P_M1);
    ck_assert_int_eq(slotmap_same_routes(m, full), 0);
    ck_assert_int_eq(slotmap_same_routes(full, m), 0);
    ck_assert_int_eq(slotmap_same_routes(m, m), 1);
    /* The 100 uncovered slots (0-99) are the whole difference. */
    int first = 12345;
    ck_assert_uint_eq(slotmap_route_diff(m, full, &first), 100);
    ck_assert_int_eq(first, 0);
    ck_assert_uint_eq(slotmap_route_diff(full, m, &first), 100);
    ck_assert_uint_eq(slotmap_route_diff(m, m, &first), 0);
    ck_assert_int_eq(first, -1);
    ck_assert_uint_eq(slotmap_route_diff(m, full, NULL), 1);
    slotmap_put(m);
    slotmap_put(full);
}
END_TEST

START_TEST(test_empty)
{
    struct slotmap *m = slotmap_new_empty();
    struct slotmap *e;
    struct reply r;
    char err[64];

    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->nnodes, 0);
    ck_assert_uint_eq(m->nmasters, 0);
    ck_assert_uint_eq(m->covered, 0);
    ck_assert_int_eq(m->refcount, 1);
    ck_assert_int_eq(slotmap_master_of(m, 0), -1);
    ck_assert_int_eq(slotmap_master_of(m, 16383), -1);
    ck_assert_int_eq(slotmap_find_node(m, "127.0.0.1", 7000), -1);

    /* A cluster with no slot assigned answers an empty array. */
    reply_from_bytes(&r, "*0\r\n", 4);
    e = slotmap_from_cluster_slots(r.v, "h", err, sizeof(err));
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->nnodes, 0);
    ck_assert_int_eq(slotmap_same_routes(m, e), 1);
    reply_free(&r);
    slotmap_put(e);
    slotmap_put(m);
}
END_TEST

/* A node entry; a simple string endpoint spares counting bulk lengths
 * (and covers that Redis-compatible servers may send one). */
#define NODE(host, port) "*2\r\n+" #host "\r\n:" #port "\r\n"

START_TEST(test_old_formats)
{
    /* Redis < 4: [ip, port]; Redis 4-6: [ip, port, id]. A master with
     * two ranges, and its replica listed in both, appear once each. */
    static const char reply[] =
        "*3\r\n"
        "*4\r\n:0\r\n:99\r\n"
        "*3\r\n$8\r\n10.0.0.1\r\n:7000\r\n$2\r\nm1\r\n"
        "*2\r\n$8\r\n10.0.0.2\r\n:7000\r\n"
        "*3\r\n:100\r\n:199\r\n"
        "*2\r\n$8\r\n10.0.0.3\r\n:7001\r\n"
        "*4\r\n:200\r\n:16383\r\n"
        "*2\r\n$8\r\n10.0.0.1\r\n:7000\r\n"
        "*2\r\n$8\r\n10.0.0.2\r\n:7000\r\n";
    struct reply r;
    struct slotmap *m;
    char err[128];

    reply_from_bytes(&r, reply, sizeof(reply) - 1);
    m = slotmap_from_cluster_slots(r.v, "x", err, sizeof(err));
    ck_assert_msg(m != NULL, "%s", err);
    reply_free(&r);

    ck_assert_uint_eq(m->nnodes, 3);
    ck_assert_uint_eq(m->nmasters, 2);
    ck_assert_uint_eq(m->covered, SLOT_COUNT);
    ck_assert_str_eq(m->nodes[0].host, "10.0.0.1");
    ck_assert_str_eq(m->nodes[0].id, "m1");
    ck_assert_str_eq(m->nodes[1].host, "10.0.0.3");
    ck_assert_str_eq(m->nodes[1].id, "");
    ck_assert_str_eq(m->nodes[2].host, "10.0.0.2");
    ck_assert_int_eq(m->nodes[2].master, 0);
    ck_assert_int_eq(slotmap_master_of(m, 99), 0);
    ck_assert_int_eq(slotmap_master_of(m, 100), 1);
    ck_assert_int_eq(slotmap_master_of(m, 199), 1);
    ck_assert_int_eq(slotmap_master_of(m, 200), 0);
    slotmap_put(m);
}
END_TEST

struct bad_case {
    const char *name;           /* what is wrong */
    const char *resp;           /* raw reply */
    size_t len;                 /* its length (it may hold a NUL) */
    const char *err;            /* expected message */
};

#define BAD(name, resp, err) { name, resp, sizeof(resp) - 1, err }

#define RANGE(lo, hi) "*3\r\n:" #lo "\r\n:" #hi "\r\n"
#define LOCAL NODE(127.0.0.1, 7000)

static const struct bad_case bad_cases[] = {
    BAD("error reply",
      "-ERR This instance has cluster support disabled\r\n",
      "server replied: ERR This instance has cluster support disabled"),
    BAD("integer reply", ":1\r\n", "reply is not an array (type ':')"),
    BAD("nil array", "*-1\r\n", "reply is not an array (type '*')"),
    BAD("range not an array", "*1\r\n:5\r\n",
      "slot range 0 is not an array of start, end and at least one node"),
    BAD("range without node", "*1\r\n*2\r\n:0\r\n:5\r\n",
      "slot range 0 is not an array of start, end and at least one node"),
    BAD("start is a string",
      "*1\r\n*3\r\n$1\r\n0\r\n:5\r\n" LOCAL,
      "slot range 0 start or end is not an integer"),
    BAD("start > end",
      "*1\r\n" RANGE(10, 5) LOCAL,
      "slot range 0 has start 10 > end 5"),
    BAD("fourth range bad",
      "*4\r\n" RANGE(0, 0) LOCAL RANGE(1, 1) LOCAL RANGE(2, 2) LOCAL
      RANGE(10, 5) LOCAL,
      "slot range 3 has start 10 > end 5"),
    BAD("end past 16383",
      "*1\r\n" RANGE(0, 16384) LOCAL,
      "slot range 0 (0-16384) is outside 0-16383"),
    BAD("negative start",
      "*1\r\n" RANGE(-1, 5) LOCAL,
      "slot range 0 (-1-5) is outside 0-16383"),
    BAD("overlap",
      "*2\r\n" RANGE(0, 10) LOCAL RANGE(5, 20) NODE(127.0.0.1, 7001),
      "slot range 1 overlaps an earlier range at slot 5"),
    BAD("range listed twice",
      "*2\r\n" RANGE(0, 10) LOCAL RANGE(0, 10) LOCAL,
      "slot range 1 overlaps an earlier range at slot 0"),
    BAD("node not an array",
      "*1\r\n" RANGE(0, 5) "$9\r\n127.0.0.1\r\n",
      "slot range 0 node 0 is not an array of at least endpoint and port"),
    BAD("missing port",
      "*1\r\n" RANGE(0, 5) "*1\r\n$9\r\n127.0.0.1\r\n",
      "slot range 0 node 0 is not an array of at least endpoint and port"),
    BAD("port is a string",
      "*1\r\n" RANGE(0, 5) "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n7000\r\n",
      "slot range 0 node 0 port is not an integer"),
    BAD("port 0",
      "*1\r\n" RANGE(0, 5) NODE(127.0.0.1, 0),
      "slot range 0 node 0 has port 0 out of range"),
    BAD("port 65536",
      "*1\r\n" RANGE(0, 5) NODE(127.0.0.1, 65536),
      "slot range 0 node 0 has port 65536 out of range"),
    BAD("endpoint is an integer",
      "*1\r\n" RANGE(0, 5) "*2\r\n:1\r\n:7000\r\n",
      "slot range 0 node 0 endpoint is not a string"),
    BAD("endpoint with NUL",
      "*1\r\n" RANGE(0, 5) "*2\r\n$3\r\na\0b\r\n:7000\r\n",
      "slot range 0 node 0 has an invalid endpoint"),
    BAD("id is an integer",
      "*1\r\n" RANGE(0, 5) "*3\r\n$1\r\nh\r\n:7000\r\n:5\r\n",
      "slot range 0 node 0 has an invalid id"),
    BAD("metadata is a string",
      "*1\r\n" RANGE(0, 5) "*4\r\n$1\r\nh\r\n:7000\r\n$1\r\ni\r\n$1\r\nx\r\n",
      "slot range 0 node 0 metadata is not an array"),
    BAD("bad replica entry",
      "*1\r\n*4\r\n:0\r\n:5\r\n" LOCAL "*2\r\n$1\r\nh\r\n:0\r\n",
      "slot range 0 node 1 has port 0 out of range"),
    BAD("master listed as replica",
      "*2\r\n" RANGE(0, 5) LOCAL
      "*4\r\n:6\r\n:9\r\n" NODE(127.0.0.1, 7001) LOCAL,
      "slot range 1 lists master 127.0.0.1:7000 as a replica"),
    BAD("replica under two masters",
      "*2\r\n*4\r\n:0\r\n:5\r\n" LOCAL NODE(127.0.0.1, 7002)
      "*4\r\n:6\r\n:9\r\n" NODE(127.0.0.1, 7001) NODE(127.0.0.1, 7002),
      "slot range 1 lists replica 127.0.0.1:7002 under a second master"),
};

START_TEST(test_malformed)
{
    const struct bad_case *c = &bad_cases[_i];
    struct reply r;
    char err[256];

    reply_from_bytes(&r, c->resp, c->len);
    ck_assert_ptr_null(slotmap_from_cluster_slots(r.v, "h", err,
                                                  sizeof(err)));
    ck_assert_msg(strcmp(err, c->err) == 0, "%s: got \"%s\", want \"%s\"",
                  c->name, err, c->err);
    reply_free(&r);
}
END_TEST

START_TEST(test_error_buffer)
{
    /* A short or absent message buffer only truncates the message. */
    struct reply r;
    char err[8];

    reply_from_bytes(&r, ":1\r\n", 4);
    ck_assert_ptr_null(slotmap_from_cluster_slots(r.v, "h", err,
                                                  sizeof(err)));
    ck_assert_str_eq(err, "reply i");
    ck_assert_ptr_null(slotmap_from_cluster_slots(r.v, "h", NULL, 0));
    ck_assert_ptr_null(slotmap_from_cluster_slots(NULL, "h", err,
                                                  sizeof(err)));
    reply_free(&r);
}
END_TEST

START_TEST(test_refcount)
{
    struct slotmap *m = map_load("three_masters.resp", "127.0.0.1");

    ck_assert_int_eq(m->refcount, 1);
    ck_assert_ptr_eq(slotmap_get(m), m);
    ck_assert_int_eq(m->refcount, 2);
    slotmap_put(m);
    ck_assert_int_eq(m->refcount, 1);
    ck_assert_ptr_null(slotmap_get(NULL));
    slotmap_put(NULL);
    slotmap_put(m);         /* freed here; ASan reports a leak otherwise */
}
END_TEST

#define REF_THREADS 4
#define REF_ROUNDS 100000

static void *
ref_worker(void *arg)
{
    struct slotmap *m = arg;

    for (int i = 0; i < REF_ROUNDS; i++)
        slotmap_put(slotmap_get(m));
    return NULL;
}

START_TEST(test_refcount_threads)
{
    struct slotmap *m = slotmap_new_empty();
    pthread_t t[REF_THREADS];

    for (int i = 0; i < REF_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, ref_worker, m), 0);
    for (int i = 0; i < REF_THREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(m->refcount, 1);
    slotmap_put(m);
}
END_TEST

static Suite *
slotmap_suite(void)
{
    Suite *s = suite_create("slotmap");
    TCase *rec = tcase_create("recorded");
    TCase *bad = tcase_create("malformed");
    TCase *ref = tcase_create("refcount");

    tcase_add_test(rec, test_three_masters);
    tcase_add_test(rec, test_three_masters_resp3);
    tcase_add_test(rec, test_unknown_endpoint);
    tcase_add_test(rec, test_hostname);
    tcase_add_test(rec, test_hostname_missing);
    tcase_add_test(rec, test_partial);
    tcase_add_test(rec, test_empty);
    tcase_add_test(rec, test_old_formats);
    suite_add_tcase(s, rec);

    tcase_add_loop_test(bad, test_malformed, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(bad, test_error_buffer);
    suite_add_tcase(s, bad);

    tcase_add_test(ref, test_refcount);
    tcase_add_test(ref, test_refcount_threads);
    suite_add_tcase(s, ref);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(slotmap_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
