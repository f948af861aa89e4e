/* net_trust: addresses, networks and the trusted-proxy list. */
#include "net/trust.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "wsio.h"

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_v6(net_addr *out, const uint8_t b[16]) {
  memset(out, 0, sizeof *out);
  if (memcmp(b, v4mapped, 12) == 0) {
    out->family = 4;
    memcpy(out->bytes, b + 12, 4);
  } else {
    out->family = 6;
    memcpy(out->bytes, b, 16);
  }
}

int net_addr_parse(const char *s, size_t len, net_addr *out) {
  char tmp[NET_ADDR_TEXT];
  if (len == 0 || len >= sizeof tmp) return -1;
  memcpy(tmp, s, len);
  tmp[len] = 0;
  if (strlen(tmp) != len) return -1; /* a NUL inside */
  uint8_t b[16];
  /* glibc's inet_pton takes exactly four decimal parts for IPv4 (no octal, hex or short forms, no leading
   * zeros) and refuses zones and blanks: what a proxy writes, and nothing it would not. */
  if (inet_pton(AF_INET, tmp, b) == 1) {
    memset(out, 0, sizeof *out);
    out->family = 4;
    memcpy(out->bytes, b, 4);
    return 0;
  }
  if (inet_pton(AF_INET6, tmp, b) == 1) {
    set_v6(out, b);
    return 0;
  }
  return -1;
}

int net_addr_from_sockaddr(const struct sockaddr *sa, net_addr *out) {
  if (sa->sa_family == AF_INET) {
    memset(out, 0, sizeof *out);
    out->family = 4;
    memcpy(out->bytes, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    set_v6(out, (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    return 0;
  }
  return -1;
}

void net_addr_to_sockaddr(const net_addr *a, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (a->family == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
    in->sin_family = AF_INET;
    memcpy(&in->sin_addr, a->bytes, 4);
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, a->bytes, 16);
  }
}

int net_addr_format(const net_addr *a, char *out, size_t cap) {
  char tmp[NET_ADDR_TEXT];
  if (a->family != 4 && a->family != 6) return -1;
  if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, tmp, sizeof tmp)) return -1;
  size_t n = strlen(tmp);
  if (n >= cap) return -1;
  memcpy(out, tmp, n + 1);
  return (int)n;
}

static void mask(net_addr *a, unsigned bits) {
  unsigned size = a->family == 4 ? 4 : 16;
  for (unsigned i = 0; i < size; i++) {
    if (bits >= 8 * (i + 1)) continue;
    a->bytes[i] &= bits > 8 * i ? (uint8_t)(0xff00u >> (bits - 8 * i)) : 0;
  }
}

const char *net_cidr_parse(const char *s, size_t len, net_cidr *out) {
  static const char *const not_one = "is not an IP address or network (examples: 10.0.0.0/8, 192.168.1.7, fd00::/8)";
  for (size_t i = 0; i < len; i++)
    if (s[i] == ' ' || s[i] == '\t') return "holds a blank: networks are separated by commas";
  const char *slash = memchr(s, '/', len);
  size_t alen = slash ? (size_t)(slash - s) : len;
  memset(out, 0, sizeof *out);
  if (net_addr_parse(s, alen, &out->net) != 0) return not_one;
  unsigned max = out->net.family == 4 ? 32 : 128;
  unsigned bits = max;
  if (slash) {
    const char *d = slash + 1, *end = s + len;
    if (d == end || end - d > 3) return "has no prefix length after / (0 to 32 for IPv4, 0 to 128 for IPv6)";
    bits = 0;
    for (; d < end; d++) {
      if (*d < '0' || *d > '9') return "has no prefix length after / (0 to 32 for IPv4, 0 to 128 for IPv6)";
      bits = bits * 10 + (unsigned)(*d - '0');
    }
    /* An IPv4-mapped network stands for IPv4 addresses, which net_addr keeps as IPv4. */
    int mapped = out->net.family == 4 && memchr(s, ':', alen) != NULL;
    if (mapped) {
      if (bits < 96 || bits > 128) return "is an IPv4-mapped network: its prefix must be 96 to 128 bits";
      bits -= 96;
    }
    if (bits > max) return max == 32 ? "has a prefix longer than 32 bits" : "has a prefix longer than 128 bits";
  }
  out->bits = (uint8_t)bits;
  mask(&out->net, bits);
  return NULL;
}

int net_cidr_match(const net_cidr *n, const net_addr *a) {
  if (n->net.family != a->family) return 0;
  unsigned full = n->bits / 8, rest = n->bits % 8;
  if (memcmp(n->net.bytes, a->bytes, full) != 0) return 0;
  if (!rest) return 1;
  uint8_t m = (uint8_t)(0xff00u >> rest);
  return (a->bytes[full] & m) == n->net.bytes[full];
}

static int is_sep(char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int net_trust_parse(const char *list, net_trust **out, char *err, size_t cap) {
  *out = NULL;
  if (err && cap) err[0] = 0;
  if (!list) return 0;
  size_t n = 0;
  for (const char *p = list; *p;) {
    while (*p && is_sep(*p)) p++;
    if (!*p) break;
    n++;
    while (*p && !is_sep(*p)) p++;
  }
  if (!n) return 0;
  if (n > NET_TRUST_MAX) {
    if (err && cap) snprintf(err, cap, "%zu networks: at most %d", n, NET_TRUST_MAX);
    return WSIO_EINVAL;
  }
  net_trust *t = malloc(sizeof *t + n * sizeof t->v[0]);
  if (!t) return WSIO_ENOMEM;
  t->n = 0;
  for (const char *p = list; *p;) {
    while (*p && is_sep(*p)) p++;
    if (!*p) break;
    const char *a = p;
    while (*p && !is_sep(*p)) p++;
    const char *why = net_cidr_parse(a, (size_t)(p - a), &t->v[t->n]);
    if (why) {
      if (err && cap) {
        size_t len = (size_t)(p - a);
        snprintf(err, cap, "\"%.*s%s\" %s", (int)(len > 60 ? 60 : len), a, len > 60 ? "..." : "", why);
      }
      free(t);
      return WSIO_EINVAL;
    }
    t->n++;
  }
  *out = t;
  return 0;
}

void net_trust_free(net_trust *t) { free(t); }

int net_trust_match(const net_trust *t, const net_addr *a) {
  if (!t || (a->family != 4 && a->family != 6)) return 0;
  for (size_t i = 0; i < t->n; i++)
    if (net_cidr_match(&t->v[i], a)) return 1;
  return 0;
}
