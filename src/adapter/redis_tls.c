/* redis_tls: TLS client sessions for the Redis connections, over memory BIOs (see redis_tls.h). */
#include "adapter/redis_tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsio.h"

struct rtls_ctx {
  SSL_CTX *ctx;
  char *server_name;
  int insecure;
  int has_cert;
  int refs;
};

struct rtls {
  SSL *ssl; /* its read BIO holds ciphertext from the server, its write BIO ciphertext for it */
  int cert_requested; /* the server sent a CertificateRequest */
  int has_cert;
  char why[256];
};

/* Notes a CertificateRequest from the server. In TLS 1.3 a refused client certificate shows only after
 * the client's side of the handshake is done, as an alert the server sends while closing, which a reset
 * may destroy before it is read: knowing it was asked for keeps the reason clear (rtls_hint). */
static void on_msg(int write_p, int version, int type, const void *p, size_t n, SSL *ssl, void *arg) {
  (void)version, (void)arg;
  if (write_p || type != SSL3_RT_HANDSHAKE || n < 1 || ((const unsigned char *)p)[0] != SSL3_MT_CERTIFICATE_REQUEST)
    return;
  rtls *t = SSL_get_app_data(ssl);
  if (t) t->cert_requested = 1;
}

/* OpenSSL's reason for what failed ("tlsv13 alert certificate required", "key values mismatch"), without
 * the error:XXXXXXXX:library:: prefix of ERR_error_string_n; a system error (a file that cannot be opened)
 * as strerror says it, since OpenSSL's own words for it are "system lib". The queue is emptied. */
static void ssl_reason(char *out, size_t cap, const char *fallback) {
  unsigned long e, last = 0;
  int sys = 0, nopem = 0;
  while ((e = ERR_get_error()) != 0) {
    if (ERR_SYSTEM_ERROR(e) && !sys) sys = ERR_GET_REASON(e);
    nopem |= (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ||
             (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == ERR_R_PEM_LIB);
    last = e;
  }
  const char *r = sys     ? strerror(sys)
                  : nopem ? "no usable PEM data in it"
                  : last  ? ERR_reason_error_string(last)
                          : NULL;
  if (r) snprintf(out, cap, "%s", r);
  else if (last) ERR_error_string_n(last, out, cap);
  else snprintf(out, cap, "%s", fallback);
}

static rtls_ctx *ctx_fail(SSL_CTX *ctx, char *err, size_t cap, const char *what, const char *file) {
  char r[200];
  ssl_reason(r, sizeof r, "unknown error");
  snprintf(err, cap, "%s%s%s: %s", what, file ? " " : "", file ? file : "", r);
  SSL_CTX_free(ctx);
  return NULL;
}

rtls_ctx *rtls_ctx_new(const rtls_config *cfg, char *err, size_t errcap) {
  if (!cfg->cert_file != !cfg->key_file) {
    snprintf(err, errcap, "a client certificate needs its key and the key its certificate (set both or neither)");
    return NULL;
  }
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    snprintf(err, errcap, "cannot make a TLS context (out of memory?)");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections keep no record buffers */
  SSL_CTX_set_msg_callback(ctx, on_msg);
  if (cfg->insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file) {
      if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1)
        return ctx_fail(ctx, err, errcap, "the CA file", cfg->ca_file);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return ctx_fail(ctx, err, errcap, "the system's trust store", NULL);
    }
  }
  if (cfg->cert_file) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
      return ctx_fail(ctx, err, errcap, "the client certificate", cfg->cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1)
      return ctx_fail(ctx, err, errcap, "the client key", cfg->key_file);
    if (SSL_CTX_check_private_key(ctx) != 1)
      return ctx_fail(ctx, err, errcap, "the client key (does it belong to the certificate?)", cfg->key_file);
  }
  rtls_ctx *x = calloc(1, sizeof *x);
  if (!x || (cfg->server_name && !(x->server_name = strdup(cfg->server_name)))) {
    free(x);
    SSL_CTX_free(ctx);
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  x->ctx = ctx;
  x->insecure = cfg->insecure != 0;
  x->has_cert = cfg->cert_file != NULL;
  x->refs = 1;
  return x;
}

rtls_ctx *rtls_ctx_ref(rtls_ctx *x) {
  x->refs++;
  return x;
}

void rtls_ctx_unref(rtls_ctx *x) {
  if (!x || --x->refs > 0) return;
  SSL_CTX_free(x->ctx);
  free(x->server_name);
  free(x);
}

int rtls_ctx_insecure(const rtls_ctx *x) { return x->insecure; }

static int is_ip(const char *s) {
  unsigned char a[16];
  return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

rtls *rtls_new(rtls_ctx *x, const char *host) {
  rtls *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(x->ctx);
  BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !rbio || !wbio) goto fail;
  /* A drained memory BIO reports "retry" rather than EOF. */
  BIO_set_mem_eof_return(rbio, -1);
  BIO_set_mem_eof_return(wbio, -1);
  SSL_set_bio(t->ssl, rbio, wbio);
  rbio = wbio = NULL; /* the SSL owns them now */
  SSL_set_connect_state(t->ssl);
  SSL_set_app_data(t->ssl, t);
  t->has_cert = x->has_cert;
  const char *name = x->server_name ? x->server_name : host;
  int ip = is_ip(name);
  if (!ip && SSL_set_tlsext_host_name(t->ssl, name) != 1) goto fail;
  if (!x->insecure) {
    /* The name (or address) checked during the handshake: a mismatch fails it like a bad chain. */
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : X509_VERIFY_PARAM_set1_host(vp, name, 0)) != 1) goto fail;
  }
  return t;
fail:
  ERR_clear_error();
  if (t->ssl) SSL_free(t->ssl);
  BIO_free(rbio);
  BIO_free(wbio);
  free(t);
  return NULL;
}

void rtls_free(rtls *t) {
  if (!t) return;
  SSL_free(t->ssl); /* frees both BIOs */
  free(t);
}

/* The reason of a failed SSL call, in t->why. */
static int failed(rtls *t) {
  unsigned long e = ERR_peek_last_error();
  char r[200];
  int verify = ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED;
  long v = SSL_get_verify_result(t->ssl);
  ssl_reason(r, sizeof r, "connection refused during the TLS handshake");
  if (verify && v != X509_V_OK)
    snprintf(t->why, sizeof t->why, "TLS: %s (%s)", r, X509_verify_cert_error_string(v));
  else
    snprintf(t->why, sizeof t->why, "TLS: %s", r);
  return WSIO_ETLS;
}

int rtls_handshake(rtls *t) {
  int n = SSL_do_handshake(t->ssl);
  if (n == 1) return 0;
  int e = SSL_get_error(t->ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  return failed(t);
}

int rtls_feed(rtls *t, const void *p, size_t n) {
  if (n > INT_MAX) return WSIO_ENOMEM;
  if (n && BIO_write(SSL_get_rbio(t->ssl), p, (int)n) != (int)n) return WSIO_ENOMEM;
  return 0;
}

ssize_t rtls_read(rtls *t, void *dst, size_t cap) {
  int n = SSL_read(t->ssl, dst, cap > INT_MAX ? INT_MAX : (int)cap);
  if (n > 0) return n;
  int e = SSL_get_error(t->ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) return WSIO_ECLOSED;
  return failed(t);
}

int rtls_write(rtls *t, const void *p, size_t n) {
  const char *s = p;
  while (n > 0) {
    int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
    int k = SSL_write(t->ssl, s, chunk);
    if (k <= 0) return failed(t);
    s += k;
    n -= (size_t)k;
  }
  return 0;
}

int rtls_out(rtls *t, buf *wire) {
  BIO *w = SSL_get_wbio(t->ssl);
  size_t n;
  while ((n = BIO_ctrl_pending(w)) > 0) {
    if (buf_reserve(wire, n) != 0) return WSIO_ENOMEM;
    int r = BIO_read(w, wire->data + wire->len, (int)(n > INT_MAX ? INT_MAX : n));
    if (r <= 0) break;
    wire->len += (size_t)r;
  }
  return 0;
}

int rtls_ready(const rtls *t) { return SSL_is_init_finished(t->ssl); }

const char *rtls_version(const rtls *t) { return SSL_get_version(t->ssl); }

const char *rtls_why(const rtls *t) { return t->why[0] ? t->why : "TLS: unknown error"; }

const char *rtls_hint(const rtls *t) {
  if (!t->cert_requested) return NULL;
  return t->has_cert ? "TLS: the server asked for a client certificate and closed the connection (is tls_cert "
                       "signed by a CA it trusts?)"
                     : "TLS: the server requires a client certificate (tls_cert and tls_key)";
}
