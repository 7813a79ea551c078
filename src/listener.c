/* slotproxy - BSD-2-Clause
 *
 * Listening sockets, accept, and handing each accepted socket to a
 * worker. Accepted sockets are non-blocking with TCP_NODELAY (replies are
 * already batched per loop turn, so Nagle would only add latency).
 *
 * One worker (worker 0) holds every listening socket (TCP, TLS, unix) and
 * accepts; each new connection goes to the worker with the fewest
 * connections at that moment (ties: the worker after the acceptor first),
 * through that worker's inbox (a locked array and an eventfd its loop
 * watches). With SO_REUSEPORT sockets per worker the kernel hashed
 * connections blindly: 8 long-lived connections over 4 workers left one
 * of them twice as busy as another. Counting on close keeps the choice
 * right as connections come and go.
 *
 * Costs: the lock is taken twice per connection (hand-off, take), never
 * per request. Accepting is a small part of a worker's work (a long-lived
 * connection is accepted once), so one acceptor does not limit scaling;
 * but while worker 0 is stalled (a long loop turn, a slow callback) no
 * connection is accepted: they wait in the kernel's backlog (511). An
 * inbox needs no bound: its entries count in shared->nclients, so
 * max_clients caps them, and in its worker's nconns, so a stalled worker
 * gets no more once it is ahead of the others.
 */
#include "build_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
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
    struct worker *w;               /* accepting worker (worker 0) */
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

/* A connection accepted for another worker, waiting in its inbox. */
struct handoff {
    int fd;                         /* the accepted socket (owned) */
    struct tls_ctx *tls;            /* its listener's TLS context, or NULL
                                     * (main keeps retired ones alive) */
    char peer[64];                  /* peer address for logs */
};

/* A worker's connections handed over by the acceptor: the acceptor
 * appends, the owner takes the whole array in its loop. */
struct inbox {
    pthread_mutex_t lock;           /* guards v, n, cap (acceptor, owner) */
    struct handoff *v;              /* connections waiting to be taken */
    uint32_t n;                     /* entries in v */
    uint32_t cap;                   /* room in v */
    int efd;                        /* eventfd: written for each hand-off */
    struct event *ev;               /* the owner's read event on efd */
};

/* The owner's side (its loop, woken by the eventfd): take every
 * connection waiting in the inbox; each becomes a client (counted since
 * its hand-off, uncounted by client_close). */
static void
inbox_on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct inbox *ib = w->inbox;
    uint64_t cnt;

    (void)what;
    if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        log_warn("worker %d: inbox: %s", w->id, strerror(errno));
    /* Take the whole array: the acceptor starts a new one meanwhile. */
    pthread_mutex_lock(&ib->lock);
    struct handoff *v = ib->v;
    uint32_t n = ib->n;
    ib->v = NULL;
    ib->n = ib->cap = 0;
    pthread_mutex_unlock(&ib->lock);
    for (uint32_t i = 0; i < n; i++)
        client_accept(w, v[i].fd, v[i].peer, v[i].tls);
    sp_free(v);
}

/* w's inbox and its read event in w's loop; -1 when no eventfd could be
 * made. */
int
listener_inbox_init(struct worker *w)
{
    struct inbox *ib = sp_calloc(1, sizeof(*ib));
    ib->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ib->efd < 0) {
        sp_free(ib);
        return -1;
    }
    pthread_mutex_init(&ib->lock, NULL);
    ib->ev = event_new(w->base, ib->efd, EV_READ | EV_PERSIST,
                       inbox_on_ready, w);
    event_add(ib->ev, NULL);
    w->inbox = ib;
    return 0;
}

/* After every worker's loop stopped (no hand-off can come): close the
 * connections handed over too late to be taken, and uncount them. */
void
listener_inbox_free(struct worker *w)
{
    struct inbox *ib = w->inbox;
    if (ib == NULL)
        return;
    for (uint32_t i = 0; i < ib->n; i++) {
        close(ib->v[i].fd);
        __atomic_sub_fetch(&w->shared->nclients, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&w->nconns, 1, __ATOMIC_RELAXED);
    }
    event_free(ib->ev);
    close(ib->efd);
    pthread_mutex_destroy(&ib->lock);
    sp_free(ib->v);
    sp_free(ib);
    w->inbox = NULL;
}

/* The worker with the fewest connections, counting those on their way;
 * on a tie the one after self (the acceptor also accepts for all). */
static struct worker *
pick_worker(struct worker *self)
{
    const struct shared *sh = self->shared;
    struct worker *best = self;
    unsigned int least = UINT32_MAX;

    for (int k = 1; k <= sh->nworkers; k++) {
        struct worker *o = sh->workers[(self->id + k) % sh->nworkers];
        unsigned int n = __atomic_load_n(&o->nconns, __ATOMIC_RELAXED);
        if (n < least) {
            least = n;
            best = o;
        }
    }
    return best;
}

/* Give fd to the least loaded worker: at once if that is the acceptor,
 * else through its inbox. Counted on the target before it takes it, so
 * that the next accept already sees it. */
static void
hand_off(struct listener *l, int fd, const char *peer)
{
    struct worker *to = pick_worker(l->w);
    __atomic_add_fetch(&to->nconns, 1, __ATOMIC_RELAXED);
    if (to == l->w) {
        client_accept(to, fd, peer, l->tls);
        return;
    }
    struct inbox *ib = to->inbox;
    pthread_mutex_lock(&ib->lock);
    if (ib->n == ib->cap) {
        ib->cap = ib->cap ? ib->cap * 2 : 16;
        ib->v = sp_realloc(ib->v, ib->cap * sizeof(*ib->v));
    }
    struct handoff *h = &ib->v[ib->n++];
    h->fd = fd;
    h->tls = l->tls;
    snprintf(h->peer, sizeof(h->peer), "%s", peer);
    pthread_mutex_unlock(&ib->lock);
    uint64_t one = 1;
    /* Fails only when the counter is about to overflow: it is non-zero,
     * so the owner wakes anyway. */
    ssize_t n = write(ib->efd, &one, sizeof(one));
    (void)n;
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
        /* max_clients counts every worker's clients, those handed over
         * and not yet taken too. */
        if (__atomic_add_fetch(&w->shared->nclients, 1, __ATOMIC_RELAXED) >
            w->conf->max_clients) {
            __atomic_sub_fetch(&w->shared->nclients, 1, __ATOMIC_RELAXED);
            /* Best effort, as Redis does: tell the client why. */
            ssize_t n = write(cfd, max_clients_err,
                              sizeof(max_clients_err) - 1);
            (void)n;
            close(cfd);
            w->stats.disc[DISC_MAX_CLIENTS]++;
            continue;
        }
        if (!l->is_unix) {
            int one = 1;
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        char peer[64];
        format_peer(&ss, peer, sizeof(peer));
        hand_off(l, cfd, peer);
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
    /* One socket per address, in the accepting worker; SO_REUSEPORT
     * lets a reload bind a replacement (a TLS listener with new
     * certificates) before the old one closes. */
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
listener_new(struct worker *w, const struct sp_addr *a, struct tls_ctx *tls)
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
