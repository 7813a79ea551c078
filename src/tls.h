/* slotproxy - BSD-2-Clause
 *
 * TLS on either side, with OpenSSL, for connections that slotproxy drives
 * itself with non-blocking sockets: contexts from the configuration, a
 * session per connection, and read/writev/handshake calls that report
 * "would block" as EAGAIN like the plain socket calls they replace.
 */
#ifndef SP_TLS_H
#define SP_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_ctx;
struct tls_conn;

/* A server (listener) context: cert and key required; ca to verify
 * client certificates, which require_client_cert makes mandatory. NULL
 * with a message in err on failure. */
struct tls_ctx *tls_server_ctx(const char *cert, const char *key,
                               const char *ca, int require_client_cert,
                               char *err, size_t errlen);
/* A client (backend) context: ca (else the system's), optional client
 * cert/key, verify the server's certificate against server_name (or the
 * host connected to) when verify is set. */
struct tls_ctx *tls_client_ctx(const char *ca, const char *cert,
                               const char *key, const char *server_name,
                               int verify, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *t);
/* 1 when slotproxy was built with TLS. */
int tls_available(void);

/* A session on fd (server side, or client side towards host). */
struct tls_conn *tls_conn_new(struct tls_ctx *t, int fd, int server,
                              const char *host);
void tls_conn_free(struct tls_conn *c);
/* Advance the handshake: 1 done, 0 in progress (*want_write: wait for
 * the socket to be writable, else readable), -1 failed. */
int tls_handshake(struct tls_conn *c, int *want_write);
/* Like read(2)/writev(2): -1 with errno EAGAIN when it would block. */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
ssize_t tls_writev(struct tls_conn *c, const struct iovec *iov, int n);
/* Decrypted bytes already buffered (read them without waiting). */
int tls_pending(const struct tls_conn *c);
/* The last OpenSSL error, for logs. */
const char *tls_last_error(void);
/* The TLS library this build uses, for `slotproxy -v`: the version its
 * headers describe and, where libssl is loaded on demand, the one found
 * at run time (or why none was). */
void tls_describe(char *out, size_t outlen);

#endif
