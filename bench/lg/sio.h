/* lg_sio — the load generator's Socket.IO v5 client side (Engine.IO v4 over WebSocket only) on lg_client.
 *
 * Once the WebSocket is open, a connection reads the Engine.IO open packet `0{"sid":...}`, sends CONNECT to
 * the main namespace (`40`) and is ready when the server's `40{"sid":...}` arrives. Engine.IO pings (`2`) are
 * answered with pongs (`3`) at any time. Events are `42[...]` text messages; there are no binary attachments
 * and no acks. The state lives in lg_conn.sio. */
#ifndef WSIO_BENCH_LG_SIO_H
#define WSIO_BENCH_LG_SIO_H

#include <stddef.h>
#include <stdint.h>

#include "lg/client.h"

/* What lg_sio_message made of a message. */
enum {
  LG_SIO_CONSUMED,  /* a packet of the protocol itself (open, ping): nothing for the caller */
  LG_SIO_READY,     /* the namespace accepted the connection: the caller may emit from now on */
  LG_SIO_EVENT,     /* an EVENT packet (`42[`...): c->prefix, c->msg_len and c->bad describe it */
  LG_SIO_ERROR      /* a packet out of place, a refusal or a disconnect: the caller closes c */
};

/* Marks c, whose WebSocket just opened, as waiting for the Engine.IO open packet. */
void lg_sio_start(lg_conn *c);

/* Takes one whole message received on c (from lg_client's on_message) and answers it where the protocol
 * says so (CONNECT after open, pong after ping; queued on c). Returns one of LG_SIO_*. On LG_SIO_ERROR,
 * *why is a static description. */
int lg_sio_message(lg_client *cl, lg_conn *c, const char **why);

/* Encodes the EVENT packet 42["event","arg"] into out, which holds at least lg_sio_event_size(event, len)
 * bytes. arg must need no JSON escaping (letters, digits). Returns the packet's length; *arg_at (may be NULL)
 * gets the offset of arg in it. */
size_t lg_sio_event_encode(uint8_t *out, const char *event, const uint8_t *arg, size_t len, size_t *arg_at);
size_t lg_sio_event_size(const char *event, size_t len);

#endif
