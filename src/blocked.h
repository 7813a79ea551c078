/* slotproxy - BSD-2-Clause
 *
 * The process-wide table of clients blocked in a blocking command (BLPOP,
 * XREAD BLOCK ...) on their pinned backend connection: for each, the node
 * and the backend's own client id of that connection, so that CLIENT
 * UNBLOCK sent on any worker can send CLIENT UNBLOCK <backend id> to that
 * node; and their number, for INFO's blocked_clients. Pure: no sockets,
 * no worker; one mutex, taken only when a blocking command starts or ends
 * and by CLIENT UNBLOCK, never on the path of other requests.
 */
#ifndef SP_BLOCKED_H
#define SP_BLOCKED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct blocked_entry {
    uint64_t client_id;             /* the proxy's CLIENT ID */
    uint64_t backend_id;            /* CLIENT ID of its pinned connection
                                     * on the node */
    uint16_t port;                  /* node port */
    char host[256];                 /* node endpoint */
};

struct blocked_table {
    pthread_mutex_t lock;           /* guards e, n and cap */
    struct blocked_entry *e;        /* entries, unordered (owned) */
    uint32_t n;                     /* entries in use */
    uint32_t cap;                   /* entries allocated */
    uint32_t count;                 /* n, readable without the lock
                                     * (atomic) */
};

void blocked_init(struct blocked_table *t);
void blocked_deinit(struct blocked_table *t);
/* Record client_id as blocked on host:port as backend client backend_id,
 * replacing an earlier record of client_id (a redirected command). */
void blocked_set(struct blocked_table *t, uint64_t client_id,
                 const char *host, uint16_t port, uint64_t backend_id);
/* Forget client_id; 1 when it was recorded. */
int blocked_remove(struct blocked_table *t, uint64_t client_id);
/* Copy client_id's record to *out; 1 when found, 0 when not blocked. */
int blocked_find(struct blocked_table *t, uint64_t client_id,
                 struct blocked_entry *out);
/* Number of blocked clients (any thread, no lock). */
uint32_t blocked_count(const struct blocked_table *t);

#endif
