/* redis_block: a blocking Redis connection, plain or TLS, for the checks at start (see redis_block.h). */
#include "adapter/redis_block.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wsio.h"

struct rblk {
  int fd;
  rtls *tls;           /* NULL: plain */
  redisReader *rd;
  uint32_t timeout_ms;
  int code;            /* 0 until failed */
  int answered;        /* a reply came: a close before the first one hints at a TLS-only port */
  char err[256];
  buf wire;            /* TLS records to send */
  char rbuf[16384];
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int fail(rblk *b, int code, const char *why) {
  if (!b->code) {
    b->code = code;
    snprintf(b->err, sizeof b->err, "%s", why);
  }
  return -1;
}

/* Waits until fd is ready for ev, or the deadline. */
static int wait_fd(rblk *b, short ev, uint64_t deadline) {
  for (;;) {
    uint64_t now = now_ms();
    if (now >= deadline)
      return fail(b, WSIO_EIO, b->tls && !rtls_ready(b->tls) ? "timed out in the TLS handshake (a plain port? then "
                                                               "redis://)"
                                                             : "timed out");
    struct pollfd p = {.fd = b->fd, .events = ev};
    int r = poll(&p, 1, (int)(deadline - now));
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return fail(b, WSIO_EIO, strerror(errno));
  }
}

/* The server dropped the connection before its first answer: say the likely reason when there is one. */
static int dropped(rblk *b, int eof) {
  if (!b->answered && !b->tls)
    return fail(b, WSIO_EIO, "closed by the server before answering (a TLS port? then rediss://)");
  if (!b->answered && b->tls && rtls_hint(b->tls)) return fail(b, WSIO_ETLS, rtls_hint(b->tls));
  return fail(b, WSIO_EIO, eof ? "closed by the server" : strerror(errno));
}

static int send_all(rblk *b, const void *p, size_t n, uint64_t deadline) {
  const char *s = p;
  while (n) {
    ssize_t k = send(b->fd, s, n, MSG_NOSIGNAL);
    if (k > 0) {
      s += k;
      n -= (size_t)k;
    } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_fd(b, POLLOUT, deadline) < 0) return -1;
    } else if (k < 0 && (errno == ECONNRESET || errno == EPIPE)) {
      return dropped(b, 0);
    } else if (k < 0 && errno != EINTR) {
      return fail(b, WSIO_EIO, strerror(errno));
    }
  }
  return 0;
}

static int tls_flush(rblk *b, uint64_t deadline) {
  if (rtls_out(b->tls, &b->wire) < 0) return fail(b, WSIO_ENOMEM, "out of memory");
  int rc = send_all(b, b->wire.data, b->wire.len, deadline);
  b->wire.len = 0;
  return rc;
}

/* Reads what the server sent into the reply reader (through TLS when on). */
static int pull(rblk *b, uint64_t deadline) {
  ssize_t n;
  for (;;) {
    n = recv(b->fd, b->rbuf, sizeof b->rbuf, 0);
    if (n > 0) break;
    if (n == 0 || errno == ECONNRESET) return dropped(b, n == 0);
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(b, POLLIN, deadline) < 0) return -1;
    } else if (errno != EINTR) {
      return fail(b, WSIO_EIO, strerror(errno));
    }
  }
  if (!b->tls) return redisReaderFeed(b->rd, b->rbuf, (size_t)n) == REDIS_OK ? 0 : fail(b, WSIO_ENOMEM, "out of memory");
  if (rtls_feed(b->tls, b->rbuf, (size_t)n) < 0) return fail(b, WSIO_ENOMEM, "out of memory");
  for (;;) {
    ssize_t k = rtls_read(b->tls, b->rbuf, sizeof b->rbuf);
    if (k == 0) break;
    if (k == WSIO_ECLOSED) return fail(b, WSIO_EIO, "closed by the server");
    if (k < 0) return fail(b, WSIO_ETLS, rtls_why(b->tls));
    if (redisReaderFeed(b->rd, b->rbuf, (size_t)k) != REDIS_OK) return fail(b, WSIO_ENOMEM, "out of memory");
  }
  return tls_flush(b, deadline); /* handshake records */
}

/* A non-blocking connect to each address of host in turn, within the deadline. */
static int dial(rblk *b, const char *host, int port, uint64_t deadline) {
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int g = getaddrinfo(host, ps, &hints, &res);
  if (g != 0) return fail(b, WSIO_EIO, gai_strerror(g));
  int rc = -1;
  for (struct addrinfo *a = res; a && rc < 0; a = a->ai_next) {
    b->code = 0; /* the last address's reason is the one kept */
    b->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (b->fd < 0) {
      fail(b, WSIO_EIO, strerror(errno));
      continue;
    }
    if (connect(b->fd, a->ai_addr, a->ai_addrlen) == 0) {
      rc = 0;
    } else if (errno == EINPROGRESS && wait_fd(b, POLLOUT, deadline) == 0) {
      int e = 0;
      socklen_t el = sizeof e;
      if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0) rc = 0;
      else fail(b, WSIO_EIO, strerror(e ? e : errno));
    } else {
      fail(b, WSIO_EIO, strerror(errno));
    }
    if (rc < 0) {
      close(b->fd);
      b->fd = -1;
    }
  }
  freeaddrinfo(res);
  if (rc == 0) {
    int one = 1;
    setsockopt(b->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return rc;
}

rblk *rblk_connect(const char *host, int port, rtls_ctx *tls, uint32_t timeout_ms, char *err, size_t errcap,
                   int *code) {
  rblk *b = calloc(1, sizeof *b);
  if (!b || !(b->rd = redisReaderCreate())) {
    free(b);
    snprintf(err, errcap, "out of memory");
    *code = WSIO_ENOMEM;
    return NULL;
  }
  b->fd = -1;
  b->timeout_ms = timeout_ms;
  uint64_t deadline = now_ms() + timeout_ms;
  int rc = dial(b, host, port, deadline);
  if (rc == 0 && tls) {
    if (!(b->tls = rtls_new(tls, host))) rc = fail(b, WSIO_ENOMEM, "out of memory");
    else if (rtls_handshake(b->tls) < 0) rc = fail(b, WSIO_ETLS, rtls_why(b->tls));
    while (rc == 0 && (rc = tls_flush(b, deadline)) == 0 && !rtls_ready(b->tls)) rc = pull(b, deadline);
  }
  if (rc < 0) {
    snprintf(err, errcap, "%s", b->err);
    *code = b->code;
    rblk_free(b);
    return NULL;
  }
  return b;
}

redisReply *rblk_command(rblk *b, const char *fmt, ...) {
  if (b->code) return NULL;
  char *cmd;
  va_list ap;
  va_start(ap, fmt);
  int n = redisvFormatCommand(&cmd, fmt, ap);
  va_end(ap);
  if (n < 0) {
    fail(b, WSIO_ENOMEM, "out of memory");
    return NULL;
  }
  uint64_t deadline = now_ms() + b->timeout_ms;
  int rc;
  if (b->tls) {
    rc = rtls_write(b->tls, cmd, (size_t)n) < 0 ? fail(b, WSIO_ETLS, rtls_why(b->tls)) : tls_flush(b, deadline);
  } else {
    rc = send_all(b, cmd, (size_t)n, deadline);
  }
  free(cmd);
  void *reply = NULL;
  while (rc == 0) {
    if (redisReaderGetReply(b->rd, &reply) != REDIS_OK) {
      fail(b, WSIO_EIO, "protocol error");
      return NULL;
    }
    if (reply) {
      b->answered = 1;
      return reply;
    }
    rc = pull(b, deadline);
  }
  return NULL;
}

const char *rblk_errstr(const rblk *b) { return b->err; }

int rblk_code(const rblk *b) { return b->code; }

void rblk_free(rblk *b) {
  if (!b) return;
  if (b->fd >= 0) close(b->fd);
  rtls_free(b->tls);
  if (b->rd) redisReaderFree(b->rd);
  buf_free(&b->wire);
  free(b);
}
