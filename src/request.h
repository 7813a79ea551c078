/* slotproxy - BSD-2-Clause
 *
 * The request object: the bytes to send to a backend, the reply bytes that
 * came back, where it is routed, and its lifecycle. A request belongs to
 * one owner (a client's pipeline, or an internal user such as the topology
 * refresher); a backend queue only holds a reference. It is freed (to the
 * worker's free list) on the last request_put().
 */
#ifndef SP_REQUEST_H
#define SP_REQUEST_H

#include <stdint.h>
#include <sys/queue.h>

#include "util.h"

struct worker;
struct client;
struct command;
struct backend_conn;
struct request;

/* Called when a backend delivers a complete reply for r; data/len are the
 * exact reply bytes (valid only during the call), type its first byte.
 * The router installs this to follow redirects. */
typedef void (*request_reply_fn)(struct request *r, const char *data,
                                 size_t len, char type);
/* Called once when r is finished (reply bytes in r->rep). */
typedef void (*request_done_fn)(struct request *r);
/* Where a redirect of r to host:port goes: a pinned request must stay on
 * its client's own connections. A NULL hook means the shared server; a
 * hook that returns NULL has failed r with the reason. */
struct server;
typedef struct server *(*request_target_fn)(struct request *r,
                                            const char *host,
                                            uint16_t port);

struct request {
    /* The buffers keep their storage when the request is recycled;
     * everything from cnext on is zeroed (request_new). */
    struct buf req;                 /* RESP bytes to send (multibulk) */
    struct buf rep;                 /* reply bytes for the owner */
    TAILQ_ENTRY(request) cnext;     /* owner client's pipeline */
    TAILQ_ENTRY(request) bnext;     /* backend send queue or in-flight FIFO */
    struct worker *w;               /* worker this request lives in */
    struct request_pool *pool;      /* where it returns on the last put */
    struct client *client;          /* owning client; NULL when internal or
                                     * orphaned (client gone) */
    int refcount;                   /* owner + backend queue references */
    const struct command *cmd;      /* command table entry, or NULL */
    uint32_t *live;                 /* counter of the requests alive under
                                     * the command table cmd points into
                                     * (request_pool.live when created);
                                     * the table stays while it is > 0 */
    struct backend_conn *conn;      /* conn it is queued/in flight on */
    const char *node;               /* name of the last server it was sent
                                     * to (for the slow log) */
    request_reply_fn on_reply;      /* backend reply hook (router) */
    request_done_fn on_done;        /* completion hook (owner) */
    request_reply_fn on_partial;    /* replies before the last one of a
                                     * multi-reply request (transactions) */
    request_target_fn target;       /* redirect target hook, or NULL */
    void *data;                     /* owner's context for on_done */
    uint64_t deadline_ms;           /* fail with a timeout after this */
    uint64_t start_us;              /* when it was parsed */
    uint16_t slot;                  /* slot of its keys (if keyed) */
    uint8_t keyed;                  /* 1 when slot is meaningful */
    uint8_t redirects;              /* MOVED/ASK/TRYAGAIN followed so far */
    uint8_t asking;                 /* send ASKING before it (ASK redirect) */
    uint8_t asking_reply;           /* next reply is ASKING's +OK: drop it */
    uint8_t asked;                  /* an ASK was followed for it */
    uint8_t done;                   /* reply complete in rep */
    uint8_t sent;                   /* bytes may have reached a backend */
    uint8_t no_deadline;            /* blocking command with timeout 0 */
    uint16_t cred;                  /* backend credential id: picks the
                                     * node's pool it travels on (backend.h;
                                     * 0 = cluster.username/password) */
    uint8_t push;                   /* unsolicited replies (pub/sub pushes)
                                     * that later pushes may be appended to */
    uint32_t replies;               /* replies this request expects (0 and 1
                                     * both mean one) */
    uint32_t replies_seen;          /* replies received so far */
    uint32_t req_nkeys;             /* fan-out fragment: keys it carries */
    int32_t cmd_index;              /* top-level command (metrics), -1 if
                                     * none */
    uint64_t charged;               /* bytes of it charged to its client's
                                     * memory budget (client.c) */
    uint64_t out_cost;              /* part of its client's out_bytes that
                                     * is this reply's (client.c) */
    struct request *next_free;      /* free list link */
};

TAILQ_HEAD(request_queue, request);

/*
 * A pool key (request, pinset and server cred fields) is a credential id
 * (0 = cluster.username/password) plus the protocol bit: RESP3 clients'
 * requests travel on connections opened with HELLO 3, so the node's reply
 * bytes reach them unchanged; RESP2 clients keep key 0 and the pools they
 * always had. Pushes (RESP3 '>') on a request/reply connection are not
 * replies and are dropped (backend.c).
 */
#define BACKEND_CRED_RESP3 0x8000u
#define BACKEND_CRED_ID(cred) ((uint16_t)((cred) & 0x7fffu))

/* 1 when r is a RESP3 client's: what the proxy builds for it is RESP3. */
static inline int
request_resp3(const struct request *r)
{
    return (r->cred & BACKEND_CRED_RESP3) != 0;
}

/* A worker's recycled requests: the steady state of the request path
 * allocates nothing. Only the owning worker's thread touches it. */
struct request_pool {
    struct request *free;           /* recycled requests (free list) */
    uint32_t nfree;                 /* length of free */
    struct worker *owner;           /* set as r->w of its requests */
    uint32_t *live;                 /* counts the requests created under the
                                     * worker's current command table (set
                                     * by the worker); NULL: not counted */
    uint32_t nspilled;              /* requests freed because the free list
                                     * was full (a burst), since the worker
                                     * last looked (worker_release_memory) */
};

void request_pool_init(struct request_pool *pool, struct worker *owner);
/* A request from the pool's free list (or new), refcount 1. */
struct request *request_new(struct request_pool *pool);
/* One more reference to r. Inline, as request_put's common case: the
 * request path takes and drops several references per request. */
static inline struct request *
request_get(struct request *r)
{
    r->refcount++;
    return r;
}

void request_share_table_slow(struct request *r, const struct request *from);
/* r is a fan-out fragment of from: it points into the command table
 * from's command points into (count it there, should the table have
 * changed since) and stands for the same client command (cmd_index). */
static inline void
request_share_table(struct request *r, const struct request *from)
{
    r->cmd_index = from->cmd_index;
    if (r->live != from->live)
        request_share_table_slow(r, from);
}

/* request_put's last reference: r returns to its pool. */
void request_put_last(struct request *r);
/* Drop a reference; the last one returns r to its pool. */
static inline void
request_put(struct request *r)
{
    SP_ASSERT(r->refcount > 0);
    if (--r->refcount == 0)
        request_put_last(r);
}
/* Drop the free list (at shutdown). */
void request_pool_drain(struct request_pool *pool);
/* Shrink the free list to at most keep requests (memory given back once
 * a burst is over). */
void request_pool_trim(struct request_pool *pool, uint32_t keep);

/* Complete with the reply already built in r->rep (local replies). */
void request_complete(struct request *r);
/* Store reply bytes and complete. */
void request_finish(struct request *r, const char *data, size_t len);
/* Deliver reply bytes to the request: runs on_reply if set, else
 * request_finish with a copy of the bytes. */
static inline void
request_reply(struct request *r, const char *data, size_t len, char type)
{
    if (r->on_reply != NULL)
        r->on_reply(r, data, len, type);
    else
        request_finish(r, data, len);
}
/* Complete with an error reply; msg is the text after '-' without CRLF. */
void request_fail(struct request *r, const char *msg);
/* Complete with one of the proxy's fixed error replies (errors.h). */
enum sp_error;
void request_error(struct request *r, enum sp_error e);
void request_failf(struct request *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
