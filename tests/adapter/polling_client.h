/* A blocking Engine.IO long-polling client for the workers tests: one TCP connection per request, so the
 * kernel may hand each request to either worker (what makes the hand-offs happen). Set pc_port first.
 * Include after cmocka.h and api/raw_client.h. */
#ifndef WSIO_TESTS_POLLING_CLIENT_H
#define WSIO_TESTS_POLLING_CLIENT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pc_port;

typedef struct pclient {
  char sid[32];
  int worker;                  /* the worker its session lives on */
  char inbox[16384];           /* packets received and not yet taken, separated by \x1e */
} pclient;

/* One request; returns the body's length (body NUL-terminated in out). */
static size_t http_request(const char *method, const char *query, const char *body, char *out, size_t cap) {
  int fd = raw_dial(pc_port);
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "%s /socket.io/?EIO=4&transport=polling%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
                   method, query, body ? strlen(body) : 0, body ? body : "");
  send_all(fd, req, (size_t)n);
  char head[2048];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "200 OK"));
  const char *cl = strcasestr(head, "Content-Length:");
  assert_non_null(cl);
  size_t len = (size_t)atol(cl + 15);
  assert_true(len < cap);
  read_exact(fd, out, len);
  out[len] = 0;
  close(fd);
  return len;
}

static void pc_post(pclient *c, const char *packet) {
  char q[sizeof c->sid + 8], out[64];
  snprintf(q, sizeof q, "&sid=%.31s", c->sid);
  http_request("POST", q, packet, out, sizeof out);
  assert_string_equal(out, "ok");
}

/* Takes the next packet: from the inbox, else one long-poll GET. */
static void pc_next(pclient *c, char *out, size_t cap) {
  if (!c->inbox[0]) {
    char q[sizeof c->sid + 8];
    snprintf(q, sizeof q, "&sid=%.31s", c->sid);
    http_request("GET", q, NULL, c->inbox, sizeof c->inbox);
  }
  char *sep = strchr(c->inbox, '\x1e');
  size_t n = sep ? (size_t)(sep - c->inbox) : strlen(c->inbox);
  assert_true(n < cap);
  memcpy(out, c->inbox, n);
  out[n] = 0;
  memmove(c->inbox, c->inbox + n + (sep ? 1 : 0), strlen(c->inbox + n + (sep ? 1 : 0)) + 1);
}

/* Packets other than pings, which are answered. */
static void pc_packet(pclient *c, char *out, size_t cap) {
  for (;;) {
    pc_next(c, out, cap);
    if (strcmp(out, "2") != 0) return;
    pc_post(c, "3");
  }
}

/* Opens an Engine.IO session (the handshake GET): fills c->sid, clears the rest. */
static void pc_handshake_once(pclient *c) {
  memset(c, 0, sizeof *c);
  char body[512];
  http_request("GET", "", NULL, body, sizeof body);
  const char *sid = strstr(body, "\"sid\":\"");
  assert_non_null(sid);
  sid += 7;
  size_t n = strcspn(sid, "\"");
  assert_true(n < sizeof c->sid);
  memcpy(c->sid, sid, n);
}

#endif
