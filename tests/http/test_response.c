/* http_response: status lines, headers, the Date header, bodies and the HEAD form, simple error pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "http/response.h"
#include "wsio.h"

static char *text(buf *b) {
  assert_int_equal(buf_reserve(b, 1), 0);
  b->data[b->len] = '\0';
  return (char *)b->data;
}

static void test_status_text(void **state) {
  (void)state;
  assert_string_equal(http_status_text(200), "OK");
  assert_string_equal(http_status_text(101), "Switching Protocols");
  assert_string_equal(http_status_text(304), "Not Modified");
  assert_string_equal(http_status_text(404), "Not Found");
  assert_string_equal(http_status_text(413), "Content Too Large");
  assert_string_equal(http_status_text(414), "URI Too Long");
  assert_string_equal(http_status_text(426), "Upgrade Required");
  assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
  assert_string_equal(http_status_text(501), "Not Implemented");
  assert_string_equal(http_status_text(599), "Unknown");
}

static void test_date_format(void **state) {
  (void)state;
  char d[30];
  assert_int_equal(http_date_format(784111777, d), 0);
  assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(http_date_format(0, d), 0);
  assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
  assert_int_equal(http_date_format(951782400, d), 0); /* leap day 2000 */
  assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 GMT");
  assert_int_equal(http_date_format(300000000000LL, d), WSIO_EINVAL);
}

static void test_start_has_date_and_server(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(http_response_start(&b, 404), 0);
  char *s = text(&b);
  assert_true(strncmp(s, "HTTP/1.1 404 Not Found\r\nDate: ", 30) == 0);
  assert_non_null(strstr(s, "\r\nServer: wsio\r\n"));
  /* The Date is an IMF-fixdate of now. */
  char *date = s + 30;
  char *eol = strstr(date, "\r\n");
  assert_int_equal(eol - date, 29);
  struct tm tm = {0};
  char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  assert_ptr_equal(end, eol);
  long long diff = (long long)timegm(&tm) - (long long)time(NULL);
  assert_true(diff >= -2 && diff <= 2);
  buf_free(&b);
}

static void test_header_and_end(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(http_response_header(&b, "Content-Type", "text/plain"), 0);
  assert_int_equal(http_response_end(&b, "hello", 5, 1), 0);
  assert_string_equal(text(&b), "Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello");
  b.len = 0;
  assert_int_equal(http_response_end(&b, "", 0, 0), 0);
  assert_string_equal(text(&b), "Content-Length: 0\r\nConnection: close\r\n\r\n");
  /* HEAD form: the length is announced, no body follows. */
  b.len = 0;
  assert_int_equal(http_response_end(&b, NULL, 1234, 1), 0);
  assert_string_equal(text(&b), "Content-Length: 1234\r\nConnection: keep-alive\r\n\r\n");
  buf_free(&b);
}

static void test_header_injection_refused(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(http_response_header(&b, "X", "a\r\nSet-Cookie: x"), WSIO_EINVAL);
  assert_int_equal(http_response_header(&b, "X", "a\nb"), WSIO_EINVAL);
  assert_int_equal(http_response_header(&b, "X: y", "v"), WSIO_EINVAL);
  assert_int_equal(http_response_header(&b, "X\r\n", "v"), WSIO_EINVAL);
  assert_int_equal(b.len, 0);
  buf_free(&b);
}

static void test_simple(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(http_response_simple(&b, 414, 0), 0);
  char *s = text(&b);
  assert_true(strncmp(s, "HTTP/1.1 414 URI Too Long\r\n", 27) == 0);
  assert_non_null(strstr(s, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
  assert_non_null(strstr(s, "\r\nConnection: close\r\n"));
  const char *body = strstr(s, "\r\n\r\n") + 4;
  assert_string_equal(body, "414 URI Too Long\n");
  char cl[64];
  snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", strlen(body));
  assert_non_null(strstr(s, cl));
  buf_free(&b);
}

/* The 429 refusal: Retry-After carries the wait, headers the caller adds sit before the blank line. */
static void test_too_many(void **state) {
  (void)state;
  buf b = {0};
  assert_int_equal(http_response_too_many_start(&b, 37), 0);
  assert_int_equal(http_response_header(&b, "Access-Control-Allow-Origin", "*"), 0);
  assert_int_equal(http_response_too_many_end(&b), 0);
  char *s = text(&b);
  assert_true(strncmp(s, "HTTP/1.1 429 Too Many Requests\r\n", 32) == 0);
  char *end = strstr(s, "\r\n\r\n");
  assert_non_null(end);
  *end = '\0';
  assert_non_null(strstr(s, "\r\nRetry-After: 37\r\n"));
  assert_non_null(strstr(s, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
  assert_non_null(strstr(s, "\r\nAccess-Control-Allow-Origin: *\r\n"));
  assert_non_null(strstr(s, "\r\nConnection: close"));
  const char *body = end + 4;
  assert_string_equal(body, "too many new connections from your address; try again later\n");
  char cl[64];
  snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", strlen(body));
  assert_non_null(strstr(s, cl));
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_text),     cmocka_unit_test(test_date_format),
      cmocka_unit_test(test_start_has_date_and_server), cmocka_unit_test(test_header_and_end),
      cmocka_unit_test(test_header_injection_refused),  cmocka_unit_test(test_simple),
      cmocka_unit_test(test_too_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
