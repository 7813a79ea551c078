/* slotproxy - BSD-2-Clause
 *
 * Metrics are declared once, in the table below (name, type, help, where
 * the value comes from); /metrics is generated from it. Values come from
 * the copies the workers publish every 100 ms (worker_read_stats), summed
 * over workers: the request path never takes a lock for them.
 */
#include "build_config.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "command.h"
#include "config.h"
#include "http.h"
#include "keyslot.h"
#include "log.h"
#include "util.h"
#include "worker.h"

struct http {
    struct evhttp *eh;              /* libevent's HTTP server */
    struct worker **workers;        /* read through worker_read_stats */
    int nworkers;
};

enum metric_kind { M_COUNTER_U64, M_GAUGE_U32 };

struct metric {
    const char *name;               /* without the slotproxy_ prefix */
    int kind;                       /* enum metric_kind */
    size_t offset;                  /* into struct worker_stats */
    const char *help;
};

#define STAT(f) offsetof(struct worker_stats, f)

static const struct metric metrics[] = {
    {"connections", M_GAUGE_U32, STAT(clients),
     "Client connections currently open."},
    {"connections_total", M_COUNTER_U64, STAT(connections_total),
     "Client connections accepted."},
    {"connections_rejected_total", M_COUNTER_U64,
     STAT(connections_rejected), "Client connections refused by max_clients."},
    {"commands_total", M_COUNTER_U64, STAT(commands),
     "Requests received from clients."},
    {"errors_total", M_COUNTER_U64, STAT(errors),
     "Error replies sent to clients (any cause)."},
    {"client_bytes_in_total", M_COUNTER_U64, STAT(bytes_in),
     "Bytes read from clients."},
    {"client_bytes_out_total", M_COUNTER_U64, STAT(bytes_out),
     "Bytes written to clients."},
    {"moved_total", M_COUNTER_U64, STAT(moved),
     "MOVED redirections followed inside the proxy."},
    {"ask_total", M_COUNTER_U64, STAT(ask),
     "ASK redirections followed inside the proxy."},
    {"tryagain_total", M_COUNTER_U64, STAT(tryagain),
     "TRYAGAIN replies retried inside the proxy."},
    {"auth_failures_total", M_COUNTER_U64, STAT(auth_failures),
     "Wrong AUTH or HELLO AUTH attempts by clients."},
    {"request_timeouts_total", M_COUNTER_U64, STAT(timeouts),
     "Backend connections closed because a request timed out."},
    {"topology_refreshes_total", M_COUNTER_U64, STAT(refreshes),
     "Slot maps fetched from the cluster."},
    {"topology_refresh_microseconds_total", M_COUNTER_U64, STAT(refresh_us),
     "Microseconds spent fetching slot maps (divide by "
     "topology_refreshes_total for the mean duration)."},
    {"topology_refresh_failures_total", M_COUNTER_U64,
     STAT(refresh_failures), "CLUSTER SLOTS attempts that failed."},
    {"pinned_connections", M_GAUGE_U32, STAT(pinned),
     "Backend connections pinned to one client (WATCH, blocking, pub/sub)."},
    {"backend_nodes_down", M_GAUGE_U32, STAT(nodes_down),
     "Masters marked down by the circuit breaker, summed over workers."},
};

static void
add_stats(struct worker_stats *sum, const struct worker_stats *s)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(metrics); i++) {
        char *d = (char *)sum + metrics[i].offset;
        const char *v = (const char *)s + metrics[i].offset;
        if (metrics[i].kind == M_COUNTER_U64)
            *(uint64_t *)d += *(const uint64_t *)v;
        else
            *(uint32_t *)d += *(const uint32_t *)v;
    }
    for (int b = 0; b <= LAT_BUCKETS; b++)
        sum->lat_count[b] += s->lat_count[b];
    for (int k = 0; k < ERRK_COUNT; k++)
        sum->errors_by_kind[k] += s->errors_by_kind[k];
    sum->lat_sum_us += s->lat_sum_us;
}

/* Sum over workers; *min_covered: the least covered worker map. */
static void
collect(struct http *h, struct worker_stats *sum, uint64_t *calls,
        uint32_t *min_covered, uint32_t *masters)
{
    memset(sum, 0, sizeof(*sum));
    *min_covered = SLOT_COUNT;
    *masters = 0;
    for (int i = 0; i < h->nworkers; i++) {
        struct worker_stats s;
        worker_read_stats(h->workers[i], &s, calls);
        add_stats(sum, &s);
        if (s.covered < *min_covered)
            *min_covered = s.covered;
        if (s.masters > *masters)
            *masters = s.masters;
    }
}

static void
emit_metrics(struct evbuffer *out, const struct worker_stats *sum,
             const uint64_t *calls, uint32_t covered, uint32_t masters)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(metrics); i++) {
        const struct metric *m = &metrics[i];
        const char *v = (const char *)sum + m->offset;
        unsigned long long val = m->kind == M_COUNTER_U64
                                     ? *(const uint64_t *)v
                                     : *(const uint32_t *)v;
        evbuffer_add_printf(out, "# HELP slotproxy_%s %s\n# TYPE slotproxy_%s "
                            "%s\nslotproxy_%s %llu\n", m->name, m->help,
                            m->name, m->kind == M_COUNTER_U64 ? "counter"
                                                              : "gauge",
                            m->name, val);
    }
    evbuffer_add_printf(out, "# HELP slotproxy_slots_covered Slots with a "
                        "master in the slot map (least over workers).\n"
                        "# TYPE slotproxy_slots_covered gauge\n"
                        "slotproxy_slots_covered %u\n"
                        "# HELP slotproxy_cluster_masters Masters in the slot "
                        "map.\n# TYPE slotproxy_cluster_masters gauge\n"
                        "slotproxy_cluster_masters %u\n", covered, masters);
    evbuffer_add_printf(out, "# HELP slotproxy_request_duration_seconds Time "
                        "from a request's arrival to its reply being ready.\n"
                        "# TYPE slotproxy_request_duration_seconds "
                        "histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        cum += sum->lat_count[b];
        evbuffer_add_printf(out, "slotproxy_request_duration_seconds_bucket"
                            "{le=\"%g\"} %llu\n", lat_bucket_us[b] / 1e6,
                            (unsigned long long)cum);
    }
    cum += sum->lat_count[LAT_BUCKETS];
    evbuffer_add_printf(out, "slotproxy_request_duration_seconds_bucket"
                        "{le=\"+Inf\"} %llu\n"
                        "slotproxy_request_duration_seconds_sum %.6f\n"
                        "slotproxy_request_duration_seconds_count %llu\n",
                        (unsigned long long)cum, sum->lat_sum_us / 1e6,
                        (unsigned long long)cum);
    evbuffer_add_printf(out, "# HELP slotproxy_errors_by_kind_total Error "
                        "replies by their first word.\n# TYPE "
                        "slotproxy_errors_by_kind_total counter\n");
    for (int k = 0; k < ERRK_COUNT; k++)
        if (sum->errors_by_kind[k] > 0)
            evbuffer_add_printf(out, "slotproxy_errors_by_kind_total"
                                "{kind=\"%s\"} %llu\n", err_kind_names[k],
                                (unsigned long long)sum->errors_by_kind[k]);
    evbuffer_add_printf(out, "# HELP slotproxy_command_calls_total Requests "
                        "by command.\n# TYPE slotproxy_command_calls_total "
                        "counter\n");
    for (size_t i = 0; i < command_count(); i++)
        if (calls[i] > 0)
            evbuffer_add_printf(out, "slotproxy_command_calls_total"
                                "{command=\"%s\"} %llu\n",
                                command_at(i)->name,
                                (unsigned long long)calls[i]);
}

/* Per-node gauges (summed over workers by node name), per-master request
 * counts and load share. */
static void
emit_nodes(struct http *h, struct evbuffer *out)
{
    struct node_stat *all = sp_calloc(PUB_NODES, sizeof(*all));
    struct worker_stats *s = sp_malloc(sizeof(*s));
    uint64_t *calls = sp_calloc(command_count(), sizeof(*calls));
    uint32_t n = 0;
    uint64_t total = 0;

    for (int i = 0; i < h->nworkers; i++) {
        worker_read_stats(h->workers[i], s, calls);
        for (uint32_t k = 0; k < s->nnodes; k++) {
            uint32_t j = 0;
            while (j < n && strcmp(all[j].name, s->nodes[k].name) != 0)
                j++;
            if (j == n && n == PUB_NODES)
                continue;
            if (j == n)
                snprintf(all[n++].name, sizeof(all[0].name), "%s",
                         s->nodes[k].name);
            all[j].inflight += s->nodes[k].inflight;
            all[j].connected |= s->nodes[k].connected;
            all[j].master |= s->nodes[k].master;
            all[j].requests += s->nodes[k].requests;
            total += s->nodes[k].requests;
        }
    }
    evbuffer_add_printf(out, "# HELP slotproxy_backend_inflight Requests "
                        "queued or in flight per backend node.\n"
                        "# TYPE slotproxy_backend_inflight gauge\n");
    for (uint32_t j = 0; j < n; j++)
        evbuffer_add_printf(out, "slotproxy_backend_inflight{node=\"%s\"} "
                            "%u\n", all[j].name, all[j].inflight);
    evbuffer_add_printf(out, "# HELP slotproxy_backend_connected 1 when a "
                        "connection to the node is up.\n"
                        "# TYPE slotproxy_backend_connected gauge\n");
    for (uint32_t j = 0; j < n; j++)
        evbuffer_add_printf(out, "slotproxy_backend_connected{node=\"%s\"} "
                            "%u\n", all[j].name, all[j].connected);
    evbuffer_add_printf(out, "# HELP slotproxy_master_requests_total Keyed "
                        "requests routed to each master's slots.\n"
                        "# TYPE slotproxy_master_requests_total counter\n");
    for (uint32_t j = 0; j < n; j++)
        if (all[j].master)
            evbuffer_add_printf(out, "slotproxy_master_requests_total"
                                "{node=\"%s\"} %llu\n", all[j].name,
                                (unsigned long long)all[j].requests);
    evbuffer_add_printf(out, "# HELP slotproxy_master_load_share Share of "
                        "keyed requests per master since start (uneven "
                        "values call for a rebalance).\n"
                        "# TYPE slotproxy_master_load_share gauge\n");
    for (uint32_t j = 0; j < n; j++)
        if (all[j].master)
            evbuffer_add_printf(out, "slotproxy_master_load_share"
                                "{node=\"%s\"} %.4f\n", all[j].name,
                                total ? (double)all[j].requests /
                                            (double)total
                                      : 0.0);
    sp_free(calls);
    sp_free(s);
    sp_free(all);
}

/* Latency histograms by command (commands seen at least once). */
static void
emit_cmd_latency(struct http *h, struct evbuffer *out)
{
    size_t stride = LAT_BUCKETS + 2;
    uint64_t *lat = sp_calloc(command_count() * stride, sizeof(*lat));
    for (int i = 0; i < h->nworkers; i++)
        worker_read_cmd_lat(h->workers[i], lat);
    evbuffer_add_printf(out, "# HELP slotproxy_command_duration_seconds "
                        "Request latency by command.\n# TYPE "
                        "slotproxy_command_duration_seconds histogram\n");
    for (size_t c = 0; c < command_count(); c++) {
        const uint64_t *hc = &lat[c * stride];
        uint64_t cum = 0, total = 0;
        for (int b = 0; b <= LAT_BUCKETS; b++)
            total += hc[b];
        if (total == 0)
            continue;
        const char *name = command_at(c)->name;
        for (int b = 0; b < LAT_BUCKETS; b++) {
            cum += hc[b];
            evbuffer_add_printf(out, "slotproxy_command_duration_seconds_"
                                "bucket{command=\"%s\",le=\"%g\"} %llu\n",
                                name, lat_bucket_us[b] / 1e6,
                                (unsigned long long)cum);
        }
        evbuffer_add_printf(out, "slotproxy_command_duration_seconds_bucket"
                            "{command=\"%s\",le=\"+Inf\"} %llu\n"
                            "slotproxy_command_duration_seconds_sum"
                            "{command=\"%s\"} %.6f\n"
                            "slotproxy_command_duration_seconds_count"
                            "{command=\"%s\"} %llu\n", name,
                            (unsigned long long)total, name,
                            hc[LAT_BUCKETS + 1] / 1e6, name,
                            (unsigned long long)total);
    }
    sp_free(lat);
}

#define HOT_SLOTS 10

/* The busiest slots, for spotting hot keys before a rebalance. */
static void
emit_hot_slots(struct http *h, struct evbuffer *out)
{
    uint64_t *slots = sp_calloc(SLOT_COUNT, sizeof(*slots));
    for (int i = 0; i < h->nworkers; i++)
        worker_read_slots(h->workers[i], slots);
    evbuffer_add_printf(out, "# HELP slotproxy_slot_requests_total Keyed "
                        "requests per slot, for the %d busiest slots.\n"
                        "# TYPE slotproxy_slot_requests_total counter\n",
                        HOT_SLOTS);
    for (int k = 0; k < HOT_SLOTS; k++) {
        int best = -1;
        for (int s = 0; s < SLOT_COUNT; s++)
            if (slots[s] > 0 && (best < 0 || slots[s] > slots[best]))
                best = s;
        if (best < 0)
            break;
        evbuffer_add_printf(out, "slotproxy_slot_requests_total{slot=\"%d\"} "
                            "%llu\n", best, (unsigned long long)slots[best]);
        slots[best] = 0;
    }
    sp_free(slots);
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    struct worker_stats sum;
    uint32_t covered, masters;
    uint64_t *calls = sp_calloc(command_count(), sizeof(*calls));
    struct evbuffer *out = evbuffer_new();

    collect(h, &sum, calls, &covered, &masters);
    emit_metrics(out, &sum, calls, covered, masters);
    emit_nodes(h, out);
    emit_hot_slots(h, out);
    emit_cmd_latency(h, out);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
    sp_free(calls);
}

static void
on_healthz(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "ok\n");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

/* Ready: every worker has a slot map that covers every slot. */
static void
on_readyz(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    struct worker_stats sum;
    uint32_t covered, masters;
    uint64_t *calls = sp_calloc(command_count(), sizeof(*calls));
    struct evbuffer *out = evbuffer_new();

    collect(h, &sum, calls, &covered, &masters);
    int ready = covered == SLOT_COUNT && masters > 0;
    evbuffer_add_printf(out, "%s: %u/%d slots covered, %u masters\n",
                        ready ? "ready" : "not ready", covered, SLOT_COUNT,
                        masters);
    evhttp_send_reply(req, ready ? HTTP_OK : 503,
                      ready ? "OK" : "Service Unavailable", out);
    evbuffer_free(out);
    sp_free(calls);
}

struct http *
http_new(struct event_base *base, const struct sp_addr *addrs, size_t naddrs,
         struct worker **workers, int nworkers)
{
    struct http *h = sp_calloc(1, sizeof(*h));
    h->eh = evhttp_new(base);
    h->workers = workers;
    h->nworkers = nworkers;
    evhttp_set_allowed_methods(h->eh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(h->eh, "/metrics", on_metrics, h);
    evhttp_set_cb(h->eh, "/healthz", on_healthz, h);
    evhttp_set_cb(h->eh, "/readyz", on_readyz, h);
    for (size_t i = 0; i < naddrs; i++) {
        char name[300];
        config_addr_format(&addrs[i], name, sizeof(name));
        if (evhttp_bind_socket_with_handle(h->eh, addrs[i].host,
                                           addrs[i].port) == NULL) {
            log_error("cannot listen for metrics on %s", name);
            http_free(h);
            return NULL;
        }
        log_notice("metrics on http://%s/metrics", name);
    }
    return h;
}

void
http_free(struct http *h)
{
    if (h == NULL)
        return;
    evhttp_free(h->eh);
    sp_free(h);
}
