/* Redis URLs, the settings they cannot hold, and the checks at start (see redis_conn.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_block.h"
#include "adapter/redis_conn.h"
#include "util/log.h"
#include "util/pct.h"
#include "wsio.h"

void redis_url_free(redis_url *u) {
  free(u->host);
  free(u->user);
  free(u->password);
  free(u->master);
  for (size_t i = 0; i < u->nsentinels; i++) free(u->sentinels[i].host);
  free(u->sentinels);
  free(u->sentinel_user);
  free(u->sentinel_password);
  rtls_ctx_unref(u->tls_ctx);
  memset(u, 0, sizeof *u);
}

static int dup_opt(char **dst, const char *src) {
  *dst = src ? strdup(src) : NULL;
  return src && !*dst ? WSIO_ENOMEM : 0;
}

int redis_url_copy(redis_url *dst, const redis_url *src) {
  *dst = (redis_url){.port = src->port, .db = src->db, .tls = src->tls};
  int rc = dup_opt(&dst->host, src->host) | dup_opt(&dst->user, src->user) |
           dup_opt(&dst->password, src->password) | dup_opt(&dst->master, src->master) |
           dup_opt(&dst->sentinel_user, src->sentinel_user) | dup_opt(&dst->sentinel_password, src->sentinel_password);
  if (!rc && src->nsentinels) {
    if (!(dst->sentinels = calloc(src->nsentinels, sizeof *dst->sentinels))) rc = WSIO_ENOMEM;
    for (size_t i = 0; !rc && i < src->nsentinels; i++, dst->nsentinels++) {
      dst->sentinels[i].port = src->sentinels[i].port;
      rc = dup_opt(&dst->sentinels[i].host, src->sentinels[i].host);
    }
  }
  if (src->tls_ctx) dst->tls_ctx = rtls_ctx_ref(src->tls_ctx);
  if (rc) redis_url_free(dst);
  return rc ? WSIO_ENOMEM : 0;
}

static int why_set(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t cap, const char *fmt, ...) {
  if (why && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
  }
  return WSIO_EINVAL;
}

/* Percent-decoding of the user, password and master name (a password may hold '@', ':' or '/'). A '%' not
 * followed by two hex digits stays as it is; %00 is refused (*nul set): it would cut the string short. */
static char *pct_dup(const char *s, size_t n, int *nul) {
  char *o = malloc(n + 1);
  if (!o) return NULL;
  long len = pct_decode(s, n, o, n + 1, PCT_LENIENT); /* lenient, with room for it all: cannot fail */
  if (strlen(o) != (size_t)len) *nul = 1; /* s is part of a C string: only a %00 puts a NUL in o */
  return o;
}

/* host[:port] or [v6]:port in p[0..end): the host copied into *host. Returns 0, WSIO_EINVAL (why said:
 * the host is echoed, never what follows a ':', where a misplaced password would be), WSIO_ENOMEM. */
static int host_port(const char *p, const char *end, int def_port, char **host, int *port, char *why, size_t cap) {
  const char *hs = p, *he, *portp = NULL;
  *port = def_port;
  if (p < end && *p == '[') { /* [::1]:6379 */
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) return why_set(why, cap, "an IPv6 address without its closing ]");
    hs = p + 1;
    he = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':') return why_set(why, cap, "expected :port after the ] of an IPv6 address");
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    he = colon ? colon : end;
    if (colon) portp = colon + 1;
  }
  if (he == hs) return why_set(why, cap, "no host");
  if (portp) {
    char *pe;
    long v = strtol(portp, &pe, 10);
    if (pe != end || pe == portp || v <= 0 || v > 65535 || !isdigit((unsigned char)*portp))
      return why_set(why, cap, "the port of %.*s must be a number from 1 to 65535", (int)(he - hs), hs);
    *port = (int)v;
  }
  if (!(*host = malloc((size_t)(he - hs) + 1))) return WSIO_ENOMEM;
  memcpy(*host, hs, (size_t)(he - hs));
  (*host)[he - hs] = 0;
  return 0;
}

static int parse_db(const char *p, int *db, char *why, size_t cap) {
  char *de;
  long v = strtol(p, &de, 10);
  if (*de || de == p || v < 0 || v > 1000000 || !isdigit((unsigned char)*p))
    return why_set(why, cap, "the database must be a number, 0 or more");
  *db = (int)v;
  return 0;
}

/* The schemes: Sentinel or not, TLS or not. */
static const struct {
  const char *prefix;
  int sentinel, tls;
} schemes[] = {{"redis://", 0, 0}, {"rediss://", 0, 1}, {"redis+sentinel://", 1, 0}, {"rediss+sentinel://", 1, 1}};

int redis_url_parse_why(const char *url, redis_url *out, char *why, size_t cap) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (!url || !*url) return why_set(why, cap, "empty");
  const char *p = NULL;
  int sentinel = 0;
  for (size_t i = 0; i < sizeof schemes / sizeof *schemes && !p; i++) {
    size_t n = strlen(schemes[i].prefix);
    if (strncmp(url, schemes[i].prefix, n) == 0) {
      p = url + n;
      sentinel = schemes[i].sentinel;
      out->tls = schemes[i].tls;
    }
  }
  if (!p)
    return why_set(why, cap, "unknown scheme: expected redis://, rediss:// (TLS), redis+sentinel:// or "
                             "rediss+sentinel://");
  const char *slash = strchr(p, '/');
  const char *end = slash ? slash : p + strlen(p);
  const char *at = NULL;
  int rc = WSIO_EINVAL, nul = 0;
  /* Nothing after the first '/' may hold an '@': most likely a password with a '/' of its own, which would
   * otherwise be read as a host (and echoed in this error). */
  if (slash && strchr(slash, '@'))
    return why_set(why, cap, "an '@' after the first '/': write a '/' in the user or password as %%2F (and "
                             "an '@' in the master name as %%40)");
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    rc = WSIO_ENOMEM;
    if (colon) {
      if (colon > p && !(out->user = pct_dup(p, (size_t)(colon - p), &nul))) goto fail;
      if (!(out->password = pct_dup(colon + 1, (size_t)(at - colon - 1), &nul))) goto fail;
    } else if (at > p) {
      /* redis://secret@host: a password alone, as redis-cli -u reads it */
      if (!(out->password = pct_dup(p, (size_t)(at - p), &nul))) goto fail;
    }
    if (nul) {
      rc = why_set(why, cap, "%%00 in the user or password");
      goto fail;
    }
    p = at + 1;
  }
  if (!sentinel) {
    if ((rc = host_port(p, end, 6379, &out->host, &out->port, why, cap)) != 0) goto fail;
    if (slash && slash[1] && (rc = parse_db(slash + 1, &out->db, why, cap)) != 0) goto fail;
  } else {
    /* The sentinels, comma-separated, then /master-name[/db]. */
    size_t n = 1;
    for (const char *q = p; q < end; q++) n += *q == ',';
    if (n > REDIS_MAX_SENTINELS) {
      rc = why_set(why, cap, "%zu sentinels: at most %d", n, REDIS_MAX_SENTINELS);
      goto fail;
    }
    if (!slash || !slash[1]) {
      rc = why_set(why, cap, "no master name: %s://SENTINEL[,SENTINEL...]/MASTER[/db]",
                   out->tls ? "rediss+sentinel" : "redis+sentinel");
      goto fail;
    }
    rc = WSIO_ENOMEM;
    if (!(out->sentinels = calloc(n, sizeof *out->sentinels))) goto fail;
    for (const char *q = p; q <= end; out->nsentinels++) {
      const char *e = memchr(q, ',', (size_t)(end - q));
      if (!e) e = end;
      redis_addr *a = &out->sentinels[out->nsentinels];
      if ((rc = host_port(q, e, 26379, &a->host, &a->port, why, cap)) != 0) goto fail;
      q = e + 1;
    }
    const char *name = slash + 1, *ne = strchr(name, '/');
    if (!ne) ne = name + strlen(name);
    if (ne == name) {
      rc = why_set(why, cap, "an empty master name");
      goto fail;
    }
    if (*ne && (rc = parse_db(ne + 1, &out->db, why, cap)) != 0) goto fail;
    rc = WSIO_ENOMEM;
    if (!(out->master = pct_dup(name, (size_t)(ne - name), &nul))) goto fail;
    if (nul) {
      rc = why_set(why, cap, "%%00 in the master name");
      goto fail;
    }
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

int redis_url_parse(const char *url, redis_url *out) { return redis_url_parse_why(url, out, NULL, 0); }

int redis_url_apply(redis_url *u, const wsio_redis_config *cfg) {
  int tls_set = cfg->tls_ca_file || cfg->tls_cert_file || cfg->tls_key_file || cfg->tls_server_name ||
                cfg->tls_insecure;
  if (tls_set && !u->tls) {
    log_error("redis: TLS settings (tls_ca, tls_cert, tls_key, tls_server_name, tls_insecure) need a rediss:// "
              "or rediss+sentinel:// URL");
    return WSIO_EINVAL;
  }
  if ((cfg->sentinel_user || cfg->sentinel_password) && !u->master) {
    log_error("redis: sentinel_user and sentinel_password need a redis+sentinel:// or rediss+sentinel:// URL");
    return WSIO_EINVAL;
  }
  if (cfg->sentinel_user && !cfg->sentinel_password) {
    log_error("redis: sentinel_user needs sentinel_password");
    return WSIO_EINVAL;
  }
  if (!cfg->tls_cert_file != !cfg->tls_key_file) {
    log_error("redis: tls_cert and tls_key go together (set both or neither)");
    return WSIO_EINVAL;
  }
  if (dup_opt(&u->sentinel_user, cfg->sentinel_user) || dup_opt(&u->sentinel_password, cfg->sentinel_password))
    return WSIO_ENOMEM;
  if (!u->tls) return 0;
  rtls_config tc = {.ca_file = cfg->tls_ca_file, .cert_file = cfg->tls_cert_file, .key_file = cfg->tls_key_file,
                    .server_name = cfg->tls_server_name, .insecure = cfg->tls_insecure};
  char why[400];
  if (!(u->tls_ctx = rtls_ctx_new(&tc, why, sizeof why))) {
    log_error("redis: TLS: %s", why);
    return WSIO_ETLS;
  }
  if (cfg->tls_insecure)
    log_warn("redis: TLS without certificate verification (tls_insecure): anyone on the path to Redis can read "
             "and change the traffic; for testing only");
  return 0;
}

/* A TLS URL whose context was not made (redis_url_apply) must not fall back to plain. */
static int tls_missing(const redis_url *u, char *err, size_t errcap) {
  if (!u->tls || u->tls_ctx) return 0;
  snprintf(err, errcap, "a TLS URL without its TLS context");
  return WSIO_EINVAL;
}

int redis_probe(const redis_url *u, uint32_t timeout_ms, char *err, size_t errcap, int *cluster) {
  *cluster = 0;
  int rc = tls_missing(u, err, errcap);
  if (rc) return rc;
  rblk *c = rblk_connect(u->host, u->port, u->tls_ctx, timeout_ms, err, errcap, &rc);
  if (!c) return rc;
  redisReply *r = NULL;
  if (u->password)
    r = u->user ? rblk_command(c, "AUTH %s %s", u->user, u->password) : rblk_command(c, "AUTH %s", u->password);
  if (u->password && (!r || r->type == REDIS_REPLY_ERROR)) goto refused;
  if (r) freeReplyObject(r);
  if (u->master) {
    /* What the sentinels named must be a master now: a replica would take publishes and pass them on to
     * no one. */
    if (!(r = rblk_command(c, "ROLE"))) goto refused;
    int master = r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    if (!master) {
      snprintf(err, errcap, "the sentinels name it master of %s, but it is not a master (a failover under way?)",
               u->master);
      rblk_free(c);
      return WSIO_EIO;
    }
  }
  /* A cluster node: no SELECT there (database 0 only), and it must serve its slots. An error (INFO renamed
   * away) reads as a plain server. */
  r = rblk_command(c, "INFO cluster");
  if (r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_enabled:1")) {
    *cluster = 1;
    freeReplyObject(r);
    r = rblk_command(c, "CLUSTER INFO");
    const char *state = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cluster_state:") : NULL;
    int ok = state && strncmp(state + 14, "ok", 2) == 0;
    if (!ok && !r) {
      snprintf(err, errcap, "%s", rblk_errstr(c));
    } else if (!ok) {
      size_t n = state ? strcspn(state, "\r\n") : 0;
      snprintf(err, errcap, "a Redis Cluster that is not ok (%.*s)", (int)(n < 64 ? n : 64),
               state ? state : "no cluster_state");
    }
    rc = ok ? 0 : r ? WSIO_EIO : rblk_code(c);
    if (r) freeReplyObject(r);
    rblk_free(c);
    return rc;
  }
  if (r) freeReplyObject(r);
  r = rblk_command(c, u->db ? "SELECT %d" : "PING", u->db);
  if (!r || r->type == REDIS_REPLY_ERROR) goto refused;
  freeReplyObject(r);
  rblk_free(c);
  return 0;
refused:
  if (r)
    snprintf(err, errcap, "%.*s", (int)(r->len < 200 ? r->len : 200), r->str ? r->str : "");
  else
    snprintf(err, errcap, "%s", rblk_errstr(c));
  rc = r ? WSIO_EPROTO : rblk_code(c);
  if (r) freeReplyObject(r);
  rblk_free(c);
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

/* The sentinel's refusal of a command, with a hint when it wants a password it was not given. */
static int sentinel_refused(char *err, size_t errcap, const redis_addr *s, const redisReply *r, const redis_url *u) {
  int noauth = r->len >= 6 && strncmp(r->str, "NOAUTH", 6) == 0 && !u->sentinel_password;
  snprintf(err, errcap, "sentinel %s:%d: %.*s%s", s->host, s->port, (int)(r->len < 160 ? r->len : 160), r->str,
           noauth ? " (the sentinels require a password: sentinel_password)" : "");
  return WSIO_EIO;
}

/* Asks one sentinel (AUTH first when it has credentials) where u->master is: host (cap bytes) and *port.
 * Returns 0, WSIO_EIO, WSIO_ETLS or WSIO_ENOMEM, the reason in err. */
static int sentinel_ask(const redis_url *u, const redis_addr *s, uint32_t timeout_ms, char *host, size_t cap,
                        int *port, char *err, size_t errcap) {
  char why[256];
  int rc = 0;
  rblk *c = rblk_connect(s->host, s->port, u->tls_ctx, timeout_ms, why, sizeof why, &rc);
  if (!c) {
    snprintf(err, errcap, "sentinel %s:%d: %s", s->host, s->port, why);
    return rc;
  }
  redisReply *r = NULL;
  if (u->sentinel_password) {
    r = u->sentinel_user ? rblk_command(c, "AUTH %s %s", u->sentinel_user, u->sentinel_password)
                         : rblk_command(c, "AUTH %s", u->sentinel_password);
    if (r && r->type != REDIS_REPLY_ERROR) {
      freeReplyObject(r);
      r = rblk_command(c, "SENTINEL get-master-addr-by-name %s", u->master);
    } else if (r) {
      rc = sentinel_refused(err, errcap, s, r, u);
      goto done;
    }
  } else {
    r = rblk_command(c, "SENTINEL get-master-addr-by-name %s", u->master);
  }
  if (!r) {
    snprintf(err, errcap, "sentinel %s:%d: %s", s->host, s->port, rblk_errstr(c));
    rc = rblk_code(c);
  } else if (r->type == REDIS_REPLY_ERROR) {
    rc = sentinel_refused(err, errcap, s, r, u);
  } else if (redis_sentinel_reply(r, host, cap, port) != 0) {
    snprintf(err, errcap, "sentinel %s:%d does not know a master named %s", s->host, s->port, u->master);
    rc = WSIO_EIO;
  }
done:
  if (r) freeReplyObject(r);
  rblk_free(c);
  return rc;
}

int redis_sentinel_resolve(redis_url *u, uint32_t timeout_ms, char *err, size_t errcap) {
  snprintf(err, errcap, "no sentinel given");
  int rc = tls_missing(u, err, errcap);
  if (rc) return rc;
  rc = WSIO_EIO;
  for (size_t i = 0; i < u->nsentinels; i++) {
    char host[256];
    int port = 0;
    rc = sentinel_ask(u, &u->sentinels[i], timeout_ms, host, sizeof host, &port, err, errcap);
    if (rc == WSIO_ENOMEM) return rc;
    if (rc == 0) {
      char *h = strdup(host);
      if (!h) return WSIO_ENOMEM;
      free(u->host);
      u->host = h;
      u->port = port;
      return 0;
    }
  }
  return rc == WSIO_ETLS ? WSIO_ETLS : WSIO_EIO;
}
