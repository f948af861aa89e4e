/* wsio_io_instrument: the Socket.IO Admin UI's namespace — what instrument() reports and the actions it
 * takes. Facts of the protocol from @socket.io/admin-ui 0.5.1 (dist/index.js, dist/typed-events.d.ts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sio/admin.h"
#include "sio/internal.h"
#include "util/log.h"

#define STATS_INTERVAL_DEFAULT 2000 /* instrument()'s setInterval */
/* bcrypt checks on libuv's thread pool at once (it has 4 threads, shared with DNS and files); past it a
 * login is refused rather than queued, so a flood of logins costs neither memory nor the pool. */
#define MAX_JOBS 4
#define PASSWORD_MAX 1024           /* bcrypt reads 72 bytes; a longer one is refused without hashing */

struct sio_admin {
  wsio_io *io;
  wsio_nsp *nsp;
  int dev, readonly, auth;
  char *username, *hash;
  sio_admin_realm realm;
  char *server_id;
  char hostname[256];
  uint32_t interval_ms;
  uv_timer_t timer;
  eio_traffic last;          /* the engine's counters when the last stats went out */
  sio_admin_events events;
  buf out;                   /* the packet being built */
  sio_socket_view view;
  int busy;                  /* a report is going out: one started by it is dropped, not nested */
  unsigned jobs;             /* logins being checked on the thread pool */
  uint64_t refused;          /* logins refused for that */
  int closing, timer_closed; /* the io is gone; freed once the timer closed and no job is left */
};

/* ---- packets out ---- */

static int64_t now_ms(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0) return 0;
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Somebody may get it: a dashboard here, or (with an adapter) on another server. */
static int listening(const sio_admin *a) { return a->nsp->nsockets || a->io->adapter; }

static int str(buf *b, const char *s) { return sio_json_write_string_lossy(b, s, strlen(s)); }

static int lit(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

/* Starts an EVENT of the admin namespace in a->out: 2/admin,["name" (a BINARY_EVENT with natts). */
static int begin(sio_admin *a, const char *name, unsigned natts) {
  a->out.len = 0;
  sio_packet hdr = {.type = natts ? SIO_BINARY_EVENT : SIO_EVENT, .attachments = natts, .nsp = a->nsp->name,
                    .nsp_len = a->nsp->name_len, .id = -1};
  int rc = sio_packet_encode(&a->out, &hdr);
  if (rc == 0) rc = lit(&a->out, "[");
  return rc ? rc : str(&a->out, name);
}

static int add_date(sio_admin *a) {
  char d[SIO_ADMIN_DATE_LEN];
  size_t n = sio_admin_date(d, now_ms());
  int rc = buf_append(&a->out, ",", 1);
  return rc ? rc : buf_append(&a->out, d, n);
}

/* Sends a->out (closed with "]") to every dashboard of every server, but not to `except` (a dashboard that
 * is leaving, as socket.io has taken it out of its rooms by then). The packet goes through io->scratch, the
 * broadcast's place, whose content (a packet the caller is sending) is put back after. */
static void broadcast(sio_admin *a, const sio_bin *atts, size_t natts, const wsio_socket *except) {
  if (buf_append(&a->out, "]", 1) != 0) return;
  wsio_io *io = a->io;
  wsio_op op = wsio_nsp_op(a->nsp);
  if (except && except->nsp == a->nsp) wsio_op_except(&op, except->id);
  buf saved = io->scratch;
  io->scratch = a->out;
  a->busy = 1;
  sio_op_emit_scratch(&op, atts, natts);
  a->busy = 0;
  a->out = io->scratch;
  io->scratch = saved;
  buf_reset(&a->out, 65536); /* a large report (all_sockets, a big event) does not stay allocated */
}

/* Sends a->out (closed with "]") to one dashboard. */
static void send_to(sio_admin *a, wsio_socket *s) {
  if (buf_append(&a->out, "]", 1) != 0 || !s->connected) return;
  if (sio_client_send(s->client, (const char *)a->out.data, a->out.len, NULL, 0) == 0) a->io->events_out++;
  buf_reset(&a->out, 65536);
}

/* ---- a socket ---- */

static void client_id(const wsio_socket *s, char out[13]) {
  out[0] = 0;
  if (s->client->eio) snprintf(out, 13, "%.12s", eio_socket_id(s->client->eio));
}

static int serialize(sio_admin *a, buf *out, wsio_socket *s) {
  sio_socket_info info;
  int rc = sio_socket_view_build(&a->view, s, &info);
  if (rc) return rc;
  char cid[13];
  client_id(s, cid);
  sio_admin_socket in = {.id = s->id, .client_id = cid, .transport = wsio_socket_transport(s), .nsp = s->nsp->name,
                         .data_json = s->data_json, .handshake_json = info.handshake_json, .rooms = info.rooms,
                         .nrooms = info.nrooms};
  return sio_admin_socket_json(out, &in);
}

int sio_admin_peer_data(const wsio_socket *s, buf *out) {
  char cid[13];
  client_id(s, cid);
  int rc = lit(out, "{\"_admin\":{\"clientId\":");
  if (rc == 0) rc = str(out, cid);
  if (rc == 0) rc = lit(out, ",\"transport\":");
  if (rc == 0) rc = str(out, wsio_socket_transport(s));
  if (rc == 0) rc = lit(out, "}");
  sio_json_span d;
  /* The application's members follow, as instrument() copies them after _admin. */
  if (rc == 0 && s->data_json && sio_json_validate(s->data_json, strlen(s->data_json), SIO_JSON_DEPTH_MAX, &d) == 0 &&
      d.kind == SIO_JSON_OBJECT && d.len > 2) {
    rc = lit(out, ",");
    if (rc == 0) rc = buf_append(out, d.p + 1, d.len - 2);
  }
  return rc ? rc : lit(out, "}");
}

/* ---- hooks ---- */

#define ADMIN_OF(io) ((io)->admin)

void sio_admin_raw_open(wsio_io *io) { sio_admin_events_push(&ADMIN_OF(io)->events, SIO_ADMIN_RAW_CONNECTION, NULL, 1, now_ms()); }

void sio_admin_raw_close(wsio_io *io, const char *reason) {
  /* socket.disconnect(true) closes the engine with engine.io's own reason. */
  if (reason && strcmp(reason, "forced server close") == 0) reason = "forced close";
  sio_admin_events_push(&ADMIN_OF(io)->events, SIO_ADMIN_RAW_DISCONNECTION, reason, 1, now_ms());
}

/* Development mode, nobody reporting already, and somebody to tell. */
static sio_admin *verbose(wsio_io *io) {
  sio_admin *a = ADMIN_OF(io);
  return a && a->dev && !a->busy && listening(a) ? a : NULL;
}

void sio_admin_connected(wsio_socket *s) {
  sio_admin *a = verbose(s->nsp->io);
  if (!a || begin(a, "socket_connected", 0) != 0 || lit(&a->out, ",") != 0) return;
  if (serialize(a, &a->out, s) == 0 && add_date(a) == 0) broadcast(a, NULL, 0, NULL);
}

void sio_admin_disconnected(wsio_socket *s, const char *reason) {
  sio_admin *a = verbose(s->nsp->io);
  if (!a || begin(a, "socket_disconnected", 0) != 0) return;
  int rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, s->nsp->name);
  if (rc == 0) rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, s->id);
  if (rc == 0) rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, reason ? reason : "");
  if (rc == 0 && add_date(a) == 0) broadcast(a, NULL, 0, s);
}

void sio_admin_room(wsio_socket *s, int join, const char *room) {
  sio_admin *a = verbose(s->nsp->io);
  if (!a || begin(a, join ? "room_joined" : "room_left", 0) != 0) return;
  int rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, s->nsp->name);
  if (rc == 0) rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, room);
  if (rc == 0) rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, s->id);
  if (rc == 0 && add_date(a) == 0) broadcast(a, NULL, 0, s->connected ? NULL : s);
}

/* event_received / event_sent: [nsp, id, [event, ...args], date], binaries sent along as they came. */
static void event_report(sio_admin *a, const char *name, wsio_socket *s, const char *arr, size_t arr_len,
                         const sio_bin *atts, size_t natts) {
  if (begin(a, name, (unsigned)natts) != 0) return;
  int rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, s->nsp->name);
  if (rc == 0) rc = lit(&a->out, ",");
  if (rc == 0) rc = str(&a->out, s->id);
  if (rc == 0) rc = lit(&a->out, ",");
  if (rc == 0) rc = buf_append(&a->out, arr, arr_len);
  if (rc == 0 && add_date(a) == 0) broadcast(a, atts, natts, NULL);
}

void sio_admin_event_in(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts) {
  sio_admin *a = verbose(s->nsp->io);
  if (!a || s->nsp == a->nsp || pkt->data.kind != SIO_JSON_ARRAY) return;
  event_report(a, "event_received", s, pkt->data.p, pkt->data.len, atts, atts ? pkt->attachments : 0);
}

/* Where the JSON of a text packet we encoded starts: past the type, attachments, namespace and id. */
static size_t data_offset(const char *p, size_t len) {
  size_t i = 1;
  if (len && (p[0] == '5' || p[0] == '6')) {
    while (i < len && p[i] != '-') i++;
    i++;
  }
  if (i < len && p[i] == '/') {
    while (i < len && p[i] != ',') i++;
    i++;
  }
  while (i < len && p[i] >= '0' && p[i] <= '9') i++;
  return i < len ? i : len;
}

void sio_admin_event_out(wsio_socket *s, const char *text, size_t len, const sio_bin *atts, size_t natts) {
  sio_admin *a = verbose(s->nsp->io);
  if (!a || s->nsp == a->nsp) return;
  size_t off = data_offset(text, len);
  if (off < len && text[off] == '[') event_report(a, "event_sent", s, text + off, len - off, atts, natts);
}

/* socket_updated: {id, nsp, <field>: <value JSON>} for one connected socket. */
static void socket_updated(sio_admin *a, wsio_socket *s, const char *field, const char *value_json) {
  if (!s->connected || begin(a, "socket_updated", 0) != 0) return;
  int rc = lit(&a->out, ",{\"id\":");
  if (rc == 0) rc = str(&a->out, s->id);
  if (rc == 0) rc = lit(&a->out, ",\"nsp\":");
  if (rc == 0) rc = str(&a->out, s->nsp->name);
  if (rc == 0) rc = lit(&a->out, field);
  if (rc == 0) rc = lit(&a->out, value_json);
  if (rc == 0 && lit(&a->out, "}") == 0) broadcast(a, NULL, 0, NULL);
}

void sio_admin_data_changed(wsio_socket *s) {
  sio_admin *a = verbose(s->nsp->io);
  const char *d = s->data_json;
  if (a) socket_updated(a, s, ",\"data\":", d && d[0] == '{' ? d : "{}");
}

void sio_admin_upgraded(sio_client *c) {
  for (wsio_socket *s = c->sockets; s; s = s->client_next) {
    sio_admin *a = verbose(c->io);
    char t[16]; /* "polling" or "websocket": nothing to escape */
    snprintf(t, sizeof t, "\"%s\"", wsio_socket_transport(s));
    if (a) socket_updated(a, s, ",\"transport\":", t);
  }
}

/* ---- server_stats ---- */

/* process.uptime(): seconds since the process started (Linux's /proc), else since the first call. */
static double process_uptime(void) {
  static uint64_t first;
  if (!first) first = uv_hrtime();
  double up;
  FILE *f = fopen("/proc/self/stat", "r");
  char line[1024];
  if (f && fgets(line, sizeof line, f) && uv_uptime(&up) == 0) {
    fclose(f);
    const char *p = strrchr(line, ')');
    unsigned long long start = 0;
    /* Fields after the command: state is the 3rd, starttime the 22nd. */
    for (int field = 2; p && *p && field < 22; p++)
      if (*p == ' ') field++;
    if (p && sscanf(p, "%llu", &start) == 1) {
      double v = up - (double)start / (double)sysconf(_SC_CLK_TCK);
      if (v >= 0) return v;
    }
  } else if (f) {
    fclose(f);
  }
  return (double)(uv_hrtime() - first) / 1e9;
}

static void stats_emit(sio_admin *a) {
  wsio_io *io = a->io;
  int64_t now = now_ms();
  eio_traffic t;
  eio_server_traffic(io->eio, &t);
  sio_admin_events_push(&a->events, SIO_ADMIN_PACKETS_IN, NULL, t.packets_in - a->last.packets_in, now);
  sio_admin_events_push(&a->events, SIO_ADMIN_BYTES_IN, NULL, t.bytes_in - a->last.bytes_in, now);
  sio_admin_events_push(&a->events, SIO_ADMIN_PACKETS_OUT, NULL, t.packets_out - a->last.packets_out, now);
  sio_admin_events_push(&a->events, SIO_ADMIN_BYTES_OUT, NULL, t.bytes_out - a->last.bytes_out, now);
  a->last = t;
  if (!listening(a) || a->busy || begin(a, "server_stats", 0) != 0) {
    a->events.n = 0; /* getValuesAndClear runs every interval, listened to or not */
    return;
  }
  size_t polling, websocket;
  eio_server_counts(io->eio, &polling, &websocket);
  char line[256];
  int rc = lit(&a->out, ",{\"serverId\":");
  if (rc == 0) rc = str(&a->out, a->server_id);
  if (rc == 0) rc = lit(&a->out, ",\"hostname\":");
  if (rc == 0) rc = str(&a->out, a->hostname);
  snprintf(line, sizeof line, ",\"pid\":%ld,\"uptime\":%.3f,\"clientsCount\":%zu,\"pollingClientsCount\":%zu,",
           (long)getpid(), process_uptime(), polling + websocket, polling);
  if (rc == 0) rc = lit(&a->out, line);
  if (rc == 0) rc = lit(&a->out, "\"aggregatedEvents\":");
  if (rc == 0) rc = sio_admin_events_json(&a->events, &a->out);
  a->events.n = 0;
  if (rc == 0) rc = lit(&a->out, ",\"namespaces\":[");
  size_t i = 0, k = 0;
  map_entry *e;
  while (rc == 0 && map_next(&io->nsps, &i, &e)) {
    const wsio_nsp *n = e->value;
    rc = lit(&a->out, k++ ? ",{\"name\":" : "{\"name\":");
    if (rc == 0) rc = str(&a->out, n->name);
    snprintf(line, sizeof line, ",\"socketsCount\":%zu}", n->nsockets);
    if (rc == 0) rc = lit(&a->out, line);
  }
  if (rc == 0 && lit(&a->out, "]}") == 0) broadcast(a, NULL, 0, NULL);
}

static void on_timer(uv_timer_t *t) { stats_emit(t->data); }

/* ---- a dashboard connects ---- */

static const char *const features_rw = "\"EMIT\",\"JOIN\",\"LEAVE\",\"DISCONNECT\",\"MJOIN\",\"MLEAVE\",\"MDISCONNECT\",";

/* all_sockets: every namespace's fetchSockets (every server's), gathered, then sent to the dashboard that
 * asked if it is still there. */
typedef struct fetch_req {
  sio_admin *a;
  char id[EIO_SID_LEN + 1];
  size_t pending;            /* namespaces not answered, plus one while they are being asked */
  size_t count;
  buf list;
} fetch_req;

static void fetch_done(fetch_req *r) {
  if (--r->pending) return;
  sio_admin *a = r->a;
  wsio_socket *s = map_get(&a->nsp->by_id, r->id, EIO_SID_LEN);
  if (s && !a->busy && begin(a, "all_sockets", 0) == 0 && lit(&a->out, ",[") == 0 &&
      buf_append(&a->out, r->list.data, r->list.len) == 0 && lit(&a->out, "]") == 0)
    send_to(a, s);
  buf_free(&r->list);
  free(r);
}

static void on_fetched(int err, const wsio_remote_socket *v, size_t n, void *ud) {
  (void)err; /* a server that did not answer in time is left out, as Promise.all would have failed */
  fetch_req *r = ud;
  buf one = {0};
  for (size_t i = 0; i < n; i++) {
    sio_admin_socket in = {.id = v[i].id, .nsp = v[i].nsp, .data_json = v[i].data_json,
                           .handshake_json = v[i].handshake_json, .rooms = v[i].rooms, .nrooms = v[i].nrooms};
    char cid[13];
    if (v[i].local) {
      client_id(v[i].local, cid);
      in.client_id = cid;
      in.transport = wsio_socket_transport(v[i].local);
      in.data_json = v[i].local->data_json;
    }
    one.len = 0;
    if (sio_admin_socket_json(&one, &in) != 0) continue;
    if ((r->count && buf_append(&r->list, ",", 1) != 0) || buf_append(&r->list, one.data, one.len) != 0) break;
    r->count++;
  }
  buf_free(&one);
  fetch_done(r);
}

static void all_sockets(sio_admin *a, wsio_socket *s) {
  fetch_req *r = calloc(1, sizeof *r);
  if (!r) return;
  r->a = a;
  memcpy(r->id, s->id, sizeof r->id);
  r->pending = 1;
  size_t i = 0;
  map_entry *e;
  while (map_next(&a->io->nsps, &i, &e)) {
    wsio_op op = wsio_nsp_op(e->value);
    r->pending++;
    if (wsio_op_fetch_sockets_all(&op, on_fetched, r) != 0) r->pending--;
  }
  fetch_done(r);
}

static void on_admin_connection(wsio_socket *s, void *ud) {
  sio_admin *a = ud;
  if (a->busy || begin(a, "config", 0) != 0) return;
  int rc = lit(&a->out, ",{\"supportedFeatures\":[");
  if (rc == 0 && !a->readonly) rc = lit(&a->out, features_rw);
  if (rc == 0) rc = lit(&a->out, a->dev ? "\"AGGREGATED_EVENTS\",\"ALL_EVENTS\"]}" : "\"AGGREGATED_EVENTS\"]}");
  if (rc == 0) send_to(a, s);
  if (a->dev) all_sockets(a, s);
}

/* ---- logins ---- */

typedef struct login_job {
  uv_work_t req;
  sio_admin *a;
  wsio_next *next;
  char *hash;
  int ok;
  char password[];
} login_job;

static void admin_release(sio_admin *a) {
  if (!a->closing || a->jobs || !a->timer_closed) return;
  free(a->username);
  free(a->hash);
  free(a->server_id);
  free(a);
}

static void login_work(uv_work_t *req) {
  login_job *j = req->data;
  j->ok = sio_admin_password_check(j->password, j->hash);
}

static void login_done(uv_work_t *req, int status) {
  login_job *j = req->data;
  sio_admin *a = j->a;
  a->jobs--;
  wsio_socket *s = j->next->s;
  int ok = status == 0 && j->ok;
  if (ok && s && !a->closing) {
    /* As instrument() does, the session id goes out before the CONNECT (from the middleware). */
    char id[SIO_ADMIN_SESSION_LEN + 1];
    if (sio_admin_session_new(&a->realm, id, (uint64_t)now_ms()) == 0 && !a->busy && begin(a, "session", 0) == 0 &&
        lit(&a->out, ",") == 0 && str(&a->out, id) == 0 && lit(&a->out, "]") == 0)
      sio_client_send(s->client, (const char *)a->out.data, a->out.len, NULL, 0);
  }
  if (ok) wsio_next_ok(j->next);
  else wsio_next_error(j->next, "invalid credentials", NULL);
  OPENSSL_cleanse(j->password, strlen(j->password));
  free(j);
  admin_release(a);
}

static void auth_middleware(wsio_socket *s, wsio_next *next, void *ud) {
  sio_admin *a = ud;
  sio_json_span auth, v, u;
  if (sio_json_validate(s->auth, strlen(s->auth), SIO_JSON_DEPTH_MAX, &auth) != 0 || auth.kind != SIO_JSON_OBJECT) {
    wsio_next_error(next, "invalid credentials", NULL);
    return;
  }
  if (sio_json_object_find(&auth, "sessionId", 9, &v) && v.kind == SIO_JSON_STRING) {
    char id[SIO_ADMIN_SESSION_LEN + 1];
    ssize_t n = sio_json_string_decode(&v, id, sizeof id);
    if (n > 0 && sio_admin_session_valid(&a->realm, id, (size_t)n, (uint64_t)now_ms())) {
      wsio_next_ok(next);
      return;
    }
  }
  if (sio_json_object_find(&auth, "username", 8, &u) &&
      sio_json_string_equals(&u, a->username, strlen(a->username)) &&
      sio_json_object_find(&auth, "password", 8, &v) && v.kind == SIO_JSON_STRING && v.len <= PASSWORD_MAX + 2) {
    if (a->jobs >= MAX_JOBS) {
      if (a->refused++ % 100 == 0) /* one line per hundred: a flood does not flood the log */
        log_warn("socket.io admin: %u logins being checked already: refused one from %s (%llu so far)", a->jobs,
                 s->client->hs.address, (unsigned long long)a->refused);
    } else {
      login_job *j = calloc(1, sizeof *j + v.len);
      ssize_t n = j ? sio_json_string_decode(&v, j->password, v.len) : -1;
      /* A NUL would cut the password short for crypt: such a password is refused. */
      if (n >= 0 && !memchr(j->password, 0, (size_t)n)) {
        j->password[n] = 0;
        j->a = a;
        j->next = next;
        j->hash = a->hash;
        j->req.data = j;
        if (uv_queue_work(a->io->loop->uv, &j->req, login_work, login_done) == 0) {
          a->jobs++;
          return;
        }
      }
      free(j);
    }
  }
  wsio_next_error(next, "invalid credentials", NULL);
}

/* ---- actions ---- */

static void on_action(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)s;
  (void)ack;
  sio_admin *a = ud;
  if (!a->readonly && !a->closing) sio_admin_action(a->io, args); /* readonly: instrument() registers none */
}

/* ---- instrument ---- */

static void timer_closed(uv_handle_t *h) {
  sio_admin *a = h->data;
  a->timer_closed = 1;
  admin_release(a);
}

void sio_admin_free(wsio_io *io) {
  sio_admin *a = io->admin;
  if (!a) return;
  io->admin = NULL;
  a->closing = 1;
  buf_free(&a->out);
  sio_socket_view_free(&a->view);
  uv_close((uv_handle_t *)&a->timer, timer_closed);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int wsio_io_instrument(wsio_io *io, const wsio_admin_config *cfg) {
  wsio_admin_config c = {0};
  if (cfg) c = *cfg;
  if (!io) return WSIO_EINVAL;
  if (io->admin) return WSIO_EEXISTS;
  const char *name = c.nsp ? c.nsp : "/admin";
  if (name[0] != '/' || (c.mode != WSIO_ADMIN_DEVELOPMENT && c.mode != WSIO_ADMIN_PRODUCTION)) return WSIO_EINVAL;
  if (c.username && !sio_admin_hash_valid(c.password_hash)) {
    log_error("socket.io admin: the password hash must be a bcrypt hash ($2a$, $2b$ or $2y$)");
    return WSIO_EINVAL;
  }
  wsio_nsp *n = wsio_io_of(io, name);
  if (!n) return WSIO_ENOMEM;
  if (c.username && n->nmw >= SIO_MAX_MIDDLEWARES) return WSIO_ELIMIT;
  sio_admin *a = calloc(1, sizeof *a);
  if (!a) return WSIO_ENOMEM;
  a->io = io;
  a->nsp = n;
  a->dev = c.mode == WSIO_ADMIN_DEVELOPMENT;
  a->readonly = c.readonly != 0;
  a->auth = c.username != NULL;
  a->interval_ms = c.stats_interval_ms ? c.stats_interval_ms : STATS_INTERVAL_DEFAULT;
  size_t hl = sizeof a->hostname;
  if (uv_os_gethostname(a->hostname, &hl) != 0) snprintf(a->hostname, sizeof a->hostname, "localhost");
  /* One server per worker, as Node's cluster workers each are: the dashboard keeps servers by serverId and
   * adds up their clients, so workers sharing one id would overwrite each other's counts. */
  char id[512];
  const net_loop *l = io->loop;
  if (c.server_id && l->nworkers > 1) snprintf(id, sizeof id, "%s#%u", c.server_id, (unsigned)l->worker);
  else if (c.server_id) snprintf(id, sizeof id, "%s", c.server_id);
  else if (l->nworkers > 1) snprintf(id, sizeof id, "%s#%ld#%u", a->hostname, (long)getpid(), (unsigned)l->worker);
  else snprintf(id, sizeof id, "%s", a->hostname);
  a->server_id = strdup(id);
  a->username = dup_or_null(c.username);
  a->hash = dup_or_null(c.password_hash);
  if (!a->server_id || (c.username && (!a->username || !a->hash)) || wsio_nsp_on_any(n, on_action, a) != 0) {
    free(a->server_id);
    free(a->username);
    free(a->hash);
    free(a);
    return WSIO_ENOMEM;
  }
  if (a->auth) {
    sio_admin_realm_of(&a->realm, a->username, a->hash);
    wsio_nsp_use(n, auth_middleware, a); /* room checked above */
  } else {
    log_warn("socket.io admin: authentication is off: anyone reaching %s administers this server", name);
  }
  wsio_nsp_on_connection(n, on_admin_connection, a);
  eio_server_traffic(io->eio, &a->last);
  uv_timer_init(io->loop->uv, &a->timer);
  a->timer.data = a;
  uv_timer_start(&a->timer, on_timer, a->interval_ms, a->interval_ms);
  uv_unref((uv_handle_t *)&a->timer); /* as instrument()'s interval.unref(): it keeps no loop alive */
  io->admin = a;
  return 0;
}
