#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

#include "wsio.h"

int buf_reserve(buf *b, size_t more) {
  if (b->cap - b->len >= more) return 0;
  if (more > SIZE_MAX / 2 - b->len) return WSIO_ENOMEM;
  size_t need = b->len + more;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (!p) return WSIO_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append_grow(buf *b, const void *p, size_t n) {
  if (n == 0) return 0;
  int rc = buf_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void buf_consume(buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void buf_free(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void buf_reset(buf *b, size_t keep) {
  b->len = 0;
  if (b->cap > keep) buf_free(b);
}
