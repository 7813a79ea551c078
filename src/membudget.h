/* slotproxy - BSD-2-Clause
 *
 * The process-wide memory budget (max_memory): pure accounting, no I/O.
 * Each worker counts the bytes it holds for clients in its own memacct
 * (plain arithmetic, its thread only) and folds the change into the
 * shared total with one relaxed atomic add whenever it has moved by more
 * than MEMBUDGET_STEP: no lock and, on the common path, no atomic per
 * request. The total is therefore exact to within MEMBUDGET_STEP per
 * worker. Policy (pausing reads, disconnecting clients) is the caller's;
 * this module only answers where the total stands.
 */
#ifndef SP_MEMBUDGET_H
#define SP_MEMBUDGET_H

#include <stdint.h>

/* Granularity of a worker's updates to the shared total. */
#define MEMBUDGET_STEP (64 * 1024)
/* Workers that can publish their largest client (config's workers max). */
#define MEMBUDGET_MAX_WORKERS 1024

/* Where the total stands against the limit. */
enum membudget_level {
    MEM_OK = 0,                 /* below the high-water mark */
    MEM_HIGH,                   /* at or above the high-water mark */
    MEM_OVER,                   /* above the limit */
};

/* Process-wide (in struct shared). */
struct membudget {
    uint64_t top[MEMBUDGET_MAX_WORKERS]; /* per worker, under pressure: the
                                 * bytes its largest client holds (relaxed
                                 * atomics; 0 otherwise) */
    int64_t total;              /* bytes held over all workers, as
                                 * published (relaxed atomic) */
};

/* One worker's share (in struct worker; its thread only). */
struct memacct {
    int64_t held;               /* bytes this worker holds for clients */
    int64_t published;          /* part of held already in the total */
    int64_t peak;               /* most held at a publish since the owner
                                 * last reset it (to know when much was
                                 * freed, and hand memory back) */
};

/* High-water mark: reading pauses at 80% of the limit. */
static inline uint64_t
membudget_high(uint64_t limit)
{
    return limit - limit / 5;
}

/* Low-water mark: reading resumes below 60% of the limit. */
static inline uint64_t
membudget_low(uint64_t limit)
{
    return limit - limit / 5 * 2;
}

/* Add delta (may be negative) to a's held bytes; publish to b's total
 * once the unpublished part passes MEMBUDGET_STEP either way. */
static inline void
memacct_add(struct memacct *a, struct membudget *b, int64_t delta)
{
    a->held += delta;
    int64_t d = a->held - a->published;
    if (d > MEMBUDGET_STEP || d < -MEMBUDGET_STEP) {
        __atomic_add_fetch(&b->total, d, __ATOMIC_RELAXED);
        a->published = a->held;
        if (a->held > a->peak)
            a->peak = a->held;
    }
}

/* Publish whatever is left (tick, and before a worker exits). */
void memacct_flush(struct memacct *a, struct membudget *b);

/* The shared total (never negative). */
static inline uint64_t
membudget_total(const struct membudget *b)
{
    int64_t t = __atomic_load_n(&b->total, __ATOMIC_RELAXED);
    return t > 0 ? (uint64_t)t : 0;
}

/* MEM_OK, MEM_HIGH or MEM_OVER for the current total against limit
 * (max_memory; 0 = no budget: always MEM_OK). One relaxed load: cheap
 * enough for every read. */
static inline enum membudget_level
membudget_level(const struct membudget *b, uint64_t limit)
{
    if (limit == 0)
        return MEM_OK;
    uint64_t t = membudget_total(b);
    if (t > limit)
        return MEM_OVER;
    return t >= membudget_high(limit) ? MEM_HIGH : MEM_OK;
}

/* 1 when the total is below limit's low-water mark (reading may
 * resume), or there is no limit. */
int membudget_below_low(const struct membudget *b, uint64_t limit);

/* Publish the bytes worker's largest client holds (0: none, or no
 * pressure), so that the workers close the largest clients of the whole
 * process first, not each its own. */
void membudget_set_top(struct membudget *b, int worker, uint64_t bytes);

/* The largest client of any other worker, as last published. */
uint64_t membudget_top_others(const struct membudget *b, int worker);

/* A candidate for disconnection: what it holds, and who it is. */
struct mem_consumer {
    uint64_t bytes;             /* bytes it holds */
    void *owner;                /* the caller's object (a client) */
};

/* Sort v largest first: the order in which consumers are disconnected. */
void membudget_sort(struct mem_consumer *v, uint32_t n);

#endif
