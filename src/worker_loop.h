/* slotproxy - BSD-2-Clause
 *
 * The worker driver, at the top of the house: it creates a worker, runs
 * its loop (the end-of-turn flush of backends and clients, the 100 ms
 * tick: timeouts, idle clients, statistics, memory), installs slot maps,
 * applies reloads and drains on shutdown. Only main calls it; the layers
 * below see the worker through worker.h, and what the driver must do for
 * them (install a map) it gives them as hooks.
 */
#ifndef SP_WORKER_LOOP_H
#define SP_WORKER_LOOP_H

struct config;
struct listener;
struct shared;
struct tls_ctx;
struct worker;

/* Worker number id (0-based) of the process. */
struct worker *
worker_loop_new(const struct config *conf, int id, struct shared *shared);
void worker_loop_free(struct worker *w);
/* Called at worker start from main: begins topology discovery. */
void worker_loop_start(struct worker *w);
/* In the worker's own thread, before its loop runs: its I/O batch when
 * shared->io_mode is IO_URING (a failure logs and leaves it on epoll). */
void worker_loop_io_init(struct worker *w);
/* Ask the worker's loop to exit; safe from another thread (the loops
 * take no locks: each is only ever touched by its own thread). With
 * drain, the worker first stops accepting and lets in-flight requests
 * finish, for up to shutdown_grace. */
void worker_loop_stop(struct worker *w, int drain);
/* Hand the worker a new configuration (SIGHUP); it switches at its next
 * loop turn. The caller keeps conf alive until the process exits. */
void worker_loop_reload(struct worker *w, const struct config *conf,
                        struct tls_ctx *tls);
/* Register a listener the worker closes when it drains. */
void worker_loop_add_listener(struct worker *w, struct listener *l);

#endif
