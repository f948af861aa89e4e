#include "util/pct.h"

#include "util/scan.h"
#include "wsio.h"

long pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++, o++) {
    char c = s[i];
    if (c == '+' && (flags & PCT_PLUS)) {
      c = ' ';
    } else if (c == '%') {
      int hi = n - i > 2 ? scan_hex(s[i + 1]) : -1;
      int lo = n - i > 2 ? scan_hex(s[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        if (hi == 0 && lo == 0 && (flags & PCT_NO_NUL)) return WSIO_EPROTO;
        c = (char)(hi << 4 | lo);
        i += 2;
      } else if (!(flags & PCT_LENIENT)) {
        return WSIO_EPROTO;
      }
    }
    if (out) {
      if (o + 1 >= cap) return WSIO_ETOOBIG; /* this byte and the NUL */
      out[o] = c;
    }
  }
  if (out) {
    if (cap == 0) return WSIO_ETOOBIG;
    out[o] = '\0';
  }
  return (long)o;
}
