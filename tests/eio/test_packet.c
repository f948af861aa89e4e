#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "eio/packet.h"
#include "wsio.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static const char *const TYPE_DATA[] = {"", "probe", "4€ ünï", "{\"a\":[1,2]}"};

static void assert_packet(const eio_packet *p, eio_packet_type type, int binary, const void *data, size_t len) {
  assert_int_equal(p->type, type);
  assert_int_equal(p->binary, binary);
  assert_int_equal(p->len, len);
  if (len) assert_memory_equal(p->data, data, len);
}

/* Copies s to the very end of a readable page followed by an unreadable one, so any over-read faults. */
static uint8_t *guarded(const void *s, size_t n, void **map, size_t *map_len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t pages = (n + page - 1) / page + 1;
  uint8_t *m = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(m != MAP_FAILED);
  assert_int_equal(mprotect(m + (pages - 1) * page, page, PROT_NONE), 0);
  uint8_t *p = m + (pages - 1) * page - n;
  if (n) memcpy(p, s, n);
  *map = m;
  *map_len = pages * page;
  return p;
}

/* ---- WebSocket ---------------------------------------------------------------------------------- */

static void test_ws_every_type_both_ways(void **state) {
  (void)state;
  for (int t = EIO_OPEN; t <= EIO_NOOP; t++) {
    for (size_t d = 0; d < sizeof TYPE_DATA / sizeof TYPE_DATA[0]; d++) {
      const char *data = TYPE_DATA[d];
      size_t n = strlen(data);
      buf out = {0};
      eio_packet p = {(eio_packet_type)t, 0, (const uint8_t *)data, n};
      assert_int_equal(eio_ws_encode(&p, &out), WSIO_TEXT);
      assert_int_equal(out.len, n + 1);
      assert_int_equal(out.data[0], '0' + t);
      assert_memory_equal(out.data + 1, data, n);

      eio_packet q;
      memset(&q, 0x5a, sizeof q);
      assert_int_equal(eio_ws_decode(out.data, out.len, 0, NULL, &q), 0);
      assert_packet(&q, (eio_packet_type)t, 0, data, n);
      assert_ptr_equal(q.data, out.data + 1); /* a view, not a copy */
      buf_free(&out);
    }
  }
}

static void test_ws_binary(void **state) {
  (void)state;
  static const uint8_t bytes[] = {1, 2, 3, 4, 0, 0x1e, 0xff, '4'};
  eio_packet q;
  assert_int_equal(eio_ws_decode(bytes, sizeof bytes, 1, NULL, &q), 0);
  assert_packet(&q, EIO_MESSAGE, 1, bytes, sizeof bytes);
  assert_ptr_equal(q.data, bytes);
  /* A binary frame is a message whatever its first byte, and may be empty. */
  assert_int_equal(eio_ws_decode(bytes, 0, 1, NULL, &q), 0);
  assert_packet(&q, EIO_MESSAGE, 1, NULL, 0);

  buf out = {0};
  eio_packet p = {EIO_MESSAGE, 1, bytes, sizeof bytes};
  assert_int_equal(eio_ws_encode(&p, &out), WSIO_BINARY);
  assert_int_equal(out.len, sizeof bytes);
  assert_memory_equal(out.data, bytes, sizeof bytes);
  p.len = 0;
  p.data = NULL;
  assert_int_equal(eio_ws_encode(&p, &out), WSIO_BINARY);
  assert_int_equal(out.len, sizeof bytes);
  buf_free(&out);
}

static void test_ws_text_base64(void **state) {
  (void)state;
  static const uint8_t want[] = {1, 2, 3, 4};
  buf bin = {0};
  eio_packet q;
  assert_int_equal(eio_ws_decode(S("bAQIDBA=="), 0, &bin, &q), 0);
  assert_packet(&q, EIO_MESSAGE, 1, want, 4);
  assert_ptr_equal(q.data, bin.data);
  assert_int_equal(bin.len, 4);
  /* Without a buf, base64 text is refused. */
  assert_int_equal(eio_ws_decode(S("bAQIDBA=="), 0, NULL, &q), WSIO_EPROTO);
  assert_int_equal(eio_ws_decode(S("bAQIDBA="), 0, &bin, &q), WSIO_EPROTO);
  assert_int_equal(eio_ws_decode(S("b"), 0, &bin, &q), 0);
  assert_packet(&q, EIO_MESSAGE, 1, NULL, 0);
  buf_free(&bin);
}

static void test_ws_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {"", "7", "8hello", "abc", "/", "x", " 4", "\x1e", "B", "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eio_packet q;
    buf bin = {0};
    size_t n = i == 0 ? 0 : strlen(bad[i]);
    assert_int_equal(eio_ws_decode((const uint8_t *)bad[i], n, 0, &bin, &q), WSIO_EPROTO);
    assert_null(bin.data);
  }
}

static void test_encode_invalid(void **state) {
  (void)state;
  static const uint8_t d[] = "x";
  const eio_packet bad[] = {
      {(eio_packet_type)7, 0, d, 1},  {(eio_packet_type)-1, 0, d, 1}, {EIO_PING, 1, d, 1},
      {EIO_OPEN, 1, d, 1},            {EIO_MESSAGE, 0, NULL, 3},      {EIO_MESSAGE, 1, NULL, 3},
  };
  buf out = {0};
  assert_int_equal(buf_append(&out, "keep", 4), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(eio_ws_encode(&bad[i], &out), WSIO_EINVAL);
    assert_int_equal(eio_payload_append(&out, &bad[i]), WSIO_EINVAL);
    assert_int_equal(out.len, 4);
  }
  /* A record separator in text would split the packet when polling; WebSocket carries it fine. */
  eio_packet sep = {EIO_MESSAGE, 0, (const uint8_t *)"a\x1e" "b", 3};
  assert_int_equal(eio_payload_append(&out, &sep), WSIO_EINVAL);
  assert_int_equal(out.len, 4);
  assert_int_equal(eio_ws_encode(&sep, &out), WSIO_TEXT);
  assert_memory_equal(out.data, "keep4a\x1e" "b", 8);
  buf_free(&out);
}

/* ---- polling payloads -------------------------------------------------------------------------- */

/* Decodes a whole payload into at most 16 packets; text data is checked to be a view into body. */
static int decode_all(const uint8_t *body, size_t len, buf *bins, eio_packet *out, size_t max_packets,
                      size_t max_bytes) {
  eio_payload_iter it;
  int rc = eio_payload_iter_init(&it, body, len, max_packets, max_bytes);
  if (rc < 0) {
    assert_int_equal(eio_payload_next(&it, &bins[0], &out[0]), rc);
    return rc;
  }
  int n = 0;
  while (n < 16 && (rc = eio_payload_next(&it, &bins[n], &out[n])) == 1) {
    if (!out[n].binary && out[n].len) assert_true(out[n].data > body && out[n].data < body + len);
    n++;
  }
  assert_int_not_equal(n, 16);
  /* Sticky end or error. */
  eio_packet junk;
  assert_int_equal(eio_payload_next(&it, &bins[15], &junk), rc);
  int check = eio_payload_check(body, len, max_packets, max_bytes);
  assert_int_equal(check, rc < 0 ? rc : n);
  return rc < 0 ? rc : n;
}

static void free_bins(buf *bins) {
  for (int i = 0; i < 16; i++) buf_free(&bins[i]);
}

static void test_payload_spec_examples(void **state) {
  (void)state;
  buf bins[16] = {{0}};
  eio_packet p[16];
  assert_int_equal(decode_all(S("4hello\x1e" "2\x1e" "4world"), bins, p, 0, 0), 3);
  assert_packet(&p[0], EIO_MESSAGE, 0, "hello", 5);
  assert_packet(&p[1], EIO_PING, 0, NULL, 0);
  assert_packet(&p[2], EIO_MESSAGE, 0, "world", 5);

  assert_int_equal(decode_all(S("4hello\x1e" "2\x1e" "4€"), bins, p, 0, 0), 3);
  assert_packet(&p[2], EIO_MESSAGE, 0, "\xe2\x82\xac", 3);

  static const uint8_t four[] = {1, 2, 3, 4};
  assert_int_equal(decode_all(S("4hello\x1e" "bAQIDBA=="), bins, p, 0, 0), 2);
  assert_packet(&p[0], EIO_MESSAGE, 0, "hello", 5);
  assert_packet(&p[1], EIO_MESSAGE, 1, four, 4);
  assert_int_equal(decode_all(S("4test1\x1e" "4test2\x1e" "4test3"), bins, p, 0, 0), 3);
  assert_packet(&p[1], EIO_MESSAGE, 0, "test2", 5);
  assert_int_equal(decode_all(S("2probe"), bins, p, 0, 0), 1);
  assert_packet(&p[0], EIO_PING, 0, "probe", 5);
  /* Text-only payloads never touch the binary buffers. */
  assert_int_equal(decode_all(S("3\x1e" "1\x1e" "6"), bins, p, 0, 0), 3);
  assert_null(bins[2].data);
  free_bins(bins);

  /* And the encoder writes exactly those bodies. */
  buf out = {0};
  eio_packet e[] = {{EIO_MESSAGE, 0, (const uint8_t *)"hello", 5}, {EIO_PING, 0, NULL, 0},
                    {EIO_MESSAGE, 0, (const uint8_t *)"€", 3}, {EIO_MESSAGE, 1, four, 4}};
  for (int i = 0; i < 3; i++) assert_int_equal(eio_payload_append(&out, &e[i]), 0);
  assert_int_equal(out.len, sizeof "4hello\x1e" "2\x1e" "4€" - 1);
  assert_memory_equal(out.data, "4hello\x1e" "2\x1e" "4€", out.len);
  out.len = 0;
  assert_int_equal(eio_payload_append(&out, &e[0]), 0);
  assert_int_equal(eio_payload_append(&out, &e[3]), 0);
  assert_int_equal(out.len, 16);
  assert_memory_equal(out.data, "4hello\x1e" "bAQIDBA==", 16);
  assert_int_equal(eio_payload_packet_len(&e[3]), 9);
  assert_int_equal(eio_payload_packet_len(&e[0]), 6);
  buf_free(&out);
}

static void test_payload_every_type(void **state) {
  (void)state;
  buf out = {0};
  for (int t = EIO_OPEN; t <= EIO_NOOP; t++)
    for (size_t d = 0; d < sizeof TYPE_DATA / sizeof TYPE_DATA[0]; d++) {
      eio_packet p = {(eio_packet_type)t, 0, (const uint8_t *)TYPE_DATA[d], strlen(TYPE_DATA[d])};
      size_t before = out.len;
      assert_int_equal(eio_payload_append(&out, &p), 0);
      assert_int_equal(out.len - before, eio_payload_packet_len(&p) + (before ? 1 : 0));
    }
  eio_payload_iter it;
  assert_int_equal(eio_payload_iter_init(&it, out.data, out.len, 28, out.len), 0);
  buf bin = {0};
  eio_packet q;
  for (int t = EIO_OPEN; t <= EIO_NOOP; t++)
    for (size_t d = 0; d < sizeof TYPE_DATA / sizeof TYPE_DATA[0]; d++) {
      assert_int_equal(eio_payload_next(&it, &bin, &q), 1);
      assert_packet(&q, (eio_packet_type)t, 0, TYPE_DATA[d], strlen(TYPE_DATA[d]));
    }
  assert_int_equal(eio_payload_next(&it, &bin, &q), 0);
  assert_null(bin.data);
  buf_free(&out);
}

/* Every size 0..1000 of random bytes: the encoding matches OpenSSL's base64 and decodes back. */
static void test_base64_roundtrip(void **state) {
  (void)state;
  srand(1234);
  uint8_t raw[1000];
  char oracle[1400];
  buf out = {0}, bin = {0};
  for (size_t n = 0; n <= sizeof raw; n++) {
    for (size_t i = 0; i < n; i++) raw[i] = (uint8_t)rand();
    out.len = 0;
    eio_packet p = {EIO_MESSAGE, 1, raw, n};
    assert_int_equal(eio_payload_append(&out, &p), 0);
    int olen = EVP_EncodeBlock((unsigned char *)oracle, raw, (int)n);
    assert_int_equal(out.len, (size_t)olen + 1);
    assert_int_equal(eio_payload_packet_len(&p), out.len);
    assert_int_equal(out.data[0], 'b');
    assert_memory_equal(out.data + 1, oracle, (size_t)olen);

    eio_payload_iter it;
    eio_packet q;
    assert_int_equal(eio_payload_iter_init(&it, out.data, out.len, 1, 0), 0);
    assert_int_equal(eio_payload_next(&it, &bin, &q), 1);
    assert_packet(&q, EIO_MESSAGE, 1, raw, n);
    assert_int_equal(eio_payload_next(&it, &bin, &q), 0);
    assert_int_equal(eio_ws_decode(out.data, out.len, 0, &bin, &q), 0);
    assert_packet(&q, EIO_MESSAGE, 1, raw, n);

    /* Unpadded base64 is accepted too. */
    size_t unpadded = out.len;
    while (out.data[unpadded - 1] == '=') unpadded--;
    assert_int_equal(eio_payload_check(out.data, unpadded, 0, 0), 1);
    assert_int_equal(eio_ws_decode(out.data, unpadded, 0, &bin, &q), 0);
    assert_packet(&q, EIO_MESSAGE, 1, raw, n);
  }
  buf_free(&out);
  buf_free(&bin);
}

static void test_base64_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "bA",     /* a lone sextet is not a byte */
      "bAQIDB", /* nor is a lone sextet after a full group */
      "b=",     "b==",       "bA===",     "bAQ=",  "bAQI==", "bAQIDBA=", "bAR==", "bAQJ=",
      "bAQIDBA==x", "bAQ==AQID", "bAQ-D", "bAQ_D", "bAQ D", "bAQ\nD", "b\xc3\xa9\xc3\xa9", "bAQIDBA==="};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *s = bad[i];
    size_t n = strlen(s);
    void *map;
    size_t map_len;
    uint8_t *g = guarded(s, n, &map, &map_len);
    buf bin = {0};
    eio_packet q;
    eio_payload_iter it;
    assert_int_equal(eio_payload_iter_init(&it, g, n, 0, 0), 0);
    int rc = eio_payload_next(&it, &bin, &q);
    assert_int_equal(rc, WSIO_EPROTO);
    assert_int_equal(eio_payload_check(g, n, 0, 0), WSIO_EPROTO);
    assert_int_equal(eio_ws_decode(g, n, 0, &bin, &q), WSIO_EPROTO);
    buf_free(&bin);
    munmap(map, map_len);
  }
  /* Spare bits must be zero: "AQ==" is 0x01, "AR==" is not canonical. */
  assert_int_equal(eio_payload_check(S("bAQ=="), 0, 0), 1);
  assert_int_equal(eio_payload_check(S("bAQI="), 0, 0), 1);
  assert_int_equal(eio_payload_check(S("bAQJ="), 0, 0), WSIO_EPROTO);
}

static void test_payload_malformed(void **state) {
  (void)state;
  static const struct {
    const char *s;
    size_t len;
    int good; /* packets yielded before the error */
  } cases[] = {
      {"", 0, 0},           {"\x1e", 1, 0},          {"\x1e" "4a", 3, 0},   {"4a\x1e", 3, 1},
      {"4a\x1e\x1e" "4b", 6, 1}, {"7", 1, 0},        {"abc", 3, 0},         {"4a\x1e" "9", 4, 1},
      {"4\xff", 2, 0},      {"4\xc3", 2, 0},         {"4\xed\xa0\x80", 4, 0}, {"2\x1e" "4\xc0\xaf", 5, 1},
      {"\x00", 1, 0},       {"4a\x1e" "b!!!", 7, 1}, {"40\x1e" "B", 4, 1},   {"4\x1e" "4\x1e" "x4", 6, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    void *map;
    size_t map_len;
    uint8_t *g = guarded(cases[i].s, cases[i].len, &map, &map_len);
    buf bins[16] = {{0}};
    eio_packet p[16];
    assert_int_equal(decode_all(g, cases[i].len, bins, p, 0, 0), WSIO_EPROTO);
    eio_payload_iter it;
    eio_payload_iter_init(&it, g, cases[i].len, 0, 0);
    int n = 0;
    while (eio_payload_next(&it, &bins[0], &p[0]) == 1) n++;
    assert_int_equal(n, cases[i].good);
    free_bins(bins);
    munmap(map, map_len);
  }
}

static void test_payload_splitting(void **state) {
  (void)state;
  buf bins[16] = {{0}};
  eio_packet p[16];
  /* A type character alone is a packet with empty data. */
  assert_int_equal(decode_all(S("4"), bins, p, 0, 0), 1);
  assert_packet(&p[0], EIO_MESSAGE, 0, NULL, 0);
  assert_int_equal(decode_all(S("4\x1e" "4"), bins, p, 0, 0), 2);
  assert_packet(&p[1], EIO_MESSAGE, 0, NULL, 0);
  /* Only 0x1e splits: other control bytes, NUL and digits are data. */
  assert_int_equal(decode_all(S("4a\x1f" "b\x00\x1d" "2\x1e" "42"), bins, p, 0, 0), 2);
  assert_packet(&p[0], EIO_MESSAGE, 0, "a\x1f" "b\x00\x1d" "2", 6);
  assert_packet(&p[1], EIO_MESSAGE, 0, "2", 1);
  /* Type characters inside data are data. */
  assert_int_equal(decode_all(S("0{\"sid\":\"x\"}\x1e" "bAQ==\x1e" "40"), bins, p, 0, 0), 3);
  assert_packet(&p[0], EIO_OPEN, 0, "{\"sid\":\"x\"}", 11);
  assert_packet(&p[1], EIO_MESSAGE, 1, "\x01", 1);
  assert_packet(&p[2], EIO_MESSAGE, 0, "0", 1);
  /* Each binary packet decodes into its own buffer, so both stay valid here. */
  assert_int_equal(decode_all(S("bAQ==\x1e" "bAg=="), bins, p, 0, 0), 2);
  assert_packet(&p[0], EIO_MESSAGE, 1, "\x01", 1);
  assert_packet(&p[1], EIO_MESSAGE, 1, "\x02", 1);
  /* An empty binary packet. */
  assert_int_equal(decode_all(S("b\x1e" "b"), bins, p, 0, 0), 2);
  assert_packet(&p[1], EIO_MESSAGE, 1, NULL, 0);
  /* The separator goes only between packets. */
  buf out = {0};
  eio_packet e = {EIO_NOOP, 0, NULL, 0};
  assert_int_equal(eio_payload_append(&out, &e), 0);
  assert_int_equal(out.len, 1);
  assert_int_equal(eio_payload_append(&out, &e), 0);
  assert_memory_equal(out.data, "6\x1e" "6", 3);
  buf_free(&out);
  free_bins(bins);
}

static void test_payload_limits(void **state) {
  (void)state;
  buf bins[16] = {{0}};
  eio_packet p[16];
  const uint8_t *body = (const uint8_t *)"4a\x1e" "2\x1e" "bAQ==";
  size_t len = 10;
  assert_int_equal(decode_all(body, len, bins, p, 3, 10), 3);
  assert_int_equal(decode_all(body, len, bins, p, 2, 10), WSIO_ETOOBIG);
  assert_int_equal(decode_all(body, len, bins, p, 1, 0), WSIO_ETOOBIG);
  assert_int_equal(decode_all(body, len, bins, p, 3, 9), WSIO_ETOOBIG);
  assert_int_equal(decode_all(body, len, bins, p, 0, 0), 3);

  eio_payload_iter it;
  assert_int_equal(eio_payload_iter_init(&it, body, len, 0, 9), WSIO_ETOOBIG);
  assert_int_equal(eio_payload_next(&it, &bins[0], &p[0]), WSIO_ETOOBIG);
  /* The count limit yields the allowed packets first. */
  assert_int_equal(eio_payload_iter_init(&it, body, len, 2, 0), 0);
  assert_int_equal(eio_payload_next(&it, &bins[0], &p[0]), 1);
  assert_int_equal(eio_payload_next(&it, &bins[0], &p[0]), 1);
  assert_int_equal(eio_payload_next(&it, &bins[0], &p[0]), WSIO_ETOOBIG);
  assert_int_equal(eio_payload_next(&it, &bins[0], &p[0]), WSIO_ETOOBIG);
  /* A protocol error before the limit is reported as such. */
  assert_int_equal(eio_payload_check(S("4a\x1e" "x\x1e" "4b"), 1, 0), WSIO_ETOOBIG);
  assert_int_equal(eio_payload_check(S("x\x1e" "4a\x1e" "4b"), 1, 0), WSIO_EPROTO);
  free_bins(bins);
}

/* Thousands of mixed packets through one payload and back. */
static void test_payload_many(void **state) {
  (void)state;
  srand(99);
  enum { COUNT = 5000 };
  static uint8_t data[COUNT][40];
  static eio_packet sent[COUNT];
  buf out = {0};
  for (int i = 0; i < COUNT; i++) {
    size_t n = (size_t)rand() % sizeof data[i];
    int binary = rand() % 3 == 0;
    for (size_t j = 0; j < n; j++) data[i][j] = binary ? (uint8_t)rand() : (uint8_t)(' ' + rand() % 95);
    sent[i] = (eio_packet){binary ? EIO_MESSAGE : (eio_packet_type)(rand() % 7), binary, data[i], n};
    assert_int_equal(eio_payload_append(&out, &sent[i]), 0);
  }
  assert_int_equal(eio_payload_check(out.data, out.len, COUNT, out.len), COUNT);
  assert_int_equal(eio_payload_check(out.data, out.len, COUNT - 1, 0), WSIO_ETOOBIG);
  eio_payload_iter it;
  assert_int_equal(eio_payload_iter_init(&it, out.data, out.len, COUNT, 0), 0);
  buf bin = {0};
  eio_packet q;
  for (int i = 0; i < COUNT; i++) {
    assert_int_equal(eio_payload_next(&it, &bin, &q), 1);
    assert_packet(&q, sent[i].type, sent[i].binary, sent[i].data, sent[i].len);
  }
  assert_int_equal(eio_payload_next(&it, &bin, &q), 0);
  buf_free(&bin);
  buf_free(&out);
}

/* ---- handshake, sid, errors -------------------------------------------------------------------- */

static void test_open_json(void **state) {
  (void)state;
  buf out = {0};
  assert_int_equal(eio_open_json(&out, "lv_VI97HAXpY6yYWAAAC", 1, 25000, 20000, 1000000), 0);
  static const char want[] = "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
                             "\"pingTimeout\":20000,\"maxPayload\":1000000}";
  assert_int_equal(out.len, sizeof want - 1);
  assert_memory_equal(out.data, want, out.len);

  /* Appends, so '0' can go first; no upgrades on WebSocket; big numbers. */
  out.len = 0;
  assert_int_equal(buf_append(&out, "0", 1), 0);
  assert_int_equal(eio_open_json(&out, "abc", 0, 300, 200, UINT64_C(10000000000)), 0);
  static const char want2[] = "0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":300,\"pingTimeout\":200,"
                              "\"maxPayload\":10000000000}";
  assert_int_equal(out.len, sizeof want2 - 1);
  assert_memory_equal(out.data, want2, out.len);

  out.len = 0;
  assert_int_equal(eio_open_json(&out, "a\"b\\c\x01", 0, 0, 0, 0), 0);
  static const char want3[] = "{\"sid\":\"a\\\"b\\\\c\\u0001\",\"upgrades\":[],\"pingInterval\":0,\"pingTimeout\":0,"
                              "\"maxPayload\":0}";
  assert_int_equal(out.len, sizeof want3 - 1);
  assert_memory_equal(out.data, want3, out.len);
  assert_int_equal(eio_open_json(&out, NULL, 0, 0, 0, 0), WSIO_EINVAL);
  assert_int_equal(out.len, sizeof want3 - 1);
  buf_free(&out);
}

static int cmp_sid(const void *a, const void *b) { return memcmp(a, b, EIO_SID_LEN); }

static void test_sid(void **state) {
  (void)state;
  enum { N = 20000 };
  static char sids[N][EIO_SID_LEN + 1];
  int seen[256] = {0};
  int seen_last[256] = {0};
  for (int i = 0; i < N; i++) {
    assert_int_equal(eio_sid_generate(sids[i]), 0);
    assert_int_equal(strlen(sids[i]), EIO_SID_LEN);
    for (int j = 0; j < EIO_SID_LEN; j++) {
      unsigned char c = (unsigned char)sids[i][j];
      assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_');
      seen[c] = 1;
    }
    seen_last[(unsigned char)sids[i][EIO_SID_LEN - 1]] = 1;
  }
  /* Every character of the alphabet shows up, in every position including the last (120 bits fill all 20). */
  int kinds = 0, kinds_last = 0;
  for (int c = 0; c < 256; c++) {
    kinds += seen[c];
    kinds_last += seen_last[c];
  }
  assert_int_equal(kinds, 64);
  assert_int_equal(kinds_last, 64);
  qsort(sids, N, sizeof sids[0], cmp_sid);
  for (int i = 1; i < N; i++) assert_int_not_equal(memcmp(sids[i - 1], sids[i], EIO_SID_LEN), 0);
}

static void test_error_bodies(void **state) {
  (void)state;
  assert_string_equal(eio_error_body(EIO_ERR_UNKNOWN_TRANSPORT), "{\"code\":0,\"message\":\"Transport unknown\"}");
  assert_string_equal(eio_error_body(EIO_ERR_UNKNOWN_SID), "{\"code\":1,\"message\":\"Session ID unknown\"}");
  assert_string_equal(eio_error_body(EIO_ERR_BAD_HANDSHAKE_METHOD),
                      "{\"code\":2,\"message\":\"Bad handshake method\"}");
  assert_string_equal(eio_error_body(EIO_ERR_BAD_REQUEST), "{\"code\":3,\"message\":\"Bad request\"}");
  assert_string_equal(eio_error_body(EIO_ERR_FORBIDDEN), "{\"code\":4,\"message\":\"Forbidden\"}");
  assert_string_equal(eio_error_body(EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION),
                      "{\"code\":5,\"message\":\"Unsupported protocol version\"}");
  assert_null(eio_error_body(6));
  assert_null(eio_error_body(-1));
  assert_int_equal(eio_error_status(EIO_ERR_FORBIDDEN), 403);
  for (int c = 0; c <= 5; c++)
    if (c != EIO_ERR_FORBIDDEN) assert_int_equal(eio_error_status(c), 400);
}

/* ---- query ------------------------------------------------------------------------------------- */

static eio_query parse_ok(const char *q) {
  eio_query r;
  assert_int_equal(eio_query_parse(q, strlen(q), &r), 0);
  return r;
}

static void test_query_parse(void **state) {
  (void)state;
  eio_query q = parse_ok("EIO=4&transport=polling&t=N8hyd6w");
  assert_int_equal(q.eio, 4);
  assert_int_equal(q.transport, EIO_TRANSPORT_POLLING);
  assert_int_equal(q.has_sid, 0);
  assert_int_equal(q.has_t, 1);
  assert_int_equal(q.b64, 0);

  q = parse_ok("?EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC&b64=1");
  assert_int_equal(q.transport, EIO_TRANSPORT_WEBSOCKET);
  assert_int_equal(q.has_sid, 1);
  assert_string_equal(q.sid, "lv_VI97HAXpY6yYWAAAC");
  assert_int_equal(q.b64, 1);
  assert_int_equal(q.has_t, 0);

  /* Percent-decoding of keys and values; the last occurrence wins. */
  q = parse_ok("E%49O=3&transport=web%73ocket&sid=a%2Bb+c&sid=x%2fy&&b64=");
  assert_int_equal(q.eio, 3);
  assert_int_equal(q.transport, EIO_TRANSPORT_WEBSOCKET);
  assert_string_equal(q.sid, "x/y");
  assert_int_equal(q.b64, 0);
  q = parse_ok("sid=a%2Bb+c");
  assert_string_equal(q.sid, "a+b c");

  /* Missing and odd values. */
  q = parse_ok("");
  assert_int_equal(q.eio, -1);
  assert_int_equal(q.transport, EIO_TRANSPORT_NONE);
  assert_int_equal(q.has_sid, 0);
  static const char *const eio_bad[] = {"EIO=abc", "EIO=", "EIO", "EIO=04", "EIO=4a", "EIO=1000", "EIO=-4",
                                        "EIO=4%00"};
  for (size_t i = 0; i < sizeof eio_bad / sizeof eio_bad[0]; i++) assert_int_equal(parse_ok(eio_bad[i]).eio, -1);
  assert_int_equal(parse_ok("EIO=999").eio, 999);
  assert_int_equal(parse_ok("EIO=0").eio, 0);
  assert_int_equal(parse_ok("transport=abc").transport, EIO_TRANSPORT_UNKNOWN);
  assert_int_equal(parse_ok("transport=").transport, EIO_TRANSPORT_UNKNOWN);
  assert_int_equal(parse_ok("transport=webtransport").transport, EIO_TRANSPORT_UNKNOWN);
  assert_int_equal(parse_ok("transport=Polling").transport, EIO_TRANSPORT_UNKNOWN);
  assert_int_equal(parse_ok("transport=pollingpollingpolling").transport, EIO_TRANSPORT_UNKNOWN);
  assert_int_equal(parse_ok("xtransport=polling&EIOx=4").transport, EIO_TRANSPORT_NONE);
  assert_int_equal(parse_ok("sid=").has_sid, 0);

  /* A sid that cannot be ours is present but matches nothing. */
  char longq[200] = "sid=";
  memset(longq + 4, 'A', EIO_QUERY_SID_MAX + 1);
  q = parse_ok(longq);
  assert_int_equal(q.has_sid, 1);
  assert_string_equal(q.sid, "");
  longq[4 + EIO_QUERY_SID_MAX] = '\0';
  q = parse_ok(longq);
  assert_int_equal(strlen(q.sid), EIO_QUERY_SID_MAX);
  q = parse_ok("sid=abc%00def");
  assert_int_equal(q.has_sid, 1);
  assert_string_equal(q.sid, "");

  /* Bad escapes in a value we read are a bad request; elsewhere they are ignored. */
  static const char *const bad[] = {"sid=%", "sid=%4", "sid=%zz", "EIO=%g4", "transport=%", "b64=%x", "t=1%"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eio_query r;
    assert_int_equal(eio_query_parse(bad[i], strlen(bad[i]), &r), WSIO_EPROTO);
  }
  q = parse_ok("x=%&EIO=4&%zz=1");
  assert_int_equal(q.eio, 4);
  /* The length bounds the query: no reading past it. */
  eio_query r;
  assert_int_equal(eio_query_parse("EIO=45", 5, &r), 0);
  assert_int_equal(r.eio, 4);
}

static void test_query_get(void **state) {
  (void)state;
  const char *q = "?EIO=4&transport=polling&t=N8h%2Dyd6w&flag&sid=abc";
  size_t n = strlen(q);
  char out[16];
  assert_int_equal(eio_query_get(q, n, "t", out, sizeof out), 8);
  assert_string_equal(out, "N8h-yd6w");
  assert_int_equal(eio_query_get(q, n, "flag", out, sizeof out), 0);
  assert_string_equal(out, "");
  assert_int_equal(eio_query_get(q, n, "EIO", out, sizeof out), 1);
  assert_string_equal(out, "4");
  assert_int_equal(eio_query_get(q, n, "nope", out, sizeof out), WSIO_ENOTFOUND);
  assert_int_equal(eio_query_get("k=1&k=22&kk=3", 13, "k", out, sizeof out), 2); /* the last one wins */
  assert_string_equal(out, "22");
  const char *lk = "a_rather_long_parameter_name=v&my+k%65y=w&bad%4=x&ba=y";
  assert_int_equal(eio_query_get(lk, strlen(lk), "a_rather_long_parameter_name", out, sizeof out), 1);
  assert_string_equal(out, "v");
  assert_int_equal(eio_query_get(lk, strlen(lk), "my key", out, sizeof out), 1);
  assert_string_equal(out, "w");
  assert_int_equal(eio_query_get(lk, strlen(lk), "a_rather_long_parameter_nam", out, sizeof out), WSIO_ENOTFOUND);
  assert_int_equal(eio_query_get(lk, strlen(lk), "bad", out, sizeof out), WSIO_ENOTFOUND);
  assert_int_equal(eio_query_get(lk, strlen(lk), "ba", out, sizeof out), 1);
  assert_int_equal(eio_query_get(q, n, "eio", out, sizeof out), WSIO_ENOTFOUND);
  assert_int_equal(eio_query_get(q, n, "sid", out, 4), 3);
  assert_int_equal(eio_query_get(q, n, "sid", out, 3), WSIO_ETOOBIG);
  assert_int_equal(eio_query_get(q, n, "transport", out, 7), WSIO_ETOOBIG);
  assert_int_equal(eio_query_get("a=%4", 4, "a", out, sizeof out), WSIO_EPROTO);
  /* Guarded: a '%' at the very end of the input must not read on. */
  void *map;
  size_t map_len;
  uint8_t *g = guarded("a=1%", 4, &map, &map_len);
  assert_int_equal(eio_query_get((const char *)g, 4, "a", out, sizeof out), WSIO_EPROTO);
  eio_query r;
  assert_int_equal(eio_query_parse((const char *)g + 2, 2, &r), 0);
  munmap(map, map_len);
}

/* Workers: the owning worker's index in the first two characters, read back for every index; ids of
 * another shape (short, long, outside the alphabet anywhere) are no worker's. */
static void test_sid_worker(void **state) {
  (void)state;
  char sid[EIO_SID_LEN + 1];
  for (unsigned w = 0; w < EIO_SID_MAX_WORKERS; w += 7) {
    assert_int_equal(eio_sid_generate(sid), 0);
    eio_sid_set_worker(sid, w);
    assert_int_equal(strlen(sid), EIO_SID_LEN);
    assert_int_equal(eio_sid_worker(sid), (int)w);
  }
  eio_sid_set_worker(sid, 1);
  assert_memory_equal(sid, "AB", 2);
  assert_int_equal(eio_sid_worker("A"), -1);
  assert_int_equal(eio_sid_worker(""), -1);
  assert_int_equal(eio_sid_worker("A.xyz"), -1);
  assert_int_equal(eio_sid_worker("__xyz"), -1);
  assert_int_equal(eio_sid_worker("__abcdefghijklmnopqr"), EIO_SID_MAX_WORKERS - 1);
  assert_int_equal(eio_sid_worker("AB-_cdefghijklmnopqr"), 1);
  assert_int_equal(eio_sid_worker("ABabcdefghijklmnopq"), -1);    /* 19 */
  assert_int_equal(eio_sid_worker("ABabcdefghijklmnopqrs"), -1);  /* 21 */
  assert_int_equal(eio_sid_worker("ABabcdefghijklmnopq="), -1);
  assert_int_equal(eio_sid_worker("ABabcdefg.ijklmnopqr"), -1);
}

static void test_error_json(void **st) {
  (void)st;
  buf b = {0};
  assert_int_equal(eio_error_json(&b, EIO_ERR_FORBIDDEN, NULL), 0);
  assert_int_equal(b.len, strlen(eio_error_body(EIO_ERR_FORBIDDEN)));
  assert_memory_equal(b.data, eio_error_body(EIO_ERR_FORBIDDEN), b.len);
  b.len = 0;
  assert_int_equal(eio_error_json(&b, EIO_ERR_FORBIDDEN, "say \"no\"\\\n\x01 \xc3\xa9"), 0);
  const char *want = "{\"code\":4,\"message\":\"say \\\"no\\\"\\\\\\u000a\\u0001 \xc3\xa9\"}";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);
  buf_free(&b);
}

static void test_accept_encoding(void **st) {
  (void)st;
  struct { const char *v; int want; } cases[] = {
      {"gzip, deflate, br", EIO_ENC_GZIP},
      {"br, deflate", EIO_ENC_DEFLATE},
      {"DEFLATE , GZip", EIO_ENC_GZIP},
      {"gzip;q=0, deflate", EIO_ENC_DEFLATE},
      {"gzip; q=0.000, deflate;q=0.0", EIO_ENC_IDENTITY},
      {"gzip;q=0.5", EIO_ENC_GZIP},
      {"gzip;q=0.01", EIO_ENC_GZIP},
      {"*", EIO_ENC_GZIP},
      {"*;q=0", EIO_ENC_IDENTITY},
      {"identity", EIO_ENC_IDENTITY},
      {"br, zstd", EIO_ENC_IDENTITY},
      {"gzipx, xgzip, gzi, deflat", EIO_ENC_IDENTITY},
      {"", EIO_ENC_IDENTITY},
      {",,, ;q=0,", EIO_ENC_IDENTITY},
      {"x-gzip", EIO_ENC_IDENTITY},
      {"\tgzip\t;\tq=1", EIO_ENC_GZIP},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (eio_accept_encoding(cases[i].v, strlen(cases[i].v)) != cases[i].want) fail_msg("Accept-Encoding: %s", cases[i].v);
  }
  /* the length bounds the scan: "gzip" cut to "gz" is nothing */
  assert_int_equal(eio_accept_encoding("gzip", 2), EIO_ENC_IDENTITY);
  assert_int_equal(eio_accept_encoding("deflate, gzip;q=0", 10), EIO_ENC_DEFLATE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sid_worker),
      cmocka_unit_test(test_ws_every_type_both_ways),
      cmocka_unit_test(test_ws_binary),
      cmocka_unit_test(test_ws_text_base64),
      cmocka_unit_test(test_ws_malformed),
      cmocka_unit_test(test_encode_invalid),
      cmocka_unit_test(test_payload_spec_examples),
      cmocka_unit_test(test_payload_every_type),
      cmocka_unit_test(test_base64_roundtrip),
      cmocka_unit_test(test_base64_malformed),
      cmocka_unit_test(test_payload_malformed),
      cmocka_unit_test(test_payload_splitting),
      cmocka_unit_test(test_payload_limits),
      cmocka_unit_test(test_payload_many),
      cmocka_unit_test(test_open_json),
      cmocka_unit_test(test_sid),
      cmocka_unit_test(test_error_bodies),
      cmocka_unit_test(test_query_parse),
      cmocka_unit_test(test_query_get),
      cmocka_unit_test(test_accept_encoding),
      cmocka_unit_test(test_error_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
