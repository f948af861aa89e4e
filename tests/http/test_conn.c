/* http_conn: a request written back out (http_request_write), as a worker hands a request to the worker
 * that owns its session: parsing the written bytes gives the same request, with a chunked body turned
 * into a Content-Length one, and the bytes after it untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "http/conn.h"
#include "http/parser.h"

static void parse_one(http_parser *p, const void *data, size_t len, http_request *req, size_t *used) {
  assert_int_equal(http_parser_feed(p, data, len, used, req), HTTP_PARSE_REQUEST);
}

static void test_write_round_trip(void **state) {
  (void)state;
  const char *in = "POST /socket.io/?EIO=4&transport=polling&sid=AAxyz HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\nX-Many: a, b\r\n\r\n"
                   "3\r\n40{\r\n2\r\n}\x1e\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
  http_parser *p = http_parser_new(NULL);
  http_request req;
  size_t used;
  parse_one(p, in, strlen(in), &req, &used);
  buf out = {0};
  assert_int_equal(http_request_write(&req, &out), 0);
  const char *rest = in + used;
  assert_string_equal(rest, "GET /next HTTP/1.1\r\n\r\n");
  /* Parsed again: the same request. */
  http_parser *q = http_parser_new(NULL);
  http_request again;
  size_t used2;
  parse_one(q, out.data, out.len, &again, &used2);
  assert_int_equal(used2, out.len);
  assert_int_equal(again.method, req.method);
  assert_int_equal(again.url_len, req.url_len);
  assert_memory_equal(again.url, req.url, req.url_len);
  assert_int_equal(again.body_len, 5);
  assert_memory_equal(again.body, "40{}\x1e", 5);
  assert_null(http_request_header(&again, "Transfer-Encoding"));
  const http_header *cl = http_request_header(&again, "Content-Length");
  assert_non_null(cl);
  assert_int_equal(cl->value_len, 1);
  assert_memory_equal(cl->value, "5", 1);
  const http_header *many = http_request_header(&again, "x-many");
  assert_non_null(many);
  assert_int_equal(many->value_len, 4);
  assert_memory_equal(many->value, "a, b", 4);
  assert_int_equal(again.nheaders, req.nheaders); /* Transfer-Encoding out, Content-Length in */
  http_parser_free(q);
  http_parser_free(p);
  buf_free(&out);
}

static void test_write_get_without_body(void **state) {
  (void)state;
  const char *in = "GET /socket.io/?EIO=4&transport=websocket&sid=AB HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n";
  http_parser *p = http_parser_new(NULL);
  http_request req;
  size_t used;
  parse_one(p, in, strlen(in), &req, &used);
  buf out = {0};
  assert_int_equal(http_request_write(&req, &out), 0);
  /* A GET without a body is written back byte for byte. */
  assert_int_equal(out.len, strlen(in));
  assert_memory_equal(out.data, in, out.len);
  http_parser_free(p);
  buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_round_trip),
      cmocka_unit_test(test_write_get_without_body),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
