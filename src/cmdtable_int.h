/* slotproxy - BSD-2-Clause
 *
 * Internals shared by cmdtable.c (parsing, the table object) and
 * cmdtable_merge.c (intersection, merge, name registry). Not for other
 * modules: they use cmdtable.h.
 */
#ifndef SP_CMDTABLE_INT_H
#define SP_CMDTABLE_INT_H

#include <stddef.h>
#include <stdint.h>

struct command;
struct cmd_keyspec;

/* One block of a table's arena. */
struct cmdtable_chunk {
    struct cmdtable_chunk *next; /* the chunk filled before this one */
    size_t used;                /* bytes of data handed out */
    size_t cap;                 /* bytes of data */
    max_align_t data[];         /* the storage */
};

struct cmdtable {
    struct command *cmds;       /* top-level commands, sorted by name; in
                                 * the arena */
    size_t ncmds;               /* entries in cmds */
    uint16_t *ids;              /* merged tables: stable index of cmds[i]
                                 * (cmdtable_index); NULL otherwise */
    uint16_t *slots;            /* open addressing on command_hash(name):
                                 * cmds index + 1, 0 = empty */
    uint32_t mask;              /* slots size - 1 (a power of two) */
    uint64_t *short_keys;       /* open addressing on the packed name of
                                 * each command of at most
                                 * CMDTABLE_SHORT_MAX bytes (cmdtable_pack):
                                 * one compare per probe on the request
                                 * path; 0 = empty */
    uint16_t *short_pos;        /* cmds index of short_keys[i] */
    uint32_t short_shift;       /* 64 - log2(short_keys size) */
    struct cmdtable_chunk *arena; /* everything the table points to */
};

struct cmdtable *cmdtable_new(void);
/* size zeroed bytes from t's arena, aligned for any type; freed with t. */
void *cmdtable_alloc(struct cmdtable *t, size_t size);
/* Redis's name of one CMD_F_* bit; NULL if it is not a Redis flag. */
const char *cmdtable_flag_name(uint32_t bit);
/* Sort commands by name (the order command_lookup_sub searches). */
void cmdtable_sort(struct command *cmds, size_t n);
/* Lay out t->slots for t->cmds[0 .. ncmds). */
void cmdtable_build_hash(struct cmdtable *t);
/* Copies into t's arena: key specs with their keywords; a command with
 * its names, key specs and subcommands (route and builtin copied as is). */
const struct cmd_keyspec *cmdtable_copy_keyspecs(struct cmdtable *t,
                                                 const struct cmd_keyspec *ks,
                                                 size_t n);
void cmdtable_copy_command(struct cmdtable *t, struct command *dst,
                           const struct command *src);

#endif
