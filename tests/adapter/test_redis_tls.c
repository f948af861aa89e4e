/* Unit tests of src/adapter/redis_tls.c: the client session against an OpenSSL server in memory, with a
 * CA and certificates made here (nothing on disk but temporary PEM files). Verification, names and
 * addresses, SNI, mutual TLS, and the bytes moved in every chunk size. Against a real redis-server:
 * tests/interop/test_redis_tls.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "adapter/redis_tls.h"
#include "wsio.h"

typedef struct pki {
  EVP_PKEY *key;
  X509 *cert;
} pki;

static pki ca, other_ca, server, client;
static char dir[64], ca_pem[128], other_pem[128], cert_pem[128], key_pem[128];

static void ext(X509 *c, X509 *issuer, int nid, const char *value) {
  X509V3_CTX x;
  X509V3_set_ctx(&x, issuer, c, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &x, nid, value);
  assert_non_null(e);
  X509_add_ext(c, e, -1);
  X509_EXTENSION_free(e);
}

/* A P-256 key and a certificate for cn, signed by issuer (NULL: self-signed, a CA). */
static pki make(const char *cn, const pki *issuer, const char *san) {
  static long serial = 1;
  pki p = {EVP_EC_gen("P-256"), X509_new()};
  assert_non_null(p.key);
  X509_set_version(p.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(p.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(p.cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(p.cert), 3600);
  X509_set_pubkey(p.cert, p.key);
  X509_NAME *n = X509_get_subject_name(p.cert);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(p.cert, issuer ? X509_get_subject_name(issuer->cert) : n);
  X509 *ic = issuer ? issuer->cert : p.cert;
  ext(p.cert, ic, NID_basic_constraints, issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
  if (!issuer) ext(p.cert, ic, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (san) ext(p.cert, ic, NID_subject_alt_name, san);
  assert_true(X509_sign(p.cert, issuer ? issuer->key : p.key, EVP_sha256()) > 0);
  return p;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  if (cert) PEM_write_X509(f, cert);
  if (key) PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  fclose(f);
}

static int setup(void **st) {
  (void)st;
  snprintf(dir, sizeof dir, "/tmp/wsio-rtls-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  ca = make("test CA", NULL, NULL);
  other_ca = make("another CA", NULL, NULL);
  server = make("redis.test", &ca, "DNS:redis.test,DNS:*.cache.test,IP:127.0.0.1,IP:::1");
  client = make("wsio", &ca, NULL);
  snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
  snprintf(other_pem, sizeof other_pem, "%s/other.pem", dir);
  snprintf(cert_pem, sizeof cert_pem, "%s/client.pem", dir);
  snprintf(key_pem, sizeof key_pem, "%s/client.key", dir);
  write_pem(ca_pem, ca.cert, NULL);
  write_pem(other_pem, other_ca.cert, NULL);
  write_pem(cert_pem, client.cert, NULL);
  write_pem(key_pem, NULL, client.key);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  const char *files[] = {ca_pem, other_pem, cert_pem, key_pem};
  for (size_t i = 0; i < 4; i++) unlink(files[i]);
  rmdir(dir);
  pki *all[] = {&ca, &other_ca, &server, &client};
  for (size_t i = 0; i < 4; i++) {
    EVP_PKEY_free(all[i]->key);
    X509_free(all[i]->cert);
  }
  return 0;
}

/* The server side: what redis-server does with tls-auth-clients yes or no. */
typedef struct srv {
  SSL_CTX *ctx;
  SSL *ssl;
  char sni[256];
} srv;

static int on_sni(SSL *ssl, int *al, void *arg) {
  (void)al;
  srv *s = arg;
  const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  snprintf(s->sni, sizeof s->sni, "%s", n ? n : "");
  return SSL_TLSEXT_ERR_OK;
}

static void srv_init(srv *s, int want_client_cert) {
  memset(s, 0, sizeof *s);
  s->ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(s->ctx, server.cert);
  SSL_CTX_use_PrivateKey(s->ctx, server.key);
  SSL_CTX_set_tlsext_servername_callback(s->ctx, on_sni);
  SSL_CTX_set_tlsext_servername_arg(s->ctx, s);
  if (want_client_cert) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(s->ctx), ca.cert);
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  s->ssl = SSL_new(s->ctx);
  SSL_set_bio(s->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_accept_state(s->ssl);
}

static void srv_free(srv *s) {
  SSL_free(s->ssl);
  SSL_CTX_free(s->ctx);
  ERR_clear_error();
}

/* Moves bytes both ways, chunk bytes at a time, until neither side has anything to say. Plaintext the
 * client reads is appended to got. Returns 0, or the client's error (WSIO_ETLS...). */
static int pump(rtls *t, srv *s, size_t chunk, buf *got) {
  buf wire = {0};
  char tmp[4096];
  int rc = 0;
  for (int rounds = 0; rounds < 1000 && rc == 0; rounds++) {
    wire.len = 0;
    assert_int_equal(rtls_out(t, &wire), 0);
    for (size_t off = 0; off < wire.len; off += chunk) {
      size_t n = wire.len - off < chunk ? wire.len - off : chunk;
      BIO_write(SSL_get_rbio(s->ssl), wire.data + off, (int)n);
      SSL_do_handshake(s->ssl);
    }
    int moved = wire.len > 0;
    /* the server echoes what it reads */
    int n;
    while ((n = SSL_read(s->ssl, tmp, sizeof tmp)) > 0) SSL_write(s->ssl, tmp, n);
    ERR_clear_error();
    BIO *sw = SSL_get_wbio(s->ssl);
    while (BIO_ctrl_pending(sw) > 0) {
      n = BIO_read(sw, tmp, (int)(chunk < sizeof tmp ? chunk : sizeof tmp));
      moved = 1;
      assert_int_equal(rtls_feed(t, tmp, (size_t)n), 0);
      ssize_t k;
      while ((k = rtls_read(t, tmp, sizeof tmp)) > 0) assert_int_equal(buf_append(got, tmp, (size_t)k), 0);
      if (k < 0) {
        rc = (int)k;
        break;
      }
    }
    if (!moved) break;
  }
  buf_free(&wire);
  return rc;
}

/* A handshake and an echoed message, chunk bytes at a time. Returns the client's result. */
static int session(rtls_ctx *x, const char *host, int want_client_cert, size_t chunk, srv *s, rtls **out) {
  srv_init(s, want_client_cert);
  rtls *t = rtls_new(x, host);
  assert_non_null(t);
  assert_int_equal(rtls_handshake(t), 0);
  buf got = {0};
  int rc = pump(t, s, chunk, &got);
  if (rc == 0 && rtls_ready(t)) {
    static const char msg[] = "*1\r\n$4\r\nPING\r\n";
    assert_int_equal(rtls_write(t, msg, sizeof msg - 1), 0);
    rc = pump(t, s, chunk, &got);
    if (rc == 0) {
      assert_int_equal(got.len, sizeof msg - 1);
      assert_memory_equal(got.data, msg, got.len);
    }
  }
  buf_free(&got);
  *out = t;
  return rc;
}

static rtls_ctx *ctx_of(rtls_config c) {
  char err[300];
  rtls_ctx *x = rtls_ctx_new(&c, err, sizeof err);
  if (!x) fail_msg("context: %s", err);
  return x;
}

static void test_verified(void **st) {
  (void)st;
  rtls_ctx *x = ctx_of((rtls_config){.ca_file = ca_pem});
  static const size_t chunks[] = {1, 2, 7, 100, 1 << 20};
  for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
    srv s;
    rtls *t;
    assert_int_equal(session(x, "redis.test", 0, chunks[i], &s, &t), 0);
    assert_true(rtls_ready(t));
    assert_null(rtls_hint(t)); /* no client certificate asked for */
    assert_string_equal(rtls_version(t), "TLSv1.3");
    assert_string_equal(s.sni, "redis.test");
    rtls_free(t);
    srv_free(&s);
  }
  /* an address: checked against the IP SANs, and no SNI (RFC 6066) */
  const char *hosts[] = {"127.0.0.1", "::1", "a.cache.test"};
  for (size_t i = 0; i < 3; i++) {
    srv s;
    rtls *t;
    if (session(x, hosts[i], 0, 1 << 20, &s, &t) != 0) fail_msg("%s: %s", hosts[i], rtls_why(t));
    assert_string_equal(s.sni, i < 2 ? "" : "a.cache.test");
    rtls_free(t);
    srv_free(&s);
  }
  rtls_ctx_unref(x);
}

static void expect_refused(rtls_ctx *x, const char *host, int want_client_cert, const char *why) {
  srv s;
  rtls *t;
  int rc = session(x, host, want_client_cert, 1 << 20, &s, &t);
  if (rc != WSIO_ETLS || !strstr(rtls_why(t), why))
    fail_msg("%s: %d \"%s\", expected \"%s\"", host, rc, rc ? rtls_why(t) : "", why);
  assert_false(rtls_ready(t) && !want_client_cert);
  rtls_free(t);
  srv_free(&s);
}

static void test_refused(void **st) {
  (void)st;
  rtls_ctx *x = ctx_of((rtls_config){.ca_file = other_pem});
  expect_refused(x, "redis.test", 0, "TLS: certificate verify failed (unable to get local issuer certificate)");
  rtls_ctx_unref(x);
  x = ctx_of((rtls_config){.ca_file = ca_pem});
  expect_refused(x, "other.test", 0, "TLS: certificate verify failed (hostname mismatch)");
  expect_refused(x, "a.b.cache.test", 0, "(hostname mismatch)"); /* a wildcard covers one label */
  expect_refused(x, "127.0.0.2", 0, "TLS: certificate verify failed (IP address mismatch)");
  rtls_ctx_unref(x);
  /* the server's name given apart: checked instead of the address connected to */
  x = ctx_of((rtls_config){.ca_file = ca_pem, .server_name = "other.test"});
  expect_refused(x, "127.0.0.1", 0, "(hostname mismatch)");
  rtls_ctx_unref(x);
  x = ctx_of((rtls_config){.ca_file = ca_pem, .server_name = "redis.test"});
  srv s;
  rtls *t;
  assert_int_equal(session(x, "10.9.8.7", 0, 1 << 20, &s, &t), 0);
  assert_string_equal(s.sni, "redis.test");
  rtls_free(t);
  srv_free(&s);
  rtls_ctx_unref(x);
}

static void test_insecure(void **st) {
  (void)st;
  rtls_ctx *x = ctx_of((rtls_config){.ca_file = other_pem, .insecure = 1});
  assert_true(rtls_ctx_insecure(x));
  srv s;
  rtls *t;
  assert_int_equal(session(x, "whatever.test", 0, 3, &s, &t), 0);
  assert_string_equal(s.sni, "whatever.test");
  rtls_free(t);
  srv_free(&s);
  rtls_ctx_unref(x);
}

static void test_client_cert(void **st) {
  (void)st;
  rtls_ctx *x = ctx_of((rtls_config){.ca_file = ca_pem, .cert_file = cert_pem, .key_file = key_pem});
  srv s;
  rtls *t;
  assert_int_equal(session(x, "redis.test", 1, 5, &s, &t), 0);
  X509 *peer = SSL_get1_peer_certificate(s.ssl);
  assert_non_null(peer); /* the server saw ours */
  X509_free(peer);
  /* asked for and given: were the server to close now, the hint would suspect the certificate */
  assert_non_null(strstr(rtls_hint(t), "is tls_cert signed by a CA it trusts?"));
  rtls_free(t);
  srv_free(&s);
  rtls_ctx_unref(x);
  /* none: TLS 1.3 servers refuse once the client's side is done; the hint knows it was asked for */
  x = ctx_of((rtls_config){.ca_file = ca_pem});
  expect_refused(x, "redis.test", 1, "certificate required");
  srv_init(&s, 1);
  t = rtls_new(x, "redis.test");
  assert_int_equal(rtls_handshake(t), 0);
  buf got = {0};
  (void)pump(t, &s, 1 << 20, &got);
  assert_non_null(rtls_hint(t));
  assert_non_null(strstr(rtls_hint(t), "requires a client certificate (tls_cert and tls_key)"));
  buf_free(&got);
  rtls_free(t);
  srv_free(&s);
  rtls_ctx_unref(x);
}

static void test_ctx_errors(void **st) {
  (void)st;
  char err[300];
  static const struct {
    rtls_config c;
    const char *why;
  } bad[] = {
      {{.ca_file = "/nonexistent/ca.pem"}, "the CA file /nonexistent/ca.pem: No such file or directory"},
      {{.ca_file = "/etc/hostname"}, "the CA file /etc/hostname: no certificate or crl found"},
      {{.cert_file = "/etc/hostname", .key_file = "/etc/hostname"}, "the client certificate /etc/hostname:"},
      {{.cert_file = "/x"}, "set both or neither"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    assert_null(rtls_ctx_new(&bad[i].c, err, sizeof err));
    if (!strstr(err, bad[i].why)) fail_msg("%zu: \"%s\", expected \"%s\"", i, err, bad[i].why);
  }
  /* a key of another certificate */
  char other_key[160];
  snprintf(other_key, sizeof other_key, "%s/other.key", dir);
  write_pem(other_key, NULL, server.key);
  rtls_config c = {.cert_file = cert_pem, .key_file = other_key};
  assert_null(rtls_ctx_new(&c, err, sizeof err));
  assert_non_null(strstr(err, "the client key"));
  unlink(other_key);
  /* references */
  rtls_ctx *x = ctx_of((rtls_config){0});
  assert_ptr_equal(rtls_ctx_ref(x), x);
  rtls_ctx_unref(x);
  rtls_ctx_unref(x);
  rtls_ctx_unref(NULL);
  rtls_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_verified),    cmocka_unit_test(test_refused),   cmocka_unit_test(test_insecure),
      cmocka_unit_test(test_client_cert), cmocka_unit_test(test_ctx_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
