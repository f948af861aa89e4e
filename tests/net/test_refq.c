/* Shared frames on the write path (net_conn_write_shared): the byte stream a peer reads is exactly what was
 * queued, copies and shared frames interleaved, through partial writes (a small socket buffer), and every
 * shared owner is released once: after its bytes are written, flattened or dropped at close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/conn_internal.h"
#include "net/net.h"
#include "wsio.h"

typedef struct owner {
  net_shared sh;
  int released;
  uint8_t bytes[3000];
} owner;

static void owner_release(net_shared *sh) { ((owner *)sh)->released++; }

static void owner_init(owner *o, uint8_t seed) {
  memset(o, 0, sizeof *o);
  o->sh.refs = 1; /* the test's own */
  o->sh.release = owner_release;
  for (size_t i = 0; i < sizeof o->bytes; i++) o->bytes[i] = (uint8_t)(seed + i * 13);
}

typedef struct fixture {
  uv_loop_t uv;
  net_loop l;
  net_conn *c;
  int peer;
  uv_poll_t poll;
  uv_timer_t timer;
  buf got;
  size_t want;
} fixture;

static const net_proto quiet_proto = {0};

static void on_readable(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  fixture *f = p->data;
  uint8_t tmp[4096];
  ssize_t n;
  while ((n = read(f->peer, tmp, sizeof tmp)) > 0) buf_append(&f->got, tmp, (size_t)n);
  if (f->got.len >= f->want) uv_stop(&f->uv);
}

static void on_timeout(uv_timer_t *t) { uv_stop(t->loop); }

/* A net_conn on one end of a socket pair whose send buffer is small, so big flushes are partial. */
static void setup(fixture *f) {
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->uv), 0);
  assert_int_equal(net_loop_init(&f->l, &f->uv), 0);
  f->l.accept_proto = &quiet_proto;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  f->c = net_conn_new(&f->l);
  assert_non_null(f->c);
  assert_int_equal(uv_tcp_open(&f->c->tcp, sv[0]), 0);
  f->peer = sv[1];
  uv_poll_init(&f->uv, &f->poll, f->peer);
  f->poll.data = f;
  uv_timer_init(&f->uv, &f->timer);
}

static void run_until(fixture *f, size_t want) {
  f->want = want;
  uv_poll_start(&f->poll, UV_READABLE, on_readable);
  uv_timer_start(&f->timer, on_timeout, 10000, 0);
  uv_run(&f->uv, UV_RUN_DEFAULT);
  uv_timer_stop(&f->timer);
  uv_poll_stop(&f->poll);
}

static void teardown(fixture *f) {
  if (!(f->c->flags & NET_CONN_CLOSING)) net_conn_close(f->c);
  uv_close((uv_handle_t *)&f->poll, NULL);
  uv_close((uv_handle_t *)&f->timer, NULL);
  net_loop_close(&f->l);
  uv_run(&f->uv, UV_RUN_DEFAULT);
  net_loop_free(&f->l);
  assert_int_equal(uv_loop_close(&f->uv), 0);
  close(f->peer);
  buf_free(&f->got);
}

/* Copies and shared frames interleaved, far more than the socket takes at once: the stream arrives whole
 * and in order, and each owner is released exactly as often as it was queued. */
static void test_interleaved_partial_writes(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  owner a, b;
  owner_init(&a, 1);
  owner_init(&b, 77);
  buf want = {0};
  int queued_a = 0, queued_b = 0;
  for (int round = 0; round < 40; round++) {
    char text[32];
    int n = snprintf(text, sizeof text, "<copy %d>", round);
    assert_int_equal(net_conn_write(f.c, text, (size_t)n), 0);
    buf_append(&want, text, (size_t)n);
    size_t alen = 1 + (size_t)round * 71 % sizeof a.bytes;
    assert_int_equal(net_conn_write_shared(f.c, a.bytes, alen, &a.sh), 0);
    buf_append(&want, a.bytes, alen);
    queued_a++;
    if (round % 3 == 0) {
      assert_int_equal(net_conn_write_shared(f.c, b.bytes, sizeof b.bytes, &b.sh), 0);
      buf_append(&want, b.bytes, sizeof b.bytes);
      queued_b++;
    }
    if (round % 7 == 6) run_until(&f, 0); /* a flush in the middle, possibly partial */
  }
  assert_int_equal(net_conn_buffered(f.c) + f.got.len, want.len);
  run_until(&f, want.len);
  assert_int_equal(f.got.len, want.len);
  assert_memory_equal(f.got.data, want.data, want.len);
  /* Every queued reference is gone (written or flattened); only the test's own remains. */
  assert_int_equal(a.sh.refs, 1);
  assert_int_equal(b.sh.refs, 1);
  assert_int_equal(a.released, 0);
  assert_true(queued_a > 0 && queued_b > 0);
  assert_int_equal(net_conn_buffered(f.c), 0);
  buf_free(&want);
  teardown(&f);
}

/* A connection closed with shared frames queued drops them: each owner gets its references back, and an
 * owner whose last reference was the queue's is released then. */
static void test_close_with_frames_queued(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  owner kept, last;
  owner_init(&kept, 3);
  owner_init(&last, 5);
  for (int i = 0; i < 5; i++) assert_int_equal(net_conn_write_shared(f.c, kept.bytes, 100, &kept.sh), 0);
  assert_int_equal(net_conn_write_shared(f.c, last.bytes, 100, &last.sh), 0);
  net_shared_unref(&last.sh); /* the queue now holds its only reference */
  assert_int_equal(last.released, 0);
  assert_int_equal(kept.sh.refs, 6);
  net_conn_close(f.c);
  assert_int_equal(net_conn_write_shared(f.c, kept.bytes, 100, &kept.sh), WSIO_ECLOSED);
  teardown(&f); /* runs the close callback */
  assert_int_equal(kept.sh.refs, 1);
  assert_int_equal(kept.released, 0);
  assert_int_equal(last.released, 1);
}

/* Past NET_SHARED_MAX entries a connection copies instead: the stream is the same. */
static void test_queue_cap_copies(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  owner a;
  owner_init(&a, 9);
  buf want = {0};
  for (int i = 0; i < NET_SHARED_MAX * 2 + 5; i++) {
    size_t len = 1 + (size_t)i % 40;
    assert_int_equal(net_conn_write_shared(f.c, a.bytes + i, len, &a.sh), 0);
    buf_append(&want, a.bytes + i, len);
  }
  assert_int_equal(a.sh.refs, 1 + NET_SHARED_MAX);
  assert_int_equal(net_conn_buffered(f.c), want.len);
  run_until(&f, want.len);
  assert_int_equal(f.got.len, want.len);
  assert_memory_equal(f.got.data, want.data, want.len);
  assert_int_equal(a.sh.refs, 1);
  buf_free(&want);
  teardown(&f);
}

/* Bytes written in place (net_conn_reserve, then net_conn_commit of what was used) leave as one write of
 * them would; a closing connection gives no room. */
static void test_write_in_place(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  int rc = 0;
  uint8_t *p = net_conn_reserve(f.c, 32, &rc);
  assert_non_null(p);
  memcpy(p, "head-payload", 12);
  net_conn_commit(f.c, 12);
  assert_int_equal(net_conn_buffered(f.c), 12);
  run_until(&f, 12);
  assert_int_equal(f.got.len, 12);
  assert_memory_equal(f.got.data, "head-payload", 12);
  net_conn_close(f.c);
  assert_null(net_conn_reserve(f.c, 32, &rc));
  assert_int_equal(rc, WSIO_ECLOSED);
  assert_int_equal(net_conn_write(f.c, "x", 1), WSIO_ECLOSED);
  teardown(&f);
}

/* Both ways a queued stream leaves: up to NET_STAGE_MAX gathered into one buffer for write(), above it
 * handed to writev as it lies; each through partial writes (a 4 KiB socket buffer), arriving whole. */
static void test_staged_and_gathered_flushes(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  owner a;
  owner_init(&a, 9);
  buf want = {0};
  const size_t sizes[] = {100, 1000, sizeof a.bytes}; /* per frame; the first passes NET_SHARED_MAX frames */
  for (int k = 0; k < 3; k++) {
    size_t total = 0;
    for (int i = 0; total <= (k == 2 ? NET_STAGE_MAX : NET_STAGE_MAX / 2 - 200); i++) {
      assert_int_equal(net_conn_write(f.c, "|", 1), 0);
      buf_append(&want, "|", 1);
      size_t len = sizes[k];
      assert_int_equal(net_conn_write_shared(f.c, a.bytes + (size_t)i % 7, len - 7, &a.sh), 0);
      buf_append(&want, a.bytes + (size_t)i % 7, len - 7);
      total += len - 6;
    }
    if (k == 2) assert_true(total > NET_STAGE_MAX); /* the writev path */
    else assert_true(total <= NET_STAGE_MAX);      /* the staged path */
    run_until(&f, want.len);
    assert_int_equal(f.got.len, want.len);
    assert_memory_equal(f.got.data, want.data, want.len);
    assert_int_equal(a.sh.refs, 1);
  }
  assert_int_equal(a.released, 0);
  buf_free(&want);
  teardown(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interleaved_partial_writes),
      cmocka_unit_test(test_staged_and_gathered_flushes),
      cmocka_unit_test(test_close_with_frames_queued),
      cmocka_unit_test(test_queue_cap_copies),
      cmocka_unit_test(test_write_in_place),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
