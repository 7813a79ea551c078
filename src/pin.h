/* slotproxy - BSD-2-Clause
 *
 * Pinned connections: backend connections dedicated to one client, for
 * state a shared, multiplexed connection cannot carry (WATCH) and for
 * commands that would stall it (BLPOP, XREAD BLOCK ...). A client holds
 * at most one per node for state (WATCH, pub/sub), kept until it closes,
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

struct pinset {
    struct server **srv; /* pinned servers holding state (WATCH,
                          * pub/sub), one per node */
    uint32_t n;
    struct server **blk; /* pinned for a blocking command, given
                          * back once idle (pin_blocking_done) */
    uint32_t nblk;
    uint16_t cred; /* backend credential id of the
                    * client's user (backend.h) */
};

/* The client's pinned server for host:port with its credential
 * (ps->cred), opened if new; NULL when a cap is reached (pin_refusal
 * says which). */
struct server *
pin_get(struct worker *w, struct pinset *ps, const char *host, uint16_t port);
/* A pinned server to host:port for one blocking command, with the
 * client's credential: an idle one of that credential from the worker's
 * pool, or a new one; NULL when a cap is reached. The client's earlier
 * blocking pins that are idle are given back first. */
struct server *pin_get_blocking(struct worker *w, struct pinset *ps,
                                const char *host, uint16_t port);
/* The client's blocking command is over: its idle blocking pins go back
 * to the worker's pool (connected ones, while it has room) or close. */
void pin_blocking_done(struct worker *w, struct pinset *ps);
/* Why pin_get/pin_get_blocking refused: the error text for the client
 * (without '-'), naming the cap. */
const char *pin_refusal(const struct worker *w, const struct pinset *ps);
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
