/* slotproxy - BSD-2-Clause
 *
 * Unit tests for resp.c: tables of request and reply inputs with their
 * expected results, and the property that the parsers give the same result
 * whether the input arrives whole, byte by byte or in random chunks (the
 * test grows one buffer and calls the parser again with a longer length,
 * as client.c does; bytes not yet "received" hold "\r\n" garbage so that
 * reading past len changes the result).
 */
#include "build_config.h"

#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "util.h"

struct test_arg {
    const char *p;              /* expected argument bytes */
    size_t n;                   /* their length */
};

#define A(s) { (s), sizeof(s) - 1 }
#define IN(s) (s), sizeof(s) - 1

static const struct resp_limits test_lim = {
    .max_request_size = 512ULL * 1024 * 1024,
    .max_multibulk = 1024 * 1024,
    .max_inline = 64 * 1024,
};
static const struct resp_limits test_lim_small = {
    .max_request_size = 20,
    .max_multibulk = 2,
    .max_inline = 8,
};
/* A client that must still AUTH (Redis: 10 arguments, 16 KB bulks). */
static const struct resp_limits test_lim_unauth = {
    .max_request_size = 512ULL * 1024 * 1024,
    .max_multibulk = 1024 * 1024,
    .max_inline = 64 * 1024,
    .unauthenticated = 1,
};
static const struct resp_limits test_lim_huge = {
    .max_request_size = UINT64_MAX,
    .max_multibulk = UINT32_MAX,
    .max_inline = 64 * 1024,
};

#define E_MBULK "Protocol error: invalid multibulk length"
#define E_BULK "Protocol error: invalid bulk length"
#define E_QUOTES "Protocol error: unbalanced quotes in request"
#define E_INLINE "Protocol error: too big inline request"
#define E_UMBULK "Protocol error: unauthenticated multibulk length"
#define E_UBULK "Protocol error: unauthenticated bulk length"
#define E_MCOUNT "Protocol error: too big mbulk count string"
#define E_BCOUNT "Protocol error: too big bulk count string"

struct req_case {
    const char *in;             /* input bytes */
    size_t in_len;              /* their length */
    const struct resp_limits *lim; /* NULL: test_lim */
    int rc;                     /* status once every byte is fed */
    const char *err;            /* expected r->err on RESP_ERROR */
    uint64_t len;               /* expected r->len on RESP_DONE */
    int is_inline;              /* expected r->is_inline on RESP_DONE */
    uint32_t argc;              /* expected argument count */
    struct test_arg argv[5];    /* expected arguments */
};

static const struct req_case req_cases[] = {
    /* multibulk */
    { IN("*1\r\n$4\r\nPING\r\n"), NULL, RESP_DONE, NULL, 14, 0, 1,
      { A("PING") } },
    { IN("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n"),
      NULL, RESP_DONE, NULL, 27, 0, 3, { A("SET"), A("a"), A("b") } },
    { IN("*2\r\n$3\r\nA\0B\r\n$0\r\n\r\n"), NULL, RESP_DONE, NULL, 19, 0, 2,
      { A("A\0B"), A("") } },
    { IN("*1\r\n$4\r\n\r\n\r\n\r\n"), NULL, RESP_DONE, NULL, 14, 0, 1,
      { A("\r\n\r\n") } },
    /* Redis skips the byte after a count line's '\r' and the two bytes
     * after a payload without looking at them. */
    { IN("*1\rX$4\r\nPING\r\n"), NULL, RESP_DONE, NULL, 14, 0, 1,
      { A("PING") } },
    { IN("*1\r\n$4\r\nPINGXY*1"), NULL, RESP_DONE, NULL, 14, 0, 1,
      { A("PING") } },
    /* before AUTH: at most 10 arguments and 16384-byte bulks, refused
     * as soon as the count is read (Redis's processMultibulkBuffer) */
    { IN("*10\r\n"), &test_lim_unauth, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*11\r\n"), &test_lim_unauth, RESP_ERROR, E_UMBULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1048576\r\n"), &test_lim_unauth, RESP_ERROR, E_UMBULK, 0, 0, 0,
      { { 0 } } },
    { IN("*2147483648\r\n"), &test_lim_unauth, RESP_ERROR, E_MBULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$16384\r\n"), &test_lim_unauth, RESP_AGAIN, NULL, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$16385\r\n"), &test_lim_unauth, RESP_ERROR, E_UBULK, 0, 0,
      0, { { 0 } } },
    { IN("*2\r\n$4\r\nAUTH\r\n$536870912\r\n"), &test_lim_unauth,
      RESP_ERROR, E_UBULK, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$536870913\r\n"), &test_lim_unauth, RESP_ERROR, E_BULK, 0,
      0, 0, { { 0 } } },
    { IN("*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n"), &test_lim_unauth, RESP_DONE,
      NULL, 21, 0, 2, { A("AUTH"), A("p") } },
    { IN("*11\r\n"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    /* empty requests */
    { IN("*0\r\n"), NULL, RESP_DONE, NULL, 4, 0, 0, { { 0 } } },
    { IN("*-1\r\n*1\r\n"), NULL, RESP_DONE, NULL, 5, 0, 0, { { 0 } } },
    { IN("*-5\r\n"), NULL, RESP_DONE, NULL, 5, 0, 0, { { 0 } } },
    /* incomplete */
    { IN(""), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*1\r"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$4\r\nPIN"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$4\r\nPING\r"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*2\r\n$4\r\nPING\r\n"), NULL, RESP_AGAIN, NULL, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\nx"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    /* a NUL hides the line end from Redis's strchr(): it waits */
    { IN("*1\0\r\n$4\r\nPING\r\n"), NULL, RESP_AGAIN, NULL, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$4\0\r\nPING\r\n"), NULL, RESP_AGAIN, NULL, 0, 0, 0,
      { { 0 } } },
    /* bad counts */
    { IN("*-0\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*+1\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*01\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*1x\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("* 1\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*2147483648\r\n"), &test_lim_huge, RESP_ERROR, E_MBULK, 0, 0, 0,
      { { 0 } } },
    { IN("*99999999\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*9223372036854775808\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0,
      { { 0 } } },
    { IN("*3\r\n"), &test_lim_small, RESP_ERROR, E_MBULK, 0, 0, 0,
      { { 0 } } },
    /* bad bulk lengths */
    { IN("*1\r\n$-1\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$01\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$00\r\n\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$+4\r\nPING\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$999999999999999999\r\n"), &test_lim_huge, RESP_ERROR,
      E_BULK, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$1000000000000000000\r\n"), &test_lim_huge, RESP_ERROR,
      E_BULK, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$0\r"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("*1\r\n$0\rX\r\n"), NULL, RESP_DONE, NULL, 10, 0, 1, { A("") } },
    { IN("*00\r\n"), NULL, RESP_ERROR, E_MBULK, 0, 0, 0, { { 0 } } },
    { IN("*999999999999999999\r\n"), &test_lim_huge, RESP_ERROR, E_MBULK,
      0, 0, 0, { { 0 } } },
    { IN("*1\r\n$4 \r\nPING\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$2147483648\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$536870913\r\n"), NULL, RESP_ERROR, E_BULK, 0, 0, 0,
      { { 0 } } },
    { IN("*1\r\n$4294967296\r\n"), &test_lim_huge, RESP_ERROR, E_BULK, 0,
      0, 0, { { 0 } } },
    { IN("*1\r\n$4294967280\r\n"), &test_lim_huge, RESP_ERROR, E_BULK, 0,
      0, 0, { { 0 } } },
    { IN("*1\r\n$10\r\n"), &test_lim_small, RESP_ERROR, E_BULK, 0, 0, 0,
      { { 0 } } },
    { IN("*2\r\n$3\r\nabc\r\n$3\r\nabc\r\n"), &test_lim_small, RESP_ERROR,
      E_BULK, 0, 0, 0, { { 0 } } },
    { IN("*2\r\n$1\r\na\r\n$3\r\nabc\r\n"), &test_lim_small, RESP_DONE,
      NULL, 20, 0, 2, { A("a"), A("abc") } },
    /* bad type byte */
    { IN("*1\r\nx\r\n"), NULL, RESP_ERROR,
      "Protocol error: expected '$', got 'x'", 0, 0, 0, { { 0 } } },
    { IN("*1\r\n:1\r\n"), NULL, RESP_ERROR,
      "Protocol error: expected '$', got ':'", 0, 0, 0, { { 0 } } },
    { IN("*1\r\n\r\n"), NULL, RESP_ERROR,
      "Protocol error: expected '$', got ' '", 0, 0, 0, { { 0 } } },
    { IN("*1\r\n\xff\r\n"), NULL, RESP_ERROR,
      "Protocol error: expected '$', got '\xff'", 0, 0, 0, { { 0 } } },
    { IN("*2\r\n$1\r\na\r\n*1\r\n"), NULL, RESP_ERROR,
      "Protocol error: expected '$', got '*'", 0, 0, 0, { { 0 } } },
    /* inline */
    { IN("PING\r\n"), NULL, RESP_DONE, NULL, 6, 1, 1, { A("PING") } },
    { IN("PING\nPING\n"), NULL, RESP_DONE, NULL, 5, 1, 1, { A("PING") } },
    { IN("  SET\ta   b \r\n"), NULL, RESP_DONE, NULL, 14, 1, 3,
      { A("SET"), A("a"), A("b") } },
    { IN("SET \"a\\x41\\n\\t\\r\\b\\a\\\\\\\"\" 'b\\'c'\r\n"), NULL,
      RESP_DONE, NULL, 34, 1, 3,
      { A("SET"), A("aA\n\t\r\b\a\\\""), A("b'c") } },
    { IN("ECHO a\"b c\"\r\n"), NULL, RESP_DONE, NULL, 13, 1, 2,
      { A("ECHO"), A("ab c") } },
    { IN("ECHO \"\\q\" \"a\\x4\" \"\\xZZ\"\r\n"), NULL, RESP_DONE, NULL,
      25, 1, 4, { A("ECHO"), A("q"), A("ax4"), A("xZZ") } },
    { IN("ECHO 'a\\\\b' '\"'\r\n"), NULL, RESP_DONE, NULL, 17, 1, 3,
      { A("ECHO"), A("a\\\\b"), A("\"") } },
    { IN("ECHO \"\" ''\r\n"), NULL, RESP_DONE, NULL, 12, 1, 3,
      { A("ECHO"), A(""), A("") } },
    { IN("ECHO a\vb\r\n"), NULL, RESP_DONE, NULL, 10, 1, 2,
      { A("ECHO"), A("a\vb") } },
    { IN("\v\fPING\r\n"), NULL, RESP_DONE, NULL, 8, 1, 1, { A("PING") } },
    { IN("ECHO a\rb\n"), NULL, RESP_DONE, NULL, 9, 1, 3,
      { A("ECHO"), A("a"), A("b") } },
    { IN("ECHO \"x\"\v'y'\r\n"), NULL, RESP_DONE, NULL, 14, 1, 3,
      { A("ECHO"), A("x"), A("y") } },
    { IN("\xff\x80 \"\\xff\"\n"), NULL, RESP_DONE, NULL, 10, 1, 2,
      { A("\xff\x80"), A("\xff") } },
    { IN("$3\r\n"), NULL, RESP_DONE, NULL, 4, 1, 1, { A("$3") } },
    /* blank inline lines are empty requests */
    { IN("\r\n"), NULL, RESP_DONE, NULL, 2, 1, 0, { { 0 } } },
    { IN("\n"), NULL, RESP_DONE, NULL, 1, 1, 0, { { 0 } } },
    { IN(" \t \r\n"), NULL, RESP_DONE, NULL, 5, 1, 0, { { 0 } } },
    { IN("PING"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("PING\r"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("PING\0\nPING\n"), NULL, RESP_AGAIN, NULL, 0, 0, 0, { { 0 } } },
    { IN("ECHO \"a\"b\r\n"), NULL, RESP_ERROR, E_QUOTES, 0, 0, 0,
      { { 0 } } },
    { IN("ECHO 'a\r\n"), NULL, RESP_ERROR, E_QUOTES, 0, 0, 0, { { 0 } } },
    { IN("ECHO ''x\r\n"), NULL, RESP_ERROR, E_QUOTES, 0, 0, 0, { { 0 } } },
    { IN("ECHO \"a\\\r\n"), NULL, RESP_ERROR, E_QUOTES, 0, 0, 0, { { 0 } } },
    { IN("ECHO \"a\\\"\r\n"), NULL, RESP_ERROR, E_QUOTES, 0, 0, 0,
      { { 0 } } },
    { IN("ECHO \"a\n"), NULL, RESP_ERROR, E_QUOTES, 0, 0, 0, { { 0 } } },
    /* max_inline is 8 here */
    { IN("1234567\r\n"), &test_lim_small, RESP_DONE, NULL, 9, 1, 1,
      { A("1234567") } },
    { IN("12345678\r\n"), &test_lim_small, RESP_ERROR, E_INLINE, 0, 0, 0,
      { { 0 } } },
    { IN("123456789"), &test_lim_small, RESP_ERROR, E_INLINE, 0, 0, 0,
      { { 0 } } },
    { IN("12345678"), &test_lim_small, RESP_AGAIN, NULL, 0, 0, 0,
      { { 0 } } },
};

/* What one parse run produced; compared across feeding strategies. */
struct req_result {
    int rc;                     /* final status */
    const char *err;            /* r->err */
    uint64_t len;               /* r->len */
    int is_inline;              /* r->is_inline */
    uint32_t argc;              /* r->argc */
    char *args;                 /* "len:bytes," per argument, malloc'd */
    size_t args_len;            /* length of args */
    size_t at;                  /* bytes fed when the final status came */
};

/* A small fixed-seed generator, so failures reproduce. */
static uint64_t
test_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* Next chunk size: mode 0 whole, 1 byte by byte, 2 random. */
static size_t
test_chunk(int mode, uint64_t *seed, size_t left)
{
    size_t n;

    if (mode == 0)
        return left;
    if (mode == 1)
        return 1;
    switch (test_rand(seed) % 4) {
    case 0: n = 1 + test_rand(seed) % 3; break;
    case 1: n = 1 + test_rand(seed) % 17; break;
    case 2: n = 1 + test_rand(seed) % 300; break;
    default: n = 1 + test_rand(seed) % 70000; break;
    }
    return n < left ? n : left;
}

/* A buffer holding the input, "\r\n" garbage past what was fed so far. */
static char *
test_garbage_buf(size_t n)
{
    char *b = malloc(n + 1);

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++)
        b[i] = "\r\n\0*$"[i % 5];
    return b;
}

static void
req_run(const char *in, size_t n, const struct resp_limits *lim, int mode,
        uint64_t seed, struct req_result *res)
{
    struct resp_req r;
    char *b = test_garbage_buf(n);
    size_t fed = 0;
    int rc = RESP_AGAIN;

    resp_req_init(&r);
    while (fed < n) {
        size_t c = test_chunk(mode, &seed, n - fed);

        memcpy(b + fed, in + fed, c);
        fed += c;
        rc = resp_req_parse(&r, b, fed, lim);
        if (rc != RESP_AGAIN)
            break;
    }
    memset(res, 0, sizeof(*res));
    res->rc = rc;
    res->at = fed;
    if (rc == RESP_ERROR)
        res->err = r.err;
    if (rc == RESP_DONE) {
        size_t total = 0;

        res->len = r.len;
        res->is_inline = r.is_inline;
        res->argc = r.argc;
        ck_assert_uint_le(r.len, fed);
        for (uint32_t i = 0; i < r.argc; i++) {
            ck_assert_uint_le((uint64_t)r.argv[i].off + r.argv[i].len, r.len);
            total += r.argv[i].len + 16;
        }
        res->args = malloc(total + 1);
        for (uint32_t i = 0; i < r.argc; i++) {
            res->args_len += (size_t)sprintf(res->args + res->args_len, "%u:",
                                             r.argv[i].len);
            memcpy(res->args + res->args_len, b + r.argv[i].off,
                   r.argv[i].len);
            res->args_len += r.argv[i].len;
            res->args[res->args_len++] = ',';
        }
    }
    resp_req_deinit(&r);
    free(b);
}

static void
req_result_eq(const struct req_result *a, const struct req_result *b)
{
    ck_assert_int_eq(a->rc, b->rc);
    if (a->rc == RESP_ERROR)
        ck_assert_str_eq(a->err, b->err);
    ck_assert_uint_eq(a->len, b->len);
    ck_assert_int_eq(a->is_inline, b->is_inline);
    ck_assert_uint_eq(a->argc, b->argc);
    ck_assert_uint_eq(a->args_len, b->args_len);
    if (a->args_len > 0)
        ck_assert_mem_eq(a->args, b->args, a->args_len);
}

/*
 * Parse in whole, byte by byte and in iters random chunkings; all must
 * agree, and byte by byte a request must be DONE exactly at its last byte.
 * The whole-buffer result is returned in *whole (caller frees args).
 */
static void
req_check_property(const char *in, size_t n, const struct resp_limits *lim,
                   int iters, struct req_result *whole)
{
    struct req_result other;

    req_run(in, n, lim, 0, 0, whole);
    req_run(in, n, lim, 1, 0, &other);
    req_result_eq(whole, &other);
    if (other.rc == RESP_DONE)
        ck_assert_uint_eq(other.at, other.len);
    free(other.args);
    for (int i = 0; i < iters; i++) {
        req_run(in, n, lim, 2, (uint64_t)i * 7919 + 1, &other);
        req_result_eq(whole, &other);
        free(other.args);
    }
}

START_TEST(test_req_table)
{
    const struct req_case *c = &req_cases[_i];
    const struct resp_limits *lim = c->lim ? c->lim : &test_lim;
    struct req_result res;
    size_t off = 0;

    req_check_property(c->in, c->in_len, lim, 200, &res);
    ck_assert_msg(res.rc == c->rc, "case %d: rc %d, want %d", _i, res.rc,
                  c->rc);
    if (c->rc == RESP_ERROR)
        ck_assert_str_eq(res.err, c->err);
    if (c->rc != RESP_DONE) {
        free(res.args);
        return;
    }
    ck_assert_uint_eq(res.len, c->len);
    ck_assert_int_eq(res.is_inline, c->is_inline);
    ck_assert_uint_eq(res.argc, c->argc);
    for (uint32_t i = 0; i < c->argc; i++) {
        char head[32];
        int hl = sprintf(head, "%zu:", c->argv[i].n);

        ck_assert_mem_eq(res.args + off, head, (size_t)hl);
        off += (size_t)hl;
        ck_assert_mem_eq(res.args + off, c->argv[i].p, c->argv[i].n);
        off += c->argv[i].n + 1;
    }
    ck_assert_uint_eq(off, res.args_len);
    free(res.args);
}
END_TEST

/* Input built at run time: n copies of byte c after a prefix. */
static char *
test_fill(const char *prefix, char c, size_t n, const char *suffix,
          size_t *len)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *b = malloc(pl + n + sl + 1);

    memcpy(b, prefix, pl);
    memset(b + pl, c, n);
    memcpy(b + pl + n, suffix, sl);
    *len = pl + n + sl;
    return b;
}

static void
req_expect(const char *in, size_t n, const struct resp_limits *lim, int rc,
           const char *err, int iters)
{
    struct req_result res;

    req_check_property(in, n, lim, iters, &res);
    ck_assert_int_eq(res.rc, rc);
    if (err != NULL)
        ck_assert_str_eq(res.err, err);
    free(res.args);
}

START_TEST(test_req_big_lines)
{
    size_t n;
    char *b;

    b = test_fill("*", '1', 70000, "", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_MCOUNT, 5);
    free(b);
    b = test_fill("*1\r\n", 'x', 70000, "", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_BCOUNT, 5);
    free(b);
    b = test_fill("", 'A', 70000, "", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_INLINE, 5);
    free(b);
    /* a NUL hides the line end forever: only the size error ends it */
    b = test_fill("*1\0", '1', 70000, "\r\n", &n);
    b[2] = '\0';
    req_expect(b, n, &test_lim, RESP_ERROR, E_MCOUNT, 5);
    free(b);
    b = test_fill("PING\0", '\n', 70000, "", &n);
    b[4] = '\0';
    req_expect(b, n, &test_lim, RESP_ERROR, E_INLINE, 5);
    free(b);
    /* '\r' at index 65536 of the line is still found; at 65537 not */
    b = test_fill("*", '1', 65535, "\r\n", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_MBULK, 5);
    free(b);
    b = test_fill("*", '1', 65536, "\r\n", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_MCOUNT, 5);
    free(b);
    b = test_fill("*1\r\n$", '1', 65535, "\r\n", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_BULK, 5);
    free(b);
    b = test_fill("*1\r\n$", '1', 65536, "\r\n", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_BCOUNT, 5);
    free(b);
    /* inline: a line of exactly max_inline bytes before '\n' is fine */
    b = test_fill("", 'A', 65536, "\n", &n);
    req_expect(b, n, &test_lim, RESP_DONE, NULL, 5);
    free(b);
    b = test_fill("", 'A', 65537, "\n", &n);
    req_expect(b, n, &test_lim, RESP_ERROR, E_INLINE, 5);
    free(b);
}
END_TEST

START_TEST(test_req_big_bulk)
{
    const size_t big = 1024 * 1024;
    struct req_result res;
    size_t n;
    char *b = test_fill("*2\r\n$3\r\nSET\r\n$1048576\r\n", 'v', big, "\r\n",
                        &n);

    b[30] = '\0';
    b[31] = '\r';
    req_check_property(b, n, &test_lim, 20, &res);
    ck_assert_int_eq(res.rc, RESP_DONE);
    ck_assert_uint_eq(res.len, n);
    ck_assert_uint_eq(res.argc, 2);
    ck_assert_mem_eq(res.args, "3:SET,1048576:", 14);
    ck_assert_mem_eq(res.args + 14, b + 23, big);
    free(res.args);
    free(b);
}
END_TEST

START_TEST(test_req_pipeline)
{
    char in[] = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                "*0\r\n"
                "SET k \"v v\"\r\n"
                "\r\n"
                "*1\r\n$4\r\nPING\r\n"
                "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n";
    static const char *const want[] = { "GET a", "", "SET k v v", "",
                                        "PING", "x y z" };
    struct resp_req r;
    size_t pos = 0, n = sizeof(in) - 1;
    struct resp_arg *argv = NULL;

    resp_req_init(&r);
    for (size_t k = 0; k < SP_ARRAY_LEN(want); k++) {
        char got[64] = "";

        ck_assert_int_eq(resp_req_parse(&r, in + pos, n - pos, &test_lim),
                         RESP_DONE);
        for (uint32_t i = 0; i < r.argc; i++) {
            if (i > 0)
                strcat(got, " ");
            strncat(got, in + pos + r.argv[i].off, r.argv[i].len);
        }
        ck_assert_str_eq(got, want[k]);
        if (argv != NULL && r.argc > 0)
            ck_assert_ptr_eq(r.argv, argv);     /* reused, not regrown */
        if (r.argc > 0)
            argv = r.argv;
        pos += r.len;
        resp_req_reset(&r);
        ck_assert_uint_ge(r.argv_cap, 3);
    }
    ck_assert_uint_eq(pos, n);
    ck_assert_int_eq(resp_req_parse(&r, in + pos, 0, &test_lim), RESP_AGAIN);
    resp_req_deinit(&r);
}
END_TEST

START_TEST(test_req_many_args)
{
    /* argv grows by doubling up to the count, and is kept by reset */
    size_t n = 0, cap = 100000 * 8 + 32;
    char *b = malloc(cap);
    struct resp_req r;

    n += (size_t)sprintf(b, "*100000\r\n");
    for (int i = 0; i < 100000; i++)
        n += (size_t)sprintf(b + n, "$1\r\n%c\r\n", 'a' + i % 26);
    resp_req_init(&r);
    ck_assert_int_eq(resp_req_parse(&r, b, n, &test_lim), RESP_DONE);
    ck_assert_uint_eq(r.argc, 100000);
    ck_assert_uint_eq(r.argv_cap, 100000);
    ck_assert_uint_eq(r.len, n);
    ck_assert_int_eq(b[r.argv[99999].off], 'a' + 99999 % 26);
    resp_req_reset(&r);
    ck_assert_uint_eq(r.argv_cap, 100000);
    ck_assert_int_eq(resp_req_parse(&r, b, n, &test_lim), RESP_DONE);
    resp_req_deinit(&r);
    free(b);
}
END_TEST

/* ------------------------------------------------------------------------
 * Replies
 * ---------------------------------------------------------------------- */

struct reply_case {
    const char *in;             /* input bytes */
    size_t in_len;              /* their length */
    int rc;                     /* status once every byte is fed */
    uint64_t len;               /* reply length on RESP_DONE */
    const char *value;          /* resp_value tree, as test_value_str() */
};

static const struct reply_case reply_cases[] = {
    { IN("+OK\r\n"), RESP_DONE, 5, "+OK" },
    { IN("+OK\r\n+NEXT\r\n"), RESP_DONE, 5, "+OK" },
    { IN("+\r\n"), RESP_DONE, 3, "+" },
    { IN("-ERR wrong \x01 type\r\n"), RESP_DONE, 19, "-ERR wrong \x01 type" },
    { IN("-MOVED 3999 127.0.0.1:6381\r\n"), RESP_DONE, 28,
      "-MOVED 3999 127.0.0.1:6381" },
    { IN(":123\r\n"), RESP_DONE, 6, ":123" },
    { IN(":-9223372036854775808\r\n"), RESP_DONE, 23,
      ":-9223372036854775808" },
    { IN("$3\r\nfoo\r\n"), RESP_DONE, 9, "$3:foo" },
    { IN("$0\r\n\r\n"), RESP_DONE, 6, "$0:" },
    { IN("$4\r\n\r\n\r\n\r\n"), RESP_DONE, 10, "$4:\r\n\r\n" },
    { IN("$3\r\na\0b\r\n"), RESP_DONE, 9, "$3:a\\0b" },
    { IN("$-1\r\n"), RESP_DONE, 5, "$nil" },
    { IN("*-1\r\n"), RESP_DONE, 5, "*nil" },
    { IN("*0\r\n"), RESP_DONE, 4, "*[]" },
    { IN("*2\r\n$1\r\na\r\n:1\r\n"), RESP_DONE, 15, "*[$1:a,:1]" },
    { IN("*3\r\n*1\r\n+a\r\n*0\r\n*-1\r\n"), RESP_DONE, 21,
      "*[*[+a],*[],*nil]" },
    { IN("*2\r\n*2\r\n:1\r\n*1\r\n$-1\r\n:2\r\n"), RESP_DONE, 25,
      "*[*[:1,*[$nil]],:2]" },
    /* RESP3 */
    { IN("_\r\n"), RESP_DONE, 3, "_" },
    { IN(",3.14\r\n"), RESP_DONE, 7, ",3.14" },
    { IN(",inf\r\n"), RESP_DONE, 6, ",inf" },
    { IN("#t\r\n"), RESP_DONE, 4, "#1" },
    { IN("#f\r\n"), RESP_DONE, 4, "#0" },
    { IN("(3492890328409238509324850943850943825024385\r\n"), RESP_DONE, 46,
      "(3492890328409238509324850943850943825024385" },
    { IN("!21\r\nSYNTAX invalid syntax\r\n"), RESP_DONE, 28,
      "!21:SYNTAX invalid syntax" },
    { IN("=15\r\ntxt:Some string\r\n"), RESP_DONE, 22, "=15:txt:Some string" },
    { IN("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"), RESP_DONE, 29,
      "%[+first,:1,+second,:2]" },
    { IN("%0\r\n"), RESP_DONE, 4, "%[]" },
    { IN("~3\r\n+a\r\n#t\r\n_\r\n"), RESP_DONE, 15, "~[+a,#1,_]" },
    { IN(">2\r\n+message\r\n$2\r\nhi\r\n"), RESP_DONE, 22,
      ">[+message,$2:hi]" },
    { IN("|1\r\n+key\r\n+val\r\n:42\r\n"), RESP_DONE, 21,
      "|[+key,+val,:42]" },
    { IN("*2\r\n|1\r\n+a\r\n+b\r\n*1\r\n:1\r\n:2\r\n"), RESP_DONE, 28,
      "*[|[+a,+b,*[:1]],:2]" },
    /* A push in front of a reply is a whole reply of its own (the backend
     * drops it on a request/reply connection). */
    { IN(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nx\r\n+OK\r\n"), RESP_DONE, 32,
      ">[$10:invalidate,*[$1:x]]" },
    { IN("%1\r\n$1\r\nk\r\n|1\r\n+ttl\r\n:3\r\n~2\r\n,1.5\r\n(12\r\n"),
      RESP_DONE, 40, "%[$1:k,|[+ttl,:3,~[,1.5,(12]]]" },
    /* incomplete */
    { IN(""), RESP_AGAIN, 0, NULL },
    { IN("+OK"), RESP_AGAIN, 0, NULL },
    { IN("+OK\r"), RESP_AGAIN, 0, NULL },
    { IN("$3\r\nfo"), RESP_AGAIN, 0, NULL },
    { IN("$3\r\nfoo\r"), RESP_AGAIN, 0, NULL },
    { IN("*2\r\n:1\r\n"), RESP_AGAIN, 0, NULL },
    { IN("*1\r\n*1\r\n*1\r\n"), RESP_AGAIN, 0, NULL },
    { IN("|1\r\n+key\r\n+val\r\n"), RESP_AGAIN, 0, NULL },
    { IN("$1000000000\r\nabc"), RESP_AGAIN, 0, NULL },
    /* malformed */
    { IN("x\r\n"), RESP_ERROR, 0, NULL },
    { IN("\r\n"), RESP_ERROR, 0, NULL },
    { IN("+OK\rX"), RESP_ERROR, 0, NULL },
    { IN(":\r\n"), RESP_ERROR, 0, NULL },
    { IN(":12a\r\n"), RESP_ERROR, 0, NULL },
    { IN(":01\r\n"), RESP_ERROR, 0, NULL },
    { IN("$\r\n"), RESP_ERROR, 0, NULL },
    { IN("$-2\r\n"), RESP_ERROR, 0, NULL },
    { IN("$3\r\nfooXY"), RESP_ERROR, 0, NULL },
    { IN("$3\r\nfoo\rX"), RESP_ERROR, 0, NULL },
    /* edges of the count-line fast path (resp_count_fast) */
    { IN("$3\rX"), RESP_ERROR, 0, NULL },
    { IN("*1\rX"), RESP_ERROR, 0, NULL },
    { IN("$00\r\n\r\n"), RESP_ERROR, 0, NULL },
    { IN("*01\r\n:1\r\n"), RESP_ERROR, 0, NULL },
    { IN("$+1\r\na\r\n"), RESP_ERROR, 0, NULL },
    { IN("$1 \r\na\r\n"), RESP_ERROR, 0, NULL },
    { IN("$3\r"), RESP_AGAIN, 0, NULL },
    { IN("*999999999999999999\r\n"), RESP_AGAIN, 0, NULL },
    { IN("*1152921504606846977\r\n"), RESP_ERROR, 0, NULL },
    { IN("*-2\r\n"), RESP_ERROR, 0, NULL },
    { IN("*1\r\n*x\r\n"), RESP_ERROR, 0, NULL },
    { IN("*2\r\n:1\r\n?\r\n"), RESP_ERROR, 0, NULL },
    { IN("~-1\r\n"), RESP_ERROR, 0, NULL },
    { IN("!-1\r\n"), RESP_ERROR, 0, NULL },
    { IN("_x\r\n"), RESP_ERROR, 0, NULL },
    { IN("#x\r\n"), RESP_ERROR, 0, NULL },
    { IN("#tt\r\n"), RESP_ERROR, 0, NULL },
    { IN("$9223372036854775807\r\n"), RESP_ERROR, 0, NULL },
    { IN("%4611686018427387904\r\n"), RESP_ERROR, 0, NULL },
};

/* What one scanner run produced; compared across feeding strategies. */
struct reply_result {
    int rc;                     /* final status */
    uint64_t len;               /* r->len */
    char type;                  /* r->type */
    size_t at;                  /* bytes fed when the final status came */
};

static void
reply_run(const char *in, size_t n, int mode, uint64_t seed,
          struct reply_result *res)
{
    struct resp_reply r;
    char *b = test_garbage_buf(n);
    size_t fed = 0;
    int rc = RESP_AGAIN;

    resp_reply_init(&r);
    while (fed < n) {
        size_t c = test_chunk(mode, &seed, n - fed);

        memcpy(b + fed, in + fed, c);
        fed += c;
        rc = resp_reply_parse(&r, b, fed);
        if (rc != RESP_AGAIN)
            break;
    }
    memset(res, 0, sizeof(*res));
    res->rc = rc;
    res->at = fed;
    if (rc == RESP_DONE) {
        ck_assert_uint_le(r.len, fed);
        res->len = r.len;
        res->type = r.type;
        ck_assert_int_eq(r.type, in[0]);
    }
    free(b);
}

/* Whole, byte by byte and random chunks agree; byte by byte a reply is
 * DONE exactly at its last byte. */
static void
reply_check_property(const char *in, size_t n, int iters,
                     struct reply_result *whole)
{
    struct reply_result other;

    reply_run(in, n, 0, 0, whole);
    reply_run(in, n, 1, 0, &other);
    ck_assert_int_eq(other.rc, whole->rc);
    ck_assert_uint_eq(other.len, whole->len);
    if (other.rc == RESP_DONE)
        ck_assert_uint_eq(other.at, other.len);
    for (int i = 0; i < iters; i++) {
        reply_run(in, n, 2, (uint64_t)i * 104729 + 3, &other);
        ck_assert_int_eq(other.rc, whole->rc);
        ck_assert_uint_eq(other.len, whole->len);
        ck_assert_int_eq(other.type, whole->type);
    }
}

static void
test_cat(char **s, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *s = realloc(*s, *cap);
    }
    memcpy(*s + *len, p, n);
    *len += n;
    (*s)[*len] = '\0';
}

/* Render a value tree compactly: "+OK", ":1", "$3:foo" ("\0" as "\\0"),
 * "$nil", "_", "#1", "*[a,b]", "*nil". */
static void
test_value_str_rec(const struct resp_value *v, char **s, size_t *len,
                   size_t *cap)
{
    char tmp[64];

    test_cat(s, len, cap, &v->type, 1);
    switch (v->type) {
    case ':': case '#':
        test_cat(s, len, cap, tmp, (size_t)sprintf(tmp, "%lld", v->integer));
        return;
    case '_':
        ck_assert_int_eq(v->integer, -1);
        return;
    case '$': case '!': case '=':
        if (v->integer == -1) {
            ck_assert_ptr_null(v->str);
            test_cat(s, len, cap, "nil", 3);
            return;
        }
        test_cat(s, len, cap, tmp, (size_t)sprintf(tmp, "%zu:", v->len));
        break;
    case '*': case '%': case '~': case '>': case '|':
        if (v->integer == -1) {
            test_cat(s, len, cap, "nil", 3);
            return;
        }
        test_cat(s, len, cap, "[", 1);
        for (size_t i = 0; i < v->nelems; i++) {
            if (i > 0)
                test_cat(s, len, cap, ",", 1);
            test_value_str_rec(&v->elems[i], s, len, cap);
        }
        test_cat(s, len, cap, "]", 1);
        return;
    default:
        break;
    }
    for (size_t i = 0; i < v->len; i++) {
        if (v->str[i] == '\0')
            test_cat(s, len, cap, "\\0", 2);
        else
            test_cat(s, len, cap, &v->str[i], 1);
    }
}

static char *
test_value_str(const struct resp_value *v)
{
    char *s = NULL;
    size_t len = 0, cap = 0;

    test_cat(&s, &len, &cap, "", 0);
    test_value_str_rec(v, &s, &len, &cap);
    return s;
}

/* resp_value_parse() agrees with the scanner: consumed bytes on DONE, 0
 * when incomplete, -1 when malformed; on every prefix when prefixes is
 * set. */
static void
value_check_agrees(const char *in, size_t n, const struct reply_result *scan,
                   int prefixes)
{
    struct resp_value *v = NULL;
    ssize_t got = resp_value_parse(in, n, &v);

    if (scan->rc == RESP_DONE) {
        ck_assert_int_eq(got, (ssize_t)scan->len);
        ck_assert_ptr_nonnull(v);
    } else {
        ck_assert_int_eq(got, scan->rc == RESP_AGAIN ? 0 : -1);
        ck_assert_ptr_null(v);
    }
    resp_value_free(v);
    if (!prefixes)
        return;
    for (size_t i = 0; i < n; i++) {
        struct reply_result part;

        reply_run(in, i, 0, 0, &part);
        got = resp_value_parse(in, i, &v);
        if (part.rc == RESP_DONE)
            ck_assert_int_eq(got, (ssize_t)part.len);
        else
            ck_assert_int_eq(got, part.rc == RESP_AGAIN ? 0 : -1);
        resp_value_free(v);
    }
}

START_TEST(test_reply_table)
{
    const struct reply_case *c = &reply_cases[_i];
    struct reply_result res;
    struct resp_value *v;

    reply_check_property(c->in, c->in_len, 200, &res);
    ck_assert_msg(res.rc == c->rc, "case %d: rc %d, want %d", _i, res.rc,
                  c->rc);
    if (c->rc == RESP_DONE)
        ck_assert_uint_eq(res.len, c->len);
    value_check_agrees(c->in, c->in_len, &res, 1);
    if (c->value != NULL) {
        char *s;

        ck_assert_int_eq(resp_value_parse(c->in, c->in_len, &v),
                         (ssize_t)c->len);
        s = test_value_str(v);
        ck_assert_str_eq(s, c->value);
        free(s);
        resp_value_free(v);
    }
}
END_TEST

/* n nested one-element arrays around ":1" */
static char *
test_nested(int n, size_t *len)
{
    char *b = malloc((size_t)n * 4 + 8);

    for (int i = 0; i < n; i++)
        memcpy(b + i * 4, "*1\r\n", 4);
    memcpy(b + n * 4, ":1\r\n", 4);
    *len = (size_t)n * 4 + 4;
    return b;
}

START_TEST(test_reply_depth)
{
    struct reply_result res;
    struct resp_value *v;
    size_t n;
    char *b = test_nested(RESP_MAX_DEPTH, &n);

    reply_check_property(b, n, 20, &res);
    ck_assert_int_eq(res.rc, RESP_DONE);
    ck_assert_uint_eq(res.len, n);
    ck_assert_int_eq(resp_value_parse(b, n, &v), (ssize_t)n);
    {
        const struct resp_value *e = v;

        for (int i = 0; i < RESP_MAX_DEPTH; i++) {
            ck_assert_int_eq(e->type, '*');
            ck_assert_uint_eq(e->nelems, 1);
            e = &e->elems[0];
        }
        ck_assert_int_eq(e->integer, 1);
    }
    resp_value_free(v);
    free(b);

    b = test_nested(RESP_MAX_DEPTH + 1, &n);
    reply_check_property(b, n, 20, &res);
    ck_assert_int_eq(res.rc, RESP_ERROR);
    ck_assert_int_eq(resp_value_parse(b, n, &v), -1);
    free(b);

    /* depth returns to zero between siblings: 2 x 100 levels is fine */
    b = test_nested(100, &n);
    {
        char *two = malloc(n * 2 + 4);

        memcpy(two, "*2\r\n", 4);
        memcpy(two + 4, b, n);
        memcpy(two + 4 + n, b, n);
        reply_check_property(two, 2 * n + 4, 5, &res);
        ck_assert_int_eq(res.rc, RESP_DONE);
        ck_assert_uint_eq(res.len, 2 * n + 4);
        free(two);
    }
    free(b);
}
END_TEST

START_TEST(test_reply_big_bulk)
{
    const size_t big = 4 * 1024 * 1024;
    struct reply_result res;
    struct resp_value *v;
    size_t n;
    char *b = test_fill("*2\r\n$4194304\r\n", '\r', big, "\r\n:7\r\n", &n);

    reply_check_property(b, n, 10, &res);
    ck_assert_int_eq(res.rc, RESP_DONE);
    ck_assert_uint_eq(res.len, n);
    ck_assert_int_eq(resp_value_parse(b, n, &v), (ssize_t)n);
    ck_assert_uint_eq(v->elems[0].len, big);
    ck_assert_ptr_eq(v->elems[0].str, b + 14);
    ck_assert_int_eq(v->elems[1].integer, 7);
    resp_value_free(v);
    free(b);
}
END_TEST

/* A CLUSTER SLOTS reply with many ranges: thousands of elements. */
START_TEST(test_value_cluster_slots)
{
    const int ranges = 2000;
    size_t n = 0, cap = (size_t)ranges * 200 + 32;
    char *b = malloc(cap);
    struct reply_result res;
    struct resp_value *v;

    n += (size_t)sprintf(b, "*%d\r\n", ranges);
    for (int i = 0; i < ranges; i++)
        n += (size_t)sprintf(b + n,
                             "*4\r\n:%d\r\n:%d\r\n"
                             "*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$40\r\n"
                             "%040d\r\n"
                             "*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$40\r\n"
                             "%040d\r\n",
                             i * 8, i * 8 + 7, 7000 + i % 3, i,
                             7100 + i % 3, i + 1);
    reply_check_property(b, n, 5, &res);
    ck_assert_int_eq(res.rc, RESP_DONE);
    ck_assert_uint_eq(res.len, n);
    ck_assert_int_eq(resp_value_parse(b, n, &v), (ssize_t)n);
    ck_assert_uint_eq(v->nelems, (size_t)ranges);
    for (int i = 0; i < ranges; i++) {
        const struct resp_value *r = &v->elems[i];

        ck_assert_uint_eq(r->nelems, 4);
        ck_assert_int_eq(r->elems[0].integer, i * 8);
        ck_assert_int_eq(r->elems[1].integer, i * 8 + 7);
        ck_assert_uint_eq(r->elems[2].nelems, 3);
        ck_assert_mem_eq(r->elems[2].elems[0].str, "127.0.0.1", 9);
        ck_assert_int_eq(r->elems[3].elems[1].integer, 7100 + i % 3);
    }
    resp_value_free(v);
    /* every truncation is incomplete, never malformed */
    for (size_t cut = 0; cut < n; cut += 97) {
        ck_assert_int_eq(resp_value_parse(b, cut, &v), 0);
        ck_assert_ptr_null(v);
    }
    free(b);
}
END_TEST

START_TEST(test_reply_reinit)
{
    struct resp_reply r;
    const char two[] = "*1\r\n$2\r\nab\r\n:5\r\n";

    resp_reply_init(&r);
    ck_assert_int_eq(resp_reply_parse(&r, two, sizeof(two) - 1), RESP_DONE);
    ck_assert_uint_eq(r.len, 12);
    ck_assert_int_eq(r.type, '*');
    /* DONE is sticky until init */
    ck_assert_int_eq(resp_reply_parse(&r, two, sizeof(two) - 1), RESP_DONE);
    resp_reply_init(&r);
    ck_assert_int_eq(resp_reply_parse(&r, two + 12, 4), RESP_DONE);
    ck_assert_uint_eq(r.len, 4);
    ck_assert_int_eq(r.type, ':');
}
END_TEST

/* The top-level element count, from the header line alone. */
START_TEST(test_reply_elements)
{
    static const struct {
        const char *reply;
        long long n;
    } cases[] = {
        {"*3\r\n:1\r\n:2\r\n:3\r\n", 3},
        {"*0\r\n", 0},
        {"*-1\r\n", -1},
        {"~2\r\n+a\r\n+b\r\n", 2},
        {">2\r\n+a\r\n+b\r\n", 2},
        {"%1\r\n+k\r\n+v\r\n", 2},       /* key and value, as RESP2 */
        {"*200000\r\n", 200000},            /* only the header is read */
        {"$5\r\nhello\r\n", -1},
        {"+OK\r\n", -1},
        {"-ERR x\r\n", -1},
        {":12\r\n", -1},
        {"|1\r\n+a\r\n+b\r\n:1\r\n", -1}, /* an attribute: not a count */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_int_eq(resp_reply_elements(cases[i].reply,
                                             strlen(cases[i].reply)),
                         cases[i].n);
}
END_TEST

static Suite *
resp_suite(void)
{
    Suite *s = suite_create("resp");
    TCase *tc = tcase_create("req");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_req_table, 0, (int)SP_ARRAY_LEN(req_cases));
    tcase_add_test(tc, test_req_big_lines);
    tcase_add_test(tc, test_req_big_bulk);
    tcase_add_test(tc, test_req_pipeline);
    tcase_add_test(tc, test_req_many_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_reply_table, 0,
                        (int)SP_ARRAY_LEN(reply_cases));
    tcase_add_test(tc, test_reply_depth);
    tcase_add_test(tc, test_reply_big_bulk);
    tcase_add_test(tc, test_value_cluster_slots);
    tcase_add_test(tc, test_reply_reinit);
    tcase_add_test(tc, test_reply_elements);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(resp_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
