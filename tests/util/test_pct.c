#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/pct.h"
#include "wsio.h"

#define CANARY 0x5a

/* Decodes the C string s with flags into a buffer of cap bytes that has canaries after it, checks nothing
 * beyond cap was written, and returns what pct_decode returned; the bytes are left in out. */
static long decode(const char *s, unsigned flags, char *out, size_t cap) {
  char mem[128];
  assert_true(cap + 8 <= sizeof mem);
  memset(mem, CANARY, sizeof mem);
  long r = pct_decode(s, strlen(s), mem, cap, flags);
  for (size_t i = cap; i < sizeof mem; i++) assert_int_equal((unsigned char)mem[i], CANARY);
  memcpy(out, mem, cap);
  return r;
}

/* s decodes to want (wlen bytes, NUL-terminated after them) with flags, whatever the room beyond the need, and
 * measuring agrees. */
static void ok(const char *s, unsigned flags, const char *want, size_t wlen) {
  char out[128];
  for (size_t extra = 0; extra < 3; extra++) {
    assert_int_equal(decode(s, flags, out, wlen + 1 + extra), (long)wlen);
    assert_memory_equal(out, want, wlen);
    assert_int_equal(out[wlen], '\0');
  }
  assert_int_equal(pct_decode(s, strlen(s), NULL, 0, flags), (long)wlen);
}

/* s is refused with flags, when writing (with room for all of s) and when measuring. */
static void bad(const char *s, unsigned flags) {
  char out[128];
  assert_int_equal(decode(s, flags, out, strlen(s) + 1), WSIO_EPROTO);
  assert_int_equal(pct_decode(s, strlen(s), NULL, 0, flags), WSIO_EPROTO);
}

static void test_plain(void **state) {
  (void)state;
  ok("", 0, "", 0);
  ok("abc/def", 0, "abc/def", 7);
  ok("%41%62%2f", 0, "Ab/", 3);
  ok("%4a%4A", 0, "JJ", 2);
  ok("%e9%C3%A9", 0, "\xe9\xc3\xa9", 3);
  ok("a%25b", 0, "a%b", 3);
  ok("%2541", 0, "%41", 3); /* decoded once: the '%' that comes out starts nothing */
  ok("%ff", 0, "\xff", 1);
}

static void test_plus(void **state) {
  (void)state;
  ok("a+b", 0, "a+b", 3);
  ok("a+b", PCT_PLUS, "a b", 3);
  ok("++", PCT_PLUS, "  ", 2);
  ok("%2B", PCT_PLUS, "+", 1); /* an escaped '+' is a '+' */
  ok("%20+", PCT_PLUS, "  ", 2);
}

static void test_strict(void **state) {
  (void)state;
  static const char *const cases[] = {"%", "%4", "a%", "a%4", "%zz", "%4z", "%z4", "%g0", "% 41", "%+1", "abc%",
                                      "%41%", "%41%4", "%%41"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    bad(cases[i], 0);
    bad(cases[i], PCT_PLUS);
    bad(cases[i], PCT_NO_NUL);
  }
}

static void test_lenient(void **state) {
  (void)state;
  ok("%", PCT_LENIENT, "%", 1);
  ok("%4", PCT_LENIENT, "%4", 2);
  ok("a%4", PCT_LENIENT, "a%4", 3);
  ok("%zz", PCT_LENIENT, "%zz", 3);
  ok("%4z%41", PCT_LENIENT, "%4zA", 4);
  ok("%%41", PCT_LENIENT, "%A", 2); /* the lone '%' stays; the escape after it is read */
  ok("%+", PCT_LENIENT, "%+", 2);
  ok("%+", PCT_LENIENT | PCT_PLUS, "% ", 2);
  ok("%4+", PCT_LENIENT | PCT_PLUS, "%4 ", 3);
  ok("100%", PCT_LENIENT | PCT_PLUS, "100%", 4);
}

static void test_nul(void **state) {
  (void)state;
  /* Decoded like any byte unless refused; the caller finds it in the output. */
  ok("a%00b", 0, "a\0b", 3);
  ok("%00", PCT_LENIENT, "\0", 1);
  ok("%00", PCT_PLUS, "\0", 1);
  bad("%00", PCT_NO_NUL);
  bad("a%00b", PCT_NO_NUL);
  bad("%00", PCT_NO_NUL | PCT_LENIENT); /* a well-formed escape: leniency does not let it through */
  bad("%00", PCT_NO_NUL | PCT_PLUS);
  ok("%01%10", PCT_NO_NUL, "\x01\x10", 2);
  ok("%0", PCT_NO_NUL | PCT_LENIENT, "%0", 2);
}

static void test_room(void **state) {
  (void)state;
  char out[128];
  /* The bytes and their NUL: one short is too big, whatever the input. */
  assert_int_equal(decode("", 0, out, 0), WSIO_ETOOBIG);
  assert_int_equal(decode("", 0, out, 1), 0);
  assert_int_equal(decode("abc", 0, out, 3), WSIO_ETOOBIG);
  assert_int_equal(decode("abc", 0, out, 0), WSIO_ETOOBIG);
  assert_int_equal(decode("%41%42", 0, out, 2), WSIO_ETOOBIG);
  assert_int_equal(decode("%41%42", 0, out, 3), 2);
  assert_memory_equal(out, "AB", 3);
  assert_int_equal(decode("a+%41", PCT_PLUS, out, 3), WSIO_ETOOBIG);
  /* The first fault in the input is the one returned: a bad escape that comes before the room runs out, or
   * after it. */
  assert_int_equal(decode("a%zz", 0, out, 1), WSIO_ETOOBIG);
  assert_int_equal(decode("%zzabc", 0, out, 1), WSIO_EPROTO);
  assert_int_equal(decode("ab%00", PCT_NO_NUL, out, 2), WSIO_ETOOBIG);
  assert_int_equal(decode("a%00b", PCT_NO_NUL, out, 2), WSIO_EPROTO);
  /* Measuring ignores cap. */
  assert_int_equal(pct_decode("abc", 3, NULL, 0, 0), 3);
  assert_int_equal(pct_decode("abc", 3, NULL, 1, 0), 3);
  /* n, not the NUL, ends the input. */
  assert_int_equal(pct_decode("ab%41", 3, out, sizeof out, 0), WSIO_EPROTO);
  assert_int_equal(pct_decode("ab%41", 3, out, sizeof out, PCT_LENIENT), 3);
  assert_memory_equal(out, "ab%", 4);
  assert_int_equal(pct_decode("a\0b", 3, out, sizeof out, 0), 3);
  assert_memory_equal(out, "a\0b", 4);
}

static void test_in_place(void **state) {
  (void)state;
  char s[] = "a%41+%2B%zz%%42";
  assert_int_equal(pct_decode(s, strlen(s), s, sizeof s, PCT_PLUS | PCT_LENIENT), 9);
  assert_string_equal(s, "aA +%zz%B");
  char t[] = "%41%42%43";
  assert_int_equal(pct_decode(t, strlen(t), t, sizeof t, 0), 3);
  assert_string_equal(t, "ABC");
}

/* The rules again, written another way: isxdigit and strtol. Returns the length or -1 (bad escape or a
 * refused %00); needs no room check (out holds n + 1). */
static long ref_decode(const char *s, size_t n, char *out, unsigned flags) {
  size_t o = 0;
  for (size_t i = 0; i < n; o++) {
    if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      out[o] = (char)strtol(hex, NULL, 16);
      if (out[o] == 0 && (flags & PCT_NO_NUL)) return -1;
      i += 3;
    } else if (s[i] == '%' && !(flags & PCT_LENIENT)) {
      return -1;
    } else {
      out[o] = s[i] == '+' && (flags & PCT_PLUS) ? ' ' : s[i];
      i++;
    }
  }
  out[o] = '\0';
  return (long)o;
}

/* Every string of up to 5 bytes over the bytes that matter, under every combination of flags and every room
 * from none to enough. */
static void test_every_short_input(void **state) {
  (void)state;
  static const char alphabet[] = {'%', '0', '4', 'a', 'F', 'g', '+', '\0', '\xc3'};
  enum { A = sizeof alphabet, MAXN = 5 };
  char s[MAXN], want[MAXN + 1], got[MAXN + 1 + 8];
  size_t total = 1;
  for (size_t n = 0; n <= MAXN; n++, total *= A) {
    for (size_t k = 0; k < total; k++) {
      size_t v = k;
      for (size_t i = 0; i < n; i++, v /= A) s[i] = alphabet[v % A];
      for (unsigned flags = 0; flags < 8; flags++) {
        long r = ref_decode(s, n, want, flags);
        assert_int_equal(pct_decode(s, n, NULL, 0, flags), r < 0 ? WSIO_EPROTO : r);
        for (size_t cap = 0; cap <= n + 1; cap++) {
          memset(got, CANARY, sizeof got);
          long g = pct_decode(s, n, got, cap, flags);
          for (size_t i = cap; i < sizeof got; i++) assert_int_equal((unsigned char)got[i], CANARY);
          if (r >= 0 && (size_t)r + 1 <= cap) {
            assert_int_equal(g, r);
            assert_memory_equal(got, want, (size_t)r + 1);
          } else {
            assert_true(g == WSIO_EPROTO || g == WSIO_ETOOBIG);
            if (r >= 0) assert_int_equal(g, WSIO_ETOOBIG);
            if (g == WSIO_EPROTO) assert_true(r < 0);
          }
        }
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),   cmocka_unit_test(test_plus),     cmocka_unit_test(test_strict),
      cmocka_unit_test(test_lenient), cmocka_unit_test(test_nul),      cmocka_unit_test(test_room),
      cmocka_unit_test(test_in_place), cmocka_unit_test(test_every_short_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
