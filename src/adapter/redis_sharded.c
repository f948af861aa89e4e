/*
 * The sharded Redis adapter: @socket.io/redis-adapter 8.x createShardedAdapter's protocol on Redis 7
 * sharded pub/sub (SPUBLISH / SSUBSCRIBE), carrying socket.io-adapter 2.5's ClusterAdapter messages.
 *
 * Channels, for key K (channelPrefix) and namespace N: K#N# for everything of the namespace, K#N#uid# for
 * answers to node uid, and in the dynamic modes K#N#room# for broadcasts to exactly one room, to which only
 * the nodes with members of that room subscribe ("dynamic": public rooms, i.e. not a socket's own;
 * "dynamic-private": every room). The server count is PUBSUB SHARDNUMSUB K#/#.
 *
 * A message is {uid, nsp, type, data}: JSON, or msgpack when its data holds binaries. Types: 3 BROADCAST
 * {packet, opts, requestId?}, 4 SOCKETS_JOIN {opts, rooms}, 5 SOCKETS_LEAVE, 6 DISCONNECT_SOCKETS {opts,
 * close}, 7 FETCH_SOCKETS {opts, requestId}, 8 FETCH_SOCKETS_RESPONSE {requestId, sockets},
 * 9 SERVER_SIDE_EMIT {packet, requestId?}, 10 SERVER_SIDE_EMIT_RESPONSE {requestId, packet},
 * 11 BROADCAST_CLIENT_COUNT {requestId, clientCount}, 12 BROADCAST_ACK {requestId, packet}; 1, 2 and 13
 * (heartbeats, close) belong to other adapters and are ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_internal.h"
#include "sio/internal.h"
#include "util/log.h"

enum {
  MT_BROADCAST = 3, MT_JOIN, MT_LEAVE, MT_DISCONNECT, MT_FETCH, MT_FETCH_RESPONSE, MT_SSE, MT_SSE_RESPONSE,
  MT_CLIENT_COUNT, MT_ACK
};

/* socket.io's test for a socket id when it picks the channel of a broadcast */
#define SOCKET_ID_LEN 20

/* K#N# or K#N#tail# */
static int chan(buf *b, const rda *a, const char *nsp, const char *tail) { return rda_channel(b, a, "#", nsp, tail); }

static int sharded_nsp_subscribe(rda *a, const char *nsp) {
  buf c = {0};
  int rc = chan(&c, a, nsp, NULL);
  if (rc == 0) rc = rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_SHARD);
  if (rc == 0) rc = chan(&c, a, nsp, a->uid);
  if (rc == 0) rc = rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_SHARD);
  buf_free(&c);
  return rc;
}

static void sharded_nsp_created(sio_adapter *base, const char *nsp) {
  if (sharded_nsp_subscribe((rda *)base, nsp) < 0) log_warn("redis: cannot subscribe for namespace %s", nsp);
}

static void sharded_room_changed(sio_adapter *base, const char *nsp, const char *room, int sid_room, int exists) {
  rda *a = (rda *)base;
  if (a->mode == WSIO_REDIS_STATIC || (a->mode == WSIO_REDIS_DYNAMIC && sid_room)) return;
  buf c = {0};
  if (chan(&c, a, nsp, room) == 0) {
    if (exists) rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_SHARD);
    else rda_unsubscribe(a, (const char *)c.data, c.len);
  }
  buf_free(&c);
}

/* ---- messages ---- */

/* {"uid":..,"nsp":..,"type":T,"data":{  — the caller writes data's members and closes with "}}". */
static int head(buf *b, const rda *a, const char *nsp, int type) {
  b->len = 0;
  char tmp[96];
  int k = snprintf(tmp, sizeof tmp, "{\"uid\":\"%s\",\"nsp\":", a->uid);
  int rc = buf_append(b, tmp, (size_t)k);
  if (rc == 0) rc = sio_json_write_string(b, nsp, strlen(nsp));
  k = snprintf(tmp, sizeof tmp, ",\"type\":%d,\"data\":{", type);
  if (rc == 0) rc = buf_append(b, tmp, (size_t)k);
  return rc;
}

/* The message in b as sent: JSON as it is, msgpack when it carries binaries. */
static int encode(rda *a, buf *b, const sio_bin *atts, size_t natts, const buf **out) {
  *out = b;
  if (!natts) return 0;
  *out = &a->out2;
  return rda_to_msgpack(b, atts, natts, &a->out2);
}

static int send_main(rda *a, const char *nsp, const char *tail, const buf *m) {
  int rc = chan(&a->tmp, a, nsp, tail);
  return rc < 0 ? rc : rda_publish(a, (const char *)a->tmp.data, a->tmp.len, m->data, m->len);
}

static int sharded_broadcast(sio_adapter *base, const sio_targets *t, const char *pkt, size_t len,
                             const sio_bin *atts, size_t natts) {
  rda *a = (rda *)base;
  buf *j = &a->out;
  int rc = head(j, a, t->nsp, MT_BROADCAST);
  if (rc == 0) rc = buf_append(j, "\"packet\":", 9);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 0);
  if (rc == 0) rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, 0);
  if (rc == 0) rc = buf_append(j, "}}}", 3);
  const buf *m = NULL;
  if (rc == 0) rc = encode(a, j, atts, natts, &m);
  if (rc < 0) return rc;
  const char *room = NULL;
  if (t->nrooms == 1 && ((a->mode == WSIO_REDIS_DYNAMIC && strlen(t->rooms[0]) != SOCKET_ID_LEN) ||
                         a->mode == WSIO_REDIS_DYNAMIC_PRIVATE))
    room = t->rooms[0];
  return send_main(a, t->nsp, room, m);
}

static int request(rda *a, uint64_t rid, int kind, const char *id, uint32_t timeout_ms, const char *nsp,
                   const buf *m) {
  buf count = {0};
  int rc = chan(&count, a, "/", NULL);
  if (rc == 0) rc = chan(&a->tmp, a, nsp, NULL);
  if (rc == 0)
    rc = rda_request(a, rid, kind, id, timeout_ms, "SHARDNUMSUB", (const char *)count.data,
                     (const char *)a->tmp.data, m->data, m->len);
  buf_free(&count);
  return rc;
}

static int sharded_broadcast_ack(sio_adapter *base, uint64_t rid, const sio_targets *t, const char *pkt,
                                 size_t len, const sio_bin *atts, size_t natts, uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = head(j, a, t->nsp, MT_BROADCAST);
  if (rc == 0) rc = buf_append(j, "\"packet\":", 9);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 1);
  if (rc == 0) rc = buf_append(j, ",\"requestId\":", 13);
  if (rc == 0) rc = sio_json_write_string(j, id, strlen(id));
  if (rc == 0) rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, timeout_ms);
  if (rc == 0) rc = buf_append(j, "}}}", 3);
  const buf *m = NULL;
  if (rc == 0) rc = encode(a, j, atts, natts, &m);
  return rc < 0 ? rc : request(a, rid, RDA_REQ_ACK, id, timeout_ms, t->nsp, m);
}

static int sockets_op(rda *a, int type, const sio_targets *t, const char *room, int close) {
  buf *j = &a->out;
  int rc = head(j, a, t->nsp, type);
  if (rc == 0) rc = buf_append(j, "\"opts\":{", 8);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = buf_append(j, "}", 1);
  if (rc == 0) rc = rda_sockets_op_write(j, room, type == MT_DISCONNECT, close);
  if (rc == 0) rc = buf_append(j, "}}", 2);
  return rc < 0 ? rc : send_main(a, t->nsp, NULL, j);
}

static int sharded_join(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, MT_JOIN, t, room, 0);
}
static int sharded_leave(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, MT_LEAVE, t, room, 0);
}
static int sharded_disconnect(sio_adapter *b, const sio_targets *t, int close) {
  return sockets_op((rda *)b, MT_DISCONNECT, t, NULL, close);
}

static int sharded_fetch(sio_adapter *base, uint64_t rid, const sio_targets *t, uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = head(j, a, t->nsp, MT_FETCH);
  if (rc == 0) rc = buf_append(j, "\"opts\":{", 8);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, timeout_ms);
  if (rc == 0) rc = buf_append(j, "},\"requestId\":", 14);
  if (rc == 0) rc = sio_json_write_string(j, id, strlen(id));
  if (rc == 0) rc = buf_append(j, "}}", 2);
  return rc < 0 ? rc : request(a, rid, RDA_REQ_FETCH, id, timeout_ms, t->nsp, j);
}

static int sharded_sse(sio_adapter *base, uint64_t rid, const char *nsp, const char *data, size_t len,
                       uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  buf *j = &a->out;
  int rc = head(j, a, nsp, MT_SSE);
  if (rc == 0) rc = buf_append(j, "\"packet\":", 9);
  if (rc == 0) rc = buf_append(j, data, len);
  if (rc == 0 && rid) {
    rda_req_id(a, id, sizeof id);
    rc = buf_append(j, ",\"requestId\":", 13);
    if (rc == 0) rc = sio_json_write_string(j, id, strlen(id));
  }
  if (rc == 0) rc = buf_append(j, "}}", 2);
  if (rc < 0) return rc;
  return rid ? request(a, rid, RDA_REQ_SSE, id, timeout_ms, nsp, j) : send_main(a, nsp, NULL, j);
}

static int sharded_server_count(sio_adapter *base, uint64_t rid) {
  rda *a = (rda *)base;
  int rc = chan(&a->tmp, a, "/", NULL);
  return rc < 0 ? rc : rda_server_count(a, rid, "SHARDNUMSUB", (const char *)a->tmp.data);
}

/* ---- answering peers ---- */

/* {"uid","nsp","type","data":{"requestId":..,<rest>}} to the requester's channel. */
static void respond(rda *a, const char *nsp, const char *to, int type, const char *reqid, const char *rest,
                    size_t rest_len, const sio_bin *atts, size_t natts) {
  buf j = {0}, ch = {0}, m = {0};
  int rc = head(&j, a, nsp, type);
  if (rc == 0) rc = buf_append(&j, "\"requestId\":", 12);
  if (rc == 0) rc = sio_json_write_string(&j, reqid, strlen(reqid));
  if (rc == 0 && rest_len) rc = buf_append(&j, rest, rest_len);
  if (rc == 0) rc = buf_append(&j, "}}", 2);
  if (rc == 0 && natts) rc = rda_to_msgpack(&j, atts, natts, &m);
  if (rc == 0) rc = chan(&ch, a, nsp, to);
  if (rc == 0) {
    const buf *out = natts ? &m : &j;
    rda_publish(a, (const char *)ch.data, ch.len, out->data, out->len);
  }
  buf_free(&j);
  buf_free(&ch);
  buf_free(&m);
}

static void reply_packet(rda_ctx *c, int type, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  int absent;
  sio_json_span v = rda_first_arg(json, len, &absent);
  buf rest = {0};
  int rc = 0;
  if (!absent) {
    rc = buf_append(&rest, ",\"packet\":", 10);
    if (rc == 0) rc = buf_append(&rest, v.p, v.len);
  }
  if (rc == 0) respond(c->a, c->nsp, c->uid, type, c->reqid, (const char *)rest.data, rest.len, atts, natts);
  buf_free(&rest);
}

static void ack_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  rda_ctx *c = ctx;
  if (!c->a->dead) reply_packet(c, MT_ACK, json, len, atts, natts);
}

static void sse_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  (void)atts;
  (void)natts;
  rda_ctx *c = ctx;
  if (!rda_ctx_claim(c)) return;
  reply_packet(c, MT_SSE_RESPONSE, json, len, NULL, 0);
}

typedef struct fetch_acc {
  buf *b;
  int first, err;
} fetch_acc;

static void fetch_one(void *ctx, const sio_socket_info *info) {
  fetch_acc *x = ctx;
  rda_socket_json(x->b, info, &x->first, &x->err);
}

static void on_message(rda *a, const char *nsp, const sio_json_span *m, const char *uid, const sio_json_span *data,
                       long long type) {
  wsio_io *io = a->base.io;
  sio_json_span opts, v;
  char *reqid = rda_json_strdup(data, "requestId");
  if (!sio_json_object_find(data, "opts", 4, &opts)) opts.kind = SIO_JSON_NULL;
  uint32_t timeout = 0;
  int rc = 0;
  (void)m;
  switch (type) {
  case MT_BROADCAST: {
    sio_json_span pkt;
    size_t first, count;
    if (!sio_json_object_find(data, "packet", 6, &pkt) || (rc = rda_targets_read(a, nsp, &opts, &timeout)) < 0) {
      rc = WSIO_EPROTO;
      break;
    }
    a->tmp.len = 0;
    if ((rc = mpk_packet_text(&pkt, a->in_atts.n, reqid != NULL, &a->tmp, &first, &count)) < 0) break;
    if (!reqid) {
      rc = sio_cluster_broadcast(io, &a->tg.t, (const char *)a->tmp.data, a->tmp.len, rda_atts(a, first, count), count);
      break;
    }
    int clients = rda_peer_broadcast_ack(a, nsp, reqid, uid, first, count, timeout, ack_reply, &rc);
    char rest[48];
    int k = snprintf(rest, sizeof rest, ",\"clientCount\":%d", clients);
    respond(a, nsp, uid, MT_CLIENT_COUNT, reqid, rest, (size_t)k, NULL, 0);
    break;
  }
  case MT_JOIN: case MT_LEAVE: {
    if ((rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    rc = rda_rooms_apply(a, data, type == MT_JOIN);
    break;
  }
  case MT_DISCONNECT:
    if ((rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    sio_cluster_disconnect_sockets(io, &a->tg.t, sio_json_object_find(data, "close", 5, &v) && v.kind == SIO_JSON_TRUE);
    break;
  case MT_FETCH: {
    if (!reqid || (rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    buf j = {0};
    rc = buf_append(&j, ",\"sockets\":[", 12);
    fetch_acc x = {&j, 1, 0};
    if (rc == 0) rc = sio_cluster_fetch(io, &a->tg.t, fetch_one, &x);
    if (rc >= 0 && !x.err && buf_append(&j, "]", 1) == 0)
      respond(a, nsp, uid, MT_FETCH_RESPONSE, reqid, (const char *)j.data, j.len, NULL, 0);
    buf_free(&j);
    rc = 0;
    break;
  }
  case MT_SSE: {
    if (!sio_json_object_find(data, "packet", 6, &v) || v.kind != SIO_JSON_ARRAY) {
      rc = WSIO_EPROTO;
      break;
    }
    rda_ctx *c = reqid ? rda_ctx_new(a, RDA_REQ_SSE, reqid, uid, nsp) : NULL;
    rc = sio_cluster_server_event(io, nsp, v.p, v.len, c ? sse_reply : NULL, c);
    if (c) rda_ctx_end(c); /* answers come during the call only */
    break;
  }
  default:
    break;
  }
  if (rc == WSIO_EPROTO) a->st.malformed++;
  free(reqid);
}

static void on_response(rda *a, const sio_json_span *data, long long type) {
  sio_json_span v;
  if (!sio_json_object_find(data, "requestId", 9, &v) || v.kind != SIO_JSON_STRING) return;
  char id[80];
  ssize_t k = sio_json_string_decode(&v, id, sizeof id);
  rda_req *r = k > 0 ? rda_req_find(a, id, (size_t)k) : NULL;
  if (!r) return;
  wsio_io *io = a->base.io;
  buf *w = &a->tmp;
  w->len = 0;
  int has = sio_json_object_find(data, "packet", 6, &v);
  if (type == MT_CLIENT_COUNT && r->kind == RDA_REQ_ACK) {
    long long c = rda_json_int(data, "clientCount", -1);
    if (c < 0) return;
    sio_cluster_ack_count(io, r->rid, (size_t)c);
    rda_req_answer(a, r);
  } else if (type == MT_ACK && r->kind == RDA_REQ_ACK) {
    if (buf_append(w, "[", 1) < 0 || (has && buf_append(w, v.p, v.len) < 0) || buf_append(w, "]", 1) < 0) return;
    sio_cluster_ack_reply(io, r->rid, (const char *)w->data, w->len, rda_atts(a, 0, a->in_atts.n), a->in_atts.n);
  } else if (type == MT_FETCH_RESPONSE && r->kind == RDA_REQ_FETCH) {
    if (sio_json_object_find(data, "sockets", 7, &v)) rda_sockets_deliver(a, r->rid, &v);
    rda_req_answer(a, r);
  } else if (type == MT_SSE_RESPONSE && r->kind == RDA_REQ_SSE) {
    if (buf_append(w, "[", 1) < 0 || (has && buf_append(w, v.p, v.len) < 0) || buf_append(w, "]", 1) < 0) return;
    sio_cluster_server_ack(io, r->rid, (const char *)w->data, w->len);
    rda_req_answer(a, r);
  }
}

static void sharded_push(rda *a, redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING) {
    if (r->type == REDIS_REPLY_ERROR) log_warn("redis subscribe: %.*s", (int)r->len, r->str);
    return;
  }
  if (strcmp(r->element[0]->str, "smessage") != 0) return;
  redisReply *ch = r->element[1], *payload = r->element[2];
  if (ch->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING) return;
  size_t kl = strlen(a->key), used;
  char nsp[256];
  if (ch->len <= kl + 1 || memcmp(ch->str, a->key, kl) != 0 || ch->str[kl] != '#' ||
      rda_channel_nsp(ch->str, ch->len, kl + 1, nsp, sizeof nsp, &used) < 0)
    return;
  sio_json_span m, data;
  if (rda_decode(a, payload->str, payload->len, &m) < 0 || m.kind != SIO_JSON_OBJECT) goto bad;
  long long type = rda_json_int(&m, "type", -1);
  char *uid = rda_json_strdup(&m, "uid");
  if (!sio_json_object_find(&m, "data", 4, &data)) data = (sio_json_span){"{}", 2, SIO_JSON_OBJECT};
  if (data.kind != SIO_JSON_OBJECT || (uid && strcmp(uid, a->uid) == 0) || !rda_json_is(&m, "nsp", nsp)) {
    free(uid);
    if (data.kind != SIO_JSON_OBJECT) goto bad;
    return;
  }
  a->st.received++;
  if (type == MT_FETCH_RESPONSE || type == MT_SSE_RESPONSE || type == MT_CLIENT_COUNT || type == MT_ACK)
    on_response(a, &data, type);
  else if (uid)
    on_message(a, nsp, &m, uid, &data, type);
  free(uid);
  return;
bad:
  a->st.malformed++;
  log_debug("redis: a malformed message was ignored");
}

static const sio_adapter_vt sharded_vt = {
    .broadcast = sharded_broadcast,
    .broadcast_ack = sharded_broadcast_ack,
    .sockets_join = sharded_join,
    .sockets_leave = sharded_leave,
    .disconnect_sockets = sharded_disconnect,
    .fetch_sockets = sharded_fetch,
    .server_side_emit = sharded_sse,
    .server_count = sharded_server_count,
    .free = rda_free,
    .nsp_created = sharded_nsp_created,
    .room_changed = sharded_room_changed,
};

const rda_proto rda_sharded = {&sharded_vt, sharded_nsp_subscribe, sharded_push};
