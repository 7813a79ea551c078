/* slotproxy - BSD-2-Clause
 *
 * Client credential checks (see auth.h). The fingerprint is a 64-bit
 * FNV-1a of "name\0password": it never leaves the process and only has to
 * tell "same user, same password" from anything else at a reload.
 */
#include "build_config.h"

#include <string.h>

#include "auth.h"
#include "command.h"
#include "config.h"

#define DEFAULT_USER "default"

int
auth_configured(const struct config *conf)
{
    return conf->auth_password != NULL || conf->nusers > 0;
}

int
auth_secret_eq(const char *a, size_t alen, const char *b, int fold)
{
    size_t blen = strlen(b), n = alen > blen ? alen : blen;
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        if (fold) {
            /* Branch-free ASCII lower-casing. */
            x |= (unsigned char)(((unsigned)(x - 'A') < 26u) << 5);
            y |= (unsigned char)(((unsigned)(y - 'A') < 26u) << 5);
        }
        diff |= x ^ y;
    }
    return diff == 0;
}

static uint64_t
fnv_add(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
auth_fingerprint(const char *user, const char *pass)
{
    uint64_t h = fnv_add(14695981039346656037ULL, user, strlen(user) + 1);
    h = fnv_add(h, pass, strlen(pass));
    return h | 1; /* never 0: 0 means "no credential" to callers */
}

/* Keep a when mask is 0, take b when it is all ones. */
static int
ct_select(int a, int b, unsigned mask)
{
    return (int)(((unsigned)a & ~mask) | ((unsigned)b & mask));
}

int
auth_check(const struct config *conf, const char *user, size_t ulen,
           const char *pass, size_t plen, uint64_t *fp, int *uidx)
{
    int role = -1, idx = -1;

    *fp = 0;
    *uidx = -1;
    if (conf->auth_password != NULL) {
        unsigned ok = (unsigned)(auth_secret_eq(user, ulen, DEFAULT_USER, 1) &
                                 auth_secret_eq(pass, plen,
                                                conf->auth_password, 0));
        if (!ok)
            return -1;
        *fp = auth_fingerprint(DEFAULT_USER, conf->auth_password);
        return ROLE_ADMIN;
    }
    for (size_t i = 0; i < conf->nusers; i++) {
        const struct sp_user *u = &conf->users[i];
        unsigned ok = (unsigned)(auth_secret_eq(user, ulen, u->name, 0) &
                                 auth_secret_eq(pass, plen, u->password, 0));
        unsigned mask = 0u - ok;
        role = ct_select(role, u->role, mask);
        idx = ct_select(idx, (int)i, mask);
    }
    if (role < 0)
        return -1;
    *fp = auth_fingerprint(conf->users[idx].name, conf->users[idx].password);
    *uidx = idx;
    return role;
}

int
auth_recheck(const struct config *conf, uint64_t fp, int *uidx)
{
    *uidx = -1;
    if (fp == 0)
        return -1;
    if (conf->auth_password != NULL)
        return auth_fingerprint(DEFAULT_USER, conf->auth_password) == fp
                   ? ROLE_ADMIN
                   : -1;
    for (size_t i = 0; i < conf->nusers; i++) {
        if (auth_fingerprint(conf->users[i].name,
                             conf->users[i].password) == fp) {
            *uidx = (int)i;
            return conf->users[i].role;
        }
    }
    return -1;
}

int
auth_min_role(const struct command *cmd)
{
    if (cmd->flags & CMD_F_ADMIN)
        return ROLE_ADMIN;
    if (cmd->flags & (CMD_F_READONLY | CMD_P_READ_ROLE))
        return ROLE_READ_ONLY;
    return ROLE_READ_WRITE;
}
