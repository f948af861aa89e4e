/*
 * The event proxy of the wsio program: client events whose names match [proxy] events are POSTed to the
 * backend at [proxy] url, which answers the client's ack and tells the server what to emit. A backend in any
 * language then drives the realtime side with plain HTTP.
 *
 * Request (Content-Type: application/json):
 *   {"event":"name","namespace":"/","socket":{"id":"...","rooms":["id",...],"address":"ip:port",
 *    "claims":{...}|null},"args":[...]}
 * A binary argument is {"_binary":"<base64>"}. (A binary nested inside an object or array is passed as
 * Socket.IO's placeholder {"_placeholder":true,"num":N}, without its bytes.)
 *
 * Reply: a 2xx with an empty body (nothing to do) or a JSON object:
 *   {"ack":[...], "emit":[{"event":"e","data":[...],"to":"self"|"others"|"all"|"room:NAME"}, ...]}
 * Emits run in order, then the ack is answered. "to" defaults to "self"; "others" and "room:NAME" leave the
 * sender out, as the configuration's routes do. "data" that is not an array is one argument. At the top
 * level of "ack" and "data", {"_binary":"<base64>"} becomes a binary argument. Values are passed to the
 * clients as the backend wrote them (no re-encoding). When the client asked for an ack and the reply has
 * none, the ack is answered with no arguments.
 *
 * Failures (refused, non-2xx, a body that is not a JSON object, over max_in_flight) answer the client's ack
 * with {"error":"backend unavailable"} (or "busy"), a timeout with {"error":"backend timeout"}.
 * Counted in app->metrics: proxy_requests (every event taken), proxy_failures (every failure, timeouts and
 * busy included), proxy_timeouts, proxy_latency (every exchange that ended, in seconds).
 *
 * The socket may leave before the reply: the ack is kept (wsio_ack_keep) and emits to "self" and "others"
 * find it again by its id, so nothing holds a pointer to it. Settings are read from app->cfg at each event,
 * so a reload applies at once. Everything runs on the server's loop.
 */
#ifndef WSIO_SERVER_PROXY_H
#define WSIO_SERVER_PROXY_H

#include <stddef.h>

#include "server/app.h"

typedef struct srv_proxy srv_proxy;

/* Creates the proxy on app->http (which must be set and outlive it). app must outlive it too.
 * Returns NULL on ENOMEM or when app->http is NULL. */
srv_proxy *srv_proxy_new(srv_app *app);

/* Offers an event to the proxy. Returns 1 when it took the event (proxy on and the name matches: ack, if not
 * NULL, is then the proxy's to answer), 0 when not (nothing was done: the caller may handle it). */
int srv_proxy_event(srv_proxy *p, wsio_socket *s, const wsio_args *args, wsio_ack *ack);

/* srv_proxy_event() as a wsio_event_cb (ud: the srv_proxy), for app->unrouted or wsio_nsp_on_any(). */
void srv_proxy_on_event(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud);

/* Requests to the backend outstanding. */
size_t srv_proxy_in_flight(const srv_proxy *p);

/* Cancels the requests in flight (their acks are dropped unanswered) and frees p. NULL is fine. */
void srv_proxy_free(srv_proxy *p);

#endif
