/* slotproxy - BSD-2-Clause
 *
 * Where tls.c's OpenSSL functions come from. With SP_TLS_DLOPEN (the
 * default build) libssl is not linked: tls_lib_load() opens it with
 * dlopen() the first time a TLS context is made, and every OpenSSL call
 * in tls.c goes through the pointer table below. Merely linking libssl and
 * libcrypto costs an idle process about 1.8 MB of resident memory
 * (relocations, constructors), which a proxy without TLS, the usual
 * deployment, should not pay. Without SP_TLS_DLOPEN the names are
 * OpenSSL's own and tls_lib_load() always succeeds.
 *
 * Include after the OpenSSL headers, and only from tls.c and tls_lib.c.
 */
#ifndef SP_TLS_LIB_H
#define SP_TLS_LIB_H

#include <stddef.h>

/* Every OpenSSL function tls.c calls (the SSL_CTX_set_mode-style macros
 * expand to SSL_CTX_ctrl / SSL_ctrl). */
#define SP_TLS_FUNCS(X)                                                   \
    X(ERR_clear_error) X(ERR_peek_last_error) X(ERR_reason_error_string)  \
    X(TLS_client_method) X(TLS_server_method)                             \
    X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) X(SSL_CTX_set_options) \
    X(SSL_CTX_use_certificate_chain_file) X(SSL_CTX_use_PrivateKey_file)  \
    X(SSL_CTX_check_private_key) X(SSL_CTX_load_verify_locations)         \
    X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_set_verify)             \
    X(SSL_new) X(SSL_free) X(SSL_ctrl) X(SSL_set_fd)                      \
    X(SSL_set_accept_state) X(SSL_set_connect_state) X(SSL_get0_param)    \
    X(X509_VERIFY_PARAM_set1_host) X(X509_VERIFY_PARAM_set1_ip_asc)       \
    X(SSL_do_handshake) X(SSL_get_error) X(SSL_read) X(SSL_write)         \
    X(SSL_has_pending)

/* 0 when OpenSSL can be called; else -1 with a reason in err. Call before
 * any other OpenSSL use; cheap after the first success. Thread safe only
 * in the sense slotproxy needs: contexts are made on the main thread. */
int tls_lib_load(char *err, size_t errlen);

/* 1 once tls_lib_load() succeeded. */
int tls_lib_loaded(void);

/* What tls_describe() reports (see tls.h). */
void tls_lib_describe(char *out, size_t outlen);

#ifdef SP_TLS_DLOPEN
struct tls_lib {
#define SP_TLS_MEMBER(f) __typeof__(&f) f;
    SP_TLS_FUNCS(SP_TLS_MEMBER)
#undef SP_TLS_MEMBER
};

extern struct tls_lib sp_tls_lib;

#ifndef SP_TLS_LIB_NO_RENAME
/* From here on, tls.c's calls name the loaded pointers. */
#define ERR_clear_error sp_tls_lib.ERR_clear_error
#define ERR_peek_last_error sp_tls_lib.ERR_peek_last_error
#define ERR_reason_error_string sp_tls_lib.ERR_reason_error_string
#define TLS_client_method sp_tls_lib.TLS_client_method
#define TLS_server_method sp_tls_lib.TLS_server_method
#define SSL_CTX_new sp_tls_lib.SSL_CTX_new
#define SSL_CTX_free sp_tls_lib.SSL_CTX_free
#define SSL_CTX_ctrl sp_tls_lib.SSL_CTX_ctrl
#define SSL_CTX_set_options sp_tls_lib.SSL_CTX_set_options
#define SSL_CTX_use_certificate_chain_file \
    sp_tls_lib.SSL_CTX_use_certificate_chain_file
#define SSL_CTX_use_PrivateKey_file sp_tls_lib.SSL_CTX_use_PrivateKey_file
#define SSL_CTX_check_private_key sp_tls_lib.SSL_CTX_check_private_key
#define SSL_CTX_load_verify_locations sp_tls_lib.SSL_CTX_load_verify_locations
#define SSL_CTX_set_default_verify_paths \
    sp_tls_lib.SSL_CTX_set_default_verify_paths
#define SSL_CTX_set_verify sp_tls_lib.SSL_CTX_set_verify
#define SSL_new sp_tls_lib.SSL_new
#define SSL_free sp_tls_lib.SSL_free
#define SSL_ctrl sp_tls_lib.SSL_ctrl
#define SSL_set_fd sp_tls_lib.SSL_set_fd
#define SSL_set_accept_state sp_tls_lib.SSL_set_accept_state
#define SSL_set_connect_state sp_tls_lib.SSL_set_connect_state
#define SSL_get0_param sp_tls_lib.SSL_get0_param
#define X509_VERIFY_PARAM_set1_host sp_tls_lib.X509_VERIFY_PARAM_set1_host
#define X509_VERIFY_PARAM_set1_ip_asc sp_tls_lib.X509_VERIFY_PARAM_set1_ip_asc
#define SSL_do_handshake sp_tls_lib.SSL_do_handshake
#define SSL_get_error sp_tls_lib.SSL_get_error
#define SSL_read sp_tls_lib.SSL_read
#define SSL_write sp_tls_lib.SSL_write
#define SSL_has_pending sp_tls_lib.SSL_has_pending
#endif /* SP_TLS_LIB_NO_RENAME */
#endif /* SP_TLS_DLOPEN */

#endif
