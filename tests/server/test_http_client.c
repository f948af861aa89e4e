/* The outgoing HTTP client on a libuv loop run by the test, against the harness's real backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <uv.h>

#include "server/harness.h"
#include "server/http_client.h"
#include "wsio.h"

static uv_loop_t loop;
static srv_http *h;

typedef struct got {
  int called;
  srv_http_result r;
  char body[4096];
  srv_http *chain; /* when set, the callback posts once more */
} got;

static char url[128];

static void on_done(const srv_http_result *r, void *ud) {
  got *g = ud;
  g->called++;
  g->r = *r;
  snprintf(g->body, sizeof g->body, "%.*s", (int)r->len, r->body);
  g->r.body = g->body;
  assert_int_equal(r->body[r->len], 0); /* NUL-terminated */
  if (g->chain) {
    srv_http *c = g->chain;
    g->chain = NULL;
    assert_non_null(srv_http_post(c, url, "text/plain", "again", 5, 2000, 1024, on_done, g));
  }
}

static int setup(void **state) {
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  h = srv_http_new(&loop);
  assert_non_null(h);
  int port = bk_start("{\"a\":1}");
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
  return 0;
}

/* Everything is closed by the end: the loop closes cleanly. */
static int teardown(void **state) {
  (void)state;
  bk_set_hold(0);
  srv_http_free(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  bk_stop();
  return 0;
}

static void tick(uv_timer_t *t) { (void)t; }

/* Runs the loop (which the client's handles do not keep alive) until the backend has seen n requests. */
static void pump_until_backend_has(int n) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, tick, 1, 1);
  uint64_t end = h_now_ms() + 3000;
  while (bk_count(NULL) < n && h_now_ms() < end) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(bk_count(NULL), n);
}

static srv_http_req *post(const char *body, uint32_t timeout_ms, size_t max_reply, got *g) {
  return srv_http_post(h, url, "application/json", body, strlen(body), timeout_ms, max_reply, on_done, g);
}

/* A request and its reply; the next requests reuse the kept-alive connection. Neither a request in flight
 * nor the idle connection holds the loop open: only srv_http_drain() waits for requests. */
static void test_post(void **state) {
  (void)state;
  got g = {0};
  assert_non_null(post("{\"hello\":1}", 2000, 1024, &g));
  assert_int_equal(srv_http_in_flight(h), 1);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(g.called, 0);
  srv_http_drain(h);
  assert_int_equal(g.called, 1);
  assert_int_equal(g.r.err, 0);
  assert_int_equal(g.r.status, 200);
  assert_string_equal(g.body, "{\"a\":1}");
  assert_int_equal(g.r.len, 7);
  assert_true(g.r.seconds > 0 && g.r.seconds < 2);
  assert_int_equal(srv_http_in_flight(h), 0);
  assert_string_equal(bk.bodies[0], "{\"hello\":1}");
  assert_string_equal(bk.content_type[0], "application/json");
  for (int i = 0; i < 3; i++) {
    assert_non_null(post("{}", 2000, 1024, &g));
    srv_http_drain(h);
  }
  int conns;
  assert_int_equal(bk_count(&conns), 4);
  assert_int_equal(conns, 1);
  uint64_t t0 = h_now_ms();
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_true(h_now_ms() - t0 < 100);
}

/* Any status is a response; the caller judges it. */
static void test_status(void **state) {
  (void)state;
  bk_answer(404, 0, 0, NULL);
  got g = {0};
  assert_non_null(post("", 2000, 1024, &g));
  srv_http_drain(h);
  assert_int_equal(g.r.err, 0);
  assert_int_equal(g.r.status, 404);
  assert_string_equal(bk.bodies[0], "");
}

static void test_reply_cap(void **state) {
  (void)state;
  got g = {0};
  assert_non_null(post("{}", 2000, 6, &g));
  srv_http_drain(h);
  assert_int_equal(g.r.err, WSIO_ETOOBIG);
  assert_int_equal(g.r.status, 0);
  assert_non_null(post("{}", 2000, 7, &g)); /* exactly the size */
  srv_http_drain(h);
  assert_int_equal(g.r.err, 0);
  assert_string_equal(g.body, "{\"a\":1}");
  assert_non_null(post("{}", 2000, 0, &g)); /* discarded */
  srv_http_drain(h);
  assert_int_equal(g.r.err, 0);
  assert_int_equal(g.r.status, 200);
  assert_int_equal(g.r.len, 0);
  assert_string_equal(g.body, "");
}

static void test_timeout(void **state) {
  (void)state;
  bk_answer(200, 0, 1000, NULL);
  got g = {0};
  assert_non_null(post("{}", 150, 1024, &g));
  srv_http_drain(h);
  assert_int_equal(g.r.err, WSIO_ETIMEDOUT);
  assert_true(g.r.seconds >= 0.14 && g.r.seconds < 0.9);
}

static void test_refused_and_bad_urls(void **state) {
  (void)state;
  got g = {0};
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", h_closed_port());
  assert_non_null(post("{}", 2000, 1024, &g));
  srv_http_drain(h);
  assert_int_equal(g.r.err, WSIO_EIO);
  const char *bad[] = {"ftp://127.0.0.1/x", "file:///etc/passwd", "not a url"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(url, sizeof url, "%s", bad[i]);
    g.called = 0;
    assert_non_null(post("{}", 2000, 1024, &g));
    srv_http_drain(h);
    assert_int_equal(g.called, 1);
    assert_int_equal(g.r.err, WSIO_EIO);
  }
}

/* A body larger than curl's Expect: 100-continue threshold goes at once (the backend never sends 100). */
static void test_large_body(void **state) {
  (void)state;
  size_t n = 1500000;
  char *body = malloc(n + 1);
  memset(body, 'x', n);
  body[n] = 0;
  got g = {0};
  uint64_t t0 = h_now_ms();
  assert_non_null(post(body, 5000, 1024, &g));
  srv_http_drain(h);
  assert_int_equal(g.r.status, 200);
  assert_true(h_now_ms() - t0 < 800);
  assert_string_equal(bk.bodies[0], body);
  free(body);
}

/* A cancelled request never calls back, and no longer holds the loop. */
static void test_cancel(void **state) {
  (void)state;
  bk_set_hold(1);
  got g = {0};
  srv_http_req *r = post("{}", 5000, 1024, &g);
  assert_non_null(r);
  pump_until_backend_has(1);
  srv_http_cancel(h, r);
  assert_int_equal(srv_http_in_flight(h), 0);
  srv_http_drain(h); /* returns: nothing is in flight */
  assert_int_equal(g.called, 0);
  bk_set_hold(0);
  assert_non_null(post("{}", 2000, 1024, &g));
  srv_http_drain(h);
  assert_int_equal(g.called, 1);
  assert_int_equal(g.r.status, 200);
}

/* Freed with a request in flight: no callback, and every handle closes (teardown checks the loop). */
static void test_free_in_flight(void **state) {
  (void)state;
  bk_set_hold(1);
  got g = {0};
  assert_non_null(post("{}", 5000, 1024, &g));
  pump_until_backend_has(1);
  srv_http_free(h);
  h = NULL;
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g.called, 0);
}

/* A callback may post the next request; srv_http_drain() runs the loop until both are done. */
static void test_chain_and_drain(void **state) {
  (void)state;
  got g = {.chain = h};
  assert_non_null(post("first", 2000, 1024, &g));
  srv_http_drain(h);
  assert_int_equal(g.called, 2);
  assert_int_equal(srv_http_in_flight(h), 0);
  assert_int_equal(bk_count(NULL), 2);
  assert_string_equal(bk.bodies[1], "again");
  assert_string_equal(bk.content_type[1], "text/plain");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_post, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reply_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_and_bad_urls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_and_drain, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
