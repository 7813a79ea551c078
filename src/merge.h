/* slotproxy - BSD-2-Clause
 *
 * The merge rules of fan-out commands (see merge.c): the fragments'
 * complete replies in, one reply out, by the command's merge kind.
 */
#ifndef SP_MERGE_H
#define SP_MERGE_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* SCAN through the proxy: the proxy's cursor is (the master's cursor <<
 * MERGE_SCAN_MASTER_BITS) | the master's index. */
#define MERGE_SCAN_MASTER_BITS 10
#define MERGE_SCAN_MASTER_MASK ((1u << MERGE_SCAN_MASTER_BITS) - 1)

/* One fragment's reply. */
struct merge_frag {
    const char *data; /* its complete reply bytes */
    size_t len;
    uint32_t nkeys; /* CMD_MERGE_ARRAY: the keys it asked
                                     * for, in the request's order */
};

/* What a merge reads. */
struct merge_in {
    const struct merge_frag *frags; /* every fragment, in sending order */
    uint32_t nfrags;
    const uint32_t *key_frag; /* key i -> its fragment (split) */
    const uint32_t *key_pos;  /* key i -> its index in the fragment */
    uint32_t nkeys;           /* keys of the request (split), else 0 */
    uint32_t scan_master;     /* CMD_MERGE_SCAN: the master asked */
    uint32_t nmasters;        /* CMD_MERGE_SCAN: masters in the map */
    struct buf *info;         /* CMD_MERGE_INFO: the proxy's own
                                     * sections; the summed # Keyspace is
                                     * appended to it */
    const char *req;          /* CMD_MERGE_SLOTSTATS: the client's
                               * request (RESP multibulk) */
    size_t req_len;
};

/* The fragment error the client gets (the first in key order for a
 * split, else in fragment order), or NULL when none failed. */
const struct merge_frag *merge_first_error(const struct merge_in *in);

/* Append the merged reply (kind: enum cmd_merge) to out. 0 on success,
 * -1 when a reply does not have the shape the rule expects (out may then
 * hold a partial reply: the caller discards it and answers an error). */
int merge_replies(int kind, const struct merge_in *in, struct buf *out);

#endif
