/* slotproxy - BSD-2-Clause
 *
 * Pub/Sub through the proxy. SUBSCRIBE and PSUBSCRIBE use one pinned
 * connection to a master (a PUBLISH on any node reaches every node over
 * the cluster bus); SSUBSCRIBE uses one pinned connection per shard,
 * routed by the channel's slot. Those connections run in push mode: all
 * they send is forwarded to the client as it arrives, as one stream.
 */
#ifndef SP_PUBSUB_H
#define SP_PUBSUB_H

struct client;
struct request;
struct command;
struct resp_req;

/* 1 when cmd must go through pubsub_dispatch: a (un)subscribe command, or
 * anything while the client is in subscribed mode. */
int pubsub_intercepts(const struct client *c, const struct command *cmd);
void pubsub_dispatch(struct client *c, struct request *r,
                     const struct command *cmd, const struct resp_req *p,
                     const char *base);
/* RESET: leave subscribed mode, dropping every subscription (the push
 * connections are released). May complete a pending unsubscribe: check
 * c->closed afterwards. */
void pubsub_reset(struct client *c);
/* Free a client's pub/sub state (client free, end of the turn). */
void pubsub_free(struct client *c);
/* Every tick: re-subscribe what a lost connection carried. */
#include <stdint.h>
void pubsub_tick(struct client *c, uint64_t now_ms);

#endif
