/* wsio — the standalone realtime server: Socket.IO, raw WebSocket endpoints, routes, the HTTP publish API,
 * JWT authentication, metrics. Configuration: src/server/config.h and docs/wsio.md. */
#include <limits.h>
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

typedef struct program {
  srv_app app;
  server_config cfg;           /* the configuration in force */
  server_config pending_free;  /* a replaced configuration, freed at the next reload or exit */
  server_config boot;          /* the start's configuration once replaced, kept to exit: what needs a restart
                                * (namespace patterns, endpoint paths) still points into it */
  int argc;
  char **argv;
  int demo;                    /* presence ("nick", "online"): the demo page or the built-in routes */
  uv_signal_t sighup;
  srv_proxy *proxy;            /* events no route takes go to the backend, when [proxy] is set */
  srv_webhooks *webhooks;
  const char *broadcast_path;
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
  char *origins = join_list(&c->cors.origins);
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
  program *p = ud;
  srv_webhooks_disconnect(p->webhooks, s, reason);
  if (p->demo && wsio_socket_nsp(s) == wsio_io_sockets(p->app.io)) srv_demo_disconnect(&p->app, s);
  srv_socket_release(s);
}

static const char *claims_json(wsio_socket *s, void *ud) {
  (void)ud;
  return srv_auth_claims_json(s);
}

static void on_connection(wsio_socket *s, void *ud) {
  program *p = ud;
  wsio_socket_on_disconnect(s, on_disconnect, p);
  srv_webhooks_connect(p->webhooks, s);
  if (p->demo && wsio_socket_nsp(s) == wsio_io_sockets(p->app.io)) srv_demo_connection(&p->app, s);
}

/* The socket.io-client bundle: the configured folder, else where an install or the source tree keeps it. */
static const char *find_client_dir(const server_config *c, char *out, size_t cap) {
  if (!c->socketio.serve_client) return NULL;
  if (c->socketio.client_dir) return c->socketio.client_dir;
  char exe[PATH_MAX / 2];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  const char *tails[] = {"/../share/wsio/client", "/../tests/node_modules/socket.io-client/dist",
                         "/../../tests/node_modules/socket.io-client/dist"};
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
      int w = snprintf(out, cap, "%s%s/socket.io.js", exe, tails[i]);
      if (w > 0 && (size_t)w < cap && access(out, R_OK) == 0) {
        out[strlen(out) - strlen("/socket.io.js")] = 0;
        return out;
      }
    }
  }
  const char *fixed[] = {"/usr/share/wsio/client", "/usr/local/share/wsio/client",
#ifdef WSIO_SOURCE_CLIENT_DIR
                         WSIO_SOURCE_CLIENT_DIR, /* a build run from anywhere, beside its source tree */
#endif
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    snprintf(out, cap, "%s/socket.io.js", fixed[i]);
    if (access(out, R_OK) == 0) {
      snprintf(out, cap, "%s", fixed[i]);
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
  };
  wsio_io *io = wsio_io_new(s, &ic);
  free(origins);
  return io;
}

/* ---- HTTP: metrics, the publish API, the demo page ---- */

static int http_hook(wsio_server *s, const http_request *req, buf *out, int keep_alive, void *arg) {
  program *p = arg;
  const server_config *c = p->app.cfg;
  int st;
  p->app.metrics.webhook_dropped = srv_webhooks_dropped(p->webhooks);
  if (c->metrics.enabled && (st = srv_metrics_handle(s, &p->app.metrics, c->metrics.path, req, out, keep_alive)))
    return st;
  if ((st = srv_http_api(p->app.io, c->api.key, req, out, keep_alive)) != 0) {
    p->app.metrics.api_requests++;
    if (st >= 400) p->app.metrics.api_rejected++;
    return st;
  }
  return 0;
}

/* ---- reload ---- */

static void apply_live(program *p, const server_config *c) {
  log_level = c->log.level;
  log_json = c->log.format == SERVER_LOG_JSON;
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

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  program *p = h->data;
  server_config next;
  char err[1024];
  if (server_config_load(&next, p->argc, p->argv, environ, err, sizeof err) != 0) {
    log_error("reload failed, configuration unchanged: %s", err);
    return;
  }
  char diff[4096];
  server_config_changes ch;
  int n = server_config_diff(&p->cfg, &next, diff, sizeof diff, &ch);
  if (n == 0) {
    log_info("reload: no changes");
    server_config_free(&next);
    return;
  }
  for (char *line = strtok(diff, "\n"); line; line = strtok(NULL, "\n")) log_info("reload: %s", line);
  /* Live settings switch over now; the rest keep their running values until a restart. */
  if (!p->boot.origin) {
    p->boot = p->cfg;
  } else {
    server_config_free(&p->pending_free);
    p->pending_free = p->cfg;
  }
  p->cfg = next;
  p->app.cfg = &p->cfg;
  apply_live(p, &p->cfg);
  if (ch.restart) log_warn("reload: %u change(s) take effect after a restart", ch.restart);
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
  wsio_server *s = wsio_server_new(&sc);
  if (!s) {
    fprintf(stderr, "wsio: could not start (see the errors above)\n");
    return 1;
  }
  p->app.server = s;
  p->app.cfg = c;
  p->app.claim_rooms = srv_auth_claim_rooms;
  if ((rc = add_endpoints(s, c)) != 0) {
    fprintf(stderr, "wsio: WebSocket endpoint: %s\n", wsio_strerror(rc));
    wsio_server_free(s);
    return 2;
  }
  if (!(p->app.io = attach_io(s, c))) {
    fprintf(stderr, "wsio: could not start Socket.IO\n");
    wsio_server_free(s);
    return 1;
  }
  if (srv_auth_new(c, &p->app.jwt, err, sizeof err) != 0) {
    fprintf(stderr, "wsio: [auth]: %s\n", err);
    wsio_server_free(s);
    return 2;
  }
  /* Every namespace authenticates through the same middleware, which does nothing when auth is off. */
  if ((rc = srv_routes_attach(&p->app, on_connection, p, srv_auth_middleware)) != 0) {
    wsio_server_free(s);
    return 1;
  }
  /* Outgoing HTTP (event proxy, webhooks) on the same loop; both read app->cfg at each use. */
  p->app.claims_json = claims_json;
  if (!(p->app.http = srv_http_new(wsio_server_loop(s))) || !(p->proxy = srv_proxy_new(&p->app)) ||
      !(p->webhooks = srv_webhooks_new(&p->app))) {
    fprintf(stderr, "wsio: could not start the HTTP client (libcurl)\n");
    srv_proxy_free(p->proxy);
    srv_http_free(p->app.http);
    wsio_server_free(s);
    return 1;
  }
  p->app.unrouted = srv_proxy_on_event;
  p->app.unrouted_ud = p->proxy;
  api_server_set_hook(s, http_hook, p);
  /* Presence comes with the built-in routes too: a front end of one's own served by --web-root without a
   * file (examples/vue-chat) speaks the same events as the demo page. */
  p->demo = !c->server.web_root || !c->file;
  if (!c->server.web_root) {
    wsio_server_set_page(s, "/", "text/html; charset=utf-8", srv_demo_html, strlen(srv_demo_html));
    wsio_server_set_page(s, "/echo.html", "text/html; charset=utf-8", server_page_html, strlen(server_page_html));
  }
  uv_signal_init(wsio_server_loop(s), &p->sighup);
  p->sighup.data = p;
  uv_signal_start(&p->sighup, on_sighup, SIGHUP);
  uv_unref((uv_handle_t *)&p->sighup);

  wsio_server_handle_signals(s);
  if ((rc = wsio_server_listen(s, c->server.host, (int)c->server.port)) != 0) {
    fprintf(stderr, "wsio: cannot listen on %s:%u: %s\n", c->server.host, c->server.port, wsio_strerror(rc));
    wsio_server_free(s);
    return 1;
  }
  wsio_server_run(s, 1);
  uv_close((uv_handle_t *)&p->sighup, NULL);
  /* Proxy requests whose clients are gone are dropped; the last disconnect webhooks go out before the loop
   * ends (each request bounded by its timeout). */
  srv_proxy_free(p->proxy);
  srv_webhooks_finish(p->webhooks);
  srv_http_drain(p->app.http);
  srv_webhooks_free(p->webhooks);
  srv_http_free(p->app.http);
  wsio_server_free(s);
  jwt_verifier_free(p->app.jwt);
  server_config_free(&p->pending_free);
  server_config_free(&p->boot);
  server_config_free(&p->cfg);
  log_info("stopped");
  return 0;
}
