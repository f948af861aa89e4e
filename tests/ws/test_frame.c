#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ws/frame.h"

/* Encodes a header, then checks that every proper prefix needs more and the whole parses back. */
static void roundtrip(int fin, int rsv1, int op, uint64_t len, const uint8_t *mask, size_t want_len) {
  uint8_t out[WS_FRAME_HEADER_MAX + 4];
  memset(out, 0xEE, sizeof out);
  size_t n = ws_frame_header_encode(out, fin, rsv1, op, len, mask);
  assert_int_equal(n, want_len);
  assert_int_equal(out[n], 0xEE); /* wrote nothing past the header */
  for (size_t cut = 0; cut < n; cut++) {
    ws_frame_header h;
    assert_int_equal(ws_frame_header_parse(out, cut, &h), WS_NEED_MORE);
  }
  ws_frame_header h;
  memset(&h, 0x55, sizeof h);
  /* Extra bytes after the header are not part of it. */
  assert_int_equal(ws_frame_header_parse(out, sizeof out, &h), (ssize_t)n);
  assert_int_equal(h.len, len);
  assert_int_equal(h.fin, fin ? 1 : 0);
  assert_int_equal(h.rsv, rsv1 ? 4 : 0);
  assert_int_equal(h.opcode, op);
  assert_int_equal(h.masked, mask ? 1 : 0);
  if (mask) assert_memory_equal(h.mask, mask, 4);
}

static void test_lengths(void **state) {
  (void)state;
  static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  static const struct { uint64_t len; size_t hlen; } cases[] = {
      {0, 2}, {1, 2}, {125, 2}, {126, 4}, {127, 4}, {65535, 4}, {65536, 10},
      {(UINT64_C(1) << 32) + 1, 10}, {UINT64_MAX >> 1, 10},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    roundtrip(1, 0, WS_OP_BINARY, cases[i].len, NULL, cases[i].hlen);
    roundtrip(0, 1, WS_OP_TEXT, cases[i].len, mask, cases[i].hlen + 4);
  }
}

static void test_encode_bytes(void **state) {
  (void)state;
  uint8_t out[WS_FRAME_HEADER_MAX];
  assert_int_equal(ws_frame_header_encode(out, 1, 0, WS_OP_TEXT, 5, NULL), 2);
  assert_int_equal(out[0], 0x81);
  assert_int_equal(out[1], 0x05);

  assert_int_equal(ws_frame_header_encode(out, 1, 1, WS_OP_BINARY, 256, NULL), 4);
  static const uint8_t b256[] = {0xC2, 0x7E, 0x01, 0x00};
  assert_memory_equal(out, b256, 4);

  assert_int_equal(ws_frame_header_encode(out, 0, 0, WS_OP_CONT, 65536, NULL), 10);
  static const uint8_t b64k[] = {0x00, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
  assert_memory_equal(out, b64k, 10);

  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  assert_int_equal(ws_frame_header_encode(out, 1, 0, WS_OP_PING, 5, mask), 6);
  static const uint8_t bping[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d};
  assert_memory_equal(out, bping, 6);
}

/* RFC 6455 5.7: a masked "Hello". */
static void test_rfc_example(void **state) {
  (void)state;
  uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  ws_frame_header h;
  assert_int_equal(ws_frame_header_parse(frame, sizeof frame, &h), 6);
  assert_int_equal(h.fin, 1);
  assert_int_equal(h.opcode, WS_OP_TEXT);
  assert_int_equal(h.masked, 1);
  assert_int_equal(h.len, 5);
  assert_int_equal(ws_mask(frame + 6, 5, h.mask, 0), 1);
  assert_memory_equal(frame + 6, "Hello", 5);
}

static void test_flags(void **state) {
  (void)state;
  for (unsigned b0 = 0; b0 < 256; b0++) {
    uint8_t f[2] = {(uint8_t)b0, 0};
    ws_frame_header h;
    assert_int_equal(ws_frame_header_parse(f, 2, &h), 2);
    assert_int_equal(h.fin, b0 >> 7);
    assert_int_equal(h.rsv, (b0 >> 4) & 7);
    assert_int_equal(h.opcode, b0 & 15);
    assert_int_equal(h.masked, 0);
    assert_int_equal(h.len, 0);
  }
}

static void test_len64_msb(void **state) {
  (void)state;
  uint8_t f[14] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
  ws_frame_header h;
  /* Rejected as soon as the offending byte is present, whatever follows. */
  for (size_t n = 3; n <= sizeof f; n++) assert_int_equal(ws_frame_header_parse(f, n, &h), WS_ERROR);
  assert_int_equal(ws_frame_header_parse(f, 2, &h), WS_NEED_MORE);
  f[2] = 0x7F;
  assert_int_equal(ws_frame_header_parse(f, sizeof f, &h), 14);
  assert_int_equal(h.len, (UINT64_C(0x7F) << 56) | 1);
}

static void ref_mask(uint8_t *d, size_t len, const uint8_t m[4], unsigned off) {
  for (size_t i = 0; i < len; i++) d[i] ^= m[(off + i) & 3];
}

static void test_mask_all_offsets(void **state) {
  (void)state;
  static const uint8_t m[4] = {0xA1, 0x5B, 0x3C, 0xD7};
  uint8_t storage[100 + 16 + 8];
  uint8_t want[100 + 16 + 8];
  for (unsigned align = 0; align < 8; align++) {
    for (size_t len = 0; len <= 100; len++) { /* every tail after the 32- and 8-byte steps */
      for (unsigned off = 0; off < 8; off++) { /* offsets >= 4 wrap */
        for (size_t i = 0; i < sizeof storage; i++) storage[i] = want[i] = (uint8_t)(i * 7 + len);
        ref_mask(want + align + 8, len, m, off & 3);
        unsigned next = ws_mask(storage + align + 8, len, m, off);
        assert_int_equal(next, (off + len) & 3);
        assert_memory_equal(storage, want, sizeof storage); /* also: guard bytes untouched */
      }
    }
  }
}

/* Masking in pieces with the returned offset equals masking at once. */
static void test_mask_chunked(void **state) {
  (void)state;
  static const uint8_t m[4] = {1, 2, 4, 8};
  uint8_t a[300], b[300];
  for (size_t i = 0; i < sizeof a; i++) a[i] = b[i] = (uint8_t)(i ^ 0x5A);
  ws_mask(a, sizeof a, m, 0);
  unsigned off = 0;
  size_t pos = 0, step = 1;
  while (pos < sizeof b) {
    size_t n = step < sizeof b - pos ? step : sizeof b - pos;
    off = ws_mask(b + pos, n, m, off);
    pos += n;
    step = step * 3 % 37 + 1;
  }
  assert_memory_equal(a, b, sizeof a);
}

static void test_close_codes(void **state) {
  (void)state;
  for (unsigned c = 0; c < 70000; c++) {
    int want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    assert_int_equal(ws_close_code_valid(c), want);
  }
  assert_false(ws_close_code_valid(1004));
  assert_false(ws_close_code_valid(1005));
  assert_false(ws_close_code_valid(1006));
  assert_false(ws_close_code_valid(1015));
  assert_false(ws_close_code_valid(1016));
  assert_false(ws_close_code_valid(2999));
  assert_false(ws_close_code_valid(5000));
  assert_true(ws_close_code_valid(1011));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lengths),        cmocka_unit_test(test_encode_bytes),
      cmocka_unit_test(test_rfc_example),    cmocka_unit_test(test_flags),
      cmocka_unit_test(test_len64_msb),      cmocka_unit_test(test_mask_all_offsets),
      cmocka_unit_test(test_mask_chunked),   cmocka_unit_test(test_close_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
