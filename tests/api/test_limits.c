/* The public API's abuse limits over loopback: a wsio_limiter shared by two servers on two threads
 * (connections per address: 503, then closed at accept), the handshake rate (429), the message rate of raw
 * WebSocket endpoints (close 1008, or drop) and the packet rate of Socket.IO ("rate limit"), with their
 * wsio_stats counters. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/raw_client.h"
#include "wsio.h"

static void *run(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

typedef struct running {
  wsio_server *s;
  pthread_t thread;
  int port;
} running;

static void start(running *r, wsio_server *s) {
  r->s = s;
  assert_int_equal(wsio_server_listen(s, "127.0.0.1", 0), 0);
  r->port = wsio_server_port(s);
  pthread_create(&r->thread, NULL, run, s);
}

/* Stops r; its counters are then safe to read from this thread. */
static void stop(running *r, wsio_stats *st) {
  wsio_server_stop(r->s, 2000);
  pthread_join(r->thread, NULL);
  wsio_server_stats(r->s, st);
}

/* GET path on fd (keep-alive); returns the status, the head in head. */
static int get(int fd, const char *path, char *head, size_t cap) {
  char req[256];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
  send_all(fd, req, strlen(req));
  if (read_head(fd, head, cap) < 12) return -1;
  return atoi(head + 9);
}

static int upgrade(int port, const char *path, char *head, size_t cap) {
  int fd = raw_dial(port);
  char req[512];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           path);
  send_all(fd, req, strlen(req));
  if (read_head(fd, head, cap) < 12) {
    close(fd);
    return -1;
  }
  return fd;
}

static void send_text(int fd, const char *text) {
  size_t len = strlen(text);
  uint8_t f[256] = {0x81, (uint8_t)(0x80 | len), 1, 2, 3, 4};
  assert_true(len < 126);
  for (size_t i = 0; i < len; i++) f[6 + i] = (uint8_t)text[i] ^ f[2 + (i & 3)];
  send_all(fd, f, 6 + len);
}

/* One server frame (payload < 126 bytes); returns its opcode, the payload NUL-terminated in out. */
static int read_frame(int fd, char *out, size_t *len) {
  uint8_t h[2];
  read_exact(fd, h, 2);
  size_t n = h[1] & 0x7f;
  assert_true(n < 126);
  read_exact(fd, out, n);
  out[n] = 0;
  *len = n;
  return h[0] & 0x0f;
}

/* ---- connections per address, one table for two servers on two threads ---- */

static void test_shared_limiter(void **state) {
  (void)state;
  wsio_limiter_config lc = {.max_connections_per_ip = 1};
  wsio_limiter *lim = wsio_limiter_new(&lc);
  assert_non_null(lim);
  wsio_server_config sc = {.log_level = 2, .limiter = lim, .max_connections_per_ip = 1000};
  running a, b;
  start(&a, wsio_server_new(&sc));
  start(&b, wsio_server_new(&sc));
  wsio_limiter_free(lim); /* the servers keep the table */
  char head[1024];
  int fa = raw_dial(a.port);
  assert_int_equal(get(fa, "/healthz", head, sizeof head), 200);
  /* The same address on the other server (another loop, another thread) is over the shared limit. */
  int fb = raw_dial(b.port);
  assert_int_equal(get(fb, "/healthz", head, sizeof head), 503);
  assert_non_null(strstr(head, "\r\nRetry-After: 5\r\n"));
  assert_non_null(strstr(head, "\r\nConnection: close\r\n"));
  /* Past twice the limit (one admitted, one told to come back and still open), a connection is closed at
   * accept without an answer. */
  int dropped = raw_dial(a.port);
  char c;
  ssize_t got = read(dropped, &c, 1);
  assert_true(got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)); /* closed, not a timeout */
  close(dropped);
  /* Both leave: the other server lets the address in again. */
  close(fb);
  close(fa);
  int status = 0;
  for (int i = 0; i < 200 && status != 200; i++) {
    int fd = raw_dial(b.port);
    status = get(fd, "/healthz", head, sizeof head);
    close(fd);
    if (status != 200) usleep(10000);
  }
  assert_int_equal(status, 200);
  wsio_stats sa, sb;
  stop(&a, &sa);
  stop(&b, &sb);
  assert_true(sb.ip_refused >= 1);
  assert_true(sa.ip_refused + sb.ip_refused >= 2);
  assert_int_equal(sa.ip_addresses, sb.ip_addresses); /* one table */
  assert_true(sa.ip_addresses >= 1);
  wsio_server_free(a.s);
  wsio_server_free(b.s);
}

/* ---- the handshake rate and the message rate of raw endpoints ---- */

static void echo(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) { wsio_ws_send(ws, op, data, len, 0); }

static void test_rates(void **state) {
  (void)state;
  wsio_server_config sc = {.log_level = 1, .handshakes_per_ip_per_second = 1, .handshake_burst = 2};
  wsio_server *s = wsio_server_new(&sc);
  assert_non_null(s);
  wsio_ws_handlers h = {.on_message = echo};
  wsio_ws_config close_cfg = {.messages_per_second = 3, .message_burst = 3};
  wsio_ws_config drop_cfg = {.messages_per_second = 3, .message_burst = 3, .message_rate_drop = 1};
  assert_int_equal(wsio_server_ws(s, "/close", &h, &close_cfg), 0);
  assert_int_equal(wsio_server_ws(s, "/drop", &h, &drop_cfg), 0);
  running r;
  start(&r, s);
  char head[1024], buf[256];
  size_t n;
  int w1 = upgrade(r.port, "/close", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  /* A request that is no upgrade, or an upgrade to no endpoint, takes no token. */
  int fd = raw_dial(r.port);
  assert_int_equal(get(fd, "/healthz", head, sizeof head), 200);
  close(fd);
  int w2 = upgrade(r.port, "/drop", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  int w3 = upgrade(r.port, "/close", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 429 Too Many Requests"));
  assert_non_null(strstr(head, "\r\nRetry-After: 1\r\n"));
  close(w3);

  /* Close mode: three messages pass, the fourth closes with 1008 "rate limit". */
  for (int i = 0; i < 6; i++) send_text(w1, "hello");
  for (int i = 0; i < 3; i++) {
    assert_int_equal(read_frame(w1, buf, &n), 1);
    assert_string_equal(buf, "hello");
  }
  assert_int_equal(read_frame(w1, buf, &n), 8);
  assert_int_equal((uint8_t)buf[0] << 8 | (uint8_t)buf[1], 1008);
  assert_string_equal(buf + 2, "rate limit");
  close(w1);

  /* Drop mode: three pass, three are dropped, and the connection goes on once tokens are back. */
  for (int i = 0; i < 6; i++) send_text(w2, i < 3 ? "kept" : "over");
  for (int i = 0; i < 3; i++) {
    assert_int_equal(read_frame(w2, buf, &n), 1);
    assert_string_equal(buf, "kept");
  }
  usleep(400000); /* 3 per second: one token back */
  send_text(w2, "later");
  assert_int_equal(read_frame(w2, buf, &n), 1);
  assert_string_equal(buf, "later");
  close(w2);

  wsio_stats st;
  stop(&r, &st);
  assert_int_equal(st.handshakes_limited, 1);
  assert_int_equal(st.rate_closes, 1);
  assert_int_equal(st.rate_dropped, 3);
  assert_int_equal(st.ip_refused, 0);
  wsio_server_free(s);
}

/* ---- the packet rate of Socket.IO ---- */

static char reason[64];
static int disconnects;

static void on_disconnect(wsio_socket *s, const char *why, void *ud) {
  (void)s;
  (void)ud;
  snprintf(reason, sizeof reason, "%s", why);
  __atomic_add_fetch(&disconnects, 1, __ATOMIC_SEQ_CST);
}

static int ack_results[3];

static void ack_cb(wsio_socket *s, int err, const wsio_args *args, void *ud) {
  (void)s;
  (void)err;
  (void)args;
  (void)ud;
}

static void on_connection(wsio_socket *s, void *ud) {
  (void)ud;
  wsio_socket_on_disconnect(s, on_disconnect, NULL);
  /* max_pending_acks is 2: the third wait is refused with WSIO_ELIMIT (and counted). */
  for (int i = 0; i < 3; i++) ack_results[i] = wsio_socket_emit_ack(s, "q", NULL, 0, ack_cb, NULL);
}

static void test_sio_packet_rate(void **state) {
  (void)state;
  wsio_server *s = wsio_server_new(&(wsio_server_config){.log_level = 1});
  wsio_io_config ic = {.packets_per_second = 1, .packet_burst = 2, .max_pending_acks = 2};
  wsio_io *io = wsio_io_new(s, &ic);
  assert_non_null(io);
  wsio_nsp_on_connection(wsio_io_sockets(io), on_connection, NULL);
  running r;
  start(&r, s);
  char head[1024], buf[256];
  size_t n;
  int fd = upgrade(r.port, "/socket.io/?EIO=4&transport=websocket", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_int_equal(read_frame(fd, buf, &n), 1);
  assert_int_equal(buf[0], '0'); /* Engine.IO open */
  send_text(fd, "40");           /* the CONNECT takes the first token */
  assert_int_equal(read_frame(fd, buf, &n), 1);
  assert_memory_equal(buf, "40{", 3);
  for (int i = 0; i < 2; i++) { /* the two emits with ack that were not refused */
    assert_int_equal(read_frame(fd, buf, &n), 1);
    assert_memory_equal(buf, "42", 2);
  }
  send_text(fd, "42[\"a\"]");    /* the second */
  send_text(fd, "42[\"b\"]");    /* over: DISCONNECT, then the session closes */
  assert_int_equal(read_frame(fd, buf, &n), 1);
  assert_string_equal(buf, "41");
  int op = read_frame(fd, buf, &n);
  assert_int_equal(op, 8);
  close(fd);
  wait_for(&disconnects, 1);
  wsio_stats st;
  stop(&r, &st);
  assert_string_equal(reason, "rate limit");
  assert_int_equal(st.sio_rate_closes, 1);
  assert_int_equal(st.sio_rate_dropped, 0);
  assert_int_equal(ack_results[0], 0);
  assert_int_equal(ack_results[1], 0);
  assert_int_equal(ack_results[2], WSIO_ELIMIT);
  assert_int_equal(st.sio_acks_refused, 1);
  wsio_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_limiter),
      cmocka_unit_test(test_rates),
      cmocka_unit_test(test_sio_packet_rate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
