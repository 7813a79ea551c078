/* slotproxy - BSD-2-Clause
 *
 * Combining command tables: the intersection of several masters' tables
 * (rolling upgrades), the merge of a learned table with the generated
 * built-in one (server wins on arity, flags and keys; the proxy on
 * policy), the route of a command only the server knows, and the
 * append-only registry of stable per-name indexes. No I/O.
 */
#include "build_config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cmdtable.h"
#include "cmdtable_int.h"
#include "command.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Routes of commands only the server knows
 * ------------------------------------------------------------------------ */

/* The proxy's policy for commands newer than the generated table, where no
 * flag or tip can decide it (scripts/gen_commands.py can only name the
 * commands of the server it reads). Each row gives its reason. */
struct newer_policy {
    const char *fullname;       /* lower case, "container|sub" */
    uint8_t route;              /* enum cmd_route */
    uint8_t merge;              /* enum cmd_merge; NONE: from the
                                 * response_policy tip */
};

static const struct newer_policy newer_policy_rows[] = {
    /* Waits until this connection's writes reach the AOF; through the
     * proxy they travel on shared connections (WAIT is refused alike). */
    {"waitaof", CMD_ROUTE_REFUSED, CMD_MERGE_NONE},
    /* The proxy presents itself as one node: answered for itself, as
     * CLUSTER MYID is (admin.c; also a built-in NEWER row). */
    {"cluster|myshardid", CMD_ROUTE_LOCAL, CMD_MERGE_NONE},
    /* SCRIPT LOAD reaches every master, so any master shows a script;
     * its noscript flag alone would have it refused. */
    {"script|show", CMD_ROUTE_ANY, CMD_MERGE_NONE},
    /* Valkey 8: each master reports its own slots (all_shards, no
     * response_policy): the proxy, one node owning every slot, answers
     * with all of them, ordered as the request asks (slotstats.c). */
    {"cluster|slot-stats", CMD_ROUTE_ALL, CMD_MERGE_SLOTSTATS},
};

static const struct newer_policy *
newer_row(const struct command *c)
{
    size_t i;

    for (i = 0; i < SP_ARRAY_LEN(newer_policy_rows); i++) {
        if (strcmp(newer_policy_rows[i].fullname, c->fullname) == 0)
            return &newer_policy_rows[i];
    }
    return NULL;
}

/* 1 if command_get_keys() can find every key of c from its specs alone. */
static int
keys_from_specs(const struct command *c)
{
    uint8_t i;

    for (i = 0; i < c->nkeyspecs; i++) {
        const struct cmd_keyspec *ks = &c->keyspecs[i];
        if (ks->incomplete || ks->bs_type == CMD_BS_UNKNOWN ||
            ks->fk_type == CMD_FK_UNKNOWN)
            return 0;
    }
    return 1;
}

/*
 * The route of a command the built-in table does not know, from what the
 * server says (contract in cmdtable.h): scripts/gen_commands.py's rules,
 * with flags and tips where the generator lists names. First match wins:
 *   1. a newer_policy_rows entry;
 *   2. a subcommand of a container the proxy answers itself (CLIENT,
 *      COMMAND, SLOWLOG: parent_route LOCAL) -> LOCAL;
 *   3. flag blocking -> PINNED (a dedicated connection, as BLPOP);
 *   4. flags admin (server administration: CONFIG, DEBUG, ACL ... all
 *      carry it), asking (cluster-internal: RESTORE-ASKING) or pubsub (a
 *      new subscription command would put a shared connection in pub/sub
 *      mode) -> REFUSED;
 *   5. request_policy special (SCAN-like: the client must know the
 *      command) -> REFUSED;
 *   6. request_policy all_nodes or all_shards, or multi_shard without key
 *      specs -> ALL, merged by response_policy (all_succeeded,
 *      one_succeeded, agg_*; none: arrays concatenated, Redis's default
 *      for keyless fan-out), except response_policy special -> REFUSED;
 *   7. noscript -> REFUSED: what Redis forbids scripts is connection
 *      state (WATCH, MULTI, HELLO ...), server state or a script runner.
 *      Each noscript command of Redis 7.0 without an all_* tip is local,
 *      pinned or refused in the built-in table, but for EVAL/FCALL
 *      (keyed) and FUNCTION LIST/DUMP (all masters), listed by name; and
 *      WATCH has keys: keys alone cannot decide;
 *   8. key specs -> KEYED (one slot, CROSSSLOT otherwise; multi_shard
 *      commands too, until a generic split by key spec exists), or
 *      REFUSED when a spec cannot be followed (incomplete or unknown:
 *      Redis would ask the module's getkeys callback, the proxy cannot);
 *   9. movablekeys without key specs -> REFUSED (keys it cannot find);
 *  10. otherwise ANY (keyless, any master answers alike).
 * Module commands (flag module) follow the same rules.
 */
uint8_t
cmdtable_derive_route(const struct command *c, int parent_route)
{
    const struct newer_policy *row = newer_row(c);

    if (row != NULL)
        return row->route;
    if (parent_route == CMD_ROUTE_LOCAL)
        return CMD_ROUTE_LOCAL;
    if (c->flags & CMD_F_BLOCKING)
        return CMD_ROUTE_BLOCKING;
    if (c->flags & (CMD_F_ADMIN | CMD_F_ASKING | CMD_F_PUBSUB))
        return CMD_ROUTE_REFUSED;
    if (c->req_policy == CMD_REQ_SPECIAL)
        return CMD_ROUTE_REFUSED;
    if (c->req_policy == CMD_REQ_ALL_NODES ||
        c->req_policy == CMD_REQ_ALL_SHARDS ||
        (c->req_policy == CMD_REQ_MULTI_SHARD && c->nkeyspecs == 0))
        return c->resp_policy == CMD_RESP_SPECIAL ? CMD_ROUTE_REFUSED
                                                  : CMD_ROUTE_ALL;
    if (c->flags & CMD_F_NOSCRIPT)
        return CMD_ROUTE_REFUSED;
    if (c->nkeyspecs > 0)
        return keys_from_specs(c) ? CMD_ROUTE_KEYED : CMD_ROUTE_REFUSED;
    if (c->flags & CMD_F_MOVABLEKEYS)
        return CMD_ROUTE_REFUSED;
    return CMD_ROUTE_ANY;
}

/* ------------------------------------------------------------------------
 * Merge with the built-in table
 * ------------------------------------------------------------------------ */

/* A command both know: the built-in entry b with the server's (l) arity,
 * Redis flags, key specs and tips. Subcommands are left to the caller. */
static void
merge_entry(struct cmdtable *t, struct command *dst, const struct command *b,
            const struct command *l)
{
    *dst = *b;
    dst->arity = l->arity;
    dst->flags = (l->flags & CMD_F_REDIS_MASK) |
                 (b->flags & ~CMD_F_REDIS_MASK);
    dst->keyspecs = cmdtable_copy_keyspecs(t, l->keyspecs, l->nkeyspecs);
    dst->nkeyspecs = l->nkeyspecs;
    dst->req_policy = l->req_policy;
    dst->resp_policy = l->resp_policy;
    dst->builtin = b;
    /* A command that now blocks must not block a shared connection. */
    if ((dst->flags & CMD_F_BLOCKING) && dst->route != CMD_ROUTE_LOCAL &&
        dst->route != CMD_ROUTE_REFUSED)
        dst->route = CMD_ROUTE_BLOCKING;
}

/* How the replies of a command only the server knows merge when it goes to
 * every master: from its response_policy tip (no tip: arrays
 * concatenated, as Redis's documentation says for keyless commands). Tips
 * the proxy has no merge for (OR, MIN, MAX) expect one answer. */
static uint8_t
merge_of_policy(const struct command *c)
{
    const struct newer_policy *row = newer_row(c);

    if (c->route != CMD_ROUTE_ALL)
        return CMD_MERGE_NONE;
    if (row != NULL && row->merge != CMD_MERGE_NONE)
        return row->merge;
    switch (c->resp_policy) {
    case CMD_RESP_DEFAULT:
        return CMD_MERGE_CONCAT;
    case CMD_RESP_AGG_SUM:
        return CMD_MERGE_SUM;
    case CMD_RESP_AGG_LOGICAL_AND:
        return CMD_MERGE_AND;
    case CMD_RESP_ONE_SUCCEEDED:
        return CMD_MERGE_FIRST;
    default:
        return CMD_MERGE_SAME;
    }
}

/* A command only the server knows: a copy of l, routed by
 * cmdtable_derive_route. */
static void
merge_learned_only(struct cmdtable *t, struct command *dst,
                   const struct command *l, int parent_route)
{
    struct command *subs;
    uint16_t i;

    cmdtable_copy_command(t, dst, l);
    dst->route = cmdtable_derive_route(dst, parent_route);
    dst->merge = merge_of_policy(dst);
    dst->builtin = NULL;
    subs = (struct command *)dst->subcmds;  /* ours: in t's arena */
    for (i = 0; i < dst->nsubcmds; i++) {
        subs[i].route = cmdtable_derive_route(&subs[i], dst->route);
        subs[i].merge = merge_of_policy(&subs[i]);
        subs[i].builtin = NULL;
    }
}

/* Compare by name, a missing side sorting last: the merge-join order. */
static int
join_cmp(const struct command *a, const struct command *b)
{
    if (a == NULL || b == NULL)
        return a == NULL ? 1 : -1;
    return strcmp(a->name, b->name);
}

/* Subcommands of a command both know: the union, each merged as its top
 * level is. */
static void
merge_subcmds(struct cmdtable *t, struct command *dst,
              const struct command *b, const struct command *l)
{
    size_t nb = b->nsubcmds, nl = l->nsubcmds, i = 0, j = 0, n = 0;
    struct command *subs;

    if (nb + nl == 0)
        return;
    subs = cmdtable_alloc(t, (nb + nl) * sizeof(*subs));
    while (i < nb || j < nl) {
        const struct command *bs = i < nb ? &b->subcmds[i] : NULL;
        const struct command *ls = j < nl ? &l->subcmds[j] : NULL;
        int cmp = join_cmp(bs, ls);

        if (cmp < 0) {
            subs[n] = *bs;
            subs[n].builtin = bs;
            i++;
        } else if (cmp > 0) {
            merge_learned_only(t, &subs[n], ls, b->route);
            j++;
        } else {
            merge_entry(t, &subs[n], bs, ls);
            i++, j++;
        }
        n++;
    }
    dst->subcmds = subs;
    dst->nsubcmds = (uint16_t)n;
}

struct cmdtable *
cmdtable_merge(const struct cmdtable *learned, struct cmdtable_names *names)
{
    size_t nb = command_count(), nl = learned ? learned->ncmds : 0;
    struct cmdtable *t = cmdtable_new();
    size_t i = 0, j = 0, n = 0;

    t->cmds = cmdtable_alloc(t, (nb + nl) * sizeof(*t->cmds));
    t->ids = cmdtable_alloc(t, (nb + nl) * sizeof(*t->ids));
    /* Both tables are sorted by name: one merge-join pass. */
    while (i < nb || j < nl) {
        const struct command *b = i < nb ? command_at(i) : NULL;
        const struct command *l = j < nl ? &learned->cmds[j] : NULL;
        struct command *dst = &t->cmds[n];
        int cmp = join_cmp(b, l);

        if (cmp < 0) {
            *dst = *b;
            dst->builtin = b;
            i++;
        } else if (cmp > 0) {
            merge_learned_only(t, dst, l, -1);
            j++;
        } else {
            merge_entry(t, dst, b, l);
            merge_subcmds(t, dst, b, l);
            i++, j++;
        }
        t->ids[n] = (uint16_t)cmdtable_names_id(names, dst->fullname);
        dst->stat_id = t->ids[n++];
    }
    t->ncmds = n;
    cmdtable_build_hash(t);
    return t;
}

/* ------------------------------------------------------------------------
 * Intersection of several nodes' tables
 * ------------------------------------------------------------------------ */

/* Redis flags that allow something: a command keeps one only if every
 * node sets it. The other Redis flags restrict, and are kept if any node
 * sets them. */
#define CMD_F_PERMISSIVE (CMD_F_READONLY | CMD_F_FAST | CMD_F_LOADING | \
                          CMD_F_STALE | CMD_F_NO_AUTH | CMD_F_ALLOW_BUSY | \
                          CMD_F_NO_MANDATORY_KEYS)

/* What cmdtable_intersect() works with. */
struct isect {
    struct cmdtable *t;                 /* the result */
    const struct cmdtable *const *tables; /* inputs */
    const char *const *node;            /* input names (may be NULL) */
    size_t n;                           /* inputs */
    struct cmdtable_notes *notes;       /* where differences go, or NULL */
};

static void note(struct isect *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note(struct isect *x, const char *fmt, ...)
{
    struct cmdtable_notes *ns = x->notes;
    char line[512];
    va_list ap;

    if (ns == NULL)
        return;
    if (ns->n == CMDTABLE_MAX_NOTES) {
        ns->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (ns->lines == NULL)
        ns->lines = sp_calloc(CMDTABLE_MAX_NOTES, sizeof(*ns->lines));
    ns->lines[ns->n++] = sp_strdup(line);
}

/* Name of input i for notes; buf holds "node <i>" when none was given. */
static const char *
node_name(const struct isect *x, size_t i, char *buf, size_t len)
{
    if (x->node != NULL && x->node[i] != NULL)
        return x->node[i];
    snprintf(buf, len, "node %zu", i);
    return buf;
}

/* Same key positions (the CMD_KS_* access flags may differ: they do not
 * route). */
static int
keyspecs_equal(const struct command *a, const struct command *b)
{
    uint8_t i;

    if (a->nkeyspecs != b->nkeyspecs)
        return 0;
    for (i = 0; i < a->nkeyspecs; i++) {
        const struct cmd_keyspec *p = &a->keyspecs[i], *q = &b->keyspecs[i];
        if (p->bs_type != q->bs_type || p->fk_type != q->fk_type ||
            p->bs_pos != q->bs_pos || p->lastkey != q->lastkey ||
            p->keystep != q->keystep || p->limit != q->limit ||
            p->keynumidx != q->keynumidx || p->firstkey != q->firstkey ||
            p->incomplete != q->incomplete ||
            (p->bs_keyword == NULL) != (q->bs_keyword == NULL) ||
            (p->bs_keyword != NULL &&
             strcmp(p->bs_keyword, q->bs_keyword) != 0))
            return 0;
    }
    return 1;
}

/* "wait: flags +blocking -noscript on <node i> (against <node 0>)" */
static void
note_flags(struct isect *x, const struct command *c0,
           const struct command *ci, const char *ni, const char *n0)
{
    char diff[256];
    size_t used = 0;
    uint32_t bit;

    diff[0] = '\0';
    for (bit = 1; bit != 0 && used < sizeof(diff); bit <<= 1) {
        const char *name = cmdtable_flag_name(bit);
        if (name == NULL || !((c0->flags ^ ci->flags) & bit))
            continue;
        used += (size_t)snprintf(diff + used, sizeof(diff) - used, " %c%s",
                                 (ci->flags & bit) ? '+' : '-', name);
    }
    note(x, "%s: flags%s on %s (against %s)", c0->fullname, diff, ni, n0);
}

/* The arity accepting only the argument counts both a and b accept
 * (n: exactly n; -n: at least n); 0 when none is common. */
static int16_t
arity_common(int16_t a, int16_t b)
{
    if (a > 0 && b > 0)
        return a == b ? a : 0;
    if (a < 0 && b < 0)
        return a < b ? a : b;       /* the larger minimum */
    if (a < 0)
        return b >= -a ? b : 0;
    return a >= -b ? a : 0;
}

/* Combine the views of one command (cs[i] from input i, cs[0] first) into
 * dst; 0, or -1 to drop it. Subcommands are the caller's. */
static int
isect_entry(struct isect *x, struct command *dst,
            const struct command *const *cs)
{
    char b0[32], bi[32];
    struct command tmp;
    int16_t arity = cs[0]->arity;
    uint32_t any = 0, all = UINT32_MAX;
    size_t i;

    for (i = 1; i < x->n; i++) {
        const char *n0 = node_name(x, 0, b0, sizeof(b0));
        const char *ni = node_name(x, i, bi, sizeof(bi));
        if (!keyspecs_equal(cs[0], cs[i])) {
            note(x, "%s: key specs differ on %s and %s; not learned",
                 cs[0]->fullname, ni, n0);
            return -1;
        }
        if (cs[i]->arity != cs[0]->arity) {
            int16_t common = arity_common(arity, cs[i]->arity);
            note(x, "%s: arity %d on %s, %d on %s", cs[0]->fullname,
                 cs[i]->arity, ni, cs[0]->arity, n0);
            arity = common != 0 ? common : arity;
        }
        if (cs[i]->flags != cs[0]->flags)
            note_flags(x, cs[0], cs[i], ni, n0);
        if (cs[i]->req_policy != cs[0]->req_policy ||
            cs[i]->resp_policy != cs[0]->resp_policy)
            note(x, "%s: request/response policy differ on %s and %s",
                 cs[0]->fullname, ni, n0);
    }
    for (i = 0; i < x->n; i++) {
        any |= cs[i]->flags;
        all &= cs[i]->flags;
    }
    tmp = *cs[0];
    tmp.subcmds = NULL;         /* the caller intersects them */
    tmp.nsubcmds = 0;
    cmdtable_copy_command(x->t, dst, &tmp);
    dst->arity = arity;
    dst->flags = (all & CMD_F_PERMISSIVE) | (any & ~CMD_F_PERMISSIVE);
    return 0;
}

/* Input i's entry for name: top level when parents is NULL, else a
 * subcommand of parents[i]. */
static const struct command *
isect_find(const struct isect *x, size_t i, const char *name,
           const struct command *const *parents)
{
    if (parents == NULL)
        return cmdtable_lookup(x->tables[i], name, strlen(name));
    return command_lookup_sub(parents[i], name, strlen(name));
}

/* Names of input i that input 0 lacks (input 0's own names are checked
 * by isect_list), noted once: not when an input between has them too. */
static void
note_missing(struct isect *x, size_t i, const struct command *list,
             size_t nlist, const struct command *const *parents)
{
    char b[32];
    size_t k, j;

    for (k = 0; k < nlist; k++) {
        if (isect_find(x, 0, list[k].name, parents) != NULL)
            continue;
        for (j = 1; j < i; j++) {
            if (isect_find(x, j, list[k].name, parents) != NULL)
                break;
        }
        if (j == i)
            note(x, "%s: missing on %s; not learned", list[k].fullname,
                 node_name(x, 0, b, sizeof(b)));
    }
}

/* Intersect entries named like list[0 .. nlist) (input 0's) into out;
 * returns how many were kept. parents as for isect_find; each kept
 * entry's subcommands are intersected the same way. */
static size_t
isect_list(struct isect *x, const struct command *list, size_t nlist,
           const struct command *const *parents, struct command *out)
{
    const struct command **cs = sp_calloc(x->n, sizeof(*cs));
    size_t k, i, kept = 0;

    for (i = 1; i < x->n; i++) {
        const struct command *li = parents ? parents[i]->subcmds
                                           : x->tables[i]->cmds;
        size_t ni = parents ? parents[i]->nsubcmds : x->tables[i]->ncmds;
        note_missing(x, i, li, ni, parents);
    }
    for (k = 0; k < nlist; k++) {
        for (i = 0; i < x->n; i++) {
            cs[i] = isect_find(x, i, list[k].name, parents);
            if (cs[i] == NULL)
                break;
        }
        if (i < x->n) {
            char b[32];
            note(x, "%s: missing on %s; not learned", list[k].fullname,
                 node_name(x, i, b, sizeof(b)));
            continue;
        }
        if (isect_entry(x, &out[kept], cs) != 0)
            continue;
        if (list[k].nsubcmds > 0 && parents == NULL) {
            struct command *subs = cmdtable_alloc(
                x->t, list[k].nsubcmds * sizeof(*subs));
            out[kept].nsubcmds = (uint16_t)isect_list(
                x, list[k].subcmds, list[k].nsubcmds, cs, subs);
            out[kept].subcmds = out[kept].nsubcmds ? subs : NULL;
        }
        kept++;
    }
    sp_free(cs);
    return kept;
}

struct cmdtable *
cmdtable_intersect(const struct cmdtable *const *tables,
                   const char *const *node, size_t n,
                   struct cmdtable_notes *notes)
{
    struct isect x = { cmdtable_new(), tables, node, n, notes };

    if (n > 0) {
        x.t->cmds = cmdtable_alloc(x.t, tables[0]->ncmds *
                                        sizeof(*x.t->cmds));
        /* Input 0 is sorted, and so is what is kept of it. */
        x.t->ncmds = isect_list(&x, tables[0]->cmds, tables[0]->ncmds,
                                NULL, x.t->cmds);
    }
    cmdtable_build_hash(x.t);
    return x.t;
}

void
cmdtable_notes_free(struct cmdtable_notes *notes)
{
    size_t i;

    for (i = 0; i < notes->n; i++)
        sp_free(notes->lines[i]);
    sp_free(notes->lines);
    memset(notes, 0, sizeof(*notes));
}

/* ------------------------------------------------------------------------
 * Stable indexes
 * ------------------------------------------------------------------------ */

/* Open addressing over the extra names: twice the most there can be. */
#define NAMES_HASH_SIZE (2 * CMDTABLE_EXTRA_MAX)

struct cmdtable_names {
    char *extra[CMDTABLE_EXTRA_MAX];    /* learned names in registration
                                         * order: index command_count() + i;
                                         * owned */
    size_t n;                           /* extra names registered */
    uint16_t slots[NAMES_HASH_SIZE];    /* extra index + 1, 0 = empty */
};

struct cmdtable_names *
cmdtable_names_new(void)
{
    return sp_calloc(1, sizeof(struct cmdtable_names));
}

void
cmdtable_names_free(struct cmdtable_names *names)
{
    size_t i;

    if (names == NULL)
        return;
    for (i = 0; i < names->n; i++)
        sp_free(names->extra[i]);
    sp_free(names);
}

size_t
cmdtable_names_count(const struct cmdtable_names *names)
{
    return names->n;
}

const char *
cmdtable_names_at(const struct cmdtable_names *names, size_t i)
{
    return i < names->n ? names->extra[i] : NULL;
}

size_t
cmdtable_index_limit(void)
{
    return command_count() + CMDTABLE_EXTRA_MAX + 1;
}

size_t
cmdtable_names_id(struct cmdtable_names *names, const char *fullname)
{
    size_t len = strlen(fullname);
    const struct command *b = command_lookup(fullname, len);
    uint32_t h;

    if (b != NULL)
        return command_index(b);
    h = command_hash(fullname, len) & (NAMES_HASH_SIZE - 1);
    while (names->slots[h] != 0) {
        size_t i = names->slots[h] - 1u;
        if (strcmp(names->extra[i], fullname) == 0)
            return command_count() + i;
        h = (h + 1) & (NAMES_HASH_SIZE - 1);
    }
    if (names->n == CMDTABLE_EXTRA_MAX)
        return command_count() + CMDTABLE_EXTRA_MAX;
    names->extra[names->n] = sp_strdup(fullname);
    names->slots[h] = (uint16_t)(++names->n);
    return command_count() + names->n - 1;
}
