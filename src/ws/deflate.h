/*
 * ws_deflate — permessage-deflate (RFC 7692): offer negotiation, and the compress / inflate streams.
 *
 * Two models (wsio_deflate_mode):
 *   SHARED  — the response always carries server_no_context_takeover and client_no_context_takeover, so no
 *             zlib state lives per connection: one deflater and one inflater per loop (ws_deflate_shared),
 *             reset per message. A broadcast is compressed once and the bytes serve every receiver whose
 *             server_max_window_bits is 15 (a client that asked for a smaller window must get its own
 *             ws_deflate_message, or the plain message).
 *   CONTEXT — per-connection zlib streams, context takeover where the client allows it; created lazily on
 *             the first compressed message and kept for the connection's life. A direction negotiated
 *             without context takeover still runs on the loop's shared stream.
 * zlib state per connection, measured (ws_deflate_memory, zlib 1.2.13, 64-bit): CONTEXT at window 15 holds
 * 268 KB for deflate and 40 KB for inflate (about 301 KiB); with server_max_window_bits=10 the deflater
 * takes 18 KB (its memLevel scales down with the window). SHARED holds none, except while a connection's
 * compressed message is cut across reads and another connection needs the shared inflater: the state
 * (up to 40 KB) then moves to the cut connection until that message ends.
 *
 * Threading: a ws_deflate_shared and every ws_deflate using it belong to one loop thread.
 */
#ifndef WSIO_WS_DEFLATE_H
#define WSIO_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ws_pmd_params {
  uint8_t server_no_context_takeover; /* our deflater resets per message */
  uint8_t client_no_context_takeover; /* the peer's deflater resets per message: our inflater may too */
  uint8_t server_max_window_bits;     /* 9..15, our deflater's window */
  uint8_t client_max_window_bits;     /* 8..15, the peer's window (our inflater may always use 15) */
} ws_pmd_params;

/* Negotiates a Sec-WebSocket-Extensions request value (all header lines joined with ", ") against mode
 * (1 shared, 2 context; see wsio_deflate_mode). Picks the first acceptable permessage-deflate offer.
 * Returns 1 and fills *out and the response value (NUL-terminated, at most resp_cap bytes) when accepted;
 * 0 when there is no acceptable offer (the connection goes on without compression); a negative value when
 * the header is malformed (caller answers 400). */
int ws_pmd_negotiate(const char *value, size_t len, int mode, ws_pmd_params *out, char *resp, size_t resp_cap);
/* resp_cap of this size always holds the response; a smaller buffer that cannot hold it declines (0). */
#define WS_PMD_RESP_MAX 160

/* Per-loop streams for directions without context takeover, and the compression output scratch of every
 * connection of the loop. Streams are created on first use. Free it after every ws_deflate using it. */
typedef struct ws_deflate_shared ws_deflate_shared;
ws_deflate_shared *ws_deflate_shared_new(void);
void ws_deflate_shared_free(ws_deflate_shared *d);
/* Bytes of zlib state the loop's shared streams hold. */
size_t ws_deflate_shared_memory(const ws_deflate_shared *d);

/* Per-connection streams (both models use this handle; in SHARED mode it only points at the shared one).
 * p is copied (window bits 0 mean 15). shared may be NULL: every stream is then private. Returns NULL on
 * ENOMEM or a server_max_window_bits outside 9..15. */
typedef struct ws_deflate ws_deflate;
ws_deflate *ws_deflate_new(const ws_pmd_params *p, ws_deflate_shared *shared);
void ws_deflate_free(ws_deflate *d);
/* Bytes of zlib state this connection holds now (0 in the SHARED model between messages). */
size_t ws_deflate_memory(const ws_deflate *d);

/* Compresses one whole message; on success *out points at the compressed payload (trailing 00 00 ff ff
 * removed, per RFC 7692 7.2.1), valid until the next call on this loop. Returns the length or WSIO_ENOMEM.
 * An empty message is the single byte 00. After a failure the context is dropped, which the peer accepts. */
long ws_deflate_message(ws_deflate *d, const uint8_t *in, size_t len, const uint8_t **out);

/* Compresses with the shared deflater without any connection (for publish). Same contract. The window is
 * 15, so the bytes are valid only for receivers whose server_max_window_bits is 15. */
long ws_deflate_shared_message(ws_deflate_shared *d, const uint8_t *in, size_t len, const uint8_t **out);

/* Inflate streaming: call ws_inflate_begin at a compressed message's first frame, ws_inflate_chunk for each
 * payload chunk (unmasked), ws_inflate_end after the final frame (it appends the 00 00 ff ff tail). Output is
 * appended to *dst (a buf, see util/buf.h) and never grows it past max bytes: returns 0, WSIO_ETOOBIG as soon
 * as the output would pass max (without inflating the rest), WSIO_EPROTO on corrupt data, WSIO_ENOMEM.
 * max bounds dst->len, bytes already in dst included; dst's storage grows by doubling but never past max
 * (beyond what it already had). A message that does not end between deflate blocks is WSIO_EPROTO at
 * ws_inflate_end; data after a BFINAL block is ignored. Any error ends the message: chunk and end then
 * return WSIO_EINVAL until the next begin, as they do without a begin. begin returns 0 or WSIO_ENOMEM. */
struct buf;
int ws_inflate_begin(ws_deflate *d);
int ws_inflate_chunk(ws_deflate *d, const uint8_t *in, size_t len, struct buf *dst, uint64_t max);
int ws_inflate_end(ws_deflate *d, struct buf *dst, uint64_t max);

#endif
