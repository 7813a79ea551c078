/* slotproxy - BSD-2-Clause
 *
 * The command table (generated into command.def by scripts/gen_commands.py
 * from a real redis-server) and the logic that reads it: O(1) lookup,
 * arity checks, key extraction with Redis 7's key-spec rules, and the exact
 * Redis error texts for unknown commands and wrong arity. No I/O; every
 * table is static const, so lookup and key extraction never allocate and
 * need no initialisation or locking.
 */
#include "build_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "command.h"
#include "keyslot.h"
#include "resp.h"
#include "util.h"

/* Finds the keys of a command whose key specs are incomplete (Redis's
 * getkeys_proc). Same contract as command_get_keys. */
typedef int (*cmd_getkeys_fn)(uint32_t argc, const struct resp_arg *argv,
                              const char *base, int *keys, int max);

struct cmd_getkeys_row {
    const struct command *cmd;  /* row in command_table */
    cmd_getkeys_fn proc;        /* finds its keys instead of the specs */
};

struct cmd_block_row {
    const struct command *cmd;  /* row in command_table */
    uint8_t at;                 /* enum cmd_block_at: where its timeout is */
};

/* Keys found so far while walking specs or a procedure. */
struct cmd_keys {
    int *keys;                  /* caller's output array */
    int max;                    /* capacity of keys[] */
    int n;                      /* keys written (never above max) */
};

/* Longest argument Redis quotes in its unknown-command error. */
#define CMD_ERR_ARG_MAX 128

static int getkeys_sort(uint32_t argc, const struct resp_arg *argv,
                        const char *base, int *keys, int max);
static int getkeys_sort_ro(uint32_t argc, const struct resp_arg *argv,
                           const char *base, int *keys, int max);
static int getkeys_migrate(uint32_t argc, const struct resp_arg *argv,
                           const char *base, int *keys, int max);
static int getkeys_xread(uint32_t argc, const struct resp_arg *argv,
                         const char *base, int *keys, int max);

/* The generated rows list only the generated columns; the columns the
 * learned table adds at the end of struct command stay zero. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "command.def"
#pragma GCC diagnostic pop

/* ------------------------------------------------------------------------
 * Lookup
 * ------------------------------------------------------------------------ */

static unsigned char
cmd_lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

/* FNV-1a over the lower-cased name. Must match name_hash() in
 * scripts/gen_commands.py, which lays out command_hash_slots. */
uint32_t
command_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= cmd_lower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}

/* Lookup of a name too long for command_lookup_in's buffer. */
static const struct command *
command_lookup_folded(const uint16_t *slots, uint32_t mask,
                      const struct command *cmds, const char *name,
                      size_t len)
{
    uint32_t h = command_hash(name, len) & mask;
    uint16_t slot;

    while ((slot = slots[h]) != 0) {
        const struct command *c = &cmds[slot - 1];
        if (sp_strcaseeq(name, len, c->name))
            return c;
        h = (h + 1) & mask;
    }
    return NULL;
}

/* Longest name command_lookup_in lowers on its stack (every built-in name
 * is shorter; a longer one takes the case-folding compare). */
#define LOOKUP_NAME_MAX 64

/* The table's lower-case name cn equals the lowered low[0, len). Stops
 * at cn's end, so a client's NUL byte cannot read past it. */
static int
lowered_eq(const char *cn, const unsigned char *low, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)cn[i] != low[i] || cn[i] == '\0')
            return 0;
    return cn[len] == '\0';
}

/* The request path's lookup: the name is lowered once, as it is hashed,
 * and a probe that lands on another command fails at its first byte. */
const struct command *
command_lookup_in(const uint16_t *slots, uint32_t mask,
                  const struct command *cmds, const char *name, size_t len)
{
    unsigned char low[LOOKUP_NAME_MAX];
    uint32_t h = 2166136261u;
    uint16_t slot;

    if (len == 0)
        return NULL;
    if (len > sizeof(low))
        return command_lookup_folded(slots, mask, cmds, name, len);
    for (size_t i = 0; i < len; i++) {
        low[i] = cmd_lower((unsigned char)name[i]);
        h ^= low[i];
        h *= 16777619u;
    }
    h &= mask;
    while ((slot = slots[h]) != 0) {
        const struct command *c = &cmds[slot - 1];
        if ((unsigned char)c->name[0] == low[0] &&
            lowered_eq(c->name, low, len))
            return c;
        h = (h + 1) & mask;
    }
    return NULL;
}

const struct command *
command_lookup(const char *name, size_t len)
{
    return command_lookup_in(command_hash_slots, COMMAND_HASH_SIZE - 1,
                             command_table, name, len);
}

/* Compare a counted string, lower-cased, with a lower-case C string: the
 * order the generator sorted subcommands in. */
static int
cmd_name_cmp(const char *s, size_t len, const char *cstr)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char a = cmd_lower((unsigned char)s[i]);
        unsigned char b = (unsigned char)cstr[i];
        if (b == '\0' || a != b)
            return b == '\0' ? 1 : (int)a - (int)b;
    }
    return cstr[len] == '\0' ? 0 : -1;
}

const struct command *
command_lookup_sub(const struct command *parent, const char *name,
                   size_t len)
{
    size_t lo = 0, hi = parent->nsubcmds;

    /* Binary search: the generator sorts subcommands by name. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = cmd_name_cmp(name, len, parent->subcmds[mid].name);
        if (cmp == 0)
            return &parent->subcmds[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int
command_arity_ok(const struct command *c, uint32_t argc)
{
    if (c->arity >= 0)
        return argc == (uint32_t)c->arity;
    return argc >= (uint32_t)-c->arity;
}

size_t
command_count(void)
{
    return SP_ARRAY_LEN(command_table);
}

size_t
command_index(const struct command *top)
{
    return (size_t)(top - command_table);
}

const struct command *
command_at(size_t i)
{
    return i < SP_ARRAY_LEN(command_table) ? &command_table[i] : NULL;
}

/* ------------------------------------------------------------------------
 * Key extraction
 * ------------------------------------------------------------------------ */

enum {
    KS_OK = 0,                  /* spec walked (possibly zero keys) */
    KS_INVALID = -1,            /* arguments do not fit the spec */
    KS_UNKNOWN = -2,            /* spec cannot be walked: needs a proc */
};

static void
keys_push(struct cmd_keys *k, int idx)
{
    if (k->n < k->max)
        k->keys[k->n++] = idx;
}

static int
arg_is(const struct resp_arg *argv, const char *base, int i,
       const char *word)
{
    return sp_strcaseeq(base + argv[i].off, argv[i].len, word);
}

/*
 * Redis's KEYWORD begin_search: a positive startfrom searches forward from
 * there up to (not including) the last argument; a negative one searches
 * backwards from argc + startfrom down to (not including) argv[1]. Sets
 * *first to the argument after the keyword; 0 if absent.
 */
static void
keyspec_find_keyword(const struct cmd_keyspec *ks, int argc,
                     const struct resp_arg *argv, const char *base,
                     int *first)
{
    int start = ks->bs_pos > 0 ? ks->bs_pos : argc + ks->bs_pos;
    int end = ks->bs_pos > 0 ? argc - 1 : 1;
    int dir = start <= end ? 1 : -1;
    int i;

    *first = 0;
    for (i = start; i != end; i += dir) {
        if (i >= argc || i < 1)
            break;
        if (arg_is(argv, base, i, ks->bs_keyword)) {
            *first = i + 1;
            return;
        }
    }
}

/* RANGE find_keys: the last key index for a range starting at first. */
static int
keyspec_range_last(const struct cmd_keyspec *ks, int argc, int first)
{
    if (ks->lastkey >= 0)
        return first + ks->lastkey;
    if (ks->limit == 0)
        return argc + ks->lastkey;
    /* Redis only allows a limit with lastkey -1: "1/limit of the rest". */
    return first + ((argc - first) / ks->limit + ks->lastkey);
}

/*
 * KEYNUM find_keys: reads numkeys and moves *first to the first key. Sets
 * *last; an empty range (numkeys 0) gives *last = *first - 1.
 */
static int
keyspec_keynum_range(const struct cmd_keyspec *ks, int argc,
                     const struct resp_arg *argv, const char *base,
                     int *first, int *last)
{
    int idx = *first + ks->keynumidx;
    long long numkeys;

    if (idx < 0 || idx >= argc)
        return KS_INVALID;
    if (sp_str2ll(base + argv[idx].off, argv[idx].len, &numkeys) != 0 ||
        numkeys < 0 || numkeys > argc)
        return KS_INVALID;
    *first += ks->firstkey;
    *last = *first + (int)numkeys - 1;
    return KS_OK;
}

/* Walk one key spec, appending the argv index of each key it finds. */
static int
keyspec_collect(const struct cmd_keyspec *ks, int argc,
                const struct resp_arg *argv, const char *base,
                struct cmd_keys *out)
{
    int first, last, i;

    if (ks->bs_type == CMD_BS_INDEX) {
        first = ks->bs_pos >= 0 ? ks->bs_pos : argc + ks->bs_pos;
    } else if (ks->bs_type == CMD_BS_KEYWORD) {
        keyspec_find_keyword(ks, argc, argv, base, &first);
        if (first == 0)
            return KS_OK;   /* optional keyword absent: no keys here */
    } else {
        return KS_UNKNOWN;
    }

    if (ks->fk_type == CMD_FK_RANGE) {
        last = keyspec_range_last(ks, argc, first);
    } else if (ks->fk_type == CMD_FK_KEYNUM) {
        if (keyspec_keynum_range(ks, argc, argv, base, &first, &last) != 0)
            return KS_INVALID;
        /* numkeys 0 is legal (EVAL, FCALL): no keys, and the router may
         * send the command anywhere. Redis reaches the same answer through
         * its getkeys procs. */
        if (last == first - 1)
            return ks->incomplete ? KS_UNKNOWN : KS_OK;
    } else {
        return KS_UNKNOWN;
    }

    if (first < 1 || first >= argc || last >= argc || last < first ||
        ks->keystep < 1)
        return KS_INVALID;
    for (i = first; i <= last; i += ks->keystep)
        keys_push(out, i);
    return ks->incomplete ? KS_UNKNOWN : KS_OK;
}

/* The key procedure of c, or of the generated entry a learned entry
 * stands for (Redis's getkeys_proc belongs to the command, whatever its
 * specs say). */
static cmd_getkeys_fn
command_getkeys_proc(const struct command *c)
{
    size_t i;

    c = command_origin(c);
    for (i = 0; i < SP_ARRAY_LEN(command_getkeys_rows); i++) {
        if (command_getkeys_rows[i].cmd == c)
            return command_getkeys_rows[i].proc;
    }
    return NULL;
}

/* n keys from a procedure, or -1 if one is not an argument. Procedures
 * assume the built-in arity (SORT takes argv[1]); a learned entry carries
 * the server's, which a broken server could make smaller. */
static int
keys_in_range(int n, const int *keys, uint32_t argc)
{
    int i;

    for (i = 0; i < n; i++) {
        if (keys[i] < 1 || (uint32_t)keys[i] >= argc)
            return -1;
    }
    return n;
}

int
command_get_keys(const struct command *c, uint32_t argc,
                 const struct resp_arg *argv, const char *base, int *keys,
                 int max)
{
    struct cmd_keys out = { keys, max, 0 };
    uint8_t i;

    /* Index arithmetic is done in int; the parser's limits keep real
     * requests far below this. */
    if (argc > INT_MAX)
        return -1;
    for (i = 0; i < c->nkeyspecs; i++) {
        int rc = keyspec_collect(&c->keyspecs[i], (int)argc, argv, base,
                                 &out);
        if (rc == KS_OK)
            continue;
        /* Like Redis: a spec that cannot be followed hands the whole
         * command to its procedure, if it has one. */
        cmd_getkeys_fn proc = command_getkeys_proc(c);
        if (proc != NULL)
            return keys_in_range(proc(argc, argv, base, keys, max), keys,
                                 argc);
        return -1;
    }
    return out.n;
}

/*
 * SORT key [BY p] [LIMIT o c] [GET p ...] [ASC|DESC] [ALPHA] [STORE dest]:
 * argv[1], plus the last STORE destination. Mirrors Redis's sortGetKeys,
 * including its skip rules (LIMIT takes 2 arguments, GET and BY take 1).
 */
static int
getkeys_sort(uint32_t argc, const struct resp_arg *argv, const char *base,
             int *keys, int max)
{
    struct cmd_keys out = { keys, max, 0 };
    int store = 0;
    int i;

    keys_push(&out, 1);
    for (i = 2; i < (int)argc; i++) {
        if (arg_is(argv, base, i, "limit"))
            i += 2;
        else if (arg_is(argv, base, i, "store") && i + 1 < (int)argc)
            store = i + 1;  /* the last STORE wins, as in SORT itself */
        else if (arg_is(argv, base, i, "get") || arg_is(argv, base, i, "by"))
            i += 1;
    }
    if (store != 0)
        keys_push(&out, store);
    return out.n;
}

/* SORT_RO key ...: only argv[1]; BY/GET patterns are not keys we route. */
static int
getkeys_sort_ro(uint32_t argc, const struct resp_arg *argv,
                const char *base, int *keys, int max)
{
    struct cmd_keys out = { keys, max, 0 };

    keys_push(&out, 1);
    return out.n;
}

/*
 * MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
 * [AUTH2 user pw] [KEYS key ...]: argv[3], unless KEYS appears, in which
 * case the keys follow it and argv[3] must be empty (-1 otherwise, where
 * Redis's migrateGetKeys finds no keys and the command fails).
 */
static int
getkeys_migrate(uint32_t argc, const struct resp_arg *argv,
                const char *base, int *keys, int max)
{
    struct cmd_keys out = { keys, max, 0 };
    int first = 3, num = 1;
    int i;

    for (i = 6; i < (int)argc; i++) {
        if (arg_is(argv, base, i, "keys")) {
            if (argv[3].len > 0)
                return -1;
            first = i + 1;
            num = (int)argc - first;
            break;
        }
        /* Option arguments could themselves read "keys": skip them. */
        if (arg_is(argv, base, i, "auth"))
            i += 1;
        else if (arg_is(argv, base, i, "auth2"))
            i += 2;
    }
    for (i = 0; i < num; i++)
        keys_push(&out, first + i);
    return out.n;
}

/*
 * XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...
 * XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
 * Parses the options to find the real STREAMS keyword (a group, consumer or
 * key may be named "streams"); half of what follows are keys. -1 when
 * STREAMS is missing or the keys and ids do not pair up (Redis's
 * xreadGetKeys finds no keys and the command fails).
 */
static int
getkeys_xread(uint32_t argc, const struct resp_arg *argv, const char *base,
              int *keys, int max)
{
    struct cmd_keys out = { keys, max, 0 };
    int streams = -1;
    int i, num;

    for (i = 1; i < (int)argc; i++) {
        if (arg_is(argv, base, i, "block") || arg_is(argv, base, i, "count"))
            i += 1;
        else if (arg_is(argv, base, i, "group"))
            i += 2;
        else if (arg_is(argv, base, i, "streams")) {
            streams = i;
            break;
        } else if (!arg_is(argv, base, i, "noack"))
            break;
    }
    num = (int)argc - streams - 1;
    if (streams < 0 || num == 0 || num % 2 != 0)
        return -1;
    for (i = streams + 1; i < streams + 1 + num / 2; i++)
        keys_push(&out, i);
    return out.n;
}

/* ------------------------------------------------------------------------
 * Blocking commands: does a request block, and for how long
 * ------------------------------------------------------------------------ */

/* Longest number Redis reads as a long double (MAX_LONG_DOUBLE_CHARS). */
#define CMD_TMO_CHARS_MAX (5 * 1024)
/* Timeouts from here on (about 34 years) are treated as "forever": the
 * proxy's deadline arithmetic then never comes near overflow. */
#define CMD_BLOCK_FOREVER_MS (1LL << 40)

/* Where c's timeout is: the generated row of c, or of the generated
 * entry a learned entry stands for. */
static enum cmd_block_at
command_block_at(const struct command *c)
{
    size_t i;

    c = command_origin(c);
    for (i = 0; i < SP_ARRAY_LEN(command_block_rows); i++) {
        if (command_block_rows[i].cmd == c)
            return (enum cmd_block_at)command_block_rows[i].at;
    }
    return CMD_BLOCK_NONE;
}

/*
 * A timeout in seconds, as Redis 7 reads it (getTimeoutFromObjectOrReply
 * with string2ld: strtold over the whole argument, no leading blank, no
 * NaN, no overflow), rounded up to whole milliseconds (0.0001 is 1 ms,
 * -0.0001 is 0: forever). Never converts an out-of-range float to an
 * integer: where Redis 7.0 did (inf, 1e300), this answers Redis 7.2's
 * "out of range". 0, or -1 with *err.
 */
static int
block_parse_seconds(const char *p, size_t len, long long *ms,
                    const char **err)
{
    char num[CMD_TMO_CHARS_MAX + 1];
    char *end;
    long double v;

    *err = "ERR timeout is not a float or out of range";
    if (len == 0 || len > CMD_TMO_CHARS_MAX || isspace((unsigned char)p[0]))
        return -1;
    memcpy(num, p, len);
    num[len] = '\0';
    errno = 0;
    v = strtold(num, &end);
    if (end != num + len || isnan(v) ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)))
        return -1;
    v *= 1000.0L;
    if (v <= -1.0L) {
        *err = "ERR timeout is negative";
        return -1;
    }
    if (!(v <= (long double)LLONG_MAX)) {
        *err = "ERR timeout is out of range";
        return -1;
    }
    *err = NULL;
    if (v <= 0.0L || v >= (long double)CMD_BLOCK_FOREVER_MS)
        *ms = 0;
    else
        *ms = (long long)ceill(v);
    return 0;
}

/* A timeout in milliseconds (XREAD BLOCK): a Redis integer. */
static int
block_parse_ms(const char *p, size_t len, long long *ms, const char **err)
{
    long long v;

    if (sp_str2ll(p, len, &v) != 0) {
        *err = "ERR timeout is not an integer or out of range";
        return -1;
    }
    if (v < 0) {
        *err = "ERR timeout is negative";
        return -1;
    }
    *err = NULL;
    *ms = v >= CMD_BLOCK_FOREVER_MS ? 0 : v;
    return 0;
}

/*
 * XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...
 * XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
 * The option walk of Redis's xreadCommand, step for step: an option takes
 * its arguments only when they are there, GROUP skips two, COUNT and
 * BLOCK one, and the walk ends at STREAMS. Anything Redis refuses before
 * it would block (bad COUNT, unknown option, GROUP on XREAD, no STREAMS,
 * unbalanced keys and ids) is CMD_BLOCK_NO: Redis answers it at once.
 */
static int
block_xread(const struct command *c, uint32_t argc,
            const struct resp_arg *argv, const char *base, long long *ms,
            const char **err)
{
    int xreadgroup = strcmp(c->name, "xreadgroup") == 0;
    int blocks = 0, group = 0;
    uint32_t i, streams = 0;
    long long count;

    for (i = 1; i < argc; i++) {
        uint32_t more = argc - i - 1;
        if (arg_is(argv, base, (int)i, "block") && more > 0) {
            i++;
            if (block_parse_ms(base + argv[i].off, argv[i].len, ms, err) != 0)
                return CMD_BLOCK_BAD;
            blocks = 1;
        } else if (arg_is(argv, base, (int)i, "count") && more > 0) {
            i++;
            if (sp_str2ll(base + argv[i].off, argv[i].len, &count) != 0)
                return CMD_BLOCK_NO;
        } else if (arg_is(argv, base, (int)i, "streams") && more > 0) {
            streams = i + 1;
            break;
        } else if (arg_is(argv, base, (int)i, "group") && more >= 2 &&
                   xreadgroup) {
            group = 1;
            i += 2;
        } else if (!(arg_is(argv, base, (int)i, "noack") && xreadgroup)) {
            return CMD_BLOCK_NO;
        }
    }
    if (!blocks || streams == 0 || (argc - streams) % 2 != 0 ||
        (xreadgroup && !group))
        return CMD_BLOCK_NO;
    return CMD_BLOCK_YES;
}

int
command_block_timeout(const struct command *c, uint32_t argc,
                      const struct resp_arg *argv, const char *base,
                      long long *ms, const char **err)
{
    const struct resp_arg *a;

    *ms = 0;
    *err = NULL;
    if (argc < 2)
        return CMD_BLOCK_NO;    /* arity is checked first; stay safe */
    switch (command_block_at(c)) {
    case CMD_BLOCK_LAST:
        a = &argv[argc - 1];
        break;
    case CMD_BLOCK_ARG1:
        a = &argv[1];
        break;
    case CMD_BLOCK_OPTION:
        return block_xread(c, argc, argv, base, ms, err);
    case CMD_BLOCK_NONE:
    default:
        /* A blocking command only the server knows (a newer version, a
         * module): where its timeout is is unknown, so it counts as
         * blocking forever: a pinned connection, never a shared one. */
        return (c->flags & CMD_F_BLOCKING) ? CMD_BLOCK_YES : CMD_BLOCK_NO;
    }
    if (block_parse_seconds(base + a->off, a->len, ms, err) != 0)
        return CMD_BLOCK_BAD;
    return CMD_BLOCK_YES;
}

/* ------------------------------------------------------------------------
 * Error replies
 * ------------------------------------------------------------------------ */

/* Length of an argument as Redis prints it with "%.*s": stops at a NUL
 * byte (Redis formats the sds as a C string) and at limit. */
static size_t
err_arg_len(const char *p, size_t len, size_t limit)
{
    const char *nul = memchr(p, '\0', len);

    if (nul != NULL)
        len = (size_t)(nul - p);
    return len < limit ? len : limit;
}

/*
 * "-ERR unknown command '<argv0>', with args beginning with: 'a' 'b' "
 * argv[0] is cut at 128 bytes; the quoted arguments stop once 128 bytes of
 * them have been written, the last one cut to fit (Redis's processCommand).
 */
void
command_err_unknown(struct buf *out, uint32_t argc,
                    const struct resp_arg *argv, const char *base)
{
    size_t used = 0;
    uint32_t i;

    buf_append_str(out, "-ERR unknown command '");
    if (argc > 0) {
        const char *p = base + argv[0].off;
        buf_append_oneline(out, p,
                           err_arg_len(p, argv[0].len, CMD_ERR_ARG_MAX), 0);
    }
    buf_append_str(out, "', with args beginning with: ");
    for (i = 1; i < argc && used < CMD_ERR_ARG_MAX; i++) {
        const char *p = base + argv[i].off;
        size_t n = err_arg_len(p, argv[i].len, CMD_ERR_ARG_MAX - used);
        buf_append_str(out, "'");
        buf_append_oneline(out, p, n, 0);
        buf_append_str(out, "' ");
        used += n + 3;
    }
    buf_append_str(out, "\r\n");
}

/*
 * "-ERR unknown subcommand '<argv1>'. Try <ARGV0> HELP." argv[0] is the
 * container as the client typed it, upper-cased. Needs argc >= 2.
 */
void
command_err_unknown_sub(struct buf *out, const struct resp_arg *argv,
                        const char *base)
{
    const char *sub = base + argv[1].off;
    const char *cmd = base + argv[0].off;

    buf_append_str(out, "-ERR unknown subcommand '");
    buf_append_oneline(out, sub,
                       err_arg_len(sub, argv[1].len, CMD_ERR_ARG_MAX), 0);
    buf_append_str(out, "'. Try ");
    buf_append_oneline(out, cmd, err_arg_len(cmd, argv[0].len, SIZE_MAX), 1);
    buf_append_str(out, " HELP.\r\n");
}

void
command_err_arity(struct buf *out, const struct command *c)
{
    buf_printf(out, "-ERR wrong number of arguments for '%s' command\r\n",
               c->fullname);
}

/*
 * "-ERR slotproxy: CLUSTER ADDSLOTS is not supported through the proxy",
 * with the reason for the commands refused by a handler of their own
 * (inside MULTI too).
 */
void
command_err_refused(struct buf *out, const struct command *c)
{
    const char *p;

    buf_append_str(out, "-ERR slotproxy: ");
    for (p = c->fullname; *p != '\0'; p++) {
        char ch = *p == '|' ? ' ' : *p;
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 32);
        buf_append(out, &ch, 1);
    }
    buf_append_str(out, " is not supported through the proxy");
    if (c->op == CMD_OP_WAIT)
        /* WAIT and WAITAOF count the replicas (or AOF fsyncs) that acked
         * this connection's writes; the client's writes went over shared
         * connections. */
        buf_append_str(out, " (writes travel on shared connections)");
    buf_append_str(out, "\r\n");
}

int
command_keys_slot(const struct command *cmd, const struct resp_req *p,
                  const char *base, uint16_t *slot)
{
    int kbuf[16];
    int *keys = kbuf;
    int max = (int)SP_ARRAY_LEN(kbuf), rc = 0;

    if (p->argc > SP_ARRAY_LEN(kbuf)) {
        max = (int)p->argc;
        keys = sp_malloc(sizeof(*keys) * p->argc);
    }
    int n = command_get_keys(cmd, p->argc, p->argv, base, keys, max);
    for (int i = 0; i < n; i++) {
        const struct resp_arg *k = &p->argv[keys[i]];
        uint16_t s = keyslot(base + k->off, k->len);
        if (i == 0) {
            *slot = s;
            rc = 1;
        } else if (s != *slot) {
            rc = -1;
            break;
        }
    }
    if (keys != kbuf)
        sp_free(keys);
    return rc;
}
