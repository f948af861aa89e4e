/*
 * fuzz_http — arbitrary bytes through http_parser_feed as a connection would deliver them: once whole and
 * once in random reads, taking pipelined requests off the front. Both runs must see the same requests and
 * the same final status. Upgrade requests go through ws_handshake_accept; GET and HEAD requests through
 * http_static_serve on a small web root beside a file that must never be served; every request through
 * http_forwarded_client (X-Forwarded-For, Forwarded) with one of three trusted-proxy lists.
 *
 * Input: byte 0 seeds the read sizes, byte 1 picks limits and handshake settings, the rest is the stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/forwarded.h"
#include "http/parser.h"
#include "http/static.h"
#include "net/trust.h"
#include "util/log.h"
#include "ws/handshake.h"

#define CHECK(x) \
  do {           \
    if (!(x)) __builtin_trap(); \
  } while (0)

static char tmp_dir[] = "/tmp/wsio-fuzz-http-XXXXXX";
static net_trust *trusted[3]; /* none, one proxy, networks of both families */
static char web_root[256];

static void remove_root(void) {
  static const char *files[] = {"www/out", "www/index.html", "www", "secret.txt", ""};
  char path[512];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
    remove(path);
  }
}

static void make_root(void) {
  CHECK(mkdtemp(tmp_dir) != NULL);
  atexit(remove_root);
  char path[512];
  snprintf(path, sizeof path, "%s/secret.txt", tmp_dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs("SECRET", f);
  fclose(f);
  snprintf(web_root, sizeof web_root, "%s/www", tmp_dir);
  CHECK(mkdir(web_root, 0700) == 0);
  snprintf(path, sizeof path, "%s/index.html", web_root);
  f = fopen(path, "w");
  CHECK(f != NULL);
  fputs("<p>index</p>", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/out", web_root);
  CHECK(symlink("../secret.txt", path) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_level = -1; /* the 500 for a large file logs; keep the fuzzer's output clean */
  make_root();
  CHECK(net_trust_parse("127.0.0.1", &trusted[1], NULL, 0) == 0);
  CHECK(net_trust_parse("10.0.0.0/8, 192.168.0.0/16, ::1, fd00::/8", &trusted[2], NULL, 0) == 0);
  return 0;
}

static uint64_t mix(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}

static uint64_t mix_int(uint64_t h, uint64_t v) { return mix(h, &v, sizeof v); }

static void check_request(const http_request *r, const http_limits *lim) {
  CHECK(r->path[r->path_len] == '\0' && strlen(r->path) == r->path_len);
  CHECK(r->query[r->query_len] == '\0' && strlen(r->query) == r->query_len);
  CHECK(r->url_len > 0 && r->url_len <= lim->max_url);
  CHECK(r->nheaders <= HTTP_MAX_HEADERS);
  CHECK(r->body_len <= lim->max_body);
  CHECK((r->body_len == 0) == (r->body == NULL));
  for (size_t i = 0; i < r->nheaders; i++) CHECK(r->headers[i].name_len > 0);
}

static uint64_t hash_request(uint64_t h, const http_request *r) {
  h = mix_int(h, (uint64_t)r->method);
  h = mix(h, r->url, r->url_len);
  h = mix(h, r->path, r->path_len + 1);
  h = mix(h, r->query, r->query_len + 1);
  for (size_t i = 0; i < r->nheaders; i++) {
    h = mix(h, r->headers[i].name, r->headers[i].name_len);
    h = mix_int(h, r->headers[i].value_len);
    h = mix(h, r->headers[i].value, r->headers[i].value_len);
  }
  h = mix(h, r->body, r->body_len);
  return mix_int(h, (uint64_t)r->keep_alive << 24 | (uint64_t)r->upgrade << 16 | r->http_major << 8 |
                        r->http_minor);
}

static void handshake(const http_request *r, uint8_t mode) {
  static const char *protos[] = {NULL, "chat, superchat", "a,b,,c"};
  ws_handshake_config cfg = {
      .subprotocols = protos[mode % 3],
      .origins = (mode & 4) ? "http://a, https://b.example" : NULL,
      .deflate_mode = (mode >> 3) % 3,
  };
  ws_handshake_result res;
  char out[512];
  int rc = ws_handshake_accept(r, &cfg, &res, out, sizeof out);
  CHECK(memchr(out, '\0', sizeof out) != NULL);
  if (rc == 0) {
    CHECK(strncmp(out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strlen(out) > 4 && strcmp(out + strlen(out) - 4, "\r\n\r\n") == 0);
    CHECK(ws_handshake_is_upgrade(r));
    CHECK(strlen(res.protocol) < sizeof res.protocol);
  } else {
    CHECK(rc == 400 || rc == 403 || rc == 426 || rc == 503);
    char line[16];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", rc);
    CHECK(strncmp(out, line, strlen(line)) == 0);
    CHECK(res.deflate == 0 && res.protocol[0] == '\0');
  }
}

static void serve_static(const http_request *r) {
  buf out = {0};
  int st = http_static_serve(web_root, r, &out, r->keep_alive, 1 << 16);
  CHECK(st == 200 || st == 304 || st == 404 || st == 405);
  CHECK(out.len > 12 && memcmp(out.data, "HTTP/1.1 ", 9) == 0);
  CHECK(memmem(out.data, out.len, "SECRET", 6) == NULL);
  buf_free(&out);
}

/* The client behind trusted proxies: one of the three results, and a client that prints and parses back. */
static void forwarded(const http_request *r, uint8_t mode) {
  net_addr a;
  int rc = http_forwarded_client(r, trusted[(mode >> 4) % 3], &a);
  CHECK(rc == HTTP_FWD_BAD || rc == HTTP_FWD_NONE || rc == HTTP_FWD_CLIENT);
  if (rc != HTTP_FWD_CLIENT) return;
  CHECK(a.family == 4 || a.family == 6);
  char text[NET_ADDR_TEXT];
  net_addr back;
  CHECK(net_addr_format(&a, text, sizeof text) > 0);
  CHECK(net_addr_parse(text, strlen(text), &back) == 0 && memcmp(&a, &back, sizeof a) == 0);
}

typedef struct rng {
  uint64_t s;
} rng;

static size_t next_read(rng *g, size_t left) {
  if (!g) return left;
  g->s = g->s * 6364136223846793005ULL + 1442695040888963407ULL;
  size_t n = (size_t)(g->s >> 33) % ((g->s >> 60) < 4 ? 4 : 97) + 1;
  return n < left ? n : left;
}

/* Runs the stream through one connection's parser. Returns a hash of everything it saw. */
static uint64_t run(const uint8_t *data, size_t size, const http_limits *lim, uint8_t mode, rng *g, int side) {
  http_parser *p = http_parser_new(lim);
  CHECK(p != NULL);
  uint8_t *pending = malloc(size + 1);
  size_t plen = 0, pos = 0, base = 0; /* base: stream offset of pending[0] */
  uint64_t h = 0xcbf29ce484222325ULL;
  int status = 0;
  while (!status) {
    if (pos < size) {
      size_t n = next_read(g, size - pos);
      memcpy(pending + plen, data + pos, n);
      plen += n;
      pos += n;
    } else if (plen == 0) {
      break;
    }
    /* A fresh copy of exactly plen bytes, so any read past the end is caught. */
    uint8_t *in = malloc(plen ? plen : 1);
    memcpy(in, pending, plen);
    http_request req;
    size_t used = 0;
    int rc = http_parser_feed(p, in, plen, &used, &req);
    free(in);
    CHECK(used <= plen);
    if (rc == HTTP_PARSE_NEED_MORE) {
      CHECK(used == plen);
      /* A 100 (Continue) is owed at most once per request. */
      if (http_parser_take_continue(p)) CHECK(!http_parser_take_continue(p));
      base += plen;
      plen = 0;
      continue;
    }
    if (rc != HTTP_PARSE_REQUEST) {
      CHECK(rc >= 400 && rc <= 599);
      h = mix_int(h, (uint64_t)rc);
      status = rc;
      break;
    }
    CHECK(used > 0);
    check_request(&req, lim);
    h = hash_request(h, &req);
    h = mix_int(h, base + used);
    if (side) {
      forwarded(&req, mode);
      if (req.upgrade) handshake(&req, mode);
      else if (mode & 0x40) serve_static(&req);
    }
    if (req.upgrade) break; /* the rest is another protocol's */
    memmove(pending, pending + used, plen - used);
    plen -= used;
    base += used;
    http_parser_reset(p);
    CHECK(http_parser_memory(p) == 0);
  }
  free(pending);
  http_parser_free(p);
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t seed = data[0], mode = data[1];
  data += 2;
  size -= 2;
  http_limits lim = (mode & 0x80) ? (http_limits){.max_url = 64, .max_head = 512, .max_body = 256}
                                  : (http_limits){.max_url = 8192, .max_head = 16384, .max_body = 1u << 20};
  rng g = {seed * 0x9e3779b97f4a7c15ULL + size};
  uint64_t whole = run(data, size, &lim, mode, NULL, 1);
  uint64_t split = run(data, size, &lim, mode, &g, 0);
  CHECK(whole == split);
  return 0;
}
