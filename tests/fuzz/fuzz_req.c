/* slotproxy - BSD-2-Clause
 *
 * libFuzzer target for the request parser. Each input is parsed as a
 * pipeline of requests, once from the whole buffer and once fed in pieces
 * whose sizes derive from the input; both runs must agree request by
 * request. Every call gets a fresh heap copy of exactly the bytes fed so
 * far, so ASan catches any read past len (the parser keeps offsets, never
 * pointers, between calls). Checked invariants: RESP_DONE's len is within
 * the bytes fed, every argument lies within the request, an error has a
 * text, and inline unquoting yields the same bytes both ways.
 */
#include "build_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define FUZZ_CHECK(x) ((x) ? (void)0 : abort())
#define SP_FUZZ_MIN(a, b) ((a) < (b) ? (a) : (b))

static const struct resp_limits fuzz_lims[] = {
    { 512ULL * 1024 * 1024, 1024 * 1024, 64 * 1024, 0 },
    { 64, 4, 16, 0 },
    { 512ULL * 1024 * 1024, 1024 * 1024, 64 * 1024, 1 },  /* before AUTH */
};

/* Result of one request, as a byte string for comparison. */
struct fuzz_req_out {
    int rc;                     /* status */
    const char *err;            /* r->err on RESP_ERROR */
    uint64_t len;               /* r->len on RESP_DONE */
    uint32_t argc;              /* r->argc on RESP_DONE */
    int is_inline;              /* r->is_inline on RESP_DONE */
    uint64_t hash;              /* FNV-1a over the argument bytes */
};

static uint64_t
fuzz_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static void
fuzz_record(const struct resp_req *r, const char *buf, size_t fed, int rc,
            struct fuzz_req_out *out)
{
    memset(out, 0, sizeof(*out));
    out->rc = rc;
    if (rc == RESP_ERROR) {
        FUZZ_CHECK(r->err != NULL);
        out->err = r->err;
        return;
    }
    if (rc != RESP_DONE)
        return;
    FUZZ_CHECK(r->len > 0 && r->len <= fed);
    FUZZ_CHECK(r->argc <= r->argv_cap);
    out->len = r->len;
    out->argc = r->argc;
    out->is_inline = r->is_inline;
    out->hash = 14695981039346656037ULL;
    for (uint32_t i = 0; i < r->argc; i++) {
        FUZZ_CHECK((uint64_t)r->argv[i].off + r->argv[i].len <= r->len);
        out->hash = fuzz_hash(out->hash, &r->argv[i].len, 4);
        out->hash = fuzz_hash(out->hash, buf + r->argv[i].off,
                              r->argv[i].len);
    }
}

/*
 * Parse one request starting at data[0] of n bytes. step == 0 feeds it
 * whole; otherwise piece sizes come from *seed. Returns the result; on
 * RESP_DONE, unquoted inline bytes are copied back into data so that the
 * next request is parsed from the same bytes in both runs.
 */
static void
fuzz_one(struct resp_req *r, char *data, size_t n,
         const struct resp_limits *lim, uint32_t *seed,
         struct fuzz_req_out *out)
{
    size_t fed = 0;
    int rc = RESP_AGAIN;

    do {
        size_t c = n - fed;
        char *copy;

        if (seed != NULL) {
            *seed = *seed * 1103515245u + 12345u;
            c = SP_FUZZ_MIN(c, 1 + (*seed >> 16) % 9);
        }
        fed += c;
        copy = malloc(fed ? fed : 1);
        memcpy(copy, data, fed);
        rc = resp_req_parse(r, copy, fed, lim);
        fuzz_record(r, copy, fed, rc, out);
        if (rc == RESP_DONE)
            memcpy(data, copy, fed);
        free(copy);
    } while (rc == RESP_AGAIN && fed < n);
}

static void
fuzz_pipeline(const uint8_t *in, size_t n, const struct resp_limits *lim)
{
    char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
    struct resp_req ra, rb;
    uint32_t seed = (uint32_t)fuzz_hash(2166136261u, in, n);
    size_t pos = 0;

    memcpy(a, in, n);
    memcpy(b, in, n);
    resp_req_init(&ra);
    resp_req_init(&rb);
    for (;;) {
        struct fuzz_req_out oa, ob;

        fuzz_one(&ra, a + pos, n - pos, lim, NULL, &oa);
        fuzz_one(&rb, b + pos, n - pos, lim, &seed, &ob);
        FUZZ_CHECK(oa.rc == ob.rc);
        FUZZ_CHECK(oa.err == ob.err ||
                   (oa.err && ob.err && strcmp(oa.err, ob.err) == 0));
        FUZZ_CHECK(oa.len == ob.len && oa.argc == ob.argc);
        FUZZ_CHECK(oa.is_inline == ob.is_inline && oa.hash == ob.hash);
        if (oa.rc != RESP_DONE)
            break;
        pos += oa.len;
        resp_req_reset(&ra);
        resp_req_reset(&rb);
    }
    resp_req_deinit(&ra);
    resp_req_deinit(&rb);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof(fuzz_lims) / sizeof(fuzz_lims[0]); i++)
        fuzz_pipeline(data, size, &fuzz_lims[i]);
    return 0;
}
