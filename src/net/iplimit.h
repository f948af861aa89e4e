/*
 * net_iplimit — limits per client address, shared by every loop of a process: open connections per address
 * and a token bucket of handshakes per address. Also net_bucket, the token bucket the layers above use for
 * messages per connection.
 *
 * The table is keyed by the address (IPv4: the 4 bytes; IPv6: its first ipv6_prefix bits, 64 by default,
 * as one host usually holds a whole /64) with the map's seeded SipHash, so clients cannot aim collisions.
 * It is bounded: an entry with no open connection sits on an idle list in least-recently-used order; it
 * expires once its bucket would be full again, and the oldest idle entry is evicted when the table is full.
 * Entries with open connections are never evicted (there are at most as many as open connections); when
 * max_entries of them exist, a connection from a new address is refused.
 *
 * Threading: every function but net_iplimit_ref/unref (an atomic count) and net_bucket_* takes the
 * limiter's mutex, so loops on several threads may share one limiter. Accepting and handshakes take it once
 * each; the message path never does, nor a connection handed to a loop that shares the table (its place
 * goes with it: net_handover in net.h).
 * Ownership: reference-counted; the creator holds one reference, each loop using it another, and each
 * connection on its way between loops one more.
 */
#ifndef WSIO_NET_IPLIMIT_H
#define WSIO_NET_IPLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "net/trust.h"

struct sockaddr;
typedef struct net_iplimit net_iplimit;
typedef struct net_ipent net_ipent;
typedef struct net_conn net_conn;

typedef struct net_iplimit_config {
  uint32_t max_conns;    /* open connections per address; 0: no limit */
  uint32_t rate;         /* handshakes per second per address; 0: no limit */
  uint32_t burst;        /* handshakes allowed at once; 0: max(rate, 1) */
  size_t max_entries;    /* addresses tracked at once; 0: NET_IPLIMIT_DEFAULT_ENTRIES */
  unsigned ipv6_prefix;  /* 1..128 bits of an IPv6 address that make its key; 0: 64 */
} net_iplimit_config;

/* About 100 bytes each: 256 Ki addresses are ~25 MiB at worst, reached only with that many addresses. */
#define NET_IPLIMIT_DEFAULT_ENTRIES (1u << 18)

typedef struct net_iplimit_stats {
  uint64_t entries;      /* addresses tracked now */
  uint64_t refused;      /* connections over max_conns (answered 503 or closed at accept) */
  uint64_t dropped;      /* of those, closed at accept (past twice max_conns, or the table full) */
  uint64_t limited;      /* handshakes refused for the rate */
  uint64_t evicted;      /* idle entries evicted early because the table was full */
} net_iplimit_stats;

/* Results of net_iplimit_acquire. */
enum {
  NET_IP_OK = 0,         /* admitted */
  NET_IP_OVER = 1,       /* over max_conns: answer "try again later" and close; counted until released */
  NET_IP_DROP = 2        /* close at once, without an answer; nothing to release */
};

/* A new limiter (cfg may be NULL: no limits yet). Returns NULL on ENOMEM. */
net_iplimit *net_iplimit_new(const net_iplimit_config *cfg);
net_iplimit *net_iplimit_ref(net_iplimit *t);
/* Drops a reference; the last one frees the table (every entry must have been released). */
void net_iplimit_unref(net_iplimit *t);
/* Changes the limits from now on; open connections and buckets are kept. */
void net_iplimit_configure(net_iplimit *t, const net_iplimit_config *cfg);
void net_iplimit_get_config(net_iplimit *t, net_iplimit_config *out);
void net_iplimit_stats_get(net_iplimit *t, net_iplimit_stats *out);

/* Admits a connection from addr (AF_INET or AF_INET6; anything else is admitted untracked: *ent NULL) at
 * now_ms (a monotonic clock shared by the callers). Returns NET_IP_OK or NET_IP_OVER with *ent set, to be
 * released when the connection closes, or NET_IP_DROP with *ent NULL. */
int net_iplimit_acquire(net_iplimit *t, const struct sockaddr *addr, uint64_t now_ms, net_ipent **ent);
void net_iplimit_release(net_iplimit *t, net_ipent *ent, uint64_t now_ms);
/* Takes one handshake token of ent's address. Returns 0, or the whole seconds until a token is due
 * (>= 1) when the bucket is empty (counted in stats.limited). ent NULL: 0. */
uint32_t net_iplimit_handshake(net_iplimit *t, net_ipent *ent, uint64_t now_ms);

/* The loop glue (src/net/iplimit.c): the clock, and the per-connection calls of the accept path and the
 * HTTP layer. net_conn_handshake_wait returns 0 or the seconds of Retry-After, counting the refusal in the
 * loop's stats. */
uint64_t net_iplimit_now(void);
uint32_t net_conn_handshake_wait(net_conn *c);

/* A connection whose peer is a trusted proxy (net_loop.trust, src/net/trust.h). Its requests may come from
 * different clients (a proxy keeps connections to its upstream open and sends any client's request on
 * them), so it is not counted at accept under the proxy's address: each request is counted under the
 * address of the client it is from, while it is being answered (net_conn_set_client ... the answer,
 * net_conn_client_done), and a request that takes the connection over (a WebSocket) keeps its client's
 * place until the connection closes. */
struct net_proxied {
  net_addr peer;               /* the proxy */
  net_addr client;             /* whom the current request is from: a forwarded address, or peer */
  uint8_t forwarded;           /* client was read from the request */
};

/* At accept, and for a connection adopted from another loop: looks c's peer up in the loop's trusted
 * proxies (c->proxied is set for a trusted one, which is not counted now), else, when count is set and the
 * loop has a per-address table, admits c in it by its peer's address. Returns 0 when c may proceed
 * (c->flags may then hold NET_CONN_IPOVER) or -1 when it was closed (past twice the limit, out of memory). */
int net_conn_admit(net_conn *c, int count);
/* A request on a proxied connection is from client (NULL: from the proxy itself; no header, or one that
 * could not be read): it becomes what net_conn_peer reports, and the connection's place in the per-address
 * table moves to that address (the previous request's is released first). Over max_conns, c->flags gets
 * NET_CONN_IPOVER, its answer is 503, counted in ip_refused; past twice the limit too (nothing is dropped:
 * the connection carries other clients' requests). */
void net_conn_set_client(net_conn *c, const net_addr *client);
/* The request set by net_conn_set_client has been answered: its place is released, NET_CONN_IPOVER
 * cleared. Nothing for a connection that is not proxied. */
void net_conn_client_done(net_conn *c);

/* A token bucket in thousandths of a token: small enough to live in every connection. Not locked. */
typedef struct net_bucket {
  uint32_t milli;        /* tokens available, x1000 */
  uint32_t stamp;        /* ms (a wrapping clock) of the last refill */
} net_bucket;

static inline void net_bucket_init(net_bucket *b, uint32_t burst, uint64_t now_ms) {
  uint64_t m = (uint64_t)burst * 1000u;
  b->milli = m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
  b->stamp = (uint32_t)now_ms;
}

/* Takes one token for a bucket refilled at rate per second up to burst. Returns 1 if taken, 0 if empty. */
static inline int net_bucket_take(net_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ms) {
  uint32_t now = (uint32_t)now_ms;
  uint64_t cap = (uint64_t)burst * 1000u;
  if (cap > UINT32_MAX) cap = UINT32_MAX;
  /* A rate of r per second is r thousandths per millisecond. */
  uint64_t m = b->milli + (uint64_t)(uint32_t)(now - b->stamp) * rate;
  b->milli = (uint32_t)(m < cap ? m : cap);
  b->stamp = now;
  if (b->milli < 1000u) return 0;
  b->milli -= 1000u;
  return 1;
}

#endif
