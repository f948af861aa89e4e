/* Admin UI logins: bcrypt hashes checked with libxcrypt, and the process's table of sessions. */
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sio/admin.h"

/* ---- bcrypt ---- */

static int bcrypt_b64(char c) {
  return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int sio_admin_hash_valid(const char *h) {
  if (!h || strlen(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return 0;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return 0;
  if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9') return 0;
  int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return 0;
  for (size_t i = 7; i < 60; i++)
    if (!bcrypt_b64(h[i])) return 0;
  return 1;
}

int sio_admin_password_check(const char *password, const char *hash) {
  if (!password || !sio_admin_hash_valid(hash)) return 0;
  /* crypt_data is some 32 KiB: on the heap, one per check (the thread pool runs several at once). */
  struct crypt_data *cd = calloc(1, sizeof *cd);
  if (!cd) return 0;
  const char *out = crypt_rn(password, hash, cd, (int)sizeof *cd);
  /* The same length always (60): the comparison's time tells nothing of where they differ. */
  int ok = out && strlen(out) == 60 && CRYPTO_memcmp(out, hash, 60) == 0;
  OPENSSL_cleanse(cd, sizeof *cd);
  free(cd);
  return ok;
}

/* ---- sessions ---- */

typedef struct session {
  sio_admin_realm realm;
  char id[SIO_ADMIN_SESSION_LEN];
  uint64_t expires;          /* 0: a free slot */
} session;

/* A ring: a new session takes the oldest slot, so the table never grows. */
static session sessions[SIO_ADMIN_SESSIONS];
static size_t next_slot;
static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;

void sio_admin_realm_of(sio_admin_realm *r, const char *username, const char *hash) {
  /* With the NUL between them: "ab" + "c" is not "a" + "bc". */
  size_t ul = strlen(username) + 1, hl = strlen(hash);
  unsigned char *b = malloc(ul + hl);
  if (!b) {
    memset(r, 0, sizeof *r); /* no realm: a session then fits nothing but this io's own failures */
    return;
  }
  memcpy(b, username, ul);
  memcpy(b + ul, hash, hl);
  SHA256(b, ul + hl, r->digest);
  free(b);
}

int sio_admin_session_new(const sio_admin_realm *r, char *id, uint64_t now_ms) {
  unsigned char raw[SIO_ADMIN_SESSION_LEN / 2];
  if (RAND_bytes(raw, (int)sizeof raw) != 1) return WSIO_EIO;
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof raw; i++) {
    id[2 * i] = hex[raw[i] >> 4];
    id[2 * i + 1] = hex[raw[i] & 15];
  }
  id[SIO_ADMIN_SESSION_LEN] = 0;
  pthread_mutex_lock(&sessions_lock);
  session *s = &sessions[next_slot];
  next_slot = (next_slot + 1) % SIO_ADMIN_SESSIONS;
  s->realm = *r;
  memcpy(s->id, id, SIO_ADMIN_SESSION_LEN);
  s->expires = now_ms + SIO_ADMIN_SESSION_TTL_MS;
  pthread_mutex_unlock(&sessions_lock);
  return 0;
}

int sio_admin_session_valid(const sio_admin_realm *r, const char *id, size_t len, uint64_t now_ms) {
  if (len != SIO_ADMIN_SESSION_LEN) return 0;
  int found = 0;
  pthread_mutex_lock(&sessions_lock);
  /* Every slot is compared, in constant time: the answer's time does not depend on the id. */
  for (size_t i = 0; i < SIO_ADMIN_SESSIONS; i++) {
    const session *s = &sessions[i];
    int live = s->expires > now_ms;
    int same = CRYPTO_memcmp(s->id, id, SIO_ADMIN_SESSION_LEN) == 0 &&
               CRYPTO_memcmp(s->realm.digest, r->digest, sizeof r->digest) == 0;
    found |= live & same;
  }
  pthread_mutex_unlock(&sessions_lock);
  return found;
}
