#include "lg/client.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "ws/frame.h"

#define HS_MAX 4096          /* cap on the 101 response's size */
#define REQ_MAX 4096         /* cap on the request head, extra headers included */
#define READ_BUF (256 * 1024)

uint32_t lg_client_rand(lg_client *cl) {
  cl->rng ^= cl->rng >> 12;
  cl->rng ^= cl->rng << 25;
  cl->rng ^= cl->rng >> 27;
  return (uint32_t)((cl->rng * 2685821657736338717ull) >> 32);
}

static void oom(void) {
  fprintf(stderr, "loadgen: out of memory\n");
  exit(2);
}

int lg_client_init(lg_client *cl, int max_conns) {
  cl->ep = epoll_create1(EPOLL_CLOEXEC);
  cl->flush = calloc((size_t)max_conns, sizeof *cl->flush);
  cl->rbuf = malloc(READ_BUF);
  if (cl->ep < 0 || !cl->flush || !cl->rbuf) return -1;
  if (cl->rng == 0) cl->rng = 0x9E3779B97F4A7C15ull;
  return 0;
}

/* ---- output --------------------------------------------------------------------------------------- */

static void flush_mark(lg_client *cl, lg_conn *c) {
  if (!c->dirty) {
    c->dirty = 1;
    cl->flush[cl->nflush++] = c;
  }
}

static void out_reserve(lg_conn *c, size_t more) {
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  if (c->out_len + more <= c->out_cap) return;
  if (c->out_off > 0) {
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
    if (c->out_len + more <= c->out_cap) return;
  }
  size_t cap = c->out_cap ? c->out_cap : 256;
  while (cap < c->out_len + more) cap *= 2;
  uint8_t *p = realloc(c->out, cap);
  if (!p) oom();
  c->out = p;
  c->out_cap = cap;
}

void lg_conn_send(lg_client *cl, lg_conn *c, int opcode, const uint8_t *data, size_t len) {
  out_reserve(c, WS_FRAME_HEADER_MAX + len);
  uint32_t k = lg_client_rand(cl);
  uint8_t mask[4];
  memcpy(mask, &k, 4);
  uint8_t *p = c->out + c->out_len;
  size_t h = ws_frame_header_encode(p, 1, 0, opcode, len, mask);
  if (len) memcpy(p + h, data, len);
  ws_mask(p + h, len, mask, 0);
  c->out_len += h + len;
  flush_mark(cl, c);
}

static void set_events(lg_client *cl, lg_conn *c, uint32_t ev) {
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &e);
}

void lg_conn_close(lg_client *cl, lg_conn *c, int err) {
  if (c->state == LG_CLOSED || c->state == LG_FREE) return;
  int was_open = c->state == LG_OPEN;
  struct linger lg = {1, 0}; /* RST: no TIME_WAIT, so the next run has every port back */
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c->fd);
  c->state = LG_CLOSED;
  free(c->hs);
  c->hs = NULL;
  if (cl->cbs.on_close) cl->cbs.on_close(cl, c, was_open, err);
}

static void conn_flush(lg_client *cl, lg_conn *c) {
  c->dirty = 0;
  if (c->state != LG_OPEN && c->state != LG_HANDSHAKE) return;
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      lg_conn_close(cl, c, errno);
      return;
    }
    c->out_off += (size_t)n;
  }
  int want = c->out_off < c->out_len;
  if (want != c->pollout) {
    c->pollout = (uint8_t)want;
    set_events(cl, c, EPOLLIN | (want ? EPOLLOUT : 0));
  }
}

void lg_client_flush(lg_client *cl) {
  for (int i = 0; i < cl->nflush; i++) conn_flush(cl, cl->flush[i]);
  cl->nflush = 0;
}

/* ---- frame parser (server to client: unmasked frames) ---------------------------------------------- */

static int frame_begin(lg_conn *c) {
  const uint8_t *h = c->hdr;
  unsigned len7 = h[1] & 0x7Fu;
  if (h[1] & 0x80u) return -1; /* a server must not mask */
  if (h[0] & 0x70u) return -1; /* RSV bits: no extension was negotiated */
  c->frame_fin = h[0] >> 7;
  c->frame_op = h[0] & 0x0Fu;
  uint64_t len = len7;
  if (len7 == 126) len = (uint64_t)h[2] << 8 | h[3];
  if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
    if (len >> 63) return -1;
  }
  c->remaining = len;
  if (c->frame_op >= 8) {
    if (!c->frame_fin || len > 125) return -1;
    if (c->frame_op != WS_OP_CLOSE && c->frame_op != WS_OP_PING && c->frame_op != WS_OP_PONG) return -1;
    c->ctl_len = 0;
  } else if (c->frame_op == WS_OP_CONT) {
    if (!c->in_msg) return -1;
  } else if (c->frame_op == WS_OP_TEXT || c->frame_op == WS_OP_BINARY) {
    if (c->in_msg) return -1;
    c->in_msg = 1;
    c->msg_len = 0;
    c->bad = 0;
  } else {
    return -1;
  }
  c->in_frame = 1;
  return 0;
}

static void frame_payload(lg_client *cl, lg_conn *c, const uint8_t *p, size_t n) {
  if (c->frame_op >= 8) {
    memcpy(c->ctl + c->ctl_len, p, n);
    c->ctl_len = (uint8_t)(c->ctl_len + n);
    return;
  }
  if (c->msg_len < LG_PREFIX) {
    size_t k = LG_PREFIX - c->msg_len < n ? LG_PREFIX - c->msg_len : n;
    memcpy(c->prefix + c->msg_len, p, k);
  }
  uint64_t from = cl->check_from;
  if (cl->expect && !c->bad && c->msg_len + n > from) {
    uint64_t skip = c->msg_len < from ? from - c->msg_len : 0;
    if (c->msg_len + n > cl->expect_len ||
        memcmp(p + skip, cl->expect + c->msg_len + skip, n - skip) != 0)
      c->bad = 1;
  }
  c->msg_len += n;
}

static void frame_end(lg_client *cl, lg_conn *c, uint64_t now) {
  c->in_frame = 0;
  switch (c->frame_op) {
  case WS_OP_PING:
    lg_conn_send(cl, c, WS_OP_PONG, c->ctl, c->ctl_len);
    return;
  case WS_OP_PONG:
    return;
  case WS_OP_CLOSE:
    if (!cl->close_frames++) /* the first says why; the count is in the report */
      fprintf(stderr, "loadgen: the server closed a connection (code %u)\n",
              c->ctl_len >= 2 ? (unsigned)(c->ctl[0] << 8 | c->ctl[1]) : 1005u);
    lg_conn_close(cl, c, ECONNRESET);
    return;
  default:
    if (!c->frame_fin) return;
    c->in_msg = 0;
    cl->cbs.on_message(cl, c, now);
  }
}

static size_t header_need(const lg_conn *c) {
  if (c->hdr_len < 2) return 2;
  unsigned len7 = c->hdr[1] & 0x7Fu;
  return 2u + (len7 == 126 ? 2u : len7 == 127 ? 8u : 0u) + ((c->hdr[1] & 0x80u) ? 4u : 0u);
}

/* Consumes bytes from an open connection. Returns -1 on a protocol error. */
static int conn_parse(lg_client *cl, lg_conn *c, const uint8_t *p, size_t n, uint64_t now) {
  while (n > 0 || (c->in_frame && c->remaining == 0)) {
    if (cl->cbs.on_run && !c->in_frame && !c->in_msg && c->hdr_len == 0) {
      size_t used = cl->cbs.on_run(cl, c, p, n, now);
      p += used;
      n -= used;
      if (n == 0) break;
    }
    if (!c->in_frame && c->hdr_len == 0 && n >= 2 && p[1] < 126) {
      /* The common case: a short unmasked header wholly in this read, parsed where it lies; a final text or
       * binary frame outside a message needs none of frame_begin's other checks. */
      c->hdr[0] = p[0];
      c->hdr[1] = p[1];
      p += 2;
      n -= 2;
      if ((c->hdr[0] == 0x81 || c->hdr[0] == 0x82) && !c->in_msg) {
        c->frame_fin = 1;
        c->frame_op = c->hdr[0] & 0x0Fu;
        c->remaining = c->hdr[1];
        c->in_msg = c->in_frame = 1;
        c->msg_len = 0;
        c->bad = 0;
      } else if (frame_begin(c) < 0) {
        return -1;
      }
      if (cl->cbs.on_whole && c->frame_fin && c->frame_op < 8 && c->frame_op != WS_OP_CONT &&
          c->remaining <= n && cl->cbs.on_whole(cl, c, c->frame_op, p, (size_t)c->remaining, now)) {
        p += c->remaining;
        n -= (size_t)c->remaining;
        c->remaining = 0;
        c->in_frame = c->in_msg = 0;
        continue;
      }
    } else if (!c->in_frame) {
      while (n > 0 && c->hdr_len < header_need(c)) {
        c->hdr[c->hdr_len++] = *p++;
        n--;
      }
      if (c->hdr_len < header_need(c)) return 0;
      c->hdr_len = 0;
      if (frame_begin(c) < 0) return -1;
    }
    size_t k = c->remaining < n ? (size_t)c->remaining : n;
    if (k) frame_payload(cl, c, p, k);
    p += k;
    n -= k;
    c->remaining -= k;
    if (c->remaining == 0) {
      frame_end(cl, c, now);
      if (c->state != LG_OPEN) return 0;
    }
  }
  return 0;
}

/* ---- connecting and the opening handshake --------------------------------------------------------- */

int lg_conn_start(lg_client *cl, lg_conn *c, int index) {
  /* A closed connection may start again (a client reconnecting): nothing of its last stream stays. */
  c->out_off = c->out_len = 0;
  c->in_frame = c->in_msg = c->hdr_len = c->bad = c->sio = 0;
  c->hs_len = 0;
  c->msg_len = 0;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (cl->sources > 1) {
    /* Address now, port at connect(): each source address then has an ephemeral port range of its own. */
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7F000001u + (uint32_t)(index % cl->sources));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
      int err = errno;
      close(c->fd);
      errno = err;
      return -1;
    }
  }
  c->state = LG_CONNECTING;
  struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, c->fd, &e) < 0) {
    int err = errno;
    close(c->fd);
    c->state = LG_FREE;
    errno = err;
    return -1;
  }
  c->pollout = 1;
  if (connect(c->fd, (struct sockaddr *)&cl->addr, sizeof cl->addr) < 0 && errno != EINPROGRESS)
    lg_conn_close(cl, c, errno);
  return 0;
}

static void b64(const uint8_t *in, int n, char *out) { EVP_EncodeBlock((unsigned char *)out, in, n); }

static void on_connected(lg_client *cl, lg_conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    lg_conn_close(cl, c, err);
    return;
  }
  uint8_t raw[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = lg_client_rand(cl);
    memcpy(raw + i, &r, 4);
  }
  b64(raw, 16, c->key);
  char req[REQ_MAX];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                   cl->path, cl->host, cl->port, c->key, cl->headers ? cl->headers : "");
  if (n < 0 || n >= (int)sizeof req) {
    fprintf(stderr, "loadgen: the request head is over %d bytes\n", REQ_MAX);
    exit(2);
  }
  c->state = LG_HANDSHAKE;
  out_reserve(c, (size_t)n);
  memcpy(c->out + c->out_len, req, (size_t)n);
  c->out_len += (size_t)n;
  conn_flush(cl, c);
}

/* Finds header `name` in a NUL-terminated response head; returns its value (trimmed) or NULL. */
static const char *find_header(const char *resp, const char *name, size_t *vlen) {
  size_t nl = strlen(name);
  for (const char *line = strstr(resp, "\r\n"); line; line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ' || *v == '\t') v++;
      const char *e = strstr(v, "\r\n");
      if (!e) e = v + strlen(v);
      while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
      *vlen = (size_t)(e - v);
      return v;
    }
  }
  return NULL;
}

static int handshake_check(const lg_conn *c) {
  if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) return -1;
  char cat[64];
  snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (!EVP_Digest(cat, strlen(cat), md, &mdlen, EVP_sha1(), NULL)) return -1;
  char want[32];
  b64(md, (int)mdlen, want);
  size_t vlen;
  const char *v = find_header(c->hs, "Sec-WebSocket-Accept", &vlen);
  if (!v || vlen != strlen(want) || memcmp(v, want, vlen) != 0) return -1;
  if (find_header(c->hs, "Sec-WebSocket-Extensions", &vlen)) return -1; /* none was offered */
  return 0;
}

static void on_handshake_bytes(lg_client *cl, lg_conn *c, const uint8_t *p, size_t n, uint64_t now) {
  if (!c->hs && !(c->hs = malloc(HS_MAX + 1))) oom();
  size_t take = n < HS_MAX - c->hs_len ? n : HS_MAX - c->hs_len;
  memcpy(c->hs + c->hs_len, p, take);
  size_t old = c->hs_len;
  c->hs_len += take;
  c->hs[c->hs_len] = 0;
  char *end = strstr(c->hs, "\r\n\r\n");
  if (!end) {
    if (c->hs_len == HS_MAX) lg_conn_close(cl, c, EMSGSIZE);
    return;
  }
  size_t head = (size_t)(end + 4 - c->hs);
  end[2] = 0; /* keeps the last header's CRLF for find_header */
  if (handshake_check(c) < 0) {
    fprintf(stderr, "loadgen: bad handshake response: %.80s\n", c->hs);
    lg_conn_close(cl, c, EPROTO);
    return;
  }
  free(c->hs);
  c->hs = NULL;
  c->state = LG_OPEN;
  if (cl->cbs.on_open) cl->cbs.on_open(cl, c, now);
  size_t used = head - old; /* frames may follow the 101 in the same read */
  if (c->state == LG_OPEN && used < n && conn_parse(cl, c, p + used, n - used, now) < 0) {
    cl->protocol_errors++;
    fprintf(stderr, "loadgen: protocol error from the server\n");
    lg_conn_close(cl, c, EPROTO);
  }
}

static void on_readable(lg_client *cl, lg_conn *c, uint64_t now) {
  /* One read per event: level-triggered epoll reports the socket again if more is waiting. */
  ssize_t n = read(c->fd, cl->rbuf, READ_BUF);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) lg_conn_close(cl, c, errno);
    return;
  }
  if (n == 0) {
    lg_conn_close(cl, c, ECONNRESET);
    return;
  }
  cl->bytes_in += (uint64_t)n;
  if (c->state == LG_HANDSHAKE) {
    on_handshake_bytes(cl, c, cl->rbuf, (size_t)n, now);
  } else if (conn_parse(cl, c, cl->rbuf, (size_t)n, now) < 0) {
    cl->protocol_errors++;
    fprintf(stderr, "loadgen: protocol error from the server\n");
    lg_conn_close(cl, c, EPROTO);
  }
}

void lg_client_dispatch(lg_client *cl, const struct epoll_event *evs, int n, uint64_t now) {
  for (int i = 0; i < n; i++) {
    lg_conn *c = evs[i].data.ptr;
    uint32_t ev = evs[i].events;
    if (c->state == LG_CONNECTING) {
      if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(cl, c);
      continue;
    }
    if (c->state == LG_CLOSED) continue;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(cl, c, now);
    if ((ev & EPOLLOUT) && c->state != LG_CLOSED) flush_mark(cl, c);
  }
}
