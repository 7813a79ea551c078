/* slotproxy - BSD-2-Clause
 *
 * Batched socket I/O with io_uring (see iobatch.h for the contract).
 */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "alloc.h"
#include "iobatch.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/* iovecs one batch can hold: a write takes up to 256 of them. */
#define IOBATCH_IOV_MAX 4096

struct iobatch {
    struct iobatch_queue q;     /* first: what the inline queueing uses */
    struct io_uring ring;       /* submission and completion queues */
    unsigned long long enters;  /* io_uring_enter calls made */
};

/*
 * The contract rests on the kernel making a MSG_DONTWAIT receive inline
 * and answering -EAGAIN when there is nothing to read, instead of waiting
 * for data: see that it does on an empty socket pair, without waiting.
 */
static int
iobatch_inline_ok(struct io_uring *ring)
{
    int sv[2];
    char byte;
    int ok = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv(sqe, sv[0], &byte, 1, MSG_DONTWAIT);
    if (io_uring_submit(ring) == 1) {
        struct io_uring_cqe *cqe;
        if (io_uring_peek_cqe(ring, &cqe) == 0) {
            ok = cqe->res == -EAGAIN;
            io_uring_cqe_seen(ring, cqe);
        }
    }
    /* Closing the pair ends a receive left waiting, if any. */
    close(sv[0]);
    close(sv[1]);
    if (!ok) {
        struct io_uring_cqe *cqe;
        while (io_uring_peek_cqe(ring, &cqe) == 0)
            io_uring_cqe_seen(ring, cqe);
    }
    return ok;
}

struct iobatch *
iobatch_new(unsigned depth, char *err, size_t errlen)
{
    struct iobatch *b = sp_calloc(1, sizeof(*b));
    /* Completions are read only after each submission: no interrupt for
     * them (COOP_TASKRUN), one thread (SINGLE_ISSUER), and a failed
     * operation does not stop the others' submission (SUBMIT_ALL). */
    unsigned flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                     IORING_SETUP_SINGLE_ISSUER;
    int rc = io_uring_queue_init(depth, &b->ring, flags);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_setup: %s", strerror(-rc));
        sp_free(b);
        return NULL;
    }
    if (!iobatch_inline_ok(&b->ring)) {
        snprintf(err, errlen, "io_uring does not complete a MSG_DONTWAIT "
                 "receive inline on this kernel");
        io_uring_queue_exit(&b->ring);
        sp_free(b);
        return NULL;
    }
    b->q.depth = depth;
    b->q.ops = sp_calloc(depth, sizeof(*b->q.ops));
    b->q.iov_max = IOBATCH_IOV_MAX;
    b->q.iov = sp_malloc(IOBATCH_IOV_MAX * sizeof(*b->q.iov));
    /* 4 KB per operation: 64 reads of a 16 KB scratch at 256 deep (pages
     * are touched only as reads use them). */
    b->q.scratch_cap = (size_t)depth * 4096;
    return b;
}

void
iobatch_free(struct iobatch *b)
{
    if (b == NULL)
        return;
    io_uring_queue_exit(&b->ring);
    sp_free(b->q.ops);
    sp_free(b->q.iov);
    sp_free(b->q.scratch);
    sp_free(b);
}

void *
iobatch_scratch_first(struct iobatch *b, size_t len)
{
    b->q.scratch = sp_malloc(b->q.scratch_cap);
    return iobatch_scratch(b, len);
}

/*
 * Put every queued operation on the submission queue, its index as user
 * data. The queue is empty (each batch is submitted whole and consumed
 * inline) and holds depth entries, so the entries are written in place
 * without liburing's per-entry checks.
 */
static unsigned
iobatch_prepare(struct iobatch *b)
{
    struct io_uring_sq *sq = &b->ring.sq;
    unsigned tail = sq->sqe_tail;
    const unsigned nops = b->q.nops;
    unsigned n = 0;
    for (unsigned i = 0; i < nops; i++) {
        const struct iobatch_op *op = &b->q.ops[i];
        /* Forgotten: its socket may be closed, its number reused. */
        if (op->fn == NULL)
            continue;
        struct io_uring_sqe *sqe = &sq->sqes[(tail + n++) & sq->ring_mask];
        if (op->buf != NULL) {
            *sqe = (struct io_uring_sqe){
                .opcode = IORING_OP_RECV, .fd = op->fd,
                .addr = (uintptr_t)op->buf, .len = (unsigned)op->len,
                .msg_flags = MSG_DONTWAIT, .user_data = i};
        } else {
            *sqe = (struct io_uring_sqe){
                .opcode = IORING_OP_SENDMSG, .fd = op->fd,
                .addr = (uintptr_t)&op->msg,
                .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL, .user_data = i};
        }
    }
    sq->sqe_tail = tail + n;
    return n;
}

static void
iobatch_fatal(int rc)
{
    fprintf(stderr, "slotproxy: io_uring_enter: %s\n", strerror(-rc));
    abort();
}

/* Submit what is queued and wait for every completion (they are made
 * inline, so the wait does not block). An io_uring_enter that fails for
 * another reason than a signal leaves entries the kernel may still read:
 * nothing safe can follow, as with a failed allocation. */
static void
iobatch_submit_wait(struct iobatch *b)
{
    struct io_uring_cq *cq = &b->ring.cq;
    unsigned seen = 0;
    int rc;

    const unsigned n = iobatch_prepare(b);
    if (n == 0)
        return;
    do {
        b->enters++;
        rc = io_uring_submit_and_wait(&b->ring, n);
    } while (rc == -EINTR);
    if (rc < 0)
        iobatch_fatal(rc);
    for (;;) {
        unsigned head = *cq->khead;
        unsigned tail = io_uring_smp_load_acquire(cq->ktail);
        for (; head != tail; head++, seen++) {
            const struct io_uring_cqe *cqe = &cq->cqes[head & cq->ring_mask];
            if (cqe->user_data < b->q.nops)
                b->q.ops[cqe->user_data].res = cqe->res;
        }
        io_uring_smp_store_release(cq->khead, head);
        if (seen >= n)
            return;
        struct io_uring_cqe *cqe;
        b->enters++;
        rc = io_uring_wait_cqe(&b->ring, &cqe);
        if (rc < 0 && rc != -EINTR)
            iobatch_fatal(rc);
    }
}

/* A batch of one costs one system call either way: the plain one, with
 * the same flags, spares the ring's bookkeeping. */
static void
iobatch_one(struct iobatch_op *op)
{
    ssize_t r;
    do {
        if (op->buf != NULL)
            r = recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
        else
            r = sendmsg(op->fd, &op->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    op->res = r < 0 ? -errno : (int)r;
}

unsigned
iobatch_run(struct iobatch *b)
{
    unsigned n = b->q.nops;
    if (n == 0)
        return 0;
    if (n > 1)
        iobatch_submit_wait(b);
    else if (b->q.ops[0].fn != NULL)
        iobatch_one(&b->q.ops[0]);
    b->q.running = 1;
    for (unsigned i = 0; i < n; i++) {
        const struct iobatch_op *op = &b->q.ops[i];
        if (op->fn == NULL)
            continue;
        if (op->res < 0) {
            errno = -op->res;
            op->fn(op->owner, op->buf, -1);
        } else {
            op->fn(op->owner, op->buf, op->res);
        }
    }
    b->q.running = 0;
    b->q.nops = 0;
    b->q.niov = 0;
    b->q.scratch_used = 0;
    return n;
}

void
iobatch_forget(struct iobatch *b, const void *owner)
{
    for (unsigned i = 0; i < b->q.nops; i++)
        if (b->q.ops[i].owner == owner)
            b->q.ops[i].fn = NULL;
}

unsigned long long
iobatch_enters(const struct iobatch *b)
{
    return b->enters;
}

#else /* !HAVE_LIBURING */

/* Never made: callers keep to plain read/writev, and nothing below runs. */
struct iobatch {
    struct iobatch_queue q;
};

struct iobatch *
iobatch_new(unsigned depth, char *err, size_t errlen)
{
    (void)depth;
    snprintf(err, errlen, "built without liburing");
    return NULL;
}

void
iobatch_free(struct iobatch *b)
{
    (void)b;
}

void *
iobatch_scratch_first(struct iobatch *b, size_t len)
{
    (void)b;
    (void)len;
    abort();
}

unsigned
iobatch_run(struct iobatch *b)
{
    (void)b;
    abort();
}

void
iobatch_forget(struct iobatch *b, const void *owner)
{
    (void)b;
    (void)owner;
}

unsigned long long
iobatch_enters(const struct iobatch *b)
{
    (void)b;
    return 0;
}

#endif
