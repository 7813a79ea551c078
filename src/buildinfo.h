/* slotproxy - BSD-2-Clause
 *
 * What this binary is: version, git commit, and the build options an
 * operator needs to know when something misbehaves (how TLS is provided,
 * which allocator, sanitizers), plus the versions of the libraries it
 * runs with. Printed by `slotproxy -v` and exported as
 * slotproxy_build_info in /metrics. No state.
 */
#ifndef SP_BUILDINFO_H
#define SP_BUILDINFO_H

#include <stdio.h>

/* Short strings, static storage. */
const char *buildinfo_version(void);    /* "0.1.0" */
const char *buildinfo_commit(void);     /* abbreviated git hash or "unknown" */
const char *buildinfo_tls(void);        /* "dlopen", "linked" or "none" */
const char *buildinfo_allocator(void);  /* "jemalloc-static", "jemalloc" or
                                         * "libc" */
const char *buildinfo_sanitizers(void); /* "asan+ubsan" or "none" */

/* The full report of `slotproxy -v`, several lines. */
void buildinfo_print(FILE *out);

#endif
