#include "util/utf8.h"

#include <string.h>

#include "util/scan.h"

/*
 * A DFA over byte classes. Every state past REJECT names exactly which continuation bytes may come next, so a
 * sequence is rejected at the first byte that rules it out (RFC 3629 table 4: E0 needs A0..BF, ED 80..9F,
 * F0 90..BF, F4 80..8F; C0, C1 and F5..FF never appear).
 */
enum {
  C_ASCII,  /* 00..7F */
  C_CONT1,  /* 80..8F */
  C_CONT2,  /* 90..9F */
  C_CONT3,  /* A0..BF */
  C_BAD,    /* C0, C1, F5..FF */
  C_L2,     /* C2..DF */
  C_E0,
  C_L3,     /* E1..EC, EE, EF */
  C_ED,
  C_F0,
  C_L4,     /* F1..F3 */
  C_F4,
  C_COUNT
};

enum {
  S_ACCEPT = UTF8_ACCEPT,
  S_REJECT = UTF8_REJECT,
  S_NEED1,  /* one more continuation byte, any */
  S_NEED2,
  S_NEED3,
  S_E0,     /* after E0: A0..BF, then one more */
  S_ED,     /* after ED: 80..9F (no surrogates), then one more */
  S_F0,     /* after F0: 90..BF (no overlong), then two more */
  S_F4,     /* after F4: 80..8F (<= U+10FFFF), then two more */
  S_COUNT
};

static const uint8_t byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 00..0F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 10..1F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 20..2F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 30..3F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 40..4F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 50..5F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 60..6F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 70..7F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 80..8F */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 90..9F */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,  /* A0..AF */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,  /* B0..BF */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,  /* C0..CF */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,  /* D0..DF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,  /* E0..EF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* F0..FF */
};

#define R S_REJECT
static const uint8_t next_state[S_COUNT][C_COUNT] = {
    /*            ASCII     80..8F   90..9F   A0..BF   bad  L2       E0    L3       ED    F0    L4       F4 */
    [S_ACCEPT] = {S_ACCEPT, R,       R,       R,       R,   S_NEED1, S_E0, S_NEED2, S_ED, S_F0, S_NEED3, S_F4},
    [S_REJECT] = {R,        R,       R,       R,       R,   R,       R,    R,       R,    R,    R,       R},
    [S_NEED1] =  {R,        S_ACCEPT, S_ACCEPT, S_ACCEPT, R, R,      R,    R,       R,    R,    R,       R},
    [S_NEED2] =  {R,        S_NEED1, S_NEED1, S_NEED1, R,   R,       R,    R,       R,    R,    R,       R},
    [S_NEED3] =  {R,        S_NEED2, S_NEED2, S_NEED2, R,   R,       R,    R,       R,    R,    R,       R},
    [S_E0] =     {R,        R,       R,       S_NEED1, R,   R,       R,    R,       R,    R,    R,       R},
    [S_ED] =     {R,        S_NEED1, S_NEED1, R,       R,   R,       R,    R,       R,    R,    R,       R},
    [S_F0] =     {R,        R,       S_NEED2, S_NEED2, R,   R,       R,    R,       R,    R,    R,       R},
    [S_F4] =     {R,        S_NEED2, R,       R,       R,   R,       R,    R,       R,    R,    R,       R},
};
#undef R

uint32_t utf8_validate(uint32_t state, const uint8_t *p, size_t len) {
  if (state >= S_COUNT) return S_REJECT;
  if (len == 0) return state; /* p may be NULL */
  const uint8_t *end = p + len;
  while (p < end) {
    if (state == S_ACCEPT) {
      p += scan_ascii(p, (size_t)(end - p)); /* ASCII fast path: 16 bytes a step */
      if (p == end) break;
    }
    state = next_state[state][byte_class[*p++]];
    if (state == S_REJECT) break;
  }
  return state;
}

int utf8_valid(const uint8_t *p, size_t len) {
  return utf8_validate(UTF8_ACCEPT, p, len) == UTF8_ACCEPT;
}

const uint8_t *utf8_seq(const uint8_t *p, const uint8_t *end) {
  uint32_t state = next_state[S_ACCEPT][byte_class[*p++]];
  while (state > S_REJECT && p < end) state = next_state[state][byte_class[*p++]];
  return state == S_ACCEPT ? p : NULL;
}
