/*
 * net — the network core on libuv: listeners, connections, the coalescing write path, backpressure,
 * timeouts from one sweep timer, TLS. The layers above (http, ws) see a connection as bytes in (on_data) and
 * bytes out (net_conn_write); they never touch libuv or OpenSSL.
 *
 * Ownership: a net_loop owns its connections. net_conn_close() marks a connection closed; its memory is freed
 * by libuv's close callback in a later loop phase, never inside the callback that closed it, and
 * proto->on_close runs then. Everything here belongs to the loop's thread.
 */
#ifndef WSIO_NET_NET_H
#define WSIO_NET_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "wsio.h"

typedef struct net_loop net_loop;
typedef struct net_conn net_conn;
typedef struct net_tls_ctx net_tls_ctx;
typedef struct net_tls net_tls;
typedef struct net_iplimit net_iplimit;
typedef struct net_ipent net_ipent;
typedef struct net_trust net_trust;
typedef struct net_proxied net_proxied;

/* What a protocol (HTTP, WebSocket, ...) implements for the connections it drives. */
typedef struct net_proto {
  /* Received bytes; data is the loop's shared read buffer, borrowed and writable for this call only. */
  void (*on_data)(net_conn *c, uint8_t *data, size_t len);
  /* The connection's buffered output fell to zero after having passed its limit. Optional. */
  void (*on_drain)(net_conn *c);
  /* The sweep found the connection idle for c->timeout seconds. The protocol closes it or re-arms. */
  void (*on_timeout)(net_conn *c);
  /* The peer closed, an I/O error happened, or net_conn_close() was called: last call for c. */
  void (*on_close)(net_conn *c);
} net_proto;

enum {
  NET_CONN_CLOSING = 1u << 0,  /* net_conn_close() called; no more callbacks but on_close */
  NET_CONN_DIRTY = 1u << 1,    /* on the loop's flush list */
  NET_CONN_ENDING = 1u << 2,   /* flush, then shut down and close */
  NET_CONN_OVER = 1u << 3,     /* passed the output limit; on_drain when it empties */
  NET_CONN_READING = 1u << 4,
  NET_CONN_WRITING = 1u << 5,  /* a uv_write is in flight */
  NET_CONN_SHUT = 1u << 6,     /* the write side is shut down */
  NET_CONN_IPOVER = 1u << 7    /* over max connections per address: its first request gets 503 */
};

struct net_conn {
  uv_tcp_t tcp;                /* first: the handle's address is the connection's */
  net_loop *loop;
  const net_proto *proto;
  void *ud;                    /* the protocol's per-connection state */
  buf out;                     /* bytes staged this iteration, or waiting behind an in-flight write */
  buf inflight;                /* bytes handed to uv_write */
  uv_write_t *wreq;            /* allocated on the first write that could not finish at once */
  net_tls *tls;                /* NULL for plain TCP */
  struct net_refq *refq;       /* shared bytes queued among out's (net_conn_write_shared); NULL when none */
  size_t refq_bytes;           /* their total and count, kept here: every send reads them (the backlog, a */
  uint32_t refq_n;             /* full queue), and a broadcast's fan-out should not touch the queue's block */
  net_ipent *ip;               /* its address in the loop's per-address limiter, or NULL */
  net_proxied *proxied;        /* set at accept when the peer is a trusted proxy (net_trust): see iplimit.h */
  net_conn *next, *prev;       /* every connection of the loop, for the sweep */
  net_conn *next_dirty;
  uint32_t flags;
  uint16_t idle;               /* seconds since the protocol last saw progress (it resets this) */
  uint16_t timeout;            /* on_timeout when idle reaches it; 0: never */
  uint8_t active;              /* wrote or read since the last sweep: keep buffers */
  uint8_t flushes;             /* complete flushes so far, counted up to NET_YOUNG_FLUSHES */
};

typedef struct net_stats {
  uint64_t connections, accepted, rejected;
  uint64_t bytes_in, bytes_out;
  uint64_t ip_refused;         /* over the per-address connection limit (src/net/iplimit.c) */
  uint64_t handshakes_limited; /* handshakes refused for the per-address rate */
  uint64_t origin_refused;     /* WebSocket upgrades refused (403) for their Origin, counted by the layers above */
  uint64_t handoffs;           /* connections adopted from another loop (net_conn_adopt) */
} net_stats;

typedef void (*net_accept_cb)(net_loop *l, net_conn *c, void *arg);

struct net_loop {
  uv_loop_t *uv;
  uv_check_t flush;            /* writes staged during an iteration go out here, one per socket */
  uv_prepare_t flush_early;    /* the same just before the loop blocks: what timers staged goes out now */
  uv_timer_t sweep;            /* one timer for every connection's timeouts */
  uint8_t *rbuf;               /* the shared read buffer */
  uint8_t *tbuf;               /* the shared TLS plaintext buffer */
  net_conn *conns;             /* list of all connections */
  net_conn *dirty;             /* connections with staged output */
  net_tls_ctx *tls;            /* set: accepted connections speak TLS */
  const net_proto *accept_proto; /* protocol of newly accepted connections */
  const void *http_cfg;        /* the HTTP layer's configuration (http_conn_configure) */
  net_accept_cb on_accept;
  void *accept_arg;
  size_t max_connections;
  net_iplimit *iplimit;        /* per-address limits, maybe shared with other loops; NULL: none */
  const net_trust *trust;      /* trusted proxies, the owner's (replaced on this thread only); NULL: none */
  uint16_t accept_timeout;     /* initial c->timeout for new connections, seconds */
  uint8_t reuseport;           /* listeners share their port with other loops (SO_REUSEPORT): workers */
  uint16_t worker, nworkers;   /* this loop's worker index and the group's size (0, 1 alone) */
  /* Workers: hands c, with data (what was read of it, to feed again) to worker `owner`'s loop, which adopts
   * it. Returns 0 (c is then closed here) or a negative code (c untouched). NULL when alone. */
  int (*handoff)(net_loop *l, net_conn *c, unsigned owner, const uint8_t *data, size_t len);
  void *handoff_arg;
  uv_tcp_t *listeners[8];
  int nlisteners;
  net_stats stats;
  void *data;                  /* the owner's */
};

#define NET_READ_BUFFER (64 * 1024)

/* Initialises l on uv. Returns 0 or a negative code. */
int net_loop_init(net_loop *l, uv_loop_t *uv);
/* Closes listeners, the sweep and flush handles; connections must be closed first. Run the uv loop once more
 * after this so the close callbacks run, then call net_loop_free. */
void net_loop_close(net_loop *l);
void net_loop_free(net_loop *l);

/* Listens on host:port. Returns 0 or a negative libuv code / WSIO_EADDR. */
int net_listen(net_loop *l, const char *host, int port);
/* The bound port of listener i, or a negative code. */
int net_listener_port(const net_loop *l, int i);
/* Stops accepting (closes the listeners). */
void net_stop_listening(net_loop *l);

/* Queues bytes to send (copied). They go out in one write per socket when the loop iteration's I/O is done.
 * Returns 0, WSIO_ECLOSED, WSIO_ENOMEM. */
int net_conn_write(net_conn *c, const void *data, size_t len);
/* Bytes that many connections send (a broadcast's frame), owned by a reference-counted object that embeds
 * this header. net_conn_write_shared() queues such bytes without copying them and holds a reference until
 * they are written, flattened into a partial write's remainder, or dropped at close. Loop thread only. */
typedef struct net_shared {
  uint32_t refs;
  void (*release)(struct net_shared *); /* called when refs falls to 0: frees the owner */
} net_shared;
static inline void net_shared_ref(net_shared *s) { s->refs++; }
static inline void net_shared_unref(net_shared *s) {
  if (--s->refs == 0) s->release(s);
}
/* Queues data[0..len) of owner after what is queued. The bytes must stay unchanged while owner lives. TLS
 * connections, and a connection holding NET_SHARED_MAX of them already, copy instead. Same returns as
 * net_conn_write. */
int net_conn_write_shared(net_conn *c, const void *data, size_t len, net_shared *owner);
#define NET_SHARED_MAX 64
/* A connection's first complete flushes hand its output buffer back (net_conn_flush). */
#define NET_YOUNG_FLUSHES 4
/* A connection's queued stream up to this size is gathered into one buffer and written with write(). */
#define NET_STAGE_MAX 16384

/* Stops reading: nothing more is taken from the socket (a TLS read under way still delivers what it
 * decrypted). For a connection that is about to move (net_conn_detach); reading starts again only there. */
void net_conn_read_stop(net_conn *c);
/* Asks for the proto's on_drain once every byte queued now has left (at the next flush if none is queued). */
void net_conn_on_empty(net_conn *c);

void net_conn_mark_dirty(net_conn *c);
/* Writing in place: room for n more bytes at the end of c's output, filled by the caller and then handed
 * over with net_conn_commit(c, n) before anything else writes to c. Returns the place, or NULL when c is
 * closing (*rc WSIO_ECLOSED) or memory ran out (*rc WSIO_ENOMEM). Inline: a send's one copy goes here. */
static inline uint8_t *net_conn_reserve(net_conn *c, size_t n, int *rc) {
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) {
    *rc = WSIO_ECLOSED;
    return NULL;
  }
  if (c->out.cap - c->out.len < n && buf_reserve(&c->out, n) != 0) {
    *rc = WSIO_ENOMEM;
    return NULL;
  }
  return c->out.data + c->out.len;
}
static inline void net_conn_commit(net_conn *c, size_t n) {
  c->out.len += n;
  c->active = 1;
  if (!(c->flags & NET_CONN_DIRTY)) net_conn_mark_dirty(c);
}
/* Bytes queued and not yet accepted by the kernel (TLS records included). Inline: every send asks, often
 * twice (the limit before, the drain mark after). */
size_t net_conn_tls_buffered(const net_conn *c);
static inline size_t net_conn_buffered(const net_conn *c) {
  return c->out.len + c->refq_bytes + c->inflight.len + (c->tls ? net_conn_tls_buffered(c) : 0);
}
/* Marks c over its output limit: on_drain is called once its buffer empties. */
void net_conn_set_over(net_conn *c);

/* Closes now: staged output is discarded, on_close runs from libuv's close callback. */
void net_conn_close(net_conn *c);
/* Graceful end: sends what is queued, then shuts the write side and closes. Used after a close frame or a
 * Connection: close response. A peer that never reads is closed by the sweep after c->timeout. */
void net_conn_end(net_conn *c);

/* Switches the protocol driving c (HTTP -> WebSocket). */
static inline void net_conn_set_proto(net_conn *c, const net_proto *p, void *ud) { c->proto = p; c->ud = ud; }

/* Moving a connection to another loop (workers): what net_conn_detach takes out of a connection and
 * net_conn_adopt makes a connection of again. Its place in a per-address table goes with it, still taken,
 * so it counts against max_conns all the way, wherever it lives. */
typedef struct net_handover {
  int fd;                      /* a duplicate of the socket's fd; -1: none */
  net_tls *tls;                /* its TLS state; NULL: plain */
  net_iplimit *iplimit;        /* the table ip is taken in, with a reference of its own; NULL when ip is */
  net_ipent *ip;               /* the connection's place in that table */
  uint8_t ipover;              /* it was over max_conns there (NET_CONN_IPOVER) */
} net_handover;

/* Writes what is staged, then takes the socket, the TLS state and the per-address place out of c into *out
 * and closes c without calling its protocol (nothing is released: *out holds it all now). Returns 0,
 * WSIO_EBACKPRESSURE when output could not be written at once, or another negative code (for both, c is
 * untouched and *out is not set). Runs on c's loop thread. */
int net_conn_detach(net_conn *c, net_handover *out);
/* Makes a connection on l from *h, driven by l->accept_proto, and feeds it data as if just read (plaintext;
 * borrowed for the call and handed to the protocol, which may write in it), in one on_data call whatever its
 * length; then what the TLS state holds already read and not yet decrypted. Takes ownership of everything in
 * *h, even when it fails. The per-address place: when h's table is l's, the new connection keeps it (no
 * moment uncounted) and releases it at close; from another table (loops with tables of their own) it is
 * released there and the connection is admitted in l's as at accept (NET_CONN_IPOVER, or closed at once
 * past twice the limit: still 0). Returns 0 or a negative code. Runs on l's loop thread. */
int net_conn_adopt(net_loop *l, net_handover *h, uint8_t *data, size_t len);
/* Lets go of a handover that will not be adopted: closes the fd, frees the TLS state, releases the place.
 * Any thread. Leaves *h empty (fd -1), as net_conn_adopt does; an empty one may be dropped again. */
void net_handover_drop(net_handover *h);

/* Writes "ip:port" of the peer into out; for a connection from a trusted proxy whose current (or last)
 * request named its client, that client's address alone ("203.0.113.7", "2001:db8::7": the port the
 * client used is not known). Returns 0 or a negative code. */
int net_conn_peer(const net_conn *c, char *out, size_t cap);

/* TLS (src/net/tls.c). A context loads a PEM certificate chain and key; every connection accepted by a loop
 * with l->tls set speaks TLS transparently to the protocol above. */
net_tls_ctx *net_tls_ctx_new(const char *cert_file, const char *key_file);
/* Loads the files again into ctx for connections made from now on; open ones keep what they have. On
 * failure (the reasons logged) ctx stays as it was. Returns 0 or WSIO_ETLS. The loop's thread only. */
int net_tls_ctx_reload(net_tls_ctx *ctx, const char *cert_file, const char *key_file);
void net_tls_ctx_free(net_tls_ctx *ctx);
net_tls *net_tls_new(net_tls_ctx *ctx);
void net_tls_free(net_tls *t);
/* Decrypts ciphertext (len 0: only what the session holds already); calls deliver(c, plaintext, len) for
 * each chunk, queues handshake bytes on c. Returns 0, or a negative code when the TLS session failed (the
 * caller closes). */
int net_tls_read(net_conn *c, const uint8_t *data, size_t len,
                 void (*deliver)(net_conn *c, uint8_t *data, size_t len));
/* Encrypts plaintext into cipher. Returns 0 or a negative code. */
int net_tls_encrypt(net_tls *t, const uint8_t *data, size_t len, buf *cipher);
/* Moves pending TLS output (handshake, alerts) into cipher. */
int net_tls_pending(net_tls *t, buf *cipher);

#endif
