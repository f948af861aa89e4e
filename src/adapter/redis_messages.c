/*
 * socket.io-adapter 2.5's ClusterAdapter messages on Redis pub/sub: what the sharded protocol
 * (@socket.io/redis-adapter's createShardedAdapter, redis_sharded.c) and the streams protocol
 * (@socket.io/redis-streams-adapter, redis_streams.c) share.
 *
 * Channels, for key K (channelPrefix) and namespace N: K#N# for the namespace's messages, K#N#uid# for
 * answers to node uid. A message is {uid, nsp, type, data}: the sharded protocol sends it as JSON, or
 * msgpack when its data holds binaries; the streams protocol always as msgpack. Both are read.
 * Types: 3 BROADCAST {packet, opts, requestId?}, 4 SOCKETS_JOIN {opts, rooms}, 5 SOCKETS_LEAVE,
 * 6 DISCONNECT_SOCKETS {opts, close}, 7 FETCH_SOCKETS {opts, requestId}, 8 FETCH_SOCKETS_RESPONSE
 * {requestId, sockets}, 9 SERVER_SIDE_EMIT {packet, requestId?}, 10 SERVER_SIDE_EMIT_RESPONSE {requestId,
 * packet}, 11 BROADCAST_CLIENT_COUNT {requestId, clientCount}, 12 BROADCAST_ACK {requestId, packet}; 1, 2
 * and 13 (ClusterAdapterWithHeartbeat's heartbeats and close) are ignored.
 *
 * Requests count their peers with PUBSUB NUMSUB (SHARDNUMSUB when sharded): the sharded protocol on K#/#,
 * the streams protocol on the namespace's own channel, as each reference does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_internal.h"
#include "sio/internal.h"
#include "util/log.h"

int rda_msg_chan(buf *b, const rda *a, const char *nsp, const char *tail) { return rda_channel(b, a, "#", nsp, tail); }

int rda_msg_nsp_subscribe(rda *a, const char *nsp) {
  int kind = a->sharded ? RDA_SUB_SHARD : RDA_SUB_CHANNEL;
  buf c = {0};
  int rc = rda_msg_chan(&c, a, nsp, NULL);
  if (rc == 0) rc = rda_subscribe(a, (const char *)c.data, c.len, kind);
  if (rc == 0) rc = rda_msg_chan(&c, a, nsp, a->uid);
  if (rc == 0) rc = rda_subscribe(a, (const char *)c.data, c.len, kind);
  buf_free(&c);
  return rc;
}

int rda_msg_head(buf *b, const rda *a, const char *nsp, int type) {
  b->len = 0;
  char tmp[96];
  int k = snprintf(tmp, sizeof tmp, "{\"uid\":\"%s\",\"nsp\":", a->uid);
  int rc = buf_append(b, tmp, (size_t)k);
  if (rc == 0) rc = sio_json_write_string(b, nsp, strlen(nsp));
  k = snprintf(tmp, sizeof tmp, ",\"type\":%d,\"data\":{", type);
  if (rc == 0) rc = buf_append(b, tmp, (size_t)k);
  return rc;
}

int rda_msg_encode(rda *a, buf *b, const sio_bin *atts, size_t natts, const buf **out) {
  *out = b;
  if (!natts && !a->streams) return 0;
  *out = &a->out2;
  return rda_to_msgpack(b, atts, natts, &a->out2);
}

int rda_msg_send(rda *a, const char *nsp, const char *tail, const buf *m) {
  int rc = rda_msg_chan(&a->tmp, a, nsp, tail);
  return rc < 0 ? rc : rda_publish(a, (const char *)a->tmp.data, a->tmp.len, m->data, m->len);
}

/* ---- this node's requests ---- */

static int request(rda *a, uint64_t rid, int kind, const char *id, uint32_t timeout_ms, const char *nsp,
                   const buf *m) {
  buf count = {0};
  int rc = rda_msg_chan(&count, a, a->streams ? nsp : "/", NULL);
  if (rc == 0) rc = rda_msg_chan(&a->tmp, a, nsp, NULL);
  if (rc == 0)
    rc = rda_request(a, rid, kind, id, timeout_ms, a->sharded ? "SHARDNUMSUB" : "NUMSUB", (const char *)count.data,
                     (const char *)a->tmp.data, m->data, m->len);
  buf_free(&count);
  return rc;
}

int rda_msg_broadcast_ack(sio_adapter *base, uint64_t rid, const sio_targets *t, const char *pkt, size_t len,
                          const sio_bin *atts, size_t natts, uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = rda_msg_head(j, a, t->nsp, RDA_MT_BROADCAST);
  if (rc == 0) rc = buf_append(j, "\"packet\":", 9);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 1);
  if (rc == 0) rc = buf_append(j, ",\"requestId\":", 13);
  if (rc == 0) rc = sio_json_write_string(j, id, strlen(id));
  if (rc == 0) rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, timeout_ms);
  if (rc == 0) rc = buf_append(j, "}}}", 3);
  const buf *m = NULL;
  if (rc == 0) rc = rda_msg_encode(a, j, atts, natts, &m);
  return rc < 0 ? rc : request(a, rid, RDA_REQ_ACK, id, timeout_ms, t->nsp, m);
}

int rda_msg_fetch(sio_adapter *base, uint64_t rid, const sio_targets *t, uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  rda_req_id(a, id, sizeof id);
  buf *j = &a->out;
  int rc = rda_msg_head(j, a, t->nsp, RDA_MT_FETCH);
  if (rc == 0) rc = buf_append(j, "\"opts\":{", 8);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, timeout_ms);
  if (rc == 0) rc = buf_append(j, "},\"requestId\":", 14);
  if (rc == 0) rc = sio_json_write_string(j, id, strlen(id));
  if (rc == 0) rc = buf_append(j, "}}", 2);
  const buf *m = NULL;
  if (rc == 0) rc = rda_msg_encode(a, j, NULL, 0, &m);
  return rc < 0 ? rc : request(a, rid, RDA_REQ_FETCH, id, timeout_ms, t->nsp, m);
}

int rda_msg_sse(sio_adapter *base, uint64_t rid, const char *nsp, const char *data, size_t len,
                uint32_t timeout_ms) {
  rda *a = (rda *)base;
  char id[64];
  buf *j = &a->out;
  int rc = rda_msg_head(j, a, nsp, RDA_MT_SSE);
  if (rc == 0) rc = buf_append(j, "\"packet\":", 9);
  if (rc == 0) rc = buf_append(j, data, len);
  if (rc == 0 && rid) {
    rda_req_id(a, id, sizeof id);
    rc = buf_append(j, ",\"requestId\":", 13);
    if (rc == 0) rc = sio_json_write_string(j, id, strlen(id));
  }
  if (rc == 0) rc = buf_append(j, "}}", 2);
  const buf *m = NULL;
  if (rc == 0) rc = rda_msg_encode(a, j, NULL, 0, &m);
  if (rc < 0) return rc;
  return rid ? request(a, rid, RDA_REQ_SSE, id, timeout_ms, nsp, m) : rda_msg_send(a, nsp, NULL, m);
}

int rda_msg_server_count(sio_adapter *base, uint64_t rid) {
  rda *a = (rda *)base;
  int rc = rda_msg_chan(&a->tmp, a, "/", NULL);
  return rc < 0 ? rc : rda_server_count(a, rid, a->sharded ? "SHARDNUMSUB" : "NUMSUB", (const char *)a->tmp.data);
}

/* ---- answering peers ---- */

/* {"uid","nsp","type","data":{"requestId":..,<rest>}} to the requester's channel. */
static void respond(rda *a, const char *nsp, const char *to, int type, const char *reqid, const char *rest,
                    size_t rest_len, const sio_bin *atts, size_t natts) {
  buf j = {0}, ch = {0}, m = {0};
  int rc = rda_msg_head(&j, a, nsp, type);
  if (rc == 0) rc = buf_append(&j, "\"requestId\":", 12);
  if (rc == 0) rc = sio_json_write_string(&j, reqid, strlen(reqid));
  if (rc == 0 && rest_len) rc = buf_append(&j, rest, rest_len);
  if (rc == 0) rc = buf_append(&j, "}}", 2);
  int packed = natts || a->streams;
  if (rc == 0 && packed) rc = rda_to_msgpack(&j, atts, natts, &m);
  if (rc == 0) rc = rda_msg_chan(&ch, a, nsp, to);
  if (rc == 0) {
    const buf *out = packed ? &m : &j;
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
  if (!c->a->dead) reply_packet(c, RDA_MT_ACK, json, len, atts, natts);
}

static void sse_reply(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts) {
  (void)atts;
  (void)natts;
  rda_ctx *c = ctx;
  if (!rda_ctx_claim(c)) return;
  reply_packet(c, RDA_MT_SSE_RESPONSE, json, len, NULL, 0);
}

typedef struct fetch_acc {
  buf *b;
  int first, err;
} fetch_acc;

static void fetch_one(void *ctx, const sio_socket_info *info) {
  fetch_acc *x = ctx;
  rda_socket_json(x->b, info, &x->first, &x->err);
}

/* A peer's operation; offset is the stream entry's id it came as (NULL: from pub/sub). */
static void on_message(rda *a, const char *nsp, const char *uid, const sio_json_span *data, long long type,
                       const char *offset) {
  wsio_io *io = a->base.io;
  sio_json_span opts, v;
  char *reqid = rda_json_strdup(data, "requestId");
  if (!sio_json_object_find(data, "opts", 4, &opts)) opts.kind = SIO_JSON_NULL;
  uint32_t timeout = 0;
  int rc = 0;
  switch (type) {
  case RDA_MT_BROADCAST: {
    sio_json_span pkt;
    size_t first, count;
    if (!sio_json_object_find(data, "packet", 6, &pkt) || (rc = rda_targets_read(a, nsp, &opts, &timeout)) < 0) {
      rc = WSIO_EPROTO;
      break;
    }
    a->tmp.len = 0;
    if ((rc = mpk_packet_text_nsp(&pkt, a->in_atts.n, reqid != NULL, nsp, &a->tmp, &first, &count)) < 0) break;
    if (!reqid) {
      rc = sio_cluster_broadcast_at(io, &a->tg.t, (const char *)a->tmp.data, a->tmp.len, rda_atts(a, first, count),
                                    count, offset);
      break;
    }
    int clients = rda_peer_broadcast_ack(a, nsp, reqid, uid, first, count, timeout, ack_reply, &rc);
    char rest[48];
    int k = snprintf(rest, sizeof rest, ",\"clientCount\":%d", clients);
    respond(a, nsp, uid, RDA_MT_CLIENT_COUNT, reqid, rest, (size_t)k, NULL, 0);
    break;
  }
  case RDA_MT_JOIN: case RDA_MT_LEAVE: {
    if ((rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    rc = rda_rooms_apply(a, data, type == RDA_MT_JOIN);
    break;
  }
  case RDA_MT_DISCONNECT:
    if ((rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    sio_cluster_disconnect_sockets(io, &a->tg.t, sio_json_object_find(data, "close", 5, &v) && v.kind == SIO_JSON_TRUE);
    break;
  case RDA_MT_FETCH: {
    if (!reqid || (rc = rda_targets_read(a, nsp, &opts, NULL)) < 0) break;
    buf j = {0};
    rc = buf_append(&j, ",\"sockets\":[", 12);
    fetch_acc x = {&j, 1, 0};
    if (rc == 0) rc = sio_cluster_fetch(io, &a->tg.t, fetch_one, &x);
    if (rc >= 0 && !x.err && buf_append(&j, "]", 1) == 0)
      respond(a, nsp, uid, RDA_MT_FETCH_RESPONSE, reqid, (const char *)j.data, j.len, NULL, 0);
    buf_free(&j);
    rc = 0;
    break;
  }
  case RDA_MT_SSE: {
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
  if (type == RDA_MT_CLIENT_COUNT && r->kind == RDA_REQ_ACK) {
    long long c = rda_json_int(data, "clientCount", -1);
    if (c < 0) return;
    sio_cluster_ack_count(io, r->rid, (size_t)c);
    rda_req_answer(a, r);
  } else if (type == RDA_MT_ACK && r->kind == RDA_REQ_ACK) {
    if (buf_append(w, "[", 1) < 0 || (has && buf_append(w, v.p, v.len) < 0) || buf_append(w, "]", 1) < 0) return;
    sio_cluster_ack_reply(io, r->rid, (const char *)w->data, w->len, rda_atts(a, 0, a->in_atts.n), a->in_atts.n);
  } else if (type == RDA_MT_FETCH_RESPONSE && r->kind == RDA_REQ_FETCH) {
    if (sio_json_object_find(data, "sockets", 7, &v)) rda_sockets_deliver(a, r->rid, &v);
    rda_req_answer(a, r);
  } else if (type == RDA_MT_SSE_RESPONSE && r->kind == RDA_REQ_SSE) {
    if (buf_append(w, "[", 1) < 0 || (has && buf_append(w, v.p, v.len) < 0) || buf_append(w, "]", 1) < 0) return;
    sio_cluster_server_ack(io, r->rid, (const char *)w->data, w->len);
    rda_req_answer(a, r);
  }
}

void rda_msg_dispatch(rda *a, const char *nsp, const char *uid, long long type, const sio_json_span *data,
                      const char *offset) {
  a->st.received++;
  if (type == RDA_MT_FETCH_RESPONSE || type == RDA_MT_SSE_RESPONSE || type == RDA_MT_CLIENT_COUNT ||
      type == RDA_MT_ACK)
    on_response(a, data, type);
  else if (uid)
    on_message(a, nsp, uid, data, type, offset);
}

void rda_msg_push(rda *a, redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING) {
    if (r->type == REDIS_REPLY_ERROR) log_warn("redis subscribe: %.*s", (int)r->len, r->str);
    return;
  }
  if (strcmp(r->element[0]->str, a->sharded ? "smessage" : "message") != 0) return;
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
  rda_msg_dispatch(a, nsp, uid, type, &data, NULL);
  free(uid);
  return;
bad:
  a->st.malformed++;
  log_debug("redis: a malformed message was ignored");
}
