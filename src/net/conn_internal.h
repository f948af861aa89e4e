/* Internals shared by the files of src/net only. */
#ifndef WSIO_NET_CONN_INTERNAL_H
#define WSIO_NET_CONN_INTERNAL_H

#include "net/net.h"

/* Allocates a connection on l (handle initialised, not reading). NULL on ENOMEM. */
net_conn *net_conn_new(net_loop *l);
/* Starts reading; the protocol is l->accept_proto. */
void net_conn_start(net_conn *c);
/* Writes what is staged: try_write first, uv_write for the rest. */
void net_conn_flush(net_conn *c);
/* Puts c on the loop's flush list. */
/* The bytes that go on the wire for c: c->out, or the TLS ciphertext buffer. */
buf *net_tls_wire(net_tls *t);

/* Shared bytes queued on a connection (refq.c). Each entry goes on the wire after the first `at` bytes of
 * c->out, in order, so out[0..r0.at) r0 out[r0.at..r1.at) r1 ... out[rN.at..len) is the stream. */
typedef struct net_ref {
  size_t at;
  const uint8_t *p;
  size_t len;
  net_shared *owner;
} net_ref;
struct net_refq {
  uint32_t cap; /* entries allocated; the connection's refq_n are in use */
  net_ref r[];
};
/* Bytes of c's shared entries. */
static inline size_t net_refq_bytes(const net_conn *c) { return c->refq_bytes; }
/* Fills iov (room for 2 * NET_SHARED_MAX + 1) with the stream above. Returns the count, its total in *total. */
int net_refq_gather(const net_conn *c, uv_buf_t *iov, size_t *total);
/* Appends the gathered stream minus its first skip bytes to dst. Returns 0 or WSIO_ENOMEM. */
int net_refq_flatten(const net_conn *c, size_t skip, buf *dst);
/* Drops every entry (releasing its owner) and empties c->out. */
void net_refq_clear(net_conn *c);
/* net_refq_clear, then frees the queue. */
void net_refq_free(net_conn *c);

#endif
