/* ws_conn on a real loop: what the connection layer bounds on its own, whatever the endpoint does. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "wsio.h"

#define SEND_LIMIT (64 * 1024)

static wsio_server *srv;
static pthread_t thread;

static void on_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_ws_send(ws, op, data, len, 0);
}

static void *run(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

static int setup(void **state) {
  (void)state;
  wsio_server_config sc = {.log_level = 1};
  srv = wsio_server_new(&sc);
  assert_non_null(srv);
  wsio_ws_handlers h = {.on_message = on_message};
  wsio_ws_config wc = {.send_buffer_limit = SEND_LIMIT};
  assert_int_equal(wsio_server_ws(srv, "/echo", &h, &wc), 0);
  assert_int_equal(wsio_server_listen(srv, "127.0.0.1", 0), 0);
  pthread_create(&thread, NULL, run, srv);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  wsio_server_stop(srv, 2000);
  pthread_join(thread, NULL);
  wsio_server_free(srv);
  return 0;
}

static void read_exact(int fd, void *p, size_t n) {
  for (uint8_t *b = p; n;) {
    ssize_t r = read(fd, b, n);
    assert_true(r > 0);
    b += r;
    n -= (size_t)r;
  }
}

/* Reads one server frame's header and payload (payload up to 125 bytes kept); returns the opcode, -1 at EOF. */
static int next_frame(int fd, uint8_t *p, size_t *len) {
  uint8_t h[2];
  if (read(fd, h, 1) != 1) return -1;
  read_exact(fd, h + 1, 1);
  size_t n = h[1] & 0x7f;
  assert_true(n < 126); /* control frames only here */
  read_exact(fd, p, n);
  *len = n;
  return h[0] & 0x0f;
}

/* A peer that sends pings and never reads the pongs was queued pongs without bound (the send limit was
 * checked on messages only). Past the limit it is now closed with 1008 like any slow reader. */
static void test_ping_flood_unread_pongs(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)wsio_server_port(srv))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
  char head[1024];
  size_t hn = 0;
  while (hn < 4 || memcmp(head + hn - 4, "\r\n\r\n", 4) != 0) {
    assert_true(hn < sizeof head - 1);
    read_exact(fd, head + hn++, 1);
  }
  head[hn] = 0;
  assert_non_null(strstr(head, " 101 "));

  /* 100,000 masked pings of 125 bytes (mask 0: the payload goes as it is): 12.7 MB of pongs owed. */
  enum { PINGS = 100000, BATCH = 1000, FRAME = 2 + 4 + 125 };
  static uint8_t batch[BATCH * FRAME];
  for (int i = 0; i < BATCH; i++) {
    uint8_t *f = batch + i * FRAME;
    f[0] = 0x89;
    f[1] = 0x80 | 125;
    memset(f + 2, 0, 4);
    memset(f + 6, 'p', 125);
  }
  for (int i = 0; i < PINGS / BATCH; i++)
    if (send(fd, batch, sizeof batch, MSG_NOSIGNAL) != (ssize_t)sizeof batch) break; /* the server may be gone */

  int pongs = 0, close_code = 0;
  uint8_t p[128];
  size_t n;
  for (;;) {
    int op = next_frame(fd, p, &n);
    if (op == 10) {
      pongs++;
      continue;
    }
    if (op == 8 && n >= 2) close_code = p[0] << 8 | p[1];
    break;
  }
  close(fd);
  assert_int_equal(close_code, 1008);
  assert_true(pongs < PINGS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ping_flood_unread_pongs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
