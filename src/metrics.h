/* slotproxy - BSD-2-Clause
 *
 * The proxy's counters and gauges, declared once (metrics.c, one X-macro
 * row each: name, type, the struct worker_stats field, its INFO field and
 * section, help text). /metrics (http.c), INFO and PROXY STATS (admin.c)
 * all print from this table, and all of them sum the copies the workers
 * publish every 100 ms: every view counts every worker, and the request
 * path never takes a lock for them.
 */
#ifndef SP_METRICS_H
#define SP_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct worker_stats;

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE };

/* Where a metric also shows in INFO (its section), if anywhere. */
enum metric_section { METRIC_SEC_NONE, METRIC_SEC_STATS, METRIC_SEC_PROXY };

struct metric {
    const char *name;   /* Prometheus name without the
                                     * slotproxy_ prefix */
    const char *labels; /* label set without braces, or NULL;
                                     * rows of one name are adjacent */
    uint8_t kind;       /* enum metric_kind */
    uint8_t section;    /* enum metric_section */
    uint8_t size;       /* 4 or 8: the field's width */
    size_t offset;      /* into struct worker_stats */
    const char *info;   /* INFO field name (section != NONE) */
    const char *help;   /* HELP text */
};

/* The table, and its length in *n. */
const struct metric *metrics_table(size_t *n);

/* The value of m in s. */
uint64_t metric_value(const struct metric *m, const struct worker_stats *s);

/* Add s to sum: every row of the table, the latency histogram and the
 * errors by kind (gauges add too: a sum over workers). */
void metrics_add(struct worker_stats *sum, const struct worker_stats *s);

/* What every worker published, summed. */
struct metrics_view {
    struct worker_stats *sum; /* summed stats (caller's memory) */
    uint64_t *calls;          /* calls per command (cmdtable_index_limit()
                                     * entries, added to), or NULL */
    uint32_t min_covered;     /* the least covered worker map */
    uint32_t masters;         /* most masters a worker's map has */
    uint32_t *per_worker;     /* each worker's client connections (n
                                     * entries, written), or NULL */
};

/* Sum the published stats of workers[0, n) into v (any thread; takes
 * each worker's publish lock in turn, never two at once). */
void
metrics_collect(struct worker *const *workers, int n, struct metrics_view *v);

#endif
