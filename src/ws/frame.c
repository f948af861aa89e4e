#include "ws/frame.h"

#include <string.h>

ssize_t ws_frame_header_parse(const uint8_t *buf, size_t len, ws_frame_header *h) {
  if (len < 2) return WS_NEED_MORE;
  unsigned len7 = buf[1] & 0x7Fu;
  size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((buf[1] & 0x80u) ? 4 : 0);
  /* A 64-bit length with the top bit set can never become valid: fail as soon as that byte is here. */
  if (len7 == 127 && len >= 3 && (buf[2] & 0x80u)) return WS_ERROR;
  if (len < need) return WS_NEED_MORE;

  h->fin = buf[0] >> 7;
  h->rsv = (buf[0] >> 4) & 7u;
  h->opcode = buf[0] & 0x0Fu;
  h->masked = buf[1] >> 7;
  size_t pos = 2;
  if (len7 < 126) {
    h->len = len7;
  } else if (len7 == 126) {
    h->len = (uint64_t)buf[2] << 8 | buf[3];
    pos = 4;
  } else {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | buf[2 + i];
    h->len = v;
    pos = 10;
  }
  if (h->masked) {
    memcpy(h->mask, buf + pos, 4);
    pos += 4;
  } else {
    memset(h->mask, 0, 4);
  }
  return (ssize_t)pos;
}

unsigned ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], unsigned offset) {
  offset &= 3u;
  /* Unaligned words straight away: loads and stores go through memcpy, defined at any alignment, and on the
   * machines we run on an unaligned 8-byte access costs what an aligned one does. The key stream, rotated
   * to offset, lines up with every following word and half-word unchanged (8 and 4 are multiples of 4). */
  uint8_t key[8];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint32_t m; /* the key as a word, rotated so that its byte 0 is mask[offset]: no loop per frame */
  memcpy(&m, mask, 4);
  if (offset) m = m >> (8 * offset) | m << (32 - 8 * offset);
  uint64_t k2 = (uint64_t)m << 32 | m;
  memcpy(key, &k2, 8);
#else
  for (unsigned i = 0; i < 8; i++) key[i] = mask[(offset + i) & 3u];
#endif
  if (len >= 8) {
    uint64_t k, w0, w1, w2, w3;
    memcpy(&k, key, 8);
    while (len >= 32) {
      memcpy(&w0, data, 8);
      memcpy(&w1, data + 8, 8);
      memcpy(&w2, data + 16, 8);
      memcpy(&w3, data + 24, 8);
      w0 ^= k;
      w1 ^= k;
      w2 ^= k;
      w3 ^= k;
      memcpy(data, &w0, 8);
      memcpy(data + 8, &w1, 8);
      memcpy(data + 16, &w2, 8);
      memcpy(data + 24, &w3, 8);
      data += 32;
      len -= 32;
    }
    while (len >= 8) {
      memcpy(&w0, data, 8);
      w0 ^= k;
      memcpy(data, &w0, 8);
      data += 8;
      len -= 8;
    }
  }
  if (len >= 4) {
    uint32_t k4, w;
    memcpy(&k4, key, 4);
    memcpy(&w, data, 4);
    w ^= k4;
    memcpy(data, &w, 4);
    data += 4;
    len -= 4;
  }
  for (size_t i = 0; i < len; i++) data[i] ^= key[i];
  return (offset + (unsigned)len) & 3u;
}

int ws_close_code_valid(unsigned code) {
  if (code >= 3000 && code <= 4999) return 1;
  if (code < 1000 || code > 1014) return 0;
  /* 1004 reserved; 1005, 1006 are never sent; 1015 (above) is TLS failure, local only. */
  return code != 1004 && code != 1005 && code != 1006;
}
