/* A tiny blocking loopback client for the API tests (include after <cmocka.h>): failures assert. */
#ifndef WSIO_TESTS_API_RAW_CLIENT_H
#define WSIO_TESTS_API_RAW_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Connects to 127.0.0.1:port with a 5 s receive timeout. */
static int raw_dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    assert_true(w > 0);
    b += w;
    n -= (size_t)w;
  }
}

static void read_exact(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t r = read(fd, b, n);
    assert_true(r > 0);
    b += r;
    n -= (size_t)r;
  }
}

/* Reads until the end of the HTTP head; returns its length (the head is NUL-terminated in out). */
static size_t read_head(int fd, char *out, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, out + n, 1);
    if (r <= 0) break;
    n++;
    if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0) break;
  }
  out[n] = 0;
  return n;
}

/* Waits (up to 5 s) for a counter the server thread bumps to reach value. */
static void wait_for(int *counter, int value) {
  for (int i = 0; i < 500 && __atomic_load_n(counter, __ATOMIC_SEQ_CST) < value; i++) usleep(10000);
  assert_true(__atomic_load_n(counter, __ATOMIC_SEQ_CST) >= value);
}

#endif
