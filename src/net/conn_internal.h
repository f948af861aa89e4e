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
void net_conn_mark_dirty(net_conn *c);
/* The bytes that go on the wire for c: c->out, or the TLS ciphertext buffer. */
buf *net_tls_wire(net_tls *t);

#endif
