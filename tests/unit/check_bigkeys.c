/* slotproxy - BSD-2-Clause
 *
 * Unit tests for bigkeys.c: threshold classification (a table), the
 * PROXY BIGKEYS reply byte for byte, the ring's wrap-around, count
 * rules, cut strings, reset, resize keeping the newest, copy, and the
 * merge of several workers' rings by time.
 */
#include "build_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigkeys.h"
#include "resp.h"
#include "util.h"

struct class_case {
    struct bigkeys_thresholds t; /* request_bytes, reply_bytes, elements */
    enum bigkeys_dir dir;       /* request or reply */
    uint64_t bytes;             /* size */
    int64_t elements;           /* elements, -1 for a scalar */
    unsigned want;              /* BIGKEYS_BIG_* mask */
};

#define MB (1024 * 1024)

static const struct class_case class_cases[] = {
    /* Strictly more than the threshold. */
    { {0, MB, 0}, BIGKEYS_REPLY, MB, -1, 0 },
    { {0, MB, 0}, BIGKEYS_REPLY, MB + 1, -1, BIGKEYS_BIG_BYTES },
    { {0, MB, 0}, BIGKEYS_REPLY, 2 * MB, 200000, BIGKEYS_BIG_BYTES },
    /* Elements, alone and with bytes. */
    { {0, MB, 100000}, BIGKEYS_REPLY, 500, 100000, 0 },
    { {0, MB, 100000}, BIGKEYS_REPLY, 500, 100001, BIGKEYS_BIG_ELEMENTS },
    { {0, MB, 100000}, BIGKEYS_REPLY, 3 * MB, 200000,
      BIGKEYS_BIG_BYTES | BIGKEYS_BIG_ELEMENTS },
    { {0, MB, 100000}, BIGKEYS_REPLY, 3 * MB, -1, BIGKEYS_BIG_BYTES },
    /* 0 turns a threshold off. */
    { {0, 0, 0}, BIGKEYS_REPLY, UINT64_MAX, INT64_MAX, 0 },
    { {0, 0, 10}, BIGKEYS_REPLY, UINT64_MAX, 11, BIGKEYS_BIG_ELEMENTS },
    /* Requests: bytes only, their own threshold. */
    { {0, MB, 10}, BIGKEYS_REQUEST, 5 * MB, 1000, 0 },
    { {MB, 0, 10}, BIGKEYS_REQUEST, MB, 1000, 0 },
    { {MB, 0, 10}, BIGKEYS_REQUEST, MB + 1, 1000, BIGKEYS_BIG_BYTES },
    { {MB, 1, 1}, BIGKEYS_REQUEST, 100, 1000, 0 },
};

START_TEST(test_classify)
{
    const struct class_case *c = &class_cases[_i];
    ck_assert_uint_eq(bigkeys_classify(&c->t, c->dir, c->bytes, c->elements),
                      c->want);
}
END_TEST

static void
add(struct bigkeys *b, uint64_t ms, enum bigkeys_dir dir, const char *cmd,
    const char *key, uint64_t bytes, int64_t elements, const char *node)
{
    struct bigkeys_event ev = {
        .unix_ms = ms, .dir = dir, .command = cmd, .key = key,
        .key_len = key ? strlen(key) : 0, .bytes = bytes,
        .elements = elements, .node = node,
    };
    bigkeys_add(b, &ev);
}

static void
assert_reply(const struct buf *out, const char *want)
{
    ck_assert_msg(out->len == strlen(want) &&
                      memcmp(out->data, want, out->len) == 0,
                  "got:\n%.*s\nwant:\n%s", (int)out->len, out->data, want);
}

START_TEST(test_reply_bytes)
{
    struct bigkeys b;
    struct buf out;
    bigkeys_init(&b, 4);
    buf_init(&out);
    add(&b, 1764880000123, BIGKEYS_REPLY, "get", "blob", 2097159, -1,
        "127.0.0.1:7000");
    add(&b, 1764880001999, BIGKEYS_REPLY, "lrange", "list", 1688895, 200000,
        "[::1]:7001");
    add(&b, 1764880002000, BIGKEYS_REQUEST, "ping", NULL, 3000000, 2, NULL);
    bigkeys_reply(&b, &out, -1);
    assert_reply(&out,
                 "*3\r\n"
                 "*7\r\n:1764880002\r\n$7\r\nrequest\r\n$4\r\nping\r\n"
                 "$-1\r\n:3000000\r\n:2\r\n$0\r\n\r\n"
                 "*7\r\n:1764880001\r\n$5\r\nreply\r\n$6\r\nlrange\r\n"
                 "$4\r\nlist\r\n:1688895\r\n:200000\r\n$10\r\n[::1]:7001\r\n"
                 "*7\r\n:1764880000\r\n$5\r\nreply\r\n$3\r\nget\r\n"
                 "$4\r\nblob\r\n:2097159\r\n:-1\r\n"
                 "$14\r\n127.0.0.1:7000\r\n");
    /* It parses as one RESP value of the documented shape. */
    struct resp_value *v = NULL;
    ck_assert_int_eq(resp_value_parse(out.data, out.len, &v), (long)out.len);
    ck_assert_uint_eq(v->nelems, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_eq(v->elems[i].nelems, 7);
    resp_value_free(v);
    buf_deinit(&out);
    bigkeys_deinit(&b);
}
END_TEST

/* Element 5 (bytes) of each entry of a reply, newest first, as a string
 * "a,b,c" for short assertions. */
static void
sizes_of(const struct buf *out, char *s, size_t n)
{
    struct resp_value *v = NULL;
    ck_assert_int_gt(resp_value_parse(out->data, out->len, &v), 0);
    s[0] = '\0';
    for (size_t i = 0; i < v->nelems; i++) {
        size_t at = strlen(s);
        snprintf(s + at, n - at, "%s%lld", i ? "," : "",
                 v->elems[i].elems[4].integer);
    }
    resp_value_free(v);
}

struct count_case {
    uint32_t cap;               /* ring size */
    int added;                  /* entries added, sizes 1, 2, 3 ... */
    long long count;            /* reply count argument */
    const char *want;           /* sizes in the reply, newest first */
};

static const struct count_case count_cases[] = {
    { 4, 0, -1, "" },
    { 4, 3, -1, "3,2,1" },
    { 4, 6, -1, "6,5,4,3" },        /* wrapped: the oldest two are gone */
    { 4, 6, 2, "6,5" },
    { 4, 6, 0, "" },
    { 4, 6, 100, "6,5,4,3" },
    { 20, 15, -1, "15,14,13,12,11,10,9,8,7,6" }, /* default count 10 */
    { 1, 5, -1, "5" },
    { 0, 5, -1, "" },               /* a zero-size ring records nothing */
};

START_TEST(test_ring_counts)
{
    const struct count_case *c = &count_cases[_i];
    struct bigkeys b;
    struct buf out;
    char got[256];
    bigkeys_init(&b, c->cap);
    buf_init(&out);
    for (int i = 1; i <= c->added; i++)
        add(&b, (uint64_t)i * 1000, BIGKEYS_REPLY, "get", "k", (uint64_t)i,
            -1, "n");
    bigkeys_reply(&b, &out, c->count);
    sizes_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, c->want);
    buf_deinit(&out);
    bigkeys_deinit(&b);
}
END_TEST

START_TEST(test_cut_strings)
{
    struct bigkeys b;
    struct buf out;
    char key[300], cmd[100], node[100];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    memset(cmd, 'c', sizeof(cmd) - 1);
    cmd[sizeof(cmd) - 1] = '\0';
    memset(node, 'n', sizeof(node) - 1);
    node[sizeof(node) - 1] = '\0';
    bigkeys_init(&b, 2);
    buf_init(&out);
    add(&b, 0, BIGKEYS_REPLY, cmd, key, 1, -1, node);
    bigkeys_reply(&b, &out, -1);
    struct resp_value *v = NULL;
    ck_assert_int_gt(resp_value_parse(out.data, out.len, &v), 0);
    const struct resp_value *e = v->elems[0].elems;
    ck_assert_uint_eq(e[2].len, BIGKEYS_CMD_MAX - 1);
    ck_assert_uint_eq(e[3].len, BIGKEYS_KEY_MAX + 20);
    ck_assert(memcmp(e[3].str + BIGKEYS_KEY_MAX, "... (171 more bytes)", 20)
              == 0);
    ck_assert_uint_eq(e[6].len, BIGKEYS_NODE_MAX - 1);
    resp_value_free(v);
    /* A binary key with NULs and an empty key survive. */
    struct bigkeys_event ev = {
        .dir = BIGKEYS_REPLY, .command = "get", .key = "a\0b",
        .key_len = 3, .bytes = 9, .elements = -1,
    };
    bigkeys_add(&b, &ev);
    ev.key = "";
    ev.key_len = 0;
    bigkeys_add(&b, &ev);
    out.len = out.pos = 0;
    bigkeys_reply(&b, &out, 2);
    ck_assert(memmem(out.data, out.len, "$3\r\na\0b\r\n", 9) != NULL);
    ck_assert(memmem(out.data, out.len, "$0\r\n\r\n", 6) != NULL);
    buf_deinit(&out);
    bigkeys_deinit(&b);
}
END_TEST

struct resize_case {
    uint32_t cap;               /* ring size before */
    int added;                  /* entries 1 .. added */
    uint32_t newcap;            /* ring size after */
    const char *want;           /* sizes, newest first, after */
};

static const struct resize_case resize_cases[] = {
    { 4, 6, 2, "6,5" },             /* shrink keeps the newest */
    { 4, 6, 8, "6,5,4,3" },         /* grow keeps all */
    { 4, 3, 3, "3,2,1" },           /* exactly full */
    { 4, 2, 1, "2" },
    { 4, 6, 4, "6,5,4,3" },         /* same size: unchanged */
    { 4, 6, 0, "" },
    { 0, 0, 3, "" },
};

START_TEST(test_resize)
{
    const struct resize_case *c = &resize_cases[_i];
    struct bigkeys b;
    struct buf out;
    char got[256];
    bigkeys_init(&b, c->cap);
    buf_init(&out);
    for (int i = 1; i <= c->added; i++)
        add(&b, (uint64_t)i, BIGKEYS_REPLY, "get", "k", (uint64_t)i, -1, "");
    bigkeys_resize(&b, c->newcap);
    bigkeys_reply(&b, &out, 100);
    sizes_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, c->want);
    /* And it keeps working as a ring after: one more in, oldest out. */
    add(&b, 100, BIGKEYS_REPLY, "get", "k", 99, -1, "");
    out.len = out.pos = 0;
    bigkeys_reply(&b, &out, 100);
    sizes_of(&out, got, sizeof(got));
    if (c->newcap > 0)
        ck_assert_int_eq(strncmp(got, "99", 2), 0);
    ck_assert_uint_le(b.len, c->newcap);
    buf_deinit(&out);
    bigkeys_deinit(&b);
}
END_TEST

START_TEST(test_reset_and_copy)
{
    struct bigkeys b, c;
    struct buf out;
    char got[256];
    bigkeys_init(&b, 3);
    bigkeys_init(&c, 0);
    buf_init(&out);
    for (int i = 1; i <= 5; i++)
        add(&b, (uint64_t)i, BIGKEYS_REPLY, "get", "k", (uint64_t)i, -1, "");
    bigkeys_copy(&c, &b);
    bigkeys_reset(&b);
    bigkeys_reply(&b, &out, -1);
    assert_reply(&out, "*0\r\n");
    out.len = out.pos = 0;
    bigkeys_reply(&c, &out, -1);
    sizes_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, "5,4,3");
    /* Copy into a ring of the same size reuses it. */
    struct bigkeys_entry *ring = c.ring;
    add(&b, 9, BIGKEYS_REPLY, "get", "k", 9, -1, "");
    bigkeys_copy(&c, &b);
    ck_assert_ptr_eq(c.ring, ring);
    out.len = out.pos = 0;
    bigkeys_reply(&c, &out, -1);
    sizes_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, "9");
    buf_deinit(&out);
    bigkeys_deinit(&b);
    bigkeys_deinit(&c);
}
END_TEST

START_TEST(test_merged)
{
    struct bigkeys w[3];
    struct buf out;
    char got[256];
    for (int i = 0; i < 3; i++)
        bigkeys_init(&w[i], 4);
    buf_init(&out);
    /* Size = time in ms, so the merge order reads off the sizes. Worker 0
     * wraps; worker 2 is empty; 5 appears twice (a tie: worker 0 first). */
    static const int t0[] = {1, 4, 5, 8, 11, 12};
    static const int t1[] = {2, 3, 5, 9};
    for (size_t i = 0; i < SP_ARRAY_LEN(t0); i++)
        add(&w[0], (uint64_t)t0[i], BIGKEYS_REPLY, "get", "a",
            (uint64_t)t0[i], -1, "w0");
    for (size_t i = 0; i < SP_ARRAY_LEN(t1); i++)
        add(&w[1], (uint64_t)t1[i], BIGKEYS_REPLY, "get", "b",
            (uint64_t)t1[i], -1, "w1");
    const struct bigkeys *const rings[] = {&w[0], &w[1], &w[2]};
    bigkeys_reply_merged(rings, 3, &out, 100);
    sizes_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, "12,11,9,8,5,5,3,2");
    ck_assert(memmem(out.data, out.len, "$2\r\nw0\r\n*7", 10) != NULL);
    out.len = out.pos = 0;
    bigkeys_reply_merged(rings, 3, &out, 3);
    sizes_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, "12,11,9");
    out.len = out.pos = 0;
    bigkeys_reply_merged(rings + 2, 1, &out, -1);
    assert_reply(&out, "*0\r\n");
    out.len = out.pos = 0;
    bigkeys_reply_merged(NULL, 0, &out, -1);
    assert_reply(&out, "*0\r\n");
    buf_deinit(&out);
    for (int i = 0; i < 3; i++)
        bigkeys_deinit(&w[i]);
}
END_TEST

static Suite *
bigkeys_suite(void)
{
    Suite *s = suite_create("bigkeys");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_classify, 0,
                        (int)SP_ARRAY_LEN(class_cases));
    tcase_add_test(tc, test_reply_bytes);
    tcase_add_loop_test(tc, test_ring_counts, 0,
                        (int)SP_ARRAY_LEN(count_cases));
    tcase_add_test(tc, test_cut_strings);
    tcase_add_loop_test(tc, test_resize, 0, (int)SP_ARRAY_LEN(resize_cases));
    tcase_add_test(tc, test_reset_and_copy);
    tcase_add_test(tc, test_merged);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(bigkeys_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
