/*
 * redis_sentinel — which server the Redis Sentinels of a URL name master, followed while running.
 *
 * One command connection to one sentinel asks SENTINEL get-master-addr-by-name: when it connects, every
 * RSEN_EVERY_MS, every RSEN_DOWN_MS while the owner says its master is away (rsen_urgent), and when the
 * owner asks (rsen_ask). A pub/sub connection to the same sentinel hears +switch-master, so a failover is
 * known as soon as the sentinels complete it. A sentinel that cannot be reached is left for the next one
 * in the URL's list. The callback gets every answer; the owner compares it with the master it uses. The
 * sentinels are asked with the URL's sentinel credentials (AUTH before anything else) and over TLS when it
 * is rediss+sentinel://.
 *
 * Ownership: copies what it needs of the URL. Threading: the loop's thread only.
 */
#ifndef WSIO_ADAPTER_REDIS_SENTINEL_H
#define WSIO_ADAPTER_REDIS_SENTINEL_H

#include <stdint.h>

#include <uv.h>

#include "adapter/redis_conn.h"

#define RSEN_EVERY_MS 10000
#define RSEN_DOWN_MS 1000

typedef struct rsen rsen;

/* The master's address as a sentinel gave it (host borrowed for the call). */
typedef void (*rsen_master_fn)(void *ud, const char *host, int port);

/* Starts watching url->master through url->sentinels. Returns NULL on ENOMEM or a URL without Sentinel. */
rsen *rsen_new(uv_loop_t *loop, const redis_url *url, uint32_t connect_timeout_ms, uint32_t backoff_max_ms,
               rsen_master_fn cb, void *ud);
/* Asks now, if the sentinel connection is up (else when it comes up). */
void rsen_ask(rsen *s);
/* on: the owner's master is away; ask every RSEN_DOWN_MS until it is back (off). */
void rsen_urgent(rsen *s, int on);
/* 1 while a sentinel connection is up. */
int rsen_up(const rsen *s);
void rsen_free(rsen *s);

#endif
