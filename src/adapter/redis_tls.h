/*
 * redis_tls — TLS for the Redis connections (rediss:// URLs): a client context made once per adapter from
 * its settings, and one client session per connection over memory BIOs. Sans-I/O: the caller moves the
 * bytes, redis_conn.c on the loop and redis_block.c on a blocking socket at start, so both take the same
 * path through OpenSSL.
 *
 * Verification is on unless the context is insecure: the chain must lead to a CA of ca_file (or of the
 * system's trust store), and the certificate must name the host connected to (a DNS name, or an IP address
 * in an IP SAN) or server_name when it is set. SNI carries that name, never an IP address (RFC 6066).
 * TLS 1.2 or later.
 *
 * Ownership: a context is reference-counted; each session and each redis_url holding it keeps a reference.
 * Threading: a context and its sessions belong to the thread of one loop (each worker makes its own).
 */
#ifndef WSIO_ADAPTER_REDIS_TLS_H
#define WSIO_ADAPTER_REDIS_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"

typedef struct rtls_ctx rtls_ctx;
typedef struct rtls rtls;

typedef struct rtls_config {
  const char *ca_file;     /* PEM CA certificates; NULL: the system's trust store */
  const char *cert_file;   /* PEM client certificate chain for servers that ask for one; with key_file */
  const char *key_file;
  const char *server_name; /* the name certificates must carry, instead of the host connected to */
  int insecure;            /* no verification at all: for testing only */
} rtls_config;

/* Makes a context (files read now). Returns NULL with the reason in err: a file that cannot be read, a key
 * that does not match the certificate, cert_file without key_file (or the reverse), out of memory. */
rtls_ctx *rtls_ctx_new(const rtls_config *cfg, char *err, size_t errcap);
rtls_ctx *rtls_ctx_ref(rtls_ctx *x);
void rtls_ctx_unref(rtls_ctx *x); /* NULL: nothing */
int rtls_ctx_insecure(const rtls_ctx *x);

/* A client session to host (the name checked and sent unless the context has a server_name). NULL on
 * ENOMEM. Nothing is sent until rtls_handshake. */
rtls *rtls_new(rtls_ctx *x, const char *host);
void rtls_free(rtls *t); /* NULL: nothing */

/* Starts the handshake: the ClientHello waits in rtls_out. Returns 0 or WSIO_ETLS (reason: rtls_why). */
int rtls_handshake(rtls *t);
/* Ciphertext from the server (copied). Returns 0 or WSIO_ENOMEM. */
int rtls_feed(rtls *t, const void *p, size_t n);
/* Plaintext that the bytes fed so far hold, up to cap bytes into dst; also drives the handshake. Returns the
 * byte count (> 0), 0 (more is needed from the server), WSIO_ECLOSED (the server ended the session) or
 * WSIO_ETLS (refused: a certificate not verified, a name that does not match, an alert from the server;
 * the reason in rtls_why). Call until it returns 0, then send what rtls_out holds. */
ssize_t rtls_read(rtls *t, void *dst, size_t cap);
/* Encrypts n bytes of plaintext (the handshake must be done). Returns 0, WSIO_ETLS or WSIO_ENOMEM. */
int rtls_write(rtls *t, const void *p, size_t n);
/* Appends to wire what is to be sent to the server (handshake records, alerts, encrypted data). Returns 0 or
 * WSIO_ENOMEM. */
int rtls_out(rtls *t, buf *wire);
/* 1 once the handshake is complete. */
int rtls_ready(const rtls *t);
/* "TLSv1.3" once ready. */
const char *rtls_version(const rtls *t);
/* When the server closes the connection (reset, EOF) during or right after the handshake: the likely
 * reason, if the handshake tells one (a client certificate asked for), else NULL. */
const char *rtls_hint(const rtls *t);
/* The reason of the last WSIO_ETLS: "TLS: " and OpenSSL's words, e.g. "TLS: certificate verify failed
 * (hostname mismatch)". Valid until the next call on t. */
const char *rtls_why(const rtls *t);

#endif
