/* slotproxy - BSD-2-Clause
 *
 * Hot keys: a bounded top-K of keys by request count, one sketch per
 * worker, fed by sampling so that the request path pays one decrement and
 * one branch per request.
 *
 * The sketch is space-saving (Metwally, Agrawal, El Abbadi, "Efficient
 * computation of frequent and top-k elements in data streams", 2005): K
 * counters; a key already counted is incremented; a new key takes over the
 * smallest counter, inheriting its count as its error bound. Any key whose
 * true (sampled) count exceeds the smallest counter is guaranteed to be in
 * the sketch, and each counter overestimates its key's count by at most
 * its error. Memory is allocated once, at hotkeys_new(): K entries, a
 * hash index of 2K..4K slots and a min-heap of K indexes (about 19 KB for
 * K = 100); nothing is allocated while counting.
 *
 * Counts decay: every window (10 s by default) all counts and errors are
 * halved, so a key that cooled down sinks and drops out, and the estimate
 * follows the recent rate rather than the lifetime total.
 *
 * Pure module: no I/O, no clock, no globals, no threads. The caller passes
 * the monotonic time in milliseconds. A sketch belongs to one worker; the
 * worker publishes a copy (hotkeys_copy into a sketch of the same K) under
 * the lock it already holds at its tick, and the main thread merges the
 * copies (hotkeys_merge) for PROXY HOTKEYS and /metrics.
 */
#ifndef SP_HOTKEYS_H
#define SP_HOTKEYS_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define HOTKEYS_KEY_MAX 128         /* key bytes kept per entry */
#define HOTKEYS_K_DEFAULT 100       /* counters per worker */
#define HOTKEYS_K_MAX 4096          /* bound on K (the index uses uint16) */
#define HOTKEYS_SAMPLE_DEFAULT 64   /* one request in N is counted */
#define HOTKEYS_WINDOW_MS_DEFAULT 10000 /* counts halve every window */

/*
 * The sampling countdown: lives in the worker's hot data, apart from the
 * sketch, so that a request that is not sampled touches one word.
 */
struct hotkeys_sampler {
    uint32_t countdown;         /* requests left until the next sample */
    uint32_t rate;              /* N: on average one in N; 0: never */
    uint64_t rng;               /* xorshift64 state for the reloads */
};

/* Start a sampler at one in rate (0: off, never samples); seed is any
 * value (per worker, e.g. its index mixed with the start time). */
void hotkeys_sampler_init(struct hotkeys_sampler *s, uint32_t rate,
                          uint64_t seed);
/* Slow half of hotkeys_should_sample(): reload the countdown with a
 * uniformly random value in [1, 2N - 1] (mean N); returns 1 (sample this
 * request), or 0 when the sampler is off. */
int hotkeys_sampler_reload(struct hotkeys_sampler *s);

/*
 * 1 when this request should be counted. Costs a decrement and a branch;
 * once every N requests on average it calls the reload (a multiply, no
 * division). The random gap, rather than a fixed one, keeps a client that
 * repeats a pattern of N requests from always being sampled on the same
 * key.
 */
static inline int
hotkeys_should_sample(struct hotkeys_sampler *s)
{
    if (--s->countdown != 0)
        return 0;
    return hotkeys_sampler_reload(s);
}

struct hotkeys;

/*
 * A sketch with k counters (1..HOTKEYS_K_MAX), counting one in sample_rate
 * requests (the sampler's N, used to scale counts to rates; >= 1), halving
 * every window_ms (>= 1) from now_ms. Never NULL (aborts on OOM, as every
 * sp_* allocation). Free with hotkeys_free().
 */
struct hotkeys *hotkeys_new(uint32_t k, uint32_t sample_rate,
                            uint64_t window_ms, uint64_t now_ms);
void hotkeys_free(struct hotkeys *h);

/* Bytes the sketch holds, fixed at hotkeys_new(). */
size_t hotkeys_memory(const struct hotkeys *h);

/* Keys counted now (<= k). */
uint32_t hotkeys_count(const struct hotkeys *h);

/*
 * Count one sampled request for key[0 .. len) in slot at now_ms. The key
 * is copied (at most HOTKEYS_KEY_MAX bytes); keys are told apart by their
 * full length, their first HOTKEYS_KEY_MAX bytes and a hash that also
 * covers their last 16 bytes, so two long keys that differ only in the
 * middle count as one. Applies any decay due first. Never allocates.
 */
void hotkeys_add(struct hotkeys *h, const char *key, size_t len,
                 uint16_t slot, uint64_t now_ms);

/* Apply the decay due at now_ms (halving once per whole window elapsed;
 * keys whose count reaches 0 are dropped). Called by hotkeys_add; call it
 * at the worker's tick too, so an idle worker's sketch cools down. */
void hotkeys_advance(struct hotkeys *h, uint64_t now_ms);

/* Forget every key; the window restarts at now_ms. */
void hotkeys_reset(struct hotkeys *h, uint64_t now_ms);

/*
 * Copy src into dst, which must have been made with the same k: a flat
 * copy with no allocation, cheap enough to run under the worker's lock at
 * its tick. Returns 0, or -1 (dst untouched) when the k differ.
 */
int hotkeys_copy(struct hotkeys *dst, const struct hotkeys *src);

/* One key of a merged top list. */
struct hotkeys_item {
    char key[HOTKEYS_KEY_MAX];  /* first key_len bytes of the key */
    uint32_t key_len;           /* bytes in key (<= HOTKEYS_KEY_MAX) */
    uint64_t full_len;          /* length of the whole key */
    uint64_t hash;              /* identity hash: a stable name for the key
                                 * when names are hidden (privacy) */
    uint16_t slot;              /* hash slot of the key */
    double rps;                 /* estimated requests per second, summed
                                 * over the sketches */
    double err_rps;             /* the true rate lies within
                                 * [rps - err_rps, rps + err_rps], up to
                                 * sampling noise (see hotkeys.c) */
};

/*
 * Merge n sketches (the workers' published copies) into out[0 .. max),
 * sorted by estimated rate, highest first (ties: by key bytes). Returns
 * the number of items written (<= max). A key's rate is the sum of its
 * per-sketch rates, each count x sample_rate / the sketch's effective
 * window (see hotkeys.c); its error adds, for every full sketch that does
 * not hold it, that sketch's smallest count (the most it can have missed).
 * Allocates a scratch array of all entries and frees it before returning.
 */
size_t hotkeys_merge(const struct hotkeys *const *sketches, size_t n,
                     struct hotkeys_item *out, size_t max);

/*
 * The PROXY HOTKEYS [COUNT n] reply for items[0 .. n): an array with one
 * 6-element array per key, hottest first:
 *   1) key (bulk; the first HOTKEYS_KEY_MAX bytes, followed by
 *      "... (N more bytes)" when cut, as SLOWLOG cuts arguments)
 *   2) estimated requests per second (integer, rounded)
 *   3) error bound in requests per second (integer, rounded up)
 *   4) slot (integer)
 *   5) master "host:port" serving the slot (bulk; masters[i], or "" when
 *      masters is NULL or masters[i] is NULL)
 *   6) key length in bytes (integer)
 */
void hotkeys_reply(struct buf *out, const struct hotkeys_item *items,
                   size_t n, const char *const *masters);

#endif
