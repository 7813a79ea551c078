/* slotproxy - BSD-2-Clause
 *
 * The proxy's slow log: requests whose reply took longer than
 * slowlog.threshold, with the command, the backend node and the duration;
 * answered by SLOWLOG GET/LEN/RESET on the RESP port. One ring per worker
 * (no lock), like the rest of the request path; the ids come from one
 * counter shared by every ring, so that the entries of all workers merge
 * into one proxy-wide order (view.c).
 */
#ifndef SP_SLOWLOG_H
#define SP_SLOWLOG_H

#include <stdint.h>

#include "util.h"

struct request;

struct slowlog_entry {
    uint64_t id;                    /* increasing, proxy-wide */
    int64_t unix_time;              /* when it was logged */
    uint64_t duration_us;
    struct buf args;                /* RESP array of the (cut) arguments */
    char client[64];                /* client address */
    char name[64];                  /* CLIENT SETNAME */
    char node[64];                  /* backend node, or "" when local */
};

struct slowlog {
    struct slowlog_entry *ring;     /* cap entries */
    uint32_t cap;
    uint32_t len;                   /* entries in use */
    uint32_t head;                  /* next slot to write */
    uint64_t *ids;                  /* id counter shared by every worker's
                                     * ring (atomic; owned by the caller) */
};

/* A ring of cap entries whose ids are taken from *ids. */
void slowlog_init(struct slowlog *sl, uint32_t cap, uint64_t *ids);
void slowlog_deinit(struct slowlog *sl);
/* Change the ring to cap entries (slowlog.max_len on reload), keeping the
 * newest min(len, cap) entries and their ids; 0 turns the log off. */
void slowlog_resize(struct slowlog *sl, uint32_t cap);
/* Record r (its request bytes are decoded, as Redis does, to at most 32
 * arguments of at most 128 bytes). */
void slowlog_add(struct slowlog *sl, const struct request *r,
                 uint64_t duration_us, const char *client, const char *name,
                 const char *node);
/* SLOWLOG GET [count] reply, newest first (count < 0: 10). */
void slowlog_reply(const struct slowlog *sl, struct buf *out,
                   long long count);
void slowlog_reset(struct slowlog *sl);
/* Copy the newest min(max, len) entries, newest first, into out (room
 * for that many); the copies own their args. Returns how many. */
uint32_t slowlog_copy(const struct slowlog *sl, uint32_t max,
                      struct slowlog_entry *out);
/* Free n copied entries (their args) and the array. */
void slowlog_entries_free(struct slowlog_entry *e, uint32_t n);
/* Append one entry as SLOWLOG GET shows it. */
void slowlog_entry_reply(struct buf *out, const struct slowlog_entry *e);

#endif
