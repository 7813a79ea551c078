/* slotproxy - BSD-2-Clause
 *
 * Client connections. Input: read into a contiguous buffer, parse requests
 * in place, turn each into a request object (the client's bytes are
 * copied untouched when they are already multibulk) and dispatch it.
 * Output: replies are written from the head of the pipeline only, so they
 * leave in request order whatever order the backends answered in; all
 * replies ready in one loop turn go out in one writev.
 */
#include "build_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "alloc.h"
#include "auth.h"
#include "backend.h"
#include "client.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "errors.h"
#include "iobatch.h"
#include "log.h"
#include "membudget.h"
#include "pin.h"
#include "slotmap.h"
#include "slowlog.h"
#include "tls.h"
#include "worker.h"

#define READ_CHUNK (16 * 1024)
#define MAX_IOV 256
/* Input buffered behind an exclusive request before reading pauses. */
#define HELD_MAX (1024 * 1024)
/* A client quiet for this long gives its read buffer back. */
#define IDLE_RELEASE_MS 1000
/* Wrong AUTHs answered at once; each later one waits AUTH_DELAY_MS. */
#define AUTH_FREE_FAILURES 3
#define AUTH_DELAY_MS 500
/* At most one wrong-AUTH log line per connection this often. */
#define AUTH_LOG_INTERVAL_MS 5000
/* A read buffer larger than this gives its spare room back once the big
 * request in it is parsed. */
#define RBUF_KEEP (64 * 1024)
/* Pushes are appended to one reply buffer up to this size, so that a
 * pub/sub message costs its bytes, not a request object each. */
#define PUSH_COALESCE_MAX (16 * 1024)
/* Past the budget's high-water mark this long without coming down, the
 * largest clients are closed down to the low-water mark: a few clients
 * that hold memory without reading must not pause everyone for good. */
#define MEM_STUCK_MS 3000

static void client_on_read(evutil_socket_t fd, short what, void *arg);
static void client_on_write(evutil_socket_t fd, short what, void *arg);
static void client_process_input(struct client *c);
static void client_resume_input(struct client *c);

static ssize_t
client_recv(struct client *c, void *buf, size_t len)
{
    return c->tls ? tls_read(c->tls, buf, len) : read(c->fd, buf, len);
}

static ssize_t
client_send(struct client *c, const struct iovec *iov, int n)
{
    return c->tls ? tls_writev(c->tls, iov, n) : writev(c->fd, iov, n);
}

/* Drive a TLS handshake from either readiness event; 1 when done. */
/*
 * Wait for the socket to take bytes again. The write event is made on the
 * first need: most clients never fill their socket, and an idle client
 * then holds one event less (128 bytes; 1.3 MB for 10,000 idle clients).
 * Out of memory closes the client (the callers return right after).
 */
static void
client_want_write(struct client *c)
{
    if (c->wev == NULL)
        c->wev = event_new(c->w->base, c->fd, EV_WRITE, client_on_write, c);
    if (c->wev == NULL) {
        client_close(c, "out of memory");
        return;
    }
    event_add(c->wev, NULL);
}

static int
client_tls_handshake(struct client *c)
{
    int want_write = 0;
    int rc = tls_handshake(c->tls, &want_write);
    if (rc < 0) {
        client_disconnect(c, DISC_TLS);
        return 0;
    }
    if (rc == 0) {
        if (want_write)
            client_want_write(c);
        return 0;
    }
    c->handshaking = 0;
    return 1;
}

/* Inline: three times per request (dispatched, answered, written). */
static inline void
client_mem(struct client *c, int64_t delta)
{
    c->mem += delta;
    memacct_add(&c->w->mem, &c->w->shared->mem, delta);
}

void
client_mem_add(struct client *c, int64_t delta)
{
    client_mem(c, delta);
}

/* Bring the charge for r (in c's pipeline) to what r holds now. */
static inline void
client_charge(struct client *c, struct request *r)
{
    uint64_t now = sizeof(*r) + r->req.cap + r->rep.cap;
    if (now != r->charged) {
        client_mem(c, (int64_t)now - (int64_t)r->charged);
        r->charged = now;
    }
}

/* The same for c's read buffer (the worker's scratch is not c's). */
static inline void
client_charge_rbuf(struct client *c)
{
    size_t cap = c->rbuf.data == c->w->rscratch ? 0 : c->rbuf.cap;
    if (cap != c->rbuf_charged) {
        client_mem(c, (int64_t)cap - (int64_t)c->rbuf_charged);
        c->rbuf_charged = cap;
    }
}

/* What a finished reply counts against the client's output limit while
 * it waits to be written: its bytes, as Redis counts a client's output
 * buffer. Not the buffer's spare capacity (a recycled buffer is the
 * pool's choice, not the client's doing), nor the request object kept
 * per reply (some 260 bytes, charged in full to the memory budget by
 * client_charge instead): either would cut off a client with a small
 * limit for a pipeline of tiny replies (50 PUBLISH replies are 200 bytes
 * to Redis). */
static inline uint64_t
reply_cost(const struct request *r)
{
    return buf_unread(&r->rep);
}

static void
client_mark_dirty(struct client *c)
{
    if (c->dirty)
        return;
    c->dirty = 1;
    TAILQ_INSERT_TAIL(&c->w->dirty_clients, c, dnext);
    worker_schedule_flush(c->w);
}

void
client_local_addr(const struct client *c, struct client_laddr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    snprintf(out->host, sizeof(out->host), "127.0.0.1");
    out->port = 0;
    if (c->fd < 0 || getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, out->host, sizeof(out->host));
        out->port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, out->host, sizeof(out->host));
        out->port = ntohs(sin6->sin6_port);
    }
}

void
client_accept(struct worker *w, int fd, const char *addr,
              struct tls_ctx *tls)
{
    struct client *c = sp_calloc(1, sizeof(*c));
    c->w = w;
    c->fd = fd;
    /* Unique over all workers, as CLIENT ID is over a server. */
    c->id = __atomic_add_fetch(&w->shared->next_client_id, 1,
                               __ATOMIC_RELAXED);
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    buf_init(&c->rbuf);
    TAILQ_INIT(&c->pipeline);
    c->created_ms = c->last_ms = sp_msec_now();
    c->authed = !auth_configured(w->conf);
    c->role = ROLE_ADMIN;
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, client_on_read, c);
    event_add(c->rev, NULL);
    if (tls != NULL) {
        c->tls = tls_conn_new(tls, fd, 1, NULL);
        c->handshaking = 1;
    }
    TAILQ_INSERT_TAIL(&w->clients, c, next);
    w->nclients++;
    w->stats.connections_total++;
    log_info("client %llu %s: connected", (unsigned long long)c->id, addr);
    /* No SSL object (out of memory): closed like a failed handshake, so
     * the counts taken at accept are given back by the one close path. */
    if (tls != NULL && c->tls == NULL)
        client_close(c, "TLS setup failed");
}

/* The end of a closed client (end of the loop turn): its feature state
 * lives until here, so code still on the stack when the client closed
 * (a completion callback's caller) never touches freed memory. */
static void
client_free(struct client *c)
{
    if (c->io_pending)
        worker_io_forget(c->w, &c->w->rd_clients, c);
    c->w->client_ops->free_state(c);
    if (c->parser != NULL)
        resp_req_deinit(c->parser);
    sp_free(c->parser);
    buf_deinit(&c->rbuf);
    if (c->ext != NULL) {
        sp_free(c->ext->name);
        sp_free(c->ext->lib_name);
        sp_free(c->ext->lib_ver);
        sp_free(c->ext);
    }
    sp_free(c);
}

struct client_ext *
client_ext_get(struct client *c)
{
    if (c->ext == NULL) {
        c->ext = sp_calloc(1, sizeof(*c->ext));
        c->ext->pins.cred = c->cred;
    }
    return c->ext;
}

struct pinset *
client_pins(struct client *c)
{
    return &client_ext_get(c)->pins;
}

/* Set the backend credential c's requests (and new pinned connections)
 * use: struct client keeps it, its pin set a copy. */
static void
client_set_cred(struct client *c, uint16_t cred)
{
    c->cred = cred;
    if (c->ext != NULL)
        c->ext->pins.cred = cred;
}

void
client_close(struct client *c, const char *reason)
{
    struct worker *w = c->w;
    struct request *r;

    if (c->closed)
        return;
    log_info("client %llu %s: closed: %s", (unsigned long long)c->id,
             c->addr, reason);
    event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    tls_conn_free(c->tls);
    c->tls = NULL;
    close(c->fd);
    /* An operation queued in the I/O batch names the number just closed,
     * which an accept or connect may reuse before the batch runs. */
    if (c->io_pending && w->io != NULL)
        iobatch_forget(w->io, c);
    c->fd = -1;
    c->closed = 1;
    /* Requests still at a backend are orphaned: the backend drops their
     * reply and puts the last reference. */
    while ((r = TAILQ_FIRST(&c->pipeline)) != NULL) {
        TAILQ_REMOVE(&c->pipeline, r, cnext);
        r->client = NULL;
        request_put(r);
    }
    c->npipeline = 0;
    if (c->ext != NULL) {
        c->ext->auth_held = NULL; /* freed with the pipeline */
        /* Closing pinned connections ends their blocks, WATCHes and
         * subscriptions; the feature state is freed with the client. */
        pin_release_all(w, &c->ext->pins);
    }
    /* Whatever is still charged (its pipeline, buffers) is no longer
     * held for it: orphans are the backends' until their replies. */
    client_mem_add(c, -c->mem);
    c->rbuf_charged = 0;
    TAILQ_REMOVE(&w->clients, c, next);
    w->nclients--;
    __atomic_sub_fetch(&w->nconns, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&w->shared->nclients, 1, __ATOMIC_RELAXED);
    /* Freed at the end of the turn: we may be inside c's own callback. */
    if (!c->dirty) {
        c->dirty = 1;
        TAILQ_INSERT_TAIL(&w->dirty_clients, c, dnext);
    }
    worker_schedule_flush(w);
}

#define DISC_TEXT(id_, label_, text_) text_,
static const char *const disc_text[DISC_COUNT] = {
    SP_DISC_REASONS(DISC_TEXT)};
#undef DISC_TEXT

void
client_disconnect(struct client *c, enum disc_reason why)
{
    if (c->closed)
        return;
    c->w->stats.disc[why]++;
    client_close(c, disc_text[why]);
}

/* Latency histogram and error count for a finished request. */
static void
client_observe(struct worker *w, const struct request *r)
{
    uint64_t us = worker_now_us(w) - r->start_us;
    int b = lat_bucket(us);
    w->stats.lat.count[b]++;
    w->stats.lat.sum_us += us;
    if (r->cmd_index >= 0) {
        uint64_t *h = &w->cmd_lat[(size_t)r->cmd_index * (LAT_BUCKETS + 2)];
        h[b]++;
        h[LAT_BUCKETS + 1] += us;
    }
    if (us >= (uint64_t)w->conf->slowlog_threshold_ms * 1000u &&
        r->node != NULL && r->client != NULL) {
        const struct client_ext *x = r->client->ext;
        slowlog_add(w->slowlog, r, us, r->client->addr,
                    x != NULL ? x->name : NULL, r->node);
    }
    if (buf_unread(&r->rep) > 0 && r->rep.data[r->rep.pos] == '-') {
        w->stats.errors++;
        w->stats.errors_by_kind[error_kind(r->rep.data + r->rep.pos + 1,
                                           buf_unread(&r->rep) - 1)]++;
    }
}

/* Close c when its unwritten replies, wherever they wait (the proxy or
 * the kernel's send queue), pass clients.output_limit; 1 if closed. */
static int
client_over_output_limit(struct client *c)
{
    if (c->out_bytes + c->kernel_queued <= c->w->conf->output_limit)
        return 0;
    client_disconnect(c, DISC_OUTPUT_LIMIT);
    return 1;
}

static void
client_request_done(struct request *r)
{
    struct client *c = r->client;
    if (c == NULL)
        return; /* orphaned */
    c->nundone--;
    client_observe(c->w, r);
    if (c->ext != NULL && c->ext->pins.nblk > 0) /* a blocking command
                                                   * returned */
        pin_blocking_done(c->w, &c->ext->pins);
    if (r == c->barrier || (c->held && c->nundone == 0)) {
        /* Input held back for this request can go on (at the flush). */
        c->barrier = NULL;
        client_mark_dirty(c);
    }
    client_charge(c, r);
    r->out_cost = reply_cost(r);
    c->out_bytes += r->out_cost;
    if (client_over_output_limit(c))
        return;
    if (r == TAILQ_FIRST(&c->pipeline))
        client_mark_dirty(c);
}

struct request *
client_new_request(struct client *c)
{
    struct request *r = request_new(&c->w->reqs);
    r->client = c;
    r->cred = c->cred;
    r->on_done = client_request_done;
    r->start_us = worker_now_us(c->w);
    TAILQ_INSERT_TAIL(&c->pipeline, r, cnext);
    c->npipeline++;
    c->nundone++;
    return r;
}

/*
 * A push goes into the reply buffer of the push just before it when
 * nothing else came in between (appending to a reply being written is
 * safe: writes start from its unread bytes each time), else into a new
 * request. Either way it counts against the output limit.
 */
void
client_push(struct client *c, const char *data, size_t len)
{
    if (c->closed)
        return;
    struct request *r = TAILQ_LAST(&c->pipeline, request_queue);
    if (r != NULL && r->push && r->done &&
        buf_unread(&r->rep) + len <= PUSH_COALESCE_MAX) {
        buf_append(&r->rep, data, len);
        c->out_bytes -= r->out_cost;
        r->out_cost = reply_cost(r);
        c->out_bytes += r->out_cost;
        client_charge(c, r);
        if (client_over_output_limit(c))
            return;
        if (r == TAILQ_FIRST(&c->pipeline))
            client_mark_dirty(c);
        return;
    }
    r = client_new_request(c);
    r->push = 1;
    request_finish(r, data, len);
}

int
client_login(struct client *c, int role, uint64_t fp, int user)
{
    const struct config *conf = c->w->conf;
    int cred = 0;
    if (user >= 0 && conf->users[user].backend_user != NULL)
        cred = backend_cred_id(c->w, conf->users[user].backend_user,
                               conf->users[user].backend_password);
    if (cred < 0)
        return -1;
    c->authed = 1;
    c->role = (uint8_t)role;
    c->auth_fp = fp;
    /* Its requests and new pinned connections run as that ACL user. */
    client_set_cred(c,
                    (uint16_t)(cred | (c->resp3 ? BACKEND_CRED_RESP3 : 0)));
    return 0;
}

void
client_set_resp3(struct client *c, int on)
{
    c->resp3 = (uint8_t)(on != 0);
    client_set_cred(c, (uint16_t)(BACKEND_CRED_ID(c->cred) |
                                  (on ? BACKEND_CRED_RESP3 : 0)));
}

void
client_logout(struct client *c)
{
    c->authed = 0;
    c->role = ROLE_READ_ONLY;
    c->auth_fp = 0;
    client_set_cred(c, c->resp3 ? BACKEND_CRED_RESP3 : 0);
}

void
client_auth_failed(struct client *c, struct request *r)
{
    struct worker *w = c->w;
    struct client_ext *x = client_ext_get(c);
    uint64_t now = sp_msec_now();

    x->auth_failures++;
    w->stats.auth_failures++;
    if (now - x->auth_log_ms >= AUTH_LOG_INTERVAL_MS) {
        x->auth_log_ms = now;
        log_warn("client %llu %s: wrong AUTH (%u on this connection)",
                 (unsigned long long)c->id, c->addr, x->auth_failures);
    }
    if (x->auth_failures >= w->conf->auth_max_failures) {
        log_warn("client %llu %s: closing after %u wrong AUTHs",
                 (unsigned long long)c->id, c->addr, x->auth_failures);
        c->closing = 1; /* once this reply is written */
        c->close_why = 1 + DISC_AUTH_FAILURES;
        request_complete(r);
        return;
    }
    if (x->auth_failures <= AUTH_FREE_FAILURES) {
        request_complete(r);
        return;
    }
    /* Answered by client_check_idle; client_process_input makes it a
     * barrier, so a pipeline of guesses waits its turn too. */
    x->auth_held = r;
    x->auth_held_until_ms = now + AUTH_DELAY_MS;
}

static void
client_protocol_error(struct client *c, const char *err)
{
    struct request *r = client_new_request(c);
    char msg[256];
    snprintf(msg, sizeof(msg), "ERR %s", err);
    log_info("client %llu %s: %s", (unsigned long long)c->id, c->addr, err);
    c->closing = 1;
    c->close_why = 1 + DISC_PROTOCOL;
    request_fail(r, msg);
}

static void
client_pause_reading(struct client *c)
{
    if (!c->read_paused) {
        c->read_paused = 1;
        event_del(c->rev);
    }
}

/* Parse the next request of rbuf into p: 1 when one is parsed
 * (c->held set unless it was empty), 0 to stop (more bytes needed, the
 * pipeline is full, or a protocol error closed the client's input). */
static int
client_parse_next(struct client *c, struct resp_req *p, char *base)
{
    const struct config *conf = c->w->conf;
    /* Read per request: the AUTH just dispatched lifts the pre-AUTH caps
     * for the next. */
    const struct resp_limits *lim = &c->w->req_limits[c->authed ? 1 : 0];

    if (buf_unread(&c->rbuf) == 0)
        return 0;
    if (c->npipeline >= conf->max_pipeline) {
        client_pause_reading(c);
        return 0;
    }
    int rc = resp_req_parse(p, base, buf_unread(&c->rbuf), lim);
    if (rc == RESP_AGAIN)
        return 0;
    if (rc == RESP_ERROR) {
        client_protocol_error(c, p->err);
        client_pause_reading(c);
        buf_consume(&c->rbuf, buf_unread(&c->rbuf));
        resp_req_reset(p); /* its input ends here */
        return 0;
    }
    /* Parsed once: inline arguments were unquoted in place, so a held
     * request is dispatched from this state, never parsed again. */
    c->held = p->argc > 0;
    return 1;
}

/* Hand the held request (parsed in p) to the dispatcher; one that must
 * run alone (or an AUTH held back by the throttle) becomes the barrier
 * nothing passes. 0 when it must wait for the earlier requests' answers
 * (still held). */
static int
client_run_held(struct client *c, const struct resp_req *p, char *base,
                const struct command *cmd)
{
    /* Not held while it runs: a reply completed inside must not take
     * it for a waiting request. */
    c->held = 0;
    enum client_dispatch how = c->w->client_ops->dispatch(c, p, base, cmd);
    if (how == CLIENT_DISPATCH_WAIT) {
        c->held = 1;
        return 0;
    }
    if (c->closed)
        return 1;
    struct request *last = TAILQ_LAST(&c->pipeline, request_queue);
    if (last != NULL)
        client_charge(c, last); /* its bytes for the backend */
    if ((how == CLIENT_DISPATCHED_ALONE ||
         (c->ext != NULL && last == c->ext->auth_held)) &&
        last != NULL && !last->done)
        c->barrier = last;
    return 1;
}

/* Parse (into p) and dispatch every complete request in rbuf, up to the
 * pipeline limit, holding back at requests that must run alone. */
static void
client_parse_input(struct client *c, struct resp_req *p)
{
    struct worker *w = c->w;

    while (!c->closing && !c->closed && c->barrier == NULL) {
        char *base = c->rbuf.data + c->rbuf.pos;
        if (!c->held && !client_parse_next(c, p, base))
            break;
        if (c->held) {
            const struct command *cmd = cmdtable_lookup(
                w->cmdtab, base + p->argv[0].off, p->argv[0].len);
            if (w->map->nmasters == 0 && w->hold_until_ms != 0 &&
                sp_msec_now() < w->hold_until_ms) {
                /* Just started, no slot map yet: wait a moment rather
                 * than answer CLUSTERDOWN to a client that connected
                 * early. */
                c->waiting_map = 1;
                break;
            }
            if (!client_run_held(c, p, base, cmd))
                break; /* until every earlier request is answered */
            if (c->closed)
                return;
        }
        buf_consume(&c->rbuf, (size_t)p->len);
        resp_req_reset(p);
    }
}

/* A request larger than this many arguments gives the worker's parser
 * its argv back once parsed (8 KB kept at most). */
#define PARSER_ARGV_KEEP 1024

/* After c parsed with the worker's parser and left bytes unparsed (or
 * closed): the parser's state goes with c when a request is left in part
 * or held, else the worker's parser is simply reset. */
static void __attribute__((noinline))
client_keep_parser(struct client *c, struct resp_req *p)
{
    if (!c->closed && (c->held || !resp_req_idle(p))) {
        c->parser = sp_malloc(sizeof(*p)); /* state, argv and all */
        *c->parser = *p;
        resp_req_init(p);
        return;
    }
    resp_req_reset(p);
}

/* c parsed with a parser of its own: given back once nothing is left in
 * it (the client's next requests parse with the worker's again). */
static void
client_drop_parser(struct client *c)
{
    if (c->closed || c->held || !resp_req_idle(c->parser))
        return;
    resp_req_deinit(c->parser);
    sp_free(c->parser);
    c->parser = NULL;
}

/*
 * Parse and dispatch what rbuf holds. Most requests parse within one read,
 * so an idle client owns no parser (72 bytes and its argv, 100 bytes per
 * idle client): it parses with the worker's, and takes a parser of its own
 * only when a request is left in part (the rest comes with a later read)
 * or held (it waits for earlier answers, or for the slot map). The
 * worker's parser is lent to one client at a time: a client that gets
 * here while another holds it (a nested call) parses with its own.
 */
static void
client_process_input(struct client *c)
{
    struct worker *w = c->w;
    struct resp_req *p = c->parser;
    int lent = p == NULL && w->parser_user == NULL;

    if (lent) {
        p = &w->parser;
        w->parser_user = c;
    } else if (p == NULL) {
        p = c->parser = sp_malloc(sizeof(*p));
        resp_req_init(p);
    }
    client_parse_input(c, p);
    if (!lent) {
        client_drop_parser(c);
        return;
    }
    w->parser_user = NULL;
    /* Every byte parsed: the parser was reset after the last request (or
     * after a protocol error), so nothing is left in it. */
    if (__builtin_expect(buf_unread(&c->rbuf) != 0 || c->closed, 0))
        client_keep_parser(c, p);
    if (__builtin_expect(p->argv_cap > PARSER_ARGV_KEEP, 0))
        resp_req_deinit(p);
}

/*
 * What a read of n bytes (<= 0: none, or closed) into buf, a scratch
 * area of cap bytes the client does not own, brings: requests are parsed
 * and dispatched from there, and only a leftover partial (or held)
 * request is copied into a buffer of the client's own.
 */
SP_INLINE ssize_t
client_got_scratch(struct client *c, char *buf, size_t cap, ssize_t n)
{
    struct worker *w = c->w;
    if (n <= 0) {
        if (n == 0)
            client_close(c, "client closed the connection");
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            client_close(c, strerror(errno));
        return n;
    }
    c->last_ms = worker_now_us(w) / 1000;
    w->stats.bytes_in += (uint64_t)n;
    c->rbuf.data = buf;
    c->rbuf.pos = 0;
    c->rbuf.len = (size_t)n;
    c->rbuf.cap = cap;
    client_process_input(c);
    /* Hand the scratch back, keeping what is left (offsets in the parser
     * are relative to the request start, so a copy keeps them valid). */
    size_t left = buf_unread(&c->rbuf);
    const char *rest = c->rbuf.data + c->rbuf.pos;
    c->rbuf.data = NULL;
    c->rbuf.pos = c->rbuf.len = c->rbuf.cap = 0;
    if (left > 0 && !c->closed)
        buf_append(&c->rbuf, rest, left);
    return n;
}

/*
 * Read into the worker's scratch buffer when the client has nothing
 * buffered (the common case: whole requests arrive together): requests
 * are parsed and dispatched from there, and only a leftover partial (or
 * held) request is copied into a buffer of the client's own. An idle or
 * request/reply client thus owns no read buffer at all.
 */
static ssize_t
client_read_scratch(struct client *c)
{
    struct worker *w = c->w;
    ssize_t n = client_recv(c, w->rscratch, RSCRATCH_SIZE);
    return client_got_scratch(c, w->rscratch, RSCRATCH_SIZE, n);
}

static ssize_t client_read_once(struct client *c);

/* Past the budget's high-water mark: stop reading c until the total is
 * below the low-water mark again (client_check_memory resumes it). */
static void
client_pause_mem(struct client *c)
{
    struct worker *w = c->w;
    c->mem_paused = 1;
    if (!c->read_paused)
        event_del(c->rev);
    if (!w->mem_paused) {
        w->mem_paused = 1;
        log_warn("memory budget: %llu bytes held, past the high-water mark "
                 "of max_memory %llu: client reading paused",
                 (unsigned long long)membudget_total(&w->shared->mem),
                 (unsigned long long)w->conf->max_memory);
    }
}

/*
 * TLS may hold decrypted bytes the socket will not signal again: read on
 * while a read returns data and the session still buffers some. Only
 * progress keeps the loop going: SSL_has_pending() also counts a partial
 * record, which no read can finish until the rest of it arrives (a client
 * holding back its last byte must not spin the worker: the socket's next
 * readiness resumes it).
 */
static void
client_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    (void)fd;
    (void)what;
    /* Past the budget's high-water mark: one relaxed load per read. */
    if (membudget_total(&c->w->shared->mem) >= c->w->mem_high) {
        client_pause_mem(c);
        return;
    }
    /* Batched I/O: read with the turn's other sockets, at the flush
     * (which reads the clock once for all of them). */
    if (c->w->io != NULL && c->tls == NULL) {
        if (!c->io_pending) {
            c->io_pending = 1;
            worker_io_queue(c->w, &c->w->rd_clients, c);
        }
        return;
    }
    /* One clock read per read event: what it parses starts now (latency,
     * deadlines, idle time). */
    worker_clock(c->w);
    if (c->handshaking && !client_tls_handshake(c))
        return;
    while (client_read_once(c) > 0 && c->tls != NULL && !c->closed &&
           !c->read_paused && !c->mem_paused && tls_pending(c->tls) > 0)
        ;
}

/* What a read of n bytes (<= 0: none, or closed) into the client's own
 * buffer brings: its requests parsed. */
SP_INLINE ssize_t
client_got_own(struct client *c, ssize_t n)
{
    if (n == 0) {
        client_close(c, "client closed the connection");
        return 0;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            client_close(c, strerror(errno));
        return n;
    }
    c->rbuf.len += (size_t)n;
    c->last_ms = worker_now_us(c->w) / 1000;
    c->w->stats.bytes_in += (uint64_t)n;
    client_process_input(c);
    return n;
}

/* After a read and its parse: buffer upkeep and input limits. */
SP_INLINE ssize_t
client_after_read(struct client *c, ssize_t n)
{
    if (n <= 0 || c->closed)
        return n;
    /* A big request is parsed: give its room back (parser offsets are
     * relative to the request's start, so moving the bytes is safe). */
    if (c->rbuf.cap > RBUF_KEEP)
        buf_shrink(&c->rbuf, RBUF_KEEP);
    if (c->rbuf.data != NULL || c->rbuf_charged != 0)
        client_charge_rbuf(c);
    /* Waiting on a blocking command: keep reading (to see the client
     * leave) but not without bound. */
    if ((c->barrier != NULL || c->held) && buf_unread(&c->rbuf) > HELD_MAX)
        client_pause_reading(c);
    return n;
}

/* One read and what it parses; the bytes read (<= 0: none, or closed). */
static ssize_t
client_read_once(struct client *c)
{
    ssize_t n;

    if (c->rbuf.data == NULL) {
        n = client_read_scratch(c);
    } else {
        buf_reserve(&c->rbuf, READ_CHUNK);
        n = client_got_own(c, client_recv(c, c->rbuf.data + c->rbuf.len,
                                          c->rbuf.cap - c->rbuf.len));
    }
    return client_after_read(c, n);
}

/* A batched read's result (iobatch_done_fn) into the batch's scratch:
 * as client_read_once. */
static void
client_read_scratch_done(void *owner, void *buf, ssize_t n)
{
    struct client *c = owner;
    c->io_pending = 0;
    if (!c->closed)
        client_after_read(c, client_got_scratch(c, buf, RSCRATCH_SIZE, n));
}

/* A batched read's result into the client's own buffer. */
static void
client_read_own_done(void *owner, void *buf, ssize_t n)
{
    struct client *c = owner;
    (void)buf;
    c->io_pending = 0;
    if (!c->closed)
        client_after_read(c, client_got_own(c, n));
}

/* Queue one read for c in the batch (which has room for one more). 0 when
 * the batch's scratch area is used up: run it, then call again. */
static int
client_queue_read(struct client *c, struct iobatch *b)
{
    if (c->rbuf.data == NULL) {
        void *buf = iobatch_scratch(b, RSCRATCH_SIZE);
        if (buf == NULL)
            return 0;
        iobatch_read(b, c->fd, buf, RSCRATCH_SIZE, client_read_scratch_done,
                     c);
        return 1;
    }
    buf_reserve(&c->rbuf, READ_CHUNK);
    iobatch_read(b, c->fd, c->rbuf.data + c->rbuf.len,
                 c->rbuf.cap - c->rbuf.len, client_read_own_done, c);
    return 1;
}

void
client_read_batch(struct worker *w)
{
    struct io_readq *q = &w->rd_clients;
    for (uint32_t i = 0; i < q->n; i++) {
        struct client *c = q->items[i];
        if (c == NULL)
            continue;
        /* Closed, or paused, since it was found readable. */
        if (c->closed || c->read_paused || c->mem_paused) {
            c->io_pending = 0;
            continue;
        }
        if (!iobatch_room(w->io, 0))
            iobatch_run(w->io);
        if (!client_queue_read(c, w->io)) {
            iobatch_run(w->io);
            client_queue_read(c, w->io);
        }
    }
    q->n = 0;
}

/* Release the head request once its reply is fully written. */
static void
client_pop_head(struct client *c)
{
    struct request *r = TAILQ_FIRST(&c->pipeline);
    TAILQ_REMOVE(&c->pipeline, r, cnext);
    c->npipeline--;
    c->out_bytes -= r->out_cost;
    client_mem(c, -(int64_t)r->charged);
    r->charged = 0;
    c->wpos = 0;
    r->client = NULL;
    request_put(r);
}

/*
 * The client's socket is full. Replies it has not read count against the
 * output limit wherever they wait: in the proxy (out_bytes) or in the
 * kernel's send queue. The stall timer closes a client that reads nothing
 * at all for clients.output_stall_timeout, however little it holds.
 */
static void
client_write_blocked(struct client *c)
{
    int queued = 0;
    if (ioctl(c->fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        queued = 0;
    /* Remembered until the socket takes bytes again: replies completing
     * meanwhile are checked against it (client_request_done). */
    c->kernel_queued = (uint32_t)queued;
    if (client_over_output_limit(c))
        return;
    if (c->stalled_ms == 0)
        c->stalled_ms = sp_msec_now();
    client_want_write(c);
}

/* Point iov (room for MAX_IOV) at the replies ready to go, in order;
 * how many (0: none is ready). */
SP_INLINE int
client_fill_iov(struct client *c, struct iovec *iov)
{
    int n = 0;
    size_t skip = c->wpos;
    struct request *r;
    TAILQ_FOREACH(r, &c->pipeline, cnext) {
        if (!r->done || n == MAX_IOV)
            break;
        iov[n].iov_base = r->rep.data + r->rep.pos + skip;
        iov[n++].iov_len = buf_unread(&r->rep) - skip;
        skip = 0;
    }
    return n;
}

/* After a write of the filled replies returned nw (-1: errno): the
 * replies written go. 1 when all of it went (more may be written), 0
 * when the socket is full or the client closed. */
SP_INLINE int
client_wrote(struct client *c, ssize_t nw)
{
    struct request *r;
    if (nw < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            client_write_blocked(c);
            return 0;
        }
        if (errno == EINTR)
            return 1;
        client_close(c, strerror(errno));
        return 0;
    }
    c->stalled_ms = 0;
    c->kernel_queued = 0;
    c->w->stats.bytes_out += (uint64_t)nw;
    size_t left = (size_t)nw + c->wpos;
    while ((r = TAILQ_FIRST(&c->pipeline)) != NULL && r->done &&
           left >= buf_unread(&r->rep)) {
        left -= buf_unread(&r->rep);
        client_pop_head(c);
    }
    c->wpos = left;
    if (left > 0) {
        /* A short write: the socket is full. */
        client_write_blocked(c);
        return 0;
    }
    return 1;
}

/* Every ready reply is written: close after QUIT, or take input on. */
SP_INLINE void
client_written(struct client *c)
{
    if (c->closing && TAILQ_EMPTY(&c->pipeline)) {
        if (c->close_why != 0)
            client_disconnect(c, (enum disc_reason)(c->close_why - 1));
        else
            client_close(c, "closed after QUIT");
        return;
    }
    client_resume_input(c);
}

/* Write ready replies in order. */
static void
client_write(struct client *c)
{
    struct iovec iov[MAX_IOV];
    int n;

    while ((n = client_fill_iov(c, iov)) > 0)
        if (!client_wrote(c, client_send(c, iov, n)))
            return;
    client_written(c);
}

/* A batched write's result (iobatch_done_fn): as in client_write. */
static void
client_write_done(void *owner, void *buf, ssize_t nw)
{
    struct client *c = owner;
    (void)buf;
    c->io_pending = 0;
    /* More than one write's worth left: the rest goes directly. */
    if (!c->closed && client_wrote(c, nw))
        client_write(c);
}

/* Queue c's ready replies into the batch, or finish at once when none
 * is ready. */
static void
client_queue_write(struct client *c, struct iobatch *b)
{
    if (!iobatch_room(b, MAX_IOV))
        iobatch_run(b);
    int n = client_fill_iov(c, iobatch_iov(b, MAX_IOV));
    if (n == 0) {
        client_written(c);
        return;
    }
    c->io_pending = 1;
    iobatch_writev(b, c->fd, n, client_write_done, c);
}

/* After replies were written: input paused for backpressure, or held
 * behind a barrier that is gone, can go on. */
static void
client_resume_input(struct client *c)
{
    /* Backpressure released: resume parsing what is buffered, then read. */
    if (c->read_paused && !c->closing &&
        c->npipeline < c->w->conf->max_pipeline / 2 + 1) {
        c->read_paused = 0;
        if (!c->mem_paused) {
            event_add(c->rev, NULL);
            /* Bytes TLS already decrypted raise no socket event: one read
             * looks (it stops at once on a partial record). */
            if (c->tls != NULL && tls_pending(c->tls) > 0)
                event_active(c->rev, EV_READ, 0);
        }
        client_process_input(c);
    } else if (!c->closing && c->barrier == NULL &&
               (c->held || buf_unread(&c->rbuf) > 0)) {
        /* A barrier or a held exclusive request was released. */
        client_process_input(c);
    }
}

static void
client_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    if (c->handshaking) {
        if (client_tls_handshake(c))
            client_read_once(c); /* data may have come with it */
        return;
    }
    client_write(c);
}

void
client_flush_dirty(struct worker *w)
{
    struct client *c;
    while ((c = TAILQ_FIRST(&w->dirty_clients)) != NULL) {
        TAILQ_REMOVE(&w->dirty_clients, c, dnext);
        c->dirty = 0;
        if (c->closed) {
            client_free(c);
            continue;
        }
        if (w->io != NULL && c->tls == NULL)
            client_queue_write(c, w->io);
        else
            client_write(c);
    }
}

void
client_check_idle(struct worker *w, uint64_t now_ms)
{
    uint32_t idle = w->conf->idle_timeout_ms;
    uint32_t stall = w->conf->output_stall_timeout_ms;
    struct client *c, *next;
    for (c = TAILQ_FIRST(&w->clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, next);
        if (c->ps != NULL)
            w->client_ops->tick(c, now_ms); /* re-subscribe what was lost */
        if (c->closed)
            continue;
        struct client_ext *x = c->ext;
        if (x != NULL && x->auth_held != NULL &&
            now_ms >= x->auth_held_until_ms) {
            struct request *r = x->auth_held;
            x->auth_held = NULL;
            request_complete(r);
        }
        if (stall != 0 && c->stalled_ms != 0 && now_ms - c->stalled_ms >= stall)
            client_disconnect(c, DISC_OUTPUT_STALL);
        else if (idle != 0 && c->npipeline == 0 && now_ms - c->last_ms >= idle)
            client_disconnect(c, DISC_IDLE);
        else if (now_ms - c->last_ms >= IDLE_RELEASE_MS && !c->held) {
            /* A quiet client holds no read buffer. */
            buf_release_if_empty(&c->rbuf);
            client_charge_rbuf(c);
        }
    }
}

/* Resume the clients paused by the budget (it is below its low mark). */
static void
client_resume_mem(struct worker *w)
{
    struct client *c;
    w->mem_paused = 0;
    log_notice("memory budget: %llu bytes held, below the low-water mark: "
               "client reading resumed",
               (unsigned long long)membudget_total(&w->shared->mem));
    TAILQ_FOREACH(c, &w->clients, next) {
        if (!c->mem_paused)
            continue;
        c->mem_paused = 0;
        if (c->read_paused || c->closed)
            continue;
        event_add(c->rev, NULL);
        if (c->tls != NULL && tls_pending(c->tls) > 0)
            event_active(c->rev, EV_READ, 0); /* decrypted, no event */
    }
}

/* This worker's clients that hold anything, largest first (*n of them;
 * the caller frees the array). */
static struct mem_consumer *
client_by_size(struct worker *w, uint32_t *n)
{
    struct mem_consumer *v = sp_malloc(sizeof(*v) * (w->nclients + 1));
    struct client *c;
    *n = 0;
    TAILQ_FOREACH(c, &w->clients, next)
        if (!c->closed && c->mem > 0 && *n < w->nclients)
            v[(*n)++] = (struct mem_consumer){(uint64_t)c->mem, c};
    membudget_sort(v, *n);
    return v;
}

/*
 * Under pressure: publish this worker's largest client and, with act,
 * close clients largest first until the total is down to target, but
 * only while each is at least as large as every other worker's largest
 * (those go first, at their own worker's tick). One warning line per
 * client closed, naming what it held.
 */
static void
client_shed(struct worker *w, uint64_t target, const char *why, int act)
{
    struct membudget *b = &w->shared->mem;
    uint64_t total = membudget_total(b);
    uint32_t n, i = 0;
    struct mem_consumer *v = client_by_size(w, &n);

    if (act && total > target) {
        uint64_t need = total - target;
        uint64_t other = membudget_top_others(b, w->id);
        for (; i < n && need > 0 && v[i].bytes >= other; i++) {
            struct client *c = v[i].owner;
            log_warn("client %llu %s: closed by the memory budget (largest "
                     "clients first): it held %llu bytes; the proxy held "
                     "%llu bytes, %s %llu", (unsigned long long)c->id,
                     c->addr, (unsigned long long)v[i].bytes,
                     (unsigned long long)total, why,
                     (unsigned long long)w->conf->max_memory);
            client_disconnect(c, DISC_MEMORY_BUDGET);
            need = need > v[i].bytes ? need - v[i].bytes : 0;
        }
    }
    membudget_set_top(b, w->id, i < n ? v[i].bytes : 0);
    sp_free(v);
}

/*
 * The first tick of an episode of pressure only publishes this worker's
 * largest client, so that by the next one every worker knows the largest
 * of all; then: above the limit, close down to it; paused for
 * MEM_STUCK_MS without relief, close down to the low-water mark.
 */
void
client_check_memory(struct worker *w, uint64_t now_ms)
{
    struct membudget *b = &w->shared->mem;
    uint64_t limit = w->conf->max_memory;

    w->mem_high = limit != 0 ? membudget_high(limit) : UINT64_MAX;
    memacct_flush(&w->mem, b);
    enum membudget_level lv = membudget_level(b, limit);
    int low = membudget_below_low(b, limit);
    /* Pressure: past the high mark, or paused and not yet below the low
     * one (the hysteresis band). */
    if (lv == MEM_OK && (!w->mem_paused || low)) {
        if (w->mem_high_ms != 0)
            membudget_set_top(b, w->id, 0);
        w->mem_high_ms = 0;
    } else if (w->mem_high_ms == 0) {
        w->mem_high_ms = now_ms;
        client_shed(w, 0, NULL, 0);
    } else if (lv == MEM_OVER) {
        client_shed(w, limit, "above max_memory", 1);
    } else if (now_ms - w->mem_high_ms >= MEM_STUCK_MS) {
        client_shed(w, membudget_low(limit),
                    "paused 3 s without relief near max_memory", 1);
        w->mem_high_ms = now_ms; /* at most one such round per period */
    } else {
        client_shed(w, 0, NULL, 0);
    }
    memacct_flush(&w->mem, b);
    if (w->mem_paused && membudget_below_low(b, limit))
        client_resume_mem(w);
}

void
client_wake_waiting(struct worker *w)
{
    struct client *c;
    TAILQ_FOREACH(c, &w->clients, next) {
        if (c->waiting_map) {
            c->waiting_map = 0;
            client_mark_dirty(c);
        }
    }
}

void
client_close_all(struct worker *w)
{
    struct client *c;
    while ((c = TAILQ_FIRST(&w->clients)) != NULL)
        client_disconnect(c, DISC_SHUTDOWN);
    client_flush_dirty(w);
}
