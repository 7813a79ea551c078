/* slotproxy - BSD-2-Clause
 *
 * The command table snapshot the request path uses: the merged table
 * (cmdtable.h) built from the masters' COMMAND replies, or from the
 * built-in table alone before any master answered, together with what the
 * COMMAND family answers from (each learned command's exact reply bytes)
 * and the names of the per-command metric indexes. Immutable once built
 * and reference counted, so any number of workers share it the way they
 * share the slot map: a worker holds one reference to its current
 * snapshot and picks up a newer one at its tick. Pure: no I/O, no worker.
 */
#ifndef SP_CMDSNAP_H
#define SP_CMDSNAP_H

#include <stddef.h>
#include <stdint.h>

struct cmdtable;
struct cmdtable_names;
struct cmdtable_notes;
struct command;

/* Largest COMMAND reply read from one master (real ones: about 100 KB). */
#define CMDSNAP_MAX_REPLY (4u * 1024u * 1024u)

struct cmdsnap {
    int refcount;               /* references (atomic) */
    struct cmdtable *table;     /* the merged table (owned) */
    char *raw;                  /* copy of the first master's COMMAND
                                 * reply; NULL for the built-in snapshot */
    uint32_t *raw_off;          /* per table position: offset of that
                                 * command's entry in raw, or UINT32_MAX
                                 * when no server reply stands for it */
    uint32_t *raw_len;          /* and its length */
    char **extra_names;         /* names of the metric indexes past the
                                 * built-in ones (cmdtable_names order) */
    size_t nextra;
    char **masters;             /* "host:port" of the masters it was
                                 * learned from, sorted */
    size_t nmasters;
    size_t learned;             /* commands learned from the masters */
    size_t dropped;             /* commands some master had but not all,
                                 * or had with other key specs */
};

/*
 * Build a snapshot from n complete COMMAND replies (reply[i] of len[i]
 * bytes from master node[i]; n == 0: the built-in table alone). Each reply
 * is parsed (cmdtable_parse), the tables intersected (cmdtable_intersect,
 * notes appended to notes when not NULL) and merged with the built-in
 * table (cmdtable_merge, which may extend names). A command whose entry
 * is byte for byte the same in every reply keeps those bytes for the
 * COMMAND family. Returns NULL with a message in err when a reply does not
 * parse (nothing else fails); the replies are not kept (copied).
 */
struct cmdsnap *cmdsnap_new(const char *const *reply, const size_t *len,
                            const char *const *node, size_t n,
                            struct cmdtable_names *names,
                            struct cmdtable_notes *notes, char *err,
                            size_t errlen);
struct cmdsnap *cmdsnap_get(struct cmdsnap *s);
/* Drop a reference (any thread); the last one frees it. NULL is fine. */
void cmdsnap_put(struct cmdsnap *s);

/* The server's reply bytes for top-level entry top of s's table (a
 * complete RESP2 COMMAND entry), or NULL with *len 0 when none stands
 * for it (then cmdtable_write_entry() renders it). */
const char *cmdsnap_entry(const struct cmdsnap *s, const struct command *top,
                          size_t *len);
/* The same for subcommand sub of top (its entry inside top's). */
const char *cmdsnap_sub_entry(const struct cmdsnap *s,
                              const struct command *top,
                              const struct command *sub, size_t *len);
/* Name of metric index idx (below cmdtable_index_limit()), NULL when
 * none is registered there. */
const char *cmdsnap_index_name(const struct cmdsnap *s, size_t idx);
/* 1 when s was learned from exactly these masters (any order). */
int cmdsnap_same_masters(const struct cmdsnap *s, const char *const *node,
                         size_t n);

#endif
