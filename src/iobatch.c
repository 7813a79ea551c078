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
#include <unistd.h>

#include "alloc.h"
#include "iobatch.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/* iovecs one batch can hold: a write takes up to 256 of them. */
#define IOBATCH_IOV_MAX 4096

/* One queued operation. */
struct iobatch_op {
    iobatch_done_fn fn;         /* owner's callback; NULL once forgotten */
    void *owner;                /* its first argument */
    void *buf;                  /* read buffer, NULL for a write */
    struct msghdr msg;          /* a write's iovecs (read by the kernel at
                                 * submission only) */
    int res;                    /* the completion's result */
    int done;                   /* a completion was seen */
};

struct iobatch {
    struct io_uring ring;       /* submission and completion queues */
    unsigned depth;             /* operations per batch (the ring's size) */
    struct iobatch_op *ops;     /* depth entries; [0, nops) queued */
    unsigned nops;
    struct iovec *iov;          /* IOBATCH_IOV_MAX; [0, niov) in use */
    unsigned niov;
    char *scratch;              /* read area for iobatch_scratch, made on
                                 * first use */
    size_t scratch_cap;
    size_t scratch_used;
    int running;                /* inside iobatch_run's callbacks */
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
    b->depth = depth;
    b->ops = sp_calloc(depth, sizeof(*b->ops));
    b->iov = sp_malloc(IOBATCH_IOV_MAX * sizeof(*b->iov));
    /* 4 KB per operation: 64 reads of a 16 KB scratch at 256 deep (pages
     * are touched only as reads use them). */
    b->scratch_cap = (size_t)depth * 4096;
    return b;
}

void
iobatch_free(struct iobatch *b)
{
    if (b == NULL)
        return;
    io_uring_queue_exit(&b->ring);
    sp_free(b->ops);
    sp_free(b->iov);
    sp_free(b->scratch);
    sp_free(b);
}

int
iobatch_room(const struct iobatch *b, int niov)
{
    return b->nops < b->depth && b->niov + (unsigned)niov <= IOBATCH_IOV_MAX;
}

struct iovec *
iobatch_iov(struct iobatch *b, int n)
{
    (void)n; /* the caller checked iobatch_room */
    return b->iov + b->niov;
}

/* The next operation slot and its submission entry. */
static struct iobatch_op *
iobatch_add(struct iobatch *b, iobatch_done_fn fn, void *owner,
            struct io_uring_sqe **sqe)
{
    if (b->running || b->nops >= b->depth)
        abort(); /* a caller broke the contract: queue only with room */
    *sqe = io_uring_get_sqe(&b->ring);
    if (*sqe == NULL)
        abort(); /* the ring holds depth entries, as many as ops */
    struct iobatch_op *op = &b->ops[b->nops];
    op->fn = fn;
    op->owner = owner;
    op->buf = NULL;
    op->done = 0;
    io_uring_sqe_set_data64(*sqe, b->nops);
    b->nops++;
    return op;
}

void
iobatch_writev(struct iobatch *b, int fd, int n, iobatch_done_fn fn,
               void *owner)
{
    struct io_uring_sqe *sqe;
    struct iobatch_op *op = iobatch_add(b, fn, owner, &sqe);
    memset(&op->msg, 0, sizeof(op->msg));
    op->msg.msg_iov = b->iov + b->niov;
    op->msg.msg_iovlen = (size_t)n;
    b->niov += (unsigned)n;
    io_uring_prep_sendmsg(sqe, fd, &op->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void
iobatch_read(struct iobatch *b, int fd, void *buf, size_t len,
             iobatch_done_fn fn, void *owner)
{
    struct io_uring_sqe *sqe;
    struct iobatch_op *op = iobatch_add(b, fn, owner, &sqe);
    op->buf = buf;
    io_uring_prep_recv(sqe, fd, buf, len, MSG_DONTWAIT);
}

void *
iobatch_scratch(struct iobatch *b, size_t len)
{
    if (b->scratch == NULL)
        b->scratch = sp_malloc(b->scratch_cap);
    if (b->scratch_cap - b->scratch_used < len)
        return NULL;
    void *p = b->scratch + b->scratch_used;
    b->scratch_used += len;
    return p;
}

unsigned
iobatch_pending(const struct iobatch *b)
{
    return b->nops;
}

/* Submit what is queued and wait for every completion (they are made
 * inline, so the wait does not block). An io_uring_enter that fails for
 * another reason than a signal leaves entries the kernel may still read:
 * nothing safe can follow, as with a failed allocation. */
static void
iobatch_submit_wait(struct iobatch *b)
{
    unsigned seen = 0;
    int rc;

    do {
        b->enters++;
        rc = io_uring_submit_and_wait(&b->ring, b->nops);
    } while (rc == -EINTR);
    if (rc < 0) {
        fprintf(stderr, "slotproxy: io_uring_enter: %s\n", strerror(-rc));
        abort();
    }
    while (seen < b->nops) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&b->ring, head, cqe) {
            uint64_t i = io_uring_cqe_get_data64(cqe);
            if (i < b->nops && !b->ops[i].done) {
                b->ops[i].res = cqe->res;
                b->ops[i].done = 1;
                seen++;
            }
            n++;
        }
        io_uring_cq_advance(&b->ring, n);
        if (seen < b->nops) {
            b->enters++;
            rc = io_uring_wait_cqe(&b->ring, &cqe);
            if (rc < 0 && rc != -EINTR) {
                fprintf(stderr, "slotproxy: io_uring_enter: %s\n",
                        strerror(-rc));
                abort();
            }
        }
    }
}

unsigned
iobatch_run(struct iobatch *b)
{
    unsigned n = b->nops;
    if (n == 0)
        return 0;
    iobatch_submit_wait(b);
    b->running = 1;
    for (unsigned i = 0; i < n; i++) {
        struct iobatch_op *op = &b->ops[i];
        if (op->fn == NULL)
            continue;
        if (op->res < 0) {
            errno = -op->res;
            op->fn(op->owner, op->buf, -1);
        } else {
            op->fn(op->owner, op->buf, op->res);
        }
    }
    b->running = 0;
    b->nops = 0;
    b->niov = 0;
    b->scratch_used = 0;
    return n;
}

void
iobatch_forget(struct iobatch *b, const void *owner)
{
    for (unsigned i = 0; i < b->nops; i++)
        if (b->ops[i].owner == owner)
            b->ops[i].fn = NULL;
}

unsigned long long
iobatch_enters(const struct iobatch *b)
{
    return b->enters;
}

#else /* !HAVE_LIBURING */

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

int
iobatch_room(const struct iobatch *b, int niov)
{
    (void)b;
    (void)niov;
    return 0;
}

struct iovec *
iobatch_iov(struct iobatch *b, int n)
{
    (void)b;
    (void)n;
    abort();
}

void
iobatch_writev(struct iobatch *b, int fd, int n, iobatch_done_fn fn,
               void *owner)
{
    (void)b, (void)fd, (void)n, (void)fn, (void)owner;
    abort();
}

void
iobatch_read(struct iobatch *b, int fd, void *buf, size_t len,
             iobatch_done_fn fn, void *owner)
{
    (void)b, (void)fd, (void)buf, (void)len, (void)fn, (void)owner;
    abort();
}

void *
iobatch_scratch(struct iobatch *b, size_t len)
{
    (void)b;
    (void)len;
    return NULL;
}

unsigned
iobatch_pending(const struct iobatch *b)
{
    (void)b;
    return 0;
}

unsigned
iobatch_run(struct iobatch *b)
{
    (void)b;
    return 0;
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
