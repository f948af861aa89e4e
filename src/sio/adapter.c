/*
 * The sio side of the cluster adapter contract (sio/adapter.h), part one: attaching an adapter, handing
 * this server's operations to it, and applying a peer's operations to the local sockets. A peer's operation
 * is never handed back to the adapter: it reaches local sockets only, so no message loops between servers.
 * Requests that wait for answers live in cluster.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sio/internal.h"
#include "util/log.h"

int sio_adapter_attach(wsio_io *io, sio_adapter *a) {
  if (!io || !a || !a->vt) return WSIO_EINVAL;
  if (io->adapter) return WSIO_EEXISTS;
  a->io = io;
  io->adapter = a;
  /* Namespaces made before the attach are told now, as later ones will be ("/" is implied). */
  if (a->vt->nsp_created) {
    size_t i = 0;
    map_entry *e;
    while (map_next(&io->nsps, &i, &e)) {
      const wsio_nsp *n = e->value;
      if (n != io->main) a->vt->nsp_created(a, n->name);
    }
  }
  return 0;
}

sio_adapter *sio_adapter_of(const wsio_io *io) { return io ? io->adapter : NULL; }

void sio_cluster_nsp_created(wsio_nsp *n) {
  sio_adapter *a = n->io->adapter;
  if (a && a->vt->nsp_created && n != n->io->main) a->vt->nsp_created(a, n->name);
}

void sio_cluster_room_changed(wsio_nsp *n, const char *room, int sid_room, int exists) {
  sio_adapter *a = n->io->adapter;
  if (a && a->vt->room_changed) a->vt->room_changed(a, n->name, room, sid_room, exists);
}

/* ---- targets across servers ---- */

void sio_targets_of_op(const wsio_op *op, sio_targets *t, const char **except) {
  memset(t, 0, sizeof *t);
  t->nsp = op->nsp->name;
  t->rooms = op->rooms;
  t->nrooms = op->nrooms;
  for (unsigned i = 0; i < op->nexcept; i++) except[i] = op->except[i];
  t->nexcept = op->nexcept;
  /* socket.broadcast: the sender is excepted through its own room. */
  if (op->except_socket) except[t->nexcept++] = op->except_socket->id;
  t->except = except;
  t->flags = op->flags & (WSIO_OP_VOLATILE | WSIO_OP_NOCOMPRESS);
}

/* The local selection for a peer's targets; 0 when the namespace does not exist here (nothing to do). */
static int sel_of_targets(wsio_io *io, const sio_targets *t, sio_sel *sel) {
  memset(sel, 0, sizeof *sel);
  wsio_nsp *n = map_get(&io->nsps, t->nsp, strlen(t->nsp));
  if (!n) return 0;
  sel->nsp = n;
  sel->rooms = t->rooms;
  sel->nrooms = t->nrooms;
  sel->except = t->except;
  sel->nexcept = t->nexcept;
  sel->flags = t->flags & (WSIO_OP_VOLATILE | WSIO_OP_NOCOMPRESS);
  return 1;
}

static int targets_valid(const sio_targets *t) {
  if (!t || !t->nsp || t->nsp[0] != '/' || (t->nrooms && !t->rooms) || (t->nexcept && !t->except)) return 0;
  for (size_t i = 0; i < t->nrooms; i++)
    if (!t->rooms[i]) return 0;
  for (size_t i = 0; i < t->nexcept; i++)
    if (!t->except[i]) return 0;
  return 1;
}

/* ---- this server's operations, handed to the adapter ---- */

void sio_cluster_forward_broadcast(const wsio_op *op, const sio_bin *atts, size_t natts) {
  wsio_io *io = op->nsp->io;
  sio_adapter *a = io->adapter;
  if (!a || !a->vt->broadcast) return;
  const char *except[WSIO_OP_MAX_ROOMS + 1];
  sio_targets t;
  sio_targets_of_op(op, &t, except);
  int rc = a->vt->broadcast(a, &t, (const char *)io->scratch.data, io->scratch.len, atts, natts);
  if (rc < 0) log_debug("socket.io: the adapter did not take a broadcast: %s", wsio_strerror(rc));
}

int sio_cluster_forward_broadcast_offset(const wsio_op *op, const sio_bin *atts, size_t natts) {
  wsio_io *io = op->nsp->io;
  sio_adapter *a = io->adapter;
  const char *except[WSIO_OP_MAX_ROOMS + 1];
  sio_targets t;
  sio_targets_of_op(op, &t, except);
  int rc = a->vt->broadcast_offset(a, &t, (const char *)io->scratch.data, io->scratch.len, atts, natts);
  if (rc < 0) log_debug("socket.io: the adapter did not take a broadcast: %s", wsio_strerror(rc));
  return rc;
}

void sio_cluster_forward_sockets(const wsio_op *op, int what, const char *room, int close) {
  sio_adapter *a = op->nsp->io->adapter;
  const char *except[WSIO_OP_MAX_ROOMS + 1];
  sio_targets t;
  sio_targets_of_op(op, &t, except);
  int rc = 0;
  if (what == SIO_CLUSTER_JOIN && a->vt->sockets_join) rc = a->vt->sockets_join(a, &t, room);
  else if (what == SIO_CLUSTER_LEAVE && a->vt->sockets_leave) rc = a->vt->sockets_leave(a, &t, room);
  else if (what == SIO_CLUSTER_DISCONNECT && a->vt->disconnect_sockets) rc = a->vt->disconnect_sockets(a, &t, close);
  if (rc < 0) log_debug("socket.io: the adapter did not take a sockets operation: %s", wsio_strerror(rc));
}

/* ---- a peer's operations, applied here ---- */

/* Decodes a peer's packet: an event for t's namespace, with natts attachments; an ack id exactly when
 * want_id. */
static int peer_packet(const sio_targets *t, const char *pkt, size_t len, size_t natts, int want_id,
                       sio_packet *p) {
  if (!pkt || natts > 1000) return WSIO_EPROTO;
  sio_packet_limits lim = {.max_attachments = natts ? (unsigned)natts : 1, .max_depth = SIO_JSON_DEPTH_MAX};
  if (sio_packet_decode(pkt, len, &lim, p) != 0) return WSIO_EPROTO;
  if (p->type != SIO_EVENT && p->type != SIO_BINARY_EVENT) return WSIO_EPROTO;
  if (p->attachments != natts || (want_id ? p->id < 0 : p->id >= 0)) return WSIO_EPROTO;
  if (p->nsp_len != strlen(t->nsp) || memcmp(p->nsp, t->nsp, p->nsp_len) != 0) return WSIO_EPROTO;
  return 0;
}

int sio_cluster_broadcast(wsio_io *io, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                          size_t natts) {
  return sio_cluster_broadcast_at(io, t, pkt, len, atts, natts, NULL);
}

int sio_cluster_broadcast_at(wsio_io *io, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                             size_t natts, const char *offset) {
  if (!io || !targets_valid(t) || (natts && !atts)) return WSIO_EINVAL;
  sio_packet p;
  if (peer_packet(t, pkt, len, natts, 0, &p) != 0) {
    io->parse_errors++;
    return WSIO_EPROTO;
  }
  sio_sel sel;
  if (!sel_of_targets(io, t, &sel)) return 0;
  sel.offset = offset;
  /* The peer's text as it came: one eio message for every local target, as for a local broadcast. */
  io->scratch.len = 0;
  if (buf_append(&io->scratch, pkt, len) != 0) return WSIO_ENOMEM;
  return sio_fan_out(&sel, atts, natts, NULL, -1);
}

int sio_cluster_broadcast_ack(wsio_io *io, const sio_targets *t, const char *pkt, size_t len,
                              const sio_bin *atts, size_t natts, uint32_t timeout_ms,
                              sio_cluster_reply_fn on_reply, sio_cluster_end_fn on_end, void *ctx) {
  if (!io || !targets_valid(t) || (natts && !atts) || !on_reply || !on_end) return WSIO_EINVAL;
  sio_packet p;
  if (peer_packet(t, pkt, len, natts, 1, &p) != 0) {
    io->parse_errors++;
    return WSIO_EPROTO;
  }
  sio_sel sel;
  int here = sel_of_targets(io, t, &sel); /* no such namespace here: no client, on_end all the same */
  sel.timeout_ms = timeout_ms;
  sio_bcast_wait *b = calloc(1, sizeof *b);
  if (!b) return WSIO_ENOMEM;
  b->io = io;
  b->on_reply = on_reply;
  b->on_end = on_end;
  b->ctx = ctx;
  b->waits = 1;         /* this call's */
  b->peers_pending = 1; /* nothing completes (no on_end) before this call returns */
  uint64_t rid = sio_cluster_request_bcast(io, b, timeout_ms ? timeout_ms : io->cfg.ack_timeout_ms);
  /* Clients answer to an id of this server's: the peer's id could collide with one a socket here awaits. */
  sio_packet hdr = p;
  hdr.id = io->next_id++;
  io->scratch.len = 0;
  int sent = rid ? 0 : WSIO_ENOMEM;
  if (sent == 0 && here) sent = sio_packet_encode(&io->scratch, &hdr);
  if (sent == 0 && here) sent = sio_fan_out(&sel, atts, natts, b, hdr.id);
  if (sent < 0) {
    b->on_end = NULL; /* refused: neither callback runs */
    b->cb = NULL;
    b->done = 1;
    if (rid) sio_cluster_request_drop(io, rid);
    sio_bcast_release(b);
    return sent;
  }
  int count = (int)b->expected;
  b->peers_pending = 0;
  /* No client to wait for: on_end runs from the next tick, after this returns. */
  if (b->expected == 0) sio_cluster_request_expire(io, rid);
  sio_bcast_release(b);
  return count;
}

/* A peer's broadcast: a local client's answer as the ACK's JSON array and its attachments. */
void sio_cluster_reply_args(sio_bcast_wait *b, const wsio_args *a) {
  buf j = {0};
  int rc = buf_append(&j, "[", 1);
  for (size_t i = 0; rc == 0 && i < a->n; i++) {
    if (i && (rc = buf_append(&j, ",", 1)) != 0) break;
    const sio_arg *v = &a->v[i];
    if (v->kind == SIO_ARG_JSON) {
      rc = buf_append(&j, v->json.p, v->json.len);
      continue;
    }
    char ph[64];
    int n = snprintf(ph, sizeof ph, "{\"_placeholder\":true,\"num\":%zu}", sio_args_att_index(a, v));
    rc = buf_append(&j, ph, (size_t)n);
  }
  if (rc == 0) rc = buf_append(&j, "]", 1);
  if (rc == 0) b->on_reply(b->ctx, (const char *)j.data, j.len, a->atts, a->natts);
  buf_free(&j);
}

/* The local sockets a peer's targets name (x->v to free). Returns the count or a negative code. */
int sio_cluster_collect(wsio_io *io, const sio_targets *t, wsio_socket ***out) {
  *out = NULL;
  if (!io || !targets_valid(t)) return WSIO_EINVAL;
  sio_sel sel;
  if (!sel_of_targets(io, t, &sel)) return 0;
  sio_collect_ctx x = {0};
  sio_each(&sel, sio_collect, &x);
  if (x.oom) {
    free(x.v);
    return WSIO_ENOMEM;
  }
  *out = x.v;
  return (int)x.n;
}

static int sockets_op(wsio_io *io, const sio_targets *t, int what, const char *room, int close) {
  if (what != SIO_CLUSTER_DISCONNECT && !room) return WSIO_EINVAL;
  wsio_socket **v;
  int n = sio_cluster_collect(io, t, &v);
  if (n <= 0) return n;
  if (what == SIO_CLUSTER_DISCONNECT)
    for (int i = 0; i < n; i++) v[i]->epoch = 0; /* as wsio_op_disconnect_sockets: each handled while alive */
  for (int i = 0; i < n; i++) {
    if (what == SIO_CLUSTER_JOIN) wsio_socket_join(v[i], room);
    else if (what == SIO_CLUSTER_LEAVE) wsio_socket_leave(v[i], room);
    else if (!v[i]->closing) wsio_socket_disconnect(v[i], close);
  }
  free(v);
  return n;
}

int sio_cluster_sockets_join(wsio_io *io, const sio_targets *t, const char *room) {
  return sockets_op(io, t, SIO_CLUSTER_JOIN, room, 0);
}

int sio_cluster_sockets_leave(wsio_io *io, const sio_targets *t, const char *room) {
  return sockets_op(io, t, SIO_CLUSTER_LEAVE, room, 0);
}

int sio_cluster_disconnect_sockets(wsio_io *io, const sio_targets *t, int close) {
  return sockets_op(io, t, SIO_CLUSTER_DISCONNECT, NULL, close);
}

int sio_cluster_fetch(wsio_io *io, const sio_targets *t, sio_cluster_socket_fn fn, void *ctx) {
  if (!fn) return WSIO_EINVAL;
  wsio_socket **v;
  int n = sio_cluster_collect(io, t, &v);
  if (n <= 0) return n;
  sio_socket_view view = {0};
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    sio_socket_info info;
    if ((rc = sio_socket_view_build(&view, v[i], &info)) == 0) fn(ctx, &info);
  }
  sio_socket_view_free(&view);
  free(v);
  return rc ? rc : n;
}

/* ---- a socket as other servers see it ---- */

/* Request headers as an object; a repeated header's values joined with ", " as Node does. */
static int headers_json(buf *b, const char *headers) {
  int rc = buf_append(b, "{", 1);
  int first = 1;
  for (const char *p = headers; rc == 0 && *p;) {
    size_t nl = strlen(p);
    const char *v = p + nl + 1;
    const char *next = v + strlen(v) + 1;
    int seen = 0;
    for (const char *r = headers; r < p && !seen;) {
      const char *rv = r + strlen(r) + 1;
      seen = strcmp(r, p) == 0;
      r = rv + strlen(rv) + 1;
    }
    if (!seen) {
      if (!first) rc = buf_append(b, ",", 1);
      first = 0;
      if (rc == 0) rc = sio_json_write_string_lossy(b, p, nl);
      if (rc == 0) rc = buf_append(b, ":", 1);
      /* The value: this one and every later one of the same name. */
      buf joined = {0};
      for (const char *r = p; rc == 0 && *r;) {
        const char *rv = r + strlen(r) + 1;
        if (strcmp(r, p) == 0) {
          if (joined.len) rc = buf_append(&joined, ", ", 2);
          if (rc == 0) rc = buf_append(&joined, rv, strlen(rv));
        }
        r = rv + strlen(rv) + 1;
      }
      if (rc == 0) rc = sio_json_write_string_lossy(b, joined.len ? (const char *)joined.data : "", joined.len);
      buf_free(&joined);
    }
    p = next;
  }
  if (rc == 0) rc = buf_append(b, "}", 1);
  return rc;
}

/* socket.handshake as socket.io's adapters send it. */
static int handshake_json(buf *b, const wsio_socket *s) {
  const sio_client *c = s->client;
  const wsio_handshake *hs = &c->hs;
  char line[160];
  char date[96] = "";
  time_t secs = (time_t)(hs->time / 1000);
  struct tm tm;
  if (localtime_r(&secs, &tm)) strftime(date, sizeof date, "%a %b %d %Y %H:%M:%S GMT%z (%Z)", &tm);
  int xdomain = 0;
  for (const char *p = c->headers; *p;) {
    const char *v = p + strlen(p) + 1;
    xdomain |= strcmp(p, "origin") == 0;
    p = v + strlen(v) + 1;
  }
  int rc = buf_append(b, "{\"headers\":", 11);
  if (rc == 0) rc = headers_json(b, c->headers);
  if (rc == 0) rc = buf_append(b, ",\"time\":", 8);
  if (rc == 0) rc = sio_json_write_string_lossy(b, date, strlen(date));
  if (rc == 0) rc = buf_append(b, ",\"address\":", 11);
  if (rc == 0) rc = sio_json_write_string_lossy(b, hs->address, strlen(hs->address));
  int n = snprintf(line, sizeof line, ",\"xdomain\":%s,\"secure\":%s,\"issued\":%lld,\"url\":",
                   xdomain ? "true" : "false", hs->secure ? "true" : "false", (long long)hs->time);
  if (rc == 0) rc = buf_append(b, line, (size_t)n);
  if (rc == 0) rc = sio_json_write_string_lossy(b, hs->url, strlen(hs->url));
  if (rc == 0) rc = buf_append(b, ",\"query\":", 9);
  if (rc == 0) rc = sio_query_json(b, hs->query, strlen(hs->query));
  if (rc == 0) rc = buf_append(b, ",\"auth\":", 8);
  if (rc == 0) rc = buf_append(b, s->auth, strlen(s->auth));
  if (rc == 0) rc = buf_append(b, "}", 2); /* with the NUL */
  if (rc == 0) b->len--;
  return rc;
}

int sio_socket_view_build(sio_socket_view *view, wsio_socket *s, sio_socket_info *out) {
  size_t need = s->nrooms + 1;
  if (need > view->cap) {
    const char **r = realloc(view->rooms, need * sizeof *r);
    if (!r) return WSIO_ENOMEM;
    view->rooms = r;
    view->cap = need;
  }
  view->rooms[0] = s->id;
  for (size_t i = 0; i < s->nrooms; i++) view->rooms[i + 1] = s->rooms[i].room->name;
  view->hs.len = 0;
  int rc = handshake_json(&view->hs, s);
  if (rc) return rc;
  out->id = s->id;
  out->rooms = view->rooms;
  out->nrooms = need;
  out->handshake_json = (const char *)view->hs.data;
  out->data_json = s->data_json ? s->data_json : "null";
  if (s->nsp->io->admin) {
    view->data.len = 0;
    if ((rc = sio_admin_peer_data(s, &view->data)) != 0 || (rc = buf_append(&view->data, "", 1)) != 0) return rc;
    out->data_json = (const char *)view->data.data;
  }
  return 0;
}

void sio_socket_view_free(sio_socket_view *view) {
  free(view->rooms);
  buf_free(&view->hs);
  buf_free(&view->data);
}
