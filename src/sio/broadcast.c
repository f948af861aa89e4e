/* Broadcast operators: to / except / volatile / local / compress / timeout, and the fan-out itself. A
 * broadcast is encoded once, for both transports, and the same bytes are queued to every target. */
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"

wsio_op wsio_nsp_op(wsio_nsp *n) {
  wsio_op op;
  memset(&op, 0, sizeof op);
  op.nsp = n;
  return op;
}

wsio_op wsio_socket_broadcast(wsio_socket *s) {
  wsio_op op = wsio_nsp_op(s->nsp);
  op.except_socket = s;
  return op;
}

wsio_op wsio_nsp_to(wsio_nsp *n, const char *room) {
  wsio_op op = wsio_nsp_op(n);
  wsio_op_to(&op, room);
  return op;
}

wsio_op wsio_socket_to(wsio_socket *s, const char *room) {
  wsio_op op = wsio_socket_broadcast(s);
  wsio_op_to(&op, room);
  return op;
}

wsio_op *wsio_op_to(wsio_op *op, const char *room) {
  if (!room) op->err = WSIO_EINVAL;
  else if (op->nrooms >= WSIO_OP_MAX_ROOMS) op->err = WSIO_ELIMIT;
  else op->rooms[op->nrooms++] = room;
  return op;
}

wsio_op *wsio_op_except(wsio_op *op, const char *room) {
  if (!room) op->err = WSIO_EINVAL;
  else if (op->nexcept >= WSIO_OP_MAX_ROOMS) op->err = WSIO_ELIMIT;
  else op->except[op->nexcept++] = room;
  return op;
}

wsio_op *wsio_op_volatile(wsio_op *op) {
  op->flags |= WSIO_OP_VOLATILE;
  return op;
}

wsio_op *wsio_op_local(wsio_op *op) {
  op->flags |= WSIO_OP_LOCAL;
  return op;
}

wsio_op *wsio_op_compress(wsio_op *op, int on) {
  if (on) op->flags &= ~WSIO_OP_NOCOMPRESS;
  else op->flags |= WSIO_OP_NOCOMPRESS;
  return op;
}

wsio_op *wsio_op_timeout(wsio_op *op, uint32_t ms) {
  op->timeout_ms = ms;
  return op;
}

/* ---- target selection ---- */

typedef void (*each_fn)(wsio_socket *s, void *arg);

static void mark_room(wsio_nsp *n, const char *room, uint64_t epoch) {
  size_t len = strlen(room);
  sio_room *r = map_get(&n->rooms, room, len);
  if (r)
    for (size_t i = 0; i < r->n; i++) r->members[i].s->epoch = epoch;
  wsio_socket *own = len == EIO_SID_LEN ? map_get(&n->by_id, room, len) : NULL;
  if (own) own->epoch = epoch;
}

/* Calls fn once for every target of op. fn must not change rooms or disconnect sockets (collect first for
 * that). A fresh epoch marks sockets as excluded or already visited, so unions of rooms cost no set. */
static size_t each(const wsio_op *op, each_fn fn, void *arg) {
  wsio_nsp *n = op->nsp;
  uint64_t epoch = ++n->io->epoch;
  for (unsigned i = 0; i < op->nexcept; i++) mark_room(n, op->except[i], epoch);
  if (op->except_socket) ((wsio_socket *)op->except_socket)->epoch = epoch;
  size_t count = 0;
  if (op->nrooms == 0) {
    for (size_t i = 0; i < n->nsockets; i++) {
      wsio_socket *s = n->sockets[i];
      if (s->epoch == epoch) continue;
      fn(s, arg);
      count++;
    }
    return count;
  }
  for (unsigned k = 0; k < op->nrooms; k++) {
    size_t len = strlen(op->rooms[k]);
    sio_room *r = map_get(&n->rooms, op->rooms[k], len);
    for (size_t i = 0; r && i < r->n; i++) {
      wsio_socket *s = r->members[i].s;
      if (s->epoch == epoch) continue;
      s->epoch = epoch;
      fn(s, arg);
      count++;
    }
    wsio_socket *own = len == EIO_SID_LEN ? map_get(&n->by_id, op->rooms[k], len) : NULL;
    if (own && own->epoch != epoch) {
      own->epoch = epoch;
      fn(own, arg);
      count++;
    }
  }
  return count;
}

/* ---- emit ---- */

typedef struct emit_ctx {
  eio_msg *msg;
  unsigned flags;
  int sent;
  sio_bcast_wait *bcast;
  int64_t id;
  uint32_t timeout_ms;
  uint64_t seq;              /* retained for connection state recovery; 0: not */
} emit_ctx;

static void emit_one(wsio_socket *s, void *arg) {
  emit_ctx *x = arg;
  eio_socket *e = s->client->eio;
  if (!e) return;
  /* volatile: a client that can't take it now misses it, rather than growing the queue. */
  if ((x->flags & WSIO_OP_VOLATILE) && eio_socket_congested(e)) {
    s->nsp->io->volatile_dropped++;
    return;
  }
  if (eio_socket_send_msg(e, x->msg) != 0) return;
  x->sent++;
  s->nsp->io->events_out++;
  if (x->seq) s->seq = x->seq;
  if (x->bcast && sio_wait_add(s, x->id, x->timeout_ms, x->bcast)) {
    x->bcast->expected++;
    x->bcast->waits++;
  }
}

static eio_msg *msg_from_scratch(wsio_io *io, const sio_bin *atts, size_t natts) {
  eio_msg *m = eio_msg_new();
  if (!m) return NULL;
  int rc = eio_msg_add(m, 0, io->scratch.data, io->scratch.len);
  for (size_t i = 0; rc == 0 && i < natts; i++) rc = eio_msg_add(m, 1, atts[i].p, atts[i].len);
  if (rc) {
    eio_msg_unref(m);
    return NULL;
  }
  return m;
}

static int fan_out(const wsio_op *op, const sio_bin *atts, size_t natts, sio_bcast_wait *b, int64_t id) {
  wsio_io *io = op->nsp->io;
  /* With recovery on, a broadcast carries its offset and is retained for clients that come back. */
  uint64_t seq = io->rec && !b ? sio_recovery_stamp(io) : 0;
  eio_msg *m = msg_from_scratch(io, atts, natts);
  if (!m) return WSIO_ENOMEM;
  emit_ctx x = {.msg = m, .flags = op->flags, .bcast = b, .id = id, .timeout_ms = op->timeout_ms, .seq = seq};
  each(op, emit_one, &x);
  if (seq) sio_recovery_store(io, op, seq, m);
  eio_msg_unref(m);
  return x.sent;
}

int wsio_op_emit(const wsio_op *op, const char *event, const char *json_args) {
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  int rc = sio_encode_json(op->nsp->io, SIO_EVENT, op->nsp, -1, event, json_args);
  return rc ? rc : fan_out(op, NULL, 0, NULL, -1);
}

int wsio_op_emitv(const wsio_op *op, const char *event, const wsio_value *vals, size_t n) {
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_values(op->nsp->io, SIO_EVENT, op->nsp, -1, event, vals, n, atts, &natts);
  return rc ? rc : fan_out(op, atts, natts, NULL, -1);
}

int wsio_op_emit_args(const wsio_op *op, const char *event, const wsio_args *args) {
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_args(op->nsp->io, SIO_EVENT, op->nsp, -1, event, args, atts, &natts);
  return rc ? rc : fan_out(op, atts, natts, NULL, -1);
}

int wsio_op_emit_ack(const wsio_op *op, const char *event, const char *json_args, wsio_bcast_ack_cb cb, void *ud) {
  if (!op || !op->nsp || !cb) return WSIO_EINVAL;
  if (op->err) return op->err;
  wsio_io *io = op->nsp->io;
  /* One id for every receiver (as socket.io does), so the packet is still encoded once. */
  int64_t id = io->next_id++;
  int rc = sio_encode_json(io, SIO_EVENT, op->nsp, id, event, json_args);
  if (rc) return rc;
  sio_bcast_wait *b = calloc(1, sizeof *b);
  size_t targets = 0;
  for (size_t i = 0; i < op->nsp->nsockets; i++) targets++; /* an upper bound for the answers */
  if (!b || !(b->responses = calloc(targets ? targets : 1, sizeof *b->responses))) {
    free(b);
    return WSIO_ENOMEM;
  }
  b->cb = cb;
  b->ud = ud;
  b->waits = 1; /* held while fanning out */
  int sent = fan_out(op, NULL, 0, b, id);
  if (sent < 0) b->expected = 0;
  if (!b->done && b->got >= b->expected) {
    b->done = 1;
    cb(0, (const wsio_args *const *)b->responses, b->got, ud);
  }
  if (--b->waits == 0) {
    for (size_t i = 0; i < b->got; i++) free(b->responses[i]);
    free(b->responses);
    free(b);
  }
  return sent;
}

/* ---- sockets operations ---- */

typedef struct collect_ctx {
  wsio_socket **v;
  size_t n, cap;
  int oom;
} collect_ctx;

static void collect(wsio_socket *s, void *arg) {
  collect_ctx *x = arg;
  if (x->n == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 64;
    wsio_socket **v = realloc(x->v, cap * sizeof *v);
    if (!v) {
      x->oom = 1;
      return;
    }
    x->v = v;
    x->cap = cap;
  }
  x->v[x->n++] = s;
}

static int collect_targets(const wsio_op *op, collect_ctx *x) {
  memset(x, 0, sizeof *x);
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  each(op, collect, x);
  if (x->oom) {
    free(x->v);
    return WSIO_ENOMEM;
  }
  return 0;
}

int wsio_op_sockets_join(const wsio_op *op, const char *room) {
  collect_ctx x;
  int rc = collect_targets(op, &x);
  if (rc) return rc;
  for (size_t i = 0; i < x.n; i++) wsio_socket_join(x.v[i], room);
  free(x.v);
  return (int)x.n;
}

int wsio_op_sockets_leave(const wsio_op *op, const char *room) {
  collect_ctx x;
  int rc = collect_targets(op, &x);
  if (rc) return rc;
  for (size_t i = 0; i < x.n; i++) wsio_socket_leave(x.v[i], room);
  free(x.v);
  return (int)x.n;
}

int wsio_op_disconnect_sockets(const wsio_op *op, int close) {
  collect_ctx x;
  int rc = collect_targets(op, &x);
  if (rc) return rc;
  /* A socket's disconnect may end its client, and with it the client's other sockets of this list:
   * mark them first so each is handled while still alive. */
  for (size_t i = 0; i < x.n; i++) x.v[i]->epoch = 0;
  for (size_t i = 0; i < x.n; i++)
    if (!x.v[i]->closing) wsio_socket_disconnect(x.v[i], close);
  free(x.v);
  return (int)x.n;
}

size_t wsio_op_fetch_sockets(const wsio_op *op, wsio_socket **out, size_t cap) {
  collect_ctx x;
  if (collect_targets(op, &x) != 0) return 0;
  for (size_t i = 0; i < x.n && i < cap; i++) out[i] = x.v[i];
  free(x.v);
  return x.n;
}

int wsio_io_emit(wsio_io *io, const char *event, const char *json_args) {
  wsio_op op = wsio_nsp_op(io->main);
  return wsio_op_emit(&op, event, json_args);
}

int wsio_socket_broadcast_emit(wsio_socket *s, const char *event, const char *json_args) {
  wsio_op op = wsio_socket_broadcast(s);
  return wsio_op_emit(&op, event, json_args);
}
