/* slotproxy - BSD-2-Clause
 *
 * RESP parsing, no I/O. Three parsers:
 *  - resp_req_*: incremental request parser (multibulk and inline) that
 *    parses in place: it records argument offsets into the caller's buffer
 *    and never copies argument bytes.
 *  - resp_reply_*: incremental reply scanner: finds where one complete reply
 *    ends (any RESP2 type, nested aggregates, RESP3 types) without building
 *    anything, so the exact reply bytes can be handed to a client.
 *  - resp_value_*: decodes one complete reply into a tree (topology replies,
 *    tests); strings point into the source buffer.
 */
#ifndef SP_RESP_H
#define SP_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum resp_status {
    RESP_DONE = 0,              /* one complete request/reply parsed */
    RESP_AGAIN = 1,             /* need more bytes; call again with more */
    RESP_ERROR = -1,            /* malformed input; see ->err */
};

/* One argument of a request: bytes [off, off + len) from the request's
 * first byte. Offsets stay valid when the request's bytes are copied. */
struct resp_arg {
    uint32_t off;
    uint32_t len;
};

/* Limits enforced while parsing, before anything is buffered. */
struct resp_limits {
    uint64_t max_request_size;  /* max bytes of one request (and of one bulk) */
    uint32_t max_multibulk;     /* max number of arguments */
    uint32_t max_inline;        /* max bytes of one inline line (Redis: 64k) */
    int unauthenticated;        /* client has yet to AUTH: Redis's tighter
                                 * caps below apply as well */
};

/* Redis's caps for a client that must still authenticate. */
#define RESP_UNAUTH_MULTIBULK_MAX 10
#define RESP_UNAUTH_BULK_MAX 16384

struct resp_req {
    /* Results, valid after RESP_DONE. */
    struct resp_arg *argv;      /* arguments; array owned by the parser */
    uint32_t argc;              /* number of arguments (0: empty request) */
    uint32_t argv_cap;          /* allocated entries in argv */
    uint64_t len;               /* total bytes the request occupies */
    int is_inline;              /* 1 if it was an inline command (args were
                                 * unquoted in place: the raw bytes are no
                                 * longer valid RESP) */
    const char *err;            /* on RESP_ERROR: Redis's text without the
                                 * "-ERR " prefix, e.g.
                                 * "Protocol error: invalid bulk length" */
    /* Parser state, private. */
    int state;
    uint64_t off;               /* resume offset from the request start */
    long long multibulk_left;   /* bulks still expected */
    long long bulk_len;         /* length of the bulk being read, or -1 */
};

void resp_req_init(struct resp_req *r);
struct buf;
/* Append the parsed request as RESP multibulk: its own bytes (base holds
 * them) when they were multibulk, a re-encoding of the args when inline
 * (the inline bytes were unquoted in place). */
void resp_req_encode(struct buf *out, const struct resp_req *p,
                     const char *base);
void resp_req_deinit(struct resp_req *r);
/* Forget the current request; keep the argv allocation for reuse. */
void resp_req_reset(struct resp_req *r);
/* 1 when r is as resp_req_reset() left it: no request parsed and nothing
 * of a partial one remembered (a line scanned in part, a bulk count), so
 * any other parser in that state can take the request over. Inline: once
 * per client read. */
static inline int
resp_req_idle(const struct resp_req *r)
{
    return r->state == 0 /* RESP_REQ_START */ && r->off == 0 &&
           r->argc == 0 && r->multibulk_left == 0 && r->bulk_len == -1;
}

/*
 * Parse the request that starts at buf[0]; len bytes are available. The
 * caller passes the same request start on every call (with more bytes
 * appended) until RESP_DONE or RESP_ERROR; the parser resumes where it
 * stopped, so feeding a request one byte at a time costs O(total bytes).
 * buf is writable because inline commands are unquoted in place.
 * On RESP_DONE, r->len bytes belong to this request (an empty request,
 * argc == 0, must be skipped by the caller). Call resp_req_reset() before
 * the next request. Limits are checked as soon as a length is read.
 */
int resp_req_parse(struct resp_req *r, char *buf, size_t len,
                   const struct resp_limits *lim);

#define RESP_MAX_DEPTH 128

struct resp_reply {
    /* Results, valid after RESP_DONE. */
    uint64_t len;               /* bytes of the complete reply */
    char type;                  /* first byte of the top-level reply */
    /* Scanner state, private. */
    uint64_t off;
    int depth;
    long long left[RESP_MAX_DEPTH]; /* elements still expected per level */
    long long skip;             /* payload bytes of a bulk still to skip */
    int state;
};

void resp_reply_init(struct resp_reply *r); /* also resets */

/*
 * Find the end of the reply starting at buf[0] (len bytes available),
 * resuming from the previous call. RESP_DONE sets r->len and r->type;
 * RESP_ERROR means the backend sent something that is not RESP (the
 * connection must be dropped). Bulk payloads are skipped, not scanned.
 */
int resp_reply_parse(struct resp_reply *r, const char *buf, size_t len);

/*
 * The top-level element count of a complete reply buf[0 .. len) that
 * resp_reply_parse() accepted, read from its header line alone (no pass
 * over the rest): n for an aggregate (a map's keys and values both
 * count, as RESP2 shows them), -1 for anything else (strings, numbers,
 * errors, a nil array).
 */
long long resp_reply_elements(const char *buf, size_t len);

struct resp_value {
    char type;                  /* '+' '-' ':' '$' '*' or a RESP3 type byte */
    long long integer;          /* ':' value; -1 for a nil '$' or '*' */
    const char *str;            /* '+' '-' '$' (and RESP3 strings): into
                                 * the source buffer, not NUL-terminated */
    size_t len;                 /* length of str */
    struct resp_value *elems;   /* aggregate elements ('*', '%' has 2n) */
    size_t nelems;
};

/*
 * Decode one complete reply from buf. Returns the bytes consumed (> 0) and
 * sets *out (free with resp_value_free), 0 if buf holds an incomplete
 * reply, -1 if it is malformed. Strings point into buf.
 */
ssize_t resp_value_parse(const char *buf, size_t len, struct resp_value **out);
void resp_value_free(struct resp_value *v);

#endif
