/* slotproxy - BSD-2-Clause
 *
 * Entry point: command line, config check (-t), startup order (log, worker,
 * listeners, topology), signals, and an orderly shutdown that frees
 * everything (so valgrind and LeakSanitizer see a clean exit).
 */
#include "build_config.h"

#include <event2/event.h>
#include <pthread.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifndef SP_SANITIZERS
#include <unwind.h>
#endif

#include "alloc.h"
#include "buildinfo.h"
#include "config.h"
#include "http.h"
#include "iobatch.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "util.h"
#include "worker.h"
#include "worker_loop.h"

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: slotproxy -c FILE [-t] [-d] [-p PIDFILE]\n"
            "       slotproxy --dump-config -c FILE\n"
            "       slotproxy -v | -h\n"
            "\n"
            "A Redis Cluster proxy: plain RESP clients connect to one\n"
            "endpoint; commands are routed to the cluster's masters.\n"
            "\n"
            "  -c, --config FILE  YAML configuration (see slotproxy.yml(5))\n"
            "  -t, --test         check the configuration as start-up would\n"
            "                     (TLS files, addresses can be bound) and\n"
            "                     exit (0 = ok)\n"
            "      --dump-config  print the configuration in force (every\n"
            "                     option, defaults filled in) as YAML\n"
            "  -d, --daemonize    run in the background (default: foreground)\n"
            "  -p, --pidfile FILE write the process id to FILE\n"
            "  -v, -V, --version  print the version, commit, build options\n"
            "                     and library versions, and exit\n"
            "  -h, --help         this help\n"
            "\n"
            "SIGTERM or SIGINT: stop accepting, let requests in flight finish\n"
            "(up to shutdown_grace), exit 0. SIGHUP: reload the file; the\n"
            "log says, per changed option, whether it was applied.\n");
}

/* Shared by the signal handlers and run(). */
struct proc {
    struct event_base *base;        /* main thread's loop (signals) */
    struct worker **workers;
    int nworkers;
    const char *file;               /* the config file, for SIGHUP */
    struct config *conf;            /* the config in force */
    struct config **retired;        /* replaced configs: a worker may still
                                     * read one; freed at exit */
    size_t nretired;
    struct tls_ctx *client_tls;     /* TLS listeners' context in force */
    struct tls_ctx **retired_tls;   /* replaced contexts, client or
                                     * backend (open sessions may still
                                     * use them); freed at exit */
    size_t nretired_tls;
    struct shared *shared;          /* the workers' shared state (run's) */
    struct http *http;              /* metrics endpoint, or NULL */
};

static int
str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* 1 when the TLS listeners' certificate settings differ. */
static int
tls_certs_changed(const struct config *a, const struct config *b)
{
    return !str_eq(a->tls_cert, b->tls_cert) || !str_eq(a->tls_key,
                                                        b->tls_key) ||
           !str_eq(a->tls_ca, b->tls_ca) ||
           a->tls_require_client_cert != b->tls_require_client_cert;
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proc *pr = arg;
    log_notice("received %s, draining (up to shutdown_grace) and shutting "
               "down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    for (int i = 0; i < pr->nworkers; i++)
        worker_loop_stop(pr->workers[i], 1);
    event_base_loopbreak(pr->base);
}

#ifndef SP_SANITIZERS
/* Return addresses gathered by crash_frame for on_crash. */
struct crash_trace {
    void **pc; /* innermost first */
    int n;     /* filled */
    int max;   /* room in pc */
};

/* _Unwind_Backtrace's callback: record one frame's address. */
static _Unwind_Reason_Code
crash_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct crash_trace *t = arg;
    if (t->n >= t->max)
        return _URC_END_OF_STACK;
    t->pc[t->n++] = (void *)_Unwind_GetIP(ctx);
    return _URC_NO_REASON;
}

/*
 * On a fatal signal, write the signal and a stack trace to the log before
 * dying (with the default action, so a core dump or a Kubernetes restart
 * still happens): a crash then leaves something to diagnose. Only
 * async-signal-safe calls. The unwinder is libgcc's, linked into the
 * binary (-static-libgcc): glibc's backtrace() would dlopen libgcc_s,
 * which then had to be loaded at startup (some 120 kB of resident pages
 * in every process) so as not to load it (and malloc) in the handler.
 */
static void
on_crash(int sig)
{
    char msg[96];
    int fd = log_fd();
    int n = snprintf(msg, sizeof(msg), "slotproxy %s crashed: signal %d "
                     "(%s); stack trace:\n", PACKAGE_VERSION, sig,
                     sig == SIGSEGV ? "SIGSEGV" : sig == SIGABRT ? "SIGABRT"
                     : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE"
                     : "SIGILL");
    ssize_t w = write(fd, msg, (size_t)n);
    void *frames[64];
    struct crash_trace t = {frames, 0, 64};
    _Unwind_Backtrace(crash_frame, &t);
    backtrace_symbols_fd(frames, t.n, fd);
    (void)w;
    raise(sig); /* SA_RESETHAND restored the default action */
}

static void
install_crash_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_crash;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}
#else
/* ASan and UBSan report crashes themselves. */
static void
install_crash_handler(void)
{
}
#endif

/* Fork into the background: the parent exits 0 once the child runs in a
 * new session with its standard streams on /dev/null. */
static int
daemonize_self(const struct config *conf)
{
    if (conf->log_file == NULL)
        log_warn("daemonizing with the log on stderr: the log is lost "
                 "(set log.file)");
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

static int
write_pidfile(const char *path)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "%ld\n", (long)getpid());
    return fclose(fp) == 0 ? 0 : -1;
}

/* Raise the open-file limit to what max_clients needs, as far as the hard
 * limit allows. */
static void
raise_nofile(const struct config *conf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conf->max_clients + 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= want) {
        log_notice("open file limit %llu (max_clients %u)",
                   (unsigned long long)rl.rlim_cur, conf->max_clients);
        return;
    }
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        log_warn("open file limit is %llu: fewer than max_clients (%u) "
                 "connections may be possible",
                 (unsigned long long)rl.rlim_cur, conf->max_clients);
    else
        log_notice("open file limit raised to %llu (max_clients %u)",
                   (unsigned long long)rl.rlim_cur, conf->max_clients);
}

/* Keep a replaced TLS context until exit: sessions opened with it may
 * still be running. */
static void
retire_tls(struct proc *pr, struct tls_ctx *t)
{
    if (t == NULL)
        return;
    pr->retired_tls = sp_realloc(pr->retired_tls, (pr->nretired_tls + 1) *
                                                      sizeof(*pr->retired_tls));
    pr->retired_tls[pr->nretired_tls++] = t;
}

/*
 * Build the TLS contexts neu needs where its settings changed: the
 * listeners' and the backends'. On success *ctls and *btls are the ones
 * to run with (new, or the ones in force). -1 with err set when a file
 * does not load; nothing built is kept.
 */
static int
reload_tls(struct proc *pr, const struct config *neu, struct tls_ctx **ctls,
           struct tls_ctx **btls, char *err, size_t errlen)
{
    char terr[400];
    *ctls = pr->client_tls;
    *btls = pr->shared->backend_tls;
    if (neu->ntls_listen > 0 &&
        (*ctls == NULL || tls_certs_changed(pr->conf, neu))) {
        *ctls = tls_server_ctx(neu->tls_cert, neu->tls_key, neu->tls_ca,
                               (int)neu->tls_require_client_cert, terr,
                               sizeof(terr));
        if (*ctls == NULL) {
            snprintf(err, errlen, "tls: %s", terr);
            return -1;
        }
    }
    if (!config_changed(pr->conf, neu, "backend_tls.*"))
        return 0;
    *btls = NULL;
    if (neu->backend_tls &&
        (*btls = tls_client_ctx(neu->backend_tls_ca, neu->backend_tls_cert,
                                neu->backend_tls_key,
                                neu->backend_tls_server_name,
                                (int)neu->backend_tls_verify, terr,
                                sizeof(terr))) == NULL) {
        if (*ctls != pr->client_tls)
            tls_ctx_free(*ctls);
        snprintf(err, errlen, "backend_tls: %s", terr);
        return -1;
    }
    return 0;
}

/* 1 when a and b share a TCP port: evhttp binds without SO_REUSEPORT, so
 * the new endpoint could not bind while the old one holds it. */
static int
ports_overlap(const struct config *a, const struct config *b)
{
    for (size_t i = 0; i < a->nmetrics; i++)
        for (size_t j = 0; j < b->nmetrics; j++)
            if (a->metrics[i].port == b->metrics[j].port)
                return 1;
    return 0;
}

/*
 * metrics.listen changed: serve the endpoint on the new addresses. The
 * old endpoint stays until the new one is bound, unless they share a
 * port; then it goes first, and comes back if the new addresses cannot be
 * bound. On failure neu keeps the old addresses, so that the
 * configuration in force says what is served (and the next reload tries
 * again).
 */
static void
reload_metrics(struct proc *pr, struct config *neu)
{
    if (!config_changed(pr->conf, neu, "metrics.listen"))
        return;
    if (ports_overlap(pr->conf, neu)) {
        http_free(pr->http);
        pr->http = NULL;
    }
    struct http *h = NULL;
    if (neu->nmetrics > 0) {
        h = http_new(pr->base, neu->metrics, neu->nmetrics, pr->workers,
                     pr->nworkers);
        if (h == NULL) {
            log_error("reload: metrics.listen: cannot listen on the new "
                      "addresses; the endpoint stays where it was");
            config_copy_option(neu, pr->conf, "metrics.listen");
            if (pr->http == NULL && neu->nmetrics > 0)
                pr->http = http_new(pr->base, neu->metrics, neu->nmetrics,
                                    pr->workers, pr->nworkers);
            return;
        }
    }
    http_free(pr->http);
    pr->http = h;
    if (h == NULL)
        log_notice("reload: metrics endpoint closed");
}

/* config_diff's report: one line per changed option. */
static void
reload_log_change(void *arg, const char *name, const char *old_value,
                  const char *new_value, enum config_reload how)
{
    (void)arg;
    if (how == CONFIG_RESTART)
        log_warn("reload: %s: %s -> %s (needs a restart; %s stays in "
                 "force)", name, old_value, new_value, old_value);
    else
        log_notice("reload: %s: %s -> %s (%s)", name, old_value, new_value,
                   how == CONFIG_LIVE ? "applied"
                                      : "applies to new connections");
}

/*
 * SIGHUP: read the file again. If it (and every TLS file it names) is
 * valid: log each changed option with its old and new value and whether
 * it is applied, applies to new connections or needs a restart; apply
 * it (log settings and the metrics endpoint here, TLS contexts for new
 * connections, the rest in every worker at its next loop turn) without
 * dropping a client. If not, log why and keep the running configuration.
 * Counted in shared->reloads_ok / reloads_invalid for /metrics.
 */
static void
on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proc *pr = arg;
    char err[512];
    struct config *neu = NULL;
    struct tls_ctx *ctls, *btls;

    if (config_load_file(pr->file, &neu, err, sizeof(err)) != 0 ||
        reload_tls(pr, neu, &ctls, &btls, err, sizeof(err)) != 0) {
        log_error("reload: %s; keeping the running configuration", err);
        pr->shared->reloads_invalid++;
        config_free(neu);
        return;
    }
    reload_metrics(pr, neu);
    size_t changed = config_diff(pr->conf, neu, reload_log_change, NULL);
    config_keep_restart(neu, pr->conf);
    if (ctls != pr->client_tls) {
        retire_tls(pr, pr->client_tls);
        pr->client_tls = ctls;
    }
    if (btls != pr->shared->backend_tls) {
        retire_tls(pr, pr->shared->backend_tls);
        __atomic_store_n(&pr->shared->backend_tls, btls, __ATOMIC_RELEASE);
    }
    log_set_level(neu->log_level);
    log_set_format(neu->log_format);
    if (log_open(neu->log_file) != 0)
        log_error("reload: cannot open log file %s", neu->log_file);
    pr->retired = sp_realloc(pr->retired,
                             (pr->nretired + 1) * sizeof(*pr->retired));
    pr->retired[pr->nretired++] = pr->conf;
    pr->conf = neu;
    for (int i = 0; i < pr->nworkers; i++)
        worker_loop_reload(pr->workers[i], neu, pr->client_tls);
    pr->shared->reloads_ok++;
    pr->shared->last_reload_success_unix = (int64_t)time(NULL);
    pr->shared->readiness = neu->metrics_readiness;
    log_notice("reload: configuration from %s applied (%zu option%s "
               "changed)", pr->file, changed, changed == 1 ? "" : "s");
}

/* SIGUSR1: reopen the log file (after logrotate moved it). */
static void
on_reopen_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proc *pr = arg;
    if (log_open(pr->conf->log_file) != 0)
        log_error("cannot reopen log file %s", pr->conf->log_file);
    else
        log_notice("log file reopened");
}

/* ---- -t: what start-up would check --------------------------------- */

/* A -t finding as FILE:LINE: message (FILE: message when the option has
 * no line): errors on stderr, notes on stdout. */
static void
check_say(const struct config *c, uint32_t line, int error, const char *fmt,
          ...) __attribute__((format(printf, 4, 5)));

static void
check_say(const struct config *c, uint32_t line, int error, const char *fmt,
          ...)
{
    FILE *out = error ? stderr : stdout;
    va_list ap;
    if (line > 0)
        fprintf(out, "%s:%u: %s", c->file, line, error ? "" : "note: ");
    else
        fprintf(out, "%s: %s", c->file, error ? "" : "note: ");
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

/* The line of the option a TLS error is about: "cannot load key ..."
 * names prefix.key, "cannot load CA" prefix.ca, others the certificate
 * (else the section's first option in the file). */
static uint32_t
check_tls_line(const struct config *c, const char *prefix, const char *err,
               const char *fallback)
{
    char name[64];
    const char *opt = strstr(err, "cannot load key") ? "key"
                      : strstr(err, "cannot load CA") ? "ca" : "cert";
    snprintf(name, sizeof(name), "%s.%s", prefix, opt);
    uint32_t line = config_line(c, name);
    return line > 0 ? line : config_line(c, fallback);
}

/* Load the TLS files as start-up does: they exist, parse, and the key
 * matches the certificate. Returns the number of errors. */
static int
check_tls(const struct config *c)
{
    char err[400];
    int errors = 0;
    struct tls_ctx *t;
    if (c->ntls_listen > 0) {
        t = tls_server_ctx(c->tls_cert, c->tls_key, c->tls_ca,
                           (int)c->tls_require_client_cert, err, sizeof(err));
        if (t == NULL) {
            check_say(c, check_tls_line(c, "tls", err, "tls.listen"), 1,
                      "tls: %s", err);
            errors++;
        }
        tls_ctx_free(t);
    }
    if (c->backend_tls) {
        t = tls_client_ctx(c->backend_tls_ca, c->backend_tls_cert,
                           c->backend_tls_key, c->backend_tls_server_name,
                           (int)c->backend_tls_verify, err, sizeof(err));
        if (t == NULL) {
            check_say(c, check_tls_line(c, "backend_tls", err,
                                        "backend_tls.enabled"), 1,
                      "backend_tls: %s", err);
            errors++;
        }
        tls_ctx_free(t);
    }
    return errors;
}

/*
 * Bind a TCP address as the listeners do (SO_REUSEADDR and SO_REUSEPORT,
 * so a running slotproxy's listeners do not get in the way) and close it.
 * 0 bound, 1 in use by a socket that does not share its port, -1 error
 * with why set.
 */
static int
check_bind_tcp(const struct sp_addr *a, char *why, size_t whylen)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int one = 1, rc = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", a->port);
    int gai = getaddrinfo(a->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(why, whylen, "cannot resolve: %s", gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        rc = errno == EADDRINUSE ? 1 : -1;
        snprintf(why, whylen, "cannot bind: %s", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

/* A unix socket path: a socket file there is in use or stale (start-up
 * replaces it; not touched here); else its directory must be writable. */
static int
check_bind_unix(const struct sp_addr *a, char *why, size_t whylen)
{
    struct stat st;
    if (stat(a->path, &st) == 0) {
        if (S_ISSOCK(st.st_mode))
            return 1;
        snprintf(why, whylen, "exists and is not a socket");
        return -1;
    }
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", a->path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, whylen, "cannot create a socket in %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Every address of one option can be bound. Returns the errors. */
static int
check_addrs(const struct config *c, const char *opt,
            const struct sp_addr *addrs, size_t n)
{
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        char name[300], why[300];
        config_addr_format(&addrs[i], name, sizeof(name));
        uint32_t line = addrs[i].line ? addrs[i].line : config_line(c, opt);
        int rc = addrs[i].kind == ADDR_UNIX
                     ? check_bind_unix(&addrs[i], why, sizeof(why))
                     : check_bind_tcp(&addrs[i], why, sizeof(why));
        if (rc < 0) {
            check_say(c, line, 1, "%s: %s: %s", opt, name, why);
            errors++;
        } else if (rc > 0) {
            check_say(c, line, 0, "%s: %s is in use (binding not tried "
                      "past that)", opt, name);
        }
    }
    return errors;
}

/* log.file can be opened for appending (created if missing). */
static int
check_log_file(const struct config *c)
{
    if (c->log_file == NULL)
        return 0;
    int fd = open(c->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0640);
    if (fd < 0) {
        check_say(c, config_line(c, "log.file"), 1, "log.file: cannot open "
                  "%s: %s", c->log_file, strerror(errno));
        return 1;
    }
    close(fd);
    return 0;
}

/*
 * slotproxy -t: beyond the file itself (already parsed and validated),
 * what start-up would check: the TLS files load and keys match their
 * certificates, the log file opens, and every listen, tls.listen and
 * metrics.listen address can be bound. An address in use by something
 * that does not share it (a running slotproxy's metrics endpoint, under
 * systemctl reload) is a note, not an error. Returns the number of
 * errors.
 */
static int
check_config(const struct config *c)
{
    int errors = check_tls(c) + check_log_file(c);
    errors += check_addrs(c, "listen", c->listen, c->nlisten);
    errors += check_addrs(c, "tls.listen", c->tls_listen, c->ntls_listen);
    errors += check_addrs(c, "metrics.listen", c->metrics, c->nmetrics);
    return errors;
}

static int
dump_config(const struct config *c)
{
    struct buf b;
    buf_init(&b);
    config_dump(c, &b);
    int rc = fwrite(b.data, 1, b.len, stdout) == b.len ? 0 : 1;
    buf_deinit(&b);
    return fflush(stdout) == 0 ? rc : 1;
}

/*
 * The I/O mode the workers start with: the config's io, or SLOTPROXY_IO
 * when set; auto and io_uring are tried here once (a ring made and
 * freed), so that auto settles on epoll where io_uring cannot be used and
 * io_uring fails the start there. -1 on that failure or a bad variable.
 */
static int
io_choose(const struct config *conf, int *mode)
{
    const char *env = getenv("SLOTPROXY_IO");
    char err[200];
    int want = conf->io;
    if (env != NULL && *env != '\0') {
        want = io_mode_from_name(env);
        if (want < 0) {
            log_error("SLOTPROXY_IO=%s: must be auto, epoll or io_uring",
                      env);
            return -1;
        }
    }
    *mode = IO_EPOLL;
    if (want == IO_EPOLL)
        return 0;
    struct iobatch *b = iobatch_new(1, err, sizeof(err));
    if (b == NULL) {
        if (want == IO_URING) {
            log_error("io: io_uring cannot be used: %s", err);
            return -1;
        }
        log_notice("io: %s: using epoll", err);
        return 0;
    }
    iobatch_free(b);
    *mode = IO_URING;
    return 0;
}

static void *
worker_thread(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "w%d", worker_id(w));
    log_set_thread(name);
    /* "slotproxy-w0" is cut to 15 bytes by the kernel: "sp-w0" shows in
     * top -H and /proc/PID/task/TID/comm, which bench scripts read. */
    snprintf(name, sizeof(name), "sp-w%d", worker_id(w));
    pthread_setname_np(pthread_self(), name);
    if (worker_id(w) > 0)
        sp_alloc_own_arena();
    worker_loop_io_init(w);
    event_base_dispatch(w->base);
    return NULL;
}

/*
 * Start the workers (worker 0 holds the listeners and hands each new
 * connection to the worker with the fewest, listener.c), then wait for a
 * stop signal in the main thread. Workers share the read-only config and
 * struct shared (the worker list for the acceptor's choice).
 */
static int
run(struct config **confp, const char *file)
{
    struct config *conf = *confp;
    int n = conf->workers > 0 ? conf->workers : 1;
    struct shared shared;
    struct proc pr = {.base = event_base_new(),
                      .workers = sp_calloc((size_t)n, sizeof(void *)),
                      .file = file, .conf = conf, .shared = &shared};
    pthread_t *tids = sp_calloc((size_t)n, sizeof(*tids));
    int rc = pr.base == NULL;
    shared_init(&shared);
    shared.last_reload_success_unix = (int64_t)time(NULL);
    shared.readiness = conf->metrics_readiness;
    struct tls_ctx *client_tls = NULL;
    char terr[400];
    if (conf->ntls_listen > 0) {
        client_tls = tls_server_ctx(conf->tls_cert, conf->tls_key,
                                    conf->tls_ca,
                                    (int)conf->tls_require_client_cert,
                                    terr, sizeof(terr));
        if (client_tls == NULL) {
            log_error("tls: %s", terr);
            rc = 1;
        }
        pr.client_tls = client_tls;
    }
    if (rc == 0 && conf->backend_tls) {
        shared.backend_tls = tls_client_ctx(conf->backend_tls_ca,
                                            conf->backend_tls_cert,
                                            conf->backend_tls_key,
                                            conf->backend_tls_server_name,
                                            (int)conf->backend_tls_verify,
                                            terr, sizeof(terr));
        if (shared.backend_tls == NULL) {
            log_error("backend_tls: %s", terr);
            rc = 1;
        }
    }
    if (rc == 0 && io_choose(conf, &shared.io_mode) != 0)
        rc = 1;
    size_t nls = conf->nlisten + conf->ntls_listen;

    for (int i = 0; i < n && rc == 0; i++) {
        struct worker *w = worker_loop_new(conf, i, &shared);
        if (w == NULL) {
            log_error("cannot create the event loop");
            rc = 1;
            break;
        }
        pr.workers[pr.nworkers++] = w;
        /* Worker 0 accepts for all (listener.c). */
        for (size_t j = 0; i == 0 && j < nls; j++) {
            int tls = j >= conf->nlisten;
            const struct sp_addr *a = tls ? &conf->tls_listen[j - conf->nlisten]
                                          : &conf->listen[j];
            struct listener *l = listener_new(w, a, tls ? client_tls : NULL);
            if (l == NULL)
                rc = 1;
            else
                worker_loop_add_listener(w, l);
        }
    }
    /* INFO and PROXY STATS, served by any worker, sum all of them; the
     * acceptor picks among them (listener.c). */
    shared.workers = pr.workers;
    shared.nworkers = pr.nworkers;
    /* One identity for the whole process (CLUSTER MYID/NODES). */
    for (int i = 1; i < pr.nworkers; i++)
        memcpy(pr.workers[i]->proxy_id, pr.workers[0]->proxy_id,
               sizeof(pr.workers[0]->proxy_id));
    struct event *sigint = NULL, *sigterm = NULL, *sighup = NULL;
    struct event *sigusr1 = NULL;
    int started = 0;
    if (rc == 0 && conf->nmetrics > 0) {
        pr.http = http_new(pr.base, conf->metrics, conf->nmetrics,
                           pr.workers, pr.nworkers);
        rc = pr.http == NULL;
    }
    if (rc == 0) {
        sigint = evsignal_new(pr.base, SIGINT, on_stop_signal, &pr);
        sigterm = evsignal_new(pr.base, SIGTERM, on_stop_signal, &pr);
        sighup = evsignal_new(pr.base, SIGHUP, on_reload_signal, &pr);
        sigusr1 = evsignal_new(pr.base, SIGUSR1, on_reopen_signal, &pr);
        event_add(sigint, NULL);
        event_add(sigterm, NULL);
        event_add(sighup, NULL);
        event_add(sigusr1, NULL);
        for (int i = 0; i < pr.nworkers; i++) {
            worker_loop_start(pr.workers[i]);
            if (pthread_create(&tids[i], NULL, worker_thread,
                               pr.workers[i]) != 0) {
                log_error("cannot start worker thread %d", i);
                rc = 1;
                break;
            }
            started++;
        }
        if (rc == 0) {
            log_notice("slotproxy %s started (pid %ld, %d worker%s, io %s)",
                       PACKAGE_VERSION, (long)getpid(), n, n > 1 ? "s" : "",
                       io_mode_name(shared.io_mode));
            /* What start-up freed (the YAML parse ...) sits in this
             * thread's cache, which the workers' releases never reach:
             * hand it back before the main thread goes quiet. */
            sp_alloc_release();
            event_base_dispatch(pr.base);
        } else {
            for (int i = 0; i < started; i++)
                worker_loop_stop(pr.workers[i], 0);
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    http_free(pr.http);
    for (int i = 0; i < pr.nworkers; i++)
        worker_loop_free(pr.workers[i]);
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    if (sighup != NULL)
        event_free(sighup);
    if (sigusr1 != NULL)
        event_free(sigusr1);
    /* Workers are gone: the configs they read can go too (the one in
     * force is freed by main). */
    for (size_t i = 0; i < pr.nretired; i++)
        config_free(pr.retired[i]);
    sp_free(pr.retired);
    *confp = pr.conf;
    if (pr.base != NULL)
        event_base_free(pr.base);
    sp_free(tids);
    sp_free(pr.workers);
    tls_ctx_free(shared.backend_tls);
    tls_ctx_free(pr.client_tls);
    for (size_t i = 0; i < pr.nretired_tls; i++)
        tls_ctx_free(pr.retired_tls[i]);
    sp_free(pr.retired_tls);
    shared_deinit(&shared);
    if (rc == 0)
        log_notice("slotproxy stopped");
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"daemonize", no_argument, NULL, 'd'},
        {"pidfile", required_argument, NULL, 'p'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"dump-config", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *pidfile = NULL;
    int test_only = 0, daemonize = 0, dump = 0, opt;

    while ((opt = getopt_long(argc, argv, "c:tdp:vVh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'd':
            daemonize = 1;
            break;
        case 'p':
            pidfile = optarg;
            break;
        case 'D':
            dump = 1;
            break;
        case 'v':
        case 'V':
            buildinfo_print(stdout);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (file == NULL || optind != argc) {
        usage(stderr);
        return 1;
    }
    char err[512];
    struct config *conf = NULL;
    if (config_load_file(file, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (dump || test_only) {
        int rc = dump ? dump_config(conf) : 0;
        if (rc == 0 && test_only && check_config(conf) > 0)
            rc = 1;
        else if (rc == 0 && test_only)
            printf("%s: configuration is valid\n", file);
        config_free(conf);
        return rc;
    }
    log_set_thread("main");
    log_set_level(conf->log_level);
    log_set_format(conf->log_format);
    if (log_open(conf->log_file) != 0) {
        fprintf(stderr, "cannot open log file %s\n", conf->log_file);
        config_free(conf);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    install_crash_handler();
    raise_nofile(conf);
    if (daemonize && daemonize_self(conf) != 0) {
        config_free(conf);
        return 1;
    }
    if (pidfile != NULL && write_pidfile(pidfile) != 0) {
        log_error("cannot write pid file %s: %s", pidfile, strerror(errno));
        config_free(conf);
        return 1;
    }
    /* run() may replace conf (SIGHUP); the one in force comes back. */
    int rc = run(&conf, file);
    if (pidfile != NULL)
        unlink(pidfile);
    config_free(conf);
    log_open(NULL);
    return rc;
}
