#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "sio/json.h"
#include "wsio.h"

/* Copies s so that its last byte sits right before an inaccessible page: any over-read faults at once. */
static char *guarded(const char *s, size_t n) {
  static char *region;
  static size_t page;
  if (!region) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    region = mmap(NULL, 17 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(region != MAP_FAILED);
    assert_int_equal(mprotect(region + 16 * page, page, PROT_NONE), 0);
  }
  assert_true(n <= 16 * page);
  char *p = region + 16 * page - n;
  memcpy(p, s, n);
  return p;
}

static int validate(const char *s, size_t n, unsigned depth, sio_json_span *out) {
  return sio_json_validate(guarded(s, n), n, depth, out);
}

static int valid(const char *s) { return validate(s, strlen(s), 32, NULL) == 0; }

static void test_valid_texts(void **state) {
  (void)state;
  static const struct {
    const char *text;
    sio_json_kind kind;
    const char *value; /* the span without surrounding whitespace */
  } cases[] = {
      {"0", SIO_JSON_NUMBER, "0"},
      {"-0", SIO_JSON_NUMBER, "-0"},
      {" -0.0e-0 ", SIO_JSON_NUMBER, "-0.0e-0"},
      {"1E+2", SIO_JSON_NUMBER, "1E+2"},
      {"123.456e789", SIO_JSON_NUMBER, "123.456e789"},
      {"\"\"", SIO_JSON_STRING, "\"\""},
      {"\t\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"\r\n", SIO_JSON_STRING,
       "\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\""},
      {"\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF\"", SIO_JSON_STRING, NULL},
      {"\"\x7F\"", SIO_JSON_STRING, NULL},
      {"true", SIO_JSON_TRUE, NULL},
      {"false", SIO_JSON_FALSE, NULL},
      {" null", SIO_JSON_NULL, "null"},
      {"[]", SIO_JSON_ARRAY, NULL},
      {"{}", SIO_JSON_OBJECT, NULL},
      {"[ ]", SIO_JSON_ARRAY, NULL},
      {"{ }", SIO_JSON_OBJECT, NULL},
      {"[1,\"a\",{\"b\":[true,false,null]},[],{}]", SIO_JSON_ARRAY, NULL},
      {"{\"a\" : 1 , \"b\":{\"c\":[{}]}, \"\":\"\"}", SIO_JSON_OBJECT, NULL},
      {"\n[\n 1 ,\n 2\n]\n", SIO_JSON_ARRAY, "[\n 1 ,\n 2\n]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sio_json_span sp;
    const char *t = cases[i].text;
    char *g = guarded(t, strlen(t));
    if (sio_json_validate(g, strlen(t), 32, &sp) != 0) fail_msg("rejected: %s", t);
    assert_int_equal(sp.kind, cases[i].kind);
    const char *v = cases[i].value ? cases[i].value : t;
    assert_int_equal(sp.len, strlen(v));
    assert_memory_equal(sp.p, v, sp.len);
    assert_true(sp.p >= g && sp.p + sp.len <= g + strlen(t));
  }
}

static void test_invalid_texts(void **state) {
  (void)state;
  static const char *const cases[] = {
      "", " ", "\n\t", "[", "]", "{", "}", "[1,]", "[,1]", "[1,,2]", "{\"a\":1,}", "{,}", "{\"a\"}",
      "{\"a\":}", "{\"a\" 1}", "{1:2}", "{a:1}", "{'a':1}", "['a']", "[1 2]", "{\"a\":1 \"b\":2}", "[}", "{]",
      "[[]", "[]]", "{}}", "[1]x", "1 2", "\"a\"\"b\"", "null,", "[]/**/", "/*c*/[]", "// c\n1", "# c\n1",
      "01", "-01", "00", "+1", ".5", "1.", "1.e3", "1e", "1e+", "-", "--1", "0x10", "1_000", "NaN", "Infinity",
      "-Infinity", "tru", "nul", "fals", "True", "NULL", "truee", "nulll", "\"abc", "\"\\\"", "\"\\x\"",
      "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\'\"", "\"\\", "\"\\u", "\"\\ud800\"",
      "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\ud800\\\"", "\"\\udc00\\ud800\"",
      "\"\\ud800\\ud800\"", "\"a\tb\"", "\"a\nb\"", "\"\x01\"", "\"\x1F\"", "\"\x80\"", "\"\xBF\"",
      "\"\xC0\x80\"", "\"\xC1\xBF\"", "\"\xC3\"", "\"\xC3\x28\"", "\"\xE0\x80\x80\"", "\"\xE0\x9F\xBF\"",
      "\"\xED\xA0\x80\"", "\"\xED\xBF\xBF\"", "\"\xE2\x82\"", "\"\xF0\x8F\xBF\xBF\"", "\"\xF4\x90\x80\x80\"",
      "\"\xF5\x80\x80\x80\"", "\"\xFE\"", "\"\xFF\"", "\xEF\xBB\xBF[]", "[\"\xC3\"]", "\xC3\xA9",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (valid(cases[i])) fail_msg("accepted case %zu: %s", i, cases[i]);
  /* An embedded NUL is not whitespace. */
  assert_int_equal(validate("[1]\0", 4, 32, NULL), WSIO_EPROTO);
  assert_int_equal(validate("\"a\0b\"", 5, 32, NULL), WSIO_EPROTO);
}

static void test_huge_numbers(void **state) {
  (void)state;
  char big[3000];
  memset(big, '9', sizeof big - 1);
  big[sizeof big - 1] = 0;
  assert_true(valid(big));
  big[0] = '-';
  assert_true(valid(big));
  assert_true(valid("1e999999999999999999999"));
  assert_true(valid("-1e-999999999999999999999"));
  assert_true(valid("0.00000000000000000000000000000000000000000000000000001"));
  big[0] = '0';
  assert_false(valid(big));
}

static void nest(char *out, const char *open, const char *close, unsigned n, const char *inner) {
  size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
  char *p = out;
  for (unsigned i = 0; i < n; i++, p += lo) memcpy(p, open, lo);
  memcpy(p, inner, li);
  p += li;
  for (unsigned i = 0; i < n; i++, p += lc) memcpy(p, close, lc);
  *p = 0;
}

static void test_depth(void **state) {
  (void)state;
  static char s[8 * 2100];
  nest(s, "[", "]", 32, "");
  assert_int_equal(validate(s, strlen(s), 32, NULL), 0);
  nest(s, "[", "]", 33, "");
  assert_int_equal(validate(s, strlen(s), 32, NULL), WSIO_EPROTO);
  assert_int_equal(validate(s, strlen(s), 33, NULL), 0);
  nest(s, "{\"a\":", "}", 32, "1");
  assert_int_equal(validate(s, strlen(s), 32, NULL), 0);
  nest(s, "{\"a\":", "}", 33, "1");
  assert_int_equal(validate(s, strlen(s), 32, NULL), WSIO_EPROTO);
  nest(s, "[{\"a\":", "}]", 16, "[]");
  assert_int_equal(validate(s, strlen(s), 33, NULL), 0);
  assert_int_equal(validate(s, strlen(s), 32, NULL), WSIO_EPROTO);
  /* Scalars have depth 0; depth 0 rejects every container. */
  assert_int_equal(validate("1", 1, 0, NULL), 0);
  assert_int_equal(validate("[]", 2, 0, NULL), WSIO_EPROTO);
  /* The cap holds whatever the caller asks. */
  nest(s, "[", "]", SIO_JSON_DEPTH_MAX, "");
  assert_int_equal(validate(s, strlen(s), 100000, NULL), 0);
  nest(s, "[", "]", SIO_JSON_DEPTH_MAX + 1, "");
  assert_int_equal(validate(s, strlen(s), 100000, NULL), WSIO_EPROTO);
  /* Mixed containers deeper than one 64-bit stack word: a wrong bracket anywhere is caught. */
  nest(s, "[{\"k\":", "}]", 300, "0");
  size_t n = strlen(s);
  assert_int_equal(validate(s, n, 1000, NULL), 0);
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '}' && s[i] != ']') continue;
    char c = s[i];
    s[i] = c == '}' ? ']' : '}';
    if (validate(s, n, 1000, NULL) != WSIO_EPROTO) fail_msg("swapped bracket at %zu accepted", i);
    s[i] = c;
  }
}

/* Every proper prefix of a container or string text is invalid, and none is read past its end. */
static void test_truncations(void **state) {
  (void)state;
  static const char *const texts[] = {
      "[1,\"a\",{\"b\":[true,false,null]},[],{}]",
      "{\"k\\u00e9\\ud83d\\ude00\":\"\xF0\x9F\x98\x80\",\"n\":-1.5e+3}",
      "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    size_t n = strlen(texts[i]);
    assert_int_equal(validate(texts[i], n, 32, NULL), 0);
    for (size_t k = 0; k < n; k++)
      if (validate(texts[i], k, 32, NULL) != WSIO_EPROTO) fail_msg("prefix %zu of %zu accepted", k, i);
  }
  /* Number prefixes are numbers or nothing. */
  static const char num[] = "-12.5e+7";
  static const int ok[] = {0, 0, 1, 1, 0, 1, 0, 0, 1};
  for (size_t k = 0; k <= strlen(num); k++) assert_int_equal(validate(num, k, 32, NULL) == 0, ok[k]);
}

static sio_json_span span_of(const char *s) {
  sio_json_span sp;
  assert_int_equal(sio_json_validate(s, strlen(s), 32, &sp), 0);
  return sp;
}

static void assert_span(const sio_json_span *sp, sio_json_kind kind, const char *text) {
  assert_int_equal(sp->kind, kind);
  assert_int_equal(sp->len, strlen(text));
  assert_memory_equal(sp->p, text, sp->len);
}

static void test_array_spans(void **state) {
  (void)state;
  const char *t = " [ 1 , \"a,]\\\"b\" ,{\"x\":[1,{\"y\":\"]}\"}]}, [ ],true,false,null , -1.5e3,\"\"] ";
  char *g = guarded(t, strlen(t));
  sio_json_span arr, e;
  assert_int_equal(sio_json_validate(g, strlen(t), 32, &arr), 0);
  sio_json_iter it;
  sio_json_iter_init(&it, &arr);
  static const struct {
    sio_json_kind kind;
    const char *text;
  } want[] = {
      {SIO_JSON_NUMBER, "1"},    {SIO_JSON_STRING, "\"a,]\\\"b\""},
      {SIO_JSON_OBJECT, "{\"x\":[1,{\"y\":\"]}\"}]}"},
      {SIO_JSON_ARRAY, "[ ]"},   {SIO_JSON_TRUE, "true"},
      {SIO_JSON_FALSE, "false"}, {SIO_JSON_NULL, "null"},
      {SIO_JSON_NUMBER, "-1.5e3"}, {SIO_JSON_STRING, "\"\""},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(sio_json_array_next(&it, &e), 1);
    assert_span(&e, want[i].kind, want[i].text);
  }
  assert_int_equal(sio_json_array_next(&it, &e), 0);
  assert_int_equal(sio_json_array_next(&it, &e), 0);
  assert_int_equal(sio_json_array_count(&arr), 9);

  sio_json_span empty = span_of("[ \n ]");
  sio_json_iter_init(&it, &empty);
  assert_int_equal(sio_json_array_next(&it, &e), 0);
  assert_int_equal(sio_json_array_count(&empty), 0);
  sio_json_span one = span_of("[[]]");
  assert_int_equal(sio_json_array_count(&one), 1);
  /* Not an array: nothing to iterate. */
  sio_json_span str = span_of("\"[1,2]\"");
  assert_int_equal(sio_json_array_count(&str), 0);
  sio_json_iter_init(&it, &str);
  assert_int_equal(sio_json_array_next(&it, &e), 0);
}

/* The validator's noted elements are the iterator's spans, the first cap of them, and all are counted. */
static void test_noted_elements(void **state) {
  (void)state;
  const char *t = " [ 1 , \"a,]\\\"b\" ,{\"x\":[1,{\"y\":\"]}\"}]}, [ ],true,false,null , -1.5e3,\"\"] ";
  char *g = guarded(t, strlen(t));
  sio_json_span arr, noted[5], e;
  size_t count = 99;
  assert_int_equal(sio_json_validate_elems(g, strlen(t), 32, &arr, noted, 5, &count), 0);
  assert_int_equal(count, 9);
  assert_int_equal(arr.kind, SIO_JSON_ARRAY);
  sio_json_iter it;
  sio_json_iter_init(&it, &arr);
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(sio_json_array_next(&it, &e), 1);
    assert_ptr_equal(noted[i].p, e.p);
    assert_int_equal(noted[i].len, e.len);
    assert_int_equal(noted[i].kind, e.kind);
  }
  assert_span(&noted[2], SIO_JSON_OBJECT, "{\"x\":[1,{\"y\":\"]}\"}]}");
  assert_span(&noted[3], SIO_JSON_ARRAY, "[ ]");
  /* Nested arrays count once, at the top; an empty array has none; other values are not arrays. */
  static const struct {
    const char *text;
    size_t count;
  } cases[] = {{"[[1,2],[3]]", 2}, {"[]", 0}, {" [ \n ] ", 0}, {"[[]]", 1}, {"{\"a\":[1,2]}", 0},
               {"\"[1,2]\"", 0}, {"7", 0}, {"[\"x\"]", 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *c = cases[i].text;
    count = 99;
    assert_int_equal(sio_json_validate_elems(c, strlen(c), 32, NULL, noted, 1, &count), 0);
    assert_int_equal(count, cases[i].count);
  }
  assert_int_equal(sio_json_validate_elems("[1,2]", 5, 32, NULL, NULL, 0, &count), 0);
  assert_int_equal(count, 2);
  /* Invalid text: the same error as sio_json_validate. */
  assert_int_equal(sio_json_validate_elems("[1,]", 4, 32, NULL, noted, 5, &count), WSIO_EPROTO);
  assert_int_equal(sio_json_validate_elems("[[1]", 4, 32, NULL, noted, 5, &count), WSIO_EPROTO);
  assert_int_equal(sio_json_validate_elems("[[[1]]]", 7, 2, NULL, noted, 5, &count), WSIO_EPROTO);
}

static void test_object_members(void **state) {
  (void)state;
  sio_json_span obj = span_of("{ \"a\" : 1 , \"b\":{\"a\":2}, \"c\" :[\"a\"] ,\"\\u0061\":3}");
  sio_json_iter it;
  sio_json_span k, v;
  sio_json_iter_init(&it, &obj);
  assert_int_equal(sio_json_object_next(&it, &k, &v), 1);
  assert_span(&k, SIO_JSON_STRING, "\"a\"");
  assert_span(&v, SIO_JSON_NUMBER, "1");
  assert_int_equal(sio_json_object_next(&it, &k, &v), 1);
  assert_span(&k, SIO_JSON_STRING, "\"b\"");
  assert_span(&v, SIO_JSON_OBJECT, "{\"a\":2}");
  assert_int_equal(sio_json_object_next(&it, &k, &v), 1);
  assert_span(&v, SIO_JSON_ARRAY, "[\"a\"]");
  assert_int_equal(sio_json_object_next(&it, &k, &v), 1);
  assert_span(&k, SIO_JSON_STRING, "\"\\u0061\"");
  assert_int_equal(sio_json_object_next(&it, &k, &v), 0);

  /* Last duplicate wins (the escaped "a" is the same key); nested keys are not members. */
  assert_int_equal(sio_json_object_find(&obj, "a", 1, &v), 1);
  assert_span(&v, SIO_JSON_NUMBER, "3");
  assert_int_equal(sio_json_object_find(&obj, "b", 1, &v), 1);
  assert_span(&v, SIO_JSON_OBJECT, "{\"a\":2}");
  assert_int_equal(sio_json_object_find(&obj, "d", 1, &v), 0);
  assert_int_equal(sio_json_object_find(&obj, "", 0, NULL), 0);
  sio_json_span nested = span_of("{\"x\":{\"d\":1},\"y\":\"d\"}");
  assert_int_equal(sio_json_object_find(&nested, "d", 1, NULL), 0);
  sio_json_span e = span_of("{\"\":0}");
  assert_int_equal(sio_json_object_find(&e, "", 0, &v), 1);
  sio_json_span arr = span_of("[\"a\",1]");
  assert_int_equal(sio_json_object_find(&arr, "a", 1, NULL), 0);
  /* Keys with a NUL and non-ASCII compare on decoded bytes. */
  sio_json_span u = span_of("{\"a\\u0000b\":1,\"\\u00e9\":2}");
  assert_int_equal(sio_json_object_find(&u, "a\0b", 3, NULL), 1);
  assert_int_equal(sio_json_object_find(&u, "a", 1, NULL), 0);
  assert_int_equal(sio_json_object_find(&u, "\xC3\xA9", 2, &v), 1);
  assert_span(&v, SIO_JSON_NUMBER, "2");
}

static void test_string_decode(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char *raw;
    size_t raw_len;
  } cases[] = {
      {"\"\"", "", 0},
      {"\"plain\"", "plain", 5},
      {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
      {"\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6},
      {"\"\\ud83d\\ude00!\"", "\xF0\x9F\x98\x80!", 5},
      {"\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4},
      {"\"a\\u0000b\"", "a\0b", 3},
      {"\"\xE2\x82\xAC raw\"", "\xE2\x82\xAC raw", 7},
      {"\"\\u07FF\\u0800\\uFFFF\"", "\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF", 8},
  };
  char out[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sio_json_span s = span_of(cases[i].json);
    ssize_t n = sio_json_string_decode(&s, out, sizeof out);
    assert_int_equal(n, (ssize_t)cases[i].raw_len);
    assert_memory_equal(out, cases[i].raw, cases[i].raw_len);
    assert_true((size_t)n <= s.len - 2);
    assert_int_equal(sio_json_string_equals(&s, cases[i].raw, cases[i].raw_len), 1);
    if (n > 0) {
      assert_int_equal(sio_json_string_equals(&s, cases[i].raw, cases[i].raw_len - 1), 0);
      /* Exact capacity works, one byte less does not. */
      assert_int_equal(sio_json_string_decode(&s, out, (size_t)n), n);
      assert_int_equal(sio_json_string_decode(&s, out, (size_t)n - 1), WSIO_ETOOBIG);
    }
  }
  sio_json_span s = span_of("\"ab\"");
  assert_int_equal(sio_json_string_equals(&s, "abc", 3), 0);
  assert_int_equal(sio_json_string_equals(&s, "ac", 2), 0);
  sio_json_span esc = span_of("\"a\\nb\"");
  assert_int_equal(sio_json_string_equals(&esc, "a\nbc", 4), 0);
  assert_int_equal(sio_json_string_equals(&esc, "a\n", 2), 0);
  sio_json_span num = span_of("12");
  assert_int_equal(sio_json_string_decode(&num, out, sizeof out), WSIO_EINVAL);
  assert_int_equal(sio_json_string_equals(&num, "12", 2), 0);
}

static void test_write_string(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(sio_json_write_string(&b, "a\"b\\c/\b\f\n\r\t\x01\x1F\x7F\xC3\xA9", 16), 0);
  const char *want = "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\x7F\xC3\xA9\"";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);

  /* Invalid UTF-8 is refused and leaves the buffer as it was. */
  size_t len = b.len;
  assert_int_equal(sio_json_write_string(&b, "\xC3", 1), WSIO_EINVAL);
  assert_int_equal(sio_json_write_string(&b, "ok\xED\xA0\x80", 5), WSIO_EINVAL);
  assert_int_equal(b.len, len);
  b.len = 0;
  assert_int_equal(sio_json_write_string(&b, "", 0), 0);
  assert_memory_equal(b.data, "\"\"", 2);

  /* Round trip: every byte 0..127, plus multibyte characters, comes back as it went in. */
  char raw[160];
  size_t n = 0;
  for (int c = 0; c < 128; c++) raw[n++] = (char)c;
  memcpy(raw + n, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF", 13);
  n += 13;
  b.len = 0;
  assert_int_equal(sio_json_write_string(&b, raw, n), 0);
  sio_json_span sp;
  assert_int_equal(sio_json_validate((const char *)b.data, b.len, 0, &sp), 0);
  assert_int_equal(sp.kind, SIO_JSON_STRING);
  char back[160];
  assert_int_equal(sio_json_string_decode(&sp, back, sizeof back), (ssize_t)n);
  assert_memory_equal(back, raw, n);
  assert_int_equal(sio_json_string_equals(&sp, raw, n), 1);

  /* Measured, then written into exactly that much room (a heap block of that size, so that a byte past it
   * shows under ASan): the same bytes as the buffer writer's. */
  ssize_t want_len = sio_json_string_len(raw, n);
  assert_int_equal(want_len, (ssize_t)b.len);
  char *exact = malloc((size_t)want_len);
  assert_non_null(exact);
  assert_int_equal(sio_json_string_put(exact, raw, n, (size_t)want_len), (size_t)want_len);
  assert_memory_equal(exact, b.data, b.len);
  free(exact);
  assert_int_equal(sio_json_string_len("plain", 5), 7);
  assert_int_equal(sio_json_string_len("\xC3", 1), WSIO_EINVAL);
  buf_free(&b);
}

/* The scanners read 8 bytes at a time: a byte that ends or breaks a string is found at every position of
 * every word, and array spans stay right when strings hold quotes or backslashes anywhere. */
static void test_string_every_position(void **state) {
  (void)state;
  for (size_t len = 0; len < 40; len++) {
    for (size_t at = 0; at < len; at++) {
      char s[64];
      /* A control character makes the string invalid wherever it is. */
      s[0] = '"';
      memset(s + 1, 'a', len);
      s[1 + len] = '"';
      s[1 + at] = '\x01';
      assert_int_equal(sio_json_validate(s, len + 2, 0, NULL), WSIO_EPROTO);
      /* A bad UTF-8 byte too; a good two-byte character is fine. */
      s[1 + at] = (char)0xFF;
      assert_int_equal(sio_json_validate(s, len + 2, 0, NULL), WSIO_EPROTO);
      if (at + 1 < len) {
        s[1 + at] = (char)0xC3;
        s[2 + at] = (char)0xA9;
        assert_int_equal(sio_json_validate(s, len + 2, 0, NULL), 0);
        s[2 + at] = 'a';
      }
      /* An early quote ends the string: trailing bytes are garbage. */
      s[1 + at] = '"';
      assert_int_equal(sio_json_validate(s, len + 2, 0, NULL), WSIO_EPROTO);
      /* An escaped quote does not end it, in validation and in skipping. */
      if (at + 1 < len) {
        char arr[80];
        size_t n = 0;
        arr[n++] = '[';
        memcpy(arr + n, s, len + 2);
        arr[n + 1 + at] = '\\';
        arr[n + 2 + at] = '"';
        n += len + 2;
        memcpy(arr + n, ",7]", 3);
        n += 3;
        sio_json_span v, e;
        assert_int_equal(sio_json_validate(arr, n, 4, &v), 0);
        sio_json_iter it;
        sio_json_iter_init(&it, &v);
        assert_int_equal(sio_json_array_next(&it, &e), 1);
        assert_int_equal(e.len, len + 2);
        assert_int_equal(sio_json_array_next(&it, &e), 1);
        assert_int_equal(e.kind, SIO_JSON_NUMBER);
        assert_memory_equal(e.p, "7", 1);
        assert_int_equal(sio_json_array_next(&it, &e), 0);
      }
    }
  }
  /* Writing: a character needing an escape at every position is escaped, else the bytes go as they are. */
  for (size_t len = 1; len < 30; len++) {
    for (size_t at = 0; at < len; at++) {
      char raw[32];
      memset(raw, 'x', len);
      raw[at] = '\n';
      buf b = {0};
      assert_int_equal(sio_json_write_string(&b, raw, len), 0);
      assert_int_equal(b.len, len + 3);
      assert_memory_equal(b.data + 1 + at, "\\n", 2);
      b.len = 0;
      raw[at] = 'y';
      assert_int_equal(sio_json_write_string(&b, raw, len), 0);
      assert_int_equal(b.len, len + 2);
      assert_memory_equal(b.data + 1, raw, len);
      buf_free(&b);
    }
  }
}

/* JavaScript's truthiness, as socket.io's v3 error packets and the Admin UI's filters read values. */
static void test_truthy(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int truthy;
  } cases[] = {{"null", 0},   {"false", 0}, {"0", 0},     {"-0", 0},      {"0.0", 0},  {"0e5", 0},
               {"\"\"", 0}, {" 0 ", 0},   {"true", 1},  {"1", 1},       {"-0.5", 1}, {"\"0\"", 1},
               {"[]", 1},     {"{}", 1},    {"\" \"", 1}, {"1e-300", 1}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sio_json_span v;
    assert_int_equal(sio_json_validate(cases[i].text, strlen(cases[i].text), 8, &v), 0);
    if (sio_json_truthy(&v) != cases[i].truthy) fail_msg("%s: expected %d", cases[i].text, cases[i].truthy);
  }
}

static void test_uint(void **state) {
  (void)state;
  static const struct {
    const char *text;
    uint64_t max;
    int ok;
    uint64_t v;
  } cases[] = {
      {"0", 0, 1, 0},
      {"1", 0, 0, 0},
      {"9", 9, 1, 9},
      {"10", 9, 0, 0},
      {"123", 1000, 1, 123},
      {"9007199254740991", 9007199254740991ull, 1, 9007199254740991ull},
      {"9007199254740992", 9007199254740991ull, 0, 0},
      {"18446744073709551615", UINT64_MAX, 1, UINT64_MAX},
      {"18446744073709551616", UINT64_MAX, 0, 0},
      {"99999999999999999999999", UINT64_MAX, 0, 0},
      {"-1", 100, 0, 0},
      {"-0", 100, 0, 0},
      {"1.0", 100, 0, 0},
      {"1e2", 1000, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sio_json_span sp = span_of(cases[i].text);
    uint64_t v = 77;
    int rc = sio_json_uint(&sp, cases[i].max, &v);
    if ((rc == 0) != cases[i].ok) fail_msg("case %s: rc %d", cases[i].text, rc);
    if (rc == 0) assert_true(v == cases[i].v);
  }
  sio_json_span s = span_of("\"1\"");
  uint64_t v;
  assert_int_equal(sio_json_uint(&s, 10, &v), WSIO_EPROTO);
}

static void test_placeholder(void **state) {
  (void)state;
  uint64_t num = 99;
  static const struct {
    const char *text;
    int rc;
    uint64_t num;
  } cases[] = {
      {"{\"_placeholder\":true,\"num\":0}", 1, 0},
      {"{\"num\":3,\"_placeholder\":true}", 1, 3},
      {"{ \"_placeholder\" : true , \"num\" : 2 , \"extra\":[1]}", 1, 2},
      {"{\"\\u005fplaceholder\":true,\"num\":1}", 1, 1},
      {"{\"_placeholder\":true,\"num\":4}", WSIO_EPROTO, 0},
      {"{\"_placeholder\":true}", WSIO_EPROTO, 0},
      {"{\"_placeholder\":true,\"num\":\"0\"}", WSIO_EPROTO, 0},
      {"{\"_placeholder\":true,\"num\":-1}", WSIO_EPROTO, 0},
      {"{\"_placeholder\":true,\"num\":0.5}", WSIO_EPROTO, 0},
      {"{\"_placeholder\":true,\"num\":null}", WSIO_EPROTO, 0},
      {"{\"_placeholder\":false,\"num\":0}", 0, 0},
      {"{\"_placeholder\":1,\"num\":0}", 0, 0},
      {"{\"_placeholder\":\"true\",\"num\":0}", 0, 0},
      {"{\"_placeholder\":true,\"_placeholder\":false,\"num\":0}", 0, 0},
      {"{\"x\":{\"_placeholder\":true,\"num\":0}}", 0, 0},
      {"[{\"_placeholder\":true,\"num\":0}]", 0, 0},
      {"\"_placeholder\"", 0, 0},
      {"{}", 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sio_json_span sp = span_of(cases[i].text);
    int rc = sio_json_placeholder(&sp, 4, &num);
    if (rc != cases[i].rc) fail_msg("case %s: rc %d", cases[i].text, rc);
    if (rc == 1) assert_true(num == cases[i].num);
  }
  sio_json_span ph = span_of("{\"_placeholder\":true,\"num\":0}");
  assert_int_equal(sio_json_placeholder(&ph, 0, NULL), WSIO_EPROTO);
  assert_int_equal(sio_json_placeholder(&ph, 1, NULL), 1);
}

static void test_placeholder_walk(void **state) {
  (void)state;
  const char *t = "[\"{\\\"_placeholder\\\":true,\\\"num\\\":9}\",{\"_placeholder\":true,\"num\":1},"
                  "{\"a\":[{\"b\":{\"_placeholder\":true,\"num\":0}}],\"_placeholder\":false},"
                  "{\"_placeholder\":true,\"num\":2,\"inner\":{\"_placeholder\":true,\"num\":9}},"
                  "{\"_placeholder\":true,\"num\":1}]";
  sio_json_span v;
  assert_int_equal(sio_json_validate(guarded(t, strlen(t)), strlen(t), 32, &v), 0);
  sio_json_ph_iter it;
  sio_json_span obj;
  uint64_t num;
  static const uint64_t want[] = {1, 0, 2, 1};
  sio_json_ph_init(&it, &v, 3);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(sio_json_ph_next(&it, &obj, &num), 1);
    assert_true(num == want[i]);
    assert_int_equal(obj.kind, SIO_JSON_OBJECT);
    assert_int_equal(sio_json_placeholder(&obj, 3, NULL), 1);
  }
  assert_int_equal(sio_json_ph_next(&it, &obj, &num), 0);
  assert_int_equal(sio_json_ph_next(&it, &obj, &num), 0);
  /* A bad num anywhere stops the walk with an error. */
  sio_json_ph_init(&it, &v, 2);
  assert_int_equal(sio_json_ph_next(&it, NULL, NULL), 1);
  assert_int_equal(sio_json_ph_next(&it, NULL, NULL), 1);
  assert_int_equal(sio_json_ph_next(&it, NULL, NULL), WSIO_EPROTO);
  assert_int_equal(sio_json_ph_next(&it, NULL, NULL), 0);
  /* A placeholder at the top, and a value without any. */
  sio_json_span top = span_of("{\"_placeholder\":true,\"num\":0}");
  sio_json_ph_init(&it, &top, 1);
  assert_int_equal(sio_json_ph_next(&it, &obj, &num), 1);
  assert_int_equal(obj.len, top.len);
  assert_int_equal(sio_json_ph_next(&it, &obj, &num), 0);
  sio_json_span none = span_of("[1,\"{\",{\"a\":{}}]");
  sio_json_ph_init(&it, &none, 1);
  assert_int_equal(sio_json_ph_next(&it, &obj, &num), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_texts),     cmocka_unit_test(test_invalid_texts),
      cmocka_unit_test(test_huge_numbers),    cmocka_unit_test(test_depth),
      cmocka_unit_test(test_truncations),     cmocka_unit_test(test_array_spans),
      cmocka_unit_test(test_object_members),  cmocka_unit_test(test_string_decode),
      cmocka_unit_test(test_noted_elements),
      cmocka_unit_test(test_write_string),
      cmocka_unit_test(test_uint), cmocka_unit_test(test_truthy), cmocka_unit_test(test_placeholder),
      cmocka_unit_test(test_placeholder_walk), cmocka_unit_test(test_string_every_position),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
