/* redis_link: the adapter's Redis, one server, a Redis Cluster or through Sentinel (see redis_link.h); what
 * only a cluster needs is redis_link_cluster.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_cluster.h"
#include "adapter/redis_link_internal.h"
#include "util/log.h"
#include "wsio.h"

static void node_sub_up(redis_conn *c, void *ud);
static void node_sub_push(redis_conn *c, redisReply *r, void *ud);
static void node_cmd_up(redis_conn *c, void *ud);
static void node_cmd_down(redis_conn *c, void *ud);
static void node_cmd_fail(redis_conn *c, void *ud);

/* ---- nodes ---- */

static redis_conn *conn_open(rlink *l, rl_node *n, int pubsub) {
  redis_url u = l->url;
  u.host = n->host;
  u.port = n->port;
  if (l->mode == RLINK_CLUSTER) u.db = 0;
  char name[64];
  const char *role = pubsub ? "subscribe" : "publish";
  if (l->mode == RLINK_CLUSTER || l->mode == RLINK_SENTINEL) /* the server changes: say which */
    snprintf(name, sizeof name, "%s %s:%d", role, n->host, n->port);
  else
    snprintf(name, sizeof name, "%s", role);
  redis_conn_config cc = {.url = &u, .name = name, .pubsub = pubsub, .connect_timeout_ms = l->cto,
                          .backoff_max_ms = l->backoff};
  redis_conn_cbs cmd = {.on_up = node_cmd_up, .on_down = node_cmd_down, .on_fail = node_cmd_fail};
  redis_conn_cbs sub = {.on_up = node_sub_up, .on_push = node_sub_push};
  return redis_conn_new(l->loop, &cc, pubsub ? &sub : &cmd, n);
}

static rl_node *node_find(rlink *l, const char *host, size_t hlen, int port) {
  for (size_t i = 0; i < l->nnodes; i++) {
    rl_node *n = l->nodes[i];
    if (n->port == port && strlen(n->host) == hlen && memcmp(n->host, host, hlen) == 0) return n;
  }
  return NULL;
}

rl_node *rl_node_get(rlink *l, const char *host, size_t hlen, int port) {
  rl_node *n = node_find(l, host, hlen, port);
  if (n || l->nnodes >= RL_MAX_NODES) return n;
  rl_node **v = realloc(l->nodes, (l->nnodes + 1) * sizeof *v);
  if (!v) return NULL;
  l->nodes = v;
  n = calloc(1, sizeof *n);
  if (!n || !(n->host = malloc(hlen + 1))) {
    free(n);
    return NULL;
  }
  memcpy(n->host, host, hlen);
  n->host[hlen] = 0;
  n->port = port;
  n->l = l;
  n->fresh = 1;
  n->wait_end = &n->wait;
  n->cmd = conn_open(l, n, 0);
  if (!n->cmd) {
    free(n->host);
    free(n);
    return NULL;
  }
  l->nodes[l->nnodes++] = n;
  return n;
}

void rl_node_free(rlink *l, rl_node *n) {
  rl_node_unwait(n);
  redis_conn_stats st;
  if (n->cmd) {
    redis_conn_stats_get(n->cmd, &st);
    l->gone_connects += st.connects;
    l->gone_failures += st.failures;
  }
  if (n->sub) {
    redis_conn_stats_get(n->sub, &st);
    l->gone_connects += st.connects;
    l->gone_failures += st.failures;
  }
  redis_conn_free(n->cmd);
  redis_conn_free(n->sub);
  free(n->host);
  free(n);
}

/* ---- subscriptions ---- */

static void send_sub(redis_conn *c, const rl_sub *s, int on) {
  static const char *const cmd[2][3] = {{"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"},
                                        {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"}};
  const char *argv[2] = {cmd[on][s->kind], s->name};
  size_t lens[2] = {strlen(argv[0]), s->len};
  /* Refused only when the connection is not up or its output is full: it subscribes again when it comes up. */
  (void)redis_conn_cmd(c, NULL, NULL, 2, argv, lens);
}

/* Where s should be held: the slot's owner for a sharded channel on a cluster, else the home node. */
static rl_node *target_of(rlink *l, const rl_sub *s) {
  if (l->mode == RLINK_CLUSTER && s->kind == RLINK_SHARD) return l->owner[s->slot];
  return l->home;
}

void rl_sub_place(rlink *l, rl_sub *s) {
  rl_node *t = target_of(l, s);
  if (t == s->at) return;
  if (s->at && rl_conn_up(s->at->sub)) send_sub(s->at->sub, s, 0);
  s->at = t;
  if (!t) return;
  if (!t->sub) {
    t->sub = conn_open(l, t, 1); /* subscribes everything placed here once up */
    return;
  }
  if (rl_conn_up(t->sub)) send_sub(t->sub, s, 1);
}

void rl_subs_place_all(rlink *l) {
  size_t i = 0;
  map_entry *e;
  while (map_next(&l->subs, &i, &e)) rl_sub_place(l, e->value);
}

int rlink_subscribe(rlink *l, const char *name, size_t len, int kind) {
  if (map_get(&l->subs, name, len)) return 0;
  rl_sub *s = calloc(1, sizeof *s + len + 1);
  if (!s) return WSIO_ENOMEM;
  s->name = (char *)(s + 1);
  memcpy(s->name, name, len);
  s->name[len] = 0;
  s->len = len;
  s->kind = kind;
  s->slot = rcl_keyslot(name, len);
  if (map_put(&l->subs, s->name, len, s) != 0) {
    free(s);
    return WSIO_ENOMEM;
  }
  rl_sub_place(l, s);
  return 0;
}

void rlink_unsubscribe(rlink *l, const char *name, size_t len) {
  rl_sub *s = map_del(&l->subs, name, len);
  if (!s) return;
  if (s->at && rl_conn_up(s->at->sub)) send_sub(s->at->sub, s, 0);
  free(s);
}

int rlink_holds(const rlink *l, const char *name, size_t len) {
  const rl_sub *s = map_get(&l->subs, name, len);
  return s && s->at && rl_conn_up(s->at->sub);
}

static void node_sub_up(redis_conn *c, void *ud) {
  rl_node *n = ud;
  size_t i = 0;
  map_entry *e;
  while (map_next(&n->l->subs, &i, &e)) {
    rl_sub *s = e->value;
    if (s->at == n) send_sub(c, s, 1);
  }
}

static int is_str(const redisReply *r, const char *s) {
  return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

static void node_sub_push(redis_conn *c, redisReply *r, void *ud) {
  (void)c;
  rl_node *n = ud;
  rlink *l = n->l;
  if (l->mode == RLINK_CLUSTER) {
    if (r->type == REDIS_REPLY_ERROR && rl_redirected(l, n, r->str, r->len)) return;
    /* "sunsubscribe" for a channel still held here and not given up by us: its slot moved away. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && is_str(r->element[0], "sunsubscribe") &&
        r->element[1]->type == REDIS_REPLY_STRING) {
      rl_sub *s = map_get(&l->subs, r->element[1]->str, r->element[1]->len);
      if (s && s->at == n) {
        s->at = NULL;
        l->redirects++;
        rlink_refresh(l);
      }
      return;
    }
  }
  l->on_push(l->ud, r);
}

/* ---- mode ---- */

/* Started as for one server, the server turned out to be a cluster node: start over in cluster mode. */
static void become_cluster(rlink *l) {
  log_info("redis: %s:%d is a Redis Cluster node: cluster mode", l->url.host, l->url.port);
  size_t i = 0;
  map_entry *e;
  while (map_next(&l->subs, &i, &e)) ((rl_sub *)e->value)->at = NULL;
  rl_node *old = l->nodes[0];
  l->nnodes = 0;
  l->home = NULL;
  l->mode = RLINK_CLUSTER;
  rl_node_free(l, old);
  if (rl_cluster_init(l) < 0) log_error("redis: out of memory entering cluster mode");
}

static void detect_done(void *ud, redisReply *r) {
  rl_node *n = ud;
  rlink *l = n->l;
  if (l->dead || l->mode != RLINK_DETECT || !r) return; /* lost: asked again at the next connection */
  if (r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_enabled:1")) become_cluster(l);
  else l->mode = RLINK_SINGLE;
}

static void node_cmd_up(redis_conn *c, void *ud) {
  rl_node *n = ud;
  rlink *l = n->l;
  rl_node_flush(n); /* what waited for this first connection goes first */
  if (l->mode == RLINK_DETECT) {
    const char *argv[2] = {"INFO", "cluster"};
    size_t lens[2] = {4, 7};
    redis_conn_cmd(c, detect_done, n, 2, argv, lens);
  } else if (l->mode == RLINK_CLUSTER && (l->want_refresh || !l->have_topology)) {
    rlink_refresh(l);
  } else if (l->mode == RLINK_SENTINEL) {
    rsen_urgent(l->sen, 0);
  }
  if (l->on_up && !l->dead) l->on_up(l->ud);
}

static void node_cmd_down(redis_conn *c, void *ud) {
  (void)c;
  rl_node *n = ud;
  if (n->l->mode == RLINK_SENTINEL) rsen_urgent(n->l->sen, 1); /* a failover? the sentinels say */
  rlink_refresh(n->l); /* the node may be gone for good (a failover): the topology says */
}

/* An attempt failed before the connection came up: what waited for a new node's first one fails (the
 * connection logs why); later commands for it fail at once, as for any node away, until it is up. */
static void node_cmd_fail(redis_conn *c, void *ud) {
  (void)c;
  rl_node_unwait(ud);
}

/* Sentinel: the master the sentinels name. Another than the one in use: both connections move there. */
static void sen_master(void *ud, const char *host, int port) {
  rlink *l = ud;
  if (l->dead) return;
  if (l->home && l->home->port == port && strcmp(l->home->host, host) == 0) return;
  if (l->home) {
    log_warn("redis: the sentinels name %s:%d master of %s, instead of %s:%d: moving there", host, port,
             l->url.master, l->home->host, l->home->port);
    l->switches++;
    rl_node_free(l, l->home);
    l->home = NULL;
    l->nnodes = 0;
  } else {
    log_info("redis: the sentinels name %s:%d master of %s", host, port, l->url.master);
  }
  size_t i = 0;
  map_entry *e;
  while (map_next(&l->subs, &i, &e)) ((rl_sub *)e->value)->at = NULL;
  l->home = rl_node_get(l, host, strlen(host), port);
  if (l->home && !(l->home->sub = conn_open(l, l->home, 1))) l->home = NULL;
  if (!l->home) {
    log_error("redis: out of memory connecting to %s:%d", host, port);
    return;
  }
  l->home->primary = 1;
  rl_subs_place_all(l); /* held here from now on; subscribed once the subscribe connection is up */
}

/* ---- publishing and counts ---- */

static rl_node *publish_node(rlink *l, const char *channel, size_t clen) {
  if (l->mode != RLINK_CLUSTER) return l->home;
  if (l->sharded) return l->owner ? l->owner[rcl_keyslot(channel, clen)] : NULL;
  /* classic messages cross the cluster: the home node, or any primary up */
  if (l->home && rl_conn_up(l->home->cmd)) return l->home;
  for (size_t i = 0; i < l->nnodes; i++)
    if (l->nodes[i]->primary && rl_conn_up(l->nodes[i]->cmd)) return l->nodes[i];
  return NULL;
}

int rlink_publish(rlink *l, const char *channel, size_t clen, const void *msg, size_t len) {
  rl_node *n = publish_node(l, channel, clen);
  if (!n) return WSIO_ECLOSED;
  const char *argv[3] = {l->sharded ? "SPUBLISH" : "PUBLISH", channel, msg};
  size_t lens[3] = {l->sharded ? 8u : 7u, clen, len};
  /* One server, or classic messages (any node takes them, never redirected): no reply is looked at. */
  if (l->mode != RLINK_CLUSTER || !l->sharded) return redis_conn_cmd(n->cmd, NULL, NULL, 3, argv, lens);
  return rl_cmd_start(l, n, 1, NULL, NULL, 3, argv, lens);
}

typedef struct rl_count {
  rlink_count_fn cb;
  void *ud;
  long long sum;
  int pending;
} rl_count;

static void count_release(rl_count *x) {
  if (--x->pending > 0) return;
  x->cb(x->ud, x->sum);
  free(x);
}

static void count_one(void *ud, redisReply *r) {
  rl_count *x = ud;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
    x->sum += r->element[1]->integer;
  count_release(x);
}

int rlink_numsub(rlink *l, const char *which, const char *channel, rlink_count_fn cb, void *ud) {
  rl_count *x = malloc(sizeof *x);
  if (!x) return WSIO_ENOMEM;
  *x = (rl_count){cb, ud, 0, 1}; /* held across the loop: a connection lost while sending fails at once */
  const char *argv[3] = {"PUBSUB", which, channel};
  size_t lens[3] = {6, strlen(which), strlen(channel)};
  int sent = 0, rc = WSIO_ECLOSED;
  for (size_t i = 0; i < l->nnodes; i++) {
    rl_node *n = l->nodes[i];
    if (!n->primary || !rl_conn_up(n->cmd)) continue;
    x->pending++;
    int r = redis_conn_cmd(n->cmd, count_one, x, 3, argv, lens);
    if (r < 0) {
      x->pending--;
      rc = r;
    } else {
      sent++;
    }
  }
  if (!sent) {
    free(x);
    return rc;
  }
  count_release(x);
  return 0;
}

/* ---- commands about a key ---- */

static rl_node *key_node(const rlink *l, const char *key, size_t klen) {
  if (l->mode != RLINK_CLUSTER) return l->home;
  return l->owner ? l->owner[rcl_keyslot(key, klen)] : NULL;
}

int rlink_addr(const rlink *l, const char *key, size_t klen, const char **host, int *port) {
  const rl_node *n = key_node(l, key, klen);
  if (!n) return WSIO_ECLOSED;
  *host = n->host;
  *port = n->port;
  return 0;
}

int rlink_command(rlink *l, const char *key, size_t klen, redis_reply_fn cb, void *ud, int argc, const char **argv,
                  const size_t *lens) {
  rl_node *n = key_node(l, key, klen);
  if (!n) return WSIO_ECLOSED;
  if (l->mode != RLINK_CLUSTER) return redis_conn_cmd(n->cmd, cb, ud, argc, argv, lens);
  return rl_cmd_start(l, n, 0, cb, ud, argc, argv, lens);
}

/* ---- state ---- */

int rlink_up(const rlink *l) {
  if (l->mode != RLINK_CLUSTER) return l->home && rl_conn_up(l->home->cmd);
  for (size_t i = 0; i < l->nnodes; i++)
    if (l->nodes[i]->primary && rl_conn_up(l->nodes[i]->cmd)) return l->have_topology;
  return 0;
}

void rlink_stats_get(const rlink *l, rlink_stats *o) {
  memset(o, 0, sizeof *o);
  o->cluster = l->mode == RLINK_CLUSTER;
  o->up = l->mode != RLINK_CLUSTER || l->have_topology;
  o->connects = l->gone_connects;
  o->failures = l->gone_failures;
  for (size_t i = 0; i < l->nnodes; i++) {
    const rl_node *n = l->nodes[i];
    redis_conn_stats st;
    o->primaries += n->primary && l->mode == RLINK_CLUSTER;
    if (n->cmd) {
      redis_conn_stats_get(n->cmd, &st);
      o->connects += st.connects;
      o->failures += st.failures;
      if (n->primary && !st.up) o->up = 0;
    }
    if (n->sub) {
      redis_conn_stats_get(n->sub, &st);
      o->connects += st.connects;
      o->failures += st.failures;
      if (!st.up) o->up = 0;
    }
  }
  if (!l->nnodes) o->up = 0;
  o->lost = l->lost;
  o->refreshes = l->refreshes;
  o->redirects = l->redirects;
  o->sentinel = l->mode == RLINK_SENTINEL;
  o->switches = l->switches;
}

/* ---- lifetime ---- */

rlink *rlink_new(uv_loop_t *loop, const rlink_config *cfg, rlink_push_fn on_push, void *ud) {
  if (!cfg->url || (!cfg->url->host && cfg->mode != RLINK_SENTINEL) || !on_push) return NULL;
  rlink *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  if (redis_url_copy(&l->url, cfg->url) != 0) {
    free(l);
    return NULL;
  }
  l->loop = loop;
  l->sharded = cfg->sharded;
  l->mode = cfg->mode;
  l->cto = cfg->connect_timeout_ms;
  l->backoff = cfg->backoff_max_ms;
  l->on_push = on_push;
  l->on_up = cfg->on_up;
  l->ud = ud;
  uv_timer_init(loop, &l->timer);
  uv_unref((uv_handle_t *)&l->timer);
  l->timer.data = l;
  int ok = 1;
  if (l->mode == RLINK_CLUSTER) {
    ok = rl_cluster_init(l) == 0;
  } else if (l->mode == RLINK_SENTINEL) {
    /* The master found at start (if it was asked then) is used until the sentinels say otherwise. */
    ok = (l->sen = rsen_new(loop, &l->url, l->cto, l->backoff, sen_master, l)) != NULL;
    if (ok && l->url.host) sen_master(l, l->url.host, l->url.port);
    ok = ok && (!l->url.host || l->home);
  } else {
    /* One server: both connections from the start, as the adapter always had them. */
    l->home = rl_node_get(l, l->url.host, strlen(l->url.host), l->url.port);
    ok = l->home && (l->home->sub = conn_open(l, l->home, 1)) != NULL;
    if (ok) l->home->primary = 1;
  }
  if (!ok) {
    rlink_free(l);
    return NULL;
  }
  return l;
}

static void timer_closed(uv_handle_t *h) {
  rlink *l = h->data;
  size_t i = 0;
  map_entry *e;
  while (map_next(&l->subs, &i, &e)) free(e->value);
  map_free(&l->subs);
  redis_url_free(&l->url);
  free(l->nodes);
  free(l->owner);
  free(l->owner_next);
  free(l);
}

void rlink_free(rlink *l) {
  if (!l) return;
  l->dead = 1;
  rsen_free(l->sen);
  for (size_t i = 0; i < l->nnodes; i++) rl_node_free(l, l->nodes[i]);
  l->nnodes = 0;
  uv_close((uv_handle_t *)&l->timer, timer_closed);
}
