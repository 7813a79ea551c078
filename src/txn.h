/* slotproxy - BSD-2-Clause
 *
 * Transactions through the proxy: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 * Commands after MULTI are checked and queued in the proxy (replying
 * +QUEUED as Redis does); all their keys must hash to one slot, fixed by
 * the first key (or by WATCH). EXEC sends MULTI, the queued commands and
 * EXEC as one block on one connection to the slot's master, so the block
 * runs as one transaction even on a shared connection. WATCH needs the
 * connection to keep state, so a client that WATCHes gets a pinned
 * connection and its EXEC goes there.
 */
#ifndef SP_TXN_H
#define SP_TXN_H

struct client;
struct request;
struct command;
struct resp_req;

/* 1 when cmd must go through txn_dispatch (a transaction command, or
 * anything while the client is inside MULTI). */
int txn_intercepts(const struct client *c, const struct command *cmd);
void txn_dispatch(struct client *c, struct request *r,
                  const struct command *cmd, const struct resp_req *p,
                  const char *base);
/* A command was rejected while queuing (unknown, wrong arity ...): the
 * transaction is flagged and EXEC will answer EXECABORT. */
void txn_queue_error(struct client *c);
/* 1 while the client has a WATCH active / is between MULTI and EXEC. */
int txn_watching(const struct client *c);
int txn_in_multi(const struct client *c);
/* Outside WATCH and MULTI: close the connection a past WATCH left
 * pinned for reuse (a protocol switch must not reuse it). */
void txn_release_idle(struct client *c);
/* RESET: discard MULTI, forget the WATCH (its pinned connections are
 * released, which ends it on the server). No reply, no callback. */
void txn_reset(struct client *c);
/* Free a client's transaction state (client free, end of the turn). */
void txn_free(struct client *c);
/* Bring the charge for c's MULTI queue to what it holds now (after each
 * transaction command: queued, executed, discarded). */
void txn_mem_sync(struct client *c);

#endif
