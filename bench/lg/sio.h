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

/* Connection state recovery (Socket.IO 4.6+), as socket.io-client keeps it across the connections of one
 * client: the CONNECT answer's private id, and the last string argument of the events received once a pid is
 * known (the server appends each broadcast's offset that way). The next CONNECT sends both as its auth,
 * `40{"pid":"...","offset":"..."}`, and the server's answer carrying the same pid means the session was
 * recovered. The caller owns it; zeroed means a client that never connected. */
typedef struct lg_sio_recovery {
  char pid[48];      /* "" until a CONNECT answer carries one (the server has recovery off) */
  char offset[48];   /* "" until an event carried one */
  uint8_t recovered; /* the last CONNECT answer gave back the pid that was sent */
} lg_sio_recovery;

/* Marks c, whose WebSocket just opened, as waiting for the Engine.IO open packet. */
void lg_sio_start(lg_conn *c);

/* Takes one whole message received on c (from lg_client's on_message) and answers it where the protocol
 * says so (CONNECT after open, pong after ping; queued on c). rec, if not NULL, is the client's recovery
 * state: sent with CONNECT, updated from the answer and from events (read from the message's kept prefix,
 * so an offset is seen on events of at most LG_PREFIX bytes). Returns one of LG_SIO_*. On LG_SIO_ERROR,
 * *why is a static description. */
int lg_sio_message(lg_client *cl, lg_conn *c, lg_sio_recovery *rec, const char **why);

/* Encodes the EVENT packet 42["event","arg"] into out, which holds at least lg_sio_event_size(event, len)
 * bytes. arg must need no JSON escaping (letters, digits). Returns the packet's length; *arg_at (may be NULL)
 * gets the offset of arg in it. */
size_t lg_sio_event_encode(uint8_t *out, const char *event, const uint8_t *arg, size_t len, size_t *arg_at);
size_t lg_sio_event_size(const char *event, size_t len);

#endif
