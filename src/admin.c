/* slotproxy - BSD-2-Clause
 *
 * Proxy-local commands, dispatched from a table by command name. These
 * are the commands plain client libraries send on connect (HELLO, INFO,
 * CLIENT SETNAME, SELECT 0, PING) and the ones whose answer is about the
 * proxy rather than the data (CLUSTER KEYSLOT/INFO).
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "alloc.h"
#include "auth.h"
#include "backend.h"
#include "blocked.h"
#include "client.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "errors.h"
#include "fanout.h"
#include "hotkeys.h"
#include "keyslot.h"
#include "metrics.h"
#include "replstat.h"
#include "request.h"
#include "resp.h"
#include "router.h"
#include "slotmap.h"
#include "util.h"
#include "txn.h"
#include "view.h"
#include "worker.h"

/* The Redis version the proxy presents to clients that check features. */
#define PRESENTED_REDIS_VERSION "7.0.0"

struct admin_args {
    struct client *c;               /* the client */
    struct request *r;              /* reply goes into r->rep */
    uint32_t argc;
    const struct resp_arg *argv;
    const char *base;
};

typedef void (*admin_fn)(struct admin_args *a);

#define ARG(a, i) ((a)->base + (a)->argv[i].off)
#define ARGLEN(a, i) ((a)->argv[i].len)

static void
reply_done(struct admin_args *a)
{
    request_complete(a->r);
}

static void
reply_simple(struct admin_args *a, const char *s)
{
    buf_printf(&a->r->rep, "+%s\r\n", s);
    reply_done(a);
}

static void
reply_err(struct admin_args *a, const char *s)
{
    buf_printf(&a->r->rep, "-%s\r\n", s);
    reply_done(a);
}

/* Redis's arity error for the request's command (for local commands
 * whose table arity, like PING's -1, allows more than Redis takes). */
static void
reply_arity(struct admin_args *a)
{
    command_err_arity(&a->r->rep, a->r->cmd);
    reply_done(a);
}

static void
cmd_ping(struct admin_args *a)
{
    if (a->argc > 2) {
        reply_arity(a);
        return;
    }
    if (a->argc == 1) {
        reply_simple(a, "PONG");
        return;
    }
    buf_add_bulk(&a->r->rep, ARG(a, 1), ARGLEN(a, 1));
    reply_done(a);
}

static void
cmd_echo(struct admin_args *a)
{
    buf_add_bulk(&a->r->rep, ARG(a, 1), ARGLEN(a, 1));
    reply_done(a);
}

static void
cmd_quit(struct admin_args *a)
{
    a->c->closing = 1;
    reply_simple(a, "OK");
}

static void
cmd_ok(struct admin_args *a)
{
    reply_simple(a, "OK");
}

static void
cmd_select(struct admin_args *a)
{
    long long db;
    if (sp_str2ll(ARG(a, 1), ARGLEN(a, 1), &db) != 0) {
        reply_err(a, "ERR value is not an integer or out of range");
        return;
    }
    if (db != 0) {
        reply_err(a, "ERR SELECT is not allowed in cluster mode");
        return;
    }
    reply_simple(a, "OK");
}

/* Authenticate the client with argv[ui] (user, or -1 for "default") and
 * argv[pi]; 0 on success. -1 when refused: the WRONGPASS reply is sent,
 * or held back a while by the throttle (client_auth_failed). */
static int
auth_login(struct admin_args *a, int ui, uint32_t pi)
{
    const char *user = ui < 0 ? "default" : ARG(a, ui);
    size_t ulen = ui < 0 ? 7 : ARGLEN(a, ui);
    uint64_t fp;
    int uidx;
    int role = auth_check(a->c->w->conf, user, ulen, ARG(a, pi),
                          ARGLEN(a, pi), &fp, &uidx);
    if (role < 0) {
        buf_printf(&a->r->rep, "-%s\r\n", error_text(SPE_WRONGPASS));
        client_auth_failed(a->c, a->r);
        return -1;
    }
    if (client_login(a->c, role, fp, uidx) != 0) {
        reply_err(a, "ERR slotproxy: too many backend credentials");
        return -1;
    }
    return 0;
}

/* Without auth configured the proxy is Redis's nopass default user:
 * any password logs "default" in, another user name is refused. 0 when
 * argv[ui] may log in. */
static int
auth_nopass(struct admin_args *a, uint32_t ui)
{
    if (ARGLEN(a, ui) == 7 && memcmp(ARG(a, ui), "default", 7) == 0)
        return 0;
    buf_printf(&a->r->rep, "-%s\r\n", error_text(SPE_WRONGPASS));
    reply_done(a);
    return -1;
}

static void
cmd_auth(struct admin_args *a)
{
    if (a->argc > 3) {
        reply_err(a, "ERR syntax error");
        return;
    }
    if (!auth_configured(a->c->w->conf)) {
        if (a->argc == 2)
            reply_err(a, "ERR AUTH <password> called without any password "
                         "configured for the default user. Are you sure "
                         "your configuration is correct?");
        else if (auth_nopass(a, 1) == 0)
            reply_simple(a, "OK");
        return;
    }
    if (auth_login(a, a->argc == 3 ? 1 : -1, a->argc - 1) == 0)
        reply_simple(a, "OK");
}

static void
hello_reply(struct admin_args *a)
{
    struct buf *b = &a->r->rep;
    buf_add_map(b, 7, a->c->resp3);
    buf_add_bulk_str(b, "server");
    buf_add_bulk_str(b, "redis");
    buf_add_bulk_str(b, "version");
    buf_add_bulk_str(b, PRESENTED_REDIS_VERSION);
    buf_add_bulk_str(b, "proto");
    buf_add_int(b, a->c->resp3 ? 3 : 2);
    buf_add_bulk_str(b, "id");
    buf_add_int(b, (long long)a->c->id);
    buf_add_bulk_str(b, "mode");
    buf_add_bulk_str(b, "standalone");
    buf_add_bulk_str(b, "role");
    buf_add_bulk_str(b, "master");
    buf_add_bulk_str(b, "modules");
    buf_add_array(b, 0);
    reply_done(a);
}

/* Redis's validateClientName: printable ASCII without spaces (a name
 * shows in CLIENT LIST lines, space-separated). NULL when valid, else the
 * error text. */
static const char *
client_name_error(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < '!' || ch > '~')
            return "ERR Client names cannot contain spaces, newlines or "
                   "special characters.";
    }
    return NULL;
}

/* CLIENT SETNAME / HELLO SETNAME once validated: "" clears the name. */
static void
client_set_name(struct client *c, const char *p, size_t n)
{
    struct client_ext *x = client_ext_get(c);
    sp_free(x->name);
    x->name = n > 0 ? sp_strndup(p, n) : NULL;
}

/* "-ERR Syntax error in HELLO option '<opt>'": the option as Redis
 * prints it (up to a NUL byte), cut at 128 bytes, CR/LF made spaces. */
static void
hello_syntax_error(struct admin_args *a, uint32_t i)
{
    const char *opt = ARG(a, i);
    const char *nul = memchr(opt, '\0', ARGLEN(a, i));
    size_t n = nul != NULL ? (size_t)(nul - opt) : ARGLEN(a, i);

    buf_append_str(&a->r->rep, "-ERR Syntax error in HELLO option '");
    buf_append_oneline(&a->r->rep, opt, SP_MIN(n, 128), 0);
    buf_append_str(&a->r->rep, "'\r\n");
    reply_done(a);
}

/*
 * HELLO [protover [AUTH user pass] [SETNAME name]], protover 2 or 3.
 * As in Redis, the whole command is parsed (and the name validated)
 * before anything happens; then AUTH; the name and the protocol are set
 * only once the client is authenticated. The proxy presents itself as one
 * standalone node (mode "standalone", as its INFO says): clients then use
 * it as one server, which is what it is to them.
 */
static void
cmd_hello(struct admin_args *a)
{
    uint32_t i = 1;
    int auth = -1, name = -1;       /* argv index of AUTH's user, of the
                                     * name; -1: not given */
    long long ver = a->c->resp3 ? 3 : 2;
    if (a->argc >= 2) {
        if (sp_str2ll(ARG(a, 1), ARGLEN(a, 1), &ver) != 0) {
            reply_err(a, "ERR Protocol version is not an integer or out of "
                         "range");
            return;
        }
        if (ver < 2 || ver > 3) {
            reply_err(a, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    for (; i < a->argc; i++) {
        uint32_t left = a->argc - i - 1;
        if (sp_strcaseeq(ARG(a, i), ARGLEN(a, i), "auth") && left >= 2) {
            auth = (int)i + 1;
            i += 2;
        } else if (sp_strcaseeq(ARG(a, i), ARGLEN(a, i), "setname") &&
                   left >= 1) {
            const char *err = client_name_error(ARG(a, i + 1),
                                                ARGLEN(a, i + 1));
            if (err != NULL) {
                reply_err(a, err);
                return;
            }
            name = (int)i + 1;
            i++;
        } else {
            hello_syntax_error(a, i);
            return;
        }
    }
    if ((ver == 3) != a->c->resp3) {
        /* A WATCH or subscription lives on a connection of the old
         * protocol: switching would lose it. */
        txn_release_idle(a->c);
        if (a->c->ext != NULL && a->c->ext->pins.n > 0) {
            reply_err(a, "ERR slotproxy: HELLO cannot change the protocol "
                         "while a WATCH or a subscription holds a "
                         "connection (UNWATCH, unsubscribe or RESET "
                         "first)");
            return;
        }
    }
    if (auth >= 0) {
        if (!auth_configured(a->c->w->conf)) {
            if (auth_nopass(a, (uint32_t)auth) != 0)
                return;
        } else if (auth_login(a, auth, (uint32_t)auth + 1) != 0) {
            return;
        }
    }
    if (!a->c->authed) {
        reply_err(a, "NOAUTH HELLO must be called with the client already "
                     "authenticated, otherwise the HELLO <proto> AUTH <user> "
                     "<pass> option can be used to authenticate the client "
                     "and select the RESP protocol version at the same time");
        return;
    }
    if (name >= 0)
        client_set_name(a->c, ARG(a, name), ARGLEN(a, name));
    client_set_resp3(a->c, ver == 3);
    hello_reply(a);
}

/* The metrics table's rows of one INFO section, summed over every
 * worker's published copy (as of their last 100 ms tick, like /metrics). */
static void
info_metrics(struct buf *b, struct worker *w, enum metric_section sec)
{
    struct worker_stats *sum = sp_malloc(sizeof(*sum));
    struct metrics_view v = {.sum = sum};
    size_t n;
    const struct metric *t = metrics_table(&n);

    metrics_collect(w->shared->workers, w->shared->nworkers, &v);
    for (size_t i = 0; i < n; i++)
        if (t[i].section == sec)
            buf_printf(b, "%s:%llu\r\n", t[i].info,
                       (unsigned long long)metric_value(&t[i], sum));
    sp_free(sum);
}

static void
info_section(struct buf *b, struct worker *w, const char *name)
{
    time_t now = time(NULL);
    uint64_t up = (uint64_t)now - w->start_ms / 1000;

    if (strcmp(name, "server") == 0) {
        buf_printf(b,
                   "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\n"
                   "slotproxy_version:%s\r\nos:linux\r\n"
                   "multiplexing_api:%s\r\n"
                   "process_id:%ld\r\nuptime_in_seconds:%llu\r\n"
                   "uptime_in_days:%llu\r\n\r\n",
                   PRESENTED_REDIS_VERSION, PACKAGE_VERSION,
                   w->io != NULL ? "io_uring" : "epoll",
                   (long)getpid(), (unsigned long long)up,
                   (unsigned long long)(up / 86400));
    } else if (strcmp(name, "clients") == 0) {
        /* blocked_clients: every worker's clients in a blocking command
         * (tools wait on it before CLIENT UNBLOCK or a push). */
        buf_printf(b, "# Clients\r\nconnected_clients:%u\r\n"
                      "worker_clients:%u\r\nmaxclients:%u\r\n"
                      "blocked_clients:%u\r\n\r\n",
                   __atomic_load_n(&w->shared->nclients, __ATOMIC_RELAXED),
                   w->nclients, w->conf->max_clients,
                   blocked_count(&w->shared->blocked));
    } else if (strcmp(name, "persistence") == 0) {
        /* ioredis waits for loading:0 before it reports ready. */
        buf_printf(b, "# Persistence\r\nloading:0\r\n\r\n");
    } else if (strcmp(name, "stats") == 0) {
        buf_printf(b, "# Stats\r\n");
        info_metrics(b, w, METRIC_SEC_STATS);
        buf_printf(b, "\r\n");
    } else if (strcmp(name, "replication") == 0) {
        /* A master without replicas, as ROLE says: valkey-glide's
         * standalone client looks for role:master before it connects. */
        buf_printf(b, "# Replication\r\nrole:master\r\nconnected_slaves:0"
                      "\r\nmaster_failover_state:no-failover\r\n"
                      "master_replid:%s\r\nmaster_repl_offset:0\r\n\r\n",
                   w->proxy_id);
    } else if (strcmp(name, "cluster") == 0) {
        /* redis-py's RedisCluster checks it before CLUSTER SLOTS, which
         * presents the proxy as a one-node cluster. */
        buf_printf(b, "# Cluster\r\ncluster_enabled:1\r\n\r\n");
    } else if (strcmp(name, "proxy") == 0) {
        buf_printf(b,
                   "# Proxy\r\nslotproxy_version:%s\r\nworkers:%d\r\n"
                   "worker_id:%d\r\ntopology_epoch:%llu\r\n"
                   "cluster_nodes:%u\r\ncluster_masters:%u\r\n"
                   "slots_covered:%u\r\n",
                   PACKAGE_VERSION, w->conf->workers, w->id,
                   (unsigned long long)w->map_epoch, w->map->nnodes,
                   w->map->nmasters, w->map->covered);
        info_metrics(b, w, METRIC_SEC_PROXY);
        buf_printf(b, "\r\n");
    }
}

/* In Redis's order, the proxy's own section before the last (keyspace). */
static const char *const info_sections[] = {
    "server", "clients", "persistence", "stats", "replication", "cluster",
    "proxy", "keyspace",
};

/* 1 when INFO's arguments ask for section name. */
static int
info_wants(const struct admin_args *a, const char *name)
{
    if (a->argc == 1)
        return 1;
    for (uint32_t i = 1; i < a->argc; i++) {
        if (sp_strcaseeq(ARG(a, i), ARGLEN(a, i), name) ||
            sp_strcaseeq(ARG(a, i), ARGLEN(a, i), "all") ||
            sp_strcaseeq(ARG(a, i), ARGLEN(a, i), "everything") ||
            sp_strcaseeq(ARG(a, i), ARGLEN(a, i), "default"))
            return 1;
    }
    return 0;
}

/* The proxy's own sections; # Keyspace is summed over the masters by a
 * fan-out (INFO keyspace on each), appended after them. */
static void
cmd_info(struct admin_args *a)
{
    struct buf body;
    buf_init(&body);
    for (size_t s = 0; s + 1 < SP_ARRAY_LEN(info_sections); s++)
        if (info_wants(a, info_sections[s]))
            info_section(&body, a->c->w, info_sections[s]);
    if (info_wants(a, "keyspace")) {
        fanout_info(a->c->w, a->r, &body);
        return;
    }
    /* Redis ends INFO without the blank line after the last section. */
    if (body.len >= 2)
        body.len -= 2;
    buf_add_verbatim(&a->r->rep, body.data ? body.data : "", body.len,
                     a->c->resp3);
    buf_deinit(&body);
    reply_done(a);
}

/* CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2): stored per
 * connection, shown by CLIENT LIST/INFO; an empty value clears it. */
static void
client_setinfo(struct admin_args *a)
{
    char **dst;
    if (sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "lib-name")) {
        dst = &client_ext_get(a->c)->lib_name;
    } else if (sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "lib-ver")) {
        dst = &client_ext_get(a->c)->lib_ver;
    } else {
        buf_printf(&a->r->rep, "-ERR Unrecognized option '%.*s'\r\n",
                   (int)SP_MIN(ARGLEN(a, 2), 128), ARG(a, 2));
        reply_done(a);
        return;
    }
    /* Redis's validateClientAttr: the check names get, another text. */
    if (client_name_error(ARG(a, 3), ARGLEN(a, 3)) != NULL) {
        buf_printf(&a->r->rep, "-ERR %.*s cannot contain spaces, newlines "
                   "or special characters.\r\n", (int)ARGLEN(a, 2), ARG(a, 2));
        reply_done(a);
        return;
    }
    sp_free(*dst);
    *dst = ARGLEN(a, 3) ? sp_strndup(ARG(a, 3), ARGLEN(a, 3)) : NULL;
    reply_simple(a, "OK");
}

/*
 * CLIENT NO-EVICT and NO-TOUCH ON|OFF. NO-EVICT exempts a connection from
 * the server's client eviction (maxmemory-clients): the proxy evicts no
 * client for memory, so ON and OFF are both true as they stand. NO-TOUCH
 * ON asks that the client's reads leave the keys' LRU/LFU alone; its
 * commands travel on backend connections shared with other clients, where
 * the flag would apply to everyone, so ON is refused; OFF is the state
 * every connection is in.
 */
static void
client_no_flag(struct admin_args *a, int touch)
{
    int on = sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "on");
    if (!on && !sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "off")) {
        reply_err(a, "ERR syntax error");
        return;
    }
    if (touch && on) {
        reply_err(a, "ERR slotproxy: CLIENT NO-TOUCH ON is not supported "
                     "through the proxy (backend connections are shared)");
        return;
    }
    reply_simple(a, "OK");
}

/*
 * CLIENT UNBLOCK id [TIMEOUT|ERROR] for the proxy's client ids (any
 * worker's): a client blocked on its pinned connection is found in the
 * shared blocked table, and the node that holds the block is asked to
 * unblock that connection (CLIENT UNBLOCK <backend id> <reason>): its
 * 1 or 0 is the reply, and the blocked client gets what Redis sends it.
 * 0 for a client that is not blocked, as Redis answers.
 */
static void
client_unblock(struct admin_args *a)
{
    const char *why = "TIMEOUT";
    long long id;
    struct blocked_entry e;

    if (a->argc > 4) {
        buf_printf(&a->r->rep, "-ERR unknown subcommand or wrong number of "
                   "arguments for '%.*s'. Try CLIENT HELP.\r\n",
                   (int)SP_MIN(ARGLEN(a, 1), 128), ARG(a, 1));
        reply_done(a);
        return;
    }
    if (a->argc == 4) {
        if (sp_strcaseeq(ARG(a, 3), ARGLEN(a, 3), "error")) {
            why = "ERROR";
        } else if (!sp_strcaseeq(ARG(a, 3), ARGLEN(a, 3), "timeout")) {
            reply_err(a, "ERR CLIENT UNBLOCK reason should be TIMEOUT or "
                         "ERROR");
            return;
        }
    }
    if (sp_str2ll(ARG(a, 2), ARGLEN(a, 2), &id) != 0) {
        reply_err(a, "ERR value is not an integer or out of range");
        return;
    }
    if (id <= 0 || !blocked_find(&a->c->w->shared->blocked, (uint64_t)id,
                                 &e)) {
        buf_add_int(&a->r->rep, 0);
        reply_done(a);
        return;
    }
    char num[32];
    int n = snprintf(num, sizeof(num), "%llu",
                     (unsigned long long)e.backend_id);
    buf_add_array(&a->r->req, 4);
    buf_add_bulk_str(&a->r->req, "CLIENT");
    buf_add_bulk_str(&a->r->req, "UNBLOCK");
    buf_add_bulk(&a->r->req, num, (size_t)n);
    buf_add_bulk_str(&a->r->req, why);
    a->r->deadline_ms = sp_msec_now() + a->c->w->conf->request_timeout_ms;
    backend_send(backend_get(a->c->w, e.host, e.port), a->r);
}

/*
 * Client-side caching is not offered (README, "Client-side caching"):
 * a server tracks the keys read on a connection, and the proxy's
 * connections are shared, so its invalidations could not be told apart
 * per client. CLIENT TRACKING is refused with that reason; the queries
 * answer as Redis does for a client with tracking off.
 */
static void
client_tracking(struct admin_args *a, const char *sub)
{
    struct buf *b = &a->r->rep;
    if (strcmp(sub, "tracking") == 0) {
        reply_err(a, "ERR slotproxy: CLIENT TRACKING is not supported "
                     "through the proxy (backend connections are shared: "
                     "invalidations cannot be routed to one client)");
    } else if (strcmp(sub, "caching") == 0) {
        reply_err(a, "ERR CLIENT CACHING can be called only when the "
                     "client is in tracking mode with OPTIN or OPTOUT mode "
                     "enabled");
    } else if (strcmp(sub, "getredir") == 0) {
        buf_add_int(b, -1);
        reply_done(a);
    } else {
        buf_add_map(b, 3, a->c->resp3);
        buf_add_bulk_str(b, "flags");
        buf_add_set(b, 1, a->c->resp3);
        buf_add_bulk_str(b, "off");
        buf_add_bulk_str(b, "redirect");
        buf_add_int(b, -1);
        buf_add_bulk_str(b, "prefixes");
        buf_add_array(b, 0);
        reply_done(a);
    }
}

static void
cmd_client(struct admin_args *a)
{
    struct client *c = a->c;
    const char *sub = a->r->cmd->name;
    uint64_t now = sp_msec_now();

    if (strcmp(sub, "id") == 0) {
        buf_add_int(&a->r->rep, (long long)c->id);
    } else if (strcmp(sub, "getname") == 0) {
        if (c->ext != NULL && c->ext->name != NULL)
            buf_add_bulk_str(&a->r->rep, c->ext->name);
        else
            buf_add_null(&a->r->rep, c->resp3);
    } else if (strcmp(sub, "setname") == 0) {
        const char *err = client_name_error(ARG(a, 2), ARGLEN(a, 2));
        if (err != NULL) {
            reply_err(a, err);
            return;
        }
        client_set_name(c, ARG(a, 2), ARGLEN(a, 2));
        reply_simple(a, "OK");
        return;
    } else if (strcmp(sub, "setinfo") == 0) {
        client_setinfo(a);
        return;
    } else if (strcmp(sub, "info") == 0) {
        struct buf line;
        buf_init(&line);
        view_client_line(&line, c, now);
        buf_add_verbatim(&a->r->rep, line.data, line.len, c->resp3);
        buf_deinit(&line);
    } else if (strcmp(sub, "list") == 0) {
        /* Every worker's clients (view.c). */
        view_start(c->w, a->r, VIEW_CLIENT_LIST, -1);
        return;
    } else if (strcmp(sub, "reply") == 0 &&
               sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "on")) {
        reply_simple(a, "OK");
        return;
    } else if (strcmp(sub, "no-evict") == 0 ||
               strcmp(sub, "no-touch") == 0) {
        client_no_flag(a, strcmp(sub, "no-touch") == 0);
        return;
    } else if (strcmp(sub, "unblock") == 0) {
        client_unblock(a);
        return;
    } else if (strcmp(sub, "tracking") == 0 || strcmp(sub, "caching") == 0 ||
               strcmp(sub, "getredir") == 0 ||
               strcmp(sub, "trackinginfo") == 0) {
        client_tracking(a, sub);
        return;
    } else {
        command_err_refused(&a->r->rep, a->r->cmd);
    }
    reply_done(a);
}

/* ------------------------------------------------------------------------
 * COMMAND: the table the proxy uses (the worker's snapshot). A command
 * the proxy refuses, with every subcommand, is left out, as an unknown
 * one: a client that probes for a command sees what it can call through
 * the proxy. Learned commands answer with the server's own bytes.
 * ------------------------------------------------------------------------ */

/* 1 when the proxy runs top or one of its subcommands. */
static int
command_listed(const struct command *top)
{
    if (top->route != CMD_ROUTE_REFUSED)
        return 1;
    for (uint16_t i = 0; i < top->nsubcmds; i++)
        if (top->subcmds[i].route != CMD_ROUTE_REFUSED)
            return 1;
    return 0;
}

/* COMMAND INFO's entry for top (sub: one of its subcommands, or NULL). */
static void
command_entry(struct buf *out, const struct cmdsnap *s,
              const struct command *top, const struct command *sub)
{
    size_t len;
    const char *raw = sub != NULL ? cmdsnap_sub_entry(s, top, sub, &len)
                                  : cmdsnap_entry(s, top, &len);
    if (raw != NULL)
        buf_append(out, raw, len);
    else
        cmdtable_write_entry(out, sub != NULL ? sub : top);
}

/* COMMAND, COMMAND INFO without names: every command listed. */
static void
command_all(struct admin_args *a)
{
    const struct cmdsnap *s = a->c->w->cmds;
    size_t n = cmdtable_count(s->table), listed = 0;

    for (size_t i = 0; i < n; i++)
        listed += command_listed(cmdtable_at(s->table, i));
    buf_add_array(&a->r->rep, (long long)listed);
    for (size_t i = 0; i < n; i++) {
        const struct command *c = cmdtable_at(s->table, i);
        if (command_listed(c))
            command_entry(&a->r->rep, s, c, NULL);
    }
    reply_done(a);
}

/* COMMAND INFO name ...: an entry per name ("container|sub" too), nil
 * for a name the proxy does not run (Redis: one it does not know). */
static void
command_info(struct admin_args *a)
{
    const struct cmdsnap *s = a->c->w->cmds;

    if (a->argc == 2) {
        command_all(a);
        return;
    }
    buf_add_array(&a->r->rep, a->argc - 2);
    for (uint32_t i = 2; i < a->argc; i++) {
        const char *name = ARG(a, i), *bar = memchr(name, '|', ARGLEN(a, i));
        size_t tlen = bar != NULL ? (size_t)(bar - name) : ARGLEN(a, i);
        const struct command *top = cmdtable_lookup(s->table, name, tlen);
        const struct command *sub = NULL;
        if (top != NULL && bar != NULL)
            sub = command_lookup_sub(top, bar + 1,
                                     ARGLEN(a, i) - tlen - 1);
        if (top == NULL || !command_listed(top) ||
            (bar != NULL && (sub == NULL || sub->route == CMD_ROUTE_REFUSED)))
            buf_add_null(&a->r->rep, a->c->resp3);
        else
            command_entry(&a->r->rep, s, top, sub);
    }
    reply_done(a);
}

/* One name of COMMAND LIST, when it passes the pattern (NULL: none). */
static void
list_name(struct buf *body, long long *n, const char *name,
          const char *pattern)
{
    if (pattern != NULL && !config_glob_match(pattern, name))
        return;
    buf_add_bulk_str(body, name);
    (*n)++;
}

/* COMMAND LIST [FILTERBY PATTERN p]: the names the proxy runs, with
 * their subcommands ("config|get"), as Redis lists them. */
static void
command_list(struct admin_args *a, const char *pattern)
{
    const struct cmdsnap *s = a->c->w->cmds;
    struct buf body;
    long long n = 0;

    buf_init(&body);
    for (size_t i = 0; i < cmdtable_count(s->table); i++) {
        const struct command *c = cmdtable_at(s->table, i);
        if (!command_listed(c))
            continue;
        list_name(&body, &n, c->fullname, pattern);
        for (uint16_t k = 0; k < c->nsubcmds; k++)
            if (c->subcmds[k].route != CMD_ROUTE_REFUSED)
                list_name(&body, &n, c->subcmds[k].fullname, pattern);
    }
    buf_add_array(&a->r->rep, n);
    buf_append(&a->r->rep, body.data, body.len);
    buf_deinit(&body);
    reply_done(a);
}

/* COMMAND DOCS, GETKEYS, GETKEYSANDFLAGS, HELP and LIST FILTERBY MODULE |
 * ACLCAT go to a master: documentation, and metadata the proxy's table
 * does not keep (ACL categories, module names). */
static void
command_forward(struct admin_args *a)
{
    buf_add_array(&a->r->req, a->argc);
    for (uint32_t i = 0; i < a->argc; i++)
        buf_add_bulk(&a->r->req, ARG(a, i), ARGLEN(a, i));
    router_dispatch(a->c->w, a->r);
}

static void
cmd_command(struct admin_args *a)
{
    const char *sub = a->argc >= 2 ? a->r->cmd->name : "";

    if (a->argc == 1) {
        command_all(a);
    } else if (strcmp(sub, "count") == 0) {
        const struct cmdsnap *s = a->c->w->cmds;
        long long n = 0;
        for (size_t i = 0; i < cmdtable_count(s->table); i++)
            n += command_listed(cmdtable_at(s->table, i));
        buf_add_int(&a->r->rep, n);
        reply_done(a);
    } else if (strcmp(sub, "info") == 0) {
        command_info(a);
    } else if (strcmp(sub, "list") == 0 && a->argc == 2) {
        command_list(a, NULL);
    } else if (strcmp(sub, "list") == 0 && a->argc == 5 &&
               sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "filterby") &&
               sp_strcaseeq(ARG(a, 3), ARGLEN(a, 3), "pattern")) {
        char *pat = sp_strndup(ARG(a, 4), ARGLEN(a, 4));
        command_list(a, pat);
        sp_free(pat);
    } else {
        command_forward(a);
    }
}

/*
 * The proxy presents itself as a one-node cluster owning every slot, at
 * the address the client connected to: a cluster-aware client that probes
 * the topology then keeps sending everything to the proxy.
 */
static void
cluster_slots_reply(struct admin_args *a)
{
    struct buf *b = &a->r->rep;
    struct client_laddr la;
    client_local_addr(a->c, &la);
    buf_add_array(b, 1);
    buf_add_array(b, 3);
    buf_add_int(b, 0);
    buf_add_int(b, SLOT_COUNT - 1);
    buf_add_array(b, 4);
    buf_add_bulk_str(b, la.host);
    buf_add_int(b, la.port);
    buf_add_bulk_str(b, a->c->w->proxy_id);
    buf_add_array(b, 0);
    reply_done(a);
}

static void
cluster_nodes_reply(struct admin_args *a)
{
    struct buf line;
    struct client_laddr la;
    client_local_addr(a->c, &la);
    buf_init(&line);
    buf_printf(&line, "%s %s:%u@0 myself,master - 0 0 1 connected 0-%d\n",
               a->c->w->proxy_id, la.host, la.port, SLOT_COUNT - 1);
    buf_add_verbatim(&a->r->rep, line.data, line.len, a->c->resp3);
    buf_deinit(&line);
    reply_done(a);
}

static void
cluster_shards_reply(struct admin_args *a)
{
    struct buf *b = &a->r->rep;
    struct client_laddr la;
    client_local_addr(a->c, &la);
    int resp3 = a->c->resp3;
    buf_add_array(b, 1);
    buf_add_map(b, 2, resp3);
    buf_add_bulk_str(b, "slots");
    buf_add_array(b, 2);
    buf_add_int(b, 0);
    buf_add_int(b, SLOT_COUNT - 1);
    buf_add_bulk_str(b, "nodes");
    buf_add_array(b, 1);
    buf_add_map(b, 7, resp3);
    buf_add_bulk_str(b, "id");
    buf_add_bulk_str(b, a->c->w->proxy_id);
    buf_add_bulk_str(b, "port");
    buf_add_int(b, la.port);
    buf_add_bulk_str(b, "ip");
    buf_add_bulk_str(b, la.host);
    buf_add_bulk_str(b, "endpoint");
    buf_add_bulk_str(b, la.host);
    buf_add_bulk_str(b, "role");
    buf_add_bulk_str(b, "master");
    buf_add_bulk_str(b, "replication-offset");
    buf_add_int(b, 0);
    buf_add_bulk_str(b, "health");
    buf_add_bulk_str(b, "online");
    reply_done(a);
}

/* The shard id of the proxy's one node (CLUSTER MYSHARDID): 40 hex
 * digits derived from its node id, so stable while the node id is, and
 * different from it, as a Redis shard id is from its nodes' ids. */
static void
cluster_shard_id(const char *node_id, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t h = command_hash(node_id, strlen(node_id));
    uint64_t x = ((uint64_t)h << 32) | (h ^ 0x9e3779b9u);
    for (int i = 0; i < 40; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = hex[x & 15];
    }
    out[40] = '\0';
}

static void
cmd_cluster(struct admin_args *a)
{
    const char *sub = a->r->cmd->name;
    struct worker *w = a->c->w;

    if (strcmp(sub, "keyslot") == 0) {
        buf_add_int(&a->r->rep, keyslot(ARG(a, 2), ARGLEN(a, 2)));
        reply_done(a);
    } else if (strcmp(sub, "info") == 0) {
        struct buf body;
        buf_init(&body);
        buf_printf(&body,
                   "cluster_state:%s\r\ncluster_slots_assigned:%u\r\n"
                   "cluster_slots_ok:%u\r\ncluster_slots_pfail:0\r\n"
                   "cluster_slots_fail:0\r\ncluster_known_nodes:%u\r\n"
                   "cluster_size:%u\r\ncluster_current_epoch:%llu\r\n",
                   w->map->covered == SLOT_COUNT ? "ok" : "fail",
                   w->map->covered, w->map->covered, w->map->nnodes,
                   w->map->nmasters, (unsigned long long)w->map_epoch);
        buf_add_verbatim(&a->r->rep, body.data, body.len, a->c->resp3);
        buf_deinit(&body);
        reply_done(a);
    } else if (strcmp(sub, "myid") == 0) {
        buf_add_bulk_str(&a->r->rep, w->proxy_id);
        reply_done(a);
    } else if (strcmp(sub, "myshardid") == 0) {
        char shard[41];
        cluster_shard_id(w->proxy_id, shard);
        buf_add_bulk_str(&a->r->rep, shard);
        reply_done(a);
    } else if (strcmp(sub, "slots") == 0) {
        cluster_slots_reply(a);
    } else if (strcmp(sub, "nodes") == 0) {
        cluster_nodes_reply(a);
    } else if (strcmp(sub, "shards") == 0) {
        cluster_shards_reply(a);
    } else {
        command_err_refused(&a->r->rep, a->r->cmd);
        reply_done(a);
    }
}

/* SLOWLOG GET [n] | LEN | RESET over every worker's ring (view.c), with
 * the backend node as a 7th field of each entry. */
static void
cmd_slowlog(struct admin_args *a)
{
    const char *sub = a->r->cmd->name;
    struct worker *w = a->c->w;
    if (strcmp(sub, "get") == 0) {
        long long n = 10;
        if (a->argc > 2 && (sp_str2ll(ARG(a, 2), ARGLEN(a, 2), &n) != 0 ||
                            n < -1)) {
            reply_err(a, "ERR count should be greater than or equal to -1");
            return;
        }
        view_start(w, a->r, VIEW_SLOWLOG_GET, n);
    } else if (strcmp(sub, "len") == 0) {
        view_start(w, a->r, VIEW_SLOWLOG_LEN, 0);
    } else if (strcmp(sub, "reset") == 0) {
        view_start(w, a->r, VIEW_SLOWLOG_RESET, 0);
    } else {
        command_err_refused(&a->r->rep, a->r->cmd);
        reply_done(a);
    }
}

/* ROLE: the proxy is a master to its clients. */
static void
cmd_role(struct admin_args *a)
{
    buf_add_array(&a->r->rep, 3);
    buf_add_bulk_str(&a->r->rep, "master");
    buf_add_int(&a->r->rep, 0);
    buf_add_array(&a->r->rep, 0);
    reply_done(a);
}

/*
 * The replica sync status of master ms (NULL: not polled yet) as two
 * elements of a PROXY TOPOLOGY row: its healthy replicas (nil before its
 * first answer), then [replica, link_up, lag_bytes or nil] per replica.
 */
static void
topology_replicas(struct buf *b, const struct replstat_master *ms)
{
    if (ms == NULL || ms->polled_ms == 0) {
        buf_add_nil(b);
        buf_add_array(b, 0);
        return;
    }
    buf_add_int(b, replstat_healthy(ms));
    buf_add_array(b, ms->nreplicas);
    for (uint32_t i = 0; i < ms->nreplicas; i++) {
        const struct replstat_replica *r = &ms->replicas[i];
        char name[300];
        snprintf(name, sizeof(name),
                 strchr(r->ip, ':') != NULL ? "[%s]:%u" : "%s:%u", r->ip,
                 r->port);
        buf_add_array(b, 3);
        buf_add_bulk_str(b, name);
        buf_add_int(b, r->link_up);
        if (r->lag_known)
            buf_add_int(b, (long long)r->lag_bytes);
        else
            buf_add_nil(b);
    }
}

/* PROXY TOPOLOGY: [start, end, "host:port", healthy replicas, replicas]
 * per slot range of the map (see topology_replicas). */
static void
proxy_topology(struct admin_args *a)
{
    const struct slotmap *m = a->c->w->map;
    struct replstat *rs = shared_replstat(a->c->w->shared);
    struct buf body;
    long long n = 0;
    buf_init(&body);
    for (int slot = 0; slot < SLOT_COUNT;) {
        int node = slotmap_master_of(m, (uint16_t)slot), end = slot;
        while (end + 1 < SLOT_COUNT &&
               slotmap_master_of(m, (uint16_t)(end + 1)) == node)
            end++;
        buf_add_array(&body, 5);
        buf_add_int(&body, slot);
        buf_add_int(&body, end);
        if (node < 0) {
            buf_add_nil(&body);
            topology_replicas(&body, NULL);
        } else {
            char name[300];
            snprintf(name, sizeof(name), "%s:%u", m->nodes[node].host,
                     m->nodes[node].port);
            buf_add_bulk_str(&body, name);
            topology_replicas(&body, replstat_find(rs, m->nodes[node].host,
                                                   m->nodes[node].port));
        }
        n++;
        slot = end + 1;
    }
    replstat_put(rs);
    buf_add_array(&a->r->rep, n);
    buf_append(&a->r->rep, body.data, body.len);
    buf_deinit(&body);
    reply_done(a);
}

#define HOTKEYS_COUNT_DEFAULT 10   /* PROXY HOTKEYS without COUNT */
#define HOTKEYS_COUNT_MAX 1000
#define BIGKEYS_COUNT_DEFAULT 10   /* PROXY BIGKEYS without COUNT */
#define BIGKEYS_COUNT_MAX 100000

/* The [COUNT n] of PROXY HOTKEYS / BIGKEYS into *count (left alone
 * without one): 0, or -1 when a was answered with the error. */
static int
proxy_count_arg(struct admin_args *a, long long max, long long *count)
{
    if (a->argc != 2 &&
        (a->argc != 4 || !sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "count"))) {
        reply_err(a, "ERR syntax error");
        return -1;
    }
    if (a->argc == 4 && (sp_str2ll(ARG(a, 3), ARGLEN(a, 3), count) != 0 ||
                         *count < 1 || *count > max)) {
        reply_err(a, "ERR value is not an integer or out of range");
        return -1;
    }
    return 0;
}

/* PROXY BIGKEYS [COUNT n]: the n (10) newest big requests and replies
 * over every worker's ring; see bigkeys_reply for the layout. */
static void
proxy_bigkeys(struct admin_args *a)
{
    long long count = BIGKEYS_COUNT_DEFAULT;
    if (proxy_count_arg(a, BIGKEYS_COUNT_MAX, &count) != 0)
        return;
    shared_bigkeys(a->c->w->shared, &a->r->rep, count);
    reply_done(a);
}

/* PROXY HOTKEYS [COUNT n]: the n (10) hottest keys merged over every
 * worker's sketch, with the master serving each one's slot (from this
 * worker's map); see hotkeys_reply for the layout. An empty array when
 * monitor.hotkeys.sample is 0. */
static void
proxy_hotkeys(struct admin_args *a)
{
    long long count = HOTKEYS_COUNT_DEFAULT;
    if (proxy_count_arg(a, HOTKEYS_COUNT_MAX, &count) != 0)
        return;
    struct hotkeys_item *items = sp_malloc((size_t)count * sizeof(*items));
    size_t n = shared_hotkeys(a->c->w->shared, items, (size_t)count, NULL);
    const struct slotmap *m = a->c->w->map;
    char(*names)[300] = sp_malloc((n + 1) * sizeof(*names));
    const char **masters = sp_malloc((n + 1) * sizeof(*masters));
    for (size_t i = 0; i < n; i++) {
        int node = slotmap_master_of(m, items[i].slot);
        masters[i] = NULL;
        if (node < 0)
            continue;
        snprintf(names[i], sizeof(names[i]), "%s:%u", m->nodes[node].host,
                 m->nodes[node].port);
        masters[i] = names[i];
    }
    hotkeys_reply(&a->r->rep, items, n, masters);
    sp_free(masters);
    sp_free(names);
    sp_free(items);
    reply_done(a);
}

static void
config_get_row(void *arg, const char *name, const char *value)
{
    struct buf *body = arg;
    buf_add_bulk_str(body, name);
    buf_add_bulk_str(body, value);
}

/* PROXY CONFIG GET [pattern ...]: the configuration in force, from the
 * option table (config_get): name/value pairs of every option whose
 * dotted name matches a glob pattern, all without one; passwords as
 * "***". */
static void
proxy_config_get(struct admin_args *a)
{
    uint32_t np = a->argc - 3;
    char **pats = sp_calloc(np ? np : 1, sizeof(*pats));
    struct buf body;
    buf_init(&body);
    for (uint32_t i = 0; i < np; i++)
        pats[i] = sp_strndup(ARG(a, 3 + i), ARGLEN(a, 3 + i));
    size_t n = config_get(a->c->w->conf, (const char *const *)pats, np,
                          config_get_row, &body);
    buf_add_array(&a->r->rep, (long long)(2 * n));
    if (body.len)
        buf_append(&a->r->rep, body.data, body.len);
    buf_deinit(&body);
    for (uint32_t i = 0; i < np; i++)
        sp_free(pats[i]);
    sp_free(pats);
    reply_done(a);
}

static const char *const route_names[] = {
    [CMD_ROUTE_KEYED] = "keyed",     [CMD_ROUTE_SPLIT] = "split",
    [CMD_ROUTE_ANY] = "any",         [CMD_ROUTE_ALL] = "all",
    [CMD_ROUTE_LOCAL] = "local",     [CMD_ROUTE_TXN] = "txn",
    [CMD_ROUTE_PUBSUB] = "pubsub",   [CMD_ROUTE_BLOCKING] = "blocking",
    [CMD_ROUTE_REFUSED] = "refused",
};

static const char *const merge_names[] = {
    [CMD_MERGE_NONE] = "none",       [CMD_MERGE_ARRAY] = "array",
    [CMD_MERGE_OK] = "ok",           [CMD_MERGE_SUM] = "sum",
    [CMD_MERGE_CONCAT] = "concat",   [CMD_MERGE_SAME] = "same",
    [CMD_MERGE_AND] = "and",         [CMD_MERGE_FIRST] = "first",
    [CMD_MERGE_SCAN] = "scan",       [CMD_MERGE_UNION] = "union",
    [CMD_MERGE_PAIRSUM] = "pairsum", [CMD_MERGE_INFO] = "info",
    [CMD_MERGE_SLOTSTATS] = "slotstats",
};

static const char *const op_names[] = {
    [CMD_OP_NONE] = "none",         [CMD_OP_PING] = "ping",
    [CMD_OP_ECHO] = "echo",         [CMD_OP_QUIT] = "quit",
    [CMD_OP_SELECT] = "select",     [CMD_OP_HELLO] = "hello",
    [CMD_OP_INFO] = "info",         [CMD_OP_AUTH] = "auth",
    [CMD_OP_RESET] = "reset",       [CMD_OP_OK] = "ok",
    [CMD_OP_ROLE] = "role",         [CMD_OP_CLIENT] = "client",
    [CMD_OP_COMMAND] = "command",   [CMD_OP_SLOWLOG] = "slowlog",
    [CMD_OP_CLUSTER] = "cluster",   [CMD_OP_MULTI] = "multi",
    [CMD_OP_EXEC] = "exec",         [CMD_OP_DISCARD] = "discard",
    [CMD_OP_WATCH] = "watch",       [CMD_OP_UNWATCH] = "unwatch",
    [CMD_OP_SUBSCRIBE] = "subscribe", [CMD_OP_PSUBSCRIBE] = "psubscribe",
    [CMD_OP_SSUBSCRIBE] = "ssubscribe",
    [CMD_OP_UNSUBSCRIBE] = "unsubscribe",
    [CMD_OP_PUNSUBSCRIBE] = "punsubscribe",
    [CMD_OP_SUNSUBSCRIBE] = "sunsubscribe",
    [CMD_OP_PUBLISH] = "publish",   [CMD_OP_WAIT] = "wait",
};

static const char *const role_names[] = {
    [ROLE_READ_ONLY] = "read-only", [ROLE_READ_WRITE] = "read-write",
    [ROLE_ADMIN] = "admin",
};

#define NAME_OF(tab, i) ((size_t)(i) < SP_ARRAY_LEN(tab) ? tab[i] : "?")

/* Why the proxy does not run c as routed (refused, or disabled by
 * disabled_commands on its top-level command top): the error text it
 * answers with, without the '-' and CRLF; "" when it runs. */
static void
route_note(struct buf *b, const struct command *c, const struct command *top,
           const struct config *conf)
{
    struct buf e;
    buf_init(&e);
    if (config_command_disabled(conf, top))
        buf_append_str(&e, "-ERR slotproxy: disabled by the proxy "
                           "configuration\r\n");
    else if (c->route == CMD_ROUTE_REFUSED)
        command_err_refused(&e, c);
    if (e.len >= 3)
        buf_add_bulk(b, e.data + 1, e.len - 3);
    else
        buf_add_bulk_str(b, "");
    buf_deinit(&e);
}

/* Where c comes from: "both" (learned, and the built-in table has it),
 * "built-in" (no master reported it), "learned" (only the cluster knows
 * it). top: its top-level command (c itself for one). */
static const char *
route_source(const struct command *c, const struct command *top)
{
    if (c->builtin != NULL)
        return "both";
    const struct command *g = command_lookup(top->name, strlen(top->name));
    if (g != NULL && c != top)
        g = command_lookup_sub(g, c->name, strlen(c->name));
    return g != NULL ? "built-in" : "learned";
}

/* [fullname, route, merge, built-in (1) or learned only (0), handler,
 * least role, note (why refused or disabled, else ""), source (see
 * route_source), arity] */
static void
route_row(struct buf *b, const struct command *c, const struct command *top,
          const struct config *conf)
{
    buf_add_array(b, 9);
    buf_add_bulk_str(b, c->fullname);
    buf_add_bulk_str(b, NAME_OF(route_names, c->route));
    buf_add_bulk_str(b, NAME_OF(merge_names, c->merge));
    buf_add_int(b, c->builtin != NULL);
    buf_add_bulk_str(b, NAME_OF(op_names, c->op));
    buf_add_bulk_str(b, NAME_OF(role_names, auth_min_role(c)));
    route_note(b, c, top, conf);
    buf_add_bulk_str(b, route_source(c, top));
    buf_add_int(b, c->arity);
}

/* PROXY COMMAND ROUTES: how the table in force routes every command and
 * subcommand (scripts/gen_commands.py --live writes the docs from it). */
static void
proxy_command_routes(struct admin_args *a)
{
    const struct cmdtable *t = a->c->w->cmdtab;
    struct buf body;
    long long n = 0;

    buf_init(&body);
    for (size_t i = 0; i < cmdtable_count(t); i++) {
        const struct command *c = cmdtable_at(t, i);
        route_row(&body, c, c, a->c->w->conf);
        n++;
        for (uint16_t k = 0; k < c->nsubcmds; k++, n++)
            route_row(&body, &c->subcmds[k], c, a->c->w->conf);
    }
    buf_add_array(&a->r->rep, n);
    buf_append(&a->r->rep, body.data, body.len);
    buf_deinit(&body);
    reply_done(a);
}

/* PROXY INFO | STATS | TOPOLOGY | HOTKEYS [COUNT n] | BIGKEYS [COUNT n] |
 * CONFIG GET [pattern ...] | COMMAND ROUTES: admin users only. */
static void
cmd_proxy(struct admin_args *a)
{
    if (a->c->role != ROLE_ADMIN) {
        buf_printf(&a->r->rep, "-" ERR_NOPERM_FMT "\r\n", "proxy");
        reply_done(a);
        return;
    }
    const char *sub = a->argc > 1 ? ARG(a, 1) : "";
    size_t sl = a->argc > 1 ? ARGLEN(a, 1) : 0;
    if (sp_strcaseeq(sub, sl, "info") || sp_strcaseeq(sub, sl, "stats")) {
        struct buf body;
        buf_init(&body);
        info_section(&body, a->c->w, "proxy");
        if (sp_strcaseeq(sub, sl, "stats")) {
            info_section(&body, a->c->w, "stats");
            info_section(&body, a->c->w, "clients");
        }
        buf_add_bulk(&a->r->rep, body.data, body.len);
        buf_deinit(&body);
        reply_done(a);
    } else if (sp_strcaseeq(sub, sl, "topology")) {
        proxy_topology(a);
    } else if (sp_strcaseeq(sub, sl, "hotkeys")) {
        proxy_hotkeys(a);
    } else if (sp_strcaseeq(sub, sl, "bigkeys")) {
        proxy_bigkeys(a);
    } else if (sp_strcaseeq(sub, sl, "config") && a->argc >= 3 &&
               sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "get")) {
        proxy_config_get(a);
    } else if (sp_strcaseeq(sub, sl, "command") && a->argc == 3 &&
               sp_strcaseeq(ARG(a, 2), ARGLEN(a, 2), "routes")) {
        proxy_command_routes(a);
    } else {
        reply_err(a, "ERR PROXY subcommands: INFO, STATS, TOPOLOGY, "
                     "HOTKEYS [COUNT n], BIGKEYS [COUNT n], CONFIG GET "
                     "[name], COMMAND ROUTES");
    }
}

int
admin_proxy(struct client *c, struct request *r, uint32_t argc,
            const struct resp_arg *argv, const char *base)
{
    if (!sp_strcaseeq(base + argv[0].off, argv[0].len, "proxy"))
        return 0;
    struct admin_args a = {c, r, argc, argv, base};
    cmd_proxy(&a);
    return 1;
}

/* The proxy's handlers, by the command table's handler column. */
static const admin_fn admin_handlers[CMD_OP_COUNT] = {
    [CMD_OP_PING] = cmd_ping,       [CMD_OP_ECHO] = cmd_echo,
    [CMD_OP_QUIT] = cmd_quit,       [CMD_OP_SELECT] = cmd_select,
    [CMD_OP_HELLO] = cmd_hello,     [CMD_OP_INFO] = cmd_info,
    [CMD_OP_CLIENT] = cmd_client,   [CMD_OP_COMMAND] = cmd_command,
    [CMD_OP_CLUSTER] = cmd_cluster, [CMD_OP_AUTH] = cmd_auth,
    [CMD_OP_OK] = cmd_ok,           [CMD_OP_ROLE] = cmd_role,
    [CMD_OP_SLOWLOG] = cmd_slowlog,
};

void
admin_exec(struct client *c, struct request *r, const struct command *cmd,
           uint32_t argc, const struct resp_arg *argv, const char *base)
{
    struct admin_args a = {c, r, argc, argv, base};

    if (admin_handlers[cmd->op] != NULL) {
        admin_handlers[cmd->op](&a);
        return;
    }
    command_err_refused(&r->rep, cmd);
    reply_done(&a);
}
