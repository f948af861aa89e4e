/*
 * fuzz_eio3 — arbitrary bytes through the Engine.IO v3 decoders (src/eio/packet_v3.c): as a long-polling
 * POST body in the text and the binary form (the iterator and eio_v3_payload_check must agree; what decodes
 * re-encodes, in either form, to a payload that decodes to the same packets) and as one WebSocket message.
 *
 * Input: byte 0 picks the form (bit 0: binary) and a byte limit (bits 1-2), the rest is the body.
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
  size_t off, len;
} rec;

static rec recs[2][MAX_PACKETS];

/* Decodes body fully, copying each packet into store. Returns the count or the error. */
static int decode_copy(const uint8_t *body, size_t len, int binary, size_t max_bytes, buf *store, rec *out) {
  eio_v3_iter it;
  buf bin = {0};
  eio_packet p;
  int rc = eio_v3_payload_iter_init(&it, body, len, binary, max_bytes);
  int n = 0;
  while (rc == 0 && (rc = eio_v3_payload_next(&it, &bin, &p)) == 1) {
    CHECK(n < MAX_PACKETS);
    CHECK((unsigned)p.type <= EIO_NOOP);
    CHECK(!p.binary || p.type == EIO_MESSAGE);
    if (p.len && !(p.binary && p.data == bin.data)) CHECK(p.data >= body && p.data + p.len <= body + len);
    out[n] = (rec){p.type, p.binary, store->len, p.len};
    CHECK(buf_append(store, p.data, p.len) == 0);
    n++;
    rc = 0;
  }
  buf_free(&bin);
  if (rc < 0) {
    CHECK(rc == WSIO_EPROTO || rc == WSIO_ETOOBIG);
    CHECK(eio_v3_payload_next(&it, NULL, &p) == rc); /* sticky */
    return rc;
  }
  CHECK(eio_v3_payload_next(&it, NULL, &p) == 0);
  return n;
}

static void fuzz_payload(const uint8_t *d, size_t n, int binary, size_t max_bytes) {
  buf store = {0}, again = {0}, enc = {0};
  int count = decode_copy(d, n, binary, max_bytes, &store, recs[0]);
  CHECK(eio_v3_payload_check(d, n, binary, max_bytes) == count);
  if (count > 0) {
    for (int form = 0; form < 2; form++) {
      enc.len = 0;
      for (int i = 0; i < count; i++) {
        eio_packet p = {recs[0][i].type, recs[0][i].binary, store.data ? store.data + recs[0][i].off : NULL, recs[0][i].len};
        CHECK((form ? eio_v3_payload_append_binary(&enc, &p) : eio_v3_payload_append_text(&enc, &p)) == 0);
      }
      again.len = 0;
      CHECK(decode_copy(enc.data, enc.len, form, 0, &again, recs[1]) == count);
      for (int i = 0; i < count; i++) {
        CHECK(recs[1][i].type == recs[0][i].type && recs[1][i].binary == recs[0][i].binary);
        CHECK(recs[1][i].len == recs[0][i].len);
        if (recs[0][i].len)
          CHECK(!memcmp(again.data + recs[1][i].off, store.data + recs[0][i].off, recs[0][i].len));
      }
    }
  }
  buf_free(&store);
  buf_free(&again);
  buf_free(&enc);
}

static void fuzz_ws(const uint8_t *d, size_t n) {
  buf bin = {0};
  eio_packet p;
  for (int binary = 0; binary < 2; binary++) {
    int rc = eio_v3_ws_decode(d, n, binary, &bin, &p);
    CHECK(rc == 0 || rc == WSIO_EPROTO);
    if (rc == 0 && binary) CHECK(p.binary && p.len + 1 == n);
    if (rc == 0 && !p.binary) CHECK(p.len + 1 == n && p.data == d + 1);
  }
  buf_free(&bin);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const size_t limits[4] = {0, 16, 256, 4096};
  int binary = data[0] & 1;
  fuzz_payload(data + 1, size - 1, binary, limits[(data[0] >> 1) & 3]);
  fuzz_ws(data + 1, size - 1);
  return 0;
}
