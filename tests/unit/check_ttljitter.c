/* slotproxy - BSD-2-Clause
 *
 * Unit tests for ttljitter.c: every command form that sets a relative
 * TTL, in mixed case and with options in any position; the absolute and
 * TTL-keeping forms that must never change; malformed requests left for
 * Redis to reject; the min_ttl edge in both units; the percent bounds;
 * the overflow edge; byte-exact re-encoding of the other arguments
 * (binary, inline requests); and the spread of 200 TTLs.
 *
 * Requests go through resp_req_parse, as on the request path, so argv
 * holds real offsets into the request bytes.
 */
#include "build_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "ttljitter.h"
#include "util.h"

static const struct resp_limits limits = {
    .max_request_size = 1 << 20, .max_multibulk = 1024, .max_inline = 1 << 16,
};

/* A parsed request: its bytes and argv. */
struct req {
    struct buf bytes;           /* the request as sent */
    struct resp_req parsed;     /* argv into bytes.data */
};

static void
req_parse(struct req *r)
{
    resp_req_init(&r->parsed);
    ck_assert_int_eq(resp_req_parse(&r->parsed, r->bytes.data, r->bytes.len,
                                    &limits),
                     RESP_DONE);
    ck_assert_uint_eq(r->parsed.len, r->bytes.len);
}

/* Build and parse the multibulk request of the space-separated words. */
static void
req_from_words(struct req *r, const char *words)
{
    const char *w[64];
    size_t n = 0;
    char *copy = strdup(words);
    for (char *t = strtok(copy, " "); t != NULL; t = strtok(NULL, " "))
        w[n++] = t;
    buf_init(&r->bytes);
    buf_add_array(&r->bytes, (long long)n);
    for (size_t i = 0; i < n; i++)
        buf_add_bulk_str(&r->bytes, w[i]);
    free(copy);
    req_parse(r);
}

static void
req_free(struct req *r)
{
    resp_req_deinit(&r->parsed);
    buf_deinit(&r->bytes);
}

/* Parse out (which must be exactly one multibulk request) back into
 * space-separated words. */
static void
words_of(const struct buf *out, char *s, size_t n)
{
    struct req r;
    buf_init(&r.bytes);
    buf_append(&r.bytes, out->data, out->len);
    req_parse(&r);
    ck_assert(!r.parsed.is_inline);
    s[0] = '\0';
    for (uint32_t i = 0; i < r.parsed.argc; i++) {
        size_t at = strlen(s);
        snprintf(s + at, n - at, "%s%.*s", i ? " " : "",
                 (int)r.parsed.argv[i].len,
                 r.bytes.data + r.parsed.argv[i].off);
    }
    req_free(&r);
}

/* Run the jitter on words; returns 1 and the new words, or 0. */
static int
jitter(const struct ttljitter_conf *conf, const char *words, uint64_t rnd,
       char *got, size_t n)
{
    struct req r;
    struct buf out;
    req_from_words(&r, words);
    buf_init(&out);
    const struct resp_arg *name = &r.parsed.argv[0];
    enum ttljitter_cmd cmd =
        ttljitter_command(r.bytes.data + name->off, name->len);
    int rc = ttljitter_apply(conf, cmd, r.bytes.data, r.parsed.argv,
                             r.parsed.argc, rnd, &out);
    if (rc)
        words_of(&out, got, n);
    else
        ck_assert_uint_eq(out.len, 0);
    buf_deinit(&out);
    req_free(&r);
    return rc;
}

#define MIN60 60000                  /* min_ttl 60 s, in ms */

struct jitter_case {
    uint32_t percent;           /* expiry_jitter.percent */
    uint64_t min_ttl_ms;        /* expiry_jitter.min_ttl */
    uint64_t rnd;               /* the random value passed */
    const char *in;             /* request words */
    const char *want;           /* new request, or NULL: unchanged */
};

/* With percent 10 and rnd <= 10 % of the TTL, the extra is rnd. */
static const struct jitter_case cases[] = {
    /* SET EX/PX, any case, options anywhere. */
    {10, MIN60, 50, "SET k v EX 1000", "SET k v EX 1050"},
    {10, MIN60, 50, "set k v ex 1000", "set k v ex 1050"},
    {10, MIN60, 50, "sEt k v eX 1000", "sEt k v eX 1050"},
    {10, MIN60, 777, "SET k v PX 100000", "SET k v PX 100777"},
    {10, MIN60, 777, "SET k v px 100000 NX", "SET k v px 100777 NX"},
    {10, MIN60, 50, "SET k v NX GET EX 1000", "SET k v NX GET EX 1050"},
    {10, MIN60, 50, "SET k v xx EX 1000 get", "SET k v xx EX 1050 get"},
    {10, MIN60, 50, "SET k EX EX 1000", "SET k EX EX 1050"},
    {10, MIN60, 50, "SET EX v EX 1000", "SET EX v EX 1050"},
    {10, MIN60, 50, "SET k v IFEQ EX EX 1000", "SET k v IFEQ EX EX 1050"},
    /* The same option twice: the last wins, as in Redis. */
    {10, MIN60, 50, "SET k v EX 10 EX 1000", "SET k v EX 10 EX 1050"},
    {10, MIN60, 50, "SET k v EX 1000 EX 10", NULL},
    {10, MIN60, 50, "SET k v PX 5 px 100000", "SET k v PX 5 px 100050"},
    /* Absolute and TTL-keeping forms are never changed. */
    {10, MIN60, 50, "SET k v EXAT 2000000000", NULL},
    {10, MIN60, 50, "SET k v PXAT 2000000000000", NULL},
    {10, MIN60, 50, "SET k v KEEPTTL", NULL},
    {10, MIN60, 50, "SET k v", NULL},
    {10, MIN60, 50, "SET k v NX", NULL},
    /* Syntax errors Redis will report: left alone. */
    {10, MIN60, 50, "SET k v EX 1000 PX 5000", NULL},
    {10, MIN60, 50, "SET k v PX 100000 EX 1000", NULL},
    {10, MIN60, 50, "SET k v EX 1000 EXAT 2000000000", NULL},
    {10, MIN60, 50, "SET k v KEEPTTL EX 1000", NULL},
    {10, MIN60, 50, "SET k v EX 1000 KEEPTTL", NULL},
    {10, MIN60, 50, "SET k v PERSIST EX 1000", NULL},
    {10, MIN60, 50, "SET k v NX XX EX 1000", NULL},
    {10, MIN60, 50, "SET k v BOGUS EX 1000", NULL},
    {10, MIN60, 50, "SET k v EX 1000 BOGUS", NULL},
    {10, MIN60, 50, "SET k v EX", NULL},
    {10, MIN60, 50, "SET k v EX 1000 EX", NULL},
    {10, MIN60, 50, "SET k v IFEQ", NULL},
    {10, MIN60, 50, "SET k", NULL},
    /* Not a strict positive integer: left alone. */
    {10, MIN60, 50, "SET k v EX abc", NULL},
    {10, MIN60, 50, "SET k v EX -1000", NULL},
    {10, MIN60, 50, "SET k v EX 0", NULL},
    {10, MIN60, 50, "SET k v EX 1000.5", NULL},
    {10, MIN60, 50, "SET k v EX +1000", NULL},
    {10, MIN60, 50, "SET k v EX 01000", NULL},
    {10, MIN60, 50, "SET k v EX 1e3", NULL},
    /* SETEX, PSETEX. */
    {10, MIN60, 50, "SETEX k 1000 v", "SETEX k 1050 v"},
    {10, MIN60, 50, "setex k 1000 v", "setex k 1050 v"},
    {10, MIN60, 777, "PSETEX k 100000 v", "PSETEX k 100777 v"},
    {10, MIN60, 50, "SETEX k 1000", NULL},
    {10, MIN60, 50, "SETEX k 1000 v extra", NULL},
    {10, MIN60, 50, "SETEX k -1 v", NULL},
    /* GETEX. */
    {10, MIN60, 50, "GETEX k EX 1000", "GETEX k EX 1050"},
    {10, MIN60, 777, "getex k px 100000", "getex k px 100777"},
    {10, MIN60, 50, "GETEX k EX 10 ex 1000", "GETEX k EX 10 ex 1050"},
    {10, MIN60, 50, "GETEX k", NULL},
    {10, MIN60, 50, "GETEX k PERSIST", NULL},
    {10, MIN60, 50, "GETEX k EXAT 2000000000", NULL},
    {10, MIN60, 50, "GETEX k PXAT 2000000000000", NULL},
    {10, MIN60, 50, "GETEX k EX 1000 PERSIST", NULL},
    {10, MIN60, 50, "GETEX k NX EX 1000", NULL},   /* SET-only options */
    {10, MIN60, 50, "GETEX k GET EX 1000", NULL},
    {10, MIN60, 50, "GETEX k KEEPTTL EX 1000", NULL},
    /* EXPIRE, PEXPIRE and their flags. */
    {10, MIN60, 50, "EXPIRE k 1000", "EXPIRE k 1050"},
    {10, MIN60, 50, "expire k 1000 nx", "expire k 1050 nx"},
    {10, MIN60, 777, "PEXPIRE k 100000 GT", "PEXPIRE k 100777 GT"},
    {10, MIN60, 50, "EXPIRE k -1", NULL},
    {10, MIN60, 50, "EXPIRE k", NULL},
    {10, MIN60, 50, "EXPIREAT k 2000000000", NULL},
    {10, MIN60, 50, "PEXPIREAT k 2000000000000", NULL},
    {10, MIN60, 50, "PERSIST k", NULL},
    /* The hash-field family (Redis 7.4, 8.0). */
    {10, MIN60, 50, "HEXPIRE h 1000 FIELDS 1 f", "HEXPIRE h 1050 FIELDS 1 f"},
    {10, MIN60, 777, "hpexpire h 100000 NX FIELDS 2 a b",
     "hpexpire h 100777 NX FIELDS 2 a b"},
    {10, MIN60, 50, "HEXPIREAT h 2000000000 FIELDS 1 f", NULL},
    {10, MIN60, 50, "HPEXPIREAT h 2000000000000 FIELDS 1 f", NULL},
    {10, MIN60, 50, "HPERSIST h FIELDS 1 f", NULL},
    {10, MIN60, 50, "HEXPIRE h 0 FIELDS 1 f", NULL},
    {10, MIN60, 50, "HGETEX h EX 1000 FIELDS 1 f",
     "HGETEX h EX 1050 FIELDS 1 f"},
    {10, MIN60, 777, "HGETEX h px 100000 FIELDS 1 f",
     "HGETEX h px 100777 FIELDS 1 f"},
    {10, MIN60, 50, "HGETEX h PERSIST FIELDS 1 f", NULL},
    {10, MIN60, 50, "HGETEX h EXAT 2000000000 FIELDS 1 f", NULL},
    {10, MIN60, 50, "HGETEX h EX 1000", NULL},          /* no FIELDS */
    {10, MIN60, 50, "HGETEX h FIELDS 2 EX 1000", NULL}, /* field names */
    {10, MIN60, 50, "HGETEX h EX 1000 EX 1000 FIELDS 1 f", NULL},
    {10, MIN60, 50, "HSETEX h FNX EX 1000 FIELDS 1 f v",
     "HSETEX h FNX EX 1050 FIELDS 1 f v"},
    {10, MIN60, 50, "HSETEX h EX 1000 FXX FIELDS 1 f v",
     "HSETEX h EX 1050 FXX FIELDS 1 f v"},
    {10, MIN60, 50, "HSETEX h KEEPTTL FIELDS 1 f v", NULL},
    {10, MIN60, 50, "HSETEX h FNX FXX EX 1000 FIELDS 1 f v", NULL},
    {10, MIN60, 50, "HSETEX h FNX FNX EX 1000 FIELDS 1 f v", NULL},
    {10, MIN60, 50, "HSETEX h FIELDS 1 EX 1000", NULL},
    {10, MIN60, 50, "HSETEX h KEEPTTL EX 1000 FIELDS 1 f v", NULL},
    /* Commands without a relative TTL. */
    {10, MIN60, 50, "GET k", NULL},
    {10, MIN60, 50, "TTL k", NULL},
    {10, MIN60, 50, "RESTORE k 1000 x", NULL},
    {10, MIN60, 50, "SETNX k 1000", NULL},
    /* The min_ttl edge, in both units: at least min_ttl is changed. */
    {10, MIN60, 3, "SET k v EX 60", "SET k v EX 63"},
    {10, MIN60, 3, "SET k v EX 59", NULL},
    {10, MIN60, 3, "SET k v PX 60000", "SET k v PX 60003"},
    {10, MIN60, 3, "SET k v PX 59999", NULL},
    {10, MIN60, 3, "EXPIRE k 59", NULL},
    {10, 0, 0, "EXPIRE k 59", NULL},          /* extra 0: no rewrite */
    {10, 0, 1, "EXPIRE k 59", "EXPIRE k 60"},
    {10, 0, 1, "PEXPIRE k 9", NULL},          /* 10 % of 9 ms is 0 */
    {10, 0, 1, "PEXPIRE k 10", "PEXPIRE k 11"},
    /* Percent: the extra is rnd mod (percent % of TTL + 1). */
    {10, MIN60, 100, "SET k v EX 1000", "SET k v EX 1100"},
    {10, MIN60, 101, "SET k v EX 1000", NULL},
    {10, MIN60, 102, "SET k v EX 1000", "SET k v EX 1001"},
    {0, MIN60, 50, "SET k v EX 1000", NULL},
    {100, MIN60, 1000, "SET k v EX 1000", "SET k v EX 2000"},
    {250, MIN60, 1500, "SET k v EX 1000", "SET k v EX 1499"},
    {1, 0, 1, "SET k v EX 99", NULL},         /* 1 % of 99 is 0 */
    {1, 0, 1, "SET k v EX 100", "SET k v EX 101"},
    /* Overflow: TTLs near the top stay as sent. */
    {10, MIN60, 1, "SET k v PX 9223372036854775807", NULL},
    {10, MIN60, 1, "SET k v PX 9223372036854775808", NULL},
    {10, MIN60, 1, "SET k v EX 9223372036854775807", NULL},
    {10, MIN60, 1, "SET k v EX 9223372036854775", NULL},
    {10, MIN60, 1, "SET k v PX 4611686018427387903", NULL},
    {10, MIN60, 1, "SET k v PX 4611686018427387902",
     "SET k v PX 4611686018427387903"},
    {10, MIN60, 1, "SET k v EX 4611686018427387", NULL},
    {10, MIN60, 1, "SET k v EX 4611686018427386",
     "SET k v EX 4611686018427387"},
    {100, MIN60, UINT64_MAX, "PEXPIRE k 4611686018427387903", NULL},
    {100, MIN60, UINT64_MAX, "EXPIRE k 2305843009213693951", NULL},
};

START_TEST(test_jitter_cases)
{
    const struct jitter_case *c = &cases[_i];
    struct ttljitter_conf conf = {c->percent, c->min_ttl_ms};
    char got[512];
    int rc = jitter(&conf, c->in, c->rnd, got, sizeof(got));
    if (c->want == NULL)
        ck_assert_msg(rc == 0, "\"%s\" changed to \"%s\"", c->in, got);
    else
        ck_assert_msg(rc == 1 && strcmp(got, c->want) == 0,
                      "\"%s\": got \"%s\", want \"%s\"", c->in,
                      rc ? got : "(unchanged)", c->want);
}
END_TEST

struct name_case {
    const char *name;           /* command name */
    enum ttljitter_cmd cmd;     /* expected kind */
};

static const struct name_case names[] = {
    {"set", TTLJ_SET},         {"SET", TTLJ_SET},
    {"GetEx", TTLJ_GETEX},     {"setex", TTLJ_SETEX},
    {"PSETEX", TTLJ_PSETEX},   {"expire", TTLJ_EXPIRE},
    {"pexpire", TTLJ_PEXPIRE}, {"hexpire", TTLJ_HEXPIRE},
    {"HPEXPIRE", TTLJ_HPEXPIRE}, {"hgetex", TTLJ_HGETEX},
    {"hsetex", TTLJ_HSETEX},   {"expireat", TTLJ_NONE},
    {"pexpireat", TTLJ_NONE},  {"hexpireat", TTLJ_NONE},
    {"getset", TTLJ_NONE},     {"se", TTLJ_NONE},
    {"", TTLJ_NONE},           {"setexx", TTLJ_NONE},
    {"persist", TTLJ_NONE},    {"hpexpireat", TTLJ_NONE},
};

START_TEST(test_command_names)
{
    ck_assert_int_eq(ttljitter_command(names[_i].name,
                                       strlen(names[_i].name)),
                     names[_i].cmd);
}
END_TEST

/* The other arguments travel byte for byte: binary values with CRLF and
 * NUL; and an option with a NUL in it is not mistaken for EX. */
START_TEST(test_binary_args)
{
    static const char req[] =
        "*5\r\n$3\r\nSET\r\n$4\r\nk\0\r\n\r\n$6\r\nv\r\n\0\xff\r\r\n"
        "$2\r\nEX\r\n$4\r\n1000\r\n";
    static const char want[] =
        "*5\r\n$3\r\nSET\r\n$4\r\nk\0\r\n\r\n$6\r\nv\r\n\0\xff\r\r\n"
        "$2\r\nEX\r\n$4\r\n1050\r\n";
    struct ttljitter_conf conf = {10, MIN60};
    struct req r;
    struct buf out;
    buf_init(&r.bytes);
    buf_append(&r.bytes, req, sizeof(req) - 1);
    req_parse(&r);
    buf_init(&out);
    ck_assert_int_eq(ttljitter_apply(&conf, TTLJ_SET, r.bytes.data,
                                     r.parsed.argv, r.parsed.argc, 50, &out),
                     1);
    ck_assert_uint_eq(out.len, sizeof(want) - 1);
    ck_assert(memcmp(out.data, want, out.len) == 0);
    req_free(&r);
    buf_deinit(&out);

    /* "EX\0" is not EX to us: unknown option, left alone. */
    static const char nul[] =
        "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$3\r\nEX\0\r\n"
        "$4\r\n1000\r\n";
    buf_init(&r.bytes);
    buf_append(&r.bytes, nul, sizeof(nul) - 1);
    req_parse(&r);
    buf_init(&out);
    ck_assert_int_eq(ttljitter_apply(&conf, TTLJ_SET, r.bytes.data,
                                     r.parsed.argv, r.parsed.argc, 50, &out),
                     0);
    req_free(&r);
    buf_deinit(&out);
}
END_TEST

START_TEST(test_inline_request)
{
    static const char req[] = "set k \"a b\" ex 1000\r\n";
    struct ttljitter_conf conf = {10, MIN60};
    struct req r;
    struct buf out;
    char got[128];
    buf_init(&r.bytes);
    buf_append(&r.bytes, req, sizeof(req) - 1);
    req_parse(&r);
    ck_assert(r.parsed.is_inline);
    buf_init(&out);
    ck_assert_int_eq(ttljitter_apply(&conf, TTLJ_SET, r.bytes.data,
                                     r.parsed.argv, r.parsed.argc, 7, &out),
                     1);
    words_of(&out, got, sizeof(got));
    ck_assert_str_eq(got, "set k a b ex 1007");
    ck_assert(memmem(out.data, out.len, "$3\r\na b\r\n", 9) != NULL);
    req_free(&r);
    buf_deinit(&out);
}
END_TEST

/* The acceptance case in miniature: 200 keys written with EX 1000
 * and percent 10 get TTLs spread over [1000, 1100]. */
START_TEST(test_spread)
{
    struct ttljitter_conf conf = {10, MIN60};
    int seen[101] = {0}, distinct = 0, lo = 100, hi = 0;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200; i++) {
        char words[64], got[128];
        long long ttl;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(words, sizeof(words), "SET key:%d v EX 1000", i);
        if (!jitter(&conf, words, x, got, sizeof(got)))
            ttl = 1000;
        else
            ck_assert_int_eq(sscanf(strrchr(got, ' ') + 1, "%lld", &ttl), 1);
        ck_assert(ttl >= 1000 && ttl <= 1100);
        distinct += seen[ttl - 1000]++ == 0;
        lo = SP_MIN(lo, (int)(ttl - 1000));
        hi = SP_MAX(hi, (int)(ttl - 1000));
    }
    ck_assert_int_ge(distinct, 60);
    ck_assert_int_le(lo, 5);
    ck_assert_int_ge(hi, 95);
}
END_TEST

START_TEST(test_find_reports_position)
{
    struct req r;
    struct ttljitter_ttl t;
    req_from_words(&r, "SET k v NX PX 5 GET PX 123456");
    ck_assert_int_eq(ttljitter_find(TTLJ_SET, r.bytes.data, r.parsed.argv,
                                    r.parsed.argc, &t),
                     1);
    ck_assert_uint_eq(t.arg, 8);
    ck_assert_int_eq(t.unit_ms, 1);
    ck_assert_int_eq(t.ttl, 123456);
    ck_assert_int_eq(ttljitter_find(TTLJ_NONE, r.bytes.data, r.parsed.argv,
                                    r.parsed.argc, &t),
                     0);
    req_free(&r);
}
END_TEST

static Suite *
ttljitter_suite(void)
{
    Suite *s = suite_create("ttljitter");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_jitter_cases, 0, (int)SP_ARRAY_LEN(cases));
    tcase_add_loop_test(tc, test_command_names, 0, (int)SP_ARRAY_LEN(names));
    tcase_add_test(tc, test_binary_args);
    tcase_add_test(tc, test_inline_request);
    tcase_add_test(tc, test_spread);
    tcase_add_test(tc, test_find_reports_position);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ttljitter_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
