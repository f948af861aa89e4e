/* Webhooks: connection events batched to the backend, with retries and a bounded queue. */
#include "server/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "server/http_client.h"
#include "sio/json.h"
#include "util/buf.h"
#include "util/log.h"

/* Longest wait before a retry, however many attempts came before. */
#define BACKOFF_MAX_MS 60000

typedef struct hook_event {
  char *json;
  size_t len;
} hook_event;

struct srv_webhooks {
  srv_app *app;
  uv_timer_t timer;      /* the batch interval, or the back-off before a retry */
  hook_event *ring;      /* the queue: count events from head, wrapping at cap */
  size_t cap, head, count, queue_max;
  uint64_t oldest_ms;    /* when the oldest queued event came (loop time) */
  srv_http_req *req;     /* the request in flight */
  char *body;            /* the batch being delivered, kept for retries */
  size_t body_len, body_events;
  unsigned attempt;      /* retries made for this batch */
  int armed;             /* the timer waits for the batch interval */
  int waiting;           /* the timer waits to retry */
  int finishing;
  uint64_t dropped;
  uint64_t last_warn_ms;
};

static uint64_t now_ms(const srv_webhooks *w) { return uv_now(wsio_server_loop(w->app->server)); }

static void warn_drop(srv_webhooks *w) {
  uint64_t now = now_ms(w);
  if (w->last_warn_ms && now - w->last_warn_ms < 1000) return;
  w->last_warn_ms = now ? now : 1;
  log_warn("webhooks: queue full (%zu events): dropping the oldest (%llu dropped so far)", w->queue_max,
           (unsigned long long)w->dropped);
}

static hook_event pop(srv_webhooks *w) {
  hook_event e = w->ring[w->head];
  w->head = (w->head + 1) % w->cap;
  w->count--;
  return e;
}

static void drop_oldest(srv_webhooks *w, size_t n) {
  while (n-- && w->count) {
    free(pop(w).json);
    w->dropped++;
  }
}

static int push(srv_webhooks *w, hook_event e) {
  if (w->count >= w->queue_max) {
    drop_oldest(w, w->count - w->queue_max + 1);
    warn_drop(w);
  }
  if (w->count == w->cap) {
    size_t ncap = w->cap ? w->cap * 2 : 16;
    hook_event *r = malloc(ncap * sizeof *r);
    if (!r) return WSIO_ENOMEM;
    for (size_t i = 0; i < w->count; i++) r[i] = w->ring[(w->head + i) % w->cap];
    free(w->ring);
    w->ring = r;
    w->cap = ncap;
    w->head = 0;
  }
  if (w->count == 0) w->oldest_ms = now_ms(w);
  w->ring[(w->head + w->count++) % w->cap] = e;
  return 0;
}

static void drop_body(srv_webhooks *w) {
  free(w->body);
  w->body = NULL;
  w->body_len = w->body_events = 0;
  w->attempt = 0;
}

static void schedule(srv_webhooks *w);
static void post(srv_webhooks *w);

static void on_timer(uv_timer_t *t);

/* A request ended badly: retry later, or give the batch up. */
static void failed(srv_webhooks *w, const char *why) {
  const server_config *cfg = w->app->cfg;
  if (!w->finishing && cfg->webhooks.url && w->attempt < cfg->webhooks.retries) {
    uint64_t delay = cfg->webhooks.batch_interval_ms;
    for (unsigned i = 0; i < w->attempt && delay < BACKOFF_MAX_MS; i++) delay *= 2;
    if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
    w->attempt++;
    log_debug("webhooks: %s; retry %u in %llu ms", why, w->attempt, (unsigned long long)delay);
    w->waiting = 1;
    uv_timer_start(&w->timer, on_timer, delay, 0);
    return;
  }
  w->app->metrics.webhook_failures++;
  log_warn("webhooks: %s; gave up a batch of %zu events after %u attempts", why, w->body_events, w->attempt + 1);
  drop_body(w);
  if (w->finishing && w->count) { /* shutdown is not held up batch after batch by a backend that is down */
    log_warn("webhooks: dropping the %zu events left at shutdown", w->count);
    drop_oldest(w, w->count);
  }
}

static void on_done(const srv_http_result *r, void *ud) {
  srv_webhooks *w = ud;
  w->req = NULL;
  if (r->err) {
    failed(w, wsio_strerror(r->err));
  } else if (r->status < 200 || r->status > 299) {
    char why[48];
    snprintf(why, sizeof why, "backend answered HTTP %d", r->status);
    failed(w, why);
  } else {
    w->app->metrics.webhook_deliveries++;
    drop_body(w);
  }
  schedule(w);
}

static void post(srv_webhooks *w) {
  const char *url = w->app->cfg->webhooks.url;
  if (!url) { /* turned off by a reload */
    w->dropped += w->body_events;
    drop_body(w);
    return;
  }
  w->req = srv_http_post(w->app->http, url, "application/json", w->body, w->body_len, SRV_WEBHOOKS_TIMEOUT_MS, 0,
                         on_done, w);
  if (!w->req) failed(w, "cannot send the request");
}

/* Takes up to batch_size events off the queue into one request. Returns 0 (the batch is in flight, waits
 * for a retry, or was given up), or WSIO_ENOMEM (nothing was taken). */
static int send_batch(srv_webhooks *w) {
  size_t n = w->app->cfg->webhooks.batch_size;
  if (n == 0 || n > w->count) n = w->count;
  buf b = {0};
  int rc = buf_append(&b, "{\"events\":[", 11);
  for (size_t i = 0; i < n && rc == 0; i++) {
    const hook_event *e = &w->ring[(w->head + i) % w->cap];
    if (i) rc = buf_append(&b, ",", 1);
    if (rc == 0) rc = buf_append(&b, e->json, e->len);
  }
  if (rc == 0) rc = buf_append(&b, "]}", 2);
  if (rc != 0) {
    buf_free(&b);
    return WSIO_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) free(pop(w).json);
  if (w->count) w->oldest_ms = now_ms(w);
  w->body = (char *)b.data;
  w->body_len = b.len;
  w->body_events = n;
  w->attempt = 0;
  post(w);
  return 0;
}

/* Decides what happens next, after the queue grew or a request ended. */
static void schedule(srv_webhooks *w) {
  const server_config *cfg = w->app->cfg;
  for (;;) {
    if (w->req || w->waiting || w->body) return;
    if (!cfg->webhooks.url) {
      drop_oldest(w, w->count);
      return;
    }
    if (!w->count) {
      if (w->armed) uv_timer_stop(&w->timer);
      w->armed = 0;
      return;
    }
    if (!w->finishing && w->count < cfg->webhooks.batch_size) {
      if (!w->armed) {
        uint64_t due = w->oldest_ms + cfg->webhooks.batch_interval_ms, now = now_ms(w);
        w->armed = 1;
        uv_timer_start(&w->timer, on_timer, due > now ? due - now : 0, 0);
      }
      return;
    }
    if (w->armed) uv_timer_stop(&w->timer);
    w->armed = 0;
    if (send_batch(w) != 0) { /* out of memory: try again at the next interval */
      w->armed = 1;
      uv_timer_start(&w->timer, on_timer, cfg->webhooks.batch_interval_ms, 0);
      return;
    }
  }
}

static void on_timer(uv_timer_t *t) {
  srv_webhooks *w = t->data;
  if (w->waiting) {
    w->waiting = 0;
    post(w);
    schedule(w);
    return;
  }
  w->armed = 0;
  /* The interval is over: whatever is queued goes, however few. */
  if (w->count && !w->req && !w->body && send_batch(w) != 0) {
    w->armed = 1;
    uv_timer_start(&w->timer, on_timer, w->app->cfg->webhooks.batch_interval_ms, 0);
    return;
  }
  schedule(w);
}

static void record(srv_webhooks *w, wsio_socket *s, int type, const char *reason) {
  const server_config *cfg = w->app->cfg;
  if (!s || !cfg->webhooks.url || !(cfg->webhooks.events & type)) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  const char *id = wsio_socket_id(s);
  const char *nsp = wsio_nsp_name(wsio_socket_nsp(s));
  const wsio_handshake *hs = wsio_socket_handshake(s);
  const char *addr = hs && hs->address ? hs->address : "";
  char tail[48];
  snprintf(tail, sizeof tail, ",\"time\":%lld", ms);
  buf b = {0};
  const char *head = type == SERVER_WEBHOOK_CONNECT ? "{\"type\":\"connect\"" : "{\"type\":\"disconnect\"";
  int rc = buf_append(&b, head, strlen(head));
  rc |= buf_append(&b, ",\"socket\":", 10);
  rc |= sio_json_write_string(&b, id, strlen(id));
  rc |= buf_append(&b, ",\"namespace\":", 13);
  rc |= sio_json_write_string(&b, nsp, strlen(nsp));
  rc |= buf_append(&b, ",\"address\":", 11);
  rc |= sio_json_write_string(&b, addr, strlen(addr));
  rc |= buf_append(&b, tail, strlen(tail));
  if (reason) {
    rc |= buf_append(&b, ",\"reason\":", 10);
    rc |= sio_json_write_string(&b, reason, strlen(reason));
  }
  rc |= buf_append(&b, "}", 1);
  if (rc != 0 || push(w, (hook_event){(char *)b.data, b.len}) != 0) {
    buf_free(&b);
    return;
  }
  schedule(w);
}

void srv_webhooks_connect(srv_webhooks *w, wsio_socket *s) {
  if (w) record(w, s, SERVER_WEBHOOK_CONNECT, NULL);
}

void srv_webhooks_disconnect(srv_webhooks *w, wsio_socket *s, const char *reason) {
  if (w) record(w, s, SERVER_WEBHOOK_DISCONNECT, reason ? reason : "");
}

srv_webhooks *srv_webhooks_new(srv_app *app) {
  if (!app || !app->http || !app->server) return NULL;
  srv_webhooks *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->app = app;
  w->queue_max = SRV_WEBHOOKS_QUEUE_MAX;
  uv_timer_init(wsio_server_loop(app->server), &w->timer);
  w->timer.data = w;
  /* Pending events never hold a stopping server open: srv_webhooks_finish() sends them. */
  uv_unref((uv_handle_t *)&w->timer);
  return w;
}

void srv_webhooks_set_queue_max(srv_webhooks *w, size_t max) {
  if (!w) return;
  w->queue_max = max ? max : 1;
  if (w->count > w->queue_max) drop_oldest(w, w->count - w->queue_max);
}

void srv_webhooks_finish(srv_webhooks *w) {
  if (!w) return;
  w->finishing = 1;
  uv_timer_stop(&w->timer);
  w->armed = 0;
  if (w->waiting) { /* the pending retry goes out now, as the last attempt */
    w->waiting = 0;
    post(w);
  }
  schedule(w);
}

size_t srv_webhooks_queued(const srv_webhooks *w) { return w ? w->count : 0; }

uint64_t srv_webhooks_dropped(const srv_webhooks *w) { return w ? w->dropped : 0; }

static void timer_closed(uv_handle_t *h) { free(h->data); }

void srv_webhooks_free(srv_webhooks *w) {
  if (!w) return;
  if (w->req) srv_http_cancel(w->app->http, w->req);
  w->req = NULL;
  drop_body(w);
  while (w->count) free(pop(w).json);
  free(w->ring);
  w->ring = NULL;
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, timer_closed);
}
