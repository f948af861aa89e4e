/*
 * Internals shared by the Redis adapter's files: redis_adapter.c (connections, subscriptions, requests,
 * the public functions), redis.c (the classic protocol of @socket.io/redis-adapter's createAdapter),
 * redis_messages.c (the ClusterAdapter messages of socket.io-adapter 2.5 on pub/sub), redis_sharded.c
 * (createShardedAdapter's protocol) and redis_streams.c (@socket.io/redis-streams-adapter's).
 *
 * Messages are handled as JSON text plus attachments whatever their encoding on the wire: msgpack from
 * peers is converted on arrival (mpk_to_json), and outgoing messages are written as JSON, then packed to
 * msgpack (mpk_pack_json) when the protocol or a binary calls for it.
 */
#ifndef WSIO_ADAPTER_REDIS_INTERNAL_H
#define WSIO_ADAPTER_REDIS_INTERNAL_H

#include <uv.h>

#include "sio/msgpack.h"
#include "adapter/redis_conn.h"
#include "adapter/redis_link.h"
#include "sio/adapter.h"
#include "util/buf.h"
#include "util/map.h"
#include "wsio.h"

enum { RDA_SUB_CHANNEL = RLINK_CHANNEL, RDA_SUB_PATTERN = RLINK_PATTERN, RDA_SUB_SHARD = RLINK_SHARD };
enum { RDA_REQ_ACK = 1, RDA_REQ_FETCH, RDA_REQ_SSE };
/* socket.io-adapter's ClusterAdapter message types (1, 2 and 13 are heartbeats and close: ignored) */
enum {
  RDA_MT_BROADCAST = 3, RDA_MT_JOIN, RDA_MT_LEAVE, RDA_MT_DISCONNECT, RDA_MT_FETCH, RDA_MT_FETCH_RESPONSE,
  RDA_MT_SSE, RDA_MT_SSE_RESPONSE, RDA_MT_CLIENT_COUNT, RDA_MT_ACK
};

/* Rooms per message taken from a peer; more is refused as malformed. */
#define RDA_MAX_ROOMS 10000
/* A peer's broadcast with acks holds state here until its timeout: both are bounded, so peers (or anyone
 * who can publish on Redis) cannot make a node hold state without end. Past the count a node answers
 * that it has no client. */
#define RDA_MAX_CTX 10000
#define RDA_PEER_TIMEOUT_MAX_MS 120000

typedef struct rda rda;

/* What differs between the classic and the sharded protocol. */
typedef struct rda_proto {
  const sio_adapter_vt *vt;
  /* Subscribes to what a namespace needs (on creation). */
  int (*nsp_subscribe)(rda *a, const char *nsp);
  /* A message from the subscription connection (a pub/sub reply array). */
  void (*on_push)(rda *a, redisReply *r);
  /* Optional: the protocol's own state, made once the link exists (start: 0 or a negative code) and let
   * go when the adapter goes (stop: nothing of the protocol runs after it, but the link's callbacks in
   * flight, which rlink_free runs at once); on_up: a command connection came up; tick: every second. */
  int (*start)(rda *a, const wsio_redis_config *cfg);
  void (*stop)(rda *a);
  void (*on_up)(rda *a);
  void (*tick)(rda *a);
} rda_proto;

/* A request of this node waiting for its peers: the sio rid, and how many answers make it complete. */
typedef struct rda_req {
  char id[64];     /* the requestId on the wire (the map key) */
  size_t id_len;
  uint64_t rid;
  uint64_t seq;    /* for the server count's callback, which may come after the request is gone */
  int kind;
  long expected;   /* -1 until the server count is known */
  long got;
  int done;        /* sio_cluster_done was called */
  uint64_t due;    /* uv_now ms: forgotten then (sio has timed it out) */
  struct rda_req *next, *prev;
} rda_req;

/* A peer's request this node answers later (broadcast with acks, serverSideEmit with ack). */
typedef struct rda_ctx {
  rda *a;
  int kind;
  char *reqid;
  char *uid;       /* the requester (sharded responses go to its channel) */
  char *nsp;
  int answered;
} rda_ctx;

/* The targets of a peer's operation: strings decoded into one store. */
typedef struct rda_targets {
  sio_targets t;
  buf store;
  const char **ptrs;
  size_t cap;
} rda_targets;

struct rda {
  sio_adapter base;
  const rda_proto *proto;
  uv_loop_t *loop;
  redis_url url;
  char *key;
  int sharded, mode;
  int streams;          /* the streams protocol: xs holds its state */
  struct rds *xs;
  char uid[24];
  rlink *link;          /* Redis: one server or a cluster; holds the subscription set */
  uv_timer_t tick;
  map reqs;             /* requestId -> rda_req */
  rda_req *rhead;
  uint64_t seq;
  buf in_json, out, out2, tmp;
  mpk_atts in_atts;
  rda_targets tg;
  size_t nctx;          /* rda_ctx alive: the adapter's memory stays until they end */
  int dead;
  int hooks;            /* room_changed was called: no room polling needed */
  wsio_redis_stats st;
};

/* The attachments [first, first + count) of the message being handled (NULL for none). */
static inline const sio_bin *rda_atts(const rda *a, size_t first, size_t count) {
  return count ? a->in_atts.v + first : NULL;
}

/* ---- redis_adapter.c ---- */

/* Adds or removes a subscription (sent now when its connection is up, and again after each reconnection or
 * slot move: see redis_link.h). */
int rda_subscribe(rda *a, const char *name, size_t len, int kind);
void rda_unsubscribe(rda *a, const char *name, size_t len);

/* PUBLISH or SPUBLISH msg on channel; counted as published or dropped. Returns 0 or WSIO_ECLOSED/ELIMIT. */
int rda_publish(rda *a, const char *channel, size_t clen, const void *msg, size_t len);

/* Starts a request that completes when every other server has answered: sends "PUBSUB <numsub> <count_ch>"
 * to learn how many there are, then publishes msg on channel. Returns 0, or a negative code (nothing
 * sent, request not kept). The request's id must have been made with rda_req_id. */
int rda_request(rda *a, uint64_t rid, int kind, const char *id, uint32_t timeout_ms, const char *numsub,
                const char *count_ch, const char *channel, const void *msg, size_t len);
/* A request id for the wire: this node's uid and a counter. */
void rda_req_id(rda *a, char *out, size_t cap);
rda_req *rda_req_find(rda *a, const char *id, size_t len);
/* One more answer to r: completes it (sio_cluster_done) when all have come. */
void rda_req_answer(rda *a, rda_req *r);

/* A message body as JSON: JSON as it is (validated), anything else as msgpack converted (attachments in
 * a->in_atts). Returns 0 and sets *root, or WSIO_EPROTO. */
int rda_decode(rda *a, const char *p, size_t n, sio_json_span *root);
/* Writes JSON (built in a->out... ) as msgpack into out: uses in mpk_pack_json. */
int rda_to_msgpack(const buf *json, const sio_bin *atts, size_t natts, buf *out);

/* Reads {rooms, except, flags} (opts may be NULL: everyone) into a->tg for namespace nsp. Returns 0 or
 * WSIO_EPROTO. *timeout_ms (may be NULL) gets flags.timeout, 0 when absent. */
int rda_targets_read(rda *a, const char *nsp, const sio_json_span *opts, uint32_t *timeout_ms);
/* Writes "rooms":[..],"except":[..] of t. */
int rda_targets_write(buf *b, const sio_targets *t);
/* Writes ,"flags":{...} for t's flags and a timeout (0: none). */
int rda_flags_write(buf *b, const sio_targets *t, uint32_t timeout_ms);

/* Decodes a JSON string member of obj into a NUL-terminated malloc'd string; NULL when absent or not a
 * string. */
char *rda_json_strdup(const sio_json_span *obj, const char *key);
/* 1 when obj has key as a string equal to s. */
int rda_json_is(const sio_json_span *obj, const char *key, const char *s);
/* Member key of obj as an integer; def when absent or not an integer. */
long long rda_json_int(const sio_json_span *obj, const char *key, long long def);

/* JSON for a fetchSockets answer: {"id":..,"handshake":..,"rooms":[..],"data":..} per socket, into b. */
void rda_socket_json(buf *b, const sio_socket_info *info, int *first, int *err);
/* Reads an array of such sockets and hands them to sio for rid. */
void rda_sockets_deliver(rda *a, uint64_t rid, const sio_json_span *arr);

/* The first element of a JSON array as a value ("null" text when empty; *absent set then). */
sio_json_span rda_first_arg(const char *json, size_t len, int *absent);

rda_ctx *rda_ctx_new(rda *a, int kind, const char *reqid, const char *uid, const char *nsp);
void rda_ctx_end(rda_ctx *c);

/* The namespace of a channel "<prefix><nsp>#..." (copied into out, NUL-terminated); 0 or WSIO_EPROTO. */
int rda_channel_nsp(const char *ch, size_t len, size_t prefix_len, char *out, size_t cap, size_t *consumed);

/* A channel name into b: key, mid, nsp, "#", and when tail is not NULL tail and "#" (NUL-terminated, the
 * terminator not counted in b->len). Returns 0 or WSIO_ENOMEM. */
int rda_channel(buf *b, const rda *a, const char *mid, const char *nsp, const char *tail);
/* The end of a sockets operation's message: ,"rooms":[room] when room is not NULL, then ,"close":true|false
 * when with_close. Returns 0 or WSIO_ENOMEM. */
int rda_sockets_op_write(buf *b, const char *room, int with_close, int close);
/* A peer's socketsJoin / socketsLeave: the rooms array of msg applied to the sockets of a->tg (read
 * before). Returns 0, or WSIO_EPROTO when msg has no rooms array. */
int rda_rooms_apply(rda *a, const sio_json_span *msg, int join);
/* A peer's broadcast with acks of the packet in a->tmp (attachments [first, first + count)) to a->tg:
 * replies go to reply, the context ends by itself. Returns the number of local clients it reached (0 when
 * the namespace does not exist here); *rc gets a negative code when sio refused it. */
int rda_peer_broadcast_ack(rda *a, const char *nsp, const char *reqid, const char *uid, size_t first,
                           size_t count, uint32_t timeout_ms, sio_cluster_reply_fn reply, int *rc);
/* Marks c answered: 1 the first time while the adapter is alive, 0 after (nothing more to send). */
static inline int rda_ctx_claim(rda_ctx *c) {
  if (c->answered || c->a->dead) return 0;
  c->answered = 1;
  return 1;
}

void rda_free(sio_adapter *base);
/* Something that held the adapter's memory (a->nctx) let go of it: freed once the adapter is gone and
 * nothing holds it. */
void rda_unref(rda *a);
/* redis.c: asks Redis for the server count (PUBSUB numsub channel, summed over a cluster's primaries) of
 * request rid. */
int rda_server_count(rda *a, uint64_t rid, const char *numsub, const char *channel);

/* Hands r to the protocol as if the subscription connection had received it (the push path; also what
 * fuzz/fuzz_adapter.c drives). */
void rda_feed(rda *a, redisReply *r);

/* ---- redis_messages.c: ClusterAdapter messages on pub/sub ---- */

/* K#N# (tail NULL) or K#N#tail# into b. */
int rda_msg_chan(buf *b, const rda *a, const char *nsp, const char *tail);
/* Subscribes to K#N# and K#N#uid# (sharded or classic as the link is). */
int rda_msg_nsp_subscribe(rda *a, const char *nsp);
/* {"uid":..,"nsp":..,"type":T,"data":{  into b (reset); the caller writes data's members and "}}". */
int rda_msg_head(buf *b, const rda *a, const char *nsp, int type);
/* The message in b as it goes out: JSON as it is, or msgpack (in a->out2) when it carries binaries or the
 * protocol always packs (streams). */
int rda_msg_encode(rda *a, buf *b, const sio_bin *atts, size_t natts, const buf **out);
/* Publishes m on K#N# (or K#N#tail#). */
int rda_msg_send(rda *a, const char *nsp, const char *tail, const buf *m);
/* The vt's requests: broadcast with acks, fetchSockets, serverSideEmit, serverCount. */
int rda_msg_broadcast_ack(sio_adapter *base, uint64_t rid, const sio_targets *t, const char *pkt, size_t len,
                          const sio_bin *atts, size_t natts, uint32_t timeout_ms);
int rda_msg_fetch(sio_adapter *base, uint64_t rid, const sio_targets *t, uint32_t timeout_ms);
int rda_msg_sse(sio_adapter *base, uint64_t rid, const char *nsp, const char *data, size_t len,
                uint32_t timeout_ms);
int rda_msg_server_count(sio_adapter *base, uint64_t rid);
/* A peer's message {uid, nsp, type, data} decoded (data's attachments in a->in_atts), for namespace nsp;
 * offset: the stream entry's id when it came through a stream, else NULL. Counted as received. */
void rda_msg_dispatch(rda *a, const char *nsp, const char *uid, long long type, const sio_json_span *data,
                      const char *offset);
/* A pub/sub reply of the subscription connection (message or smessage). */
void rda_msg_push(rda *a, redisReply *r);

/* ---- the protocols ---- */
extern const rda_proto rda_classic;
extern const rda_proto rda_sharded;
extern const rda_proto rda_streams;

#endif
