#include "http/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>

#include "http/response.h"
#include "util/log.h"
#include "wsio.h"

static const struct {
  const char *ext;
  const char *type;
} mime_table[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
    {"svg", "image/svg+xml; charset=utf-8"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml; charset=utf-8"},
    {"pdf", "application/pdf"},
};

const char *http_mime_type(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash : path, '.');
  if (dot) {
    for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
      if (strcasecmp(dot + 1, mime_table[i].ext) == 0) return mime_table[i].type;
  }
  return "application/octet-stream";
}

/* A ".." segment never names anything inside the root; refusing it up front keeps the realpath() prefix
 * check a second line of defence rather than the only one. The path is already percent-decoded, so
 * "%2e%2e" arrives here as "..". */
static int has_dotdot(const char *path) {
  for (const char *s = path; (s = strstr(s, "..")) != NULL; s += 2) {
    int starts = s == path || s[-1] == '/';
    int ends = s[2] == '\0' || s[2] == '/';
    if (starts && ends) return 1;
  }
  return 0;
}

/* realpath(candidate) if it lies inside root (already resolved), else NULL. Symlinks are followed, so one
 * pointing out of the root is refused here. */
static char *resolve_inside(const char *root, const char *candidate) {
  char *r = realpath(candidate, NULL);
  if (!r) return NULL;
  size_t rl = strlen(root);
  int inside = strcmp(root, "/") == 0 || (strncmp(r, root, rl) == 0 && (r[rl] == '\0' || r[rl] == '/'));
  if (!inside) {
    free(r);
    return NULL;
  }
  return r;
}

/* Parses an IMF-fixdate; -1 if it is not one (obsolete date forms are ignored, as RFC 9110 allows). */
static long long parse_http_date(const char *s, size_t n) {
  char tmp[64];
  if (n >= sizeof tmp) return -1;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char wd[4], mon[4];
  int day, year, hh, mm, ss, used = 0;
  if (sscanf(tmp, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wd, &day, mon, &year, &hh, &mm, &ss,
             &used) != 7 || used != (int)n)
    return -1;
  const char *m = strstr(months, mon);
  if (!m || (m - months) % 3 != 0 || strlen(mon) != 3) return -1;
  if (day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 || year < 1970)
    return -1;
  struct tm tm = {.tm_year = year - 1900, .tm_mon = (int)(m - months) / 3, .tm_mday = day,
                  .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
  return (long long)timegm(&tm);
}

/* Weak comparison of each entity tag of an If-None-Match list against ours (RFC 9110 13.1.2), which is
 * strong: a "W/" prefix on theirs is dropped. */
static int etag_matches(const char *list, size_t n, const char *ours) {
  size_t ol = strlen(ours);
  size_t i = 0;
  while (i < n) {
    while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) i++;
    if (i == n) break;
    if (list[i] == '*' && (i + 1 == n || list[i + 1] == ',' || list[i + 1] == ' ' || list[i + 1] == '\t'))
      return 1;
    if (n - i >= 2 && list[i] == 'W' && list[i + 1] == '/') i += 2;
    size_t start = i;
    if (i < n && list[i] == '"') {
      i++;
      while (i < n && list[i] != '"') i++;
      if (i < n) i++;
    } else {
      while (i < n && list[i] != ',') i++;
    }
    if (i - start == ol && memcmp(list + start, ours, ol) == 0) return 1;
  }
  return 0;
}

static int simple(buf *out, int status, int keep_alive) {
  return http_response_simple(out, status, keep_alive) ? WSIO_ENOMEM : status;
}

static int method_not_allowed(buf *out, int keep_alive) {
  static const char body[] = "405 Method Not Allowed\n";
  int rc = http_response_start(out, 405) || http_response_header(out, "Allow", "GET, HEAD") ||
           http_response_header(out, "Content-Type", "text/plain; charset=utf-8") ||
           http_response_end(out, body, sizeof body - 1, keep_alive);
  return rc ? WSIO_ENOMEM : 405;
}

static int read_whole(int fd, uint8_t *dst, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, dst + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1; /* shrank under us or failed */
    got += (size_t)r;
  }
  return 0;
}

/* Opens the file the request names: its descriptor, stat, and resolved path (for the type; the caller
 * frees it). 404 unless it is a regular file inside root. */
static int open_target(const char *root_real, const char *path, int *fd_out, struct stat *st, char **real_out) {
  if (path[0] != '/' || has_dotdot(path)) return 404;
  size_t rl = strlen(root_real), pl = strlen(path);
  char *cand = malloc(rl + pl + sizeof "/index.html");
  if (!cand) return WSIO_ENOMEM;
  memcpy(cand, root_real, rl);
  memcpy(cand + rl, path, pl + 1);
  if (path[pl - 1] == '/') memcpy(cand + rl + pl, "index.html", sizeof "index.html");
  char *real = resolve_inside(root_real, cand);
  free(cand);
  if (!real) return 404;
  struct stat ds;
  if (stat(real, &ds) == 0 && S_ISDIR(ds.st_mode)) { /* a directory serves its index, never a listing */
    size_t l = strlen(real);
    char *idx = malloc(l + sizeof "/index.html");
    if (!idx) {
      free(real);
      return WSIO_ENOMEM;
    }
    memcpy(idx, real, l);
    memcpy(idx + l, "/index.html", sizeof "/index.html");
    free(real);
    real = resolve_inside(root_real, idx);
    free(idx);
    if (!real) return 404;
  }
  int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW); /* resolved: a link now is a swap */
  if (fd < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    if (fd >= 0) close(fd);
    free(real);
    return 404;
  }
  *fd_out = fd;
  *real_out = real;
  return 0;
}

/* Writes the response for an opened file. Returns the status or WSIO_ENOMEM / WSIO_EIO. */
static int respond_file(const http_request *req, int fd, const struct stat *st, const char *real, buf *out,
                        int keep_alive) {
  size_t size = (size_t)st->st_size;
  char etag[64], lastmod[30];
  unsigned long long mtime_ns =
      (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st->st_mtim.tv_nsec;
  snprintf(etag, sizeof etag, "\"%llx-%zx\"", mtime_ns, size);
  int have_lm = http_date_format((long long)st->st_mtim.tv_sec, lastmod) == 0;

  /* If-None-Match decides alone when present (RFC 9110 13.2.2); If-Modified-Since only without it. */
  int status = 200;
  const http_header *inm = http_request_header(req, "If-None-Match");
  const http_header *ims = http_request_header(req, "If-Modified-Since");
  if (inm) {
    if (etag_matches(inm->value, inm->value_len, etag)) status = 304;
  } else if (ims) {
    long long t = parse_http_date(ims->value, ims->value_len);
    if (t >= 0 && (long long)st->st_mtim.tv_sec <= t) status = 304;
  }

  const char *type = http_mime_type(real);
  /* Pages revalidate on every load so a deploy shows at once; assets may be reused for an hour. */
  const char *cache = strncmp(type, "text/html", 9) == 0 ? "no-cache" : "public, max-age=3600";
  if (http_response_start(out, status) || http_response_header(out, "ETag", etag) ||
      (have_lm && http_response_header(out, "Last-Modified", lastmod)) ||
      http_response_header(out, "Cache-Control", cache))
    return WSIO_ENOMEM;
  if (status == 200 && (http_response_header(out, "Content-Type", type) ||
                        http_response_header(out, "X-Content-Type-Options", "nosniff")))
    return WSIO_ENOMEM;
  /* HEAD and 304 announce the length a 200 GET would carry (RFC 9110 8.6), without a body. */
  if (http_response_end(out, NULL, size, keep_alive)) return WSIO_ENOMEM;
  if (status == 304 || req->method == HTTP_HEAD) return status;
  if (buf_reserve(out, size)) return WSIO_ENOMEM;
  if (read_whole(fd, out->data + out->len, size) != 0) return WSIO_EIO;
  out->len += size;
  return 200;
}

int http_static_serve(const char *root, const http_request *req, buf *out, int keep_alive, size_t max_file) {
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) return method_not_allowed(out, keep_alive);
  char *root_real = root ? realpath(root, NULL) : NULL;
  if (!root_real) return simple(out, 404, keep_alive);
  int fd = -1;
  struct stat st;
  char *real = NULL;
  int rc = open_target(root_real, req->path, &fd, &st, &real);
  free(root_real);
  if (rc == WSIO_ENOMEM) return WSIO_ENOMEM;
  if (rc) return simple(out, rc, keep_alive);
  if ((uintmax_t)st.st_size > max_file) {
    log_error("static: %s is %jd bytes, over the %zu byte limit for served files", real, (intmax_t)st.st_size,
              max_file);
    rc = 500;
  } else {
    size_t mark = out->len; /* a failure drops the partial response */
    rc = respond_file(req, fd, &st, real, out, keep_alive);
    if (rc < 0) out->len = mark;
    if (rc == WSIO_EIO) log_error("static: reading %s failed", real);
  }
  close(fd);
  free(real);
  if (rc == 500 || rc == WSIO_EIO) return simple(out, 500, keep_alive);
  return rc;
}
