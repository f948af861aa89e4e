#include "eio/packet.h"
#include "eio/b64.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/pct.h"
#include "util/scan.h"
#include "util/utf8.h"
#include "wsio.h"

/* ---- base64 ---------------------------------------------------------------------------------------------- */

const char EIO_B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t eio_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

size_t eio_b64_encode(const uint8_t *in, size_t n, char *out, const char *alpha, int pad) {
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *o++ = alpha[v >> 18];
    *o++ = alpha[(v >> 12) & 63];
    *o++ = alpha[(v >> 6) & 63];
    *o++ = alpha[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    *o++ = alpha[v >> 18];
    *o++ = alpha[(v >> 12) & 63];
    if (i + 1 < n) *o++ = alpha[(v >> 6) & 63];
    else if (pad) *o++ = '=';
    if (pad) *o++ = '=';
  }
  return (size_t)(o - out);
}

/* Standard alphabet only: clients encode with btoa/Buffer, never the URL-safe one. */
static int b64_value(uint8_t c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

ptrdiff_t eio_b64_decoded_len(const uint8_t *in, size_t n) {
  size_t pad = 0;
  while (pad < 2 && pad < n && in[n - 1 - pad] == '=') pad++;
  if (pad && n % 4) return -1;
  size_t m = n - pad;
  if (m % 4 == 1) return -1;
  return (ptrdiff_t)(m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0));
}

int eio_b64_decode(const uint8_t *in, size_t n, uint8_t *out) {
  ptrdiff_t dlen = eio_b64_decoded_len(in, n);
  if (dlen < 0) return -1;
  size_t m = (size_t)dlen / 3 * 4 + ((size_t)dlen % 3 ? (size_t)dlen % 3 + 1 : 0);
  size_t i = 0;
  for (; i + 4 <= m; i += 4) {
    int a = b64_value(in[i]), b = b64_value(in[i + 1]), c = b64_value(in[i + 2]), d = b64_value(in[i + 3]);
    if ((a | b | c | d) < 0) return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    if (out) {
      *out++ = (uint8_t)(v >> 16);
      *out++ = (uint8_t)(v >> 8);
      *out++ = (uint8_t)v;
    }
  }
  if (i < m) { /* 2 or 3 characters left */
    int a = b64_value(in[i]), b = b64_value(in[i + 1]), c = m - i == 3 ? b64_value(in[i + 2]) : 0;
    if ((a | b | c) < 0) return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
    if (m - i == 2 ? (v & 0xffff) : (v & 0xff)) return -1;
    if (out) {
      *out++ = (uint8_t)(v >> 16);
      if (m - i == 3) *out = (uint8_t)(v >> 8);
    }
  }
  return 0;
}

/* ---- packets --------------------------------------------------------------------------------------- */

int eio_packet_valid(const eio_packet *p) {
  if ((unsigned)p->type > EIO_NOOP) return 0;
  if (p->binary && p->type != EIO_MESSAGE) return 0;
  if (p->len > SIZE_MAX / 4) return 0; /* keeps the size arithmetic below from wrapping */
  return p->data || p->len == 0;
}

int eio_b64_packet(const uint8_t *in, size_t n, buf *bin, eio_packet *out) {
  ptrdiff_t dlen = eio_b64_decoded_len(in, n);
  if (dlen < 0) return WSIO_EPROTO;
  uint8_t *dst = NULL;
  if (bin) {
    bin->len = 0;
    if (buf_reserve(bin, (size_t)dlen)) return WSIO_ENOMEM;
    dst = bin->data;
  }
  if (eio_b64_decode(in, n, dst) < 0) return WSIO_EPROTO;
  if (bin) bin->len = (size_t)dlen;
  *out = (eio_packet){EIO_MESSAGE, 1, dlen ? dst : NULL, (size_t)dlen};
  return 0;
}

/* Decodes one packet p[0..n) of either transport. bin NULL: base64 is only validated (out->data NULL). */
static int decode_one(const uint8_t *p, size_t n, buf *bin, int check_utf8, eio_packet *out) {
  if (n == 0) return WSIO_EPROTO;
  if (p[0] == 'b') return eio_b64_packet(p + 1, n - 1, bin, out);
  if (p[0] < '0' || p[0] > '0' + EIO_NOOP) return WSIO_EPROTO;
  if (check_utf8 && !utf8_valid(p + 1, n - 1)) return WSIO_EPROTO;
  *out = (eio_packet){(eio_packet_type)(p[0] - '0'), 0, p + 1, n - 1};
  return 0;
}

int eio_ws_decode(const uint8_t *msg, size_t len, int binary, buf *bin, eio_packet *out) {
  if (binary) {
    *out = (eio_packet){EIO_MESSAGE, 1, msg, len};
    return 0;
  }
  if (len && msg[0] == 'b' && !bin) return WSIO_EPROTO;
  return decode_one(msg, len, bin, 0, out);
}

int eio_ws_encode(const eio_packet *p, buf *out) {
  if (!eio_packet_valid(p)) return WSIO_EINVAL;
  if (buf_reserve(out, p->len + 1)) return WSIO_ENOMEM;
  if (!p->binary) out->data[out->len++] = (uint8_t)('0' + p->type);
  if (p->len) memcpy(out->data + out->len, p->data, p->len);
  out->len += p->len;
  return p->binary ? WSIO_BINARY : WSIO_TEXT;
}

/* ---- polling payloads ------------------------------------------------------------------------------ */

int eio_payload_iter_init(eio_payload_iter *it, const uint8_t *body, size_t len, size_t max_packets,
                          size_t max_bytes) {
  *it = (eio_payload_iter){body, len, 0, 0, max_packets, 0};
  if (max_bytes && len > max_bytes) it->state = WSIO_ETOOBIG;
  return it->state;
}

int eio_payload_next(eio_payload_iter *it, buf *bin, eio_packet *out) {
  if (it->state) return it->state < 0 ? it->state : 0;
  if (it->max_packets && it->count == it->max_packets) return it->state = WSIO_ETOOBIG;
  const uint8_t *start = it->body + it->pos;
  size_t rest = it->len - it->pos;
  const uint8_t *sep = rest ? memchr(start, EIO_SEPARATOR, rest) : NULL;
  size_t n = sep ? (size_t)(sep - start) : rest;
  int rc = decode_one(start, n, bin, 1, out);
  if (rc < 0) return it->state = rc;
  it->count++;
  if (sep) it->pos += n + 1;
  else it->state = 1;
  return 1;
}

int eio_payload_check(const uint8_t *body, size_t len, size_t max_packets, size_t max_bytes) {
  eio_payload_iter it;
  int rc = eio_payload_iter_init(&it, body, len, max_packets, max_bytes);
  if (rc < 0) return rc;
  eio_packet p;
  while ((rc = eio_payload_next(&it, NULL, &p)) == 1) {
  }
  if (rc < 0) return rc;
  return it.count > INT32_MAX ? WSIO_ETOOBIG : (int)it.count;
}

size_t eio_payload_packet_len(const eio_packet *p) {
  return 1 + (p->binary ? eio_b64_encoded_len(p->len) : p->len);
}

int eio_payload_append(buf *out, const eio_packet *p) {
  if (!eio_packet_valid(p)) return WSIO_EINVAL;
  if (!p->binary && p->len && memchr(p->data, EIO_SEPARATOR, p->len)) return WSIO_EINVAL;
  size_t sep = out->len ? 1 : 0;
  if (buf_reserve(out, sep + eio_payload_packet_len(p))) return WSIO_ENOMEM;
  uint8_t *o = out->data + out->len;
  if (sep) *o++ = EIO_SEPARATOR;
  if (p->binary) {
    *o++ = 'b';
    o += eio_b64_encode(p->data, p->len, (char *)o, EIO_B64_STD, 1);
  } else {
    *o++ = (uint8_t)('0' + p->type);
    if (p->len) memcpy(o, p->data, p->len);
    o += p->len;
  }
  out->len = (size_t)(o - out->data);
  return 0;
}

/* ---- handshake ------------------------------------------------------------------------------------- */

static int append_json_string(buf *out, const char *s) {
  if (buf_append(out, "\"", 1)) return WSIO_ENOMEM;
  for (const char *run = s;; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (buf_append(out, run, (size_t)(s - run))) return WSIO_ENOMEM;
    if (c == 0) break;
    char esc[8];
    int n = c == '"' || c == '\\' ? snprintf(esc, sizeof esc, "\\%c", c) : snprintf(esc, sizeof esc, "\\u%04x", c);
    if (buf_append(out, esc, (size_t)n)) return WSIO_ENOMEM;
    run = s + 1;
  }
  return buf_append(out, "\"", 1) ? WSIO_ENOMEM : 0;
}

int eio_open_json(buf *out, const char *sid, int upgrade_websocket, uint32_t ping_interval_ms,
                  uint32_t ping_timeout_ms, uint64_t max_payload) {
  if (!sid) return WSIO_EINVAL;
  size_t start = out->len;
  char tail[128];
  int n = snprintf(tail, sizeof tail,
                   ",\"upgrades\":[%s],\"pingInterval\":%" PRIu32 ",\"pingTimeout\":%" PRIu32
                   ",\"maxPayload\":%" PRIu64 "}",
                   upgrade_websocket ? "\"websocket\"" : "", ping_interval_ms, ping_timeout_ms, max_payload);
  if (buf_append(out, "{\"sid\":", 7) || append_json_string(out, sid) || buf_append(out, tail, (size_t)n)) {
    out->len = start;
    return WSIO_ENOMEM;
  }
  return 0;
}

int eio_sid_generate(char out[EIO_SID_LEN + 1]) {
  uint8_t raw[EIO_SID_LEN / 4 * 3];
  if (RAND_bytes(raw, (int)sizeof raw) != 1) {
    out[0] = '\0';
    return WSIO_EIO;
  }
  out[eio_b64_encode(raw, sizeof raw, out, B64_URL, 0)] = '\0';
  return 0;
}

static int b64_url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '-' ? 62 : c == '_' ? 63 : -1;
}

void eio_sid_set_worker(char *sid, unsigned worker) {
  worker %= EIO_SID_MAX_WORKERS;
  sid[0] = B64_URL[worker / 64];
  sid[1] = B64_URL[worker % 64];
}

int eio_sid_worker(const char *sid) {
  /* Only an id of a session's shape names a worker: anything else is no session, and is answered where it
   * landed rather than moved to another thread with its socket. */
  for (size_t i = 0; i < EIO_SID_LEN; i++)
    if (b64_url_value(sid[i]) < 0) return -1; /* the NUL of a shorter id included */
  if (sid[EIO_SID_LEN]) return -1;
  return b64_url_value(sid[0]) * 64 + b64_url_value(sid[1]);
}

/* ---- errors ---------------------------------------------------------------------------------------- */

/* One list: the messages and the JSON bodies are both made from it. */
#define EIO_ERRORS(X)                  \
  X(0, "Transport unknown")            \
  X(1, "Session ID unknown")           \
  X(2, "Bad handshake method")         \
  X(3, "Bad request")                  \
  X(4, "Forbidden")                    \
  X(5, "Unsupported protocol version")
#define ERROR_MESSAGE_(code, msg) msg,
#define ERROR_BODY_(code, msg) "{\"code\":" #code ",\"message\":\"" msg "\"}",
static const char *const ERROR_MESSAGES[] = {EIO_ERRORS(ERROR_MESSAGE_)};
static const char *const ERROR_BODIES[] = {EIO_ERRORS(ERROR_BODY_)};
#undef ERROR_MESSAGE_
#undef ERROR_BODY_

const char *eio_error_message(int code) {
  return code >= 0 && (size_t)code < sizeof ERROR_MESSAGES / sizeof ERROR_MESSAGES[0] ? ERROR_MESSAGES[code]
                                                                                      : "Bad request";
}

const char *eio_error_body(int code) {
  if (code < 0 || (size_t)code >= sizeof ERROR_BODIES / sizeof ERROR_BODIES[0]) return NULL;
  return ERROR_BODIES[code];
}

int eio_error_json(buf *out, int code, const char *message) {
  if (!message) {
    const char *body = eio_error_body(code);
    return buf_append(out, body, strlen(body));
  }
  char head[48];
  int n = snprintf(head, sizeof head, "{\"code\":%d,\"message\":\"", code);
  int rc = buf_append(out, head, (size_t)n);
  for (const unsigned char *p = (const unsigned char *)message; rc == 0 && *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      rc = buf_append(out, esc, 2);
    } else if (*p < 0x20) {
      n = snprintf(esc, sizeof esc, "\\u%04x", *p);
      rc = buf_append(out, esc, (size_t)n);
    } else {
      rc = buf_append(out, p, 1);
    }
  }
  if (rc == 0) rc = buf_append(out, "\"}", 2);
  return rc;
}

int eio_error_status(int code) { return code == EIO_ERR_FORBIDDEN ? 403 : 400; }

/* ---- query string ---------------------------------------------------------------------------------- */

/* Percent-decodes s[0..n) ('+' a space, a malformed escape an error) into out (NULL: measure only) with a
 * NUL after it. Returns the decoded length, WSIO_EPROTO for a bad escape, or WSIO_ETOOBIG when the value and
 * its NUL exceed cap. */
static int query_decode(const char *s, size_t n, char *out, size_t cap) {
  long r = pct_decode(s, n, out, cap, PCT_PLUS);
  return r > INT32_MAX ? WSIO_ETOOBIG : (int)r;
}

typedef struct qspan {
  const char *s;
  size_t n;
} qspan;

/* Steps to the next name=value pair from *pos. Returns 0 at the end. */
static int next_pair(const char *q, size_t len, size_t *pos, qspan *key, qspan *val) {
  while (*pos < len && q[*pos] == '&') (*pos)++;
  if (*pos >= len) return 0;
  const char *p = q + *pos, *amp = memchr(p, '&', len - *pos);
  size_t n = amp ? (size_t)(amp - p) : len - *pos;
  const char *eq = memchr(p, '=', n);
  *key = (qspan){p, eq ? (size_t)(eq - p) : n};
  *val = eq ? (qspan){eq + 1, n - key->n - 1} : (qspan){p + n, 0};
  *pos += n;
  return 1;
}

/* 1 if the percent-decoded key equals name (under 32 bytes, as eio_query_get says). A key with a bad
 * escape, or one too long to decode to such a name, equals nothing. */
static int key_is(qspan key, const char *name) {
  char k[32];
  size_t n = strlen(name);
  if (key.n > 3 * (sizeof k - 1)) return 0;
  long r = pct_decode(key.s, key.n, k, sizeof k, PCT_PLUS);
  return r == (long)n && memcmp(k, name, n) == 0;
}

static void skip_mark(const char **q, size_t *len) {
  if (*len && **q == '?') {
    (*q)++;
    (*len)--;
  }
}

int eio_query_get(const char *q, size_t len, const char *key, char *out, size_t cap) {
  skip_mark(&q, &len);
  qspan k, v, found = {NULL, 0};
  for (size_t pos = 0; next_pair(q, len, &pos, &k, &v);)
    if (key_is(k, key)) found = v;
  if (!found.s) return WSIO_ENOTFOUND;
  return query_decode(found.s, found.n, out, cap);
}

int eio_query_parse(const char *q, size_t len, eio_query *out) {
  enum { K_EIO, K_TRANSPORT, K_SID, K_B64, K_T, K_J, K_COUNT };
  static const char *const names[K_COUNT] = {"EIO", "transport", "sid", "b64", "t", "j"};
  qspan vals[K_COUNT] = {{NULL, 0}}, k, v;
  skip_mark(&q, &len);
  for (size_t pos = 0; next_pair(q, len, &pos, &k, &v);)
    for (int i = 0; i < K_COUNT; i++)
      if (key_is(k, names[i])) vals[i] = v;

  memset(out, 0, sizeof *out);
  out->eio = -1;
  char small[16];
  int n;
  for (int i = 0; i < K_COUNT; i++)
    if (vals[i].s && query_decode(vals[i].s, vals[i].n, NULL, 0) < 0) return WSIO_EPROTO;

  if (vals[K_EIO].s && (n = query_decode(vals[K_EIO].s, vals[K_EIO].n, small, 4)) > 0 &&
      (n == 1 || small[0] != '0')) {
    int e = 0;
    for (int i = 0; i < n && e >= 0; i++) e = small[i] >= '0' && small[i] <= '9' ? e * 10 + small[i] - '0' : -1;
    out->eio = e;
  }
  if (vals[K_TRANSPORT].s) {
    n = query_decode(vals[K_TRANSPORT].s, vals[K_TRANSPORT].n, small, sizeof small);
    out->transport = n == 7 && !memcmp(small, "polling", 7)     ? EIO_TRANSPORT_POLLING
                     : n == 9 && !memcmp(small, "websocket", 9) ? EIO_TRANSPORT_WEBSOCKET
                                                                : EIO_TRANSPORT_UNKNOWN;
  }
  if (vals[K_SID].s && vals[K_SID].n) {
    out->has_sid = 1;
    n = query_decode(vals[K_SID].s, vals[K_SID].n, out->sid, sizeof out->sid);
    if (n < 0 || strlen(out->sid) != (size_t)n) out->sid[0] = '\0'; /* too long or with a NUL: no match */
  }
  out->b64 = vals[K_B64].s && vals[K_B64].n;
  out->has_t = vals[K_T].s != NULL;
  if (vals[K_J].s) {
    out->has_j = 1;
    size_t nj = 0;
    const char *jv = vals[K_J].s;
    for (size_t i = 0; i < vals[K_J].n && nj < EIO_QUERY_J_MAX; i++) {
      char c = jv[i];
      if (c == '%') { /* well-formed: checked above */
        c = (char)(scan_hex(jv[i + 1]) << 4 | scan_hex(jv[i + 2]));
        i += 2;
      }
      if (c >= '0' && c <= '9') out->j[nj++] = c;
    }
    out->j[nj] = '\0';
  }
  return 0;
}

/* q=0, 0.0, 0.00, 0.000: the parameters [p, end) of one coding refuse it */
static int refused(const char *p, const char *end) {
  for (; p + 2 < end; p++) {
    if (*p != ';') continue;
    const char *q = p + 1;
    while (q < end && (*q == ' ' || *q == '\t')) q++;
    if (q + 2 > end || (*q != 'q' && *q != 'Q') || q[1] != '=') continue;
    const char *v = q + 2;
    if (v >= end || *v != '0') return 0;
    for (v++; v < end && *v != ' ' && *v != '\t' && *v != ';'; v++)
      if (*v != '.' && *v != '0') return 0;
    return 1;
  }
  return 0;
}

int eio_accept_encoding(const char *v, size_t len) {
  int gzip = 0, deflate = 0;
  const char *p = v, *end = v + len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *item_end = comma ? comma : end;
    while (p < item_end && (*p == ' ' || *p == '\t')) p++;
    const char *name = p;
    while (p < item_end && *p != ';' && *p != ' ' && *p != '\t') p++;
    size_t n = (size_t)(p - name);
    if (!refused(p, item_end)) {
      if ((n == 4 && !strncasecmp(name, "gzip", 4)) || (n == 1 && *name == '*')) gzip = 1;
      else if (n == 7 && !strncasecmp(name, "deflate", 7)) deflate = 1;
    }
    p = comma ? comma + 1 : end;
  }
  return gzip ? EIO_ENC_GZIP : deflate ? EIO_ENC_DEFLATE : EIO_ENC_IDENTITY;
}
