/* slotproxy - BSD-2-Clause
 *
 * Unit tests for iobatch.c on socket pairs: a batch's reads and writes
 * come back as read/writev would return them (bytes, a short write on a
 * full socket, -1 EAGAIN on an empty one, 0 at end of stream, EPIPE), in
 * the order queued; the scratch area runs out; a forgotten owner's
 * operation is not made and its callback not called. Where io_uring
 * cannot be used (not built in, a kernel or seccomp filter that refuses
 * it), iobatch_new must fail cleanly and the rest is skipped.
 */
#include "build_config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iobatch.h"

/* What a callback saw. */
struct seen {
    int calls;          /* times called */
    int order;          /* call number (across all owners) */
    ssize_t res;        /* its result */
    int err;            /* errno when res is -1 */
    void *buf;          /* the buffer given back */
};

static int calls_total;

static void
record(void *owner, void *buf, ssize_t res)
{
    struct seen *s = owner;
    s->calls++;
    s->order = ++calls_total;
    s->res = res;
    s->err = res < 0 ? errno : 0;
    s->buf = buf;
}

static void
pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
}

/* A batch, or NULL (and the reason printed) where io_uring is not
 * available here. */
static struct iobatch *
batch_or_skip(unsigned depth)
{
    char err[200];
    struct iobatch *b = iobatch_new(depth, err, sizeof(err));
    if (b == NULL) {
        ck_assert(strlen(err) > 0);
        fprintf(stderr, "check_iobatch: skipped: %s\n", err);
    }
    return b;
}

START_TEST(test_read_write_results)
{
    struct iobatch *b = batch_or_skip(8);
    if (b == NULL)
        return;
    int sv[2], sv2[2];
    pair(sv);
    pair(sv2);
    struct seen w1 = {0}, r_empty = {0}, r_data = {0};
    char in[64];

    /* Empty socket: EAGAIN, not a wait. */
    iobatch_read(b, sv[1], in, sizeof(in), record, &r_empty);
    struct iovec *iov = iobatch_iov(b, 2);
    iov[0] = (struct iovec){"hello ", 6};
    iov[1] = (struct iovec){"world", 5};
    iobatch_writev(b, sv[0], 2, record, &w1);
    ck_assert_uint_eq(iobatch_pending(b), 2);
    calls_total = 0;
    ck_assert_uint_eq(iobatch_run(b), 2);
    ck_assert_uint_eq(iobatch_pending(b), 0);
    ck_assert_int_eq(r_empty.res, -1);
    ck_assert_int_eq(r_empty.err, EAGAIN);
    ck_assert_ptr_eq(r_empty.buf, in);
    ck_assert_int_eq(w1.res, 11);
    ck_assert_ptr_null(w1.buf);
    /* Queue order, not completion order. */
    ck_assert_int_eq(r_empty.order, 1);
    ck_assert_int_eq(w1.order, 2);

    /* The bytes written arrive; a closed peer reads as end of stream. */
    iobatch_read(b, sv[1], in, sizeof(in), record, &r_data);
    struct seen r_eof = {0};
    close(sv2[0]);
    iobatch_read(b, sv2[1], in + 32, 32, record, &r_eof);
    iobatch_run(b);
    ck_assert_int_eq(r_data.res, 11);
    ck_assert_mem_eq(in, "hello world", 11);
    ck_assert_int_eq(r_eof.res, 0);
    ck_assert_int_eq(r_eof.calls, 1);
    ck_assert_uint_ge(iobatch_enters(b), 2);
    close(sv[0]);
    close(sv[1]);
    close(sv2[1]);
    iobatch_free(b);
}
END_TEST

START_TEST(test_full_socket_short_write)
{
    struct iobatch *b = batch_or_skip(4);
    if (b == NULL)
        return;
    int sv[2];
    pair(sv);
    size_t big = 8 << 20;
    char *data = calloc(1, big);
    struct seen w1 = {0}, w2 = {0};

    struct iovec *iov = iobatch_iov(b, 1);
    iov[0] = (struct iovec){data, big};
    iobatch_writev(b, sv[0], 1, record, &w1);
    iov = iobatch_iov(b, 1);
    iov[0] = (struct iovec){data, big};
    iobatch_writev(b, sv[0], 1, record, &w2);
    iobatch_run(b);
    /* As writev on a non-blocking socket: what fits, then EAGAIN. */
    ck_assert_int_gt(w1.res, 0);
    ck_assert_int_lt(w1.res, (ssize_t)big);
    ck_assert_int_eq(w2.res, -1);
    ck_assert_int_eq(w2.err, EAGAIN);

    /* Peer gone: EPIPE, and no SIGPIPE kills the test. */
    close(sv[1]);
    struct seen w3 = {0};
    iov = iobatch_iov(b, 1);
    iov[0] = (struct iovec){data, 10};
    iobatch_writev(b, sv[0], 1, record, &w3);
    iobatch_run(b);
    ck_assert_int_eq(w3.res, -1);
    ck_assert(w3.err == EPIPE || w3.err == ECONNRESET);
    close(sv[0]);
    free(data);
    iobatch_free(b);
}
END_TEST

START_TEST(test_forget_and_room)
{
    struct iobatch *b = batch_or_skip(2);
    if (b == NULL)
        return;
    int sv[2];
    pair(sv);
    struct seen a = {0}, c = {0};
    char x[8], y[8];

    ck_assert(iobatch_room(b, 1));
    iobatch_read(b, sv[1], x, sizeof(x), record, &a);
    iobatch_read(b, sv[1], y, sizeof(y), record, &c);
    /* Two operations fill a batch of two. */
    ck_assert(!iobatch_room(b, 0));
    iobatch_forget(b, &a);
    iobatch_run(b);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(c.calls, 1);
    ck_assert(iobatch_room(b, 1));
    /* Too many iovecs for one batch. */
    ck_assert(!iobatch_room(b, 1 << 20));

    /* The scratch area: 4 KB per entry, then NULL until the batch runs. */
    ck_assert_ptr_nonnull(iobatch_scratch(b, 4096));
    ck_assert_ptr_nonnull(iobatch_scratch(b, 4096));
    ck_assert_ptr_null(iobatch_scratch(b, 1));
    iobatch_read(b, sv[1], x, sizeof(x), record, &a);
    iobatch_run(b);
    ck_assert_ptr_nonnull(iobatch_scratch(b, 8192));
    close(sv[0]);
    close(sv[1]);
    iobatch_free(b);
}
END_TEST

/* A forgotten operation is not made at all: its socket may be closed and
 * its number reused by the time the batch runs. Alone in its batch or
 * among others. */
START_TEST(test_forgotten_not_made)
{
    struct iobatch *b = batch_or_skip(4);
    if (b == NULL)
        return;
    int sv[2];
    pair(sv);
    struct seen a = {0}, c = {0}, d = {0};
    char x[8] = {0}, y[8] = {0};

    ck_assert_int_eq(write(sv[0], "abcd", 4), 4);
    /* Among others: the forgotten read leaves the bytes to the next. */
    iobatch_read(b, sv[1], x, 2, record, &a);
    struct iovec *iov = iobatch_iov(b, 1);
    iov[0].iov_base = (void *)"zz";
    iov[0].iov_len = 2;
    iobatch_writev(b, sv[1], 1, record, &d);
    iobatch_read(b, sv[1], y, 2, record, &c);
    iobatch_forget(b, &a);
    iobatch_forget(b, &d);
    iobatch_run(b);
    ck_assert_int_eq(a.calls + d.calls, 0);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.res, 2);
    ck_assert_mem_eq(y, "ab", 2);
    /* The forgotten write sent nothing. */
    ck_assert_int_eq(recv(sv[0], x, sizeof(x), MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);

    /* Alone: the batch of one makes no call either. */
    iobatch_read(b, sv[1], x, 2, record, &a);
    iobatch_forget(b, &a);
    iobatch_run(b);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(read(sv[1], y, sizeof(y)), 2);
    ck_assert_mem_eq(y, "cd", 2);
    close(sv[0]);
    close(sv[1]);
    iobatch_free(b);
}
END_TEST

static Suite *
iobatch_suite(void)
{
    Suite *s = suite_create("iobatch");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_read_write_results);
    tcase_add_test(tc, test_full_socket_short_write);
    tcase_add_test(tc, test_forget_and_room);
    tcase_add_test(tc, test_forgotten_not_made);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(iobatch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
