/* The public API's abuse limits over loopback: a wsio_limiter shared by two servers on two threads
 * (connections per address: 503, then closed at accept), the handshake rate (429), the message rate of raw
 * WebSocket endpoints (close 1008, or drop) and the packet rate of Socket.IO ("rate limit"), with their
 * wsio_stats counters; trusted proxies: the limits and the addresses shown follow X-Forwarded-For from a
 * trusted peer (127.0.0.1), one request at a time on a proxy's kept-alive connection, and not from another
 * peer (127.0.0.2: all of 127.0.0.0/8 is loopback). */
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

/* ---- trusted proxies ---- */

/* Connects to 127.0.0.1:port from the local address `from` (NULL: any), with a 5 s receive timeout. */
static int dial_from(int port, const char *from) {
  if (!from) return raw_dial(port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in l = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, from, &l.sin_addr), 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&l, sizeof l), 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Sends a request as a proxy would: X-Forwarded-For: xff (NULL: none); a WebSocket upgrade when ws is set. */
static void send_request(int fd, const char *method, const char *path, const char *xff, const char *body, int ws) {
  char req[1024], fwd[300] = "";
  if (xff) snprintf(fwd, sizeof fwd, "X-Forwarded-For: %s\r\n", xff);
  snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\n%s%sContent-Length: %zu\r\n\r\n%s", method, path,
           fwd,
           ws ? "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n"
              : "",
           body ? strlen(body) : 0, body ? body : "");
  send_all(fd, req, strlen(req));
}

/* Reads an answer: returns its status, the head in head, the body (not for a 101) in body if not NULL. */
static int read_answer(int fd, char *head, size_t cap, char *body, size_t bcap) {
  if (read_head(fd, head, cap) < 12) return -1;
  int status = atoi(head + 9);
  const char *cl = strstr(head, "Content-Length: ");
  char tmp[4096];
  size_t n = status != 101 && cl ? strtoul(cl + 16, NULL, 10) : 0;
  assert_true(n < sizeof tmp);
  read_exact(fd, tmp, n);
  tmp[n] = 0;
  if (body) {
    assert_true(n < bcap);
    memcpy(body, tmp, n + 1);
  }
  return status;
}

static int call(int fd, const char *path, const char *xff, int ws, char *head, size_t cap) {
  send_request(fd, "GET", path, xff, NULL, ws);
  return read_answer(fd, head, cap, NULL, 0);
}

static char remotes[8][64];
static int opened;

static void record_open(wsio_ws *ws) {
  int i = __atomic_load_n(&opened, __ATOMIC_SEQ_CST);
  if (i < 8) snprintf(remotes[i], sizeof remotes[i], "%s", wsio_ws_remote(ws));
  __atomic_add_fetch(&opened, 1, __ATOMIC_SEQ_CST);
}

static void test_trusted_proxies(void **state) {
  (void)state;
  wsio_server_config sc = {.log_level = 1, .max_connections_per_ip = 1, .trusted_proxies = "10.0.0.0/8 127.0.0.1"};
  wsio_server *s = wsio_server_new(&sc);
  assert_non_null(s);
  wsio_ws_handlers h = {.on_open = record_open, .on_message = echo};
  assert_int_equal(wsio_server_ws(s, "/ws", &h, NULL), 0);
  running r;
  start(&r, s);
  char head[1024];
  opened = 0;

  /* Two clients through the proxy: each counted, and shown, as the address the proxy forwarded. */
  int a = raw_dial(r.port);
  assert_int_equal(call(a, "/ws", "203.0.113.1", 1, head, sizeof head), 101);
  wait_for(&opened, 1);
  assert_string_equal(remotes[0], "203.0.113.1");
  int b = raw_dial(r.port);
  assert_int_equal(call(b, "/ws", "192.0.2.9, 198.51.100.2, 10.0.0.7", 1, head, sizeof head), 101);
  wait_for(&opened, 2);
  assert_string_equal(remotes[1], "198.51.100.2");

  /* The first one's address again, on a kept-alive connection of the proxy: over its limit, 503; the
   * connection stays open, as the proxy's next requests on it are other clients'. */
  int p = raw_dial(r.port);
  assert_int_equal(call(p, "/ws", "203.0.113.1", 1, head, sizeof head), 503);
  assert_non_null(strstr(head, "\r\nRetry-After: 5\r\n"));
  assert_non_null(strstr(head, "\r\nConnection: keep-alive\r\n"));
  /* A request counts while it is answered, then lets go: the same client again and again, no double count. */
  for (int i = 0; i < 3; i++) assert_int_equal(call(p, "/healthz", "192.0.2.5", 0, head, sizeof head), 200);
  /* No header, or one that does not read: the proxy stands for the client. */
  assert_int_equal(call(p, "/healthz", NULL, 0, head, sizeof head), 200);
  assert_int_equal(call(p, "/healthz", "192.0.2.5, garbage", 0, head, sizeof head), 200);
  int q = raw_dial(r.port);
  assert_int_equal(call(q, "/ws", NULL, 1, head, sizeof head), 101);
  wait_for(&opened, 3);
  assert_memory_equal(remotes[2], "127.0.0.1:", 10);
  assert_int_equal(call(p, "/healthz", "unknown", 0, head, sizeof head), 503);
  assert_int_equal(call(p, "/healthz", "192.0.2.5", 0, head, sizeof head), 200);

  /* An answer that ends its connection gives the client's place back at once: the server waits for the
   * proxy's FIN before it closes, and the client's next request may come on another connection first. */
  int e1 = raw_dial(r.port);
  const char *ending = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 192.0.2.40\r\n"
                       "Connection: close\r\n\r\n";
  send_all(e1, ending, strlen(ending));
  assert_int_equal(read_answer(e1, head, sizeof head, NULL, 0), 200);
  assert_non_null(strstr(head, "\r\nConnection: close\r\n"));
  int e2 = raw_dial(r.port); /* e1 still open on this side */
  assert_int_equal(call(e2, "/healthz", "192.0.2.40", 0, head, sizeof head), 200);
  close(e1);
  close(e2);

  /* A peer that is not trusted: what it forwards is ignored; its own address is counted and shown. */
  int u = dial_from(r.port, "127.0.0.2");
  assert_int_equal(call(u, "/ws", "192.0.2.77", 1, head, sizeof head), 101);
  wait_for(&opened, 4);
  assert_memory_equal(remotes[3], "127.0.0.2:", 10);
  int u2 = dial_from(r.port, "127.0.0.2");
  assert_int_equal(call(u2, "/healthz", "192.0.2.78", 0, head, sizeof head), 503);
  assert_non_null(strstr(head, "\r\nConnection: close\r\n"));
  close(u2);

  /* Clients that leave free their places: the forwarded one, and the proxy's own. */
  close(a);
  close(q);
  int status = 0;
  for (int i = 0; i < 200 && status != 200; i++) {
    status = call(p, "/healthz", "garbage", 0, head, sizeof head);
    if (status != 200) usleep(10000);
  }
  assert_int_equal(status, 200);
  for (int i = 0; i < 200 && status != 101; i++) {
    status = call(p, "/ws", "203.0.113.1", 1, head, sizeof head);
    if (status != 101) usleep(10000);
  }
  assert_int_equal(status, 101);
  wait_for(&opened, 5);
  assert_string_equal(remotes[4], "203.0.113.1");
  close(p);
  close(b);
  close(u);
  wsio_stats st;
  stop(&r, &st);
  assert_true(st.ip_refused >= 3);
  wsio_server_free(s);
}

/* The handshake bucket is the forwarded client's too. */
static void test_trusted_proxies_rate(void **state) {
  (void)state;
  wsio_server_config sc = {.log_level = 1, .handshakes_per_ip_per_second = 1, .handshake_burst = 1,
                           .trusted_proxies = "127.0.0.1"};
  wsio_server *s = wsio_server_new(&sc);
  assert_non_null(s);
  wsio_ws_handlers h = {.on_message = echo};
  assert_int_equal(wsio_server_ws(s, "/ws", &h, NULL), 0);
  running r;
  start(&r, s);
  char head[1024];
  const char *from[] = {NULL, NULL, NULL, "127.0.0.2", "127.0.0.2"};
  const char *xff[] = {"203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"};
  const int want[] = {101, 429, 101, 101, 429};
  for (int i = 0; i < 5; i++) {
    int fd = dial_from(r.port, from[i]);
    if (call(fd, "/ws", xff[i], 1, head, sizeof head) != want[i]) fail_msg("handshake %d: %.40s", i, head);
    close(fd);
  }
  wsio_stats st;
  stop(&r, &st);
  assert_int_equal(st.handshakes_limited, 2);
  wsio_server_free(s);
}

/* socket.handshake.address: the client that opened the session, whichever proxy connections carry the
 * session's later requests; a held long-poll counts for its client until it is answered. */
static char sio_address[64];
static int sio_connections;

static void record_connection(wsio_socket *sock, void *ud) {
  (void)ud;
  snprintf(sio_address, sizeof sio_address, "%s", wsio_socket_handshake(sock)->address);
  __atomic_add_fetch(&sio_connections, 1, __ATOMIC_SEQ_CST);
}

static void test_trusted_proxies_sio(void **state) {
  (void)state;
  wsio_server_config sc = {.log_level = 1, .max_connections_per_ip = 1, .trusted_proxies = "127.0.0.1"};
  wsio_server *s = wsio_server_new(&sc);
  wsio_io *io = wsio_io_new(s, NULL);
  assert_non_null(io);
  wsio_nsp_on_connection(wsio_io_sockets(io), record_connection, NULL);
  running r;
  start(&r, s);
  char head[1024], body[1024], buf[256];
  size_t n;
  sio_connections = 0;

  /* WebSocket. */
  int w = raw_dial(r.port);
  assert_int_equal(call(w, "/socket.io/?EIO=4&transport=websocket", "2001:db8::4", 1, head, sizeof head), 101);
  assert_int_equal(read_frame(w, buf, &n), 1);
  send_text(w, "40");
  assert_int_equal(read_frame(w, buf, &n), 1);
  assert_memory_equal(buf, "40{", 3);
  wait_for(&sio_connections, 1);
  assert_string_equal(sio_address, "2001:db8::4");

  /* Long-polling, each request on whichever of the proxy's connections is free. */
  int c1 = raw_dial(r.port), c2 = raw_dial(r.port);
  send_request(c1, "GET", "/socket.io/?EIO=4&transport=polling", "198.51.100.4", NULL, 0);
  assert_int_equal(read_answer(c1, head, sizeof head, body, sizeof body), 200);
  const char *sid = strstr(body, "\"sid\":\"");
  assert_non_null(sid);
  char path[128];
  snprintf(path, sizeof path, "/socket.io/?EIO=4&transport=polling&sid=%.20s", sid + 7);
  send_request(c2, "POST", path, "198.51.100.4", "40", 0);
  assert_int_equal(read_answer(c2, head, sizeof head, body, sizeof body), 200);
  send_request(c1, "GET", path, "198.51.100.4", NULL, 0);
  assert_int_equal(read_answer(c1, head, sizeof head, body, sizeof body), 200);
  assert_memory_equal(body, "40{", 3);
  wait_for(&sio_connections, 2);
  assert_string_equal(sio_address, "198.51.100.4");
  /* A held GET is the client's one connection (max 1 per address): a second request of it waits its turn;
   * another client's request on the same proxy connection does not. */
  send_request(c1, "GET", path, "198.51.100.4", NULL, 0);
  usleep(100000);
  send_request(c2, "POST", path, "198.51.100.4", "2", 0);
  assert_int_equal(read_answer(c2, head, sizeof head, body, sizeof body), 503);
  send_request(c2, "POST", path, "198.51.100.5", "1", 0); /* CLOSE: answers the held GET */
  assert_int_equal(read_answer(c2, head, sizeof head, body, sizeof body), 200);
  assert_int_equal(read_answer(c1, head, sizeof head, body, sizeof body), 200);
  assert_int_equal(call(c2, "/healthz", "198.51.100.4", 0, head, sizeof head), 200);
  close(c1);
  close(c2);
  close(w);
  wsio_stats st;
  stop(&r, &st);
  assert_int_equal(st.ip_refused, 1);
  wsio_server_free(s);
}

static void test_trusted_proxies_config(void **state) {
  (void)state;
  /* A list that does not parse: no server. */
  assert_null(wsio_server_new(&(wsio_server_config){.log_level = -1, .trusted_proxies = "10.0.0.0/33"}));
  assert_null(wsio_server_new(&(wsio_server_config){.log_level = -1, .trusted_proxies = "127.0.0.1, localhost"}));
  wsio_server *s = wsio_server_new(&(wsio_server_config){.log_level = 1, .trusted_proxies = " , "});
  assert_non_null(s);
  /* Replaced for connections from now on; a bad list leaves the one in use. */
  assert_int_equal(wsio_server_set_trusted_proxies(s, "127.0.0.2"), 0);
  assert_int_equal(wsio_server_set_trusted_proxies(s, "127.0.0.1/40"), WSIO_EINVAL);
  assert_int_equal(wsio_server_set_trusted_proxies(NULL, "127.0.0.1"), WSIO_EINVAL);
  wsio_ws_handlers h = {.on_open = record_open, .on_message = echo};
  assert_int_equal(wsio_server_ws(s, "/ws", &h, NULL), 0);
  running r;
  start(&r, s);
  char head[1024];
  opened = 0;
  int fd = raw_dial(r.port); /* 127.0.0.1: not trusted */
  assert_int_equal(call(fd, "/ws", "203.0.113.8", 1, head, sizeof head), 101);
  wait_for(&opened, 1);
  assert_memory_equal(remotes[0], "127.0.0.1:", 10);
  close(fd);
  fd = dial_from(r.port, "127.0.0.2");
  assert_int_equal(call(fd, "/ws", "203.0.113.8", 1, head, sizeof head), 101);
  wait_for(&opened, 2);
  assert_string_equal(remotes[1], "203.0.113.8");
  close(fd);
  wsio_stats st;
  stop(&r, &st);
  /* Off again. */
  assert_int_equal(wsio_server_set_trusted_proxies(s, NULL), 0);
  wsio_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_limiter),      cmocka_unit_test(test_rates),
      cmocka_unit_test(test_sio_packet_rate),     cmocka_unit_test(test_trusted_proxies),
      cmocka_unit_test(test_trusted_proxies_rate), cmocka_unit_test(test_trusted_proxies_sio),
      cmocka_unit_test(test_trusted_proxies_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
