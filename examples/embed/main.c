/*
 * embed — wsio inside a program of your own: its own handlers, its own timer on wsio's loop, its own
 * signal handling and a clean shutdown.
 *
 *   Socket.IO namespace "/app":  add(a, b, ack) answers ack(a + b); say(text) goes to everyone else in
 *                                "/app" as said(id, text); each new socket is asked hello(ack) and its
 *                                answer is logged (an ack from the client to the server).
 *   Socket.IO namespace "/":     clock(iso_time) every second, through wsio_io_emit().
 *   Raw WebSocket "/ws":         greets, echoes every message, and gets the same clock as text,
 *                                encoded once per tick for every client (wsio_server_publish()).
 *
 * Usage: embed [--host H] [--port N]   (default 127.0.0.1:3000). SIGINT or SIGTERM stops it gracefully.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* gmtime_r, with -std=c11 outside this tree */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <wsio.h>

#ifndef WSIO_CLIENT_DIR
#define WSIO_CLIENT_DIR "/usr/share/wsio/socket.io-client" /* where the wsio package installs it */
#endif

#define RAW_PATH "/ws"
#define STOP_TIMEOUT_MS 5000

typedef struct app {
  wsio_server *server;
  wsio_io *io;
  uv_timer_t clock;
  uv_signal_t sigint, sigterm;
  unsigned long ticks;
} app;

/* ---- Socket.IO: the "/app" namespace ---- */

/* add(a, b, ack): the handler is registered once for the namespace (wsio_nsp_on), not per socket. */
static void on_add(wsio_socket *socket, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)socket;
  (void)ud;
  if (!ack) return; /* the client asked for no answer */
  int ok_a, ok_b;
  double a = wsio_args_number(args, 0, &ok_a), b = wsio_args_number(args, 1, &ok_b);
  if (!ok_a || !ok_b) {
    wsio_ack_send(ack, "[{\"error\":\"add takes two numbers\"}]");
    return;
  }
  char reply[64];
  snprintf(reply, sizeof reply, "[%.17g]", a + b);
  wsio_ack_send(ack, reply);
}

/* say(text): socket.broadcast.emit("said", socket.id, text). */
static void on_say(wsio_socket *socket, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ack;
  (void)ud;
  char text[512];
  if (wsio_args_string(args, 0, text, sizeof text) < 0) return; /* not a string, or too long: ignored */
  printf("%s says %s\n", wsio_socket_id(socket), text);
  /* Arguments go out as JSON text: the string goes on as the client wrote it (wsio_args_json keeps its
   * escapes), and a socket id needs no escaping. */
  size_t len;
  const char *json = wsio_args_json(args, 0, &len);
  char out[600];
  int n = snprintf(out, sizeof out, "[\"%s\",%.*s]", wsio_socket_id(socket), (int)len, json);
  if (n < 0 || (size_t)n >= sizeof out) return;
  wsio_op others = wsio_socket_broadcast(socket);
  wsio_op_emit(&others, "said", out);
}

/* The client's answer to hello(ack): args are its ack arguments, or NULL with err set. */
static void on_hello_answer(wsio_socket *socket, int err, const wsio_args *args, void *ud) {
  (void)ud;
  if (err) {
    printf("%s did not answer hello: %s\n", wsio_socket_id(socket), wsio_strerror(err));
    return;
  }
  size_t len = 0;
  const char *json = wsio_args_json(args, 0, &len);
  printf("%s answered hello with %.*s\n", wsio_socket_id(socket), json ? (int)len : 4, json ? json : "none");
}

static void on_app_disconnect(wsio_socket *socket, const char *reason, void *ud) {
  (void)ud;
  printf("%s left /app: %s\n", wsio_socket_id(socket), reason);
}

static void on_app_connection(wsio_socket *socket, void *ud) {
  (void)ud;
  printf("%s joined /app over %s\n", wsio_socket_id(socket), wsio_socket_transport(socket));
  wsio_socket_on_disconnect(socket, on_app_disconnect, NULL);
  /* socket.timeout(5000).emit("hello", (err, answer) => ...) */
  int rc = wsio_socket_emit_ack(socket, "hello", "[\"welcome to /app\"]", 5000, on_hello_answer, NULL);
  if (rc) printf("hello to %s failed: %s\n", wsio_socket_id(socket), wsio_strerror(rc));
}

/* ---- raw WebSocket: "/ws" ---- */

static void ws_open(wsio_ws *ws) {
  static const char hello[] = "hello from embed";
  printf("raw WebSocket open from %s\n", wsio_ws_remote(ws));
  wsio_ws_send(ws, WSIO_TEXT, hello, sizeof hello - 1, 0);
}

static void ws_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  int rc = wsio_ws_send(ws, op, data, len, 0);
  if (rc && rc != WSIO_ECLOSED) printf("echo to %s failed: %s\n", wsio_ws_remote(ws), wsio_strerror(rc));
}

static void ws_close(wsio_ws *ws, int code, const char *reason, size_t reason_len) {
  printf("raw WebSocket from %s closed: %d %.*s\n", wsio_ws_remote(ws), code, (int)reason_len, reason);
}

/* ---- the program's own timer on wsio's loop ---- */

static void on_clock(uv_timer_t *t) {
  app *a = t->data;
  char now[32], args[48];
  time_t secs = time(NULL);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(args, sizeof args, "[\"%s\"]", now);
  /* io.emit("clock", now): every socket of "/", encoded once. */
  wsio_io_emit(a->io, "clock", args);
  /* The same to every raw WebSocket client: one frame, queued to each; droppable, so a client that does not
   * read misses ticks instead of being closed for backpressure. */
  wsio_msg *m = wsio_msg_new(WSIO_TEXT, now, strlen(now));
  if (m) {
    wsio_server_publish(a->server, RAW_PATH, m, NULL, WSIO_SEND_DROPPABLE);
    wsio_msg_unref(m);
  }
  a->ticks++;
}

/* ---- shutdown ---- */

/* The loop ends when nothing keeps it alive: wsio closes its listeners and connections, the program
 * closes its own handles. With these signal handles closed, a second signal has its default effect and
 * ends the process at once. */
static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  printf("signal %d: stopping\n", signum);
  uv_close((uv_handle_t *)&a->clock, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  wsio_server_stop(a->server, STOP_TIMEOUT_MS);
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
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* wsio_server_run(s, 0) leaves signals to the program, SIGPIPE included: a peer that vanishes
   * mid-write must not end the process. */
  signal(SIGPIPE, SIG_IGN);

  app a = {0};
  wsio_server_config sc = {.max_connections = 10000};
  if (!(a.server = wsio_server_new(&sc))) return 1;

  wsio_io_config ic = {.client_dir = WSIO_CLIENT_DIR, .cors_origin = "*"};
  if (!(a.io = wsio_io_new(a.server, &ic))) {
    wsio_server_free(a.server);
    return 1;
  }
  wsio_nsp *nsp = wsio_io_of(a.io, "/app");
  wsio_nsp_on_connection(nsp, on_app_connection, NULL);
  int rc = wsio_nsp_on(nsp, "add", on_add, NULL);
  if (rc == 0) rc = wsio_nsp_on(nsp, "say", on_say, NULL);

  wsio_ws_handlers h = {.on_open = ws_open, .on_message = ws_message, .on_close = ws_close};
  wsio_ws_config wc = {.max_message_size = 64 * 1024, .deflate = WSIO_DEFLATE_SHARED};
  if (rc == 0) rc = wsio_server_ws(a.server, RAW_PATH, &h, &wc);
  if (rc == 0) rc = wsio_server_listen(a.server, host, port);
  if (rc) {
    fprintf(stderr, "embed: cannot start on %s:%d: %s\n", host, port, wsio_strerror(rc));
    wsio_server_free(a.server);
    return 1;
  }

  uv_loop_t *loop = wsio_server_loop(a.server);
  uv_timer_init(loop, &a.clock);
  a.clock.data = &a;
  uv_timer_start(&a.clock, on_clock, 1000, 1000);
  uv_signal_init(loop, &a.sigint);
  uv_signal_init(loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);

  printf("embed: listening on %s:%d (Socket.IO /app and /, raw WebSocket %s)\n", host, wsio_server_port(a.server),
         RAW_PATH);
  wsio_server_run(a.server, 0);

  wsio_stats st;
  wsio_server_stats(a.server, &st);
  printf("embed: stopped after %lu ticks; %llu Socket.IO events in, %llu out\n", a.ticks,
         (unsigned long long)st.sio_events_in, (unsigned long long)st.sio_events_out);
  wsio_server_free(a.server);
  return 0;
}
