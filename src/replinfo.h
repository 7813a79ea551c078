/* slotproxy - BSD-2-Clause
 *
 * INFO replication, parsed: the role of the node, the master's
 * replication offset, and one record per replica line
 * (slaveN:ip=...,port=...,state=...,offset=...,lag=...) with its lag in
 * bytes (master offset - replica offset) and in seconds (since its last
 * ACK). Checked against what Redis 7.0, Redis 7.4 and Valkey 8.0 write
 * (tests/unit/data/replinfo, recorded by scripts/record_replinfo.py):
 * fields in any order, unknown fields ignored (Valkey's type=replica),
 * IPv6 addresses, \r\n or \n line ends, missing fields, garbage.
 *
 * Pure module: no I/O, no globals. Used by the replica-lag poll (one
 * INFO replication per master per interval) to decide which replicas may
 * serve reads and to export slotproxy_replica_lag_bytes and friends.
 */
#ifndef SP_REPLINFO_H
#define SP_REPLINFO_H

#include <stddef.h>
#include <stdint.h>

#define REPLINFO_HOST_MAX 256       /* ip= bytes kept, with NUL (Redis's
                                     * NET_HOST_STR_LEN: an announced
                                     * hostname fits) */
#define REPLINFO_STATE_MAX 32       /* state= bytes kept, with NUL */
#define REPLINFO_MAX_REPLICAS 1024  /* replica lines parsed at most */

enum replinfo_role {
    REPLINFO_ROLE_UNKNOWN = 0,  /* no (known) role: line */
    REPLINFO_ROLE_MASTER,       /* role:master */
    REPLINFO_ROLE_REPLICA,      /* role:slave */
};

/* One replica as its master sees it. */
struct replinfo_replica {
    char ip[REPLINFO_HOST_MAX]; /* ip= (an IPv6 address has no brackets) */
    uint16_t port;              /* port= (1..65535) */
    char state[REPLINFO_STATE_MAX]; /* state=: online, wait_bgsave,
                                     * send_bulk ...; "" when missing */
    int online;                 /* state is "online": the link is up and
                                 * the replica streams the master's
                                 * writes */
    long long offset;           /* offset= acknowledged; -1 when missing */
    long long lag_s;            /* lag= seconds since its last ACK; -1
                                 * when missing */
    int lag_known;              /* both offsets are known, and the
                                 * replica's is not ahead of the
                                 * master's (another history) */
    uint64_t lag_bytes;         /* master_offset - offset when lag_known,
                                 * else 0 */
};

struct replinfo {
    enum replinfo_role role;    /* role: */
    long long master_offset;    /* master_repl_offset: (a replica reports
                                 * its own); -1 when missing */
    long long connected;        /* connected_slaves:; -1 when missing */
    int master_link_up;         /* role:slave only: master_link_status up
                                 * (1) or down (0); -1 when missing */
    long long replica_offset;   /* role:slave only: slave_repl_offset:; -1
                                 * when missing */
    struct replinfo_replica *replicas; /* nreplicas records, owned */
    uint32_t nreplicas;         /* records parsed, in line order */
    uint32_t cap;               /* allocated records */
    uint32_t skipped;           /* replica lines that could not be used
                                 * (no ip or port, a field that is not
                                 * key=value, past the first
                                 * REPLINFO_MAX_REPLICAS) */
};

void replinfo_init(struct replinfo *ri);
void replinfo_deinit(struct replinfo *ri);

/*
 * Parse the text of INFO replication (or of a whole INFO: other sections
 * are skipped) from text[0 .. len), replacing what ri held (its record
 * array is kept for reuse). Returns 0 when the text had a role: or a
 * master_repl_offset: line, -1 when it looks like no INFO at all (ri is
 * still valid: what little was found). Never reads past len.
 */
int replinfo_parse(struct replinfo *ri, const char *text, size_t len);

/*
 * The same from a complete reply to INFO replication: a RESP2 bulk
 * string ($) or a RESP3 verbatim string (=, "txt:" format). Returns -1
 * for an error reply, a nil, any other type or a truncated reply
 * (replinfo_parse is not called: ri is reset to empty).
 */
int replinfo_parse_reply(struct replinfo *ri, const char *reply, size_t len);

/* The record of replica ip:port (ip compared byte for byte: pass the
 * form INFO uses, without brackets), or NULL. */
const struct replinfo_replica *replinfo_find(const struct replinfo *ri,
                                             const char *ip, uint16_t port);

/* Replicas that are online and, when max_lag_bytes is not UINT64_MAX, at
 * most max_lag_bytes behind (with a known lag): the value of
 * slotproxy_master_replicas{master}. */
uint32_t replinfo_healthy(const struct replinfo *ri, uint64_t max_lag_bytes);

#endif
