/* JWT (RFC 7519) verification for the program's Socket.IO auth: compact JWS with HS256, RS256 or ES256.
 *
 * A verifier is configured once and is then immutable: jwt_verify() may be called on the same verifier
 * from any number of threads at once. Tokens are checked in this order, and the first failure is returned:
 * size and shape, header (alg allowed for the configured keys), signature, then the claims (types, exp, nbf,
 * iat, iss, aud). Nothing from an unverified payload reaches the caller. */
#ifndef WSIO_SERVER_JWT_H
#define WSIO_SERVER_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Algorithm bits; the same values as config.h's SERVER_JWT_*, so those masks pass through unchanged. */
#define JWT_ALG_HS256 1
#define JWT_ALG_RS256 2
#define JWT_ALG_ES256 4

/* Longest token accepted, in bytes; anything longer is refused before it is decoded. */
#define JWT_MAX_TOKEN 8192
/* Shortest HS256 secret: RFC 7518 3.2 requires a key at least as long as the hash output. */
#define JWT_MIN_SECRET 32
#define JWT_DEFAULT_LEEWAY 30
#define JWT_MAX_LEEWAY 86400

/* Failure codes of jwt_verify(); jwt_strerror() names them. Disjoint from the WSIO_E* codes, which
 * jwt_verify() returns only as WSIO_ENOMEM. */
enum {
  JWT_EMALFORMED = -101, /* not a compact JWS; bad base64url; header or payload not a JSON object */
  JWT_ETOOLONG = -102,   /* longer than JWT_MAX_TOKEN */
  JWT_EALG = -103,       /* "none", unknown, or not allowed for the configured keys */
  JWT_ESIG = -104,       /* signature does not verify */
  JWT_ECLAIMS = -105,    /* a registered claim of the wrong type, or exp missing when required */
  JWT_EEXPIRED = -106,
  JWT_ENOTYET = -107,    /* nbf or iat later than now + leeway */
  JWT_EAUD = -108,
  JWT_EISS = -109,
};

/* Set it up with jwt_config_init(), then fill in the keys. Strings are only read during jwt_verifier_new(). */
typedef struct jwt_config {
  const void *secret;           /* HS256 key (raw bytes, JWT_MIN_SECRET or more); NULL: none */
  size_t secret_len;
  const char *public_key_file;  /* PEM SubjectPublicKeyInfo: RSA (2048 bits or more) or EC P-256; NULL: none */
  const char *public_key_pem;   /* the same, given in memory (NUL-terminated); at most one of the two */
  int algorithms;               /* JWT_ALG_* bits; 0: every algorithm the configured keys imply */
  const char *audience;         /* NULL: tokens must carry no "aud" (RFC 7519 4.1.3); else "aud" must name it */
  const char *issuer;           /* NULL: "iss" is not checked; else it must equal this */
  int leeway_s;                 /* clock skew allowed on exp, nbf and iat; 0 ... JWT_MAX_LEEWAY */
  int allow_missing_exp;        /* 0 (default): a token without "exp" is refused */
} jwt_config;

typedef struct jwt_verifier jwt_verifier;

/* What a verified token says. payload is the decoded JSON object, owned by the caller: release it with
 * jwt_claims_free() (or take it and json_decref() it yourself). */
typedef struct jwt_claims {
  json_t *payload;
  int alg;  /* the JWT_ALG_* the token was verified with */
} jwt_claims;

/* Fills cfg with the defaults: no keys, algorithms implied by the keys, leeway JWT_DEFAULT_LEEWAY. */
void jwt_config_init(jwt_config *cfg);

/* Builds a verifier. Each allowed algorithm needs its key (HS256 the secret; RS256 an RSA key; ES256 an EC
 * P-256 key); a public key is never used as an HMAC secret. Returns NULL on failure with a one-line reason in
 * err (when errcap > 0). */
jwt_verifier *jwt_verifier_new(const jwt_config *cfg, char *err, size_t errcap);

/* Frees the verifier and wipes its secret. NULL is fine. */
void jwt_verifier_free(jwt_verifier *v);

/* The JWT_ALG_* bits the verifier accepts. */
int jwt_verifier_algorithms(const jwt_verifier *v);

/* Verifies token[0..len) at time now (seconds since the epoch). Returns 0 and fills out (when out is not
 * NULL; out->payload then belongs to the caller), or a JWT_E* code or WSIO_ENOMEM, with out->payload NULL
 * and *why (when why is not NULL) set to a short static reason such as "expired" or "bad signature". */
int jwt_verify(const jwt_verifier *v, const char *token, size_t len, int64_t now, jwt_claims *out,
               const char **why);

/* A static description of a JWT_E* code (as *why gives it), or wsio_strerror()'s for anything else. */
const char *jwt_strerror(int err);

/* Releases the payload; c may be NULL or already freed. */
void jwt_claims_free(jwt_claims *c);

/* The "sub" claim, or NULL when absent. Borrowed from c->payload. */
const char *jwt_claims_sub(const jwt_claims *c);

/* The "exp" claim (rounded down) in *out. Returns 0, or WSIO_ENOTFOUND when the token has none. */
int jwt_claims_exp(const jwt_claims *c, int64_t *out);

/* Collects claim `name` as a list of strings: an array of strings, or one string as a list of one. Stores up
 * to cap borrowed pointers (valid while c->payload is) in out and returns how many the claim holds, which may
 * be more than cap; WSIO_ENOTFOUND when absent; WSIO_EINVAL when it is anything else (an array with any
 * non-string item included: the whole claim is refused). */
int jwt_claims_strings(const jwt_claims *c, const char *name, const char **out, size_t cap);

#endif
