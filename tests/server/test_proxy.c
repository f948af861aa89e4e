/* The event proxy end to end: a real wsio server in a thread, a real HTTP backend in the test, and a raw
 * Socket.IO client over WebSocket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/app_harness.h"
#include "server/harness.h"
#include "server/proxy.h"

typedef struct fixture {
  h_app a;
  srv_proxy *proxy;
  int local;        /* events the proxy did not take */
} fixture;

static fixture fx;

static const char *claims(wsio_socket *s, void *ud) {
  (void)s;
  (void)ud;
  return "{\"sub\":\"user-7\"}";
}

/* "join" is handled here (so tests can put sockets in rooms); everything else is offered to the proxy. */
static void on_any(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  (void)ud;
  if (strcmp(wsio_args_event(args), "join") == 0) {
    char room[64];
    if (wsio_args_string(args, 0, room, sizeof room) > 0) wsio_socket_join(s, room);
    if (ack) wsio_ack_send(ack, "[\"joined\"]");
    return;
  }
  if (!srv_proxy_event(fx.proxy, s, args, ack)) {
    __atomic_add_fetch(&fx.local, 1, __ATOMIC_SEQ_CST);
    if (ack) wsio_ack_send(ack, "[\"local\"]");
  }
}

/* Starts the server with the configuration text (a [proxy] section, %d for the backend's port). */
static void start(const char *conf, int backend_port) {
  memset(&fx, 0, sizeof fx);
  h_app_init(&fx.a, conf, backend_port);
  fx.a.app.claims_json = claims;
  fx.proxy = srv_proxy_new(&fx.a.app);
  assert_non_null(fx.proxy);
  wsio_nsp_on_any(wsio_io_sockets(fx.a.app.io), on_any, NULL);
  h_app_run(&fx.a);
}

static void stop_server(void) { h_app_stop(&fx.a); }

/* The program's order: the loop has returned, the proxy cancels what is left, then the client goes. */
static int teardown(void **state) {
  (void)state;
  stop_server();
  bk_set_hold(0);
  srv_proxy_free(fx.proxy);
  h_app_free(&fx.a);
  bk_stop();
  return 0;
}

static uint64_t metric(const uint64_t *field) { return __atomic_load_n(field, __ATOMIC_SEQ_CST); }

#define PROXY_CONF "[proxy]\nurl = http://127.0.0.1:%d/events\ntimeout = 2s\n"

/* The backend's reply becomes the client's ack and an emit back to it; the request carries the event, its
 * arguments, the namespace and the socket (id, rooms, address, claims). */
static void test_ack_and_emit(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"emit\":[{\"event\":\"news\",\"data\":[\"hi\",2]}],\"ack\":[\"ok\",{\"n\":1}]}"));
  sio_client a;
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"chat\",\"hello\",{\"x\":[1,2]},null]"), 0);
  char pkt[4096], skipped[4096];
  assert_int_equal(cl_expect(&a, "31", pkt, sizeof pkt, 3000, skipped, sizeof skipped), 0);
  assert_string_equal(pkt, "31[\"ok\",{\"n\":1}]");
  assert_string_equal(skipped, "2[\"news\",\"hi\",2]\n"); /* the emit came first, and only once */

  assert_int_equal(bk_count(NULL), 1);
  assert_string_equal(bk.content_type[0], "application/json");
  json_error_t jerr;
  json_t *req = json_loads(bk.bodies[0], 0, &jerr);
  assert_non_null(req);
  assert_string_equal(json_string_value(json_object_get(req, "event")), "chat");
  assert_string_equal(json_string_value(json_object_get(req, "namespace")), "/");
  json_t *sock = json_object_get(req, "socket");
  assert_string_equal(json_string_value(json_object_get(sock, "id")), a.sid);
  json_t *rooms = json_object_get(sock, "rooms");
  assert_int_equal(json_array_size(rooms), 1);
  assert_string_equal(json_string_value(json_array_get(rooms, 0)), a.sid);
  assert_true(strncmp(json_string_value(json_object_get(sock, "address")), "127.0.0.1:", 10) == 0);
  assert_string_equal(json_string_value(json_object_get(json_object_get(sock, "claims"), "sub")), "user-7");
  json_t *want = json_loads("[\"hello\",{\"x\":[1,2]},null]", 0, &jerr);
  assert_true(json_equal(json_object_get(req, "args"), want));
  json_decref(want);
  json_decref(req);

  assert_int_equal(metric(&fx.a.app.metrics.proxy_requests), 1);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 0);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_latency.total), 1);
  cl_close(&a);
}

/* "others" and "room:NAME" leave the sender out, "all" does not; an event without an ack still goes to
 * the backend, and the client's ack is answered with nothing when the reply has no "ack". */
static void test_emit_targets(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"emit\":[{\"event\":\"o\",\"data\":[1],\"to\":\"others\"},"
                             "{\"event\":\"a\",\"data\":2,\"to\":\"all\"},"
                             "{\"event\":\"r\",\"data\":[3],\"to\":\"room:lobby\"},"
                             "{\"event\":\"x\",\"data\":[4],\"to\":\"nowhere\"}]}"));
  sio_client a, b, c;
  char pkt[4096], skipped[4096];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_connect(&b, fx.a.port), 0);
  assert_int_equal(cl_connect(&c, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"join\",\"lobby\"]"), 0);
  assert_int_equal(cl_expect(&a, "31", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_int_equal(cl_send(&b, "21[\"join\",\"lobby\"]"), 0);
  assert_int_equal(cl_expect(&b, "31", pkt, sizeof pkt, 3000, NULL, 0), 0);

  assert_int_equal(cl_send(&a, "22[\"go\"]"), 0);
  assert_int_equal(cl_expect(&a, "32", pkt, sizeof pkt, 3000, skipped, sizeof skipped), 0);
  assert_string_equal(pkt, "32[]");
  assert_string_equal(skipped, "2[\"a\",2]\n");
  /* b: in the room; c: not */
  assert_int_equal(cl_read(&b, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "2[\"o\",1]");
  assert_int_equal(cl_read(&b, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "2[\"a\",2]");
  assert_int_equal(cl_read(&b, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "2[\"r\",3]");
  assert_int_equal(cl_read(&c, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "2[\"o\",1]");
  assert_int_equal(cl_read(&c, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "2[\"a\",2]");
  assert_int_equal(cl_read(&c, pkt, sizeof pkt, 200), -1);

  /* Without an ack: forwarded all the same. */
  assert_int_equal(cl_send(&c, "2[\"fire\",\"and forget\"]"), 0);
  assert_int_equal(bk_wait_requests(2, 3000), 2);
  assert_non_null(strstr(bk.bodies[1], "\"args\":[\"and forget\"]"));
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 0);
  cl_close(&a);
  cl_close(&b);
  cl_close(&c);
}

/* Binary arguments go to the backend as {"_binary":base64}; {"_binary":...} in the reply becomes binary. */
static void test_binary(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"ack\":[{\"_binary\":\"BAUG/w==\"},\"t\"]}"));
  sio_client a;
  char pkt[4096];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "51-7[\"bin\",{\"_placeholder\":true,\"num\":0},\"s\"]"), 0);
  assert_int_equal(cl_send_binary(&a, "\x01\x02\x03\xfb", 4), 0);
  assert_int_equal(cl_expect(&a, "61-7", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "61-7[{\"_placeholder\":true,\"num\":0},\"t\"]");
  assert_int_equal(a.binlen, 4);
  assert_memory_equal(a.bin, "\x04\x05\x06\xff", 4);
  assert_non_null(strstr(bk.bodies[0], "\"args\":[{\"_binary\":\"AQID+w==\"},\"s\"]"));
  cl_close(&a);
}

/* A backend slower than the timeout: the ack says so at the timeout, and the counters show it. */
static void test_timeout(void **state) {
  (void)state;
  start("[proxy]\nurl = http://127.0.0.1:%d/events\ntimeout = 300ms\n", bk_start("{\"ack\":[\"late\"]}"));
  bk_answer(200, 0, 1500, NULL);
  sio_client a;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  uint64_t t0 = h_now_ms();
  assert_int_equal(cl_send(&a, "23[\"slow\"]"), 0);
  assert_int_equal(cl_expect(&a, "33", pkt, sizeof pkt, 3000, NULL, 0), 0);
  uint64_t took = h_now_ms() - t0;
  assert_string_equal(pkt, "33[{\"error\":\"backend timeout\"}]");
  assert_true(took >= 250 && took < 1400);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_timeouts), 1);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 1);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_requests), 1);
  cl_close(&a);
}

/* Nothing listens at the URL. */
static void test_backend_down(void **state) {
  (void)state;
  bk_start("");
  start(PROXY_CONF, h_closed_port());
  sio_client a;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "24[\"e\"]"), 0);
  assert_int_equal(cl_expect(&a, "34", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "34[{\"error\":\"backend unavailable\"}]");
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 1);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_timeouts), 0);
  cl_close(&a);
}

/* A 500, and a 200 whose body is not a JSON object, are failures; nothing of them is emitted. */
static void test_bad_replies(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"emit\":[{\"event\":\"never\"}],\"ack\":[1]}"));
  bk_answer(500, 0, 0, NULL);
  sio_client a;
  char pkt[1024], skipped[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "25[\"e\"]"), 0);
  assert_int_equal(cl_expect(&a, "35", pkt, sizeof pkt, 3000, skipped, sizeof skipped), 0);
  assert_string_equal(pkt, "35[{\"error\":\"backend unavailable\"}]");
  assert_string_equal(skipped, "");
  bk_answer(200, 0, 0, "[\"an array\"]");
  assert_int_equal(cl_send(&a, "26[\"e\"]"), 0);
  assert_int_equal(cl_expect(&a, "36", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "36[{\"error\":\"backend unavailable\"}]");
  bk_answer(200, 0, 0, "{\"ack\":[tru");
  assert_int_equal(cl_send(&a, "27[\"e\"]"), 0);
  assert_int_equal(cl_expect(&a, "37", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "37[{\"error\":\"backend unavailable\"}]");
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 3);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_requests), 3);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_latency.total), 3);
  cl_close(&a);
}

/* Sequential events reuse one kept-alive connection to the backend. */
static void test_keep_alive(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"ack\":[true]}"));
  sio_client a;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  for (int i = 1; i <= 4; i++) {
    char msg[64], want[16];
    snprintf(msg, sizeof msg, "2%d[\"seq\",%d]", i, i);
    assert_int_equal(cl_send(&a, msg), 0);
    snprintf(want, sizeof want, "3%d", i);
    assert_int_equal(cl_expect(&a, want, pkt, sizeof pkt, 3000, NULL, 0), 0);
  }
  int conns;
  assert_int_equal(bk_count(&conns), 4);
  assert_int_equal(conns, 1);
  cl_close(&a);
}

/* Past max_in_flight an event is refused at once with "busy"; the others complete when the backend
 * answers. */
static void test_in_flight_bound(void **state) {
  (void)state;
  start("[proxy]\nurl = http://127.0.0.1:%d/events\ntimeout = 5s\nmax_in_flight = 2\n",
        bk_start("{\"ack\":[\"done\"]}"));
  bk_set_hold(1);
  sio_client a;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"e\"]"), 0);
  assert_int_equal(cl_send(&a, "22[\"e\"]"), 0);
  assert_int_equal(bk_wait_requests(2, 3000), 2);
  assert_int_equal(cl_send(&a, "23[\"e\"]"), 0);
  assert_int_equal(cl_read(&a, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "33[{\"error\":\"busy\"}]");
  bk_set_hold(0);
  assert_int_equal(cl_expect(&a, "3", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_true(strcmp(pkt, "31[\"done\"]") == 0 || strcmp(pkt, "32[\"done\"]") == 0);
  assert_int_equal(cl_expect(&a, "3", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_true(strcmp(pkt, "31[\"done\"]") == 0 || strcmp(pkt, "32[\"done\"]") == 0);
  assert_int_equal(bk_count(NULL), 2);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_requests), 3);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 1);
  /* The slots are free again. */
  assert_int_equal(cl_send(&a, "24[\"e\"]"), 0);
  assert_int_equal(cl_expect(&a, "34", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "34[\"done\"]");
  cl_close(&a);
}

/* The sender leaves before the reply: its ack goes nowhere, "others" still reach the rest. */
static void test_sender_gone(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"emit\":[{\"event\":\"self\",\"to\":\"self\"},{\"event\":\"bye\",\"data\":[1],"
                             "\"to\":\"others\"}],\"ack\":[\"x\"]}"));
  bk_answer(200, 0, 300, NULL);
  sio_client a, b;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_connect(&b, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"leaving\"]"), 0);
  assert_int_equal(bk_wait_requests(1, 3000), 1);
  cl_close(&a);
  assert_int_equal(cl_read(&b, pkt, sizeof pkt, 3000), 0);
  assert_string_equal(pkt, "2[\"bye\",1]");
  assert_int_equal(metric(&fx.a.app.metrics.proxy_failures), 0);
  /* The server goes on. */
  bk_answer(200, 0, 0, NULL);
  assert_int_equal(cl_send(&b, "29[\"again\"]"), 0);
  assert_int_equal(cl_expect(&b, "39", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "39[\"x\"]");
  cl_close(&b);
}

/* Only events matching [proxy] events are taken; with no url nothing is. */
static void test_patterns(void **state) {
  (void)state;
  start("[proxy]\nurl = http://127.0.0.1:%d/events\nevents = order-*, pay\n", bk_start("{\"ack\":[\"backend\"]}"));
  sio_client a;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"chat\"]"), 0);
  assert_int_equal(cl_expect(&a, "31", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "31[\"local\"]");
  assert_int_equal(cl_send(&a, "22[\"order-42\"]"), 0);
  assert_int_equal(cl_expect(&a, "32", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "32[\"backend\"]");
  assert_int_equal(cl_send(&a, "23[\"pay\"]"), 0);
  assert_int_equal(cl_expect(&a, "33", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "33[\"backend\"]");
  assert_int_equal(cl_send(&a, "24[\"payday\"]"), 0);
  assert_int_equal(cl_expect(&a, "34", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "34[\"local\"]");
  assert_int_equal(bk_count(NULL), 2);
  assert_int_equal(metric(&fx.a.app.metrics.proxy_requests), 2);
  cl_close(&a);
}

static void test_off_without_url(void **state) {
  (void)state;
  bk_start("");
  start("[proxy]\nevents = *\n", 0);
  sio_client a;
  char pkt[1024];
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"chat\"]"), 0);
  assert_int_equal(cl_expect(&a, "31", pkt, sizeof pkt, 3000, NULL, 0), 0);
  assert_string_equal(pkt, "31[\"local\"]");
  assert_int_equal(metric(&fx.a.app.metrics.proxy_requests), 0);
  cl_close(&a);
}

/* A request still in flight does not hold a stopping server: the loop returns, and freeing the proxy
 * cancels the request (the client it was for is gone). */
static void test_stop_with_request_in_flight(void **state) {
  (void)state;
  start("[proxy]\nurl = http://127.0.0.1:%d/events\ntimeout = 10s\n", bk_start("{\"ack\":[1]}"));
  bk_set_hold(1);
  sio_client a;
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  assert_int_equal(cl_send(&a, "21[\"e\"]"), 0);
  assert_int_equal(bk_wait_requests(1, 3000), 1);
  cl_close(&a);
  uint64_t t0 = h_now_ms();
  stop_server();
  assert_true(h_now_ms() - t0 < 2000);
  assert_int_equal(srv_proxy_in_flight(fx.proxy), 1);
  srv_proxy_free(fx.proxy);
  fx.proxy = NULL;
  assert_int_equal(srv_http_in_flight(fx.a.app.http), 0);
}

/* An event with more arguments than fit on the dispatcher's stack reaches the backend whole. */
static void test_many_arguments(void **state) {
  (void)state;
  start(PROXY_CONF, bk_start("{\"ack\":[\"ok\"]}"));
  sio_client a;
  assert_int_equal(cl_connect(&a, fx.a.port), 0);
  const char *args = "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,\"last\"]";
  char pkt[4096], skipped[4096];
  snprintf(pkt, sizeof pkt, "22[\"many\",%s", args + 1);
  assert_int_equal(cl_send(&a, pkt), 0);
  assert_int_equal(cl_expect(&a, "32", pkt, sizeof pkt, 3000, skipped, sizeof skipped), 0);
  assert_string_equal(pkt, "32[\"ok\"]");
  json_error_t jerr;
  json_t *req = json_loads(bk.bodies[0], 0, &jerr), *want = json_loads(args, 0, &jerr);
  assert_non_null(req);
  assert_true(json_equal(json_object_get(req, "args"), want));
  json_decref(want);
  json_decref(req);
  cl_close(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_ack_and_emit, teardown),
      cmocka_unit_test_teardown(test_many_arguments, teardown),
      cmocka_unit_test_teardown(test_emit_targets, teardown),
      cmocka_unit_test_teardown(test_binary, teardown),
      cmocka_unit_test_teardown(test_timeout, teardown),
      cmocka_unit_test_teardown(test_backend_down, teardown),
      cmocka_unit_test_teardown(test_bad_replies, teardown),
      cmocka_unit_test_teardown(test_keep_alive, teardown),
      cmocka_unit_test_teardown(test_in_flight_bound, teardown),
      cmocka_unit_test_teardown(test_sender_gone, teardown),
      cmocka_unit_test_teardown(test_patterns, teardown),
      cmocka_unit_test_teardown(test_off_without_url, teardown),
      cmocka_unit_test_teardown(test_stop_with_request_in_flight, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
