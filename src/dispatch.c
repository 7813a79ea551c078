/* slotproxy - BSD-2-Clause
 *
 * Command policy: what happens to a request the client connection parsed,
 * decided from its command table entry (route, handler, permission bits)
 * and never from its name. In order: unknown command or subcommand and
 * arity (Redis's texts), authentication and role, disabled_commands,
 * the transaction and pub/sub modes (their modules take the request),
 * then the route: answered by the proxy (admin.c), refused, fanned out
 * (fanout.c), blocking on a dedicated connection, or routed by its keys'
 * slot (router.c). Also RESET, which resets every feature of the
 * connection, and the reload re-check of every client's credentials.
 *
 * The client connection (client.c, below this module) gets these through
 * struct client_ops: it knows no command policy.
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "alloc.h"
#include "auth.h"
#include "client.h"
#include "cmdtable.h"
#include "command.h"
#include "config.h"
#include "dispatch.h"
#include "errors.h"
#include "fanout.h"
#include "hotkeys.h"
#include "keyslot.h"
#include "pin.h"
#include "pubsub.h"
#include "router.h"
#include "txn.h"
#include "worker.h"

static void
set_bytes(struct request *r, const struct resp_req *p, const char *base)
{
    resp_req_encode(&r->req, p, base);
}

/*
 * The request's bytes for the server: with expiry_jitter on, a relative
 * TTL of at least min_ttl lengthened (worker_jitter_encode), else p
 * re-encoded as it came. Only keyed single-slot requests get here: every
 * command that sets a TTL is one. The test of the option stays here,
 * inline: the common path pays one compare.
 */
static void
set_bytes_jittered(struct worker *w, struct request *r,
                   const struct command *cmd, const struct resp_req *p,
                   const char *base)
{
    if (__builtin_expect(w->conf->jitter_percent != 0, 0) &&
        worker_jitter_encode(w, &r->req, cmd, p, base))
        return;
    set_bytes(r, p, base);
}

/*
 * Find the slot of a keyed command. Returns 0 when r is ready to route
 * (r->keyed set if it has keys; keyless or unknowable keys go to any
 * master, which then answers the syntax error itself), 1 when r has been
 * answered or handed to the fanout (CROSSSLOT, or a multi-slot split).
 */
static int
route_keys(struct client *c, struct request *r, const struct command *cmd,
           const struct resp_req *p, const char *base)
{
    int kbuf[16];
    uint16_t sbuf[16];
    int *keys = kbuf;
    uint16_t *slots = sbuf;
    int max = (int)SP_ARRAY_LEN(kbuf);
    int rc = 0, same = 1;

    if (p->argc > SP_ARRAY_LEN(kbuf)) {
        max = (int)p->argc;
        keys = sp_malloc(sizeof(*keys) * p->argc);
        slots = sp_malloc(sizeof(*slots) * p->argc);
    }
    int n = command_get_keys(cmd, p->argc, p->argv, base, keys, max);
    for (int i = 0; i < n; i++) {
        const struct resp_arg *k = &p->argv[keys[i]];
        slots[i] = keyslot(base + k->off, k->len);
        same = same && slots[i] == slots[0];
    }
    /* The sampler first: one decrement and branch when not sampled (a
     * sample that falls on a keyless request is skipped). */
    if (__builtin_expect(hotkeys_should_sample(&c->w->hk_sampler), 0) && n > 0)
        worker_hot_key(c->w, base + p->argv[keys[0]].off, p->argv[keys[0]].len,
                       slots[0]);
    if (n > 0 && same) {
        r->slot = slots[0];
        r->keyed = 1;
    } else if (n > 0 && cmd->route == CMD_ROUTE_SPLIT) {
        fanout_split(c->w, r, cmd, p->argv, p->argc, base, keys, slots, n);
        rc = 1;
    } else if (n > 0) {
        request_error(r, SPE_CROSSSLOT);
        rc = 1;
    }
    if (keys != kbuf) {
        sp_free(keys);
        sp_free(slots);
    }
    return rc;
}

/* Redirects of a pinned request stay on the client's own connections. */
static struct server *
blocking_target(struct request *r, const char *host, uint16_t port)
{
    struct client *c = r->client;
    if (c == NULL) {
        request_error(r, SPE_CLIENT_GONE);
        return NULL;
    }
    struct server *s = pin_get_blocking(r->w, client_pins(c), host, port);
    if (s == NULL)
        request_fail(r, pin_refusal(r->w, client_pins(c)));
    else /* listed as blocked once it reached the server */
        pin_block_probe(r->w, client_pins(c), s, c->id);
    return s;
}

/*
 * Commands that need a dedicated connection. Returns 0 when r should be
 * routed normally (XREAD without BLOCK), 1 when it was handled: sent on
 * the client's pinned connection to the slot's master, or answered.
 */
static int
dispatch_blocking(struct client *c, struct request *r,
                  const struct command *cmd, const struct resp_req *p,
                  const char *base)
{
    long long tmo;
    const char *err;
    int blocks =
        command_block_timeout(cmd, p->argc, p->argv, base, &tmo, &err);
    if (blocks == CMD_BLOCK_NO)
        return 0;
    uint16_t slot;
    int k = command_keys_slot(cmd, p, base, &slot);
    if (k < 0) {
        request_error(r, SPE_CROSSSLOT);
        return 1;
    }
    if (blocks == CMD_BLOCK_BAD) {
        /* Redis would refuse it before blocking: answer here, without
         * pinning a connection for it. */
        request_fail(r, err);
        return 1;
    }
    r->keyed = k > 0;
    r->slot = slot;
    /* The proxy's request timeout must not cut a longer block short. */
    if (tmo == 0)
        r->no_deadline = 1;
    else
        r->deadline_ms =
            sp_msec_now() + (uint64_t)tmo + c->w->conf->request_timeout_ms;
    r->target = blocking_target;
    set_bytes(r, p, base);
    router_send_via(c->w, r);
    return 1;
}

/* RESET in every mode: MULTI discarded, WATCH ended, blocking pins
 * given back, subscriptions dropped, the name cleared, and the client
 * logged out when auth is configured (as Redis's RESET does). */
static void
dispatch_reset(struct client *c)
{
    if (c->ext != NULL) {
        sp_free(c->ext->name);
        c->ext->name = NULL;
    }
    if (auth_configured(c->w->conf))
        client_logout(c);
    txn_reset(c);
    if (c->ext != NULL)
        pin_blocking_done(c->w, &c->ext->pins);
    /* Last: it may complete a request, which may close the client. */
    pubsub_reset(c);
    /* Back to RESP2, as Redis's RESET; its +RESET is RESP2 alike. */
    if (!c->closed)
        client_set_resp3(c, 0);
}

/* The new role of c under the worker's configuration, or -1 when c is
 * no longer authenticated (see dispatch_recheck_auth). */
static int
auth_role(const struct client *c, int *user)
{
    *user = -1;
    if (!auth_configured(c->w->conf))
        return ROLE_ADMIN;
    if (!c->authed)
        return -1;
    return auth_recheck(c->w->conf, c->auth_fp, user);
}

void
dispatch_recheck_auth(struct worker *w)
{
    struct client *c, *next;
    int off = !auth_configured(w->conf);

    for (c = TAILQ_FIRST(&w->clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, next);
        int was = c->authed ? c->role : -1, user;
        int role = auth_role(c, &user);
        if (role < 0 || client_login(c, role, off ? 0 : c->auth_fp, user))
            client_logout(c);
        if (role >= was)
            continue;
        /* Less than before: a queued transaction may hold commands the
         * client may no longer run, subscriptions what it may no longer
         * read. */
        if (txn_in_multi(c) || (role < 0 && c->ps != NULL))
            client_disconnect(c, DISC_AUTH_CHANGED);
    }
}

/* Answer r with a refusal; inside MULTI the transaction then aborts, as
 * with Redis. Always 1. */
static int
refuse(struct client *c, struct request *r, const char *msg)
{
    txn_queue_error(c);
    request_fail(r, msg);
    return 1;
}

/*
 * Authentication and roles, from the permission bits of the command
 * table: before AUTH only CMD_P_BEFORE_AUTH commands run; a role below
 * admin may not run what Redis flags admin (SLOWLOG, CLIENT LIST/KILL:
 * other users' connections and arguments); the read-only role runs only
 * what Redis flags readonly or the table allows it (CMD_P_READ_ROLE). A
 * refusal inside MULTI aborts the transaction, as Redis does. 1 when r
 * was answered with the refusal.
 */
static int
denied(struct client *c, struct request *r, const struct command *cmd)
{
    char msg[200];

    if (!c->authed) {
        if (cmd->flags & CMD_P_BEFORE_AUTH)
            return 0;
        return refuse(c, r, error_text(SPE_NOAUTH));
    }
    if (c->role >= auth_min_role(cmd))
        return 0;
    snprintf(msg, sizeof(msg), ERR_NOPERM_FMT, cmd->fullname);
    return refuse(c, r, msg);
}

/* disabled_commands (top: the top-level command): checked after the
 * role, as Redis checks ACLs after authentication. 1 when refused. */
static int
disabled(struct client *c, struct request *r, const struct command *top)
{
    char msg[200];
    if (!config_command_disabled(c->w->conf, top))
        return 0;
    snprintf(msg, sizeof(msg),
             "ERR slotproxy: %s is disabled by the proxy "
             "configuration",
             top->fullname);
    return refuse(c, r, msg);
}

/*
 * The checks before anything runs: the command and subcommand exist, the
 * arity fits, the user may run it and it is not disabled. 0 with *cmdp
 * set to the entry to run (a subcommand's), 1 when r was answered.
 */
static int
dispatch_check(struct client *c, struct request *r, const struct resp_req *p,
               const char *base, const struct command **cmdp)
{
    const struct command *cmd = *cmdp, *top = cmd;
    const struct resp_arg *argv = p->argv;

    if (cmd == NULL && c->authed && admin_proxy(c, r, p->argc, argv, base))
        return 1;
    if (cmd == NULL) {
        command_err_unknown(&r->rep, p->argc, argv, base);
        txn_queue_error(c);
        request_complete(r);
        return 1;
    }
    if (cmd->nsubcmds > 0 && p->argc >= 2) {
        const struct command *sub =
            command_lookup_sub(cmd, base + argv[1].off, argv[1].len);
        if (sub == NULL) {
            command_err_unknown_sub(&r->rep, argv, base);
            txn_queue_error(c);
            request_complete(r);
            return 1;
        }
        cmd = sub;
    }
    if (!command_arity_ok(cmd, p->argc)) {
        command_err_arity(&r->rep, cmd);
        txn_queue_error(c);
        request_complete(r);
        return 1;
    }
    r->cmd = cmd;
    *cmdp = cmd;
    if ((!c->authed || c->role != ROLE_ADMIN) && denied(c, r, cmd))
        return 1;
    return c->w->conf->ndisabled > 0 && disabled(c, r, top);
}

/* The connection's modes: inside MULTI the transaction queues (or
 * refuses) everything but QUIT and RESET, subscribe commands too (they
 * must not run before EXEC); in subscribed mode only the pub/sub
 * commands run. 1 when a feature took r. Cheap tests first: most
 * commands are in neither mode. */
static int
dispatch_modes(struct client *c, struct request *r, const struct command *cmd,
               const struct resp_req *p, const char *base)
{
    if (c->tx != NULL && txn_in_multi(c) && txn_intercepts(c, cmd)) {
        txn_dispatch(c, r, cmd, p, base);
        if (!c->closed)
            txn_mem_sync(c);
        return 1;
    }
    if ((c->ps != NULL || cmd->route == CMD_ROUTE_PUBSUB) &&
        pubsub_intercepts(c, cmd)) {
        pubsub_dispatch(c, r, cmd, p, base);
        return 1;
    }
    if ((c->tx != NULL || cmd->route == CMD_ROUTE_TXN) &&
        txn_intercepts(c, cmd)) {
        txn_dispatch(c, r, cmd, p, base);
        if (!c->closed)
            txn_mem_sync(c);
        return 1;
    }
    return 0;
}

/* Commands the route says the proxy does not forward: answered by it
 * (admin.c; RESET here, as it resets every feature) or refused. */
static void
dispatch_local(struct client *c, struct request *r, const struct command *cmd,
               const struct resp_req *p, const char *base)
{
    if (cmd->op == CMD_OP_RESET) {
        dispatch_reset(c);
        if (!c->closed)
            request_finish(r, "+RESET\r\n", 8);
        return;
    }
    if (cmd->route == CMD_ROUTE_LOCAL) {
        admin_exec(c, r, cmd, p->argc, p->argv, base);
        return;
    }
    command_err_refused(&r->rep, cmd);
    request_complete(r);
}

/* What the route says: to every master, on a dedicated connection for a
 * blocking command, or to the master of the keys' slot (any master when
 * keyless). */
static void
dispatch_route(struct client *c, struct request *r, const struct command *cmd,
               const struct resp_req *p, const char *base)
{
    switch (cmd->route) {
    case CMD_ROUTE_LOCAL:
    case CMD_ROUTE_REFUSED:
        dispatch_local(c, r, cmd, p, base);
        return;
    case CMD_ROUTE_ALL:
        set_bytes(r, p, base);
        fanout_all(c->w, r, cmd, p->argv, p->argc, base);
        return;
    case CMD_ROUTE_BLOCKING:
        if (dispatch_blocking(c, r, cmd, p, base))
            return;
        /* XREAD without BLOCK is a keyed read. */
        __attribute__((fallthrough));
    case CMD_ROUTE_KEYED:
    case CMD_ROUTE_SPLIT:
        if (route_keys(c, r, cmd, p, base) != 0)
            return;
        set_bytes_jittered(c->w, r, cmd, p, base);
        router_dispatch(c->w, r);
        return;
    default:
        if (cmd->op == CMD_OP_PUBLISH && p->argc >= 2) {
            /* One node per channel: a publisher's messages to a channel
             * keep their order (they reach other nodes over the bus). */
            r->keyed = 1;
            r->slot = keyslot(base + p->argv[1].off, p->argv[1].len);
        }
        break;
    }
    set_bytes(r, p, base);
    router_dispatch(c->w, r);
}

/*
 * 1 when a request must run alone, in order with the client's other
 * requests although it travels on another connection: a blocking command
 * (on a pinned connection; later commands must not overtake it), WATCH
 * and everything while a WATCH is active (the WATCH lives on a pinned
 * connection, the client's other commands on shared ones). Such a request
 * is sent only once every earlier request is answered, and nothing after
 * it is sent before it is answered.
 */
static int
dispatch_exclusive(const struct client *c, const struct resp_req *p,
                   const char *base, const struct command *cmd)
{
    if (cmd == NULL)
        return 0;
    if (c->tx != NULL && txn_watching(c))
        return 1;
    if (cmd->route == CMD_ROUTE_PUBSUB)
        /* An unsubscribe's confirmations come before what follows; a
         * sharded subscribe is answered by the proxy once every shard
         * confirmed, from the client's channels as they are then; a RESP3
         * client's subscribe's too (any command may follow). */
        return cmd->op == CMD_OP_SSUBSCRIBE || c->resp3 ||
               (c->ps != NULL && (cmd->op == CMD_OP_UNSUBSCRIBE ||
                                  cmd->op == CMD_OP_PUNSUBSCRIBE ||
                                  cmd->op == CMD_OP_SUNSUBSCRIBE));
    if (cmd->op == CMD_OP_WATCH)
        return 1;
    if (cmd->route != CMD_ROUTE_BLOCKING)
        return 0;
    /* The same decision dispatch_blocking acts on: a request that blocks on
     * the server must never share a connection. */
    long long tmo;
    const char *err;
    if (command_arity_ok(cmd, p->argc) &&
        command_block_timeout(cmd, p->argc, p->argv, base, &tmo, &err) ==
            CMD_BLOCK_YES)
        return !(c->tx != NULL && txn_in_multi(c));
    return 0;
}

/* The client's dispatch hook: the checks, the modes, then routing. cmd:
 * the table entry for argv[0] (looked up once by the caller), or NULL
 * when unknown. The request joins the client's pipeline here, unless it
 * must run alone and has to wait for the earlier ones. */
static enum client_dispatch
dispatch_request(struct client *c, const struct resp_req *p, const char *base,
                 const struct command *cmd)
{
    struct worker *w = c->w;
    int alone = dispatch_exclusive(c, p, base, cmd);

    if (alone && c->nundone > 0)
        return CLIENT_DISPATCH_WAIT;
    struct request *r = client_new_request(c);
    w->stats.commands++;
    if (cmd != NULL) {
        /* cmd is a top-level entry of w->cmdtab (client_process_input
         * looked it up there): its stat_id is its cmdtable_index. */
        r->cmd_index = cmd->stat_id;
        w->cmd_calls[r->cmd_index]++;
    }
    if (!dispatch_check(c, r, p, base, &cmd)) {
        /* Big requests (monitor.big_request_bytes): one compare for the
         * others; any mode (a SET queued in MULTI is as big). */
        if (__builtin_expect(p->len > w->big_request_gate, 0))
            worker_big_request(w, r, cmd, p, base);
        if (!dispatch_modes(c, r, cmd, p, base))
            dispatch_route(c, r, cmd, p, base);
    }
    return alone ? CLIENT_DISPATCHED_ALONE : CLIENT_DISPATCHED;
}

/* The features' state of a client, freed with it (end of the turn). */
static void
dispatch_free_state(struct client *c)
{
    txn_free(c);
    pubsub_free(c);
}

const struct client_ops dispatch_client_ops = {
    .dispatch = dispatch_request,
    .free_state = dispatch_free_state,
    .tick = pubsub_tick,
};
