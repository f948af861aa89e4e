/* ws_handshake: the accept key, every rejection of RFC 6455 4.2.1, token lists in any case, origins,
 * subprotocol selection, permessage-deflate negotiation reaching the 101. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parser.h"
#include "ws/handshake.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 1.3 */

typedef struct hs {
  int rc;
  ws_handshake_result res;
  char out[1024];
} hs;

/* Parses request (a full head) and runs the handshake on it. */
static void run_cap(const char *request, const ws_handshake_config *cfg, hs *h, size_t cap) {
  http_parser *p = http_parser_new(NULL);
  http_request req;
  size_t used;
  assert_int_equal(http_parser_feed(p, (const uint8_t *)request, strlen(request), &used, &req),
                   HTTP_PARSE_REQUEST);
  memset(h, 0x5a, sizeof *h);
  h->rc = ws_handshake_accept(&req, cfg, &h->res, h->out, cap);
  assert_non_null(memchr(h->out, '\0', cap));
  http_parser_free(p);
}

static void run(const char *request, const ws_handshake_config *cfg, hs *h) {
  run_cap(request, cfg, h, sizeof h->out);
}

/* A request with the usual lines, with extra lines appended. */
static void request_with(char *dst, size_t cap, const char *extra) {
  snprintf(dst, cap,
           "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
           extra);
}

static int has_line(const hs *h, const char *line) {
  char want[256];
  snprintf(want, sizeof want, "\r\n%s\r\n", line);
  const char *end = strstr(h->out, "\r\n\r\n");
  const char *at = strstr(h->out, want);
  return at != NULL && end != NULL && at <= end;
}

static int has_name(const hs *h, const char *name) {
  char want[128];
  snprintf(want, sizeof want, "\r\n%s:", name);
  return strstr(h->out, want) != NULL;
}

/* A rejection is a whole HTTP response that closes the connection, with a body of its announced length. */
static void assert_rejected(const hs *h, int status) {
  assert_int_equal(h->rc, status);
  char line[32];
  snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
  assert_true(strncmp(h->out, line, strlen(line)) == 0);
  assert_true(has_line(h, "Connection: close"));
  const char *cl = strstr(h->out, "\r\nContent-Length: ");
  assert_non_null(cl);
  const char *body = strstr(h->out, "\r\n\r\n");
  assert_non_null(body);
  body += 4;
  assert_int_equal(strtoul(cl + 18, NULL, 10), strlen(body));
  assert_true(strlen(body) > 1);
  assert_int_equal(has_line(h, "Sec-WebSocket-Version: 13"), status == 426);
  assert_false(has_name(h, "Sec-WebSocket-Accept"));
  assert_int_equal(h->res.deflate, 0);
  assert_string_equal(h->res.protocol, "");
}

static void test_accept_key(void **state) {
  (void)state;
  char out[29];
  ws_handshake_accept_key(KEY, strlen(KEY), out);
  assert_string_equal(out, ACCEPT);
  ws_handshake_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
  assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  /* Longer input than the stack scratch. */
  char long_key[300];
  memset(long_key, 'k', sizeof long_key);
  ws_handshake_accept_key(long_key, sizeof long_key, out);
  assert_int_equal(strlen(out), 28);
}

static void test_rfc_example(void **state) {
  (void)state;
  char req[1024];
  request_with(req, sizeof req, "Origin: http://example.com\r\n");
  hs h;
  run(req, NULL, &h);
  assert_int_equal(h.rc, 0);
  assert_string_equal(h.out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n");
  assert_int_equal(h.res.deflate, 0);
  assert_string_equal(h.res.protocol, "");
}

static void test_is_upgrade(void **state) {
  (void)state;
  static const struct {
    const char *req;
    int want;
  } cases[] = {
      {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1},
      {"GET / HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n\r\n", 1},
      {"GET / HTTP/1.1\r\nUpgrade: h2c, websocket\r\nConnection: upgrade\r\n\r\n", 1},
      {"GET / HTTP/1.1\r\nUpgrade: foo\r\nUpgrade: websocket\r\nConnection: x\r\nConnection: upgrade\r\n\r\n", 1},
      {"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nUpgrade: websockets\r\nConnection: Upgrade\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgraded\r\n\r\n", 0},
      {"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    http_parser *p = http_parser_new(NULL);
    http_request req;
    size_t used;
    assert_int_equal(http_parser_feed(p, (const uint8_t *)cases[i].req, strlen(cases[i].req), &used, &req),
                     HTTP_PARSE_REQUEST);
    if (ws_handshake_is_upgrade(&req) != cases[i].want) fail_msg("case %zu", i);
    http_parser_free(p);
  }
}

static void test_token_lists_any_case(void **state) {
  (void)state;
  static const char *reqs[] = {
      "GET / HTTP/1.1\r\nhost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
      "sec-websocket-key: " KEY "\r\nsec-websocket-version: 13\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WEBSOCKET\r\nConnection: UPGRADE,keep-alive\r\n"
      "Sec-WebSocket-Key:  " KEY "  \r\nSec-WebSocket-Version:  13 \r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: foo/2, websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n"
      "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
      "GET / HTTP/1.2\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" /* later 1.x */
      "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    http_parser *p = http_parser_new(NULL);
    http_request req;
    size_t used;
    if (http_parser_feed(p, (const uint8_t *)reqs[i], strlen(reqs[i]), &used, &req) != HTTP_PARSE_REQUEST) {
      http_parser_free(p); /* llhttp refuses HTTP/1.2 on the wire; nothing to check then */
      continue;
    }
    char out[512];
    ws_handshake_result res;
    int rc = ws_handshake_accept(&req, NULL, &res, out, sizeof out);
    if (rc != 0) fail_msg("case %zu: %d %s", i, rc, out);
    assert_non_null(strstr(out, "Sec-WebSocket-Accept: " ACCEPT "\r\n"));
    http_parser_free(p);
  }
}

static void test_rejections(void **state) {
  (void)state;
  static const struct {
    const char *req;
    int status;
  } cases[] = {
      /* method */
      {"POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", 400},
      /* HTTP/1.0 */
      {"GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      /* Host missing, twice */
      {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      /* Upgrade missing, other protocol */
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      /* Connection without upgrade */
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      /* key: missing, twice, wrong length, bad characters, no padding, empty */
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\nSec-WebSocket-Version: 13\r\n\r\n", 400}, /* 17 bytes */
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ===\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key:\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY ", " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
      /* version: other, missing, list, twice */
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n", 426},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\n\r\n", 426},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13, 8\r\n\r\n", 426},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 130\r\n\r\n", 426},
      {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hs h;
    run(cases[i].req, NULL, &h);
    if (h.rc != cases[i].status) fail_msg("case %zu: got %d want %d", i, h.rc, cases[i].status);
    assert_rejected(&h, cases[i].status);
  }
}

static void test_origins(void **state) {
  (void)state;
  ws_handshake_config cfg = {.origins = "https://app.example.com, http://localhost:3000"};
  char req[1024];
  hs h;
  request_with(req, sizeof req, "Origin: https://app.example.com\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  request_with(req, sizeof req, "Origin: HTTP://LOCALHOST:3000\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  request_with(req, sizeof req, "Origin: https://evil.example.com\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  request_with(req, sizeof req, "Origin: https://app.example.com.evil.net\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  request_with(req, sizeof req, "Origin: null\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  /* A second, unlisted Origin line is not hidden by a first, listed one. */
  request_with(req, sizeof req, "Origin: https://app.example.com\r\nOrigin: https://evil.example.com\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  /* No Origin: a non-browser client, accepted. */
  request_with(req, sizeof req, "");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  /* The server's own pages (Origin host equal to Host, any scheme) are not cross-site. */
  request_with(req, sizeof req, "Origin: http://server.example.com\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  request_with(req, sizeof req, "Origin: https://SERVER.example.com\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  /* ... but only the same host and port. */
  request_with(req, sizeof req, "Origin: http://server.example.com:8080\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  request_with(req, sizeof req, "Origin: http://server.example.com.evil.net\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  request_with(req, sizeof req, "Origin: server.example.com\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  request_with(req, sizeof req, "Origin: http://evil.net/server.example.com\r\n");
  run(req, &cfg, &h);
  assert_rejected(&h, 403);
  /* No list: any origin. */
  request_with(req, sizeof req, "Origin: https://evil.example.com\r\n");
  run(req, NULL, &h);
  assert_int_equal(h.rc, 0);
}

static void test_subprotocols(void **state) {
  (void)state;
  ws_handshake_config cfg = {.subprotocols = "chat, superchat ,v2.json"};
  char req[1024];
  hs h;
  /* The server's order decides. */
  request_with(req, sizeof req, "Sec-WebSocket-Protocol: superchat, chat\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  assert_string_equal(h.res.protocol, "chat");
  assert_true(has_line(&h, "Sec-WebSocket-Protocol: chat"));
  /* Several header lines count as one list. */
  request_with(req, sizeof req, "Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: bar, v2.json\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  assert_string_equal(h.res.protocol, "v2.json");
  assert_true(has_line(&h, "Sec-WebSocket-Protocol: v2.json"));
  /* None in common: the connection proceeds without the header. */
  request_with(req, sizeof req, "Sec-WebSocket-Protocol: mqtt, CHAT, superchatty\r\n");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  assert_string_equal(h.res.protocol, "");
  assert_false(has_name(&h, "Sec-WebSocket-Protocol"));
  /* The client offers nothing. */
  request_with(req, sizeof req, "");
  run(req, &cfg, &h);
  assert_int_equal(h.rc, 0);
  assert_false(has_name(&h, "Sec-WebSocket-Protocol"));
  /* The server has no list. */
  request_with(req, sizeof req, "Sec-WebSocket-Protocol: chat\r\n");
  run(req, NULL, &h);
  assert_int_equal(h.rc, 0);
  assert_false(has_name(&h, "Sec-WebSocket-Protocol"));
}

static void test_extensions(void **state) {
  (void)state;
  ws_handshake_config shared = {.deflate_mode = 1};
  ws_handshake_config off = {.deflate_mode = 0};
  char req[1024];
  hs h;
  request_with(req, sizeof req, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
  run(req, &shared, &h);
  assert_int_equal(h.rc, 0);
  assert_int_equal(h.res.deflate, 1);
  assert_int_equal(h.res.pmd.server_no_context_takeover, 1); /* the shared model always asks for it */
  const char *ext = strstr(h.out, "\r\nSec-WebSocket-Extensions: permessage-deflate");
  assert_non_null(ext);
  assert_true(ext < strstr(h.out, "\r\n\r\n"));
  assert_non_null(strstr(h.out, "server_no_context_takeover"));
  /* Offers over several lines are joined; an unknown extension before ours is skipped. */
  request_with(req, sizeof req, "Sec-WebSocket-Extensions: x-webkit-foo\r\nSec-WebSocket-Extensions: permessage-deflate\r\n");
  run(req, &shared, &h);
  assert_int_equal(h.rc, 0);
  assert_int_equal(h.res.deflate, 1);
  assert_non_null(strstr(h.out, "\r\nSec-WebSocket-Extensions: permessage-deflate"));
  /* Compression off: no extension, even when offered. */
  request_with(req, sizeof req, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  run(req, &off, &h);
  assert_int_equal(h.rc, 0);
  assert_int_equal(h.res.deflate, 0);
  assert_false(has_name(&h, "Sec-WebSocket-Extensions"));
  /* Only unknown extensions. */
  request_with(req, sizeof req, "Sec-WebSocket-Extensions: x-foo; bar=1\r\n");
  run(req, &shared, &h);
  assert_int_equal(h.rc, 0);
  assert_int_equal(h.res.deflate, 0);
  assert_false(has_name(&h, "Sec-WebSocket-Extensions"));
  /* Malformed */
  request_with(req, sizeof req, "Sec-WebSocket-Extensions: permessage-deflate;\r\n");
  run(req, &shared, &h);
  assert_rejected(&h, 400);
  /* Together with a subprotocol */
  ws_handshake_config both = {.deflate_mode = 2, .subprotocols = "chat"};
  request_with(req, sizeof req, "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n");
  run(req, &both, &h);
  assert_int_equal(h.rc, 0);
  assert_int_equal(h.res.deflate, 1);
  assert_true(has_line(&h, "Sec-WebSocket-Protocol: chat"));
  assert_non_null(strstr(h.out, "\r\nSec-WebSocket-Extensions: permessage-deflate"));
  assert_true(strncmp(h.out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
  assert_int_equal(strcmp(h.out + strlen(h.out) - 4, "\r\n\r\n"), 0);
}

static void test_small_output(void **state) {
  (void)state;
  char req[1024];
  hs h;
  request_with(req, sizeof req, "");
  run_cap(req, NULL, &h, 60);
  assert_int_equal(h.rc, 500);
  assert_int_equal(h.res.deflate, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_key),    cmocka_unit_test(test_rfc_example),
      cmocka_unit_test(test_is_upgrade),    cmocka_unit_test(test_token_lists_any_case),
      cmocka_unit_test(test_rejections),    cmocka_unit_test(test_origins),
      cmocka_unit_test(test_subprotocols),  cmocka_unit_test(test_extensions),
      cmocka_unit_test(test_small_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
