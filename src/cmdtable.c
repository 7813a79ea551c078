/* slotproxy - BSD-2-Clause
 *
 * Command tables learned from a server's COMMAND reply: parsing (hostile
 * input: every count, type and range is checked; nothing is trusted to be
 * NUL-free), the table object with its arena and O(1) lookup, and deep
 * copies between tables. Intersection, merging with the built-in table and
 * the stable name registry are in cmdtable_merge.c. No I/O.
 */
#include "build_config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cmdtable.h"
#include "cmdtable_int.h"
#include "command.h"
#include "resp.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Table and arena
 * ------------------------------------------------------------------------ */

/* Bytes of one arena chunk; larger requests get a chunk of their own. */
#define CMDTABLE_CHUNK (16u * 1024u)

struct cmdtable *
cmdtable_new(void)
{
    return sp_calloc(1, sizeof(struct cmdtable));
}

void
cmdtable_free(struct cmdtable *t)
{
    struct cmdtable_chunk *ch, *next;

    if (t == NULL)
        return;
    for (ch = t->arena; ch != NULL; ch = next) {
        next = ch->next;
        sp_free(ch);
    }
    sp_free(t);
}

void *
cmdtable_alloc(struct cmdtable *t, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    struct cmdtable_chunk *ch = t->arena;
    char *p;

    size = size == 0 ? align : (size + align - 1) & ~(align - 1);
    if (ch == NULL || ch->cap - ch->used < size) {
        size_t cap = size > CMDTABLE_CHUNK ? size : CMDTABLE_CHUNK;
        ch = sp_malloc(sizeof(*ch) + cap);
        ch->next = t->arena;
        ch->used = 0;
        ch->cap = cap;
        t->arena = ch;
    }
    p = (char *)ch->data + ch->used;
    ch->used += size;
    memset(p, 0, size);
    return p;
}

/* A NUL-terminated copy of len bytes in t's arena; lower-cased (names) or
 * upper-cased (keywords) when asked. */
static char *
arena_strndup(struct cmdtable *t, const char *s, size_t len, int fold)
{
    char *p = cmdtable_alloc(t, len + 1);
    size_t i;

    for (i = 0; i < len; i++) {
        char ch = s[i];
        if (fold < 0 && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        else if (fold > 0 && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 32);
        p[i] = ch;
    }
    return p;
}

static char *
arena_strdup(struct cmdtable *t, const char *s)
{
    return arena_strndup(t, s, strlen(s), 0);
}

/* qsort order of commands: by name, bytewise (command_lookup_sub's). */
static int
cmd_cmp(const void *a, const void *b)
{
    return strcmp(((const struct command *)a)->name,
                  ((const struct command *)b)->name);
}

void
cmdtable_sort(struct command *cmds, size_t n)
{
    if (n > 1)
        qsort(cmds, n, sizeof(*cmds), cmd_cmp);
}

/* Names of at most this many bytes are found by cmdtable_pack's key:
 * the commands clients send most (get, set, mget, hset, expire, publish
 * ...) are this short. */
#define CMDTABLE_SHORT_MAX 7

/* The name lowered and packed into one word, its length in the top byte,
 * so "set" and "set\0" differ and no key is 0. 0 when the name is empty
 * or longer than CMDTABLE_SHORT_MAX. Reads only name[0, len): loads of
 * 4, 2 and 1 bytes by len's bits, then ASCII upper case folded in all
 * bytes at once (bytes from 0x80 up are left alone, as cmd_lower does). */
static inline uint64_t
cmdtable_pack(const char *name, size_t len)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t v = 0;
    unsigned shift = 0;

    if (len == 0 || len > CMDTABLE_SHORT_MAX)
        return 0;
    if (len & 4) {
        uint32_t x;
        memcpy(&x, name, 4);
        v = x;
        shift = 32;
    }
    if (len & 2) {
        uint16_t x;
        memcpy(&x, name + shift / 8, 2);
        v |= (uint64_t)x << shift;
        shift += 16;
    }
    if (len & 1)
        v |= (uint64_t)(unsigned char)name[shift / 8] << shift;
    /* Per byte b < 0x80: b + (0x80 - 'A') has its top bit set when
     * b >= 'A', b + (0x80 - 'Z' - 1) when b > 'Z'; no carry crosses
     * bytes since both sums stay below 0x100. */
    uint64_t low7 = v & (0x7f * ones);
    uint64_t upper = (low7 + (0x80 - 'A') * ones) &
                     ~(low7 + (0x80 - 'Z' - 1) * ones) & ~v & (0x80 * ones);
    return (v | upper >> 2) | (uint64_t)len << 56;
}

/* Fibonacci hashing: the multiply spreads every byte of the key into the
 * top bits the shift keeps. */
static inline uint32_t
cmdtable_short_hash(uint64_t key, uint32_t shift)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> shift);
}

/* Lay out the packed-name index over the short names, size entries (the
 * main index's size: load factor at most 1/4). */
static void
cmdtable_build_short(struct cmdtable *t, uint32_t size)
{
    uint32_t bits = 0, mask = size - 1;

    while ((1u << bits) < size)
        bits++;
    t->short_shift = 64 - bits;
    t->short_keys = cmdtable_alloc(t, size * sizeof(*t->short_keys));
    t->short_pos = cmdtable_alloc(t, size * sizeof(*t->short_pos));
    for (size_t i = 0; i < t->ncmds; i++) {
        const char *name = t->cmds[i].name;
        uint64_t key = cmdtable_pack(name, strlen(name));
        if (key == 0)
            continue;
        uint32_t h = cmdtable_short_hash(key, t->short_shift);
        while (t->short_keys[h] != 0)
            h = (h + 1) & mask;
        t->short_keys[h] = key;
        t->short_pos[h] = (uint16_t)i;
    }
}

void
cmdtable_build_hash(struct cmdtable *t)
{
    uint32_t size = 64;
    size_t i;

    /* Load factor at most 1/4, as the generated table's (240 in 1024):
     * probes stay short on the hot path. */
    while (size < 4 * t->ncmds)
        size *= 2;
    t->mask = size - 1;
    t->slots = cmdtable_alloc(t, size * sizeof(*t->slots));
    for (i = 0; i < t->ncmds; i++) {
        const char *name = t->cmds[i].name;
        uint32_t h = command_hash(name, strlen(name)) & t->mask;
        while (t->slots[h] != 0)
            h = (h + 1) & t->mask;
        t->slots[h] = (uint16_t)(i + 1);
    }
    cmdtable_build_short(t, size);
}

const struct command *
cmdtable_lookup(const struct cmdtable *t, const char *name, size_t len)
{
    if (t->slots == NULL)
        return NULL;
    uint64_t key = cmdtable_pack(name, len);
    if (key != 0) {
        uint32_t h = cmdtable_short_hash(key, t->short_shift);
        uint64_t k;
        while ((k = t->short_keys[h]) != 0) {
            if (k == key)
                return &t->cmds[t->short_pos[h]];
            h = (h + 1) & t->mask;
        }
        return NULL;
    }
    return command_lookup_in(t->slots, t->mask, t->cmds, name, len);
}

size_t
cmdtable_count(const struct cmdtable *t)
{
    return t->ncmds;
}

const struct command *
cmdtable_at(const struct cmdtable *t, size_t i)
{
    return i < t->ncmds ? &t->cmds[i] : NULL;
}

size_t
cmdtable_pos(const struct cmdtable *t, const struct command *top)
{
    if (top < t->cmds || top >= t->cmds + t->ncmds)
        return t->ncmds;
    return (size_t)(top - t->cmds);
}

size_t
cmdtable_index(const struct cmdtable *t, const struct command *top)
{
    if (t->ids == NULL || top < t->cmds || top >= t->cmds + t->ncmds)
        return 0;
    return t->ids[top - t->cmds];
}

/* ------------------------------------------------------------------------
 * Deep copies (between tables: every pointer ends in dst's arena, or in
 * the static generated table)
 * ------------------------------------------------------------------------ */

const struct cmd_keyspec *
cmdtable_copy_keyspecs(struct cmdtable *t, const struct cmd_keyspec *ks,
                       size_t n)
{
    struct cmd_keyspec *out;
    size_t i;

    if (n == 0)
        return NULL;
    out = cmdtable_alloc(t, n * sizeof(*out));
    memcpy(out, ks, n * sizeof(*out));
    for (i = 0; i < n; i++) {
        if (ks[i].bs_keyword != NULL)
            out[i].bs_keyword = arena_strdup(t, ks[i].bs_keyword);
    }
    return out;
}

void
cmdtable_copy_command(struct cmdtable *t, struct command *dst,
                      const struct command *src)
{
    struct command *subs = NULL;
    size_t i;

    *dst = *src;
    dst->name = arena_strdup(t, src->name);
    dst->fullname = arena_strdup(t, src->fullname);
    dst->keyspecs = cmdtable_copy_keyspecs(t, src->keyspecs,
                                           src->nkeyspecs);
    if (src->nsubcmds > 0) {
        subs = cmdtable_alloc(t, src->nsubcmds * sizeof(*subs));
        for (i = 0; i < src->nsubcmds; i++)
            cmdtable_copy_command(t, &subs[i], &src->subcmds[i]);
    }
    dst->subcmds = subs;
}

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

/* Where the parser is, for error messages. */
struct parse_ctx {
    struct cmdtable *t;         /* table being filled */
    char *err;                  /* caller's message buffer */
    size_t errlen;              /* its size */
    char where[CMDTABLE_MAX_NAME + 48]; /* "command 'zrank'", "entry 7" */
};

static int parse_fail(struct parse_ctx *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write "COMMAND reply: <where>: <message>" into the caller's buffer;
 * returns -1 for the caller to return. */
static int
parse_fail(struct parse_ctx *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->errlen == 0)
        return -1;
    n = snprintf(p->err, p->errlen, "COMMAND reply: %s%s", p->where,
                 p->where[0] ? ": " : "");
    if (n < 0 || (size_t)n >= p->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int
val_is_str(const struct resp_value *v)
{
    return (v->type == '$' || v->type == '+') && v->str != NULL;
}

/* An array or a RESP3 set (flags, tips, categories are sets in RESP3). */
static int
val_is_array(const struct resp_value *v)
{
    return (v->type == '*' || v->type == '~') && v->integer != -1;
}

/* A RESP3 map, or its RESP2 rendering: a flat array of key, value. */
static int
val_is_map(const struct resp_value *v)
{
    return (v->type == '%' || v->type == '*') && v->integer != -1 &&
           v->nelems % 2 == 0;
}

static int
val_str_eq(const struct resp_value *v, const char *s)
{
    size_t n = strlen(s);

    return val_is_str(v) && v->len == n && memcmp(v->str, s, n) == 0;
}

/* The value of key in a map; NULL if absent. */
static const struct resp_value *
map_get(const struct resp_value *m, const char *key)
{
    size_t i;

    for (i = 0; i + 1 < m->nelems; i += 2) {
        if (val_str_eq(&m->elems[i], key))
            return &m->elems[i + 1];
    }
    return NULL;
}

/* An integer field of a map within int16_t, at least min. */
static int
map_int16(struct parse_ctx *p, const struct resp_value *m, const char *key,
          long long min, int16_t *out)
{
    const struct resp_value *v = map_get(m, key);

    if (v == NULL || v->type != ':')
        return parse_fail(p, "'%s' missing or not an integer", key);
    if (v->integer < min || v->integer > INT16_MAX)
        return parse_fail(p, "'%s' %lld out of range", key, v->integer);
    *out = (int16_t)v->integer;
    return 0;
}

/* A name or keyword: 1..max bytes of printable ASCII, no space. Anything
 * else would end up in error texts (CRLF injection) or be cut at a NUL. */
static int
check_word(struct parse_ctx *p, const struct resp_value *v, size_t max,
           const char *what)
{
    size_t i;

    if (!val_is_str(v))
        return parse_fail(p, "%s is not a string", what);
    if (v->len == 0 || v->len > max)
        return parse_fail(p, "%s of %zu bytes", what, v->len);
    for (i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->str[i];
        if (ch <= ' ' || ch >= 0x7f)
            return parse_fail(p, "%s has byte 0x%02x", what, ch);
    }
    return 0;
}

/* Redis flag names (COMMAND's third field) and key spec flag names. */
struct flag_name {
    const char *name;           /* as Redis spells it */
    uint32_t bit;               /* CMD_F_* or CMD_KS_* */
};

static const struct flag_name cmd_flag_names[] = {
    {"write", CMD_F_WRITE},             {"readonly", CMD_F_READONLY},
    {"denyoom", CMD_F_DENYOOM},         {"admin", CMD_F_ADMIN},
    {"pubsub", CMD_F_PUBSUB},           {"noscript", CMD_F_NOSCRIPT},
    {"blocking", CMD_F_BLOCKING},       {"loading", CMD_F_LOADING},
    {"stale", CMD_F_STALE},             {"fast", CMD_F_FAST},
    {"movablekeys", CMD_F_MOVABLEKEYS}, {"no_multi", CMD_F_NO_MULTI},
    {"no_auth", CMD_F_NO_AUTH},         {"allow_busy", CMD_F_ALLOW_BUSY},
    {"no_mandatory_keys", CMD_F_NO_MANDATORY_KEYS},
    {"module", CMD_F_MODULE},           {"asking", CMD_F_ASKING},
};

static const struct flag_name ks_flag_names[] = {
    {"RO", CMD_KS_RO},         {"RW", CMD_KS_RW},
    {"OW", CMD_KS_OW},         {"RM", CMD_KS_RM},
    {"access", CMD_KS_ACCESS}, {"update", CMD_KS_UPDATE},
    {"insert", CMD_KS_INSERT}, {"delete", CMD_KS_DELETE},
    {"not_key", CMD_KS_NOT_KEY}, {"incomplete", CMD_KS_INCOMPLETE},
    {"variable_flags", CMD_KS_VARIABLE_FLAGS},
};

const char *
cmdtable_flag_name(uint32_t bit)
{
    size_t i;

    for (i = 0; i < SP_ARRAY_LEN(cmd_flag_names); i++) {
        if (cmd_flag_names[i].bit == bit)
            return cmd_flag_names[i].name;
    }
    return NULL;
}

/* OR the bits of the flag names in array v (unknown names add nothing:
 * a newer server may have flags this proxy has no use for). */
static int
parse_flags(struct parse_ctx *p, const struct resp_value *v,
            const struct flag_name *names, size_t nnames, uint32_t *out)
{
    size_t i, j;

    if (!val_is_array(v))
        return parse_fail(p, "flags are not an array");
    *out = 0;
    for (i = 0; i < v->nelems; i++) {
        if (!val_is_str(&v->elems[i]))
            return parse_fail(p, "flag %zu is not a string", i);
        for (j = 0; j < nnames; j++) {
            if (val_str_eq(&v->elems[i], names[j].name))
                *out |= names[j].bit;
        }
    }
    return 0;
}

/* A tip's value among names (index = enum value); SPECIAL (last) for a
 * value this proxy does not know, so it is never mistaken for one it
 * handles. */
static uint8_t
tip_value(const char *s, size_t len, const char *const *names, size_t n)
{
    size_t i;

    for (i = 1; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return (uint8_t)i;
    }
    return (uint8_t)(n - 1);
}

static const char *const req_policy_names[] = {
    "", "all_nodes", "all_shards", "multi_shard", "special",
};

static const char *const resp_policy_names[] = {
    "", "one_succeeded", "all_succeeded", "agg_logical_and",
    "agg_logical_or", "agg_min", "agg_max", "agg_sum", "special",
};

static int
parse_tips(struct parse_ctx *p, const struct resp_value *v,
           struct command *c)
{
    static const char req[] = "request_policy:";
    static const char resp[] = "response_policy:";
    size_t i;

    if (!val_is_array(v))
        return parse_fail(p, "tips are not an array");
    for (i = 0; i < v->nelems; i++) {
        const struct resp_value *e = &v->elems[i];
        if (!val_is_str(e))
            return parse_fail(p, "tip %zu is not a string", i);
        if (e->len > sizeof(req) - 1 &&
            memcmp(e->str, req, sizeof(req) - 1) == 0)
            c->req_policy = tip_value(e->str + sizeof(req) - 1,
                                      e->len - (sizeof(req) - 1),
                                      req_policy_names,
                                      SP_ARRAY_LEN(req_policy_names));
        else if (e->len > sizeof(resp) - 1 &&
                 memcmp(e->str, resp, sizeof(resp) - 1) == 0)
            c->resp_policy = tip_value(e->str + sizeof(resp) - 1,
                                       e->len - (sizeof(resp) - 1),
                                       resp_policy_names,
                                       SP_ARRAY_LEN(resp_policy_names));
    }
    return 0;
}

/* begin_search {type, spec}: index {index} | keyword {keyword, startfrom}
 * | unknown (or a type this proxy does not know: key procedures only). */
static int
parse_begin_search(struct parse_ctx *p, const struct resp_value *bs,
                   struct cmd_keyspec *ks)
{
    const struct resp_value *type, *spec, *kw;

    if (bs == NULL || !val_is_map(bs))
        return parse_fail(p, "begin_search missing or not a map");
    type = map_get(bs, "type");
    spec = map_get(bs, "spec");
    if (type == NULL || !val_is_str(type) || spec == NULL ||
        !val_is_map(spec))
        return parse_fail(p, "begin_search without type and spec");
    if (val_str_eq(type, "index")) {
        ks->bs_type = CMD_BS_INDEX;
        return map_int16(p, spec, "index", INT16_MIN, &ks->bs_pos);
    }
    if (!val_str_eq(type, "keyword")) {
        ks->bs_type = CMD_BS_UNKNOWN;
        return 0;
    }
    ks->bs_type = CMD_BS_KEYWORD;
    kw = map_get(spec, "keyword");
    if (kw == NULL)
        return parse_fail(p, "keyword missing");
    if (check_word(p, kw, CMDTABLE_MAX_KEYWORD, "keyword") != 0)
        return -1;
    ks->bs_keyword = arena_strndup(p->t, kw->str, kw->len, 1);
    return map_int16(p, spec, "startfrom", INT16_MIN, &ks->bs_pos);
}

/* find_keys {type, spec}: range {lastkey, keystep, limit} | keynum
 * {keynumidx, firstkey, keystep} | unknown. */
static int
parse_find_keys(struct parse_ctx *p, const struct resp_value *fk,
                struct cmd_keyspec *ks)
{
    const struct resp_value *type, *spec;

    if (fk == NULL || !val_is_map(fk))
        return parse_fail(p, "find_keys missing or not a map");
    type = map_get(fk, "type");
    spec = map_get(fk, "spec");
    if (type == NULL || !val_is_str(type) || spec == NULL ||
        !val_is_map(spec))
        return parse_fail(p, "find_keys without type and spec");
    if (val_str_eq(type, "range")) {
        ks->fk_type = CMD_FK_RANGE;
        if (map_int16(p, spec, "lastkey", INT16_MIN, &ks->lastkey) ||
            map_int16(p, spec, "keystep", 1, &ks->keystep) ||
            map_int16(p, spec, "limit", 0, &ks->limit))
            return -1;
    } else if (val_str_eq(type, "keynum")) {
        ks->fk_type = CMD_FK_KEYNUM;
        if (map_int16(p, spec, "keynumidx", 0, &ks->keynumidx) ||
            map_int16(p, spec, "firstkey", 0, &ks->firstkey) ||
            map_int16(p, spec, "keystep", 1, &ks->keystep))
            return -1;
    } else {
        ks->fk_type = CMD_FK_UNKNOWN;
    }
    return 0;
}

static int
parse_keyspec(struct parse_ctx *p, const struct resp_value *v,
              struct cmd_keyspec *ks)
{
    const struct resp_value *flags;
    uint32_t kflags;

    if (!val_is_map(v))
        return parse_fail(p, "key spec is not a map");
    flags = map_get(v, "flags");
    if (flags == NULL)
        return parse_fail(p, "key spec without flags");
    if (parse_flags(p, flags, ks_flag_names, SP_ARRAY_LEN(ks_flag_names),
                    &kflags) != 0)
        return -1;
    ks->kflags = (uint16_t)kflags;
    ks->incomplete = (kflags & CMD_KS_INCOMPLETE) != 0;
    if (parse_begin_search(p, map_get(v, "begin_search"), ks) != 0)
        return -1;
    return parse_find_keys(p, map_get(v, "find_keys"), ks);
}

static int
parse_keyspecs(struct parse_ctx *p, const struct resp_value *v,
               struct command *c)
{
    struct cmd_keyspec *ks;
    size_t i;

    if (!val_is_array(v))
        return parse_fail(p, "key specs are not an array");
    if (v->nelems > CMDTABLE_MAX_KEYSPECS)
        return parse_fail(p, "%zu key specs", v->nelems);
    if (v->nelems == 0)
        return 0;
    ks = cmdtable_alloc(p->t, v->nelems * sizeof(*ks));
    for (i = 0; i < v->nelems; i++) {
        if (parse_keyspec(p, &v->elems[i], &ks[i]) != 0)
            return -1;
    }
    c->keyspecs = ks;
    c->nkeyspecs = (uint8_t)v->nelems;
    return 0;
}

/* Field indexes of one COMMAND entry (Redis 7). */
enum {
    F_NAME, F_ARITY, F_FLAGS, F_FIRST, F_LAST, F_STEP, F_ACL, F_TIPS,
    F_KEYSPECS, F_SUBCMDS, F_COUNT
};

static int parse_command(struct parse_ctx *p, const struct resp_value *v,
                         const struct command *parent, struct command *c);

/* Subcommands of c (a subcommand itself when parent is not NULL, which
 * Redis never nests): parsed, sorted, no duplicates. */
static int
parse_subcmds(struct parse_ctx *p, const struct resp_value *v,
              const struct command *parent, struct command *c)
{
    struct command *subs;
    size_t i;

    if (!val_is_array(v))
        return parse_fail(p, "subcommands are not an array");
    if (v->nelems == 0)
        return 0;
    if (parent != NULL)
        return parse_fail(p, "subcommands nested in a subcommand");
    if (v->nelems > CMDTABLE_MAX_SUBCMDS)
        return parse_fail(p, "%zu subcommands", v->nelems);
    subs = cmdtable_alloc(p->t, v->nelems * sizeof(*subs));
    for (i = 0; i < v->nelems; i++) {
        if (parse_command(p, &v->elems[i], c, &subs[i]) != 0)
            return -1;
    }
    cmdtable_sort(subs, v->nelems);
    for (i = 1; i < v->nelems; i++) {
        if (strcmp(subs[i - 1].name, subs[i].name) == 0)
            return parse_fail(p, "subcommand '%s' listed twice",
                              subs[i].fullname);
    }
    c->subcmds = subs;
    c->nsubcmds = (uint16_t)v->nelems;
    return 0;
}

/* The name field: "zrank" for a command, "config|get" for a subcommand of
 * parent "config" (name "get"). Sets p->where for later messages. */
static int
parse_name(struct parse_ctx *p, const struct resp_value *v,
           const struct command *parent, struct command *c)
{
    size_t plen = parent != NULL ? strlen(parent->fullname) : 0;
    const char *bar;
    char *full;

    if (check_word(p, v, CMDTABLE_MAX_NAME, "name") != 0)
        return -1;
    full = arena_strndup(p->t, v->str, v->len, -1);
    snprintf(p->where, sizeof(p->where), "command '%s'", full);
    bar = strchr(full, '|');
    if (parent == NULL) {
        if (bar != NULL)
            return parse_fail(p, "'|' in a command name");
        c->name = c->fullname = full;
        return 0;
    }
    if (v->len <= plen + 1 || memcmp(full, parent->fullname, plen) != 0 ||
        full[plen] != '|' || strchr(full + plen + 1, '|') != NULL)
        return parse_fail(p, "not a subcommand of '%s'", parent->fullname);
    c->fullname = full;
    c->name = full + plen + 1;
    return 0;
}

/* One entry of the reply (a command or, under parent, a subcommand). */
static int
parse_command(struct parse_ctx *p, const struct resp_value *v,
              const struct command *parent, struct command *c)
{
    const struct resp_value *f;
    uint32_t flags;
    size_t i;

    if (!val_is_array(v) || v->nelems < F_COUNT)
        return parse_fail(p, "an entry with %zu fields (Redis 7 has %d)",
                          val_is_array(v) ? v->nelems : 0, F_COUNT);
    f = v->elems;
    if (parse_name(p, &f[F_NAME], parent, c) != 0)
        return -1;
    if (f[F_ARITY].type != ':' || f[F_ARITY].integer == 0 ||
        f[F_ARITY].integer < INT16_MIN || f[F_ARITY].integer > INT16_MAX)
        return parse_fail(p, "arity missing or out of range");
    c->arity = (int16_t)f[F_ARITY].integer;
    if (parse_flags(p, &f[F_FLAGS], cmd_flag_names,
                    SP_ARRAY_LEN(cmd_flag_names), &flags) != 0)
        return -1;
    c->flags = flags;
    for (i = F_FIRST; i <= F_STEP; i++) {
        if (f[i].type != ':')
            return parse_fail(p, "legacy key position is not an integer");
    }
    if (!val_is_array(&f[F_ACL]))
        return parse_fail(p, "ACL categories are not an array");
    if (parse_tips(p, &f[F_TIPS], c) != 0 ||
        parse_keyspecs(p, &f[F_KEYSPECS], c) != 0 ||
        parse_subcmds(p, &f[F_SUBCMDS], parent, c) != 0)
        return -1;
    return 0;
}

/* Parse the top level of an already decoded reply into t. */
static int
parse_reply(struct parse_ctx *p, const struct resp_value *v)
{
    struct cmdtable *t = p->t;
    size_t i;

    if (v->type == '-' || v->type == '!')
        return parse_fail(p, "the server answered an error: %.*s",
                          (int)SP_MIN(v->len, 200), v->str ? v->str : "");
    if (!val_is_array(v))
        return parse_fail(p, "not an array");
    if (v->nelems > CMDTABLE_MAX_COMMANDS)
        return parse_fail(p, "%zu commands", v->nelems);
    t->cmds = cmdtable_alloc(t, v->nelems * sizeof(*t->cmds));
    t->ncmds = v->nelems;
    for (i = 0; i < v->nelems; i++) {
        snprintf(p->where, sizeof(p->where), "entry %zu", i);
        if (parse_command(p, &v->elems[i], NULL, &t->cmds[i]) != 0)
            return -1;
    }
    p->where[0] = '\0';
    cmdtable_sort(t->cmds, t->ncmds);
    for (i = 1; i < t->ncmds; i++) {
        if (strcmp(t->cmds[i - 1].name, t->cmds[i].name) == 0)
            return parse_fail(p, "command '%s' listed twice",
                              t->cmds[i].name);
    }
    cmdtable_build_hash(t);
    return 0;
}

struct cmdtable *
cmdtable_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    struct parse_ctx p = { cmdtable_new(), err, errlen, "" };
    struct resp_value *v = NULL;
    ssize_t n;
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    n = resp_value_parse(buf, len, &v);
    if (n <= 0)
        rc = parse_fail(&p, n == 0 ? "truncated" : "not valid RESP");
    else if ((size_t)n != len)
        rc = parse_fail(&p, "%zu bytes after the reply", len - (size_t)n);
    else
        rc = parse_reply(&p, v);
    resp_value_free(v);
    if (rc != 0) {
        cmdtable_free(p.t);
        return NULL;
    }
    return p.t;
}

/* ------------------------------------------------------------------------
 * Writing an entry back (COMMAND replies for entries no server sent)
 * ------------------------------------------------------------------------ */

/* The RESP2 rendering of a map with n pairs: a flat array. */
static void
add_map(struct buf *out, long long pairs)
{
    buf_add_array(out, 2 * pairs);
}

static void
add_int_pair(struct buf *out, const char *key, long long v)
{
    buf_add_bulk_str(out, key);
    buf_add_int(out, v);
}

static void
write_flags(struct buf *out, uint32_t bits, const struct flag_name *names,
            size_t nnames)
{
    size_t i, n = 0;

    for (i = 0; i < nnames; i++)
        n += (bits & names[i].bit) != 0;
    buf_add_array(out, (long long)n);
    for (i = 0; i < nnames; i++) {
        if (bits & names[i].bit)
            buf_printf(out, "+%s\r\n", names[i].name);
    }
}

static void
write_keyspec(struct buf *out, const struct cmd_keyspec *ks)
{
    add_map(out, 3);
    buf_add_bulk_str(out, "flags");
    write_flags(out, ks->kflags, ks_flag_names, SP_ARRAY_LEN(ks_flag_names));
    buf_add_bulk_str(out, "begin_search");
    add_map(out, 2);
    buf_add_bulk_str(out, "type");
    if (ks->bs_type == CMD_BS_INDEX) {
        buf_add_bulk_str(out, "index");
        buf_add_bulk_str(out, "spec");
        add_map(out, 1);
        add_int_pair(out, "index", ks->bs_pos);
    } else if (ks->bs_type == CMD_BS_KEYWORD) {
        buf_add_bulk_str(out, "keyword");
        buf_add_bulk_str(out, "spec");
        add_map(out, 2);
        buf_add_bulk_str(out, "keyword");
        buf_add_bulk_str(out, ks->bs_keyword);
        add_int_pair(out, "startfrom", ks->bs_pos);
    } else {
        buf_add_bulk_str(out, "unknown");
        buf_add_bulk_str(out, "spec");
        add_map(out, 0);
    }
    buf_add_bulk_str(out, "find_keys");
    add_map(out, 2);
    buf_add_bulk_str(out, "type");
    if (ks->fk_type == CMD_FK_RANGE) {
        buf_add_bulk_str(out, "range");
        buf_add_bulk_str(out, "spec");
        add_map(out, 3);
        add_int_pair(out, "lastkey", ks->lastkey);
        add_int_pair(out, "keystep", ks->keystep);
        add_int_pair(out, "limit", ks->limit);
    } else if (ks->fk_type == CMD_FK_KEYNUM) {
        buf_add_bulk_str(out, "keynum");
        buf_add_bulk_str(out, "spec");
        add_map(out, 3);
        add_int_pair(out, "keynumidx", ks->keynumidx);
        add_int_pair(out, "firstkey", ks->firstkey);
        add_int_pair(out, "keystep", ks->keystep);
    } else {
        buf_add_bulk_str(out, "unknown");
        buf_add_bulk_str(out, "spec");
        add_map(out, 0);
    }
}

/* Redis's legacy (first, last, step) of the first key spec when it is an
 * index range (lastkey -1 stays -1: "up to the last argument"). */
static void
legacy_range(const struct command *c, long long *first, long long *last,
             long long *step)
{
    const struct cmd_keyspec *ks = c->nkeyspecs > 0 ? c->keyspecs : NULL;

    *first = *last = *step = 0;
    if (ks == NULL || ks->bs_type != CMD_BS_INDEX ||
        ks->fk_type != CMD_FK_RANGE)
        return;
    *first = ks->bs_pos;
    *last = ks->lastkey < 0 ? ks->lastkey : ks->bs_pos + ks->lastkey;
    *step = ks->keystep;
}

static void
write_tips(struct buf *out, const struct command *c)
{
    char tip[64];

    buf_add_array(out, (c->req_policy != 0) + (c->resp_policy != 0));
    if (c->req_policy != 0) {
        snprintf(tip, sizeof(tip), "request_policy:%s",
                 req_policy_names[c->req_policy]);
        buf_add_bulk_str(out, tip);
    }
    if (c->resp_policy != 0) {
        snprintf(tip, sizeof(tip), "response_policy:%s",
                 resp_policy_names[c->resp_policy]);
        buf_add_bulk_str(out, tip);
    }
}

void
cmdtable_write_entry(struct buf *out, const struct command *c)
{
    long long first, last, step;
    uint16_t i;

    legacy_range(c, &first, &last, &step);
    buf_add_array(out, F_COUNT);
    buf_add_bulk_str(out, c->fullname);
    buf_add_int(out, c->arity);
    write_flags(out, c->flags, cmd_flag_names, SP_ARRAY_LEN(cmd_flag_names));
    buf_add_int(out, first);
    buf_add_int(out, last);
    buf_add_int(out, step);
    buf_add_array(out, 0);
    write_tips(out, c);
    buf_add_array(out, c->nkeyspecs);
    for (i = 0; i < c->nkeyspecs; i++)
        write_keyspec(out, &c->keyspecs[i]);
    buf_add_array(out, c->nsubcmds);
    for (i = 0; i < c->nsubcmds; i++)
        cmdtable_write_entry(out, &c->subcmds[i]);
}
