/* redis_cluster: slots, topology and redirections of a Redis Cluster (see redis_cluster.h). */
#include "adapter/redis_cluster.h"

#include <string.h>

uint16_t rcl_crc16(const void *p, size_t n) {
  const uint8_t *b = p;
  uint16_t crc = 0;
  /* Bit by bit, most significant first: a channel name is short, and this is done once per publish. */
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint16_t)(b[i] << 8);
    for (int k = 0; k < 8; k++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

unsigned rcl_keyslot(const char *name, size_t len) {
  const char *open = memchr(name, '{', len);
  if (open) {
    size_t rest = len - (size_t)(open + 1 - name);
    const char *close = memchr(open + 1, '}', rest);
    if (close && close > open + 1) return rcl_crc16(open + 1, (size_t)(close - open - 1)) & (RCL_SLOTS - 1);
  }
  return rcl_crc16(name, len) & (RCL_SLOTS - 1);
}

static int is_int(const redisReply *r) { return r->type == REDIS_REPLY_INTEGER; }

int rcl_slots_parse(const redisReply *r, rcl_range *out, size_t cap) {
  if (!r || r->type != REDIS_REPLY_ARRAY) return -1;
  if (r->elements > cap) return -1;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) || !is_int(e->element[1]))
      return -1;
    long long s = e->element[0]->integer, t = e->element[1]->integer;
    if (s < 0 || t < s || t >= RCL_SLOTS) return -1;
    const redisReply *n = e->element[2];
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 || !is_int(n->element[1])) return -1;
    const redisReply *h = n->element[0];
    long long port = n->element[1]->integer;
    if (port <= 0 || port > 65535) return -1;
    out[i].start = (unsigned)s;
    out[i].end = (unsigned)t;
    out[i].port = (int)port;
    /* NULL or "?" when the node has no known endpoint (cluster-preferred-endpoint-type unknown-endpoint) */
    if (h->type == REDIS_REPLY_STRING && !(h->len == 1 && h->str[0] == '?')) {
      out[i].host = h->str;
      out[i].hostlen = h->len;
    } else if (h->type == REDIS_REPLY_STRING || h->type == REDIS_REPLY_NIL) {
      out[i].host = "";
      out[i].hostlen = 0;
    } else {
      return -1;
    }
  }
  return (int)r->elements;
}

int rcl_redirect_parse(const char *msg, size_t len, unsigned *slot, const char **host, size_t *hostlen, int *port) {
  int kind;
  size_t at;
  if (len > 6 && memcmp(msg, "MOVED ", 6) == 0) kind = 1, at = 6;
  else if (len > 4 && memcmp(msg, "ASK ", 4) == 0) kind = 2, at = 4;
  else return 0;
  unsigned s = 0;
  size_t digits = 0;
  while (at < len && msg[at] >= '0' && msg[at] <= '9' && digits < 6) s = s * 10 + (unsigned)(msg[at++] - '0'), digits++;
  if (!digits || s >= RCL_SLOTS || at >= len || msg[at] != ' ') return 0;
  at++;
  /* host:port, the port after the last ':' (an IPv6 address has colons of its own) */
  const char *addr = msg + at, *end = msg + len, *colon = NULL;
  for (const char *q = addr; q < end; q++)
    if (*q == ':') colon = q;
  if (!colon || colon + 1 == end) return 0;
  long p = 0;
  for (const char *q = colon + 1; q < end; q++) {
    if (*q < '0' || *q > '9' || p > 65535) return 0;
    p = p * 10 + (*q - '0');
  }
  if (p <= 0 || p > 65535) return 0;
  *slot = s;
  *host = addr;
  *hostlen = (size_t)(colon - addr);
  *port = (int)p;
  return kind;
}
