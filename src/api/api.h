/* Internals of the public API (include/wsio.h): the server object and raw WebSocket endpoints. */
#ifndef WSIO_API_API_H
#define WSIO_API_API_H

#include <uv.h>

#include "http/conn.h"
#include "http/parser.h"
#include "net/iplimit.h"
#include "net/net.h"
#include "net/trust.h"
#include "ws/deflate.h"
#include "ws/conn.h"
#include "ws/handshake.h"
#include "ws/session.h"
#include "wsio.h"

#define API_MAX_ENDPOINTS 32

typedef struct api_endpoint {
  char *path;
  wsio_server *server;
  wsio_ws_handlers h;
  wsio_ws_config cfg;          /* strings point at the copies below */
  char *subprotocols, *origins;
  ws_session_limits limits;
  ws_conn_params params;
  ws_handshake_config hs;
  wsio_ws *members;            /* open connections, for publish and shutdown */
  size_t count;
} api_endpoint;

/* The ext area of a ws_conn (one allocation). */
struct wsio_ws {
  api_endpoint *ep;
  wsio_ws *next, *prev;        /* the endpoint's member list */
  void *data;
  char *protocol;              /* NULL: none */
  char *remote;                /* made on first wsio_ws_remote() */
  net_bucket rate;             /* messages received (wsio_ws_config.messages_per_second) */
};

/* An in-tree HTTP handler tried before static files (the program's pages, later Engine.IO). Returns the
 * status it wrote into out, or 0 when the request is not its own. */
typedef int (*api_http_hook)(wsio_server *s, const http_request *req, buf *out, int keep_alive, void *arg);

typedef struct api_page {
  struct api_page *next;
  char *path, *type;
  char etag[24];
  size_t len;
  uint8_t *body;
} api_page;

struct wsio_server {
  api_page *pages;
  wsio_io *io;                 /* the Socket.IO server, if attached */
  wsio_engine *engines;        /* raw Engine.IO servers (src/api/engine.c), a list */
  api_http_hook hook;
  void *hook_arg;
  http_conn *hook_hc;          /* the request the hook is answering, for api_http_defer */
  uv_loop_t uv;
  net_loop net;
  wsio_server_config cfg;
  char *web_root;
  http_limits hlimits;
  http_server_cfg http;
  api_endpoint *endpoints[API_MAX_ENDPOINTS];
  int nendpoints;
  ws_deflate_shared *deflate;
  net_tls_ctx *tls;
  net_trust *trust;            /* trusted proxies (net.trust borrows it), or NULL */
  uv_signal_t sigint, sigterm;
  uv_async_t stop_async;
  uv_timer_t stop_timer;
  uint64_t stop_deadline;
  uint32_t stop_timeout_ms;
  int signals_on;
  int stopping;
  wsio_stats stats;            /* the counters net does not keep */
  struct api_group *group;     /* wsio_workers_run's group (src/api/workers.c), or NULL */
  unsigned worker;             /* the index in the group */
};

/* Points the loop's HTTP connections at the router (src/api/http.c). */
void api_http_configure(wsio_server *s);
/* Upgrades c to a WebSocket of ep after req was accepted (src/api/ws.c). rest: bytes after the request. */
void api_ws_upgrade(net_conn *c, api_endpoint *ep, const ws_handshake_result *res, uint8_t *rest, size_t rest_len);
/* The endpoint serving path, or NULL. */
api_endpoint *api_endpoint_find(wsio_server *s, const char *path, size_t len);
/* Sends close 1001 to every WebSocket and ends every other connection (shutdown). */
void api_ws_shutdown_all(wsio_server *s);
void api_endpoint_free(api_endpoint *ep);
/* Socket.IO (src/sio/io.c): routes its HTTP requests (1 if handled), closes every client, frees. */
int sio_io_http(wsio_io *io, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len);
void sio_io_shutdown(wsio_io *io);
void sio_io_stats(const wsio_io *io, wsio_stats *out);
void sio_io_free(wsio_io *io);
/* Raw Engine.IO servers (src/api/engine.c): route their HTTP requests (1 if handled), close every
 * session, free them all. */
int api_engine_http(wsio_server *s, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len);
void api_engine_shutdown_all(wsio_server *s);
void api_engine_free_all(wsio_server *s);
void api_page_free(api_page *p);
/* Per-address limits (src/api/limits.c): the loop's table and trusted proxies from the server's config (0,
 * WSIO_EINVAL for a list of proxies that does not parse, or WSIO_ENOMEM), their release at free, the
 * counters. The two answers: api_refuse_over_ip answers 503 to a connection over max_connections_per_ip
 * (closing it, unless it is a trusted proxy's: the next request on it may be another client's),
 * api_handshake_refused 429 when the address's handshake bucket is empty; each returns 1 when it answered
 * (the request is then done), else 0. */
int api_limits_attach(wsio_server *s);
void api_limits_detach(wsio_server *s);
void api_limits_stats(const wsio_server *s, wsio_stats *out);
int api_refuse_over_ip(http_conn *hc, const http_request *req);
int api_handshake_refused(http_conn *hc);
/* Workers (src/api/workers.c): the port worker 0's listener number i got, for the same listener of
 * another worker asked for port 0 (0: none, or s is worker 0); a publish carried to the other workers. */
int api_group_port(const wsio_server *s, int i);
void api_workers_publish(wsio_server *s, const char *path, wsio_opcode op, const void *data, size_t len,
                         unsigned flags);
/* Installs the in-tree HTTP hook (one). */
void api_server_set_hook(wsio_server *s, api_http_hook hook, void *arg);
/* A hook that answers later: during the hook, api_http_defer(s) holds the request's connection and returns
 * the handle to answer it with (NULL on ENOMEM); the hook then returns API_HOOK_DEFERRED. The answer is a
 * whole response (api_deferred_respond copies it, frees d, and does nothing more when the client is gone
 * meanwhile). Every deferred request must be answered; len 0 answers 503. */
#define API_HOOK_DEFERRED (-1)
typedef struct api_deferred api_deferred;
api_deferred *api_http_defer(wsio_server *s);
void api_deferred_respond(api_deferred *d, const void *data, size_t len, int keep_alive);

#endif
