/*
 * srv_http — the program's outgoing HTTP client: libcurl's multi interface driven by the server's libuv loop
 * (one uv_poll_t per curl socket, one uv_timer_t for curl's timeouts), so a request never blocks the loop.
 * One multi handle serves every caller (the event proxy and the webhooks): its connection cache keeps
 * connections to the backend alive between requests (HTTP/1.1 keep-alive), and finished easy handles are
 * reused.
 *
 * The client's handles never keep the loop alive by themselves: neither an idle keep-alive connection to the
 * backend nor a request in flight stops wsio_server_run() from returning. What must still go out at shutdown
 * is finished by srv_http_drain() after it returned.
 *
 * Threading: everything runs on the loop's thread.
 */
#ifndef WSIO_SERVER_HTTP_CLIENT_H
#define WSIO_SERVER_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_http srv_http;
typedef struct srv_http_req srv_http_req;

/* How a request ended. */
typedef struct srv_http_result {
  int err;          /* 0: an HTTP response came (any status); WSIO_ETIMEDOUT; WSIO_ETOOBIG (reply over its cap);
                       WSIO_EIO (refused, reset, bad URL, DNS, TLS: anything else) */
  int status;       /* the HTTP status when err is 0, else 0 */
  const char *body; /* the reply (NUL-terminated; borrowed for the callback); "" when none or discarded */
  size_t len;
  double seconds;   /* from srv_http_post() to the end */
} srv_http_result;

/* Called once per request that was not cancelled, on the loop. It may post new requests. */
typedef void (*srv_http_cb)(const srv_http_result *r, void *ud);

/* Creates the client on loop (a uv_loop_t *, e.g. wsio_server_loop()). Returns NULL on ENOMEM or when
 * libcurl cannot start. */
srv_http *srv_http_new(void *loop);

/* POSTs body (copied) to url with Content-Type content_type. The whole exchange (connect included) must end
 * within timeout_ms (0: 30 s). The reply body is kept up to max_reply bytes (past it the request fails with
 * WSIO_ETOOBIG); max_reply 0 discards it. Only http and https URLs; redirects are not followed.
 * Returns the request (valid until its callback returns or srv_http_cancel()), or NULL (ENOMEM): then cb is
 * never called. */
srv_http_req *srv_http_post(srv_http *h, const char *url, const char *content_type, const void *body, size_t len,
                            uint32_t timeout_ms, size_t max_reply, srv_http_cb cb, void *ud);

/* Abandons a request in flight: its callback is never called. Not from inside that request's callback. */
void srv_http_cancel(srv_http *h, srv_http_req *r);

/* Requests in flight. */
size_t srv_http_in_flight(const srv_http *h);

/* Runs the loop until no request is in flight (each is bounded by its timeout; a callback may post more).
 * Only outside the loop, e.g. after wsio_server_run() returned, to let the last webhooks go out. */
void srv_http_drain(srv_http *h);

/* Cancels what is still in flight (no callbacks), closes the connections and the handles. The memory is
 * released by the handles' close callbacks: the loop must run once more (wsio_server_free() does). Not from
 * inside a callback of h. NULL is fine. */
void srv_http_free(srv_http *h);

#endif
