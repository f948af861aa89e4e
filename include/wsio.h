/*
 * wsio.h — the one public header of wsio, a realtime server library in C.
 *
 * Conventions that hold for every function below:
 *   - Errors are negative WSIO_E* codes; wsio_strerror() names them. 0 (or a count) is success.
 *   - Ownership: the caller owns what it passes in (wsio copies what it keeps). What wsio hands to a callback
 *     is borrowed for the duration of that callback unless a *_ref function is called.
 *   - Threading: a wsio_server and everything it hands out belong to the thread that runs it. The only
 *     functions safe to call from another thread are marked "thread-safe". Several servers may run on
 *     several threads at once (wsio_workers_run does): process-wide state is initialised once, thread-safely.
 */
#ifndef WSIO_H
#define WSIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every public function is marked WSIO_API: exported from the shared library, which hides everything else. */
#if defined(__GNUC__) && defined(WSIO_BUILDING)
#define WSIO_API __attribute__((visibility("default")))
#else
#define WSIO_API
#endif

#define WSIO_VERSION_MAJOR 0
#define WSIO_VERSION_MINOR 1
#define WSIO_VERSION_PATCH 0

/* Returns the library's version as "MAJOR.MINOR.PATCH"; a static string. */
WSIO_API const char *wsio_version(void);

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
  X(LIMIT, -13, "a configured limit was reached")                            \
  X(TIMEDOUT, -14, "timed out")

enum {
#define WSIO_ERR_ENUM_(name, code, msg) WSIO_E##name = code,
  WSIO_ERRNO_MAP(WSIO_ERR_ENUM_)
#undef WSIO_ERR_ENUM_
};

/* Returns a static description of a WSIO_E* code (or of a negative libuv code). */
WSIO_API const char *wsio_strerror(int err);

/* ---- Server ---------------------------------------------------------------------------------------- */

typedef struct wsio_server wsio_server;
typedef struct wsio_ws wsio_ws;
typedef struct wsio_msg wsio_msg;

/* permessage-deflate compressor model. */
typedef enum wsio_deflate_mode {
  WSIO_DEFLATE_OFF = 0,
  /* One compressor and one decompressor per loop, reset per message (no context takeover either way). No
   * zlib state per connection, and a broadcast is compressed once for every receiver. The default of an
   * endpoint created with a NULL config (a zeroed wsio_ws_config.deflate is WSIO_DEFLATE_OFF). */
  WSIO_DEFLATE_SHARED = 1,
  /* Per-connection zlib streams with context takeover: better ratio on similar messages, but about 300 KiB
   * of zlib state per active connection at the default window. */
  WSIO_DEFLATE_CONTEXT = 2
} wsio_deflate_mode;

typedef struct wsio_limiter wsio_limiter;

typedef struct wsio_server_config {
  size_t max_connections;        /* 0: default 100000. Past it new connections are closed at once. */
  uint32_t handshake_timeout_ms; /* 0: default 10000. HTTP request or WS handshake must finish in it. */
  uint32_t idle_timeout_ms;      /* 0: default 120000 for plain HTTP keep-alive connections. */
  size_t max_header_bytes;       /* 0: default 16384 (431 past it); request line limit is 8192 (414). */
  size_t max_body_bytes;         /* 0: default 1 MiB (413 past it). */
  const char *web_root;          /* static files; NULL: none (404). */
  const char *tls_cert;          /* PEM paths; both set: every listener speaks TLS. */
  const char *tls_key;
  int log_level;                 /* 1 error, 2 warn, 3 info, 4 debug; 0 leaves the level as it is (info). */
  /* Per client address (an IPv4 address, an IPv6 /64); see wsio_limiter_config. Ignored when limiter is set. */
  uint32_t max_connections_per_ip;       /* 0: no limit */
  uint32_t handshakes_per_ip_per_second; /* 0: no limit */
  uint32_t handshake_burst;              /* 0: max(handshakes_per_ip_per_second, 1) */
  /* A per-address table shared by several servers of the process (workers), whose settings apply instead
   * of the three above; the server keeps a reference. NULL: the server has its own table when one of the
   * three is set. */
  wsio_limiter *limiter;
  /* Trusted proxies: networks like "10.0.0.0/8, 127.0.0.1, ::1" (commas or blanks between them; an
   * address alone is one host), read when the server is made (the string is not kept). A request whose TCP
   * peer is inside one of them is from the client its X-Forwarded-For names: read from the right, past
   * the entries that are trusted proxies too (Forwarded "for=" when there is no X-Forwarded-For). That
   * address is what the per-address limits count and what wsio_ws_remote, socket.handshake.address and
   * the logs show, without a port. A peer outside them is the client whatever it sends. NULL or "": none.
   * A list that does not parse makes wsio_server_new fail (the reason logged). */
  const char *trusted_proxies;
} wsio_server_config;

/* Per-address limits: one table keyed by client address (seeded SipHash, bounded: idle addresses expire and
 * the least recently seen is evicted when full; an address with open connections is never evicted, and a
 * new address finding max_addresses of those is refused at accept). Counters in wsio_stats.
 *   max_connections_per_ip: past it, a connection's first request is answered "503 Service Unavailable"
 *     with Retry-After and closed (clients report the status: a WebSocket client sees a failed handshake);
 *     past twice it, connections are closed at accept without an answer.
 *   handshakes_per_ip_per_second and handshake_burst: a token bucket per address taken by every raw
 *     WebSocket upgrade and every Engine.IO session open (polling or WebSocket); when empty the request is
 *     answered "429 Too Many Requests" with Retry-After (seconds until a token is due). Other HTTP
 *     requests, long-polls and upgrades of existing sessions do not count. */
typedef struct wsio_limiter_config {
  uint32_t max_connections_per_ip;       /* 0: no limit */
  uint32_t handshakes_per_ip_per_second; /* 0: no limit */
  uint32_t handshake_burst;              /* 0: max(handshakes_per_ip_per_second, 1) */
  size_t max_addresses;                  /* 0: 262144 (~25 MiB at worst) */
  unsigned ipv6_prefix;                  /* bits of an IPv6 address that identify a client; 0: 64 */
} wsio_limiter_config;

/* A per-address table to share between servers (wsio_server_config.limiter), e.g. the workers of one
 * process, so that the limits hold per process rather than per loop. cfg may be NULL (no limits yet).
 * Returns NULL on ENOMEM. Thread-safe, as is every wsio_limiter function: the table has a mutex, taken once
 * per accepted connection and once per handshake, never per message. */
WSIO_API wsio_limiter *wsio_limiter_new(const wsio_limiter_config *cfg);
/* Changes the limits from now on (a reload); open connections stay. Thread-safe. */
WSIO_API void wsio_limiter_set(wsio_limiter *l, const wsio_limiter_config *cfg);
/* Addresses tracked now. Thread-safe. */
WSIO_API size_t wsio_limiter_count(wsio_limiter *l);
/* Drops the caller's reference: servers still using the table keep it alive until they are freed. */
WSIO_API void wsio_limiter_free(wsio_limiter *l);

/* Creates a server on its own libuv loop. config may be NULL for defaults; it is copied.
 * Returns NULL on allocation failure or bad TLS files (the reason is logged). */
WSIO_API wsio_server *wsio_server_new(const wsio_server_config *config);

/* Starts listening on host:port (IPv4 or IPv6 literal or name). May be called several times (8 listeners at
 * most). Returns 0, WSIO_EINVAL, WSIO_ELIMIT, or WSIO_EADDR / a negative libuv code. */
WSIO_API int wsio_server_listen(wsio_server *s, const char *host, int port);

/* Replaces the trusted proxies (a list as in wsio_server_config.trusted_proxies; NULL or "": none; copied)
 * for connections accepted from now on; an open connection keeps whether its peer was trusted. Returns 0,
 * WSIO_EINVAL (an item that is not an address or network, logged) or WSIO_ENOMEM; on failure the list in
 * use stays. The server's loop thread only; with wsio_workers_run, each worker sets its own. */
WSIO_API int wsio_server_set_trusted_proxies(wsio_server *s, const char *list);

/* Loads a TLS certificate chain and key again (a renewed certificate) for connections accepted from now on;
 * connections already open keep the ones they started with. On failure the ones in use stay and OpenSSL's
 * reasons are logged. Returns 0, WSIO_EINVAL (s was created without TLS: that needs a new server) or
 * WSIO_ETLS (a file unreadable, not PEM, or a key that does not match). The server's loop thread only;
 * with wsio_workers_run, each worker reloads its own. */
WSIO_API int wsio_server_reload_tls(wsio_server *s, const char *cert_file, const char *key_file);

/* Serves body (copied) with content_type at path for GET and HEAD, with an ETag. Replaces an earlier page
 * at the same path. Returns 0, WSIO_EINVAL, WSIO_ENOMEM. */
WSIO_API int wsio_server_set_page(wsio_server *s, const char *path, const char *content_type, const void *body, size_t len);

/* The server's libuv loop (a uv_loop_t *), for adding the program's own timers and I/O to it. */
WSIO_API void *wsio_server_loop(wsio_server *s);

/* The port of the first listener (useful after listening on port 0), or a negative code. */
WSIO_API int wsio_server_port(const wsio_server *s);

/* Runs the loop until wsio_server_stop() or a SIGINT/SIGTERM (when handle_signals is set: SIGPIPE is then
 * ignored too, and a second signal closes every connection at once). Returns 0. */
WSIO_API int wsio_server_run(wsio_server *s, int handle_signals);

/* Installs the SIGINT/SIGTERM handlers (graceful stop; a second signal closes everything at once) and
 * ignores SIGPIPE, now rather than when wsio_server_run(s, 1) starts: call it before listening so a
 * signal right after "listening" is already a graceful stop. Returns 0. */
WSIO_API int wsio_server_handle_signals(wsio_server *s);

/* Graceful stop: stops accepting, sends close 1001 to every raw WebSocket, ends every Engine.IO session
 * (reason "server shutting down"), lets connections drain (bounded by timeout_ms; 0: 10000), then makes
 * wsio_server_run() return. Thread-safe. */
WSIO_API void wsio_server_stop(wsio_server *s, uint32_t timeout_ms);

/* Frees the server. Only after wsio_server_run() has returned, or if it never ran. */
WSIO_API void wsio_server_free(wsio_server *s);

/* ---- Raw WebSocket endpoints ---------------------------------------------------------------------- */

typedef enum wsio_opcode { WSIO_TEXT = 1, WSIO_BINARY = 2 } wsio_opcode;

typedef struct wsio_ws_handlers {
  /* A client completed the handshake (Origin and subprotocol were checked before); the connection is open. */
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
  const char *origins;       /* comma list of allowed Origin values, or NULL to allow any. A request without
                              * Origin (not a browser) or from the server's own pages (Origin host equal to
                              * Host) is always allowed; any other gets 403. */
  void *user;                /* handed back by wsio_ws_endpoint_user(). */
  /* Messages received per connection: a token bucket. Past it the connection is closed with 1008
   * "rate limit" (wsio_stats.rate_closes), or with message_rate_drop set the excess messages are dropped
   * before on_message and counted (wsio_stats.rate_dropped). Control frames do not count. */
  uint32_t messages_per_second; /* 0: no limit */
  uint32_t message_burst;       /* 0: max(messages_per_second, 1) */
  int message_rate_drop;
} wsio_ws_config;

/* Serves WebSocket upgrades on path (exact match). config may be NULL. Returns 0, WSIO_EEXISTS, WSIO_EINVAL,
 * WSIO_ELIMIT (32 endpoints), WSIO_ENOMEM. */
WSIO_API int wsio_server_ws(wsio_server *s, const char *path, const wsio_ws_handlers *h, const wsio_ws_config *config);
/* Replaces the Origin allow-list of the endpoint at path (a comma list, or NULL to allow any) for handshakes
 * from now on; open connections are not affected. On s's loop thread. Returns 0, WSIO_EINVAL (no endpoint at
 * path) or WSIO_ENOMEM (the old list stays). */
WSIO_API int wsio_server_ws_set_origins(wsio_server *s, const char *path, const char *origins);

/* Send flags. */
#define WSIO_SEND_DROPPABLE 1u  /* over the send buffer limit: drop and count instead of closing with 1008 */
#define WSIO_SEND_NOCOMPRESS 2u
#define WSIO_SEND_LOCAL 4u      /* wsio_server_publish on a worker: this worker's connections only */

/* Sends one message. data is copied. Returns 0; WSIO_ECLOSED; WSIO_EDROPPED for a droppable message over the
 * limit; WSIO_EBACKPRESSURE when the buffer is over the limit (the connection is then closed with 1008 and a
 * log line: a slow reader never grows server memory without bound). */
WSIO_API int wsio_ws_send(wsio_ws *ws, wsio_opcode op, const void *data, size_t len, unsigned flags);

/* Starts the close handshake with code (1000..4999, not reserved; 0: no code) and an optional reason (cut to
 * 123 bytes). Returns 0, WSIO_EINVAL for a code that may not be sent, WSIO_ECLOSED when already closing. */
WSIO_API int wsio_ws_close(wsio_ws *ws, int code, const char *reason);

/* Bytes queued for the connection and not yet written to the socket. */
WSIO_API size_t wsio_ws_buffered(const wsio_ws *ws);

WSIO_API void wsio_ws_set_data(wsio_ws *ws, void *data);
WSIO_API void *wsio_ws_data(const wsio_ws *ws);
/* The endpoint's wsio_ws_config.user. */
WSIO_API void *wsio_ws_endpoint_user(const wsio_ws *ws);
/* The negotiated subprotocol or "" (borrowed, lives as long as ws). */
WSIO_API const char *wsio_ws_protocol(const wsio_ws *ws);
/* The peer address as text, e.g. "127.0.0.1:51234"; through a trusted proxy, the client it forwarded, without
 * a port ("203.0.113.7"; see wsio_server_config.trusted_proxies). Borrowed, lives as long as ws. */
WSIO_API const char *wsio_ws_remote(const wsio_ws *ws);

/* ---- Publish: encode once, send the same bytes to many ------------------------------------------ */

/* Encodes a message once (frame header and payload, and its compressed form when first needed).
 * Returns a reference the caller owns, or NULL on allocation failure. */
WSIO_API wsio_msg *wsio_msg_new(wsio_opcode op, const void *data, size_t len);
WSIO_API wsio_msg *wsio_msg_ref(wsio_msg *m);
WSIO_API void wsio_msg_unref(wsio_msg *m);

/* Queues m to ws without copying it. Same return values as wsio_ws_send(). */
WSIO_API int wsio_ws_send_msg(wsio_ws *ws, wsio_msg *m, unsigned flags);

/* Sends m to every open connection of the endpoint at path, except `except` (may be NULL). On a worker
 * (wsio_workers_run) the payload also goes to the same endpoint of every other worker, encoded once there,
 * unless flags has WSIO_SEND_LOCAL. Returns the number of this server's connections it was queued to,
 * WSIO_EINVAL, or WSIO_ENOTFOUND (no such endpoint). */
WSIO_API int wsio_server_publish(wsio_server *s, const char *path, wsio_msg *m, const wsio_ws *except, unsigned flags);

/* ---- Socket.IO ------------------------------------------------------------------------------------
 *
 * A Socket.IO v5 server (over Engine.IO v4: HTTP long-polling and WebSocket) attached to a wsio_server.
 * The functions map one-to-one onto the JavaScript server API: see the table in README.md.
 *
 * Lifetimes: a wsio_socket is valid from its connection callback until its disconnect callbacks have
 * returned. Arguments (wsio_args) and acks (wsio_ack) handed to a callback are borrowed for the call, except
 * an ack kept with wsio_ack_keep(). JSON passed in (json_args) is copied; it must be a JSON array of the
 * event's arguments ("[1,\"two\"]"), or NULL for none, and is validated (WSIO_EINVAL when it is not).
 */

typedef struct wsio_io wsio_io;
typedef struct wsio_nsp wsio_nsp;
typedef struct wsio_socket wsio_socket;
typedef struct wsio_args wsio_args;
typedef struct wsio_ack wsio_ack;
typedef struct wsio_next wsio_next;

#define WSIO_TRANSPORT_POLLING 1
#define WSIO_TRANSPORT_WEBSOCKET 2

typedef struct wsio_io_config {
  const char *path;              /* default "/socket.io/" */
  uint32_t ping_interval_ms;     /* default 25000 */
  uint32_t ping_timeout_ms;      /* default 20000 */
  uint32_t upgrade_timeout_ms;   /* default 10000 */
  uint32_t connect_timeout_ms;   /* a client must join a namespace within it; default 45000 */
  uint32_t ack_timeout_ms;       /* default wait for acks, also for broadcasts; default 30000 */
  size_t max_http_buffer_size;   /* bytes per message or POST body; default 1000000 */
  int transports;                /* WSIO_TRANSPORT_* bits; 0: both */
  int no_upgrades;               /* set: polling sessions never move to WebSocket */
  const char *cors_origin;       /* NULL: no CORS; "*": any origin; else a comma list of origins */
  int cors_credentials;
  const char *cookie;            /* NULL: none; else the cookie's name (socket.io's cookie: true is "io") */
  wsio_deflate_mode per_message_deflate; /* default off, as socket.io */
  uint32_t recovery_ms;          /* connection state recovery window; 0: off */
  const char *client_dir;        /* where socket.io.js and friends are; NULL: not served */
  size_t max_rooms_per_socket;   /* default 1000 */
  size_t max_pending_acks;       /* acks awaited per socket; default 1000 */
  /* Socket.IO packets received per client connection (binary attachments are part of their packet): a
   * token bucket. Past it, as socket.disconnect(true) does: every namespace of the client gets DISCONNECT
   * (socket.io-client reports "io server disconnect" and does not reconnect by itself), then the Engine.IO
   * session closes; disconnect handlers get the reason "rate limit" (wsio_stats.sio_rate_closes). With
   * packet_rate_drop set the excess packets are dropped and counted instead (sio_rate_dropped). */
  uint32_t packets_per_second;   /* 0: no limit */
  uint32_t packet_burst;         /* 0: max(packets_per_second, 1) */
  int packet_rate_drop;
  /* Set: WebSocket upgrades are not checked against cors_origin (cross-site pages may connect). By default
   * a browser's Origin must be listed, or be the server itself (Origin host equal to Host). */
  int ws_any_origin;
  /* Bytes queued for one client and not yet taken by it (its WebSocket's output, or the packets waiting for
   * its next long-polling GET) past which the client is disconnected with the reason "transport error" and
   * a warning is logged (wsio_stats.sio_slow_closes): a client that reads slower than the server writes never
   * grows the server's memory without bound. Default 16 MiB. Volatile broadcasts are skipped for a client
   * with more than 1 MiB queued long before that. */
  size_t send_buffer_limit;
} wsio_io_config;

/* Attaches a Socket.IO server to s (new Server(httpServer, opts)). The io lives as long as s.
 * Returns NULL on ENOMEM or if s already has one. */
WSIO_API wsio_io *wsio_io_new(wsio_server *s, const wsio_io_config *cfg);

/* Changes the CORS origins ("*", a comma list, or NULL for none) and credentials for requests from now on;
 * the WebSocket Origin check follows the same list. Returns 0 or WSIO_ENOMEM. */
WSIO_API int wsio_io_set_cors(wsio_io *io, const char *origins, int credentials);

/* How Socket.IO packets travel, as socket.io's `parser` option: WSIO_PARSER_DEFAULT (text packets, binaries
 * as separate messages) or WSIO_PARSER_MSGPACK (npm socket.io-msgpack-parser: each packet one binary
 * msgpack message; clients must use that parser too, e.g. the socket.io.msgpack.min.js bundle). Set it
 * before clients connect. Returns 0, WSIO_EINVAL, or WSIO_EEXISTS when clients are connected already. */
typedef enum wsio_parser { WSIO_PARSER_DEFAULT = 0, WSIO_PARSER_MSGPACK = 1 } wsio_parser;
WSIO_API int wsio_io_set_parser(wsio_io *io, wsio_parser parser);

/* allowEIO3: also serve socket.io-client 2.x (Engine.IO protocol 3, Socket.IO protocol 4), as socket.io's
 * `new Server(http, { allowEIO3: true })`. Off by default: such clients get HTTP 400 {"code":5,"message":
 * "Unsupported protocol version"}. On, a handshake whose EIO is anything but 4 opens a v3 session (as
 * engine.io reads it): the client pings and the server answers, payloads are length-prefixed, the client is
 * in "/" at once, a namespace's query becomes its handshake auth, socket ids are the Engine.IO id ("/") or
 * "<nsp>#<engine id>", refusals send the error's data (or its message) alone, and connection state
 * recovery does not apply. v2, v3 and v4 clients share namespaces, rooms and broadcasts. Only with the
 * default parser: with WSIO_PARSER_MSGPACK (protocol 5 only, as in socket.io) v3 handshakes stay refused.
 * Applies to handshakes from now on. Returns 0, or WSIO_EINVAL when io is NULL. With wsio_workers_run, set
 * it in every worker's setup. */
WSIO_API int wsio_io_set_allow_eio3(wsio_io *io, int on);

/* allowRequest: cb decides on the handshake request of every new Engine.IO session (a polling handshake or
 * a direct WebSocket), before the session opens or a namespace is asked for. r is borrowed for the call:
 * wsio_request_handshake gives its url, query, address and time (auth is "{}": no CONNECT yet), and
 * wsio_request_header its headers. Return 1 to allow; 0 refuses with HTTP 403 {"code":4,"message":M}, M
 * being what cb left in *message (a string that lives on after the call) or "Forbidden"; socket.io-client
 * reports a connect_error. The decision is synchronous: checks that must wait belong in a namespace
 * middleware (wsio_nsp_use). NULL removes it. With wsio_workers_run, set it in every worker's setup. */
typedef struct wsio_request wsio_request;
typedef int (*wsio_allow_request_cb)(const wsio_request *r, const char **message, void *ud);
WSIO_API void wsio_io_allow_request(wsio_io *io, wsio_allow_request_cb cb, void *ud);
WSIO_API const struct wsio_handshake *wsio_request_handshake(const wsio_request *r);
/* A header of the request (case-insensitive name), or NULL. */
WSIO_API const char *wsio_request_header(const wsio_request *r, const char *name);

/* io.engine.on("initial_headers" / "headers", (headers, req) => ...): cb may add headers, with
 * wsio_headers_add, to every long-polling response of a session (POST answers included) and to the 101 of
 * every WebSocket. initial is 1 for the response that opens a session (the polling handshake, or a
 * WebSocket without sid): socket.io emits initial_headers then headers for it, here it is one call. Error
 * answers get none. r and h are borrowed for the call. NULL removes it. With wsio_workers_run, set it in
 * every worker's setup. */
typedef struct wsio_headers wsio_headers;
typedef void (*wsio_headers_cb)(const wsio_request *r, int initial, wsio_headers *h, void *ud);
WSIO_API void wsio_io_on_headers(wsio_io *io, wsio_headers_cb cb, void *ud);
/* Adds "name: value" to that response (twice the same name: two lines, as Set-Cookie needs). Returns 0,
 * WSIO_ENOMEM, WSIO_ELIMIT (over 16 KiB added to one response) or WSIO_EINVAL: name not a token of at most
 * 256 bytes, value holding CR, LF or over 8 KiB, or a header wsio writes itself (Content-Length,
 * Transfer-Encoding, Connection, Upgrade, Sec-WebSocket-*). */
WSIO_API int wsio_headers_add(wsio_headers *h, const char *name, const char *value);

/* io.engine.on("connection_error"): cb runs for every request answered with an Engine.IO error, before the
 * answer goes out: code is one of WSIO_EIO_* and message what the answer's body says ("Session ID unknown",
 * or allowRequest's message). r as for allowRequest, borrowed for the call. Useful to see why clients
 * fail to connect (a load balancer without sticky sessions shows as WSIO_EIO_UNKNOWN_SID). NULL removes it. */
enum {
  WSIO_EIO_UNKNOWN_TRANSPORT = 0,
  WSIO_EIO_UNKNOWN_SID = 1,
  WSIO_EIO_BAD_HANDSHAKE_METHOD = 2,
  WSIO_EIO_BAD_REQUEST = 3,
  WSIO_EIO_FORBIDDEN = 4,
  WSIO_EIO_UNSUPPORTED_PROTOCOL_VERSION = 5
};
typedef void (*wsio_connection_error_cb)(const wsio_request *r, int code, const char *message, void *ud);
WSIO_API void wsio_io_on_connection_error(wsio_io *io, wsio_connection_error_cb cb, void *ud);

/* httpCompression: long-polling responses of at least threshold bytes are compressed (gzip, else deflate)
 * for clients whose Accept-Encoding allows it. 0 turns it off. Default 1024, as socket.io's. */
WSIO_API void wsio_io_set_http_compression(wsio_io *io, size_t threshold);

/* How many namespaces matchers (wsio_io_of_match) may create. Each lives as long as the io and clients pick
 * the names, so past max a new name gets CONNECT_ERROR "Invalid namespace" (and one log line) while the
 * ones made keep working. Default 10000, per io (with wsio_workers_run, per worker). */
WSIO_API void wsio_io_set_max_dynamic_namespaces(wsio_io *io, size_t max);

/* io.of(name): the namespace, created on first use. NULL if name does not start with '/'. */
WSIO_API wsio_nsp *wsio_io_of(wsio_io *io, const char *name);
/* io.sockets: the main namespace "/". */
WSIO_API wsio_nsp *wsio_io_sockets(wsio_io *io);
/* io.of(regex|function): namespaces created on demand for names the matcher accepts (returns 1). Returns
 * the parent whose handlers and middlewares every child gets (register them on the parent: a child's own
 * are not used). */
typedef int (*wsio_nsp_matcher)(const char *name, void *ud);
WSIO_API wsio_nsp *wsio_io_of_match(wsio_io *io, wsio_nsp_matcher match, void *ud);
/* The namespace's name, e.g. "/chat". */
WSIO_API const char *wsio_nsp_name(const wsio_nsp *n);
/* Number of connected sockets in the namespace. */
WSIO_API size_t wsio_nsp_count(const wsio_nsp *n);

/* io.on("connection", cb) for namespace n. */
typedef void (*wsio_connection_cb)(wsio_socket *s, void *ud);
WSIO_API void wsio_nsp_on_connection(wsio_nsp *n, wsio_connection_cb cb, void *ud);

/* io.of(name).adapter.on("create-room" | "join-room" | "leave-room" | "delete-room"): cb gets every change
 * of this server's rooms in n. room is the room's name; id the socket's for JOIN and LEAVE, NULL for CREATE
 * and DELETE (both borrowed for the call). As in socket.io, each socket's own room counts: connecting makes
 * CREATE(id) then JOIN(id, id) before the connection handler runs; disconnecting makes LEAVE then DELETE
 * for its own room first, then for each room it was in, between the disconnecting and disconnect handlers.
 * cb must not join or leave rooms itself. One callback per namespace (a later call replaces it, NULL
 * removes it); for namespaces made by a matcher, set it on the parent. */
typedef enum wsio_room_event {
  WSIO_ROOM_CREATE = 0,
  WSIO_ROOM_DELETE = 1,
  WSIO_ROOM_JOIN = 2,
  WSIO_ROOM_LEAVE = 3
} wsio_room_event;
typedef void (*wsio_room_cb)(wsio_nsp *n, wsio_room_event ev, const char *room, const char *id, void *ud);
WSIO_API void wsio_nsp_on_room(wsio_nsp *n, wsio_room_cb cb, void *ud);

/* io.use((socket, next) => ...): middlewares run in order on every connection to n; each calls
 * wsio_next_ok() or wsio_next_error() once, now or later. Returns 0 or WSIO_ELIMIT. */
typedef void (*wsio_middleware)(wsio_socket *s, wsio_next *next, void *ud);
WSIO_API int wsio_nsp_use(wsio_nsp *n, wsio_middleware mw, void *ud);
WSIO_API void wsio_next_ok(wsio_next *next);
/* next(new Error(message)) with err.data = data_json (NULL: none): the client gets CONNECT_ERROR. */
WSIO_API void wsio_next_error(wsio_next *next, const char *message, const char *data_json);

/* Event handlers: socket.on(event, (...args, ack) => ...). ack is NULL when the client asked for none. */
typedef void (*wsio_event_cb)(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud);
WSIO_API int wsio_socket_on(wsio_socket *s, const char *event, wsio_event_cb cb, void *ud);
/* socket.onAny(cb): every event, before its named handlers (as socket.io calls them). */
WSIO_API int wsio_socket_on_any(wsio_socket *s, wsio_event_cb cb, void *ud);
/* socket.onAnyOutgoing(cb): every event sent to the socket, by an emit to it or a broadcast that reaches it
 * (not acks), as it is queued; args as the client gets them (a broadcast's recovery offset included, as in
 * socket.io), ack NULL. A handler may emit (what it sends is not reported again) but must not join or leave
 * rooms or disconnect sockets: a broadcast may be going through the rooms. */
WSIO_API int wsio_socket_on_any_outgoing(wsio_socket *s, wsio_event_cb cb, void *ud);
/* The same handler for every socket of n (no per-socket registration: the fast path). */
WSIO_API int wsio_nsp_on(wsio_nsp *n, const char *event, wsio_event_cb cb, void *ud);
/* onAny for every socket of n, before the named handlers (the namespace's before the socket's). */
WSIO_API int wsio_nsp_on_any(wsio_nsp *n, wsio_event_cb cb, void *ud);
/* onAnyOutgoing for every socket of n (the namespace's before the socket's). */
WSIO_API int wsio_nsp_on_any_outgoing(wsio_nsp *n, wsio_event_cb cb, void *ud);

/* socket.use(([event, ...args, ack], next) => ...): middlewares for the events a socket receives. They run
 * in order after the onAny handlers and before the event's own handlers, as socket.io runs them; the
 * namespace's (wsio_nsp_use_events) before the socket's. Each calls wsio_event_next_ok (the event goes on)
 * or wsio_event_next_error (the event is dropped and the error callbacks get message and data) before it
 * returns, or keeps next with wsio_event_next_keep to answer later. A next neither answered nor kept drops
 * the event, as a JS middleware that never calls next(). args, ack and next are borrowed for the call; ack
 * is the client's (NULL when it asked for none): a middleware may answer it, e.g. to refuse with a reason.
 * A dropped event's ack is left unanswered. Returns 0, WSIO_EINVAL, WSIO_ELIMIT (more than 16 on one socket
 * or namespace) or WSIO_ENOMEM. */
typedef struct wsio_event_next wsio_event_next;
typedef void (*wsio_event_middleware)(wsio_socket *s, const wsio_args *args, wsio_ack *ack, wsio_event_next *next,
                                      void *ud);
WSIO_API int wsio_socket_use(wsio_socket *s, wsio_event_middleware mw, void *ud);
/* The same middleware for every socket of n (no per-socket registration: the fast path, like wsio_nsp_on). */
WSIO_API int wsio_nsp_use_events(wsio_nsp *n, wsio_event_middleware mw, void *ud);
WSIO_API void wsio_event_next_ok(wsio_event_next *next);
/* next(err), with err.message = message (NULL: "") and err.data = data_json (NULL: none). The client is
 * told nothing, as with socket.io: the error callbacks decide (emit an error event, disconnect, ...). */
WSIO_API void wsio_event_next_error(wsio_event_next *next, const char *message, const char *data_json);
/* Keeps next, with a copy of the event, past the middleware's return. The caller owns the returned handle
 * and answers it later with wsio_event_next_ok or _error, exactly once, which frees it; once the socket is
 * gone the answer only frees it. The handlers of a kept event get an ack of their own (or NULL if the
 * client asked for none or it was answered before the keep). Returns NULL (the event is then dropped) on
 * ENOMEM, or when the socket holds WSIO_MAX_KEPT_EVENTS kept events already: a client cannot make the
 * server hold an unbounded backlog. */
#define WSIO_MAX_KEPT_EVENTS 1024
WSIO_API wsio_event_next *wsio_event_next_keep(wsio_event_next *next);

/* socket.on("error", err => ...): an event middleware refused an event with wsio_event_next_error.
 * data_json is NULL when the error carries no data. One callback per socket (and one per namespace, for
 * every socket of it, called first); a later call replaces it, NULL removes it. Without any, the refusal
 * is logged at debug level. */
typedef void (*wsio_socket_error_cb)(wsio_socket *s, const char *message, const char *data_json, void *ud);
WSIO_API void wsio_socket_on_error(wsio_socket *s, wsio_socket_error_cb cb, void *ud);
WSIO_API void wsio_nsp_on_error(wsio_nsp *n, wsio_socket_error_cb cb, void *ud);

/* socket.on("disconnecting" / "disconnect", reason). Reasons are socket.io's: "server namespace
 * disconnect", "client namespace disconnect", "transport close", "transport error", "ping timeout",
 * "parse error", "forced close", "server shutting down". In disconnecting the rooms are still joined. */
typedef void (*wsio_disconnect_cb)(wsio_socket *s, const char *reason, void *ud);
WSIO_API void wsio_socket_on_disconnecting(wsio_socket *s, wsio_disconnect_cb cb, void *ud);
WSIO_API void wsio_socket_on_disconnect(wsio_socket *s, wsio_disconnect_cb cb, void *ud);

/* Arguments of an event or ack. */
typedef enum wsio_arg_type {
  WSIO_ARG_NONE = 0, WSIO_ARG_STRING, WSIO_ARG_NUMBER, WSIO_ARG_OBJECT, WSIO_ARG_ARRAY,
  WSIO_ARG_TRUE, WSIO_ARG_FALSE, WSIO_ARG_NULL, WSIO_ARG_BINARY
} wsio_arg_type;

/* The event's name (NUL-terminated; "" for an ack). */
WSIO_API const char *wsio_args_event(const wsio_args *a);
WSIO_API size_t wsio_args_count(const wsio_args *a);
/* WSIO_ARG_NONE past the end. */
WSIO_API wsio_arg_type wsio_args_type(const wsio_args *a, size_t i);
/* The JSON text of argument i (not NUL-terminated; *len set), or NULL for a binary or past the end. */
WSIO_API const char *wsio_args_json(const wsio_args *a, size_t i, size_t *len);
/* Decodes string argument i into out (NUL-terminated). Returns its length, WSIO_EINVAL if not a string,
 * WSIO_ETOOBIG if it does not fit in cap. */
WSIO_API long wsio_args_string(const wsio_args *a, size_t i, char *out, size_t cap);
/* Number argument i, or 0 with *ok = 0. ok may be NULL. */
WSIO_API double wsio_args_number(const wsio_args *a, size_t i, int *ok);
/* Binary argument i (borrowed), or NULL. */
WSIO_API const void *wsio_args_binary(const wsio_args *a, size_t i, size_t *len);
/* Argument i as a jansson tree (a new reference the caller json_decref()s), or NULL for binaries. */
WSIO_API struct json_t *wsio_args_tree(const wsio_args *a, size_t i);

/* Emitting. A value for the *v functions: JSON text or binary bytes (both copied). */
typedef struct wsio_value {
  int binary;
  const void *data;
  size_t len;
} wsio_value;
#define WSIO_JSON(text) ((wsio_value){0, (text), sizeof(text) - 1})

/* socket.emit(event, ...args). Returns 0, WSIO_EINVAL (bad JSON or reserved event name), WSIO_ECLOSED. */
WSIO_API int wsio_socket_emit(wsio_socket *s, const char *event, const char *json_args);
WSIO_API int wsio_socket_emitv(wsio_socket *s, const char *event, const wsio_value *vals, size_t n);
/* Forwards received arguments as they are, binaries included. */
WSIO_API int wsio_socket_emit_args(wsio_socket *s, const char *event, const wsio_args *args);

/* socket.timeout(ms).emit(event, ...args, (err, ...responses) => ...): err is 0, or WSIO_ETIMEDOUT when
 * the client did not answer in timeout_ms (0: the io's ack_timeout_ms), or WSIO_ECLOSED when it left.
 * args is NULL unless err is 0. Returns 0 or a negative code (then cb is never called). */
typedef void (*wsio_ack_cb)(wsio_socket *s, int err, const wsio_args *args, void *ud);
WSIO_API int wsio_socket_emit_ack(wsio_socket *s, const char *event, const char *json_args, uint32_t timeout_ms,
                         wsio_ack_cb cb, void *ud);

/* Answers the client's ack (the callback it passed to emit). Each ack is answered at most once. */
WSIO_API int wsio_ack_send(wsio_ack *ack, const char *json_args);
WSIO_API int wsio_ack_sendv(wsio_ack *ack, const wsio_value *vals, size_t n);
/* Answers with received arguments as they are, binaries (nested ones too) included. */
WSIO_API int wsio_ack_send_args(wsio_ack *ack, const wsio_args *args);
/* Keeps ack past the callback. Returns the handle to keep (not ack itself), which the caller then owns and
 * must wsio_ack_send() or wsio_ack_drop(); NULL if ack was answered, its socket is gone, or on ENOMEM. */
WSIO_API wsio_ack *wsio_ack_keep(wsio_ack *ack);
WSIO_API void wsio_ack_drop(wsio_ack *ack);

/* Rooms: socket.join(room), socket.leave(room). Every socket is in the room named by its id. join returns 0,
 * WSIO_EINVAL (also before the socket is connected, as in a middleware), WSIO_ELIMIT (max_rooms_per_socket),
 * WSIO_ENOMEM. */
WSIO_API int wsio_socket_join(wsio_socket *s, const char *room);
WSIO_API int wsio_socket_leave(wsio_socket *s, const char *room);
WSIO_API int wsio_socket_in(const wsio_socket *s, const char *room);
/* socket.rooms: fills out with up to cap room names (borrowed), the socket's id first. Returns the count. */
WSIO_API size_t wsio_socket_rooms(const wsio_socket *s, const char **out, size_t cap);

/* socket.id, socket.nsp, socket.data, socket.connected, socket.recovered, socket.conn.transport.name. */
WSIO_API const char *wsio_socket_id(const wsio_socket *s);
WSIO_API wsio_nsp *wsio_socket_nsp(const wsio_socket *s);
WSIO_API void wsio_socket_set_data(wsio_socket *s, void *data);
WSIO_API void *wsio_socket_data(const wsio_socket *s);
WSIO_API int wsio_socket_connected(const wsio_socket *s);
WSIO_API int wsio_socket_recovered(const wsio_socket *s);
WSIO_API const char *wsio_socket_transport(const wsio_socket *s);

/* socket.handshake. Strings are borrowed for the socket's life. */
typedef struct wsio_handshake {
  const char *url;      /* the request target of the first request */
  const char *query;    /* its raw query string */
  const char *address;  /* the peer, "ip:port"; through a trusted proxy the client's address alone */
  const char *auth;     /* the CONNECT payload as JSON ("{}" when none) */
  int64_t time;         /* ms since the epoch */
  int secure;           /* over TLS */
} wsio_handshake;
WSIO_API const wsio_handshake *wsio_socket_handshake(const wsio_socket *s);
/* A request header of the handshake (case-insensitive name), or NULL. */
WSIO_API const char *wsio_socket_header(const wsio_socket *s, const char *name);

/* socket.disconnect(close): leaves the namespace; close also ends the underlying connection. */
WSIO_API void wsio_socket_disconnect(wsio_socket *s, int close);

/* Broadcast operators: io.to(room).except(room).volatile.emit(...) and friends. A wsio_op is a value built
 * on the stack; the room names it holds are borrowed until the emit. */
#define WSIO_OP_MAX_ROOMS 16
typedef struct wsio_op {
  wsio_nsp *nsp;
  const wsio_socket *except_socket;   /* socket.broadcast: everyone but the sender */
  const char *rooms[WSIO_OP_MAX_ROOMS];
  unsigned nrooms;
  const char *except[WSIO_OP_MAX_ROOMS];
  unsigned nexcept;
  unsigned flags;
  uint32_t timeout_ms;
  int err;                            /* WSIO_ELIMIT once too many rooms were added */
} wsio_op;

#define WSIO_OP_VOLATILE 1u
#define WSIO_OP_LOCAL 2u
#define WSIO_OP_NOCOMPRESS 4u

/* io.of(n) / io.sockets as a target: every socket of the namespace. */
WSIO_API wsio_op wsio_nsp_op(wsio_nsp *n);
/* socket.broadcast: every socket of the namespace but s. */
WSIO_API wsio_op wsio_socket_broadcast(wsio_socket *s);
/* io.to(room) and socket.to(room) (the latter excludes the sender). */
WSIO_API wsio_op wsio_nsp_to(wsio_nsp *n, const char *room);
WSIO_API wsio_op wsio_socket_to(wsio_socket *s, const char *room);
/* Chainable modifiers; each returns op. local: this server only, when an adapter links servers (see
 * Cluster below). compress is kept for parity with socket.io: broadcasts are sent uncompressed. */
WSIO_API wsio_op *wsio_op_to(wsio_op *op, const char *room);
WSIO_API wsio_op *wsio_op_except(wsio_op *op, const char *room);
WSIO_API wsio_op *wsio_op_volatile(wsio_op *op);
WSIO_API wsio_op *wsio_op_local(wsio_op *op);
WSIO_API wsio_op *wsio_op_compress(wsio_op *op, int on);
WSIO_API wsio_op *wsio_op_timeout(wsio_op *op, uint32_t ms);

/* Emits to every target, encoded once. Returns the number of sockets it was queued to, or a negative code. */
WSIO_API int wsio_op_emit(const wsio_op *op, const char *event, const char *json_args);
WSIO_API int wsio_op_emitv(const wsio_op *op, const char *event, const wsio_value *vals, size_t n);
WSIO_API int wsio_op_emit_args(const wsio_op *op, const char *event, const wsio_args *args);

/* io.timeout(ms).emit(event, ...args, (err, responses) => ...): cb runs once, when every target answered
 * (err 0; before this returns when there is no target and no cluster adapter) or at the timeout (err
 * WSIO_ETIMEDOUT, with the answers that came). responses[i] are borrowed. */
typedef void (*wsio_bcast_ack_cb)(int err, const wsio_args *const *responses, size_t n, void *ud);
WSIO_API int wsio_op_emit_ack(const wsio_op *op, const char *event, const char *json_args, wsio_bcast_ack_cb cb, void *ud);

/* io.in(room).socketsJoin(r) / socketsLeave(r) / disconnectSockets(close) / fetchSockets(). */
WSIO_API int wsio_op_sockets_join(const wsio_op *op, const char *room);
WSIO_API int wsio_op_sockets_leave(const wsio_op *op, const char *room);
WSIO_API int wsio_op_disconnect_sockets(const wsio_op *op, int close);
/* Fills out with up to cap matching sockets (valid until the loop runs again). Returns the total count. */
WSIO_API size_t wsio_op_fetch_sockets(const wsio_op *op, wsio_socket **out, size_t cap);

/* Shortcuts: io.emit(event, ...) on "/" and socket.broadcast.emit(event, ...). */
WSIO_API int wsio_io_emit(wsio_io *io, const char *event, const char *json_args);
WSIO_API int wsio_socket_broadcast_emit(wsio_socket *s, const char *event, const char *json_args);

/* ---- Engine.IO ------------------------------------------------------------------------------------
 *
 * A raw Engine.IO v4 server (HTTP long-polling and WebSocket, no Socket.IO on top), as npm engine.io's:
 *
 *   engine.on("connection", socket => { socket.on("message", data => socket.send(data));
 *                                       socket.on("close", reason => {}); socket.id; socket.close(); });
 *
 * Several engines and one wsio_io can share a wsio_server on different paths. A wsio_engine_socket is valid
 * from its connection callback until its close callback has returned; calls on it from inside its own
 * callbacks are safe even after wsio_engine_socket_close() (they return WSIO_ECLOSED).
 */

typedef struct wsio_engine wsio_engine;
typedef struct wsio_engine_socket wsio_engine_socket;

typedef struct wsio_engine_config {
  const char *path;              /* default "/engine.io/" */
  uint32_t ping_interval_ms;     /* default 25000 */
  uint32_t ping_timeout_ms;      /* default 20000 */
  uint32_t upgrade_timeout_ms;   /* default 10000 */
  size_t max_payload;            /* maxHttpBufferSize: bytes per message or POST body; default 1000000 */
  int transports;                /* WSIO_TRANSPORT_* bits; 0: both */
  int no_upgrades;               /* set: polling sessions never move to WebSocket */
  const char *cors_origin;       /* NULL: no CORS; "*": any origin; else a comma list of origins */
  int cors_credentials;
  const char *cookie;            /* NULL: none; else the cookie's name */
  wsio_deflate_mode per_message_deflate; /* default off, as engine.io */
} wsio_engine_config;

/* Attaches an Engine.IO server to s at cfg->path (new Server(opts).attach(httpServer)). cfg may be NULL;
 * it is copied. The engine lives as long as s. Returns NULL on ENOMEM, or when the path is already served
 * by another engine or by s's wsio_io. */
WSIO_API wsio_engine *wsio_engine_new(wsio_server *s, const wsio_engine_config *cfg);

/* engine.on("connection", cb): a session opened (its handshake has been answered). */
typedef void (*wsio_engine_connection_cb)(wsio_engine_socket *s, void *ud);
WSIO_API void wsio_engine_on_connection(wsio_engine *e, wsio_engine_connection_cb cb, void *ud);
/* engine.clientsCount: open sessions. */
WSIO_API size_t wsio_engine_count(const wsio_engine *e);

/* socket.on("message", data => ...): one message; op is WSIO_TEXT or WSIO_BINARY, data borrowed. */
typedef void (*wsio_engine_message_cb)(wsio_engine_socket *s, wsio_opcode op, const void *data, size_t len,
                                       void *ud);
WSIO_API void wsio_engine_socket_on_message(wsio_engine_socket *s, wsio_engine_message_cb cb, void *ud);
/* socket.on("close", reason => ...): the last callback for s. Reasons are engine.io's: "transport close",
 * "transport error", "ping timeout", "parse error", "forced close", "server shutting down". */
typedef void (*wsio_engine_close_cb)(wsio_engine_socket *s, const char *reason, void *ud);
WSIO_API void wsio_engine_socket_on_close(wsio_engine_socket *s, wsio_engine_close_cb cb, void *ud);

/* socket.send(data): queues one message (data copied). Text must be UTF-8. Returns 0, WSIO_EINVAL,
 * WSIO_ECLOSED, WSIO_ENOMEM. */
WSIO_API int wsio_engine_socket_send(wsio_engine_socket *s, wsio_opcode op, const void *data, size_t len);
/* socket.close(): ends the session (a CLOSE packet on polling); the close callback runs, with reason
 * "forced close", before this returns. */
WSIO_API void wsio_engine_socket_close(wsio_engine_socket *s);

/* socket.id (20 characters), socket.transport.name ("polling" or "websocket"), the peer as "ip:port" (through
 * a trusted proxy, the client's address alone). */
WSIO_API const char *wsio_engine_socket_id(const wsio_engine_socket *s);
WSIO_API const char *wsio_engine_socket_transport(const wsio_engine_socket *s);
WSIO_API const char *wsio_engine_socket_remote(const wsio_engine_socket *s);
WSIO_API void wsio_engine_socket_set_data(wsio_engine_socket *s, void *data);
WSIO_API void *wsio_engine_socket_data(const wsio_engine_socket *s);

/* ---- Cluster: operations that reach every server (the threads of wsio_workers_run, Redis nodes) ------ */

/* With a cluster adapter on the io, broadcasts (wsio_op_emit*, wsio_op_emit_ack), wsio_op_sockets_join /
 * leave and wsio_op_disconnect_sockets reach the sockets of every server; wsio_op_local() keeps one on this
 * server. Their return values count this server's sockets. Without an adapter every function below acts on
 * this server alone and calls back before it returns. Requests that wait for other servers time out after
 * the op's timeout (wsio_op_timeout) or timeout_ms, 0 meaning WSIO_CLUSTER_TIMEOUT_MS. */
#define WSIO_CLUSTER_TIMEOUT_MS 5000

/* A socket of any server, as io.fetchSockets() gives it. Everything is borrowed for the callback. */
typedef struct wsio_remote_socket {
  const char *id;
  const char *nsp;
  const char *const *rooms;     /* socket.rooms: its id first */
  size_t nrooms;
  const char *handshake_json;   /* socket.handshake: {"headers":{..},"time":"..","address":"..","xdomain":b,
                                   "secure":b,"issued":ms,"url":"..","query":{..},"auth":{..}} */
  const char *data_json;        /* socket.data (wsio_socket_set_data_json), "null" when unset */
  wsio_socket *local;           /* the socket when it is on this server and still connected, else NULL */
} wsio_remote_socket;

/* io.in(room).fetchSockets() across servers: cb runs once with the matching sockets of every server, err 0
 * when every server answered, WSIO_ETIMEDOUT (with those that came) at the timeout, or the adapter's error
 * (with this server's). Returns 0, or a negative code (then cb is never called). */
typedef void (*wsio_fetch_cb)(int err, const wsio_remote_socket *sockets, size_t n, void *ud);
WSIO_API int wsio_op_fetch_sockets_all(const wsio_op *op, wsio_fetch_cb cb, void *ud);

/* socket.data as other servers see it: a JSON value, validated and copied (NULL clears it). Returns 0,
 * WSIO_EINVAL or WSIO_ENOMEM. wsio_socket_data_json returns it ("null" when unset), borrowed until the next
 * set. Independent of wsio_socket_set_data, the pointer for this process. */
WSIO_API int wsio_socket_set_data_json(wsio_socket *s, const char *json);
WSIO_API const char *wsio_socket_data_json(const wsio_socket *s);

/* io.of(n).serverSideEmit(event, ...args): every other server's handlers for event run (never this
 * server's). json_args as for emits. Returns 0 (also without an adapter: there is no other server),
 * WSIO_EINVAL (bad JSON, reserved name), or the adapter's error. */
WSIO_API int wsio_nsp_server_side_emit(wsio_nsp *n, const char *event, const char *json_args);
/* serverSideEmit with an ack (serverSideEmitWithAck): cb gets one answer per other server (the arguments
 * its handler answered with; empty when it had none), err as for wsio_op_fetch_sockets_all. timeout_ms 0:
 * WSIO_CLUSTER_TIMEOUT_MS. Returns 0 or a negative code (then cb is never called). */
WSIO_API int wsio_nsp_server_side_emit_ack(wsio_nsp *n, const char *event, const char *json_args,
                                           uint32_t timeout_ms, wsio_bcast_ack_cb cb, void *ud);

/* io.on(event, (...args, callback) => ...) for events other servers send with serverSideEmit. ack is NULL
 * when the sender wants no answer; otherwise the first wsio_server_ack_send() during the call is the
 * answer (none: an empty one). Handlers of a dynamic namespace's children are the parent's. */
typedef struct wsio_server_ack wsio_server_ack;
typedef void (*wsio_server_event_cb)(wsio_nsp *n, const wsio_args *args, wsio_server_ack *ack, void *ud);
WSIO_API int wsio_nsp_on_server_side(wsio_nsp *n, const char *event, wsio_server_event_cb cb, void *ud);
/* callback(...args): json_args a JSON array (NULL: none). Returns 0, or WSIO_EINVAL (bad JSON, or already
 * answered). */
WSIO_API int wsio_server_ack_send(wsio_server_ack *ack, const char *json_args);

/* io.serverCount(): cb gets the number of servers, this one included (1 without an adapter; err
 * WSIO_ETIMEDOUT and 1 when the adapter does not answer in time). Returns 0 or a negative code. */
typedef void (*wsio_server_count_cb)(int err, size_t servers, void *ud);
WSIO_API int wsio_io_server_count(wsio_io *io, wsio_server_count_cb cb, void *ud);

/* ---- Redis adapter ---------------------------------------------------------------------------------- */

/* Makes io one node of a cluster of Socket.IO servers that share a Redis server, wire-compatible with npm
 * @socket.io/redis-adapter 8.x: wsio nodes and Node socket.io servers using createAdapter (classic pub/sub)
 * or createShardedAdapter (sharded, Redis 7) with the same key share rooms, broadcasts, acks,
 * fetchSockets, socketsJoin/Leave, disconnectSockets and serverSideEmit, and @socket.io/redis-emitter
 * reaches this node's clients (classic mode). One Redis server, or a Redis Cluster: when the server named
 * by the URL reports cluster_enabled:1 the adapter finds the primaries itself (CLUSTER SLOTS), sends each
 * sharded channel to the primary owning its slot, follows slot moves and sums server counts over the
 * primaries, as @socket.io/redis-adapter does over a node-redis cluster client.
 *
 * Faults: when Redis goes away, local delivery goes on; messages for other nodes are dropped and counted
 * (nothing queues up), requests across nodes complete with this node's answers, and both connections
 * reconnect with capped exponential back-off, then subscribe again. Each state change is logged once. */
typedef enum wsio_redis_mode {
  WSIO_REDIS_DYNAMIC = 0,         /* sharded: one channel per public room, as subscriptionMode "dynamic" */
  WSIO_REDIS_STATIC = 1,          /* sharded: one channel per namespace ("static") */
  WSIO_REDIS_DYNAMIC_PRIVATE = 2  /* sharded: socket ids' rooms get channels too ("dynamic-private") */
} wsio_redis_mode;

typedef struct wsio_redis_config {
  const char *url;               /* redis://[[user]:password@]host[:port][/db]; NULL: redis://127.0.0.1:6379;
                                  * or redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/name[/db]:
                                  * the master named name, as the listed sentinels (port 26379 by default)
                                  * say, followed through failovers. rediss:// and rediss+sentinel://: the
                                  * same over TLS (every connection: servers, cluster nodes, sentinels) */
  const char *key;               /* channel prefix (the adapters' key / channelPrefix); NULL: "socket.io" */
  int sharded;                   /* Redis 7 sharded pub/sub (SPUBLISH/SSUBSCRIBE), as createShardedAdapter */
  wsio_redis_mode subscription_mode; /* sharded only; default WSIO_REDIS_DYNAMIC as in socket.io */
  int degraded_start;            /* Redis unreachable now: start anyway, local only, retrying in the back */
  uint32_t connect_timeout_ms;   /* per attempt; 0: 2000 */
  uint32_t reconnect_max_ms;     /* back-off cap; 0: 5000 */
  /* TLS (rediss URLs only; the files are read by wsio_io_redis): certificates are verified, and must name
   * the host connected to, unless tls_insecure. */
  const char *tls_ca_file;       /* PEM CA certificates the servers' must chain to; NULL: the system's store */
  const char *tls_cert_file;     /* PEM client certificate chain for servers that require one (mutual TLS) */
  const char *tls_key_file;      /* its private key; with tls_cert_file */
  const char *tls_server_name;   /* the name certificates must carry (and SNI); NULL: the host connected to */
  int tls_insecure;              /* no certificate verification at all: for testing only (a warning is logged) */
  /* Redis Sentinel: the sentinels' own credentials (their requirepass or an ACL user), apart from the data
   * servers' in the URL. NULL: the sentinels are asked without AUTH. */
  const char *sentinel_user;     /* NULL: AUTH with the password alone */
  const char *sentinel_password;
  /* Redis Streams (Redis 6.2 or later), as npm @socket.io/redis-streams-adapter 0.3's createAdapter: the
   * nodes share broadcasts, socketsJoin/Leave and disconnectSockets through a stream each node reads with
   * blocking XREAD (from where it stopped, after an outage too); requests and answers (broadcasts with
   * acks, fetchSockets, serverSideEmit, serverCount) go through pub/sub, sharded when sharded is set (its
   * useShardedPubSub). With connection state recovery on (wsio_io_config.recovery_ms), sessions are kept in
   * Redis and the stream holds the broadcasts, so a client comes back recovered on any node, wsio or Node,
   * and a broadcast's offset is its stream entry's id: its local delivery waits for Redis's answer to XADD,
   * as the package's does (not while Redis is away). key is the channel prefix (channelPrefix). While
   * Redis is away, stream entries and sessions wait in a bounded queue and go out once it is back;
   * subscription_mode does not apply. */
  int streams;
  const char *stream_name;       /* streamName; NULL: "socket.io" */
  unsigned stream_count;         /* streamCount: namespaces spread over that many streams; 0: 1 */
  uint32_t max_len;              /* maxLen: entries a stream keeps, about (XADD MAXLEN ~); 0: 10000 */
  uint32_t read_count;           /* readCount: entries per XREAD; 0: 100 */
  uint32_t block_ms;             /* blockTimeInMs: how long one XREAD waits; 0: 5000 */
  const char *session_key_prefix; /* sessionKeyPrefix; NULL: "sio:session:" */
} wsio_redis_config;

/* Attaches the Redis adapter to io (cfg copied; NULL: defaults). Unless degraded_start is set, first checks
 * that Redis answers (a blocking connect of at most connect_timeout_ms; with Sentinel, the sentinels are
 * asked in turn for the master, which must then answer as a master) and fails with a logged reason.
 * Returns 0, WSIO_EINVAL (bad URL or mode; a Sentinel URL naming a cluster node; TLS settings without a
 * rediss URL, Sentinel credentials without Sentinel), WSIO_EIO (Redis unreachable, no sentinel knows the
 * master, or a cluster whose cluster_state is not ok), WSIO_ETLS (a TLS file cannot be used, or the TLS
 * handshake failed: a certificate not trusted, a name that does not match, a client certificate refused;
 * OpenSSL's reason logged), WSIO_EPROTO (Redis refused AUTH or SELECT), WSIO_EEXISTS (io already has an
 * adapter), WSIO_ENOMEM. Later TLS failures are lost connections like any other: logged, retried, counted.
 * Loop thread only. The adapter lives as long as io. */
WSIO_API int wsio_io_redis(wsio_io *io, const wsio_redis_config *cfg);

typedef struct wsio_redis_stats {
  int connected;          /* both connections (publish, subscribe) are up */
  uint64_t connects;      /* connections made, first ones and reconnections, both connections counted */
  uint64_t disconnects;   /* connections lost or attempts failed */
  uint64_t published;     /* messages handed to Redis */
  uint64_t received;      /* messages from other nodes (and emitters) */
  uint64_t dropped;       /* messages for other nodes not sent: Redis away, or output over its limit */
  uint64_t malformed;     /* messages from Redis that did not decode, ignored */
  /* Redis Cluster (all 0 with one server): */
  int cluster;                 /* the URL names a Redis Cluster node: the adapter runs in cluster mode */
  unsigned cluster_primaries;  /* primaries in the topology known now */
  uint64_t cluster_refreshes;  /* topologies read (CLUSTER SLOTS) */
  uint64_t cluster_redirects;  /* -MOVED/-ASK replies, and sharded subscriptions a node dropped (slot moved) */
  /* Redis Sentinel (0 without): */
  int sentinel;                /* the URL is redis+sentinel:// */
  uint64_t sentinel_switches;  /* failovers followed: the master changed to another server */
  /* Redis Streams (0 without): */
  int streams;                 /* the streams protocol */
  uint64_t stream_entries;     /* stream entries read, this node's own included */
  uint64_t queued;             /* entries and sessions waiting for Redis now (they count as dropped when the
                                * queue is full) */
  uint64_t sessions_saved;     /* sessions handed to Redis for recovery */
  uint64_t sessions_restored;  /* clients recovered from a session in Redis */
} wsio_redis_stats;

/* Fills out with the counters of io's Redis adapter. Returns 0, or WSIO_ENOTFOUND when io has none. */
WSIO_API int wsio_io_redis_stats(const wsio_io *io, wsio_redis_stats *out);

/* ---- Admin UI ------------------------------------------------------------------------------------- */

/* What npm @socket.io/admin-ui's instrument(io, options) does on a Node server: the Socket.IO Admin UI
 * dashboard (https://admin.socket.io, or its static build served anywhere) connects to the admin namespace
 * with a socket.io client and sees this server's sockets, rooms, namespaces and traffic, and may act on
 * them (emit, join, leave, disconnect). Wire-compatible with admin-ui 0.5.x: the events it emits (config,
 * all_sockets, server_stats every stats_interval_ms, socket_connected, socket_updated, socket_disconnected,
 * room_joined, room_left, event_received, event_sent, session) carry the same fields.
 *
 * With a cluster adapter (Redis, wsio_workers_run) the admin namespace's events go to the dashboards of
 * every server, actions reach the sockets of every server, and all_sockets is fetched from every server,
 * as with instrument() on each Node server: instrument every io of the cluster. Each worker of
 * wsio_workers_run reports as a server of its own (serverId "host#pid#index"), so the dashboard's servers
 * page and its totals add up the workers. Sessions (a dashboard reconnecting with the session id it was
 * given at login) are known to every io of the process, not to other processes. */
typedef enum wsio_admin_mode {
  WSIO_ADMIN_DEVELOPMENT = 0, /* sockets, rooms and every event are reported (instrument()'s default) */
  WSIO_ADMIN_PRODUCTION = 1   /* server_stats (aggregated counts) only: no cost per socket or per event */
} wsio_admin_mode;

typedef struct wsio_admin_config {
  const char *nsp;              /* the admin namespace (namespaceName); NULL: "/admin" */
  /* Basic authentication: the dashboard's login form. NULL username: none (auth: false), so anyone who
   * reaches the namespace is an administrator; a warning is logged. */
  const char *username;
  const char *password_hash;    /* bcrypt hash ($2a$, $2b$ or $2y$, e.g. from bcryptjs) of the password */
  int readonly;                 /* actions are ignored and not offered in config.supportedFeatures */
  wsio_admin_mode mode;
  const char *server_id;        /* serverId; NULL: the host name ("host#pid#index" on a worker of a group
                                 * of several; a given id gets "#index" there) */
  uint32_t stats_interval_ms;   /* server_stats period; 0: 2000, as instrument() */
} wsio_admin_config;

/* instrument(io, options): makes the admin namespace and starts reporting. cfg may be NULL (no
 * authentication, development mode); it is copied. A client's credentials are checked with bcrypt off the
 * loop (libuv's thread pool); a wrong one gets CONNECT_ERROR "invalid credentials", as instrument()
 * answers. Returns 0, WSIO_EINVAL (a namespace not starting with '/', a username without a valid bcrypt
 * hash, a mode out of range), WSIO_EEXISTS (io is instrumented already), WSIO_ENOMEM. Loop thread only;
 * with wsio_workers_run, call it in every worker's setup. What it made lives as long as io. */
WSIO_API int wsio_io_instrument(wsio_io *io, const wsio_admin_config *cfg);

/* ---- Workers: every core of the machine --------------------------------------------------------------- */

/* One libuv loop per thread, each a whole wsio_server. The kernel spreads new connections over the workers
 * (SO_REUSEPORT listeners on the same port); Socket.IO operations reach the sockets of every worker through
 * an in-process cluster adapter attached to each worker's io (broadcasts, rooms, acks, fetchSockets,
 * serverSideEmit), raw WebSocket publish reaches every worker's endpoint, and a long-polling request or an
 * upgrade that lands on a worker other than its session's is handed to the owning worker with its socket.
 * An io that already has an adapter (Redis) keeps it: each worker is then its own node of that cluster. */

/* Builds worker `index` (0..n-1) on its own thread, before that worker's loop runs: endpoints, io,
 * handlers, then wsio_server_listen(). Worker 0 runs first and alone: a port 0 it listens on is the port
 * every other worker's listener at the same position then shares. Returns 0, or a negative code that
 * stops every worker (wsio_workers_run() returns it). */
typedef int (*wsio_worker_setup_cb)(wsio_server *s, unsigned index, void *ud);

/* The number of CPU cores this process may run on (at least 1): the default number of workers. */
WSIO_API unsigned wsio_cpu_count(void);

/* Runs n workers (0: wsio_cpu_count()) made with cfg (may be NULL; copied) and setup, until every worker
 * has stopped: wsio_workers_stop(), or SIGINT/SIGTERM when handle_signals is set (graceful stop of every
 * worker; a second signal closes every connection at once; SIGPIPE is ignored). Blocks the calling thread,
 * which runs no server itself. n = 1 runs one worker like wsio_server_run() would, on its own thread.
 * Returns 0, WSIO_EINVAL, WSIO_ENOMEM, or the first setup error. */
WSIO_API int wsio_workers_run(unsigned n, const wsio_server_config *cfg, int handle_signals,
                              wsio_worker_setup_cb setup, void *ud);

/* Graceful stop of every worker of s's group (s alone when it is no worker), as wsio_server_stop().
 * Thread-safe. */
WSIO_API void wsio_workers_stop(wsio_server *s, uint32_t timeout_ms);

/* Registers cb to run on worker s's thread once its loop has returned (the worker stopped), before the
 * server is freed: the place to finish and free what setup made on the loop. cb may run the loop again
 * (wsio_server_loop) to let its own handles finish. One per worker; a later call replaces it. Ignored on a
 * server that is no worker. */
typedef void (*wsio_worker_exit_cb)(wsio_server *s, unsigned index, void *ud);
WSIO_API void wsio_worker_on_exit(wsio_server *s, wsio_worker_exit_cb cb, void *ud);

/* The worker's index (0 for a server that is no worker) and the number of workers of its group (1). */
WSIO_API unsigned wsio_worker_index(const wsio_server *s);
WSIO_API unsigned wsio_worker_count(const wsio_server *s);

struct wsio_stats; /* below, under Statistics */
/* The counters of every worker of s's group summed (s's own for a server that is no worker). Each worker
 * copies its counters for the others when its loop is about to wait, at most every 10 ms: the other
 * workers' parts are about 10 ms old at most; called on a worker's thread, that worker's part is live.
 * Thread-safe while the group runs. */
WSIO_API void wsio_workers_stats(const wsio_server *s, struct wsio_stats *out);

/* ---- Statistics ---------------------------------------------------------------------------------- */

typedef struct wsio_stats {
  uint64_t connections;       /* open TCP connections now */
  /* Raw WebSocket endpoints (wsio_server_ws) only: */
  uint64_t websockets;        /* open connections now */
  uint64_t messages_in, messages_out;
  uint64_t bytes_in, bytes_out; /* every connection (TLS: the encrypted bytes) */
  uint64_t dropped;           /* droppable messages dropped for backpressure */
  uint64_t slow_closes;       /* connections closed with 1008 for backpressure */
  uint64_t rejected;          /* connections refused at max_connections */
  /* Socket.IO (zero without wsio_io_new) */
  uint64_t sio_polling;       /* Engine.IO sessions on long-polling now */
  uint64_t sio_websocket;     /* Engine.IO sessions on WebSocket now */
  uint64_t sio_sockets;       /* sockets connected, over all namespaces */
  uint64_t sio_namespaces;
  uint64_t sio_rooms;         /* rooms with members, over all namespaces (a socket's own room not counted) */
  uint64_t sio_events_in;     /* events received from clients */
  uint64_t sio_events_out;    /* event packets queued to clients (a broadcast counts once per receiver) */
  uint64_t sio_volatile_dropped; /* volatile events not sent to a congested client */
  uint64_t sio_parse_errors;  /* clients closed for malformed packets */
  uint64_t sio_slow_closes;   /* clients disconnected past send_buffer_limit (slow readers) */
  /* Abuse limits (counters since start; see wsio_limiter_config, wsio_ws_config, wsio_io_config) */
  uint64_t ip_refused;        /* connections over max_connections_per_ip (503, or closed at accept) */
  uint64_t handshakes_limited; /* handshakes answered 429 for the per-address rate */
  uint64_t rate_closes;       /* raw WebSocket connections closed with 1008 for their message rate */
  uint64_t rate_dropped;      /* raw WebSocket messages dropped for the rate (message_rate_drop) */
  uint64_t sio_rate_closes;   /* Socket.IO clients disconnected for their packet rate */
  uint64_t sio_rate_dropped;  /* Socket.IO packets dropped for the rate (packet_rate_drop) */
  uint64_t sio_rooms_refused; /* joins refused at max_rooms_per_socket */
  uint64_t sio_acks_refused;  /* acks not awaited at max_pending_acks (emit refused, or a broadcast's
                               * answer from that socket not awaited) */
  uint64_t ip_addresses;      /* addresses in the server's per-address table now (a shared table's total) */
  uint64_t origin_refused;    /* WebSocket upgrades refused with 403 for their Origin (raw and Engine.IO) */
  /* Workers (wsio_workers_run) */
  uint64_t handoffs;          /* connections taken over from another worker: a long-polling request or an
                               * upgrade for a session of this worker's that reached another one */
} wsio_stats;

/* Fills out with the server's counters. */
WSIO_API void wsio_server_stats(const wsio_server *s, wsio_stats *out);

/* The rooms of a namespace: fills names[i] (borrowed until the loop runs again) and counts[i] (members; may
 * be NULL) for up to cap rooms. Returns the total number of rooms. */
WSIO_API size_t wsio_nsp_rooms(const wsio_nsp *n, const char **names, size_t *counts, size_t cap);
/* Every namespace: fills out with up to cap of them. Returns the total. */
WSIO_API size_t wsio_io_namespaces(const wsio_io *io, wsio_nsp **out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* WSIO_H */
