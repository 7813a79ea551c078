/* slotproxy - BSD-2-Clause
 *
 * Transactions. The queue lives in the proxy; nothing reaches a backend
 * before EXEC, so a transaction that fails while queuing never runs, and a
 * block that comes back EXECABORT because its slot moved (MOVED/ASK on the
 * queued commands) ran nothing and is re-sent whole to the new owner
 * (ASKING first for ASK), within the redirect budget. Under WATCH the
 * block cannot move (the watched state stays behind on the old node), so
 * the client gets EXECABORT with the reason instead. A redirect never
 * reaches the client and a transaction is never split.
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "backend.h"
#include "client.h"
#include "command.h"
#include "config.h"
#include "errors.h"
#include "hotkeys.h"
#include "pin.h"
#include "request.h"
#include "router.h"
#include "slotmap.h"
#include "txn.h"
#include "worker.h"

static const char multi_cmd[] = "*1\r\n$5\r\nMULTI\r\n";
static const char exec_cmd[] = "*1\r\n$4\r\nEXEC\r\n";
static const char unwatch_cmd[] = "*1\r\n$7\r\nUNWATCH\r\n";

struct txn {
    uint8_t in_multi;               /* between MULTI and EXEC/DISCARD */
    uint8_t dirty;                  /* a queuing error: EXEC aborts */
    uint8_t has_slot;               /* slot below is fixed */
    uint8_t watching;               /* WATCH state on watch_srv */
    uint8_t watch_ok;               /* a WATCH was confirmed there */
    uint8_t watch_lost;             /* watch_srv's connection dropped (or
                                     * the WATCH moved) after a WATCH was
                                     * confirmed: EXEC must abort */
    uint16_t slot;                  /* the transaction's slot */
    uint32_t ncmds;                 /* commands queued */
    struct buf cmds;                /* their RESP bytes */
    size_t charged;                 /* cmds' storage as charged to the
                                     * client's memory budget */
    struct server *watch_srv;       /* pinned server holding the WATCH
                                     * (a PIN_TXN pin: released only here) */
};

int
txn_intercepts(const struct client *c, const struct command *cmd)
{
    if (c->tx != NULL && c->tx->in_multi)
        return cmd->op != CMD_OP_QUIT && cmd->op != CMD_OP_RESET;
    return cmd->route == CMD_ROUTE_TXN;
}

static struct txn *
txn_get(struct client *c)
{
    if (c->tx == NULL)
        c->tx = sp_calloc(1, sizeof(*c->tx));
    return c->tx;
}

static void
txn_reset_queue(struct txn *t)
{
    t->in_multi = 0;
    t->dirty = 0;
    t->ncmds = 0;
    buf_deinit(&t->cmds);
    /* A WATCH fixes the slot beyond the transaction. */
    t->has_slot = t->watching;
}

int
txn_watching(const struct client *c)
{
    return c->tx != NULL && c->tx->watching;
}

void
txn_release_idle(struct client *c)
{
    if (c->tx == NULL || c->tx->watching || c->tx->in_multi)
        return;
    pin_release_user(c->w, client_pins(c), PIN_TXN);
    c->tx->watch_srv = NULL;
}

int
txn_in_multi(const struct client *c)
{
    return c->tx != NULL && c->tx->in_multi;
}

void
txn_queue_error(struct client *c)
{
    if (c->tx != NULL && c->tx->in_multi)
        c->tx->dirty = 1;
}

void
txn_mem_sync(struct client *c)
{
    struct txn *t = c->tx;
    if (t != NULL && t->cmds.cap != t->charged) {
        client_mem_add(c, (int64_t)t->cmds.cap - (int64_t)t->charged);
        t->charged = t->cmds.cap;
    }
}

void
txn_free(struct client *c)
{
    if (c->tx == NULL)
        return;
    buf_deinit(&c->tx->cmds);
    sp_free(c->tx);
    c->tx = NULL;
}

/* No WATCH any more: the state only, the pinned connection stays. */
static void
txn_watch_end(struct txn *t)
{
    t->watching = 0;
    t->watch_ok = 0;
    t->watch_lost = 0;
}

void
txn_reset(struct client *c)
{
    if (c->tx == NULL)
        return;
    /* Closing the connections ends the WATCH on the server. */
    pin_release_user(c->w, client_pins(c), PIN_TXN);
    c->tx->watch_srv = NULL;
    txn_watch_end(c->tx);
    txn_reset_queue(c->tx);
    txn_mem_sync(c);
}


static void
reply_raw(struct request *r, const char *s)
{
    request_finish(r, s, strlen(s));
}

/* Fire-and-forget UNWATCH on the pinned connection (its reply is dropped). */
static void
txn_send_unwatch(struct client *c)
{
    struct request *u = request_new(&c->w->reqs);
    buf_append(&u->req, unwatch_cmd, sizeof(unwatch_cmd) - 1);
    u->deadline_ms = sp_msec_now() + c->w->conf->request_timeout_ms;
    struct server *s = c->tx->watch_srv;
    txn_watch_end(c->tx);
    /* u is internal: no completion reaches the client. */
    backend_send(s, u);
    request_put(u);
}

/* Queuing p would pass clients.max_multi_commands or max_multi_size:
 * bounded like any buffer, the command is refused, the queue dropped,
 * and EXEC answers EXECABORT (as Redis does when a queued command hits
 * maxmemory). 1 when refused. */
static int
txn_too_large(struct client *c, struct request *r, const struct resp_req *p)
{
    struct txn *t = c->tx;
    const struct config *conf = c->w->conf;
    char msg[200];

    if (t->ncmds < conf->max_multi_commands &&
        t->cmds.len + (size_t)p->len <= conf->max_multi_size)
        return 0;
    snprintf(msg, sizeof(msg), "ERR slotproxy: transaction too large "
             "(clients.max_multi_size %llu bytes, "
             "clients.max_multi_commands %u)",
             (unsigned long long)conf->max_multi_size,
             conf->max_multi_commands);
    request_fail(r, msg);
    t->dirty = 1;
    buf_deinit(&t->cmds);
    return 1;
}

/* A keyed command queued (keyed: it has keys, all in slot): fed to the
 * hot-key sampler like a request sent alone. */
static void
txn_observe(struct worker *w, const struct command *cmd,
            const struct resp_req *p, const char *base, uint16_t slot,
            int keyed)
{
    int key = 0;
    if (__builtin_expect(!hotkeys_should_sample(&w->hk_sampler), 1) ||
        !keyed || command_get_keys(cmd, p->argc, p->argv, base, &key, 1) <= 0)
        return;
    worker_hot_key(w, base + p->argv[key].off, p->argv[key].len, slot);
}

/* Queue one command after MULTI, or reject it (flagging the transaction)
 * when it cannot run inside one transaction on one node. */
static void
txn_queue(struct client *c, struct request *r, const struct command *cmd,
          const struct resp_req *p, const char *base)
{
    struct txn *t = c->tx;
    char msg[200];
    int route = cmd->route;

    if (route == CMD_ROUTE_REFUSED) {
        t->dirty = 1;
        command_err_refused(&r->rep, cmd);
        request_complete(r);
        return;
    }
    /* Redis answers PING and ECHO inside EXEC's array; a blocking command
     * inside MULTI does not block. Anything else that is not a plain data
     * command has no meaning inside a transaction on one node. */
    int ok = route == CMD_ROUTE_KEYED || route == CMD_ROUTE_SPLIT ||
             route == CMD_ROUTE_ANY || cmd->op == CMD_OP_PING ||
             cmd->op == CMD_OP_ECHO || cmd->op == CMD_OP_UNWATCH ||
             route == CMD_ROUTE_BLOCKING;
    if (!ok || (cmd->flags & CMD_F_PUBSUB)) {
        snprintf(msg, sizeof(msg), "ERR slotproxy: '%s' cannot be used "
                 "inside MULTI through the proxy", cmd->fullname);
        t->dirty = 1;
        request_fail(r, msg);
        return;
    }
    uint16_t slot;
    int k = command_keys_slot(cmd, p, base, &slot);
    if (k < 0 || (k > 0 && t->has_slot && slot != t->slot)) {
        t->dirty = 1;
        request_error(r, SPE_CROSSSLOT);
        return;
    }
    if (k > 0 && !t->has_slot) {
        t->has_slot = 1;
        t->slot = slot;
    }
    if (t->dirty) {
        /* EXEC can only abort now: nothing more needs keeping. */
        reply_raw(r, "+QUEUED\r\n");
        return;
    }
    if (txn_too_large(c, r, p))
        return;
    txn_observe(c->w, cmd, p, base, k > 0 ? slot : 0, k > 0);
    /* Queued like any keyed request: with the expiry jitter. */
    if (__builtin_expect(c->w->conf->jitter_percent == 0, 1) ||
        !worker_jitter_encode(c->w, &t->cmds, cmd, p, base))
        resp_req_encode(&t->cmds, p, base);
    t->ncmds++;
    reply_raw(r, "+QUEUED\r\n");
}

/* Remember the first error among the replies to MULTI and the queued
 * commands: it says why EXEC will abort. */
static void
txn_on_partial(struct request *r, const char *data, size_t len, char type)
{
    if (type == '-' && buf_unread(&r->rep) == 0)
        buf_append(&r->rep, data, len);
}

/* The stashed error (text without '-' and CRLF) in *len, or NULL. */
static const char *
stashed_redirect(const struct request *r, size_t *len)
{
    size_t n = buf_unread(&r->rep);
    if (n < 8)
        return NULL;
    *len = n - 3;
    return r->rep.data + r->rep.pos + 1;
}

/* EXEC's own reply: the transaction's result, unless the block must be
 * re-sent because its slot moved (router_follow: only to a member). */
static void
txn_on_reply(struct request *r, const char *data, size_t len, char type)
{
    struct server *from = r->conn != NULL ? r->conn->srv : NULL;
    struct router_redirect rd;
    size_t n;
    const char *e = type == '-' && from != NULL ? stashed_redirect(r, &n)
                                                : NULL;

    if (e != NULL && router_parse_redirect(e, n, &rd) == 0) {
        if (from->private_conn) {
            request_error(r, SPE_EXECABORT_MOVED);
            return;
        }
        if (router_follow(r, from, e, n, data, len) == 0)
            return;
    }
    request_finish(r, data, len);
}

/*
 * State first, reply last: completing r may close the client (its output
 * limit), after which nothing of c may be used. The same order holds in
 * every function of this file that answers the client.
 */
static void
txn_exec(struct client *c, struct request *r)
{
    struct txn *t = c->tx;

    if (t == NULL || !t->in_multi) {
        request_error(r, SPE_EXEC_NO_MULTI);
        return;
    }
    if (t->dirty) {
        if (t->watching)
            txn_send_unwatch(c);
        txn_reset_queue(t);
        request_error(r, SPE_EXECABORT);
        return;
    }
    if (t->watching && t->watch_lost) {
        /* The WATCH died with its connection: abort as if a watched key
         * had changed (the client retries), never run unwatched. */
        txn_watch_end(t);
        txn_reset_queue(t);
        reply_raw(r, request_resp3(r) ? "_\r\n" : "*-1\r\n");
        return;
    }
    buf_append(&r->req, multi_cmd, sizeof(multi_cmd) - 1);
    buf_append(&r->req, t->cmds.data, t->cmds.len);
    buf_append(&r->req, exec_cmd, sizeof(exec_cmd) - 1);
    r->replies = t->ncmds + 2;
    r->on_partial = txn_on_partial;
    r->on_reply = txn_on_reply;
    r->keyed = t->has_slot;
    r->slot = t->slot;
    r->deadline_ms = sp_msec_now() + c->w->conf->request_timeout_ms;
    struct server *s = t->watching ? t->watch_srv : NULL;
    /* EXEC ends the WATCH; the pinned connection stays for reuse. */
    txn_watch_end(t);
    txn_reset_queue(t);
    if (s == NULL)
        s = router_server(c->w, r);
    if (s != NULL)
        backend_send(s, r);
}

static void
txn_discard(struct client *c, struct request *r)
{
    struct txn *t = c->tx;
    if (t == NULL || !t->in_multi) {
        request_error(r, SPE_DISCARD_NO_MULTI);
        return;
    }
    if (t->watching)
        txn_send_unwatch(c);
    txn_reset_queue(t);
    reply_raw(r, "+OK\r\n");
}

/* A WATCH failed: nothing is watched when none was confirmed before;
 * otherwise the keys watched before may be gone with it (connection
 * lost, WATCH moved), and EXEC must abort. */
static void
txn_watch_failed(struct txn *t)
{
    if (t->watch_ok) {
        t->watch_lost = 1;
        return;
    }
    t->watching = 0;
    if (!t->in_multi)
        t->has_slot = 0;
}

/* The WATCH connection dropped: the server forgot what it watched. */
static void
txn_on_lost(struct server *s)
{
    struct client *c = s->push_ctx;
    struct txn *t = c != NULL ? c->tx : NULL;
    if (t != NULL && t->watching && t->watch_srv == s)
        txn_watch_failed(t);
}

/* The client's PIN_TXN connection to host:port, told when it drops. */
static struct server *
txn_pin(struct client *c, const char *host, uint16_t port)
{
    struct server *s = pin_get(c->w, client_pins(c), host, port, PIN_TXN);
    if (s != NULL) {
        s->on_push_lost = txn_on_lost;
        s->push_ctx = c;
    }
    return s;
}

/* Where a redirected WATCH goes: the client's PIN_TXN connection to the
 * new owner, which then holds the WATCH (the old one is released: what it
 * watched stays behind there, so EXEC aborts if anything was). */
static struct server *
txn_watch_target(struct request *r, const char *host, uint16_t port)
{
    struct client *c = r->client;
    struct txn *t = c != NULL ? c->tx : NULL;
    if (t == NULL || !t->watching) {
        request_error(r, SPE_CLIENT_GONE);
        return NULL;
    }
    struct server *to = txn_pin(c, host, port);
    if (to == NULL) {
        txn_watch_failed(t);
        request_fail(r, pin_refusal(r->w, client_pins(c)));
        return NULL;
    }
    struct server *old = t->watch_srv;
    if (old != to) {
        if (t->watch_ok)
            t->watch_lost = 1;
        t->watch_srv = to;
        pin_release(r->w, client_pins(c), old);
    }
    return to;
}

/* WATCH's reply: a MOVED moves the WATCH to the new owner's pinned
 * connection (router_follow: only to a member). An ASK is not followed:
 * EXEC would need ASKING too. */
static void
txn_watch_reply(struct request *r, const char *data, size_t len, char type)
{
    struct client *c = r->client;
    struct txn *t = c != NULL ? c->tx : NULL;
    struct server *from = r->conn != NULL ? r->conn->srv : NULL;
    struct router_redirect rd;
    size_t n;

    r->rep.pos = r->rep.len = 0;
    if (type == '-' && len < 300)
        buf_append(&r->rep, data, len);
    const char *e = type == '-' && from != NULL ? stashed_redirect(r, &n)
                                                : NULL;
    if (t != NULL && t->watching && from != NULL && from == t->watch_srv &&
        e != NULL && router_parse_redirect(e, n, &rd) == 0 && !rd.ask) {
        r->target = txn_watch_target;
        if (router_follow(r, from, e, n, data, len) == 0)
            return;
    }
    if (t != NULL && t->watching && from == t->watch_srv) {
        if (type == '-')
            txn_watch_failed(t);
        else
            t->watch_ok = 1;
    }
    request_finish(r, data, len);
}

static void
txn_watch(struct client *c, struct request *r, const struct command *cmd,
          const struct resp_req *p, const char *base)
{
    struct txn *t = txn_get(c);
    uint16_t slot;

    if (t->in_multi) {
        request_error(r, SPE_WATCH_IN_MULTI);
        return;
    }
    int k = command_keys_slot(cmd, p, base, &slot);
    if (k < 0 || (t->watching && slot != t->slot)) {
        request_error(r, SPE_CROSSSLOT);
        return;
    }
    r->keyed = 1;
    r->slot = slot;
    int node = router_node(c->w, r);
    if (node < 0)
        return;
    const struct sm_node *n = &c->w->map->nodes[node];
    struct server *s = t->watching ? t->watch_srv
                                   : txn_pin(c, n->host, n->port);
    if (s == NULL) {
        request_fail(r, pin_refusal(c->w, client_pins(c)));
        return;
    }
    if (!t->watching)
        txn_watch_end(t); /* a fresh WATCH: nothing confirmed, nothing lost */
    t->watching = 1;
    t->watch_srv = s;
    t->slot = slot;
    t->has_slot = 1;
    resp_req_encode(&r->req, p, base);
    r->on_reply = txn_watch_reply;
    r->deadline_ms = sp_msec_now() + c->w->conf->request_timeout_ms;
    /* A send that fails at once completes r (maybe closing c): hold r. */
    request_get(r);
    backend_send(s, r);
    if (r->done && !c->closed && t->watch_srv == s)
        txn_watch_failed(t);
    request_put(r);
}

static void
txn_unwatch(struct client *c, struct request *r)
{
    struct txn *t = c->tx;
    if (t != NULL && t->watching && !t->watch_lost) {
        /* UNWATCH's +OK from the pinned connection is the reply. */
        struct server *s = t->watch_srv;
        txn_watch_end(t);
        t->has_slot = t->in_multi && t->has_slot;
        buf_append(&r->req, unwatch_cmd, sizeof(unwatch_cmd) - 1);
        r->deadline_ms = sp_msec_now() + c->w->conf->request_timeout_ms;
        backend_send(s, r);
        return;
    }
    if (t != NULL) {
        txn_watch_end(t);
        t->has_slot = t->in_multi && t->has_slot;
    }
    reply_raw(r, "+OK\r\n");
}

void
txn_dispatch(struct client *c, struct request *r, const struct command *cmd,
             const struct resp_req *p, const char *base)
{
    struct txn *t = c->tx;

    if (t != NULL && t->in_multi && cmd->op != CMD_OP_EXEC &&
        cmd->op != CMD_OP_DISCARD && cmd->op != CMD_OP_MULTI &&
        cmd->op != CMD_OP_WATCH) {
        txn_queue(c, r, cmd, p, base); /* UNWATCH too: Redis queues it */
        return;
    }
    switch (cmd->op) {
    case CMD_OP_EXEC:
        txn_exec(c, r);
        break;
    case CMD_OP_DISCARD:
        txn_discard(c, r);
        break;
    case CMD_OP_MULTI:
        t = txn_get(c);
        if (t->in_multi) {
            request_error(r, SPE_MULTI_NESTED);
            return;
        }
        t->in_multi = 1;
        reply_raw(r, "+OK\r\n");
        break;
    case CMD_OP_WATCH:
        txn_watch(c, r, cmd, p, base);
        break;
    case CMD_OP_UNWATCH:
        txn_unwatch(c, r);
        break;
    default:
        txn_queue(c, r, cmd, p, base);
        break;
    }
}
