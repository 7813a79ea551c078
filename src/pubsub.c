/* slotproxy - BSD-2-Clause
 *
 * Pub/Sub. A client's (un)subscribe commands travel on its push-mode
 * pinned connections and complete at once with an empty reply in its
 * pipeline; the server's confirmations and messages reach the client as
 * pushes, in the order each connection delivers them. The subscription
 * counts in confirmations are the server's own for SUBSCRIBE/PSUBSCRIBE
 * (one connection, as with one Redis); for sharded channels, spread over
 * one connection per shard, the proxy rewrites the count to the client's
 * total so that it reads as from a single server.
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"
#include "backend.h"
#include "client.h"
#include "command.h"
#include "config.h"
#include "errors.h"
#include "pin.h"
#include "pubsub.h"
#include "request.h"
#include "resp.h"
#include "router.h"
#include "keyslot.h"
#include "slotmap.h"
#include "worker.h"

/* The marker PING sent behind an unsubscribe: its reply (["pong", token]
 * while still subscribed, the bulk token once not) says every
 * confirmation before it has arrived. The token is 128 random bits per
 * client, and a reply counts as the marker only in exactly those shapes
 * and while a marker is outstanding on that connection: nothing another
 * client publishes, nor the client's own PING, can pass for it. */
#define SYNC_TOKEN_LEN 32

/* A set of channel (or pattern) names, as the server confirmed them. */
struct chanlist {
    struct buf *v;                  /* names (each buf holds one) */
    uint32_t n;
};

struct shard_sub {
    struct server *srv;             /* pinned push connection of a shard */
    long long count;                /* its last reported count */
    struct chanlist chans;          /* shard channels subscribed there */
    uint32_t suppress;              /* confirmations of a re-subscription
                                     * still to swallow */
    uint8_t subscribing;            /* subscribe sent, no confirmation
                                     * from there yet: in subscribed mode
                                     * before the count says so */
};

struct pubsub {
    struct server *conn;            /* SUBSCRIBE/PSUBSCRIBE connection */
    long long count;                /* its last reported count */
    uint32_t suppress;              /* as in shard_sub, for conn */
    uint8_t subscribing;            /* as in shard_sub, for conn */
    struct chanlist channels;       /* SUBSCRIBEd channels */
    struct chanlist patterns;       /* PSUBSCRIBEd patterns */
    struct shard_sub *shards;       /* SSUBSCRIBE connections */
    uint32_t nshards;
    uint8_t active;                 /* in subscribed mode */
    uint8_t resub_main;             /* conn was lost: subscribe again */
    struct chanlist resub_shard;    /* shard channels to subscribe again */
    struct chanlist sunsub_asked;   /* shard channels the client asked to
                                     * SUNSUBSCRIBE (others are the
                                     * server's doing: slot moved) */
    uint64_t lost_ms;               /* when a connection was lost */
    struct request *sync_req;       /* an (un)subscribe waiting for its
                                     * confirmations (marker PING) */
    struct server *sync_srv;        /* where the marker went */
    struct server **marks;          /* one entry per marker PING sent and
                                     * not answered yet (its connection) */
    uint32_t nmarks;
    char token[SYNC_TOKEN_LEN + 1]; /* this client's marker argument:
                                     * random, never shown to anyone */
};

/* Give up re-subscribing (and close the client) after this long. */
#define RESUB_GIVE_UP_MS 15000

static int
chan_find(const struct chanlist *l, const char *s, size_t n)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->v[i].len == n && memcmp(l->v[i].data, s, n) == 0)
            return (int)i;
    return -1;
}

static void
chan_add(struct chanlist *l, const char *s, size_t n)
{
    if (chan_find(l, s, n) >= 0)
        return;
    l->v = sp_realloc(l->v, (l->n + 1) * sizeof(*l->v));
    buf_init(&l->v[l->n]);
    buf_append(&l->v[l->n], s, n);
    l->n++;
}

static void
chan_del(struct chanlist *l, const char *s, size_t n)
{
    int i = chan_find(l, s, n);
    if (i < 0)
        return;
    buf_deinit(&l->v[i]);
    l->v[i] = l->v[--l->n];
}

static void
chan_free(struct chanlist *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        buf_deinit(&l->v[i]);
    sp_free(l->v);
    l->v = NULL;
    l->n = 0;
}

int
pubsub_intercepts(const struct client *c, const struct command *cmd)
{
    /* RESP3 has no subscribed mode: pushes are told apart from replies,
     * so every command runs (as Redis allows). */
    if (c->ps != NULL && c->ps->active && !c->resp3)
        return cmd->op != CMD_OP_QUIT && cmd->op != CMD_OP_RESET;
    return cmd->route == CMD_ROUTE_PUBSUB;
}

static long long
shard_total(const struct pubsub *ps)
{
    long long n = 0;
    for (uint32_t i = 0; i < ps->nshards; i++)
        n += ps->shards[i].count;
    return n;
}

/* Back to normal mode: the connections are left open for reuse, in
 * request/reply mode (a server with no subscription is a plain one). */
static void
pubsub_leave(struct pubsub *ps)
{
    ps->active = 0;
}

static struct shard_sub *
shard_of(struct pubsub *ps, const struct server *s)
{
    for (uint32_t i = 0; i < ps->nshards; i++)
        if (ps->shards[i].srv == s)
            return &ps->shards[i];
    return NULL;
}

/* A confirmation ["ssubscribe", channel, count] rewritten with the
 * client's total count over all shards. */
static void
push_rewritten(struct client *c, const struct resp_value *v, long long total)
{
    struct buf b;
    buf_init(&b);
    /* A RESP3 connection's push stays one. */
    if (v->type == '>')
        buf_append(&b, ">3\r\n", 4);
    else
        buf_add_array(&b, 3);
    buf_add_bulk(&b, v->elems[0].str, v->elems[0].len);
    if (v->elems[1].str != NULL)
        buf_add_bulk(&b, v->elems[1].str, v->elems[1].len);
    else
        buf_add_null(&b, v->type == '>');
    buf_add_int(&b, total);
    client_push(c, b.data, b.len);
    buf_deinit(&b);
}

static int
elem_is(const struct resp_value *e, const char *s)
{
    return e->type == '$' && e->str != NULL && sp_strcaseeq(e->str, e->len, s);
}

/* 1 when the client is (or is about to be, or is being re-subscribed)
 * in subscribed mode. */
static int
pubsub_subscribed(const struct pubsub *ps)
{
    if (ps->count > 0 || (ps->conn != NULL && ps->subscribing) ||
        ps->resub_main || ps->resub_shard.n > 0)
        return 1;
    for (uint32_t i = 0; i < ps->nshards; i++)
        if (ps->shards[i].count > 0 || ps->shards[i].subscribing)
            return 1;
    return 0;
}

/* Consume one outstanding marker of s when data is its exact reply. */
static int
pubsub_take_marker(struct pubsub *ps, const struct server *s,
                   const char *data, size_t len)
{
    static const char pong[] = "*2\r\n$4\r\npong\r\n";
    char want[64];
    int n = snprintf(want, sizeof(want), "$%d\r\n%s\r\n", SYNC_TOKEN_LEN,
                     ps->token);
    const char *tail = data;
    size_t tlen = len;
    uint32_t i;

    for (i = 0; i < ps->nmarks && ps->marks[i] != s; i++)
        ;
    if (i == ps->nmarks)
        return 0;
    if (tlen > sizeof(pong) - 1 &&
        memcmp(tail, pong, sizeof(pong) - 1) == 0) {
        tail += sizeof(pong) - 1;
        tlen -= sizeof(pong) - 1;
    }
    if (tlen != (size_t)n || memcmp(tail, want, tlen) != 0)
        return 0;
    ps->marks[i] = ps->marks[--ps->nmarks];
    return 1;
}

/* Forget the markers outstanding on s (its connection is gone). */
static void
pubsub_drop_marks(struct pubsub *ps, const struct server *s)
{
    for (uint32_t i = 0; i < ps->nmarks;) {
        if (ps->marks[i] == s)
            ps->marks[i] = ps->marks[--ps->nmarks];
        else
            i++;
    }
}

/* Out of subscribed mode with nothing left to re-subscribe: the push
 * connections go (a later SUBSCRIBE opens new ones). */
static void
pubsub_drop_conns(struct client *c, struct pubsub *ps)
{
    pin_release_user(c->w, &c->pins, PIN_PUBSUB);
    ps->conn = NULL;
    ps->count = 0;
    ps->suppress = 0;
    ps->subscribing = 0;
    for (uint32_t i = 0; i < ps->nshards; i++)
        chan_free(&ps->shards[i].chans);
    sp_free(ps->shards);
    ps->shards = NULL;
    ps->nshards = 0;
    ps->nmarks = 0;
    chan_free(&ps->sunsub_asked);
}

/* The confirmations of the client's unsubscribe are all in: complete it
 * (releasing the client's input held behind it) and, out of subscribed
 * mode, turn the connection back to request/reply mode so that it can
 * carry a blocking command or a WATCH. */
static void
pubsub_sync_done(struct client *c, struct pubsub *ps, struct server *s)
{
    struct request *r = ps->sync_req;
    ps->sync_req = NULL;
    ps->sync_srv = NULL;
    /* Every confirmation before the marker is in: the counts are exact. */
    if (s == ps->conn)
        ps->subscribing = 0;
    struct shard_sub *sh = shard_of(ps, s);
    if (sh != NULL)
        sh->subscribing = 0;
    if (!pubsub_subscribed(ps))
        pubsub_leave(ps);
    if (!ps->active && !ps->resub_main && ps->resub_shard.n == 0)
        pubsub_drop_conns(c, ps);
    /* Last: completing r may close the client. */
    if (r != NULL) {
        if (!r->done)
            request_complete(r);
        request_put(r);
    }
}

/* A sharded (un)subscribe confirmation from s: 1 when the client is
 * to see it (rewritten with its total count). */
static int
pubsub_shard_confirm(struct pubsub *ps, struct server *s,
                     const struct resp_value *v)
{
    const struct resp_value *name = &v->elems[1];
    int sub = elem_is(&v->elems[0], "ssubscribe");
    struct shard_sub *sh = shard_of(ps, s);

    if (sh != NULL) {
        sh->count = v->elems[2].integer;
        if (sub)
            sh->subscribing = 0;
        if (name->str != NULL && sub)
            chan_add(&sh->chans, name->str, name->len);
        else if (name->str != NULL)
            chan_del(&sh->chans, name->str, name->len);
    }
    if (sh != NULL && sub && sh->suppress > 0) {
        sh->suppress--; /* a re-subscription the client never asked */
        return 0;
    }
    if (!sub && name->str != NULL &&
        chan_find(&ps->sunsub_asked, name->str, name->len) < 0) {
        /* The server dropped the channel (its slot moved, or the node
         * became a replica): subscribe again where the slot is now. */
        chan_add(&ps->resub_shard, name->str, name->len);
        if (ps->lost_ms == 0)
            ps->lost_ms = sp_msec_now();
        return 0;
    }
    if (!sub && name->str != NULL)
        chan_del(&ps->sunsub_asked, name->str, name->len);
    return 1;
}

/* A SUBSCRIBE/PSUBSCRIBE-family confirmation from s: 1 when the client
 * is to see it as is. */
static int
pubsub_main_confirm(struct pubsub *ps, struct server *s,
                    const struct resp_value *v)
{
    const struct resp_value *kind = &v->elems[0];
    const struct resp_value *name = &v->elems[1];
    struct chanlist *l = NULL;
    int sub = elem_is(kind, "subscribe") || elem_is(kind, "psubscribe");

    if (s != ps->conn)
        return 1;
    if (elem_is(kind, "subscribe") || elem_is(kind, "unsubscribe"))
        l = &ps->channels;
    else if (elem_is(kind, "psubscribe") || elem_is(kind, "punsubscribe"))
        l = &ps->patterns;
    if (l == NULL)
        return 1;
    ps->count = v->elems[2].integer;
    if (sub)
        ps->subscribing = 0;
    if (name->str != NULL && sub)
        chan_add(l, name->str, name->len);
    else if (name->str != NULL)
        chan_del(l, name->str, name->len);
    if (sub && ps->suppress > 0) {
        ps->suppress--;
        return 0;
    }
    return 1;
}

/*
 * Everything a push-mode connection sends. The client's state is
 * updated first and the push appended last: appending may close the
 * client (its output limit), after which nothing of it is touched.
 */
static void
pubsub_on_push(struct server *s, const char *data, size_t len, char type)
{
    struct client *c = s->push_ctx;
    struct pubsub *ps = c != NULL ? c->ps : NULL;
    struct resp_value *v = NULL;

    if (ps == NULL || c->closed)
        return; /* a released pin drops its pushes; be safe anyway */
    if (pubsub_take_marker(ps, s, data, len)) {
        if (ps->sync_srv == s)
            pubsub_sync_done(c, ps, s);
        return;
    }
    if ((type != '*' && type != '>') ||
        resp_value_parse(data, len, &v) <= 0 ||
        v->nelems != 3 || v->elems[0].type != '$' ||
        v->elems[2].type != ':') {
        /* A message, a pmessage, a pong: as is. */
        if (v != NULL)
            resp_value_free(v);
        client_push(c, data, len);
        return;
    }
    int shard = elem_is(&v->elems[0], "ssubscribe") ||
                elem_is(&v->elems[0], "sunsubscribe");
    int show = shard ? pubsub_shard_confirm(ps, s, v)
                     : pubsub_main_confirm(ps, s, v);
    if (!pubsub_subscribed(ps))
        pubsub_leave(ps);
    if (show && shard)
        push_rewritten(c, v, shard_total(ps));
    else if (show)
        client_push(c, data, len);
    resp_value_free(v);
}

/*
 * A connection carrying subscriptions dropped (failover, node restart):
 * its subscriptions are made again on the slot map's current owner at the
 * next tick (pubsub_tick), their confirmations swallowed, so the client
 * keeps its subscriptions without doing anything. Messages published
 * while no connection was up are lost, as with Redis itself.
 */
static void
pubsub_on_lost(struct server *s)
{
    struct client *c = s->push_ctx;
    struct pubsub *ps = c != NULL ? c->ps : NULL;

    s->on_push = NULL;
    s->on_push_lost = NULL;
    if (ps == NULL || c->closed)
        return;
    pubsub_drop_marks(ps, s);
    if (s == ps->conn) {
        ps->conn = NULL;
        ps->suppress = 0;
        ps->count = 0;
        ps->subscribing = 0;
        ps->resub_main = ps->channels.n + ps->patterns.n > 0;
    }
    for (uint32_t i = 0; i < ps->nshards; i++) {
        struct shard_sub *sh = &ps->shards[i];
        if (sh->srv != s)
            continue;
        for (uint32_t j = 0; j < sh->chans.n; j++)
            chan_add(&ps->resub_shard, sh->chans.v[j].data,
                     sh->chans.v[j].len);
        chan_free(&sh->chans);
        ps->shards[i] = ps->shards[--ps->nshards];
        break;
    }
    if (ps->lost_ms == 0)
        ps->lost_ms = sp_msec_now();
    pin_release(c->w, &c->pins, s);
    /* The unsubscribe's marker will not come back: release the client's
     * input held behind it (last: that may close the client). */
    if (ps->sync_srv == s)
        pubsub_sync_done(c, ps, s);
}

/* 128 random bits as hex: the kernel's, or the worker's generator. */
static void
pubsub_new_token(struct worker *w, char *out)
{
    uint8_t b[SYNC_TOKEN_LEN / 2];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        for (size_t i = 0; i < sizeof(b); i++) {
            w->rand_state ^= w->rand_state << 13;
            w->rand_state ^= w->rand_state >> 7;
            w->rand_state ^= w->rand_state << 17;
            b[i] = (uint8_t)(w->rand_state ^ sp_usec_now());
        }
    }
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static struct pubsub *
pubsub_get(struct client *c)
{
    if (c->ps == NULL) {
        c->ps = sp_calloc(1, sizeof(*c->ps));
        pubsub_new_token(c->w, c->ps->token);
    }
    return c->ps;
}

static void
set_push_mode(struct client *c, struct server *s)
{
    s->on_push = pubsub_on_push;
    s->on_push_lost = pubsub_on_lost;
    s->push_ctx = c;
}

/* The pinned push connection to the master of r's slot (any master when
 * r is keyless); NULL with r answered on failure. */
static struct server *
pubsub_server(struct client *c, struct request *r)
{
    int node = router_node(c->w, r);
    if (node < 0)
        return NULL;
    const struct sm_node *n = &c->w->map->nodes[node];
    struct server *s = pin_get(c->w, &c->pins, n->host, n->port, PIN_PUBSUB);
    if (s == NULL)
        request_fail(r, pin_refusal(c->w, &c->pins));
    return s;
}

/* Send r's bytes on s and complete r with an empty reply: what the server
 * answers arrives as pushes. */
static void
send_on(struct client *c, struct server *s, struct request *r,
        const struct resp_req *p, const char *base)
{
    resp_req_encode(&r->req, p, base);
    r->no_deadline = 1;
    /* A send that fails at once completes r, and may close the client
     * and drop its reference: hold one. */
    request_get(r);
    backend_send(s, r);
    if (!r->done)
        request_complete(r);
    request_put(r);
}

/* An unsubscribe: r stays open until a marker PING sent right behind it
 * comes back, so the client's next commands (maybe no longer in
 * subscribed mode) run after every confirmation. */
static void
send_unsub(struct client *c, struct server *s, struct request *r,
           const struct resp_req *p, const char *base)
{
    struct pubsub *ps = c->ps;
    resp_req_encode(&r->req, p, base);
    buf_printf(&r->req, "*2\r\n$4\r\nPING\r\n$%d\r\n%s\r\n",
               SYNC_TOKEN_LEN, ps->token);
    r->no_deadline = 1;
    if (ps->sync_req != NULL) {
        /* One at a time: the client's barrier keeps it so. */
        struct request *old = ps->sync_req;
        ps->sync_req = NULL;
        if (!old->done)
            request_complete(old);
        request_put(old);
        if (c->closed)
            return;
    }
    ps->marks = sp_realloc(ps->marks, (ps->nmarks + 1) * sizeof(*ps->marks));
    ps->marks[ps->nmarks++] = s;
    ps->sync_req = request_get(r);
    ps->sync_srv = s;
    request_get(r);
    backend_send(s, r);
    if (r->done && !c->closed && ps->sync_req == r) {
        /* Failed at once (connection down): nothing to wait for. */
        ps->sync_req = NULL;
        ps->sync_srv = NULL;
        pubsub_drop_marks(ps, s);
        request_put(r);
    }
    request_put(r);
}

/* A push connection with subscriptions, to answer PING in order; NULL
 * when none (the proxy answers). */
static struct server *
ping_server(const struct pubsub *ps)
{
    if (ps->conn != NULL && (ps->count > 0 || ps->subscribing))
        return ps->conn;
    for (uint32_t i = 0; i < ps->nshards; i++)
        if (ps->shards[i].count > 0 || ps->shards[i].subscribing)
            return ps->shards[i].srv;
    return NULL;
}

/* A subscribe: for a RESP3 client, whose next commands run in
 * subscribed mode too, it is answered (and the client's input released)
 * only once its confirmations are in, so that no reply overtakes them;
 * in RESP2 only the subscribe family follows, in order on s anyway. */
static void
send_sub(struct client *c, struct server *s, struct request *r,
         const struct resp_req *p, const char *base)
{
    if (c->resp3)
        send_unsub(c, s, r, p, base);
    else
        send_on(c, s, r, p, base);
}

/* Local confirmation when nothing is subscribed: [kind, channel|nil, n]. */
static void
reply_unsub_none(struct request *r, const char *kind,
                 const struct resp_req *p, const char *base, long long n)
{
    uint32_t nch = p->argc > 1 ? p->argc - 1 : 1;
    for (uint32_t i = 0; i < nch; i++) {
        /* A RESP3 client gets it as the push Redis sends it. */
        if (request_resp3(r))
            buf_append(&r->rep, ">3\r\n", 4);
        else
            buf_add_array(&r->rep, 3);
        buf_add_bulk_str(&r->rep, kind);
        if (p->argc > 1)
            buf_add_bulk(&r->rep, base + p->argv[i + 1].off,
                         p->argv[i + 1].len);
        else
            buf_add_null(&r->rep, request_resp3(r));
        buf_add_int(&r->rep, n);
    }
    request_complete(r);
}

static void
pubsub_ssubscribe(struct client *c, struct request *r,
                  const struct command *cmd, const struct resp_req *p,
                  const char *base)
{
    struct pubsub *ps = pubsub_get(c);
    uint16_t slot;
    if (command_keys_slot(cmd, p, base, &slot) < 0) {
        request_error(r, SPE_CROSSSLOT);
        return;
    }
    r->keyed = 1;
    r->slot = slot;
    struct server *s = pubsub_server(c, r);
    if (s == NULL)
        return;
    if (shard_of(ps, s) == NULL) {
        ps->shards = sp_realloc(ps->shards,
                                (ps->nshards + 1) * sizeof(*ps->shards));
        memset(&ps->shards[ps->nshards], 0, sizeof(ps->shards[0]));
        ps->shards[ps->nshards++].srv = s;
    }
    set_push_mode(c, s);
    ps->active = 1;
    shard_of(ps, s)->subscribing = 1;
    send_sub(c, s, r, p, base);
}

static void
pubsub_sunsubscribe(struct client *c, struct request *r,
                    const struct command *cmd, const struct resp_req *p,
                    const char *base)
{
    struct pubsub *ps = c->ps;
    if (ps == NULL || ps->nshards == 0) {
        reply_unsub_none(r, "sunsubscribe", p, base, 0);
        return;
    }
    if (p->argc == 1) {
        for (uint32_t i = 0; i < ps->nshards; i++)
            for (uint32_t j = 0; j < ps->shards[i].chans.n; j++)
                chan_add(&ps->sunsub_asked, ps->shards[i].chans.v[j].data,
                         ps->shards[i].chans.v[j].len);
        /* From every shard: each confirms its own channels. A send may
         * lose a connection (and change the shard list): send on a copy,
         * then check what is left. */
        uint32_t n = ps->nshards;
        struct server **to = sp_malloc(n * sizeof(*to));
        for (uint32_t i = 0; i < n; i++)
            to[i] = ps->shards[i].srv;
        for (uint32_t i = 0; i + 1 < n; i++) {
            struct request *extra = request_new(&c->w->reqs);
            resp_req_encode(&extra->req, p, base);
            backend_send(to[i], extra);
            request_put(extra);
        }
        struct server *last = to[n - 1];
        sp_free(to);
        if (c->closed)
            return;
        if (shard_of(ps, last) == NULL)
            reply_unsub_none(r, "sunsubscribe", p, base, shard_total(ps));
        else
            send_unsub(c, last, r, p, base);
        return;
    }
    uint16_t slot;
    if (command_keys_slot(cmd, p, base, &slot) < 0) {
        request_error(r, SPE_CROSSSLOT);
        return;
    }
    for (uint32_t i = 1; i < p->argc; i++)
        chan_add(&ps->sunsub_asked, base + p->argv[i].off, p->argv[i].len);
    r->keyed = 1;
    r->slot = slot;
    int node = router_node(c->w, r);
    if (node < 0)
        return;
    const struct sm_node *n = &c->w->map->nodes[node];
    for (uint32_t i = 0; i < ps->nshards; i++) {
        struct server *s = ps->shards[i].srv;
        if (s->port == n->port && strcmp(s->host, n->host) == 0) {
            send_unsub(c, s, r, p, base);
            return;
        }
    }
    reply_unsub_none(r, "sunsubscribe", p, base, shard_total(ps));
}

void
pubsub_dispatch(struct client *c, struct request *r, const struct command *cmd,
                const struct resp_req *p, const char *base)
{
    struct pubsub *ps = c->ps;
    char msg[300];

    switch (cmd->op) {
    case CMD_OP_SUBSCRIBE:
    case CMD_OP_PSUBSCRIBE:
        ps = pubsub_get(c);
        if (ps->conn == NULL) {
            r->keyed = 0;
            ps->conn = pubsub_server(c, r);
            if (ps->conn == NULL)
                return;
        }
        /* A PIN_PUBSUB pin is only ever in push mode; say so anyway. */
        set_push_mode(c, ps->conn);
        ps->active = 1;
        ps->subscribing = 1;
        send_sub(c, ps->conn, r, p, base);
        return;
    case CMD_OP_UNSUBSCRIBE:
    case CMD_OP_PUNSUBSCRIBE:
        if (ps == NULL || ps->conn == NULL)
            reply_unsub_none(r, cmd->name, p, base, ps ? ps->count : 0);
        else
            send_unsub(c, ps->conn, r, p, base);
        return;
    case CMD_OP_SSUBSCRIBE:
        pubsub_ssubscribe(c, r, cmd, p, base);
        return;
    case CMD_OP_SUNSUBSCRIBE:
        pubsub_sunsubscribe(c, r, cmd, p, base);
        return;
    case CMD_OP_PING:
        if (ping_server(ps) != NULL) {
            /* Answered by a server that is in subscribed mode (["pong",
             * msg]), in order with the confirmations it sends. */
            send_on(c, ping_server(ps), r, p, base);
            return;
        }
        /* RESP2 subscribed-mode PING: ["pong", message or ""]. */
        buf_add_array(&r->rep, 2);
        buf_add_bulk_str(&r->rep, "pong");
        if (p->argc > 1)
            buf_add_bulk(&r->rep, base + p->argv[1].off, p->argv[1].len);
        else
            buf_add_bulk_str(&r->rep, "");
        request_complete(r);
        return;
    default:
        snprintf(msg, sizeof(msg), "ERR Can't execute '%s': only (P|S)"
                 "SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                 "allowed in this context", cmd->fullname);
        request_fail(r, msg);
        return;
    }
}

void
pubsub_reset(struct client *c)
{
    struct pubsub *ps = c->ps;
    if (ps == NULL)
        return;
    /* Closing the push connections drops every subscription. */
    pin_release_user(c->w, &c->pins, PIN_PUBSUB);
    struct request *r = ps->sync_req;
    ps->sync_req = NULL;
    pubsub_free(c);
    if (r != NULL) {
        /* Not reached while the barrier holds RESET behind it; last,
         * since completing r may close the client. */
        if (!r->done)
            request_complete(r);
        request_put(r);
    }
}

void
pubsub_free(struct client *c)
{
    struct pubsub *ps = c->ps;
    if (ps == NULL)
        return;
    if (ps->sync_req != NULL)
        request_put(ps->sync_req);
    sp_free(ps->marks);
    for (uint32_t i = 0; i < ps->nshards; i++)
        chan_free(&ps->shards[i].chans);
    chan_free(&ps->channels);
    chan_free(&ps->patterns);
    chan_free(&ps->resub_shard);
    chan_free(&ps->sunsub_asked);
    sp_free(ps->shards);
    sp_free(ps);
    c->ps = NULL;
}

/* An internal (no client) command on a push connection. */
static void
send_internal(struct worker *w, struct server *s, const char *cmd,
              const struct chanlist *l)
{
    struct request *r = request_new(&w->reqs);
    buf_add_array(&r->req, 1 + l->n);
    buf_add_bulk_str(&r->req, cmd);
    for (uint32_t i = 0; i < l->n; i++)
        buf_add_bulk(&r->req, l->v[i].data, l->v[i].len);
    r->no_deadline = 1;
    backend_send(s, r);
    request_put(r);
}

static struct server *
resub_server(struct client *c, const struct sm_node *n)
{
    struct server *s = pin_get(c->w, &c->pins, n->host, n->port, PIN_PUBSUB);
    if (s != NULL)
        set_push_mode(c, s);
    return s;
}

/* Re-subscribe what a lost connection carried; 0 when done. */
static int
resub_main(struct client *c, struct pubsub *ps)
{
    const struct slotmap *m = c->w->map;
    if (m->nmasters == 0)
        return -1;
    struct server *s = resub_server(c, &m->nodes[c->w->rr++ % m->nmasters]);
    if (s == NULL)
        return -1;
    ps->conn = s;
    ps->subscribing = 1;
    ps->suppress = ps->channels.n + ps->patterns.n;
    if (ps->channels.n > 0)
        send_internal(c->w, s, "SUBSCRIBE", &ps->channels);
    if (ps->patterns.n > 0)
        send_internal(c->w, s, "PSUBSCRIBE", &ps->patterns);
    ps->resub_main = 0;
    return 0;
}

static int
resub_shards(struct client *c, struct pubsub *ps)
{
    const struct slotmap *m = c->w->map;
    while (ps->resub_shard.n > 0) {
        struct buf *ch = &ps->resub_shard.v[ps->resub_shard.n - 1];
        int node = slotmap_master_of(m, keyslot(ch->data, ch->len));
        if (node < 0)
            return -1;
        struct server *s = resub_server(c, &m->nodes[node]);
        if (s == NULL)
            return -1;
        struct shard_sub *sh = shard_of(ps, s);
        if (sh == NULL) {
            ps->shards = sp_realloc(ps->shards,
                                    (ps->nshards + 1) * sizeof(*ps->shards));
            sh = &ps->shards[ps->nshards++];
            memset(sh, 0, sizeof(*sh));
            sh->srv = s;
        }
        struct chanlist one = {ch, 1};
        sh->suppress++;
        sh->subscribing = 1;
        send_internal(c->w, s, "SSUBSCRIBE", &one);
        chan_del(&ps->resub_shard, ch->data, ch->len);
    }
    return 0;
}

void
pubsub_tick(struct client *c, uint64_t now_ms)
{
    struct pubsub *ps = c->ps;
    if (ps == NULL || ps->lost_ms == 0)
        return;
    int pending = 0;
    if (ps->resub_main && resub_main(c, ps) != 0)
        pending = 1;
    if (ps->resub_shard.n > 0 && resub_shards(c, ps) != 0)
        pending = 1;
    if (!pending) {
        ps->lost_ms = 0;
        return;
    }
    if (now_ms - ps->lost_ms > RESUB_GIVE_UP_MS)
        client_disconnect(c, DISC_PUBSUB_LOST);
}
