/*
 * redis_node — one wsio node of a Redis cluster for the interop test (test_redis.mjs), built from the public
 * API only. tests/interop/redis_node_server.mjs is the same node written with Node's socket.io and
 * @socket.io/redis-adapter: the test drives both kinds through the same events.
 *
 * Usage: redis_node --redis URL [--sharded] [--streams] [--recovery MS] [--max-len N] [--stream-count N]
 *                   [--workers N]
 *                   [--degraded] [--key K] [--host H] [--port P]
 *                   [--tls-ca F] [--tls-cert F] [--tls-key F] [--tls-server-name N] [--tls-insecure]
 *                   [--sentinel-user U] [--sentinel-password P]
 * (--degraded: the config's degraded_start, so no check at start, and a cluster is found at the first
 * connection; --streams: the streams protocol, as @socket.io/redis-streams-adapter; --recovery: connection
 * state recovery's window; --stream-count: the package's streamCount; --workers: wsio_workers_run, each worker a node of its own on the one port. The
 * tls and sentinel flags are the config's fields of the same names, for rediss:// and Sentinel.)
 * Prints "listening on HOST:PORT" once ready. Events (namespace "/"; "/chat" and "/news" have "join", "fetch",
 * "emit", "to" and "me"; with three streams "/" is on stream 2, "/chat" on 1, "/news" on 0):
 *   join(room)                      socket.join(room); ack(true)
 *   emit(ev, x)                     io.emit(ev, x); ack(local receivers)
 *   emit-bin(ev)                    io.emit(ev, <bytes 1 2 3>, {nested: <bytes 4>})
 *   to(room, ev, x)                 io.to(room).emit(ev, x)
 *   except(room, ev, x)             io.except(room).emit(ev, x)
 *   broadcast(ev, x)                socket.broadcast.emit(ev, x)
 *   fetch(room|null)                io.in(room).fetchSockets(); ack([sorted ids])
 *   sockets-join(room)              io.socketsJoin(room)
 *   kick(room)                      io.in(room).disconnectSockets(true)
 *   sse(ev, x)                      io.serverSideEmit(ev, x)
 *   sse-ack(ev, x)                  io.serverSideEmitWithAck(ev, x); ack([err, answers])
 *   bcast-ack(ms)                   io.timeout(ms).emit("poll", cb); ack([err, answers])
 *   server-count                    ack(io.serverCount())
 *   redis-stats                     ack({connected, dropped, published, received, malformed, cluster,
 *                                        primaries, refreshes, redirects, sentinel, switches, queued,
 *                                        entries, saved, restored})
 *   me                              ack({id, recovered, rooms: socket.rooms sorted, data: socket.data})
 *   set-data(x)                     socket.data = x; ack(true)
 * Server-side events: "hello"(x) -> io.local.emit("server-hello", x); "whoami"(x) -> callback("wsio:" PORT).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

/* Each worker's own (--workers); the port is the one they share. */
static _Thread_local wsio_io *io;
static int port;

static void ack_json(wsio_ack *ack, json_t *v) {
  json_t *arr = json_array();
  json_array_append_new(arr, v);
  char *text = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text && ack) wsio_ack_send(ack, text);
  else if (ack) wsio_ack_drop(ack);
  free(text);
  json_decref(arr);
}

static int str_arg(const wsio_args *a, size_t i, char *out, size_t cap) { return wsio_args_string(a, i, out, cap) >= 0; }

/* "[x]": the JSON of argument i as a one-element array. */
static char *one_arg(const wsio_args *a, size_t i) {
  size_t len = 0;
  const char *p = wsio_args_json(a, i, &len);
  if (!p) p = "null", len = 4;
  char *s = malloc(len + 3);
  if (!s) return NULL;
  s[0] = '[';
  memcpy(s + 1, p, len);
  s[len + 1] = ']';
  s[len + 2] = 0;
  return s;
}

static void on_join(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[128];
  if (!str_arg(a, 0, room, sizeof room)) return;
  wsio_socket_join(s, room);
  ack_json(ack, json_true());
}

/* emit / to / except / broadcast: ud selects the targets. */
static void on_emit(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  const char *kind = ud;
  char room[128] = "", ev[64];
  size_t at = 0;
  if (strcmp(kind, "emit") && strcmp(kind, "broadcast") && !str_arg(a, at++, room, sizeof room)) return;
  if (!str_arg(a, at, ev, sizeof ev)) return;
  wsio_op op = !strcmp(kind, "broadcast") ? wsio_socket_broadcast(s) : wsio_nsp_op(wsio_socket_nsp(s));
  if (!strcmp(kind, "to")) wsio_op_to(&op, room);
  if (!strcmp(kind, "except")) wsio_op_except(&op, room);
  char *x = one_arg(a, at + 1);
  int n = x ? wsio_op_emit(&op, ev, x) : -1;
  free(x);
  if (ack) ack_json(ack, json_integer(n));
}

static void on_emit_bin(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char ev[64];
  if (!str_arg(a, 0, ev, sizeof ev)) return;
  wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
  wsio_value v[2] = {{1, "\x01\x02\x03", 3}, WSIO_JSON("{\"tag\":\"bin\"}")};
  int n = wsio_op_emitv(&op, ev, v, 2);
  if (ack) ack_json(ack, json_integer(n));
}

static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void on_fetched(int err, const wsio_remote_socket *v, size_t n, void *ud) {
  const char **ids = malloc((n ? n : 1) * sizeof *ids);
  for (size_t i = 0; ids && i < n; i++) ids[i] = v[i].id;
  if (ids) qsort(ids, n, sizeof *ids, cmp_str);
  json_t *arr = json_array();
  for (size_t i = 0; ids && i < n; i++) json_array_append_new(arr, json_string(ids[i]));
  free(ids);
  json_t *res = json_pack("[s?o]", err ? wsio_strerror(err) : NULL, arr);
  ack_json(ud, res);
}

static void on_fetch(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[128];
  wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
  if (str_arg(a, 0, room, sizeof room)) wsio_op_to(&op, room);
  wsio_ack *kept = ack ? wsio_ack_keep(ack) : NULL;
  if (kept && wsio_op_fetch_sockets_all(&op, on_fetched, kept) != 0) wsio_ack_drop(kept);
}

static void on_sockets_op(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  char room[128];
  if (!str_arg(a, 0, room, sizeof room)) return;
  wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
  int n;
  if (ud) {
    wsio_op_to(&op, room);
    n = wsio_op_disconnect_sockets(&op, 1);
  } else {
    n = wsio_op_sockets_join(&op, room);
  }
  if (ack) ack_json(ack, json_integer(n));
}

static void on_sse(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char ev[64];
  if (!str_arg(a, 0, ev, sizeof ev)) return;
  char *x = one_arg(a, 1);
  int rc = x ? wsio_nsp_server_side_emit(wsio_socket_nsp(s), ev, x) : -1;
  free(x);
  if (ack) ack_json(ack, json_integer(rc));
}

static void on_answers(int err, const wsio_args *const *responses, size_t n, void *ud) {
  json_t *all = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *one = json_array();
    for (size_t k = 0; k < wsio_args_count(responses[i]); k++) {
      json_t *v = wsio_args_tree(responses[i], k);
      json_array_append_new(one, v ? v : json_null());
    }
    json_array_append_new(all, one);
  }
  ack_json(ud, json_pack("[s?o]", err ? wsio_strerror(err) : NULL, all));
}

static void on_sse_ack(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char ev[64];
  if (!str_arg(a, 0, ev, sizeof ev)) return;
  char *x = one_arg(a, 1);
  wsio_ack *kept = ack ? wsio_ack_keep(ack) : NULL;
  if (kept && (!x || wsio_nsp_server_side_emit_ack(wsio_socket_nsp(s), ev, x, 3000, on_answers, kept) != 0))
    wsio_ack_drop(kept);
  free(x);
}

static void on_bcast_ack(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  int ok;
  double t = wsio_args_number(a, 0, &ok);
  wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
  wsio_op_timeout(&op, ok ? (uint32_t)t : 2000);
  wsio_ack *kept = ack ? wsio_ack_keep(ack) : NULL;
  if (kept && wsio_op_emit_ack(&op, "poll", NULL, on_answers, kept) < 0) wsio_ack_drop(kept);
}

static void on_counted(int err, size_t servers, void *ud) {
  (void)err;
  ack_json(ud, json_integer((json_int_t)servers));
}

static void on_server_count(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)s, (void)a, (void)ud;
  wsio_ack *kept = ack ? wsio_ack_keep(ack) : NULL;
  if (kept && wsio_io_server_count(io, on_counted, kept) != 0) wsio_ack_drop(kept);
}

static void on_redis_stats(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)s, (void)a, (void)ud;
  wsio_redis_stats st;
  if (wsio_io_redis_stats(io, &st) != 0) return ack_json(ack, json_null());
  json_t *res = json_pack("{s:b,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:b,s:I}", "connected", st.connected, "dropped",
                          (json_int_t)st.dropped, "published", (json_int_t)st.published, "received",
                          (json_int_t)st.received, "malformed", (json_int_t)st.malformed, "cluster", st.cluster,
                          "primaries", (json_int_t)st.cluster_primaries, "refreshes",
                          (json_int_t)st.cluster_refreshes, "redirects", (json_int_t)st.cluster_redirects,
                          "sentinel", st.sentinel, "switches", (json_int_t)st.sentinel_switches);
  json_t *more = json_pack("{s:I,s:I,s:I,s:I}", "queued", (json_int_t)st.queued, "entries",
                           (json_int_t)st.stream_entries, "saved", (json_int_t)st.sessions_saved, "restored",
                           (json_int_t)st.sessions_restored);
  json_object_update(res, more);
  json_decref(more);
  ack_json(ack, res);
}

static void on_me(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a, (void)ud;
  const char *rooms[64];
  size_t n = wsio_socket_rooms(s, rooms, 64);
  qsort(rooms, n, sizeof *rooms, cmp_str);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_string(rooms[i]));
  json_t *data = json_loads(wsio_socket_data_json(s), JSON_DECODE_ANY, NULL);
  ack_json(ack, json_pack("{s:s,s:b,s:o,s:o}", "id", wsio_socket_id(s), "recovered", wsio_socket_recovered(s),
                          "rooms", arr, "data", data ? data : json_null()));
}

static void on_set_data(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  size_t len = 0;
  const char *p = wsio_args_json(a, 0, &len);
  char *json = p ? strndup(p, len) : NULL;
  int rc = json ? wsio_socket_set_data_json(s, json) : -1;
  free(json);
  ack_json(ack, rc == 0 ? json_true() : json_false());
}

static void on_hello(wsio_nsp *n, const wsio_args *a, wsio_server_ack *ack, void *ud) {
  (void)ack, (void)ud;
  char *x = one_arg(a, 0);
  wsio_op op = wsio_nsp_op(n);
  wsio_op_local(&op);
  if (x) wsio_op_emit(&op, "server-hello", x);
  free(x);
}

static void on_whoami(wsio_nsp *n, const wsio_args *a, wsio_server_ack *ack, void *ud) {
  (void)n, (void)a, (void)ud;
  char text[48];
  snprintf(text, sizeof text, "[\"wsio:%d\"]", port);
  if (ack) wsio_server_ack_send(ack, text);
}

/* One node: the whole server, or (--workers) one worker's, each a node of its own on the shared port. */
static const char *host = "127.0.0.1";
static wsio_redis_config rc;
static uint32_t recovery_ms;
static unsigned nworkers;
static unsigned ready;

static int setup(wsio_server *server, unsigned index, void *ud) {
  (void)ud;
  wsio_io_config icfg = {.ping_interval_ms = 2000, .ping_timeout_ms = 5000, .recovery_ms = recovery_ms};
  io = wsio_io_new(server, &icfg);
  if (!io) return WSIO_ENOMEM;
  wsio_nsp *n = wsio_io_sockets(io);
  wsio_nsp_on(n, "join", on_join, NULL);
  wsio_nsp_on(n, "emit", on_emit, "emit");
  wsio_nsp_on(n, "to", on_emit, "to");
  wsio_nsp_on(n, "except", on_emit, "except");
  wsio_nsp_on(n, "broadcast", on_emit, "broadcast");
  wsio_nsp_on(n, "emit-bin", on_emit_bin, NULL);
  wsio_nsp_on(n, "fetch", on_fetch, NULL);
  wsio_nsp_on(n, "sockets-join", on_sockets_op, NULL);
  wsio_nsp_on(n, "kick", on_sockets_op, (void *)1);
  wsio_nsp_on(n, "sse", on_sse, NULL);
  wsio_nsp_on(n, "sse-ack", on_sse_ack, NULL);
  wsio_nsp_on(n, "bcast-ack", on_bcast_ack, NULL);
  wsio_nsp_on(n, "server-count", on_server_count, NULL);
  wsio_nsp_on(n, "redis-stats", on_redis_stats, NULL);
  wsio_nsp_on(n, "me", on_me, NULL);
  wsio_nsp_on(n, "set-data", on_set_data, NULL);
  wsio_nsp_on_server_side(n, "hello", on_hello, NULL);
  wsio_nsp_on_server_side(n, "whoami", on_whoami, NULL);
  for (int i = 0; i < 2; i++) {
    wsio_nsp *more = wsio_io_of(io, i ? "/news" : "/chat");
    wsio_nsp_on(more, "join", on_join, NULL);
    wsio_nsp_on(more, "fetch", on_fetch, NULL);
    wsio_nsp_on(more, "me", on_me, NULL);
    wsio_nsp_on(more, "emit", on_emit, "emit");
    wsio_nsp_on(more, "to", on_emit, "to");
  }
  int err = wsio_server_listen(server, host, port);
  if (err) {
    fprintf(stderr, "cannot listen: %s\n", wsio_strerror(err));
    return err;
  }
  if (index == 0) port = wsio_server_port(server);
  /* After listen: the node's "whoami" answer names its port. */
  if ((err = wsio_io_redis(io, &rc)) != 0) {
    fprintf(stderr, "redis: %s\n", wsio_strerror(err));
    return err;
  }
  /* Ready once every worker is a node. */
  if (__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST) == (nworkers ? nworkers : 1))
    printf("listening on %s:%d\n", host, port);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(argv[i], "--redis")) rc.url = v, i++;
    else if (!strcmp(argv[i], "--key")) rc.key = v, i++;
    else if (!strcmp(argv[i], "--host")) host = v, i++;
    else if (!strcmp(argv[i], "--port")) port = atoi(v), i++;
    else if (!strcmp(argv[i], "--sharded")) rc.sharded = 1;
    else if (!strcmp(argv[i], "--streams")) rc.streams = 1;
    else if (!strcmp(argv[i], "--recovery")) recovery_ms = (uint32_t)atoi(v), i++;
    else if (!strcmp(argv[i], "--max-len")) rc.max_len = (uint32_t)atoi(v), i++;
    else if (!strcmp(argv[i], "--stream-count")) rc.stream_count = (unsigned)atoi(v), i++;
    else if (!strcmp(argv[i], "--workers")) nworkers = (unsigned)atoi(v), i++;
    else if (!strcmp(argv[i], "--degraded")) rc.degraded_start = 1;
    else if (!strcmp(argv[i], "--tls-ca")) rc.tls_ca_file = v, i++;
    else if (!strcmp(argv[i], "--tls-cert")) rc.tls_cert_file = v, i++;
    else if (!strcmp(argv[i], "--tls-key")) rc.tls_key_file = v, i++;
    else if (!strcmp(argv[i], "--tls-server-name")) rc.tls_server_name = v, i++;
    else if (!strcmp(argv[i], "--tls-insecure")) rc.tls_insecure = 1;
    else if (!strcmp(argv[i], "--sentinel-user")) rc.sentinel_user = v, i++;
    else if (!strcmp(argv[i], "--sentinel-password")) rc.sentinel_password = v, i++;
    else {
      fprintf(stderr, "usage: %s --redis URL [--sharded] [--streams] [--recovery MS] [--max-len N] "
                      "[--stream-count N] [--workers N] [--degraded] [--key K] [--host H] [--port P] [--tls-ca F] [--tls-cert F] [--tls-key F] "
                      "[--tls-server-name N] [--tls-insecure] [--sentinel-user U] [--sentinel-password P]\n",
              argv[0]);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  wsio_server_config scfg = {.log_level = 2};
  if (nworkers) return wsio_workers_run(nworkers, &scfg, 1, setup, NULL) == 0 ? 0 : 1;
  wsio_server *server = wsio_server_new(&scfg);
  if (!server || setup(server, 0, NULL) != 0) return 1;
  wsio_server_run(server, 1);
  wsio_server_free(server);
  return 0;
}
