/* mpk: msgpack -> JSON with attachments (the reading half; writers are in msgpack_pack.c). */
#include "sio/msgpack.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsio.h"

/* value()'s answer for notepack.io's undefined: nothing written, the container decides (a positive code,
 * never returned to callers). */
#define MPK_UNDEFINED 1

typedef struct rd {
  const uint8_t *p, *end;
  buf *json;
  size_t json_start, max_json;
  mpk_atts *atts;
  size_t max_atts;
  unsigned max_depth;
} rd;

void mpk_atts_free(mpk_atts *a) {
  free(a->v);
  a->v = NULL;
  a->n = a->cap = 0;
}

static uint64_t be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

static size_t left(const rd *r) { return (size_t)(r->end - r->p); }

static int put(rd *r, const void *s, size_t n) {
  if (r->json->len - r->json_start + n > r->max_json) return WSIO_EPROTO;
  return buf_append(r->json, s, n);
}

static int put_str(rd *r, const char *s) { return put(r, s, strlen(s)); }

/* Reads an n-byte big-endian length or count after the type byte. */
static int take_len(rd *r, unsigned n, uint64_t *v) {
  if (left(r) < n) return WSIO_EPROTO;
  *v = be(r->p, n);
  r->p += n;
  return 0;
}

static int put_string(rd *r, const uint8_t *s, size_t n) {
  if (r->json->len - r->json_start + n + 2 > r->max_json) return WSIO_EPROTO;
  int rc = sio_json_write_string(r->json, (const char *)s, n);
  if (rc == WSIO_EINVAL) return WSIO_EPROTO;
  if (rc < 0) return rc;
  if (r->json->len - r->json_start > r->max_json) return WSIO_EPROTO;
  return 0;
}

/* Shortest of %.15g..%.17g that reads back as d: 0.1 stays "0.1". JSON has no NaN or Infinity: null, as
 * JSON.stringify writes them. */
static int put_double(rd *r, double d) {
  if (!isfinite(d)) return put_str(r, "null");
  char tmp[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  return put_str(r, tmp);
}

static int put_bin(rd *r, const uint8_t *p, size_t n) {
  mpk_atts *a = r->atts;
  if (a->n >= r->max_atts) return WSIO_EPROTO;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 4;
    sio_bin *v = realloc(a->v, cap * sizeof *v);
    if (!v) return WSIO_ENOMEM;
    a->v = v;
    a->cap = cap;
  }
  char tmp[64];
  int k = snprintf(tmp, sizeof tmp, "{\"_placeholder\":true,\"num\":%zu}", a->n);
  int rc = put(r, tmp, (size_t)k);
  if (rc < 0) return rc;
  a->v[a->n++] = (sio_bin){p, n};
  return 0;
}

/* A date as Date.toJSON writes it; dates outside years 0..9999 become null (Date.toJSON would throw or
 * write a six-digit year). */
static int put_iso(rd *r, int64_t sec, unsigned ms) {
  /* 0000-01-01 .. 9999-12-31 */
  if (sec < INT64_C(-62167219200) || sec > INT64_C(253402300799)) return put_str(r, "null");
  time_t t = (time_t)sec;
  struct tm tm;
  if (!gmtime_r(&t, &tm)) return put_str(r, "null");
  char tmp[48];
  snprintf(tmp, sizeof tmp, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return put_str(r, tmp);
}

/* A msgpack timestamp (ext -1). */
static int put_timestamp(rd *r, const uint8_t *p, size_t n) {
  int64_t sec;
  uint32_t nsec;
  if (n == 4) {
    sec = (int64_t)be(p, 4);
    nsec = 0;
  } else if (n == 8) {
    uint64_t v = be(p, 8);
    nsec = (uint32_t)(v >> 34);
    sec = (int64_t)(v & UINT64_C(0x3ffffffff));
  } else if (n == 12) {
    nsec = (uint32_t)be(p, 4);
    sec = (int64_t)be(p + 4, 8);
  } else {
    return WSIO_EPROTO;
  }
  if (nsec > 999999999u) return WSIO_EPROTO;
  return put_iso(r, sec, nsec / 1000000u);
}

/* notepack.io's Date: milliseconds since the epoch as a signed high word and an unsigned low word. */
static int put_date_ms(rd *r, const uint8_t *p) {
  int64_t ms = (int64_t)(int32_t)(uint32_t)be(p, 4) * INT64_C(4294967296) + (int64_t)be(p + 4, 4);
  /* Floor division without negating ms, which may be INT64_MIN. */
  int64_t sec = ms / 1000, rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    sec--;
  }
  return put_iso(r, sec, (unsigned)rem);
}

static int value(rd *r, unsigned depth);

static int container(rd *r, uint64_t n, int is_map, unsigned depth) {
  if (depth >= r->max_depth) return WSIO_EPROTO;
  /* Every element takes at least one byte: a count past the bytes left is a lie, refused before any work. */
  if (n > left(r) || (is_map && n > left(r) / 2)) return WSIO_EPROTO;
  int rc = put(r, is_map ? "{" : "[", 1);
  size_t written = 0;
  for (uint64_t i = 0; rc == 0 && i < n; i++) {
    size_t mark = r->json->len;
    if (written) rc = put(r, ",", 1);
    if (rc == 0 && is_map) {
      /* JSON keys are strings: a string key as is, an integer key as its decimal text (JS object keys). */
      if (!left(r)) return WSIO_EPROTO;
      uint8_t t = *r->p;
      if ((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb)) {
        rc = value(r, depth + 1);
      } else if (t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xd3)) {
        rc = put(r, "\"", 1);
        if (rc == 0) rc = value(r, depth + 1);
        if (rc == 0) rc = put(r, "\"", 1);
      } else {
        return WSIO_EPROTO;
      }
      if (rc == 0) rc = put(r, ":", 1);
    }
    if (rc == 0) rc = value(r, depth + 1);
    if (rc == MPK_UNDEFINED) {
      /* As JSON.stringify: a member whose value is undefined is left out, an array element becomes null. */
      if (is_map) {
        r->json->len = mark;
        rc = 0;
        continue;
      }
      rc = put(r, "null", 4);
    }
    written++;
  }
  if (rc == 0) rc = put(r, is_map ? "}" : "]", 1);
  return rc;
}

static int value(rd *r, unsigned depth) {
  if (!left(r)) return WSIO_EPROTO;
  uint8_t t = *r->p++;
  char tmp[32];
  uint64_t n;
  int rc;
  if (t <= 0x7f) {
    snprintf(tmp, sizeof tmp, "%u", t);
    return put_str(r, tmp);
  }
  if (t >= 0xe0) {
    snprintf(tmp, sizeof tmp, "%d", (int)(int8_t)t);
    return put_str(r, tmp);
  }
  if (t <= 0x8f) return container(r, t & 0x0f, 1, depth);
  if (t <= 0x9f) return container(r, t & 0x0f, 0, depth);
  if (t <= 0xbf) {
    n = t & 0x1f;
    goto str;
  }
  switch (t) {
  case 0xc0: return put_str(r, "null");
  case 0xc2: return put_str(r, "false");
  case 0xc3: return put_str(r, "true");
  case 0xc4: case 0xc5: case 0xc6:
    if ((rc = take_len(r, 1u << (t - 0xc4), &n)) < 0) return rc;
    if (n > left(r)) return WSIO_EPROTO;
    r->p += n;
    return put_bin(r, r->p - n, (size_t)n);
  case 0xc7: case 0xc8: case 0xc9:
    if ((rc = take_len(r, 1u << (t - 0xc7), &n)) < 0) return rc;
    goto ext;
  case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
    n = 1u << (t - 0xd4);
    goto ext;
  case 0xca: {
    if (left(r) < 4) return WSIO_EPROTO;
    uint32_t u = (uint32_t)be(r->p, 4);
    float f;
    memcpy(&f, &u, 4);
    r->p += 4;
    return put_double(r, (double)f);
  }
  case 0xcb: {
    if (left(r) < 8) return WSIO_EPROTO;
    uint64_t u = be(r->p, 8);
    double d;
    memcpy(&d, &u, 8);
    r->p += 8;
    return put_double(r, d);
  }
  case 0xcc: case 0xcd: case 0xce: case 0xcf:
    if ((rc = take_len(r, 1u << (t - 0xcc), &n)) < 0) return rc;
    snprintf(tmp, sizeof tmp, "%" PRIu64, n);
    return put_str(r, tmp);
  case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
    unsigned w = 1u << (t - 0xd0);
    if ((rc = take_len(r, w, &n)) < 0) return rc;
    int64_t v = w == 8 ? (int64_t)n : (int64_t)(n << (64 - 8 * w)) >> (64 - 8 * w);
    snprintf(tmp, sizeof tmp, "%" PRId64, v);
    return put_str(r, tmp);
  }
  case 0xd9: case 0xda: case 0xdb:
    if ((rc = take_len(r, 1u << (t - 0xd9), &n)) < 0) return rc;
    goto str;
  case 0xdc: case 0xdd:
    if ((rc = take_len(r, 2u << (t - 0xdc), &n)) < 0) return rc;
    return container(r, n, 0, depth);
  case 0xde: case 0xdf:
    if ((rc = take_len(r, 2u << (t - 0xde), &n)) < 0) return rc;
    return container(r, n, 1, depth);
  default: /* 0xc1: never used */
    return WSIO_EPROTO;
  }
str:
  if (n > left(r)) return WSIO_EPROTO;
  r->p += n;
  return put_string(r, r->p - n, (size_t)n);
ext:
  /* The timestamp extension (Date), and notepack.io's own type 0: undefined as fixext 1, a Date's
   * milliseconds as fixext 8, an ArrayBuffer (what browsers send for binary) as ext 8/16/32. Other types
   * have no meaning for JavaScript peers and are refused. */
  if (left(r) < 1 || n > left(r) - 1) return WSIO_EPROTO;
  {
    int8_t type = (int8_t)*r->p++;
    const uint8_t *body = r->p;
    r->p += n;
    if (type == -1) return put_timestamp(r, body, (size_t)n);
    if (type != 0) return WSIO_EPROTO;
    if (t >= 0xc7 && t <= 0xc9) return put_bin(r, body, (size_t)n);
    if (t == 0xd4) return MPK_UNDEFINED;
    if (t == 0xd7) return put_date_ms(r, body);
    return WSIO_EPROTO;
  }
}

int mpk_to_json(const uint8_t *p, size_t len, const mpk_limits *lim, buf *json, mpk_atts *atts) {
  rd r = {.p = p, .end = p + len, .json = json, .json_start = json->len, .atts = atts};
  r.max_depth = lim && lim->max_depth ? lim->max_depth : MPK_DEPTH_DEFAULT;
  if (r.max_depth > SIO_JSON_DEPTH_MAX) r.max_depth = SIO_JSON_DEPTH_MAX;
  r.max_atts = lim && lim->max_atts ? lim->max_atts : MPK_ATTS_DEFAULT;
  r.max_json = lim && lim->max_json ? lim->max_json : MPK_JSON_MAX_DEFAULT;
  size_t natts = atts->n;
  int rc = value(&r, 0);
  if (rc == MPK_UNDEFINED || (rc == 0 && r.p != r.end)) rc = WSIO_EPROTO;
  if (rc < 0) {
    json->len = r.json_start;
    atts->n = natts;
  }
  return rc;
}
