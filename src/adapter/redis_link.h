/*
 * redis_link — what the Redis adapter needs from Redis, over one server or a Redis Cluster: publish, the
 * set of subscriptions to hold, subscriber counts, state and counters. redis_adapter.c, redis.c and
 * redis_sharded.c talk to this only; the connections (redis_conn) are this module's.
 *
 * One server: a command connection ("publish") and a pub/sub connection ("subscribe"), as always.
 * Redis Cluster (the server named by the URL reports cluster_enabled:1): the topology comes from CLUSTER
 * SLOTS, asked of any known node, and there is a command connection per primary. Sharded subscriptions
 * and SPUBLISH go to the primary that owns the channel's slot, on one pub/sub connection per primary that
 * holds channels. Classic pub/sub crosses the whole cluster, so classic subscriptions are held on one
 * primary (the "home") and PUBLISH goes to any; subscriber counts are summed over every primary, as
 * @socket.io/redis-adapter does over a cluster client. A -MOVED or -ASK reply, a slot moved away under a
 * sharded subscription (Redis 7 then sends "sunsubscribe") or a command connection lost make the link ask
 * for the topology again (at most every RLINK_REFRESH_MIN_MS, and every RLINK_REFRESH_EVERY_MS anyway, or
 * every RLINK_REFRESH_DOWN_MS while a primary is unreachable or the topology cannot be read: a dead
 * primary's replica takes over within seconds, and only the topology says when), then move the
 * subscriptions where they belong; a sharded message or a command about a key that a -MOVED or -ASK refused
 * (so not run) is sent once more, where the redirection says: it is copied while in flight, within a byte
 * budget.
 *
 * A cluster that grows: a node the link has not met (a primary added, named by the topology or by a
 * redirection) is connected to at once, as the others are (credentials, TLS); until that first connection is
 * up, the commands for it (a redirection followed, a slot it now serves) wait for it, in order, within the
 * byte budget and RLINK_WAIT_MAX, and fail as for a node away if the connection cannot be made. A node that
 * serves no slot any more (gone from the cluster) is let go at a topology read once no command is in flight
 * there.
 * Otherwise nothing is queued while a node is away: what cannot be sent is refused (and counted by the
 * caller) or, when Redis refuses it later, counted as lost.
 *
 * Redis Sentinel (a redis+sentinel:// URL): as for one server, the master the sentinels name
 * (redis_sentinel.h). When they name another (a failover), the link drops the old server's connections and
 * opens both connections to the new one, which then subscribes everything again; while the master's
 * command connection is down the sentinels are asked every second.
 *
 * The mode is given at creation when known (the adapter probes the server at start); when not (a degraded
 * start with Redis away), the link starts as for one server and asks INFO cluster at its first connection.
 *
 * Ownership: the link copies its config; replies handed to callbacks are borrowed for the call.
 * Threading: the loop's thread only.
 */
#ifndef WSIO_ADAPTER_REDIS_LINK_H
#define WSIO_ADAPTER_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "adapter/redis_conn.h"

#define RLINK_REFRESH_MIN_MS 300
#define RLINK_REFRESH_EVERY_MS 10000
#define RLINK_REFRESH_DOWN_MS 1000
/* Cluster commands waiting for new nodes' first connections, at most (each costs a record besides its
 * copy, which counts against the retry budget): past it they fail as for a node away. */
#define RLINK_WAIT_MAX 4096

enum { RLINK_CHANNEL = 0, RLINK_PATTERN = 1, RLINK_SHARD = 2 };
enum { RLINK_DETECT = -1, RLINK_SINGLE = 0, RLINK_CLUSTER = 1, RLINK_SENTINEL = 2 };

typedef struct rlink rlink;

typedef struct rlink_config {
  const redis_url *url;          /* copied; in cluster mode its db is ignored (a cluster has only db 0) */
  int sharded;                   /* publish with SPUBLISH (else PUBLISH) */
  int mode;                      /* RLINK_SINGLE, RLINK_CLUSTER, RLINK_DETECT (ask at the first connection),
                                  * or RLINK_SENTINEL (url has sentinels; its host, when set, is the master) */
  uint32_t connect_timeout_ms;   /* per attempt; 0: 2000 */
  uint32_t backoff_max_ms;       /* 0: 5000 */
  void (*on_up)(void *ud);       /* optional: a command connection came up (the first, or back) */
} rlink_config;

/* A pub/sub reply (message, pmessage, smessage, confirmations), borrowed for the call. */
typedef void (*rlink_push_fn)(void *ud, redisReply *r);

/* The sum of a PUBSUB NUMSUB / SHARDNUMSUB over the primaries that answered (0 when none did). */
typedef void (*rlink_count_fn)(void *ud, long long n);

typedef struct rlink_stats {
  int up;               /* every connection needed is up (and, on a cluster, the topology is known) */
  int cluster;
  unsigned primaries;
  uint64_t connects, failures; /* of every connection, those of nodes gone included */
  uint64_t lost;        /* messages handed over but refused by Redis (a redirection not followed, CLUSTERDOWN),
                         * or waiting for a new node that could not be reached */
  uint64_t refreshes;   /* topologies read */
  uint64_t redirects;   /* -MOVED / -ASK replies, and sharded subscriptions dropped by a node */
  int sentinel;
  uint64_t switches;    /* Sentinel: masters changed to (the first one not counted) */
} rlink_stats;

/* Creates the link and starts connecting. Returns NULL on ENOMEM or a bad config. */
rlink *rlink_new(uv_loop_t *loop, const rlink_config *cfg, rlink_push_fn on_push, void *ud);

/* Adds a subscription (kind RLINK_*) to the set held: subscribed now when its connection is up, and again
 * whenever that connection comes back or the channel's slot moves. Returns 0 or WSIO_ENOMEM. */
int rlink_subscribe(rlink *l, const char *name, size_t len, int kind);
void rlink_unsubscribe(rlink *l, const char *name, size_t len);
/* 1 when the subscription to name is in the set and its connection is up. */
int rlink_holds(const rlink *l, const char *name, size_t len);

/* PUBLISH or SPUBLISH. Returns 0 (handed to Redis, or on a cluster waiting for a new node's first
 * connection), WSIO_ECLOSED (no connection up for it), WSIO_ELIMIT (output over its limit) or WSIO_ENOMEM;
 * nothing is kept when it fails. */
int rlink_publish(rlink *l, const char *channel, size_t clen, const void *msg, size_t len);

/* PUBSUB <which> channel on every primary (which: "NUMSUB" or "SHARDNUMSUB"). cb runs once, later (with 0
 * when the connections go first, also when the link is freed). Returns 0, or a negative code when nothing
 * was sent (cb not called). */
int rlink_numsub(rlink *l, const char *which, const char *channel, rlink_count_fn cb, void *ud);

/* Which server holds key now: the one server (or the Sentinel master), or on a cluster the primary that
 * owns key's slot. Returns 0 and sets *host (borrowed until the topology changes) and *port, or
 * WSIO_ECLOSED when it is not known yet. */
int rlink_addr(const rlink *l, const char *key, size_t klen, const char **host, int *port);

/* A command about key, on the command connection of the server that holds it. cb (may be NULL) gets the
 * reply, borrowed, or NULL when the connection went first or a new node it waited for could not be reached
 * (also at rlink_free). A -MOVED/-ASK reply makes the link read the topology again, and on a cluster the
 * command is sent once more where it says (within the retry budget; to a node not met yet once connected):
 * only a second redirection, or one that cannot be followed, reaches cb as the error it is. Returns 0, or
 * WSIO_ECLOSED, WSIO_ELIMIT, WSIO_ENOMEM (nothing sent, cb not called). */
int rlink_command(rlink *l, const char *key, size_t klen, redis_reply_fn cb, void *ud, int argc, const char **argv,
                  const size_t *lens);

/* On a cluster, reads the topology again soon (a reply of a connection the link does not own said -MOVED or
 * -ASK); nothing otherwise. */
void rlink_refresh(rlink *l);

/* Whether a publish could be handed to Redis now (some command connection is up). */
int rlink_up(const rlink *l);
void rlink_stats_get(const rlink *l, rlink_stats *out);

/* Stops and frees: callbacks of commands in flight run now (counts with 0); none runs after it returns. */
void rlink_free(rlink *l);

#endif
