/* slotproxy - BSD-2-Clause
 *
 * Unit tests for request.c: the request's lifecycle (new, references,
 * completion exactly once with its hooks, recycling through the pool with
 * a clean state) and the error replies it builds (one line whatever the
 * message holds; the fixed texts of errors.c).
 */
#include "build_config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "request.h"

static int done_calls;
static int reply_calls;

static void
on_done(struct request *r)
{
    (void)r;
    done_calls++;
}

static void
on_reply(struct request *r, const char *data, size_t len, char type)
{
    (void)type;
    reply_calls++;
    request_finish(r, data, len);
}

static const char *
rep(const struct request *r)
{
    static char out[600];
    size_t n = r->rep.len - r->rep.pos;
    memcpy(out, r->rep.data + r->rep.pos, n);
    out[n] = '\0';
    return out;
}

START_TEST(test_new_is_clean)
{
    struct request_pool pool;
    request_pool_init(&pool, NULL);
    struct request *r = request_new(&pool);
    ck_assert_int_eq(r->refcount, 1);
    ck_assert_int_eq(r->cmd_index, -1);
    ck_assert(!r->done);
    ck_assert_ptr_eq(r->pool, &pool);
    request_put(r);
    request_pool_drain(&pool);
}
END_TEST

START_TEST(test_complete_once_with_hooks)
{
    struct request_pool pool;
    request_pool_init(&pool, NULL);
    struct request *r = request_new(&pool);
    done_calls = reply_calls = 0;
    r->on_reply = on_reply;
    r->on_done = on_done;
    request_reply(r, "+OK\r\n", 5, '+');
    ck_assert_int_eq(reply_calls, 1);
    ck_assert_int_eq(done_calls, 1);
    ck_assert(r->done);
    ck_assert_str_eq(rep(r), "+OK\r\n");
    request_put(r);
    request_pool_drain(&pool);
}
END_TEST

START_TEST(test_references_and_recycling)
{
    struct request_pool pool;
    request_pool_init(&pool, NULL);
    struct request *r = request_new(&pool);
    buf_append(&r->req, "*1\r\n$4\r\nPING\r\n", 14);
    request_get(r); /* a second owner (a backend queue) */
    request_put(r);
    ck_assert_uint_eq(pool.nfree, 0); /* still owned */
    r->on_done = on_done;
    request_fail(r, "ERR x");
    request_put(r);
    ck_assert_uint_eq(pool.nfree, 1);
    /* Recycled: the same object, no state of its last life. */
    struct request *again = request_new(&pool);
    ck_assert_ptr_eq(again, r);
    ck_assert_uint_eq(pool.nfree, 0);
    ck_assert(!again->done);
    ck_assert_ptr_null(again->on_done);
    ck_assert_uint_eq(again->req.len - again->req.pos, 0);
    ck_assert_uint_eq(again->rep.len - again->rep.pos, 0);
    ck_assert_int_eq(again->refcount, 1);
    request_put(again);
    request_pool_trim(&pool, 0);
    ck_assert_uint_eq(pool.nfree, 0);
}
END_TEST

START_TEST(test_live_counter)
{
    struct request_pool pool;
    uint32_t live = 0, other = 5;
    request_pool_init(&pool, NULL);
    pool.live = &live;
    struct request *a = request_new(&pool);
    struct request *b = request_new(&pool);
    ck_assert_uint_eq(live, 2);
    struct request from = {.live = &other};
    request_share_table(b, &from);
    ck_assert_uint_eq(live, 1);
    ck_assert_uint_eq(other, 6);
    request_put(a);
    request_put(b);
    ck_assert_uint_eq(live, 0);
    ck_assert_uint_eq(other, 5);
    request_pool_drain(&pool);
}
END_TEST

START_TEST(test_fail_is_one_line)
{
    struct request_pool pool;
    request_pool_init(&pool, NULL);
    struct request *r = request_new(&pool);
    request_fail(r, "ERR a\r\n+OK injected\nmore");
    ck_assert_str_eq(rep(r), "-ERR a  +OK injected more\r\n");
    request_put(r);

    r = request_new(&pool);
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    request_fail(r, big);
    const char *s = rep(r);
    size_t n = strlen(s);
    ck_assert(n < 600 && s[0] == '-');
    ck_assert_ptr_eq(strchr(s, '\r'), s + n - 2); /* one line */
    ck_assert_ptr_eq(strchr(s, '\n'), s + n - 1);
    request_put(r);

    r = request_new(&pool);
    request_error(r, SPE_SHUTTING_DOWN);
    ck_assert_str_eq(rep(r), "-ERR slotproxy: shutting down\r\n");
    request_put(r);
    request_pool_drain(&pool);
}
END_TEST

static Suite *
request_suite(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_new_is_clean);
    tcase_add_test(tc, test_complete_once_with_hooks);
    tcase_add_test(tc, test_references_and_recycling);
    tcase_add_test(tc, test_live_counter);
    tcase_add_test(tc, test_fail_is_one_line);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(request_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
