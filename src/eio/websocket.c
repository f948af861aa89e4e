/* The WebSocket transport: sessions opened on WebSocket, and the upgrade of polling sessions. */
#include <stdlib.h>
#include <string.h>

#include "eio/internal.h"
#include "http/response.h"
#include "util/log.h"
#include "ws/frame.h"
#include "wsio.h"

/* Messages at least this large are compressed when deflate is on (socket.io's default threshold). */
#define EIO_DEFLATE_THRESHOLD 1024

/* A frame of one type byte then the data: uncompressed, the two go into the frame without being joined
 * first; to be compressed, they are joined in the scratch buffer. */
static int send_typed(eio_server *srv, ws_conn *wc, int op, uint8_t type, const uint8_t *data, size_t len) {
  if (len + 1 < EIO_DEFLATE_THRESHOLD || !wc->deflate) return ws_conn_send_parts(wc, op, &type, 1, data, len);
  buf *b = &srv->scratch;
  b->len = 0;
  int rc = buf_append(b, &type, 1) || buf_append(b, data, len) ? WSIO_ENOMEM : 0;
  if (rc == 0) rc = ws_conn_send(wc, op, b->data, b->len, 1);
  buf_reset(b, 65536);
  return rc;
}

static int send_on(eio_server *srv, ws_conn *wc, int protocol, const eio_packet *p) {
  if ((unsigned)p->type > EIO_NOOP || (!p->data && p->len)) return WSIO_EINVAL;
  /* v3 binary messages carry the MESSAGE type byte before the data; v4 ones are the data alone. */
  if (p->binary && protocol == 3) return send_typed(srv, wc, WS_OP_BINARY, EIO_MESSAGE, p->data, p->len);
  if (p->binary) return ws_conn_send(wc, WS_OP_BINARY, p->data, p->len, p->len >= EIO_DEFLATE_THRESHOLD);
  return send_typed(srv, wc, WS_OP_TEXT, (uint8_t)('0' + p->type), p->data, p->len);
}

int eio_ws_send_packet(eio_socket *s, const eio_packet *p) {
  if (!s->ws) return WSIO_ECLOSED;
  return send_on(s->srv, s->ws, s->protocol, p);
}

void eio_ws_release(eio_socket *s, unsigned code) {
  ws_conn *both[2] = {s->probe, s->ws};
  s->probe = s->ws = NULL;
  for (int i = 0; i < 2; i++) {
    if (!both[i]) continue;
    ((eio_ws *)ws_conn_ext(both[i]))->sock = NULL;
    if (ws_conn_close(both[i], code, NULL) != 0) ws_conn_abort(both[i]);
  }
}

static void finish_upgrade(eio_socket *s) {
  eio_server *srv = s->srv;
  eio_queue_remove(&srv->upgrades, s);
  eio_release_get_with_noop(s);
  s->probed = 0;
  s->transport = EIO_WEBSOCKET;
  s->ws = s->probe;
  s->probe = NULL;
  /* What was queued for polling goes out on the WebSocket, in order. */
  if (s->out.len) {
    buf pending = s->out;
    s->out = (buf){0};
    eio_payload_iter it;
    eio_packet p;
    eio_payload_iter_init(&it, pending.data, pending.len, 0, 0);
    while (eio_payload_next(&it, &srv->bin, &p) == 1) send_on(srv, s->ws, s->protocol, &p);
    buf_free(&pending);
  }
  log_debug("engine.io %s: upgraded to websocket", s->sid);
  if (s->state == EIO_S_CLOSING) eio_session_end(s, NULL); /* what was queued went out first */
  else if (srv->h->on_upgrade) srv->h->on_upgrade(s);
}

static void h_message(ws_conn *wc, int opcode, uint8_t *data, size_t len) {
  eio_ws *x = ws_conn_ext(wc);
  eio_socket *s = x->sock;
  /* A closing session still takes its probe's upgrade, to deliver what is queued (see eio_socket_close). */
  if (!s || s->state == EIO_S_CLOSED || (s->state == EIO_S_CLOSING && wc != s->probe)) return;
  eio_server *srv = x->srv;
  eio_packet p;
  int rc = s->protocol == 3 ? eio_v3_ws_decode(data, len, opcode == WS_OP_BINARY, &srv->bin, &p)
                            : eio_ws_decode(data, len, opcode == WS_OP_BINARY, &srv->bin, &p);
  if (rc != 0) {
    eio_session_end(s, "parse error");
    return;
  }
  if (wc == s->ws) {
    eio_handle_packet(s, &p);
    return;
  }
  /* The probe: ping "probe" -> pong "probe"; then the client's UPGRADE switches the session over. */
  if (p.type == EIO_PING && p.len == 5 && memcmp(p.data, "probe", 5) == 0) {
    eio_packet pong = {.type = EIO_PONG, .data = (const uint8_t *)"probe", .len = 5};
    send_on(srv, wc, s->protocol, &pong);
    /* The client now pauses polling: it waits for its GET to end, so each GET gets a NOOP at once. */
    s->probed = 1;
    eio_release_get_with_noop(s);
  } else if (p.type == EIO_UPGRADE) {
    finish_upgrade(s);
  } else if (p.type != EIO_NOOP) {
    log_debug("engine.io %s: unexpected packet %d during upgrade", s->sid, p.type);
    eio_queue_remove(&srv->upgrades, s);
    s->probe = NULL;
    s->probed = 0;
    x->sock = NULL;
    ws_conn_close(wc, 1002, NULL);
  }
}

static void h_close(ws_conn *wc, unsigned code, const char *reason, size_t reason_len) {
  (void)code;
  (void)reason;
  (void)reason_len;
  eio_ws *x = ws_conn_ext(wc);
  eio_socket *s = x->sock;
  if (!s) return;
  x->sock = NULL;
  if (wc == s->probe) {
    s->probe = NULL;
    s->probed = 0;
    eio_queue_remove(&s->srv->upgrades, s);
    return;
  }
  if (wc == s->ws) {
    s->ws = NULL;
    eio_session_end(s, "transport close");
  }
}

static const ws_conn_handler eio_ws_handler = {
    .on_message = h_message,
    .on_close = h_close,
};

void eio_ws_request(eio_server *srv, http_conn *hc, const http_request *req, const eio_query *q, uint8_t *rest,
                    size_t rest_len) {
  eio_socket *s = NULL;
  int refuse = 0;
  if (q->has_sid) {
    s = eio_server_find(srv, q->sid);
    if (!s || s->state != EIO_S_OPEN) {
      eio_reply_error(srv, hc, req, EIO_ERR_UNKNOWN_SID);
      return;
    }
    if (s->protocol != (q->eio == 4 ? 4 : 3)) { /* engine.io's PROTOCOL_MISMATCH */
      eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
      return;
    }
    if (srv->cfg.no_upgrades) {
      eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
      return;
    }
    /* A second upgrade of a session that is upgrading or upgraded: as the reference server, complete the
     * handshake and close that WebSocket at once; the session keeps its transport. */
    if (s->transport != EIO_POLLING || s->probe) {
      refuse = 1;
      s = NULL;
    }
  }
  if (!req->upgrade || !ws_handshake_is_upgrade(req)) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    return;
  }
  ws_handshake_result res;
  char resp[1024];
  int st = ws_handshake_accept(req, &srv->ws_hs, &res, resp, sizeof resp);
  if (st != 0) {
    if (st == 403) srv->loop->stats.origin_refused++; /* counted in wsio_stats.origin_refused */
    http_conn_respond(hc, resp, strlen(resp), 0);
    return;
  }
  char remote[80] = "";
  net_conn_peer(http_conn_net(hc), remote, sizeof remote);
  buf extra = {0};
  eio_headers_fill(srv, hc, req, remote, !s && !refuse, &extra);
  net_conn *c = http_conn_detach(hc);
  if (extra.len) { /* the hook's lines go before the 101's blank line */
    size_t n = strlen(resp) - 2;
    net_conn_write(c, resp, n);
    net_conn_write(c, extra.data, extra.len);
    net_conn_write(c, "\r\n", 2);
  } else {
    net_conn_write(c, resp, strlen(resp));
  }
  buf_free(&extra);
  ws_conn *wc = ws_conn_upgrade(c, &eio_ws_handler, sizeof(eio_ws), &res, &srv->ws_params);
  if (!wc) return;
  eio_ws *x = ws_conn_ext(wc);
  x->srv = srv;
  if (refuse) {
    ws_conn_close(wc, 0, NULL); /* x->sock stays NULL: nothing it sends reaches a session */
    return;
  }
  if (s) {
    s->probe = wc;
    x->sock = s;
    eio_queue_push(srv, &srv->upgrades, s, eio_now(srv) + srv->cfg.upgrade_timeout_ms);
  } else {
    s = eio_session_new(srv, EIO_WEBSOCKET);
    if (!s) {
      ws_conn_close(wc, 1011, NULL);
      return;
    }
    s->ws = wc;
    x->sock = s;
    if (q->eio != 4) s->protocol = 3;
    buf *b = &srv->scratch;
    b->len = 0;
    buf_append(b, "0", 1);
    eio_open_json(b, s->sid, 0, srv->cfg.ping_interval_ms, srv->cfg.ping_timeout_ms, srv->cfg.max_payload);
    ws_conn_send(wc, WS_OP_TEXT, b->data, b->len, 0);
    srv->traffic.packets_out++;
    srv->traffic.bytes_out += b->len - 1;
    eio_session_opened(s, req, remote);
  }
  if (rest_len) ws_conn_feed(wc, rest, rest_len);
}
