/* The Engine.IO v3 forms (src/eio/packet_v3.c): length-prefixed text payloads counted in UTF-16 units,
 * binary payloads, b4 base64, WebSocket type bytes, and each malformed shape refused. Expected bytes are
 * what engine.io-parser 2.x (engine.io's parser-v3) produces for the same packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eio/packet.h"
#include "wsio.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1
#define Q(lit) (lit), sizeof(lit) - 1

static void assert_packet(const eio_packet *p, eio_packet_type type, int binary, const void *data, size_t len) {
  assert_int_equal(p->type, type);
  assert_int_equal(p->binary, binary);
  assert_int_equal(p->len, len);
  if (len) assert_memory_equal(p->data, data, len);
}

static eio_packet text(eio_packet_type t, const char *s) {
  return (eio_packet){t, 0, (const uint8_t *)s, strlen(s)};
}

static void test_utf16_len(void **state) {
  (void)state;
  assert_int_equal(eio_v3_utf16_len(S("abc")), 3);
  assert_int_equal(eio_v3_utf16_len(S("\xc3\xa9")), 1);         /* é: one unit */
  assert_int_equal(eio_v3_utf16_len(S("\xe2\x82\xac")), 1);     /* €: one unit */
  assert_int_equal(eio_v3_utf16_len(S("\xf0\x9f\x98\x80")), 2); /* 😀: a surrogate pair */
  assert_int_equal(eio_v3_utf16_len(S("a\xf0\x9f\x98\x80\xc3\xa9")), 4);
}

static void test_text_encode(void **state) {
  (void)state;
  buf out = {0};
  eio_packet p = text(EIO_MESSAGE, "2[\"e\",\"\xf0\x9f\x98\x80\xc3\xa9\"]");
  assert_int_equal(eio_v3_payload_append_text(&out, &p), 0);
  /* JavaScript's length of "42[\"e\",\"😀é\"]": 10 ASCII characters, 2 for 😀, 1 for é */
  const char want[] = "13:42[\"e\",\"\xf0\x9f\x98\x80\xc3\xa9\"]";
  assert_int_equal(out.len, sizeof want - 1);
  assert_memory_equal(out.data, want, out.len);
  out.len = 0;
  eio_packet ping = {.type = EIO_PONG};
  eio_packet bin = {EIO_MESSAGE, 1, (const uint8_t *)"\x01\x02\x03", 3};
  assert_int_equal(eio_v3_payload_append_text(&out, &ping), 0);
  assert_int_equal(eio_v3_payload_append_text(&out, &bin), 0);
  assert_int_equal(out.len, strlen("1:36:b4AQID"));
  assert_memory_equal(out.data, "1:36:b4AQID", out.len);
  /* a separator is fine in v3 (lengths, not separators, delimit packets) */
  out.len = 0;
  eio_packet sep = text(EIO_MESSAGE, "a\x1e");
  assert_int_equal(eio_v3_payload_append_text(&out, &sep), 0);
  assert_memory_equal(out.data, "3:4a\x1e", 5);
  eio_packet badbin = {EIO_PING, 1, (const uint8_t *)"x", 1};
  size_t before = out.len;
  assert_int_equal(eio_v3_payload_append_text(&out, &badbin), WSIO_EINVAL);
  assert_int_equal(eio_v3_payload_append_binary(&out, &badbin), WSIO_EINVAL);
  assert_int_equal(out.len, before);
  buf_free(&out);
}

static void test_binary_encode(void **state) {
  (void)state;
  buf out = {0};
  eio_packet t = text(EIO_MESSAGE, "\xc3\xa9");
  uint8_t data[12];
  memset(data, 0xab, sizeof data);
  eio_packet b = {EIO_MESSAGE, 1, data, sizeof data};
  assert_int_equal(eio_v3_payload_append_binary(&out, &t), 0);
  assert_int_equal(eio_v3_payload_append_binary(&out, &b), 0);
  /* text: 0, length in bytes (3: '4' and é's two), 255, the UTF-8; binary: 1, 1 3 (13 bytes), 255, 4, data */
  const uint8_t want_head[] = {0, 3, 255, '4', 0xc3, 0xa9, 1, 1, 3, 255, 4};
  assert_int_equal(out.len, sizeof want_head + sizeof data);
  assert_memory_equal(out.data, want_head, sizeof want_head);
  assert_memory_equal(out.data + sizeof want_head, data, sizeof data);
  buf_free(&out);
}

/* Decodes a whole body (base64 only validated) into ps; returns the count or the error, which must be sticky
 * and agree with eio_v3_payload_check. */
static int decode_all(const uint8_t *body, size_t len, int binary, eio_packet *ps, int cap) {
  eio_v3_iter it;
  int rc = eio_v3_payload_iter_init(&it, body, len, binary, 0);
  if (rc) return rc;
  int n = 0;
  eio_packet p;
  while ((rc = eio_v3_payload_next(&it, NULL, &p)) == 1 && n < cap) ps[n++] = p;
  if (rc < 0) {
    assert_int_equal(eio_v3_payload_next(&it, NULL, &p), rc); /* sticky */
    assert_int_equal(eio_v3_payload_check(body, len, binary, 0), rc);
    return rc;
  }
  assert_int_equal(eio_v3_payload_check(body, len, binary, 0), n);
  return n;
}

static void test_text_decode(void **state) {
  (void)state;
  eio_packet ps[8];
  const char body[] = "2:40" "0:" "13:42[\"e\",\"\xf0\x9f\x98\x80\xc3\xa9\"]" "1:2" "6:2probe";
  assert_int_equal(decode_all(S(body), 0, ps, 8), 4); /* "0:" yields nothing */
  assert_packet(&ps[0], EIO_MESSAGE, 0, "0", 1);
  assert_packet(&ps[1], EIO_MESSAGE, 0, "2[\"e\",\"\xf0\x9f\x98\x80\xc3\xa9\"]", 15);
  assert_packet(&ps[2], EIO_PING, 0, "", 0);
  assert_packet(&ps[3], EIO_PING, 0, "probe", 5);
  /* b4 base64: decoded into bin */
  buf bin = {0};
  eio_v3_iter it;
  eio_packet p;
  assert_int_equal(eio_v3_payload_iter_init(&it, S("6:b4AQID1:6"), 0, 0), 0);
  assert_int_equal(eio_v3_payload_next(&it, &bin, &p), 1);
  assert_packet(&p, EIO_MESSAGE, 1, "\x01\x02\x03", 3);
  assert_int_equal(eio_v3_payload_next(&it, &bin, &p), 1);
  assert_packet(&p, EIO_NOOP, 0, "", 0);
  assert_int_equal(eio_v3_payload_next(&it, &bin, &p), 0);
  buf_free(&bin);
  /* what the encoder writes, the decoder reads back */
  buf out = {0};
  eio_packet in[3] = {text(EIO_MESSAGE, "x\xf0\x9f\x98\x80y"), {.type = EIO_PONG},
                      {EIO_MESSAGE, 1, (const uint8_t *)"\0\xff", 2}};
  for (int i = 0; i < 3; i++) assert_int_equal(eio_v3_payload_append_text(&out, &in[i]), 0);
  assert_int_equal(eio_v3_payload_check(out.data, out.len, 0, 0), 3);
  buf_free(&out);
}

static void test_binary_decode(void **state) {
  (void)state;
  const uint8_t body[] = {0, 2, 255, '4', '0', 1, 4, 255, 4, 0xff, 0x00, 0x01, 0, 1, 255, '2'};
  eio_packet ps[4];
  assert_int_equal(decode_all(body, sizeof body, 1, ps, 4), 3);
  assert_packet(&ps[0], EIO_MESSAGE, 0, "0", 1);
  assert_packet(&ps[1], EIO_MESSAGE, 1, "\xff\x00\x01", 3);
  assert_packet(&ps[2], EIO_PING, 0, "", 0);
  /* a binary packet of just its type byte: an empty binary message */
  const uint8_t empty[] = {1, 1, 255, 4};
  assert_int_equal(decode_all(empty, sizeof empty, 1, ps, 4), 1);
  assert_packet(&ps[0], EIO_MESSAGE, 1, NULL, 0);
  /* round trip of the encoder */
  buf out = {0};
  uint8_t big[1234];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)i;
  eio_packet in[2] = {{EIO_MESSAGE, 1, big, sizeof big}, text(EIO_MESSAGE, "\xe2\x82\xac")};
  for (int i = 0; i < 2; i++) assert_int_equal(eio_v3_payload_append_binary(&out, &in[i]), 0);
  assert_int_equal(decode_all(out.data, out.len, 1, ps, 4), 2);
  assert_packet(&ps[0], EIO_MESSAGE, 1, big, sizeof big);
  assert_packet(&ps[1], EIO_MESSAGE, 0, "\xe2\x82\xac", 3);
  buf_free(&out);
}

static void test_text_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",                         /* empty body */
      "42",                       /* missing colon */
      ":42",                      /* empty length */
      "2x:42",                    /* not digits */
      "-1:4",                     /* a sign */
      "5:42",                     /* truncated */
      "2:403:4",                  /* second packet truncated */
      "12345678901:4",            /* length overflow: too many digits */
      "99999999999999999999:4",   /* and well past size_t */
      "1:9",                      /* unknown type */
      "1:b",                      /* b without the type */
      "3:b2A",                    /* base64 of a non-MESSAGE */
      "4:b4A=",                   /* bad base64 */
      "2:40garbage",              /* trailing bytes that are no length */
      "1:\xf0\x9f\x98\x80",       /* 1 unit ends inside a surrogate pair */
      "2:4\xc3",                  /* truncated UTF-8 */
      "2:4\xff",                  /* invalid UTF-8 */
  };
  eio_packet ps[4];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = decode_all((const uint8_t *)bad[i], strlen(bad[i]), 0, ps, 4);
    if (rc != WSIO_EPROTO) fail_msg("accepted \"%s\" (%d)", bad[i], rc);
    assert_true(eio_v3_payload_check((const uint8_t *)bad[i], strlen(bad[i]), 0, 0) == WSIO_EPROTO);
  }
  /* the byte limit */
  assert_int_equal(eio_v3_payload_check(S("2:40"), 0, 3), WSIO_ETOOBIG);
  assert_int_equal(eio_v3_payload_check(S("2:40"), 0, 4), 1);
}

static void test_binary_malformed(void **state) {
  (void)state;
  static const struct {
    uint8_t b[16];
    size_t n;
  } bad[] = {
      {{0}, 0},                              /* empty */
      {{2, 1, 255, '4'}, 4},                 /* kind neither 0 nor 1 */
      {{0, 1, '4', '0'}, 4},                 /* 255 missing (a digit byte out of range) */
      {{0, 1}, 2},                           /* 255 missing, end of body */
      {{0, 255, '4'}, 3},                    /* no digits */
      {{0, 5, 255, '4', '0'}, 5},            /* truncated */
      {{0, 0, 255}, 3},                      /* zero length */
      {{1, 2, 255, 2, 0}, 5},                /* binary packet of another type than MESSAGE */
      {{0, 1, 255, '9'}, 4},                 /* unknown type */
      {{0, 2, 255, '4', 0xff}, 5},           /* invalid UTF-8 */
      {{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 255, '4'}, 14}, /* 11 digits: overflow */
  };
  eio_packet ps[4];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = decode_all(bad[i].b, bad[i].n, 1, ps, 4);
    if (rc != WSIO_EPROTO) fail_msg("accepted binary case %zu (%d)", i, rc);
  }
}

static void test_ws(void **state) {
  (void)state;
  eio_packet p;
  buf bin = {0};
  assert_int_equal(eio_v3_ws_decode(S("\x04\x01\x02"), 1, &bin, &p), 0);
  assert_packet(&p, EIO_MESSAGE, 1, "\x01\x02", 2);
  assert_int_equal(eio_v3_ws_decode(S("\x04"), 1, &bin, &p), 0);
  assert_packet(&p, EIO_MESSAGE, 1, NULL, 0);
  assert_int_equal(eio_v3_ws_decode(S(""), 1, &bin, &p), WSIO_EPROTO);
  assert_int_equal(eio_v3_ws_decode(S("\x02x"), 1, &bin, &p), WSIO_EPROTO);
  assert_int_equal(eio_v3_ws_decode(S("2probe"), 0, &bin, &p), 0);
  assert_packet(&p, EIO_PING, 0, "probe", 5);
  assert_int_equal(eio_v3_ws_decode(S("b4AQID"), 0, &bin, &p), 0);
  assert_packet(&p, EIO_MESSAGE, 1, "\x01\x02\x03", 3);
  assert_int_equal(eio_v3_ws_decode(S("b4AQID"), 0, NULL, &p), WSIO_EPROTO);
  assert_int_equal(eio_v3_ws_decode(S("bAQID"), 0, &bin, &p), WSIO_EPROTO);
  assert_int_equal(eio_v3_ws_decode(S(""), 0, &bin, &p), WSIO_EPROTO);
  assert_int_equal(eio_v3_ws_decode(S("7"), 0, &bin, &p), WSIO_EPROTO);
  buf_free(&bin);
}

static void test_query_j(void **state) {
  (void)state;
  eio_query q;
  assert_int_equal(eio_query_parse(Q("EIO=3&transport=polling&j=1%32x3") , &q), 0);
  assert_int_equal(q.eio, 3);
  assert_true(q.has_j);
  assert_string_equal(q.j, "123");
  assert_int_equal(eio_query_parse(Q("EIO=3&j="), &q), 0);
  assert_true(q.has_j);
  assert_string_equal(q.j, "");
  assert_int_equal(eio_query_parse(Q("EIO=3"), &q), 0);
  assert_false(q.has_j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf16_len),      cmocka_unit_test(test_text_encode),
      cmocka_unit_test(test_binary_encode),  cmocka_unit_test(test_text_decode),
      cmocka_unit_test(test_binary_decode),  cmocka_unit_test(test_text_malformed),
      cmocka_unit_test(test_binary_malformed), cmocka_unit_test(test_ws),
      cmocka_unit_test(test_query_j),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
