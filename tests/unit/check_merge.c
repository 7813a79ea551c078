/* slotproxy - BSD-2-Clause
 *
 * Unit tests for merge.c: every merge rule of fan-out commands, from the
 * fragments' RESP replies to the client's reply, table-driven, and the
 * replies a rule must refuse (a backend answering something else).
 */
#include "build_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "merge.h"
#include "util.h"

#define MAXF 4

struct merge_case {
    const char *what;
    int kind;                       /* enum cmd_merge */
    const char *frags[MAXF];        /* fragments' replies (NULL ends) */
    uint32_t nkeys[MAXF];           /* ARRAY: keys per fragment */
    uint32_t key_frag[8];           /* ARRAY: key -> fragment */
    uint32_t key_pos[8];            /* ARRAY: key -> index in fragment */
    uint32_t keys;                  /* ARRAY: keys of the request */
    uint32_t scan_master, nmasters; /* SCAN */
    const char *want;               /* merged reply, or NULL: refused */
};

static const struct merge_case cases[] = {
    { "mget in key order across fragments", CMD_MERGE_ARRAY,
      { "*2\r\n$1\r\na\r\n$-1\r\n", "*1\r\n$2\r\nbb\r\n" },
      { 2, 1 }, { 0, 1, 0 }, { 0, 0, 1 }, 3, 0, 0,
      "*3\r\n$1\r\na\r\n$2\r\nbb\r\n$-1\r\n" },
    { "mget one key per fragment", CMD_MERGE_ARRAY,
      { "*1\r\n$1\r\nx\r\n", "*1\r\n$-1\r\n" },
      { 1, 1 }, { 1, 0 }, { 0, 0 }, 2, 0, 0,
      "*2\r\n$-1\r\n$1\r\nx\r\n" },
    { "mget fragment answers fewer values", CMD_MERGE_ARRAY,
      { "*1\r\n$1\r\na\r\n", "*1\r\n$1\r\nb\r\n" },
      { 2, 1 }, { 0, 1, 0 }, { 0, 0, 1 }, 3, 0, 0, NULL },
    { "mget fragment answers an integer", CMD_MERGE_ARRAY,
      { ":1\r\n" }, { 1 }, { 0 }, { 0 }, 1, 0, 0, NULL },
    { "mget fragment claims more keys than the request", CMD_MERGE_ARRAY,
      { "*1\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n$1\r\nb\r\n" },
      { 1, 2 }, { 0, 1 }, { 0, 0 }, 2, 0, 0, NULL },
    { "del sums", CMD_MERGE_SUM, { ":1\r\n", ":2\r\n", ":0\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, ":3\r\n" },
    { "sum of a non-integer", CMD_MERGE_SUM, { ":1\r\n", "+OK\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, NULL },
    { "mset all ok", CMD_MERGE_OK, { "+OK\r\n", "+OK\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "+OK\r\n" },
    { "keys concatenated", CMD_MERGE_CONCAT,
      { "*1\r\n$1\r\na\r\n", "*0\r\n", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0,
      "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n" },
    { "concat of a non-array", CMD_MERGE_CONCAT, { "*0\r\n", "$1\r\na\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, NULL },
    { "flushall the same everywhere", CMD_MERGE_SAME,
      { "+OK\r\n", "+OK\r\n" }, { 0 }, { 0 }, { 0 }, 0, 0, 0, "+OK\r\n" },
    { "script exists anded", CMD_MERGE_AND,
      { "*2\r\n:1\r\n:1\r\n", "*2\r\n:1\r\n:0\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "*2\r\n:1\r\n:0\r\n" },
    { "script exists of unequal lengths", CMD_MERGE_AND,
      { "*2\r\n:1\r\n:1\r\n", "*1\r\n:1\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, NULL },
    { "randomkey first non-nil", CMD_MERGE_FIRST,
      { "$-1\r\n", "$1\r\nk\r\n", "$1\r\nj\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "$1\r\nk\r\n" },
    { "randomkey all empty", CMD_MERGE_FIRST, { "$-1\r\n", "$-1\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "$-1\r\n" },
    { "pubsub channels union, first seen order", CMD_MERGE_UNION,
      { "*2\r\n$1\r\nb\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n$1\r\nc\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0,
      "*3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n" },
    { "pubsub numsub summed per name", CMD_MERGE_PAIRSUM,
      { "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:0\r\n",
        "*4\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:5\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0,
      "*4\r\n$1\r\na\r\n:3\r\n$1\r\nb\r\n:5\r\n" },
    { "numsub of an odd list", CMD_MERGE_PAIRSUM,
      { "*1\r\n$1\r\na\r\n" }, { 0 }, { 0 }, { 0 }, 0, 0, 0, NULL },
    { "scan continues on the same master", CMD_MERGE_SCAN,
      { "*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 1, 3,
      "*2\r\n$5\r\n17409\r\n*1\r\n$1\r\nk\r\n" },
    { "scan moves to the next master", CMD_MERGE_SCAN,
      { "*2\r\n$1\r\n0\r\n*0\r\n" }, { 0 }, { 0 }, { 0 }, 0, 1, 3,
      "*2\r\n$1\r\n2\r\n*0\r\n" },
    { "scan ends after the last master", CMD_MERGE_SCAN,
      { "*2\r\n$1\r\n0\r\n*0\r\n" }, { 0 }, { 0 }, { 0 }, 0, 2, 3,
      "*2\r\n$1\r\n0\r\n*0\r\n" },
    { "scan cursor too large to carry", CMD_MERGE_SCAN,
      { "*2\r\n$19\r\n9223372036854775807\r\n*0\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 3, NULL },
    { "scan of garbage", CMD_MERGE_SCAN, { "+OK\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 3, NULL },
    /* RESP3 parts (a RESP3 client's fragments): the merge keeps them. */
    { "resp3 mget nulls kept", CMD_MERGE_ARRAY,
      { "*2\r\n$1\r\na\r\n_\r\n", "*1\r\n_\r\n" },
      { 2, 1 }, { 0, 1, 0 }, { 0, 0, 1 }, 3, 0, 0,
      "*3\r\n$1\r\na\r\n_\r\n_\r\n" },
    { "resp3 sets concatenated as a set", CMD_MERGE_CONCAT,
      { "~1\r\n$1\r\na\r\n", "~2\r\n:1\r\n_\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "~3\r\n$1\r\na\r\n:1\r\n_\r\n" },
    { "resp3 set union", CMD_MERGE_UNION,
      { "~2\r\n$1\r\nb\r\n$1\r\na\r\n", "~2\r\n$1\r\na\r\n$1\r\nc\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0,
      "~3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n" },
    { "resp3 map summed per key", CMD_MERGE_PAIRSUM,
      { "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:0\r\n",
        "%2\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:5\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0,
      "%2\r\n$1\r\na\r\n:3\r\n$1\r\nb\r\n:5\r\n" },
    { "resp3 parts of mixed types", CMD_MERGE_CONCAT,
      { "~1\r\n$1\r\na\r\n", "*1\r\n$1\r\nb\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, NULL },
    { "resp3 randomkey first non-null", CMD_MERGE_FIRST,
      { "_\r\n", "$1\r\nk\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "$1\r\nk\r\n" },
    { "resp3 randomkey all empty", CMD_MERGE_FIRST, { "_\r\n", "_\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "_\r\n" },
    { "resp3 scalars in a concat", CMD_MERGE_CONCAT,
      { "*2\r\n,1.5\r\n#t\r\n", "*1\r\n+x\r\n" },
      { 0 }, { 0 }, { 0 }, 0, 0, 0, "*3\r\n,1.5\r\n#t\r\n+x\r\n" },
};

static void
run_case(const struct merge_case *t, struct buf *out, int *rc)
{
    struct merge_frag frags[MAXF];
    uint32_t n = 0;
    for (; n < MAXF && t->frags[n] != NULL; n++) {
        frags[n].data = t->frags[n];
        frags[n].len = strlen(t->frags[n]);
        frags[n].nkeys = t->nkeys[n];
    }
    struct merge_in in = {
        .frags = frags, .nfrags = n, .key_frag = t->key_frag,
        .key_pos = t->key_pos, .nkeys = t->keys,
        .scan_master = t->scan_master, .nmasters = t->nmasters,
    };
    *rc = merge_replies(t->kind, &in, out);
}

START_TEST(test_merge)
{
    const struct merge_case *t = &cases[_i];
    struct buf out;
    int rc;

    buf_init(&out);
    run_case(t, &out, &rc);
    if (t->want == NULL) {
        ck_assert_msg(rc != 0, "%s: accepted", t->what);
    } else {
        ck_assert_msg(rc == 0, "%s: refused", t->what);
        ck_assert_msg(out.len == strlen(t->want) &&
                          memcmp(out.data, t->want, out.len) == 0,
                      "%s: got %.*s", t->what, (int)out.len, out.data);
    }
    buf_deinit(&out);
}
END_TEST

/* The error the client gets: the first in key order, not the first
 * fragment to fail. */
START_TEST(test_first_error_in_key_order)
{
    struct merge_frag frags[3] = {
        { "-ERR first fragment\r\n", 21, 1 },
        { "*1\r\n$1\r\na\r\n", 11, 1 },
        { "-ERR third fragment\r\n", 21, 1 },
    };
    uint32_t key_frag[3] = { 2, 1, 0 }, key_pos[3] = { 0, 0, 0 };
    struct merge_in in = { .frags = frags, .nfrags = 3,
                           .key_frag = key_frag, .key_pos = key_pos,
                           .nkeys = 3 };
    ck_assert_ptr_eq(merge_first_error(&in), &frags[2]);
    in.nkeys = 0; /* an ALL command: fragment order */
    ck_assert_ptr_eq(merge_first_error(&in), &frags[0]);
    frags[0].data = "+OK\r\n";
    frags[0].len = 5;
    frags[2].data = "+OK\r\n";
    frags[2].len = 5;
    ck_assert_ptr_null(merge_first_error(&in));
}
END_TEST

/* INFO: the proxy's sections, then every master's keyspace summed. */
START_TEST(test_info_keyspace_summed)
{
    const char *a = "$46\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=100\r\n\r\n";
    const char *b = "$46\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=300\r\n\r\n";
    struct merge_frag frags[2] = {
        { a, strlen(a), 0 }, { b, strlen(b), 0 },
    };
    struct buf info, out;
    buf_init(&info);
    buf_init(&out);
    buf_append_str(&info, "# Server\r\n\r\n");
    struct merge_in in = { .frags = frags, .nfrags = 2, .info = &info };
    ck_assert_int_eq(merge_replies(CMD_MERGE_INFO, &in, &out), 0);
    const char *want = "# Server\r\n\r\n# Keyspace\r\n"
                       "db0:keys=5,expires=2,avg_ttl=200\r\n";
    char hdr[16];
    int n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", strlen(want));
    ck_assert(out.len == (size_t)n + strlen(want) + 2);
    ck_assert(memcmp(out.data, hdr, (size_t)n) == 0);
    ck_assert(memcmp(out.data + n, want, strlen(want)) == 0);
    buf_deinit(&info);
    buf_deinit(&out);
}
END_TEST

/* INFO for a RESP3 client: verbatim parts, a verbatim reply. */
START_TEST(test_info_keyspace_resp3)
{
    const char *a = "=48\r\ntxt:# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n\r\n";
    struct merge_frag frags[1] = { { a, strlen(a), 0 } };
    struct buf info, out;
    buf_init(&info);
    buf_init(&out);
    struct merge_in in = { .frags = frags, .nfrags = 1, .info = &info };
    ck_assert_int_eq(merge_replies(CMD_MERGE_INFO, &in, &out), 0);
    const char *want = "=48\r\ntxt:# Keyspace\r\n"
                       "db0:keys=2,expires=0,avg_ttl=0\r\n\r\n";
    ck_assert_uint_eq(out.len, strlen(want));
    ck_assert(memcmp(out.data, want, out.len) == 0);
    buf_deinit(&info);
    buf_deinit(&out);
}
END_TEST

static Suite *
merge_suite(void)
{
    Suite *s = suite_create("merge");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_merge, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_first_error_in_key_order);
    tcase_add_test(tc, test_info_keyspace_summed);
    tcase_add_test(tc, test_info_keyspace_resp3);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(merge_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
