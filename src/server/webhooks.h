/*
 * Webhooks of the wsio program: socket connect and disconnect events (those [webhooks] events selects) are
 * POSTed to [webhooks] url in batches, so a backend learns who is online without holding a connection:
 *
 *   {"events":[{"type":"connect","socket":"id","namespace":"/","address":"ip:port","time":1700000000000},
 *              {"type":"disconnect","socket":"id","namespace":"/","address":"ip:port","time":...,
 *               "reason":"transport close"}]}
 *
 * time is milliseconds since the epoch. A batch goes out when batch_size events are queued or batch_interval
 * after the first of them, one request at a time, in order. A failed request (refused, timeout, non-2xx) is
 * retried up to `retries` times, after batch_interval, then twice that, and so on (at most a minute); then
 * the batch is given up. Counted in app->metrics: webhook_deliveries and webhook_failures, per batch.
 *
 * Events wait in a bounded queue: when it is full the oldest event is dropped (srv_webhooks_dropped()).
 * Settings are read from app->cfg when used, so a reload applies at once; when url becomes empty, what is
 * queued is dropped. Everything runs on the server's loop.
 */
#ifndef WSIO_SERVER_WEBHOOKS_H
#define WSIO_SERVER_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "server/app.h"

/* Events queued at most, by default. */
#define SRV_WEBHOOKS_QUEUE_MAX 10000
/* Each request must end within this. */
#define SRV_WEBHOOKS_TIMEOUT_MS 10000

typedef struct srv_webhooks srv_webhooks;

/* Creates the webhooks on app->server's loop and app->http (both must be set and outlive them). Returns NULL
 * on ENOMEM or when either is NULL. */
srv_webhooks *srv_webhooks_new(srv_app *app);

/* Records that s connected (call it from the namespace's connection callback). */
void srv_webhooks_connect(srv_webhooks *w, wsio_socket *s);
/* Records that s disconnected, with socket.io's reason (call it from the socket's disconnect callback). */
void srv_webhooks_disconnect(srv_webhooks *w, wsio_socket *s, const char *reason);

/* Changes how many events may wait (at least 1); the oldest past it are dropped at once. */
void srv_webhooks_set_queue_max(srv_webhooks *w, size_t max);

/* For shutdown, after wsio_server_run() returned: sends everything queued now, batch after batch without
 * waiting; a failed request is not retried, and drops what is left. Then srv_http_drain(app->http) runs the
 * loop until the requests are done. */
void srv_webhooks_finish(srv_webhooks *w);

/* Events queued (not yet in a request). */
size_t srv_webhooks_queued(const srv_webhooks *w);
/* Events dropped from a full queue (or when the webhooks were turned off with events queued). */
uint64_t srv_webhooks_dropped(const srv_webhooks *w);

/* Cancels the request in flight, drops what is queued and frees w. NULL is fine. */
void srv_webhooks_free(srv_webhooks *w);

#endif
