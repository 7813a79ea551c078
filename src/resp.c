/* slotproxy - BSD-2-Clause
 *
 * RESP parsing, no I/O (see resp.h for the three parsers).
 *
 * The request parser mirrors Redis 7.0's processMultibulkBuffer() and
 * processInlineBuffer(): the same inputs are accepted and rejected, with
 * the same error texts, so a client sees the same protocol errors through
 * the proxy as it would against Redis. Two Redis quirks are kept on
 * purpose: the two bytes after a bulk payload are skipped unchecked, and a
 * NUL byte before the end of a count or inline line hides the line end
 * (Redis looks for it with strchr()), so such a line only ends with the
 * "too big" error.
 *
 * Every parser resumes where it stopped: lines are searched with memchr()
 * from the last searched byte, and bulk payloads are skipped by arithmetic,
 * so feeding a message in any number of pieces costs O(total bytes).
 */
#include "build_config.h"

#include <limits.h>
#include <string.h>

#include "alloc.h"
#include "resp.h"
#include "util.h"

/* Redis's PROTO_INLINE_MAX_SIZE, which also bounds count lines. */
#define RESP_COUNT_LINE_MAX (64 * 1024)

/* A line scan that met a NUL before its end byte: it can never end. */
#define RESP_SCAN_POISONED LLONG_MAX

/* resp_find_eol() results besides an index. */
#define RESP_EOL_AGAIN (-1)
#define RESP_EOL_TOO_BIG (-2)

enum resp_req_state {
    RESP_REQ_START = 0,         /* nothing looked at yet */
    RESP_REQ_MBULK_COUNT,       /* reading "*<count>\r\n" */
    RESP_REQ_BULK_COUNT,        /* reading "$<len>\r\n" at off */
    RESP_REQ_BULK_BODY,         /* waiting for bulk_len + 2 bytes at off */
    RESP_REQ_INLINE,            /* looking for the inline line's '\n' */
    RESP_REQ_DONE,              /* complete; results valid */
    RESP_REQ_FAILED,            /* protocol error; err set */
};

/* "expected '$', got 'c'" for every byte, as Redis formats it: its error
 * replies turn '\r' and '\n' into spaces, other bytes pass through. */
#define RESP_EXP(c) "Protocol error: expected '$', got '" c "'"
static const char *const resp_err_expected[256] = {
    RESP_EXP("\x00"), RESP_EXP("\x01"), RESP_EXP("\x02"), RESP_EXP("\x03"),
    RESP_EXP("\x04"), RESP_EXP("\x05"), RESP_EXP("\x06"), RESP_EXP("\x07"),
    RESP_EXP("\x08"), RESP_EXP("\x09"), RESP_EXP("\x20"), RESP_EXP("\x0b"),
    RESP_EXP("\x0c"), RESP_EXP("\x20"), RESP_EXP("\x0e"), RESP_EXP("\x0f"),
    RESP_EXP("\x10"), RESP_EXP("\x11"), RESP_EXP("\x12"), RESP_EXP("\x13"),
    RESP_EXP("\x14"), RESP_EXP("\x15"), RESP_EXP("\x16"), RESP_EXP("\x17"),
    RESP_EXP("\x18"), RESP_EXP("\x19"), RESP_EXP("\x1a"), RESP_EXP("\x1b"),
    RESP_EXP("\x1c"), RESP_EXP("\x1d"), RESP_EXP("\x1e"), RESP_EXP("\x1f"),
    RESP_EXP("\x20"), RESP_EXP("\x21"), RESP_EXP("\x22"), RESP_EXP("\x23"),
    RESP_EXP("\x24"), RESP_EXP("\x25"), RESP_EXP("\x26"), RESP_EXP("\x27"),
    RESP_EXP("\x28"), RESP_EXP("\x29"), RESP_EXP("\x2a"), RESP_EXP("\x2b"),
    RESP_EXP("\x2c"), RESP_EXP("\x2d"), RESP_EXP("\x2e"), RESP_EXP("\x2f"),
    RESP_EXP("\x30"), RESP_EXP("\x31"), RESP_EXP("\x32"), RESP_EXP("\x33"),
    RESP_EXP("\x34"), RESP_EXP("\x35"), RESP_EXP("\x36"), RESP_EXP("\x37"),
    RESP_EXP("\x38"), RESP_EXP("\x39"), RESP_EXP("\x3a"), RESP_EXP("\x3b"),
    RESP_EXP("\x3c"), RESP_EXP("\x3d"), RESP_EXP("\x3e"), RESP_EXP("\x3f"),
    RESP_EXP("\x40"), RESP_EXP("\x41"), RESP_EXP("\x42"), RESP_EXP("\x43"),
    RESP_EXP("\x44"), RESP_EXP("\x45"), RESP_EXP("\x46"), RESP_EXP("\x47"),
    RESP_EXP("\x48"), RESP_EXP("\x49"), RESP_EXP("\x4a"), RESP_EXP("\x4b"),
    RESP_EXP("\x4c"), RESP_EXP("\x4d"), RESP_EXP("\x4e"), RESP_EXP("\x4f"),
    RESP_EXP("\x50"), RESP_EXP("\x51"), RESP_EXP("\x52"), RESP_EXP("\x53"),
    RESP_EXP("\x54"), RESP_EXP("\x55"), RESP_EXP("\x56"), RESP_EXP("\x57"),
    RESP_EXP("\x58"), RESP_EXP("\x59"), RESP_EXP("\x5a"), RESP_EXP("\x5b"),
    RESP_EXP("\x5c"), RESP_EXP("\x5d"), RESP_EXP("\x5e"), RESP_EXP("\x5f"),
    RESP_EXP("\x60"), RESP_EXP("\x61"), RESP_EXP("\x62"), RESP_EXP("\x63"),
    RESP_EXP("\x64"), RESP_EXP("\x65"), RESP_EXP("\x66"), RESP_EXP("\x67"),
    RESP_EXP("\x68"), RESP_EXP("\x69"), RESP_EXP("\x6a"), RESP_EXP("\x6b"),
    RESP_EXP("\x6c"), RESP_EXP("\x6d"), RESP_EXP("\x6e"), RESP_EXP("\x6f"),
    RESP_EXP("\x70"), RESP_EXP("\x71"), RESP_EXP("\x72"), RESP_EXP("\x73"),
    RESP_EXP("\x74"), RESP_EXP("\x75"), RESP_EXP("\x76"), RESP_EXP("\x77"),
    RESP_EXP("\x78"), RESP_EXP("\x79"), RESP_EXP("\x7a"), RESP_EXP("\x7b"),
    RESP_EXP("\x7c"), RESP_EXP("\x7d"), RESP_EXP("\x7e"), RESP_EXP("\x7f"),
    RESP_EXP("\x80"), RESP_EXP("\x81"), RESP_EXP("\x82"), RESP_EXP("\x83"),
    RESP_EXP("\x84"), RESP_EXP("\x85"), RESP_EXP("\x86"), RESP_EXP("\x87"),
    RESP_EXP("\x88"), RESP_EXP("\x89"), RESP_EXP("\x8a"), RESP_EXP("\x8b"),
    RESP_EXP("\x8c"), RESP_EXP("\x8d"), RESP_EXP("\x8e"), RESP_EXP("\x8f"),
    RESP_EXP("\x90"), RESP_EXP("\x91"), RESP_EXP("\x92"), RESP_EXP("\x93"),
    RESP_EXP("\x94"), RESP_EXP("\x95"), RESP_EXP("\x96"), RESP_EXP("\x97"),
    RESP_EXP("\x98"), RESP_EXP("\x99"), RESP_EXP("\x9a"), RESP_EXP("\x9b"),
    RESP_EXP("\x9c"), RESP_EXP("\x9d"), RESP_EXP("\x9e"), RESP_EXP("\x9f"),
    RESP_EXP("\xa0"), RESP_EXP("\xa1"), RESP_EXP("\xa2"), RESP_EXP("\xa3"),
    RESP_EXP("\xa4"), RESP_EXP("\xa5"), RESP_EXP("\xa6"), RESP_EXP("\xa7"),
    RESP_EXP("\xa8"), RESP_EXP("\xa9"), RESP_EXP("\xaa"), RESP_EXP("\xab"),
    RESP_EXP("\xac"), RESP_EXP("\xad"), RESP_EXP("\xae"), RESP_EXP("\xaf"),
    RESP_EXP("\xb0"), RESP_EXP("\xb1"), RESP_EXP("\xb2"), RESP_EXP("\xb3"),
    RESP_EXP("\xb4"), RESP_EXP("\xb5"), RESP_EXP("\xb6"), RESP_EXP("\xb7"),
    RESP_EXP("\xb8"), RESP_EXP("\xb9"), RESP_EXP("\xba"), RESP_EXP("\xbb"),
    RESP_EXP("\xbc"), RESP_EXP("\xbd"), RESP_EXP("\xbe"), RESP_EXP("\xbf"),
    RESP_EXP("\xc0"), RESP_EXP("\xc1"), RESP_EXP("\xc2"), RESP_EXP("\xc3"),
    RESP_EXP("\xc4"), RESP_EXP("\xc5"), RESP_EXP("\xc6"), RESP_EXP("\xc7"),
    RESP_EXP("\xc8"), RESP_EXP("\xc9"), RESP_EXP("\xca"), RESP_EXP("\xcb"),
    RESP_EXP("\xcc"), RESP_EXP("\xcd"), RESP_EXP("\xce"), RESP_EXP("\xcf"),
    RESP_EXP("\xd0"), RESP_EXP("\xd1"), RESP_EXP("\xd2"), RESP_EXP("\xd3"),
    RESP_EXP("\xd4"), RESP_EXP("\xd5"), RESP_EXP("\xd6"), RESP_EXP("\xd7"),
    RESP_EXP("\xd8"), RESP_EXP("\xd9"), RESP_EXP("\xda"), RESP_EXP("\xdb"),
    RESP_EXP("\xdc"), RESP_EXP("\xdd"), RESP_EXP("\xde"), RESP_EXP("\xdf"),
    RESP_EXP("\xe0"), RESP_EXP("\xe1"), RESP_EXP("\xe2"), RESP_EXP("\xe3"),
    RESP_EXP("\xe4"), RESP_EXP("\xe5"), RESP_EXP("\xe6"), RESP_EXP("\xe7"),
    RESP_EXP("\xe8"), RESP_EXP("\xe9"), RESP_EXP("\xea"), RESP_EXP("\xeb"),
    RESP_EXP("\xec"), RESP_EXP("\xed"), RESP_EXP("\xee"), RESP_EXP("\xef"),
    RESP_EXP("\xf0"), RESP_EXP("\xf1"), RESP_EXP("\xf2"), RESP_EXP("\xf3"),
    RESP_EXP("\xf4"), RESP_EXP("\xf5"), RESP_EXP("\xf6"), RESP_EXP("\xf7"),
    RESP_EXP("\xf8"), RESP_EXP("\xf9"), RESP_EXP("\xfa"), RESP_EXP("\xfb"),
    RESP_EXP("\xfc"), RESP_EXP("\xfd"), RESP_EXP("\xfe"), RESP_EXP("\xff"),
};
#undef RESP_EXP

/* ------------------------------------------------------------------------
 * Line search shared by the request parser
 * ---------------------------------------------------------------------- */

/*
 * Look for the byte eol ending the line that starts at line[0]; avail bytes
 * are available there. *scanned counts the bytes searched by earlier calls
 * and is updated, so a resumed search only looks at new bytes.
 *
 * Like Redis's strchr() on its NUL-terminated query buffer, a NUL before
 * eol hides it for good. Redis fails with "too big" when more than max
 * bytes are buffered without a line end; judging that on the bytes rather
 * than on how they were split into reads gives: an end at index > max, or
 * none at all with avail > max, is too big.
 *
 * Returns the index of eol, RESP_EOL_AGAIN or RESP_EOL_TOO_BIG.
 */
static long long
resp_find_eol(const char *line, uint64_t avail, long long *scanned,
              uint64_t max, char eol)
{
    if (*scanned != RESP_SCAN_POISONED) {
        uint64_t from = (uint64_t)*scanned;
        uint64_t to = SP_MIN(avail, max + 1);

        if (from < to) {
            const char *hit = memchr(line + from, eol, to - from);
            uint64_t end = hit != NULL ? (uint64_t)(hit - line) : to;

            if (memchr(line + from, '\0', end - from) != NULL) {
                *scanned = RESP_SCAN_POISONED;
            } else if (hit != NULL) {
                *scanned = (long long)end;
                return (long long)end;
            } else {
                *scanned = (long long)to;
            }
        }
    }
    return avail > max ? RESP_EOL_TOO_BIG : RESP_EOL_AGAIN;
}

/*
 * Fast path for the usual count line: a type byte, 1 to 18 digits without
 * a leading zero (or exactly "0"), then '\r' and at least one more byte.
 * Returns the index of the '\r' and sets *val; returns 0 for any other
 * shape, and the general path (resp_find_eol() + sp_str2ll()) decides.
 * Every line it accepts, the general path accepts with the same value, so
 * it changes speed, never results: it saves a memchr for the line end, a
 * second one for NUL and a second pass over the digits, per argument of
 * every request and per header of every reply.
 */
static inline size_t
resp_count_fast(const char *line, uint64_t avail, long long *val)
{
    uint64_t lim = avail < 20 ? avail : 20;
    uint64_t i = 1;
    uint64_t v = 0;             /* 19 digits fit; more than 18 are refused */

    if (lim < 3 || (line[1] == '0' && line[2] != '\r'))
        return 0;
    for (; i < lim; i++) {
        unsigned d = (unsigned)(unsigned char)line[i] - '0';

        if (d > 9)
            break;
        v = v * 10 + d;
    }
    if (i == 1 || i >= lim || line[i] != '\r' || i + 1 >= avail)
        return 0;
    *val = (long long)v;
    return (size_t)i;
}

/* ------------------------------------------------------------------------
 * Request parser
 * ---------------------------------------------------------------------- */

void
resp_req_init(struct resp_req *r)
{
    memset(r, 0, sizeof(*r));
    r->argv = NULL;
    r->err = NULL;
    r->bulk_len = -1;
}

void
resp_req_deinit(struct resp_req *r)
{
    sp_free(r->argv);
    r->argv = NULL;
    r->argv_cap = 0;
    resp_req_reset(r);
}

void
resp_req_reset(struct resp_req *r)
{
    r->argc = 0;
    r->len = 0;
    r->is_inline = 0;
    r->err = NULL;
    r->state = RESP_REQ_START;
    r->off = 0;
    r->multibulk_left = 0;
    r->bulk_len = -1;
}

static int
resp_req_fail(struct resp_req *r, const char *err)
{
    r->err = err;
    r->state = RESP_REQ_FAILED;
    return RESP_ERROR;
}

/* Smallest argv allocation: GET, SET and most commands fit without
 * regrowing, and every idle client keeps one (32 bytes, not 64). */
#define RESP_ARGV_MIN 4

/*
 * Append argument [off, off + len) to r->argv, doubling the array when
 * full. need is how many arguments the request can have (argc + bulks
 * still announced, so at most max_multibulk): like Redis, never allocate
 * past it (beyond RESP_ARGV_MIN), so a large count costs memory only as
 * its arguments arrive.
 */
static void
resp_req_push_arg(struct resp_req *r, uint64_t off, uint64_t len,
                  uint64_t need)
{
    if (r->argc == r->argv_cap) {
        uint64_t cap = SP_MAX((uint64_t)r->argv_cap * 2, RESP_ARGV_MIN);

        if (cap > need)
            cap = SP_MAX(need, RESP_ARGV_MIN);
        r->argv = sp_realloc(r->argv, cap * sizeof(*r->argv));
        r->argv_cap = (uint32_t)cap;
    }
    r->argv[r->argc].off = (uint32_t)off;
    r->argv[r->argc].len = (uint32_t)len;
    r->argc++;
}

/* Read "*<count>\r\n" at buf[0]. RESP_DONE when read, with off past it. */
static int
resp_req_mbulk_count(struct resp_req *r, const char *buf, size_t len,
                     const struct resp_limits *lim)
{
    long long i, ll;

    i = (long long)resp_count_fast(buf, len, &ll);
    if (i == 0) {
        i = resp_find_eol(buf, len, &r->bulk_len, RESP_COUNT_LINE_MAX, '\r');
        if (i == RESP_EOL_TOO_BIG)
            return resp_req_fail(r,
                                 "Protocol error: too big mbulk count string");
        /* Redis wants the byte after '\r' present but never looks at it. */
        if (i < 0 || len < (uint64_t)i + 2)
            return RESP_AGAIN;
        if (sp_str2ll(buf + 1, (size_t)i - 1, &ll) != 0)
            return resp_req_fail(r, "Protocol error: invalid multibulk length");
    }
    if (ll > INT_MAX)
        return resp_req_fail(r, "Protocol error: invalid multibulk length");
    if (lim->unauthenticated && ll > RESP_UNAUTH_MULTIBULK_MAX)
        return resp_req_fail(r, "Protocol error: unauthenticated multibulk "
                                "length");
    if (ll > (long long)lim->max_multibulk)
        return resp_req_fail(r, "Protocol error: invalid multibulk length");
    /* A count <= 0 is an empty request, as in Redis. */
    r->multibulk_left = ll > 0 ? ll : 0;
    r->off = (uint64_t)i + 2;
    r->bulk_len = 0;
    r->state = RESP_REQ_BULK_COUNT;
    return RESP_DONE;
}

/* Read "$<len>\r\n" at buf[off]. RESP_DONE when read, with off at the
 * payload and bulk_len set. */
static int
resp_req_bulk_count(struct resp_req *r, const char *buf, size_t len,
                    const struct resp_limits *lim)
{
    const char *line = buf + r->off;
    uint64_t avail = len - r->off;
    uint64_t start, end;
    long long i = 0, ll;

    if (avail > 0 && line[0] == '$')
        i = (long long)resp_count_fast(line, avail, &ll);
    if (i == 0) {
        i = resp_find_eol(line, avail, &r->bulk_len, RESP_COUNT_LINE_MAX,
                          '\r');
        if (i == RESP_EOL_TOO_BIG)
            return resp_req_fail(r,
                                 "Protocol error: too big bulk count string");
        if (i < 0 || avail < (uint64_t)i + 2)
            return RESP_AGAIN;
        if (line[0] != '$')
            return resp_req_fail(r,
                                 resp_err_expected[(unsigned char)line[0]]);
        if (sp_str2ll(line + 1, (size_t)i - 1, &ll) != 0 || ll < 0)
            return resp_req_fail(r, "Protocol error: invalid bulk length");
    }
    if ((uint64_t)ll > lim->max_request_size)
        return resp_req_fail(r, "Protocol error: invalid bulk length");
    if (lim->unauthenticated && ll > RESP_UNAUTH_BULK_MAX)
        return resp_req_fail(r, "Protocol error: unauthenticated bulk length");
    /* The whole request, not only this bulk, must fit the limit and the
     * 32-bit offsets of struct resp_arg. */
    start = r->off + (uint64_t)i + 2;
    end = start + (uint64_t)ll + 2;
    if (end > lim->max_request_size || end > UINT32_MAX)
        return resp_req_fail(r, "Protocol error: invalid bulk length");
    r->off = start;
    r->bulk_len = ll;
    r->state = RESP_REQ_BULK_BODY;
    return RESP_DONE;
}

/* Continue a multibulk request from its current state. */
static int
resp_req_multibulk(struct resp_req *r, const char *buf, size_t len,
                   const struct resp_limits *lim)
{
    int rc;

    if (r->state == RESP_REQ_MBULK_COUNT) {
        rc = resp_req_mbulk_count(r, buf, len, lim);
        if (rc != RESP_DONE)
            return rc;
    }
    while (r->multibulk_left > 0) {
        if (r->state == RESP_REQ_BULK_COUNT) {
            rc = resp_req_bulk_count(r, buf, len, lim);
            if (rc != RESP_DONE)
                return rc;
        }
        if (len - r->off < (uint64_t)r->bulk_len + 2)
            return RESP_AGAIN;
        /* Like Redis, the two bytes after the payload are not checked. */
        resp_req_push_arg(r, r->off, (uint64_t)r->bulk_len,
                          (uint64_t)r->argc + (uint64_t)r->multibulk_left);
        r->off += (uint64_t)r->bulk_len + 2;
        r->multibulk_left--;
        r->bulk_len = 0;
        r->state = RESP_REQ_BULK_COUNT;
    }
    r->len = r->off;
    r->state = RESP_REQ_DONE;
    return RESP_DONE;
}

static int
resp_isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static int
resp_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Byte i of an inline line of end bytes, '\0' past its end: Redis splits
 * a NUL-terminated copy of the line. */
static char
resp_at(const char *buf, size_t end, size_t i)
{
    return i < end ? buf[i] : '\0';
}

/* After a closing quote: only a blank or the end of the line may follow. */
static int
resp_quote_ends(const char *buf, size_t end, size_t i)
{
    char c = resp_at(buf, end, i);

    return c == '\0' || resp_isspace(c);
}

/* One step inside a double-quoted part of a token: an escape (\xHH,
 * \n ...) or a byte is copied to buf[*w]. 1 to go on, 0 after the
 * closing quote (the token ends there), -1 for unbalanced quotes. */
static int
resp_dquote_step(char *buf, size_t end, size_t *p, size_t *w)
{
    char c = resp_at(buf, end, *p);

    if (c == '\\' && resp_at(buf, end, *p + 1) == 'x' &&
        resp_hexval(resp_at(buf, end, *p + 2)) >= 0 &&
        resp_hexval(resp_at(buf, end, *p + 3)) >= 0) {
        buf[(*w)++] = (char)(resp_hexval(buf[*p + 2]) * 16 +
                             resp_hexval(buf[*p + 3]));
        *p += 4;
    } else if (c == '\\' && resp_at(buf, end, *p + 1) != '\0') {
        switch (buf[*p + 1]) {
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'b': c = '\b'; break;
        case 'a': c = '\a'; break;
        default: c = buf[*p + 1]; break;
        }
        buf[(*w)++] = c;
        *p += 2;
    } else if (c == '"') {
        if (!resp_quote_ends(buf, end, *p + 1))
            return -1;
        (*p)++;
        return 0;
    } else if (c == '\0') {
        return -1;
    } else {
        buf[(*w)++] = c;
        (*p)++;
    }
    return 1;
}

/* The same inside a single-quoted part: only \' is an escape. */
static int
resp_squote_step(char *buf, size_t end, size_t *p, size_t *w)
{
    char c = resp_at(buf, end, *p);

    if (c == '\\' && resp_at(buf, end, *p + 1) == '\'') {
        buf[(*w)++] = '\'';
        *p += 2;
    } else if (c == '\'') {
        if (!resp_quote_ends(buf, end, *p + 1))
            return -1;
        (*p)++;
        return 0;
    } else if (c == '\0') {
        return -1;
    } else {
        buf[(*w)++] = c;
        (*p)++;
    }
    return 1;
}

/*
 * Unquote the token starting at buf[*p] in place (the copy of Redis's
 * sdssplitargs() token loop). Output never outruns input, so the token is
 * written over itself from its first byte. On return *p is past the token
 * and *w past its unquoted bytes. Returns 0, or -1 for unbalanced quotes.
 */
static int
resp_inline_token(char *buf, size_t end, size_t *p, size_t *w)
{
    char quote = 0;                 /* '"' or '\'' inside quotes */

    for (;;) {
        if (quote != 0) {
            int rc = quote == '"' ? resp_dquote_step(buf, end, p, w)
                                  : resp_squote_step(buf, end, p, w);
            if (rc <= 0)
                return rc;
            continue;
        }
        char c = resp_at(buf, end, *p);
        switch (c) {
        /* Not resp_isspace(): Redis ends a bare token on these only, so
         * "a\vb" is one argument. */
        case ' ': case '\n': case '\r': case '\t': case '\0':
            return 0;
        case '"':
        case '\'':
            quote = c;
            break;
        default:
            buf[(*w)++] = c;
            break;
        }
        (*p)++;
    }
}

/* Split the inline line buf[0, end) into r->argv. 0, or -1 for unbalanced
 * quotes. */
static int
resp_req_split_inline(struct resp_req *r, char *buf, size_t end)
{
    size_t p = 0;

    for (;;) {
        size_t start, w;

        while (p < end && resp_isspace(buf[p]))
            p++;
        if (p == end)
            return 0;
        start = w = p;
        if (resp_inline_token(buf, end, &p, &w) != 0)
            return -1;
        resp_req_push_arg(r, start, w - start, UINT32_MAX);
    }
}

/* Parse an inline request: one line ending in "\n" or "\r\n". */
static int
resp_req_inline(struct resp_req *r, char *buf, size_t len,
                const struct resp_limits *lim)
{
    long long nl;
    size_t end;

    nl = resp_find_eol(buf, len, &r->bulk_len, lim->max_inline, '\n');
    if (nl == RESP_EOL_TOO_BIG)
        return resp_req_fail(r, "Protocol error: too big inline request");
    if (nl < 0)
        return RESP_AGAIN;
    end = (size_t)nl;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    if (resp_req_split_inline(r, buf, end) != 0)
        return resp_req_fail(r, "Protocol error: unbalanced quotes in request");
    r->len = (uint64_t)nl + 1;
    r->state = RESP_REQ_DONE;
    return RESP_DONE;
}

/*
 * While a line is being searched for, bulk_len holds how many of its bytes
 * were already searched (see resp_find_eol()); it is a length only in
 * RESP_REQ_BULK_BODY.
 */
int
resp_req_parse(struct resp_req *r, char *buf, size_t len,
               const struct resp_limits *lim)
{
    switch (r->state) {
    case RESP_REQ_START:
        if (len == 0)
            return RESP_AGAIN;
        r->bulk_len = 0;
        if (buf[0] == '*') {
            r->state = RESP_REQ_MBULK_COUNT;
            return resp_req_multibulk(r, buf, len, lim);
        }
        r->is_inline = 1;
        r->state = RESP_REQ_INLINE;
        return resp_req_inline(r, buf, len, lim);
    case RESP_REQ_INLINE:
        return resp_req_inline(r, buf, len, lim);
    case RESP_REQ_DONE:
        return RESP_DONE;
    case RESP_REQ_FAILED:
        return RESP_ERROR;
    default:
        return resp_req_multibulk(r, buf, len, lim);
    }
}

/* ------------------------------------------------------------------------
 * Reply header lines (shared by the scanner and the value decoder, so the
 * two always agree on what is valid)
 * ---------------------------------------------------------------------- */

enum resp_kind {
    RESP_K_LINE,                /* the header line is the whole element */
    RESP_K_BLOB,                /* n payload bytes and "\r\n" follow */
    RESP_K_AGG,                 /* n elements follow */
};

/* Blob lengths and element counts above this are refused, which keeps
 * the scanner's "n + 2" and "2n + 1" from overflowing. */
#define RESP_MAX_COUNT (1LL << 60)

struct resp_head {
    enum resp_kind kind;        /* how the element continues */
    long long n;                /* payload bytes or elements; -1: nil */
    long long integer;          /* value of ':' and '#' */
};

/* Parse a length or count; -1 is accepted only when nil_ok. */
static int
resp_head_count(const char *s, size_t len, int nil_ok, long long *out)
{
    if (sp_str2ll(s, len, out) != 0 || *out > RESP_MAX_COUNT)
        return -1;
    if (*out < 0 && !(nil_ok && *out == -1))
        return -1;
    return 0;
}

/*
 * Parse a reply header line: line[0] is the type byte, n the line length
 * without its "\r\n". Returns 0 and fills *h, or -1 if the line is not
 * RESP2/RESP3.
 */
static int
resp_head_parse(const char *line, size_t n, struct resp_head *h)
{
    h->kind = RESP_K_LINE;
    h->n = 0;
    h->integer = 0;
    if (n == 0)
        return -1;
    switch (line[0]) {
    case '+': case '-': case ',': case '(':
        return 0;
    case ':':
        return sp_str2ll(line + 1, n - 1, &h->integer);
    case '_':
        h->integer = -1;
        return n == 1 ? 0 : -1;
    case '#':
        if (n != 2 || (line[1] != 't' && line[1] != 'f'))
            return -1;
        h->integer = line[1] == 't';
        return 0;
    case '$': case '!': case '=':
        h->kind = RESP_K_BLOB;
        return resp_head_count(line + 1, n - 1, line[0] == '$', &h->n);
    case '*': case '~': case '>': case '%': case '|':
        h->kind = RESP_K_AGG;
        if (resp_head_count(line + 1, n - 1, line[0] == '*', &h->n) != 0)
            return -1;
        /* A map has key and value per entry; an attribute is a map
         * followed by the reply it describes. */
        if (line[0] == '%' && h->n > 0)
            h->n *= 2;
        else if (line[0] == '|')
            h->n = h->n * 2 + 1;
        return 0;
    default:
        return -1;
    }
}

/* ------------------------------------------------------------------------
 * Reply scanner
 * ---------------------------------------------------------------------- */

enum resp_reply_state {
    RESP_REPLY_HEAD = 0,        /* reading an element's header at off */
    RESP_REPLY_PAYLOAD,         /* skipping skip bytes at off */
    RESP_REPLY_DONE,            /* complete; len and type valid */
    RESP_REPLY_FAILED,          /* not RESP */
};

void
resp_reply_init(struct resp_reply *r)
{
    r->len = 0;
    r->type = 0;
    r->off = 0;
    r->depth = 0;
    r->skip = 0;
    r->state = RESP_REPLY_HEAD;
}

/*
 * Find the "\r\n" ending the header line at line[0]. *scanned counts the
 * bytes already searched. The first '\r' ends the line and must be followed
 * by '\n'. Returns the index of '\r', RESP_EOL_AGAIN, or -2 when malformed.
 */
static long long
resp_find_crlf(const char *line, uint64_t avail, long long *scanned)
{
    uint64_t from = (uint64_t)*scanned;
    const char *cr;
    uint64_t i;

    if (from >= avail)
        return RESP_EOL_AGAIN;
    cr = memchr(line + from, '\r', avail - from);
    if (cr == NULL) {
        *scanned = (long long)avail;
        return RESP_EOL_AGAIN;
    }
    i = (uint64_t)(cr - line);
    *scanned = (long long)i;
    if (i + 1 == avail)
        return RESP_EOL_AGAIN;
    return line[i + 1] == '\n' ? (long long)i : -2;
}

/* One element ended at off: count it in its parents. 1 when the whole
 * reply is complete. */
static int
resp_reply_elem_done(struct resp_reply *r, const char *buf)
{
    while (r->depth > 0) {
        if (--r->left[r->depth - 1] > 0)
            return 0;
        r->depth--;
    }
    r->len = r->off;
    r->type = buf[0];
    r->state = RESP_REPLY_DONE;
    return 1;
}

static int
resp_reply_fail(struct resp_reply *r)
{
    r->state = RESP_REPLY_FAILED;
    return RESP_ERROR;
}

/* Read one header at off and set up what follows it. RESP_DONE when the
 * header was consumed. */
static int
resp_reply_head(struct resp_reply *r, const char *buf, size_t len)
{
    const char *line = buf + r->off;
    struct resp_head h;
    long long i = 0;

    /* Bulk strings and arrays are most replies' headers. */
    if (len > r->off && (line[0] == '$' || line[0] == '*')) {
        i = (long long)resp_count_fast(line, len - r->off, &h.n);
        if (i != 0 && line[i + 1] != '\n')
            return resp_reply_fail(r);
        h.kind = line[0] == '$' ? RESP_K_BLOB : RESP_K_AGG;
    }
    if (i == 0) {
        i = resp_find_crlf(line, len - r->off, &r->skip);
        if (i == RESP_EOL_AGAIN)
            return RESP_AGAIN;
        if (i < 0 || resp_head_parse(line, (size_t)i, &h) != 0)
            return resp_reply_fail(r);
    }
    r->off += (uint64_t)i + 2;
    r->skip = 0;
    if (h.kind == RESP_K_BLOB && h.n >= 0) {
        r->skip = h.n + 2;
        r->state = RESP_REPLY_PAYLOAD;
    } else if (h.kind == RESP_K_AGG && h.n > 0) {
        if (r->depth == RESP_MAX_DEPTH)
            return resp_reply_fail(r);
        r->left[r->depth++] = h.n;
    } else if (resp_reply_elem_done(r, buf)) {
        return RESP_DONE;
    }
    return RESP_AGAIN;
}

/*
 * In RESP_REPLY_HEAD, skip counts the header bytes already searched for
 * "\r\n"; in RESP_REPLY_PAYLOAD it is the payload length plus its "\r\n".
 */
int
resp_reply_parse(struct resp_reply *r, const char *buf, size_t len)
{
    for (;;) {
        switch (r->state) {
        case RESP_REPLY_DONE:
            return RESP_DONE;
        case RESP_REPLY_FAILED:
            return RESP_ERROR;
        case RESP_REPLY_PAYLOAD: {
            const char *crlf;

            if (len - r->off < (uint64_t)r->skip)
                return RESP_AGAIN;
            /* Checking the trailing "\r\n" is O(1) and catches a
             * desynchronized backend early. */
            crlf = buf + r->off + r->skip - 2;
            if (crlf[0] != '\r' || crlf[1] != '\n')
                return resp_reply_fail(r);
            r->off += (uint64_t)r->skip;
            r->skip = 0;
            r->state = RESP_REPLY_HEAD;
            if (resp_reply_elem_done(r, buf))
                return RESP_DONE;
            break;
        }
        default: {
            uint64_t before = r->off;
            int rc = resp_reply_head(r, buf, len);

            if (rc != RESP_AGAIN)
                return rc;
            /* No header consumed: more bytes are needed. */
            if (r->off == before)
                return RESP_AGAIN;
            break;
        }
        }
    }
}

long long
resp_reply_elements(const char *buf, size_t len)
{
    /* A valid header is a type byte, at most 21 characters of count
     * (sign included) and "\r": stop looking past that. */
    const char *cr = memchr(buf, '\r', len < 32 ? len : 32);
    struct resp_head h;
    if (cr == NULL || resp_head_parse(buf, (size_t)(cr - buf), &h) != 0 ||
        h.kind != RESP_K_AGG || buf[0] == '|')
        return -1;
    return h.n;
}

/* ------------------------------------------------------------------------
 * Value decoder
 * ---------------------------------------------------------------------- */

/* An aggregate being filled by resp_value_parse() or emptied by
 * resp_value_free(). */
struct resp_frame {
    struct resp_value *agg;     /* the aggregate */
    size_t next;                /* index of its next element */
};

/*
 * Fill v from the element header at buf[pos] (already validated by the
 * scanner). Returns the offset past the header (and past a blob's payload),
 * or 0 if the header is invalid after all.
 */
static size_t
resp_value_fill(struct resp_value *v, const char *buf, size_t len,
                size_t pos)
{
    const char *line = buf + pos;
    const char *cr = memchr(line, '\r', len - pos);
    struct resp_head h;
    size_t n;

    if (cr == NULL)
        return 0;
    n = (size_t)(cr - line);
    if (resp_head_parse(line, n, &h) != 0)
        return 0;
    pos += n + 2;
    v->type = line[0];
    v->integer = h.integer;
    switch (h.kind) {
    case RESP_K_LINE:
        if (line[0] != ':' && line[0] != '_') {
            v->str = line + 1;
            v->len = n - 1;
        }
        break;
    case RESP_K_BLOB:
        if (h.n < 0) {
            v->integer = -1;
            break;
        }
        v->str = buf + pos;
        v->len = (size_t)h.n;
        pos += (size_t)h.n + 2;
        break;
    case RESP_K_AGG:
        if (h.n < 0) {
            v->integer = -1;
        } else if (h.n > 0) {
            /* Safe: the scanner saw every element, each >= 3 bytes. */
            v->elems = sp_calloc((size_t)h.n, sizeof(*v->elems));
            v->nelems = (size_t)h.n;
        }
        break;
    }
    return pos;
}

/*
 * The scanner validates the reply and finds its end first, so the tree is
 * built only for complete, well-formed input and both agree on the length.
 * Building uses an explicit stack of RESP_MAX_DEPTH frames, not recursion.
 * Integers: ':' value, '#' 1 or 0, -1 for nil '$', '*' and for '_';
 * otherwise 0. An attribute '|' is an aggregate of 2n + 1 elements: its
 * key/value pairs, then the reply it describes.
 */
ssize_t
resp_value_parse(const char *buf, size_t len, struct resp_value **out)
{
    struct resp_frame stack[RESP_MAX_DEPTH];
    struct resp_reply scan;
    struct resp_value *root, *v;
    size_t pos = 0;
    int depth = 0;
    int rc;

    *out = NULL;
    resp_reply_init(&scan);
    rc = resp_reply_parse(&scan, buf, len);
    if (rc == RESP_AGAIN)
        return 0;
    if (rc != RESP_DONE)
        return -1;

    root = v = sp_calloc(1, sizeof(*root));
    for (;;) {
        pos = resp_value_fill(v, buf, scan.len, pos);
        if (pos == 0)
            goto fail;
        if (v->nelems > 0) {
            if (depth == RESP_MAX_DEPTH)
                goto fail;
            stack[depth].agg = v;
            stack[depth].next = 0;
            v = &v->elems[0];
            depth++;
            continue;
        }
        while (depth > 0 && ++stack[depth - 1].next ==
                            stack[depth - 1].agg->nelems)
            depth--;
        if (depth == 0)
            break;
        v = &stack[depth - 1].agg->elems[stack[depth - 1].next];
    }
    SP_ASSERT(pos == scan.len);
    *out = root;
    return (ssize_t)pos;

fail:
    resp_value_free(root);
    return -1;
}

/* Frees the tree iteratively; depth is bounded by RESP_MAX_DEPTH because
 * only resp_value_parse() builds trees. */
void
resp_value_free(struct resp_value *v)
{
    struct resp_frame stack[RESP_MAX_DEPTH + 1];
    int depth = 0;

    if (v == NULL)
        return;
    if (v->nelems > 0) {
        stack[0].agg = v;
        stack[0].next = 0;
        depth = 1;
    }
    while (depth > 0) {
        struct resp_frame *f = &stack[depth - 1];
        struct resp_value *c;

        if (f->next == f->agg->nelems) {
            sp_free(f->agg->elems);
            depth--;
            continue;
        }
        c = &f->agg->elems[f->next++];
        if (c->nelems > 0 && depth <= RESP_MAX_DEPTH) {
            stack[depth].agg = c;
            stack[depth].next = 0;
            depth++;
        }
    }
    sp_free(v);
}

void
resp_req_encode(struct buf *out, const struct resp_req *p,
                const char *base)
{
    if (!p->is_inline) {
        buf_append(out, base, (size_t)p->len);
        return;
    }
    buf_add_array(out, p->argc);
    for (uint32_t i = 0; i < p->argc; i++)
        buf_add_bulk(out, base + p->argv[i].off, p->argv[i].len);
}
