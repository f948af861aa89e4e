/*
 * sio_mp — the msgpack parser (npm socket.io-msgpack-parser, what `parser: msgpackParser` and the
 * socket.io.msgpack.min.js bundle use), sans-I/O.
 *
 * With it every Socket.IO packet travels as one binary Engine.IO message: the msgpack encoding (as
 * notepack.io writes it) of the packet object {type, nsp, data, id}, binaries inline, types 0 to 4 only (an
 * event with binaries is still type 2). Inside, wsio works on the default parser's text form plus
 * attachments whichever parser a server uses, so this module converts at the edge, both ways. Broadcasts
 * stay encoded once: the conversion runs once per packet, not per receiver.
 *
 * Decoding checks what socket.io-msgpack-parser's decoder checks (type an integer 0..4, nsp a string, data
 * absent or an object for CONNECT, absent for DISCONNECT, a string or object for CONNECT_ERROR, an array
 * otherwise, id an integer when present), and what the text form needs (nsp starting with '/', no comma).
 * Unknown members (socket.io-client sends "options") are ignored, and a null data of CONNECT or DISCONNECT
 * is taken as none (python-socketio's msgpack serializer writes one). The text is then for
 * sio_packet_decode to check in full.
 */
#ifndef WSIO_SIO_PARSER_H
#define WSIO_SIO_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "sio/msgpack.h"
#include "sio/packet.h"
#include "util/buf.h"

/* One binary message p[0..len) to the text packet in text (reset first), its attachments in atts (reset
 * first; views into p) and json (scratch, reset first). lim bounds nesting and attachments (NULL: the
 * defaults). Returns 0, WSIO_EPROTO or WSIO_ENOMEM. */
int sio_mp_decode(const uint8_t *p, size_t len, const sio_packet_limits *lim, buf *json, mpk_atts *atts,
                  buf *text);

/* A text packet and its natts attachments to the one binary message that carries it, in out (reset
 * first); tmp is scratch for the packet object's JSON (reset). Returns 0, WSIO_EPROTO (text is no valid
 * packet, or natts is not its attachment count) or WSIO_ENOMEM. */
int sio_mp_encode(const char *text, size_t len, const sio_bin *atts, size_t natts, buf *tmp, buf *out);

#endif
