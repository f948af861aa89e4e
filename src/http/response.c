#include "http/response.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wsio.h"

const char *http_status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

int http_date_format(long long t, char out[30]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm)) return WSIO_EINVAL;
  /* strftime's %a and %b follow the locale; IMF-fixdate needs the English names. */
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) return WSIO_EINVAL;
  char tmp[64]; /* the fields are in range, but the compiler cannot know: format wide, copy 29 + NUL */
  snprintf(tmp, sizeof tmp, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
           months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  memcpy(out, tmp, 29);
  out[29] = '\0';
  return 0;
}

/* Formatting a date per response is measurable under load; once a second per thread is not. */
static const char *date_now(void) {
  static _Thread_local time_t cached = (time_t)-1;
  static _Thread_local char text[30];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached) {
    if (http_date_format(ts.tv_sec, text)) text[0] = '\0';
    cached = ts.tv_sec;
  }
  return text;
}

static int append_str(buf *out, const char *s) { return buf_append(out, s, strlen(s)); }

int http_response_start(buf *out, int status) {
  char line[160];
  int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: wsio\r\n", status,
                   http_status_text(status), date_now());
  return buf_append(out, line, (size_t)n);
}

int http_response_header(buf *out, const char *name, const char *value) {
  /* A CR or LF from a caller-supplied value would let it write headers or a body of its own. */
  if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) return WSIO_EINVAL;
  size_t nl = strlen(name), vl = strlen(value);
  if (buf_reserve(out, nl + vl + 4)) return WSIO_ENOMEM;
  memcpy(out->data + out->len, name, nl);
  memcpy(out->data + out->len + nl, ": ", 2);
  memcpy(out->data + out->len + nl + 2, value, vl);
  memcpy(out->data + out->len + nl + 2 + vl, "\r\n", 2);
  out->len += nl + vl + 4;
  return 0;
}

int http_response_end(buf *out, const void *body, size_t len, int keep_alive) {
  char tail[96];
  int n = snprintf(tail, sizeof tail, "Content-Length: %zu\r\nConnection: %s\r\n\r\n", len,
                   keep_alive ? "keep-alive" : "close");
  if (buf_append(out, tail, (size_t)n)) return WSIO_ENOMEM;
  return body ? buf_append(out, body, len) : 0;
}

int http_response_simple(buf *out, int status, int keep_alive) {
  char body[80];
  int n = snprintf(body, sizeof body, "%d %s\n", status, http_status_text(status));
  if (http_response_start(out, status) ||
      append_str(out, "Content-Type: text/plain; charset=utf-8\r\n") ||
      http_response_end(out, body, (size_t)n, keep_alive))
    return WSIO_ENOMEM;
  return 0;
}

int http_response_too_many_start(buf *out, uint32_t retry_after_s) {
  char secs[16];
  snprintf(secs, sizeof secs, "%u", (unsigned)retry_after_s);
  if (http_response_start(out, 429) || append_str(out, "Content-Type: text/plain; charset=utf-8\r\n") ||
      http_response_header(out, "Retry-After", secs))
    return WSIO_ENOMEM;
  return 0;
}

int http_response_too_many_end(buf *out) {
  static const char body[] = "too many new connections from your address; try again later\n";
  return http_response_end(out, body, sizeof body - 1, 0);
}
