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
  memset(u, 0, sizeof *u);
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

int redis_url_parse(const char *url, redis_url *out) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (!url || strncmp(url, "redis://", 8) != 0) return WSIO_EINVAL;
  const char *p = url + 8;
  const char *slash = strchr(p, '/');
  const char *end = slash ? slash : p + strlen(p);
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon) {
      if (colon > p && !(out->user = pct_dup(p, (size_t)(colon - p)))) goto nomem;
      if (!(out->password = pct_dup(colon + 1, (size_t)(at - colon - 1)))) goto nomem;
    } else if (at > p) {
      /* redis://secret@host: a password alone, as redis-cli -u reads it */
      if (!(out->password = pct_dup(p, (size_t)(at - p)))) goto nomem;
    }
    p = at + 1;
  }
  const char *hs = p, *he;
  const char *portp = NULL;
  if (*p == '[') { /* [::1]:6379 */
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) goto inval;
    hs = p + 1;
    he = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':') goto inval;
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    he = colon ? colon : end;
    if (colon) portp = colon + 1;
  }
  if (he == hs) goto inval;
  if (portp) {
    char *pe;
    long v = strtol(portp, &pe, 10);
    if (pe != end || pe == portp || v <= 0 || v > 65535) goto inval;
    out->port = (int)v;
  }
  if (slash && slash[1]) {
    char *de;
    long v = strtol(slash + 1, &de, 10);
    if (*de || v < 0 || v > 1000000) goto inval;
    out->db = (int)v;
  }
  if (!(out->host = malloc((size_t)(he - hs) + 1))) goto nomem;
  memcpy(out->host, hs, (size_t)(he - hs));
  out->host[he - hs] = 0;
  if (out->password && !*out->password && !out->user) {
    free(out->password);
    out->password = NULL;
  }
  return 0;
inval:
  redis_url_free(out);
  return WSIO_EINVAL;
nomem:
  redis_url_free(out);
  return WSIO_ENOMEM;
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
