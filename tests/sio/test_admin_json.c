/*
 * The Admin UI's pure parts (src/sio/admin_json.c): instrument()'s EventBuffer (one count per second, type
 * and subtype, emptied at each server_stats, bounded), JSON dates as JSON.stringify writes them, and a socket
 * as instrument()'s serialize() gives it (field order, the handshake without auth, "_admin" read and
 * hidden, the proxy headers for the address).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sio/admin.h"

static char *json_of(sio_admin_events *e) {
  buf b = {0};
  assert_int_equal(sio_admin_events_json(e, &b), 0);
  buf_append(&b, "", 1);
  return (char *)b.data;
}

static void test_buckets(void **state) {
  (void)state;
  sio_admin_events *e = calloc(1, sizeof *e);
  sio_admin_events_push(e, SIO_ADMIN_RAW_CONNECTION, NULL, 1, 5000);
  sio_admin_events_push(e, SIO_ADMIN_RAW_CONNECTION, NULL, 1, 5999); /* the same second */
  sio_admin_events_push(e, SIO_ADMIN_RAW_CONNECTION, NULL, 1, 6000);
  sio_admin_events_push(e, SIO_ADMIN_RAW_DISCONNECTION, "transport close", 1, 6001);
  sio_admin_events_push(e, SIO_ADMIN_RAW_DISCONNECTION, "ping timeout", 2, 6002);
  sio_admin_events_push(e, SIO_ADMIN_RAW_DISCONNECTION, "transport close", 1, 6003);
  sio_admin_events_push(e, SIO_ADMIN_BYTES_IN, NULL, 0, 6004); /* nothing: no bucket, as no event */
  sio_admin_events_push(e, 99, NULL, 1, 6004);                 /* no such type */
  char *j = json_of(e);
  assert_string_equal(j, "[{\"timestamp\":5000,\"type\":\"rawConnection\",\"count\":2},"
                         "{\"timestamp\":6000,\"type\":\"rawConnection\",\"count\":1},"
                         "{\"timestamp\":6000,\"type\":\"rawDisconnection\",\"subType\":\"transport close\",\"count\":2},"
                         "{\"timestamp\":6000,\"type\":\"rawDisconnection\",\"subType\":\"ping timeout\",\"count\":2}]");
  free(j);
  /* Emptied by the read, as getValuesAndClear. */
  j = json_of(e);
  assert_string_equal(j, "[]");
  free(j);
  free(e);
}

static void test_buckets_bounded(void **state) {
  (void)state;
  sio_admin_events *e = calloc(1, sizeof *e);
  /* A second each, far more than fit: the buffer stays full and later counts join the newest bucket of
   * their kind. */
  for (int i = 0; i < 3 * SIO_ADMIN_BUCKETS; i++) sio_admin_events_push(e, SIO_ADMIN_PACKETS_IN, NULL, 1, i * 1000ll);
  assert_int_equal(e->n, SIO_ADMIN_BUCKETS);
  uint64_t total = 0;
  for (size_t i = 0; i < e->n; i++) total += e->v[i].count;
  assert_int_equal(total, 3 * SIO_ADMIN_BUCKETS);
  /* A kind with no bucket yet is dropped, not added past the end. */
  sio_admin_events_push(e, SIO_ADMIN_BYTES_OUT, NULL, 7, 1);
  assert_int_equal(e->n, SIO_ADMIN_BUCKETS);
  /* A long reason is cut to fit. */
  e->n = 0;
  char reason[100];
  memset(reason, 'r', sizeof reason - 1);
  reason[sizeof reason - 1] = 0;
  sio_admin_events_push(e, SIO_ADMIN_RAW_DISCONNECTION, reason, 1, 0);
  sio_admin_events_push(e, SIO_ADMIN_RAW_DISCONNECTION, reason, 1, 0);
  assert_int_equal(e->n, 1);
  assert_int_equal(strlen(e->v[0].sub), SIO_ADMIN_SUBTYPE_MAX - 1);
  assert_int_equal(e->v[0].count, 2);
  free(e);
}

static void test_date(void **state) {
  (void)state;
  char d[SIO_ADMIN_DATE_LEN];
  assert_int_equal(sio_admin_date(d, 0), 26);
  assert_string_equal(d, "\"1970-01-01T00:00:00.000Z\"");
  sio_admin_date(d, 1714566896789ll);
  assert_string_equal(d, "\"2024-05-01T12:34:56.789Z\"");
  sio_admin_date(d, -1);
  assert_string_equal(d, "null");
}

static const char hs[] =
    "{\"headers\":{\"host\":\"h:1\",\"user-agent\":\"ua\"},\"time\":\"Wed May 01 2024\",\"address\":\"1.2.3.4:5\","
    "\"xdomain\":false,\"secure\":true,\"issued\":1714566896789,\"url\":\"/socket.io/?EIO=4\","
    "\"query\":{\"EIO\":\"4\"},\"auth\":{\"password\":\"secret\"}}";

static char *socket_json(const sio_admin_socket *in) {
  buf b = {0};
  assert_int_equal(sio_admin_socket_json(&b, in), 0);
  buf_append(&b, "", 1);
  return (char *)b.data;
}

static void test_socket_local(void **state) {
  (void)state;
  const char *rooms[] = {"SID", "r1"};
  sio_admin_socket in = {.id = "SID", .client_id = "abcdefghijkl", .transport = "websocket", .nsp = "/",
                         .data_json = "{\"user\":\"ann\",\"n\":1}", .handshake_json = hs, .rooms = rooms,
                         .nrooms = 2};
  char *j = socket_json(&in);
  assert_string_equal(j, "{\"id\":\"SID\",\"clientId\":\"abcdefghijkl\",\"transport\":\"websocket\",\"nsp\":\"/\","
                         "\"data\":{\"user\":\"ann\",\"n\":1},\"handshake\":{\"address\":\"1.2.3.4:5\","
                         "\"headers\":{\"host\":\"h:1\",\"user-agent\":\"ua\"},\"query\":{\"EIO\":\"4\"},"
                         "\"issued\":1714566896789,\"secure\":true,\"time\":\"Wed May 01 2024\","
                         "\"url\":\"/socket.io/?EIO=4\",\"xdomain\":false},\"rooms\":[\"SID\",\"r1\"]}");
  assert_null(strstr(j, "secret")); /* auth never goes out */
  free(j);
}

static void test_socket_remote(void **state) {
  (void)state;
  /* Another server's socket: clientId and transport come from data._admin, which is then hidden; a proxy's
   * header names the address. */
  const char *h2 = "{\"headers\":{\"x-forwarded-for\":\"9.9.9.9\",\"cf-connecting-ip\":\"\"},\"address\":\"a\"}";
  const char *rooms[] = {"X"};
  sio_admin_socket in = {.id = "X", .nsp = "/chat",
                         .data_json = "{\"_admin\":{\"clientId\":\"cccccccccccc\",\"transport\":\"polling\"},\"k\":[1]}",
                         .handshake_json = h2, .rooms = rooms, .nrooms = 1};
  char *j = socket_json(&in);
  assert_string_equal(j, "{\"id\":\"X\",\"clientId\":\"cccccccccccc\",\"transport\":\"polling\",\"nsp\":\"/chat\","
                         "\"data\":{\"k\":[1]},\"handshake\":{\"address\":\"9.9.9.9\",\"headers\":{\"x-forwarded-for\":"
                         "\"9.9.9.9\",\"cf-connecting-ip\":\"\"}},\"rooms\":[\"X\"]}");
  free(j);
  /* Nothing known: left out, as JSON.stringify leaves out undefined; data that is no object is {}. */
  sio_admin_socket bare = {.id = "Y", .nsp = "/", .data_json = "42", .handshake_json = "{}"};
  j = socket_json(&bare);
  assert_string_equal(j, "{\"id\":\"Y\",\"nsp\":\"/\",\"data\":{},\"handshake\":{},\"rooms\":[]}");
  free(j);
  /* A room name that is not UTF-8 cannot break the JSON. */
  const char *odd[] = {"a\xff"};
  sio_admin_socket bad = {.id = "Z", .nsp = "/", .rooms = odd, .nrooms = 1};
  j = socket_json(&bad);
  assert_non_null(strstr(j, "\"rooms\":[\"a?\"]"));
  free(j);
  /* A broken handshake is refused and leaves the output as it was. */
  buf b = {0};
  buf_append(&b, "x", 1);
  sio_admin_socket broken = {.id = "Z", .nsp = "/", .handshake_json = "{\"headers\":"};
  assert_int_equal(sio_admin_socket_json(&b, &broken), WSIO_EINVAL);
  assert_int_equal(b.len, 1);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buckets),      cmocka_unit_test(test_buckets_bounded),
      cmocka_unit_test(test_date),         cmocka_unit_test(test_socket_local),
      cmocka_unit_test(test_socket_remote),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
