#include "adapter/redis_sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "wsio.h"

struct rsen {
  uv_loop_t *loop;
  redis_url url;            /* its master name and sentinels */
  uint32_t cto, backoff;
  rsen_master_fn cb;
  void *ud;
  size_t cur;               /* the sentinel in use */
  redis_conn *cmd, *sub;
  uint64_t failures_seen;   /* of cmd, at the last tick: more since means this sentinel does not answer */
  int urgent, asking;
  uv_timer_t timer;
};

static void sen_cmd_up(redis_conn *c, void *ud);
static void sen_sub_up(redis_conn *c, void *ud);
static void sen_push(redis_conn *c, redisReply *r, void *ud);

static void conns_open(rsen *s) {
  const redis_addr *a = &s->url.sentinels[s->cur];
  /* The sentinels' own credentials (none: no AUTH), in db 0, over TLS when the URL is rediss. */
  redis_url u = {.host = a->host, .port = a->port, .user = s->url.sentinel_user,
                 .password = s->url.sentinel_password, .tls = s->url.tls, .tls_ctx = s->url.tls_ctx};
  char name[300];
  snprintf(name, sizeof name, "sentinel %s:%d", a->host, a->port);
  redis_conn_config cc = {.url = &u, .name = name, .connect_timeout_ms = s->cto, .backoff_max_ms = s->backoff};
  redis_conn_cbs cmd = {.on_up = sen_cmd_up};
  s->cmd = redis_conn_new(s->loop, &cc, &cmd, s);
  cc.pubsub = 1;
  redis_conn_cbs sub = {.on_up = sen_sub_up, .on_push = sen_push};
  s->sub = redis_conn_new(s->loop, &cc, &sub, s);
  s->failures_seen = 0;
  s->asking = 0;
}

static void conns_close(rsen *s) {
  redis_conn_free(s->cmd);
  redis_conn_free(s->sub);
  s->cmd = s->sub = NULL;
}

static void on_answer(void *ud, redisReply *r) {
  rsen *s = ud;
  s->asking = 0;
  if (!r) return; /* the connection went: asked again once one is up */
  char host[256];
  int port;
  int rc = redis_sentinel_reply(r, host, sizeof host, &port);
  if (rc == 0) s->cb(s->ud, host, port);
  else if (rc == WSIO_ENOTFOUND) log_warn("redis: the sentinels do not know a master named %s", s->url.master);
}

void rsen_ask(rsen *s) {
  if (s->asking || !s->cmd || !redis_conn_up(s->cmd)) return;
  const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", s->url.master};
  size_t lens[3] = {8, 23, strlen(s->url.master)};
  if (redis_conn_cmd(s->cmd, on_answer, s, 3, argv, lens) == 0) s->asking = 1;
}

static void sen_cmd_up(redis_conn *c, void *ud) {
  (void)c;
  rsen_ask(ud);
}

static void sen_sub_up(redis_conn *c, void *ud) {
  (void)ud;
  const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
  size_t lens[2] = {9, 14};
  (void)redis_conn_cmd(c, NULL, NULL, 2, argv, lens);
}

/* "+switch-master" carries "<name> <old-ip> <old-port> <new-ip> <new-port>": for our name, ask at once (the
 * answer, not the announcement, is what is used: one path for both). */
static void sen_push(redis_conn *c, redisReply *r, void *ud) {
  (void)c;
  rsen *s = ud;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[2]->type != REDIS_REPLY_STRING) return;
  const redisReply *kind = r->element[0], *msg = r->element[2];
  if (kind->type != REDIS_REPLY_STRING || kind->len != 7 || memcmp(kind->str, "message", 7) != 0) return;
  size_t n = strlen(s->url.master);
  if (msg->len > n && memcmp(msg->str, s->url.master, n) == 0 && msg->str[n] == ' ') {
    log_info("redis: the sentinels switched master %s: %.*s", s->url.master, (int)(msg->len < 200 ? msg->len : 200),
             msg->str);
    rsen_ask(s);
  }
}

static void on_tick(uv_timer_t *t) {
  rsen *s = t->data;
  redis_conn_stats st = {0};
  if (!s->cmd || !s->sub) { /* a connection could not be made (ENOMEM): again */
    conns_close(s);
    conns_open(s);
  }
  if (s->cmd) redis_conn_stats_get(s->cmd, &st);
  if (s->cmd && !st.up && st.failures > s->failures_seen && s->url.nsentinels > 1) {
    /* This sentinel did not answer since the last tick: the next one in the list. */
    conns_close(s);
    s->cur = (s->cur + 1) % s->url.nsentinels;
    conns_open(s);
    if (!s->cmd || !s->sub) log_error("redis: out of memory opening a sentinel connection");
  } else {
    s->failures_seen = st.failures;
    rsen_ask(s);
  }
  uv_timer_start(&s->timer, on_tick, s->urgent || !st.up ? RSEN_DOWN_MS : RSEN_EVERY_MS, 0);
}

void rsen_urgent(rsen *s, int on) {
  if (s->urgent == !!on) return;
  s->urgent = !!on;
  if (on) {
    rsen_ask(s);
    uv_timer_start(&s->timer, on_tick, RSEN_DOWN_MS, 0);
  }
}

int rsen_up(const rsen *s) { return s->cmd && redis_conn_up(s->cmd); }

rsen *rsen_new(uv_loop_t *loop, const redis_url *url, uint32_t connect_timeout_ms, uint32_t backoff_max_ms,
               rsen_master_fn cb, void *ud) {
  if (!url->master || !url->nsentinels || !cb) return NULL;
  rsen *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (redis_url_copy(&s->url, url) != 0) {
    free(s);
    return NULL;
  }
  s->loop = loop;
  s->cto = connect_timeout_ms;
  s->backoff = backoff_max_ms;
  s->cb = cb;
  s->ud = ud;
  uv_timer_init(loop, &s->timer);
  uv_unref((uv_handle_t *)&s->timer);
  s->timer.data = s;
  conns_open(s);
  if (!s->cmd || !s->sub) {
    rsen_free(s);
    return NULL;
  }
  uv_timer_start(&s->timer, on_tick, RSEN_DOWN_MS, 0);
  return s;
}

static void timer_closed(uv_handle_t *h) {
  rsen *s = h->data;
  redis_url_free(&s->url);
  free(s);
}

void rsen_free(rsen *s) {
  if (!s) return;
  conns_close(s);
  uv_close((uv_handle_t *)&s->timer, timer_closed);
}
