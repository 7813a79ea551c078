/* slotproxy - BSD-2-Clause
 *
 * Listening sockets (TCP over IPv4/IPv6, unix) and accept. Each accepted
 * socket becomes a client of the worker with the fewest connections,
 * unless max_clients is reached; the listeners live in worker 0.
 */
#ifndef SP_LISTENER_H
#define SP_LISTENER_H

struct worker;
struct sp_addr;
struct listener;

struct tls_ctx;
/* Open and start listening on a in w's loop (w: the accepting worker,
 * worker 0), and log the address; NULL with a message logged on error.
 * tls: serve TLS with this context (NULL: plain). */
struct listener *
listener_new(struct worker *w, const struct sp_addr *a, struct tls_ctx *tls);
void listener_free(struct listener *l);
/* Its address as configured ("host:port", "unix:/path"), and 1 if TLS. */
const char *listener_name(const struct listener *l);
int listener_is_tls(const struct listener *l);
const struct tls_ctx *listener_tls(const struct listener *l);
/* Stop accepting and close the socket now (drain); listener_free later. */
void listener_close(struct listener *l);
/* The worker's inbox of connections handed over by the accepting worker
 * (in w's loop; shared->workers must list every worker before any
 * accepts). -1 when no eventfd could be made. */
int listener_inbox_init(struct worker *w);
/* After every worker's loop stopped: close the connections still waiting
 * in w's inbox, uncount them, free it. */
void listener_inbox_free(struct worker *w);

#endif
