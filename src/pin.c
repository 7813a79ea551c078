/* slotproxy - BSD-2-Clause
 *
 * Pinned connections. Each is a private server object (one connection,
 * not in the worker's shared list), registered in the worker's list of
 * live pins for the timeout sweep and the per-worker cap. A blocking
 * command's pin goes back, once the command returned, to the worker's
 * pool of idle ones (PIN_POOL_MAX, oldest closed first): a connection
 * whose only command got its whole reply carries no state, so the next
 * blocking command of any client can use it without a new connect and
 * AUTH, and a client that only blocked now and then holds no pin.
 */
#include "build_config.h"

#include <string.h>

#include "alloc.h"
#include "backend.h"
#include "config.h"
#include "pin.h"
#include "request.h"
#include "slotmap.h"
#include "worker.h"

/* Idle blocking pins a worker keeps for reuse. */
#define PIN_POOL_MAX 8

static void
list_add(struct server ***arr, uint32_t *n, uint32_t *cap, struct server *s)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = sp_realloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = s;
}

static void
list_remove(struct server **arr, uint32_t *n, struct server *s)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i] == s) {
            arr[i] = arr[--*n];
            return;
        }
    }
}

/* Append s to a client's array of blocking pins (sized exactly, as it
 * stays small). */
static void
set_add(struct server ***arr, uint32_t *n, struct server *s)
{
    *arr = sp_realloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[(*n)++] = s;
}

static int
same_node(const struct server *s, const char *host, uint16_t port)
{
    return s->port == port && strcmp(s->host, host) == 0;
}

/* The per-client cap: configured, or (0) one per master plus two (a
 * WATCH and a blocking command), what a client can use at most. */
static uint32_t
per_client_cap(const struct worker *w)
{
    uint32_t cap = w->conf->max_pinned_per_client;
    return cap != 0 ? cap : w->map->nmasters + 2;
}

static int
client_full(const struct worker *w, const struct pinset *ps)
{
    return ps->n + ps->nblk >= per_client_cap(w);
}

/* 1 when one more pin to host:port fits every cap; else 0, the refusal
 * counted by the cap reached (the order pin_refusal names it in). */
static int
pin_room(struct worker *w, const struct pinset *ps, const char *host,
         uint16_t port)
{
    enum pin_limit full = PIN_LIMIT_COUNT;
    if (client_full(w, ps))
        full = PIN_LIMIT_CLIENT;
    else if (w->npins >= w->conf->max_pinned)
        full = PIN_LIMIT_TOTAL;
    else if (w->conf->max_pinned_per_node > 0) {
        /* Per node too, so one busy shard cannot take every pin. */
        uint32_t on_node = 0;
        for (uint32_t i = 0; i < w->npins; i++)
            on_node += same_node(w->pins[i], host, port);
        if (on_node >= w->conf->max_pinned_per_node)
            full = PIN_LIMIT_NODE;
    }
    if (full == PIN_LIMIT_COUNT)
        return 1;
    w->stats.pin_refused[full]++;
    return 0;
}

const char *
pin_refusal(const struct worker *w, const struct pinset *ps)
{
    if (client_full(w, ps))
        return "ERR slotproxy: too many pinned connections for this client "
               "(clients.max_pinned_per_client)";
    if (w->npins >= w->conf->max_pinned)
        return "ERR slotproxy: too many pinned connections "
               "(clients.max_pinned)";
    return "ERR slotproxy: too many pinned connections to this node "
           "(clients.max_pinned_per_node)";
}

struct server *
pin_get(struct worker *w, struct pinset *ps, const char *host, uint16_t port,
        enum pin_user user)
{
    for (uint32_t i = 0; i < ps->n; i++) {
        struct server *s = ps->v[i].srv;
        if (ps->v[i].user == user && same_node(s, host, port) &&
            s->cred == ps->cred)
            return s;
    }
    if (!pin_room(w, ps, host, port))
        return NULL;
    struct server *s = backend_new_private(w, host, port);
    s->cred = ps->cred;
    ps->v = sp_realloc(ps->v, (ps->n + 1) * sizeof(*ps->v));
    ps->v[ps->n].srv = s;
    ps->v[ps->n++].user = (uint8_t)user;
    list_add(&w->pins, &w->npins, &w->pins_cap, s);
    return s;
}

/* What a released connection still receives unsolicited goes nowhere. */
static void
pin_drop_push(struct server *s, const char *data, size_t len, char type)
{
    (void)s;
    (void)data;
    (void)len;
    (void)type;
}

/* Move s to the worker's dead list (freed at the end of the turn: we may
 * be inside one of its callbacks), cut from its user's hooks, so nothing
 * it still receives reaches a client or feature state being reset. */
static void
pin_kill(struct worker *w, struct server *s)
{
    s->on_push = pin_drop_push;
    s->on_push_lost = NULL;
    s->push_ctx = NULL;
    list_add(&w->dead_pins, &w->ndead_pins, &w->dead_pins_cap, s);
    worker_schedule_flush(w);
}

/* Keep an idle, connected blocking pin for reuse; the pool's oldest
 * makes room. */
static void
pool_put(struct worker *w, struct server *s)
{
    if (s->down || s->conns[0].state != BCONN_CONNECTED) {
        pin_kill(w, s);
        return;
    }
    if (w->pin_pool == NULL)
        w->pin_pool = sp_calloc(PIN_POOL_MAX, sizeof(*w->pin_pool));
    if (w->npin_pool == PIN_POOL_MAX) {
        pin_kill(w, w->pin_pool[0]);
        memmove(w->pin_pool, w->pin_pool + 1,
                (PIN_POOL_MAX - 1) * sizeof(*w->pin_pool));
        w->npin_pool--;
    }
    w->pin_pool[w->npin_pool++] = s;
}

/* The newest pooled pin to host:port authenticated with cred (a pin
 * never changes user) still connected, or NULL. */
static struct server *
pool_take(struct worker *w, const char *host, uint16_t port, uint16_t cred)
{
    for (uint32_t i = w->npin_pool; i > 0; i--) {
        struct server *s = w->pin_pool[i - 1];
        if (!same_node(s, host, port) || s->cred != cred)
            continue;
        memmove(w->pin_pool + i - 1, w->pin_pool + i,
                (w->npin_pool - i) * sizeof(*w->pin_pool));
        w->npin_pool--;
        if (s->conns[0].state == BCONN_CONNECTED && !s->down)
            return s;
        pin_kill(w, s); /* dropped while idle */
        return NULL;
    }
    return NULL;
}

/*
 * Blocked clients. A blocking command travels on the client's pinned
 * connection; just ahead of it, on the same connection, goes a CLIENT ID
 * (the probe). The server reads both in one go and runs the command (it
 * blocks) right after answering the probe, so when the probe's reply is
 * back the client is counted in INFO's blocked_clients, and CLIENT
 * UNBLOCK <its id> becomes CLIENT UNBLOCK <backend id> on that node
 * (admin.c). Other traffic pays nothing: no probe, no lock.
 */
static void
probe_done(struct request *pr)
{
    struct pinset *ps = pr->data;
    const struct buf *b = &pr->rep;
    long long id;

    /* ":<id>\r\n"; an error (the node refused CLIENT ID) leaves the
     * client unlisted and CLIENT UNBLOCK answering 0. */
    if (ps != NULL && ps->probe == pr) {
        ps->probe = NULL;
        if (buf_unread(b) > 3 && b->data[b->pos] == ':' &&
            sp_str2ll(b->data + b->pos + 1, buf_unread(b) - 3, &id) == 0) {
            blocked_set(&pr->w->shared->blocked, ps->client_id,
                        ps->probe_srv->host, ps->probe_srv->port,
                        (uint64_t)id);
            ps->blocked = 1;
        }
    }
}

/* Unlist the client and detach a pending probe: the block is over. */
static void
block_end(struct worker *w, struct pinset *ps)
{
    if (ps->blocked)
        blocked_remove(&w->shared->blocked, ps->client_id);
    ps->blocked = 0;
    if (ps->probe != NULL)
        ps->probe->data = NULL;
    ps->probe = NULL;
    ps->probe_srv = NULL;
}

void
pin_block_probe(struct worker *w, struct pinset *ps, struct server *s,
                uint64_t client_id)
{
    static const char probe[] = "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";

    block_end(w, ps); /* an earlier node's (a redirect) */
    struct request *pr = request_new(&w->reqs);
    buf_append(&pr->req, probe, sizeof(probe) - 1);
    pr->on_done = probe_done;
    pr->data = ps;
    pr->deadline_ms = sp_msec_now() + w->conf->request_timeout_ms;
    ps->probe = pr;
    ps->probe_srv = s;
    ps->client_id = client_id;
    backend_send(s, pr); /* may complete (fail) pr at once */
    /* The connection holds it while it is queued or in flight; ps->probe
     * is a weak pointer, cleared by probe_done or block_end. Holding a
     * reference until probe_done leaked the probe when the pin was
     * killed first: a killed pin turns to push mode, which drops what it
     * writes without completing it. */
    request_put(pr);
}

void
pin_blocking_done(struct worker *w, struct pinset *ps)
{
    block_end(w, ps);
    for (uint32_t i = 0; i < ps->nblk;) {
        struct server *s = ps->blk[i];
        if (!backend_idle(s)) {
            i++;
            continue;
        }
        ps->blk[i] = ps->blk[--ps->nblk];
        list_remove(w->pins, &w->npins, s);
        pool_put(w, s);
    }
}

struct server *
pin_get_blocking(struct worker *w, struct pinset *ps, const char *host,
                 uint16_t port)
{
    pin_blocking_done(w, ps);
    if (!pin_room(w, ps, host, port))
        return NULL;
    struct server *s = pool_take(w, host, port, ps->cred);
    if (s == NULL) {
        s = backend_new_private(w, host, port);
        s->cred = ps->cred;
    }
    set_add(&ps->blk, &ps->nblk, s);
    list_add(&w->pins, &w->npins, &w->pins_cap, s);
    return s;
}

/* Release every pin of a client's blocking array. */
static void
release_blocking(struct worker *w, struct pinset *ps)
{
    for (uint32_t i = 0; i < ps->nblk; i++) {
        list_remove(w->pins, &w->npins, ps->blk[i]);
        pin_kill(w, ps->blk[i]);
    }
    sp_free(ps->blk);
    ps->blk = NULL;
    ps->nblk = 0;
}

void
pin_release_all(struct worker *w, struct pinset *ps)
{
    block_end(w, ps);
    for (uint32_t i = 0; i < ps->n; i++) {
        list_remove(w->pins, &w->npins, ps->v[i].srv);
        pin_kill(w, ps->v[i].srv);
    }
    sp_free(ps->v);
    ps->v = NULL;
    ps->n = 0;
    release_blocking(w, ps);
}

void
pin_release_user(struct worker *w, struct pinset *ps, enum pin_user user)
{
    for (uint32_t i = 0; i < ps->n;) {
        if (ps->v[i].user == user) {
            list_remove(w->pins, &w->npins, ps->v[i].srv);
            pin_kill(w, ps->v[i].srv);
            ps->v[i] = ps->v[--ps->n];
        } else {
            i++;
        }
    }
}

void
pin_release(struct worker *w, struct pinset *ps, struct server *s)
{
    for (uint32_t i = 0; i < ps->n; i++) {
        if (ps->v[i].srv == s) {
            ps->v[i] = ps->v[--ps->n];
            list_remove(w->pins, &w->npins, s);
            pin_kill(w, s);
            return;
        }
    }
}

void
pin_reap(struct worker *w)
{
    while (w->ndead_pins > 0)
        backend_free(w->dead_pins[--w->ndead_pins]);
}

void
pin_check_timeouts(struct worker *w, uint64_t now_ms)
{
    /* A sweep may fail requests whose owners then close and release
     * pins; the list only shrinks from the end we have not reached. */
    for (uint32_t i = 0; i < w->npins; i++)
        backend_server_timeouts(w->pins[i], now_ms);
}

void
pin_free_all(struct worker *w)
{
    pin_reap(w);
    while (w->npins > 0)
        backend_free(w->pins[--w->npins]);
    while (w->npin_pool > 0)
        backend_free(w->pin_pool[--w->npin_pool]);
    sp_free(w->pins);
    sp_free(w->dead_pins);
    sp_free(w->pin_pool);
    w->pins = w->dead_pins = w->pin_pool = NULL;
    w->pins_cap = w->dead_pins_cap = 0;
}
