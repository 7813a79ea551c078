/* slotproxy - BSD-2-Clause
 *
 * CLUSTER SLOT-STATS (Valkey 8) through the proxy: every master answers
 * for its own slots (request_policy:all_shards); the proxy puts the
 * answers together into the one reply a single node owning every slot
 * would give, ordered as Valkey orders it (cluster_slot_stats.c):
 * SLOTSRANGE by slot; ORDERBY metric [LIMIT n] [ASC|DESC] by the metric
 * (DESC by default), ties by slot, at most n (16384 by default). Each
 * slot's entry is copied byte for byte. Pure: no I/O.
 */
#ifndef SP_SLOTSTATS_H
#define SP_SLOTSTATS_H

#include <stddef.h>

struct buf;

/*
 * req: the client's request (RESP multibulk, "CLUSTER SLOT-STATS ...");
 * rep[i]: master i's complete reply (rep_len[i] bytes), an array of
 * [slot, {metric: value ...}] entries. Appends the merged reply to out
 * and returns 0; -1 (out untouched) when a request or reply does not have
 * that shape (the masters answer bad arguments themselves, with an error
 * that reaches the client before this is called).
 */
int slotstats_merge(const char *req, size_t req_len, const char *const *rep,
                    const size_t *rep_len, size_t n, struct buf *out);

#endif
