/*
 * The streams protocol's state and what its two files share: redis_streams.c (entries out and in, the
 * queue while Redis is away, lifetime) and redis_streams_session.c (connection state recovery through
 * Redis: sessions saved and restored). Internal to src/adapter.
 */
#ifndef WSIO_ADAPTER_REDIS_STREAMS_H
#define WSIO_ADAPTER_REDIS_STREAMS_H

#include "adapter/redis_internal.h"
#include "adapter/redis_stream.h"
#include "adapter/redis_stream_read.h"

/* Local parts of this node's broadcasts waiting for their XADD's answer: past these (Redis far slower than
 * the broadcasts) a broadcast is delivered here at once, without an offset. */
#define RDS_PENDING_MAX 10000
#define RDS_PENDING_BYTES ((size_t)32 << 20)
/* Entries and sessions waiting while Redis is away: at most this many (and never more than maxLen, which
 * would trim them away as they go out), and this many bytes. */
#define RDS_QUEUE_MAX 10000
#define RDS_QUEUE_BYTES ((size_t)16 << 20)
#define RDS_ARGS_MAX 14
/* A restore reads the missed entries in pages of this many, at most this many pages (the package makes at
 * most 100 XRANGE calls too). */
#define RDS_RESTORE_PAGE 1000
#define RDS_RESTORE_PAGES 100

typedef struct rds_pending rds_pending;
typedef struct rds_cmd rds_cmd;
typedef struct rds_restore_ctx rds_restore_ctx;

typedef struct rds {
  rda *a;
  char *stream_name, *session_prefix;
  unsigned nstreams;
  uint32_t max_len, read_count, block_ms;
  char max_len_text[16];
  rsr **readers;               /* one per stream */
  unsigned nreaders;
  rds_pending *phead, *ptail;  /* this node's broadcasts, in order, waiting for their offsets */
  size_t npending, pbytes;
  rds_cmd *qhead, *qtail;      /* commands waiting for Redis */
  size_t nqueued, qbytes, queue_max;
  rds_restore_ctx *finished;      /* restores to complete from the loop (see rds_drain_soon) */
  unsigned restores;           /* in flight */
  uv_timer_t drain;
  int busy;                    /* inside one of the adapter's own functions */
  buf key, data, tmp, bin;     /* scratch */
  uint64_t saved, restored;
} rds;

/* Sends a command about argv[1] (a key), or while Redis is away queues it. cb (NULL: failures counted) as
 * rlink_command. Returns 0 (sent), 1 (queued) or a negative code (dropped, counted). */
int rds_send(rds *x, int argc, const char **argv, const size_t *lens, redis_reply_fn cb, void *ud);
void rds_queue_flush(rds *x);
/* Delivers the local parts that are ready, in order, and completes finished restores: now, or from the
 * loop when called back inside one of the adapter's own functions. */
void rds_drain(rds *x);
void rds_drain_soon(rds *x);

/* redis_streams_session.c: the vt's persist and restore, restores ready to complete, and the end. */
void rds_persist(sio_adapter *base, const sio_session_info *s);
int rds_restore(sio_adapter *base, uint64_t rid, const char *nsp, const char *pid, const char *offset);
void rds_finish_restores(rds *x);
void rds_sessions_stop(rds *x);

/* One stream entry, as a reader hands it over (also what fuzz/fuzz_adapter.c drives). */
void rds_feed_entry(rda *a, const redisReply *entry);

/* Adds the streams protocol's counters to out. */
void rds_stats(const rda *a, wsio_redis_stats *out);

#endif
