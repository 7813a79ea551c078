/* slotproxy - BSD-2-Clause
 *
 * Big keys: a ring, like the slow log's, of the requests and replies that
 * crossed a size threshold (monitor.big_request_bytes,
 * monitor.big_reply_bytes, monitor.big_reply_elements), with when, which
 * command, which key (cut), how big, how many elements and which node;
 * answered by PROXY BIGKEYS. One ring per worker, written only by it; the
 * worker publishes a copy (bigkeys_copy) under the lock it holds at its
 * tick, and the admin side merges the copies (bigkeys_reply_merged).
 *
 * Pure module: no I/O, no clock (the caller passes the wall-clock time),
 * no globals. The thresholds and the per-command counters
 * (slotproxy_big_requests_total / slotproxy_big_replies_total) belong to
 * the caller; bigkeys_classify() says whether a size crosses them.
 */
#ifndef SP_BIGKEYS_H
#define SP_BIGKEYS_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define BIGKEYS_KEY_MAX 128         /* key bytes kept per entry */
#define BIGKEYS_CMD_MAX 32          /* command name bytes kept, with NUL */
#define BIGKEYS_NODE_MAX 64         /* node "host:port" kept, with NUL */
#define BIGKEYS_LEN_DEFAULT 128     /* entries per ring */
#define BIGKEYS_REPLY_BYTES_DEFAULT (1024 * 1024)
#define BIGKEYS_REQUEST_BYTES_DEFAULT (1024 * 1024)
#define BIGKEYS_REPLY_ELEMENTS_DEFAULT 10000

enum bigkeys_dir {
    BIGKEYS_REQUEST = 0,        /* a client's request to the cluster */
    BIGKEYS_REPLY = 1,          /* a node's reply */
};

/* What bigkeys_classify() found over the thresholds (a bit mask). */
#define BIGKEYS_BIG_BYTES 1u     /* more bytes than the threshold */
#define BIGKEYS_BIG_ELEMENTS 2u  /* more elements than the threshold */

/* Thresholds, held in the caller's config; 0 turns one off. */
struct bigkeys_thresholds {
    uint64_t request_bytes;     /* monitor.big_request_bytes */
    uint64_t reply_bytes;       /* monitor.big_reply_bytes (1 MB) */
    uint64_t reply_elements;    /* monitor.big_reply_elements */
};

/*
 * Which thresholds a request or reply of bytes bytes and elements
 * top-level elements crosses (strictly more than the threshold): a mask
 * of BIGKEYS_BIG_*, 0 when it is not big. Requests are judged by bytes
 * only; elements < 0 means "not a collection". Costs two compares: call
 * it for every reply whose size the scanner already knows.
 */
unsigned bigkeys_classify(const struct bigkeys_thresholds *t,
                          enum bigkeys_dir dir, uint64_t bytes,
                          int64_t elements);

/* One big request or reply, as the caller describes it to bigkeys_add. */
struct bigkeys_event {
    uint64_t unix_ms;           /* wall-clock time, ms since the epoch */
    enum bigkeys_dir dir;       /* request or reply */
    const char *command;        /* command name (NUL-terminated) */
    const char *key;            /* first key, or NULL for none */
    size_t key_len;             /* bytes of key */
    uint64_t bytes;             /* size on the wire, RESP framing included */
    int64_t elements;           /* reply: top-level elements of an
                                 * aggregate, -1 for a string or other
                                 * scalar; request: its argument count */
    const char *node;           /* "host:port" of the node, or NULL */
};

struct bigkeys_entry {
    uint64_t unix_ms;           /* when it was seen */
    uint64_t bytes;             /* size in bytes */
    int64_t elements;           /* as in bigkeys_event */
    uint64_t key_full_len;      /* length of the whole key */
    uint32_t key_len;           /* bytes kept in key */
    uint8_t dir;                /* enum bigkeys_dir */
    uint8_t has_key;            /* 0 when the command had no key */
    char command[BIGKEYS_CMD_MAX]; /* command name, NUL-terminated */
    char key[BIGKEYS_KEY_MAX];  /* first key_len bytes of the key */
    char node[BIGKEYS_NODE_MAX];   /* node, NUL-terminated, "" if none */
};

struct bigkeys {
    struct bigkeys_entry *ring; /* cap entries, owned */
    uint32_t cap;               /* entries the ring holds at most */
    uint32_t len;               /* entries in use */
    uint32_t head;              /* next entry to write */
};

/* An empty ring of cap entries (0: records nothing). */
void bigkeys_init(struct bigkeys *b, uint32_t cap);
void bigkeys_deinit(struct bigkeys *b);
/* Forget every entry; the ring keeps its size. */
void bigkeys_reset(struct bigkeys *b);

/*
 * Change the ring's size to cap, keeping the newest min(len, cap)
 * entries in order (config reload). cap 0 frees the ring.
 */
void bigkeys_resize(struct bigkeys *b, uint32_t cap);

/* Record ev, overwriting the oldest entry when full. The strings are
 * copied (cut to the sizes above); nothing is allocated. */
void bigkeys_add(struct bigkeys *b, const struct bigkeys_event *ev);

/* Make dst an exact copy of src (dst initialised; reallocated only when
 * the sizes differ). For publishing a worker's ring to the admin side. */
void bigkeys_copy(struct bigkeys *dst, const struct bigkeys *src);

/*
 * The PROXY BIGKEYS [count] reply, newest first, at most count entries
 * (count < 0: 10). An array of 7-element arrays:
 *   1) unix time in seconds (integer)
 *   2) direction: "request" or "reply" (bulk)
 *   3) command name (bulk)
 *   4) key (bulk; cut to BIGKEYS_KEY_MAX bytes followed by
 *      "... (N more bytes)", as SLOWLOG cuts arguments; nil when the
 *      command has no key)
 *   5) size in bytes (integer)
 *   6) elements (integer; -1 for a reply that is not a collection)
 *   7) node "host:port" (bulk; "" when unknown)
 */
void bigkeys_reply(const struct bigkeys *b, struct buf *out, long long count);

/* The same reply over n rings (the workers' copies), merged newest first
 * by time. Allocates a scratch array and frees it before returning. */
void bigkeys_reply_merged(const struct bigkeys *const *rings, size_t n,
                          struct buf *out, long long count);

#endif
