/* slotproxy - BSD-2-Clause
 *
 * Pinned connections. Each is a private server object (one connection,
 * not in the worker's shared list), registered in the worker's list of
 * live pins for the timeout sweep and the per-worker cap.
 */
#include "build_config.h"

#include <string.h>

#include "alloc.h"
#include "backend.h"
#include "config.h"
#include "pin.h"
#include "worker.h"

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

struct server *
pin_get(struct worker *w, struct pinset *ps, const char *host, uint16_t port,
        enum pin_user user)
{
    for (uint32_t i = 0; i < ps->n; i++) {
        struct server *s = ps->v[i].srv;
        if (ps->v[i].user == user && s->port == port &&
            s->cred == ps->cred &&
            strcmp(s->host, host) == 0)
            return s;
    }
    if (w->npins >= w->conf->max_pinned)
        return NULL;
    if (w->conf->max_pinned_per_node > 0) {
        /* Per node too, so one busy shard cannot take every pin. */
        uint32_t on_node = 0;
        for (uint32_t i = 0; i < w->npins; i++)
            on_node += w->pins[i]->port == port &&
                       strcmp(w->pins[i]->host, host) == 0;
        if (on_node >= w->conf->max_pinned_per_node)
            return NULL;
    }
    struct server *s = server_new_private(w, host, port);
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

/* Move s to the worker's dead list, cut from its user's hooks. */
static void
pin_retire(struct worker *w, struct server *s)
{
    s->on_push = pin_drop_push;
    s->on_push_lost = NULL;
    s->push_ctx = NULL;
    list_remove(w->pins, &w->npins, s);
    list_add(&w->dead_pins, &w->ndead_pins, &w->dead_pins_cap, s);
    worker_schedule_flush(w);
}

void
pin_release_all(struct worker *w, struct pinset *ps)
{
    for (uint32_t i = 0; i < ps->n; i++)
        pin_retire(w, ps->v[i].srv);
    sp_free(ps->v);
    ps->v = NULL;
    ps->n = 0;
}

void
pin_release_user(struct worker *w, struct pinset *ps, enum pin_user user)
{
    for (uint32_t i = 0; i < ps->n;) {
        if (ps->v[i].user == user) {
            pin_retire(w, ps->v[i].srv);
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
            pin_retire(w, s);
            return;
        }
    }
}

void
pin_reap(struct worker *w)
{
    while (w->ndead_pins > 0)
        server_free(w->dead_pins[--w->ndead_pins]);
}

void
pin_check_timeouts(struct worker *w, uint64_t now_ms)
{
    /* A sweep may fail requests whose owners then close and release
     * pins; the list only shrinks from the end we have not reached. */
    for (uint32_t i = 0; i < w->npins; i++)
        server_check_timeouts(w->pins[i], now_ms);
}

void
pin_free_all(struct worker *w)
{
    pin_reap(w);
    while (w->npins > 0)
        server_free(w->pins[--w->npins]);
    sp_free(w->pins);
    sp_free(w->dead_pins);
    w->pins = w->dead_pins = NULL;
    w->pins_cap = w->dead_pins_cap = 0;
}
