/* slotproxy - BSD-2-Clause
 *
 * One worker's context: the state of an event loop that owns its
 * clients, its backend connections, its view of the slot map and its
 * request pool. Every piece of mutable request-path state lives here, so
 * that N workers is a matter of running N of these (see README,
 * Architecture). This header and worker.c are the bottom of the house:
 * they call nothing above them; the loop that drives a worker is
 * worker_loop.c, at the top, and installs what must reach up as hooks.
 */
#ifndef SP_WORKER_H
#define SP_WORKER_H

#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct event;
struct config;
struct slotmap;
struct server;
struct client;
struct backend_conn;
struct request;
struct topology;
struct listener;
struct tls_ctx;
struct evdns_base;
struct client_ops;
struct router_timer;
struct inbox;
struct cmdsnap;
struct cmdtable;
struct cmdtable_names;
struct cmdlearn;
struct view_part;
struct view_job;
struct replstat;
struct replpoll;

TAILQ_HEAD(client_list, client);
TAILQ_HEAD(conn_list, backend_conn);

#include <pthread.h>

#include "bigkeys.h"
#include "blocked.h"
#include "errors.h"
#include "hotkeys.h"
#include "membudget.h"
#include "request.h"
#include "resp.h"

/* The little the workers share, never touched on the per-request path:
 * a client count (atomic), the latest slot map any worker fetched, so
 * that a topology change one worker sees (MOVED, a dead node) reaches the
 * others at their next tick, and the latest command table (worker 0
 * learns it from the masters; the others adopt it the same way). */
struct shared {
    unsigned int nclients;          /* clients of all workers, counted from
                                     * accept (atomic) */
    uint64_t next_client_id;        /* CLIENT ID source (atomic) */
    struct tls_ctx *backend_tls;    /* TLS towards the nodes, or NULL;
                                     * main swaps it on reload (atomic
                                     * store), backends read it as they
                                     * connect (atomic load) */
    pthread_mutex_t map_lock;       /* guards map, cmds and their seq
                                     * updates */
    struct slotmap *map;            /* latest published map (a ref) */
    uint64_t map_seq;               /* bumps per publish (atomic reads) */
    struct cmdsnap *cmds;           /* latest published command table (a
                                     * ref): the built-in one from the
                                     * start, then what worker 0 learned */
    uint64_t cmds_seq;              /* bumps per publish (atomic reads) */
    struct replstat *repl;          /* latest replica sync status (a ref)
                                     * worker 0's poll published, or NULL
                                     * before its first */
    uint64_t repl_seq;              /* bumps per publish (atomic reads) */
    struct cmdtable_names *cmd_names; /* stable per-command metric
                                     * indexes; used only by whoever
                                     * builds tables (shared_init, then
                                     * worker 0) */
    /* Configuration reloads (SIGHUP), for /metrics: written by the main
     * thread, which also serves the endpoint, so read there unlocked. */
    uint64_t reloads_ok;            /* reloads applied */
    uint64_t reloads_invalid;       /* reloads refused: the file (or a
                                     * TLS file it names) is invalid */
    int64_t last_reload_success_unix; /* when the configuration in force
                                     * was loaded: start-up or the last
                                     * applied reload (Unix seconds) */
    int io_mode;                    /* enum io_mode the workers start
                                     * with: IO_EPOLL, or IO_URING where
                                     * main's probe found it usable */
    int readiness;                  /* metrics.readiness in force (enum
                                     * readiness), for /readyz; main's */
    struct membudget mem;           /* bytes held for clients, all workers
                                     * (max_memory) */
    struct worker *const *workers;  /* every worker, set by main before
                                     * they start (INFO sums them all; the
                                     * acceptor picks among them) */
    int nworkers;
    struct blocked_table blocked;   /* clients of all workers blocked in a
                                     * blocking command (INFO
                                     * blocked_clients, CLIENT UNBLOCK) */
    uint64_t slowlog_ids;           /* next slow log entry id, for every
                                     * worker's ring (atomic) */
};

#define RSCRATCH_SIZE (16 * 1024)
/* Ticks during which a worker trims its request pool and purges the
 * allocator's unused pages once memory came down (mem_release_ticks). */
#define WORKER_RELEASE_TICKS 3


/* Request latency histogram bucket bounds, in microseconds: up to 10 s,
 * past the default request timeout (5 s), so that no request that got an
 * answer lands in +Inf. */
#define LAT_BUCKETS 16
extern const uint32_t lat_bucket_us[LAT_BUCKETS];

/* A latency histogram (the layout of one command's row of cmd_lat). */
struct lat_hist {
    uint64_t count[LAT_BUCKETS + 1]; /* observations by bucket; the last:
                                     * past the largest bound */
    uint64_t sum_us;                /* total microseconds observed */
};

/* The bucket of a duration of us microseconds. */
static inline int
lat_bucket(uint64_t us)
{
    int b = 0;
    while (b < LAT_BUCKETS && us > lat_bucket_us[b])
        b++;
    return b;
}

/* Why the proxy closed a client (or refused one): X(ID, label, log text).
 * The label names the row of slotproxy_disconnects_total{reason}. */
#define SP_DISC_REASONS(X) \
    X(OUTPUT_LIMIT, "output_limit", "output limit reached (slow reader)") \
    X(MEMORY_BUDGET, "memory_budget", "memory budget exceeded") \
    X(OUTPUT_STALL, "output_stall", "output stalled (client reads nothing)") \
    X(IDLE, "idle_timeout", "idle timeout") \
    X(MAX_CLIENTS, "max_clients", "refused: max_clients reached") \
    X(PROTOCOL, "protocol_error", "closed after a protocol error") \
    X(AUTH_FAILURES, "auth_failures", "closed after too many wrong AUTHs") \
    X(TLS, "tls_handshake", "TLS handshake failed") \
    X(AUTH_CHANGED, "credentials_changed", "credentials changed by reload") \
    X(PUBSUB_LOST, "pubsub_lost", \
      "pub/sub subscriptions could not be re-established") \
    X(SHUTDOWN, "shutdown", "shutting down")

#define SP_DISC_ENUM(id_, label_, text_) DISC_##id_,
enum disc_reason { SP_DISC_REASONS(SP_DISC_ENUM) DISC_COUNT };
#undef SP_DISC_ENUM

/* Which cap refused a pinned connection (pin.c): X(ID, label), the
 * label naming the row of slotproxy_pinned_refusals_total{limit}. */
#define SP_PIN_LIMITS(X) \
    X(CLIENT, "per_client") \
    X(TOTAL, "total") \
    X(NODE, "per_node")

#define SP_PIN_ENUM(id_, label_) PIN_LIMIT_##id_,
enum pin_limit { SP_PIN_LIMITS(SP_PIN_ENUM) PIN_LIMIT_COUNT };
#undef SP_PIN_ENUM

/*
 * One backend node as a worker counts it for /metrics, found by its full
 * name. An entry stays for the worker's life once the node was seen (a
 * server freed and made again finds it), so its counters never go back.
 */
struct node_stat {
    const char *name;               /* "host:port" (owned by the worker's
                                     * node table, freed with the worker) */
    uint64_t requests;              /* requests sent to it (client commands
                                     * and fragments, retries included) */
    uint64_t failed;                /* requests failed by the proxy on its
                                     * account: connection refused or lost,
                                     * timed out, node marked down */
    uint64_t conn_errors;           /* connections lost or not made
                                     * (refused, timed out, dropped,
                                     * malformed replies) */
    uint32_t inflight;              /* gauge: requests queued or in flight */
    uint8_t connected;              /* gauge: a connection is up */
    uint8_t master;                 /* gauge: a master of the current map */
    uint8_t live;                   /* gauge: the worker has a server for
                                     * it (set at each publish) */
};

struct worker_stats {
    uint64_t connections_total;     /* clients accepted */
    uint64_t commands;              /* requests parsed */
    uint64_t moved;                 /* MOVED redirects followed */
    uint64_t ask;                   /* ASK redirects followed */
    uint64_t tryagain;              /* TRYAGAIN retries */
    uint64_t timeouts;              /* requests failed by request_timeout */
    uint64_t auth_failures;         /* wrong AUTH / HELLO AUTH attempts */
    uint64_t refreshes;             /* topology maps fetched */
    uint64_t refresh_failures;      /* topology fetch attempts that failed */
    struct lat_hist refresh;        /* successful fetches' durations */
    uint64_t errors;                /* error replies sent to clients */
    uint64_t errors_by_kind[ERRK_COUNT];
    uint64_t bytes_in;              /* bytes read from clients */
    uint64_t bytes_out;             /* bytes written to clients */
    uint64_t io_uring;              /* 1 when the worker batches its I/O
                                     * with io_uring (io) */
    uint64_t io_enters;             /* io_uring_enter calls of its batches */
    uint64_t disc[DISC_COUNT];      /* clients closed (or refused) by the
                                     * proxy, by enum disc_reason */
    uint64_t pin_refused[PIN_LIMIT_COUNT]; /* pinned connections refused,
                                     * by enum pin_limit */
    uint64_t ttl_jittered;          /* requests whose TTL expiry_jitter
                                     * lengthened */
    uint64_t repl_polls;            /* INFO replication polls sent (worker
                                     * 0's) */
    uint64_t repl_poll_failures;    /* of them, answered with an error, not
                                     * answered in time, or not a master's */
    struct lat_hist lat;            /* requests by latency */
    /* Gauges, filled when the stats are published. */
    uint32_t clients;
    uint32_t pinned;
    uint32_t covered;               /* slots the worker's map covers */
    uint32_t masters;               /* masters in the worker's map */
    uint32_t nodes_down;            /* masters marked down (breaker) */
    uint64_t map_epoch;
    uint64_t mem_held;              /* bytes this worker holds for clients */
    uint32_t mem_paused;            /* 1 while reading is paused for memory */
    uint64_t tick_ms;               /* monotonic ms of the worker's last
                                     * tick (/healthz: is it alive?) */
};

/* Objects whose socket is read at the end of the turn (with io): their
 * io_pending flag is set while they are listed or have an operation in
 * the batch; entries of an object going away are cleared to NULL. */
struct io_readq {
    void **items;
    uint32_t n;
    uint32_t cap;
};

struct worker {
    int id;                         /* 0-based worker number */
    struct event_base *base;        /* this worker's loop (owned) */
    const struct config *conf;      /* active config (owned by main); set
                                     * through worker_set_conf */
    struct resp_limits req_limits[2]; /* request parse limits from conf:
                                     * [0] before AUTH, [1] after */
    struct shared *shared;          /* process-wide counters (main's) */
    struct slotmap *map;            /* current snapshot, one ref held */
    uint64_t map_epoch;             /* epoch of map; bumps per new map */
    uint64_t map_seq;               /* shared->map_seq last adopted */
    struct server **servers;        /* every node we know, by host:port */
    uint32_t nservers;
    uint32_t servers_cap;
    struct backend_cred *creds;     /* backend credentials by id - 1
                                     * (backend_cred_id), never reused */
    uint32_t ncreds;
    struct client_list clients;     /* connected clients */
    uint32_t nclients;
    unsigned int nconns;            /* its clients, those handed over and
                                     * not yet taken too (atomic: the
                                     * acceptor adds, the owner subtracts
                                     * at close): the acceptor's balance */
    struct inbox *inbox;            /* connections the acceptor handed
                                     * over (listener.c) */
    struct client_list dirty_clients; /* clients with replies to write */
    struct conn_list dirty_conns;   /* backend conns with requests to write */
    struct event *flush_ev;         /* low-priority end-of-turn flush */
    struct event *tick_ev;          /* 100 ms timer: timeouts, idle */
    int stop_pipe[2];               /* main thread's commands: x = stop,
                                     * d = drain, r = take next_conf; and
                                     * the other workers' v = look at the
                                     * view mailbox (worker_wake) */
    const struct config *next_conf; /* set by main under pub_lock */
    struct tls_ctx *next_tls;       /* TLS listeners' context, likewise */
    struct event *stop_ev;          /* reads stop_pipe */
    int flush_pending;              /* flush_ev activated this turn */
    uint64_t now_us;                /* clock at the last client read,
                                     * flush or tick (worker_now_us) */
    char *rscratch;                 /* RSCRATCH_SIZE bytes: clients read
                                     * here when they hold no buffer */
    struct iobatch *io;             /* batched socket I/O (io_uring),
                                     * or NULL: plain read/writev */
    struct io_readq rd_clients;     /* with io: plain clients found
                                     * readable this turn, read together
                                     * at the flush */
    struct io_readq rd_conns;       /* with io: backend conns, likewise */
    struct resp_req parser;         /* the request parser of a client whose
                                     * requests parse within one read (the
                                     * common case; client.c) */
    struct client *parser_user;     /* the client parsing with it now, or
                                     * NULL */
    struct listener **listeners;    /* this worker's listening sockets */
    uint32_t nlisteners;
    uint64_t drain_deadline_ms;     /* draining (SIGTERM) until then; 0 =
                                     * not draining */
    struct request_pool reqs;       /* recycled request objects */
    LIST_HEAD(, router_timer) router_timers; /* the router's armed
                                     * timers (router.c), each holding a
                                     * request */
    struct server **map_srv;        /* map->nodes[i] -> its server, rebuilt
                                     * with each new map */
    uint8_t *replica_ok;            /* map->nodes[i] is a replica fit for
                                     * reads (link up, lag within bound),
                                     * from shared->repl */
    uint64_t repl_seq;              /* shared->repl_seq last adopted */
    struct replpoll *repl_poll;     /* worker 0: the INFO replication
                                     * poller (replpoll.c), else NULL */
    uint16_t *slot_scratch;         /* SLOT_COUNT entries, all zero between
                                     * uses (fanout grouping) */
    struct server **pins;           /* live pinned (private) servers */
    uint32_t npins;
    uint32_t pins_cap;
    struct server **dead_pins;      /* released this turn, freed at flush */
    uint32_t ndead_pins;
    uint32_t dead_pins_cap;
    struct server **pin_pool;       /* idle blocking pins for reuse, oldest
                                     * first (pin.c) */
    uint32_t npin_pool;
    char topo_err[160];             /* why the last map fetch failed */
    uint64_t hold_until_ms;         /* until then (startup, no map yet)
                                     * client input waits for a map; 0 once
                                     * a map came or the wait ended */
    struct topology *topo;          /* slot map refresher */
    struct evdns_base *dns;         /* hostname resolver (backend.c), made
                                     * at the first hostname */
    /* Hook the topology installs: a backend connection to s failed. */
    void (*on_node_error)(struct worker *w, struct server *s);
    /* Hook the driver (worker_loop.c) installs: make m (one ref, taken)
     * the worker's current map; worker_set_map calls it. */
    void (*install_map)(struct worker *w, struct slotmap *m);
    /* Command policy and features for the clients it accepts (the
     * driver's: dispatch.c). */
    const struct client_ops *client_ops;
    uint64_t start_ms;              /* wall-clock start, for INFO uptime */
    uint32_t rr;                    /* round robin for keyless commands */
    uint64_t rand_state;            /* xorshift state for jitter */
    char proxy_id[41];              /* node id the proxy presents in
                                     * CLUSTER NODES/SLOTS/SHARDS/MYID */
    struct worker_stats stats;      /* counters (this thread only) */
    struct hotkeys_sampler hk_sampler; /* which keyed requests feed hk:
                                     * one in monitor.hotkeys.sample (off:
                                     * never; see worker_set_conf) */
    struct hotkeys *hk;             /* hot-key sketch of this worker, NULL
                                     * when sampling is off */
    struct hotkeys *pub_hk;         /* its copy published at the tick (under
                                     * pub_lock), NULL with hk */
    uint32_t hk_k;                  /* counters of hk and pub_hk */
    /* monitor.big_*: big requests and replies (worker_set_conf) */
    struct bigkeys_thresholds big_thr; /* the thresholds in force */
    uint64_t big_request_gate;      /* requests longer are big (UINT64_MAX:
                                     * off): the request path's one test */
    uint64_t big_reply_gate;        /* replies longer may be big: the least
                                     * of big_reply_bytes and 3 x
                                     * big_reply_elements (an element takes
                                     * 3 bytes at least); UINT64_MAX: off */
    struct bigkeys bk;              /* this worker's big requests and
                                     * replies (the ring is made at the
                                     * first one) */
    struct bigkeys pub_bk;          /* its copy published at the tick
                                     * (under pub_lock) */
    uint8_t bk_dirty;               /* bk or big_counts changed since the
                                     * last publish */
    uint64_t *big_counts;           /* per command index i: [2i] big
                                     * requests, [2i + 1] big replies */
    uint64_t *pub_big_counts;       /* its copy (under pub_lock) */
    struct memacct mem;             /* bytes held for clients, this worker's
                                     * part of shared->mem */
    uint8_t mem_paused;             /* client reading paused: the budget is
                                     * past its high-water mark */
    uint64_t mem_high_ms;           /* since when it has been past the
                                     * high-water mark (0: it is not) */
    uint32_t mem_release_ticks;     /* ticks left to give memory back */
    uint8_t req_burst;              /* the last tick saw requests spill
                                     * from the pool (reqs.nspilled) */
    uint64_t mem_high;              /* the budget's high-water mark in
                                     * bytes (UINT64_MAX: no budget), set
                                     * at each tick from conf */
    struct slowlog *slowlog;        /* this worker's slow requests */
    struct view_part *view_inbox;   /* parts of other workers' views for
                                     * this one to answer: a lock-free
                                     * stack, pushed by any thread, taken
                                     * whole by this one (view.c) */
    struct view_job *view_jobs;     /* views asked here that wait for the
                                     * other workers' parts (this thread) */
    struct cmdsnap *cmds;           /* current command table, one ref */
    const struct cmdtable *cmdtab;  /* cmds->table: what the request path
                                     * looks commands up in */
    uint64_t cmds_seq;              /* shared->cmds_seq last adopted */
    uint32_t *cmds_live;            /* requests created since cmds was
                                     * installed and not yet freed (the
                                     * request pool counts them) */
    struct cmds_retired *cmds_old;  /* replaced tables still pointed to
                                     * by live requests (r->cmd) */
    uint32_t ncmds_old;
    struct cmdlearn *learn;         /* worker 0: COMMAND fetcher */
    /* Hook the driver installs: make s (one ref, taken) the worker's
     * command table; worker_set_cmds calls it. */
    void (*install_cmds)(struct worker *w, struct cmdsnap *s);
    uint64_t *cmd_calls;            /* calls per command index
                                     * (cmdtable_index_limit() entries) */
    uint64_t *cmd_lat;              /* per command: LAT_BUCKETS + 1 counts
                                     * and the sum of microseconds */
    uint64_t *pub_cmd_lat;
    uint64_t *slot_calls;           /* keyed requests per slot */
    uint32_t pub_ticks;             /* ticks since slot counts were copied */
    uint64_t *pub_slot_calls;
    struct node_stat *nodes;        /* per-node counters (this thread) */
    uint32_t nnodes;
    uint32_t nodes_cap;
    /* A copy published every tick for the metrics endpoint (main
     * thread), under pub_lock: the request path never takes a lock. */
    pthread_mutex_t pub_lock;
    struct worker_stats pub;
    uint64_t *pub_cmd_calls;
    struct node_stat *pub_nodes;    /* copy of nodes, under pub_lock */
    uint32_t pub_nnodes;
    uint32_t pub_nodes_cap;
};

/* Ask for an end-of-turn flush (writes batched per loop turn). */
void worker_schedule_flush(struct worker *w);
/* With batched I/O: list p (its io_pending flag just set) to be read at
 * the end of this turn, and ask for the flush that reads it. */
void worker_io_queue(struct worker *w, struct io_readq *q, void *p);
/* p (with io_pending set) is going away: drop it from q and from the
 * batch, so that nothing reads into it or calls back with it. */
void worker_io_forget(struct worker *w, struct io_readq *q, void *p);
/* Replace the current slot map (takes ownership of one ref of m) and
 * publish it to the other workers (installed through w->install_map). */
void worker_set_map(struct worker *w, struct slotmap *m);
/* The worker's number (0-based). */
int worker_id(const struct worker *w);
/* Monotonic microseconds as of the last clock read of the loop: a
 * client's read event, the end-of-turn flush or the tick. Requests take
 * their start time and deadline from it, without a clock read each. */
static inline uint64_t
worker_now_us(const struct worker *w)
{
    return w->now_us;
}
/* The worker's next pseudo-random value (xorshift64 over rand_state):
 * jitter, not secrets. */
static inline uint64_t
worker_rand(struct worker *w)
{
    w->rand_state ^= w->rand_state << 13;
    w->rand_state ^= w->rand_state >> 7;
    w->rand_state ^= w->rand_state << 17;
    return w->rand_state;
}
/* Make conf the worker's configuration, with what is derived from it. */
void worker_set_conf(struct worker *w, const struct config *conf);
/* Read the clock into the worker's (at a client's read event: what it
 * parses starts now, not at the last flush); returns it. */
uint64_t worker_clock(struct worker *w);
/* Replace the current command table (takes ownership of one ref of s)
 * and publish it to the other workers (installed through
 * w->install_cmds). */
void worker_set_cmds(struct worker *w, struct cmdsnap *s);
/* The latest published command table, one ref (any thread; put it). */
struct cmdsnap *shared_cmds(struct shared *sh);
/* Copy the published stats of w (any thread). cmd_calls:
 * cmdtable_index_limit() entries, added to, or NULL. */
void worker_read_stats(struct worker *w, struct worker_stats *out,
                       uint64_t *cmd_calls);
/* Add w's published per-command latency (cmdtable_index_limit() x
 * (LAT_BUCKETS + 2) entries) to lat. */
void worker_read_cmd_lat(struct worker *w, uint64_t *lat);
/* Call fn(arg, node) for each node of w's published node table, under
 * its publish lock (fn must not block; node->name stays valid while w
 * lives). */
void worker_read_nodes(struct worker *w,
                       void (*fn)(void *arg, const struct node_stat *n),
                       void *arg);
/* The index of node name in w's node table, added if new (the table
 * only grows: a server keeps its index for life). */
uint32_t worker_node_index(struct worker *w, const char *name);
/* Add w's published per-slot counts (SLOT_COUNT entries) to slots. */
void worker_read_slots(struct worker *w, uint64_t *slots);
/* Make w look at its view mailbox soon (any thread): a byte on its
 * command pipe; its tick looks too, should the pipe be full. */
void worker_wake(struct worker *w);
/* The hottest keys over every worker's published sketch, hottest first,
 * into out[0 .. max); returns how many (0 when sampling is off). *hide
 * (may be NULL): monitor.hotkeys.hide_keys in force. Any thread; takes
 * each worker's pub_lock in turn, never two at once. */
size_t shared_hotkeys(struct shared *sh, struct hotkeys_item *out,
                      size_t max, int *hide);
/* Publish s (one ref, taken) as the replica sync status (worker 0's
 * poller; any thread reads it through shared_replstat). */
void shared_set_replstat(struct shared *sh, struct replstat *s);
/* The latest published replica sync status, one ref (put it), or NULL
 * before the first poll. Any thread. */
struct replstat *shared_replstat(struct shared *sh);
/*
 * A request of p->len bytes (client's request r, command cmd, parsed p
 * over base) past big_request_gate: recorded in the worker's big-keys
 * ring and counted, with its first key and the master of that key's slot
 * as the worker's map has it. The request path calls it only past the
 * gate: out of line.
 */
void worker_big_request(struct worker *w, const struct request *r,
                        const struct command *cmd, const struct resp_req *p,
                        const char *base);
/*
 * The complete reply data[0 .. len) to r, from node, is longer than
 * big_reply_gate: recorded and counted when it crosses a threshold (its
 * element count read from its header line), with the first key of r's
 * own bytes. Requests of no client command (cmd_index < 0) are skipped.
 */
void worker_big_reply(struct worker *w, const struct request *r,
                      const char *data, size_t len, const char *node);
/* Add w's published big-request and big-reply counts (2 x
 * cmdtable_index_limit() entries, as big_counts) to counts. */
void worker_read_big(struct worker *w, uint64_t *counts);
/* The PROXY BIGKEYS reply: every worker's published ring merged, newest
 * first, at most count entries (bigkeys_reply_merged). Any thread; takes
 * each worker's pub_lock in turn, never two at once. */
void shared_bigkeys(struct shared *sh, struct buf *out, long long count);
/*
 * With expiry_jitter on, a request (cmd, parsed p over base) that sets a
 * relative TTL of at least min_ttl gets the random extra (ttljitter.h):
 * appended to out re-encoded, counted (ttl_jittered), and 1 returned.
 * 0, out untouched, for every other request (the caller appends p's own
 * bytes). Keyed requests, sent alone or queued in MULTI.
 */
int worker_jitter_encode(struct worker *w, struct buf *out,
                         const struct command *cmd, const struct resp_req *p,
                         const char *base);
/* Count a sampled request's first key (key[0 .. len), of slot) in w's
 * hot-key sketch: call only when hotkeys_should_sample said so (it does
 * only while the sketch exists). Out of line: off the common path. */
void worker_hot_key(struct worker *w, const char *key, size_t len,
                    uint16_t slot);
/* Shared state of all workers. */
void shared_init(struct shared *sh);
void shared_deinit(struct shared *sh);

#endif
