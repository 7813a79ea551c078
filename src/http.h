/* slotproxy - BSD-2-Clause
 *
 * The metrics and probe endpoint (libevent's evhttp, on the main thread):
 * /metrics in Prometheus text format, /healthz (the process answers) and
 * /readyz (a slot map is loaded and covers every slot).
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <stddef.h>

struct event_base;
struct sp_addr;
struct worker;
struct http;

/* Listen on addrs; NULL with the reason logged when one cannot be bound. */
struct http *http_new(struct event_base *base, const struct sp_addr *addrs,
                      size_t naddrs, struct worker **workers, int nworkers);
void http_free(struct http *h);

#endif
