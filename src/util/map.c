#include "util/map.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wsio.h"

/* ---- SipHash-1-3 (Aumasson and Bernstein), 64-bit output ---- */

/* The per-process key, drawn once: the first map_hash() of any thread draws it (pthread_once), so workers
 * on several threads share one key and never race on it. */
static uint64_t sip_k0, sip_k1;
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIP_ROUND(v0, v1, v2, v3) \
  do {                            \
    v0 += v1;                     \
    v1 = rotl(v1, 13);            \
    v1 ^= v0;                     \
    v0 = rotl(v0, 32);            \
    v2 += v3;                     \
    v3 = rotl(v3, 16);            \
    v3 ^= v2;                     \
    v0 += v3;                     \
    v3 = rotl(v3, 21);            \
    v3 ^= v0;                     \
    v2 += v1;                     \
    v1 = rotl(v1, 17);            \
    v1 ^= v2;                     \
    v2 = rotl(v2, 32);            \
  } while (0)

static uint64_t load64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void sip_init(void) {
  uint8_t k[16];
  if (RAND_bytes(k, sizeof k) != 1) {
    /* No entropy: still a working table, just not flood-proof. */
    memset(k, 0x5a, sizeof k);
  }
  sip_k0 = load64(k);
  sip_k1 = load64(k + 8);
}

uint64_t map_hash(const void *key, size_t len) {
  pthread_once(&sip_once, sip_init);
  const uint8_t *p = key;
  uint64_t v0 = 0x736f6d6570736575ull ^ sip_k0, v1 = 0x646f72616e646f6dull ^ sip_k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ sip_k0, v3 = 0x7465646279746573ull ^ sip_k1;
  size_t n = len & ~(size_t)7;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t m = load64(p + i);
    v3 ^= m;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t b = (uint64_t)len << 56;
  for (size_t i = 0; i < (len & 7); i++) b |= (uint64_t)p[n + i] << (8 * i);
  v3 ^= b;
  SIP_ROUND(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  SIP_ROUND(v0, v1, v2, v3);
  SIP_ROUND(v0, v1, v2, v3);
  SIP_ROUND(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table ---- */

static map_entry tombstone_marker;
#define TOMBSTONE ((const void *)&tombstone_marker)

static int same(const map_entry *e, const void *key, size_t len, uint64_t h) {
  return e->key && e->key != TOMBSTONE && e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0;
}

static map_entry *find(const map *m, const void *key, size_t len, uint64_t h) {
  if (!m->cap) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    map_entry *e = &m->slots[i];
    if (!e->key) return NULL;
    if (same(e, key, len, h)) return e;
  }
}

void *map_get(const map *m, const void *key, size_t len) {
  map_entry *e = find(m, key, len, map_hash(key, len));
  return e ? e->value : NULL;
}

static int grow(map *m) {
  size_t cap = m->cap ? m->cap : 8;
  /* Double only when live entries need it; otherwise rebuilding clears the tombstones. */
  if ((m->count + 1) * 2 > cap) cap *= 2;
  map_entry *slots = calloc(cap, sizeof *slots);
  if (!slots) return WSIO_ENOMEM;
  for (size_t i = 0; i < m->cap; i++) {
    map_entry *e = &m->slots[i];
    if (!e->key || e->key == TOMBSTONE) continue;
    size_t j = e->hash & (cap - 1);
    while (slots[j].key) j = (j + 1) & (cap - 1);
    slots[j] = *e;
  }
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  m->used = m->count;
  return 0;
}

int map_put(map *m, const void *key, size_t len, void *value) {
  uint64_t h = map_hash(key, len);
  map_entry *e = find(m, key, len, h);
  if (e) {
    e->key = key;
    e->value = value;
    return 0;
  }
  /* Keep the load (tombstones included) under 3/4 so probes stay short and always end. */
  if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != 0) return WSIO_ENOMEM;
  size_t mask = m->cap - 1;
  size_t i = h & mask;
  while (m->slots[i].key && m->slots[i].key != TOMBSTONE) i = (i + 1) & mask;
  if (!m->slots[i].key) m->used++;
  m->slots[i] = (map_entry){key, len, h, value};
  m->count++;
  return 0;
}

void *map_del(map *m, const void *key, size_t len) {
  map_entry *e = find(m, key, len, map_hash(key, len));
  if (!e) return NULL;
  void *v = e->value;
  e->key = TOMBSTONE;
  e->value = NULL;
  m->count--;
  return v;
}

void map_free(map *m) {
  free(m->slots);
  memset(m, 0, sizeof *m);
}

int map_next(const map *m, size_t *i, map_entry **e) {
  while (*i < m->cap) {
    map_entry *s = &m->slots[(*i)++];
    if (s->key && s->key != TOMBSTONE) {
      *e = s;
      return 1;
    }
  }
  return 0;
}
