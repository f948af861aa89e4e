/*
 * ws_deflate — permessage-deflate (RFC 7692): offer negotiation, and the compress / inflate streams.
 *
 * Two models (wsio_deflate_mode):
 *   SHARED  — the response always carries server_no_context_takeover and client_no_context_takeover, so no
 *             zlib state lives per connection: one deflater and one inflater per loop (ws_deflate_shared),
 *             reset per message. A broadcast is compressed once and the bytes serve every receiver.
 *   CONTEXT — per-connection zlib streams, context takeover where the client allows it; created lazily on
 *             the first compressed message and kept for the connection's life.
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

/* Per-loop streams for the SHARED model; also the scratch buffer all sessions of a loop inflate into. */
typedef struct ws_deflate_shared ws_deflate_shared;
ws_deflate_shared *ws_deflate_shared_new(void);
void ws_deflate_shared_free(ws_deflate_shared *d);

/* Per-connection streams (both models use this handle; in SHARED mode it only points at the shared one). */
typedef struct ws_deflate ws_deflate;
ws_deflate *ws_deflate_new(const ws_pmd_params *p, ws_deflate_shared *shared);
void ws_deflate_free(ws_deflate *d);

/* Compresses one whole message; on success *out points at the compressed payload (trailing 00 00 ff ff
 * removed, per RFC 7692 7.2.1), valid until the next call on this loop. Returns the length or WSIO_ENOMEM. */
long ws_deflate_message(ws_deflate *d, const uint8_t *in, size_t len, const uint8_t **out);

/* Compresses with the shared deflater without any connection (for publish). Same contract. */
long ws_deflate_shared_message(ws_deflate_shared *d, const uint8_t *in, size_t len, const uint8_t **out);

/* Inflate streaming: call ws_inflate_begin at a compressed message's first frame, ws_inflate_chunk for each
 * payload chunk (unmasked), ws_inflate_end after the final frame (it appends the 00 00 ff ff tail). Output is
 * appended to *dst (a buf, see util/buf.h) and never grows it past max bytes: returns 0, WSIO_ETOOBIG as soon
 * as the output would pass max (without inflating the rest), WSIO_EPROTO on corrupt data, WSIO_ENOMEM. */
struct buf;
int ws_inflate_begin(ws_deflate *d);
int ws_inflate_chunk(ws_deflate *d, const uint8_t *in, size_t len, struct buf *dst, uint64_t max);
int ws_inflate_end(ws_deflate *d, struct buf *dst, uint64_t max);

#endif
