/*
 * What redis_link.c and redis_link_cluster.c share: the link's state, its nodes and subscriptions.
 *
 * redis_link.c is the link in every mode: a node and its two connections, the subscription set and where
 * each subscription is held, publish, counts and commands, the modes (one server, found to be a cluster,
 * Sentinel), state and lifetime. redis_link_cluster.c is what only a Redis Cluster needs: the topology read
 * with CLUSTER SLOTS into the slot map, -MOVED/-ASK followed, and cluster commands in flight, sent again
 * after a redirection or waiting for a new node's first connection.
 *
 * Threading: the loop's thread only.
 */
#ifndef WSIO_ADAPTER_REDIS_LINK_INTERNAL_H
#define WSIO_ADAPTER_REDIS_LINK_INTERNAL_H

#include "adapter/redis_link.h"
#include "adapter/redis_sentinel.h"
#include "util/map.h"

/* A topology larger than this is refused: no real cluster comes near, and it bounds what a node costs. */
#define RL_MAX_NODES 1000

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
  size_t waiting;         /* commands waiting for new nodes (RLINK_WAIT_MAX) */
  rsen *sen;              /* Sentinel: who the master is */
  uint64_t switches;
};

static inline int rl_conn_up(const redis_conn *c) { return c && redis_conn_up(c); }

/* ---- redis_link.c ---- */

/* The node at host:port, created (with its command connection, being made) when new. NULL on ENOMEM or
 * past RL_MAX_NODES. */
rl_node *rl_node_get(rlink *l, const char *host, size_t hlen, int port);
/* Frees a node taken out of l->nodes. The callbacks of its commands, waiting or in flight, run now (with
 * NULL). */
void rl_node_free(rlink *l, rl_node *n);
/* Moves s to where it belongs now (the slot's owner, or the home node): unsubscribed where it was,
 * subscribed there (at once when up, else once up). */
void rl_sub_place(rlink *l, rl_sub *s);
void rl_subs_place_all(rlink *l);

/* ---- redis_link_cluster.c (rlink_refresh too) ---- */

/* Cluster mode's tables, and the seed node (the URL's). Returns 0 or WSIO_ENOMEM. */
int rl_cluster_init(rlink *l);
/* msg an error reply of node from: a -MOVED sets the slot's owner at once, and either redirection makes
 * the link read the topology again (counted). Returns 0 when msg is no redirection. */
int rl_redirected(rlink *l, rl_node *from, const char *msg, size_t len);
/* A cluster command for node n (a sharded publish: pub, no cb), copied when the budget allows: sent now,
 * or once n's first connection is up; a redirection is followed once. Returns 0, or WSIO_ECLOSED (n away,
 * or new and no copy could be kept), WSIO_ELIMIT, WSIO_ENOMEM: nothing sent, cb not called. */
int rl_cmd_start(rlink *l, rl_node *n, int pub, redis_reply_fn cb, void *ud, int argc, const char **argv,
                 const size_t *lens);
/* n's command connection is up: what waited for it goes out, in order (n is no longer new). */
void rl_node_flush(rl_node *n);
/* n's first connection failed, or n goes: what waited for it fails (n is no longer new). */
void rl_node_unwait(rl_node *n);

#endif
