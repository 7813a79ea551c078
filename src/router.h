/* slotproxy - BSD-2-Clause
 *
 * Routing: picks the node for a request from the worker's slot map and
 * follows MOVED / ASK / TRYAGAIN inside the proxy, within the request's
 * redirect budget, so that a plain client never sees a redirect.
 */
#ifndef SP_ROUTER_H
#define SP_ROUTER_H

struct worker;
struct request;

/* Send r to the master of r->slot (r->keyed) or to any master. r must
 * hold its RESP bytes; on_done is called when it completes (possibly
 * before this returns, e.g. for an uncovered slot). */
void router_dispatch(struct worker *w, struct request *r);

/* Send r to master number i (0 <= i < map->nmasters) of the current map. */
void router_dispatch_master(struct worker *w, struct request *r, uint32_t i);

/* Like router_dispatch, but the master is reached through r->target
 * (a client's pinned connection) rather than the shared connections. */
void router_send_via(struct worker *w, struct request *r);

/* The map's master node index for r (by slot, or any master when keyless),
 * or -1 with r failed (no map, slot not served). */
int router_node(struct worker *w, struct request *r);
/* The shared server of that master, or NULL with r failed. */
struct server;
struct server *router_server(struct worker *w, struct request *r);

/* Parse an error text (without '-' and CRLF) that is "MOVED <slot>
 * <host>:<port>" or "ASK ...": 0 with *ask, host (empty: the node that
 * answered) and port set, -1 when it is neither. */
#include <stddef.h>
#include <stdint.h>
int router_parse_redirect(const char *msg, size_t len, int *ask, char *host,
                          size_t hostlen, uint16_t *port);

#endif
