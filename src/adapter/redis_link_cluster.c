/*
 * redis_link over a Redis Cluster (see redis_link.h, redis_link_internal.h): the slot map, read with CLUSTER
 * SLOTS from a primary and kept current (a redirection, a sharded subscription dropped, a command connection
 * lost, or the periodic timer ask again); -MOVED and -ASK followed; and cluster commands in flight (sharded
 * publishes, commands about a key), sent again once after a redirection, or waiting for the first
 * connection to a node the link has just learnt of.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_cluster.h"
#include "adapter/redis_link_internal.h"
#include "util/log.h"
#include "wsio.h"

/* Cluster commands in flight (sharded messages, commands about a key) are copied, up to this many bytes, so
 * that one a redirection refused is sent again where it says, and one for a node still being connected to
 * can wait for it; past it a refused message is lost (and counted), and a command fails as it would. */
#define RL_RETAIN_MAX ((size_t)16 << 20)
/* A node met through -ASK only (importing a slot: not in the topology until the slot is its own) is kept
 * this long after the last one, so that a migration does not connect anew at every topology read. */
#define RL_ASKED_KEEP_MS 10000

/* ---- redirections ---- */

/* A -MOVED names the slot's new owner: used at once, subscriptions of the slot moved there (the topology is
 * asked too, to learn the rest). */
int rl_redirected(rlink *l, rl_node *from, const char *msg, size_t len) {
  unsigned slot;
  const char *host;
  size_t hlen;
  int port;
  int kind = rcl_redirect_parse(msg, len, &slot, &host, &hlen, &port);
  if (!kind) return 0;
  l->redirects++;
  if (kind == 1 && l->mode == RLINK_CLUSTER) {
    if (!hlen) host = from->host, hlen = strlen(from->host);
    rl_node *t = rl_node_get(l, host, hlen, port);
    if (t && l->owner[slot] != t) {
      t->primary = 1;
      l->owner[slot] = t;
      size_t i = 0;
      map_entry *e;
      while (map_next(&l->subs, &i, &e)) {
        rl_sub *s = e->value;
        if (s->slot == slot) rl_sub_place(l, s);
      }
    }
  }
  rlink_refresh(l);
  return 1;
}

/* ---- topology ---- */

static void on_timer(uv_timer_t *t) {
  rlink *l = t->data;
  l->want_refresh = 1;
  rlink_refresh(l);
}

/* The node to ask for the topology: in turn, a primary of the topology known, or when none is up any node up
 * (the seed, before the first topology). A node outside the topology may have left the cluster: its view is
 * its own. */
static rl_node *pick_cmd_up(rlink *l) {
  for (int any = 0; any < 2; any++) {
    for (size_t k = 0; k < l->nnodes; k++) {
      rl_node *n = l->nodes[(l->rr + k) % l->nnodes];
      if ((any || n->primary) && rl_conn_up(n->cmd)) {
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
    rl_node *p = g->hostlen ? rl_node_get(l, g->host, g->hostlen, g->port)
                            : rl_node_get(l, fhost, strlen(fhost), g->port);
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
  rl_subs_place_all(l);
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
    rl_node_free(l, drop[i]);
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
    if (l->nodes[i]->primary && !rl_conn_up(l->nodes[i]->cmd)) return 0;
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
  if (l->want_refresh) rlink_refresh(l);
}

/* Asks a primary for the topology, now or as soon as the rate limit allows; one question at a time. */
void rlink_refresh(rlink *l) {
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

int rl_cluster_init(rlink *l) {
  l->owner = calloc(RCL_SLOTS, sizeof *l->owner);
  l->owner_next = calloc(RCL_SLOTS, sizeof *l->owner_next);
  if (!l->owner || !l->owner_next) return WSIO_ENOMEM;
  if (l->url.db) log_warn("redis: database %d ignored: a Redis Cluster has database 0 only", l->url.db);
  /* The URL's node is the seed: it is asked for the topology once its command connection is up. */
  return rl_node_get(l, l->url.host, strlen(l->url.host), l->url.port) ? 0 : WSIO_ENOMEM;
}

/* ---- commands: redirections followed, new nodes waited for ---- */

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
 * and x has a copy, once that connection is (within RLINK_WAIT_MAX). Returns 0 (cmd_done or cmd_end comes),
 * or a negative code (x is t's, nothing else done). */
static int cmd_send(rl_cmd *x, rl_node *t, int argc, const char **argv, const size_t *lens) {
  static const char *asking[1] = {"ASKING"};
  static const size_t asking_len[1] = {6};
  rlink *l = x->l;
  /* before sending: a connection failing while sending answers at once */
  if (x->n) x->n->held--;
  x->n = t;
  t->held++;
  if (rl_conn_up(t->cmd)) {
    int rc = x->asking ? redis_conn_cmd(t->cmd, NULL, NULL, 1, asking, asking_len) : 0;
    return rc < 0 ? rc : redis_conn_cmd(t->cmd, cmd_done, x, argc, argv, lens);
  }
  if (!t->fresh || !x->argc || l->waiting >= RLINK_WAIT_MAX) return WSIO_ECLOSED;
  x->next = NULL;
  *t->wait_end = x;
  t->wait_end = &x->next;
  l->waiting++;
  return 0;
}

/* What waits for n, taken off it: n is no longer fresh, whatever becomes of the list. */
static rl_cmd *wait_take(rl_node *n) {
  rl_cmd *x = n->wait;
  n->wait = NULL;
  n->wait_end = &n->wait;
  n->fresh = 0;
  return x;
}

/* n's command connection is up: what waited for it is sent, in order; what cannot be (the connection went
 * again, its output is full) fails, once the list is done with. */
void rl_node_flush(rl_node *n) {
  rl_cmd *x = wait_take(n), *failed = NULL, **fend = &failed;
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
void rl_node_unwait(rl_node *n) {
  rl_cmd *x = wait_take(n);
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
    t = l->owner[slot]; /* rl_redirected() has just set it */
  } else {
    if (!hlen) host = x->n->host, hlen = strlen(x->n->host);
    if ((t = rl_node_get(l, host, hlen, port))) t->asked = uv_now(l->loop);
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
    rl_redirected(l, x->n, r->str, r->len);
    if (cmd_retry(x, r) == 0) return; /* the retry's answer comes here again */
  }
  cmd_end(x, r, failed);
}

int rl_cmd_start(rlink *l, rl_node *n, int pub, redis_reply_fn cb, void *ud, int argc, const char **argv,
                 const size_t *lens) {
  if (!rl_conn_up(n->cmd) && !n->fresh) return WSIO_ECLOSED;
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
