/*
 * The sio side of the cluster adapter contract, part two: requests that wait for other servers' answers
 * (broadcast with acks, fetchSockets, serverSideEmit with ack, serverCount), the answers, and the public
 * cluster API of include/wsio.h.
 *
 * Requests sit in one table keyed by rid and one list in due order of creation; the io's 100 ms tick times
 * them out (no timer per request). A finished request leaves the table at once, so an answer that comes
 * after its timeout, or for an id never issued, finds nothing and is ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"
#include "util/log.h"

enum { REQ_BCAST, REQ_FETCH, REQ_SERVER_ACK, REQ_COUNT, REQ_RESTORE };

typedef struct sio_fetched {
  wsio_remote_socket pub;    /* strings point into this allocation; local resolved at the callback */
  int here;                  /* a socket of this server: looked up again by id */
} sio_fetched;

typedef struct sio_request {
  uint64_t rid;              /* the key (its bytes) */
  int kind;
  uint64_t due;
  struct sio_request *next, *prev;
  sio_bcast_wait *bcast;     /* REQ_BCAST: this server's broadcast, or a peer's */
  wsio_nsp *nsp;             /* REQ_FETCH */
  wsio_fetch_cb fetch_cb;
  wsio_bcast_ack_cb acks_cb;
  wsio_server_count_cb count_cb;
  void *ud;
  void **items;              /* REQ_FETCH: sio_fetched; REQ_SERVER_ACK: wsio_args */
  size_t n, cap;
} sio_request;

struct sio_cluster {
  map by_rid;
  sio_request *head, *tail;
  uint64_t next_rid;
};

typedef struct sio_server_handler {
  struct sio_server_handler *next;
  wsio_server_event_cb cb;
  void *ud;
  char event[];
} sio_server_handler;

struct wsio_server_ack {
  sio_cluster_reply_fn reply;
  void *ctx;
  int answered;
};

/* ---- the request table ---- */

static sio_request *req_new(wsio_io *io, int kind, uint32_t timeout_ms) {
  if (!io->cluster && !(io->cluster = calloc(1, sizeof *io->cluster))) return NULL;
  struct sio_cluster *c = io->cluster;
  sio_request *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->rid = ++c->next_rid;
  r->kind = kind;
  r->due = sio_now(io) + (timeout_ms ? timeout_ms : WSIO_CLUSTER_TIMEOUT_MS);
  if (map_put(&c->by_rid, &r->rid, sizeof r->rid, r) != 0) {
    free(r);
    return NULL;
  }
  r->prev = c->tail;
  if (c->tail) c->tail->next = r;
  else c->head = r;
  c->tail = r;
  sio_tick_arm(io);
  return r;
}

static sio_request *req_get(wsio_io *io, uint64_t rid, int kind) {
  if (!io || !io->cluster) return NULL;
  sio_request *r = map_get(&io->cluster->by_rid, &rid, sizeof rid);
  return r && r->kind == kind ? r : NULL;
}

/* Unlinks and frees r with what it holds (not the broadcast: the caller releases that). */
static void req_free(wsio_io *io, sio_request *r) {
  struct sio_cluster *c = io->cluster;
  map_del(&c->by_rid, &r->rid, sizeof r->rid);
  if (r->prev) r->prev->next = r->next;
  else c->head = r->next;
  if (r->next) r->next->prev = r->prev;
  else c->tail = r->prev;
  for (size_t i = 0; i < r->n; i++) free(r->items[i]);
  free(r->items);
  free(r);
}

static int req_push(sio_request *r, void *item) {
  if (!item) return WSIO_ENOMEM;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    void **v = realloc(r->items, cap * sizeof *v);
    if (!v) {
      free(item);
      return WSIO_ENOMEM;
    }
    r->items = v;
    r->cap = cap;
  }
  r->items[r->n++] = item;
  return 0;
}

uint64_t sio_cluster_request_bcast(wsio_io *io, sio_bcast_wait *b, uint32_t timeout_ms) {
  sio_request *r = req_new(io, REQ_BCAST, timeout_ms);
  if (!r) return 0;
  r->bcast = b;
  b->rid = r->rid;
  b->waits++;
  return r->rid;
}

void sio_cluster_request_drop(wsio_io *io, uint64_t rid) {
  sio_request *r = req_get(io, rid, REQ_BCAST);
  if (!r) return;
  sio_bcast_wait *b = r->bcast;
  b->rid = 0;
  req_free(io, r);
  sio_bcast_release(b);
}

void sio_cluster_request_expire(wsio_io *io, uint64_t rid) {
  sio_request *r = req_get(io, rid, REQ_BCAST);
  if (r) r->due = sio_now(io);
}

/* Ends a request that is not a broadcast: its callback with what came, then it is freed. */
static void req_complete(wsio_io *io, sio_request *r, int err) {
  if (r->kind == REQ_FETCH) {
    wsio_remote_socket *v = r->n ? malloc(r->n * sizeof *v) : NULL;
    size_t n = v ? r->n : 0;
    for (size_t i = 0; i < n; i++) {
      sio_fetched *f = r->items[i];
      v[i] = f->pub;
      v[i].local = f->here ? map_get(&r->nsp->by_id, f->pub.id, strlen(f->pub.id)) : NULL;
    }
    if (r->n && !v) err = WSIO_ENOMEM;
    r->fetch_cb(err, v, n, r->ud);
    free(v);
  } else if (r->kind == REQ_SERVER_ACK) {
    r->acks_cb(err, (const wsio_args *const *)r->items, r->n, r->ud);
  } else if (r->kind == REQ_COUNT) {
    r->count_cb(err, 1, r->ud);
  } else if (r->kind == REQ_RESTORE) {
    wsio_next *hold = r->ud;
    req_free(io, r); /* first: resuming may start other requests */
    sio_recovery_resume(hold, NULL, 0, err);
    return;
  }
  req_free(io, r);
}

/* Ends r at the timeout (or with err at shutdown). */
static void req_end(wsio_io *io, sio_request *r, int err) {
  if (r->kind == REQ_BCAST) sio_bcast_finish(r->bcast, err); /* drops r */
  else req_complete(io, r, err);
}

int sio_cluster_tick(wsio_io *io, uint64_t now) {
  if (!io->cluster) return 0;
  /* A callback may start or end other requests: look again from the start after each. */
  for (int again = 1; again;) {
    again = 0;
    for (sio_request *r = io->cluster->head; r; r = r->next) {
      if (r->due > now) continue;
      req_end(io, r, WSIO_ETIMEDOUT);
      again = 1;
      break;
    }
  }
  return io->cluster->head != NULL;
}

void sio_cluster_shutdown(wsio_io *io) {
  struct sio_cluster *c = io->cluster;
  /* Detached first: a callback below that starts another request gets this server's answer at once. */
  sio_adapter *a = io->adapter;
  io->adapter = NULL;
  while (c && c->head) req_end(io, c->head, WSIO_ECLOSED);
  if (a && a->vt->free) a->vt->free(a);
  if (c) {
    map_free(&c->by_rid);
    free(c);
    io->cluster = NULL;
  }
}

/* ---- answers to this server's requests ---- */

int sio_cluster_request_restore(wsio_io *io, wsio_next *hold, const char *pid, const char *offset) {
  sio_adapter *a = io->adapter;
  sio_request *r = a && a->vt->restore ? req_new(io, REQ_RESTORE, 2000) : NULL; /* a CONNECT waits */
  if (!r) return WSIO_ENOMEM;
  r->ud = hold;
  int rc = a->vt->restore(a, r->rid, hold->s->nsp->name, pid, offset);
  if (rc < 0) req_free(io, r);
  return rc < 0 ? rc : 0;
}

void sio_cluster_restored(wsio_io *io, uint64_t rid, const char *data, size_t len) {
  sio_request *r = len ? req_get(io, rid, REQ_RESTORE) : NULL;
  if (!r) return;
  wsio_next *hold = r->ud;
  req_free(io, r);
  sio_recovery_resume(hold, data, len, 0);
}

/* A JSON array of arguments (and attachments) as wsio_args, copied. NULL when it is not one. */
static wsio_args *args_from_json(const char *json, size_t len, const sio_bin *atts, size_t natts) {
  sio_packet p = {.type = natts ? SIO_BINARY_ACK : SIO_ACK, .attachments = (unsigned)natts, .id = 0};
  if (!json || natts > 1000 || (natts && !atts)) return NULL;
  if (sio_json_validate(json, len, SIO_JSON_DEPTH_MAX, &p.data) != 0 || p.data.kind != SIO_JSON_ARRAY) return NULL;
  /* Every placeholder, nested ones too, must name an attachment there is. */
  sio_json_ph_iter it;
  sio_json_ph_init(&it, &p.data, natts);
  int ph;
  while ((ph = sio_json_ph_next(&it, NULL, NULL)) == 1) {
  }
  if (ph < 0) return NULL;
  sio_arg stack[SIO_MAX_ARGS_STACK], *heap;
  wsio_args a;
  wsio_args *copy = NULL;
  if (sio_args_build(&p, natts ? atts : NULL, stack, &heap, &a) == 0) copy = sio_args_copy(&a);
  free(heap);
  return copy;
}

void sio_cluster_ack_count(wsio_io *io, uint64_t rid, size_t clients) {
  sio_request *r = req_get(io, rid, REQ_BCAST);
  if (!r || r->bcast->on_end) return;
  r->bcast->expected += clients;
}

void sio_cluster_ack_reply(wsio_io *io, uint64_t rid, const char *json, size_t len, const sio_bin *atts,
                           size_t natts) {
  sio_request *r = req_get(io, rid, REQ_BCAST);
  if (!r || r->bcast->on_end) return;
  wsio_args *a = args_from_json(json, len, atts, natts);
  if (!a) {
    log_debug("socket.io: a malformed ack answer from another server was dropped");
    return;
  }
  sio_bcast_wait *b = r->bcast;
  int rc = sio_bcast_add(b, a);
  free(a);
  if (rc == 0) sio_bcast_check(b);
}

void sio_cluster_server_ack(wsio_io *io, uint64_t rid, const char *json, size_t len) {
  sio_request *r = req_get(io, rid, REQ_SERVER_ACK);
  if (!r) return;
  wsio_args *a = args_from_json(json, len, NULL, 0);
  if (a) req_push(r, a);
  else log_debug("socket.io: a malformed serverSideEmit answer was dropped");
}

void sio_cluster_server_count(wsio_io *io, uint64_t rid, size_t servers) {
  sio_request *r = req_get(io, rid, REQ_COUNT);
  if (!r) return;
  r->count_cb(0, servers ? servers : 1, r->ud);
  req_free(io, r);
}

void sio_cluster_done(wsio_io *io, uint64_t rid) {
  if (!io || !io->cluster) return;
  sio_request *r = map_get(&io->cluster->by_rid, &rid, sizeof rid);
  if (!r || r->kind == REQ_COUNT) return;
  if (r->kind != REQ_BCAST) {
    req_complete(io, r, 0);
    return;
  }
  if (r->bcast->on_end) return; /* a peer's broadcast: not the adapter's to end */
  r->bcast->peers_pending = 0;
  sio_bcast_check(r->bcast);
}

/* ---- broadcast with acks: this server's, handed to the adapter ---- */

void sio_cluster_forward_broadcast_ack(const wsio_op *op, sio_bcast_wait *b) {
  wsio_io *io = op->nsp->io;
  sio_adapter *a = io->adapter;
  if (!a->vt->broadcast_ack) return;
  uint32_t timeout = op->timeout_ms ? op->timeout_ms : io->cfg.ack_timeout_ms;
  uint64_t rid = sio_cluster_request_bcast(io, b, timeout);
  if (!rid) return;
  b->peers_pending = 1;
  const char *except[WSIO_OP_MAX_ROOMS + 1];
  sio_targets t;
  sio_targets_of_op(op, &t, except);
  int rc = a->vt->broadcast_ack(a, rid, &t, (const char *)io->scratch.data, io->scratch.len, NULL, 0, timeout);
  if (rc < 0 && b->rid == rid) {
    log_debug("socket.io: the adapter did not take a broadcast with acks: %s", wsio_strerror(rc));
    b->peers_pending = 0;
    sio_cluster_request_drop(io, rid); /* this server's answers only */
  }
}

/* ---- fetchSockets ---- */

/* One allocation: the struct, the rooms array, then every string. */
static sio_fetched *fetched_copy(const char *nsp, const sio_socket_info *in, int here) {
  size_t need = sizeof(sio_fetched) + in->nrooms * sizeof(char *);
  const char *hs = in->handshake_json ? in->handshake_json : "{}";
  const char *data = in->data_json ? in->data_json : "null";
  need += strlen(in->id) + strlen(nsp) + strlen(hs) + strlen(data) + 4;
  for (size_t i = 0; i < in->nrooms; i++) need += strlen(in->rooms[i]) + 1;
  sio_fetched *f = malloc(need);
  if (!f) return NULL;
  const char **rooms = (const char **)(f + 1);
  char *p = (char *)(rooms + in->nrooms);
#define FETCHED_PUT(dst, src)             \
  do {                                    \
    size_t l_ = strlen(src) + 1;          \
    memcpy(p, (src), l_);                 \
    (dst) = p;                            \
    p += l_;                              \
  } while (0)
  FETCHED_PUT(f->pub.id, in->id);
  FETCHED_PUT(f->pub.nsp, nsp);
  FETCHED_PUT(f->pub.handshake_json, hs);
  FETCHED_PUT(f->pub.data_json, data);
  for (size_t i = 0; i < in->nrooms; i++) FETCHED_PUT(rooms[i], in->rooms[i]);
#undef FETCHED_PUT
  f->pub.rooms = rooms;
  f->pub.nrooms = in->nrooms;
  f->pub.local = NULL;
  f->here = here;
  return f;
}

void sio_cluster_sockets(wsio_io *io, uint64_t rid, const sio_socket_info *v, size_t n) {
  sio_request *r = req_get(io, rid, REQ_FETCH);
  if (!r) return;
  for (size_t i = 0; i < n; i++) {
    if (!v[i].id || (v[i].nrooms && !v[i].rooms)) continue;
    int ok = 1;
    for (size_t k = 0; k < v[i].nrooms; k++) ok &= v[i].rooms[k] != NULL;
    if (ok && req_push(r, fetched_copy(r->nsp->name, &v[i], 0)) != 0) return;
  }
}

int wsio_op_fetch_sockets_all(const wsio_op *op, wsio_fetch_cb cb, void *ud) {
  if (!op || !op->nsp || !cb) return WSIO_EINVAL;
  if (op->err) return op->err;
  wsio_io *io = op->nsp->io;
  const char *except[WSIO_OP_MAX_ROOMS + 1];
  sio_targets t;
  sio_targets_of_op(op, &t, except);
  sio_request *r = req_new(io, REQ_FETCH, op->timeout_ms);
  if (!r) return WSIO_ENOMEM;
  r->nsp = op->nsp;
  r->fetch_cb = cb;
  r->ud = ud;
  /* This server's sockets now, as copies: the callback may come after some have gone. */
  wsio_socket **v;
  int n = sio_cluster_collect(io, &t, &v);
  sio_socket_view view = {0};
  int rc = n < 0 ? n : 0;
  for (int i = 0; i < n && rc == 0; i++) {
    sio_socket_info info;
    if ((rc = sio_socket_view_build(&view, v[i], &info)) == 0) rc = req_push(r, fetched_copy(op->nsp->name, &info, 1));
  }
  sio_socket_view_free(&view);
  free(v);
  if (rc) {
    req_free(io, r);
    return rc;
  }
  sio_adapter *a = io->adapter;
  if (!a || !a->vt->fetch_sockets || (op->flags & WSIO_OP_LOCAL)) {
    req_complete(io, r, 0);
    return 0;
  }
  uint64_t rid = r->rid;
  rc = a->vt->fetch_sockets(a, rid, &t, op->timeout_ms ? op->timeout_ms : WSIO_CLUSTER_TIMEOUT_MS);
  /* The adapter may have answered and finished rid already. */
  if (rc < 0 && (r = req_get(io, rid, REQ_FETCH)) != NULL) req_complete(io, r, rc);
  return 0;
}

/* ---- socket.data ---- */

int wsio_socket_set_data_json(wsio_socket *s, const char *json) {
  if (!s) return WSIO_EINVAL;
  char *copy = NULL;
  if (json) {
    sio_json_span v;
    if (sio_json_validate(json, strlen(json), SIO_JSON_DEPTH_MAX, &v) != 0) return WSIO_EINVAL;
    if (!(copy = malloc(v.len + 1))) return WSIO_ENOMEM;
    memcpy(copy, v.p, v.len);
    copy[v.len] = 0;
  }
  free(s->data_json);
  s->data_json = copy;
  if (s->nsp->io->admin) sio_admin_data_changed(s);
  return 0;
}

const char *wsio_socket_data_json(const wsio_socket *s) { return s && s->data_json ? s->data_json : "null"; }

/* ---- serverSideEmit ---- */

/* ["event", ...args] into out. */
static int server_event_data(buf *out, const char *event, const char *json_args) {
  if (!event || !*event || sio_packet_name_reserved(event, strlen(event))) return WSIO_EINVAL;
  sio_json_span args = {0};
  if (json_args && *json_args &&
      (sio_json_validate(json_args, strlen(json_args), SIO_JSON_DEPTH_MAX, &args) != 0 ||
       args.kind != SIO_JSON_ARRAY))
    return WSIO_EINVAL;
  int rc = buf_append(out, "[", 1);
  if (rc == 0) rc = sio_json_write_string(out, event, strlen(event));
  if (rc == 0 && args.len > 2) {
    rc = buf_append(out, ",", 1);
    if (rc == 0) rc = buf_append(out, args.p + 1, args.len - 1); /* the elements and the closing bracket */
  } else if (rc == 0) {
    rc = buf_append(out, "]", 1);
  }
  return rc;
}

int wsio_nsp_server_side_emit(wsio_nsp *n, const char *event, const char *json_args) {
  if (!n) return WSIO_EINVAL;
  buf data = {0};
  int rc = server_event_data(&data, event, json_args);
  sio_adapter *a = n->io->adapter;
  if (rc == 0 && a && a->vt->server_side_emit)
    rc = a->vt->server_side_emit(a, 0, n->name, (const char *)data.data, data.len, 0);
  buf_free(&data);
  return rc;
}

int wsio_nsp_server_side_emit_ack(wsio_nsp *n, const char *event, const char *json_args, uint32_t timeout_ms,
                                  wsio_bcast_ack_cb cb, void *ud) {
  if (!n || !cb) return WSIO_EINVAL;
  buf data = {0};
  int rc = server_event_data(&data, event, json_args);
  sio_request *r = rc == 0 ? req_new(n->io, REQ_SERVER_ACK, timeout_ms) : NULL;
  if (!r) {
    buf_free(&data);
    return rc ? rc : WSIO_ENOMEM;
  }
  r->acks_cb = cb;
  r->ud = ud;
  sio_adapter *a = n->io->adapter;
  uint64_t rid = r->rid;
  if (!a || !a->vt->server_side_emit) {
    req_complete(n->io, r, 0); /* no other server: no answer to wait for */
  } else {
    rc = a->vt->server_side_emit(a, rid, n->name, (const char *)data.data, data.len,
                                 timeout_ms ? timeout_ms : WSIO_CLUSTER_TIMEOUT_MS);
    if (rc < 0 && (r = req_get(n->io, rid, REQ_SERVER_ACK)) != NULL) req_complete(n->io, r, rc);
  }
  buf_free(&data);
  return 0;
}

int wsio_nsp_on_server_side(wsio_nsp *n, const char *event, wsio_server_event_cb cb, void *ud) {
  if (!n || !event || !*event || !cb) return WSIO_EINVAL;
  size_t len = strlen(event);
  sio_server_handler *h = malloc(sizeof *h + len + 1);
  if (!h) return WSIO_ENOMEM;
  h->cb = cb;
  h->ud = ud;
  h->next = NULL;
  memcpy(h->event, event, len + 1);
  sio_server_handler **pp = &n->server_handlers;
  while (*pp) pp = &(*pp)->next; /* in registration order */
  *pp = h;
  return 0;
}

void sio_cluster_nsp_free(wsio_nsp *n) {
  for (sio_server_handler *h = n->server_handlers, *next; h; h = next) {
    next = h->next;
    free(h);
  }
  n->server_handlers = NULL;
}

int wsio_server_ack_send(wsio_server_ack *ack, const char *json_args) {
  if (!ack || ack->answered) return WSIO_EINVAL;
  sio_json_span v = {"[]", 2, SIO_JSON_ARRAY};
  if (json_args && (sio_json_validate(json_args, strlen(json_args), SIO_JSON_DEPTH_MAX, &v) != 0 ||
                    v.kind != SIO_JSON_ARRAY))
    return WSIO_EINVAL;
  ack->answered = 1;
  ack->reply(ack->ctx, v.p, v.len, NULL, 0);
  return 0;
}

int sio_cluster_server_event(wsio_io *io, const char *nsp, const char *data, size_t len,
                             sio_cluster_reply_fn reply, void *ctx) {
  if (!io || !nsp || !data) return WSIO_EINVAL;
  sio_packet p = {.type = SIO_EVENT, .nsp = nsp, .nsp_len = strlen(nsp), .id = -1};
  if (sio_json_validate(data, len, SIO_JSON_DEPTH_MAX, &p.data) != 0 || p.data.kind != SIO_JSON_ARRAY)
    return WSIO_EPROTO;
  sio_json_iter it;
  sio_json_iter_init(&it, &p.data);
  if (!sio_json_array_next(&it, &p.name) || p.name.kind != SIO_JSON_STRING) return WSIO_EPROTO;
  char name[256];
  ssize_t nl = sio_json_string_decode(&p.name, name, sizeof name - 1);
  if (nl < 0 && nl != WSIO_ETOOBIG) return WSIO_EPROTO;
  name[nl < 0 ? 0 : nl] = 0; /* too long for any handler's name: none runs */
  wsio_server_ack ack = {.reply = reply, .ctx = ctx};
  wsio_nsp *n = map_get(&io->nsps, p.nsp, p.nsp_len);
  const wsio_nsp *o = n && n->parent ? n->parent : n;
  sio_arg stack[SIO_MAX_ARGS_STACK], *heap;
  wsio_args a;
  int rc = sio_args_build(&p, NULL, stack, &heap, &a);
  if (rc == 0) {
    a.event = name;
    for (const sio_server_handler *h = o && nl > 0 ? o->server_handlers : NULL; h; h = h->next)
      if (strcmp(h->event, name) == 0) h->cb(n, &a, reply ? &ack : NULL, h->ud);
  }
  free(heap);
  if (reply && !ack.answered) reply(ctx, "[]", 2, NULL, 0);
  return rc;
}

/* ---- serverCount ---- */

int wsio_io_server_count(wsio_io *io, wsio_server_count_cb cb, void *ud) {
  if (!io || !cb) return WSIO_EINVAL;
  sio_adapter *a = io->adapter;
  if (!a || !a->vt->server_count) {
    cb(0, 1, ud);
    return 0;
  }
  sio_request *r = req_new(io, REQ_COUNT, 0);
  if (!r) return WSIO_ENOMEM;
  r->count_cb = cb;
  r->ud = ud;
  uint64_t rid = r->rid;
  int rc = a->vt->server_count(a, rid);
  if (rc < 0 && (r = req_get(io, rid, REQ_COUNT)) != NULL) req_complete(io, r, rc);
  return 0;
}
