/* wsio_server: configuration, listeners, the run loop, graceful stop, statistics. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/log.h"

#define DEFAULT_MAX_CONNECTIONS 100000u
#define DEFAULT_HANDSHAKE_MS 10000u
#define DEFAULT_IDLE_MS 120000u
#define DEFAULT_MAX_HEADER 16384u
#define DEFAULT_MAX_URL 8192u
#define DEFAULT_MAX_BODY (1u << 20)
#define STOP_POLL_MS 50

static void on_stop_async(uv_async_t *a);

static void close_handles(wsio_server *s) {
  if (!uv_is_closing((uv_handle_t *)&s->stop_timer)) uv_close((uv_handle_t *)&s->stop_timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->stop_async)) uv_close((uv_handle_t *)&s->stop_async, NULL);
  if (s->signals_on) {
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    s->signals_on = 0;
  }
  net_loop_close(&s->net);
}

wsio_server *wsio_server_new(const wsio_server_config *config) {
  wsio_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (config) s->cfg = *config;
  if (!s->cfg.max_connections) s->cfg.max_connections = DEFAULT_MAX_CONNECTIONS;
  if (!s->cfg.handshake_timeout_ms) s->cfg.handshake_timeout_ms = DEFAULT_HANDSHAKE_MS;
  if (!s->cfg.idle_timeout_ms) s->cfg.idle_timeout_ms = DEFAULT_IDLE_MS;
  if (!s->cfg.max_header_bytes) s->cfg.max_header_bytes = DEFAULT_MAX_HEADER;
  if (!s->cfg.max_body_bytes) s->cfg.max_body_bytes = DEFAULT_MAX_BODY;
  if (config && config->log_level > 0) log_level = config->log_level - 1;
  s->hlimits.max_url = DEFAULT_MAX_URL;
  s->hlimits.max_head = s->cfg.max_header_bytes;
  s->hlimits.max_body = s->cfg.max_body_bytes;
  if (s->cfg.web_root && !(s->web_root = strdup(s->cfg.web_root))) goto fail;
  s->cfg.web_root = s->web_root;
  s->cfg.tls_cert = s->cfg.tls_key = NULL; /* not kept: loaded once below */
  if (uv_loop_init(&s->uv) != 0) goto fail;
  if (net_loop_init(&s->net, &s->uv) != 0) {
    uv_loop_close(&s->uv);
    goto fail;
  }
  s->net.data = s;
  uv_timer_init(&s->uv, &s->stop_timer);
  s->stop_timer.data = s;
  uv_async_init(&s->uv, &s->stop_async, on_stop_async);
  s->stop_async.data = s;
  /* Neither keeps the loop alive: listeners and connections do. */
  uv_unref((uv_handle_t *)&s->stop_timer);
  uv_unref((uv_handle_t *)&s->stop_async);
  s->net.max_connections = s->cfg.max_connections;
  if (api_limits_attach(s) != 0) goto fail_loop;
  api_http_configure(s);
  if (!(s->deflate = ws_deflate_shared_new())) goto fail_loop;
  if (config && config->tls_cert && config->tls_key) {
    if (!(s->tls = net_tls_ctx_new(config->tls_cert, config->tls_key))) goto fail_loop;
    s->net.tls = s->tls;
  }
  return s;
fail_loop:
  close_handles(s);
  uv_run(&s->uv, UV_RUN_DEFAULT);
  net_loop_free(&s->net);
  api_limits_detach(s);
  uv_loop_close(&s->uv);
  ws_deflate_shared_free(s->deflate);
fail:
  free(s->web_root);
  free(s);
  return NULL;
}

void api_server_set_hook(wsio_server *s, api_http_hook hook, void *arg) {
  s->hook = hook;
  s->hook_arg = arg;
}

int wsio_server_reload_tls(wsio_server *s, const char *cert_file, const char *key_file) {
  if (!s || !s->tls || !cert_file || !key_file) return WSIO_EINVAL;
  return net_tls_ctx_reload(s->tls, cert_file, key_file);
}

int wsio_server_listen(wsio_server *s, const char *host, int port) {
  if (!s || !host || port < 0 || port > 65535) return WSIO_EINVAL;
  if (port == 0 && s->group) port = api_group_port(s, s->net.nlisteners); /* worker 0's port, shared */
  int rc = net_listen(&s->net, host, port);
  if (rc == 0) log_info("listening on %s:%d%s", host, net_listener_port(&s->net, s->net.nlisteners - 1),
                        s->tls ? " (TLS)" : "");
  return rc;
}

void *wsio_server_loop(wsio_server *s) { return &s->uv; }

int wsio_server_port(const wsio_server *s) { return net_listener_port(&s->net, 0); }


static void on_stop_poll(uv_timer_t *t) {
  wsio_server *s = t->data;
  if (s->net.stats.connections == 0) {
    uv_timer_stop(&s->stop_timer);
    close_handles(s);
    return;
  }
  if (uv_now(&s->uv) >= s->stop_deadline) {
    log_info("stop: closing %llu connections that did not finish in time",
             (unsigned long long)s->net.stats.connections);
    for (net_conn *c = s->net.conns; c; c = c->next) net_conn_close(c);
  }
}

static void begin_stop(wsio_server *s) {
  if (s->stopping) return;
  s->stopping = 1;
  s->http.stopping = 1;
  log_info("stopping: closing %llu connections", (unsigned long long)s->net.stats.connections);
  net_stop_listening(&s->net);
  if (s->io) sio_io_shutdown(s->io);
  api_engine_shutdown_all(s);
  api_ws_shutdown_all(s);
  /* Connections that are not WebSockets finish their current response and close; idle keep-alive ones
   * (nothing queued, between requests) close at once rather than waiting for the client to hang up. */
  for (net_conn *c = s->net.conns, *next; c; c = next) {
    next = c->next;
    if (c->proto != &http_conn_proto || (c->ud && http_conn_held(c->ud))) continue;
    if (net_conn_buffered(c) == 0 && (!c->ud || http_conn_idle(c->ud))) net_conn_close(c);
    else net_conn_end(c);
  }
  s->stop_deadline = uv_now(&s->uv) + s->stop_timeout_ms;
  uv_timer_start(&s->stop_timer, on_stop_poll, 0, STOP_POLL_MS);
}

static void on_stop_async(uv_async_t *a) { begin_stop(a->data); }

static void on_signal(uv_signal_t *h, int signum) {
  wsio_server *s = h->data;
  if (s->stopping) {
    log_warn("second signal %d: exiting at once", signum);
    for (net_conn *c = s->net.conns; c; c = c->next) net_conn_close(c);
    s->stop_deadline = 0;
    return;
  }
  begin_stop(s);
}

int wsio_server_handle_signals(wsio_server *s) {
  if (!s) return WSIO_EINVAL;
  if (!s->signals_on) {
    uv_signal_init(&s->uv, &s->sigint);
    uv_signal_init(&s->uv, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    s->signals_on = 1;
    /* A peer that vanishes mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
  }
  return 0;
}

int wsio_server_run(wsio_server *s, int handle_signals) {
  if (!s) return WSIO_EINVAL;
  if (!s->stop_timeout_ms) s->stop_timeout_ms = 10000;
  if (handle_signals) wsio_server_handle_signals(s);
  uv_run(&s->uv, UV_RUN_DEFAULT);
  return 0;
}

void wsio_server_stop(wsio_server *s, uint32_t timeout_ms) {
  /* Thread-safe: only the async send crosses threads. */
  s->stop_timeout_ms = timeout_ms ? timeout_ms : 10000;
  uv_async_send(&s->stop_async);
}

void wsio_server_free(wsio_server *s) {
  if (!s) return;
  if (s->io) sio_io_free(s->io);
  s->io = NULL;
  api_engine_free_all(s);
  for (net_conn *c = s->net.conns; c; c = c->next) net_conn_close(c);
  close_handles(s);
  uv_run(&s->uv, UV_RUN_DEFAULT);
  net_loop_free(&s->net);
  api_limits_detach(s);
  uv_loop_close(&s->uv);
  for (int i = 0; i < s->nendpoints; i++) api_endpoint_free(s->endpoints[i]);
  for (api_page *p = s->pages, *next; p; p = next) {
    next = p->next;
    api_page_free(p);
  }
  ws_deflate_shared_free(s->deflate);
  net_tls_ctx_free(s->tls);
  free(s->web_root);
  free(s);
}

void wsio_server_stats(const wsio_server *s, wsio_stats *out) {
  *out = s->stats;
  out->connections = s->net.stats.connections;
  out->bytes_in = s->net.stats.bytes_in;
  out->bytes_out = s->net.stats.bytes_out;
  out->rejected = s->net.stats.rejected;
  out->handoffs = s->net.stats.handoffs;
  api_limits_stats(s, out);
  if (s->io) sio_io_stats(s->io, out);
}
