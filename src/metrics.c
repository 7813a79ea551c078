/* slotproxy - BSD-2-Clause
 *
 * The metrics table. A row: X(name, labels, kind, aggregation over
 * workers, field, section, info, help); disconnects by reason and pin
 * refusals by limit come from those lists themselves (worker.h,
 * SP_DISC_REASONS and SP_PIN_LIMITS). The field's width
 * comes from the struct, so a counter widened in worker.h cannot be read
 * at the wrong size. Also the /proc/self reader for process_* metrics.
 */
#include "build_config.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "keyslot.h"
#include "metrics.h"
#include "util.h"
#include "worker.h"

#define SP_METRICS(X) \
    X(client_connections, NULL, GAUGE, SUM, clients, NONE, NULL, \
      "Client connections currently open.") \
    X(client_connections_accepted_total, NULL, COUNTER, SUM, \
      connections_total, STATS, "total_connections_received", \
      "Client connections accepted.") \
    X(commands_total, NULL, COUNTER, SUM, commands, STATS, \
      "total_commands_processed", "Requests received from clients.") \
    X(errors_total, NULL, COUNTER, SUM, errors, STATS, "total_error_replies", \
      "Error replies sent to clients (any cause).") \
    X(client_received_bytes_total, NULL, COUNTER, SUM, bytes_in, STATS, \
      "total_net_input_bytes", "Bytes read from clients.") \
    X(client_sent_bytes_total, NULL, COUNTER, SUM, bytes_out, STATS, \
      "total_net_output_bytes", "Bytes written to clients.") \
    X(io_uring_workers, NULL, GAUGE, SUM, io_uring, NONE, NULL, \
      "Workers that batch socket I/O with io_uring (the rest use epoll).") \
    X(io_uring_enters_total, NULL, COUNTER, SUM, io_enters, PROXY, \
      "io_uring_enters", \
      "io_uring_enter system calls made for batched socket I/O.") \
    X(request_duration_seconds, NULL, HISTOGRAM, SUM, lat, NONE, NULL, \
      "Time from a request's arrival to its reply being ready.") \
    X(moved_total, NULL, COUNTER, SUM, moved, PROXY, "moved", \
      "MOVED redirections followed inside the proxy.") \
    X(ask_total, NULL, COUNTER, SUM, ask, PROXY, "ask", \
      "ASK redirections followed inside the proxy.") \
    X(tryagain_total, NULL, COUNTER, SUM, tryagain, PROXY, "tryagain", \
      "TRYAGAIN replies retried inside the proxy.") \
    X(auth_failures_total, NULL, COUNTER, SUM, auth_failures, PROXY, \
      "auth_failures", "Wrong AUTH or HELLO AUTH attempts by clients.") \
    X(request_timeouts_total, NULL, COUNTER, SUM, timeouts, PROXY, \
      "request_timeouts", \
      "Backend connections closed because a request timed out.") \
    X(topology_refreshes_total, NULL, COUNTER, SUM, refreshes, PROXY, \
      "topology_refreshes", "Slot maps fetched from the cluster.") \
    X(topology_refresh_duration_seconds, NULL, HISTOGRAM, SUM, refresh, NONE, \
      NULL, "Time taken by successful slot map fetches.") \
    X(topology_refresh_failures_total, NULL, COUNTER, SUM, refresh_failures, \
      PROXY, "topology_refresh_failures", \
      "CLUSTER SLOTS attempts that failed.") \
    X(slots_covered, NULL, GAUGE, MIN, covered, NONE, NULL, \
      "Slots with a master in the slot map (least over workers).") \
    X(cluster_masters, NULL, GAUGE, MAX, masters, NONE, NULL, \
      "Masters in the slot map.") \
    X(pinned_connections, NULL, GAUGE, SUM, pinned, PROXY, \
      "pinned_connections", \
      "Backend connections pinned to one client " \
      "(WATCH, blocking, pub/sub).") \
    X(backend_nodes_down, NULL, GAUGE, MAX, nodes_down, NONE, NULL, \
      "Masters marked down by the circuit breaker (most any worker " \
      "sees).") \
    X(memory_reading_paused, NULL, GAUGE, SUM, mem_paused, NONE, NULL, \
      "Workers that stopped reading clients: the memory budget " \
      "(max_memory) is past its high-water mark.") \
    X(memory_held_bytes, NULL, GAUGE, SUM, mem_held, PROXY, \
      "memory_held_bytes", \
      "Bytes held for clients (buffers, replies, " \
      "queues), counted against max_memory.") \
    X(expiry_jitter_total, NULL, COUNTER, SUM, ttl_jittered, PROXY, \
      "expiry_jittered", \
      "Requests whose relative TTL expiry_jitter lengthened.") \
    X(replica_polls_total, NULL, COUNTER, SUM, repl_polls, PROXY, \
      "replica_polls", \
      "INFO replication requests sent to masters (one per master per " \
      "cluster.replica_poll_interval).") \
    X(replica_poll_failures_total, NULL, COUNTER, SUM, repl_poll_failures, \
      PROXY, "replica_poll_failures", \
      "INFO replication polls answered with an error, not answered in " \
      "time, or not a master's.")

/* slotproxy_disconnects_total{reason}: one row per enum disc_reason.
 * max_clients keeps Redis's INFO name. */
#define DISC_HELP "Clients closed (or refused) by the proxy, by reason."
#define DISC_INFO(id_, label_) \
    (DISC_##id_ == DISC_MAX_CLIENTS ? "rejected_connections" \
                                    : "disconnects_" label_)
#define PIN_HELP \
    "Pinned connections refused, by the limit reached " \
    "(clients.max_pinned*)."
#define DISC_SECTION(id_) \
    (DISC_##id_ == DISC_MAX_CLIENTS ? METRIC_SEC_STATS : METRIC_SEC_PROXY)

#define METRIC_ROW(name_, labels_, kind_, agg_, field_, sec_, info_, help_) \
    {#name_, \
     labels_, \
     METRIC_##kind_, \
     METRIC_AGG_##agg_, \
     METRIC_SEC_##sec_, \
     sizeof(((struct worker_stats *)0)->field_), \
     offsetof(struct worker_stats, field_), \
     info_, \
     help_},
#define DISC_ROW(id_, label_, text_) \
    {"disconnects_total", \
     "reason=\"" label_ "\"", \
     METRIC_COUNTER, \
     METRIC_AGG_SUM, \
     DISC_SECTION(id_), \
     sizeof(uint64_t), \
     offsetof(struct worker_stats, disc) + DISC_##id_ * sizeof(uint64_t), \
     DISC_INFO(id_, label_), \
     DISC_HELP},

#define PIN_ROW(id_, label_) \
    {"pinned_refusals_total", \
     "limit=\"" label_ "\"", \
     METRIC_COUNTER, \
     METRIC_AGG_SUM, \
     METRIC_SEC_PROXY, \
     sizeof(uint64_t), \
     offsetof(struct worker_stats, pin_refused) + \
         PIN_LIMIT_##id_ * sizeof(uint64_t), \
     "pinned_refused_" label_, \
     PIN_HELP},

static const struct metric metric_rows[] = {
    SP_METRICS(METRIC_ROW) SP_PIN_LIMITS(PIN_ROW) SP_DISC_REASONS(DISC_ROW)};

const struct metric *
metrics_table(size_t *n)
{
    *n = SP_ARRAY_LEN(metric_rows);
    return metric_rows;
}

uint64_t
metric_value(const struct metric *m, const struct worker_stats *s)
{
    const char *p = (const char *)s + m->offset;
    if (m->size == sizeof(uint64_t))
        return *(const uint64_t *)p;
    return *(const uint32_t *)p;
}

const struct lat_hist *
metric_hist(const struct metric *m, const struct worker_stats *s)
{
    return (const struct lat_hist *)((const char *)s + m->offset);
}

static void
hist_add(struct lat_hist *acc, const struct lat_hist *h)
{
    for (int b = 0; b <= LAT_BUCKETS; b++)
        acc->count[b] += h->count[b];
    acc->sum_us += h->sum_us;
}

/* v folded into the accumulated value a by agg. */
static uint64_t
agg_fold(int agg, uint64_t a, uint64_t v)
{
    switch (agg) {
    case METRIC_AGG_MAX:
        return v > a ? v : a;
    case METRIC_AGG_MIN:
        return v < a ? v : a;
    default:
        return a + v;
    }
}

void
metrics_merge(struct worker_stats *acc, const struct worker_stats *s,
              int first)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(metric_rows); i++) {
        const struct metric *m = &metric_rows[i];
        char *d = (char *)acc + m->offset;
        if (m->kind == METRIC_HISTOGRAM) {
            hist_add((struct lat_hist *)d, metric_hist(m, s));
            continue;
        }
        uint64_t v = metric_value(m, s);
        if (!first)
            v = agg_fold(m->agg, metric_value(m, acc), v);
        if (m->size == sizeof(uint64_t))
            *(uint64_t *)d = v;
        else
            *(uint32_t *)d = (uint32_t)v;
    }
    for (int k = 0; k < ERRK_COUNT; k++)
        acc->errors_by_kind[k] += s->errors_by_kind[k];
}

void
metrics_collect(struct worker *const *workers, int n, struct metrics_view *v)
{
    struct worker_stats s;

    memset(v->sum, 0, sizeof(*v->sum));
    for (int i = 0; i < n; i++) {
        worker_read_stats(workers[i], &s, v->calls);
        metrics_merge(v->sum, &s, i == 0);
        if (v->per_worker != NULL)
            v->per_worker[i] = s.clients;
    }
}

int
metrics_stalled_worker(const uint64_t *tick_ms, int n, uint64_t now_ms,
                       uint64_t max_ms)
{
    for (int i = 0; i < n; i++)
        if (now_ms > tick_ms[i] && now_ms - tick_ms[i] > max_ms)
            return i;
    return -1;
}

int
metrics_parse_proc_stat(const char *stat, long ticks, long page,
                        uint64_t btime, struct proc_stats *out)
{
    /* The command name (field 2) is in parentheses and may hold spaces
     * and parentheses itself: the fields start after the last ')'. */
    const char *p = strrchr(stat, ')');
    unsigned long long utime, stime, start, vsize;
    long long rss;

    if (p == NULL || ticks <= 0 || page <= 0 ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
               "%llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) != 5)
        return -1;
    out->cpu_seconds = (double)(utime + stime) / (double)ticks;
    out->start_time = (double)btime + (double)start / (double)ticks;
    out->vsize_bytes = vsize;
    out->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    return 0;
}

/* The whole of a small /proc file into buf (NUL-terminated); 0 or -1. */
static int
read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* /proc/stat's btime: when the system booted (Unix seconds), or 0. */
static uint64_t
boot_time(void)
{
    char line[256];
    unsigned long long bt = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

int
metrics_read_process(struct proc_stats *out)
{
    char stat[1024];
    struct rlimit rl;

    memset(out, 0, sizeof(*out));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out->max_fds = (uint64_t)rl.rlim_cur;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        const struct dirent *e;
        while ((e = readdir(d)) != NULL)
            out->open_fds += e->d_name[0] != '.';
        closedir(d);
        out->open_fds--; /* the one opendir holds */
    }
    if (read_small("/proc/self/stat", stat, sizeof(stat)) != 0)
        return -1;
    return metrics_parse_proc_stat(stat, sysconf(_SC_CLK_TCK),
                                   sysconf(_SC_PAGESIZE), boot_time(), out);
}
