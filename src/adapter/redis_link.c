/* redis_link: the adapter's Redis, one server or a Redis Cluster (see redis_link.h). */
#include "adapter/redis_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_cluster.h"
#include "adapter/redis_sentinel.h"
#include "util/log.h"
#include "util/map.h"
#include "wsio.h"

/* A topology larger than this is refused: no real cluster comes near, and it bounds what a node costs. */
#define RL_MAX_NODES 1000
/* Cluster commands in flight (sharded messages, commands about a key) are copied, up to this many bytes, so
 * that one a redirection refused is sent again where it says, and one for a node still being connected to
 * can wait for it; past it a refused message is lost (and counted), and a command fails as it would. */
#define RL_RETAIN_MAX ((size_t)16 << 20)
/* Commands waiting for new nodes' first connections, at most: each costs its rl_cmd besides its copy. */
#define RL_WAIT_MAX 4096
/* A node met through -ASK only (importing a slot: not in the topology until the slot is its own) is kept
 * this long after the last one, so that a migration does not connect anew at every topology read. */
#define RL_ASKED_KEEP_MS 10000

typedef struct rl_cmd rl_cmd;

typedef struct rl_node {
  rlink *l;
  char *host;
  int port;
  redis_conn *cmd; /* commands: publish, counts, topology */
  redis_conn *sub; /* pub/sub, created once a subscription is placed here */
  int primary;     /* serves slots in the topology read last (always, with one server) */
  /* Cluster: a node the link has just learnt of (from the topology or a redirection) is connected to at
   * once; until that first connection is up or has failed (fresh), commands for it wait, in order. */
  int fresh;
  rl_cmd *wait, **wait_end;
  size_t held;     /* cluster commands in flight or waiting here: the node is not let go while any is */
  uint64_t asked;  /* uv_now of the last -ASK followed here; 0: none */
} rl_node;

typedef struct rl_sub {
  char *name;
  size_t len;
  int kind;
  unsigned slot;
  rl_node *at; /* the node whose pub/sub connection holds it (or should, once up); NULL: nowhere yet */
} rl_sub;

struct rlink {
  uv_loop_t *loop;
  redis_url url;
  int sharded, mode;
  uint32_t cto, backoff;
  rlink_push_fn on_push;
  void (*on_up)(void *ud);
  void *ud;
  int dead;
  map subs;               /* name -> rl_sub */
  rl_node **nodes;
  size_t nnodes;
  rl_node *home;          /* one server: the server; cluster: where classic subscriptions are held */
  rl_node **owner;        /* cluster: slot -> primary (NULL: not served) */
  rl_node **owner_next;   /* the table being built from a CLUSTER SLOTS reply */
  int have_topology;
  int refreshing, want_refresh, topo_failed;
  uint64_t last_ask;
  size_t rr;              /* the next node asked for the topology */
  uv_timer_t timer;       /* refreshes: deferred by the rate limit, and periodic */
  uint64_t gone_connects, gone_failures, lost, refreshes, redirects;
  size_t retained;        /* bytes of cluster commands kept for a retry or a new node (RL_RETAIN_MAX) */
  size_t waiting;         /* commands waiting for new nodes (RL_WAIT_MAX) */
  rsen *sen;              /* Sentinel: who the master is */
  uint64_t switches;
};

static void node_sub_up(redis_conn *c, void *ud);
static void node_sub_push(redis_conn *c, redisReply *r, void *ud);
static void node_cmd_up(redis_conn *c, void *ud);
static void node_cmd_down(redis_conn *c, void *ud);
static void node_cmd_fail(redis_conn *c, void *ud);
static void node_unwait(rl_node *n);
static void refresh(rlink *l);

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

/* The node at host:port, created (with its command connection) when new. NULL on ENOMEM or past the cap. */
static rl_node *node_get(rlink *l, const char *host, size_t hlen, int port) {
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

/* Frees a node taken out of l->nodes. The callbacks of its commands, waiting or in flight, run now (with
 * NULL). */
static void node_free(rlink *l, rl_node *n) {
  node_unwait(n);
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

static int conn_up(const redis_conn *c) { return c && redis_conn_up(c); }

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

/* Moves s to where it belongs: unsubscribed from the node that held it, subscribed where it should be. */
static void sub_place(rlink *l, rl_sub *s) {
  rl_node *t = target_of(l, s);
  if (t == s->at) return;
  if (s->at && conn_up(s->at->sub)) send_sub(s->at->sub, s, 0);
  s->at = t;
  if (!t) return;
  if (!t->sub) {
    t->sub = conn_open(l, t, 1); /* subscribes everything placed here once up */
    return;
  }
  if (conn_up(t->sub)) send_sub(t->sub, s, 1);
}

static void subs_place_all(rlink *l) {
  size_t i = 0;
  map_entry *e;
  while (map_next(&l->subs, &i, &e)) sub_place(l, e->value);
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
  sub_place(l, s);
  return 0;
}

void rlink_unsubscribe(rlink *l, const char *name, size_t len) {
  rl_sub *s = map_del(&l->subs, name, len);
  if (!s) return;
  if (s->at && conn_up(s->at->sub)) send_sub(s->at->sub, s, 0);
  free(s);
}

int rlink_holds(const rlink *l, const char *name, size_t len) {
  const rl_sub *s = map_get(&l->subs, name, len);
  return s && s->at && conn_up(s->at->sub);
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

/* A -MOVED names the slot's new owner: used at once (the topology is asked too, to learn the rest).
 * Returns 0 when msg is no redirection. */
static int redirected(rlink *l, rl_node *from, const char *msg, size_t len) {
  unsigned slot;
  const char *host;
  size_t hlen;
  int port;
  int kind = rcl_redirect_parse(msg, len, &slot, &host, &hlen, &port);
  if (!kind) return 0;
  l->redirects++;
  if (kind == 1 && l->mode == RLINK_CLUSTER) {
    if (!hlen) host = from->host, hlen = strlen(from->host);
    rl_node *t = node_get(l, host, hlen, port);
    if (t && l->owner[slot] != t) {
      t->primary = 1;
      l->owner[slot] = t;
      size_t i = 0;
      map_entry *e;
      while (map_next(&l->subs, &i, &e)) {
        rl_sub *s = e->value;
        if (s->slot == slot) sub_place(l, s);
      }
    }
  }
  refresh(l);
  return 1;
}

static void node_sub_push(redis_conn *c, redisReply *r, void *ud) {
  (void)c;
  rl_node *n = ud;
  rlink *l = n->l;
  if (l->mode == RLINK_CLUSTER) {
    if (r->type == REDIS_REPLY_ERROR && redirected(l, n, r->str, r->len)) return;
    /* "sunsubscribe" for a channel still held here and not given up by us: its slot moved away. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && is_str(r->element[0], "sunsubscribe") &&
        r->element[1]->type == REDIS_REPLY_STRING) {
      rl_sub *s = map_get(&l->subs, r->element[1]->str, r->element[1]->len);
      if (s && s->at == n) {
        s->at = NULL;
        l->redirects++;
        refresh(l);
      }
      return;
    }
  }
  l->on_push(l->ud, r);
}

/* ---- topology ---- */

static void on_timer(uv_timer_t *t) {
  rlink *l = t->data;
  l->want_refresh = 1;
  refresh(l);
}

/* The node to ask for the topology: in turn, a primary of the topology known, or when none is up any node up
 * (the seed, before the first topology). A node outside the topology may have left the cluster: its view is
 * its own. */
static rl_node *pick_cmd_up(rlink *l) {
  for (int any = 0; any < 2; any++) {
    for (size_t k = 0; k < l->nnodes; k++) {
      rl_node *n = l->nodes[(l->rr + k) % l->nnodes];
      if ((any || n->primary) && conn_up(n->cmd)) {
        l->rr = (l->rr + k + 1) % l->nnodes;
        return n;
      }
    }
  }
  return NULL;
}

static void topo_fail(rlink *l, const char *why) {
  if (!l->topo_failed) log_warn("redis: cannot read the cluster topology (%s); retrying", why);
  l->topo_failed = 1;
  l->want_refresh = 1;
}

/* Applies a CLUSTER SLOTS reply of node from: primaries, slot owners, subscriptions moved, nodes gone. */
static void topo_apply(rlink *l, rl_node *from, const redisReply *r) {
  size_t cap = r->type == REDIS_REPLY_ARRAY && r->elements ? r->elements : 1;
  rcl_range *ranges = cap <= RCL_SLOTS ? malloc(cap * sizeof *ranges) : NULL;
  int n = ranges ? rcl_slots_parse(r, ranges, cap) : -1;
  if (n <= 0) {
    free(ranges);
    topo_fail(l, n < 0 ? "malformed CLUSTER SLOTS reply" : "no slot is served");
    return;
  }
  /* from may be freed below: its host is copied first */
  char fhost[256];
  snprintf(fhost, sizeof fhost, "%s", from->host);
  for (size_t i = 0; i < l->nnodes; i++) l->nodes[i]->primary = 0;
  memset(l->owner_next, 0, RCL_SLOTS * sizeof *l->owner_next);
  size_t nodes_before = l->nnodes;
  for (int i = 0; i < n; i++) {
    const rcl_range *g = &ranges[i];
    rl_node *p = g->hostlen ? node_get(l, g->host, g->hostlen, g->port) : node_get(l, fhost, strlen(fhost), g->port);
    if (!p) continue;
    p->primary = 1;
    p->asked = 0; /* in the topology: kept as long as it serves slots */
    for (unsigned s = g->start; s <= g->end; s++) l->owner_next[s] = p;
  }
  free(ranges);
  unsigned moved = 0, covered = 0, primaries = 0;
  for (unsigned s = 0; s < RCL_SLOTS; s++) {
    moved += l->owner[s] != l->owner_next[s];
    covered += l->owner_next[s] != NULL;
  }
  rl_node **t = l->owner;
  l->owner = l->owner_next;
  l->owner_next = t;
  if (!l->home || !l->home->primary) {
    l->home = NULL;
    for (size_t i = 0; i < l->nnodes && !l->home; i++)
      if (l->nodes[i]->primary) l->home = l->nodes[i];
  }
  subs_place_all(l);
  /* Nodes that serve nothing now (gone from the cluster, or replicas now) are let go, once nothing points
   * at them and no command is in flight or waiting there; one an -ASK sent commands to, a while after. */
  size_t k = 0, gone = 0;
  rl_node *drop[64];
  size_t ndrop = 0;
  uint64_t now = uv_now(l->loop);
  for (size_t i = 0; i < l->nnodes; i++) {
    rl_node *p = l->nodes[i];
    if (p->primary || p->held || (p->asked && now < p->asked + RL_ASKED_KEEP_MS)) {
      l->nodes[k++] = p;
      primaries += p->primary != 0;
    } else if (ndrop < sizeof drop / sizeof *drop) {
      drop[ndrop++] = p;
    } else {
      l->nodes[k++] = p; /* the next refresh lets it go */
    }
  }
  l->nnodes = k;
  l->rr = 0;
  for (size_t i = 0; i < ndrop; i++) {
    size_t j = 0;
    map_entry *e;
    while (map_next(&l->subs, &j, &e)) {
      rl_sub *s = e->value;
      if (s->at == drop[i]) s->at = NULL;
    }
    node_free(l, drop[i]);
    gone++;
  }
  l->refreshes++;
  if (!l->have_topology || moved || gone || l->nnodes != nodes_before || l->topo_failed)
    log_info("redis: cluster topology: %u primaries, %u of %d slots served%s", primaries, covered, RCL_SLOTS,
             l->have_topology && moved ? " (slots moved)" : "");
  l->have_topology = 1;
  l->topo_failed = 0;
}

/* 1 when the topology was read and every primary in it answers: nothing to wait for but the periodic
 * refresh. Otherwise a failover may be under way, which only a new CLUSTER SLOTS shows. */
static int topo_sound(const rlink *l) {
  if (!l->have_topology || l->topo_failed || l->want_refresh) return 0;
  for (size_t i = 0; i < l->nnodes; i++)
    if (l->nodes[i]->primary && !conn_up(l->nodes[i]->cmd)) return 0;
  return 1;
}

static void slots_done(void *ud, redisReply *r) {
  rl_node *from = ud;
  rlink *l = from->l;
  l->refreshing = 0;
  if (l->dead) return;
  if (!r) {
    l->want_refresh = 1; /* the connection went; another node is asked */
  } else if (r->type == REDIS_REPLY_ERROR) {
    char why[160];
    snprintf(why, sizeof why, "%.*s", (int)(r->len < 120 ? r->len : 120), r->str);
    topo_fail(l, why);
  } else {
    topo_apply(l, from, r);
  }
  uv_timer_start(&l->timer, on_timer, topo_sound(l) ? RLINK_REFRESH_EVERY_MS : RLINK_REFRESH_DOWN_MS, 0);
  if (l->want_refresh) refresh(l);
}

/* Asks a node for the topology, now or as soon as the rate limit allows; one question at a time. */
static void refresh(rlink *l) {
  if (l->mode != RLINK_CLUSTER || l->dead) return;
  l->want_refresh = 1;
  if (l->refreshing) return; /* slots_done asks again */
  uint64_t now = uv_now(l->loop);
  if (l->last_ask && now < l->last_ask + RLINK_REFRESH_MIN_MS) {
    uv_timer_start(&l->timer, on_timer, l->last_ask + RLINK_REFRESH_MIN_MS - now, 0);
    return;
  }
  rl_node *n = pick_cmd_up(l);
  if (!n) return; /* the first command connection up asks */
  const char *argv[2] = {"CLUSTER", "SLOTS"};
  size_t lens[2] = {7, 5};
  l->last_ask = now;
  /* Marked before sending: a connection that fails while sending answers slots_done at once. */
  l->refreshing = 1;
  l->want_refresh = 0;
  if (redis_conn_cmd(n->cmd, slots_done, n, 2, argv, lens) < 0) {
    l->refreshing = 0;
    l->want_refresh = 1;
    uv_timer_start(&l->timer, on_timer, RLINK_REFRESH_MIN_MS, 0);
  }
}

/* ---- mode ---- */

static int cluster_init(rlink *l) {
  l->owner = calloc(RCL_SLOTS, sizeof *l->owner);
  l->owner_next = calloc(RCL_SLOTS, sizeof *l->owner_next);
  if (!l->owner || !l->owner_next) return WSIO_ENOMEM;
  if (l->url.db) log_warn("redis: database %d ignored: a Redis Cluster has database 0 only", l->url.db);
  /* The URL's node is the seed: it is asked for the topology once its command connection is up. */
  return node_get(l, l->url.host, strlen(l->url.host), l->url.port) ? 0 : WSIO_ENOMEM;
}

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
  node_free(l, old);
  if (cluster_init(l) < 0) log_error("redis: out of memory entering cluster mode");
}

static void detect_done(void *ud, redisReply *r) {
  rl_node *n = ud;
  rlink *l = n->l;
  if (l->dead || l->mode != RLINK_DETECT || !r) return; /* lost: asked again at the next connection */
  if (r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_enabled:1")) become_cluster(l);
  else l->mode = RLINK_SINGLE;
}

static void node_flush(rl_node *n);

static void node_cmd_up(redis_conn *c, void *ud) {
  rl_node *n = ud;
  rlink *l = n->l;
  node_flush(n); /* what waited for this first connection goes first */
  if (l->mode == RLINK_DETECT) {
    const char *argv[2] = {"INFO", "cluster"};
    size_t lens[2] = {4, 7};
    redis_conn_cmd(c, detect_done, n, 2, argv, lens);
  } else if (l->mode == RLINK_CLUSTER && (l->want_refresh || !l->have_topology)) {
    refresh(l);
  } else if (l->mode == RLINK_SENTINEL) {
    rsen_urgent(l->sen, 0);
  }
  if (l->on_up && !l->dead) l->on_up(l->ud);
}

static void node_cmd_down(redis_conn *c, void *ud) {
  (void)c;
  rl_node *n = ud;
  if (n->l->mode == RLINK_SENTINEL) rsen_urgent(n->l->sen, 1); /* a failover? the sentinels say */
  refresh(n->l); /* the node may be gone for good (a failover): the topology says */
}

/* An attempt failed before the connection came up: what waited for a new node's first one fails (the
 * connection logs why); later commands for it fail at once, as for any node away, until it is up. */
static void node_cmd_fail(redis_conn *c, void *ud) {
  (void)c;
  node_unwait(ud);
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
    node_free(l, l->home);
    l->home = NULL;
    l->nnodes = 0;
  } else {
    log_info("redis: the sentinels name %s:%d master of %s", host, port, l->url.master);
  }
  size_t i = 0;
  map_entry *e;
  while (map_next(&l->subs, &i, &e)) ((rl_sub *)e->value)->at = NULL;
  l->home = node_get(l, host, strlen(host), port);
  if (l->home && !(l->home->sub = conn_open(l, l->home, 1))) l->home = NULL;
  if (!l->home) {
    log_error("redis: out of memory connecting to %s:%d", host, port);
    return;
  }
  l->home->primary = 1;
  subs_place_all(l); /* held here from now on; subscribed once the subscribe connection is up */
}

/* ---- cluster commands: redirections followed, new nodes waited for ---- */

/* A cluster command (a sharded publish, or a command about a key) in flight, or waiting for a new node's
 * first connection. Within the retry budget (RL_RETAIN_MAX) it holds a copy of its arguments: a redirected
 * command was not run, so it is sent once more where the redirection says, and a command for a node the
 * link has just learnt of (a primary added to the cluster, met in a redirection or the topology) waits for
 * the connection being made to it. Without that a sharded message, a stream entry (XADD) or a session (SET,
 * GETDEL) met during a slot move, or sent to a new primary, would be lost. */
#define RL_CMD_ARGS 16
struct rl_cmd {
  rlink *l;
  rl_node *n;       /* where it was sent or waits (counted in n->held) */
  rl_cmd *next;     /* in n's waiting list */
  redis_reply_fn cb;
  void *ud;
  int pub;          /* a publish: no callback; a refusal counts as a message lost */
  int asking;       /* ASKING goes before it: an -ASK is followed */
  int argc, retried;
  size_t bytes;     /* of the copy, counted in l->retained; argc 0: none kept */
  const char *argv[RL_CMD_ARGS];
  size_t lens[RL_CMD_ARGS];
  char data[];
};

static void cmd_done(void *ud, redisReply *r);

static void cmd_free(rl_cmd *x) {
  x->n->held--;
  x->l->retained -= x->bytes;
  free(x);
}

/* The end of x: r (borrowed; NULL: the connection went first, or x never left) to its callback; a publish
 * refused (failed) is counted lost. */
static void cmd_end(rl_cmd *x, redisReply *r, int failed) {
  rlink *l = x->l;
  redis_reply_fn cb = x->cb;
  void *ud = x->ud;
  if (x->pub && failed && !l->dead) l->lost++;
  cmd_free(x);
  if (cb) cb(ud, r);
}

/* Sends x (argv: its copy, or the caller's) to node t: now when t's command connection is up; when t is new
 * and x has a copy, once that connection is (within RL_WAIT_MAX). Returns 0 (cmd_done or cmd_end comes), or
 * a negative code (x is t's, nothing else done). */
static int cmd_send(rl_cmd *x, rl_node *t, int argc, const char **argv, const size_t *lens) {
  static const char *asking[1] = {"ASKING"};
  static const size_t asking_len[1] = {6};
  rlink *l = x->l;
  /* before sending: a connection failing while sending answers at once */
  if (x->n) x->n->held--;
  x->n = t;
  t->held++;
  if (conn_up(t->cmd)) {
    int rc = x->asking ? redis_conn_cmd(t->cmd, NULL, NULL, 1, asking, asking_len) : 0;
    return rc < 0 ? rc : redis_conn_cmd(t->cmd, cmd_done, x, argc, argv, lens);
  }
  if (!t->fresh || !x->argc || l->waiting >= RL_WAIT_MAX) return WSIO_ECLOSED;
  x->next = NULL;
  *t->wait_end = x;
  t->wait_end = &x->next;
  l->waiting++;
  return 0;
}

/* n's command connection is up: what waited for it is sent, in order; what cannot be (the connection went
 * again, its output is full) fails, once the list is done with. */
static void node_flush(rl_node *n) {
  rl_cmd *x = n->wait, *failed = NULL, **fend = &failed;
  n->wait = NULL;
  n->wait_end = &n->wait;
  n->fresh = 0;
  while (x) {
    rl_cmd *next = x->next;
    n->l->waiting--;
    if (cmd_send(x, n, x->argc, x->argv, x->lens) < 0) {
      x->next = NULL;
      *fend = x;
      fend = &x->next;
    }
    x = next;
  }
  while (failed) {
    x = failed;
    failed = x->next;
    cmd_end(x, NULL, 1);
  }
}

/* n's first connection failed, or n goes: what waits for it fails, as for a node away. */
static void node_unwait(rl_node *n) {
  rl_cmd *x = n->wait;
  n->wait = NULL;
  n->wait_end = &n->wait;
  n->fresh = 0;
  while (x) {
    rl_cmd *next = x->next;
    n->l->waiting--;
    cmd_end(x, NULL, 1);
    x = next;
  }
}

/* Sends x again where the redirection r says: the slot's owner as now known (-MOVED), or the node importing
 * it, after ASKING on the same connection (-ASK); a node not met yet is connected to, and x waits for it.
 * Returns 0 when x is on its way there. */
static int cmd_retry(rl_cmd *x, const redisReply *r) {
  rlink *l = x->l;
  unsigned slot;
  const char *host;
  size_t hlen;
  int port;
  int kind = rcl_redirect_parse(r->str, r->len, &slot, &host, &hlen, &port);
  if (!kind || !x->argc || x->retried || l->mode != RLINK_CLUSTER || !l->owner) return -1;
  rl_node *t;
  if (kind == 1) {
    t = l->owner[slot]; /* redirected() has just set it */
  } else {
    if (!hlen) host = x->n->host, hlen = strlen(x->n->host);
    if ((t = node_get(l, host, hlen, port))) t->asked = uv_now(l->loop);
  }
  if (!t || (kind == 1 && t == x->n)) return -1;
  x->retried = 1;
  x->asking = kind == 2;
  return cmd_send(x, t, x->argc, x->argv, x->lens) < 0 ? -1 : 0;
}

static void cmd_done(void *ud, redisReply *r) {
  rl_cmd *x = ud;
  rlink *l = x->l;
  int failed = r && r->type == REDIS_REPLY_ERROR;
  if (failed && !l->dead) {
    redirected(l, x->n, r->str, r->len);
    if (cmd_retry(x, r) == 0) return; /* the retry's answer comes here again */
  }
  cmd_end(x, r, failed);
}

/* A cluster command for node n, with a copy when the budget allows. Returns 0, or WSIO_ECLOSED (n away, or
 * new and no copy could be kept), WSIO_ELIMIT, WSIO_ENOMEM: nothing sent, cb not called. */
static int cmd_start(rlink *l, rl_node *n, int pub, redis_reply_fn cb, void *ud, int argc, const char **argv,
                     const size_t *lens) {
  if (!conn_up(n->cmd) && !n->fresh) return WSIO_ECLOSED;
  size_t bytes = 0;
  for (int i = 0; i < argc; i++) bytes += lens[i];
  int keep = argc <= RL_CMD_ARGS && l->retained + bytes <= RL_RETAIN_MAX;
  rl_cmd *x = malloc(sizeof *x + (keep ? bytes : 0));
  if (!x) return WSIO_ENOMEM;
  *x = (rl_cmd){.l = l, .cb = cb, .ud = ud, .pub = pub};
  if (keep) {
    char *at = x->data;
    for (int i = 0; i < argc; i++) {
      memcpy(at, argv[i], lens[i]);
      x->argv[i] = at;
      x->lens[i] = lens[i];
      at += lens[i];
    }
    x->argc = argc;
    x->bytes = bytes;
  }
  l->retained += x->bytes;
  int rc = cmd_send(x, n, argc, argv, lens);
  if (rc < 0) cmd_free(x);
  return rc;
}

/* ---- publishing and counts ---- */

static rl_node *publish_node(rlink *l, const char *channel, size_t clen) {
  if (l->mode != RLINK_CLUSTER) return l->home;
  if (l->sharded) return l->owner ? l->owner[rcl_keyslot(channel, clen)] : NULL;
  /* classic messages cross the cluster: the home node, or any primary up */
  if (l->home && conn_up(l->home->cmd)) return l->home;
  for (size_t i = 0; i < l->nnodes; i++)
    if (l->nodes[i]->primary && conn_up(l->nodes[i]->cmd)) return l->nodes[i];
  return NULL;
}

int rlink_publish(rlink *l, const char *channel, size_t clen, const void *msg, size_t len) {
  rl_node *n = publish_node(l, channel, clen);
  if (!n) return WSIO_ECLOSED;
  const char *argv[3] = {l->sharded ? "SPUBLISH" : "PUBLISH", channel, msg};
  size_t lens[3] = {l->sharded ? 8u : 7u, clen, len};
  /* One server, or classic messages (any node takes them, never redirected): no reply is looked at. */
  if (l->mode != RLINK_CLUSTER || !l->sharded) return redis_conn_cmd(n->cmd, NULL, NULL, 3, argv, lens);
  return cmd_start(l, n, 1, NULL, NULL, 3, argv, lens);
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
    if (!n->primary || !conn_up(n->cmd)) continue;
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
  return cmd_start(l, n, 0, cb, ud, argc, argv, lens);
}

void rlink_refresh(rlink *l) { refresh(l); }

/* ---- state ---- */

int rlink_up(const rlink *l) {
  if (l->mode != RLINK_CLUSTER) return l->home && conn_up(l->home->cmd);
  for (size_t i = 0; i < l->nnodes; i++)
    if (l->nodes[i]->primary && conn_up(l->nodes[i]->cmd)) return l->have_topology;
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
    ok = cluster_init(l) == 0;
  } else if (l->mode == RLINK_SENTINEL) {
    /* The master found at start (if it was asked then) is used until the sentinels say otherwise. */
    ok = (l->sen = rsen_new(loop, &l->url, l->cto, l->backoff, sen_master, l)) != NULL;
    if (ok && l->url.host) sen_master(l, l->url.host, l->url.port);
    ok = ok && (!l->url.host || l->home);
  } else {
    /* One server: both connections from the start, as the adapter always had them. */
    l->home = node_get(l, l->url.host, strlen(l->url.host), l->url.port);
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
  for (size_t i = 0; i < l->nnodes; i++) node_free(l, l->nodes[i]);
  l->nnodes = 0;
  uv_close((uv_handle_t *)&l->timer, timer_closed);
}
