/* slotproxy - BSD-2-Clause
 *
 * Unit tests for the pure parts of router.c: parsing MOVED/ASK errors,
 * the redirect rule (router_verdict: a reply is data, and only cluster
 * members are followed), which commands run scripts, and reading a
 * CLUSTER NODES text for membership. The slot map is the recorded
 * 3-master capture of tests/unit/data/slotmap (slot 0 on 127.0.0.1:43847,
 * slot 5461 on 127.0.0.1:45641).
 */
#include "build_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "resp.h"
#include "router.h"
#include "slotmap.h"

#ifndef SP_TESTDATA
#error "SP_TESTDATA must name the tests/unit/data directory"
#endif

#define M1 43847 /* master of 0-5460 */
#define M2 45641 /* master of 5461-10922 */
#define R1 39081 /* replica of M1 */

/* ------------------------------------------------------------ parsing */

static const struct {
    const char *msg;
    int ok; /* 0: parsed, -1: refused */
    int ask;
    unsigned slot;
    const char *host;
    unsigned port;
} parse_cases[] = {
    {"MOVED 3999 127.0.0.1:6381", 0, 0, 3999, "127.0.0.1", 6381},
    {"ASK 0 10.0.0.2:7000", 0, 1, 0, "10.0.0.2", 7000},
    {"MOVED 16383 :7000", 0, 0, 16383, "", 7000},
    {"MOVED 1 redis-0.redis.svc:6379", 0, 0, 1, "redis-0.redis.svc", 6379},
    {"MOVED 1 ::1:6379", 0, 0, 1, "::1", 6379},
    {"MOVED 16384 127.0.0.1:7000", -1, 0, 0, "", 0},
    {"MOVED -1 127.0.0.1:7000", -1, 0, 0, "", 0},
    {"MOVED x 127.0.0.1:7000", -1, 0, 0, "", 0},
    {"MOVED 1 127.0.0.1:0", -1, 0, 0, "", 0},
    {"MOVED 1 127.0.0.1:65536", -1, 0, 0, "", 0},
    {"MOVED 1 127.0.0.1:70a", -1, 0, 0, "", 0},
    {"MOVED 1 127.0.0.1", -1, 0, 0, "", 0},
    {"MOVED 1", -1, 0, 0, "", 0},
    {"MOVED 1 a b:7000", -1, 0, 0, "", 0},
    {"MOVED 1 a\tb:7000", -1, 0, 0, "", 0},
    {"MOVED 1 a\rb:7000", -1, 0, 0, "", 0},
    {"MOVEDX 1 a:7000", -1, 0, 0, "", 0},
    {"TRYAGAIN Multiple keys request during rehashing of slot", -1, 0, 0, "",
     0},
    {"ERR MOVED 1 a:7000", -1, 0, 0, "", 0},
};

START_TEST(test_parse)
{
    struct router_redirect rd;
    const char *msg = parse_cases[_i].msg;
    int rc = router_parse_redirect(msg, strlen(msg), &rd);

    ck_assert_msg(rc == parse_cases[_i].ok, "%s: rc %d", msg, rc);
    if (rc != 0)
        return;
    ck_assert_int_eq(rd.ask, parse_cases[_i].ask);
    ck_assert_uint_eq(rd.slot, parse_cases[_i].slot);
    ck_assert_str_eq(rd.host, parse_cases[_i].host);
    ck_assert_uint_eq(rd.port, parse_cases[_i].port);
}
END_TEST

START_TEST(test_parse_long_host)
{
    char msg[400];
    struct router_redirect rd;

    memset(msg, 'a', sizeof(msg));
    memcpy(msg, "MOVED 1 ", 8);
    snprintf(msg + 300, 100, ":7000");
    ck_assert_int_eq(router_parse_redirect(msg, strlen(msg), &rd), -1);
    /* Not NUL-terminated input: only len bytes are read. */
    ck_assert_int_eq(router_parse_redirect("MOVED 1 a:7000xyz", 14, &rd), 0);
    ck_assert_uint_eq(rd.port, 7000);
}
END_TEST

START_TEST(test_runs_script)
{
    static const char *const yes[] = {"eval",       "eval_ro", "evalsha",
                                      "evalsha_ro", "fcall",   "fcall_ro"};
    static const char *const no[] = {
        "get",  "set",    "blpop",    "zunionstore", "multi",
        "exec", "script", "function", "publish",     "mget"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(
            router_runs_script(command_lookup(yes[i], strlen(yes[i]))), "%s",
            yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(
            !router_runs_script(command_lookup(no[i], strlen(no[i]))), "%s",
            no[i]);
    ck_assert(!router_runs_script(NULL));
}
END_TEST

/* ------------------------------------------------------------ verdict */

static struct slotmap *
map_load(void)
{
    char path[512], err[256];
    struct resp_value *v = NULL;
    snprintf(path, sizeof(path), "%s/slotmap/three_masters.resp", SP_TESTDATA);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert_int_gt(resp_value_parse(buf, n, &v), 0);
    struct slotmap *m =
        slotmap_from_cluster_slots(v, "127.0.0.1", err, sizeof(err));
    resp_value_free(v);
    ck_assert_msg(m != NULL, "%s", err);
    return m;
}

enum {
    F_KEYLESS = 1,
    F_SCRIPT = 2,
    F_ASKED = 4,
    F_REFRESHED = 8,
    F_MEMBER = 16,
    F_NOFROM = 32
};

static const struct {
    const char *why;
    const char *msg; /* the redirect */
    unsigned slot;   /* the request's slot */
    unsigned from;   /* port of the node that answered */
    int flags;       /* F_* */
    enum router_verdict want;
} verdict_cases[] = {
    {"real MOVED to a member", "MOVED 0 127.0.0.1:45641", 0, M1, 0,
     ROUTER_FOLLOW},
    {"real ASK to a member", "ASK 0 127.0.0.1:45641", 0, M1, 0, ROUTER_FOLLOW},
    {"MOVED to a replica (a promotion not seen yet)",
     "MOVED 0 127.0.0.1:39081", 0, M1, 0, ROUTER_FOLLOW},
    {"keyless request", "MOVED 0 127.0.0.1:45641", 0, M1, F_KEYLESS,
     ROUTER_PASS},
    {"slot not the request's", "MOVED 1 127.0.0.1:45641", 0, M1, 0,
     ROUTER_PASS},
    {"names the node that answered", "MOVED 0 127.0.0.1:43847", 0, M1, 0,
     ROUTER_PASS},
    {"same host, other port is another node", "MOVED 0 127.0.0.1:45641", 0, M1,
     F_NOFROM, ROUTER_FOLLOW},
    {"non-member: refresh first", "MOVED 0 10.9.9.9:6379", 0, M1, 0,
     ROUTER_REFRESH},
    {"non-member after the refresh", "MOVED 0 10.9.9.9:6379", 0, M1,
     F_REFRESHED, ROUTER_PASS},
    {"non-member a member's CLUSTER NODES lists", "ASK 0 10.9.9.9:6379", 0, M1,
     F_REFRESHED | F_MEMBER, ROUTER_FOLLOW},
    {"a MOVED needs the map, CLUSTER NODES is for ASK",
     "MOVED 0 10.9.9.9:6379", 0, M1, F_REFRESHED | F_MEMBER, ROUTER_PASS},
    {"member host, unknown port", "MOVED 0 127.0.0.1:1", 0, M1, F_REFRESHED,
     ROUTER_PASS},
    {"hostname non-member", "ASK 0 evil.example:6379", 0, M1, 0,
     ROUTER_REFRESH},
    {"script MOVED to the map's owner", "MOVED 5461 127.0.0.1:45641", 5461, M1,
     F_SCRIPT, ROUTER_FOLLOW},
    {"script MOVED to a member not owning the slot", "MOVED 0 127.0.0.1:45641",
     0, M1, F_SCRIPT, ROUTER_REFRESH},
    {"the same after the refresh", "MOVED 0 127.0.0.1:45641", 0, M1,
     F_SCRIPT | F_REFRESHED, ROUTER_PASS},
    {"script MOVED: CLUSTER NODES is not enough", "MOVED 0 10.9.9.9:6379", 0,
     M1, F_SCRIPT | F_REFRESHED | F_MEMBER, ROUTER_PASS},
    {"script ASK to a member", "ASK 0 127.0.0.1:45641", 0, M1, F_SCRIPT,
     ROUTER_FOLLOW},
    {"script after an ASK", "MOVED 0 127.0.0.1:43847", 0, M2,
     F_SCRIPT | F_ASKED, ROUTER_PASS},
    {"script keyless", "MOVED 0 127.0.0.1:45641", 0, M1, F_SCRIPT | F_KEYLESS,
     ROUTER_PASS},
    {"not a script after an ASK", "MOVED 0 127.0.0.1:43847", 0, M2, F_ASKED,
     ROUTER_FOLLOW},
};

START_TEST(test_verdict)
{
    struct slotmap *m = map_load();
    struct router_redirect rd;
    struct router_facts f;
    int fl = verdict_cases[_i].flags;

    ck_assert_int_eq(router_parse_redirect(verdict_cases[_i].msg,
                                           strlen(verdict_cases[_i].msg), &rd),
                     0);
    memset(&f, 0, sizeof(f));
    f.keyed = !(fl & F_KEYLESS);
    f.slot = (uint16_t)verdict_cases[_i].slot;
    f.script = !!(fl & F_SCRIPT);
    f.asked = !!(fl & F_ASKED);
    f.refreshed = !!(fl & F_REFRESHED);
    f.member = !!(fl & F_MEMBER);
    f.from_host = fl & F_NOFROM ? NULL : "127.0.0.1";
    f.from_port = (uint16_t)verdict_cases[_i].from;
    ck_assert_msg(router_verdict(m, &rd, &f) == verdict_cases[_i].want,
                  "%s: got %d", verdict_cases[_i].why,
                  router_verdict(m, &rd, &f));
    slotmap_put(m);
}
END_TEST

START_TEST(test_verdict_empty_map)
{
    /* Before any map: nothing is a member. */
    struct slotmap *m = slotmap_new_empty();
    struct router_redirect rd;
    struct router_facts f = {.keyed = 1, .slot = 0};

    ck_assert_int_eq(router_parse_redirect("MOVED 0 127.0.0.1:7000", 22, &rd),
                     0);
    ck_assert(router_verdict(m, &rd, &f) == ROUTER_REFRESH);
    f.refreshed = 1;
    ck_assert(router_verdict(m, &rd, &f) == ROUTER_PASS);
    slotmap_put(m);
}
END_TEST

/* ------------------------------------------------------- CLUSTER NODES */

static const char nodes_text[] =
    "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,"
    "redis-4.svc slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 "
    "1426238317239 4 connected\n"
    "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 "
    "master - 0 1426238316232 2 connected 5461-10922\n"
    "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 "
    "master,fail? - 0 1426238318243 3 connected 10923-16383\n"
    "6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 "
    "handshake - 0 1426238316232 5 connected\n"
    "824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :30006@31006 "
    "master,noaddr - 0 1426238318243 6 connected\n"
    "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 "
    "myself,master - 0 0 1 connected 0-5460\n"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:30007@31007 "
    "master,fail - 0 0 7 connected\n"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:30008@31008 "
    "master - 0 0 8 connected\n";

static const struct {
    const char *host;
    unsigned port;
    int want;
} nodes_cases[] = {
    {"127.0.0.1", 30002, 1},
    {"127.0.0.1", 30001, 1},   /* myself */
    {"127.0.0.1", 30003, 1},   /* fail?: one node's suspicion */
    {"127.0.0.1", 30008, 1},   /* a master with no slot yet */
    {"redis-4.svc", 30004, 1}, /* by hostname */
    {"127.0.0.1", 30004, 1},
    {"redis-4.svc", 30002, 0},
    {"127.0.0.1", 30005, 0}, /* handshake */
    {"", 30006, 0},          /* noaddr */
    {"127.0.0.1", 30007, 0}, /* fail */
    {"127.0.0.1", 31002, 0}, /* a bus port */
    {"127.0.0.1", 3000, 0},
    {"127.0.0.", 30002, 0},
    {"10.0.0.1", 30002, 0},
};

START_TEST(test_nodes_lists)
{
    ck_assert_msg(router_nodes_lists(
                      nodes_text, sizeof(nodes_text) - 1, nodes_cases[_i].host,
                      (uint16_t)nodes_cases[_i].port) == nodes_cases[_i].want,
                  "%s:%u", nodes_cases[_i].host, nodes_cases[_i].port);
}
END_TEST

START_TEST(test_nodes_garbage)
{
    static const char *const texts[] = {
        "", "\n\n", "x", "a b", "a b c", "a 127.0.0.1:1@2", " :@ , ,,\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        ck_assert_int_eq(
            router_nodes_lists(texts[i], strlen(texts[i]), "127.0.0.1", 1), 0);
}
END_TEST

static Suite *
router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *p = tcase_create("parse");
    TCase *v = tcase_create("verdict");
    TCase *n = tcase_create("nodes");

    tcase_add_loop_test(p, test_parse, 0,
                        (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
    tcase_add_test(p, test_parse_long_host);
    tcase_add_test(p, test_runs_script);
    suite_add_tcase(s, p);
    tcase_add_loop_test(
        v, test_verdict, 0,
        (int)(sizeof(verdict_cases) / sizeof(verdict_cases[0])));
    tcase_add_test(v, test_verdict_empty_map);
    suite_add_tcase(s, v);
    tcase_add_loop_test(n, test_nodes_lists, 0,
                        (int)(sizeof(nodes_cases) / sizeof(nodes_cases[0])));
    tcase_add_test(n, test_nodes_garbage);
    suite_add_tcase(s, n);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(router_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
