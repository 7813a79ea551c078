/* slotproxy - BSD-2-Clause
 *
 * Small helpers shared by every module: a contiguous byte buffer, integer
 * parsing with overflow checks, monotonic time, case-insensitive compare.
 * No sockets, no libevent.
 */
#ifndef SP_UTIL_H
#define SP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SP_MAX(a, b) ((a) > (b) ? (a) : (b))
/* For a step of the request path split out to be shared by two callers
 * (the plain system call and the io_uring batch's callback): the split
 * must not cost a call (callgrind: ~100 instructions per GET when gcc
 * kept them out of line). */
#define SP_INLINE static inline __attribute__((always_inline))

#ifdef NDEBUG
#define SP_ASSERT(x) ((void)0)
#else
void sp_assert_fail(const char *expr, const char *file, int line);
#define SP_ASSERT(x) ((x) ? (void)0 : sp_assert_fail(#x, __FILE__, __LINE__))
#endif

/*
 * A contiguous, growable byte buffer. Bytes [pos, len) are unread data; the
 * area [len, cap) is free space to read or append into.
 */
struct buf {
    char *data;                 /* storage, owned, NULL when empty */
    size_t pos;                 /* first unread byte */
    size_t len;                 /* end of valid data */
    size_t cap;                 /* allocated size */
};

void buf_init(struct buf *b);
void buf_deinit(struct buf *b);
/* Slow half of buf_reserve(): compact (consumed bytes at the front are
 * free space), then grow. */
void buf_grow(struct buf *b, size_t n);

/* Make room for at least n more bytes at b->data + b->len. Inline: it runs
 * dozens of times per multi-key request, and the room is almost always
 * there. */
static inline void
buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len < n)
        buf_grow(b, n);
}

static inline void
buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL (an empty buffer's data) */
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
void buf_append_str(struct buf *b, const char *s);
/* Append bytes that sit inside a one-line reply (an error or status text
 * quoting a client's argument): CR and LF become spaces, as Redis's
 * addReplyErrorFormat maps them, so the bytes can never end the line and
 * start a reply of their own. upper: also upper-case ASCII letters. */
void buf_append_oneline(struct buf *b, const char *p, size_t n, int upper);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append a RESP bulk string / integer / array header / simple / error. */
void buf_add_bulk(struct buf *b, const void *p, size_t n);
void buf_add_bulk_str(struct buf *b, const char *s);
void buf_add_int(struct buf *b, long long v);
void buf_add_array(struct buf *b, long long n);
void buf_add_nil(struct buf *b);
/* Replies built for a client in its protocol (resp3: 1 after HELLO 3), as
 * Redis's addReply* do: RESP3 types, or their RESP2 renderings. */
/* A map of n pairs: '%n', or a flat array of 2n. */
void buf_add_map(struct buf *b, long long n, int resp3);
/* A set of n: '~n', or an array. */
void buf_add_set(struct buf *b, long long n, int resp3);
/* A null: '_', or the nil bulk string. */
void buf_add_null(struct buf *b, int resp3);
/* A null array: '_', or '*-1'. */
void buf_add_null_array(struct buf *b, int resp3);
/* Text as Redis's addReplyVerbatim sends it (INFO, CLIENT LIST ...):
 * '=' with the "txt:" format, or a bulk string. */
void buf_add_verbatim(struct buf *b, const void *p, size_t n, int resp3);
static inline size_t
buf_unread(const struct buf *b)
{
    return b->len - b->pos;
}
/* Mark n unread bytes as consumed; resets to empty when all are read. */
void buf_consume(struct buf *b, size_t n);
/* Free storage when the buffer is empty (idle clients hold no memory). */
void buf_release_if_empty(struct buf *b);
/* Give back a big buffer's spare room: when cap exceeds keep and the
 * unread bytes fit in keep / 2, move them into storage of keep bytes (or
 * free it when nothing is unread). Unread bytes keep their content; their
 * address changes. Returns 1 when the storage was replaced. */
int buf_shrink(struct buf *b, size_t keep);
/* Slow half of buf_set(): storage of exactly n bytes. */
void buf_set_grow(struct buf *b, size_t n);

/* Replace the content with n bytes at p. Past 2 KB it grows to exactly
 * n bytes (not the next power of two): a buffer that holds one copied
 * reply should cost what the reply does. Inline: once per reply. */
static inline void
buf_set(struct buf *b, const void *p, size_t n)
{
    b->pos = b->len = 0;
    if (b->cap < n)
        buf_set_grow(b, n);
    if (n > 0)
        memcpy(b->data, p, n);
    b->len = n;
}

/* Parse a whole string as a signed 64-bit decimal; 0 on success, -1 on
 * any non-digit, empty input or overflow (Redis's string2ll rules). */
int sp_str2ll(const char *s, size_t len, long long *out);

/* Monotonic clock in microseconds / milliseconds. */
uint64_t sp_usec_now(void);
uint64_t sp_msec_now(void);
/* Rate limit (a log line once per period): 1, recording now in *last,
 * when period_ms have passed since the last 1; else 0. */
int sp_every(uint64_t *last, uint64_t now_ms, uint64_t period_ms);

/* ASCII case-insensitive compare of a counted string with a C string:
 * 1 when equal, 0 otherwise. */
int sp_strcaseeq(const char *s, size_t len, const char *cstr);

#endif
