/* ws_frame — RFC 6455 frame header codec and masking. Sans-I/O, no allocation. */
#ifndef WSIO_WS_FRAME_H
#define WSIO_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

enum {
  WS_OP_CONT = 0x0,
  WS_OP_TEXT = 0x1,
  WS_OP_BINARY = 0x2,
  WS_OP_CLOSE = 0x8,
  WS_OP_PING = 0x9,
  WS_OP_PONG = 0xA
};

/* Parser contract shared by every codec in wsio: >= 0 bytes consumed, WS_NEED_MORE, or a negative error. */
#define WS_NEED_MORE (-2)
#define WS_ERROR (-1)

/* Largest header: 2 + 8 (64-bit length) + 4 (mask). */
#define WS_FRAME_HEADER_MAX 14

typedef struct ws_frame_header {
  uint64_t len;     /* payload length */
  uint8_t fin;
  uint8_t rsv;      /* the three RSV bits as 0bRSV1RSV2RSV3 */
  uint8_t opcode;
  uint8_t masked;
  uint8_t mask[4];
} ws_frame_header;

/* Parses one frame header from buf. Returns the header length (2..14), WS_NEED_MORE, or WS_ERROR for a
 * 64-bit length with the top bit set. Semantic checks (opcode, RSV, control frame rules, masking) belong to
 * the session. */
ssize_t ws_frame_header_parse(const uint8_t *buf, size_t len, ws_frame_header *h);

/* Writes a header into out (WS_FRAME_HEADER_MAX bytes). mask may be NULL (server frames are unmasked).
 * rsv1 marks a compressed message's first frame. Returns the header length. Inline: every send writes one. */
static inline size_t ws_frame_header_encode(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len,
                                            const uint8_t *mask) {
  out[0] = (uint8_t)((fin ? 0x80u : 0) | (rsv1 ? 0x40u : 0) | ((unsigned)opcode & 0x0Fu));
  uint8_t mbit = mask ? 0x80u : 0;
  size_t pos;
  if (len < 126) {
    out[1] = (uint8_t)(mbit | len);
    pos = 2;
  } else if (len <= 0xFFFF) {
    out[1] = mbit | 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    pos = 4;
  } else {
    out[1] = mbit | 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    pos = 10;
  }
  if (mask) {
    memcpy(out + pos, mask, 4);
    pos += 4;
  }
  return pos;
}

/* XORs data with mask, starting at byte `offset` of the masking key stream (offset mod 4). Works a machine
 * word at a time. Returns the new offset (offset + len) mod 4. */
unsigned ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], unsigned offset);

/* Close payload checks (RFC 6455 7.4): returns 1 if code may appear on the wire. */
int ws_close_code_valid(unsigned code);

#endif
