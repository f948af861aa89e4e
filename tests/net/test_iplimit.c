/* net_iplimit: connections per address, the handshake bucket, keys (IPv4, IPv6 prefixes, v4-mapped), the
 * bounded table under a flood of addresses, expiry, sharing between threads; net_bucket. */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "net/iplimit.h"

static struct sockaddr_storage v4(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(40000);
  assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  return ss;
}

static struct sockaddr_storage v6(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(40000);
  assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static uint64_t entries(net_iplimit *t) {
  net_iplimit_stats st;
  net_iplimit_stats_get(t, &st);
  return st.entries;
}

static void test_connections_per_address(void **state) {
  (void)state;
  net_iplimit_config cfg = {.max_conns = 3};
  net_iplimit *t = net_iplimit_new(&cfg);
  assert_non_null(t);
  struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
  net_ipent *ok[3], *over[3], *e;
  for (int i = 0; i < 3; i++) assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &ok[i]), NET_IP_OK);
  assert_ptr_equal(ok[0], ok[2]);
  /* Past the limit: as many again are answered (OVER, counted until released), then dropped at accept. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &over[i]), NET_IP_OVER);
    assert_non_null(over[i]);
  }
  assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &e), NET_IP_DROP);
  assert_null(e);
  /* Another address is not affected. */
  assert_int_equal(net_iplimit_acquire(t, SA(b), 0, &e), NET_IP_OK);
  net_iplimit_release(t, e, 0);
  net_iplimit_stats st;
  net_iplimit_stats_get(t, &st);
  assert_int_equal(st.refused, 4);
  assert_int_equal(st.dropped, 1);
  /* Released refused connections free their places, then an admitted one frees room under the limit. */
  for (int i = 0; i < 3; i++) net_iplimit_release(t, over[i], 0);
  assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &e), NET_IP_OVER);
  net_iplimit_release(t, e, 0);
  net_iplimit_release(t, ok[0], 0);
  assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &e), NET_IP_OK);
  net_iplimit_release(t, e, 0);
  net_iplimit_release(t, ok[1], 0);
  net_iplimit_release(t, ok[2], 0);
  /* Live change: no limit any more. */
  net_iplimit_configure(t, &(net_iplimit_config){0});
  for (int i = 0; i < 10; i++) assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &ok[i % 3]), NET_IP_OK);
  net_iplimit_unref(t);
}

static void test_keys(void **state) {
  (void)state;
  net_iplimit_config cfg = {.max_conns = 1};
  net_iplimit *t = net_iplimit_new(&cfg);
  net_ipent *e1, *e2;
  /* IPv6: one /64 is one client by default. */
  struct sockaddr_storage a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"), c = v6("2001:db8:1:3::1");
  assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &e1), NET_IP_OK);
  assert_int_equal(net_iplimit_acquire(t, SA(b), 0, &e2), NET_IP_OVER);
  assert_ptr_equal(e1, e2);
  net_iplimit_release(t, e2, 0);
  assert_int_equal(net_iplimit_acquire(t, SA(c), 0, &e2), NET_IP_OK);
  net_iplimit_release(t, e2, 0);
  /* A v4-mapped address is its IPv4 client. */
  struct sockaddr_storage m = v6("::ffff:198.51.100.7"), p = v4("198.51.100.7");
  net_ipent *e3, *e4;
  assert_int_equal(net_iplimit_acquire(t, SA(m), 0, &e3), NET_IP_OK);
  assert_int_equal(net_iplimit_acquire(t, SA(p), 0, &e4), NET_IP_OVER);
  assert_ptr_equal(e3, e4);
  net_iplimit_release(t, e4, 0);
  net_iplimit_release(t, e3, 0);
  net_iplimit_release(t, e1, 0);
  /* Whole addresses with a 128-bit prefix; a 60-bit prefix masks inside a byte. */
  net_iplimit_configure(t, &(net_iplimit_config){.max_conns = 1, .ipv6_prefix = 128});
  assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &e1), NET_IP_OK);
  assert_int_equal(net_iplimit_acquire(t, SA(b), 0, &e2), NET_IP_OK);
  assert_ptr_not_equal(e1, e2);
  net_iplimit_release(t, e1, 0);
  net_iplimit_release(t, e2, 0);
  net_iplimit_configure(t, &(net_iplimit_config){.max_conns = 1, .ipv6_prefix = 60});
  struct sockaddr_storage d = v6("2001:db8:1:2f::1"), f = v6("2001:db8:1:20::1"), g = v6("2001:db8:1:30::1");
  assert_int_equal(net_iplimit_acquire(t, SA(d), 0, &e1), NET_IP_OK);
  assert_int_equal(net_iplimit_acquire(t, SA(f), 0, &e2), NET_IP_OVER);
  net_iplimit_release(t, e2, 0);
  assert_int_equal(net_iplimit_acquire(t, SA(g), 0, &e2), NET_IP_OK);
  net_iplimit_release(t, e2, 0);
  net_iplimit_release(t, e1, 0);
  /* Not an IP address: admitted, untracked. */
  struct sockaddr_storage u;
  memset(&u, 0, sizeof u);
  u.ss_family = AF_UNIX;
  assert_int_equal(net_iplimit_acquire(t, SA(u), 0, &e1), NET_IP_OK);
  assert_null(e1);
  net_iplimit_unref(t);
}

static void test_handshake_bucket(void **state) {
  (void)state;
  net_iplimit_config cfg = {.rate = 2, .burst = 3};
  net_iplimit *t = net_iplimit_new(&cfg);
  struct sockaddr_storage a = v4("203.0.113.5"), b = v4("203.0.113.6");
  net_ipent *e, *o;
  assert_int_equal(net_iplimit_acquire(t, SA(a), 1000, &e), NET_IP_OK);
  assert_int_equal(net_iplimit_acquire(t, SA(b), 1000, &o), NET_IP_OK);
  for (int i = 0; i < 3; i++) assert_int_equal(net_iplimit_handshake(t, e, 1000), 0);
  /* Empty: a token is due in 500 ms, announced as 1 second. */
  assert_int_equal(net_iplimit_handshake(t, e, 1000), 1);
  assert_int_equal(net_iplimit_handshake(t, e, 1400), 1);
  /* Another address has its own bucket. */
  assert_int_equal(net_iplimit_handshake(t, o, 1400), 0);
  assert_int_equal(net_iplimit_handshake(t, e, 1500), 0);
  assert_int_equal(net_iplimit_handshake(t, e, 1500), 1);
  /* Refills up to the burst, not beyond. */
  for (int i = 0; i < 3; i++) assert_int_equal(net_iplimit_handshake(t, e, 100000), 0);
  assert_int_equal(net_iplimit_handshake(t, e, 100000), 1);
  net_iplimit_stats st;
  net_iplimit_stats_get(t, &st);
  assert_int_equal(st.limited, 4);
  /* The bucket survives closing and reconnecting: reconnecting does not buy tokens. */
  net_iplimit_release(t, e, 100000);
  assert_int_equal(net_iplimit_acquire(t, SA(a), 100000, &e), NET_IP_OK);
  assert_int_equal(net_iplimit_handshake(t, e, 100000), 1);
  /* A slow rate announces a longer wait: 1 per second, burst 1. */
  net_iplimit_configure(t, &(net_iplimit_config){.rate = 1});
  assert_int_equal(net_iplimit_handshake(t, e, 200000), 0);
  assert_int_equal(net_iplimit_handshake(t, e, 200000), 1);
  /* No rate: never limited. */
  net_iplimit_configure(t, NULL);
  for (int i = 0; i < 100; i++) assert_int_equal(net_iplimit_handshake(t, e, 200000), 0);
  assert_int_equal(net_iplimit_handshake(t, NULL, 0), 0);
  net_iplimit_release(t, e, 0);
  net_iplimit_release(t, o, 0);
  net_iplimit_unref(t);
}

/* A flood of distinct (spoofed, or IPv6) addresses cannot grow the table past max_entries. */
static void test_bounded(void **state) {
  (void)state;
  net_iplimit_config cfg = {.rate = 1, .burst = 5, .max_entries = 64};
  net_iplimit *t = net_iplimit_new(&cfg);
  char ip[32];
  net_ipent *held[64];
  /* 64 addresses with open connections fill it; a 65th address is refused at accept. */
  for (int i = 0; i < 64; i++) {
    snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
    struct sockaddr_storage a = v4(ip);
    assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &held[i]), NET_IP_OK);
  }
  struct sockaddr_storage x = v4("10.9.9.9");
  net_ipent *e;
  assert_int_equal(net_iplimit_acquire(t, SA(x), 0, &e), NET_IP_DROP);
  assert_int_equal(entries(t), 64);
  /* One goes idle: the newcomer takes its place (the idle entry is evicted). */
  net_iplimit_release(t, held[0], 0);
  assert_int_equal(net_iplimit_acquire(t, SA(x), 0, &e), NET_IP_OK);
  net_iplimit_release(t, e, 0);
  for (int i = 1; i < 64; i++) net_iplimit_release(t, held[i], 0);
  /* 100000 addresses that connect and go: the table stays within its bound. */
  for (int i = 0; i < 100000; i++) {
    snprintf(ip, sizeof ip, "2001:db8:%x:%x::1", i / 65536, i % 65536);
    struct sockaddr_storage a = v6(ip);
    assert_int_equal(net_iplimit_acquire(t, SA(a), (uint64_t)i, &e), NET_IP_OK);
    net_iplimit_release(t, e, (uint64_t)i);
    assert_true(entries(t) <= 64);
  }
  net_iplimit_stats st;
  net_iplimit_stats_get(t, &st);
  assert_true(st.evicted > 0);
  net_iplimit_unref(t);
}

/* Idle addresses expire once their bucket would be full again; two go per lookup. */
static void test_expiry(void **state) {
  (void)state;
  net_iplimit_config cfg = {.rate = 10, .burst = 10}; /* full again 1 s after going idle */
  net_iplimit *t = net_iplimit_new(&cfg);
  net_ipent *e;
  char ip[32];
  for (int i = 0; i < 4; i++) {
    snprintf(ip, sizeof ip, "192.0.2.%d", i + 1);
    struct sockaddr_storage a = v4(ip);
    assert_int_equal(net_iplimit_acquire(t, SA(a), 0, &e), NET_IP_OK);
    net_iplimit_release(t, e, 0);
  }
  assert_int_equal(entries(t), 4);
  struct sockaddr_storage n = v4("198.51.100.1");
  assert_int_equal(net_iplimit_acquire(t, SA(n), 500, &e), NET_IP_OK); /* too early: nothing expires */
  assert_int_equal(entries(t), 5);
  net_iplimit_release(t, e, 500);
  assert_int_equal(net_iplimit_acquire(t, SA(n), 1000, &e), NET_IP_OK);
  assert_int_equal(entries(t), 3);
  assert_int_equal(net_iplimit_acquire(t, SA(n), 1000, &e), NET_IP_OK);
  assert_int_equal(entries(t), 1); /* only n, busy: never expired */
  net_iplimit_release(t, e, 1000);
  net_iplimit_release(t, e, 1000);
  net_iplimit_unref(t);
}

/* Several loops share one table: acquire, handshake and release from four threads at once. */
typedef struct {
  net_iplimit *t;
  int id;
  int refused;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  char ip[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(ip, sizeof ip, "10.1.%d.%d", (i * 7 + w->id) % 3, i % 50);
    struct sockaddr_storage a = v4(ip);
    net_ipent *e;
    int rc = net_iplimit_acquire(w->t, SA(a), (uint64_t)i, &e);
    if (rc != NET_IP_OK) w->refused++;
    net_iplimit_handshake(w->t, e, (uint64_t)i);
    net_iplimit_release(w->t, e, (uint64_t)i);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  net_iplimit_config cfg = {.max_conns = 1000, .rate = 100, .max_entries = 100};
  net_iplimit *t = net_iplimit_new(&cfg);
  pthread_t th[4];
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){net_iplimit_ref(t), i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].refused, 0);
    net_iplimit_unref(w[i].t);
  }
  assert_true(entries(t) <= 100);
  /* Every connection was released: each address admits max_conns again. */
  struct sockaddr_storage a = v4("10.1.0.0");
  net_ipent *held[1000];
  for (int i = 0; i < 1000; i++) assert_int_equal(net_iplimit_acquire(t, SA(a), 50000, &held[i]), NET_IP_OK);
  net_ipent *e;
  assert_int_equal(net_iplimit_acquire(t, SA(a), 50000, &e), NET_IP_OVER);
  net_iplimit_release(t, e, 50000);
  for (int i = 0; i < 1000; i++) net_iplimit_release(t, held[i], 50000);
  net_iplimit_unref(t);
}

static void test_bucket(void **state) {
  (void)state;
  net_bucket b;
  net_bucket_init(&b, 3, 10000);
  for (int i = 0; i < 3; i++) assert_true(net_bucket_take(&b, 5, 3, 10000));
  assert_false(net_bucket_take(&b, 5, 3, 10000));
  assert_false(net_bucket_take(&b, 5, 3, 10199)); /* 5/s: a token every 200 ms */
  assert_true(net_bucket_take(&b, 5, 3, 10200));
  assert_false(net_bucket_take(&b, 5, 3, 10200));
  /* Capped at the burst after a long pause. */
  for (int i = 0; i < 3; i++) assert_true(net_bucket_take(&b, 5, 3, 60000));
  assert_false(net_bucket_take(&b, 5, 3, 60000));
  /* The 32-bit millisecond clock wraps (49.7 days) without starving the bucket. */
  net_bucket_init(&b, 1, 0xFFFFFF00ull);
  assert_true(net_bucket_take(&b, 1, 1, 0xFFFFFF00ull));
  assert_false(net_bucket_take(&b, 1, 1, 0x100000000ull + 100));
  assert_true(net_bucket_take(&b, 1, 1, 0x100000000ull + 800));
  /* A huge rate and burst do not overflow. */
  net_bucket_init(&b, 4000000, 0);
  assert_true(net_bucket_take(&b, 1000000, 4000000, 0xFFFFFFFFull));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connections_per_address), cmocka_unit_test(test_keys),
      cmocka_unit_test(test_handshake_bucket),        cmocka_unit_test(test_bounded),
      cmocka_unit_test(test_expiry),                  cmocka_unit_test(test_threads),
      cmocka_unit_test(test_bucket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
