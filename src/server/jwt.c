/* JWT verification on OpenSSL 3 and jansson directly, not on a JWT library.
 *
 * Why not Debian 12's libjwt (1.10.2): its jwt_decode() takes the algorithm from the token's own header and
 * then uses whatever key it was given, so a server configured with an RSA public key accepts an HS256 token
 * MACed with that public key's PEM text unless every caller re-checks the algorithm afterwards (algorithm
 * confusion); it has no leeway, audience or issuer checks in that version, copies the token several times,
 * and adds a dependency. What JWT verification needs from a library is small and all in OpenSSL: HMAC with a
 * constant-time compare, EVP_DigestVerify for RSA PKCS#1 v1.5, and ECDSA once JOSE's fixed-size r||s is
 * turned into the DER that OpenSSL verifies. Keeping it here lets the key, not the token, decide the
 * algorithm: each algorithm is bound to one configured key at setup, and a public key is never an HMAC key. */
#include "server/jwt.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "wsio.h"

struct jwt_verifier {
  int algs;
  unsigned char *secret;
  size_t secret_len;
  EVP_PKEY *pkey;
  int pkey_alg;  /* JWT_ALG_RS256 or JWT_ALG_ES256 for pkey */
  char *audience, *issuer;
  int64_t leeway;
  int allow_missing_exp;
};

/* NumericDates and now are clamped to this, so date +/- leeway never overflows. */
#define JWT_DATE_MAX ((int64_t)1 << 62)
#define ES256_HALF 32

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t cap, const char *fmt, ...) {
  if (!err || cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

void jwt_config_init(jwt_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->leeway_s = JWT_DEFAULT_LEEWAY;
}

/* Loads a SubjectPublicKeyInfo PEM and names the one algorithm it implies. Returns 0 or -1 (err set). */
static int load_key(jwt_verifier *v, const jwt_config *cfg, char *err, size_t errcap) {
  const char *what = cfg->public_key_file ? cfg->public_key_file : "public_key_pem";
  BIO *bio = cfg->public_key_file ? BIO_new_file(cfg->public_key_file, "r")
                                  : BIO_new_mem_buf(cfg->public_key_pem, -1);
  if (!bio) {
    set_err(err, errcap, "cannot open %s", what);
    return -1;
  }
  v->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  ERR_clear_error();
  if (!v->pkey) {
    set_err(err, errcap, "%s: no PEM public key (\"BEGIN PUBLIC KEY\") found", what);
    return -1;
  }
  if (EVP_PKEY_is_a(v->pkey, "RSA")) {
    if (EVP_PKEY_get_bits(v->pkey) < 2048) {
      set_err(err, errcap, "%s: RSA key of %d bits; RS256 needs 2048 or more", what, EVP_PKEY_get_bits(v->pkey));
      return -1;
    }
    v->pkey_alg = JWT_ALG_RS256;
    return 0;
  }
  if (EVP_PKEY_is_a(v->pkey, "EC")) {
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_get_group_name(v->pkey, group, sizeof group, &glen) || strcmp(group, "prime256v1") != 0) {
      ERR_clear_error();
      set_err(err, errcap, "%s: EC key not on P-256; ES256 needs P-256", what);
      return -1;
    }
    v->pkey_alg = JWT_ALG_ES256;
    return 0;
  }
  set_err(err, errcap, "%s: unsupported key type (RSA or EC P-256 expected)", what);
  return -1;
}

static char *dup_opt(const char *s) {
  return s ? strdup(s) : NULL;
}

jwt_verifier *jwt_verifier_new(const jwt_config *cfg, char *err, size_t errcap) {
  set_err(err, errcap, "%s", "");
  if (!cfg) {
    set_err(err, errcap, "no configuration");
    return NULL;
  }
  if (cfg->leeway_s < 0 || cfg->leeway_s > JWT_MAX_LEEWAY) {
    set_err(err, errcap, "leeway %d s out of range 0..%d", cfg->leeway_s, JWT_MAX_LEEWAY);
    return NULL;
  }
  if (cfg->secret && (cfg->secret_len < JWT_MIN_SECRET || cfg->secret_len > INT_MAX)) {
    set_err(err, errcap, "HS256 secret of %zu bytes; at least %d needed", cfg->secret_len, JWT_MIN_SECRET);
    return NULL;
  }
  if (cfg->public_key_file && cfg->public_key_pem) {
    set_err(err, errcap, "both a public key file and an in-memory public key given");
    return NULL;
  }
  if ((cfg->audience && !*cfg->audience) || (cfg->issuer && !*cfg->issuer)) {
    set_err(err, errcap, "empty audience or issuer");
    return NULL;
  }
  if (cfg->algorithms & ~(JWT_ALG_HS256 | JWT_ALG_RS256 | JWT_ALG_ES256)) {
    set_err(err, errcap, "unknown algorithm bits 0x%x", cfg->algorithms);
    return NULL;
  }
  jwt_verifier *v = calloc(1, sizeof *v);
  if (!v) goto nomem;
  if ((cfg->public_key_file || cfg->public_key_pem) && load_key(v, cfg, err, errcap) < 0) goto fail;
  if (cfg->secret) {
    if (!(v->secret = malloc(cfg->secret_len))) goto nomem;
    memcpy(v->secret, cfg->secret, cfg->secret_len);
    v->secret_len = cfg->secret_len;
  }
  int implied = (v->secret ? JWT_ALG_HS256 : 0) | v->pkey_alg;
  if (!implied) {
    set_err(err, errcap, "no JWT key configured (an HS256 secret or a public key)");
    goto fail;
  }
  v->algs = cfg->algorithms ? cfg->algorithms : implied;
  int missing = v->algs & ~implied;
  if (missing) {
    set_err(err, errcap, "%s allowed but no %s configured",
            (missing & JWT_ALG_HS256) ? "HS256" : (missing & JWT_ALG_RS256) ? "RS256" : "ES256",
            (missing & JWT_ALG_HS256)   ? "secret"
            : (missing & JWT_ALG_RS256) ? "RSA public key"
                                        : "P-256 public key");
    goto fail;
  }
  v->audience = dup_opt(cfg->audience);
  v->issuer = dup_opt(cfg->issuer);
  if ((cfg->audience && !v->audience) || (cfg->issuer && !v->issuer)) goto nomem;
  v->leeway = cfg->leeway_s;
  v->allow_missing_exp = cfg->allow_missing_exp;
  return v;
nomem:
  set_err(err, errcap, "out of memory");
fail:
  jwt_verifier_free(v);
  return NULL;
}

void jwt_verifier_free(jwt_verifier *v) {
  if (!v) return;
  if (v->secret) OPENSSL_cleanse(v->secret, v->secret_len);
  free(v->secret);
  EVP_PKEY_free(v->pkey);
  free(v->audience);
  free(v->issuer);
  free(v);
}

int jwt_verifier_algorithms(const jwt_verifier *v) {
  return v ? v->algs : 0;
}

const char *jwt_strerror(int err) {
  switch (err) {
  case 0: return "ok";
  case JWT_EMALFORMED: return "malformed";
  case JWT_ETOOLONG: return "token too long";
  case JWT_EALG: return "algorithm not allowed";
  case JWT_ESIG: return "bad signature";
  case JWT_ECLAIMS: return "invalid claims";
  case JWT_EEXPIRED: return "expired";
  case JWT_ENOTYET: return "not yet valid";
  case JWT_EAUD: return "wrong audience";
  case JWT_EISS: return "wrong issuer";
  default: return wsio_strerror(err);
  }
}

/* ---- base64url (RFC 7515 2: no padding; RFC 4648 5 alphabet) -------------------------------------------- */

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/* Decodes strictly: the alphabet only, no '=', and the unused low bits of the last character zero, so each
 * byte string has exactly one accepted encoding. out holds at least len * 3 / 4 bytes. Returns the decoded
 * length or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char *out) {
  if (len % 4 == 1) return -1;
  uint32_t acc = 0;
  int bits = 0;
  long n = 0;
  for (size_t i = 0; i < len; i++) {
    int d = b64url_value((unsigned char)in[i]);
    if (d < 0) return -1;
    acc = (acc << 6) | (uint32_t)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return acc == 0 ? n : -1;
}

/* ---- signatures ------------------------------------------------------------------------------------------ */

/* Returns 1 valid, 0 invalid, WSIO_ENOMEM. */
static int verify_pkey(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *msg, size_t mlen) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return WSIO_ENOMEM;
  int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
           EVP_DigestVerify(md, sig, siglen, (const unsigned char *)msg, mlen) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

/* JOSE ES256 signatures are r||s, 32 bytes each (RFC 7518 3.4); OpenSSL verifies DER. Anything but exactly 64
 * bytes, a DER signature included, is refused. Returns 1, 0 or WSIO_ENOMEM. */
static int verify_es256(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *msg, size_t mlen) {
  if (siglen != 2 * ES256_HALF) return 0;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, ES256_HALF, NULL), *s = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
  if (!es || !r || !s) {
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return WSIO_ENOMEM;
  }
  ECDSA_SIG_set0(es, r, s);  /* es owns r and s now */
  unsigned char *der = NULL;
  int derlen = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (derlen <= 0) return WSIO_ENOMEM;
  int rc = verify_pkey(pkey, der, (size_t)derlen, msg, mlen);
  OPENSSL_free(der);
  return rc;
}

static int verify_sig(const jwt_verifier *v, int alg, const unsigned char *sig, size_t siglen, const char *msg,
                      size_t mlen) {
  switch (alg) {
  case JWT_ALG_HS256: {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), v->secret, (int)v->secret_len, (const unsigned char *)msg, mlen, mac, &maclen))
      return WSIO_ENOMEM;
    return siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
  }
  case JWT_ALG_RS256:
    if (siglen != (size_t)EVP_PKEY_get_size(v->pkey)) return 0;
    return verify_pkey(v->pkey, sig, siglen, msg, mlen);
  case JWT_ALG_ES256:
    return verify_es256(v->pkey, sig, siglen, msg, mlen);
  default:
    return 0;
  }
}

/* ---- header and claims ----------------------------------------------------------------------------------- */

static int alg_bit(const char *name) {
  if (strcmp(name, "HS256") == 0) return JWT_ALG_HS256;
  if (strcmp(name, "RS256") == 0) return JWT_ALG_RS256;
  if (strcmp(name, "ES256") == 0) return JWT_ALG_ES256;
  return 0;  /* "none" and everything else */
}

/* The header must be a JSON object with a string "alg", an optional "typ" of "JWT", and no "crit" (no
 * extension is understood, so RFC 7515 4.1.11 requires refusing any). Returns a JWT_ALG_* bit or a JWT_E* code. */
static int check_header(const unsigned char *h, size_t hlen, int allowed, const char **why) {
  json_t *hdr = json_loadb((const char *)h, hlen, JSON_REJECT_DUPLICATES, NULL);
  int rc;
  json_t *alg = json_object_get(hdr, "alg"), *typ = json_object_get(hdr, "typ");
  if (!json_is_object(hdr) || !json_is_string(alg)) {
    *why = "malformed header";
    rc = JWT_EMALFORMED;
  } else if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) {
    *why = "malformed header: typ is not JWT";
    rc = JWT_EMALFORMED;
  } else if (json_object_get(hdr, "crit")) {
    *why = "malformed header: unsupported crit";
    rc = JWT_EMALFORMED;
  } else if (!(rc = alg_bit(json_string_value(alg))) || !(rc & allowed)) {
    *why = jwt_strerror(JWT_EALG);
    rc = JWT_EALG;
  }
  json_decref(hdr);
  return rc;
}

/* Reads NumericDate claim `name` (RFC 7519 2: a JSON number, possibly fractional), clamped to
 * +/-JWT_DATE_MAX and rounded up (or down when `down`). Rounding up keeps the checks exact: for an integer
 * t, t < d holds exactly when t < ceil(d). Returns 1 present, 0 absent, -1 not a number. */
static int get_date(const json_t *payload, const char *name, int down, int64_t *out) {
  json_t *j = json_object_get(payload, name);
  if (!j) return 0;
  if (json_is_integer(j)) {
    json_int_t i = json_integer_value(j);
    *out = i > JWT_DATE_MAX ? JWT_DATE_MAX : i < -JWT_DATE_MAX ? -JWT_DATE_MAX : (int64_t)i;
    return 1;
  }
  if (!json_is_real(j)) return -1;
  double d = down ? floor(json_real_value(j)) : ceil(json_real_value(j));
  if (isnan(d)) return -1;
  *out = d >= (double)JWT_DATE_MAX ? JWT_DATE_MAX : d <= -(double)JWT_DATE_MAX ? -JWT_DATE_MAX : (int64_t)d;
  return 1;
}

static int is_string_list(const json_t *j) {
  if (json_is_string(j)) return 1;
  if (!json_is_array(j)) return 0;
  size_t i;
  json_t *item;
  json_array_foreach(j, i, item) if (!json_is_string(item)) return 0;
  return 1;
}

static int list_has(const json_t *j, const char *want) {
  if (json_is_string(j)) return strcmp(json_string_value(j), want) == 0;
  size_t i;
  json_t *item;
  json_array_foreach(j, i, item) if (strcmp(json_string_value(item), want) == 0) return 1;
  return 0;
}

/* Sets the reason and returns code, so each check is one line. */
static int fail(const char **why, const char *reason, int code) {
  *why = reason;
  return code;
}

static int check_claims(const jwt_verifier *v, const json_t *p, int64_t now, const char **why) {
  int64_t exp = 0, nbf = 0, iat = 0;
  int has_exp = get_date(p, "exp", 0, &exp), has_nbf = get_date(p, "nbf", 0, &nbf);
  int has_iat = get_date(p, "iat", 0, &iat);
  json_t *iss = json_object_get(p, "iss"), *sub = json_object_get(p, "sub"), *aud = json_object_get(p, "aud");
  if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
    return fail(why, "invalid claims: a date is not a number", JWT_ECLAIMS);
  if ((iss && !json_is_string(iss)) || (sub && !json_is_string(sub)) || (aud && !is_string_list(aud)))
    return fail(why, "invalid claims: iss, sub or aud of the wrong type", JWT_ECLAIMS);
  if (!has_exp && !v->allow_missing_exp) return fail(why, "invalid claims: no exp", JWT_ECLAIMS);
  now = now > JWT_DATE_MAX ? JWT_DATE_MAX : now < -JWT_DATE_MAX ? -JWT_DATE_MAX : now;
  if (has_exp && now - v->leeway >= exp) return fail(why, jwt_strerror(JWT_EEXPIRED), JWT_EEXPIRED);
  if (has_nbf && now + v->leeway < nbf) return fail(why, jwt_strerror(JWT_ENOTYET), JWT_ENOTYET);
  if (has_iat && now + v->leeway < iat) return fail(why, "not yet valid: issued in the future", JWT_ENOTYET);
  if (v->issuer && (!iss || strcmp(json_string_value(iss), v->issuer) != 0))
    return fail(why, jwt_strerror(JWT_EISS), JWT_EISS);
  /* RFC 7519 4.1.3: a token naming an audience is refused by a verifier that is not in it, or has none. */
  if (v->audience ? !aud || !list_has(aud, v->audience) : aud != NULL)
    return fail(why, jwt_strerror(JWT_EAUD), JWT_EAUD);
  return 0;
}

/* ---- verification ---------------------------------------------------------------------------------------- */

int jwt_verify(const jwt_verifier *v, const char *token, size_t len, int64_t now, jwt_claims *out,
               const char **why) {
  const char *reason = NULL;
  json_t *payload = NULL;
  int rc, alg = 0;
  if (out) {
    out->payload = NULL;
    out->alg = 0;
  }
  if (!why) why = &reason;
  if (!v || (!token && len)) return fail(why, jwt_strerror(WSIO_EINVAL), WSIO_EINVAL);
  if (len > JWT_MAX_TOKEN) return fail(why, jwt_strerror(JWT_ETOOLONG), JWT_ETOOLONG);
  const char *d1 = len ? memchr(token, '.', len) : NULL;
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
    return fail(why, "malformed: not three dot-separated parts", JWT_EMALFORMED);

  /* All three parts decode into one buffer: together they are at most 3/4 of the token. */
  unsigned char buf[JWT_MAX_TOKEN];
  size_t hlen_enc = (size_t)(d1 - token), plen_enc = (size_t)(d2 - d1 - 1);
  size_t slen_enc = len - (size_t)(d2 + 1 - token);
  long hlen = b64url_decode(token, hlen_enc, buf);
  long plen = hlen < 0 ? -1 : b64url_decode(d1 + 1, plen_enc, buf + hlen);
  long slen = plen < 0 ? -1 : b64url_decode(d2 + 1, slen_enc, buf + hlen + plen);
  if (hlen <= 0 || plen <= 0 || slen < 0) return fail(why, "malformed: bad base64url", JWT_EMALFORMED);
  const unsigned char *hdr = buf, *body = buf + hlen, *sig = buf + hlen + plen;

  if ((alg = check_header(hdr, (size_t)hlen, v->algs, why)) < 0) return alg;
  /* OpenSSL queues errors for every failed verification; the mark keeps the caller's queue as it was. */
  ERR_set_mark();
  rc = verify_sig(v, alg, sig, (size_t)slen, token, (size_t)(d2 - token));
  ERR_pop_to_mark();
  if (rc < 0) return fail(why, jwt_strerror(rc), rc);
  if (rc == 0) return fail(why, jwt_strerror(JWT_ESIG), JWT_ESIG);

  payload = json_loadb((const char *)body, (size_t)plen, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(payload)) {
    json_decref(payload);
    return fail(why, "malformed: payload is not a JSON object", JWT_EMALFORMED);
  }
  if ((rc = check_claims(v, payload, now, why)) < 0) {
    json_decref(payload);
    return rc;
  }
  if (out) {
    out->payload = payload;
    out->alg = alg;
  } else {
    json_decref(payload);
  }
  *why = jwt_strerror(0);
  return 0;
}

/* ---- claims ---------------------------------------------------------------------------------------------- */

void jwt_claims_free(jwt_claims *c) {
  if (!c) return;
  json_decref(c->payload);
  c->payload = NULL;
}

const char *jwt_claims_sub(const jwt_claims *c) {
  return c ? json_string_value(json_object_get(c->payload, "sub")) : NULL;
}

int jwt_claims_exp(const jwt_claims *c, int64_t *out) {
  int64_t exp = 0;
  if (!c || get_date(c->payload, "exp", 1, &exp) <= 0) return WSIO_ENOTFOUND;
  *out = exp;
  return 0;
}

int jwt_claims_strings(const jwt_claims *c, const char *name, const char **out, size_t cap) {
  json_t *j = c ? json_object_get(c->payload, name) : NULL;
  if (!j) return WSIO_ENOTFOUND;
  if (!is_string_list(j)) return WSIO_EINVAL;
  if (json_is_string(j)) {
    if (cap > 0) out[0] = json_string_value(j);
    return 1;
  }
  size_t n = json_array_size(j);
  if (n > INT32_MAX) return WSIO_EINVAL;
  for (size_t i = 0; i < n && i < cap; i++) out[i] = json_string_value(json_array_get(j, i));
  return (int)n;
}
