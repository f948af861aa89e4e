/* buf — a growable byte buffer with a hard cap. The owner of the struct owns data. */
#ifndef WSIO_UTIL_BUF_H
#define WSIO_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct buf {
  uint8_t *data;
  size_t len;
  size_t cap;
} buf;

/* Makes room for `more` bytes after len. Returns 0 or WSIO_ENOMEM. Growth doubles, so appends are
 * amortised O(1). */
int buf_reserve(buf *b, size_t more);
/* Appends n bytes. Returns 0 or WSIO_ENOMEM. Inline when the bytes fit: appends are on every send path. */
int buf_append_grow(buf *b, const void *p, size_t n);
static inline int buf_append(buf *b, const void *p, size_t n) {
  if (b->cap - b->len < n) return buf_append_grow(b, p, n);
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}
/* Drops the first n bytes (memmove of the rest). */
void buf_consume(buf *b, size_t n);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);
/* Empties the buffer; frees the storage when it is larger than keep bytes, so idle buffers stay small. */
void buf_reset(buf *b, size_t keep);

#endif
