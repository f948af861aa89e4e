/* The Engine.IO v3 forms (socket.io-client 2.x): length-prefixed polling payloads, text and binary, and the
 * type byte of binary WebSocket messages. Sans-I/O, as packet.c. */
#include <stdio.h>
#include <string.h>

#include "eio/b64.h"
#include "eio/packet.h"
#include "util/utf8.h"
#include "wsio.h"

/* engine.io-parser 2.x accepts up to 310 digits; ten already exceed any body we take. */
#define V3_LEN_DIGITS_MAX 10

size_t eio_v3_utf16_len(const uint8_t *p, size_t n) {
  size_t units = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if ((c & 0xc0) != 0x80) units += c >= 0xf0 ? 2 : 1; /* continuation bytes add nothing */
  }
  return units;
}

int eio_v3_payload_append_text(buf *out, const eio_packet *p) {
  if (!eio_packet_valid(p)) return WSIO_EINVAL;
  size_t body = p->binary ? 2 + eio_b64_encoded_len(p->len) : 1 + p->len;
  size_t units = p->binary ? body : 1 + eio_v3_utf16_len(p->data, p->len);
  char head[24];
  int hn = snprintf(head, sizeof head, "%zu:", units);
  if (buf_reserve(out, (size_t)hn + body)) return WSIO_ENOMEM;
  uint8_t *o = out->data + out->len;
  memcpy(o, head, (size_t)hn);
  o += hn;
  if (p->binary) {
    *o++ = 'b';
    *o++ = '4';
    o += eio_b64_encode(p->data, p->len, (char *)o, EIO_B64_STD, 1);
  } else {
    *o++ = (uint8_t)('0' + p->type);
    if (p->len) memcpy(o, p->data, p->len);
    o += p->len;
  }
  out->len = (size_t)(o - out->data);
  return 0;
}

int eio_v3_payload_append_binary(buf *out, const eio_packet *p) {
  if (!eio_packet_valid(p)) return WSIO_EINVAL;
  char digits[24];
  int dn = snprintf(digits, sizeof digits, "%zu", p->len + 1);
  if (buf_reserve(out, (size_t)dn + 3 + p->len)) return WSIO_ENOMEM;
  uint8_t *o = out->data + out->len;
  *o++ = p->binary ? 1 : 0;
  for (int i = 0; i < dn; i++) *o++ = (uint8_t)(digits[i] - '0');
  *o++ = 255;
  *o++ = p->binary ? EIO_MESSAGE : (uint8_t)('0' + p->type);
  if (p->len) memcpy(o, p->data, p->len);
  o += p->len;
  out->len = (size_t)(o - out->data);
  return 0;
}

/* One text packet p[0..n): a type character and UTF-8 data, or b4 and base64. */
static int decode_text(const uint8_t *p, size_t n, buf *bin, eio_packet *out) {
  if (n == 0) return WSIO_EPROTO;
  if (p[0] == 'b') {
    if (n < 2 || p[1] != '0' + EIO_MESSAGE) return WSIO_EPROTO;
    return eio_b64_packet(p + 2, n - 2, bin, out);
  }
  if (p[0] < '0' || p[0] > '0' + EIO_NOOP || !utf8_valid(p + 1, n - 1)) return WSIO_EPROTO;
  *out = (eio_packet){(eio_packet_type)(p[0] - '0'), 0, p + 1, n - 1};
  return 0;
}

int eio_v3_payload_iter_init(eio_v3_iter *it, const uint8_t *body, size_t len, int binary, size_t max_bytes) {
  *it = (eio_v3_iter){body, len, 0, 0, binary != 0, 0};
  if (max_bytes && len > max_bytes) it->state = WSIO_ETOOBIG;
  else if (len == 0) it->state = WSIO_EPROTO;
  return it->state == WSIO_ETOOBIG ? it->state : 0;
}

/* Bytes of the first `units` UTF-16 units from p[0..n), or -1 when n runs out first or the count ends
 * inside a character (half of a surrogate pair). */
static ptrdiff_t utf16_span(const uint8_t *p, size_t n, size_t units) {
  size_t i = 0;
  while (units) {
    if (i >= n) return -1;
    uint8_t c = p[i];
    size_t w = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    size_t u = w == 4 ? 2 : 1;
    if (u > units || w > n - i) return -1;
    units -= u;
    i += w;
  }
  return (ptrdiff_t)i;
}

static int next_text(eio_v3_iter *it, buf *bin, eio_packet *out) {
  for (;;) {
    if (it->pos == it->len) return it->state = 1, 0;
    const uint8_t *p = it->body + it->pos;
    size_t rest = it->len - it->pos, d = 0, units = 0;
    while (d < rest && p[d] >= '0' && p[d] <= '9') {
      if (++d > V3_LEN_DIGITS_MAX) return it->state = WSIO_EPROTO;
      units = units * 10 + (size_t)(p[d - 1] - '0');
    }
    if (d == 0 || d == rest || p[d] != ':') return it->state = WSIO_EPROTO;
    ptrdiff_t n = utf16_span(p + d + 1, rest - d - 1, units);
    if (n < 0) return it->state = WSIO_EPROTO;
    it->pos += d + 1 + (size_t)n;
    if (n == 0) continue; /* "0:" is an empty entry */
    int rc = decode_text(p + d + 1, (size_t)n, bin, out);
    return rc < 0 ? (it->state = rc) : 1;
  }
}

static int next_binary(eio_v3_iter *it, buf *bin, eio_packet *out) {
  if (it->pos == it->len) return it->state = 1, 0;
  const uint8_t *p = it->body + it->pos;
  size_t rest = it->len - it->pos, d = 1, n = 0;
  if (p[0] > 1) return it->state = WSIO_EPROTO;
  for (; d < rest && p[d] != 255; d++) {
    if (p[d] > 9 || d > V3_LEN_DIGITS_MAX) return it->state = WSIO_EPROTO;
    n = n * 10 + p[d];
  }
  if (d == 1 || d == rest || n == 0 || n > rest - d - 1) return it->state = WSIO_EPROTO;
  const uint8_t *pkt = p + d + 1;
  it->pos += d + 1 + n;
  if (p[0] == 0) {
    int rc = decode_text(pkt, n, bin, out);
    return rc < 0 ? (it->state = rc) : 1;
  }
  if (pkt[0] != EIO_MESSAGE) return it->state = WSIO_EPROTO;
  *out = (eio_packet){EIO_MESSAGE, 1, n > 1 ? pkt + 1 : NULL, n - 1};
  return 1;
}

int eio_v3_payload_next(eio_v3_iter *it, buf *bin, eio_packet *out) {
  if (it->state) return it->state < 0 ? it->state : 0;
  int rc = it->binary ? next_binary(it, bin, out) : next_text(it, bin, out);
  if (rc == 1) it->count++;
  return rc;
}

int eio_v3_payload_check(const uint8_t *body, size_t len, int binary, size_t max_bytes) {
  eio_v3_iter it;
  int rc = eio_v3_payload_iter_init(&it, body, len, binary, max_bytes);
  if (rc < 0) return rc;
  eio_packet p;
  while ((rc = eio_v3_payload_next(&it, NULL, &p)) == 1) {
  }
  if (rc < 0) return rc;
  return it.count > INT32_MAX ? WSIO_ETOOBIG : (int)it.count;
}

int eio_v3_ws_decode(const uint8_t *msg, size_t len, int binary, buf *bin, eio_packet *out) {
  if (binary) {
    if (len == 0 || msg[0] != EIO_MESSAGE) return WSIO_EPROTO;
    *out = (eio_packet){EIO_MESSAGE, 1, len > 1 ? msg + 1 : NULL, len - 1};
    return 0;
  }
  if (len && msg[0] == 'b') {
    if (!bin) return WSIO_EPROTO;
    return decode_text(msg, len, bin, out);
  }
  /* Text frames were UTF-8 checked by the WebSocket layer: only the type is left to check. */
  if (len == 0 || msg[0] < '0' || msg[0] > '0' + EIO_NOOP) return WSIO_EPROTO;
  *out = (eio_packet){(eio_packet_type)(msg[0] - '0'), 0, msg + 1, len - 1};
  return 0;
}
