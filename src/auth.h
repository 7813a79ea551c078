/* slotproxy - BSD-2-Clause
 *
 * Client credentials against the configured users (auth.password, the
 * "default" user, or auth.users): constant-time checks, and a fingerprint
 * of the credential a client logged in with, so that a reload can tell
 * whether that credential still holds and with which role. Pure: no
 * sockets, no libevent.
 */
#ifndef SP_AUTH_H
#define SP_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct config;

/* 1 when the configuration asks clients to authenticate. */
int auth_configured(const struct config *conf);

/*
 * Check user/password (user "default" for a password-only AUTH). Every
 * configured user is compared, every byte, whatever matches first, so the
 * time taken does not tell which part was right. Returns the role (enum
 * user_role) with *fp set to the credential's fingerprint and *uidx to
 * the index in conf->users (-1 for auth.password), or -1 when refused.
 */
int auth_check(const struct config *conf, const char *user, size_t ulen,
               const char *pass, size_t plen, uint64_t *fp, int *uidx);

/*
 * The role a credential with fingerprint fp (from auth_check under an
 * earlier configuration) holds under conf: the user's role when a user of
 * that name still has that password, else -1. *uidx as for auth_check.
 */
int auth_recheck(const struct config *conf, uint64_t fp, int *uidx);

/* Equal without a timing side channel: every byte of the longer string
 * is looked at whatever matches. fold: ASCII case-insensitive. */
int auth_secret_eq(const char *a, size_t alen, const char *b, int fold);

struct command;
/* The least role (enum user_role) that may run cmd, from its permission
 * bits: admin for what Redis flags admin, read-only for what Redis flags
 * readonly or the table allows that role (CMD_P_READ_ROLE), read-write
 * otherwise. Dispatch enforces it; PROXY COMMAND ROUTES shows it. */
int auth_min_role(const struct command *cmd);

#endif
