/*
 * The "/use" namespace of sio_server: socket.use (event middlewares) and socket.on("error"), built from the
 * public API. tests/interop/test_sio_use.mjs runs the same client script against it and against a Node
 * socket.io server written the JavaScript way, and expects the same observations from both.
 *
 * Every socket of "/use" has: an onAny handler; a namespace-wide event middleware (mw1, by event name:
 * "refuse" -> next(err) with err.data {"why": first argument}, "ack-refuse" -> answers the ack with "no"
 * and never calls next, "drop" -> never calls next, "later" / "later-refuse" -> next() / next(err "later")
 * 30 ms later, "kick" -> disconnects the socket then calls next(), "hold" -> kept and never answered while
 * the socket lives); its own middleware (mw2, always next()); an error callback that emits
 * "mw-error" (message, data); handlers that answer their ack with "handled" and the arguments. Each step
 * is logged as "any:EV", "mw1:EV", "mw2:EV", "handler:EV"; "log" answers with the log so far and clears
 * it. "error-count" answers how many refusals the namespace's error callback saw for this socket, and
 * "hold-count" how many events were held and how many wsio_event_next_keep refused.
 *
 * onAnyOutgoing: each socket logs "out:EV:N" (N arguments) for every event it is sent; the namespace's
 * handler counts them ("out-count"). "shout" broadcasts "shouted" with its arguments to the namespace; when
 * the first is "emit-inside", the namespace's outgoing handler also emits "inside" to each receiver from
 * within the fan-out.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wsio.h>

#define HOLD_MAX 2048

size_t args_values(const wsio_args *a, size_t from, wsio_value *out, size_t cap); /* sio_server.c */

typedef struct use_state {
  json_t *log;
  int errors, outs;
  size_t held, refused;
  wsio_event_next *hold[HOLD_MAX];
} use_state;

static _Thread_local uv_loop_t *loop; /* each worker's own (--workers) */

typedef struct later {
  uv_timer_t timer;
  wsio_event_next *next;
  int refuse;
} later;

static void log_step(wsio_socket *s, const char *step, const wsio_args *a) {
  use_state *st = wsio_socket_data(s);
  if (st) json_array_append_new(st->log, json_sprintf("%s:%s", step, wsio_args_event(a)));
}

static void later_closed(uv_handle_t *h) { free(h->data); }

static void later_fire(uv_timer_t *t) {
  later *l = t->data;
  /* The socket may be gone by now: the answer then only frees the kept event. */
  if (l->refuse) wsio_event_next_error(l->next, "later", NULL);
  else wsio_event_next_ok(l->next);
  uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void answer_later(wsio_socket *s, wsio_event_next *next, int refuse) {
  wsio_event_next *k = wsio_event_next_keep(next);
  later *l = k ? malloc(sizeof *l) : NULL;
  if (!l) {
    if (k) wsio_event_next_ok(k);
    return;
  }
  l->next = k;
  l->refuse = refuse;
  (void)s;
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, later_fire, 30, 0);
}

static void mw1(wsio_socket *s, const wsio_args *a, wsio_ack *ack, wsio_event_next *next, void *ud) {
  (void)ud;
  log_step(s, "mw1", a);
  const char *ev = wsio_args_event(a);
  use_state *st = wsio_socket_data(s);
  if (!strcmp(ev, "refuse")) {
    size_t len = 0;
    const char *why = wsio_args_json(a, 0, &len);
    char data[256];
    snprintf(data, sizeof data, "{\"why\":%.*s}", why && len < 200 ? (int)len : 4, why && len < 200 ? why : "null");
    wsio_event_next_error(next, "refused", data);
  } else if (!strcmp(ev, "ack-refuse")) {
    if (ack) wsio_ack_send(ack, "[\"no\"]");
  } else if (!strcmp(ev, "drop")) {
    /* never answered: the event goes no further */
  } else if (!strcmp(ev, "later") || !strcmp(ev, "later-refuse")) {
    answer_later(s, next, !strcmp(ev, "later-refuse"));
  } else if (!strcmp(ev, "kick")) {
    wsio_socket_disconnect(s, 0);
    wsio_event_next_ok(next);
  } else if (!strcmp(ev, "hold")) {
    wsio_event_next *k = wsio_event_next_keep(next);
    if (!k) st->refused++;
    else if (st->held < HOLD_MAX) st->hold[st->held++] = k;
    else wsio_event_next_ok(k);
  } else {
    wsio_event_next_ok(next);
  }
}

static void mw2(wsio_socket *s, const wsio_args *a, wsio_ack *ack, wsio_event_next *next, void *ud) {
  (void)ack, (void)ud;
  log_step(s, "mw2", a);
  wsio_event_next_ok(next);
}

static void on_any(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ack, (void)ud;
  log_step(s, "any", a);
}

static void on_handler(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  log_step(s, "handler", a);
  if (!ack) return;
  wsio_value v[17] = {{0, "\"handled\"", 9}};
  wsio_ack_sendv(ack, v, 1 + args_values(a, 0, v + 1, 16));
}

static void send_tree(wsio_ack *ack, json_t *v) {
  json_t *arr = json_pack("[o]", v);
  char *text = json_dumps(arr, JSON_COMPACT);
  if (text) wsio_ack_send(ack, text);
  free(text);
  json_decref(arr);
}

static void on_log(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (!ack || !st) return;
  send_tree(ack, json_copy(st->log));
  json_array_clear(st->log);
}

static void on_error_count(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (ack && st) send_tree(ack, json_integer(st->errors));
}

static void on_hold_count(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (ack && st) send_tree(ack, json_pack("{sIsI}", "held", (json_int_t)st->held, "refused", (json_int_t)st->refused));
}

/* socket.on("error"): the client hears of it from us, not from wsio. */
static void on_socket_error(wsio_socket *s, const char *message, const char *data_json, void *ud) {
  (void)ud;
  json_t *msg = json_string(message);
  char *m = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
  char args[1024];
  snprintf(args, sizeof args, "[%s,%s]", m ? m : "\"\"", data_json ? data_json : "null");
  wsio_socket_emit(s, "mw-error", args);
  free(m);
  json_decref(msg);
}

static void on_nsp_error(wsio_socket *s, const char *message, const char *data_json, void *ud) {
  (void)message, (void)data_json, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (st) st->errors++;
}

static void on_out(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ack, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (st) json_array_append_new(st->log, json_sprintf("out:%s:%zu", wsio_args_event(a), wsio_args_count(a)));
}

static void on_nsp_out(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ack, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (st) st->outs++;
  size_t len = 0;
  const char *first = wsio_args_json(a, 0, &len);
  if (!strcmp(wsio_args_event(a), "shouted") && first && len == 13 && !memcmp(first, "\"emit-inside\"", 13))
    wsio_socket_emit(s, "inside", "[\"from the fan-out\"]");
}

static void on_out_count(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (ack && st) send_tree(ack, json_integer(st->outs));
}

static void on_shout(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  wsio_op op = wsio_nsp_op(wsio_socket_nsp(s));
  wsio_op_emit_args(&op, "shouted", a);
  if (ack) wsio_ack_send(ack, "[]");
}

static void on_disconnect(wsio_socket *s, const char *reason, void *ud) {
  (void)reason, (void)ud;
  use_state *st = wsio_socket_data(s);
  if (!st) return;
  for (size_t i = 0; i < st->held; i++) wsio_event_next_ok(st->hold[i]); /* the socket is gone: only frees */
  json_decref(st->log);
  free(st);
  wsio_socket_set_data(s, NULL);
}

static void on_connection(wsio_socket *s, void *ud) {
  (void)ud;
  use_state *st = calloc(1, sizeof *st);
  if (!st || !(st->log = json_array())) {
    free(st);
    wsio_socket_disconnect(s, 1);
    return;
  }
  wsio_socket_set_data(s, st);
  wsio_socket_on_any(s, on_any, NULL);
  wsio_socket_use(s, mw2, NULL);
  wsio_socket_on_error(s, on_socket_error, NULL);
  static const char *const events[] = {"plain", "later", "refuse", "later-refuse", "ack-refuse", "drop", "kick"};
  for (size_t i = 0; i < sizeof events / sizeof *events; i++) wsio_socket_on(s, events[i], on_handler, NULL);
  wsio_socket_on(s, "log", on_log, NULL);
  wsio_socket_on(s, "error-count", on_error_count, NULL);
  wsio_socket_on(s, "hold-count", on_hold_count, NULL);
  wsio_socket_on(s, "out-count", on_out_count, NULL);
  wsio_socket_on(s, "shout", on_shout, NULL);
  wsio_socket_on_any_outgoing(s, on_out, NULL);
  wsio_socket_on_disconnect(s, on_disconnect, NULL);
}

int sio_server_use_setup(wsio_server *server, wsio_io *io);
int sio_server_use_setup(wsio_server *server, wsio_io *io) {
  loop = wsio_server_loop(server);
  wsio_nsp *n = wsio_io_of(io, "/use");
  if (!n) return WSIO_ENOMEM;
  wsio_nsp_on_connection(n, on_connection, NULL);
  wsio_nsp_on_error(n, on_nsp_error, NULL);
  wsio_nsp_on_any_outgoing(n, on_nsp_out, NULL);
  return wsio_nsp_use_events(n, mw1, NULL);
}
