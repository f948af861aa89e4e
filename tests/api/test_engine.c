/* The public Engine.IO API end to end over loopback: an echo engine beside a Socket.IO server, raw-socket
 * clients. Several cases pin behaviour the official Engine.IO protocol test-suite checks. */
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

#include <cmocka.h>

#include "api/raw_client.h"

#include "wsio.h"

#define PING_INTERVAL 200
#define PING_TIMEOUT 200

typedef struct fixture {
  wsio_server *s;
  wsio_engine *e;
  pthread_t thread;
  int port;
  int opened, errors;
  int count_at_open;
  int send_after_close;         /* what wsio_engine_socket_send returned after closing in a callback */
  int flood_refused;            /* sends refused as over the per-session buffer limit */
  pthread_mutex_t lock;         /* guards the close log */
  struct {
    char sid[21];
    char reason[32];
  } log[64];                    /* every close, by session id */
  int nlog;
} fixture;

static fixture *g;

/* ---- the server (callbacks run on its thread: failures are counted, asserted client-side) ---- */

static void on_message(wsio_engine_socket *s, wsio_opcode op, const void *data, size_t len, void *ud) {
  (void)ud;
  if (op == WSIO_TEXT && len == 5 && memcmp(data, "flood", 5) == 0) {
    /* 64 MiB at a client that does not read: the session must be cut off, not buffered. */
    static uint8_t mib[1 << 20];
    for (int i = 0; i < 64; i++)
      if (wsio_engine_socket_send(s, WSIO_BINARY, mib, sizeof mib) == WSIO_EBACKPRESSURE)
        __atomic_add_fetch(&g->flood_refused, 1, __ATOMIC_SEQ_CST);
    return;
  }
  if (op == WSIO_TEXT && len == 8 && memcmp(data, "close-me", 8) == 0) {
    wsio_engine_socket_close(s);
    __atomic_store_n(&g->send_after_close, wsio_engine_socket_send(s, WSIO_TEXT, "x", 1), __ATOMIC_SEQ_CST);
    return;
  }
  if (wsio_engine_socket_send(s, op, data, len) != 0) __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
}

static void on_close(wsio_engine_socket *s, const char *reason, void *ud) {
  (void)ud;
  if (strlen(wsio_engine_socket_id(s)) != 20) __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&g->lock);
  if (g->nlog < 64) {
    snprintf(g->log[g->nlog].sid, sizeof g->log[0].sid, "%s", wsio_engine_socket_id(s));
    snprintf(g->log[g->nlog].reason, sizeof g->log[0].reason, "%s", reason);
    g->nlog++;
  }
  pthread_mutex_unlock(&g->lock);
}

static void on_connection(wsio_engine_socket *s, void *ud) {
  if (ud != g) __atomic_add_fetch(&g->errors, 1, __ATOMIC_SEQ_CST);
  wsio_engine_socket_on_message(s, on_message, NULL);
  wsio_engine_socket_on_close(s, on_close, NULL);
  __atomic_store_n(&g->count_at_open, (int)wsio_engine_count(g->e), __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&g->opened, 1, __ATOMIC_SEQ_CST);
}

static void *run(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

static int setup(void **state) {
  g = calloc(1, sizeof *g);
  pthread_mutex_init(&g->lock, NULL);
  wsio_server_config sc = {.log_level = 2};
  g->s = wsio_server_new(&sc);
  assert_non_null(g->s);
  assert_non_null(wsio_io_new(g->s, NULL)); /* at /socket.io/ */
  wsio_engine_config ec = {.ping_interval_ms = PING_INTERVAL, .ping_timeout_ms = PING_TIMEOUT, .cors_origin = "*"};
  g->e = wsio_engine_new(g->s, &ec);
  assert_non_null(g->e);
  wsio_engine_on_connection(g->e, on_connection, g);
  /* Paths are exclusive: the io's, and an engine's (with or without the trailing slash). */
  wsio_engine_config taken = {.path = "/socket.io"};
  assert_null(wsio_engine_new(g->s, &taken));
  taken.path = "/engine.io";
  assert_null(wsio_engine_new(g->s, &taken));
  taken.path = "relative/";
  assert_null(wsio_engine_new(g->s, &taken));
  assert_int_equal(wsio_server_listen(g->s, "127.0.0.1", 0), 0);
  g->port = wsio_server_port(g->s);
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
  pthread_mutex_destroy(&g->lock);
  free(g);
  return 0;
}

/* ---- a tiny blocking client ---- */

static int dial(void) { return raw_dial(g->port); }

static void send_request(int fd, const char *method, const char *target, const char *body) {
  char req[1024];
  size_t blen = body ? strlen(body) : 0;
  snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n%s", method, target,
           blen, body ? body : "");
  send_all(fd, req, strlen(req));
}

/* Reads one response; returns its status, the body NUL-terminated in out. */
static int read_response(int fd, char *out, size_t cap) {
  char head[2048];
  read_head(fd, head, sizeof head);
  int status = 0;
  sscanf(head, "HTTP/1.1 %d", &status);
  const char *cl = strstr(head, "Content-Length: ");
  size_t len = cl ? strtoul(cl + 16, NULL, 10) : 0;
  assert_true(len < cap);
  read_exact(fd, out, len);
  out[len] = 0;
  return status;
}

static int http(const char *method, const char *target, const char *body, char *out, size_t cap) {
  int fd = dial();
  send_request(fd, method, target, body);
  int status = read_response(fd, out, cap);
  close(fd);
  return status;
}

/* Opens a polling session; its sid into sid[21]. */
static void open_polling(const char *path, char *sid) {
  char body[512];
  char target[128];
  snprintf(target, sizeof target, "%s?EIO=4&transport=polling", path);
  assert_int_equal(http("GET", target, NULL, body, sizeof body), 200);
  assert_int_equal(body[0], '0');
  const char *p = strstr(body, "\"sid\":\"");
  assert_non_null(p);
  memcpy(sid, p + 7, 20);
  sid[20] = 0;
}

static void session_target(char *out, size_t cap, const char *sid) {
  snprintf(out, cap, "/engine.io/?EIO=4&transport=polling&sid=%s", sid);
}

static int ws_dial(const char *target, char *head, size_t cap) {
  int fd = dial();
  char req[512];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           target);
  send_all(fd, req, strlen(req));
  read_head(fd, head, cap);
  return fd;
}

static void send_frame(int fd, int op, const void *data, size_t len) {
  uint8_t h[8] = {(uint8_t)(0x80 | op), (uint8_t)(0x80 | len), 1, 2, 3, 4};
  assert_true(len < 126);
  send_all(fd, h, 6);
  uint8_t p[126];
  for (size_t i = 0; i < len; i++) p[i] = ((const uint8_t *)data)[i] ^ h[2 + (i & 3)];
  send_all(fd, p, len);
}

static int read_frame(int fd, uint8_t *out, size_t cap, size_t *len) {
  uint8_t h[2];
  read_exact(fd, h, 2);
  size_t n = h[1] & 0x7f;
  assert_true(n < 126 && n <= cap);
  read_exact(fd, out, n);
  *len = n;
  return h[0] & 0x0f;
}

/* Waits for session sid to close; returns its close reason (static storage). */
static const char *close_reason(const char *sid) {
  static char reason[32];
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&g->lock);
    for (int k = 0; k < g->nlog; k++) {
      if (strcmp(g->log[k].sid, sid) == 0) {
        memcpy(reason, g->log[k].reason, sizeof reason);
        pthread_mutex_unlock(&g->lock);
        return reason;
      }
    }
    pthread_mutex_unlock(&g->lock);
    usleep(10000);
  }
  return "(not closed)";
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- tests ---- */

static void test_polling_echo(void **state) {
  (void)state;
  int opened = __atomic_load_n(&g->opened, __ATOMIC_SEQ_CST);
  char sid[21], t[128], body[512];
  open_polling("/engine.io/", sid);
  wait_for(&g->opened, opened + 1);
  assert_true(__atomic_load_n(&g->count_at_open, __ATOMIC_SEQ_CST) >= 1);
  session_target(t, sizeof t, sid);
  assert_int_equal(http("POST", t, "4hello\x1e" "bAQIDBA==", body, sizeof body), 200);
  assert_string_equal(body, "ok");
  assert_int_equal(http("GET", t, NULL, body, sizeof body), 200);
  assert_string_equal(body, "4hello\x1e" "bAQIDBA==");
  /* The Socket.IO server on the same wsio_server answers its own path. */
  assert_int_equal(http("GET", "/socket.io/?EIO=4&transport=polling", NULL, body, sizeof body), 200);
  assert_int_equal(body[0], '0');
}

/* Timers queue pings: the held GET must carry one at the ping interval, not when the loop next wakes for
 * some other reason (that was at the pong deadline, and the session then died of a ping timeout). */
static void test_polling_heartbeat(void **state) {
  (void)state;
  char sid[21], t[128], body[512];
  open_polling("/engine.io/", sid);
  session_target(t, sizeof t, sid);
  for (int i = 0; i < 3; i++) {
    double t0 = now_ms();
    assert_int_equal(http("GET", t, NULL, body, sizeof body), 200);
    assert_string_equal(body, "2");
    assert_true(now_ms() - t0 < PING_INTERVAL + PING_TIMEOUT / 2);
    assert_int_equal(http("POST", t, "3", body, sizeof body), 200);
  }
  /* Unanswered, the next ping times the session out. */
  usleep((PING_INTERVAL + PING_TIMEOUT + 100) * 1000);
  assert_int_equal(http("GET", t, NULL, body, sizeof body), 400);
  assert_string_equal(close_reason(sid), "ping timeout");
}

/* A CLOSE from the client ends its held GET with a NOOP ("6"), as the reference server does. */
static void test_polling_client_close(void **state) {
  (void)state;
  char sid[21], t[128], body[512];
  open_polling("/engine.io/", sid);
  session_target(t, sizeof t, sid);
  int get = dial();
  send_request(get, "GET", t, NULL);
  usleep(50000); /* the GET is held */
  assert_int_equal(http("POST", t, "1", body, sizeof body), 200);
  assert_int_equal(read_response(get, body, sizeof body), 200);
  assert_string_equal(body, "6");
  close(get);
  assert_string_equal(close_reason(sid), "transport close");
  assert_int_equal(http("GET", t, NULL, body, sizeof body), 400);
}

/* A second WebSocket for a session that has upgraded is accepted and closed at once (not refused with an
 * HTTP error, which clients report as a failure); the session keeps its first WebSocket. */
static void test_second_upgrade_closed(void **state) {
  (void)state;
  char sid[21], t[128], head[2048];
  uint8_t buf[128];
  size_t n;
  open_polling("/engine.io/", sid);
  snprintf(t, sizeof t, "/engine.io/?EIO=4&transport=websocket&sid=%s", sid);
  int ws = ws_dial(t, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  send_frame(ws, 1, "2probe", 6);
  assert_int_equal(read_frame(ws, buf, sizeof buf, &n), 1);
  assert_int_equal(n, 6);
  assert_memory_equal(buf, "3probe", 6);
  send_frame(ws, 1, "5", 1);
  int ws2 = ws_dial(t, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_int_equal(read_frame(ws2, buf, sizeof buf, &n), 8);
  close(ws2);
  send_frame(ws, 1, "4hello", 6);
  int op;
  while ((op = read_frame(ws, buf, sizeof buf, &n)) == 1 && n == 1 && buf[0] == '2') send_frame(ws, 1, "3", 1);
  assert_int_equal(op, 1);
  assert_int_equal(n, 6);
  assert_memory_equal(buf, "4hello", 6);
  close(ws);
  /* An unknown sid is still an HTTP error. */
  ws2 = ws_dial("/engine.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 400"));
  close(ws2);
}

/* socket.close() inside a message callback: the close callback runs at once, and the socket stays usable
 * (sends return WSIO_ECLOSED) until the callback returns. */
static void test_close_in_callback(void **state) {
  (void)state;
  char head[2048], sid[21];
  uint8_t buf[256];
  size_t n;
  int ws = ws_dial("/engine.io/?EIO=4&transport=websocket", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_int_equal(read_frame(ws, buf, sizeof buf, &n), 1);
  assert_int_equal(buf[0], '0');
  assert_non_null(memmem(buf, n, "\"upgrades\":[]", 13));
  const uint8_t *p = memmem(buf, n, "\"sid\":\"", 7);
  assert_non_null(p);
  memcpy(sid, p + 7, 20);
  sid[20] = 0;
  send_frame(ws, 2, "\x01\x02", 2);
  assert_int_equal(read_frame(ws, buf, sizeof buf, &n), 2);
  assert_int_equal(n, 2);
  send_frame(ws, 1, "4close-me", 9);
  assert_string_equal(close_reason(sid), "forced close");
  assert_int_equal(__atomic_load_n(&g->send_after_close, __ATOMIC_SEQ_CST), WSIO_ECLOSED);
  int op;
  while ((op = read_frame(ws, buf, sizeof buf, &n)) == 1) {
  }
  assert_int_equal(op, 8);
  close(ws);
}

/* A client that never reads: the server refuses sends past the session's buffer limit and closes it with
 * "transport error" instead of holding the backlog. */
static void test_slow_reader_cut_off(void **state) {
  (void)state;
  char head[2048], sid[21];
  uint8_t buf[256];
  size_t n;
  int ws = ws_dial("/engine.io/?EIO=4&transport=websocket", head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_int_equal(read_frame(ws, buf, sizeof buf, &n), 1);
  const uint8_t *p = memmem(buf, n, "\"sid\":\"", 7);
  assert_non_null(p);
  memcpy(sid, p + 7, 20);
  sid[20] = 0;
  send_frame(ws, 1, "4flood", 6);
  assert_string_equal(close_reason(sid), "transport error");
  /* 16 MiB is the default limit; the kernel takes a few MiB more: most of the 64 sends were refused. */
  assert_true(__atomic_load_n(&g->flood_refused, __ATOMIC_SEQ_CST) >= 32);
  close(ws);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_polling_echo),
      cmocka_unit_test(test_polling_heartbeat),
      cmocka_unit_test(test_polling_client_close),
      cmocka_unit_test(test_second_upgrade_closed),
      cmocka_unit_test(test_close_in_callback),
      cmocka_unit_test(test_slow_reader_cut_off),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
