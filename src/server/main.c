/* wsio — the standalone realtime server: Socket.IO, raw WebSocket endpoints, routes, the HTTP publish API,
 * JWT authentication, metrics. Configuration: src/server/config.h and docs/wsio.md. */
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "http/response.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/demo.h"
#include "server/http_api.h"
#include "server/http_client.h"
#include "server/metrics.h"
#include "server/page.h"
#include "server/proxy.h"
#include "server/routes.h"
#include "server/webhooks.h"
#include "util/log.h"
#include "wsio.h"

extern char **environ;

/* A configuration loaded by a reload. Every one is kept to exit: a worker may still read the one it
 * replaces, and what needs a restart (namespace patterns, endpoint paths) still points into the first. */
typedef struct reloaded {
  server_config cfg;           /* first: a worker finds its reloaded from the config it applies */
  struct reloaded *next;
  atomic_uint pending;         /* workers yet to apply it; the last one logs the report */
  unsigned restart;            /* changes that wait for a restart */
  char report[4096];           /* the diff, one change per line */
} reloaded;

/* Logs what a reload changed once every worker runs with it, so "applied live" is true when it is read. */
static void reload_report(reloaded *r) {
  char *save = NULL;
  for (char *line = strtok_r(r->report, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    log_info("reload: %s", line);
  if (r->restart) log_warn("reload: %u change(s) take effect after a restart", r->restart);
}

struct program;

/* One per worker ([server] workers): the program's state on that worker's loop and thread. */
typedef struct worker {
  srv_app app;                 /* app.cfg: the configuration this worker runs with */
  struct program *p;
  unsigned index;
  srv_proxy *proxy;            /* events no route takes go to the backend, when [proxy] is set */
  srv_webhooks *webhooks;
  uv_async_t reload;           /* a reload to apply (program.live changed) */
  uv_signal_t sighup;          /* worker 0 only: reloads are read once, then applied by every worker */
  uv_prepare_t snap_tick;      /* copies the metrics for /metrics answered by other workers */
  pthread_mutex_t snap_mu;
  srv_metrics snap;
  int handles;                 /* reload, sighup, snap_tick and inbox are initialised */
  /* The HTTP API across workers: parts to run here and answers to gather here (see gather_*). */
  uv_async_t inbox;
  pthread_mutex_t inbox_mu;
  int inbox_open;              /* under inbox_mu */
  struct gmsg *inbox_head, *inbox_tail;
  struct gather *gathers;      /* this worker's API requests awaiting other workers */
} worker;

typedef struct program {
  server_config cfg;           /* the start's configuration */
  _Atomic(const server_config *) live; /* the configuration in force: cfg or the latest reload */
  reloaded *reloads;           /* worker 0's thread only */
  worker *workers;
  unsigned nworkers;
  int exit_code;               /* a worker's setup failure: what main returns */
  int argc;
  char **argv;
  int demo;                    /* presence ("nick", "online"): the demo page or the built-in routes */
  const char *broadcast_path;
  wsio_limiter *limiter;       /* [limits] per client address, shared by every loop; reloads change it live */
} program;

static program prog;

static char *join_list(const server_config_list *l) {
  if (!l->n) return NULL;
  size_t need = 1;
  for (size_t i = 0; i < l->n; i++) need += strlen(l->v[i]) + 1;
  char *s = malloc(need);
  if (!s) return NULL;
  s[0] = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (i) strcat(s, ",");
    strcat(s, l->v[i]);
  }
  return s;
}

/* ---- raw WebSocket endpoints ---- */

static void echo_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_ws_send(ws, op, data, len, 0);
}

/* Encoded once, queued to every client of the endpoint; a client that can't keep up misses messages
 * rather than growing the server's memory. */
static void broadcast_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_msg *m = wsio_msg_new(op, data, len);
  if (!m) return;
  wsio_server_publish(wsio_ws_endpoint_user(ws), prog.broadcast_path, m, NULL, WSIO_SEND_DROPPABLE);
  wsio_msg_unref(m);
}

static int add_endpoints(wsio_server *s, const server_config *c) {
  /* The CORS list guards raw endpoints too (cross-site WebSocket hijacking), unless it is "*". */
  char *origins = c->cors.websocket_origin_check ? join_list(&c->cors.origins) : NULL;
  if (origins && strcmp(origins, "*") == 0) {
    free(origins);
    origins = NULL;
  }
  wsio_ws_config wc = {
      .origins = origins,
      .max_message_size = c->websocket.max_message_size,
      .send_buffer_limit = c->websocket.send_buffer_limit,
      .ping_interval_ms = c->websocket.ping_interval_ms,
      .deflate = (wsio_deflate_mode)c->websocket.deflate,
      .user = s,
      .messages_per_second = c->limits.messages_per_second,
      .message_burst = c->limits.message_burst,
      .message_rate_drop = c->limits.message_drop,
  };
  int rc = 0;
  if (c->websocket.echo_path) {
    wsio_ws_handlers echo = {.on_message = echo_message};
    rc = wsio_server_ws(s, c->websocket.echo_path, &echo, &wc);
  }
  if (rc == 0 && c->websocket.broadcast_path) {
    wsio_ws_handlers bcast = {.on_message = broadcast_message};
    prog.broadcast_path = c->websocket.broadcast_path;
    rc = wsio_server_ws(s, c->websocket.broadcast_path, &bcast, &wc);
  }
  free(origins);
  return rc;
}

/* ---- Socket.IO ---- */

static void on_disconnect(wsio_socket *s, const char *reason, void *ud) {
  worker *p = ud;
  srv_webhooks_disconnect(p->webhooks, s, reason);
  if (p->p->demo && wsio_socket_nsp(s) == wsio_io_sockets(p->app.io)) srv_demo_disconnect(&p->app, s);
  srv_socket_release(s);
}

static const char *claims_json(wsio_socket *s, void *ud) {
  (void)ud;
  return srv_auth_claims_json(s);
}

static void on_connection(wsio_socket *s, void *ud) {
  worker *p = ud;
  wsio_socket_on_disconnect(s, on_disconnect, p);
  srv_webhooks_connect(p->webhooks, s);
  if (p->p->demo && wsio_socket_nsp(s) == wsio_io_sockets(p->app.io)) srv_demo_connection(&p->app, s);
}

/* The socket.io-client bundle: the configured folder, else the copy that goes with this binary. Run from its
 * build folder, that is the source tree's (tests/node_modules); installed, the bundle installed beside it
 * (bin/../share/wsio/socket.io-client, so a relocated or staged tree serves its own), else the install
 * location configured at build time. The build sets these paths (packaging/install.cmake). */
static const char *find_client_dir(const server_config *c, char *out, size_t cap) {
  if (!c->socketio.serve_client) return NULL;
  if (c->socketio.client_dir) return c->socketio.client_dir;
  const char *dirs[3];
  size_t n = 0;
  char exe[PATH_MAX];
#ifdef WSIO_INSTALL_CLIENT_DIR_REL
  char beside[PATH_MAX];
#endif
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash = len > 0 ? (exe[len] = 0, strrchr(exe, '/')) : NULL;
  if (slash) {
    *slash = 0;
#if defined(WSIO_BUILD_DIR) && defined(WSIO_SOURCE_CLIENT_DIR)
    char build[PATH_MAX];
    if (realpath(WSIO_BUILD_DIR, build) && strcmp(build, exe) == 0) dirs[n++] = WSIO_SOURCE_CLIENT_DIR;
#endif
#ifdef WSIO_INSTALL_CLIENT_DIR_REL
    int w = snprintf(beside, sizeof beside, "%s/%s", exe, WSIO_INSTALL_CLIENT_DIR_REL);
    if (w > 0 && (size_t)w < sizeof beside) dirs[n++] = beside;
#endif
  }
#ifdef WSIO_INSTALL_CLIENT_DIR
  dirs[n++] = WSIO_INSTALL_CLIENT_DIR;
#endif
  for (size_t i = 0; i < n; i++) {
    int w = snprintf(out, cap, "%s/socket.io.js", dirs[i]);
    if (w > 0 && (size_t)w < cap && access(out, R_OK) == 0) {
      snprintf(out, cap, "%s", dirs[i]);
      return out;
    }
  }
  log_warn("socket.io.js not found: set [socketio] client_dir (pages must load the client from elsewhere)");
  return NULL;
}

static wsio_io *attach_io(wsio_server *s, const server_config *c) {
  char dir[PATH_MAX];
  char *origins = join_list(&c->cors.origins);
  wsio_io_config ic = {
      .path = c->socketio.path,
      .ping_interval_ms = c->socketio.ping_interval_ms,
      .ping_timeout_ms = c->socketio.ping_timeout_ms,
      .connect_timeout_ms = c->socketio.connect_timeout_ms,
      .ack_timeout_ms = c->socketio.ack_timeout_ms,
      .max_http_buffer_size = c->socketio.max_payload,
      .transports = c->socketio.transports,
      .cors_origin = origins,
      .cors_credentials = c->cors.credentials,
      .recovery_ms = c->socketio.recovery_ms,
      .client_dir = find_client_dir(c, dir, sizeof dir),
      .max_rooms_per_socket = c->limits.max_rooms_per_socket,
      .max_pending_acks = c->limits.max_pending_acks,
      .packets_per_second = c->limits.messages_per_second,
      .packet_burst = c->limits.message_burst,
      .packet_rate_drop = c->limits.message_drop,
      .ws_any_origin = !c->cors.websocket_origin_check,
  };
  wsio_io *io = wsio_io_new(s, &ic);
  free(origins);
  return io;
}

/* ---- HTTP: metrics, the publish API, the demo page ---- */

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
  to->route_events += m->route_events;
  to->redis_nodes += m->redis_nodes;
  to->redis_connected += m->redis_connected;
  to->redis_connects += m->redis_connects;
  to->redis_disconnects += m->redis_disconnects;
  to->redis_published += m->redis_published;
  to->redis_received += m->redis_received;
  to->redis_dropped += m->redis_dropped;
  to->redis_malformed += m->redis_malformed;
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
}

/* Before the loop waits: this worker's counters, for /metrics answered by another worker. */
static void on_snap_tick(uv_prepare_t *h) {
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
static void on_inbox(uv_async_t *a) {
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
static void gather_exit(worker *w) {
  pthread_mutex_lock(&w->inbox_mu);
  w->inbox_open = 0;
  pthread_mutex_unlock(&w->inbox_mu);
  on_inbox(&w->inbox);
  while (w->gathers) {
    gather *g = w->gathers;
    w->gathers = g->next;
    api_deferred_respond(g->d, NULL, 0, 0);
    gather_free(g);
  }
}

static int http_hook(wsio_server *s, const http_request *req, buf *out, int keep_alive, void *arg) {
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

/* ---- reload ---- */

static wsio_limiter_config limiter_config(const server_config *c) {
  return (wsio_limiter_config){.max_connections_per_ip = c->limits.max_connections_per_ip,
                               .handshakes_per_ip_per_second = c->limits.handshakes_per_ip_per_second,
                               .handshake_burst = c->limits.handshake_burst};
}

/* What each worker switches itself: its io's CORS and its JWT verifier. */
static void apply_live(worker *p, const server_config *c) {
  char *origins = join_list(&c->cors.origins);
  wsio_io_set_cors(p->app.io, origins, c->cors.credentials);
  free(origins);
  jwt_verifier *v = NULL;
  char err[512];
  if (srv_auth_new(c, &v, err, sizeof err) != 0) {
    log_error("reload: [auth] kept as it was: %s", err);
    v = p->app.jwt;
  } else {
    jwt_verifier_free(p->app.jwt);
  }
  p->app.jwt = v;
}

static void on_reload(uv_async_t *a) {
  worker *w = a->data;
  const server_config *c = atomic_load(&w->p->live);
  const server_config *old = w->app.cfg;
  if (c == old) return;
  w->app.cfg = c;
  apply_live(w, c);
  /* Every reload since the one this worker ran (a burst of SIGHUPs may be applied in one step) now runs
   * here. The chain below a published reload never changes. */
  for (reloaded *r = (reloaded *)c; r && &r->cfg != old; r = r->next)
    if (atomic_fetch_sub(&r->pending, 1) == 1) reload_report(r);
}

/* Worker 0 reads the configuration again; every worker then applies the live settings on its own thread. */
static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  worker *w = h->data;
  program *p = w->p;
  reloaded *r = calloc(1, sizeof *r);
  char err[1024];
  if (!r || server_config_load(&r->cfg, p->argc, p->argv, environ, err, sizeof err) != 0) {
    log_error("reload failed, configuration unchanged: %s", r ? err : "out of memory");
    free(r);
    return;
  }
  server_config_changes ch;
  int n = server_config_diff(atomic_load(&p->live), &r->cfg, r->report, sizeof r->report, &ch);
  if (n == 0) {
    log_info("reload: no changes");
    server_config_free(&r->cfg);
    free(r);
    return;
  }
  r->restart = ch.restart;
  atomic_init(&r->pending, p->nworkers);
  /* Live settings switch over now; the rest keep their running values until a restart. The process's own
   * (limits, log) switch here, once. */
  r->next = p->reloads;
  p->reloads = r;
  const server_config *c = &r->cfg;
  wsio_limiter_config lc = limiter_config(c);
  wsio_limiter_set(p->limiter, &lc);
  log_level = c->log.level;
  log_json = c->log.format == SERVER_LOG_JSON;
  atomic_store(&p->live, c);
  for (unsigned i = 0; i < p->nworkers; i++) uv_async_send(&p->workers[i].reload);
}

/* ---- workers ---- */

/* Runs on worker w's thread once its loop has returned: the last disconnect webhooks go out (each request
 * bounded by its timeout), proxy requests whose clients are gone are dropped, everything is freed. */
static void worker_exit(wsio_server *s, unsigned index, void *ud) {
  (void)s;
  (void)index;
  worker *w = ud;
  if (w->handles) {
    gather_exit(w);
    uv_close((uv_handle_t *)&w->inbox, NULL);
    uv_close((uv_handle_t *)&w->reload, NULL);
    uv_close((uv_handle_t *)&w->snap_tick, NULL);
    if (w->index == 0) uv_close((uv_handle_t *)&w->sighup, NULL);
  }
  srv_proxy_free(w->proxy);
  srv_webhooks_finish(w->webhooks);
  srv_http_drain(w->app.http);
  srv_webhooks_free(w->webhooks);
  srv_http_free(w->app.http);
  jwt_verifier_free(w->app.jwt);
}

/* A setup failure: the message once (from the first worker that fails) and main's exit code. */
static int setup_failed(program *p, int code, int rc, const char *fmt, const char *detail) {
  if (!p->exit_code) {
    fprintf(stderr, fmt, detail);
    p->exit_code = code;
  }
  return rc < 0 ? rc : WSIO_EINVAL;
}

/* Builds worker `index`: the whole program on that worker's server. */
static int setup_worker(wsio_server *s, unsigned index, void *ud) {
  program *p = ud;
  worker *w = &p->workers[index];
  const server_config *c = &p->cfg;
  char err[1024];
  int rc;
  wsio_worker_on_exit(s, worker_exit, w);
  w->app.server = s;
  w->app.cfg = c;
  w->app.claim_rooms = srv_auth_claim_rooms;
  if ((rc = add_endpoints(s, c)) != 0) return setup_failed(p, 2, rc, "wsio: WebSocket endpoint: %s\n", wsio_strerror(rc));
  if (!(w->app.io = attach_io(s, c))) return setup_failed(p, 1, WSIO_ENOMEM, "wsio: could not start Socket.IO%s\n", "");
  /* [redis]: each worker is a node of the Redis cluster (its io then takes no in-process adapter). */
  if (c->redis.url && *c->redis.url) {
    wsio_redis_config rc_ = {.url = c->redis.url, .key = c->redis.key, .sharded = c->redis.sharded,
                             .subscription_mode = (wsio_redis_mode)c->redis.subscription_mode,
                             .degraded_start = c->redis.degraded_start};
    if ((rc = wsio_io_redis(w->app.io, &rc_)) != 0)
      return setup_failed(p, 1, rc, "wsio: [redis]: %s (see the log line above)\n", wsio_strerror(rc));
  }
  if (srv_auth_new(c, &w->app.jwt, err, sizeof err) != 0) return setup_failed(p, 2, WSIO_EINVAL, "wsio: [auth]: %s\n", err);
  /* Every namespace authenticates through the same middleware, which does nothing when auth is off. */
  if ((rc = srv_routes_attach(&w->app, on_connection, w, srv_auth_middleware)) != 0)
    return setup_failed(p, 1, rc, "wsio: routes: %s\n", wsio_strerror(rc));
  /* Outgoing HTTP (event proxy, webhooks) on the same loop; both read app->cfg at each use. */
  w->app.claims_json = claims_json;
  if (!(w->app.http = srv_http_new(wsio_server_loop(s))) || !(w->proxy = srv_proxy_new(&w->app)) ||
      !(w->webhooks = srv_webhooks_new(&w->app)))
    return setup_failed(p, 1, WSIO_ENOMEM, "wsio: could not start the HTTP client (libcurl)%s\n", "");
  w->app.unrouted = srv_proxy_on_event;
  w->app.unrouted_ud = w->proxy;
  api_server_set_hook(s, http_hook, w);
  /* Presence comes with the built-in routes too: a front end of one's own served by --web-root without a
   * file (examples/vue-chat) speaks the same events as the demo page. */
  if (!c->server.web_root) {
    wsio_server_set_page(s, "/", "text/html; charset=utf-8", srv_demo_html, strlen(srv_demo_html));
    wsio_server_set_page(s, "/echo.html", "text/html; charset=utf-8", server_page_html, strlen(server_page_html));
  }
  uv_loop_t *loop = wsio_server_loop(s);
  uv_async_init(loop, &w->reload, on_reload);
  w->reload.data = w;
  uv_unref((uv_handle_t *)&w->reload);
  uv_async_init(loop, &w->inbox, on_inbox);
  w->inbox.data = w;
  pthread_mutex_lock(&w->inbox_mu);
  w->inbox_open = 1;
  pthread_mutex_unlock(&w->inbox_mu);
  uv_unref((uv_handle_t *)&w->inbox);
  uv_prepare_init(loop, &w->snap_tick);
  w->snap_tick.data = w;
  uv_prepare_start(&w->snap_tick, on_snap_tick);
  uv_unref((uv_handle_t *)&w->snap_tick);
  if (index == 0) {
    uv_signal_init(loop, &w->sighup);
    w->sighup.data = w;
    uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    uv_unref((uv_handle_t *)&w->sighup);
  }
  w->handles = 1;
  if ((rc = wsio_server_listen(s, c->server.host, (int)c->server.port)) != 0) {
    char where[300];
    snprintf(where, sizeof where, "%s:%u: %s", c->server.host, c->server.port, wsio_strerror(rc));
    return setup_failed(p, 1, rc, "wsio: cannot listen on %s\n", where);
  }
  return 0;
}

/* ---- main ---- */

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  program *p = &prog;
  char err[1024];
  int rc = server_config_load(&p->cfg, argc, argv, environ, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "wsio: %s\n", err);
    if (rc == WSIO_EINVAL) fprintf(stderr, "Try 'wsio --help'.\n");
    return rc == WSIO_EINVAL ? 2 : 1;
  }
  if (p->cfg.action & SERVER_CONFIG_HELP) {
    server_config_usage(stdout);
    return 0;
  }
  if (p->cfg.action & SERVER_CONFIG_VERSION) {
    printf("wsio %s\n", wsio_version());
    return 0;
  }
  if (p->cfg.action & SERVER_CONFIG_CHECK) {
    /* The keys are read as a start would read them: a short secret or an unusable key file fails here too. */
    jwt_verifier *v = NULL;
    if (srv_auth_new(&p->cfg, &v, err, sizeof err) != 0) {
      fprintf(stderr, "wsio: [auth]: %s\n", err);
      server_config_free(&p->cfg);
      return 2;
    }
    jwt_verifier_free(v);
    printf("# configuration OK%s%s\n", p->cfg.file ? ": " : " (built-in defaults)", p->cfg.file ? p->cfg.file : "");
    server_config_dump(&p->cfg, stdout, 0);
    server_config_free(&p->cfg);
    return 0;
  }
  p->argc = argc;
  p->argv = argv;
  log_level = p->cfg.log.level;
  log_json = p->cfg.log.format == SERVER_LOG_JSON;
  raise_fd_limit();

  const server_config *c = &p->cfg;
  wsio_server_config sc = {
      .web_root = c->server.web_root,
      .tls_cert = c->tls.cert,
      .tls_key = c->tls.key,
      .max_connections = c->server.max_connections,
      .log_level = c->log.level + 1,
      /* A long-polling POST carries up to max_payload bytes. */
      .max_body_bytes = c->socketio.max_payload > (1u << 20) ? c->socketio.max_payload : 0,
  };
  wsio_limiter_config lc = limiter_config(c);
  if (!(p->limiter = sc.limiter = wsio_limiter_new(&lc))) {
    fprintf(stderr, "wsio: out of memory\n");
    return 1;
  }
  p->demo = !c->server.web_root || !c->file;
  p->nworkers = c->server.workers ? c->server.workers : 1;
  atomic_init(&p->live, c);
  if (!(p->workers = calloc(p->nworkers, sizeof *p->workers))) {
    fprintf(stderr, "wsio: out of memory\n");
    wsio_limiter_free(p->limiter);
    return 1;
  }
  for (unsigned i = 0; i < p->nworkers; i++) {
    p->workers[i].p = p;
    p->workers[i].index = i;
    pthread_mutex_init(&p->workers[i].snap_mu, NULL);
    pthread_mutex_init(&p->workers[i].inbox_mu, NULL);
  }
  /* libcurl's global state, once, before any worker makes a handle. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = wsio_workers_run(p->nworkers, &sc, 1, setup_worker, p);
  if (rc != 0 && !p->exit_code) fprintf(stderr, "wsio: could not start (see the errors above)\n");
  for (unsigned i = 0; i < p->nworkers; i++) {
    pthread_mutex_destroy(&p->workers[i].snap_mu);
    pthread_mutex_destroy(&p->workers[i].inbox_mu);
  }
  free(p->workers);
  curl_global_cleanup();
  wsio_limiter_free(p->limiter);
  for (reloaded *r = p->reloads, *next; r; r = next) {
    next = r->next;
    server_config_free(&r->cfg);
    free(r);
  }
  server_config_free(&p->cfg);
  if (rc != 0) return p->exit_code ? p->exit_code : 1;
  log_info("stopped");
  return 0;
}
