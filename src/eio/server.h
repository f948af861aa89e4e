/*
 * eio_server — Engine.IO v4 (and, when allowed, v3) sessions over HTTP long-polling and WebSocket: the
 * handshake, the upgrade from polling to WebSocket, heartbeats, and the error replies the reference server
 * gives.
 *
 * The layer above (Socket.IO) sees a session as an eio_socket: messages in (on_message), messages out
 * (eio_socket_send, or eio_socket_send_msg for bytes encoded once for many sessions), and on_close once.
 *
 * Ownership: the server owns its sessions. A closed session is unlinked at once and freed after its
 * transports have let go of it (never inside a callback that is still using it). One server per loop;
 * everything belongs to the loop's thread.
 */
#ifndef WSIO_EIO_SERVER_H
#define WSIO_EIO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "eio/packet.h"
#include "http/conn.h"
#include "util/buf.h"
#include "util/map.h"
#include "ws/conn.h"

typedef struct eio_server eio_server;
typedef struct eio_socket eio_socket;

enum { EIO_POLLING = 1, EIO_WEBSOCKET = 2 };

typedef struct eio_config {
  const char *path;             /* request path prefix; default "/engine.io/" */
  uint32_t ping_interval_ms;    /* default 25000 */
  uint32_t ping_timeout_ms;     /* default 20000 */
  uint32_t upgrade_timeout_ms;  /* default 10000: a probe must finish the upgrade in this time */
  uint64_t max_payload;         /* maxHttpBufferSize: bytes per POST body or WebSocket message; default 1e6 */
  int transports;               /* EIO_POLLING | EIO_WEBSOCKET; 0: both */
  int no_upgrades;              /* set: never offer or accept the upgrade */
  const char *cors_origins;     /* NULL: no CORS headers; "*": any origin (reflected); else a comma list */
  int cors_credentials;         /* Access-Control-Allow-Credentials: true */
  const char *cookie;           /* NULL: no cookie; else its name (socket.io's `cookie: true` is "io") */
  int deflate;                  /* permessage-deflate model on the WebSocket transport (0 off, the default) */
  size_t send_limit;            /* unsent bytes per session before a volatile send is dropped; default 1 MiB */
  size_t max_buffer;            /* unsent bytes per session past which it is closed (a slow reader never grows
                                 * memory without bound); default 16 MiB */
  int ws_any_origin;            /* set: WebSocket upgrades are not checked against cors_origins */
} eio_config;

/* Polling responses of at least this many bytes are compressed (gzip, else deflate) for clients that
 * accept it, as engine.io's httpCompression does by default. */
#define EIO_HTTP_COMPRESSION_DEFAULT 1024

typedef struct eio_handler {
  /* A session opened; req is the handshake request (borrowed for the call). */
  void (*on_open)(eio_socket *s, const http_request *req, const char *remote);
  /* One MESSAGE packet; data borrowed. */
  void (*on_message)(eio_socket *s, int binary, const uint8_t *data, size_t len);
  /* The session ended: "transport close", "transport error", "ping timeout", "parse error",
   * "forced close", "server shutting down". Last call for s. */
  void (*on_close)(eio_socket *s, const char *reason);
  /* Optional: the session moved from polling to WebSocket (the upgrade completed). */
  void (*on_upgrade)(eio_socket *s);
} eio_handler;

/* Engine.IO packets carrying data, counted as engine.io's "packet" and "packetCreate" events see them:
 * MESSAGE packets both ways (bytes: their data) and the OPEN packet out. Plain counters, always kept. */
typedef struct eio_traffic {
  uint64_t packets_in, bytes_in, packets_out, bytes_out;
} eio_traffic;

/* Creates the server on l. cfg (copied) and h (borrowed) are its behaviour; deflate is the loop's
 * shared zlib streams. Returns NULL on ENOMEM. */
eio_server *eio_server_new(net_loop *l, const eio_config *cfg, const eio_handler *h, ws_deflate_shared *deflate);
/* Closes every session ("server shutting down") and frees the server; call before the loop closes. */
void eio_server_free(eio_server *srv);
/* Closes every session with reason "server shutting down", leaving the server usable. */
void eio_server_close_all(eio_server *srv);

/* Routes an HTTP request: returns 0 if its path is not the server's, 1 if it was answered, held or upgraded. */
int eio_server_handle(eio_server *srv, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len);

/* Replaces the CORS settings (also the WebSocket Origin allow-list) for requests from now on. Returns 0 or
 * WSIO_ENOMEM (then nothing changed). */
int eio_server_set_cors(eio_server *srv, const char *origins, int credentials);
/* allowRequest: called for every request that would open a session (a polling handshake or a direct
 * WebSocket), before anything else is done with it. Returns 1 to go on, 0 to refuse: the client gets 403
 * {"code":4,"message":...} with *message, or "Forbidden" when it is left NULL. req and remote are borrowed
 * for the call. */
typedef int (*eio_allow_fn)(void *ud, const http_request *req, const char *remote, const char **message);
void eio_server_set_allow(eio_server *srv, eio_allow_fn fn, void *ud);

/* engine.io's "connection_error": called for every request answered with an Engine.IO error (code
 * EIO_ERR_*, message what the body says), before the answer goes out. req and remote are borrowed for the
 * call. */
typedef void (*eio_error_fn)(void *ud, const http_request *req, const char *remote, int code, const char *message);
void eio_server_on_error(eio_server *srv, eio_error_fn fn, void *ud);

/* engine.io's "initial_headers" and "headers": fn may add header lines (eio_header_add) to extra for the
 * response to req: every polling response of a session (the handshake's with initial 1) and the 101 of
 * every WebSocket (initial 1 when it opens a session). Error answers get none. req, remote and extra are
 * borrowed for the call. */
typedef void (*eio_headers_fn)(void *ud, const http_request *req, const char *remote, int initial, buf *extra);
void eio_server_on_headers(eio_server *srv, eio_headers_fn fn, void *ud);
/* Appends "name: value" to extra. Returns 0, WSIO_ENOMEM, WSIO_ELIMIT (extra over EIO_HEADERS_MAX bytes),
 * or WSIO_EINVAL: name not an RFC 9110 token of at most 256 bytes, value with CR, LF or NUL or over 8 KiB,
 * or a header the server writes itself (Content-Length, Transfer-Encoding, Connection, Upgrade,
 * Sec-WebSocket-*). */
#define EIO_HEADERS_MAX 16384
int eio_header_add(buf *extra, const char *name, const char *value);

/* Compresses polling responses of at least threshold bytes (0: never). EIO_HTTP_COMPRESSION_DEFAULT until
 * set. */
void eio_server_set_http_compression(eio_server *srv, size_t threshold);

/* The owner's pointer, reachable from every session. */
void eio_server_set_data(eio_server *srv, void *data);
void *eio_socket_server_data(const eio_socket *s);

/* The session with that id, or NULL. */
eio_socket *eio_server_find(eio_server *srv, const char *sid);
size_t eio_server_count(const eio_server *srv);
/* Open sessions by transport. */
void eio_server_counts(const eio_server *srv, size_t *polling, size_t *websocket);
/* Sessions closed past max_buffer since the server started. */
uint64_t eio_server_slow_closes(const eio_server *srv);
/* The traffic counters since the server started. */
void eio_server_traffic(const eio_server *srv, eio_traffic *out);

/* Engine.IO v3 (socket.io's allowEIO3): on, handshakes whose EIO is not 4 open v3 sessions, as engine.io
 * takes any EIO but "4" for 3; off (the default), they are answered 400 "Unsupported protocol version". */
void eio_server_set_allow_eio3(eio_server *srv, int on);

/* The session's Engine.IO protocol: 3 or 4. */
int eio_socket_protocol(const eio_socket *s);

/* The session's id (20 characters). */
const char *eio_socket_id(const eio_socket *s);
/* The current transport, EIO_POLLING or EIO_WEBSOCKET. */
int eio_socket_transport(const eio_socket *s);
/* The layer above's pointer. */
void eio_socket_set_data(eio_socket *s, void *data);
void *eio_socket_data(const eio_socket *s);
/* Unsent bytes queued for the session; over the send limit a volatile message should be dropped. */
size_t eio_socket_buffered(const eio_socket *s);
int eio_socket_congested(const eio_socket *s);

/* Queues one MESSAGE packet. Returns 0, WSIO_ECLOSED, WSIO_ENOMEM, or WSIO_EBACKPRESSURE when the session
 * is past max_buffer (it is then closed with "transport error" at the end of the loop iteration). */
int eio_socket_send(eio_socket *s, int binary, const uint8_t *data, size_t len);

/* A run of MESSAGE packets encoded once for both transports, shared by reference (a broadcast). */
typedef struct eio_msg {
  int refs;
  unsigned npackets;  /* MESSAGE packets in it, and their data bytes (eio_traffic) */
  size_t nbytes;
  buf ws;       /* the WebSocket frames, back to back; queued by reference, so no eio_msg_add once sent */
  buf ws3;      /* the same for v3 sessions when a packet is binary (type byte before the data): built once,
                 * whole, for the first v3 WebSocket receiver; text-only messages share ws */
  int binary;   /* a packet is binary */
  buf polling;  /* the polling packets joined by the separator (no leading separator) */
  net_shared sh; /* one for all of refs, plus one per WebSocket connection holding ws: frees at 0 */
} eio_msg;

/* Builds a message from packets (text or binary MESSAGE data). Returns NULL on ENOMEM. */
eio_msg *eio_msg_new(void);
int eio_msg_add(eio_msg *m, int binary, const uint8_t *data, size_t len);
void eio_msg_unref(eio_msg *m);

/* Queues m to s without encoding it again. Same returns as eio_socket_send. */
int eio_socket_send_msg(eio_socket *s, const eio_msg *m);

/* Closes the session: a CLOSE packet when polling, the WebSocket's close otherwise; on_close follows with
 * reason "forced close" (or the given reason) before this returns. */
void eio_socket_close(eio_socket *s, const char *reason);

#endif
