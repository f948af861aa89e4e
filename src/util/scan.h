/* scan — finding the first byte of a kind in a buffer, 16 bytes per step with SSE2 (every x86-64 has it) and
 * 8 per step with plain 64-bit words elsewhere. Used where every message's bytes are checked: UTF-8 text
 * (its ASCII runs) and JSON strings. Pure functions over borrowed bytes; nothing is read outside p[0..n).
 * Also the one byte classifier the escape readers share: a hex digit's value (percent escapes, JSON's \u). */
#ifndef WSIO_UTIL_SCAN_H
#define WSIO_UTIL_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SCAN_ONES UINT64_C(0x0101010101010101)
#define SCAN_HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t scan_load8(const uint8_t *p) {
  uint64_t w;
  memcpy(&w, p, 8); /* defined at any alignment */
  return w;
}

/* The high bit of each byte of w below n (n <= 0x80). A borrow can also mark bytes above a marked one, never
 * below it, so the lowest mark is exact: enough to find the first such byte on a little-endian machine. */
static inline uint64_t scan_below8(uint64_t w, unsigned n) { return (w - SCAN_ONES * n) & ~w & SCAN_HIGHS; }
static inline uint64_t scan_eq8(uint64_t w, unsigned c) { return scan_below8(w ^ (SCAN_ONES * c), 1); }
/* Bytes that are not plain JSON string text: control characters, non-ASCII, '"' and '\'. */
static inline uint64_t scan_special8(uint64_t w) {
  return scan_below8(w, 0x20) | (w & SCAN_HIGHS) | scan_eq8(w, '"') | scan_eq8(w, '\\');
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SCAN_WORD_INDEX 1 /* the first marked byte of a word is its lowest mark */
static inline size_t scan_first8(uint64_t marks) { return (size_t)__builtin_ctzll(marks) >> 3; }
#else
#define SCAN_WORD_INDEX 0 /* found byte by byte after the word says yes */
#endif

/* The index of the first byte of p[0..n) at or above 0x80, or n. */
static inline size_t scan_ascii(const uint8_t *p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; n - i >= 16; i += 16) {
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)));
    if (m) return i + (size_t)__builtin_ctz(m);
  }
#endif
  for (; n - i >= 8; i += 8)
    if (scan_load8(p + i) & SCAN_HIGHS) break;
#if SCAN_WORD_INDEX
  if (n - i >= 8) return i + scan_first8(scan_load8(p + i) & SCAN_HIGHS);
  if (i < n && n >= 8) { /* the tail: the last 8 bytes, overlapping ones already known to be ASCII */
    uint64_t m = scan_load8(p + n - 8) & SCAN_HIGHS;
    return m ? n - 8 + scan_first8(m) : n;
  }
#endif
  while (i < n && p[i] < 0x80) i++;
  return i;
}

/* The value of the hex digit c, either case, or -1. */
static inline int scan_hex(uint8_t c) {
  if ((unsigned)c - '0' < 10u) return c - '0';
  unsigned l = c | 0x20u; /* 'A'..'F' onto 'a'..'f'; no other byte lands there */
  return l - 'a' < 6u ? (int)(l - 'a') + 10 : -1;
}

static inline int scan_plain_byte(uint8_t c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* The index of the first byte of p[0..n) that is not plain JSON string text (scan_special8), or n. */
static inline size_t scan_json_plain(const uint8_t *p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
  for (; n - i >= 16; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
    /* Signed bytes: below 0x20 is a control character or, negative, non-ASCII. */
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
    unsigned bits = (unsigned)_mm_movemask_epi8(m);
    if (bits) return i + (size_t)__builtin_ctz(bits);
  }
#endif
  for (; n - i >= 8; i += 8)
    if (scan_special8(scan_load8(p + i))) break;
#if SCAN_WORD_INDEX
  if (n - i >= 8) return i + scan_first8(scan_special8(scan_load8(p + i)));
  if (i < n && n >= 8) {
    uint64_t m = scan_special8(scan_load8(p + n - 8));
    return m ? n - 8 + scan_first8(m) : n;
  }
#endif
  while (i < n && scan_plain_byte(p[i])) i++;
  return i;
}

#endif
