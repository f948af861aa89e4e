/* http_conn: HTTP/1.1 request handling on a net_conn. */
#include "http/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/forwarded.h"
#include "http/response.h"
#include "net/iplimit.h"
#include "util/log.h"
#include "wsio.h"

/* Output queued on a connection past which pipelined requests are no longer read: the connection ends. */
#define HTTP_OUT_LIMIT (8u << 20)

struct http_conn {
  net_conn *conn;
  const http_server_cfg *cfg;
  http_parser *parser;
  http_abort_cb on_abort;
  void *owner;
  uint8_t held;
  uint8_t between;   /* waiting between keep-alive requests */
  uint8_t detached;  /* taken over by another protocol during routing */
  uint8_t responded; /* the routed request got its response */
  uint8_t close_after;
  uint8_t moving;    /* handed to another worker once the answers before it have left (on_drain) */
  unsigned moving_to;
  buf moving_bytes;  /* the request written out again, and every byte that came after it */
};

static const http_server_cfg *loop_cfg(net_loop *l) { return l->http_cfg; }

void http_conn_configure(net_loop *l, const http_server_cfg *cfg) {
  l->http_cfg = cfg;
  l->accept_proto = &http_conn_proto;
  l->accept_timeout = cfg->request_timeout_s;
}

net_conn *http_conn_net(const http_conn *hc) { return hc->conn; }

static void fail(http_conn *hc, int status) {
  buf out = {0};
  http_response_simple(&out, status, 0);
  net_conn_write(hc->conn, out.data, out.len);
  buf_free(&out);
  net_conn_end(hc->conn);
}

void http_conn_respond(http_conn *hc, const void *data, size_t len, int keep_alive) {
  net_conn *c = hc->conn;
  net_conn_write(c, data, len);
  hc->responded = 1;
  if (!keep_alive) hc->close_after = 1;
  if (hc->held) {
    /* A long-poll answered: the connection goes back to waiting for the next request. */
    hc->held = 0;
    hc->on_abort = NULL;
    hc->owner = NULL;
    if (hc->close_after) {
      net_conn_client_done(c); /* answered: its client's place goes now, not once the close is through */
      net_conn_end(c);
      return;
    }
    http_parser_reset(hc->parser);
    hc->between = 1;
    c->idle = 0;
    c->timeout = hc->cfg->idle_timeout_s;
    net_conn_client_done(c);
  }
}

void http_conn_hold(http_conn *hc, http_abort_cb on_abort, void *owner) {
  hc->held = 1;
  hc->on_abort = on_abort;
  hc->owner = owner;
  hc->conn->timeout = 0; /* the owner answers in time (Engine.IO's ping does) */
}

int http_conn_held(const http_conn *hc) { return hc->held; }
int http_conn_idle(const http_conn *hc) { return hc->between && !hc->held; }

int http_conn_keep_alive(const http_conn *hc, const http_request *req) {
  return req->keep_alive && !hc->cfg->stopping;
}

net_conn *http_conn_detach(http_conn *hc) {
  net_conn *c = hc->conn;
  hc->detached = 1;
  c->ud = NULL;
  return c;
}

static int header_is(const http_header *h, const char *name) {
  size_t n = strlen(name);
  return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

int http_request_write(const http_request *req, buf *out) {
  char line[64];
  int rc = buf_append(out, req->method_str, strlen(req->method_str)) || buf_append(out, " ", 1) ||
           buf_append(out, req->url, req->url_len);
  snprintf(line, sizeof line, " HTTP/%u.%u\r\n", req->http_major, req->http_minor);
  rc = rc || buf_append(out, line, strlen(line));
  for (size_t i = 0; i < req->nheaders && !rc; i++) {
    const http_header *h = &req->headers[i];
    if (header_is(h, "Content-Length") || header_is(h, "Transfer-Encoding")) continue;
    rc = buf_append(out, h->name, h->name_len) || buf_append(out, ": ", 2) ||
         buf_append(out, h->value, h->value_len) || buf_append(out, "\r\n", 2);
  }
  if (req->body_len || req->method == 3 /* POST */ || req->method == 4 /* PUT */) {
    snprintf(line, sizeof line, "Content-Length: %zu\r\n", req->body_len);
    rc = rc || buf_append(out, line, strlen(line));
  }
  rc = rc || buf_append(out, "\r\n", 2) || (req->body_len && buf_append(out, req->body, req->body_len));
  return rc ? WSIO_ENOMEM : 0;
}

/* Bytes that may pile up behind a request waiting to move: a request's own limits, and some. */
#define HTTP_MOVING_MAX (2u << 20)

int http_conn_handoff(http_conn *hc, const http_request *req, const uint8_t *rest, size_t rest_len,
                      unsigned owner) {
  net_conn *c = hc->conn;
  net_loop *l = c->loop;
  if (!l->handoff || hc->held) return WSIO_EINVAL;
  buf bytes = {0};
  int rc = http_request_write(req, &bytes);
  if (rc == 0 && rest_len) rc = buf_append(&bytes, rest, rest_len) ? WSIO_ENOMEM : 0;
  if (rc == 0) rc = l->handoff(l, c, owner, bytes.data, bytes.len);
  if (rc == WSIO_EBACKPRESSURE) {
    /* Answers to requests before this one are still being written, and they must leave from here: the
     * request moves once they are out (on_drain), with whatever comes after it meanwhile. */
    hc->moving = 1;
    hc->moving_to = owner;
    hc->moving_bytes = bytes;
    net_conn_read_stop(c);
    net_conn_on_empty(c);
    return 0;
  }
  buf_free(&bytes);
  if (rc != 0) return rc;
  /* c is closed by now; the HTTP state goes as after an upgrade. */
  hc->detached = 1;
  return 0;
}

static void http_conn_free(http_conn *hc) {
  if (hc->parser) http_parser_free(hc->parser);
  buf_free(&hc->moving_bytes);
  free(hc);
}

/* A request from a trusted proxy: whom it is from, for the limits, the logs and the layers above. */
static void set_client(net_conn *c, const http_request *req) {
  net_addr client;
  int rc = http_forwarded_client(req, c->loop->trust, &client);
  if (rc == HTTP_FWD_BAD)
    log_debug("a trusted proxy's X-Forwarded-For or Forwarded could not be read: the proxy stands for the client");
  net_conn_set_client(c, rc == HTTP_FWD_CLIENT ? &client : NULL);
}

static void on_data(net_conn *c, uint8_t *data, size_t len) {
  http_conn *hc = c->ud;
  if (!hc) {
    const http_server_cfg *cfg = loop_cfg(c->loop);
    hc = calloc(1, sizeof *hc);
    if (!hc || !(hc->parser = http_parser_new(&cfg->limits))) {
      free(hc);
      net_conn_close(c);
      return;
    }
    hc->conn = c;
    hc->cfg = cfg;
    c->ud = hc;
  }
  if (hc->moving) { /* what a TLS read decrypted after the request goes with it */
    if (hc->moving_bytes.len + len > HTTP_MOVING_MAX || buf_append(&hc->moving_bytes, data, len)) net_conn_close(c);
    return;
  }
  if (hc->held) {
    /* Nothing may follow a held request (one long-poll per connection at a time). */
    fail(hc, 400);
    return;
  }
  if (hc->between) {
    /* The first bytes of the next request: it gets the request timeout, counted from now. */
    hc->between = 0;
    c->idle = 0;
    c->timeout = hc->cfg->request_timeout_s;
  }
  while (len > 0) {
    http_request req;
    size_t used = 0;
    int rc = http_parser_feed(hc->parser, data, len, &used, &req);
    if (rc == HTTP_PARSE_NEED_MORE) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if (http_parser_take_continue(hc->parser)) net_conn_write(c, cont, sizeof cont - 1);
      return;
    }
    if (rc != HTTP_PARSE_REQUEST) {
      log_debug("HTTP request refused with %d", rc);
      fail(hc, rc);
      return;
    }
    data += used;
    len -= used;
    hc->responded = 0;
    hc->close_after = !http_conn_keep_alive(hc, &req);
    if (c->proxied) set_client(c, &req);
    hc->cfg->on_request(hc, &req, data, len, hc->cfg->arg);
    if (hc->detached) {
      http_conn_free(hc);
      return;
    }
    if (hc->moving) return; /* on_drain moves it */
    if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) return;
    if (hc->held) return;
    if (!hc->responded) {
      log_error("HTTP router left a request unanswered");
      fail(hc, 500);
      return;
    }
    if (hc->close_after || net_conn_buffered(c) > HTTP_OUT_LIMIT) {
      /* Answered: a proxy's client gives its place back now. The close takes a while, and the client may
       * have its next request on another connection by then. */
      net_conn_client_done(c);
      net_conn_end(c);
      return;
    }
    http_parser_reset(hc->parser);
    /* Between requests the idle timeout applies. */
    hc->between = 1;
    c->idle = 0;
    c->timeout = hc->cfg->idle_timeout_s;
    net_conn_client_done(c);
  }
}

/* The answers before a request waiting to move have left: it moves now. */
static void on_drain(net_conn *c) {
  http_conn *hc = c->ud;
  if (!hc || !hc->moving) return;
  net_loop *l = c->loop;
  int rc = l->handoff(l, c, hc->moving_to, hc->moving_bytes.data, hc->moving_bytes.len);
  if (rc == 0) { /* c is closed by now, and no longer points at hc */
    http_conn_free(hc);
    return;
  }
  log_debug("HTTP: a request for worker %u could not move there (%d): closing", hc->moving_to, rc);
  net_conn_close(c);
}

static void on_timeout(net_conn *c) {
  log_debug("closing an HTTP connection: %s", c->ud && ((http_conn *)c->ud)->between ? "idle" : "request too slow");
  net_conn_close(c);
}

static void on_close(net_conn *c) {
  http_conn *hc = c->ud;
  if (!hc) return;
  if (hc->held && hc->on_abort) hc->on_abort(hc, hc->owner);
  http_conn_free(hc);
  c->ud = NULL;
}

const net_proto http_conn_proto = {
    .on_data = on_data,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_close = on_close,
};
