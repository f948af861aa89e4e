/*
 * The streams Redis adapter: @socket.io/redis-streams-adapter 0.3's protocol (createAdapter), carrying
 * socket.io-adapter 2.5's ClusterAdapter messages.
 *
 * Broadcasts without acks, socketsJoin, socketsLeave and disconnectSockets are stream entries (XADD with
 * MAXLEN ~ maxLen; redis_stream.h has the fields) in the namespace's stream; every node reads every stream
 * with blocking XREAD (redis_stream_read.c) and ignores its own entries by uid. Requests and answers are
 * the sharded protocol's messages (redis_messages.c), always msgpack, on K#N# and K#N#uid#, over classic
 * pub/sub or, with sharded set, sharded pub/sub; requests count their peers with PUBSUB NUMSUB of K#N#.
 *
 * Connection state recovery (redis_streams_session.c) is kept in Redis for the whole cluster: a broadcast's
 * offset is its entry's id, which every node's clients get with it, so a client that comes back to any
 * node sends an offset that node can read the stream from. For that, this node's own broadcasts are
 * delivered to its clients once XADD has answered with the id (broadcast_offset), in the order they were
 * made; while Redis is away they go out at once, without an offset.
 *
 * While Redis is away, entries and sessions wait in a queue (bounded; past it they are dropped and
 * counted) and go out in order once a connection is back: a peer reading on from its last entry then
 * gets them, as it gets what Node servers' clients queued meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_streams.h"
#include "sio/internal.h"
#include "util/log.h"

/* ---- sending, and the queue while Redis is away ---- */

static void plain_done(void *ud, redisReply *r) {
  rds *x = ud;
  if (r && r->type != REDIS_REPLY_ERROR) return;
  x->a->st.dropped++; /* refused, or in flight when the connection broke: it may not have been kept */
  if (r) log_debug("redis: a command was refused: %.*s", (int)(r->len < 160 ? r->len : 160), r->str);
}

typedef struct rds_cmd {
  struct rds_cmd *next;
  int argc;
  size_t bytes;
  const char *argv[RDS_ARGS_MAX];
  size_t lens[RDS_ARGS_MAX];
  char data[];
} rds_cmd;

static int queue_push(rds *x, int argc, const char **argv, const size_t *lens) {
  size_t bytes = 0;
  if (argc > RDS_ARGS_MAX) return WSIO_EINVAL;
  for (int i = 0; i < argc; i++) bytes += lens[i];
  if (x->nqueued >= x->queue_max || x->qbytes + bytes > RDS_QUEUE_BYTES) return WSIO_ELIMIT;
  rds_cmd *c = malloc(sizeof *c + bytes);
  if (!c) return WSIO_ENOMEM;
  c->next = NULL;
  c->argc = argc;
  c->bytes = bytes;
  char *at = c->data;
  for (int i = 0; i < argc; i++) {
    memcpy(at, argv[i], lens[i]);
    c->argv[i] = at;
    c->lens[i] = lens[i];
    at += lens[i];
  }
  if (x->qtail) x->qtail->next = c;
  else x->qhead = c;
  x->qtail = c;
  x->nqueued++;
  x->qbytes += bytes;
  return 0;
}

static void queue_pop(rds *x) {
  rds_cmd *c = x->qhead;
  x->qhead = c->next;
  if (!x->qhead) x->qtail = NULL;
  x->nqueued--;
  x->qbytes -= c->bytes;
  free(c);
}

/* What waited goes out, in order, for as long as Redis takes it. */
void rds_queue_flush(rds *x) {
  rda *a = x->a;
  size_t sent = 0;
  x->busy++;
  while (x->qhead && !a->dead) {
    rds_cmd *c = x->qhead;
    int rc = rlink_command(a->link, c->argv[1], c->lens[1], plain_done, x, c->argc, c->argv, c->lens);
    if (rc == WSIO_ECLOSED) break;
    if (rc < 0) a->st.dropped++;
    else a->st.published++, sent++;
    queue_pop(x);
  }
  x->busy--;
  if (sent) log_info("redis: %zu stream entries and sessions that waited for Redis were sent", sent);
}

int rds_send(rds *x, int argc, const char **argv, const size_t *lens, redis_reply_fn cb, void *ud) {
  rda *a = x->a;
  if (!x->qhead) {
    int rc = rlink_command(a->link, argv[1], lens[1], cb ? cb : plain_done, cb ? ud : x, argc, argv, lens);
    if (rc == 0) a->st.published++;
    if (rc != WSIO_ECLOSED) {
      if (rc < 0) a->st.dropped++;
      return rc;
    }
  }
  /* Redis away, or what waits for it goes first: in the queue, in order. */
  if (queue_push(x, argc, argv, lens) < 0) {
    a->st.dropped++;
    return WSIO_ECLOSED;
  }
  if (x->nqueued > 1 && rlink_up(a->link)) rds_queue_flush(x); /* back, and not told yet */
  return 1;
}

/* XADD <stream> MAXLEN ~ <maxLen> * uid <uid> nsp <nsp> type <type> data <data>, data the JSON in json
 * (with atts). Returns as rds_send. */
static int xadd(rds *x, const char *nsp, int type, const buf *json, const sio_bin *atts, size_t natts,
                redis_reply_fn cb, void *ud) {
  rda *a = x->a;
  int rc = rsx_stream_name(&x->key, x->stream_name, x->nstreams, nsp);
  if (rc == 0) rc = rsx_data_encode((const char *)json->data, json->len, atts, natts, &x->tmp, &x->data);
  if (rc < 0) return rc;
  char t[16];
  snprintf(t, sizeof t, "%d", type);
  const char *argv[14] = {"XADD", (const char *)x->key.data, "MAXLEN", "~", x->max_len_text, "*", "uid", a->uid,
                          "nsp", nsp, "type", t, "data", (const char *)x->data.data};
  size_t lens[14];
  for (int i = 0; i < 13; i++) lens[i] = strlen(argv[i]);
  lens[13] = x->data.len;
  rc = rds_send(x, 14, argv, lens, cb, ud);
  buf_reset(&x->data, 1 << 20);
  buf_reset(&x->tmp, 1 << 20);
  return rc;
}

/* ---- this node's broadcasts and sockets operations ---- */

/* {"packet":..,"opts":{"rooms":..,"except":..,"flags":{..}}} into a->out. */
static int broadcast_data(rda *a, const sio_targets *t, const char *pkt, size_t len, size_t natts) {
  buf *j = &a->out;
  j->len = 0;
  int rc = buf_append(j, "{\"packet\":", 10);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 0);
  if (rc == 0) rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, 0);
  if (rc == 0) rc = buf_append(j, "}}", 2);
  return rc;
}

static int streams_broadcast(sio_adapter *base, const sio_targets *t, const char *pkt, size_t len,
                             const sio_bin *atts, size_t natts) {
  rda *a = (rda *)base;
  rds *x = a->xs;
  x->busy++;
  int rc = broadcast_data(a, t, pkt, len, natts);
  if (rc == 0) rc = xadd(x, t->nsp, RDA_MT_BROADCAST, &a->out, atts, natts, NULL, NULL);
  x->busy--;
  return rc < 0 ? rc : 0;
}

/* A local part waiting for its XADD's answer: a copy of everything sio_cluster_broadcast_at needs. */
typedef struct rds_pending {
  struct rds_pending *next;
  rds *x;
  int ready;                 /* XADD answered, or will not */
  int orphan;                /* the adapter went while XADD was in flight: its callback frees it */
  size_t bytes;
  char offset[RSX_ID_MAX];   /* the entry's id; "" for none */
  sio_targets t;
  const char *pkt;
  size_t len;
  sio_bin *atts;
  size_t natts;
  char data[];
} rds_pending;

static char *put(char **at, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = memcpy(*at, s, n);
  *at += n;
  return p;
}

static rds_pending *pending_new(rds *x, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                                size_t natts) {
  size_t n = t->nrooms + t->nexcept;
  size_t bytes = strlen(t->nsp) + 1 + len + 1;
  for (size_t i = 0; i < t->nrooms; i++) bytes += strlen(t->rooms[i]) + 1;
  for (size_t i = 0; i < t->nexcept; i++) bytes += strlen(t->except[i]) + 1;
  for (size_t i = 0; i < natts; i++) bytes += atts[i].len;
  size_t head = (n ? n : 1) * sizeof(char *) + natts * sizeof(sio_bin);
  if (x->npending >= RDS_PENDING_MAX || x->pbytes + bytes + head > RDS_PENDING_BYTES) return NULL;
  rds_pending *p = calloc(1, sizeof *p + head + bytes);
  if (!p) return NULL;
  p->x = x;
  p->bytes = head + bytes;
  const char **names = (const char **)(void *)p->data;
  p->atts = natts ? (sio_bin *)(void *)(p->data + (n ? n : 1) * sizeof(char *)) : NULL;
  char *at = p->data + head;
  p->t.nsp = put(&at, t->nsp);
  for (size_t i = 0; i < t->nrooms; i++) names[i] = put(&at, t->rooms[i]);
  for (size_t i = 0; i < t->nexcept; i++) names[t->nrooms + i] = put(&at, t->except[i]);
  memcpy(at, pkt, len);
  at[len] = 0;
  p->pkt = at;
  at += len + 1;
  for (size_t i = 0; i < natts; i++) {
    memcpy(at, atts[i].p, atts[i].len);
    p->atts[i] = (sio_bin){(const uint8_t *)at, atts[i].len};
    at += atts[i].len;
  }
  p->t.rooms = names;
  p->t.nrooms = t->nrooms;
  p->t.except = names + t->nrooms;
  p->t.nexcept = t->nexcept;
  p->t.flags = t->flags;
  p->len = len;
  p->natts = natts;
  if (x->ptail) x->ptail->next = p;
  else x->phead = p;
  x->ptail = p;
  x->npending++;
  x->pbytes += p->bytes;
  return p;
}

static void pending_unlink_head(rds *x) {
  rds_pending *p = x->phead;
  x->phead = p->next;
  if (!x->phead) x->ptail = NULL;
  x->npending--;
  x->pbytes -= p->bytes;
}

void rds_drain(rds *x) {
  rda *a = x->a;
  if (a->dead) return;
  x->busy++; /* what the local parts set off comes after them */
  while (x->phead && x->phead->ready) {
    rds_pending *p = x->phead;
    pending_unlink_head(x);
    sio_cluster_broadcast_at(a->base.io, &p->t, p->pkt, p->len, p->atts, p->natts, p->offset[0] ? p->offset : NULL);
    free(p);
  }
  x->busy--;
  rds_finish_restores(x);
}

static void drain_fired(uv_timer_t *t) { rds_drain(t->data); }

/* Later, from the loop: called back inside one of the adapter's own functions (the connection failed
 * while sending), it would run under sio's feet. */
void rds_drain_soon(rds *x) {
  if (x->busy) uv_timer_start(&x->drain, drain_fired, 0, 0);
  else rds_drain(x);
}

static void pending_done(void *ud, redisReply *r) {
  rds_pending *p = ud;
  if (p->orphan) {
    free(p);
    return;
  }
  rds *x = p->x;
  p->ready = 1;
  if (r && r->type == REDIS_REPLY_STRING && r->len < RSX_ID_MAX && rsx_offset_valid(r->str, r->len)) {
    memcpy(p->offset, r->str, r->len);
    p->offset[r->len] = 0;
  } else {
    plain_done(x, r);
  }
  rds_drain_soon(x);
}

static int streams_broadcast_offset(sio_adapter *base, const sio_targets *t, const char *pkt, size_t len,
                                    const sio_bin *atts, size_t natts) {
  rda *a = (rda *)base;
  rds *x = a->xs;
  int rc = broadcast_data(a, t, pkt, len, natts);
  if (rc < 0) return rc;
  x->busy++;
  rds_pending *p = pending_new(x, t, pkt, len, atts, natts);
  /* Sent (0) or queued (1): this node's local part follows the XADD's answer; anything else, now. */
  rc = xadd(x, t->nsp, RDA_MT_BROADCAST, &a->out, atts, natts, p ? pending_done : NULL, p);
  if (p && rc != 0) p->ready = 1; /* queued or dropped: this node's clients get it without an offset */
  int ret = 0;
  if (!p) {
    ret = rc < 0 ? rc : 1; /* too much waits already: the local part at once */
  } else if (p->ready && x->phead == p) {
    pending_unlink_head(x); /* nothing before it: sio does the local part now */
    free(p);
    ret = 1;
  } else if (p->ready) {
    uv_timer_start(&x->drain, drain_fired, 0, 0);
  }
  x->busy--;
  return ret;
}

static int sockets_op(rda *a, int type, const sio_targets *t, const char *room, int close) {
  rds *x = a->xs;
  buf *j = &a->out;
  j->len = 0;
  int rc = buf_append(j, "{\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = buf_append(j, "}", 1);
  if (rc == 0) rc = rda_sockets_op_write(j, room, type == RDA_MT_DISCONNECT, close);
  if (rc == 0) rc = buf_append(j, "}", 1);
  x->busy++;
  if (rc == 0) rc = xadd(x, t->nsp, type, j, NULL, 0, NULL, NULL);
  x->busy--;
  return rc < 0 ? rc : 0;
}

static int streams_join(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, RDA_MT_JOIN, t, room, 0);
}
static int streams_leave(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, RDA_MT_LEAVE, t, room, 0);
}
static int streams_disconnect(sio_adapter *b, const sio_targets *t, int close) {
  return sockets_op((rda *)b, RDA_MT_DISCONNECT, t, NULL, close);
}

/* The requests of redis_messages.c, marked as the adapter's own calls (see rds_drain_soon). */
static int streams_broadcast_ack(sio_adapter *base, uint64_t rid, const sio_targets *t, const char *pkt,
                                 size_t len, const sio_bin *atts, size_t natts, uint32_t timeout_ms) {
  rds *x = ((rda *)base)->xs;
  x->busy++;
  int rc = rda_msg_broadcast_ack(base, rid, t, pkt, len, atts, natts, timeout_ms);
  x->busy--;
  return rc;
}

static int streams_fetch(sio_adapter *base, uint64_t rid, const sio_targets *t, uint32_t timeout_ms) {
  rds *x = ((rda *)base)->xs;
  x->busy++;
  int rc = rda_msg_fetch(base, rid, t, timeout_ms);
  x->busy--;
  return rc;
}

static int streams_sse(sio_adapter *base, uint64_t rid, const char *nsp, const char *data, size_t len,
                       uint32_t timeout_ms) {
  rds *x = ((rda *)base)->xs;
  x->busy++;
  int rc = rda_msg_sse(base, rid, nsp, data, len, timeout_ms);
  x->busy--;
  return rc;
}

static int streams_server_count(sio_adapter *base, uint64_t rid) {
  rds *x = ((rda *)base)->xs;
  x->busy++;
  int rc = rda_msg_server_count(base, rid);
  x->busy--;
  return rc;
}

static void streams_nsp_created(sio_adapter *base, const char *nsp) {
  if (rda_msg_nsp_subscribe((rda *)base, nsp) < 0) log_warn("redis: cannot subscribe for namespace %s", nsp);
}

/* ---- peers' entries ---- */

static int copy_field(char *out, size_t cap, const char *p, size_t n) {
  if (n >= cap || memchr(p, 0, n)) return -1;
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}

static void on_entry(void *ud, const redisReply *r) {
  rds *x = ud;
  rda *a = x->a;
  if (a->dead) return;
  rsx_entry e;
  char nsp[256], uid[64], id[RSX_ID_MAX];
  sio_json_span data = {"{}", 2, SIO_JSON_OBJECT};
  if (rsx_entry_read(r, &e) < 0 || !e.nsp_len || copy_field(nsp, sizeof nsp, e.nsp, e.nsp_len) < 0 ||
      nsp[0] != '/' || copy_field(id, sizeof id, e.id, e.id_len) < 0)
    goto bad;
  if (e.uid && e.uid_len == strlen(a->uid) && memcmp(e.uid, a->uid, e.uid_len) == 0) return; /* our own */
  if (e.uid && copy_field(uid, sizeof uid, e.uid, e.uid_len) < 0) goto bad;
  a->in_atts.n = 0;
  if (e.data && (rsx_data_decode(e.data, e.data_len, &a->in_json, &x->bin, &a->in_atts, &data) < 0 ||
                 data.kind != SIO_JSON_OBJECT))
    goto bad;
  rda_msg_dispatch(a, nsp, e.uid ? uid : NULL, e.type ? rsx_type(e.type, e.type_len) : -1, &data, id);
  buf_reset(&a->in_json, 1 << 20);
  buf_reset(&x->bin, 1 << 20);
  return;
bad:
  a->st.malformed++;
  log_debug("redis: a malformed stream entry was ignored");
}

void rds_feed_entry(rda *a, const redisReply *entry) { on_entry(a->xs, entry); }

/* ---- lifetime ---- */

static void streams_on_up(rda *a) {
  rds *x = a->xs;
  if (!x) return;
  rds_queue_flush(x);
  for (unsigned i = 0; i < x->nreaders; i++) rsr_tick(x->readers[i]);
}

static void streams_tick(rda *a) {
  rds *x = a->xs;
  if (!x) return;
  if (x->qhead && rlink_up(a->link)) rds_queue_flush(x);
  for (unsigned i = 0; i < x->nreaders; i++) rsr_tick(x->readers[i]);
}

static void drain_closed(uv_handle_t *h) {
  rds *x = h->data;
  rda *a = x->a;
  buf_free(&x->key);
  buf_free(&x->data);
  buf_free(&x->tmp);
  buf_free(&x->bin);
  free(x->readers);
  free(x->stream_name);
  free(x->session_prefix);
  free(x);
  rda_unref(a);
}

static void streams_stop(rda *a) {
  rds *x = a->xs;
  if (!x) return;
  for (unsigned i = 0; i < x->nreaders; i++) rsr_free(x->readers[i]);
  x->nreaders = 0;
  /* A local part whose XADD is in flight is freed by its callback, which rlink_free runs next. */
  while (x->phead) {
    rds_pending *p = x->phead;
    pending_unlink_head(x);
    if (p->ready) free(p);
    else p->orphan = 1;
  }
  while (x->qhead) queue_pop(x);
  rds_sessions_stop(x);
  a->nctx++; /* the timer's close: x goes after it */
  uv_close((uv_handle_t *)&x->drain, drain_closed);
}

static int streams_start(rda *a, const wsio_redis_config *cfg) {
  rds *x = calloc(1, sizeof *x);
  if (!x) return WSIO_ENOMEM;
  x->a = a;
  uv_timer_init(a->loop, &x->drain);
  uv_unref((uv_handle_t *)&x->drain);
  x->drain.data = x;
  a->xs = x; /* from here on streams_stop frees it */
  x->stream_name = strdup(cfg->stream_name && *cfg->stream_name ? cfg->stream_name : "socket.io");
  x->session_prefix = strdup(cfg->session_key_prefix ? cfg->session_key_prefix : "sio:session:");
  x->nstreams = cfg->stream_count ? cfg->stream_count : 1;
  x->max_len = cfg->max_len ? cfg->max_len : 10000;
  x->read_count = cfg->read_count ? cfg->read_count : 100;
  x->block_ms = cfg->block_ms ? cfg->block_ms : 5000;
  /* More waiting than the stream keeps would be trimmed away as it goes out. */
  x->queue_max = x->max_len < RDS_QUEUE_MAX ? x->max_len : RDS_QUEUE_MAX;
  snprintf(x->max_len_text, sizeof x->max_len_text, "%u", x->max_len);
  if (!x->stream_name || !x->session_prefix || !(x->readers = calloc(x->nstreams, sizeof *x->readers)))
    return WSIO_ENOMEM;
  /* The package reads streams name-0 .. name-(count-1); a namespace whose hash is negative writes to a
   * stream no one reads (name--1 ...): the same here, so that both kinds of nodes agree. */
  buf name = {0};
  for (unsigned i = 0; i < x->nstreams; i++) {
    char tail[24];
    name.len = 0;
    snprintf(tail, sizeof tail, "-%u", i);
    int rc = buf_append(&name, x->stream_name, strlen(x->stream_name));
    if (rc == 0 && x->nstreams > 1) rc = buf_append(&name, tail, strlen(tail));
    if (rc == 0) rc = buf_append(&name, "", 1);
    rsr_config rc_ = {.link = a->link, .url = &a->url, .stream = (const char *)name.data, .count = x->read_count,
                      .block_ms = x->block_ms, .connect_timeout_ms = cfg->connect_timeout_ms,
                      .backoff_max_ms = cfg->reconnect_max_ms};
    if (rc < 0 || !(x->readers[i] = rsr_new(a->loop, &rc_, on_entry, x))) {
      buf_free(&name);
      return WSIO_ENOMEM;
    }
    x->nreaders = i + 1;
  }
  buf_free(&name);
  return 0;
}

void rds_stats(const rda *a, wsio_redis_stats *out) {
  const rds *x = a->xs;
  if (!x) return;
  out->streams = 1;
  out->queued = x->nqueued;
  out->sessions_saved = x->saved;
  out->sessions_restored = x->restored;
  for (unsigned i = 0; i < x->nreaders; i++) {
    rsr_stats st;
    rsr_stats_get(x->readers[i], &st);
    out->stream_entries += st.entries;
    out->connects += st.connects;
    out->disconnects += st.failures;
    if (!st.up) out->connected = 0;
  }
}

static const sio_adapter_vt streams_vt = {
    .broadcast = streams_broadcast,
    .broadcast_ack = streams_broadcast_ack,
    .sockets_join = streams_join,
    .sockets_leave = streams_leave,
    .disconnect_sockets = streams_disconnect,
    .fetch_sockets = streams_fetch,
    .server_side_emit = streams_sse,
    .server_count = streams_server_count,
    .free = rda_free,
    .nsp_created = streams_nsp_created,
    .restore = rds_restore,
    .broadcast_offset = streams_broadcast_offset,
    .persist = rds_persist,
};

const rda_proto rda_streams = {.vt = &streams_vt, .nsp_subscribe = rda_msg_nsp_subscribe, .on_push = rda_msg_push,
                               .start = streams_start, .stop = streams_stop, .on_up = streams_on_up,
                               .tick = streams_tick};
