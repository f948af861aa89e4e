/* ws_utf8 — incremental UTF-8 validation (RFC 3629) with an ASCII fast path. */
#ifndef WSIO_WS_UTF8_H
#define WSIO_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define WS_UTF8_ACCEPT 0u
#define WS_UTF8_REJECT 1u  /* sticky: once rejected, stays rejected */

/* Feeds bytes to a validator whose state starts at WS_UTF8_ACCEPT. Returns the new state: ACCEPT when the
 * input so far ends on a character boundary, REJECT on any invalid sequence (overlong, surrogate, > U+10FFFF,
 * bad continuation), anything else means in the middle of a character. Fails fast: a sequence that can no
 * longer become valid is rejected at its first bad byte. */
uint32_t ws_utf8_validate(uint32_t state, const uint8_t *p, size_t len);

/* One-shot: 1 if p[0..len) is complete valid UTF-8. */
int ws_utf8_valid(const uint8_t *p, size_t len);

#endif
