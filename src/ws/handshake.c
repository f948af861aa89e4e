#include "ws/handshake.h"

#include <llhttp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/response.h"
#include "wsio.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define EXT_RESP_CAP 256

void ws_handshake_accept_key(const char *key, size_t key_len, char out[29]) {
  char small[128];
  size_t n = key_len + sizeof WS_GUID - 1;
  char *cat = n <= sizeof small ? small : malloc(n);
  unsigned char md[SHA_DIGEST_LENGTH];
  if (!cat) {
    out[0] = '\0';
    return;
  }
  memcpy(cat, key, key_len);
  memcpy(cat + key_len, WS_GUID, sizeof WS_GUID - 1);
  SHA1((const unsigned char *)cat, n, md);
  if (cat != small) free(cat);
  EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 characters and a NUL */
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Calls fn for each trimmed, non-empty element of a comma list; stops and returns 1 when fn does. */
typedef int (*item_fn)(const char *s, size_t n, const void *ctx);
static int each_item(const char *v, size_t len, item_fn fn, const void *ctx) {
  size_t i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && v[j] != ',') j++;
    size_t a = i, z = j;
    while (a < z && is_ows(v[a])) a++;
    while (z > a && is_ows(v[z - 1])) z--;
    if (z > a && fn(v + a, z - a, ctx)) return 1;
    i = j + 1;
  }
  return 0;
}

typedef struct span {
  const char *s;
  size_t n;
} span;

static int same_exact(const char *s, size_t n, const void *ctx) {
  const span *want = ctx;
  return n == want->n && memcmp(s, want->s, n) == 0;
}

static int same_nocase(const char *s, size_t n, const void *ctx) {
  const span *want = ctx;
  return n == want->n && strncasecmp(s, want->s, n) == 0;
}

/* 1 if any header line called name lists token (case-insensitive). */
static int headers_have_token(const http_request *req, const char *name, const char *token) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header *h = &req->headers[i];
    if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0 &&
        http_header_has_token(h->value, h->value_len, token))
      return 1;
  }
  return 0;
}

static size_t header_count(const http_request *req, const char *name) {
  size_t nl = strlen(name), c = 0;
  for (size_t i = 0; i < req->nheaders; i++)
    if (req->headers[i].name_len == nl && strncasecmp(req->headers[i].name, name, nl) == 0) c++;
  return c;
}

static span trimmed(const http_header *h) {
  span s = {h->value, h->value_len};
  while (s.n > 0 && is_ows(s.s[0])) s.s++, s.n--;
  while (s.n > 0 && is_ows(s.s[s.n - 1])) s.n--;
  return s;
}

/* RFC 6455 4.2.1: the key is base64 of 16 bytes, so exactly 22 alphabet characters and "==". */
static int key_valid(span k) {
  if (k.n != 24 || k.s[22] != '=' || k.s[23] != '=') return 0;
  for (size_t i = 0; i < 22; i++) {
    char c = k.s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return 0;
  }
  return 1;
}

int ws_handshake_is_upgrade(const http_request *req) {
  return req->method == HTTP_GET && headers_have_token(req, "Upgrade", "websocket") &&
         headers_have_token(req, "Connection", "upgrade");
}

static int reject(char *out, size_t cap, int status, const char *why) {
  if (cap > 0)
    snprintf(out, cap,
             "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: %zu\r\n%s\r\n%s\n",
             status, http_status_text(status), strlen(why) + 1,
             status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "", why);
  return status;
}

/* The first of the server's protocols that some Sec-WebSocket-Protocol line offers (case-sensitive, as
 * subprotocol names are compared by clients), copied into dst; "" when none. */
typedef struct pick_ctx {
  const http_request *req;
  char *dst;
} pick_ctx;

static int offered_by_client(const char *s, size_t n, const void *ctx) {
  const pick_ctx *pc = ctx;
  if (n >= sizeof ((ws_handshake_result *)0)->protocol) return 0;
  span want = {s, n};
  for (size_t i = 0; i < pc->req->nheaders; i++) {
    const http_header *h = &pc->req->headers[i];
    if (h->name_len == 22 && strncasecmp(h->name, "Sec-WebSocket-Protocol", 22) == 0 &&
        each_item(h->value, h->value_len, same_exact, &want)) {
      memcpy(pc->dst, s, n);
      pc->dst[n] = '\0';
      return 1;
    }
  }
  return 0;
}

/* Negotiates permessage-deflate over all extension lines joined with ", ". Returns 1 accepted, 0 not,
 * negative for a malformed header or no memory. */
static int negotiate_ext(const http_request *req, int mode, ws_handshake_result *res, char *resp) {
  size_t total = 0, lines = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header *h = &req->headers[i];
    if (h->name_len == 24 && strncasecmp(h->name, "Sec-WebSocket-Extensions", 24) == 0) {
      total += h->value_len + 2;
      lines++;
    }
  }
  if (lines == 0) return 0;
  char *joined = malloc(total);
  if (!joined) return WSIO_ENOMEM;
  size_t len = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header *h = &req->headers[i];
    if (h->name_len == 24 && strncasecmp(h->name, "Sec-WebSocket-Extensions", 24) == 0) {
      if (len) memcpy(joined + len, ", ", 2), len += 2;
      memcpy(joined + len, h->value, h->value_len);
      len += h->value_len;
    }
  }
  int rc = ws_pmd_negotiate(joined, len, mode, &res->pmd, resp, EXT_RESP_CAP);
  free(joined);
  return rc;
}

/* "scheme://host[:port]" whose host[:port] is the request's Host header. */
static int same_origin(const http_request *req, span o) {
  const http_header *host = http_request_header(req, "Host");
  const char *sep = o.n > 3 ? memchr(o.s, ':', o.n) : NULL;
  if (!host || !sep || (size_t)(o.s + o.n - sep) < 3 || memcmp(sep, "://", 3) != 0) return 0;
  span h = trimmed(host), a = {sep + 3, (size_t)(o.s + o.n - sep - 3)};
  return h.n && a.n == h.n && strncasecmp(a.s, h.s, h.n) == 0;
}

int ws_handshake_accept(const http_request *req, const ws_handshake_config *cfg, ws_handshake_result *res,
                        char *out, size_t out_cap) {
  static const ws_handshake_config defaults = {NULL, NULL, 0};
  if (!cfg) cfg = &defaults;
  memset(res, 0, sizeof *res);

  if (req->method != HTTP_GET) return reject(out, out_cap, 400, "WebSocket handshake needs GET");
  if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1))
    return reject(out, out_cap, 400, "WebSocket handshake needs HTTP/1.1");
  if (header_count(req, "Host") != 1) return reject(out, out_cap, 400, "one Host header required");
  if (!headers_have_token(req, "Upgrade", "websocket"))
    return reject(out, out_cap, 400, "Upgrade: websocket required");
  if (!headers_have_token(req, "Connection", "upgrade"))
    return reject(out, out_cap, 400, "Connection: Upgrade required");

  size_t nver = header_count(req, "Sec-WebSocket-Version");
  if (nver > 1) return reject(out, out_cap, 400, "duplicate Sec-WebSocket-Version");
  const http_header *ver = http_request_header(req, "Sec-WebSocket-Version");
  span v = ver ? trimmed(ver) : (span){"", 0};
  if (v.n != 2 || memcmp(v.s, "13", 2) != 0) return reject(out, out_cap, 426, "WebSocket version 13 required");

  const http_header *keyh = http_request_header(req, "Sec-WebSocket-Key");
  if (!keyh || header_count(req, "Sec-WebSocket-Key") != 1 || !key_valid(trimmed(keyh)))
    return reject(out, out_cap, 400, "invalid Sec-WebSocket-Key");

  /* Origin is a browser's statement; other clients send none and are let through. A listed set of origins
   * therefore guards against cross-site pages, not against arbitrary programs. A page of the server itself
   * (Origin's host equal to Host) is never cross-site. */
  if (cfg->origins) {
    for (size_t i = 0; i < req->nheaders; i++) {
      const http_header *h = &req->headers[i];
      if (h->name_len != 6 || strncasecmp(h->name, "Origin", 6) != 0) continue;
      span o = trimmed(h);
      if (!same_origin(req, o) && !each_item(cfg->origins, strlen(cfg->origins), same_nocase, &o))
        return reject(out, out_cap, 403, "origin not allowed");
    }
  }

  if (cfg->subprotocols) {
    pick_ctx pc = {req, res->protocol};
    each_item(cfg->subprotocols, strlen(cfg->subprotocols), offered_by_client, &pc);
  }

  char ext[EXT_RESP_CAP] = "";
  if (cfg->deflate_mode != 0) {
    int rc = negotiate_ext(req, cfg->deflate_mode, res, ext);
    if (rc < 0) {
      memset(res, 0, sizeof *res);
      return rc == WSIO_ENOMEM ? reject(out, out_cap, 503, "out of memory")
                               : reject(out, out_cap, 400, "malformed Sec-WebSocket-Extensions");
    }
    res->deflate = rc == 1;
    if (!res->deflate) {
      memset(&res->pmd, 0, sizeof res->pmd);
      ext[0] = '\0';
    }
  }

  char accept[29];
  span k = trimmed(keyh);
  ws_handshake_accept_key(k.s, k.n, accept);
  int n = snprintf(out, out_cap,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n%s%s%s%s%s%s\r\n",
                   accept, res->protocol[0] ? "Sec-WebSocket-Protocol: " : "", res->protocol,
                   res->protocol[0] ? "\r\n" : "", ext[0] ? "Sec-WebSocket-Extensions: " : "", ext,
                   ext[0] ? "\r\n" : "");
  if (n < 0 || (size_t)n >= out_cap) {
    memset(res, 0, sizeof *res);
    return reject(out, out_cap, 500, "handshake response does not fit");
  }
  return 0;
}
