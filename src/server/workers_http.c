/* workers_http — /metrics and the HTTP API of the wsio program over every worker: each worker's counters are
 * summed, and an API call runs on every worker's own sockets with the answers merged (src/server/program.h).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/response.h"
#include "server/http_api.h"
#include "server/program.h"

static void metrics_add(srv_metrics *to, const srv_metrics *m) {
  for (int i = 0; i <= SRV_HIST_BUCKETS; i++) to->proxy_latency.counts[i] += m->proxy_latency.counts[i];
  to->proxy_latency.total += m->proxy_latency.total;
  to->proxy_latency.sum += m->proxy_latency.sum;
  to->proxy_requests += m->proxy_requests;
  to->proxy_failures += m->proxy_failures;
  to->proxy_timeouts += m->proxy_timeouts;
  to->webhook_deliveries += m->webhook_deliveries;
  to->webhook_failures += m->webhook_failures;
  to->webhook_dropped += m->webhook_dropped;
  to->api_requests += m->api_requests;
  to->api_rejected += m->api_rejected;
  to->auth_rejected += m->auth_rejected;
  for (size_t i = 0; i < sizeof to->eio_errors / sizeof to->eio_errors[0]; i++)
    to->eio_errors[i] += m->eio_errors[i];
  to->route_events += m->route_events;
  to->redis_nodes += m->redis_nodes;
  to->redis_connected += m->redis_connected;
  to->redis_connects += m->redis_connects;
  to->redis_disconnects += m->redis_disconnects;
  to->redis_published += m->redis_published;
  to->redis_received += m->redis_received;
  to->redis_dropped += m->redis_dropped;
  to->redis_malformed += m->redis_malformed;
  /* Every worker sees the same cluster: its size once (the largest any worker knows), the work summed. */
  if (m->redis_cluster_primaries > to->redis_cluster_primaries)
    to->redis_cluster_primaries = m->redis_cluster_primaries;
  to->redis_cluster_refreshes += m->redis_cluster_refreshes;
  to->redis_cluster_redirects += m->redis_cluster_redirects;
  to->redis_sentinel += m->redis_sentinel;
  to->redis_sentinel_switches += m->redis_sentinel_switches;
  to->redis_streams += m->redis_streams;
  to->redis_stream_entries += m->redis_stream_entries;
  to->redis_queued += m->redis_queued;
  to->redis_sessions_saved += m->redis_sessions_saved;
  to->redis_sessions_restored += m->redis_sessions_restored;
}

/* This worker's Redis adapter counters into its metrics (nothing without [redis] url). */
static void redis_snap(worker *w) {
  wsio_redis_stats st;
  srv_metrics *m = &w->app.metrics;
  if (!w->app.io || wsio_io_redis_stats(w->app.io, &st) != 0) return;
  m->redis_nodes = 1;
  m->redis_connected = st.connected ? 1 : 0;
  m->redis_connects = st.connects;
  m->redis_disconnects = st.disconnects;
  m->redis_published = st.published;
  m->redis_received = st.received;
  m->redis_dropped = st.dropped;
  m->redis_malformed = st.malformed;
  m->redis_cluster_primaries = st.cluster ? st.cluster_primaries : 0;
  m->redis_cluster_refreshes = st.cluster_refreshes;
  m->redis_cluster_redirects = st.cluster_redirects;
  m->redis_sentinel = st.sentinel ? 1 : 0;
  m->redis_sentinel_switches = st.sentinel_switches;
  m->redis_streams = st.streams ? 1 : 0;
  m->redis_stream_entries = st.stream_entries;
  m->redis_queued = st.queued;
  m->redis_sessions_saved = st.sessions_saved;
  m->redis_sessions_restored = st.sessions_restored;
}

/* Before the loop waits: this worker's counters, for /metrics answered by another worker. */
void srv_workers_snap_tick(uv_prepare_t *h) {
  worker *w = h->data;
  w->app.metrics.webhook_dropped = srv_webhooks_dropped(w->webhooks);
  redis_snap(w);
  pthread_mutex_lock(&w->snap_mu);
  w->snap = w->app.metrics;
  pthread_mutex_unlock(&w->snap_mu);
}

/* The program's counters over every worker: this one's live, the others' as of their last wait. */
static void metrics_sum(worker *self, srv_metrics *out) {
  memset(out, 0, sizeof *out);
  program *p = self->p;
  self->app.metrics.webhook_dropped = srv_webhooks_dropped(self->webhooks);
  redis_snap(self);
  for (unsigned i = 0; i < p->nworkers; i++) {
    worker *w = &p->workers[i];
    if (w == self) {
      metrics_add(out, &w->app.metrics);
      continue;
    }
    pthread_mutex_lock(&w->snap_mu);
    srv_metrics m = w->snap;
    pthread_mutex_unlock(&w->snap_mu);
    metrics_add(out, &m);
  }
}

/* ---- the HTTP API over every worker ----
 * The worker that got the request checks it, then every worker runs it on its own sockets (an emit or a
 * disconnect with the local flag, a list of its own sockets or rooms) and answers on the requester's inbox,
 * which merges the answers and responds. Inboxes are a list under a mutex and a uv_async: API calls are
 * not a hot path. */

typedef struct gather {
  struct gather *next;
  worker *from;
  api_deferred *d;
  int call, keep_alive, status;
  unsigned pending;            /* workers yet to answer */
  json_t *acc;
  int metrics, head;           /* a /metrics GET (head: HEAD): counters, not an API call */
  wsio_stats st;               /* /metrics: the sums so far */
  srv_metrics m;
  char *query;                 /* read by every worker until the last answer: never changed */
  uint8_t *body;
  size_t query_len, body_len;
} gather;

typedef struct gmsg {
  struct gmsg *next;
  gather *g;
  int answer;                  /* 0: a part to run; 1: an answer (status, json; or st and m for /metrics) */
  int status;
  char *json;
  wsio_stats st;
  srv_metrics m;
} gmsg;

/* Returns 0 when `to` has stopped taking messages (its loop ended): m is then the caller's. */
static int inbox_push(worker *to, gmsg *m) {
  pthread_mutex_lock(&to->inbox_mu);
  int open = to->inbox_open;
  if (open) {
    if (to->inbox_tail) to->inbox_tail->next = m;
    else to->inbox_head = m;
    to->inbox_tail = m;
    uv_async_send(&to->inbox); /* under the mutex: the handle cannot close meanwhile */
  }
  pthread_mutex_unlock(&to->inbox_mu);
  return open;
}

static void gather_free(gather *g) {
  json_decref(g->acc);
  free(g->query);
  free(g->body);
  free(g);
}

/* wsio_stats is all counters: sums field by field. A per-address table shared by every worker reports the
 * same total through each: counted once. */
static void stats_add(wsio_stats *to, const wsio_stats *a) {
  uint64_t shared = a->ip_addresses;
  const uint64_t *src = (const uint64_t *)a;
  uint64_t *dst = (uint64_t *)to;
  for (size_t i = 0; i < sizeof *a / sizeof(uint64_t); i++) dst[i] += src[i];
  to->ip_addresses = shared;
}

static void gather_answered(worker *w, gather *g, const gmsg *m) {
  if (g->metrics) {
    stats_add(&g->st, &m->st);
    metrics_add(&g->m, &m->m);
  } else {
    json_t *res = m->json ? json_loads(m->json, 0, NULL) : NULL;
    srv_http_api_merge(g->call, &g->status, &g->acc, res ? m->status : 500,
                       res ? res : json_pack("{s:s}", "error", "no answer"));
  }
  if (--g->pending) return;
  for (gather **pp = &w->gathers; *pp; pp = &(*pp)->next)
    if (*pp == g) {
      *pp = g->next;
      break;
    }
  buf out = {0};
  if (g->metrics) {
    srv_metrics_respond(&g->st, &g->m, g->head, &out, g->keep_alive);
  } else {
    if (g->status >= 400) w->app.metrics.api_rejected++;
    srv_http_api_reply(&out, g->status, g->acc, g->keep_alive);
    g->acc = NULL;
  }
  api_deferred_respond(g->d, out.data, out.len, g->keep_alive);
  buf_free(&out);
  gather_free(g);
}

/* Runs what is in w's inbox: parts of other workers' requests, answers to w's own. */
void srv_workers_inbox(uv_async_t *a) {
  worker *w = a->data;
  pthread_mutex_lock(&w->inbox_mu);
  gmsg *m = w->inbox_head;
  w->inbox_head = w->inbox_tail = NULL;
  pthread_mutex_unlock(&w->inbox_mu);
  while (m) {
    gmsg *next = m->next;
    gather *g = m->g;
    if (m->answer) {
      gather_answered(w, g, m);
      free(m->json);
      free(m);
    } else if (g->metrics) {
      wsio_server_stats(w->app.server, &m->st);
      w->app.metrics.webhook_dropped = srv_webhooks_dropped(w->webhooks);
      m->m = w->app.metrics;
      m->answer = 1;
      m->next = NULL;
      if (!inbox_push(g->from, m)) free(m);
    } else {
      json_t *res = NULL;
      m->status = srv_http_api_run(w->app.io, g->call, g->query, g->query_len, g->body, g->body_len,
                                   w->p->nworkers > 1, &res);
      m->json = res ? json_dumps(res, JSON_COMPACT) : NULL;
      json_decref(res);
      m->answer = 1;
      m->next = NULL;
      if (!inbox_push(g->from, m)) { /* the requester has stopped: it answered 503 already */
        free(m->json);
        free(m);
      }
    }
    m = next;
  }
}

/* call -1: /metrics. */
static int gather_start(worker *w, wsio_server *s, const http_request *req, int call, int keep_alive) {
  program *p = w->p;
  gather *g = calloc(1, sizeof *g);
  gmsg **parts = calloc(p->nworkers, sizeof *parts);
  int ok = g && parts && (g->query = malloc(req->query_len + 1)) && (g->body = malloc(req->body_len + 1));
  for (unsigned i = 0; ok && i < p->nworkers; i++) ok = (parts[i] = calloc(1, sizeof **parts)) != NULL;
  if (ok) ok = (g->d = api_http_defer(s)) != NULL;
  if (!ok) {
    for (unsigned i = 0; parts && i < p->nworkers; i++) free(parts[i]);
    free(parts);
    if (g) gather_free(g);
    return 0;
  }
  memcpy(g->query, req->query, req->query_len);
  g->query[req->query_len] = 0;
  if (req->body_len) memcpy(g->body, req->body, req->body_len);
  g->query_len = req->query_len;
  g->body_len = req->body_len;
  g->from = w;
  g->call = call;
  g->metrics = call < 0;
  g->head = req->method == 2;
  g->keep_alive = keep_alive;
  g->pending = p->nworkers;
  g->next = w->gathers;
  w->gathers = g;
  /* A worker that has stopped answers nothing: the others' answers make the reply. */
  unsigned gone = 0;
  for (unsigned i = 0; i < p->nworkers; i++) {
    parts[i]->g = g;
    if (!inbox_push(&p->workers[i], parts[i])) {
      free(parts[i]);
      gone++;
    }
  }
  free(parts);
  g->pending -= gone; /* at least this worker is open: its own answer is still to come */
  return 1;
}

/* A worker's exit: its inbox is run one last time (its io still answers), and requests still gathering are
 * answered 503. */
void srv_workers_gather_exit(worker *w) {
  pthread_mutex_lock(&w->inbox_mu);
  w->inbox_open = 0;
  pthread_mutex_unlock(&w->inbox_mu);
  srv_workers_inbox(&w->inbox);
  while (w->gathers) {
    gather *g = w->gathers;
    w->gathers = g->next;
    api_deferred_respond(g->d, NULL, 0, 0);
    gather_free(g);
  }
}

int srv_workers_http_hook(wsio_server *s, const http_request *req, buf *out, int keep_alive, void *arg) {
  worker *p = arg;
  const server_config *c = p->app.cfg;
  int st;
  if (c->metrics.enabled && req->path_len == strlen(c->metrics.path) &&
      memcmp(req->path, c->metrics.path, req->path_len) == 0) {
    /* Several workers: each reports its counters as of now, and the answer goes once all have. */
    if (p->p->nworkers > 1 && (req->method == 1 || req->method == 2) && gather_start(p, s, req, -1, keep_alive))
      return API_HOOK_DEFERRED;
    srv_metrics all;
    metrics_sum(p, &all);
    if ((st = srv_metrics_handle(s, &all, c->metrics.path, req, out, keep_alive))) return st;
  }
  int call = -1;
  if ((st = srv_http_api_begin(c->api.key, req, out, keep_alive, &call)) != 0) {
    p->app.metrics.api_requests++;
    if (st == SRV_API_RUN) {
      if (gather_start(p, s, req, call, keep_alive)) return API_HOOK_DEFERRED;
      http_response_simple(out, 503, keep_alive);
      st = 503;
    }
    if (st >= 400) p->app.metrics.api_rejected++;
    return st;
  }
  return 0;
}
