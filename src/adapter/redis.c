/*
 * The classic Redis adapter: @socket.io/redis-adapter 8.x createAdapter's protocol on plain pub/sub.
 *
 * Channels, for key K and namespace N:
 *   K#N#         broadcasts to the whole namespace (or several rooms), K#N#room# to exactly one room;
 *                every node PSUBSCRIBEs K#N#*. A message is msgpack [uid, packet, {rooms, except, flags}].
 *   K-request#N# requests, JSON {uid, type, requestId, ...}, except broadcasts with acks (type 7,
 *                msgpack: they carry a packet). Its subscriber count (PUBSUB NUMSUB) is the server count.
 *   K-response#N# and K-response#N#uid#: answers, JSON, or msgpack for client acks (type 9). Answers here
 *                go to the requester's own channel.
 * Request types: 0 SOCKETS, 1 ALL_ROOMS, 2 REMOTE_JOIN, 3 REMOTE_LEAVE, 4 REMOTE_DISCONNECT, 5 REMOTE_FETCH,
 * 6 SERVER_SIDE_EMIT, 7 BROADCAST (with acks), 8 BROADCAST_CLIENT_COUNT, 9 BROADCAST_ACK.
 * @socket.io/redis-emitter writes the same broadcasts and requests with uid "emitter" (or none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_internal.h"
#include "sio/internal.h"
#include "util/log.h"

enum {
  RQ_SOCKETS = 0, RQ_ALL_ROOMS, RQ_JOIN, RQ_LEAVE, RQ_DISCONNECT, RQ_FETCH, RQ_SSE, RQ_BROADCAST,
  RQ_CLIENT_COUNT, RQ_ACK
};

/* Channels (rda_channel): K#N#, K-request#N#, K-response#N# (+ uid#) */

static int classic_nsp_subscribe(rda *a, const char *nsp) {
  buf c = {0};
  /* The pattern escapes glob characters of the key and namespace, so it matches only their channels. */
  int rc = rda_channel(&c, a, "#", nsp, NULL);
  buf pat = {0};
  for (size_t i = 0; rc == 0 && i < c.len; i++) {
    if (strchr("*?[]\\", c.data[i])) rc = buf_append(&pat, "\\", 1);
    if (rc == 0) rc = buf_append(&pat, &c.data[i], 1);
  }
  if (rc == 0) rc = buf_append(&pat, "*", 1);
  if (rc == 0) rc = rda_subscribe(a, (const char *)pat.data, pat.len, RDA_SUB_PATTERN);
  if (rc == 0 && (rc = rda_channel(&c, a, "-request#", nsp, NULL)) == 0)
    rc = rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_CHANNEL);
  if (rc == 0 && (rc = rda_channel(&c, a, "-response#", nsp, NULL)) == 0)
    rc = rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_CHANNEL);
  if (rc == 0 && (rc = rda_channel(&c, a, "-response#", nsp, a->uid)) == 0)
    rc = rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_CHANNEL);
  buf_free(&c);
  buf_free(&pat);
  return rc;
}

static void classic_nsp_created(sio_adapter *base, const char *nsp) {
  rda *a = (rda *)base;
  if (classic_nsp_subscribe(a, nsp) < 0) log_warn("redis: cannot subscribe for namespace %s", nsp);
}

/* ---- this node's operations ---- */

static int json_head(buf *b, const rda *a, int type, const char *reqid) {
  b->len = 0;
  char tmp[160];
  int k = snprintf(tmp, sizeof tmp, "{\"uid\":\"%s\",\"type\":%d", a->uid, type);
  if (reqid) k += snprintf(tmp + k, sizeof tmp - (size_t)k, ",\"requestId\":\"%s\"", reqid);
  return buf_append(b, tmp, (size_t)k);
}

static int classic_broadcast(sio_adapter *base, const sio_targets *t, const char *pkt, size_t len,
                             const sio_bin *atts, size_t natts) {
  rda *a = (rda *)base;
  buf *j = &a->out;
  j->len = 0;
  int rc = buf_append(j, "[\"", 2);
  if (rc == 0) rc = buf_append(j, a->uid, strlen(a->uid));
  if (rc == 0) rc = buf_append(j, "\",", 2);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 0);
  if (rc == 0) rc = buf_append(j, ",{", 2);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, 0);
  if (rc == 0) rc = buf_append(j, "}]", 2);
  if (rc == 0) rc = rda_to_msgpack(j, atts, natts, &a->out2);
  if (rc == 0) rc = rda_channel(&a->tmp, a, "#", t->nsp, t->nrooms == 1 ? t->rooms[0] : NULL);
  if (rc < 0) return rc;
  return rda_publish(a, (const char *)a->tmp.data, a->tmp.len, a->out2.data, a->out2.len);
}

static int opts_write(buf *j, const sio_targets *t) {
  int rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = buf_append(j, "}", 1);
  return rc;
}

static int classic_broadcast_ack(sio_adapter *base, uint64_t rid, const sio_targets *t, const char *pkt,
                                 size_t len, const sio_bin *atts, size_t natts, uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = json_head(j, a, RQ_BROADCAST, id);
  if (rc == 0) rc = buf_append(j, ",\"packet\":", 10);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 1);
  if (rc == 0) rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, timeout_ms);
  if (rc == 0) rc = buf_append(j, "}}", 2);
  if (rc == 0) rc = rda_to_msgpack(j, atts, natts, &a->out2);
  if (rc == 0) rc = rda_channel(&a->tmp, a, "-request#", t->nsp, NULL);
  if (rc < 0) return rc;
  return rda_request(a, rid, RDA_REQ_ACK, id, timeout_ms, "NUMSUB", (const char *)a->tmp.data,
                     (const char *)a->tmp.data, a->out2.data, a->out2.len);
}

static int publish_request(rda *a, const char *nsp) {
  int rc = rda_channel(&a->tmp, a, "-request#", nsp, NULL);
  if (rc < 0) return rc;
  return rda_publish(a, (const char *)a->tmp.data, a->tmp.len, a->out.data, a->out.len);
}

static int sockets_op(rda *a, int type, const sio_targets *t, const char *room, int close) {
  buf *j = &a->out;
  int rc = json_head(j, a, type, NULL);
  if (rc == 0) rc = opts_write(j, t);
  if (rc == 0) rc = rda_sockets_op_write(j, room, type == RQ_DISCONNECT, close);
  if (rc == 0) rc = buf_append(j, "}", 1);
  return rc < 0 ? rc : publish_request(a, t->nsp);
}

static int classic_join(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, RQ_JOIN, t, room, 0);
}
static int classic_leave(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, RQ_LEAVE, t, room, 0);
}
static int classic_disconnect(sio_adapter *b, const sio_targets *t, int close) {
  return sockets_op((rda *)b, RQ_DISCONNECT, t, NULL, close);
}

static int classic_fetch(sio_adapter *base, uint64_t rid, const sio_targets *t, uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = json_head(j, a, RQ_FETCH, id);
  if (rc == 0) rc = opts_write(j, t);
  if (rc == 0) rc = buf_append(j, "}", 1);
  if (rc == 0) rc = rda_channel(&a->tmp, a, "-request#", t->nsp, NULL);
  if (rc < 0) return rc;
  return rda_request(a, rid, RDA_REQ_FETCH, id, timeout_ms, "NUMSUB", (const char *)a->tmp.data,
                     (const char *)a->tmp.data, a->out.data, a->out.len);
}

static int classic_sse(sio_adapter *base, uint64_t rid, const char *nsp, const char *data, size_t len,
                       uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  if (rid) rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = json_head(j, a, RQ_SSE, rid ? id : NULL);
  if (rc == 0) rc = buf_append(j, ",\"data\":", 8);
  if (rc == 0) rc = buf_append(j, data, len);
  if (rc == 0) rc = buf_append(j, "}", 1);
  if (rc < 0) return rc;
  if (!rid) return publish_request(a, nsp);
  if ((rc = rda_channel(&a->tmp, a, "-request#", nsp, NULL)) < 0) return rc;
  return rda_request(a, rid, RDA_REQ_SSE, id, timeout_ms, "NUMSUB", (const char *)a->tmp.data,
                     (const char *)a->tmp.data, a->out.data, a->out.len);
}

typedef struct count_ctx {
  rda *a;
  uint64_t rid;
  size_t len;
  char channel[];
} count_ctx;

static void count_done(void *ud, long long n) {
  count_ctx *x = ud;
  rda *a = x->a;
  a->nctx--;
  if (!a->dead) {
    if (!rlink_holds(a->link, x->channel, x->len)) n++; /* this node, not subscribed right now */
    sio_cluster_server_count(a->base.io, x->rid, n > 0 ? (size_t)n : 1);
  }
  free(x);
}

/* PUBSUB NUMSUB (or SHARDNUMSUB) of the main namespace's count channel. */
int rda_server_count(rda *a, uint64_t rid, const char *numsub, const char *channel) {
  size_t len = strlen(channel);
  count_ctx *x = malloc(sizeof *x + len + 1);
  if (!x) return WSIO_ENOMEM;
  x->a = a;
  x->rid = rid;
  x->len = len;
  memcpy(x->channel, channel, len + 1);
  a->nctx++; /* before: the count may complete at once when a connection fails while sending */
  int rc = rlink_numsub(a->link, numsub, channel, count_done, x);
  if (rc < 0) {
    a->nctx--;
    free(x);
  }
  return rc;
}

static int classic_server_count(sio_adapter *base, uint64_t rid) {
  rda *a = (rda *)base;
  int rc = rda_channel(&a->tmp, a, "-request#", "/", NULL);
  return rc < 0 ? rc : rda_server_count(a, rid, "NUMSUB", (const char *)a->tmp.data);
}

/* ---- answering peers ---- */

/* Publishes a response: to the requester's own channel when it said who it is, else to the shared one. */
static void respond(rda *a, const char *nsp, const char *uid, const buf *msg) {
  buf ch = {0};
  if (rda_channel(&ch, a, "-response#", nsp, uid && *uid ? uid : NULL) == 0)
    rda_publish(a, (const char *)ch.data, ch.len, msg->data, msg->len);
  buf_free(&ch);
}

static void ack_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  rda_ctx *c = ctx;
  rda *a = c->a;
  if (a->dead) return;
  int absent;
  sio_json_span v = rda_first_arg(json, len, &absent);
  buf j = {0}, m = {0};
  char head[160];
  int k = snprintf(head, sizeof head, "{\"type\":%d,\"requestId\":", RQ_ACK);
  int rc = buf_append(&j, head, (size_t)k);
  if (rc == 0) rc = sio_json_write_string(&j, c->reqid, strlen(c->reqid));
  if (rc == 0 && !absent) {
    rc = buf_append(&j, ",\"packet\":", 10);
    if (rc == 0) rc = buf_append(&j, v.p, v.len);
  }
  if (rc == 0) rc = buf_append(&j, "}", 1);
  if (rc == 0) rc = rda_to_msgpack(&j, atts, natts, &m);
  if (rc == 0) respond(a, c->nsp, c->uid, &m);
  buf_free(&j);
  buf_free(&m);
}

static void sse_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  (void)atts;
  (void)natts;
  rda_ctx *c = ctx;
  rda *a = c->a;
  if (!rda_ctx_claim(c)) return;
  int absent;
  sio_json_span v = rda_first_arg(json, len, &absent);
  buf j = {0};
  char head[64];
  int k = snprintf(head, sizeof head, "{\"type\":%d,\"requestId\":", RQ_SSE);
  int rc = buf_append(&j, head, (size_t)k);
  if (rc == 0) rc = sio_json_write_string(&j, c->reqid, strlen(c->reqid));
  if (rc == 0 && !absent) {
    rc = buf_append(&j, ",\"data\":", 8);
    if (rc == 0) rc = buf_append(&j, v.p, v.len);
  }
  if (rc == 0) rc = buf_append(&j, "}", 1);
  if (rc == 0) respond(a, c->nsp, c->uid, &j);
  buf_free(&j);
}

typedef struct fetch_acc {
  buf *b;
  int first, err, ids_only;
} fetch_acc;

static void fetch_one(void *ctx, const sio_socket_info *info) {
  fetch_acc *x = ctx;
  if (x->ids_only) {
    if (!x->first && buf_append(x->b, ",", 1) < 0) x->err = WSIO_ENOMEM;
    x->first = 0;
    if (sio_json_write_string(x->b, info->id, strlen(info->id)) < 0) x->err = WSIO_ENOMEM;
    return;
  }
  rda_socket_json(x->b, info, &x->first, &x->err);
}

/* fetchSockets (sockets 1) or the old allSockets (ids only) answer. */
static void answer_sockets(rda *a, const char *nsp, const char *uid, const char *reqid, int ids_only) {
  buf j = {0};
  int rc = buf_append(&j, "{\"requestId\":", 13);
  if (rc == 0) rc = sio_json_write_string(&j, reqid, strlen(reqid));
  if (rc == 0) rc = buf_append(&j, ",\"sockets\":[", 12);
  fetch_acc x = {&j, 1, 0, ids_only};
  if (rc == 0) rc = sio_cluster_fetch(a->base.io, &a->tg.t, fetch_one, &x);
  if (rc >= 0 && !x.err && buf_append(&j, "]}", 2) == 0) respond(a, nsp, uid, &j);
  buf_free(&j);
}

static void answer_all_rooms(rda *a, const char *nsp, const char *uid, const char *reqid) {
  wsio_nsp *n = map_get(&a->base.io->nsps, nsp, strlen(nsp));
  buf j = {0};
  int rc = buf_append(&j, "{\"requestId\":", 13);
  if (rc == 0) rc = sio_json_write_string(&j, reqid, strlen(reqid));
  if (rc == 0) rc = buf_append(&j, ",\"rooms\":[", 10);
  size_t total = n ? wsio_nsp_rooms(n, NULL, NULL, 0) : 0;
  const char **names = total ? malloc(total * sizeof *names) : NULL;
  if (total && !names) rc = WSIO_ENOMEM;
  if (rc == 0 && total) total = wsio_nsp_rooms(n, names, NULL, total);
  for (size_t i = 0; rc == 0 && i < total; i++) {
    if (i) rc = buf_append(&j, ",", 1);
    if (rc == 0) rc = sio_json_write_string(&j, names[i], strlen(names[i]));
  }
  /* socket.io's rooms map holds each socket's own room too */
  fetch_acc x = {&j, total == 0, 0, 1};
  memset(&a->tg.t, 0, sizeof a->tg.t);
  a->tg.t.nsp = nsp;
  if (rc == 0 && n) sio_cluster_fetch(a->base.io, &a->tg.t, fetch_one, &x);
  if (rc == 0 && !x.err && buf_append(&j, "]}", 2) == 0) respond(a, nsp, uid, &j);
  free(names);
  buf_free(&j);
}

static void on_request(rda *a, const char *nsp, const char *p, size_t n) {
  sio_json_span m, v;
  if (rda_decode(a, p, n, &m) < 0 || m.kind != SIO_JSON_OBJECT) goto bad;
  long long type = rda_json_int(&m, "type", -1);
  char *uid = rda_json_strdup(&m, "uid");
  char *reqid = rda_json_strdup(&m, "requestId");
  int own = uid && strcmp(uid, a->uid) == 0;
  int rc = 0;
  a->st.received++;
  if (own && type != RQ_CLIENT_COUNT && type != RQ_ACK) goto out;
  switch (type) {
  case RQ_SOCKETS:
    if (!reqid || (rc = rda_targets_read(a, nsp, &m, NULL)) < 0) break; /* its "rooms" are the targets */
    answer_sockets(a, nsp, uid, reqid, 1);
    break;
  case RQ_ALL_ROOMS:
    if (reqid) answer_all_rooms(a, nsp, uid, reqid);
    break;
  case RQ_JOIN: case RQ_LEAVE: case RQ_DISCONNECT: {
    sio_json_span opts, e;
    if (sio_json_object_find(&m, "opts", 4, &opts) && opts.kind == SIO_JSON_OBJECT) {
      if ((rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    } else {
      /* the form of older adapters: one socket by id ("sid"), answered */
      char *sid = rda_json_strdup(&m, "sid");
      sio_json_span fake = {0};
      buf tmp = {0};
      rc = sid ? buf_append(&tmp, "{\"rooms\":[", 10) : WSIO_EPROTO;
      if (rc == 0) rc = sio_json_write_string(&tmp, sid, strlen(sid));
      if (rc == 0) rc = buf_append(&tmp, "]}", 2);
      fake.p = (const char *)tmp.data;
      fake.len = tmp.len;
      fake.kind = SIO_JSON_OBJECT;
      if (rc == 0) rc = rda_targets_read(a, nsp, &fake, NULL);
      buf_free(&tmp);
      free(sid);
      if (rc < 0) break;
      char *room = rda_json_strdup(&m, "room");
      if (type == RQ_DISCONNECT)
        sio_cluster_disconnect_sockets(a->base.io, &a->tg.t,
                                       sio_json_object_find(&m, "close", 5, &e) && e.kind == SIO_JSON_TRUE);
      else if (room && type == RQ_JOIN) sio_cluster_sockets_join(a->base.io, &a->tg.t, room);
      else if (room) sio_cluster_sockets_leave(a->base.io, &a->tg.t, room);
      free(room);
      if (reqid) {
        buf j = {0};
        if (buf_append(&j, "{\"requestId\":", 13) == 0 && sio_json_write_string(&j, reqid, strlen(reqid)) == 0 &&
            buf_append(&j, "}", 1) == 0)
          respond(a, nsp, uid, &j);
        buf_free(&j);
      }
      break;
    }
    if (type == RQ_DISCONNECT) {
      int close = sio_json_object_find(&m, "close", 5, &e) && e.kind == SIO_JSON_TRUE;
      sio_cluster_disconnect_sockets(a->base.io, &a->tg.t, close);
      break;
    }
    rc = rda_rooms_apply(a, &m, type == RQ_JOIN);
    break;
  }
  case RQ_FETCH:
    if (!sio_json_object_find(&m, "opts", 4, &v)) v.kind = SIO_JSON_NULL;
    if (!reqid || (rc = rda_targets_read(a, nsp, &v, NULL)) < 0) break;
    answer_sockets(a, nsp, uid, reqid, 0);
    break;
  case RQ_SSE: {
    if (!sio_json_object_find(&m, "data", 4, &v) || v.kind != SIO_JSON_ARRAY) {
      rc = WSIO_EPROTO;
      break;
    }
    rda_ctx *c = reqid ? rda_ctx_new(a, RDA_REQ_SSE, reqid, uid, nsp) : NULL;
    rc = sio_cluster_server_event(a->base.io, nsp, v.p, v.len, c ? sse_reply : NULL, c);
    if (c) rda_ctx_end(c); /* answers come during the call only */
    break;
  }
  case RQ_BROADCAST: {
    sio_json_span pkt, opts;
    uint32_t timeout = 0;
    size_t first, count;
    if (!reqid || !sio_json_object_find(&m, "packet", 6, &pkt)) {
      rc = WSIO_EPROTO;
      break;
    }
    if (!sio_json_object_find(&m, "opts", 4, &opts)) opts.kind = SIO_JSON_NULL;
    if ((rc = rda_targets_read(a, nsp, &opts, &timeout)) < 0) break;
    a->tmp.len = 0;
    if ((rc = mpk_packet_text(&pkt, a->in_atts.n, 1, &a->tmp, &first, &count)) < 0) break;
    int clients = rda_peer_broadcast_ack(a, nsp, reqid, uid, first, count, timeout, ack_reply, &rc);
    buf j = {0};
    char tmp[64];
    int k = snprintf(tmp, sizeof tmp, "{\"type\":%d,\"requestId\":", RQ_CLIENT_COUNT);
    if (buf_append(&j, tmp, (size_t)k) == 0 && sio_json_write_string(&j, reqid, strlen(reqid)) == 0) {
      k = snprintf(tmp, sizeof tmp, ",\"clientCount\":%d}", clients);
      if (buf_append(&j, tmp, (size_t)k) == 0) respond(a, nsp, uid, &j);
    }
    buf_free(&j);
    break;
  }
  default:
    break;
  }
out:
  if (rc == WSIO_EPROTO) a->st.malformed++;
  free(uid);
  free(reqid);
  return;
bad:
  a->st.malformed++;
  log_debug("redis: a malformed request was ignored");
}

static void on_response(rda *a, const char *p, size_t n) {
  sio_json_span m, v;
  if (rda_decode(a, p, n, &m) < 0 || m.kind != SIO_JSON_OBJECT) {
    a->st.malformed++;
    return;
  }
  if (!sio_json_object_find(&m, "requestId", 9, &v) || v.kind != SIO_JSON_STRING) return;
  char id[80];
  ssize_t k = sio_json_string_decode(&v, id, sizeof id);
  rda_req *r = k > 0 ? rda_req_find(a, id, (size_t)k) : NULL;
  if (!r) return; /* another node's request, or one already over */
  a->st.received++;
  wsio_io *io = a->base.io;
  long long type = rda_json_int(&m, "type", -1);
  buf *w = &a->tmp;
  w->len = 0;
  switch (r->kind) {
  case RDA_REQ_ACK:
    if (type == RQ_CLIENT_COUNT) {
      long long c = rda_json_int(&m, "clientCount", -1);
      if (c < 0) return;
      sio_cluster_ack_count(io, r->rid, (size_t)c);
      rda_req_answer(a, r);
    } else if (type == RQ_ACK) {
      int has = sio_json_object_find(&m, "packet", 6, &v);
      if (buf_append(w, "[", 1) < 0 || (has && buf_append(w, v.p, v.len) < 0) || buf_append(w, "]", 1) < 0) return;
      sio_cluster_ack_reply(io, r->rid, (const char *)w->data, w->len, rda_atts(a, 0, a->in_atts.n), a->in_atts.n);
    }
    break;
  case RDA_REQ_FETCH:
    if (sio_json_object_find(&m, "sockets", 7, &v)) rda_sockets_deliver(a, r->rid, &v);
    rda_req_answer(a, r);
    break;
  case RDA_REQ_SSE: {
    int has = sio_json_object_find(&m, "data", 4, &v);
    if (buf_append(w, "[", 1) < 0 || (has && buf_append(w, v.p, v.len) < 0) || buf_append(w, "]", 1) < 0) return;
    sio_cluster_server_ack(io, r->rid, (const char *)w->data, w->len);
    rda_req_answer(a, r);
    break;
  }
  }
}

static void on_broadcast(rda *a, const char *ch, size_t chlen, const char *p, size_t n) {
  sio_json_span m, uid, pkt, opts, nspv;
  sio_json_iter it;
  if (rda_decode(a, p, n, &m) < 0 || m.kind != SIO_JSON_ARRAY) goto bad;
  sio_json_iter_init(&it, &m);
  if (!sio_json_array_next(&it, &uid) || !sio_json_array_next(&it, &pkt) || pkt.kind != SIO_JSON_OBJECT) goto bad;
  if (!sio_json_array_next(&it, &opts)) opts.kind = SIO_JSON_NULL;
  if (sio_json_string_equals(&uid, a->uid, strlen(a->uid))) return;
  a->st.received++;
  /* The packet's namespace must be the channel's (as the reference checks): K#<nsp>#... */
  char nsp[256] = "/";
  if (sio_json_object_find(&pkt, "nsp", 3, &nspv) && nspv.kind == SIO_JSON_STRING) {
    ssize_t k = sio_json_string_decode(&nspv, nsp, sizeof nsp - 1);
    if (k <= 0 || memchr(nsp, 0, (size_t)k)) goto bad;
    nsp[k] = 0;
  }
  size_t kl = strlen(a->key), nl = strlen(nsp);
  if (chlen < kl + nl + 2 || memcmp(ch + kl + 1, nsp, nl) != 0 || ch[kl + 1 + nl] != '#') return;
  if (rda_targets_read(a, nsp, &opts, NULL) < 0) goto bad;
  size_t first, count;
  a->tmp.len = 0;
  if (mpk_packet_text(&pkt, a->in_atts.n, 0, &a->tmp, &first, &count) < 0) goto bad;
  if (sio_cluster_broadcast(a->base.io, &a->tg.t, (const char *)a->tmp.data, a->tmp.len, rda_atts(a, first, count),
                            count) == WSIO_EPROTO)
    goto bad;
  return;
bad:
  a->st.malformed++;
  log_debug("redis: a malformed broadcast was ignored");
}

static int is_str(const redisReply *r) { return r->type == REDIS_REPLY_STRING; }

static void classic_push(rda *a, redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || !is_str(r->element[0])) {
    if (r->type == REDIS_REPLY_ERROR) log_warn("redis subscribe: %.*s", (int)r->len, r->str);
    return;
  }
  const char *kind = r->element[0]->str;
  redisReply *ch, *payload;
  if (strcmp(kind, "pmessage") == 0 && r->elements == 4) {
    ch = r->element[2];
    payload = r->element[3];
    if (!is_str(ch) || !is_str(payload)) return;
    on_broadcast(a, ch->str, ch->len, payload->str, payload->len);
    return;
  }
  if (strcmp(kind, "message") != 0) return;
  ch = r->element[1];
  payload = r->element[2];
  if (!is_str(ch) || !is_str(payload)) return;
  size_t kl = strlen(a->key);
  char nsp[256];
  size_t used;
  if (ch->len > kl + 9 && memcmp(ch->str, a->key, kl) == 0 && memcmp(ch->str + kl, "-request#", 9) == 0) {
    if (rda_channel_nsp(ch->str, ch->len, kl + 9, nsp, sizeof nsp, &used) == 0 && used == ch->len)
      on_request(a, nsp, payload->str, payload->len);
  } else if (ch->len > kl + 10 && memcmp(ch->str, a->key, kl) == 0 && memcmp(ch->str + kl, "-response#", 10) == 0) {
    on_response(a, payload->str, payload->len);
  }
}

static const sio_adapter_vt classic_vt = {
    .broadcast = classic_broadcast,
    .broadcast_ack = classic_broadcast_ack,
    .sockets_join = classic_join,
    .sockets_leave = classic_leave,
    .disconnect_sockets = classic_disconnect,
    .fetch_sockets = classic_fetch,
    .server_side_emit = classic_sse,
    .server_count = classic_server_count,
    .free = rda_free,
    .nsp_created = classic_nsp_created,
};

const rda_proto rda_classic = {.vt = &classic_vt, .nsp_subscribe = classic_nsp_subscribe, .on_push = classic_push};
