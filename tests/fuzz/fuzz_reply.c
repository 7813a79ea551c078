/* slotproxy - BSD-2-Clause
 *
 * libFuzzer target for the reply scanner and the value decoder. The
 * scanner runs on the whole input and fed in pieces (sizes derived from
 * the input, each call on a fresh exact-size heap copy so ASan sees reads
 * past len); both must agree. The decoder must agree with the scanner:
 * consumed bytes == reply length, 0 when incomplete, -1 when malformed,
 * and every string in the tree must lie inside the reply.
 */
#include "build_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define FUZZ_CHECK(x) ((x) ? (void)0 : abort())

/* Walk the tree without recursion; count nodes to bound the walk. */
static void
fuzz_check_tree(const struct resp_value *root, const char *buf, size_t len)
{
    const struct resp_value *stack[RESP_MAX_DEPTH + 2];
    size_t idx[RESP_MAX_DEPTH + 2];
    int depth = 0;
    const struct resp_value *v = root;

    for (;;) {
        if (v->str != NULL)
            FUZZ_CHECK(v->str >= buf && v->str + v->len <= buf + len);
        FUZZ_CHECK((v->nelems == 0) == (v->elems == NULL));
        if (v->nelems > 0) {
            FUZZ_CHECK(depth <= RESP_MAX_DEPTH);
            stack[depth] = v;
            idx[depth] = 0;
            depth++;
            v = &v->elems[0];
            continue;
        }
        while (depth > 0 && ++idx[depth - 1] == stack[depth - 1]->nelems)
            depth--;
        if (depth == 0)
            return;
        v = &stack[depth - 1]->elems[idx[depth - 1]];
    }
}

static int
fuzz_scan(const uint8_t *in, size_t n, uint32_t *seed, uint64_t *len)
{
    struct resp_reply r;
    size_t fed = 0;
    int rc = RESP_AGAIN;

    resp_reply_init(&r);
    do {
        size_t c = n - fed;
        char *copy;

        if (seed != NULL) {
            *seed = *seed * 1103515245u + 12345u;
            c = 1 + (*seed >> 16) % 9;
            if (c > n - fed)
                c = n - fed;
        }
        fed += c;
        copy = malloc(fed ? fed : 1);
        memcpy(copy, in, fed);
        rc = resp_reply_parse(&r, copy, fed);
        free(copy);
    } while (rc == RESP_AGAIN && fed < n);
    if (rc == RESP_DONE) {
        FUZZ_CHECK(r.len > 0 && r.len <= fed);
        FUZZ_CHECK(r.type == (char)in[0]);
        *len = r.len;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t seed = 2166136261u;
    uint64_t la = 0, lb = 0;
    struct resp_value *v = NULL;
    char *copy;
    ssize_t got;
    int ra, rb;

    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    ra = fuzz_scan(data, size, NULL, &la);
    rb = fuzz_scan(data, size, &seed, &lb);
    FUZZ_CHECK(ra == rb && la == lb);

    copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    got = resp_value_parse(copy, size, &v);
    if (ra == RESP_DONE) {
        FUZZ_CHECK(got == (ssize_t)la && v != NULL);
        fuzz_check_tree(v, copy, (size_t)la);
        resp_value_free(v);
        /* exactly the reply's bytes decode the same */
        got = resp_value_parse(copy, (size_t)la, &v);
        FUZZ_CHECK(got == (ssize_t)la);
        resp_value_free(v);
    } else {
        FUZZ_CHECK(got == (ra == RESP_AGAIN ? 0 : -1) && v == NULL);
    }
    free(copy);
    return 0;
}
