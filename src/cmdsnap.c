/* slotproxy - BSD-2-Clause
 *
 * Command table snapshots (cmdsnap.h): the merged table plus the raw
 * COMMAND entries the COMMAND family answers with. No I/O.
 */
#include "build_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "resp.h"
#include "util.h"

/* One top-level entry of a raw COMMAND reply. */
struct raw_entry {
    const char *name;           /* into the reply, not NUL-terminated */
    size_t nlen;                /* bytes of name */
    uint32_t off;               /* entry offset in the reply */
    uint32_t len;               /* entry bytes */
};

/* A RESP line's integer at p (after its type byte) up to CRLF; the end of
 * the line in *next. -1 when malformed. */
static long long
line_int(const char *p, const char *end, const char **next)
{
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    long long v;

    if (eol == NULL || eol + 1 >= end || eol[1] != '\n' ||
        sp_str2ll(p, (size_t)(eol - p), &v) != 0)
        return -1;
    *next = eol + 2;
    return v;
}

/* The name of the entry at p: "*N\r\n$L\r\n<name>\r\n". 0 or -1. */
static int
entry_name(const char *p, const char *end, struct raw_entry *e)
{
    const char *q;
    long long n;

    if (p >= end || *p != '*' || line_int(p + 1, end, &q) < 1 || q >= end ||
        *q != '$')
        return -1;
    n = line_int(q + 1, end, &q);
    if (n < 0 || n > end - q)
        return -1;
    e->name = q;
    e->nlen = (size_t)n;
    return 0;
}

static int
raw_cmp(const void *a, const void *b)
{
    const struct raw_entry *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = strncasecmp(x->name, y->name, n);

    if (c != 0)
        return c;
    return x->nlen < y->nlen ? -1 : x->nlen > y->nlen;
}

/* Split a (parsed, so well-formed) COMMAND reply into its entries, sorted
 * by name. Returns the number of entries (*out owned by the caller), -1
 * when the shape is not the expected one. */
static long long
split_entries(const char *buf, size_t len, struct raw_entry **out)
{
    const char *end = buf + len, *p;
    struct resp_reply rr;
    long long n, i;

    *out = NULL;
    if (len == 0 || buf[0] != '*' || (n = line_int(buf + 1, end, &p)) < 0 ||
        len > UINT32_MAX)
        return -1;
    *out = sp_calloc((size_t)(n ? n : 1), sizeof(**out));
    for (i = 0; i < n; i++) {
        struct raw_entry *e = &(*out)[i];
        resp_reply_init(&rr);
        if (resp_reply_parse(&rr, p, (size_t)(end - p)) != RESP_DONE ||
            entry_name(p, p + rr.len, e) != 0)
            return -1;
        e->off = (uint32_t)(p - buf);
        e->len = (uint32_t)rr.len;
        p += rr.len;
    }
    qsort(*out, (size_t)n, sizeof(**out), raw_cmp);
    return n;
}

static const struct raw_entry *
raw_find(const struct raw_entry *es, long long n, const char *name)
{
    struct raw_entry key = {name, strlen(name), 0, 0};

    return bsearch(&key, es, (size_t)n, sizeof(*es), raw_cmp);
}

/* The split replies of every master. */
struct raw_set {
    struct raw_entry **es;      /* per reply, sorted */
    long long *n;               /* entries per reply */
    const char *const *reply;
    size_t nreply;
};

static int entry_alike(const char *a, size_t alen, const char *b,
                       size_t blen);

/* Keep reply 0's bytes for each command of the table that every reply
 * lists alike (entry_alike). */
static void
snap_keep_raw(struct cmdsnap *s, const struct raw_set *rs)
{
    size_t nc = cmdtable_count(s->table);

    for (size_t i = 0; i < nc; i++) {
        const struct command *c = cmdtable_at(s->table, i);
        const struct raw_entry *e0 = raw_find(rs->es[0], rs->n[0], c->name);
        size_t k;

        for (k = 1; e0 != NULL && k < rs->nreply; k++) {
            const struct raw_entry *e = raw_find(rs->es[k], rs->n[k],
                                                 c->name);
            if (e == NULL || !entry_alike(rs->reply[k] + e->off, e->len,
                                          rs->reply[0] + e0->off, e0->len))
                break;
        }
        if (e0 != NULL && k == rs->nreply) {
            s->raw_off[i] = e0->off;
            s->raw_len[i] = e0->len;
        }
    }
}

static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Copy the registry's extra names and the masters' names into s. */
static void
snap_names(struct cmdsnap *s, const char *const *node, size_t n,
           const struct cmdtable_names *names)
{
    s->nextra = cmdtable_names_count(names);
    s->extra_names = sp_calloc(s->nextra ? s->nextra : 1,
                               sizeof(*s->extra_names));
    for (size_t i = 0; i < s->nextra; i++)
        s->extra_names[i] = sp_strdup(cmdtable_names_at(names, i));
    s->nmasters = n;
    s->masters = sp_calloc(n ? n : 1, sizeof(*s->masters));
    for (size_t i = 0; i < n; i++)
        s->masters[i] = sp_strdup(node[i] != NULL ? node[i] : "");
    qsort(s->masters, n, sizeof(*s->masters), str_cmp);
}

/* Parse every reply and intersect: the learned table, or NULL with err. */
static struct cmdtable *
snap_learn(const char *const *reply, const size_t *len,
           const char *const *node, size_t n, struct cmdtable_notes *notes,
           char *err, size_t errlen)
{
    struct cmdtable **ts = sp_calloc(n, sizeof(*ts));
    struct cmdtable *learned = NULL;
    char msg[256];
    size_t i;

    for (i = 0; i < n; i++) {
        ts[i] = cmdtable_parse(reply[i], len[i], msg, sizeof(msg));
        if (ts[i] == NULL) {
            snprintf(err, errlen, "%s: %s", node[i] ? node[i] : "?", msg);
            break;
        }
    }
    if (i == n)
        learned = n == 1 ? ts[0] : cmdtable_intersect(
            (const struct cmdtable *const *)ts, node, n, notes);
    for (size_t k = 0; k < n; k++) {
        if (ts[k] != learned)
            cmdtable_free(ts[k]);
    }
    sp_free(ts);
    return learned;
}

/* Split every reply; 0, or -1 with err. */
static int
snap_split(struct raw_set *rs, const char *const *reply, const size_t *len,
           size_t n, char *err, size_t errlen)
{
    rs->es = sp_calloc(n, sizeof(*rs->es));
    rs->n = sp_calloc(n, sizeof(*rs->n));
    rs->reply = reply;
    rs->nreply = n;
    for (size_t i = 0; i < n; i++) {
        rs->n[i] = split_entries(reply[i], len[i], &rs->es[i]);
        if (rs->n[i] < 0) {
            snprintf(err, errlen, "COMMAND reply %zu: not an array of "
                     "entries", i);
            return -1;
        }
    }
    return 0;
}

static void
raw_set_free(struct raw_set *rs)
{
    for (size_t i = 0; i < rs->nreply && rs->es != NULL; i++)
        sp_free(rs->es[i]);
    sp_free(rs->es);
    sp_free(rs->n);
}

struct cmdsnap *
cmdsnap_new(const char *const *reply, const size_t *len,
            const char *const *node, size_t n, struct cmdtable_names *names,
            struct cmdtable_notes *notes, char *err, size_t errlen)
{
    struct cmdtable *learned = NULL;
    struct raw_set rs = {0};
    struct cmdsnap *s;

    if (errlen > 0)
        err[0] = '\0';
    if (n > 0) {
        learned = snap_learn(reply, len, node, n, notes, err, errlen);
        if (learned == NULL || snap_split(&rs, reply, len, n, err,
                                          errlen) != 0) {
            cmdtable_free(learned);
            raw_set_free(&rs);
            return NULL;
        }
    }
    s = sp_calloc(1, sizeof(*s));
    s->refcount = 1;
    s->table = cmdtable_merge(learned, names);
    s->learned = learned != NULL ? cmdtable_count(learned) : 0;
    size_t nc = cmdtable_count(s->table);
    s->raw_off = sp_malloc((nc ? nc : 1) * sizeof(*s->raw_off));
    s->raw_len = sp_calloc(nc ? nc : 1, sizeof(*s->raw_len));
    memset(s->raw_off, 0xff, (nc ? nc : 1) * sizeof(*s->raw_off));
    if (n > 0) {
        s->raw = sp_malloc(len[0]);
        memcpy(s->raw, reply[0], len[0]);
        snap_keep_raw(s, &rs);
        /* Commands of reply 0 the intersection left out. */
        s->dropped = (size_t)rs.n[0] - s->learned;
    }
    raw_set_free(&rs);
    cmdtable_free(learned);
    snap_names(s, node, n, names);
    return s;
}

struct cmdsnap *
cmdsnap_get(struct cmdsnap *s)
{
    __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
    return s;
}

void
cmdsnap_put(struct cmdsnap *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    cmdtable_free(s->table);
    sp_free(s->raw);
    sp_free(s->raw_off);
    sp_free(s->raw_len);
    for (size_t i = 0; i < s->nextra; i++)
        sp_free(s->extra_names[i]);
    sp_free(s->extra_names);
    for (size_t i = 0; i < s->nmasters; i++)
        sp_free(s->masters[i]);
    sp_free(s->masters);
    sp_free(s);
}

const char *
cmdsnap_entry(const struct cmdsnap *s, const struct command *top, size_t *len)
{
    size_t i = cmdtable_pos(s->table, top);

    *len = 0;
    if (i >= cmdtable_count(s->table) || s->raw_off[i] == UINT32_MAX)
        return NULL;
    *len = s->raw_len[i];
    return s->raw + s->raw_off[i];
}

/* Skip one complete value at *p (end: the entry's end); 0 or -1. */
static int
skip_value(const char **p, const char *end)
{
    struct resp_reply rr;

    resp_reply_init(&rr);
    if (resp_reply_parse(&rr, *p, (size_t)(end - *p)) != RESP_DONE)
        return -1;
    *p += rr.len;
    return 0;
}

/* The subcommands array of the COMMAND entry [p, end): its count in
 * *nsubs and the first subcommand's entry returned (the first nine fields
 * are the bytes before it); NULL when the entry has another shape. */
static const char *
entry_subs(const char *p, const char *end, long long *nsubs)
{
    if (p >= end || *p != '*' || line_int(p + 1, end, &p) < 10)
        return NULL;
    for (int i = 0; i < 9; i++) {
        if (skip_value(&p, end) != 0)
            return NULL;
    }
    if (p >= end || *p != '*' || (*nsubs = line_int(p + 1, end, &p)) < 0)
        return NULL;
    return p;
}

/*
 * 1 when two masters' entries for a command say the same: the same bytes,
 * or the same bytes but for the order of the subcommands (a server lists
 * them in its dict's order, which its random hash seed decides, so two
 * masters of one version list CLIENT's in different orders).
 */
static int
entry_alike(const char *a, size_t alen, const char *b, size_t blen)
{
    long long na, nb;
    const char *sa, *sb;

    if (alen == blen && memcmp(a, b, alen) == 0)
        return 1;
    if (alen != blen || (sa = entry_subs(a, a + alen, &na)) == NULL ||
        (sb = entry_subs(b, b + blen, &nb)) == NULL || na != nb ||
        sa - a != sb - b || memcmp(a, b, (size_t)(sa - a)) != 0)
        return 0;
    /* The end of b's subcommands, and what follows them (no field does
     * in Redis 7 and Valkey 8) must match a's. */
    const char *tb = sb;
    for (long long j = 0; j < nb; j++) {
        if (skip_value(&tb, b + blen) != 0)
            return 0;
    }
    /* Each subcommand of a once in b (names are unique within an entry,
     * so equal bytes cannot match twice); n is at most a few dozen. */
    for (long long i = 0; i < na; i++) {
        const char *ea = sa, *q = sb;
        int found = 0;
        if (skip_value(&sa, a + alen) != 0)
            return 0;
        for (long long j = 0; j < nb && !found; j++) {
            const char *eb = q;
            if (skip_value(&q, tb) != 0)
                return 0;
            found = q - eb == sa - ea &&
                    memcmp(ea, eb, (size_t)(sa - ea)) == 0;
        }
        if (!found)
            return 0;
    }
    return a + alen - sa == b + blen - tb &&
           memcmp(sa, tb, (size_t)(a + alen - sa)) == 0;
}

const char *
cmdsnap_sub_entry(const struct cmdsnap *s, const struct command *top,
                  const struct command *sub, size_t *len)
{
    size_t tlen;
    const char *p = cmdsnap_entry(s, top, &tlen), *end;
    long long nfields, nsubs;

    *len = 0;
    if (p == NULL)
        return NULL;
    end = p + tlen;
    /* [name, arity, flags, first, last, step, acl, tips, keyspecs, subs] */
    if ((nfields = line_int(p + 1, end, &p)) < 10)
        return NULL;
    for (int i = 0; i < 9; i++) {
        if (skip_value(&p, end) != 0)
            return NULL;
    }
    if (p >= end || *p != '*' || (nsubs = line_int(p + 1, end, &p)) < 0)
        return NULL;
    for (long long i = 0; i < nsubs; i++) {
        struct raw_entry e;
        const char *start = p;
        if (skip_value(&p, end) != 0 || entry_name(start, p, &e) != 0)
            return NULL;
        if (sp_strcaseeq(e.name, e.nlen, sub->fullname)) {
            *len = (size_t)(p - start);
            return start;
        }
    }
    return NULL;
}

const char *
cmdsnap_index_name(const struct cmdsnap *s, size_t idx)
{
    if (idx < command_count())
        return command_at(idx)->name;
    idx -= command_count();
    return idx < s->nextra ? s->extra_names[idx] : NULL;
}

int
cmdsnap_same_masters(const struct cmdsnap *s, const char *const *node,
                     size_t n)
{
    if (n != s->nmasters)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = node[i];
        if (bsearch(&key, s->masters, n, sizeof(*s->masters),
                    str_cmp) == NULL)
            return 0;
    }
    return 1;
}
