/* slotproxy - BSD-2-Clause
 *
 * Replica sync status of every master, as the replication poll (worker
 * 0, one INFO replication per master per cluster.replica_poll_interval)
 * last saw it: each master's replicas with their link and their lag in
 * bytes, and how the last poll went. The poller keeps one working copy
 * and publishes immutable, refcounted clones of it (like the slot map);
 * every worker derives its replica-read decisions from the latest clone,
 * /metrics and PROXY TOPOLOGY print it.
 *
 * A replica the master once listed is remembered when its line goes (the
 * master dropped the link after repl-timeout): it stays with link 0 and
 * a lag counted from the last offset it acknowledged, so the series does
 * not vanish when it matters, until it has been gone REPLSTAT_FORGET_MS.
 *
 * Pure module: no I/O, no globals.
 */
#ifndef SP_REPLSTAT_H
#define SP_REPLSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "replinfo.h"

struct slotmap;

#define REPLSTAT_FORGET_MS (5 * 60 * 1000) /* a replica unlisted this long
                                            * is dropped */
#define REPLSTAT_ERR_MAX 128                /* bytes of a failure kept */

enum replstat_status {
    REPLSTAT_PENDING = 0,   /* not answered yet */
    REPLSTAT_OK,            /* the last poll was answered and parsed */
    REPLSTAT_FAILED,        /* the last poll failed: error reply, no
                             * answer in time, not a master's INFO */
};

/* One replica of a master. */
struct replstat_replica {
    char ip[REPLINFO_HOST_MAX]; /* ip= as the master lists it */
    uint16_t port;              /* port= */
    uint8_t link_up;            /* listed as online in the last answer */
    uint8_t lag_known;          /* lag_bytes is meaningful */
    uint64_t lag_bytes;         /* the master's offset minus the last
                                 * offset this replica acknowledged */
    long long offset;           /* that offset; -1 when never known */
    uint64_t seen_ms;           /* when an answer last listed it */
};

/* One master and what its last answer said. */
struct replstat_master {
    char host[REPLINFO_HOST_MAX]; /* the map's host */
    uint16_t port;              /* and port */
    uint8_t status;             /* enum replstat_status of the last poll */
    uint8_t inflight;           /* the poller's: a poll is out (cleared in
                                 * clones) */
    uint8_t in_map;             /* replstat_sync_map's mark */
    long long master_offset;    /* master_repl_offset:; -1 when unknown */
    uint64_t polled_ms;         /* when the last good answer came */
    uint64_t failures;          /* polls of it that failed, in all */
    char error[REPLSTAT_ERR_MAX]; /* why the last one failed ("" when it
                                 * did not) */
    struct replstat_replica *replicas; /* nreplicas records, owned */
    uint32_t nreplicas;
    uint32_t cap;               /* allocated records */
};

/* A set of masters. Clones are published read-only across threads. */
struct replstat {
    int refcount;               /* atomic; freed at 0 */
    uint64_t seq;               /* the poller's publish number */
    struct replstat_master *masters; /* nmasters entries, owned */
    uint32_t nmasters;
    uint32_t cap;               /* allocated entries */
};

/* An empty set, refcount 1. */
struct replstat *replstat_new(void);
/* A deep copy of s (in-flight marks cleared), refcount 1. */
struct replstat *replstat_clone(const struct replstat *s);
struct replstat *replstat_get(struct replstat *s);
void replstat_put(struct replstat *s);

/*
 * Make s's masters those of map m (new ones PENDING, those no longer a
 * master dropped, the rest kept as they are, in m's order). Returns 1
 * when some master was added.
 */
int replstat_sync_map(struct replstat *s, const struct slotmap *m);

/* The entry of master host:port, or NULL. */
struct replstat_master *replstat_find(const struct replstat *s,
                                      const char *host, uint16_t port);

/* The record of replica ip:port of master ms, or NULL. */
const struct replstat_replica *
replstat_find_replica(const struct replstat_master *ms, const char *ip,
                      uint16_t port);

/*
 * Fold a parsed answer (role:master) taken at now_ms into ms: its
 * replicas are updated or added, those it no longer lists are kept with
 * link 0 (forgotten after REPLSTAT_FORGET_MS), the status becomes OK.
 * Returns 1 when ms was FAILED before (a recovery, worth one log line).
 */
int replstat_update(struct replstat_master *ms, const struct replinfo *ri,
                    uint64_t now_ms);

/*
 * Record a failed poll of ms (why: a short reason, copied and cut).
 * Returns 1 when ms was not FAILED before (a new failure, worth one log
 * line; the following ones are only counted).
 */
int replstat_fail(struct replstat_master *ms, const char *why);

/* Replicas of ms whose link is up: the value of
 * slotproxy_master_replicas{master}. */
uint32_t replstat_healthy(const struct replstat_master *ms);

/*
 * 1 when replica node i of map m may serve reads: its master's last
 * answer (in s, which may be NULL) lists it online with a known lag of
 * at most max_lag_bytes.
 */
int replstat_replica_fit(const struct replstat *s, const struct slotmap *m,
                         uint32_t i, uint64_t max_lag_bytes);

#endif
