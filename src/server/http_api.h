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

/* The same in steps, for a program of several workers whose answer gathers every worker's part:
 * srv_http_api_begin checks the key, the call and the method: it returns 0 (not the API), a status it
 * answered into out, or SRV_API_RUN with *call set. srv_http_api_run then runs the call on one worker's io
 * (local: its sockets only; query and body are the request's, borrowed) and returns a status and *res
 * (owned by the caller); srv_http_api_merge folds one worker's answer (st, res: taken) into *acc;
 * srv_http_api_reply writes the merged answer (res taken). */
#include <jansson.h>
#define SRV_API_RUN (-2)
int srv_http_api_begin(const char *key, const http_request *req, buf *out, int keep_alive, int *call);
int srv_http_api_run(wsio_io *io, int call, const char *query, size_t query_len, const uint8_t *body,
                     size_t body_len, int local, json_t **res);
void srv_http_api_merge(int call, int *status, json_t **acc, int st, json_t *res);
int srv_http_api_reply(buf *out, int status, json_t *res, int keep_alive);

#endif
