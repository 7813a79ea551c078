/* slotproxy - BSD-2-Clause
 *
 * Build and library versions; see buildinfo.h.
 */
#include "build_config.h"

#include <event2/event.h>
#include <stdio.h>

#include "buildinfo.h"
#include "tls.h"

#ifndef SP_GIT_COMMIT
#define SP_GIT_COMMIT "unknown"
#endif

const char *
buildinfo_version(void)
{
    return PACKAGE_VERSION;
}

const char *
buildinfo_commit(void)
{
    return SP_GIT_COMMIT;
}

const char *
buildinfo_tls(void)
{
#if !defined(HAVE_OPENSSL)
    return "none";
#elif defined(SP_TLS_DLOPEN)
    return "dlopen";
#else
    return "linked";
#endif
}

const char *
buildinfo_allocator(void)
{
#if defined(SP_JEMALLOC_STATIC)
    return "jemalloc-static";
#elif defined(HAVE_JEMALLOC)
    return "jemalloc";
#else
    return "libc";
#endif
}

const char *
buildinfo_sanitizers(void)
{
#ifdef SP_SANITIZERS
    return "asan+ubsan";
#else
    return "none";
#endif
}

void
buildinfo_print(FILE *out)
{
    char tls[160];

    tls_describe(tls, sizeof(tls));
#ifdef SP_SANITIZERS
    fprintf(out, "slotproxy %s (ASan+UBSan build)\n", buildinfo_version());
#else
    fprintf(out, "slotproxy %s\n", buildinfo_version());
#endif
    fprintf(out, "commit: %s\n", buildinfo_commit());
    fprintf(out, "build: tls=%s allocator=%s sanitizers=%s%s\n",
            buildinfo_tls(), buildinfo_allocator(), buildinfo_sanitizers(),
#ifdef SP_DEBUG
            " debug"
#else
            ""
#endif
    );
    fprintf(out, "libevent: %s\n", event_get_version());
    fprintf(out, "openssl: %s\n", tls);
}
