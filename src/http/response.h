/* http_response — writing responses: status line, headers, bodies; error pages. */
#ifndef WSIO_HTTP_RESPONSE_H
#define WSIO_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The reason phrase for a status ("Not Found"), "Unknown" if none. */
const char *http_status_text(int status);

/* Appends "HTTP/1.1 <status> <text>\r\n" and the standard headers (Date, Server: wsio). Returns 0 or ENOMEM. */
int http_response_start(buf *out, int status);
/* Appends "name: value\r\n". Returns 0, WSIO_ENOMEM, or WSIO_EINVAL (and appends nothing) when value
 * holds CR or LF or name holds CR, LF or ':' (no header injection through values taken from requests). */
int http_response_header(buf *out, const char *name, const char *value);
/* Appends Content-Length: len, Connection (keep-alive or close), the blank line, then len bytes of body.
 * With body NULL only the headers are written, still announcing len: the HEAD and 304 forms. */
int http_response_end(buf *out, const void *body, size_t len, int keep_alive);

/* Formats t (seconds since the epoch) as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out.
 * Returns 0, or WSIO_EINVAL for a time outside years 0..9999. */
int http_date_format(long long t, char out[30]);

/* The refusal of a client over a rate (429 Too Many Requests): _start appends the status line, the standard
 * headers, a text/plain Content-Type and "Retry-After: <retry_after_s>"; the caller may add headers, then
 * _end appends the body that asks to retry later, with Connection: close. Both return 0 or WSIO_ENOMEM. */
int http_response_too_many_start(buf *out, uint32_t retry_after_s);
int http_response_too_many_end(buf *out);

/* A whole small response with a text/plain body of "<status> <text>\n". */
int http_response_simple(buf *out, int status, int keep_alive);

#endif
