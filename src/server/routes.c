/* Routes: what a client event does, said in the configuration instead of in code. */
#include "server/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define ROOM_NAME_MAX 128

static const server_route *find_route(const server_config *cfg, const char *event, const char *nsp) {
  for (size_t i = 0; i < cfg->nroutes; i++) {
    const server_route *r = &cfg->routes[i];
    if (server_config_match(r->event, event) && server_config_match(r->nsp ? r->nsp : "/", nsp)) return r;
  }
  return NULL;
}

static void ack_json(wsio_ack *ack, const char *value) {
  if (!ack) return;
  char text[1024];
  int n = snprintf(text, sizeof text, "[%s]", value);
  if (n > 0 && (size_t)n < sizeof text) wsio_ack_send(ack, text);
}

static int room_allowed(const srv_app *app, wsio_socket *s, const char *room) {
  const server_config_list *allowed = &app->cfg->rooms.allowed;
  if (allowed->n == 0) return 1;
  for (size_t i = 0; i < allowed->n; i++) {
    const char *p = allowed->v[i];
    if (strncmp(p, "claims:", 7) == 0) {
      if (app->claim_rooms && app->claim_rooms(s, p + 7, room, app->claim_ud)) return 1;
    } else if (server_config_match(p, room)) {
      return 1;
    }
  }
  return 0;
}

/* The room argument: a non-empty string of reasonable length. */
static int room_arg(const wsio_args *args, size_t i, char *room, size_t cap) {
  long n = wsio_args_string(args, i, room, cap);
  return n > 0 && (size_t)n < cap && strlen(room) == (size_t)n;
}

static void join_or_leave(srv_app *app, wsio_socket *s, const wsio_args *args, wsio_ack *ack, int join) {
  char room[ROOM_NAME_MAX + 1];
  if (!room_arg(args, 0, room, sizeof room)) {
    ack_json(ack, "{\"error\":\"the first argument must be a room name (1 to 128 bytes)\"}");
    return;
  }
  if (!join) {
    wsio_socket_leave(s, room);
    ack_json(ack, "\"ok\"");
    return;
  }
  if (!room_allowed(app, s, room)) {
    ack_json(ack, "{\"error\":\"room not allowed\"}");
    return;
  }
  int rc = wsio_socket_join(s, room);
  if (rc == WSIO_ELIMIT) ack_json(ack, "{\"error\":\"too many rooms\"}");
  else if (rc != 0) ack_json(ack, "{\"error\":\"cannot join\"}");
  else ack_json(ack, "\"ok\"");
}

/* Emits to op (or to s itself when op is NULL) the route's selection of the arguments. */
static void emit(const server_route *r, wsio_socket *s, const wsio_op *op, const char *event, const wsio_args *args) {
  if (r->data_arg < 0) {
    if (op) wsio_op_emit_args(op, event, args);
    else wsio_socket_emit_args(s, event, args);
    return;
  }
  wsio_value v[1];
  size_t n = 0;
  size_t len;
  const void *p = wsio_args_binary(args, (size_t)r->data_arg, &len);
  if (p) {
    v[0] = (wsio_value){1, p, len};
    n = 1;
  } else if ((p = wsio_args_json(args, (size_t)r->data_arg, &len)) != NULL) {
    v[0] = (wsio_value){0, p, len};
    n = 1;
  }
  if (op) wsio_op_emitv(op, event, v, n);
  else wsio_socket_emitv(s, event, v, n);
}

static void apply(srv_app *app, const server_route *r, wsio_socket *s, const wsio_args *args, wsio_ack *ack) {
  const char *event = r->emit ? r->emit : wsio_args_event(args);
  wsio_nsp *nsp = wsio_socket_nsp(s);
  wsio_op op;
  char room[ROOM_NAME_MAX + 1];
  switch (r->to) {
    case SERVER_ROUTE_SELF: emit(r, s, NULL, event, args); break;
    case SERVER_ROUTE_OTHERS:
      op = wsio_socket_broadcast(s);
      emit(r, s, &op, event, args);
      break;
    case SERVER_ROUTE_ALL:
      op = wsio_nsp_op(nsp);
      emit(r, s, &op, event, args);
      break;
    case SERVER_ROUTE_ROOM:
      op = wsio_socket_to(s, r->room);
      emit(r, s, &op, event, args);
      break;
    case SERVER_ROUTE_ROOM_ARG:
      if (!room_arg(args, r->room_arg, room, sizeof room)) {
        ack_json(ack, "{\"error\":\"a room name argument is required\"}");
        return;
      }
      op = wsio_socket_to(s, room);
      emit(r, s, &op, event, args);
      break;
    case SERVER_ROUTE_SENDER_ROOMS: {
      const char *names[WSIO_OP_MAX_ROOMS + 1];
      size_t n = wsio_socket_rooms(s, names, WSIO_OP_MAX_ROOMS + 1);
      if (n > WSIO_OP_MAX_ROOMS + 1) n = WSIO_OP_MAX_ROOMS + 1;
      if (n <= 1) break; /* only its own room: nobody else to reach */
      op = wsio_socket_broadcast(s);
      for (size_t i = 1; i < n; i++) wsio_op_to(&op, names[i]);
      emit(r, s, &op, event, args);
      break;
    }
    case SERVER_ROUTE_NONE: break;
  }
  if (r->ack) ack_json(ack, r->ack);
  app->metrics.route_events++;
}

static void on_any(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  srv_app *app = ud;
  const server_config *cfg = app->cfg;
  const char *event = wsio_args_event(args);
  if (cfg->rooms.join_event && strcmp(event, cfg->rooms.join_event) == 0) {
    join_or_leave(app, s, args, ack, 1);
    return;
  }
  if (cfg->rooms.leave_event && strcmp(event, cfg->rooms.leave_event) == 0) {
    join_or_leave(app, s, args, ack, 0);
    return;
  }
  const server_route *r = find_route(cfg, event, wsio_nsp_name(wsio_socket_nsp(s)));
  if (r) apply(app, r, s, args, ack);
  else if (app->unrouted) app->unrouted(s, args, ack, app->unrouted_ud);
}

static int match_dynamic(const char *name, void *ud) {
  const server_namespace *ns = ud;
  return server_config_match(ns->name, name);
}

int srv_routes_attach(srv_app *app, wsio_connection_cb on_connection, void *conn_ud, wsio_middleware mw) {
  const server_config *cfg = app->cfg;
  wsio_nsp *main_nsp = wsio_io_sockets(app->io);
  wsio_nsp_on_any(main_nsp, on_any, app);
  wsio_nsp_on_connection(main_nsp, on_connection, conn_ud);
  if (mw) wsio_nsp_use(main_nsp, mw, app);
  for (size_t i = 0; i < cfg->nnamespaces; i++) {
    const server_namespace *ns = &cfg->namespaces[i];
    wsio_nsp *n = ns->pattern ? wsio_io_of_match(app->io, match_dynamic, (void *)ns) : wsio_io_of(app->io, ns->name);
    if (!n) {
      log_error("cannot create namespace %s", ns->name);
      return WSIO_ENOMEM;
    }
    if (n == main_nsp) continue;
    wsio_nsp_on_any(n, on_any, app);
    wsio_nsp_on_connection(n, on_connection, conn_ud);
    if (mw) wsio_nsp_use(n, mw, app);
  }
  return 0;
}
