/* http_response — writing responses: status line, headers, bodies; error pages. */
#ifndef WSIO_HTTP_RESPONSE_H
#define WSIO_HTTP_RESPONSE_H

#include <stddef.h>

#include "util/buf.h"

/* The reason phrase for a status ("Not Found"), "Unknown" if none. */
const char *http_status_text(int status);

/* Appends "HTTP/1.1 <status> <text>\r\n" and the standard headers (Date, Server: wsio). Returns 0 or ENOMEM. */
int http_response_start(buf *out, int status);
/* Appends "name: value\r\n". */
int http_response_header(buf *out, const char *name, const char *value);
/* Appends Content-Length, Connection (keep-alive or close), the blank line, then body (may be NULL). */
int http_response_end(buf *out, const void *body, size_t len, int keep_alive);

/* A whole small response with a text/plain body of "<status> <text>\n". */
int http_response_simple(buf *out, int status, int keep_alive);

#endif
