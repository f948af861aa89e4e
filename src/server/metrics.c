#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eio/packet.h"
#include "http/response.h"

static const double bucket_bounds[SRV_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1,    2.5,   5};

void srv_histogram_observe(srv_histogram *h, double seconds) {
  size_t i = 0;
  while (i < SRV_HIST_BUCKETS && seconds > bucket_bounds[i]) i++;
  h->counts[i]++;
  h->total++;
  h->sum += seconds;
}

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void metric(buf *b, const char *name, const char *type, const char *help, uint64_t v) {
  put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long)v);
}

/* One counter, two series: raw WebSocket endpoints and Socket.IO. */
static void by_protocol(buf *b, const char *name, const char *help, uint64_t ws, uint64_t sio) {
  put(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  put(b, "%s{protocol=\"websocket\"} %llu\n%s{protocol=\"socketio\"} %llu\n", name, (unsigned long long)ws, name,
      (unsigned long long)sio);
}

static void histogram(buf *b, const char *name, const char *help, const srv_histogram *h) {
  put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i < SRV_HIST_BUCKETS; i++) {
    cum += h->counts[i];
    put(b, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[i], (unsigned long long)cum);
  }
  cum += h->counts[SRV_HIST_BUCKETS];
  put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum, name, h->sum,
      name, (unsigned long long)h->total);
}

void srv_metrics_render(const wsio_server *s, const srv_metrics *m, buf *b) {
  wsio_stats st;
  wsio_workers_stats(s, &st); /* the whole process: every worker's counters */
  srv_metrics_render_stats(&st, m, b);
}

void srv_metrics_render_stats(const wsio_stats *stats, const srv_metrics *m, buf *b) {
  wsio_stats st = *stats;
  put(b, "# HELP wsio_connections Open connections by transport.\n# TYPE wsio_connections gauge\n");
  put(b, "wsio_connections{transport=\"tcp\"} %llu\n", (unsigned long long)st.connections);
  put(b, "wsio_connections{transport=\"websocket\"} %llu\n", (unsigned long long)st.sio_websocket);
  put(b, "wsio_connections{transport=\"polling\"} %llu\n", (unsigned long long)st.sio_polling);
  put(b, "wsio_connections{transport=\"raw_websocket\"} %llu\n", (unsigned long long)st.websockets);
  metric(b, "wsio_sockets", "gauge", "Socket.IO sockets connected, over all namespaces.", st.sio_sockets);
  metric(b, "wsio_namespaces", "gauge", "Socket.IO namespaces.", st.sio_namespaces);
  metric(b, "wsio_rooms", "gauge", "Rooms with members.", st.sio_rooms);
  metric(b, "wsio_events_received_total", "counter", "Socket.IO events received from clients.", st.sio_events_in);
  metric(b, "wsio_events_sent_total", "counter", "Socket.IO event packets queued to clients.", st.sio_events_out);
  metric(b, "wsio_messages_received_total", "counter", "Raw WebSocket messages received.", st.messages_in);
  metric(b, "wsio_messages_sent_total", "counter", "Raw WebSocket messages sent.", st.messages_out);
  metric(b, "wsio_bytes_received_total", "counter", "Bytes read from sockets.", st.bytes_in);
  metric(b, "wsio_bytes_sent_total", "counter", "Bytes written to sockets.", st.bytes_out);
  metric(b, "wsio_dropped_messages_total", "counter", "Messages dropped for backpressure (droppable and volatile).",
         st.dropped + st.sio_volatile_dropped);
  metric(b, "wsio_slow_consumer_closes_total", "counter", "Connections closed for an over-full send buffer.",
         st.slow_closes + st.sio_slow_closes);
  metric(b, "wsio_rejected_connections_total", "counter", "Connections refused at the connection limit.", st.rejected);
  metric(b, "wsio_parse_errors_total", "counter", "Clients closed for malformed packets.", st.sio_parse_errors);
  /* Abuse limits ([limits]; docs/security.md). */
  metric(b, "wsio_limit_ip_connections_refused_total", "counter",
         "Connections over max_connections_per_ip (answered 503, or closed at accept).", st.ip_refused);
  metric(b, "wsio_limit_handshakes_refused_total", "counter",
         "Handshakes answered 429 for handshakes_per_ip_per_second.", st.handshakes_limited);
  by_protocol(b, "wsio_limit_message_rate_closes_total", "Connections closed for messages_per_second.",
              st.rate_closes, st.sio_rate_closes);
  by_protocol(b, "wsio_limit_message_rate_dropped_total", "Messages dropped for messages_per_second (drop).",
              st.rate_dropped, st.sio_rate_dropped);
  metric(b, "wsio_limit_rooms_refused_total", "counter", "Joins refused at max_rooms_per_socket.",
         st.sio_rooms_refused);
  metric(b, "wsio_limit_acks_refused_total", "counter", "Acknowledgements not awaited at max_pending_acks.",
         st.sio_acks_refused);
  metric(b, "wsio_limit_tracked_addresses", "gauge", "Client addresses in the per-address table.", st.ip_addresses);
  metric(b, "wsio_origin_refused_total", "counter", "WebSocket upgrades refused (403) for their Origin.",
         st.origin_refused);
  metric(b, "wsio_worker_handoffs_total", "counter",
         "Connections handed to the worker that owns their Engine.IO session.", st.handoffs);
  if (!m) return;
  metric(b, "wsio_route_events_total", "counter", "Events handled by configured routes.", m->route_events);
  metric(b, "wsio_api_requests_total", "counter", "HTTP API calls.", m->api_requests);
  metric(b, "wsio_api_rejected_total", "counter", "HTTP API calls refused (auth or bad request).", m->api_rejected);
  metric(b, "wsio_auth_rejected_total", "counter", "Connections refused by JWT authentication.", m->auth_rejected);
  put(b, "# HELP wsio_engineio_errors_total Requests answered with an Engine.IO error (code, message).\n"
         "# TYPE wsio_engineio_errors_total counter\n");
  for (size_t i = 0; i < sizeof m->eio_errors / sizeof m->eio_errors[0]; i++)
    put(b, "wsio_engineio_errors_total{code=\"%zu\",message=\"%s\"} %llu\n", i, eio_error_message((int)i),
        (unsigned long long)m->eio_errors[i]);
  metric(b, "wsio_proxy_requests_total", "counter", "Events forwarded to the backend.", m->proxy_requests);
  metric(b, "wsio_proxy_failures_total", "counter", "Forwarded events that failed.", m->proxy_failures);
  metric(b, "wsio_proxy_timeouts_total", "counter", "Forwarded events that timed out.", m->proxy_timeouts);
  histogram(b, "wsio_proxy_latency_seconds", "Backend answer time for forwarded events.", &m->proxy_latency);
  metric(b, "wsio_webhook_deliveries_total", "counter", "Webhook batches delivered.", m->webhook_deliveries);
  metric(b, "wsio_webhook_failures_total", "counter", "Webhook batches that failed after retries.",
         m->webhook_failures);
  metric(b, "wsio_webhook_dropped_total", "counter", "Webhook events dropped from a full queue.", m->webhook_dropped);
  if (!m->redis_nodes) return;
  metric(b, "wsio_redis_nodes", "gauge", "Redis cluster nodes in this process (one per worker).", m->redis_nodes);
  metric(b, "wsio_redis_connected", "gauge", "Nodes whose Redis connections are both up.", m->redis_connected);
  metric(b, "wsio_redis_connects_total", "counter", "Redis connections made (first ones and reconnections).",
         m->redis_connects);
  metric(b, "wsio_redis_disconnects_total", "counter", "Redis connections lost or attempts failed.",
         m->redis_disconnects);
  metric(b, "wsio_redis_published_total", "counter", "Messages published to other nodes.", m->redis_published);
  metric(b, "wsio_redis_received_total", "counter", "Messages received from other nodes and emitters.",
         m->redis_received);
  metric(b, "wsio_redis_dropped_total", "counter", "Messages for other nodes dropped (Redis away or backlogged).",
         m->redis_dropped);
  metric(b, "wsio_redis_malformed_total", "counter", "Messages from Redis that did not decode.", m->redis_malformed);
  if (m->redis_sentinel)
    metric(b, "wsio_redis_sentinel_switches_total", "counter",
           "Redis Sentinel failovers followed: the master moved to another server.", m->redis_sentinel_switches);
  if (m->redis_streams) {
    metric(b, "wsio_redis_stream_entries_total", "counter", "Redis stream entries read (streams mode).",
           m->redis_stream_entries);
    metric(b, "wsio_redis_queued", "gauge", "Stream entries and sessions waiting for Redis to come back.",
           m->redis_queued);
    metric(b, "wsio_redis_sessions_saved_total", "counter", "Sessions saved in Redis for connection state recovery.",
           m->redis_sessions_saved);
    metric(b, "wsio_redis_sessions_restored_total", "counter",
           "Clients recovered from a session saved in Redis (by any node).", m->redis_sessions_restored);
  }
  if (!m->redis_cluster_primaries && !m->redis_cluster_refreshes) return; /* one Redis server */
  metric(b, "wsio_redis_cluster_primaries", "gauge", "Redis Cluster primaries in the topology known now.",
         m->redis_cluster_primaries);
  metric(b, "wsio_redis_cluster_refreshes_total", "counter", "Redis Cluster topologies read.",
         m->redis_cluster_refreshes);
  metric(b, "wsio_redis_cluster_redirects_total", "counter",
         "Redis Cluster -MOVED/-ASK replies and sharded subscriptions dropped by a moved slot.",
         m->redis_cluster_redirects);
}

int srv_metrics_handle(const wsio_server *s, const srv_metrics *m, const char *path, const http_request *req,
                       buf *out, int keep_alive) {
  if (!path || strlen(path) != req->path_len || memcmp(path, req->path, req->path_len) != 0) return 0;
  if (req->method != 1 && req->method != 2) {
    http_response_start(out, 405);
    http_response_header(out, "Allow", "GET, HEAD");
    http_response_end(out, NULL, 0, keep_alive);
    return 405;
  }
  wsio_stats st;
  wsio_workers_stats(s, &st);
  return srv_metrics_respond(&st, m, req->method == 2, out, keep_alive);
}

int srv_metrics_respond(const wsio_stats *st, const srv_metrics *m, int head, buf *out, int keep_alive) {
  buf body = {0};
  srv_metrics_render_stats(st, m, &body);
  http_response_start(out, 200);
  http_response_header(out, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  http_response_header(out, "Cache-Control", "no-store");
  http_response_end(out, head ? NULL : body.data, body.len, keep_alive);
  buf_free(&body);
  return 200;
}
