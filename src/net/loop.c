/* net_loop: listeners, accept, the per-iteration flush and the once-a-second sweep. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/conn_internal.h"
#include "net/iplimit.h"
#include "net/net.h"
#include "util/log.h"
#include "wsio.h"

#define NET_SWEEP_MS 1000
/* The accept queue: the kernel clamps it to net.core.somaxconn. A reconnect storm of thousands of clients
 * overflowed a queue of 1024 (dropped SYNs, clients retrying a second later); a deeper one costs nothing. */
#define NET_LISTEN_BACKLOG 65535

static void flush_dirty(net_loop *l) {
  /* Each connection's staged bytes go out in one write; a write can stage more (a protocol answering its
   * drain), which lands on the list again and goes in this same pass. */
  while (l->dirty) {
    net_conn *c = l->dirty;
    l->dirty = c->next_dirty;
    c->next_dirty = NULL;
    c->flags &= ~NET_CONN_DIRTY;
    net_conn_flush(c);
  }
}

/* After the poll phase: what I/O callbacks staged. */
static void on_flush(uv_check_t *h) { flush_dirty(h->data); }
/* Before the poll phase: what timers (heartbeats, ack timeouts) staged. The check handle alone would leave
 * it until the loop next wakes up, as a check handle does not keep the poll from blocking. */
static void on_flush_early(uv_prepare_t *h) { flush_dirty(h->data); }

static void on_sweep(uv_timer_t *t) {
  net_loop *l = t->data;
  for (net_conn *c = l->conns, *next; c; c = next) {
    next = c->next;
    if (c->flags & NET_CONN_CLOSING) continue;
    if (!c->active && c->out.len == 0 && c->inflight.len == 0) {
      /* Idle connections hand their write buffers back: memory per idle connection stays small. */
      buf_free(&c->out);
      if (c->refq && c->refq_n == 0) net_refq_free(c);
      if (!(c->flags & NET_CONN_WRITING)) buf_free(&c->inflight);
    }
    c->active = 0;
    if (c->idle < UINT16_MAX) c->idle++;
    if (c->timeout && c->idle >= c->timeout) {
      if (c->flags & NET_CONN_ENDING) {
        net_conn_close(c);
      } else if (c->proto->on_timeout) {
        c->proto->on_timeout(c);
      } else {
        net_conn_close(c);
      }
    }
  }
}

int net_loop_init(net_loop *l, uv_loop_t *uv) {
  memset(l, 0, sizeof *l);
  l->uv = uv;
  l->rbuf = malloc(NET_READ_BUFFER);
  l->tbuf = malloc(NET_READ_BUFFER);
  if (!l->rbuf || !l->tbuf) {
    free(l->rbuf);
    free(l->tbuf);
    return WSIO_ENOMEM;
  }
  l->max_connections = 100000;
  l->accept_timeout = 10;
  uv_check_init(uv, &l->flush);
  l->flush.data = l;
  uv_check_start(&l->flush, on_flush);
  uv_prepare_init(uv, &l->flush_early);
  l->flush_early.data = l;
  uv_prepare_start(&l->flush_early, on_flush_early);
  uv_timer_init(uv, &l->sweep);
  l->sweep.data = l;
  uv_timer_start(&l->sweep, on_sweep, NET_SWEEP_MS, NET_SWEEP_MS);
  /* The sweep alone must not keep a stopped loop alive. */
  uv_unref((uv_handle_t *)&l->sweep);
  uv_unref((uv_handle_t *)&l->flush);
  uv_unref((uv_handle_t *)&l->flush_early);
  return 0;
}

static void free_listener(uv_handle_t *h) { free(h); }

void net_stop_listening(net_loop *l) {
  for (int i = 0; i < l->nlisteners; i++) {
    if (l->listeners[i] && !uv_is_closing((uv_handle_t *)l->listeners[i]))
      uv_close((uv_handle_t *)l->listeners[i], free_listener);
    l->listeners[i] = NULL;
  }
  l->nlisteners = 0;
}

void net_loop_close(net_loop *l) {
  net_stop_listening(l);
  if (!uv_is_closing((uv_handle_t *)&l->flush)) uv_close((uv_handle_t *)&l->flush, NULL);
  if (!uv_is_closing((uv_handle_t *)&l->flush_early)) uv_close((uv_handle_t *)&l->flush_early, NULL);
  if (!uv_is_closing((uv_handle_t *)&l->sweep)) uv_close((uv_handle_t *)&l->sweep, NULL);
}

void net_loop_free(net_loop *l) {
  free(l->rbuf);
  free(l->tbuf);
  l->rbuf = l->tbuf = NULL;
}

static void on_connection(uv_stream_t *server, int status) {
  net_loop *l = server->data;
  if (status < 0) {
    log_warn("accept failed: %s", uv_strerror(status));
    return;
  }
  net_conn *c = net_conn_new(l);
  if (!c) {
    /* Out of memory: take the connection off the backlog and drop it. */
    uv_tcp_t tmp;
    uv_tcp_init(l->uv, &tmp);
    if (uv_accept(server, (uv_stream_t *)&tmp) == 0) uv_close((uv_handle_t *)&tmp, NULL);
    return;
  }
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    net_conn_close(c);
    return;
  }
  if (l->stats.connections > l->max_connections) {
    l->stats.rejected++;
    log_debug("max connections (%zu) reached; refusing a connection", l->max_connections);
    net_conn_close(c);
    return;
  }
  /* Per-address limits, and whether the peer is a trusted proxy (iplimit.c). */
  if ((l->iplimit || l->trust) && net_conn_admit(c, 1) != 0) return;
  l->stats.accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  net_conn_start(c);
  if (l->on_accept && !(c->flags & NET_CONN_CLOSING)) l->on_accept(l, c, l->accept_arg);
}

int net_listen(net_loop *l, const char *host, int port) {
  if ((size_t)l->nlisteners >= sizeof l->listeners / sizeof l->listeners[0]) return WSIO_ELIMIT;
  struct sockaddr_storage addr;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
    /* A name: resolve synchronously, once, at start-up. */
    uv_getaddrinfo_t req;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(l->uv, &req, NULL, host, NULL, &hints) != 0 || !req.addrinfo) return WSIO_EADDR;
    memcpy(&addr, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    if (addr.ss_family == AF_INET) ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)port);
    else ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)port);
    uv_freeaddrinfo(req.addrinfo);
  }
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t) return WSIO_ENOMEM;
  uv_tcp_init_ex(l->uv, t, addr.ss_family);
  t->data = l;
  int rc = 0;
  if (l->reuseport) {
    /* Workers: every loop listens on the same port and the kernel spreads new connections over them. */
    uv_os_fd_t fd;
    int on = 1;
    if ((rc = uv_fileno((uv_handle_t *)t, &fd)) == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
      rc = uv_translate_sys_error(errno);
  }
  if (rc == 0) rc = uv_tcp_bind(t, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)t, NET_LISTEN_BACKLOG, on_connection);
  if (rc != 0) {
    uv_close((uv_handle_t *)t, free_listener);
    return rc;
  }
  l->listeners[l->nlisteners++] = t;
  return 0;
}

int net_listener_port(const net_loop *l, int i) {
  if (i < 0 || i >= l->nlisteners || !l->listeners[i]) return WSIO_ENOTFOUND;
  struct sockaddr_storage addr;
  int len = sizeof addr;
  int rc = uv_tcp_getsockname(l->listeners[i], (struct sockaddr *)&addr, &len);
  if (rc) return rc;
  if (addr.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&addr)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
}
