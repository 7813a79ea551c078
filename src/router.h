/* slotproxy - BSD-2-Clause
 *
 * Routing: picks the node for a request from the worker's slot map and
 * follows MOVED / ASK / TRYAGAIN inside the proxy, within the request's
 * redirect budget, so that a plain client never sees a redirect. A reply
 * is data, never an instruction to go elsewhere: a redirect is followed
 * only to a node of the slot map (after a refresh, for a node the map
 * does not know yet), see router_verdict.
 */
#ifndef SP_ROUTER_H
#define SP_ROUTER_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct request;
struct server;
struct slotmap;
struct command;

/* Send r to the master of r->slot (r->keyed) or to any master. r must
 * hold its RESP bytes; on_done is called when it completes (possibly
 * before this returns, e.g. for an uncovered slot). */
void router_dispatch(struct worker *w, struct request *r);
/* 1 while a request waits on one of the router's timers (a TRYAGAIN's
 * delay, a held redirect): the drain waits for it. */
int router_timers_pending(const struct worker *w);
/* Shutdown: drop the router's timers, failing their requests. */
void router_timers_free(struct worker *w);

/* Send r to master number i (0 <= i < map->nmasters) of the current map. */
void router_dispatch_master(struct worker *w, struct request *r, uint32_t i);

/* Like router_dispatch, but the master is reached through r->target
 * (a client's pinned connection) rather than the shared connections. */
void router_send_via(struct worker *w, struct request *r);

/* The map's master node index for r (by slot, or any master when keyless),
 * or -1 with r failed (no map, slot not served). */
int router_node(struct worker *w, struct request *r);
/* The shared server of that master, or NULL with r failed. */
struct server *router_server(struct worker *w, struct request *r);

/* A MOVED or ASK error, parsed. */
struct router_redirect {
    uint8_t ask;    /* 1: ASK, 0: MOVED */
    uint16_t slot;  /* the slot it names */
    uint16_t port;  /* target port */
    char host[256]; /* target endpoint; empty: the node
                     * that answered */
};

/* Parse an error text (without '-' and CRLF) that is "MOVED <slot>
 * <host>:<port>" or "ASK ...": 0 with rd set, -1 when it is neither or
 * malformed (slot out of range, port not 1..65535, a host with spaces or
 * control bytes, or longer than rd->host holds). */
int
router_parse_redirect(const char *msg, size_t len, struct router_redirect *rd);

/* 1 when cmd runs a script or function (EVAL, EVALSHA, FCALL and their
 * _RO forms): its error replies are whatever the script returned. */
int router_runs_script(const struct command *cmd);

/* What is known about the request a redirect came for. */
struct router_facts {
    uint8_t keyed;         /* the request has keys */
    uint16_t slot;         /* their slot */
    uint8_t script;        /* it runs a script (see above) */
    uint8_t asked;         /* an ASK was followed for it before */
    uint8_t refreshed;     /* the map was fetched after the
                            * redirect arrived */
    uint8_t member;        /* the ASK's sender's CLUSTER NODES
                            * lists the target (a node serving no
                            * slot yet: CLUSTER SLOTS omits it) */
    const char *from_host; /* node that answered (NULL: unknown) */
    uint16_t from_port;
};

enum router_verdict {
    ROUTER_PASS = 0, /* give the client the error as is */
    ROUTER_FOLLOW,   /* re-send to the named node */
    ROUTER_REFRESH,  /* hold it until the map is fetched
                      * again, then decide again */
};

/*
 * The redirect rule, pure. Redis redirects only a request with keys, to
 * the slot of those keys, and never to the node that answered: anything
 * else is passed. The target must be a node of map m, or for an ASK one
 * the sender's CLUSTER NODES lists (f->member: a master importing its
 * first slot); else REFRESH: decide again once a map was fetched (and the
 * sender of an ASK asked), then PASS if it still is not one.
 * A script can return any error text after it ran: it is never followed
 * after an ASK, and a MOVED only to the node the map (refreshed if need
 * be) names as the slot's owner, so a script cannot make the proxy run it
 * again elsewhere. rd->host must be filled in (not empty).
 */
enum router_verdict
router_verdict(const struct slotmap *m, const struct router_redirect *rd,
               const struct router_facts *f);

/* 1 when a CLUSTER NODES text lists host:port (by ip or hostname) as a
 * node one may send requests to (not in handshake, noaddr or fail). */
int router_nodes_lists(const char *text, size_t len, const char *host,
                       uint16_t port);

/*
 * Follow the MOVED/ASK error msg (text without '-' and CRLF) that r got
 * from the node from, within r's redirect budget, by router_verdict.
 * Returns 0 when r was taken care of: re-sent (through r->target when
 * set, else the shared server), held for a map refresh, or failed; -1
 * when it is not followed (the caller completes r with its reply). A held
 * request that the refresh does not clear gets its reply (data, len, as
 * given here) delivered again through r->on_reply with r->conn NULL:
 * on_reply hooks follow nothing that has no sender. Re-sending clears
 * r->rep and r->replies_seen.
 */
int router_follow(struct request *r, struct server *from, const char *msg,
                  size_t mlen, const char *data, size_t len);

#endif
