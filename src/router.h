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

#endif
