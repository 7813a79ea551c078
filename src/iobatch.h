/* slotproxy - BSD-2-Clause
 *
 * Batched socket I/O with io_uring: the reads and writes a loop turn
 * needs are queued, then made by one io_uring_enter, and each result is
 * handed to its owner as read(2)/writev(2) would have returned it.
 *
 * Every operation carries MSG_DONTWAIT, so the kernel makes it inline,
 * during the submission, and answers -EAGAIN instead of waiting: a batch
 * is synchronous. When iobatch_run returns, the kernel holds no pointer
 * into the batch's buffers, and the readiness model (libevent's epoll
 * events, backpressure by removing a read event) stays exactly as it is
 * without io_uring. What changes is the count of system calls: one per
 * batch instead of one per socket.
 *
 * Pure: no libevent, no worker. Built without liburing, iobatch_new
 * always fails and callers keep to plain read/writev.
 */
#ifndef SP_IOBATCH_H
#define SP_IOBATCH_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util.h"

/* An operation's result, as the matching system call returns it: bytes,
 * or -1 with errno set. buf is the read buffer given (NULL for writes). */
typedef void (*iobatch_done_fn)(void *owner, void *buf, ssize_t res);

/* One queued operation (filled by the inline functions below; the rest is
 * iobatch.c's). */
struct iobatch_op {
    iobatch_done_fn fn;         /* owner's callback; NULL once forgotten */
    void *owner;                /* its first argument */
    void *buf;                  /* read buffer, NULL for a write */
    int fd;                     /* the socket */
    int res;                    /* the result (bytes or -errno) */
    size_t len;                 /* a read's room */
    struct msghdr msg;          /* a write's buffers (msg_iov, msg_iovlen;
                                 * the rest stays zero) */
};

/* What queueing touches, inline on the request path (a call per step
 * cost ~10% of a GET's instructions); the first member of the private
 * struct iobatch. */
struct iobatch_queue {
    struct iobatch_op *ops;     /* depth entries; [0, nops) queued */
    unsigned nops;
    unsigned depth;             /* operations per batch (the ring's size) */
    struct iovec *iov;          /* iov_max entries; [0, niov) in use */
    unsigned niov;
    unsigned iov_max;
    char *scratch;              /* read area for iobatch_scratch (NULL
                                 * until first used) */
    size_t scratch_used;
    size_t scratch_cap;
    unsigned running;           /* inside iobatch_run's callbacks */
};

struct iobatch;

/* A batch of up to `depth` operations, or NULL when io_uring cannot be
 * used here (no liburing at build time, kernel.io_uring_disabled, a
 * seccomp filter, an old kernel): why is written to err. The calling
 * thread is the only one that may use it. */
struct iobatch *iobatch_new(unsigned depth, char *err, size_t errlen);
void iobatch_free(struct iobatch *b);

static inline struct iobatch_queue *
iobatch_q(struct iobatch *b)
{
    return (struct iobatch_queue *)(void *)b;
}

/* 1 when the batch takes one more operation with niov buffers. */
static inline int
iobatch_room(struct iobatch *b, int niov)
{
    const struct iobatch_queue *q = iobatch_q(b);
    return q->nops < q->depth && q->niov + (unsigned)niov <= q->iov_max;
}

/* Room for n iovecs, valid until the batch runs; fill it, then
 * iobatch_writev with the same n. */
static inline struct iovec *
iobatch_iov(struct iobatch *b, int n)
{
    (void)n; /* the caller checked iobatch_room */
    return iobatch_q(b)->iov + iobatch_q(b)->niov;
}

/* The next operation (the caller checked iobatch_room). */
static inline struct iobatch_op *
iobatch_add(struct iobatch *b, int fd, iobatch_done_fn fn, void *owner)
{
    SP_ASSERT(!iobatch_q(b)->running && iobatch_room(b, 0));
    struct iobatch_op *op = &iobatch_q(b)->ops[iobatch_q(b)->nops++];
    op->fn = fn;
    op->owner = owner;
    op->fd = fd;
    return op;
}

/* Queue a write of the n iovecs iobatch_iov gave last. */
static inline void
iobatch_writev(struct iobatch *b, int fd, int n, iobatch_done_fn fn,
               void *owner)
{
    struct iobatch_queue *q = iobatch_q(b);
    struct iobatch_op *op = iobatch_add(b, fd, fn, owner);
    op->buf = NULL;
    op->msg.msg_iov = q->iov + q->niov;
    op->msg.msg_iovlen = (size_t)n;
    q->niov += (unsigned)n;
}

/* Queue a read of up to len bytes into buf. */
static inline void
iobatch_read(struct iobatch *b, int fd, void *buf, size_t len,
             iobatch_done_fn fn, void *owner)
{
    struct iobatch_op *op = iobatch_add(b, fd, fn, owner);
    op->buf = buf;
    op->len = len;
}

/* The scratch area's first allocation (out of line). */
void *iobatch_scratch_first(struct iobatch *b, size_t len);

/* A read buffer of len bytes from the batch's own area, valid until the
 * batch's callbacks have run; NULL when the area is used up (run the
 * batch first). */
static inline void *
iobatch_scratch(struct iobatch *b, size_t len)
{
    struct iobatch_queue *q = iobatch_q(b);
    if (q->scratch == NULL)
        return iobatch_scratch_first(b, len);
    if (q->scratch_cap - q->scratch_used < len)
        return NULL;
    void *p = q->scratch + q->scratch_used;
    q->scratch_used += len;
    return p;
}

/* Operations queued and not yet run. */
static inline unsigned
iobatch_pending(struct iobatch *b)
{
    return iobatch_q(b)->nops;
}

/* Make every queued operation in one system call and call each one's fn
 * in the order queued. Callbacks may not queue into the batch (they may
 * use plain system calls). Returns the operations that were queued,
 * forgotten ones included (they are not made). */
unsigned iobatch_run(struct iobatch *b);
/* owner is going away, or closed its socket: its queued operations are
 * not made and their callbacks do not run. */
void iobatch_forget(struct iobatch *b, const void *owner);
/* System calls made by iobatch_run so far (for the metrics). */
unsigned long long iobatch_enters(const struct iobatch *b);

#endif
