#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>
#include <zlib.h>

#include "util/buf.h"
#include "ws/frame.h"
#include "ws/session.h"
#include "util/utf8.h"
#include "wsio.h"

enum { FIN = 0x80, RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10 };
enum { TEXT = WS_OP_TEXT, BIN = WS_OP_BINARY, CONT = WS_OP_CONT, CLOSE = WS_OP_CLOSE, PING = WS_OP_PING,
       PONG = WS_OP_PONG };

static ws_deflate_shared *g_shared;
static const ws_pmd_params g_pmd = {1, 1, 15, 15};
static const ws_pmd_params g_pmd_context = {0, 0, 15, 15}; /* context takeover both ways */

/* ---- building client streams ---------------------------------------------------------------------- */

static uint32_t g_seed = 12345;

static uint8_t next_byte(void) {
  g_seed = g_seed * 1103515245u + 12345u;
  return (uint8_t)(g_seed >> 16);
}

/* Appends one frame with first byte b0 (FIN, RSV and opcode as on the wire) and a fresh masking key. */
static void put_masked(buf *b, uint8_t b0, const void *payload, size_t len, int masked) {
  uint8_t key[4] = {next_byte(), next_byte(), next_byte(), next_byte()};
  uint8_t h[WS_FRAME_HEADER_MAX];
  size_t hn = ws_frame_header_encode(h, 0, 0, 0, len, masked ? key : NULL);
  h[0] = b0;
  assert_int_equal(buf_append(b, h, hn), 0);
  size_t at = b->len;
  assert_int_equal(buf_append(b, payload, len), 0);
  if (masked)
    for (size_t i = 0; i < len; i++) b->data[at + i] ^= key[i & 3]; /* byte-wise, independent of ws_mask */
}

static void put(buf *b, uint8_t b0, const void *payload, size_t len) { put_masked(b, b0, payload, len, 1); }

static void put_str(buf *b, uint8_t b0, const char *s) { put(b, b0, s, strlen(s)); }

static void put_close(buf *b, unsigned code, const char *reason) {
  uint8_t p[200];
  size_t rl = strlen(reason);
  p[0] = (uint8_t)(code >> 8), p[1] = (uint8_t)code;
  memcpy(p + 2, reason, rl);
  put(b, FIN | CLOSE, p, 2 + rl);
}

/* Raw deflate of one message as a client sends it: sync flush, 00 00 ff ff removed (RFC 7692 7.2.1). */
static void put_deflated(buf *b, uint8_t b0, const void *in, size_t len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&z, len) + 64;
  uint8_t *out = malloc(cap);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  assert_true(n >= 4);
  assert_memory_equal(out + n - 4, "\x00\x00\xff\xff", 4);
  put(b, b0, out, n - 4);
  free(out);
}

/* ---- recording what the session does --------------------------------------------------------------- */

typedef struct rec {
  ws_session *s;
  ws_session_limits limits;
  buf events; /* per callback: type byte, 8-byte length, data */
  buf out;    /* everything written */
  int done;   /* feed returned non-OK: no callback may follow */
  int hash_only;
  int track_heap;
  int close_on_message; /* call ws_session_close from on_message */
  uint64_t hash;
  size_t msgs, zero_copy;
  uintptr_t in_lo, in_hi; /* the buffer being fed */
  uint64_t peak_heap;     /* heap in use when the close frame was written */
} rec;

static uint64_t fnv(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211u;
  return h;
}

static void event(buf *e, uint8_t type, const uint8_t *p, size_t len) {
  uint64_t l = len;
  assert_int_equal(buf_append(e, &type, 1), 0);
  assert_int_equal(buf_append(e, &l, 8), 0);
  assert_int_equal(buf_append(e, p, len), 0);
}

static void cb_message(void *ud, int op, uint8_t *data, size_t len) {
  rec *r = ud;
  assert_false(r->done);
  assert_non_null(data);
  assert_true(op == TEXT || op == BIN);
  if (op == TEXT) assert_true(utf8_valid(data, len));
  assert_true(len <= r->limits.max_message);
  r->msgs++;
  if ((uintptr_t)data >= r->in_lo && (uintptr_t)data < r->in_hi) r->zero_copy++;
  if (r->hash_only) {
    r->hash = fnv(data, len);
    event(&r->events, op == TEXT ? 'T' : 'B', NULL, 0);
  } else {
    event(&r->events, op == TEXT ? 'T' : 'B', data, len);
  }
  memset(data, 0xAB, len); /* the callee may modify it */
  if (r->close_on_message) assert_int_equal(ws_session_close(r->s, 1000, NULL, 0), 0);
}

static void cb_ping(void *ud, const uint8_t *data, size_t len) {
  rec *r = ud;
  assert_false(r->done);
  event(&r->events, 'I', data, len);
}

static void cb_pong(void *ud, const uint8_t *data, size_t len) {
  rec *r = ud;
  assert_false(r->done);
  event(&r->events, 'O', data, len);
}

static void cb_write(void *ud, const uint8_t *data, size_t len) {
  rec *r = ud;
  assert_false(r->done);
  assert_int_equal(buf_append(&r->out, data, len), 0);
  if (r->track_heap) {
    struct mallinfo2 mi = mallinfo2();
    if (mi.uordblks > r->peak_heap) r->peak_heap = mi.uordblks;
  }
}

static const ws_session_cbs g_cbs = {cb_message, cb_ping, cb_pong, cb_write};

/* deflate: 0 off, 1 no context takeover, 2 context takeover. */
static void rec_init(rec *r, uint64_t max, int deflate) {
  memset(r, 0, sizeof *r);
  r->limits.max_message = max;
  const ws_pmd_params *pmd = deflate == 2 ? &g_pmd_context : deflate ? &g_pmd : NULL;
  r->s = ws_session_new(&g_cbs, r, &r->limits, pmd, deflate ? g_shared : NULL);
  assert_non_null(r->s);
}

static void rec_free(rec *r) {
  ws_session_free(r->s);
  buf_free(&r->events);
  buf_free(&r->out);
}

/* Feeds s[from, to) from its own exact-size heap copy, so reads past it are caught by ASan. */
static int feed_range(rec *r, const uint8_t *s, size_t from, size_t to) {
  size_t n = to - from;
  uint8_t *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  if (n) memcpy(copy, s + from, n);
  r->in_lo = (uintptr_t)copy;
  r->in_hi = (uintptr_t)copy + n;
  int rc = ws_session_feed(r->s, copy, n);
  r->in_lo = r->in_hi = 0;
  free(copy);
  if (rc != WS_SESSION_OK) r->done = 1;
  return rc;
}

/* Feeds the stream cut before each offset in cuts (ascending). Stops at the first non-OK result and checks
 * that it sticks without more output. */
static int feed_cuts(rec *r, const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts) {
  size_t from = 0;
  int rc = WS_SESSION_OK;
  for (size_t i = 0; i <= ncuts && rc == WS_SESSION_OK; i++) {
    size_t to = i < ncuts ? cuts[i] : n;
    rc = feed_range(r, s, from, to);
    from = to;
  }
  if (rc != WS_SESSION_OK) {
    size_t out_len = r->out.len, ev_len = r->events.len;
    uint8_t more[] = {0x89, 0x80, 1, 2, 3, 4};
    assert_int_equal(ws_session_feed(r->s, more, sizeof more), rc);
    assert_int_equal(r->out.len, out_len);
    assert_int_equal(r->events.len, ev_len);
  }
  return rc;
}

static int feed_step(rec *r, const uint8_t *s, size_t n, size_t step) {
  int rc = WS_SESSION_OK;
  for (size_t at = 0; at < n && rc == WS_SESSION_OK; at += step)
    rc = feed_range(r, s, at, at + step < n ? at + step : n);
  return rc;
}

static void assert_buf_equal(const buf *a, const buf *b) {
  assert_int_equal(a->len, b->len);
  if (a->len) assert_memory_equal(a->data, b->data, a->len);
}

/* Feeds stream whole, split in two at every point, in three pieces, byte by byte and in random pieces,
 * and checks every run returns want_rc with the same callbacks and output. Returns the whole-feed record in
 * *first (caller frees). */
static void check_all_splits(const buf *stream, uint64_t max, int deflate, int want_rc, rec *first) {
  const uint8_t *s = stream->data;
  size_t n = stream->len;
  rec_init(first, max, deflate);
  assert_int_equal(feed_cuts(first, s, n, NULL, 0), want_rc);

  for (size_t i = 0; i <= n; i++) {
    rec r;
    rec_init(&r, max, deflate);
    assert_int_equal(feed_cuts(&r, s, n, &i, 1), want_rc);
    assert_buf_equal(&r.events, &first->events);
    assert_buf_equal(&r.out, &first->out);
    rec_free(&r);
  }
  for (size_t i = 0; i <= n; i += 3) {
    for (size_t j = i; j <= n; j += 5) {
      rec r;
      size_t cuts[2] = {i, j};
      rec_init(&r, max, deflate);
      assert_int_equal(feed_cuts(&r, s, n, cuts, 2), want_rc);
      assert_buf_equal(&r.events, &first->events);
      assert_buf_equal(&r.out, &first->out);
      rec_free(&r);
    }
  }
  for (size_t step = 1; step <= 17; step += 4) {
    rec r;
    rec_init(&r, max, deflate);
    assert_int_equal(feed_step(&r, s, n, step), want_rc);
    assert_buf_equal(&r.events, &first->events);
    assert_buf_equal(&r.out, &first->out);
    rec_free(&r);
  }
}

static void expect(buf *e, uint8_t type, const void *p, size_t len) { event(e, type, p, len); }

static void expect_str(buf *e, uint8_t type, const char *s) { event(e, type, (const uint8_t *)s, strlen(s)); }

static void expect_control(buf *o, int op, const void *p, size_t len) {
  uint8_t h[WS_FRAME_HEADER_MAX];
  size_t hn = ws_frame_header_encode(h, 1, 0, op, len, NULL);
  assert_int_equal(buf_append(o, h, hn), 0);
  assert_int_equal(buf_append(o, p, len), 0);
}

static void expect_close(buf *o, unsigned code) {
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  expect_control(o, CLOSE, p, code ? 2 : 0);
}

/* Our answer to a peer's close echoes its code and reason. */
static void expect_close_reason(buf *o, unsigned code, const char *reason) {
  uint8_t p[125] = {(uint8_t)(code >> 8), (uint8_t)code};
  size_t n = strlen(reason);
  memcpy(p + 2, reason, n);
  expect_control(o, CLOSE, p, 2 + n);
}

/* ---- tests ------------------------------------------------------------------------------------------ */

/* A mix of messages with fragments, interleaved control frames and every header size: the same messages
 * and output for every split of the stream. */
static void test_split_every_point(void **state) {
  (void)state;
  buf s = {0}, e = {0}, o = {0};
  uint8_t bin[300];
  for (size_t i = 0; i < sizeof bin; i++) bin[i] = (uint8_t)(i * 7);
  uint8_t ping125[125];
  memset(ping125, 'p', sizeof ping125);

  put_str(&s, FIN | TEXT, "Hello");
  expect_str(&e, 'T', "Hello");
  put(&s, FIN | BIN, bin, sizeof bin);
  expect(&e, 'B', bin, sizeof bin);
  put(&s, FIN | TEXT, NULL, 0);
  expect(&e, 'T', NULL, 0);
  put(&s, FIN | BIN, NULL, 0);
  expect(&e, 'B', NULL, 0);
  /* Fragmented text with control frames between fragments and a character split across fragments. */
  put_str(&s, TEXT, "frag");
  put_str(&s, FIN | PING, "p1");
  expect_str(&e, 'I', "p1");
  expect_control(&o, PONG, "p1", 2);
  put_str(&s, CONT, "mented \xce");
  put_str(&s, FIN | PONG, "x");
  expect_str(&e, 'O', "x");
  put_str(&s, CONT, "\xba\xe1\xbd");
  put(&s, CONT, NULL, 0);
  put_str(&s, FIN | PING, "");
  expect_str(&e, 'I', "");
  expect_control(&o, PONG, NULL, 0);
  put_str(&s, FIN | CONT, "\xb9!");
  expect_str(&e, 'T', "fragmented \xce\xba\xe1\xbd\xb9!");
  put(&s, FIN | PING, ping125, sizeof ping125);
  expect(&e, 'I', ping125, sizeof ping125);
  expect_control(&o, PONG, ping125, sizeof ping125);
  put(&s, BIN, bin, 126);
  put(&s, FIN | CONT, bin + 126, 100);
  expect(&e, 'B', bin, 226);
  put_close(&s, 1000, "done");
  expect_close_reason(&o, 1000, "done");

  rec first;
  check_all_splits(&s, 1 << 20, 0, WS_SESSION_CLOSED, &first);
  assert_buf_equal(&first.events, &e);
  assert_buf_equal(&first.out, &o);
  const char *reason;
  size_t rl;
  assert_int_equal(ws_session_peer_code(first.s, &reason, &rl), 1000);
  assert_int_equal(rl, 4);
  assert_memory_equal(reason, "done", 4);
  rec_free(&first);
  buf_free(&s), buf_free(&e), buf_free(&o);
}

/* Every header length form (7, 16 and 64 bit) in one stream, byte by byte and in odd pieces. */
static void test_large_frames_split(void **state) {
  (void)state;
  buf s = {0}, e = {0};
  size_t n = 70000;
  uint8_t *big = malloc(n);
  for (size_t i = 0; i < n; i++) big[i] = (uint8_t)(i * 13 + (i >> 9));
  put(&s, FIN | BIN, big, n);
  expect(&e, 'B', big, n);
  put(&s, FIN | BIN, big, 65535);
  expect(&e, 'B', big, 65535);
  put(&s, BIN, big, 65536);
  put(&s, FIN | PING, "mid", 3);
  expect(&e, 'I', "mid", 3);
  put(&s, FIN | CONT, big + 65536, 1000);
  expect(&e, 'B', big, 66536);
  static const size_t steps[] = {1, 2, 3, 7, 1000, 4093, 65536, 200000};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    rec r;
    rec_init(&r, 1 << 20, 0);
    assert_int_equal(feed_step(&r, s.data, s.len, steps[i]), WS_SESSION_OK);
    assert_buf_equal(&r.events, &e);
    rec_free(&r);
  }
  free(big);
  buf_free(&s), buf_free(&e);
}

/* Whole frames in one read are delivered from the caller's buffer; split ones from the session's. */
static void test_zero_copy(void **state) {
  (void)state;
  buf s = {0};
  put_str(&s, FIN | TEXT, "first message");
  put_str(&s, FIN | BIN, "second");
  put_str(&s, TEXT, "frag");
  put_str(&s, FIN | CONT, "mented");
  rec r;
  rec_init(&r, 1 << 20, 0);
  assert_int_equal(feed_range(&r, s.data, 0, s.len), WS_SESSION_OK);
  assert_int_equal(r.msgs, 3);
  assert_int_equal(r.zero_copy, 2); /* the fragmented one is joined in the session */
  rec_free(&r);

  rec_init(&r, 1 << 20, 0);
  size_t cut = 10; /* inside the first frame's payload */
  assert_int_equal(feed_cuts(&r, s.data, s.len, &cut, 1), WS_SESSION_OK);
  assert_int_equal(r.msgs, 3);
  assert_int_equal(r.zero_copy, 1);
  rec_free(&r);
  buf_free(&s);
}

/* After a message that spanned reads is delivered, the session holds no heap memory. */
static void test_idle_memory_released(void **state) {
  (void)state;
  buf s = {0};
  uint8_t big[5000];
  memset(big, 'x', sizeof big);
  put(&s, TEXT, big, sizeof big);
  put_str(&s, FIN | PING, "ping in between");
  put(&s, FIN | CONT, big, 100);
  rec r;
  rec_init(&r, 1 << 20, 0);
  buf_reserve(&r.out, 4096);
  buf_reserve(&r.events, 65536);
  uint8_t *copy = malloc(s.len);
  memcpy(copy, s.data, s.len);
  size_t base = mallinfo2().uordblks;
  for (size_t i = 0; i < s.len; i += 333) {
    size_t n = s.len - i < 333 ? s.len - i : 333;
    assert_int_equal(ws_session_feed(r.s, copy + i, n), WS_SESSION_OK);
    if (i + n < s.len) continue;
    assert_int_equal(r.msgs, 1);
    /* The 5 KB message buffer is gone. glibc counts chunks parked in its per-thread cache as in use, so the
     * small aux block may still show; under ASan, which keeps its own heap, this holds trivially. */
    assert_true(mallinfo2().uordblks <= base + 256);
  }
  free(copy);
  rec_free(&r);
  buf_free(&s);
}

typedef struct err_case {
  buf s;
  unsigned code;
  int deflate;
} err_case;

/* Every protocol violation: the close code returned and written, for every split. */
static void test_errors(void **state) {
  (void)state;
  static err_case cases[80];
  size_t n = 0;
  buf *b;
#define CASE(code_, deflate_) (cases[n].code = (code_), cases[n].deflate = (deflate_), b = &cases[n++].s)
  uint8_t big[200];
  memset(big, 'a', sizeof big);

  CASE(1002, 0); put_masked(b, FIN | TEXT, "hi", 2, 0);
  CASE(1002, 0); put_str(b, FIN | TEXT, "ok"); put_masked(b, FIN | PING, "", 0, 0);
  CASE(1002, 0); put_str(b, FIN | TEXT | RSV2, "hi");
  CASE(1002, 0); put_str(b, FIN | TEXT | RSV3, "hi");
  CASE(1002, 0); put_str(b, FIN | TEXT | RSV1, "hi");
  CASE(1002, 1); put_str(b, FIN | TEXT | RSV2, "hi");
  CASE(1002, 1); put_str(b, FIN | PING | RSV1, "hi");
  CASE(1002, 1); put_str(b, TEXT | RSV1, "hi"); put_str(b, FIN | CONT | RSV1, "hi");
  for (int op = 3; op <= 7; op++) { CASE(1002, 0); put_str(b, (uint8_t)(FIN | op), ""); }
  for (int op = 0xB; op <= 0xF; op++) { CASE(1002, 0); put_str(b, (uint8_t)(FIN | op), "x"); }
  CASE(1002, 0); put_str(b, PING, "no fin");
  CASE(1002, 0); put(b, FIN | PING, big, 126);
  CASE(1002, 0); put(b, FIN | CLOSE, big, 126);
  CASE(1002, 0); put(b, FIN | PONG, big, 200);
  CASE(1002, 0); put_str(b, FIN | CONT, "orphan");
  CASE(1002, 0); put_str(b, TEXT, "a"); put_str(b, FIN | TEXT, "b");
  CASE(1002, 0); put_str(b, BIN, "a"); put_str(b, FIN | BIN, "b");
  CASE(1002, 0); put_str(b, FIN | TEXT, "done"); put_str(b, FIN | CONT, "late");
  CASE(1002, 0); put_str(b, FIN | CLOSE, "x");
  static const unsigned bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
    CASE(1002, 0);
    put_close(b, bad_codes[i], "");
  }
  CASE(1002, 0); assert_int_equal(buf_append(b, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01", 10), 0);
  CASE(1007, 0); put_str(b, FIN | TEXT, "bad \xff utf8");
  CASE(1007, 0); put_str(b, FIN | TEXT, "\xed\xa0\x80 surrogate");
  CASE(1007, 0); put_str(b, FIN | TEXT, "ends inside \xc3");
  CASE(1007, 0); put_str(b, TEXT, "ok "); put_str(b, CONT, "still \xce"); put_str(b, FIN | CONT, "A");
  CASE(1007, 0); put_str(b, TEXT, "ok "); put_str(b, FIN | CONT, "ends \xe2\x82");
  CASE(1007, 0); put_close(b, 1000, "bad \xc0\xaf reason");
  CASE(1009, 0); put(b, FIN | TEXT, big, 101);
  CASE(1009, 0); put(b, BIN, big, 60); put(b, FIN | CONT, big, 41);
  CASE(1009, 0); assert_int_equal(buf_append(b, "\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\x01\x02\x03\x04", 14), 0);
  CASE(1009, 0); put(b, TEXT, big, 100); put(b, CONT, NULL, 0); put_str(b, FIN | PING, "p"); put(b, CONT, big, 1);
#undef CASE
  assert_true(n <= sizeof cases / sizeof cases[0]);

  for (size_t i = 0; i < n; i++) {
    rec first;
    check_all_splits(&cases[i].s, 100, cases[i].deflate, (int)cases[i].code, &first);
    buf want = {0};
    expect_close(&want, cases[i].code);
    /* The close frame is the last thing written, and whatever came before is pongs. */
    assert_true(first.out.len >= 4);
    assert_memory_equal(first.out.data + first.out.len - 4, want.data, 4);
    assert_true(ws_session_close_sent(first.s));
    assert_int_equal(ws_session_close(first.s, 1000, NULL, 0), WSIO_ECLOSED);
    assert_int_equal(ws_session_send(first.s, TEXT, (const uint8_t *)"x", 1, 0), WSIO_ECLOSED);
    rec_free(&first);
    buf_free(&want);
    buf_free(&cases[i].s);
  }
}

/* Invalid UTF-8 is reported as soon as the byte arrives, without waiting for the rest of the message. */
static void test_utf8_fail_fast(void **state) {
  (void)state;
  buf s = {0};
  put_str(&s, FIN | TEXT, "valid start then \xf4\x90 and much more text after it");
  size_t bad = 2 + 4 + strlen("valid start then \xf4\x90");
  rec r;
  rec_init(&r, 1 << 20, 0);
  assert_int_equal(feed_range(&r, s.data, 0, bad - 1), WS_SESSION_OK);
  assert_int_equal(feed_range(&r, s.data, bad - 1, bad), 1007);
  buf want = {0};
  expect_close(&want, 1007);
  assert_buf_equal(&r.out, &want);
  rec_free(&r);
  buf_free(&s);

  /* In a first fragment, with the rest of the message never sent. */
  put_str(&s, TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited");
  rec_init(&r, 1 << 20, 0);
  assert_int_equal(feed_range(&r, s.data, 0, s.len), 1007);
  assert_buf_equal(&r.out, &want);
  rec_free(&r);
  buf_free(&s);
  buf_free(&want);
}

static void test_too_big_at_header(void **state) {
  (void)state;
  buf s = {0};
  uint8_t h[WS_FRAME_HEADER_MAX];
  uint8_t key[4] = {1, 2, 3, 4};
  size_t hn = ws_frame_header_encode(h, 1, 0, BIN, 1001, key);
  rec r;
  rec_init(&r, 1000, 0);
  assert_int_equal(feed_range(&r, h, 0, hn), 1009); /* no payload needed to know */
  rec_free(&r);

  uint8_t exact[1000];
  memset(exact, 'z', sizeof exact);
  put(&s, FIN | TEXT, exact, sizeof exact);
  put(&s, TEXT, exact, 500);
  put(&s, FIN | CONT, exact, 500);
  rec_init(&r, 1000, 0);
  assert_int_equal(feed_step(&r, s.data, s.len, 97), WS_SESSION_OK);
  assert_int_equal(r.msgs, 2);
  rec_free(&r);
  buf_free(&s);
}

static void test_close_from_peer(void **state) {
  (void)state;
  buf s = {0}, o = {0};
  put_close(&s, 4321, "a reason long enough to cross a read boundary \xe2\x82\xac");
  put_str(&s, FIN | TEXT, "after close"); /* never delivered */
  rec r;
  check_all_splits(&s, 1 << 20, 0, WS_SESSION_CLOSED, &r);
  expect_close_reason(&o, 4321, "a reason long enough to cross a read boundary \xe2\x82\xac");
  assert_buf_equal(&r.out, &o);
  assert_int_equal(r.msgs, 0);
  const char *reason;
  size_t rl;
  assert_int_equal(ws_session_peer_code(r.s, &reason, &rl), 4321);
  assert_int_equal(rl, strlen("a reason long enough to cross a read boundary \xe2\x82\xac"));
  assert_memory_equal(reason, "a reason long enough", 20);
  assert_true(ws_session_close_sent(r.s));
  rec_free(&r);
  buf_free(&s), buf_free(&o);

  /* Empty close: echoed empty, code reads as 1005. */
  put(&s, FIN | CLOSE, NULL, 0);
  check_all_splits(&s, 1 << 20, 0, WS_SESSION_CLOSED, &r);
  expect_close(&o, 0);
  assert_buf_equal(&r.out, &o);
  assert_int_equal(ws_session_peer_code(r.s, &reason, &rl), 1005);
  assert_int_equal(rl, 0);
  rec_free(&r);
  buf_free(&s), buf_free(&o);

  /* In the middle of a fragmented message. */
  put_str(&s, TEXT, "partial");
  put_close(&s, 1001, "");
  check_all_splits(&s, 1 << 20, 0, WS_SESSION_CLOSED, &r);
  expect_close(&o, 1001);
  assert_buf_equal(&r.out, &o);
  assert_int_equal(r.msgs, 0);
  rec_free(&r);
  buf_free(&s), buf_free(&o);

  rec_init(&r, 100, 0);
  assert_int_equal(ws_session_peer_code(r.s, NULL, NULL), 0);
  rec_free(&r);
}

/* Every valid code is echoed, with the longest reason that fits a control frame. */
static void test_close_codes_echo(void **state) {
  (void)state;
  static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                   3000, 3999, 4000, 4999};
  char reason[124];
  memset(reason, 'w', 123);
  reason[123] = 0;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    buf s = {0}, o = {0};
    put_close(&s, codes[i], i & 1 ? reason : "");
    rec r;
    rec_init(&r, 100, 0);
    assert_int_equal(feed_step(&r, s.data, s.len, 50), WS_SESSION_CLOSED);
    expect_close_reason(&o, codes[i], i & 1 ? reason : "");
    assert_buf_equal(&r.out, &o);
    const char *got;
    size_t rl;
    assert_int_equal(ws_session_peer_code(r.s, &got, &rl), codes[i]);
    assert_int_equal(rl, i & 1 ? 123 : 0);
    rec_free(&r);
    buf_free(&s), buf_free(&o);
  }
}

/* We close first: data is read and dropped until the peer's close completes the handshake. */
static void test_close_from_us(void **state) {
  (void)state;
  rec r;
  rec_init(&r, 1 << 20, 0);
  assert_int_equal(ws_session_close(r.s, 1001, "going away", 10), 0);
  static const uint8_t want[] = {0x88, 0x0C, 0x03, 0xE9, 'g', 'o', 'i', 'n', 'g', ' ', 'a', 'w', 'a', 'y'};
  assert_int_equal(r.out.len, sizeof want);
  assert_memory_equal(r.out.data, want, sizeof want);
  assert_true(ws_session_close_sent(r.s));
  assert_int_equal(ws_session_close(r.s, 1000, NULL, 0), WSIO_ECLOSED);
  assert_int_equal(ws_session_send(r.s, TEXT, (const uint8_t *)"x", 1, 0), WSIO_ECLOSED);
  assert_int_equal(ws_session_ping(r.s, NULL, 0), WSIO_ECLOSED);

  buf s = {0};
  put_str(&s, FIN | TEXT, "in flight");
  put_str(&s, BIN, "frag");
  put_str(&s, FIN | PING, "late ping");
  put_str(&s, FIN | CONT, "ment");
  put_close(&s, 1000, "ok");
  r.out.len = 0;
  assert_int_equal(feed_step(&r, s.data, s.len, 3), WS_SESSION_CLOSED);
  assert_int_equal(r.msgs, 0);
  assert_int_equal(r.out.len, 0); /* no pong, no second close */
  assert_int_equal(ws_session_peer_code(r.s, NULL, NULL), 1000);
  rec_free(&r);
  buf_free(&s);

  /* Closing from inside on_message: the rest of the read is dropped, the peer's close ends it. */
  put_str(&s, FIN | TEXT, "close me");
  put_str(&s, FIN | TEXT, "dropped");
  put_close(&s, 1000, "");
  rec_init(&r, 1 << 20, 0);
  r.close_on_message = 1;
  assert_int_equal(feed_range(&r, s.data, 0, s.len), WS_SESSION_CLOSED);
  assert_int_equal(r.msgs, 1);
  buf o = {0};
  expect_close(&o, 1000);
  assert_buf_equal(&r.out, &o);
  rec_free(&r);
  buf_free(&s), buf_free(&o);
}

static void test_close_api(void **state) {
  (void)state;
  rec r;
  rec_init(&r, 100, 0);
  assert_int_equal(ws_session_close(r.s, 1005, NULL, 0), WSIO_EINVAL);
  assert_int_equal(ws_session_close(r.s, 999, NULL, 0), WSIO_EINVAL);
  assert_int_equal(r.out.len, 0);
  char reason[200];
  memset(reason, 'r', sizeof reason);
  assert_int_equal(ws_session_close(r.s, 3000, reason, sizeof reason), 0);
  assert_int_equal(r.out.len, 2 + 125);
  assert_int_equal(r.out.data[1], 125);
  rec_free(&r);

  /* A 3-byte character across the cut at 123 is dropped whole. */
  rec_init(&r, 100, 0);
  memset(reason, 'r', sizeof reason);
  memcpy(reason + 121, "\xe2\x82\xac", 3);
  assert_int_equal(ws_session_close(r.s, 1000, reason, 130), 0);
  assert_int_equal(r.out.data[1], 2 + 121);
  assert_true(utf8_valid(r.out.data + 4, 121));
  rec_free(&r);

  rec_init(&r, 100, 0);
  assert_int_equal(ws_session_close(r.s, 0, "ignored", 7), 0);
  static const uint8_t empty[] = {0x88, 0x00};
  assert_int_equal(r.out.len, 2);
  assert_memory_equal(r.out.data, empty, 2);
  rec_free(&r);
}

static void test_send_and_ping(void **state) {
  (void)state;
  rec r;
  rec_init(&r, 100, 0);
  assert_int_equal(ws_session_send(r.s, TEXT, (const uint8_t *)"hi", 2, 1), 0);
  static const uint8_t hi[] = {0x81, 0x02, 'h', 'i'};
  assert_int_equal(r.out.len, 4);
  assert_memory_equal(r.out.data, hi, 4);

  r.out.len = 0;
  uint8_t big[70000];
  memset(big, 7, sizeof big);
  assert_int_equal(ws_session_send(r.s, BIN, big, 300, 1), 0); /* no deflate negotiated: plain */
  static const uint8_t h300[] = {0x82, 0x7E, 0x01, 0x2C};
  assert_int_equal(r.out.len, 304);
  assert_memory_equal(r.out.data, h300, 4);
  r.out.len = 0;
  assert_int_equal(ws_session_send(r.s, BIN, big, sizeof big, 0), 0);
  static const uint8_t h70k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70};
  assert_int_equal(r.out.len, 10 + sizeof big);
  assert_memory_equal(r.out.data, h70k, 10);
  assert_int_equal(ws_session_send(r.s, PING, big, 1, 0), WSIO_EINVAL);
  assert_int_equal(ws_session_send(r.s, CONT, big, 1, 0), WSIO_EINVAL);

  r.out.len = 0;
  assert_int_equal(ws_session_ping(r.s, (const uint8_t *)"abc", 3), 0);
  static const uint8_t ping[] = {0x89, 0x03, 'a', 'b', 'c'};
  assert_int_equal(r.out.len, 5);
  assert_memory_equal(r.out.data, ping, 5);
  assert_int_equal(ws_session_ping(r.s, big, 126), WSIO_EINVAL);
  assert_false(ws_session_deflate(r.s));
  rec_free(&r);
}

/* 16 MiB messages, one frame and fragmented, fed in pieces that never hold a whole frame. */
static void test_16mib(void **state) {
  (void)state;
  const size_t n = 16u << 20;
  uint8_t *msg = malloc(n);
  assert_non_null(msg);
  for (size_t i = 0; i < n; i++) msg[i] = (uint8_t)('a' + (i * 7 + (i >> 11)) % 26);
  memcpy(msg + n / 2 - 1, "\xe2\x82\xac", 3); /* a multibyte character across a fragment boundary */
  uint64_t want = fnv(msg, n);

  buf s = {0};
  put(&s, FIN | BIN, msg, n);
  rec r;
  rec_init(&r, n, 0);
  r.hash_only = 1;
  assert_int_equal(feed_step(&r, s.data, s.len, 65521), WS_SESSION_OK);
  assert_int_equal(r.msgs, 1);
  assert_true(r.hash == want);
  rec_free(&r);
  buf_free(&s);

  for (size_t i = 0; i < 16; i++) put(&s, (uint8_t)((i == 15 ? FIN : 0) | (i ? CONT : TEXT)), msg + i * (n / 16), n / 16);
  rec_init(&r, n, 0);
  r.hash_only = 1;
  assert_int_equal(feed_step(&r, s.data, s.len, 100003), WS_SESSION_OK);
  assert_int_equal(r.msgs, 1);
  assert_true(r.hash == want);
  rec_free(&r);

  /* One byte more than the limit fails at the last fragment's header. */
  rec_init(&r, n - 1, 0);
  assert_int_equal(feed_step(&r, s.data, s.len, 100003), 1009);
  assert_int_equal(r.msgs, 0);
  rec_free(&r);
  buf_free(&s);
  free(msg);
}

/* ---- permessage-deflate ------------------------------------------------------------------------------ */

static void test_deflate_messages(void **state) {
  int mode = *(int *)*state;
  buf s = {0}, e = {0}, o = {0};
  const char *text = "Hello, compressed world! Hello, compressed world! \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
  put_deflated(&s, FIN | TEXT | RSV1, text, strlen(text));
  expect_str(&e, 'T', text);
  uint8_t bin[400];
  for (size_t i = 0; i < sizeof bin; i++) bin[i] = (uint8_t)(i % 17);
  put_deflated(&s, FIN | BIN | RSV1, bin, sizeof bin);
  expect(&e, 'B', bin, sizeof bin);
  put_str(&s, FIN | TEXT, "plain in between");
  expect_str(&e, 'T', "plain in between");
  put_deflated(&s, FIN | TEXT | RSV1, "", 0);
  expect(&e, 'T', NULL, 0);
  /* One compressed message in three frames with a ping between. */
  buf z = {0};
  put_deflated(&z, 0, bin, 300);
  size_t zh = (size_t)ws_frame_header_parse(z.data, z.len, &(ws_frame_header){0});
  uint8_t *zp = z.data + zh;
  size_t zn = z.len - zh;
  for (size_t i = 0; i < zn; i++) zp[i] ^= z.data[zh - 4 + (i & 3)]; /* unmask: payload as compressed */
  put(&s, BIN | RSV1, zp, zn / 3);
  put_str(&s, FIN | PING, "between");
  expect_str(&e, 'I', "between");
  expect_control(&o, PONG, "between", 7);
  put(&s, CONT, zp + zn / 3, zn / 3);
  put(&s, FIN | CONT, zp + 2 * (zn / 3), zn - 2 * (zn / 3));
  expect(&e, 'B', bin, 300);
  buf_free(&z);

  rec r;
  check_all_splits(&s, 1 << 20, mode, WS_SESSION_OK, &r);
  assert_buf_equal(&r.events, &e);
  assert_buf_equal(&r.out, &o);
  assert_int_equal(r.zero_copy, 1); /* only the plain one */
  assert_true(ws_session_deflate(r.s));
  rec_free(&r);
  buf_free(&s), buf_free(&e), buf_free(&o);
}

static void test_deflate_errors(void **state) {
  (void)state;
  buf s = {0};
  rec r;
  put_deflated(&s, FIN | TEXT | RSV1, "bad \xff inside", 12);
  check_all_splits(&s, 1 << 20, 1, 1007, &r);
  rec_free(&r);
  buf_free(&s);

  put(&s, FIN | BIN | RSV1, "\xff\xff\xff\xff", 4); /* reserved block type */
  check_all_splits(&s, 1 << 20, 1, 1002, &r);
  rec_free(&r);
  buf_free(&s);

  uint8_t big[2000];
  memset(big, 'q', sizeof big);
  put_deflated(&s, FIN | BIN | RSV1, big, 1001);
  check_all_splits(&s, 1000, 1, 1009, &r);
  rec_free(&r);
  buf_free(&s);

  put_deflated(&s, FIN | BIN | RSV1, big, 1000); /* exactly the limit */
  check_all_splits(&s, 1000, 1, WS_SESSION_OK, &r);
  assert_int_equal(r.msgs, 1);
  rec_free(&r);
  buf_free(&s);
}

/* A few KiB of compressed zeros that would inflate to 32 MiB: 1009 while memory stays near the limit. */
static void test_deflate_bomb(void **state) {
  (void)state;
  const size_t n = 32u << 20;
  uint8_t *zeros = calloc(1, n);
  buf s = {0};
  put_deflated(&s, FIN | BIN | RSV1, zeros, n);
  free(zeros);
  assert_true(s.len < 64 * 1024);
  rec r;
  rec_init(&r, 64 * 1024, 1);
  r.track_heap = 1;
  size_t base = mallinfo2().uordblks;
  assert_int_equal(feed_step(&r, s.data, s.len, 1024), 1009);
  buf want = {0};
  expect_close(&want, 1009);
  assert_buf_equal(&r.out, &want);
  /* Limit, zlib's window and state, the output buffers: far below what the bomb holds. */
  assert_true(r.peak_heap < base + 1024 * 1024);
  rec_free(&r);
  buf_free(&s);
  buf_free(&want);
}

static void test_deflate_send(void **state) {
  (void)state;
  rec r;
  rec_init(&r, 1 << 20, 1);
  char msg[1000];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = "compress me, "[i % 13];
  assert_int_equal(ws_session_send(r.s, TEXT, (const uint8_t *)msg, sizeof msg, 1), 0);
  ws_frame_header h;
  ssize_t hn = ws_frame_header_parse(r.out.data, r.out.len, &h);
  assert_true(hn > 0);
  assert_int_equal(h.rsv, 4);
  assert_int_equal(h.fin, 1);
  assert_int_equal(h.opcode, TEXT);
  assert_int_equal(h.masked, 0);
  assert_int_equal((size_t)hn + h.len, r.out.len);
  assert_true(h.len < sizeof msg / 4);

  /* Inflate it as a client would, with the tail put back. */
  uint8_t in[1100], out[2000];
  memcpy(in, r.out.data + hn, h.len);
  memcpy(in + h.len, "\x00\x00\xff\xff", 4);
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(inflateInit2(&z, -15), Z_OK);
  z.next_in = in;
  z.avail_in = (uInt)(h.len + 4);
  z.next_out = out;
  z.avail_out = sizeof out;
  int zr = inflate(&z, Z_SYNC_FLUSH);
  assert_true(zr == Z_OK || zr == Z_STREAM_END);
  assert_int_equal(sizeof out - z.avail_out, sizeof msg);
  assert_memory_equal(out, msg, sizeof msg);
  inflateEnd(&z);

  r.out.len = 0;
  assert_int_equal(ws_session_send(r.s, TEXT, (const uint8_t *)msg, 63, 1), 0); /* under the minimum */
  assert_int_equal(r.out.data[0], 0x81);
  assert_int_equal(r.out.len, 2 + 63);
  r.out.len = 0;
  assert_int_equal(ws_session_send(r.s, BIN, (const uint8_t *)msg, sizeof msg, 0), 0); /* not asked to */
  assert_int_equal(r.out.data[0], 0x82);
  rec_free(&r);
}

static int group_setup(void **state) {
  (void)state;
  g_shared = ws_deflate_shared_new();
  return g_shared ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  ws_deflate_shared_free(g_shared);
  return 0;
}

static int mode_shared = 1, mode_context = 2;

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_every_point),
      cmocka_unit_test(test_large_frames_split),
      cmocka_unit_test(test_zero_copy),
      cmocka_unit_test(test_idle_memory_released),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_utf8_fail_fast),
      cmocka_unit_test(test_too_big_at_header),
      cmocka_unit_test(test_close_from_peer),
      cmocka_unit_test(test_close_codes_echo),
      cmocka_unit_test(test_close_from_us),
      cmocka_unit_test(test_close_api),
      cmocka_unit_test(test_send_and_ping),
      cmocka_unit_test(test_16mib),
      cmocka_unit_test_prestate(test_deflate_messages, &mode_shared),
      cmocka_unit_test_prestate(test_deflate_messages, &mode_context),
      cmocka_unit_test(test_deflate_errors),
      cmocka_unit_test(test_deflate_bomb),
      cmocka_unit_test(test_deflate_send),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
