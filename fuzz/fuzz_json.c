/*
 * fuzz_json — sio_json_validate against a slow recursive-descent reference written from RFC 8259 and
 * RFC 3629, then every span function over what validates: iteration re-validates each member, strings
 * decode and re-encode to themselves, keys are found, placeholders are walked, and the elements the
 * validator notes of an array are those the iterator finds. The iteration functions also
 * run on unvalidated bytes, where they must only stay in bounds and terminate.
 *
 * Input: byte 0 picks the depth limit, the rest is the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sio/json.h"
#include "wsio.h"
#include "util/utf8.h"

#define CHECK(x)                \
  do {                          \
    if (!(x)) __builtin_trap(); \
  } while (0)

/* ---- Reference ---- */

typedef struct ref {
  const unsigned char *p, *end;
  unsigned depth, max;
} ref;

static void ref_ws(ref *r) {
  while (r->p < r->end && strchr(" \t\r\n", *r->p) && *r->p) r->p++;
}

static int ref_hex(ref *r, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    if (r->p >= r->end) return 0;
    unsigned c = *r->p++, d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    *v = *v * 16 + d;
  }
  return 1;
}

static int ref_utf8(ref *r) {
  unsigned c = *r->p++, n, cp, min;
  if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07, min = 0x10000;
  else return 0;
  for (unsigned i = 0; i < n; i++) {
    if (r->p >= r->end || (*r->p & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (*r->p++ & 0x3Fu);
  }
  return cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

static int ref_string(ref *r) {
  r->p++;
  for (;;) {
    if (r->p >= r->end) return 0;
    unsigned c = *r->p;
    if (c == '"') {
      r->p++;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c >= 0x80) {
      if (!ref_utf8(r)) return 0;
      continue;
    }
    r->p++;
    if (c != '\\') continue;
    if (r->p >= r->end) return 0;
    c = *r->p++;
    if (strchr("\"\\/bfnrt", (int)c) && c) continue;
    if (c != 'u') return 0;
    unsigned v, lo;
    if (!ref_hex(r, &v)) return 0;
    if (v >= 0xDC00 && v <= 0xDFFF) return 0;
    if (v >= 0xD800 && v <= 0xDBFF) {
      if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') return 0;
      r->p += 2;
      if (!ref_hex(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
    }
  }
}

static int ref_digits(ref *r) {
  const unsigned char *s = r->p;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  return r->p > s;
}

static int ref_number(ref *r) {
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p < r->end && *r->p == '0') r->p++;
  else if (r->p >= r->end || *r->p < '1' || *r->p > '9' || !ref_digits(r)) return 0;
  if (r->p < r->end && *r->p == '.' && (r->p++, !ref_digits(r))) return 0;
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (!ref_digits(r)) return 0;
  }
  return 1;
}

static int ref_value(ref *r);

static int ref_container(ref *r, int obj) {
  if (r->depth++ >= r->max) return 0;
  r->p++;
  ref_ws(r);
  if (r->p < r->end && *r->p == (obj ? '}' : ']')) {
    r->p++;
    r->depth--;
    return 1;
  }
  for (;;) {
    if (obj) {
      if (r->p >= r->end || *r->p != '"' || !ref_string(r)) return 0;
      ref_ws(r);
      if (r->p >= r->end || *r->p++ != ':') return 0;
      ref_ws(r);
    }
    if (!ref_value(r)) return 0;
    ref_ws(r);
    if (r->p >= r->end) return 0;
    if (*r->p == ',') {
      r->p++;
      ref_ws(r);
      continue;
    }
    if (*r->p++ != (obj ? '}' : ']')) return 0;
    r->depth--;
    return 1;
  }
}

static int ref_value(ref *r) {
  if (r->p >= r->end) return 0;
  size_t left = (size_t)(r->end - r->p);
  switch (*r->p) {
    case '{': return ref_container(r, 1);
    case '[': return ref_container(r, 0);
    case '"': return ref_string(r);
    case 't': return left >= 4 && !memcmp(r->p, "true", 4) && (r->p += 4, 1);
    case 'f': return left >= 5 && !memcmp(r->p, "false", 5) && (r->p += 5, 1);
    case 'n': return left >= 4 && !memcmp(r->p, "null", 4) && (r->p += 4, 1);
    default: return ref_number(r);
  }
}

static int ref_valid(const char *s, size_t n, unsigned max) {
  ref r = {(const unsigned char *)s, (const unsigned char *)s + n, 0, max};
  ref_ws(&r);
  if (!ref_value(&r)) return 0;
  ref_ws(&r);
  return r.p == r.end;
}

/* ---- Checks over validated spans ---- */

static void check_string(const sio_json_span *s) {
  char *out = malloc(s->len);
  CHECK(out);
  ssize_t n = sio_json_string_decode(s, out, s->len);
  CHECK(n >= 0 && (size_t)n <= s->len - 2);
  CHECK(utf8_valid((const uint8_t *)out, (size_t)n));
  CHECK(sio_json_string_equals(s, out, (size_t)n) == 1);
  if (n > 0) {
    CHECK(sio_json_string_equals(s, out, (size_t)n - 1) == 0);
    CHECK(sio_json_string_decode(s, out, (size_t)n - 1) == WSIO_ETOOBIG);
  }
  buf b = {0};
  CHECK(sio_json_write_string(&b, out, (size_t)n) == 0);
  sio_json_span w;
  CHECK(sio_json_validate((const char *)b.data, b.len, 0, &w) == 0 && w.kind == SIO_JSON_STRING);
  CHECK(sio_json_string_equals(&w, out, (size_t)n) == 1);
  buf_free(&b);
  free(out);
}

static void check_value(const sio_json_span *v, unsigned depth) {
  sio_json_span again;
  CHECK(sio_json_validate(v->p, v->len, depth, &again) == 0);
  CHECK(again.p == v->p && again.len == v->len && again.kind == v->kind);
  sio_json_iter it;
  sio_json_span e, k;
  if (v->kind == SIO_JSON_STRING) check_string(v);
  if (v->kind == SIO_JSON_ARRAY) {
    size_t n = 0;
    sio_json_iter_init(&it, v);
    while (sio_json_array_next(&it, &e)) {
      CHECK(depth > 0);
      check_value(&e, depth - 1);
      n++;
    }
    CHECK(n == sio_json_array_count(v));
  }
  if (v->kind == SIO_JSON_OBJECT) {
    sio_json_iter_init(&it, v);
    while (sio_json_object_next(&it, &k, &e)) {
      CHECK(depth > 0 && k.kind == SIO_JSON_STRING);
      check_string(&k);
      check_value(&e, depth - 1);
      char key[256];
      ssize_t kn = sio_json_string_decode(&k, key, sizeof key);
      if (kn >= 0) CHECK(sio_json_object_find(v, key, (size_t)kn, NULL) == 1);
    }
  }
  uint64_t num;
  if (v->kind == SIO_JSON_NUMBER && sio_json_uint(v, UINT64_MAX, &num) == 0)
    CHECK(v->p[0] != '-' && !memchr(v->p, '.', v->len) && !memchr(v->p, 'e', v->len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned depth = data[0] < 200 ? data[0] % 40 : 1000 + data[0];
  const char *text = (const char *)data + 1;
  size_t n = size - 1;
  char *copy = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
  CHECK(copy);
  memcpy(copy, text, n);

  sio_json_span v;
  int rc = sio_json_validate(copy, n, depth, &v);
  CHECK(rc == 0 || rc == WSIO_EPROTO);
  /* The variant that notes an array's elements: the same verdict, and the spans the iterator gives. */
  sio_json_span ev, noted[3];
  size_t count = 0;
  CHECK(sio_json_validate_elems(copy, n, depth, &ev, noted, 3, &count) == rc);
  if (rc == 0) {
    CHECK(ev.p == v.p && ev.len == v.len && ev.kind == v.kind);
    CHECK(count == (v.kind == SIO_JSON_ARRAY ? sio_json_array_count(&v) : 0));
    sio_json_iter it;
    sio_json_span e;
    sio_json_iter_init(&it, &v);
    for (size_t i = 0; i < count && i < 3; i++) {
      CHECK(sio_json_array_next(&it, &e) == 1);
      CHECK(e.p == noted[i].p && e.len == noted[i].len && e.kind == noted[i].kind);
    }
  }
  CHECK((rc == 0) == ref_valid(copy, n, depth > SIO_JSON_DEPTH_MAX ? SIO_JSON_DEPTH_MAX : depth));
  if (rc == 0) {
    CHECK(v.p >= copy && v.p + v.len <= copy + n && v.kind != SIO_JSON_NONE);
    check_value(&v, depth > SIO_JSON_DEPTH_MAX ? SIO_JSON_DEPTH_MAX : depth);
    sio_json_ph_iter ph;
    sio_json_span obj;
    uint64_t num;
    int r;
    sio_json_ph_init(&ph, &v, 4);
    while ((r = sio_json_ph_next(&ph, &obj, &num)) == 1) {
      CHECK(num < 4 && obj.kind == SIO_JSON_OBJECT && obj.p >= v.p && obj.p + obj.len <= v.p + v.len);
      CHECK(sio_json_placeholder(&obj, 4, NULL) == 1);
    }
    CHECK(r == 0 || r == WSIO_EPROTO);
  } else {
    /* Unvalidated bytes: the span functions only have to stay in bounds and stop. */
    sio_json_span raw = {copy, n, n ? sio_json_kind_of(copy[0]) : SIO_JSON_NONE};
    sio_json_span e, k;
    sio_json_iter it;
    char out[64];
    for (int kind = SIO_JSON_STRING; kind <= SIO_JSON_ARRAY; kind++) {
      raw.kind = (sio_json_kind)kind;
      sio_json_iter_init(&it, &raw);
      while (sio_json_array_next(&it, &e)) {}
      sio_json_iter_init(&it, &raw);
      while (sio_json_object_next(&it, &k, &e)) (void)sio_json_string_decode(&k, out, sizeof out);
      (void)sio_json_object_find(&raw, "a", 1, NULL);
      (void)sio_json_string_decode(&raw, out, sizeof out);
      (void)sio_json_string_equals(&raw, "ab", 2);
      sio_json_ph_iter ph;
      sio_json_ph_init(&ph, &raw, 3);
      while (sio_json_ph_next(&ph, NULL, NULL) == 1) {}
    }
  }
  free(copy);
  return 0;
}
