/*
 * Query strings read into objects, the two ways socket.io reads them: handshake.query as Node's
 * querystring.parse does (a repeated key becomes an array), and a v3 client's namespace query as its auth,
 * as URLSearchParams entries put into an object (a repeated key keeps its last value).
 */
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"
#include "util/pct.h"

/* Percent-decodes s[0..n) into out, which has room for n + 1 bytes ('+' a space; a malformed escape is kept
 * as it is, so nothing fails). Returns the length, at most n. */
static size_t unescape(const char *s, size_t n, char *out) {
  long k = pct_decode(s, n, out, n + 1, PCT_PLUS | PCT_LENIENT);
  return k < 0 ? 0 : (size_t)k;
}

typedef struct query_pair {
  const char *k, *v;
  size_t klen, vlen;
} query_pair;

/* The "k=v" pieces of q[0..n) between '&'s, as they are (not decoded), at most cap of them; empty pieces
 * are skipped, and with skip_empty_keys those with an empty key too. Returns how many. */
static size_t split(const char *q, size_t n, int skip_empty_keys, query_pair *out, size_t cap) {
  size_t np = 0;
  for (size_t pos = 0; pos < n && np < cap;) {
    const char *p = q + pos, *amp = memchr(p, '&', n - pos);
    size_t len = amp ? (size_t)(amp - p) : n - pos;
    pos += len + 1;
    if (!len) continue;
    const char *eq = memchr(p, '=', len);
    query_pair *x = &out[np];
    x->k = p;
    x->klen = eq ? (size_t)(eq - p) : len;
    x->v = eq ? eq + 1 : p + len;
    x->vlen = eq ? len - x->klen - 1 : 0;
    np += !skip_empty_keys || x->klen > 0;
  }
  return np;
}

static int same_key(const query_pair *a, const query_pair *b) {
  return a->klen == b->klen && memcmp(a->k, b->k, a->klen) == 0;
}

/* At most 1000 pairs are read, as Node's querystring.parse does by default (maxKeys). */
#define QUERY_MAX_PAIRS 1000

int sio_query_json(buf *b, const char *q, size_t qlen) {
  query_pair *pairs = malloc(QUERY_MAX_PAIRS * sizeof *pairs);
  char *tmp = malloc(qlen + 1);
  int rc = pairs && tmp ? buf_append(b, "{", 1) : WSIO_ENOMEM;
  size_t n = rc == 0 ? split(q, qlen, 1, pairs, QUERY_MAX_PAIRS) : 0;
  int first = 1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t count = 0, seen = 0;
    for (size_t j = 0; j < n; j++) {
      int same = same_key(&pairs[j], &pairs[i]);
      seen |= same && j < i;
      count += same;
    }
    if (seen) continue; /* written with its first occurrence */
    if (!first) rc = buf_append(b, ",", 1);
    first = 0;
    if (rc == 0) rc = sio_json_write_string_lossy(b, tmp, unescape(pairs[i].k, pairs[i].klen, tmp));
    if (rc == 0) rc = buf_append(b, count > 1 ? ":[" : ":", count > 1 ? 2 : 1);
    for (size_t j = i, k = 0; rc == 0 && j < n; j++) {
      if (!same_key(&pairs[j], &pairs[i])) continue;
      if (k++ && (rc = buf_append(b, ",", 1)) != 0) break;
      rc = sio_json_write_string_lossy(b, tmp, unescape(pairs[j].v, pairs[j].vlen, tmp));
    }
    if (rc == 0 && count > 1) rc = buf_append(b, "]", 1);
  }
  if (rc == 0) rc = buf_append(b, "}", 1);
  free(pairs);
  free(tmp);
  return rc;
}

/* Pairs read from a v3 namespace's query, at most: the rest are left out of the auth object. */
#define SIO_V3_QUERY_PAIRS 64

int sio_query_auth_json(buf *out, const char *q, size_t n) {
  query_pair pairs[SIO_V3_QUERY_PAIRS];
  size_t np = split(q, n, 0, pairs, SIO_V3_QUERY_PAIRS);
  char *key = malloc(n + 1), *val = malloc(n + 1);
  int rc = key && val ? buf_append(out, "{", 1) : WSIO_ENOMEM, first = 1;
  for (size_t i = 0; rc == 0 && i < np; i++) {
    size_t later = i + 1;
    while (later < np && !same_key(&pairs[later], &pairs[i])) later++;
    if (later < np) continue; /* a later value wins */
    size_t kl = unescape(pairs[i].k, pairs[i].klen, key), vl = unescape(pairs[i].v, pairs[i].vlen, val);
    size_t old = out->len;
    if ((!first && buf_append(out, ",", 1)) || sio_json_write_string(out, key, kl) || buf_append(out, ":", 1) ||
        sio_json_write_string(out, val, vl)) {
      out->len = old; /* not UTF-8 once decoded: left out */
      continue;
    }
    first = 0;
  }
  if (rc == 0) rc = buf_append(out, "}", 1);
  free(key);
  free(val);
  return rc;
}
