/*
 * The server the official Socket.IO protocol test-suite (socketio/socket.io-protocol, test-suite/) expects,
 * line for line with the reference configuration in that repository's README:
 *
 *   const io = new Server(3000, { pingInterval: 300, pingTimeout: 200, maxPayload: 1000000,
 *                                 connectTimeout: 1000, cors: { origin: "*" } });
 *   io.on("connection", socket => {
 *     socket.emit("auth", socket.handshake.auth);
 *     socket.on("message", (...args) => socket.emit("message-back", ...args));
 *     socket.on("message-with-ack", (...args) => { const ack = args.pop(); ack(...args); });
 *   });
 *   io.of("/custom").on("connection", socket => socket.emit("auth", socket.handshake.auth));
 *
 * Usage: sio_conformance [--host H] [--port N]   (default 127.0.0.1:3000, where the suite looks)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

static void emit_auth(wsio_socket *socket) {
  /* socket.emit("auth", socket.handshake.auth): the auth object is JSON text, so the args are "[auth]". */
  const char *auth = wsio_socket_handshake(socket)->auth;
  size_t n = strlen(auth);
  char *args = malloc(n + 3);
  if (!args) return;
  args[0] = '[';
  memcpy(args + 1, auth, n);
  args[n + 1] = ']';
  args[n + 2] = 0;
  wsio_socket_emit(socket, "auth", args);
  free(args);
}

static void on_message(wsio_socket *socket, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  wsio_socket_emit_args(socket, "message-back", args); /* binaries go back as attachments */
}

static void on_message_with_ack(wsio_socket *socket, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)socket;
  (void)ud;
  if (ack) wsio_ack_send_args(ack, args); /* ack(...args): every argument as it came, binaries included */
}

static void on_connection(wsio_socket *socket, void *ud) {
  (void)ud;
  emit_auth(socket);
}

static void on_custom_connection(wsio_socket *socket, void *ud) {
  (void)ud;
  emit_auth(socket);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 3000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--host H] [--port N]\n", argv[0]);
      return 2;
    }
  }
  wsio_server *server = wsio_server_new(NULL);
  if (!server) return 1;
  wsio_io_config cfg = {
      .ping_interval_ms = 300,
      .ping_timeout_ms = 200,
      .max_http_buffer_size = 1000000,
      .connect_timeout_ms = 1000,
      .cors_origin = "*",
  };
  wsio_io *io = wsio_io_new(server, &cfg);
  if (!io) {
    wsio_server_free(server);
    return 1;
  }
  wsio_nsp *main_nsp = wsio_io_sockets(io);
  wsio_nsp_on_connection(main_nsp, on_connection, NULL);
  wsio_nsp_on(main_nsp, "message", on_message, NULL);
  wsio_nsp_on(main_nsp, "message-with-ack", on_message_with_ack, NULL);
  wsio_nsp_on_connection(wsio_io_of(io, "/custom"), on_custom_connection, NULL);
  int rc = wsio_server_listen(server, host, port);
  if (rc) {
    fprintf(stderr, "cannot listen on %s:%d: %s\n", host, port, wsio_strerror(rc));
    wsio_server_free(server);
    return 1;
  }
  wsio_server_run(server, 1);
  wsio_server_free(server);
  return 0;
}
