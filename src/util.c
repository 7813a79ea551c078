/* slotproxy - BSD-2-Clause
 *
 * Shared helpers: allocation wrappers, the contiguous byte buffer, RESP
 * encoders, integer parsing and clocks.
 */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

#include "alloc.h"
#include "util.h"

static void
sp_oom(size_t size)
{
    fprintf(stderr, "slotproxy: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
sp_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        sp_oom(size);
    return p;
}

void *
sp_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        sp_oom(n * size);
    return p;
}

void *
sp_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        sp_oom(size);
    return p;
}

char *
sp_strndup(const char *s, size_t n)
{
    char *p = sp_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
sp_strdup(const char *s)
{
    return sp_strndup(s, strlen(s));
}

void
sp_free(void *ptr)
{
    free(ptr);
}

#ifdef HAVE_JEMALLOC
/*
 * jemalloc's options, read once at its start. One automatic arena, not
 * four per CPU: each arena costs some 130 kB of metadata once a thread
 * uses it, and a proxy with one worker has two threads (issue 14: idle
 * memory). Workers beyond the first get an arena of their own
 * (sp_alloc_own_arena), so that N workers still do not share one lock.
 * MALLOC_CONF in the environment still overrides this.
 */
const char *malloc_conf = "narenas:1";
#endif

void
sp_alloc_own_arena(void)
{
#ifdef HAVE_JEMALLOC
    unsigned idx;
    size_t sz = sizeof(idx);
    if (mallctl("arenas.create", &idx, &sz, NULL, 0) == 0)
        mallctl("thread.arena", NULL, NULL, &idx, sizeof(idx));
#endif
}

void
sp_alloc_release(void)
{
#ifdef HAVE_JEMALLOC
    char name[64];
    /* The thread cache first, so that its objects reach the arenas and
     * their pages can be purged. */
    mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    snprintf(name, sizeof(name), "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(name, NULL, NULL, NULL, 0);
#elif defined(__GLIBC__)
    malloc_trim(0);
#endif
}

#ifndef NDEBUG
void
sp_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "slotproxy: assertion failed: %s at %s:%d\n", expr, file,
            line);
    abort();
}
#endif

void
buf_init(struct buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
buf_deinit(struct buf *b)
{
    sp_free(b->data);
    memset(b, 0, sizeof(*b));
}

void
buf_grow(struct buf *b, size_t n)
{
    /* Compact first: consumed bytes at the front are free space. */
    if (b->pos > 0) {
        size_t unread = b->len - b->pos;
        memmove(b->data, b->data + b->pos, unread);
        b->pos = 0;
        b->len = unread;
        if (b->cap - b->len >= n)
            return;
    }
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = sp_realloc(b->data, cap);
    b->cap = cap;
}

void
buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_append_oneline(struct buf *b, const char *p, size_t n, int upper)
{
    size_t i;

    buf_reserve(b, n);
    for (i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\r' || ch == '\n')
            ch = ' ';
        else if (upper && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 32);
        b->data[b->len++] = ch;
    }
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        buf_append(b, tmp, (size_t)n);
        return;
    }
    /* Longer than the stack buffer: format again in place. */
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* "<prefix><v>\r\n" without printf: the encoders run per fragment and
 * per merged element on the multi-key path. */
static void
buf_add_line_ll(struct buf *b, char prefix, long long v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp), *p = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
                                 : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(e - p);
    buf_reserve(b, n + 3);
    char *d = b->data + b->len;
    d[0] = prefix;
    memcpy(d + 1, p, n);
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    b->len += n + 3;
}

void
buf_add_bulk(struct buf *b, const void *p, size_t n)
{
    buf_add_line_ll(b, '$', (long long)n);
    buf_reserve(b, n + 2);
    memcpy(b->data + b->len, p, n);
    b->data[b->len + n] = '\r';
    b->data[b->len + n + 1] = '\n';
    b->len += n + 2;
}

void
buf_add_bulk_str(struct buf *b, const char *s)
{
    buf_add_bulk(b, s, strlen(s));
}

void
buf_add_int(struct buf *b, long long v)
{
    buf_add_line_ll(b, ':', v);
}

void
buf_add_array(struct buf *b, long long n)
{
    buf_add_line_ll(b, '*', n);
}

void
buf_add_nil(struct buf *b)
{
    buf_append(b, "$-1\r\n", 5);
}

void
buf_add_map(struct buf *b, long long n, int resp3)
{
    buf_add_line_ll(b, resp3 ? '%' : '*', resp3 ? n : 2 * n);
}

void
buf_add_set(struct buf *b, long long n, int resp3)
{
    buf_add_line_ll(b, resp3 ? '~' : '*', n);
}

void
buf_add_null(struct buf *b, int resp3)
{
    if (resp3)
        buf_append(b, "_\r\n", 3);
    else
        buf_add_nil(b);
}

void
buf_add_null_array(struct buf *b, int resp3)
{
    if (resp3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "*-1\r\n", 5);
}

void
buf_add_verbatim(struct buf *b, const void *p, size_t n, int resp3)
{
    if (!resp3) {
        buf_add_bulk(b, p, n);
        return;
    }
    buf_add_line_ll(b, '=', (long long)n + 4);
    buf_append(b, "txt:", 4);
    buf_append(b, p, n);
    buf_append(b, "\r\n", 2);
}

void
buf_consume(struct buf *b, size_t n)
{
    SP_ASSERT(n <= b->len - b->pos);
    b->pos += n;
    if (b->pos == b->len)
        b->pos = b->len = 0;
}

void
buf_release_if_empty(struct buf *b)
{
    if (b->pos == b->len && b->data != NULL) {
        sp_free(b->data);
        b->data = NULL;
        b->pos = b->len = b->cap = 0;
    }
}

int
buf_shrink(struct buf *b, size_t keep)
{
    size_t unread = b->len - b->pos;
    if (b->cap <= keep || unread > keep / 2)
        return 0;
    if (unread == 0) {
        buf_deinit(b);
        return 1;
    }
    char *d = sp_malloc(keep);
    memcpy(d, b->data + b->pos, unread);
    sp_free(b->data);
    b->data = d;
    b->pos = 0;
    b->len = unread;
    b->cap = keep;
    return 1;
}

void
buf_set_grow(struct buf *b, size_t n)
{
    /* Small replies round up to a power of two, as buf_grow does, so a
     * recycled buffer fits the next small reply without a new malloc;
     * larger ones cost what they hold. */
    size_t cap = n;
    if (n <= 2048) {
        cap = 256;
        while (cap < n)
            cap *= 2;
    }
    sp_free(b->data);
    b->data = sp_malloc(cap);
    b->cap = cap;
}

int
sp_str2ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0;

    if (len == 0 || len > 20)
        return -1;
    /* Fast path: up to 18 digits cannot overflow (RESP lengths and
     * counts, parsed several times per request). */
    if (len <= 18 && s[0] >= '1' && s[0] <= '9') {
        long long acc = 0;
        for (i = 0; i < len; i++) {
            unsigned d = (unsigned)(unsigned char)s[i] - '0';
            if (d > 9)
                return -1;
            acc = acc * 10 + (long long)d;
        }
        *out = acc;
        return 0;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (len == 1)
            return -1;
    }
    /* Redis rejects leading zeros ("01") and "-0". */
    if (s[i] == '0' && (len > i + 1 || neg))
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned long long d = (unsigned long long)(s[i] - '0');
        if (v > (ULLONG_MAX / 10) || (v == ULLONG_MAX / 10 && d > ULLONG_MAX % 10))
            return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
                                                       : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return -1;
        *out = (long long)v;
    }
    return 0;
}

uint64_t
sp_usec_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
sp_msec_now(void)
{
    return sp_usec_now() / 1000u;
}

int
sp_strcaseeq(const char *s, size_t len, const char *cstr)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char a = (unsigned char)s[i], c = (unsigned char)cstr[i];
        if (c == '\0')
            return 0;
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a + 32);
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (a != c)
            return 0;
    }
    return cstr[len] == '\0';
}

int
sp_every(uint64_t *last, uint64_t now_ms, uint64_t period_ms)
{
    if (*last != 0 && now_ms - *last < period_ms)
        return 0;
    *last = now_ms;
    return 1;
}
