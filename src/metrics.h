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

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* How a row's values from several workers make the proxy's: a count of
 * things each worker has on its own adds up (SUM); a view every worker
 * has of the same cluster does not: the number of masters down is the
 * most any worker sees (MAX), the slots served the least (MIN). */
enum metric_agg { METRIC_AGG_SUM, METRIC_AGG_MAX, METRIC_AGG_MIN };

/* Where a metric also shows in INFO (its section), if anywhere. */
enum metric_section { METRIC_SEC_NONE, METRIC_SEC_STATS, METRIC_SEC_PROXY };

struct metric {
    const char *name;   /* Prometheus name without the
                                     * slotproxy_ prefix */
    const char *labels; /* label set without braces, or NULL;
                                     * rows of one name are adjacent */
    uint8_t kind;       /* enum metric_kind */
    uint8_t agg;        /* enum metric_agg: over workers */
    uint8_t section;    /* enum metric_section */
    uint8_t size;       /* the field's width: 4 or 8, or a
                                     * struct lat_hist (HISTOGRAM) */
    size_t offset;      /* into struct worker_stats */
    const char *info;   /* INFO field name (section != NONE) */
    const char *help;   /* HELP text */
};

/* The table, and its length in *n. */
const struct metric *metrics_table(size_t *n);

/* The value of m in s (counters and gauges). */
uint64_t metric_value(const struct metric *m, const struct worker_stats *s);

/* The histogram of a HISTOGRAM row m in s. */
const struct lat_hist *
metric_hist(const struct metric *m, const struct worker_stats *s);

/* Fold one worker's s into acc, each row by its aggregation (the first
 * worker's, first != 0, is copied); histograms and errors by kind add. */
void metrics_merge(struct worker_stats *acc, const struct worker_stats *s,
                   int first);

/* What every worker published, merged. */
struct metrics_view {
    struct worker_stats *sum; /* merged stats (caller's memory) */
    uint64_t *calls;          /* calls per command (cmdtable_index_limit()
                                     * entries, added to), or NULL */
    uint32_t *per_worker;     /* each worker's client connections (n
                                     * entries, written), or NULL */
};

/* Merge the published stats of workers[0, n) into v (any thread; takes
 * each worker's publish lock in turn, never two at once). */
void
metrics_collect(struct worker *const *workers, int n, struct metrics_view *v);

/* The first worker whose last tick (tick_ms[i], monotonic ms) is more
 * than max_ms before now_ms, or -1 when all are alive. Pure: /healthz's
 * decision. */
int metrics_stalled_worker(const uint64_t *tick_ms, int n, uint64_t now_ms,
                           uint64_t max_ms);

/* The process as the kernel sees it (/proc/self), for the standard
 * process_* metrics. */
struct proc_stats {
    uint64_t rss_bytes;   /* resident set */
    uint64_t vsize_bytes; /* virtual memory */
    double cpu_seconds;   /* user + system CPU time */
    double start_time;    /* Unix seconds the process started */
    uint64_t open_fds;    /* descriptors open */
    uint64_t max_fds;     /* RLIMIT_NOFILE soft limit */
};

/*
 * Parse the text of /proc/self/stat (stat) given the clock ticks per
 * second, the page size and the boot time (Unix seconds, /proc/stat's
 * btime) into rss_bytes, vsize_bytes, cpu_seconds and start_time. 0, or
 * -1 when the text is not a stat line. Pure.
 */
int metrics_parse_proc_stat(const char *stat, long ticks, long page,
                            uint64_t btime, struct proc_stats *out);

/* Read /proc/self into out (fields it cannot read stay 0); 0, or -1 when
 * /proc is not there. The main thread, at each scrape. */
int metrics_read_process(struct proc_stats *out);

#endif
