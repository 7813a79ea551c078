/* slotproxy - BSD-2-Clause
 *
 * Spread TTLs (expiry_jitter: {percent, min_ttl}, opt-in): a request that
 * sets a relative expiry of at least min_ttl gets a random extra of up to
 * percent % of its TTL, so that keys written together do not all expire
 * in the same second (an expiry storm, then a stampede on the backing
 * store).
 *
 * Relative forms changed: SET ... EX|PX (options in any position, any
 * case, the last EX/PX wins as Redis parses them), SETEX, PSETEX,
 * GETEX EX|PX, EXPIRE, PEXPIRE, HEXPIRE, HPEXPIRE (Redis 7.4), and the
 * EX|PX options of HGETEX and HSETEX (Redis 8.0). Absolute forms (EXAT,
 * PXAT, EXPIREAT, PEXPIREAT, HEXPIREAT, HPEXPIREAT) and KEEPTTL and
 * PERSIST are never changed. A request Redis would reject (a missing or
 * non-integer or non-positive TTL, conflicting options, an unknown
 * option) is left alone for Redis to reject with its own error, and so is
 * one whose TTL is too large to grow without nearing Redis's own
 * overflow checks.
 *
 * Pure module: no I/O, no randomness of its own (the caller passes a
 * random 64-bit value), no globals.
 */
#ifndef SP_TTLJITTER_H
#define SP_TTLJITTER_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct resp_arg;

/* Which commands can carry a relative TTL. */
enum ttljitter_cmd {
    TTLJ_NONE = 0,              /* no relative TTL: never changed */
    TTLJ_SET,                   /* SET key value [options] */
    TTLJ_GETEX,                 /* GETEX key [options] */
    TTLJ_SETEX,                 /* SETEX key seconds value */
    TTLJ_PSETEX,                /* PSETEX key milliseconds value */
    TTLJ_EXPIRE,                /* EXPIRE key seconds [flag] */
    TTLJ_PEXPIRE,               /* PEXPIRE key milliseconds [flag] */
    TTLJ_HEXPIRE,               /* HEXPIRE key seconds [flag] FIELDS ... */
    TTLJ_HPEXPIRE,              /* HPEXPIRE key ms [flag] FIELDS ... */
    TTLJ_HGETEX,                /* HGETEX key [EX|PX ...] FIELDS ... */
    TTLJ_HSETEX,                /* HSETEX key [FNX|FXX] [EX|PX ...] FIELDS */
};

/* The largest TTL a changed request may carry, in milliseconds: half of
 * LLONG_MAX, so that Redis's checks (seconds x 1000, plus the current
 * time) can never overflow because of the extra. */
#define TTLJITTER_MAX_MS (INT64_MAX / 2)

struct ttljitter_conf {
    uint32_t percent;           /* extra of up to this % of the TTL
                                 * (1..100; more is taken as 100) */
    uint64_t min_ttl_ms;        /* TTLs shorter than this stay as sent */
};

/*
 * The kind of command name[0 .. len) (any case), TTLJ_NONE for every
 * command that cannot set a relative TTL. Cheap enough to call per
 * request; better, computed once per command-table entry.
 */
enum ttljitter_cmd ttljitter_command(const char *name, size_t len);

/* Where a request's TTL is, as ttljitter_find() reports it. */
struct ttljitter_ttl {
    uint32_t arg;               /* argv index of the TTL value */
    int unit_ms;                /* 1: milliseconds, 0: seconds */
    long long ttl;              /* its value, > 0, in that unit */
};

/*
 * Find the relative TTL that Redis would apply for request argv[0 ..
 * argc) (argument i is base[argv[i].off .. + argv[i].len), argv[0] the
 * command name) of kind cmd. Returns 1 and fills *out, or 0 when the
 * request sets no relative TTL, or an absolute one, or is malformed (see
 * above).
 */
int ttljitter_find(enum ttljitter_cmd cmd, const char *base,
                   const struct resp_arg *argv, uint32_t argc,
                   struct ttljitter_ttl *out);

/*
 * Apply the jitter to one request. When it sets a relative TTL of at
 * least conf->min_ttl_ms, the extra is rnd % (TTL x percent / 100 + 1)
 * in the TTL's own unit (integer math, no overflow); when that extra is
 * not 0 and the new TTL stays within TTLJITTER_MAX_MS, the whole request
 * is appended to out as a RESP multibulk with the TTL argument replaced
 * (every other argument byte for byte) and 1 is returned. Otherwise
 * returns 0 and out is untouched: the caller forwards the original bytes.
 * Works for inline requests too (the arguments are re-encoded).
 */
int ttljitter_apply(const struct ttljitter_conf *conf, enum ttljitter_cmd cmd,
                    const char *base, const struct resp_arg *argv,
                    uint32_t argc, uint64_t rnd, struct buf *out);

#endif
