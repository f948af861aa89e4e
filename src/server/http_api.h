/*
 * The HTTP publish API of the wsio program, under /api/, guarded by a bearer key:
 *   POST /api/emit        {"namespace":"/","rooms":[],"except":[],"event":"e","data":[...]}
 *   POST /api/disconnect  {"namespace":"/","rooms":[...]|"all":true,"except":[],"close":false}
 *   GET  /api/sockets?namespace=/&room=R
 *   GET  /api/rooms?namespace=/
 * Answers are JSON; errors are {"error":"..."} with 400, 401, 404, 405.
 */
#ifndef WSIO_SERVER_HTTP_API_H
#define WSIO_SERVER_HTTP_API_H

#include "http/parser.h"
#include "util/buf.h"
#include "wsio.h"

/* Handles req if it is an API call and key is set: writes the response to out and returns its status.
 * Returns 0 when the request is not the API's (no key configured: the API does not exist). */
int srv_http_api(wsio_io *io, const char *key, const http_request *req, buf *out, int keep_alive);

#endif
