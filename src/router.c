/* slotproxy - BSD-2-Clause
 *
 * Slot routing and redirects. MOVED: re-send to the named node and ask
 * for a topology refresh. ASK: re-send to the named node with ASKING in
 * front, without touching the map. TRYAGAIN: re-dispatch after a short
 * delay (the slot is mid-migration). Each follow costs one unit of the
 * request's budget (cluster.redirect_limit); when it runs out the last
 * error goes to the client. A redirect means the command did not run, so
 * re-sending is safe for writes.
 *
 * Only cluster members are followed (router_verdict): a redirect to a
 * node the map does not name is held while the map is fetched again
 * (polled every HOLD_POLL_MS, for at most the request timeout), then
 * followed if the new map names the node, else passed to the client. No
 * connection, credential or DNS lookup ever goes to a node that is not a
 * member. Scripts (EVAL, FCALL ...) may return any error text after they
 * ran: their TRYAGAIN is passed on, and their redirects follow the
 * stricter rule of router_verdict, so a script never runs twice because
 * of what it returned (unless a member really is importing its slot).
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "backend.h"
#include "command.h"
#include "config.h"
#include "errors.h"
#include "request.h"
#include "router.h"
#include "slotmap.h"
#include "topology.h"
#include "util.h"
#include "worker.h"

#define TRYAGAIN_DELAY_MS 20
/* How often a request held for a map refresh looks whether it came. */
#define HOLD_POLL_MS 5

static void
router_on_reply(struct request *r, const char *data, size_t len, char type);

/* Every routed request: redirects go through the router, and the request
 * timeout runs from now unless the command blocks without one. */
static void
router_prepare(struct worker *w, struct request *r)
{
    r->on_reply = router_on_reply;
    if (r->deadline_ms == 0 && !r->no_deadline)
        r->deadline_ms = worker_now_us(w) / 1000 + w->conf->request_timeout_ms;
}

static struct server *
node_server(struct worker *w, int node)
{
    return w->map_srv[node];
}

/* The master node for r (by slot, or round robin when keyless); -1 with
 * r failed when there is none. */
static int
router_pick(struct worker *w, struct request *r)
{
    const struct slotmap *m = w->map;
    int node;

    if (m->nmasters == 0) {
        if (w->topo_err[0] != '\0')
            request_failf(r, ERR_NO_MAP_FMT, w->topo_err);
        else
            request_error(r, SPE_CLUSTERDOWN_NO_MAP);
        return -1;
    }
    if (!r->keyed)
        return (int)(w->rr++ % m->nmasters);
    node = slotmap_master_of(m, r->slot);
    if (node < 0)
        request_error(r, SPE_SLOT_NOT_SERVED);
    return node;
}

int
router_node(struct worker *w, struct request *r)
{
    return router_pick(w, r);
}

struct server *
router_server(struct worker *w, struct request *r)
{
    int node = router_pick(w, r);
    return node < 0 ? NULL : node_server(w, node);
}

void
router_send_via(struct worker *w, struct request *r)
{
    router_prepare(w, r);
    int node = router_pick(w, r);
    if (node < 0)
        return;
    const struct sm_node *n = &w->map->nodes[node];
    struct server *s = r->target(r, n->host, n->port);
    if (s != NULL) /* else the hook failed r with its reason */
        backend_send(s, r);
}

/*
 * read_from replica|prefer-replica: a read (a command Redis flags
 * read-only) goes to a replica of the slot's master that the replication
 * poll found in sync, round robin. With none, prefer-replica sends it to
 * the master; replica fails it (-1): the operator asked that masters
 * serve no reads. A replica that no longer serves the slot answers
 * MOVED, which is followed as usual.
 */
static int
router_read_node(struct worker *w, struct request *r, int master)
{
    const struct slotmap *m = w->map;
    if (w->conf->read_from == READ_MASTER || r->cmd == NULL ||
        !(r->cmd->flags & CMD_F_READONLY) || (r->cmd->flags & CMD_F_WRITE) ||
        r->redirects > 0 || w->replica_ok == NULL)
        return master;
    uint32_t nrep = m->nnodes - m->nmasters;
    uint32_t start = nrep ? w->rr++ % nrep : 0;
    for (uint32_t k = 0; k < nrep; k++) {
        uint32_t i = m->nmasters + (start + k) % nrep;
        if (m->nodes[i].master == master && w->replica_ok[i])
            return (int)i;
    }
    if (w->conf->read_from == READ_PREFER_REPLICA)
        return master;
    request_failf(r, ERR_NO_REPLICA_FMT, (unsigned)r->slot);
    return -1;
}

void
router_dispatch(struct worker *w, struct request *r)
{
    router_prepare(w, r);
    int node = router_pick(w, r);
    if (node < 0)
        return;
    if (r->keyed) {
        if (r->redirects == 0)
            w->slot_calls[r->slot]++;
        node = router_read_node(w, r, node);
        if (node < 0)
            return;
    }
    backend_send(node_server(w, node), r);
}

void
router_dispatch_master(struct worker *w, struct request *r, uint32_t i)
{
    router_prepare(w, r);
    if (i >= w->map->nmasters) {
        request_error(r, SPE_CLUSTERDOWN);
        return;
    }
    backend_send(node_server(w, (int)i), r);
}

/* "<slot> <host>:<port>" after MOVED/ASK. The host may be empty
 * (meaning the node that answered) or an IPv6 address (last ':' splits);
 * it never holds a space or a control byte. */
static int
parse_target(const char *p, size_t len, struct router_redirect *rd)
{
    const char *sp = memchr(p, ' ', len);
    long long v;
    if (sp == NULL || sp_str2ll(p, (size_t)(sp - p), &v) != 0 || v < 0 ||
        v >= SLOT_COUNT)
        return -1;
    rd->slot = (uint16_t)v;
    const char *addr = sp + 1;
    size_t alen = len - (size_t)(addr - p);
    const char *colon = NULL;
    for (size_t i = alen; i > 0; i--) {
        if (addr[i - 1] == ':') {
            colon = addr + i - 1;
            break;
        }
    }
    if (colon == NULL)
        return -1;
    size_t hlen = (size_t)(colon - addr);
    if (sp_str2ll(colon + 1, alen - hlen - 1, &v) != 0 || v < 1 || v > 65535 ||
        hlen >= sizeof(rd->host))
        return -1;
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)addr[i] <= ' ' || addr[i] == 0x7f)
            return -1;
    memcpy(rd->host, addr, hlen);
    rd->host[hlen] = '\0';
    rd->port = (uint16_t)v;
    return 0;
}

int
router_parse_redirect(const char *msg, size_t len, struct router_redirect *rd)
{
    memset(rd, 0, sizeof(*rd));
    rd->ask = len > 4 && memcmp(msg, "ASK ", 4) == 0;
    int moved = len > 6 && memcmp(msg, "MOVED ", 6) == 0;
    if (!rd->ask && !moved)
        return -1;
    size_t skip = rd->ask ? 4 : 6;
    return parse_target(msg + skip, len - skip, rd);
}

int
router_runs_script(const struct command *cmd)
{
    /* The keyed commands Redis forbids inside scripts, with keys found
     * by a numkeys argument: exactly EVAL*, EVALSHA* and FCALL*. */
    const uint32_t f = CMD_F_NOSCRIPT | CMD_F_MOVABLEKEYS;
    return cmd != NULL && cmd->route == CMD_ROUTE_KEYED &&
           (cmd->flags & f) == f;
}

enum router_verdict
router_verdict(const struct slotmap *m, const struct router_redirect *rd,
               const struct router_facts *f)
{
    /* What Redis guarantees of a real redirect. */
    if (!f->keyed || rd->slot != f->slot)
        return ROUTER_PASS;
    if (f->from_host != NULL && rd->port == f->from_port &&
        strcmp(rd->host, f->from_host) == 0)
        return ROUTER_PASS;
    if (f->script && f->asked)
        return ROUTER_PASS;
    int node = slotmap_find_node(m, rd->host, rd->port);
    int ok;
    if (f->script && !rd->ask)
        /* A script's MOVED must agree with the map: the owner it names
         * is where the script would have been sent in the first place. */
        ok = node >= 0 && slotmap_master_of(m, rd->slot) == node;
    else
        ok = node >= 0 || (rd->ask && f->member);
    if (ok)
        return ROUTER_FOLLOW;
    return f->refreshed ? ROUTER_PASS : ROUTER_REFRESH;
}

/* One field of a CLUSTER NODES line: [*p, end) up to the next space. */
static size_t
field_len(const char *p, const char *end)
{
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    return (size_t)((sp != NULL ? sp : end) - p);
}

/* 1 when "ip:port@cport[,hostname]" names host:port (by ip or hostname). */
static int
addr_names(const char *a, size_t n, const char *host, uint16_t port)
{
    char want[16];
    size_t hl = strlen(host);
    int wl = snprintf(want, sizeof(want), ":%u", port);
    const char *at = memchr(a, '@', n);
    const char *colon = NULL;
    if (at == NULL)
        return 0;
    for (const char *q = at; q > a; q--) {
        if (q[-1] == ':') {
            colon = q - 1;
            break;
        }
    }
    if (colon == NULL || (size_t)(at - colon) != (size_t)wl ||
        memcmp(colon, want, (size_t)wl) != 0)
        return 0;
    if ((size_t)(colon - a) == hl && memcmp(a, host, hl) == 0)
        return 1;
    const char *comma = memchr(at, ',', n - (size_t)(at - a));
    if (comma == NULL)
        return 0;
    const char *hn = comma + 1;
    size_t hnl = n - (size_t)(hn - a);
    return hnl == hl && memcmp(hn, host, hl) == 0;
}

int
router_nodes_lists(const char *text, size_t len, const char *host,
                   uint16_t port)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol != NULL ? eol : end;
        const char *f = memchr(p, ' ', (size_t)(le - p));
        if (f != NULL) {
            const char *addr = f + 1;
            size_t alen = field_len(addr, le);
            const char *flags = addr + alen + 1;
            size_t flen = flags < le ? field_len(flags, le) : 0;
            char fl[128];
            snprintf(fl, sizeof(fl), ",%.*s,", (int)SP_MIN(flen, 120), flags);
            /* A node being met, without an address, or failed (a
             * majority says so) is not one to send requests to. */
            if (flen > 0 && strstr(fl, ",handshake,") == NULL &&
                strstr(fl, ",noaddr,") == NULL &&
                strstr(fl, ",fail,") == NULL &&
                addr_names(addr, alen, host, port))
                return 1;
        }
        p = le + 1;
    }
    return 0;
}

/* A request waiting: for a map refresh (ticket != 0) and the sender's
 * CLUSTER NODES, either of which may show its redirect's target to be a
 * member; or for a moment (a bouncing MOVED). Freed on the last unref
 * (the timer's and the CLUSTER NODES query's). */
/*
 * Timers the router arms for a request (a TRYAGAIN's delay, a held
 * redirect's polls), in the worker's list: the drain waits for them and
 * shutdown drops them (router_timers_free). event_base_once's were freed
 * with the loop without their callback, and the reference they held on
 * the request leaked.
 */
struct router_timer {
    LIST_ENTRY(router_timer) link; /* w->router_timers */
    struct event *ev;              /* the timer (owned) */
    void (*fire)(void *arg);       /* when it expires */
    void (*drop)(void *arg);       /* at shutdown, instead of fire */
    void *arg;                     /* what both are called with */
};

static void
timer_cb(evutil_socket_t fd, short what, void *p)
{
    struct router_timer *t = p;
    void (*fire)(void *arg) = t->fire;
    void *arg = t->arg;

    (void)fd;
    (void)what;
    LIST_REMOVE(t, link);
    event_free(t->ev);
    sp_free(t);
    fire(arg);
}

static void
timer_arm(struct worker *w, long ms, void (*fire)(void *arg),
          void (*drop)(void *arg), void *arg)
{
    struct router_timer *t = sp_calloc(1, sizeof(*t));
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    t->fire = fire;
    t->drop = drop;
    t->arg = arg;
    t->ev = evtimer_new(w->base, timer_cb, t);
    LIST_INSERT_HEAD(&w->router_timers, t, link);
    evtimer_add(t->ev, &tv);
}

int
router_timers_pending(const struct worker *w)
{
    return !LIST_EMPTY(&w->router_timers);
}

void
router_timers_free(struct worker *w)
{
    struct router_timer *t;
    while ((t = LIST_FIRST(&w->router_timers)) != NULL) {
        LIST_REMOVE(t, link);
        event_free(t->ev);
        t->drop(t->arg);
        sp_free(t);
    }
}

struct router_hold {
    int refs;                  /* timer + query in flight */
    struct request *r;         /* the request (a reference) */
    struct router_redirect rd; /* its redirect, host filled in */
    char from_host[256];       /* node that sent it ("": unknown) */
    uint16_t from_port;
    uint8_t member;    /* CLUSTER NODES lists the target */
    uint64_t ticket;   /* topology refresh awaited, or 0 */
    uint64_t until_ms; /* stop waiting after this */
    size_t len;        /* bytes of reply */
    char reply[];      /* the reply, if it is not followed */
};

static void
hold_unref(struct router_hold *h)
{
    if (--h->refs > 0)
        return;
    request_put(h->r);
    sp_free(h);
}

static void hold_fire(void *arg);

/* Shutdown: the hold's request fails; its query, if one is in flight,
 * fails with its server and gives the hold's last reference back. */
static void
hold_drop(void *arg)
{
    struct router_hold *h = arg;
    if (!h->r->done)
        request_error(h->r, SPE_SHUTTING_DOWN);
    hold_unref(h);
}

static void
hold_arm(struct router_hold *h, long ms)
{
    timer_arm(h->r->w, ms, hold_fire, hold_drop, h);
}

static void
hold_nodes_done(struct request *q)
{
    struct router_hold *h = q->data;
    const char *d = q->rep.data + q->rep.pos;
    size_t n = buf_unread(&q->rep);
    /* A bulk string: "$<len>\r\n<text>\r\n". */
    const char *body = n > 0 && d[0] == '$' ? memchr(d, '\n', n) : NULL;
    if (body != NULL)
        h->member = (uint8_t)router_nodes_lists(
            body + 1, n - (size_t)(body + 1 - d), h->rd.host, h->rd.port);
    hold_unref(h);
}

/* Ask the node that sent an ASK (a member: nothing else is ever
 * connected to) which nodes it knows, on its shared connection: the
 * target may be a master that serves no slot yet, which CLUSTER SLOTS
 * does not list. (A MOVED's target serves the slot: the next map names
 * it.) */
static void
hold_ask_nodes(struct router_hold *h)
{
    static const char cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n";
    struct worker *w = h->r->w;
    if (h->from_host[0] == '\0' || !h->rd.ask)
        return;
    struct request *q = request_new(&w->reqs);
    buf_append(&q->req, cmd, sizeof(cmd) - 1);
    q->on_done = hold_nodes_done;
    q->data = h;
    q->deadline_ms = h->until_ms;
    h->refs++;
    backend_send(backend_get(w, h->from_host, h->from_port), q);
    request_put(q);
}

/* Re-send r where rd points: one redirect followed. */
static void
follow_to(struct request *r, const struct router_redirect *rd)
{
    struct worker *w = r->w;
    struct server *to = r->target != NULL ? r->target(r, rd->host, rd->port)
                                          : backend_get(w, rd->host, rd->port);
    if (to == NULL)
        return; /* the hook failed r with its reason */
    r->rep.pos = r->rep.len = 0;
    r->replies_seen = 0;
    r->sent = 0;
    if (rd->ask) {
        w->stats.ask++;
        r->asking = 1;
        r->asked = 1;
    } else {
        w->stats.moved++;
        topology_request_refresh(w);
    }
    backend_send(to, r);
}

/* Hold r: for the next map and the sender's word (delay_ms 0), or
 * delay_ms for a bouncing MOVED. */
static void
hold(struct request *r, const struct router_redirect *rd,
     const struct router_facts *f, const char *data, size_t len, long delay_ms)
{
    struct worker *w = r->w;
    struct router_hold *h = sp_calloc(1, sizeof(*h) + len);
    uint64_t now = sp_msec_now();

    h->refs = 1;
    h->r = request_get(r);
    h->rd = *rd;
    snprintf(h->from_host, sizeof(h->from_host), "%s",
             f->from_host != NULL ? f->from_host : "");
    h->from_port = f->from_port;
    h->until_ms = now + w->conf->request_timeout_ms;
    if (r->deadline_ms != 0 && r->deadline_ms < h->until_ms)
        h->until_ms = r->deadline_ms;
    h->len = len;
    memcpy(h->reply, data, len);
    r->conn = NULL; /* in no queue while held */
    if (delay_ms == 0) {
        h->ticket = topology_refresh_ticket(w);
        topology_request_refresh(w);
        hold_ask_nodes(h);
    }
    hold_arm(h, delay_ms != 0 ? delay_ms : HOLD_POLL_MS);
}

/* Decide and act on redirect rd for r. 0 when r was taken care of, -1
 * when it is passed. delayed: r already waited out a bouncing MOVED. */
static int
apply(struct request *r, const struct router_redirect *rd,
      const struct router_facts *f, const char *data, size_t len, int delayed)
{
    switch (router_verdict(r->w->map, rd, f)) {
    case ROUTER_REFRESH:
        hold(r, rd, f, data, len, 0);
        return 0;
    case ROUTER_FOLLOW:
        if (!rd->ask && r->redirects > 2 && !delayed) {
            /* MOVED bouncing between nodes while a slot changes hands
             * (each still names the other): wait a little, with a fresh
             * map on the way, instead of spending the budget at once; then
             * go where the last node said, not where a map (maybe older
             * than that MOVED) says. */
            topology_request_refresh(r->w);
            hold(r, rd, f, data, len, TRYAGAIN_DELAY_MS * r->redirects);
            return 0;
        }
        follow_to(r, rd);
        return 0;
    case ROUTER_PASS:
    default:
        return -1;
    }
}

static void
facts_of(const struct request *r, struct router_facts *f, const char *host,
         uint16_t port, int refreshed)
{
    memset(f, 0, sizeof(*f));
    f->keyed = r->keyed;
    f->slot = r->slot;
    f->script = (uint8_t)router_runs_script(r->cmd);
    f->asked = r->asked;
    f->refreshed = (uint8_t)refreshed;
    f->from_host = host != NULL && host[0] != '\0' ? host : NULL;
    f->from_port = port;
}

static void
hold_fire(void *arg)
{
    struct router_hold *h = arg;
    struct request *r = h->r;
    struct router_facts f;

    if (r->done) /* failed meanwhile (client gone, shutdown) */
        goto out;
    int enough = h->member; /* an ASK's target confirmed */
    int waiting = h->ticket != 0 && !enough && sp_msec_now() < h->until_ms &&
                  !topology_ticket_done(r->w, h->ticket);
    if (waiting) {
        hold_arm(h, HOLD_POLL_MS);
        return;
    }
    facts_of(r, &f, h->from_host, h->from_port, 1);
    f.member = h->member;
    if (apply(r, &h->rd, &f, h->reply, h->len, 1) != 0)
        request_reply(r, h->reply, h->len, '-'); /* r->conn is NULL */
out:
    hold_unref(h);
}

int
router_follow(struct request *r, struct server *from, const char *msg,
              size_t mlen, const char *data, size_t len)
{
    struct router_redirect rd;
    struct router_facts f;

    if (from == NULL || r->redirects >= r->w->conf->redirect_limit ||
        router_parse_redirect(msg, mlen, &rd) != 0)
        return -1;
    /* An empty endpoint means the node that sent the redirect; so does
     * "?" (no hostname known), as for CLUSTER SLOTS (slotmap.c). */
    if (rd.host[0] == '\0' || strcmp(rd.host, "?") == 0)
        snprintf(rd.host, sizeof(rd.host), "%s", from->host);
    r->redirects++;
    facts_of(r, &f, from->host, from->port, 0);
    return apply(r, &rd, &f, data, len, 0);
}

/* Shutdown: the request waiting out a TRYAGAIN fails. */
static void
tryagain_drop(void *arg)
{
    struct request *r = arg;
    if (!r->done)
        request_error(r, SPE_SHUTTING_DOWN);
    request_put(r);
}

static void
tryagain_fire(void *arg)
{
    struct request *r = arg;
    if (!r->done) {
        if (r->target != NULL)
            router_send_via(r->w, r); /* a pinned request stays pinned */
        else
            router_dispatch(r->w, r);
    }
    request_put(r);
}

/*
 * Reply hook of every routed request. Errors that mean "not here, not
 * now" are followed within the budget; everything else, including the
 * last redirect once the budget is spent, completes the request.
 */
static void
router_on_reply(struct request *r, const char *data, size_t len, char type)
{
    struct worker *w = r->w;
    struct server *from = r->conn != NULL ? r->conn->srv : NULL;

    if (type != '-' || from == NULL || len < 8 ||
        r->redirects >= w->conf->redirect_limit) {
        request_finish(r, data, len);
        return;
    }
    const char *msg = data + 1;
    size_t mlen = len - 3; /* without '-' and CRLF */
    if (memcmp(msg, "TRYAGAIN", 8) == 0) {
        /* Redis sends it only for a multi-key request whose keys are
         * split by a migration; a script may return it after it ran. */
        if (!r->keyed || router_runs_script(r->cmd)) {
            request_finish(r, data, len);
            return;
        }
        r->redirects++;
        r->sent = 0;
        w->stats.tryagain++;
        r->conn = NULL;
        timer_arm(w, TRYAGAIN_DELAY_MS, tryagain_fire, tryagain_drop,
                  request_get(r));
        return;
    }
    if (router_follow(r, from, msg, mlen, data, len) != 0)
        request_finish(r, data, len);
}
