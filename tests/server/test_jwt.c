#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "server/jwt.h"
#include "wsio.h"

/* Keys and a signer for the tests: tokens are made here with OpenSSL, independently of the verifier. */

#define NOW 1700000000LL
static const char SECRET[] = "0123456789abcdef0123456789abcdef-hs256-test-secret";
static EVP_PKEY *rsa_key, *ec_key;
static char *rsa_pem, *ec_pem;

static char *pubkey_pem(EVP_PKEY *k) {
  BIO *b = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *s = malloc((size_t)n + 1);
  memcpy(s, data, (size_t)n);
  s[n] = 0;
  BIO_free(b);
  return s;
}

static int setup_keys(void **state) {
  (void)state;
  rsa_key = EVP_RSA_gen(2048);
  ec_key = EVP_EC_gen("P-256");
  if (!rsa_key || !ec_key) return -1;
  rsa_pem = pubkey_pem(rsa_key);
  ec_pem = pubkey_pem(ec_key);
  return 0;
}

static int teardown_keys(void **state) {
  (void)state;
  EVP_PKEY_free(rsa_key);
  EVP_PKEY_free(ec_key);
  free(rsa_pem);
  free(ec_pem);
  return 0;
}

static size_t b64url(const unsigned char *in, size_t n, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
    out[o++] = abc[v >> 18 & 63];
    out[o++] = abc[v >> 12 & 63];
    if (i + 1 < n) out[o++] = abc[v >> 6 & 63];
    if (i + 2 < n) out[o++] = abc[v & 63];
  }
  out[o] = 0;
  return o;
}

enum { SIG_HS = 1, SIG_RS, SIG_ES, SIG_ES_DER, SIG_HS_KEY /* HMAC keyed with the RSA public PEM */ };

/* Signs data with the given method into sig; returns the signature length. */
static size_t sign(int how, const char *data, size_t n, unsigned char *sig) {
  if (how == SIG_HS || how == SIG_HS_KEY) {
    const char *key = how == SIG_HS ? SECRET : rsa_pem;
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)data, n, sig, &len);
    return len;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[600];
  size_t len = sizeof der;
  assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, how == SIG_RS ? rsa_key : ec_key), 1);
  assert_int_equal(EVP_DigestSign(md, der, &len, (const unsigned char *)data, n), 1);
  EVP_MD_CTX_free(md);
  if (how == SIG_RS || how == SIG_ES_DER) {
    memcpy(sig, der, len);
    return len;
  }
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
  assert_non_null(es);
  BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
  ECDSA_SIG_free(es);
  return 64;
}

/* Builds base64url(header).base64url(payload).signature into tok (static, one token at a time). */
static char tok[3 * JWT_MAX_TOKEN];
static const char *make(int how, const char *header, const char *payload) {
  size_t n = b64url((const unsigned char *)header, strlen(header), tok);
  tok[n++] = '.';
  n += b64url((const unsigned char *)payload, strlen(payload), tok + n);
  unsigned char sig[600];
  size_t slen = sign(how, tok, n, sig);
  tok[n++] = '.';
  b64url(sig, slen, tok + n);
  return tok;
}

static const char *const HDR[] = {
    [SIG_HS] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", [SIG_RS] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
    [SIG_ES] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", [SIG_ES_DER] = "{\"alg\":\"ES256\"}",
    [SIG_HS_KEY] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"};

static char claims_buf[JWT_MAX_TOKEN + 128];
/* A payload with sub and the given exp, plus extra members (a JSON fragment starting with ',' or ""). */
static const char *claims(long long exp, const char *extra) {
  snprintf(claims_buf, sizeof claims_buf, "{\"sub\":\"alice\",\"exp\":%lld%s}", exp, extra);
  return claims_buf;
}

typedef struct {
  int algs, leeway, no_exp;
  const char *aud, *iss;
} opts;

static jwt_verifier *verifier(int keys, opts o) {
  jwt_config cfg;
  jwt_config_init(&cfg);
  if (keys & JWT_ALG_HS256) {
    cfg.secret = SECRET;
    cfg.secret_len = strlen(SECRET);
  }
  if (keys & JWT_ALG_RS256) cfg.public_key_pem = rsa_pem;
  if (keys & JWT_ALG_ES256) cfg.public_key_pem = ec_pem;
  cfg.algorithms = o.algs;
  if (o.leeway >= 0) cfg.leeway_s = o.leeway;
  cfg.allow_missing_exp = o.no_exp;
  cfg.audience = o.aud;
  cfg.issuer = o.iss;
  char err[200];
  jwt_verifier *v = jwt_verifier_new(&cfg, err, sizeof err);
  if (!v) fail_msg("jwt_verifier_new: %s", err);
  return v;
}
#define DEFAULTS ((opts){.leeway = -1})

static int check(const jwt_verifier *v, const char *t) {
  return jwt_verify(v, t, strlen(t), NOW, NULL, NULL);
}

/* ---- accepting ---------------------------------------------------------------------------------------------- */

static void test_accept_each_algorithm(void **state) {
  (void)state;
  static const int how[] = {SIG_HS, SIG_RS, SIG_ES}, key[] = {JWT_ALG_HS256, JWT_ALG_RS256, JWT_ALG_ES256};
  for (int i = 0; i < 3; i++) {
    jwt_verifier *v = verifier(key[i], DEFAULTS);
    assert_int_equal(jwt_verifier_algorithms(v), key[i]);
    const char *t = make(how[i], HDR[how[i]], claims(NOW + 60, ",\"rooms\":[\"a\",\"b/c\"],\"x\":{\"y\":1}"));
    jwt_claims c;
    const char *why = NULL;
    assert_int_equal(jwt_verify(v, t, strlen(t), NOW, &c, &why), 0);
    assert_string_equal(why, "ok");
    assert_int_equal(c.alg, key[i]);
    assert_string_equal(jwt_claims_sub(&c), "alice");
    int64_t exp = 0;
    assert_int_equal(jwt_claims_exp(&c, &exp), 0);
    assert_int_equal(exp, NOW + 60);
    const char *rooms[4];
    assert_int_equal(jwt_claims_strings(&c, "rooms", rooms, 4), 2);
    assert_string_equal(rooms[0], "a");
    assert_string_equal(rooms[1], "b/c");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c.payload, "x"), "y")), 1);
    jwt_claims_free(&c);
    assert_null(c.payload);
    jwt_claims_free(&c);
    /* Every truncation of a valid token fails. */
    size_t len = strlen(t);
    for (size_t n = 0; n < len; n++) assert_int_not_equal(jwt_verify(v, t, n, NOW, NULL, NULL), 0);
    jwt_verifier_free(v);
  }
}

static void test_key_from_file_and_both_keys(void **state) {
  (void)state;
  char path[] = "/tmp/test_jwt_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, ec_pem, strlen(ec_pem)), (ssize_t)strlen(ec_pem));
  close(fd);
  jwt_config cfg;
  jwt_config_init(&cfg);
  cfg.public_key_file = path;
  cfg.secret = SECRET;
  cfg.secret_len = strlen(SECRET);
  jwt_verifier *v = jwt_verifier_new(&cfg, NULL, 0);
  unlink(path);
  assert_non_null(v);
  assert_int_equal(jwt_verifier_algorithms(v), JWT_ALG_HS256 | JWT_ALG_ES256);
  assert_int_equal(check(v, make(SIG_ES, HDR[SIG_ES], claims(NOW + 5, ""))), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 5, ""))), 0);
  assert_int_equal(check(v, make(SIG_RS, HDR[SIG_RS], claims(NOW + 5, ""))), JWT_EALG);
  jwt_verifier_free(v);
}

/* ---- dates ------------------------------------------------------------------------------------------------- */

static void test_exp_nbf_iat_with_leeway(void **state) {
  (void)state;
  jwt_verifier *v = verifier(JWT_ALG_HS256, DEFAULTS); /* leeway 30 */
  const char *why = NULL;
  const char *t = make(SIG_HS, HDR[SIG_HS], claims(NOW - 30, ""));
  assert_int_equal(jwt_verify(v, t, strlen(t), NOW, NULL, &why), JWT_EEXPIRED);
  assert_string_equal(why, "expired");
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW - 29, ""))), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW - 3600, ""))), JWT_EEXPIRED);
  /* Fractional NumericDates count: exp 29.5 s ago is inside the leeway, 30.5 s ago is not. */
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], "{\"exp\":1699999970.5}")), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], "{\"exp\":1699999969.5}")), JWT_EEXPIRED);
  t = make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ",\"nbf\":1700000031"));
  assert_int_equal(jwt_verify(v, t, strlen(t), NOW, NULL, &why), JWT_ENOTYET);
  assert_string_equal(why, "not yet valid");
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ",\"nbf\":1700000030"))), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ",\"nbf\":1700000030.2"))), JWT_ENOTYET);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ",\"iat\":1700000031"))), JWT_ENOTYET);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ",\"iat\":1699990000"))), 0);
  /* Huge and negative dates clamp instead of overflowing. */
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], "{\"exp\":9223372036854775807}")), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], "{\"exp\":1e300}")), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], "{\"exp\":-9223372036854775807}")), JWT_EEXPIRED);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 9, ",\"nbf\":-1e300"))), 0);
  assert_int_equal(jwt_verify(v, tok, strlen(tok), INT64_MAX, NULL, NULL), JWT_EEXPIRED);
  assert_int_equal(jwt_verify(v, tok, strlen(tok), INT64_MIN, NULL, NULL), 0);
  jwt_verifier_free(v);

  v = verifier(JWT_ALG_HS256, (opts){.leeway = 0});
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW, ""))), JWT_EEXPIRED);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 1, ""))), 0);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ",\"nbf\":1700000001"))), JWT_ENOTYET);
  jwt_verifier_free(v);
}

static void test_claim_types(void **state) {
  (void)state;
  jwt_verifier *v = verifier(JWT_ALG_HS256, DEFAULTS);
  static const char *const bad[] = {
      "{\"exp\":\"1700000060\"}", "{\"exp\":true}",      "{\"exp\":null}",
      "{\"exp\":[1700000060]}",   "{\"sub\":7,\"exp\":1700000060}",
      "{\"exp\":1700000060,\"nbf\":\"0\"}", "{\"exp\":1700000060,\"iat\":{}}",
      "{\"exp\":1700000060,\"iss\":1}", "{\"exp\":1700000060,\"aud\":[\"a\",1]}", "{\"exp\":1700000060,\"aud\":2}",
      "{}", /* no exp */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *why = NULL;
    const char *t = make(SIG_HS, HDR[SIG_HS], bad[i]);
    assert_int_equal(jwt_verify(v, t, strlen(t), NOW, NULL, &why), JWT_ECLAIMS);
    assert_non_null(strstr(why, "invalid claims"));
  }
  /* Payloads that are not JSON objects, signed correctly. */
  static const char *const notobj[] = {"[1]", "\"x\"", "{\"exp\":1", "{\"a\":1,\"a\":2}", "{\"exp\":17}x", " "};
  for (size_t i = 0; i < sizeof notobj / sizeof *notobj; i++)
    assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], notobj[i])), JWT_EMALFORMED);
  jwt_verifier_free(v);

  v = verifier(JWT_ALG_HS256, (opts){.leeway = -1, .no_exp = 1});
  jwt_claims c;
  const char *t = make(SIG_HS, HDR[SIG_HS], "{\"rooms\":\"lobby\",\"bad\":[\"a\",null],\"n\":[]}");
  assert_int_equal(jwt_verify(v, t, strlen(t), NOW, &c, NULL), 0);
  int64_t exp = 0;
  assert_int_equal(jwt_claims_exp(&c, &exp), WSIO_ENOTFOUND);
  assert_null(jwt_claims_sub(&c));
  const char *out[1] = {0};
  assert_int_equal(jwt_claims_strings(&c, "rooms", out, 1), 1);
  assert_string_equal(out[0], "lobby");
  assert_int_equal(jwt_claims_strings(&c, "bad", out, 1), WSIO_EINVAL);
  assert_int_equal(jwt_claims_strings(&c, "n", out, 1), 0);
  assert_int_equal(jwt_claims_strings(&c, "absent", out, 1), WSIO_ENOTFOUND);
  jwt_claims_free(&c);
  t = make(SIG_HS, HDR[SIG_HS], "{\"rooms\":[\"a\",\"b\",\"c\"]}");
  assert_int_equal(jwt_verify(v, t, strlen(t), NOW, &c, NULL), 0);
  out[0] = NULL;
  assert_int_equal(jwt_claims_strings(&c, "rooms", out, 1), 3); /* count beyond cap, only cap stored */
  assert_string_equal(out[0], "a");
  assert_int_equal(jwt_claims_strings(&c, "rooms", NULL, 0), 3);
  jwt_claims_free(&c);
  jwt_verifier_free(v);
}

/* ---- signatures and algorithms ---------------------------------------------------------------------------- */

/* Decodes part `part` of t, flips one bit, re-encodes it into out. */
static void flip(const char *t, int part, size_t bit, char *out) {
  const char *s = t;
  for (int i = 0; i < part; i++) s = strchr(s, '.') + 1;
  const char *e = strchr(s, '.');
  size_t n = e ? (size_t)(e - s) : strlen(s);
  unsigned char raw[600];
  size_t m = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    acc = acc << 6 | (uint32_t)(strchr(abc, s[i]) - abc);
    if ((bits += 6) >= 8) raw[m++] = (unsigned char)(acc >> (bits -= 8));
  }
  raw[bit / 8 % m] ^= (unsigned char)(1u << bit % 8);
  size_t pre = (size_t)(s - t);
  memcpy(out, t, pre);
  size_t k = b64url(raw, m, out + pre);
  strcpy(out + pre + k, s + n);
}

static void test_bit_flips(void **state) {
  (void)state;
  static const int how[] = {SIG_HS, SIG_RS, SIG_ES}, key[] = {JWT_ALG_HS256, JWT_ALG_RS256, JWT_ALG_ES256};
  char orig[2048], bad[2048];
  for (int i = 0; i < 3; i++) {
    jwt_verifier *v = verifier(key[i], DEFAULTS);
    strcpy(orig, make(how[i], HDR[how[i]], claims(NOW + 60, "")));
    assert_int_equal(check(v, orig), 0);
    for (int part = 0; part < 3; part++) {
      const char *s = orig;
      for (int p = 0; p < part; p++) s = strchr(s, '.') + 1;
      const char *e = strchr(s, '.');
      size_t bytes = (e ? (size_t)(e - s) : strlen(s)) * 3 / 4;
      for (size_t bit = 0; bit < bytes * 8; bit++) {
        flip(orig, part, bit, bad);
        int rc = check(v, bad);
        /* A changed header may stop parsing or name another alg; anything else must fail the signature. */
        if (part == 0 && (rc == JWT_EMALFORMED || rc == JWT_EALG)) continue;
        if (rc != JWT_ESIG) fail_msg("alg %d part %d bit %zu: %d", key[i], part, bit, rc);
      }
    }
    jwt_verifier_free(v);
  }
}

static void test_wrong_algorithm(void **state) {
  (void)state;
  jwt_verifier *hs = verifier(JWT_ALG_HS256, DEFAULTS), *rs = verifier(JWT_ALG_RS256, DEFAULTS);
  jwt_verifier *es = verifier(JWT_ALG_ES256, DEFAULTS);
  const char *why = NULL;
  const char *t = make(SIG_RS, HDR[SIG_RS], claims(NOW + 60, ""));
  assert_int_equal(jwt_verify(hs, t, strlen(t), NOW, NULL, &why), JWT_EALG);
  assert_string_equal(why, "algorithm not allowed");
  assert_int_equal(check(es, t), JWT_EALG);
  assert_int_equal(check(rs, make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, ""))), JWT_EALG);
  assert_int_equal(check(rs, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ""))), JWT_EALG);
  /* Header alg names other algorithms, or case variants, with a signature made some other way. */
  static const char *const algs[] = {"HS384", "HS512", "RS512", "PS256", "ES384", "EdDSA", "hs256", "Rs256", ""};
  for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
    char h[64];
    snprintf(h, sizeof h, "{\"alg\":\"%s\"}", algs[i]);
    assert_int_equal(check(hs, make(SIG_HS, h, claims(NOW + 60, ""))), JWT_EALG);
    assert_int_equal(check(rs, make(SIG_RS, h, claims(NOW + 60, ""))), JWT_EALG);
  }
  jwt_verifier_free(hs);
  jwt_verifier_free(rs);
  jwt_verifier_free(es);

  /* Both keys configured, but only RS256 allowed: a correctly MACed HS256 token is refused. */
  jwt_config cfg;
  jwt_config_init(&cfg);
  cfg.secret = SECRET;
  cfg.secret_len = strlen(SECRET);
  cfg.public_key_pem = rsa_pem;
  cfg.algorithms = JWT_ALG_RS256;
  jwt_verifier *v = jwt_verifier_new(&cfg, NULL, 0);
  assert_non_null(v);
  assert_int_equal(check(v, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ""))), JWT_EALG);
  assert_int_equal(check(v, make(SIG_RS, HDR[SIG_RS], claims(NOW + 60, ""))), 0);
  jwt_verifier_free(v);
}

static void test_alg_none(void **state) {
  (void)state;
  char unsigned_tok[256], h[64];
  jwt_verifier *vs[] = {verifier(JWT_ALG_HS256, DEFAULTS), verifier(JWT_ALG_RS256, DEFAULTS),
                        verifier(JWT_ALG_ES256, DEFAULTS)};
  static const char *const names[] = {"none", "None", "NONE", "nOnE"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(h, sizeof h, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", names[i]);
    /* No signature at all... */
    size_t n = b64url((const unsigned char *)h, strlen(h), unsigned_tok);
    unsigned_tok[n++] = '.';
    const char *body = "{\"sub\":\"root\",\"exp\":1700000060}";
    n += b64url((const unsigned char *)body, strlen(body), unsigned_tok + n);
    strcpy(unsigned_tok + n, ".");
    for (int k = 0; k < 3; k++) {
      assert_int_equal(check(vs[k], unsigned_tok), JWT_EALG);
      /* ...and with signatures a real key made over the same input. */
      assert_int_equal(check(vs[k], make(SIG_HS, h, "{\"sub\":\"root\",\"exp\":1700000060}")), JWT_EALG);
      assert_int_equal(check(vs[k], make(SIG_RS, h, "{\"sub\":\"root\",\"exp\":1700000060}")), JWT_EALG);
    }
  }
  for (int k = 0; k < 3; k++) jwt_verifier_free(vs[k]);
}

static void test_algorithm_confusion(void **state) {
  (void)state;
  /* The classic attack: HS256 MACed with the server's RSA public key PEM as the secret. */
  jwt_verifier *rs = verifier(JWT_ALG_RS256, DEFAULTS);
  const char *why = NULL;
  const char *t = make(SIG_HS_KEY, HDR[SIG_HS_KEY], claims(NOW + 60, ""));
  assert_int_equal(jwt_verify(rs, t, strlen(t), NOW, NULL, &why), JWT_EALG);
  assert_string_equal(why, "algorithm not allowed");
  jwt_verifier_free(rs);
  /* With HS256 allowed too (a secret and an RSA key), the HMAC key is the secret, never the public key. */
  jwt_verifier *both = verifier(JWT_ALG_HS256 | JWT_ALG_RS256, DEFAULTS);
  assert_int_equal(jwt_verifier_algorithms(both), JWT_ALG_HS256 | JWT_ALG_RS256);
  t = make(SIG_HS_KEY, HDR[SIG_HS_KEY], claims(NOW + 60, ""));
  assert_int_equal(check(both, t), JWT_ESIG);
  assert_int_equal(check(both, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, ""))), 0);
  assert_int_equal(check(both, make(SIG_RS, HDR[SIG_RS], claims(NOW + 60, ""))), 0);
  jwt_verifier_free(both);
  /* Nor can configuration make a public key an HMAC key. */
  jwt_config cfg;
  jwt_config_init(&cfg);
  cfg.public_key_pem = rsa_pem;
  cfg.algorithms = JWT_ALG_HS256 | JWT_ALG_RS256;
  char err[200];
  assert_null(jwt_verifier_new(&cfg, err, sizeof err));
  assert_string_equal(err, "HS256 allowed but no secret configured");
  cfg.public_key_pem = ec_pem;
  cfg.algorithms = JWT_ALG_RS256;
  assert_null(jwt_verifier_new(&cfg, err, sizeof err));
  assert_string_equal(err, "RS256 allowed but no RSA public key configured");
}

static void test_es256_signature_format(void **state) {
  (void)state;
  jwt_verifier *es = verifier(JWT_ALG_ES256, DEFAULTS);
  /* DER is what OpenSSL produces, but JOSE requires raw r||s: a DER signature is refused. */
  const char *t = make(SIG_ES_DER, HDR[SIG_ES_DER], claims(NOW + 60, ""));
  assert_int_equal(check(es, t), JWT_ESIG);
  /* r = s = 0 must never verify. */
  char zero[512];
  strcpy(zero, make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, "")));
  unsigned char z[64] = {0};
  b64url(z, sizeof z, strrchr(zero, '.') + 1);
  assert_int_equal(check(es, zero), JWT_ESIG);
  /* A 63- or 65-byte signature is refused. */
  unsigned char s65[65];
  memset(s65, 1, sizeof s65);
  b64url(s65, 65, strrchr(zero, '.') + 1);
  assert_int_equal(check(es, zero), JWT_ESIG);
  b64url(s65, 63, strrchr(zero, '.') + 1);
  assert_int_equal(check(es, zero), JWT_ESIG);
  jwt_verifier_free(es);
}

/* ---- shape ------------------------------------------------------------------------------------------------ */

static void test_malformed(void **state) {
  (void)state;
  jwt_verifier *v = verifier(JWT_ALG_HS256, DEFAULTS);
  char good[512], t[600];
  strcpy(good, make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, "")));
  assert_int_equal(check(v, good), 0);
  char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
  const char *why = NULL;
  /* 2 parts, 4 parts, empty parts. */
  snprintf(t, sizeof t, "%.*s", (int)(d2 - good), good);
  assert_int_equal(jwt_verify(v, t, strlen(t), NOW, NULL, &why), JWT_EMALFORMED);
  assert_non_null(strstr(why, "malformed"));
  snprintf(t, sizeof t, "%s.", good);
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  snprintf(t, sizeof t, "%s.%s", good, d2 + 1);
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  static const char *const shapes[] = {"", ".", "..", "...", "a.b.c", "e30..", ".e30.", "e30.e30"};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) assert_int_equal(check(v, shapes[i]), JWT_EMALFORMED);
  /* Outside the base64url alphabet, padding, or whitespace in each part. */
  static const char bad[] = {'+', '/', '=', ' ', '\n', '\0', '*', (char)0xc3};
  char *parts[] = {good, d1 + 1, d2 + 1};
  for (size_t b = 0; b < sizeof bad; b++)
    for (int p = 0; p < 3; p++) {
      size_t len = strlen(good);
      memcpy(t, good, len + 1);
      t[parts[p] - good + 2] = bad[b];
      assert_int_equal(jwt_verify(v, t, len, NOW, NULL, NULL), JWT_EMALFORMED);
    }
  /* One base64 character too many (4n + 1 characters cannot encode any byte string), even an 'A' that adds
   * no bits: the header here is 36 characters. */
  assert_int_equal(d1 - good, 36);
  snprintf(t, sizeof t, "%.*sA%s", (int)(d1 - good), good, d1);
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  snprintf(t, sizeof t, "%s=", good);
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  snprintf(t, sizeof t, "%s==", good);
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  snprintf(t, sizeof t, "%.*s=%s", (int)(d1 - good), good, d1); /* padded header */
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  /* A signature whose last character carries nonzero unused bits ('Q' vs 'R' both decode alike). */
  size_t len = strlen(good);
  memcpy(t, good, len + 1);
  assert_int_equal(len - (size_t)(d2 + 1 - good), 43); /* 32 bytes: the last character has 2 unused bits */
  const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  t[len - 1] = abc[(strchr(abc, t[len - 1]) - abc) ^ 1];
  assert_int_equal(check(v, t), JWT_EMALFORMED);
  /* Headers that are not a JSON object with a string alg, or carry what is not understood. */
  static const char *const hdrs[] = {
      "not json", "[\"HS256\"]", "{}", "{\"alg\":256}", "{\"alg\":null}", "{\"alg\":\"HS256\"",
      "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", "{\"alg\":\"HS256\",\"typ\":1}",
      "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{\"alg\":\"HS\\u0000256\"}"};
  for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++)
    assert_int_equal(check(v, make(SIG_HS, hdrs[i], claims(NOW + 60, ""))), JWT_EMALFORMED);
  /* Optional typ in any case, and unknown members, are fine. */
  assert_int_equal(check(v, make(SIG_HS, "{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"k1\"}", claims(NOW + 1, ""))),
                   0);
  assert_int_equal(check(v, make(SIG_HS, "{\"alg\":\"HS256\"}", claims(NOW + 1, ""))), 0);
  jwt_verifier_free(v);
}

/* A valid HS256 token with a "pad" claim of fill bytes. */
static const char *make_padded(size_t fill) {
  static char pad[JWT_MAX_TOKEN], extra[JWT_MAX_TOKEN + 16];
  memset(pad, 'x', fill);
  pad[fill] = 0;
  snprintf(extra, sizeof extra, ",\"pad\":\"%s\"", pad);
  return make(SIG_HS, HDR[SIG_HS], claims(NOW + 60, extra));
}

static void test_size_limit(void **state) {
  (void)state;
  jwt_verifier *v = verifier(JWT_ALG_HS256, DEFAULTS);
  /* Grow a claim until the token is as close to JWT_MAX_TOKEN as base64 allows: accepted; longer: refused. */
  size_t fill = 0, n;
  while ((n = strlen(make_padded(fill))) < JWT_MAX_TOKEN)
    fill += n + 8 < JWT_MAX_TOKEN ? (JWT_MAX_TOKEN - n) * 3 / 4 - 4 : 1;
  while (n > JWT_MAX_TOKEN) n = strlen(make_padded(--fill));
  assert_true(n <= JWT_MAX_TOKEN && n >= JWT_MAX_TOKEN - 2);
  assert_int_equal(check(v, tok), 0);
  static char big[JWT_MAX_TOKEN * 4];
  memset(big, 'A', sizeof big);
  const char *why = NULL;
  assert_int_equal(jwt_verify(v, big, JWT_MAX_TOKEN + 1, NOW, NULL, &why), JWT_ETOOLONG);
  assert_string_equal(why, "token too long");
  assert_int_equal(jwt_verify(v, big, sizeof big, NOW, NULL, NULL), JWT_ETOOLONG);
  assert_int_equal(jwt_verify(v, big, SIZE_MAX, NOW, NULL, NULL), JWT_ETOOLONG);
  /* Exactly at the limit but all base64 with no dots: malformed, not too long. */
  assert_int_equal(jwt_verify(v, big, JWT_MAX_TOKEN, NOW, NULL, NULL), JWT_EMALFORMED);
  jwt_verifier_free(v);
}

/* ---- audience and issuer ---------------------------------------------------------------------------------- */

static void test_audience_issuer(void **state) {
  (void)state;
  jwt_verifier *v = verifier(JWT_ALG_ES256, (opts){.leeway = -1, .aud = "chat", .iss = "https://id.example"});
  const char *why = NULL;
  const char *iss = ",\"iss\":\"https://id.example\"";
  char extra[200];
  snprintf(extra, sizeof extra, "%s,\"aud\":\"chat\"", iss);
  assert_int_equal(check(v, make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, extra))), 0);
  snprintf(extra, sizeof extra, "%s,\"aud\":[\"web\",\"chat\"]", iss);
  assert_int_equal(check(v, make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, extra))), 0);
  static const char *const wrong_aud[] = {"", ",\"aud\":\"chat2\"", ",\"aud\":[]", ",\"aud\":[\"web\"]",
                                          ",\"aud\":\"Chat\""};
  for (size_t i = 0; i < sizeof wrong_aud / sizeof *wrong_aud; i++) {
    snprintf(extra, sizeof extra, "%s%s", iss, wrong_aud[i]);
    const char *t = make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, extra));
    assert_int_equal(jwt_verify(v, t, strlen(t), NOW, NULL, &why), JWT_EAUD);
    assert_string_equal(why, "wrong audience");
  }
  static const char *const wrong_iss[] = {"", ",\"iss\":\"https://id.example/\"", ",\"iss\":\"\""};
  for (size_t i = 0; i < sizeof wrong_iss / sizeof *wrong_iss; i++) {
    snprintf(extra, sizeof extra, "%s,\"aud\":\"chat\"", wrong_iss[i]);
    const char *t = make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, extra));
    assert_int_equal(jwt_verify(v, t, strlen(t), NOW, NULL, &why), JWT_EISS);
    assert_string_equal(why, "wrong issuer");
  }
  jwt_verifier_free(v);
  /* With no audience configured, a token that names one is not for this server (RFC 7519 4.1.3). */
  v = verifier(JWT_ALG_ES256, DEFAULTS);
  assert_int_equal(check(v, make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, ",\"aud\":\"chat\""))), JWT_EAUD);
  assert_int_equal(check(v, make(SIG_ES, HDR[SIG_ES], claims(NOW + 60, ",\"iss\":\"anyone\""))), 0);
  jwt_verifier_free(v);
}

/* ---- configuration ---------------------------------------------------------------------------------------- */

static void expect_config_error(const jwt_config *cfg, const char *needle) {
  char err[256] = "unset";
  jwt_verifier *v = jwt_verifier_new(cfg, err, sizeof err);
  if (v) fail_msg("expected failure containing '%s'", needle);
  if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_config_errors(void **state) {
  (void)state;
  jwt_config cfg;
  jwt_config_init(&cfg);
  assert_int_equal(cfg.leeway_s, 30);
  expect_config_error(&cfg, "no JWT key");
  cfg.secret = "short";
  cfg.secret_len = 5;
  expect_config_error(&cfg, "at least 32");
  jwt_config_init(&cfg);
  cfg.public_key_file = "/nonexistent/key.pem";
  expect_config_error(&cfg, "cannot open /nonexistent/key.pem");
  cfg.public_key_file = NULL;
  cfg.public_key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  expect_config_error(&cfg, "no PEM public key");
  cfg.public_key_file = "/dev/null";
  expect_config_error(&cfg, "both");
  jwt_config_init(&cfg);
  cfg.public_key_pem = rsa_pem;
  cfg.leeway_s = -1;
  expect_config_error(&cfg, "leeway");
  cfg.leeway_s = JWT_MAX_LEEWAY + 1;
  expect_config_error(&cfg, "leeway");
  cfg.leeway_s = 0;
  cfg.algorithms = 8;
  expect_config_error(&cfg, "unknown algorithm");
  cfg.algorithms = JWT_ALG_ES256;
  expect_config_error(&cfg, "ES256 allowed but no P-256 public key");
  cfg.algorithms = 0;
  cfg.audience = "";
  expect_config_error(&cfg, "empty audience");
  /* Weak or unsupported keys. */
  EVP_PKEY *small = EVP_RSA_gen(1024), *p384 = EVP_EC_gen("P-384");
  char *small_pem = pubkey_pem(small), *p384_pem = pubkey_pem(p384);
  jwt_config_init(&cfg);
  cfg.public_key_pem = small_pem;
  expect_config_error(&cfg, "2048 or more");
  cfg.public_key_pem = p384_pem;
  expect_config_error(&cfg, "P-256");
  EVP_PKEY_free(small);
  EVP_PKEY_free(p384);
  free(small_pem);
  free(p384_pem);
  assert_null(jwt_verifier_new(NULL, NULL, 0));
  jwt_verifier_free(NULL);
  assert_int_equal(jwt_verify(NULL, "a.b.c", 5, NOW, NULL, NULL), WSIO_EINVAL);
  assert_string_equal(jwt_strerror(JWT_ESIG), "bad signature");
  assert_string_equal(jwt_strerror(JWT_ENOTYET), "not yet valid");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_each_algorithm),
      cmocka_unit_test(test_key_from_file_and_both_keys),
      cmocka_unit_test(test_exp_nbf_iat_with_leeway),
      cmocka_unit_test(test_claim_types),
      cmocka_unit_test(test_bit_flips),
      cmocka_unit_test(test_wrong_algorithm),
      cmocka_unit_test(test_alg_none),
      cmocka_unit_test(test_algorithm_confusion),
      cmocka_unit_test(test_es256_signature_format),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_audience_issuer),
      cmocka_unit_test(test_config_errors),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
