/* slotproxy - BSD-2-Clause
 *
 * Topology discovery: fetches CLUSTER SLOTS from a known node (nodes of
 * the current map first, then the configured seeds), builds a new slot map
 * snapshot and installs it in the worker. Refreshes are debounced (at most
 * one in flight; requests made meanwhile coalesce into one follow-up),
 * triggered by MOVED, backend errors and a periodic timer, and retried with
 * backoff while no node answers.
 */
#ifndef SP_TOPOLOGY_H
#define SP_TOPOLOGY_H

#include <stdint.h>

struct worker;

void topology_init(struct worker *w);
void topology_deinit(struct worker *w);
/* Ask for a refresh soon (debounced). */
void topology_request_refresh(struct worker *w);
/* A ticket for the next CLUSTER SLOTS attempt (the one sent after this
 * call); topology_ticket_done says when it is over: a map it fetched is
 * installed, or the round ended without an answer. Nothing is asked by
 * taking one: pair it with topology_request_refresh. */
uint64_t topology_refresh_ticket(const struct worker *w);
int topology_ticket_done(const struct worker *w, uint64_t ticket);

#endif
