/* Tests for ws_deflate: negotiation, round trips in every model, interop with zlib, limits, memory. */
#define ZLIB_CONST
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "util/buf.h"
#include "ws/deflate.h"
#include "wsio.h"

/* ---- Helpers -------------------------------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static uint8_t *gen_random(size_t n, uint64_t seed) {
  uint8_t *p = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd(&seed);
  return p;
}

static uint8_t *gen_text(size_t n, uint64_t seed) {
  static const char *const words[] = {"{\"user\":", "\"message\"", "timestamp", " channel ", "price", ":12.5,",
                                      "update", "online", "\"id\":", "name", "value", "},"};
  uint8_t *p = malloc(n ? n : 1);
  size_t i = 0;
  while (i < n) {
    const char *w = words[rnd(&seed) % 12];
    for (; *w && i < n; w++) p[i++] = (uint8_t)*w;
  }
  return p;
}

enum { SPLIT_RANDOM, SPLIT_BYTES, SPLIT_WHOLE };

/* Inflates one message fed in pieces (empty pieces included). Returns the first error or 0. */
static int inflate_split(ws_deflate *d, const uint8_t *z, size_t n, buf *out, uint64_t max, uint64_t *rng,
                         int split) {
  int rc = ws_inflate_begin(d);
  if (rc) return rc;
  size_t off = 0;
  while (off < n) {
    size_t k = n - off;
    if (split == SPLIT_BYTES) k = 1;
    else if (split == SPLIT_RANDOM) k = (size_t)(rnd(rng) % (n / 4 + 3));
    if (k > n - off) k = n - off;
    rc = ws_inflate_chunk(d, z + off, k, out, max);
    if (rc) return rc;
    off += k;
  }
  return ws_inflate_end(d, out, max);
}

/* Compresses msg on tx, inflates it on rx, checks the result. Returns the compressed size. */
static size_t roundtrip(ws_deflate *tx, ws_deflate *rx, const uint8_t *msg, size_t len, uint64_t *rng,
                        int split) {
  const uint8_t *z;
  long n = ws_deflate_message(tx, msg, len, &z);
  assert_true(n > 0);
  uint8_t *copy = malloc((size_t)n);
  memcpy(copy, z, (size_t)n);
  buf out = {0};
  int rc = inflate_split(rx, copy, (size_t)n, &out, UINT64_MAX, rng, split);
  if (rc) fail_msg("len %zu split %d: rc %d", len, split, rc);
  assert_int_equal(out.len, len);
  if (len) assert_memory_equal(out.data, msg, len);
  buf_free(&out);
  free(copy);
  return (size_t)n;
}

/* Raw deflate with zlib directly, one message per call, tail stripped as RFC 7692 7.2.1 says. */
static size_t zlib_message(z_stream *z, const uint8_t *in, size_t len, uint8_t *out, size_t cap, int flush) {
  z->next_in = in;
  z->avail_in = (uInt)len;
  z->next_out = out;
  z->avail_out = (uInt)cap;
  int rc = deflate(z, flush);
  assert_true(rc == Z_OK || rc == Z_STREAM_END);
  assert_true(z->avail_out > 0);
  size_t n = cap - z->avail_out;
  if (flush == Z_SYNC_FLUSH || flush == Z_FULL_FLUSH) {
    assert_true(n >= 4);
    assert_memory_equal(out + n - 4, "\x00\x00\xff\xff", 4);
    n -= 4;
  }
  return n;
}

static const ws_pmd_params P_SHARED = {1, 1, 15, 15};
static const ws_pmd_params P_CONTEXT = {0, 0, 15, 15};

/* ---- Negotiation ---------------------------------------------------------------------------------- */

typedef struct neg_case {
  int mode;
  const char *in;
  int rc;
  const char *resp;
  ws_pmd_params p;
} neg_case;

#define SNCT "; server_no_context_takeover"
#define CNCT "; client_no_context_takeover"
#define PMD "permessage-deflate"

static const neg_case neg_cases[] = {
    /* SHARED: both no_context_takeover always answered. */
    {1, PMD, 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, "PerMessage-Deflate", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, PMD "; client_max_window_bits", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, PMD "; client_max_window_bits=10", 1, PMD SNCT CNCT "; client_max_window_bits=10", {1, 1, 15, 10}},
    {1, PMD "; server_max_window_bits=10", 1, PMD SNCT CNCT "; server_max_window_bits=10", {1, 1, 10, 15}},
    {1, PMD "; server_max_window_bits=\"12\"", 1, PMD SNCT CNCT "; server_max_window_bits=12", {1, 1, 12, 15}},
    {1, PMD "; server_max_window_bits=\"1\\2\"", 1, PMD SNCT CNCT "; server_max_window_bits=12", {1, 1, 12, 15}},
    {1, PMD "; server_max_window_bits=9", 1, PMD SNCT CNCT "; server_max_window_bits=9", {1, 1, 9, 15}},
    {1, PMD "; client_max_window_bits=8", 1, PMD SNCT CNCT "; client_max_window_bits=8", {1, 1, 15, 8}},
    {1, "  permessage-deflate ;  client_max_window_bits = 9 ,  ", 1, PMD SNCT CNCT "; client_max_window_bits=9",
     {1, 1, 15, 9}},
    {1, "\tpermessage-deflate\t;\tserver_no_context_takeover\t", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, PMD "; Server_No_Context_Takeover", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, "x-webkit-deflate-frame, permessage-deflate", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, "foo; bar=\"baz\"; qux, " PMD "; client_max_window_bits", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, ", ," PMD ",,", 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    /* Invalid offers are skipped; the first valid one wins. */
    {1, PMD "; server_max_window_bits=8", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits=8, " PMD, 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {1, PMD "; foo, " PMD "; server_max_window_bits=11", 1, PMD SNCT CNCT "; server_max_window_bits=11",
     {1, 1, 11, 15}},
    {1, PMD "; server_max_window_bits=10, " PMD, 1, PMD SNCT CNCT "; server_max_window_bits=10", {1, 1, 10, 15}},
    {1, PMD "; foo", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; foo=1", 0, NULL, {0, 0, 0, 0}},
    {1, PMD CNCT CNCT, 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; client_max_window_bits; client_max_window_bits=9", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_no_context_takeover=1", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; client_no_context_takeover=\"x\"", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits=16", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits=7", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits=08", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits=0x9", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; server_max_window_bits=150", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; client_max_window_bits=7", 0, NULL, {0, 0, 0, 0}},
    {1, PMD "; client_max_window_bits=16", 0, NULL, {0, 0, 0, 0}},
    {1, "", 0, NULL, {0, 0, 0, 0}},
    {1, " , ", 0, NULL, {0, 0, 0, 0}},
    {1, "foo, bar; baz=1", 0, NULL, {0, 0, 0, 0}},
    {1, "permessage-deflatex", 0, NULL, {0, 0, 0, 0}},
    {0, PMD, 0, NULL, {0, 0, 0, 0}},
    /* CONTEXT: answer only what was asked for. */
    {2, PMD, 1, PMD, {0, 0, 15, 15}},
    {2, PMD SNCT, 1, PMD SNCT, {1, 0, 15, 15}},
    {2, PMD CNCT, 1, PMD CNCT, {0, 1, 15, 15}},
    {2, PMD CNCT SNCT, 1, PMD SNCT CNCT, {1, 1, 15, 15}},
    {2, PMD "; client_max_window_bits; server_max_window_bits=10", 1, PMD "; server_max_window_bits=10",
     {0, 0, 10, 15}},
    {2, PMD "; client_max_window_bits=12", 1, PMD "; client_max_window_bits=12", {0, 0, 15, 12}},
    {2, PMD SNCT CNCT "; server_max_window_bits=15; client_max_window_bits=15", 1,
     PMD SNCT CNCT "; server_max_window_bits=15; client_max_window_bits=15", {1, 1, 15, 15}},
    {2, PMD "; server_max_window_bits=8, " PMD SNCT, 1, PMD SNCT, {1, 0, 15, 15}},
    /* Malformed syntax: 400. */
    {1, PMD "; server_max_window_bits=\"10", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a=\"b\\", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a=\"\"", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a=\"b c\"", -1, NULL, {0, 0, 0, 0}},
    {1, "; foo", -1, NULL, {0, 0, 0, 0}},
    {1, PMD ";", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; =1", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a=", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a=b=c", -1, NULL, {0, 0, 0, 0}},
    {1, "permessage deflate", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a b", -1, NULL, {0, 0, 0, 0}},
    {1, "\"permessage-deflate\"", -1, NULL, {0, 0, 0, 0}},
    {1, "a, ;b", -1, NULL, {0, 0, 0, 0}},
    {1, PMD "; a=\xff", -1, NULL, {0, 0, 0, 0}},
    {1, "perm\x01", -1, NULL, {0, 0, 0, 0}},
    {1, PMD ", foo;", -1, NULL, {0, 0, 0, 0}}, /* malformed after an acceptable offer */
    {2, PMD "/x", -1, NULL, {0, 0, 0, 0}},
};

static void test_negotiate_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof neg_cases / sizeof neg_cases[0]; i++) {
    const neg_case *c = &neg_cases[i];
    size_t len = strlen(c->in);
    /* Exactly len bytes, no NUL: an over-read shows under ASan. */
    char *in = malloc(len ? len : 1);
    memcpy(in, c->in, len);
    ws_pmd_params p = {0, 0, 0, 0};
    char resp[WS_PMD_RESP_MAX] = "";
    int rc = ws_pmd_negotiate(in, len, c->mode, &p, resp, sizeof resp);
    if (c->rc < 0 ? rc >= 0 : rc != c->rc) fail_msg("case %zu \"%s\": rc %d, want %d", i, c->in, rc, c->rc);
    if (c->rc == 1) {
      if (strcmp(resp, c->resp) != 0) fail_msg("case %zu \"%s\": resp \"%s\"", i, c->in, resp);
      assert_memory_equal(&p, &c->p, sizeof p);
      assert_true(strlen(resp) < WS_PMD_RESP_MAX);
    }
    free(in);
  }
}

static void test_negotiate_small_resp(void **state) {
  (void)state;
  ws_pmd_params p;
  char resp[20];
  assert_int_equal(ws_pmd_negotiate(PMD, strlen(PMD), 1, &p, resp, sizeof resp), 0);
  char big[WS_PMD_RESP_MAX];
  const char *all = PMD SNCT CNCT "; server_max_window_bits=15; client_max_window_bits=15";
  assert_int_equal(ws_pmd_negotiate(all, strlen(all), 2, &p, big, sizeof big), 1);
  assert_int_equal(ws_pmd_negotiate(all, strlen(all), 2, &p, big, strlen(all)), 0);
  assert_int_equal(ws_pmd_negotiate(all, strlen(all), 2, &p, big, strlen(all) + 1), 1);
}

/* ---- Round trips ---------------------------------------------------------------------------------- */

static const size_t sizes[] = {0, 1, 2, 3, 10, 100, 1000, 4095, 4096, 4097, 65535, 65536, 65537, 300000, 1u << 20};

static void roundtrip_all(const ws_pmd_params *p, ws_deflate_shared *sh) {
  ws_deflate *tx = ws_deflate_new(p, sh);
  ws_deflate *rx = ws_deflate_new(p, sh);
  assert_non_null(tx);
  assert_non_null(rx);
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int kind = 0; kind < 2; kind++) {
      uint8_t *m = kind ? gen_text(sizes[i], i + 1) : gen_random(sizes[i], i + 1);
      roundtrip(tx, rx, m, sizes[i], &rng, SPLIT_RANDOM);
      if (sizes[i] <= 4097) roundtrip(tx, rx, m, sizes[i], &rng, SPLIT_BYTES);
      roundtrip(tx, rx, m, sizes[i], &rng, SPLIT_WHOLE);
      free(m);
    }
  }
  ws_deflate_free(tx);
  ws_deflate_free(rx);
}

static void test_roundtrip_shared(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  roundtrip_all(&P_SHARED, sh);
  ws_pmd_params small = {1, 1, 10, 15};
  roundtrip_all(&small, sh);
  ws_deflate_shared_free(sh);
}

static void test_roundtrip_context(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  roundtrip_all(&P_CONTEXT, sh);
  roundtrip_all(&P_CONTEXT, NULL);
  /* tx deflates under server_*, rx inflates under client_*: a reset-per-message rx needs a tx without
   * context takeover. */
  ws_pmd_params p = {1, 0, 9, 15}, q = {1, 1, 12, 15}, r = {0, 0, 11, 15};
  roundtrip_all(&p, sh);
  roundtrip_all(&q, NULL);
  roundtrip_all(&r, sh);
  ws_deflate_shared_free(sh);
}

static void test_shared_message(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  ws_deflate *rx = ws_deflate_new(&P_SHARED, sh);
  uint8_t *m = gen_text(5000, 3);
  uint64_t rng = 5;
  for (int i = 0; i < 3; i++) {
    const uint8_t *z;
    long n = ws_deflate_shared_message(sh, m, 5000, &z);
    assert_true(n > 0 && n < 2500);
    buf out = {0};
    assert_int_equal(inflate_split(rx, z, (size_t)n, &out, 5000, &rng, SPLIT_RANDOM), 0);
    assert_int_equal(out.len, 5000);
    assert_memory_equal(out.data, m, 5000);
    buf_free(&out);
  }
  free(m);
  ws_deflate_free(rx);
  ws_deflate_shared_free(sh);
}

static void test_empty_message(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  ws_deflate *tx = ws_deflate_new(&P_CONTEXT, sh), *rx = ws_deflate_new(&P_CONTEXT, sh);
  const uint8_t *z;
  assert_int_equal(ws_deflate_message(tx, (const uint8_t *)"", 0, &z), 1);
  assert_int_equal(z[0], 0);
  uint64_t rng = 1;
  uint8_t *m = gen_text(3000, 9);
  /* Empty messages between context-sharing ones keep both ends in step. */
  roundtrip(tx, rx, m, 3000, &rng, SPLIT_RANDOM);
  roundtrip(tx, rx, m, 0, &rng, SPLIT_WHOLE);
  size_t second = roundtrip(tx, rx, m, 3000, &rng, SPLIT_RANDOM);
  assert_true(second < 100);
  roundtrip(tx, rx, m, 0, &rng, SPLIT_WHOLE);
  /* And zlib agrees an empty message is the single byte 00. */
  z_stream zs = {0};
  assert_int_equal(inflateInit2(&zs, -15), Z_OK);
  uint8_t in[5] = {0x00, 0x00, 0x00, 0xff, 0xff}, out[4];
  zs.next_in = in;
  zs.avail_in = 5;
  zs.next_out = out;
  zs.avail_out = sizeof out;
  assert_int_equal(inflate(&zs, Z_SYNC_FLUSH), Z_OK);
  assert_int_equal(zs.avail_in, 0);
  assert_int_equal(zs.avail_out, sizeof out);
  inflateEnd(&zs);
  free(m);
  ws_deflate_free(tx);
  ws_deflate_free(rx);
  ws_deflate_shared_free(sh);
}

/* ---- Context takeover ----------------------------------------------------------------------------- */

static void test_context_takeover_smaller(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  uint8_t *m = gen_text(2000, 42), *r = gen_random(2000, 42);
  uint64_t rng = 7;
  ws_deflate *tx = ws_deflate_new(&P_CONTEXT, sh), *rx = ws_deflate_new(&P_CONTEXT, sh);
  size_t first = roundtrip(tx, rx, m, 2000, &rng, SPLIT_RANDOM);
  size_t second = roundtrip(tx, rx, m, 2000, &rng, SPLIT_RANDOM);
  assert_true(second * 4 < first);
  first = roundtrip(tx, rx, r, 2000, &rng, SPLIT_RANDOM);
  second = roundtrip(tx, rx, r, 2000, &rng, SPLIT_RANDOM);
  assert_true(first > 2000 && second < 50);
  ws_deflate_free(tx);
  ws_deflate_free(rx);
  free(r);
  tx = ws_deflate_new(&P_SHARED, sh);
  rx = ws_deflate_new(&P_SHARED, sh);
  first = roundtrip(tx, rx, m, 2000, &rng, SPLIT_RANDOM);
  second = roundtrip(tx, rx, m, 2000, &rng, SPLIT_RANDOM);
  assert_int_equal(first, second);
  ws_deflate_free(tx);
  ws_deflate_free(rx);
  free(m);
  ws_deflate_shared_free(sh);
}

/* Every message from a no-context deflater inflates alone on a fresh zlib stream. */
static void test_no_context_takeover_independent(void **state) {
  (void)state;
  ws_pmd_params cases[] = {{1, 0, 15, 15}, {1, 1, 15, 15}, {1, 0, 11, 15}};
  uint8_t *m = gen_text(4000, 11);
  for (int sh_on = 0; sh_on < 2; sh_on++) {
    for (size_t c = 0; c < 3; c++) {
      ws_deflate_shared *sh = sh_on ? ws_deflate_shared_new() : NULL;
      ws_deflate *tx = ws_deflate_new(&cases[c], sh);
      size_t first = 0;
      for (int i = 0; i < 3; i++) {
        const uint8_t *z;
        long n = ws_deflate_message(tx, m, 4000, &z);
        assert_true(n > 0);
        if (i == 0) first = (size_t)n;
        assert_int_equal((size_t)n, first);
        z_stream zs = {0};
        assert_int_equal(inflateInit2(&zs, -cases[c].server_max_window_bits), Z_OK);
        uint8_t *in = malloc((size_t)n + 4), out[4001];
        memcpy(in, z, (size_t)n);
        memcpy(in + n, "\x00\x00\xff\xff", 4);
        zs.next_in = in;
        zs.avail_in = (uInt)n + 4;
        zs.next_out = out;
        zs.avail_out = sizeof out;
        assert_int_equal(inflate(&zs, Z_SYNC_FLUSH), Z_OK);
        assert_int_equal(sizeof out - zs.avail_out, 4000);
        assert_memory_equal(out, m, 4000);
        inflateEnd(&zs);
        free(in);
      }
      ws_deflate_free(tx);
      ws_deflate_shared_free(sh);
    }
  }
  free(m);
}

/* A peer deflater with context takeover across messages: our inflater must keep its window, and a
 * client_no_context_takeover inflater given independent messages must not need one. */
static void test_inflate_context_window(void **state) {
  (void)state;
  uint8_t *m = gen_text(6000, 5);
  uint8_t zb[3][8000];
  size_t zn[3];
  z_stream zs = {0};
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  for (int i = 0; i < 3; i++) zn[i] = zlib_message(&zs, m, 6000, zb[i], sizeof zb[i], Z_SYNC_FLUSH);
  deflateEnd(&zs);
  assert_true(zn[1] < 100 && zn[2] < 100);
  uint64_t rng = 3;
  ws_deflate *rx = ws_deflate_new(&P_CONTEXT, NULL);
  for (int i = 0; i < 3; i++) {
    buf out = {0};
    assert_int_equal(inflate_split(rx, zb[i], zn[i], &out, 1u << 20, &rng, SPLIT_RANDOM), 0);
    assert_int_equal(out.len, 6000);
    assert_memory_equal(out.data, m, 6000);
    buf_free(&out);
  }
  ws_deflate_free(rx);
  /* Without the window the second message refers to bytes that do not exist. */
  ws_deflate_shared *sh = ws_deflate_shared_new();
  rx = ws_deflate_new(&P_SHARED, sh);
  buf out = {0};
  assert_int_equal(inflate_split(rx, zb[0], zn[0], &out, 1u << 20, &rng, SPLIT_WHOLE), 0);
  out.len = 0;
  assert_int_equal(inflate_split(rx, zb[1], zn[1], &out, 1u << 20, &rng, SPLIT_WHOLE), WSIO_EPROTO);
  /* Independent messages (full flush + reset) all inflate on the reset-per-message inflater. */
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  for (int i = 0; i < 3; i++) {
    deflateReset(&zs);
    zn[i] = zlib_message(&zs, m, 6000, zb[i], sizeof zb[i], Z_SYNC_FLUSH);
    out.len = 0;
    assert_int_equal(inflate_split(rx, zb[i], zn[i], &out, 1u << 20, &rng, SPLIT_RANDOM), 0);
    assert_int_equal(out.len, 6000);
    assert_memory_equal(out.data, m, 6000);
  }
  deflateEnd(&zs);
  buf_free(&out);
  ws_deflate_free(rx);
  ws_deflate_shared_free(sh);
  free(m);
}

/* ---- Interop with zlib ---------------------------------------------------------------------------- */

static void test_inflate_zlib_variants(void **state) {
  (void)state;
  static const int levels[] = {0, 1, 6, 9};
  static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  size_t n = 70000;
  uint8_t *m = gen_text(n, 77);
  uint8_t *zb = malloc(2 * n + 1000);
  ws_deflate_shared *sh = ws_deflate_shared_new();
  ws_deflate *rx = ws_deflate_new(&P_CONTEXT, sh);
  ws_deflate *rx2 = ws_deflate_new(&P_SHARED, sh);
  uint64_t rng = 99;
  for (int w = 9; w <= 15; w++) {
    for (size_t l = 0; l < 4; l++) {
      for (size_t s = 0; s < 5; s++) {
        for (int flush = 0; flush < 2; flush++) {
          z_stream zs = {0};
          assert_int_equal(deflateInit2(&zs, levels[l], Z_DEFLATED, -w, 1 + (w + (int)s) % 9, strategies[s]),
                           Z_OK);
          /* Several flushes inside one message are legal: the payload is one deflate stream. */
          size_t zn = zlib_message(&zs, m, n / 3, zb, 2 * n + 1000, flush ? Z_FULL_FLUSH : Z_SYNC_FLUSH) + 4;
          zn += zlib_message(&zs, m + n / 3, n - n / 3, zb + zn, 2 * n + 1000 - zn, Z_SYNC_FLUSH);
          deflateEnd(&zs);
          ws_deflate *r = flush ? rx2 : rx;
          buf out = {0};
          assert_int_equal(inflate_split(r, zb, zn, &out, n, &rng, SPLIT_RANDOM), 0);
          assert_int_equal(out.len, n);
          assert_memory_equal(out.data, m, n);
          buf_free(&out);
          /* The context inflater keeps its window: give it a fresh one for the next independent stream. */
          ws_deflate_free(rx);
          rx = ws_deflate_new(&P_CONTEXT, sh);
        }
      }
    }
  }
  ws_deflate_free(rx);
  ws_deflate_free(rx2);
  ws_deflate_shared_free(sh);
  free(zb);
  free(m);
}

/* Our deflater honours a small window: zlib inflates its output with exactly that window, across
 * messages with context takeover. */
static void test_deflate_window_limit(void **state) {
  (void)state;
  size_t n = 200000;
  uint8_t *m = gen_text(n, 8);
  for (int w = 9; w <= 15; w++) {
    ws_pmd_params p = {0, 0, (uint8_t)w, 15};
    ws_deflate *tx = ws_deflate_new(&p, NULL);
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, -w), Z_OK);
    uint8_t *out = malloc(n + 1);
    for (int i = 0; i < 2; i++) {
      const uint8_t *z;
      long zn = ws_deflate_message(tx, m, n, &z);
      assert_true(zn > 0);
      uint8_t *in = malloc((size_t)zn + 4);
      memcpy(in, z, (size_t)zn);
      memcpy(in + zn, "\x00\x00\xff\xff", 4);
      zs.next_in = in;
      zs.avail_in = (uInt)zn + 4;
      zs.next_out = out;
      zs.avail_out = (uInt)n + 1;
      assert_int_equal(inflate(&zs, Z_SYNC_FLUSH), Z_OK);
      assert_int_equal(zs.avail_out, 1);
      assert_int_equal(zs.avail_in, 0);
      assert_memory_equal(out, m, n);
      free(in);
    }
    free(out);
    inflateEnd(&zs);
    ws_deflate_free(tx);
  }
  ws_pmd_params bad = {0, 0, 8, 15};
  assert_null(ws_deflate_new(&bad, NULL));
  free(m);
}

/* RFC 7692 7.2.3 examples. */
static void test_rfc_examples(void **state) {
  (void)state;
  static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  static const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
  static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00};
  static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
  static const uint8_t bfinal_bare[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  uint64_t rng = 1;
  ws_deflate *rx = ws_deflate_new(&P_CONTEXT, NULL);
  const struct {
    const uint8_t *z;
    size_t n;
  } seq[] = {{hello, sizeof hello}, {again, sizeof again}, {stored, sizeof stored}, {again, sizeof again},
             {bfinal, sizeof bfinal}, {again, sizeof again}, {bfinal_bare, sizeof bfinal_bare},
             {again, sizeof again}};
  for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
    for (int split = 0; split < 3; split++) {
      /* Each split gets its own receiver state: replay the sequence up to i on a fresh handle. */
      ws_deflate_free(rx);
      rx = ws_deflate_new(&P_CONTEXT, NULL);
      for (size_t j = 0; j <= i; j++) {
        buf out = {0};
        assert_int_equal(inflate_split(rx, seq[j].z, seq[j].n, &out, 100, &rng, j == i ? split : SPLIT_WHOLE), 0);
        assert_int_equal(out.len, 5);
        assert_memory_equal(out.data, "Hello", 5);
        buf_free(&out);
      }
    }
  }
  ws_deflate_free(rx);
}

/* ---- Limits and errors ---------------------------------------------------------------------------- */

/* 1 GiB of zeros in about 1 MiB: a prefix, then one self-contained block run repeated (each run ends
 * byte-aligned with a sync flush and refers only to zeros). */
static uint8_t *make_bomb(size_t *len) {
  static uint8_t zeros[1 << 20];
  z_stream zs = {0};
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
  uint8_t *pre = malloc(4096), *run = malloc(4096);
  size_t pn = zlib_message(&zs, zeros, 65536, pre, 4096, Z_SYNC_FLUSH) + 4;
  size_t rn = zlib_message(&zs, zeros, sizeof zeros, run, 4096, Z_SYNC_FLUSH) + 4;
  deflateEnd(&zs);
  uint8_t *b = malloc(pn + 1024 * rn);
  memcpy(b, pre, pn);
  for (size_t i = 0; i < 1024; i++) memcpy(b + pn + i * rn, run, rn);
  *len = pn + 1024 * rn - 4;
  free(pre);
  free(run);
  return b;
}

static void test_bomb(void **state) {
  (void)state;
  size_t bn;
  uint8_t *bomb = make_bomb(&bn);
  assert_true(bn < 2u << 20);
  const uint64_t max = 1000000; /* not a power of two: the doubling must stop at max itself */
  for (int model = 0; model < 2; model++) {
    ws_deflate_shared *sh = ws_deflate_shared_new();
    ws_deflate *rx = ws_deflate_new(model ? &P_CONTEXT : &P_SHARED, sh);
    buf out = {0};
    size_t zmem = ws_deflate_memory(rx) + ws_deflate_shared_memory(sh);
    assert_int_equal(ws_inflate_begin(rx), 0);
    size_t off = 0;
    int rc = 0;
    while (off < bn && rc == 0) {
      size_t k = bn - off < 4096 ? bn - off : 4096;
      rc = ws_inflate_chunk(rx, bomb + off, k, &out, max);
      off += k;
    }
    assert_int_equal(rc, WSIO_ETOOBIG);
    /* Stopped within the chunk that passed max, not after inflating the rest. */
    assert_true(off <= 8192);
    assert_true(out.len <= max);
    assert_true(out.cap <= max);
    assert_true(ws_deflate_memory(rx) + ws_deflate_shared_memory(sh) <= zmem + 64 * 1024);
    assert_int_equal(ws_inflate_chunk(rx, bomb, 10, &out, max), WSIO_EINVAL);
    assert_int_equal(ws_inflate_end(rx, &out, max), WSIO_EINVAL);
    buf_free(&out);
    ws_deflate_free(rx);
    ws_deflate_shared_free(sh);
  }
  free(bomb);
}

static void test_exact_max(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  ws_deflate *tx = ws_deflate_new(&P_SHARED, sh), *rx = ws_deflate_new(&P_SHARED, sh);
  uint64_t rng = 4;
  size_t sz[] = {1, 100, 4096, 4097, 100000};
  for (size_t i = 0; i < 5; i++) {
    uint8_t *m = gen_text(sz[i], i);
    const uint8_t *z;
    long n = ws_deflate_message(tx, m, sz[i], &z);
    uint8_t *copy = malloc((size_t)n);
    memcpy(copy, z, (size_t)n);
    for (int split = 0; split < 3; split++) {
      buf out = {0};
      assert_int_equal(inflate_split(rx, copy, (size_t)n, &out, sz[i], &rng, split), 0);
      assert_int_equal(out.len, sz[i]);
      assert_true(out.cap <= sz[i]);
      out.len = 0;
      assert_int_equal(inflate_split(rx, copy, (size_t)n, &out, sz[i] - 1, &rng, split), WSIO_ETOOBIG);
      assert_true(out.len <= sz[i] - 1);
      /* Bytes already in dst count against max. */
      out.len = 0;
      assert_int_equal(buf_append(&out, "abc", 3), 0);
      assert_int_equal(inflate_split(rx, copy, (size_t)n, &out, sz[i] + 2, &rng, split), WSIO_ETOOBIG);
      out.len = 3;
      assert_int_equal(inflate_split(rx, copy, (size_t)n, &out, sz[i] + 3, &rng, split), 0);
      assert_int_equal(out.len, sz[i] + 3);
      assert_memory_equal(out.data + 3, m, sz[i]);
      buf_free(&out);
    }
    free(copy);
    free(m);
  }
  /* max 0 admits the empty message only. */
  buf out = {0};
  const uint8_t empty = 0;
  assert_int_equal(inflate_split(rx, &empty, 1, &out, 0, &rng, SPLIT_WHOLE), 0);
  assert_int_equal(out.len, 0);
  ws_deflate_free(tx);
  ws_deflate_free(rx);
  ws_deflate_shared_free(sh);
}

static void test_corrupt(void **state) {
  (void)state;
  static const struct {
    const char *z;
    size_t n;
  } bad[] = {
      {"\x06", 1},                  /* BTYPE 11: reserved */
      {"\x07\x00", 2},              /* BFINAL + reserved */
      {"\x00\x05\x00\x00\x00", 5},  /* stored block: NLEN does not complement LEN */
      {"\xff\xff\xff\xff", 4},      /* BFINAL with the reserved type */
      {"\x04\xff\xff\xff\xff", 5},  /* dynamic block with impossible code counts */
      {"\xf2\x48\xcd\xc9\xc9", 5},  /* truncated inside a block: caught at end */
      {"\xf2\x00\x11\x00\x00", 5},  /* refers to 5 bytes back with an empty window */
  };
  ws_deflate_shared *sh = ws_deflate_shared_new();
  uint64_t rng = 6;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int r = 0; r < 2; r++) {
      for (int split = 0; split < 3; split++) {
        ws_deflate *rx[2] = {ws_deflate_new(&P_SHARED, sh), ws_deflate_new(&P_CONTEXT, sh)};
        buf out = {0};
        int rc = inflate_split(rx[r], (const uint8_t *)bad[i].z, bad[i].n, &out, 1000, &rng, split);
        if (rc != WSIO_EPROTO) fail_msg("case %zu receiver %d split %d: rc %d", i, r, split, rc);
        assert_int_equal(ws_inflate_chunk(rx[r], (const uint8_t *)"\x00", 1, &out, 1000), WSIO_EINVAL);
        /* The next message starts clean. */
        out.len = 0;
        static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
        assert_int_equal(inflate_split(rx[r], hello, sizeof hello, &out, 1000, &rng, split), 0);
        assert_int_equal(out.len, 5);
        buf_free(&out);
        ws_deflate_free(rx[0]);
        ws_deflate_free(rx[1]);
      }
    }
  }
  ws_deflate_shared_free(sh);
}

static void test_misuse(void **state) {
  (void)state;
  ws_deflate *d = ws_deflate_new(&P_CONTEXT, NULL);
  buf out = {0};
  assert_int_equal(ws_inflate_chunk(d, (const uint8_t *)"\x00", 1, &out, 10), WSIO_EINVAL);
  assert_int_equal(ws_inflate_end(d, &out, 10), WSIO_EINVAL);
  /* A message abandoned without end: the next begin starts over. */
  assert_int_equal(ws_inflate_begin(d), 0);
  assert_int_equal(ws_inflate_chunk(d, (const uint8_t *)"\xf2\x48", 2, &out, 10), 0);
  out.len = 0;
  static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  uint64_t rng = 1;
  assert_int_equal(inflate_split(d, hello, sizeof hello, &out, 10, &rng, SPLIT_WHOLE), 0);
  assert_int_equal(out.len, 5);
  buf_free(&out);
  ws_deflate_free(d);
  ws_deflate_free(NULL);
  ws_deflate_shared_free(NULL);
}

/* ---- The shared inflater under interleaving ------------------------------------------------------- */

static void test_shared_interleave(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  ws_deflate *a = ws_deflate_new(&P_SHARED, sh), *b = ws_deflate_new(&P_SHARED, sh);
  ws_deflate *c = ws_deflate_new(&P_SHARED, sh);
  size_t n = 100000;
  uint8_t *ma = gen_text(n, 1), *mb = gen_random(n, 2);
  uint8_t *za = malloc(2 * n), *zb = malloc(2 * n);
  const uint8_t *z;
  size_t na = (size_t)ws_deflate_message(c, ma, n, &z);
  memcpy(za, z, na);
  size_t nb = (size_t)ws_deflate_message(c, mb, n, &z);
  memcpy(zb, z, nb);
  buf oa = {0}, ob = {0};
  for (int round = 0; round < 3; round++) {
    oa.len = ob.len = 0;
    assert_int_equal(ws_inflate_begin(a), 0);
    assert_int_equal(ws_inflate_chunk(a, za, na / 2, &oa, n), 0);
    assert_int_equal(ws_deflate_memory(a), 0);
    /* b needs the shared inflater while a is mid-message: a's state moves to a private copy. */
    assert_int_equal(ws_inflate_begin(b), 0);
    assert_true(ws_deflate_memory(a) > 0);
    assert_int_equal(ws_inflate_chunk(b, zb, nb / 3, &ob, n), 0);
    assert_int_equal(ws_inflate_chunk(a, za + na / 2, na - na / 2, &oa, n), 0);
    if (round == 1) {
      /* b is evicted in turn by a third connection, which then finishes first. */
      buf oc = {0};
      uint64_t rng = 3;
      assert_int_equal(inflate_split(c, za, na, &oc, n, &rng, SPLIT_RANDOM), 0);
      assert_int_equal(oc.len, n);
      buf_free(&oc);
      assert_true(ws_deflate_memory(b) > 0);
    }
    assert_int_equal(ws_inflate_chunk(b, zb + nb / 3, nb - nb / 3, &ob, n), 0);
    assert_int_equal(ws_inflate_end(a, &oa, n), 0);
    assert_int_equal(ws_deflate_memory(a), 0);
    assert_int_equal(ws_inflate_end(b, &ob, n), 0);
    assert_int_equal(ws_deflate_memory(b), 0);
    assert_int_equal(oa.len, n);
    assert_memory_equal(oa.data, ma, n);
    assert_int_equal(ob.len, n);
    assert_memory_equal(ob.data, mb, n);
  }
  /* A holder freed mid-message releases the shared inflater. */
  assert_int_equal(ws_inflate_begin(a), 0);
  ws_deflate_free(a);
  uint64_t rng = 8;
  ob.len = 0;
  assert_int_equal(inflate_split(b, zb, nb, &ob, n, &rng, SPLIT_RANDOM), 0);
  assert_int_equal(ob.len, n);
  buf_free(&oa);
  buf_free(&ob);
  free(ma);
  free(mb);
  free(za);
  free(zb);
  ws_deflate_free(b);
  ws_deflate_free(c);
  ws_deflate_shared_free(sh);
}

/* ---- Memory --------------------------------------------------------------------------------------- */

static voidpf count_alloc(voidpf opaque, uInt items, uInt size) {
  size_t n = (size_t)items * size;
  size_t *p = malloc(n + 16);
  *p = n;
  *(size_t *)opaque += n;
  return (char *)p + 16;
}

static void count_free(voidpf opaque, voidpf ptr) {
  size_t *p = (size_t *)((char *)ptr - 16);
  *(size_t *)opaque -= *p;
  free(p);
}

/* zlib state of a deflater and of an inflater that has produced output, measured independently. */
static size_t zlib_bytes(int deflater, int wbits, int memlevel) {
  size_t count = 0;
  z_stream zs = {0};
  zs.zalloc = count_alloc;
  zs.zfree = count_free;
  zs.opaque = &count;
  uint8_t buf1[64];
  if (deflater) {
    assert_int_equal(deflateInit2(&zs, 1, Z_DEFLATED, -wbits, memlevel, Z_DEFAULT_STRATEGY), Z_OK);
  } else {
    assert_int_equal(inflateInit2(&zs, -wbits), Z_OK);
    zs.next_in = (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00\x00\x00\xff\xff";
    zs.avail_in = 11;
    zs.next_out = buf1;
    zs.avail_out = sizeof buf1;
    assert_int_equal(inflate(&zs, Z_SYNC_FLUSH), Z_OK);
  }
  size_t n = count;
  if (deflater) deflateEnd(&zs);
  else inflateEnd(&zs);
  assert_int_equal(count, 0);
  return n;
}

static size_t conn_bytes(const ws_pmd_params *p, ws_deflate_shared *sh, int send, int recv) {
  ws_deflate *d = ws_deflate_new(p, sh);
  uint8_t *m = gen_text(50000, 1);
  if (send) {
    const uint8_t *z;
    assert_true(ws_deflate_message(d, m, 50000, &z) > 0);
  }
  if (recv) {
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    buf out = {0};
    uint64_t rng = 1;
    assert_int_equal(inflate_split(d, hello, sizeof hello, &out, 100, &rng, SPLIT_WHOLE), 0);
    buf_free(&out);
  }
  size_t n = ws_deflate_memory(d);
  ws_deflate_free(d);
  free(m);
  return n;
}

static void test_memory(void **state) {
  (void)state;
  ws_deflate_shared *sh = ws_deflate_shared_new();
  size_t zs = sizeof(z_stream);
  size_t def15 = zlib_bytes(1, 15, 8), inf15 = zlib_bytes(0, 15, 0);
  assert_int_equal(conn_bytes(&P_CONTEXT, sh, 0, 0), 0);
  assert_int_equal(conn_bytes(&P_CONTEXT, sh, 1, 0), def15 + zs);
  assert_int_equal(conn_bytes(&P_CONTEXT, sh, 0, 1), inf15 + zs);
  size_t ctx15 = conn_bytes(&P_CONTEXT, sh, 1, 1);
  assert_int_equal(ctx15, def15 + inf15 + 2 * zs);
  ws_pmd_params w10 = {0, 0, 10, 15};
  size_t ctx10_def = conn_bytes(&w10, sh, 1, 0);
  assert_int_equal(ctx10_def, zlib_bytes(1, 10, 4) + zs);
  assert_true(ctx10_def < def15 / 4);
  size_t ctx10_m8 = zlib_bytes(1, 10, 8) + zs;
  ws_pmd_params nct = {1, 1, 15, 15};
  assert_int_equal(conn_bytes(&nct, sh, 1, 1), 0); /* CONTEXT without takeover uses the shared streams */
  assert_int_equal(conn_bytes(&P_SHARED, sh, 1, 1), 0);
  size_t loop = ws_deflate_shared_memory(sh);
  assert_int_equal(loop, def15 + inf15 + 2 * zs);
  ws_pmd_params cnct = {0, 1, 15, 15};
  assert_int_equal(conn_bytes(&cnct, sh, 1, 1), def15 + zs);
  print_message("zlib bytes per connection (64-bit, zlib %s):\n"
                "  CONTEXT w15 memLevel 8: deflate %zu, inflate %zu, both %zu\n"
                "  CONTEXT server_max_window_bits=10 (memLevel 4): deflate %zu (memLevel 8 would be %zu)\n"
                "  CONTEXT both no_context_takeover, or SHARED: 0; the loop's shared streams: %zu\n",
                zlibVersion(), def15 + zs, inf15 + zs, ctx15, ctx10_def, ctx10_m8, loop);
  ws_deflate_shared_free(sh);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_negotiate_table),
      cmocka_unit_test(test_negotiate_small_resp),
      cmocka_unit_test(test_roundtrip_shared),
      cmocka_unit_test(test_roundtrip_context),
      cmocka_unit_test(test_shared_message),
      cmocka_unit_test(test_empty_message),
      cmocka_unit_test(test_context_takeover_smaller),
      cmocka_unit_test(test_no_context_takeover_independent),
      cmocka_unit_test(test_inflate_context_window),
      cmocka_unit_test(test_inflate_zlib_variants),
      cmocka_unit_test(test_deflate_window_limit),
      cmocka_unit_test(test_rfc_examples),
      cmocka_unit_test(test_bomb),
      cmocka_unit_test(test_exact_max),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_misuse),
      cmocka_unit_test(test_shared_interleave),
      cmocka_unit_test(test_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
