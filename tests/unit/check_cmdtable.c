/* slotproxy - BSD-2-Clause
 *
 * Unit tests for the learned command table (cmdtable.c, cmdtable_merge.c):
 * parsing real COMMAND replies recorded by scripts/record_commands.py from
 * Redis 7.0.15, Redis 7.4.1 and Valkey 8.0.1 (tests/unit/data/commands/),
 * the 7.0.15 reply against the generated built-in table (same server, so
 * any difference is a parser or generator bug), key extraction through
 * learned entries, the route rules for commands only the server knows,
 * intersection across versions, stable indexes, and hostile replies.
 * Table-driven; no network.
 */
#include "build_config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdsnap.h"
#include "cmdtable.h"
#include "command.h"
#include "resp.h"
#include "util.h"

#define F_REDIS70 "redis-7.0.15.resp"
#define F_REDIS74 "redis-7.4.1.resp"
#define F_VALKEY8 "valkey-8.0.1.resp"
#define F_VALKEY8_RESP3 "valkey-8.0.1-resp3.resp"

/* The CMD_F_* bits the generator emits (FLAG_MAP in gen_commands.py). */
#define GENERATED_FLAGS 0x3fffu

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static char *
load_file(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *data;
    long size;

    snprintf(path, sizeof(path), "%s/commands/%s", SP_TESTDATA, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_gt(size, 0);
    rewind(f);
    data = malloc((size_t)size);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return data;
}

static struct cmdtable *
parse_file(const char *name)
{
    char err[256];
    size_t len;
    char *data = load_file(name, &len);
    struct cmdtable *t = cmdtable_parse(data, len, err, sizeof(err));

    ck_assert_msg(t != NULL, "%s: %s", name, err);
    free(data);
    return t;
}

/* Resolve "cmd" or "container|sub" in a table (NULL: built-in). */
static const struct command *
find(const struct cmdtable *t, const char *fullname)
{
    const char *bar = strchr(fullname, '|');
    size_t n = bar ? (size_t)(bar - fullname) : strlen(fullname);
    const struct command *c = t ? cmdtable_lookup(t, fullname, n)
                                : command_lookup(fullname, n);

    if (c == NULL || bar == NULL)
        return c;
    return command_lookup_sub(c, bar + 1, strlen(bar + 1));
}

/* A request as the parser hands it over: bytes plus offsets. */
struct argv_buf {
    char base[4096];            /* argument bytes */
    size_t used;                /* bytes of base in use */
    struct resp_arg argv[64];   /* offsets into base */
    uint32_t argc;              /* arguments */
};

static void
argv_push(struct argv_buf *a, const char *s)
{
    size_t n = strlen(s);

    ck_assert_uint_lt(a->argc, SP_ARRAY_LEN(a->argv));
    ck_assert_uint_le(a->used + n, sizeof(a->base));
    memcpy(a->base + a->used, s, n);
    a->argv[a->argc].off = (uint32_t)a->used;
    a->argv[a->argc].len = (uint32_t)n;
    a->used += n;
    a->argc++;
}

/* Split a space-separated request into a. */
static void
argv_set(struct argv_buf *a, const char *line)
{
    char word[256];
    const char *p = line;

    memset(a, 0, sizeof(*a));
    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        ck_assert_uint_lt(n, sizeof(word));
        memcpy(word, p, n);
        word[n] = '\0';
        argv_push(a, word);
        p += n;
        p += *p == ' ';
    }
}

static int
keyspec_eq(const struct cmd_keyspec *a, const struct cmd_keyspec *b)
{
    return a->bs_type == b->bs_type && a->fk_type == b->fk_type &&
           a->bs_pos == b->bs_pos && a->lastkey == b->lastkey &&
           a->keystep == b->keystep && a->limit == b->limit &&
           a->keynumidx == b->keynumidx && a->firstkey == b->firstkey &&
           a->incomplete == b->incomplete &&
           (a->bs_keyword == NULL) == (b->bs_keyword == NULL) &&
           (a->bs_keyword == NULL ||
            strcmp(a->bs_keyword, b->bs_keyword) == 0);
}

/* ------------------------------------------------------------------------
 * Recorded replies
 * ------------------------------------------------------------------------ */

struct file_case {
    const char *file;           /* under data/commands */
    size_t ncmds;               /* top-level commands */
};

static const struct file_case file_cases[] = {
    {F_REDIS70, 240},
    {F_REDIS74, 250},
    {F_VALKEY8, 241},
    {F_VALKEY8_RESP3, 241},
};

/* Sorted, unique, found by case-insensitive lookup, subcommands sorted
 * and named container|sub. */
START_TEST(test_parse_files)
{
    struct cmdtable *t = parse_file(file_cases[_i].file);
    size_t i, j;

    ck_assert_uint_eq(cmdtable_count(t), file_cases[_i].ncmds);
    for (i = 0; i < cmdtable_count(t); i++) {
        const struct command *c = cmdtable_at(t, i);
        char upper[CMDTABLE_MAX_NAME + 1];

        if (i > 0)
            ck_assert_int_lt(strcmp(cmdtable_at(t, i - 1)->name, c->name), 0);
        ck_assert_str_eq(c->name, c->fullname);
        for (j = 0; c->name[j]; j++)
            upper[j] = (char)(c->name[j] >= 'a' && c->name[j] <= 'z'
                              ? c->name[j] - 32 : c->name[j]);
        ck_assert_ptr_eq(cmdtable_lookup(t, upper, j), c);
        ck_assert_int_eq(c->route, 0);
        for (j = 0; j < c->nsubcmds; j++) {
            const struct command *s = &c->subcmds[j];
            ck_assert_ptr_eq(command_lookup_sub(c, s->name, strlen(s->name)),
                             s);
            ck_assert_int_eq(strncmp(s->fullname, c->name, strlen(c->name)),
                             0);
            ck_assert_uint_eq(s->nsubcmds, 0);
        }
    }
    ck_assert_ptr_null(cmdtable_lookup(t, "nosuchcommand", 13));
    ck_assert_ptr_null(cmdtable_lookup(t, "", 0));
    ck_assert_ptr_null(cmdtable_at(t, cmdtable_count(t)));
    cmdtable_free(t);
}
END_TEST

/* Per-version facts, read from the recordings. */
struct spot_case {
    const char *file;
    const char *fullname;
    int16_t arity;
    uint32_t flags;             /* must all be set */
    uint8_t req_policy;         /* enum cmd_req_policy */
    uint8_t resp_policy;        /* enum cmd_resp_policy */
    int nkeyspecs;
};

static const struct spot_case spot_cases[] = {
    {F_REDIS70, "zrank", 3, CMD_F_READONLY | CMD_F_FAST, 0, 0, 1},
    {F_REDIS74, "zrank", -3, CMD_F_READONLY | CMD_F_FAST, 0, 0, 1},
    {F_VALKEY8, "zrank", -3, CMD_F_READONLY | CMD_F_FAST, 0, 0, 1},
    {F_REDIS74, "hexpire", -6, CMD_F_WRITE | CMD_F_DENYOOM | CMD_F_FAST,
     0, 0, 1},
    {F_REDIS74, "httl", -5, CMD_F_READONLY | CMD_F_FAST, 0, 0, 1},
    {F_REDIS74, "hpersist", -5, CMD_F_WRITE | CMD_F_FAST, 0, 0, 1},
    {F_VALKEY8, "cluster|slot-stats", -4, CMD_F_LOADING | CMD_F_STALE,
     CMD_REQ_ALL_SHARDS, 0, 0},
    {F_VALKEY8, "client|setinfo", 4, CMD_F_NOSCRIPT,
     CMD_REQ_ALL_NODES, CMD_RESP_ALL_SUCCEEDED, 0},
    {F_VALKEY8, "client|capa", -3, CMD_F_NOSCRIPT, 0, 0, 0},
    {F_VALKEY8, "waitaof", 4, CMD_F_BLOCKING, CMD_REQ_ALL_SHARDS,
     CMD_RESP_AGG_MIN, 0},
    {F_REDIS74, "wait", 3, CMD_F_BLOCKING, CMD_REQ_ALL_SHARDS,
     CMD_RESP_AGG_MIN, 0},
    {F_REDIS74, "cluster|myshardid", 2, CMD_F_STALE, 0, 0, 0},
    {F_REDIS70, "info", -1, CMD_F_LOADING, CMD_REQ_ALL_SHARDS,
     CMD_RESP_SPECIAL, 0},
    {F_REDIS70, "dbsize", 1, CMD_F_READONLY, CMD_REQ_ALL_SHARDS,
     CMD_RESP_AGG_SUM, 0},
    {F_REDIS70, "scan", -2, CMD_F_READONLY, CMD_REQ_SPECIAL, 0, 0},
    {F_REDIS70, "mset", -3, CMD_F_WRITE, CMD_REQ_MULTI_SHARD,
     CMD_RESP_ALL_SUCCEEDED, 1},
    {F_REDIS70, "script|kill", 2, CMD_F_NOSCRIPT | CMD_F_ALLOW_BUSY,
     CMD_REQ_ALL_SHARDS, CMD_RESP_ONE_SUCCEEDED, 0},
    {F_REDIS70, "eval", -3, CMD_F_NO_MANDATORY_KEYS | CMD_F_MOVABLEKEYS,
     0, 0, 1},
    {F_REDIS70, "publish", 3, CMD_F_PUBSUB | CMD_F_FAST, 0, 0, 0},
    {F_REDIS70, "restore-asking", -4, CMD_F_ASKING | CMD_F_WRITE, 0, 0, 1},
    {F_VALKEY8_RESP3, "client|setinfo", 4, CMD_F_NOSCRIPT,
     CMD_REQ_ALL_NODES, CMD_RESP_ALL_SUCCEEDED, 0},
    {F_VALKEY8_RESP3, "xreadgroup", -7, CMD_F_BLOCKING, 0, 0, 1},
};

START_TEST(test_spot_checks)
{
    const struct spot_case *sc = &spot_cases[_i];
    struct cmdtable *t = parse_file(sc->file);
    const struct command *c = find(t, sc->fullname);

    ck_assert_msg(c != NULL, "%s: no %s", sc->file, sc->fullname);
    ck_assert_str_eq(c->fullname, sc->fullname);
    ck_assert_int_eq(c->arity, sc->arity);
    ck_assert_uint_eq(c->flags & sc->flags, sc->flags);
    ck_assert_int_eq(c->req_policy, sc->req_policy);
    ck_assert_int_eq(c->resp_policy, sc->resp_policy);
    ck_assert_int_eq(c->nkeyspecs, sc->nkeyspecs);
    cmdtable_free(t);
}
END_TEST

/* Key specs in detail: HEXPIRE's one key (its FIELDS keyword is grammar,
 * in COMMAND DOCS only), XREADGROUP's STREAMS keyword, SPUBLISH's channel,
 * SORT's unknown specs. */
START_TEST(test_keyspec_details)
{
    struct cmdtable *t74 = parse_file(F_REDIS74);
    struct cmdtable *t8 = parse_file(F_VALKEY8_RESP3);
    const struct command *c;
    const struct cmd_keyspec *ks;

    c = find(t74, "hexpire");
    ks = &c->keyspecs[0];
    ck_assert_int_eq(ks->bs_type, CMD_BS_INDEX);
    ck_assert_int_eq(ks->bs_pos, 1);
    ck_assert_int_eq(ks->fk_type, CMD_FK_RANGE);
    ck_assert_int_eq(ks->lastkey, 0);
    ck_assert_int_eq(ks->keystep, 1);
    ck_assert_uint_eq(ks->kflags, CMD_KS_RW | CMD_KS_UPDATE);

    c = find(t8, "xreadgroup");
    ks = &c->keyspecs[0];
    ck_assert_int_eq(ks->bs_type, CMD_BS_KEYWORD);
    ck_assert_str_eq(ks->bs_keyword, "STREAMS");
    ck_assert_int_eq(ks->bs_pos, 4);
    ck_assert_int_eq(ks->lastkey, -1);
    ck_assert_int_eq(ks->limit, 2);
    ck_assert_uint_eq(ks->kflags, CMD_KS_RO | CMD_KS_ACCESS);

    c = find(t74, "spublish");
    ck_assert_uint_eq(c->keyspecs[0].kflags, CMD_KS_NOT_KEY);

    c = find(t74, "sort");
    ck_assert_int_eq(c->nkeyspecs, 3);
    ck_assert_int_eq(c->keyspecs[1].bs_type, CMD_BS_UNKNOWN);
    ck_assert_int_eq(c->keyspecs[1].fk_type, CMD_FK_UNKNOWN);
    cmdtable_free(t74);
    cmdtable_free(t8);
}
END_TEST

/* Rows of cmds[0..n) that come from the generating server (rows of
 * later Redis versions, CMD_P_NEWER, left out). */
static size_t
builtin_count(const struct command *cmds, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !(cmds[i].flags & CMD_P_NEWER);
    return k;
}

/* Compare a learned entry with the generated one of the same server. */
static void
assert_same_as_builtin(const struct command *b, const struct command *l)
{
    uint8_t k;
    uint16_t s;

    ck_assert_msg(l != NULL, "%s: not learned", b->fullname);
    ck_assert_str_eq(l->fullname, b->fullname);
    ck_assert_msg(l->arity == b->arity, "%s: arity %d, built-in %d",
                  b->fullname, l->arity, b->arity);
    ck_assert_msg((l->flags & GENERATED_FLAGS) ==
                  (b->flags & GENERATED_FLAGS), "%s: flags 0x%x, built-in 0x%x",
                  b->fullname, l->flags, b->flags);
    ck_assert_msg(l->nkeyspecs == b->nkeyspecs, "%s: %d key specs, built-in %d",
                  b->fullname, l->nkeyspecs, b->nkeyspecs);
    for (k = 0; k < b->nkeyspecs; k++)
        ck_assert_msg(keyspec_eq(&l->keyspecs[k], &b->keyspecs[k]),
                      "%s: key spec %d differs", b->fullname, k);
    ck_assert_msg(l->nsubcmds == builtin_count(b->subcmds, b->nsubcmds),
                  "%s: %d subcommands, built-in %d", b->fullname,
                  l->nsubcmds, b->nsubcmds);
    for (s = 0; s < b->nsubcmds; s++) {
        const struct command *bs = &b->subcmds[s], *ls = NULL;
        for (uint16_t j = 0; j < l->nsubcmds; j++)
            if (strcmp(l->subcmds[j].name, bs->name) == 0)
                ls = &l->subcmds[j];
        if (!(bs->flags & CMD_P_NEWER))
            assert_same_as_builtin(bs, ls);
    }
}

/* The built-in table was generated from redis-server 7.0.15: the learned
 * 7.0.15 table must agree on every command, field by field. */
START_TEST(test_redis70_equals_builtin)
{
    struct cmdtable *t = parse_file(F_REDIS70);
    size_t i;

    ck_assert_uint_eq(cmdtable_count(t), builtin_count(command_at(0),
                                                       command_count()));
    for (i = 0; i < command_count(); i++) {
        const struct command *b = command_at(i);
        if (!(b->flags & CMD_P_NEWER))
            assert_same_as_builtin(b, cmdtable_lookup(t, b->name,
                                                      strlen(b->name)));
    }
    cmdtable_free(t);
}
END_TEST

/* ------------------------------------------------------------------------
 * Key extraction through learned entries
 * ------------------------------------------------------------------------ */

/* Arguments that steer key specs and key procedures. */
static const char *const arg_pool[] = {
    "k1", "k2", "k3", "0", "1", "2", "3", "STREAMS", "KEYS", "STORE", "BY",
    "GET", "LIMIT", "GROUP", "BLOCK", "COUNT", "AUTH", "AUTH2", ">", "$",
    "WITHSCORES", "-1", "", "FIELDS", "numkeys",
};

static uint32_t
prng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random requests for c (argv[0] = top, argv[1] = sub for a subcommand):
 * built-in and merged entry must find the same keys. */
static void
assert_same_keys(const char *top, const struct command *b,
                 const struct command *m, uint32_t seed, int rounds)
{
    int kb[64], km[64];
    int round;
    uint32_t base = (uint32_t)(b->arity < 0 ? -b->arity : b->arity);

    base = SP_MIN(base, 40);    /* a corrupted table's arity can be huge */
    for (round = 0; round < rounds; round++) {
        struct argv_buf a;
        uint32_t argc = base + prng(&seed) % 8, i;
        int nb, nm;

        memset(&a, 0, sizeof(a));
        argv_push(&a, top);
        if (b != m && strchr(b->fullname, '|') != NULL)
            argv_push(&a, b->name);
        for (i = a.argc; i < argc; i++)
            argv_push(&a, arg_pool[prng(&seed) % SP_ARRAY_LEN(arg_pool)]);
        nb = command_get_keys(b, a.argc, a.argv, a.base, kb, 64);
        nm = command_get_keys(m, a.argc, a.argv, a.base, km, 64);
        ck_assert_msg(nb == nm, "%s: %d keys, built-in %d", b->fullname, nm,
                      nb);
        if (nb > 0)
            ck_assert_msg(memcmp(kb, km, (size_t)nb * sizeof(int)) == 0,
                          "%s: different keys", b->fullname);
    }
}

START_TEST(test_keys_match_builtin)
{
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *t = parse_file(F_REDIS70);
    struct cmdtable *m = cmdtable_merge(t, names);
    size_t i;
    uint16_t s;

    cmdtable_free(t);   /* the merged table must not point into it */
    for (i = 0; i < command_count(); i++) {
        const struct command *b = command_at(i);
        const struct command *e = cmdtable_lookup(m, b->name,
                                                  strlen(b->name));
        ck_assert_ptr_nonnull(e);
        ck_assert_ptr_eq(e->builtin, b);
        ck_assert_int_eq(e->route, b->route);
        assert_same_keys(b->name, b, e, (uint32_t)i * 2654435761u + 1, 64);
        for (s = 0; s < b->nsubcmds; s++) {
            const struct command *bs = &b->subcmds[s];
            const struct command *es = command_lookup_sub(e, bs->name,
                                                          strlen(bs->name));
            ck_assert_ptr_nonnull(es);
            ck_assert_ptr_eq(es->builtin, bs);
            ck_assert_int_eq(es->route, bs->route);
            assert_same_keys(b->name, bs, es, (uint32_t)(i * 131 + s + 7),
                             64);
        }
    }
    cmdtable_free(m);
    cmdtable_names_free(names);
}
END_TEST

/* Requests whose keys depend on following the specs exactly. */
struct key_case {
    const char *file;
    const char *req;            /* space-separated */
    int nkeys;                  /* -1: inconsistent */
    int keys[4];
};

static const struct key_case key_cases[] = {
    /* A group named "streams": the search starts at startfrom 4. */
    {F_REDIS74, "XREADGROUP GROUP streams c STREAMS s >", 1, {5}},
    {F_VALKEY8, "XREADGROUP GROUP g streams COUNT 1 STREAMS a b > >", 2,
     {7, 8}},
    {F_REDIS74, "XREAD COUNT 1 STREAMS streams 0", 1, {4}},
    {F_REDIS74, "XREAD STREAMS a b 0 0", 2, {2, 3}},
    {F_REDIS74, "HEXPIRE h 10 FIELDS 2 f1 f2", 1, {1}},
    {F_REDIS74, "HTTL h FIELDS 1 f", 1, {1}},
    {F_REDIS74, "ZRANK z m WITHSCORE", 1, {1}},
    {F_VALKEY8, "EVAL s 2 a b c", 2, {3, 4}},
    {F_VALKEY8, "EVAL s 0", 0, {0}},
    {F_VALKEY8, "EVAL s 3 a", -1, {0}},
    {F_VALKEY8, "SORT k BY p STORE d", 2, {1, 5}},
    {F_VALKEY8, "MIGRATE h 1 \"\" 0 5 KEYS a b", -1, {0}},
    {F_VALKEY8, "LMPOP 2 a b LEFT", 2, {2, 3}},
    {F_VALKEY8, "BLMPOP 0 2 a b LEFT", 2, {3, 4}},
};

START_TEST(test_keys_learned)
{
    const struct key_case *kc = &key_cases[_i];
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *t = parse_file(kc->file);
    struct cmdtable *m = cmdtable_merge(t, names);
    struct argv_buf a;
    const struct command *c;
    int keys[8], n;

    argv_set(&a, kc->req);
    c = cmdtable_lookup(m, a.base + a.argv[0].off, a.argv[0].len);
    ck_assert_ptr_nonnull(c);
    ck_assert(command_arity_ok(c, a.argc));
    n = command_get_keys(c, a.argc, a.argv, a.base, keys, 8);
    ck_assert_msg(n == kc->nkeys, "%s: %d keys, want %d", kc->req, n,
                  kc->nkeys);
    if (n > 0)
        ck_assert_int_eq(memcmp(keys, kc->keys, (size_t)n * sizeof(int)), 0);
    cmdtable_free(m);
    cmdtable_free(t);
    cmdtable_names_free(names);
}
END_TEST

/* ------------------------------------------------------------------------
 * Hand-made replies: merge rules, intersection
 * ------------------------------------------------------------------------ */

enum fake_ks {
    KS_NONE = 0,
    KS_INDEX1,                  /* index 1, range 0 */
    KS_INDEX2,                  /* index 2, range 0 */
    KS_INCOMPLETE,              /* index 1, range 0, flagged incomplete */
    KS_UNKNOWN,                 /* unknown, unknown */
};

/* One command of a hand-made COMMAND reply. */
struct fake_cmd {
    const char *name;           /* "x" or "container|sub" */
    int arity;
    const char *flags;          /* space-separated, "" for none */
    const char *tips;           /* space-separated, "" for none */
    int ks;                     /* enum fake_ks */
};

static void
add_words(struct buf *b, const char *words)
{
    struct argv_buf a;
    uint32_t i;

    argv_set(&a, words);
    buf_add_array(b, a.argc);
    for (i = 0; i < a.argc; i++) {
        buf_append_str(b, "+");
        buf_append(b, a.base + a.argv[i].off, a.argv[i].len);
        buf_append_str(b, "\r\n");
    }
}

static void
add_keyspec(struct buf *b, int ks)
{
    if (ks == KS_NONE) {
        buf_append_str(b, "*0\r\n");
        return;
    }
    buf_append_str(b, "*1\r\n*6\r\n$5\r\nflags\r\n");
    add_words(b, ks == KS_INCOMPLETE ? "RW incomplete" : "RW");
    if (ks == KS_UNKNOWN) {
        buf_append_str(b, "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
                          "$7\r\nunknown\r\n$4\r\nspec\r\n*0\r\n"
                          "$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n"
                          "$7\r\nunknown\r\n$4\r\nspec\r\n*0\r\n");
        return;
    }
    buf_printf(b, "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n"
                  "$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:%d\r\n",
               ks == KS_INDEX2 ? 2 : 1);
    buf_append_str(b, "$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
                      "$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n"
                      "$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n");
}

static void
add_fake(struct buf *b, const struct fake_cmd *cmds, size_t n, size_t i)
{
    const struct fake_cmd *c = &cmds[i];
    size_t len = strlen(c->name), j, nsubs = 0;

    buf_add_array(b, 10);
    buf_add_bulk_str(b, c->name);
    buf_add_int(b, c->arity);
    add_words(b, c->flags);
    buf_append_str(b, ":1\r\n:1\r\n:1\r\n*0\r\n");
    add_words(b, c->tips);
    add_keyspec(b, c->ks);
    for (j = 0; j < n; j++)
        nsubs += strncmp(cmds[j].name, c->name, len) == 0 &&
                 cmds[j].name[len] == '|';
    buf_add_array(b, (long long)nsubs);
    for (j = 0; j < n; j++) {
        if (strncmp(cmds[j].name, c->name, len) == 0 &&
            cmds[j].name[len] == '|')
            add_fake(b, cmds, n, j);
    }
}

/* A table parsed from a reply listing cmds (subcommands follow their
 * container by name). */
static struct cmdtable *
fake_table(const struct fake_cmd *cmds, size_t n)
{
    struct buf b;
    size_t i, top = 0;
    char err[256];
    struct cmdtable *t;

    buf_init(&b);
    for (i = 0; i < n; i++)
        top += strchr(cmds[i].name, '|') == NULL;
    buf_add_array(&b, (long long)top);
    for (i = 0; i < n; i++) {
        if (strchr(cmds[i].name, '|') == NULL)
            add_fake(&b, cmds, n, i);
    }
    t = cmdtable_parse(b.data, b.len, err, sizeof(err));
    ck_assert_msg(t != NULL, "fake reply: %s", err);
    buf_deinit(&b);
    return t;
}

static const struct fake_cmd route_fakes[] = {
    {"xblock", -2, "write blocking", "", KS_INDEX1},
    {"xadmin", 1, "admin noscript", "", KS_NONE},
    {"xasking", -2, "write asking", "", KS_INDEX1},
    {"xpub", -2, "pubsub", "", KS_NONE},
    {"xspecial", -1, "readonly", "request_policy:special", KS_NONE},
    {"xall", 1, "readonly",
     "request_policy:all_shards response_policy:agg_sum", KS_NONE},
    {"xallnodes", 1, "", "request_policy:all_nodes", KS_NONE},
    {"xallspecial", 1, "", "request_policy:all_shards "
     "response_policy:special", KS_NONE},
    {"xnewpolicy", 1, "", "request_policy:all_shards "
     "response_policy:agg_median", KS_NONE},
    {"xmulti", -2, "write", "request_policy:multi_shard "
     "response_policy:agg_sum", KS_INDEX1},
    {"xkeyed", 2, "readonly fast", "", KS_INDEX1},
    {"xincomplete", -2, "write", "", KS_INCOMPLETE},
    {"xunknownks", -2, "write", "", KS_UNKNOWN},
    {"xmovable", -2, "write movablekeys", "", KS_NONE},
    {"xnoscript", 1, "noscript", "", KS_NONE},
    {"xwatch", -2, "noscript fast", "", KS_INDEX1},
    {"xplain", 1, "fast", "nondeterministic_output", KS_NONE},
    {"JSON.GET", -2, "readonly module", "", KS_INDEX1},
    {"MOD.PING", 1, "module fast", "", KS_NONE},
    {"waitaof", 4, "blocking", "request_policy:all_shards "
     "response_policy:agg_min", KS_NONE},
    /* Known containers: the proxy answers CLIENT itself; CLUSTER is
     * refused as a whole except what the data allows. */
    {"client", -2, "", "", KS_NONE},
    {"client|newsub", 2, "noscript", "", KS_NONE},
    {"client|id", 2, "noscript loading stale", "", KS_NONE},
    {"cluster", -2, "", "", KS_NONE},
    {"cluster|newadmin", 2, "admin", "", KS_NONE},
    {"cluster|slot-stats", -4, "loading stale",
     "request_policy:all_shards", KS_NONE},
    {"cluster|myshardid", 2, "stale", "", KS_NONE},
    {"cluster|info", 2, "stale", "", KS_NONE},
    /* A learned-only container and its subcommands. */
    {"xcont", -2, "", "", KS_NONE},
    {"xcont|get", 3, "readonly", "", KS_INDEX2},
    {"xcont|stats", 2, "", "request_policy:all_shards", KS_NONE},
    /* Known commands with a newer server's view. */
    {"get", -2, "readonly fast", "", KS_INDEX1},
    {"lpush", -3, "write blocking", "", KS_INDEX1},
    {"ping", -1, "fast blocking", "", KS_NONE},
    {"wait", 3, "blocking", "request_policy:all_shards", KS_NONE},
};

struct route_case {
    const char *fullname;
    uint8_t route;              /* enum cmd_route */
};

static const struct route_case route_cases[] = {
    {"xblock", CMD_ROUTE_BLOCKING},
    {"xadmin", CMD_ROUTE_REFUSED},
    {"xasking", CMD_ROUTE_REFUSED},
    {"xpub", CMD_ROUTE_REFUSED},
    {"xspecial", CMD_ROUTE_REFUSED},
    {"xall", CMD_ROUTE_ALL},
    {"xallnodes", CMD_ROUTE_ALL},
    {"xallspecial", CMD_ROUTE_REFUSED},
    {"xnewpolicy", CMD_ROUTE_REFUSED},      /* unknown merge = special */
    {"xmulti", CMD_ROUTE_KEYED},
    {"xkeyed", CMD_ROUTE_KEYED},
    {"xincomplete", CMD_ROUTE_REFUSED},
    {"xunknownks", CMD_ROUTE_REFUSED},
    {"xmovable", CMD_ROUTE_REFUSED},
    {"xnoscript", CMD_ROUTE_REFUSED},
    {"xwatch", CMD_ROUTE_REFUSED},          /* keyed, but noscript */
    {"xplain", CMD_ROUTE_ANY},
    {"json.get", CMD_ROUTE_KEYED},
    {"mod.ping", CMD_ROUTE_ANY},
    {"waitaof", CMD_ROUTE_REFUSED},         /* built-in (a NEWER row):
                                             * refused as WAIT is */
    {"client", CMD_ROUTE_LOCAL},
    {"client|newsub", CMD_ROUTE_LOCAL},
    {"client|id", CMD_ROUTE_LOCAL},
    {"client|kill", CMD_ROUTE_LOCAL},       /* built-in, server lacks it */
    {"cluster|newadmin", CMD_ROUTE_REFUSED},
    {"cluster|slot-stats", CMD_ROUTE_ALL},
    {"cluster|myshardid", CMD_ROUTE_LOCAL},
    {"cluster|info", CMD_ROUTE_LOCAL},
    {"cluster|addslots", CMD_ROUTE_REFUSED},
    {"xcont", CMD_ROUTE_ANY},
    {"xcont|get", CMD_ROUTE_KEYED},
    {"xcont|stats", CMD_ROUTE_ALL},
    {"get", CMD_ROUTE_KEYED},
    {"lpush", CMD_ROUTE_BLOCKING},          /* now blocks: never shared */
    {"ping", CMD_ROUTE_LOCAL},              /* answered by the proxy */
    {"wait", CMD_ROUTE_REFUSED},            /* refused by the proxy */
    {"mget", CMD_ROUTE_SPLIT},              /* built-in only */
};

START_TEST(test_merge_routes)
{
    const struct route_case *rc = &route_cases[_i];
    struct cmdtable *t = fake_table(route_fakes,
                                    SP_ARRAY_LEN(route_fakes));
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *m = cmdtable_merge(t, names);
    const struct command *c = find(m, rc->fullname);

    ck_assert_msg(c != NULL, "%s missing", rc->fullname);
    ck_assert_msg(c->route == rc->route, "%s: route %d, want %d",
                  rc->fullname, c->route, rc->route);
    cmdtable_free(m);
    cmdtable_free(t);
    cmdtable_names_free(names);
}
END_TEST

/* Where the derived route is laxer than the built-in one, only a name can
 * decide: each such command must be listed here, with why. A change of
 * the rules (or a server) that lets another command through fails. */
static const char *const name_decided[] = {
    /* Containers: dispatched by subcommand, never as such. */
    "acl", "client", "cluster", "command", "config", "latency", "memory",
    "module", "slowlog",
    /* Connection state that no flag marks: must not reach a shared
     * connection. */
    "asking", "readonly", "readwrite", "select",
    /* Answered by the proxy (cheaper, or about the proxy as one node). */
    "echo", "ping", "cluster|info", "cluster|keyslot", "cluster|myid",
    "cluster|nodes", "cluster|shards", "cluster|slots",
    /* One node's view, meaningless behind the proxy. */
    "cluster|countkeysinslot", "cluster|getkeysinslot", "cluster|links",
    "memory|purge", "acl|help", "cluster|help", "config|help",
    "latency|help", "memory|help", "module|help",
    /* Databases other than 0: cluster mode refuses them anyway. */
    "move", "swapdb",
    /* Blocks its connection: Redis flags it blocking from 7.2 only. */
    "wait",
};

static int
route_is_lax(int route)
{
    return route == CMD_ROUTE_ANY || route == CMD_ROUTE_KEYED ||
           route == CMD_ROUTE_ALL || route == CMD_ROUTE_SPLIT;
}

static void
assert_derived_not_laxer(const struct command *b, const struct command *l,
                         int parent_route)
{
    uint8_t d = cmdtable_derive_route(l, parent_route);
    size_t i;

    if (route_is_lax(b->route) || !route_is_lax(d))
        return;
    for (i = 0; i < SP_ARRAY_LEN(name_decided); i++) {
        if (strcmp(name_decided[i], b->fullname) == 0)
            return;
    }
    ck_abort_msg("%s: derived route %d, built-in %d: not in name_decided",
                 b->fullname, d, b->route);
}

START_TEST(test_derived_not_laxer)
{
    struct cmdtable *t = parse_file(file_cases[_i].file);
    size_t i;
    uint16_t s;

    for (i = 0; i < command_count(); i++) {
        const struct command *b = command_at(i);
        const struct command *l = cmdtable_lookup(t, b->name,
                                                  strlen(b->name));
        if (l == NULL)
            continue;
        assert_derived_not_laxer(b, l, -1);
        for (s = 0; s < b->nsubcmds; s++) {
            const struct command *ls = command_lookup_sub(
                l, b->subcmds[s].name, strlen(b->subcmds[s].name));
            if (ls != NULL)
                assert_derived_not_laxer(&b->subcmds[s], ls, b->route);
        }
    }
    cmdtable_free(t);
}
END_TEST

/* What else a merge keeps from each side. */
START_TEST(test_merge_columns)
{
    struct cmdtable *t = fake_table(route_fakes, SP_ARRAY_LEN(route_fakes));
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *m = cmdtable_merge(t, names);
    const struct command *c, *b;

    cmdtable_free(t);
    /* GET: server's arity and flags, built-in route and entry. */
    c = find(m, "get");
    b = command_lookup("get", 3);
    ck_assert_int_eq(c->arity, -2);
    ck_assert_ptr_eq(c->builtin, b);
    ck_assert_str_eq(c->fullname, "get");
    ck_assert_uint_eq(c->flags, CMD_F_READONLY | CMD_F_FAST);
    /* WAIT: the server's tips and blocking flag. */
    c = find(m, "wait");
    ck_assert_int_eq(c->req_policy, CMD_REQ_ALL_SHARDS);
    ck_assert(c->flags & CMD_F_BLOCKING);
    /* CLIENT: union of both sides' subcommands, sorted. */
    c = find(m, "client");
    ck_assert_uint_eq(c->nsubcmds, command_lookup("client", 6)->nsubcmds + 1);
    for (size_t i = 1; i < c->nsubcmds; i++)
        ck_assert_int_lt(strcmp(c->subcmds[i - 1].name, c->subcmds[i].name),
                         0);
    ck_assert_ptr_null(find(m, "client|newsub")->builtin);
    ck_assert_ptr_eq(find(m, "client|kill")->builtin,
                     find(NULL, "client|kill"));
    /* Learned-only: tips kept, module flag, case-insensitive names. */
    c = find(m, "xall");
    ck_assert_int_eq(c->resp_policy, CMD_RESP_AGG_SUM);
    ck_assert_ptr_null(c->builtin);
    c = cmdtable_lookup(m, "Json.Get", 8);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->fullname, "json.get");
    ck_assert(c->flags & CMD_F_MODULE);
    ck_assert_int_eq(find(m, "xnewpolicy")->resp_policy, CMD_RESP_SPECIAL);
    /* Every built-in command is still there. */
    for (size_t i = 0; i < command_count(); i++)
        ck_assert_ptr_nonnull(find(m, command_at(i)->name));
    cmdtable_free(m);
    cmdtable_names_free(names);
}
END_TEST

/* Key procedures assume the built-in arity; a server that says SORT takes
 * no argument must not make them name an argument that is not there. */
START_TEST(test_proc_keys_guarded)
{
    static const struct fake_cmd fakes[] = {
        {"sort", -1, "write movablekeys", "", KS_UNKNOWN},
        {"migrate", -1, "write movablekeys", "", KS_INCOMPLETE},
    };
    struct cmdtable *t = fake_table(fakes, SP_ARRAY_LEN(fakes));
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *m = cmdtable_merge(t, names);
    struct argv_buf a;
    int keys[8];

    argv_set(&a, "SORT");
    ck_assert(command_arity_ok(find(m, "sort"), a.argc));
    ck_assert_int_eq(command_get_keys(find(m, "sort"), a.argc, a.argv,
                                      a.base, keys, 8), -1);
    argv_set(&a, "SORT k");
    ck_assert_int_eq(command_get_keys(find(m, "sort"), a.argc, a.argv,
                                      a.base, keys, 8), 1);
    argv_set(&a, "MIGRATE h 1");
    ck_assert_int_eq(command_get_keys(find(m, "migrate"), a.argc, a.argv,
                                      a.base, keys, 8), -1);
    cmdtable_free(m);
    cmdtable_free(t);
    cmdtable_names_free(names);
}
END_TEST

/* No master answered yet: the merged table is the built-in one. */
START_TEST(test_merge_builtin_only)
{
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *m = cmdtable_merge(NULL, names);
    size_t i;

    ck_assert_uint_eq(cmdtable_count(m), command_count());
    for (i = 0; i < command_count(); i++) {
        const struct command *b = command_at(i);
        const struct command *c = cmdtable_at(m, i);
        ck_assert_str_eq(c->fullname, b->fullname);
        ck_assert_ptr_eq(c->builtin, b);
        ck_assert_ptr_eq(c->keyspecs, b->keyspecs);
        ck_assert_ptr_eq(c->subcmds, b->subcmds);
        ck_assert_int_eq(c->route, b->route);
        ck_assert_int_eq(c->arity, b->arity);
        ck_assert_ptr_eq(cmdtable_lookup(m, b->name, strlen(b->name)), c);
        ck_assert_uint_eq(cmdtable_index(m, c), command_index(b));
    }
    cmdtable_free(m);
    cmdtable_names_free(names);
}
END_TEST

/* Indexes survive rebuilds; built-in names keep command_index(). */
START_TEST(test_stable_indexes)
{
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *t8 = parse_file(F_VALKEY8);
    struct cmdtable *t74 = parse_file(F_REDIS74);
    struct cmdtable *m8 = cmdtable_merge(t8, names);
    struct cmdtable *m74 = cmdtable_merge(t74, names);
    struct cmdtable *m8b = cmdtable_merge(t8, names);
    size_t i, id, limit = cmdtable_index_limit();
    char name[32];

    for (i = 0; i < cmdtable_count(m74); i++) {
        const struct command *c = cmdtable_at(m74, i);
        const struct command *b = command_lookup(c->name, strlen(c->name));
        id = cmdtable_index(m74, c);
        ck_assert_uint_lt(id, limit);
        if (b != NULL)
            ck_assert_uint_eq(id, command_index(b));
        else
            ck_assert_uint_ge(id, command_count());
    }
    /* WAITAOF is built in (a NEWER row): its generated index. HEXPIRE,
     * first seen on Redis 7.4, is the first name beyond the table; a
     * Valkey table without it in between changes nothing. */
    id = cmdtable_index(m8, find(m8, "waitaof"));
    ck_assert_uint_eq(id, command_index(command_lookup("waitaof", 7)));
    ck_assert_uint_eq(cmdtable_index(m74, find(m74, "waitaof")), id);
    ck_assert_uint_eq(cmdtable_index(m8b, find(m8b, "waitaof")), id);
    id = cmdtable_index(m74, find(m74, "hexpire"));
    ck_assert_uint_eq(id, command_count());
    ck_assert_uint_eq(cmdtable_names_id(names, "hexpire"), id);
    ck_assert_uint_eq(cmdtable_index(t8, cmdtable_at(t8, 0)), 0);
    /* The registry is capped; the rest share the last index. */
    for (i = 0; i < CMDTABLE_EXTRA_MAX + 10; i++) {
        snprintf(name, sizeof(name), "mod.cmd%zu", i);
        id = cmdtable_names_id(names, name);
        ck_assert_uint_lt(id, limit);
    }
    ck_assert_uint_eq(id, limit - 1);
    ck_assert_uint_eq(cmdtable_names_id(names, "hexpire"), command_count());
    ck_assert_uint_eq(cmdtable_names_id(names, "get"),
                      command_index(command_lookup("get", 3)));
    cmdtable_free(m8);
    cmdtable_free(m8b);
    cmdtable_free(m74);
    cmdtable_free(t8);
    cmdtable_free(t74);
    cmdtable_names_free(names);
}
END_TEST

static int
notes_have(const struct cmdtable_notes *notes, const char *line)
{
    size_t i;

    for (i = 0; i < notes->n; i++) {
        if (strcmp(notes->lines[i], line) == 0)
            return 1;
    }
    return 0;
}

/* Rolling upgrade 7.0 -> 7.4: the old view wins where they differ. */
START_TEST(test_intersect_versions)
{
    struct cmdtable *t70 = parse_file(F_REDIS70);
    struct cmdtable *t74 = parse_file(F_REDIS74);
    const struct cmdtable *in[] = {t70, t74};
    const char *node[] = {"127.0.0.1:7000", "127.0.0.1:7001"};
    struct cmdtable_notes notes = {0};
    struct cmdtable *x = cmdtable_intersect(in, node, 2, &notes);
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdtable *m;
    const struct command *c;

    ck_assert_uint_eq(cmdtable_count(x), 240);
    ck_assert_int_eq(find(x, "zrank")->arity, 3);
    ck_assert_ptr_null(find(x, "hexpire"));
    ck_assert_ptr_null(find(x, "cluster|myshardid"));
    ck_assert_ptr_nonnull(find(x, "cluster|info"));
    /* WAIT: blocking on 7.4, noscript on 7.0: both restrict. */
    c = find(x, "wait");
    ck_assert_uint_eq(c->flags & (CMD_F_BLOCKING | CMD_F_NOSCRIPT),
                      CMD_F_BLOCKING | CMD_F_NOSCRIPT);
    /* CLUSTER SLOTS: loading on 7.4 only, an allowance: not kept. */
    ck_assert_uint_eq(find(x, "cluster|slots")->flags & CMD_F_LOADING, 0);
    ck_assert(notes_have(&notes, "zrank: arity -3 on 127.0.0.1:7001, 3 on "
                                 "127.0.0.1:7000"));
    ck_assert(notes_have(&notes, "hexpire: missing on 127.0.0.1:7000; "
                                 "not learned"));
    ck_assert(notes_have(&notes, "client|setinfo: missing on "
                                 "127.0.0.1:7000; not learned"));
    ck_assert(notes_have(&notes, "wait: flags -noscript +blocking on "
                                 "127.0.0.1:7001 (against 127.0.0.1:7000)"));
    /* Merged: no HEXPIRE yet, ZRANK WITHSCORE refused by arity. */
    m = cmdtable_merge(x, names);
    ck_assert_ptr_null(find(m, "hexpire"));
    ck_assert(!command_arity_ok(find(m, "zrank"), 4));
    cmdtable_notes_free(&notes);
    cmdtable_free(m);
    cmdtable_free(x);
    cmdtable_free(t70);
    cmdtable_free(t74);
    cmdtable_names_free(names);
}
END_TEST

static const struct fake_cmd isect_a[] = {
    {"foo", 2, "readonly", "", KS_INDEX1},
    {"bar", -2, "readonly fast", "", KS_INDEX1},
    {"baz", 2, "", "", KS_NONE},
    {"cont", -2, "", "", KS_NONE},
    {"cont|a", 2, "", "", KS_NONE},
    {"cont|b", 3, "", "", KS_INDEX2},
};

static const struct fake_cmd isect_b[] = {
    {"foo", 2, "readonly", "", KS_INDEX2},          /* other key */
    {"bar", -3, "write fast", "", KS_INDEX1},
    {"cont", -2, "", "", KS_NONE},
    {"cont|b", 3, "", "", KS_INDEX2},
    {"cont|c", 2, "", "", KS_NONE},
    {"qux", 1, "", "", KS_NONE},
};

/* Hand-made differences, and inputs that do not change. */
START_TEST(test_intersect_fake)
{
    struct cmdtable *a = fake_table(isect_a, SP_ARRAY_LEN(isect_a));
    struct cmdtable *b = fake_table(isect_b, SP_ARRAY_LEN(isect_b));
    const struct cmdtable *in[] = {a, b, a};
    struct cmdtable_notes notes = {0};
    struct cmdtable *x = cmdtable_intersect(in, NULL, 3, &notes);
    const struct command *c;

    ck_assert_ptr_null(find(x, "foo"));
    ck_assert(notes_have(&notes, "foo: key specs differ on node 1 and node "
                                 "0; not learned"));
    c = find(x, "bar");
    ck_assert_int_eq(c->arity, -3);
    ck_assert_uint_eq(c->flags, CMD_F_WRITE | CMD_F_FAST);
    ck_assert(notes_have(&notes, "bar: arity -3 on node 1, -2 on node 0"));
    ck_assert(notes_have(&notes, "bar: flags +write -readonly on node 1 "
                                 "(against node 0)"));
    ck_assert_ptr_null(find(x, "baz"));
    ck_assert(notes_have(&notes, "baz: missing on node 1; not learned"));
    ck_assert_ptr_null(find(x, "qux"));
    ck_assert(notes_have(&notes, "qux: missing on node 0; not learned"));
    c = find(x, "cont");
    ck_assert_uint_eq(c->nsubcmds, 1);
    ck_assert_str_eq(c->subcmds[0].fullname, "cont|b");
    ck_assert(notes_have(&notes, "cont|a: missing on node 1; not learned"));
    ck_assert(notes_have(&notes, "cont|c: missing on node 0; not learned"));
    ck_assert_uint_eq(notes.n, 7);
    ck_assert_uint_eq(notes.dropped, 0);
    /* Inputs untouched. */
    ck_assert_int_eq(find(a, "bar")->arity, -2);
    ck_assert_uint_eq(find(a, "cont")->nsubcmds, 2);
    cmdtable_notes_free(&notes);
    cmdtable_free(x);
    /* One input: a copy. Notes are optional. */
    x = cmdtable_intersect(in, NULL, 1, NULL);
    ck_assert_uint_eq(cmdtable_count(x), cmdtable_count(a));
    cmdtable_free(x);
    cmdtable_free(a);
    cmdtable_free(b);
}
END_TEST

/* More differences than notes kept: counted, not stored. */
START_TEST(test_intersect_notes_capped)
{
    struct cmdtable *t70 = parse_file(F_REDIS70);
    struct cmdtable *tiny = fake_table(isect_a, 1);
    const struct cmdtable *in[] = {t70, tiny};
    struct cmdtable_notes notes = {0};
    struct cmdtable *x = cmdtable_intersect(in, NULL, 2, &notes);

    ck_assert_uint_eq(cmdtable_count(x), 0);
    ck_assert_uint_eq(notes.n, CMDTABLE_MAX_NOTES);
    ck_assert_uint_eq(notes.n + notes.dropped, 241);
    ck_assert_ptr_null(cmdtable_lookup(x, "get", 3));
    cmdtable_notes_free(&notes);
    cmdtable_free(x);
    cmdtable_free(tiny);
    cmdtable_free(t70);
}
END_TEST

/* ------------------------------------------------------------------------
 * Hostile replies
 * ------------------------------------------------------------------------ */

/* A one-command reply around an entry body (the 10 fields after "*10"). */
#define ENTRY(body) "*1\r\n*10\r\n" body
#define PLAIN_TAIL ":1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n"
#define KS_HEAD "*1\r\n*6\r\n$5\r\nflags\r\n*0\r\n"
#define BS_INDEX "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n" \
    "$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n"
#define FK_RANGE(l, s, m) "$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n" \
    "$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:" l "\r\n" \
    "$7\r\nkeystep\r\n:" s "\r\n$5\r\nlimit\r\n:" m "\r\n"
#define KEYED(ks) ENTRY("$1\r\nx\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n" \
    "*0\r\n" ks "*0\r\n")
/* Replies with a NUL byte inside: their length is the literal's. */
#define NUL_NAME ENTRY("$3\r\na\0b\r\n:1\r\n*0\r\n" PLAIN_TAIL)
#define NUL_KEYWORD KEYED(KS_HEAD KW("$3\r\nA\0B\r\n") FK_RANGE("0", "1", "0"))
#define KW(kw) "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n" \
    "$4\r\nspec\r\n*4\r\n$7\r\nkeyword\r\n" kw "$9\r\nstartfrom\r\n:1\r\n"

struct bad_case {
    const char *bytes;
    size_t len;                 /* 0: strlen */
    const char *err;            /* expected substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"", 0, "truncated"},
    {"*1\r\n", 0, "truncated"},
    {"*100000000\r\n", 0, "truncated"},
    {"*1\r\n*x\r\n", 0, "not valid RESP"},
    {"-ERR unknown command 'COMMAND'\r\n", 0, "answered an error: ERR"},
    {":1\r\n", 0, "not an array"},
    {"*-1\r\n", 0, "not an array"},
    {"*0\r\n:1\r\n", 0, "4 bytes after the reply"},
    {"*1\r\n:1\r\n", 0, "entry 0: an entry with 0 fields"},
    {"*1\r\n*2\r\n$1\r\nx\r\n:1\r\n", 0, "an entry with 2 fields"},
    {ENTRY(":1\r\n:1\r\n*0\r\n" PLAIN_TAIL), 0, "name is not a string"},
    {ENTRY("$0\r\n\r\n:1\r\n*0\r\n" PLAIN_TAIL), 0, "name of 0 bytes"},
    {NUL_NAME, sizeof(NUL_NAME) - 1, "name has byte 0x00"},
    {ENTRY("$3\r\na\rb\r\n:1\r\n*0\r\n" PLAIN_TAIL), 0, "byte 0x0d"},
    {ENTRY("$3\r\na b\r\n:1\r\n*0\r\n" PLAIN_TAIL), 0, "byte 0x20"},
    {ENTRY("$3\r\na|b\r\n:1\r\n*0\r\n" PLAIN_TAIL), 0, "'|' in a command"},
    {ENTRY("$1\r\nx\r\n:0\r\n*0\r\n" PLAIN_TAIL), 0, "arity"},
    {ENTRY("$1\r\nx\r\n:40000\r\n*0\r\n" PLAIN_TAIL), 0, "arity"},
    {ENTRY("$1\r\nx\r\n$1\r\n1\r\n*0\r\n" PLAIN_TAIL), 0, "arity"},
    {ENTRY("$1\r\nx\r\n:1\r\n:0\r\n" PLAIN_TAIL), 0, "flags are not"},
    {ENTRY("$1\r\nx\r\n:1\r\n*1\r\n:5\r\n" PLAIN_TAIL), 0, "flag 0 is not"},
    {ENTRY("$1\r\nx\r\n:1\r\n*0\r\n$1\r\n1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n"
           "*0\r\n"), 0, "legacy key position"},
    {ENTRY("$1\r\nx\r\n:1\r\n*0\r\n:1\r\n:1\r\n:1\r\n:0\r\n*0\r\n*0\r\n"
           "*0\r\n"), 0, "ACL categories"},
    {ENTRY("$1\r\nx\r\n:1\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*1\r\n:1\r\n"
           "*0\r\n*0\r\n"), 0, "tip 0 is not a string"},
    {ENTRY("$1\r\nx\r\n:1\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n:1\r\n"
           "*0\r\n"), 0, "key specs are not an array"},
    {ENTRY("$1\r\nx\r\n:1\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n"
           ":1\r\n"), 0, "subcommands are not an array"},
    {KEYED("*1\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"), 0,
     "key spec is not a map"},
    {KEYED("*1\r\n*0\r\n"), 0, "key spec without flags"},
    {KEYED(KS_HEAD FK_RANGE("0", "1", "0") "$5\r\nnotes\r\n$0\r\n\r\n"), 0,
     "begin_search missing"},
    {KEYED(KS_HEAD BS_INDEX "$5\r\nnotes\r\n$0\r\n\r\n"), 0,
     "find_keys missing"},
    {KEYED(KS_HEAD BS_INDEX FK_RANGE("0", "0", "0")), 0,
     "'keystep' 0 out of range"},
    {KEYED(KS_HEAD BS_INDEX FK_RANGE("0", "1", "-1")), 0,
     "'limit' -1 out of range"},
    {KEYED(KS_HEAD BS_INDEX FK_RANGE("99999", "1", "0")), 0,
     "'lastkey' 99999 out of range"},
    {NUL_KEYWORD, sizeof(NUL_KEYWORD) - 1, "keyword has byte 0x00"},
    {KEYED(KS_HEAD KW("$0\r\n\r\n") FK_RANGE("0", "1", "0")), 0,
     "keyword of 0 bytes"},
    {KEYED(KS_HEAD KW(":1\r\n") FK_RANGE("0", "1", "0")), 0,
     "keyword is not a string"},
    {KEYED(KS_HEAD "$12\r\nbegin_search\r\n*2\r\n$4\r\ntype\r\n"
           "$5\r\nindex\r\n" FK_RANGE("0", "1", "0")), 0,
     "begin_search without type and spec"},
    {KEYED(KS_HEAD "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex"
           "\r\n$4\r\nspec\r\n*0\r\n" FK_RANGE("0", "1", "0")), 0,
     "'index' missing"},
    /* Duplicates, nesting, wrong parent. */
    {"*2\r\n*10\r\n$1\r\nx\r\n:1\r\n*0\r\n" PLAIN_TAIL
     "*10\r\n$1\r\nX\r\n:1\r\n*0\r\n" PLAIN_TAIL, 0, "'x' listed twice"},
    {ENTRY("$1\r\nc\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
           "*1\r\n*10\r\n$3\r\nd|a\r\n:2\r\n*0\r\n" PLAIN_TAIL), 0,
     "not a subcommand of 'c'"},
    {ENTRY("$1\r\nc\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
           "*1\r\n*10\r\n$2\r\nc|\r\n:2\r\n*0\r\n" PLAIN_TAIL), 0,
     "not a subcommand of 'c'"},
    {ENTRY("$1\r\nc\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
           "*1\r\n*10\r\n$5\r\nc|a|b\r\n:2\r\n*0\r\n" PLAIN_TAIL), 0,
     "not a subcommand of 'c'"},
    {ENTRY("$1\r\nc\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
           "*2\r\n*10\r\n$3\r\nc|a\r\n:2\r\n*0\r\n" PLAIN_TAIL
           "*10\r\n$3\r\nc|a\r\n:2\r\n*0\r\n" PLAIN_TAIL), 0,
     "'c|a' listed twice"},
    {ENTRY("$1\r\nc\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
           "*1\r\n*10\r\n$3\r\nc|a\r\n:2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n"
           "*0\r\n*0\r\n*1\r\n*10\r\n$5\r\nc|a|b\r\n:2\r\n*0\r\n"
           PLAIN_TAIL), 0, "nested"},
};

START_TEST(test_bad_replies)
{
    const struct bad_case *bc = &bad_cases[_i];
    size_t len = bc->len ? bc->len : strlen(bc->bytes);
    char *copy = malloc(len + 1);   /* exact size, for ASan */
    char err[256];
    struct cmdtable *t;

    memcpy(copy, bc->bytes, len);
    t = cmdtable_parse(copy, len, err, sizeof(err));
    ck_assert_msg(t == NULL, "case %d parsed", _i);
    ck_assert_msg(strstr(err, bc->err) != NULL, "case %d: '%s', want '%s'",
                  _i, err, bc->err);
    ck_assert_int_eq(strncmp(err, "COMMAND reply: ", 15), 0);
    /* A tiny buffer gets a cut, terminated message; none is fine too. */
    ck_assert_ptr_null(cmdtable_parse(copy, len, err, 8));
    ck_assert_uint_eq(strlen(err), 7);
    ck_assert_ptr_null(cmdtable_parse(copy, len, NULL, 0));
    free(copy);
}
END_TEST

/* Too many entries or key specs. */
START_TEST(test_bad_counts)
{
    struct buf b;
    char err[256];
    size_t i;

    buf_init(&b);
    buf_add_array(&b, CMDTABLE_MAX_COMMANDS + 1);
    for (i = 0; i <= CMDTABLE_MAX_COMMANDS; i++)
        buf_append_str(&b, ":1\r\n");
    ck_assert_ptr_null(cmdtable_parse(b.data, b.len, err, sizeof(err)));
    ck_assert_str_eq(err, "COMMAND reply: 8193 commands");
    b.len = 0;
    buf_append_str(&b, ENTRY("$1\r\nx\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"
                             "*0\r\n*0\r\n"));
    buf_add_array(&b, CMDTABLE_MAX_KEYSPECS + 1);
    for (i = 0; i <= CMDTABLE_MAX_KEYSPECS; i++)
        buf_append_str(&b, "*0\r\n");
    buf_append_str(&b, "*0\r\n");
    ck_assert_ptr_null(cmdtable_parse(b.data, b.len, err, sizeof(err)));
    ck_assert_str_eq(err, "COMMAND reply: command 'x': 33 key specs");
    buf_deinit(&b);
}
END_TEST

/* Every prefix of a real reply is refused as truncated; corrupting single
 * bytes never crashes (ASan/UBSan builds check the rest), and whatever
 * still parses merges and finds keys safely. */
START_TEST(test_truncated_and_corrupted)
{
    size_t len, cut, i;
    char *data = load_file(F_REDIS74, &len);
    char err[256];
    struct cmdtable_names *names = cmdtable_names_new();
    uint32_t seed = 12345;

    for (cut = 0; cut < len; cut += (cut < 2048 || len - cut < 1024) ? 1
                                                                      : 61) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, data, cut);
        ck_assert_ptr_null(cmdtable_parse(copy, cut, err, sizeof(err)));
        free(copy);
    }
    for (i = 0; i < 200; i++) {
        char *copy = malloc(len);
        struct cmdtable *t, *m;
        memcpy(copy, data, len);
        copy[prng(&seed) % len] = (char)"\0\r\n*:$-+0159|"[prng(&seed) % 13];
        t = cmdtable_parse(copy, len, err, sizeof(err));
        free(copy);
        if (t == NULL)
            continue;
        m = cmdtable_merge(t, names);
        for (size_t k = 0; k < cmdtable_count(m); k++) {
            const struct command *c = cmdtable_at(m, k);
            assert_same_keys(c->name, c, c, (uint32_t)k + 1, 2);
        }
        cmdtable_free(m);
        cmdtable_free(t);
    }
    free(data);
    cmdtable_names_free(names);
}
END_TEST

/* ------------------------------------------------------------------------
 * Snapshots (cmdsnap.c): what the workers adopt
 * ------------------------------------------------------------------------ */

/* A snapshot from the same reply file on n masters. */
static struct cmdsnap *
snap_from_file(const char *file, size_t n, struct cmdtable_names *names,
               char **data)
{
    const char *rep[3];
    size_t len[3], dlen;
    const char *node[] = {"127.0.0.1:7002", "127.0.0.1:7000",
                          "127.0.0.1:7001"};
    char err[256];

    ck_assert_uint_le(n, 3);
    *data = load_file(file, &dlen);
    for (size_t i = 0; i < n; i++) {
        rep[i] = *data;
        len[i] = dlen;
    }
    struct cmdsnap *s = cmdsnap_new(rep, len, node, n, names, NULL, err,
                                    sizeof(err));
    ck_assert_msg(s != NULL, "%s: %s", file, err);
    return s;
}

/* Every name in a table (and a mixed-case, an over-long and a NUL-bearing
 * variant) finds through cmdtable_lookup what command_lookup finds in the
 * built-in table: the request path's lookup is the same code on both. */
START_TEST(test_snap_builtin_lookup)
{
    struct cmdtable_names *names = cmdtable_names_new();
    struct cmdsnap *s = cmdsnap_new(NULL, NULL, NULL, 0, names, NULL, NULL,
                                    0);
    char up[80], longname[100];

    ck_assert_ptr_null(s->raw);
    ck_assert_uint_eq(s->learned, 0);
    ck_assert_uint_eq(cmdtable_count(s->table), command_count());
    for (size_t i = 0; i < command_count(); i++) {
        const struct command *b = command_at(i);
        size_t n = strlen(b->name);
        ck_assert_uint_lt(n, sizeof(up));
        for (size_t j = 0; j < n; j++)
            up[j] = (char)(j % 2 ? b->name[j] - ('a' <= b->name[j] &&
                                                 b->name[j] <= 'z' ? 32 : 0)
                                 : b->name[j]);
        const struct command *c = cmdtable_lookup(s->table, up, n);
        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(c->fullname, b->fullname);
        ck_assert_int_eq(c->route, b->route);
        ck_assert_uint_eq(cmdtable_index(s->table, c), command_index(b));
        ck_assert_str_eq(cmdsnap_index_name(s, command_index(b)), b->name);
        size_t elen = 0;
        ck_assert_ptr_null(cmdsnap_entry(s, c, &elen));
        ck_assert_uint_eq(elen, 0);
        /* A prefix or a NUL inside is another name. */
        ck_assert_ptr_ne(cmdtable_lookup(s->table, up, n - 1), c);
        up[n] = '\0';
        ck_assert_ptr_null(cmdtable_lookup(s->table, up, n + 1));
    }
    /* Case folds A-Z only: not the bytes around them, not bytes with the
     * top bit set whose low seven bits are a letter. */
    ck_assert_ptr_nonnull(cmdtable_lookup(s->table, "gEt", 3));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "\xc7" "ET", 3));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "G\xc5T", 3));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "@ET", 3));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "GE[", 3));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "g\0t", 3));
    ck_assert_ptr_nonnull(cmdtable_lookup(s->table, "PUBLISH", 7));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "PUBLISh\0", 8));
    memset(longname, 'g', sizeof(longname));
    ck_assert_ptr_null(cmdtable_lookup(s->table, longname,
                                       sizeof(longname)));
    ck_assert_ptr_null(cmdtable_lookup(s->table, "", 0));
    ck_assert_ptr_null(cmdsnap_index_name(s, cmdtable_index_limit() - 1));
    /* References: get adds one, each put drops one (ASan: freed once). */
    ck_assert_ptr_eq(cmdsnap_get(s), s);
    cmdsnap_put(s);
    cmdsnap_put(s);
    cmdsnap_put(NULL);
    cmdtable_names_free(names);
}
END_TEST

/* Redis 7.4 on three masters: the server wins for arity and keys, the
 * proxy's rules for policy; learned names get metric indexes of their own
 * past the built-in ones; the COMMAND family answers with the server's
 * bytes. */
START_TEST(test_snap_redis74)
{
    struct cmdtable_names *names = cmdtable_names_new();
    char *data;
    struct cmdsnap *s = snap_from_file(F_REDIS74, 3, names, &data);
    const struct command *c;
    size_t len;

    ck_assert_uint_eq(s->learned, 250);
    ck_assert_uint_eq(s->dropped, 0);
    ck_assert_int_eq(find(s->table, "zrank")->arity, -3);
    ck_assert_int_eq(find(s->table, "zrank")->route, CMD_ROUTE_KEYED);
    c = find(s->table, "hexpire");
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->route, CMD_ROUTE_KEYED);
    ck_assert_uint_ge(cmdtable_index(s->table, c), command_count());
    ck_assert_str_eq(cmdsnap_index_name(s, cmdtable_index(s->table, c)),
                     "hexpire");
    const char *e = cmdsnap_entry(s, c, &len);
    ck_assert_ptr_nonnull(e);
    ck_assert(len > 20 && e[0] == '*' && memmem(e, len, "hexpire", 7));
    /* Proxy policy wins: refused, local and pinned stay so. */
    ck_assert_int_eq(find(s->table, "waitaof")->route, CMD_ROUTE_REFUSED);
    ck_assert_int_eq(find(s->table, "wait")->route, CMD_ROUTE_REFUSED);
    ck_assert_int_eq(find(s->table, "monitor")->route, CMD_ROUTE_REFUSED);
    ck_assert_int_eq(find(s->table, "cluster|myshardid")->route,
                     CMD_ROUTE_LOCAL);
    ck_assert_int_eq(find(s->table, "blpop")->route, CMD_ROUTE_BLOCKING);
    ck_assert_int_eq(find(s->table, "mget")->route, CMD_ROUTE_SPLIT);
    /* Subcommand entries are cut out of their container's bytes. */
    const struct command *top = find(s->table, "client");
    e = cmdsnap_sub_entry(s, top, find(s->table, "client|list"), &len);
    ck_assert_ptr_nonnull(e);
    ck_assert(memmem(e, len, "client|list", 11) != NULL);
    /* The masters, in any order. */
    const char *same[] = {"127.0.0.1:7000", "127.0.0.1:7001",
                          "127.0.0.1:7002"};
    const char *other[] = {"127.0.0.1:7000", "127.0.0.1:7001",
                           "127.0.0.1:7003"};
    ck_assert(cmdsnap_same_masters(s, same, 3));
    ck_assert(!cmdsnap_same_masters(s, other, 3));
    ck_assert(!cmdsnap_same_masters(s, same, 2));
    /* A rebuild keeps the indexes (metrics stay valid across tables). */
    char *data2;
    struct cmdsnap *s2 = snap_from_file(F_REDIS74, 1, names, &data2);
    ck_assert_uint_eq(cmdtable_index(s2->table, find(s2->table, "hexpire")),
                      cmdtable_index(s->table, c));
    cmdsnap_put(s2);
    cmdsnap_put(s);
    free(data2);
    free(data);
    cmdtable_names_free(names);
}
END_TEST

/* Valkey 8: CLUSTER SLOT-STATS goes to every master and merges by the
 * proxy's rule, not by its (absent) response_policy. */
START_TEST(test_snap_valkey8)
{
    struct cmdtable_names *names = cmdtable_names_new();
    char *data;
    struct cmdsnap *s = snap_from_file(F_VALKEY8, 2, names, &data);
    const struct command *c = find(s->table, "cluster|slot-stats");

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->route, CMD_ROUTE_ALL);
    ck_assert_int_eq(c->merge, CMD_MERGE_SLOTSTATS);
    ck_assert_int_eq(find(s->table, "zrank")->arity, -3);
    cmdsnap_put(s);
    free(data);
    cmdtable_names_free(names);
}
END_TEST

/* A master that refuses COMMAND or answers garbage: no snapshot, an
 * error that says why (cmdlearn.c then keeps the table in force). */
START_TEST(test_snap_bad_replies)
{
    static const char *const bad[] = {
        "-ERR unknown command 'COMMAND', with args beginning with: \r\n",
        "*2\r\n:1\r\n+garbage\r\n",
        "*1\r\n*3\r\n$3\r\nget\r\n:2\r\n*0\r\n",
        "*1\r\n",
        "$5\r\nhello\r\n",
    };
    struct cmdtable_names *names = cmdtable_names_new();
    size_t dlen;
    char *good = load_file(F_REDIS74, &dlen);
    const char *node[] = {"127.0.0.1:7000", "127.0.0.1:7001"};

    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++) {
        const char *rep[] = {good, bad[i]};
        size_t len[] = {dlen, strlen(bad[i])};
        char err[256];
        struct cmdsnap *s = cmdsnap_new(rep, len, node, 2, names, NULL, err,
                                        sizeof(err));
        ck_assert_msg(s == NULL, "bad reply %zu accepted", i);
        ck_assert_msg(err[0] != '\0', "bad reply %zu: no reason", i);
    }
    free(good);
    cmdtable_names_free(names);
}
END_TEST

/* Two masters of one version list a container's subcommands in their own
 * dict orders: the entry is still theirs (COMMAND INFO answers with the
 * server's bytes), and a subcommand that really differs is not. */
#define SUB_LIST "*10\r\n$11\r\nclient|list\r\n:-2\r\n*0\r\n:0\r\n:0\r\n" \
                 ":0\r\n*0\r\n*0\r\n*0\r\n*0\r\n"
#define SUB_ID "*10\r\n$9\r\nclient|id\r\n:2\r\n*0\r\n:0\r\n:0\r\n:0\r\n" \
               "*0\r\n*0\r\n*0\r\n*0\r\n"
#define SUB_ID3 "*10\r\n$9\r\nclient|id\r\n:3\r\n*0\r\n:0\r\n:0\r\n:0\r\n" \
                "*0\r\n*0\r\n*0\r\n*0\r\n"
#define TOP_CLIENT "*1\r\n*10\r\n$6\r\nclient\r\n:-2\r\n*0\r\n:0\r\n:0\r\n" \
                   ":0\r\n*0\r\n*0\r\n*0\r\n*2\r\n"

START_TEST(test_snap_sub_order)
{
    static const char a[] = TOP_CLIENT SUB_LIST SUB_ID;
    static const char b[] = TOP_CLIENT SUB_ID SUB_LIST;
    static const char c[] = TOP_CLIENT SUB_ID3 SUB_LIST;
    const char *node[] = {"127.0.0.1:7000", "127.0.0.1:7001"};
    struct cmdtable_names *names = cmdtable_names_new();
    char err[256];
    size_t len;

    const char *rep_ab[] = {a, b};
    size_t len_ab[] = {sizeof(a) - 1, sizeof(b) - 1};
    struct cmdsnap *s = cmdsnap_new(rep_ab, len_ab, node, 2, names, NULL,
                                    err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    const struct command *top = find(s->table, "client");
    const char *e = cmdsnap_entry(s, top, &len);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(len, sizeof(a) - 1 - 4);
    ck_assert_int_eq(memcmp(e, a + 4, len), 0);
    e = cmdsnap_sub_entry(s, top, find(s->table, "client|id"), &len);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(len, strlen(SUB_ID));
    cmdsnap_put(s);

    const char *rep_ac[] = {a, c};
    size_t len_ac[] = {sizeof(a) - 1, sizeof(c) - 1};
    s = cmdsnap_new(rep_ac, len_ac, node, 2, names, NULL, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_ptr_null(cmdsnap_entry(s, find(s->table, "client"), &len));
    cmdsnap_put(s);
    cmdtable_names_free(names);
}
END_TEST

static Suite *
cmdtable_suite(void)
{
    Suite *s = suite_create("cmdtable");
    TCase *tc = tcase_create("recorded");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_parse_files, 0,
                        (int)SP_ARRAY_LEN(file_cases));
    tcase_add_loop_test(tc, test_spot_checks, 0,
                        (int)SP_ARRAY_LEN(spot_cases));
    tcase_add_test(tc, test_keyspec_details);
    tcase_add_test(tc, test_redis70_equals_builtin);
    tcase_add_test(tc, test_keys_match_builtin);
    tcase_add_loop_test(tc, test_keys_learned, 0,
                        (int)SP_ARRAY_LEN(key_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("merge");
    tcase_add_loop_test(tc, test_merge_routes, 0,
                        (int)SP_ARRAY_LEN(route_cases));
    tcase_add_test(tc, test_merge_columns);
    tcase_add_loop_test(tc, test_derived_not_laxer, 0,
                        (int)SP_ARRAY_LEN(file_cases));
    tcase_add_test(tc, test_proc_keys_guarded);
    tcase_add_test(tc, test_merge_builtin_only);
    tcase_add_test(tc, test_stable_indexes);
    tcase_add_test(tc, test_intersect_versions);
    tcase_add_test(tc, test_intersect_fake);
    tcase_add_test(tc, test_intersect_notes_capped);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_bad_replies, 0,
                        (int)SP_ARRAY_LEN(bad_cases));
    tcase_add_test(tc, test_bad_counts);
    tcase_add_test(tc, test_truncated_and_corrupted);
    tcase_add_test(tc, test_snap_builtin_lookup);
    tcase_add_test(tc, test_snap_redis74);
    tcase_add_test(tc, test_snap_valkey8);
    tcase_add_test(tc, test_snap_bad_replies);
    tcase_add_test(tc, test_snap_sub_order);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cmdtable_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
