#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

/* Reference: RFC 3629 decoded the slow, obvious way. */
static int ref_valid(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint32_t c = p[i];
    size_t n;
    uint32_t min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, c &= 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (len - i - 1 < n) return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return 0;
      c = c << 6 | (p[i + k] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    i += n + 1;
  }
  return 1;
}

/* Reference: 1 if some continuation makes p valid. The second byte of a sequence is the only one with a
 * restricted range, and every allowed range contains 80, 90 or A0; later bytes may all be 80. */
static int ref_completable(const uint8_t *p, size_t len) {
  if (ref_valid(p, len)) return 1;
  static const uint8_t firsts[] = {0x80, 0x90, 0xA0};
  uint8_t q[16];
  if (len > 12) return 0;
  memcpy(q, p, len);
  for (size_t extra = 1; extra <= 3; extra++) {
    for (size_t f = 0; f < 3; f++) {
      q[len] = firsts[f];
      for (size_t k = 1; k < extra; k++) q[len + k] = 0x80;
      if (ref_valid(q, len + extra)) return 1;
    }
  }
  return 0;
}

static void check_state(uint32_t st, const uint8_t *p, size_t len) {
  int valid = ref_valid(p, len);
  int completable = ref_completable(p, len);
  if ((st == UTF8_ACCEPT) != valid || (st == UTF8_REJECT) == completable) {
    char hex[64] = "";
    for (size_t i = 0; i < len && i < 8; i++) snprintf(hex + 3 * i, 4, "%02X ", p[i]);
    fail_msg("state %u for %s(valid %d, completable %d)", (unsigned)st, hex, valid, completable);
  }
}

/* Every string of up to three bytes, fed byte by byte: ACCEPT exactly when valid, REJECT exactly when no
 * continuation could make it valid (fail fast), and one-shot agrees with byte by byte. */
static void test_exhaustive_3(void **state) {
  (void)state;
  uint8_t s[3];
  for (unsigned a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    uint32_t s1 = utf8_validate(UTF8_ACCEPT, s, 1);
    check_state(s1, s, 1);
    for (unsigned b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      uint32_t s2 = utf8_validate(s1, s + 1, 1);
      check_state(s2, s, 2);
      assert_int_equal(utf8_validate(UTF8_ACCEPT, s, 2), s2);
      if (s1 == UTF8_ACCEPT && s2 == UTF8_ACCEPT) continue; /* a, b each complete: covered by 1-byte */
      for (unsigned c = 0; c < 256; c++) {
        s[2] = (uint8_t)c;
        uint32_t s3 = utf8_validate(s2, s + 2, 1);
        check_state(s3, s, 3);
      }
    }
  }
}

/* Four-byte leads against every second byte and boundary values for the rest. */
static void test_four_byte(void **state) {
  (void)state;
  static const uint8_t tails[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF};
  uint8_t s[4];
  for (unsigned a = 0xF0; a < 0x100; a++) {
    for (unsigned b = 0; b < 256; b++) {
      for (size_t c = 0; c < sizeof tails; c++) {
        for (size_t d = 0; d < sizeof tails; d++) {
          s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = tails[c], s[3] = tails[d];
          uint32_t st = UTF8_ACCEPT;
          for (size_t i = 0; i < 4; i++) {
            st = utf8_validate(st, s + i, 1);
            check_state(st, s, i + 1);
          }
          assert_int_equal(utf8_validate(UTF8_ACCEPT, s, 4), st);
        }
      }
    }
  }
}

static void test_valid_samples(void **state) {
  (void)state;
  static const char *samples[] = {
      "",
      "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", /* κόσμε */
      "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
      "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xef\xbb\xbf BOM", "\xf0\x9f\x98\x80 emoji",
  };
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    const uint8_t *p = (const uint8_t *)samples[i];
    size_t n = strlen(samples[i]);
    assert_true(utf8_valid(p, n));
    assert_int_equal(utf8_validate(UTF8_ACCEPT, p, n), UTF8_ACCEPT);
  }
  assert_true(utf8_valid((const uint8_t *)"\0a\0", 3)); /* NUL is a character */
  assert_true(utf8_valid(NULL, 0));
}

/* Each invalid sequence must be rejected at exactly the byte named, not later. */
static void test_fail_fast_positions(void **state) {
  (void)state;
  static const struct { const char *s; size_t at; } cases[] = {
      {"\x80", 0},                 {"\xbf", 0},                 {"\xc0\x80", 0},
      {"\xc1\xbf", 0},             {"\xf5\x80\x80\x80", 0},     {"\xf8\x88\x80\x80\x80", 0},
      {"\xfe", 0},                 {"\xff", 0},                 {"\xe0\x80\x80", 1},
      {"\xe0\x9f\xbf", 1},         {"\xed\xa0\x80", 1},         {"\xed\xbf\xbf", 1},
      {"\xf0\x80\x80\x80", 1},     {"\xf0\x8f\xbf\xbf", 1},     {"\xf4\x90\x80\x80", 1},
      {"\xc2\x41", 1},             {"\xe1\x80\x41", 2},         {"\xf1\x80\x80\xc2", 3},
      {"\xc2\xc2", 1},             {"ab\xe1\x80\xe1\x80", 4},   {"abcdefghijklmnop\xc0", 16},
      {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 12},
      {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64", 12},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const uint8_t *p = (const uint8_t *)cases[i].s;
    size_t n = strlen(cases[i].s);
    uint32_t st = UTF8_ACCEPT;
    for (size_t k = 0; k < n; k++) {
      st = utf8_validate(st, p + k, 1);
      if (k < cases[i].at) assert_int_not_equal(st, UTF8_REJECT);
      else assert_int_equal(st, UTF8_REJECT);
    }
    /* One-shot prefixes agree: rejected once the bad byte is in, and not before. */
    assert_int_not_equal(utf8_validate(UTF8_ACCEPT, p, cases[i].at), UTF8_REJECT);
    assert_int_equal(utf8_validate(UTF8_ACCEPT, p, cases[i].at + 1), UTF8_REJECT);
    assert_false(utf8_valid(p, n));
  }
}

static void test_incomplete(void **state) {
  (void)state;
  static const char *cases[] = {"\xc2", "\xe1\x80", "\xf0\x90", "\xf4\x8f\xbf", "abc\xe0", "\xe0\xa0"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t st = utf8_validate(UTF8_ACCEPT, (const uint8_t *)cases[i], strlen(cases[i]));
    assert_int_not_equal(st, UTF8_ACCEPT);
    assert_int_not_equal(st, UTF8_REJECT);
    assert_false(utf8_valid((const uint8_t *)cases[i], strlen(cases[i])));
  }
}

static void test_sticky(void **state) {
  (void)state;
  assert_int_equal(utf8_validate(UTF8_REJECT, (const uint8_t *)"abc", 3), UTF8_REJECT);
  assert_int_equal(utf8_validate(UTF8_REJECT, (const uint8_t *)"", 0), UTF8_REJECT);
  uint32_t st = utf8_validate(UTF8_ACCEPT, (const uint8_t *)"\xff", 1);
  st = utf8_validate(st, (const uint8_t *)"\xc2\x80 plain ascii afterwards", 26);
  assert_int_equal(st, UTF8_REJECT);
}

/* Same verdict for every split of a mixed string into two and three pieces and byte by byte. */
static void test_splits(void **state) {
  (void)state;
  const char *text = "ascii run long enough for words \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 and \xf0\x9f\x98\x80"
                     "\xf4\x8f\xbf\xbf more ascii after it, 0123456789abcdef\xe0\xa0\x80!";
  const uint8_t *p = (const uint8_t *)text;
  size_t n = strlen(text);
  uint8_t bad[256];
  assert_true(n + 1 < sizeof bad);
  for (int variant = 0; variant < 2; variant++) {
    const uint8_t *s = p;
    uint32_t want = UTF8_ACCEPT;
    if (variant) { /* a surrogate in the middle */
      memcpy(bad, p, n);
      bad[40] = 0xED, bad[41] = 0xA0, bad[42] = 0x80;
      s = bad;
      want = UTF8_REJECT;
    }
    assert_int_equal(utf8_validate(UTF8_ACCEPT, s, n), want);
    uint32_t st = UTF8_ACCEPT;
    for (size_t i = 0; i < n; i++) st = utf8_validate(st, s + i, 1);
    assert_int_equal(st, want);
    for (size_t i = 0; i <= n; i++) {
      st = utf8_validate(utf8_validate(UTF8_ACCEPT, s, i), s + i, n - i);
      assert_int_equal(st, want);
      for (size_t j = i; j <= n; j += 7) {
        st = utf8_validate(UTF8_ACCEPT, s, i);
        st = utf8_validate(st, s + i, j - i);
        st = utf8_validate(st, s + j, n - j);
        assert_int_equal(st, want);
      }
    }
  }
}

/* The word-at-a-time ASCII path: a bad or multibyte byte at every position and alignment is seen. */
static void test_ascii_fast_path(void **state) {
  (void)state;
  uint8_t b[128 + 8];
  for (size_t align = 0; align < 8; align++) {
    for (size_t len = 1; len <= 128; len++) {
      uint8_t *p = b + align;
      for (size_t pos = 0; pos < len; pos++) {
        memset(p, 'a', len);
        p[pos] = 0x80;
        assert_int_equal(utf8_validate(UTF8_ACCEPT, p, len), UTF8_REJECT);
        p[pos] = 0xC3; /* an incomplete character at pos: fine unless it is last */
        if (pos + 1 < len) {
          p[pos + 1] = 0xA9;
          assert_int_equal(utf8_validate(UTF8_ACCEPT, p, len), UTF8_ACCEPT);
        } else {
          uint32_t st = utf8_validate(UTF8_ACCEPT, p, len);
          assert_int_not_equal(st, UTF8_ACCEPT);
          assert_int_not_equal(st, UTF8_REJECT);
        }
      }
      memset(p, 0x7F, len);
      assert_int_equal(utf8_validate(UTF8_ACCEPT, p, len), UTF8_ACCEPT);
    }
  }
}

/* utf8_seq: one character and no more, against the reference, for every lead byte with every second byte
 * and the rest filled from a few continuation and non-continuation bytes; also cut short by end. */
static void test_seq(void **state) {
  (void)state;
  static const uint8_t fill[] = {0x80, 0xBF, 0x41, 0xC2};
  uint8_t q[8];
  for (unsigned lead = 0; lead < 256; lead++) {
    for (unsigned second = 0; second < 256; second++) {
      for (size_t f = 0; f < sizeof fill; f++) {
        q[0] = (uint8_t)lead, q[1] = (uint8_t)second, q[2] = q[3] = fill[f], q[4] = 'x';
        size_t want = 0; /* the reference's length of the first character, 0 when none is valid */
        for (size_t k = 1; k <= 4 && !want; k++)
          if (ref_valid(q, k)) want = k;
        const uint8_t *r = utf8_seq(q, q + 5);
        if (want) {
          assert_ptr_equal(r, q + want);
          if (want > 1) assert_null(utf8_seq(q, q + want - 1));
        } else {
          assert_null(r);
        }
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_samples),   cmocka_unit_test(test_fail_fast_positions),
      cmocka_unit_test(test_incomplete),      cmocka_unit_test(test_sticky),
      cmocka_unit_test(test_splits),          cmocka_unit_test(test_ascii_fast_path),
      cmocka_unit_test(test_four_byte),       cmocka_unit_test(test_exhaustive_3),
      cmocka_unit_test(test_seq),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
