#include "sio/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/scan.h"
#include "util/utf8.h"
#include "wsio.h"

typedef const unsigned char *cursor;

static cursor skip_ws(cursor p, cursor end) {
  /* Most calls meet no whitespace at all (JSON.stringify writes none): one test for any byte above ' '. */
  while (p < end && *p <= ' ' && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static int is_digit(unsigned c) { return c - '0' < 10u; }

/* Reads the 4 hex digits of a \u escape at p. Returns the code unit or -1. */
static long hex4(cursor p, cursor end) {
  if (end - p < 4) return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = scan_hex(p[i]);
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
}

/* Decodes the escape after a backslash at p (p points past the backslash). Returns the code point and
 * advances *pp past the escape, or -1 on a bad escape or a lone surrogate. */
static long escape_decode(cursor *pp, cursor end) {
  cursor p = *pp;
  if (p >= end) return -1;
  long cp;
  switch (*p) {
    case '"': cp = '"'; break;
    case '\\': cp = '\\'; break;
    case '/': cp = '/'; break;
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u':
      cp = hex4(p + 1, end);
      if (cp < 0) return -1;
      p += 4;
      if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p < 3 || p[1] != '\\' || p[2] != 'u') return -1;
        long lo = hex4(p + 3, end);
        if (lo < 0xDC00 || lo > 0xDFFF) return -1;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      break;
    default:
      return -1;
  }
  *pp = p + 1;
  return cp;
}

/* Validates a string starting at its opening quote. Returns the byte after the closing quote, or NULL. */
static cursor scan_string(cursor p, cursor end) {
  p++;
  for (;;) {
    p += scan_json_plain(p, (size_t)(end - p));
    if (p >= end) return NULL;
    unsigned c = *p;
    if (c == '"') return p + 1;
    if (c == '\\') {
      p++;
      if (escape_decode(&p, end) < 0) return NULL;
    } else if (c < 0x20) {
      return NULL;
    } else if (!(p = utf8_seq(p, end))) {
      return NULL;
    }
  }
}

/* Validates a number per the grammar. Returns the byte after it, or NULL. */
static cursor scan_number(cursor p, cursor end) {
  if (p < end && *p == '-') p++;
  if (p >= end) return NULL;
  if (*p == '0') {
    p++;
  } else if (is_digit(*p)) {
    while (p < end && is_digit(*p)) p++;
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !is_digit(*p)) return NULL;
    while (p < end && is_digit(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !is_digit(*p)) return NULL;
    while (p < end && is_digit(*p)) p++;
  }
  return p;
}

static cursor scan_literal(cursor p, cursor end, const char *word, size_t n) {
  if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
  return p + n;
}

sio_json_kind sio_json_kind_of(char ch) {
  switch (ch) {
    case '"': return SIO_JSON_STRING;
    case '{': return SIO_JSON_OBJECT;
    case '[': return SIO_JSON_ARRAY;
    case 't': return SIO_JSON_TRUE;
    case 'f': return SIO_JSON_FALSE;
    case 'n': return SIO_JSON_NULL;
    default: return (ch == '-' || is_digit((unsigned char)ch)) ? SIO_JSON_NUMBER : SIO_JSON_NONE;
  }
}

static void span_at(sio_json_span *sp, cursor a, cursor b);

/* One value starting at p (whitespace skipped by the caller), validated: returns the byte after it, or NULL.
 * A loop over three states (expecting a value, a key, or what follows a value) with a bit stack of open
 * containers (1 = object), so untrusted nesting never recurses on the C stack; at most max_depth of them. */
static cursor value_end(cursor p, cursor end, unsigned max_depth) {
  uint64_t stack[SIO_JSON_DEPTH_MAX / 64];
  unsigned depth = 0;

value:
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  switch (*p) {
    case '{':
    case '[': {
      if (depth >= max_depth) return NULL;
      int obj = *p == '{';
      uint64_t bit = (uint64_t)1 << (depth % 64);
      stack[depth / 64] = obj ? stack[depth / 64] | bit : stack[depth / 64] & ~bit;
      depth++;
      p = skip_ws(p + 1, end);
      if (p < end && *p == (obj ? '}' : ']')) {
        p++;
        depth--;
        goto after;
      }
      if (obj) goto key;
      goto value;
    }
    case '"': p = scan_string(p, end); break;
    case 't': p = scan_literal(p, end, "true", 4); break;
    case 'f': p = scan_literal(p, end, "false", 5); break;
    case 'n': p = scan_literal(p, end, "null", 4); break;
    default: p = scan_number(p, end); break;
  }
  if (!p) return NULL;
  goto after;

key:
  if (p >= end || *p != '"' || !(p = scan_string(p, end))) return NULL;
  p = skip_ws(p, end);
  if (p >= end || *p != ':') return NULL;
  p++;
  goto value;

after:
  if (depth == 0) return p;
  {
    int obj = (stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == ',') {
      p = skip_ws(p + 1, end);
      if (obj) goto key;
      goto value;
    }
    if (*p != (obj ? '}' : ']')) return NULL;
    p++;
    depth--;
    goto after;
  }
}

/* Exactly one JSON text. When it is an array and elems is given, its top level is read here, each element's
 * span noted as it completes (the first cap of them; *count gets them all): the common Socket.IO payload, an
 * array of strings and small values, costs one loop, and only nested containers go through value_end. */
static inline int validate(const char *s, size_t len, unsigned max_depth, sio_json_span *out, sio_json_span *elems,
                           size_t cap, size_t *count) {
  if (max_depth > SIO_JSON_DEPTH_MAX) max_depth = SIO_JSON_DEPTH_MAX;
  cursor end = (cursor)s + len;
  cursor p = skip_ws((cursor)s, end);
  cursor start = p;
  size_t nelems = 0;
  if (p >= end) return WSIO_EPROTO;
  if (elems && *p == '[') {
    if (max_depth == 0) return WSIO_EPROTO;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
      p++;
    } else {
      for (;;) {
        cursor e0 = p;
        p = p < end && *p == '"' ? scan_string(p, end) : value_end(p, end, max_depth - 1);
        if (!p) return WSIO_EPROTO;
        if (nelems < cap) span_at(&elems[nelems], e0, p);
        nelems++;
        p = skip_ws(p, end);
        if (p >= end) return WSIO_EPROTO;
        if (*p == ',') {
          p = skip_ws(p + 1, end);
          continue;
        }
        if (*p != ']') return WSIO_EPROTO;
        p++;
        break;
      }
    }
  } else if (!(p = value_end(p, end, max_depth))) {
    return WSIO_EPROTO;
  }
  if (skip_ws(p, end) != end) return WSIO_EPROTO;
  if (out) {
    out->p = (const char *)start;
    out->len = (size_t)(p - start);
    out->kind = sio_json_kind_of((char)*start);
  }
  if (count) *count = nelems;
  return 0;
}

int sio_json_validate(const char *s, size_t len, unsigned max_depth, sio_json_span *out) {
  return validate(s, len, max_depth, out, NULL, 0, NULL);
}

int sio_json_validate_elems(const char *s, size_t len, unsigned max_depth, sio_json_span *out, sio_json_span *elems,
                            size_t cap, size_t *count) {
  static sio_json_span none;
  return validate(s, len, max_depth, out, elems ? elems : &none, elems ? cap : 0, count);
}

/* Skips a string without validating it. Returns the byte after the closing quote (or end). */
static cursor skip_string(cursor p, cursor end) {
  p++;
  while (p < end) {
    while (end - p >= 8) {
      uint64_t w = scan_load8(p);
      if (scan_eq8(w, '"') | scan_eq8(w, '\\')) break;
      p += 8;
    }
    if (p >= end) break;
    if (*p == '\\') {
      p += (end - p >= 2) ? 2 : 1;
    } else if (*p++ == '"') {
      break;
    }
  }
  return p;
}

/* Skips one value of validated text. Always advances at least one byte when p < end. */
static cursor skip_value(cursor p, cursor end) {
  if (p >= end) return p;
  if (*p == '"') return skip_string(p, end);
  if (*p == '{' || *p == '[') {
    size_t depth = 0;
    while (p < end) {
      unsigned c = *p;
      if (c == '"') {
        p = skip_string(p, end);
        continue;
      }
      p++;
      if (c == '{' || c == '[') {
        depth++;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        break;
      }
    }
    return p;
  }
  p++;
  while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ':' && *p != ' ' && *p != '\t' &&
         *p != '\n' && *p != '\r')
    p++;
  return p;
}

static void span_at(sio_json_span *sp, cursor a, cursor b) {
  sp->p = (const char *)a;
  sp->len = (size_t)(b - a);
  sp->kind = a < b ? sio_json_kind_of((char)*a) : SIO_JSON_NONE;
}

void sio_json_iter_init(sio_json_iter *it, const sio_json_span *c) {
  it->p = it->end = c->p;
  if ((c->kind == SIO_JSON_ARRAY || c->kind == SIO_JSON_OBJECT) && c->len >= 2) {
    it->p = c->p + 1;
    it->end = c->p + c->len - 1;
  }
}

/* Moves to the start of the next member: past whitespace and the separating comma. */
static cursor member_start(sio_json_iter *it) {
  cursor p = skip_ws((cursor)it->p, (cursor)it->end);
  if (p < (cursor)it->end && *p == ',') p = skip_ws(p + 1, (cursor)it->end);
  return p;
}

int sio_json_array_next(sio_json_iter *it, sio_json_span *elem) {
  cursor end = (cursor)it->end, p = member_start(it);
  if (p >= end) {
    it->p = it->end;
    return 0;
  }
  cursor q = skip_value(p, end);
  span_at(elem, p, q);
  it->p = (const char *)q;
  return 1;
}

int sio_json_object_next(sio_json_iter *it, sio_json_span *key, sio_json_span *val) {
  cursor end = (cursor)it->end, p = member_start(it);
  if (p >= end) {
    it->p = it->end;
    return 0;
  }
  cursor q = skip_value(p, end);
  span_at(key, p, q);
  p = skip_ws(q, end);
  if (p < end && *p == ':') p++;
  p = skip_ws(p, end);
  q = skip_value(p, end);
  span_at(val, p, q);
  it->p = (const char *)q;
  return 1;
}

size_t sio_json_array_count(const sio_json_span *arr) {
  if (arr->kind != SIO_JSON_ARRAY) return 0;
  sio_json_iter it;
  sio_json_span e;
  size_t n = 0;
  sio_json_iter_init(&it, arr);
  while (sio_json_array_next(&it, &e)) n++;
  return n;
}

/* Decodes the next character of a string body into out (1-4 bytes). Returns the byte count, 0 at the
 * closing quote or end, -1 on a malformed escape. Raw bytes are copied one at a time. */
static int string_next(cursor *pp, cursor end, unsigned char out[4]) {
  cursor p = *pp;
  if (p >= end || *p == '"') return 0;
  if (*p != '\\') {
    out[0] = *p;
    *pp = p + 1;
    return 1;
  }
  p++;
  long cp = escape_decode(&p, end);
  if (cp < 0) return -1;
  *pp = p;
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | cp >> 6);
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | cp >> 12);
    out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | cp >> 18);
  out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static int is_string_span(const sio_json_span *s) {
  return s->kind == SIO_JSON_STRING && s->len >= 2 && s->p[0] == '"';
}

int sio_json_string_equals(const sio_json_span *str, const char *s, size_t n) {
  if (!is_string_span(str)) return 0;
  const char *raw;
  size_t raw_len;
  if (sio_json_string_raw(str, &raw, &raw_len)) return raw_len == n && memcmp(raw, s, n) == 0;
  cursor p = (cursor)str->p + 1, end = (cursor)str->p + str->len - 1;
  size_t i = 0;
  unsigned char ch[4];
  int k;
  while ((k = string_next(&p, end, ch)) > 0) {
    if ((size_t)k > n - i || memcmp(ch, s + i, (size_t)k) != 0) return 0;
    i += (size_t)k;
  }
  return k == 0 && i == n;
}

ssize_t sio_json_string_decode(const sio_json_span *str, char *out, size_t cap) {
  if (!is_string_span(str)) return WSIO_EINVAL;
  cursor p = (cursor)str->p + 1, end = (cursor)str->p + str->len - 1;
  size_t n = 0;
  unsigned char ch[4];
  int k;
  while ((k = string_next(&p, end, ch)) > 0) {
    if ((size_t)k > cap - n) return WSIO_ETOOBIG;
    memcpy(out + n, ch, (size_t)k);
    n += (size_t)k;
  }
  if (k < 0) return WSIO_EPROTO;
  return (ssize_t)n;
}

int sio_json_object_find(const sio_json_span *obj, const char *key, size_t key_len, sio_json_span *val) {
  if (obj->kind != SIO_JSON_OBJECT) return 0;
  sio_json_iter it;
  sio_json_span k, v;
  int found = 0;
  sio_json_iter_init(&it, obj);
  while (sio_json_object_next(&it, &k, &v)) {
    if (sio_json_string_equals(&k, key, key_len)) {
      found = 1;
      if (val) *val = v;
    }
  }
  return found;
}

/* The escape of a character that needs one: its short form, or \u00XX for other control characters. */
static size_t escape_put(char *out, unsigned char c) {
  static const char hex[] = "0123456789abcdef";
  out[0] = '\\';
  switch (c) {
    case '"': out[1] = '"'; return 2;
    case '\\': out[1] = '\\'; return 2;
    case '\b': out[1] = 'b'; return 2;
    case '\f': out[1] = 'f'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default:
      memcpy(out + 1, "u00", 3);
      out[4] = hex[c >> 4];
      out[5] = hex[c & 15];
      return 6;
  }
}

static int needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

ssize_t sio_json_string_len(const char *s, size_t n) {
  /* Most strings (event names, ids) are printable ASCII with nothing to escape: one pass. */
  size_t i = scan_json_plain((cursor)s, n);
  if (i == n) return (ssize_t)n + 2;
  if (!utf8_valid((const uint8_t *)s + i, n - i)) return WSIO_EINVAL;
  size_t len = n + 2;
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (needs_escape(c)) len += c < 0x20 && c != '\b' && c != '\f' && c != '\n' && c != '\r' && c != '\t' ? 5 : 1;
  }
  return (ssize_t)len;
}

size_t sio_json_string_put(char *out, const char *s, size_t n, size_t len) {
  char *p = out;
  *p++ = '"';
  /* Nothing to escape (the measure says so): the bytes as they are, without looking at them again. */
  size_t i = len == n + 2 ? n : scan_json_plain((cursor)s, n), run = 0;
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!needs_escape(c)) continue; /* UTF-8 is copied as it is */
    memcpy(p, s + run, i - run);
    p += i - run;
    p += escape_put(p, c);
    run = i + 1;
  }
  if (n > run) memcpy(p, s + run, n - run); /* s may be NULL when n is 0 */
  p += n - run;
  *p++ = '"';
  return (size_t)(p - out);
}

int sio_json_write_string(buf *b, const char *s, size_t n) {
  ssize_t len = sio_json_string_len(s, n);
  if (len < 0) return (int)len;
  if (buf_reserve(b, (size_t)len)) return WSIO_ENOMEM;
  b->len += sio_json_string_put((char *)b->data + b->len, s, n, (size_t)len);
  return 0;
}

int sio_json_write_string_lossy(buf *b, const char *s, size_t n) {
  if (utf8_valid((const uint8_t *)s, n)) return sio_json_write_string(b, s, n);
  char *c = malloc(n ? n : 1);
  if (!c) return WSIO_ENOMEM;
  for (size_t i = 0; i < n; i++) c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
  int rc = sio_json_write_string(b, c, n);
  free(c);
  return rc;
}

int sio_json_uint(const sio_json_span *num, uint64_t max, uint64_t *v) {
  if (num->kind != SIO_JSON_NUMBER || num->len == 0) return WSIO_EPROTO;
  if (num->len > 1 && num->p[0] == '0') return WSIO_EPROTO;
  uint64_t x = 0;
  for (size_t i = 0; i < num->len; i++) {
    unsigned d = (unsigned char)num->p[i] - '0';
    if (d > 9 || d > max || x > (max - d) / 10) return WSIO_EPROTO;
    x = x * 10 + d;
  }
  *v = x;
  return 0;
}

int sio_json_placeholder(const sio_json_span *v, uint64_t limit, uint64_t *num) {
  sio_json_span flag, n;
  if (!sio_json_object_find(v, "_placeholder", 12, &flag) || flag.kind != SIO_JSON_TRUE) return 0;
  uint64_t x;
  if (limit == 0 || !sio_json_object_find(v, "num", 3, &n) || sio_json_uint(&n, limit - 1, &x) != 0)
    return WSIO_EPROTO;
  if (num) *num = x;
  return 1;
}

void sio_json_ph_init(sio_json_ph_iter *it, const sio_json_span *v, uint64_t limit) {
  it->p = v->p;
  it->end = v->p + v->len;
  it->limit = limit;
}

/* Every '{' outside strings starts an object; each one is checked, and a placeholder is skipped whole.
 * Checking scans the object, so the walk costs O(n * nesting depth). */
int sio_json_ph_next(sio_json_ph_iter *it, sio_json_span *obj, uint64_t *num) {
  cursor p = (cursor)it->p, end = (cursor)it->end;
  while (p < end) {
    if (*p == '"') {
      p = skip_string(p, end);
      continue;
    }
    if (*p != '{') {
      p++;
      continue;
    }
    cursor q = skip_value(p, end);
    sio_json_span o;
    span_at(&o, p, q);
    uint64_t x = 0;
    int rc = sio_json_placeholder(&o, it->limit, &x);
    if (rc < 0) {
      it->p = it->end;
      return rc;
    }
    if (rc == 1) {
      it->p = (const char *)q;
      if (obj) *obj = o;
      if (num) *num = x;
      return 1;
    }
    p++;
  }
  it->p = it->end;
  return 0;
}

int sio_json_truthy(const sio_json_span *v) {
  switch (v->kind) {
    case SIO_JSON_FALSE:
    case SIO_JSON_NULL:
    case SIO_JSON_NONE: return 0;
    case SIO_JSON_STRING: return v->len > 2;
    case SIO_JSON_NUMBER: {
      char tmp[64];
      size_t n = v->len < sizeof tmp - 1 ? v->len : sizeof tmp - 1;
      memcpy(tmp, v->p, n);
      tmp[n] = 0;
      return strtod(tmp, NULL) != 0;
    }
    default: return 1;
  }
}
