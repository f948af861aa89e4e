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
  ep->hs.subprotocols = ep->subprotocols;
  ep->hs.origins = ep->origins;
  ep->hs.deflate_mode = (int)ep->cfg.deflate;
  s->endpoints[s->nendpoints++] = ep;
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

/* ---- session callbacks ---- */

static void sess_write(void *ud, const uint8_t *data, size_t len) {
  wsio_ws *ws = ud;
  net_conn_write(ws->conn, data, len);
}

static void sess_message(void *ud, int opcode, uint8_t *data, size_t len) {
  wsio_ws *ws = ud;
  ws->ep->server->stats.messages_in++;
  if (ws->ep->h.on_message) ws->ep->h.on_message(ws, opcode == WS_OP_TEXT ? WSIO_TEXT : WSIO_BINARY, data, len);
}

static void sess_pong(void *ud, const uint8_t *data, size_t len) {
  (void)data;
  (void)len;
  ((wsio_ws *)ud)->ping_sent = 0;
}

static const ws_session_cbs api_session_cbs = {
    .on_message = sess_message,
    .on_pong = sess_pong,
    .write = sess_write,
};

/* ---- the WebSocket protocol on a net_conn ---- */

static void ws_on_data(net_conn *c, uint8_t *data, size_t len) {
  wsio_ws *ws = c->ud;
  c->idle = 0;
  ws->ping_sent = 0; /* any traffic proves the peer alive */
  int rc = ws_session_feed(ws->sess, data, len);
  if (rc != WS_SESSION_OK && !(c->flags & NET_CONN_CLOSING)) {
    if (rc > WS_SESSION_CLOSED && !ws->close_code) ws->close_code = (uint16_t)rc;
    net_conn_end(c);
  }
}

static void ws_on_timeout(net_conn *c) {
  wsio_ws *ws = c->ud;
  if (ws->ping_sent || ws_session_close_sent(ws->sess)) {
    log_debug("closing a WebSocket that did not answer a ping");
    net_conn_close(c);
    return;
  }
  ws->ping_sent = 1;
  c->idle = 0;
  ws_session_ping(ws->sess, NULL, 0);
}

static void ws_on_drain(net_conn *c) {
  wsio_ws *ws = c->ud;
  if (ws->open && ws->ep->h.on_drain) ws->ep->h.on_drain(ws);
}

static void ws_on_close(net_conn *c) {
  wsio_ws *ws = c->ud;
  api_endpoint *ep = ws->ep;
  wsio_server *s = ep->server;
  if (ws->open) {
    ws->open = 0;
    const char *reason = "";
    size_t reason_len = 0;
    unsigned code = ws_session_peer_code(ws->sess, &reason, &reason_len);
    if (!code) code = ws->close_code ? ws->close_code : 1006;
    if (ep->h.on_close) ep->h.on_close(ws, (int)code, reason, reason_len);
  }
  if (ws->prev) ws->prev->next = ws->next;
  else ep->members = ws->next;
  if (ws->next) ws->next->prev = ws->prev;
  ep->count--;
  s->stats.websockets--;
  ws_session_free(ws->sess);
  free(ws->protocol);
  free(ws->remote);
  free(ws);
}

static const net_proto api_ws_proto = {
    .on_data = ws_on_data,
    .on_drain = ws_on_drain,
    .on_timeout = ws_on_timeout,
    .on_close = ws_on_close,
};

void api_ws_upgrade(net_conn *c, api_endpoint *ep, const ws_handshake_result *res, uint8_t *rest, size_t rest_len) {
  wsio_server *s = ep->server;
  wsio_ws *ws = calloc(1, sizeof *ws);
  if (!ws) {
    net_conn_close(c);
    return;
  }
  ws->conn = c;
  ws->ep = ep;
  ws->sess = ws_session_new(&api_session_cbs, ws, &ep->limits, res->deflate ? &res->pmd : NULL, s->deflate);
  if (!ws->sess || (res->protocol[0] && !(ws->protocol = strdup(res->protocol)))) {
    ws_session_free(ws->sess);
    free(ws);
    net_conn_close(c);
    return;
  }
  ws->next = ep->members;
  if (ep->members) ep->members->prev = ws;
  ep->members = ws;
  ep->count++;
  s->stats.websockets++;
  net_conn_set_proto(c, &api_ws_proto, ws);
  c->idle = 0;
  c->timeout = (uint16_t)((ep->cfg.ping_interval_ms + 999) / 1000);
  ws->open = 1;
  if (ep->h.on_open) ep->h.on_open(ws);
  if (rest_len && ws->open && !(c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING))) ws_on_data(c, rest, rest_len);
}

void api_ws_shutdown_all(wsio_server *s) {
  for (int i = 0; i < s->nendpoints; i++) {
    for (wsio_ws *ws = s->endpoints[i]->members; ws; ws = ws->next) {
      if (ws->conn->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) continue;
      wsio_ws_close(ws, 1001, "server shutting down");
    }
  }
}

/* ---- sending ---- */

/* Backpressure check before a send: over the limit, a droppable message is dropped, anything else closes
 * the connection with 1008. A single message larger than the limit still goes to an empty buffer. */
static int send_admit(wsio_ws *ws, unsigned flags) {
  net_conn *c = ws->conn;
  if (!ws->open || (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) || ws_session_close_sent(ws->sess))
    return WSIO_ECLOSED;
  size_t buffered = net_conn_buffered(c);
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
  if (net_conn_buffered(ws->conn) > ws->ep->cfg.send_buffer_limit) net_conn_set_over(ws->conn);
}

int wsio_ws_send(wsio_ws *ws, wsio_opcode op, const void *data, size_t len, unsigned flags) {
  if (!ws || (op != WSIO_TEXT && op != WSIO_BINARY) || (!data && len)) return WSIO_EINVAL;
  int rc = send_admit(ws, flags);
  if (rc) return rc;
  int compress = !(flags & WSIO_SEND_NOCOMPRESS) && len >= ws->ep->cfg.deflate_min_size;
  rc = ws_session_send(ws->sess, op == WSIO_TEXT ? WS_OP_TEXT : WS_OP_BINARY, data, len, compress);
  if (rc) return rc;
  send_done(ws);
  return 0;
}

int wsio_ws_close(wsio_ws *ws, int code, const char *reason) {
  if (!ws) return WSIO_EINVAL;
  net_conn *c = ws->conn;
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING) || ws_session_close_sent(ws->sess)) return WSIO_ECLOSED;
  if (code != 0 && !ws_close_code_valid((unsigned)code)) return WSIO_EINVAL;
  size_t rlen = reason ? strlen(reason) : 0;
  int rc = ws_session_close(ws->sess, (unsigned)code, reason ? reason : "", rlen);
  if (rc) return rc;
  ws->close_code = code ? (uint16_t)code : 1005;
  /* Wait (bounded) for the peer's close frame; the session reports CLOSED when it comes. */
  c->timeout = 5;
  c->idle = 0;
  return 0;
}

size_t wsio_ws_buffered(const wsio_ws *ws) { return ws ? net_conn_buffered(ws->conn) : 0; }
void wsio_ws_set_data(wsio_ws *ws, void *data) { ws->data = data; }
void *wsio_ws_data(const wsio_ws *ws) { return ws->data; }
void *wsio_ws_endpoint_user(const wsio_ws *ws) { return ws->ep->cfg.user; }
const char *wsio_ws_protocol(const wsio_ws *ws) { return ws->protocol ? ws->protocol : ""; }

const char *wsio_ws_remote(const wsio_ws *ws) {
  wsio_ws *m = (wsio_ws *)ws;
  if (!m->remote) {
    char tmp[80];
    if (net_conn_peer(ws->conn, tmp, sizeof tmp) != 0) return "?";
    m->remote = strdup(tmp);
    if (!m->remote) return "?";
  }
  return m->remote;
}

/* ---- publish ---- */

struct wsio_msg {
  int refs;
  uint8_t op;
  uint8_t ztried;              /* the compressed form was attempted */
  size_t payload_len;
  size_t frame_len;            /* header + payload */
  uint8_t *zframe;             /* compressed frame, made on first use by a SHARED-deflate receiver */
  size_t zframe_len;
  uint8_t frame[];             /* header then payload */
};

wsio_msg *wsio_msg_new(wsio_opcode op, const void *data, size_t len) {
  if ((op != WSIO_TEXT && op != WSIO_BINARY) || (!data && len)) return NULL;
  wsio_msg *m = malloc(sizeof *m + WS_FRAME_HEADER_MAX + len);
  if (!m) return NULL;
  m->refs = 1;
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
  if (m) m->refs++;
  return m;
}

void wsio_msg_unref(wsio_msg *m) {
  if (!m || --m->refs > 0) return;
  free(m->zframe);
  free(m);
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
  int compress = !(flags & WSIO_SEND_NOCOMPRESS) && m->payload_len >= ep->cfg.deflate_min_size &&
                 ws_session_deflate(ws->sess);
  if (compress && ep->cfg.deflate == WSIO_DEFLATE_CONTEXT) {
    /* Per-connection context: the compressed bytes differ per receiver. */
    rc = ws_session_send(ws->sess, m->op, msg_payload(m), m->payload_len, 1);
  } else {
    if (compress && !m->ztried) msg_compress(m, ep->server->deflate);
    if (compress && m->zframe) rc = net_conn_write(ws->conn, m->zframe, m->zframe_len);
    else rc = net_conn_write(ws->conn, m->frame, m->frame_len);
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
  return n;
}
