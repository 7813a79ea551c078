/* slotproxy - BSD-2-Clause
 *
 * Pinned connections: backend connections dedicated to one client, for
 * state a shared, multiplexed connection cannot carry (WATCH) and for
 * commands that would stall it (BLPOP, XREAD BLOCK ...). A client holds a
 * small set of them, at most one per node and user (feature); they live
 * until their user releases them (RESET, leaving subscribed mode) or the
 * client closes. Closing a pinned connection ends whatever it was doing
 * on the server (a block, a WATCH, subscriptions).
 */
#ifndef SP_PIN_H
#define SP_PIN_H

#include <stdint.h>

struct worker;
struct server;

/* Who uses a pinned connection. A pin serves exactly one feature, which
 * alone keeps pointers to it and alone releases it: no feature can free
 * a connection another one still names (a WATCH on a connection that
 * RESET in subscribed mode released ...). */
enum pin_user {
    PIN_BLOCK = 0,                  /* blocking commands (BLPOP ...) */
    PIN_TXN,                        /* WATCH and the EXEC that follows */
    PIN_PUBSUB,                     /* push-mode pub/sub connections */
};

struct pin {
    struct server *srv;             /* the private server (owned) */
    uint8_t user;                   /* enum pin_user */
};

struct pinset {
    struct pin *v;                  /* this client's pinned servers */
    uint32_t n;
    uint16_t cred;                  /* backend credential id of the
                                     * client's user (backend.h) */
};

/* The client's pinned server for host:port used by user, with its
 * credential (ps->cred), opened if new; NULL when the worker's caps
 * (clients.max_pinned, max_pinned_per_node) are reached. */
struct server *pin_get(struct worker *w, struct pinset *ps, const char *host,
                       uint16_t port, enum pin_user user);
/*
 * Releasing: the connection is closed and freed at the end of the loop
 * turn (we may be inside one of its callbacks); from now on it drops
 * whatever it still receives unsolicited (its push hooks are gone), so
 * nothing reaches a client or feature state that is being reset.
 */
/* Release every pinned connection of a client. */
void pin_release_all(struct worker *w, struct pinset *ps);
/* Release the connections of one user. */
void pin_release_user(struct worker *w, struct pinset *ps,
                      enum pin_user user);
/* Release one connection (no-op when s is not in ps). */
void pin_release(struct worker *w, struct pinset *ps, struct server *s);
/* Free pinned servers released this turn (worker's flush). */
void pin_reap(struct worker *w);
/* Timeout sweep over every live pinned server. */
void pin_check_timeouts(struct worker *w, uint64_t now_ms);
/* Free everything (shutdown). */
void pin_free_all(struct worker *w);

#endif
