/* wk_adapter: Socket.IO operations across the workers of a process (see workers.h). */
#include "adapter/workers.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sio/adapter.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/map.h"

typedef struct wk_adapter {
  sio_adapter base;            /* first: the sio layer sees this */
  wk_group *g;
  unsigned me;
  map pending;                 /* rid -> wk_pending: requests whose peers have not all answered */
} wk_adapter;

typedef struct wk_pending {
  uint64_t rid;                /* the key */
  unsigned waiting;            /* peers yet to give their final answer */
} wk_pending;

/* ---- operations: one block shared by every receiving worker ---- */

enum { OP_BCAST, OP_BCAST_ACK, OP_JOIN, OP_LEAVE, OP_DISCONNECT, OP_FETCH, OP_SSE, OP_RESTORE };

typedef struct wk_op {
  atomic_uint refs;            /* receivers yet to let go; the last frees the block */
  int kind;
  int close;                   /* OP_DISCONNECT */
  uint32_t timeout_ms;
  uint64_t rid;                /* requests; 0 for an SSE without ack */
  sio_targets t;               /* points into the block */
  const char *room;            /* OP_JOIN, OP_LEAVE; OP_RESTORE: the pid (data: the offset) */
  const char *data;            /* the packet text (NUL-terminated), or the SSE's JSON array */
  size_t len;
  sio_bin *atts;
  size_t natts;
  wk_msg nodes[];              /* one per receiver */
} wk_op;

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

static char *put_str(char **at, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = memcpy(*at, s, n);
  *at += n;
  return p;
}

/* Copies everything the receivers need into one allocation: header, one queue node per peer, the room
 * arrays, the attachments' table, then the bytes. */
static wk_op *op_new(unsigned peers, int kind, const sio_targets *t, const char *room, const char *data,
                     size_t len, const sio_bin *atts, size_t natts) {
  size_t bytes = strlen(t->nsp) + 1 + (room ? strlen(room) + 1 : 0) + len + 1;
  for (size_t i = 0; i < t->nrooms; i++) bytes += strlen(t->rooms[i]) + 1;
  for (size_t i = 0; i < t->nexcept; i++) bytes += strlen(t->except[i]) + 1;
  for (size_t i = 0; i < natts; i++) bytes += atts[i].len;
  size_t head = align8(sizeof(wk_op) + peers * sizeof(wk_msg));
  size_t arrays = (t->nrooms + t->nexcept) * sizeof(char *) + natts * sizeof(sio_bin);
  wk_op *op = malloc(head + align8(arrays) + bytes);
  if (!op) return NULL;
  memset(op, 0, sizeof *op);
  atomic_init(&op->refs, peers);
  op->kind = kind;
  op->atts = (sio_bin *)((char *)op + head);
  const char **rooms = (const char **)(op->atts + natts);
  const char **except = rooms + t->nrooms;
  char *at = (char *)op + head + align8(arrays);
  op->t.flags = t->flags;
  op->t.nsp = put_str(&at, t->nsp);
  for (size_t i = 0; i < t->nrooms; i++) rooms[i] = put_str(&at, t->rooms[i]);
  for (size_t i = 0; i < t->nexcept; i++) except[i] = put_str(&at, t->except[i]);
  op->t.rooms = rooms;
  op->t.nrooms = t->nrooms;
  op->t.except = except;
  op->t.nexcept = t->nexcept;
  if (room) op->room = put_str(&at, room);
  op->data = at;
  if (len) memcpy(at, data, len);
  at[len] = '\0';
  at += len + 1;
  op->len = len;
  for (size_t i = 0; i < natts; i++) {
    if (atts[i].len) memcpy(at, atts[i].p, atts[i].len);
    op->atts[i] = (sio_bin){(const uint8_t *)at, atts[i].len};
    at += atts[i].len;
  }
  op->natts = natts;
  return op;
}

static void op_release(wk_op *op) {
  if (atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) == 1) free(op);
}

/* ---- answers: one block per answer, to the requester only ---- */

enum { R_NONE, R_ACK_COUNT, R_ACK_REPLY, R_SOCKETS, R_SSE_ACK, R_RESTORE };

typedef struct wk_reply {
  wk_msg node;
  int kind;
  int final;                   /* the peer's last answer to rid */
  uint64_t rid;
  size_t count;                /* R_ACK_COUNT: clients; R_SOCKETS: sockets */
  char *data;                  /* JSON, or the packed sockets */
  size_t len;
  sio_bin *atts;
  size_t natts;
} wk_reply;

static void reply_run(wk_group *g, unsigned to, wk_msg *m);
static void reply_drop(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  free(m->payload);
}

static void reply_send(wk_group *g, unsigned from, unsigned to, int kind, int final, uint64_t rid, size_t count,
                       const char *data, size_t len, const sio_bin *atts, size_t natts) {
  size_t bytes = len + 1;
  for (size_t i = 0; i < natts; i++) bytes += atts[i].len;
  size_t head = align8(sizeof(wk_reply) + natts * sizeof(sio_bin));
  wk_reply *r = malloc(head + bytes);
  if (!r) {
    log_error("workers: out of memory answering a request of worker %u", to);
    return;
  }
  *r = (wk_reply){.kind = kind, .final = final, .rid = rid, .count = count, .len = len, .natts = natts};
  r->atts = (sio_bin *)(r + 1);
  r->data = (char *)r + head;
  if (len) memcpy(r->data, data, len);
  r->data[len] = '\0';
  char *at = r->data + len + 1;
  for (size_t i = 0; i < natts; i++) {
    if (atts[i].len) memcpy(at, atts[i].p, atts[i].len);
    r->atts[i] = (sio_bin){(const uint8_t *)at, atts[i].len};
    at += atts[i].len;
  }
  r->node = (wk_msg){.run = reply_run, .drop = reply_drop, .payload = r, .from = from};
  wk_post(g, from, to, &r->node);
}

/* Sockets travel packed: id NUL, room count (4 bytes), rooms NUL-terminated, handshake NUL, data NUL. */
static void pack_socket(void *ctx, const sio_socket_info *info) {
  buf *b = ctx;
  uint32_t n = (uint32_t)info->nrooms;
  int rc = buf_append(b, info->id, strlen(info->id) + 1) || buf_append(b, &n, sizeof n);
  for (size_t i = 0; i < info->nrooms && !rc; i++) rc = buf_append(b, info->rooms[i], strlen(info->rooms[i]) + 1);
  const char *hs = info->handshake_json ? info->handshake_json : "{}";
  const char *data = info->data_json ? info->data_json : "null";
  rc = rc || buf_append(b, hs, strlen(hs) + 1) || buf_append(b, data, strlen(data) + 1);
  if (rc) log_error("workers: out of memory listing sockets");
}

static void deliver_sockets(wsio_io *io, const wk_reply *r) {
  sio_socket_info *v = calloc(r->count ? r->count : 1, sizeof *v);
  size_t nrooms = 0;
  /* One array for every socket's rooms: count them first. */
  const char *p = r->data, *end = r->data + r->len;
  for (size_t i = 0; i < r->count && p < end; i++) {
    p += strlen(p) + 1;
    uint32_t n;
    memcpy(&n, p, sizeof n);
    p += sizeof n;
    nrooms += n;
    for (uint32_t k = 0; k < n; k++) p += strlen(p) + 1;
    p += strlen(p) + 1;
    p += strlen(p) + 1;
  }
  const char **rooms = calloc(nrooms ? nrooms : 1, sizeof *rooms);
  if (!v || !rooms) {
    free(v);
    free(rooms);
    log_error("workers: out of memory receiving sockets");
    return;
  }
  size_t k = 0, i = 0;
  for (p = r->data; i < r->count && p < end; i++) {
    v[i].id = p;
    p += strlen(p) + 1;
    uint32_t n;
    memcpy(&n, p, sizeof n);
    p += sizeof n;
    v[i].rooms = rooms + k;
    v[i].nrooms = n;
    for (uint32_t j = 0; j < n; j++, k++) {
      rooms[k] = p;
      p += strlen(p) + 1;
    }
    v[i].handshake_json = p;
    p += strlen(p) + 1;
    v[i].data_json = p;
    p += strlen(p) + 1;
  }
  sio_cluster_sockets(io, r->rid, v, i);
  free(v);
  free(rooms);
}

static void reply_run(wk_group *g, unsigned to, wk_msg *m) {
  wk_reply *r = m->payload;
  wk_adapter *a = wk_slot(g, to, WK_SLOT_ADAPTER);
  if (a) {
    wsio_io *io = a->base.io;
    switch (r->kind) {
    case R_ACK_COUNT: sio_cluster_ack_count(io, r->rid, r->count); break;
    case R_ACK_REPLY: sio_cluster_ack_reply(io, r->rid, r->data, r->len, r->atts, r->natts); break;
    case R_SOCKETS: deliver_sockets(io, r); break;
    case R_SSE_ACK: sio_cluster_server_ack(io, r->rid, r->data, r->len); break;
    case R_RESTORE: sio_cluster_restored(io, r->rid, r->data, r->len); break;
    default: break;
    }
    wk_pending *p = r->final ? map_get(&a->pending, &r->rid, sizeof r->rid) : NULL;
    if (p && --p->waiting == 0) {
      map_del(&a->pending, &p->rid, sizeof p->rid);
      free(p);
      sio_cluster_done(io, r->rid);
    }
  }
  free(r);
}

/* ---- a peer's operation, applied here ---- */

typedef struct wk_ctx {
  wk_group *g;
  unsigned me, to;
  uint64_t rid;
} wk_ctx;

static void on_ack_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  wk_ctx *c = ctx;
  reply_send(c->g, c->me, c->to, R_ACK_REPLY, 0, c->rid, 0, json, len, atts, natts);
}

static void on_ack_end(void *ctx) { free(ctx); }

static void on_sse_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  (void)atts;
  (void)natts;
  wk_ctx *c = ctx;
  reply_send(c->g, c->me, c->to, R_SSE_ACK, 1, c->rid, 0, json, len, NULL, 0);
  free(c);
}

static void apply(wk_group *g, unsigned me, unsigned from, wk_adapter *a, const wk_op *op) {
  wsio_io *io = a ? a->base.io : NULL;
  int rc = 0;
  switch (op->kind) {
  case OP_BCAST:
    if (io) rc = sio_cluster_broadcast(io, &op->t, op->data, op->len, op->atts, op->natts);
    break;
  case OP_JOIN:
    if (io) rc = sio_cluster_sockets_join(io, &op->t, op->room);
    break;
  case OP_LEAVE:
    if (io) rc = sio_cluster_sockets_leave(io, &op->t, op->room);
    break;
  case OP_DISCONNECT:
    if (io) rc = sio_cluster_disconnect_sockets(io, &op->t, op->close);
    break;
  case OP_BCAST_ACK: {
    int n = 0;
    wk_ctx *c = io ? malloc(sizeof *c) : NULL;
    if (c) {
      *c = (wk_ctx){g, me, from, op->rid};
      n = sio_cluster_broadcast_ack(io, &op->t, op->data, op->len, op->atts, op->natts, op->timeout_ms,
                                    on_ack_reply, on_ack_end, c);
      if (n < 0) { /* neither callback runs */
        free(c);
        rc = n;
        n = 0;
      }
    }
    reply_send(g, me, from, R_ACK_COUNT, 1, op->rid, (size_t)n, NULL, 0, NULL, 0);
    break;
  }
  case OP_FETCH: {
    buf b = {0};
    int n = io ? sio_cluster_fetch(io, &op->t, pack_socket, &b) : 0;
    if (n < 0) {
      rc = n;
      n = 0;
    }
    reply_send(g, me, from, R_SOCKETS, 1, op->rid, (size_t)n, (const char *)b.data, b.len, NULL, 0);
    buf_free(&b);
    break;
  }
  case OP_SSE: {
    wk_ctx *c = io && op->rid ? malloc(sizeof *c) : NULL;
    if (c) *c = (wk_ctx){g, me, from, op->rid};
    if (io) rc = sio_cluster_server_event(io, op->t.nsp, op->data, op->len, c ? on_sse_reply : NULL, c);
    if (op->rid && (!c || rc < 0)) {
      /* No handler ran here: the requester still counts this worker's answer. */
      free(c);
      reply_send(g, me, from, R_NONE, 1, op->rid, 0, NULL, 0, NULL, 0);
    }
    break;
  }
  case OP_RESTORE: {
    /* The saved session leaves this worker with its answer (len 0: not here). */
    char *out = NULL;
    size_t len = 0;
    if (io) rc = sio_cluster_restore_take(io, op->room, op->data, &out, &len);
    reply_send(g, me, from, R_RESTORE, 1, op->rid, 0, out, rc == 1 ? len : 0, NULL, 0);
    free(out);
    break;
  }
  default: break;
  }
  if (rc < 0) log_warn("workers: an operation from worker %u failed here: %s", from, wsio_strerror(rc));
}

static void op_run(wk_group *g, unsigned to, wk_msg *m) {
  wk_op *op = m->payload;
  apply(g, to, m->from, wk_slot(g, to, WK_SLOT_ADAPTER), op);
  op_release(op);
}

static void op_drop(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  op_release(m->payload);
}

/* ---- the adapter's side: this worker's operations out ---- */

static int op_send(wk_adapter *a, int kind, uint64_t rid, const sio_targets *t, const char *room,
                   const char *data, size_t len, const sio_bin *atts, size_t natts, uint32_t timeout_ms,
                   int close) {
  unsigned n = wk_group_size(a->g);
  if (n < 2) return 0;
  wk_op *op = op_new(n - 1, kind, t, room, data, len, atts, natts);
  if (!op) return WSIO_ENOMEM;
  op->rid = rid;
  op->timeout_ms = timeout_ms;
  op->close = close;
  if (rid) {
    wk_pending *p = malloc(sizeof *p);
    if (p) *p = (wk_pending){rid, n - 1};
    if (!p || map_put(&a->pending, &p->rid, sizeof p->rid, p) != 0) {
      free(p);
      free(op);
      return WSIO_ENOMEM;
    }
  }
  unsigned k = 0;
  for (unsigned i = 0; i < n; i++) {
    if (i == a->me) continue;
    op->nodes[k] = (wk_msg){.run = op_run, .drop = op_drop, .payload = op, .from = a->me};
    wk_post(a->g, a->me, i, &op->nodes[k]);
    k++;
  }
  return 0;
}

static int vt_broadcast(sio_adapter *s, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                        size_t natts) {
  return op_send((wk_adapter *)s, OP_BCAST, 0, t, NULL, pkt, len, atts, natts, 0, 0);
}

static int vt_broadcast_ack(sio_adapter *s, uint64_t rid, const sio_targets *t, const char *pkt, size_t len,
                            const sio_bin *atts, size_t natts, uint32_t timeout_ms) {
  return op_send((wk_adapter *)s, OP_BCAST_ACK, rid, t, NULL, pkt, len, atts, natts, timeout_ms, 0);
}

static int vt_join(sio_adapter *s, const sio_targets *t, const char *room) {
  return op_send((wk_adapter *)s, OP_JOIN, 0, t, room, NULL, 0, NULL, 0, 0, 0);
}

static int vt_leave(sio_adapter *s, const sio_targets *t, const char *room) {
  return op_send((wk_adapter *)s, OP_LEAVE, 0, t, room, NULL, 0, NULL, 0, 0, 0);
}

static int vt_disconnect(sio_adapter *s, const sio_targets *t, int close) {
  return op_send((wk_adapter *)s, OP_DISCONNECT, 0, t, NULL, NULL, 0, NULL, 0, 0, close);
}

static int vt_fetch(sio_adapter *s, uint64_t rid, const sio_targets *t, uint32_t timeout_ms) {
  return op_send((wk_adapter *)s, OP_FETCH, rid, t, NULL, NULL, 0, NULL, 0, timeout_ms, 0);
}

static int vt_sse(sio_adapter *s, uint64_t rid, const char *nsp, const char *data, size_t len,
                  uint32_t timeout_ms) {
  sio_targets t = {.nsp = nsp};
  return op_send((wk_adapter *)s, OP_SSE, rid, &t, NULL, data, len, NULL, 0, timeout_ms, 0);
}

static int vt_restore(sio_adapter *s, uint64_t rid, const char *nsp, const char *pid, const char *offset) {
  (void)nsp; /* the holder checks it when it unpacks */
  if (wk_group_size(((wk_adapter *)s)->g) < 2) return WSIO_ENOTFOUND; /* no peer to hold it */
  sio_targets t = {.nsp = ""};
  return op_send((wk_adapter *)s, OP_RESTORE, rid, &t, pid, offset, strlen(offset), NULL, 0, 0, 0);
}

static int vt_server_count(sio_adapter *s, uint64_t rid) {
  wk_adapter *a = (wk_adapter *)s;
  sio_cluster_server_count(a->base.io, rid, wk_group_size(a->g));
  sio_cluster_done(a->base.io, rid);
  return 0;
}

static void vt_free(sio_adapter *s) {
  wk_adapter *a = (wk_adapter *)s;
  wk_slot_set(a->g, a->me, WK_SLOT_ADAPTER, NULL);
  size_t i = 0;
  map_entry *e;
  while (map_next(&a->pending, &i, &e)) free(e->value);
  map_free(&a->pending);
  free(a);
}

static const sio_adapter_vt wk_vt = {
    .broadcast = vt_broadcast,
    .broadcast_ack = vt_broadcast_ack,
    .sockets_join = vt_join,
    .sockets_leave = vt_leave,
    .disconnect_sockets = vt_disconnect,
    .fetch_sockets = vt_fetch,
    .server_side_emit = vt_sse,
    .server_count = vt_server_count,
    .free = vt_free,
    .restore = vt_restore,
};

int wk_adapter_attach(wk_group *g, unsigned i, wsio_io *io) {
  if (sio_adapter_of(io)) return WSIO_EEXISTS;
  wk_adapter *a = calloc(1, sizeof *a);
  if (!a) return WSIO_ENOMEM;
  a->base.vt = &wk_vt;
  a->base.io = io;
  a->g = g;
  a->me = i;
  int rc = sio_adapter_attach(io, &a->base);
  if (rc != 0) {
    free(a);
    return rc;
  }
  wk_slot_set(g, i, WK_SLOT_ADAPTER, a);
  return 0;
}
