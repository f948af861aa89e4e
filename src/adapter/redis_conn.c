/* redis_conn: a reconnecting Redis connection on libuv (see redis_conn.h). */
#include "adapter/redis_conn.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "util/log.h"
#include "wsio.h"

enum { ST_WAIT = 0, ST_RESOLVING, ST_CONNECTING, ST_HANDSHAKE, ST_UP, ST_DEAD };

#define BACKOFF_FIRST_MS 100
#define READ_CHUNK 65536
#define REDIS_CONN_ADDRS 4 /* addresses of one host tried per attempt */

typedef struct pending_cb {
  redis_reply_fn cb;
  void *ud;
} pending_cb;

/* One TCP attempt: its own allocation, because libuv releases a handle only after the close callback. */
typedef struct tcp_link {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  redis_conn *c;   /* NULL once the connection has moved on */
} tcp_link;

struct redis_conn {
  uv_loop_t *loop;
  redis_url url;
  char name[64];       /* for log lines: "publish", or "subscribe 10.0.0.7:7001" on a cluster */
  int pubsub;
  uint32_t connect_timeout_ms, backoff_max_ms;
  size_t max_out, max_reply;
  redis_conn_cbs cbs;
  void *ud;
  int state;
  int refs;           /* handles and requests libuv still holds: memory goes at 0 once dead */
  uv_timer_t timer;   /* connect timeout, then back-off */
  uv_getaddrinfo_t *gai; /* the resolution of the current attempt; a late one of an older attempt is dropped */
  tcp_link *link;
  /* The addresses the host resolved to, tried in turn within one attempt: "localhost" may name ::1 first
   * while Redis listens on 127.0.0.1 only. A timeout starts the next attempt at the next address. */
  struct sockaddr_storage addrs[REDIS_CONN_ADDRS];
  unsigned naddrs, addr_at, addr_first;
  redisReader *reader;
  rtls *tls;          /* the TLS session of the current attempt (rediss); NULL: plain */
  buf out, wbuf;      /* queued commands; the bytes of the write in flight */
  buf wire;           /* TLS: records waiting to be written (commands go out encrypted once the handshake is
                       * done) */
  int writing;
  pending_cb *q;      /* callbacks of commands in flight (command mode), a ring */
  size_t qhead, qn, qcap;
  unsigned hs_left;   /* handshake replies still awaited */
  unsigned attempt;
  int was_up;         /* for one log line per state change */
  int reported_down;
  char rbuf[READ_CHUNK];
  redis_conn_stats st;
};

static void conn_release(redis_conn *c) {
  if (--c->refs > 0 || c->state != ST_DEAD) return;
  redis_url_free(&c->url);
  if (c->reader) redisReaderFree(c->reader);
  rtls_free(c->tls);
  buf_free(&c->out);
  buf_free(&c->wbuf);
  buf_free(&c->wire);
  free(c->q);
  free(c);
}

static void schedule(redis_conn *c);
static void start_attempt(redis_conn *c);

static void link_closed(uv_handle_t *h) {
  tcp_link *l = h->data;
  redis_conn *c = l->c;
  free(l);
  if (c) conn_release(c);
}

/* Fails every callback in flight (reply NULL), in order. */
static void fail_pending(redis_conn *c) {
  while (c->qn) {
    pending_cb p = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qn--;
    if (p.cb) p.cb(p.ud, NULL);
  }
  c->qhead = 0;
}

static void drop_link(redis_conn *c) {
  if (!c->link) return;
  tcp_link *l = c->link;
  c->link = NULL;
  uv_close((uv_handle_t *)&l->tcp, link_closed);
}

/* The attempt failed or the connection broke: tell the owner once, then back off and retry. */
static void lost(redis_conn *c, const char *why) {
  if (c->state == ST_DEAD) return;
  int was = c->state == ST_UP;
  drop_link(c);
  uv_timer_stop(&c->timer);
  c->writing = 0;
  c->out.len = 0;
  c->wbuf.len = 0;
  c->wire.len = 0;
  buf_reset(&c->out, 65536);
  buf_reset(&c->wbuf, 65536);
  buf_reset(&c->wire, 65536);
  if (c->reader) {
    redisReaderFree(c->reader);
    c->reader = NULL;
  }
  rtls_free(c->tls);
  c->tls = NULL;
  c->st.up = 0;
  c->st.failures++;
  if (!c->reported_down) {
    c->reported_down = 1;
    if (was || c->was_up)
      log_warn("redis %s: connection to %s:%d lost (%s); reconnecting", c->name, c->url.host, c->url.port, why);
    else
      log_warn("redis %s: cannot connect to %s:%d (%s); retrying", c->name, c->url.host, c->url.port, why);
  }
  c->state = ST_WAIT;
  fail_pending(c);
  if (was && c->cbs.on_down) c->cbs.on_down(c, c->ud);
  else if (!was && c->cbs.on_fail) c->cbs.on_fail(c, c->ud);
  if (c->state == ST_WAIT) schedule(c);
}

static void on_timer(uv_timer_t *t) {
  redis_conn *c = t->data;
  if (c->state == ST_WAIT)
    start_attempt(c);
  else if (c->tls && !rtls_ready(c->tls))
    lost(c, "timed out in the TLS handshake (a plain port? then redis://)");
  else if (c->state == ST_RESOLVING || c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
    if (c->state == ST_CONNECTING) c->addr_first += c->addr_at + 1; /* next time, the address after it */
    lost(c, "timed out");
  }
}

static void schedule(redis_conn *c) {
  uint64_t d = BACKOFF_FIRST_MS;
  for (unsigned i = 0; i < c->attempt && d < c->backoff_max_ms; i++) d *= 2;
  if (d > c->backoff_max_ms) d = c->backoff_max_ms;
  /* +-20% jitter so that many nodes do not reconnect in step after a Redis restart */
  d = d * (80 + (uint64_t)(rand() % 41)) / 100;
  if (c->attempt < 32) c->attempt++;
  uv_timer_start(&c->timer, on_timer, d, 0);
}

static void flush(redis_conn *c);

static void on_written(uv_write_t *req, int status) {
  tcp_link *l = req->data;
  redis_conn *c = l->c;
  if (!c || c->link != l) return;
  c->writing = 0;
  c->wbuf.len = 0;
  if (status < 0) {
    lost(c, uv_strerror(status));
    return;
  }
  flush(c);
}

/* TLS: the queued commands encrypted (once the handshake is done) after the records TLS has to send. */
static buf *tls_stage(redis_conn *c) {
  char why[300];
  if (c->out.len && rtls_ready(c->tls)) {
    if (rtls_write(c->tls, c->out.data, c->out.len) < 0) {
      snprintf(why, sizeof why, "%s", rtls_why(c->tls));
      lost(c, why);
      return NULL;
    }
    c->out.len = 0;
  }
  if (rtls_out(c->tls, &c->wire) < 0) {
    lost(c, "out of memory");
    return NULL;
  }
  return &c->wire;
}

static void flush(redis_conn *c) {
  if (c->writing || !c->link) return;
  buf *src = c->tls ? tls_stage(c) : &c->out;
  if (!src || !src->len) return;
  buf t = c->wbuf;
  c->wbuf = *src;
  *src = t;
  src->len = 0;
  uv_buf_t b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
  c->link->wreq.data = c->link;
  int rc = uv_write(&c->link->wreq, (uv_stream_t *)&c->link->tcp, &b, 1, on_written);
  if (rc < 0) {
    lost(c, uv_strerror(rc));
    return;
  }
  c->writing = 1;
}

static int append_cmd(redis_conn *c, int argc, const char **argv, const size_t *lens) {
  char *cmd;
  int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
  if (n < 0) return WSIO_ENOMEM;
  int rc = buf_append(&c->out, cmd, (size_t)n);
  free(cmd);
  return rc;
}

static int push_cb(redis_conn *c, redis_reply_fn cb, void *ud) {
  if (c->qn == c->qcap) {
    size_t cap = c->qcap ? c->qcap * 2 : 64;
    pending_cb *q = malloc(cap * sizeof *q);
    if (!q) return WSIO_ENOMEM;
    for (size_t i = 0; i < c->qn; i++) q[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = q;
    c->qhead = 0;
    c->qcap = cap;
  }
  c->q[(c->qhead + c->qn) % c->qcap] = (pending_cb){cb, ud};
  c->qn++;
  return 0;
}

int redis_conn_cmd(redis_conn *c, redis_reply_fn cb, void *ud, int argc, const char **argv, const size_t *lens) {
  if (c->state != ST_UP) return WSIO_ECLOSED;
  if (c->out.len + c->wbuf.len + c->wire.len > c->max_out) return WSIO_ELIMIT;
  size_t mark = c->out.len;
  int rc = append_cmd(c, argc, argv, lens);
  if (rc == 0 && !c->pubsub) rc = push_cb(c, cb, ud);
  if (rc < 0) {
    c->out.len = mark;
    return rc;
  }
  flush(c);
  return 0;
}

static void went_up(redis_conn *c) {
  c->state = ST_UP;
  c->attempt = 0;
  c->st.up = 1;
  c->st.connects++;
  uv_timer_stop(&c->timer);
  if (c->reported_down || !c->was_up)
    log_info("redis %s: connected to %s:%d%s%s", c->name, c->url.host, c->url.port, c->tls ? " over " : "",
             c->tls ? rtls_version(c->tls) : "");
  c->reported_down = 0;
  c->was_up = 1;
  if (c->cbs.on_up) c->cbs.on_up(c, c->ud);
}

static void on_reply(redis_conn *c, redisReply *r) {
  if (c->state == ST_HANDSHAKE) {
    if (r->type == REDIS_REPLY_ERROR) {
      char why[160];
      snprintf(why, sizeof why, "refused: %.*s", (int)(r->len < 120 ? r->len : 120), r->str);
      lost(c, why);
      return;
    }
    if (--c->hs_left == 0) went_up(c);
    return;
  }
  if (c->pubsub) {
    if (c->cbs.on_push) c->cbs.on_push(c, r, c->ud);
    return;
  }
  if (!c->qn) {
    lost(c, "unexpected reply");
    return;
  }
  pending_cb p = c->q[c->qhead];
  c->qhead = (c->qhead + 1) % c->qcap;
  c->qn--;
  if (p.cb) p.cb(p.ud, r);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  tcp_link *l = h->data;
  static char sink[64];
  if (!l->c) {
    *b = uv_buf_init(sink, sizeof sink);
    return;
  }
  *b = uv_buf_init(l->c->rbuf, sizeof l->c->rbuf);
}

/* TLS: ciphertext in, its plaintext to the reply reader (rbuf is free again once the BIO holds the
 * ciphertext), then whatever TLS has to send out. Returns 0, or -1 once lost. */
static int tls_in(redis_conn *c, const char *p, size_t n) {
  char why[300];
  if (rtls_feed(c->tls, p, n) < 0) {
    lost(c, "out of memory");
    return -1;
  }
  for (;;) {
    ssize_t k = rtls_read(c->tls, c->rbuf, sizeof c->rbuf);
    if (k == 0) break;
    if (k < 0) {
      snprintf(why, sizeof why, "%s", k == WSIO_ECLOSED ? "closed by the server" : rtls_why(c->tls));
      lost(c, why);
      return -1;
    }
    if (redisReaderFeed(c->reader, c->rbuf, (size_t)k) != REDIS_OK) {
      lost(c, "out of memory");
      return -1;
    }
  }
  flush(c); /* handshake records, and the commands that waited for the handshake */
  return 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  tcp_link *l = s->data;
  redis_conn *c = l->c;
  if (!c || c->link != l || n == 0) return;
  if (n < 0) {
    /* Dropped before any answer: on a plain connection most often a TLS-only port; on TLS the handshake may
     * say (a client certificate asked for). */
    const char *hint = c->tls ? rtls_hint(c->tls) : "closed by the server before answering (a TLS port? then "
                                                      "rediss://)";
    char why[300];
    if ((n == UV_EOF || n == UV_ECONNRESET) && c->state == ST_HANDSHAKE && hint) {
      snprintf(why, sizeof why, "%s", hint);
      lost(c, why);
    } else
      lost(c, n == UV_EOF ? "closed by the server" : uv_strerror((int)n));
    return;
  }
  if (c->tls) {
    if (tls_in(c, b->base, (size_t)n) < 0) return;
  } else if (redisReaderFeed(c->reader, b->base, (size_t)n) != REDIS_OK) {
    lost(c, "out of memory");
    return;
  }
  /* The owner may free us from a callback: hold a reference across the loop. */
  c->refs++;
  while (c->link == l && c->state != ST_DEAD) {
    void *reply = NULL;
    if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
      lost(c, "protocol error");
      break;
    }
    if (!reply) {
      if (c->reader->len - c->reader->pos > c->max_reply) lost(c, "reply over the size limit");
      break;
    }
    on_reply(c, reply);
    freeReplyObject(reply);
  }
  conn_release(c);
}

static void connect_next(redis_conn *c);

static void on_connected(uv_connect_t *req, int status) {
  tcp_link *l = req->data;
  redis_conn *c = l->c;
  if (!c || c->link != l) return;
  if (status < 0) {
    if (c->addr_at + 1 < c->naddrs) { /* the host's next address, in the same attempt */
      drop_link(c);
      c->addr_at++;
      connect_next(c);
      return;
    }
    lost(c, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&l->tcp, 1);
  uv_tcp_keepalive(&l->tcp, 1, 30);
  c->reader = redisReaderCreate();
  if (!c->reader) {
    lost(c, "out of memory");
    return;
  }
  int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  if (rc < 0) {
    lost(c, uv_strerror(rc));
    return;
  }
  /* TLS first: the commands below wait in out until the handshake is done. */
  if (c->url.tls) {
    if (!(c->tls = rtls_new(c->url.tls_ctx, c->url.host))) {
      lost(c, "out of memory");
      return;
    }
    if (rtls_handshake(c->tls) < 0) {
      char why[300];
      snprintf(why, sizeof why, "%s", rtls_why(c->tls));
      lost(c, why);
      return;
    }
  }
  /* AUTH and SELECT go first; the connection is up once they are answered (PING when there is neither). */
  c->state = ST_HANDSHAKE;
  c->hs_left = 0;
  if (c->url.password) {
    const char *argv[3] = {"AUTH", c->url.user ? c->url.user : c->url.password, c->url.password};
    size_t lens[3] = {4, strlen(argv[1]), strlen(argv[2])};
    rc = append_cmd(c, c->url.user ? 3 : 2, argv, lens);
    c->hs_left++;
  }
  if (rc == 0 && c->url.db) {
    char db[16];
    snprintf(db, sizeof db, "%d", c->url.db);
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, strlen(db)};
    rc = append_cmd(c, 2, argv, lens);
    c->hs_left++;
  }
  if (rc == 0 && !c->hs_left) {
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    rc = append_cmd(c, 1, argv, lens);
    c->hs_left++;
  }
  if (rc < 0) {
    lost(c, "out of memory");
    return;
  }
  flush(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  redis_conn *c = req->data;
  int current = c->gai == req && c->state == ST_RESOLVING;
  if (c->gai == req) c->gai = NULL;
  free(req);
  if (!current) {
    if (res) uv_freeaddrinfo(res);
    conn_release(c);
    return;
  }
  conn_release(c);
  if (status < 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    lost(c, status < 0 ? uv_strerror(status) : "no address");
    return;
  }
  c->naddrs = 0;
  for (struct addrinfo *a = res; a && c->naddrs < REDIS_CONN_ADDRS; a = a->ai_next) {
    if (a->ai_addrlen > sizeof c->addrs[0]) continue;
    memcpy(&c->addrs[c->naddrs++], a->ai_addr, a->ai_addrlen);
  }
  uv_freeaddrinfo(res);
  if (!c->naddrs) {
    lost(c, "no address");
    return;
  }
  if (c->addr_first >= c->naddrs) c->addr_first = 0;
  c->addr_at = 0;
  connect_next(c);
}

/* Connects to address (addr_first + addr_at) mod naddrs of the attempt. */
static void connect_next(redis_conn *c) {
  tcp_link *l = calloc(1, sizeof *l);
  if (!l) {
    lost(c, "out of memory");
    return;
  }
  l->c = c;
  uv_tcp_init(c->loop, &l->tcp);
  /* The connection never keeps the loop alive by itself: a server stopping gracefully while Redis is away
   * would otherwise wait on the reconnection forever. */
  uv_unref((uv_handle_t *)&l->tcp);
  l->tcp.data = l;
  l->creq.data = l;
  c->link = l;
  c->refs++;
  c->state = ST_CONNECTING;
  const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[(c->addr_first + c->addr_at) % c->naddrs];
  int rc = uv_tcp_connect(&l->creq, &l->tcp, sa, on_connected);
  if (rc < 0) lost(c, uv_strerror(rc));
}

static void start_attempt(redis_conn *c) {
  c->state = ST_RESOLVING;
  uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
  char port[16];
  snprintf(port, sizeof port, "%d", c->url.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  uv_getaddrinfo_t *req = malloc(sizeof *req);
  if (!req) {
    lost(c, "out of memory");
    return;
  }
  req->data = c;
  c->gai = req;
  c->refs++;
  int rc = uv_getaddrinfo(c->loop, req, on_resolved, c->url.host, port, &hints);
  if (rc < 0) {
    c->refs--;
    c->gai = NULL;
    free(req);
    lost(c, uv_strerror(rc));
  }
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

redis_conn *redis_conn_new(uv_loop_t *loop, const redis_conn_config *cfg, const redis_conn_cbs *cbs, void *ud) {
  if (!cfg->url || !cfg->url->host || (cfg->url->tls && !cfg->url->tls_ctx)) return NULL;
  redis_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->loop = loop;
  c->url.host = strdup(cfg->url->host);
  c->url.user = dup_or_null(cfg->url->user);
  c->url.password = dup_or_null(cfg->url->password);
  c->url.port = cfg->url->port;
  c->url.db = cfg->url->db;
  c->url.tls = cfg->url->tls;
  if (c->url.tls) c->url.tls_ctx = rtls_ctx_ref(cfg->url->tls_ctx);
  if (!c->url.host || (cfg->url->user && !c->url.user) || (cfg->url->password && !c->url.password)) {
    redis_url_free(&c->url);
    free(c);
    return NULL;
  }
  snprintf(c->name, sizeof c->name, "%s", cfg->name ? cfg->name : "conn");
  c->pubsub = cfg->pubsub;
  c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
  c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000;
  c->max_out = cfg->max_out ? cfg->max_out : (size_t)64 << 20;
  c->max_reply = cfg->max_reply ? cfg->max_reply : (size_t)256 << 20;
  if (cbs) c->cbs = *cbs;
  c->ud = ud;
  uv_timer_init(loop, &c->timer);
  uv_unref((uv_handle_t *)&c->timer);
  c->timer.data = c;
  c->refs = 1; /* the timer */
  start_attempt(c);
  return c;
}

int redis_conn_up(const redis_conn *c) { return c->state == ST_UP; }

void redis_conn_reset(redis_conn *c, const char *why) {
  if (c->state == ST_UP || c->state == ST_HANDSHAKE || c->state == ST_CONNECTING) lost(c, why);
}

void redis_conn_stats_get(const redis_conn *c, redis_conn_stats *out) { *out = c->st; }

static void timer_closed(uv_handle_t *h) { conn_release(h->data); }

void redis_conn_free(redis_conn *c) {
  if (!c || c->state == ST_DEAD) return;
  int resolving = c->state == ST_RESOLVING;
  c->state = ST_DEAD;
  c->refs++; /* a callback below may not free us */
  fail_pending(c);
  if (c->link) {
    tcp_link *l = c->link;
    c->link = NULL;
    uv_close((uv_handle_t *)&l->tcp, link_closed); /* link_closed releases our reference */
  }
  if (resolving && c->gai) uv_cancel((uv_req_t *)c->gai);
  uv_close((uv_handle_t *)&c->timer, timer_closed);
  conn_release(c);
}
