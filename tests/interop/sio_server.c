/*
 * sio_server — the Socket.IO server that the interop tests drive with official clients (node, python,
 * browser). Built from the public API only (include/wsio.h, plus jansson for the JSON that wsio_args hands
 * out). Every event below is what a test calls; the comment beside each says what the client should see.
 *
 * Usage: sio_server [--host H] [--port P] [--ping-interval MS] [--ping-timeout MS] [--client-dir DIR]
 *                   [--connect-timeout MS] [--workers N] [--recovery MS] [--tls-cert PEM --tls-key PEM]
 * --recovery MS turns connection state recovery on with that window.
 * --tls-cert and --tls-key (both) make the listener speak TLS: https:// and wss://.
 * --workers N runs N workers (wsio_workers_run): the same server on every thread, one port.
 * --redis URL makes the server (each worker) a node of a Redis cluster (wsio_io_redis, classic mode).
 * --parser msgpack makes clients speak socket.io-msgpack-parser (wsio_io_set_parser).
 * --max-dynamic N caps the namespaces "/dyn-*" may create (wsio_io_set_max_dynamic_namespaces).
 * --http-compression BYTES sets the long-polling compression threshold (0: off; wsio_io_set_http_compression).
 * --allow-eio3 (no value) also serves socket.io-client 2.x (wsio_io_set_allow_eio3). "/nodata" refuses every
 * client with the message "no entry" and no data (what a v2 client's 'error' then gets differs from
 * "/admin"'s refusal, which has data).
 * --admin-ui development|production instruments the io for the Socket.IO Admin UI (wsio_io_instrument) on
 *   "/admin" (instead of the token-guarded "/admin" below), with --admin-user U --admin-hash BCRYPT (basic
 *   auth), --admin-readonly 1, --admin-interval MS (server_stats period). --web-root DIR serves DIR (the
 *   dashboard's static build) at / instead of the chat page.
 * Every new session passes an allowRequest (wsio_io_allow_request): a query with deny=query is refused
 * with the message "denied by query", a request with an X-Deny header with the default "Forbidden".
 * Engine.IO error answers (wsio_io_on_connection_error) are printed as "eio-error CODE MESSAGE".
 * --headers 1 adds response headers (wsio_io_on_headers): "Set-Cookie: first=1; Path=/" to the response
 *   that opens a session, "X-Every: yes" to every one, and "X-Refused: N", N the headers wsio_headers_add
 *   refused of three that it must refuse (a Content-Length, a value with CR LF, a name with a space).
 * The namespace "/use" exercises socket.use and socket.on("error") (sio_server_use.c).
 * The room events of "/" (wsio_nsp_on_room) are printed as "room create|delete ROOM" and
 * "room join|leave ROOM ID".
 * Prints "listening on HOST:PORT" once ready, then one line per connection and disconnection:
 *   "connect NSP ID TRANSPORT" and "disconnect NSP ID REASON" (stdout, line-buffered), so a test can
 *   assert what the server saw.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

#ifndef WSIO_CLIENT_DIR
#define WSIO_CLIENT_DIR NULL
#endif

#define ARGS_MAX 16
#define ROOMS_MAX 64

static _Thread_local wsio_io *io; /* each worker's own (--workers) */

/* sio_server_use.c */
int sio_server_use_setup(wsio_server *server, wsio_io *io);
size_t args_values(const wsio_args *a, size_t from, wsio_value *out, size_t cap);
static _Thread_local wsio_server *server_of_thread;
static _Thread_local unsigned worker_index;

/* ---- helpers ---- */

/* The arguments as values, binaries included, for wsio_ack_sendv / wsio_socket_emitv. */
size_t args_values(const wsio_args *a, size_t from, wsio_value *out, size_t cap) {
  size_t n = 0;
  for (size_t i = from; i < wsio_args_count(a) && n < cap; i++, n++) {
    size_t len = 0;
    if (wsio_args_type(a, i) == WSIO_ARG_BINARY) {
      const void *p = wsio_args_binary(a, i, &len);
      out[n] = (wsio_value){1, p, len};
    } else {
      const char *p = wsio_args_json(a, i, &len);
      out[n] = (wsio_value){0, p, len};
    }
  }
  return n;
}

/* Sends a jansson tree (stolen) as the ack's only argument. */
static void ack_tree(wsio_ack *ack, json_t *v) {
  if (!ack) {
    json_decref(v);
    return;
  }
  json_t *arr = json_array();
  json_array_append_new(arr, v);
  char *text = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text) wsio_ack_send(ack, text);
  free(text);
  json_decref(arr);
}

static json_t *rooms_tree(const wsio_socket *s) {
  const char *rooms[ROOMS_MAX];
  size_t n = wsio_socket_rooms(s, rooms, ROOMS_MAX);
  json_t *arr = json_array();
  for (size_t i = 0; i < n && i < ROOMS_MAX; i++) json_array_append_new(arr, json_string(rooms[i]));
  return arr;
}

/* With --workers, the receivers a handler reports are counted over every worker (fetchSockets on the same
 * targets, answered once every worker has), as the tests count the clients of the whole server. */
static int workers;

static void on_reach(int err, const wsio_remote_socket *sockets, size_t n, void *ud) {
  (void)sockets;
  wsio_ack *ack = ud;
  char text[32];
  snprintf(text, sizeof text, "[%d]", err ? err : (int)n);
  if (wsio_ack_send(ack, text) != 0) wsio_ack_drop(ack);
}

static void ack_reach(wsio_ack *ack, const wsio_op *op, int local) {
  wsio_ack *kept = workers > 1 && local >= 0 && ack ? wsio_ack_keep(ack) : NULL;
  if (!kept || wsio_op_fetch_sockets_all(op, on_reach, kept) != 0) {
    if (kept) wsio_ack_drop(kept);
    ack_tree(kept ? NULL : ack, json_integer(local));
  }
}

static int arg_string(const wsio_args *a, size_t i, char *out, size_t cap) {
  return wsio_args_string(a, i, out, cap) >= 0;
}

/* ---- events of "/" ---- */

/* "echo" -> "echo" with the same arguments, binaries (top-level or nested) included. */
static void on_echo(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  int rc = wsio_socket_emit_args(s, "echo", a);
  if (ack) {
    char text[32];
    snprintf(text, sizeof text, "[%d]", rc);
    wsio_ack_send(ack, text);
  }
}

/* "ack-me" -> the ack carries the event's arguments back as they came (wsio_ack_send_args). "ack-values":
 * the same through wsio_ack_sendv, which knows only top-level binaries. */
static void on_ack_me(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)s;
  if (!ack) return;
  if (!ud) {
    wsio_ack_send_args(ack, a);
    return;
  }
  wsio_value v[ARGS_MAX];
  wsio_ack_sendv(ack, v, args_values(a, 0, v, ARGS_MAX));
}

static void on_question_answered(wsio_socket *s, int err, const wsio_args *a, void *ud) {
  (void)ud;
  if (err == 0) wsio_socket_emit_args(s, "answer", a);
  else if (err == WSIO_ETIMEDOUT) wsio_socket_emit(s, "timeout", "[\"timeout\"]");
}

/* "ask-client"(payload, timeout_ms?) -> emit_ack "question"(payload); then "answer" with what the client
 * acked, or "timeout". */
static void on_ask_client(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  int ok;
  double t = wsio_args_number(a, 1, &ok);
  size_t len = 4;
  const char *payload = wsio_args_json(a, 0, &len);
  char text[4096];
  snprintf(text, sizeof text, "[%.*s]", payload ? (int)len : 4, payload ? payload : "null");
  int rc = wsio_socket_emit_ack(s, "question", text, ok ? (uint32_t)t : 2000, on_question_answered, NULL);
  if (ack) {
    snprintf(text, sizeof text, "[%d]", rc);
    wsio_ack_send(ack, text);
  }
}

/* "join"(room) / "leave"(room) -> ack(rooms after the change). */
static void on_join(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  char room[256];
  if (!arg_string(a, 0, room, sizeof room)) return;
  if (ud) wsio_socket_leave(s, room);
  else wsio_socket_join(s, room);
  ack_tree(ack, rooms_tree(s));
}

/* "to-room"(room, ...rest) -> io.to(room).emit("room-msg", room, ...rest); ack(receivers). With "others"
 * as ud: socket.to(room), the sender excluded. */
static void on_to_room(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  char room[256];
  if (!arg_string(a, 0, room, sizeof room)) return;
  wsio_op op = ud ? wsio_socket_to(s, room) : wsio_nsp_to(wsio_socket_nsp(s), room);
  int n = wsio_op_emit_args(&op, "room-msg", a);
  ack_reach(ack, &op, n);
}

/* "broadcast"(...) -> socket.broadcast.emit("broadcast", ...), binaries included; ack(receivers). */
static void on_broadcast(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  wsio_op op = wsio_socket_broadcast(s);
  ack_reach(ack, &op, wsio_op_emit_args(&op, "broadcast", a));
}

/* "emit-all"(...) -> io.emit("all", ...) through the JSON shortcut; ack(receivers). */
static void on_emit_all(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)s;
  (void)ud;
  json_t *arr = json_array();
  for (size_t i = 0; i < wsio_args_count(a); i++) {
    json_t *v = wsio_args_tree(a, i);
    json_array_append_new(arr, v ? v : json_null());
  }
  char *text = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  int n = text ? wsio_io_emit(io, "all", text) : WSIO_ENOMEM;
  free(text);
  wsio_op all = wsio_nsp_op(wsio_io_sockets(io));
  ack_reach(ack, &all, n);
}

/* "disconnect-me"(close?) -> socket.disconnect(close): the client sees "io server disconnect". */
static void on_disconnect_me(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  wsio_socket_disconnect(s, wsio_args_type(a, 0) == WSIO_ARG_TRUE);
}

typedef struct bcast_req {
  char id[64];
  wsio_nsp *nsp;
} bcast_req;

static void on_bcast_done(int err, const wsio_args *const *responses, size_t n, void *ud) {
  bcast_req *r = ud;
  json_t *all = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *one = json_array();
    for (size_t k = 0; k < wsio_args_count(responses[i]); k++) {
      json_t *v = wsio_args_tree(responses[i], k);
      json_array_append_new(one, v ? v : json_null());
    }
    json_array_append_new(all, one);
  }
  json_t *msg = json_pack("[s?o]", err ? wsio_strerror(err) : NULL, all);
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  /* The requester may have left meanwhile: reach it through its own room, which is then empty. */
  wsio_op op = wsio_nsp_to(r->nsp, r->id);
  if (text) wsio_op_emit(&op, "bcast-result", text);
  free(text);
  free(r);
}

/* "bcast-ack"(timeout_ms) -> io.timeout(ms).emit("poll", requester_id, cb): then "bcast-result"(err, answers)
 * to the requester, answers being each socket's ack arguments. ack(targets). */
static void on_bcast_ack(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  int ok;
  double t = wsio_args_number(a, 0, &ok);
  bcast_req *r = calloc(1, sizeof *r);
  if (!r) return;
  snprintf(r->id, sizeof r->id, "%s", wsio_socket_id(s));
  r->nsp = wsio_socket_nsp(s);
  wsio_op op = wsio_nsp_op(r->nsp);
  wsio_op_timeout(&op, ok ? (uint32_t)t : 2000);
  char text[96];
  snprintf(text, sizeof text, "[\"%s\"]", r->id);
  int n = wsio_op_emit_ack(&op, "poll", text, on_bcast_done, r);
  if (n < 0) free(r);
  ack_reach(ack, &op, n);
}

typedef struct info_req {
  wsio_ack *ack;
  json_t *info;
} info_req;

static void on_info_count(int err, const wsio_remote_socket *sockets, size_t n, void *ud) {
  (void)err;
  (void)sockets;
  info_req *r = ud;
  json_object_set_new(r->info, "count", json_integer((json_int_t)n));
  json_t *arr = json_array();
  json_array_append_new(arr, r->info);
  char *text = json_dumps(arr, JSON_COMPACT);
  if (!text || wsio_ack_send(r->ack, text) != 0) wsio_ack_drop(r->ack);
  free(text);
  json_decref(arr);
  free(r);
}

/* "info" -> ack({id, nsp, transport, auth, query, rooms, count}). */
static void on_info(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a;
  (void)ud;
  const wsio_handshake *hs = wsio_socket_handshake(s);
  json_t *auth = json_loads(hs->auth, JSON_DECODE_ANY, NULL);
  json_t *info = json_pack("{s:s,s:s,s:s,s:o,s:s,s:o,s:I}", "id", wsio_socket_id(s), "nsp",
                           wsio_nsp_name(wsio_socket_nsp(s)), "transport", wsio_socket_transport(s), "auth",
                           auth ? auth : json_null(), "query", hs->query, "rooms", rooms_tree(s), "count",
                           (json_int_t)wsio_nsp_count(wsio_socket_nsp(s)));
  if (info) { /* where it lives and whether it came back with its state (recovery tests) */
    json_object_set_new(info, "worker", json_integer((json_int_t)worker_index));
    json_object_set_new(info, "recovered", json_boolean(wsio_socket_recovered(s)));
  }
  if (workers > 1 && info && ack && (ack = wsio_ack_keep(ack))) {
    /* The namespace's count over every worker. */
    info_req *r = malloc(sizeof *r);
    wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
    if (r) *r = (info_req){ack, info};
    if (r && wsio_op_fetch_sockets_all(&op, on_info_count, r) == 0) return;
    free(r);
    wsio_ack_drop(ack);
    json_decref(info);
    return;
  }
  ack_tree(ack, info ? info : json_null());
}

/* Every event is counted (socket.onAny); "count-events" acks the count. */
static void on_any(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  size_t n = (size_t)wsio_socket_data(s) + 1;
  wsio_socket_set_data(s, (void *)n);
  if (ack && strcmp(wsio_args_event(a), "count-events") == 0) ack_tree(ack, json_integer((json_int_t)n));
}

/* "count-seen": a named handler acking what onAny counted so far; socket.io runs onAny first, so the count
 * includes this very event. */
static void on_count_seen(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a;
  (void)ud;
  if (ack) ack_tree(ack, json_integer((json_int_t)(size_t)wsio_socket_data(s)));
}

/* "server-stats" -> ack({connections, handoffs, polling, websocket}) over every worker (wsio_workers_stats:
 * the other workers' parts are up to 10 ms old). */
static void on_server_stats(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)s;
  (void)a;
  (void)ud;
  wsio_stats st;
  wsio_workers_stats(server_of_thread, &st);
  ack_tree(ack, json_pack("{s:I,s:I,s:I,s:I}", "connections", (json_int_t)st.connections, "handoffs",
                          (json_int_t)st.handoffs, "polling", (json_int_t)st.sio_polling, "websocket",
                          (json_int_t)st.sio_websocket));
}

/* ---- connections ---- */

static void on_disconnect(wsio_socket *s, const char *reason, void *ud) {
  (void)ud;
  printf("disconnect %s %s %s\n", wsio_nsp_name(wsio_socket_nsp(s)), wsio_socket_id(s), reason);
}

static void log_connect(wsio_socket *s) {
  printf("connect %s %s %s\n", wsio_nsp_name(wsio_socket_nsp(s)), wsio_socket_id(s), wsio_socket_transport(s));
  wsio_socket_on_disconnect(s, on_disconnect, NULL);
}

/* Most events are per namespace (wsio_nsp_on); a few are registered per socket to cover that path too. */
static void on_main_connection(wsio_socket *s, void *ud) {
  (void)ud;
  log_connect(s);
  /* socket.emit in the connection handler: the client gets it right after its connect. */
  char welcome[64];
  snprintf(welcome, sizeof welcome, "[{\"id\":\"%s\"}]", wsio_socket_id(s));
  wsio_socket_emit(s, "welcome", welcome);
  wsio_socket_on(s, "join", on_join, NULL);
  wsio_socket_on(s, "leave", on_join, (void *)1);
  wsio_socket_on(s, "info", on_info, NULL);
  wsio_socket_on(s, "count-seen", on_count_seen, NULL);
  wsio_socket_on_any(s, on_any, NULL);
}

/* "/admin": only auth.token == "secret" gets in. */
static void admin_guard(wsio_socket *s, wsio_next *next, void *ud) {
  (void)ud;
  json_t *auth = json_loads(wsio_socket_handshake(s)->auth, JSON_DECODE_ANY, NULL);
  const char *token = json_string_value(json_object_get(auth, "token"));
  int ok = token && strcmp(token, "secret") == 0;
  json_decref(auth);
  if (ok) wsio_next_ok(next);
  else wsio_next_error(next, "unauthorized", "{\"code\":401}");
}

/* "/nodata": nobody gets in, and the refusal has no data. */
static void nodata_guard(wsio_socket *s, wsio_next *next, void *ud) {
  (void)s;
  (void)ud;
  wsio_next_error(next, "no entry", NULL);
}

static void on_other_connection(wsio_socket *s, void *ud) {
  (void)ud;
  log_connect(s);
  wsio_socket_on(s, "info", on_info, NULL);
}

static int dyn_match(const char *name, void *ud) {
  (void)ud;
  return strncmp(name, "/dyn-", 5) == 0 && name[5] != 0;
}

/* ---- the chat page for the browser test ---- */

static const char page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>wsio chat</title>"
    "<style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:2rem auto}#log{list-style:none;padding:0}"
    "#log li{padding:.2rem 0;border-bottom:1px solid #eee}#status{color:#888}</style></head><body>"
    "<h1>Chat</h1><p id=\"status\">connecting</p><ul id=\"log\"></ul>"
    "<form id=\"f\"><input id=\"m\" autocomplete=\"off\" placeholder=\"Say something\"><button>Send</button></form>"
    "<script src=\"/socket.io/socket.io.js\"></script><script>"
    "const socket = io();"
    "const log = document.getElementById('log'), status = document.getElementById('status');"
    "function add(t, cls){const li=document.createElement('li');li.textContent=t;li.className=cls;"
    "log.appendChild(li);}"
    "socket.on('connect', () => { status.textContent = 'connected ' + socket.id; });"
    "socket.on('disconnect', r => { status.textContent = 'disconnected: ' + r; });"
    "socket.on('broadcast', d => add(d, 'in'));"
    "document.getElementById('f').onsubmit = e => {e.preventDefault();const m=document.getElementById('m');"
    "if(!m.value)return;socket.emit('broadcast', m.value);add('me: '+m.value, 'out');m.value='';};"
    "</script></body></html>";

/* ---- main ---- */

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--host H] [--port P] [--ping-interval MS] [--ping-timeout MS] [--connect-timeout MS] "
          "[--client-dir DIR] [--workers N] [--redis URL] [--recovery MS] [--parser default|msgpack] "
          "[--http-compression BYTES] [--max-dynamic N] [--allow-eio3] [--headers 1] "
          "[--admin-ui development|production [--admin-user U --admin-hash BCRYPT] [--admin-readonly 1] "
          "[--admin-interval MS]] [--web-root DIR] "
          "[--tls-cert PEM --tls-key PEM]\n",
          argv0);
}

/* The adapter's room events of "/", one line each. */
static void on_room(wsio_nsp *n, wsio_room_event ev, const char *room, const char *id, void *ud) {
  (void)n;
  (void)ud;
  static const char *const names[] = {"create", "delete", "join", "leave"};
  if (id) printf("room %s %s %s\n", names[ev], room, id);
  else printf("room %s %s\n", names[ev], room);
}

/* connection_error: see the top of the file. */
static void on_headers(const wsio_request *r, int initial, wsio_headers *h, void *ud) {
  (void)r, (void)ud;
  if (initial) wsio_headers_add(h, "Set-Cookie", "first=1; Path=/");
  wsio_headers_add(h, "X-Every", "yes");
  int refused = (wsio_headers_add(h, "Content-Length", "5") == WSIO_EINVAL) +
                (wsio_headers_add(h, "X-Bad", "a\r\nX-Injected: 1") == WSIO_EINVAL) +
                (wsio_headers_add(h, "Bad Name", "x") == WSIO_EINVAL);
  char n[8];
  snprintf(n, sizeof n, "%d", refused);
  wsio_headers_add(h, "X-Refused", n);
}

static void on_connection_error(const wsio_request *r, int code, const char *message, void *ud) {
  (void)r;
  (void)ud;
  printf("eio-error %d %s\n", code, message);
}

/* allowRequest: see the top of the file. */
static int allow_request(const wsio_request *r, const char **message, void *ud) {
  (void)ud;
  const wsio_handshake *hs = wsio_request_handshake(r);
  if (strstr(hs->query, "deny=query")) {
    *message = "denied by query";
    return 0;
  }
  return wsio_request_header(r, "X-Deny") == NULL;
}

/* Builds one server: the whole program with one loop, or each worker with --workers. */
static struct {
  const char *host;
  int port;
  wsio_io_config io;
  const char *redis;
  wsio_parser parser;
  long http_compression; /* -1: the default */
  long max_dynamic;      /* -1: the default */
  int allow_eio3;
  int headers;           /* --headers: wsio_io_on_headers */
  int admin;             /* --admin-ui given */
  const char *admin_web_root;
  wsio_admin_config admin_cfg;
} opts;

static int setup(wsio_server *server, unsigned index, void *ud) {
  (void)ud;
  worker_index = index;
  server_of_thread = server;
  if (!opts.admin_web_root) wsio_server_set_page(server, "/", "text/html; charset=utf-8", page, sizeof page - 1);
  io = wsio_io_new(server, &opts.io);
  if (!io) return WSIO_ENOMEM;
  if (wsio_io_set_parser(io, opts.parser) != 0) return WSIO_EINVAL;
  wsio_io_allow_request(io, allow_request, NULL);
  wsio_io_on_connection_error(io, on_connection_error, NULL);
  if (opts.headers) wsio_io_on_headers(io, on_headers, NULL);
  if (opts.http_compression >= 0) wsio_io_set_http_compression(io, (size_t)opts.http_compression);
  if (opts.max_dynamic >= 0) wsio_io_set_max_dynamic_namespaces(io, (size_t)opts.max_dynamic);
  if (opts.allow_eio3) wsio_io_set_allow_eio3(io, 1);
  if (opts.redis) {
    wsio_redis_config rc = {.url = opts.redis};
    int err = wsio_io_redis(io, &rc);
    if (err) return err;
  }

  wsio_nsp *main_nsp = wsio_io_sockets(io);
  wsio_nsp_on_connection(main_nsp, on_main_connection, NULL);
  wsio_nsp_on_room(main_nsp, on_room, NULL);
  wsio_nsp_on(main_nsp, "echo", on_echo, NULL);
  wsio_nsp_on(main_nsp, "ack-me", on_ack_me, NULL);
  wsio_nsp_on(main_nsp, "ack-values", on_ack_me, (void *)1);
  wsio_nsp_on(main_nsp, "ask-client", on_ask_client, NULL);
  wsio_nsp_on(main_nsp, "to-room", on_to_room, NULL);
  wsio_nsp_on(main_nsp, "to-room-others", on_to_room, (void *)1);
  wsio_nsp_on(main_nsp, "broadcast", on_broadcast, NULL);
  wsio_nsp_on(main_nsp, "emit-all", on_emit_all, NULL);
  wsio_nsp_on(main_nsp, "disconnect-me", on_disconnect_me, NULL);
  wsio_nsp_on(main_nsp, "bcast-ack", on_bcast_ack, NULL);
  wsio_nsp_on(main_nsp, "server-stats", on_server_stats, NULL);

  if (opts.admin) {
    int err = wsio_io_instrument(io, &opts.admin_cfg);
    if (err) {
      fprintf(stderr, "wsio_io_instrument: %s\n", wsio_strerror(err));
      return err;
    }
  } else {
    wsio_nsp *admin = wsio_io_of(io, "/admin");
    wsio_nsp_use(admin, admin_guard, NULL);
    wsio_nsp_on_connection(admin, on_other_connection, NULL);
    wsio_nsp_on(admin, "echo", on_echo, NULL);
    wsio_nsp_on(admin, "ack-me", on_ack_me, NULL);
  }

  /* "/use": socket.use and socket.on("error") (sio_server_use.c). */
  int err = sio_server_use_setup(server, io);
  if (err) return err;

  wsio_nsp *nodata = wsio_io_of(io, "/nodata");
  wsio_nsp_use(nodata, nodata_guard, NULL);
  wsio_nsp_on_connection(nodata, on_other_connection, NULL);

  wsio_nsp *dyn = wsio_io_of_match(io, dyn_match, NULL);
  wsio_nsp_on_connection(dyn, on_other_connection, NULL);
  wsio_nsp_on(dyn, "echo", on_echo, NULL);
  wsio_nsp_on(dyn, "ack-me", on_ack_me, NULL);

  int rc = wsio_server_listen(server, opts.host, opts.port);
  if (rc) {
    fprintf(stderr, "cannot listen on %s:%d: %s\n", opts.host, opts.port, wsio_strerror(rc));
    return rc;
  }
  if (index == 0) printf("listening on %s:%d\n", opts.host, wsio_server_port(server));
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *client_dir = WSIO_CLIENT_DIR;
  const char *tls_cert = NULL, *tls_key = NULL;
  int port = 0;
  wsio_io_config cfg = {0};
  opts.http_compression = -1;
  opts.max_dynamic = -1;
  for (int i = 1; i < argc; i += 2) {
    if (!strcmp(argv[i], "--allow-eio3")) { /* the one flag without a value */
      opts.allow_eio3 = 1;
      i--;
      continue;
    }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      usage(argv[0]);
      return 2;
    }
    if (!strcmp(argv[i], "--host")) host = v;
    else if (!strcmp(argv[i], "--port")) port = atoi(v);
    else if (!strcmp(argv[i], "--ping-interval")) cfg.ping_interval_ms = (uint32_t)atoi(v);
    else if (!strcmp(argv[i], "--ping-timeout")) cfg.ping_timeout_ms = (uint32_t)atoi(v);
    else if (!strcmp(argv[i], "--connect-timeout")) cfg.connect_timeout_ms = (uint32_t)atoi(v);
    else if (!strcmp(argv[i], "--recovery")) cfg.recovery_ms = (uint32_t)atoi(v);
    else if (!strcmp(argv[i], "--client-dir")) client_dir = v;
    else if (!strcmp(argv[i], "--workers")) workers = atoi(v);
    else if (!strcmp(argv[i], "--redis")) opts.redis = v;
    else if (!strcmp(argv[i], "--parser") && !strcmp(v, "msgpack")) opts.parser = WSIO_PARSER_MSGPACK;
    else if (!strcmp(argv[i], "--parser") && !strcmp(v, "default")) opts.parser = WSIO_PARSER_DEFAULT;
    else if (!strcmp(argv[i], "--http-compression")) opts.http_compression = atol(v);
    else if (!strcmp(argv[i], "--max-dynamic")) opts.max_dynamic = atol(v);
    else if (!strcmp(argv[i], "--headers")) opts.headers = atoi(v);
    else if (!strcmp(argv[i], "--tls-cert")) tls_cert = v;
    else if (!strcmp(argv[i], "--tls-key")) tls_key = v;
    else if (!strcmp(argv[i], "--admin-ui")) {
      opts.admin = 1;
      opts.admin_cfg.mode = !strcmp(v, "production") ? WSIO_ADMIN_PRODUCTION : WSIO_ADMIN_DEVELOPMENT;
    } else if (!strcmp(argv[i], "--admin-user")) opts.admin_cfg.username = v;
    else if (!strcmp(argv[i], "--admin-hash")) opts.admin_cfg.password_hash = v;
    else if (!strcmp(argv[i], "--admin-readonly")) opts.admin_cfg.readonly = atoi(v);
    else if (!strcmp(argv[i], "--admin-interval")) opts.admin_cfg.stats_interval_ms = (uint32_t)atoi(v);
    else if (!strcmp(argv[i], "--web-root")) opts.admin_web_root = v;
    else {
      usage(argv[0]);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!tls_cert != !tls_key) {
    usage(argv[0]);
    return 2;
  }
  wsio_server_config scfg = {.log_level = 2, .tls_cert = tls_cert, .tls_key = tls_key,
                             .web_root = opts.admin_web_root};
  cfg.client_dir = client_dir;
  opts.host = host;
  opts.port = port;
  opts.io = cfg;
  if (workers > 0) return wsio_workers_run((unsigned)workers, &scfg, 1, setup, NULL) == 0 ? 0 : 1;
  wsio_server *server = wsio_server_new(&scfg);
  if (!server) return 1;
  if (setup(server, 0, NULL) != 0) {
    wsio_server_free(server);
    return 1;
  }
  wsio_server_run(server, 1);
  wsio_server_free(server);
  return 0;
}
