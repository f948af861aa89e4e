/* wsio_socket: one client in one namespace — connect and middlewares, events, acks, rooms, disconnect. */
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"
#include "util/log.h"

/* ---- rooms ---- */

static const wsio_nsp *owner(const wsio_nsp *n);

/* The adapter's room events (create-room, join-room, leave-room, delete-room), once the change is made, and
 * the Admin UI's room_joined / room_left. s: the socket that joins or leaves; NULL for create and delete. */
static void room_event(wsio_nsp *n, wsio_room_event ev, const char *room, wsio_socket *s) {
  const wsio_nsp *o = owner(n);
  if (o->on_room) o->on_room(n, ev, room, s ? s->id : NULL, o->on_room_ud);
  if (s && n->io->admin) sio_admin_room(s, ev == WSIO_ROOM_JOIN, room);
}

/* A new room, empty, in n. NULL on ENOMEM. */
static sio_room *room_new(wsio_nsp *n, const char *name, size_t len) {
  sio_room *r = calloc(1, sizeof *r);
  if (!r || !(r->name = malloc(len + 1))) {
    free(r);
    return NULL;
  }
  memcpy(r->name, name, len);
  r->name[len] = 0;
  r->len = len;
  if (map_put(&n->rooms, r->name, len, r) != 0) {
    free(r->name);
    free(r);
    return NULL;
  }
  return r;
}

int sio_room_add(wsio_socket *s, const char *room, size_t len) {
  wsio_nsp *n = s->nsp;
  for (size_t i = 0; i < s->nrooms; i++)
    if (s->rooms[i].room->len == len && memcmp(s->rooms[i].room->name, room, len) == 0) return 0;
  if (s->nrooms >= n->io->cfg.max_rooms_per_socket) {
    n->io->rooms_refused++;
    return WSIO_ELIMIT;
  }
  if (s->nrooms == s->rooms_cap) {
    size_t cap = s->rooms_cap ? s->rooms_cap * 2 : 2;
    sio_membership *m = realloc(s->rooms, cap * sizeof *m);
    if (!m) return WSIO_ENOMEM;
    s->rooms = m;
    s->rooms_cap = cap;
  }
  sio_room *r = map_get(&n->rooms, room, len);
  int created = !r;
  if (!r && !(r = room_new(n, room, len))) return WSIO_ENOMEM;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4;
    sio_member *m = realloc(r->members, cap * sizeof *m);
    if (!m) return WSIO_ENOMEM;
    r->members = m;
    r->cap = cap;
  }
  r->members[r->n] = (sio_member){s, s->nrooms};
  s->rooms[s->nrooms] = (sio_membership){r, r->n};
  r->n++;
  s->nrooms++;
  if (r->n == 1 && n->io->adapter) sio_cluster_room_changed(n, r->name, 0, 1);
  if (created) room_event(n, WSIO_ROOM_CREATE, r->name, NULL);
  room_event(n, WSIO_ROOM_JOIN, r->name, s);
  return 0;
}

/* Removes membership i of s (swap-remove on both sides, fixing the back-indices of what moved). */
static void membership_drop(wsio_socket *s, size_t i) {
  sio_membership m = s->rooms[i];
  sio_room *r = m.room;
  r->n--;
  if (m.index != r->n) {
    r->members[m.index] = r->members[r->n];
    sio_member *moved = &r->members[m.index];
    moved->s->rooms[moved->slot].index = m.index;
  }
  s->nrooms--;
  if (i != s->nrooms) {
    s->rooms[i] = s->rooms[s->nrooms];
    s->rooms[i].room->members[s->rooms[i].index].slot = i;
  }
  room_event(s->nsp, WSIO_ROOM_LEAVE, r->name, s);
  if (r->n == 0) {
    map_del(&s->nsp->rooms, r->name, r->len);
    if (s->nsp->io->adapter) sio_cluster_room_changed(s->nsp, r->name, 0, 0);
    room_event(s->nsp, WSIO_ROOM_DELETE, r->name, NULL);
    free(r->members);
    free(r->name);
    free(r);
  }
}

void sio_room_remove(wsio_socket *s, const char *room, size_t len) {
  for (size_t i = 0; i < s->nrooms; i++) {
    if (s->rooms[i].room->len == len && memcmp(s->rooms[i].room->name, room, len) == 0) {
      membership_drop(s, i);
      return;
    }
  }
}

int wsio_socket_join(wsio_socket *s, const char *room) {
  if (!s || !room || !s->connected) return WSIO_EINVAL;
  if (strcmp(room, s->id) == 0) return 0; /* its own room is implicit */
  return sio_room_add(s, room, strlen(room));
}

int wsio_socket_leave(wsio_socket *s, const char *room) {
  if (!s || !room) return WSIO_EINVAL;
  sio_room_remove(s, room, strlen(room));
  return 0;
}

int wsio_socket_in(const wsio_socket *s, const char *room) {
  size_t len = strlen(room);
  if (strcmp(room, s->id) == 0) return 1;
  for (size_t i = 0; i < s->nrooms; i++)
    if (s->rooms[i].room->len == len && memcmp(s->rooms[i].room->name, room, len) == 0) return 1;
  return 0;
}

size_t wsio_socket_rooms(const wsio_socket *s, const char **out, size_t cap) {
  size_t n = 0;
  if (cap > 0 && s->connected) out[n] = s->id;
  if (s->connected) n++;
  for (size_t i = 0; i < s->nrooms; i++, n++)
    if (n < cap) out[n] = s->rooms[i].room->name;
  return n;
}

/* ---- connect ---- */

wsio_socket *sio_socket_new(sio_client *c, wsio_nsp *nsp, const char *auth, size_t auth_len) {
  wsio_socket *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->client = c;
  s->nsp = nsp;
  s->id = s->id_buf;
  if (!auth || !auth_len) {
    auth = "{}";
    auth_len = 2;
  }
  if (!(s->auth = malloc(auth_len + 1))) {
    free(s);
    return NULL;
  }
  memcpy(s->auth, auth, auth_len);
  s->auth[auth_len] = 0;
  s->client_next = c->sockets;
  c->sockets = s;
  return s;
}

static const wsio_nsp *owner(const wsio_nsp *n) { return n->parent ? n->parent : n; }

/* socket.io's ids for protocol v4 clients: the Engine.IO id in "/", "<nsp>#<engine id>" elsewhere. */
static int v3_id(wsio_socket *s) {
  const char *eid = s->client->eio ? eio_socket_id(s->client->eio) : NULL;
  if (!eid) return WSIO_ECLOSED;
  wsio_nsp *n = s->nsp;
  if (n->name_len == 1) {
    memcpy(s->id_buf, eid, sizeof s->id_buf);
    return 0;
  }
  char *id = malloc(n->name_len + 1 + EIO_SID_LEN + 1);
  if (!id) return WSIO_ENOMEM;
  memcpy(id, n->name, n->name_len);
  id[n->name_len] = '#';
  memcpy(id + n->name_len + 1, eid, EIO_SID_LEN + 1);
  s->id = id;
  return 0;
}

void sio_socket_connect(wsio_socket *s) {
  wsio_nsp *n = s->nsp;
  wsio_io *io = n->io;
  int v3 = s->client->v3;
  if (io->rec && !v3 && !s->pid[0]) { /* no recovery for v3 clients: their CONNECT carries no pid */
    if (eio_sid_generate(s->pid) != 0) s->pid[0] = 0;
    s->seq = io->rec ? sio_recovery_current(io) : 0;
  }
  int rc = v3 ? v3_id(s) : s->recovered ? 0 : eio_sid_generate(s->id_buf);
  s->id_len = strlen(s->id);
  if (rc != 0 || map_put(&n->by_id, s->id, s->id_len, s) != 0) {
    sio_socket_end(s, "forced close", 0);
    return;
  }
  if (n->nsockets == n->cap) {
    size_t cap = n->cap ? n->cap * 2 : 16;
    wsio_socket **a = realloc(n->sockets, cap * sizeof *a);
    if (!a) {
      map_del(&n->by_id, s->id, s->id_len);
      sio_socket_end(s, "forced close", 0);
      return;
    }
    n->sockets = a;
    n->cap = cap;
  }
  s->nsp_index = n->nsockets;
  n->sockets[n->nsockets++] = s;
  s->connected = 1;
  if (io->adapter) sio_cluster_room_changed(n, s->id, 1, 1);
  /* Its own room, joined first as socket.io does (before the CONNECT goes out). */
  room_event(n, WSIO_ROOM_CREATE, s->id, NULL);
  room_event(n, WSIO_ROOM_JOIN, s->id, s);
  buf *b = &io->scratch;
  b->len = 0;
  if (v3) { /* protocol v4's CONNECT carries nothing: the client knows its id from the Engine.IO one */
    sio_packet connect = {.type = SIO_CONNECT, .nsp = n->name, .nsp_len = n->name_len, .id = -1};
    sio_packet_encode(b, &connect);
  } else {
    sio_packet_encode_connect(b, n->name, n->name_len, s->id, EIO_SID_LEN, s->pid[0] ? s->pid : NULL,
                              s->pid[0] ? EIO_SID_LEN : 0);
  }
  sio_client_send(s->client, (const char *)b->data, b->len, NULL, 0);
  if (s->restore) sio_recovery_apply(s);
  /* instrument() hears of it first: its connection listener is prepended to the application's. */
  if (io->admin) sio_admin_connected(s);
  const wsio_nsp *o = owner(n);
  if (o->on_conn) o->on_conn(s, o->on_conn_ud);
}

static void run_middleware(wsio_socket *s, unsigned index) {
  const wsio_nsp *o = owner(s->nsp);
  if (index >= o->nmw) {
    sio_socket_connect(s);
    return;
  }
  wsio_next *next = malloc(sizeof *next);
  if (!next) {
    sio_socket_end(s, "forced close", 0);
    return;
  }
  next->s = s;
  next->index = index;
  s->next = next;
  o->mw[index].fn(s, next, o->mw[index].ud);
}

void sio_socket_start(wsio_socket *s) { run_middleware(s, 0); }

void wsio_next_ok(wsio_next *next) {
  if (!next) return;
  wsio_socket *s = next->s;
  unsigned index = next->index;
  free(next);
  if (!s) return;
  s->next = NULL;
  run_middleware(s, index + 1);
}

/* A refused v3 client gets what socket.io sends protocol 3: the error's data when it has (truthy) data, else
 * its message as a JSON string, as the whole CONNECT_ERROR payload (socket.io-client 2.x emits it as 'error'). */
static void v3_connect_error(buf *b, const wsio_nsp *n, const char *msg, const char *data_json) {
  sio_packet hdr = {.type = SIO_CONNECT_ERROR, .nsp = n->name, .nsp_len = n->name_len, .id = -1};
  size_t old = b->len;
  int rc = sio_packet_encode(b, &hdr);
  size_t dl = data_json ? strlen(data_json) : 0;
  sio_json_span v;
  if (rc == 0 && dl && sio_json_validate(data_json, dl, SIO_JSON_DEPTH_MAX, &v) == 0 && sio_json_truthy(&v))
    rc = buf_append(b, data_json, dl);
  else if (rc == 0)
    rc = sio_json_write_string(b, msg, strlen(msg));
  if (rc) b->len = old;
}

void wsio_next_error(wsio_next *next, const char *message, const char *data_json) {
  if (!next) return;
  wsio_socket *s = next->s;
  free(next);
  if (!s) return;
  s->next = NULL;
  wsio_io *io = s->nsp->io;
  buf *b = &io->scratch;
  b->len = 0;
  const char *msg = message ? message : "Unauthorized";
  if (s->client->v3) {
    v3_connect_error(b, s->nsp, msg, data_json);
  } else if (sio_packet_encode_connect_error(b, s->nsp->name, s->nsp->name_len, msg, strlen(msg), data_json,
                                             data_json ? strlen(data_json) : 0) != 0) {
    b->len = 0;
    sio_packet_encode_connect_error(b, s->nsp->name, s->nsp->name_len, msg, strlen(msg), NULL, 0);
  }
  sio_client_send(s->client, (const char *)b->data, b->len, NULL, 0);
  sio_socket_end(s, "server namespace disconnect", 0);
}

/* ---- events and acks in ---- */

/* The handlers of list for this event (name_len 0: every handler, an onAny list), in registration order, until
 * one of them disconnects the socket. */
static void call_handlers(wsio_socket *s, const sio_handler *h, const wsio_args *a, size_t name_len, wsio_ack *ack) {
  for (; h && s->connected; h = h->next)
    if (!name_len || (h->event_len == name_len && memcmp(h->event, a->event, name_len) == 0)) h->cb(s, a, ack, h->ud);
}

void sio_socket_dispatch(wsio_socket *s, const wsio_args *a, size_t name_len, wsio_ack *ack) {
  if (!name_len) return;
  const wsio_nsp *o = owner(s->nsp);
  call_handlers(s, o->handlers, a, name_len, ack);
  call_handlers(s, s->handlers, a, name_len, ack);
}

ssize_t sio_event_name(const sio_packet *pkt, char *stack, size_t cap, char **name) {
  size_t ncap = pkt->name.len + 1;
  ssize_t nl;
  *name = stack;
  if (ncap > cap && !(*name = malloc(ncap))) return WSIO_ENOMEM;
  const char *raw;
  size_t raw_len;
  if (pkt->name.kind == SIO_JSON_STRING && sio_json_string_raw(&pkt->name, &raw, &raw_len)) {
    nl = (ssize_t)raw_len; /* no escapes: the bytes between the quotes */
    memcpy(*name, raw, raw_len);
  } else if (pkt->name.kind == SIO_JSON_STRING) {
    nl = sio_json_string_decode(&pkt->name, *name, ncap);
    if (nl < 0) {
      if (*name != stack) free(*name);
      *name = stack;
      return nl;
    }
  } else {
    memcpy(*name, pkt->name.p, pkt->name.len); /* a number, as JavaScript clients may send */
    nl = (ssize_t)pkt->name.len;
  }
  (*name)[nl] = 0;
  return nl;
}

void sio_socket_event(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts) {
  sio_arg stack[SIO_MAX_ARGS_STACK];
  sio_arg *heap = NULL;
  wsio_args a;
  char name_stack[256];
  char *name;
  ssize_t nl = sio_event_name(pkt, name_stack, sizeof name_stack, &name);
  if (nl < 0) goto out;
  if (sio_args_build(pkt, atts, stack, &heap, &a) != 0) goto out;
  a.event = name;
  s->nsp->io->events_in++;
  /* Before any handler, as instrument()'s onAny listener, registered first, runs. */
  if (s->nsp->io->admin) sio_admin_event_in(s, pkt, atts);
  wsio_ack ack_stack = {.s = s, .id = pkt->id}, *ack = pkt->id >= 0 ? &ack_stack : NULL;
  /* As socket.io does: the onAny listeners first, then the event's; the namespace's before the socket's, as
   * handlers registered when it connected would be. No handler has an empty name ("" reaches onAny only). */
  const wsio_nsp *o = owner(s->nsp);
  if (o->any) call_handlers(s, o->any, &a, 0, ack);
  if (s->any) call_handlers(s, s->any, &a, 0, ack);
  /* socket.use middlewares, then the named handlers (socket.io runs onAny before the middlewares). */
  if (!(o->nemw || s->ext) || !sio_event_mw_run(s, &a, (size_t)nl, ack))
    sio_socket_dispatch(s, &a, (size_t)nl, ack);
  /* A kept ack was copied by wsio_ack_keep: the stack one ends here. */
out:
  if (name != name_stack) free(name);
  free(heap);
}

void sio_wait_fire(sio_ack_wait *w, int err, const wsio_args *args) {
  wsio_socket *s = w->s;
  wsio_io *io = s->nsp->io;
  /* Unlink from the io's list and the socket's. */
  if (w->prev) w->prev->next = w->next;
  else io->waits = w->next;
  if (w->next) w->next->prev = w->prev;
  for (sio_ack_wait **pp = &s->waits; *pp; pp = &(*pp)->snext) {
    if (*pp == w) {
      *pp = w->snext;
      break;
    }
  }
  s->nwaits--;
  if (w->bcast) {
    sio_bcast_settle(w->bcast, err, args); /* broadcast.c: the collector goes with its last reference */
  } else {
    w->cb(s, err, args, w->ud);
  }
  free(w);
}

void sio_socket_ack_in(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts) {
  sio_ack_wait *w = s->waits;
  while (w && w->id != pkt->id) w = w->snext;
  if (!w) return; /* unknown or late ack: ignored */
  sio_arg stack[SIO_MAX_ARGS_STACK], *heap;
  wsio_args a;
  if (sio_args_build(pkt, atts, stack, &heap, &a) == 0) sio_wait_fire(w, 0, &a);
  free(heap);
}

/* ---- handlers ---- */

int sio_handler_add(sio_handler **list, const char *event, wsio_event_cb cb, void *ud) {
  if (!cb) return WSIO_EINVAL;
  size_t len = event ? strlen(event) : 0;
  sio_handler *h = malloc(sizeof *h + len + 1);
  if (!h) return WSIO_ENOMEM;
  h->cb = cb;
  h->ud = ud;
  h->event_len = len;
  if (event) memcpy(h->event, event, len + 1);
  else h->event[0] = 0;
  h->next = NULL;
  sio_handler **pp = list;
  while (*pp) pp = &(*pp)->next; /* in registration order, as EventEmitter calls them */
  *pp = h;
  return 0;
}

int wsio_socket_on(wsio_socket *s, const char *event, wsio_event_cb cb, void *ud) {
  if (!s || !event || !*event) return WSIO_EINVAL;
  return sio_handler_add(&s->handlers, event, cb, ud);
}

int wsio_socket_on_any(wsio_socket *s, wsio_event_cb cb, void *ud) {
  if (!s) return WSIO_EINVAL;
  return sio_handler_add(&s->any, NULL, cb, ud);
}

int wsio_nsp_on(wsio_nsp *n, const char *event, wsio_event_cb cb, void *ud) {
  if (!n || !event || !*event) return WSIO_EINVAL;
  return sio_handler_add(&n->handlers, event, cb, ud);
}

int wsio_nsp_on_any(wsio_nsp *n, wsio_event_cb cb, void *ud) {
  if (!n) return WSIO_EINVAL;
  return sio_handler_add(&n->any, NULL, cb, ud);
}

void wsio_socket_on_disconnecting(wsio_socket *s, wsio_disconnect_cb cb, void *ud) {
  s->on_disconnecting = cb;
  s->disconnecting_ud = ud;
}

void wsio_socket_on_disconnect(wsio_socket *s, wsio_disconnect_cb cb, void *ud) {
  s->on_disconnect = cb;
  s->disconnect_ud = ud;
}

/* ---- disconnect ---- */

void sio_socket_end(wsio_socket *s, const char *reason, int notify) {
  if (s->closing) return;
  s->closing = 1;
  sio_client *c = s->client;
  wsio_nsp *n = s->nsp;
  wsio_io *io = n->io;
  int was_connected = s->connected;
  if (s->next) {
    s->next->s = NULL; /* a middleware still holds it: its call becomes a no-op */
    s->next = NULL;
  }
  if (was_connected) {
    if (notify && c->eio) {
      buf *b = &io->scratch;
      b->len = 0;
      sio_packet_encode_disconnect(b, n->name, n->name_len);
      sio_client_send(c, (const char *)b->data, b->len, NULL, 0);
    }
    if (s->on_disconnecting) s->on_disconnecting(s, reason, s->disconnecting_ud);
    if (io->rec) sio_recovery_save(s, reason);
    s->connected = 0;
    /* instrument() reports the disconnect before the rooms left (socket.io tells those on the next tick). */
    if (io->admin) sio_admin_disconnected(s, reason);
    /* socket.io leaves the socket's own room first, then the others. */
    room_event(n, WSIO_ROOM_LEAVE, s->id, s);
    room_event(n, WSIO_ROOM_DELETE, s->id, NULL);
    while (s->nrooms) membership_drop(s, s->nrooms - 1);
    map_del(&n->by_id, s->id, s->id_len);
    if (io->adapter) sio_cluster_room_changed(n, s->id, 1, 0);
    n->nsockets--;
    if (s->nsp_index != n->nsockets) {
      n->sockets[s->nsp_index] = n->sockets[n->nsockets];
      n->sockets[s->nsp_index]->nsp_index = s->nsp_index;
    }
    while (s->waits) sio_wait_fire(s->waits, WSIO_ECLOSED, NULL);
    if (s->on_disconnect) s->on_disconnect(s, reason, s->disconnect_ud);
  }
  sio_recovery_discard(s);
  for (wsio_ack *k = s->kept; k; k = k->next_kept) k->s = NULL;
  s->kept = NULL;
  sio_socket_ext_end(s);
  for (wsio_socket **pp = &c->sockets; *pp; pp = &(*pp)->client_next) {
    if (*pp == s) {
      *pp = s->client_next;
      break;
    }
  }
  s->dead_next = io->dead;
  io->dead = s;
}

void sio_handlers_free(sio_handler *h) {
  while (h) {
    sio_handler *next = h->next;
    free(h);
    h = next;
  }
}

void sio_socket_free(wsio_socket *s) {
  sio_socket_ext_free(s);
  sio_handlers_free(s->handlers);
  sio_handlers_free(s->any);
  free(s->rooms);
  free(s->auth);
  free(s->data_json);
  if (s->id != s->id_buf) free(s->id);
  free(s);
}

void wsio_socket_disconnect(wsio_socket *s, int close) {
  if (!s || s->closing) return;
  sio_client *c = s->client;
  sio_socket_end(s, "server namespace disconnect", 1);
  if (!close) return;
  /* As socket.io does: every namespace of the connection is told, then the connection closes. */
  while (c->sockets) sio_socket_end(c->sockets, "server namespace disconnect", 1);
  if (c->eio) eio_socket_close(c->eio, "forced server close");
}

/* ---- accessors ---- */

const char *wsio_socket_id(const wsio_socket *s) { return s->id; }
wsio_nsp *wsio_socket_nsp(const wsio_socket *s) { return s->nsp; }
void wsio_socket_set_data(wsio_socket *s, void *data) { s->data = data; }
void *wsio_socket_data(const wsio_socket *s) { return s->data; }
int wsio_socket_connected(const wsio_socket *s) { return s->connected; }
int wsio_socket_recovered(const wsio_socket *s) { return s->recovered; }

const char *wsio_socket_transport(const wsio_socket *s) {
  if (!s->client->eio) return "";
  return eio_socket_transport(s->client->eio) == EIO_WEBSOCKET ? "websocket" : "polling";
}

const wsio_handshake *wsio_socket_handshake(const wsio_socket *s) {
  wsio_handshake *hs = &s->client->hs;
  hs->auth = s->auth;
  return hs;
}

const char *wsio_socket_header(const wsio_socket *s, const char *name) {
  return sio_header_find(s->client->headers, name);
}
