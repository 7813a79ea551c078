/* slotproxy - BSD-2-Clause
 *
 * Multiplexed backend connections. Each connection keeps two queues: the
 * send queue (requests whose bytes are not fully written) and the
 * in-flight FIFO (written, waiting for their reply). Redis answers in
 * order, so the FIFO is the only thing that pairs a reply with its request.
 * When that pairing can no longer be trusted (timeout, dropped connection,
 * garbage from the server) the connection is closed and every request that
 * may have been sent fails: the proxy never re-sends a command that may
 * have run.
 */
#include "build_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "alloc.h"
#include "backend.h"
#include "config.h"
#include "iobatch.h"
#include "log.h"
#include "request.h"
#include "slotmap.h"
#include "tls.h"
#include "worker.h"

static const char asking_cmd[] = "*1\r\n$6\r\nASKING\r\n";
#define ASKING_LEN (sizeof(asking_cmd) - 1)

/* Consecutive request timeouts after which a node is marked down. */
#define DOWN_AFTER_TIMEOUTS 2
#define PROBE_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define READ_CHUNK (16 * 1024)
/* A server outside the map is freed after this long with nothing to do. */
#define REAP_IDLE_MS 10000
#define MAX_IOV 256
/* After a big reply the read buffer gives its room back down to this
 * (the shared connection must not keep a 500 MB value's buffer). */
#define RBUF_KEEP (64 * 1024)

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_mark_dirty(struct backend_conn *c);
static void conn_ready(struct backend_conn *c);

static ssize_t
conn_recv(struct backend_conn *c, void *buf, size_t len)
{
    return c->tls ? tls_read(c->tls, buf, len) : read(c->fd, buf, len);
}

static ssize_t
conn_send(struct backend_conn *c, const struct iovec *iov, int n)
{
    return c->tls ? tls_writev(c->tls, iov, n) : writev(c->fd, iov, n);
}
static void conn_on_write(evutil_socket_t fd, short what, void *arg);

static void
conn_init(struct backend_conn *c, struct server *s)
{
    memset(c, 0, sizeof(*c));
    c->srv = s;
    c->fd = -1;
    TAILQ_INIT(&c->sendq);
    TAILQ_INIT(&c->inflight);
    buf_init(&c->rbuf);
    resp_reply_init(&c->rp);
}

static struct server *
server_new(struct worker *w, const char *host, uint16_t port, uint32_t nconns)
{
    struct server *s = sp_calloc(1, sizeof(*s));
    s->w = w;
    s->host = sp_strdup(host);
    s->port = port;
    if (strchr(host, ':') != NULL)
        snprintf(s->name, sizeof(s->name), "[%s]:%u", host, port);
    else
        snprintf(s->name, sizeof(s->name), "%s:%u", host, port);
    s->stat = worker_node_index(w, s->name);
    s->nconns = nconns;
    s->conns = sp_calloc(s->nconns, sizeof(*s->conns));
    for (uint32_t i = 0; i < s->nconns; i++)
        conn_init(&s->conns[i], s);
    return s;
}

struct server *
backend_new_private(struct worker *w, const char *host, uint16_t port)
{
    struct server *s = server_new(w, host, port, 1);
    s->private_conn = 1;
    return s;
}

struct server *
backend_get(struct worker *w, const char *host, uint16_t port)
{
    for (uint32_t i = 0; i < w->nservers; i++) {
        struct server *s = w->servers[i];
        if (s->port == port && strcmp(s->host, host) == 0)
            return s;
    }
    struct server *s = server_new(w, host, port,
                                  w->conf->node_connections
                                      ? w->conf->node_connections : 1);
    if (w->nservers == w->servers_cap) {
        w->servers_cap = w->servers_cap ? w->servers_cap * 2 : 16;
        w->servers = sp_realloc(w->servers,
                                w->servers_cap * sizeof(*w->servers));
    }
    w->servers[w->nservers++] = s;
    return s;
}

/*
 * The pool of s's node for credential cred: requests of a client user
 * with a backend_user travel on connections authenticated as that ACL
 * user, so the server enforces its permissions (inside scripts too). Made
 * on first use, owned by the node's cred 0 server; it sends READONLY if
 * that one does. Credentials thus go only where cluster.password goes.
 */
static struct server *
server_for_cred(struct server *s, uint16_t cred)
{
    struct server *base = s->base != NULL ? s->base : s;
    if (cred == 0)
        return base;
    /* Dense index: id * 2 + protocol bit, less the base's key 0. */
    uint16_t k = (uint16_t)((BACKEND_CRED_ID(cred) << 1) +
                            ((cred & BACKEND_CRED_RESP3) != 0) - 1);
    if (k >= base->nalt) {
        base->alt = sp_realloc(base->alt, (k + 1u) * sizeof(*base->alt));
        memset(base->alt + base->nalt, 0,
               (size_t)(k + 1u - base->nalt) * sizeof(*base->alt));
        base->nalt = (uint16_t)(k + 1u);
    }
    struct server *a = base->alt[k];
    if (a == NULL) {
        a = server_new(base->w, base->host, base->port, base->nconns);
        a->cred = cred;
        a->base = base;
        a->readonly = base->readonly;
        base->alt[k] = a;
    }
    return a;
}

int
backend_cred_id(struct worker *w, const char *user, const char *password)
{
    for (uint32_t i = 0; i < w->ncreds; i++)
        if (strcmp(w->creds[i].user, user) == 0 &&
            strcmp(w->creds[i].password, password) == 0)
            return (int)i + 1;
    if (w->ncreds >= BACKEND_CRED_ID(UINT16_MAX))
        return -1; /* the top bit is the protocol's */
    w->creds = sp_realloc(w->creds, (w->ncreds + 1) * sizeof(*w->creds));
    w->creds[w->ncreds].user = sp_strdup(user);
    w->creds[w->ncreds].password = sp_strdup(password);
    return (int)++w->ncreds;
}

void
backend_creds_free(struct worker *w)
{
    for (uint32_t i = 0; i < w->ncreds; i++) {
        char *p = w->creds[i].password;
        explicit_bzero(p, strlen(p));
        sp_free(p);
        sp_free(w->creds[i].user);
    }
    sp_free(w->creds);
    w->creds = NULL;
    w->ncreds = 0;
}

/* Detach q's requests and fail each with msg; how many were failed. */
static uint64_t
fail_queue(struct request_queue *q, const char *msg)
{
    struct request *r;
    uint64_t n = 0;
    while ((r = TAILQ_FIRST(q)) != NULL) {
        TAILQ_REMOVE(q, r, bnext);
        r->conn = NULL;
        if (!r->done) {
            request_fail(r, msg);
            n++;
        }
        request_put(r);
    }
    return n;
}

/* Fail r for its node s's fault (down, unreachable), counted per node. */
static void
server_fail(struct server *s, struct request *r, const char *msg)
{
    s->w->nodes[s->stat].failed++;
    request_fail(r, msg);
}

/* Charge the read buffer's storage to the worker's memory budget: the
 * replies it holds are held for clients. */
static void
conn_charge_rbuf(struct backend_conn *c)
{
    struct worker *w = c->srv->w;
    if (c->rbuf.cap != c->rbuf_charged) {
        memacct_add(&w->mem, &w->shared->mem,
                    (int64_t)c->rbuf.cap - (int64_t)c->rbuf_charged);
        c->rbuf_charged = c->rbuf.cap;
    }
}

static void
conn_close_socket(struct backend_conn *c)
{
    if (c->dns_req != NULL) {
        evdns_getaddrinfo_cancel(c->dns_req);
        c->dns_req = NULL;
    }
    if (c->rev != NULL) {
        event_free(c->rev);
        c->rev = NULL;
    }
    if (c->wev != NULL) {
        event_free(c->wev);
        c->wev = NULL;
    }
    tls_conn_free(c->tls);
    c->tls = NULL;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = BCONN_DISCONNECTED;
    c->send_off = 0;
    c->auth_req = NULL;
    c->ninflight = 0;
    buf_deinit(&c->rbuf);
    conn_charge_rbuf(c);
    resp_reply_init(&c->rp);
    if (c->dirty) {
        TAILQ_REMOVE(&c->srv->w->dirty_conns, c, dnext);
        c->dirty = 0;
    }
    if (c->io_pending) {
        worker_io_forget(c->srv->w, &c->srv->w->rd_conns, c);
        c->io_pending = 0;
    }
}

static uint32_t
backoff_ms(struct worker *w, uint32_t failures)
{
    uint32_t ms = BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    /* Jitter of +-25% so that many proxies do not reconnect in step. */
    w->rand_state ^= w->rand_state << 13;
    w->rand_state ^= w->rand_state >> 7;
    w->rand_state ^= w->rand_state << 17;
    return ms - ms / 4 + (uint32_t)(w->rand_state % (ms / 2 + 1));
}

/*
 * Drop the connection and fail every request queued on it, sent or not
 * (a write that may have run is never re-sent). connect_failed starts the
 * reconnect backoff.
 */
static void
conn_error(struct backend_conn *c, const char *reason, int connect_failed)
{
    struct server *s = c->srv;
    struct worker *w = s->w;
    char msg[400];
    struct request_queue lost;

    log_warn("backend %s: %s (%u in flight)", s->name, reason, c->ninflight);
    TAILQ_INIT(&lost);
    TAILQ_CONCAT(&lost, &c->inflight, bnext);
    TAILQ_CONCAT(&lost, &c->sendq, bnext);
    conn_close_socket(c);
    if (connect_failed) {
        snprintf(s->last_err, sizeof(s->last_err), "%s", reason);
        c->failures++;
        c->retry_at_ms = sp_msec_now() + backoff_ms(w, c->failures);
    }

    snprintf(msg, sizeof(msg), "ERR slotproxy: backend %s %s", s->name,
             reason);
    w->nodes[s->stat].conn_errors++;
    w->nodes[s->stat].failed += fail_queue(&lost, msg);
    if (s->on_push_lost != NULL)
        s->on_push_lost(s);
    if (w->on_node_error != NULL)
        w->on_node_error(w, s);
}

/* A numeric host (IPv4 or IPv6) into ss: 0, or -1 for a hostname. */
static int
addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *ss,
             socklen_t *sslen)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *sslen = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *sslen = sizeof(*sin6);
        return 0;
    }
    return -1;
}

/* Start a non-blocking connect to sa. 0 on success (connecting), -1 with
 * errno. */
static int
conn_connect_to(struct backend_conn *c, const struct sockaddr *sa,
                socklen_t salen)
{
    struct worker *w = c->srv->w;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, salen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    c->state = BCONN_CONNECTING;
    c->connect_deadline_ms = sp_msec_now() + w->conf->connect_timeout_ms;
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE, conn_on_write, c);
    event_add(c->wev, NULL);
    return 0;
}

/* The lookup of c's hostname answered: connect to its first address. A
 * cancelled lookup (the connection closed, maybe freed) touches nothing. */
static void
conn_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    struct backend_conn *c = arg;
    char msg[200];
    int rc = -1, e = EHOSTUNREACH;

    if (err == EVUTIL_EAI_CANCEL)
        return;
    c->dns_req = NULL;
    if (err == 0 && res != NULL) {
        struct sockaddr_storage ss;
        socklen_t len = (socklen_t)SP_MIN(res->ai_addrlen, sizeof(ss));
        memcpy(&ss, res->ai_addr, len);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(c->srv->port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(c->srv->port);
        rc = conn_connect_to(c, (struct sockaddr *)&ss, len);
        e = errno;
    }
    if (res != NULL)
        evutil_freeaddrinfo(res);
    if (c->dns_sync) {
        /* Answered inside evdns_getaddrinfo (numeric, /etc/hosts, a
         * cached answer): conn_connect reports it. */
        c->dns_rc = rc;
        errno = e;
        return;
    }
    if (rc == 0)
        return;
    if (err != 0)
        snprintf(msg, sizeof(msg), "cannot resolve: %s",
                 evutil_gai_strerror(err));
    else
        snprintf(msg, sizeof(msg), "connect failed: %s", strerror(e));
    conn_error(c, msg, 1);
}

/*
 * Look c's hostname up without blocking the worker (libevent's evdns,
 * which reads /etc/resolv.conf and /etc/hosts): the connection waits in
 * RESOLVING and its requests queue, for as long as a request may wait
 * (the longer of the request and connect timeouts: a slow DNS server
 * that a blocking lookup would have waited for still works). 0 when
 * connecting or resolving, -1 with errno.
 */
static int
conn_resolve(struct backend_conn *c)
{
    struct worker *w = c->srv->w;
    struct evutil_addrinfo hints;

    if (w->dns == NULL)
        w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (w->dns == NULL) {
        errno = EHOSTUNREACH;
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    c->state = BCONN_RESOLVING;
    c->connect_deadline_ms =
        sp_msec_now() + SP_MAX(w->conf->connect_timeout_ms,
                               w->conf->request_timeout_ms);
    c->dns_sync = 1;
    c->dns_rc = 1;
    struct evdns_getaddrinfo_request *q =
        evdns_getaddrinfo(w->dns, c->srv->host, NULL, &hints, conn_resolved,
                          c);
    c->dns_sync = 0;
    if (c->dns_rc == 1 && q != NULL) {
        c->dns_req = q;
        return 0;
    }
    if (c->dns_rc == 0)
        return 0;
    if (c->dns_rc == 1)
        errno = EHOSTUNREACH;
    c->state = BCONN_DISCONNECTED;
    return -1;
}

/* Start connecting (or resolving) c. 0 on success, -1 with errno. */
static int
conn_connect(struct backend_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sslen;

    if (addr_numeric(c->srv->host, c->srv->port, &ss, &sslen) == 0)
        return conn_connect_to(c, (struct sockaddr *)&ss, sslen);
    return conn_resolve(c);
}

void
backend_dns_free(struct worker *w)
{
    if (w->dns != NULL) {
        evdns_base_free(w->dns, 1);
        w->dns = NULL;
    }
}

static void
conn_mark_dirty(struct backend_conn *c)
{
    if (c->dirty || c->state != BCONN_CONNECTED)
        return;
    c->dirty = 1;
    TAILQ_INSERT_TAIL(&c->srv->w->dirty_conns, c, dnext);
    worker_schedule_flush(c->srv->w);
}

void
backend_warm(struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        struct backend_conn *c = &s->conns[i];
        if (c->state == BCONN_DISCONNECTED && !s->down &&
            sp_msec_now() >= c->retry_at_ms && conn_connect(c) != 0)
            conn_error(c, "connect failed", 1);
    }
}

static void
probe_done(struct request *r)
{
    struct server *s = r->data;
    s->probing = 0;
    s->down = !(buf_unread(&r->rep) >= 5 &&
                memcmp(r->rep.data + r->rep.pos, "+PONG", 5) == 0);
    if (!s->down) {
        s->timeouts = 0;
        log_notice("backend %s: answers again, marked up", s->name);
    }
}

/* While a node is down, one PING at a time (after the reconnect backoff)
 * tells when it answers again. */
static void
server_probe(struct server *s)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    struct backend_conn *c = &s->conns[0];

    if (s->probing || sp_msec_now() < c->retry_at_ms)
        return;
    struct request *p = request_new(&s->w->reqs);
    buf_append(&p->req, ping, sizeof(ping) - 1);
    p->on_done = probe_done;
    p->data = s;
    p->cred = s->cred; /* probe s itself, not its node's default pool */
    p->deadline_ms = sp_msec_now() + PROBE_TIMEOUT_MS;
    s->probing = 1;
    s->down = 0; /* let the probe itself through */
    backend_send(s, p);
    if (s->probing)
        s->down = 1;
    request_put(p);
}

/* backend_send when s is down or c not connected: fail r at once (down,
 * or in reconnect backoff), or queue it behind a connect that failed. 1
 * when r was taken care of, 0 when c is connecting and r may queue. Kept
 * out of line: the request path does not pay for its message buffers. */
static int __attribute__((noinline))
backend_send_unready(struct server *s, struct backend_conn *c,
                     struct request *r)
{
    char msg[480];

    if (s->down) {
        server_probe(s);
        snprintf(msg, sizeof(msg), "ERR slotproxy: backend %s is down (not "
                 "answering within cluster.request_timeout)", s->name);
        server_fail(s, r, msg);
        return 1;
    }
    if (sp_msec_now() < c->retry_at_ms) {
        /* In reconnect backoff: fail fast rather than queue. */
        snprintf(msg, sizeof(msg),
                 "ERR slotproxy: backend %.300s unreachable (%.119s)",
                 s->name, s->last_err[0] ? s->last_err : "reconnecting");
        server_fail(s, r, msg);
        return 1;
    }
    if (conn_connect(c) != 0) {
        snprintf(msg, sizeof(msg), "connect failed: %s", strerror(errno));
        /* (TAILQ macros evaluate their element more than once.) */
        request_get(r);
        TAILQ_INSERT_TAIL(&c->sendq, r, bnext);
        r->conn = c;
        conn_error(c, msg, 1);
        return 1;
    }
    return 0;
}

void
backend_send(struct server *s, struct request *r)
{
    /* For backend_reap (10 s idle): the loop turn's clock is close enough
     * and costs no clock read per request. */
    s->last_used_us = worker_now_us(s->w);
    if (r->cred != s->cred && !s->private_conn)
        s = server_for_cred(s, r->cred);
    /* ASKING and its command must share a connection: use the first. */
    struct backend_conn *c = &s->conns[0];
    if (!r->asking) {
        c = &s->conns[s->rr];
        if (++s->rr >= s->nconns)
            s->rr = 0;
    }
    if ((s->down || c->state == BCONN_DISCONNECTED) &&
        backend_send_unready(s, c, r))
        return;
    r->conn = c;
    r->node = s->name;
    /* Per node as it is sent (a plain increment of this worker's table):
     * client commands and their fragments, not the proxy's own. */
    if (r->cmd != NULL)
        s->w->nodes[s->stat].requests++;
    request_get(r);
    TAILQ_INSERT_TAIL(&c->sendq, r, bnext);
    conn_mark_dirty(c);
}

/* Write as much of the send queue as the socket takes. */
/* After a write of nw bytes: the requests written whole move to the
 * in-flight queue (or, in push mode, are let go); 1 when one is still
 * partly unwritten. */
static int
conn_written(struct backend_conn *c, size_t nw)
{
    size_t left = nw + c->send_off;
    struct request *r;

    while ((r = TAILQ_FIRST(&c->sendq)) != NULL) {
        size_t total = buf_unread(&r->req) + (r->asking ? ASKING_LEN : 0);
        r->sent = 1;
        if (left < total)
            break;
        left -= total;
        TAILQ_REMOVE(&c->sendq, r, bnext);
        r->asking_reply = r->asking;
        r->asking = 0;
        if (c->srv->on_push != NULL && r != c->auth_req) {
            /* Replies come as pushes; nothing waits for them (but the
             * AUTH or HELLO 3 sent first, whose reply is no push). */
            request_put(r);
            continue;
        }
        TAILQ_INSERT_TAIL(&c->inflight, r, bnext);
        c->ninflight++;
    }
    c->send_off = left;
    return r != NULL;
}

/* Point iov (room for MAX_IOV) at the queued requests' unwritten bytes;
 * how many. */
SP_INLINE int
conn_fill_iov(struct backend_conn *c, struct iovec *iov)
{
    int n = 0;
    size_t skip = c->send_off;
    struct request *r;
    TAILQ_FOREACH(r, &c->sendq, bnext) {
        if (n + 2 > MAX_IOV)
            break;
        if (r->asking) {
            if (skip < ASKING_LEN) {
                iov[n].iov_base = (char *)asking_cmd + skip;
                iov[n++].iov_len = ASKING_LEN - skip;
                skip = 0;
            } else {
                skip -= ASKING_LEN;
            }
        }
        iov[n].iov_base = r->req.data + r->req.pos + skip;
        iov[n++].iov_len = buf_unread(&r->req) - skip;
        skip = 0;
    }
    return n;
}

/* After a write of the filled requests returned nw (-1: errno): 1 when
 * all of it went (more may be written), 0 when the socket is full (the
 * write event finishes) or the connection failed. */
SP_INLINE int
conn_wrote(struct backend_conn *c, ssize_t nw)
{
    if (nw < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            event_add(c->wev, NULL);
            return 0;
        }
        if (errno == EINTR)
            return 1;
        char msg[200];
        snprintf(msg, sizeof(msg), "write failed: %s", strerror(errno));
        conn_error(c, msg, 0);
        return 0;
    }
    if (conn_written(c, (size_t)nw)) {
        event_add(c->wev, NULL);
        return 0;
    }
    return 1;
}

static void
conn_write(struct backend_conn *c)
{
    struct iovec iov[MAX_IOV];

    while (!TAILQ_EMPTY(&c->sendq))
        if (!conn_wrote(c, conn_send(c, iov, conn_fill_iov(c, iov))))
            return;
}

/* A batched write's result (iobatch_done_fn): as in conn_write. A
 * connection closed meanwhile forgot it (conn_close_socket). */
static void
conn_write_done(void *owner, void *buf, ssize_t nw)
{
    struct backend_conn *c = owner;
    (void)buf;
    c->io_pending = 0;
    /* More than one write's worth left: the rest goes directly. */
    if (conn_wrote(c, nw))
        conn_write(c);
}

/* Queue c's requests into the batch. */
static void
conn_queue_write(struct backend_conn *c, struct iobatch *b)
{
    if (TAILQ_EMPTY(&c->sendq))
        return;
    if (!iobatch_room(b, MAX_IOV))
        iobatch_run(b);
    int n = conn_fill_iov(c, iobatch_iov(b, MAX_IOV));
    c->io_pending = 1;
    iobatch_writev(b, c->fd, n, conn_write_done, c);
}

/* The reply to the AUTH (or HELLO 3) sent first on a connection: a
 * refusal (an error) makes the connection useless, so it is dropped (and
 * its queue fails with the server's reason). */
static void
auth_done(struct request *r)
{
    struct backend_conn *c = r->data;
    const char *rep = r->rep.data + r->rep.pos;
    size_t n = buf_unread(&r->rep);
    if (n >= 1 && rep[0] != '-') {
        if (c->auth_req == r)
            c->auth_req = NULL; /* r goes back to the pool */
        return; /* +OK, or HELLO's map */
    }
    if (c->state == BCONN_CONNECTED && c->auth_req == r) {
        char msg[300];
        snprintf(msg, sizeof(msg), "authentication failed: %.*s",
                 (int)(n > 2 && rep[0] == '-' ? SP_MIN(n - 3, 200) : 0),
                 rep + 1);
        c->auth_req = NULL;
        conn_error(c, msg, 1);
    }
}

static const char readonly_cmd[] = "*1\r\n$8\r\nREADONLY\r\n";

/* A request of ours whose reply is not needed (READONLY's +OK). */
static struct request *
internal_request(struct worker *w, const char *bytes, size_t len)
{
    struct request *r = request_new(&w->reqs);
    buf_append(&r->req, bytes, len);
    r->deadline_ms = sp_msec_now() + w->conf->request_timeout_ms;
    return r;
}

static void
conn_queue_readonly(struct backend_conn *c, int at_head)
{
    struct request *r = internal_request(c->srv->w, readonly_cmd,
                                         sizeof(readonly_cmd) - 1);
    r->conn = c;
    if (at_head)
        TAILQ_INSERT_HEAD(&c->sendq, r, bnext); /* the queue's reference */
    else
        TAILQ_INSERT_TAIL(&c->sendq, r, bnext);
}

void
backend_set_readonly(struct server *s)
{
    if (s->readonly)
        return;
    s->readonly = 1;
    for (uint32_t i = 0; i < s->nconns; i++) {
        struct backend_conn *c = &s->conns[i];
        if (c->state == BCONN_CONNECTED) {
            conn_queue_readonly(c, 0);
            conn_mark_dirty(c);
        }
    }
    for (uint16_t k = 0; k < s->nalt; k++)
        if (s->alt[k] != NULL)
            backend_set_readonly(s->alt[k]);
}

/* The server's credentials (cluster.username/password, or a
 * backend_user's) and protocol: AUTH, or HELLO 3 [AUTH user pass] for a
 * RESP3 pool, goes first on every connection, in front of whatever is
 * already queued. */
static void
conn_queue_auth(struct backend_conn *c)
{
    struct worker *w = c->srv->w;
    const struct config *conf = w->conf;
    const char *user = conf->cluster_username;
    const char *pass = conf->cluster_password;
    int resp3 = (c->srv->cred & BACKEND_CRED_RESP3) != 0;
    uint16_t id = BACKEND_CRED_ID(c->srv->cred);
    if (id != 0) {
        user = w->creds[id - 1].user;
        pass = w->creds[id - 1].password;
    }
    if (pass == NULL && !resp3)
        return;
    struct request *r = request_new(&w->reqs);
    if (resp3) {
        buf_add_array(&r->req, pass != NULL ? 5 : 2);
        buf_add_bulk_str(&r->req, "HELLO");
        buf_add_bulk_str(&r->req, "3");
        if (pass != NULL) {
            buf_add_bulk_str(&r->req, "AUTH");
            buf_add_bulk_str(&r->req, user != NULL ? user : "default");
        }
    } else if (user != NULL) {
        buf_add_array(&r->req, 3);
        buf_add_bulk_str(&r->req, "AUTH");
        buf_add_bulk_str(&r->req, user);
    } else {
        buf_add_array(&r->req, 2);
        buf_add_bulk_str(&r->req, "AUTH");
    }
    if (pass != NULL)
        buf_add_bulk_str(&r->req, pass);
    r->on_done = auth_done;
    r->data = c;
    r->conn = c;
    r->deadline_ms = sp_msec_now() + conf->request_timeout_ms;
    c->auth_req = r;
    TAILQ_INSERT_HEAD(&c->sendq, r, bnext); /* the queue's reference */
}

/* One step of the TLS handshake with the node (connect timeout covers
 * it); the connection is ready when it completes. */
static void
conn_tls_step(struct backend_conn *c)
{
    int want_write = 0;
    int rc = tls_handshake(c->tls, &want_write);
    if (rc < 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "TLS handshake failed: %s",
                 tls_last_error());
        conn_error(c, msg, 1);
        return;
    }
    if (rc == 0) {
        if (want_write)
            event_add(c->wev, NULL);
        else
            event_add(c->rev, NULL);
        return;
    }
    conn_ready(c);
}

static void
conn_on_connected(struct backend_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "connect failed: %s", strerror(err));
        conn_error(c, msg, 1);
        return;
    }
    /* Main swaps the context on reload: new connections take the new. */
    struct tls_ctx *tls = __atomic_load_n(&c->srv->w->shared->backend_tls,
                                          __ATOMIC_ACQUIRE);
    if (tls != NULL) {
        c->tls = tls_conn_new(tls, c->fd, 0, c->srv->host);
        if (c->tls == NULL) {
            conn_error(c, "TLS session failed", 1);
            return;
        }
        conn_tls_step(c);
        return;
    }
    conn_ready(c);
}

static void
conn_ready(struct backend_conn *c)
{
    c->state = BCONN_CONNECTED;
    c->failures = 0;
    if (c->srv->readonly)
        conn_queue_readonly(c, 1);
    conn_queue_auth(c); /* in front of READONLY */
    event_add(c->rev, NULL);
    log_info("backend %s: connected%s", c->srv->name, c->tls ? " (TLS)" : "");
    conn_write(c);
}

static void
conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;
    if (c->state == BCONN_CONNECTING) {
        if (c->tls != NULL)
            conn_tls_step(c);
        else
            conn_on_connected(c);
        return;
    }
    conn_write(c);
}

/* Hand every complete reply in rbuf to its request. */
static void
conn_parse_replies(struct backend_conn *c)
{
    int fd = c->fd;
    while (buf_unread(&c->rbuf) > 0) {
        const char *p = c->rbuf.data + c->rbuf.pos;
        int rc = resp_reply_parse(&c->rp, p, buf_unread(&c->rbuf));
        if (rc == RESP_AGAIN)
            return;
        if (rc == RESP_ERROR) {
            conn_error(c, "sent a malformed reply", 0);
            return;
        }
        size_t len = (size_t)c->rp.len;
        char type = c->rp.type;
        c->srv->timeouts = 0;
        if (c->srv->on_push != NULL && TAILQ_EMPTY(&c->inflight)) {
            resp_reply_init(&c->rp);
            c->srv->on_push(c->srv, p, len, type);
            if (c->fd != fd || c->state != BCONN_CONNECTED)
                return;
            buf_consume(&c->rbuf, len);
            continue;
        }
        if (type == '>') {
            /* A RESP3 push is never a reply: a pinned pub/sub connection
             * forwards it, a shared one drops it (tracking ...). */
            resp_reply_init(&c->rp);
            if (c->srv->on_push != NULL) {
                c->srv->on_push(c->srv, p, len, type);
                if (c->fd != fd || c->state != BCONN_CONNECTED)
                    return;
            }
            buf_consume(&c->rbuf, len);
            continue;
        }
        struct request *r = TAILQ_FIRST(&c->inflight);
        if (r == NULL) {
            conn_error(c, "sent a reply nobody asked for", 0);
            return;
        }
        resp_reply_init(&c->rp);
        if (r->asking_reply) {
            /* ASKING's own +OK: the command's reply follows. */
            r->asking_reply = 0;
            buf_consume(&c->rbuf, len);
            continue;
        }
        if (r->replies_seen + 1 < r->replies) {
            /* Not the last reply of a multi-reply request (MULTI ...
             * EXEC sent as one block): hand it over, keep r at the head. */
            r->replies_seen++;
            if (r->on_partial != NULL)
                r->on_partial(r, p, len, type);
            if (c->fd != fd || c->state != BCONN_CONNECTED)
                return;
            buf_consume(&c->rbuf, len);
            continue;
        }
        /* Big replies (monitor.big_*): one compare for the others. */
        if (__builtin_expect(len > c->srv->w->big_reply_gate, 0))
            worker_big_reply(c->srv->w, r, p, len, c->srv->name);
        TAILQ_REMOVE(&c->inflight, r, bnext);
        c->ninflight--;
        /* r->conn still names this connection for the hook (redirects
         * resolve an empty host against it); the hook may queue r
         * elsewhere. p stays valid: nothing appends to rbuf until we
         * consume. */
        request_reply(r, p, len, type);
        request_put(r);
        if (c->fd != fd || c->state != BCONN_CONNECTED)
            return; /* closed by a hook */
        buf_consume(&c->rbuf, len);
    }
}

static void conn_read(struct backend_conn *c);

/* Past a big reply, give the room back (unread bytes, a reply's start,
 * move: the scanner's offsets are relative to it). */
SP_INLINE void
conn_after_read(struct backend_conn *c)
{
    if (c->state != BCONN_CONNECTED)
        return; /* closed: the buffer is gone and uncharged */
    if (c->rbuf.cap > RBUF_KEEP)
        buf_shrink(&c->rbuf, RBUF_KEEP);
    conn_charge_rbuf(c);
}

static void
conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;
    if (c->state == BCONN_CONNECTING) {
        if (c->tls != NULL)
            conn_tls_step(c);
        return;
    }
    /* Batched I/O: read with the turn's other sockets, at the flush. */
    struct worker *w = c->srv->w;
    if (w->io != NULL && c->tls == NULL) {
        if (!c->io_pending) {
            c->io_pending = 1;
            worker_io_queue(w, &w->rd_conns, c);
        }
        return;
    }
    conn_read(c);
    conn_after_read(c);
}

/* How much one read asks for: a chunk, or inside a large bulk as much of
 * it as possible (up to 1 MB), with room reserved for it. */
SP_INLINE size_t
conn_read_room(struct backend_conn *c)
{
    size_t want = READ_CHUNK;
    if (c->rp.skip > (long long)want)
        want = c->rp.skip > (1 << 20) ? (1 << 20) : (size_t)c->rp.skip;
    buf_reserve(&c->rbuf, want);
    return c->rbuf.cap - c->rbuf.len;
}

/* What one read of n bytes (-1: errno) brings: 1 when more may be
 * waiting (the read filled the room, or TLS holds decrypted bytes). */
SP_INLINE int
conn_got(struct backend_conn *c, ssize_t n, size_t room)
{
    if (n > 0) {
        c->rbuf.len += (size_t)n;
        conn_parse_replies(c);
        /* A short read drained the socket, unless TLS still holds
         * decrypted bytes that no event will announce. */
        return c->state == BCONN_CONNECTED &&
               ((size_t)n == room ||
                (c->tls != NULL && tls_pending(c->tls) > 0));
    }
    if (n == 0) {
        conn_error(c, "closed the connection", 0);
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    char msg[200];
    snprintf(msg, sizeof(msg), "read failed: %s", strerror(errno));
    conn_error(c, msg, 0);
    return 0;
}

/* Read what the socket has (a few chunks at most, to stay fair to the
 * other connections) and hand every complete reply over. */
static void
conn_read(struct backend_conn *c)
{
    for (int i = 0; i < 4; i++) {
        size_t room = conn_read_room(c);
        if (!conn_got(c, conn_recv(c, c->rbuf.data + c->rbuf.len, room),
                      room))
            return;
    }
}

/* A batched read's result (iobatch_done_fn): as one conn_read step (a
 * read that filled the room leaves the rest to the next readiness). */
static void
conn_read_done(void *owner, void *buf, ssize_t n)
{
    struct backend_conn *c = owner;
    c->io_pending = 0;
    conn_got(c, n, c->rbuf.data + c->rbuf.cap - (char *)buf);
    conn_after_read(c);
}

void
backend_read_batch(struct worker *w)
{
    struct io_readq *q = &w->rd_conns;
    for (uint32_t i = 0; i < q->n; i++) {
        struct backend_conn *c = q->items[i];
        if (c == NULL)
            continue;
        if (c->state != BCONN_CONNECTED) {
            c->io_pending = 0;
            continue;
        }
        if (!iobatch_room(w->io, 0))
            iobatch_run(w->io);
        size_t room = conn_read_room(c);
        iobatch_read(w->io, c->fd, c->rbuf.data + c->rbuf.len, room,
                     conn_read_done, c);
    }
    q->n = 0;
}

void
backend_flush_dirty(struct worker *w)
{
    struct backend_conn *c;
    while ((c = TAILQ_FIRST(&w->dirty_conns)) != NULL) {
        TAILQ_REMOVE(&w->dirty_conns, c, dnext);
        c->dirty = 0;
        if (c->state != BCONN_CONNECTED)
            continue;
        if (w->io != NULL && c->tls == NULL)
            conn_queue_write(c, w->io);
        else
            conn_write(c);
    }
}

static int
queue_expired(struct request_queue *q, uint64_t now_ms)
{
    struct request *r = TAILQ_FIRST(q);
    return r != NULL && r->deadline_ms != 0 && r->deadline_ms <= now_ms;
}

void
backend_server_timeouts(struct server *s, uint64_t now_ms)
{
    for (uint32_t j = 0; j < s->nconns; j++) {
        struct backend_conn *c = &s->conns[j];
        if ((c->state == BCONN_CONNECTING ||
             c->state == BCONN_RESOLVING) &&
            now_ms >= c->connect_deadline_ms) {
            conn_error(c, c->state == BCONN_RESOLVING ? "name lookup timed "
                       "out" : "connect timed out", 1);
        } else if (c->state == BCONN_CONNECTED &&
                   (queue_expired(&c->inflight, now_ms) ||
                    queue_expired(&c->sendq, now_ms))) {
            /* The FIFO can no longer be trusted: close, and fail what
             * may have been sent. A node that keeps timing out is marked
             * down (circuit breaker): its requests then fail at once
             * instead of each waiting the full timeout, until a probe
             * shows it answers again. */
            s->w->stats.timeouts++;
            s->timeouts++;
            if (s->timeouts >= DOWN_AFTER_TIMEOUTS && !s->down) {
                s->down = 1;
                log_warn("backend %s: marked down after %u timeouts",
                         s->name, s->timeouts);
            }
            conn_error(c, "timed out", 1);
        }
    }
    for (uint16_t k = 0; k < s->nalt; k++)
        if (s->alt[k] != NULL)
            backend_server_timeouts(s->alt[k], now_ms);
}

void
backend_check_timeouts(struct worker *w, uint64_t now_ms)
{
    for (uint32_t i = 0; i < w->nservers; i++)
        backend_server_timeouts(w->servers[i], now_ms);
}

void
backend_load(const struct server *s, uint32_t *inflight, uint8_t *connected)
{
    for (uint32_t j = 0; j < s->nconns; j++) {
        const struct request *r;
        *inflight += s->conns[j].ninflight;
        TAILQ_FOREACH(r, &s->conns[j].sendq, bnext)
            (*inflight)++;
        *connected |= s->conns[j].state == BCONN_CONNECTED;
    }
    for (uint16_t k = 0; k < s->nalt; k++)
        if (s->alt[k] != NULL)
            backend_load(s->alt[k], inflight, connected);
}

/* 1 when s is the server of a node of the current map. */
static int
server_in_map(const struct worker *w, const struct server *s)
{
    for (uint32_t i = 0; i < w->map->nnodes; i++)
        if (w->map_srv[i] == s)
            return 1;
    return 0;
}

void
backend_reap(struct worker *w, uint64_t now_ms)
{
    for (uint32_t i = 0; i < w->nservers;) {
        struct server *s = w->servers[i];
        if (now_ms < s->last_used_us / 1000 + REAP_IDLE_MS ||
            !backend_idle(s) || server_in_map(w, s)) {
            i++;
            continue;
        }
        log_info("backend %s: not in the slot map and idle: closed",
                 s->name);
        w->servers[i] = w->servers[--w->nservers];
        backend_free(s);
    }
}

int
backend_idle(const struct server *s)
{
    for (uint32_t j = 0; j < s->nconns; j++)
        if (!TAILQ_EMPTY(&s->conns[j].sendq) ||
            !TAILQ_EMPTY(&s->conns[j].inflight))
            return 0;
    for (uint16_t k = 0; k < s->nalt; k++)
        if (s->alt[k] != NULL && !backend_idle(s->alt[k]))
            return 0;
    return 1;
}

void
backend_free(struct server *s)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        struct backend_conn *c = &s->conns[i];
        struct request_queue q;
        TAILQ_INIT(&q);
        TAILQ_CONCAT(&q, &c->inflight, bnext);
        TAILQ_CONCAT(&q, &c->sendq, bnext);
        conn_close_socket(c);
        fail_queue(&q, "ERR slotproxy: shutting down");
    }
    for (uint16_t k = 0; k < s->nalt; k++)
        if (s->alt[k] != NULL)
            backend_free(s->alt[k]);
    sp_free(s->alt);
    sp_free(s->conns);
    sp_free(s->host);
    sp_free(s);
}
