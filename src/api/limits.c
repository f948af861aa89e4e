/* Abuse limits of the public API: the shared per-address table (wsio_limiter) and its wiring into a server;
 * the answers to refused handshakes. */

#include "api/api.h"
#include "http/response.h"
#include "net/iplimit.h"
#include "net/trust.h"
#include "util/log.h"

/* A wsio_limiter is a net_iplimit: the public name of the same object. */
static net_iplimit *ipl(wsio_limiter *l) { return (net_iplimit *)(void *)l; }

static net_iplimit_config to_net(const wsio_limiter_config *c) {
  net_iplimit_config n = {0};
  if (!c) return n;
  n.max_conns = c->max_connections_per_ip;
  n.rate = c->handshakes_per_ip_per_second;
  n.burst = c->handshake_burst;
  n.max_entries = c->max_addresses;
  n.ipv6_prefix = c->ipv6_prefix;
  return n;
}

wsio_limiter *wsio_limiter_new(const wsio_limiter_config *cfg) {
  net_iplimit_config n = to_net(cfg);
  return (wsio_limiter *)(void *)net_iplimit_new(&n);
}

void wsio_limiter_set(wsio_limiter *l, const wsio_limiter_config *cfg) {
  if (!l) return;
  net_iplimit_config n = to_net(cfg);
  net_iplimit_configure(ipl(l), &n);
}

size_t wsio_limiter_count(wsio_limiter *l) {
  if (!l) return 0;
  net_iplimit_stats st;
  net_iplimit_stats_get(ipl(l), &st);
  return (size_t)st.entries;
}

void wsio_limiter_free(wsio_limiter *l) {
  if (l) net_iplimit_unref(ipl(l));
}

int wsio_server_set_trusted_proxies(wsio_server *s, const char *list) {
  if (!s) return WSIO_EINVAL;
  net_trust *t = NULL;
  char err[160];
  int rc = net_trust_parse(list, &t, err, sizeof err);
  if (rc == WSIO_EINVAL) log_error("trusted proxies: %s", err);
  if (rc) return rc;
  net_trust_free(s->trust);
  s->trust = t;
  s->net.trust = t;
  return 0;
}

int api_limits_attach(wsio_server *s) {
  const wsio_server_config *c = &s->cfg;
  int rc = wsio_server_set_trusted_proxies(s, c->trusted_proxies);
  s->cfg.trusted_proxies = NULL; /* not kept: parsed */
  if (rc) return rc;
  if (c->limiter) {
    s->net.iplimit = net_iplimit_ref(ipl(c->limiter));
  } else if (c->max_connections_per_ip || c->handshakes_per_ip_per_second) {
    wsio_limiter_config lc = {c->max_connections_per_ip, c->handshakes_per_ip_per_second, c->handshake_burst, 0, 0};
    net_iplimit_config n = to_net(&lc);
    if (!(s->net.iplimit = net_iplimit_new(&n))) return WSIO_ENOMEM;
  }
  s->cfg.limiter = NULL; /* not kept: the loop holds the reference */
  return 0;
}

void api_limits_detach(wsio_server *s) {
  net_iplimit_unref(s->net.iplimit);
  s->net.iplimit = NULL;
  net_trust_free(s->trust);
  s->trust = NULL;
  s->net.trust = NULL;
}

void api_limits_stats(const wsio_server *s, wsio_stats *out) {
  out->ip_refused = s->net.stats.ip_refused;
  out->handshakes_limited = s->net.stats.handshakes_limited;
  out->origin_refused = s->net.stats.origin_refused;
  out->ip_addresses = wsio_limiter_count((wsio_limiter *)(void *)s->net.iplimit);
}

int api_refuse_over_ip(http_conn *hc, const http_request *req) {
  net_conn *c = http_conn_net(hc);
  if (!(c->flags & NET_CONN_IPOVER)) return 0;
  static const char body[] = "too many connections from your address; try again later\n";
  buf out = {0};
  http_response_start(&out, 503);
  http_response_header(&out, "Content-Type", "text/plain; charset=utf-8");
  http_response_header(&out, "Retry-After", "5");
  int keep_alive = c->proxied && http_conn_keep_alive(hc, req);
  http_response_end(&out, body, sizeof body - 1, keep_alive);
  http_conn_respond(hc, out.data, out.len, keep_alive);
  buf_free(&out);
  return 1;
}

int api_handshake_refused(http_conn *hc) {
  uint32_t wait = net_conn_handshake_wait(http_conn_net(hc));
  if (!wait) return 0;
  buf out = {0};
  http_response_too_many_start(&out, wait);
  http_response_too_many_end(&out);
  http_conn_respond(hc, out.data, out.len, 0);
  buf_free(&out);
  return 1;
}
