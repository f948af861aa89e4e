/* net_conn: moving a connection to another loop (net_conn_detach, net_conn_adopt), as workers do with a
 * request for a session another worker owns: the bytes read so far are fed again on the new loop (in one
 * call, however many), the socket keeps working there, and the old loop lets go of it without closing it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "api/raw_client.h"
#include "net/net.h"

typedef struct side {
  net_loop net;
  buf got;          /* bytes this side's protocol saw */
  int calls;        /* its on_data calls */
  int closed;
} side;

static side a, b;
static uv_loop_t uva, uvb;

/* Loop b's protocol: echoes every byte back, upper-cased, so the client can tell who answered. */
static void b_data(net_conn *c, uint8_t *data, size_t len) {
  b.calls++;
  buf_append(&b.got, data, len);
  for (size_t i = 0; i < len; i++)
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = (uint8_t)(data[i] - 32);
  net_conn_write(c, data, len);
}
static void b_close(net_conn *c) {
  (void)c;
  b.closed++;
}
static const net_proto b_proto = {.on_data = b_data, .on_close = b_close};

/* Bytes loop a hands over besides those it read (0: only those), as a worker hands a whole request. */
static size_t handed_extra;

/* Loop a's protocol: on the first bytes, hands the connection (and those bytes) to loop b. */
static void a_data(net_conn *c, uint8_t *data, size_t len) {
  buf_append(&a.got, data, len);
  net_tls *tls = (net_tls *)1;
  int fd = net_conn_detach(c, &tls);
  assert_true(fd >= 0);
  assert_null(tls);
  if (!handed_extra) {
    assert_int_equal(net_conn_adopt(&b.net, fd, NULL, data, len), 0);
    return;
  }
  uint8_t *all = malloc(len + handed_extra);
  assert_non_null(all);
  memcpy(all, data, len);
  memset(all + len, 'x', handed_extra);
  assert_int_equal(net_conn_adopt(&b.net, fd, NULL, all, len + handed_extra), 0);
  free(all);
}
static void a_close(net_conn *c) {
  (void)c;
  a.closed++; /* must not run: a detached connection closes without its protocol */
}
static const net_proto a_proto = {.on_data = a_data, .on_close = a_close};

static void spin(int fd_unused) {
  (void)fd_unused;
  for (int i = 0; i < 20; i++) {
    uv_run(&uva, UV_RUN_NOWAIT);
    uv_run(&uvb, UV_RUN_NOWAIT);
    usleep(2000);
  }
}

static void loops_start(void) {
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  uv_loop_init(&uva);
  uv_loop_init(&uvb);
  assert_int_equal(net_loop_init(&a.net, &uva), 0);
  assert_int_equal(net_loop_init(&b.net, &uvb), 0);
  a.net.accept_proto = &a_proto;
  b.net.accept_proto = &b_proto;
  assert_int_equal(net_listen(&a.net, "127.0.0.1", 0), 0);
}

static void loops_end(void) {
  net_loop_close(&a.net);
  net_loop_close(&b.net);
  uv_run(&uva, UV_RUN_DEFAULT);
  uv_run(&uvb, UV_RUN_DEFAULT);
  net_loop_free(&a.net);
  net_loop_free(&b.net);
  assert_int_equal(uv_loop_close(&uva), 0);
  assert_int_equal(uv_loop_close(&uvb), 0);
  buf_free(&a.got);
  buf_free(&b.got);
}

static void test_detach_adopt(void **state) {
  (void)state;
  handed_extra = 0;
  loops_start();
  int port = net_listener_port(&a.net, 0);
  int fd = raw_dial(port);
  send_all(fd, "hello", 5);
  spin(fd);
  /* b got the bytes a had read, and answered them on the same socket. */
  assert_int_equal(a.got.len, 5);
  assert_int_equal(b.got.len, 5);
  assert_memory_equal(b.got.data, "hello", 5);
  char reply[16];
  read_exact(fd, reply, 5);
  assert_memory_equal(reply, "HELLO", 5);
  /* The socket lives on b now: more bytes go there only. */
  send_all(fd, "more", 4);
  spin(fd);
  read_exact(fd, reply, 4);
  assert_memory_equal(reply, "MORE", 4);
  assert_int_equal(a.got.len, 5);
  assert_int_equal(a.net.stats.connections, 0);
  assert_int_equal(b.net.stats.connections, 1);
  assert_int_equal(a.closed, 0);
  assert_int_equal(b.net.stats.handoffs, 1);
  /* The peer's close reaches b. */
  close(fd);
  spin(-1);
  assert_int_equal(b.closed, 1);
  assert_int_equal(b.net.stats.connections, 0);
  loops_end();
}

/* More bytes than one read holds are handed over in one call: a request among them that the protocol
 * hands on again must take every byte after it along, which it could not from a partial call. */
static void test_adopt_long(void **state) {
  (void)state;
  handed_extra = 3 * NET_READ_BUFFER;
  loops_start();
  int fd = raw_dial(net_listener_port(&a.net, 0));
  send_all(fd, "hello", 5);
  spin(fd);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.got.len, 5 + handed_extra);
  assert_memory_equal(b.got.data, "hello", 5);
  close(fd);
  spin(-1);
  assert_int_equal(b.closed, 1);
  loops_end();
}

int main(void) {
  (void)wait_for;
  (void)read_head;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_detach_adopt), cmocka_unit_test(test_adopt_long)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
