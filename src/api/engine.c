/* wsio_engine: the public raw Engine.IO server, a thin layer over eio_server (one per engine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eio/server.h"
#include "sio/internal.h"
#include "util/utf8.h"

struct wsio_engine {
  wsio_engine *next;             /* the server's list */
  wsio_server *server;
  eio_server *eio;
  char *path;
  wsio_engine_connection_cb on_conn;
  void *on_conn_ud;
  uv_check_t reap;
  wsio_engine_socket *dead;      /* closed sockets, freed after the loop iteration */
};

struct wsio_engine_socket {
  wsio_engine *engine;
  eio_socket *eio;               /* NULL once closed */
  wsio_engine_message_cb on_message;
  void *message_ud;
  wsio_engine_close_cb on_close;
  void *close_ud;
  void *data;
  wsio_engine_socket *next_dead;
  char id[EIO_SID_LEN + 1];      /* kept for the close callback and after */
  char remote[64];
};

/* ---- eio callbacks ---- */

static void on_eio_open(eio_socket *e, const http_request *req, const char *remote) {
  (void)req;
  wsio_engine *eng = eio_socket_server_data(e);
  wsio_engine_socket *s = calloc(1, sizeof *s);
  if (!s) {
    eio_socket_close(e, "forced close");
    return;
  }
  s->engine = eng;
  s->eio = e;
  memcpy(s->id, eio_socket_id(e), sizeof s->id);
  snprintf(s->remote, sizeof s->remote, "%s", remote);
  eio_socket_set_data(e, s);
  if (eng->on_conn) eng->on_conn(s, eng->on_conn_ud);
}

static void on_eio_message(eio_socket *e, int binary, const uint8_t *data, size_t len) {
  wsio_engine_socket *s = eio_socket_data(e);
  if (s && s->on_message) s->on_message(s, binary ? WSIO_BINARY : WSIO_TEXT, data, len, s->message_ud);
}

static void on_eio_close(eio_socket *e, const char *reason) {
  wsio_engine_socket *s = eio_socket_data(e);
  if (!s) return;
  eio_socket_set_data(e, NULL);
  s->eio = NULL;
  if (s->on_close) s->on_close(s, reason, s->close_ud);
  /* Not freed here: the application may still hold s in the callback that closed it. */
  wsio_engine *eng = s->engine;
  s->next_dead = eng->dead;
  eng->dead = s;
}

static const eio_handler engine_eio_handler = {
    .on_open = on_eio_open,
    .on_message = on_eio_message,
    .on_close = on_eio_close,
};

static void reap(wsio_engine *eng) {
  while (eng->dead) {
    wsio_engine_socket *s = eng->dead;
    eng->dead = s->next_dead;
    free(s);
  }
}

static void on_reap(uv_check_t *h) { reap(h->data); }

/* ---- the engine ---- */

/* Two paths collide when they are equal but for a trailing '/' (eio answers both forms). */
static int same_path(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 1 && a[la - 1] == '/') la--;
  if (lb > 1 && b[lb - 1] == '/') lb--;
  return la == lb && memcmp(a, b, la) == 0;
}

wsio_engine *wsio_engine_new(wsio_server *server, const wsio_engine_config *cfg) {
  if (!server) return NULL;
  const char *path = cfg && cfg->path ? cfg->path : "/engine.io/";
  if (path[0] != '/') return NULL;
  if (server->io && same_path(server->io->path, path)) return NULL;
  for (wsio_engine *o = server->engines; o; o = o->next)
    if (same_path(o->path, path)) return NULL;
  wsio_engine *eng = calloc(1, sizeof *eng);
  if (!eng || !(eng->path = strdup(path))) {
    free(eng);
    return NULL;
  }
  eio_config ec = {.path = path};
  if (cfg) {
    ec.ping_interval_ms = cfg->ping_interval_ms;
    ec.ping_timeout_ms = cfg->ping_timeout_ms;
    ec.upgrade_timeout_ms = cfg->upgrade_timeout_ms;
    ec.max_payload = cfg->max_payload;
    ec.transports = cfg->transports;
    ec.no_upgrades = cfg->no_upgrades;
    ec.cors_origins = cfg->cors_origin;
    ec.cors_credentials = cfg->cors_credentials;
    ec.cookie = cfg->cookie;
    ec.deflate = (int)cfg->per_message_deflate;
  }
  eng->server = server;
  if (!(eng->eio = eio_server_new(&server->net, &ec, &engine_eio_handler, server->deflate))) {
    free(eng->path);
    free(eng);
    return NULL;
  }
  eio_server_set_data(eng->eio, eng);
  uv_check_init(&server->uv, &eng->reap);
  eng->reap.data = eng;
  uv_check_start(&eng->reap, on_reap);
  uv_unref((uv_handle_t *)&eng->reap);
  eng->next = server->engines;
  server->engines = eng;
  return eng;
}

void wsio_engine_on_connection(wsio_engine *e, wsio_engine_connection_cb cb, void *ud) {
  e->on_conn = cb;
  e->on_conn_ud = ud;
}

size_t wsio_engine_count(const wsio_engine *e) { return eio_server_count(e->eio); }

int api_engine_http(wsio_server *s, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len) {
  for (wsio_engine *e = s->engines; e; e = e->next)
    if (eio_server_handle(e->eio, hc, req, rest, rest_len)) return 1;
  return 0;
}

void api_engine_shutdown_all(wsio_server *s) {
  for (wsio_engine *e = s->engines; e; e = e->next) eio_server_close_all(e->eio);
}

static void engine_freed(uv_handle_t *h) {
  wsio_engine *e = h->data;
  reap(e);
  free(e->path);
  free(e);
}

void api_engine_free_all(wsio_server *s) {
  while (s->engines) {
    wsio_engine *e = s->engines;
    s->engines = e->next;
    eio_server_free(e->eio); /* closes every session: their close callbacks run now */
    uv_close((uv_handle_t *)&e->reap, engine_freed);
  }
}

/* ---- sockets ---- */

void wsio_engine_socket_on_message(wsio_engine_socket *s, wsio_engine_message_cb cb, void *ud) {
  s->on_message = cb;
  s->message_ud = ud;
}

void wsio_engine_socket_on_close(wsio_engine_socket *s, wsio_engine_close_cb cb, void *ud) {
  s->on_close = cb;
  s->close_ud = ud;
}

int wsio_engine_socket_send(wsio_engine_socket *s, wsio_opcode op, const void *data, size_t len) {
  if (!s || (op != WSIO_TEXT && op != WSIO_BINARY) || (!data && len)) return WSIO_EINVAL;
  if (!s->eio) return WSIO_ECLOSED;
  /* A text frame with broken UTF-8 would make the client drop the connection. */
  if (op == WSIO_TEXT && !utf8_valid(data, len)) return WSIO_EINVAL;
  return eio_socket_send(s->eio, op == WSIO_BINARY, len ? data : (const uint8_t *)"", len);
}

void wsio_engine_socket_close(wsio_engine_socket *s) {
  if (s && s->eio) eio_socket_close(s->eio, "forced close");
}

const char *wsio_engine_socket_id(const wsio_engine_socket *s) { return s->id; }

const char *wsio_engine_socket_transport(const wsio_engine_socket *s) {
  if (!s->eio) return "";
  return eio_socket_transport(s->eio) == EIO_WEBSOCKET ? "websocket" : "polling";
}

const char *wsio_engine_socket_remote(const wsio_engine_socket *s) { return s->remote; }
void wsio_engine_socket_set_data(wsio_engine_socket *s, void *data) { s->data = data; }
void *wsio_engine_socket_data(const wsio_engine_socket *s) { return s->data; }
