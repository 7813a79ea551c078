/* slotproxy - BSD-2-Clause
 *
 * Entry point: command line, config check (-t), startup order (log, worker,
 * listeners, topology), signals, and an orderly shutdown that frees
 * everything (so valgrind and LeakSanitizer see a clean exit).
 */
#include "build_config.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: slotproxy -c FILE [-t]\n"
            "       slotproxy -v | -h\n"
            "\n"
            "A Redis Cluster proxy: plain RESP clients connect to one\n"
            "endpoint; commands are routed to the cluster's masters.\n"
            "\n"
            "  -c, --config FILE  YAML configuration (see slotproxy.yml(5))\n"
            "  -t, --test         check the configuration and exit (0 = ok)\n"
            "  -v, --version      print the version and exit\n"
            "  -h, --help         this help\n"
            "\n"
            "Runs in the foreground; SIGINT or SIGTERM stops it.\n");
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct event_base *base = arg;
    log_notice("received %s, shutting down",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopbreak(base);
}

/* Raise the open-file limit to what max_clients needs, as far as the hard
 * limit allows. */
static void
raise_nofile(const struct config *conf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conf->max_clients + 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        log_warn("open file limit is %llu: fewer than max_clients (%u) "
                 "connections may be possible",
                 (unsigned long long)rl.rlim_cur, conf->max_clients);
}

static int
run(struct config *conf)
{
    struct worker *w = worker_new(conf);
    if (w == NULL) {
        log_error("cannot create the event loop");
        return 1;
    }
    struct listener **ls = sp_calloc(conf->nlisten, sizeof(*ls));
    int rc = 0;
    for (size_t i = 0; i < conf->nlisten; i++) {
        ls[i] = listener_new(w, &conf->listen[i]);
        if (ls[i] == NULL)
            rc = 1;
    }
    struct event *sigint = evsignal_new(w->base, SIGINT, on_stop_signal,
                                        w->base);
    struct event *sigterm = evsignal_new(w->base, SIGTERM, on_stop_signal,
                                         w->base);
    if (rc == 0) {
        event_add(sigint, NULL);
        event_add(sigterm, NULL);
        worker_start(w);
        log_notice("slotproxy %s started (pid %ld)", PACKAGE_VERSION,
                   (long)getpid());
        event_base_dispatch(w->base);
    }
    for (size_t i = 0; i < conf->nlisten; i++)
        listener_free(ls[i]);
    sp_free(ls);
    event_free(sigint);
    event_free(sigterm);
    worker_free(w);
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
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    int test_only = 0, opt;

    while ((opt = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'v':
            printf("slotproxy %s\n", PACKAGE_VERSION);
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
    log_set_level(conf->log_level);
    if (log_open(conf->log_file) != 0) {
        fprintf(stderr, "cannot open log file %s\n", conf->log_file);
        config_free(conf);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(conf);
    int rc = run(conf);
    config_free(conf);
    log_open(NULL);
    return rc;
}
