/* net_conn: reading into the loop's shared buffer, the coalescing write path, graceful and hard close. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/conn_internal.h"
#include "net/iplimit.h"
#include "net/net.h"
#include "util/log.h"
#include "wsio.h"

/* Seconds a closing connection may take to drain its output and see the peer's FIN. */
#define NET_END_TIMEOUT 5

static void on_closed(uv_handle_t *h) {
  net_conn *c = h->data;
  net_loop *l = c->loop;
  if (c->proto && c->proto->on_close) c->proto->on_close(c);
  if (c->prev) c->prev->next = c->next;
  else l->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  l->stats.connections--;
  if (c->ip) net_iplimit_release(l->iplimit, c->ip, net_iplimit_now());
  free(c->proxied);
  net_refq_free(c);
  buf_free(&c->out);
  buf_free(&c->inflight);
  free(c->wreq);
  if (c->tls) net_tls_free(c->tls);
  free(c);
}

/* A connection on l with tls (NULL: plain; owned by the connection once made), in l's list, not reading. */
static net_conn *conn_make(net_loop *l, net_tls *tls) {
  net_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  uv_tcp_init(l->uv, &c->tcp);
  c->tcp.data = c;
  c->loop = l;
  c->proto = l->accept_proto;
  c->timeout = l->accept_timeout;
  c->tls = tls;
  c->next = l->conns;
  if (l->conns) l->conns->prev = c;
  l->conns = c;
  l->stats.connections++;
  return c;
}

net_conn *net_conn_new(net_loop *l) {
  net_tls *tls = NULL;
  if (l->tls && !(tls = net_tls_new(l->tls))) return NULL;
  net_conn *c = conn_make(l, tls);
  if (!c && tls) net_tls_free(tls);
  return c;
}

void net_conn_close(net_conn *c) {
  if (c->flags & NET_CONN_CLOSING) return;
  c->flags |= NET_CONN_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  net_conn *c = h->data;
  b->base = (char *)c->loop->rbuf;
  b->len = NET_READ_BUFFER;
}

static void deliver(net_conn *c, uint8_t *data, size_t len) {
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) return;
  c->proto->on_data(c, data, len);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  net_conn *c = s->data;
  if (c->flags & NET_CONN_CLOSING) return;
  if (n > 0) {
    c->loop->stats.bytes_in += (uint64_t)n;
    c->active = 1;
    if (c->flags & NET_CONN_ENDING) return; /* draining towards close: input is discarded */
    if (c->tls) {
      if (net_tls_read(c, (uint8_t *)b->base, (size_t)n, deliver) != 0) net_conn_close(c);
    } else {
      c->proto->on_data(c, (uint8_t *)b->base, (size_t)n);
    }
    return;
  }
  if (n == 0) return;
  /* EOF or error. With output still queued (a reply to a half-closed request) send it, then close. */
  if (n == UV_EOF && net_conn_buffered(c) > 0 && !(c->flags & NET_CONN_ENDING)) {
    uv_read_stop(s);
    c->flags &= ~NET_CONN_READING;
    net_conn_end(c);
    return;
  }
  net_conn_close(c);
}

void net_conn_start(net_conn *c) {
  if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0) c->flags |= NET_CONN_READING;
  else net_conn_close(c);
}

void net_conn_read_stop(net_conn *c) {
  if (!(c->flags & NET_CONN_READING)) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->flags &= ~NET_CONN_READING;
}

void net_conn_on_empty(net_conn *c) {
  c->flags |= NET_CONN_OVER; /* drained() calls on_drain when the output is empty, as after the limit */
  net_conn_mark_dirty(c);
}

void net_conn_mark_dirty(net_conn *c) {
  if (c->flags & NET_CONN_DIRTY) return;
  c->flags |= NET_CONN_DIRTY;
  c->next_dirty = c->loop->dirty;
  c->loop->dirty = c;
}

int net_conn_write(net_conn *c, const void *data, size_t len) {
  int rc = 0;
  uint8_t *dst = net_conn_reserve(c, len, &rc);
  if (!dst) return rc;
  if (len) memcpy(dst, data, len);
  net_conn_commit(c, len);
  return 0;
}

size_t net_conn_tls_buffered(const net_conn *c) { return net_tls_wire(c->tls)->len; }

void net_conn_set_over(net_conn *c) { c->flags |= NET_CONN_OVER; }

static void on_shutdown(uv_shutdown_t *req, int status) {
  net_conn *c = req->data;
  free(req);
  /* Wait for the peer's FIN (read_cb sees EOF) so no reset destroys what we sent; the sweep bounds it. */
  if (status < 0 || !(c->flags & NET_CONN_READING)) net_conn_close(c);
}

static void shutdown_now(net_conn *c) {
  if (c->flags & NET_CONN_SHUT) return;
  c->flags |= NET_CONN_SHUT;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req) {
    net_conn_close(c);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    net_conn_close(c);
  }
}

static void on_write(uv_write_t *req, int status);

static void drained(net_conn *c) {
  if (c->flags & NET_CONN_ENDING) {
    shutdown_now(c);
    return;
  }
  if ((c->flags & NET_CONN_OVER) && c->out.len == 0) {
    c->flags &= ~NET_CONN_OVER;
    if (c->proto->on_drain) c->proto->on_drain(c);
  }
}

/* Hands c->inflight to uv_write: what the kernel did not take at once. */
static void write_inflight(net_conn *c) {
  if (!c->wreq && !(c->wreq = malloc(sizeof *c->wreq))) {
    net_conn_close(c);
    return;
  }
  c->wreq->data = c;
  uv_buf_t b = uv_buf_init((char *)c->inflight.data, (unsigned)c->inflight.len);
  if (uv_write(c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    net_conn_close(c);
    return;
  }
  c->flags |= NET_CONN_WRITING;
}

/* Plain TCP with shared bytes queued: one write of the whole stream, staged (below) or gathered with writev
 * from where the shared frames lie. */
static void flush_gathered(net_conn *c) {
  /* Small streams are copied into one staging buffer per thread and leave with write(): the shared frames are
   * hot in the cache (the same few for every receiver), and the kernel's per-segment work of a writev
   * (importing the vector, a copy and a hardened-usercopy check per segment) costs more than the copy. */
  static _Thread_local char stage[NET_STAGE_MAX];
  uv_buf_t iov[2 * NET_SHARED_MAX + 1];
  size_t total;
  int k = net_refq_gather(c, iov, &total);
  if (k > 1 && total <= sizeof stage) {
    size_t at = 0;
    for (int i = 0; i < k; i++) {
      memcpy(stage + at, iov[i].base, iov[i].len);
      at += iov[i].len;
    }
    iov[0] = uv_buf_init(stage, (unsigned)total);
    k = 1;
  }
  int n = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)k);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    net_conn_close(c);
    return;
  }
  c->loop->stats.bytes_out += (uint64_t)n;
  /* A partial write: the rest becomes one private buffer for uv_write, and the shared bytes are let go. */
  if ((size_t)n < total && net_refq_flatten(c, (size_t)n, &c->inflight) != 0) {
    net_conn_close(c);
    return;
  }
  net_refq_clear(c);
  if ((size_t)n == total) drained(c);
  else write_inflight(c);
}

void net_conn_flush(net_conn *c) {
  if (c->flags & NET_CONN_CLOSING) return;
  buf *wire = &c->out;
  if (c->tls) {
    wire = net_tls_wire(c->tls);
    if (c->out.len) {
      if (net_tls_encrypt(c->tls, c->out.data, c->out.len, wire) != 0) {
        net_conn_close(c);
        return;
      }
      c->out.len = 0;
    }
  }
  if (c->flags & NET_CONN_WRITING) return; /* on_write continues with what is staged now */
  if (c->refq_n) {
    flush_gathered(c);
    return;
  }
  if (wire->len == 0) {
    drained(c);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)wire->data, (unsigned)wire->len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    net_conn_close(c);
    return;
  }
  c->loop->stats.bytes_out += (uint64_t)n;
  if ((size_t)n == wire->len) {
    wire->len = 0;
    /* A young connection's first writes are handshake answers, most often followed by silence: its
     * buffer goes back at once rather than at the sweep, so an idle connection never held one past its
     * handshake. A busy connection keeps its buffer from then on. */
    if (c->flushes < NET_YOUNG_FLUSHES) {
      c->flushes++;
      buf_free(wire);
      buf_free(&c->out); /* TLS: the plaintext staged before encryption, empty now */
    }
    drained(c);
    return;
  }
  /* The kernel took part of it: the rest goes with uv_write, and later writes wait behind it. */
  buf_consume(wire, (size_t)n);
  buf tmp = c->inflight;
  c->inflight = *wire;
  *wire = tmp;
  wire->len = 0;
  write_inflight(c);
}

static void on_write(uv_write_t *req, int status) {
  net_conn *c = req->data;
  c->flags &= ~NET_CONN_WRITING;
  if (c->flags & NET_CONN_CLOSING) return;
  if (status < 0) {
    net_conn_close(c);
    return;
  }
  c->loop->stats.bytes_out += c->inflight.len;
  c->inflight.len = 0;
  net_conn_flush(c);
}

void net_conn_end(net_conn *c) {
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) return;
  c->flags |= NET_CONN_ENDING;
  c->timeout = NET_END_TIMEOUT;
  c->idle = 0;
  net_conn_mark_dirty(c);
}

int net_conn_peer(const net_conn *c, char *out, size_t cap) {
  if (c->proxied && c->proxied->forwarded)
    return net_addr_format(&c->proxied->client, out, cap) < 0 ? WSIO_EINVAL : 0;
  struct sockaddr_storage addr;
  int len = sizeof addr;
  int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len);
  if (rc) return rc;
  char ip[64];
  int port;
  if (addr.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&addr, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    snprintf(out, cap, "[%s]:%d", ip, port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&addr, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    snprintf(out, cap, "%s:%d", ip, port);
  }
  return 0;
}

/* ---- moving a connection to another loop ---- */

static const net_proto detached_proto = {0};

int net_conn_detach(net_conn *c, net_handover *out) {
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) return WSIO_ECLOSED;
  net_conn_flush(c);
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_WRITING) || net_conn_buffered(c) > 0) {
    return c->flags & NET_CONN_CLOSING ? WSIO_ECLOSED : WSIO_EBACKPRESSURE;
  }
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return WSIO_EIO;
  /* The duplicate keeps the socket open once this loop closes its handle (which also takes the fd out
   * of this loop's epoll set). */
  int dup_fd = dup(fd);
  if (dup_fd < 0) return WSIO_EIO;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->flags &= ~NET_CONN_READING;
  /* The place in the per-address table is not released with the handle: the connection stays counted
   * while it travels. The reference keeps the table alive for whoever releases it, on whichever thread,
   * even if this loop is gone by then. */
  *out = (net_handover){.fd = dup_fd, .tls = c->tls, .ip = c->ip, .ipover = !!(c->flags & NET_CONN_IPOVER)};
  if (c->ip) out->iplimit = net_iplimit_ref(c->loop->iplimit);
  c->ip = NULL;
  c->tls = NULL;
  c->proto = &detached_proto;
  c->ud = NULL;
  net_conn_close(c);
  return 0;
}

void net_handover_drop(net_handover *h) {
  if (h->fd >= 0) close(h->fd);
  if (h->tls) net_tls_free(h->tls);
  if (h->ip) net_iplimit_release(h->iplimit, h->ip, net_iplimit_now());
  net_iplimit_unref(h->iplimit);
  *h = (net_handover){.fd = -1};
}

int net_conn_adopt(net_loop *l, net_handover *h, uint8_t *data, size_t len) {
  net_conn *c = conn_make(l, h->tls);
  if (!c) {
    net_handover_drop(h);
    return WSIO_ENOMEM;
  }
  int admit = 0;
  if (h->ip && h->iplimit == l->iplimit) {
    /* The same table (workers sharing one): the place passes to c as it is, released when c closes, or,
     * for a proxy's connection, when the request it carries is fed again and names its client. */
    c->ip = h->ip;
    if (h->ipover) c->flags |= NET_CONN_IPOVER;
  } else {
    /* Another table, or none: this loop's limits apply from now on, as to a connection it accepted. */
    if (h->ip) net_iplimit_release(h->iplimit, h->ip, net_iplimit_now());
    admit = l->iplimit != NULL;
  }
  net_iplimit_unref(h->iplimit);
  int fd = h->fd;
  *h = (net_handover){.fd = -1};
  int rc = uv_tcp_open(&c->tcp, fd);
  if (rc != 0) {
    close(fd);
    net_conn_close(c);
    return rc;
  }
  l->stats.handoffs++;
  /* Whether the peer is a trusted proxy is this loop's to say, as at accept. */
  if ((admit || l->trust) && net_conn_admit(c, admit) != 0) return 0; /* closed at once: counted in ip_refused */
  uv_tcp_nodelay(&c->tcp, 1);
  net_conn_start(c);
  /* All in one call, however long: a request in it that the protocol hands on again takes every byte
   * after it along, which it could not do with the part of them in a later call. */
  c->active = 1;
  if (len > 0) deliver(c, data, len);
  /* Records that came in the same read as the request, still encrypted, moved with the TLS state. Nothing
   * reads them here until the peer sends more, which it does not while it waits for their answers. */
  if (c->tls && !(c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) && net_tls_read(c, NULL, 0, deliver) != 0)
    net_conn_close(c);
  return 0;
}
