/* JWT authentication of Socket.IO connections for the wsio program: a middleware on every namespace that
 * verifies auth.token (or an "Authorization: Bearer" handshake header) and keeps the claims with the socket. */
#ifndef WSIO_SERVER_AUTH_H
#define WSIO_SERVER_AUTH_H

#include "server/app.h"
#include "server/jwt.h"

/* Per-socket state the program keeps (wsio_socket_set_data). */
typedef struct srv_socket {
  jwt_claims claims;   /* payload NULL when the socket came without a token */
  char *claims_json;   /* compact JSON of the claims, or NULL */
  char nick[33];       /* the demo's nickname, "" until set */
} srv_socket;

/* The socket's program state, created on first use (NULL on ENOMEM). */
srv_socket *srv_socket_get(wsio_socket *s);

/* Builds the verifier from cfg's [auth]; *out is NULL when no key is configured (auth off).
 * Returns 0, or WSIO_EINVAL with a message in err. */
int srv_auth_new(const server_config *cfg, jwt_verifier **out, char *err, size_t errcap);

/* The middleware (ud: the srv_app). */
void srv_auth_middleware(wsio_socket *s, wsio_next *next, void *ud);

/* "claims:FIELD" room rule: 1 if the socket's claim FIELD (an array of patterns) admits room. */
int srv_auth_claim_rooms(wsio_socket *s, const char *field, const char *room, void *ud);

/* The claims as JSON, or NULL. */
const char *srv_auth_claims_json(wsio_socket *s);

/* Frees what the program attached to s; call from its disconnect handler. */
void srv_socket_release(wsio_socket *s);

#endif
