/* Emitting to one socket, acks both ways, and the wsio_args accessors. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"

/* ---- arguments ---- */

int sio_args_build(const sio_packet *pkt, const sio_bin *atts, sio_arg *stack, sio_arg **heap, wsio_args *out) {
  *heap = NULL;
  sio_arg *v = stack;
  int n = sio_packet_args(pkt, atts, v, SIO_MAX_ARGS_STACK);
  if (n < 0) return n;
  if ((size_t)n > SIO_MAX_ARGS_STACK) { /* the count came with the first walk: one more, into the heap */
    if (!(v = *heap = malloc((size_t)n * sizeof *v))) return WSIO_ENOMEM;
    sio_packet_args(pkt, atts, v, (size_t)n);
  }
  out->event = "";
  out->n = (size_t)n;
  out->v = v;
  out->atts = atts;
  out->natts = atts ? pkt->attachments : 0;
  return 0;
}

/* The attachment a top-level binary argument is (nested placeholders refer to the others), or natts. */
size_t sio_args_att_index(const wsio_args *a, const sio_arg *v) {
  size_t k = 0;
  while (k < a->natts && !(a->atts[k].p == v->bin.p && a->atts[k].len == v->bin.len)) k++;
  return k;
}

/* One allocation: the struct, the argument array, the attachments, the event name, then each argument's
 * bytes and each attachment's. A binary argument points at its attachment when it is one. */
wsio_args *sio_args_copy(const wsio_args *a) {
  size_t ev = strlen(a->event) + 1;
  size_t need = sizeof(wsio_args) + a->n * sizeof(sio_arg) + a->natts * sizeof(sio_bin) + ev;
  for (size_t i = 0; i < a->n; i++) need += a->v[i].kind == SIO_ARG_BINARY ? a->v[i].bin.len : a->v[i].json.len;
  for (size_t k = 0; k < a->natts; k++) need += a->atts[k].len;
  wsio_args *c = malloc(need);
  if (!c) return NULL;
  sio_arg *v = (sio_arg *)(c + 1);
  sio_bin *atts = (sio_bin *)(v + a->n);
  char *p = (char *)(atts + a->natts);
  memcpy(p, a->event, ev);
  c->event = p;
  p += ev;
  for (size_t k = 0; k < a->natts; k++) {
    if (a->atts[k].len) memcpy(p, a->atts[k].p, a->atts[k].len);
    atts[k].p = a->atts[k].len ? (const uint8_t *)p : NULL;
    atts[k].len = a->atts[k].len;
    p += a->atts[k].len;
  }
  c->atts = atts;
  c->natts = a->natts;
  for (size_t i = 0; i < a->n; i++) {
    v[i] = a->v[i];
    size_t k = v[i].kind == SIO_ARG_BINARY ? sio_args_att_index(a, &v[i]) : a->natts;
    if (k < a->natts) {
      v[i].bin = atts[k];
    } else if (v[i].kind == SIO_ARG_BINARY) {
      memcpy(p, a->v[i].bin.p, a->v[i].bin.len);
      v[i].bin.p = (const uint8_t *)p;
      p += a->v[i].bin.len;
    } else {
      memcpy(p, a->v[i].json.p, a->v[i].json.len);
      v[i].json.p = p;
      p += a->v[i].json.len;
    }
  }
  c->n = a->n;
  c->v = v;
  return c;
}

const char *wsio_args_event(const wsio_args *a) { return a->event; }
size_t wsio_args_count(const wsio_args *a) { return a->n; }

wsio_arg_type wsio_args_type(const wsio_args *a, size_t i) {
  if (i >= a->n) return WSIO_ARG_NONE;
  if (a->v[i].kind == SIO_ARG_BINARY) return WSIO_ARG_BINARY;
  switch (a->v[i].json.kind) {
    case SIO_JSON_STRING: return WSIO_ARG_STRING;
    case SIO_JSON_NUMBER: return WSIO_ARG_NUMBER;
    case SIO_JSON_OBJECT: return WSIO_ARG_OBJECT;
    case SIO_JSON_ARRAY: return WSIO_ARG_ARRAY;
    case SIO_JSON_TRUE: return WSIO_ARG_TRUE;
    case SIO_JSON_FALSE: return WSIO_ARG_FALSE;
    case SIO_JSON_NULL: return WSIO_ARG_NULL;
    default: return WSIO_ARG_NONE;
  }
}

const char *wsio_args_json(const wsio_args *a, size_t i, size_t *len) {
  if (i >= a->n || a->v[i].kind == SIO_ARG_BINARY) return NULL;
  if (len) *len = a->v[i].json.len;
  return a->v[i].json.p;
}

long wsio_args_string(const wsio_args *a, size_t i, char *out, size_t cap) {
  if (i >= a->n || a->v[i].kind != SIO_ARG_JSON || a->v[i].json.kind != SIO_JSON_STRING) return WSIO_EINVAL;
  if (cap == 0) return WSIO_ETOOBIG;
  ssize_t n = sio_json_string_decode(&a->v[i].json, out, cap - 1);
  if (n < 0) return n;
  out[n] = 0;
  return n;
}

double wsio_args_number(const wsio_args *a, size_t i, int *ok) {
  if (ok) *ok = 0;
  if (i >= a->n || a->v[i].kind != SIO_ARG_JSON || a->v[i].json.kind != SIO_JSON_NUMBER) return 0;
  char tmp[64];
  size_t len = a->v[i].json.len < sizeof tmp - 1 ? a->v[i].json.len : sizeof tmp - 1;
  memcpy(tmp, a->v[i].json.p, len);
  tmp[len] = 0;
  if (ok) *ok = 1;
  return strtod(tmp, NULL);
}

const void *wsio_args_binary(const wsio_args *a, size_t i, size_t *len) {
  if (i >= a->n || a->v[i].kind != SIO_ARG_BINARY) return NULL;
  if (len) *len = a->v[i].bin.len;
  return a->v[i].bin.p;
}

json_t *wsio_args_tree(const wsio_args *a, size_t i) {
  if (i >= a->n || a->v[i].kind != SIO_ARG_JSON) return NULL;
  return json_loadb(a->v[i].json.p, a->v[i].json.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

/* ---- emit to one socket ---- */

static int send_scratch(wsio_socket *s, const sio_bin *atts, size_t natts) {
  int rc = sio_send(s, &s->nsp->io->scratch, atts, natts);
  if (rc == 0) s->nsp->io->events_out++;
  return rc;
}

/* An event (not an ack): the Admin UI reports it as socket.io's onAnyOutgoing would. */
static int send_event(wsio_socket *s, const sio_bin *atts, size_t natts) {
  int rc = send_scratch(s, atts, natts);
  wsio_io *io = s->nsp->io;
  if (rc == 0 && io->admin) sio_admin_event_out(s, (const char *)io->scratch.data, io->scratch.len, atts, natts);
  if (rc == 0 && io->any_out) sio_socket_outgoing(s, (const char *)io->scratch.data, io->scratch.len, atts, natts);
  return rc;
}

int wsio_socket_emit(wsio_socket *s, const char *event, const char *json_args) {
  if (!s || !s->connected) return WSIO_ECLOSED;
  int rc = sio_encode_json(s->nsp->io, SIO_EVENT, s->nsp, -1, event, json_args);
  return rc ? rc : send_event(s, NULL, 0);
}

int wsio_socket_emitv(wsio_socket *s, const char *event, const wsio_value *vals, size_t n) {
  if (!s || !s->connected) return WSIO_ECLOSED;
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_values(s->nsp->io, SIO_EVENT, s->nsp, -1, event, vals, n, atts, &natts);
  return rc ? rc : send_event(s, atts, natts);
}

int wsio_socket_emit_args(wsio_socket *s, const char *event, const wsio_args *args) {
  if (!s || !s->connected) return WSIO_ECLOSED;
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_args(s->nsp->io, SIO_EVENT, s->nsp, -1, event, args, atts, &natts);
  return rc ? rc : send_event(s, atts, natts);
}

/* Registers a wait for id on s. */
static sio_ack_wait *wait_add(wsio_socket *s, int64_t id, uint32_t timeout_ms, wsio_ack_cb cb, void *ud,
                              sio_bcast_wait *b) {
  wsio_io *io = s->nsp->io;
  if (s->nwaits >= io->cfg.max_pending_acks) {
    io->acks_refused++;
    return NULL;
  }
  sio_ack_wait *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->s = s;
  w->id = id;
  w->due = sio_now(io) + (timeout_ms ? timeout_ms : io->cfg.ack_timeout_ms);
  w->cb = cb;
  w->ud = ud;
  w->bcast = b;
  w->next = io->waits;
  if (io->waits) io->waits->prev = w;
  io->waits = w;
  w->snext = s->waits;
  s->waits = w;
  s->nwaits++;
  sio_tick_arm(io);
  return w;
}

sio_ack_wait *sio_wait_add(wsio_socket *s, int64_t id, uint32_t timeout_ms, sio_bcast_wait *b) {
  return wait_add(s, id, timeout_ms, NULL, NULL, b);
}

int wsio_socket_emit_ack(wsio_socket *s, const char *event, const char *json_args, uint32_t timeout_ms,
                         wsio_ack_cb cb, void *ud) {
  if (!s || !s->connected) return WSIO_ECLOSED;
  if (!cb) return WSIO_EINVAL;
  wsio_io *io = s->nsp->io;
  if (s->nwaits >= io->cfg.max_pending_acks) {
    io->acks_refused++;
    return WSIO_ELIMIT;
  }
  int64_t id = io->next_id++;
  int rc = sio_encode_json(io, SIO_EVENT, s->nsp, id, event, json_args);
  if (rc) return rc;
  if ((rc = send_event(s, NULL, 0)) != 0) return rc;
  return wait_add(s, id, timeout_ms, cb, ud, NULL) ? 0 : WSIO_ENOMEM;
}

/* ---- acks to the client ---- */

static int ack_finish(wsio_ack *ack, int rc) {
  ack->answered = 1;
  if (ack->kept) {
    wsio_socket *s = ack->s;
    if (s) {
      for (wsio_ack **pp = &s->kept; *pp; pp = &(*pp)->next_kept) {
        if (*pp == ack) {
          *pp = ack->next_kept;
          break;
        }
      }
    }
    free(ack);
  }
  return rc;
}

int wsio_ack_send(wsio_ack *ack, const char *json_args) {
  if (!ack || ack->answered) return WSIO_EINVAL;
  wsio_socket *s = ack->s;
  if (!s || !s->connected) return ack_finish(ack, WSIO_ECLOSED);
  int rc = sio_encode_json(s->nsp->io, SIO_ACK, s->nsp, ack->id, NULL, json_args);
  if (rc == 0) rc = send_scratch(s, NULL, 0);
  return ack_finish(ack, rc);
}

int wsio_ack_sendv(wsio_ack *ack, const wsio_value *vals, size_t n) {
  if (!ack || ack->answered) return WSIO_EINVAL;
  wsio_socket *s = ack->s;
  if (!s || !s->connected) return ack_finish(ack, WSIO_ECLOSED);
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_values(s->nsp->io, SIO_ACK, s->nsp, ack->id, NULL, vals, n, atts, &natts);
  if (rc == 0) rc = send_scratch(s, atts, natts);
  return ack_finish(ack, rc);
}

int wsio_ack_send_args(wsio_ack *ack, const wsio_args *args) {
  if (!ack || ack->answered || !args) return WSIO_EINVAL;
  wsio_socket *s = ack->s;
  if (!s || !s->connected) return ack_finish(ack, WSIO_ECLOSED);
  sio_bin atts[SIO_MAX_ARGS_STACK];
  size_t natts;
  int rc = sio_encode_args(s->nsp->io, SIO_ACK, s->nsp, ack->id, NULL, args, atts, &natts);
  if (rc == 0) rc = send_scratch(s, atts, natts);
  return ack_finish(ack, rc);
}

wsio_ack *wsio_ack_keep(wsio_ack *ack) {
  if (!ack || ack->answered || !ack->s) return NULL;
  if (ack->kept) return ack;
  wsio_ack *k = malloc(sizeof *k);
  if (!k) return NULL;
  *k = *ack;
  k->kept = 1;
  k->next_kept = ack->s->kept;
  ack->s->kept = k;
  ack->answered = 1; /* the borrowed one may no longer answer */
  return k;
}

void wsio_ack_drop(wsio_ack *ack) {
  if (ack && ack->kept && !ack->answered) ack_finish(ack, 0);
}
