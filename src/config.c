/* slotproxy - BSD-2-Clause
 *
 * Configuration: YAML text -> struct config. Every option is one row of
 * config_directives (section, name, type, field, default, bounds); the
 * parser loads the YAML document with libyaml, walks its mappings and
 * dispatches each key to its row, converting the value to a number, a
 * string or an address list. Bounds and cross-option rules (seeds must
 * not be empty) are checked in a separate validation pass, so that parsing
 * answers "is this well-formed?" and validation "is this sensible?".
 * Every error is "NAME:LINE:COLUMN: message" pointing at the offending
 * node. No sockets, no libevent: this file is tested in-process.
 */
#include "build_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "alloc.h"
#include "bigkeys.h"
#include "command.h"
#include "config.h"
#include "cpus.h"
#include "hotkeys.h"
#include "log.h"
#include "util.h"

#define CONF_MS_DAY (24LL * 3600 * 1000)
#define CONF_KB 1024LL
#define CONF_MB (1024LL * 1024)
#define CONF_GB (1024LL * 1024 * 1024)
#define CONF_WORKERS_MAX 1024

/* How a directive's YAML value is read and where it is stored. */
enum config_type {
    CONF_T_LISTEN,              /* list of addresses, unix: allowed */
    CONF_T_SEEDS,               /* list of TCP addresses */
    CONF_T_WORKERS,             /* int field: integer or "auto" */
    CONF_T_LOG_LEVEL,           /* int field: enum log_level by name */
    CONF_T_LOG_FORMAT,          /* int field: enum log_format by name */
    CONF_T_PATH,                /* char * field: path, "stderr" = NULL */
    CONF_T_INT,                 /* uint32_t field: plain integer */
    CONF_T_DURATION,            /* uint32_t field: ms, or 250ms/5s/2m/1h */
    CONF_T_SIZE,                /* uint64_t field: bytes, or 64kb/512mb/1gb */
    CONF_T_COMMANDS,            /* list of command names (disabled_commands) */
    CONF_T_SECRET,              /* char * field: string, ${ENV} expanded */
    CONF_T_USERS,               /* auth.users: list of {name, password, role} */
    CONF_T_READ_FROM,           /* int field: master|replica|prefer-replica */
    CONF_T_BOOL,                /* uint32_t field: true/false, yes/no */
    CONF_T_READINESS,           /* int field: all-slots|any-slot */
    CONF_T_IO,                  /* int field: enum io_mode by name */
};

/* One configuration option. */
struct config_directive {
    const char *section;        /* "log", "cluster", "clients"; NULL = top */
    const char *name;           /* key inside its section */
    enum config_type type;      /* parser and validator to use */
    size_t offset;              /* field in struct config */
    size_t size;                /* sizeof that field (numbers: 4 or 8) */
    size_t count_offset;        /* address lists: their size_t count */
    long long def;              /* default (numeric types only) */
    long long min;              /* inclusive bounds (numeric types only) */
    long long max;
    enum config_reload reload;  /* how a new value takes effect on SIGHUP:
                                 * CONFIG_LIVE, CONFIG_NEW_CONNS or
                                 * CONFIG_RESTART (what runs is kept) */
};

#define CONF_FIELD(f) \
    offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define CONF_NUM(sec, name, type, f, def, min, max, reload) \
    { sec, name, type, CONF_FIELD(f), 0, def, min, max, reload }
#define CONF_ADDRS(sec, name, type, f, nf, reload) \
    { sec, name, type, CONF_FIELD(f), offsetof(struct config, nf), 0, 0, 0, \
      reload }

/*
 * The option table. Defaults here are the ones documented in config.h,
 * conf/slotproxy.yml and slotproxy.yml(5); keep all four in step. The last
 * column says what a reload does with a new value: CONFIG_LIVE when the
 * workers read the field each time they use it (or main applies it),
 * CONFIG_NEW_CONNS when it is read as a connection opens, CONFIG_RESTART
 * when what it sized is built once (the old value stays in force).
 */
static const char *const io_mode_names[] = {"auto", "epoll", "io_uring"};

int
io_mode_from_name(const char *s)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(io_mode_names); i++)
        if (strcmp(s, io_mode_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *
io_mode_name(int mode)
{
    return mode >= 0 && (size_t)mode < SP_ARRAY_LEN(io_mode_names)
               ? io_mode_names[mode] : "?";
}

static const struct config_directive config_directives[] = {
    CONF_ADDRS(NULL, "listen", CONF_T_LISTEN, listen, nlisten, CONFIG_LIVE),
    CONF_NUM(NULL, "workers", CONF_T_WORKERS, workers,
             1, 1, CONF_WORKERS_MAX, CONFIG_RESTART),
    CONF_NUM(NULL, "io", CONF_T_IO, io, IO_AUTO, IO_AUTO, IO_URING,
             CONFIG_RESTART),

    CONF_NUM("log", "level", CONF_T_LOG_LEVEL, log_level,
             LOG_NOTICE, LOG_ERROR, LOG_DEBUG, CONFIG_LIVE),
    CONF_NUM("log", "file", CONF_T_PATH, log_file, 0, 0, 0, CONFIG_LIVE),
    CONF_NUM("log", "format", CONF_T_LOG_FORMAT, log_format,
             LOG_FORMAT_TEXT, LOG_FORMAT_TEXT, LOG_FORMAT_JSON, CONFIG_LIVE),

    CONF_ADDRS("cluster", "seeds", CONF_T_SEEDS, seeds, nseeds, CONFIG_LIVE),
    CONF_NUM("cluster", "connect_timeout", CONF_T_DURATION,
             connect_timeout_ms, 1000, 1, CONF_MS_DAY, CONFIG_NEW_CONNS),
    CONF_NUM("cluster", "request_timeout", CONF_T_DURATION,
             request_timeout_ms, 5000, 1, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM("cluster", "redirect_limit", CONF_T_INT,
             redirect_limit, 5, 0, 100, CONFIG_LIVE),
    CONF_NUM("cluster", "refresh_interval", CONF_T_DURATION,
             refresh_interval_ms, 10000, 100, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM("cluster", "connections_per_node", CONF_T_INT,
             node_connections, 1, 1, 64, CONFIG_RESTART),

    CONF_NUM("clients", "max_clients", CONF_T_INT,
             max_clients, 10000, 1, 10000000, CONFIG_LIVE),
    CONF_NUM("clients", "max_request_size", CONF_T_SIZE,
             max_request_size, 512 * CONF_MB, CONF_KB, 4 * CONF_GB,
             CONFIG_LIVE),
    CONF_NUM("clients", "max_multibulk_length", CONF_T_INT,
             max_multibulk, 1048576, 1, INT_MAX, CONFIG_LIVE),
    CONF_NUM("clients", "max_pipeline", CONF_T_INT,
             max_pipeline, 10000, 1, 1000000, CONFIG_LIVE),
    CONF_NUM("clients", "output_limit", CONF_T_SIZE,
             output_limit, 32 * CONF_MB, CONF_KB, 64 * CONF_GB, CONFIG_LIVE),
    CONF_NUM("clients", "idle_timeout", CONF_T_DURATION,
             idle_timeout_ms, 0, 0, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM("clients", "output_stall_timeout", CONF_T_DURATION,
             output_stall_timeout_ms, 60000, 0, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM("clients", "max_pinned", CONF_T_INT,
             max_pinned, 1000, 1, 1000000, CONFIG_LIVE),
    CONF_NUM("clients", "max_pinned_per_node", CONF_T_INT,
             max_pinned_per_node, 0, 0, 1000000, CONFIG_LIVE),
    CONF_NUM("clients", "max_pinned_per_client", CONF_T_INT,
             max_pinned_per_client, 0, 0, 1000000, CONFIG_LIVE),
    CONF_NUM("clients", "max_fanout_reply", CONF_T_SIZE,
             max_fanout_reply, 64 * CONF_MB, CONF_KB, 64 * CONF_GB,
             CONFIG_LIVE),
    CONF_NUM("clients", "max_multi_size", CONF_T_SIZE,
             max_multi_size, 16 * CONF_MB, CONF_KB, 4 * CONF_GB, CONFIG_LIVE),
    CONF_NUM("clients", "max_multi_commands", CONF_T_INT,
             max_multi_commands, 100000, 1, INT_MAX, CONFIG_LIVE),
    CONF_NUM(NULL, "max_memory", CONF_T_SIZE,
             max_memory, 64 * CONF_MB, 0, 1024 * CONF_GB, CONFIG_LIVE),
    CONF_ADDRS(NULL, "disabled_commands", CONF_T_COMMANDS, disabled,
               ndisabled, CONFIG_LIVE),
    CONF_ADDRS("metrics", "listen", CONF_T_SEEDS, metrics, nmetrics,
               CONFIG_LIVE),
    CONF_NUM("metrics", "readiness", CONF_T_READINESS, metrics_readiness,
             READINESS_ALL_SLOTS, READINESS_ALL_SLOTS, READINESS_ANY_SLOT,
             CONFIG_LIVE),
    CONF_ADDRS("tls", "listen", CONF_T_LISTEN, tls_listen, ntls_listen,
               CONFIG_LIVE),
    CONF_NUM("tls", "cert", CONF_T_SECRET, tls_cert, 0, 0, 0,
             CONFIG_NEW_CONNS),
    CONF_NUM("tls", "key", CONF_T_SECRET, tls_key, 0, 0, 0,
             CONFIG_NEW_CONNS),
    CONF_NUM("tls", "ca", CONF_T_SECRET, tls_ca, 0, 0, 0,
             CONFIG_NEW_CONNS),
    CONF_NUM("tls", "require_client_cert", CONF_T_BOOL,
             tls_require_client_cert, 0, 0, 1, CONFIG_NEW_CONNS),
    CONF_NUM("backend_tls", "enabled", CONF_T_BOOL, backend_tls, 0, 0, 1,
             CONFIG_NEW_CONNS),
    CONF_NUM("backend_tls", "ca", CONF_T_SECRET, backend_tls_ca, 0, 0, 0,
             CONFIG_NEW_CONNS),
    CONF_NUM("backend_tls", "cert", CONF_T_SECRET, backend_tls_cert, 0, 0, 0,
             CONFIG_NEW_CONNS),
    CONF_NUM("backend_tls", "key", CONF_T_SECRET, backend_tls_key, 0, 0, 0,
             CONFIG_NEW_CONNS),
    CONF_NUM("backend_tls", "server_name", CONF_T_SECRET,
             backend_tls_server_name, 0, 0, 0, CONFIG_NEW_CONNS),
    CONF_NUM("backend_tls", "verify", CONF_T_BOOL, backend_tls_verify,
             1, 0, 1, CONFIG_NEW_CONNS),
    CONF_NUM("slowlog", "threshold", CONF_T_DURATION, slowlog_threshold_ms,
             10, 0, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM("slowlog", "max_len", CONF_T_INT, slowlog_max_len,
             128, 0, 100000, CONFIG_LIVE),
    CONF_NUM("monitor", "big_reply_bytes", CONF_T_SIZE, big_reply_bytes,
             BIGKEYS_REPLY_BYTES_DEFAULT, 0, 64 * CONF_GB, CONFIG_LIVE),
    CONF_NUM("monitor", "big_request_bytes", CONF_T_SIZE, big_request_bytes,
             BIGKEYS_REQUEST_BYTES_DEFAULT, 0, 64 * CONF_GB, CONFIG_LIVE),
    CONF_NUM("monitor", "big_reply_elements", CONF_T_INT, big_reply_elements,
             BIGKEYS_REPLY_ELEMENTS_DEFAULT, 0, INT_MAX, CONFIG_LIVE),
    CONF_NUM("monitor.hotkeys", "sample", CONF_T_INT, hotkeys_sample,
             HOTKEYS_SAMPLE_DEFAULT, 0, 1000000, CONFIG_LIVE),
    CONF_NUM("monitor.hotkeys", "k", CONF_T_INT, hotkeys_k,
             HOTKEYS_K_DEFAULT, 1, HOTKEYS_K_MAX, CONFIG_LIVE),
    CONF_NUM("monitor.hotkeys", "hide_keys", CONF_T_BOOL, hotkeys_hide_keys,
             0, 0, 1, CONFIG_LIVE),
    CONF_NUM("expiry_jitter", "percent", CONF_T_INT, jitter_percent,
             0, 0, 100, CONFIG_LIVE),
    CONF_NUM("expiry_jitter", "min_ttl", CONF_T_DURATION, jitter_min_ttl_ms,
             60000, 0, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM(NULL, "shutdown_grace", CONF_T_DURATION,
             shutdown_grace_ms, 5000, 0, CONF_MS_DAY, CONFIG_LIVE),
    CONF_NUM("auth", "password", CONF_T_SECRET, auth_password, 0, 0, 0,
             CONFIG_LIVE),
    CONF_ADDRS("auth", "users", CONF_T_USERS, users, nusers, CONFIG_LIVE),
    CONF_NUM("auth", "max_failures", CONF_T_INT, auth_max_failures,
             10, 1, 1000000, CONFIG_LIVE),
    CONF_NUM("cluster", "read_from", CONF_T_READ_FROM, read_from,
             READ_MASTER, READ_MASTER, READ_PREFER_REPLICA, CONFIG_LIVE),
    CONF_NUM("cluster", "max_replica_lag", CONF_T_SIZE, max_replica_lag,
             CONF_MB, 0, 64 * CONF_GB, CONFIG_LIVE),
    CONF_NUM("cluster", "replica_poll_interval", CONF_T_DURATION,
             replica_poll_interval_ms, 1000, 100, 60000, CONFIG_LIVE),
    CONF_NUM("cluster", "username", CONF_T_SECRET, cluster_username,
             0, 0, 0, CONFIG_NEW_CONNS),
    CONF_NUM("cluster", "password", CONF_T_SECRET, cluster_password,
             0, 0, 0, CONFIG_NEW_CONNS),
};

#define CONF_NDIRECTIVES SP_ARRAY_LEN(config_directives)

/* What the parse pass saw for one directive, for the validation pass. */
struct config_seen {
    int set;                    /* the key appeared in the file */
    yaml_mark_t mark;           /* where its value starts */
    long long num;              /* numeric types: value before bounds check */
};

/* State of one config_parse_string call. */
struct config_parser {
    const char *name;           /* file name for messages (borrowed) */
    yaml_document_t *doc;       /* loaded document (borrowed) */
    struct config *c;           /* config being filled (owned by caller) */
    char *err;                  /* caller's error buffer */
    size_t errlen;
    struct config_seen seen[CONF_NDIRECTIVES]; /* indexed like the table */
    int have_cluster;           /* a 'cluster' key exists ... */
    yaml_mark_t cluster_mark;   /* ... here */
};

static void
conf_vformat(char *err, size_t errlen, const char *name, size_t line,
             size_t col, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static void
conf_vformat(char *err, size_t errlen, const char *name, size_t line,
             size_t col, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return;
    int n = snprintf(err, errlen, "%s:%zu:%zu: ", name, line, col);
    if (n < 0 || (size_t)n >= errlen)
        return;
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

/* Report an error at a libyaml mark (0-based) as NAME:LINE:COLUMN (1-based).
 * Always returns -1 so callers can "return conf_error(...)". */
static int
conf_error(struct config_parser *p, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
conf_error(struct config_parser *p, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_vformat(p->err, p->errlen, p->name, mark.line + 1, mark.column + 1,
                 fmt, ap);
    va_end(ap);
    return -1;
}

static void *
conf_field(struct config *c, const struct config_directive *d)
{
    return (char *)c + d->offset;
}

/* Store a numeric value into its field, whatever the field's width. The
 * value is already within the row's bounds, so it fits. */
static void
conf_store_num(struct config *c, const struct config_directive *d,
               long long v)
{
    if (d->size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(conf_field(c, d), &v32, sizeof(v32));
    } else {
        SP_ASSERT(d->size == sizeof(uint64_t));
        uint64_t v64 = (uint64_t)v;
        memcpy(conf_field(c, d), &v64, sizeof(v64));
    }
}

static int
conf_is_numeric(enum config_type t)
{
    return t == CONF_T_WORKERS || t == CONF_T_LOG_LEVEL ||
           t == CONF_T_LOG_FORMAT || t == CONF_T_INT ||
           t == CONF_T_DURATION || t == CONF_T_SIZE || t == CONF_T_READ_FROM ||
           t == CONF_T_BOOL || t == CONF_T_READINESS || t == CONF_T_IO;
}

/*
 * Listen and seed addresses are not set here: they need allocation, and
 * config_parse_string applies the default listen address itself when the
 * file has none. Everything else gets its default from the table.
 */
void
config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const struct config_directive *d = &config_directives[i];
        if (conf_is_numeric(d->type))
            conf_store_num(c, d, d->def);
    }
}

void
config_addr_deinit(struct sp_addr *a)
{
    sp_free(a->host);
    sp_free(a->path);
    a->host = NULL;
    a->path = NULL;
}

static void
conf_addrs_free(struct sp_addr *addrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        config_addr_deinit(&addrs[i]);
    sp_free(addrs);
}

/* Secrets are zeroed before their memory is given back. */
static void
conf_wipe_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    while (*v != '\0')
        *v++ = '\0';
    sp_free(s);
}

void
config_free(struct config *c)
{
    if (c == NULL)
        return;
    conf_addrs_free(c->listen, c->nlisten);
    conf_addrs_free(c->seeds, c->nseeds);
    conf_addrs_free(c->metrics, c->nmetrics);
    conf_addrs_free(c->tls_listen, c->ntls_listen);
    sp_free(c->tls_cert);
    sp_free(c->tls_key);
    sp_free(c->tls_ca);
    sp_free(c->backend_tls_ca);
    sp_free(c->backend_tls_cert);
    sp_free(c->backend_tls_key);
    sp_free(c->backend_tls_server_name);
    sp_free(c->disabled);
    for (size_t i = 0; i < c->nusers; i++) {
        sp_free(c->users[i].name);
        conf_wipe_free(c->users[i].password);
        sp_free(c->users[i].backend_user);
        conf_wipe_free(c->users[i].backend_password);
    }
    sp_free(c->users);
    conf_wipe_free(c->auth_password);
    sp_free(c->cluster_username);
    conf_wipe_free(c->cluster_password);
    sp_free(c->log_file);
    sp_free(c->file);
    sp_free(c->lines);
    sp_free(c);
}

/* ---- addresses ---------------------------------------------------- */

static int
conf_addr_fail(char *err, size_t errlen, const char *s, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "bad address '%s': %s", s, why);
    return -1;
}

/* Port text: digits only, 1..65535. */
static int
conf_parse_port(const char *s, uint16_t *port)
{
    long long v;
    size_t len = strlen(s);
    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return -1;
    if (sp_str2ll(s, len, &v) != 0 || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* A DNS name or dotted IPv4 address. All-numeric names must be valid IPv4,
 * so "256.1.1.1" is caught here rather than at resolve time. */
static int
conf_valid_host(const char *h)
{
    size_t len = strlen(h);
    if (len == 0 || len > 253)
        return 0;
    if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789-._") != len)
        return 0;
    if (strspn(h, "0123456789.") == len) {
        struct in_addr a4;
        return inet_pton(AF_INET, h, &a4) == 1;
    }
    return 1;
}

/* IPv6 literal, optionally with a %zone suffix for link-local use. */
static int
conf_valid_ipv6(const char *h)
{
    struct in6_addr a6;
    char tmp[INET6_ADDRSTRLEN];
    const char *zone = strchr(h, '%');
    size_t len = zone ? (size_t)(zone - h) : strlen(h);
    if (len == 0 || len >= sizeof(tmp) || (zone != NULL && zone[1] == '\0'))
        return 0;
    memcpy(tmp, h, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, &a6) == 1;
}

static int
conf_parse_unix(const char *s, int allow_unix, struct sp_addr *out,
                char *err, size_t errlen)
{
    const char *path = s + 5;
    struct sockaddr_un sun;
    if (!allow_unix)
        return conf_addr_fail(err, errlen, s,
                              "unix sockets are not allowed here, expected "
                              "host:port or [ipv6]:port");
    if (*path == '\0')
        return conf_addr_fail(err, errlen, s,
                              "expected host:port, [ipv6]:port or "
                              "unix:/path");
    if (strlen(path) >= sizeof(sun.sun_path)) {
        char why[64];
        snprintf(why, sizeof(why), "unix socket path is longer than %zu bytes",
                 sizeof(sun.sun_path) - 1);
        return conf_addr_fail(err, errlen, s, why);
    }
    out->kind = ADDR_UNIX;
    out->path = sp_strdup(path);
    return 0;
}

/*
 * Split s into host and port text. Bracketed hosts are IPv6 and lose their
 * brackets; unbracketed hosts must not contain ':'. Returns 0 with a
 * malloc'd *host and a pointer into s for the port, or -1 with err set.
 */
static int
conf_split_hostport(const char *s, const char *expect, char **host,
                    const char **port, char *err, size_t errlen)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return conf_addr_fail(err, errlen, s, expect);
        *host = sp_strndup(s + 1, (size_t)(close - s - 1));
        *port = close + 2;
        if (!conf_valid_ipv6(*host)) {
            sp_free(*host);
            return conf_addr_fail(err, errlen, s,
                                  "not a valid IPv6 address in brackets");
        }
        return 0;
    }
    colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return conf_addr_fail(err, errlen, s, expect);
    if (memchr(s, ':', (size_t)(colon - s)) != NULL)
        return conf_addr_fail(err, errlen, s,
                              "IPv6 addresses must be in brackets, as "
                              "[::1]:6379");
    *host = sp_strndup(s, (size_t)(colon - s));
    *port = colon + 1;
    if (!conf_valid_host(*host)) {
        sp_free(*host);
        return conf_addr_fail(err, errlen, s,
                              "not a valid host name or IPv4 address");
    }
    return 0;
}

/*
 * Parse "host:port", "[v6]:port" or (with allow_unix) "unix:/path". On
 * success out owns its strings (free with config_addr_deinit). On error
 * out holds nothing and err says "bad address '...': why".
 */
int
config_parse_addr(const char *s, int allow_unix, struct sp_addr *out,
                  char *err, size_t errlen)
{
    const char *expect = allow_unix
        ? "expected host:port, [ipv6]:port or unix:/path"
        : "expected host:port or [ipv6]:port";
    char *host;
    const char *port;

    memset(out, 0, sizeof(*out));
    if (strncmp(s, "unix:", 5) == 0)
        return conf_parse_unix(s, allow_unix, out, err, errlen);
    if (conf_split_hostport(s, expect, &host, &port, err, errlen) != 0)
        return -1;
    if (conf_parse_port(port, &out->port) != 0) {
        sp_free(host);
        return conf_addr_fail(err, errlen, s,
                              "port must be a number between 1 and 65535");
    }
    out->kind = ADDR_TCP;
    out->host = host;
    return 0;
}

void
config_addr_format(const struct sp_addr *a, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (a->kind == ADDR_UNIX)
        snprintf(out, outlen, "unix:%s", a->path ? a->path : "");
    else if (a->host != NULL && strchr(a->host, ':') != NULL)
        snprintf(out, outlen, "[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(out, outlen, "%s:%u", a->host ? a->host : "",
                 (unsigned)a->port);
}

/* ---- scalar values ------------------------------------------------- */

/* The scalar's text, or NULL when the node is not a usable string (a list,
 * a mapping, or a string with an embedded NUL byte). */
static const char *
conf_scalar(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE)
        return NULL;
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length)
        return NULL;
    return s;
}

/* A plain empty value, "~" or "null": "log:" with every line commented. */
static int
conf_is_null(const yaml_node_t *n)
{
    const char *s = conf_scalar(n);
    if (s == NULL || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

struct conf_unit {
    const char *name;           /* suffix, matched case-insensitively */
    long long mult;             /* multiplier to the base unit */
};

static const struct conf_unit conf_duration_units[] = {
    { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
    { "h", 3600 * 1000 },
};

static const struct conf_unit conf_size_units[] = {
    { "", 1 }, { "b", 1 }, { "k", CONF_KB }, { "kb", CONF_KB },
    { "m", CONF_MB }, { "mb", CONF_MB }, { "g", CONF_GB }, { "gb", CONF_GB },
};

/*
 * "<integer><unit>" with unit from the table. Overflow saturates, so an
 * absurd value is reported as out of range rather than as malformed.
 */
static int
conf_parse_units(const char *s, const struct conf_unit *units,
                 size_t nunits, long long *out)
{
    size_t i = (*s == '-' || *s == '+') ? 1 : 0;
    long long v;
    i += strspn(s + i, "0123456789");
    if (sp_str2ll(s, i, &v) != 0)
        return -1;
    const char *unit = s + i;
    for (size_t u = 0; u < nunits; u++) {
        if (!sp_strcaseeq(unit, strlen(unit), units[u].name))
            continue;
        long long m = units[u].mult;
        if (v > LLONG_MAX / m)
            *out = LLONG_MAX;
        else if (v < LLONG_MIN / m)
            *out = LLONG_MIN;
        else
            *out = v * m;
        return 0;
    }
    return -1;
}

static int
conf_nprocs(void)
{
    return cpus_usable(CONF_WORKERS_MAX);
}

/* ---- parse pass ---------------------------------------------------- */

/* Append every entry of a YAML list of addresses to the row's array. */
static int
conf_set_addrs(struct config_parser *p, const struct config_directive *d,
               yaml_node_t *v)
{
    int allow_unix = d->type == CONF_T_LISTEN;
    struct sp_addr **arr = conf_field(p->c, d);
    size_t *n = (size_t *)((char *)p->c + d->count_offset);

    if (v->type != YAML_SEQUENCE_NODE)
        return conf_error(p, v->start_mark, "'%s' must be a list of addresses",
                          d->name);
    yaml_node_item_t *it = v->data.sequence.items.start;
    size_t count = (size_t)(v->data.sequence.items.top - it);
    if (count == 0 && d->section == NULL)
        return conf_error(p, v->start_mark,
                          "'%s' must list at least one address", d->name);
    /* Seeds may be empty here; validation reports it with the rule's
     * own message. An empty tls.listen or metrics.listen means none
     * (--dump-config writes them so). */
    *arr = sp_calloc(count, sizeof(**arr));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, it[i]);
        const char *s = conf_scalar(item);
        char why[512];
        if (s == NULL)
            return conf_error(p, item->start_mark,
                              "'%s' entries must be address strings "
                              "(IPv6 addresses must be quoted, as "
                              "\"[::1]:6380\")", d->name);
        if (config_parse_addr(s, allow_unix, &(*arr)[*n], why,
                              sizeof(why)) != 0)
            return conf_error(p, item->start_mark, "%s", why);
        (*arr)[(*n)++].line = (uint32_t)item->start_mark.line + 1;
    }
    return 0;
}

/*
 * A string with ${NAME} replaced by the environment variable NAME (so a
 * Kubernetes Secret can provide passwords). NULL with a message in why
 * when a variable is not set or a ${ is not closed.
 */
static char *
conf_expand_env(const char *s, char *why, size_t whylen)
{
    struct buf b;
    buf_init(&b);
    while (*s != '\0') {
        const char *open = strstr(s, "${");
        if (open == NULL) {
            buf_append_str(&b, s);
            break;
        }
        buf_append(&b, s, (size_t)(open - s));
        const char *close = strchr(open + 2, '}');
        if (close == NULL || close == open + 2) {
            snprintf(why, whylen, "unterminated or empty ${...}");
            buf_deinit(&b);
            return NULL;
        }
        char name[128];
        size_t n = (size_t)(close - open - 2);
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, open + 2, n);
        name[n] = '\0';
        const char *val = getenv(name);
        if (val == NULL) {
            snprintf(why, whylen, "environment variable '%s' is not set",
                     name);
            buf_deinit(&b);
            return NULL;
        }
        buf_append_str(&b, val);
        s = close + 1;
    }
    buf_append(&b, "", 1);
    char *out = sp_strdup(b.data);
    buf_deinit(&b);
    return out;
}

static int
conf_set_secret(struct config_parser *p, const struct config_directive *d,
                yaml_node_t *v)
{
    char why[200];
    const char *s = conf_scalar(v);
    if (s == NULL || *s == '\0')
        return conf_error(p, v->start_mark, "'%s' must be a non-empty "
                          "string", d->name);
    char *val = conf_expand_env(s, why, sizeof(why));
    if (val == NULL)
        return conf_error(p, v->start_mark, "'%s': %s", d->name, why);
    if (strcmp(d->name, "password") == 0 && strstr(s, "${") == NULL)
        p->c->literal_secret = 1;
    char **field = conf_field(p->c, d);
    conf_wipe_free(*field);
    *field = val;
    return 0;
}

static int
conf_role(const char *s)
{
    if (strcmp(s, "read-only") == 0)
        return ROLE_READ_ONLY;
    if (strcmp(s, "read-write") == 0)
        return ROLE_READ_WRITE;
    if (strcmp(s, "admin") == 0)
        return ROLE_ADMIN;
    return -1;
}

/* A user's secret field: ${ENV} expanded into *dst (replacing it). */
static int
conf_user_secret(struct config_parser *p, yaml_node_t *v, const char *key,
                 const char *val, char **dst)
{
    char why[200];
    conf_wipe_free(*dst);
    *dst = conf_expand_env(val, why, sizeof(why));
    if (*dst == NULL)
        return conf_error(p, v->start_mark, "'%s': %s", key, why);
    if (strstr(val, "${") == NULL)
        p->c->literal_secret = 1;
    return 0;
}

/* One entry of auth.users: {name, password, role, backend_user,
 * backend_password}. */
static int
conf_set_user(struct config_parser *p, yaml_node_t *item, struct sp_user *u)
{
    u->role = ROLE_READ_WRITE;
    if (item->type != YAML_MAPPING_NODE)
        return conf_error(p, item->start_mark, "'users' entries must be "
                          "mappings with name, password and role");
    for (yaml_node_pair_t *pair = item->data.mapping.pairs.start;
         pair < item->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);
        const char *key = conf_scalar(k), *val = conf_scalar(v);
        int rc = 0;
        if (key == NULL || val == NULL || *val == '\0')
            return conf_error(p, v->start_mark, "user fields must be "
                              "non-empty strings");
        if (strcmp(key, "name") == 0) {
            sp_free(u->name);
            u->name = sp_strdup(val);
        } else if (strcmp(key, "password") == 0) {
            rc = conf_user_secret(p, v, key, val, &u->password);
        } else if (strcmp(key, "backend_user") == 0) {
            sp_free(u->backend_user);
            u->backend_user = sp_strdup(val);
        } else if (strcmp(key, "backend_password") == 0) {
            rc = conf_user_secret(p, v, key, val, &u->backend_password);
        } else if (strcmp(key, "role") == 0) {
            u->role = conf_role(val);
            if (u->role < 0)
                return conf_error(p, v->start_mark, "role must be read-only, "
                                  "read-write or admin");
        } else {
            return conf_error(p, k->start_mark, "unknown key '%s' in a user",
                              key);
        }
        if (rc != 0)
            return rc;
    }
    if (u->name == NULL || u->password == NULL)
        return conf_error(p, item->start_mark, "a user needs a name and a "
                          "password");
    if ((u->backend_user == NULL) != (u->backend_password == NULL))
        return conf_error(p, item->start_mark, "user '%s': backend_user and "
                          "backend_password go together", u->name);
    return 0;
}

static int
conf_set_users(struct config_parser *p, const struct config_directive *d,
               yaml_node_t *v)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return conf_error(p, v->start_mark, "'users' must be a list");
    yaml_node_item_t *it = v->data.sequence.items.start;
    size_t count = (size_t)(v->data.sequence.items.top - it);
    p->c->users = sp_calloc(count ? count : 1, sizeof(*p->c->users));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, it[i]);
        p->c->nusers++;
        if (conf_set_user(p, item, &p->c->users[i]) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->c->users[j].name, p->c->users[i].name) == 0)
                return conf_error(p, item->start_mark, "user '%s' is listed "
                                  "twice", p->c->users[i].name);
    }
    return 0;
}

/* disabled_commands: a list of known top-level command names. */
static int
conf_set_commands(struct config_parser *p, const struct config_directive *d,
                  yaml_node_t *v)
{
    const struct command ***arr = conf_field(p->c, d);
    size_t *n = (size_t *)((char *)p->c + d->count_offset);

    if (v->type != YAML_SEQUENCE_NODE)
        return conf_error(p, v->start_mark, "'%s' must be a list of command "
                          "names", d->name);
    yaml_node_item_t *it = v->data.sequence.items.start;
    size_t count = (size_t)(v->data.sequence.items.top - it);
    *arr = sp_calloc(count, sizeof(**arr));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, it[i]);
        const char *s = conf_scalar(item);
        const struct command *cmd =
            s != NULL ? command_lookup(s, strlen(s)) : NULL;
        if (cmd == NULL)
            return conf_error(p, item->start_mark, "unknown command '%s' in "
                              "'%s'", s != NULL ? s : "?", d->name);
        (*arr)[(*n)++] = cmd;
    }
    return 0;
}

int
config_command_disabled(const struct config *c, const struct command *cmd)
{
    for (size_t i = 0; i < c->ndisabled; i++)
        if (c->disabled[i] == command_origin(cmd))
            return 1;
    return 0;
}

static int
conf_set_path(struct config_parser *p, const struct config_directive *d,
              yaml_node_t *v)
{
    const char *s = conf_scalar(v);
    if (s == NULL || *s == '\0')
        return conf_error(p, v->start_mark, "'%s' must be a path or 'stderr'",
                          d->name);
    /* NULL is how the rest of slotproxy spells "log to stderr". */
    *(char **)conf_field(p->c, d) =
        strcmp(s, "stderr") == 0 ? NULL : sp_strdup(s);
    return 0;
}

/* Numeric types: convert the text, keep it for the validation pass. */
static int
conf_set_num(struct config_parser *p, const struct config_directive *d,
             yaml_node_t *v, long long *num)
{
    const char *s = conf_scalar(v);
    int ok = s != NULL;

    switch (d->type) {
    case CONF_T_WORKERS:
        if (ok && strcasecmp(s, "auto") == 0) {
            *num = conf_nprocs();
            return 0;
        }
        if (!ok || sp_str2ll(s, strlen(s), num) != 0)
            return conf_error(p, v->start_mark,
                              "'%s' must be an integer or 'auto'", d->name);
        return 0;
    case CONF_T_LOG_LEVEL:
        *num = ok ? log_level_from_name(s) : -1;
        if (*num < 0)
            return conf_error(p, v->start_mark,
                              "'%s' must be one of error, warn, notice, "
                              "info, debug", d->name);
        return 0;
    case CONF_T_LOG_FORMAT:
        *num = ok ? log_format_from_name(s) : -1;
        if (*num < 0)
            return conf_error(p, v->start_mark,
                              "'%s' must be text or json", d->name);
        return 0;
    case CONF_T_BOOL:
        *num = !ok ? -1
               : (!strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
                  !strcasecmp(s, "on") || !strcmp(s, "1")) ? 1
               : (!strcasecmp(s, "false") || !strcasecmp(s, "no") ||
                  !strcasecmp(s, "off") || !strcmp(s, "0")) ? 0
               : -1;
        if (*num < 0)
            return conf_error(p, v->start_mark, "'%s' must be true or false",
                              d->name);
        return 0;
    case CONF_T_READ_FROM:
        *num = !ok ? -1 : strcmp(s, "master") == 0 ? READ_MASTER
                   : strcmp(s, "replica") == 0 ? READ_REPLICA
                   : strcmp(s, "prefer-replica") == 0 ? READ_PREFER_REPLICA
                   : -1;
        if (*num < 0)
            return conf_error(p, v->start_mark, "'%s' must be master, "
                              "replica or prefer-replica", d->name);
        return 0;
    case CONF_T_IO:
        *num = ok ? io_mode_from_name(s) : -1;
        if (*num < 0)
            return conf_error(p, v->start_mark, "'%s' must be auto, epoll or "
                              "io_uring", d->name);
        return 0;
    case CONF_T_READINESS:
        *num = !ok ? -1 : strcmp(s, "all-slots") == 0 ? READINESS_ALL_SLOTS
                   : strcmp(s, "any-slot") == 0 ? READINESS_ANY_SLOT
                   : -1;
        if (*num < 0)
            return conf_error(p, v->start_mark, "'%s' must be all-slots or "
                              "any-slot", d->name);
        return 0;
    case CONF_T_INT:
        if (!ok || sp_str2ll(s, strlen(s), num) != 0)
            return conf_error(p, v->start_mark, "'%s' must be an integer",
                              d->name);
        return 0;
    case CONF_T_DURATION:
        if (!ok || conf_parse_units(s, conf_duration_units,
                                    SP_ARRAY_LEN(conf_duration_units),
                                    num) != 0)
            return conf_error(p, v->start_mark,
                              "'%s' must be a duration: milliseconds, or a "
                              "number with ms, s, m or h (as 250ms, 5s)",
                              d->name);
        return 0;
    case CONF_T_SIZE:
        if (!ok || conf_parse_units(s, conf_size_units,
                                    SP_ARRAY_LEN(conf_size_units),
                                    num) != 0)
            return conf_error(p, v->start_mark,
                              "'%s' must be a size: bytes, or a number with "
                              "kb, mb or gb (as 64kb, 512mb)", d->name);
        return 0;
    default:
        SP_ASSERT(0);
        return -1;
    }
}

static const struct config_directive *
conf_find(const char *section, const char *name, size_t *idx)
{
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const struct config_directive *d = &config_directives[i];
        int same_section = section == NULL
            ? d->section == NULL
            : d->section != NULL && strcmp(d->section, section) == 0;
        if (same_section && strcmp(d->name, name) == 0) {
            *idx = i;
            return d;
        }
    }
    return NULL;
}

/*
 * A key of the mapping at level parent (NULL: the top) that names a
 * section or a level above one ("monitor" above "monitor.hotkeys"): its
 * dotted name, written into out, or NULL.
 */
static const char *
conf_find_section(const char *parent, const char *name, char *out,
                  size_t outlen)
{
    int n = parent != NULL ? snprintf(out, outlen, "%s.%s", parent, name)
                           : snprintf(out, outlen, "%s", name);
    if (n < 0 || (size_t)n >= outlen)
        return NULL;
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const char *sec = config_directives[i].section;
        if (sec != NULL && strncmp(sec, out, (size_t)n) == 0 &&
            (sec[n] == '\0' || sec[n] == '.'))
            return out;
    }
    return NULL;
}

static int
conf_set(struct config_parser *p, size_t idx, yaml_node_t *v)
{
    const struct config_directive *d = &config_directives[idx];
    struct config_seen *seen = &p->seen[idx];

    seen->set = 1;
    seen->mark = v->start_mark;
    switch (d->type) {
    case CONF_T_LISTEN:
    case CONF_T_SEEDS:
        return conf_set_addrs(p, d, v);
    case CONF_T_PATH:
        return conf_set_path(p, d, v);
    case CONF_T_COMMANDS:
        return conf_set_commands(p, d, v);
    case CONF_T_SECRET:
        return conf_set_secret(p, d, v);
    case CONF_T_USERS:
        return conf_set_users(p, d, v);
    default:
        return conf_set_num(p, d, v, &seen->num);
    }
}

/* Keys must be unique within a mapping; libyaml leaves that to us. */
static int
conf_check_duplicate(struct config_parser *p, yaml_node_t *map,
                     yaml_node_pair_t *pair, const char *where)
{
    yaml_node_t *key = yaml_document_get_node(p->doc, pair->key);
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, q->key);
        if (k->type == YAML_SCALAR_NODE &&
            strcmp((char *)k->data.scalar.value,
                   (char *)key->data.scalar.value) == 0)
            return conf_error(p, key->start_mark, "duplicate key '%s' %s",
                              (char *)key->data.scalar.value, where);
    }
    return 0;
}

static int conf_walk_mapping(struct config_parser *p, yaml_node_t *map,
                             const char *section);

/* A top-level section key: its value is a mapping of options, or empty. */
static int
conf_walk_section(struct config_parser *p, const char *section,
                  yaml_node_t *key, yaml_node_t *v)
{
    if (strcmp(section, "cluster") == 0) {
        p->have_cluster = 1;
        p->cluster_mark = key->start_mark;
    }
    if (conf_is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return conf_error(p, v->start_mark, "'%s' must be a mapping of "
                          "options", section);
    return conf_walk_mapping(p, v, section);
}

/*
 * Dispatch every key of a mapping (the top level when section is NULL) to
 * its directive. Stops at the first error.
 */
static int
conf_walk_mapping(struct config_parser *p, yaml_node_t *map,
                  const char *section)
{
    char where[64], secname[64];
    if (section == NULL)
        snprintf(where, sizeof(where), "at top level");
    else
        snprintf(where, sizeof(where), "in '%s'", section);

    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(p->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);
        const char *name = conf_scalar(key);
        const char *sec;
        size_t idx;

        if (name == NULL)
            return conf_error(p, key->start_mark,
                              "keys must be plain strings");
        if (conf_check_duplicate(p, map, pair, where) != 0)
            return -1;
        if (conf_find(section, name, &idx) == NULL &&
            (sec = conf_find_section(section, name, secname,
                                     sizeof(secname))) != NULL) {
            if (conf_walk_section(p, sec, key, v) != 0)
                return -1;
            continue;
        }
        if (conf_find(section, name, &idx) == NULL)
            return conf_error(p, key->start_mark, "unknown key '%s' %s",
                              name, where);
        if (conf_set(p, idx, v) != 0)
            return -1;
    }
    return 0;
}

/* ---- validation pass ----------------------------------------------- */

/* A bound in the unit the user most likely wrote it in: 24h, 1kb, 100. */
static void
conf_format_bound(const struct config_directive *d, long long v, char *out,
                  size_t outlen)
{
    static const struct conf_unit dur[] = {
        { "h", 3600 * 1000 }, { "m", 60 * 1000 }, { "s", 1000 },
        { "ms", 1 },
    };
    static const struct conf_unit size[] = {
        { "gb", CONF_GB }, { "mb", CONF_MB }, { "kb", CONF_KB },
    };
    const struct conf_unit *units = NULL;
    size_t n = 0;

    if (d->type == CONF_T_DURATION) {
        units = dur;
        n = SP_ARRAY_LEN(dur);
    } else if (d->type == CONF_T_SIZE) {
        units = size;
        n = SP_ARRAY_LEN(size);
    }
    for (size_t i = 0; i < n && v != 0; i++) {
        if (v % units[i].mult == 0) {
            snprintf(out, outlen, "%lld%s", v / units[i].mult, units[i].name);
            return;
        }
    }
    snprintf(out, outlen, "%lld", v);
}

static int
conf_validate_bounds(struct config_parser *p)
{
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const struct config_directive *d = &config_directives[i];
        const struct config_seen *s = &p->seen[i];
        char lo[32], hi[32];

        if (!s->set || !conf_is_numeric(d->type))
            continue;
        if (s->num < d->min || s->num > d->max) {
            conf_format_bound(d, d->min, lo, sizeof(lo));
            conf_format_bound(d, d->max, hi, sizeof(hi));
            return conf_error(p, s->mark, "'%s' must be between %s and %s",
                              d->name, lo, hi);
        }
        conf_store_num(p->c, d, s->num);
    }
    return 0;
}

/* TLS options that only make sense together. */
static int
conf_validate_tls(struct config_parser *p)
{
    size_t i;

    if (p->c->ntls_listen > 0 &&
        (p->c->tls_cert == NULL || p->c->tls_key == NULL)) {
        conf_find("tls", "listen", &i);
        return conf_error(p, p->seen[i].mark, "tls: 'listen' needs 'cert' "
                          "and 'key'");
    }
    /* Without a CA, OpenSSL verifies nothing and asks for no certificate:
     * "required" client certificates would not be required at all. */
    if (p->c->tls_require_client_cert && p->c->tls_ca == NULL) {
        conf_find("tls", "require_client_cert", &i);
        return conf_error(p, p->seen[i].mark, "tls: 'require_client_cert' "
                          "needs 'ca' (the CA that signs client "
                          "certificates)");
    }
    return 0;
}

static int
conf_validate(struct config_parser *p)
{
    size_t idx;
    const struct config_directive *seeds = conf_find("cluster", "seeds", &idx);

    if (conf_validate_bounds(p) != 0 || conf_validate_tls(p) != 0)
        return -1;
    if (p->c->auth_password != NULL && p->c->nusers > 0) {
        size_t i2;
        conf_find("auth", "users", &i2);
        return conf_error(p, p->seen[i2].mark, "auth: set either 'password' "
                          "or 'users', not both");
    }
    if (p->c->nseeds == 0) {
        /* Point at the empty list, else at 'cluster:', else the start. */
        yaml_mark_t m = { 0, 0, 0 };
        if (seeds != NULL && p->seen[idx].set)
            m = p->seen[idx].mark;
        else if (p->have_cluster)
            m = p->cluster_mark;
        return conf_error(p, m, "cluster.seeds must list at least one seed "
                          "node");
    }
    if (p->c->nlisten == 0) {
        p->c->listen = sp_calloc(1, sizeof(*p->c->listen));
        p->c->listen[0].kind = ADDR_TCP;
        p->c->listen[0].host = sp_strdup("127.0.0.1");
        p->c->listen[0].port = 6380;
        p->c->nlisten = 1;
    }
    return 0;
}

/* ---- entry points -------------------------------------------------- */

/* libyaml's reader errors carry a byte offset, not a mark. */
static yaml_mark_t
conf_offset_mark(const char *text, size_t len, size_t offset)
{
    yaml_mark_t m = { offset, 0, 0 };
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

/*
 * An unquoted "[::1]:6380" is a YAML flow list followed by junk, so the
 * user sees a syntax error about flow nodes. Recognise that shape around
 * the error so the message can say what to do instead.
 */
static int
conf_unquoted_ipv6(const char *text, size_t len, const yaml_mark_t *m)
{
    size_t i = m->index;
    if (i == 0 || i > len || text[i - 1] != '[')
        return 0;
    while (i < len && strchr("0123456789abcdefABCDEF:.%", text[i]) != NULL &&
           text[i] != '\0')
        i++;
    return i + 1 < len && text[i] == ']' && text[i + 1] == ':';
}

static int
conf_yaml_error(struct config_parser *p, yaml_parser_t *yp, const char *text,
                size_t len)
{
    const char *problem = yp->problem ? yp->problem : "YAML error";
    yaml_mark_t m = yp->problem_mark;

    if (yp->error == YAML_READER_ERROR)
        m = conf_offset_mark(text, len, yp->problem_offset);
    if (yp->context == NULL)
        return conf_error(p, m, "%s", problem);
    if (conf_unquoted_ipv6(text, len, &yp->context_mark))
        return conf_error(p, m, "%s (IPv6 addresses must be quoted, as "
                          "\"[::1]:6380\")", problem);
    return conf_error(p, m, "%s (%s at %zu:%zu)", problem, yp->context,
                      yp->context_mark.line + 1,
                      yp->context_mark.column + 1);
}

/* Load one YAML document into doc; a second document is an error. */
static int
conf_load_yaml(struct config_parser *p, const char *text, size_t len,
               yaml_document_t *doc)
{
    yaml_parser_t yp;
    yaml_document_t extra;
    int rc = -1;

    if (!yaml_parser_initialize(&yp))
        return conf_error(p, (yaml_mark_t){ 0, 0, 0 }, "out of memory");
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    if (!yaml_parser_load(&yp, doc)) {
        conf_yaml_error(p, &yp, text, len);
        goto out;
    }
    if (!yaml_parser_load(&yp, &extra)) {
        conf_yaml_error(p, &yp, text, len);
        yaml_document_delete(doc);
        goto out;
    }
    yaml_node_t *root = yaml_document_get_root_node(&extra);
    if (root != NULL) {
        conf_error(p, root->start_mark,
                   "only one YAML document is allowed");
        yaml_document_delete(&extra);
        yaml_document_delete(doc);
        goto out;
    }
    yaml_document_delete(&extra);
    rc = 0;
out:
    yaml_parser_delete(&yp);
    return rc;
}

int
config_parse_string(const char *text, size_t len, const char *name,
                    struct config **out, char *err, size_t errlen)
{
    struct config_parser p;
    yaml_document_t doc;
    int rc = -1;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.name = name;
    p.err = err;
    p.errlen = errlen;
    if (conf_load_yaml(&p, text, len, &doc) != 0)
        return -1;

    p.doc = &doc;
    p.c = sp_malloc(sizeof(*p.c));
    config_defaults(p.c);
    p.c->file = sp_strdup(name);

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        conf_error(&p, (yaml_mark_t){ 0, 0, 0 }, "configuration is empty");
    else if (root->type != YAML_MAPPING_NODE)
        conf_error(&p, root->start_mark,
                   "top level must be a mapping of options");
    else if (conf_walk_mapping(&p, root, NULL) == 0 && conf_validate(&p) == 0)
        rc = 0;

    yaml_document_delete(&doc);
    if (rc != 0) {
        config_free(p.c);
        return -1;
    }
    p.c->lines = sp_calloc(CONF_NDIRECTIVES, sizeof(*p.c->lines));
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++)
        if (p.seen[i].set)
            p.c->lines[i] = (uint32_t)p.seen[i].mark.line + 1;
    *out = p.c;
    return 0;
}

static int
conf_read_file(const char *path, char **text, size_t *len, char *err,
               size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf;

    if (fp == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    buf = sp_malloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        cap *= 2;
        buf = sp_realloc(buf, cap);
    }
    if (ferror(fp)) {
        int e = errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        sp_free(buf);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    *text = buf;
    *len = n;
    return 0;
}

/*
 * disabled_commands cannot reach inside scripts: EVAL "return
 * redis.call('flushall')" runs FLUSHALL on the server. Say so when a
 * scripting command is left enabled, and name the cure (the server's ACL,
 * through auth.users[].backend_user).
 */
static void
conf_warn_scripts(const struct config *c, const char *path)
{
    static const char *const scripting[] = {
        "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro",
    };
    char names[80] = "";
    size_t n = 0;

    if (c->ndisabled == 0)
        return;
    for (size_t i = 0; i < SP_ARRAY_LEN(scripting); i++) {
        const struct command *cmd =
            command_lookup(scripting[i], strlen(scripting[i]));
        if (cmd != NULL && !config_command_disabled(c, cmd))
            n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
                                  n ? ", " : "", scripting[i]);
    }
    if (n > 0)
        log_warn("%s: disabled_commands does not apply inside scripts: %s "
                 "can still call the disabled commands on the server; "
                 "disable them too, or give users a backend_user whose "
                 "server ACL refuses those commands", path, names);
}

int
config_load_file(const char *path, struct config **out, char *err,
                 size_t errlen)
{
    char *text;
    size_t len;

    *out = NULL;
    if (conf_read_file(path, &text, &len, err, errlen) != 0)
        return -1;
    int rc = config_parse_string(text, len, path, out, err, errlen);
    sp_free(text);
    struct stat st;
    if (rc == 0 && (*out)->literal_secret && stat(path, &st) == 0 &&
        (st.st_mode & S_IROTH))
        log_warn("%s holds passwords and is readable by every user "
                 "(chmod o-r, or use ${ENV} variables)", path);
    if (rc == 0)
        conf_warn_scripts(*out, path);
    return rc;
}

/* ---- the table as a view: get, diff, dump, copy ------------------- */

/* Flags for conf_format_value. */
#define CONF_FMT_REVEAL 1       /* passwords in clear (to compare them) */
#define CONF_FMT_QUOTE 2        /* string scalars as YAML quoted strings */

static const char *const conf_role_names[] = {
    "read-only", "read-write", "admin",
};

static const char *const conf_read_from_names[] = {
    "master", "replica", "prefer-replica",
};

/* Passwords are the only secrets: paths to keys are not. The parser uses
 * the same rule for its world-readable warning. */
static int
conf_is_password(const struct config_directive *d)
{
    return d->type == CONF_T_SECRET && strcmp(d->name, "password") == 0;
}

static void
conf_dotted(const struct config_directive *d, char *out, size_t outlen)
{
    if (d->section != NULL)
        snprintf(out, outlen, "%s.%s", d->section, d->name);
    else
        snprintf(out, outlen, "%s", d->name);
}

/* The row whose dotted name is name, or NULL. */
static const struct config_directive *
conf_find_dotted(const char *name, size_t *idx)
{
    char dn[96];
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        conf_dotted(&config_directives[i], dn, sizeof(dn));
        if (strcmp(dn, name) == 0) {
            *idx = i;
            return &config_directives[i];
        }
    }
    return NULL;
}

/* A YAML double-quoted scalar: " and \ escaped, control bytes as \xNN. */
static void
conf_quoted(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            buf_printf(b, "\\x%02x", ch);
        else
            buf_append(b, s, 1);
    }
    buf_append(b, "\"", 1);
}

static void
conf_format_str(struct buf *b, const char *s, int flags)
{
    if (flags & CONF_FMT_QUOTE)
        conf_quoted(b, s);
    else
        buf_append_str(b, s);
}

static long long
conf_load_num(const struct config *c, const struct config_directive *d)
{
    const char *f = (const char *)c + d->offset;
    if (d->size == sizeof(uint32_t)) {
        uint32_t v32;
        memcpy(&v32, f, sizeof(v32));
        return (long long)v32;
    }
    uint64_t v64;
    memcpy(&v64, f, sizeof(v64));
    return (long long)v64;
}

static void
conf_format_num(const struct config_directive *d, long long v, struct buf *b)
{
    char s[32];
    switch (d->type) {
    case CONF_T_LOG_LEVEL:
        buf_append_str(b, log_level_name((int)v));
        return;
    case CONF_T_LOG_FORMAT:
        buf_append_str(b, v == LOG_FORMAT_JSON ? "json" : "text");
        return;
    case CONF_T_BOOL:
        buf_append_str(b, v ? "true" : "false");
        return;
    case CONF_T_READ_FROM:
        buf_append_str(b, conf_read_from_names[v]);
        return;
    case CONF_T_READINESS:
        buf_append_str(b, v == READINESS_ANY_SLOT ? "any-slot" : "all-slots");
        return;
    case CONF_T_IO:
        buf_append_str(b, io_mode_name((int)v));
        return;
    default:
        /* Durations and sizes in the largest unit that is exact. */
        conf_format_bound(d, v, s, sizeof(s));
        buf_append_str(b, s);
        return;
    }
}

/* A YAML flow list of the row's entries: addresses, command names or
 * users ({name, password, role}). */
static void
conf_format_list(const struct config *c, const struct config_directive *d,
                 struct buf *b, int flags)
{
    const char *f = (const char *)c + d->offset;
    size_t n = *(const size_t *)((const char *)c + d->count_offset);
    buf_append(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_append(b, ", ", 2);
        if (d->type == CONF_T_COMMANDS) {
            const struct command *const *cmds;
            memcpy(&cmds, f, sizeof(cmds));
            conf_quoted(b, cmds[i]->name);
        } else if (d->type == CONF_T_USERS) {
            const struct sp_user *u;
            memcpy(&u, f, sizeof(u));
            buf_append_str(b, "{name: ");
            conf_quoted(b, u[i].name);
            buf_append_str(b, ", password: ");
            conf_quoted(b, (flags & CONF_FMT_REVEAL) ? u[i].password : "***");
            buf_printf(b, ", role: %s", conf_role_names[u[i].role]);
            if (u[i].backend_user != NULL) {
                buf_append_str(b, ", backend_user: ");
                conf_quoted(b, u[i].backend_user);
                buf_append_str(b, ", backend_password: ");
                conf_quoted(b, (flags & CONF_FMT_REVEAL)
                                   ? u[i].backend_password : "***");
            }
            buf_append(b, "}", 1);
        } else {
            const struct sp_addr *a;
            char s[300];
            memcpy(&a, f, sizeof(a));
            config_addr_format(&a[i], s, sizeof(s));
            conf_quoted(b, s);
        }
    }
    buf_append(b, "]", 1);
}

/*
 * Append the value of row d in c to b. Returns 0, or -1 with nothing
 * appended when the option is a string that is not set.
 */
static int
conf_format_value(const struct config *c, const struct config_directive *d,
                  struct buf *b, int flags)
{
    const char *s;
    switch (d->type) {
    case CONF_T_LISTEN:
    case CONF_T_SEEDS:
    case CONF_T_COMMANDS:
    case CONF_T_USERS:
        conf_format_list(c, d, b, flags);
        return 0;
    case CONF_T_PATH:
    case CONF_T_SECRET:
        memcpy(&s, (const char *)c + d->offset, sizeof(s));
        if (s == NULL && d->type == CONF_T_SECRET)
            return -1;
        if (s == NULL)
            s = "stderr";       /* the path's only unset meaning */
        else if (conf_is_password(d) && !(flags & CONF_FMT_REVEAL))
            s = "***";
        conf_format_str(b, s, flags);
        return 0;
    default:
        conf_format_num(d, conf_load_num(c, d), b);
        return 0;
    }
}

/* 1 when row d has different values in a and b (secrets compared in
 * clear, lists entry by entry). */
static int
conf_row_differs(const struct config *a, const struct config *b,
                 const struct config_directive *d)
{
    struct buf va, vb;
    buf_init(&va);
    buf_init(&vb);
    int sa = conf_format_value(a, d, &va, CONF_FMT_REVEAL | CONF_FMT_QUOTE);
    int sb = conf_format_value(b, d, &vb, CONF_FMT_REVEAL | CONF_FMT_QUOTE);
    int differs = sa != sb || va.len != vb.len ||
                  (va.len > 0 && memcmp(va.data, vb.data, va.len) != 0);
    /* Revealed secrets must not linger in freed memory. */
    if (va.data != NULL)
        memset(va.data, 0, va.cap);
    if (vb.data != NULL)
        memset(vb.data, 0, vb.cap);
    buf_deinit(&va);
    buf_deinit(&vb);
    return differs;
}

/* The value as config_get and config_diff show it, NUL-terminated in b;
 * unset strings as unset. */
static void
conf_show(const struct config *c, const struct config_directive *d,
          struct buf *b, const char *unset)
{
    b->pos = b->len = 0;
    if (conf_format_value(c, d, b, 0) != 0)
        buf_append_str(b, unset);
    buf_append(b, "", 1);
}

size_t
config_diff(const struct config *old, const struct config *neu,
            config_diff_fn fn, void *arg)
{
    struct buf vo, vn;
    char name[96];
    size_t n = 0;
    buf_init(&vo);
    buf_init(&vn);
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const struct config_directive *d = &config_directives[i];
        if (!conf_row_differs(old, neu, d))
            continue;
        n++;
        conf_dotted(d, name, sizeof(name));
        conf_show(old, d, &vo, "(none)");
        conf_show(neu, d, &vn, "(none)");
        fn(arg, name, vo.data, vn.data, d->reload);
    }
    buf_deinit(&vo);
    buf_deinit(&vn);
    return n;
}

/* One token of a glob pattern at *pp against ch (both compared
 * case-insensitively); *pp moves past the token. 1 when it matches. */
static int
conf_glob_one(const char **pp, char ch)
{
    const char *p = *pp;
    int c = tolower((unsigned char)ch), match = 0;

    if (*p == '?') {
        *pp = p + 1;
        return 1;
    }
    if (*p == '\\' && p[1] != '\0') {
        *pp = p + 2;
        return tolower((unsigned char)p[1]) == c;
    }
    if (*p != '[') {
        *pp = p + 1;
        return tolower((unsigned char)*p) == c;
    }
    p++;
    int neg = *p == '^';
    p += neg;
    while (*p != '\0' && *p != ']') {
        if (*p == '\\' && p[1] != '\0')
            p++;
        int lo = tolower((unsigned char)*p), hi = lo;
        if (p[1] == '-' && p[2] != '\0' && p[2] != ']') {
            hi = tolower((unsigned char)p[2]);
            p += 2;
        }
        if (lo > hi) {
            int t = lo;
            lo = hi;
            hi = t;
        }
        match |= c >= lo && c <= hi;
        p++;
    }
    *pp = *p == ']' ? p + 1 : p;
    return neg ? !match : match;
}

/* Glob match as Redis's CONFIG GET: *, ?, [abc], [^a-z], \x; no case.
 * Every token other than * takes one character, so one remembered star
 * is enough and the cost stays linear in the pattern times the name. */
static int
conf_glob(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s != '\0') {
        const char *p = pat;
        if (*pat == '*') {
            while (*pat == '*')
                pat++;
            star = pat;
            resume = s;
            continue;
        }
        if (*p != '\0' && conf_glob_one(&p, *s)) {
            pat = p;
            s++;
            continue;
        }
        if (star == NULL)
            return 0;
        pat = star;
        s = ++resume;
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

int
config_glob_match(const char *pattern, const char *s)
{
    return conf_glob(pattern, s);
}

int
config_changed(const struct config *a, const struct config *b,
               const char *pattern)
{
    char name[96];
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        conf_dotted(&config_directives[i], name, sizeof(name));
        if (conf_glob(pattern, name) &&
            conf_row_differs(a, b, &config_directives[i]))
            return 1;
    }
    return 0;
}

size_t
config_get(const struct config *c, const char *const *patterns,
           size_t npatterns, config_value_fn fn, void *arg)
{
    struct buf v;
    char name[96];
    size_t n = 0;
    buf_init(&v);
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const struct config_directive *d = &config_directives[i];
        size_t k = 0;
        conf_dotted(d, name, sizeof(name));
        while (k < npatterns && !conf_glob(patterns[k], name))
            k++;
        if (npatterns > 0 && k == npatterns)
            continue;
        conf_show(c, d, &v, "");
        fn(arg, name, v.data);
        n++;
    }
    buf_deinit(&v);
    return n;
}

/* One option as a YAML line, indented inside its section. */
static void
conf_dump_row(const struct config *c, const struct config_directive *d,
              struct buf *out)
{
    /* Two spaces per level: "monitor.hotkeys" options sit at four. */
    int depth = 0;
    for (const char *q = d->section; q != NULL; q = strchr(q + 1, '.'))
        depth++;
    char indent[16];
    snprintf(indent, sizeof(indent), "%*s", 2 * depth, "");
    size_t mark = out->len;
    buf_printf(out, "%s%s: ", indent, d->name);
    if (conf_format_value(c, d, out, CONF_FMT_QUOTE) != 0) {
        out->len = mark;
        buf_printf(out, "%s# %s: (not set)", indent, d->name);
    }
    buf_append(out, "\n", 1);
}

/* The heading of a section, one line per level of a dotted name, less
 * the levels the section shown before (prev, or NULL) opened already:
 * "monitor.hotkeys" after "monitor" adds only "  hotkeys:" (a second
 * "monitor:" key would be a duplicate). */
static void
conf_dump_section(const char *sec, const char *prev, struct buf *out)
{
    int depth = 0;
    for (const char *p = sec;; depth++) {
        const char *dot = strchr(p, '.');
        int len = dot != NULL ? (int)(dot - p) : (int)strlen(p);
        size_t upto = (size_t)(p - sec) + (size_t)len;
        int shown = prev != NULL && strncmp(prev, sec, upto) == 0 &&
                   (prev[upto] == '\0' || prev[upto] == '.');
        if (!shown)
            buf_printf(out, "%*s%.*s:\n", 2 * depth, "", len, p);
        if (dot == NULL)
            return;
        p = dot + 1;
    }
}

void
config_dump(const struct config *c, struct buf *out)
{
    buf_append_str(out, "# slotproxy configuration in force: every option, "
                        "defaults filled in;\n# passwords are shown as "
                        "\"***\" (slotproxy --dump-config).\n");
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++)
        if (config_directives[i].section == NULL)
            conf_dump_row(c, &config_directives[i], out);
    const char *prev = NULL;    /* the section shown last */
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        const char *sec = config_directives[i].section;
        size_t j = 0;
        if (sec == NULL)
            continue;           /* top level: shown above */
        while (j < i && (config_directives[j].section == NULL ||
                         strcmp(config_directives[j].section, sec) != 0))
            j++;
        if (j < i)
            continue;           /* a section already shown */
        conf_dump_section(sec, prev, out);
        prev = sec;
        for (j = i; j < CONF_NDIRECTIVES; j++)
            if (config_directives[j].section != NULL &&
                strcmp(config_directives[j].section, sec) == 0)
                conf_dump_row(c, &config_directives[j], out);
    }
}

uint32_t
config_line(const struct config *c, const char *name)
{
    size_t idx;
    if (c->lines == NULL || conf_find_dotted(name, &idx) == NULL)
        return 0;
    return c->lines[idx];
}

static struct sp_addr *
conf_addrs_dup(const struct sp_addr *src, size_t n)
{
    struct sp_addr *a = sp_calloc(n ? n : 1, sizeof(*a));
    for (size_t i = 0; i < n; i++) {
        a[i] = src[i];
        a[i].host = src[i].host ? sp_strdup(src[i].host) : NULL;
        a[i].path = src[i].path ? sp_strdup(src[i].path) : NULL;
    }
    return a;
}

/* dst's value of row idx becomes a copy of src's. -1 for lists other
 * than addresses (commands and users need no copy so far). */
static int
conf_copy_row(struct config *dst, const struct config *src, size_t idx)
{
    const struct config_directive *d = &config_directives[idx];
    char *df = (char *)dst + d->offset;
    const char *sf = (const char *)src + d->offset;

    if (conf_is_numeric(d->type)) {
        memcpy(df, sf, d->size);
    } else if (d->type == CONF_T_PATH || d->type == CONF_T_SECRET) {
        char *s;
        memcpy(&s, sf, sizeof(s));
        conf_wipe_free(*(char **)df);
        *(char **)df = s != NULL ? sp_strdup(s) : NULL;
    } else if (d->type == CONF_T_LISTEN || d->type == CONF_T_SEEDS) {
        size_t *dn = (size_t *)((char *)dst + d->count_offset);
        size_t sn = *(const size_t *)((const char *)src + d->count_offset);
        struct sp_addr *sa;
        memcpy(&sa, sf, sizeof(sa));
        conf_addrs_free(*(struct sp_addr **)df, *dn);
        *(struct sp_addr **)df = conf_addrs_dup(sa, sn);
        *dn = sn;
    } else {
        return -1;
    }
    if (dst->lines != NULL)
        dst->lines[idx] = src->lines != NULL ? src->lines[idx] : 0;
    return 0;
}

int
config_copy_option(struct config *dst, const struct config *src,
                   const char *name)
{
    size_t idx;
    if (conf_find_dotted(name, &idx) == NULL)
        return -1;
    return conf_copy_row(dst, src, idx);
}

void
config_keep_restart(struct config *neu, const struct config *old)
{
    for (size_t i = 0; i < CONF_NDIRECTIVES; i++) {
        if (config_directives[i].reload != CONFIG_RESTART)
            continue;
        int rc = conf_copy_row(neu, old, i);
        SP_ASSERT(rc == 0);
        (void)rc;
    }
}
