/* slotproxy - BSD-2-Clause
 *
 * The table of blocked clients (see blocked.h). A flat array searched
 * linearly: a lookup compares 64-bit ids only, so even thousands of
 * blocked clients (a pool of queue consumers) cost microseconds, and only
 * when a blocking command starts or ends.
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "blocked.h"

void
blocked_init(struct blocked_table *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
}

void
blocked_deinit(struct blocked_table *t)
{
    sp_free(t->e);
    t->e = NULL;
    t->n = t->cap = 0;
    pthread_mutex_destroy(&t->lock);
}

/* Index of client_id in t, or -1; the caller holds the lock. */
static long
blocked_index(const struct blocked_table *t, uint64_t client_id)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->e[i].client_id == client_id)
            return (long)i;
    return -1;
}

void
blocked_set(struct blocked_table *t, uint64_t client_id, const char *host,
            uint16_t port, uint64_t backend_id)
{
    pthread_mutex_lock(&t->lock);
    long i = blocked_index(t, client_id);
    if (i < 0) {
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 16;
            t->e = sp_realloc(t->e, t->cap * sizeof(*t->e));
        }
        i = (long)t->n++;
        __atomic_store_n(&t->count, t->n, __ATOMIC_RELAXED);
    }
    struct blocked_entry *e = &t->e[i];
    e->client_id = client_id;
    e->backend_id = backend_id;
    e->port = port;
    snprintf(e->host, sizeof(e->host), "%s", host);
    pthread_mutex_unlock(&t->lock);
}

int
blocked_remove(struct blocked_table *t, uint64_t client_id)
{
    pthread_mutex_lock(&t->lock);
    long i = blocked_index(t, client_id);
    if (i >= 0) {
        t->e[i] = t->e[--t->n];
        __atomic_store_n(&t->count, t->n, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&t->lock);
    return i >= 0;
}

int
blocked_find(struct blocked_table *t, uint64_t client_id,
             struct blocked_entry *out)
{
    pthread_mutex_lock(&t->lock);
    long i = blocked_index(t, client_id);
    if (i >= 0)
        *out = t->e[i];
    pthread_mutex_unlock(&t->lock);
    return i >= 0;
}

uint32_t
blocked_count(const struct blocked_table *t)
{
    return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}
