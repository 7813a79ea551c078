/* slotproxy - BSD-2-Clause
 *
 * Request lifecycle: pooled allocation, reference counting, completion.
 * Recycled requests keep their buffers (up to a cap) so that the steady
 * state of the request path does not call malloc.
 */
#include "build_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "request.h"

/* Buffers larger than this are released when a request is recycled, so a
 * burst of big values does not pin memory in the free list. */
#define REQ_KEEP_BUF 2048
/* Free-list size cap per worker: at most REQ_POOL_MAX x (the request and
 * two REQ_KEEP_BUF buffers), about 4 MB, stays behind after a burst of
 * pipelined requests; request_pool_trim gives most of it back. */
#define REQ_POOL_MAX 1024

void
request_pool_init(struct request_pool *pool, struct worker *owner)
{
    memset(pool, 0, sizeof(*pool));
    pool->owner = owner;
}

struct request *
request_new(struct request_pool *pool)
{
    struct request *r = pool->free;
    if (r != NULL) {
        pool->free = r->next_free;
        pool->nfree--;
        memset(&r->cnext, 0, sizeof(*r) - offsetof(struct request, cnext));
        r->req.pos = r->req.len = 0;
        r->rep.pos = r->rep.len = 0;
    } else {
        r = sp_calloc(1, sizeof(*r));
    }
    r->pool = pool;
    r->w = pool->owner;
    r->refcount = 1;
    r->cmd_index = -1;
    r->live = pool->live;
    if (r->live != NULL)
        ++*r->live;
    return r;
}

void
request_share_table_slow(struct request *r, const struct request *from)
{
    if (r->live != NULL)
        --*r->live;
    r->live = from->live;
    if (r->live != NULL)
        ++*r->live;
}

static void
request_release_buf(struct buf *b)
{
    if (b->cap > REQ_KEEP_BUF)
        buf_deinit(b);
}

void
request_put_last(struct request *r)
{
    if (r->live != NULL)
        --*r->live;
    struct request_pool *pool = r->pool;
    if (pool->nfree >= REQ_POOL_MAX) {
        pool->nspilled++;
        buf_deinit(&r->req);
        buf_deinit(&r->rep);
        sp_free(r);
        return;
    }
    request_release_buf(&r->req);
    request_release_buf(&r->rep);
    r->next_free = pool->free;
    pool->free = r;
    pool->nfree++;
}

void
request_pool_trim(struct request_pool *pool, uint32_t keep)
{
    while (pool->nfree > keep) {
        struct request *r = pool->free;
        pool->free = r->next_free;
        pool->nfree--;
        buf_deinit(&r->req);
        buf_deinit(&r->rep);
        sp_free(r);
    }
}

void
request_pool_drain(struct request_pool *pool)
{
    request_pool_trim(pool, 0);
}

void
request_complete(struct request *r)
{
    SP_ASSERT(!r->done);
    r->done = 1;
    r->conn = NULL;
    if (r->on_done != NULL)
        r->on_done(r);
}

void
request_finish(struct request *r, const char *data, size_t len)
{
    buf_set(&r->rep, data, len);
    request_complete(r);
}

void
request_fail(struct request *r, const char *msg)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "-%s\r\n", msg);
    if (n < 0 || n >= (int)sizeof(line))
        n = (int)sizeof(line) - 1;
    /* One line whatever msg holds (a server's text, a node name): a CR or
     * LF inside would end the error and start a reply of its own. */
    for (int i = 1; i < n - 2; i++)
        if (line[i] == '\r' || line[i] == '\n')
            line[i] = ' ';
    line[n - 2] = '\r';
    line[n - 1] = '\n';
    request_finish(r, line, (size_t)n);
}

void
request_failf(struct request *r, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    request_fail(r, msg);
}

void
request_error(struct request *r, enum sp_error e)
{
    request_fail(r, error_text(e));
}
