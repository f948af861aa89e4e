/* http_static: path mapping (traversal, encoded dots, symlinks out of the root), index files, no listing,
 * MIME types, validators and 304s, HEAD, 405. Runs against a temporary web root. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/parser.h"
#include "http/static.h"
#include "wsio.h"

static char base[256]; /* holds root/ and outside/ */
static char root[300];

static void write_file(const char *rel, const char *content) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", base, rel);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

static void mk(const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", base, rel);
  assert_int_equal(mkdir(path, 0755), 0);
}

static void link_to(const char *target, const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", base, rel);
  assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state) {
  (void)state;
  snprintf(base, sizeof base, "%s/wsio-static-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(base)) return -1;
  snprintf(root, sizeof root, "%s/root", base);
  mk("root");
  mk("root/sub");
  mk("root/empty");
  mk("root/a.b");
  mk("outside");
  write_file("root/index.html", "<h1>home</h1>");
  write_file("root/style.css", "body{}");
  write_file("root/app.js", "console.log(1)");
  write_file("root/sub/index.html", "<p>sub</p>");
  write_file("root/a.b/file", "plain");
  write_file("root/big.txt", "0123456789012345678901234567890123456789");
  write_file("outside/secret.txt", "secret");
  write_file("rootsibling.txt", "sibling");
  link_to("../outside/secret.txt", "root/leak.txt");
  link_to("../outside", "root/leakdir");
  link_to("style.css", "root/alias.css");
  link_to("sub", "root/subalias");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  return system(cmd);
}

typedef struct resp {
  int status;
  char text[8192];
  const char *body;
} resp;

/* Parses a real request and serves it. */
static void serve(const char *request, size_t max_file, resp *r) {
  http_parser *p = http_parser_new(NULL);
  http_request req;
  size_t used;
  int rc = http_parser_feed(p, (const uint8_t *)request, strlen(request), &used, &req);
  assert_int_equal(rc, HTTP_PARSE_REQUEST);
  buf out = {0};
  r->status = http_static_serve(root, &req, &out, req.keep_alive, max_file);
  assert_true(out.len < sizeof r->text);
  memcpy(r->text, out.data, out.len);
  r->text[out.len] = '\0';
  const char *end = strstr(r->text, "\r\n\r\n");
  assert_non_null(end);
  r->body = end + 4;
  char status_line[32];
  snprintf(status_line, sizeof status_line, "HTTP/1.1 %d ", r->status);
  assert_true(strncmp(r->text, status_line, strlen(status_line)) == 0);
  buf_free(&out);
  http_parser_free(p);
}

static void get(const char *path, resp *r) {
  char req[512];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
  serve(req, 1 << 20, r);
}

/* Copies the value of header name (with its "\r\n" + name + ": " prefix) into out; 0 if absent. */
static int header(const resp *r, const char *name, char *out, size_t cap) {
  char key[64];
  snprintf(key, sizeof key, "\r\n%s: ", name);
  const char *h = strstr(r->text, key);
  if (!h || h > r->body) return 0;
  h += strlen(key);
  size_t n = (size_t)(strstr(h, "\r\n") - h);
  assert_true(n < cap);
  memcpy(out, h, n);
  out[n] = '\0';
  return 1;
}

static void assert_header(const resp *r, const char *name, const char *value) {
  char v[256];
  assert_true(header(r, name, v, sizeof v));
  assert_string_equal(v, value);
}

static void test_mime(void **state) {
  (void)state;
  assert_string_equal(http_mime_type("/a/index.html"), "text/html; charset=utf-8");
  assert_string_equal(http_mime_type("x.CSS"), "text/css; charset=utf-8");
  assert_string_equal(http_mime_type("x.js"), "text/javascript; charset=utf-8");
  assert_string_equal(http_mime_type("x.mjs"), "text/javascript; charset=utf-8");
  assert_string_equal(http_mime_type("x.json"), "application/json; charset=utf-8");
  assert_string_equal(http_mime_type("x.js.map"), "application/json; charset=utf-8");
  assert_string_equal(http_mime_type("x.svg"), "image/svg+xml; charset=utf-8");
  assert_string_equal(http_mime_type("x.png"), "image/png");
  assert_string_equal(http_mime_type("x.jpg"), "image/jpeg");
  assert_string_equal(http_mime_type("x.jpeg"), "image/jpeg");
  assert_string_equal(http_mime_type("x.gif"), "image/gif");
  assert_string_equal(http_mime_type("x.webp"), "image/webp");
  assert_string_equal(http_mime_type("x.ico"), "image/x-icon");
  assert_string_equal(http_mime_type("x.txt"), "text/plain; charset=utf-8");
  assert_string_equal(http_mime_type("x.wasm"), "application/wasm");
  assert_string_equal(http_mime_type("x.woff"), "font/woff");
  assert_string_equal(http_mime_type("x.woff2"), "font/woff2");
  assert_string_equal(http_mime_type("x.xml"), "application/xml; charset=utf-8");
  assert_string_equal(http_mime_type("x.pdf"), "application/pdf");
  assert_string_equal(http_mime_type("x.exe"), "application/octet-stream");
  assert_string_equal(http_mime_type("noext"), "application/octet-stream");
  assert_string_equal(http_mime_type("/dir.html/noext"), "application/octet-stream");
  assert_string_equal(http_mime_type("x."), "application/octet-stream");
}

static void test_index_and_files(void **state) {
  (void)state;
  resp r;
  get("/", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "<h1>home</h1>");
  assert_header(&r, "Content-Type", "text/html; charset=utf-8");
  assert_header(&r, "Cache-Control", "no-cache");
  assert_header(&r, "Content-Length", "13");
  assert_header(&r, "Connection", "keep-alive");
  char v[128];
  assert_true(header(&r, "ETag", v, sizeof v));
  assert_true(v[0] == '"' && v[strlen(v) - 1] == '"');
  assert_true(header(&r, "Last-Modified", v, sizeof v));
  assert_int_equal(strlen(v), 29);
  assert_true(header(&r, "Date", v, sizeof v));

  get("/style.css", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "body{}");
  assert_header(&r, "Content-Type", "text/css; charset=utf-8");
  assert_header(&r, "Cache-Control", "public, max-age=3600");

  get("/app.js?v=3", &r);
  assert_int_equal(r.status, 200);
  assert_header(&r, "Content-Type", "text/javascript; charset=utf-8");

  get("/sub/", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "<p>sub</p>");
  assert_header(&r, "Content-Type", "text/html; charset=utf-8");
  assert_header(&r, "Cache-Control", "no-cache");
  get("/sub", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "<p>sub</p>");
  get("/sub/index.html", &r);
  assert_int_equal(r.status, 200);

  get("/a.b/file", &r);
  assert_int_equal(r.status, 200);
  assert_header(&r, "Content-Type", "application/octet-stream");

  /* Percent-encoded names reach the file system decoded. */
  get("/%73tyle.css", &r);
  assert_int_equal(r.status, 200);
  /* A symlink inside the root to a file inside it is fine, and the type follows the target. */
  get("/alias.css", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "body{}");
  get("/subalias/", &r);
  assert_int_equal(r.status, 200);
}

static void test_not_found_and_no_listing(void **state) {
  (void)state;
  resp r;
  get("/missing.html", &r);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body, "404 Not Found\n");
  get("/empty/", &r);
  assert_int_equal(r.status, 404);
  get("/empty", &r);
  assert_int_equal(r.status, 404);
  get("/style.css/", &r);
  assert_int_equal(r.status, 404);
}

static void test_traversal(void **state) {
  (void)state;
  static const char *attempts[] = {
      "/../outside/secret.txt",
      "/%2e%2e/outside/secret.txt",
      "/%2E%2E/outside/secret.txt",
      "/sub/../../outside/secret.txt",
      "/sub/%2e%2e/%2e%2e/outside/secret.txt",
      "/..%2foutside%2fsecret.txt",
      "/%2e%2e%2foutside%2fsecret.txt",
      "/..",
      "/../rootsibling.txt",
      "/../root/../rootsibling.txt",
      "/sub/..",
      "/leak.txt",
      "/leakdir/secret.txt",
      "/leakdir/",
      "http://h/../outside/secret.txt",
  };
  for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
    resp r;
    get(attempts[i], &r);
    if (r.status != 404) fail_msg("%s answered %d", attempts[i], r.status);
    assert_null(strstr(r.text, "secret"));
    assert_null(strstr(r.text, "sibling"));
  }
}

static void test_head(void **state) {
  (void)state;
  resp r;
  serve("HEAD /big.txt HTTP/1.1\r\nHost: h\r\n\r\n", 1 << 20, &r);
  assert_int_equal(r.status, 200);
  assert_header(&r, "Content-Length", "40");
  assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
  assert_string_equal(r.body, "");
}

static void test_method_not_allowed(void **state) {
  (void)state;
  resp r;
  serve("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 1 << 20, &r);
  assert_int_equal(r.status, 405);
  assert_header(&r, "Allow", "GET, HEAD");
  serve("DELETE /style.css HTTP/1.1\r\nHost: h\r\n\r\n", 1 << 20, &r);
  assert_int_equal(r.status, 405);
}

static void test_too_large(void **state) {
  (void)state;
  resp r;
  serve("GET /big.txt HTTP/1.1\r\nHost: h\r\n\r\n", 39, &r);
  assert_int_equal(r.status, 500);
  assert_null(strstr(r.text, "0123456789"));
  serve("GET /big.txt HTTP/1.1\r\nHost: h\r\n\r\n", 40, &r);
  assert_int_equal(r.status, 200);
}

static void conditional(const char *path, const char *hdrs, resp *r) {
  char req[1024];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n%s\r\n", path, hdrs);
  serve(req, 1 << 20, r);
}

static void test_etag_flow(void **state) {
  (void)state;
  resp r;
  get("/style.css", &r);
  char etag[128], lm[64], h[512];
  assert_true(header(&r, "ETag", etag, sizeof etag));
  assert_true(header(&r, "Last-Modified", lm, sizeof lm));

  snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
  conditional("/style.css", h, &r);
  assert_int_equal(r.status, 304);
  assert_string_equal(r.body, "");
  assert_header(&r, "ETag", etag);
  assert_header(&r, "Content-Length", "6"); /* what a 200 would carry */
  assert_false(header(&r, "Content-Type", h, sizeof h));

  snprintf(h, sizeof h, "If-None-Match: \"nope\", W/%s , \"other\"\r\n", etag);
  conditional("/style.css", h, &r);
  assert_int_equal(r.status, 304);
  conditional("/style.css", "If-None-Match: *\r\n", &r);
  assert_int_equal(r.status, 304);
  conditional("/style.css", "If-None-Match: \"nope\"\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "body{}");
  /* The ETag of one file does not validate another. */
  snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
  conditional("/app.js", h, &r);
  assert_int_equal(r.status, 200);

  /* If-Modified-Since */
  snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", lm);
  conditional("/style.css", h, &r);
  assert_int_equal(r.status, 304);
  conditional("/style.css", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &r);
  assert_int_equal(r.status, 200);
  conditional("/style.css", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n", &r);
  assert_int_equal(r.status, 304);
  conditional("/style.css", "If-Modified-Since: yesterday\r\n", &r);
  assert_int_equal(r.status, 200);
  /* If-None-Match wins: not matching means 200 even with a fresh If-Modified-Since. */
  snprintf(h, sizeof h, "If-None-Match: \"nope\"\r\nIf-Modified-Since: %s\r\n", lm);
  conditional("/style.css", h, &r);
  assert_int_equal(r.status, 200);

  /* HEAD gets the 304 too. */
  snprintf(h, sizeof h, "HEAD /style.css HTTP/1.1\r\nHost: h\r\nIf-None-Match: %s\r\n\r\n", etag);
  serve(h, 1 << 20, &r);
  assert_int_equal(r.status, 304);

  /* A change to the file changes the validator. */
  char path[512];
  snprintf(path, sizeof path, "%s/style.css", root);
  struct timespec times[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1000000000, .tv_nsec = 0}};
  assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
  snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
  conditional("/style.css", h, &r);
  assert_int_equal(r.status, 200);
  char etag2[128];
  assert_true(header(&r, "ETag", etag2, sizeof etag2));
  assert_string_not_equal(etag, etag2);
  assert_header(&r, "Last-Modified", "Sun, 09 Sep 2001 01:46:40 GMT");
}

static void test_missing_root(void **state) {
  (void)state;
  http_parser *p = http_parser_new(NULL);
  http_request req;
  size_t used;
  assert_int_equal(http_parser_feed(p, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, &used, &req),
                   HTTP_PARSE_REQUEST);
  buf out = {0};
  assert_int_equal(http_static_serve("/nonexistent/wsio/root", &req, &out, 0, 1000), 404);
  assert_int_equal(http_static_serve(NULL, &req, &out, 0, 1000), 404);
  buf_free(&out);
  http_parser_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mime),          cmocka_unit_test(test_index_and_files),
      cmocka_unit_test(test_not_found_and_no_listing), cmocka_unit_test(test_traversal),
      cmocka_unit_test(test_head),          cmocka_unit_test(test_method_not_allowed),
      cmocka_unit_test(test_too_large),     cmocka_unit_test(test_etag_flow),
      cmocka_unit_test(test_missing_root),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
