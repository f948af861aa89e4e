/*
 * ws_session — the WebSocket message layer of one connection, sans-I/O.
 *
 * The caller feeds received bytes in with ws_session_feed(); the session parses frames, unmasks, joins
 * fragments, inflates, validates UTF-8 and enforces the limits, and calls back with whole messages. Bytes the
 * session wants on the wire (pongs, close frames, messages sent with ws_session_send) go out through
 * cbs->write. It never touches a socket and never frees itself from a callback.
 *
 * Memory: an idle session is the struct alone (~64 bytes). Buffers for a partial message, a partial control
 * frame, or zlib streams are allocated when first needed and released when the message completes.
 */
#ifndef WSIO_WS_SESSION_H
#define WSIO_WS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "ws/deflate.h"

typedef struct ws_session ws_session;

typedef struct ws_session_cbs {
  /* A whole data message: opcode WS_OP_TEXT (valid UTF-8) or WS_OP_BINARY. data is borrowed, may point into
   * the buffer given to feed(), and may be modified by the callee. */
  void (*on_message)(void *ud, int opcode, uint8_t *data, size_t len);
  /* A ping arrived; the session has already written the pong. Optional. */
  void (*on_ping)(void *ud, const uint8_t *data, size_t len);
  /* A pong arrived. Optional. */
  void (*on_pong)(void *ud, const uint8_t *data, size_t len);
  /* Bytes to send, in order. data is borrowed: copy it. Two calls per frame are allowed (header, payload). */
  void (*write)(void *ud, const uint8_t *data, size_t len);
} ws_session_cbs;

typedef struct ws_session_limits {
  uint64_t max_message; /* largest message after inflate; past it: close 1009 */
} ws_session_limits;

/* Results of ws_session_feed(). */
enum {
  WS_SESSION_OK = 0,        /* keep reading */
  WS_SESSION_CLOSED = 1     /* the close handshake is done (peer's close answered, or our close answered):
                               flush what was written and close the TCP connection */
};

/* Creates a session. cbs and limits are borrowed and must outlive the session (they are per endpoint).
 * pmd: negotiated permessage-deflate parameters, or NULL when not negotiated; copied. Returns NULL on ENOMEM. */
ws_session *ws_session_new(const ws_session_cbs *cbs, void *ud, const ws_session_limits *limits,
                           const ws_pmd_params *pmd, ws_deflate_shared *shared);
void ws_session_free(ws_session *s);
/* The same in memory the caller provides (ws_session_size() bytes, aligned for any type), so a session can
 * live in its connection's block: init never fails; release frees what the session allocated, not mem. */
size_t ws_session_size(void);
ws_session *ws_session_init(void *mem, const ws_session_cbs *cbs, void *ud, const ws_session_limits *limits,
                            const ws_pmd_params *pmd, ws_deflate_shared *shared);
void ws_session_release(ws_session *s);

/* Processes len received bytes (modified in place by unmasking). Any split of the stream is accepted.
 * Returns WS_SESSION_OK, WS_SESSION_CLOSED, or a close code > 1000 (1002 protocol error, 1007 invalid UTF-8,
 * 1009 too big, 1011 internal) after the session has written a close frame with that code: the caller then
 * flushes and closes the TCP connection. After anything but OK, further feeds are ignored. */
int ws_session_feed(ws_session *s, uint8_t *data, size_t len);

/* Messages we send shorter than this go out uncompressed: deflate would barely shrink them. */
#define WS_DEFLATE_MIN_SIZE 64

/* Encodes and writes one data message (opcode WS_OP_TEXT or WS_OP_BINARY) through cbs->write, compressed
 * when deflate was negotiated, compress is set and len >= min size. Returns 0, or WSIO_ECLOSED when a close
 * frame was already sent, or WSIO_ENOMEM. */
int ws_session_send(ws_session *s, int opcode, const uint8_t *data, size_t len, int compress);

/* Writes a ping (len <= 125). Returns 0 or WSIO_ECLOSED / WSIO_EINVAL. */
int ws_session_ping(ws_session *s, const uint8_t *data, size_t len);

/* Starts the close handshake: writes a close frame with code (0: none) and reason (<= 123 bytes, truncated).
 * Returns 0, WSIO_EINVAL for a code ws_close_code_valid() rejects, or WSIO_ECLOSED if a close was already sent. */
int ws_session_close(ws_session *s, unsigned code, const char *reason, size_t reason_len);

/* 1 once a close frame has been sent. */
int ws_session_close_sent(const ws_session *s);
/* The close code the peer sent (1005 if its close had none, 0 if it sent no close), and its reason. */
unsigned ws_session_peer_code(const ws_session *s, const char **reason, size_t *reason_len);
/* 1 when deflate was negotiated for this session. */
int ws_session_deflate(const ws_session *s);
/* 1 when deflate was negotiated and our compressor may use the full 15-bit window, so the loop's shared
 * compressed bytes (made with that window) are valid for this peer. */
int ws_session_deflate_shared_ok(const ws_session *s);

#endif
