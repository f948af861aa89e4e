/* Raw WebSocket endpoints of the public API: wsio_ws, sending with backpressure, publish. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/log.h"
#include "ws/frame.h"

#define API_DEFAULT_MAX_MESSAGE (1u << 20)
#define API_DEFAULT_SEND_LIMIT (1u << 20)
#define API_DEFAULT_PING_MS 30000u
#define API_DEFAULT_DEFLATE_MIN 64u

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int wsio_server_ws(wsio_server *s, const char *path, const wsio_ws_handlers *h, const wsio_ws_config *config) {
  if (!s || !path || path[0] != '/' || !h) return WSIO_EINVAL;
  if (api_endpoint_find(s, path, strlen(path))) return WSIO_EEXISTS;
  if (s->nendpoints >= API_MAX_ENDPOINTS) return WSIO_ELIMIT;
  api_endpoint *ep = calloc(1, sizeof *ep);
  if (!ep) return WSIO_ENOMEM;
  ep->server = s;
  ep->h = *h;
  if (config) ep->cfg = *config;
  else ep->cfg.deflate = WSIO_DEFLATE_SHARED;
  if (!ep->cfg.max_message_size) ep->cfg.max_message_size = API_DEFAULT_MAX_MESSAGE;
  if (!ep->cfg.send_buffer_limit) ep->cfg.send_buffer_limit = API_DEFAULT_SEND_LIMIT;
  if (!ep->cfg.ping_interval_ms) ep->cfg.ping_interval_ms = API_DEFAULT_PING_MS;
  if (!ep->cfg.deflate_min_size) ep->cfg.deflate_min_size = API_DEFAULT_DEFLATE_MIN;
  if (ep->cfg.messages_per_second && !ep->cfg.message_burst) ep->cfg.message_burst = ep->cfg.messages_per_second;
  ep->path = strdup(path);
  ep->subprotocols = dup_or_null(ep->cfg.subprotocols);
  ep->origins = dup_or_null(ep->cfg.origins);
  if (!ep->path || (ep->cfg.subprotocols && !ep->subprotocols) || (ep->cfg.origins && !ep->origins)) {
    api_endpoint_free(ep);
    return WSIO_ENOMEM;
  }
  ep->cfg.subprotocols = ep->subprotocols;
  ep->cfg.origins = ep->origins;
  ep->limits.max_message = ep->cfg.max_message_size;
  ep->params.limits = &ep->limits;
  ep->params.deflate = s->deflate;
  ep->params.ping_interval_s = (ep->cfg.ping_interval_ms + 999) / 1000;
  ep->params.send_limit = ep->cfg.send_buffer_limit;
  ep->hs.subprotocols = ep->subprotocols;
  ep->hs.origins = ep->origins;
  ep->hs.deflate_mode = (int)ep->cfg.deflate;
  s->endpoints[s->nendpoints++] = ep;
  return 0;
}

int wsio_server_ws_set_origins(wsio_server *s, const char *path, const char *origins) {
  api_endpoint *ep = s && path ? api_endpoint_find(s, path, strlen(path)) : NULL;
  if (!ep) return WSIO_EINVAL;
  char *copy = dup_or_null(origins);
  if (origins && !copy) return WSIO_ENOMEM;
  /* Handshakes are checked synchronously on this thread: nothing holds the old list past this call. */
  free(ep->origins);
  ep->origins = copy;
  ep->cfg.origins = ep->hs.origins = copy;
  return 0;
}

void api_endpoint_free(api_endpoint *ep) {
  if (!ep) return;
  free(ep->path);
  free(ep->subprotocols);
  free(ep->origins);
  free(ep);
}

api_endpoint *api_endpoint_find(wsio_server *s, const char *path, size_t len) {
  for (int i = 0; i < s->nendpoints; i++) {
    api_endpoint *ep = s->endpoints[i];
    if (strlen(ep->path) == len && memcmp(ep->path, path, len) == 0) return ep;
  }
  return NULL;
}

/* ---- the endpoint's ws_conn handler ---- */

static ws_conn *conn_of(const wsio_ws *ws) { return ws_conn_from_ext((void *)ws); }

/* The message rate (wsio_ws_config.messages_per_second): 1 to deliver the message, 0 to drop it. */
static int rate_admit(wsio_ws *ws) {
  api_endpoint *ep = ws->ep;
  if (net_bucket_take(&ws->rate, ep->cfg.messages_per_second, ep->cfg.message_burst, uv_now(&ep->server->uv)))
    return 1;
  if (!ws_conn_writable(conn_of(ws))) return 0; /* already closing: the rest of its input is dropped */
  if (ep->cfg.message_rate_drop) {
    ep->server->stats.rate_dropped++;
    return 0;
  }
  ep->server->stats.rate_closes++;
  log_warn("closing WebSocket %s with 1008: over %u messages per second (burst %u)", wsio_ws_remote(ws),
           ep->cfg.messages_per_second, ep->cfg.message_burst);
  wsio_ws_close(ws, 1008, "rate limit");
  return 0;
}

static void h_message(ws_conn *wc, int opcode, uint8_t *data, size_t len) {
  wsio_ws *ws = ws_conn_ext(wc);
  if (ws->ep->cfg.messages_per_second && !rate_admit(ws)) return;
  ws->ep->server->stats.messages_in++;
  if (ws->ep->h.on_message) ws->ep->h.on_message(ws, opcode == WS_OP_TEXT ? WSIO_TEXT : WSIO_BINARY, data, len);
}

static void h_drain(ws_conn *wc) {
  wsio_ws *ws = ws_conn_ext(wc);
  if (ws->ep->h.on_drain) ws->ep->h.on_drain(ws);
}

static void h_close(ws_conn *wc, unsigned code, const char *reason, size_t reason_len) {
  wsio_ws *ws = ws_conn_ext(wc);
  api_endpoint *ep = ws->ep;
  if (ep->h.on_close) ep->h.on_close(ws, (int)code, reason, reason_len);
  if (ws->prev) ws->prev->next = ws->next;
  else ep->members = ws->next;
  if (ws->next) ws->next->prev = ws->prev;
  ep->count--;
  ep->server->stats.websockets--;
  free(ws->protocol);
  free(ws->remote);
}

static const ws_conn_handler api_ws_handler = {
    .on_message = h_message,
    .on_drain = h_drain,
    .on_close = h_close,
};

void api_ws_upgrade(net_conn *c, api_endpoint *ep, const ws_handshake_result *res, uint8_t *rest, size_t rest_len) {
  char *protocol = NULL;
  if (res->protocol[0] && !(protocol = strdup(res->protocol))) {
    net_conn_close(c);
    return;
  }
  ws_conn *wc = ws_conn_upgrade(c, &api_ws_handler, sizeof(wsio_ws), res, &ep->params);
  if (!wc) {
    free(protocol);
    return;
  }
  wsio_ws *ws = ws_conn_ext(wc);
  ws->ep = ep;
  ws->protocol = protocol;
  net_bucket_init(&ws->rate, ep->cfg.message_burst, uv_now(&ep->server->uv));
  ws->next = ep->members;
  if (ep->members) ep->members->prev = ws;
  ep->members = ws;
  ep->count++;
  ep->server->stats.websockets++;
  if (ep->h.on_open) ep->h.on_open(ws);
  if (rest_len) ws_conn_feed(wc, rest, rest_len);
}

void api_ws_shutdown_all(wsio_server *s) {
  for (int i = 0; i < s->nendpoints; i++)
    for (wsio_ws *ws = s->endpoints[i]->members; ws; ws = ws->next) wsio_ws_close(ws, 1001, "server shutting down");
}

/* ---- sending ---- */

/* Backpressure check before a send: over the limit, a droppable message is dropped, anything else closes
 * the connection with 1008. A single message larger than the limit still goes to an empty buffer. */
static int send_admit(wsio_ws *ws, unsigned flags) {
  ws_conn *wc = conn_of(ws);
  if (!ws_conn_writable(wc)) return WSIO_ECLOSED;
  size_t buffered = ws_conn_buffered(wc);
  if (buffered <= ws->ep->cfg.send_buffer_limit) return 0;
  wsio_server *s = ws->ep->server;
  if (flags & WSIO_SEND_DROPPABLE) {
    s->stats.dropped++;
    return WSIO_EDROPPED;
  }
  s->stats.slow_closes++;
  log_warn("closing WebSocket %s with 1008: %zu bytes unsent, over the send buffer limit of %zu (slow reader)",
           wsio_ws_remote(ws), buffered, ws->ep->cfg.send_buffer_limit);
  wsio_ws_close(ws, 1008, "send buffer limit");
  return WSIO_EBACKPRESSURE;
}

static void send_done(wsio_ws *ws) {
  ws->ep->server->stats.messages_out++;
  ws_conn *wc = conn_of(ws);
  if (ws_conn_over(wc)) ws_conn_want_drain(wc);
}

int wsio_ws_send(wsio_ws *ws, wsio_opcode op, const void *data, size_t len, unsigned flags) {
  if (!ws || (op != WSIO_TEXT && op != WSIO_BINARY) || (!data && len)) return WSIO_EINVAL;
  int rc = send_admit(ws, flags);
  if (rc) return rc;
  int compress = !(flags & WSIO_SEND_NOCOMPRESS) && len >= ws->ep->cfg.deflate_min_size;
  rc = ws_conn_send(conn_of(ws), op == WSIO_TEXT ? WS_OP_TEXT : WS_OP_BINARY, data, len, compress);
  if (rc) return rc;
  send_done(ws);
  return 0;
}

int wsio_ws_close(wsio_ws *ws, int code, const char *reason) {
  if (!ws || code < 0 || code > 4999) return WSIO_EINVAL;
  return ws_conn_close(conn_of(ws), (unsigned)code, reason);
}

size_t wsio_ws_buffered(const wsio_ws *ws) { return ws ? ws_conn_buffered(conn_of(ws)) : 0; }
void wsio_ws_set_data(wsio_ws *ws, void *data) { ws->data = data; }
void *wsio_ws_data(const wsio_ws *ws) { return ws->data; }
void *wsio_ws_endpoint_user(const wsio_ws *ws) { return ws->ep->cfg.user; }
const char *wsio_ws_protocol(const wsio_ws *ws) { return ws->protocol ? ws->protocol : ""; }

const char *wsio_ws_remote(const wsio_ws *ws) {
  wsio_ws *m = (wsio_ws *)ws;
  if (!m->remote) {
    char tmp[80];
    if (net_conn_peer(conn_of(ws)->conn, tmp, sizeof tmp) != 0) return "?";
    m->remote = strdup(tmp);
    if (!m->remote) return "?";
  }
  return m->remote;
}

/* ---- publish ---- */

struct wsio_msg {
  net_shared sh;               /* the caller's references and one per connection the frame is queued on */
  uint8_t op;
  uint8_t ztried;              /* the compressed form was attempted */
  size_t payload_len;
  size_t frame_len;            /* header + payload */
  uint8_t *zframe;             /* compressed frame, made on first use by a SHARED-deflate receiver */
  size_t zframe_len;
  uint8_t frame[];             /* header then payload */
};

static void msg_release(net_shared *sh) {
  wsio_msg *m = (wsio_msg *)sh;
  free(m->zframe);
  free(m);
}

wsio_msg *wsio_msg_new(wsio_opcode op, const void *data, size_t len) {
  if ((op != WSIO_TEXT && op != WSIO_BINARY) || (!data && len)) return NULL;
  wsio_msg *m = malloc(sizeof *m + WS_FRAME_HEADER_MAX + len);
  if (!m) return NULL;
  m->sh.refs = 1;
  m->sh.release = msg_release;
  m->op = (uint8_t)op;
  m->ztried = 0;
  m->zframe = NULL;
  m->zframe_len = 0;
  m->payload_len = len;
  uint8_t hdr[WS_FRAME_HEADER_MAX];
  size_t hl = ws_frame_header_encode(hdr, 1, 0, op == WSIO_TEXT ? WS_OP_TEXT : WS_OP_BINARY, len, NULL);
  memcpy(m->frame, hdr, hl);
  if (len) memcpy(m->frame + hl, data, len);
  m->frame_len = hl + len;
  return m;
}

wsio_msg *wsio_msg_ref(wsio_msg *m) {
  if (m) net_shared_ref(&m->sh);
  return m;
}

void wsio_msg_unref(wsio_msg *m) {
  if (m) net_shared_unref(&m->sh);
}

static const uint8_t *msg_payload(const wsio_msg *m) { return m->frame + (m->frame_len - m->payload_len); }

/* The compressed frame for receivers in the SHARED model: one deflate per message, whatever the fan-out. */
static void msg_compress(wsio_msg *m, ws_deflate_shared *d) {
  m->ztried = 1;
  const uint8_t *z;
  long zl = ws_deflate_shared_message(d, msg_payload(m), m->payload_len, &z);
  if (zl < 0 || (size_t)zl >= m->payload_len) return; /* not worth it: everyone gets the plain frame */
  m->zframe = malloc(WS_FRAME_HEADER_MAX + (size_t)zl);
  if (!m->zframe) return;
  size_t hl = ws_frame_header_encode(m->zframe, 1, 1, m->op == WSIO_TEXT ? WS_OP_TEXT : WS_OP_BINARY,
                                     (uint64_t)zl, NULL);
  memcpy(m->zframe + hl, z, (size_t)zl);
  m->zframe_len = hl + (size_t)zl;
}

int wsio_ws_send_msg(wsio_ws *ws, wsio_msg *m, unsigned flags) {
  if (!ws || !m) return WSIO_EINVAL;
  int rc = send_admit(ws, flags);
  if (rc) return rc;
  api_endpoint *ep = ws->ep;
  int compress = conn_of(ws)->deflate && !(flags & WSIO_SEND_NOCOMPRESS) && m->payload_len >= ep->cfg.deflate_min_size;
  if (compress && (ep->cfg.deflate == WSIO_DEFLATE_CONTEXT || !ws_session_deflate_shared_ok(conn_of(ws)->sess))) {
    /* Per-connection context, or a peer that limited our window: the compressed bytes differ per receiver. */
    rc = ws_conn_send(conn_of(ws), m->op, msg_payload(m), m->payload_len, 1);
  } else {
    if (compress && !m->ztried) msg_compress(m, ep->server->deflate);
    /* By reference: the frame stays in cache across receivers and leaves in each one's gathered write. */
    if (compress && m->zframe) rc = ws_conn_send_shared(conn_of(ws), m->zframe, m->zframe_len, &m->sh);
    else rc = ws_conn_send_shared(conn_of(ws), m->frame, m->frame_len, &m->sh);
  }
  if (rc) return rc;
  send_done(ws);
  return 0;
}

int wsio_server_publish(wsio_server *s, const char *path, wsio_msg *m, const wsio_ws *except, unsigned flags) {
  if (!s || !path || !m) return WSIO_EINVAL;
  api_endpoint *ep = api_endpoint_find(s, path, strlen(path));
  if (!ep) return WSIO_ENOTFOUND;
  int n = 0;
  for (wsio_ws *ws = ep->members, *next; ws; ws = next) {
    next = ws->next;
    if (ws == except) continue;
    if (wsio_ws_send_msg(ws, m, flags) == 0) n++;
  }
  if (s->group && !(flags & WSIO_SEND_LOCAL))
    api_workers_publish(s, path, (wsio_opcode)m->op, msg_payload(m), m->payload_len, flags);
  return n;
}
