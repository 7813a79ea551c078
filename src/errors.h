/* slotproxy - BSD-2-Clause
 *
 * The error replies the proxy writes, in one table: Redis's exact texts
 * where Redis has one (client libraries branch on them), proxy-only ones
 * prefixed "ERR slotproxy: ". And the kinds errors are counted by in
 * metrics (an error reply's first word). Pure: no I/O.
 */
#ifndef SP_ERRORS_H
#define SP_ERRORS_H

#include <stddef.h>

/* Fixed error replies; the text (without '-' and CRLF) is error_text(). */
enum sp_error {
    SPE_CROSSSLOT = 0,      /* keys of one request in several slots */
    SPE_CLUSTERDOWN,        /* no slot map (yet) or no master */
    SPE_SLOT_NOT_SERVED,    /* the key's slot has no master */
    SPE_NOAUTH,             /* a command before AUTH */
    SPE_WRONGPASS,          /* AUTH/HELLO with bad credentials */
    SPE_EXECABORT,          /* EXEC after a queuing error */
    SPE_EXECABORT_MOVED,    /* EXEC whose slot moved after WATCH */
    SPE_MULTI_NESTED,       /* MULTI inside MULTI */
    SPE_EXEC_NO_MULTI,      /* EXEC without MULTI */
    SPE_DISCARD_NO_MULTI,   /* DISCARD without MULTI */
    SPE_WATCH_IN_MULTI,     /* WATCH inside MULTI */
    SPE_CLIENT_GONE,        /* a redirect for a client that left */
    SPE_CLUSTERDOWN_NO_MAP, /* no slot map yet (startup, no seed answers) */
    SPE_SHUTTING_DOWN,      /* a request the proxy's shutdown cut short */
    SPE_COUNT
};

/* Printf formats of the errors that name something (a command). */
#define ERR_NOPERM_FMT \
    "NOPERM this user has no permissions to run the '%s' command"
#define ERR_NO_MAP_FMT \
    "CLUSTERDOWN The cluster is down (slotproxy has no slot map yet; last " \
    "answer from %s)"
#define ERR_PROXY_PREFIX "ERR slotproxy: "
/* cluster.read_from: replica, and no replica of the slot's master is
 * up and in sync. */
#define ERR_NO_REPLICA_FMT \
    ERR_PROXY_PREFIX "no replica in sync serves slot %u (cluster.read_from: " \
                     "replica reads from replicas only)"

/* The text of e, without '-' and CRLF. */
const char *error_text(enum sp_error e);

/* Error replies by kind (their first word), for metrics. */
enum err_kind {
    ERRK_ERR = 0,
    ERRK_WRONGTYPE,
    ERRK_CROSSSLOT,
    ERRK_CLUSTERDOWN,
    ERRK_NOAUTH,
    ERRK_NOPERM,
    ERRK_WRONGPASS,
    ERRK_EXECABORT,
    ERRK_TRYAGAIN,
    ERRK_MOVED,
    ERRK_ASK,
    ERRK_LOADING,
    ERRK_BUSY,
    ERRK_NOSCRIPT,
    ERRK_OTHER,
    ERRK_COUNT
};
extern const char *const err_kind_names[ERRK_COUNT];

/* The kind of an error reply from its text after '-' (n bytes). */
enum err_kind error_kind(const char *p, size_t n);

#endif
