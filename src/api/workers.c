/* wsio_workers_run: one wsio_server per thread, the kernel spreading connections over them (SO_REUSEPORT),
 * a cluster adapter between their Socket.IO servers, long-polling sessions kept on the worker that owns
 * them, publish and statistics over the whole group. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/mailbox.h"
#include "adapter/workers.h"
#include "api/api.h"
#include "util/log.h"

#define API_MAX_PORTS 8

typedef struct api_worker {
  struct api_group *grp;
  unsigned index;
  uv_thread_t thread;
  int started;
  wsio_server *s;
  int setup_rc;
  wsio_worker_exit_cb on_exit;
  void *exit_ud;
  pthread_t tid;
  int running;                 /* between go and the loop's return; under the group's mutex */
  uv_prepare_t snap_tick;      /* copies the stats for other threads before the loop blocks */
  uv_timer_t snap_timer;
  uint64_t snap_at;
  pthread_mutex_t snap_mu;
  wsio_stats snap;
} api_worker;

typedef struct api_group {
  unsigned n;
  wk_group *wk;
  wsio_server_config cfg;
  wsio_worker_setup_cb setup;
  void *ud;
  api_worker *w;
  int ports[API_MAX_PORTS];    /* worker 0's listeners */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  unsigned ready, finished;
  int go;                      /* 0: wait; 1: run; -1: a setup failed, every worker stops */
  int stop_requested;          /* wsio_workers_stop or a signal came */
  uint32_t stop_timeout_ms;
  uv_loop_t ctl;               /* the calling thread's loop: signals, and the end of the workers */
  uv_async_t ctl_wake;
  uv_signal_t sigint, sigterm;
  int signals_on;
  int signals;                 /* SIGINT/SIGTERM seen */
} api_group;

unsigned wsio_cpu_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return (unsigned)n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}

void wsio_worker_on_exit(wsio_server *s, wsio_worker_exit_cb cb, void *ud) {
  if (!s || !s->group) return;
  api_worker *w = &s->group->w[s->worker];
  w->on_exit = cb;
  w->exit_ud = ud;
}

unsigned wsio_worker_index(const wsio_server *s) { return s && s->group ? s->worker : 0; }
unsigned wsio_worker_count(const wsio_server *s) { return s && s->group ? s->group->n : 1; }

int api_group_port(const wsio_server *s, int i) {
  if (!s->group || s->worker == 0 || i < 0 || i >= API_MAX_PORTS) return 0;
  return s->group->ports[i];
}

/* ---- messages between workers that are not Socket.IO's ---- */

typedef struct api_handoff {
  wk_msg node;
  net_handover conn;           /* the socket, its TLS state and its place in the per-address table */
  size_t len;
  uint8_t data[];
} api_handoff;

static void handoff_run(wk_group *g, unsigned to, wk_msg *m) {
  api_handoff *h = m->payload;
  wsio_server *s = wk_slot(g, to, WK_SLOT_SERVER);
  int rc = net_conn_adopt(&s->net, &h->conn, h->data, h->len);
  if (rc) log_warn("worker %u: could not take a connection from worker %u: %s", to, m->from, wsio_strerror(rc));
  free(h);
}

/* Not delivered (the group is stopping): the connection closes and frees its per-address place. */
static void handoff_drop(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  api_handoff *h = m->payload;
  net_handover_drop(&h->conn);
  free(h);
}

/* net_loop.handoff: a request for a session that lives on worker `owner` moves there with its socket. */
static int handoff(net_loop *l, net_conn *c, unsigned owner, const uint8_t *data, size_t len) {
  wsio_server *s = l->data;
  api_handoff *h = malloc(sizeof *h + len);
  if (!h) return WSIO_ENOMEM;
  int rc = net_conn_detach(c, &h->conn);
  if (rc) {
    free(h);
    return rc;
  }
  h->len = len;
  memcpy(h->data, data, len);
  h->node = (wk_msg){.run = handoff_run, .drop = handoff_drop, .payload = h, .from = s->worker};
  wk_post(s->group->wk, s->worker, owner, &h->node);
  return 0;
}

typedef struct api_publish {
  atomic_uint refs;
  wsio_opcode op;
  unsigned flags;
  char *path;
  size_t len;
  uint8_t *data;
  wk_msg nodes[];
} api_publish;

static void publish_release(api_publish *p) {
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) free(p);
}

static void publish_run(wk_group *g, unsigned to, wk_msg *m) {
  api_publish *p = m->payload;
  wsio_server *s = wk_slot(g, to, WK_SLOT_SERVER);
  wsio_msg *msg = wsio_msg_new(p->op, p->data, p->len);
  if (msg) {
    wsio_server_publish(s, p->path, msg, NULL, p->flags | WSIO_SEND_LOCAL);
    wsio_msg_unref(msg);
  }
  publish_release(p);
}

static void publish_drop(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  publish_release(m->payload);
}

void api_workers_publish(wsio_server *s, const char *path, wsio_opcode op, const void *data, size_t len,
                         unsigned flags) {
  unsigned n = s->group->n;
  if (n < 2) return;
  size_t plen = strlen(path) + 1;
  size_t head = sizeof(api_publish) + (n - 1) * sizeof(wk_msg);
  api_publish *p = malloc(head + plen + len);
  if (!p) {
    log_error("publish: out of memory: the other workers miss a message");
    return;
  }
  atomic_init(&p->refs, n - 1);
  p->op = op;
  p->flags = flags;
  p->path = memcpy((char *)p + head, path, plen);
  p->data = (uint8_t *)p->path + plen;
  if (len) memcpy(p->data, data, len);
  p->len = len;
  for (unsigned i = 0, k = 0; i < n; i++) {
    if (i == s->worker) continue;
    p->nodes[k] = (wk_msg){.run = publish_run, .drop = publish_drop, .payload = p, .from = s->worker};
    wk_post(s->group->wk, s->worker, i, &p->nodes[k++]);
  }
}

/* A second signal: every worker closes every connection at once. */
static void force_run(wk_group *g, unsigned to, wk_msg *m) {
  wsio_server *s = wk_slot(g, to, WK_SLOT_SERVER);
  for (net_conn *c = s->net.conns; c; c = c->next) net_conn_close(c);
  s->stop_deadline = 0;
  free(m);
}

static void force_drop(wk_group *g, unsigned to, wk_msg *m) {
  (void)g;
  (void)to;
  free(m);
}

/* ---- statistics over the group ---- */

/* Counting the sessions walks them: a busy loop copies its counters at most every SNAP_MS, and a timer
 * makes sure the last changes are copied within SNAP_MS once it goes quiet. */
#define SNAP_MS 10

static void snap_now(api_worker *w) {
  wsio_stats st;
  wsio_server_stats(w->s, &st);
  pthread_mutex_lock(&w->snap_mu);
  w->snap = st;
  pthread_mutex_unlock(&w->snap_mu);
  w->snap_at = uv_now(&w->s->uv);
}

static void on_snap_timer(uv_timer_t *t) { snap_now(t->data); }

static void on_snap_tick(uv_prepare_t *h) {
  api_worker *w = h->data;
  if (uv_now(&w->s->uv) - w->snap_at >= SNAP_MS) snap_now(w);
  else if (!uv_is_active((uv_handle_t *)&w->snap_timer)) uv_timer_start(&w->snap_timer, on_snap_timer, SNAP_MS, 0);
}

static void stats_add(wsio_stats *to, const wsio_stats *a) {
  const uint64_t *src = (const uint64_t *)a;
  uint64_t *dst = (uint64_t *)to;
  for (size_t i = 0; i < sizeof *a / sizeof(uint64_t); i++) dst[i] += src[i];
}

void wsio_workers_stats(const wsio_server *s, struct wsio_stats *out) {
  memset(out, 0, sizeof *out);
  if (!s) return;
  if (!s->group) {
    wsio_server_stats(s, out);
    return;
  }
  api_group *g = s->group;
  for (unsigned i = 0; i < g->n; i++) {
    api_worker *w = &g->w[i];
    wsio_stats st;
    if (pthread_equal(pthread_self(), w->tid) && w->running) {
      wsio_server_stats(w->s, &st); /* the caller's own worker: live */
    } else {
      pthread_mutex_lock(&w->snap_mu);
      st = w->snap;
      pthread_mutex_unlock(&w->snap_mu);
    }
    stats_add(out, &st);
    /* A per-address table shared by every worker reports the same total through each: count it once. */
    if (g->cfg.limiter) out->ip_addresses = st.ip_addresses;
  }
}

/* ---- the worker threads ---- */

static void wait_for(api_group *g, unsigned *counter, unsigned value) {
  pthread_mutex_lock(&g->mu);
  while (*counter < value) pthread_cond_wait(&g->cond, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void worker_main(void *arg) {
  api_worker *w = arg;
  api_group *g = w->grp;
  w->tid = pthread_self();
  wsio_server *s = wsio_server_new(&g->cfg);
  int rc = s ? 0 : WSIO_ENOMEM;
  if (s) {
    w->s = s;
    s->group = g;
    s->worker = w->index;
    if (g->n > 1) {
      s->net.reuseport = 1;
      s->net.worker = (uint16_t)w->index;
      s->net.nworkers = (uint16_t)g->n;
      s->net.handoff = handoff;
    }
    rc = wk_open(g->wk, w->index, &s->uv);
    wk_slot_set(g->wk, w->index, WK_SLOT_SERVER, s);
    uv_prepare_init(&s->uv, &w->snap_tick);
    w->snap_tick.data = w;
    uv_unref((uv_handle_t *)&w->snap_tick);
    uv_timer_init(&s->uv, &w->snap_timer);
    w->snap_timer.data = w;
    uv_unref((uv_handle_t *)&w->snap_timer);
  }
  if (rc == 0) rc = g->setup(s, w->index, g->ud);
  if (rc == 0 && s->io && g->n > 1) {
    int arc = wk_adapter_attach(g->wk, w->index, s->io);
    if (arc == WSIO_EEXISTS) log_debug("worker %u: its io keeps its own adapter", w->index);
    else rc = arc;
  }
  pthread_mutex_lock(&g->mu);
  w->setup_rc = rc;
  if (w->index == 0 && s) {
    for (int i = 0; i < s->net.nlisteners && i < API_MAX_PORTS; i++) {
      int port = net_listener_port(&s->net, i);
      g->ports[i] = port > 0 ? port : 0;
    }
  }
  g->ready++;
  pthread_cond_broadcast(&g->cond);
  while (g->go == 0) pthread_cond_wait(&g->cond, &g->mu);
  int go = g->go;
  w->running = go > 0;
  if (w->running && g->stop_requested) wsio_server_stop(s, g->stop_timeout_ms);
  pthread_mutex_unlock(&g->mu);

  if (go > 0) {
    snap_now(w);
    uv_prepare_start(&w->snap_tick, on_snap_tick);
    wsio_server_run(s, 0);
    uv_prepare_stop(&w->snap_tick);
    uv_timer_stop(&w->snap_timer);
  }
  if (s && w->on_exit) w->on_exit(s, w->index, w->exit_ud);
  /* Every loop has returned before any mailbox closes: until then a message to a finished worker waits in
   * its mailbox (and is dropped at the close) rather than waking a closed handle. */
  pthread_mutex_lock(&g->mu);
  w->running = 0;
  if (++g->finished == g->n) wk_seal(g->wk);
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
  uv_async_send(&g->ctl_wake);
  wait_for(g, &g->finished, g->n);
  if (s) {
    wk_close(g->wk, w->index);
    uv_close((uv_handle_t *)&w->snap_tick, NULL);
    uv_close((uv_handle_t *)&w->snap_timer, NULL);
    wsio_server_free(s);
  }
}

/* ---- the calling thread ---- */

static void on_ctl_wake(uv_async_t *a) {
  api_group *g = a->data;
  pthread_mutex_lock(&g->mu);
  int all = g->finished == g->n;
  pthread_mutex_unlock(&g->mu);
  if (!all) return;
  uv_close((uv_handle_t *)&g->ctl_wake, NULL);
  if (g->signals_on) {
    uv_close((uv_handle_t *)&g->sigint, NULL);
    uv_close((uv_handle_t *)&g->sigterm, NULL);
  }
}

/* Workers whose loop has returned are skipped (their server is being freed); those not running yet stop as
 * soon as they start. */
static void stop_all(api_group *g, uint32_t timeout_ms) {
  pthread_mutex_lock(&g->mu);
  g->stop_requested = 1;
  g->stop_timeout_ms = timeout_ms;
  for (unsigned i = 0; i < g->n; i++)
    if (g->w[i].s && g->w[i].running) wsio_server_stop(g->w[i].s, timeout_ms);
  pthread_mutex_unlock(&g->mu);
}

static void on_signal(uv_signal_t *h, int signum) {
  api_group *g = h->data;
  if (g->signals++) {
    log_warn("second signal %d: closing every connection", signum);
    for (unsigned i = 0; i < g->n; i++) {
      wk_msg *m = malloc(sizeof *m);
      if (!m) continue;
      *m = (wk_msg){.run = force_run, .drop = force_drop, .payload = m};
      wk_send(g->wk, i, m);
    }
    return;
  }
  log_info("signal %d: stopping %u workers", signum, g->n);
  stop_all(g, 0);
}

void wsio_workers_stop(wsio_server *s, uint32_t timeout_ms) {
  if (!s) return;
  if (!s->group) {
    wsio_server_stop(s, timeout_ms);
    return;
  }
  stop_all(s->group, timeout_ms);
}

static void group_free(api_group *g) {
  wk_group_free(g->wk);
  for (unsigned i = 0; g->w && i < g->n; i++) pthread_mutex_destroy(&g->w[i].snap_mu);
  free(g->w);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cond);
  free(g);
}

static int start_worker(api_group *g, unsigned i) {
  int rc = uv_thread_create(&g->w[i].thread, worker_main, &g->w[i]);
  if (rc == 0) g->w[i].started = 1;
  return rc;
}

int wsio_workers_run(unsigned n, const wsio_server_config *cfg, int handle_signals, wsio_worker_setup_cb setup,
                     void *ud) {
  if (!setup || n > 4096) return WSIO_EINVAL;
  if (n == 0) n = wsio_cpu_count();
  api_group *g = calloc(1, sizeof *g);
  if (!g) return WSIO_ENOMEM;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cond, NULL);
  g->n = n;
  g->setup = setup;
  g->ud = ud;
  if (cfg) g->cfg = *cfg;
  /* The log level is the process's: set here once, not by every worker's thread. */
  if (g->cfg.log_level > 0) log_level = g->cfg.log_level - 1;
  g->cfg.log_level = 0;
  if (!(g->w = calloc(n, sizeof *g->w)) || !(g->wk = wk_group_new(n))) {
    group_free(g);
    return WSIO_ENOMEM;
  }
  for (unsigned i = 0; i < n; i++) {
    g->w[i].grp = g;
    g->w[i].index = i;
    pthread_mutex_init(&g->w[i].snap_mu, NULL);
  }
  if (uv_loop_init(&g->ctl) != 0) {
    group_free(g);
    return WSIO_ENOMEM;
  }
  uv_async_init(&g->ctl, &g->ctl_wake, on_ctl_wake);
  g->ctl_wake.data = g;
  if (handle_signals) {
    uv_signal_init(&g->ctl, &g->sigint);
    uv_signal_init(&g->ctl, &g->sigterm);
    g->sigint.data = g->sigterm.data = g;
    uv_signal_start(&g->sigint, on_signal, SIGINT);
    uv_signal_start(&g->sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&g->sigint);
    uv_unref((uv_handle_t *)&g->sigterm);
    g->signals_on = 1;
    signal(SIGPIPE, SIG_IGN);
  }
  /* Worker 0 first, alone: the ports it gets are the ones the others share. */
  int rc = start_worker(g, 0);
  if (rc == 0) wait_for(g, &g->ready, 1);
  int first_error = rc ? rc : g->w[0].setup_rc;
  for (unsigned i = 1; i < n && first_error == 0; i++) first_error = start_worker(g, i);
  unsigned started = 0;
  for (unsigned i = 0; i < n; i++) started += (unsigned)g->w[i].started;
  wait_for(g, &g->ready, started);
  for (unsigned i = 0; i < n && first_error == 0; i++) first_error = g->w[i].setup_rc;
  pthread_mutex_lock(&g->mu);
  /* Workers never started count as finished, so those that did can pass the end barrier. */
  g->finished += n - started;
  g->go = first_error ? -1 : 1;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
  uv_async_send(&g->ctl_wake); /* with no worker started, nothing else would */
  if (first_error == 0 && n > 1) log_info("%u workers running", n);
  uv_run(&g->ctl, UV_RUN_DEFAULT);
  for (unsigned i = 0; i < n; i++)
    if (g->w[i].started) uv_thread_join(&g->w[i].thread);
  uv_loop_close(&g->ctl);
  group_free(g);
  return first_error;
}
