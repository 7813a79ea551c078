/* slotproxy - BSD-2-Clause
 *
 * Unit tests for http.c's pure parts: Prometheus label escaping (node
 * names come from CLUSTER SLOTS and MOVED replies, so they may hold any
 * byte) and the request-head parser of the metrics endpoint.
 */
#include "build_config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

struct escape_case {
    const char *in;                 /* label value */
    const char *out;                /* escaped, per the text format */
};

static const struct escape_case escape_cases[] = {
    { "10.0.0.1:6379", "10.0.0.1:6379" },
    { "", "" },
    { "a\"b", "a\\\"b" },
    { "a\\b", "a\\\\b" },
    { "a\nb", "a\\nb" },
    { "\"} 1\nslotproxy_fake{x=\"", "\\\"} 1\\nslotproxy_fake{x=\\\"" },
    { "\\\"\n", "\\\\\\\"\\n" },
    { "tab\tcr\r", "tab\tcr\r" },
};

START_TEST(test_label_escape)
{
    const struct escape_case *t = &escape_cases[_i];
    char out[128];
    size_t n = http_label_escape(out, sizeof(out), t->in);

    ck_assert_str_eq(out, t->out);
    ck_assert_uint_eq(n, strlen(t->out));
}
END_TEST

/* Truncation keeps a NUL and reports the full length, like snprintf. */
START_TEST(test_label_escape_truncates)
{
    char out[4];

    ck_assert_uint_eq(http_label_escape(out, sizeof(out), "\"\"\""), 6);
    ck_assert_str_eq(out, "\\\"\\");
    ck_assert_uint_eq(http_label_escape(out, 1, "abc"), 3);
    ck_assert_str_eq(out, "");
}
END_TEST

struct head_case {
    const char *in;                 /* bytes received so far */
    long rc;                        /* expected return */
    int is_get, is_head;            /* expected method flags */
    const char *path;               /* expected path (rc > 0) */
};

static const struct head_case head_cases[] = {
    { "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 34, 1, 0, "/metrics" },
    { "GET /metrics HTTP/1.0\r\n\r\n", 25, 1, 0, "/metrics" },
    { "HEAD /readyz?x=1 HTTP/1.1\r\n\r\n", 29, 0, 1, "/readyz" },
    { "GET /healthz HTTP/1.1\n\n", 23, 1, 0, "/healthz" },
    { "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 45, 0, 0,
      "/metrics" },
    { "GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, 0, 0, NULL },
    { "GET /metrics HTTP/1.1\r\n", 0, 0, 0, NULL },
    { "GET", 0, 0, 0, NULL },
    { "", 0, 0, 0, NULL },
    { "GET\r\n\r\n", -1, 0, 0, NULL },
    { "GET /metrics\r\n\r\n", -1, 0, 0, NULL },
    { " /metrics HTTP/1.1\r\n\r\n", -1, 0, 0, NULL },
    { "GET  HTTP/1.1\r\n\r\n", -1, 0, 0, NULL },
    { "GET /metrics FTP/1.1\r\n\r\n", -1, 0, 0, NULL },
    { "GET /metrics \r\n\r\n", -1, 0, 0, NULL },
    { "get /metrics HTTP/1.1\r\n\r\n", 25, 0, 0, "/metrics" },
};

START_TEST(test_parse_head)
{
    const struct head_case *t = &head_cases[_i];
    struct http_head hd;
    long rc = http_parse_head(t->in, strlen(t->in), &hd);

    ck_assert_msg(rc == t->rc, "case %d: rc %ld, want %ld", _i, rc, t->rc);
    if (rc <= 0)
        return;
    ck_assert_int_eq(hd.is_get, t->is_get);
    ck_assert_int_eq(hd.is_head, t->is_head);
    ck_assert_uint_eq(hd.path_len, strlen(t->path));
    ck_assert(memcmp(hd.path, t->path, hd.path_len) == 0);
}
END_TEST

/* A head of HTTP_HEAD_MAX bytes without its blank line stays incomplete:
 * the server answers 431 then, it never reads past its buffer. */
START_TEST(test_parse_head_unterminated)
{
    char *buf = malloc(HTTP_HEAD_MAX);
    struct http_head hd;

    memcpy(buf, "GET /metrics HTTP/1.1\r\n", 23);
    for (size_t i = 23; i < HTTP_HEAD_MAX; i += 2) {
        buf[i] = 'x';
        if (i + 1 < HTTP_HEAD_MAX)
            buf[i + 1] = '\n';
    }
    buf[HTTP_HEAD_MAX - 1] = 'x';
    ck_assert_int_eq(http_parse_head(buf, HTTP_HEAD_MAX, &hd), 0);
    free(buf);
}
END_TEST

static Suite *
http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("pure");

    tcase_add_loop_test(tc, test_label_escape, 0,
                        (int)SP_ARRAY_LEN(escape_cases));
    tcase_add_test(tc, test_label_escape_truncates);
    tcase_add_loop_test(tc, test_parse_head, 0,
                        (int)SP_ARRAY_LEN(head_cases));
    tcase_add_test(tc, test_parse_head_unterminated);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
