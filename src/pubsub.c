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

#include "alloc.h"
#include "backend.h"
#include "client.h"
#include "command.h"
#include "config.h"
#include "pin.h"
#include "pubsub.h"
#include "request.h"
#include "resp.h"
#include "router.h"
#include "slotmap.h"
#include "worker.h"

struct shard_sub {
    struct server *srv;             /* pinned push connection of a shard */
    long long count;                /* its last reported count */
};

struct pubsub {
    struct server *conn;            /* SUBSCRIBE/PSUBSCRIBE connection */
    long long count;                /* its last reported count */
    struct shard_sub *shards;       /* SSUBSCRIBE connections */
    uint32_t nshards;
    uint8_t active;                 /* in subscribed mode */
};

static int
is_named(const struct command *cmd, const char *name)
{
    return strcmp(cmd->fullname, name) == 0;
}

static int
is_sub_command(const struct command *cmd)
{
    return is_named(cmd, "subscribe") || is_named(cmd, "psubscribe") ||
           is_named(cmd, "unsubscribe") || is_named(cmd, "punsubscribe") ||
           is_named(cmd, "ssubscribe") || is_named(cmd, "sunsubscribe");
}

int
pubsub_intercepts(const struct client *c, const struct command *cmd)
{
    if (c->ps != NULL && c->ps->active)
        return !is_named(cmd, "quit");
    return is_sub_command(cmd);
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
    buf_add_array(&b, 3);
    buf_add_bulk(&b, v->elems[0].str, v->elems[0].len);
    if (v->elems[1].str != NULL)
        buf_add_bulk(&b, v->elems[1].str, v->elems[1].len);
    else
        buf_add_nil(&b);
    buf_add_int(&b, total);
    client_push(c, b.data, b.len);
    buf_deinit(&b);
}

static int
elem_is(const struct resp_value *e, const char *s)
{
    return e->type == '$' && e->str != NULL && sp_strcaseeq(e->str, e->len, s);
}

/* Everything a push-mode connection sends. */
static void
pubsub_on_push(struct server *s, const char *data, size_t len, char type)
{
    struct client *c = s->push_ctx;
    struct pubsub *ps = c->ps;
    struct resp_value *v = NULL;

    if (type != '*' || resp_value_parse(data, len, &v) <= 0 ||
        v->nelems != 3 || v->elems[0].type != '$' ||
        v->elems[2].type != ':') {
        /* A message, a pmessage, a pong: as is. */
        if (v != NULL)
            resp_value_free(v);
        client_push(c, data, len);
        return;
    }
    const struct resp_value *kind = &v->elems[0];
    long long count = v->elems[2].integer;
    if (elem_is(kind, "ssubscribe") || elem_is(kind, "sunsubscribe")) {
        struct shard_sub *sh = shard_of(ps, s);
        if (sh != NULL)
            sh->count = count;
        push_rewritten(c, v, shard_total(ps));
    } else {
        if (s == ps->conn && (elem_is(kind, "subscribe") ||
                              elem_is(kind, "unsubscribe") ||
                              elem_is(kind, "psubscribe") ||
                              elem_is(kind, "punsubscribe")))
            ps->count = count;
        client_push(c, data, len);
    }
    resp_value_free(v);
    if (ps->count == 0 && shard_total(ps) == 0)
        pubsub_leave(ps);
}

/* The connection carrying subscriptions dropped: the client cannot know
 * what it missed, so it is disconnected (it reconnects and subscribes
 * again, as it would after a server restart). */
static void
pubsub_on_lost(struct server *s)
{
    struct client *c = s->push_ctx;
    client_close(c, "pub/sub backend connection lost");
}

static struct pubsub *
pubsub_get(struct client *c)
{
    if (c->ps == NULL)
        c->ps = sp_calloc(1, sizeof(*c->ps));
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
    struct server *s = pin_get(c->w, &c->pins, n->host, n->port);
    if (s == NULL)
        request_fail(r, "ERR slotproxy: too many pinned connections "
                        "(clients.max_pinned)");
    return s;
}

/* Send r's bytes on s and complete r with an empty reply: what the server
 * answers arrives as pushes. */
static void
send_on(struct client *c, struct server *s, struct request *r,
        const struct resp_req *p, const char *base)
{
    client_encode_request(&r->req, p, base);
    r->no_deadline = 1;
    server_send(s, r);
    if (!r->done)
        request_complete(r);
}

/* Local confirmation when nothing is subscribed: [kind, channel|nil, n]. */
static void
reply_unsub_none(struct request *r, const char *kind,
                 const struct resp_req *p, const char *base, long long n)
{
    uint32_t nch = p->argc > 1 ? p->argc - 1 : 1;
    for (uint32_t i = 0; i < nch; i++) {
        buf_add_array(&r->rep, 3);
        buf_add_bulk_str(&r->rep, kind);
        if (p->argc > 1)
            buf_add_bulk(&r->rep, base + p->argv[i + 1].off,
                         p->argv[i + 1].len);
        else
            buf_add_nil(&r->rep);
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
    if (client_keys_slot(cmd, p, base, &slot) < 0) {
        request_fail(r, "CROSSSLOT Keys in request don't hash to the same "
                        "slot");
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
        ps->shards[ps->nshards].srv = s;
        ps->shards[ps->nshards++].count = 0;
    }
    set_push_mode(c, s);
    ps->active = 1;
    send_on(c, s, r, p, base);
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
        /* From every shard: each confirms its own channels. */
        for (uint32_t i = 0; i + 1 < ps->nshards; i++) {
            struct request *extra = request_new(c->w);
            client_encode_request(&extra->req, p, base);
            server_send(ps->shards[i].srv, extra);
            request_put(extra);
        }
        send_on(c, ps->shards[ps->nshards - 1].srv, r, p, base);
        return;
    }
    uint16_t slot;
    if (client_keys_slot(cmd, p, base, &slot) < 0) {
        request_fail(r, "CROSSSLOT Keys in request don't hash to the same "
                        "slot");
        return;
    }
    r->keyed = 1;
    r->slot = slot;
    int node = router_node(c->w, r);
    if (node < 0)
        return;
    const struct sm_node *n = &c->w->map->nodes[node];
    for (uint32_t i = 0; i < ps->nshards; i++) {
        struct server *s = ps->shards[i].srv;
        if (s->port == n->port && strcmp(s->host, n->host) == 0) {
            send_on(c, s, r, p, base);
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

    if (is_named(cmd, "subscribe") || is_named(cmd, "psubscribe")) {
        ps = pubsub_get(c);
        if (ps->conn == NULL) {
            r->keyed = 0;
            ps->conn = pubsub_server(c, r);
            if (ps->conn == NULL)
                return;
            set_push_mode(c, ps->conn);
        }
        ps->active = 1;
        send_on(c, ps->conn, r, p, base);
    } else if (is_named(cmd, "unsubscribe") ||
               is_named(cmd, "punsubscribe")) {
        if (ps == NULL || ps->conn == NULL)
            reply_unsub_none(r, cmd->name, p, base, 0);
        else
            send_on(c, ps->conn, r, p, base);
    } else if (is_named(cmd, "ssubscribe")) {
        pubsub_ssubscribe(c, r, cmd, p, base);
    } else if (is_named(cmd, "sunsubscribe")) {
        pubsub_sunsubscribe(c, r, cmd, p, base);
    } else if (is_named(cmd, "ping")) {
        /* RESP2 subscribed-mode PING: ["pong", message or ""]. */
        buf_add_array(&r->rep, 2);
        buf_add_bulk_str(&r->rep, "pong");
        if (p->argc > 1)
            buf_add_bulk(&r->rep, base + p->argv[1].off, p->argv[1].len);
        else
            buf_add_bulk_str(&r->rep, "");
        request_complete(r);
    } else if (is_named(cmd, "reset")) {
        /* Closing the push connections drops every subscription. */
        pin_release_all(c->w, &c->pins);
        pubsub_free(c);
        request_finish(r, "+RESET\r\n", 8);
    } else {
        snprintf(msg, sizeof(msg), "ERR Can't execute '%s': only (P|S)"
                 "SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                 "allowed in this context", cmd->fullname);
        request_fail(r, msg);
    }
}

void
pubsub_free(struct client *c)
{
    if (c->ps == NULL)
        return;
    sp_free(c->ps->shards);
    sp_free(c->ps);
    c->ps = NULL;
}
