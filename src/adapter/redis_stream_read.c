/* rsr: a Redis stream read with blocking XREAD on its own connection (see redis_stream_read.h). */
#include "adapter/redis_stream_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_stream.h"
#include "util/log.h"
#include "wsio.h"

enum { PH_START = 0, PH_READ = 1 };

struct rsr {
  uv_loop_t *loop;
  rlink *link;
  redis_url url;
  char *stream;
  char count[16], block[16];
  uint32_t block_ms, cto, backoff;
  rsr_entry_fn fn;
  void *ud;
  redis_conn *conn;
  char *host;                /* where conn goes */
  int port;
  char last[RSX_ID_MAX];     /* "" until the start point is known */
  int inflight, phase;
  uint64_t sent_at;
  int dead, failing;
  uv_timer_t retry;
  uint64_t gone_connects, gone_failures, entries;
};

static void issue(rsr *r);

static void retry_fired(uv_timer_t *t) { issue(t->data); }

/* An error reply: the key is not a stream, a redirection, a loading server. Tried again a little later. */
static void failed(rsr *r, const redisReply *e) {
  if (!r->failing)
    log_warn("redis: reading stream %s: %.*s; retrying", r->stream, (int)(e->len < 160 ? e->len : 160), e->str);
  r->failing = 1;
  if ((e->len >= 5 && !memcmp(e->str, "MOVED", 5)) || (e->len >= 3 && !memcmp(e->str, "ASK", 3)))
    rlink_refresh(r->link);
  uv_timer_start(&r->retry, retry_fired, RSR_RETRY_MS, 0);
}

static void set_last(rsr *r, const redisReply *id) {
  if (id && id->type == REDIS_REPLY_STRING && id->len < RSX_ID_MAX && rsx_offset_valid(id->str, id->len)) {
    memcpy(r->last, id->str, id->len);
    r->last[id->len] = 0;
  }
}

/* XREAD's answer: [[key, [entry, ...]]], or nil when the block time passed with nothing. */
static void entries_in(rsr *r, const redisReply *rep) {
  for (size_t i = 0; i < rep->elements && !r->dead; i++) {
    const redisReply *s = rep->element[i];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY) continue;
    const redisReply *list = s->element[1];
    for (size_t k = 0; k < list->elements && !r->dead; k++) {
      const redisReply *e = list->element[k];
      r->entries++;
      r->fn(r->ud, e);
      if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1) set_last(r, e->element[0]);
    }
  }
}

static void read_done(void *ud, redisReply *rep) {
  rsr *r = ud;
  r->inflight = 0;
  if (r->dead || !rep) return; /* gone, or the connection broke: its on_up reads again */
  if (rep->type == REDIS_REPLY_ERROR) {
    failed(r, rep);
    return;
  }
  if (r->failing) log_info("redis: reading stream %s again", r->stream);
  r->failing = 0;
  if (r->phase == PH_START) {
    snprintf(r->last, sizeof r->last, "0-0");
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 1)
      set_last(r, rep->element[0]->element[0]);
  } else if (rep->type == REDIS_REPLY_ARRAY) {
    entries_in(r, rep);
  }
  if (!r->dead) issue(r);
}

static void issue(rsr *r) {
  if (r->dead || r->inflight || !r->conn || !redis_conn_up(r->conn)) return;
  const char *argv[8];
  size_t lens[8];
  int argc;
  if (!r->last[0]) {
    r->phase = PH_START;
    const char *v[] = {"XREVRANGE", r->stream, "+", "-", "COUNT", "1"};
    argc = 6;
    memcpy(argv, v, sizeof v);
  } else {
    r->phase = PH_READ;
    const char *v[] = {"XREAD", "COUNT", r->count, "BLOCK", r->block, "STREAMS", r->stream, r->last};
    argc = 8;
    memcpy(argv, v, sizeof v);
  }
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  r->inflight = 1; /* before: a connection failing while sending answers at once */
  r->sent_at = uv_now(r->loop);
  if (redis_conn_cmd(r->conn, read_done, r, argc, argv, lens) < 0) {
    r->inflight = 0;
    uv_timer_start(&r->retry, retry_fired, RSR_RETRY_MS, 0);
  }
}

static void conn_up(redis_conn *c, void *ud) {
  (void)c;
  issue(ud);
}

static void conn_drop(rsr *r) {
  if (!r->conn) return;
  redis_conn_stats st;
  redis_conn_stats_get(r->conn, &st);
  r->gone_connects += st.connects;
  r->gone_failures += st.failures;
  redis_conn *c = r->conn;
  r->conn = NULL;
  redis_conn_free(c); /* a read in flight is failed now: read_done sees no reply */
  free(r->host);
  r->host = NULL;
}

void rsr_tick(rsr *r) {
  if (r->dead) return;
  const char *host;
  int port;
  if (rlink_addr(r->link, r->stream, strlen(r->stream), &host, &port) == 0 &&
      (!r->conn || r->port != port || strcmp(r->host, host) != 0)) {
    if (r->conn)
      log_info("redis: stream %s is on %s:%d now, no longer %s:%d", r->stream, host, port, r->host, r->port);
    conn_drop(r);
    redis_url u = r->url;
    u.host = (char *)host;
    u.port = port;
    rlink_stats ls;
    rlink_stats_get(r->link, &ls);
    if (ls.cluster) u.db = 0;
    char name[64];
    snprintf(name, sizeof name, "stream %.40s", r->stream);
    redis_conn_config cc = {.url = &u, .name = name, .connect_timeout_ms = r->cto, .backoff_max_ms = r->backoff};
    redis_conn_cbs cbs = {.on_up = conn_up};
    if (!(r->host = strdup(host)) || !(r->conn = redis_conn_new(r->loop, &cc, &cbs, r))) {
      free(r->host);
      r->host = NULL;
      return; /* the next tick tries again */
    }
    r->port = port;
  }
  if (r->conn && r->inflight && uv_now(r->loop) > r->sent_at + r->block_ms + RSR_GRACE_MS)
    redis_conn_reset(r->conn, "no answer to a blocking read");
}

rsr *rsr_new(uv_loop_t *loop, const rsr_config *cfg, rsr_entry_fn fn, void *ud) {
  rsr *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  if (redis_url_copy(&r->url, cfg->url) != 0 || !(r->stream = strdup(cfg->stream))) {
    redis_url_free(&r->url);
    free(r);
    return NULL;
  }
  r->loop = loop;
  r->link = cfg->link;
  r->fn = fn;
  r->ud = ud;
  r->block_ms = cfg->block_ms;
  r->cto = cfg->connect_timeout_ms;
  r->backoff = cfg->backoff_max_ms;
  snprintf(r->count, sizeof r->count, "%u", cfg->count);
  snprintf(r->block, sizeof r->block, "%u", cfg->block_ms);
  uv_timer_init(loop, &r->retry);
  uv_unref((uv_handle_t *)&r->retry);
  r->retry.data = r;
  rsr_tick(r);
  return r;
}

void rsr_stats_get(const rsr *r, rsr_stats *out) {
  memset(out, 0, sizeof *out);
  out->connects = r->gone_connects;
  out->failures = r->gone_failures;
  out->entries = r->entries;
  if (r->conn) {
    redis_conn_stats st;
    redis_conn_stats_get(r->conn, &st);
    out->up = st.up;
    out->connects += st.connects;
    out->failures += st.failures;
  }
}

const char *rsr_last(const rsr *r) { return r->last; }

static void retry_closed(uv_handle_t *h) {
  rsr *r = h->data;
  redis_url_free(&r->url);
  free(r->stream);
  free(r);
}

void rsr_free(rsr *r) {
  if (!r || r->dead) return;
  r->dead = 1;
  conn_drop(r);
  uv_close((uv_handle_t *)&r->retry, retry_closed);
}
