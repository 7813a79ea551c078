/* slotproxy - BSD-2-Clause
 *
 * Unit tests for the command table: lookup, arity, subcommands, key
 * extraction, routes and the exact Redis error texts. Table-driven; no
 * network. Every expected key position and error text in the "from Redis"
 * tables below was recorded from redis-server 7.0.15 (COMMAND GETKEYS, and
 * the raw error replies) when the tests were written.
 */
#include "build_config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "resp.h"
#include "util.h"

#define TEST_MAX_ARGS 24
#define TEST_MAX_KEYS 8

/* A request as the parser would hand it over: bytes plus offsets. */
struct test_req {
    char base[2048];                        /* all argument bytes */
    size_t used;                            /* bytes of base in use */
    struct resp_arg argv[TEST_MAX_ARGS];    /* offsets into base */
    uint32_t argc;                          /* arguments so far */
};

static void
req_add(struct test_req *r, const char *p, size_t len)
{
    ck_assert_uint_lt(r->argc, TEST_MAX_ARGS);
    ck_assert_uint_le(r->used + len, sizeof(r->base));
    memcpy(r->base + r->used, p, len);
    r->argv[r->argc].off = (uint32_t)r->used;
    r->argv[r->argc].len = (uint32_t)len;
    r->used += len;
    r->argc++;
}

/* Build from a NULL-terminated list of C strings. */
static void
req_from_strs(struct test_req *r, const char *const *args)
{
    memset(r, 0, sizeof(*r));
    for (; *args != NULL; args++)
        req_add(r, *args, strlen(*args));
}

/* Resolve the command as Redis does: a container with at least one more
 * argument resolves to its subcommand (NULL if unknown). */
static const struct command *
req_command(const struct test_req *r)
{
    const struct command *c;

    c = command_lookup(r->base + r->argv[0].off, r->argv[0].len);
    if (c != NULL && c->nsubcmds > 0 && r->argc >= 2)
        c = command_lookup_sub(c, r->base + r->argv[1].off, r->argv[1].len);
    return c;
}

/* The entry of name (and sub, when not NULL); fails the test when the
 * table lacks it. */
static const struct command *
entry(const char *name, const char *sub)
{
    const struct command *c = command_lookup(name, strlen(name));
    ck_assert_ptr_nonnull(c);
    if (sub != NULL)
        c = command_lookup_sub(c, sub, strlen(sub));
    ck_assert_ptr_nonnull(c);
    return c;
}

/* ------------------------------------------------------------------------
 * Lookup and arity
 * ------------------------------------------------------------------------ */

START_TEST(test_lookup_case_insensitive)
{
    const struct command *c = command_lookup("get", 3);

    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->name, "get");
    ck_assert_ptr_eq(command_lookup("GET", 3), c);
    ck_assert_ptr_eq(command_lookup("gEt", 3), c);
    ck_assert_ptr_eq(command_lookup("GETxyz", 3), c);   /* counted */
    ck_assert_ptr_null(command_lookup("ge", 2));
    ck_assert_ptr_null(command_lookup("gett", 4));
    ck_assert_ptr_null(command_lookup("get\0", 4));
    ck_assert_ptr_null(command_lookup("", 0));
    ck_assert_ptr_null(command_lookup("nosuchcommand", 13));
    /* A NUL inside the name, and names past the lowering buffer. */
    ck_assert_ptr_null(command_lookup("g\0t", 3));
    char longname[200];
    memset(longname, 'A', sizeof(longname));
    ck_assert_ptr_null(command_lookup(longname, sizeof(longname)));
    ck_assert_ptr_null(command_lookup(longname, 64));
    ck_assert_ptr_null(command_lookup(longname, 65));
    ck_assert_ptr_nonnull(command_lookup("RESTORE-ASKING", 14));
    ck_assert_ptr_nonnull(command_lookup("Sort_Ro", 7));
}
END_TEST

/* Every row is reachable by its name in upper case, and subcommands too. */
START_TEST(test_lookup_every_command)
{
    size_t i, n = command_count();
    char up[64];

    ck_assert_uint_ge(n, 200);
    ck_assert_ptr_null(command_at(n));
    for (i = 0; i < n; i++) {
        const struct command *c = command_at(i);
        size_t j, len = strlen(c->name);
        ck_assert_uint_lt(len, sizeof(up));
        for (j = 0; j < len; j++)
            up[j] = (char)(c->name[j] >= 'a' && c->name[j] <= 'z'
                           ? c->name[j] - 32 : c->name[j]);
        ck_assert_ptr_eq(command_lookup(up, len), c);
        ck_assert_str_eq(c->fullname, c->name);
        for (j = 0; j < c->nsubcmds; j++) {
            const struct command *s = &c->subcmds[j];
            ck_assert_ptr_eq(command_lookup_sub(c, s->name, strlen(s->name)),
                             s);
            ck_assert_ptr_eq(s->subcmds, NULL);
        }
    }
}
END_TEST

START_TEST(test_lookup_sub)
{
    const struct command *cfg = command_lookup("config", 6);
    const struct command *get = command_lookup("get", 3);
    const struct command *s;

    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_gt(cfg->nsubcmds, 0);
    s = command_lookup_sub(cfg, "GET", 3);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->name, "get");
    ck_assert_str_eq(s->fullname, "config|get");
    ck_assert_ptr_eq(command_lookup_sub(cfg, "resetSTAT", 9),
                     command_lookup_sub(cfg, "resetstat", 9));
    ck_assert_ptr_null(command_lookup_sub(cfg, "nosuch", 6));
    ck_assert_ptr_null(command_lookup_sub(cfg, "ge", 2));
    ck_assert_ptr_null(command_lookup_sub(cfg, "gets", 4));
    ck_assert_ptr_null(command_lookup_sub(cfg, "", 0));
    ck_assert_ptr_null(command_lookup_sub(get, "x", 1));

    s = command_lookup_sub(command_lookup("CLIENT", 6), "No-Evict", 8);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->fullname, "client|no-evict");
    s = command_lookup_sub(command_lookup("xgroup", 6), "CREATECONSUMER", 14);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->fullname, "xgroup|createconsumer");
}
END_TEST

struct arity_case {
    const char *name;           /* command */
    const char *sub;            /* subcommand or NULL */
    uint32_t argc;              /* argc including the command name(s) */
    int ok;                     /* expected command_arity_ok */
};

static const struct arity_case arity_cases[] = {
    { "get", NULL, 2, 1 },      /* exact 2 */
    { "get", NULL, 1, 0 },
    { "get", NULL, 3, 0 },
    { "set", NULL, 3, 1 },      /* at least 3 */
    { "set", NULL, 7, 1 },
    { "set", NULL, 2, 0 },
    { "mset", NULL, 3, 1 },     /* at least 3 */
    { "mset", NULL, 2, 0 },
    { "del", NULL, 2, 1 },      /* at least 2 */
    { "del", NULL, 1, 0 },
    { "ping", NULL, 1, 1 },     /* at least 1 */
    { "multi", NULL, 1, 1 },    /* exact 1 */
    { "multi", NULL, 2, 0 },
    { "config", NULL, 1, 0 },   /* container: at least 2 */
    { "config", "get", 3, 1 },  /* at least 3 */
    { "config", "get", 2, 0 },
    { "config", "rewrite", 2, 1 },
    { "config", "rewrite", 3, 0 },
    { "object", "encoding", 3, 1 },
    { "object", "encoding", 4, 0 },
    { "eval", NULL, 3, 1 },
    { "eval", NULL, 2, 0 },
};

START_TEST(test_arity)
{
    size_t i;

    for (i = 0; i < SP_ARRAY_LEN(arity_cases); i++) {
        const struct arity_case *t = &arity_cases[i];
        const struct command *c = command_lookup(t->name, strlen(t->name));
        ck_assert_ptr_nonnull(c);
        if (t->sub != NULL)
            c = command_lookup_sub(c, t->sub, strlen(t->sub));
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(command_arity_ok(c, t->argc) == t->ok,
                      "%s %s argc %u", t->name, t->sub ? t->sub : "",
                      t->argc);
    }
}
END_TEST

START_TEST(test_flags)
{
    const struct command *c;

    c = command_lookup("get", 3);
    ck_assert_uint_eq(c->flags & (CMD_F_READONLY | CMD_F_FAST | CMD_F_WRITE),
                      CMD_F_READONLY | CMD_F_FAST);
    c = command_lookup("set", 3);
    ck_assert(c->flags & CMD_F_WRITE);
    ck_assert(c->flags & CMD_F_DENYOOM);
    ck_assert(command_lookup("blpop", 5)->flags & CMD_F_BLOCKING);
    ck_assert(command_lookup("sort", 4)->flags & CMD_F_MOVABLEKEYS);
    ck_assert(command_lookup("auth", 4)->flags & CMD_F_NO_AUTH);
    ck_assert(command_lookup("subscribe", 9)->flags & CMD_F_PUBSUB);
    ck_assert(command_lookup("eval", 4)->flags & CMD_F_NOSCRIPT);
    ck_assert(command_lookup("flushall", 8)->flags & CMD_F_WRITE);
    ck_assert(command_lookup("shutdown", 8)->flags & CMD_F_ADMIN);
}
END_TEST

/* The permission column: which role the proxy lets run a command. */
enum { P_ANY_AUTHED = 0, P_READ_ONLY, P_READ_WRITE, P_ADMIN, P_BEFORE_AUTH };

struct perm_case {
    const char *name;           /* command */
    const char *sub;            /* subcommand or NULL */
    int least;                  /* least role that may run it (P_*) */
};

static const struct perm_case perm_cases[] = {
    { "auth", NULL, P_BEFORE_AUTH }, { "hello", NULL, P_BEFORE_AUTH },
    { "ping", NULL, P_BEFORE_AUTH }, { "quit", NULL, P_BEFORE_AUTH },
    { "get", NULL, P_READ_ONLY },    { "eval_ro", NULL, P_READ_ONLY },
    { "evalsha_ro", NULL, P_READ_ONLY }, { "fcall_ro", NULL, P_READ_ONLY },
    { "subscribe", NULL, P_READ_ONLY }, { "ssubscribe", NULL, P_READ_ONLY },
    { "multi", NULL, P_READ_ONLY },  { "exec", NULL, P_READ_ONLY },
    { "watch", NULL, P_READ_ONLY },  { "select", NULL, P_READ_ONLY },
    { "client", "id", P_READ_ONLY }, { "client", "setname", P_READ_ONLY },
    { "command", "docs", P_READ_ONLY }, { "cluster", "slots", P_READ_ONLY },
    { "script", "exists", P_READ_ONLY }, { "function", "list", P_READ_ONLY },
    { "function", "dump", P_READ_ONLY }, { "object", "help", P_READ_ONLY },
    { "pubsub", "numsub", P_READ_ONLY },
    { "set", NULL, P_READ_WRITE },   { "eval", NULL, P_READ_WRITE },
    { "evalsha", NULL, P_READ_WRITE }, { "fcall", NULL, P_READ_WRITE },
    { "publish", NULL, P_READ_WRITE }, { "spublish", NULL, P_READ_WRITE },
    { "script", "load", P_READ_WRITE }, { "script", "flush", P_READ_WRITE },
    { "script", "kill", P_READ_WRITE }, { "function", "kill", P_READ_WRITE },
    { "function", "load", P_READ_WRITE }, { "wait", NULL, P_READ_WRITE },
    { "slowlog", "get", P_ADMIN },   { "slowlog", "reset", P_ADMIN },
    { "client", "list", P_ADMIN },   { "client", "kill", P_ADMIN },
};

static int
perm_least(const struct command *c)
{
    if (c->flags & CMD_P_BEFORE_AUTH)
        return P_BEFORE_AUTH;
    if (c->flags & CMD_F_ADMIN)
        return P_ADMIN;
    if (c->flags & (CMD_F_READONLY | CMD_P_READ_ROLE))
        return P_READ_ONLY;
    return P_READ_WRITE;
}

START_TEST(test_perms)
{
    const struct perm_case *t = &perm_cases[_i];
    const struct command *c = entry(t->name, t->sub);
    ck_assert_msg(perm_least(c) == t->least, "%s: %d, want %d", c->fullname,
                  perm_least(c), t->least);
}
END_TEST

/* Nothing runs before AUTH that a read-only user could not run, and no
 * command both writes and is open to the read-only role. */
START_TEST(test_perms_invariants)
{
    for (size_t i = 0; i < command_count(); i++) {
        const struct command *c = command_at(i);
        for (int j = -1; j < (int)c->nsubcmds; j++) {
            const struct command *s = j < 0 ? c : &c->subcmds[j];
            if (s->flags & CMD_P_BEFORE_AUTH)
                ck_assert_msg(s->flags & CMD_P_READ_ROLE, "%s", s->fullname);
            if (s->flags & CMD_P_READ_ROLE)
                ck_assert_msg(!(s->flags & (CMD_F_WRITE | CMD_F_ADMIN)), "%s",
                              s->fullname);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Blocking commands: does a request block, and for how long
 * ------------------------------------------------------------------------ */

struct block_case {
    const char *argv[TEST_MAX_ARGS];    /* NULL-terminated request */
    int rc;                             /* enum cmd_block_rc */
    long long ms;                       /* expected timeout when blocking */
    const char *err;                    /* expected error when BAD */
};

#define E_FLOAT "ERR timeout is not a float or out of range"
#define E_INT "ERR timeout is not an integer or out of range"
#define E_NEG "ERR timeout is negative"
#define E_RANGE "ERR timeout is out of range"

/* Checked against redis-server 7.0.15 (which blocks, which errors);
 * values whose conversion is undefined behaviour there (inf, 1e400) get
 * Redis 7.2's "out of range". */
static const struct block_case block_cases[] = {
    /* Where the timeout is. */
    { { "BLPOP", "k", "0", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "blpop", "a", "b", "1.5", NULL }, CMD_BLOCK_YES, 1500, NULL },
    { { "BRPOPLPUSH", "a", "b", "2", NULL }, CMD_BLOCK_YES, 2000, NULL },
    { { "BLMOVE", "a", "b", "LEFT", "RIGHT", "3", NULL }, CMD_BLOCK_YES,
      3000, NULL },
    { { "BLMPOP", "4", "1", "k", "LEFT", NULL }, CMD_BLOCK_YES, 4000, NULL },
    { { "BZMPOP", "0.25", "2", "a", "b", "MIN", NULL }, CMD_BLOCK_YES, 250,
      NULL },
    { { "BZPOPMIN", "k", "5", NULL }, CMD_BLOCK_YES, 5000, NULL },
    { { "GET", "k", NULL }, CMD_BLOCK_NO, 0, NULL },
    { { "LPOP", "k", NULL }, CMD_BLOCK_NO, 0, NULL },
    /* Timeouts as Redis reads them. */
    { { "BLPOP", "k", "inf", NULL }, CMD_BLOCK_BAD, 0, E_RANGE },
    { { "BLPOP", "k", "+inf", NULL }, CMD_BLOCK_BAD, 0, E_RANGE },
    { { "BLPOP", "k", "infinity", NULL }, CMD_BLOCK_BAD, 0, E_RANGE },
    { { "BLPOP", "k", "-inf", NULL }, CMD_BLOCK_BAD, 0, E_NEG },
    { { "BLPOP", "k", "1e400", NULL }, CMD_BLOCK_BAD, 0, E_RANGE },
    { { "BLPOP", "k", "1e300", NULL }, CMD_BLOCK_BAD, 0, E_RANGE },
    { { "BLPOP", "k", "1e5000", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", "-1e5000", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", "nan", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", "-nan", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", "-1", NULL }, CMD_BLOCK_BAD, 0, E_NEG },
    { { "BLPOP", "k", "-0.002", NULL }, CMD_BLOCK_BAD, 0, E_NEG },
    /* -0.001 * 1000 is just above -1 in a long double: Redis blocks. */
    { { "BLPOP", "k", "-0.001", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "BLPOP", "k", "-0", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "BLPOP", "k", "-0.0001", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "BLPOP", "k", "0.0001", NULL }, CMD_BLOCK_YES, 1, NULL },
    { { "BLPOP", "k", "1e-400", NULL }, CMD_BLOCK_YES, 1, NULL },
    { { "BLPOP", "k", "0.0015", NULL }, CMD_BLOCK_YES, 2, NULL },
    { { "BLPOP", "k", "0x10", NULL }, CMD_BLOCK_YES, 16000, NULL },
    { { "BLPOP", "k", "1e15", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "BLPOP", "k", "", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", " 1", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", "1 ", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLPOP", "k", "1x", NULL }, CMD_BLOCK_BAD, 0, E_FLOAT },
    { { "BLMPOP", "nan", "1", "k", "LEFT", NULL }, CMD_BLOCK_BAD, 0,
      E_FLOAT },
    { { "BZMPOP", "-2", "1", "k", "MAX", NULL }, CMD_BLOCK_BAD, 0, E_NEG },
    /* XREAD/XREADGROUP: the option walk, not a keyword scan. */
    { { "XREAD", "STREAMS", "s", "0", NULL }, CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "BLOCK", "0", "STREAMS", "s", "0", NULL }, CMD_BLOCK_YES,
      0, NULL },
    { { "xread", "count", "1", "block", "250", "streams", "s", "0", NULL },
      CMD_BLOCK_YES, 250, NULL },
    { { "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "block", "streams",
        "0", "0", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "XREAD", "STREAMS", "block", "0", NULL }, CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "STREAMS", "block", "5", "0", "0", NULL }, CMD_BLOCK_NO, 0,
      NULL },
    { { "XREADGROUP", "GROUP", "streams", "c", "BLOCK", "0", "STREAMS",
        "s", ">", NULL }, CMD_BLOCK_YES, 0, NULL },
    { { "XREADGROUP", "GROUP", "g", "streams", "BLOCK", "100", "STREAMS",
        "s", ">", NULL }, CMD_BLOCK_YES, 100, NULL },
    { { "XREADGROUP", "GROUP", "block", "block", "STREAMS", "s", ">",
        NULL }, CMD_BLOCK_NO, 0, NULL },
    { { "XREADGROUP", "GROUP", "g", "block", "COUNT", "1", "NOACK",
        "BLOCK", "7", "STREAMS", "block", ">", NULL }, CMD_BLOCK_YES, 7,
      NULL },
    { { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">", NULL },
      CMD_BLOCK_NO, 0, NULL },
    { { "XREADGROUP", "BLOCK", "0", "STREAMS", "s", ">", NULL },
      CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", "0",
        NULL }, CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "BLOCK", "0", "STREAMS", "s", NULL }, CMD_BLOCK_NO, 0,
      NULL },
    { { "XREAD", "BLOCK", "0", "STREAMS", "a", "b", "0", NULL },
      CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "BLOCK", "0", "BOGUS", "STREAMS", "s", "0", NULL },
      CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "COUNT", "x", "BLOCK", "-1", "STREAMS", "s", "0", NULL },
      CMD_BLOCK_NO, 0, NULL },
    { { "XREAD", "BLOCK", "-1", "STREAMS", "s", "0", NULL }, CMD_BLOCK_BAD,
      0, E_NEG },
    { { "XREAD", "BLOCK", "1.5", "STREAMS", "s", "0", NULL }, CMD_BLOCK_BAD,
      0, E_INT },
    { { "XREAD", "BLOCK", "inf", "STREAMS", "s", "0", NULL }, CMD_BLOCK_BAD,
      0, E_INT },
    { { "XREAD", "BLOCK", "01", "STREAMS", "s", "0", NULL }, CMD_BLOCK_BAD,
      0, E_INT },
    { { "XREAD", "BLOCK", "9223372036854775808", "STREAMS", "s", "0", NULL },
      CMD_BLOCK_BAD, 0, E_INT },
    { { "XREAD", "BLOCK", "9223372036854775807", "STREAMS", "s", "0", NULL },
      CMD_BLOCK_YES, 0, NULL },
    { { "XREAD", "BLOCK", "5", "BLOCK", "0", "STREAMS", "s", "0", NULL },
      CMD_BLOCK_YES, 0, NULL },
    { { "XREAD", "BLOCK", "-5", "BLOCK", "0", "STREAMS", "s", "0", NULL },
      CMD_BLOCK_BAD, 0, E_NEG },
    /* BLOCK as the last argument has no value: a syntax error. */
    { { "XREAD", "STREAMS", "s", "0", "BLOCK", NULL }, CMD_BLOCK_NO, 0,
      NULL },
};

START_TEST(test_block_timeout)
{
    const struct block_case *t = &block_cases[_i];
    struct test_req r;
    const struct command *c;
    const char *err = "unset";
    long long ms = -42;
    int rc;

    req_from_strs(&r, t->argv);
    c = req_command(&r);
    ck_assert_ptr_nonnull(c);
    rc = command_block_timeout(c, r.argc, r.argv, r.base, &ms, &err);
    ck_assert_msg(rc == t->rc, "case %d (%s %s %s): rc %d, want %d", _i,
                  t->argv[0], t->argv[1], t->argv[2], rc, t->rc);
    if (rc == CMD_BLOCK_YES)
        ck_assert_msg(ms == t->ms, "case %d: ms %lld, want %lld", _i, ms,
                      t->ms);
    if (rc == CMD_BLOCK_BAD)
        ck_assert_str_eq(err, t->err);
    else
        ck_assert_ptr_null(err);
}
END_TEST

/* A learned entry keeps its generated entry's timeout position; a
 * blocking command only the server knows blocks forever (pinned), never
 * on a shared connection. */
START_TEST(test_block_learned_entries)
{
    const struct command *blpop = command_lookup("blpop", 5);
    struct command learned = *blpop;
    struct command unknown = { .name = "bnew", .fullname = "bnew",
                               .arity = -2, .flags = CMD_F_BLOCKING };
    struct test_req r;
    static const char *const args[] = { "BLPOP", "k", "2.5", NULL };
    long long ms = -1;
    const char *err;

    learned.builtin = blpop;
    req_from_strs(&r, args);
    ck_assert_int_eq(command_block_timeout(&learned, r.argc, r.argv, r.base,
                                           &ms, &err), CMD_BLOCK_YES);
    ck_assert_int_eq(ms, 2500);
    ck_assert_int_eq(command_block_timeout(&unknown, r.argc, r.argv, r.base,
                                           &ms, &err), CMD_BLOCK_YES);
    ck_assert_int_eq(ms, 0);
    unknown.flags = 0;
    ck_assert_int_eq(command_block_timeout(&unknown, r.argc, r.argv, r.base,
                                           &ms, &err), CMD_BLOCK_NO);
}
END_TEST

/* Every command Redis flags as blocking has a generated timeout position:
 * with every argument "0" it blocks forever (XREAD's walk finds no BLOCK
 * option there and says it does not block). */
START_TEST(test_block_every_blocking_command)
{
    static const char zeros[8] = "0000000";
    size_t i, nblocking = 0;

    for (i = 0; i < command_count(); i++) {
        const struct command *c = command_at(i);
        struct resp_arg argv[8];
        long long ms = -1;
        const char *err;
        uint32_t j, argc = c->arity < 0 ? (uint32_t)-c->arity
                                        : (uint32_t)c->arity;
        int rc;

        if (!(c->flags & CMD_F_BLOCKING))
            continue;
        nblocking++;
        ck_assert_uint_le(argc, SP_ARRAY_LEN(argv));
        for (j = 0; j < argc; j++) {
            argv[j].off = j;
            argv[j].len = 1;
        }
        rc = command_block_timeout(c, argc, argv, zeros, &ms, &err);
        if (c->keyspecs[0].bs_type == CMD_BS_KEYWORD) {
            ck_assert_int_eq(rc, CMD_BLOCK_NO);
        } else {
            ck_assert_msg(rc == CMD_BLOCK_YES, "%s", c->name);
            ck_assert_int_eq(ms, 0);
        }
    }
    ck_assert_uint_ge(nblocking, 10);
}
END_TEST

/* ------------------------------------------------------------------------
 * Key extraction
 * ------------------------------------------------------------------------ */

struct key_case {
    const char *argv[TEST_MAX_ARGS];    /* NULL-terminated request */
    int nkeys;                          /* expected return, -1 = invalid */
    int keys[TEST_MAX_KEYS];            /* expected argv indexes */
};

/* From Redis: `COMMAND GETKEYS <argv>` on redis-server 7.0.15, names mapped
 * back to their argv index. */
static const struct key_case redis_key_cases[] = {
    { { "GET", "k", NULL }, 1, { 1 } },
    { { "get", "k", NULL }, 1, { 1 } },
    { { "SET", "k", "v", NULL }, 1, { 1 } },
    { { "SET", "k", "v", "GET", "EX", "10", NULL }, 1, { 1 } },
    { { "MSET", "a", "1", "b", "2", "c", "3", NULL }, 3, { 1, 3, 5 } },
    { { "MGET", "a", "b", "c", NULL }, 3, { 1, 2, 3 } },
    { { "DEL", "a", "b", "c", NULL }, 3, { 1, 2, 3 } },
    { { "UNLINK", "a", "b", NULL }, 2, { 1, 2 } },
    { { "EXISTS", "a", "b", NULL }, 2, { 1, 2 } },
    { { "TOUCH", "a", NULL }, 1, { 1 } },
    { { "EVAL", "s", "0", NULL }, 0, { 0 } },
    { { "EVAL", "s", "2", "k1", "k2", "a1", "a2", NULL }, 2, { 3, 4 } },
    { { "EVALSHA", "sha", "1", "k1", "a1", NULL }, 1, { 3 } },
    { { "EVAL_RO", "s", "3", "k1", "k2", "k3", NULL }, 3, { 3, 4, 5 } },
    { { "EVALSHA_RO", "sha", "0", "a1", NULL }, 0, { 0 } },
    { { "FCALL", "f", "0", "a", NULL }, 0, { 0 } },
    { { "FCALL", "f", "2", "k1", "k2", "a", NULL }, 2, { 3, 4 } },
    { { "FCALL_RO", "f", "1", "k1", NULL }, 1, { 3 } },
    { { "ZUNIONSTORE", "d", "2", "s1", "s2", "WEIGHTS", "1", "2",
        NULL }, 3, { 1, 3, 4 } },
    { { "ZINTERSTORE", "d", "3", "s1", "s2", "s3", NULL }, 4, { 1, 3, 4, 5 } },
    { { "ZDIFFSTORE", "d", "2", "s1", "s2", NULL }, 3, { 1, 3, 4 } },
    { { "ZUNION", "2", "s1", "s2", "WITHSCORES", NULL }, 2, { 2, 3 } },
    { { "ZINTER", "2", "s1", "s2", NULL }, 2, { 2, 3 } },
    { { "ZDIFF", "3", "s1", "s2", "s3", NULL }, 3, { 2, 3, 4 } },
    { { "ZINTERCARD", "2", "s1", "s2", "LIMIT", "5", NULL }, 2, { 2, 3 } },
    { { "LMPOP", "2", "l1", "l2", "LEFT", "COUNT", "3", NULL }, 2, { 2, 3 } },
    { { "ZMPOP", "1", "z1", "MIN", NULL }, 1, { 2 } },
    { { "BLMPOP", "0", "2", "l1", "l2", "RIGHT", NULL }, 2, { 3, 4 } },
    { { "BZMPOP", "1.5", "2", "z1", "z2", "MAX", "COUNT", "2",
        NULL }, 2, { 3, 4 } },
    { { "SINTERCARD", "3", "s1", "s2", "s3", NULL }, 3, { 2, 3, 4 } },
    { { "XREAD", "STREAMS", "s1", "s2", "0", "1", NULL }, 2, { 2, 3 } },
    { { "XREAD", "COUNT", "10", "BLOCK", "100", "STREAMS", "s1", "s2", "s3",
        "0", "1", "2", NULL }, 3, { 6, 7, 8 } },
    { { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">",
        NULL }, 1, { 5 } },
    { { "XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "0", "NOACK",
        "STREAMS", "s1", "s2", ">", "0", NULL }, 2, { 10, 11 } },
    /* Groups, consumers and keys named like the grammar's keywords. */
    { { "XREADGROUP", "GROUP", "streams", "c", "BLOCK", "0", "STREAMS", "s",
        ">", NULL }, 1, { 7 } },
    { { "XREADGROUP", "GROUP", "g", "streams", "COUNT", "1", "BLOCK", "0",
        "STREAMS", "block", ">", NULL }, 1, { 9 } },
    { { "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "block", "streams",
        "0", "0", NULL }, 2, { 6, 7 } },
    { { "XREADGROUP", "GROUP", "streams", "streams", "STREAMS", "streams",
        ">", NULL }, 1, { 5 } },
    { { "SORT", "k", NULL }, 1, { 1 } },
    { { "SORT", "k", "BY", "w_*", "LIMIT", "0", "10", "GET", "o_*", "ALPHA",
        "STORE", "dst", NULL }, 2, { 1, 11 } },
    { { "SORT", "k", "STORE", "d1", "STORE", "d2", NULL }, 2, { 1, 5 } },
    { { "SORT_RO", "k", "BY", "w_*", "GET", "o_*", NULL }, 1, { 1 } },
    { { "MIGRATE", "h", "6379", "k", "0", "5000", NULL }, 1, { 3 } },
    { { "MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE",
        NULL }, 1, { 3 } },
    { { "MIGRATE", "h", "6379", "", "0", "5000", "COPY", "REPLACE", "AUTH",
        "pw", "KEYS", "k1", "k2", "k3", NULL }, 3, { 11, 12, 13 } },
    { { "MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "p", "KEYS",
        "k1", NULL }, 1, { 10 } },
    { { "OBJECT", "ENCODING", "k", NULL }, 1, { 2 } },
    { { "OBJECT", "FREQ", "k", NULL }, 1, { 2 } },
    { { "MEMORY", "USAGE", "k", "SAMPLES", "5", NULL }, 1, { 2 } },
    { { "GEORADIUS", "g", "0", "0", "10", "km", "STORE", "d",
        NULL }, 2, { 1, 7 } },
    { { "GEORADIUS", "g", "0", "0", "10", "km", "WITHDIST", "STOREDIST", "d",
        NULL }, 2, { 1, 8 } },
    { { "GEORADIUSBYMEMBER", "g", "m", "10", "km", "STORE", "d",
        NULL }, 2, { 1, 6 } },
    { { "GEORADIUS_RO", "g", "0", "0", "10", "km", NULL }, 1, { 1 } },
    { { "GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km",
        NULL }, 2, { 1, 2 } },
    { { "BITOP", "AND", "d", "s1", "s2", "s3", NULL }, 4, { 2, 3, 4, 5 } },
    { { "RENAME", "a", "b", NULL }, 2, { 1, 2 } },
    { { "SMOVE", "s", "d", "m", NULL }, 2, { 1, 2 } },
    { { "LMOVE", "s", "d", "LEFT", "RIGHT", NULL }, 2, { 1, 2 } },
    { { "COPY", "s", "d", "REPLACE", NULL }, 2, { 1, 2 } },
    { { "PFCOUNT", "h1", "h2", NULL }, 2, { 1, 2 } },
    { { "PFMERGE", "d", "h1", "h2", NULL }, 3, { 1, 2, 3 } },
    { { "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM", NULL }, 1, { 2 } },
    { { "XINFO", "STREAM", "s", "FULL", NULL }, 1, { 2 } },
    { { "BLPOP", "l1", "l2", "0", NULL }, 2, { 1, 2 } },
    { { "BRPOPLPUSH", "s", "d", "0", NULL }, 2, { 1, 2 } },
    { { "WATCH", "a", "b", NULL }, 2, { 1, 2 } },
    { { "LCS", "a", "b", NULL }, 2, { 1, 2 } },
    { { "BITFIELD", "k", "GET", "u8", "0", NULL }, 1, { 1 } },
    { { "RESTORE", "k", "0", "payload", NULL }, 1, { 1 } },
    { { "XADD", "s", "*", "f", "v", NULL }, 1, { 1 } },
    { { "MSETNX", "a", "1", "b", "2", NULL }, 2, { 1, 3 } },
    { { "RPOPLPUSH", "s", "d", NULL }, 2, { 1, 2 } },
    { { "ZRANGESTORE", "d", "s", "0", "-1", NULL }, 2, { 1, 2 } },
    { { "BZPOPMIN", "z1", "z2", "0", NULL }, 2, { 1, 2 } },
    { { "SDIFFSTORE", "d", "s1", "s2", NULL }, 3, { 1, 2, 3 } },
    { { "BLMOVE", "s", "d", "LEFT", "LEFT", "0", NULL }, 2, { 1, 2 } },
    { { "HSET", "h", "f", "v", NULL }, 1, { 1 } },
    { { "EXPIRE", "k", "10", NULL }, 1, { 1 } },
    { { "DUMP", "k", NULL }, 1, { 1 } },
    { { "TYPE", "k", NULL }, 1, { 1 } },
};

/*
 * The proxy's own contract where Redis has none to compare with.
 * Inconsistent numkeys (too big, negative, not a strict integer), MIGRATE
 * KEYS with a non-empty key, an odd XREAD tail: -1 (Redis's COMMAND GETKEYS
 * answers these with an error, or with [] for no-mandatory-keys commands
 * like EVAL). numkeys 0 gives no keys rather than an error, so that the
 * router may send the command to any master. Sharded pub/sub channels are
 * returned like keys: Redis marks them NOT_KEY (GETKEYS refuses them) but
 * routes them by the channel's slot, and so does the proxy.
 */
static const struct key_case contract_key_cases[] = {
    { { "EVAL", "s", "5", "k1", NULL }, -1, { 0 } },
    { { "EVAL", "s", "-1", "k1", NULL }, -1, { 0 } },
    { { "EVAL", "s", "abc", "k1", NULL }, -1, { 0 } },
    { { "EVAL", "s", "01", "k1", NULL }, -1, { 0 } },
    { { "ZUNIONSTORE", "d", "5", "s1", NULL }, -1, { 0 } },
    { { "LMPOP", "3", "l1", "LEFT", NULL }, -1, { 0 } },
    { { "SINTERCARD", "x", "s1", NULL }, -1, { 0 } },
    { { "MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "a",
        NULL }, -1, { 0 } },
    { { "XREAD", "COUNT", "1", "STREAMS", "s1", NULL }, -1, { 0 } },
    { { "ZINTER", "-2", "s1", "s2", NULL }, -1, { 0 } },
    { { "FCALL", "f", "99999999999999999999", "k", NULL }, -1, { 0 } },
    { { "ZUNIONSTORE", "d", "0", NULL }, 1, { 1 } },
    { { "ZUNION", "0", NULL }, 0, { 0 } },
    { { "XREAD", "STREAMS", NULL }, 0, { 0 } },
    { { "GEORADIUS", "g", "0", "0", "10", "km", "STORE", NULL }, 1, { 1 } },
    { { "SPUBLISH", "ch", "msg", NULL }, 1, { 1 } },
    { { "SSUBSCRIBE", "c1", "c2", NULL }, 2, { 1, 2 } },
    { { "SUNSUBSCRIBE", "c1", NULL }, 1, { 1 } },
    { { "OBJECT", "HELP", NULL }, 0, { 0 } },
    { { "PING", NULL }, 0, { 0 } },
    { { "GET", NULL }, -1, { 0 } },
};

static void
check_key_case(const struct key_case *t)
{
    struct test_req r;
    const struct command *c;
    int keys[TEST_MAX_ARGS];
    int n, i;

    req_from_strs(&r, t->argv);
    c = req_command(&r);
    ck_assert_msg(c != NULL, "%s: unknown", t->argv[0]);
    n = command_get_keys(c, r.argc, r.argv, r.base, keys, TEST_MAX_ARGS);
    ck_assert_msg(n == t->nkeys, "%s %s: %d keys, expected %d", t->argv[0],
                  t->argv[1] ? t->argv[1] : "", n, t->nkeys);
    for (i = 0; i < n; i++)
        ck_assert_msg(keys[i] == t->keys[i], "%s: key %d at %d, expected %d",
                      t->argv[0], i, keys[i], t->keys[i]);
}

START_TEST(test_keys_from_redis)
{
    check_key_case(&redis_key_cases[_i]);
}
END_TEST

START_TEST(test_keys_contract)
{
    check_key_case(&contract_key_cases[_i]);
}
END_TEST

/* keys[] is never written past max; the return value counts what was. */
START_TEST(test_keys_max)
{
    static const char *const mset[] = { "MSET", "a", "1", "b", "2", "c", "3",
                                        NULL };
    static const char *const sort[] = { "SORT", "k", "STORE", "d", NULL };
    struct test_req r;
    int keys[4] = { -7, -7, -7, -7 };

    req_from_strs(&r, mset);
    ck_assert_int_eq(command_get_keys(req_command(&r), r.argc, r.argv, r.base,
                                      keys, 2), 2);
    ck_assert_int_eq(keys[0], 1);
    ck_assert_int_eq(keys[1], 3);
    ck_assert_int_eq(keys[2], -7);
    req_from_strs(&r, sort);
    ck_assert_int_eq(command_get_keys(req_command(&r), r.argc, r.argv, r.base,
                                      keys, 1), 1);
    ck_assert_int_eq(keys[0], 1);
    ck_assert_int_eq(command_get_keys(req_command(&r), r.argc, r.argv, r.base,
                                      keys, 0), 0);
}
END_TEST

/* Fill a synthetic request for c: name (and subcommand), then argc - 1
 * copies of fill. */
static void
req_synthetic(struct test_req *r, const struct command *parent,
              const struct command *c, uint32_t argc, const char *fill)
{
    memset(r, 0, sizeof(*r));
    if (parent != NULL)
        req_add(r, parent->name, strlen(parent->name));
    req_add(r, c->name, strlen(c->name));
    while (r->argc < argc)
        req_add(r, fill, strlen(fill));
}

/* Every key index returned for any synthetic request is inside argv. */
static void
check_synthetic(const struct command *parent, const struct command *c)
{
    const char *fills[4] = { "1", "2", "t", NULL };
    uint32_t min = (uint32_t)(c->arity < 0 ? -c->arity : c->arity);
    uint32_t max = c->arity < 0 ? min + 8 : min;
    uint32_t argc;
    size_t f;

    /* The keyword of a KEYWORD spec as filler makes the search succeed. */
    if (c->nkeyspecs > 0 && c->keyspecs[0].bs_type == CMD_BS_KEYWORD)
        fills[3] = c->keyspecs[0].bs_keyword;
    for (argc = min; argc <= max; argc++) {
        for (f = 0; f < SP_ARRAY_LEN(fills) && fills[f] != NULL; f++) {
            struct test_req r;
            int keys[TEST_MAX_ARGS];
            int n, i;

            req_synthetic(&r, parent, c, argc, fills[f]);
            n = command_get_keys(c, r.argc, r.argv, r.base, keys,
                                 TEST_MAX_ARGS);
            ck_assert_msg(n >= -1 && n < (int)argc, "%s argc %u: %d keys",
                          c->fullname, argc, n);
            for (i = 0; i < n; i++)
                ck_assert_msg(keys[i] >= 1 && keys[i] < (int)argc,
                              "%s argc %u fill %s: key index %d",
                              c->fullname, argc, fills[f], keys[i]);
        }
    }
}

START_TEST(test_keys_full_table_in_range)
{
    size_t i, j;

    for (i = 0; i < command_count(); i++) {
        const struct command *c = command_at(i);
        if (c->nkeyspecs > 0)
            check_synthetic(NULL, c);
        for (j = 0; j < c->nsubcmds; j++) {
            if (c->subcmds[j].nkeyspecs > 0)
                check_synthetic(c, &c->subcmds[j]);
        }
    }
}
END_TEST

/* A fixed-arity command with key specs yields at least one key at its
 * exact arity: catches a spec translated wrongly by the generator. */
START_TEST(test_keys_fixed_arity_nonempty)
{
    size_t i;

    for (i = 0; i < command_count(); i++) {
        const struct command *c = command_at(i);
        struct test_req r;
        int keys[TEST_MAX_ARGS];

        if (c->nkeyspecs == 0 || c->arity < 0 || c->nsubcmds > 0)
            continue;
        req_synthetic(&r, NULL, c, (uint32_t)c->arity, "k");
        ck_assert_msg(command_get_keys(c, r.argc, r.argv, r.base, keys,
                                       TEST_MAX_ARGS) > 0, "%s", c->name);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Routes
 * ------------------------------------------------------------------------ */

struct route_case {
    const char *name;           /* command */
    const char *sub;            /* subcommand or NULL */
    enum cmd_route route;       /* expected route */
};

static const struct route_case route_cases[] = {
    { "get", NULL, CMD_ROUTE_KEYED },
    { "eval", NULL, CMD_ROUTE_KEYED },
    { "migrate", NULL, CMD_ROUTE_KEYED },
    { "spublish", NULL, CMD_ROUTE_KEYED },
    { "object", "encoding", CMD_ROUTE_KEYED },
    { "memory", "usage", CMD_ROUTE_KEYED },
    { "mget", NULL, CMD_ROUTE_SPLIT },
    { "mset", NULL, CMD_ROUTE_SPLIT },
    { "del", NULL, CMD_ROUTE_SPLIT },
    { "unlink", NULL, CMD_ROUTE_SPLIT },
    { "exists", NULL, CMD_ROUTE_SPLIT },
    { "touch", NULL, CMD_ROUTE_SPLIT },
    { "time", NULL, CMD_ROUTE_ANY },
    { "publish", NULL, CMD_ROUTE_ANY },
    { "pubsub", "channels", CMD_ROUTE_ALL },
    { "pubsub", "numsub", CMD_ROUTE_ALL },
    { "pubsub", "help", CMD_ROUTE_ANY },
    { "lolwut", NULL, CMD_ROUTE_ANY },
    { "dbsize", NULL, CMD_ROUTE_ALL },
    { "keys", NULL, CMD_ROUTE_ALL },
    { "scan", NULL, CMD_ROUTE_ALL },
    { "flushall", NULL, CMD_ROUTE_ALL },
    { "script", "load", CMD_ROUTE_ALL },
    { "script", "kill", CMD_ROUTE_ALL },
    { "function", "load", CMD_ROUTE_ALL },
    { "ping", NULL, CMD_ROUTE_LOCAL },
    { "hello", NULL, CMD_ROUTE_LOCAL },
    { "client", "kill", CMD_ROUTE_LOCAL },
    { "command", "getkeys", CMD_ROUTE_LOCAL },
    { "cluster", "keyslot", CMD_ROUTE_LOCAL },
    { "cluster", "slots", CMD_ROUTE_LOCAL },
    { "readonly", NULL, CMD_ROUTE_LOCAL },
    { "multi", NULL, CMD_ROUTE_TXN },
    { "watch", NULL, CMD_ROUTE_TXN },
    { "blpop", NULL, CMD_ROUTE_BLOCKING },
    { "bzmpop", NULL, CMD_ROUTE_BLOCKING },
    { "xread", NULL, CMD_ROUTE_BLOCKING },
    { "xreadgroup", NULL, CMD_ROUTE_BLOCKING },
    { "wait", NULL, CMD_ROUTE_REFUSED },
    { "waitaof", NULL, CMD_ROUTE_REFUSED },
    { "client", "setinfo", CMD_ROUTE_LOCAL },
    { "client", "no-touch", CMD_ROUTE_LOCAL },
    { "cluster", "myshardid", CMD_ROUTE_LOCAL },
    { "subscribe", NULL, CMD_ROUTE_PUBSUB },
    { "ssubscribe", NULL, CMD_ROUTE_PUBSUB },
    { "config", NULL, CMD_ROUTE_REFUSED },
    { "config", "get", CMD_ROUTE_REFUSED },
    { "cluster", "addslots", CMD_ROUTE_REFUSED },
    { "memory", "stats", CMD_ROUTE_REFUSED },
    { "script", "debug", CMD_ROUTE_REFUSED },
    { "monitor", NULL, CMD_ROUTE_REFUSED },
    { "swapdb", NULL, CMD_ROUTE_REFUSED },
    { "move", NULL, CMD_ROUTE_REFUSED },
};

START_TEST(test_routes)
{
    const struct route_case *t = &route_cases[_i];
    const struct command *c = entry(t->name, t->sub);
    ck_assert_msg(c->route == t->route, "%s: route %d, expected %d",
                  c->fullname, c->route, t->route);
}
END_TEST

/* The handler and merge columns: what dispatch, txn, pubsub, admin and
 * fanout switch on instead of names. */
struct column_case {
    const char *name;           /* command */
    const char *sub;            /* subcommand or NULL */
    enum cmd_op op;             /* expected handler */
    enum cmd_merge merge;       /* expected merge */
};

static const struct column_case column_cases[] = {
    { "get", NULL, CMD_OP_NONE, CMD_MERGE_NONE },
    { "ping", NULL, CMD_OP_PING, CMD_MERGE_NONE },
    { "reset", NULL, CMD_OP_RESET, CMD_MERGE_NONE },
    { "quit", NULL, CMD_OP_QUIT, CMD_MERGE_NONE },
    { "asking", NULL, CMD_OP_OK, CMD_MERGE_NONE },
    { "client", "list", CMD_OP_CLIENT, CMD_MERGE_NONE },
    { "cluster", "slots", CMD_OP_CLUSTER, CMD_MERGE_NONE },
    { "slowlog", "get", CMD_OP_SLOWLOG, CMD_MERGE_NONE },
    { "multi", NULL, CMD_OP_MULTI, CMD_MERGE_NONE },
    { "unwatch", NULL, CMD_OP_UNWATCH, CMD_MERGE_NONE },
    { "ssubscribe", NULL, CMD_OP_SSUBSCRIBE, CMD_MERGE_NONE },
    { "publish", NULL, CMD_OP_PUBLISH, CMD_MERGE_NONE },
    { "wait", NULL, CMD_OP_WAIT, CMD_MERGE_NONE },
    { "waitaof", NULL, CMD_OP_WAIT, CMD_MERGE_NONE },
    { "client", "setinfo", CMD_OP_CLIENT, CMD_MERGE_NONE },
    { "cluster", "myshardid", CMD_OP_CLUSTER, CMD_MERGE_NONE },
    { "mget", NULL, CMD_OP_NONE, CMD_MERGE_ARRAY },
    { "mset", NULL, CMD_OP_NONE, CMD_MERGE_OK },
    { "del", NULL, CMD_OP_NONE, CMD_MERGE_SUM },
    { "dbsize", NULL, CMD_OP_NONE, CMD_MERGE_SUM },
    { "keys", NULL, CMD_OP_NONE, CMD_MERGE_CONCAT },
    { "scan", NULL, CMD_OP_NONE, CMD_MERGE_SCAN },
    { "randomkey", NULL, CMD_OP_NONE, CMD_MERGE_FIRST },
    { "flushall", NULL, CMD_OP_NONE, CMD_MERGE_SAME },
    { "script", "exists", CMD_OP_NONE, CMD_MERGE_AND },
    { "script", "load", CMD_OP_NONE, CMD_MERGE_SAME },
    { "pubsub", "channels", CMD_OP_NONE, CMD_MERGE_UNION },
    { "pubsub", "numsub", CMD_OP_NONE, CMD_MERGE_PAIRSUM },
};

START_TEST(test_columns)
{
    const struct column_case *t = &column_cases[_i];
    const struct command *c = entry(t->name, t->sub);
    ck_assert_msg(c->op == t->op && c->merge == t->merge,
                  "%s: op %d merge %d, expected %d %d", c->fullname, c->op,
                  c->merge, t->op, t->merge);
}
END_TEST

/* Rows of Redis 7.2+ commands the generating 7.0 server lacks (NEWER in
 * scripts/gen_commands.py) carry CMD_P_NEWER; the server's own rows do
 * not. */
struct newer_case {
    const char *name;           /* command */
    const char *sub;            /* subcommand or NULL */
    int newer;                  /* CMD_P_NEWER expected */
};

static const struct newer_case newer_cases[] = {
    { "waitaof", NULL, 1 },
    { "client", "setinfo", 1 },
    { "client", "no-touch", 1 },
    { "cluster", "myshardid", 1 },
    { "wait", NULL, 0 },
    { "get", NULL, 0 },
    { "client", "setname", 0 },
    { "client", "no-evict", 0 },
    { "cluster", "myid", 0 },
};

START_TEST(test_newer_rows)
{
    const struct newer_case *t = &newer_cases[_i];
    const struct command *c = entry(t->name, t->sub);
    ck_assert_msg(!(c->flags & CMD_P_NEWER) == !t->newer, "%s: newer %d",
                  c->fullname, !!(c->flags & CMD_P_NEWER));
}
END_TEST

/* A NEWER row is one the proxy answers or refuses itself: no keys, and
 * no route that would send it to a server that may not know it. */
static void
assert_newer_local(const struct command *c)
{
    if (!(c->flags & CMD_P_NEWER))
        return;
    ck_assert_msg(c->route == CMD_ROUTE_LOCAL ||
                  c->route == CMD_ROUTE_REFUSED, "%s: route %d",
                  c->fullname, c->route);
    ck_assert_msg(c->nkeyspecs == 0 && c->nsubcmds == 0, "%s", c->fullname);
}

START_TEST(test_newer_invariants)
{
    size_t n = 0;
    for (size_t i = 0; i < command_count(); i++) {
        const struct command *c = command_at(i);
        assert_newer_local(c);
        n += !!(c->flags & CMD_P_NEWER);
        for (uint16_t j = 0; j < c->nsubcmds; j++) {
            assert_newer_local(&c->subcmds[j]);
            n += !!(c->subcmds[j].flags & CMD_P_NEWER);
        }
    }
    ck_assert_uint_ge(n, 4);
}
END_TEST

/* Rules that hold for the whole table, whatever Redis version made it. */
START_TEST(test_routes_invariants)
{
    size_t i;

    for (i = 0; i < command_count(); i++) {
        const struct command *c = command_at(i);
        if (c->flags & CMD_F_BLOCKING)
            ck_assert_msg(c->route == CMD_ROUTE_BLOCKING, "%s", c->name);
        if (c->route == CMD_ROUTE_KEYED && c->nsubcmds == 0)
            ck_assert_msg(c->nkeyspecs > 0, "%s keyed without keys",
                          c->name);
        ck_assert_int_le(c->route, CMD_ROUTE_REFUSED);
        ck_assert_int_lt(c->op, CMD_OP_COUNT);
        /* Every fanned-out command says how its replies merge; nothing
         * else does. */
        int fans = c->route == CMD_ROUTE_SPLIT || c->route == CMD_ROUTE_ALL;
        ck_assert_msg(fans == (c->merge != CMD_MERGE_NONE), "%s merge %d",
                      c->name, c->merge);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Error texts
 * ------------------------------------------------------------------------ */

struct err_arg {
    const char *p;              /* bytes, or the byte to repeat */
    size_t len;                 /* length (or repeat count) */
    int repeat;                 /* 1: p[0] repeated len times */
};

struct err_case {
    uint32_t argc;                  /* request arguments */
    struct err_arg argv[4];         /* the request */
    const char *expect;             /* the exact reply */
};

/* From Redis: raw replies of redis-server 7.0.15 to these requests. */
static const struct err_case err_cases[] = {
    { 1, { { "foo", 3, 0 } },
      "-ERR unknown command 'foo', with args beginning with: \r\n" },
    { 3, { { "foo", 3, 0 }, { "a", 1, 0 }, { "b", 1, 0 } },
      "-ERR unknown command 'foo', with args beginning with: 'a'"
      " 'b' \r\n" },
    { 2, { { "FOO", 3, 0 }, { "x", 200, 1 } },
      "-ERR unknown command 'FOO', with args beginning with: 'xx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxx' \r\n" },
    { 1, { { "y", 200, 1 } },
      "-ERR unknown command 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
      "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
      "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy', with args beginnin"
      "g with: \r\n" },
    { 4, { { "foo", 3, 0 }, { "a", 100, 1 }, { "b", 100, 1 }, { "c", 1, 0 } },
      "-ERR unknown command 'foo', with args beginning with: 'aa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 'bbbbbbbbbbbbb"
      "bbbbbbbbbbbb' \r\n" },
    { 4, { { "foo", 3, 0 }, { "a", 125, 1 }, { "b", 1, 0 }, { "c", 1, 0 } },
      "-ERR unknown command 'foo', with args beginning with: 'aa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaa' \r\n" },
    { 3, { { "foo", 3, 0 }, { "a", 126, 1 }, { "b", 1, 0 } },
      "-ERR unknown command 'foo', with args beginning with: 'aa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaa' \r\n" },
    { 3, { { "foo", 3, 0 }, { "line\r\nbreak", 11, 0 }, { "x\ny", 3, 0 } },
      "-ERR unknown command 'foo', with args beginning with: 'li"
      "ne  break' 'x y' \r\n" },
    { 2, { { "fo\0o", 4, 0 }, { "a\0b", 3, 0 } },
      "-ERR unknown command 'fo', with args beginning with: 'a' "
      "\r\n" },
    { 2, { { "foo", 3, 0 }, { "", 0, 0 } },
      "-ERR unknown command 'foo', with args beginning with: '' "
      "\r\n" },
    { 2, { { "config", 6, 0 }, { "nosuch", 6, 0 } },
      "-ERR unknown subcommand 'nosuch'. Try CONFIG HELP.\r\n" },
    { 2, { { "Config", 6, 0 }, { "x", 200, 1 } },
      "-ERR unknown subcommand 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'. Try CONFIG HELP"
      ".\r\n" },
    { 2, { { "cLuStEr", 7, 0 }, { "bad\r\nx", 6, 0 } },
      "-ERR unknown subcommand 'bad  x'. Try CLUSTER HELP.\r\n" },
    { 1, { { "get", 3, 0 } },
      "-ERR wrong number of arguments for 'get' command\r\n" },
    { 3, { { "get", 3, 0 }, { "a", 1, 0 }, { "b", 1, 0 } },
      "-ERR wrong number of arguments for 'get' command\r\n" },
    { 2, { { "config", 6, 0 }, { "get", 3, 0 } },
      "-ERR wrong number of arguments for 'config|get' command\r"
      "\n" },
    { 1, { { "config", 6, 0 } },
      "-ERR wrong number of arguments for 'config' command\r\n" },
    { 2, { { "xinfo", 5, 0 }, { "stream", 6, 0 } },
      "-ERR wrong number of arguments for 'xinfo|stream' command"
      "\r\n" },
    { 2, { { "set", 3, 0 }, { "k", 1, 0 } },
      "-ERR wrong number of arguments for 'set' command\r\n" },
};

/* Dispatch like Redis: unknown command, unknown subcommand, then arity. */
static void
reply_error(struct buf *out, const struct test_req *r)
{
    const struct command *c;

    c = command_lookup(r->base + r->argv[0].off, r->argv[0].len);
    if (c == NULL) {
        command_err_unknown(out, r->argc, r->argv, r->base);
        return;
    }
    if (c->nsubcmds > 0 && r->argc >= 2) {
        c = command_lookup_sub(c, r->base + r->argv[1].off, r->argv[1].len);
        if (c == NULL) {
            command_err_unknown_sub(out, r->argv, r->base);
            return;
        }
    }
    ck_assert(!command_arity_ok(c, r->argc));
    command_err_arity(out, c);
}

START_TEST(test_err_texts)
{
    const struct err_case *t = &err_cases[_i];
    struct test_req r;
    struct buf out;
    uint32_t i;

    memset(&r, 0, sizeof(r));
    for (i = 0; i < t->argc; i++) {
        const struct err_arg *a = &t->argv[i];
        char tmp[256];
        if (a->repeat) {
            ck_assert_uint_le(a->len, sizeof(tmp));
            memset(tmp, a->p[0], a->len);
            req_add(&r, tmp, a->len);
        } else {
            req_add(&r, a->p, a->len);
        }
    }
    buf_init(&out);
    reply_error(&out, &r);
    ck_assert_uint_eq(buf_unread(&out), strlen(t->expect));
    ck_assert(memcmp(out.data + out.pos, t->expect, strlen(t->expect)) == 0);
    buf_deinit(&out);
}
END_TEST

START_TEST(test_err_refused)
{
    const struct command *cluster = command_lookup("cluster", 7);
    struct buf out;

    buf_init(&out);
    command_err_refused(&out, command_lookup("config", 6));
    command_err_refused(&out, command_lookup_sub(cluster, "addslots", 8));
    command_err_refused(&out, command_lookup("restore-asking", 14));
    command_err_refused(&out, command_lookup("wait", 4));
    command_err_refused(&out, command_lookup("waitaof", 7));
    buf_append(&out, "", 1);
    ck_assert_str_eq(out.data + out.pos,
        "-ERR slotproxy: CONFIG is not supported through the proxy\r\n"
        "-ERR slotproxy: CLUSTER ADDSLOTS is not supported through the "
        "proxy\r\n"
        "-ERR slotproxy: RESTORE-ASKING is not supported through the "
        "proxy\r\n"
        "-ERR slotproxy: WAIT is not supported through the proxy (writes "
        "travel on shared connections)\r\n"
        "-ERR slotproxy: WAITAOF is not supported through the proxy "
        "(writes travel on shared connections)\r\n");
    buf_deinit(&out);
}
END_TEST

static Suite *
command_suite(void)
{
    Suite *s = suite_create("command");
    TCase *tc;

    tc = tcase_create("lookup");
    tcase_add_test(tc, test_lookup_case_insensitive);
    tcase_add_test(tc, test_lookup_every_command);
    tcase_add_test(tc, test_lookup_sub);
    tcase_add_test(tc, test_arity);
    tcase_add_test(tc, test_flags);
    tcase_add_loop_test(tc, test_perms, 0, (int)SP_ARRAY_LEN(perm_cases));
    tcase_add_test(tc, test_perms_invariants);
    suite_add_tcase(s, tc);

    tc = tcase_create("block");
    tcase_add_loop_test(tc, test_block_timeout, 0,
                        (int)SP_ARRAY_LEN(block_cases));
    tcase_add_test(tc, test_block_every_blocking_command);
    tcase_add_test(tc, test_block_learned_entries);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_loop_test(tc, test_keys_from_redis, 0,
                        (int)SP_ARRAY_LEN(redis_key_cases));
    tcase_add_loop_test(tc, test_keys_contract, 0,
                        (int)SP_ARRAY_LEN(contract_key_cases));
    tcase_add_test(tc, test_keys_max);
    tcase_add_test(tc, test_keys_full_table_in_range);
    tcase_add_test(tc, test_keys_fixed_arity_nonempty);
    suite_add_tcase(s, tc);

    tc = tcase_create("routes");
    tcase_add_loop_test(tc, test_routes, 0, (int)SP_ARRAY_LEN(route_cases));
    tcase_add_loop_test(tc, test_columns, 0,
                        (int)SP_ARRAY_LEN(column_cases));
    tcase_add_test(tc, test_routes_invariants);
    tcase_add_loop_test(tc, test_newer_rows, 0,
                        (int)SP_ARRAY_LEN(newer_cases));
    tcase_add_test(tc, test_newer_invariants);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_err_texts, 0, (int)SP_ARRAY_LEN(err_cases));
    tcase_add_test(tc, test_err_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(command_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
