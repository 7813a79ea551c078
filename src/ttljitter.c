/* slotproxy - BSD-2-Clause
 *
 * TTL jitter: finding a request's relative TTL the way Redis parses it,
 * and re-encoding the request with a longer one.
 *
 * The option scanners follow Redis's own loops (t_string.c,
 * parseExtendedStringArgumentsOrReply; t_hash.c for HGETEX/HSETEX) so
 * that the TTL changed is the one Redis applies. Where our reading could
 * differ from the server's (an unknown option, a conflict, a repeated
 * option of the hash commands) the request is left alone: the only risk
 * of leaving alone is a TTL without jitter, while the risk of guessing is
 * changing an argument Redis reads as something else.
 */
#include "build_config.h"

#include <stdio.h>
#include <string.h>

#include "resp.h"
#include "ttljitter.h"
#include "util.h"

/* Options seen while scanning, as in Redis's OBJ_* flags. */
#define F_NX 0x001u
#define F_XX 0x002u
#define F_GET 0x004u
#define F_KEEPTTL 0x008u
#define F_PERSIST 0x010u
#define F_EX 0x020u
#define F_PX 0x040u
#define F_EXAT 0x080u
#define F_PXAT 0x100u
#define F_FNX 0x400u
#define F_FXX 0x800u
#define F_EXPIRY (F_EX | F_PX | F_EXAT | F_PXAT)

struct ttlj_name {
    const char *name;           /* command name, upper case */
    enum ttljitter_cmd cmd;     /* its kind */
};

static const struct ttlj_name ttlj_names[] = {
    {"SET", TTLJ_SET},         {"GETEX", TTLJ_GETEX},
    {"SETEX", TTLJ_SETEX},     {"PSETEX", TTLJ_PSETEX},
    {"EXPIRE", TTLJ_EXPIRE},   {"PEXPIRE", TTLJ_PEXPIRE},
    {"HEXPIRE", TTLJ_HEXPIRE}, {"HPEXPIRE", TTLJ_HPEXPIRE},
    {"HGETEX", TTLJ_HGETEX},   {"HSETEX", TTLJ_HSETEX},
};

enum ttljitter_cmd
ttljitter_command(const char *name, size_t len)
{
    /* Every name is 3..8 bytes; most commands are turned away here. */
    if (len < 3 || len > 8)
        return TTLJ_NONE;
    for (size_t i = 0; i < SP_ARRAY_LEN(ttlj_names); i++)
        if (sp_strcaseeq(name, len, ttlj_names[i].name))
            return ttlj_names[i].cmd;
    return TTLJ_NONE;
}

static int
arg_is(const char *base, const struct resp_arg *a, const char *word)
{
    return sp_strcaseeq(base + a->off, a->len, word);
}

/* F_EX, F_PX, F_EXAT or F_PXAT when argument a is that option, else 0. */
static unsigned
expiry_option(const char *base, const struct resp_arg *a)
{
    if (arg_is(base, a, "EX"))
        return F_EX;
    if (arg_is(base, a, "PX"))
        return F_PX;
    if (arg_is(base, a, "EXAT"))
        return F_EXAT;
    if (arg_is(base, a, "PXAT"))
        return F_PXAT;
    return 0;
}

/* Parse argument at as a TTL (strict integer, > 0) in seconds or ms. */
static int
ttl_at(const char *base, const struct resp_arg *argv, uint32_t at,
       int unit_ms, struct ttljitter_ttl *out)
{
    long long v;
    if (sp_str2ll(base + argv[at].off, argv[at].len, &v) != 0 || v <= 0)
        return 0;
    out->arg = at;
    out->unit_ms = unit_ms;
    out->ttl = v;
    return 1;
}

/* The flag of a valueless SET/GETEX option allowed after flags, or 0
 * (not such an option, or one Redis rejects in that company). */
static unsigned
string_flag(int is_set, const char *base, const struct resp_arg *a,
            unsigned flags)
{
    if (is_set && arg_is(base, a, "NX"))
        return flags & F_XX ? 0 : F_NX;
    if (is_set && arg_is(base, a, "XX"))
        return flags & F_NX ? 0 : F_XX;
    if (is_set && arg_is(base, a, "GET"))
        return F_GET;
    if (is_set && arg_is(base, a, "KEEPTTL"))
        return flags & (F_PERSIST | F_EXPIRY) ? 0 : F_KEEPTTL;
    if (!is_set && arg_is(base, a, "PERSIST"))
        return flags & (F_KEEPTTL | F_EXPIRY) ? 0 : F_PERSIST;
    return 0;
}

/*
 * SET key value [NX|XX] [GET] [IFEQ v] [EX|PX|EXAT|PXAT t|KEEPTTL] and
 * GETEX key [EX|PX|EXAT|PXAT t|PERSIST], scanned as Redis does: options
 * in any order; the same expiry option may repeat (the last value wins);
 * two different ones, or one with KEEPTTL/PERSIST, are a syntax error.
 */
static int
find_string_opts(int is_set, const char *base, const struct resp_arg *argv,
                 uint32_t argc, struct ttljitter_ttl *out)
{
    unsigned flags = 0, kind;
    uint32_t at = 0;
    for (uint32_t j = is_set ? 3 : 2; j < argc; j++) {
        const struct resp_arg *a = &argv[j];
        unsigned f = string_flag(is_set, base, a, flags);
        if (f != 0) {
            flags |= f;
            continue;
        }
        if (j + 1 >= argc)
            return 0; /* the rest take a value; Redis: syntax error */
        if (is_set && arg_is(base, a, "IFEQ")) { /* Valkey 8.1 */
            j++;
            continue;
        }
        kind = expiry_option(base, a);
        if (kind == 0 ||
            (flags & (F_KEEPTTL | F_PERSIST | (F_EXPIRY & ~kind))))
            return 0; /* Redis: syntax error */
        flags |= kind;
        at = ++j;
    }
    if (!(flags & (F_EX | F_PX)))
        return 0;
    return ttl_at(base, argv, at, (flags & F_PX) != 0, out);
}

/* The flag of a valueless HGETEX/HSETEX option not seen yet, or 0. */
static unsigned
hash_flag(int is_set, const char *base, const struct resp_arg *a,
          unsigned flags)
{
    unsigned f = 0;
    if (is_set && arg_is(base, a, "FNX"))
        f = (flags & F_FXX) ? 0 : F_FNX;
    else if (is_set && arg_is(base, a, "FXX"))
        f = (flags & F_FNX) ? 0 : F_FXX;
    else if (is_set && arg_is(base, a, "KEEPTTL"))
        f = (flags & F_EXPIRY) ? 0 : F_KEEPTTL;
    else if (!is_set && arg_is(base, a, "PERSIST"))
        f = (flags & F_EXPIRY) ? 0 : F_PERSIST;
    return (flags & f) ? 0 : f;
}

/*
 * HGETEX key [EX|PX|EXAT|PXAT t|PERSIST] FIELDS n f ... and
 * HSETEX key [FNX|FXX] [EX|PX|EXAT|PXAT t|KEEPTTL] FIELDS n f v ...:
 * options up to FIELDS, each at most once (stricter than the server may
 * be: a repeat leaves the request alone).
 */
static int
find_hash_opts(int is_set, const char *base, const struct resp_arg *argv,
               uint32_t argc, struct ttljitter_ttl *out)
{
    unsigned flags = 0, kind;
    uint32_t at = 0, j;
    for (j = 2; j < argc && !arg_is(base, &argv[j], "FIELDS"); j++) {
        const struct resp_arg *a = &argv[j];
        unsigned f = hash_flag(is_set, base, a, flags);
        if (f != 0) {
            flags |= f;
            continue;
        }
        kind = expiry_option(base, a);
        if (kind == 0 || j + 1 >= argc ||
            (flags & (F_KEEPTTL | F_PERSIST | F_EXPIRY)))
            return 0;
        flags |= kind;
        at = ++j;
    }
    if (j >= argc || !(flags & (F_EX | F_PX)))
        return 0; /* no FIELDS: Redis rejects it */
    return ttl_at(base, argv, at, (flags & F_PX) != 0, out);
}

int
ttljitter_find(enum ttljitter_cmd cmd, const char *base,
               const struct resp_arg *argv, uint32_t argc,
               struct ttljitter_ttl *out)
{
    switch (cmd) {
    case TTLJ_SET:
        return argc >= 3 && find_string_opts(1, base, argv, argc, out);
    case TTLJ_GETEX:
        return argc >= 2 && find_string_opts(0, base, argv, argc, out);
    case TTLJ_SETEX:
    case TTLJ_PSETEX:
        return argc == 4 &&
               ttl_at(base, argv, 2, cmd == TTLJ_PSETEX, out);
    case TTLJ_EXPIRE:
    case TTLJ_PEXPIRE:
    case TTLJ_HEXPIRE:
    case TTLJ_HPEXPIRE:
        return argc >= 3 &&
               ttl_at(base, argv, 2,
                      cmd == TTLJ_PEXPIRE || cmd == TTLJ_HPEXPIRE, out);
    case TTLJ_HGETEX:
    case TTLJ_HSETEX:
        return argc >= 3 &&
               find_hash_opts(cmd == TTLJ_HSETEX, base, argv, argc, out);
    case TTLJ_NONE:
        break;
    }
    return 0;
}

/* TTL plus its extra, or 0 when it stays as sent. All unsigned 64-bit:
 * ttl <= cap <= INT64_MAX / 2 and extra <= ttl, so nothing overflows. */
static uint64_t
jittered(const struct ttljitter_conf *conf, const struct ttljitter_ttl *t,
         uint64_t rnd)
{
    uint64_t ttl = (uint64_t)t->ttl;
    uint64_t cap = t->unit_ms ? (uint64_t)TTLJITTER_MAX_MS
                              : (uint64_t)TTLJITTER_MAX_MS / 1000;
    uint64_t pct = SP_MIN(conf->percent, 100u);
    if (ttl > cap || pct == 0)
        return 0;
    uint64_t ttl_ms = t->unit_ms ? ttl : ttl * 1000;
    if (ttl_ms < conf->min_ttl_ms)
        return 0;
    uint64_t most = ttl / 100 * pct + ttl % 100 * pct / 100;
    uint64_t extra = rnd % (most + 1);
    if (extra == 0 || ttl + extra > cap)
        return 0;
    return ttl + extra;
}

int
ttljitter_apply(const struct ttljitter_conf *conf, enum ttljitter_cmd cmd,
                const char *base, const struct resp_arg *argv, uint32_t argc,
                uint64_t rnd, struct buf *out)
{
    struct ttljitter_ttl t;
    if (cmd == TTLJ_NONE || !ttljitter_find(cmd, base, argv, argc, &t))
        return 0;
    uint64_t ttl = jittered(conf, &t, rnd);
    if (ttl == 0)
        return 0;
    buf_add_array(out, argc);
    for (uint32_t i = 0; i < argc; i++) {
        if (i == t.arg) {
            char num[24];
            int n = snprintf(num, sizeof(num), "%llu",
                             (unsigned long long)ttl);
            buf_add_bulk(out, num, (size_t)n);
        } else {
            buf_add_bulk(out, base + argv[i].off, argv[i].len);
        }
    }
    return 1;
}
