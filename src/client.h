/* slotproxy - BSD-2-Clause
 *
 * A client connection: reads and parses requests, dispatches each one
 * (locally, or through the router), and writes replies strictly in request
 * order. Backpressure: reading pauses while too many requests are pending;
 * a client whose unwritten replies pass the output limit is closed.
 */
#ifndef SP_CLIENT_H
#define SP_CLIENT_H

#include <stdint.h>
#include <sys/queue.h>

#include "pin.h"
#include "request.h"
#include "resp.h"
#include "util.h"
#include "worker.h"

struct worker;
struct event;

struct resp_req;
struct command;

/*
 * What the layers above give a client connection (the worker driver sets
 * them; pgbouncer's protocol handler passed to its socket buffer is the
 * model): the command policy and the features' per-client lifecycle, so
 * that this module knows no command and no feature.
 */
/* What client_ops.dispatch did with a request. */
enum client_dispatch {
    CLIENT_DISPATCHED,              /* it joined the pipeline */
    CLIENT_DISPATCHED_ALONE,        /* it joined the pipeline and must run
                                     * alone: nothing after it is sent
                                     * before its answer */
    CLIENT_DISPATCH_WAIT,           /* it must run alone and earlier
                                     * requests are unanswered: nothing
                                     * was done; offer it again once they
                                     * are */
};

struct client_ops {
    /* Handle one parsed request (cmd: its entry or NULL): it joins c's
     * pipeline (client_new_request) and is answered or routed, unless it
     * must run alone (a blocking command, WATCH ...: sent only once every
     * earlier request is answered) while c->nundone > 0. */
    enum client_dispatch (*dispatch)(struct client *c,
                                     const struct resp_req *p,
                                     const char *base,
                                     const struct command *cmd);
    /* Free the features' state of c (at the end of the turn it closed). */
    void (*free_state)(struct client *c);
    /* Every tick (100 ms), for every client. */
    void (*tick)(struct client *c, uint64_t now_ms);
};

/*
 * A client's rarely used state, allocated on its first use
 * (client_ext_get): most connections never name themselves, fail an AUTH
 * or pin a server, and an idle client then costs its struct client alone.
 */
struct client_ext {
    char *name;                     /* CLIENT SETNAME (owned) or NULL */
    char *lib_name;                 /* CLIENT SETINFO lib-name (owned) or
                                     * NULL; kept by RESET, as in Redis */
    char *lib_ver;                  /* CLIENT SETINFO lib-ver, likewise */
    uint64_t auth_log_ms;           /* last wrong-AUTH log line */
    struct request *auth_held;      /* a wrong AUTH's reply held back
                                     * (throttle); nothing after it runs */
    uint64_t auth_held_until_ms;    /* when auth_held is answered */
    uint32_t auth_failures;         /* wrong AUTHs on this connection */
    struct pinset pins;             /* dedicated backend connections; its
                                     * cred follows struct client's */
};

/*
 * One per connection, so its size is what an idle client costs (with its
 * read event, 128 bytes): 320 bytes is one jemalloc size class, 321 the
 * next (384). Fill the holes between small fields before growing it, and
 * put what few clients use in struct client_ext (issue 14).
 */
struct client {
    TAILQ_ENTRY(client) next;       /* worker's client list */
    TAILQ_ENTRY(client) dnext;      /* worker's dirty list */
    struct worker *w;               /* owning worker (its client_ops: the
                                     * command policy and features) */
    uint64_t id;                    /* CLIENT ID */
    char addr[64];                  /* peer address for logs and CLIENT */
    struct client_ext *ext;         /* rarely used state, or NULL */
    struct event *rev;              /* read readiness */
    struct event *wev;              /* write readiness, made when first
                                     * blocked (most never are) */
    struct buf rbuf;                /* bytes read, not yet parsed */
    struct resp_req *parser;        /* its own parser (owned) while a
                                     * request spans reads or is held;
                                     * NULL: it parses with the worker's */
    struct request_queue pipeline;  /* requests in arrival order */
    int fd;                         /* socket, -1 once closed */
    uint32_t npipeline;             /* length of pipeline */
    uint64_t out_bytes;             /* what its unwritten replies cost: the
                                     * request and reply buffer of each */
    size_t wpos;                    /* bytes of the head reply written */
    uint64_t created_ms;            /* connect time */
    uint64_t last_ms;               /* last read, for idle_timeout */
    uint64_t stalled_ms;            /* since when its socket takes nothing
                                     * (0: not stalled) */
    uint32_t kernel_queued;         /* bytes in the socket's send queue at
                                     * the last EAGAIN (0 once it drains;
                                     * SIOCOUTQ gives an int) */
    uint32_t nundone;               /* requests not yet answered */
    uint8_t dirty;                  /* on the dirty list */
    uint8_t io_pending;             /* listed in w->rd_clients or in the
                                     * I/O batch (worker_io_queue) */
    uint8_t closing;                /* close once replies are written */
    uint8_t close_why;              /* then: 1 + enum disc_reason when the
                                     * proxy decided it, 0 (QUIT) */
    uint8_t read_paused;            /* reading paused (backpressure) */
    uint8_t mem_paused;             /* reading paused by the memory budget
                                     * (resumed at a tick) */
    uint8_t closed;                 /* closed; freed at end of turn */
    uint8_t held;                   /* parser holds a request waiting for
                                     * earlier ones (exclusive request) */
    struct request *barrier;        /* exclusive request in flight: nothing
                                     * after it is sent before its reply */
    uint8_t resp3;                  /* HELLO 3: proxy-made replies in RESP3,
                                     * requests on RESP3 pools (the
                                     * BACKEND_CRED_RESP3 bit of cred
                                     * follows it); RESET clears it */
    uint8_t authed;                 /* AUTH done (or no auth configured) */
    uint8_t role;                   /* enum user_role once authed */
    uint8_t handshaking;            /* TLS handshake not done yet */
    uint8_t waiting_map;            /* input held until the first slot map
                                     * (startup) */
    uint16_t cred;                  /* backend credential id its requests
                                     * and pinned connections use */
    uint64_t auth_fp;               /* fingerprint of the credential it
                                     * logged in with (auth.h), rechecked
                                     * at reload; 0: none */
    struct tls_conn *tls;           /* TLS session, or NULL (plain) */
    struct txn *tx;                 /* MULTI/WATCH state, NULL until used */
    struct pubsub *ps;              /* pub/sub state, NULL until used */
    int64_t mem;                    /* bytes held for it (read buffer,
                                     * pipeline, replies, MULTI queue),
                                     * charged to the memory budget */
    size_t rbuf_charged;            /* part of mem that is rbuf's storage */
};

/* c's rarely used state, allocated (zeroed) on the first call. */
struct client_ext *client_ext_get(struct client *c);
/* c's pinned connections (client_ext_get(c)->pins). */
struct pinset *client_pins(struct client *c);

/* Append an unsolicited reply (a pub/sub push) to the client's output,
 * after everything already in its pipeline. */
void client_push(struct client *c, const char *data, size_t len);

/* Charge delta bytes (negative: release) held for c to its memory
 * budget (MULTI queues and other per-client state outside client.c). */
void client_mem_add(struct client *c, int64_t delta);
/* Tick: publish the worker's held bytes, pause or resume reading at the
 * budget's marks, and close the largest clients when it is exceeded. */
void client_check_memory(struct worker *w, uint64_t now_ms);

struct command;

/* Log c in with a role and the credential's fingerprint (auth_check);
 * user: index in conf->users, -1 for auth.password. Its requests then
 * travel as the user's backend_user. -1 (c unchanged) when that backend
 * credential cannot be registered. */
int client_login(struct client *c, int role, uint64_t fp, int user);
/* A wrong AUTH (or HELLO AUTH): r holds its error reply and is answered
 * at once, or held back a while (throttle) with nothing after it read
 * meanwhile; after auth.max_failures the connection closes. */
void client_auth_failed(struct client *c, struct request *r);
/* Switch c's protocol (HELLO 2/3, RESET): its later requests and new
 * pinned connections use the pools of that protocol. */
void client_set_resp3(struct client *c, int on);
/* Back to "not authenticated": the next command gets NOAUTH. */
void client_logout(struct client *c);
/* Append a new request to c's pipeline, owned by c (the dispatcher
 * answers or routes it). */
struct request *client_new_request(struct client *c);

/* The local address a client reached: the proxy presents itself there
 * (CLUSTER SLOTS/NODES/SHARDS, CLIENT LIST's laddr). */
struct client_laddr {
    char host[48]; /* numeric; "127.0.0.1" for a unix socket */
    uint16_t port; /* 0 for a unix socket */
};
/* Read from the socket when asked rather than kept in every client (56
 * bytes each); a closed client reads as a unix socket. */
void client_local_addr(const struct client *c, struct client_laddr *out);

struct tls_ctx;
/* Take ownership of an accepted socket (TLS with tls, plain if NULL),
 * already counted in shared->nclients and w->nconns (listener.c);
 * client_close gives both back, whatever ends the connection. */
void client_accept(struct worker *w, int fd, const char *addr,
                   struct tls_ctx *tls);
/* Write replies of dirty clients (with batched I/O, queue the writes
 * into w->io's batch); free clients closed this turn. */
void client_flush_dirty(struct worker *w);
/* With batched I/O (w->io): queue a read of every client found readable
 * this turn (w->rd_clients) into the batch; their callbacks parse what
 * comes once the batch runs. */
void client_read_batch(struct worker *w);
/* Close now (deferred free); reason is logged. */
void client_close(struct client *c, const char *reason);
/* client_close for a reason of the proxy's own, counted in
 * slotproxy_disconnects_total{reason}. */
void client_disconnect(struct client *c, enum disc_reason why);
/* Close clients idle past idle_timeout. */
void client_check_idle(struct worker *w, uint64_t now_ms);
/* Resume clients whose input waits for the first slot map (it arrived,
 * or the startup wait is over). */
void client_wake_waiting(struct worker *w);
/* Close every client (shutdown). */
void client_close_all(struct worker *w);

#endif
