/* rsx: @socket.io/redis-streams-adapter's entries, offsets and sessions (see redis_stream.h). */
#include "adapter/redis_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eio/b64.h"
#include "wsio.h"

/* ---- stream names ---- */

/* The next code point of UTF-8 s (lenient: a stray byte stands for itself). */
static uint32_t next_cp(const unsigned char **s) {
  const unsigned char *p = *s;
  uint32_t c = *p++;
  int more = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (c >= 0xF8) more = 0;
  uint32_t cp = more == 3 ? c & 7 : more == 2 ? c & 15 : more == 1 ? c & 31 : c;
  for (int i = 0; i < more; i++) {
    if ((*p & 0xC0) != 0x80) {
      *s = *s + 1;
      return c;
    }
    cp = cp << 6 | (*p++ & 0x3F);
  }
  *s = p;
  return cp;
}

int rsx_stream_name(buf *out, const char *name, unsigned count, const char *nsp) {
  out->len = 0;
  int rc = buf_append(out, name, strlen(name));
  if (rc == 0 && count > 1) {
    /* JavaScript: hash = hash * 31 + charCodeAt(i); hash |= 0 — 32-bit wrap over UTF-16 code units. */
    uint32_t h = 0;
    for (const unsigned char *p = (const unsigned char *)nsp; *p;) {
      uint32_t cp = next_cp(&p);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        h = h * 31u + (0xD800u + (cp >> 10));
        h = h * 31u + (0xDC00u + (cp & 0x3FF));
      } else {
        h = h * 31u + cp;
      }
    }
    char tail[32];
    /* % keeps the dividend's sign, in C as in JavaScript */
    int k = snprintf(tail, sizeof tail, "-%lld", (long long)(int32_t)h % (long long)count);
    rc = buf_append(out, tail, (size_t)k);
  }
  if (rc == 0) rc = buf_append(out, "", 1);
  if (rc == 0) out->len--;
  return rc;
}

/* ---- entries ---- */

static int is_str(const redisReply *r) { return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS); }

static int decimal(const char *s, size_t n, uint64_t *v) {
  if (!n || n > 20) return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (x > (UINT64_MAX - d) / 10) return -1;
    x = x * 10 + d;
  }
  *v = x;
  return 0;
}

int rsx_offset_valid(const char *s, size_t n) {
  const char *dash = memchr(s, '-', n);
  uint64_t a, b;
  return dash && decimal(s, (size_t)(dash - s), &a) == 0 && decimal(dash + 1, n - (size_t)(dash + 1 - s), &b) == 0;
}

int rsx_offset_next_n(const char *id, size_t n, char *out) {
  const char *dash = memchr(id, '-', n);
  uint64_t ms, seq;
  if (!dash || decimal(id, (size_t)(dash - id), &ms) || decimal(dash + 1, n - (size_t)(dash + 1 - id), &seq))
    return WSIO_EPROTO;
  if (seq == UINT64_MAX) {
    if (ms == UINT64_MAX) return WSIO_EPROTO;
    snprintf(out, RSX_ID_MAX, "%llu-0", (unsigned long long)ms + 1);
  } else {
    snprintf(out, RSX_ID_MAX, "%llu-%llu", (unsigned long long)ms, (unsigned long long)seq + 1);
  }
  return 0;
}

int rsx_entry_read(const redisReply *r, rsx_entry *e) {
  memset(e, 0, sizeof *e);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_str(r->element[0])) return WSIO_EPROTO;
  const redisReply *id = r->element[0], *f = r->element[1];
  if (!rsx_offset_valid(id->str, id->len) || id->len >= RSX_ID_MAX) return WSIO_EPROTO;
  e->id = id->str;
  e->id_len = id->len;
  if (!f || f->type != REDIS_REPLY_ARRAY || f->elements % 2) return WSIO_EPROTO;
  for (size_t i = 0; i < f->elements; i += 2) {
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    if (!is_str(k) || !is_str(v)) return WSIO_EPROTO;
    static const char *const names[] = {"uid", "nsp", "type", "data"};
    const char **dst[] = {&e->uid, &e->nsp, &e->type, &e->data};
    size_t *dlen[] = {&e->uid_len, &e->nsp_len, &e->type_len, &e->data_len};
    for (size_t j = 0; j < 4; j++) {
      if (k->len == strlen(names[j]) && memcmp(k->str, names[j], k->len) == 0) {
        *dst[j] = v->str;
        *dlen[j] = v->len;
      }
    }
  }
  return 0;
}

long long rsx_type(const char *p, size_t n) {
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
  long long v = 0;
  size_t start = i;
  for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
    if (v > 1000000) return -1; /* no message type is that large */
    v = v * 10 + (p[i] - '0');
  }
  return i > start ? v : -1;
}

/* base64 of n bytes decoded into bin (reset). */
static int b64_in(const char *p, size_t n, buf *bin) {
  ptrdiff_t dl = eio_b64_decoded_len((const uint8_t *)p, n);
  bin->len = 0;
  if (dl < 0 || buf_reserve(bin, (size_t)dl + 1) < 0) return WSIO_EPROTO;
  if (eio_b64_decode((const uint8_t *)p, n, bin->data) != 0) return WSIO_EPROTO;
  bin->len = (size_t)dl;
  return 0;
}

/* base64 of in (padded, standard alphabet: Node's Buffer.toString("base64")) into out (reset). */
static int b64_out(const buf *in, buf *out) {
  size_t n = eio_b64_encoded_len(in->len);
  out->len = 0;
  if (buf_reserve(out, n + 1) < 0) return WSIO_ENOMEM;
  out->len = eio_b64_encode(in->data, in->len, (char *)out->data, EIO_B64_STD, 1);
  return 0;
}

int rsx_data_decode(const char *p, size_t n, buf *json, buf *bin, mpk_atts *atts, sio_json_span *out) {
  json->len = 0;
  atts->n = 0;
  if (!p || !n || n > RSX_DATA_MAX) return WSIO_EPROTO;
  if (p[0] == '{') return sio_json_validate(p, n, MPK_DEPTH_DEFAULT, out) == 0 ? 0 : WSIO_EPROTO;
  if (b64_in(p, n, bin) < 0) return WSIO_EPROTO;
  if (mpk_to_json(bin->data, bin->len, NULL, json, atts) < 0 || !json->len) return WSIO_EPROTO;
  out->p = (const char *)json->data;
  out->len = json->len;
  out->kind = sio_json_kind_of(out->p[0]);
  return 0;
}

static int pack(const char *json, size_t len, const sio_bin *atts, size_t natts, buf *out) {
  sio_json_span v;
  if (sio_json_validate(json, len, SIO_JSON_DEPTH_MAX, &v) != 0) return WSIO_EPROTO;
  out->len = 0;
  mpk_writer w;
  mpk_writer_init(&w, out);
  int rc = mpk_pack_json(&w, &v, atts, natts);
  return rc ? rc : w.failed ? WSIO_ENOMEM : 0;
}

int rsx_data_encode(const char *json, size_t len, const sio_bin *atts, size_t natts, buf *tmp, buf *out) {
  out->len = 0;
  if (!natts) return buf_append(out, json, len);
  int rc = pack(json, len, atts, natts, tmp);
  return rc ? rc : b64_out(tmp, out);
}

/* ---- sessions ---- */

int rsx_session_encode(const sio_session_info *s, buf *tmp, buf *out) {
  buf j = {0};
  int rc = buf_append(&j, "{\"sid\":", 7);
  if (rc == 0) rc = sio_json_write_string(&j, s->sid, strlen(s->sid));
  if (rc == 0) rc = buf_append(&j, ",\"pid\":", 7);
  if (rc == 0) rc = sio_json_write_string(&j, s->pid, strlen(s->pid));
  if (rc == 0) rc = buf_append(&j, ",\"rooms\":[", 10);
  if (rc == 0) rc = sio_json_write_string(&j, s->sid, strlen(s->sid));
  for (size_t i = 0; rc == 0 && i < s->nrooms; i++) {
    rc = buf_append(&j, ",", 1);
    if (rc == 0) rc = sio_json_write_string(&j, s->rooms[i], strlen(s->rooms[i]));
  }
  const char *data = s->data_json ? s->data_json : "{}";
  if (rc == 0) rc = buf_append(&j, "],\"data\":", 9);
  if (rc == 0) rc = buf_append(&j, data, strlen(data));
  if (rc == 0) rc = buf_append(&j, "}", 1);
  if (rc == 0) rc = pack((const char *)j.data, j.len, NULL, 0, tmp);
  if (rc == 0) rc = b64_out(tmp, out);
  buf_free(&j);
  return rc;
}

/* A string (decoded) or a number (its text) as a NUL-terminated copy in st; its offset in *off. */
static int store_name(buf *st, const sio_json_span *v, size_t *off) {
  *off = st->len;
  if (v->kind == SIO_JSON_NUMBER) {
    if (buf_append(st, v->p, v->len) < 0) return WSIO_ENOMEM;
  } else if (v->kind == SIO_JSON_STRING) {
    if (buf_reserve(st, v->len) < 0) return WSIO_ENOMEM;
    ssize_t k = sio_json_string_decode(v, (char *)st->data + st->len, v->len);
    if (k < 0 || memchr(st->data + st->len, 0, (size_t)k)) return WSIO_EPROTO;
    st->len += (size_t)k;
  } else {
    return WSIO_EPROTO;
  }
  return buf_append(st, "", 1);
}

int rsx_session_decode(const char *p, size_t n, rsx_session *s) {
  memset(s, 0, sizeof *s);
  sio_json_span root, v, rooms, e;
  if (!p || n > RSX_DATA_MAX || b64_in(p, n, &s->bin) < 0 ||
      mpk_to_json(s->bin.data, s->bin.len, NULL, &s->json, &s->atts) < 0 || !s->json.len)
    return WSIO_EPROTO;
  root = (sio_json_span){(const char *)s->json.data, s->json.len, sio_json_kind_of((char)s->json.data[0])};
  if (root.kind != SIO_JSON_OBJECT || !sio_json_object_find(&root, "sid", 3, &v) || v.kind != SIO_JSON_STRING)
    return WSIO_EPROTO;
  size_t sid_off, data_off = 0;
  int rc = store_name(&s->store, &v, &sid_off);
  int has_data = sio_json_object_find(&root, "data", 4, &v) && v.kind != SIO_JSON_NULL;
  if (rc == 0 && has_data) {
    data_off = s->store.len;
    rc = buf_append(&s->store, v.p, v.len);
    if (rc == 0) rc = buf_append(&s->store, "", 1);
  }
  size_t count = 0;
  size_t *offs = NULL;
  if (rc == 0 && sio_json_object_find(&root, "rooms", 5, &rooms) && rooms.kind == SIO_JSON_ARRAY) {
    count = sio_json_array_count(&rooms);
    if (count > RSX_SESSION_ROOMS) rc = WSIO_EPROTO;
    else if (count && !(offs = malloc(count * sizeof *offs))) rc = WSIO_ENOMEM;
    sio_json_iter it;
    sio_json_iter_init(&it, &rooms);
    for (size_t i = 0; rc == 0 && i < count && sio_json_array_next(&it, &e); i++)
      rc = store_name(&s->store, &e, &offs[i]);
  } else if (rc == 0) {
    rc = WSIO_EPROTO; /* socket.io's Socket would throw on a session without rooms */
  }
  if (rc == 0 && !(s->rooms = malloc((count ? count : 1) * sizeof *s->rooms))) rc = WSIO_ENOMEM;
  if (rc == 0) {
    const char *base = (const char *)s->store.data;
    s->sid = base + sid_off;
    s->data_json = has_data ? base + data_off : NULL;
    for (size_t i = 0; i < count; i++) s->rooms[i] = base + offs[i];
    s->nrooms = count;
  }
  free(offs);
  return rc;
}

void rsx_session_free(rsx_session *s) {
  free(s->rooms);
  buf_free(&s->store);
  buf_free(&s->json);
  buf_free(&s->bin);
  mpk_atts_free(&s->atts);
  memset(s, 0, sizeof *s);
}

/* ---- missed packets ---- */

/* 1 when the array member key of opts holds one of rooms. */
static int any_in(const sio_json_span *opts, const char *key, const char *const *rooms, size_t nrooms) {
  sio_json_span arr, e;
  if (!opts || opts->kind != SIO_JSON_OBJECT || !sio_json_object_find(opts, key, strlen(key), &arr) ||
      arr.kind != SIO_JSON_ARRAY)
    return 0;
  sio_json_iter it;
  sio_json_iter_init(&it, &arr);
  while (sio_json_array_next(&it, &e)) {
    if (e.kind != SIO_JSON_STRING && e.kind != SIO_JSON_NUMBER) continue;
    for (size_t i = 0; i < nrooms; i++) {
      size_t n = strlen(rooms[i]);
      if (e.kind == SIO_JSON_STRING ? sio_json_string_equals(&e, rooms[i], n) : e.len == n && !memcmp(e.p, rooms[i], n))
        return 1;
    }
  }
  return 0;
}

int rsx_packet_for(const sio_json_span *opts, const char *const *rooms, size_t nrooms) {
  sio_json_span arr;
  int everyone = !opts || opts->kind != SIO_JSON_OBJECT || !sio_json_object_find(opts, "rooms", 5, &arr) ||
                 arr.kind != SIO_JSON_ARRAY || sio_json_array_count(&arr) == 0;
  if (!everyone && !any_in(opts, "rooms", rooms, nrooms)) return 0;
  return !any_in(opts, "except", rooms, nrooms);
}
