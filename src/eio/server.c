/* eio_server: sessions, routing, heartbeats, sending and closing. Transports: polling.c, websocket.c. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eio/internal.h"
#include "http/response.h"
#include "net/iplimit.h"
#include "util/log.h"
#include "ws/frame.h"
#include "wsio.h"

#define DEFAULT_PATH "/engine.io/"

uint64_t eio_now(const eio_server *srv) { return uv_now(srv->loop->uv); }

/* ---- time-ordered queues and the one timer ---- */

static eio_link *link_of(const eio_queue *q, eio_socket *s) { return (eio_link *)((char *)s + q->link_off); }

static void on_timer(uv_timer_t *t);

static void arm(eio_server *srv, uint64_t due) {
  if (srv->timer_due && srv->timer_due <= due) return;
  uint64_t now = eio_now(srv);
  srv->timer_due = due;
  uv_timer_start(&srv->timer, on_timer, due > now ? due - now : 0, 0);
}

void eio_queue_push(eio_server *srv, eio_queue *q, eio_socket *s, uint64_t due) {
  eio_link *l = link_of(q, s);
  l->due = due;
  l->in = q;
  l->next = NULL;
  l->prev = q->tail;
  if (q->tail) link_of(q, q->tail)->next = s;
  else q->head = s;
  q->tail = s;
  arm(srv, due);
}

int eio_queue_has(const eio_queue *q, const eio_socket *s) {
  /* Membership by the recorded queue, not by neighbours: a socket in pongs has neighbours too, and
   * unlinking it through pings would corrupt both lists. */
  return link_of(q, (eio_socket *)s)->in == q;
}

void eio_queue_remove(eio_queue *q, eio_socket *s) {
  if (!eio_queue_has(q, s)) return;
  eio_link *l = link_of(q, s);
  if (l->prev) link_of(q, l->prev)->next = l->next;
  else q->head = l->next;
  if (l->next) link_of(q, l->next)->prev = l->prev;
  else q->tail = l->prev;
  l->next = l->prev = NULL;
  l->in = NULL;
}

/* A heartbeat packet on whichever transport the session is on. */
static void send_control(eio_socket *s, const eio_packet *p) {
  if (s->transport == EIO_WEBSOCKET) {
    eio_ws_send_packet(s, p);
  } else {
    eio_payload_append(&s->out, p);
    eio_mark_dirty(s);
  }
}

static void send_ping(eio_socket *s) {
  eio_packet p = {.type = EIO_PING};
  eio_queue_remove(&s->srv->pings, s);
  s->awaiting_pong = 1;
  eio_queue_push(s->srv, &s->srv->pongs, s, eio_now(s->srv) + s->srv->cfg.ping_timeout_ms);
  send_control(s, &p);
}

/* v3 reverses the heartbeat: the client pings, the server answers, and a client silent for pingInterval +
 * pingTimeout is gone (engine.io's v3 timer). Every v3 session has the same deadline offset, so its own
 * queue stays sorted. */
static void v3_deadline(eio_socket *s) {
  eio_server *srv = s->srv;
  eio_queue_remove(&srv->v3_pings, s);
  eio_queue_push(srv, &srv->v3_pings, s,
                 eio_now(srv) + (uint64_t)srv->cfg.ping_interval_ms + srv->cfg.ping_timeout_ms);
}

/* A v3 session's client pinged: its deadline moves on, and it gets its pong. */
static void v3_ping_received(eio_socket *s) {
  if (s->state != EIO_S_OPEN) return;
  v3_deadline(s);
  eio_packet pong = {.type = EIO_PONG};
  send_control(s, &pong);
}

static void on_timer(uv_timer_t *t) {
  eio_server *srv = t->data;
  srv->timer_due = 0;
  uint64_t now = eio_now(srv);
  eio_socket *s;
  while ((s = srv->pongs.head) && s->hb.due <= now) {
    eio_queue_remove(&srv->pongs, s);
    if (s->state == EIO_S_CLOSING) eio_session_end(s, NULL);
    else eio_session_end(s, "ping timeout");
  }
  while ((s = srv->pings.head) && s->hb.due <= now) send_ping(s);
  while ((s = srv->v3_pings.head) && s->hb.due <= now) eio_session_end(s, "ping timeout");
  while ((s = srv->upgrades.head) && s->up.due <= now) {
    eio_queue_remove(&srv->upgrades, s);
    log_debug("engine.io %s: upgrade timed out", s->sid);
    if (s->probe) eio_ws_release(s, 1000);
    s->probed = 0;
  }
  uint64_t next = 0;
  if (srv->pongs.head) next = srv->pongs.head->hb.due;
  if (srv->pings.head && (!next || srv->pings.head->hb.due < next)) next = srv->pings.head->hb.due;
  if (srv->upgrades.head && (!next || srv->upgrades.head->up.due < next)) next = srv->upgrades.head->up.due;
  if (srv->v3_pings.head && (!next || srv->v3_pings.head->hb.due < next)) next = srv->v3_pings.head->hb.due;
  if (next) arm(srv, next);
}

/* ---- flush and deferred frees ---- */

void eio_mark_dirty(eio_socket *s) {
  if (s->dirty) return;
  s->dirty = 1;
  s->next_dirty = s->srv->dirty;
  s->srv->dirty = s;
}

static void session_free(eio_socket *s) {
  buf_free(&s->out);
  buf_free(&s->get_headers);
  free(s);
}

/* Runs after each iteration's I/O and before the network flush, so a held GET answered here leaves in
 * the same system call as everything else queued on its connection; and again before the loop blocks, for
 * what timers queued (a ping, an ack timeout's emit), which would otherwise wait for the next wake-up. */
static void eio_flush(eio_server *srv) {
  /* Ended here, not where the send failed: that may be in the middle of a broadcast's walk. */
  while (srv->overflow) {
    eio_socket *s = srv->overflow;
    srv->overflow = s->next_overflow;
    if (s->state == EIO_S_OPEN) eio_session_end(s, "transport error");
  }
  while (srv->dirty) {
    eio_socket *s = srv->dirty;
    srv->dirty = s->next_dirty;
    s->dirty = 0;
    if (s->state != EIO_S_CLOSED) eio_polling_flush(s);
  }
  while (srv->dead) {
    eio_socket *s = srv->dead;
    srv->dead = s->next_dead;
    session_free(s);
  }
}

static void on_flush(uv_check_t *h) { eio_flush(h->data); }
static void on_flush_early(uv_prepare_t *h) { eio_flush(h->data); }

/* ---- sessions ---- */

eio_socket *eio_session_new(eio_server *srv, int transport) {
  eio_socket *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->srv = srv;
  s->transport = (uint8_t)transport;
  s->protocol = 4;
  for (int tries = 0; tries < 4; tries++) {
    if (eio_sid_generate(s->sid) != 0) break;
    if (srv->loop->nworkers > 1) eio_sid_set_worker(s->sid, srv->loop->worker);
    if (!map_get(&srv->sessions, s->sid, EIO_SID_LEN)) {
      if (map_put(&srv->sessions, s->sid, EIO_SID_LEN, s) != 0) break;
      return s;
    }
  }
  free(s);
  return NULL;
}

void eio_session_opened(eio_socket *s, const http_request *req, const char *remote) {
  eio_server *srv = s->srv;
  if (s->protocol == 3) v3_deadline(s);
  else eio_queue_push(srv, &srv->pings, s, eio_now(srv) + srv->cfg.ping_interval_ms);
  if (srv->h->on_open) srv->h->on_open(s, req, remote);
}

void eio_session_end(eio_socket *s, const char *reason) {
  if (s->state == EIO_S_CLOSED) return;
  eio_server *srv = s->srv;
  int was_open = s->state == EIO_S_OPEN;
  s->state = EIO_S_CLOSED;
  map_del(&srv->sessions, s->sid, EIO_SID_LEN);
  eio_queue_remove(&srv->pings, s);
  eio_queue_remove(&srv->pongs, s);
  eio_queue_remove(&srv->v3_pings, s);
  eio_queue_remove(&srv->upgrades, s);
  eio_polling_release(s);
  if (s->probe || s->ws) eio_ws_release(s, 1000);
  if (was_open && reason && srv->h->on_close) srv->h->on_close(s, reason);
  s->next_dead = srv->dead;
  srv->dead = s;
}

void eio_socket_close(eio_socket *s, const char *reason) {
  if (s->state != EIO_S_OPEN) return;
  eio_server *srv = s->srv;
  const char *why = reason ? reason : "forced close";
  if (s->transport == EIO_POLLING) {
    /* The client learns of the close from a CLOSE packet in its next GET: keep the session that long. What
     * is already queued goes first, in a response of its own (eio_polling_flush then queues the CLOSE), as
     * the reference server does: clients act on a payload's CLOSE before the Socket.IO packets ahead of it
     * (socket.io-client would report "transport close", and reconnect, instead of "io server disconnect"). */
    if (!s->out.len) {
      eio_packet p = {.type = EIO_CLOSE};
      eio_payload_append(&s->out, &p);
      s->close_queued = 1;
    }
    s->state = EIO_S_CLOSING;
    if (srv->h->on_close) srv->h->on_close(s, why);
    eio_queue_remove(&srv->pings, s);
    eio_queue_remove(&srv->pongs, s);
    eio_queue_remove(&srv->v3_pings, s);
    /* A probe in progress is kept: the client may have paused polling for it, and then fetches what is
     * queued only over the WebSocket once the upgrade completes (websocket.c ends the session right after,
     * as the reference server does). The closing deadline below bounds the wait. */
    eio_queue_push(srv, &srv->pongs, s, eio_now(srv) + srv->cfg.ping_timeout_ms);
    eio_mark_dirty(s);
    return;
  }
  eio_session_end(s, why);
}

/* A packet from the client, on whichever transport. */
void eio_handle_packet(eio_socket *s, const eio_packet *p) {
  eio_server *srv = s->srv;
  switch (p->type) {
    case EIO_PONG:
      if (s->protocol == 3) { /* engine.io: "invalid heartbeat direction" */
        eio_session_end(s, "transport error");
        break;
      }
      if (s->awaiting_pong) {
        s->awaiting_pong = 0;
        eio_queue_remove(&srv->pongs, s);
        eio_queue_push(srv, &srv->pings, s, eio_now(srv) + srv->cfg.ping_interval_ms);
      }
      break;
    case EIO_MESSAGE:
      srv->traffic.packets_in++;
      srv->traffic.bytes_in += p->len;
      if (srv->h->on_message) srv->h->on_message(s, p->binary, p->data, p->len);
      break;
    case EIO_CLOSE:
      /* A held GET ends with a NOOP, not a CLOSE: the client asked, and the reference server answers so. */
      if (s->transport == EIO_POLLING) eio_release_get_with_noop(s);
      eio_session_end(s, "transport close");
      break;
    case EIO_PING:
      if (s->protocol == 3) v3_ping_received(s);
      break; /* v4 clients only answer */
    case EIO_NOOP:
      break;
    default:
      eio_session_end(s, "parse error");
      break;
  }
}

/* ---- sending ---- */

const char *eio_socket_id(const eio_socket *s) { return s->sid; }
int eio_socket_transport(const eio_socket *s) { return s->transport; }
int eio_socket_protocol(const eio_socket *s) { return s->protocol; }
void eio_socket_set_data(eio_socket *s, void *data) { s->data = data; }
void *eio_socket_data(const eio_socket *s) { return s->data; }

size_t eio_socket_buffered(const eio_socket *s) {
  if (s->transport == EIO_WEBSOCKET && s->ws) return ws_conn_buffered(s->ws);
  return s->out.len;
}

int eio_socket_congested(const eio_socket *s) { return eio_socket_buffered(s) > s->srv->cfg.send_limit; }

/* A session whose client reads slower than the server writes: refuse and schedule the close. */
static int over_limit(eio_socket *s) {
  if (s->overflowed) return 1;
  size_t queued = eio_socket_buffered(s);
  if (queued <= s->srv->cfg.max_buffer) return 0;
  s->overflowed = 1;
  s->srv->slow_closes++;
  log_warn("engine.io %s: closing a client with %zu bytes unsent, over the limit of %zu (slow reader)", s->sid,
           queued, s->srv->cfg.max_buffer);
  s->next_overflow = s->srv->overflow;
  s->srv->overflow = s;
  return 1;
}

int eio_socket_send(eio_socket *s, int binary, const uint8_t *data, size_t len) {
  if (s->state != EIO_S_OPEN) return WSIO_ECLOSED;
  if (over_limit(s)) return WSIO_EBACKPRESSURE;
  eio_packet p = {.type = EIO_MESSAGE, .binary = binary, .data = data, .len = len};
  s->srv->traffic.packets_out++;
  s->srv->traffic.bytes_out += len;
  if (s->transport == EIO_WEBSOCKET) return eio_ws_send_packet(s, &p);
  int rc = eio_payload_append(&s->out, &p);
  if (rc == 0) eio_mark_dirty(s);
  return rc;
}

static void msg_release(net_shared *sh) {
  eio_msg *m = (eio_msg *)((char *)sh - offsetof(eio_msg, sh));
  buf_free(&m->ws);
  buf_free(&m->ws3);
  buf_free(&m->polling);
  free(m);
}

eio_msg *eio_msg_new(void) {
  eio_msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->refs = 1;
  m->sh.refs = 1;
  m->sh.release = msg_release;
  return m;
}

int eio_msg_add(eio_msg *m, int binary, const uint8_t *data, size_t len) {
  eio_packet p = {.type = EIO_MESSAGE, .binary = binary, .data = data, .len = len};
  int rc = eio_payload_append(&m->polling, &p);
  if (rc) return rc;
  if (binary) m->binary = 1;
  m->npackets++;
  m->nbytes += len;
  /* The WebSocket form: one frame per packet, unmasked, uncompressed, so every receiver can take it. */
  uint8_t hdr[WS_FRAME_HEADER_MAX];
  size_t plen = binary ? len : len + 1;
  size_t hl = ws_frame_header_encode(hdr, 1, 0, binary ? WS_OP_BINARY : WS_OP_TEXT, plen, NULL);
  if ((rc = buf_append(&m->ws, hdr, hl)) != 0) return rc;
  if (!binary && (rc = buf_append(&m->ws, "4", 1)) != 0) return rc;
  return buf_append(&m->ws, data, len);
}

void eio_msg_unref(eio_msg *m) {
  if (!m || --m->refs > 0) return;
  net_shared_unref(&m->sh); /* freed now, or when the last connection has written the frames */
}

/* The v3 WebSocket frames of a message with a binary packet, from its polling form (which holds every
 * packet). Built whole before any connection holds them, so references never see them move. */
static int msg_build_ws3(eio_msg *m, buf *bin) {
  eio_payload_iter it;
  eio_packet p;
  int rc;
  eio_payload_iter_init(&it, m->polling.data, m->polling.len, 0, 0);
  while ((rc = eio_payload_next(&it, bin, &p)) == 1) {
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hl = ws_frame_header_encode(hdr, 1, 0, p.binary ? WS_OP_BINARY : WS_OP_TEXT, p.len + 1, NULL);
    uint8_t lead = p.binary ? EIO_MESSAGE : (uint8_t)('0' + p.type);
    if (buf_append(&m->ws3, hdr, hl) || buf_append(&m->ws3, &lead, 1) || buf_append(&m->ws3, p.data, p.len)) {
      rc = WSIO_ENOMEM;
      break;
    }
  }
  if (rc < 0) buf_free(&m->ws3);
  return rc < 0 ? rc : 0;
}

int eio_socket_send_msg(eio_socket *s, const eio_msg *m) {
  if (s->state != EIO_S_OPEN) return WSIO_ECLOSED;
  if (over_limit(s)) return WSIO_EBACKPRESSURE;
  s->srv->traffic.packets_out += m->npackets;
  s->srv->traffic.bytes_out += m->nbytes;
  if (s->transport == EIO_WEBSOCKET) {
    if (!s->ws) return WSIO_ECLOSED;
    /* By reference: the refcount is the message's bookkeeping, not its contents, hence the casts. */
    const buf *frames = &m->ws;
    if (s->protocol == 3 && m->binary) {
      if (!m->ws3.len) {
        int rc = msg_build_ws3((eio_msg *)m, &s->srv->bin_out);
        buf_reset(&s->srv->bin_out, 65536);
        if (rc) return rc;
      }
      frames = &m->ws3;
    }
    return ws_conn_send_shared(s->ws, frames->data, frames->len, (net_shared *)&m->sh);
  }
  int rc = 0;
  if (s->out.len) rc = buf_append(&s->out, "\x1e", 1);
  if (rc == 0) rc = buf_append(&s->out, m->polling.data, m->polling.len);
  if (rc == 0) eio_mark_dirty(s);
  return rc;
}

/* ---- the server ---- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

eio_server *eio_server_new(net_loop *l, const eio_config *cfg, const eio_handler *h, ws_deflate_shared *deflate) {
  eio_server *srv = calloc(1, sizeof *srv);
  if (!srv) return NULL;
  srv->loop = l;
  srv->h = h;
  if (cfg) srv->cfg = *cfg;
  if (!srv->cfg.ping_interval_ms) srv->cfg.ping_interval_ms = 25000;
  if (!srv->cfg.ping_timeout_ms) srv->cfg.ping_timeout_ms = 20000;
  if (!srv->cfg.upgrade_timeout_ms) srv->cfg.upgrade_timeout_ms = 10000;
  if (!srv->cfg.max_payload) srv->cfg.max_payload = 1000000;
  if (!srv->cfg.transports) srv->cfg.transports = EIO_POLLING | EIO_WEBSOCKET;
  if (!srv->cfg.send_limit) srv->cfg.send_limit = 1u << 20;
  if (!srv->cfg.max_buffer) srv->cfg.max_buffer = 16u << 20;
  srv->gz_threshold = EIO_HTTP_COMPRESSION_DEFAULT;
  srv->path = strdup(srv->cfg.path ? srv->cfg.path : DEFAULT_PATH);
  srv->cors_origins = dup_or_null(srv->cfg.cors_origins);
  srv->cookie = dup_or_null(srv->cfg.cookie);
  if (!srv->path || (srv->cfg.cors_origins && !srv->cors_origins) || (srv->cfg.cookie && !srv->cookie)) {
    free(srv->path);
    free(srv->cors_origins);
    free(srv->cookie);
    free(srv);
    return NULL;
  }
  srv->cfg.path = srv->path;
  srv->cfg.cors_origins = srv->cors_origins;
  srv->cfg.cookie = srv->cookie;
  srv->path_len = strlen(srv->path);
  /* "/socket.io/" also answers "/socket.io" (clients built with a trailing-slash-free path). */
  if (srv->path_len > 1 && srv->path[srv->path_len - 1] == '/') srv->path_len--;
  srv->pings.link_off = offsetof(eio_socket, hb);
  srv->pongs.link_off = offsetof(eio_socket, hb);
  srv->upgrades.link_off = offsetof(eio_socket, up);
  srv->v3_pings.link_off = offsetof(eio_socket, hb);
  srv->ws_limits.max_message = srv->cfg.max_payload;
  srv->ws_params.limits = &srv->ws_limits;
  srv->ws_params.deflate = deflate;
  srv->ws_params.ping_interval_s = 0; /* Engine.IO runs its own heartbeat */
  srv->ws_params.send_limit = srv->cfg.send_limit;
  srv->ws_hs.deflate_mode = srv->cfg.deflate;
  /* Browsers send Origin on WebSocket handshakes too: the CORS list guards against cross-site hijacking. */
  if (srv->cors_origins && strcmp(srv->cors_origins, "*") != 0 && !srv->cfg.ws_any_origin)
    srv->ws_hs.origins = srv->cors_origins;
  uv_timer_init(l->uv, &srv->timer);
  srv->timer.data = srv;
  uv_unref((uv_handle_t *)&srv->timer);
  uv_check_init(l->uv, &srv->flush);
  srv->flush.data = srv;
  uv_check_start(&srv->flush, on_flush);
  uv_unref((uv_handle_t *)&srv->flush);
  uv_prepare_init(l->uv, &srv->flush_early);
  srv->flush_early.data = srv;
  uv_prepare_start(&srv->flush_early, on_flush_early);
  uv_unref((uv_handle_t *)&srv->flush_early);
  return srv;
}

void eio_server_close_all(eio_server *srv) {
  size_t i = 0;
  map_entry *e;
  /* Ending a session deletes it from the map: collect first. */
  eio_socket *list = NULL;
  while (map_next(&srv->sessions, &i, &e)) {
    eio_socket *s = e->value;
    s->next_dirty = list; /* borrowed as a scratch link; the flush list is rebuilt below */
    list = s;
  }
  srv->dirty = NULL;
  while (list) {
    eio_socket *s = list;
    list = s->next_dirty;
    s->dirty = 0;
    if (s->state == EIO_S_OPEN && s->transport == EIO_POLLING) {
      eio_socket_close(s, "server shutting down");
      /* No second poll at shutdown: what is queued and the CLOSE go in one response. */
      if (!s->close_queued) {
        eio_packet p = {.type = EIO_CLOSE};
        eio_payload_append(&s->out, &p);
        s->close_queued = 1;
      }
      eio_polling_flush(s);
    }
    eio_session_end(s, "server shutting down");
  }
}

static void free_server(uv_handle_t *h) {
  eio_server *srv = h->data;
  while (srv->dead) {
    eio_socket *s = srv->dead;
    srv->dead = s->next_dead;
    session_free(s);
  }
  buf_free(&srv->scratch);
  buf_free(&srv->bin);
  buf_free(&srv->bin_out);
  eio_polling_free(srv);
  map_free(&srv->sessions);
  free(srv->path);
  free(srv->cors_origins);
  free(srv->cookie);
  free(srv);
}

static void timer_closed(uv_handle_t *h) { (void)h; }

void eio_server_free(eio_server *srv) {
  if (!srv) return;
  eio_server_close_all(srv);
  /* Close callbacks run in reverse order of uv_close: the one that frees srv is closed first, so it runs
   * after the others are done with their handles (which live inside srv). */
  uv_close((uv_handle_t *)&srv->flush, free_server);
  uv_close((uv_handle_t *)&srv->flush_early, timer_closed);
  uv_close((uv_handle_t *)&srv->timer, timer_closed);
}

eio_socket *eio_server_find(eio_server *srv, const char *sid) {
  size_t n = strlen(sid);
  return n == EIO_SID_LEN ? map_get(&srv->sessions, sid, n) : NULL;
}

size_t eio_server_count(const eio_server *srv) { return srv->sessions.count; }
void eio_server_set_data(eio_server *srv, void *data) { srv->data = data; }

int eio_server_set_cors(eio_server *srv, const char *origins, int credentials) {
  char *copy = NULL;
  if (origins && !(copy = strdup(origins))) return WSIO_ENOMEM;
  free(srv->cors_origins);
  srv->cors_origins = copy;
  srv->cfg.cors_origins = copy;
  srv->cfg.cors_credentials = credentials;
  srv->ws_hs.origins = copy && strcmp(copy, "*") != 0 && !srv->cfg.ws_any_origin ? copy : NULL;
  return 0;
}

void eio_server_set_http_compression(eio_server *srv, size_t threshold) { srv->gz_threshold = threshold; }

void eio_server_set_allow_eio3(eio_server *srv, int on) { srv->allow_eio3 = on != 0; }

void eio_server_on_error(eio_server *srv, eio_error_fn fn, void *ud) {
  srv->on_error = fn;
  srv->on_error_ud = ud;
}

void eio_report_error(eio_server *srv, http_conn *hc, const http_request *req, int code, const char *message) {
  if (!srv->on_error) return;
  char remote[80] = "";
  net_conn_peer(http_conn_net(hc), remote, sizeof remote);
  srv->on_error(srv->on_error_ud, req, remote, code, message ? message : eio_error_message(code));
}

void eio_server_on_headers(eio_server *srv, eio_headers_fn fn, void *ud) {
  srv->on_headers = fn;
  srv->headers_ud = ud;
}

void eio_headers_fill(eio_server *srv, http_conn *hc, const http_request *req, const char *remote, int initial,
                      buf *extra) {
  if (!srv->on_headers) return;
  char peer[80] = "";
  if (!remote) {
    net_conn_peer(http_conn_net(hc), peer, sizeof peer);
    remote = peer;
  }
  srv->on_headers(srv->headers_ud, req, remote, initial, extra);
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

int eio_header_add(buf *extra, const char *name, const char *value) {
  if (!name || !value) return WSIO_EINVAL;
  size_t nl = strlen(name), vl = strlen(value);
  if (!nl || nl > 256 || vl > 8192) return WSIO_EINVAL;
  for (size_t i = 0; i < nl; i++)
    if (!is_tchar((unsigned char)name[i])) return WSIO_EINVAL;
  if (strpbrk(value, "\r\n")) return WSIO_EINVAL;
  /* What frames the response is the server's: a second Content-Length or an Upgrade would desync it. */
  static const char *const own[] = {"content-length", "transfer-encoding", "connection", "upgrade"};
  for (size_t i = 0; i < sizeof own / sizeof *own; i++)
    if (!strcasecmp(name, own[i])) return WSIO_EINVAL;
  if (!strncasecmp(name, "sec-websocket-", 14)) return WSIO_EINVAL;
  if (extra->len + nl + vl + 4 > EIO_HEADERS_MAX) return WSIO_ELIMIT;
  return http_response_header(extra, name, value);
}

void eio_server_set_allow(eio_server *srv, eio_allow_fn fn, void *ud) {
  srv->allow = fn;
  srv->allow_ud = ud;
}

/* The user's allowRequest said no: 403 with its message, as engine.io answers (for upgrades too). */
static int open_disallowed(eio_server *srv, http_conn *hc, const http_request *req) {
  char remote[80] = "";
  net_conn_peer(http_conn_net(hc), remote, sizeof remote);
  const char *message = NULL;
  if (srv->allow(srv->allow_ud, req, remote, &message)) return 0;
  eio_reply_error_msg(srv, hc, req, EIO_ERR_FORBIDDEN, message);
  return 1;
}

void eio_server_counts(const eio_server *srv, size_t *polling, size_t *websocket) {
  size_t i = 0, p = 0, w = 0;
  map_entry *e;
  while (map_next(&srv->sessions, &i, &e)) {
    const eio_socket *s = e->value;
    if (s->state != EIO_S_OPEN) continue;
    if (s->transport == EIO_WEBSOCKET) w++;
    else p++;
  }
  *polling = p;
  *websocket = w;
}

void eio_server_traffic(const eio_server *srv, eio_traffic *out) { *out = srv->traffic; }

uint64_t eio_server_slow_closes(const eio_server *srv) { return srv->slow_closes; }

void *eio_socket_server_data(const eio_socket *s) { return s->srv->data; }

/* A session open over the per-address handshake rate (net/iplimit.h): 429 with Retry-After, CORS headers
 * included so a browser's client sees the status. Returns 1 when it answered. */
static int open_refused(eio_server *srv, http_conn *hc, const http_request *req) {
  uint32_t wait = net_conn_handshake_wait(http_conn_net(hc));
  if (!wait) return 0;
  buf out = {0};
  http_response_too_many_start(&out, wait);
  eio_cors_headers(srv, req, &out);
  http_response_too_many_end(&out);
  http_conn_respond(hc, out.data, out.len, 0);
  buf_free(&out);
  return 1;
}

int eio_server_handle(eio_server *srv, http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len) {
  if (req->path_len < srv->path_len || memcmp(req->path, srv->path, srv->path_len) != 0) return 0;
  if (req->path_len != srv->path_len && !(req->path_len == srv->path_len + 1 && req->path[srv->path_len] == '/'))
    return 0;
  eio_query q;
  if (eio_query_parse(req->query, req->query_len, &q) != 0) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    return 1;
  }
  /* engine.io reads any EIO but "4" as 3 (an absent one included): with v3 allowed, so do we. */
  if (q.eio != 4 && !srv->allow_eio3) {
    eio_reply_error(srv, hc, req, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
    return 1;
  }
  if (q.has_sid && srv->loop->handoff) {
    /* Workers: a session of another worker's is handed to it, socket and request together. An id that
     * cannot be a session's (its shape, or a worker the group does not have) is answered here: "Session ID
     * unknown", with no move. Whether the owner knows the id is only found out there. */
    int owner = eio_sid_worker(q.sid);
    if (owner >= 0 && owner < srv->loop->nworkers && owner != srv->loop->worker &&
        http_conn_handoff(hc, req, rest, rest_len, (unsigned)owner) == 0)
      return 1;
  }
  int want = q.transport == EIO_TRANSPORT_POLLING ? EIO_POLLING
             : q.transport == EIO_TRANSPORT_WEBSOCKET ? EIO_WEBSOCKET : 0;
  if (!want || !(srv->cfg.transports & want)) {
    eio_reply_error(srv, hc, req, EIO_ERR_UNKNOWN_TRANSPORT);
    return 1;
  }
  if (!q.has_sid && req->method == 1 /* GET: an open */ &&
      (open_refused(srv, hc, req) || (srv->allow && open_disallowed(srv, hc, req))))
    return 1;
  if (want == EIO_WEBSOCKET) eio_ws_request(srv, hc, req, &q, rest, rest_len);
  else eio_polling_request(srv, hc, req, &q);
  return 1;
}
