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

void sio_sel_of_op(sio_sel *sel, const wsio_op *op) {
  memset(sel, 0, sizeof *sel);
  sel->nsp = op->nsp;
  sel->rooms = op->rooms;
  sel->nrooms = op->nrooms;
  sel->except = op->except;
  sel->nexcept = op->nexcept;
  sel->except_socket = op->except_socket;
  sel->flags = op->flags;
  sel->timeout_ms = op->timeout_ms;
}

static void mark_room(wsio_nsp *n, const char *room, uint64_t epoch) {
  size_t len = strlen(room);
  sio_room *r = map_get(&n->rooms, room, len);
  if (r)
    for (size_t i = 0; i < r->n; i++) r->members[i].s->epoch = epoch;
  wsio_socket *own = map_get(&n->by_id, room, len); /* any length: v3 clients' ids are longer */
  if (own) own->epoch = epoch;
}

/* Calls fn once for every target of op. fn must not change rooms or disconnect sockets (collect first for
 * that). A fresh epoch marks sockets as excluded or already visited, so unions of rooms cost no set. */
size_t sio_each(const sio_sel *op, each_fn fn, void *arg) {
  wsio_nsp *n = op->nsp;
  uint64_t epoch = ++n->io->epoch;
  for (size_t i = 0; i < op->nexcept; i++) mark_room(n, op->except[i], epoch);
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
  for (size_t k = 0; k < op->nrooms; k++) {
    size_t len = strlen(op->rooms[k]);
    sio_room *r = map_get(&n->rooms, op->rooms[k], len);
    for (size_t i = 0; r && i < r->n; i++) {
      wsio_socket *s = r->members[i].s;
      if (s->epoch == epoch) continue;
      s->epoch = epoch;
      fn(s, arg);
      count++;
    }
    wsio_socket *own = map_get(&n->by_id, op->rooms[k], len);
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
  const char *text;          /* the packet, for the Admin UI's event_sent (instrumented io only) */
  size_t len;
  const sio_bin *atts;
  size_t natts;
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
  if (x->text) {
    sio_admin_event_out(s, x->text, x->len, x->atts, x->natts);
    sio_socket_outgoing(s, x->text, x->len, x->atts, x->natts);
  }
  if (x->bcast && sio_wait_add(s, x->id, x->timeout_ms, x->bcast)) {
    x->bcast->expected++;
    x->bcast->waits++;
  }
}

/* The wsio_op recovery retains a broadcast under (a peer's may name more rooms than an op holds). */
static int recovery_op(const sio_sel *sel, wsio_op *op) {
  if (sel->nrooms > WSIO_OP_MAX_ROOMS || sel->nexcept > WSIO_OP_MAX_ROOMS) return -1;
  *op = wsio_nsp_op(sel->nsp);
  for (size_t i = 0; i < sel->nrooms; i++) op->rooms[i] = sel->rooms[i];
  for (size_t i = 0; i < sel->nexcept; i++) op->except[i] = sel->except[i];
  op->nrooms = (unsigned)sel->nrooms;
  op->nexcept = (unsigned)sel->nexcept;
  op->except_socket = sel->except_socket;
  return 0;
}

int sio_fan_out(const sio_sel *sel, const sio_bin *atts, size_t natts, sio_bcast_wait *b, int64_t id) {
  wsio_io *io = sel->nsp->io;
  /* With recovery on, a broadcast carries its offset and is retained for clients that come back; as in
   * socket.io, not one with acks, nor a volatile one (a client may miss it anyway: presence-like news). */
  wsio_op rop;
  size_t plain = io->scratch.len;
  int retain = io->rec && !b && !(sel->flags & WSIO_OP_VOLATILE);
  uint64_t seq = 0;
  /* An adapter that keeps the broadcasts for every server names the offset; this server keeps nothing. */
  if (retain && sio_recovery_shared(io)) {
    if (sel->offset) sio_recovery_stamp_text(&io->scratch, sel->offset);
  } else if (retain && recovery_op(sel, &rop) == 0) {
    seq = sio_recovery_stamp(io);
  }
  eio_msg *m = sio_msg_new(io, (const char *)io->scratch.data, io->scratch.len, atts, natts);
  if (!m) return WSIO_ENOMEM;
  emit_ctx x = {.msg = m, .flags = sel->flags, .bcast = b, .id = id, .timeout_ms = sel->timeout_ms, .seq = seq};
  if (io->admin || io->any_out) { /* they read what goes out */
    x.text = (const char *)io->scratch.data;
    x.len = io->scratch.len;
    x.atts = atts;
    x.natts = natts;
  }
  sio_each(sel, emit_one, &x);
  if (seq) sio_recovery_store(io, &rop, seq, m);
  eio_msg_unref(m);
  /* Other servers stamp their own offsets: the text goes on as it was. */
  if (io->scratch.len > plain) {
    io->scratch.data[plain - 1] = ']';
    io->scratch.len = plain;
  }
  return x.sent;
}

static void count_one(wsio_socket *s, void *arg) {
  (void)s;
  (*(size_t *)arg)++;
}

/* The local part, then (unless local) the same packet to the other servers. With recovery kept by the
 * adapter, the adapter takes it first and the local part follows once it knows the offset: the count is
 * of the targets now. */
int sio_op_emit_scratch(const wsio_op *op, const sio_bin *atts, size_t natts) {
  sio_sel sel;
  sio_sel_of_op(&sel, op);
  wsio_io *io = op->nsp->io;
  if (io->rec && sio_recovery_shared(io) && !(op->flags & WSIO_OP_LOCAL)) {
    if (sio_cluster_forward_broadcast_offset(op, atts, natts) != 0) return sio_fan_out(&sel, atts, natts, NULL, -1);
    size_t n = 0;
    /* io.emit's targets are the namespace's sockets: no walk to count them. */
    if (sel.nrooms == 0 && sel.nexcept == 0 && !sel.except_socket) n = sel.nsp->nsockets;
    else sio_each(&sel, count_one, &n);
    return (int)n;
  }
  int sent = sio_fan_out(&sel, atts, natts, NULL, -1);
  if (sent >= 0 && op->nsp->io->adapter && !(op->flags & WSIO_OP_LOCAL))
    sio_cluster_forward_broadcast(op, atts, natts);
  return sent;
}

int wsio_op_emit(const wsio_op *op, const char *event, const char *json_args) {
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  int rc = sio_encode_json(op->nsp->io, SIO_EVENT, op->nsp, -1, event, json_args);
  return rc ? rc : sio_op_emit_scratch(op, NULL, 0);
}

int wsio_op_emitv(const wsio_op *op, const char *event, const wsio_value *vals, size_t n) {
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_values(op->nsp->io, SIO_EVENT, op->nsp, -1, event, vals, n, atts, &natts);
  return rc ? rc : sio_op_emit_scratch(op, atts, natts);
}

int wsio_op_emit_args(const wsio_op *op, const char *event, const wsio_args *args) {
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_args(op->nsp->io, SIO_EVENT, op->nsp, -1, event, args, atts, &natts);
  return rc ? rc : sio_op_emit_scratch(op, atts, natts);
}

/* ---- broadcast with acks ---- */

int sio_bcast_add(sio_bcast_wait *b, const wsio_args *args) {
  if (b->got == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 8;
    wsio_args **r = realloc(b->responses, cap * sizeof *r);
    if (!r) return WSIO_ENOMEM;
    b->responses = r;
    b->cap = cap;
  }
  wsio_args *c = sio_args_copy(args);
  if (!c) return WSIO_ENOMEM;
  b->responses[b->got++] = c;
  return 0;
}

void sio_bcast_release(sio_bcast_wait *b) {
  if (--b->waits) return;
  for (size_t i = 0; b->responses && i < b->got; i++) free(b->responses[i]); /* a peer's: only counted */
  free(b->responses);
  free(b);
}

void sio_bcast_finish(sio_bcast_wait *b, int err) {
  if (b->done) return;
  b->done = 1;
  b->peers_pending = 0;
  b->waits++; /* the callback may end the last wait */
  /* Out of the request table first: answers that come from here on are late. */
  if (b->rid) sio_cluster_request_drop(b->io, b->rid); /* releases the request's reference */
  if (b->on_end) b->on_end(b->ctx);
  else b->cb(err, (const wsio_args *const *)b->responses, b->got, b->ud);
  sio_bcast_release(b);
}

void sio_bcast_check(sio_bcast_wait *b) {
  if (!b->done && !b->peers_pending && b->got >= b->expected) sio_bcast_finish(b, 0);
}

void sio_bcast_settle(sio_bcast_wait *b, int err, const wsio_args *args) {
  if (!err && args && !b->done) {
    if (b->on_reply) {
      /* A peer's broadcast: the answer travels back to the server that asked. */
      sio_cluster_reply_args(b, args);
      b->got++;
    } else if (sio_bcast_add(b, args) != 0) {
      b->expected--; /* no memory to keep it: no longer awaited */
    }
  } else if (err) {
    b->expected--; /* a socket that left or timed out answers nothing */
  }
  if (err == WSIO_ETIMEDOUT) sio_bcast_finish(b, WSIO_ETIMEDOUT);
  sio_bcast_check(b);
  sio_bcast_release(b);
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
  if (!b) return WSIO_ENOMEM;
  b->io = io;
  b->cb = cb;
  b->ud = ud;
  b->waits = 1; /* held while fanning out */
  sio_sel sel;
  sio_sel_of_op(&sel, op);
  int sent = sio_fan_out(&sel, NULL, 0, b, id);
  if (sent < 0) b->expected = 0;
  else if (io->adapter && !(op->flags & WSIO_OP_LOCAL)) sio_cluster_forward_broadcast_ack(op, b);
  sio_bcast_check(b);
  sio_bcast_release(b);
  return sent;
}

/* ---- sockets operations ---- */

void sio_collect(wsio_socket *s, void *arg) {
  sio_collect_ctx *x = arg;
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

static int collect_targets(const wsio_op *op, sio_collect_ctx *x) {
  memset(x, 0, sizeof *x);
  if (!op || !op->nsp) return WSIO_EINVAL;
  if (op->err) return op->err;
  sio_sel sel;
  sio_sel_of_op(&sel, op);
  sio_each(&sel, sio_collect, x);
  if (x->oom) {
    free(x->v);
    return WSIO_ENOMEM;
  }
  return 0;
}

int wsio_op_sockets_join(const wsio_op *op, const char *room) {
  sio_collect_ctx x;
  int rc = collect_targets(op, &x);
  if (rc) return rc;
  for (size_t i = 0; i < x.n; i++) wsio_socket_join(x.v[i], room);
  free(x.v);
  if (op->nsp->io->adapter && !(op->flags & WSIO_OP_LOCAL)) sio_cluster_forward_sockets(op, SIO_CLUSTER_JOIN, room, 0);
  return (int)x.n;
}

int wsio_op_sockets_leave(const wsio_op *op, const char *room) {
  sio_collect_ctx x;
  int rc = collect_targets(op, &x);
  if (rc) return rc;
  for (size_t i = 0; i < x.n; i++) wsio_socket_leave(x.v[i], room);
  free(x.v);
  if (op->nsp->io->adapter && !(op->flags & WSIO_OP_LOCAL)) sio_cluster_forward_sockets(op, SIO_CLUSTER_LEAVE, room, 0);
  return (int)x.n;
}

int wsio_op_disconnect_sockets(const wsio_op *op, int close) {
  sio_collect_ctx x;
  int rc = collect_targets(op, &x);
  if (rc) return rc;
  /* A socket's disconnect may end its client, and with it the client's other sockets of this list:
   * mark them first so each is handled while still alive. */
  for (size_t i = 0; i < x.n; i++) x.v[i]->epoch = 0;
  for (size_t i = 0; i < x.n; i++)
    if (!x.v[i]->closing) wsio_socket_disconnect(x.v[i], close);
  free(x.v);
  if (op->nsp->io->adapter && !(op->flags & WSIO_OP_LOCAL))
    sio_cluster_forward_sockets(op, SIO_CLUSTER_DISCONNECT, NULL, close);
  return (int)x.n;
}

size_t wsio_op_fetch_sockets(const wsio_op *op, wsio_socket **out, size_t cap) {
  sio_collect_ctx x;
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
