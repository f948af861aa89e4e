#include "http/parser.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/pct.h"

/*
 * llhttp runs directly on the caller's bytes and every span it reports (URL, header names and values, body)
 * is appended to our own buffer, so the views survive the next read and a request costs one copy of the
 * bytes that matter, never of the bytes after it (a pipelined burst is not copied once per request). The
 * buffer may move as it grows, so positions are kept as offsets and turned into pointers only when the
 * request is complete. A span arrives in pieces when a read ends inside it; the pieces are adjacent in the
 * buffer because nothing else is appended in between.
 *
 * Limits are enforced while parsing: llhttp is handed at most the bytes left in the head budget until the
 * head is complete, so an endless header line costs max_head bytes, not a whole read.
 */

#define DEFAULT_MAX_URL 8192
#define DEFAULT_MAX_HEAD 16384
#define DEFAULT_MAX_BODY (1u << 20)
#define HEAD_LIMIT_CAP (1u << 30) /* header offsets are 32-bit */
#define FIRST_ALLOC 1024          /* one allocation holds a typical head */

typedef struct hdr_span {
  uint32_t name, name_len, value, value_len;
} hdr_span;

struct http_parser {
  llhttp_t ll;
  http_limits lim;
  buf b;
  size_t url_off, url_len;
  size_t path_off, path_len, query_off, query_len;
  size_t body_off, body_len;
  size_t head_bytes; /* bytes handed to llhttp while the head was incomplete */
  hdr_span hdrs[HTTP_MAX_HEADERS];
  size_t nhdrs;
  int status;        /* sticky error status, 0 while fine */
  uint8_t in_field;  /* a header name is being received */
  uint8_t in_value;  /* a header value is being received */
  uint8_t url_too_long;
  uint8_t head_done, done, keep_alive, upgrade;
  uint8_t continue_due; /* Expect: 100-continue with a body to come: the caller owes a 100 (Continue) */
};

static int fail_cb(http_parser *p, int status) {
  p->status = status;
  return -1; /* llhttp turns this into an error; feed() reports p->status */
}

static int on_message_begin(llhttp_t *ll) {
  http_parser *p = ll->data;
  return buf_reserve(&p->b, FIRST_ALLOC) ? fail_cb(p, 500) : 0;
}

/* The URL limit is judged when the URL ends, not when a piece pushes it over: llhttp hands a span over in
 * pieces only when a read ends inside it, so failing on a piece would make a long URL with a bad byte a 414
 * or a 400 depending on how the bytes were split. Past the limit the pieces are counted, not kept. */
static int on_url(llhttp_t *ll, const char *at, size_t len) {
  http_parser *p = ll->data;
  if (p->url_len == 0) p->url_off = p->b.len;
  if (p->url_too_long || len > p->lim.max_url - p->url_len) {
    p->url_too_long = 1;
    return 0;
  }
  p->url_len += len;
  return buf_append(&p->b, at, len) ? fail_cb(p, 500) : 0;
}

static int on_url_complete(llhttp_t *ll) {
  http_parser *p = ll->data;
  return p->url_too_long ? fail_cb(p, 414) : 0;
}

/* As with the URL, one header too many is judged when its name ends (see on_url). Trailers of a chunked
 * body (head_done) are parsed and dropped: nothing reads them, and they must not pass for headers. */
static int on_header_field(llhttp_t *ll, const char *at, size_t len) {
  http_parser *p = ll->data;
  if (p->head_done || p->nhdrs == HTTP_MAX_HEADERS) return 0;
  if (!p->in_field) {
    p->in_field = 1;
    p->hdrs[p->nhdrs] = (hdr_span){.name = (uint32_t)p->b.len};
  }
  p->hdrs[p->nhdrs].name_len += (uint32_t)len;
  return buf_append(&p->b, at, len) ? fail_cb(p, 500) : 0;
}

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int on_header_field_complete(llhttp_t *ll) {
  http_parser *p = ll->data;
  if (p->head_done) return 0;
  if (p->nhdrs == HTTP_MAX_HEADERS) return fail_cb(p, 431);
  /* The llhttp build is the loose one, which lets "Host : x" through; RFC 9112 5.1 wants a 400 for any
   * space before the colon (two parsers reading two names is how smuggling starts). */
  const hdr_span *h = &p->hdrs[p->nhdrs];
  if (h->name_len == 0) return fail_cb(p, 400);
  for (uint32_t i = 0; i < h->name_len; i++)
    if (!is_tchar(p->b.data[h->name + i])) return fail_cb(p, 400);
  p->in_field = 0;
  p->in_value = 1;
  p->hdrs[p->nhdrs].value = (uint32_t)p->b.len; /* an empty value gets no on_header_value call */
  return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len) {
  http_parser *p = ll->data;
  if (p->head_done) return 0;
  p->hdrs[p->nhdrs].value_len += (uint32_t)len;
  return buf_append(&p->b, at, len) ? fail_cb(p, 500) : 0;
}

static int on_header_value_complete(llhttp_t *ll) {
  http_parser *p = ll->data;
  if (p->in_value) p->nhdrs++;
  p->in_value = 0;
  return 0;
}

/* Splits the request target into the decoded path and the raw query, appended to the buffer as two C
 * strings. Origin form ("/a?b"), absolute form ("http://host/a?b") and "*" for OPTIONS; anything else,
 * such as CONNECT's authority form, is a 400 for this server. */
static int split_target(http_parser *p) {
  size_t plen = p->url_len;
  if (buf_reserve(&p->b, plen + 2)) return 500;
  const char *u = (const char *)p->b.data + p->url_off;
  size_t start = 0;
  if (plen == 1 && u[0] == '*' && p->ll.method == HTTP_OPTIONS) {
    start = 0;
  } else if (plen > 0 && u[0] == '/') {
    start = 0;
  } else {
    const char *sep = memchr(u, ':', plen);
    if (!sep || (size_t)(sep - u) + 3 > plen || sep[1] != '/' || sep[2] != '/') return 400;
    start = (size_t)(sep - u) + 3;
    while (start < plen && u[start] != '/' && u[start] != '?' && u[start] != '#') start++;
  }
  size_t pend = start;
  while (pend < plen && u[pend] != '?' && u[pend] != '#') pend++;
  size_t qstart = pend, qend = pend;
  if (pend < plen && u[pend] == '?') {
    qstart = pend + 1;
    qend = qstart;
    while (qend < plen && u[qend] != '#') qend++;
  }
  char *dst = (char *)p->b.data + p->b.len;
  p->path_off = p->b.len;
  if (pend == start) { /* absolute form without a path */
    dst[0] = '/';
    p->path_len = 1;
  } else {
    /* A malformed escape is a 400, and so is %00: a NUL inside a path would cut it short downstream. */
    long dl = pct_decode(u + start, pend - start, dst, p->b.cap - p->b.len, PCT_NO_NUL);
    if (dl < 0) return 400;
    p->path_len = (size_t)dl;
  }
  dst[p->path_len] = '\0';
  p->query_off = p->path_off + p->path_len + 1;
  p->query_len = qend - qstart;
  memcpy(dst + p->path_len + 1, u + qstart, p->query_len);
  dst[p->path_len + 1 + p->query_len] = '\0';
  p->b.len = p->query_off + p->query_len + 1;
  return 0;
}

static int header_is(const http_parser *p, const hdr_span *h, const char *name) {
  size_t n = strlen(name);
  return h->name_len == n && strncasecmp((const char *)p->b.data + h->name, name, n) == 0;
}

static int on_headers_complete(llhttp_t *ll) {
  http_parser *p = ll->data;
  p->head_done = 1;
  if (ll->http_major != 1) return fail_cb(p, 505);
  /* Request smuggling shapes get a 400 whatever llhttp's leniency: a body length must be unambiguous. */
  if ((ll->flags & F_CONTENT_LENGTH) && (ll->flags & F_TRANSFER_ENCODING)) return fail_cb(p, 400);
  size_t ncl = 0, nte = 0;
  for (size_t i = 0; i < p->nhdrs; i++) {
    const hdr_span *h = &p->hdrs[i];
    if (header_is(p, h, "content-length")) ncl++;
    if (header_is(p, h, "transfer-encoding")) {
      nte++;
      /* Only "chunked" alone: we decode no other coding, and a list hides the framing. */
      const char *v = (const char *)p->b.data + h->value;
      size_t vl = h->value_len;
      while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
      if (vl != 7 || strncasecmp(v, "chunked", 7) != 0) return fail_cb(p, 501);
    }
  }
  /* An HTTP/1.0 peer cannot mean chunked framing (RFC 9112 6.1): treat it as faulty framing. */
  if (ncl > 1 || nte > 1 || (nte && ll->http_minor == 0)) return fail_cb(p, 400);
  if ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > p->lim.max_body) return fail_cb(p, 413);
  /* Expect (RFC 9110 10.1.1): 100-continue asks for a 100 before the body is sent, and clients that send it
   * (PHP's curl for bodies over 1 KiB, curl over 1 MiB) otherwise wait a second for nothing. It is ignored
   * from HTTP/1.0 peers and without a body; any other expectation gets a 417. */
  for (size_t i = 0; i < p->nhdrs; i++) {
    const hdr_span *h = &p->hdrs[i];
    if (!header_is(p, h, "expect")) continue;
    const char *v = (const char *)p->b.data + h->value;
    size_t vl = h->value_len;
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
    if (vl != 12 || strncasecmp(v, "100-continue", 12) != 0) return fail_cb(p, 417);
    if (ll->http_minor >= 1 && (((ll->flags & F_CONTENT_LENGTH) && ll->content_length > 0) ||
                                (ll->flags & F_CHUNKED)))
      p->continue_due = 1;
  }
  int st = split_target(p);
  if (st) return fail_cb(p, st);
  p->body_off = p->b.len;
  return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t len) {
  http_parser *p = ll->data;
  if (len > p->lim.max_body - p->body_len) return fail_cb(p, 413);
  p->body_len += len;
  return buf_append(&p->b, at, len) ? fail_cb(p, 500) : 0;
}

static int on_message_complete(llhttp_t *ll) {
  http_parser *p = ll->data;
  p->done = 1;
  p->keep_alive = (uint8_t)llhttp_should_keep_alive(ll);
  p->upgrade = ll->upgrade;
  return HPE_PAUSED; /* stop right after this request: the rest of the input is the next one's */
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

http_parser *http_parser_new(const http_limits *limits) {
  http_parser *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (limits) p->lim = *limits;
  if (!p->lim.max_url) p->lim.max_url = DEFAULT_MAX_URL;
  if (!p->lim.max_head) p->lim.max_head = DEFAULT_MAX_HEAD;
  if (!p->lim.max_body) p->lim.max_body = DEFAULT_MAX_BODY;
  if (p->lim.max_head > HEAD_LIMIT_CAP) p->lim.max_head = HEAD_LIMIT_CAP;
  llhttp_init(&p->ll, HTTP_REQUEST, &settings);
  p->ll.data = p;
  return p;
}

void http_parser_free(http_parser *p) {
  if (!p) return;
  buf_free(&p->b);
  free(p);
}

void http_parser_reset(http_parser *p) {
  buf b = p->b;
  buf_reset(&b, 0); /* an idle keep-alive connection holds no request memory */
  http_limits lim = p->lim;
  memset(p, 0, sizeof *p);
  p->b = b;
  p->lim = lim;
  llhttp_init(&p->ll, HTTP_REQUEST, &settings);
  p->ll.data = p;
}

size_t http_parser_memory(const http_parser *p) { return p->b.cap; }

int http_parser_take_continue(http_parser *p) {
  if (!p->continue_due || p->done || p->status) return 0;
  p->continue_due = 0;
  return 1;
}

static void build_request(const http_parser *p, http_request *req) {
  const char *base = (const char *)p->b.data;
  memset(req, 0, offsetof(http_request, headers));
  req->method = p->ll.method;
  req->method_str = llhttp_method_name((llhttp_method_t)p->ll.method);
  req->url = base + p->url_off;
  req->url_len = p->url_len;
  req->path = base + p->path_off;
  req->path_len = p->path_len;
  req->query = base + p->query_off;
  req->query_len = p->query_len;
  for (size_t i = 0; i < p->nhdrs; i++) {
    const hdr_span *h = &p->hdrs[i];
    size_t vl = h->value_len;
    while (vl > 0 && (base[h->value + vl - 1] == ' ' || base[h->value + vl - 1] == '\t')) vl--;
    req->headers[i] = (http_header){base + h->name, h->name_len, base + h->value, vl};
  }
  req->nheaders = p->nhdrs;
  req->body = p->body_len ? p->b.data + p->body_off : NULL;
  req->body_len = p->body_len;
  req->http_major = p->ll.http_major;
  req->http_minor = p->ll.http_minor;
  req->keep_alive = p->keep_alive;
  req->upgrade = p->upgrade;
}

static int status_of(const http_parser *p, llhttp_errno_t err) {
  if (p->status) return p->status;
  if (err == HPE_INVALID_TRANSFER_ENCODING) return 501;
  return 400;
}

int http_parser_feed(http_parser *p, const uint8_t *data, size_t len, size_t *consumed, http_request *req) {
  *consumed = 0;
  if (p->status) return p->status;
  if (p->done) { /* not reset since the last request: hand it out again */
    build_request(p, req);
    return HTTP_PARSE_REQUEST;
  }
  size_t off = 0;
  while (off < len) {
    size_t n = len - off;
    if (!p->head_done && n > p->lim.max_head - p->head_bytes) n = p->lim.max_head - p->head_bytes;
    const char *start = (const char *)data + off;
    llhttp_errno_t err = llhttp_execute(&p->ll, start, n);
    if (err == HPE_OK) {
      off += n;
      if (!p->head_done) {
        p->head_bytes += n;
        if (p->head_bytes >= p->lim.max_head) {
          *consumed = off;
          p->status = p->url_too_long ? 414 : 431; /* a URL longer than the head: the URL is the problem */
          return p->status;
        }
      }
      continue;
    }
    const char *pos = llhttp_get_error_pos(&p->ll);
    if (pos >= start && pos <= start + n) off += (size_t)(pos - start);
    *consumed = off;
    if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && p->done) {
      build_request(p, req);
      return HTTP_PARSE_REQUEST;
    }
    p->status = status_of(p, err);
    return p->status;
  }
  *consumed = len;
  return HTTP_PARSE_NEED_MORE;
}

const http_header *http_request_header(const http_request *req, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header *h = &req->headers[i];
    if (h->name_len == n && strncasecmp(h->name, name, n) == 0) return h;
  }
  return NULL;
}

int http_header_has_token(const char *value, size_t len, const char *token) {
  size_t tl = strlen(token);
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    while (j < len && value[j] != ',') j++;
    size_t a = i, z = j;
    while (a < z && (value[a] == ' ' || value[a] == '\t')) a++;
    while (z > a && (value[z - 1] == ' ' || value[z - 1] == '\t')) z--;
    if (z - a == tl && strncasecmp(value + a, token, tl) == 0) return 1;
    i = j + 1;
  }
  return 0;
}
