/* ws_conn: the WebSocket protocol driving a net_conn. */
#include "ws/conn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "ws/frame.h"
#include "wsio.h"

/* Seconds we wait for the peer's close frame after sending ours. */
#define WS_CLOSE_WAIT 5

static void sess_write(void *ud, const uint8_t *data, size_t len) { net_conn_write(((ws_conn *)ud)->conn, data, len); }

static void sess_message(void *ud, int opcode, uint8_t *data, size_t len) {
  ws_conn *wc = ud;
  if (wc->open) wc->h->on_message(wc, opcode, data, len);
}

static void sess_pong(void *ud, const uint8_t *data, size_t len) {
  (void)data;
  (void)len;
  ((ws_conn *)ud)->ping_sent = 0;
}

/* The session has queued the pong already. A peer that pings without reading its pongs would grow the output
 * without bound (the send limit is checked on messages only): past the limit it is closed like a slow reader. */
static void sess_ping(void *ud, const uint8_t *data, size_t len) {
  (void)data;
  (void)len;
  ws_conn *wc = ud;
  if (!ws_conn_over(wc) || wc->close_sent) return;
  log_warn("closing a WebSocket with 1008: %zu bytes unsent, over the send buffer limit of %zu (pings unread)",
           ws_conn_buffered(wc), wc->send_limit);
  ws_conn_close(wc, 1008, "send buffer limit");
}

static const ws_session_cbs conn_session_cbs = {
    .on_message = sess_message,
    .on_ping = sess_ping,
    .on_pong = sess_pong,
    .write = sess_write,
};

void ws_conn_feed(ws_conn *wc, uint8_t *data, size_t len) {
  net_conn *c = wc->conn;
  if (c->flags & (NET_CONN_CLOSING | NET_CONN_ENDING)) return;
  /* Any traffic proves the peer alive; the ping clock restarts unless we are waiting for a close. */
  if (!ws_session_close_sent(wc->sess)) c->idle = 0;
  wc->ping_sent = 0;
  int rc = ws_session_feed(wc->sess, data, len);
  if (rc != WS_SESSION_OK) wc->close_sent = 1; /* every result but OK follows a close frame of ours */
  if (rc != WS_SESSION_OK && !(c->flags & NET_CONN_CLOSING)) {
    if (rc > WS_SESSION_CLOSED && !wc->close_code) wc->close_code = (uint16_t)rc;
    net_conn_end(c);
  }
}

static void on_data(net_conn *c, uint8_t *data, size_t len) { ws_conn_feed(c->ud, data, len); }

static void on_timeout(net_conn *c) {
  ws_conn *wc = c->ud;
  if (wc->ping_sent || ws_session_close_sent(wc->sess)) {
    log_debug("closing a WebSocket: %s", wc->ping_sent ? "ping unanswered" : "no answer to our close");
    net_conn_close(c);
    return;
  }
  wc->ping_sent = 1;
  c->idle = 0;
  ws_session_ping(wc->sess, NULL, 0);
}

static void on_drain(net_conn *c) {
  ws_conn *wc = c->ud;
  if (wc->open && wc->h->on_drain) wc->h->on_drain(wc);
}

static void on_close(net_conn *c) {
  ws_conn *wc = c->ud;
  if (wc->open) {
    wc->open = 0;
    const char *reason = "";
    size_t reason_len = 0;
    unsigned code = ws_session_peer_code(wc->sess, &reason, &reason_len);
    if (!code) code = wc->close_code ? wc->close_code : 1006;
    wc->h->on_close(wc, code, reason, reason_len);
  }
  ws_session_release(wc->sess); /* it lives in this block */
  free(wc);
}

static const net_proto ws_conn_proto = {
    .on_data = on_data,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

ws_conn *ws_conn_upgrade(net_conn *c, const ws_conn_handler *h, size_t ext_size, const ws_handshake_result *res,
                         const ws_conn_params *p) {
  /* One block: the ws_conn, the handler's ext, then the session (at an offset aligned for any type). */
  size_t align = _Alignof(max_align_t);
  size_t sess_at = (sizeof(ws_conn) + ext_size + align - 1) / align * align;
  ws_conn *wc = calloc(1, sess_at + ws_session_size());
  if (!wc) {
    net_conn_close(c);
    return NULL;
  }
  wc->conn = c;
  wc->h = h;
  wc->send_limit = p->send_limit;
  wc->sess = ws_session_init((char *)wc + sess_at, &conn_session_cbs, wc, p->limits,
                             res && res->deflate ? &res->pmd : NULL, p->deflate);
  wc->open = 1;
  wc->deflate = (uint8_t)ws_session_deflate(wc->sess);
  wc->ping_s = (uint16_t)(p->ping_interval_s > UINT16_MAX ? UINT16_MAX : p->ping_interval_s);
  net_conn_set_proto(c, &ws_conn_proto, wc);
  c->idle = 0;
  c->timeout = wc->ping_s;
  return wc;
}

/* An uncompressed frame of prefix + data: header and payload copied once into the connection's output. */
static int send_plain(ws_conn *wc, int opcode, const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                      size_t len) {
  if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY) return WSIO_EINVAL;
  size_t n = prefix_len + len;
  int rc = 0;
  uint8_t *dst = net_conn_reserve(wc->conn, WS_FRAME_HEADER_MAX + n, &rc);
  if (!dst) return rc;
  size_t hn = ws_frame_header_encode(dst, 1, 0, opcode, n, NULL);
  if (prefix_len) memcpy(dst + hn, prefix, prefix_len);
  if (len) memcpy(dst + hn + prefix_len, data, len);
  net_conn_commit(wc->conn, hn + n);
  return 0;
}

int ws_conn_send(ws_conn *wc, int opcode, const uint8_t *data, size_t len, int compress) {
  if (!ws_conn_writable(wc)) return WSIO_ECLOSED;
  if (!wc->deflate || !compress || len < WS_DEFLATE_MIN_SIZE) return send_plain(wc, opcode, NULL, 0, data, len);
  return ws_session_send(wc->sess, opcode, data, len, compress);
}

int ws_conn_send_parts(ws_conn *wc, int opcode, const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                       size_t len) {
  if (!ws_conn_writable(wc)) return WSIO_ECLOSED;
  return send_plain(wc, opcode, prefix, prefix_len, data, len);
}

int ws_conn_send_frame(ws_conn *wc, const uint8_t *frame, size_t len) {
  if (!ws_conn_writable(wc)) return WSIO_ECLOSED;
  return net_conn_write(wc->conn, frame, len);
}

int ws_conn_send_shared(ws_conn *wc, const uint8_t *frame, size_t len, net_shared *owner) {
  if (!ws_conn_writable(wc)) return WSIO_ECLOSED;
  return net_conn_write_shared(wc->conn, frame, len, owner);
}

void ws_conn_want_drain(ws_conn *wc) { net_conn_set_over(wc->conn); }

int ws_conn_close(ws_conn *wc, unsigned code, const char *reason) {
  if (!ws_conn_writable(wc)) return WSIO_ECLOSED;
  if (code != 0 && !ws_close_code_valid(code)) return WSIO_EINVAL;
  int rc = ws_session_close(wc->sess, code, reason ? reason : "", reason ? strlen(reason) : 0);
  if (rc) return rc;
  wc->close_sent = 1;
  wc->close_code = code ? (uint16_t)code : 1005;
  wc->conn->timeout = WS_CLOSE_WAIT;
  wc->conn->idle = 0;
  return 0;
}

void ws_conn_abort(ws_conn *wc) { net_conn_close(wc->conn); }
