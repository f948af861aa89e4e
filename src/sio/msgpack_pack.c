/* mpk: JSON (+ attachments) -> msgpack, and Socket.IO text packets <-> packet objects. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio/msgpack.h"
#include "wsio.h"

static int sink(void *data, const char *p, size_t n) {
  mpk_writer *w = data;
  if (w->failed) return -1;
  if (buf_append(w->b, p, n) < 0) {
    w->failed = 1;
    return -1;
  }
  return 0;
}

void mpk_writer_init(mpk_writer *w, buf *b) {
  w->b = b;
  w->failed = 0;
  msgpack_packer_init(&w->pk, w, sink);
}

void mpk_pack_strn(mpk_writer *w, const char *s, size_t n) {
  msgpack_pack_str(&w->pk, n);
  msgpack_pack_str_body(&w->pk, s, n);
}

void mpk_pack_cstr(mpk_writer *w, const char *s) { mpk_pack_strn(w, s, strlen(s)); }

/* A JSON number as notepack writes the JavaScript number it denotes: integral values as integers (when
 * they fit 64 bits), the rest as float 64. */
static int pack_number(mpk_writer *w, const sio_json_span *v) {
  char stack[64];
  char *tmp = v->len < sizeof stack ? stack : malloc(v->len + 1);
  if (!tmp) return WSIO_ENOMEM;
  memcpy(tmp, v->p, v->len);
  tmp[v->len] = 0;
  int plain = strpbrk(tmp, ".eE") == NULL;
  int rc = 0;
  if (plain) {
    errno = 0;
    char *end;
    if (tmp[0] == '-') {
      long long x = strtoll(tmp, &end, 10);
      if (!errno && !*end) {
        msgpack_pack_int64(&w->pk, x);
        goto out;
      }
    } else {
      unsigned long long x = strtoull(tmp, &end, 10);
      if (!errno && !*end) {
        msgpack_pack_uint64(&w->pk, x);
        goto out;
      }
    }
  }
  double d = strtod(tmp, NULL);
  if (d == floor(d) && fabs(d) < 9223372036854775808.0)
    msgpack_pack_int64(&w->pk, (int64_t)d);
  else
    msgpack_pack_double(&w->pk, d);
out:
  if (tmp != stack) free(tmp);
  return rc;
}

static int pack_string(mpk_writer *w, const sio_json_span *v) {
  char stack[256];
  size_t cap = v->len; /* unescaped text is never longer than the span */
  char *tmp = cap <= sizeof stack ? stack : malloc(cap);
  if (!tmp) return WSIO_ENOMEM;
  ssize_t n = sio_json_string_decode(v, tmp, cap);
  if (n >= 0) mpk_pack_strn(w, tmp, (size_t)n);
  if (tmp != stack) free(tmp);
  return n < 0 ? WSIO_EPROTO : 0;
}

static int pack_value(mpk_writer *w, const sio_json_span *v, const sio_bin *atts, size_t natts, unsigned depth) {
  if (depth > SIO_JSON_DEPTH_MAX) return WSIO_EPROTO;
  sio_json_iter it;
  sio_json_span k, e;
  int rc = 0;
  switch (v->kind) {
  case SIO_JSON_NULL: msgpack_pack_nil(&w->pk); break;
  case SIO_JSON_TRUE: msgpack_pack_true(&w->pk); break;
  case SIO_JSON_FALSE: msgpack_pack_false(&w->pk); break;
  case SIO_JSON_NUMBER: rc = pack_number(w, v); break;
  case SIO_JSON_STRING: rc = pack_string(w, v); break;
  case SIO_JSON_ARRAY:
    msgpack_pack_array(&w->pk, sio_json_array_count(v));
    sio_json_iter_init(&it, v);
    while (rc == 0 && sio_json_array_next(&it, &e)) rc = pack_value(w, &e, atts, natts, depth + 1);
    break;
  case SIO_JSON_OBJECT: {
    uint64_t num;
    int ph = sio_json_placeholder(v, natts, &num);
    if (ph < 0) return WSIO_EPROTO;
    if (ph) {
      msgpack_pack_bin(&w->pk, atts[num].len);
      msgpack_pack_bin_body(&w->pk, atts[num].p, atts[num].len);
      break;
    }
    size_t n = 0;
    sio_json_iter_init(&it, v);
    while (sio_json_object_next(&it, &k, &e)) n++;
    msgpack_pack_map(&w->pk, n);
    sio_json_iter_init(&it, v);
    while (rc == 0 && sio_json_object_next(&it, &k, &e)) {
      rc = pack_string(w, &k);
      if (rc == 0) rc = pack_value(w, &e, atts, natts, depth + 1);
    }
    break;
  }
  default: return WSIO_EPROTO;
  }
  if (rc == 0 && w->failed) rc = WSIO_ENOMEM;
  return rc;
}

int mpk_pack_json(mpk_writer *w, const sio_json_span *v, const sio_bin *atts, size_t natts) {
  size_t start = w->b->len;
  int rc = pack_value(w, v, atts, natts, 0);
  if (rc == 0 && w->failed) rc = WSIO_ENOMEM;
  if (rc < 0) w->b->len = start;
  return rc;
}

int mpk_packet_json(buf *out, const char *text, size_t len, size_t natts, int with_id) {
  sio_packet pkt;
  sio_packet_limits lim = {.max_attachments = natts > 0 ? (unsigned)natts : 1, .max_depth = SIO_JSON_DEPTH_MAX};
  if (natts > 100000 || sio_packet_decode(text, len, &lim, &pkt) < 0) return WSIO_EPROTO;
  if (pkt.attachments != natts) return WSIO_EPROTO;
  int type = pkt.type == SIO_BINARY_EVENT ? SIO_EVENT : pkt.type == SIO_BINARY_ACK ? SIO_ACK : pkt.type;
  size_t start = out->len;
  char tmp[48];
  int k = snprintf(tmp, sizeof tmp, "{\"type\":%d", type);
  int rc = buf_append(out, tmp, (size_t)k);
  if (rc == 0 && pkt.data.kind != SIO_JSON_NONE) {
    rc = buf_append(out, ",\"data\":", 8);
    if (rc == 0) rc = buf_append(out, pkt.data.p, pkt.data.len);
  }
  if (rc == 0) rc = buf_append(out, ",\"nsp\":", 7);
  if (rc == 0) rc = sio_json_write_string(out, pkt.nsp, pkt.nsp_len);
  if (rc == 0 && with_id && pkt.id >= 0) {
    k = snprintf(tmp, sizeof tmp, ",\"id\":%lld", (long long)pkt.id);
    rc = buf_append(out, tmp, (size_t)k);
  }
  if (rc == 0) rc = buf_append(out, "}", 1);
  if (rc < 0) {
    out->len = start;
    return rc == WSIO_ENOMEM ? rc : WSIO_EPROTO;
  }
  return 0;
}

int mpk_pack_packet(mpk_writer *w, buf *tmp, const char *text, size_t len, const sio_bin *atts, size_t natts,
                    int with_id) {
  tmp->len = 0;
  int rc = mpk_packet_json(tmp, text, len, natts, with_id);
  if (rc) return rc;
  sio_json_span v = {(const char *)tmp->data, tmp->len, SIO_JSON_OBJECT};
  return mpk_pack_json(w, &v, atts, natts);
}

int mpk_json_rebase(const sio_json_span *v, size_t base, size_t count, buf *out) {
  size_t start = out->len;
  sio_json_ph_iter it;
  sio_json_span obj;
  uint64_t num;
  const char *at = v->p;
  int rc;
  sio_json_ph_init(&it, v, UINT64_MAX);
  while ((rc = sio_json_ph_next(&it, &obj, &num)) == 1) {
    if (num < base || num - base >= count) {
      rc = WSIO_EPROTO;
      break;
    }
    char tmp[64];
    int k = snprintf(tmp, sizeof tmp, "{\"_placeholder\":true,\"num\":%zu}", (size_t)(num - base));
    if (buf_append(out, at, (size_t)(obj.p - at)) < 0 || buf_append(out, tmp, (size_t)k) < 0) {
      rc = WSIO_ENOMEM;
      break;
    }
    at = obj.p + obj.len;
  }
  if (rc == 0 && buf_append(out, at, (size_t)(v->p + v->len - at)) < 0) rc = WSIO_ENOMEM;
  if (rc < 0) {
    out->len = start;
    return rc == WSIO_ENOMEM ? rc : WSIO_EPROTO;
  }
  return 0;
}

/* The smallest and largest placeholder numbers in v; *any 0 when it has none. */
static int ph_range(const sio_json_span *v, size_t natts, uint64_t *lo, uint64_t *hi, int *any) {
  sio_json_ph_iter it;
  uint64_t num;
  int rc;
  *any = 0;
  sio_json_ph_init(&it, v, natts);
  while ((rc = sio_json_ph_next(&it, NULL, &num)) == 1) {
    if (!*any || num < *lo) *lo = num;
    if (!*any || num > *hi) *hi = num;
    *any = 1;
  }
  return rc < 0 ? WSIO_EPROTO : 0;
}

int mpk_packet_text(const sio_json_span *obj, size_t natts, int with_id, buf *text, size_t *first,
                    size_t *count) {
  return mpk_packet_text_nsp(obj, natts, with_id, "/", text, first, count);
}

int mpk_packet_text_nsp(const sio_json_span *obj, size_t natts, int with_id, const char *nsp_default, buf *text,
                        size_t *first, size_t *count) {
  sio_json_span type, data, nsp, id;
  uint64_t t;
  if (obj->kind != SIO_JSON_OBJECT || !sio_json_object_find(obj, "type", 4, &type) ||
      type.kind != SIO_JSON_NUMBER || sio_json_uint(&type, 9, &t) < 0)
    return WSIO_EPROTO;
  int is_event = t == SIO_EVENT || t == SIO_BINARY_EVENT;
  if (!is_event && t != SIO_ACK && t != SIO_BINARY_ACK) return WSIO_EPROTO;
  if (!sio_json_object_find(obj, "data", 4, &data) || data.kind != SIO_JSON_ARRAY) return WSIO_EPROTO;
  char nspbuf[256];
  size_t nsp_len = strlen(nsp_default);
  if (nsp_len >= sizeof nspbuf || nsp_default[0] != '/' || strchr(nsp_default, ',')) return WSIO_EPROTO;
  memcpy(nspbuf, nsp_default, nsp_len);
  if (sio_json_object_find(obj, "nsp", 3, &nsp) && nsp.kind != SIO_JSON_NULL) {
    ssize_t n = nsp.kind == SIO_JSON_STRING ? sio_json_string_decode(&nsp, nspbuf, sizeof nspbuf) : -1;
    if (n <= 0 || nspbuf[0] != '/' || memchr(nspbuf, ',', (size_t)n) || memchr(nspbuf, 0, (size_t)n))
      return WSIO_EPROTO;
    nsp_len = (size_t)n;
  }
  uint64_t idv = 0;
  int has_id = 0;
  if (with_id) {
    /* socket.io assigns the id on each server (peers send none); the receiver replaces it anyway */
    has_id = 1;
    if (sio_json_object_find(obj, "id", 2, &id) && id.kind != SIO_JSON_NULL &&
        (id.kind != SIO_JSON_NUMBER || sio_json_uint(&id, (uint64_t)SIO_PACKET_ID_MAX, &idv) < 0))
      return WSIO_EPROTO;
  }
  uint64_t lo = 0, hi = 0;
  int any;
  if (ph_range(&data, natts, &lo, &hi, &any) < 0) return WSIO_EPROTO;
  *first = any ? (size_t)lo : 0;
  *count = any ? (size_t)(hi - lo + 1) : 0;
  size_t start = text->len;
  char head[96];
  int k;
  if (*count)
    k = snprintf(head, sizeof head, "%d%zu-", is_event ? SIO_BINARY_EVENT : SIO_BINARY_ACK, *count);
  else
    k = snprintf(head, sizeof head, "%d", is_event ? SIO_EVENT : SIO_ACK);
  int rc = buf_append(text, head, (size_t)k);
  if (rc == 0 && !(nsp_len == 1 && nspbuf[0] == '/')) {
    rc = buf_append(text, nspbuf, nsp_len);
    if (rc == 0) rc = buf_append(text, ",", 1);
  }
  if (rc == 0 && has_id) {
    k = snprintf(head, sizeof head, "%llu", (unsigned long long)idv);
    rc = buf_append(text, head, (size_t)k);
  }
  if (rc == 0) {
    if (*count && *first)
      rc = mpk_json_rebase(&data, *first, *count, text);
    else
      rc = buf_append(text, data.p, data.len);
  }
  if (rc < 0) text->len = start;
  return rc;
}
