#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "sio/packet.h"
#include "wsio.h"

#define SL(s) s, strlen(s)
#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"

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

static int decode_n(const char *s, size_t n, const sio_packet_limits *lim, sio_packet *pkt) {
  return sio_packet_decode(guarded(s, n), n, lim, pkt);
}

static int decode(const char *s, sio_packet *pkt) { return decode_n(s, strlen(s), NULL, pkt); }

static void assert_text(const char *p, size_t n, const char *want) {
  if (n != strlen(want) || memcmp(p, want, n) != 0) fail_msg("got \"%.*s\", want \"%s\"", (int)n, p, want);
}

/* Every example of the protocol document and of its test suite (the Engine.IO "4" prefix removed). */
static const struct example {
  const char *text;
  int type;
  unsigned attachments;
  const char *nsp;
  int64_t id;
  const char *data; /* NULL: none */
  int canonical;    /* our encoder writes the same text back */
} examples[] = {
    {"0", SIO_CONNECT, 0, "/", -1, NULL, 1},
    {"0/admin,", SIO_CONNECT, 0, "/admin", -1, NULL, 1},
    {"0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, 0, "/admin", -1, "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 1},
    {"0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", SIO_CONNECT, 0, "/", -1, "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", 1},
    {"0/admin,{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", SIO_CONNECT, 0, "/admin", -1, "{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", 1},
    {"0{\"token\":\"123\"}", SIO_CONNECT, 0, "/", -1, "{\"token\":\"123\"}", 1},
    {"0/custom,{\"token\":\"abc\"}", SIO_CONNECT, 0, "/custom", -1, "{\"token\":\"abc\"}", 1},
    {"0/custom", SIO_CONNECT, 0, "/custom", -1, NULL, 0},
    {"0/random", SIO_CONNECT, 0, "/random", -1, NULL, 0},
    {"4{\"message\":\"Not authorized\"}", SIO_CONNECT_ERROR, 0, "/", -1, "{\"message\":\"Not authorized\"}", 1},
    {"4/random,{\"message\":\"Invalid namespace\"}", SIO_CONNECT_ERROR, 0, "/random", -1,
     "{\"message\":\"Invalid namespace\"}", 1},
    {"4\"Not authorized\"", SIO_CONNECT_ERROR, 0, "/", -1, "\"Not authorized\"", 1},
    {"2[\"foo\"]", SIO_EVENT, 0, "/", -1, "[\"foo\"]", 1},
    {"2/admin,[\"bar\"]", SIO_EVENT, 0, "/admin", -1, "[\"bar\"]", 1},
    {"2[\"hey\",\"Jude\"]", SIO_EVENT, 0, "/", -1, "[\"hey\",\"Jude\"]", 1},
    {"2[\"message\",1,\"2\",{\"3\":[true]}]", SIO_EVENT, 0, "/", -1, "[\"message\",1,\"2\",{\"3\":[true]}]", 1},
    {"212[\"foo\"]", SIO_EVENT, 0, "/", 12, "[\"foo\"]", 1},
    {"2/admin,13[\"foo\"]", SIO_EVENT, 0, "/admin", 13, "[\"foo\"]", 1},
    {"2/admin,1[\"tellme\"]", SIO_EVENT, 0, "/admin", 1, "[\"tellme\"]", 1},
    {"2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", SIO_EVENT, 0, "/", 456,
     "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", 1},
    {"312[]", SIO_ACK, 0, "/", 12, "[]", 1},
    {"3/admin,13[\"bar\"]", SIO_ACK, 0, "/admin", 13, "[\"bar\"]", 1},
    {"3456[1,\"2\",{\"3\":[false]}]", SIO_ACK, 0, "/", 456, "[1,\"2\",{\"3\":[false]}]", 1},
    {"51-[\"baz\"," PH(0) "]", SIO_BINARY_EVENT, 1, "/", -1, "[\"baz\"," PH(0) "]", 1},
    {"52-/admin,[\"baz\"," PH(0) "," PH(1) "]", SIO_BINARY_EVENT, 2, "/admin", -1,
     "[\"baz\"," PH(0) "," PH(1) "]", 1},
    {"52-[\"message\"," PH(0) "," PH(1) "]", SIO_BINARY_EVENT, 2, "/", -1, "[\"message\"," PH(0) "," PH(1) "]", 1},
    {"52-789[\"message-with-ack\"," PH(0) "," PH(1) "]", SIO_BINARY_EVENT, 2, "/", 789,
     "[\"message-with-ack\"," PH(0) "," PH(1) "]", 1},
    {"61-15[\"bar\"," PH(0) "]", SIO_BINARY_ACK, 1, "/", 15, "[\"bar\"," PH(0) "]", 1},
    {"61-/admin,1[" PH(0) "]", SIO_BINARY_ACK, 1, "/admin", 1, "[" PH(0) "]", 1},
    {"62-789[" PH(0) "," PH(1) "]", SIO_BINARY_ACK, 2, "/", 789, "[" PH(0) "," PH(1) "]", 1},
    {"1", SIO_DISCONNECT, 0, "/", -1, NULL, 1},
    {"1/admin,", SIO_DISCONNECT, 0, "/admin", -1, NULL, 1},
    {"1/custom", SIO_DISCONNECT, 0, "/custom", -1, NULL, 0},
};

static void check_example(const struct example *ex, const sio_packet *pkt) {
  assert_int_equal(pkt->type, ex->type);
  assert_int_equal(pkt->attachments, ex->attachments);
  assert_text(pkt->nsp, pkt->nsp_len, ex->nsp);
  assert_int_equal(pkt->id, ex->id);
  if (ex->data) {
    assert_text(pkt->data.p, pkt->data.len, ex->data);
  } else {
    assert_int_equal(pkt->data.kind, SIO_JSON_NONE);
    assert_int_equal(pkt->data.len, 0);
  }
}

static void test_decode_examples(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
    sio_packet pkt;
    if (decode(examples[i].text, &pkt) != 0) fail_msg("rejected %s", examples[i].text);
    check_example(&examples[i], &pkt);
  }
}

static void test_encode_examples(void **state) {
  (void)state;
  buf b = {0};
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
    const struct example *ex = &examples[i];
    if (!ex->canonical) continue;
    /* From a hand-built view... */
    sio_packet pkt = {.type = ex->type, .attachments = ex->attachments, .nsp = ex->nsp,
                      .nsp_len = strlen(ex->nsp), .id = ex->id};
    if (ex->data) {
      pkt.data.p = ex->data;
      pkt.data.len = strlen(ex->data);
    }
    b.len = 0;
    assert_int_equal(sio_packet_encode(&b, &pkt), 0);
    assert_text((const char *)b.data, b.len, ex->text);
    /* ...and from the decoded one. */
    assert_int_equal(decode(ex->text, &pkt), 0);
    b.len = 0;
    assert_int_equal(sio_packet_encode(&b, &pkt), 0);
    assert_text((const char *)b.data, b.len, ex->text);
  }
  /* A NULL or empty namespace is the main one. */
  sio_packet pkt = {.type = SIO_DISCONNECT, .id = -1};
  b.len = 0;
  assert_int_equal(sio_packet_encode(&b, &pkt), 0);
  assert_text((const char *)b.data, b.len, "1");
  buf_free(&b);
}

static void test_decode_event_name(void **state) {
  (void)state;
  sio_packet pkt;
  assert_int_equal(decode("2/admin,7[\"chat\",1]", &pkt), 0);
  assert_int_equal(pkt.name.kind, SIO_JSON_STRING);
  assert_text(pkt.name.p, pkt.name.len, "\"chat\"");
  assert_int_equal(decode("2[42,\"x\"]", &pkt), 0);
  assert_int_equal(pkt.name.kind, SIO_JSON_NUMBER);
  assert_text(pkt.name.p, pkt.name.len, "42");
  assert_int_equal(decode("3/a,1[\"x\"]", &pkt), 0);
  assert_int_equal(pkt.name.kind, SIO_JSON_NONE);
  /* Details the reference parser shares: a namespace "/" spelled out, leading zeros in ids. */
  assert_int_equal(decode("2/,[\"a\"]", &pkt), 0);
  assert_text(pkt.nsp, pkt.nsp_len, "/");
  assert_int_equal(decode("2007[\"a\"]", &pkt), 0);
  assert_int_equal(pkt.id, 7);
  assert_int_equal(decode("29007199254740991[\"a\"]", &pkt), 0);
  assert_true(pkt.id == SIO_PACKET_ID_MAX);
  assert_int_equal(decode("2/\xC3\xA9,[\"a\"]", &pkt), 0);
  assert_int_equal(pkt.nsp_len, 3);
  assert_int_equal(decode("2[\"a\"] \n", &pkt), 0); /* trailing whitespace is JSON's */
  assert_text(pkt.data.p, pkt.data.len, "[\"a\"]");
  assert_int_equal(decode("50-[\"a\"]", &pkt), 0);
  assert_int_equal(pkt.attachments, 0);
  assert_int_equal(decode("510-[\"a\"]", &pkt), 0);
  assert_int_equal(pkt.attachments, 10);
  assert_int_equal(decode("5010-[\"a\"]", &pkt), 0);
  assert_int_equal(pkt.attachments, 10);
  /* A placeholder in a non-binary packet is plain data. */
  assert_int_equal(decode("2[\"a\"," PH(5) "]", &pkt), 0);
  assert_int_equal(decode("51-[\"a\",{\"_placeholder\":false,\"num\":7}," PH(0) "]", &pkt), 0);
}

static void test_decode_malformed(void **state) {
  (void)state;
  static const char *const cases[] = {
      /* type */
      "", "7", "9", "a", "-", "/", " 2[\"a\"]", "abc",
      /* attachments */
      "5", "5[\"a\"]", "5-[\"a\"]", "5x-[\"a\"]", "51[\"a\"]", "511-[\"a\"]", "599999999999999999999-[\"a\"]",
      "5-1-[\"a\"]", "6-1[\"a\"]", "51-", "21-[\"a\"]", "01-", "31-1[]",
      /* namespace */
      "2/\xC3,[\"a\"]", "2/\xFF", "0/a\xED\xA0\x80,",
      /* id */
      "29007199254740992[\"a\"]", "299999999999999999999999[\"a\"]", "01", "0/admin,1", "11", "1/a,1",
      "41{\"message\":\"x\"}", "3[]", "3/admin,[\"a\"]", "61-[" PH(0) "]",
      /* data per type */
      "0[]", "0\"x\"", "01{}", "0null", "0{\"a\":1}x", "0{", "0{}}", "1{}", "1/admin,{}", "1[]",
      "2", "2/admin", "2/admin,", "2[]", "2{}", "2\"a\"", "2[null]", "2[{}]", "2[[\"a\"]]", "2[true]",
      "2[\"a\",]", "2[\"a\"]]", "2 [\"a\"]", "2\n[\"a\"]", "212 [\"a\"]", "2[\"connect\"]",
      "2[\"connect_error\"]", "2[\"disconnect\"]", "2[\"disconnecting\"]", "2[\"newListener\"]",
      "2[\"removeListener\"]", "2[\"\\u0063onnect\"]", "51-[\"disconnect\"," PH(0) "]", "312{}", "312\"a\"",
      "312", "4", "4[]", "4null", "41", "4/a,", "4{\"message\":\"x\"", "2[\"\xC3\"]",
      "2[\"a\\ud800\"]", "2[\"a\",01]", "2['a']",
      /* placeholders */
      "50-[\"a\"," PH(0) "]", "51-[\"a\"," PH(1) "]", "51-[\"a\",{\"x\":[" PH(1) "]}]",
      "51-[\"a\",{\"_placeholder\":true}]", "51-[\"a\",{\"_placeholder\":true,\"num\":\"0\"}]",
      "51-[\"a\",{\"_placeholder\":true,\"num\":-1}]", "62-3[" PH(0) "," PH(2) "]",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sio_packet pkt;
    int rc = decode(cases[i], &pkt);
    if (rc != WSIO_EPROTO) fail_msg("case %zu \"%s\": rc %d", i, cases[i], rc);
  }
  /* Embedded NUL bytes. */
  sio_packet pkt;
  assert_int_equal(decode_n("2[\"a\"]\0", 7, NULL, &pkt), WSIO_EPROTO);
  assert_int_equal(decode_n("2/a\0,[\"a\"]", 10, NULL, &pkt), 0); /* a namespace may hold any character */
  assert_int_equal(pkt.nsp_len, 3);
}

static void test_limits(void **state) {
  (void)state;
  sio_packet pkt;
  sio_packet_limits lim = {.max_attachments = 2, .max_depth = 3};
  const char *two = "52-[\"a\"," PH(0) "," PH(1) "]";
  assert_int_equal(decode_n(two, strlen(two), &lim, &pkt), 0);
  const char *three = "53-[\"a\"," PH(0) "," PH(1) "," PH(2) "]";
  assert_int_equal(decode_n(three, strlen(three), &lim, &pkt), WSIO_EPROTO);
  assert_int_equal(decode(three, &pkt), 0);
  /* Depth counts the payload array itself. */
  const char *d3 = "2[\"a\",[[1]]]", *d4 = "2[\"a\",[[[1]]]]";
  assert_int_equal(decode_n(d3, strlen(d3), &lim, &pkt), 0);
  assert_int_equal(decode_n(d4, strlen(d4), &lim, &pkt), WSIO_EPROTO);
  /* The default depth is 32: the array and 31 levels inside it pass, one more does not. */
  char deep[128];
  for (int extra = 31; extra <= 32; extra++) {
    size_t n = 0;
    n += (size_t)sprintf(deep, "2[\"a\",");
    for (int i = 0; i < extra; i++) deep[n++] = '[';
    deep[n++] = '1';
    for (int i = 0; i < extra; i++) deep[n++] = ']';
    deep[n++] = ']';
    deep[n] = 0;
    assert_int_equal(decode(deep, &pkt), extra == 31 ? 0 : WSIO_EPROTO);
  }
}

/* Cut anywhere, a packet either fails or decodes to a packet whose own text is the prefix; never reads past
 * the end. Only CONNECT and DISCONNECT have valid proper prefixes. */
static void test_prefixes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
    const char *t = examples[i].text;
    size_t n = strlen(t);
    for (size_t k = 0; k < n; k++) {
      sio_packet pkt;
      int rc = decode_n(t, k, NULL, &pkt);
      if (rc == 0 && examples[i].type != SIO_CONNECT && examples[i].type != SIO_DISCONNECT)
        fail_msg("prefix %zu of %s accepted", k, t);
      if (rc == 0) assert_int_equal(pkt.type, examples[i].type);
    }
  }
}

static void test_reserved(void **state) {
  (void)state;
  static const char *const names[] = {"connect",       "connect_error", "disconnect",
                                      "disconnecting", "newListener",   "removeListener"};
  for (size_t i = 0; i < 6; i++) assert_int_equal(sio_packet_name_reserved(names[i], strlen(names[i])), 1);
  assert_int_equal(sio_packet_name_reserved("connect", 6), 0);
  assert_int_equal(sio_packet_name_reserved("connection", 10), 0);
  assert_int_equal(sio_packet_name_reserved("Connect", 7), 0);
  assert_int_equal(sio_packet_name_reserved("", 0), 0);
  assert_int_equal(sio_packet_name_reserved("message", 7), 0);
}

/* Event names are checked unescaped on decode: a reserved name spelled with escapes is as reserved. */
static void test_reserved_escaped(void **state) {
  (void)state;
  sio_packet p;
  static const char *bad[] = {"2[\"\\u0063onnect\"]", "2[\"disconnec\\u0074\"]",
                              "2[\"\\u0072\\u0065moveListener\",1]", "2[\"connect_error\"]"};
  for (size_t i = 0; i < 4; i++) assert_int_equal(sio_packet_decode(bad[i], strlen(bad[i]), NULL, &p), WSIO_EPROTO);
  static const char *good[] = {"2[\"\\u0063onnected\"]", "2[\"connec\"]", "2[\"\\\\connect\"]",
                               "2[\"newListener2\"]"};
  for (size_t i = 0; i < 4; i++) assert_int_equal(sio_packet_decode(good[i], strlen(good[i]), NULL, &p), 0);
}

/* Decoded arguments are marked checked, so re-emitting them does not scan them again, and they encode back
 * to the same text; an unchecked argument is still validated. */
static void test_args_checked(void **state) {
  (void)state;
  const char *in = "2[\"fwd\",{\"a\":[1,\"x\\\"y\"]},\"s\",null]";
  sio_packet p;
  assert_int_equal(sio_packet_decode(in, strlen(in), NULL, &p), 0);
  sio_arg a[4];
  assert_int_equal(sio_packet_args(&p, NULL, a, 4), 3);
  for (int i = 0; i < 3; i++) assert_int_equal(a[i].checked, 1);
  buf b = {0};
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "fwd", 3, a, 3, NULL), 0);
  assert_int_equal(b.len, strlen(in));
  assert_memory_equal(b.data, in, b.len);
  sio_arg bad = {.kind = SIO_ARG_JSON, .json = {"{\"a\":", 5, SIO_JSON_OBJECT}};
  b.len = 0;
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "e", 1, &bad, 1, NULL), WSIO_EINVAL);
  buf_free(&b);
}

static void expect(buf *b, int rc, const char *want) {
  assert_int_equal(rc, 0);
  assert_text((const char *)b->data, b->len, want);
  b->len = 0;
}

static void test_encode_helpers(void **state) {
  (void)state;
  buf b = {0};
  expect(&b, sio_packet_encode_connect(&b, NULL, 0, "wZX3oN0bSVIhsaknAAAI", 20, NULL, 0),
         "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}");
  expect(&b, sio_packet_encode_connect(&b, "/admin", 6, "oSO0OpakMV_3jnilAAAA", 20, NULL, 0),
         "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
  expect(&b, sio_packet_encode_connect(&b, "/", 1, "s1", 2, "p\"1", 3),
         "0{\"sid\":\"s1\",\"pid\":\"p\\\"1\"}");
  expect(&b, sio_packet_encode_connect_error(&b, NULL, 0, "Not authorized", 14, NULL, 0),
         "4{\"message\":\"Not authorized\"}");
  expect(&b, sio_packet_encode_connect_error(&b, "/random", 7, "Invalid namespace", 17, NULL, 0),
         "4/random,{\"message\":\"Invalid namespace\"}");
  expect(&b, sio_packet_encode_connect_error(&b, "/", 1, "no", 2, " {\"code\":4} ", 12),
         "4{\"message\":\"no\",\"data\":{\"code\":4}}");
  expect(&b, sio_packet_encode_disconnect(&b, NULL, 0), "1");
  expect(&b, sio_packet_encode_disconnect(&b, "/admin", 6), "1/admin,");
  expect(&b, sio_packet_encode_event(&b, NULL, 0, -1, "chat", 4, "[1,\"x\"]", 7), "2[\"chat\",1,\"x\"]");
  expect(&b, sio_packet_encode_event(&b, NULL, 0, -1, "hey", 3, "[\"Jude\"]", 8), "2[\"hey\",\"Jude\"]");
  expect(&b, sio_packet_encode_event(&b, NULL, 0, -1, "foo", 3, NULL, 0), "2[\"foo\"]");
  expect(&b, sio_packet_encode_event(&b, NULL, 0, 12, "foo", 3, " [ ] ", 5), "212[\"foo\"]");
  expect(&b, sio_packet_encode_event(&b, "/admin", 6, 13, "foo", 3, "[ {\"a\":[]} ]", 12),
         "2/admin,13[\"foo\",{\"a\":[]}]");
  expect(&b, sio_packet_encode_event(&b, NULL, 0, -1, "a\"b\n", 4, "[]", 2), "2[\"a\\\"b\\n\"]");
  expect(&b, sio_packet_encode_event(&b, NULL, 0, -1, "message-back", 12, SL("[1,\"2\",{\"3\":[true]}]")),
         "2[\"message-back\",1,\"2\",{\"3\":[true]}]");
  expect(&b, sio_packet_encode_ack(&b, NULL, 0, 12, NULL, 0), "312[]");
  expect(&b, sio_packet_encode_ack(&b, "/admin", 6, 13, "[\"bar\"]", 7), "3/admin,13[\"bar\"]");
  expect(&b, sio_packet_encode_ack(&b, NULL, 0, 456, SL("[1,\"2\",{\"3\":[false]}]")),
         "3456[1,\"2\",{\"3\":[false]}]");
  expect(&b, sio_packet_encode_ack(&b, NULL, 0, SIO_PACKET_ID_MAX, "[]", 2), "39007199254740991[]");
  buf_free(&b);
}

static void test_encode_errors(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(buf_append(&b, "XYZ", 3), 0);
  int rcs[] = {
      sio_packet_encode_connect(&b, "admin", 5, "s", 1, NULL, 0),
      sio_packet_encode_connect(&b, "/a,b", 4, "s", 1, NULL, 0),
      sio_packet_encode_connect(&b, "/\xC3", 2, "s", 1, NULL, 0),
      sio_packet_encode_connect(&b, NULL, 0, NULL, 0, NULL, 0),
      sio_packet_encode_connect(&b, NULL, 0, "\xFF", 1, NULL, 0),
      sio_packet_encode_connect(&b, NULL, 0, "s", 1, "\xC3", 1),
      sio_packet_encode_connect_error(&b, NULL, 0, "m", 1, "{", 1),
      sio_packet_encode_connect_error(&b, NULL, 0, "m", 1, "", 0),
      sio_packet_encode_connect_error(&b, NULL, 0, "\xC3", 1, NULL, 0),
      sio_packet_encode_connect_error(&b, NULL, 0, NULL, 0, NULL, 0),
      sio_packet_encode_disconnect(&b, "x", 1),
      sio_packet_encode_event(&b, NULL, 0, -1, "connect", 7, NULL, 0),
      sio_packet_encode_event(&b, NULL, 0, -1, "disconnecting", 13, "[1]", 3),
      sio_packet_encode_event(&b, NULL, 0, -1, NULL, 0, NULL, 0),
      sio_packet_encode_event(&b, NULL, 0, -1, "\xC3", 1, NULL, 0),
      sio_packet_encode_event(&b, NULL, 0, -1, "a", 1, "[1,]", 4),
      sio_packet_encode_event(&b, NULL, 0, -1, "a", 1, "{}", 2),
      sio_packet_encode_event(&b, NULL, 0, -1, "a", 1, "1", 1),
      sio_packet_encode_event(&b, NULL, 0, -1, "a", 1, "[1] x", 5),
      sio_packet_encode_event(&b, NULL, 0, -2, "a", 1, NULL, 0),
      sio_packet_encode_event(&b, NULL, 0, SIO_PACKET_ID_MAX + 1, "a", 1, NULL, 0),
      sio_packet_encode_ack(&b, NULL, 0, -1, "[]", 2),
      sio_packet_encode_ack(&b, NULL, 0, 1, "[", 1),
      sio_packet_encode_ack(&b, "/a,", 3, 1, "[]", 2),
  };
  for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
    if (rcs[i] != WSIO_EINVAL) fail_msg("case %zu: rc %d", i, rcs[i]);
  assert_int_equal(b.len, 3);

  sio_packet bad[] = {
      {.type = 7, .id = -1},
      {.type = -1, .id = -1},
      {.type = SIO_CONNECT, .id = 1},
      {.type = SIO_CONNECT_ERROR, .id = 0},
      {.type = SIO_EVENT, .attachments = 1, .id = -1},
      {.type = SIO_EVENT, .id = -5},
      {.type = SIO_ACK, .id = SIO_PACKET_ID_MAX + 1},
      {.type = SIO_EVENT, .nsp = "admin", .nsp_len = 5, .id = -1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (sio_packet_encode(&b, &bad[i]) != WSIO_EINVAL) fail_msg("packet %zu encoded", i);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "XYZ", 3);
  buf_free(&b);
}

static void test_encode_args(void **state) {
  (void)state;
  buf b = {0};
  static const uint8_t b1[] = {1, 2, 3}, b2[] = {4, 5, 6};
  sio_arg args[] = {
      {.kind = SIO_ARG_BINARY, .bin = {b1, 3}},
      {.kind = SIO_ARG_BINARY, .bin = {b2, 3}},
  };
  sio_bin atts[2];
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "message-back", 12, args, 2, atts), 2);
  assert_text((const char *)b.data, b.len, "52-[\"message-back\"," PH(0) "," PH(1) "]");
  assert_ptr_equal(atts[0].p, b1);
  assert_ptr_equal(atts[1].p, b2);
  b.len = 0;
  assert_int_equal(sio_packet_encode_args(&b, SIO_ACK, NULL, 0, 789, NULL, 0, args, 2, NULL), 2);
  assert_text((const char *)b.data, b.len, "62-789[" PH(0) "," PH(1) "]");
  b.len = 0;
  assert_int_equal(sio_packet_encode_args(&b, SIO_ACK, "/admin", 6, 1, NULL, 0, args, 1, atts), 1);
  assert_text((const char *)b.data, b.len, "61-/admin,1[" PH(0) "]");
  b.len = 0;

  /* Mixed arguments: binaries numbered in order among JSON values. */
  sio_arg mixed[] = {
      {.kind = SIO_ARG_JSON, .json = {"1", 1, SIO_JSON_NUMBER}},
      {.kind = SIO_ARG_BINARY, .bin = {b2, 3}},
      {.kind = SIO_ARG_JSON, .json = {"{\"k\":\"v\"}", 9, SIO_JSON_OBJECT}},
      {.kind = SIO_ARG_BINARY, .bin = {NULL, 0}},
  };
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, "/x", 2, 5, "e", 1, mixed, 4, atts), 2);
  assert_text((const char *)b.data, b.len, "52-/x,5[\"e\",1," PH(0) ",{\"k\":\"v\"}," PH(1) "]");
  assert_ptr_equal(atts[0].p, b2);
  assert_int_equal(atts[1].len, 0);
  b.len = 0;
  /* No binary: a plain packet. */
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "chat", 4, mixed, 1, atts), 0);
  assert_text((const char *)b.data, b.len, "2[\"chat\",1]");
  b.len = 0;
  assert_int_equal(sio_packet_encode_args(&b, SIO_ACK, NULL, 0, 3, NULL, 0, NULL, 0, NULL), 0);
  assert_text((const char *)b.data, b.len, "33[]");
  b.len = 0;
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "e", 1, NULL, 0, NULL), 0);
  assert_text((const char *)b.data, b.len, "2[\"e\"]");
  b.len = 0;

  /* Errors leave the buffer alone. */
  sio_arg badjson[] = {{.kind = SIO_ARG_JSON, .json = {"[1,]", 4, SIO_JSON_ARRAY}}};
  sio_arg empty[] = {{.kind = SIO_ARG_JSON, .json = {"", 0, SIO_JSON_NONE}}};
  sio_arg badkind[] = {{.kind = (sio_arg_kind)7}};
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "e", 1, badjson, 1, NULL), WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "e", 1, empty, 1, NULL), WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "e", 1, badkind, 1, NULL), WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "connect", 7, args, 1, NULL), WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, NULL, 0, args, 1, NULL), WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_ACK, NULL, 0, -1, NULL, 0, args, 1, NULL), WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_BINARY_EVENT, NULL, 0, -1, "e", 1, args, 1, NULL),
                   WSIO_EINVAL);
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, NULL, 0, -1, "e", 1, NULL, 1, NULL), WSIO_EINVAL);
  assert_int_equal(b.len, 0);

  /* What we encode, we decode to the same arguments. */
  assert_int_equal(sio_packet_encode_args(&b, SIO_EVENT, "/x", 2, 5, "e", 1, mixed, 4, atts), 2);
  sio_packet pkt;
  assert_int_equal(sio_packet_decode((const char *)b.data, b.len, NULL, &pkt), 0);
  sio_arg got[4];
  assert_int_equal(sio_packet_args(&pkt, atts, got, 4), 4);
  assert_int_equal(got[0].kind, SIO_ARG_JSON);
  assert_text(got[0].json.p, got[0].json.len, "1");
  assert_int_equal(got[1].kind, SIO_ARG_BINARY);
  assert_ptr_equal(got[1].bin.p, b2);
  assert_int_equal(got[2].kind, SIO_ARG_JSON);
  assert_int_equal(got[3].kind, SIO_ARG_BINARY);
  assert_int_equal(got[3].bin.len, 0);
  buf_free(&b);
}

static void test_args(void **state) {
  (void)state;
  sio_packet pkt;
  sio_arg a[8];
  assert_int_equal(decode("2[\"m\",1,\"2\",{\"3\":[true]}," PH(0) "]", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), 4);
  assert_text(a[0].json.p, a[0].json.len, "1");
  assert_int_equal(a[1].json.kind, SIO_JSON_STRING);
  assert_text(a[2].json.p, a[2].json.len, "{\"3\":[true]}");
  assert_int_equal(a[3].kind, SIO_ARG_JSON); /* not a binary packet */
  /* Capacity: count returned, only cap written. */
  a[1].kind = (sio_arg_kind)9;
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 1), 4);
  assert_int_equal(a[1].kind, 9);
  assert_int_equal(sio_packet_args(&pkt, NULL, NULL, 0), 4);
  assert_int_equal(decode("2[\"only\"]", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), 0);
  assert_int_equal(decode("31[]", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), 0);
  assert_int_equal(decode("31[\"a\",2]", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), 2);
  assert_text(a[0].json.p, a[0].json.len, "\"a\"");
  assert_int_equal(decode("0{}", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), WSIO_EINVAL);
  assert_int_equal(decode("1", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), WSIO_EINVAL);
  /* Binary packet without attachments to resolve. */
  assert_int_equal(decode("51-[\"a\"," PH(0) "]", &pkt), 0);
  assert_int_equal(sio_packet_args(&pkt, NULL, a, 8), WSIO_EINVAL);
}

/* The elements noted while decoding give the same name and arguments as walking the JSON does, with fewer
 * elements than SIO_PACKET_ELEMS and with more. */
static void test_noted_elements(void **state) {
  (void)state;
  static const char *texts[] = {
      "2[\"m\",1,\"2\",{\"3\":[true]},[4,[5]]]",
      "2/chat,7[\"ev\" , null ,\"x\"]",
      "2[\"many\",1,2,3,4,5,6,7,8,9,10,11]",
      "2[1,2]",
      "31[\"a\",[1],{}]",
      "31[]",
      "2[\"only\"]",
  };
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    sio_packet pkt, walked;
    assert_int_equal(decode(texts[t], &pkt), 0);
    assert_int_equal(pkt.elems_ok, 1);
    walked = pkt;
    walked.elems_ok = 0;
    sio_arg a[16], b[16];
    int n = sio_packet_args(&pkt, NULL, a, 16);
    assert_true(n >= 0);
    assert_int_equal(sio_packet_args(&walked, NULL, b, 16), n);
    assert_int_equal(pkt.nelems, (size_t)n + (pkt.type == SIO_EVENT));
    for (int i = 0; i < n; i++) {
      assert_ptr_equal(a[i].json.p, b[i].json.p);
      assert_int_equal(a[i].json.len, b[i].json.len);
      assert_int_equal(a[i].json.kind, b[i].json.kind);
    }
  }
  /* The name is the first element, from either path. */
  sio_packet pkt;
  assert_int_equal(decode("2[\"abc\",1]", &pkt), 0);
  assert_text(pkt.name.p, pkt.name.len, "\"abc\"");
  /* No payload, or a payload that is not an array: nothing noted. */
  assert_int_equal(decode("1", &pkt), 0);
  assert_int_equal(pkt.elems_ok, 0);
  assert_int_equal(decode("0{\"token\":1}", &pkt), 0);
  assert_int_equal(pkt.elems_ok, 0);
}

static void test_reassembly(void **state) {
  (void)state;
  sio_packet_reasm r;
  sio_packet_reasm_init(&r);
  sio_packet pkt;
  sio_bin atts[4];
  sio_arg a[4];
  static const uint8_t x[] = {1, 2}, y[] = {3, 4};

  /* The text's buffer is reused at once: the reassembler must hold its own copy. */
  char text[128];
  strcpy(text, "52-/admin,[\"baz\"," PH(0) ",{\"deep\":[" PH(1) "]}," PH(1) "]");
  size_t n = strlen(text);
  assert_int_equal(sio_packet_decode(text, n, NULL, &pkt), 0);
  assert_int_equal(sio_packet_reasm_pending(&r), 0);
  assert_int_equal(sio_packet_reasm_start(&r, text, n, &pkt), 0);
  memset(text, '#', sizeof text);
  assert_int_equal(sio_packet_reasm_pending(&r), 1);
  assert_int_equal(sio_packet_reasm_take(&r, &pkt, atts), WSIO_EINVAL);
  uint8_t tmp[2];
  memcpy(tmp, x, 2);
  assert_int_equal(sio_packet_reasm_add(&r, tmp, 2), 0);
  memset(tmp, 0, 2);
  assert_int_equal(sio_packet_reasm_pending(&r), 1);
  assert_int_equal(sio_packet_reasm_add(&r, y, 2), 1);
  assert_int_equal(sio_packet_reasm_pending(&r), 0);
  assert_int_equal(sio_packet_reasm_add(&r, y, 2), WSIO_EPROTO);
  memset(&pkt, 0, sizeof pkt);
  assert_int_equal(sio_packet_reasm_take(&r, &pkt, atts), 0);
  assert_int_equal(pkt.type, SIO_BINARY_EVENT);
  assert_int_equal(pkt.attachments, 2);
  assert_text(pkt.nsp, pkt.nsp_len, "/admin");
  assert_text(pkt.name.p, pkt.name.len, "\"baz\"");
  assert_int_equal(atts[0].len, 2);
  assert_memory_equal(atts[0].p, x, 2);
  assert_memory_equal(atts[1].p, y, 2);
  assert_int_equal(sio_packet_args(&pkt, atts, a, 4), 3);
  assert_int_equal(a[0].kind, SIO_ARG_BINARY);
  assert_memory_equal(a[0].bin.p, x, 2);
  assert_text(a[0].json.p, a[0].json.len, PH(0));
  /* A nested placeholder stays JSON; the walk resolves it. */
  assert_int_equal(a[1].kind, SIO_ARG_JSON);
  sio_json_ph_iter it;
  uint64_t num;
  sio_json_ph_init(&it, &a[1].json, pkt.attachments);
  assert_int_equal(sio_json_ph_next(&it, NULL, &num), 1);
  assert_true(num == 1);
  assert_int_equal(sio_json_ph_next(&it, NULL, &num), 0);
  assert_int_equal(a[2].kind, SIO_ARG_BINARY);
  assert_memory_equal(a[2].bin.p, y, 2);
  assert_int_equal(sio_packet_reasm_take(&r, &pkt, atts), WSIO_EINVAL);
  assert_int_equal(sio_packet_reasm_add(&r, y, 2), WSIO_EPROTO);

  /* Next packet reuses the store: a binary ack in the main namespace, with an empty attachment. */
  const char *t2 = "61-15[\"bar\"," PH(0) "]";
  assert_int_equal(sio_packet_decode(t2, strlen(t2), NULL, &pkt), 0);
  assert_int_equal(sio_packet_reasm_start(&r, t2, strlen(t2), &pkt), 0);
  /* A second header while attachments are awaited is out of place. */
  assert_int_equal(sio_packet_reasm_start(&r, t2, strlen(t2), &pkt), WSIO_EPROTO);
  assert_int_equal(sio_packet_reasm_add(&r, "", 0), 1);
  assert_int_equal(sio_packet_reasm_take(&r, &pkt, atts), 0);
  assert_int_equal(pkt.type, SIO_BINARY_ACK);
  assert_int_equal(pkt.id, 15);
  assert_text(pkt.nsp, pkt.nsp_len, "/");
  assert_int_equal(pkt.name.kind, SIO_JSON_NONE);
  assert_int_equal(atts[0].len, 0);
  assert_int_equal(sio_packet_args(&pkt, atts, a, 4), 2);
  assert_int_equal(a[1].kind, SIO_ARG_BINARY);
  assert_int_equal(a[1].bin.len, 0);

  /* Not binary, or nothing to wait for: refused. */
  assert_int_equal(sio_packet_decode("2[\"a\"]", 6, NULL, &pkt), 0);
  assert_int_equal(sio_packet_reasm_start(&r, "2[\"a\"]", 6, &pkt), WSIO_EINVAL);
  assert_int_equal(sio_packet_decode("50-[\"a\"]", 8, NULL, &pkt), 0);
  assert_int_equal(sio_packet_reasm_start(&r, "50-[\"a\"]", 8, &pkt), WSIO_EINVAL);

  /* Reset drops a half-built packet. */
  assert_int_equal(sio_packet_decode(t2, strlen(t2), NULL, &pkt), 0);
  assert_int_equal(sio_packet_reasm_start(&r, t2, strlen(t2), &pkt), 0);
  sio_packet_reasm_reset(&r, 0);
  assert_int_equal(sio_packet_reasm_pending(&r), 0);
  assert_int_equal(sio_packet_reasm_add(&r, x, 2), WSIO_EPROTO);
  assert_true(r.store.data == NULL);

  /* Large attachments, many of them, at the limit. */
  sio_packet_limits lim = {.max_attachments = 4};
  const char *t3 = "54-[\"big\"," PH(3) "," PH(2) "," PH(1) "," PH(0) "]";
  assert_int_equal(sio_packet_decode(t3, strlen(t3), &lim, &pkt), 0);
  assert_int_equal(sio_packet_reasm_start(&r, t3, strlen(t3), &pkt), 0);
  static uint8_t big[4][70000];
  for (int i = 0; i < 4; i++) {
    memset(big[i], 'a' + i, sizeof big[i]);
    assert_int_equal(sio_packet_reasm_add(&r, big[i], sizeof big[i] - (size_t)i), i == 3);
  }
  assert_int_equal(sio_packet_reasm_take(&r, &pkt, atts), 0);
  assert_int_equal(sio_packet_args(&pkt, atts, a, 4), 4);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(a[i].bin.len, sizeof big[0] - (size_t)(3 - i));
    assert_memory_equal(a[i].bin.p, big[3 - i], a[i].bin.len);
  }
  sio_packet_reasm_free(&r);
  assert_true(r.store.data == NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_examples), cmocka_unit_test(test_encode_examples),
      cmocka_unit_test(test_decode_event_name), cmocka_unit_test(test_decode_malformed),
      cmocka_unit_test(test_limits),          cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_reserved), cmocka_unit_test(test_reserved_escaped),
      cmocka_unit_test(test_args_checked),        cmocka_unit_test(test_encode_helpers),
      cmocka_unit_test(test_encode_errors),   cmocka_unit_test(test_encode_args),
      cmocka_unit_test(test_args),            cmocka_unit_test(test_reassembly),
      cmocka_unit_test(test_noted_elements),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
