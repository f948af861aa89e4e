/*
 * fuzz_eio — arbitrary bytes through the Engine.IO decoders: as a long-polling POST body (iterator and
 * eio_payload_check must agree; whatever decodes re-encodes to a payload that decodes to the same packets,
 * byte for byte the input when no base64 padding was left out), as one WebSocket text and binary message
 * (re-encoding gives the message back), and as a query string and an Accept-Encoding value.
 *
 * Input: byte 0 picks the packet and byte limits, the rest is the body / message / query.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eio/packet.h"
#include "wsio.h"

#define CHECK(x) \
  do {           \
    if (!(x)) __builtin_trap(); \
  } while (0)

#define MAX_PACKETS 4096

typedef struct rec {
  eio_packet_type type;
  int binary;
  size_t off, len; /* data copied into the flat store */
} rec;

static rec recs[MAX_PACKETS];

/* Decodes body fully; copies each packet into store. Returns the count or the error. */
static int decode_copy(const uint8_t *body, size_t len, size_t max_packets, size_t max_bytes, buf *store,
                       rec *out) {
  eio_payload_iter it;
  buf bin = {0};
  eio_packet p;
  int rc = eio_payload_iter_init(&it, body, len, max_packets, max_bytes);
  int n = 0;
  while (rc == 0 && (rc = eio_payload_next(&it, &bin, &p)) == 1) {
    CHECK(n < MAX_PACKETS);
    CHECK((unsigned)p.type <= EIO_NOOP);
    CHECK(!p.binary || p.type == EIO_MESSAGE);
    if (!p.binary && p.len) CHECK(p.data > body && p.data + p.len <= body + len);
    if (p.binary && p.len) CHECK(p.data == bin.data && p.len == bin.len);
    out[n] = (rec){p.type, p.binary, store->len, p.len};
    CHECK(buf_append(store, p.data, p.len) == 0);
    n++;
    rc = 0;
  }
  buf_free(&bin);
  if (rc < 0) {
    CHECK(rc == WSIO_EPROTO || rc == WSIO_ETOOBIG);
    CHECK(eio_payload_next(&it, NULL, &p) == rc); /* sticky */
    return rc;
  }
  CHECK(eio_payload_next(&it, NULL, &p) == 0);
  return n;
}

static void fuzz_payload(const uint8_t *d, size_t n, size_t max_packets, size_t max_bytes) {
  buf store = {0}, enc = {0}, store2 = {0};
  int count = decode_copy(d, n, max_packets, max_bytes, &store, recs);
  CHECK(eio_payload_check(d, n, max_packets, max_bytes) == count);
  if (count > 0) {
    for (int i = 0; i < count; i++) {
      eio_packet p = {recs[i].type, recs[i].binary, store.data ? store.data + recs[i].off : NULL, recs[i].len};
      CHECK(eio_payload_append(&enc, &p) == 0);
    }
    CHECK(enc.len >= n);
    if (enc.len == n) CHECK(memcmp(enc.data, d, n) == 0);
    static rec again[MAX_PACKETS];
    CHECK(decode_copy(enc.data, enc.len, 0, 0, &store2, again) == count);
    CHECK(store2.len == store.len && (store.len == 0 || memcmp(store.data, store2.data, store.len) == 0));
    for (int i = 0; i < count; i++)
      CHECK(again[i].type == recs[i].type && again[i].binary == recs[i].binary && again[i].len == recs[i].len);
  }
  buf_free(&store);
  buf_free(&store2);
  buf_free(&enc);
}

static void fuzz_ws(const uint8_t *d, size_t n) {
  buf bin = {0}, enc = {0};
  eio_packet p;
  CHECK(eio_ws_decode(d, n, 1, NULL, &p) == 0);
  CHECK(p.binary && p.type == EIO_MESSAGE && p.data == d && p.len == n);
  CHECK(eio_ws_encode(&p, &enc) == WSIO_BINARY);
  CHECK(enc.len == n && (n == 0 || memcmp(enc.data, d, n) == 0));
  enc.len = 0;

  int rc = eio_ws_decode(d, n, 0, &bin, &p);
  if (rc == 0) {
    if (p.binary) {
      CHECK(n >= 1 && d[0] == 'b');
      /* The same base64 as a one-packet payload decodes the same. */
      buf bin2 = {0};
      eio_payload_iter it;
      eio_packet q;
      CHECK(eio_payload_iter_init(&it, d, n, 0, 0) == 0);
      CHECK(eio_payload_next(&it, &bin2, &q) == 1);
      CHECK(q.binary && q.len == p.len && (p.len == 0 || memcmp(q.data, p.data, p.len) == 0));
      CHECK(eio_payload_next(&it, &bin2, &q) == 0);
      buf_free(&bin2);
    } else {
      CHECK(p.data == d + 1 && p.len == n - 1);
      CHECK(eio_ws_encode(&p, &enc) == WSIO_TEXT);
      CHECK(enc.len == n && memcmp(enc.data, d, n) == 0);
    }
  } else {
    CHECK(rc == WSIO_EPROTO);
  }
  buf_free(&bin);
  buf_free(&enc);
}

static void fuzz_query(const uint8_t *d, size_t n) {
  eio_query q;
  int rc = eio_query_parse((const char *)d, n, &q);
  CHECK(rc == 0 || rc == WSIO_EPROTO);
  if (rc == 0) {
    CHECK(q.eio >= -1 && q.eio <= 999);
    CHECK(q.transport >= EIO_TRANSPORT_NONE && q.transport <= EIO_TRANSPORT_UNKNOWN);
    CHECK(strlen(q.sid) <= EIO_QUERY_SID_MAX);
    if (!q.has_sid) CHECK(q.sid[0] == '\0');
  }
  /* The same bytes as an Accept-Encoding value: one of the three answers, and no read past n. */
  int enc = eio_accept_encoding((const char *)d, n);
  CHECK(enc == EIO_ENC_IDENTITY || enc == EIO_ENC_GZIP || enc == EIO_ENC_DEFLATE);
  char out[32];
  rc = eio_query_get((const char *)d, n, "sid", out, sizeof out);
  CHECK(rc == WSIO_ENOTFOUND || rc == WSIO_EPROTO || rc == WSIO_ETOOBIG || (rc >= 0 && rc < (int)sizeof out));
  if (rc >= 0) CHECK(out[rc] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0];
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  /* Exact-size copies so ASan sees any read past the end. */
  uint8_t *copy = malloc(n ? n : 1);
  if (!copy) return 0;
  if (n) memcpy(copy, d, n);
  size_t max_packets = sel & 7 ? (size_t)(sel & 7) * 3 : 0;
  size_t max_bytes = sel & 0x38 ? (size_t)((sel >> 3) & 7) * 40 : 0;
  fuzz_payload(copy, n, max_packets, max_bytes);
  fuzz_payload(copy, n, 0, 0);
  fuzz_ws(copy, n);
  fuzz_query(copy, n);
  free(copy);
  return 0;
}
