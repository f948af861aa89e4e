/* ws_handshake — validates an HTTP Upgrade request (RFC 6455 4.2.1) and builds the 101 response. */
#ifndef WSIO_WS_HANDSHAKE_H
#define WSIO_WS_HANDSHAKE_H

#include <stddef.h>

#include "http/parser.h"
#include "ws/deflate.h"

typedef struct ws_handshake_config {
  const char *subprotocols; /* comma list in server preference order, or NULL */
  const char *origins;      /* comma list of allowed origins (exact, case-insensitive), or NULL: any */
  int deflate_mode;         /* 0 off, 1 shared, 2 context */
} ws_handshake_config;

typedef struct ws_handshake_result {
  int deflate;              /* 1 if permessage-deflate was accepted */
  ws_pmd_params pmd;
  char protocol[64];        /* selected subprotocol or "" */
} ws_handshake_result;

/* Checks req against the RFC and cfg (NULL: no subprotocols, any origin, no deflate). On success returns 0,
 * fills *res and writes the whole 101 response (NUL-terminated) into out (out_cap >= 512 is always enough).
 * On failure returns the HTTP status to answer (400 bad request, 403 origin not allowed, 426 missing or
 * wrong version — the response then carries "Sec-WebSocket-Version: 13"; 500 if out_cap is too small for
 * the 101, 503 out of memory) and writes that whole error response (Connection: close, a one-line text
 * body) into out; *res is then zeroed.
 * Origin policy: with cfg->origins set, every Origin header present must be in the list; a request without
 * Origin (a non-browser client) is accepted. Subprotocols: the first of cfg's list offered by the client
 * (exact, case-sensitive), none matching: no header. Extensions: all lines joined go to ws_pmd_negotiate
 * when deflate_mode != 0; a malformed offer is a 400. */
int ws_handshake_accept(const http_request *req, const ws_handshake_config *cfg, ws_handshake_result *res,
                        char *out, size_t out_cap);

/* 1 if req asks for a WebSocket upgrade at all (GET, Upgrade: websocket among tokens, Connection: upgrade). */
int ws_handshake_is_upgrade(const http_request *req);

/* Computes Sec-WebSocket-Accept for a key into out (29 bytes incl. NUL). */
void ws_handshake_accept_key(const char *key, size_t key_len, char out[29]);

#endif
