/* The HTTP protocol of fresh connections: requests, keep-alive, upgrades to WebSocket, static files. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/response.h"
#include "http/static.h"
#include "util/log.h"

/* Largest file served from the web root in one response. */
#define API_MAX_STATIC_FILE (64u << 20)
/* Output queued on a connection past which pipelined requests are no longer read: the connection ends. */
#define API_HTTP_OUT_LIMIT (8u << 20)

/* net_conn flag bit owned by this protocol: waiting between keep-alive requests. */
#define API_HTTP_BETWEEN (1u << 16)

static wsio_server *conn_server(net_conn *c) { return c->loop->data; }

static void respond(net_conn *c, buf *out) {
  net_conn_write(c, out->data, out->len);
  buf_free(out);
}

static int serve(wsio_server *s, const http_request *req, buf *out, int keep_alive) {
  if (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0) {
    http_response_start(out, 200);
    http_response_header(out, "Content-Type", "text/plain; charset=utf-8");
    http_response_header(out, "Cache-Control", "no-store");
    http_response_end(out, "ok\n", req->method == 2 /* HEAD */ ? 0 : 3, keep_alive);
    return 200;
  }
  if (s->hook) {
    int st = s->hook(s, req, out, keep_alive, s->hook_arg);
    if (st) return st;
  }
  if (s->web_root) return http_static_serve(s->web_root, req, out, keep_alive, API_MAX_STATIC_FILE);
  http_response_simple(out, 404, keep_alive);
  return 404;
}

static void upgrade(net_conn *c, const http_request *req, uint8_t *rest, size_t rest_len) {
  wsio_server *s = conn_server(c);
  api_endpoint *ep = api_endpoint_find(s, req->path, req->path_len);
  buf out = {0};
  if (!ep || s->stopping) {
    http_response_simple(&out, ep ? 503 : 404, 0);
    respond(c, &out);
    net_conn_end(c);
    return;
  }
  ws_handshake_result res;
  char resp[1024];
  int st = ws_handshake_accept(req, &ep->hs, &res, resp, sizeof resp);
  net_conn_write(c, resp, strlen(resp));
  if (st != 0) {
    log_debug("WebSocket handshake refused with %d", st);
    net_conn_end(c);
    return;
  }
  http_parser_free(c->ud);
  c->ud = NULL;
  api_ws_upgrade(c, ep, &res, rest, rest_len);
}

static void http_on_data(net_conn *c, uint8_t *data, size_t len) {
  wsio_server *s = conn_server(c);
  if (!c->ud) {
    if (!(c->ud = http_parser_new(&s->hlimits))) {
      net_conn_close(c);
      return;
    }
  }
  if (c->flags & API_HTTP_BETWEEN) {
    /* The first bytes of the next request: it gets the request timeout, counted from now. */
    c->flags &= ~API_HTTP_BETWEEN;
    c->idle = 0;
    c->timeout = (uint16_t)((s->cfg.handshake_timeout_ms + 999) / 1000);
  }
  while (len > 0) {
    http_parser *p = c->ud;
    http_request req;
    size_t used = 0;
    int rc = http_parser_feed(p, data, len, &used, &req);
    if (rc == HTTP_PARSE_NEED_MORE) return;
    buf out = {0};
    if (rc != HTTP_PARSE_REQUEST) {
      http_response_simple(&out, rc, 0);
      respond(c, &out);
      net_conn_end(c);
      return;
    }
    data += used;
    len -= used;
    if (req.upgrade && ws_handshake_is_upgrade(&req)) {
      upgrade(c, &req, data, len);
      return;
    }
    int keep_alive = req.keep_alive && !s->stopping;
    serve(s, &req, &out, keep_alive);
    respond(c, &out);
    if (!keep_alive || net_conn_buffered(c) > API_HTTP_OUT_LIMIT) {
      net_conn_end(c);
      return;
    }
    http_parser_reset(p);
    /* Between requests the idle timeout applies; a request once started must finish within the request
     * timeout, however slowly its bytes trickle in. */
    c->idle = 0;
    c->timeout = (uint16_t)((s->cfg.idle_timeout_ms + 999) / 1000);
    c->flags |= API_HTTP_BETWEEN;
  }
}

static void http_on_timeout(net_conn *c) {
  log_debug("closing an HTTP connection: request not completed in time");
  net_conn_close(c);
}

static void http_on_close(net_conn *c) {
  if (c->ud) http_parser_free(c->ud);
  c->ud = NULL;
}

const net_proto api_http_proto = {
    .on_data = http_on_data,
    .on_timeout = http_on_timeout,
    .on_close = http_on_close,
};
