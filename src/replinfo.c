/* slotproxy - BSD-2-Clause
 *
 * INFO replication parser. Works on the text in place, line by line, with
 * counted strings throughout (the text is not NUL-terminated and may hold
 * anything). master_repl_offset comes after the replica lines, so lags are
 * computed once the whole text is read.
 */
#include "build_config.h"

#include <string.h>

#include "alloc.h"
#include "replinfo.h"
#include "util.h"

void
replinfo_init(struct replinfo *ri)
{
    memset(ri, 0, sizeof(*ri));
    ri->master_offset = -1;
    ri->connected = -1;
    ri->master_link_up = -1;
    ri->replica_offset = -1;
}

void
replinfo_deinit(struct replinfo *ri)
{
    sp_free(ri->replicas);
    memset(ri, 0, sizeof(*ri));
}

/* Forget the last parse, keeping the record array. */
static void
ri_clear(struct replinfo *ri)
{
    struct replinfo_replica *keep = ri->replicas;
    uint32_t cap = ri->cap;
    replinfo_init(ri);
    ri->replicas = keep;
    ri->cap = cap;
}

/* A counted string: a line, a field, a value. */
struct ri_str {
    const char *p;              /* first byte, inside the text */
    size_t n;                   /* length */
};

static int
str_eq(struct ri_str s, const char *c)
{
    size_t n = strlen(c);
    return s.n == n && memcmp(s.p, c, n) == 0;
}

/* If s starts with prefix, drop it and return 1. */
static int
str_skip(struct ri_str *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s->n < n || memcmp(s->p, prefix, n) != 0)
        return 0;
    s->p += n;
    s->n -= n;
    return 1;
}

/* A non-negative decimal, or -1 when s is not one. */
static long long
str_num(struct ri_str s)
{
    long long v;
    return sp_str2ll(s.p, s.n, &v) == 0 && v >= 0 ? v : -1;
}

/* Split s at the first c: *head before it, s after it; 0 when no c
 * (then *head is all of s and s is empty). */
static int
str_split(struct ri_str *s, char c, struct ri_str *head)
{
    const char *at = memchr(s->p, c, s->n);
    head->p = s->p;
    head->n = at ? (size_t)(at - s->p) : s->n;
    s->p += at ? head->n + 1 : s->n;
    s->n -= at ? head->n + 1 : s->n;
    return at != NULL;
}

/* Copy v into a NUL-terminated field of size bytes; 0 if it does not
 * fit. */
static int
str_copy(char *dst, size_t size, struct ri_str v)
{
    if (v.n >= size)
        return 0;
    memcpy(dst, v.p, v.n);
    dst[v.n] = '\0';
    return 1;
}

/* One field of a replica line into r; 0 when the line must be dropped. */
static int
ri_field(struct replinfo_replica *r, struct ri_str k, struct ri_str v)
{
    if (str_eq(k, "ip"))
        return v.n > 0 && str_copy(r->ip, sizeof(r->ip), v);
    if (str_eq(k, "port")) {
        long long port = str_num(v);
        r->port = port > 0 && port <= 65535 ? (uint16_t)port : 0;
        return r->port != 0;
    }
    if (str_eq(k, "state")) {
        /* A state too long for the field is none we know: not online. */
        if (!str_copy(r->state, sizeof(r->state), v))
            r->state[0] = '\0';
        r->online = str_eq(v, "online");
    } else if (str_eq(k, "offset")) {
        r->offset = str_num(v);
    } else if (str_eq(k, "lag")) {
        r->lag_s = str_num(v);
    }
    return 1; /* unknown fields are ignored */
}

/* The fields of one "slaveN:" line (after the colon); 0 when unusable:
 * no ip= or port=, or not key=value (Redis 2.6's "ip,port,state"). */
static int
ri_replica(struct replinfo_replica *r, struct ri_str s)
{
    memset(r, 0, sizeof(*r));
    r->offset = -1;
    r->lag_s = -1;
    while (s.n > 0) {
        struct ri_str f, k;
        str_split(&s, ',', &f);
        if (!str_split(&f, '=', &k) || !ri_field(r, k, f))
            return 0;
    }
    return r->ip[0] != '\0' && r->port != 0;
}

/* "slave<digits>:" or "replica<digits>:" at the start of *line: drop it
 * and return 1. */
static int
ri_is_replica_line(struct ri_str *line)
{
    struct ri_str s = *line;
    if (!str_skip(&s, "slave") && !str_skip(&s, "replica"))
        return 0;
    size_t d = 0;
    while (d < s.n && s.p[d] >= '0' && s.p[d] <= '9')
        d++;
    if (d == 0 || d >= s.n || s.p[d] != ':')
        return 0;
    line->p = s.p + d + 1;
    line->n = s.n - d - 1;
    return 1;
}

static void
ri_add_replica(struct replinfo *ri, struct ri_str rest)
{
    if (ri->nreplicas >= REPLINFO_MAX_REPLICAS) {
        ri->skipped++;
        return;
    }
    if (ri->nreplicas == ri->cap) {
        ri->cap = ri->cap ? 2 * ri->cap : 4;
        ri->replicas = sp_realloc(ri->replicas,
                                  ri->cap * sizeof(*ri->replicas));
    }
    if (ri_replica(&ri->replicas[ri->nreplicas], rest))
        ri->nreplicas++;
    else
        ri->skipped++;
}

/* One line; returns 1 when it is one of the lines that mark INFO. */
static int
ri_line(struct replinfo *ri, struct ri_str line)
{
    if (str_skip(&line, "role:")) {
        ri->role = str_eq(line, "master")  ? REPLINFO_ROLE_MASTER
                   : str_eq(line, "slave") ? REPLINFO_ROLE_REPLICA
                                           : REPLINFO_ROLE_UNKNOWN;
        return 1;
    }
    if (str_skip(&line, "master_repl_offset:")) {
        ri->master_offset = str_num(line);
        return 1;
    }
    if (str_skip(&line, "connected_slaves:"))
        ri->connected = str_num(line);
    else if (str_skip(&line, "master_link_status:"))
        ri->master_link_up = str_eq(line, "up")     ? 1
                             : str_eq(line, "down") ? 0
                                                    : -1;
    else if (str_skip(&line, "slave_repl_offset:"))
        ri->replica_offset = str_num(line);
    else if (ri_is_replica_line(&line))
        ri_add_replica(ri, line);
    return 0;
}

int
replinfo_parse(struct replinfo *ri, const char *text, size_t len)
{
    struct ri_str s = {text, len};
    int marked = 0;
    ri_clear(ri);
    while (s.n > 0) {
        struct ri_str line;
        str_split(&s, '\n', &line);
        if (line.n > 0 && line.p[line.n - 1] == '\r')
            line.n--;
        marked |= ri_line(ri, line);
    }
    for (uint32_t i = 0; i < ri->nreplicas; i++) {
        struct replinfo_replica *r = &ri->replicas[i];
        /* A replica "ahead" of its master reports an offset from
         * another history (a stale view across a restart or failover):
         * no lag can be computed, and such a replica is no read target,
         * as topology.c has it today. */
        r->lag_known = ri->master_offset >= 0 && r->offset >= 0 &&
                       r->offset <= ri->master_offset;
        r->lag_bytes = r->lag_known
                           ? (uint64_t)(ri->master_offset - r->offset)
                           : 0;
    }
    return marked ? 0 : -1;
}

int
replinfo_parse_reply(struct replinfo *ri, const char *reply, size_t len)
{
    ri_clear(ri);
    if (len < 4 || (reply[0] != '$' && reply[0] != '='))
        return -1;
    const char *eol = memchr(reply, '\r', len);
    long long n;
    if (eol == NULL || sp_str2ll(reply + 1, (size_t)(eol - reply - 1), &n) ||
        n < 0)
        return -1;
    size_t head = (size_t)(eol - reply) + 2;
    if (head > len || eol[1] != '\n' || (uint64_t)n + 2 > len - head ||
        memcmp(reply + head + n, "\r\n", 2) != 0)
        return -1; /* not one complete bulk */
    const char *p = reply + head;
    size_t plen = (size_t)n;
    if (reply[0] == '=') {
        /* RESP3 verbatim: "txt:" then the text. */
        if (plen < 4 || p[3] != ':')
            return -1;
        p += 4;
        plen -= 4;
    }
    return replinfo_parse(ri, p, plen);
}

const struct replinfo_replica *
replinfo_find(const struct replinfo *ri, const char *ip, uint16_t port)
{
    for (uint32_t i = 0; i < ri->nreplicas; i++)
        if (ri->replicas[i].port == port &&
            strcmp(ri->replicas[i].ip, ip) == 0)
            return &ri->replicas[i];
    return NULL;
}

uint32_t
replinfo_healthy(const struct replinfo *ri, uint64_t max_lag_bytes)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ri->nreplicas; i++) {
        const struct replinfo_replica *r = &ri->replicas[i];
        if (r->online && (max_lag_bytes == UINT64_MAX ||
                          (r->lag_known && r->lag_bytes <= max_lag_bytes)))
            n++;
    }
    return n;
}
