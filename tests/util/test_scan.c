#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/scan.h"

/* The byte-by-byte definitions the word and vector paths must agree with. */
static size_t ref_ascii(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && p[i] < 0x80) i++;
  return i;
}

static size_t ref_plain(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') i++;
  return i;
}

/* Every length up to 80 (each step size and tail shape), every position of one odd byte, at every alignment
 * of the buffer; the bytes around the slice are odd ones too, so reading outside it would show. */
static void check_one_odd_byte(const uint8_t *odd, size_t nodd, size_t (*fn)(const uint8_t *, size_t),
                               size_t (*ref)(const uint8_t *, size_t)) {
  uint8_t mem[128];
  for (size_t align = 0; align < 8; align++) {
    for (size_t n = 0; n <= 80; n++) {
      uint8_t *p = mem + 16 + align;
      for (size_t k = 0; k < nodd; k++) {
        for (size_t at = 0; at <= n; at++) { /* at == n: none inside */
          memset(mem, odd[k], sizeof mem);
          memset(p, 'a', n);
          if (at < n) p[at] = odd[k];
          assert_int_equal(fn(p, n), ref(p, n));
          assert_int_equal(fn(p, n), at);
        }
      }
    }
  }
}

static void test_ascii(void **state) {
  (void)state;
  static const uint8_t odd[] = {0x80, 0xc3, 0xff};
  check_one_odd_byte(odd, sizeof odd, scan_ascii, ref_ascii);
}

static void test_json_plain(void **state) {
  (void)state;
  /* Each kind of byte that ends a plain run, and the edges of the ranges. */
  static const uint8_t odd[] = {'"', '\\', 0x00, 0x1f, 0x80, 0xe2, 0xff};
  check_one_odd_byte(odd, sizeof odd, scan_json_plain, ref_plain);
}

/* Several odd bytes: the first one is found, whatever follows (a borrow in the word test must not move it). */
static void test_random_against_reference(void **state) {
  (void)state;
  static const uint8_t alphabet[] = {'a', 'Z', ' ', '~', 0x7f, 0x20, 0x1f, 0x00, '"', '\\', 0x80, 0xbf, 0xc2, 0xff};
  uint8_t buf[96];
  srand(7);
  for (int round = 0; round < 200000; round++) {
    size_t n = (size_t)rand() % sizeof buf;
    int density = 1 + rand() % 40; /* 1 in density bytes is drawn from the whole alphabet */
    for (size_t i = 0; i < n; i++)
      buf[i] = rand() % density ? (uint8_t)('a' + rand() % 26) : alphabet[(size_t)rand() % sizeof alphabet];
    assert_int_equal(scan_ascii(buf, n), ref_ascii(buf, n));
    assert_int_equal(scan_json_plain(buf, n), ref_plain(buf, n));
  }
}

/* Every byte: the digits of both cases and nothing else, whatever the sign of a char holding it. */
static void test_hex(void **state) {
  (void)state;
  for (int c = 0; c < 256; c++) {
    int want = -1;
    if (c >= '0' && c <= '9') want = c - '0';
    if (c >= 'a' && c <= 'f') want = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') want = c - 'A' + 10;
    assert_int_equal(scan_hex((uint8_t)c), want);
    assert_int_equal(scan_hex((char)c), want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ascii),
      cmocka_unit_test(test_json_plain),
      cmocka_unit_test(test_random_against_reference),
      cmocka_unit_test(test_hex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
