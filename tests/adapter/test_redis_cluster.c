/* Unit tests of src/adapter/redis_cluster.c: hash slots, CLUSTER SLOTS replies, redirections. The link over
 * a real cluster (routing, slot moves) is tests/interop/test_redis.mjs with REDIS_MODE=cluster-*. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "adapter/redis_cluster.h"

static void test_crc16(void **st) {
  (void)st;
  /* The check value of CRC-16/XMODEM, the one Redis Cluster's specification gives. */
  assert_int_equal(rcl_crc16("123456789", 9), 0x31C3);
  assert_int_equal(rcl_crc16("", 0), 0);
  assert_int_equal(rcl_crc16("A", 1), 0x58E5);
}

/* Slots as redis-cli CLUSTER KEYSLOT gives them (Redis 7.0). */
static void test_keyslot(void **st) {
  (void)st;
  static const struct {
    const char *key;
    unsigned slot;
  } v[] = {
      {"123456789", 12739},
      {"foo", 12182},
      {"bar", 5061},
      {"{user1000}.following", 3443},  /* the tag alone */
      {"{}foo", 9500},                 /* an empty tag: the whole key */
      {"foo{}{bar}", 8363},            /* the first '{' decides, and its tag is empty */
      {"foo{{bar}}zap", 4015},         /* tag "{bar" */
      {"foo{bar}{zap}", 5061},         /* the first tag only: "bar" */
      {"socket.io#/#", 13868},
      {"socket.io-request#/#", 12937},
      {"socket.io#/#r1#", 8259},
      {"", 0},
  };
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    assert_int_equal(rcl_keyslot(v[i].key, strlen(v[i].key)), v[i].slot);
  assert_int_equal(rcl_keyslot("foo{bar", 7), rcl_keyslot("foo{bar", 7)); /* no closing brace: whole key */
  assert_int_equal(rcl_keyslot("a{b}", 4), rcl_keyslot("b", 1));
}

/* Parses RESP bytes into a reply (freed by the caller). */
static redisReply *resp(const char *bytes) {
  redisReader *rd = redisReaderCreate();
  assert_non_null(rd);
  assert_int_equal(redisReaderFeed(rd, bytes, strlen(bytes)), REDIS_OK);
  void *r = NULL;
  assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
  assert_non_null(r);
  redisReaderFree(rd);
  return r;
}

static void test_slots_parse(void **st) {
  (void)st;
  /* A Redis 7.0 reply as it came from a 3-primary cluster (node ids, empty metadata), plus a replica on
   * the second range that must be skipped. */
  redisReply *r = resp("*3\r\n"
                       "*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:17001\r\n$40\r\n"
                       "9b9d02a0ccfcafe2969c97ad52b6b29db100df5a\r\n*0\r\n"
                       "*4\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:17002\r\n$40\r\n"
                       "ea54862e74713b4d2312e03cfc90624fe9ea8546\r\n*0\r\n"
                       "*4\r\n$8\r\n10.0.0.9\r\n:17004\r\n$3\r\nabc\r\n*0\r\n"
                       "*3\r\n:10923\r\n:16383\r\n*4\r\n$1\r\n?\r\n:17003\r\n$40\r\n"
                       "bf1eb2f18de92f23a02fc80b666cf378ec261605\r\n*0\r\n");
  rcl_range g[4];
  assert_int_equal(rcl_slots_parse(r, g, 4), 3);
  assert_int_equal(g[0].start, 0);
  assert_int_equal(g[0].end, 5460);
  assert_int_equal(g[0].port, 17001);
  assert_int_equal(g[0].hostlen, 9);
  assert_memory_equal(g[0].host, "127.0.0.1", 9);
  assert_int_equal(g[1].start, 5461);
  assert_int_equal(g[1].end, 10922);
  assert_int_equal(g[1].port, 17002); /* the primary, not the replica */
  assert_int_equal(g[2].port, 17003);
  assert_int_equal(g[2].hostlen, 0); /* "?": unknown endpoint, the node asked is meant */
  assert_int_equal(rcl_slots_parse(r, g, 2), -1); /* more ranges than room */
  freeReplyObject(r);

  /* Older servers: no node id; a NULL host (unknown endpoint). */
  r = resp("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$-1\r\n:7000\r\n");
  assert_int_equal(rcl_slots_parse(r, g, 4), 1);
  assert_int_equal(g[0].hostlen, 0);
  assert_int_equal(g[0].end, 16383);
  freeReplyObject(r);

  r = resp("*0\r\n");
  assert_int_equal(rcl_slots_parse(r, g, 4), 0);
  freeReplyObject(r);

  static const char *bad[] = {
      "-ERR This instance has cluster support disabled\r\n",
      "*1\r\n*3\r\n:10\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n",          /* end before start */
      "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",       /* past the last slot */
      "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n",           /* port 0 */
      "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n",                 /* no port */
      "*1\r\n*2\r\n:0\r\n:1\r\n",                                   /* no node */
      "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",      /* a string for a slot */
      "*1\r\n:7\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    r = resp(bad[i]);
    assert_int_equal(rcl_slots_parse(r, g, 4), -1);
    freeReplyObject(r);
  }
  assert_int_equal(rcl_slots_parse(NULL, g, 4), -1);
}

static int redirect(const char *m, unsigned *slot, char *host, int *port) {
  const char *h;
  size_t hl;
  int k = rcl_redirect_parse(m, strlen(m), slot, &h, &hl, port);
  if (k) {
    memcpy(host, h, hl);
    host[hl] = 0;
  }
  return k;
}

static void test_redirect(void **st) {
  (void)st;
  unsigned slot;
  char host[64];
  int port;
  assert_int_equal(redirect("MOVED 3999 127.0.0.1:6381", &slot, host, &port), 1);
  assert_int_equal(slot, 3999);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 6381);
  assert_int_equal(redirect("ASK 16383 ::1:7000", &slot, host, &port), 2);
  assert_int_equal(slot, 16383);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 7000);
  assert_int_equal(redirect("MOVED 12 :7002", &slot, host, &port), 1); /* endpoint unknown: the sender's */
  assert_string_equal(host, "");
  static const char *bad[] = {"MOVED", "MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:", "MOVED 1 h:0",
                              "MOVED 1 h:70000", "MOVED 1 h:12a", "ERR wrong", "CLUSTERDOWN The cluster is down",
                              "MOVED 1234567 h:1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(redirect(bad[i], &slot, host, &port), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc16),
      cmocka_unit_test(test_keyslot),
      cmocka_unit_test(test_slots_parse),
      cmocka_unit_test(test_redirect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
