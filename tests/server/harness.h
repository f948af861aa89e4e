/*
 * Test peers for the program's backend integration (test_proxy.c, test_webhooks.c):
 *   - a tiny HTTP/1.1 backend: blocking, one thread per connection, keep-alive, that records every request
 *     and answers as told (a status, a body, a delay, or held until released);
 *   - a raw Socket.IO client over a plain TCP socket speaking WebSocket (transport=websocket).
 * Both block and run on the test's thread (the backend in its own threads), beside a wsio server that runs
 * in a thread of its own.
 */
#ifndef WSIO_TESTS_SERVER_HARNESS_H
#define WSIO_TESTS_SERVER_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define H static __attribute__((unused))

H uint64_t h_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

H void h_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

H int h_listen(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

/* A port nothing listens on: bound, then closed. */
H int h_closed_port(void) {
  int port = 0;
  int fd = h_listen(&port);
  close(fd);
  return port;
}

/* ---- the backend ---- */

#define BK_MAX 64
typedef struct backend {
  int fd, port;
  pthread_t thread;
  int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* what it saw */
  int conns, requests;
  char *bodies[BK_MAX];
  char content_type[BK_MAX][64];
  uint64_t at_ms[BK_MAX];
  /* how it answers */
  int status;             /* default 200 */
  int fail_first;         /* this many requests answer 500 first */
  unsigned delay_ms;
  int hold;               /* requests wait while set */
  char reply[8192];
} backend;

static backend bk; /* static: connection threads may outlive a test */

H int bk_send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one request from the connection (buffered in in[0..*have)). Returns the body (malloc'd) or NULL at
 * EOF or error. */
H char *bk_read_request(int fd, char *in, size_t cap, size_t *have, char *ctype, size_t ctcap) {
  char *end;
  for (;;) {
    in[*have] = 0;
    if ((end = strstr(in, "\r\n\r\n")) != NULL) break;
    if (*have >= cap - 1) return NULL;
    ssize_t r = recv(fd, in + *have, cap - 1 - *have, 0);
    if (r <= 0) return NULL;
    *have += (size_t)r;
  }
  size_t head = (size_t)(end - in) + 4;
  size_t clen = 0;
  ctype[0] = 0;
  for (char *line = strstr(in, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
    if (strncasecmp(line, "Content-Length:", 15) == 0) clen = strtoul(line + 15, NULL, 10);
    if (strncasecmp(line, "Content-Type:", 13) == 0) {
      const char *v = line + 13;
      while (*v == ' ') v++;
      size_t n = (size_t)(strstr(v, "\r\n") - v);
      if (n >= ctcap) n = ctcap - 1;
      memcpy(ctype, v, n);
      ctype[n] = 0;
    }
  }
  char *body = malloc(clen + 1);
  size_t got = *have - head < clen ? *have - head : clen;
  memcpy(body, in + head, got);
  while (got < clen) {
    ssize_t r = recv(fd, body + got, clen - got, 0);
    if (r <= 0) {
      free(body);
      return NULL;
    }
    got += (size_t)r;
  }
  body[clen] = 0;
  size_t used = head + (*have - head < clen ? *have - head : clen);
  memmove(in, in + used, *have - used);
  *have -= used;
  return body;
}

H void *bk_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char in[65536], ctype[64];
  size_t have = 0;
  char *body;
  while ((body = bk_read_request(fd, in, sizeof in, &have, ctype, sizeof ctype)) != NULL) {
    pthread_mutex_lock(&bk.mu);
    int i = bk.requests++;
    if (i < BK_MAX) {
      bk.bodies[i] = body;
      snprintf(bk.content_type[i], sizeof bk.content_type[i], "%s", ctype);
      bk.at_ms[i] = h_now_ms();
    } else {
      free(body);
    }
    pthread_cond_broadcast(&bk.cv);
    while (bk.hold) pthread_cond_wait(&bk.cv, &bk.mu);
    int status = i < bk.fail_first ? 500 : bk.status;
    unsigned delay = bk.delay_ms;
    char reply[sizeof bk.reply];
    snprintf(reply, sizeof reply, "%s", status == 500 && i < bk.fail_first ? "{}" : bk.reply);
    pthread_mutex_unlock(&bk.mu);
    if (delay) h_sleep_ms(delay);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", status,
                     strlen(reply));
    if (bk_send_all(fd, head, (size_t)n) != 0 || bk_send_all(fd, reply, strlen(reply)) != 0) break;
  }
  close(fd);
  return NULL;
}

H void *bk_accept(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&bk.stop, __ATOMIC_SEQ_CST)) {
    struct pollfd p = {.fd = bk.fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0) continue;
    int c = accept(bk.fd, NULL, NULL);
    if (c < 0) continue;
    pthread_mutex_lock(&bk.mu);
    bk.conns++;
    pthread_mutex_unlock(&bk.mu);
    pthread_t t;
    pthread_create(&t, NULL, bk_conn, (void *)(intptr_t)c);
    pthread_detach(t);
  }
  return NULL;
}

/* Starts the backend answering 200 with reply. */
H int bk_start(const char *reply) {
  static int inited;
  if (!inited) {
    pthread_mutex_init(&bk.mu, NULL);
    pthread_cond_init(&bk.cv, NULL);
    inited = 1;
  }
  pthread_mutex_lock(&bk.mu);
  for (int i = 0; i < BK_MAX; i++) {
    free(bk.bodies[i]);
    bk.bodies[i] = NULL;
  }
  bk.conns = bk.requests = 0;
  bk.status = 200;
  bk.fail_first = 0;
  bk.delay_ms = 0;
  bk.hold = 0;
  snprintf(bk.reply, sizeof bk.reply, "%s", reply ? reply : "");
  pthread_mutex_unlock(&bk.mu);
  bk.stop = 0;
  bk.fd = h_listen(&bk.port);
  if (bk.fd < 0) return -1;
  pthread_create(&bk.thread, NULL, bk_accept, NULL);
  return bk.port;
}

/* Stops accepting; open connections end when their peer closes them. */
H void bk_stop(void) {
  pthread_mutex_lock(&bk.mu);
  bk.hold = 0;
  pthread_cond_broadcast(&bk.cv);
  pthread_mutex_unlock(&bk.mu);
  __atomic_store_n(&bk.stop, 1, __ATOMIC_SEQ_CST);
  pthread_join(bk.thread, NULL);
  close(bk.fd);
}

/* Changes how the backend answers from now on; reply NULL keeps the body. */
H void bk_answer(int status, int fail_first, unsigned delay_ms, const char *reply) {
  pthread_mutex_lock(&bk.mu);
  bk.status = status;
  bk.fail_first = fail_first;
  bk.delay_ms = delay_ms;
  if (reply) snprintf(bk.reply, sizeof bk.reply, "%s", reply);
  pthread_mutex_unlock(&bk.mu);
}

H void bk_set_hold(int on) {
  pthread_mutex_lock(&bk.mu);
  bk.hold = on;
  pthread_cond_broadcast(&bk.cv);
  pthread_mutex_unlock(&bk.mu);
}

/* Waits until the backend has seen n requests. Returns how many it has seen. */
H int bk_wait_requests(int n, unsigned timeout_ms) {
  uint64_t end = h_now_ms() + timeout_ms;
  pthread_mutex_lock(&bk.mu);
  while (bk.requests < n && h_now_ms() < end) {
    pthread_mutex_unlock(&bk.mu);
    h_sleep_ms(5);
    pthread_mutex_lock(&bk.mu);
  }
  int got = bk.requests;
  pthread_mutex_unlock(&bk.mu);
  return got;
}

H int bk_count(int *conns) {
  pthread_mutex_lock(&bk.mu);
  int n = bk.requests;
  if (conns) *conns = bk.conns;
  pthread_mutex_unlock(&bk.mu);
  return n;
}

/* ---- the Socket.IO client ---- */

typedef struct sio_client {
  int fd;
  char sid[64];         /* the Socket.IO socket id */
  uint8_t bin[4096];    /* the attachment of the last binary packet read */
  size_t binlen;
} sio_client;

H int cl_send_frame(int fd, int op, const void *data, size_t n) {
  uint8_t h[14];
  size_t hl = 2;
  h[0] = (uint8_t)(0x80 | op);
  if (n < 126) {
    h[1] = (uint8_t)(0x80 | n);
  } else if (n < 65536) {
    h[1] = 0x80 | 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    hl = 4;
  } else {
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  memcpy(h + hl, mask, 4);
  hl += 4;
  uint8_t *m = malloc(n + hl);
  memcpy(m, h, hl);
  for (size_t i = 0; i < n; i++) m[hl + i] = ((const uint8_t *)data)[i] ^ mask[i & 3];
  int rc = bk_send_all(fd, (const char *)m, n + hl);
  free(m);
  return rc;
}

H int cl_read_exact(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t r = recv(fd, b, n, 0);
    if (r <= 0) return -1;
    b += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Reads one frame into out (NUL-terminated). Returns the opcode, or -1 (timeout, EOF, too big). */
H int cl_read_frame(int fd, void *out, size_t cap, size_t *len) {
  uint8_t h[2];
  if (cl_read_exact(fd, h, 2) != 0) return -1;
  uint64_t n = h[1] & 0x7f;
  if (n == 126) {
    uint8_t e[2];
    if (cl_read_exact(fd, e, 2) != 0) return -1;
    n = (uint64_t)e[0] << 8 | e[1];
  } else if (n == 127) {
    uint8_t e[8];
    if (cl_read_exact(fd, e, 8) != 0) return -1;
    n = 0;
    for (int i = 0; i < 8; i++) n = n << 8 | e[i];
  }
  if (n + 1 > cap || cl_read_exact(fd, out, (size_t)n) != 0) return -1;
  ((uint8_t *)out)[n] = 0;
  *len = (size_t)n;
  return h[0] & 0x0f;
}

H void cl_timeout(sio_client *c, unsigned ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Reads the next Socket.IO packet text into out ("42[...]", "431[...]"), answering Engine.IO pings. For a
 * binary packet its (first) attachment lands in c->bin. Returns 0, or -1 on timeout or close. */
H int cl_read(sio_client *c, char *out, size_t cap, unsigned timeout_ms) {
  cl_timeout(c, timeout_ms);
  for (;;) {
    size_t n;
    int op = cl_read_frame(c->fd, out, cap, &n);
    if (op < 0 || op == 8) return -1;
    if (op == 9) {
      cl_send_frame(c->fd, 10, out, n);
      continue;
    }
    if (op != 1) continue;
    if (n == 1 && out[0] == '2') {
      cl_send_frame(c->fd, 1, "3", 1);
      continue;
    }
    if (out[0] != '4') continue;
    memmove(out, out + 1, n); /* the Engine.IO type goes; the NUL moves along */
    if (out[0] == '5' || out[0] == '6') {
      long atts = strtol(out + 1, NULL, 10);
      for (long i = 0; i < atts; i++) {
        size_t bn;
        uint8_t tmp[4096];
        if (cl_read_frame(c->fd, tmp, sizeof tmp, &bn) != 2) return -1;
        if (i == 0) {
          memcpy(c->bin, tmp, bn);
          c->binlen = bn;
        }
      }
    }
    return 0;
  }
}

/* Connects to the main namespace over WebSocket. Returns 0 with c->sid set, or -1. */
H int cl_connect(sio_client *c, int port) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  cl_timeout(c, 5000);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   port);
  if (bk_send_all(c->fd, req, (size_t)n) != 0) return -1;
  char head[2048];
  size_t have = 0;
  while (have < 4 || memcmp(head + have - 4, "\r\n\r\n", 4) != 0) { /* byte by byte: frames follow */
    if (have == sizeof head - 1 || recv(c->fd, head + have, 1, 0) != 1) return -1;
    have++;
  }
  head[have] = 0;
  if (strncmp(head, "HTTP/1.1 101", 12) != 0) return -1;
  char pkt[1024];
  size_t len;
  if (cl_read_frame(c->fd, pkt, sizeof pkt, &len) != 1 || pkt[0] != '0') return -1;
  if (cl_send_frame(c->fd, 1, "40", 2) != 0) return -1;
  static const char open[] = "0{\"sid\":\"";
  const size_t ol = sizeof open - 1;
  if (cl_read(c, pkt, sizeof pkt, 5000) != 0 || strncmp(pkt, open, ol) != 0) return -1;
  char *q = strchr(pkt + ol, '"');
  if (!q || q == pkt + ol || (size_t)(q - (pkt + ol)) >= sizeof c->sid) return -1;
  memcpy(c->sid, pkt + ol, (size_t)(q - (pkt + ol)));
  return 0;
}

/* Sends a Socket.IO packet, e.g. "421[\"chat\",1]" (the Engine.IO "4" is added). */
H int cl_send(sio_client *c, const char *packet) {
  char m[8192];
  int n = snprintf(m, sizeof m, "4%s", packet);
  return cl_send_frame(c->fd, 1, m, (size_t)n);
}

H int cl_send_binary(sio_client *c, const void *data, size_t n) { return cl_send_frame(c->fd, 2, data, n); }

/* Reads packets until one starts with prefix (others are appended to skipped, '\n'-separated, when given).
 * Returns 0 with the packet in out, or -1. */
H int cl_expect(sio_client *c, const char *prefix, char *out, size_t cap, unsigned timeout_ms, char *skipped,
                size_t skcap) {
  uint64_t end = h_now_ms() + timeout_ms;
  if (skipped && skcap) skipped[0] = 0;
  for (;;) {
    uint64_t now = h_now_ms();
    if (now >= end) return -1;
    if (cl_read(c, out, cap, (unsigned)(end - now)) != 0) return -1;
    if (strncmp(out, prefix, strlen(prefix)) == 0) return 0;
    if (skipped) {
      size_t l = strlen(skipped);
      snprintf(skipped + l, skcap - l, "%s\n", out);
    }
  }
}

H void cl_close(sio_client *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

#endif
