/* The HTTP publish API: a backend in any language emits, disconnects and inspects through plain HTTP. */
#include "server/http_api.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "eio/packet.h"
#include "http/response.h"

#define API_PREFIX "/api/"
#define API_MAX_LIST 100000

static int reply_json(buf *out, int status, json_t *body, int keep_alive) {
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  http_response_start(out, status);
  http_response_header(out, "Content-Type", "application/json");
  http_response_header(out, "Cache-Control", "no-store");
  if (status == 401) http_response_header(out, "WWW-Authenticate", "Bearer");
  http_response_end(out, text ? text : "{}", text ? strlen(text) : 2, keep_alive);
  free(text);
  return status;
}

static int fail(buf *out, int status, const char *message, int keep_alive) {
  return reply_json(out, status, json_pack("{s:s}", "error", message), keep_alive);
}

/* Constant-time: the key's length leaks, its bytes don't. */
static int authorized(const http_request *req, const char *key) {
  const http_header *h = http_request_header(req, "Authorization");
  if (!h || h->value_len < 7 || strncasecmp(h->value, "Bearer ", 7) != 0) return 0;
  const char *token = h->value + 7;
  size_t len = h->value_len - 7;
  while (len && *token == ' ') token++, len--;
  size_t klen = strlen(key);
  return len == klen && CRYPTO_memcmp(token, key, klen) == 0;
}

static wsio_nsp *namespace_of(wsio_io *io, const char *name) {
  if (!name) name = "/";
  if (name[0] != '/') return NULL;
  wsio_nsp *list[256];
  size_t n = wsio_io_namespaces(io, list, 256);
  for (size_t i = 0; i < n && i < 256; i++)
    if (strcmp(wsio_nsp_name(list[i]), name) == 0) return list[i];
  return NULL;
}

/* Reads "rooms" and "except" (arrays of strings) into op. Returns NULL or an error message. */
static const char *rooms_into(json_t *body, const char *key, wsio_op *op, int except) {
  json_t *arr = json_object_get(body, key);
  if (!arr) return NULL;
  if (!json_is_array(arr)) return except ? "\"except\" must be an array of room names" : "\"rooms\" must be an array of room names";
  if (json_array_size(arr) > WSIO_OP_MAX_ROOMS) return "too many rooms (at most 16)";
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!json_is_string(v)) return "room names must be strings";
    if (except) wsio_op_except(op, json_string_value(v));
    else wsio_op_to(op, json_string_value(v));
  }
  return NULL;
}

/* Each call below answers with a status and a JSON body (*res), as one worker sees it; local set: operate on
 * this worker's sockets only (every worker runs the call, the answers are merged). */
static int err_json(json_t **res, int status, const char *message) {
  *res = json_pack("{s:s}", "error", message);
  return status;
}

static int parse_body(const http_request *req, json_t **body, json_t **res) {
  json_error_t err;
  *body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
  if (!*body || !json_is_object(*body)) {
    char msg[256];
    snprintf(msg, sizeof msg, "the body must be a JSON object%s%s", *body ? "" : ": ", *body ? "" : err.text);
    json_decref(*body);
    return err_json(res, 400, msg);
  }
  return 0;
}

static int api_emit(wsio_io *io, const http_request *req, int local, json_t **res) {
  json_t *body;
  int st = parse_body(req, &body, res);
  if (st) return st;
  const char *event = json_string_value(json_object_get(body, "event"));
  json_t *data = json_object_get(body, "data");
  wsio_nsp *nsp = namespace_of(io, json_string_value(json_object_get(body, "namespace")));
  const char *why = NULL;
  int status = 400;
  if (!event || !*event) why = "\"event\" (a non-empty string) is required";
  else if (data && !json_is_array(data)) why = "\"data\" must be an array: the event's arguments";
  else if (!nsp) why = "unknown namespace", status = 404;
  wsio_op op = nsp ? wsio_nsp_op(nsp) : (wsio_op){0};
  if (!why) why = rooms_into(body, "rooms", &op, 0);
  if (!why) why = rooms_into(body, "except", &op, 1);
  if (why) {
    st = err_json(res, status, why);
    json_decref(body);
    return st;
  }
  if (local) wsio_op_local(&op);
  char *args = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  int n = wsio_op_emit(&op, event, args);
  free(args);
  json_decref(body);
  if (n == WSIO_EINVAL) return err_json(res, 400, "that event name is reserved by Socket.IO");
  if (n < 0) return err_json(res, 500, wsio_strerror(n));
  *res = json_pack("{s:b,s:i}", "ok", 1, "recipients", n);
  return 200;
}

static int api_disconnect(wsio_io *io, const http_request *req, int local, json_t **res) {
  json_t *body;
  int st = parse_body(req, &body, res);
  if (st) return st;
  wsio_nsp *nsp = namespace_of(io, json_string_value(json_object_get(body, "namespace")));
  if (!nsp) {
    json_decref(body);
    return err_json(res, 404, "unknown namespace");
  }
  wsio_op op = wsio_nsp_op(nsp);
  const char *why = rooms_into(body, "rooms", &op, 0);
  if (!why) why = rooms_into(body, "except", &op, 1);
  json_t *close = json_object_get(body, "close");
  if (!why && close && !json_is_boolean(close)) why = "\"close\" must be true or false";
  if (!why && op.nrooms == 0 && !json_is_true(json_object_get(body, "all")))
    why = "name \"rooms\" (a socket id is a room too), or set \"all\": true";
  if (why) {
    st = err_json(res, 400, why);
    json_decref(body);
    return st;
  }
  if (local) wsio_op_local(&op);
  int n = wsio_op_disconnect_sockets(&op, json_is_true(close));
  json_decref(body);
  if (n < 0) return err_json(res, 500, wsio_strerror(n));
  *res = json_pack("{s:b,s:i}", "ok", 1, "disconnected", n);
  return 200;
}

static wsio_nsp *query_namespace(wsio_io *io, const http_request *req, char *room, size_t room_cap) {
  char name[256];
  if (eio_query_get(req->query, req->query_len, "namespace", name, sizeof name) < 0) strcpy(name, "/");
  if (eio_query_get(req->query, req->query_len, "room", room, room_cap) < 0) room[0] = 0;
  return namespace_of(io, name);
}

static int api_sockets(wsio_io *io, const http_request *req, int local, json_t **res) {
  (void)local; /* lists this worker's sockets either way */
  char room[256];
  wsio_nsp *nsp = query_namespace(io, req, room, sizeof room);
  if (!nsp) return err_json(res, 404, "unknown namespace");
  wsio_op op = room[0] ? wsio_nsp_to(nsp, room) : wsio_nsp_op(nsp);
  size_t total = wsio_op_fetch_sockets(&op, NULL, 0);
  if (total > API_MAX_LIST) total = API_MAX_LIST;
  wsio_socket **v = malloc((total ? total : 1) * sizeof *v);
  if (!v) return err_json(res, 500, "out of memory");
  size_t n = wsio_op_fetch_sockets(&op, v, total);
  if (n > total) n = total;
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++) {
    const char *names[64];
    size_t nr = wsio_socket_rooms(v[i], names, 64);
    json_t *rooms = json_array();
    for (size_t k = 0; k < nr && k < 64; k++) json_array_append_new(rooms, json_string(names[k]));
    const wsio_handshake *hs = wsio_socket_handshake(v[i]);
    json_array_append_new(list, json_pack("{s:s,s:o,s:s,s:s,s:I}", "id", wsio_socket_id(v[i]), "rooms", rooms,
                                          "transport", wsio_socket_transport(v[i]), "address", hs->address,
                                          "connectedAt", (json_int_t)hs->time));
  }
  free(v);
  *res = json_pack("{s:s,s:o}", "namespace", wsio_nsp_name(nsp), "sockets", list);
  return 200;
}

static int api_rooms(wsio_io *io, const http_request *req, int local, json_t **res) {
  (void)local;
  char room[256];
  wsio_nsp *nsp = query_namespace(io, req, room, sizeof room);
  if (!nsp) return err_json(res, 404, "unknown namespace");
  size_t total = wsio_nsp_rooms(nsp, NULL, NULL, 0);
  if (total > API_MAX_LIST) total = API_MAX_LIST;
  const char **names = malloc((total ? total : 1) * sizeof *names);
  size_t *counts = malloc((total ? total : 1) * sizeof *counts);
  if (!names || !counts) {
    free(names);
    free(counts);
    return err_json(res, 500, "out of memory");
  }
  size_t n = wsio_nsp_rooms(nsp, names, counts, total);
  if (n > total) n = total;
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(list, json_pack("{s:s,s:I}", "name", names[i], "size", (json_int_t)counts[i]));
  free(names);
  free(counts);
  *res = json_pack("{s:s,s:o}", "namespace", wsio_nsp_name(nsp), "rooms", list);
  return 200;
}

typedef int (*api_fn)(wsio_io *, const http_request *, int, json_t **);
static const struct {
  const char *name;
  int post;
  api_fn fn;
} routes[] = {
    {"emit", 1, api_emit}, {"disconnect", 1, api_disconnect}, {"sockets", 0, api_sockets}, {"rooms", 0, api_rooms},
};

int srv_http_api_begin(const char *key, const http_request *req, buf *out, int keep_alive, int *call) {
  size_t plen = strlen(API_PREFIX);
  if (req->path_len < plen || memcmp(req->path, API_PREFIX, plen) != 0) return 0;
  if (!key || !*key) return 0; /* no key configured: the API does not exist (404 downstream) */
  if (!authorized(req, key)) return fail(out, 401, "missing or wrong API key (Authorization: Bearer KEY)", keep_alive);
  const char *what = req->path + plen;
  int get = req->method == 1, post = req->method == 3;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(what, routes[i].name) != 0) continue;
    if (routes[i].post ? !post : !get) {
      http_response_start(out, 405);
      http_response_header(out, "Allow", routes[i].post ? "POST" : "GET");
      http_response_header(out, "Content-Type", "application/json");
      const char *b = routes[i].post ? "{\"error\":\"use POST\"}" : "{\"error\":\"use GET\"}";
      http_response_end(out, b, strlen(b), keep_alive);
      return 405;
    }
    *call = (int)i;
    return SRV_API_RUN;
  }
  return fail(out, 404, "no such API call: use emit, disconnect, sockets or rooms", keep_alive);
}

int srv_http_api_run(wsio_io *io, int call, const char *query, size_t query_len, const uint8_t *body,
                     size_t body_len, int local, json_t **res) {
  if (call < 0 || (size_t)call >= sizeof routes / sizeof routes[0]) return err_json(res, 500, "bad call");
  if (!io) return err_json(res, 404, "unknown namespace");
  http_request r = {.query = query, .query_len = query_len, .body = body, .body_len = body_len};
  return routes[call].fn(io, &r, local, res);
}

/* A namespace may exist on some workers only (a dynamic one is made where a client asked for it): an
 * answer of 200 beats a 404, and the counts and lists of every 200 add up. */
void srv_http_api_merge(int call, int *status, json_t **acc, int st, json_t *res) {
  if (!*acc || (*status != 200 && st == 200)) {
    json_decref(*acc);
    *acc = res;
    *status = st;
    return;
  }
  if (*status != 200 || st != 200) {
    json_decref(res);
    return;
  }
  const char *name = routes[call].name;
  if (!strcmp(name, "emit") || !strcmp(name, "disconnect")) {
    const char *k = !strcmp(name, "emit") ? "recipients" : "disconnected";
    json_int_t n = json_integer_value(json_object_get(*acc, k)) + json_integer_value(json_object_get(res, k));
    json_object_set_new(*acc, k, json_integer(n));
  } else if (!strcmp(name, "sockets")) {
    json_array_extend(json_object_get(*acc, "sockets"), json_object_get(res, "sockets"));
  } else {
    json_t *rooms = json_object_get(*acc, "rooms"), *more = json_object_get(res, "rooms"), *r;
    size_t i;
    json_array_foreach(more, i, r) {
      const char *rn = json_string_value(json_object_get(r, "name"));
      json_t *same = NULL, *x;
      size_t k;
      json_array_foreach(rooms, k, x) if (rn && !strcmp(rn, json_string_value(json_object_get(x, "name")))) same = x;
      if (!same) {
        json_array_append(rooms, r);
        continue;
      }
      json_int_t n = json_integer_value(json_object_get(same, "size")) + json_integer_value(json_object_get(r, "size"));
      json_object_set_new(same, "size", json_integer(n));
    }
  }
  json_decref(res);
}

int srv_http_api_reply(buf *out, int status, json_t *res, int keep_alive) {
  return reply_json(out, status, res ? res : json_pack("{s:s}", "error", "no answer"), keep_alive);
}

int srv_http_api(wsio_io *io, const char *key, const http_request *req, buf *out, int keep_alive) {
  int call = -1;
  int st = srv_http_api_begin(key, req, out, keep_alive, &call);
  if (st != SRV_API_RUN) return st;
  if (!io) return 0;
  json_t *res = NULL;
  st = srv_http_api_run(io, call, req->query, req->query_len, req->body, req->body_len, 0, &res);
  return srv_http_api_reply(out, st, res, keep_alive);
}
