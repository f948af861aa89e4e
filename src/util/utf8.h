/* utf8 — UTF-8 validation (RFC 3629) for every layer: incremental for WebSocket messages that arrive in
 * pieces, one-shot with an ASCII fast path, and one sequence at a time for scanners (the JSON reader) that
 * meet non-ASCII bytes inside their own loop. One table decides for all three. */
#ifndef WSIO_UTF8_H
#define WSIO_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_ACCEPT 0u
#define UTF8_REJECT 1u  /* sticky: once rejected, stays rejected */

/* Feeds bytes to a validator whose state starts at UTF8_ACCEPT. Returns the new state: ACCEPT when the
 * input so far ends on a character boundary, REJECT on any invalid sequence (overlong, surrogate, > U+10FFFF,
 * bad continuation), anything else means in the middle of a character. Fails fast: a sequence that can no
 * longer become valid is rejected at its first bad byte. */
uint32_t utf8_validate(uint32_t state, const uint8_t *p, size_t len);

/* One-shot: 1 if p[0..len) is complete valid UTF-8. */
int utf8_valid(const uint8_t *p, size_t len);

/* One character starting at p (p < end; any byte, ASCII included). Returns the byte after it, or NULL when
 * the bytes from p do not begin with a complete valid character before end. */
const uint8_t *utf8_seq(const uint8_t *p, const uint8_t *end);

#endif
