/* slotproxy - BSD-2-Clause
 *
 * Pinned connections: backend connections dedicated to one client, for
 * state a shared, multiplexed connection cannot carry (WATCH) and for
 * commands that would stall it (BLPOP, XREAD BLOCK ...). A client holds a
 * small set of them, at most one per node; they live until the client
 * closes. Closing a pinned connection ends whatever it was doing on the
 * server (a block, a WATCH).
 */
#ifndef SP_PIN_H
#define SP_PIN_H

#include <stdint.h>

struct worker;
struct server;

struct pinset {
    struct server **srv;            /* this client's pinned servers */
    uint32_t n;
    uint16_t cred;                  /* backend credential id of the
                                     * client's user (backend.h) */
};

/* The client's pinned server for host:port with its credential
 * (ps->cred), opened if new; NULL when the worker's cap
 * (clients.max_pinned) is reached. */
struct server *pin_get(struct worker *w, struct pinset *ps, const char *host,
                       uint16_t port);
/* Close all of a client's pinned connections (freed at the end of the
 * loop turn: we may be inside one of their callbacks). */
void pin_release_all(struct worker *w, struct pinset *ps);
/* Close one pinned connection (freed at the end of the turn). */
void pin_release(struct worker *w, struct pinset *ps, struct server *s);
/* Free pinned servers released this turn (worker's flush). */
void pin_reap(struct worker *w);
/* Timeout sweep over every live pinned server. */
void pin_check_timeouts(struct worker *w, uint64_t now_ms);
/* Free everything (shutdown). */
void pin_free_all(struct worker *w);

#endif
