/* The Redis adapter's pieces that need no Redis: URLs, message fields, peers' targets, channel names. The
 * adapter against real Redis and Node peers is tests/interop/test_redis.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter/redis_internal.h"
#include "wsio.h"

static sio_json_span span(const char *s) {
  sio_json_span v;
  assert_int_equal(sio_json_validate(s, strlen(s), 64, &v), 0);
  return v;
}

static void test_url(void **st) {
  (void)st;
  redis_url u;
  assert_int_equal(redis_url_parse("redis://127.0.0.1", &u), 0);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 6379);
  assert_null(u.password);
  assert_null(u.user);
  assert_int_equal(u.db, 0);
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("redis://:s%40cret@cache.local:7000/3", &u), 0);
  assert_string_equal(u.host, "cache.local");
  assert_int_equal(u.port, 7000);
  assert_string_equal(u.password, "s@cret");
  assert_null(u.user);
  assert_int_equal(u.db, 3);
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("redis://app:pw@[::1]:6380", &u), 0);
  assert_string_equal(u.host, "::1");
  assert_string_equal(u.user, "app");
  assert_string_equal(u.password, "pw");
  assert_int_equal(u.port, 6380);
  redis_url_free(&u);
  static const char *bad[] = {"", "http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h:12x",
                              "redis://h/x", "redis://[::1", "redis://:pw@"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(redis_url_parse(bad[i], &u), WSIO_EINVAL);
  assert_int_equal(redis_url_parse(NULL, &u), WSIO_EINVAL);
}

static void test_url_sentinel(void **st) {
  (void)st;
  redis_url u, c;
  assert_int_equal(redis_url_parse("redis+sentinel://:pw@10.0.0.1,10.0.0.2:5000,[::1]:26380/my%20master/2", &u), 0);
  assert_null(u.host); /* the master: asked of the sentinels */
  assert_string_equal(u.master, "my master");
  assert_string_equal(u.password, "pw");
  assert_int_equal(u.db, 2);
  assert_int_equal(u.nsentinels, 3);
  assert_string_equal(u.sentinels[0].host, "10.0.0.1");
  assert_int_equal(u.sentinels[0].port, 26379);
  assert_string_equal(u.sentinels[1].host, "10.0.0.2");
  assert_int_equal(u.sentinels[1].port, 5000);
  assert_string_equal(u.sentinels[2].host, "::1");
  assert_int_equal(u.sentinels[2].port, 26380);
  assert_int_equal(redis_url_copy(&c, &u), 0);
  redis_url_free(&u);
  assert_string_equal(c.master, "my master");
  assert_string_equal(c.sentinels[2].host, "::1");
  assert_int_equal(c.nsentinels, 3);
  redis_url_free(&c);
  assert_int_equal(redis_url_parse("redis+sentinel://s1/mymaster", &u), 0);
  assert_int_equal(u.nsentinels, 1);
  assert_string_equal(u.master, "mymaster");
  assert_int_equal(u.db, 0);
  redis_url_free(&u);
  static const char *bad[] = {"redis+sentinel://s1", "redis+sentinel://s1/", "redis+sentinel://s1,/m",
                              "redis+sentinel://,s1/m", "redis+sentinel://s1:0/m", "redis+sentinel://s1/m/x",
                              "redis+sentinel:///m", "redis+sentinel://s1//2",
                              "redis+sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(redis_url_parse(bad[i], &u), WSIO_EINVAL);
  /* A sentinel's answer. */
  redisReply h = {.type = REDIS_REPLY_STRING, .str = "10.1.2.3", .len = 8};
  redisReply p = {.type = REDIS_REPLY_STRING, .str = "6380", .len = 4};
  redisReply *two[2] = {&h, &p};
  redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = two};
  char host[64];
  int port = 0;
  assert_int_equal(redis_sentinel_reply(&arr, host, sizeof host, &port), 0);
  assert_string_equal(host, "10.1.2.3");
  assert_int_equal(port, 6380);
  redisReply nil = {.type = REDIS_REPLY_NIL};
  assert_int_equal(redis_sentinel_reply(&nil, host, sizeof host, &port), WSIO_ENOTFOUND);
  p.str = "0";
  p.len = 1;
  assert_int_equal(redis_sentinel_reply(&arr, host, sizeof host, &port), WSIO_EPROTO);
  p.str = "6380";
  p.len = 4;
  assert_int_equal(redis_sentinel_reply(&arr, host, 8, &port), WSIO_EPROTO); /* no room for the host */
}

static void test_json_int(void **st) {
  (void)st;
  sio_json_span o = span("{\"a\":3,\"b\":-7,\"c\":1.5,\"d\":\"4\",\"e\":1e300,\"f\":42222222222222222222,"
                         "\"g\":-1e19,\"h\":2e3}");
  assert_int_equal(rda_json_int(&o, "a", -1), 3);
  assert_int_equal(rda_json_int(&o, "b", -1), -7);
  assert_int_equal(rda_json_int(&o, "c", -1), -1); /* not integral */
  assert_int_equal(rda_json_int(&o, "d", -1), -1); /* not a number */
  /* out of range for a count: the default, never an overflowing cast (found by fuzz_adapter) */
  assert_int_equal(rda_json_int(&o, "e", -1), -1);
  assert_int_equal(rda_json_int(&o, "f", -1), -1);
  assert_int_equal(rda_json_int(&o, "g", -1), -1);
  assert_int_equal(rda_json_int(&o, "h", -1), 2000);
  assert_int_equal(rda_json_int(&o, "missing", 9), 9);
  char *s = rda_json_strdup(&o, "d");
  assert_string_equal(s, "4");
  free(s);
  assert_null(rda_json_strdup(&o, "a"));
  sio_json_span z = span("{\"s\":\"a\\u0000b\"}");
  assert_null(rda_json_strdup(&z, "s")); /* an embedded NUL is refused */
}

static void test_targets(void **st) {
  (void)st;
  rda a;
  memset(&a, 0, sizeof a);
  sio_json_span o = span("{\"rooms\":[\"r1\",7,\"\\u00e9\"],\"except\":[\"x\"],\"flags\":{\"volatile\":true,"
                         "\"compress\":false,\"timeout\":250}}");
  uint32_t timeout = 0;
  assert_int_equal(rda_targets_read(&a, "/chat", &o, &timeout), 0);
  assert_string_equal(a.tg.t.nsp, "/chat");
  assert_int_equal(a.tg.t.nrooms, 3);
  assert_string_equal(a.tg.t.rooms[0], "r1");
  assert_string_equal(a.tg.t.rooms[1], "7"); /* socket.io rooms may be numbers */
  assert_string_equal(a.tg.t.rooms[2], "\xc3\xa9");
  assert_int_equal(a.tg.t.nexcept, 1);
  assert_string_equal(a.tg.t.except[0], "x");
  assert_int_equal(a.tg.t.flags, WSIO_OP_VOLATILE | WSIO_OP_NOCOMPRESS);
  assert_int_equal(timeout, 250);
  /* no opts: the whole namespace; a peer's timeout is capped */
  assert_int_equal(rda_targets_read(&a, "/", NULL, NULL), 0);
  assert_int_equal(a.tg.t.nrooms + a.tg.t.nexcept, 0);
  assert_non_null(a.tg.t.rooms);
  o = span("{\"flags\":{\"timeout\":1e12}}");
  assert_int_equal(rda_targets_read(&a, "/", &o, &timeout), 0);
  assert_int_equal(timeout, RDA_PEER_TIMEOUT_MAX_MS);
  static const char *bad[] = {"{\"rooms\":{}}", "{\"rooms\":[true]}", "{\"except\":[null]}", "{\"rooms\":[\"a\\u0000\"]}",
                              "[1]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    o = span(bad[i]);
    assert_int_equal(rda_targets_read(&a, "/", &o, NULL), WSIO_EPROTO);
  }
  buf b = {0};
  const char *rooms[] = {"a\"b"}, *except[] = {"c", "d"};
  sio_targets t = {.nsp = "/", .rooms = rooms, .nrooms = 1, .except = except, .nexcept = 2,
                   .flags = WSIO_OP_VOLATILE};
  assert_int_equal(rda_targets_write(&b, &t), 0);
  assert_int_equal(rda_flags_write(&b, &t, 100), 0);
  buf_append(&b, "", 1);
  assert_string_equal((char *)b.data, "\"rooms\":[\"a\\\"b\"],\"except\":[\"c\",\"d\"],\"flags\":{\"volatile\":true,"
                                      "\"timeout\":100}");
  buf_free(&b);
  buf_free(&a.tg.store);
  free(a.tg.ptrs);
}

static void test_channel_nsp(void **st) {
  (void)st;
  char nsp[16];
  size_t used;
  const char *ch = "socket.io-request#/chat#";
  assert_int_equal(rda_channel_nsp(ch, strlen(ch), 18, nsp, sizeof nsp, &used), 0);
  assert_string_equal(nsp, "/chat");
  assert_int_equal(used, strlen(ch));
  ch = "k#/#room#";
  assert_int_equal(rda_channel_nsp(ch, strlen(ch), 2, nsp, sizeof nsp, &used), 0);
  assert_string_equal(nsp, "/");
  assert_int_equal(used, 4);
  assert_int_equal(rda_channel_nsp("k#x#", 4, 2, nsp, sizeof nsp, &used), WSIO_EPROTO);   /* no '/' */
  assert_int_equal(rda_channel_nsp("k#/abc", 6, 2, nsp, sizeof nsp, &used), WSIO_EPROTO); /* no end '#' */
  ch = "k#/a-very-long-namespace#";
  assert_int_equal(rda_channel_nsp(ch, strlen(ch), 2, nsp, sizeof nsp, &used), WSIO_EPROTO);
}

static void test_first_arg(void **st) {
  (void)st;
  int absent;
  sio_json_span v = rda_first_arg("[{\"a\":1},2]", 11, &absent);
  assert_int_equal(absent, 0);
  assert_int_equal(v.len, 7);
  assert_memory_equal(v.p, "{\"a\":1}", 7);
  v = rda_first_arg("[]", 2, &absent);
  assert_int_equal(absent, 1);
  v = rda_first_arg("nope", 4, &absent);
  assert_int_equal(absent, 1);
}

static void test_attach_errors(void **st) {
  (void)st;
  wsio_server_config sc = {.log_level = 1};
  wsio_server *s = wsio_server_new(&sc);
  wsio_io *io = wsio_io_new(s, NULL);
  assert_non_null(io);
  wsio_redis_stats rs;
  assert_int_equal(wsio_io_redis_stats(io, &rs), WSIO_ENOTFOUND);
  wsio_redis_config c = {.url = "http://nope"};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EINVAL);
  c = (wsio_redis_config){.url = "redis://127.0.0.1:1", .connect_timeout_ms = 500};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EIO); /* nothing listens on port 1: a clear error */
  c = (wsio_redis_config){.url = "redis://127.0.0.1:1", .subscription_mode = (wsio_redis_mode)7};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EINVAL);
  /* degraded start: attached at once, not connected, counted as such */
  c = (wsio_redis_config){.url = "redis://127.0.0.1:1", .degraded_start = 1};
  assert_int_equal(wsio_io_redis(io, &c), 0);
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EEXISTS);
  assert_int_equal(wsio_io_redis_stats(io, &rs), 0);
  assert_int_equal(rs.connected, 0);
  assert_int_equal(rs.published, 0);
  /* with Redis away, a broadcast still reaches the local part and is counted as dropped for the others */
  assert_int_equal(wsio_io_emit(io, "ev", "[1]"), 0);
  assert_int_equal(wsio_io_redis_stats(io, &rs), 0);
  assert_int_equal(rs.dropped, 1);
  wsio_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url),         cmocka_unit_test(test_url_sentinel), cmocka_unit_test(test_json_int),
      cmocka_unit_test(test_targets),
      cmocka_unit_test(test_channel_nsp), cmocka_unit_test(test_first_arg), cmocka_unit_test(test_attach_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
