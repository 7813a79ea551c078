/* slotproxy - BSD-2-Clause
 *
 * Learning the command table from the cluster (DESIGN.md, "The command
 * table is data — and the cluster is its source"): worker 0 asks every
 * master COMMAND over the ordinary backend connections (as topology.c
 * asks CLUSTER SLOTS) when the first slot map arrives and whenever the set
 * of masters changes, builds a snapshot (cmdsnap.h: parsed, intersected
 * over the masters, merged with the built-in table) and publishes it to
 * every worker (worker_set_cmds). Fail safe: a master that does not
 * answer, answers an error, or sends a reply that is too big or does not
 * parse leaves the current table in force, and the round is retried with
 * a growing delay. Once per process, never on the request path.
 */
#ifndef SP_CMDLEARN_H
#define SP_CMDLEARN_H

struct worker;

/* Start learning for w (worker 0 of the process). */
void cmdlearn_init(struct worker *w);
void cmdlearn_deinit(struct worker *w);
/* w installed a slot map: ask its masters when they are not the ones the
 * current table was learned from (or a round with other masters is out). */
void cmdlearn_map_installed(struct worker *w);

#endif
