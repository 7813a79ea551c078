/* slotproxy - BSD-2-Clause
 *
 * Pinned connections: backend connections dedicated to one client, for
 * state a shared, multiplexed connection cannot carry (WATCH) and for
 * commands that would stall it (BLPOP, XREAD BLOCK ...). A client holds
 * at most one per node for each stateful feature (WATCH, pub/sub), kept
 * until that feature releases it (RESET, leaving subscribed mode) or the
 * client closes,
 * and one for the blocking command it is waiting on, given back when the
 * command returns: to a small per-worker pool of idle connections that
 * the next blocking command of any client reuses (no connect and AUTH per
 * BLPOP), so idle clients hold none. Closing a pinned connection ends
 * whatever it was doing on the server (a block, a WATCH). Caps: per
 * worker (clients.max_pinned), per node (clients.max_pinned_per_node) and
 * per client (clients.max_pinned_per_client).
 */
#ifndef SP_PIN_H
#define SP_PIN_H

#include <stdint.h>

struct worker;
struct server;

/* Who uses a pinned connection that holds state. Such a pin serves
 * exactly one feature, which alone keeps pointers to it and alone
 * releases it: no feature can free a connection another one still names
 * (a WATCH on a connection that RESET in subscribed mode released ...). */
enum pin_user {
    PIN_TXN = 0, /* WATCH and the EXEC that follows */
    PIN_PUBSUB,  /* push-mode pub/sub connections */
};

struct pin {
    struct server *srv; /* the private server (owned) */
    uint8_t user;       /* enum pin_user */
};

struct pinset {
    struct pin *v; /* pinned servers holding state (WATCH,
                          * pub/sub), one per node and user */
    uint32_t n;
    struct server **blk; /* pinned for a blocking command, given
                          * back once idle (pin_blocking_done) */
    uint32_t nblk;
    uint16_t cred; /* backend credential id of the
                    * client's user (backend.h) */
    /* While a blocking command is on its way (pin_block_probe): */
    uint64_t client_id;       /* the client's CLIENT ID */
    struct request *probe;    /* the CLIENT ID sent ahead, until answered */
    struct server *probe_srv; /* the pinned server it went to */
    uint8_t blocked;          /* listed in the shared blocked table */
};

/* The client's pinned server for host:port used by user, with its
 * credential (ps->cred), opened if new; NULL when a cap is reached
 * (pin_refusal says which). */
struct server *pin_get(struct worker *w, struct pinset *ps, const char *host,
                       uint16_t port, enum pin_user user);
/* A pinned server to host:port for one blocking command, with the
 * client's credential: an idle one of that credential from the worker's
 * pool, or a new one; NULL when a cap is reached. The client's earlier
 * blocking pins that are idle are given back first. */
struct server *pin_get_blocking(struct worker *w, struct pinset *ps,
                                const char *host, uint16_t port);
/*
 * The client's blocking command is about to go to s (a pin from
 * pin_get_blocking, also after a redirect): queue a CLIENT ID just ahead
 * of it on s. Its answer names that connection on the server, and the
 * client (client_id) is then listed in the shared blocked table (INFO
 * blocked_clients, CLIENT UNBLOCK) until the block ends.
 */
void pin_block_probe(struct worker *w, struct pinset *ps, struct server *s,
                     uint64_t client_id);
/* The client's blocking command is over: it leaves the blocked table,
 * its idle blocking pins go back to the worker's pool (connected ones,
 * while it has room) or close. */
void pin_blocking_done(struct worker *w, struct pinset *ps);
/* Why pin_get/pin_get_blocking refused: the error text for the client
 * (without '-'), naming the cap. */
const char *pin_refusal(const struct worker *w, const struct pinset *ps);
/*
 * Releasing: the connection is closed and freed at the end of the loop
 * turn (we may be inside one of its callbacks); from now on it drops
 * whatever it still receives unsolicited (its push hooks are gone), so
 * nothing reaches a client or feature state that is being reset.
 */
/* Release every pinned connection of a client, blocking ones too. */
void pin_release_all(struct worker *w, struct pinset *ps);
/* Release the state connections of one user. */
void pin_release_user(struct worker *w, struct pinset *ps, enum pin_user user);
/* Release one state connection (no-op when s is not in ps). */
void pin_release(struct worker *w, struct pinset *ps, struct server *s);
/* Free pinned servers released this turn (worker's flush). */
void pin_reap(struct worker *w);
/* Timeout sweep over every live pinned server. */
void pin_check_timeouts(struct worker *w, uint64_t now_ms);
/* Free everything (shutdown). */
void pin_free_all(struct worker *w);

#endif
