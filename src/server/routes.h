/*
 * Routes of the wsio program: [route "EVENT"] sections turn a client event into an emit to self, others,
 * all, a room, a room named by an argument, or the sender's rooms, with an optional ack; the built-in
 * join/leave events manage rooms within the allowed patterns. The first matching route, in file order, wins.
 */
#ifndef WSIO_SERVER_ROUTES_H
#define WSIO_SERVER_ROUTES_H

#include "server/app.h"

/* Creates the configured namespaces and routes every event of every namespace through app->cfg (read at
 * each event, so a reload applies at once). on_connection and the middleware mw (may be NULL; its ud is app)
 * are installed on each namespace too. */
int srv_routes_attach(srv_app *app, wsio_connection_cb on_connection, void *conn_ud, wsio_middleware mw);

#endif
