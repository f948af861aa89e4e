/* Webhooks end to end: a real wsio server in a thread, a real HTTP backend in the test, raw Socket.IO
 * clients over WebSocket that connect and leave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/app_harness.h"
#include "server/harness.h"
#include "server/webhooks.h"

typedef struct fixture {
  h_app a;
  srv_webhooks *hooks;
} fixture;

static fixture fx;

static void on_disconnect(wsio_socket *s, const char *reason, void *ud) {
  (void)ud;
  srv_webhooks_disconnect(fx.hooks, s, reason);
}

static void on_connection(wsio_socket *s, void *ud) {
  (void)ud;
  srv_webhooks_connect(fx.hooks, s);
  wsio_socket_on_disconnect(s, on_disconnect, NULL);
}

/* Starts the server with the configuration text (a [webhooks] section, %d for the backend's port). */
static void start(const char *conf, int backend_port, size_t queue_max) {
  memset(&fx, 0, sizeof fx);
  h_app_init(&fx.a, conf, backend_port);
  fx.hooks = srv_webhooks_new(&fx.a.app);
  assert_non_null(fx.hooks);
  if (queue_max) srv_webhooks_set_queue_max(fx.hooks, queue_max);
  wsio_nsp_on_connection(wsio_io_sockets(fx.a.app.io), on_connection, NULL);
  h_app_run(&fx.a);
}

static void stop_server(void) { h_app_stop(&fx.a); }

static int teardown(void **state) {
  (void)state;
  bk_set_hold(0);
  stop_server();
  srv_webhooks_free(fx.hooks);
  h_app_free(&fx.a);
  bk_stop();
  return 0;
}

static uint64_t metric(const uint64_t *field) { return __atomic_load_n(field, __ATOMIC_SEQ_CST); }

/* The backend has answered before the server counts: waits (up to 3 s) for the counter to reach want. */
static uint64_t metric_at(const uint64_t *field, uint64_t want) {
  uint64_t end = h_now_ms() + 3000;
  while (metric(field) < want && h_now_ms() < end) h_sleep_ms(5);
  return metric(field);
}

/* The events of request i, parsed (the caller json_decref()s). */
static json_t *events_of(int i) {
  json_error_t err;
  pthread_mutex_lock(&bk.mu);
  json_t *body = json_loads(bk.bodies[i], 0, &err);
  pthread_mutex_unlock(&bk.mu);
  assert_non_null(body);
  json_t *ev = json_object_get(body, "events");
  assert_true(json_is_array(ev));
  json_incref(ev);
  json_decref(body);
  return ev;
}

static void assert_event(json_t *e, const char *type, const char *sid, const char *reason) {
  assert_string_equal(json_string_value(json_object_get(e, "type")), type);
  assert_string_equal(json_string_value(json_object_get(e, "socket")), sid);
  assert_string_equal(json_string_value(json_object_get(e, "namespace")), "/");
  assert_true(strncmp(json_string_value(json_object_get(e, "address")), "127.0.0.1:", 10) == 0);
  json_int_t t = json_integer_value(json_object_get(e, "time"));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  json_int_t now_ms = (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  assert_true(t > now_ms - 60000 && t <= now_ms);
  if (reason) assert_string_equal(json_string_value(json_object_get(e, "reason")), reason);
  else assert_null(json_object_get(e, "reason"));
}

/* Events within the interval go out together, in order, in one request. */
static void test_batch_interval(void **state) {
  (void)state;
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_interval = 300ms\n", bk_start("{}"), 0);
  sio_client c[3];
  for (int i = 0; i < 3; i++) assert_int_equal(cl_connect(&c[i], fx.a.port), 0);
  assert_int_equal(bk_wait_requests(1, 3000), 1);
  h_sleep_ms(100);
  assert_int_equal(bk_count(NULL), 1);
  assert_string_equal(bk.content_type[0], "application/json");
  json_t *ev = events_of(0);
  assert_int_equal(json_array_size(ev), 3);
  for (int i = 0; i < 3; i++) assert_event(json_array_get(ev, (size_t)i), "connect", c[i].sid, NULL);
  json_decref(ev);

  /* A client that says it leaves the namespace, and two that drop the connection. */
  assert_int_equal(cl_send(&c[0], "1"), 0);
  h_sleep_ms(20);
  cl_close(&c[1]);
  h_sleep_ms(20);
  cl_close(&c[2]);
  assert_int_equal(bk_wait_requests(2, 3000), 2);
  ev = events_of(1);
  assert_int_equal(json_array_size(ev), 3);
  assert_event(json_array_get(ev, 0), "disconnect", c[0].sid, "client namespace disconnect");
  assert_event(json_array_get(ev, 1), "disconnect", c[1].sid, "transport close");
  assert_event(json_array_get(ev, 2), "disconnect", c[2].sid, "transport close");
  json_decref(ev);
  assert_int_equal(metric_at(&fx.a.app.metrics.webhook_deliveries, 2), 2);
  assert_int_equal(metric(&fx.a.app.metrics.webhook_failures), 0);
  cl_close(&c[0]);
}

/* batch_size events go at once, without waiting for the interval. */
static void test_batch_size(void **state) {
  (void)state;
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_size = 2\nbatch_interval = 1h\nevents = connect\n",
        bk_start("{}"), 0);
  sio_client c[4];
  for (int i = 0; i < 3; i++) assert_int_equal(cl_connect(&c[i], fx.a.port), 0);
  assert_int_equal(bk_wait_requests(1, 3000), 1);
  json_t *ev = events_of(0);
  assert_int_equal(json_array_size(ev), 2);
  assert_event(json_array_get(ev, 0), "connect", c[0].sid, NULL);
  assert_event(json_array_get(ev, 1), "connect", c[1].sid, NULL);
  json_decref(ev);
  /* The third waits (for an hour, or for a companion); disconnects are not wanted here. */
  cl_close(&c[0]);
  h_sleep_ms(200);
  assert_int_equal(bk_count(NULL), 1);
  assert_int_equal(cl_connect(&c[3], fx.a.port), 0);
  assert_int_equal(bk_wait_requests(2, 3000), 2);
  ev = events_of(1);
  assert_int_equal(json_array_size(ev), 2);
  assert_event(json_array_get(ev, 0), "connect", c[2].sid, NULL);
  assert_event(json_array_get(ev, 1), "connect", c[3].sid, NULL);
  json_decref(ev);
  for (int i = 1; i < 4; i++) cl_close(&c[i]);
}

/* A 500 is retried after the interval with the same batch; then it is delivered. */
static void test_retry_then_success(void **state) {
  (void)state;
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_interval = 50ms\nretries = 3\nevents = connect\n",
        bk_start("{}"), 0);
  bk_answer(200, 1, 0, NULL);
  sio_client c;
  assert_int_equal(cl_connect(&c, fx.a.port), 0);
  assert_int_equal(bk_wait_requests(2, 3000), 2);
  h_sleep_ms(300);
  assert_int_equal(bk_count(NULL), 2);
  assert_string_equal(bk.bodies[0], bk.bodies[1]);
  assert_true(bk.at_ms[1] - bk.at_ms[0] >= 40);
  json_t *ev = events_of(1);
  assert_event(json_array_get(ev, 0), "connect", c.sid, NULL);
  json_decref(ev);
  assert_int_equal(metric_at(&fx.a.app.metrics.webhook_deliveries, 1), 1);
  assert_int_equal(metric(&fx.a.app.metrics.webhook_failures), 0);
  cl_close(&c);
}

/* retries failed attempts, with a growing wait, then the batch is given up and counted; the next batch
 * starts afresh. */
static void test_give_up(void **state) {
  (void)state;
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_interval = 60ms\nretries = 2\nevents = connect\n",
        bk_start("{}"), 0);
  bk_answer(503, 0, 0, NULL);
  sio_client c;
  assert_int_equal(cl_connect(&c, fx.a.port), 0);
  assert_int_equal(bk_wait_requests(3, 3000), 3);
  assert_int_equal(metric_at(&fx.a.app.metrics.webhook_failures, 1), 1);
  h_sleep_ms(400); /* no fourth attempt */
  assert_int_equal(bk_count(NULL), 3);
  assert_int_equal(metric(&fx.a.app.metrics.webhook_deliveries), 0);
  uint64_t gap1 = bk.at_ms[1] - bk.at_ms[0], gap2 = bk.at_ms[2] - bk.at_ms[1];
  assert_true(gap1 >= 50);
  assert_true(gap2 >= 110);
  assert_string_equal(bk.bodies[0], bk.bodies[2]);

  bk_answer(200, 0, 0, NULL);
  sio_client d;
  assert_int_equal(cl_connect(&d, fx.a.port), 0);
  assert_int_equal(bk_wait_requests(4, 3000), 4);
  json_t *ev = events_of(3);
  assert_int_equal(json_array_size(ev), 1);
  assert_event(json_array_get(ev, 0), "connect", d.sid, NULL);
  json_decref(ev);
  assert_int_equal(metric_at(&fx.a.app.metrics.webhook_deliveries, 1), 1);
  cl_close(&c);
  cl_close(&d);
}

/* The backend is down: attempts fail at once, and are counted as one failed batch. */
static void test_backend_down(void **state) {
  (void)state;
  bk_start("");
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_interval = 20ms\nretries = 1\n", h_closed_port(), 0);
  sio_client c;
  assert_int_equal(cl_connect(&c, fx.a.port), 0);
  assert_int_equal(metric_at(&fx.a.app.metrics.webhook_failures, 1), 1);
  assert_int_equal(metric(&fx.a.app.metrics.webhook_deliveries), 0);
  cl_close(&c);
}

/* A full queue drops its oldest events while a request is stuck. */
static void test_queue_drops_oldest(void **state) {
  (void)state;
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_size = 1\nbatch_interval = 10ms\nevents = connect\n",
        bk_start("{}"), 2);
  bk_set_hold(1);
  sio_client c[4];
  assert_int_equal(cl_connect(&c[0], fx.a.port), 0);
  assert_int_equal(bk_wait_requests(1, 3000), 1); /* stuck in the backend */
  for (int i = 1; i < 4; i++) assert_int_equal(cl_connect(&c[i], fx.a.port), 0);
  h_sleep_ms(100);
  assert_int_equal(srv_webhooks_dropped(fx.hooks), 1);
  bk_set_hold(0);
  assert_int_equal(bk_wait_requests(3, 3000), 3);
  h_sleep_ms(100);
  assert_int_equal(bk_count(NULL), 3);
  const int want[3] = {0, 2, 3}; /* c[1]'s connect was the oldest in the full queue */
  for (int i = 0; i < 3; i++) {
    json_t *ev = events_of(i);
    assert_int_equal(json_array_size(ev), 1);
    assert_event(json_array_get(ev, 0), "connect", c[want[i]].sid, NULL);
    json_decref(ev);
  }
  assert_int_equal(metric_at(&fx.a.app.metrics.webhook_deliveries, 3), 3);
  for (int i = 0; i < 4; i++) cl_close(&c[i]);
}

/* At shutdown: the queued events (the clients' "server shutting down" disconnects included) are sent by
 * srv_webhooks_finish() and srv_http_drain() after the server's loop has returned. */
static void test_finish_at_shutdown(void **state) {
  (void)state;
  start("[webhooks]\nurl = http://127.0.0.1:%d/hooks\nbatch_interval = 1h\n", bk_start("{}"), 0);
  sio_client c;
  assert_int_equal(cl_connect(&c, fx.a.port), 0);
  h_sleep_ms(100);
  assert_int_equal(bk_count(NULL), 0);
  stop_server(); /* the pending batch does not hold the loop open */
  assert_int_equal(bk_count(NULL), 0);
  assert_int_equal(srv_webhooks_queued(fx.hooks), 2);
  srv_webhooks_finish(fx.hooks);
  srv_http_drain(fx.a.app.http);
  assert_int_equal(bk_count(NULL), 1);
  json_t *ev = events_of(0);
  assert_int_equal(json_array_size(ev), 2);
  assert_event(json_array_get(ev, 0), "connect", c.sid, NULL);
  assert_event(json_array_get(ev, 1), "disconnect", c.sid, "server shutting down");
  json_decref(ev);
  assert_int_equal(metric(&fx.a.app.metrics.webhook_deliveries), 1);
  cl_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_batch_interval, teardown),
      cmocka_unit_test_teardown(test_batch_size, teardown),
      cmocka_unit_test_teardown(test_retry_then_success, teardown),
      cmocka_unit_test_teardown(test_give_up, teardown),
      cmocka_unit_test_teardown(test_backend_down, teardown),
      cmocka_unit_test_teardown(test_queue_drops_oldest, teardown),
      cmocka_unit_test_teardown(test_finish_at_shutdown, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
