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
#include "server/app.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/demo.h"
#include "server/http_client.h"
#include "server/metrics.h"
#include "server/page.h"
#include "server/program.h"
#include "server/proxy.h"
#include "server/routes.h"
#include "server/webhooks.h"
#include "util/log.h"
#include "wsio.h"

extern char **environ;

/* Logs what a reload changed once every worker runs with it, so "applied live" is true when it is read. */
static void reload_report(reloaded *r) {
  char *save = NULL;
  for (char *line = strtok_r(r->report, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    log_info("reload: %s", line);
  if (r->restart) log_warn("reload: %u change(s) take effect after a restart", r->restart);
}

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

/* The CORS list guards raw endpoints too (cross-site WebSocket hijacking), unless it is "*" or the check is
 * off: *out is then NULL (any origin). Returns 0 or WSIO_ENOMEM. */
static int ws_origins(const server_config *c, int check, char **out) {
  *out = NULL;
  if (!check || !c->cors.origins.n) return 0;
  char *origins = join_list(&c->cors.origins);
  if (!origins) return WSIO_ENOMEM;
  if (strcmp(origins, "*") == 0) free(origins);
  else *out = origins;
  return 0;
}

static int add_endpoints(wsio_server *s, const server_config *c) {
  char *origins;
  if (ws_origins(c, c->cors.websocket_origin_check, &origins)) return WSIO_ENOMEM;
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

/* Engine.IO error answers, counted by code; each logged at debug (a client-driven event, so never louder). */
static void on_connection_error(const wsio_request *r, int code, const char *message, void *ud) {
  srv_app *app = ud;
  if (code >= 0 && (size_t)code < sizeof app->metrics.eio_errors / sizeof app->metrics.eio_errors[0])
    app->metrics.eio_errors[code]++;
  log_debug("socket.io: %s answered %s (code %d)", wsio_request_handshake(r)->address, message, code);
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
      .send_buffer_limit = c->socketio.send_buffer_limit,
  };
  wsio_io *io = wsio_io_new(s, &ic);
  free(origins);
  if (io) {
    wsio_io_set_parser(io, (wsio_parser)c->socketio.parser); /* no client yet: cannot fail */
    wsio_io_set_http_compression(io, c->socketio.http_compression);
    wsio_io_set_allow_eio3(io, c->socketio.allow_eio3);
    wsio_io_set_max_dynamic_namespaces(io, c->limits.max_dynamic_namespaces);
  }
  return io;
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
  /* The raw endpoints follow [cors] origins too; whether they check at all (websocket_origin_check) and
   * which paths they have stay as started. */
  const server_config *start = &p->p->cfg;
  char *ws;
  if (ws_origins(c, start->cors.websocket_origin_check, &ws)) {
    log_error("reload: [cors] origins: out of memory, the raw WebSocket endpoints keep their origin list");
  } else if (start->cors.websocket_origin_check) {
    const char *paths[] = {start->websocket.echo_path, start->websocket.broadcast_path};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
      if (paths[i] && wsio_server_ws_set_origins(p->app.server, paths[i], ws) == WSIO_ENOMEM)
        log_error("reload: [cors] origins: out of memory, %s keeps its origin list", paths[i]);
  }
  free(ws);
  /* Checked when the file was read: only memory can fail here. */
  char *trusted = join_list(&c->server.trusted_proxies);
  if ((c->server.trusted_proxies.n && !trusted) || wsio_server_set_trusted_proxies(p->app.server, trusted) != 0)
    log_error("reload: [server] trusted_proxies: out of memory, worker %u keeps the list in use", p->index);
  free(trusted);
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

/* The TLS files read again, for connections accepted from now on. 0, or WSIO_ETLS (logged). */
static int tls_reload(worker *w, const server_config *c) {
  int rc = wsio_server_reload_tls(w->app.server, c->tls.cert, c->tls.key);
  if (rc) log_error("reload: [tls] %s or %s could not be loaded (see above): new connections of worker %u keep the "
                    "certificate in use", c->tls.cert, c->tls.key, w->index);
  return rc;
}

static void on_reload(uv_async_t *a) {
  worker *w = a->data;
  const server_config *c = atomic_load(&w->p->live);
  const server_config *old = w->app.cfg;
  unsigned gen = atomic_load(&w->p->tls_gen);
  if (gen != w->tls_gen) {
    w->tls_gen = gen;
    tls_reload(w, c);
  }
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
  /* A renewed certificate usually keeps its file names: with TLS on from the start and still set, the
   * files are read again at every reload. Worker 0 first: only when it could load them do the others. */
  const char *cert = r->cfg.tls.cert;
  int tls = p->cfg.tls.cert && cert; /* cert and key are both set or both NULL */
  int tls_ok = tls && tls_reload(w, &r->cfg) == 0;
  if (tls_ok) log_info("reload: [tls] certificate and key loaded again from %s: new connections use them", cert);
  if (n == 0) {
    log_info("reload: no changes");
    server_config_free(&r->cfg);
    free(r);
    if (!tls_ok) return;
    w->tls_gen = atomic_fetch_add(&p->tls_gen, 1) + 1;
    for (unsigned i = 1; i < p->nworkers; i++) uv_async_send(&p->workers[i].reload);
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
  /* After the store: a worker that sees the new generation also sees the paths it was loaded from. */
  if (tls_ok) w->tls_gen = atomic_fetch_add(&p->tls_gen, 1) + 1;
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
    srv_workers_gather_exit(w);
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
  wsio_io_on_connection_error(w->app.io, on_connection_error, &w->app);
  /* [redis]: each worker is a node of the Redis cluster (its io then takes no in-process adapter). */
  if (c->redis.url && *c->redis.url) {
    int streams = c->redis.mode == SERVER_REDIS_STREAMS;
    wsio_redis_config rc_ = {.url = c->redis.url, .key = c->redis.key,
                             .sharded = c->redis.mode == SERVER_REDIS_SHARDED || c->redis.sharded,
                             .subscription_mode = (wsio_redis_mode)c->redis.subscription_mode,
                             .degraded_start = c->redis.degraded_start,
                             .tls_ca_file = c->redis.tls_ca, .tls_cert_file = c->redis.tls_cert,
                             .tls_key_file = c->redis.tls_key, .tls_server_name = c->redis.tls_server_name,
                             .tls_insecure = c->redis.tls_insecure, .sentinel_user = c->redis.sentinel_user,
                             .sentinel_password = c->redis.sentinel_password, .streams = streams,
                             .stream_name = c->redis.stream_name, .stream_count = c->redis.stream_count,
                             .max_len = c->redis.max_len, .read_count = c->redis.read_count,
                             .block_ms = c->redis.block_ms,
                             .session_key_prefix = c->redis.session_key_prefix ? c->redis.session_key_prefix : ""};
    if ((rc = wsio_io_redis(w->app.io, &rc_)) != 0)
      return setup_failed(p, 1, rc, "wsio: [redis]: %s (see the log line above)\n", wsio_strerror(rc));
  }
  /* [admin]: the Admin UI's namespace, on every worker: each reports as a server of its own. */
  if (c->admin.enabled) {
    wsio_admin_config ac = {.nsp = c->admin.nsp, .username = c->admin.username,
                            .password_hash = c->admin.password_hash, .readonly = c->admin.readonly,
                            .mode = (wsio_admin_mode)c->admin.mode, .server_id = c->admin.server_id};
    if ((rc = wsio_io_instrument(w->app.io, &ac)) != 0)
      return setup_failed(p, 2, rc, "wsio: [admin]: %s (see the log line above)\n", wsio_strerror(rc));
    if (index == 0) log_info("admin UI: namespace %s%s", c->admin.nsp, c->admin.readonly ? " (read-only)" : "");
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
  api_server_set_hook(s, srv_workers_http_hook, w);
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
  uv_async_init(loop, &w->inbox, srv_workers_inbox);
  w->inbox.data = w;
  pthread_mutex_lock(&w->inbox_mu);
  w->inbox_open = 1;
  pthread_mutex_unlock(&w->inbox_mu);
  uv_unref((uv_handle_t *)&w->inbox);
  uv_prepare_init(loop, &w->snap_tick);
  w->snap_tick.data = w;
  uv_prepare_start(&w->snap_tick, srv_workers_snap_tick);
  uv_unref((uv_handle_t *)&w->snap_tick);
  if (index == 0) {
    uv_signal_init(loop, &w->sighup);
    w->sighup.data = w;
    uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    uv_unref((uv_handle_t *)&w->sighup);
  }
  w->handles = 1;
  if (index == 0 && c->server.trusted_proxies.n) {
    char *list = join_list(&c->server.trusted_proxies);
    log_info("trusted proxies: %s (their X-Forwarded-For names the client)", list ? list : "");
    free(list);
  }
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
  char *trusted = join_list(&c->server.trusted_proxies);
  sc.trusted_proxies = trusted;
  if (!(p->limiter = sc.limiter = wsio_limiter_new(&lc)) || (c->server.trusted_proxies.n && !trusted)) {
    fprintf(stderr, "wsio: out of memory\n");
    wsio_limiter_free(p->limiter);
    free(trusted);
    return 1;
  }
  p->demo = !c->server.web_root || !c->file;
  p->nworkers = c->server.workers ? c->server.workers : 1;
  atomic_init(&p->live, c);
  if (!(p->workers = calloc(p->nworkers, sizeof *p->workers))) {
    fprintf(stderr, "wsio: out of memory\n");
    wsio_limiter_free(p->limiter);
    free(trusted);
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
  free(trusted);
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
