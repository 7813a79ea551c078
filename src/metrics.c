/* slotproxy - BSD-2-Clause
 *
 * The metrics table. A row: X(name, labels, kind, field, section, info,
 * help). The field's width comes from the struct, so a counter widened in
 * worker.h cannot be read at the wrong size.
 */
#include "build_config.h"

#include <stddef.h>
#include <string.h>

#include "keyslot.h"
#include "metrics.h"
#include "util.h"
#include "worker.h"

#define SP_METRICS(X) \
    X(connections, NULL, GAUGE, clients, NONE, NULL, \
      "Client connections currently open.") \
    X(connections_total, NULL, COUNTER, connections_total, STATS, \
      "total_connections_received", "Client connections accepted.") \
    X(connections_rejected_total, NULL, COUNTER, connections_rejected, STATS, \
      "rejected_connections", "Client connections refused by max_clients.") \
    X(commands_total, NULL, COUNTER, commands, STATS, \
      "total_commands_processed", "Requests received from clients.") \
    X(errors_total, NULL, COUNTER, errors, STATS, "total_error_replies", \
      "Error replies sent to clients (any cause).") \
    X(client_bytes_in_total, NULL, COUNTER, bytes_in, STATS, \
      "total_net_input_bytes", "Bytes read from clients.") \
    X(client_bytes_out_total, NULL, COUNTER, bytes_out, STATS, \
      "total_net_output_bytes", "Bytes written to clients.") \
    X(moved_total, NULL, COUNTER, moved, PROXY, "moved", \
      "MOVED redirections followed inside the proxy.") \
    X(ask_total, NULL, COUNTER, ask, PROXY, "ask", \
      "ASK redirections followed inside the proxy.") \
    X(tryagain_total, NULL, COUNTER, tryagain, PROXY, "tryagain", \
      "TRYAGAIN replies retried inside the proxy.") \
    X(auth_failures_total, NULL, COUNTER, auth_failures, PROXY, \
      "auth_failures", "Wrong AUTH or HELLO AUTH attempts by clients.") \
    X(request_timeouts_total, NULL, COUNTER, timeouts, PROXY, \
      "request_timeouts", \
      "Backend connections closed because a request timed out.") \
    X(topology_refreshes_total, NULL, COUNTER, refreshes, PROXY, \
      "topology_refreshes", "Slot maps fetched from the cluster.") \
    X(topology_refresh_microseconds_total, NULL, COUNTER, refresh_us, NONE, \
      NULL, \
      "Microseconds spent fetching slot maps (divide by " \
      "topology_refreshes_total for the mean duration).") \
    X(topology_refresh_failures_total, NULL, COUNTER, refresh_failures, \
      PROXY, "topology_refresh_failures", \
      "CLUSTER SLOTS attempts that failed.") \
    X(pinned_connections, NULL, GAUGE, pinned, PROXY, "pinned_connections", \
      "Backend connections pinned to one client (WATCH, blocking, " \
      "pub/sub).") \
    X(backend_nodes_down, NULL, GAUGE, nodes_down, NONE, NULL, \
      "Masters marked down by the circuit breaker, summed over workers.") \
    X(memory_reading_paused, NULL, GAUGE, mem_paused, NONE, NULL, \
      "Workers that stopped reading clients: the memory budget " \
      "(max_memory) is past its high-water mark.") \
    X(memory_held_bytes, NULL, GAUGE, mem_held, PROXY, "memory_held_bytes", \
      "Bytes held for clients (buffers, replies, queues), counted against " \
      "max_memory.") \
    X(disconnects_total, "reason=\"memory_budget\"", COUNTER, disc_memory, \
      PROXY, "disconnects_memory_budget", \
      "Clients closed by the proxy, by reason.") \
    X(disconnects_total, "reason=\"output_limit\"", COUNTER, disc_output, \
      PROXY, "disconnects_output_limit", \
      "Clients closed by the proxy, by reason.")

#define METRIC_ROW(name_, labels_, kind_, field_, sec_, info_, help_) \
    {#name_, \
     labels_, \
     METRIC_##kind_, \
     METRIC_SEC_##sec_, \
     sizeof(((struct worker_stats *)0)->field_), \
     offsetof(struct worker_stats, field_), \
     info_, \
     help_},

static const struct metric metric_rows[] = {SP_METRICS(METRIC_ROW)};

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

void
metrics_add(struct worker_stats *sum, const struct worker_stats *s)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(metric_rows); i++) {
        const struct metric *m = &metric_rows[i];
        char *d = (char *)sum + m->offset;
        if (m->size == sizeof(uint64_t))
            *(uint64_t *)d += metric_value(m, s);
        else
            *(uint32_t *)d += (uint32_t)metric_value(m, s);
    }
    for (int b = 0; b <= LAT_BUCKETS; b++)
        sum->lat_count[b] += s->lat_count[b];
    for (int k = 0; k < ERRK_COUNT; k++)
        sum->errors_by_kind[k] += s->errors_by_kind[k];
    sum->lat_sum_us += s->lat_sum_us;
}

void
metrics_collect(struct worker *const *workers, int n, struct metrics_view *v)
{
    struct worker_stats s;

    memset(v->sum, 0, sizeof(*v->sum));
    v->min_covered = SLOT_COUNT;
    v->masters = 0;
    for (int i = 0; i < n; i++) {
        worker_read_stats(workers[i], &s, v->calls);
        metrics_add(v->sum, &s);
        if (v->per_worker != NULL)
            v->per_worker[i] = s.clients;
        if (s.covered < v->min_covered)
            v->min_covered = s.covered;
        if (s.masters > v->masters)
            v->masters = s.masters;
    }
}
