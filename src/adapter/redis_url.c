/* Redis URLs and the start-up reachability probe (see redis_conn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "adapter/redis_conn.h"
#include "wsio.h"

void redis_url_free(redis_url *u) {
  free(u->host);
  free(u->user);
  free(u->password);
  free(u->master);
  for (size_t i = 0; i < u->nsentinels; i++) free(u->sentinels[i].host);
  free(u->sentinels);
  memset(u, 0, sizeof *u);
}

static int dup_opt(char **dst, const char *src) {
  *dst = src ? strdup(src) : NULL;
  return src && !*dst ? WSIO_ENOMEM : 0;
}

int redis_url_copy(redis_url *dst, const redis_url *src) {
  *dst = (redis_url){.port = src->port, .db = src->db};
  int rc = dup_opt(&dst->host, src->host) | dup_opt(&dst->user, src->user) |
           dup_opt(&dst->password, src->password) | dup_opt(&dst->master, src->master);
  if (!rc && src->nsentinels) {
    if (!(dst->sentinels = calloc(src->nsentinels, sizeof *dst->sentinels))) rc = WSIO_ENOMEM;
    for (size_t i = 0; !rc && i < src->nsentinels; i++, dst->nsentinels++) {
      dst->sentinels[i].port = src->sentinels[i].port;
      rc = dup_opt(&dst->sentinels[i].host, src->sentinels[i].host);
    }
  }
  if (rc) redis_url_free(dst);
  return rc ? WSIO_ENOMEM : 0;
}

/* Percent-decoding for the user and password parts (a password may hold '@' or ':'). */
static char *pct_dup(const char *s, size_t n) {
  char *o = malloc(n + 1), *w = o;
  if (!o) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (end == hex + 2) {
        *w++ = (char)v;
        i += 2;
        continue;
      }
    }
    *w++ = s[i];
  }
  *w = 0;
  return o;
}

/* host[:port] or [v6]:port in p[0..end): the host copied into *host. Returns 0, WSIO_EINVAL, WSIO_ENOMEM. */
static int host_port(const char *p, const char *end, int def_port, char **host, int *port) {
  const char *hs = p, *he, *portp = NULL;
  *port = def_port;
  if (p < end && *p == '[') { /* [::1]:6379 */
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) return WSIO_EINVAL;
    hs = p + 1;
    he = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':') return WSIO_EINVAL;
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    he = colon ? colon : end;
    if (colon) portp = colon + 1;
  }
  if (he == hs) return WSIO_EINVAL;
  if (portp) {
    char *pe;
    long v = strtol(portp, &pe, 10);
    if (pe != end || pe == portp || v <= 0 || v > 65535) return WSIO_EINVAL;
    *port = (int)v;
  }
  if (!(*host = malloc((size_t)(he - hs) + 1))) return WSIO_ENOMEM;
  memcpy(*host, hs, (size_t)(he - hs));
  (*host)[he - hs] = 0;
  return 0;
}

static int parse_db(const char *p, int *db) {
  char *de;
  long v = strtol(p, &de, 10);
  if (*de || de == p || v < 0 || v > 1000000) return WSIO_EINVAL;
  *db = (int)v;
  return 0;
}

int redis_url_parse(const char *url, redis_url *out) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  int sentinel = url && strncmp(url, "redis+sentinel://", 17) == 0;
  if (!url || (!sentinel && strncmp(url, "redis://", 8) != 0)) return WSIO_EINVAL;
  const char *p = url + (sentinel ? 17 : 8);
  const char *slash = strchr(p, '/');
  const char *end = slash ? slash : p + strlen(p);
  const char *at = NULL;
  int rc = WSIO_EINVAL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    rc = WSIO_ENOMEM;
    if (colon) {
      if (colon > p && !(out->user = pct_dup(p, (size_t)(colon - p)))) goto fail;
      if (!(out->password = pct_dup(colon + 1, (size_t)(at - colon - 1)))) goto fail;
    } else if (at > p) {
      /* redis://secret@host: a password alone, as redis-cli -u reads it */
      if (!(out->password = pct_dup(p, (size_t)(at - p)))) goto fail;
    }
    p = at + 1;
  }
  if (!sentinel) {
    if ((rc = host_port(p, end, 6379, &out->host, &out->port)) != 0) goto fail;
    if (slash && slash[1] && (rc = parse_db(slash + 1, &out->db)) != 0) goto fail;
  } else {
    /* The sentinels, comma-separated, then /master-name[/db]. */
    size_t n = 1;
    for (const char *q = p; q < end; q++) n += *q == ',';
    rc = WSIO_EINVAL;
    if (n > REDIS_MAX_SENTINELS || !slash || !slash[1]) goto fail;
    rc = WSIO_ENOMEM;
    if (!(out->sentinels = calloc(n, sizeof *out->sentinels))) goto fail;
    for (const char *q = p; q <= end; out->nsentinels++) {
      const char *e = memchr(q, ',', (size_t)(end - q));
      if (!e) e = end;
      redis_addr *a = &out->sentinels[out->nsentinels];
      if ((rc = host_port(q, e, 26379, &a->host, &a->port)) != 0) goto fail;
      q = e + 1;
    }
    const char *name = slash + 1, *ne = strchr(name, '/');
    if (!ne) ne = name + strlen(name);
    rc = WSIO_EINVAL;
    if (ne == name || (*ne && (rc = parse_db(ne + 1, &out->db)) != 0)) goto fail;
    rc = WSIO_ENOMEM;
    if (!(out->master = pct_dup(name, (size_t)(ne - name)))) goto fail;
  }
  if (out->password && !*out->password && !out->user) {
    free(out->password);
    out->password = NULL;
  }
  return 0;
fail:
  redis_url_free(out);
  return rc;
}

int redis_probe(const redis_url *u, uint32_t timeout_ms, char *err, size_t errcap, int *cluster) {
  *cluster = 0;
  struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
  redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
  if (!c || c->err) {
    snprintf(err, errcap, "%s", c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return WSIO_EIO;
  }
  redisSetTimeout(c, tv);
  int rc = 0;
  redisReply *r = NULL;
  if (u->password)
    r = u->user ? redisCommand(c, "AUTH %s %s", u->user, u->password) : redisCommand(c, "AUTH %s", u->password);
  if (u->password && (!r || r->type == REDIS_REPLY_ERROR)) goto refused;
  if (r) freeReplyObject(r);
  if (u->master) {
    /* What the sentinels named must be a master now: a replica would take publishes and pass them on to
     * no one. */
    r = redisCommand(c, "ROLE");
    int master = r && r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "master") == 0;
    if (r) freeReplyObject(r);
    if (!master) {
      snprintf(err, errcap, "the sentinels name it master of %s, but it is not a master (a failover under way?)",
               u->master);
      redisFree(c);
      return WSIO_EIO;
    }
  }
  /* A cluster node: no SELECT there (database 0 only), and it must serve its slots. An error (INFO renamed
   * away) reads as a plain server. */
  r = redisCommand(c, "INFO cluster");
  if (r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_enabled:1")) {
    *cluster = 1;
    freeReplyObject(r);
    r = redisCommand(c, "CLUSTER INFO");
    const char *state = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cluster_state:") : NULL;
    int ok = state && strncmp(state + 14, "ok", 2) == 0;
    if (!ok) {
      size_t n = state ? strcspn(state, "\r\n") : 0;
      snprintf(err, errcap, "a Redis Cluster that is not ok (%.*s)", (int)(n < 64 ? n : 64),
               state ? state : "no cluster_state");
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok ? 0 : WSIO_EIO;
  }
  if (r) freeReplyObject(r);
  r = redisCommand(c, u->db ? "SELECT %d" : "PING", u->db);
  if (!r || r->type == REDIS_REPLY_ERROR) goto refused;
  freeReplyObject(r);
  redisFree(c);
  return 0;
refused:
  if (r)
    snprintf(err, errcap, "%.*s", (int)(r->len < 200 ? r->len : 200), r->str ? r->str : "");
  else
    snprintf(err, errcap, "%s", c->errstr);
  rc = r ? WSIO_EPROTO : WSIO_EIO;
  if (r) freeReplyObject(r);
  redisFree(c);
  return rc;
}

int redis_sentinel_reply(const redisReply *r, char *host, size_t cap, int *port) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return WSIO_ENOTFOUND;
  const redisReply *h = r->element[0], *p = r->element[1];
  if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING || !h->len || h->len >= cap) return WSIO_EPROTO;
  char *end;
  long v = strtol(p->str, &end, 10);
  if (*end || end == p->str || v <= 0 || v > 65535 || memchr(h->str, 0, h->len)) return WSIO_EPROTO;
  memcpy(host, h->str, h->len);
  host[h->len] = 0;
  *port = (int)v;
  return 0;
}

int redis_sentinel_resolve(redis_url *u, uint32_t timeout_ms, char *err, size_t errcap) {
  struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
  snprintf(err, errcap, "no sentinel given");
  for (size_t i = 0; i < u->nsentinels; i++) {
    const redis_addr *s = &u->sentinels[i];
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!c || c->err) {
      snprintf(err, errcap, "sentinel %s:%d: %s", s->host, s->port, c ? c->errstr : "out of memory");
      if (c) redisFree(c);
      continue;
    }
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", u->master);
    char host[256];
    int port = 0;
    int rc = redis_sentinel_reply(r, host, sizeof host, &port);
    if (rc == 0) {
      char *h = strdup(host);
      freeReplyObject(r);
      redisFree(c);
      if (!h) return WSIO_ENOMEM;
      free(u->host);
      u->host = h;
      u->port = port;
      return 0;
    }
    if (r && r->type == REDIS_REPLY_ERROR)
      snprintf(err, errcap, "sentinel %s:%d: %.*s", s->host, s->port, (int)(r->len < 160 ? r->len : 160), r->str);
    else if (r)
      snprintf(err, errcap, "sentinel %s:%d does not know a master named %s", s->host, s->port, u->master);
    else
      snprintf(err, errcap, "sentinel %s:%d: %s", s->host, s->port, c->errstr);
    if (r) freeReplyObject(r);
    redisFree(c);
  }
  return WSIO_EIO;
}
