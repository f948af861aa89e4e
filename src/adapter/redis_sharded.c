/*
 * The sharded Redis adapter: @socket.io/redis-adapter 8.x createShardedAdapter's protocol on Redis 7
 * sharded pub/sub (SPUBLISH / SSUBSCRIBE), carrying socket.io-adapter 2.5's ClusterAdapter messages
 * (redis_messages.c: the messages, requests and answers).
 *
 * Channels, for key K (channelPrefix) and namespace N: K#N# for everything of the namespace, K#N#uid# for
 * answers to node uid, and in the dynamic modes K#N#room# for broadcasts to exactly one room, to which only
 * the nodes with members of that room subscribe ("dynamic": public rooms, i.e. not a socket's own;
 * "dynamic-private": every room). The server count is PUBSUB SHARDNUMSUB K#/#.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_internal.h"
#include "sio/internal.h"
#include "util/log.h"

/* socket.io's test for a socket id when it picks the channel of a broadcast */
#define SOCKET_ID_LEN 20

static void sharded_nsp_created(sio_adapter *base, const char *nsp) {
  if (rda_msg_nsp_subscribe((rda *)base, nsp) < 0) log_warn("redis: cannot subscribe for namespace %s", nsp);
}

static void sharded_room_changed(sio_adapter *base, const char *nsp, const char *room, int sid_room, int exists) {
  rda *a = (rda *)base;
  if (a->mode == WSIO_REDIS_STATIC || (a->mode == WSIO_REDIS_DYNAMIC && sid_room)) return;
  buf c = {0};
  if (rda_msg_chan(&c, a, nsp, room) == 0) {
    if (exists) rda_subscribe(a, (const char *)c.data, c.len, RDA_SUB_SHARD);
    else rda_unsubscribe(a, (const char *)c.data, c.len);
  }
  buf_free(&c);
}

static int sharded_broadcast(sio_adapter *base, const sio_targets *t, const char *pkt, size_t len,
                             const sio_bin *atts, size_t natts) {
  rda *a = (rda *)base;
  buf *j = &a->out;
  int rc = rda_msg_head(j, a, t->nsp, RDA_MT_BROADCAST);
  if (rc == 0) rc = buf_append(j, "\"packet\":", 9);
  if (rc == 0) rc = mpk_packet_json(j, pkt, len, natts, 0);
  if (rc == 0) rc = buf_append(j, ",\"opts\":{", 9);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = rda_flags_write(j, t, 0);
  if (rc == 0) rc = buf_append(j, "}}}", 3);
  const buf *m = NULL;
  if (rc == 0) rc = rda_msg_encode(a, j, atts, natts, &m);
  if (rc < 0) return rc;
  const char *room = NULL;
  if (t->nrooms == 1 && ((a->mode == WSIO_REDIS_DYNAMIC && strlen(t->rooms[0]) != SOCKET_ID_LEN) ||
                         a->mode == WSIO_REDIS_DYNAMIC_PRIVATE))
    room = t->rooms[0];
  return rda_msg_send(a, t->nsp, room, m);
}

static int sockets_op(rda *a, int type, const sio_targets *t, const char *room, int close) {
  buf *j = &a->out;
  int rc = rda_msg_head(j, a, t->nsp, type);
  if (rc == 0) rc = buf_append(j, "\"opts\":{", 8);
  if (rc == 0) rc = rda_targets_write(j, t);
  if (rc == 0) rc = buf_append(j, "}", 1);
  if (rc == 0) rc = rda_sockets_op_write(j, room, type == RDA_MT_DISCONNECT, close);
  if (rc == 0) rc = buf_append(j, "}}", 2);
  return rc < 0 ? rc : rda_msg_send(a, t->nsp, NULL, j);
}

static int sharded_join(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, RDA_MT_JOIN, t, room, 0);
}
static int sharded_leave(sio_adapter *b, const sio_targets *t, const char *room) {
  return sockets_op((rda *)b, RDA_MT_LEAVE, t, room, 0);
}
static int sharded_disconnect(sio_adapter *b, const sio_targets *t, int close) {
  return sockets_op((rda *)b, RDA_MT_DISCONNECT, t, NULL, close);
}

static const sio_adapter_vt sharded_vt = {
    .broadcast = sharded_broadcast,
    .broadcast_ack = rda_msg_broadcast_ack,
    .sockets_join = sharded_join,
    .sockets_leave = sharded_leave,
    .disconnect_sockets = sharded_disconnect,
    .fetch_sockets = rda_msg_fetch,
    .server_side_emit = rda_msg_sse,
    .server_count = rda_msg_server_count,
    .free = rda_free,
    .nsp_created = sharded_nsp_created,
    .room_changed = sharded_room_changed,
};

const rda_proto rda_sharded = {.vt = &sharded_vt, .nsp_subscribe = rda_msg_nsp_subscribe, .on_push = rda_msg_push};
