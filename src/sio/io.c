/* wsio_io: the Socket.IO server — namespaces, clients (one per Engine.IO session), packet dispatch, timers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "http/response.h"
#include "http/static.h"
#include "sio/internal.h"
#include "util/log.h"

#define TICK_MS 100

uint64_t sio_now(const wsio_io *io) { return uv_now(io->loop->uv); }

/* ---- namespaces ---- */

static wsio_nsp *nsp_new(wsio_io *io, const char *name, size_t len) {
  wsio_nsp *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->io = io;
  n->name = malloc(len + 1);
  if (!n->name) {
    free(n);
    return NULL;
  }
  memcpy(n->name, name, len);
  n->name[len] = 0;
  n->name_len = len;
  if (map_put(&io->nsps, n->name, len, n) != 0) {
    free(n->name);
    free(n);
    return NULL;
  }
  return n;
}

static void nsp_free(wsio_nsp *n) {
  size_t i = 0;
  map_entry *e;
  while (map_next(&n->rooms, &i, &e)) {
    sio_room *r = e->value;
    free(r->members);
    free(r->name);
    free(r);
  }
  map_free(&n->rooms);
  map_free(&n->by_id);
  free(n->sockets);
  sio_handlers_free(n->handlers);
  sio_handlers_free(n->any);
  sio_handlers_free(n->any_out);
  sio_cluster_nsp_free(n);
  free(n->name);
  free(n);
}

wsio_nsp *sio_nsp_lookup(wsio_io *io, const char *name, size_t len) {
  wsio_nsp *n = map_get(&io->nsps, name, len);
  if (n) return n;
  if (len == 0 || name[0] != '/' || len > 256) return NULL;
  char tmp[257];
  memcpy(tmp, name, len);
  tmp[len] = 0;
  for (wsio_nsp *p = io->dynamic; p; p = p->next_dynamic) {
    if (!p->match(tmp, p->match_ud)) continue;
    if (io->dynamic_children >= io->max_dynamic) {
      if (!io->dynamic_full_told++)
        log_warn("socket.io: %zu namespaces made by matchers, the most allowed: new names are refused from now on "
                 "(\"Invalid namespace\")", io->dynamic_children);
      return NULL;
    }
    n = nsp_new(io, name, len);
    if (!n) return NULL;
    n->parent = p;
    io->dynamic_children++;
    sio_cluster_nsp_created(n);
    return n;
  }
  return NULL;
}

void wsio_io_set_max_dynamic_namespaces(wsio_io *io, size_t max) {
  if (io) io->max_dynamic = max;
}

wsio_nsp *wsio_io_of(wsio_io *io, const char *name) {
  if (!io || !name || name[0] != '/') return NULL;
  size_t len = strlen(name);
  wsio_nsp *n = map_get(&io->nsps, name, len);
  if (n) return n;
  if ((n = nsp_new(io, name, len)) != NULL) sio_cluster_nsp_created(n);
  return n;
}

wsio_nsp *wsio_io_sockets(wsio_io *io) { return io ? io->main : NULL; }

wsio_nsp *wsio_io_of_match(wsio_io *io, wsio_nsp_matcher match, void *ud) {
  if (!io || !match) return NULL;
  wsio_nsp *p = calloc(1, sizeof *p);
  if (!p || !(p->name = strdup("(dynamic)"))) {
    free(p);
    return NULL;
  }
  p->io = io;
  p->match = match;
  p->match_ud = ud;
  p->next_dynamic = io->dynamic;
  io->dynamic = p;
  return p;
}

const char *wsio_nsp_name(const wsio_nsp *n) { return n->name; }
size_t wsio_nsp_count(const wsio_nsp *n) { return n->nsockets; }

void wsio_nsp_on_connection(wsio_nsp *n, wsio_connection_cb cb, void *ud) {
  n->on_conn = cb;
  n->on_conn_ud = ud;
}

void wsio_nsp_on_room(wsio_nsp *n, wsio_room_cb cb, void *ud) {
  if (!n) return;
  n->on_room = cb;
  n->on_room_ud = ud;
}

int wsio_nsp_use(wsio_nsp *n, wsio_middleware mw, void *ud) {
  if (!n || !mw) return WSIO_EINVAL;
  if (n->nmw >= SIO_MAX_MIDDLEWARES) return WSIO_ELIMIT;
  n->mw[n->nmw].fn = mw;
  n->mw[n->nmw].ud = ud;
  n->nmw++;
  return 0;
}

/* ---- encoding ---- */

static int check_event(const char *event) {
  return event && !sio_packet_name_reserved(event, strlen(event));
}

int sio_encode_json(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event, const char *json) {
  buf *b = &io->scratch;
  b->len = 0;
  if (type == SIO_EVENT && !check_event(event)) return WSIO_EINVAL;
  if (type == SIO_EVENT)
    return sio_packet_encode_event(b, nsp->name, nsp->name_len, id, event, strlen(event), json, json ? strlen(json) : 0);
  return sio_packet_encode_ack(b, nsp->name, nsp->name_len, id, json, json ? strlen(json) : 0);
}

int sio_encode_values(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event,
                      const wsio_value *vals, size_t n, sio_bin *atts, size_t *natts) {
  if (type == SIO_EVENT && !check_event(event)) return WSIO_EINVAL;
  sio_arg stack[SIO_MAX_ARGS_STACK];
  sio_arg *args = n <= SIO_MAX_ARGS_STACK ? stack : malloc(n * sizeof *args);
  if (!args) return WSIO_ENOMEM;
  size_t nb = 0;
  for (size_t i = 0; i < n; i++) {
    memset(&args[i], 0, sizeof args[i]);
    if (vals[i].binary) {
      args[i].kind = SIO_ARG_BINARY;
      args[i].bin.p = vals[i].data;
      args[i].bin.len = vals[i].len;
      nb++;
    } else {
      args[i].kind = SIO_ARG_JSON;
      args[i].json.p = vals[i].data;
      args[i].json.len = vals[i].len;
    }
  }
  io->scratch.len = 0;
  int rc = nb > SIO_MAX_ARGS_STACK ? WSIO_ELIMIT
                                   : sio_packet_encode_args(&io->scratch, type, nsp->name, nsp->name_len, id, event,
                                                            event ? strlen(event) : 0, args, n, atts);
  *natts = rc >= 0 ? nb : 0;
  if (args != stack) free(args);
  return rc < 0 ? rc : 0;
}

/* Arguments that came in a binary packet go on as they came: the JSON verbatim, so placeholders nested at
 * any depth keep their numbers, and every attachment in its order. */
static int encode_forward(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event,
                          const wsio_args *a, sio_bin *atts, size_t *natts) {
  if (type == SIO_EVENT && !check_event(event)) return WSIO_EINVAL;
  if (a->natts > SIO_MAX_ARGS_STACK) return WSIO_ELIMIT;
  buf *b = &io->scratch;
  b->len = 0;
  sio_packet hdr = {.type = type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK,
                    .attachments = (unsigned)a->natts, .nsp = nsp->name, .nsp_len = nsp->name_len, .id = id};
  int rc = sio_packet_encode(b, &hdr);
  if (rc == 0) rc = buf_append(b, "[", 1);
  int first = 1;
  if (rc == 0 && type == SIO_EVENT) {
    rc = sio_json_write_string(b, event, strlen(event));
    first = 0;
  }
  for (size_t i = 0; rc == 0 && i < a->n; i++) {
    const sio_arg *v = &a->v[i];
    if (!first && (rc = buf_append(b, ",", 1)) != 0) break;
    first = 0;
    if (v->kind == SIO_ARG_JSON) {
      rc = buf_append(b, v->json.p, v->json.len);
      continue;
    }
    size_t k = sio_args_att_index(a, v);
    char ph[64];
    int n = snprintf(ph, sizeof ph, "{\"_placeholder\":true,\"num\":%zu}", k);
    rc = k < a->natts ? buf_append(b, ph, (size_t)n) : WSIO_EINVAL;
  }
  if (rc == 0) rc = buf_append(b, "]", 1);
  if (rc) {
    b->len = 0;
    return rc;
  }
  memcpy(atts, a->atts, a->natts * sizeof *atts);
  *natts = a->natts;
  return 0;
}

int sio_encode_args(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event, const wsio_args *a,
                    sio_bin *atts, size_t *natts) {
  if (type == SIO_EVENT && !event) return WSIO_EINVAL;
  if (a->natts) return encode_forward(io, type, nsp, id, event, a, atts, natts);
  size_t nb = 0;
  for (size_t i = 0; i < a->n; i++) nb += a->v[i].kind == SIO_ARG_BINARY;
  if (nb > SIO_MAX_ARGS_STACK) return WSIO_ELIMIT;
  io->scratch.len = 0;
  /* The encoder refuses a reserved name itself. */
  int rc = sio_packet_encode_args(&io->scratch, type, nsp->name, nsp->name_len, id, event, event ? strlen(event) : 0,
                                  a->v, a->n, atts);
  *natts = rc >= 0 ? nb : 0;
  return rc < 0 ? rc : 0;
}

int sio_client_send(sio_client *c, const char *text, size_t len, const sio_bin *atts, size_t natts) {
  eio_socket *e = c->eio;
  if (!e) return WSIO_ECLOSED;
  if (c->io->parser == WSIO_PARSER_MSGPACK) {
    int rc = sio_mp_encode(text, len, atts, natts, &c->io->mp_json, &c->io->mp_out);
    return rc ? rc : eio_socket_send(e, 1, c->io->mp_out.data, c->io->mp_out.len);
  }
  int rc = eio_socket_send(e, 0, (const uint8_t *)text, len);
  for (size_t i = 0; rc == 0 && i < natts; i++) rc = eio_socket_send(e, 1, atts[i].p, atts[i].len);
  return rc;
}

int sio_send(wsio_socket *s, const buf *text, const sio_bin *atts, size_t natts) {
  return sio_client_send(s->client, (const char *)text->data, text->len, atts, natts);
}

eio_msg *sio_msg_new(wsio_io *io, const char *text, size_t len, const sio_bin *atts, size_t natts) {
  eio_msg *m = eio_msg_new();
  if (!m) return NULL;
  int rc;
  if (io->parser == WSIO_PARSER_MSGPACK) {
    rc = sio_mp_encode(text, len, atts, natts, &io->mp_json, &io->mp_out);
    if (rc == 0) rc = eio_msg_add(m, 1, io->mp_out.data, io->mp_out.len);
  } else {
    rc = eio_msg_add(m, 0, (const uint8_t *)text, len);
    for (size_t i = 0; rc == 0 && i < natts; i++) rc = eio_msg_add(m, 1, atts[i].p, atts[i].len);
  }
  if (rc) {
    eio_msg_unref(m);
    return NULL;
  }
  return m;
}

/* ---- clients ---- */

static void connecting_remove(wsio_io *io, sio_client *c) {
  if (!c->connect_due) return;
  if (c->cprev) c->cprev->cnext = c->cnext;
  else io->connecting = c->cnext;
  if (c->cnext) c->cnext->cprev = c->cprev;
  else io->connecting_tail = c->cprev;
  c->cnext = c->cprev = NULL;
  c->connect_due = 0;
}

/* Copies what socket.handshake shows into one block (*block, the caller's to free): url, query, address,
 * and the headers as "name\0value\0...\0" with names lowercased. */
static int hs_build(const http_request *req, const char *remote, int secure, wsio_handshake *hs,
                    const char **headers, char **block) {
  size_t need = req->url_len + 1 + req->query_len + 1 + strlen(remote) + 1 + 1;
  for (size_t i = 0; i < req->nheaders; i++) need += req->headers[i].name_len + req->headers[i].value_len + 2;
  char *b = malloc(need);
  if (!b) return WSIO_ENOMEM;
  char *p = b;
  hs->url = p;
  memcpy(p, req->url, req->url_len);
  p += req->url_len;
  *p++ = 0;
  hs->query = p;
  memcpy(p, req->query, req->query_len);
  p += req->query_len;
  *p++ = 0;
  hs->address = p;
  strcpy(p, remote);
  p += strlen(remote) + 1;
  *headers = p;
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header *h = &req->headers[i];
    for (size_t k = 0; k < h->name_len; k++) *p++ = (char)tolower((unsigned char)h->name[k]);
    *p++ = 0;
    memcpy(p, h->value, h->value_len);
    p += h->value_len;
    *p++ = 0;
  }
  *p = 0;
  *block = b;
  uv_timeval64_t tv;
  hs->time = 0;
  if (uv_gettimeofday(&tv) == 0) hs->time = tv.tv_sec * 1000 + tv.tv_usec / 1000;
  hs->secure = secure;
  hs->auth = "{}";
  return 0;
}

static int handshake_copy(sio_client *c, const http_request *req, const char *remote) {
  return hs_build(req, remote, c->io->loop->tls != NULL, &c->hs, &c->headers, &c->hs_block);
}

const char *sio_header_find(const char *headers, const char *name) {
  size_t len = strlen(name);
  for (const char *p = headers; *p;) {
    size_t nl = strlen(p);
    const char *v = p + nl + 1;
    if (nl == len && strncasecmp(p, name, len) == 0) return v;
    p = v + strlen(v) + 1;
  }
  return NULL;
}

/* ---- allowRequest ---- */

struct wsio_request {
  wsio_handshake hs;
  const char *headers;
};

const wsio_handshake *wsio_request_handshake(const wsio_request *r) { return r ? &r->hs : NULL; }
const char *wsio_request_header(const wsio_request *r, const char *name) {
  return r && name ? sio_header_find(r->headers, name) : NULL;
}

static int allow_request(void *ud, const http_request *req, const char *remote, const char **message) {
  wsio_io *io = ud;
  wsio_request r;
  char *block;
  /* Without memory for the copy the request cannot be judged: refused, as a failed check would be. */
  if (hs_build(req, remote, io->loop->tls != NULL, &r.hs, &r.headers, &block) != 0) return 0;
  int ok = io->allow(&r, message, io->allow_ud);
  free(block);
  if (!ok) log_debug("socket.io: allowRequest refused a session from %s", remote);
  return ok;
}

static void connection_error(void *ud, const http_request *req, const char *remote, int code, const char *message) {
  wsio_io *io = ud;
  wsio_request r;
  char *block;
  if (hs_build(req, remote, io->loop->tls != NULL, &r.hs, &r.headers, &block) != 0) return;
  io->on_error(&r, code, message, io->on_error_ud);
  free(block);
}

/* ---- initial_headers / headers ---- */

struct wsio_headers {
  buf *extra;
};

int wsio_headers_add(wsio_headers *h, const char *name, const char *value) {
  return h ? eio_header_add(h->extra, name, value) : WSIO_EINVAL;
}

static void on_headers(void *ud, const http_request *req, const char *remote, int initial, buf *extra) {
  wsio_io *io = ud;
  wsio_request r;
  char *block;
  if (hs_build(req, remote, io->loop->tls != NULL, &r.hs, &r.headers, &block) != 0) return;
  wsio_headers h = {extra};
  io->on_headers(&r, initial, &h, io->headers_ud);
  free(block);
}

void wsio_io_on_headers(wsio_io *io, wsio_headers_cb cb, void *ud) {
  if (!io) return;
  io->on_headers = cb;
  io->headers_ud = ud;
  eio_server_on_headers(io->eio, cb ? on_headers : NULL, io);
}

void wsio_io_on_connection_error(wsio_io *io, wsio_connection_error_cb cb, void *ud) {
  if (!io) return;
  io->on_error = cb;
  io->on_error_ud = ud;
  eio_server_on_error(io->eio, cb ? connection_error : NULL, io);
}

void wsio_io_allow_request(wsio_io *io, wsio_allow_request_cb cb, void *ud) {
  if (!io) return;
  io->allow = cb;
  io->allow_ud = ud;
  eio_server_set_allow(io->eio, cb ? allow_request : NULL, io);
}

static void on_connect_packet(sio_client *c, const char *nsp, size_t nsp_len, const char *auth, size_t auth_len);

static void on_eio_open(eio_socket *e, const http_request *req, const char *remote) {
  wsio_io *io = eio_socket_server_data(e);
  sio_client *c = calloc(1, sizeof *c);
  if (c) c->io = io;
  if (!c || handshake_copy(c, req, remote) != 0) {
    free(c);
    eio_socket_close(e, "forced close");
    return;
  }
  c->eio = e;
  eio_socket_set_data(e, c);
  c->connect_due = sio_now(io) + io->cfg.connect_timeout_ms;
  net_bucket_init(&c->rate, io->cfg.packet_burst, sio_now(io));
  c->cprev = io->connecting_tail;
  if (io->connecting_tail) io->connecting_tail->cnext = c;
  else io->connecting = c;
  io->connecting_tail = c;
  sio_tick_arm(io);
  if (io->admin) sio_admin_raw_open(io);
  /* socket.io connects a protocol v4 client (Engine.IO v3) to "/" at once: it sends no CONNECT for it. */
  if (eio_socket_protocol(e) == 3) {
    c->v3 = 1;
    on_connect_packet(c, "/", 1, NULL, 0);
  }
}

static void client_free(sio_client *c) {
  if (c->reasm) {
    sio_packet_reasm_free(c->reasm);
    free(c->reasm);
  }
  free(c->hs_block);
  free(c);
}

static void on_eio_close(eio_socket *e, const char *reason) {
  sio_client *c = eio_socket_data(e);
  if (!c) return;
  wsio_io *io = c->io;
  if (io->admin) sio_admin_raw_close(io, reason);
  connecting_remove(io, c);
  c->eio = NULL;
  while (c->sockets) sio_socket_end(c->sockets, reason, 0);
  client_free(c);
  eio_socket_set_data(e, NULL);
}

static wsio_socket *client_socket(sio_client *c, const char *nsp, size_t len) {
  for (wsio_socket *s = c->sockets; s; s = s->client_next)
    if (s->nsp->name_len == len && (len == 1 || memcmp(s->nsp->name, nsp, len) == 0)) return s; /* "/": no call */
  return NULL;
}

static void connect_error(sio_client *c, const char *nsp, size_t nsp_len, const char *msg) {
  buf *b = &c->io->scratch;
  b->len = 0;
  sio_packet_encode_connect_error(b, nsp, nsp_len, msg, strlen(msg), NULL, 0);
  sio_client_send(c, (const char *)b->data, b->len, NULL, 0);
}

static void on_connect_packet(sio_client *c, const char *nsp, size_t nsp_len, const char *auth, size_t auth_len) {
  if (client_socket(c, nsp, nsp_len)) return; /* already there: socket.io ignores it too */
  wsio_nsp *n = sio_nsp_lookup(c->io, nsp, nsp_len);
  if (!n) {
    connect_error(c, nsp, nsp_len, "Invalid namespace");
    return;
  }
  wsio_socket *s = sio_socket_new(c, n, auth, auth_len);
  if (!s) {
    eio_socket_close(c->eio, "forced close");
    return;
  }
  connecting_remove(c->io, c);
  /* A recovered session skips the middlewares, as socket.io's skipMiddlewares default does. v3 clients
   * have no recovery. */
  int restored = c->io->rec && !c->v3 ? sio_recovery_restore(s, auth, auth_len) : 0;
  if (restored == 1) sio_socket_connect(s);
  else if (restored == 0) sio_socket_start(s); /* 2: held while another worker is asked */
}

/* The packet rate (wsio_io_config.packets_per_second), checked on whole packets so that a dropped binary
 * packet takes its attachments with it. Returns 1 to handle the packet; 0 when it was dropped, or when the
 * client was disconnected (c is then freed). */
static int rate_admit(sio_client *c) {
  wsio_io *io = c->io;
  if (net_bucket_take(&c->rate, io->cfg.packets_per_second, io->cfg.packet_burst, sio_now(io))) return 1;
  if (io->cfg.packet_rate_drop) {
    io->rate_dropped++;
    return 0;
  }
  io->rate_closes++;
  log_warn("socket.io: disconnecting %s: over %u packets per second (burst %u)", c->hs.address,
           io->cfg.packets_per_second, io->cfg.packet_burst);
  /* As socket.disconnect(true): each namespace is told (the client then stays away), then the session ends. */
  while (c->sockets) sio_socket_end(c->sockets, "rate limit", 1);
  if (c->eio) eio_socket_close(c->eio, "forced server close");
  return 0;
}

static void dispatch(sio_client *c, const sio_packet *pkt, const sio_bin *atts) {
  if (c->io->cfg.packets_per_second && !rate_admit(c)) return;
  sio_packet v3pkt;
  const char *query = "";
  size_t query_len = 0;
  if (c->v3) {
    const char *qm = memchr(pkt->nsp, '?', pkt->nsp_len);
    if (qm) {
      query = qm + 1;
      query_len = pkt->nsp_len - (size_t)(query - pkt->nsp);
      v3pkt = *pkt;
      v3pkt.nsp_len = (size_t)(qm - pkt->nsp);
      pkt = &v3pkt;
    }
  }
  if (pkt->type == SIO_CONNECT) {
    if (!c->v3) {
      on_connect_packet(c, pkt->nsp, pkt->nsp_len, pkt->data.p, pkt->data.len);
      return;
    }
    buf auth = {0};
    if (sio_query_auth_json(&auth, query, query_len) == 0)
      on_connect_packet(c, pkt->nsp, pkt->nsp_len, (const char *)auth.data, auth.len);
    buf_free(&auth);
    return;
  }
  wsio_socket *s = client_socket(c, pkt->nsp, pkt->nsp_len);
  if (!s || !s->connected) return; /* not in that namespace: dropped, as socket.io does */
  switch (pkt->type) {
    case SIO_DISCONNECT: sio_socket_end(s, "client namespace disconnect", 0); break;
    case SIO_EVENT:
    case SIO_BINARY_EVENT: sio_socket_event(s, pkt, atts); break;
    case SIO_ACK:
    case SIO_BINARY_ACK: sio_socket_ack_in(s, pkt, atts); break;
    default:
      /* CONNECT_ERROR from a client is a protocol violation. */
      eio_socket_close(c->eio, "parse error");
  }
}

/* With the msgpack parser every packet is one binary message, binaries inline. */
static void on_msgpack_message(sio_client *c, int binary, const uint8_t *data, size_t len) {
  wsio_io *io = c->io;
  sio_packet pkt;
  if (!binary || sio_mp_decode(data, len, &io->limits, &io->mp_json, &io->mp_atts, &io->mp_text) != 0 ||
      sio_packet_decode((const char *)io->mp_text.data, io->mp_text.len, &io->limits, &pkt) != 0) {
    log_debug("socket.io: closing a client that sent a malformed packet (msgpack parser)");
    io->parse_errors++;
    eio_socket_close(c->eio, "parse error");
    return;
  }
  /* Views into data and io's buffers, both kept until dispatch returns (a handler's sends use others). */
  dispatch(c, &pkt, pkt.attachments ? io->mp_atts.v : NULL);
}

static void on_eio_message(eio_socket *e, int binary, const uint8_t *data, size_t len) {
  sio_client *c = eio_socket_data(e);
  if (!c) return;
  if (c->io->parser == WSIO_PARSER_MSGPACK) {
    on_msgpack_message(c, binary, data, len);
    return;
  }
  sio_packet pkt;
  if (binary) {
    /* An attachment: only valid while a binary packet awaits them. */
    if (!c->reasm || !sio_packet_reasm_pending(c->reasm)) {
      eio_socket_close(e, "parse error");
      return;
    }
    int rc = sio_packet_reasm_add(c->reasm, data, len);
    if (rc < 0) {
      eio_socket_close(e, "parse error");
      return;
    }
    if (rc == 1) {
      sio_bin atts[SIO_PACKET_ATTACHMENTS_DEFAULT];
      sio_packet_reasm_take(c->reasm, &pkt, atts);
      dispatch(c, &pkt, atts);
      if (eio_socket_data(e) == c && c->reasm) sio_packet_reasm_reset(c->reasm, 65536);
    }
    return;
  }
  if (c->reasm && sio_packet_reasm_pending(c->reasm)) {
    eio_socket_close(e, "parse error"); /* text while attachments were due */
    return;
  }
  if (sio_packet_decode((const char *)data, len, &c->io->limits, &pkt) != 0) {
    log_debug("socket.io: closing a client that sent a malformed packet");
    c->io->parse_errors++;
    eio_socket_close(e, "parse error");
    return;
  }
  if (pkt.attachments > 0) {
    if (!c->reasm) {
      c->reasm = malloc(sizeof *c->reasm);
      if (!c->reasm) {
        eio_socket_close(e, "forced close");
        return;
      }
      sio_packet_reasm_init(c->reasm);
    }
    if (sio_packet_reasm_start(c->reasm, (const char *)data, len, &pkt) != 0) eio_socket_close(e, "parse error");
    return;
  }
  dispatch(c, &pkt, NULL);
}

static void on_eio_upgrade(eio_socket *e) {
  sio_client *c = eio_socket_data(e);
  if (c && c->io->admin) sio_admin_upgraded(c);
}

static const eio_handler sio_eio_handler = {
    .on_open = on_eio_open,
    .on_message = on_eio_message,
    .on_close = on_eio_close,
    .on_upgrade = on_eio_upgrade,
};

/* ---- timers: ack timeouts and the connect timeout ---- */

static void on_tick(uv_timer_t *t) {
  wsio_io *io = t->data;
  uint64_t now = sio_now(io);
  for (sio_ack_wait *w = io->waits, *next; w; w = next) {
    next = w->next;
    if (w->due <= now) sio_wait_fire(w, WSIO_ETIMEDOUT, NULL);
  }
  while (io->connecting && io->connecting->connect_due <= now) {
    sio_client *c = io->connecting;
    connecting_remove(io, c);
    log_debug("socket.io: closing a client that joined no namespace in time");
    eio_socket_close(c->eio, "forced close");
  }
  sio_recovery_purge(io);
  int requests = sio_cluster_tick(io, now);
  if (!io->waits && !io->connecting && !sio_recovery_pending(io) && !requests) uv_timer_stop(&io->tick);
}

void sio_tick_arm(wsio_io *io) {
  if (!uv_is_active((uv_handle_t *)&io->tick)) uv_timer_start(&io->tick, on_tick, TICK_MS, TICK_MS);
}

static void on_reap(uv_check_t *h) {
  wsio_io *io = h->data;
  while (io->dead) {
    wsio_socket *s = io->dead;
    io->dead = s->dead_next;
    sio_socket_free(s);
  }
}

/* ---- HTTP: the client bundle and the Engine.IO endpoint ---- */

static const char *const client_files[] = {
    "socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map",
    "socket.io.esm.min.js", "socket.io.esm.min.js.map", "socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map",
};

static int serve_client(wsio_io *io, http_conn *hc, const http_request *req) {
  if (!io->client_dir) return 0;
  size_t plen = strlen(io->path);
  if (req->path_len <= plen || memcmp(req->path, io->path, plen) != 0) return 0;
  const char *file = req->path + plen;
  for (size_t i = 0; i < sizeof client_files / sizeof client_files[0]; i++) {
    if (strcmp(file, client_files[i]) != 0) continue;
    /* Served as the web root would, from the package's dist folder, with its validators and 304s. */
    http_request sub = *req;
    char path[128];
    snprintf(path, sizeof path, "/%s", file);
    sub.path = path;
    sub.path_len = strlen(path);
    buf out = {0};
    int keep_alive = http_conn_keep_alive(hc, req);
    http_static_serve(io->client_dir, &sub, &out, keep_alive, 16u << 20);
    http_conn_respond(hc, out.data, out.len, keep_alive);
    buf_free(&out);
    return 1;
  }
  return 0;
}

int sio_io_http(wsio_io *io, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len) {
  if (serve_client(io, hc, req)) return 1;
  return eio_server_handle(io->eio, hc, req, rest, rest_len);
}

/* ---- the server ---- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

wsio_io *wsio_io_new(wsio_server *server, const wsio_io_config *cfg) {
  if (!server || server->io) return NULL;
  wsio_io *io = calloc(1, sizeof *io);
  if (!io) return NULL;
  io->server = server;
  io->loop = &server->net;
  if (cfg) io->cfg = *cfg;
  if (!io->cfg.connect_timeout_ms) io->cfg.connect_timeout_ms = 45000;
  if (!io->cfg.ack_timeout_ms) io->cfg.ack_timeout_ms = 30000;
  if (!io->cfg.max_rooms_per_socket) io->cfg.max_rooms_per_socket = 1000;
  if (!io->cfg.max_pending_acks) io->cfg.max_pending_acks = 1000;
  if (io->cfg.packets_per_second && !io->cfg.packet_burst) io->cfg.packet_burst = io->cfg.packets_per_second;
  io->path = strdup(io->cfg.path ? io->cfg.path : "/socket.io/");
  io->cors = dup_or_null(io->cfg.cors_origin);
  io->cookie = dup_or_null(io->cfg.cookie);
  io->client_dir = dup_or_null(io->cfg.client_dir);
  io->cfg.path = io->path;
  io->cfg.cors_origin = io->cors;
  io->cfg.cookie = io->cookie;
  io->cfg.client_dir = io->client_dir;
  /* Ack ids from 1: python-socketio's msgpack serializer leaves out an id of 0 (it tests the id for truth),
   * so its answer to an ack with id 0 would come back without one. */
  io->next_id = 1;
  io->max_dynamic = SIO_MAX_DYNAMIC_DEFAULT;
  io->limits.max_attachments = SIO_PACKET_ATTACHMENTS_DEFAULT;
  io->limits.max_depth = SIO_PACKET_DEPTH_DEFAULT;
  eio_config ec = {
      .path = io->path,
      .ping_interval_ms = io->cfg.ping_interval_ms,
      .ping_timeout_ms = io->cfg.ping_timeout_ms,
      .upgrade_timeout_ms = io->cfg.upgrade_timeout_ms,
      .max_payload = io->cfg.max_http_buffer_size,
      .transports = io->cfg.transports,
      .no_upgrades = io->cfg.no_upgrades,
      .cors_origins = io->cors,
      .cors_credentials = io->cfg.cors_credentials,
      .cookie = io->cookie,
      .deflate = (int)io->cfg.per_message_deflate,
      .ws_any_origin = io->cfg.ws_any_origin,
      .max_buffer = io->cfg.send_buffer_limit,
  };
  if (!io->path || (cfg && cfg->cors_origin && !io->cors) || (cfg && cfg->cookie && !io->cookie) ||
      (cfg && cfg->client_dir && !io->client_dir) ||
      !(io->eio = eio_server_new(io->loop, &ec, &sio_eio_handler, server->deflate)) ||
      !(io->main = nsp_new(io, "/", 1))) {
    if (io->eio) eio_server_free(io->eio);
    free(io->path);
    free(io->cors);
    free(io->cookie);
    free(io->client_dir);
    map_free(&io->nsps);
    free(io);
    return NULL;
  }
  eio_server_set_data(io->eio, io);
  if (io->cfg.recovery_ms && sio_recovery_init(io) != 0) log_warn("connection state recovery is off: no memory");
  uv_timer_init(io->loop->uv, &io->tick);
  io->tick.data = io;
  uv_unref((uv_handle_t *)&io->tick);
  uv_check_init(io->loop->uv, &io->reap);
  io->reap.data = io;
  uv_check_start(&io->reap, on_reap);
  uv_unref((uv_handle_t *)&io->reap);
  server->io = io;
  return io;
}

int wsio_io_set_cors(wsio_io *io, const char *origins, int credentials) {
  int rc = eio_server_set_cors(io->eio, origins, credentials);
  if (rc) return rc;
  char *copy = origins ? strdup(origins) : NULL;
  free(io->cors);
  io->cors = copy;
  io->cfg.cors_origin = copy;
  io->cfg.cors_credentials = credentials;
  return 0;
}

/* socket.io's msgpack parser speaks protocol v5 only: with it, v3 handshakes are refused as when off. */
static void eio3_apply(wsio_io *io) {
  eio_server_set_allow_eio3(io->eio, io->allow_eio3 && io->parser == WSIO_PARSER_DEFAULT);
}

int wsio_io_set_parser(wsio_io *io, wsio_parser parser) {
  if (!io || (parser != WSIO_PARSER_DEFAULT && parser != WSIO_PARSER_MSGPACK)) return WSIO_EINVAL;
  /* Both ends must use the same parser: switching under connected clients would cut them off. */
  size_t polling, websocket;
  eio_server_counts(io->eio, &polling, &websocket);
  if (polling + websocket && parser != io->parser) return WSIO_EEXISTS;
  io->parser = parser;
  eio3_apply(io);
  return 0;
}

int wsio_io_set_allow_eio3(wsio_io *io, int on) {
  if (!io) return WSIO_EINVAL;
  io->allow_eio3 = on != 0;
  eio3_apply(io);
  return 0;
}

void wsio_io_set_http_compression(wsio_io *io, size_t threshold) {
  if (io) eio_server_set_http_compression(io->eio, threshold);
}

void sio_io_shutdown(wsio_io *io) { eio_server_close_all(io->eio); }

void sio_io_stats(const wsio_io *io, wsio_stats *out) {
  size_t p, w;
  eio_server_counts(io->eio, &p, &w);
  out->sio_polling = p;
  out->sio_websocket = w;
  out->sio_events_in = io->events_in;
  out->sio_events_out = io->events_out;
  out->sio_volatile_dropped = io->volatile_dropped;
  out->sio_parse_errors = io->parse_errors;
  out->sio_slow_closes = eio_server_slow_closes(io->eio);
  out->sio_rate_closes = io->rate_closes;
  out->sio_rate_dropped = io->rate_dropped;
  out->sio_rooms_refused = io->rooms_refused;
  out->sio_acks_refused = io->acks_refused;
  size_t i = 0;
  map_entry *e;
  while (map_next(&io->nsps, &i, &e)) {
    const wsio_nsp *n = e->value;
    out->sio_namespaces++;
    out->sio_sockets += n->nsockets;
    out->sio_rooms += n->rooms.count;
  }
}

size_t wsio_nsp_rooms(const wsio_nsp *n, const char **names, size_t *counts, size_t cap) {
  size_t i = 0, k = 0;
  map_entry *e;
  while (map_next(&n->rooms, &i, &e)) {
    const sio_room *r = e->value;
    if (k < cap) {
      if (names) names[k] = r->name;
      if (counts) counts[k] = r->n;
    }
    k++;
  }
  return k;
}

size_t wsio_io_namespaces(const wsio_io *io, wsio_nsp **out, size_t cap) {
  size_t i = 0, k = 0;
  map_entry *e;
  while (map_next(&io->nsps, &i, &e)) {
    if (k < cap) out[k] = e->value;
    k++;
  }
  return k;
}

static void io_freed(uv_handle_t *h) {
  wsio_io *io = h->data;
  on_reap(&io->reap);
  sio_recovery_free(io);
  size_t i = 0;
  map_entry *e;
  while (map_next(&io->nsps, &i, &e)) nsp_free(e->value);
  map_free(&io->nsps);
  for (wsio_nsp *p = io->dynamic, *next; p; p = next) {
    next = p->next_dynamic;
    nsp_free(p);
  }
  buf_free(&io->scratch);
  buf_free(&io->mp_out);
  buf_free(&io->mp_json);
  buf_free(&io->mp_text);
  mpk_atts_free(&io->mp_atts);
  free(io->path);
  free(io->cors);
  free(io->cookie);
  free(io->client_dir);
  free(io);
}

static void tick_closed(uv_handle_t *h) { (void)h; }

void sio_io_free(wsio_io *io) {
  eio_server_free(io->eio);
  /* After the clients (their waits are settled), before the loop's last run (the adapter closes handles). */
  sio_cluster_shutdown(io);
  sio_admin_free(io); /* after the requests that may call it back */
  /* Close callbacks run in reverse order of uv_close: io_freed (which frees the tick too) must come last. */
  uv_close((uv_handle_t *)&io->reap, io_freed);
  uv_close((uv_handle_t *)&io->tick, tick_closed);
}
