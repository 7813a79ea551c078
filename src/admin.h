/* slotproxy - BSD-2-Clause
 *
 * Commands the proxy answers itself (PING, ECHO, SELECT, HELLO, INFO,
 * CLIENT, COMMAND, CLUSTER KEYSLOT/INFO, ...), dispatched from a table.
 */
#ifndef SP_ADMIN_H
#define SP_ADMIN_H

#include <stdint.h>

struct client;
struct request;
struct command;
struct resp_arg;

/*
 * Execute a LOCAL-route command for client c. The reply is built into
 * r->rep and r is completed, or r is routed to a backend (COMMAND INFO and
 * DOCS are answered by a master). argv offsets are relative to base.
 */
void admin_exec(struct client *c, struct request *r,
                const struct command *cmd, uint32_t argc,
                const struct resp_arg *argv, const char *base);

/* The proxy's own PROXY command (not a Redis command, so not in the
 * table): 1 when argv[0] is PROXY and r was answered. */
int admin_proxy(struct client *c, struct request *r, uint32_t argc,
                const struct resp_arg *argv, const char *base);

#endif
