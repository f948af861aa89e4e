/* http_static — serving files from a web root: safe path mapping, MIME types, validators. */
#ifndef WSIO_HTTP_STATIC_H
#define WSIO_HTTP_STATIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/parser.h"
#include "util/buf.h"

/* MIME type by file name extension; "application/octet-stream" if unknown. Static string. */
const char *http_mime_type(const char *path);

/* Serves req (GET or HEAD) from root into out: 200 with the file, 304 when If-None-Match or
 * If-Modified-Since match, 404 for anything missing, outside root (no traversal: "..", encoded or not,
 * symlinks leaving root), a directory without index.html (no listing), 405 for other methods (with Allow).
 * "/" and directories serve index.html. The file is read whole into out; one larger than max_file is
 * answered 500 with a log line (web roots hold pages and bundles, not downloads). Returns the status
 * written, or WSIO_ENOMEM. */
int http_static_serve(const char *root, const http_request *req, buf *out, int keep_alive, size_t max_file);

#endif
