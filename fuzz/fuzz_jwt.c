/* JWT verification: arbitrary tokens through every kind of verifier, and tokens the harness signs itself so
 * that header and payload parsing past the signature is reached.
 *
 * Input: byte 0 picks the mode, byte 1 the clock; the rest is
 *   mode even: a token, verified by each verifier. With random keys made at start-up nothing can carry a valid
 *     RS256 or ES256 signature, so those verifiers must refuse it.
 *   mode odd: header JSON, a 0xff byte, payload JSON; encoded and signed with HS256, ES256 or RS256 (by
 *     (mode >> 1) & 3), then verified by the verifier of that key (or, for HS256 and mode & 8, by one that also
 *     holds an EC key). A single-key verifier must never answer "bad signature". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "server/jwt.h"
#include "wsio.h"

static const char SECRET[] = "fuzz-secret-0123456789abcdefghijklmnop";
static EVP_PKEY *rsa, *ec;
static jwt_verifier *v_hs, *v_rs, *v_es, *v_mixed;

static char *pem_of(EVP_PKEY *k) {
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, k);
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *s = malloc((size_t)n + 1);
  memcpy(s, p, (size_t)n);
  s[n] = 0;
  BIO_free(b);
  return s;
}

static jwt_verifier *make_verifier(int secret, const char *pem, const char *aud, const char *iss, int leeway) {
  jwt_config cfg;
  jwt_config_init(&cfg);
  if (secret) {
    cfg.secret = SECRET;
    cfg.secret_len = sizeof SECRET - 1;
  }
  cfg.public_key_pem = pem;
  cfg.audience = aud;
  cfg.issuer = iss;
  cfg.leeway_s = leeway;
  cfg.allow_missing_exp = aud != NULL;
  jwt_verifier *v = jwt_verifier_new(&cfg, NULL, 0);
  if (!v) abort();
  return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  rsa = EVP_RSA_gen(2048);
  ec = EVP_EC_gen("P-256");
  char *rsa_pem = pem_of(rsa), *ec_pem = pem_of(ec);
  v_hs = make_verifier(1, NULL, NULL, NULL, 30);
  v_rs = make_verifier(0, rsa_pem, NULL, NULL, 30);
  v_es = make_verifier(0, ec_pem, "chat", NULL, 0);
  v_mixed = make_verifier(1, ec_pem, "chat", "issuer", 5);
  free(rsa_pem);
  free(ec_pem);
  return 0;
}

static size_t b64url(const uint8_t *in, size_t n, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
    out[o++] = abc[v >> 18 & 63];
    out[o++] = abc[v >> 12 & 63];
    if (i + 1 < n) out[o++] = abc[v >> 6 & 63];
    if (i + 2 < n) out[o++] = abc[v & 63];
  }
  return o;
}

/* Signs tok[0..n) and appends ".signature"; returns the new length. */
static size_t sign_into(int which, char *tok, size_t n) {
  unsigned char sig[512];
  size_t slen = 0;
  if (which == JWT_ALG_HS256) {
    unsigned int l = 0;
    HMAC(EVP_sha256(), SECRET, sizeof SECRET - 1, (const unsigned char *)tok, n, sig, &l);
    slen = l;
  } else {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    slen = sizeof sig;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, which == JWT_ALG_RS256 ? rsa : ec) != 1 ||
        EVP_DigestSign(md, sig, &slen, (const unsigned char *)tok, n) != 1)
      abort();
    EVP_MD_CTX_free(md);
    if (which == JWT_ALG_ES256) {
      const unsigned char *p = sig;
      ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
      BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
      ECDSA_SIG_free(es);
      slen = 64;
    }
  }
  tok[n++] = '.';
  return n + b64url(sig, slen, tok + n);
}

/* Uses every accessor on an accepted token; ASan and UBSan watch. */
static void touch(jwt_claims *c) {
  const char *list[4];
  int64_t exp;
  if (!json_is_object(c->payload)) abort();
  (void)jwt_claims_sub(c);
  (void)jwt_claims_exp(c, &exp);
  int n = jwt_claims_strings(c, "rooms", list, 4);
  for (int i = 0; i < n && i < 4; i++) (void)strlen(list[i]);
  jwt_claims_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int64_t clocks[] = {1700000000, 0, -1, INT64_MAX, INT64_MIN, 4102444800};
  static const int algs[] = {JWT_ALG_HS256, JWT_ALG_ES256, JWT_ALG_RS256, JWT_ALG_HS256};
  if (size < 2) return 0;
  int mode = data[0];
  int64_t now = clocks[data[1] % (sizeof clocks / sizeof *clocks)];
  data += 2;
  size -= 2;
  jwt_claims c;
  const char *why;
  if (!(mode & 1)) {
    jwt_verifier *all[] = {v_hs, v_rs, v_es, v_mixed};
    for (int i = 0; i < 4; i++) {
      int rc = jwt_verify(all[i], (const char *)data, size, now, &c, &why);
      if (rc == 0 && (all[i] == v_rs || all[i] == v_es || c.alg != JWT_ALG_HS256)) abort();
      if (rc == 0) touch(&c);
      else if (c.payload || !why) abort();
    }
    return 0;
  }
  const uint8_t *sep = memchr(data, 0xff, size);
  if (!sep) return 0;
  size_t hlen = (size_t)(sep - data), plen = size - hlen - 1;
  static char tok[4 * JWT_MAX_TOKEN];
  if (hlen + plen > JWT_MAX_TOKEN) return 0;
  size_t n = b64url(data, hlen, tok);
  tok[n++] = '.';
  n += b64url(sep + 1, plen, tok + n);
  int alg = algs[(mode >> 1) & 3];
  n = sign_into(alg, tok, n);
  jwt_verifier *v = alg == JWT_ALG_HS256 ? ((mode & 8) ? v_mixed : v_hs) : alg == JWT_ALG_RS256 ? v_rs : v_es;
  int rc = jwt_verify(v, tok, n, now, &c, &why);
  /* A single-key verifier checks the signature only for its own alg, which the harness signed with. */
  if (rc == JWT_ESIG && v != v_mixed) abort();
  if (rc == 0) {
    if (c.alg != alg) abort();
    touch(&c);
    /* Any change to an accepted token's signing input must be refused. */
    tok[0] ^= 1;
    if (jwt_verify(v, tok, n, now, NULL, NULL) == 0) abort();
  }
  return 0;
}
