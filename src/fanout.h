/* slotproxy - BSD-2-Clause
 *
 * Multi-key commands whose keys span several slots (MGET, MSET, DEL,
 * UNLINK, EXISTS, TOUCH): split into one fragment per slot, send the
 * fragments at once (each routed, and redirected, on its own), and merge
 * their replies into one reply in the client's key order.
 */
#ifndef SP_FANOUT_H
#define SP_FANOUT_H

#include <stdint.h>

struct worker;
struct request;
struct command;
struct resp_arg;

/*
 * Split parent (a SPLIT-route command with nkeys keys at argv indexes
 * keys[]) into per-slot fragments and dispatch them. The parent completes
 * when the last fragment does: the merged reply, or one error naming the
 * first failure. slots[i] is the slot of key i.
 */
void fanout_split(struct worker *w, struct request *parent,
                  const struct command *cmd, const struct resp_arg *argv,
                  uint32_t argc, const char *base, const int *keys,
                  const uint16_t *slots, int nkeys);

/*
 * Send parent (its bytes already in parent->req) to every master and merge
 * the replies by the command's rule: DBSIZE sums, KEYS concatenates,
 * SCRIPT EXISTS ands, RANDOMKEY takes the first key found, FLUSHALL and
 * SCRIPT/FUNCTION LOAD... expect the same reply everywhere. SCAN goes to
 * one master per call, named by the cursor.
 */
void fanout_all(struct worker *w, struct request *parent,
                const struct command *cmd, const struct resp_arg *argv,
                uint32_t argc, const char *base);

/*
 * INFO with a keyspace section: body holds the proxy's own sections
 * (ownership taken); "# Keyspace" summed over every master's INFO keyspace
 * is appended and parent completes with the whole as one bulk string.
 */
struct buf;
void fanout_info(struct worker *w, struct request *parent, struct buf *body);

#endif
