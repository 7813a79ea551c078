/* slotproxy - BSD-2-Clause
 *
 * One view over all workers for the admin commands whose answer lives in
 * each worker's own state: SLOWLOG GET/LEN/RESET and CLIENT LIST. The
 * asking worker answers its own part and posts one part to every other
 * worker's mailbox; each answers in its own thread and wakes the asker,
 * which holds the client's request until all parts are in (or a timeout)
 * and merges them. Nothing here runs on the request path of data
 * commands, and no lock is taken anywhere.
 */
#ifndef SP_VIEW_H
#define SP_VIEW_H

#include <stdint.h>

struct worker;
struct request;
struct client;
struct buf;

enum view_kind {
    VIEW_SLOWLOG_GET,   /* entries, newest first by id */
    VIEW_SLOWLOG_LEN,   /* sum of the lengths */
    VIEW_SLOWLOG_RESET, /* every ring emptied; +OK */
    VIEW_CLIENT_LIST,   /* every client's line, by id */
};

/*
 * Answer r (a request of a client of w) with kind over every worker:
 * completed now when w is the only worker, else once every other worker
 * answered, or after a second with the parts that came (a worker that
 * stopped answers nothing; that is logged). count: SLOWLOG GET's entries
 * (-1: all).
 */
void view_start(struct worker *w, struct request *r, enum view_kind kind,
                long long count);
/* Answer the parts other workers posted to w, and finish w's views whose
 * parts are all in or whose time is up (at a wake byte and each tick). */
void view_serve(struct worker *w);
/* At shutdown (every worker thread stopped): drop w's waiting views and
 * the parts posted to it. */
void view_free_all(struct worker *w);
/* c's CLIENT LIST / CLIENT INFO line, newline-terminated. */
void view_client_line(struct buf *b, const struct client *c, uint64_t now_ms);

#endif
