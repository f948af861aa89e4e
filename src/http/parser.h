/*
 * http_parser — HTTP/1.1 request parsing on llhttp, sans-I/O.
 *
 * One http_parser per connection while it speaks HTTP. The request head and body are copied into the
 * parser's own buffer (allocated on the first byte of a request, capped by the limits, released by
 * http_parser_reset), so a request split over any number of reads parses the same. Header names and values
 * are (pointer, length) views into that buffer, valid until the next feed or reset.
 */
#ifndef WSIO_HTTP_PARSER_H
#define WSIO_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

typedef struct http_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} http_header;

typedef struct http_request {
  int method;               /* llhttp_method_t: HTTP_GET = 1, HTTP_POST = 3, HTTP_HEAD = 2, ... */
  const char *method_str;   /* static name, e.g. "GET" */
  const char *url;          /* the request target as sent */
  size_t url_len;
  const char *path;         /* percent-decoded path part, NUL-terminated */
  size_t path_len;
  const char *query;        /* raw query string after '?', not decoded, NUL-terminated ("" if none) */
  size_t query_len;
  http_header headers[HTTP_MAX_HEADERS];
  size_t nheaders;
  const uint8_t *body;
  size_t body_len;
  uint8_t http_major, http_minor;
  uint8_t keep_alive;       /* the connection may serve another request after this one */
  uint8_t upgrade;          /* Connection: upgrade with an Upgrade header */
} http_request;

typedef struct http_limits {
  size_t max_url;           /* 414 past it (default 8192) */
  size_t max_head;          /* whole request head; 431 past it (default 16384) */
  size_t max_body;          /* 413 past it (default 1 MiB) */
} http_limits;

typedef struct http_parser http_parser;

/* limits is copied; NULL, or a field of 0, takes the default. Returns NULL on ENOMEM. */
http_parser *http_parser_new(const http_limits *limits);
void http_parser_free(http_parser *p);

/* Results of http_parser_feed(). */
#define HTTP_PARSE_NEED_MORE 0  /* all input consumed, no complete request yet */
#define HTTP_PARSE_REQUEST 1    /* *req is a complete request; *consumed bytes of data were used */

/* Feeds bytes. Returns HTTP_PARSE_NEED_MORE (all consumed), HTTP_PARSE_REQUEST (a complete request; the
 * bytes after *consumed belong to the next request or, after an upgrade, to the new protocol), or an HTTP
 * status code >= 400 to answer before closing: 400 malformed (including smuggling shapes: both
 * Content-Length and Transfer-Encoding, two Content-Length lines even if equal, a space before a header's
 * colon), 413 body, 414 URL, 417 an Expect other than 100-continue, 431 head,
 * 501 unsupported Transfer-Encoding, 505 an HTTP major version other than 1, 500 out of memory). An error
 * is sticky: later feeds return it again. Requests with an Upgrade (req->upgrade) stop after their head
 * (and body, if any): the bytes after *consumed are the new protocol's. Targets other than origin form,
 * absolute form or "*" (OPTIONS) are a 400. After HTTP_PARSE_REQUEST call http_parser_reset() before
 * the next feed; feeding without it hands out the same request again with *consumed = 0. */
int http_parser_feed(http_parser *p, const uint8_t *data, size_t len, size_t *consumed, http_request *req);

/* 1 once, after a feed that left a request with "Expect: 100-continue" waiting for its body: the caller
 * sends "HTTP/1.1 100 Continue" now (the responses of earlier requests are out before it, as a request is
 * only parsed once the one before it was answered). 0 when the body came with the head, or after a final
 * status. */
int http_parser_take_continue(http_parser *p);

/* Makes the parser ready for the next request on the same connection and frees its buffer. */
void http_parser_reset(http_parser *p);

/* Bytes of buffer memory the parser holds (0 after http_parser_reset): idle connections cost nothing. */
size_t http_parser_memory(const http_parser *p);

/* Finds a header (case-insensitive name). Returns the first match or NULL. */
const http_header *http_request_header(const http_request *req, const char *name);

/* 1 if the comma-separated header list value contains token (case-insensitive, spaces trimmed). */
int http_header_has_token(const char *value, size_t len, const char *token);

#endif
