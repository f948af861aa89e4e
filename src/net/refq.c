/* Shared bytes on a connection's write path: a broadcast's frame goes to every receiver by reference and
 * leaves in one gathered write per socket, instead of being copied into each receiver's buffer (copies that
 * miss the cache once per receiver, while the one shared frame stays in it). */
#include <stdlib.h>
#include <string.h>

#include "net/conn_internal.h"
#include "net/net.h"
#include "wsio.h"

/* Entries a queue starts with; it doubles up to NET_SHARED_MAX. */
#define NET_REFQ_FIRST 8

int net_conn_write_shared(net_conn *c, const void *data, size_t len, net_shared *owner) {
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) return WSIO_ECLOSED;
  struct net_refq *q = c->refq;
  if (c->tls || len == 0 || c->refq_n == NET_SHARED_MAX) return net_conn_write(c, data, len);
  if (!q || c->refq_n == q->cap) {
    uint32_t cap = q ? q->cap * 2 : NET_REFQ_FIRST;
    struct net_refq *g = realloc(q, sizeof *g + cap * sizeof g->r[0]);
    if (!g) return WSIO_ENOMEM;
    g->cap = cap;
    c->refq = q = g;
  }
  net_shared_ref(owner);
  q->r[c->refq_n++] = (net_ref){.at = c->out.len, .p = data, .len = len, .owner = owner};
  c->refq_bytes += len;
  c->active = 1;
  net_conn_mark_dirty(c);
  return 0;
}

int net_refq_gather(const net_conn *c, uv_buf_t *iov, size_t *total) {
  const struct net_refq *q = c->refq;
  size_t at = 0;
  int k = 0;
  for (uint32_t i = 0; q && i < c->refq_n; i++) {
    const net_ref *r = &q->r[i];
    if (r->at > at) iov[k++] = uv_buf_init((char *)c->out.data + at, (unsigned)(r->at - at));
    iov[k++] = uv_buf_init((char *)r->p, (unsigned)r->len);
    at = r->at;
  }
  if (c->out.len > at) iov[k++] = uv_buf_init((char *)c->out.data + at, (unsigned)(c->out.len - at));
  *total = c->out.len + net_refq_bytes(c);
  return k;
}

int net_refq_flatten(const net_conn *c, size_t skip, buf *dst) {
  uv_buf_t iov[2 * NET_SHARED_MAX + 1];
  size_t total;
  int k = net_refq_gather(c, iov, &total);
  if (skip < total && buf_reserve(dst, total - skip) != 0) return WSIO_ENOMEM;
  for (int i = 0; i < k; i++) {
    if (skip >= iov[i].len) {
      skip -= iov[i].len;
      continue;
    }
    buf_append(dst, iov[i].base + skip, iov[i].len - skip); /* reserved above: cannot fail */
    skip = 0;
  }
  return 0;
}

void net_refq_clear(net_conn *c) {
  struct net_refq *q = c->refq;
  c->out.len = 0;
  if (!q) return;
  for (uint32_t i = 0; i < c->refq_n; i++) net_shared_unref(q->r[i].owner);
  c->refq_n = 0;
  c->refq_bytes = 0;
}

void net_refq_free(net_conn *c) {
  net_refq_clear(c);
  free(c->refq);
  c->refq = NULL;
}
