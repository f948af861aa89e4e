/* The server's HTTP router: WebSocket upgrades to endpoints, /healthz, the in-tree hook, static files. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/response.h"
#include "http/static.h"
#include "util/log.h"

/* Largest file served from the web root in one response. */
#define API_MAX_STATIC_FILE (64u << 20)

static void send_buf(http_conn *hc, buf *out, int keep_alive) {
  http_conn_respond(hc, out->data, out->len, keep_alive);
  buf_free(out);
}

static void upgrade(wsio_server *s, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len) {
  api_endpoint *ep = api_endpoint_find(s, req->path, req->path_len);
  if (!ep || s->stopping) {
    buf out = {0};
    http_response_simple(&out, ep ? 503 : 404, 0);
    send_buf(hc, &out, 0);
    return;
  }
  ws_handshake_result res;
  char resp[1024];
  int st = ws_handshake_accept(req, &ep->hs, &res, resp, sizeof resp);
  if (st != 0) {
    log_debug("WebSocket handshake refused with %d", st);
    http_conn_respond(hc, resp, strlen(resp), 0);
    return;
  }
  net_conn *c = http_conn_detach(hc);
  net_conn_write(c, resp, strlen(resp));
  api_ws_upgrade(c, ep, &res, rest, rest_len);
}

static void route(http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len, void *arg) {
  wsio_server *s = arg;
  if (req->upgrade && ws_handshake_is_upgrade(req)) {
    upgrade(s, hc, req, rest, rest_len);
    return;
  }
  int keep_alive = http_conn_keep_alive(hc, req);
  buf out = {0};
  if (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0) {
    http_response_start(&out, 200);
    http_response_header(&out, "Content-Type", "text/plain; charset=utf-8");
    http_response_header(&out, "Cache-Control", "no-store");
    http_response_end(&out, "ok\n", req->method == 2 /* HEAD */ ? 0 : 3, keep_alive);
  } else if (s->hook && s->hook(s, req, &out, keep_alive, s->hook_arg)) {
    /* answered by the hook */
  } else if (s->web_root) {
    http_static_serve(s->web_root, req, &out, keep_alive, API_MAX_STATIC_FILE);
  } else {
    http_response_simple(&out, 404, keep_alive);
  }
  send_buf(hc, &out, keep_alive);
}

void api_http_configure(wsio_server *s) {
  s->http.limits = s->hlimits;
  s->http.request_timeout_s = (uint16_t)((s->cfg.handshake_timeout_ms + 999) / 1000);
  s->http.idle_timeout_s = (uint16_t)((s->cfg.idle_timeout_ms + 999) / 1000);
  s->http.on_request = route;
  s->http.arg = s;
  http_conn_configure(&s->net, &s->http);
}
