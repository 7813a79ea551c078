/* slotproxy - BSD-2-Clause
 *
 * The command table learned from the cluster (DESIGN.md, "The command
 * table is data"). Three steps, all pure (no I/O, no libevent, no
 * worker state), run by whoever refreshes the topology:
 *
 *   1. cmdtable_parse()     one master's raw COMMAND reply -> a table of
 *                           struct command (arity, flags, key specs, tips);
 *   2. cmdtable_intersect() the tables of several masters -> the commands
 *                           every one of them has, most restrictive view,
 *                           with log lines for what differs (rolling
 *                           upgrades);
 *   3. cmdtable_merge()     learned table + the generated built-in table
 *                           (command.c) -> the lookup-ready table the
 *                           request path uses: the server wins for arity,
 *                           Redis flags, key specs and tips; the built-in
 *                           table wins for the route and anything
 *                           proxy-only; a command only the server knows
 *                           gets a route derived from what the server says.
 *
 * Every table is immutable once built and owns all its memory (names, key
 * specs, keyword strings, subcommand arrays) in one arena: one
 * cmdtable_free() releases it, and any number of threads may read it
 * concurrently. Entries are plain struct command, so command_lookup_sub(),
 * command_arity_ok(), command_get_keys() and the error texts of command.h
 * work on them unchanged.
 *
 * Wiring (not done here): the merged table is meant to be published like
 * the slot map, as a refcounted snapshot each worker picks up at the start
 * of a turn; lookups then go through cmdtable_lookup() on the worker's
 * snapshot instead of command_lookup(), and per-command metrics through
 * cmdtable_index() instead of command_index().
 */
#ifndef SP_CMDTABLE_H
#define SP_CMDTABLE_H

#include <stddef.h>
#include <stdint.h>

struct command;

/* Hostile-input bounds for cmdtable_parse(). Real servers are far below
 * them (Redis 7.4: 250 commands, 3 key specs at most, 34 subcommands). */
#define CMDTABLE_MAX_COMMANDS   8192    /* top-level entries */
#define CMDTABLE_MAX_SUBCMDS    1024    /* subcommands of one container */
#define CMDTABLE_MAX_KEYSPECS   32      /* key specs of one command */
#define CMDTABLE_MAX_NAME       255     /* bytes of a command name */
#define CMDTABLE_MAX_KEYWORD    255     /* bytes of a key spec keyword */

/* Stable indexes: commands of the built-in table keep command_index();
 * names learned later get the next ones, up to CMDTABLE_EXTRA_MAX of them;
 * later names all share the last index, cmdtable_index_limit() - 1. */
#define CMDTABLE_EXTRA_MAX      1024

/* An immutable command table (parsed, intersected or merged). */
struct cmdtable;

/*
 * Append-only registry giving each top-level command name a stable index
 * across table rebuilds, so that per-command arrays (metrics) stay valid
 * when a new table is installed. Owned by the single thread that builds
 * tables (the main thread); tables copy their indexes, so readers of a
 * table never touch the registry.
 */
struct cmdtable_names;

/* Log-worthy differences found by cmdtable_intersect(), one line each
 * ("zrank: arity -3 on 127.0.0.1:7001, 3 on 127.0.0.1:7000"). */
struct cmdtable_notes {
    char **lines;           /* owned strings, NUL-terminated */
    size_t n;               /* lines in use, at most CMDTABLE_MAX_NOTES */
    size_t dropped;         /* lines left out past that limit */
};

#define CMDTABLE_MAX_NOTES 64

/*
 * Parse a complete raw COMMAND reply (exactly one RESP2 or RESP3 reply, no
 * trailing bytes) in the Redis 7 format: per command [name, arity, flags,
 * first, last, step, acl-categories, tips, key-specs, subcommands], extra
 * trailing fields ignored. Names are lower-cased, subcommands sorted by
 * name (as command_lookup_sub() needs), keywords upper-cased; Redis flags
 * map to CMD_F_* (unknown ones are ignored), key specs to struct
 * cmd_keyspec (with CMD_KS_* flags), the request_policy/response_policy
 * tips to req_policy/resp_policy (an unknown value counts as SPECIAL).
 * Routes are left at 0: cmdtable_merge() assigns them.
 *
 * Returns a new table (free with cmdtable_free) or NULL with a message in
 * err (errlen bytes, always NUL-terminated when errlen > 0): an error
 * reply, a truncated or malformed reply, a wrong shape, a value out of
 * range, a duplicate name, a name or keyword with NUL or control bytes,
 * counts beyond the CMDTABLE_MAX_* bounds. Nothing in buf is kept.
 * Memory while parsing grows with len (the decoded tree): the caller caps
 * the reply size it reads (real replies weigh about 100 KB).
 */
struct cmdtable *cmdtable_parse(const char *buf, size_t len, char *err,
                                size_t errlen);

/*
 * The commands every table has (n >= 1 tables, node[i] names tables[i] in
 * the notes), each with the most restrictive view: the arity accepting
 * only the argument counts all accept (the first table's if none is
 * common), Redis flags that allow something (readonly, fast, loading,
 * stale, no_auth, allow_busy, no_mandatory_keys) only where all set them,
 * the others wherever one sets them; tips of the first table. A command
 * whose key specs differ between nodes is dropped (the proxy cannot route
 * by two views of its keys), as is a command or subcommand missing on some
 * node: a later cmdtable_merge() then keeps its built-in entry, if any.
 * Each difference appends a line to notes (when notes is not NULL; free
 * with cmdtable_notes_free). Inputs are not changed. Never fails.
 */
struct cmdtable *cmdtable_intersect(const struct cmdtable *const *tables,
                                    const char *const *node, size_t n,
                                    struct cmdtable_notes *notes);

/*
 * Build the table the request path uses from the built-in table and a
 * learned one (NULL: the built-in table alone, as before any master
 * answers). For a command both know: arity, Redis flags, key specs and
 * tips from the server; route and non-Redis flag bits from the built-in
 * entry, except that a command the server flags blocking is PINNED unless
 * the built-in entry answers it (LOCAL), refuses it or pins it already;
 * ->builtin points to the built-in entry. Subcommands merge the same way;
 * a built-in command or subcommand the server lacks stays as it is.
 * Commands only the server knows get cmdtable_derive_route(). Indexes
 * come from names (which this call may extend). The result does not
 * point into learned (free it at will) but does point into the static
 * built-in table. Never fails.
 */
struct cmdtable *cmdtable_merge(const struct cmdtable *learned,
                                struct cmdtable_names *names);

/*
 * The route of a command the built-in table does not know, derived from
 * its flags, tips and key specs (cmdtable_merge.c lists the rules, which
 * mirror scripts/gen_commands.py's); parent_route is the route of its
 * container for a subcommand, -1 for a command. Also what a table of
 * "how the proxy would route it" (docs/commands.md) can print.
 */
uint8_t cmdtable_derive_route(const struct command *c, int parent_route);

void cmdtable_free(struct cmdtable *t);

/* Case-insensitive lookup of a top-level command; NULL if unknown. O(1),
 * the same open addressing as command_lookup(). */
const struct command *cmdtable_lookup(const struct cmdtable *t,
                                      const char *name, size_t len);

/* Top-level commands, sorted by name, for COMMAND / COMMAND COUNT / LIST
 * answers. */
size_t cmdtable_count(const struct cmdtable *t);
const struct command *cmdtable_at(const struct cmdtable *t, size_t i);
/* Position of a top-level entry of t in that order (cmdtable_at's i);
 * cmdtable_count(t) when top is not one of t's entries. */
size_t cmdtable_pos(const struct cmdtable *t, const struct command *top);

struct buf;
/*
 * Append c as one entry of a RESP2 COMMAND reply, built from the entry
 * alone: [name, arity, flags, first, last, step, acl-categories, tips,
 * key-specs, subcommands]. For entries no server reply stands for (the
 * built-in table before any master answered, masters that disagree): the
 * ACL categories are not in the built-in table (an empty array), the
 * legacy first/last/step come from the first key spec when it is an
 * index range (0 0 0 otherwise), and the key spec flags of the generated
 * table are empty.
 */
void cmdtable_write_entry(struct buf *out, const struct command *c);

/*
 * Stable index of a top-level entry of a merged table (top must come from
 * cmdtable_lookup/cmdtable_at on t): below cmdtable_index_limit(), equal
 * to command_index() for built-in names, and the same for a name in every
 * table built with the same registry. 0 for tables not built by merge.
 */
size_t cmdtable_index(const struct cmdtable *t, const struct command *top);

/* Size of a per-command array indexed by cmdtable_index(). */
size_t cmdtable_index_limit(void);

struct cmdtable_names *cmdtable_names_new(void);
void cmdtable_names_free(struct cmdtable_names *names);
/* The stable index of a top-level fullname (lower case), registering it if
 * new (cmdtable_index_limit() - 1 once the registry is full). */
size_t cmdtable_names_id(struct cmdtable_names *names, const char *fullname);
/* Names registered beyond the built-in table, in registration order: the
 * one at i has index command_count() + i. */
size_t cmdtable_names_count(const struct cmdtable_names *names);
const char *cmdtable_names_at(const struct cmdtable_names *names, size_t i);

void cmdtable_notes_free(struct cmdtable_notes *notes);

#endif
