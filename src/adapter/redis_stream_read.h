/*
 * rsr — one Redis stream read without end, as @socket.io/redis-streams-adapter's polling loop does: XREAD
 * BLOCK on a connection of its own (a blocked connection can serve nothing else), COUNT entries at a time.
 *
 * Where it starts: the stream's last entry when the reader starts (XREVRANGE + - COUNT 1; an empty or
 * missing stream: 0-0), so that nothing added after the start is missed, not even between two reads; the
 * package's "$" on every read until the first entry would miss what comes between. After that, the id of
 * the last entry read: when the connection breaks (Redis restarted, a failover, a network fault) the reader
 * reconnects with back-off and reads on from there, so entries added meanwhile are read, not skipped.
 *
 * Which server: the one the link says holds the stream's key (rlink_addr): the one server, the Sentinel
 * master, or the cluster primary of the key's slot; rsr_tick follows a change. A read unanswered for the
 * block time plus RSR_GRACE_MS means a silent peer: the connection is dropped and made again. An error
 * reply (the key is not a stream, a redirection) is retried every RSR_RETRY_MS, logged once.
 *
 * Memory: one reply at a time, bounded by redis_conn's reply cap; entries are handed over as they are read.
 * Threading: the loop's thread only.
 */
#ifndef WSIO_ADAPTER_REDIS_STREAM_READ_H
#define WSIO_ADAPTER_REDIS_STREAM_READ_H

#include <stdint.h>

#include <uv.h>

#include "adapter/redis_conn.h"
#include "adapter/redis_link.h"

#define RSR_GRACE_MS 10000
#define RSR_RETRY_MS 1000

typedef struct rsr rsr;

/* One entry of the stream, [id, [field, value, ...]] as Redis sent it (not checked: rsx_entry_read),
 * borrowed for the call. The reader moves past it whatever the callback makes of it. */
typedef void (*rsr_entry_fn)(void *ud, const redisReply *entry);

typedef struct rsr_config {
  rlink *link;                 /* where the stream is, and the topology's refresh on a redirection */
  const redis_url *url;        /* credentials and db (copied by the connection) */
  const char *stream;          /* copied */
  uint32_t count;              /* entries per XREAD */
  uint32_t block_ms;           /* XREAD BLOCK */
  uint32_t connect_timeout_ms, backoff_max_ms;
} rsr_config;

typedef struct rsr_stats {
  int up;                      /* its connection is up */
  uint64_t connects, failures;
  uint64_t entries;            /* entries read */
} rsr_stats;

/* Creates the reader and starts reading (once the link knows where the stream is). NULL on ENOMEM. */
rsr *rsr_new(uv_loop_t *loop, const rsr_config *cfg, rsr_entry_fn fn, void *ud);
/* Follows the stream's server, and drops a read unanswered too long. The owner calls it every second and
 * whenever the link's connections come up. */
void rsr_tick(rsr *r);
void rsr_stats_get(const rsr *r, rsr_stats *out);
/* The id of the last entry read ("" before the start point is known). */
const char *rsr_last(const rsr *r);
/* Stops: no callback runs once it returns; the memory goes once libuv has let go of the handles. */
void rsr_free(rsr *r);

#endif
