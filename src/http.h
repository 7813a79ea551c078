/* slotproxy - BSD-2-Clause
 *
 * The metrics and probe endpoint (a small HTTP/1.x server on the main
 * thread's event loop): /metrics in Prometheus text format, /healthz (the
 * process answers) and /readyz (a slot map is loaded and covers every
 * slot). One request per connection; head size, connection count and
 * connection lifetime are bounded, so no client can tie it up.
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <stddef.h>

struct event_base;
struct sp_addr;
struct worker;
struct http;

/* Limits of the endpoint: a scraper needs one small request at a time. */
#define HTTP_HEAD_MAX (8 * 1024)   /* request line and headers */
#define HTTP_MAX_CONNS 64          /* open connections */
#define HTTP_CONN_TIMEOUT_MS 10000 /* whole life of a connection */

/* What http_parse_head found in a request head. */
struct http_head {
    int is_get;       /* GET */
    int is_head;      /* HEAD */
    const char *path; /* target without its query string */
    size_t path_len;
};

/*
 * Parse the request head in buf[0, len): the request line and headers up
 * to the blank line. Returns the head's length (> 0) with *out set, 0
 * when the blank line has not arrived yet, -1 when the request line is
 * malformed (answer 400). Pure; out->path points into buf.
 */
long http_parse_head(const char *buf, size_t len, struct http_head *out);

/*
 * Escape a Prometheus text-format label value: backslash, double quote
 * and line feed become \\, \" and \n. Writes at most cap - 1 bytes and a
 * NUL (cap > 0); returns the length the whole escaped value needs, as
 * snprintf does.
 */
size_t http_label_escape(char *dst, size_t cap, const char *src);

/* Listen on addrs; NULL with the reason logged when one cannot be bound. */
struct http *http_new(struct event_base *base, const struct sp_addr *addrs,
                      size_t naddrs, struct worker **workers, int nworkers);
void http_free(struct http *h);

#endif
