#include "sio/packet.h"

#include <stddef.h>
#include <string.h>

#include "wsio.h"
#include "util/utf8.h"

static int is_binary(int t) { return t == SIO_BINARY_EVENT || t == SIO_BINARY_ACK; }
static int is_event(int t) { return t == SIO_EVENT || t == SIO_BINARY_EVENT; }
static int is_ack(int t) { return t == SIO_ACK || t == SIO_BINARY_ACK; }
static int is_digit(char c) { return (unsigned)(c - '0') < 10u; }

/* The reserved names by length, so a name is compared with at most two of them (every event goes through
 * this, on the way in and on the way out). */
int sio_packet_name_reserved(const char *name, size_t len) {
  switch (len) {
    case 7: return memcmp(name, "connect", 7) == 0;
    case 10: return memcmp(name, "disconnect", 10) == 0;
    case 11: return memcmp(name, "newListener", 11) == 0;
    case 13: return memcmp(name, "connect_error", 13) == 0 || memcmp(name, "disconnecting", 13) == 0;
    case 14: return memcmp(name, "removeListener", 14) == 0;
    default: return 0;
  }
}

/* Compares unescaped, so "\u0063onnect" is as reserved as "connect". A name without escapes is its bytes. */
static int name_span_reserved(const sio_json_span *name) {
  size_t n = name->len - 2;
  if (n < 7 || n > 14 * 6) return 0; /* shorter than any reserved name, or longer even fully escaped */
  const char *raw;
  if (sio_json_string_raw(name, &raw, &n)) return sio_packet_name_reserved(raw, n);
  char tmp[14 * 6];
  ssize_t k = sio_json_string_decode(name, tmp, sizeof tmp);
  return k > 0 && sio_packet_name_reserved(tmp, (size_t)k);
}

static int data_fits(int type, const sio_packet *pkt) {
  sio_json_kind k = pkt->data.kind;
  switch (type) {
    case SIO_CONNECT: return k == SIO_JSON_NONE || k == SIO_JSON_OBJECT;
    case SIO_DISCONNECT: return k == SIO_JSON_NONE;
    case SIO_CONNECT_ERROR: return k == SIO_JSON_OBJECT || k == SIO_JSON_STRING;
    case SIO_ACK:
    case SIO_BINARY_ACK: return k == SIO_JSON_ARRAY;
    default: break;
  }
  return k == SIO_JSON_ARRAY;
}

/* An event's name: data's first element, a number or a string not reserved. */
static int event_name(sio_packet *pkt) {
  if (pkt->elems_ok) {
    if (pkt->nelems == 0) return 0;
    pkt->name = pkt->elems[0];
  } else {
    sio_json_iter it;
    sio_json_iter_init(&it, &pkt->data);
    if (!sio_json_array_next(&it, &pkt->name)) return 0;
  }
  if (pkt->name.kind == SIO_JSON_STRING) return !name_span_reserved(&pkt->name);
  return pkt->name.kind == SIO_JSON_NUMBER;
}

int sio_packet_decode(const char *s, size_t len, const sio_packet_limits *lim, sio_packet *pkt) {
  unsigned max_att = lim && lim->max_attachments ? lim->max_attachments : SIO_PACKET_ATTACHMENTS_DEFAULT;
  unsigned max_depth = lim && lim->max_depth ? lim->max_depth : SIO_PACKET_DEPTH_DEFAULT;
  /* Everything before elems from a template (a fixed-size copy, cheaper than memset's string store here);
   * elems are written as they are noted. */
  static const sio_packet blank = {.nsp = "/", .nsp_len = 1, .id = -1};
  memcpy(pkt, &blank, offsetof(sio_packet, elems));
  if (len == 0 || !is_digit(s[0]) || s[0] > '6') return WSIO_EPROTO;
  int type = s[0] - '0';
  size_t i = 1;

  if (is_binary(type)) {
    size_t start = i;
    uint64_t n = 0;
    for (; i < len && is_digit(s[i]); i++)
      if ((n = n * 10 + (unsigned)(s[i] - '0')) > max_att) return WSIO_EPROTO;
    if (i == start || i >= len || s[i] != '-') return WSIO_EPROTO;
    i++;
    pkt->attachments = (unsigned)n;
  }

  if (i < len && s[i] == '/') {
    const char *comma = memchr(s + i, ',', len - i);
    size_t stop = comma ? (size_t)(comma - s) : len;
    if (!utf8_valid((const uint8_t *)s + i, stop - i)) return WSIO_EPROTO;
    pkt->nsp = s + i;
    pkt->nsp_len = stop - i;
    i = comma ? stop + 1 : len;
  }

  if (i < len && is_digit(s[i])) {
    if (!is_event(type) && !is_ack(type)) return WSIO_EPROTO;
    int64_t id = 0;
    for (; i < len && is_digit(s[i]); i++)
      if ((id = id * 10 + (s[i] - '0')) > SIO_PACKET_ID_MAX) return WSIO_EPROTO;
    pkt->id = id;
  }
  if (is_ack(type) && pkt->id < 0) return WSIO_EPROTO;

  /* JSON.stringify never starts with whitespace, and the reference parser would read a space as an id. */
  if (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) return WSIO_EPROTO;
  if (i < len) {
    if (sio_json_validate_elems(s + i, len - i, max_depth, &pkt->data, pkt->elems, SIO_PACKET_ELEMS,
                                &pkt->nelems) != 0)
      return WSIO_EPROTO;
    pkt->elems_ok = pkt->data.kind == SIO_JSON_ARRAY;
  }
  if (!data_fits(type, pkt) || (is_event(type) && !event_name(pkt))) return WSIO_EPROTO;
  if (is_binary(type)) {
    sio_json_ph_iter ph;
    int rc;
    sio_json_ph_init(&ph, &pkt->data, pkt->attachments);
    while ((rc = sio_json_ph_next(&ph, NULL, NULL)) == 1) {}
    if (rc < 0) return WSIO_EPROTO;
  }
  pkt->type = type;
  return 0;
}

/* ---- Encoding ------------------------------------------------------------------------------------- */

static int nsp_check(const char **nsp, size_t *len) {
  if (!*nsp || *len == 0) {
    *nsp = "/";
    *len = 1;
    return 0;
  }
  if (*len == 1 && (*nsp)[0] == '/') return 0; /* the main namespace, on every send */
  const char *name = *nsp;
  if (name[0] != '/' || memchr(name, ',', *len) || !utf8_valid((const uint8_t *)name, *len)) return WSIO_EINVAL;
  return 0;
}

/* Writes v in decimal at out (room for 20 digits). Returns the digit count. */
static size_t fmt_uint(char *out, uint64_t v) {
  char tmp[20];
  size_t n = sizeof tmp;
  do {
    tmp[--n] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  memcpy(out, tmp + n, sizeof tmp - n);
  return sizeof tmp - n;
}

/* The most a header takes: type, attachments and '-', namespace and ',', id. */
#define HEADER_MAX(nsp_len) (1 + 21 + (nsp_len) + 1 + 20)

/* <type>[<attachments>-][<nsp>,][<id>], arguments already checked: one reservation, then in place. */
static int put_header(buf *b, int type, unsigned attachments, const char *nsp, size_t nsp_len, int64_t id) {
  int root = nsp_len == 1 && nsp[0] == '/';
  if (buf_reserve(b, HEADER_MAX(nsp_len))) return WSIO_ENOMEM;
  char *p = (char *)b->data + b->len, *start = p;
  *p++ = (char)('0' + type);
  if (is_binary(type)) {
    p += fmt_uint(p, attachments);
    *p++ = '-';
  }
  if (!root) {
    memcpy(p, nsp, nsp_len);
    p += nsp_len;
    *p++ = ',';
  }
  if (id >= 0) p += fmt_uint(p, (uint64_t)id);
  b->len += (size_t)(p - start);
  return 0;
}

static int id_check(int64_t id, int required) {
  if (id < -1 || id > SIO_PACKET_ID_MAX || (required && id < 0)) return WSIO_EINVAL;
  return 0;
}

/* Ends an encoder: on error, drops what it appended. */
static int finish(buf *b, size_t old, int rc) {
  if (rc < 0) b->len = old;
  return rc;
}

int sio_packet_encode(buf *out, const sio_packet *pkt) {
  const char *nsp = pkt->nsp;
  size_t nsp_len = pkt->nsp_len;
  int t = pkt->type;
  if (t < SIO_CONNECT || t > SIO_BINARY_ACK || nsp_check(&nsp, &nsp_len) ||
      id_check(pkt->id, 0) || (pkt->id >= 0 && !is_event(t) && !is_ack(t)) ||
      (pkt->attachments && !is_binary(t)))
    return WSIO_EINVAL;
  size_t old = out->len;
  int rc = put_header(out, t, pkt->attachments, nsp, nsp_len, pkt->id);
  if (rc == 0 && pkt->data.p && pkt->data.len) rc = buf_append(out, pkt->data.p, pkt->data.len);
  return finish(out, old, rc);
}

int sio_packet_encode_connect(buf *out, const char *nsp, size_t nsp_len, const char *sid, size_t sid_len,
                              const char *pid, size_t pid_len) {
  if (nsp_check(&nsp, &nsp_len) || !sid) return WSIO_EINVAL;
  size_t old = out->len;
  int rc = put_header(out, SIO_CONNECT, 0, nsp, nsp_len, -1);
  if (rc == 0) rc = buf_append(out, "{\"sid\":", 7);
  if (rc == 0) rc = sio_json_write_string(out, sid, sid_len);
  if (rc == 0 && pid) rc = buf_append(out, ",\"pid\":", 7);
  if (rc == 0 && pid) rc = sio_json_write_string(out, pid, pid_len);
  if (rc == 0) rc = buf_append(out, "}", 1);
  return finish(out, old, rc);
}

int sio_packet_encode_connect_error(buf *out, const char *nsp, size_t nsp_len, const char *message,
                                    size_t message_len, const char *data, size_t data_len) {
  sio_json_span d = {0};
  if (nsp_check(&nsp, &nsp_len) || !message) return WSIO_EINVAL;
  if (data && sio_json_validate(data, data_len, SIO_JSON_DEPTH_MAX, &d) != 0) return WSIO_EINVAL;
  size_t old = out->len;
  int rc = put_header(out, SIO_CONNECT_ERROR, 0, nsp, nsp_len, -1);
  if (rc == 0) rc = buf_append(out, "{\"message\":", 11);
  if (rc == 0) rc = sio_json_write_string(out, message, message_len);
  if (rc == 0 && data) rc = buf_append(out, ",\"data\":", 8);
  if (rc == 0 && data) rc = buf_append(out, d.p, d.len);
  if (rc == 0) rc = buf_append(out, "}", 1);
  return finish(out, old, rc);
}

int sio_packet_encode_disconnect(buf *out, const char *nsp, size_t nsp_len) {
  if (nsp_check(&nsp, &nsp_len)) return WSIO_EINVAL;
  size_t old = out->len;
  return finish(out, old, put_header(out, SIO_DISCONNECT, 0, nsp, nsp_len, -1));
}

/* Validates an argument array and yields what is between its brackets, trimmed (len 0: no arguments). */
static int args_inner(const char *args, size_t args_len, sio_json_span *inner) {
  inner->p = NULL;
  inner->len = 0;
  inner->kind = SIO_JSON_NONE;
  if (!args || args_len == 0) return 0;
  sio_json_span arr;
  if (sio_json_validate(args, args_len, SIO_JSON_DEPTH_MAX, &arr) != 0 || arr.kind != SIO_JSON_ARRAY)
    return WSIO_EINVAL;
  const char *p = arr.p + 1, *end = arr.p + arr.len - 1;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) end--;
  inner->p = p;
  inner->len = (size_t)(end - p);
  return 0;
}

int sio_packet_encode_event(buf *out, const char *nsp, size_t nsp_len, int64_t id, const char *name,
                            size_t name_len, const char *args, size_t args_len) {
  sio_json_span inner;
  if (nsp_check(&nsp, &nsp_len) || id_check(id, 0) || !name || sio_packet_name_reserved(name, name_len) ||
      args_inner(args, args_len, &inner))
    return WSIO_EINVAL;
  size_t old = out->len;
  int rc = put_header(out, SIO_EVENT, 0, nsp, nsp_len, id);
  if (rc == 0) rc = buf_append(out, "[", 1);
  if (rc == 0) rc = sio_json_write_string(out, name, name_len);
  if (rc == 0 && inner.len) rc = buf_append(out, ",", 1);
  if (rc == 0) rc = buf_append(out, inner.p, inner.len);
  if (rc == 0) rc = buf_append(out, "]", 1);
  return finish(out, old, rc);
}

int sio_packet_encode_ack(buf *out, const char *nsp, size_t nsp_len, int64_t id, const char *args,
                          size_t args_len) {
  sio_json_span inner;
  if (nsp_check(&nsp, &nsp_len) || id_check(id, 1) || args_inner(args, args_len, &inner)) return WSIO_EINVAL;
  size_t old = out->len;
  int rc = put_header(out, SIO_ACK, 0, nsp, nsp_len, id);
  if (rc == 0) rc = buf_append(out, "[", 1);
  if (rc == 0) rc = buf_append(out, inner.p, inner.len);
  if (rc == 0) rc = buf_append(out, "]", 1);
  return finish(out, old, rc);
}

int sio_packet_encode_args(buf *out, int type, const char *nsp, size_t nsp_len, int64_t id, const char *name,
                           size_t name_len, const sio_arg *args, size_t nargs, sio_bin *atts) {
  if ((type != SIO_EVENT && type != SIO_ACK) || nsp_check(&nsp, &nsp_len) || id_check(id, type == SIO_ACK))
    return WSIO_EINVAL;
  if (type == SIO_EVENT && (!name || sio_packet_name_reserved(name, name_len))) return WSIO_EINVAL;
  if (nargs && !args) return WSIO_EINVAL;
  /* Measured first, so that the whole packet is written in place after one reservation. */
  ssize_t name_out = type == SIO_EVENT ? sio_json_string_len(name, name_len) : 0;
  if (name_out < 0) return WSIO_EINVAL;
  size_t nbin = 0, need = HEADER_MAX(nsp_len) + 2 + (size_t)name_out; /* brackets, name */
  for (size_t i = 0; i < nargs; i++) {
    if (args[i].kind == SIO_ARG_BINARY) {
      if (!args[i].bin.p && args[i].bin.len) return WSIO_EINVAL;
      nbin++;
      need += 1 + 27 + 20 + 1;
    } else if (args[i].kind != SIO_ARG_JSON || !args[i].json.p ||
               (!args[i].checked &&
                sio_json_validate(args[i].json.p, args[i].json.len, SIO_JSON_DEPTH_MAX, NULL) != 0)) {
      return WSIO_EINVAL;
    } else {
      need += 1 + args[i].json.len;
    }
  }
  if (nbin > (size_t)INT32_MAX) return WSIO_EINVAL;
  if (nbin) type = type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
  if (buf_reserve(out, need) || put_header(out, type, (unsigned)nbin, nsp, nsp_len, id)) return WSIO_ENOMEM;

  char *p = (char *)out->data + out->len;
  *p++ = '[';
  int first = 1;
  if (is_event(type)) {
    p += sio_json_string_put(p, name, name_len, (size_t)name_out);
    first = 0;
  }
  size_t num = 0;
  for (size_t i = 0; i < nargs; i++) {
    if (!first) *p++ = ',';
    first = 0;
    if (args[i].kind == SIO_ARG_BINARY) {
      if (atts) atts[num] = args[i].bin;
      memcpy(p, "{\"_placeholder\":true,\"num\":", 27);
      p += 27;
      p += fmt_uint(p, num++);
      *p++ = '}';
    } else {
      memcpy(p, args[i].json.p, args[i].json.len); /* surrounding whitespace is valid there */
      p += args[i].json.len;
    }
  }
  *p++ = ']';
  out->len = (size_t)((uint8_t *)p - out->data);
  return (int)nbin;
}

int sio_packet_args(const sio_packet *pkt, const sio_bin *atts, sio_arg *out, size_t cap) {
  if (!is_event(pkt->type) && !is_ack(pkt->type)) return WSIO_EINVAL;
  if (is_binary(pkt->type) && pkt->attachments && !atts) return WSIO_EINVAL;
  sio_json_iter it;
  sio_json_span e;
  size_t n = 0;
  /* The spans noted while decoding when they are all there; else a walk of the array. */
  int noted = pkt->elems_ok && pkt->nelems <= SIO_PACKET_ELEMS;
  size_t next = is_event(pkt->type) ? 1 : 0;
  if (!noted) {
    sio_json_iter_init(&it, &pkt->data);
    if (is_event(pkt->type)) sio_json_array_next(&it, &e);
  }
  while (noted ? next < pkt->nelems : sio_json_array_next(&it, &e)) {
    if (noted) e = pkt->elems[next++];
    if (n < cap) {
      sio_arg *a = &out[n];
      uint64_t num;
      a->kind = SIO_ARG_JSON;
      a->checked = 1; /* a span of the validated packet */
      a->json = e;
      a->bin.p = NULL;
      a->bin.len = 0;
      if (is_binary(pkt->type) && sio_json_placeholder(&e, pkt->attachments, &num) == 1) {
        a->kind = SIO_ARG_BINARY;
        a->bin = atts[num];
      }
    }
    n++;
  }
  return n > (size_t)INT32_MAX ? WSIO_EINVAL : (int)n;
}

/* ---- Reassembly ----------------------------------------------------------------------------------- */

void sio_packet_reasm_init(sio_packet_reasm *r) { memset(r, 0, sizeof *r); }

void sio_packet_reasm_free(sio_packet_reasm *r) {
  buf_free(&r->store);
  sio_packet_reasm_init(r);
}

void sio_packet_reasm_reset(sio_packet_reasm *r, size_t keep) {
  buf store = r->store;
  buf_reset(&store, keep);
  sio_packet_reasm_init(r);
  r->store = store;
}

int sio_packet_reasm_pending(const sio_packet_reasm *r) { return r->held && r->have < r->pkt.attachments; }

/* Offset of a view into text, or SIZE_MAX when it points elsewhere (the static default namespace). */
static size_t offset_in(const char *p, const char *text, size_t len) {
  uintptr_t a = (uintptr_t)p, t = (uintptr_t)text;
  return p && a >= t && a - t <= len ? (size_t)(a - t) : SIZE_MAX;
}

int sio_packet_reasm_start(sio_packet_reasm *r, const char *text, size_t len, const sio_packet *pkt) {
  if (sio_packet_reasm_pending(r)) return WSIO_EPROTO;
  if (!is_binary(pkt->type) || pkt->attachments == 0) return WSIO_EINVAL;
  r->held = 0;
  r->store.len = 0;
  int rc = buf_append(&r->store, text, len);
  if (rc) return rc;
  r->pkt = *pkt;
  r->text_len = len;
  r->nsp_off = offset_in(pkt->nsp, text, len);
  r->data_off = offset_in(pkt->data.p, text, len);
  r->name_off = offset_in(pkt->name.p, text, len);
  r->have = 0;
  r->held = 1;
  return 0;
}

int sio_packet_reasm_add(sio_packet_reasm *r, const void *p, size_t len) {
  if (!sio_packet_reasm_pending(r)) return WSIO_EPROTO;
  size_t old = r->store.len;
  int rc = buf_append(&r->store, &len, sizeof len);
  if (rc == 0) rc = buf_append(&r->store, p, len);
  if (rc) {
    r->store.len = old;
    return rc;
  }
  r->have++;
  return r->have == r->pkt.attachments;
}

int sio_packet_reasm_take(sio_packet_reasm *r, sio_packet *pkt, sio_bin *atts) {
  if (!r->held || r->have < r->pkt.attachments) return WSIO_EINVAL;
  const char *base = (const char *)r->store.data;
  *pkt = r->pkt;
  pkt->elems_ok = 0; /* the noted spans point into the text the packet came in */
  if (r->nsp_off != SIZE_MAX) pkt->nsp = base + r->nsp_off;
  if (r->data_off != SIZE_MAX) pkt->data.p = base + r->data_off;
  if (r->name_off != SIZE_MAX) pkt->name.p = base + r->name_off;
  size_t off = r->text_len;
  for (unsigned i = 0; i < r->pkt.attachments; i++) {
    size_t n;
    memcpy(&n, r->store.data + off, sizeof n);
    off += sizeof n;
    atts[i].p = n ? r->store.data + off : NULL;
    atts[i].len = n;
    off += n;
  }
  r->held = 0;
  return 0;
}
