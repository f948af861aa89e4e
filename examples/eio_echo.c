/*
 * A raw Engine.IO echo server: the one the official Engine.IO protocol test-suite (socketio/engine.io-protocol,
 * test-suite/) expects, line for line with the reference configuration in that repository's README:
 *
 *   const server = listen(3000, { pingInterval: 300, pingTimeout: 200, maxPayload: 1e6,
 *                                 cors: { origin: "*" } });
 *   server.on("connection", socket => {
 *     socket.on("data", (...args) => socket.send(...args));
 *   });
 *
 * Usage: eio_echo [--host H] [--port N] [--path P]   (default 127.0.0.1:3000 at /engine.io/)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

static void on_message(wsio_engine_socket *socket, wsio_opcode op, const void *data, size_t len, void *ud) {
  (void)ud;
  wsio_engine_socket_send(socket, op, data, len); /* text stays text, binary stays binary */
}

static void on_close(wsio_engine_socket *socket, const char *reason, void *ud) {
  (void)ud;
  printf("%s closed: %s\n", wsio_engine_socket_id(socket), reason);
}

static void on_connection(wsio_engine_socket *socket, void *ud) {
  (void)ud;
  wsio_engine_socket_on_message(socket, on_message, NULL);
  wsio_engine_socket_on_close(socket, on_close, NULL);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *path = "/engine.io/";
  int port = 3000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--path") && i + 1 < argc) path = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--host H] [--port N] [--path P]\n", argv[0]);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  wsio_server *server = wsio_server_new(NULL);
  if (!server) return 1;
  wsio_engine_config cfg = {
      .path = path,
      .ping_interval_ms = 300,
      .ping_timeout_ms = 200,
      .max_payload = 1000000,
      .cors_origin = "*",
  };
  wsio_engine *engine = wsio_engine_new(server, &cfg);
  if (!engine) {
    wsio_server_free(server);
    return 1;
  }
  wsio_engine_on_connection(engine, on_connection, NULL);
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
