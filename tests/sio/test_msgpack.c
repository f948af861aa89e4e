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

#include "sio/msgpack.h"
#include "wsio.h"

#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"

/* Copies n bytes so that the last one sits right before an inaccessible page: any over-read faults. */
static const uint8_t *guarded(const void *s, size_t n) {
  static uint8_t *region;
  static size_t page;
  if (!region) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    region = mmap(NULL, 65 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(region != MAP_FAILED);
    assert_int_equal(mprotect(region + 64 * page, page, PROT_NONE), 0);
  }
  assert_true(n <= 64 * page);
  uint8_t *p = region + 64 * page - n;
  memcpy(p, s, n);
  return p;
}

/* Decodes msgpack to JSON; returns the rc, *out the NUL-terminated JSON (static). */
static int to_json(const void *p, size_t n, const mpk_limits *lim, char **out, mpk_atts *atts) {
  static buf j;
  j.len = 0;
  int rc = mpk_to_json(guarded(p, n), n, lim, &j, atts);
  buf_append(&j, "", 1);
  *out = (char *)j.data;
  return rc;
}

static void expect_json(const void *p, size_t n, const char *want) {
  mpk_atts atts = {0};
  char *got;
  assert_int_equal(to_json(p, n, NULL, &got, &atts), 0);
  assert_string_equal(got, want);
  mpk_atts_free(&atts);
}

/* Bytes written by notepack.io 3 (what @socket.io/redis-adapter publishes). */
static void test_notepack_broadcast(void **st) {
  (void)st;
  static const char msg[] =
      "\x93\xa6\x61\x62\x63\x31\x32\x33\x83\xa4\x74\x79\x70\x65\x02\xa4\x64\x61\x74\x61\x94\xa4\x63\x68\x61\x74"
      "\x01\xa1\x78\x81\xa1\x61\x92\xc3\xc0\xa3\x6e\x73\x70\xa1\x2f\x83\xa5\x72\x6f\x6f\x6d\x73\x91\xa2\x72\x31"
      "\xa6\x65\x78\x63\x65\x70\x74\x90\xa5\x66\x6c\x61\x67\x73\x81\xa8\x76\x6f\x6c\x61\x74\x69\x6c\x65\xc3";
  expect_json(msg, sizeof msg - 1,
              "[\"abc123\",{\"type\":2,\"data\":[\"chat\",1,\"x\",{\"a\":[true,null]}],\"nsp\":\"/\"},"
              "{\"rooms\":[\"r1\"],\"except\":[],\"flags\":{\"volatile\":true}}]");
}

static void test_notepack_binary_packet(void **st) {
  (void)st;
  static const char msg[] = "\x83\xa4\x74\x79\x70\x65\x02\xa4\x64\x61\x74\x61\x93\xa3\x62\x69\x6e\xc4\x03\x01\x02"
                            "\x03\x81\xa1\x6b\xc4\x02\x68\x69\xa3\x6e\x73\x70\xa5\x2f\x63\x68\x61\x74";
  mpk_atts atts = {0};
  char *got;
  assert_int_equal(to_json(msg, sizeof msg - 1, NULL, &got, &atts), 0);
  assert_string_equal(got, "{\"type\":2,\"data\":[\"bin\"," PH(0) ",{\"k\":" PH(1) "}],\"nsp\":\"/chat\"}");
  assert_int_equal(atts.n, 2);
  assert_int_equal(atts.v[0].len, 3);
  assert_memory_equal(atts.v[0].p, "\x01\x02\x03", 3);
  assert_memory_equal(atts.v[1].p, "hi", 2);
  /* to the text packet the clients get */
  buf text = {0};
  size_t first, count;
  sio_json_span obj = {got, strlen(got), SIO_JSON_OBJECT};
  assert_int_equal(mpk_packet_text(&obj, atts.n, 0, &text, &first, &count), 0);
  assert_int_equal(first, 0);
  assert_int_equal(count, 2);
  assert_int_equal(text.len, strlen("52-/chat,[\"bin\"," PH(0) ",{\"k\":" PH(1) "}]"));
  assert_memory_equal(text.data, "52-/chat,[\"bin\"," PH(0) ",{\"k\":" PH(1) "}]", text.len);
  buf_free(&text);
  mpk_atts_free(&atts);
}

static void test_numbers(void **st) {
  (void)st;
  static const char msg[] = "\x98\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a\xfd\xcd\x01\x2c\xd1\xff\x38\xce\x00\x01\x11"
                            "\x70\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xd3\xff\xff\xff\xfe\xff\xff\xff\xff\xc0";
  expect_json(msg, sizeof msg - 1, "[0.1,-3,300,-200,70000,4294967296,-4294967297,null]");
  /* float 32 1.5, NaN and infinity (JSON.stringify writes null), int8 -128, uint64 max */
  expect_json("\x95\xca\x3f\xc0\x00\x00\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00"
              "\xd0\x80\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
              35, "[1.5,null,null,-128,18446744073709551615]");
}

static void test_timestamps_and_keys(void **st) {
  (void)st;
  expect_json("\xd7\xff\xa1\xa5\xd6\x00\x65\x93\x7d\x25", 10, "\"2024-01-02T03:04:05.678Z\"");
  expect_json("\xd6\xff\x65\x93\x7d\x25", 6, "\"2024-01-02T03:04:05.000Z\"");
  /* integer keys become their text, as JavaScript object keys */
  expect_json("\x82\x01\xa1\x78\xff\xa1\x79", 7, "{\"1\":\"x\",\"-1\":\"y\"}");
  /* strings needing escapes */
  expect_json("\xa5\x22\x5c\x0a\xc3\xa9", 6, "\"\\\"\\\\\\n\xc3\xa9\"");
}

static void expect_bad(const void *p, size_t n, const mpk_limits *lim) {
  mpk_atts atts = {0};
  char *got;
  assert_int_equal(to_json(p, n, lim, &got, &atts), WSIO_EPROTO);
  assert_string_equal(got, ""); /* nothing left behind */
  assert_int_equal(atts.n, 0);
  mpk_atts_free(&atts);
}

static void test_malformed(void **st) {
  (void)st;
  expect_bad("", 0, NULL);
  expect_bad("\xc1", 1, NULL);                                  /* never used */
  expect_bad("\x01\x02", 2, NULL);                              /* trailing bytes */
  expect_bad("\xdd\xff\xff\xff\xff", 5, NULL);                  /* a count no input could hold */
  expect_bad("\xdf\x00\x00\x00\x02\x01\x01\x01", 8, NULL);      /* map: 2 pairs, 3 bytes */
  expect_bad("\xdb\x7f\xff\xff\xff\x61", 6, NULL);              /* string longer than the input */
  expect_bad("\xc6\x00\x00\x00\x05\x01", 6, NULL);              /* bin longer than the input */
  expect_bad("\xa2\xc3\x28", 3, NULL);                          /* invalid UTF-8 */
  expect_bad("\xa3\xed\xa0\x80", 4, NULL);                      /* a surrogate */
  expect_bad("\xd4\x05\x00", 3, NULL);                          /* an ext type with no meaning here */
  expect_bad("\xd5\xff\x00\x00", 4, NULL);                      /* a timestamp of a wrong size */
  expect_bad("\x81\x90\x01", 3, NULL);                          /* an array as a key */
  expect_bad("\x81\xc3\x01", 3, NULL);                          /* a boolean as a key */
  expect_bad("\xd7\xff\xff\xff\xff\xff\x00\x00\x00\x00", 10, NULL); /* nanoseconds past 999999999 */
  /* nesting past the limit */
  uint8_t deep[200];
  memset(deep, 0x91, sizeof deep);
  deep[199] = 0x01;
  expect_bad(deep, sizeof deep, NULL);
  mpk_limits lim = {.max_depth = 3};
  expect_bad("\x91\x91\x91\x91\x01", 5, &lim);
  expect_json("\x91\x91\x91\x01", 4, "[[[1]]]");
  /* too many bins, too much JSON */
  lim = (mpk_limits){.max_atts = 1};
  expect_bad("\x92\xc4\x00\xc4\x00", 5, &lim);
  lim = (mpk_limits){.max_json = 8};
  expect_bad("\xa9xxxxxxxxx", 10, &lim);
  /* every truncation of a valid message fails cleanly */
  static const char msg[] = "\x93\xa6\x61\x62\x63\x31\x32\x33\x83\xa4\x74\x79\x70\x65\x02\xa4\x64\x61\x74\x61\x92"
                            "\xa2\x65\x76\xc4\x02\x01\x02\xa3\x6e\x73\x70\xa1\x2f\xc0";
  for (size_t n = 0; n < sizeof msg - 1; n++) expect_bad(msg, n, NULL);
}

/* Text packet -> msgpack packet object -> JSON -> text packet: the same packet. */
static void round_trip(const char *text, const sio_bin *atts, size_t natts, int with_id) {
  buf mp = {0}, back = {0}, tmp = {0};
  mpk_writer w;
  mpk_writer_init(&w, &mp);
  assert_int_equal(mpk_pack_packet(&w, &tmp, text, strlen(text), atts, natts, with_id), 0);
  mpk_atts got = {0};
  char *json;
  assert_int_equal(to_json(mp.data, mp.len, NULL, &json, &got), 0);
  assert_int_equal(got.n, natts);
  for (size_t i = 0; i < natts; i++) {
    assert_int_equal(got.v[i].len, atts[i].len);
    assert_memory_equal(got.v[i].p, atts[i].p, atts[i].len);
  }
  sio_json_span obj;
  assert_int_equal(sio_json_validate(json, strlen(json), 64, &obj), 0);
  size_t first, count;
  assert_int_equal(mpk_packet_text(&obj, got.n, with_id, &back, &first, &count), 0);
  assert_int_equal(count, natts);
  assert_int_equal(back.len, strlen(text));
  assert_memory_equal(back.data, text, back.len);
  mpk_atts_free(&got);
  buf_free(&mp);
  buf_free(&back);
  buf_free(&tmp);
}

/* notepack.io's own extension type 0 (socket.io-msgpack-parser's notepack 2 writes it, notepack 3 reads it):
 * undefined, a Date's milliseconds, an ArrayBuffer. Bytes from notepack.io 2.2. */
static void test_notepack_legacy_ext(void **st) {
  (void)st;
  /* {type: 0, data: undefined, nsp: "/"}: the member is left out, as JSON.stringify does */
  expect_json("\x83\xa4\x74\x79\x70\x65\x00\xa4\x64\x61\x74\x61\xd4\x00\x00\xa3\x6e\x73\x70\xa1\x2f", 21,
              "{\"type\":0,\"nsp\":\"/\"}");
  expect_json("\x81\xa1\x75\xd4\x00\x00", 6, "{}");
  expect_json("\x82\xa1\x75\xd4\x00\x00\xa1\x76\x01", 9, "{\"v\":1}");
  /* [undefined, 1]: null in an array */
  expect_json("\x92\xd4\x00\x00\x01", 5, "[null,1]");
  /* new Date(1704164645678), new Date(-1) */
  expect_json("\xd7\x00\x00\x00\x01\x8c\xc8\x20\xdb\x2e", 10, "\"2024-01-02T03:04:05.678Z\"");
  expect_json("\xd7\x00\xff\xff\xff\xff\xff\xff\xff\xff", 10, "\"1969-12-31T23:59:59.999Z\"");
  /* the extremes a peer can send: far outside what a Date holds, null (and no overflow on the way) */
  expect_json("\xd7\x00\x80\x00\x00\x00\x00\x00\x00\x00", 10, "null");
  expect_json("\xd7\x00\x7f\xff\xff\xff\xff\xff\xff\xff", 10, "null");
  /* -1001 ms: the floor of the seconds, then 999 ms */
  expect_json("\xd7\x00\xff\xff\xff\xff\xff\xff\xfc\x17", 10, "\"1969-12-31T23:59:58.999Z\"");
  /* {a: ArrayBuffer [1, 2, 3], u: undefined}: the ArrayBuffer is an attachment like a bin */
  mpk_atts atts = {0};
  char *got;
  assert_int_equal(to_json("\x82\xa1\x61\xc7\x03\x00\x01\x02\x03\xa1\x75\xd4\x00\x00", 14, NULL, &got, &atts), 0);
  assert_string_equal(got, "{\"a\":" PH(0) "}");
  assert_int_equal(atts.n, 1);
  assert_int_equal(atts.v[0].len, 3);
  assert_memory_equal(atts.v[0].p, "\x01\x02\x03", 3);
  mpk_atts_free(&atts);
  /* undefined alone is no JSON value; other sizes of type 0 mean nothing */
  expect_bad("\xd4\x00\x00", 3, NULL);
  expect_bad("\xd5\x00\x00\x00", 4, NULL);
  expect_bad("\xd6\x00\x00\x00\x00\x00", 6, NULL);
}

static void test_packet_shapes(void **st) {
  (void)st;
  round_trip("2[\"ev\"]", NULL, 0, 0);
  round_trip("2[\"ev\",1,\"two\",{\"three\":[3,null,true,false]},-4.5]", NULL, 0, 0);
  round_trip("2/chat,[\"ev\",\"x\"]", NULL, 0, 0);
  round_trip("2[\"\xc3\xa9\\n\\\"q\",\"\xf0\x9f\x98\x80\"]", NULL, 0, 0);
  round_trip("2/admin,12[\"ask\",{}]", NULL, 0, 1);
  round_trip("3/admin,12[\"answer\"]", NULL, 0, 1);
  sio_bin b[3] = {{(const uint8_t *)"\x00\x01", 2}, {(const uint8_t *)"", 0}, {(const uint8_t *)"zz", 2}};
  round_trip("51-[\"file\"," PH(0) "]", b, 1, 0);
  round_trip("53-/nsp,[\"files\"," PH(0) ",{\"a\":[" PH(1) "]}," PH(2) "]", b, 3, 0);
  round_trip("62-/nsp,7[" PH(0) "," PH(1) "]", b, 2, 1);
}

static void test_escaped_string_round_trip_canonical(void **st) {
  (void)st;
  /* A \u escape the JSON writer does not need comes back as the raw character: same value, shorter text. */
  buf mp = {0}, tmp = {0};
  mpk_writer w;
  mpk_writer_init(&w, &mp);
  assert_int_equal(mpk_pack_packet(&w, &tmp, "2[\"\\u0041\\/\"]", 13, NULL, 0, 0), 0);
  mpk_atts got = {0};
  char *json;
  assert_int_equal(to_json(mp.data, mp.len, NULL, &json, &got), 0);
  assert_string_equal(json, "{\"type\":2,\"data\":[\"A/\"],\"nsp\":\"/\"}");
  buf_free(&mp);
  buf_free(&tmp);
  mpk_atts_free(&got);
}

static void test_json_numbers_packed(void **st) {
  (void)st;
  static const struct {
    const char *json;
    const char *mp;
    size_t n;
  } cases[] = {
      {"1e3", "\xcd\x03\xe8", 3},                                 /* integral: an integer, as notepack */
      {"1.5", "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9},
      {"-1", "\xff", 1},
      {"18446744073709551615", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9},
      {"1e300", "\xcb\x7e\x37\xe4\x3c\x88\x00\x75\x9c", 9},
      {"[]", "\x90", 1},
      {"{\"a\":null}", "\x81\xa1\x61\xc0", 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    buf mp = {0};
    mpk_writer w;
    mpk_writer_init(&w, &mp);
    sio_json_span v;
    assert_int_equal(sio_json_validate(cases[i].json, strlen(cases[i].json), 8, &v), 0);
    assert_int_equal(mpk_pack_json(&w, &v, NULL, 0), 0);
    assert_int_equal(mp.len, cases[i].n);
    assert_memory_equal(mp.data, cases[i].mp, cases[i].n);
    buf_free(&mp);
  }
  /* a placeholder past the attachments is refused, output untouched */
  buf mp = {0};
  mpk_writer w;
  mpk_writer_init(&w, &mp);
  sio_json_span v;
  assert_int_equal(sio_json_validate("[" PH(1) "]", strlen("[" PH(1) "]"), 8, &v), 0);
  sio_bin one = {(const uint8_t *)"x", 1};
  assert_int_equal(mpk_pack_json(&w, &v, &one, 1), WSIO_EPROTO);
  assert_int_equal(mp.len, 0);
  buf_free(&mp);
}

static void test_packet_text_rules(void **st) {
  (void)st;
  static const char *bad[] = {
      "{\"type\":0,\"data\":[\"x\"]}",      /* CONNECT: not something a peer broadcasts */
      "{\"type\":2}",                       /* no data */
      "{\"type\":2,\"data\":{}}",           /* data not an array */
      "{\"type\":2,\"data\":[\"x\"],\"nsp\":\"chat\"}",
      "{\"type\":2,\"data\":[\"x\"],\"nsp\":\"/a,b\"}",
      "{\"type\":2,\"data\":[\"x\"],\"nsp\":5}",
      "{\"type\":2,\"data\":[" PH(2) "]}",  /* a placeholder with no attachment */
      "[2]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    buf t = {0};
    size_t first, count;
    sio_json_span v;
    assert_int_equal(sio_json_validate(bad[i], strlen(bad[i]), 8, &v), 0);
    assert_int_equal(mpk_packet_text(&v, 1, 0, &t, &first, &count), WSIO_EPROTO);
    assert_int_equal(t.len, 0);
    buf_free(&t);
  }
  /* placeholders numbered from 3 in the message are renumbered from 0 in the packet */
  const char *obj = "{\"type\":2,\"data\":[\"e\"," PH(4) "," PH(3) "],\"nsp\":\"/\"}";
  sio_json_span v;
  assert_int_equal(sio_json_validate(obj, strlen(obj), 8, &v), 0);
  buf t = {0};
  size_t first, count;
  assert_int_equal(mpk_packet_text(&v, 5, 0, &t, &first, &count), 0);
  assert_int_equal(first, 3);
  assert_int_equal(count, 2);
  buf_append(&t, "", 1);
  assert_string_equal((char *)t.data, "52-[\"e\"," PH(1) "," PH(0) "]");
  /* with_id: an id from the object, or 0 when it has none */
  t.len = 0;
  obj = "{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"}";
  assert_int_equal(sio_json_validate(obj, strlen(obj), 8, &v), 0);
  assert_int_equal(mpk_packet_text(&v, 0, 1, &t, &first, &count), 0);
  buf_append(&t, "", 1);
  assert_string_equal((char *)t.data, "20[\"e\"]");
  buf_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_notepack_broadcast),
      cmocka_unit_test(test_notepack_binary_packet),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_timestamps_and_keys),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_notepack_legacy_ext),
      cmocka_unit_test(test_packet_shapes),
      cmocka_unit_test(test_escaped_string_round_trip_canonical),
      cmocka_unit_test(test_json_numbers_packed),
      cmocka_unit_test(test_packet_text_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
