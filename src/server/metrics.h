/* Prometheus metrics of the wsio program (text exposition format 0.0.4). */
#ifndef WSIO_SERVER_METRICS_H
#define WSIO_SERVER_METRICS_H

#include <stdint.h>

#include "http/parser.h"
#include "util/buf.h"
#include "wsio.h"

/* A latency histogram (seconds), fixed buckets. */
#define SRV_HIST_BUCKETS 12
typedef struct srv_histogram {
  uint64_t counts[SRV_HIST_BUCKETS + 1]; /* the last is +Inf */
  uint64_t total;
  double sum;
} srv_histogram;

void srv_histogram_observe(srv_histogram *h, double seconds);

/* Counters the program keeps beyond the library's. */
typedef struct srv_metrics {
  srv_histogram proxy_latency;
  uint64_t proxy_requests, proxy_failures, proxy_timeouts;
  uint64_t webhook_deliveries, webhook_failures, webhook_dropped;
  uint64_t api_requests, api_rejected;
  uint64_t auth_rejected;
  uint64_t eio_errors[WSIO_EIO_UNSUPPORTED_PROTOCOL_VERSION + 1]; /* answers with Engine.IO error code i */
  uint64_t route_events;
  /* [redis]: summed over workers (each one node); redis_nodes 0 when the adapter is off */
  uint64_t redis_nodes, redis_connected, redis_connects, redis_disconnects;
  uint64_t redis_published, redis_received, redis_dropped, redis_malformed;
  /* Redis Cluster: primaries in the topology (0 with one server), topologies read, redirects */
  uint64_t redis_cluster_primaries, redis_cluster_refreshes, redis_cluster_redirects;
  /* Redis Sentinel: nodes using it, failovers they followed */
  uint64_t redis_sentinel, redis_sentinel_switches;
  /* streams mode */
  uint64_t redis_streams, redis_stream_entries, redis_queued, redis_sessions_saved, redis_sessions_restored;
} srv_metrics;

/* Appends the whole exposition for s (and the program's counters) to body. */
void srv_metrics_render(const wsio_server *s, const srv_metrics *m, buf *body);
/* The same from counters gathered by the caller (every worker's, summed), and the whole 200 answer to a GET
 * (head 0) or HEAD. Returns 200. */
void srv_metrics_render_stats(const wsio_stats *st, const srv_metrics *m, buf *body);
int srv_metrics_respond(const wsio_stats *st, const srv_metrics *m, int head, buf *out, int keep_alive);

/* Answers GET path with the metrics. Returns the status written, or 0 if req is not for path. */
int srv_metrics_handle(const wsio_server *s, const srv_metrics *m, const char *path, const http_request *req,
                       buf *out, int keep_alive);

#endif
