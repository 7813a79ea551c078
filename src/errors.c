/* slotproxy - BSD-2-Clause
 *
 * The proxy's error texts and the kinds errors are counted by; see
 * errors.h.
 */
#include "build_config.h"

#include <string.h>

#include "errors.h"

static const char *const error_texts[SPE_COUNT] = {
    [SPE_CROSSSLOT] = "CROSSSLOT Keys in request don't hash to the same "
                      "slot",
    [SPE_CLUSTERDOWN] = "CLUSTERDOWN The cluster is down",
    [SPE_SLOT_NOT_SERVED] = "CLUSTERDOWN Hash slot not served",
    [SPE_NOAUTH] = "NOAUTH Authentication required.",
    [SPE_WRONGPASS] = "WRONGPASS invalid username-password pair or user is "
                      "disabled.",
    [SPE_EXECABORT] = "EXECABORT Transaction discarded because of previous "
                      "errors.",
    [SPE_EXECABORT_MOVED] = "EXECABORT Transaction discarded because its "
                            "slot moved after WATCH (slotproxy); retry the "
                            "transaction",
    [SPE_MULTI_NESTED] = "ERR MULTI calls can not be nested",
    [SPE_EXEC_NO_MULTI] = "ERR EXEC without MULTI",
    [SPE_DISCARD_NO_MULTI] = "ERR DISCARD without MULTI",
    [SPE_WATCH_IN_MULTI] = "ERR WATCH inside MULTI is not allowed",
    [SPE_CLIENT_GONE] = ERR_PROXY_PREFIX "client gone",
    [SPE_SHUTTING_DOWN] = ERR_PROXY_PREFIX "shutting down",
    [SPE_CLUSTERDOWN_NO_MAP] = "CLUSTERDOWN The cluster is down (slotproxy "
                               "has no slot map yet)",
};

const char *const err_kind_names[ERRK_COUNT] = {
    "ERR",    "WRONGTYPE", "CROSSSLOT", "CLUSTERDOWN", "NOAUTH",
    "NOPERM", "WRONGPASS", "EXECABORT", "TRYAGAIN",    "MOVED",
    "ASK",    "LOADING",   "BUSY",      "NOSCRIPT",    "OTHER",
};

const char *
error_text(enum sp_error e)
{
    return (unsigned)e < SPE_COUNT ? error_texts[e] : "ERR";
}

enum err_kind
error_kind(const char *p, size_t n)
{
    size_t w = 0;
    while (w < n && p[w] != ' ' && p[w] != '\r')
        w++;
    for (int k = 0; k < ERRK_OTHER; k++)
        if (strlen(err_kind_names[k]) == w &&
            memcmp(err_kind_names[k], p, w) == 0)
            return (enum err_kind)k;
    return ERRK_OTHER;
}
