/* slotproxy - BSD-2-Clause
 *
 * Backend connections: for each cluster node (a "server", host:port) a
 * small fixed number of persistent, multiplexed connections shared by all
 * clients of the worker. Requests are pipelined: a send queue of requests
 * not yet fully written, and an in-flight FIFO that pairs each reply with
 * its request. Reconnect with exponential backoff and jitter.
 */
#ifndef SP_BACKEND_H
#define SP_BACKEND_H

#include <stdint.h>
#include <sys/queue.h>

#include "request.h"
#include "resp.h"
#include "util.h"

struct worker;
struct request;
struct event;
struct tls_conn;

enum bconn_state {
    BCONN_DISCONNECTED = 0,
    BCONN_RESOLVING,                /* hostname lookup in flight */
    BCONN_CONNECTING,
    BCONN_CONNECTED,
};

struct evdns_getaddrinfo_request;

struct backend_conn {
    struct server *srv;             /* node this connects to */
    int fd;                         /* socket, -1 when disconnected */
    int state;                      /* enum bconn_state */
    struct event *rev;              /* read readiness */
    struct event *wev;              /* write readiness / connect done */
    struct request_queue sendq;     /* requests not yet fully written */
    size_t send_off;                /* bytes of sendq's head written */
    struct request_queue inflight;  /* written, waiting for replies */
    uint32_t ninflight;             /* length of inflight */
    struct buf rbuf;                /* reply bytes read, not yet parsed */
    size_t rbuf_charged;            /* rbuf's storage, as charged to the
                                     * worker's memory budget */
    struct resp_reply rp;           /* reply scanner state */
    uint64_t connect_deadline_ms;   /* connect timeout */
    uint64_t retry_at_ms;           /* no reconnect before this */
    uint32_t failures;              /* consecutive connect failures */
    struct request *auth_req;       /* AUTH sent first, until answered */
    struct evdns_getaddrinfo_request *dns_req; /* lookup (RESOLVING) */
    int dns_rc;                     /* lookup answered inside the call:
                                     * 0 connecting, -1 failed, 1 not yet */
    int dns_sync;                   /* inside evdns_getaddrinfo */
    struct tls_conn *tls;           /* TLS session (backend_tls), or NULL */
    int dirty;                      /* on the worker's dirty_conns list */
    int io_pending;                 /* listed in w->rd_conns or in the I/O
                                     * batch (worker_io_queue) */
    TAILQ_ENTRY(backend_conn) dnext; /* dirty list link */
};

/*
 * A backend credential other than cluster.username/password: the ACL
 * user a client user's requests run as (auth.users[].backend_user). A
 * worker keeps a table of them; an id (index + 1) never changes meaning,
 * so pools keyed by it stay right across reloads.
 */
struct backend_cred {
    char *user;                     /* ACL user name (owned) */
    char *password;                 /* its password (owned; wiped when
                                     * freed, never logged) */
};

struct server {
    struct worker *w;               /* owning worker */
    char *host;                     /* endpoint (owned) */
    uint16_t port;
    char name[300];                 /* "host:port" for logs and errors */
    uint32_t stat;                  /* its entry in w->nodes (metrics) */
    struct backend_conn *conns;     /* array of nconns */
    uint32_t nconns;
    uint32_t rr;                    /* round robin over conns */
    uint32_t timeouts;              /* consecutive request timeouts */
    uint8_t down;                   /* circuit open: requests fail fast
                                     * until a probe PING is answered */
    uint8_t probing;                /* a probe PING is in flight */
    char last_err[120];             /* why the last connect failed */
    uint8_t readonly;               /* a replica we read from: READONLY is
                                     * sent first on every connection */
    int private_conn;               /* a client's pinned connection, not in
                                     * the worker's shared list */
    uint16_t cred;                  /* pool key: the credential its
                                     * connections AUTH with (BACKEND_CRED_ID:
                                     * 0 = cluster.username/password, else
                                     * w->creds[id - 1]) and the protocol
                                     * (BACKEND_CRED_RESP3) */
    struct server *base;            /* for a shared pool with cred != 0:
                                     * the node's cred 0 server (owner) */
    struct server **alt;            /* cred 0 shared server: the node's
                                     * pools for other keys, by
                                     * backend_alt_index, made on first use
                                     * (owned) */
    uint16_t nalt;                  /* entries in alt */
    uint64_t last_used_us;          /* last backend_send, worker clock
                                     * (backend_reap) */
    /* Push mode (pub/sub): every reply goes to on_push, unpaired; written
     * requests are not kept in flight. NULL for request/reply mode. */
    void (*on_push)(struct server *s, const char *data, size_t len,
                    char type);
    void *push_ctx;                 /* on_push's context (the client) */
    /* Push mode: the connection dropped (called from its error path). */
    void (*on_push_lost)(struct server *s);
};

/* Find the server host:port in the worker, creating it if new. */
struct server *backend_get(struct worker *w, const char *host, uint16_t port);
void backend_free(struct server *s);
/* A server with one connection that is not shared: a client's pinned
 * connection (transactions with WATCH, blocking commands). The caller
 * frees it with backend_free, which fails what is still queued. */
struct server *backend_new_private(struct worker *w, const char *host,
                                  uint16_t port);
/* Mark s as a replica to read from: READONLY now on open connections,
 * and first on every later one. */
void backend_set_readonly(struct server *s);
/* Open s's connections now rather than at the first request. */
void backend_warm(struct server *s);
/* Add the requests queued or in flight on s's node (every credential's
 * pool) to *inflight; *connected |= 1 when one connection is up. */
void backend_load(const struct server *s, uint32_t *inflight,
                 uint8_t *connected);
/* 1 when nothing is queued or in flight on s. */
int backend_idle(const struct server *s);
/* Timeout sweep of one server (pinned ones are swept by their owner). */
void backend_server_timeouts(struct server *s, uint64_t now_ms);

/*
 * Queue r on one of s's connections (takes a reference), connecting if
 * needed. A shared s stands for its node: r goes to the node's pool for
 * r->cred (made on first use). If the node is in reconnect backoff, r
 * fails at once with an error. The write happens at the end of the loop
 * turn.
 */
void backend_send(struct server *s, struct request *r);

/* The id of credential user/password in w's table (added if new), for
 * request and pinset cred fields; -1 when the table is full. */
int backend_cred_id(struct worker *w, const char *user, const char *password);
/* Free w's credential table (worker shutdown, after its servers). */
void backend_creds_free(struct worker *w);

/* Write every dirty connection's send queue (end-of-turn flush); with
 * batched I/O (w->io), queue the writes into the batch instead. */
void backend_flush_dirty(struct worker *w);
/* With batched I/O: queue a read of every connection found readable this
 * turn (w->rd_conns) into the batch. */
void backend_read_batch(struct worker *w);
/* Fail requests past their deadline; their connection is closed. */
void backend_check_timeouts(struct worker *w, uint64_t now_ms);
/* Free the worker's hostname resolver (after every server is freed). */
void backend_dns_free(struct worker *w);
/* Free the shared servers that are no node of the current map (a node
 * that left, a seed) and have had nothing to do for a while. */
void backend_reap(struct worker *w, uint64_t now_ms);

#endif
