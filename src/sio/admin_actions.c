/* The Admin UI's actions (instrument()'s registerFeatureHandlers): emit, join, leave and _disconnect from a
 * dashboard, applied with the broadcast operators, so a cluster adapter takes them to every server. Whatever
 * the arguments, an action does what socket.io would, or nothing: a dashboard may be hostile too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio/admin.h"
#include "sio/internal.h"

#define NAME_MAX_BYTES 4096 /* namespaces, rooms and event names; longer ones are ignored */

/* A string argument decoded into out (NUL-terminated): 0, or -1 when it is no string, too long, or holds a
 * NUL (a C name would be cut short). */
static int text_of(const sio_json_span *v, char *out, size_t cap) {
  if (v->kind != SIO_JSON_STRING) return -1;
  ssize_t n = sio_json_string_decode(v, out, cap - 1);
  if (n < 0 || memchr(out, 0, (size_t)n)) return -1;
  out[n] = 0;
  return 0;
}

/* Names decoded for one action: the strings its wsio_op borrows. */
typedef struct names {
  char *v[WSIO_OP_MAX_ROOMS + 2];
  size_t n;
} names;

static char *name_of(names *ns, const sio_json_span *v) {
  if (ns->n == sizeof ns->v / sizeof ns->v[0]) return NULL;
  char *b = malloc(NAME_MAX_BYTES);
  if (!b) return NULL;
  ns->v[ns->n++] = b;
  return text_of(v, b, NAME_MAX_BYTES) == 0 ? b : NULL;
}

static void names_free(names *ns) {
  for (size_t i = 0; i < ns->n; i++) free(ns->v[i]);
}

/* io.of(nsp).in(filter) as instrument() builds it. Only a namespace that exists is used: io.of() would make
 * one for any name a dashboard sends, and the namespaces of this io are never freed. A falsy filter is the
 * whole namespace; a string one room; an array its strings (an empty array: the whole namespace, as in()
 * of an empty list is). Returns 0, or -1 when nothing is to be done. */
static int target(wsio_io *io, const wsio_args *args, size_t filter_at, names *ns, wsio_op *op) {
  size_t len;
  const char *p = wsio_args_json(args, 0, &len);
  sio_json_span v;
  if (!p || sio_json_validate(p, len, 1, &v) != 0) return -1;
  char *name = name_of(ns, &v);
  if (!name) return -1;
  wsio_nsp *n;
  if (name[0] == '/') {
    n = map_get(&io->nsps, name, strlen(name));
  } else {
    /* io.of("chat") is "/chat". */
    char slash[NAME_MAX_BYTES + 1];
    snprintf(slash, sizeof slash, "/%s", name);
    n = map_get(&io->nsps, slash, strlen(slash));
  }
  if (!n) return -1;
  *op = wsio_nsp_op(n);
  if (wsio_args_type(args, filter_at) == WSIO_ARG_BINARY) return -1; /* in(buffer): no room is named so */
  p = wsio_args_json(args, filter_at, &len);
  if (!p || sio_json_validate(p, len, SIO_JSON_DEPTH_MAX, &v) != 0 || !sio_json_truthy(&v)) return 0;
  if (v.kind == SIO_JSON_STRING) {
    char *room = name_of(ns, &v);
    if (!room) return -1;
    wsio_op_to(op, room);
  } else if (v.kind == SIO_JSON_ARRAY) {
    sio_json_iter it;
    sio_json_span e;
    size_t total = 0;
    sio_json_iter_init(&it, &v);
    while (sio_json_array_next(&it, &e)) {
      total++;
      char *room = e.kind == SIO_JSON_STRING ? name_of(ns, &e) : NULL;
      if (room) wsio_op_to(op, room);
    }
    if (total && !op->nrooms) return -1; /* only rooms no socket can be in */
  } else {
    return -1; /* in(5), in({}): rooms no socket is in */
  }
  return op->err ? -1 : 0;
}

/* A room argument of join / leave: a string, or an array of them (socketsJoin takes both). */
static void rooms_apply(const wsio_args *args, const wsio_op *op, names *ns, int join) {
  size_t len;
  const char *p = wsio_args_json(args, 1, &len);
  sio_json_span v, e;
  if (!p || sio_json_validate(p, len, SIO_JSON_DEPTH_MAX, &v) != 0) return;
  if (v.kind == SIO_JSON_STRING) {
    char *room = name_of(ns, &v);
    if (room) join ? wsio_op_sockets_join(op, room) : wsio_op_sockets_leave(op, room);
    return;
  }
  if (v.kind != SIO_JSON_ARRAY) return;
  sio_json_iter it;
  sio_json_iter_init(&it, &v);
  while (sio_json_array_next(&it, &e)) {
    char *room = e.kind == SIO_JSON_STRING ? name_of(ns, &e) : NULL;
    if (room) join ? wsio_op_sockets_join(op, room) : wsio_op_sockets_leave(op, room);
  }
}

void sio_admin_action(wsio_io *io, const wsio_args *args) {
  const char *ev = args->event;
  names ns = {.n = 0};
  wsio_op op;
  if (!strcmp(ev, "emit")) {
    /* (nsp, filter, ev, ...args) */
    sio_json_span v;
    size_t len;
    const char *p = wsio_args_json(args, 2, &len);
    char *name;
    if (target(io, args, 1, &ns, &op) == 0 && p && sio_json_validate(p, len, 1, &v) == 0 &&
        (name = name_of(&ns, &v)) != NULL) {
      wsio_args rest = *args;
      rest.v += 3;
      rest.n -= 3;
      /* A reserved name (connect, disconnect, ...) is refused by the encoder; socket.io would throw. */
      wsio_op_emit_args(&op, name, &rest);
    }
  } else if (!strcmp(ev, "join") || !strcmp(ev, "leave")) {
    /* (nsp, room, filter) */
    if (args->n >= 2 && target(io, args, 2, &ns, &op) == 0) rooms_apply(args, &op, &ns, ev[0] == 'j');
  } else if (!strcmp(ev, "_disconnect")) {
    /* (nsp, close, filter) */
    size_t len;
    const char *p = wsio_args_json(args, 1, &len);
    sio_json_span v = {0};
    int close = wsio_args_type(args, 1) == WSIO_ARG_BINARY || /* an object: truthy */
                (p && sio_json_validate(p, len, SIO_JSON_DEPTH_MAX, &v) == 0 && sio_json_truthy(&v));
    if (target(io, args, 2, &ns, &op) == 0) wsio_op_disconnect_sockets(&op, close);
  }
  names_free(&ns);
}
