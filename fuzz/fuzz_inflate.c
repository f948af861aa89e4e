/*
 * Fuzzes permessage-deflate inflate and the deflate/inflate round trip.
 *
 * Input: flags, max (2 bytes, little endian), seed, then the body.
 *   Phase 1: the body, cut into messages, is inflated as compressed data by three receivers with the same
 *   parameters, fed in different random splits and interleaved (in the shared model that moves the shared
 *   inflater between them mid-message). All must agree exactly, the result must be 0 / WSIO_ETOOBIG /
 *   WSIO_EPROTO, and the output buffer must never hold or reserve more than max bytes.
 *   Phase 2: the body is compressed and inflated back, twice (context takeover), and must come back equal;
 *   with max one byte short it must be WSIO_ETOOBIG.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "ws/deflate.h"
#include "wsio.h"

#define CHECK(c) \
  do {           \
    if (!(c)) abort(); \
  } while (0)

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

typedef struct rx {
  ws_deflate *d;
  buf out;
  size_t off; /* bytes of the message fed; n + 1 once ended */
  int started;
  int rc;
  uint64_t rng;
} rx;

static int rx_busy(const rx *r, size_t n) {
  return r->rc == 0 && r->off <= n;
}

/* Begins the message, feeds its next random piece (possibly empty), or ends it after the last one. */
static void rx_step(rx *r, const uint8_t *msg, size_t n, uint64_t max) {
  if (!rx_busy(r, n)) return;
  if (!r->started) {
    r->started = 1;
    r->rc = ws_inflate_begin(r->d);
    CHECK(r->rc == 0);
  } else if (r->off == n) {
    r->rc = ws_inflate_end(r->d, &r->out, max);
    r->off = n + 1;
  } else {
    size_t k = (size_t)(rnd(&r->rng) % (n / 3 + 2));
    if (k > n - r->off) k = n - r->off;
    r->rc = ws_inflate_chunk(r->d, msg + r->off, k, &r->out, max);
    r->off += k;
  }
  CHECK(r->out.len <= max && r->out.cap <= max);
}

static void rx_reset(rx *r) {
  r->out.len = 0;
  r->off = 0;
  r->started = 0;
  r->rc = 0;
}

static void rx_same(const rx *a, const rx *b) {
  CHECK(a->rc == 0 || a->rc == WSIO_ETOOBIG || a->rc == WSIO_EPROTO);
  CHECK(a->rc == b->rc);
  CHECK(a->out.len == b->out.len);
  CHECK(a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0);
}

/* Three receivers take the same messages: a and b in steps interleaved at random, c whole at a random
 * moment. In the shared model each begin takes the shared inflater from whoever holds it mid-message. */
static void phase_inflate(const ws_pmd_params *p, ws_deflate_shared *sh, const uint8_t *body, size_t len,
                          uint64_t max, uint64_t seed) {
  rx r[3] = {{ws_deflate_new(p, sh), {0}, 0, 0, 0, seed | 1},
             {ws_deflate_new(p, sh), {0}, 0, 0, 0, (seed * 31 + 7) | 1},
             {ws_deflate_new(p, sh), {0}, 0, 0, 0, (seed * 17 + 3) | 1}};
  CHECK(r[0].d && r[1].d && r[2].d);
  uint64_t cut = seed ^ 0x5bd1e995;
  size_t off = 0;
  for (int m = 0; m < 4; m++) {
    size_t n = m == 3 ? len - off : (size_t)(rnd(&cut) % (len - off + 1));
    const uint8_t *msg = body + off;
    off += n;
    for (int i = 0; i < 3; i++) rx_reset(&r[i]);
    int c_at = (int)(rnd(&cut) % 8);
    for (int step = 0; rx_busy(&r[0], n) || rx_busy(&r[1], n); step++) {
      uint64_t x = rnd(&cut);
      if (x & 1) rx_step(&r[0], msg, n, max);
      if (x & 2) rx_step(&r[1], msg, n, max);
      if (step == c_at)
        while (rx_busy(&r[2], n)) rx_step(&r[2], msg, n, max);
    }
    while (rx_busy(&r[2], n)) rx_step(&r[2], msg, n, max);
    rx_same(&r[0], &r[1]);
    rx_same(&r[0], &r[2]);
    for (int i = 0; i < 3; i++) CHECK(ws_deflate_memory(r[i].d) <= 48 * 1024);
  }
  for (int i = 0; i < 3; i++) {
    buf_free(&r[i].out);
    ws_deflate_free(r[i].d);
  }
}

static void inflate_whole(ws_deflate *d, const uint8_t *z, size_t n, buf *out, uint64_t max, uint64_t *rng,
                          int *rc) {
  *rc = ws_inflate_begin(d);
  size_t off = 0;
  while (*rc == 0 && off < n) {
    size_t k = (size_t)(rnd(rng) % (n / 2 + 2));
    if (k > n - off) k = n - off;
    *rc = ws_inflate_chunk(d, z + off, k, out, max);
    off += k;
  }
  if (*rc == 0) *rc = ws_inflate_end(d, out, max);
}

static void phase_roundtrip(const ws_pmd_params *p, ws_deflate_shared *sh, const uint8_t *body, size_t len,
                            uint64_t seed) {
  ws_deflate *tx = ws_deflate_new(p, sh), *rxd = ws_deflate_new(p, sh);
  CHECK(tx && rxd);
  uint64_t rng = seed | 1;
  for (int i = 0; i < 2; i++) {
    const uint8_t *z;
    long n = ws_deflate_message(tx, body, len, &z);
    CHECK(n > 0);
    uint8_t *copy = malloc((size_t)n);
    CHECK(copy);
    memcpy(copy, z, (size_t)n);
    buf out = {0};
    int rc;
    if (i == 1 && len > 0 && p->server_no_context_takeover) {
      /* Messages are independent here, so one may be cut short without upsetting the next. */
      inflate_whole(rxd, copy, (size_t)n, &out, len - 1, &rng, &rc);
      CHECK(rc == WSIO_ETOOBIG && out.len <= len - 1 && out.cap <= len - 1);
      out.len = 0;
    }
    inflate_whole(rxd, copy, (size_t)n, &out, len, &rng, &rc);
    CHECK(rc == 0 && out.len == len);
    CHECK(len == 0 || memcmp(out.data, body, len) == 0);
    buf_free(&out);
    free(copy);
  }
  ws_deflate_free(tx);
  ws_deflate_free(rxd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint8_t flags = data[0];
  uint64_t max = (uint64_t)data[1] | (uint64_t)data[2] << 8;
  uint64_t seed = (uint64_t)data[3] * 0x9e3779b97f4a7c15ull + size;
  const uint8_t *body = data + 4;
  size_t len = size - 4;

  ws_deflate_shared *sh = (flags & 4) ? NULL : ws_deflate_shared_new();
  /* Receivers: reset per message (the shared inflater when sh is set) or with context takeover. */
  ws_pmd_params p = {(uint8_t)((flags >> 1) & 1), (uint8_t)(flags & 1), (uint8_t)(9 + (flags >> 3) % 7), 15};
  phase_inflate(&p, sh, body, len, max, seed);
  /* tx and rx share the parameters: rx may reset per message only when tx does. */
  if (p.client_no_context_takeover) p.server_no_context_takeover = 1;
  phase_roundtrip(&p, sh, body, len, seed);
  ws_deflate_shared_free(sh);
  return 0;
}
