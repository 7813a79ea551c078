/* slotproxy - BSD-2-Clause
 *
 * OpenSSL glue. Sessions use SSL_MODE_ENABLE_PARTIAL_WRITE and
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: a write retried after "would block"
 * presents the same bytes from a rebuilt buffer, which is what the
 * callers' writev-style loops do. TLS 1.2 is the minimum; renegotiation
 * is off.
 */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "tls.h"

#ifdef HAVE_OPENSSL
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_lib.h"

#define TLS_WRITE_CHUNK (16 * 1024)

struct tls_ctx {
    SSL_CTX *ctx;                   /* shared by every session (thread safe) */
    char *server_name;              /* client side: name to verify/SNI */
    int verify;                     /* client side: verify the server */
};

struct tls_conn {
    SSL *ssl;
};

int
tls_available(void)
{
    return 1;
}

void
tls_describe(char *out, size_t outlen)
{
    tls_lib_describe(out, outlen);
}

const char *
tls_last_error(void)
{
    if (!tls_lib_loaded())
        return "TLS library not loaded";
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown TLS error";
}

static int
ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what,
         const char *path)
{
    snprintf(err, errlen, "%s %s: %s", what, path ? path : "",
             tls_last_error());
    SSL_CTX_free(ctx);
    return -1;
}

static SSL_CTX *
ctx_base(const SSL_METHOD *m)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
#ifdef SSL_OP_NO_RENEGOTIATION
    /* TLS 1.2 renegotiation: a handshake a peer can start again and again
     * on an open connection (CPU for free, and a history of attacks);
     * nothing here needs it. TLS 1.3 has none. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
#endif
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static int
ctx_cert(SSL_CTX *ctx, const char *cert, const char *key, char *err,
         size_t errlen)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return ctx_fail(ctx, err, errlen, "cannot load certificate", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return ctx_fail(ctx, err, errlen, "cannot load key", key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ctx_fail(ctx, err, errlen, "key does not match", cert);
    return 0;
}

struct tls_ctx *
tls_server_ctx(const char *cert, const char *key, const char *ca,
               int require_client_cert, char *err, size_t errlen)
{
    if (require_client_cert && ca == NULL) {
        /* config.c refuses this too: without a CA nothing is asked for. */
        snprintf(err, errlen, "require_client_cert needs a CA");
        return NULL;
    }
    if (tls_lib_load(err, errlen) != 0)
        return NULL;
    SSL_CTX *ctx = ctx_base(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", tls_last_error());
        return NULL;
    }
    if (ctx_cert(ctx, cert, key, err, errlen) != 0)
        return NULL;
    if (ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            ctx_fail(ctx, err, errlen, "cannot load CA", ca);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                                    (require_client_cert
                                         ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                         : 0),
                           NULL);
    }
    struct tls_ctx *t = sp_calloc(1, sizeof(*t));
    t->ctx = ctx;
    return t;
}

struct tls_ctx *
tls_client_ctx(const char *ca, const char *cert, const char *key,
               const char *server_name, int verify, char *err,
               size_t errlen)
{
    if (tls_lib_load(err, errlen) != 0)
        return NULL;
    SSL_CTX *ctx = ctx_base(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", tls_last_error());
        return NULL;
    }
    if (cert != NULL && key != NULL && ctx_cert(ctx, cert, key, err,
                                                errlen) != 0)
        return NULL;
    if (ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ctx_fail(ctx, err, errlen, "cannot load CA", ca);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       NULL);
    struct tls_ctx *t = sp_calloc(1, sizeof(*t));
    t->ctx = ctx;
    t->verify = verify;
    t->server_name = server_name ? sp_strdup(server_name) : NULL;
    return t;
}

void
tls_ctx_free(struct tls_ctx *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    sp_free(t->server_name);
    sp_free(t);
}

struct tls_conn *
tls_conn_new(struct tls_ctx *t, int fd, int server, const char *host)
{
    SSL *ssl = SSL_new(t->ctx);
    if (ssl == NULL)
        return NULL;
    SSL_set_fd(ssl, fd);
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        const char *name = t->server_name ? t->server_name : host;
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, name, ip) == 1 ||
                    inet_pton(AF_INET6, name, ip) == 1;
        if (!is_ip)
            SSL_set_tlsext_host_name(ssl, name);
        if (t->verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
            if (is_ip)
                X509_VERIFY_PARAM_set1_ip_asc(vp, name);
            else
                X509_VERIFY_PARAM_set1_host(vp, name, 0);
        }
        SSL_set_connect_state(ssl);
    }
    struct tls_conn *c = sp_calloc(1, sizeof(*c));
    c->ssl = ssl;
    return c;
}

void
tls_conn_free(struct tls_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    sp_free(c);
}

int
tls_handshake(struct tls_conn *c, int *want_write)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1)
        return 1;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want_write = e == SSL_ERROR_WANT_WRITE;
        return 0;
    }
    return -1;
}

/* Map an SSL result to read/write semantics. */
static ssize_t
tls_result(struct tls_conn *c, int rc)
{
    if (rc > 0)
        return rc;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    /* A peer that closes without close_notify is a plain EOF to us. */
    if (e == SSL_ERROR_ZERO_RETURN ||
        (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    errno = e == SSL_ERROR_SYSCALL && errno != 0 ? errno : EPROTO;
    return -1;
}

ssize_t
tls_read(struct tls_conn *c, void *buf, size_t len)
{
    ERR_clear_error();
    return tls_result(c, SSL_read(c->ssl, buf, (int)(len > INT32_MAX
                                                         ? INT32_MAX
                                                         : len)));
}

ssize_t
tls_writev(struct tls_conn *c, const struct iovec *iov, int n)
{
    char chunk[TLS_WRITE_CHUNK];
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof(chunk); i++) {
        size_t take = iov[i].iov_len;
        if (take > sizeof(chunk) - len)
            take = sizeof(chunk) - len;
        memcpy(chunk + len, iov[i].iov_base, take);
        len += take;
    }
    if (len == 0)
        return 0;
    ERR_clear_error();
    return tls_result(c, SSL_write(c->ssl, chunk, (int)len));
}

int
tls_pending(const struct tls_conn *c)
{
    /* Records already read from the socket, decrypted or not. */
    return SSL_has_pending(c->ssl);
}

#else /* !HAVE_OPENSSL */

int
tls_available(void)
{
    return 0;
}

void
tls_describe(char *out, size_t outlen)
{
    snprintf(out, outlen, "none (built --without-openssl)");
}

const char *
tls_last_error(void)
{
    return "built without TLS";
}

struct tls_ctx *
tls_server_ctx(const char *cert, const char *key, const char *ca,
               int require_client_cert, char *err, size_t errlen)
{
    snprintf(err, errlen, "slotproxy was built without TLS");
    return NULL;
}

struct tls_ctx *
tls_client_ctx(const char *ca, const char *cert, const char *key,
               const char *server_name, int verify, char *err,
               size_t errlen)
{
    snprintf(err, errlen, "slotproxy was built without TLS");
    return NULL;
}

void
tls_ctx_free(struct tls_ctx *t)
{
}

struct tls_conn *
tls_conn_new(struct tls_ctx *t, int fd, int server, const char *host)
{
    return NULL;
}

void
tls_conn_free(struct tls_conn *c)
{
}

int
tls_handshake(struct tls_conn *c, int *want_write)
{
    return -1;
}

ssize_t
tls_read(struct tls_conn *c, void *buf, size_t len)
{
    errno = EPROTO;
    return -1;
}

ssize_t
tls_writev(struct tls_conn *c, const struct iovec *iov, int n)
{
    errno = EPROTO;
    return -1;
}

int
tls_pending(const struct tls_conn *c)
{
    return 0;
}

#endif
