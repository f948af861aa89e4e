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

int wsio_server_set_page(wsio_server *s, const char *path, const char *content_type, const void *body, size_t len) {
  if (!s || !path || path[0] != '/' || !content_type || (!body && len)) return WSIO_EINVAL;
  api_page *p = calloc(1, sizeof *p);
  if (!p || !(p->path = strdup(path)) || !(p->type = strdup(content_type)) || !(p->body = malloc(len ? len : 1))) {
    if (p) {
      free(p->path);
      free(p->type);
    }
    free(p);
    return WSIO_ENOMEM;
  }
  if (len) memcpy(p->body, body, len);
  p->len = len;
  /* FNV-1a of the body: the page changes only when the program changes it. */
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) h = (h ^ p->body[i]) * 1099511628211ull;
  snprintf(p->etag, sizeof p->etag, "\"%016llx\"", (unsigned long long)h);
  for (api_page **pp = &s->pages; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->path, path) == 0) {
      api_page *old = *pp;
      p->next = old->next;
      *pp = p;
      api_page_free(old);
      return 0;
    }
  }
  p->next = s->pages;
  s->pages = p;
  return 0;
}

void api_page_free(api_page *p) {
  free(p->path);
  free(p->type);
  free(p->body);
  free(p);
}

static int serve_page(wsio_server *s, const http_request *req, buf *out, int keep_alive) {
  for (api_page *p = s->pages; p; p = p->next) {
    if (strlen(p->path) != req->path_len || memcmp(p->path, req->path, req->path_len) != 0) continue;
    if (req->method != 1 && req->method != 2) { /* GET, HEAD */
      http_response_start(out, 405);
      http_response_header(out, "Allow", "GET, HEAD");
      http_response_end(out, NULL, 0, keep_alive);
      return 1;
    }
    const http_header *inm = http_request_header(req, "If-None-Match");
    if (inm && inm->value_len == strlen(p->etag) && memcmp(inm->value, p->etag, inm->value_len) == 0) {
      http_response_start(out, 304);
      http_response_header(out, "ETag", p->etag);
      http_response_end(out, NULL, 0, keep_alive);
      return 1;
    }
    http_response_start(out, 200);
    http_response_header(out, "Content-Type", p->type);
    http_response_header(out, "ETag", p->etag);
    http_response_header(out, "Cache-Control", "no-cache");
    /* HEAD announces the real length and sends no body. */
    http_response_end(out, req->method == 2 ? NULL : p->body, p->len, keep_alive);
    return 1;
  }
  return 0;
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
  if (st == 0 && api_handshake_refused(hc)) return; /* per-address rate, counted for valid upgrades only */
  if (st != 0) {
    if (st == 403) http_conn_net(hc)->loop->stats.origin_refused++;
    log_debug("WebSocket handshake refused with %d", st);
    http_conn_respond(hc, resp, strlen(resp), 0);
    return;
  }
  net_conn *c = http_conn_detach(hc);
  net_conn_write(c, resp, strlen(resp));
  api_ws_upgrade(c, ep, &res, rest, rest_len);
}

struct api_deferred {
  http_conn *hc;               /* NULL once the client went away */
};

static void on_deferred_abort(http_conn *hc, void *owner) {
  (void)hc;
  ((api_deferred *)owner)->hc = NULL;
}

api_deferred *api_http_defer(wsio_server *s) {
  if (!s->hook_hc) return NULL;
  api_deferred *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->hc = s->hook_hc;
  http_conn_hold(d->hc, on_deferred_abort, d);
  return d;
}

void api_deferred_respond(api_deferred *d, const void *data, size_t len, int keep_alive) {
  if (d->hc && len) {
    http_conn_respond(d->hc, data, len, keep_alive);
  } else if (d->hc) {
    buf out = {0};
    http_response_simple(&out, 503, 0);
    http_conn_respond(d->hc, out.data, out.len, 0);
    buf_free(&out);
  }
  free(d);
}

/* Returns 1 when the hook answered (out is empty when it deferred the answer), 0 when it passed. */
static int call_hook(wsio_server *s, http_conn *hc, const http_request *req, buf *out, int keep_alive) {
  s->hook_hc = hc;
  int st = s->hook(s, req, out, keep_alive, s->hook_arg);
  s->hook_hc = NULL;
  if (st == API_HOOK_DEFERRED) buf_free(out);
  return st != 0;
}

static void route(http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len, void *arg) {
  wsio_server *s = arg;
  if (api_refuse_over_ip(hc, req)) return;
  if (s->io && sio_io_http(s->io, hc, req, rest, rest_len)) return;
  if (s->engines && api_engine_http(s, hc, req, rest, rest_len)) return;
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
    http_response_end(&out, req->method == 2 /* HEAD */ ? NULL : "ok\n", 3, keep_alive);
  } else if (serve_page(s, req, &out, keep_alive)) {
    /* an in-memory page */
  } else if (s->hook && call_hook(s, hc, req, &out, keep_alive)) {
    if (!out.len) return; /* deferred: answered later (api_deferred_respond) */
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
