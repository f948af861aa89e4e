/* program — the wsio program's state shared by its files: the program, one worker per loop and thread, and
 * the configurations reloads bring. main.c owns and runs them; workers_http.c answers /metrics and the HTTP
 * API over every worker. */
#ifndef WSIO_SERVER_PROGRAM_H
#define WSIO_SERVER_PROGRAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "api/api.h"
#include "http/parser.h"
#include "server/app.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/proxy.h"
#include "server/webhooks.h"
#include "util/buf.h"
#include "wsio.h"

/* A configuration loaded by a reload. Every one is kept to exit: a worker may still read the one it
 * replaces, and what needs a restart (namespace patterns, endpoint paths) still points into the first. */
typedef struct reloaded {
  server_config cfg;           /* first: a worker finds its reloaded from the config it applies */
  struct reloaded *next;
  atomic_uint pending;         /* workers yet to apply it; the last one logs the report */
  unsigned restart;            /* changes that wait for a restart */
  char report[4096];           /* the diff, one change per line */
} reloaded;

struct program;

/* One per worker ([server] workers): the program's state on that worker's loop and thread. */
typedef struct worker {
  srv_app app;                 /* app.cfg: the configuration this worker runs with */
  struct program *p;
  unsigned index;
  srv_proxy *proxy;            /* events no route takes go to the backend, when [proxy] is set */
  srv_webhooks *webhooks;
  uv_async_t reload;           /* a reload to apply (program.live or program.tls_gen changed) */
  unsigned tls_gen;            /* the program.tls_gen this worker's certificate is from */
  uv_signal_t sighup;          /* worker 0 only: reloads are read once, then applied by every worker */
  uv_prepare_t snap_tick;      /* copies the metrics for /metrics answered by other workers */
  pthread_mutex_t snap_mu;
  srv_metrics snap;
  int handles;                 /* reload, sighup, snap_tick and inbox are initialised */
  /* The HTTP API across workers: parts to run here and answers to gather here (see gather_*). */
  uv_async_t inbox;
  pthread_mutex_t inbox_mu;
  int inbox_open;              /* under inbox_mu */
  struct gmsg *inbox_head, *inbox_tail;
  struct gather *gathers;      /* this worker's API requests awaiting other workers */
} worker;

typedef struct program {
  server_config cfg;           /* the start's configuration */
  _Atomic(const server_config *) live; /* the configuration in force: cfg or the latest reload */
  reloaded *reloads;           /* worker 0's thread only */
  worker *workers;
  unsigned nworkers;
  int exit_code;               /* a worker's setup failure: what main returns */
  int argc;
  char **argv;
  int demo;                    /* presence ("nick", "online"): the demo page or the built-in routes */
  const char *broadcast_path;
  wsio_limiter *limiter;       /* [limits] per client address, shared by every loop; reloads change it live */
  atomic_uint tls_gen;         /* bumped when worker 0 loaded the certificate again: the others follow */
} program;

/* ---- workers_http.c: /metrics and the HTTP API answered over every worker ---- */

/* The api_server hook of worker w (arg): /metrics and the HTTP API, gathered from every worker when there
 * are several. Returns what an api hook returns. */
int srv_workers_http_hook(wsio_server *s, const http_request *req, buf *out, int keep_alive, void *arg);
/* uv_prepare callback (h->data: the worker): copies its counters for /metrics answered by another worker. */
void srv_workers_snap_tick(uv_prepare_t *h);
/* uv_async callback (a->data: the worker): runs its inbox of request parts and answers. */
void srv_workers_inbox(uv_async_t *a);
/* A worker's exit: its inbox runs one last time and requests still gathering are answered 503. */
void srv_workers_gather_exit(worker *w);

#endif
