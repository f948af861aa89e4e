/* The msgpack parser's conversions (src/sio/parser.c), with packets as socket.io-msgpack-parser 3.0
 * (notepack.io 2.2) writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sio/parser.h"
#include "wsio.h"

#define M(s) s, sizeof(s) - 1
#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"

typedef struct dec {
  buf json, text;
  mpk_atts atts;
} dec;

static void dec_free(dec *d) {
  buf_free(&d->json);
  buf_free(&d->text);
  mpk_atts_free(&d->atts);
}

/* Decodes p and checks the text packet it becomes (and that the text is a valid packet). */
static void expect_text(const void *p, size_t n, const char *want) {
  dec d = {0};
  assert_int_equal(sio_mp_decode(p, n, NULL, &d.json, &d.atts, &d.text), 0);
  assert_int_equal(d.text.len, strlen(want));
  assert_memory_equal(d.text.data, want, d.text.len);
  sio_packet pkt;
  assert_int_equal(sio_packet_decode((const char *)d.text.data, d.text.len, NULL, &pkt), 0);
  assert_int_equal(pkt.attachments, d.atts.n);
  dec_free(&d);
}

static void expect_refused(const void *p, size_t n) {
  dec d = {0};
  assert_int_equal(sio_mp_decode(p, n, NULL, &d.json, &d.atts, &d.text), WSIO_EPROTO);
  dec_free(&d);
}

static void test_decode_client_packets(void **st) {
  (void)st;
  /* {type: 0, data: undefined, nsp: "/"}: what socket.io-client sends to join "/" without auth */
  expect_text(M("\x83\xa4type\x00\xa4" "data\xd4\x00\x00\xa3nsp\xa1/"), "0");
  /* {type: 0, data: {token: "t"}, nsp: "/admin"} */
  expect_text(M("\x83\xa4type\x00\xa4" "data\x81\xa5token\xa1t\xa3nsp\xa6/admin"), "0/admin,{\"token\":\"t\"}");
  /* {type: 1, nsp: "/chat"} */
  expect_text(M("\x82\xa4type\x01\xa3nsp\xa5/chat"), "1/chat,");
  /* {type: 2, data: ["hi", 1], options: {compress: true}, nsp: "/", id: 4} */
  expect_text(M("\x85\xa4type\x02\xa4" "data\x92\xa2hi\x01\xa7options\x81\xa8" "compress\xc3\xa3nsp\xa1/\xa2id\x04"),
              "24[\"hi\",1]");
  /* python-socketio: {"type": 0, "data": None, "nsp": "/"}, {"type": 1, "data": None, "nsp": "/x"} */
  expect_text(M("\x83\xa4type\x00\xa4" "data\xc0\xa3nsp\xa1/"), "0");
  expect_text(M("\x83\xa4type\x01\xa4" "data\xc0\xa3nsp\xa2/x"), "1/x,");
  /* {type: 3, data: [], nsp: "/", id: 9} */
  expect_text(M("\x84\xa4type\x03\xa4" "data\x90\xa3nsp\xa1/\xa2id\x09"), "39[]");
}

static void test_decode_binaries(void **st) {
  (void)st;
  /* {type: 2, data: ["up", <bin 01 02>, {f: <bin 03>}], nsp: "/"}: binaries inline make a binary event */
  static const char msg[] = "\x83\xa4type\x02\xa4" "data\x93\xa2up\xc4\x02\x01\x02\x81\xa1" "f\xc4\x01\x03\xa3nsp\xa1/";
  dec d = {0};
  assert_int_equal(sio_mp_decode((const uint8_t *)msg, sizeof msg - 1, NULL, &d.json, &d.atts, &d.text), 0);
  const char *want = "52-[\"up\"," PH(0) ",{\"f\":" PH(1) "}]";
  assert_int_equal(d.text.len, strlen(want));
  assert_memory_equal(d.text.data, want, d.text.len);
  assert_int_equal(d.atts.n, 2);
  assert_int_equal(d.atts.v[0].len, 2);
  assert_memory_equal(d.atts.v[0].p, "\x01\x02", 2);
  assert_memory_equal(d.atts.v[1].p, "\x03", 1);
  /* an ack with an ArrayBuffer (ext type 0, what browsers send) */
  expect_text(M("\x84\xa4type\x03\xa4" "data\x91\xc7\x01\x00\x07\xa3nsp\xa1/\xa2id\x02"), "61-2[" PH(0) "]");
  /* more binaries than the limit allows */
  sio_packet_limits lim = {.max_attachments = 1};
  assert_int_equal(sio_mp_decode((const uint8_t *)msg, sizeof msg - 1, &lim, &d.json, &d.atts, &d.text),
                   WSIO_EPROTO);
  dec_free(&d);
}

static void test_decode_refusals(void **st) {
  (void)st;
  expect_refused(M("\x92\x02\x90"));                                       /* not a map */
  expect_refused(M("\x82\xa4type\x05\xa3nsp\xa1/"));                     /* type past 4 */
  expect_refused(M("\x82\xa4type\xff\xa3nsp\xa1/"));                     /* a negative type */
  expect_refused(M("\x82\xa4type\xa1\x32\xa3nsp\xa1/"));                 /* type as a string */
  expect_refused(M("\x82\xa4type\x02\xa4" "data\x90"));                  /* no nsp */
  expect_refused(M("\x83\xa4type\x02\xa4" "data\x90\xa3nsp\x01"));       /* nsp no string */
  expect_refused(M("\x83\xa4type\x02\xa4" "data\x90\xa3nsp\xa4" "chat")); /* nsp without '/' */
  expect_refused(M("\x83\xa4type\x02\xa4" "data\x90\xa3nsp\xa3/a,"));    /* a comma in nsp */
  expect_refused(M("\x82\xa4type\x02\xa3nsp\xa1/"));                     /* an event without data */
  expect_refused(M("\x83\xa4type\x02\xa4" "data\xa1x\xa3nsp\xa1/"));     /* data no array */
  expect_refused(M("\x83\xa4type\x00\xa4" "data\x90\xa3nsp\xa1/"));      /* CONNECT data no object */
  expect_refused(M("\x83\xa4type\x01\xa4" "data\x90\xa3nsp\xa1/"));      /* DISCONNECT with data */
  expect_refused(M("\x84\xa4type\x02\xa4" "data\x90\xa3nsp\xa1/\xa2id\xff")); /* a negative id */
  expect_refused(M("\x84\xa4type\x02\xa4" "data\x90\xa3nsp\xa1/\xa2id\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"));
  /* a binary outside any event or ack */
  expect_refused(M("\x83\xa4type\x00\xa4" "data\x81\xa1k\xc4\x00\xa3nsp\xa1/"));
  expect_refused(M("\x83\xa4type\x02\xa4" "data\x90\xa3nsp"));           /* truncated */
  expect_refused(M("\xc1"));
}

/* Encodes text + attachments and decodes the result back: the same text, the same bytes. */
static void round_trip(const char *text, const sio_bin *atts, size_t natts) {
  buf out = {0}, tmp = {0};
  assert_int_equal(sio_mp_encode(text, strlen(text), atts, natts, &tmp, &out), 0);
  dec d = {0};
  assert_int_equal(sio_mp_decode(out.data, out.len, NULL, &d.json, &d.atts, &d.text), 0);
  assert_int_equal(d.text.len, strlen(text));
  assert_memory_equal(d.text.data, text, d.text.len);
  assert_int_equal(d.atts.n, natts);
  for (size_t i = 0; i < natts; i++) {
    assert_int_equal(d.atts.v[i].len, atts[i].len);
    if (atts[i].len) assert_memory_equal(d.atts.v[i].p, atts[i].p, atts[i].len);
  }
  dec_free(&d);
  buf_free(&out);
  buf_free(&tmp);
}

static void test_encode(void **st) {
  (void)st;
  /* The server's CONNECT: {type: 0, data: {sid}, nsp} exactly as the parser's decoder wants it */
  buf out = {0}, tmp = {0};
  assert_int_equal(sio_mp_encode(M("0{\"sid\":\"s\"}"), NULL, 0, &tmp, &out), 0);
  static const char connect[] = "\x83\xa4type\x00\xa4" "data\x81\xa3sid\xa1s\xa3nsp\xa1/";
  assert_int_equal(out.len, sizeof connect - 1);
  assert_memory_equal(out.data, connect, out.len);
  /* DISCONNECT has no data member at all (the decoder refuses even null) */
  assert_int_equal(sio_mp_encode(M("1/chat,"), NULL, 0, &tmp, &out), 0);
  static const char disconnect[] = "\x82\xa4type\x01\xa3nsp\xa5/chat";
  assert_int_equal(out.len, sizeof disconnect - 1);
  assert_memory_equal(out.data, disconnect, out.len);
  /* a binary event is type 2 with its binaries inline */
  sio_bin atts[2] = {{(const uint8_t *)"\x01\x02", 2}, {(const uint8_t *)"", 0}};
  assert_int_equal(sio_mp_encode(M("52-[\"up\"," PH(0) "," PH(1) "]"), atts, 2, &tmp, &out), 0);
  static const char ev[] = "\x83\xa4type\x02\xa4" "data\x93\xa2up\xc4\x02\x01\x02\xc4\x00\xa3nsp\xa1/";
  assert_int_equal(out.len, sizeof ev - 1);
  assert_memory_equal(out.data, ev, out.len);
  /* a count that does not match the packet's */
  assert_int_equal(sio_mp_encode(M("52-[\"up\"," PH(0) "," PH(1) "]"), atts, 1, &tmp, &out), WSIO_EPROTO);
  buf_free(&out);
  buf_free(&tmp);

  round_trip("2[\"ev\",1,\"two\",{\"x\":[true,null]}]", NULL, 0);
  round_trip("2/chat,12[\"ev\"]", NULL, 0);
  round_trip("3/chat,12[\"ok\"]", NULL, 0);
  round_trip("0/admin,{\"token\":\"t\"}", NULL, 0);
  round_trip("1/admin,", NULL, 0);
  round_trip("4{\"message\":\"Invalid namespace\"}", NULL, 0);
  round_trip("52-7[\"up\"," PH(0) ",{\"k\":" PH(1) "}]", atts, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_client_packets),
      cmocka_unit_test(test_decode_binaries),
      cmocka_unit_test(test_decode_refusals),
      cmocka_unit_test(test_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
