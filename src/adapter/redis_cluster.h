/*
 * redis_cluster — the pure parts of speaking to a Redis Cluster: the hash slot of a key or channel, the
 * CLUSTER SLOTS topology and the -MOVED / -ASK redirections. No I/O and no allocation except where said;
 * the stateful part (connections per node, re-routing) is redis_link.c.
 */
#ifndef WSIO_ADAPTER_REDIS_CLUSTER_H
#define WSIO_ADAPTER_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RCL_SLOTS 16384

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection) of n bytes. */
uint16_t rcl_crc16(const void *p, size_t n);

/* Redis Cluster's slot of a key or sharded channel: the CRC16 of its hash tag (what lies between the first
 * '{' and the next '}', when that is not empty) or else of the whole name, mod 16384. */
unsigned rcl_keyslot(const char *name, size_t len);

/* One range of slots and the primary that serves it. host is borrowed from the reply parsed (not
 * NUL-terminated; hostlen 0 when Redis does not know the node's address: use the one asked). */
typedef struct rcl_range {
  unsigned start, end; /* inclusive */
  const char *host;
  size_t hostlen;
  int port;
} rcl_range;

/* Reads a CLUSTER SLOTS reply (array of [start, end, [host, port, id, ...], replicas...]) into out[cap].
 * Returns the number of ranges (>= 0), or -1 when the reply is not a well-formed CLUSTER SLOTS answer or
 * has more than cap ranges. Replicas are skipped: wsio only talks to primaries. */
int rcl_slots_parse(const redisReply *r, rcl_range *out, size_t cap);

/* An error reply's redirection: "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>". Returns 1 for
 * MOVED, 2 for ASK (slot, host/hostlen borrowed from msg, port filled), 0 for anything else. An empty host
 * (":port") means the node that sent the error. */
int rcl_redirect_parse(const char *msg, size_t len, unsigned *slot, const char **host, size_t *hostlen, int *port);

#endif
