/* The public API end to end over loopback: a server on its own thread, blocking raw-socket clients. */
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
#include <unistd.h>

#include <cmocka.h>

#include "api/raw_client.h"

#include "wsio.h"

typedef struct fixture {
  wsio_server *s;
  pthread_t thread;
  int port;
  int opened, closed, last_close_code, errors;
} fixture;

static fixture *g;

static void on_open(wsio_ws *ws) {
  (void)ws;
  __atomic_add_fetch(&g->opened, 1, __ATOMIC_SEQ_CST);
}

static void on_echo(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  if (len == 5 && memcmp(data, "close", 5) == 0) {
    wsio_ws_close(ws, 4000, "asked");
    return;
  }
  /* Callbacks run on the server thread, where cmocka's asserts can't jump: failures show up client-side. */
  if (wsio_ws_send(ws, op, data, len, 0) != 0) __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
}

static void on_close(wsio_ws *ws, int code, const char *reason, size_t len) {
  (void)ws;
  (void)reason;
  (void)len;
  __atomic_store_n(&g->last_close_code, code, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&g->closed, 1, __ATOMIC_SEQ_CST);
}

static void on_bcast(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_msg *m = wsio_msg_new(op, data, len);
  if (!m || wsio_server_publish(wsio_ws_endpoint_user(ws), "/bcast", m, ws, 0) != 2)
    __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  wsio_msg_unref(m);
}

static void *run(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

static int setup(void **state) {
  g = calloc(1, sizeof *g);
  wsio_server_config sc = {.log_level = 2};
  g->s = wsio_server_new(&sc);
  assert_non_null(g->s);
  wsio_ws_handlers echo = {.on_open = on_open, .on_message = on_echo, .on_close = on_close};
  wsio_ws_config wc = {.max_message_size = 1 << 16, .user = g->s};
  assert_int_equal(wsio_server_ws(g->s, "/echo", &echo, &wc), 0);
  assert_int_equal(wsio_server_ws(g->s, "/echo", &echo, &wc), WSIO_EEXISTS);
  wsio_ws_handlers bc = {.on_message = on_bcast};
  assert_int_equal(wsio_server_ws(g->s, "/bcast", &bc, &wc), 0);
  assert_int_equal(wsio_server_listen(g->s, "127.0.0.1", 0), 0);
  g->port = wsio_server_port(g->s);
  assert_true(g->port > 0);
  pthread_create(&g->thread, NULL, run, g->s);
  *state = g;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  assert_int_equal(__atomic_load_n(&g->errors, __ATOMIC_SEQ_CST), 0);
  wsio_server_stop(g->s, 2000);
  pthread_join(g->thread, NULL);
  wsio_server_free(g->s);
  free(g);
  return 0;
}

/* ---- a tiny blocking client ---- */

static int dial(void) { return raw_dial(g->port); }

static int ws_dial(const char *path) {
  int fd = dial();
  char req[512];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           path);
  send_all(fd, req, strlen(req));
  char head[2048];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_non_null(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  return fd;
}

static void send_frame(int fd, int fin, int op, const void *data, size_t len, int masked) {
  uint8_t h[14], m[4] = {0x11, 0x22, 0x33, 0x44};
  size_t hl = 0;
  h[hl++] = (uint8_t)((fin ? 0x80 : 0) | op);
  uint8_t mb = masked ? 0x80 : 0;
  if (len < 126) {
    h[hl++] = (uint8_t)(mb | len);
  } else if (len < 65536) {
    h[hl++] = mb | 126;
    h[hl++] = (uint8_t)(len >> 8);
    h[hl++] = (uint8_t)len;
  } else {
    h[hl++] = mb | 127;
    for (int i = 7; i >= 0; i--) h[hl++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (masked) {
    memcpy(h + hl, m, 4);
    hl += 4;
  }
  send_all(fd, h, hl);
  uint8_t *p = malloc(len + 1);
  memcpy(p, data, len);
  if (masked)
    for (size_t i = 0; i < len; i++) p[i] ^= m[i & 3];
  send_all(fd, p, len);
  free(p);
}

/* Reads one (unmasked, server) frame; returns its opcode, payload in out. */
static int read_frame(int fd, uint8_t *out, size_t cap, size_t *len) {
  uint8_t h[2];
  read_exact(fd, h, 2);
  assert_int_equal(h[1] & 0x80, 0); /* servers never mask */
  uint64_t n = h[1] & 0x7f;
  if (n == 126) {
    uint8_t e[2];
    read_exact(fd, e, 2);
    n = (uint64_t)e[0] << 8 | e[1];
  } else if (n == 127) {
    uint8_t e[8];
    read_exact(fd, e, 8);
    n = 0;
    for (int i = 0; i < 8; i++) n = n << 8 | e[i];
  }
  assert_true(n <= cap);
  read_exact(fd, out, (size_t)n);
  *len = (size_t)n;
  return h[0] & 0x0f;
}

static int read_close_code(int fd) {
  uint8_t p[128];
  size_t n;
  assert_int_equal(read_frame(fd, p, sizeof p, &n), 8);
  if (n < 2) return 1005;
  return p[0] << 8 | p[1];
}

static int wait_eof(int fd) {
  uint8_t b[64];
  return read(fd, b, sizeof b) == 0;
}

/* ---- tests ---- */

static void test_healthz(void **state) {
  (void)state;
  int fd = dial();
  const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send_all(fd, req, strlen(req));
  char head[2048];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 200"));
  char body[3];
  read_exact(fd, body, 3);
  assert_memory_equal(body, "ok\n", 3);
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 404"));
  close(fd);
}

static void test_echo_and_close(void **state) {
  (void)state;
  int opened = __atomic_load_n(&g->opened, __ATOMIC_SEQ_CST);
  int closed = __atomic_load_n(&g->closed, __ATOMIC_SEQ_CST);
  int fd = ws_dial("/echo");
  wait_for(&g->opened, opened + 1);
  uint8_t buf[70000];
  size_t n;
  /* Several frames in one write: the answers come back in order. */
  send_frame(fd, 1, 1, "hello", 5, 1);
  send_frame(fd, 1, 2, "\x00\x01\x02", 3, 1);
  assert_int_equal(read_frame(fd, buf, sizeof buf, &n), 1);
  assert_int_equal(n, 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(read_frame(fd, buf, sizeof buf, &n), 2);
  assert_int_equal(n, 3);
  /* Fragmented, with a ping between the fragments. */
  send_frame(fd, 0, 1, "frag", 4, 1);
  send_frame(fd, 1, 9, "p", 1, 1);
  send_frame(fd, 1, 0, "ment", 4, 1);
  assert_int_equal(read_frame(fd, buf, sizeof buf, &n), 10);
  assert_int_equal(n, 1);
  assert_int_equal(read_frame(fd, buf, sizeof buf, &n), 1);
  assert_int_equal(n, 8);
  assert_memory_equal(buf, "fragment", 8);
  /* A close from the client is answered with the same code, then the server closes TCP. */
  send_frame(fd, 1, 8, "\x03\xe8" "bye", 5, 1);
  assert_int_equal(read_close_code(fd), 1000);
  assert_true(wait_eof(fd));
  close(fd);
  wait_for(&g->closed, closed + 1);
  assert_int_equal(__atomic_load_n(&g->last_close_code, __ATOMIC_SEQ_CST), 1000);
}

static void test_server_close(void **state) {
  (void)state;
  int closed = __atomic_load_n(&g->closed, __ATOMIC_SEQ_CST);
  int fd = ws_dial("/echo");
  send_frame(fd, 1, 1, "close", 5, 1);
  uint8_t buf[128];
  size_t n;
  assert_int_equal(read_frame(fd, buf, sizeof buf, &n), 8);
  assert_int_equal(buf[0] << 8 | buf[1], 4000);
  assert_memory_equal(buf + 2, "asked", 5);
  send_frame(fd, 1, 8, "\x0f\xa0", 2, 1);
  assert_true(wait_eof(fd));
  close(fd);
  wait_for(&g->closed, closed + 1);
  assert_int_equal(__atomic_load_n(&g->last_close_code, __ATOMIC_SEQ_CST), 4000);
}

static void test_protocol_errors(void **state) {
  (void)state;
  int fd = ws_dial("/echo");
  send_frame(fd, 1, 1, "x", 1, 0); /* unmasked */
  assert_int_equal(read_close_code(fd), 1002);
  close(fd);

  fd = ws_dial("/echo");
  send_frame(fd, 1, 1, "\xff\xfe", 2, 1); /* invalid UTF-8 */
  assert_int_equal(read_close_code(fd), 1007);
  close(fd);

  fd = ws_dial("/echo");
  static uint8_t big[70000];
  send_frame(fd, 1, 2, big, sizeof big, 1); /* over the 64 KiB limit */
  assert_int_equal(read_close_code(fd), 1009);
  close(fd);
}

static void test_handshake_refused(void **state) {
  (void)state;
  int fd = dial();
  const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
  send_all(fd, req, strlen(req));
  char head[2048];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 426"));
  close(fd);

  fd = dial();
  req = "GET /unknown HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  send_all(fd, req, strlen(req));
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 404"));
  close(fd);
}

static void test_publish(void **state) {
  (void)state;
  int a = ws_dial("/bcast"), b = ws_dial("/bcast"), c = ws_dial("/bcast");
  usleep(50000);
  send_frame(a, 1, 1, "to all", 6, 1);
  uint8_t buf[64];
  size_t n;
  assert_int_equal(read_frame(b, buf, sizeof buf, &n), 1);
  assert_memory_equal(buf, "to all", 6);
  assert_int_equal(read_frame(c, buf, sizeof buf, &n), 1);
  assert_memory_equal(buf, "to all", 6);
  /* The sender was excluded: its next frame is the echo of nothing but a pong to its ping. */
  send_frame(a, 1, 9, "", 0, 1);
  assert_int_equal(read_frame(a, buf, sizeof buf, &n), 10);
  close(a);
  close(b);
  close(c);
}

static void test_msg_refcount(void **state) {
  (void)state;
  wsio_msg *m = wsio_msg_new(WSIO_TEXT, "abc", 3);
  assert_non_null(m);
  assert_ptr_equal(wsio_msg_ref(m), m);
  wsio_msg_unref(m);
  wsio_msg_unref(m);
  assert_null(wsio_msg_new((wsio_opcode)7, "abc", 3));
  assert_string_equal(wsio_strerror(WSIO_EBACKPRESSURE), "connection's send buffer is over its limit");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_healthz),
      cmocka_unit_test(test_echo_and_close),
      cmocka_unit_test(test_server_close),
      cmocka_unit_test(test_protocol_errors),
      cmocka_unit_test(test_handshake_refused),
      cmocka_unit_test(test_publish),
      cmocka_unit_test(test_msg_refcount),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
