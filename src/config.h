/* slotproxy - BSD-2-Clause
 *
 * Configuration: one YAML file parsed with libyaml through a directive
 * table (name, type, offset into struct config, default, bounds). Errors
 * name FILE:LINE:COLUMN. No sockets, no libevent.
 */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct command;

enum addr_kind { ADDR_TCP = 0, ADDR_UNIX };

/* How an option's new value takes effect on reload (SIGHUP). */
enum config_reload {
    CONFIG_LIVE = 0,            /* applied to running workers at once */
    CONFIG_NEW_CONNS,           /* used by connections opened afterwards */
    CONFIG_RESTART,             /* needs a restart; the old value stays */
};

/* A listen or seed address: "host:port", "[v6]:port" or "unix:/path". */
struct sp_addr {
    int kind;                   /* enum addr_kind */
    char *host;                 /* TCP: host without brackets (owned) */
    uint16_t port;              /* TCP: port */
    char *path;                 /* UNIX: socket path (owned) */
    uint32_t line;              /* line in the config file, 0 = not
                                 * from a file (a default) */
};

enum user_role { ROLE_READ_ONLY = 0, ROLE_READ_WRITE, ROLE_ADMIN };
enum read_from { READ_MASTER = 0, READ_REPLICA, READ_PREFER_REPLICA };
/* metrics.readiness: /readyz is 200 once every slot is served, or once
 * any is (an edge tier, where every replica sees the same hole). */
enum readiness { READINESS_ALL_SLOTS = 0, READINESS_ANY_SLOT };

/* io: how workers make socket reads and writes. auto: batched through
 * io_uring where the kernel allows it, else epoll readiness with one
 * read/writev per socket; epoll: always the latter; io_uring: the former
 * or refuse to start. SLOTPROXY_IO in the environment overrides it. */
enum io_mode { IO_AUTO = 0, IO_EPOLL, IO_URING };
/* The mode named s ("auto", "epoll", "io_uring"), or -1. */
int io_mode_from_name(const char *s);
const char *io_mode_name(int mode);

/* A client user (auth.users). */
struct sp_user {
    char *name;                 /* user name (owned) */
    char *password;             /* password (owned; never logged) */
    int role;                   /* enum user_role */
    char *backend_user;         /* ACL user its requests run as on the
                                 * nodes (owned), NULL: cluster.username */
    char *backend_password;     /* that user's password (owned; never
                                 * logged); set with backend_user */
};

struct config {
    char *file;                 /* path the config came from (owned) */
    uint32_t *lines;            /* per option of the table: line of its
                                 * value in the file, 0 = default (owned;
                                 * NULL when not parsed from text) */

    /* listen: list of addresses (default 127.0.0.1:6380) */
    struct sp_addr *listen;
    size_t nlisten;

    int workers;                /* workers: 1 (only 1 is supported for now) */
    int io;                     /* io: enum io_mode, default auto */

    /* log: */
    int log_level;              /* level: enum log_level, default notice */
    int log_format;             /* format: enum log_format, default text */
    char *log_file;             /* file: NULL = stderr */

    /* cluster: */
    struct sp_addr *seeds;      /* seeds: TCP addresses, at least one */
    size_t nseeds;
    uint32_t connect_timeout_ms;  /* connect_timeout: default 1000 */
    uint32_t request_timeout_ms;  /* request_timeout: default 5000 */
    uint32_t redirect_limit;      /* redirect_limit: default 5 */
    uint32_t refresh_interval_ms; /* refresh_interval: default 10000 */
    uint32_t node_connections;    /* connections_per_node: default 1 */

    /* clients: */
    uint32_t max_clients;         /* max_clients: default 10000 */
    uint64_t max_request_size;    /* max_request_size: default 512mb */
    uint32_t max_multibulk;       /* max_multibulk_length: default 1048576 */
    uint32_t max_pipeline;        /* max_pipeline: requests in flight per
                                   * client before reading pauses; 10000 */
    uint64_t output_limit;        /* output_limit: pending reply bytes before
                                   * the client is closed; 32mb */
    uint32_t idle_timeout_ms;     /* idle_timeout: 0 = never */
    uint32_t output_stall_timeout_ms; /* output_stall_timeout: close a
                                   * client whose socket accepts no reply
                                   * byte for this long; 60s, 0 = never */
    uint32_t max_pinned;          /* max_pinned: pinned backend connections
                                   * (WATCH, blocking commands) per worker;
                                   * 1000 */
    uint32_t max_pinned_per_node; /* max_pinned_per_node: per worker and
                                   * node; 0 = only max_pinned applies */
    uint32_t max_pinned_per_client; /* max_pinned_per_client: per client;
                                   * 0 = masters + 2 */
    uint64_t max_fanout_reply;    /* max_fanout_reply: bytes a merged
                                   * fan-out reply (KEYS, MGET ...) may
                                   * hold; 64mb */
    uint64_t max_multi_size;      /* max_multi_size: bytes of commands
                                   * queued in one MULTI; 16mb */
    uint32_t max_multi_commands;  /* max_multi_commands: commands queued in
                                   * one MULTI; 100000 */

    uint64_t max_memory;          /* max_memory: bytes the whole process
                                   * may hold for clients (buffers,
                                   * replies, queues); reading pauses at
                                   * 80%, the largest clients are closed
                                   * above it; 64mb, 0 = no budget */

    uint32_t shutdown_grace_ms;   /* shutdown_grace: on SIGTERM, time given
                                   * to in-flight requests; 5s */

    /* auth: client authentication (none when both are empty) */
    char *auth_password;          /* password: of the "default" user */
    struct sp_user *users;        /* users: named users with roles */
    size_t nusers;
    uint32_t auth_max_failures;   /* max_failures: wrong AUTH attempts after
                                   * which a connection is closed; 10 */

    /* cluster: read routing */
    int read_from;                /* read_from: enum read_from (master) */
    uint64_t max_replica_lag;     /* max_replica_lag: bytes; 1mb */
    uint32_t replica_poll_interval_ms; /* replica_poll_interval: INFO
                                   * replication per master; 1000 */

    /* cluster: credentials sent on every backend connection */
    char *cluster_username;       /* username: NULL = "default" */
    char *cluster_password;       /* password: NULL = no AUTH */
    int literal_secret;           /* a password is written in the file
                                   * itself (not as ${ENV}) */

    /* slowlog: requests slower than threshold, kept per worker */
    uint32_t slowlog_threshold_ms; /* threshold: 10ms */
    uint32_t slowlog_max_len;     /* max_len: 128 entries per worker */

    /* monitor: big requests and replies (PROXY BIGKEYS, /metrics) */
    uint64_t big_reply_bytes;     /* big_reply_bytes: replies larger are
                                   * big; 1mb, 0 = off */
    uint64_t big_request_bytes;   /* big_request_bytes: requests larger
                                   * are big; 1mb, 0 = off */
    uint32_t big_reply_elements;  /* big_reply_elements: aggregate replies
                                   * with more elements are big; 10000,
                                   * 0 = off */

    /* monitor.hotkeys: the hot-key sketch (PROXY HOTKEYS, /metrics) */
    uint32_t hotkeys_sample;      /* sample: one keyed request in N is
                                   * counted; 64, 0 = off */
    uint32_t hotkeys_k;           /* k: keys tracked per worker; 100 */
    uint32_t hotkeys_hide_keys;   /* hide_keys: /metrics shows a hash of
                                   * each key instead of its name; false */

    /* expiry_jitter: spread relative TTLs (ttljitter.h); off when 0 */
    uint32_t jitter_percent;      /* percent: extra of up to this % of the
                                   * TTL; 0 = off */
    uint32_t jitter_min_ttl_ms;   /* min_ttl: shorter TTLs stay; 60s */

    /* metrics: HTTP endpoint (/metrics, /healthz, /readyz); none if empty */
    struct sp_addr *metrics;      /* listen: TCP addresses */
    size_t nmetrics;
    int metrics_readiness;        /* readiness: enum readiness, when
                                   * /readyz says 200 (all-slots) */

    /* tls: TLS listeners for clients */
    struct sp_addr *tls_listen;   /* listen: addresses served over TLS */
    size_t ntls_listen;
    char *tls_cert;               /* cert: PEM certificate (chain) */
    char *tls_key;                /* key: PEM private key */
    char *tls_ca;                 /* ca: CA to verify client certificates */
    uint32_t tls_require_client_cert; /* require_client_cert: false */

    /* backend_tls: TLS to the cluster nodes */
    uint32_t backend_tls;         /* enabled: false */
    char *backend_tls_ca;         /* ca: NULL = the system's CAs */
    char *backend_tls_cert;       /* cert, key: client certificate */
    char *backend_tls_key;
    char *backend_tls_server_name; /* server_name: NULL = the node's host */
    uint32_t backend_tls_verify;  /* verify: true */

    /* disabled_commands: top-level commands refused by configuration */
    const struct command **disabled;
    size_t ndisabled;
};

/* 1 when cmd (a top-level command) is disabled by the configuration. */
int config_command_disabled(const struct config *c,
                            const struct command *cmd);

/* Fill every field with its default (no listen/seed parsing needed). */
void config_defaults(struct config *c);

/*
 * Parse YAML text. name is used in error messages. On success returns 0
 * and *out is a complete, validated config (free with config_free). On
 * error returns -1 and writes "NAME:LINE:COLUMN: message" into err.
 */
int config_parse_string(const char *text, size_t len, const char *name,
                        struct config **out, char *err, size_t errlen);
/* Read and parse a file; same contract, errors name the file. */
int config_load_file(const char *path, struct config **out, char *err,
                     size_t errlen);
void config_free(struct config *c);

/*
 * Reported by config_diff for each option whose value differs: its
 * dotted name ("cluster.request_timeout"), the old and new values as
 * config_get shows them ("(none)" when unset; passwords as "***", so a
 * changed secret is reported without its value) and how a reload
 * applies it.
 */
typedef void (*config_diff_fn)(void *arg, const char *name,
                               const char *old_value, const char *new_value,
                               enum config_reload how);
/* Walk the option table and call fn for every option whose value differs
 * between old and neu (lists and strings compared in full). Returns the
 * number of such options. Pure: no logging, no I/O. */
size_t config_diff(const struct config *old, const struct config *neu,
                   config_diff_fn fn, void *arg);
/* 1 when s matches the glob pattern (*, ?, [...], \x; case-insensitive):
 * the matcher of CONFIG GET, also for COMMAND LIST FILTERBY PATTERN. */
int config_glob_match(const char *pattern, const char *s);
/* 1 when an option whose dotted name matches pattern (a glob, as in
 * config_get) differs between a and b. */
int config_changed(const struct config *a, const struct config *b,
                   const char *pattern);
/* Give neu the value old has for every option that needs a restart, so
 * that the configuration in force says what actually runs. */
void config_keep_restart(struct config *neu, const struct config *old);
/* Copy the value of the option named name (dotted) from src into dst:
 * numbers, strings and address lists. 0, or -1 when there is no such
 * option or its type cannot be copied. */
int config_copy_option(struct config *dst, const struct config *src,
                       const char *name);

/* Called by config_get with an option's dotted name and value: numbers
 * in the units the file uses (5s, 64mb), lists as YAML flow lists,
 * passwords as "***", "" when unset. */
typedef void (*config_value_fn)(void *arg, const char *name,
                                const char *value);
/* Every option, in table order, whose dotted name matches one of the
 * glob patterns (*, ?, [...], \x; case-insensitive, as Redis's CONFIG
 * GET); no patterns match all. Returns the number of matches. */
size_t config_get(const struct config *c, const char *const *patterns,
                  size_t npatterns, config_value_fn fn, void *arg);
/* Append c as a YAML document that config_parse_string accepts: every
 * option, defaults filled in, passwords as "***", unset strings as
 * comments. */
void config_dump(const struct config *c, struct buf *out);
/* Line of an option's value (dotted name) in the file, 0 when it was not
 * set there. */
uint32_t config_line(const struct config *c, const char *name);

/* Parse "host:port", "[v6]:port" or "unix:/path" (unix only when
 * allow_unix). 0 on success, -1 with a message in err. */
int config_parse_addr(const char *s, int allow_unix, struct sp_addr *out,
                      char *err, size_t errlen);
void config_addr_deinit(struct sp_addr *a);
/* "host:port", "[v6]:port" or "unix:/path" into out. */
void config_addr_format(const struct sp_addr *a, char *out, size_t outlen);

#endif
