/* cluster_server — one node of the two-node cluster of bench/cluster.sh, built from the public API only. It
 * behaves as bench/ref/cluster_server.mjs does with npm socket.io and @socket.io/redis-adapter:
 *   "bcast"(...args) from a client -> io.serverSideEmit("relay", ...args): the other node gets it;
 *   server-side "relay"(...args)  -> io.emit("bcast", ...args): every client of every node, so the clients of
 *                                    the node the sender is on get a broadcast made on the other node.
 * WebSocket transport only, no permessage-deflate, default ping settings.
 *
 * Usage: cluster_server --redis URL [--sharded] [--host H] [--port P]
 * Prints "listening on HOST:PORT" on stderr once Redis is reached and the port listens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

/* The event's arguments as one JSON array (text arguments only: the load generator sends strings). */
static char *args_json(const wsio_args *a) {
  size_t cap = 64, len = 0;
  char *s = malloc(cap);
  if (!s) return NULL;
  s[len++] = '[';
  for (size_t i = 0; i < wsio_args_count(a); i++) {
    size_t n = 0;
    const char *p = wsio_args_json(a, i, &n);
    if (!p) p = "null", n = 4;
    if (len + n + 3 > cap) {
      while (len + n + 3 > cap) cap *= 2;
      char *t = realloc(s, cap);
      if (!t) return free(s), NULL;
      s = t;
    }
    if (i) s[len++] = ',';
    memcpy(s + len, p, n);
    len += n;
  }
  s[len++] = ']';
  s[len] = 0;
  return s;
}

static void on_bcast(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack, (void)ud;
  char *json = args_json(args);
  if (json) wsio_nsp_server_side_emit(wsio_socket_nsp(s), "relay", json);
  free(json);
}

static void on_relay(wsio_nsp *n, const wsio_args *args, wsio_server_ack *ack, void *ud) {
  (void)ack, (void)ud;
  wsio_op all = wsio_nsp_op(n);
  wsio_op_emit_args(&all, "bcast", args);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 3000;
  wsio_redis_config rc = {.url = NULL};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--redis") && i + 1 < argc) rc.url = argv[++i];
    else if (!strcmp(argv[i], "--sharded")) rc.sharded = 1;
    else {
      fprintf(stderr, "usage: cluster_server --redis URL [--sharded] [--host H] [--port P]\n");
      return 2;
    }
  }
  wsio_server_config scfg = {.log_level = 2};
  wsio_server *server = wsio_server_new(&scfg);
  wsio_io_config cfg = {.transports = WSIO_TRANSPORT_WEBSOCKET};
  wsio_io *io = server ? wsio_io_new(server, &cfg) : NULL;
  if (!io) return 1;
  wsio_nsp *root = wsio_io_sockets(io);
  if (wsio_nsp_on(root, "bcast", on_bcast, NULL) < 0 || wsio_nsp_on_server_side(root, "relay", on_relay, NULL) < 0)
    return 1;
  int err = wsio_io_redis(io, &rc);
  if (err == 0) err = wsio_server_listen(server, host, port);
  if (err < 0) {
    fprintf(stderr, "cluster_server: %s\n", wsio_strerror(err));
    return 1;
  }
  fprintf(stderr, "listening on %s:%d\n", host, port);
  wsio_server_run(server, 1);
  wsio_server_free(server);
  return 0;
}
