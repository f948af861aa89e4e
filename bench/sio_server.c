/* sio_server — the Socket.IO server of bench/run.sh's sio-* scenarios, built from the public API only. It
 * behaves as bench/ref/sio_server.mjs does with npm socket.io:
 *   "echo"  -> socket.emit("echo", ...args) back to the sender;
 *   "bcast" -> io.emit("bcast", ...args) to every socket of "/", the sender included.
 * WebSocket transport only, no permessage-deflate (socket.io's default), default ping settings.
 *
 * Usage: sio_server [--host H] [--port P] [--per-socket] [--workers N]
 * --workers N runs N workers (wsio_workers_run): one server per thread on the same port; io.emit reaches the
 * sockets of every worker.
 * --per-socket registers the handlers on each socket in the connection callback, as a socket.io program does,
 * instead of once on the namespace (wsio_nsp_on, the fast path). Prints "listening on HOST:PORT" on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

static void on_echo(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  wsio_socket_emit_args(s, "echo", args);
}

static void on_bcast(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  wsio_op all = wsio_nsp_op(wsio_socket_nsp(s));
  wsio_op_emit_args(&all, "bcast", args);
}

static void on_connection(wsio_socket *s, void *ud) {
  (void)ud;
  wsio_socket_on(s, "echo", on_echo, NULL);
  wsio_socket_on(s, "bcast", on_bcast, NULL);
}

static void usage(void) {
  fprintf(stderr, "usage: sio_server [--host H] [--port P] [--per-socket] [--workers N]\n");
  exit(2);
}

static const char *host = "127.0.0.1";
static int port = 3000, per_socket = 0;

static int setup(wsio_server *server, unsigned index, void *ud) {
  (void)ud;
  wsio_io_config cfg = {.transports = WSIO_TRANSPORT_WEBSOCKET};
  wsio_io *io = wsio_io_new(server, &cfg);
  if (!io) return WSIO_ENOMEM;
  wsio_nsp *root = wsio_io_sockets(io);
  if (per_socket) {
    wsio_nsp_on_connection(root, on_connection, NULL);
  } else if (wsio_nsp_on(root, "echo", on_echo, NULL) < 0 || wsio_nsp_on(root, "bcast", on_bcast, NULL) < 0) {
    return WSIO_ENOMEM;
  }
  int rc = wsio_server_listen(server, host, port);
  if (rc < 0) {
    fprintf(stderr, "sio_server: cannot listen on %s:%d: %s\n", host, port, wsio_strerror(rc));
    return rc;
  }
  if (index == 0) fprintf(stderr, "listening on %s:%d\n", host, port);
  return 0;
}

int main(int argc, char **argv) {
  int workers = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--per-socket")) per_socket = 1;
    else if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
    else usage();
  }
  /* Warnings only: a per-connection info line would be work that the reference does not do. */
  wsio_server_config scfg = {.log_level = 2};
  if (workers > 0) return wsio_workers_run((unsigned)workers, &scfg, 1, setup, NULL) ? 1 : 0;
  wsio_server *server = wsio_server_new(&scfg);
  if (!server) return 1;
  if (setup(server, 0, NULL) != 0) return 1;
  wsio_server_run(server, 1);
  wsio_server_free(server);
  return 0;
}
