/* http_forwarded: the X-Forwarded-For walk from the right (trusted hops skipped, the leftmost when all are
 * trusted, the left of the client never read), entries with ports, brackets, blanks and empty items, garbage
 * and its fallback, several header lines, the bound on hops; Forwarded (RFC 7239) when there is no
 * X-Forwarded-For. Each value is checked as the parser hands it over and from an exactly sized heap block,
 * so a read past either end of it is caught by AddressSanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/forwarded.h"
#include "http/parser.h"
#include "net/trust.h"

static net_trust *trust_of(const char *list) {
  net_trust *t = NULL;
  char err[160];
  if (net_trust_parse(list, &t, err, sizeof err) != 0) fail_msg("%s", err);
  return t;
}

/* Result text: the client's address, "none" or "bad". */
static void result(int rc, const net_addr *a, char *out, size_t cap) {
  if (rc == HTTP_FWD_NONE) snprintf(out, cap, "none");
  else if (rc == HTTP_FWD_BAD) snprintf(out, cap, "bad");
  else assert_true(rc == HTTP_FWD_CLIENT && net_addr_format(a, out, cap) > 0);
}

/* The walk over a request parsed from `headers` ("Name: value\r\n" lines). */
static void via_parser(const char *trust, const char *headers, char *out, size_t cap) {
  char *text = malloc(strlen(headers) + 64);
  sprintf(text, "GET / HTTP/1.1\r\nHost: wsio\r\n%s\r\n", headers);
  http_parser *p = http_parser_new(&(http_limits){.max_head = 1 << 16});
  http_request req;
  size_t used = 0;
  assert_int_equal(http_parser_feed(p, (const uint8_t *)text, strlen(text), &used, &req), HTTP_PARSE_REQUEST);
  net_trust *t = trust_of(trust);
  net_addr a;
  result(http_forwarded_client(&req, t, &a), &a, out, cap);
  net_trust_free(t);
  http_parser_free(p);
  free(text);
}

/* The walk over one header `name` whose value is exactly `value`, in a block of its size. */
static void via_block(const char *trust, const char *name, const char *value, char *out, size_t cap) {
  size_t n = strlen(value);
  char *v = malloc(n ? n : 1);
  memcpy(v, value, n);
  http_request req = {.nheaders = 1};
  req.headers[0] = (http_header){name, strlen(name), v, n};
  net_trust *t = trust_of(trust);
  net_addr a;
  result(http_forwarded_client(&req, t, &a), &a, out, cap);
  net_trust_free(t);
  free(v);
}

/* X-Forwarded-For: value, with trust, gives want (an address, "none" or "bad"), both ways. */
static void xff(const char *trust, const char *value, const char *want) {
  char got[64];
  via_block(trust, "X-Forwarded-For", value, got, sizeof got);
  if (strcmp(got, want) != 0) fail_msg("X-Forwarded-For: \"%.80s\" (trusting %s): %s, not %s", value, trust, got, want);
  char *line = malloc(strlen(value) + 32);
  sprintf(line, "X-Forwarded-For: %s\r\n", value);
  via_parser(trust, line, got, sizeof got);
  free(line);
  if (strcmp(got, want) != 0)
    fail_msg("parsed X-Forwarded-For: \"%.80s\" (trusting %s): %s, not %s", value, trust, got, want);
}

static void fwd(const char *trust, const char *value, const char *want) {
  char got[64];
  via_block(trust, "Forwarded", value, got, sizeof got);
  if (strcmp(got, want) != 0) fail_msg("Forwarded: \"%.80s\" (trusting %s): %s, not %s", value, trust, got, want);
}

static void test_walk(void **state) {
  (void)state;
  /* One proxy: the entry it added is the client. */
  xff("127.0.0.1", "203.0.113.7", "203.0.113.7");
  /* Trusted hops are skipped from the right; the first untrusted entry is the client. */
  xff("10.0.0.0/8", "203.0.113.7, 10.0.0.2", "203.0.113.7");
  xff("10.0.0.0/8, 192.168.0.0/16", "203.0.113.7, 192.168.4.4, 10.0.0.2", "203.0.113.7");
  /* What the client wrote to the left of it is not believed, nor read. */
  xff("10.0.0.0/8", "1.1.1.1, 203.0.113.7, 10.0.0.2", "203.0.113.7");
  xff("10.0.0.0/8", "garbage, [[[, 203.0.113.7", "203.0.113.7");
  xff("10.0.0.0/8", "10.0.0.9, 203.0.113.7", "203.0.113.7"); /* a trusted address left of the client too */
  /* Every entry trusted: the leftmost. */
  xff("10.0.0.0/8", "10.0.0.5, 10.0.0.2", "10.0.0.5");
  /* No list: the rightmost entry is the client (nothing else is believed). */
  xff("", "1.1.1.1, 203.0.113.7", "203.0.113.7");
}

static void test_entries(void **state) {
  (void)state;
  /* Blanks around entries, empty entries. */
  xff("10.0.0.0/8", "  203.0.113.7 ,\t10.0.0.2\t", "203.0.113.7");
  xff("10.0.0.0/8", ", ,203.0.113.7,, ,", "203.0.113.7");
  xff("10.0.0.0/8", "", "none");
  xff("10.0.0.0/8", " , ,\t,", "none");
  /* Ports and brackets. */
  xff("10.0.0.0/8", "203.0.113.7:5123", "203.0.113.7");
  xff("10.0.0.0/8", "2001:db8::7", "2001:db8::7");
  xff("10.0.0.0/8", "[2001:db8::7]", "2001:db8::7");
  xff("10.0.0.0/8", "[2001:db8::7]:5123, 10.0.0.2:80", "2001:db8::7");
  xff("10.0.0.0/8", "2001:DB8:0:0:0:0:0:7", "2001:db8::7");
  /* v4-mapped is IPv4, and is matched as IPv4. */
  xff("10.0.0.0/8", "::ffff:203.0.113.7", "203.0.113.7");
  xff("10.0.0.0/8", "203.0.113.7, ::ffff:10.0.0.2", "203.0.113.7");
  xff("::1, fd00::/8", "2001:db8::7, fd00::2, ::1", "2001:db8::7");

  /* Unreadable where the walk reaches it: the proxy stands for the client. */
  const char *bad[] = {"unknown", "garbage", "1.2.3", "203.0.113.7:", "203.0.113.7:123456", "203.0.113.7:80a",
                       "[2001:db8::7", "2001:db8::7]:1", "[2001:db8::7]5123", "[203.0.113.7]", "[]", "[2001:db8::7]:",
                       "fe80::1%eth0", "01.2.3.4", "203.0.113.7 198.51.100.1", "\"203.0.113.7\"", "_hidden",
                       "203.0.113.7;for=1.1.1.1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char v[128];
    snprintf(v, sizeof v, "%s", bad[i]);
    xff("10.0.0.0/8", v, "bad");
    snprintf(v, sizeof v, "203.0.113.9, %s, 10.0.0.2", bad[i]);
    xff("10.0.0.0/8", v, "bad");
  }
  /* An entry as long as any could be, and one byte longer. */
  xff("", "[ffff:ffff:ffff:ffff:ffff:fffe:255.255.255.255]:65535", "ffff:ffff:ffff:ffff:ffff:fffe:ffff:ffff");
  xff("", "[ffff:ffff:ffff:ffff:ffff:fffe:255.255.255.255]:655350000000", "bad");
}

static void test_lines(void **state) {
  (void)state;
  char got[64];
  /* Several lines are one list, in order: the last line's last entry is the rightmost. */
  via_parser("10.0.0.0/8", "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 10.0.0.2\r\n", got, sizeof got);
  assert_string_equal(got, "203.0.113.9");
  via_parser("10.0.0.0/8", "X-Forwarded-For: 10.0.0.3\r\nx-forwarded-for: 198.51.100.1, 10.0.0.2\r\n", got,
             sizeof got);
  assert_string_equal(got, "198.51.100.1");
  via_parser("10.0.0.0/8", "X-Forwarded-For: 10.0.0.3\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.2\r\n", got,
             sizeof got);
  assert_string_equal(got, "10.0.0.3");
  /* No header at all. */
  via_parser("10.0.0.0/8", "Accept: */*\r\n", got, sizeof got);
  assert_string_equal(got, "none");
  /* X-Forwarded-For wins over Forwarded: a client's own Forwarded line is not read when the proxy writes
   * X-Forwarded-For. */
  via_parser("10.0.0.0/8", "Forwarded: for=1.1.1.1\r\nX-Forwarded-For: 203.0.113.7\r\n", got, sizeof got);
  assert_string_equal(got, "203.0.113.7");
  via_parser("10.0.0.0/8", "Forwarded: for=1.1.1.1\r\nX-Forwarded-For: \r\n", got, sizeof got);
  assert_string_equal(got, "none");
}

static void test_bounds(void **state) {
  (void)state;
  size_t cap = 64 * 1024;
  char *v = malloc(cap);
  /* HTTP_FORWARDED_MAX_HOPS entries are read: 31 trusted hops and the client, yes; 32 and the client, no. */
  for (int hops = HTTP_FORWARDED_MAX_HOPS - 1; hops <= HTTP_FORWARDED_MAX_HOPS; hops++) {
    size_t o = (size_t)sprintf(v, "203.0.113.7");
    for (int i = 0; i < hops; i++) o += (size_t)sprintf(v + o, ", 10.0.%d.%d", i / 200, i % 200);
    xff("10.0.0.0/8", v, hops < HTTP_FORWARDED_MAX_HOPS ? "203.0.113.7" : "bad");
  }
  /* Thousands of trusted entries: given up after the bound, not walked to the end. */
  size_t o = 0;
  while (o + 16 < cap / 4) o += (size_t)sprintf(v + o, "10.0.0.1, ");
  sprintf(v + o, "10.0.0.2");
  xff("10.0.0.0/8", v, "bad");
  /* Thousands of entries left of the client cost nothing. */
  o = 0;
  while (o + 32 < cap / 4) o += (size_t)sprintf(v + o, "198.51.100.1, garbage, ");
  sprintf(v + o, "203.0.113.7");
  xff("10.0.0.0/8", v, "203.0.113.7");
  /* Empty items are skipped, not counted, however many. */
  memset(v, ',', cap / 4);
  strcpy(v + cap / 4, "203.0.113.7");
  xff("10.0.0.0/8", v, "203.0.113.7");
  memset(v, ' ', cap / 4);
  strcpy(v + cap / 4, "203.0.113.7,,,,,");
  xff("10.0.0.0/8", v, "203.0.113.7");
  free(v);
  /* A request with the most header lines, all X-Forwarded-For: one list, still bounded. */
  char *lines = malloc(HTTP_MAX_HEADERS * 64);
  o = 0;
  for (int i = 0; i < HTTP_MAX_HEADERS - 1; i++) o += (size_t)sprintf(lines + o, "X-Forwarded-For: 10.0.0.1\r\n");
  char got[64];
  via_parser("10.0.0.0/8", lines, got, sizeof got);
  assert_string_equal(got, "bad");
  via_parser("127.0.0.1", lines, got, sizeof got);
  assert_string_equal(got, "10.0.0.1");
  free(lines);
}

static void test_forwarded_header(void **state) {
  (void)state;
  fwd("10.0.0.0/8", "for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60");
  fwd("10.0.0.0/8", "For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17");
  fwd("10.0.0.0/8", "for=\"192.0.2.60:8080\"", "192.0.2.60");
  fwd("198.51.100.0/24", "for=192.0.2.43, for=198.51.100.17", "192.0.2.43");
  fwd("198.51.100.0/24", "for=192.0.2.43,for=198.51.100.17;by=10.0.0.1 , proto=https;for=198.51.100.18", "192.0.2.43");
  fwd("10.0.0.0/8", "for=garbage;x=\"a,b\", for=203.0.113.7", "203.0.113.7"); /* a comma inside quotes */
  fwd("10.0.0.0/8", "for=10.0.0.4, for=10.0.0.3", "10.0.0.4");                 /* all trusted: leftmost */
  fwd("10.0.0.0/8", ", ;, for=203.0.113.7 ;", "203.0.113.7");                  /* empty elements and pairs */
  fwd("10.0.0.0/8", "", "none");
  /* Unreadable where the walk reaches it. */
  fwd("10.0.0.0/8", "for=unknown", "bad");
  fwd("10.0.0.0/8", "for=\"_hidden\"", "bad");
  fwd("10.0.0.0/8", "proto=https", "bad");                       /* the element names no client */
  fwd("10.0.0.0/8", "for=203.0.113.7;for=1.1.1.1", "bad");       /* twice in one element */
  fwd("10.0.0.0/8", "for=\"203.0.113.\\7\"", "bad");             /* an escape */
  fwd("10.0.0.0/8", "for=[2001:db8::1]", "bad");                 /* brackets must be quoted */
  /* Not Forwarded syntax at all. */
  const char *broken[] = {"for", "for=", "for=\"203.0.113.7", "=1.2.3.4", "for=1.2.3.4 x", "for=1.2.3.4\"",
                          "for=\"1.2.3.4\\"};
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) fwd("10.0.0.0/8", broken[i], "bad");
  /* Bounded like X-Forwarded-For, though the whole value is read: the last entries are kept. */
  char *v = malloc(16384);
  size_t o = 0;
  for (int i = 0; i < 500; i++) o += (size_t)sprintf(v + o, "for=198.51.100.1, ");
  sprintf(v + o, "for=203.0.113.7, for=10.0.0.2");
  fwd("10.0.0.0/8", v, "203.0.113.7");
  o = 0;
  for (int i = 0; i < 500; i++) o += (size_t)sprintf(v + o, "for=10.0.0.1, ");
  sprintf(v + o, "for=10.0.0.2");
  fwd("10.0.0.0/8", v, "bad");
  o = 0;
  for (int i = 0; i < HTTP_FORWARDED_MAX_HOPS; i++) o += (size_t)sprintf(v + o, "%sfor=10.0.0.%d", i ? "," : "", i);
  fwd("10.0.0.0/8", v, "10.0.0.0");
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_walk),   cmocka_unit_test(test_entries),          cmocka_unit_test(test_lines),
      cmocka_unit_test(test_bounds), cmocka_unit_test(test_forwarded_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
