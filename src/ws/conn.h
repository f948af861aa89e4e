/*
 * ws_conn — a WebSocket on a network connection: binds a ws_session to a net_conn after the handshake, runs
 * keepalive pings and the bounded close wait from the loop's sweep, and reports whole messages, drain and
 * close to its handler. Used by the raw WebSocket endpoints and by the Engine.IO WebSocket transport.
 *
 * Memory: one allocation holds the ws_conn, `ext_size` bytes of the handler's own state right after it
 * (ws_conn_ext), and the ws_session, so a WebSocket costs its net_conn and this block.
 */
#ifndef WSIO_WS_CONN_H
#define WSIO_WS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "ws/handshake.h"
#include "ws/session.h"

typedef struct ws_conn ws_conn;

typedef struct ws_conn_handler {
  /* A whole message (WS_OP_TEXT or WS_OP_BINARY); data borrowed for the call. */
  void (*on_message)(ws_conn *wc, int opcode, uint8_t *data, size_t len);
  /* Output fell back to empty after passing the send limit. Optional. */
  void (*on_drain)(ws_conn *wc);
  /* Last call: the connection is gone. code: the peer's close code, else the one we sent, else 1006.
   * The block (and ext) is freed when this returns. */
  void (*on_close)(ws_conn *wc, unsigned code, const char *reason, size_t reason_len);
} ws_conn_handler;

typedef struct ws_conn_params {
  const ws_session_limits *limits; /* borrowed; must outlive the connection */
  ws_deflate_shared *deflate;      /* the loop's shared zlib streams */
  uint32_t ping_interval_s;        /* keepalive ping after this many silent seconds; 0: none */
  size_t send_limit;               /* unsent bytes past which ws_conn_over() is true */
} ws_conn_params;

struct ws_conn {
  net_conn *conn;
  ws_session *sess;
  const ws_conn_handler *h;
  size_t send_limit;
  uint16_t close_code;  /* what we sent, if we closed first */
  uint16_t ping_s;
  uint8_t ping_sent;    /* a keepalive ping is unanswered */
  uint8_t open;         /* until on_close */
  uint8_t close_sent;   /* the session has written a close frame: mirrored here so that a send (a broadcast
                           touches every receiver) checks this block and the net_conn only */
  uint8_t deflate;      /* permessage-deflate was negotiated */
};

/* Takes over c (which has sent the 101 response) as a WebSocket. Returns the connection, or NULL after
 * closing c on ENOMEM. Feed bytes that followed the handshake with ws_conn_feed once the caller is ready. */
ws_conn *ws_conn_upgrade(net_conn *c, const ws_conn_handler *h, size_t ext_size, const ws_handshake_result *res,
                         const ws_conn_params *p);
static inline void *ws_conn_ext(ws_conn *wc) { return wc + 1; }
static inline ws_conn *ws_conn_from_ext(void *ext) { return (ws_conn *)ext - 1; }

/* Feeds received bytes (as if read from the socket). */
void ws_conn_feed(ws_conn *wc, uint8_t *data, size_t len);

/* 1 while messages may be sent. */
static inline int ws_conn_writable(const ws_conn *wc) {
  return wc->open && !wc->close_sent && !(wc->conn->flags & (NET_CONN_CLOSING | NET_CONN_ENDING));
}
/* Bytes queued and unsent. */
static inline size_t ws_conn_buffered(const ws_conn *wc) { return net_conn_buffered(wc->conn); }
/* 1 when the send buffer is past its limit. */
static inline int ws_conn_over(const ws_conn *wc) { return net_conn_buffered(wc->conn) > wc->send_limit; }

/* Encodes and queues one message. Returns 0, WSIO_ECLOSED, WSIO_ENOMEM. */
int ws_conn_send(ws_conn *wc, int opcode, const uint8_t *data, size_t len, int compress);
/* Queues one uncompressed message whose payload is prefix then data (an Engine.IO packet type before its
 * data), without joining them first. Same returns, and WSIO_EINVAL for a bad opcode. */
int ws_conn_send_parts(ws_conn *wc, int opcode, const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                       size_t len);
/* Queues a pre-encoded frame (a broadcast's shared bytes). Same returns. */
int ws_conn_send_frame(ws_conn *wc, const uint8_t *frame, size_t len);
/* Queues a pre-encoded frame by reference (net_conn_write_shared): owner is held until it is written. Same
 * returns. */
int ws_conn_send_shared(ws_conn *wc, const uint8_t *frame, size_t len, net_shared *owner);
/* Arms on_drain for when the buffer empties (after a send left it over the limit). */
void ws_conn_want_drain(ws_conn *wc);

/* Starts the close handshake (code 0: none). The peer's answer, or 5 s, ends the connection.
 * Returns 0, WSIO_ECLOSED, WSIO_EINVAL (code not allowed on the wire). */
int ws_conn_close(ws_conn *wc, unsigned code, const char *reason);
/* Drops the connection at once (no close frame). on_close follows with 1006 unless a code was exchanged. */
void ws_conn_abort(ws_conn *wc);

#endif
