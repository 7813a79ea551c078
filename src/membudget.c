/* slotproxy - BSD-2-Clause
 *
 * The memory budget's arithmetic (see membudget.h): the shared total,
 * the high- and low-water marks, the workers' largest clients, and the
 * largest-first order of disconnection.
 */
#include "build_config.h"

#include <stdlib.h>

#include "membudget.h"

void
memacct_flush(struct memacct *a, struct membudget *b)
{
    int64_t d = a->held - a->published;
    if (d != 0) {
        __atomic_add_fetch(&b->total, d, __ATOMIC_RELAXED);
        a->published = a->held;
    }
}

int
membudget_below_low(const struct membudget *b, uint64_t limit)
{
    return limit == 0 || membudget_total(b) < membudget_low(limit);
}

void
membudget_set_top(struct membudget *b, int worker, uint64_t bytes)
{
    if (worker >= 0 && worker < MEMBUDGET_MAX_WORKERS)
        __atomic_store_n(&b->top[worker], bytes, __ATOMIC_RELAXED);
}

uint64_t
membudget_top_others(const struct membudget *b, int worker)
{
    uint64_t max = 0;
    for (int i = 0; i < MEMBUDGET_MAX_WORKERS; i++) {
        uint64_t t = __atomic_load_n(&b->top[i], __ATOMIC_RELAXED);
        if (i != worker && t > max)
            max = t;
    }
    return max;
}

static int
consumer_cmp(const void *a, const void *b)
{
    const struct mem_consumer *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

void
membudget_sort(struct mem_consumer *v, uint32_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), consumer_cmp);
}
