/* srv_app — the state of the wsio program: the server, its Socket.IO side, the configuration in force and
 * the program's own counters. One per process; everything runs on the server's loop. */
#ifndef WSIO_SERVER_APP_H
#define WSIO_SERVER_APP_H

#include "server/config.h"
#include "server/jwt.h"
#include "server/metrics.h"
#include "wsio.h"

typedef struct srv_app {
  wsio_server *server;
  wsio_io *io;
  const server_config *cfg;    /* swapped on SIGHUP for the settings that apply live */
  srv_metrics metrics;
  jwt_verifier *jwt;           /* NULL: no JWT authentication */
  /* "claims:FIELD" room rules: 1 if the socket's verified claims allow room. Set by the auth module. */
  int (*claim_rooms)(wsio_socket *s, const char *field, const char *room, void *ud);
  void *claim_ud;
  /* The socket's verified claims as JSON object text (borrowed for the call), or NULL. Set by
   * the auth module; called with claim_ud. The event proxy sends them to the backend. */
  const char *(*claims_json)(wsio_socket *s, void *ud);
  /* The outgoing HTTP client (server/http_client.h) shared by the event proxy and the webhooks. */
  struct srv_http *http;
  /* Events no route matched (the event proxy takes them). */
  wsio_event_cb unrouted;
  void *unrouted_ud;
} srv_app;

#endif
