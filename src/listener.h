/* slotproxy - BSD-2-Clause
 *
 * Listening sockets (TCP over IPv4/IPv6, unix) and accept. Each accepted
 * socket becomes a client of the worker, unless max_clients is reached.
 */
#ifndef SP_LISTENER_H
#define SP_LISTENER_H

struct worker;
struct sp_addr;
struct listener;

/* Open and start listening on a; NULL with a message logged on error.
 * announce: log the address (once per address, not per worker). */
struct tls_ctx;
/* tls: serve TLS with this context (NULL: plain). */
struct listener *listener_new(struct worker *w, const struct sp_addr *a,
                              int announce, struct tls_ctx *tls);
void listener_free(struct listener *l);
/* Its address as configured ("host:port", "unix:/path"), and 1 if TLS. */
const char *listener_name(const struct listener *l);
int listener_is_tls(const struct listener *l);
const struct tls_ctx *listener_tls(const struct listener *l);
/* Stop accepting and close the socket now (drain); listener_free later. */
void listener_close(struct listener *l);

#endif
