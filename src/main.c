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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"
#include "buildinfo.h"
#include "config.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: slotproxy -c FILE [-t] [-d] [-p PIDFILE]\n"
            "       slotproxy -v | -h\n"
            "\n"
            "A Redis Cluster proxy: plain RESP clients connect to one\n"
            "endpoint; commands are routed to the cluster's masters.\n"
            "\n"
            "  -c, --config FILE  YAML configuration (see slotproxy.yml(5))\n"
            "  -t, --test         check the configuration and exit (0 = ok)\n"
            "  -d, --daemonize    run in the background (default: foreground)\n"
            "  -p, --pidfile FILE write the process id to FILE\n"
            "  -v, -V, --version  print the version, commit, build options\n"
            "                     and library versions, and exit\n"
            "  -h, --help         this help\n"
            "\n"
            "SIGTERM or SIGINT: stop accepting, let requests in flight finish\n"
            "(up to shutdown_grace), exit 0.\n");
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
    struct tls_ctx **retired_tls;   /* replaced ones (open sessions may
                                     * still use them); freed at exit */
    size_t nretired_tls;
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
        worker_stop(pr->workers[i], 1);
    event_base_loopbreak(pr->base);
}

#ifndef SP_SANITIZERS
/*
 * On a fatal signal, write the signal and a stack trace to the log before
 * dying (with the default action, so a core dump or a Kubernetes restart
 * still happens): a crash then leaves something to diagnose. Only
 * async-signal-safe calls; backtrace() was primed at startup so that it
 * does not load libgcc (and malloc) inside the handler.
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
    int nf = backtrace(frames, 64);
    backtrace_symbols_fd(frames, nf, fd);
    (void)w;
    raise(sig); /* SA_RESETHAND restored the default action */
}

static void
install_crash_handler(void)
{
    void *prime[1];
    backtrace(prime, 1);
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

/* Options that only a restart can change: say so rather than half-apply. */
static void
reload_warn_restart(const struct config *old, const struct config *neu)
{
    if (old->workers != neu->workers || old->nmetrics != neu->nmetrics ||
        old->backend_tls != neu->backend_tls ||
        old->node_connections != neu->node_connections)
        log_warn("reload: backend_tls, workers, metrics and "
                 "connections_per_node keep their values until a restart");
}

/*
 * SIGHUP: read the file again; if it is valid, apply it to every worker
 * (timeouts, limits, auth, disabled commands, log level and file) without
 * dropping a client; if not, log why and keep the running config.
 */
static void
on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proc *pr = arg;
    char err[512];
    struct config *neu = NULL;

    if (config_load_file(pr->file, &neu, err, sizeof(err)) != 0) {
        log_error("reload: %s; keeping the running configuration", err);
        return;
    }
    struct tls_ctx *tls = pr->client_tls;
    if (neu->ntls_listen > 0 &&
        (tls == NULL || tls_certs_changed(pr->conf, neu))) {
        /* New certificates: new listeners use them, sessions already
         * open keep the old context (kept until exit). */
        char terr[400];
        tls = tls_server_ctx(neu->tls_cert, neu->tls_key, neu->tls_ca,
                             (int)neu->tls_require_client_cert, terr,
                             sizeof(terr));
        if (tls == NULL) {
            log_error("reload: tls: %s; keeping the running configuration",
                      terr);
            config_free(neu);
            return;
        }
        if (pr->client_tls != NULL) {
            pr->retired_tls = sp_realloc(pr->retired_tls,
                                         (pr->nretired_tls + 1) *
                                             sizeof(*pr->retired_tls));
            pr->retired_tls[pr->nretired_tls++] = pr->client_tls;
        }
        pr->client_tls = tls;
    }
    reload_warn_restart(pr->conf, neu);
    log_set_level(neu->log_level);
    log_set_format(neu->log_format);
    if (log_open(neu->log_file) != 0)
        log_error("reload: cannot open log file %s", neu->log_file);
    pr->retired = sp_realloc(pr->retired,
                             (pr->nretired + 1) * sizeof(*pr->retired));
    pr->retired[pr->nretired++] = pr->conf;
    pr->conf = neu;
    for (int i = 0; i < pr->nworkers; i++)
        worker_reload(pr->workers[i], neu, pr->client_tls);
    log_notice("reload: configuration from %s applied", pr->file);
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
    event_base_dispatch(w->base);
    return NULL;
}

/*
 * Start the workers, each with its own listeners (SO_REUSEPORT for TCP;
 * a unix socket can only be bound once, so worker 0 alone listens there),
 * then wait for a stop signal in the main thread. Workers share nothing
 * but the read-only config.
 */
static int
run(struct config **confp, const char *file)
{
    struct config *conf = *confp;
    int n = conf->workers > 0 ? conf->workers : 1;
    struct proc pr = {event_base_new(), sp_calloc((size_t)n, sizeof(void *)),
                      0, file, conf, NULL, 0, NULL, NULL, 0};
    pthread_t *tids = sp_calloc((size_t)n, sizeof(*tids));
    int rc = pr.base == NULL;
    struct shared shared;
    shared_init(&shared);
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
    size_t nls = conf->nlisten + conf->ntls_listen;

    for (int i = 0; i < n && rc == 0; i++) {
        struct worker *w = worker_new(conf, i, &shared);
        if (w == NULL) {
            log_error("cannot create the event loop");
            rc = 1;
            break;
        }
        pr.workers[pr.nworkers++] = w;
        for (size_t j = 0; j < nls; j++) {
            int tls = j >= conf->nlisten;
            const struct sp_addr *a = tls ? &conf->tls_listen[j - conf->nlisten]
                                          : &conf->listen[j];
            if (i > 0 && a->kind == ADDR_UNIX)
                continue;
            struct listener *l = listener_new(w, a, i == 0,
                                              tls ? client_tls : NULL);
            if (l == NULL)
                rc = 1;
            else
                worker_add_listener(w, l);
        }
    }
    /* One identity for the whole process (CLUSTER MYID/NODES). */
    for (int i = 1; i < pr.nworkers; i++)
        memcpy(pr.workers[i]->proxy_id, pr.workers[0]->proxy_id,
               sizeof(pr.workers[0]->proxy_id));
    struct event *sigint = NULL, *sigterm = NULL, *sighup = NULL;
    struct event *sigusr1 = NULL;
    struct http *http = NULL;
    int started = 0;
    if (rc == 0 && conf->nmetrics > 0) {
        http = http_new(pr.base, conf->metrics, conf->nmetrics, pr.workers,
                        pr.nworkers);
        rc = http == NULL;
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
            worker_start(pr.workers[i]);
            if (pthread_create(&tids[i], NULL, worker_thread,
                               pr.workers[i]) != 0) {
                log_error("cannot start worker thread %d", i);
                rc = 1;
                break;
            }
            started++;
        }
        if (rc == 0) {
            log_notice("slotproxy %s started (pid %ld, %d worker%s)",
                       PACKAGE_VERSION, (long)getpid(), n, n > 1 ? "s" : "");
            event_base_dispatch(pr.base);
        } else {
            for (int i = 0; i < started; i++)
                worker_stop(pr.workers[i], 0);
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    http_free(http);
    for (int i = 0; i < pr.nworkers; i++)
        worker_free(pr.workers[i]);
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
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *pidfile = NULL;
    int test_only = 0, daemonize = 0, opt;

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
    if (test_only) {
        printf("%s: configuration is valid\n", file);
        config_free(conf);
        return 0;
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
