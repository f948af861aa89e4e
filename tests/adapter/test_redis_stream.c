/* The streams adapter's pure parts (src/adapter/redis_stream.c): stream names, entries as Redis sends them,
 * data fields, offsets, session records, and which missed packets a session gets. The fixtures written by
 * Node were made with @msgpack/msgpack 2.8 as @socket.io/redis-streams-adapter 0.3.1 calls it; the adapter
 * against real Redis and Node peers is tests/interop/test_redis_streams.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter/redis_stream.h"
#include "wsio.h"

/* A reply as hiredis reads it from RESP text (the caller frees it). */
static redisReply *resp(const char *text, size_t len) {
  redisReader *r = redisReaderCreate();
  assert_int_equal(redisReaderFeed(r, text, len), REDIS_OK);
  void *reply = NULL;
  assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
  assert_non_null(reply);
  redisReaderFree(r);
  return reply;
}

/* RESP for an entry [id, [k1, v1, ...]] of NUL-terminated strings. */
static redisReply *entry(const char *id, const char *const *kv, size_t n) {
  buf b = {0};
  char tmp[64];
  int k = snprintf(tmp, sizeof tmp, "*2\r\n$%zu\r\n%s\r\n*%zu\r\n", strlen(id), id, n);
  buf_append(&b, tmp, (size_t)k);
  for (size_t i = 0; i < n; i++) {
    k = snprintf(tmp, sizeof tmp, "$%zu\r\n", strlen(kv[i]));
    buf_append(&b, tmp, (size_t)k);
    buf_append(&b, kv[i], strlen(kv[i]));
    buf_append(&b, "\r\n", 2);
  }
  redisReply *r = resp((const char *)b.data, b.len);
  buf_free(&b);
  return r;
}

static void test_stream_name(void **st) {
  (void)st;
  buf b = {0};
  assert_int_equal(rsx_stream_name(&b, "socket.io", 1, "/chat"), 0);
  assert_string_equal((const char *)b.data, "socket.io");
  /* JavaScript's hashCode(nsp) % count, as the package computes it (values from Node) */
  static const struct {
    const char *nsp;
    unsigned count;
    const char *want;
  } cases[] = {
      {"/", 3, "s-2"},         {"/chat", 3, "s-1"},      {"/chat", 5, "s-3"},
      {"/admin-namespace-long", 5, "s-0"},                 {"/\xc3\xa9\xf0\x9f\x98\x80x", 5, "s-4"},
      {"/zzzzzzzz", 3, "s--1"}, {"/zzzzzzzz", 5, "s--3"}, /* negative hashes: a stream no node reads */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    assert_int_equal(rsx_stream_name(&b, "s", cases[i].count, cases[i].nsp), 0);
    assert_string_equal((const char *)b.data, cases[i].want);
  }
  buf_free(&b);
}

static void test_entry_read(void **st) {
  (void)st;
  const char *kv[] = {"uid", "abc", "nsp", "/chat", "type", "3", "data", "{}", "extra", "x"};
  redisReply *r = entry("1700000000000-7", kv, 10);
  rsx_entry e;
  assert_int_equal(rsx_entry_read(r, &e), 0);
  assert_int_equal(e.id_len, 15);
  assert_memory_equal(e.id, "1700000000000-7", 15);
  assert_int_equal(e.uid_len, 3);
  assert_memory_equal(e.nsp, "/chat", 5);
  assert_int_equal(rsx_type(e.type, e.type_len), 3);
  assert_memory_equal(e.data, "{}", 2);
  freeReplyObject(r);

  /* missing fields are NULL; a repeated one keeps its last value */
  const char *kv2[] = {"type", "4", "type", "5"};
  r = entry("1-1", kv2, 4);
  assert_int_equal(rsx_entry_read(r, &e), 0);
  assert_null(e.nsp);
  assert_null(e.uid);
  assert_int_equal(rsx_type(e.type, e.type_len), 5);
  freeReplyObject(r);

  /* not entries: the id is still known when it can be read, so a reader steps past */
  static const char bad1[] = "*2\r\n$3\r\n1-1\r\n*1\r\n$3\r\nuid\r\n";    /* odd field count */
  static const char bad2[] = "*2\r\n$3\r\n1-1\r\n:5\r\n";                 /* fields not an array */
  static const char bad3[] = "*2\r\n$3\r\nabc\r\n*0\r\n";                 /* not an id */
  static const char bad4[] = "*1\r\n$3\r\n1-1\r\n";                       /* one element */
  static const char bad5[] = "*2\r\n$3\r\n1-1\r\n*2\r\n:1\r\n$1\r\nx\r\n"; /* a field that is no string */
  static const char bad6[] = "$5\r\nhello\r\n";
  const char *bads[] = {bad1, bad2, bad3, bad4, bad5, bad6};
  size_t lens[] = {sizeof bad1 - 1, sizeof bad2 - 1, sizeof bad3 - 1,
                   sizeof bad4 - 1, sizeof bad5 - 1, sizeof bad6 - 1};
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
    r = resp(bads[i], lens[i]);
    assert_int_equal(rsx_entry_read(r, &e), WSIO_EPROTO);
    if (i == 0 || i == 1 || i == 4) assert_non_null(e.id);
    freeReplyObject(r);
  }
  assert_int_equal(rsx_entry_read(NULL, &e), WSIO_EPROTO);
}

static void test_type(void **st) {
  (void)st;
  assert_int_equal(rsx_type("3", 1), 3);
  assert_int_equal(rsx_type(" 12abc", 6), 12); /* parseInt */
  assert_int_equal(rsx_type("abc", 3), -1);
  assert_int_equal(rsx_type("", 0), -1);
  assert_int_equal(rsx_type("-3", 2), -1);
  assert_int_equal(rsx_type("99999999999999999999", 20), -1);
}

static void test_data(void **st) {
  (void)st;
  buf json = {0}, bin = {0}, tmp = {0}, out = {0};
  mpk_atts atts = {0};
  sio_json_span v;
  const char *j = "{\"packet\":{\"type\":2,\"data\":[\"ev\",1]},\"opts\":{\"rooms\":[],\"except\":[]}}";
  assert_int_equal(rsx_data_decode(j, strlen(j), &json, &bin, &atts, &v), 0);
  assert_int_equal(v.kind, SIO_JSON_OBJECT);
  assert_int_equal(atts.n, 0);
  assert_int_equal(rsx_data_decode("{oops", 5, &json, &bin, &atts, &v), WSIO_EPROTO);
  assert_int_equal(rsx_data_decode("", 0, &json, &bin, &atts, &v), WSIO_EPROTO);
  assert_int_equal(rsx_data_decode("not base64!", 11, &json, &bin, &atts, &v), WSIO_EPROTO);
  assert_int_equal(rsx_data_decode("wQ==", 4, &json, &bin, &atts, &v), WSIO_EPROTO); /* 0xc1: no msgpack */

  /* Node's binary broadcast: base64 of msgpack, its Buffer a bin */
  const char *node = "gqZwYWNrZXSCpHR5cGUCpGRhdGGTomV2xAMBAgOBoWuhdqRvcHRzg6Vyb29tc5GicjGmZXhjZXB0kKVmbGFnc4A=";
  assert_int_equal(rsx_data_decode(node, strlen(node), &json, &bin, &atts, &v), 0);
  const char *want = "{\"packet\":{\"type\":2,\"data\":[\"ev\",{\"_placeholder\":true,\"num\":0},{\"k\":\"v\"}]},"
                     "\"opts\":{\"rooms\":[\"r1\"],\"except\":[],\"flags\":{}}}";
  assert_int_equal(v.len, strlen(want));
  assert_memory_equal(v.p, want, v.len);
  assert_int_equal(atts.n, 1);
  assert_int_equal(atts.v[0].len, 3);
  assert_memory_equal(atts.v[0].p, "\1\2\3", 3);

  /* written back: the same bytes Node wrote (keys in the same order, the bin as a bin) */
  sio_bin one = {(const uint8_t *)"\1\2\3", 3};
  assert_int_equal(rsx_data_encode(want, strlen(want), &one, 1, &tmp, &out), 0);
  assert_int_equal(out.len, strlen(node));
  assert_memory_equal(out.data, node, out.len);
  /* without attachments the JSON goes as it is */
  assert_int_equal(rsx_data_encode(j, strlen(j), NULL, 0, &tmp, &out), 0);
  assert_int_equal(out.len, strlen(j));
  assert_memory_equal(out.data, j, out.len);
  /* with attachments, a placeholder must name one of them */
  assert_int_equal(rsx_data_encode("{\"a\":{\"_placeholder\":true,\"num\":3}}", 35, &one, 1, &tmp, &out), WSIO_EPROTO);

  /* over the cap: refused before any work */
  size_t big = RSX_DATA_MAX + 1;
  char *huge = malloc(big);
  memset(huge, 'A', big);
  assert_int_equal(rsx_data_decode(huge, big, &json, &bin, &atts, &v), WSIO_EPROTO);
  huge[0] = '{';
  assert_int_equal(rsx_data_decode(huge, big, &json, &bin, &atts, &v), WSIO_EPROTO);
  free(huge);
  buf_free(&json);
  buf_free(&bin);
  buf_free(&tmp);
  buf_free(&out);
  mpk_atts_free(&atts);
}

static void test_offsets(void **st) {
  (void)st;
  assert_true(rsx_offset_valid("1-0", 3));
  assert_true(rsx_offset_valid("1700000000000-18446744073709551615", 34));
  static const char *bad[] = {"", "-", "1-", "-1", "1", "a-1", "1-1-1", "1-18446744073709551616", "1 -1", "0x1-1",
                              "abc-def"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_false(rsx_offset_valid(bad[i], strlen(bad[i])));
  char out[RSX_ID_MAX];
  assert_int_equal(rsx_offset_next("1700000000000-5", out), 0);
  assert_string_equal(out, "1700000000000-6");
  assert_int_equal(rsx_offset_next("7-18446744073709551615", out), 0);
  assert_string_equal(out, "8-0");
  assert_int_equal(rsx_offset_next("18446744073709551615-18446744073709551615", out), WSIO_EPROTO);
  assert_int_equal(rsx_offset_next("x", out), WSIO_EPROTO);
  assert_int_equal(rsx_offset_next_n("3-4garbage", 3, out), 0);
  assert_string_equal(out, "3-5");
}

static void test_session(void **st) {
  (void)st;
  /* Node's persistSession of {sid, pid, rooms, data} */
  const char *node = "hKNzaWS0QUFBQUFBQUFBQUFBQUFBQUFBQUGjcGlktEJCQkJCQkJCQkJCQkJCQkJCQkJCpXJvb21zkrRBQUFB"
                     "QUFBQUFBQUFBQUFBQUFBQaJyMaRkYXRhgqR1c2Vyo2FubqFuAg==";
  rsx_session s;
  assert_int_equal(rsx_session_decode(node, strlen(node), &s), 0);
  assert_string_equal(s.sid, "AAAAAAAAAAAAAAAAAAAA");
  assert_int_equal(s.nrooms, 2);
  assert_string_equal(s.rooms[0], "AAAAAAAAAAAAAAAAAAAA");
  assert_string_equal(s.rooms[1], "r1");
  assert_string_equal(s.data_json, "{\"user\":\"ann\",\"n\":2}");
  rsx_session_free(&s);

  /* ours: the same bytes for the same session */
  const char *rooms[] = {"r1"};
  sio_session_info info = {.sid = "AAAAAAAAAAAAAAAAAAAA", .pid = "BBBBBBBBBBBBBBBBBBBB", .nsp = "/", .rooms = rooms,
                           .nrooms = 1, .data_json = "{\"user\":\"ann\",\"n\":2}"};
  buf tmp = {0}, out = {0};
  assert_int_equal(rsx_session_encode(&info, &tmp, &out), 0);
  assert_int_equal(out.len, strlen(node));
  assert_memory_equal(out.data, node, out.len);
  /* unset data is socket.io's default {} */
  info.data_json = NULL;
  info.nrooms = 0;
  assert_int_equal(rsx_session_encode(&info, &tmp, &out), 0);
  assert_int_equal(rsx_session_decode((const char *)out.data, out.len, &s), 0);
  assert_string_equal(s.data_json, "{}");
  assert_int_equal(s.nrooms, 1);
  rsx_session_free(&s);
  info.data_json = "{not json";
  assert_int_equal(rsx_session_encode(&info, &tmp, &out), WSIO_EPROTO);

  /* not sessions: no rooms, a sid that is no string, no map, no base64 */
  static const char *const bad[] = {
      "gaNzaWSjYWJj",             /* {sid:"abc"} */
      "gqNzaWQBpXJvb21zkA==",     /* {sid:1, rooms:[]} */
      "kwECAw==",                 /* [1,2,3] */
      "%%%",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_not_equal(rsx_session_decode(bad[i], strlen(bad[i]), &s), 0);
    rsx_session_free(&s);
  }
  buf_free(&tmp);
  buf_free(&out);
}

static void test_packet_for(void **st) {
  (void)st;
  const char *rooms[] = {"sid1", "r1", "r2"};
  static const struct {
    const char *opts;
    int want;
  } cases[] = {
      {"{\"rooms\":[],\"except\":[]}", 1},
      {"{\"rooms\":[\"r2\"],\"except\":[]}", 1},
      {"{\"rooms\":[\"sid1\"]}", 1},
      {"{\"rooms\":[\"r9\"],\"except\":[]}", 0},
      {"{\"rooms\":[],\"except\":[\"r1\"]}", 0},
      {"{\"rooms\":[\"r1\"],\"except\":[\"sid1\"]}", 0},
      {"{\"rooms\":[\"r9\",\"r1\"],\"except\":[\"r8\"]}", 1},
      {"{}", 1},
      {"null", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sio_json_span v;
    assert_int_equal(sio_json_validate(cases[i].opts, strlen(cases[i].opts), 8, &v), 0);
    assert_int_equal(rsx_packet_for(&v, rooms, 3), cases[i].want);
  }
  assert_int_equal(rsx_packet_for(NULL, rooms, 3), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_name), cmocka_unit_test(test_entry_read), cmocka_unit_test(test_type),
      cmocka_unit_test(test_data),        cmocka_unit_test(test_offsets),    cmocka_unit_test(test_session),
      cmocka_unit_test(test_packet_for),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
