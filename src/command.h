/* slotproxy - BSD-2-Clause
 *
 * The command table: every Redis 7.0 command with its arity, flags and key
 * specs (generated from a real redis-server's COMMAND INFO / COMMAND DOCS
 * by scripts/gen_commands.py into command.def), plus the proxy's own
 * routing column. Lookup, arity checks, key extraction and the exact Redis
 * error texts for unknown commands and wrong arity. No I/O.
 */
#ifndef SP_COMMAND_H
#define SP_COMMAND_H

#include <stddef.h>
#include <stdint.h>

struct resp_arg;
struct buf;

/* Redis command flags (the ones the proxy uses). */
#define CMD_F_WRITE        (1u << 0)
#define CMD_F_READONLY     (1u << 1)
#define CMD_F_DENYOOM      (1u << 2)
#define CMD_F_ADMIN        (1u << 3)
#define CMD_F_PUBSUB       (1u << 4)
#define CMD_F_NOSCRIPT     (1u << 5)
#define CMD_F_BLOCKING     (1u << 6)
#define CMD_F_LOADING      (1u << 7)
#define CMD_F_STALE        (1u << 8)
#define CMD_F_FAST         (1u << 9)
#define CMD_F_MOVABLEKEYS  (1u << 10)
#define CMD_F_NO_MULTI     (1u << 11)
#define CMD_F_NO_AUTH      (1u << 12)
#define CMD_F_ALLOW_BUSY   (1u << 13)
/* Flags only the learned table (cmdtable.c) sets: the generated table
 * predates them. Bits 16..19 are left for the proxy's own bits. */
#define CMD_F_NO_MANDATORY_KEYS (1u << 14) /* keys optional (EVAL, FCALL) */
#define CMD_F_MODULE       (1u << 15) /* implemented by a server module */
#define CMD_F_ASKING       (1u << 20) /* cluster-internal (RESTORE-ASKING) */
/* Every flag that comes from the server's COMMAND reply: a learned entry
 * takes these from the server and any other bit from the built-in entry. */
#define CMD_F_REDIS_MASK   (0x3fffu | CMD_F_NO_MANDATORY_KEYS | \
                            CMD_F_MODULE | CMD_F_ASKING)

/* The proxy's own permission bits, in the same flags word (generated from
 * PERMS in scripts/gen_commands.py, where each list gives its reasons). */
#define CMD_P_BEFORE_AUTH  (1u << 16) /* runs before AUTH */
#define CMD_P_READ_ROLE    (1u << 17) /* the read-only role may run it
                                       * although Redis does not flag it
                                       * readonly */
#define CMD_P_NEWER        (1u << 18) /* a row of a later Redis than the
                                       * generating one (NEWER in the
                                       * generator): the proxy answers or
                                       * refuses it itself */

/* How the proxy handles a command (the proxy's own column). */
enum cmd_route {
    CMD_ROUTE_KEYED = 0,    /* all keys in one slot; forwarded whole to the
                             * slot's master (CROSSSLOT otherwise) */
    CMD_ROUTE_SPLIT,        /* MGET MSET DEL UNLINK EXISTS TOUCH: split per
                             * slot and merged */
    CMD_ROUTE_ANY,          /* keyless; any master can answer */
    CMD_ROUTE_ALL,          /* fan out to every master, merge the replies */
    CMD_ROUTE_LOCAL,        /* answered by the proxy itself */
    CMD_ROUTE_TXN,          /* transactions (txn.c): queued in the proxy;
                             * WATCH on a dedicated connection */
    CMD_ROUTE_PUBSUB,       /* subscriptions on dedicated push-mode
                             * connections (pubsub.c) */
    CMD_ROUTE_BLOCKING,     /* may block on the server: on a dedicated
                             * connection for its duration (XREAD without
                             * BLOCK is an ordinary keyed read) */
    CMD_ROUTE_REFUSED,      /* deliberately not supported through a proxy */
};

/* The proxy's own handler for a command, if it has one (the handler
 * column of command.def): dispatch, txn, pubsub and admin switch on it
 * instead of comparing names. */
enum cmd_op {
    CMD_OP_NONE = 0,
    CMD_OP_PING, CMD_OP_ECHO, CMD_OP_QUIT, CMD_OP_SELECT, CMD_OP_HELLO,
    CMD_OP_INFO, CMD_OP_AUTH, CMD_OP_RESET, CMD_OP_OK, CMD_OP_ROLE,
    CMD_OP_CLIENT, CMD_OP_COMMAND, CMD_OP_SLOWLOG, CMD_OP_CLUSTER,
    CMD_OP_MULTI, CMD_OP_EXEC, CMD_OP_DISCARD, CMD_OP_WATCH, CMD_OP_UNWATCH,
    CMD_OP_SUBSCRIBE, CMD_OP_PSUBSCRIBE, CMD_OP_SSUBSCRIBE,
    CMD_OP_UNSUBSCRIBE, CMD_OP_PUNSUBSCRIBE, CMD_OP_SUNSUBSCRIBE,
    CMD_OP_PUBLISH, CMD_OP_WAIT,
    CMD_OP_COUNT
};

/* How the replies of a fanned-out command (routes SPLIT and ALL) merge
 * into one (fanout.c). */
enum cmd_merge {
    CMD_MERGE_NONE = 0,     /* not fanned out */
    CMD_MERGE_ARRAY,        /* MGET: values back in key order */
    CMD_MERGE_OK,           /* MSET: +OK when all fragments said so */
    CMD_MERGE_SUM,          /* integers added (DEL, EXISTS, DBSIZE ...) */
    CMD_MERGE_CONCAT,       /* arrays concatenated (KEYS) */
    CMD_MERGE_SAME,         /* every master answers alike (FLUSHALL, SCRIPT
                             * LOAD ...): that answer or the first error */
    CMD_MERGE_AND,          /* arrays of 0/1 and-ed (SCRIPT EXISTS) */
    CMD_MERGE_FIRST,        /* the first non-nil reply (RANDOMKEY) */
    CMD_MERGE_SCAN,         /* one master per call; cursor rewritten */
    CMD_MERGE_UNION,        /* arrays merged without duplicates */
    CMD_MERGE_PAIRSUM,      /* [name, n, name, n ...]: n summed per name */
    CMD_MERGE_INFO,         /* INFO: the proxy's sections + keyspace summed
                             * (not a table value: fanout_info) */
    CMD_MERGE_SLOTSTATS,    /* CLUSTER SLOT-STATS: every master's slots,
                             * ordered as one node would (slotstats.c) */
};

/* Key spec, as Redis 7 describes it: where to begin searching, then how to
 * find the keys from there. */
enum cmd_bs_type { CMD_BS_UNKNOWN = 0, CMD_BS_INDEX, CMD_BS_KEYWORD };
enum cmd_fk_type { CMD_FK_UNKNOWN = 0, CMD_FK_RANGE, CMD_FK_KEYNUM };

/* Redis's key spec flags (cmd_keyspec.kflags), as COMMAND reports them.
 * Only the learned table (cmdtable.c) fills them in. */
#define CMD_KS_RO             (1u << 0)  /* read-only access */
#define CMD_KS_RW             (1u << 1)  /* read-write */
#define CMD_KS_OW             (1u << 2)  /* overwrite */
#define CMD_KS_RM             (1u << 3)  /* removes the key */
#define CMD_KS_ACCESS         (1u << 4)  /* returns or copies user data */
#define CMD_KS_UPDATE         (1u << 5)  /* updates data */
#define CMD_KS_INSERT         (1u << 6)  /* adds data */
#define CMD_KS_DELETE         (1u << 7)  /* deletes data */
#define CMD_KS_NOT_KEY        (1u << 8)  /* a channel, not a key (SPUBLISH)
                                          * but routed by its slot */
#define CMD_KS_INCOMPLETE     (1u << 9)  /* may miss keys (see incomplete) */
#define CMD_KS_VARIABLE_FLAGS (1u << 10) /* flags depend on arguments */

struct cmd_keyspec {
    uint8_t bs_type;        /* enum cmd_bs_type */
    uint8_t fk_type;        /* enum cmd_fk_type */
    int16_t bs_pos;         /* INDEX: argv index; KEYWORD: startfrom */
    const char *bs_keyword; /* KEYWORD: the keyword (upper case) */
    int16_t lastkey;        /* RANGE: -1 = last arg, -2 = one before ... */
    int16_t keystep;        /* RANGE/KEYNUM: step between keys */
    int16_t limit;          /* RANGE: 0 = none, else 1/limit of the rest */
    int16_t keynumidx;      /* KEYNUM: index of numkeys, relative */
    int16_t firstkey;       /* KEYNUM: first key, relative */
    uint8_t incomplete;     /* Redis marks the spec INCOMPLETE */
    uint16_t kflags;        /* CMD_KS_*; 0 in the generated table */
};

/* The request_policy tip: how a cluster client spreads a command. */
enum cmd_req_policy {
    CMD_REQ_DEFAULT = 0,    /* no tip: by its keys, or any node if none */
    CMD_REQ_ALL_NODES,      /* every node, replicas too (CONFIG SET) */
    CMD_REQ_ALL_SHARDS,     /* every master (DBSIZE, WAIT) */
    CMD_REQ_MULTI_SHARD,    /* split by key slot (MGET, DEL) */
    CMD_REQ_SPECIAL,        /* client-specific handling (SCAN); also any
                             * policy this proxy does not know */
};

/* The response_policy tip: how the replies of a spread command merge. */
enum cmd_resp_policy {
    CMD_RESP_DEFAULT = 0,   /* no tip: keyless -> concatenate the arrays;
                             * keyed -> replies in key order */
    CMD_RESP_ONE_SUCCEEDED, /* the first non-error reply */
    CMD_RESP_ALL_SUCCEEDED, /* one reply if none failed, else an error */
    CMD_RESP_AGG_LOGICAL_AND, /* integer replies ANDed */
    CMD_RESP_AGG_LOGICAL_OR,  /* integer replies ORed */
    CMD_RESP_AGG_MIN,       /* the smallest integer */
    CMD_RESP_AGG_MAX,       /* the largest integer */
    CMD_RESP_AGG_SUM,       /* integers summed */
    CMD_RESP_SPECIAL,       /* command-specific merge (INFO); also any
                             * policy this proxy does not know */
};

struct command {
    const char *name;       /* lower case; container subcommands are the
                             * subcommand name ("get" under "config") */
    const char *fullname;   /* "get", "config|get": used in error texts */
    int16_t arity;          /* Redis arity: n exact, -n at least n */
    uint32_t flags;         /* CMD_F_* and CMD_P_* */
    uint8_t route;          /* enum cmd_route */
    uint8_t op;             /* enum cmd_op: the proxy's handler */
    uint8_t merge;          /* enum cmd_merge (routes SPLIT and ALL) */
    uint8_t nkeyspecs;
    const struct cmd_keyspec *keyspecs;
    const struct command *subcmds; /* container commands only */
    uint16_t nsubcmds;
    /* Columns below are not in the generated rows (zero there: command.c
     * includes command.def with missing-initializer warnings off); the
     * learned table (cmdtable.c) fills them in. */
    uint8_t req_policy;     /* enum cmd_req_policy (request_policy tip) */
    uint8_t resp_policy;    /* enum cmd_resp_policy (response_policy tip) */
    uint16_t stat_id;       /* top-level entries of a merged table: its
                             * cmdtable_index (metrics), kept in the entry
                             * so the request path reads it with the
                             * command; 0 elsewhere */
    const struct command *builtin; /* learned entries: the generated entry
                             * of the same name, whose proxy-only parts
                             * (key procedures ...) still apply; NULL for
                             * generated entries and learned-only ones */
};

/* The generated entry c stands for: c->builtin for a learned entry that
 * has one, else c. Tables keyed by generated entries (key procedures,
 * block positions) look up command_origin(c), so that learned entries
 * keep the proxy's per-command code. */
static inline const struct command *
command_origin(const struct command *c)
{
    return c->builtin != NULL ? c->builtin : c;
}

/* FNV-1a over the ASCII-lower-cased name: the hash command_lookup uses
 * (and scripts/gen_commands.py lays out); cmdtable.c's tables too. */
uint32_t command_hash(const char *s, size_t len);

/* Where a blocking command's timeout is (generated from COMMAND DOCS). */
enum cmd_block_at {
    CMD_BLOCK_NONE = 0,     /* not a blocking command */
    CMD_BLOCK_LAST,         /* last argument, seconds (BLPOP, BLMOVE) */
    CMD_BLOCK_ARG1,         /* argv[1], seconds (BLMPOP, BZMPOP) */
    CMD_BLOCK_OPTION,       /* BLOCK <ms> option (XREAD, XREADGROUP) */
};

/* command_block_timeout results. */
enum cmd_block_rc {
    CMD_BLOCK_NO = 0,       /* does not block: route it like any other */
    CMD_BLOCK_YES = 1,      /* blocks; *ms is its timeout, 0 = forever */
    CMD_BLOCK_BAD = -1,     /* its timeout is invalid: answer *err */
};

/* Case-insensitive lookup of argv[0]; NULL if unknown. O(1). */
const struct command *command_lookup(const char *name, size_t len);
/* The same lookup in any table laid out as the generated one: slots
 * (mask + 1 of them, open addressing on command_hash(), 0 empty, else
 * 1 + the index in cmds) over lower-case names. cmdtable_lookup() is
 * this on a learned table, so both cost the same per request. */
const struct command *command_lookup_in(const uint16_t *slots,
                                        uint32_t mask,
                                        const struct command *cmds,
                                        const char *name, size_t len);
/* For a container command, look up its subcommand (case-insensitive);
 * NULL if unknown. */
const struct command *command_lookup_sub(const struct command *parent,
                                         const char *name, size_t len);
/* 1 if argc satisfies the command's arity. */
int command_arity_ok(const struct command *c, uint32_t argc);

/*
 * Find the keys of a request. argv offsets are relative to base. Writes the
 * argv index of each key (in argument order, as Redis lists them) into
 * keys[], at most max; returns the number of keys, or -1 when the
 * arguments are inconsistent (numkeys larger than the arguments, ...).
 */
int command_get_keys(const struct command *c, uint32_t argc,
                     const struct resp_arg *argv, const char *base,
                     int *keys, int max);

struct resp_req;
/* Slot of a request's keys: 1 with *slot set when all keys share one
 * slot, 0 when it has none, -1 when they span several slots. */
int command_keys_slot(const struct command *cmd, const struct resp_req *p,
                      const char *base, uint16_t *slot);

/*
 * Does this request block, and for how long? Follows the command's real
 * grammar (Redis's xreadCommand option walk for XREAD/XREADGROUP: GROUP
 * takes two arguments, COUNT and BLOCK one), never a keyword scan, so a
 * group, consumer or key named "block" or "streams" changes nothing.
 * Timeouts are parsed as Redis parses them: seconds as a long double
 * (BLPOP ...), milliseconds as an integer (BLOCK). Returns CMD_BLOCK_YES
 * with *ms (0: forever; values past ~34 years also count as forever),
 * CMD_BLOCK_NO when the request will not block (not a blocking command,
 * no BLOCK option, or arguments Redis refuses before blocking: it answers
 * those itself; a blocking command of unknown grammar blocks forever), or CMD_BLOCK_BAD with *err set to Redis's error text
 * (no "-" and no CRLF) for a timeout Redis refuses. c is the resolved
 * command (subcommand if any); argv[0] is the command name.
 */
int command_block_timeout(const struct command *c, uint32_t argc,
                          const struct resp_arg *argv, const char *base,
                          long long *ms, const char **err);

/* Number of top-level commands, and iteration over them. */
size_t command_count(void);
const struct command *command_at(size_t i);
/* Index of a top-level command (from command_lookup) in that order. */
size_t command_index(const struct command *top);

/* Append Redis's exact error replies (with "-ERR " and CRLF) to out. */
void command_err_unknown(struct buf *out, uint32_t argc,
                         const struct resp_arg *argv, const char *base);
void command_err_unknown_sub(struct buf *out, const struct resp_arg *argv,
                             const char *base);
void command_err_arity(struct buf *out, const struct command *c);
void command_err_refused(struct buf *out, const struct command *c);

#endif
