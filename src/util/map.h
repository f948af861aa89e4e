/*
 * map — a hash table from byte-string keys to pointers: open addressing with linear probing, tombstones,
 * and SipHash-1-3 under a random per-process key, so keys chosen by clients (session ids, room names) cannot
 * be crafted to collide. The map does not own keys: each entry's key must stay valid and unchanged while
 * the entry is in the map (keep it inside the value).
 */
#ifndef WSIO_UTIL_MAP_H
#define WSIO_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct map_entry {
  const void *key;
  size_t key_len;
  uint64_t hash;
  void *value;
} map_entry;

typedef struct map {
  map_entry *slots;
  size_t cap;    /* power of two, or 0 */
  size_t count;  /* live entries */
  size_t used;   /* live entries and tombstones */
} map;

/* The keyed hash the map uses (also for other tables keyed by client data). */
uint64_t map_hash(const void *key, size_t len);

/* Returns the value for key, or NULL. */
void *map_get(const map *m, const void *key, size_t len);
/* Inserts or replaces. Returns 0 or WSIO_ENOMEM. */
int map_put(map *m, const void *key, size_t len, void *value);
/* Removes key; returns its value or NULL. */
void *map_del(map *m, const void *key, size_t len);
/* Frees the slots (not keys or values). */
void map_free(map *m);

/* Iteration: for (size_t i = 0; map_next(m, &i, &e);) ... — not safe across put/del. */
int map_next(const map *m, size_t *i, map_entry **e);

#endif
