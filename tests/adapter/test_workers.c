/* Workers: the mailboxes under two threads and with a burst posted from a loop, and wsio_workers_run with two workers serving real Engine.IO
 * long-polling clients over loopback: broadcasts, rooms and except, fetchSockets and serverSideEmit across
 * workers, requests handed to the worker that owns their session, publish across workers, a clean stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <uv.h>

#include "adapter/mailbox.h"
#include "api/raw_client.h"
#include "adapter/polling_client.h"
#include "adapter/workers_harness.h"
#include "wsio.h"

/* ---- the mailbox under two threads ---- */

#define MB_COUNT 200000

typedef struct mb_msg {
  wk_msg node;
  unsigned seq;
} mb_msg;

static unsigned mb_seen, mb_out_of_order;
static uv_async_t mb_done;

static void mb_run(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  mb_msg *x = m->payload;
  if (x->seq != mb_seen) mb_out_of_order++;
  mb_seen++;
  free(x);
  if (mb_seen == MB_COUNT) uv_close((uv_handle_t *)&mb_done, NULL);
}

static void mb_drop(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  free(m->payload);
}

static void mb_producer(void *arg) {
  wk_group *g = arg;
  for (unsigned i = 0; i < MB_COUNT; i++) {
    mb_msg *x = malloc(sizeof *x);
    x->seq = i;
    x->node = (wk_msg){.run = mb_run, .drop = mb_drop, .payload = x, .from = 1};
    assert_int_equal(wk_send(g, 0, &x->node), 0);
  }
}

static void noop_async(uv_async_t *a) { (void)a; }

static void test_mailbox_two_threads(void **state) {
  (void)state;
  wk_group *g = wk_group_new(2);
  assert_non_null(g);
  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(wk_open(g, 0, &loop), 0);
  /* Keeps the loop alive until every message has run (the mailbox's own handle does not). */
  uv_async_init(&loop, &mb_done, noop_async);
  uv_thread_t t;
  uv_thread_create(&t, mb_producer, g);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_thread_join(&t);
  assert_int_equal(mb_seen, MB_COUNT);
  assert_int_equal(mb_out_of_order, 0);
  /* Sealed: a send is dropped at once (no leak, no wake-up). */
  wk_seal(g);
  mb_msg *x = malloc(sizeof *x);
  x->node = (wk_msg){.run = mb_run, .drop = mb_drop, .payload = x};
  assert_int_equal(wk_send(g, 0, &x->node), WSIO_ECLOSED);
  wk_close(g, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  wk_group_free(g);
}

/* ---- a burst posted from a worker's loop: its peer starts on it before the iteration ends ---- */

#define BURST 1000

static atomic_uint burst_seen, burst_out_of_order;
static uv_async_t burst_done;
static uv_sem_t burst_sealed;
static int burst_early;

static void burst_run(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  mb_msg *x = m->payload;
  if (x->seq != atomic_load(&burst_seen)) atomic_fetch_add(&burst_out_of_order, 1);
  free(x);
  if (atomic_fetch_add(&burst_seen, 1) + 1 == BURST) uv_close((uv_handle_t *)&burst_done, NULL);
}

/* On worker 1's loop: posts the whole burst in one callback, then waits there (up to 5 s) for worker 0 to
 * have run some of it, which it can only if chains leave before the iteration ends. */
static void burst_post(uv_timer_t *t) {
  wk_group *g = t->data;
  for (unsigned i = 0; i < BURST; i++) {
    mb_msg *x = malloc(sizeof *x);
    x->seq = i;
    x->node = (wk_msg){.run = burst_run, .drop = mb_drop, .payload = x, .from = 1};
    wk_post(g, 1, 0, &x->node);
  }
  uint64_t end = uv_hrtime() + 5000000000ull;
  while (atomic_load(&burst_seen) == 0 && uv_hrtime() < end) sched_yield();
  burst_early = atomic_load(&burst_seen) > 0;
  uv_close((uv_handle_t *)t, NULL);
}

static void burst_worker(void *arg) {
  wk_group *g = arg;
  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(wk_open(g, 1, &loop), 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = g;
  uv_timer_start(&t, burst_post, 0, 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* the rest of the burst leaves at the end of the iteration */
  uv_sem_wait(&burst_sealed);
  wk_close(g, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_mailbox_burst_leaves_early(void **state) {
  (void)state;
  wk_group *g = wk_group_new(2);
  assert_non_null(g);
  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(wk_open(g, 0, &loop), 0);
  uv_async_init(&loop, &burst_done, noop_async);
  uv_sem_init(&burst_sealed, 0);
  uv_thread_t t;
  uv_thread_create(&t, burst_worker, g);
  uv_run(&loop, UV_RUN_DEFAULT);
  wk_seal(g);
  uv_sem_post(&burst_sealed);
  uv_thread_join(&t);
  assert_int_equal(atomic_load(&burst_seen), BURST);
  assert_int_equal(atomic_load(&burst_out_of_order), 0);
  assert_true(burst_early);
  wk_close(g, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  uv_sem_destroy(&burst_sealed);
  wk_group_free(g);
}

/* ---- two workers ---- */

typedef struct fixture {
  int ready;
  int sockets[2];              /* connected sockets per worker */
  int published[2];            /* raw WebSocket endpoint receptions (publish test) */
} fixture;

static fixture fx;

static void on_fetch_done(int err, const wsio_remote_socket *v, size_t n, void *ud) {
  wsio_ack *ack = ud;
  char text[64];
  snprintf(text, sizeof text, "[%d,%zu]", err, n);
  (void)v;
  wsio_ack_send(ack, text);
}

static void on_ev_fetch(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[64] = "";
  wsio_args_string(a, 0, room, sizeof room);
  wsio_op op = room[0] ? wsio_nsp_to(wsio_socket_nsp(s), room) : wsio_nsp_op(wsio_socket_nsp(s));
  wsio_ack *kept = wsio_ack_keep(ack);
  assert_int_equal(wsio_op_fetch_sockets_all(&op, on_fetch_done, kept), 0);
}

static void on_ev_bcast(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  wsio_op op = wsio_socket_broadcast(s);
  wsio_op_emit_args(&op, "msg", a);
}

static void on_ev_join(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[64];
  wsio_args_string(a, 0, room, sizeof room);
  wsio_socket_join(s, room);
  wsio_ack_send(ack, "[]");
}

/* "to"(room, except, text): io.to(room).except(except).emit("msg", text) */
static void on_ev_to(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  char room[64], except[64], text[64], json[128];
  wsio_args_string(a, 0, room, sizeof room);
  wsio_args_string(a, 1, except, sizeof except);
  wsio_args_string(a, 2, text, sizeof text);
  wsio_op op = wsio_nsp_to(wsio_socket_nsp(s), room);
  wsio_op_except(&op, except);
  snprintf(json, sizeof json, "[\"%s\"]", text);
  wsio_op_emit(&op, "msg", json);
}

static void on_sse_done(int err, const wsio_args *const *responses, size_t n, void *ud) {
  wsio_ack *ack = ud;
  char text[64];
  snprintf(text, sizeof text, "[%d,%zu]", err, n);
  (void)responses;
  wsio_ack_send(ack, text);
}

static void on_ev_sse(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a;
  (void)ud;
  wsio_ack *kept = wsio_ack_keep(ack);
  assert_int_equal(wsio_nsp_server_side_emit_ack(wsio_socket_nsp(s), "ping", "[1]", 2000, on_sse_done, kept), 0);
}

static void on_server_ping(wsio_nsp *n, const wsio_args *args, wsio_server_ack *ack, void *ud) {
  (void)n;
  (void)args;
  (void)ud;
  if (ack) wsio_server_ack_send(ack, "[\"pong\"]");
}

static void on_ws_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_server *s = wsio_ws_endpoint_user(ws);
  wsio_msg *m = wsio_msg_new(op, data, len);
  wsio_server_publish(s, "/pub", m, NULL, 0);
  wsio_msg_unref(m);
}

static void on_ws_open(wsio_ws *ws) {
  wsio_server *s = wsio_ws_endpoint_user(ws);
  __atomic_fetch_add(&fx.published[wsio_worker_index(s)], 1, __ATOMIC_SEQ_CST);
}

static void on_disconnect(wsio_socket *s, const char *reason, void *ud) {
  (void)s;
  (void)reason;
  __atomic_fetch_sub(&fx.sockets[(uintptr_t)ud], 1, __ATOMIC_SEQ_CST);
}

static void on_connection(wsio_socket *s, void *ud) {
  unsigned w = (unsigned)(uintptr_t)ud;
  /* Each socket learns its worker: the tests place clients on both. */
  char json[32];
  snprintf(json, sizeof json, "[%u]", w);
  wsio_socket_emit(s, "worker", json);
  wsio_socket_on_disconnect(s, on_disconnect, ud);
  __atomic_fetch_add(&fx.sockets[w], 1, __ATOMIC_SEQ_CST);
}

static int setup_worker(wsio_server *s, unsigned index, void *ud) {
  (void)ud;
  wsio_io_config ic = {.ping_interval_ms = 20000};
  wsio_io *io = wsio_io_new(s, &ic);
  if (!io) return WSIO_ENOMEM;
  wsio_nsp *n = wsio_io_sockets(io);
  wsio_nsp_on_connection(n, on_connection, (void *)(uintptr_t)index);
  wsio_nsp_on(n, "bcast", on_ev_bcast, NULL);
  wsio_nsp_on(n, "join", on_ev_join, NULL);
  wsio_nsp_on(n, "to", on_ev_to, NULL);
  wsio_nsp_on(n, "fetch", on_ev_fetch, NULL);
  wsio_nsp_on(n, "sse", on_ev_sse, NULL);
  wsio_nsp_on_server_side(n, "ping", on_server_ping, NULL);
  wsio_ws_handlers h = {.on_open = on_ws_open, .on_message = on_ws_message};
  wsio_ws_config wc = {.user = s};
  int rc = wsio_server_ws(s, "/pub", &h, &wc);
  if (rc) return rc;
  return wsio_server_listen(s, "127.0.0.1", 0);
}

static int start_fixture(void **state) {
  (void)state;
  memset(&fx, 0, sizeof fx);
  hw_start(setup_worker);
  pc_port = hw.port;
  return 0;
}

static int stop_fixture(void **state) {
  (void)state;
  hw_stop();
  return 0;
}

static void pc_open(pclient *c) {
  pc_handshake_once(c);
  pc_post(c, "40");
  char p[256];
  pc_packet(c, p, sizeof p);
  assert_true(strncmp(p, "40{", 3) == 0);
  pc_packet(c, p, sizeof p);
  assert_true(sscanf(p, "42[\"worker\",%d]", &c->worker) == 1);
}

/* Opens clients until each worker has at least `each` of them (the kernel picks the worker). */
static int pc_spread(pclient *v, int cap, int each) {
  int n = 0, on[2] = {0, 0};
  while (n < cap && (on[0] < each || on[1] < each)) {
    pc_open(&v[n]);
    on[v[n].worker]++;
    n++;
  }
  assert_true(on[0] >= each && on[1] >= each);
  return n;
}

static void test_broadcast_from_each_worker(void **state) {
  (void)state;
  enum { CAP = 60 };
  static pclient c[CAP];
  int n = pc_spread(c, CAP, 2);
  char p[256], want[64];
  for (int i = 0; i < n; i++) {
    snprintf(want, sizeof want, "42[\"bcast\",%d]", i);
    pc_post(&c[i], want);
  }
  /* Every client gets every other client's broadcast, whichever worker either is on, in sending order
   * per sender. */
  for (int k = 0; k < n; k++) {
    uint64_t got = 0;
    for (int i = 0; i < n - 1; i++) {
      pc_packet(&c[k], p, sizeof p);
      int from;
      assert_true(sscanf(p, "42[\"msg\",%d]", &from) == 1);
      assert_true(from != k && from >= 0 && from < n);
      assert_false(got & (1ull << from));
      got |= 1ull << from;
    }
    assert_int_equal(got, ((1ull << n) - 1) & ~(1ull << k));
  }
}

static void test_rooms_and_except(void **state) {
  (void)state;
  enum { CAP = 64 };
  static pclient c[CAP];
  int n = pc_spread(c, CAP, 2);
  /* Two of each worker's clients in "r"; one of them also in "x". */
  int in_r[2][2], k[2] = {0, 0};
  for (int i = 0; i < n; i++)
    if (k[c[i].worker] < 2) in_r[c[i].worker][k[c[i].worker]++] = i;
  char p[256];
  for (int w = 0; w < 2; w++)
    for (int j = 0; j < 2; j++) {
      pc_post(&c[in_r[w][j]], "421[\"join\",\"r\"]");
      pc_packet(&c[in_r[w][j]], p, sizeof p);
      assert_string_equal(p, "431[]");
    }
  pc_post(&c[in_r[1][0]], "422[\"join\",\"x\"]");
  pc_packet(&c[in_r[1][0]], p, sizeof p);
  /* From a client of worker 0: to "r" except "x". */
  pc_post(&c[in_r[0][0]], "42[\"to\",\"r\",\"x\",\"hello\"]");
  int expect[] = {in_r[0][0], in_r[0][1], in_r[1][1]};
  for (int i = 0; i < 3; i++) {
    pc_packet(&c[expect[i]], p, sizeof p);
    assert_string_equal(p, "42[\"msg\",\"hello\"]");
  }
  /* fetchSockets of "r" from worker 1 sees the four members over both workers. */
  pc_post(&c[in_r[1][1]], "423[\"fetch\",\"r\"]");
  pc_packet(&c[in_r[1][1]], p, sizeof p);
  assert_string_equal(p, "433[0,4]");
  /* The excepted client got nothing: its next packet is the answer to its own request. */
  pc_post(&c[in_r[1][0]], "424[\"fetch\",\"x\"]");
  pc_packet(&c[in_r[1][0]], p, sizeof p);
  assert_string_equal(p, "434[0,1]");
}

static void test_fetch_and_server_side_emit(void **state) {
  (void)state;
  enum { CAP = 64 };
  static pclient c[CAP];
  int n = pc_spread(c, CAP, 1);
  char p[256], want[64];
  int total = __atomic_load_n(&fx.sockets[0], __ATOMIC_SEQ_CST) + __atomic_load_n(&fx.sockets[1], __ATOMIC_SEQ_CST);
  assert_true(total >= n);
  pc_post(&c[0], "425[\"fetch\"]");
  pc_packet(&c[0], p, sizeof p);
  snprintf(want, sizeof want, "435[0,%d]", total);
  assert_string_equal(p, want);
  /* serverSideEmit with ack: one answer, from the other worker. */
  pc_post(&c[1], "426[\"sse\"]");
  pc_packet(&c[1], p, sizeof p);
  assert_string_equal(p, "436[0,1]");
}

static void test_publish_across_workers(void **state) {
  (void)state;
  /* Raw WebSocket clients until each worker has one; a message to one reaches all. */
  int fds[16], n = 0;
  while (n < 16 && (__atomic_load_n(&fx.published[0], __ATOMIC_SEQ_CST) < 1 ||
                    __atomic_load_n(&fx.published[1], __ATOMIC_SEQ_CST) < 1)) {
    int fd = raw_dial(hw.port);
    const char *req = "GET /pub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, req, strlen(req));
    char head[1024];
    read_head(fd, head, sizeof head);
    assert_non_null(strstr(head, "101"));
    fds[n++] = fd;
    int opened = n;
    for (int i = 0; i < 200 && __atomic_load_n(&fx.published[0], __ATOMIC_SEQ_CST) +
                                       __atomic_load_n(&fx.published[1], __ATOMIC_SEQ_CST) < opened; i++)
      usleep(5000);
  }
  assert_true(fx.published[0] >= 1 && fx.published[1] >= 1);
  const uint8_t frame[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}; /* masked "hi" */
  send_all(fds[0], frame, sizeof frame);
  for (int i = 0; i < n; i++) {
    uint8_t got[4];
    read_exact(fds[i], got, 4);
    assert_int_equal(got[0], 0x81);
    assert_int_equal(got[1], 2);
    assert_memory_equal(got + 2, "hi", 2);
    close(fds[i]);
  }
}

static void test_stats_sum_workers(void **state) {
  (void)state;
  pclient c;
  pc_open(&c);
  usleep(50000);
  pclient d[8];
  pc_spread(d, 8, 1);
  usleep(50000);
  wsio_stats a, sum;
  wsio_workers_stats(hw.servers[0], &sum);
  wsio_workers_stats(hw.servers[1], &a);
  /* Either worker sees the sum of both: every socket, whichever worker it is on. */
  uint64_t total = (uint64_t)(__atomic_load_n(&fx.sockets[0], __ATOMIC_SEQ_CST) +
                              __atomic_load_n(&fx.sockets[1], __ATOMIC_SEQ_CST));
  assert_true(total >= 3);
  assert_int_equal(sum.sio_sockets, total);
  assert_int_equal(a.sio_sockets, total);
  assert_int_equal(sum.sio_polling, total);
}

int main(void) {
  (void)wait_for;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mailbox_two_threads),
      cmocka_unit_test(test_mailbox_burst_leaves_early),
      cmocka_unit_test_setup_teardown(test_broadcast_from_each_worker, start_fixture, stop_fixture),
      cmocka_unit_test_setup_teardown(test_rooms_and_except, start_fixture, stop_fixture),
      cmocka_unit_test_setup_teardown(test_fetch_and_server_side_emit, start_fixture, stop_fixture),
      cmocka_unit_test_setup_teardown(test_publish_across_workers, start_fixture, stop_fixture),
      cmocka_unit_test_setup_teardown(test_stats_sum_workers, start_fixture, stop_fixture),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
