/* net_trust: address literals (strict: no short, octal or zoned forms; v4-mapped as IPv4), their text,
 * networks (prefix lengths, host bits, v4-mapped networks, errors), matching at the prefix's edges, and
 * lists (separators, empty lists, the bound, the error naming the item). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/trust.h"
#include "wsio.h"

static net_addr addr(const char *s) {
  net_addr a;
  assert_int_equal(net_addr_parse(s, strlen(s), &a), 0);
  return a;
}

static int parses(const char *s) {
  net_addr a;
  return net_addr_parse(s, strlen(s), &a) == 0;
}

static const char *text(const net_addr *a) {
  static char out[NET_ADDR_TEXT];
  assert_true(net_addr_format(a, out, sizeof out) > 0);
  return out;
}

static void test_addresses(void **state) {
  (void)state;
  net_addr a = addr("203.0.113.7");
  assert_int_equal(a.family, 4);
  assert_memory_equal(a.bytes, ((uint8_t[]){203, 0, 113, 7}), 4);
  assert_string_equal(text(&a), "203.0.113.7");
  a = addr("2001:DB8::7");
  assert_int_equal(a.family, 6);
  assert_string_equal(text(&a), "2001:db8::7");
  /* An IPv4-mapped address is its IPv4 address, both ways of writing it. */
  a = addr("::ffff:203.0.113.7");
  assert_int_equal(a.family, 4);
  assert_string_equal(text(&a), "203.0.113.7");
  a = addr("::FFFF:cb00:7107");
  assert_int_equal(a.family, 4);
  assert_string_equal(text(&a), "203.0.113.7");
  assert_string_equal(text(&(net_addr){.family = 6, .bytes = {[15] = 1}}), "::1");
  /* The longest literal fits. */
  a = addr("ffff:ffff:ffff:ffff:ffff:fffe:255.255.255.255");
  assert_int_equal(a.family, 6);

  /* Exactly an address, nothing else. */
  const char *bad[] = {"", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "0x7f.0.0.1",
                       "127.1", "1.2.3.4:80", "[::1]", "fe80::1%eth0", "::g", "1:2:3:4:5:6:7:8:9", "unknown",
                       "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (parses(bad[i])) fail_msg("\"%s\" parsed as an address", bad[i]);
  net_addr b;
  assert_int_equal(net_addr_parse("1.2.3.4\0" "5", 9, &b), -1); /* a NUL inside */
  assert_int_equal(net_addr_parse("1.2.3.45", 7, &b), 0);       /* only len bytes are read */
  assert_string_equal(text(&b), "1.2.3.4");

  /* Socket addresses, and back. */
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
  inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr);
  assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&s6, &b), 0);
  assert_int_equal(b.family, 4);
  assert_string_equal(text(&b), "10.1.2.3");
  struct sockaddr_storage ss;
  net_addr_to_sockaddr(&b, &ss);
  assert_int_equal(ss.ss_family, AF_INET);
  assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(0x0a010203));
  struct sockaddr un = {.sa_family = AF_UNIX};
  assert_int_equal(net_addr_from_sockaddr(&un, &b), -1);
  /* Text into a buffer too small. */
  char small[8];
  a = addr("203.0.113.7");
  assert_int_equal(net_addr_format(&a, small, sizeof small), -1);
  assert_int_equal(net_addr_format(&(net_addr){0}, small, sizeof small), -1);
}

static net_cidr cidr(const char *s) {
  net_cidr n;
  const char *why = net_cidr_parse(s, strlen(s), &n);
  if (why) fail_msg("\"%s\" %s", s, why);
  return n;
}

static int in(const char *net, const char *a) {
  net_cidr n = cidr(net);
  net_addr x = addr(a);
  return net_cidr_match(&n, &x);
}

static void test_networks(void **state) {
  (void)state;
  net_cidr n = cidr("10.0.0.0/8");
  assert_int_equal(n.bits, 8);
  /* Host bits past the prefix are cleared. */
  n = cidr("192.168.1.77/24");
  assert_string_equal(text(&n.net), "192.168.1.0");
  n = cidr("2001:db8:abcd:12ff::1/52");
  assert_string_equal(text(&n.net), "2001:db8:abcd:1000::");
  /* An address alone is one host. */
  assert_int_equal(cidr("127.0.0.1").bits, 32);
  assert_int_equal(cidr("::1").bits, 128);
  /* A v4-mapped network is the IPv4 network it covers. */
  n = cidr("::ffff:10.0.0.0/104");
  assert_int_equal(n.net.family, 4);
  assert_int_equal(n.bits, 8);
  assert_true(in("::ffff:10.0.0.0/104", "10.200.0.1"));
  assert_true(in("::ffff:10.0.0.0/104", "::ffff:10.200.0.1"));

  /* Matching at the edges of the prefix. */
  assert_true(in("10.0.0.0/8", "10.255.255.255"));
  assert_false(in("10.0.0.0/8", "11.0.0.0"));
  assert_false(in("10.0.0.0/8", "9.255.255.255"));
  assert_true(in("172.16.0.0/12", "172.31.255.254"));
  assert_false(in("172.16.0.0/12", "172.32.0.1"));
  assert_true(in("192.168.1.128/25", "192.168.1.200"));
  assert_false(in("192.168.1.128/25", "192.168.1.127"));
  assert_true(in("127.0.0.1", "127.0.0.1"));
  assert_false(in("127.0.0.1", "127.0.0.2"));
  assert_true(in("0.0.0.0/0", "203.0.113.7"));
  assert_false(in("0.0.0.0/0", "2001:db8::1")); /* a family never matches the other */
  assert_false(in("::/0", "203.0.113.7"));
  assert_true(in("::/0", "2001:db8::1"));
  assert_true(in("fd00::/8", "fdff:1::2"));
  assert_false(in("fd00::/8", "fe00::1"));
  assert_true(in("2001:db8::/33", "2001:db8:7fff::1"));
  assert_false(in("2001:db8::/33", "2001:db8:8000::1"));
  assert_true(in("::1", "::1"));
  assert_false(in("::1", "::2"));
  /* A dual-stack listener's IPv4 client matches an IPv4 network. */
  assert_true(in("127.0.0.0/8", "::ffff:127.0.0.5"));

  const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/a", "10.0.0.0/8/8", "10.0.0.0/0008",
                       "10.0.0.0/-1", "/8", "", "10.0.0.0 /8", "example.com", "*", "::ffff:10.0.0.0/95",
                       "::ffff:10.0.0.0/200"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    net_cidr x;
    if (!net_cidr_parse(bad[i], strlen(bad[i]), &x)) fail_msg("\"%s\" parsed as a network", bad[i]);
  }
  net_cidr x;
  assert_string_equal(net_cidr_parse("10.0.0.0/33", 11, &x), "has a prefix longer than 32 bits");
  assert_string_equal(net_cidr_parse("::/129", 6, &x), "has a prefix longer than 128 bits");
  assert_string_equal(net_cidr_parse("10.0.0.0/8 ::1", 14, &x), "holds a blank: networks are separated by commas");
}

static void test_lists(void **state) {
  (void)state;
  net_trust *t = NULL;
  char err[160];
  assert_int_equal(net_trust_parse("10.0.0.0/8, 127.0.0.1 ::1\tfd00::/8\n,,", &t, err, sizeof err), 0);
  assert_non_null(t);
  assert_int_equal(t->n, 4);
  net_addr a = addr("10.9.9.9");
  assert_true(net_trust_match(t, &a));
  a = addr("fd12::1");
  assert_true(net_trust_match(t, &a));
  a = addr("::ffff:127.0.0.1");
  assert_true(net_trust_match(t, &a));
  a = addr("127.0.0.2");
  assert_false(net_trust_match(t, &a));
  assert_false(net_trust_match(t, &(net_addr){0}));
  assert_false(net_trust_match(NULL, &a));
  net_trust_free(t);

  /* No item at all: no list. */
  const char *empty[] = {NULL, "", " ", ", ,\t"};
  for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
    t = (net_trust *)1;
    assert_int_equal(net_trust_parse(empty[i], &t, err, sizeof err), 0);
    assert_null(t);
  }

  /* The error names the item. */
  assert_int_equal(net_trust_parse("10.0.0.0/8, 10.0.0.0/33", &t, err, sizeof err), WSIO_EINVAL);
  assert_null(t);
  assert_string_equal(err, "\"10.0.0.0/33\" has a prefix longer than 32 bits");
  assert_int_equal(net_trust_parse("127.0.0.1 localhost", &t, err, sizeof err), WSIO_EINVAL);
  assert_string_equal(err, "\"localhost\" is not an IP address or network (examples: 10.0.0.0/8, 192.168.1.7, "
                           "fd00::/8)");
  assert_int_equal(net_trust_parse("garbage", &t, NULL, 0), WSIO_EINVAL);
  char *longer = malloc(200);
  memset(longer, 'x', 199);
  longer[199] = 0;
  assert_int_equal(net_trust_parse(longer, &t, err, sizeof err), WSIO_EINVAL);
  assert_non_null(strstr(err, "...\" is not"));
  free(longer);

  /* Bounded: NET_TRUST_MAX networks, not one more. */
  char *many = malloc(NET_TRUST_MAX * 16 + 32);
  size_t o = 0;
  for (int i = 0; i < NET_TRUST_MAX; i++) o += (size_t)sprintf(many + o, "10.%d.%d.0/24,", i / 250, i % 250);
  assert_int_equal(net_trust_parse(many, &t, err, sizeof err), 0);
  assert_int_equal(t->n, NET_TRUST_MAX);
  a = addr("10.1.5.9"); /* item 255 */
  assert_true(net_trust_match(t, &a));
  net_trust_free(t);
  strcpy(many + o, "10.9.9.9");
  assert_int_equal(net_trust_parse(many, &t, err, sizeof err), WSIO_EINVAL);
  assert_string_equal(err, "257 networks: at most 256");
  free(many);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addresses),
      cmocka_unit_test(test_networks),
      cmocka_unit_test(test_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
