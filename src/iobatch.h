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
#include <sys/types.h>
#include <sys/uio.h>

/* An operation's result, as the matching system call returns it: bytes,
 * or -1 with errno set. buf is the read buffer given (NULL for writes). */
typedef void (*iobatch_done_fn)(void *owner, void *buf, ssize_t res);

struct iobatch;

/* A batch of up to `depth` operations, or NULL when io_uring cannot be
 * used here (no liburing at build time, kernel.io_uring_disabled, a
 * seccomp filter, an old kernel): why is written to err. The calling
 * thread is the only one that may use it. */
struct iobatch *iobatch_new(unsigned depth, char *err, size_t errlen);
void iobatch_free(struct iobatch *b);

/* 1 when the batch takes one more operation with niov buffers. */
int iobatch_room(const struct iobatch *b, int niov);
/* Room for n iovecs, valid until the batch runs; fill it, then
 * iobatch_writev with the same n. */
struct iovec *iobatch_iov(struct iobatch *b, int n);
/* Queue a write of the n iovecs iobatch_iov gave last. */
void iobatch_writev(struct iobatch *b, int fd, int n, iobatch_done_fn fn,
                    void *owner);
/* Queue a read of up to len bytes into buf. */
void iobatch_read(struct iobatch *b, int fd, void *buf, size_t len,
                  iobatch_done_fn fn, void *owner);
/* A read buffer of len bytes from the batch's own area, valid until the
 * batch's callbacks have run; NULL when the area is used up (run the
 * batch first). */
void *iobatch_scratch(struct iobatch *b, size_t len);
/* Operations queued and not yet run. */
unsigned iobatch_pending(const struct iobatch *b);
/* Make every queued operation in one system call and call each one's fn
 * in the order queued. Callbacks may not queue into the batch (they may
 * use plain system calls). Returns the operations made. */
unsigned iobatch_run(struct iobatch *b);
/* owner is going away: its queued operations' callbacks will not run. */
void iobatch_forget(struct iobatch *b, const void *owner);
/* System calls made by iobatch_run so far (for the metrics). */
unsigned long long iobatch_enters(const struct iobatch *b);

#endif
