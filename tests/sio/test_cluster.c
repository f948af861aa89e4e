/*
 * Socket.IO across servers: three wsio_servers (one loop thread each) with a wsio_io, linked by a small
 * in-memory adapter written here. The adapter implements sio_adapter_vt by queueing every operation to the
 * other servers' loops (a mutex-guarded queue and a uv_async per server) where it calls their
 * sio_cluster_* functions, as a real adapter does on receipt. Clients are raw WebSocket Engine.IO v4 /
 * Socket.IO v5 clients over loopback, reading and writing the wire protocol.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "api/raw_client.h"

#include "sio/adapter.h"
#include "sio/json.h"
#include "wsio.h"

#define NSRV 3
#define NCLI 6 /* two clients per server: client i is on server i / 2 */

/* ---- the in-memory adapter ---- */

enum {
  M_CALL, M_BCAST, M_BCAST_ACK, M_ACK_COUNT, M_ACK_REPLY, M_JOIN, M_LEAVE, M_DISC, M_FETCH, M_SOCKETS,
  M_SSE, M_SSE_ACK, M_COUNT
};

typedef void (*call_fn)(int srv, void *arg);

typedef struct tmsg {
  struct tmsg *next;
  int type, from;
  uint64_t rid;
  char *nsp;
  char **rooms, **except;
  size_t nrooms, nexcept;
  unsigned flags;
  char *room;
  int close;
  char *text;
  size_t len;
  sio_bin *atts;
  size_t natts;
  uint32_t timeout;
  size_t count;
  sio_socket_info *infos;
  size_t ninfos;
  call_fn fn;
  void *arg;
  int *done;
} tmsg;

typedef struct pending {
  uint64_t rid;
  int answers;
} pending;

typedef struct tadapter {
  sio_adapter base;
  int index;
  uv_async_t async;
  tmsg *head, *tail;           /* guarded by g->lock */
  pending pend[64];            /* this server's requests: answers counted per rid (loop thread only) */
  int mute;                    /* set: requests from peers are dropped unanswered */
  unsigned last_flags;         /* flags of the last peer broadcast received */
  int bcasts_in, eproto;       /* peer broadcasts applied, and refused as malformed */
  int ends;                    /* on_end calls of peers' broadcasts with acks */
} tadapter;

typedef struct fixture {
  wsio_server *s[NSRV];
  wsio_io *io[NSRV];
  tadapter *ad[NSRV];
  pthread_t thread[NSRV];
  int port[NSRV];
  pthread_mutex_t lock;
  int open;                    /* queues accept messages */
  int errors;
  int sse_calls[NSRV];         /* serverSideEmit handler runs per server */
  char sse_last[NSRV][128];
  char sse_tail[NSRV][32];     /* the last argument and the count, "json/n" */
} fixture;

static fixture *g;
static uint32_t recovery_ms[NSRV]; /* per server, for the group being set up */

static char *dup_n(const char *p, size_t n) {
  char *c = malloc(n + 1);
  memcpy(c, p, n);
  c[n] = 0;
  return c;
}

static char *dup_s(const char *s) { return s ? dup_n(s, strlen(s)) : NULL; }

static char **dup_v(const char *const *v, size_t n) {
  char **c = calloc(n ? n : 1, sizeof *c);
  for (size_t i = 0; i < n; i++) c[i] = dup_s(v[i]);
  return c;
}

static void free_v(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

static void msg_free(tmsg *m) {
  free(m->nsp);
  free_v(m->rooms, m->nrooms);
  free_v(m->except, m->nexcept);
  free(m->room);
  free(m->text);
  for (size_t i = 0; i < m->natts; i++) free((void *)m->atts[i].p);
  free(m->atts);
  for (size_t i = 0; i < m->ninfos; i++) {
    sio_socket_info *f = &m->infos[i];
    free((void *)f->id);
    free((void *)f->handshake_json);
    free((void *)f->data_json);
    free_v((char **)f->rooms, f->nrooms);
  }
  free(m->infos);
  free(m);
}

static tmsg *msg_new(int type, int from) {
  tmsg *m = calloc(1, sizeof *m);
  m->type = type;
  m->from = from;
  return m;
}

static void msg_targets(tmsg *m, const sio_targets *t) {
  m->nsp = dup_s(t->nsp);
  m->rooms = dup_v(t->rooms, t->nrooms);
  m->nrooms = t->nrooms;
  m->except = dup_v(t->except, t->nexcept);
  m->nexcept = t->nexcept;
  m->flags = t->flags;
}

static void msg_packet(tmsg *m, const char *p, size_t len, const sio_bin *atts, size_t natts) {
  m->text = dup_n(p, len);
  m->len = len;
  m->atts = calloc(natts ? natts : 1, sizeof *m->atts);
  for (size_t i = 0; i < natts; i++) {
    uint8_t *c = malloc(atts[i].len ? atts[i].len : 1);
    memcpy(c, atts[i].p, atts[i].len);
    m->atts[i] = (sio_bin){c, atts[i].len};
  }
  m->natts = natts;
}

static sio_targets targets_of(const tmsg *m) {
  return (sio_targets){.nsp = m->nsp, .rooms = (const char *const *)m->rooms, .nrooms = m->nrooms,
                       .except = (const char *const *)m->except, .nexcept = m->nexcept, .flags = m->flags};
}

/* Queues m to server `to` (any thread). Dropped once the fixture is closing. */
static void post(int to, tmsg *m) {
  pthread_mutex_lock(&g->lock);
  if (!g->open || !g->ad[to]) {
    pthread_mutex_unlock(&g->lock);
    msg_free(m);
    return;
  }
  tadapter *a = g->ad[to];
  if (a->tail) a->tail->next = m;
  else a->head = m;
  a->tail = m;
  uv_async_send(&a->async);
  pthread_mutex_unlock(&g->lock);
}

/* A copy of m to every server but `from`. */
static void post_peers(int from, tmsg *m) {
  for (int j = 0; j < NSRV; j++) {
    if (j == from) continue;
    tmsg *c = msg_new(m->type, from);
    c->rid = m->rid;
    c->nsp = dup_s(m->nsp);
    c->rooms = dup_v((const char *const *)m->rooms, m->nrooms);
    c->nrooms = m->nrooms;
    c->except = dup_v((const char *const *)m->except, m->nexcept);
    c->nexcept = m->nexcept;
    c->flags = m->flags;
    c->room = dup_s(m->room);
    c->close = m->close;
    if (m->text) msg_packet(c, m->text, m->len, m->atts, m->natts);
    c->timeout = m->timeout;
    post(j, c);
  }
  msg_free(m);
}

static tadapter *self_of(sio_adapter *a) { return (tadapter *)a; }

/* Origin side: one more peer answered rid; when all have, sio_cluster_done. */
static void track(tadapter *a, uint64_t rid) {
  for (int i = 0; i < 64; i++) {
    if (a->pend[i].rid == rid) {
      if (++a->pend[i].answers == NSRV - 1) {
        a->pend[i].rid = 0;
        sio_cluster_done(a->base.io, rid);
      }
      return;
    }
  }
}

static void track_new(tadapter *a, uint64_t rid) {
  for (int i = 0; i < 64; i++) {
    if (!a->pend[i].rid) {
      a->pend[i] = (pending){rid, 0};
      return;
    }
  }
}

static int vt_broadcast(sio_adapter *sa, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                        size_t natts) {
  tmsg *m = msg_new(M_BCAST, self_of(sa)->index);
  msg_targets(m, t);
  msg_packet(m, pkt, len, atts, natts);
  post_peers(m->from, m);
  return 0;
}

static int vt_broadcast_ack(sio_adapter *sa, uint64_t rid, const sio_targets *t, const char *pkt, size_t len,
                            const sio_bin *atts, size_t natts, uint32_t timeout_ms) {
  tadapter *a = self_of(sa);
  track_new(a, rid);
  tmsg *m = msg_new(M_BCAST_ACK, a->index);
  m->rid = rid;
  m->timeout = timeout_ms;
  msg_targets(m, t);
  msg_packet(m, pkt, len, atts, natts);
  post_peers(a->index, m);
  return 0;
}

static int sockets_op(sio_adapter *sa, int type, const sio_targets *t, const char *room, int close) {
  tmsg *m = msg_new(type, self_of(sa)->index);
  msg_targets(m, t);
  m->room = dup_s(room);
  m->close = close;
  post_peers(m->from, m);
  return 0;
}

static int vt_join(sio_adapter *a, const sio_targets *t, const char *room) { return sockets_op(a, M_JOIN, t, room, 0); }
static int vt_leave(sio_adapter *a, const sio_targets *t, const char *room) {
  return sockets_op(a, M_LEAVE, t, room, 0);
}
static int vt_disc(sio_adapter *a, const sio_targets *t, int close) { return sockets_op(a, M_DISC, t, NULL, close); }

static int vt_fetch(sio_adapter *sa, uint64_t rid, const sio_targets *t, uint32_t timeout_ms) {
  (void)timeout_ms;
  tadapter *a = self_of(sa);
  track_new(a, rid);
  tmsg *m = msg_new(M_FETCH, a->index);
  m->rid = rid;
  msg_targets(m, t);
  post_peers(a->index, m);
  return 0;
}

static int vt_sse(sio_adapter *sa, uint64_t rid, const char *nsp, const char *data, size_t len, uint32_t timeout_ms) {
  (void)timeout_ms;
  tadapter *a = self_of(sa);
  if (rid) track_new(a, rid);
  tmsg *m = msg_new(M_SSE, a->index);
  m->rid = rid;
  m->nsp = dup_s(nsp);
  msg_packet(m, data, len, NULL, 0);
  post_peers(a->index, m);
  return 0;
}

static int vt_count(sio_adapter *sa, uint64_t rid) {
  tmsg *m = msg_new(M_COUNT, self_of(sa)->index);
  m->rid = rid;
  post(self_of(sa)->index, m); /* answered later, from the loop */
  return 0;
}

static void async_closed(uv_handle_t *h) {
  tadapter *a = h->data;
  while (a->head) {
    tmsg *m = a->head;
    a->head = m->next;
    msg_free(m);
  }
  free(a);
}

static void vt_free(sio_adapter *sa) {
  tadapter *a = self_of(sa);
  pthread_mutex_lock(&g->lock);
  g->ad[a->index] = NULL;
  pthread_mutex_unlock(&g->lock);
  uv_close((uv_handle_t *)&a->async, async_closed);
}

static const sio_adapter_vt test_vt = {
    .broadcast = vt_broadcast,
    .broadcast_ack = vt_broadcast_ack,
    .sockets_join = vt_join,
    .sockets_leave = vt_leave,
    .disconnect_sockets = vt_disc,
    .fetch_sockets = vt_fetch,
    .server_side_emit = vt_sse,
    .server_count = vt_count,
    .free = vt_free,
};

/* Peer side of a broadcast with acks. */
typedef struct ack_ctx {
  int self, origin;
  uint64_t rid;
} ack_ctx;

static void on_peer_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  ack_ctx *x = ctx;
  tmsg *m = msg_new(M_ACK_REPLY, x->self);
  m->rid = x->rid;
  msg_packet(m, json, len, atts, natts);
  post(x->origin, m);
}

static void on_peer_end(void *ctx) {
  ack_ctx *x = ctx;
  __atomic_add_fetch(&g->ad[x->self]->ends, 1, __ATOMIC_SEQ_CST);
  free(x);
}

typedef struct fetch_ctx {
  tmsg *reply;
} fetch_ctx;

static void on_peer_socket(void *ctx, const sio_socket_info *info) {
  tmsg *m = ((fetch_ctx *)ctx)->reply;
  m->infos = realloc(m->infos, (m->ninfos + 1) * sizeof *m->infos);
  sio_socket_info *f = &m->infos[m->ninfos++];
  f->id = dup_s(info->id);
  f->rooms = (const char *const *)dup_v(info->rooms, info->nrooms);
  f->nrooms = info->nrooms;
  f->handshake_json = dup_s(info->handshake_json);
  f->data_json = dup_s(info->data_json);
}

static void on_peer_sse_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  (void)atts;
  (void)natts;
  ack_ctx *x = ctx;
  tmsg *m = msg_new(M_SSE_ACK, x->self);
  m->rid = x->rid;
  msg_packet(m, json, len, NULL, 0);
  post(x->origin, m);
}

static void handle(tadapter *a, tmsg *m) {
  wsio_io *io = a->base.io;
  sio_targets t = targets_of(m);
  int muted = a->mute && m->type != M_CALL;
  if (muted) return;
  switch (m->type) {
    case M_CALL:
      m->fn(a->index, m->arg);
      __atomic_store_n(m->done, 1, __ATOMIC_SEQ_CST);
      break;
    case M_BCAST: {
      a->last_flags = m->flags;
      int rc = sio_cluster_broadcast(io, &t, m->text, m->len, m->atts, m->natts);
      if (rc == WSIO_EPROTO) __atomic_add_fetch(&a->eproto, 1, __ATOMIC_SEQ_CST);
      else __atomic_add_fetch(&a->bcasts_in, 1, __ATOMIC_SEQ_CST);
      break;
    }
    case M_BCAST_ACK: {
      ack_ctx *x = malloc(sizeof *x);
      *x = (ack_ctx){a->index, m->from, m->rid};
      int n = sio_cluster_broadcast_ack(io, &t, m->text, m->len, m->atts, m->natts, m->timeout, on_peer_reply,
                                        on_peer_end, x);
      if (n < 0) {
        if (n == WSIO_EPROTO) __atomic_add_fetch(&a->eproto, 1, __ATOMIC_SEQ_CST);
        free(x);
        n = 0;
      }
      tmsg *r = msg_new(M_ACK_COUNT, a->index);
      r->rid = m->rid;
      r->count = (size_t)n;
      post(m->from, r);
      break;
    }
    case M_ACK_COUNT:
      sio_cluster_ack_count(io, m->rid, m->count);
      track(a, m->rid);
      break;
    case M_ACK_REPLY: sio_cluster_ack_reply(io, m->rid, m->text, m->len, m->atts, m->natts); break;
    case M_JOIN: sio_cluster_sockets_join(io, &t, m->room); break;
    case M_LEAVE: sio_cluster_sockets_leave(io, &t, m->room); break;
    case M_DISC: sio_cluster_disconnect_sockets(io, &t, m->close); break;
    case M_FETCH: {
      fetch_ctx x = {msg_new(M_SOCKETS, a->index)};
      x.reply->rid = m->rid;
      sio_cluster_fetch(io, &t, on_peer_socket, &x);
      post(m->from, x.reply);
      break;
    }
    case M_SOCKETS:
      sio_cluster_sockets(io, m->rid, m->infos, m->ninfos);
      track(a, m->rid);
      break;
    case M_SSE:
      if (m->rid) {
        ack_ctx x = {a->index, m->from, m->rid};
        sio_cluster_server_event(io, m->nsp, m->text, m->len, on_peer_sse_reply, &x);
      } else {
        sio_cluster_server_event(io, m->nsp, m->text, m->len, NULL, NULL);
      }
      break;
    case M_SSE_ACK:
      sio_cluster_server_ack(io, m->rid, m->text, m->len);
      track(a, m->rid);
      break;
    case M_COUNT: sio_cluster_server_count(io, m->rid, NSRV); break;
    default: break;
  }
}

static void on_async(uv_async_t *h) {
  tadapter *a = h->data;
  for (;;) {
    pthread_mutex_lock(&g->lock);
    tmsg *m = a->head;
    if (m && !(a->head = m->next)) a->tail = NULL;
    pthread_mutex_unlock(&g->lock);
    if (!m) break;
    handle(a, m);
    msg_free(m);
  }
}

/* Runs fn(srv, arg) on server srv's loop and waits for it. */
static void run_on(int srv, call_fn fn, void *arg) {
  int done = 0;
  tmsg *m = msg_new(M_CALL, srv);
  m->fn = fn;
  m->arg = arg;
  m->done = &done;
  post(srv, m);
  wait_for(&done, 1);
}

/* ---- the servers' application code ---- */

static void ack_empty(wsio_ack *ack) {
  if (ack) wsio_ack_send(ack, NULL);
}

static void on_join(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[64];
  if (wsio_args_string(args, 0, room, sizeof room) < 0 || wsio_socket_join(s, room) != 0)
    __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  ack_empty(ack);
}

static void on_data(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ud;
  size_t len;
  const char *j = wsio_args_json(args, 0, &len);
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%.*s", (int)len, j);
  if (wsio_socket_set_data_json(s, tmp) != 0) __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  ack_empty(ack);
}

/* socket.broadcast.emit("relayed", ...args): binaries included. */
static void on_relay(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ud;
  wsio_op op = wsio_socket_broadcast(s);
  if (wsio_op_emit_args(&op, "relayed", args) < 0) __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  ack_empty(ack);
}

static void on_server_ping(wsio_nsp *n, const wsio_args *args, wsio_server_ack *ack, void *ud) {
  int srv = (int)(intptr_t)ud;
  if (strcmp(wsio_args_event(args), "ping") != 0 || strcmp(wsio_nsp_name(n), "/") != 0)
    __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  size_t len = 0;
  const char *j = wsio_args_count(args) ? wsio_args_json(args, 0, &len) : "";
  snprintf(g->sse_last[srv], sizeof g->sse_last[srv], "%.*s", (int)len, j);
  size_t nargs = wsio_args_count(args), tlen = 0;
  const char *t = nargs ? wsio_args_json(args, nargs - 1, &tlen) : "";
  snprintf(g->sse_tail[srv], sizeof g->sse_tail[srv], "%.*s/%zu", (int)tlen, t, nargs);
  __atomic_add_fetch(&g->sse_calls[srv], 1, __ATOMIC_SEQ_CST);
  if (ack) {
    char answer[64];
    snprintf(answer, sizeof answer, "[\"pong-%d\"]", srv);
    if (wsio_server_ack_send(ack, answer) != 0 || wsio_server_ack_send(ack, "[]") != WSIO_EINVAL)
      __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  }
}

static void *run(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

static int setup(void **state) {
  g = calloc(1, sizeof *g);
  pthread_mutex_init(&g->lock, NULL);
  g->open = 1;
  for (int i = 0; i < NSRV; i++) {
    wsio_server_config sc = {.log_level = 2};
    g->s[i] = wsio_server_new(&sc);
    assert_non_null(g->s[i]);
    wsio_io_config ic = {.recovery_ms = recovery_ms[i]};
    g->io[i] = wsio_io_new(g->s[i], &ic);
    assert_non_null(g->io[i]);
    wsio_nsp *main_nsp = wsio_io_sockets(g->io[i]);
    wsio_nsp_on(main_nsp, "join", on_join, NULL);
    wsio_nsp_on(main_nsp, "data", on_data, NULL);
    wsio_nsp_on(main_nsp, "relay", on_relay, NULL);
    wsio_nsp_on_server_side(main_nsp, "ping", on_server_ping, (void *)(intptr_t)i);
    tadapter *a = calloc(1, sizeof *a);
    a->base.vt = &test_vt;
    a->index = i;
    uv_async_init(wsio_server_loop(g->s[i]), &a->async, on_async);
    a->async.data = a;
    uv_unref((uv_handle_t *)&a->async); /* the servers' listeners keep the loops alive, not the adapter */
    g->ad[i] = a;
    assert_int_equal(sio_adapter_attach(g->io[i], &a->base), 0);
    assert_ptr_equal(sio_adapter_of(g->io[i]), &a->base);
    sio_adapter other = {.vt = &test_vt};
    assert_int_equal(sio_adapter_attach(g->io[i], &other), WSIO_EEXISTS);
    assert_int_equal(wsio_server_listen(g->s[i], "127.0.0.1", 0), 0);
    g->port[i] = wsio_server_port(g->s[i]);
  }
  for (int i = 0; i < NSRV; i++) pthread_create(&g->thread[i], NULL, run, g->s[i]);
  *state = g;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < NSRV; i++) wsio_server_stop(g->s[i], 2000);
  for (int i = 0; i < NSRV; i++) pthread_join(g->thread[i], NULL);
  pthread_mutex_lock(&g->lock);
  g->open = 0;
  pthread_mutex_unlock(&g->lock);
  for (int i = 0; i < NSRV; i++) wsio_server_free(g->s[i]);
  int errors = g->errors;
  pthread_mutex_destroy(&g->lock);
  free(g);
  assert_int_equal(errors, 0);
  return 0;
}

/* ---- a raw Socket.IO client over WebSocket ---- */

typedef struct client {
  int fd;
  int srv;
  char sid[32];
} client;

static client cli[NCLI];

static void ws_send(int fd, int op, const void *data, size_t len) {
  uint8_t h[14];
  size_t hl = 2;
  h[0] = (uint8_t)(0x80 | op);
  if (len < 126) {
    h[1] = (uint8_t)(0x80 | len);
  } else {
    assert_true(len < 65536);
    h[1] = 0x80 | 126;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    hl = 4;
  }
  uint8_t mask[4] = {7, 1, 9, 3};
  memcpy(h + hl, mask, 4);
  send_all(fd, h, hl + 4);
  uint8_t *p = malloc(len ? len : 1);
  for (size_t i = 0; i < len; i++) p[i] = ((const uint8_t *)data)[i] ^ mask[i & 3];
  send_all(fd, p, len);
  free(p);
}

static void cl_send(client *c, const char *text) {
  char b[1024];
  snprintf(b, sizeof b, "4%s", text);
  ws_send(c->fd, 1, b, strlen(b));
}

/* Reads the next data frame (text without the Engine.IO "4", or binary), answering pings. Returns the
 * opcode (1 text, 2 binary, 8 close); the payload NUL-terminated in out. */
static int cl_read(client *c, char *out, size_t cap, size_t *len) {
  for (;;) {
    uint8_t h[2];
    read_exact(c->fd, h, 2);
    size_t n = h[1] & 0x7f;
    if (n == 126) {
      uint8_t e[2];
      read_exact(c->fd, e, 2);
      n = (size_t)e[0] << 8 | e[1];
    } else if (n == 127) {
      uint8_t e[8];
      read_exact(c->fd, e, 8);
      n = 0;
      for (int i = 0; i < 8; i++) n = n << 8 | e[i];
    }
    assert_true(n < cap);
    read_exact(c->fd, out, n);
    out[n] = 0;
    int op = h[0] & 0x0f;
    if (op == 9 || op == 10) continue;
    if (op == 1 && n == 1 && out[0] == '2') {
      ws_send(c->fd, 1, "3", 1);
      continue;
    }
    if (op == 1) {
      assert_int_equal(out[0], '4');
      memmove(out, out + 1, n);
      n--;
    }
    *len = n;
    return op;
  }
}

static void cl_expect(client *c, const char *text) {
  char b[4096];
  size_t n;
  assert_int_equal(cl_read(c, b, sizeof b, &n), 1);
  assert_string_equal(b, text);
}

/* Opens a WebSocket session on srv and connects to "/" with auth (NULL: none); pid gets the private
 * session id when the server sends one. */
static void cl_open_auth(client *c, int srv, const char *auth, char *pid);

static void cl_open(client *c, int srv) { cl_open_auth(c, srv, NULL, NULL); }

static void cl_open_auth(client *c, int srv, const char *auth, char *pid) {
  c->srv = srv;
  c->fd = raw_dial(g->port[srv]);
  const char *req = "GET /socket.io/?EIO=4&transport=websocket&tag=a%20b&tag=c HTTP/1.1\r\nHost: localhost\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\nX-Test: one\r\nX-Test: two\r\n\r\n";
  send_all(c->fd, req, strlen(req));
  char head[2048];
  read_head(c->fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  char b[1024];
  size_t n;
  /* The Engine.IO open packet "0{...}" comes before any "4". */
  uint8_t h[2];
  read_exact(c->fd, h, 2);
  n = h[1] & 0x7f;
  read_exact(c->fd, b, n);
  assert_int_equal(b[0], '0');
  char connect[256];
  snprintf(connect, sizeof connect, "0%s", auth ? auth : "");
  cl_send(c, connect);
  assert_int_equal(cl_read(c, b, sizeof b, &n), 1);
  const char *p = strstr(b, "\"sid\":\"");
  assert_true(b[0] == '0' && p != NULL);
  memcpy(c->sid, p + 7, 20);
  c->sid[20] = 0;
  const char *q = strstr(b, "\"pid\":\"");
  if (pid) {
    assert_non_null(q);
    memcpy(pid, q + 7, 20);
    pid[20] = 0;
  }
}

/* Sends an event with ack id 1 and waits for the server's ack. */
static void cl_call(client *c, const char *event_json) {
  char b[512];
  snprintf(b, sizeof b, "21%s", event_json);
  cl_send(c, b);
  cl_expect(c, "31[]");
}

/* Nothing else arrived before the marker: emits "marker" from srv to everyone and expects it next. */
static void marker(int srv);

/* ---- operations run on a server's loop ---- */

typedef struct op_args {
  const char *event, *json;
  const char *to[4], *except[4];
  int nto, nexcept;
  unsigned flags;
  int rc;
  uint32_t timeout;
  /* results */
  int done, err;
  size_t n;
  char answers[8][64];
  double t_start, t_end;
  wsio_remote_socket got[16];
  char ids[16][32], datas[16][64], hs[16][1024], rooms[16][128], nsps[16][16];
  int local[16];
  uint64_t rid;
} op_args;

static wsio_op build_op(int srv, op_args *x) {
  wsio_op op = wsio_nsp_op(wsio_io_sockets(g->io[srv]));
  for (int i = 0; i < x->nto; i++) wsio_op_to(&op, x->to[i]);
  for (int i = 0; i < x->nexcept; i++) wsio_op_except(&op, x->except[i]);
  if (x->flags & WSIO_OP_LOCAL) wsio_op_local(&op);
  if (x->flags & WSIO_OP_VOLATILE) wsio_op_volatile(&op);
  if (x->timeout) wsio_op_timeout(&op, x->timeout);
  return op;
}

static void do_emit(int srv, void *arg) {
  op_args *x = arg;
  wsio_op op = build_op(srv, x);
  x->rc = wsio_op_emit(&op, x->event, x->json);
}

static void marker(int srv) {
  op_args x = {.event = "marker", .json = NULL};
  run_on(srv, do_emit, &x);
  for (int i = 0; i < NCLI; i++)
    if (cli[i].fd >= 0) cl_expect(&cli[i], "2[\"marker\"]");
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_bcast_ack(int err, const wsio_args *const *responses, size_t n, void *ud) {
  op_args *x = ud;
  x->err = err;
  x->n = n;
  for (size_t i = 0; i < n && i < 8; i++) {
    size_t len;
    const uint8_t *bin = wsio_args_binary(responses[i], 0, &len);
    if (bin) snprintf(x->answers[i], sizeof x->answers[i], "bin:%zu:%02x", len, len ? bin[0] : 0);
    else if (wsio_args_string(responses[i], 0, x->answers[i], sizeof x->answers[i]) < 0) x->answers[i][0] = '?';
  }
  x->t_end = now_ms();
  __atomic_add_fetch(&x->done, 1, __ATOMIC_SEQ_CST);
}

static void do_emit_ack(int srv, void *arg) {
  op_args *x = arg;
  wsio_op op = build_op(srv, x);
  x->t_start = now_ms();
  x->rc = wsio_op_emit_ack(&op, x->event, x->json, on_bcast_ack, x);
}

static void clients_open(void) {
  for (int i = 0; i < NCLI; i++) cl_open(&cli[i], i / 2);
}

static void clients_close(void) {
  for (int i = 0; i < NCLI; i++) {
    if (cli[i].fd >= 0) close(cli[i].fd);
    cli[i].fd = -1;
  }
  usleep(50000);
}

static void do_nsp_count(int srv, void *arg) { *(size_t *)arg = wsio_nsp_count(wsio_io_sockets(g->io[srv])); }

/* Fresh clients, once every server has seen the previous test's go. */
static int setup_clients(void **state) {
  (void)state;
  for (int srv = 0; srv < NSRV; srv++) {
    size_t n = 1;
    for (int i = 0; i < 200 && n; i++) {
      run_on(srv, do_nsp_count, &n);
      if (n) usleep(10000);
    }
    assert_int_equal(n, 0);
  }
  clients_open();
  return 0;
}

static int teardown_clients(void **state) {
  (void)state;
  clients_close();
  return 0;
}

/* ---- tests ---- */

/* io.emit on one server reaches the clients of every server; the return value counts its own. */
static void test_emit_every_server(void **state) {
  (void)state;
  for (int srv = 0; srv < NSRV; srv++) {
    op_args x = {.event = "hello", .json = "[1,{\"a\":\"b\"}]"};
    run_on(srv, do_emit, &x);
    assert_int_equal(x.rc, 2);
    for (int i = 0; i < NCLI; i++) cl_expect(&cli[i], "2[\"hello\",1,{\"a\":\"b\"}]");
  }
}

/* io.to(a).except(b) across servers; io.to(<a socket id on another server>). */
static void test_rooms_except(void **state) {
  (void)state;
  cl_call(&cli[0], "[\"join\",\"a\"]");
  cl_call(&cli[2], "[\"join\",\"a\"]");
  cl_call(&cli[4], "[\"join\",\"a\"]");
  cl_call(&cli[4], "[\"join\",\"b\"]");
  cl_call(&cli[5], "[\"join\",\"b\"]");
  op_args x = {.event = "room", .to = {"a"}, .nto = 1, .except = {"b"}, .nexcept = 1};
  run_on(1, do_emit, &x);
  assert_int_equal(x.rc, 1);
  cl_expect(&cli[0], "2[\"room\"]");
  cl_expect(&cli[2], "2[\"room\"]");
  marker(1); /* cli 1, 3, 4, 5 got nothing before it */
  /* A socket's own room, from another server; and rooms unioned (each socket once). */
  op_args y = {.event = "own", .to = {cli[5].sid, "b"}, .nto = 2};
  run_on(0, do_emit, &y);
  assert_int_equal(y.rc, 0);
  cl_expect(&cli[4], "2[\"own\"]");
  cl_expect(&cli[5], "2[\"own\"]");
  marker(0);
}

/* socket.broadcast from a client's event: everyone on every server but the sender. */
static void test_socket_broadcast(void **state) {
  (void)state;
  cl_send(&cli[2], "21[\"relay\",\"x\"]");
  for (int i = 0; i < NCLI; i++) {
    if (i == 2) cl_expect(&cli[i], "31[]");
    else cl_expect(&cli[i], "2[\"relayed\",\"x\"]");
  }
  marker(1);
}

/* io.local.emit: this server only. */
static void test_local_not_forwarded(void **state) {
  (void)state;
  int before = __atomic_load_n(&g->ad[1]->bcasts_in, __ATOMIC_SEQ_CST);
  op_args x = {.event = "mine", .flags = WSIO_OP_LOCAL};
  run_on(0, do_emit, &x);
  assert_int_equal(x.rc, 2);
  cl_expect(&cli[0], "2[\"mine\"]");
  cl_expect(&cli[1], "2[\"mine\"]");
  marker(0);
  usleep(50000); /* the counter moves just after the clients got the marker */
  /* Only the marker reached server 1 from server 0. */
  assert_int_equal(__atomic_load_n(&g->ad[1]->bcasts_in, __ATOMIC_SEQ_CST), before + 1);
}

/* io.volatile.emit reaches every server's (uncongested) clients, and peers get the flag. */
static void test_volatile(void **state) {
  (void)state;
  op_args x = {.event = "vol", .json = "[true]", .flags = WSIO_OP_VOLATILE};
  run_on(2, do_emit, &x);
  for (int i = 0; i < NCLI; i++) cl_expect(&cli[i], "2[\"vol\",true]");
  assert_true(g->ad[0]->last_flags & WSIO_OP_VOLATILE);
  assert_true(g->ad[1]->last_flags & WSIO_OP_VOLATILE);
  assert_false(g->ad[0]->last_flags & WSIO_OP_LOCAL);
}

static void do_emitv(int srv, void *arg) {
  op_args *x = arg;
  wsio_op op = build_op(srv, x);
  static const uint8_t bytes[] = {0, 1, 2, 250, 255};
  wsio_value v[3] = {WSIO_JSON("\"t\""), {1, bytes, sizeof bytes}, {1, bytes + 3, 2}};
  x->rc = wsio_op_emitv(&op, "bin", v, 3);
}

/* Binary attachments cross servers: one text packet and its attachments, in order. */
static void test_binary_across(void **state) {
  (void)state;
  op_args x = {0};
  run_on(1, do_emitv, &x);
  for (int i = 0; i < NCLI; i++) {
    char b[256];
    size_t n;
    cl_expect(&cli[i], "52-[\"bin\",\"t\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    assert_int_equal(cl_read(&cli[i], b, sizeof b, &n), 2);
    assert_int_equal(n, 5);
    assert_memory_equal(b, "\x00\x01\x02\xfa\xff", 5);
    assert_int_equal(cl_read(&cli[i], b, sizeof b, &n), 2);
    assert_int_equal(n, 2);
    assert_memory_equal(b, "\xfa\xff", 2);
  }
  /* A client's binary event relayed with socket.broadcast (wsio_op_emit_args) to the other servers. */
  const char *text = "451-1[\"relay\",{\"_placeholder\":true,\"num\":0}]";
  ws_send(cli[0].fd, 1, text, strlen(text));
  ws_send(cli[0].fd, 2, "\x09\x08\x07", 3);
  for (int i = 0; i < NCLI; i++) {
    char b[256];
    size_t n;
    if (i == 0) {
      cl_expect(&cli[i], "31[]");
      continue;
    }
    cl_expect(&cli[i], "51-[\"relayed\",{\"_placeholder\":true,\"num\":0}]");
    assert_int_equal(cl_read(&cli[i], b, sizeof b, &n), 2);
    assert_int_equal(n, 3);
    assert_memory_equal(b, "\x09\x08\x07", 3);
  }
}

/* Reads "2<id>[\"ask\"]" from c; returns id. */
static long read_ask(client *c) {
  char b[512];
  size_t n;
  assert_int_equal(cl_read(c, b, sizeof b, &n), 1);
  char *end;
  long id = strtol(b + 1, &end, 10);
  assert_int_equal(b[0], '2');
  assert_string_equal(end, "[\"ask\"]");
  return id;
}

static void answer(client *c, long id, int i) {
  char b[128];
  snprintf(b, sizeof b, "3%ld[\"from-%d\"]", id, i);
  cl_send(c, b);
}

static int has_answer(const op_args *x, const char *a) {
  for (size_t i = 0; i < x->n && i < 8; i++)
    if (strcmp(x->answers[i], a) == 0) return 1;
  return 0;
}

/* io.timeout(ms).emit(..., cb) across servers: every client of every server answers; the callback comes as
 * soon as the last answer does, with all six. */
static void test_broadcast_acks_all(void **state) {
  (void)state;
  op_args x = {.event = "ask", .timeout = 4000};
  run_on(0, do_emit_ack, &x);
  assert_int_equal(x.rc, 2);
  for (int i = 0; i < NCLI - 1; i++) answer(&cli[i], read_ask(&cli[i]), i);
  /* The last client, on server 2, answers with a binary: its attachment crosses back. */
  char bin_ack[128];
  snprintf(bin_ack, sizeof bin_ack, "461-%ld[{\"_placeholder\":true,\"num\":0}]", read_ask(&cli[5]));
  ws_send(cli[5].fd, 1, bin_ack, strlen(bin_ack));
  ws_send(cli[5].fd, 2, "\x09\x08\x07", 3);
  wait_for(&x.done, 1);
  assert_int_equal(x.err, 0);
  assert_int_equal(x.n, NCLI);
  assert_true(has_answer(&x, "bin:3:09"));
  for (int i = 0; i < NCLI - 1; i++) {
    char a[16];
    snprintf(a, sizeof a, "from-%d", i);
    assert_true(has_answer(&x, a));
  }
  assert_true(x.t_end - x.t_start < 2000); /* early: not at the 4 s timeout */
  usleep(100000);
  assert_int_equal(__atomic_load_n(&x.done, __ATOMIC_SEQ_CST), 1);
  /* Each peer's wait ended once its clients had answered. */
  assert_true(__atomic_load_n(&g->ad[1]->ends, __ATOMIC_SEQ_CST) >= 1);
  assert_true(__atomic_load_n(&g->ad[2]->ends, __ATOMIC_SEQ_CST) >= 1);
}

static void do_late_reply(int srv, void *arg) {
  op_args *x = arg;
  /* An answer for a finished request, and for an id never issued: both ignored. */
  sio_cluster_ack_reply(g->io[srv], x->rid, "[\"late\"]", 8, NULL, 0);
  sio_cluster_ack_count(g->io[srv], x->rid, 5);
  sio_cluster_done(g->io[srv], x->rid);
  sio_cluster_ack_reply(g->io[srv], 987654321, "[\"stray\"]", 9, NULL, 0);
  sio_cluster_done(g->io[srv], 987654321);
  sio_cluster_server_count(g->io[srv], 987654321, 7);
}

/* One client on another server does not answer: the callback comes at the timeout with the five others,
 * and its late answer (and any answer to a finished request) is ignored. */
static void test_broadcast_acks_timeout(void **state) {
  (void)state;
  op_args x = {.event = "ask", .timeout = 600};
  run_on(0, do_emit_ack, &x);
  long ids[NCLI];
  for (int i = 0; i < NCLI; i++) ids[i] = read_ask(&cli[i]);
  for (int i = 0; i < NCLI; i++)
    if (i != 5) answer(&cli[i], ids[i], i);
  wait_for(&x.done, 1);
  assert_int_equal(x.err, WSIO_ETIMEDOUT);
  assert_int_equal(x.n, NCLI - 1);
  assert_false(has_answer(&x, "from-5"));
  assert_true(x.t_end - x.t_start >= 550);
  answer(&cli[5], ids[5], 5); /* too late */
  x.rid = 1;                  /* the first requests' ids are long finished */
  run_on(0, do_late_reply, &x);
  usleep(200000);
  assert_int_equal(__atomic_load_n(&x.done, __ATOMIC_SEQ_CST), 1);
  marker(0);
}

/* A server that never reports: the request ends at the timeout with what the others sent. */
static void test_broadcast_acks_silent_peer(void **state) {
  (void)state;
  g->ad[2]->mute = 1;
  op_args x = {.event = "ask", .timeout = 500};
  run_on(1, do_emit_ack, &x);
  for (int i = 0; i < 4; i++) answer(&cli[i], read_ask(&cli[i]), i);
  wait_for(&x.done, 1);
  g->ad[2]->mute = 0;
  assert_int_equal(x.err, WSIO_ETIMEDOUT);
  assert_int_equal(x.n, 4);
  marker(1);
}

typedef struct sock_args {
  const char *room;
  int close;
  int rc;
  op_args *op;
} sock_args;

static void do_join(int srv, void *arg) {
  sock_args *x = arg;
  wsio_op op = build_op(srv, x->op);
  x->rc = wsio_op_sockets_join(&op, x->room);
}

static void do_leave(int srv, void *arg) {
  sock_args *x = arg;
  wsio_op op = build_op(srv, x->op);
  x->rc = wsio_op_sockets_leave(&op, x->room);
}

static void do_disconnect(int srv, void *arg) {
  sock_args *x = arg;
  wsio_op op = build_op(srv, x->op);
  x->rc = wsio_op_disconnect_sockets(&op, x->close);
}

/* io.in(a).socketsJoin / socketsLeave / disconnectSockets from one server act on every server. */
static void test_sockets_ops(void **state) {
  (void)state;
  cl_call(&cli[1], "[\"join\",\"j\"]");
  cl_call(&cli[3], "[\"join\",\"j\"]");
  cl_call(&cli[5], "[\"join\",\"j\"]");
  op_args sel = {.to = {"j"}, .nto = 1};
  sock_args j = {.room = "joined", .op = &sel};
  run_on(2, do_join, &j);
  assert_int_equal(j.rc, 1);
  marker(2); /* the join messages went before it to every server */
  op_args x = {.event = "in-joined", .to = {"joined"}, .nto = 1};
  run_on(0, do_emit, &x);
  assert_int_equal(x.rc, 1);
  cl_expect(&cli[1], "2[\"in-joined\"]");
  cl_expect(&cli[3], "2[\"in-joined\"]");
  cl_expect(&cli[5], "2[\"in-joined\"]");
  marker(0);
  /* Leave everywhere but where the socket is excepted. */
  op_args all = {.except = {cli[3].sid}, .nexcept = 1};
  sock_args l = {.room = "joined", .op = &all};
  run_on(0, do_leave, &l);
  marker(0);
  run_on(1, do_emit, &x);
  cl_expect(&cli[3], "2[\"in-joined\"]");
  marker(1);
  /* disconnectSockets(false) of a room from another server: the DISCONNECT packet for "/". */
  sock_args d = {.op = &sel, .close = 0};
  run_on(0, do_disconnect, &d);
  assert_int_equal(d.rc, 1);
  cl_expect(&cli[1], "1");
  cl_expect(&cli[3], "1");
  cl_expect(&cli[5], "1");
  /* They left "/": the marker reaches the others only. */
  int keep[3] = {cli[1].fd, cli[3].fd, cli[5].fd};
  cli[1].fd = cli[3].fd = cli[5].fd = -1;
  marker(2);
  close(keep[0]);
  close(keep[1]);
  close(keep[2]);
}

static void on_fetch(int err, const wsio_remote_socket *v, size_t n, void *ud) {
  op_args *x = ud;
  x->err = err;
  x->n = n;
  for (size_t i = 0; i < n && i < 16; i++) {
    snprintf(x->ids[i], sizeof x->ids[i], "%s", v[i].id);
    snprintf(x->datas[i], sizeof x->datas[i], "%s", v[i].data_json);
    snprintf(x->hs[i], sizeof x->hs[i], "%s", v[i].handshake_json);
    snprintf(x->nsps[i], sizeof x->nsps[i], "%s", v[i].nsp);
    x->rooms[i][0] = 0;
    for (size_t k = 0; k < v[i].nrooms; k++) {
      strncat(x->rooms[i], v[i].rooms[k], sizeof x->rooms[i] - strlen(x->rooms[i]) - 2);
      strcat(x->rooms[i], ",");
    }
    x->local[i] = v[i].local != NULL;
    if (v[i].local && strcmp(wsio_socket_id(v[i].local), v[i].id) != 0) x->local[i] = -1;
  }
  __atomic_add_fetch(&x->done, 1, __ATOMIC_SEQ_CST);
}

static void do_fetch(int srv, void *arg) {
  op_args *x = arg;
  wsio_op op = build_op(srv, x);
  x->rc = wsio_op_fetch_sockets_all(&op, on_fetch, x);
}

static int find_id(const op_args *x, const char *id) {
  for (size_t i = 0; i < x->n && i < 16; i++)
    if (strcmp(x->ids[i], id) == 0) return (int)i;
  return -1;
}

/* io.fetchSockets() from one server: every server's sockets, with rooms, data and handshake. */
static void test_fetch_sockets(void **state) {
  (void)state;
  cl_call(&cli[0], "[\"data\",{\"name\":\"zero\",\"n\":[1,2]}]");
  cl_call(&cli[4], "[\"join\",\"f\"]");
  cl_call(&cli[4], "[\"data\",\"four\"]");
  op_args x = {0};
  run_on(1, do_fetch, &x);
  wait_for(&x.done, 1);
  assert_int_equal(x.rc, 0);
  assert_int_equal(x.err, 0);
  assert_int_equal(x.n, NCLI);
  for (int i = 0; i < NCLI; i++) {
    int k = find_id(&x, cli[i].sid);
    assert_true(k >= 0);
    assert_int_equal(x.local[k], cli[i].srv == 1); /* the socket itself only where it lives */
    assert_string_equal(x.nsps[k], "/");
    assert_true(strncmp(x.rooms[k], cli[i].sid, 20) == 0); /* its own room first */
    sio_json_span hs, v;
    assert_int_equal(sio_json_validate(x.hs[k], strlen(x.hs[k]), 32, &hs), 0);
    assert_int_equal(hs.kind, SIO_JSON_OBJECT);
    static const char *const keys[] = {"headers", "time", "address", "xdomain", "secure", "issued", "url",
                                       "query", "auth"};
    for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++)
      assert_true(sio_json_object_find(&hs, keys[q], strlen(keys[q]), NULL));
    assert_true(sio_json_object_find(&hs, "query", 5, &v));
    assert_non_null(strstr(x.hs[k], "\"query\":{\"EIO\":\"4\",\"transport\":\"websocket\",\"tag\":[\"a b\",\"c\"]}"));
    assert_non_null(strstr(x.hs[k], "\"x-test\":\"one, two\""));
    assert_non_null(strstr(x.hs[k], "\"auth\":{}"));
  }
  assert_string_equal(x.datas[find_id(&x, cli[0].sid)], "{\"name\":\"zero\",\"n\":[1,2]}");
  assert_string_equal(x.datas[find_id(&x, cli[4].sid)], "\"four\"");
  assert_string_equal(x.datas[find_id(&x, cli[2].sid)], "null");
  char want[64];
  snprintf(want, sizeof want, "%s,f,", cli[4].sid);
  assert_string_equal(x.rooms[find_id(&x, cli[4].sid)], want);
  /* io.in(f).fetchSockets(), and .local */
  op_args y = {.to = {"f"}, .nto = 1};
  run_on(0, do_fetch, &y);
  wait_for(&y.done, 1);
  assert_int_equal(y.n, 1);
  assert_string_equal(y.ids[0], cli[4].sid);
  op_args z = {.flags = WSIO_OP_LOCAL};
  run_on(2, do_fetch, &z);
  assert_int_equal(z.done, 1); /* before it returned */
  assert_int_equal(z.n, 2);
  /* A silent server: the others' sockets at the timeout. */
  g->ad[0]->mute = 1;
  op_args t = {.timeout = 300};
  run_on(2, do_fetch, &t);
  wait_for(&t.done, 1);
  g->ad[0]->mute = 0;
  assert_int_equal(t.err, WSIO_ETIMEDOUT);
  assert_int_equal(t.n, 4);
  assert_int_equal(find_id(&t, cli[0].sid), -1);
}

static void do_sse(int srv, void *arg) {
  op_args *x = arg;
  x->rc = wsio_nsp_server_side_emit(wsio_io_sockets(g->io[srv]), x->event, x->json);
}

static void on_sse_ack(int err, const wsio_args *const *responses, size_t n, void *ud) {
  on_bcast_ack(err, responses, n, ud);
}

static void do_sse_ack(int srv, void *arg) {
  op_args *x = arg;
  x->t_start = now_ms();
  x->rc = wsio_nsp_server_side_emit_ack(wsio_io_sockets(g->io[srv]), x->event, x->json, x->timeout, on_sse_ack, x);
}

/* io.serverSideEmit reaches the handlers of the other servers only; with an ack, one answer each. */
static void test_server_side_emit(void **state) {
  (void)state;
  int before[NSRV];
  for (int i = 0; i < NSRV; i++) before[i] = __atomic_load_n(&g->sse_calls[i], __ATOMIC_SEQ_CST);
  op_args x = {.event = "ping", .json = "[{\"k\":1},2]"};
  run_on(0, do_sse, &x);
  assert_int_equal(x.rc, 0);
  wait_for(&g->sse_calls[1], before[1] + 1);
  wait_for(&g->sse_calls[2], before[2] + 1);
  assert_string_equal(g->sse_last[1], "{\"k\":1}");
  assert_string_equal(g->sse_last[2], "{\"k\":1}");
  assert_string_equal(g->sse_tail[2], "2/2");
  /* More arguments than the handler's stack holds: all of them arrive. */
  op_args many = {.event = "ping", .json = "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]"};
  run_on(0, do_sse, &many);
  assert_int_equal(many.rc, 0);
  wait_for(&g->sse_calls[2], before[2] + 2);
  assert_string_equal(g->sse_last[2], "0");
  assert_string_equal(g->sse_tail[2], "19/20");
  op_args bad = {.event = "disconnect"};
  run_on(0, do_sse, &bad);
  assert_int_equal(bad.rc, WSIO_EINVAL);
  op_args y = {.event = "ping", .json = "[\"q\"]", .timeout = 3000};
  run_on(1, do_sse_ack, &y);
  wait_for(&y.done, 1);
  assert_int_equal(y.err, 0);
  assert_int_equal(y.n, 2);
  assert_true(has_answer(&y, "pong-0") && has_answer(&y, "pong-2"));
  assert_true(y.t_end - y.t_start < 2000);
  /* A server's own handler never ran for its own emits. */
  assert_int_equal(__atomic_load_n(&g->sse_calls[0], __ATOMIC_SEQ_CST), before[0] + 1);
  assert_int_equal(__atomic_load_n(&g->sse_calls[1], __ATOMIC_SEQ_CST), before[1] + 2);
  /* An event nobody handles: each server answers with nothing. */
  op_args z = {.event = "nobody", .timeout = 3000};
  run_on(2, do_sse_ack, &z);
  wait_for(&z.done, 1);
  assert_int_equal(z.err, 0);
  assert_int_equal(z.n, 2);
}

static void on_count(int err, size_t servers, void *ud) {
  op_args *x = ud;
  x->err = err;
  x->n = servers;
  __atomic_add_fetch(&x->done, 1, __ATOMIC_SEQ_CST);
}

static void do_count(int srv, void *arg) { ((op_args *)arg)->rc = wsio_io_server_count(g->io[srv], on_count, arg); }

static void test_server_count(void **state) {
  (void)state;
  op_args x = {0};
  run_on(2, do_count, &x);
  wait_for(&x.done, 1);
  assert_int_equal(x.rc, 0);
  assert_int_equal(x.err, 0);
  assert_int_equal(x.n, NSRV);
}

static void do_malformed(int srv, void *arg) {
  op_args *x = arg;
  wsio_io *io = g->io[srv];
  sio_targets t = {.nsp = "/"};
  static const uint8_t b = 1;
  sio_bin att = {&b, 1};
  int n = 0;
  n += sio_cluster_broadcast(io, &t, "2[\"x\"", 5, NULL, 0) == WSIO_EPROTO;            /* broken JSON */
  n += sio_cluster_broadcast(io, &t, "2/other,[\"x\"]", 13, NULL, 0) == WSIO_EPROTO;   /* other namespace */
  n += sio_cluster_broadcast(io, &t, "21[\"x\"]", 7, NULL, 0) == WSIO_EPROTO;          /* an ack id */
  n += sio_cluster_broadcast(io, &t, "3[\"x\"]", 6, NULL, 0) == WSIO_EPROTO;           /* not an event */
  n += sio_cluster_broadcast(io, &t, "2[\"x\"]", 6, &att, 1) == WSIO_EPROTO;           /* attachments */
  n += sio_cluster_broadcast(io, &t, "51-[\"x\",{\"_placeholder\":true,\"num\":1}]", 39, &att, 1) == WSIO_EPROTO;
  n += sio_cluster_broadcast_ack(io, &t, "2[\"x\"]", 6, NULL, 0, 100, on_peer_reply, on_peer_end, NULL) ==
       WSIO_EPROTO; /* no ack id */
  n += sio_cluster_server_event(io, "/", "{}", 2, NULL, NULL) == WSIO_EPROTO;
  n += sio_cluster_server_event(io, "/", "[1]", 3, NULL, NULL) == WSIO_EPROTO;
  x->rc = n;
}

static void do_nowhere(int srv, void *arg) {
  op_args *x = arg;
  sio_targets t = {.nsp = "/nowhere"};
  ack_ctx *c = malloc(sizeof *c);
  *c = (ack_ctx){srv, 0, 0};
  x->rc = sio_cluster_broadcast_ack(g->io[srv], &t, "2/nowhere,7[\"x\"]", 16, NULL, 0, 100, on_peer_reply,
                                    on_peer_end, c);
  x->n = (size_t)__atomic_load_n(&g->ad[srv]->ends, __ATOMIC_SEQ_CST); /* on_end has not run inside */
}

/* A peer's broadcast with acks for a namespace this server does not have: no client, and on_end still
 * comes (after the call), so the adapter can release what it holds. */
static void test_broadcast_ack_no_namespace(void **state) {
  (void)state;
  int before = __atomic_load_n(&g->ad[1]->ends, __ATOMIC_SEQ_CST);
  op_args x = {0};
  run_on(1, do_nowhere, &x);
  assert_int_equal(x.rc, 0);
  assert_int_equal(x.n, before);
  wait_for(&g->ad[1]->ends, before + 1);
}

/* A peer's malformed packet is refused with WSIO_EPROTO and changes nothing; the server keeps serving. */
static void test_malformed_peer_packet(void **state) {
  (void)state;
  op_args x = {0};
  run_on(1, do_malformed, &x);
  assert_int_equal(x.rc, 9);
  /* Through the adapter path too: server 2 sends garbage as a broadcast to the others. */
  tmsg *m = msg_new(M_BCAST, 2);
  m->nsp = dup_s("/");
  msg_packet(m, "2[\"x\",]", 7, NULL, 0);
  int before = __atomic_load_n(&g->ad[0]->eproto, __ATOMIC_SEQ_CST);
  post_peers(2, m);
  marker(2); /* nobody got anything but the marker */
  assert_int_equal(__atomic_load_n(&g->ad[0]->eproto, __ATOMIC_SEQ_CST), before + 1);
  op_args y = {.event = "still", .json = "[1]"};
  run_on(1, do_emit, &y);
  for (int i = 0; i < NCLI; i++) cl_expect(&cli[i], "2[\"still\",1]");
}

static void do_data_api(int srv, void *arg) {
  (void)srv;
  op_args *x = arg;
  wsio_op op = wsio_nsp_op(wsio_io_sockets(g->io[srv]));
  wsio_socket *s[4];
  size_t n = wsio_op_fetch_sockets(&op, s, 4);
  int ok = n == 2;
  ok &= strcmp(wsio_socket_data_json(s[0]), "null") == 0;
  ok &= wsio_socket_set_data_json(s[0], "{bad") == WSIO_EINVAL;
  ok &= wsio_socket_set_data_json(s[0], " [1, 2] ") == 0 && strcmp(wsio_socket_data_json(s[0]), "[1, 2]") == 0;
  ok &= wsio_socket_set_data_json(s[0], NULL) == 0 && strcmp(wsio_socket_data_json(s[0]), "null") == 0;
  x->rc = ok;
}

static void test_data_json(void **state) {
  (void)state;
  op_args x = {0};
  run_on(0, do_data_api, &x);
  assert_int_equal(x.rc, 1);
}

/* Connection state recovery on server 1: a peer's broadcast carries server 1's offset and is retained, so a
 * client that comes back gets what it missed, as for local broadcasts. */
static void test_recovery_of_peer_broadcasts(void **state) {
  (void)state;
  client c;
  char pid[32], b[512], offset[64];
  size_t n;
  cl_open_auth(&c, 1, NULL, pid);
  char sid[32];
  memcpy(sid, c.sid, sizeof sid);
  op_args x = {.event = "first", .json = "[1]"};
  run_on(0, do_emit, &x);
  assert_int_equal(cl_read(&c, b, sizeof b, &n), 1);
  /* 2["first",1,"<boot>-<seq>"]: the offset server 1 stamped. */
  assert_true(strncmp(b, "2[\"first\",1,\"", 13) == 0);
  char *end = strrchr(b, '"');
  assert_non_null(end);
  snprintf(offset, sizeof offset, "%.*s", (int)(end - (b + 13)), b + 13);
  assert_non_null(strchr(offset, '-'));
  close(c.fd);
  /* Gone from server 1 (transport close: recoverable); two broadcasts from server 2 meanwhile. */
  size_t left = 1;
  for (int i = 0; i < 200 && left; i++) {
    run_on(1, do_nsp_count, &left);
    if (left) usleep(10000);
  }
  assert_int_equal(left, 0);
  op_args y = {.event = "missed", .json = "[2]"};
  run_on(2, do_emit, &y);
  op_args y2 = {.event = "missed", .json = "[3]", .to = {"nobody"}, .nto = 1};
  run_on(2, do_emit, &y2);
  marker(2);
  run_on(1, do_nsp_count, &left); /* queued after them: server 1 has applied all three */
  assert_int_equal(left, 0);
  char auth[160];
  snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"%s\"}", pid, offset);
  client r;
  cl_open_auth(&r, 1, auth, NULL);
  assert_string_equal(r.sid, sid); /* the same socket id: recovered */
  assert_int_equal(cl_read(&r, b, sizeof b, &n), 1);
  assert_true(strncmp(b, "2[\"missed\",2,\"", 14) == 0); /* only the one it was a target of */
  assert_int_equal(cl_read(&r, b, sizeof b, &n), 1);
  assert_true(strncmp(b, "2[\"marker\",\"", 12) == 0);
  close(r.fd);
}

static int setup_recovery(void **state) {
  memset(recovery_ms, 0, sizeof recovery_ms);
  recovery_ms[1] = 60000;
  return setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_emit_every_server, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_rooms_except, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_socket_broadcast, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_local_not_forwarded, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_volatile, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_binary_across, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_broadcast_acks_all, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_broadcast_acks_timeout, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_broadcast_acks_silent_peer, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_sockets_ops, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_fetch_sockets, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_server_side_emit, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_server_count, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_malformed_peer_packet, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_broadcast_ack_no_namespace, setup_clients, teardown_clients),
      cmocka_unit_test_setup_teardown(test_data_json, setup_clients, teardown_clients),
  };
  const struct CMUnitTest recovery[] = {
      cmocka_unit_test(test_recovery_of_peer_broadcasts),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed + cmocka_run_group_tests(recovery, setup_recovery, teardown);
}
