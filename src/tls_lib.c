/* slotproxy - BSD-2-Clause
 *
 * Loading OpenSSL on demand; see tls_lib.h for why.
 */
#include "build_config.h"

#ifdef HAVE_OPENSSL
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#ifdef SP_TLS_DLOPEN
#include <dlfcn.h>
#define SP_TLS_LIB_NO_RENAME
#endif

#include "tls_lib.h"

#ifdef SP_TLS_DLOPEN

/* The soname of the libssl the headers describe: a different major
 * version would have a different ABI. */
#define SP_STR_(x) #x
#define SP_STR(x) SP_STR_(x)
#ifdef OPENSSL_VERSION_MAJOR
#define SP_LIBSSL "libssl.so." SP_STR(OPENSSL_VERSION_MAJOR)
#else
#define SP_LIBSSL "libssl.so.1.1"
#endif

struct tls_lib sp_tls_lib;
static int loaded;

int
tls_lib_load(char *err, size_t errlen)
{
    void *h, *p;

    if (loaded)
        return 0;
    h = dlopen(SP_LIBSSL, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "TLS is configured but %s cannot be loaded: %s",
                 SP_LIBSSL, dlerror());
        return -1;
    }
    /* dlsym() on libssl's handle also searches libcrypto, its dependency.
     * A data pointer is converted to a function pointer by copying its
     * bytes, the way POSIX allows. */
#define SP_TLS_LOAD(f)                                                    \
    if ((p = dlsym(h, #f)) == NULL) {                                     \
        snprintf(err, errlen, "%s has no symbol %s", SP_LIBSSL, #f);      \
        dlclose(h);                                                       \
        return -1;                                                        \
    }                                                                     \
    memcpy(&sp_tls_lib.f, &p, sizeof(p));
    SP_TLS_FUNCS(SP_TLS_LOAD)
#undef SP_TLS_LOAD
    /* Kept open for the life of the process: sessions may outlive any
     * one context. */
    loaded = 1;
    return 0;
}

int
tls_lib_loaded(void)
{
    return loaded;
}

void
tls_lib_describe(char *out, size_t outlen)
{
    /* -v only: a short-lived look at what the loader would find. */
    void *h = dlopen(SP_LIBSSL, RTLD_LAZY | RTLD_LOCAL);
    const char *(*version)(int) = NULL;
    void *p = h != NULL ? dlsym(h, "OpenSSL_version") : NULL;

    memcpy(&version, &p, sizeof(p));
    snprintf(out, outlen, "built for %s; %s %s", OPENSSL_VERSION_TEXT,
             SP_LIBSSL, version != NULL ? version(OPENSSL_VERSION)
                                        : "not found (TLS unavailable)");
    if (h != NULL)
        dlclose(h);
}

#else /* linked against libssl */

void
tls_lib_describe(char *out, size_t outlen)
{
    snprintf(out, outlen, "%s (linked)", OpenSSL_version(OPENSSL_VERSION));
}

int
tls_lib_load(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return 0;
}

int
tls_lib_loaded(void)
{
    return 1;
}

#endif /* SP_TLS_DLOPEN */

#endif /* HAVE_OPENSSL */
