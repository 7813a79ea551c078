/* slotproxy - BSD-2-Clause
 *
 * Listening sockets and accept. Accepted sockets are non-blocking with
 * TCP_NODELAY (replies are already batched per loop turn, so Nagle would
 * only add latency).
 */
#include "build_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "client.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "util.h"
#include "worker.h"

struct listener {
    struct worker *w;               /* clients go to this worker */
    int fd;                         /* listening socket */
    int is_unix;                    /* unix socket (no TCP_NODELAY) */
    char *path;                     /* unix path to unlink at close */
    char name[300];                 /* address for logs */
    struct event *ev;               /* accept readiness */
    struct event *resume;           /* timer: accept again after a pause */
    uint64_t err_log_ms;            /* last accept error logged */
    struct tls_ctx *tls;            /* TLS context (main's), or NULL */
};

/* After accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS ...), the listening socket stays readable: accepting pauses
 * this long instead of failing again in a busy loop. */
#define ACCEPT_BACKOFF_MS 100

static const char max_clients_err[] = "-ERR max number of clients reached\r\n";

static void
format_peer(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        port = ntohs(s->sin_port);
        snprintf(out, outlen, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        port = ntohs(s->sin6_port);
        snprintf(out, outlen, "[%s]:%u", host, port);
    } else {
        snprintf(out, outlen, "unix");
    }
}

static void
listener_on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    if (l->fd >= 0)
        event_add(l->ev, NULL);
}

/* accept() failed with err and would fail again at once: stop accepting
 * for ACCEPT_BACKOFF_MS, and say so at most once a second. Connections
 * wait in the kernel's backlog meanwhile. */
static void
listener_pause(struct listener *l, int err)
{
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};

    event_del(l->ev);
    evtimer_add(l->resume, &tv);
    if (sp_every(&l->err_log_ms, sp_msec_now(), 1000))
        log_warn("listener %s: accept: %s (pausing %d ms)", l->name,
                 strerror(err), ACCEPT_BACKOFF_MS);
}

static void
listener_on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    struct worker *w = l->w;

    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sslen,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                listener_pause(l, errno);
            return;
        }
        /* max_clients counts every worker's clients. */
        if (__atomic_load_n(&w->shared->nclients, __ATOMIC_RELAXED) >=
            w->conf->max_clients) {
            /* Best effort, as Redis does: tell the client why. */
            ssize_t n = write(cfd, max_clients_err,
                              sizeof(max_clients_err) - 1);
            (void)n;
            close(cfd);
            w->stats.connections_rejected++;
            continue;
        }
        if (!l->is_unix) {
            int one = 1;
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        char peer[64];
        format_peer(&ss, peer, sizeof(peer));
        client_accept(w, cfd, peer, l->tls);
    }
}

static int
open_tcp(const struct sp_addr *a, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", a->port);
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Every worker binds its own socket to the address; the kernel
     * spreads new connections over them (no shared accept queue, no
     * lock between workers). */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0)
        goto fail;
    freeaddrinfo(res);
    return fd;
fail:
    snprintf(err, errlen, "%s", strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

static int
open_unix(const struct sp_addr *a, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(a->path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    strcpy(sun.sun_path, a->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    /* A stale socket file from a previous run would make bind fail. */
    struct stat st;
    if (stat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(a->path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
        listen(fd, 511) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct listener *
listener_new(struct worker *w, const struct sp_addr *a, int announce,
             struct tls_ctx *tls)
{
    char err[256];
    struct listener *l = sp_calloc(1, sizeof(*l));
    l->w = w;
    l->tls = tls;
    config_addr_format(a, l->name, sizeof(l->name));
    if (a->kind == ADDR_UNIX) {
        l->is_unix = 1;
        l->fd = open_unix(a, err, sizeof(err));
        l->path = l->fd >= 0 ? sp_strdup(a->path) : NULL;
    } else {
        l->fd = open_tcp(a, err, sizeof(err));
    }
    if (l->fd < 0) {
        log_error("cannot listen on %s: %s", l->name, err);
        sp_free(l);
        return NULL;
    }
    l->ev = event_new(w->base, l->fd, EV_READ | EV_PERSIST,
                      listener_on_accept, l);
    l->resume = evtimer_new(w->base, listener_on_resume, l);
    event_add(l->ev, NULL);
    if (announce)
        log_notice("listening on %s%s", l->name, tls ? " (TLS)" : "");
    return l;
}

const char *
listener_name(const struct listener *l)
{
    return l->name;
}

int
listener_is_tls(const struct listener *l)
{
    return l->tls != NULL;
}

const struct tls_ctx *
listener_tls(const struct listener *l)
{
    return l->tls;
}

void
listener_close(struct listener *l)
{
    if (l == NULL || l->fd < 0)
        return;
    event_del(l->ev);
    event_del(l->resume);
    close(l->fd);
    l->fd = -1;
}

void
listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    listener_close(l);
    event_free(l->ev);
    event_free(l->resume);
    if (l->path != NULL) {
        unlink(l->path);
        sp_free(l->path);
    }
    sp_free(l);
}
