/* wk_group: lock-free mailboxes between worker loops (see mailbox.h). */
#include "adapter/mailbox.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "wsio.h"

typedef struct wk_out {
  wk_msg *newest, *oldest;     /* a chain posted this iteration, newest first, linked as on the queue */
  unsigned n;                  /* messages in it */
} wk_out;

/* A chain this long goes at once rather than at the end of the iteration: a burst of broadcasts read in
 * one callback then keeps the peer busy beside this worker instead of waiting until this worker has done
 * its own part of the whole burst. */
#define WK_CHAIN_MAX 64

typedef struct wk_box {
  _Atomic(wk_msg *) head;      /* newest first; the owner reverses a batch to run it oldest first */
  uv_async_t wake;
  uv_check_t post;             /* pushes what this worker posted during the iteration, one chain per peer */
  uv_prepare_t post_early;     /* the same before the loop blocks (what timers posted) */
  int open;                    /* owner's thread only */
  wk_out *out;                 /* per peer, owner's thread only */
  void *slots[WK_SLOTS];
} wk_box;

struct wk_group {
  unsigned n;
  atomic_int sealed;
  wk_box *boxes;
};

wk_group *wk_group_new(unsigned n) {
  if (n < 1 || n > 4096) return NULL;
  wk_group *g = calloc(1, sizeof *g);
  if (!g || !(g->boxes = calloc(n, sizeof *g->boxes))) {
    free(g);
    return NULL;
  }
  g->n = n;
  for (unsigned i = 0; i < n; i++) {
    atomic_init(&g->boxes[i].head, NULL);
    if (!(g->boxes[i].out = calloc(n, sizeof(wk_out)))) {
      wk_group_free(g);
      return NULL;
    }
  }
  atomic_init(&g->sealed, 0);
  return g;
}

void wk_group_free(wk_group *g) {
  if (!g) return;
  for (unsigned i = 0; i < g->n; i++) free(g->boxes[i].out);
  free(g->boxes);
  free(g);
}

unsigned wk_group_size(const wk_group *g) { return g->n; }

/* Runs a batch in the order it was sent. */
static void run_batch(wk_group *g, unsigned i, wk_msg *m, int deliver) {
  wk_msg *fifo = NULL;
  while (m) {
    wk_msg *next = m->next;
    m->next = fifo;
    fifo = m;
    m = next;
  }
  while (fifo) {
    wk_msg *next = fifo->next;
    fifo->next = NULL;
    if (deliver) fifo->run(g, i, fifo);
    else fifo->drop(g, i, fifo);
    fifo = next;
  }
}

static void on_wake(uv_async_t *a) {
  wk_group *g = a->data;
  unsigned i = (unsigned)(((wk_box *)((char *)a - offsetof(wk_box, wake))) - g->boxes);
  wk_box *b = &g->boxes[i];
  /* Messages that a run() sends to this same worker land in a later batch: no unbounded loop here. */
  wk_msg *m = atomic_exchange_explicit(&b->head, NULL, memory_order_acquire);
  run_batch(g, i, m, !atomic_load_explicit(&g->sealed, memory_order_acquire));
}

/* Pushes a whole chain with one compare-and-swap: its oldest node links to the current head. */
static void push_chain(wk_group *g, unsigned to, wk_msg *newest, wk_msg *oldest) {
  wk_box *b = &g->boxes[to];
  wk_msg *old = atomic_load_explicit(&b->head, memory_order_relaxed);
  do {
    oldest->next = old;
  } while (!atomic_compare_exchange_weak_explicit(&b->head, &old, newest, memory_order_release,
                                                  memory_order_relaxed));
  /* Only the push onto an empty list wakes the loop: the owner takes the whole list at once. */
  if (!old) uv_async_send(&b->wake);
}

static void drop_chain(wk_group *g, unsigned to, wk_msg *m) {
  while (m) {
    wk_msg *next = m->next;
    m->drop(g, to, m);
    m = next;
  }
}

static void flush_one(wk_group *g, wk_out *o, unsigned to, int sealed) {
  wk_msg *newest = o->newest, *oldest = o->oldest;
  o->newest = o->oldest = NULL;
  o->n = 0;
  if (sealed) drop_chain(g, to, newest);
  else push_chain(g, to, newest, oldest);
}

void wk_flush(wk_group *g, unsigned from) {
  wk_box *b = &g->boxes[from];
  int sealed = atomic_load_explicit(&g->sealed, memory_order_acquire);
  for (unsigned to = 0; to < g->n; to++)
    if (b->out[to].newest) flush_one(g, &b->out[to], to, sealed);
}

static void on_post_early(uv_prepare_t *h) {
  wk_group *g = h->data;
  wk_box *b = (wk_box *)((char *)h - offsetof(wk_box, post_early));
  wk_flush(g, (unsigned)(b - g->boxes));
}

static void on_post_check(uv_check_t *h) {
  wk_group *g = h->data;
  wk_box *b = (wk_box *)((char *)h - offsetof(wk_box, post));
  wk_flush(g, (unsigned)(b - g->boxes));
}

int wk_open(wk_group *g, unsigned i, uv_loop_t *loop) {
  if (i >= g->n) return WSIO_EINVAL;
  wk_box *b = &g->boxes[i];
  int rc = uv_async_init(loop, &b->wake, on_wake);
  if (rc) return rc;
  b->wake.data = g;
  uv_unref((uv_handle_t *)&b->wake);
  uv_check_init(loop, &b->post);
  b->post.data = g;
  uv_check_start(&b->post, on_post_check);
  uv_unref((uv_handle_t *)&b->post);
  uv_prepare_init(loop, &b->post_early);
  b->post_early.data = g;
  uv_prepare_start(&b->post_early, on_post_early);
  uv_unref((uv_handle_t *)&b->post_early);
  b->open = 1;
  return 0;
}

void wk_post(wk_group *g, unsigned from, unsigned to, wk_msg *m) {
  if (to >= g->n || atomic_load_explicit(&g->sealed, memory_order_acquire)) {
    m->drop(g, to, m);
    return;
  }
  wk_out *o = &g->boxes[from].out[to];
  m->next = o->newest;
  o->newest = m;
  if (!o->oldest) o->oldest = m;
  if (++o->n >= WK_CHAIN_MAX) flush_one(g, o, to, 0);
}

void wk_seal(wk_group *g) { atomic_store_explicit(&g->sealed, 1, memory_order_release); }

void wk_close(wk_group *g, unsigned i) {
  wk_box *b = &g->boxes[i];
  if (!b->open) return;
  b->open = 0;
  for (unsigned to = 0; to < g->n; to++) {
    drop_chain(g, to, b->out[to].newest);
    b->out[to].newest = b->out[to].oldest = NULL;
  }
  run_batch(g, i, atomic_exchange_explicit(&b->head, NULL, memory_order_acquire), 0);
  uv_close((uv_handle_t *)&b->wake, NULL);
  uv_close((uv_handle_t *)&b->post, NULL);
  uv_close((uv_handle_t *)&b->post_early, NULL);
}

int wk_send(wk_group *g, unsigned to, wk_msg *m) {
  if (to >= g->n) {
    m->drop(g, to, m);
    return WSIO_EINVAL;
  }
  if (atomic_load_explicit(&g->sealed, memory_order_acquire)) {
    m->drop(g, to, m);
    return WSIO_ECLOSED;
  }
  push_chain(g, to, m, m);
  return 0;
}

void wk_slot_set(wk_group *g, unsigned i, int slot, void *p) { g->boxes[i].slots[slot] = p; }
void *wk_slot(const wk_group *g, unsigned i, int slot) { return g->boxes[i].slots[slot]; }
