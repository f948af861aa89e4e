/*
 * Connection state recovery: what a reconnecting client gets back. As socket.io (socket.io-adapter's
 * SessionAwareAdapter), only broadcasts a client could otherwise miss for good are retained: a volatile one is
 * neither stamped with an offset nor replayed (it may be dropped for a congested client anyway, and what it
 * says is superseded, like a presence list). Raw Engine.IO v4 / Socket.IO v5 clients over WebSocket on
 * loopback; the server runs on its own thread and broadcasts when a client emits `pub`.
 *
 * Then recovery kept by an adapter for a whole cluster (sio/adapter.h: broadcast_offset, persist, restore),
 * with a stand-in for the Redis streams adapter written here: a list of broadcasts under offsets "9-N", one
 * saved session, and answers given from the loop, later, as a real adapter's come.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "api/raw_client.h"
#include "sio/adapter.h"
#include "wsio.h"

static struct {
  wsio_server *s;
  pthread_t thread;
  int port;
  int disconnects;
} g;

/* `pub` ["vol:x"] broadcasts news ["x"] volatile; ["x"] broadcasts it plainly. */
static void on_pub(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  char arg[32], json[48];
  if (wsio_args_string(args, 0, arg, sizeof arg) <= 0) return;
  wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
  const char *text = arg;
  if (strncmp(arg, "vol:", 4) == 0) {
    wsio_op_volatile(&op);
    text += 4;
  }
  snprintf(json, sizeof json, "[\"%s\"]", text);
  wsio_op_emit(&op, "news", json);
}

static void on_disconnect(wsio_socket *s, const char *reason, void *ud) {
  (void)s;
  (void)reason;
  (void)ud;
  __atomic_add_fetch(&g.disconnects, 1, __ATOMIC_SEQ_CST);
}

static void on_connection(wsio_socket *s, void *ud) {
  (void)ud;
  wsio_socket_on_disconnect(s, on_disconnect, NULL);
}

static void *run(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

/* ---- an adapter that keeps recovery for the cluster ---------------------------------------------------- */

#define FAKE_MAX 16

typedef struct fake {
  sio_adapter base;
  uv_timer_t timer;          /* answers go out from the loop, after the call */
  char texts[FAKE_MAX][128]; /* the "stream": broadcast i has offset "9-(i+1)" */
  int n, delivered;          /* broadcasts kept; those whose local part is done */
  char sid[21], pid[21];     /* the session saved */
  int saved;                 /* persist calls (read by the test thread) */
  uint64_t rid;              /* a restore to answer */
  char from[32];
  int restoring;
} fake;

static fake *the_fake;

static void fake_fire(uv_timer_t *t) {
  fake *f = t->data;
  wsio_io *io = f->base.io;
  sio_targets all = {.nsp = "/"};
  for (; f->delivered < f->n; f->delivered++) {
    char off[16];
    snprintf(off, sizeof off, "9-%d", f->delivered + 1);
    sio_cluster_broadcast_at(io, &all, f->texts[f->delivered], strlen(f->texts[f->delivered]), NULL, 0, off);
  }
  if (!f->restoring) return;
  f->restoring = 0;
  int from = atoi(f->from + 2); /* "9-N" */
  if (strcmp(f->pid, "") != 0 && from > 0 && from <= f->n) {
    sio_restore_pack pk;
    assert_int_equal(sio_restore_pack_begin(&pk, f->sid, "/", NULL, NULL, 0), 0);
    for (int i = from; i < f->n; i++) {
      char text[160];
      size_t len = strlen(f->texts[i]);
      snprintf(text, sizeof text, "%.*s,\"9-%d\"]", (int)(len - 1), f->texts[i], i + 1);
      assert_int_equal(sio_restore_pack_packet(io, &pk, text, strlen(text), NULL, 0), 0);
    }
    sio_cluster_restored(io, f->rid, (const char *)pk.b.data, pk.b.len);
    buf_free(&pk.b);
    f->pid[0] = 0; /* used once */
  }
  sio_cluster_done(io, f->rid);
}

static int fake_broadcast_offset(sio_adapter *a, const sio_targets *t, const char *pkt, size_t len,
                                 const sio_bin *atts, size_t natts) {
  (void)atts;
  fake *f = (fake *)a;
  if (t->flags & WSIO_OP_VOLATILE) return 1; /* sio's, at once (and no offset for a volatile one) */
  assert_true(natts == 0 && len < sizeof f->texts[0] && f->n < FAKE_MAX);
  memcpy(f->texts[f->n], pkt, len);
  f->texts[f->n++][len] = 0;
  uv_timer_start(&f->timer, fake_fire, 0, 0);
  return 0;
}

static void fake_persist(sio_adapter *a, const sio_session_info *s) {
  fake *f = (fake *)a;
  assert_string_equal(s->nsp, "/");
  snprintf(f->sid, sizeof f->sid, "%s", s->sid);
  snprintf(f->pid, sizeof f->pid, "%s", s->pid);
  __atomic_add_fetch(&f->saved, 1, __ATOMIC_SEQ_CST);
}

static int fake_restore(sio_adapter *a, uint64_t rid, const char *nsp, const char *pid, const char *offset) {
  fake *f = (fake *)a;
  assert_string_equal(nsp, "/");
  if (strcmp(pid, f->pid) != 0) return WSIO_ENOTFOUND; /* not here: a fresh session at once */
  f->rid = rid;
  snprintf(f->from, sizeof f->from, "%s", offset);
  f->restoring = 1;
  uv_timer_start(&f->timer, fake_fire, 0, 0);
  return 0;
}

static void fake_closed(uv_handle_t *h) { free(h->data); }

static void fake_free(sio_adapter *a) {
  fake *f = (fake *)a;
  uv_close((uv_handle_t *)&f->timer, fake_closed);
}

static const sio_adapter_vt fake_vt = {
    .free = fake_free,
    .restore = fake_restore,
    .broadcast_offset = fake_broadcast_offset,
    .persist = fake_persist,
};

static int start(int shared) {
  wsio_server_config sc = {.log_level = 2};
  g.s = wsio_server_new(&sc);
  assert_non_null(g.s);
  wsio_io_config ic = {.recovery_ms = 60000};
  wsio_io *io = wsio_io_new(g.s, &ic);
  assert_non_null(io);
  if (shared) {
    fake *f = calloc(1, sizeof *f);
    f->base.vt = &fake_vt;
    uv_timer_init(wsio_server_loop(g.s), &f->timer);
    f->timer.data = f;
    assert_int_equal(sio_adapter_attach(io, &f->base), 0);
    the_fake = f;
  }
  wsio_nsp_on_connection(wsio_io_sockets(io), on_connection, NULL);
  assert_int_equal(wsio_nsp_on(wsio_io_sockets(io), "pub", on_pub, NULL), 0);
  assert_int_equal(wsio_server_listen(g.s, "127.0.0.1", 0), 0);
  g.port = wsio_server_port(g.s);
  pthread_create(&g.thread, NULL, run, g.s);
  return 0;
}

static int setup(void **state) {
  (void)state;
  return start(0);
}

static int setup_shared(void **state) {
  (void)state;
  return start(1);
}

static int teardown(void **state) {
  (void)state;
  wsio_server_stop(g.s, 2000);
  pthread_join(g.thread, NULL);
  wsio_server_free(g.s);
  g.s = NULL;
  return 0;
}

/* ---- a raw client ------------------------------------------------------------------------------------ */

static void ws_send_text(int fd, const char *text) {
  size_t n = strlen(text);
  assert_true(n < 126);
  uint8_t f[2 + 4 + 126] = {0x81, (uint8_t)(0x80 | n)};
  memcpy(f + 6, text, n); /* mask key 0: the payload goes as it is */
  send_all(fd, f, 6 + n);
}

/* The next text message, answering Engine.IO pings; NUL-terminated in out. */
static void ws_read_text(int fd, char *out, size_t cap) {
  for (;;) {
    uint8_t h[4];
    read_exact(fd, h, 2);
    size_t n = h[1] & 0x7Fu;
    if (n == 126) {
      read_exact(fd, h + 2, 2);
      n = (size_t)h[2] << 8 | h[3];
    }
    assert_true(n < cap && n != 127);
    read_exact(fd, out, n);
    out[n] = 0;
    assert_int_equal(h[0], 0x81);
    if (strcmp(out, "2") == 0) {
      ws_send_text(fd, "3");
      continue;
    }
    return;
  }
}

/* Connects to the main namespace, with auth (NULL: none). Copies the answer's pid into pid[21]. */
static int sio_connect(const char *auth, char *pid) {
  int fd = raw_dial(g.port);
  const char *req = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n";
  send_all(fd, req, strlen(req));
  char line[512];
  read_head(fd, line, sizeof line);
  assert_memory_equal(line, "HTTP/1.1 101", 12);
  ws_read_text(fd, line, sizeof line);
  assert_memory_equal(line, "0{", 2);
  char connect[160];
  snprintf(connect, sizeof connect, "40%s", auth ? auth : "");
  ws_send_text(fd, connect);
  ws_read_text(fd, line, sizeof line);
  const char *p = strstr(line, "\"pid\":\"");
  assert_memory_equal(line, "40{", 3);
  assert_non_null(p);
  memcpy(pid, p + 7, 20);
  pid[20] = 0;
  return fd;
}

/* Checks that msg is 42["news","<want>"] or 42["news","<want>","<offset>"]; copies the offset ("": none). */
static void news(const char *msg, const char *want, char *offset, size_t cap) {
  char head[64];
  snprintf(head, sizeof head, "42[\"news\",\"%s\"", want);
  assert_memory_equal(msg, head, strlen(head));
  const char *rest = msg + strlen(head);
  offset[0] = 0;
  if (strcmp(rest, "]") == 0) return;
  assert_memory_equal(rest, ",\"", 2);
  size_t n = strlen(rest + 2);
  assert_true(n >= 2 && n - 2 < cap && strcmp(rest + 2 + n - 2, "\"]") == 0);
  memcpy(offset, rest + 2, n - 2);
  offset[n - 2] = 0;
}

/* ---- tests --------------------------------------------------------------------------------------------- */

static void test_volatile_not_retained(void **state) {
  (void)state;
  char pid[21], pid_a[21], pid2[21], msg[256], off[64], off2[64];
  int b = sio_connect(NULL, pid);
  int a = sio_connect(NULL, pid_a);
  assert_string_not_equal(pid, pid_a);

  /* Live: a plain broadcast carries its offset, a volatile one none. */
  ws_send_text(a, "42[\"pub\",\"p1\"]");
  ws_read_text(b, msg, sizeof msg);
  news(msg, "p1", off, sizeof off);
  assert_true(off[0] != 0);
  ws_send_text(a, "42[\"pub\",\"vol:v1\"]");
  ws_read_text(b, msg, sizeof msg);
  news(msg, "v1", off2, sizeof off2);
  assert_string_equal(off2, "");

  /* b goes away; a volatile and a plain broadcast while it is gone. */
  int gone = __atomic_load_n(&g.disconnects, __ATOMIC_SEQ_CST);
  close(b);
  wait_for(&g.disconnects, gone + 1);
  ws_send_text(a, "42[\"pub\",\"vol:v2\"]");
  ws_send_text(a, "42[\"pub\",\"p2\"]");
  for (int i = 0; i < 4; i++) ws_read_text(a, msg, sizeof msg); /* its own p1, v1, v2, p2: both were sent */
  news(msg, "p2", off2, sizeof off2);

  /* b comes back with its pid and offset: recovered, and only the plain one is replayed. */
  char auth[128];
  snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"%s\"}", pid, off);
  b = sio_connect(auth, pid2);
  assert_string_equal(pid2, pid);
  ws_read_text(b, msg, sizeof msg);
  news(msg, "p2", off, sizeof off);
  assert_string_equal(off, off2);
  ws_send_text(a, "42[\"pub\",\"p3\"]");
  ws_read_text(b, msg, sizeof msg);
  news(msg, "p3", off, sizeof off);
  close(a);
  close(b);
}

/* Recovery kept by the adapter: offsets are the adapter's, the local part of a broadcast waits for it, the
 * session goes to persist and comes back through restore, with what the adapter says was missed. */
static void test_kept_by_adapter(void **state) {
  (void)state;
  char pid[21], pid_a[21], pid2[21], msg[256], off[64], auth[128];
  int b = sio_connect(NULL, pid);
  int a = sio_connect(NULL, pid_a);
  ws_send_text(a, "42[\"pub\",\"p1\"]");
  ws_read_text(b, msg, sizeof msg);
  news(msg, "p1", off, sizeof off);
  assert_string_equal(off, "9-1");
  ws_send_text(a, "42[\"pub\",\"vol:v1\"]"); /* the adapter leaves it to sio: at once, no offset */
  ws_read_text(b, msg, sizeof msg);
  news(msg, "v1", off, sizeof off);
  assert_string_equal(off, "");

  int gone = __atomic_load_n(&g.disconnects, __ATOMIC_SEQ_CST);
  close(b);
  wait_for(&g.disconnects, gone + 1);
  assert_int_equal(__atomic_load_n(&the_fake->saved, __ATOMIC_SEQ_CST), 1);
  ws_send_text(a, "42[\"pub\",\"p2\"]");
  for (int i = 0; i < 3; i++) ws_read_text(a, msg, sizeof msg);
  news(msg, "p2", off, sizeof off);
  assert_string_equal(off, "9-2");

  /* back with its pid and offset: the adapter's session and the broadcast after 9-1 */
  snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"9-1\"}", pid);
  b = sio_connect(auth, pid2);
  assert_string_equal(pid2, pid);
  ws_read_text(b, msg, sizeof msg);
  news(msg, "p2", off, sizeof off);
  assert_string_equal(off, "9-2");
  ws_send_text(a, "42[\"pub\",\"p3\"]");
  ws_read_text(b, msg, sizeof msg);
  news(msg, "p3", off, sizeof off);
  assert_string_equal(off, "9-3");

  /* a pid the adapter does not hold: a fresh session */
  int c = sio_connect("{\"pid\":\"AAAAAAAAAAAAAAAAAAAA\",\"offset\":\"9-1\"}", pid2);
  assert_string_not_equal(pid2, "AAAAAAAAAAAAAAAAAAAA");
  close(a);
  close(b);
  close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_volatile_not_retained, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kept_by_adapter, setup_shared, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
