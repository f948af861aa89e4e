/*
 * wsio.h — the one public header of wsio, a realtime server library in C.
 *
 * Conventions that hold for every function below:
 *   - Errors are negative WSIO_E* codes; wsio_strerror() names them. 0 (or a count) is success.
 *   - Ownership: the caller owns what it passes in (wsio copies what it keeps). What wsio hands to a callback
 *     is borrowed for the duration of that callback unless a *_ref function is called.
 *   - Threading: a wsio_server and everything it hands out belong to the thread that runs it. The only
 *     functions safe to call from another thread are marked "thread-safe".
 */
#ifndef WSIO_H
#define WSIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WSIO_VERSION_MAJOR 0
#define WSIO_VERSION_MINOR 1
#define WSIO_VERSION_PATCH 0

/* Returns the library's version as "MAJOR.MINOR.PATCH"; a static string. */
const char *wsio_version(void);

/* ---- Errors ---------------------------------------------------------------------------------------- */

#define WSIO_ERRNO_MAP(X)                                                     \
  X(INVAL, -1, "invalid argument")                                            \
  X(NOMEM, -2, "out of memory")                                               \
  X(CLOSED, -3, "connection is closed or closing")                            \
  X(TOOBIG, -4, "message larger than the configured limit")                   \
  X(BACKPRESSURE, -5, "connection's send buffer is over its limit")           \
  X(DROPPED, -6, "droppable message dropped: send buffer over its limit")     \
  X(ADDR, -7, "cannot resolve or bind the address")                           \
  X(TLS, -8, "TLS setup failed")                                              \
  X(IO, -9, "I/O error")                                                      \
  X(PROTO, -10, "protocol error")                                             \
  X(EXISTS, -11, "already exists")                                            \
  X(NOTFOUND, -12, "not found")                                               \
  X(LIMIT, -13, "a configured limit was reached")

enum {
#define WSIO_ERR_ENUM_(name, code, msg) WSIO_E##name = code,
  WSIO_ERRNO_MAP(WSIO_ERR_ENUM_)
#undef WSIO_ERR_ENUM_
};

/* Returns a static description of a WSIO_E* code (or of a negative libuv code). */
const char *wsio_strerror(int err);

/* ---- Server ---------------------------------------------------------------------------------------- */

typedef struct wsio_server wsio_server;
typedef struct wsio_ws wsio_ws;
typedef struct wsio_msg wsio_msg;

/* permessage-deflate compressor model. */
typedef enum wsio_deflate_mode {
  WSIO_DEFLATE_OFF = 0,
  /* One compressor and one decompressor per loop, reset per message (no context takeover either way). No
   * zlib state per connection, and a broadcast is compressed once for every receiver. The default. */
  WSIO_DEFLATE_SHARED = 1,
  /* Per-connection zlib streams with context takeover: better ratio on similar messages, but about 300 KiB
   * of zlib state per active connection at the default window. */
  WSIO_DEFLATE_CONTEXT = 2
} wsio_deflate_mode;

typedef struct wsio_server_config {
  size_t max_connections;        /* 0: default 100000. Past it new connections are closed at once. */
  uint32_t handshake_timeout_ms; /* 0: default 10000. HTTP request or WS handshake must finish in it. */
  uint32_t idle_timeout_ms;      /* 0: default 120000 for plain HTTP keep-alive connections. */
  size_t max_header_bytes;       /* 0: default 16384 (431 past it); request line limit is 8192 (414). */
  size_t max_body_bytes;         /* 0: default 1 MiB (413 past it). */
  const char *web_root;          /* static files; NULL: none (404). */
  const char *tls_cert;          /* PEM paths; both set: every listener speaks TLS. */
  const char *tls_key;
  int log_level;                 /* 0 error, 1 warn, 2 info (default), 3 debug. */
} wsio_server_config;

/* Creates a server on its own libuv loop. config may be NULL for defaults; it is copied.
 * Returns NULL on allocation failure or bad TLS files (the reason is logged). */
wsio_server *wsio_server_new(const wsio_server_config *config);

/* Starts listening on host:port (IPv4 or IPv6 literal or name). May be called several times.
 * Returns 0 or WSIO_EADDR / a negative libuv code. */
int wsio_server_listen(wsio_server *s, const char *host, int port);

/* The port of the first listener (useful after listening on port 0), or a negative code. */
int wsio_server_port(const wsio_server *s);

/* Runs the loop until wsio_server_stop() or a SIGINT/SIGTERM (when handle_signals is set). Returns 0. */
int wsio_server_run(wsio_server *s, int handle_signals);

/* Graceful stop: stops accepting, sends close 1001 to every WebSocket, lets them drain (bounded by
 * timeout_ms), then makes wsio_server_run() return. Thread-safe. */
void wsio_server_stop(wsio_server *s, uint32_t timeout_ms);

/* Frees the server. Only after wsio_server_run() has returned, or if it never ran. */
void wsio_server_free(wsio_server *s);

/* ---- Raw WebSocket endpoints ---------------------------------------------------------------------- */

typedef enum wsio_opcode { WSIO_TEXT = 1, WSIO_BINARY = 2 } wsio_opcode;

typedef struct wsio_ws_handlers {
  /* A client completed the handshake. Return 0 to accept; the connection is open when it is called. */
  void (*on_open)(wsio_ws *ws);
  /* A whole message (fragments joined, inflated, UTF-8 checked for text). data is borrowed. */
  void (*on_message)(wsio_ws *ws, wsio_opcode op, const void *data, size_t len);
  /* The send buffer fell back under the limit after having been over it. Optional. */
  void (*on_drain)(wsio_ws *ws);
  /* The connection is gone. code is the close code received or sent (1006 if none). After this returns,
   * ws is invalid. */
  void (*on_close)(wsio_ws *ws, int code, const char *reason, size_t reason_len);
} wsio_ws_handlers;

typedef struct wsio_ws_config {
  size_t max_message_size;   /* 0: default 1 MiB; the inflated size counts. Larger → close 1009. */
  size_t send_buffer_limit;  /* 0: default 1 MiB of unsent bytes per connection; see wsio_ws_send(). */
  uint32_t ping_interval_ms; /* 0: default 30000; keepalive pings; a peer silent for two intervals is closed. */
  wsio_deflate_mode deflate; /* permessage-deflate offered by clients is accepted in this mode. */
  size_t deflate_min_size;   /* 0: default 64; smaller messages are sent uncompressed. */
  const char *subprotocols;  /* comma list in order of preference, or NULL. */
  const char *origins;       /* comma list of allowed Origin values, or NULL to allow any. */
  void *user;                /* handed back by wsio_ws_endpoint_user(). */
} wsio_ws_config;

/* Serves WebSocket upgrades on path (exact match). config may be NULL. Returns 0, WSIO_EEXISTS, WSIO_EINVAL. */
int wsio_server_ws(wsio_server *s, const char *path, const wsio_ws_handlers *h, const wsio_ws_config *config);

/* Send flags. */
#define WSIO_SEND_DROPPABLE 1u  /* over the send buffer limit: drop and count instead of closing with 1008 */
#define WSIO_SEND_NOCOMPRESS 2u

/* Sends one message. data is copied. Returns 0; WSIO_ECLOSED; WSIO_EDROPPED for a droppable message over the
 * limit; WSIO_EBACKPRESSURE when the buffer is over the limit (the connection is then closed with 1008 and a
 * log line: a slow reader never grows server memory without bound). */
int wsio_ws_send(wsio_ws *ws, wsio_opcode op, const void *data, size_t len, unsigned flags);

/* Starts the close handshake with code (1000..4999, not reserved) and an optional reason (<= 123 bytes). */
int wsio_ws_close(wsio_ws *ws, int code, const char *reason);

/* Bytes queued for the connection and not yet written to the socket. */
size_t wsio_ws_buffered(const wsio_ws *ws);

void wsio_ws_set_data(wsio_ws *ws, void *data);
void *wsio_ws_data(const wsio_ws *ws);
/* The endpoint's wsio_ws_config.user. */
void *wsio_ws_endpoint_user(const wsio_ws *ws);
/* The negotiated subprotocol or "" (borrowed, lives as long as ws). */
const char *wsio_ws_protocol(const wsio_ws *ws);
/* The peer address as text, e.g. "127.0.0.1:51234" (borrowed, lives as long as ws). */
const char *wsio_ws_remote(const wsio_ws *ws);

/* ---- Publish: encode once, send the same bytes to many ------------------------------------------ */

/* Encodes a message once (frame header and payload, and its compressed form when first needed).
 * Returns a reference the caller owns, or NULL on allocation failure. */
wsio_msg *wsio_msg_new(wsio_opcode op, const void *data, size_t len);
wsio_msg *wsio_msg_ref(wsio_msg *m);
void wsio_msg_unref(wsio_msg *m);

/* Queues m to ws without copying it. Same return values as wsio_ws_send(). */
int wsio_ws_send_msg(wsio_ws *ws, wsio_msg *m, unsigned flags);

/* Sends m to every open connection of the endpoint at path, except `except` (may be NULL).
 * Returns the number of connections it was queued to, or a negative code. */
int wsio_server_publish(wsio_server *s, const char *path, wsio_msg *m, const wsio_ws *except, unsigned flags);

/* ---- Statistics ---------------------------------------------------------------------------------- */

typedef struct wsio_stats {
  uint64_t connections;       /* open TCP connections now */
  uint64_t websockets;        /* open WebSocket connections now */
  uint64_t messages_in, messages_out;
  uint64_t bytes_in, bytes_out;
  uint64_t dropped;           /* droppable messages dropped for backpressure */
  uint64_t slow_closes;       /* connections closed with 1008 for backpressure */
  uint64_t rejected;          /* connections refused at max_connections */
} wsio_stats;

void wsio_server_stats(const wsio_server *s, wsio_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* WSIO_H */
