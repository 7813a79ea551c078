/* slotproxy - BSD-2-Clause
 *
 * Pub/Sub. A client's (un)subscribe commands travel on its push-mode
 * pinned connections and complete at once with an empty reply in its
 * pipeline; the server's confirmations and messages reach the client as
 * pushes, in the order each connection delivers them. The subscription
 * counts in confirmations are the server's own for SUBSCRIBE/PSUBSCRIBE
 * (one connection, as with one Redis).
 *
 * Sharded channels are spread over one connection per shard, and one
 * SSUBSCRIBE or SUNSUBSCRIBE may name channels of several slots (a single
 * Redis accepts that, and the proxy is one). The proxy sends one command
 * per channel to the master of its slot, holds the client's request until
 * a marker PING on every connection used comes back, and answers itself:
 * one confirmation per channel in the client's order, with the counts a
 * single Redis gives (its shard channels, from the client's own list).
 * The servers' sharded confirmations only update what each connection
 * carries; the client never sees them.
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
#include "topology.h"
#include "worker.h"

/* The marker PING sent behind an unsubscribe: its reply (["pong", token]
 * while still subscribed, the bulk token once not) says every
 * confirmation before it has arrived. The token is 128 random bits per
 * client, and a reply counts as the marker only in exactly those shapes
 * and while a marker is outstanding on that connection: nothing another
 * client publishes, nor the client's own PING, can pass for it. */
#define SYNC_TOKEN_LEN 32

/* A set of channel (or pattern) names, with a hash index: a client may
 * name a million channels in one command, and every confirmation looks
 * its name up, so lookups must not walk the list. */
struct chanlist {
    struct buf *v;                  /* names (each buf holds one) */
    uint32_t n;                     /* names in v */
    uint32_t cap;                   /* room in v */
    uint32_t *ix;                   /* open addressing on chan_hash, linear
                                     * probing: 0 empty, CHAN_GONE deleted,
                                     * else 1 + an index into v */
    uint32_t ixcap;                 /* slots in ix: a power of two, or 0 */
    uint32_t gone;                  /* CHAN_GONE slots in ix */
};

struct shard_sub {
    struct server *srv;             /* pinned push connection of a shard */
    long long count;                /* its last reported count */
    struct chanlist chans;          /* shard channels subscribed there, as
                                     * its confirmations say */
    uint8_t subscribing;            /* subscribe sent, no confirmation
                                     * from there yet (PING goes there) */
};

struct pubsub {
    struct server *conn;            /* SUBSCRIBE/PSUBSCRIBE connection */
    long long count;                /* its last reported count */
    uint32_t suppress;              /* confirmations of a re-subscription
                                     * still to swallow */
    uint8_t subscribing;            /* as in shard_sub, for conn */
    struct chanlist channels;       /* SUBSCRIBEd channels */
    struct chanlist patterns;       /* PSUBSCRIBEd patterns */
    struct shard_sub *shards;       /* SSUBSCRIBE connections */
    uint32_t nshards;
    struct chanlist sharded;        /* the client's shard channels, as a
                                     * single Redis would hold them: what
                                     * its counts are made of */
    struct chanlist op_chans;       /* channels the SSUBSCRIBE waiting for
                                     * its markers adds (new ones) */
    struct buf op_err;              /* first error a server gave it, to be
                                     * its answer (empty: none) */
    uint8_t op_sharded;             /* sync_req is a sharded operation
                                     * answered by the proxy */
    struct buf held_before;         /* pushes kept to go before its answer
                                     * (see pubsub_deliver) */
    struct buf held_after;          /* pushes kept to go after it */
    uint8_t recheck;                /* a shard answered MOVED/ASK, or a
                                     * connection was lost: check that a
                                     * connection carries every channel */
    uint8_t active;                 /* in subscribed mode */
    uint8_t resub_main;             /* conn was lost: subscribe again */
    struct chanlist resub_shard;    /* shard channels to subscribe again */
    struct chanlist sunsub_asked;   /* shard channels the client asked to
                                     * SUNSUBSCRIBE (others are the
                                     * server's doing: slot moved) */
    uint64_t lost_ms;               /* when a connection was lost */
    struct request *sync_req;       /* an (un)subscribe waiting for its
                                     * confirmations: done when no marker
                                     * is outstanding */
    struct server **marks;          /* one entry per marker PING sent and
                                     * not answered yet (its connection) */
    uint32_t nmarks;
    char token[SYNC_TOKEN_LEN + 1]; /* this client's marker argument:
                                     * random, never shown to anyone */
};

/* Give up re-subscribing (and close the client) after this long. */
#define RESUB_GIVE_UP_MS 15000

#define CHAN_GONE UINT32_MAX

static uint32_t
chan_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

/* The index slot that holds name s, or NULL; *room: the first free slot
 * of its probe sequence, where it would go. The index always keeps an
 * empty slot (chan_add grows it first), so the probe ends. */
static uint32_t *
chan_slot(const struct chanlist *l, const char *s, size_t n, uint32_t **room)
{
    uint32_t mask = l->ixcap - 1;
    *room = NULL;
    if (l->ixcap == 0)
        return NULL;
    for (uint32_t k = chan_hash(s, n) & mask;; k = (k + 1) & mask) {
        uint32_t v = l->ix[k];
        if (v == 0 || v == CHAN_GONE) {
            if (*room == NULL)
                *room = &l->ix[k];
            if (v == 0)
                return NULL;
            continue;
        }
        const struct buf *b = &l->v[v - 1];
        if (b->len == n && memcmp(b->data, s, n) == 0)
            return &l->ix[k];
    }
}

/* Rebuild the index for l->n + 1 names at most 3/8 full. */
static void
chan_reindex(struct chanlist *l)
{
    uint32_t cap = 16;
    while ((uint64_t)cap * 3 < ((uint64_t)l->n + 1) * 8)
        cap <<= 1;
    sp_free(l->ix);
    l->ix = sp_calloc(cap, sizeof(*l->ix));
    l->ixcap = cap;
    l->gone = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        uint32_t k = chan_hash(l->v[i].data, l->v[i].len) & (cap - 1);
        while (l->ix[k] != 0)
            k = (k + 1) & (cap - 1);
        l->ix[k] = i + 1;
    }
}

static int
chan_find(const struct chanlist *l, const char *s, size_t n)
{
    uint32_t *room;
    uint32_t *slot = chan_slot(l, s, n, &room);
    return slot != NULL ? (int)(*slot - 1) : -1;
}

static void
chan_add(struct chanlist *l, const char *s, size_t n)
{
    uint32_t *room;
    if (chan_slot(l, s, n, &room) != NULL)
        return;
    if (((uint64_t)l->n + l->gone + 1) * 4 > (uint64_t)l->ixcap * 3) {
        chan_reindex(l);
        chan_slot(l, s, n, &room);
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = sp_realloc(l->v, l->cap * sizeof(*l->v));
    }
    if (*room == CHAN_GONE)
        l->gone--;
    buf_init(&l->v[l->n]);
    buf_append(&l->v[l->n], s, n);
    *room = ++l->n;
}

/* Remove name s (s may point into the list itself). */
static void
chan_del(struct chanlist *l, const char *s, size_t n)
{
    uint32_t *room;
    uint32_t *slot = chan_slot(l, s, n, &room);
    if (slot == NULL)
        return;
    uint32_t i = *slot - 1, last = l->n - 1;
    *slot = CHAN_GONE;
    l->gone++;
    if (i != last) {
        /* The last name fills the hole: its slot points there now. */
        uint32_t *moved = chan_slot(l, l->v[last].data, l->v[last].len, &room);
        *moved = i + 1;
    }
    buf_deinit(&l->v[i]);
    l->v[i] = l->v[last];
    l->n--;
}

static void
chan_free(struct chanlist *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        buf_deinit(&l->v[i]);
    sp_free(l->v);
    sp_free(l->ix);
    memset(l, 0, sizeof(*l));
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
    return ps->count > 0 || (ps->conn != NULL && ps->subscribing) ||
           ps->resub_main || ps->sharded.n > 0;
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
    pin_release_user(c->w, client_pins(c), PIN_PUBSUB);
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
    chan_free(&ps->sharded);
}

/* An internal command on s: cmd with the n channels at l. */
static void
send_chans(struct worker *w, struct server *s, const char *cmd,
           const struct buf *l, uint32_t n)
{
    struct request *r = request_new(&w->reqs);
    buf_add_array(&r->req, 1 + n);
    buf_add_bulk_str(&r->req, cmd);
    for (uint32_t i = 0; i < n; i++)
        buf_add_bulk(&r->req, l[i].data, l[i].len);
    r->no_deadline = 1;
    backend_send(s, r);
    request_put(r);
}

/* The shard connection carrying ch, or NULL. */
static struct server *
shard_carrying(const struct pubsub *ps, const char *ch, size_t len)
{
    for (uint32_t i = 0; i < ps->nshards; i++)
        if (chan_find(&ps->shards[i].chans, ch, len) >= 0)
            return ps->shards[i].srv;
    return NULL;
}

/* 1 when some shard connection carries channel ch. */
static int
shard_carries(const struct pubsub *ps, const struct buf *ch)
{
    return shard_carrying(ps, ch->data, ch->len) != NULL;
}

/* Subscribe ch again at the next tick, where the slot map says. */
static void
shard_resub_later(struct pubsub *ps, const char *ch, size_t n)
{
    chan_add(&ps->resub_shard, ch, n);
    if (ps->lost_ms == 0)
        ps->lost_ms = sp_msec_now();
}

/* A failed SSUBSCRIBE subscribes nothing, as on a single Redis: the
 * channels it added leave the client's list, and those a shard did
 * subscribe are unsubscribed there (that confirmation, for a channel the
 * client no longer holds, is then ignored). */
static void
shard_undo(struct client *c, struct pubsub *ps)
{
    for (uint32_t i = 0; i < ps->op_chans.n; i++) {
        const struct buf *ch = &ps->op_chans.v[i];
        chan_del(&ps->sharded, ch->data, ch->len);
        chan_del(&ps->resub_shard, ch->data, ch->len);
        struct server *s = shard_carrying(ps, ch->data, ch->len);
        if (s != NULL)
            send_chans(c->w, s, "SUNSUBSCRIBE", ch, 1);
    }
}

/*
 * Every confirmation of a sharded operation is in: a failed SSUBSCRIBE
 * is undone. After a redirect, every channel of the client that no
 * connection carries is subscribed again where the refreshed map says (a
 * MOVED means the proxy's map was stale: the client asked for a
 * subscription and gets one).
 */
static void
shard_settle(struct client *c, struct pubsub *ps)
{
    if (ps->op_err.len > 0)
        shard_undo(c, ps);
    chan_free(&ps->op_chans);
    if (!ps->recheck)
        return;
    ps->recheck = 0;
    for (uint32_t i = 0; i < ps->sharded.n; i++)
        if (!shard_carries(ps, &ps->sharded.v[i]) &&
            chan_find(&ps->resub_shard, ps->sharded.v[i].data,
                      ps->sharded.v[i].len) < 0)
            shard_resub_later(ps, ps->sharded.v[i].data,
                              ps->sharded.v[i].len);
}

/* r's answer: the pushes kept to go before it, then the confirmations
 * the proxy made, or the error a server gave. */
static void
sync_answer(struct pubsub *ps, struct request *r)
{
    struct buf out = ps->held_before;
    buf_init(&ps->held_before);
    if (ps->op_err.len > 0)
        buf_append(&out, ps->op_err.data, ps->op_err.len);
    else
        buf_append(&out, r->rep.data + r->rep.pos, buf_unread(&r->rep));
    buf_deinit(&r->rep);
    r->rep = out;
}

/* The confirmations of the client's (un)subscribe are all in (s: the
 * connection whose marker came last, or that was lost): complete it
 * (releasing the client's input held behind it) and, out of subscribed
 * mode, turn the connections back to request/reply mode so that they can
 * carry a blocking command or a WATCH. */
static void
pubsub_sync_done(struct client *c, struct pubsub *ps, struct server *s)
{
    struct request *r = ps->sync_req;
    ps->sync_req = NULL;
    /* Every confirmation before the markers is in: the counts are exact. */
    if (s == ps->conn)
        ps->subscribing = 0;
    for (uint32_t i = 0; i < ps->nshards; i++)
        ps->shards[i].subscribing = 0;
    shard_settle(c, ps);
    struct buf after = ps->held_after;
    buf_init(&ps->held_after);
    if (r != NULL && ps->op_sharded)
        sync_answer(ps, r);
    ps->op_sharded = 0;
    buf_deinit(&ps->op_err);
    buf_deinit(&ps->held_before);
    /* What the client asked to drop is confirmed (or its connection is
     * gone): a later name is asked anew. */
    chan_free(&ps->sunsub_asked);
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
    if (!c->closed && after.len > 0)
        client_push(c, after.data, after.len);
    buf_deinit(&after);
}

/* A sharded (un)subscribe confirmation from s: what s carries is
 * updated; the client never sees it (the proxy answered already). */
static void
pubsub_shard_confirm(struct pubsub *ps, struct server *s,
                     const struct resp_value *v)
{
    const struct resp_value *name = &v->elems[1];
    int sub = elem_is(&v->elems[0], "ssubscribe");
    struct shard_sub *sh = shard_of(ps, s);

    if (sh == NULL || name->str == NULL)
        return;
    sh->count = v->elems[2].integer;
    if (sub) {
        sh->subscribing = 0;
        chan_add(&sh->chans, name->str, name->len);
        return;
    }
    int had = chan_find(&sh->chans, name->str, name->len) >= 0;
    chan_del(&sh->chans, name->str, name->len);
    if (chan_find(&ps->sunsub_asked, name->str, name->len) >= 0) {
        chan_del(&ps->sunsub_asked, name->str, name->len);
        return;
    }
    /* Not asked: the server dropped a channel it carried (its slot moved,
     * or the node became a replica). Subscribe again where the slot is
     * now, if the client still wants it. */
    if (had && chan_find(&ps->sharded, name->str, name->len) >= 0)
        shard_resub_later(ps, name->str, name->len);
}

/* An error on a shard connection: the answer to one of the SSUBSCRIBEs
 * (or SUNSUBSCRIBEs) the proxy sent there. A redirect: the map is stale;
 * refresh it, and the channel is subscribed again where it says. Any
 * other error becomes the answer to the client's pending SSUBSCRIBE, as
 * when a single Redis refuses it. 1 when handled. */
static int
pubsub_shard_error(struct client *c, struct pubsub *ps, const char *data,
                   size_t len)
{
    struct router_redirect rd;
    if (len >= 3 && router_parse_redirect(data + 1, len - 3, &rd) == 0) {
        ps->recheck = 1;
        topology_request_refresh(c->w);
        if (ps->sync_req == NULL)
            shard_settle(c, ps);
        return 1;
    }
    if (ps->sync_req == NULL || !ps->op_sharded)
        return 0;
    if (ps->op_err.len == 0)
        buf_append(&ps->op_err, data, len);
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
 * A push for the client. While a sharded (un)subscribe waits for its
 * markers, its request sits in the client's pipeline with the answer the
 * proxy made, and a push would land behind it: what earlier commands
 * caused (confirmations, pongs, messages of plain channels) is kept to
 * go just before that answer, shard messages just after it (a single
 * Redis confirms every channel of one command before any message on
 * them). What is kept counts against the output limit.
 */
static void
pubsub_deliver(struct client *c, struct pubsub *ps, const char *data,
               size_t len)
{
    static const char smsg[] = "*3\r\n$8\r\nsmessage\r\n";
    if (ps->sync_req == NULL || !ps->op_sharded) {
        client_push(c, data, len);
        return;
    }
    int after = len >= sizeof(smsg) - 1 &&
                memcmp(data, smsg, sizeof(smsg) - 1) == 0;
    buf_append(after ? &ps->held_after : &ps->held_before, data, len);
    if (ps->held_after.len + ps->held_before.len > c->w->conf->output_limit)
        client_disconnect(c, DISC_OUTPUT_LIMIT);
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
        if (ps->sync_req != NULL && ps->nmarks == 0)
            pubsub_sync_done(c, ps, s);
        return;
    }
    if (type == '-' && shard_of(ps, s) != NULL &&
        pubsub_shard_error(c, ps, data, len))
        return;
    if ((type != '*' && type != '>') ||
        resp_value_parse(data, len, &v) <= 0 ||
        v->nelems != 3 || v->elems[0].type != '$' ||
        v->elems[2].type != ':') {
        /* A message, a pmessage, a pong: as is. */
        if (v != NULL)
            resp_value_free(v);
        pubsub_deliver(c, ps, data, len);
        return;
    }
    int shard = elem_is(&v->elems[0], "ssubscribe") ||
                elem_is(&v->elems[0], "sunsubscribe");
    int show = 0;
    if (shard)
        pubsub_shard_confirm(ps, s, v);
    else
        show = pubsub_main_confirm(ps, s, v);
    if (!pubsub_subscribed(ps))
        pubsub_leave(ps);
    if (show)
        pubsub_deliver(c, ps, data, len);
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
            if (chan_find(&ps->sharded, sh->chans.v[j].data,
                          sh->chans.v[j].len) >= 0)
                chan_add(&ps->resub_shard, sh->chans.v[j].data,
                         sh->chans.v[j].len);
        chan_free(&sh->chans);
        ps->shards[i] = ps->shards[--ps->nshards];
        break;
    }
    if (ps->lost_ms == 0)
        ps->lost_ms = sp_msec_now();
    ps->recheck = 1; /* what it was subscribing is on no connection */
    if (ps->sync_req == NULL && ps->op_chans.n == 0)
        shard_settle(c, ps);
    pin_release(c->w, client_pins(c), s);
    /* The unsubscribe's marker will not come back: release the client's
     * input held behind it (last: that may close the client). */
    if (ps->sync_req != NULL && ps->nmarks == 0)
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
    struct server *s = pin_get(c->w, client_pins(c), n->host, n->port, PIN_PUBSUB);
    if (s == NULL)
        request_fail(r, pin_refusal(c->w, client_pins(c)));
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

/* Complete an earlier (un)subscribe still waiting (one at a time: the
 * client's barrier keeps it so). -1 when that closed the client. */
static int
sync_begin(struct client *c, struct pubsub *ps)
{
    struct request *old = ps->sync_req;
    if (old == NULL)
        return 0;
    ps->sync_req = NULL;
    if (!old->done)
        request_complete(old);
    request_put(old);
    return c->closed ? -1 : 0;
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
    if (sync_begin(c, ps) < 0)
        return;
    ps->marks = sp_realloc(ps->marks, (ps->nmarks + 1) * sizeof(*ps->marks));
    ps->marks[ps->nmarks++] = s;
    ps->sync_req = request_get(r);
    request_get(r);
    backend_send(s, r);
    if (r->done && !c->closed && ps->sync_req == r) {
        /* Failed at once (connection down): nothing to wait for. */
        ps->sync_req = NULL;
        pubsub_drop_marks(ps, s);
        request_put(r);
    }
    request_put(r);
}

/* The SUBSCRIBE connection when it has subscriptions, to answer PING
 * in order with its confirmations; NULL when none: the proxy answers
 * (sharded confirmations are the proxy's own answers, in order). */
static struct server *
ping_server(const struct pubsub *ps)
{
    if (ps->conn != NULL && (ps->count > 0 || ps->subscribing))
        return ps->conn;
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

/* The header of a 3-element confirmation the proxy writes for r's
 * client: the push Redis sends a RESP3 client, the array a RESP2 one. */
static void
confirm_head(struct request *r)
{
    if (request_resp3(r))
        buf_append(&r->rep, ">3\r\n", 4);
    else
        buf_add_array(&r->rep, 3);
}

/* Local confirmation when nothing is subscribed: [kind, channel|nil, n]. */
static void
reply_unsub_none(struct request *r, const char *kind,
                 const struct resp_req *p, const char *base, long long n)
{
    uint32_t nch = p->argc > 1 ? p->argc - 1 : 1;
    for (uint32_t i = 0; i < nch; i++) {
        confirm_head(r);
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

/* A marker PING on s, behind what was sent there: its reply says every
 * confirmation before it is in. */
static void
send_marker(struct client *c, struct pubsub *ps, struct server *s)
{
    struct request *m = request_new(&c->w->reqs);
    ps->marks = sp_realloc(ps->marks, (ps->nmarks + 1) * sizeof(*ps->marks));
    ps->marks[ps->nmarks++] = s;
    buf_printf(&m->req, "*2\r\n$4\r\nPING\r\n$%d\r\n%s\r\n", SYNC_TOKEN_LEN,
               ps->token);
    m->no_deadline = 1;
    backend_send(s, m);
    request_put(m);
}

/* A shard's entry for s, added when new. */
static struct shard_sub *
shard_add(struct pubsub *ps, struct server *s)
{
    struct shard_sub *sh = shard_of(ps, s);
    if (sh != NULL)
        return sh;
    ps->shards = sp_realloc(ps->shards, (ps->nshards + 1) * sizeof(*sh));
    sh = &ps->shards[ps->nshards++];
    memset(sh, 0, sizeof(*sh));
    sh->srv = s;
    return sh;
}

/*
 * r waits for the markers sent on the connections in to[0..n) (those
 * still alive: a send may have lost one). Marks go out after what was
 * sent there, so r completes once every confirmation is in, or at once
 * when none is outstanding. Frees to.
 */
static void
sync_wait(struct client *c, struct pubsub *ps, struct request *r,
          struct server **to, uint32_t n)
{
    r->no_deadline = 1;
    for (uint32_t i = 0; i < n && !c->closed; i++)
        if (shard_of(ps, to[i]) != NULL)
            send_marker(c, ps, to[i]);
    sp_free(to);
    /* And behind what earlier commands sent on the SUBSCRIBE connection:
     * their pushes come before r's answer. */
    if (!c->closed && ps->conn != NULL)
        send_marker(c, ps, ps->conn);
    if (c->closed)
        return;
    ps->sync_req = request_get(r);
    ps->op_sharded = 1;
    if (ps->nmarks == 0)
        pubsub_sync_done(c, ps, NULL);
}

/* Add s to the set to[0..*n) (at most ps->nshards + 1 entries). */
static void
server_set_add(struct server **to, uint32_t *n, struct server *s)
{
    for (uint32_t i = 0; i < *n; i++)
        if (to[i] == s)
            return;
    to[(*n)++] = s;
}

/* The pinned push connection of each channel's shard, resolved before
 * anything is sent; NULL with r answered when one has no master. */
static struct server **
shard_servers(struct client *c, struct request *r, const struct resp_req *p,
              const char *base)
{
    struct server **srv = sp_calloc(p->argc, sizeof(*srv));
    for (uint32_t i = 1; i < p->argc; i++) {
        r->keyed = 1;
        r->slot = keyslot(base + p->argv[i].off, p->argv[i].len);
        srv[i] = pubsub_server(c, r);
        if (srv[i] == NULL) {
            sp_free(srv);
            return NULL;
        }
        set_push_mode(c, srv[i]);
    }
    return srv;
}

/*
 * SSUBSCRIBE ch [ch ...], channels in any slots: one SSUBSCRIBE per
 * channel to its shard, then r waits for the markers. Its answer is made
 * here, as a single Redis gives it: per channel in order, the number of
 * shard channels the client holds once that one is added.
 */
static void
pubsub_ssubscribe(struct client *c, struct request *r,
                  const struct resp_req *p, const char *base)
{
    struct pubsub *ps = pubsub_get(c);
    if (sync_begin(c, ps) < 0)
        return;
    struct server **srv = shard_servers(c, r, p, base);
    if (srv == NULL)
        return;
    struct server **to = sp_malloc((p->argc - 1) * sizeof(*to));
    uint32_t nto = 0;
    chan_free(&ps->op_chans);
    for (uint32_t i = 1; i < p->argc; i++) {
        const char *ch = base + p->argv[i].off;
        size_t len = p->argv[i].len;
        if (chan_find(&ps->sharded, ch, len) < 0)
            chan_add(&ps->op_chans, ch, len); /* new: undone on error */
        chan_add(&ps->sharded, ch, len);
        shard_add(ps, srv[i])->subscribing = 1;
        server_set_add(to, &nto, srv[i]);
        confirm_head(r);
        buf_add_bulk_str(&r->rep, "ssubscribe");
        buf_add_bulk(&r->rep, ch, len);
        buf_add_int(&r->rep, ps->sharded.n);
    }
    ps->active = 1;
    for (uint32_t i = 1; i < p->argc && !c->closed; i++) {
        struct buf one = {(char *)(uintptr_t)(base + p->argv[i].off), 0,
                          p->argv[i].len, p->argv[i].len};
        if (shard_of(ps, srv[i]) != NULL)
            send_chans(c->w, srv[i], "SSUBSCRIBE", &one, 1);
    }
    sp_free(srv);
    if (c->closed) {
        sp_free(to);
        return;
    }
    sync_wait(c, ps, r, to, nto);
}

/* SUNSUBSCRIBE with no channel: every shard channel, each confirmed
 * with the count going down to 0 (or one [sunsubscribe, nil, 0]). */
static void
sunsub_all(struct client *c, struct pubsub *ps, struct request *r)
{
    struct server **to = sp_malloc((ps->nshards + 1) * sizeof(*to));
    uint32_t nto = 0;
    for (uint32_t i = 0; i < ps->sharded.n; i++) {
        confirm_head(r);
        buf_add_bulk_str(&r->rep, "sunsubscribe");
        buf_add_bulk(&r->rep, ps->sharded.v[i].data, ps->sharded.v[i].len);
        buf_add_int(&r->rep, (long long)(ps->sharded.n - i - 1));
    }
    if (ps->sharded.n == 0) {
        confirm_head(r);
        buf_add_bulk_str(&r->rep, "sunsubscribe");
        buf_add_null(&r->rep, request_resp3(r));
        buf_add_int(&r->rep, 0);
    }
    chan_free(&ps->sharded);
    chan_free(&ps->resub_shard);
    for (uint32_t i = 0; i < ps->nshards; i++) {
        struct shard_sub *sh = &ps->shards[i];
        for (uint32_t j = 0; j < sh->chans.n; j++)
            chan_add(&ps->sunsub_asked, sh->chans.v[j].data,
                     sh->chans.v[j].len);
        if (sh->chans.n > 0 || sh->count > 0 || sh->subscribing)
            to[nto++] = sh->srv;
    }
    if (!pubsub_subscribed(ps))
        pubsub_leave(ps);
    /* A send may lose a connection (and change the shard list): the
     * targets were copied first. */
    for (uint32_t i = 0; i < nto && !c->closed; i++)
        if (shard_of(ps, to[i]) != NULL)
            send_chans(c->w, to[i], "SUNSUBSCRIBE", NULL, 0);
    if (c->closed) {
        sp_free(to);
        return;
    }
    sync_wait(c, ps, r, to, nto);
}

/*
 * SUNSUBSCRIBE [ch ...]: answered here as a single Redis does (per
 * channel, the client's shard channel count after it is removed); each
 * channel a connection carries is unsubscribed there, one command per
 * channel, and r waits for the markers.
 */
static void
pubsub_sunsubscribe(struct client *c, struct request *r,
                    const struct resp_req *p, const char *base)
{
    struct pubsub *ps = c->ps;
    if (ps == NULL) {
        reply_unsub_none(r, "sunsubscribe", p, base, 0);
        return;
    }
    if (sync_begin(c, ps) < 0)
        return;
    if (p->argc == 1) {
        sunsub_all(c, ps, r);
        return;
    }
    struct server **to = sp_malloc((ps->nshards + 1) * sizeof(*to));
    uint32_t nto = 0;
    for (uint32_t i = 1; i < p->argc && !c->closed; i++) {
        struct buf one = {(char *)(uintptr_t)(base + p->argv[i].off), 0,
                          p->argv[i].len, p->argv[i].len};
        chan_del(&ps->sharded, one.data, one.len);
        chan_del(&ps->resub_shard, one.data, one.len);
        confirm_head(r);
        buf_add_bulk_str(&r->rep, "sunsubscribe");
        buf_add_bulk(&r->rep, one.data, one.len);
        buf_add_int(&r->rep, ps->sharded.n);
        struct server *s = shard_carrying(ps, one.data, one.len);
        if (s == NULL || chan_find(&ps->sunsub_asked, one.data, one.len) >= 0)
            continue;
        chan_add(&ps->sunsub_asked, one.data, one.len);
        server_set_add(to, &nto, s);
        send_chans(c->w, s, "SUNSUBSCRIBE", &one, 1);
    }
    if (!pubsub_subscribed(ps))
        pubsub_leave(ps);
    if (c->closed) {
        sp_free(to);
        return;
    }
    sync_wait(c, ps, r, to, nto);
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
        pubsub_ssubscribe(c, r, p, base);
        return;
    case CMD_OP_SUNSUBSCRIBE:
        pubsub_sunsubscribe(c, r, p, base);
        return;
    case CMD_OP_PING:
        if (ping_server(ps) != NULL) {
            /* Answered by a server that is in subscribed mode (["pong",
             * msg]), in order with the confirmations it sends. */
            send_on(c, ping_server(ps), r, p, base);
            return;
        }
        if (request_resp3(r)) {
            /* RESP3: PING answers as outside subscribed mode. */
            if (p->argc > 1)
                buf_add_bulk(&r->rep, base + p->argv[1].off, p->argv[1].len);
            else
                buf_append(&r->rep, "+PONG\r\n", 7);
            request_complete(r);
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
    pin_release_user(c->w, client_pins(c), PIN_PUBSUB);
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
    chan_free(&ps->sharded);
    chan_free(&ps->op_chans);
    buf_deinit(&ps->op_err);
    buf_deinit(&ps->held_before);
    buf_deinit(&ps->held_after);
    sp_free(ps->shards);
    sp_free(ps);
    c->ps = NULL;
}

static struct server *
resub_server(struct client *c, const struct sm_node *n)
{
    struct server *s = pin_get(c->w, client_pins(c), n->host, n->port, PIN_PUBSUB);
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
        send_chans(c->w, s, "SUBSCRIBE", ps->channels.v, ps->channels.n);
    if (ps->patterns.n > 0)
        send_chans(c->w, s, "PSUBSCRIBE", ps->patterns.v, ps->patterns.n);
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
        shard_add(ps, s)->subscribing = 1;
        send_chans(c->w, s, "SSUBSCRIBE", ch, 1);
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
