/*
 * http_conn — HTTP/1.1 on a network connection: parses requests (keep-alive, pipelining), enforces the
 * request timeout (a request once begun must finish in time, however slowly it trickles: no slowloris) and
 * the idle timeout between requests, and hands each complete request to a router.
 *
 * The router answers a request in one of three ways:
 *   - respond now:   http_conn_respond() before returning;
 *   - respond later: http_conn_hold() (a long-poll); the held connection reads nothing more and has no
 *                    timeout until http_conn_respond(); if the peer goes away first, the abort callback runs;
 *   - take it over:  http_conn_detach() (a protocol upgrade), which returns the net_conn with the HTTP state
 *                    freed.
 */
#ifndef WSIO_HTTP_CONN_H
#define WSIO_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"
#include "net/net.h"

typedef struct http_conn http_conn;

typedef struct http_server_cfg {
  http_limits limits;
  uint16_t request_timeout_s; /* a request must be complete this long after its first byte */
  uint16_t idle_timeout_s;    /* keep-alive wait for the next request */
  /* Called for every complete request; rest is what followed it in the buffer (for upgrades). */
  void (*on_request)(http_conn *hc, const http_request *req, uint8_t *rest, size_t rest_len, void *arg);
  void *arg;
  int stopping;               /* set: responses say Connection: close */
} http_server_cfg;

/* The protocol of fresh connections; c->loop must have accept_proto = &http_conn_proto and the loop's
 * owner must make c->ud point nowhere (NULL) at accept: http_conn allocates its state on the first byte. */
extern const net_proto http_conn_proto;
/* Sets the configuration every connection of the loop uses (borrowed; must outlive the loop). */
void http_conn_configure(net_loop *l, const http_server_cfg *cfg);

/* The connection under hc. */
net_conn *http_conn_net(const http_conn *hc);

/* Writes a whole response (copied). keep_alive 0 ends the connection after it is sent. Works for a held
 * request too. */
void http_conn_respond(http_conn *hc, const void *data, size_t len, int keep_alive);

typedef void (*http_abort_cb)(http_conn *hc, void *owner);
/* Holds the current request open for a later response. on_abort runs if the connection closes first. */
void http_conn_hold(http_conn *hc, http_abort_cb on_abort, void *owner);
/* 1 between keep-alive requests (nothing of a next request received yet). */
int http_conn_idle(const http_conn *hc);
/* 1 while a request is held. */
int http_conn_held(const http_conn *hc);

/* Frees the HTTP state and returns the bare connection for another protocol to drive (set its proto). */
net_conn *http_conn_detach(http_conn *hc);

/* Workers: hands the connection of the request being routed to worker `owner` (net_loop.handoff): the
 * request is written out again (a chunked body with a Content-Length), rest appended, and the owner's loop
 * reads it as if it had arrived there. When answers to earlier requests on the connection are still being
 * written, the move waits until they have left (reading stops meanwhile). Returns 0 (hc is detached, or
 * will be, and must not be used again) or a negative code (nothing changed: answer the request here). */
int http_conn_handoff(http_conn *hc, const http_request *req, const uint8_t *rest, size_t rest_len,
                      unsigned owner);

/* Writes req back as HTTP/1.1 bytes into out (Transfer-Encoding and Content-Length replaced by the body's
 * length). Returns 0 or WSIO_ENOMEM. */
int http_request_write(const http_request *req, buf *out);

/* 1 if the request that is being routed asked to keep the connection alive and the server is not stopping. */
int http_conn_keep_alive(const http_conn *hc, const http_request *req);

#endif
