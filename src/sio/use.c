/*
 * socket.use: middlewares for the events a socket receives (wsio_socket_use, wsio_nsp_use_events),
 * socket.on("error") for the events they refuse, and socket.onAnyOutgoing for the events it is sent.
 *
 * A middleware gets a next on the stack. Answered before it returns (the common case), the loop goes on to
 * the next middleware without an allocation. Kept (wsio_event_next_keep), the event is copied into one
 * allocation that the application answers later; the socket lists its kept events so that its end can let
 * go of them, and caps their number so that a client cannot make it hold an unbounded backlog.
 */
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"
#include "util/log.h"

static sio_socket_ext *ext_get(wsio_socket *s) {
  if (!s->ext) s->ext = calloc(1, sizeof *s->ext);
  return s->ext;
}

static int mw_add(sio_event_mw *list, unsigned *n, wsio_event_middleware fn, void *ud) {
  if (!fn) return WSIO_EINVAL;
  if (*n >= SIO_MAX_MIDDLEWARES) return WSIO_ELIMIT;
  list[(*n)++] = (sio_event_mw){fn, ud};
  return 0;
}

int wsio_socket_use(wsio_socket *s, wsio_event_middleware mw, void *ud) {
  if (!s) return WSIO_EINVAL;
  sio_socket_ext *x = ext_get(s);
  return x ? mw_add(x->mw, &x->nmw, mw, ud) : WSIO_ENOMEM;
}

int wsio_nsp_use_events(wsio_nsp *n, wsio_event_middleware mw, void *ud) {
  if (!n) return WSIO_EINVAL;
  return mw_add(n->emw, &n->nemw, mw, ud);
}

void wsio_socket_on_error(wsio_socket *s, wsio_socket_error_cb cb, void *ud) {
  if (!s || (!cb && !s->ext)) return;
  sio_socket_ext *x = ext_get(s);
  if (!x) return;
  x->on_error = cb;
  x->on_error_ud = ud;
}

void wsio_nsp_on_error(wsio_nsp *n, wsio_socket_error_cb cb, void *ud) {
  if (!n) return;
  n->on_error = cb;
  n->on_error_ud = ud;
}

/* Dynamic namespaces take their handlers from the parent, middlewares included. */
static const wsio_nsp *owner(const wsio_nsp *n) { return n->parent ? n->parent : n; }

/* The middleware at index over the namespace's then the socket's, or NULL past the last. */
static const sio_event_mw *mw_at(const wsio_socket *s, unsigned index) {
  const wsio_nsp *o = owner(s->nsp);
  if (index < o->nemw) return &o->emw[index];
  index -= o->nemw;
  return s->ext && index < s->ext->nmw ? &s->ext->mw[index] : NULL;
}

/* From middleware index on, then the handlers, while every middleware answers before it returns. */
static void run_from(wsio_socket *s, const wsio_args *a, size_t name_len, wsio_ack *ack, unsigned index) {
  for (;; index++) {
    if (!s->connected) return; /* a middleware or handler disconnected it */
    const sio_event_mw *m = mw_at(s, index);
    if (!m) {
      sio_socket_dispatch(s, a, name_len, ack);
      return;
    }
    wsio_event_next next = {.s = s, .index = index, .args = a, .ack = ack, .ack_id = -1, .name_len = name_len};
    m->fn(s, a, ack, &next, m->ud);
    if (next.state != SIO_EVN_OK) return; /* refused, kept, or left alone (dropped, as in socket.io) */
  }
}

int sio_event_mw_run(wsio_socket *s, const wsio_args *a, size_t name_len, wsio_ack *ack) {
  if (!mw_at(s, 0)) return 0;
  run_from(s, a, name_len, ack, 0);
  return 1;
}

static void kept_unlink(wsio_event_next *k) {
  if (!k->kept_prev) return;
  *k->kept_prev = k->kept_next;
  if (k->kept_next) k->kept_next->kept_prev = k->kept_prev;
  k->kept_prev = NULL;
  k->kept_next = NULL;
  if (k->s && k->s->ext) k->s->ext->nkept--;
}

static void kept_free(wsio_event_next *k) {
  kept_unlink(k);
  free((void *)k->args);
  free(k);
}

wsio_event_next *wsio_event_next_keep(wsio_event_next *next) {
  if (!next || next->kept || next->state != SIO_EVN_PENDING || !next->s) return NULL;
  wsio_socket *s = next->s;
  next->state = SIO_EVN_KEPT; /* the borrowed one is spent either way: run_from stops */
  sio_socket_ext *x = ext_get(s);
  if (!x || x->nkept >= WSIO_MAX_KEPT_EVENTS) {
    log_debug("socket %s: event dropped, %s", s->id, x ? "too many kept events" : "out of memory");
    return NULL;
  }
  wsio_event_next *k = malloc(sizeof *k);
  wsio_args *copy = k ? sio_args_copy(next->args) : NULL;
  if (!copy) {
    free(k);
    return NULL;
  }
  *k = (wsio_event_next){.s = s, .index = next->index, .kept = 1, .args = copy, .ack_id = -1};
  if (next->ack && !next->ack->answered) k->ack_id = next->ack->id;
  /* The name copy ends at its first NUL: a name holding one then matches no named handler, as before. */
  k->name_len = strlen(copy->event) == next->name_len ? next->name_len : 0;
  k->kept_next = x->kept;
  k->kept_prev = &x->kept;
  if (x->kept) x->kept->kept_prev = &k->kept_next;
  x->kept = k;
  x->nkept++;
  return k;
}

void wsio_event_next_ok(wsio_event_next *next) {
  if (!next) return;
  if (!next->kept) {
    if (next->state == SIO_EVN_PENDING) next->state = SIO_EVN_OK;
    return;
  }
  wsio_socket *s = next->s;
  kept_unlink(next);
  if (s) {
    wsio_ack ack = {.s = s, .id = next->ack_id};
    run_from(s, next->args, next->name_len, next->ack_id >= 0 ? &ack : NULL, next->index + 1);
    /* A handler that kept the ack made its own copy (wsio_ack_keep): the stack one ends here. */
  }
  free((void *)next->args);
  free(next);
}

void wsio_event_next_error(wsio_event_next *next, const char *message, const char *data_json) {
  if (!next) return;
  wsio_socket *s = next->s;
  if (!next->kept) {
    if (next->state != SIO_EVN_PENDING) return;
    next->state = SIO_EVN_ERROR;
  }
  if (s && s->connected) {
    const char *msg = message ? message : "";
    const wsio_nsp *o = owner(s->nsp);
    int told = 0;
    if (o->on_error) {
      o->on_error(s, msg, data_json, o->on_error_ud);
      told = 1;
    }
    if (s->connected && s->ext && s->ext->on_error) {
      s->ext->on_error(s, msg, data_json, s->ext->on_error_ud);
      told = 1;
    }
    if (!told) log_debug("socket %s: event \"%s\" refused by a middleware: %s", s->id, next->args->event, msg);
  }
  if (next->kept) kept_free(next);
}

void sio_socket_ext_end(wsio_socket *s) {
  if (!s->ext) return;
  /* The application still holds its kept events: they stay allocated until it answers them. */
  for (wsio_event_next *k = s->ext->kept; k; k = k->kept_next) k->s = NULL;
  while (s->ext->kept) kept_unlink(s->ext->kept);
  s->ext->nkept = 0;
}

void sio_socket_ext_free(wsio_socket *s) {
  if (!s->ext) return;
  sio_socket_ext_end(s);
  sio_handlers_free(s->ext->any_out);
  free(s->ext);
  s->ext = NULL;
}

/* ---- socket.onAnyOutgoing ---- */

int wsio_socket_on_any_outgoing(wsio_socket *s, wsio_event_cb cb, void *ud) {
  if (!s) return WSIO_EINVAL;
  sio_socket_ext *x = ext_get(s);
  if (!x) return WSIO_ENOMEM;
  int rc = sio_handler_add(&x->any_out, NULL, cb, ud);
  if (rc == 0) s->nsp->io->any_out = 1;
  return rc;
}

int wsio_nsp_on_any_outgoing(wsio_nsp *n, wsio_event_cb cb, void *ud) {
  if (!n) return WSIO_EINVAL;
  int rc = sio_handler_add(&n->any_out, NULL, cb, ud);
  if (rc == 0) n->io->any_out = 1;
  return rc;
}

void sio_socket_outgoing(wsio_socket *s, const char *text, size_t len, const sio_bin *atts, size_t natts) {
  const sio_handler *nh = owner(s->nsp)->any_out, *sh = s->ext ? s->ext->any_out : NULL;
  wsio_io *io = s->nsp->io;
  if ((!nh && !sh) || io->in_outgoing) return; /* what a handler sends is not reported again */
  /* Read back from what was encoded (once per receiver: only sockets with such handlers pay for it). */
  sio_packet pkt;
  if (sio_packet_decode(text, len, &s->nsp->io->limits, &pkt) != 0 || pkt.name.kind == SIO_JSON_NONE) return;
  if (pkt.attachments != natts) return;
  sio_arg stack[SIO_MAX_ARGS_STACK], *heap = NULL;
  char name_stack[256], *name;
  wsio_args a;
  if (sio_event_name(&pkt, name_stack, sizeof name_stack, &name) >= 0 &&
      sio_args_build(&pkt, natts ? atts : NULL, stack, &heap, &a) == 0) {
    a.event = name;
    /* text may be the io's scratch, still in use by a fan-out: a handler that emits gets a scratch of its
     * own. */
    buf saved = io->scratch;
    io->scratch = (buf){0};
    io->in_outgoing = 1;
    for (const sio_handler *h = nh; h; h = h->next) h->cb(s, &a, NULL, h->ud);
    for (const sio_handler *h = sh; h; h = h->next) h->cb(s, &a, NULL, h->ud);
    io->in_outgoing = 0;
    buf_free(&io->scratch);
    io->scratch = saved;
  }
  if (name != name_stack) free(name);
  free(heap);
}
