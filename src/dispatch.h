/* slotproxy - BSD-2-Clause
 *
 * Command policy, above the client connection: see dispatch.c. The
 * worker driver hands dispatch_client_ops to every client it accepts.
 */
#ifndef SP_DISPATCH_H
#define SP_DISPATCH_H

struct worker;

/* The client connection's hooks into command policy and the features'
 * per-client lifecycle (client.h, struct client_ops). */
extern const struct client_ops dispatch_client_ops;

/* SIGHUP: check every client of w against the new users (a user removed
 * or a password changed: logged out; a lower role: a transaction or
 * subscriptions it may no longer hold closes the client). */
void dispatch_recheck_auth(struct worker *w);

#endif
