/* net_iplimit: the per-address table (a seeded-hash map under a mutex) and its glue to the accept path. */
#include "net/iplimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "net/net.h"
#include "util/log.h"
#include "util/map.h"
#include "wsio.h"

struct net_ipent {
  net_ipent *prev, *next;      /* the idle list (conns == 0), oldest first */
  uint64_t stamp;              /* ms: last bucket refill; for an idle entry also when it went idle */
  uint64_t milli;              /* handshake tokens x1000 */
  uint32_t conns;              /* open connections, those answered 503 included */
  uint8_t idle;                /* on the idle list */
  uint8_t key_len;
  uint8_t key[17];             /* family byte, then the address bytes kept */
};

struct net_iplimit {
  pthread_mutex_t mu;
  atomic_int refs;             /* outside the mutex: a connection handed between loops takes one */
  net_iplimit_config cfg;
  map m;
  net_ipent *idle_head, *idle_tail;
  net_iplimit_stats st;
};

static void set_config(net_iplimit *t, const net_iplimit_config *cfg) {
  net_iplimit_config c = cfg ? *cfg : (net_iplimit_config){0};
  if (!c.burst) c.burst = c.rate ? c.rate : 1;
  if (!c.max_entries) c.max_entries = NET_IPLIMIT_DEFAULT_ENTRIES;
  if (!c.ipv6_prefix || c.ipv6_prefix > 128) c.ipv6_prefix = 64;
  t->cfg = c;
}

net_iplimit *net_iplimit_new(const net_iplimit_config *cfg) {
  net_iplimit *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (pthread_mutex_init(&t->mu, NULL) != 0) {
    free(t);
    return NULL;
  }
  atomic_init(&t->refs, 1);
  set_config(t, cfg);
  return t;
}

net_iplimit *net_iplimit_ref(net_iplimit *t) {
  atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  return t;
}

void net_iplimit_unref(net_iplimit *t) {
  if (!t) return;
  /* Release, and acquire for the last one: what every thread did to the table happens before its free. */
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
  size_t i = 0;
  map_entry *e;
  while (map_next(&t->m, &i, &e)) free(e->value);
  map_free(&t->m);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

void net_iplimit_configure(net_iplimit *t, const net_iplimit_config *cfg) {
  pthread_mutex_lock(&t->mu);
  set_config(t, cfg);
  pthread_mutex_unlock(&t->mu);
}

void net_iplimit_get_config(net_iplimit *t, net_iplimit_config *out) {
  pthread_mutex_lock(&t->mu);
  *out = t->cfg;
  pthread_mutex_unlock(&t->mu);
}

void net_iplimit_stats_get(net_iplimit *t, net_iplimit_stats *out) {
  pthread_mutex_lock(&t->mu);
  *out = t->st;
  out->entries = t->m.count;
  pthread_mutex_unlock(&t->mu);
}

/* ---- the table (mutex held) ---- */

static int make_key(const net_iplimit *t, const struct sockaddr *sa, uint8_t key[17]) {
  if (sa->sa_family == AF_INET) {
    key[0] = 4;
    memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 5;
  }
  if (sa->sa_family != AF_INET6) return 0;
  const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(a, v4mapped, 12) == 0) { /* a dual-stack listener's IPv4 client is that IPv4 address */
    key[0] = 4;
    memcpy(key + 1, a + 12, 4);
    return 5;
  }
  unsigned bits = t->cfg.ipv6_prefix, bytes = (bits + 7) / 8;
  key[0] = 6;
  memcpy(key + 1, a, bytes);
  if (bits % 8) key[bytes] &= (uint8_t)(0xff00u >> (bits % 8));
  return 1 + (int)bytes;
}

static void idle_unlink(net_iplimit *t, net_ipent *e) {
  if (!e->idle) return;
  if (e->prev) e->prev->next = e->next;
  else t->idle_head = e->next;
  if (e->next) e->next->prev = e->prev;
  else t->idle_tail = e->prev;
  e->prev = e->next = NULL;
  e->idle = 0;
}

static void idle_push(net_iplimit *t, net_ipent *e) {
  e->prev = t->idle_tail;
  e->next = NULL;
  if (t->idle_tail) t->idle_tail->next = e;
  else t->idle_head = e;
  t->idle_tail = e;
  e->idle = 1;
}

static void drop_entry(net_iplimit *t, net_ipent *e) {
  idle_unlink(t, e);
  map_del(&t->m, e->key, e->key_len);
  free(e);
}

/* An idle entry can go once its bucket has refilled: forgetting it then loses nothing. */
static int expired(const net_iplimit *t, const net_ipent *e, uint64_t now) {
  if (!t->cfg.rate) return 1;
  uint64_t full_ms = ((uint64_t)t->cfg.burst * 1000u + t->cfg.rate - 1) / t->cfg.rate;
  return now >= e->stamp + full_ms;
}

static void refill(const net_iplimit *t, net_ipent *e, uint64_t now) {
  uint64_t cap = (uint64_t)t->cfg.burst * 1000u;
  if (now > e->stamp) e->milli += (now - e->stamp) * t->cfg.rate;
  if (e->milli > cap) e->milli = cap;
  e->stamp = now;
}

int net_iplimit_acquire(net_iplimit *t, const struct sockaddr *addr, uint64_t now_ms, net_ipent **ent) {
  *ent = NULL;
  uint8_t key[17];
  int klen = make_key(t, addr, key);
  if (!klen) return NET_IP_OK;
  pthread_mutex_lock(&t->mu);
  /* Two expired idle entries go per lookup: the table shrinks back as fast as a flood can grow it. */
  for (int i = 0; i < 2 && t->idle_head && expired(t, t->idle_head, now_ms); i++) drop_entry(t, t->idle_head);
  int rc = NET_IP_OK;
  net_ipent *e = map_get(&t->m, key, (size_t)klen);
  if (!e) {
    if (t->m.count >= t->cfg.max_entries) {
      if (!t->idle_head) {
        /* Every tracked address has open connections: a new one is refused rather than let the table grow. */
        t->st.refused++;
        t->st.dropped++;
        pthread_mutex_unlock(&t->mu);
        return NET_IP_DROP;
      }
      drop_entry(t, t->idle_head);
      t->st.evicted++;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
      pthread_mutex_unlock(&t->mu);
      return NET_IP_OK; /* out of memory: admitted untracked rather than refused */
    }
    memcpy(e->key, key, (size_t)klen);
    e->key_len = (uint8_t)klen;
    e->stamp = now_ms;
    e->milli = (uint64_t)t->cfg.burst * 1000u;
    if (map_put(&t->m, e->key, e->key_len, e) != 0) {
      free(e);
      pthread_mutex_unlock(&t->mu);
      return NET_IP_OK;
    }
  }
  uint32_t max = t->cfg.max_conns;
  if (max && e->conns >= max) {
    t->st.refused++;
    /* As many again are told to come back later; past that they cost no more than an accept. */
    if (e->conns >= 2 * (uint64_t)max) {
      t->st.dropped++;
      pthread_mutex_unlock(&t->mu);
      return NET_IP_DROP;
    }
    rc = NET_IP_OVER;
  }
  idle_unlink(t, e);
  e->conns++;
  *ent = e;
  pthread_mutex_unlock(&t->mu);
  return rc;
}

void net_iplimit_release(net_iplimit *t, net_ipent *e, uint64_t now_ms) {
  if (!e) return;
  pthread_mutex_lock(&t->mu);
  if (e->conns && --e->conns == 0) {
    if (t->cfg.rate) refill(t, e, now_ms);
    else e->stamp = now_ms;
    idle_push(t, e);
  }
  pthread_mutex_unlock(&t->mu);
}

uint32_t net_iplimit_handshake(net_iplimit *t, net_ipent *e, uint64_t now_ms) {
  if (!e) return 0;
  pthread_mutex_lock(&t->mu);
  uint32_t wait = 0;
  if (t->cfg.rate) {
    refill(t, e, now_ms);
    if (e->milli >= 1000u) {
      e->milli -= 1000u;
    } else {
      uint64_t ms = (1000u - e->milli + t->cfg.rate - 1) / t->cfg.rate;
      wait = (uint32_t)((ms + 999) / 1000);
      if (!wait) wait = 1;
      t->st.limited++;
    }
  }
  pthread_mutex_unlock(&t->mu);
  return wait;
}

/* ---- the loop glue ---- */

/* Monotonic, the same for every thread (uv_now is per loop and only updated once per iteration). */
uint64_t net_iplimit_now(void) { return uv_hrtime() / 1000000u; }

int net_conn_admit(net_conn *c, int count) {
  net_loop *l = c->loop;
  struct sockaddr_storage addr;
  int len = sizeof addr;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) != 0) return 0;
  net_addr peer;
  if (l->trust && net_addr_from_sockaddr((struct sockaddr *)&addr, &peer) == 0 && net_trust_match(l->trust, &peer)) {
    if (!(c->proxied = calloc(1, sizeof *c->proxied))) {
      net_conn_close(c);
      return -1;
    }
    c->proxied->peer = c->proxied->client = peer;
    return 0; /* counted per request, under the client each one names */
  }
  if (!count || !l->iplimit) return 0;
  int rc = net_iplimit_acquire(l->iplimit, (struct sockaddr *)&addr, net_iplimit_now(), &c->ip);
  if (rc == NET_IP_OK) return 0;
  l->stats.ip_refused++;
  if (rc == NET_IP_OVER) {
    c->flags |= NET_CONN_IPOVER; /* the HTTP layer answers its first request with 503 */
    return 0;
  }
  log_debug("connections per address: closing a connection at accept");
  net_conn_close(c);
  return -1;
}

void net_conn_client_done(net_conn *c) {
  if (!c->proxied) return;
  if (c->ip) net_iplimit_release(c->loop->iplimit, c->ip, net_iplimit_now());
  c->ip = NULL;
  c->flags &= ~NET_CONN_IPOVER;
}

void net_conn_set_client(net_conn *c, const net_addr *client) {
  net_proxied *p = c->proxied;
  if (!p) return;
  p->forwarded = client != NULL;
  p->client = client ? *client : p->peer;
  net_conn_client_done(c);
  net_loop *l = c->loop;
  if (!l->iplimit) return;
  struct sockaddr_storage addr;
  net_addr_to_sockaddr(&p->client, &addr);
  int rc = net_iplimit_acquire(l->iplimit, (struct sockaddr *)&addr, net_iplimit_now(), &c->ip);
  if (rc == NET_IP_OK) return;
  l->stats.ip_refused++;
  c->flags |= NET_CONN_IPOVER; /* NET_IP_DROP too: the connection is the proxy's, the answer the client's */
}

uint32_t net_conn_handshake_wait(net_conn *c) {
  if (!c->ip || !c->loop->iplimit) return 0;
  uint32_t wait = net_iplimit_handshake(c->loop->iplimit, c->ip, net_iplimit_now());
  if (wait) c->loop->stats.handshakes_limited++;
  return wait;
}
