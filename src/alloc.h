/* slotproxy - BSD-2-Clause
 *
 * Allocation wrappers. Every allocation in slotproxy goes through these so
 * that the allocator (jemalloc by default, libc with --without-jemalloc) is
 * chosen in one place and out-of-memory is handled in one place: slotproxy
 * aborts on OOM, as Redis does, because a proxy that half-fails an
 * allocation deep in a request path cannot keep its invariants.
 */
#ifndef SP_ALLOC_H
#define SP_ALLOC_H

#include <stddef.h>

void *sp_malloc(size_t size);
void *sp_calloc(size_t n, size_t size);
void *sp_realloc(void *ptr, size_t size);
char *sp_strdup(const char *s);
char *sp_strndup(const char *s, size_t n);
void sp_free(void *ptr);
/* Give memory the allocator holds freed back to the system now (the
 * calling thread's cache, every arena's unused pages): called once a
 * worker's held bytes dropped, so that RSS follows them down. */
void sp_alloc_release(void);
/* Give the calling thread an allocator arena of its own (a worker, when
 * there are several: the process starts with one arena, shared by the
 * main thread and worker 0). Without jemalloc, nothing. */
void sp_alloc_own_arena(void);

#endif
