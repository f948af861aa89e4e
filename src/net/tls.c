/* TLS for accepted connections: OpenSSL over memory BIOs, so libuv keeps doing all socket I/O. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include "net/conn_internal.h"
#include "net/net.h"
#include "util/log.h"
#include "wsio.h"

struct net_tls_ctx {
  SSL_CTX *ctx;
};

struct net_tls {
  SSL *ssl;
  BIO *rbio; /* ciphertext from the socket */
  BIO *wbio; /* ciphertext for the socket */
  buf wire;
};

static void log_ssl_errors(const char *what) {
  unsigned long e;
  char msg[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, msg, sizeof msg);
    log_error("%s: %s", what, msg);
  }
}

/* A server context with the certificate chain and key of these files, or NULL (the reasons logged). */
static SSL_CTX *ctx_load(const char *cert_file, const char *key_file) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    log_ssl_errors("TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* Session tickets keep resumption state client-side; no per-session cache to grow on the server. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
    log_ssl_errors(cert_file);
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    log_ssl_errors(key_file);
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    log_ssl_errors("TLS key does not match the certificate");
  } else {
    return ctx;
  }
  SSL_CTX_free(ctx);
  return NULL;
}

net_tls_ctx *net_tls_ctx_new(const char *cert_file, const char *key_file) {
  net_tls_ctx *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (!(t->ctx = ctx_load(cert_file, key_file))) {
    free(t);
    return NULL;
  }
  return t;
}

int net_tls_ctx_reload(net_tls_ctx *t, const char *cert_file, const char *key_file) {
  SSL_CTX *ctx = ctx_load(cert_file, key_file);
  if (!ctx) return WSIO_ETLS;
  /* Each open connection's SSL holds a reference to the context it was made from: it keeps that one. */
  SSL_CTX_free(t->ctx);
  t->ctx = ctx;
  return 0;
}

void net_tls_ctx_free(net_tls_ctx *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

net_tls *net_tls_new(net_tls_ctx *ctx) {
  net_tls *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx->ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    if (t->ssl) SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    return NULL;
  }
  /* A drained memory BIO reports "retry" rather than EOF. */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_accept_state(t->ssl);
  return t;
}

void net_tls_free(net_tls *t) {
  if (!t) return;
  SSL_free(t->ssl); /* frees both BIOs */
  buf_free(&t->wire);
  free(t);
}

buf *net_tls_wire(net_tls *t) { return &t->wire; }

int net_tls_pending(net_tls *t, buf *cipher) {
  size_t n;
  while ((n = BIO_ctrl_pending(t->wbio)) > 0) {
    if (buf_reserve(cipher, n) != 0) return WSIO_ENOMEM;
    int r = BIO_read(t->wbio, cipher->data + cipher->len, (int)n);
    if (r <= 0) break;
    cipher->len += (size_t)r;
  }
  return 0;
}

int net_tls_read(net_conn *c, const uint8_t *data, size_t len,
                 void (*deliver)(net_conn *c, uint8_t *data, size_t len)) {
  net_tls *t = c->tls;
  if (len > 0 && BIO_write(t->rbio, data, (int)len) != (int)len) return WSIO_ENOMEM;
  int rc = 0;
  for (;;) {
    int n = SSL_read(t->ssl, c->loop->tbuf, NET_READ_BUFFER);
    if (n > 0) {
      deliver(c, c->loop->tbuf, (size_t)n);
      if (c->flags & NET_CONN_CLOSING) return 0;
      continue;
    }
    int err = SSL_get_error(t->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      rc = WSIO_ECLOSED;
    } else {
      log_debug("TLS error on a connection");
      ERR_clear_error();
      rc = WSIO_ETLS;
    }
    break;
  }
  /* Handshake records (and alerts) go out with the next flush. */
  if (BIO_ctrl_pending(t->wbio) > 0) {
    if (net_tls_pending(t, &t->wire) != 0) return WSIO_ENOMEM;
    net_conn_mark_dirty(c);
  }
  return rc;
}

int net_tls_encrypt(net_tls *t, const uint8_t *data, size_t len, buf *cipher) {
  while (len > 0) {
    int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
    int n = SSL_write(t->ssl, data, chunk);
    if (n <= 0) {
      ERR_clear_error();
      return WSIO_ETLS;
    }
    data += n;
    len -= (size_t)n;
  }
  return net_tls_pending(t, cipher);
}
