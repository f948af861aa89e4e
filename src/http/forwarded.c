/* http_forwarded: the client behind trusted proxies, from X-Forwarded-For or Forwarded. */
#include "http/forwarded.h"

#include <string.h>
#include <strings.h>

/* ":" and 1 to 5 digits. */
static int port_ok(const char *p, size_t n) {
  if (n < 2 || n > 6 || p[0] != ':') return 0;
  for (size_t i = 1; i < n; i++)
    if (p[i] < '0' || p[i] > '9') return 0;
  return 1;
}

int http_forwarded_node(const char *s, size_t len, net_addr *out) {
  /* "[" an IPv6 address with an IPv4 tail "]:65535" is 54 bytes: anything longer is not an entry. */
  if (len == 0 || len > 64) return -1;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (!close) return -1;
    size_t in = (size_t)(close - s) - 1, after = len - in - 2;
    if (after && !port_ok(close + 1, after)) return -1;
    if (!memchr(s + 1, ':', in)) return -1; /* brackets hold an IPv6 address */
    return net_addr_parse(s + 1, in, out);
  }
  const char *colon = memchr(s, ':', len);
  if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
    /* One colon: an IPv4 address and its port (IPv6 text always has two or more). */
    if (!port_ok(colon, len - (size_t)(colon - s))) return -1;
    return net_addr_parse(s, (size_t)(colon - s), out);
  }
  return net_addr_parse(s, len, out);
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int named(const http_header *h, const char *name, size_t n) {
  return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* One step of the walk: entry e is either the client (returns HTTP_FWD_CLIENT), a trusted hop (returns
 * HTTP_FWD_NONE: go on, *last is set) or unreadable (HTTP_FWD_BAD). */
static int step(const char *e, size_t n, const net_trust *trust, net_addr *last, net_addr *out) {
  net_addr a;
  if (!e || http_forwarded_node(e, n, &a) != 0) return HTTP_FWD_BAD;
  if (!net_trust_match(trust, &a)) {
    *out = a;
    return HTTP_FWD_CLIENT;
  }
  *last = a;
  return HTTP_FWD_NONE;
}

/* ---- Forwarded (RFC 7239) ---- */

typedef struct fwd_for {
  const char *p;               /* the for= value without quotes; NULL: the element has none, or it is unusable */
  size_t n;
} fwd_for;

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Reads the elements of one Forwarded value into the ring fors (HTTP_FORWARDED_MAX_HOPS entries; *count
 * counts every element, so the last ones are kept). Returns 0, or -1 for a value that does not parse. */
static int forwarded_line(const char *v, size_t len, fwd_for *fors, size_t *count) {
  size_t i = 0;
  while (i <= len) {
    fwd_for f = {NULL, 0};
    int pairs = 0, has_for = 0;
    for (;;) { /* the pairs of one element */
      while (i < len && is_ows(v[i])) i++;
      size_t name = i;
      while (i < len && is_tchar((unsigned char)v[i])) i++;
      size_t name_len = i - name;
      if (name_len) {
        if (i >= len || v[i] != '=') return -1;
        i++;
        const char *val;
        size_t val_len;
        int usable = 1;
        if (i < len && v[i] == '"') {
          size_t start = ++i;
          while (i < len && v[i] != '"') {
            if (v[i] == '\\') { /* an escape: legal, but never in an address */
              usable = 0;
              i++;
            }
            i++;
          }
          if (i >= len) return -1;
          val = v + start;
          val_len = i - start;
          i++;
        } else {
          size_t start = i;
          while (i < len && is_tchar((unsigned char)v[i])) i++;
          val = v + start;
          val_len = i - start;
          if (!val_len) return -1;
        }
        pairs++;
        if (name_len == 3 && strncasecmp(v + name, "for", 3) == 0) {
          /* A parameter twice in one element is not allowed: which one the proxy meant is unknown. */
          f = has_for || !usable ? (fwd_for){NULL, 0} : (fwd_for){val, val_len};
          has_for = 1;
        }
        while (i < len && is_ows(v[i])) i++;
      }
      if (i < len && v[i] == ';') {
        i++;
        continue;
      }
      break;
    }
    if (i < len && v[i] != ',') return -1;
    if (pairs) fors[(*count)++ % HTTP_FORWARDED_MAX_HOPS] = has_for ? f : (fwd_for){NULL, 0};
    i++; /* past the comma, or past the end */
  }
  return 0;
}

static int forwarded_client(const http_request *req, const net_trust *trust, net_addr *out) {
  fwd_for fors[HTTP_FORWARDED_MAX_HOPS];
  size_t count = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header *h = &req->headers[i];
    if (named(h, "Forwarded", 9) && forwarded_line(h->value, h->value_len, fors, &count) != 0) return HTTP_FWD_BAD;
  }
  if (!count) return HTTP_FWD_NONE;
  net_addr last = {0};
  size_t kept = count < HTTP_FORWARDED_MAX_HOPS ? count : HTTP_FORWARDED_MAX_HOPS;
  for (size_t k = 0; k < kept; k++) {
    const fwd_for *f = &fors[(count - 1 - k) % HTTP_FORWARDED_MAX_HOPS];
    int rc = step(f->p, f->n, trust, &last, out);
    if (rc != HTTP_FWD_NONE) return rc;
  }
  if (count > kept) return HTTP_FWD_BAD; /* the leftmost trusted entry is beyond the bound */
  *out = last;
  return HTTP_FWD_CLIENT;
}

/* ---- X-Forwarded-For ---- */

int http_forwarded_client(const http_request *req, const net_trust *trust, net_addr *out) {
  int seen = 0;
  unsigned hops = 0;
  net_addr last = {0};
  for (size_t i = req->nheaders; i-- > 0;) {
    const http_header *h = &req->headers[i];
    if (!named(h, "X-Forwarded-For", 15)) continue;
    seen = 1;
    const char *v = h->value;
    size_t end = h->value_len;
    for (;;) {
      size_t start = end;
      while (start > 0 && v[start - 1] != ',') start--;
      size_t a = start, b = end;
      while (a < b && is_ows(v[a])) a++;
      while (b > a && is_ows(v[b - 1])) b--;
      if (a < b) {
        if (++hops > HTTP_FORWARDED_MAX_HOPS) return HTTP_FWD_BAD;
        int rc = step(v + a, b - a, trust, &last, out);
        if (rc != HTTP_FWD_NONE) return rc;
      }
      if (start == 0) break;
      end = start - 1;
    }
  }
  if (!seen) return forwarded_client(req, trust, out);
  if (!hops) return HTTP_FWD_NONE;
  *out = last;
  return HTTP_FWD_CLIENT;
}
