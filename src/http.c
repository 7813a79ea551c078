/* slotproxy - BSD-2-Clause
 *
 * /metrics prints the metrics table (metrics.c: name, type, help, where
 * the value comes from) and the labelled families (latency histograms,
 * per node, per command, per slot). Values come from the copies the
 * workers publish every 100 ms (worker_read_stats), summed over workers:
 * the request path never takes a lock for them.
 */
#include "build_config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "buildinfo.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "hotkeys.h"
#include "http.h"
#include "keyslot.h"
#include "log.h"
#include "metrics.h"
#include "replstat.h"
#include "util.h"
#include "worker.h"

/* After accept() fails for want of descriptors (EMFILE ...), accepting
 * pauses this long instead of failing again at once, in a loop. */
#define HTTP_ACCEPT_BACKOFF_MS 100

struct http_conn;

struct http {
    struct event_base *base;        /* the main thread's loop */
    struct worker **workers;        /* read through worker_read_stats */
    int nworkers;
    struct evconnlistener **ls;     /* one per address */
    size_t nls;
    struct event *resume;           /* re-enables accepting after a pause */
    uint64_t accept_log_ms;         /* last accept error logged */
    TAILQ_HEAD(, http_conn) conns;  /* open connections, oldest first */
    uint32_t nconns;
};

/* One connection: read a request head, write one response, close. */
struct http_conn {
    TAILQ_ENTRY(http_conn) next;    /* h->conns */
    struct http *h;
    int fd;
    struct event *ev;               /* read, then write readiness; and the
                                     * connection's deadline */
    uint64_t deadline_ms;           /* closed at this time, whatever state */
    struct evbuffer *out;           /* response being written; NULL while
                                     * the head is still being read */
    size_t len;                     /* bytes of head read */
    char head[HTTP_HEAD_MAX];       /* the request head */
};

/* Longest label value once escaped (node names are at most 299 bytes,
 * "host:port", as struct server holds them). */
#define LABEL_MAX (2 * 300 + 1)

/* A worker whose last tick is older than this is stalled (/healthz): the
 * tick runs every 100 ms, so this is twenty missed in a row. */
#define HEALTHZ_STALL_MS 2000

/* s as a label value, escaped into buf (LABEL_MAX bytes). */
static const char *
label(char *buf, const char *s)
{
    http_label_escape(buf, LABEL_MAX, s);
    return buf;
}

/* The samples of histogram name (with the slotproxy_ prefix) for h;
 * labels: "k=\"v\"," to put before le, or "". */
static void
emit_hist(struct evbuffer *out, const char *name, const char *labels,
          const struct lat_hist *h)
{
    uint64_t cum = 0;
    size_t ll = strlen(labels);
    for (int b = 0; b < LAT_BUCKETS; b++) {
        cum += h->count[b];
        evbuffer_add_printf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name,
                            labels, lat_bucket_us[b] / 1e6,
                            (unsigned long long)cum);
    }
    cum += h->count[LAT_BUCKETS];
    /* _sum and _count take the labels without the trailing comma. */
    evbuffer_add_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n"
                        "%s_sum%s%.*s%s %.6f\n%s_count%s%.*s%s %llu\n",
                        name, labels, (unsigned long long)cum, name,
                        ll ? "{" : "", (int)(ll ? ll - 1 : 0), labels,
                        ll ? "}" : "", h->sum_us / 1e6, name,
                        ll ? "{" : "", (int)(ll ? ll - 1 : 0), labels,
                        ll ? "}" : "", (unsigned long long)cum);
}

static const char *
kind_name(int kind)
{
    return kind == METRIC_COUNTER ? "counter"
           : kind == METRIC_GAUGE ? "gauge"
                                  : "histogram";
}

/* The table's rows (metrics.c), HELP and TYPE once per name. */
static void
emit_table(struct evbuffer *out, const struct worker_stats *sum)
{
    size_t n;
    const struct metric *t = metrics_table(&n);
    char name[128];
    for (size_t i = 0; i < n; i++) {
        const struct metric *m = &t[i];
        snprintf(name, sizeof(name), "slotproxy_%s", m->name);
        if (i == 0 || strcmp(t[i - 1].name, m->name) != 0)
            evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name,
                                m->help, name, kind_name(m->kind));
        if (m->kind == METRIC_HISTOGRAM) {
            emit_hist(out, name, "", metric_hist(m, sum));
            continue;
        }
        evbuffer_add_printf(out, "%s%s%s%s %llu\n", name,
                            m->labels ? "{" : "", m->labels ? m->labels : "",
                            m->labels ? "}" : "",
                            (unsigned long long)metric_value(m, sum));
    }
}

/* Client connections per worker: the acceptor hands each new one to the
 * worker with the fewest (listener.c), so they differ by one at most
 * unless connections closed unevenly since. */
static void
emit_workers(struct evbuffer *out, const uint32_t *per_worker, int nworkers)
{
    evbuffer_add_printf(out, "# HELP slotproxy_worker_connections Client "
                        "connections open per worker thread.\n# TYPE "
                        "slotproxy_worker_connections gauge\n");
    for (int i = 0; i < nworkers; i++)
        evbuffer_add_printf(out, "slotproxy_worker_connections{worker=\"%d\"}"
                            " %u\n", i, per_worker[i]);
}

/* Configuration reloads (counted by the main thread, which serves this
 * endpoint, so read without a lock). */
static void
emit_reloads(struct evbuffer *out, const struct shared *sh)
{
    evbuffer_add_printf(out, "# HELP slotproxy_config_reloads_total "
                        "Configuration reloads (SIGHUP), by result.\n"
                        "# TYPE slotproxy_config_reloads_total counter\n"
                        "slotproxy_config_reloads_total{result=\"ok\"} "
                        "%llu\n"
                        "slotproxy_config_reloads_total{result=\"invalid\"}"
                        " %llu\n"
                        "# HELP slotproxy_config_last_reload_success_"
                        "timestamp_seconds When the configuration in force "
                        "was loaded (start-up or the last applied reload).\n"
                        "# TYPE slotproxy_config_last_reload_success_"
                        "timestamp_seconds gauge\n"
                        "slotproxy_config_last_reload_success_timestamp_"
                        "seconds %lld\n",
                        (unsigned long long)sh->reloads_ok,
                        (unsigned long long)sh->reloads_invalid,
                        (long long)sh->last_reload_success_unix);
}

/* The label of per-command index i: the latest table names every index
 * registered so far (indexes are never reused). */
static const char *
cmd_label(char *buf, const struct cmdsnap *names, size_t i)
{
    const char *n = cmdsnap_index_name(names, i);
    return label(buf, n != NULL ? n : "other");
}

/* What this binary is, as the usual constant-1 info metric. */
static void
emit_build_info(struct evbuffer *out)
{
    char v[LABEL_MAX], c[LABEL_MAX];
    evbuffer_add_printf(out, "# HELP slotproxy_build_info The version, git "
                        "commit and build options of this binary.\n"
                        "# TYPE slotproxy_build_info gauge\n"
                        "slotproxy_build_info{version=\"%s\",commit=\"%s\","
                        "tls=\"%s\",allocator=\"%s\"} 1\n",
                        label(v, buildinfo_version()),
                        label(c, buildinfo_commit()), buildinfo_tls(),
                        buildinfo_allocator());
}

/* The standard process_* metrics, read from /proc/self now. */
static void
emit_process(struct evbuffer *out)
{
    struct proc_stats p;
    if (metrics_read_process(&p) != 0)
        return;
    evbuffer_add_printf(out,
                        "# HELP process_cpu_seconds_total User and system CPU "
                        "time spent, in seconds.\n"
                        "# TYPE process_cpu_seconds_total counter\n"
                        "process_cpu_seconds_total %.2f\n"
                        "# HELP process_resident_memory_bytes Resident memory "
                        "size in bytes.\n"
                        "# TYPE process_resident_memory_bytes gauge\n"
                        "process_resident_memory_bytes %llu\n"
                        "# HELP process_virtual_memory_bytes Virtual memory "
                        "size in bytes.\n"
                        "# TYPE process_virtual_memory_bytes gauge\n"
                        "process_virtual_memory_bytes %llu\n"
                        "# HELP process_open_fds Open file descriptors.\n"
                        "# TYPE process_open_fds gauge\n"
                        "process_open_fds %llu\n"
                        "# HELP process_max_fds Most open file descriptors "
                        "allowed (RLIMIT_NOFILE).\n"
                        "# TYPE process_max_fds gauge\n"
                        "process_max_fds %llu\n"
                        "# HELP process_start_time_seconds Start time of the "
                        "process since the Unix epoch, in seconds.\n"
                        "# TYPE process_start_time_seconds gauge\n"
                        "process_start_time_seconds %.2f\n",
                        p.cpu_seconds, (unsigned long long)p.rss_bytes,
                        (unsigned long long)p.vsize_bytes,
                        (unsigned long long)p.open_fds,
                        (unsigned long long)p.max_fds, p.start_time);
}

static void
emit_metrics(struct evbuffer *out, const struct worker_stats *sum,
             const uint64_t *calls, const struct cmdsnap *names)
{
    emit_table(out, sum);
    /* Every kind, zeros included: a series that appears only at its
     * first error makes rate() and alerts miss that error. */
    evbuffer_add_printf(out, "# HELP slotproxy_errors_by_kind_total Error "
                        "replies by their first word.\n# TYPE "
                        "slotproxy_errors_by_kind_total counter\n");
    for (int k = 0; k < ERRK_COUNT; k++)
        evbuffer_add_printf(out, "slotproxy_errors_by_kind_total"
                            "{kind=\"%s\"} %llu\n", err_kind_names[k],
                            (unsigned long long)sum->errors_by_kind[k]);
    evbuffer_add_printf(out, "# HELP slotproxy_command_calls_total Requests "
                        "by command.\n# TYPE slotproxy_command_calls_total "
                        "counter\n");
    char lb[LABEL_MAX];
    for (size_t i = 0; i < cmdtable_index_limit(); i++)
        if (calls[i] > 0)
            evbuffer_add_printf(out, "slotproxy_command_calls_total"
                                "{command=\"%s\"} %llu\n",
                                cmd_label(lb, names, i),
                                (unsigned long long)calls[i]);
}

/* Every worker's node tables merged by node name. */
struct node_merge {
    struct node_stat *v;            /* merged entries (names borrowed
                                     * from the workers' tables) */
    uint32_t n;
    uint32_t cap;
};

/* Fold one worker's entry in: counters and load add up; connected is
 * the least over the workers that have a server for the node (one
 * worker cut off is a node not fully reachable), master the most. */
static void
node_merge_one(void *arg, const struct node_stat *ns)
{
    struct node_merge *m = arg;
    uint32_t j = 0;
    while (j < m->n && strcmp(m->v[j].name, ns->name) != 0)
        j++;
    if (j == m->n) {
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 16;
            m->v = sp_realloc(m->v, m->cap * sizeof(*m->v));
        }
        m->v[m->n++] = *ns;
        return;
    }
    struct node_stat *d = &m->v[j];
    d->requests += ns->requests;
    d->failed += ns->failed;
    d->conn_errors += ns->conn_errors;
    d->inflight += ns->inflight;
    d->master |= ns->master;
    if (ns->live)
        d->connected = d->live ? (d->connected & ns->connected)
                               : ns->connected;
    d->live |= ns->live;
}

/* One per-node family: HELP, TYPE and a sample per node that pick(n)
 * keeps, valued by val(n). */
static void
emit_node_family(struct evbuffer *out, const struct node_merge *m,
                 const char *name, const char *type, const char *help,
                 int (*pick)(const struct node_stat *),
                 double (*val)(const struct node_stat *, const void *),
                 const void *ctx)
{
    char lb[LABEL_MAX];
    evbuffer_add_printf(out, "# HELP slotproxy_%s %s\n# TYPE slotproxy_%s "
                        "%s\n", name, help, name, type);
    for (uint32_t j = 0; j < m->n; j++)
        if (pick(&m->v[j]))
            evbuffer_add_printf(out, "slotproxy_%s{node=\"%s\"} %.17g\n",
                                name, label(lb, m->v[j].name),
                                val(&m->v[j], ctx));
}

static int pick_live(const struct node_stat *n) { return n->live; }
static int pick_any(const struct node_stat *n) { return n != NULL; }
/* Masters, and every node that ever got a request: a counter once shown
 * stays, whatever the node's role becomes. */
static int
pick_served(const struct node_stat *n)
{
    return n->master || n->requests > 0;
}
static int pick_master(const struct node_stat *n) { return n->master; }
static double
val_inflight(const struct node_stat *n, const void *c)
{
    (void)c;
    return n->inflight;
}
static double
val_connected(const struct node_stat *n, const void *c)
{
    (void)c;
    return n->connected;
}
static double
val_requests(const struct node_stat *n, const void *c)
{
    (void)c;
    return (double)n->requests;
}
static double
val_failed(const struct node_stat *n, const void *c)
{
    (void)c;
    return (double)n->failed;
}
static double
val_conn_errors(const struct node_stat *n, const void *c)
{
    (void)c;
    return (double)n->conn_errors;
}
static double
val_share(const struct node_stat *n, const void *c)
{
    uint64_t total = *(const uint64_t *)c;
    return total ? (double)n->requests / (double)total : 0.0;
}

/* Per-node gauges and counters, merged over workers by full node name. */
static void
emit_nodes(struct http *h, struct evbuffer *out)
{
    struct node_merge m = {0};
    uint64_t total = 0;

    for (int i = 0; i < h->nworkers; i++)
        worker_read_nodes(h->workers[i], node_merge_one, &m);
    for (uint32_t j = 0; j < m.n; j++)
        if (m.v[j].master)
            total += m.v[j].requests;
    emit_node_family(out, &m, "backend_inflight", "gauge", "Requests "
                     "queued or in flight per backend node.", pick_live,
                     val_inflight, NULL);
    emit_node_family(out, &m, "backend_connected", "gauge", "1 when every "
                     "worker's connection to the node is up (least over "
                     "workers).", pick_live, val_connected, NULL);
    emit_node_family(out, &m, "master_requests_total", "counter", "Requests "
                     "sent to each node (masters, and replicas read from), "
                     "counted as they are sent.", pick_served, val_requests,
                     NULL);
    emit_node_family(out, &m, "backend_failed_requests_total", "counter",
                     "Requests failed by the proxy on a node's account: "
                     "connection refused or lost, timed out, node down.",
                     pick_any, val_failed, NULL);
    emit_node_family(out, &m, "backend_errors_total", "counter",
                     "Backend connections lost or not made, per node "
                     "(refused, timed out, dropped, malformed replies).",
                     pick_any, val_conn_errors, NULL);
    emit_node_family(out, &m, "master_load_share", "gauge", "Share of the "
                     "requests sent to masters since start, per master "
                     "(uneven values call for a rebalance).", pick_master,
                     val_share, &total);
    sp_free(m.v);
}

/* "host:port" of a node into buf (IPv6 addresses in brackets). */
static const char *
node_name(char *buf, size_t cap, const char *host, uint16_t port)
{
    snprintf(buf, cap, strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host,
             port);
    return buf;
}

/* One line of family name for replica r of master ms. */
static void
emit_replica(struct evbuffer *out, const char *name, const char *master,
             const struct replstat_replica *r, uint64_t v)
{
    char raw[300], esc[LABEL_MAX];
    evbuffer_add_printf(out, "slotproxy_%s{master=\"%s\",replica=\"%s\"} "
                        "%llu\n", name, master,
                        label(esc, node_name(raw, sizeof(raw), r->ip, r->port)),
                        (unsigned long long)v);
}

/*
 * Replica sync status from worker 0's replication poll: per master, the
 * last poll's outcome and, once it has answered, its healthy replicas;
 * per replica its link and its lag in bytes (a replica the master stopped
 * listing keeps link 0 and the lag from the offset it last acknowledged).
 */
static void
emit_replicas(struct http *h, struct evbuffer *out)
{
    struct replstat *s = shared_replstat(h->workers[0]->shared);
    static const char *const head[][3] = {
        {"replica_poll_ok", "gauge", "1 when the last INFO replication poll "
         "of the master was answered (0: lags are from an older answer)."},
        {"master_replicas", "gauge", "Replicas of the master with their "
         "link up (0: one failure away from losing its slots)."},
        {"replica_link_up", "gauge", "1 while the master lists the replica "
         "online."},
        {"replica_lag_bytes", "gauge", "Replication stream bytes the "
         "replica has not acknowledged (lost if it were promoted now)."},
    };
    char raw[300], master[LABEL_MAX];
    for (size_t f = 0; f < SP_ARRAY_LEN(head); f++) {
        evbuffer_add_printf(out, "# HELP slotproxy_%s %s\n# TYPE "
                            "slotproxy_%s %s\n", head[f][0], head[f][2],
                            head[f][0], head[f][1]);
        for (uint32_t i = 0; s != NULL && i < s->nmasters; i++) {
            const struct replstat_master *ms = &s->masters[i];
            label(master, node_name(raw, sizeof(raw), ms->host, ms->port));
            if (f == 0)
                evbuffer_add_printf(out, "slotproxy_%s{master=\"%s\"} %d\n",
                                    head[f][0], master,
                                    ms->status == REPLSTAT_OK);
            else if (f == 1 && ms->polled_ms != 0)
                evbuffer_add_printf(out, "slotproxy_%s{master=\"%s\"} %u\n",
                                    head[f][0], master, replstat_healthy(ms));
            for (uint32_t k = 0; f >= 2 && k < ms->nreplicas; k++) {
                const struct replstat_replica *r = &ms->replicas[k];
                if (f == 2)
                    emit_replica(out, head[f][0], master, r, r->link_up);
                else if (r->lag_known)
                    emit_replica(out, head[f][0], master, r, r->lag_bytes);
            }
        }
    }
    replstat_put(s);
}

/* Latency histograms by command (commands seen at least once). */
static void
emit_cmd_latency(struct http *h, struct evbuffer *out,
                 const struct cmdsnap *names)
{
    size_t stride = LAT_BUCKETS + 2;
    uint64_t *lat = sp_calloc(cmdtable_index_limit() * stride, sizeof(*lat));
    for (int i = 0; i < h->nworkers; i++)
        worker_read_cmd_lat(h->workers[i], lat);
    evbuffer_add_printf(out, "# HELP slotproxy_command_duration_seconds "
                        "Request latency by command.\n# TYPE "
                        "slotproxy_command_duration_seconds histogram\n");
    for (size_t c = 0; c < cmdtable_index_limit(); c++) {
        struct lat_hist hc;
        uint64_t total = 0;
        memcpy(&hc, &lat[c * stride], sizeof(hc));
        for (int b = 0; b <= LAT_BUCKETS; b++)
            total += hc.count[b];
        if (total == 0)
            continue;
        char name[LABEL_MAX], labels[LABEL_MAX + 16];
        snprintf(labels, sizeof(labels), "command=\"%s\",",
                 cmd_label(name, names, c));
        emit_hist(out, "slotproxy_command_duration_seconds", labels, &hc);
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

#define HOT_KEYS 10
#define HOT_KEY_SHOWN 64 /* key bytes shown in a label */

/*
 * The hottest keys (the head of PROXY HOTKEYS), in estimated requests per
 * second. A key is cut at HOT_KEY_SHOWN bytes ("..." marks the cut),
 * bytes outside printable ASCII are written \xNN, then the label is
 * escaped; with monitor.hotkeys.hide_keys the label is "#" and the key's
 * 16-hex-digit identity hash instead, the slot still shown.
 */
static void
emit_hot_keys(struct http *h, struct evbuffer *out)
{
    struct hotkeys_item *items = sp_malloc(HOT_KEYS * sizeof(*items));
    int hide = 0;
    size_t n = shared_hotkeys(h->workers[0]->shared, items, HOT_KEYS, &hide);
    evbuffer_add_printf(out, "# HELP slotproxy_hotkey_requests Estimated "
                        "requests per second of the %d hottest keys "
                        "(sampled; monitor.hotkeys).\n"
                        "# TYPE slotproxy_hotkey_requests gauge\n",
                        HOT_KEYS);
    for (size_t i = 0; i < n; i++) {
        const struct hotkeys_item *it = &items[i];
        char raw[4 * HOT_KEY_SHOWN + 8], esc[2 * sizeof(raw)];
        size_t len = 0, shown = SP_MIN(it->key_len, HOT_KEY_SHOWN);
        if (hide)
            snprintf(raw, sizeof(raw), "#%016llx",
                     (unsigned long long)it->hash);
        for (size_t b = 0; !hide && b < shown; b++) {
            unsigned char ch = (unsigned char)it->key[b];
            if (ch >= 0x20 && ch < 0x7f)
                raw[len++] = (char)ch;
            else
                len += (size_t)snprintf(raw + len, sizeof(raw) - len,
                                        "\\x%02x", ch);
        }
        if (!hide)
            snprintf(raw + len, sizeof(raw) - len, "%s",
                     it->full_len > shown ? "..." : "");
        http_label_escape(esc, sizeof(esc), raw);
        evbuffer_add_printf(out, "slotproxy_hotkey_requests{key=\"%s\","
                            "slot=\"%u\"} %.1f\n", esc, it->slot, it->rps);
    }
    sp_free(items);
}

/* Big requests and replies by command (monitor.big_*; commands with at
 * least one). The HELP and TYPE lines always, so that the families are
 * known before the first. */
static void
emit_big_counts(struct http *h, struct evbuffer *out,
                const struct cmdsnap *names)
{
    static const char *const fam[2][2] = {
        {"slotproxy_big_requests_total",
         "Requests larger than monitor.big_request_bytes, by command."},
        {"slotproxy_big_replies_total",
         "Replies larger than monitor.big_reply_bytes or with more "
         "elements than monitor.big_reply_elements, by command."},
    };
    size_t ncmd = cmdtable_index_limit();
    uint64_t *counts = sp_calloc(2 * ncmd, sizeof(*counts));
    for (int i = 0; i < h->nworkers; i++)
        worker_read_big(h->workers[i], counts);
    char lb[LABEL_MAX];
    for (int dir = 0; dir < 2; dir++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n",
                            fam[dir][0], fam[dir][1], fam[dir][0]);
        for (size_t c = 0; c < ncmd; c++)
            if (counts[2 * c + (size_t)dir] > 0)
                evbuffer_add_printf(out, "%s{command=\"%s\"} %llu\n",
                                    fam[dir][0], cmd_label(lb, names, c),
                                    (unsigned long long)counts[2 * c +
                                                               (size_t)dir]);
    }
    sp_free(counts);
}

/* ------------------------------------------------------------------------
 * Pages: each fills the body and returns the HTTP status
 * ------------------------------------------------------------------------ */

static int
on_metrics(struct http *h, struct evbuffer *out)
{
    struct worker_stats *sum = sp_malloc(sizeof(*sum));
    uint64_t *calls = sp_calloc(cmdtable_index_limit(), sizeof(*calls));
    uint32_t *per_worker = sp_calloc((size_t)h->nworkers, sizeof(*per_worker));
    struct metrics_view v = {.sum = sum, .calls = calls,
                             .per_worker = per_worker};

    struct cmdsnap *names = shared_cmds(h->workers[0]->shared);
    metrics_collect(h->workers, h->nworkers, &v);
    emit_build_info(out);
    emit_metrics(out, sum, calls, names);
    emit_workers(out, per_worker, h->nworkers);
    emit_reloads(out, h->workers[0]->shared);
    emit_nodes(h, out);
    emit_hot_slots(h, out);
    emit_hot_keys(h, out);
    emit_replicas(h, out);
    emit_big_counts(h, out, names);
    emit_cmd_latency(h, out, names);
    emit_process(out);
    cmdsnap_put(names);
    sp_free(per_worker);
    sp_free(calls);
    sp_free(sum);
    return 200;
}

/* Alive: the HTTP thread answers (this page) and every worker's loop
 * still ticks; 503 names the first one that does not. */
static int
on_healthz(struct http *h, struct evbuffer *out)
{
    struct worker_stats *s = sp_malloc(sizeof(*s));
    uint64_t *tick = sp_calloc((size_t)h->nworkers, sizeof(*tick));
    for (int i = 0; i < h->nworkers; i++) {
        worker_read_stats(h->workers[i], s, NULL);
        tick[i] = s->tick_ms;
    }
    uint64_t now = sp_msec_now();
    int bad = metrics_stalled_worker(tick, h->nworkers, now,
                                     HEALTHZ_STALL_MS);
    if (bad < 0)
        evbuffer_add_printf(out, "ok\n");
    else
        evbuffer_add_printf(out, "worker %d stalled: no tick for %llu ms\n",
                            bad, (unsigned long long)(now - tick[bad]));
    sp_free(tick);
    sp_free(s);
    return bad < 0 ? 200 : 503;
}

/* Ready, by metrics.readiness: all-slots, every worker has a slot map
 * that covers every slot; any-slot, at least one slot is served. */
static int
on_readyz(struct http *h, struct evbuffer *out)
{
    struct worker_stats *sum = sp_malloc(sizeof(*sum));
    struct metrics_view v = {.sum = sum};

    metrics_collect(h->workers, h->nworkers, &v);
    int any = h->workers[0]->shared->readiness == READINESS_ANY_SLOT;
    int ready = sum->masters > 0 &&
                (any ? sum->covered > 0 : sum->covered == SLOT_COUNT);
    evbuffer_add_printf(out, "%s: %u/%d slots covered, %u masters (%s)\n",
                        ready ? "ready" : "not ready", sum->covered,
                        SLOT_COUNT, sum->masters,
                        any ? "any-slot" : "all-slots");
    sp_free(sum);
    return ready ? 200 : 503;
}

struct http_route {
    const char *path;               /* exact path, query string ignored */
    int (*fn)(struct http *h, struct evbuffer *out);
    const char *ctype;              /* Content-Type of the body */
};

static const struct http_route http_routes[] = {
    {"/metrics", on_metrics, "text/plain; version=0.0.4"},
    {"/healthz", on_healthz, "text/plain"},
    {"/readyz", on_readyz, "text/plain"},
};

static const char *
http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
    }
}

/* ------------------------------------------------------------------------
 * Pure helpers (unit tested)
 * ------------------------------------------------------------------------ */

size_t
http_label_escape(char *dst, size_t cap, const char *src)
{
    size_t n = 0;

    for (; *src != '\0'; src++) {
        char esc = *src == '\\' ? '\\' : *src == '"' ? '"'
                                       : *src == '\n' ? 'n' : 0;
        char pair[2] = {'\\', esc};
        const char *p = esc ? pair : src;
        size_t k = esc ? 2 : 1;
        for (size_t i = 0; i < k; i++, n++)
            if (n + 1 < cap)
                dst[n] = p[i];
    }
    dst[n < cap ? n : cap - 1] = '\0';
    return n;
}

/* Where the head ends (past its blank line), or 0. Bare LF ends lines
 * too, as most servers accept. */
static size_t
http_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

long
http_parse_head(const char *buf, size_t len, struct http_head *out)
{
    size_t end = http_head_end(buf, len);
    const char *sp1, *sp2, *eol, *q;

    if (end == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    eol = memchr(buf, '\n', end);
    sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    if (sp1 == NULL || sp1 == buf)
        return -1;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1 || sp2[1] == '\r' || sp2 + 1 == eol ||
        (size_t)(eol - sp2) < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    out->is_get = sp1 - buf == 3 && memcmp(buf, "GET", 3) == 0;
    out->is_head = sp1 - buf == 4 && memcmp(buf, "HEAD", 4) == 0;
    out->path = sp1 + 1;
    q = memchr(out->path, '?', (size_t)(sp2 - out->path));
    out->path_len = (size_t)((q != NULL ? q : sp2) - out->path);
    return (long)end;
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void conn_on_io(evutil_socket_t fd, short what, void *arg);

static void
conn_close(struct http_conn *c)
{
    struct http *h = c->h;

    TAILQ_REMOVE(&h->conns, c, next);
    h->nconns--;
    event_free(c->ev);
    if (c->out != NULL)
        evbuffer_free(c->out);
    close(c->fd);
    sp_free(c);
}

/* Wait for readiness (what: EV_READ or EV_WRITE) until the deadline. */
static void
conn_wait(struct http_conn *c, short what)
{
    uint64_t now = sp_msec_now();
    uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
    struct timeval tv = {(time_t)(left / 1000),
                         (suseconds_t)(left % 1000) * 1000};

    event_del(c->ev);
    event_assign(c->ev, c->h->base, c->fd, what, conn_on_io, c);
    event_add(c->ev, &tv);
}

/* Best-effort status line on a socket we are about to close (an error
 * page of a few bytes fits any empty socket buffer). */
static void
conn_refuse(int fd, int status)
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg), "HTTP/1.1 %d %s\r\nContent-Length: "
                     "0\r\nConnection: close\r\n\r\n", status,
                     http_reason(status));
    ssize_t w = write(fd, msg, (size_t)n);
    (void)w;
}

static void
conn_write(struct http_conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_wait(c, EV_WRITE);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
    }
    conn_close(c);
}

/* Queue the whole response (status, headers, body unless HEAD), then
 * write it. */
static void
conn_respond(struct http_conn *c, int status, const char *ctype,
             struct evbuffer *body, int head_only)
{
    c->out = evbuffer_new();
    evbuffer_add_printf(c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                        "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                        status, http_reason(status), ctype,
                        body ? evbuffer_get_length(body) : 0,
                        status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (body != NULL && !head_only)
        evbuffer_add_buffer(c->out, body);
    conn_write(c);
}

static void
conn_serve(struct http_conn *c, const struct http_head *hd)
{
    const struct http_route *rt = NULL;

    for (size_t i = 0; i < SP_ARRAY_LEN(http_routes); i++)
        if (strlen(http_routes[i].path) == hd->path_len &&
            memcmp(http_routes[i].path, hd->path, hd->path_len) == 0)
            rt = &http_routes[i];
    if (!hd->is_get && !hd->is_head) {
        conn_respond(c, 405, "text/plain", NULL, 0);
        return;
    }
    if (rt == NULL) {
        conn_respond(c, 404, "text/plain", NULL, 0);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    int status = rt->fn(c->h, body);
    conn_respond(c, status, rt->ctype, body, hd->is_head);
    evbuffer_free(body);
}

/* Read what the client sent; once the head is complete, answer. A head
 * that does not fit HTTP_HEAD_MAX gets 431. 1 while the head is still
 * incomplete; 0 once c is answered or closed (it may be freed). */
static int
conn_read(struct http_conn *c)
{
    struct http_head hd;
    ssize_t n = recv(c->fd, c->head + c->len, sizeof(c->head) - c->len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 1;
    if (n <= 0) {
        conn_close(c);
        return 0;
    }
    c->len += (size_t)n;
    long rc = http_parse_head(c->head, c->len, &hd);
    if (rc > 0)
        conn_serve(c, &hd);
    else if (rc < 0)
        conn_respond(c, 400, "text/plain", NULL, 0);
    else if (c->len == sizeof(c->head))
        conn_respond(c, 431, "text/plain", NULL, 0);
    else
        return 1;
    return 0;
}

static void
conn_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    if (what & EV_TIMEOUT) {
        /* Too slow to send its request, or to read our answer. */
        if (c->out == NULL)
            conn_refuse(c->fd, 408);
        conn_close(c);
        return;
    }
    if (c->out != NULL) {
        conn_write(c);
        return;
    }
    if (conn_read(c))
        conn_wait(c, EV_READ);      /* re-arm: the head is not complete */
}

/* The oldest connection still sending its request, or NULL. */
static struct http_conn *
oldest_reading(struct http *h)
{
    struct http_conn *c;

    TAILQ_FOREACH(c, &h->conns, next)
        if (c->out == NULL)
            return c;
    return NULL;
}

static void
conn_new(struct http *h, int fd)
{
    if (h->nconns >= HTTP_MAX_CONNS) {
        /* Full: the oldest idle connection makes room (a scraper's new
         * request outranks a client that sent nothing for a while); if
         * every one is busy answering, 503. */
        struct http_conn *old = oldest_reading(h);
        if (old == NULL) {
            conn_refuse(fd, 503);
            close(fd);
            return;
        }
        conn_close(old);
    }
    struct http_conn *c = sp_calloc(1, sizeof(*c));
    c->h = h;
    c->fd = fd;
    c->deadline_ms = sp_msec_now() + HTTP_CONN_TIMEOUT_MS;
    c->ev = event_new(h->base, fd, EV_READ, conn_on_io, c);
    TAILQ_INSERT_TAIL(&h->conns, c, next);
    h->nconns++;
    conn_wait(c, EV_READ);
}

/* ------------------------------------------------------------------------
 * Listening
 * ------------------------------------------------------------------------ */

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    conn_new(arg, fd);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct http *h = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < h->nls; i++)
        evconnlistener_enable(h->ls[i]);
}

/*
 * accept() failed and will fail again at once (EMFILE, ENFILE, ENOBUFS):
 * libevent would call us in a loop. Stop accepting for a moment, log at
 * most once a second.
 */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    struct http *h = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, HTTP_ACCEPT_BACKOFF_MS * 1000};

    (void)l;
    for (size_t i = 0; i < h->nls; i++)
        evconnlistener_disable(h->ls[i]);
    evtimer_add(h->resume, &tv);
    if (sp_every(&h->accept_log_ms, sp_msec_now(), 1000))
        log_warn("metrics: accept: %s (pausing %d ms)", strerror(err),
                 HTTP_ACCEPT_BACKOFF_MS);
}

static struct evconnlistener *
http_listen(struct http *h, const struct sp_addr *a)
{
    struct addrinfo hints, *res = NULL;
    struct evconnlistener *l;
    char port[8];

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", a->port);
    if (getaddrinfo(a->host, port, &hints, &res) != 0)
        return NULL;
    l = evconnlistener_new_bind(h->base, on_accept, h,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                    LEV_OPT_CLOSE_ON_EXEC, 128,
                                res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (l != NULL)
        evconnlistener_set_error_cb(l, on_accept_error);
    return l;
}

struct http *
http_new(struct event_base *base, const struct sp_addr *addrs, size_t naddrs,
         struct worker **workers, int nworkers)
{
    struct http *h = sp_calloc(1, sizeof(*h));
    h->base = base;
    h->workers = workers;
    h->nworkers = nworkers;
    TAILQ_INIT(&h->conns);
    h->resume = evtimer_new(base, on_resume, h);
    h->ls = sp_calloc(naddrs ? naddrs : 1, sizeof(*h->ls));
    for (size_t i = 0; i < naddrs; i++) {
        char name[300];
        config_addr_format(&addrs[i], name, sizeof(name));
        h->ls[i] = http_listen(h, &addrs[i]);
        if (h->ls[i] == NULL) {
            log_error("cannot listen for metrics on %s", name);
            http_free(h);
            return NULL;
        }
        h->nls++;
        log_notice("metrics on http://%s/metrics", name);
    }
    return h;
}

void
http_free(struct http *h)
{
    struct http_conn *c;

    if (h == NULL)
        return;
    while ((c = TAILQ_FIRST(&h->conns)) != NULL)
        conn_close(c);
    for (size_t i = 0; i < h->nls; i++)
        evconnlistener_free(h->ls[i]);
    event_free(h->resume);
    sp_free(h->ls);
    sp_free(h);
}
