/*
 * redis_conn — one connection to a Redis server on a libuv loop, reconnecting by itself.
 *
 * Built on hiredis's reply reader and command formatter over a uv_tcp_t of our own rather than hiredis's
 * async context: hiredis 0.14's async layer only knows the pub/sub replies of Redis 6 (message, pmessage)
 * and asserts on sharded ones (smessage), and one connection module gives both adapters the same
 * reconnect, back-off, bounded output and state reporting.
 *
 * Two modes. Command mode: replies are matched in order to the callbacks given with each command.
 * Pub/sub mode: every reply (subscription confirmations, messages) goes to the on_push callback, and commands
 * take no callback. After a (re)connection the connection authenticates and selects the database before it
 * reports up; the owner re-sends its subscriptions from on_up.
 *
 * TLS (a rediss:// URL): the session of redis_tls.h runs between the socket and the reply reader; the
 * handshake is part of connecting (its failure is a failed attempt, retried, its reason logged).
 *
 * Addresses: a host name that resolves to several addresses (localhost as ::1 and 127.0.0.1) is tried at each
 * in turn, up to four, before the attempt counts as failed.
 * Faults: a lost connection fails the callbacks of commands in flight (reply NULL), reports down once, and
 * retries with exponential back-off (capped, with jitter). Commands issued while not up are refused
 * (WSIO_ECLOSED) rather than queued: nothing grows while Redis is away. Output is bounded too (WSIO_ELIMIT).
 * Threading: the loop's thread only.
 */
#ifndef WSIO_ADAPTER_REDIS_CONN_H
#define WSIO_ADAPTER_REDIS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "adapter/redis_tls.h"
#include "wsio.h"

typedef struct redis_addr {
  char *host;
  int port;
} redis_addr;

/* redis://[[user]:password@]host[:port][/db], or, through Redis Sentinel,
 * redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db] naming the sentinels
 * (port 26379 by default) and the master they watch. The credentials and db are the data servers'; the
 * sentinels' own credentials are set apart (redis_url_apply). rediss:// and rediss+sentinel:// are the same
 * over TLS: every connection then speaks TLS, to the server, to each Redis Cluster node, to the sentinels
 * and to the master they name. */
typedef struct redis_url {
  char *host;     /* the server; with Sentinel the master once known, NULL before */
  int port;
  char *user;     /* NULL: AUTH with the password alone (or no AUTH) */
  char *password; /* NULL: no AUTH */
  int db;
  char *master;   /* Sentinel: the master's name; NULL: no Sentinel */
  redis_addr *sentinels;
  size_t nsentinels;
  int tls;        /* rediss:// or rediss+sentinel:// */
  /* Not from the URL: set by redis_url_apply. */
  char *sentinel_user;     /* NULL: AUTH with the sentinel password alone */
  char *sentinel_password; /* NULL: the sentinels are asked without AUTH */
  rtls_ctx *tls_ctx;       /* with tls: the context every connection uses (a reference held) */
} redis_url;

#define REDIS_MAX_SENTINELS 16

/* Parses url into out (strings allocated; redis_url_free). Returns 0, WSIO_EINVAL or WSIO_ENOMEM. */
int redis_url_parse(const char *url, redis_url *out);
/* The same, and on WSIO_EINVAL what is wrong in why (never the credentials). */
int redis_url_parse_why(const char *url, redis_url *out, char *why, size_t whycap);
/* The settings of cfg that the URL cannot hold: the sentinels' credentials, and with a TLS URL the TLS
 * context (its files read now). Settings that do not fit the URL are refused: TLS settings without
 * rediss, Sentinel credentials without Sentinel, a user name without a password. Logs the reason of a
 * refusal, and a warning when verification is off. Returns 0, WSIO_EINVAL, WSIO_ETLS (a TLS file) or
 * WSIO_ENOMEM. */
int redis_url_apply(redis_url *u, const wsio_redis_config *cfg);
/* A deep copy (the TLS context shared). Returns 0 or WSIO_ENOMEM (dst then holds nothing to free). */
int redis_url_copy(redis_url *dst, const redis_url *src);
void redis_url_free(redis_url *u);

typedef struct redis_conn redis_conn;

/* A command's reply: borrowed for the call. NULL when the connection was lost before it came. */
typedef void (*redis_reply_fn)(void *ud, redisReply *r);

typedef struct redis_conn_cbs {
  void (*on_up)(redis_conn *c, void *ud);
  void (*on_down)(redis_conn *c, void *ud);  /* a connection that was up is lost */
  void (*on_fail)(redis_conn *c, void *ud);  /* an attempt failed before the connection came up */
  void (*on_push)(redis_conn *c, redisReply *r, void *ud); /* pub/sub mode; r borrowed */
} redis_conn_cbs;

typedef struct redis_conn_config {
  const redis_url *url;        /* copied */
  const char *name;            /* for log lines, e.g. "pub" */
  int pubsub;
  uint32_t connect_timeout_ms; /* 0: 2000 */
  uint32_t backoff_max_ms;     /* 0: 5000 */
  size_t max_out;              /* bytes queued for writing; 0: 64 MiB */
  size_t max_reply;            /* bytes of one reply being read; 0: 256 MiB (Redis's own cap is 512) */
} redis_conn_config;

typedef struct redis_conn_stats {
  int up;
  uint64_t connects;   /* successful connections, the first included */
  uint64_t failures;   /* attempts that failed and connections lost */
} redis_conn_stats;

/* Creates the connection and starts connecting. Returns NULL on ENOMEM or a bad config. */
redis_conn *redis_conn_new(uv_loop_t *loop, const redis_conn_config *cfg, const redis_conn_cbs *cbs, void *ud);

/* Queues one command (argv[i] of lens[i] bytes, copied). cb (command mode; may be NULL) runs with the reply.
 * Returns 0, WSIO_ECLOSED (not up: dropped, cb not called), WSIO_ELIMIT (output over max_out: dropped) or
 * WSIO_ENOMEM. */
int redis_conn_cmd(redis_conn *c, redis_reply_fn cb, void *ud, int argc, const char **argv, const size_t *lens);

int redis_conn_up(const redis_conn *c);
/* Drops the connection as if it had broken (why is logged), then reconnects with back-off: for an owner
 * whose blocking command has gone unanswered too long (a silent peer). Nothing when not connected. */
void redis_conn_reset(redis_conn *c, const char *why);
void redis_conn_stats_get(const redis_conn *c, redis_conn_stats *out);

/* Stops and frees (the memory goes once libuv has released the handles). Callbacks of commands in flight
 * run now with a NULL reply; no callback runs after this returns. */
void redis_conn_free(redis_conn *c);

/* One blocking round trip (connect, TLS with u->tls, AUTH, INFO cluster, SELECT or PING) with a timeout:
 * whether Redis can be reached at start, and whether it is a Redis Cluster node (*cluster 1; its
 * cluster_state must be ok). Returns 0, WSIO_EIO (unreachable, or a cluster not ok; the reason in err),
 * WSIO_ETLS (the TLS handshake failed: OpenSSL's reason in err), WSIO_EPROTO (refused AUTH/SELECT). */
int redis_probe(const redis_url *u, uint32_t timeout_ms, char *err, size_t errcap, int *cluster);

/* Redis Sentinel: asks the sentinels of u in turn (blocking, timeout_ms each; with the sentinel credentials
 * and TLS of u) for the address of u->master and sets u->host and u->port. Returns 0, WSIO_EIO (none
 * answered with it; the last reason in err), WSIO_ETLS (the last one failed in TLS) or WSIO_ENOMEM. With u->master set, redis_probe also checks that the server is a master (ROLE). */
int redis_sentinel_resolve(redis_url *u, uint32_t timeout_ms, char *err, size_t errcap);
/* Reads a SENTINEL get-master-addr-by-name reply into host (cap bytes) and *port. Returns 0, WSIO_ENOTFOUND
 * (a nil: the sentinel does not know the name) or WSIO_EPROTO. */
int redis_sentinel_reply(const redisReply *r, char *host, size_t cap, int *port);

#endif
