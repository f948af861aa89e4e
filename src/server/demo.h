/* The demo the program serves when no web root is configured: a chat page at / that talks to the default
 * routes (serverMsg -> clientMsg, join/leave, toRoom -> roomMsg), plus who-is-online. */
#ifndef WSIO_SERVER_DEMO_H
#define WSIO_SERVER_DEMO_H

#include "server/app.h"

extern const char srv_demo_html[];

/* Presence for the demo: a "nick" event names the socket; everyone gets "online" [names] on changes. */
void srv_demo_connection(srv_app *app, wsio_socket *s);
void srv_demo_disconnect(srv_app *app, wsio_socket *s);

#endif
