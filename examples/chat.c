/*
 * The classic Socket.IO chat server, in C, line for line:
 *
 *   io.on('connection', socket => {
 *     socket.on('serverMsg', data => socket.broadcast.emit('clientMsg', data));  // to everyone but the sender
 *     socket.emit('foo');          // to this client only
 *     io.sockets.emit('foo');      // to everyone
 *     socket.on('disconnect', reason => {});
 *   });
 *
 * Usage: chat [--host H] [--port N] [--client-dir DIR]
 * Serves a chat page at / and the socket.io client at /socket.io/socket.io.js.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wsio.h>

#ifndef WSIO_CLIENT_DIR
#define WSIO_CLIENT_DIR "/usr/share/wsio/client"
#endif

static wsio_io *io;

static void on_server_msg(wsio_socket *socket, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  /* socket.broadcast.emit('clientMsg', data): the arguments go on as they came, binaries included. */
  wsio_op everyone_else = wsio_socket_broadcast(socket);
  wsio_op_emit_args(&everyone_else, "clientMsg", args);
}

static void on_disconnect(wsio_socket *socket, const char *reason, void *ud) {
  (void)ud;
  printf("%s left: %s\n", wsio_socket_id(socket), reason);
}

static void on_connection(wsio_socket *socket, void *ud) {
  (void)ud;
  wsio_socket_on(socket, "serverMsg", on_server_msg, NULL);
  wsio_socket_emit(socket, "foo", NULL);         /* socket.emit('foo') */
  wsio_io_emit(io, "foo", NULL);                 /* io.sockets.emit('foo') */
  wsio_socket_on_disconnect(socket, on_disconnect, NULL);
}

static const char page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>wsio chat</title>"
    "<style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:2rem auto}#log{list-style:none;padding:0}"
    "#log li{padding:.2rem 0;border-bottom:1px solid #eee}</style></head><body><h1>Chat</h1>"
    "<ul id=\"log\"></ul><form id=\"f\"><input id=\"m\" autocomplete=\"off\" placeholder=\"Say something\">"
    "<button>Send</button></form><script src=\"/socket.io/socket.io.js\"></script><script>"
    "const socket = io();"
    "const log = document.getElementById('log');"
    "function add(t){const li=document.createElement('li');li.textContent=t;log.appendChild(li);}"
    "socket.on('clientMsg', d => add(d));"
    "document.getElementById('f').onsubmit = e => {e.preventDefault();const m=document.getElementById('m');"
    "if(!m.value)return;socket.emit('serverMsg', m.value);add('me: '+m.value);m.value='';};"
    "</script></body></html>";

int main(int argc, char **argv) {
  const char *host = "0.0.0.0", *client_dir = WSIO_CLIENT_DIR;
  int port = 3000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--client-dir") && i + 1 < argc) client_dir = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--host H] [--port N] [--client-dir DIR]\n", argv[0]);
      return 2;
    }
  }
  wsio_server *server = wsio_server_new(NULL);
  if (!server) return 1;
  wsio_server_set_page(server, "/", "text/html; charset=utf-8", page, sizeof page - 1);
  wsio_io_config cfg = {.client_dir = client_dir};
  io = wsio_io_new(server, &cfg);
  wsio_nsp_on_connection(wsio_io_sockets(io), on_connection, NULL);
  int rc = wsio_server_listen(server, host, port);
  if (rc) {
    fprintf(stderr, "cannot listen on %s:%d: %s\n", host, port, wsio_strerror(rc));
    return 1;
  }
  wsio_server_run(server, 1);
  wsio_server_free(server);
  return 0;
}
