/* slotproxy - BSD-2-Clause
 *
 * The replication poll: worker 0 asks every master of its map INFO
 * replication once per cluster.replica_poll_interval (one request per
 * master per interval for the whole process, never a second one while
 * the first is out), folds the answers into a replstat set and publishes
 * a clone of it (shared_set_replstat) once the round's answers are in or
 * at the next interval. The other workers read what it publishes. A
 * master that answers an error, or nothing within request_timeout, is
 * counted (slotproxy_replica_poll_failures_total) and logged once until
 * it answers again; it holds nothing up.
 */
#ifndef SP_REPLPOLL_H
#define SP_REPLPOLL_H

struct worker;

/* Start the poll on w (worker 0 only). */
void replpoll_init(struct worker *w);
/* Stop it; answers still out are dropped when they come. */
void replpoll_deinit(struct worker *w);
/* After a reload: follow a new cluster.replica_poll_interval. */
void replpoll_conf(struct worker *w);
/* w installed a new map: follow its masters, and ask at once those not
 * answered yet and those that do not list a replica of the map (a
 * replica is read from only once a poll has shown it in sync). */
void replpoll_map_installed(struct worker *w);

#endif
