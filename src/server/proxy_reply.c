/* Decoding of the backend's reply to a proxied event. */
#include "server/proxy_reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sio/json.h"

/* Nesting accepted in a reply; deeper replies are refused whole. */
#define REPLY_JSON_DEPTH 128

long srv_proxy_base64_decode(const char *s, size_t len, unsigned char *out) {
  size_t pad = 0;
  while (len && s[len - 1] == '=' && pad < 2) {
    len--;
    pad++;
  }
  if (len % 4 == 1 || (pad && (len + pad) % 4 != 0)) return -1;
  size_t k = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int v = c >= 'A' && c <= 'Z' ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' ? 62
            : c == '/' ? 63
                       : -1;
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[k++] = (unsigned char)(acc >> bits);
    }
  }
  return (long)k;
}

/* The values of one "ack" or "data": spans into the reply, decoded binaries in bins[]. */
typedef struct values {
  wsio_value v[SRV_PROXY_MAX_VALUES];
  unsigned char *bins[SRV_PROXY_MAX_VALUES];
  size_t n, nbins;
} values;

static void values_clear(values *vs) {
  for (size_t i = 0; i < vs->nbins; i++) free(vs->bins[i]);
  vs->n = vs->nbins = 0;
}

static int value_add(values *vs, const sio_json_span *e) {
  if (vs->n == SRV_PROXY_MAX_VALUES) return 0;
  sio_json_span b64;
  if (e->kind == SIO_JSON_OBJECT && sio_json_object_find(e, "_binary", 7, &b64) && b64.kind == SIO_JSON_STRING) {
    size_t len = b64.len - 2; /* the quotes; escapes are never base64 */
    unsigned char *bytes = malloc(len / 4 * 3 + 3);
    if (!bytes) return WSIO_ENOMEM;
    long n = srv_proxy_base64_decode(b64.p + 1, len, bytes);
    if (n >= 0) {
      vs->bins[vs->nbins++] = bytes;
      vs->v[vs->n++] = (wsio_value){1, bytes, (size_t)n};
      return 0;
    }
    free(bytes); /* not base64 after all: passed on as the object it is */
  }
  vs->v[vs->n++] = (wsio_value){0, e->p, e->len};
  return 0;
}

/* An array gives its elements; anything else is one value. */
static int values_of(values *vs, const sio_json_span *v) {
  if (v->kind != SIO_JSON_ARRAY) return value_add(vs, v);
  sio_json_iter it;
  sio_json_span e;
  sio_json_iter_init(&it, v);
  while (sio_json_array_next(&it, &e))
    if (value_add(vs, &e) != 0) return WSIO_ENOMEM;
  return 0;
}

/* A non-empty string without NUL, decoded into out. */
static int name_of(const sio_json_span *v, char *out, size_t cap) {
  if (v->kind != SIO_JSON_STRING) return 0;
  ssize_t n = sio_json_string_decode(v, out, cap - 1);
  if (n <= 0 || memchr(out, 0, (size_t)n)) return 0;
  out[n] = 0;
  return 1;
}

static void skip(const srv_proxy_reply_ops *ops, void *ud, const char *why) {
  if (ops->skip) ops->skip(ud, why);
}

static int one_emit(const sio_json_span *e, values *vs, const srv_proxy_reply_ops *ops, void *ud) {
  char event[SRV_PROXY_NAME_MAX + 1], to[SRV_PROXY_NAME_MAX + 6];
  sio_json_span v;
  if (e->kind != SIO_JSON_OBJECT || !sio_json_object_find(e, "event", 5, &v) || !name_of(&v, event, sizeof event)) {
    skip(ops, ud, "an emit without an event name");
    return 0;
  }
  srv_proxy_to where = SRV_PROXY_SELF;
  const char *room = NULL;
  if (sio_json_object_find(e, "to", 2, &v)) {
    if (!name_of(&v, to, sizeof to)) {
      skip(ops, ud, "an emit whose \"to\" is not a name");
      return 0;
    }
    if (strcmp(to, "self") == 0) {
      where = SRV_PROXY_SELF;
    } else if (strcmp(to, "others") == 0) {
      where = SRV_PROXY_OTHERS;
    } else if (strcmp(to, "all") == 0) {
      where = SRV_PROXY_ALL;
    } else if (strncmp(to, "room:", 5) == 0 && to[5] && strlen(to + 5) <= SRV_PROXY_NAME_MAX) {
      where = SRV_PROXY_ROOM;
      room = to + 5;
    } else {
      skip(ops, ud, "an emit whose \"to\" is not self, others, all or room:NAME");
      return 0;
    }
  }
  int rc = 0;
  if (sio_json_object_find(e, "data", 4, &v)) rc = values_of(vs, &v);
  if (rc == 0 && ops->emit) ops->emit(ud, event, where, room, vs->v, vs->n);
  values_clear(vs);
  return rc;
}

int srv_proxy_reply_parse(const char *body, size_t len, const srv_proxy_reply_ops *ops, void *ud) {
  size_t i = 0;
  while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) i++;
  if (i == len) {
    if (ops->ack) ops->ack(ud, 0, NULL, 0);
    return 0;
  }
  sio_json_span root, v;
  if (sio_json_validate(body, len, REPLY_JSON_DEPTH, &root) != 0 || root.kind != SIO_JSON_OBJECT) return WSIO_EPROTO;
  values *vs = calloc(1, sizeof *vs);
  if (!vs) return WSIO_ENOMEM;
  int rc = 0;
  if (sio_json_object_find(&root, "emit", 4, &v) && v.kind == SIO_JSON_ARRAY) {
    sio_json_iter it;
    sio_json_span e;
    sio_json_iter_init(&it, &v);
    while (rc == 0 && sio_json_array_next(&it, &e)) rc = one_emit(&e, vs, ops, ud);
  }
  if (rc == 0) {
    if (sio_json_object_find(&root, "ack", 3, &v)) {
      rc = values_of(vs, &v);
      if (rc == 0 && ops->ack) ops->ack(ud, 1, vs->v, vs->n);
      values_clear(vs);
    } else if (ops->ack) {
      ops->ack(ud, 0, NULL, 0);
    }
  }
  free(vs);
  return rc;
}
