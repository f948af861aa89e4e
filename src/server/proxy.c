/* The event proxy: client events to the backend over HTTP, the backend's answer back to the clients. */
#include "server/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server/http_client.h"
#include "server/proxy_reply.h"
#include "sio/json.h"
#include "util/buf.h"
#include "util/log.h"

/* A reply may carry emits for many sockets; anything larger is refused as a failure. */
#define PROXY_MAX_REPLY (8u << 20)
#define PROXY_STACK_ROOMS 32

typedef struct proxy_req {
  srv_proxy *p;
  srv_http_req *http;
  wsio_ack *ack;     /* kept, or NULL when the client asked for none */
  wsio_nsp *nsp;     /* namespaces live as long as the io */
  struct proxy_req *prev, *next;
  char sid[];        /* the sender's id: its own room */
} proxy_req;

struct srv_proxy {
  srv_app *app;
  proxy_req *reqs;
  size_t in_flight;
  uint64_t last_warn_ms; /* failures are logged at most once a second */
  uint64_t suppressed;
};

static const char b64abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int put(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

static int put_b64(buf *b, const uint8_t *in, size_t n) {
  if (buf_reserve(b, (n + 2) / 3 * 4 + 2) != 0) return WSIO_ENOMEM;
  uint8_t *o = b->data + b->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
    *o++ = (uint8_t)b64abc[v >> 18 & 63];
    *o++ = (uint8_t)b64abc[v >> 12 & 63];
    *o++ = i + 1 < n ? (uint8_t)b64abc[v >> 6 & 63] : '=';
    *o++ = i + 2 < n ? (uint8_t)b64abc[v & 63] : '=';
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
  return 0;
}

static void warn(srv_proxy *p, const char *what, const char *detail) {
  uint64_t now = uv_now(wsio_server_loop(p->app->server));
  if (p->last_warn_ms && now - p->last_warn_ms < 1000) {
    p->suppressed++;
    return;
  }
  if (p->suppressed)
    log_warn("proxy: %s%s (%llu more warnings suppressed)", what, detail, (unsigned long long)p->suppressed);
  else log_warn("proxy: %s%s", what, detail);
  p->last_warn_ms = now ? now : 1;
  p->suppressed = 0;
}

static void ack_error(wsio_ack *ack, const char *msg) {
  if (!ack) return;
  char text[96];
  snprintf(text, sizeof text, "[{\"error\":\"%s\"}]", msg);
  wsio_ack_send(ack, text);
}

/* ---- the request ---- */

static int write_socket(srv_proxy *p, buf *b, wsio_socket *s) {
  const char *stack[PROXY_STACK_ROOMS], **rooms = stack;
  size_t n = wsio_socket_rooms(s, stack, PROXY_STACK_ROOMS);
  if (n > PROXY_STACK_ROOMS) {
    if (!(rooms = malloc(n * sizeof *rooms))) return WSIO_ENOMEM;
    n = wsio_socket_rooms(s, rooms, n);
  }
  const char *id = wsio_socket_id(s);
  const wsio_handshake *hs = wsio_socket_handshake(s);
  const char *addr = hs && hs->address ? hs->address : "";
  int rc = put(b, "{\"id\":");
  rc |= sio_json_write_string(b, id, strlen(id));
  rc |= put(b, ",\"rooms\":[");
  int first = 1;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (!first) rc |= put(b, ",");
    int w = sio_json_write_string(b, rooms[i], strlen(rooms[i]));
    if (w == WSIO_EINVAL) { /* not UTF-8: a room the backend could not name anyway */
      if (!first) b->len--;
      continue;
    }
    rc |= w;
    first = 0;
  }
  if (rooms != stack) free(rooms);
  rc |= put(b, "],\"address\":");
  if (sio_json_write_string(b, addr, strlen(addr)) != 0) rc |= put(b, "\"\"");
  rc |= put(b, ",\"claims\":");
  const char *claims = p->app->claims_json ? p->app->claims_json(s, p->app->claim_ud) : NULL;
  /* Only a JSON object reaches the backend: the request must stay valid JSON whatever the hook returns. */
  sio_json_span cs;
  int ok = claims && sio_json_validate(claims, strlen(claims), 64, &cs) == 0 && cs.kind == SIO_JSON_OBJECT;
  rc |= ok ? buf_append(b, cs.p, cs.len) : put(b, "null");
  rc |= put(b, "}");
  return rc ? WSIO_ENOMEM : 0;
}

static int write_body(srv_proxy *p, buf *b, wsio_socket *s, const wsio_args *args) {
  const char *event = wsio_args_event(args);
  const char *nsp = wsio_nsp_name(wsio_socket_nsp(s));
  int rc = put(b, "{\"event\":");
  rc |= sio_json_write_string(b, event, strlen(event));
  rc |= put(b, ",\"namespace\":");
  rc |= sio_json_write_string(b, nsp, strlen(nsp));
  rc |= put(b, ",\"socket\":");
  rc |= write_socket(p, b, s);
  rc |= put(b, ",\"args\":[");
  size_t n = wsio_args_count(args);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (i) rc |= put(b, ",");
    size_t len;
    const void *bin = wsio_args_binary(args, i, &len);
    if (bin) {
      rc |= put(b, "{\"_binary\":");
      rc |= put_b64(b, bin, len);
      rc |= put(b, "}");
    } else {
      const char *json = wsio_args_json(args, i, &len);
      rc |= json ? buf_append(b, json, len) : put(b, "null");
    }
  }
  rc |= put(b, "]}");
  return rc ? WSIO_EINVAL : 0;
}

/* ---- the reply ---- */

static void reply_emit(void *ud, const char *event, srv_proxy_to to, const char *room, const wsio_value *v,
                       size_t n) {
  proxy_req *q = ud;
  wsio_op op;
  switch (to) {
    case SRV_PROXY_SELF: op = wsio_nsp_to(q->nsp, q->sid); break;
    case SRV_PROXY_OTHERS:
      op = wsio_nsp_op(q->nsp);
      wsio_op_except(&op, q->sid);
      break;
    case SRV_PROXY_ALL: op = wsio_nsp_op(q->nsp); break;
    case SRV_PROXY_ROOM:
    default:
      op = wsio_nsp_to(q->nsp, room);
      wsio_op_except(&op, q->sid);
      break;
  }
  if (wsio_op_emitv(&op, event, v, n) == WSIO_EINVAL) warn(q->p, "the server cannot emit ", event);
}

static void reply_ack(void *ud, int has, const wsio_value *v, size_t n) {
  proxy_req *q = ud;
  if (!q->ack) return;
  if (has) wsio_ack_sendv(q->ack, v, n);
  else wsio_ack_send(q->ack, NULL);
  q->ack = NULL;
}

static void reply_skip(void *ud, const char *why) {
  proxy_req *q = ud;
  warn(q->p, "reply: left out ", why);
}

static const srv_proxy_reply_ops reply_ops = {reply_emit, reply_ack, reply_skip};

static void unlink_req(srv_proxy *p, proxy_req *q) {
  if (q->prev) q->prev->next = q->next;
  else p->reqs = q->next;
  if (q->next) q->next->prev = q->prev;
  p->in_flight--;
}

static void on_reply(const srv_http_result *r, void *ud) {
  proxy_req *q = ud;
  srv_proxy *p = q->p;
  srv_metrics *m = &p->app->metrics;
  unlink_req(p, q);
  srv_histogram_observe(&m->proxy_latency, r->seconds);
  char detail[64];
  if (r->err == WSIO_ETIMEDOUT) {
    m->proxy_failures++;
    m->proxy_timeouts++;
    warn(p, "backend timeout", "");
    ack_error(q->ack, "backend timeout");
  } else if (r->err) {
    m->proxy_failures++;
    warn(p, "backend unavailable: ", wsio_strerror(r->err));
    ack_error(q->ack, "backend unavailable");
  } else if (r->status < 200 || r->status > 299) {
    m->proxy_failures++;
    snprintf(detail, sizeof detail, "%d", r->status);
    warn(p, "backend answered HTTP ", detail);
    ack_error(q->ack, "backend unavailable");
  } else if (srv_proxy_reply_parse(r->body, r->len, &reply_ops, q) != 0) {
    m->proxy_failures++;
    warn(p, "backend reply is not a JSON object", "");
    ack_error(q->ack, "backend unavailable");
  }
  free(q);
}

/* ---- the API ---- */

srv_proxy *srv_proxy_new(srv_app *app) {
  if (!app || !app->http) return NULL;
  srv_proxy *p = calloc(1, sizeof *p);
  if (p) p->app = app;
  return p;
}

static int wanted(const server_config *cfg, const char *event) {
  if (!cfg->proxy.url) return 0;
  for (size_t i = 0; i < cfg->proxy.events.n; i++)
    if (server_config_match(cfg->proxy.events.v[i], event)) return 1;
  return 0;
}

int srv_proxy_event(srv_proxy *p, wsio_socket *s, const wsio_args *args, wsio_ack *ack) {
  if (!p || !s || !args) return 0;
  const server_config *cfg = p->app->cfg;
  if (!wanted(cfg, wsio_args_event(args))) return 0;
  srv_metrics *m = &p->app->metrics;
  m->proxy_requests++;
  if (p->in_flight >= cfg->proxy.max_in_flight) {
    m->proxy_failures++;
    warn(p, "busy: max_in_flight requests outstanding", "");
    ack_error(ack, "busy");
    return 1;
  }
  const char *sid = wsio_socket_id(s);
  size_t sid_len = strlen(sid);
  proxy_req *q = calloc(1, sizeof *q + sid_len + 1);
  buf body = {0};
  if (!q || write_body(p, &body, s, args) != 0) goto fail;
  memcpy(q->sid, sid, sid_len + 1);
  q->p = p;
  q->nsp = wsio_socket_nsp(s);
  q->http = srv_http_post(p->app->http, cfg->proxy.url, "application/json", body.data, body.len,
                          cfg->proxy.timeout_ms, PROXY_MAX_REPLY, on_reply, q);
  if (!q->http) goto fail;
  buf_free(&body);
  q->ack = ack ? wsio_ack_keep(ack) : NULL;
  q->next = p->reqs;
  if (p->reqs) p->reqs->prev = q;
  p->reqs = q;
  p->in_flight++;
  return 1;
fail:
  buf_free(&body);
  free(q);
  m->proxy_failures++;
  warn(p, "cannot send the request", "");
  ack_error(ack, "backend unavailable");
  return 1;
}

void srv_proxy_on_event(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  srv_proxy_event(ud, s, args, ack);
}

size_t srv_proxy_in_flight(const srv_proxy *p) { return p ? p->in_flight : 0; }

void srv_proxy_free(srv_proxy *p) {
  if (!p) return;
  while (p->reqs) {
    proxy_req *q = p->reqs;
    unlink_req(p, q);
    srv_http_cancel(p->app->http, q->http);
    wsio_ack_drop(q->ack);
    free(q);
  }
  free(p);
}
